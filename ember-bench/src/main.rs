//! `ember-bench`: the reference workloads W1–W7 (`shared/WORKLOADS.md`) on Ember, timed and
//! checked the way the Spark anchor (`shared/anchors/spark/Bench.java`) does it, so that the
//! `RESULT` lines can be put beside Spark's (`bench/compare.sh`), and W8, the Parquet scan of
//! `bench/w8-compare.sh`.
//!
//! ```text
//! ember-bench [--master URL] [--runs N] [--scale F] [--corpus PATH] [--w8-data DIR]
//!             [--conf k=v ...] [W1 ... W8 | W3-map | all]
//! ```
//! Defaults: `local[2]`, 3 runs, scale 1.0, every workload but W8 (which runs only when named:
//! its dataset comes from `bench/w8-gen.py`, into `--w8-data`, default `/tmp/ember-bench/w8`;
//! `--scale` does not apply to it), corpus `/tmp/ember-bench/corpus-w3.txt`. `--scale`
//! multiplies every size knob (W1's N, W2's job counts, W3's corpus bytes, W4–W7's element
//! counts); `--scale 0.001` is a smoke run of a second or two. `W3-map` (run only when named) is
//! W3 written the general way, owned `String` words from `flat_map` and `map`, to compare with
//! W3's borrowed words (`flat_map_ref`).
//!
//! Output: per workload, per-run lines, a `SANITY OK|FAIL` line and
//! `RESULT <id> <master> min=<ms> median=<ms> <figure>`; at the end, a
//! `LISTENER_QUEUE <name> processed=<events> dropped=<events>` line per listener queue and
//! `PEAK_RSS_KB self=<VmHWM> children=<max RSS of reaped children>`. The exit status is 0 only
//! when every sanity check passed; 2 for bad arguments or when the application cannot start.

/// A faster allocator for this allocation-heavy harness (per-record Strings and vectors);
/// any Ember program can choose its own the same way. `--features system-allocator` builds the
/// harness on the platform's allocator instead, as Ember's examples and a program that chooses
/// none run (BENCHMARKS.md compares the two).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The allocator this build runs on, as printed in the header line.
const ALLOCATOR: &str = if cfg!(feature = "system-allocator") {
    "system"
} else {
    "mimalloc"
};

mod corpus;
mod gen;
mod reference;
mod stats;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use ember::conf::{self, EmberConf};
use ember::prelude::*;

use workloads::{Bench, ALL, ON_REQUEST};

const USAGE: &str = "usage: ember-bench [--master URL] [--runs N] [--scale F] [--corpus PATH] \
                     [--w8-data DIR] [--conf k=v ...] [W1 ... W8 | W3-map | all]";

/// The harness's own options (the engine's `--master`/`--conf` are parsed by `EmberConf`).
struct Options {
    runs: usize,
    scale: f64,
    corpus: PathBuf,
    w8_data: PathBuf,
    workloads: Vec<String>,
}

fn parse_options(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options {
        runs: 3,
        scale: 1.0,
        corpus: PathBuf::from("/tmp/ember-bench/corpus-w3.txt"),
        w8_data: PathBuf::from("/tmp/ember-bench/w8"),
        workloads: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--runs" => {
                o.runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or("--runs takes a positive whole number")?;
            }
            "--scale" => {
                o.scale = value("--scale")?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or("--scale takes a positive number")?;
            }
            "--corpus" => o.corpus = PathBuf::from(value("--corpus")?),
            "--w8-data" => o.w8_data = PathBuf::from(value("--w8-data")?),
            "-h" | "--help" => return Err(String::new()),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            "all" => o.workloads.extend(ALL.iter().map(|w| w.to_string())),
            w => {
                let known = ALL.iter().chain(ON_REQUEST.iter());
                let Some(id) = known.into_iter().find(|id| id.eq_ignore_ascii_case(w)) else {
                    return Err(format!(
                        "unknown workload {arg} (expected W1 … W8, W3-map or all)"
                    ));
                };
                o.workloads.push(id.to_string());
            }
        }
    }
    if o.workloads.is_empty() {
        o.workloads = ALL.iter().map(|w| w.to_string()).collect();
    }
    Ok(o)
}

