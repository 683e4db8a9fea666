//! `excludeOnFailure` end to end: a task that always fails on one executor completes on the
//! other, that executor is excluded for the application, and a task that can run nowhere aborts
//! its job with a message naming it.

use std::time::Duration;

use crate::common::context;
use ember::prelude::*;

/// Fails on executor "1" (a "bad disk"), works everywhere else, where it takes a little while:
/// otherwise the healthy executor could finish the whole stage before the bad one has failed
/// the two tasks that exclude it (this is simulated work, not a wait for an event).
fn fails_on_executor_1(x: u32) -> u32 {
    let ctx = TaskContext::current().expect("runs inside a task");
    assert!(
        ctx.services().executor_id() != "1",
        "bad disk on executor 1"
    );
    if x.is_multiple_of(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    x
}

#[test]
fn an_executor_whose_tasks_fail_is_excluded_and_the_job_completes() {
    let ctx = context(
        "local-cluster[2,1,1024]",
        &[("ember.excludeOnFailure.enabled", "true")],
    );
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.executors_added == 2),
        "{:?}",
        ctx.status()
    );
    assert!(ctx.status().excluded_executors.is_empty());

    let n = ctx
        .parallelize((0..80u32).collect(), 8)
        .map(fails_on_executor_1)
        .count()
        .unwrap();
    assert_eq!(
        n, 80,
        "every task failed on executor 1 was retried on executor 0"
    );
    let failed = ctx.status().failed_tasks;
    assert!(
        failed >= 2,
        "executor 1 failed tasks until it was excluded for the stage: {:?}",
        ctx.status()
    );
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.excluded_executors == ["1"]),
        "two failures in a successful stage exclude executor 1: {:?}",
        ctx.status()
    );

    // Excluded for the application: the next job's tasks all go to executor 0.
    assert_eq!(
        ctx.parallelize((0..80u32).collect(), 8)
            .map(fails_on_executor_1)
            .count()
            .unwrap(),
        80
    );
    assert_eq!(
        ctx.status().failed_tasks,
        failed,
        "no task was offered to executor 1"
    );
    ctx.stop();
}

#[test]
fn a_task_that_can_run_nowhere_aborts_the_job_naming_it() {
    // local[2,4] would retry a task 4 times on its one executor; exclusion forbids the retry.
    // The one local executor cannot be replaced: the task set waits out the (shortened)
    // unschedulable timeout, or is aborted at once if the executor is still busy.
    let ctx = context(
        "local[2,4]",
        &[
            ("ember.excludeOnFailure.enabled", "true"),
            (
                "ember.scheduler.excludeOnFailure.unschedulableTaskSetTimeout",
                "1s",
            ),
        ],
    );
    let err = ctx
        .parallelize((0..8u32).collect(), 4)
        .map(|x| {
            assert!(x != 5, "bad record {x}");
            x
        })
        .count()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "\nAborting TaskSet 0.0 because task 2 (partition 2)\ncannot run anywhere due to node \
             and executor excludeOnFailure.\nMost recent failure:\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("bad record 5")
            && err.contains(
                "ExcludeOnFailure behavior can be configured via ember.excludeOnFailure.*."
            ),
        "{err}"
    );
    // A task still running when the task set is aborted is killed, and a killed attempt counts
    // as failed too (Spark's `numKilledTasks` is part of `numFailedTasks`); whether one was
    // still running depends on timing.
    let st = ctx.status();
    assert_eq!(
        st.failed_tasks - st.killed_tasks,
        1,
        "no retry on the executor where the task failed"
    );
    assert_eq!(
        ctx.parallelize((0..8u32).collect(), 4).count().unwrap(),
        8,
        "the context survives"
    );
    ctx.stop();
}

#[test]
fn inconsistent_exclusion_settings_fail_at_start_naming_the_keys() {
    let err = Context::new(
        EmberConf::new()
            .set_master("local[2]")
            .set("ember.excludeOnFailure.enabled", "true")
            .set("ember.task.maxFailures", "2"),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("ember.excludeOnFailure.task.maxTaskAttemptsPerNode")
            && err.contains("ember.task.maxFailures"),
        "{err}"
    );
}

/// Fails on executor "0", the first executor of a local-cluster.
fn fails_on_executor_0(x: u32) -> u32 {
    let ctx = TaskContext::current().expect("runs inside a task");
    assert!(
        ctx.services().executor_id() != "0",
        "bad disk on executor 0"
    );
    x
}

#[test]
fn spark_22148_an_idle_executor_that_can_run_nothing_is_replaced() {
    // The task fails on the only executor, where it may not run again: rather than abort, the
    // idle executor is killed and the job completes on its replacement.
    let ctx = context(
        "local-cluster[1,1,1024]",
        &[("ember.excludeOnFailure.enabled", "true")],
    );
    assert_eq!(
        ctx.parallelize((0..4u32).collect(), 1)
            .map(fails_on_executor_0)
            .count()
            .unwrap(),
        4
    );
    let status = ctx.status();
    assert_eq!(
        (status.failed_tasks, status.executors_lost),
        (1, 1),
        "{status:?}"
    );
    assert!(status.executors_added >= 2, "{status:?}");
    ctx.stop();
}
