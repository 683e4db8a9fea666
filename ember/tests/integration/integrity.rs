//! Data that cannot silently rot (`ember.shuffle.checksum.*`, SECURITY.md): shuffle files and
//! cached blocks damaged on disk between two actions of an application never change an answer.
//! A damaged shuffle block is a fetch failure, and its map output is computed again; a damaged
//! cached block is dropped and its partition recomputed from lineage.

use std::path::{Path, PathBuf};

use ember::prelude::*;

use crate::common::{context, sorted};

/// The masters of these tests: one executor in the driver, and executors in other processes
/// (which fetch each other's shuffle blocks over the network).
const MASTERS: [&str; 2] = ["local[2]", "local-cluster[2,1,1024]"];

/// The files whose name passes `keep`, at any depth under the application's local directory
/// (local mode) or its executors' scratch directories (`ember-executor-PID-…` in the system temp
/// dir, for `local-cluster`).
fn files(ctx: &Context, local_dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut stack = vec![local_dir.to_path_buf()];
    let prefixes: Vec<String> = ctx
        .executor_pids()
        .iter()
        .map(|p| format!("ember-executor-{p}-"))
        .collect();
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                stack.push(e.path());
            }
        }
    }
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().and_then(|n| n.to_str()).is_some_and(keep) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Changes the lowest bit of the byte in the middle of the file: in an uncompressed block that is
/// a byte of a record, which would read back as another value if nothing checked it.
fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_shuffle_files_are_fetch_failures_and_answers_stay_exact() {
    for master in MASTERS {
        for compress in ["false", "true"] {
            let dir = tempfile::tempdir().unwrap();
            let ctx = context(
                master,
                &[
                    ("ember.local.dir", dir.path().to_str().unwrap()),
                    ("ember.shuffle.compress", compress),
                ],
            );
            let counts = ctx
                .parallelize((0..20_000u64).collect(), 4)
                .map(|x| (x % 97, x))
                .reduce_by_key(|a, b| a + b, 3);
            let mut expected = vec![0u64; 97];
            for x in 0..20_000u64 {
                expected[(x % 97) as usize] += x;
            }
            let expected: Vec<(u64, u64)> = (0..97).zip(expected).collect();
            assert_eq!(sorted(&counts.collect().unwrap()), expected, "{master}");
            let failed_before = ctx.status().failed_tasks;

            // Between the two actions, every map output on disk loses a bit in its middle.
            let data = files(&ctx, dir.path(), &|n| {
                n.starts_with("shuffle_") && n.ends_with(".data")
            });
            assert_eq!(
                data.len(),
                4,
                "{master}: one data file per map task: {data:?}"
            );
            for f in &data {
                flip_middle_byte(f);
            }
            // The second action reuses the map outputs, finds them damaged, recomputes them.
            assert_eq!(
                sorted(&counts.collect().unwrap()),
                expected,
                "{master} compress={compress}"
            );
            let failed = ctx.status().failed_tasks - failed_before;
            assert!(
                failed > 0,
                "{master} compress={compress}: the damage was seen (fetch failures)"
            );
            // And once more, from the rewritten outputs, without a failure.
            let failed_before = ctx.status().failed_tasks;
            assert_eq!(sorted(&counts.collect().unwrap()), expected, "{master}");
            assert_eq!(ctx.status().failed_tasks, failed_before, "{master}");
            ctx.stop();
        }
    }
}

#[test]
fn a_damaged_cached_block_is_dropped_and_recomputed() {
    for master in MASTERS {
        for level in [StorageLevel::DISK_ONLY, StorageLevel::MEMORY_AND_DISK_SER] {
            let dir = tempfile::tempdir().unwrap();
            let ctx = context(master, &[("ember.local.dir", dir.path().to_str().unwrap())]);
            let computed = ctx.long_accumulator("computed");
            let rdd = ctx
                .parallelize((0..8_000u64).collect(), 4)
                .map(func!(|x| {
                    computed.add(1);
                    x * 3
                }))
                .persist(level);
            let expected: u64 = (0..8_000u64).map(|x| x * 3).sum();
            assert_eq!(rdd.collect().unwrap().iter().sum::<u64>(), expected);
            assert_eq!(computed.value(), 8_000, "{master} {level}");

            if level == StorageLevel::DISK_ONLY {
                let blocks = files(&ctx, dir.path(), &|n| n.starts_with("rdd_"));
                assert_eq!(
                    blocks.len(),
                    4,
                    "{master}: one file per partition: {blocks:?}"
                );
                for f in &blocks {
                    flip_middle_byte(f);
                }
                // Read again: each damaged block is refused, dropped and its partition computed
                // again, so the sum is exact and each element was computed twice.
                assert_eq!(
                    rdd.collect().unwrap().iter().sum::<u64>(),
                    expected,
                    "{master} {level}"
                );
                assert_eq!(computed.value(), 16_000, "{master} {level}");
            } else {
                // In memory, serialized: the blocks are read back, not recomputed.
                assert_eq!(rdd.collect().unwrap().iter().sum::<u64>(), expected);
                assert_eq!(computed.value(), 8_000, "{master} {level}");
            }
            ctx.stop();
        }
    }
}
