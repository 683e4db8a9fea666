//! Word count, Ember's "hello world".
//!
//! ```text
//! wordcount PATH [--top N] [--output DIR] [--master URL] [--conf key=value ...]
//! ```
//! Splits every line of PATH (a file, a directory or a glob) on whitespace, counts the words,
//! and prints the N most frequent (default 20, 0 for all) as `word<TAB>count`, by count
//! descending then word ascending. With `--output DIR` it also saves every count there.

use ember::prelude::*;

/// A line's words, each with a count of 1. The pairs borrow the line (`flat_map_ref`), so the
/// count copies a word only the first time a task meets it, not once per occurrence.
fn words(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    line.split_whitespace().map(|w| (w, 1))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("wordcount: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    ember::init_logging();
    let (ctx, args) = Context::from_args("wordcount")?;
    let mut path = None;
    let mut top = 20usize;
    let mut output = None;
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
                .ok_or_else(|| EmberError::Argument(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "--top" => {
                top = value("--top")?
                    .parse()
                    .map_err(|_| EmberError::Argument("--top takes a whole number".into()))?
            }
            "--output" => output = Some(value("--output")?),
            f if f.starts_with("--") => {
                return Err(EmberError::Argument(format!("unknown option {f}")))
            }
            _ if path.is_none() => path = Some(arg),
            _ => return Err(EmberError::Argument(format!("unexpected argument {arg:?}"))),
        }
    }
    let path = path.ok_or_else(|| {
        EmberError::Argument(
            "usage: wordcount PATH [--top N] [--output DIR] [--master URL] [--conf k=v]".into(),
        )
    })?;

    let counts = ctx
        .text_file(&path, None)?
        .flat_map_ref(words)
        .reduce_by_key(|a, b| a + b, None);

    // Ordering key: count descending, then word ascending.
    let by_rank = counts.clone().map(|(word, n)| (u64::MAX - n, word));
    let ranked = if top == 0 {
        let mut all = by_rank.collect()?;
        all.sort();
        all
    } else {
        by_rank.take_ordered(top)?
    };
    let mut out = String::new();
    for (inv, word) in ranked {
        out.push_str(&format!("{word}\t{}\n", u64::MAX - inv));
    }
    print!("{out}");

    if let Some(dir) = output {
        counts
            .map(|(word, n)| format!("{word}\t{n}"))
            .save_as_text_file(&dir)?;
    }
    ctx.stop();
    Ok(())
}
