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
        "Job aborted due to stage failure: Task 3 in stage 0.0 failed {attempts} times, most recent failure: Lost task 3.{} in stage 0.0 (TID ",
        attempts - 1
    );
    assert!(err.starts_with(&head), "{master}: {err}");
    assert!(err.contains("panicked at 'boom', ember/tests/integration/failures.rs:"), "{err}");
    assert_eq!(ctx.parallelize((0..10u32).collect(), 4).count().unwrap(), 10, "the next job runs fine");
    ctx.stop();
}

#[test]
fn local_n_f_retries_up_to_f_times() {
    let ctx = context("local[2,4]", &[]);
    // Fails on the first two attempts of every task, succeeds on the third.
    let n = ctx
        .parallelize((0..8u32).collect(), 4)
        .map(|x| {
            let attempt = TaskContext::current().map(|c| c.attempt_number).unwrap_or(0);
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
    assert!(err.contains("failed 4 times, most recent failure: Lost task 0.3 in stage"), "{err}");
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
    assert!(matches!(err, EmberError::Scheduler(SchedulerError::JobAborted(_))));
    assert!(err.to_string().contains("bad record 42"), "{err}");
    assert_eq!(ctx.parallelize((0..100u32).collect(), 4).map(|x| (x % 5, x)).reduce_by_key(|a, b| a + b, 3).count().unwrap(), 5);
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
    let err = Context::new(EmberConf::new().set_master("local[2]").set("ember.locality.wait", "soon")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("ember.locality.wait"), "{err}");
    let err = Context::new(EmberConf::new().set_master("yarn")).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("invalid master URL"), "{err}");
}
