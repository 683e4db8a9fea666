//! A task that overflows its stack in an executor process (issue #13): the executor reports it as
//! std would and dies of SIGSEGV, the driver names it, and the application carries on.

use std::time::{Duration, Instant};

use crate::common::context;
use ember::prelude::*;

/// Recurses until the stack runs out; the frame's array and the use of the result after the call
/// keep the compiler from turning it into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth; 32]);
    recurse(depth + 1).wrapping_add(frame[depth as usize % 32])
}

/// Whether a process has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// The scratch directories executor process `pid` left in the temp dir.
fn scratch_of(pid: u32) -> Vec<String> {
    let prefix = format!("ember-executor-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn a_task_that_overflows_its_stack_fails_the_job_and_the_driver_carries_on() {
    let ctx = context("local-cluster[2,1,1024]", &[]);
    let mut seen = ctx.executor_pids();
    let err = ctx
        .parallelize((0..4u64).collect(), 4)
        .map(|x| if x == 2 { recurse(x) } else { x })
        .count()
        .unwrap_err()
        .to_string();
    // Each attempt takes its executor down: ember.task.maxFailures (4) losses caused by the task.
    assert!(
        err.starts_with(
            "Job aborted due to stage failure: Task 2 in stage 0.0 failed 4 times, most recent \
             failure: Lost task 2.3 in stage 0.0 (TID "
        ),
        "{err}"
    );
    assert!(
        err.contains("exited caused by one of the running tasks")
            && err.contains("killed by signal 11, SIGSEGV: a stack overflow"),
        "{err}"
    );
    assert_eq!(
        ctx.parallelize((0..100u64).collect(), 4)
            .map(|x| x * 2)
            .collect()
            .unwrap()
            .len(),
        100,
        "the driver and the replaced executors run the next job"
    );
    seen.extend(ctx.executor_pids());
    ctx.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().all(|p| ended(*p)) {
        assert!(
            Instant::now() < deadline,
            "executor processes {seen:?} outlived stop"
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
    for pid in seen {
        assert_eq!(scratch_of(pid), Vec::<String>::new(), "executor {pid}");
    }
}
