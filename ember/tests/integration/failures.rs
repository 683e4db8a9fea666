//! Task failures: retries, Spark's abort message, panics that never reach the driver.

use crate::common::context;
use ember::prelude::*;

#[test]
fn a_panic_fails_the_job_with_sparks_message_and_the_context_survives() {
    for (master, attempts) in [("local[2]", 1), ("local-cluster[2,1,1024]", 4)] {
        panic_fails_the_job(master, attempts);
    }
}

fn panic_fails_the_job(master: &str, attempts: u32) {
    let ctx = context(master, &[]);
    let err = ctx
        .parallelize((0..10u32).collect(), 4)
        .map(|x| {
            if x == 7 {
                panic!("boom");
            }
            x
        })
        .count()
        .unwrap_err()
        .to_string();
    // local[N] allows one attempt per task; cluster masters ember.task.maxFailures (4).
    let head = format!(
        "Job aborted due to stage failure: Task 3 in stage 0.0 failed {attempts} times, most \
         recent failure: Lost task 3.{} in stage 0.0 (TID ",
        attempts - 1
    );
    assert!(err.starts_with(&head), "{master}: {err}");
    assert!(
        err.contains("panicked at 'boom', ember/tests/integration/failures.rs:"),
        "{err}"
    );
    assert_eq!(
        ctx.parallelize((0..10u32).collect(), 4).count().unwrap(),
        10,
        "the next job runs fine"
    );
    ctx.stop();
}

#[test]
fn local_n_f_retries_up_to_f_times() {
    let ctx = context("local[2,4]", &[]);
    // Fails on the first two attempts of every task, succeeds on the third.
    let n = ctx
        .parallelize((0..8u32).collect(), 4)
        .map(|x| {
            let attempt = TaskContext::current()
                .map(|c| c.attempt_number)
                .unwrap_or(0);
            assert!(attempt >= 2, "flaky failure on attempt {attempt}");
            x
        })
        .count()
        .unwrap();
    assert_eq!(n, 8);
    let st = ctx.status();
    assert_eq!(st.failed_tasks, 8, "two failed attempts of each of 4 tasks");

    let err = ctx
        .parallelize(vec![1u8], 1)
        .map(|_: u8| -> u8 { panic!("always") })
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("failed 4 times, most recent failure: Lost task 0.3 in stage"),
        "{err}"
    );
    ctx.stop();
}

#[test]
fn failure_inside_a_shuffle_map_stage_aborts_cleanly() {
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        map_stage_failure(master);
    }
}

fn map_stage_failure(master: &str) {
    let ctx = context(master, &[]);
    let err = ctx
        .parallelize((0..100u32).collect(), 4)
        .map(|x| {
            assert!(x != 42, "bad record {x}");
            (x % 5, x)
        })
        .reduce_by_key(|a, b| a + b, 3)
        .collect()
        .unwrap_err();
    assert!(matches!(
        err,
        EmberError::Scheduler(SchedulerError::JobAborted(_))
    ));
    assert!(err.to_string().contains("bad record 42"), "{err}");
    assert_eq!(
        ctx.parallelize((0..100u32).collect(), 4)
            .map(|x| (x % 5, x))
            .reduce_by_key(|a, b| a + b, 3)
            .count()
            .unwrap(),
        5
    );
    ctx.stop();
}

#[test]
fn actions_after_stop_fail_with_a_clear_error() {
    let ctx = context("local[1]", &[]);
    let rdd = ctx.parallelize(vec![1, 2, 3], 1);
    ctx.stop();
    assert!(matches!(rdd.count(), Err(EmberError::ContextStopped)));
}

