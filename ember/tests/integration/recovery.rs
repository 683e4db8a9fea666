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