/// Peak resident set of this process (`VmHWM` of /proc/self/status), in KiB; 0 if unreadable.
fn peak_rss_self_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Largest peak resident set of any reaped child process (executors in cluster modes), in KiB.
fn peak_rss_children_kb() -> u64 {
    // getrusage has no std wrapper; this is the one reason for the libc dependency.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage and RUSAGE_CHILDREN a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } == 0 {
        ru.ru_maxrss.max(0) as u64 // kilobytes on Linux
    } else {
        0
    }
}

fn main() -> ExitCode {
    let process_start = std::time::Instant::now();
    let (conf, rest) = match EmberConf::from_args(std::env::args().skip(1)) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ember-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let opts = match parse_options(rest) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("ember-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let conf = conf
        .set_if_missing(conf::MASTER, "local[2]")
        .set_if_missing(conf::APP_NAME, "ember-bench")
        .set_if_missing(conf::UI_SHOW_CONSOLE_PROGRESS, "false");
    let master = conf.get(conf::MASTER).to_string();
    let started = std::time::Instant::now();
    let ctx = match Context::new(conf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ember-bench: cannot start Ember on {master}: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "Ember {}, master {master}, runs {}, scale {}, workloads {}, allocator {ALLOCATOR}; \
         context created in {:.1} ms",
        env!("CARGO_PKG_VERSION"),
        opts.runs,
        opts.scale,
        opts.workloads.join(" "),
        started.elapsed().as_secs_f64() * 1e3
    );
    let mut bench = Bench {
        ctx,
        master,
        runs: opts.runs,
        scale: opts.scale,
        corpus: opts.corpus,
        w8_data: opts.w8_data,
        all_ok: true,
    };
    if let Err(e) = bench.warm_up() {
        println!("SANITY FAIL warm-up jobs failed: {e}");
        bench.all_ok = false;
    }
    for w in &opts.workloads {
        bench.run(w);
    }
    bench.ctx.stop();
    // A listener that fell behind dropped events, and did less work than the run it measures
    // claims: the figures of a run with drops are not comparable with one without.
    for q in bench.ctx.listener_queue_stats() {
        println!(
            "LISTENER_QUEUE {} processed={} dropped={}",
            q.name, q.processed, q.dropped
        );
    }
    println!(
        "PEAK_RSS_KB self={} children={}",
        peak_rss_self_kb(),
        peak_rss_children_kb()
    );
    println!(
        "process wall {:.1} s (main start to end)",
        process_start.elapsed().as_secs_f64()
    );
    if bench.all_ok {
        println!("ALL SANITY CHECKS OK");
        ExitCode::SUCCESS
    } else {
        println!("SOME SANITY CHECK FAILED");
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_with_defaults() {
        let o = parse_options(args("")).unwrap();
        assert_eq!((o.runs, o.scale, o.workloads.len()), (3, 1.0, 7));
        let o = parse_options(args("--runs 1 --scale=0.5 --corpus /x/c.txt w4 W1")).unwrap();
        assert_eq!((o.runs, o.scale), (1, 0.5));
        assert_eq!(o.corpus, PathBuf::from("/x/c.txt"));
        assert_eq!(o.workloads, vec!["W4", "W1"]);
        assert!(parse_options(args("--runs 0")).is_err());
        assert!(parse_options(args("W9")).is_err());
        let o = parse_options(args("--w8-data /d w8")).unwrap();
        assert_eq!(
            (o.w8_data, o.workloads),
            (PathBuf::from("/d"), vec!["W8".into()])
        );
        assert_eq!(
            parse_options(args("all")).unwrap().workloads.len(),
            7,
            "W8 only when named"
        );
        assert!(parse_options(args("--scale")).is_err());
    }
}
