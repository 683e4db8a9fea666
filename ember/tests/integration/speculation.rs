//! Speculative execution end to end: a straggling attempt gets a copy on another host, the
//! copy's result is used, and the straggler is killed.
//!
//! Spark never speculates in local mode, and never runs a copy on a host where its task already
//! ran; `local-cluster` executors all share one host. So the straggler test runs a standalone
//! driver with two executors started by hand that advertise different loopback addresses.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::context;
use ember::prelude::*;

const SECRET: &str = "speculation-suite";
const KILLED_BY_OTHER_ATTEMPT: &str = "another attempt succeeded";

/// The first attempt of partition 0 waits until it is killed; every other attempt returns at
/// once. If the kill never comes it panics after a minute, so a broken kill path fails the test
/// instead of hanging it.
fn straggle(x: u32) -> u32 {
    let ctx = TaskContext::current().expect("runs inside a task");
    if ctx.partition_id == 0 && ctx.attempt_number == 0 {
        let killed = ctx.wait_for_interrupt(Duration::from_secs(60));
        ctx.check_interrupted();
        panic!("attempt 0 of partition 0 was never killed (interrupted: {killed})");
    }
    x * 10
}

/// Executor processes this test started; killed (by pid) if the test fails before they exit.
struct Executors(Vec<Child>);

impl Executors {
    fn wait_exit(mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for child in &mut self.0 {
            while child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "executor process {} did not exit after its driver stopped",
                    child.id()
                );
                std::thread::park_timeout(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Executors {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Starts this test binary as an executor of `driver`, advertising `host`.
fn spawn_executor(driver: SocketAddr, host: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "executor",
            "--driver",
            &driver.to_string(),
            "--cores",
            "1",
            "--memory",
            "512m",
            "--host",
            host,
        ])
        .env("EMBER_AUTH_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start an executor process")
}

#[test]
fn a_straggler_gets_a_copy_on_another_host_and_is_killed_when_the_copy_wins() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx = context(
        &format!("ember://127.0.0.1:{port}"),
        &[
            ("ember.authenticate", "true"),
            ("ember.authenticate.secret", SECRET),
            ("ember.speculation", "true"),
        ],
    );
    let addr = ctx.driver_address().expect("a cluster driver listens");
    let executors = Executors(vec![
        spawn_executor(addr, "127.0.0.2"),
        spawn_executor(addr, "127.0.0.3"),
    ]);
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.executors_added == 2),
        "executors register: {:?}",
        ctx.status()
    );

    // Every attempt adds to an accumulator before straggling: the killed attempt's additions
    // must not count.
    let seen = ctx.long_accumulator("seen");
    let got = ctx
        .parallelize((0..8u32).collect(), 4)
        .map(func!(|x| {
            seen.add(1);
            straggle(x)
        }))
        .collect()
        .unwrap();
    assert_eq!(
        got,
        (0..8u32).map(|x| x * 10).collect::<Vec<_>>(),
        "partition 0 comes from the copy"
    );
    assert_eq!(
        seen.value(),
        8,
        "each element counted once, by the winning attempt of its partition"
    );

    let st = ctx.status();
    assert!(st.speculative_tasks_launched >= 1, "{st:?}");
    assert_eq!(
        st.succeeded_tasks, 4,
        "one success per partition, however many copies ran: {st:?}"
    );
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s
            .killed_tasks_summary
            .get(KILLED_BY_OTHER_ATTEMPT)
            .is_some_and(|n| *n >= 1)),
        "the straggler is killed: {:?}",
        ctx.status()
    );
    let st = ctx.status();
    assert_eq!(
        st.failed_tasks, st.killed_tasks,
        "kills are the only unsuccessful attempts: {st:?}"
    );
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.running_tasks == 0),
        "{:?}",
        ctx.status()
    );

    // The killed attempt gave its core back: a two-task job still runs on both executors.
    assert_eq!(ctx.parallelize((0..4u32).collect(), 2).count().unwrap(), 4);
    ctx.stop();
    executors.wait_exit();
}

#[test]
fn local_mode_never_speculates() {
    let ctx = context(
        "local[2]",
        &[
            ("ember.speculation", "true"),
            ("ember.speculation.minTaskRuntime", "0"),
        ],
    );
    let n = ctx
        .parallelize((0..4u32).collect(), 4)
        .map(|x| {
            let ctx = TaskContext::current().expect("runs inside a task");
            // Partition 0 outlives the others by far; with speculation on in cluster mode it
            // would be copied.
            if ctx.partition_id == 0 {
                ctx.wait_for_interrupt(Duration::from_millis(500));
            }
            x
        })
        .count()
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(ctx.status().speculative_tasks_launched, 0);
    ctx.stop();
}
