//! Storage levels, the memory manager and the block manager end to end, on every master of the
//! suite: eviction under a small memory, partitions larger than memory, the storage status,
//! `unpersist`, locality of cached partitions, and task memory (spills and leaks).

use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::common::{context, is_cluster, masters};
use ember::prelude::*;
use ember::scheduler::locality::TaskLocality;

/// A few MiB of memory for the embedded executor (local) and each executor process
/// (local-cluster): 4 MiB, nothing reserved, so 2.4 MiB for execution and storage.
fn small_memory(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = extra.to_vec();
    v.extend([
        ("ember.testing.reservedMemory", "0"),
        ("ember.driver.memory", "4m"),
        ("ember.executor.memory", "4m"),
    ]);
    v
}

/// Elements whose postcard encoding is long (varints of 9-10 bytes), so serialized blocks are
/// large too.
fn scramble(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `(count, xor)` of the scrambled numbers `from..to`.
fn expected(from: u64, to: u64) -> (u64, u64) {
    (to - from, (from..to).map(scramble).fold(0, |a, b| a ^ b))
}

fn checksum<R: Rdd<Item = u64>>(rdd: &R) -> (u64, u64) {
    (rdd.count().unwrap(), rdd.fold(0, |a, b| a ^ b).unwrap())
}

fn evictions(ctx: &Context) -> u64 {
    ctx.executor_storage_status()
        .iter()
        .map(|e| e.blocks_evicted)
        .sum()
}

/// Waits until every executor reports no storage memory in use (executor processes report the
/// blocks `unpersist` removed asynchronously).
fn wait_storage_freed(ctx: &Context) -> bool {
    ctx.wait_for_storage(Duration::from_secs(30), |s| {
        s.iter()
            .all(|e| e.memory.storage_used == 0 && e.memory_used == 0)
    })
}

#[test]
fn every_level_returns_the_right_data_under_eviction_pressure() {
    // 8 partitions of 40K elements: about 700 KiB each as objects, 380 KiB serialized. Two such
    // RDDs never fit in 2.4 MiB per executor, whatever the level.
    const N: u64 = 320_000;
    let levels = [
        StorageLevel::MEMORY_ONLY,
        StorageLevel::MEMORY_ONLY_SER,
        StorageLevel::MEMORY_AND_DISK,
        StorageLevel::MEMORY_AND_DISK_SER,
        StorageLevel::DISK_ONLY,
    ];
    for (master, extra) in masters() {
        let ctx = context(master, &small_memory(&extra));
        for level in levels {
            let a = ctx
                .range(0, N as i64, 1, 8)
                .map(|x| scramble(x as u64))
                .persist(level)
                .set_name("a");
            let b = ctx
                .range(N as i64, 2 * N as i64, 1, 8)
                .map(|x| scramble(x as u64))
                .persist(level);
            let evicted_before = evictions(&ctx);
            assert_eq!(
                checksum(&a),
                expected(0, N),
                "{master} {level}: first pass over a"
            );
            assert_eq!(
                checksum(&b),
                expected(N, 2 * N),
                "{master} {level}: first pass over b"
            );
            // Reading a again after b pushed it out: from memory, disk, or recomputed.
            assert_eq!(
                checksum(&a),
                expected(0, N),
                "{master} {level}: a after eviction"
            );
            assert_eq!(
                checksum(&b),
                expected(N, 2 * N),
                "{master} {level}: b after eviction"
            );

            let info = ctx.get_rdd_storage_info();
            let a_info = info.iter().find(|i| i.id == a.id());
            if level.use_memory {
                assert!(
                    evictions(&ctx) > evicted_before,
                    "{master} {level}: no block was evicted: {:?}",
                    ctx.executor_storage_status()
                );
            }
            if level.use_disk {
                let a_info =
                    a_info.unwrap_or_else(|| panic!("{master} {level}: a is not in {info:?}"));
                assert!(
                    a_info.disk_size > 0,
                    "{master} {level}: disk levels show disk bytes: {a_info:?}"
                );
                assert_eq!(
                    a_info.num_cached_partitions, 8,
                    "{master} {level}: every partition is somewhere: {a_info:?}"
                );
                assert_eq!(a_info.name.as_deref(), Some("a"));
                assert_eq!(a_info.storage_level, level);
            } else {
                assert!(
                    info.iter().all(|i| i.disk_size == 0),
                    "{master} {level}: nothing on disk: {info:?}"
                );
            }
            if level == StorageLevel::DISK_ONLY {
                assert!(
                    info.iter().all(|i| i.memory_size == 0),
                    "{master}: DISK_ONLY keeps nothing in memory: {info:?}"
                );
            }
            for e in ctx.executor_storage_status() {
                assert!(e.memory_used <= e.max_memory, "{master} {level}: {e:?}");
            }
            a.unpersist();
            b.unpersist();
            assert!(ctx.get_rdd_storage_info().is_empty());
            assert!(
                wait_storage_freed(&ctx),
                "{master} {level}: memory not freed: {:?}",
                ctx.executor_storage_status()
            );
        }
        ctx.stop();
    }
}

#[test]
fn second_action_reads_the_cache_process_local() {
    for (master, extra) in masters() {
        let ctx = context(master, &extra);
        let rdd = ctx
            .parallelize((0..1000u64).collect(), 4)
            .map(|x| x * 3)
            .cache();
        assert_eq!(rdd.count().unwrap(), 1000);
        let before = ctx.status();
        assert_eq!(
            rdd.reduce(|a, b| a + b).unwrap(),
            (0..1000u64).map(|x| x * 3).sum::<u64>()
        );
        let after = ctx.status();
        assert_eq!(
            after.metrics.cache_hits - before.metrics.cache_hits,
            4,
            "{master}: every partition read from the cache"
        );
        let local = |s: &ember::scheduler::event_loop::AppStatus| {
            s.launched_by_locality
                .get(&TaskLocality::ProcessLocal)
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(
            local(&after) - local(&before),
            4,
            "{master}: tasks over cached partitions run PROCESS_LOCAL: {:?}",
            after.launched_by_locality
        );
        let info = ctx.get_rdd_storage_info();
        assert_eq!(info.len(), 1);
        assert_eq!(
            (
                info[0].id,
                info[0].num_cached_partitions,
                info[0].num_partitions
            ),
            (rdd.id(), 4, 4)
        );
        assert_eq!(info[0].storage_level, StorageLevel::MEMORY_ONLY);
        assert!(info[0].memory_size > 0 && info[0].disk_size == 0);
        assert_eq!(info[0].name, None);
        ctx.stop();
    }
}

#[test]
fn unpersist_frees_memory_on_the_driver_and_the_executors() {
    for (master, extra) in masters() {
        let ctx = context(master, &extra);
        let rdd = ctx
            .parallelize((0..10_000u64).collect(), 3)
            .map(|x| x + 1)
            .persist(StorageLevel::MEMORY_AND_DISK_SER);
        assert_eq!(rdd.count().unwrap(), 10_000);
        let used: u64 = ctx
            .executor_storage_status()
            .iter()
            .map(|e| e.memory_used)
            .sum();
        assert!(used > 0, "{master}: {:?}", ctx.executor_storage_status());
        assert!(
            ctx.wait_for_storage(Duration::from_secs(10), |s| s
                .iter()
                .map(|e| e.memory.storage_used)
                .sum::<u64>()
                == used),
            "{master}: executors report the memory of their blocks (serialized: exact): {:?}",
            ctx.executor_storage_status()
        );
        let rdd = rdd.unpersist();
        assert!(ctx.get_rdd_storage_info().is_empty(), "{master}");
        assert_eq!(ctx.rdd_storage_info(rdd.id()), (0, 0));
        assert!(ctx
            .executor_storage_status()
            .iter()
            .all(|e| e.memory_used == 0 && e.blocks == 0));
        assert!(
            wait_storage_freed(&ctx),
            "{master}: {:?}",
            ctx.executor_storage_status()
        );
        assert_eq!(rdd.count().unwrap(), 10_000);
        assert!(
            ctx.get_rdd_storage_info().is_empty(),
            "{master}: no longer cached"
        );
        ctx.stop();
    }
}

#[test]
fn a_partition_larger_than_memory_is_not_cached_and_the_job_is_correct() {
    const N: u64 = 400_000; // about 7 MiB as objects, 4 MiB serialized: more than 2.4 MiB
    for (master, extra) in masters() {
        let ctx = context(master, &small_memory(&extra));
        let big = ctx
            .range(0, N as i64, 1, 1)
            .map(|x| scramble(x as u64))
            .cache();
        assert_eq!(checksum(&big), expected(0, N), "{master}");
        assert!(
            ctx.get_rdd_storage_info().is_empty(),
            "{master}: not cached: {:?}",
            ctx.get_rdd_storage_info()
        );
        let hits = ctx.status().metrics.cache_hits;
        assert_eq!(checksum(&big), expected(0, N), "{master}: recomputed");
        assert_eq!(ctx.status().metrics.cache_hits, hits);
        assert!(
            wait_storage_freed(&ctx),
            "{master}: the unroll memory was given back: {:?}",
            ctx.executor_storage_status()
        );

        // With disk in the level, the partition goes there instead.
        let on_disk = ctx
            .range(0, N as i64, 1, 1)
            .map(|x| scramble(x as u64))
            .persist(StorageLevel::MEMORY_AND_DISK);
        assert_eq!(checksum(&on_disk), expected(0, N), "{master}");
        let info = ctx.get_rdd_storage_info();
        assert_eq!(info.len(), 1, "{master}: {info:?}");
        assert!(
            info[0].disk_size > 0 && info[0].memory_size == 0,
            "{master}: {info:?}"
        );
        let hits = ctx.status().metrics.cache_hits;
        assert_eq!(checksum(&on_disk), expected(0, N));
        assert_eq!(
            ctx.status().metrics.cache_hits - hits,
            2,
            "{master}: both actions read it from disk"
        );
        ctx.stop();
    }
}

/// What the application logged at warn and above (the embedded executor's logs).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Reserves 1 KiB of execution memory per element and never gives it back.
fn leak(x: u32) -> u32 {
    if let Some(task) = TaskContext::current() {
        task.acquire_execution_memory(1024);
    }
    x
}

#[test]
fn a_task_that_leaks_execution_memory_is_reported() {
    capture_logs();
    for (master, extra) in masters() {
        let ctx = context(master, &extra);
        assert_eq!(
            ctx.parallelize((0..4u32).collect(), 2)
                .map(leak)
                .count()
                .unwrap(),
            4,
            "{master}: only logged by default"
        );
        if !is_cluster(master) {
            let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
            assert!(
                logs.contains("Managed memory leak detected; size = 2048 bytes, TID = "),
                "{master}: {logs}"
            );
        }
        assert!(
            ctx.executor_storage_status()
                .iter()
                .all(|e| e.memory.execution_used == 0),
            "{master}: released at task end"
        );
        ctx.stop();

        let mut strict = extra.clone();
        strict.push(("ember.unsafe.exceptionOnMemoryLeak", "true"));
        let ctx = context(master, &strict);
        let err = ctx
            .parallelize((0..4u32).collect(), 2)
            .map(leak)
            .count()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Managed memory leak detected; size = 2048 bytes"),
            "{master}: {err}"
        );
        // A task that gives its memory back is fine.
        let ok = ctx
            .parallelize((0..4u32).collect(), 2)
            .map(|x| {
                let task = TaskContext::current().expect("inside a task");
                let got = task.acquire_execution_memory(4096);
                task.release_execution_memory(got);
                x
            })
            .count();
        assert_eq!(ok.unwrap(), 4, "{master}");
        ctx.stop();
    }
}

#[test]
fn aggregation_spills_under_a_small_execution_memory() {
    // No ember.shuffle.spill.threshold: only the memory manager limits the maps.
    for (master, extra) in masters() {
        let ctx = context(master, &small_memory(&extra));
        let before = ctx.status().metrics;
        // Each map task combines 100K distinct keys: about 2.5 MiB of map, more than the budget.
        let n = 400_000u64;
        let sums = ctx
            .range(0, n as i64, 1, 4)
            .map(|x| (x as u64 % 200_000, x as u64))
            .reduce_by_key(|a, b| a + b, 3)
            .collect_as_map()
            .unwrap();
        assert_eq!(sums.len(), 200_000);
        assert_eq!(sums[&7], (0..n).filter(|x| x % 200_000 == 7).sum::<u64>());
        let sorted = ctx
            .range(0, n as i64, 1, 4)
            .map(|x| (scramble(x as u64), ()))
            .sort_by_key(SortOrder::Ascending, 2)
            .unwrap()
            .keys()
            .collect()
            .unwrap();
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]) && sorted.len() as u64 == n);
        let after = ctx.status().metrics;
        assert!(
            after.disk_bytes_spilled > before.disk_bytes_spilled,
            "{master}: nothing spilled: {after:?}"
        );
        assert!(
            after.peak_execution_memory > before.peak_execution_memory,
            "{master}: {after:?}"
        );
        ctx.stop();
    }
}

