//! PageRank over an edge list, as Spark's `JavaPageRank` example: links are grouped by source
//! and cached, ranks start at 1.0, and each iteration sends every page's rank divided among its
//! links, then sets rank = 0.15 + 0.85 × received.
//!
//! ```text
//! pagerank PATH [--iterations N] [--top N] [--master URL] [--conf key=value ...]
//! ```
//! PATH holds one edge per line: `src dst` (whitespace separated). Prints the top pages as
//! `page<TAB>rank`, highest first.

use ember::prelude::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("pagerank: {e}");
        std::process::exit(1);
    }
}

fn add(a: f64, b: f64) -> f64 {
    a + b
}

fn damp(received: f64) -> f64 {
    0.15 + 0.85 * received
}

fn run() -> Result<()> {
    ember::init_logging();
    let (ctx, args) = Context::from_args("pagerank")?;
    let mut path = None;
    let mut iterations = 10usize;
    let mut top = 10usize;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--iterations" => {
                iterations = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| EmberError::Argument("--iterations takes a number".into()))?
            }
            "--top" => {
                top = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| EmberError::Argument("--top takes a number".into()))?
            }
            _ if path.is_none() => path = Some(arg),
            _ => return Err(EmberError::Argument(format!("unexpected argument {arg:?}"))),
        }
    }
    let path = path.ok_or_else(|| {
        EmberError::Argument("usage: pagerank PATH [--iterations N] [--top N]".into())
    })?;

    let edges = ctx.text_file(&path, None)?.flat_map(|line: String| {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(a), Some(b)) => Some((a.to_string(), b.to_string())),
            _ => None,
        }
    });
    let partitions = edges.num_partitions();
    // Links are hash-partitioned by source and cached: every iteration joins them with the ranks,
    // which are partitioned the same way, so the join itself needs no shuffle (as in Spark).
    let links = edges.group_by_key(partitions).cache();
    // The initial ranks go through the same `reduce_by_key(add)` + `map_values(damp)` as every
    // iteration (damp(1.0) == 1.0), so `ranks` has one type and the loop can reassign it.
    let mut ranks = links
        .clone()
        .map_values(|_| 1.0f64)
        .reduce_by_key(add, partitions)
        .map_values(damp);
    for _ in 0..iterations {
        let contribs = links.clone().join(ranks, partitions).flat_map(
            |(_, (dests, rank)): (String, (Vec<String>, f64))| {
                let share = rank / dests.len() as f64;
                dests
                    .into_iter()
                    .map(move |d| (d, share))
                    .collect::<Vec<_>>()
            },
        );
        ranks = contribs.reduce_by_key(add, partitions).map_values(damp);
    }
    let mut ranks = ranks.collect()?;
    ranks.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (page, rank) in ranks.into_iter().take(top) {
        println!("{page}\t{rank:.6}");
    }
    ctx.stop();
    Ok(())
}
