//! A word count that stays alive with its web UI on, to look at the UI (and for
//! `bench/ui-browser-check.sh`).
//!
//! ```text
//! ui_demo PATH [--master URL] [--conf key=value ...]
//! ```
//! Counts the words of PATH and caches the counts (the Storage tab), prints the UI's address,
//! then runs a job whose tasks wait until standard input closes (the Jobs and Stages tabs show
//! it running, the thread dumps show its task threads). Local masters only: the tasks wait on
//! this process's standard input.

use std::io::Read;
use std::sync::{Condvar, Mutex};

use ember::prelude::*;
use ember::storage::StorageLevel;

/// Opened when standard input closes.
static GATE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

fn wait_at_gate() {
    let (open, cv) = &GATE;
    let mut o = open.lock().unwrap_or_else(|e| e.into_inner());
    while !*o {
        o = cv.wait(o).unwrap_or_else(|e| e.into_inner());
    }
}

fn words(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    line.split_whitespace().map(|w| (w, 1))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ui_demo: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    ember::init_logging();
    let (ctx, args) = Context::from_args("ui_demo")?;
    let path = args
        .first()
        .ok_or_else(|| EmberError::Argument("usage: ui_demo PATH [--master URL]".into()))?;
    let counts = ctx
        .text_file(path, None)?
        .flat_map_ref(words)
        .reduce_by_key(|a, b| a + b, None)
        .persist(StorageLevel::MEMORY_ONLY);
    println!("{} distinct words", counts.count()?);
    println!("UI: {}", ctx.ui_url().unwrap_or("off"));
    let job_ctx = ctx.clone();
    let waiting = std::thread::spawn(move || {
        job_ctx
            .parallelize((0..8u32).collect::<Vec<_>>(), 8)
            .map(|x| {
                wait_at_gate();
                (x % 2, x)
            })
            .reduce_by_key(|a, b| a + b, 2)
            .count()
    });
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    *GATE.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
    GATE.1.notify_all();
    let groups = waiting
        .join()
        .map_err(|_| EmberError::Argument("the waiting job panicked".into()))??;
    println!("{groups} groups");
    ctx.stop();
    Ok(())
}
