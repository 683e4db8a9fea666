//! Executor loss in local-cluster: map outputs on a killed executor are recomputed, and the
//! executor is replaced by a new process.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::context;
use ember::prelude::*;

#[test]
fn a_sigkilled_executor_is_replaced_and_its_shuffle_outputs_recomputed() {
    let ctx = context("local-cluster[2,1,1024]", &[]);
    let pids = ctx.executor_pids();
    assert_eq!(pids.len(), 2);
    let counts = ctx
        .parallelize((0..10_000u64).collect(), 8)
        .map(|x| (x % 100, 1u64))
        .reduce_by_key(|a, b| a + b, 4);
    assert_eq!(
        counts.count().unwrap(),
        100,
        "the map outputs now live on both executors"
    );

    let status = std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        ctx.wait_for_status(Duration::from_secs(30), |s| s.executors_lost == 1),
        "loss not seen: {:?}",
        ctx.status()
    );

    // The second job reuses the shuffle: the outputs of the dead executor are computed again.
    let before = ctx.status().succeeded_tasks;
    let got: HashMap<u64, u64> = counts.collect_as_map().unwrap();
    assert_eq!(got.len(), 100);
    assert!(got.values().all(|c| *c == 100), "{got:?}");
    let ran = ctx.status().succeeded_tasks - before;
    assert!(
        ran > 4 && ran < 4 + 8 + 1,
        "only the lost map tasks ran again, then the 4 reduce tasks: {ran}"
    );

    assert!(
        ctx.wait_for_status(Duration::from_secs(30), |s| s.executors_added == 3),
        "a replacement executor registers: {:?}",
        ctx.status()
    );
    assert_eq!(
        ctx.parallelize((0..1000u32).collect(), 8)
            .map(|x| x % 10)
            .distinct(4)
            .count()
            .unwrap(),
        10
    );
    ctx.stop();
}

/// `repartition` of a shuffle's output, then another shuffle: the round-robin of the
/// repartition depends on the order its input arrives in, so when part of it runs again Ember
/// must rerun it and the stage after it in full (Spark's SPARK-23207), or rows are counted twice
/// or lost.
fn repartition_then_shuffle(ctx: &Context) -> HashMap<u64, u64> {
    ctx.parallelize((0..60_000u64).collect(), 6)
        .map(|x| (x % 40, x))
        .partition_by(HashPartitioner::new(4))
        .values()
        .repartition(5)
        .map(|x| (x % 7, 1u64))
        .reduce_by_key(|a, b| a + b, 3)
        .collect_as_map()
        .unwrap()
}

#[test]
fn an_executor_killed_during_repartition_then_shuffle_gives_the_exact_answer() {
    let mut expected = HashMap::new();
    for x in 0..60_000u64 {
        *expected.entry(x % 7).or_insert(0u64) += 1;
    }
    // Stages: 6 map tasks, 4 repartition tasks, 5 tasks of the shuffle after it, 3 results.
    // Each seed kills one executor once 6 to 9 tasks have succeeded: while the repartition runs
    // (or, when the kill lands late, the shuffle after it), before any result is delivered, so
    // the only right outcome is the exact answer.
    for seed in 0..6u64 {
        let seed_s = seed.to_string();
        let ctx = context(
            "local-cluster[3,1,1024]",
            &[("ember.scheduler.seed", &seed_s)],
        );
        let point = 6 + (seed * 7 + 3) % 4;
        let killer_ctx = ctx.clone();
        let killer = std::thread::spawn(move || {
            let ok =
                killer_ctx.wait_for_status(Duration::from_secs(60), |s| s.succeeded_tasks >= point);
            let mut pids = killer_ctx.executor_pids();
            pids.sort();
            let pid = pids[(seed as usize) % pids.len()];
            let killed = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            (ok, killed)
        });
        let got = repartition_then_shuffle(&ctx);
        let (reached, killed) = killer.join().unwrap();
        assert!(
            reached && killed,
            "seed {seed}: the kill at {point} tasks happened"
        );
        assert_eq!(got, expected, "seed {seed}, killed after {point} tasks");
        assert!(
            ctx.wait_for_status(Duration::from_secs(30), |s| s.executors_lost == 1),
            "seed {seed}: loss not seen: {:?}",
            ctx.status()
        );
        // The replacement works, and the same job again gives the same answer.
        assert_eq!(
            repartition_then_shuffle(&ctx),
            expected,
            "seed {seed}: after"
        );
        ctx.stop();
    }
}