#[test]
fn bad_configuration_is_reported_with_its_key() {
    let err = Context::new(
        EmberConf::new()
            .set_master("local[2]")
            .set("ember.locality.wait", "soon"),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("ember.locality.wait"), "{err}");
    let err = Context::new(EmberConf::new().set_master("yarn"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("invalid master URL"), "{err}");
}

#[test]
fn a_context_refuses_to_start_with_a_value_out_of_its_range_and_names_the_key() {
    for (key, value, reason) in [
        (
            "ember.task.maxFailures",
            "0",
            "The retry times of task should be greater than or equal to 1",
        ),
        (
            "ember.memory.storageFraction",
            "1.5",
            "Storage fraction must be in [0,1)",
        ),
        ("ember.driver.port", "65536", "must be at most 65535"),
    ] {
        for master in ["local[2]", "local-cluster[1,1,1024]"] {
            let err = Context::new(EmberConf::new().set_master(master).set(key, value))
                .err()
                .expect("the context refuses to start");
            assert_eq!(
                err,
                EmberError::Config {
                    key: key.into(),
                    value: value.into(),
                    reason: reason.into()
                },
                "{master}"
            );
        }
    }
}

/// `ember.driver.maxResultSize` holds in every mode (Spark's "abort the job if total size of
/// results is too large", run in `local`): results are sized by their serialized bytes even
/// when local mode hands them over unserialized. Only result stages count (SPARK-32470).
#[test]
fn max_result_size_holds_in_local_mode_too_and_counts_only_result_stages() {
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        let ctx = context(master, &[("ember.driver.maxResultSize", "2m")]);
        // Three results of 1 MiB (plus their length prefix) against a 2 MiB limit.
        let err = ctx
            .parallelize((0..3u32).collect(), 3)
            .map(|_| vec![7u8; 1 << 20])
            .collect()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "Job aborted due to stage failure: Total size of serialized results of "
            ),
            "{master}: {err}"
        );
        assert!(
            err.ends_with("is bigger than ember.driver.maxResultSize (2.0 MiB)"),
            "{master}: {err}"
        );
        // Under the limit, and the context still works.
        let sizes = ctx
            .parallelize((0..3u32).collect(), 3)
            .map(|_| vec![7u8; 100 << 10])
            .map(|v| v.len())
            .collect()
            .unwrap();
        assert_eq!(sizes, vec![100 << 10; 3], "{master}");
        ctx.stop();

        // SPARK-32470: 400 map statuses would exceed 2 KiB; they are not results.
        let ctx = context(master, &[("ember.driver.maxResultSize", "2k")]);
        let zero = ctx
            .parallelize((0..2000u32).collect(), 400)
            .map(|x| (x % 10, ()))
            .reduce_by_key(|a, _| a, 10)
            .filter(|(k, _)| *k == 0)
            .collect();
        assert_eq!(zero.unwrap(), vec![(0, ())], "{master}");
        ctx.stop();
    }
}

/// Which user hook of [`Troublesome`] panics.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Fault {
    PreferredLocations,
    NumPartitionsWhenArmed,
}

/// Arms [`Fault::NumPartitionsWhenArmed`] (only after the RDDs above it were built).
static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A user-defined RDD of two partitions whose scheduler-side hooks can panic.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Troublesome {
    meta: ember::rdd::RddMeta,
    fault: Fault,
}

impl Rdd for Troublesome {
    type Item = u32;
    type Iter = std::vec::IntoIter<u32>;
    fn meta(&self) -> &ember::rdd::RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        if self.fault == Fault::NumPartitionsWhenArmed
            && ARMED.load(std::sync::atomic::Ordering::SeqCst)
        {
            panic!("num_partitions exploded");
        }
        2
    }
    fn dependencies(&self) -> Vec<ember::rdd::Dependency> {
        Vec::new()
    }
    fn compute(&self, p: usize, _ctx: &std::sync::Arc<TaskContext>) -> Self::Iter {
        vec![p as u32 * 10, p as u32 * 10 + 1].into_iter()
    }
    fn preferred_locations(&self, _p: usize) -> Vec<ember::task::TaskLocation> {
        if self.fault == Fault::PreferredLocations {
            panic!("preferred_locations exploded");
        }
        Vec::new()
    }
}

/// DAGSchedulerSuite's "getPreferredLocations errors should not crash DAGScheduler and
/// SparkContext (SPARK-8606)" and "getPartitions exceptions ...": user code the scheduler
/// calls on its own thread fails that job with the panic as the cause; the next job runs.
#[test]
fn panics_of_rdd_hooks_on_the_scheduler_thread_fail_only_their_job() {
    let ctx = context("local[2]", &[]);
    let rdd = Troublesome {
        meta: ember::rdd::RddMeta::new(&ctx, "Troublesome"),
        fault: Fault::PreferredLocations,
    };
    let err = rdd.count().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "Job aborted due to stage failure: Task creation failed: preferred_locations exploded"
        ),
        "{err}"
    );
    assert_eq!(
        ctx.parallelize((0..10u32).collect(), 2).count().unwrap(),
        10
    );

    // The ancestor of a shuffle: its partitions are first asked for on the scheduler thread.
    let parent = Troublesome {
        meta: ember::rdd::RddMeta::new(&ctx, "Troublesome"),
        fault: Fault::NumPartitionsWhenArmed,
    };
    let counted = parent.map(|x| (x % 2, 1u32)).reduce_by_key(|a, b| a + b, 2);
    ARMED.store(true, std::sync::atomic::Ordering::SeqCst);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| counted.count()));
    ARMED.store(false, std::sync::atomic::Ordering::SeqCst);
    let err = result
        .expect("the panic stays on the scheduler thread")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            EmberError::Scheduler(SchedulerError::StageCreationFailed { cause, .. })
                if cause == "num_partitions exploded"
        ),
        "{err}"
    );
    assert_eq!(
        counted.collect().unwrap().len(),
        2,
        "the same job runs once the hook behaves"
    );
    assert_eq!(
        ctx.parallelize((0..10u32).collect(), 2).count().unwrap(),
        10
    );
    ctx.stop();
}