#[test]
fn replicated_levels_are_refused() {
    let ctx = context("local[2]", &[]);
    let rdd = ctx.parallelize(vec![1u32, 2, 3], 2);
    let Err(err) = rdd.clone().try_persist(StorageLevel::MEMORY_ONLY_2) else {
        panic!("MEMORY_ONLY_2 accepted")
    };
    assert!(
        matches!(
            err,
            EmberError::ReplicationNotSupported { ref level, .. } if level == "MEMORY_ONLY_2"
        ),
        "{err}"
    );
    let persisted = rdd.map(|x| x + 1).persist(StorageLevel::MEMORY_AND_DISK_2);
    let err = persisted.count().unwrap_err().to_string();
    assert!(
        err.contains("replication not supported") && err.contains("MEMORY_AND_DISK_2"),
        "{err}"
    );
    assert_eq!(
        persisted
            .persist(StorageLevel::MEMORY_AND_DISK)
            .count()
            .unwrap(),
        3,
        "a supported level works"
    );
    ctx.stop();
}

#[test]
fn too_little_memory_is_refused_with_the_key_to_change() {
    let local = Context::new(
        EmberConf::new()
            .set_master("local[1]")
            .set("ember.driver.memory", "200m"),
    );
    let err = local
        .err()
        .expect("200 MiB is less than 1.5 x 300 MiB reserved")
        .to_string();
    assert!(err.contains("ember.driver.memory"), "{err}");
    let cluster = Context::new(
        EmberConf::new()
            .set_master("local-cluster[1,1,1024]")
            .set("ember.executor.memory", "100m"),
    );
    let err = cluster.err().expect("100 MiB executors").to_string();
    assert!(err.contains("ember.executor.memory"), "{err}");
}
