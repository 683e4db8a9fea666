//! Barrier execution mode (`rdd.barrier()`, `BarrierTaskContext`) end to end, in `local[4]` and
//! in `local-cluster[2,2,1024]` (syncs over the executors' connections): Spark's
//! `BarrierTaskContextSuite` and `BarrierStageOnSubmittedSuite` cases.

use ember::prelude::*;
use ember::task::BarrierTaskContext;

use crate::common::{context, is_cluster};

/// The two masters of the barrier tests: four slots each, in this process or in two executors.
const MASTERS: [&str; 2] = ["local[4]", "local-cluster[2,2,1024]"];

/// A context on `master`; a job submitted before the executors registered checks the slots
/// again soon rather than after Spark's 15 s.
fn barrier_context(master: &str, extra: &[(&str, &str)]) -> Context {
    let mut settings = vec![(
        "ember.scheduler.barrier.maxConcurrentTasksCheck.interval",
        "100ms",
    )];
    settings.extend_from_slice(extra);
    context(master, &settings)
}

fn for_each_barrier_master(mut f: impl FnMut(&Context, &str)) {
    for master in MASTERS {
        let ctx = barrier_context(master, &[]);
        f(&ctx, master);
        ctx.stop();
    }
}

#[test]
fn all_gather_returns_every_partitions_message_in_partition_order() {
    for_each_barrier_master(|ctx, master| {
        let gathered = ctx
            .parallelize((0..8).collect::<Vec<i32>>(), 4)
            .barrier()
            .map_partitions(|it| {
                let barrier = BarrierTaskContext::get().expect("a barrier task");
                assert_eq!(barrier.num_tasks(), 4);
                let all = barrier
                    .all_gather(barrier.partition_id().to_string())
                    .expect("all_gather");
                let n = it.count();
                let executor = barrier.task_context().services().executor_id().to_string();
                std::iter::once((n, all, executor))
            })
            .collect()
            .expect("job");
        let want: Vec<String> = (0..4).map(|p| p.to_string()).collect();
        assert_eq!(gathered.len(), 4, "{master}");
        for (n, all, executor) in gathered {
            assert_eq!((n, &all), (2, &want), "{master}");
            // In local-cluster the syncs crossed the executors' connections.
            assert_eq!(executor == "driver", !is_cluster(master), "{master}");
        }
    });
}

#[test]
fn barrier_twice_then_all_gather_in_one_task() {
    for_each_barrier_master(|ctx, master| {
        let out = ctx
            .parallelize((0..4).collect::<Vec<i32>>(), 4)
            .barrier()
            .map_partitions_with_index(|index, it| {
                let barrier = BarrierTaskContext::get().expect("a barrier task");
                barrier.barrier().expect("first barrier");
                barrier.barrier().expect("second barrier");
                let all = barrier.all_gather(format!("p{index}")).expect("all_gather");
                it.map(move |x| (x, all.join(",")))
            })
            .collect()
            .expect("job");
        let joined = "p0,p1,p2,p3".to_string();
        assert_eq!(
            out,
            (0..4).map(|x| (x, joined.clone())).collect::<Vec<_>>(),
            "{master}"
        );
    });
}

#[test]
fn a_task_failing_in_the_first_attempt_reruns_the_whole_barrier_map_stage() {
    for_each_barrier_master(|ctx, master| {
        let sums = ctx
            .parallelize((0..8).collect::<Vec<i64>>(), 4)
            .barrier()
            .map_partitions(|it| {
                let barrier = BarrierTaskContext::get().expect("a barrier task");
                if barrier.stage_attempt_number() == 0 && barrier.partition_id() == 1 {
                    panic!("fails in the first attempt");
                }
                // The others wait here for it; the failure kills them.
                barrier.barrier().expect("barrier");
                let attempt = barrier.stage_attempt_number();
                it.map(move |x| (x % 2, (x, attempt)))
            })
            .reduce_by_key(|a, b| (a.0 + b.0, a.1.max(b.1)), 2)
            .collect()
            .expect("the job recovers");
        let mut sums = sums;
        sums.sort();
        // Every element came from the second attempt: all four tasks ran again.
        assert_eq!(sums, vec![(0, (12, 1)), (1, (16, 1))], "{master}");
        let mins = ctx
            .parallelize((0..4).collect::<Vec<i64>>(), 4)
            .map(|x| x)
            .collect()
            .expect("the context still works");
        assert_eq!(mins.len(), 4);
    });
}

#[test]
fn a_failed_barrier_result_stage_fails_the_job() {
    for_each_barrier_master(|ctx, master| {
        let err = ctx
            .parallelize((0..4).collect::<Vec<i32>>(), 4)
            .barrier()
            .map_partitions(|it| {
                let barrier = BarrierTaskContext::get().expect("a barrier task");
                if barrier.stage_attempt_number() == 0 && barrier.partition_id() == 2 {
                    panic!("boom in the barrier result stage");
                }
                barrier.barrier().expect("barrier");
                it
            })
            .collect()
            .expect_err("a barrier result stage cannot be retried");
        let message = err.to_string();
        assert!(
            message.contains(
                "Could not recover from a failed barrier ResultStage. Most recent failure \
                 reason: Stage failed because barrier task ResultTask("
            ),
            "{master}: {message}"
        );
        assert!(
            message.contains("boom in the barrier result stage"),
            "{master}: {message}"
        );
    });
}

#[test]
fn spark_24820_unsupported_rdd_chains_fail_the_job() {
    for_each_barrier_master(|ctx, master| {
        let barrier_rdd = ctx
            .parallelize((0..4).collect::<Vec<i32>>(), 4)
            .barrier()
            .map_partitions(|it| it);
        let chain = "[SPARK-24820][SPARK-24821]: Barrier execution mode does not allow the \
                     following pattern of RDD chain within a barrier stage";
        let first = barrier_rdd
            .clone()
            .first()
            .expect_err("first() runs a partial job");
        assert!(first.to_string().contains(chain), "{master}: {first}");
        let coalesced = barrier_rdd
            .clone()
            .coalesce(2)
            .collect()
            .expect_err("coalesce");
        assert!(
            coalesced.to_string().contains(chain),
            "{master}: {coalesced}"
        );
        // The whole RDD is fine.
        assert_eq!(barrier_rdd.count().expect("count"), 4);
    });
}

#[test]
fn spark_24819_a_barrier_stage_needing_more_slots_than_the_cluster_has_fails() {
    for master in MASTERS {
        let ctx = barrier_context(
            master,
            &[(
                "ember.scheduler.barrier.maxConcurrentTasksCheck.maxFailures",
                "1",
            )],
        );
        let err = ctx
            .parallelize((0..5).collect::<Vec<i32>>(), 5)
            .barrier()
            .map_partitions(|it| it)
            .collect()
            .expect_err("5 partitions, 4 slots");
        assert!(
            err.to_string().starts_with(
                "[SPARK-24819]: Barrier execution mode does not allow run a barrier stage that \
                 requires more slots than the total number of slots in the cluster currently."
            ),
            "{master}: {err}"
        );
        ctx.stop();
    }
}

#[test]
fn barrier_task_context_is_only_for_barrier_tasks() {
    let ctx = barrier_context("local[4]", &[]);
    let outside = ctx
        .parallelize(vec![1], 1)
        .map_partitions(|it| {
            let got = BarrierTaskContext::get().is_err();
            it.map(move |_| got)
        })
        .collect()
        .expect("job");
    assert_eq!(outside, vec![true]);
    assert!(BarrierTaskContext::get().is_err());
    ctx.stop();
}
