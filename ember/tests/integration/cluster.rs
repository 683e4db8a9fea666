//! Cluster mode: executor processes, the RPC limits, result paths, and who may join.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::context;
use ember::prelude::*;
use ember::rpc::connection::Connection;
use ember::rpc::messages::{ToDriver, ToExecutor};

const CLUSTER: &str = "local-cluster[2,1,1024]";

#[test]
fn a_task_larger_than_the_rpc_limit_aborts_with_sparks_advice() {
    let ctx = context(CLUSTER, &[("ember.rpc.message.maxSize", "1")]);
    let big = vec![7u8; 2 << 20];
    let err = ctx
        .parallelize(vec![1u32, 2], 2)
        .map(func!(move |x| x + big.len() as u32))
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exceeds max allowed: ember.rpc.message.maxSize (1048576 bytes)"),
        "{err}"
    );
    assert!(
        err.contains(
            "Consider increasing ember.rpc.message.maxSize or using broadcast variables for large \
             values"
        ),
        "{err}"
    );
    assert!(
        err.starts_with("Job aborted due to stage failure: Serialized task "),
        "{err}"
    );
    assert_eq!(
        ctx.parallelize(vec![1u32, 2], 2).count().unwrap(),
        2,
        "the context stays usable"
    );
    // Spark's advice works: the same value as a broadcast travels outside the task.
    let big = ctx.broadcast(vec![7u8; 2 << 20]).unwrap();
    let out = ctx
        .parallelize(vec![1u32, 2], 2)
        .map(func!(move |x| x + big.value().len() as u32))
        .collect()
        .unwrap();
    assert_eq!(out, vec![1 + (2 << 20), 2 + (2 << 20)]);
    ctx.stop();
}

#[test]
fn results_between_the_direct_limit_and_max_result_size_come_through_the_block_manager() {
    let ctx = context(CLUSTER, &[("ember.task.maxDirectResultSize", "10k")]);
    let rows = ctx
        .parallelize((0..40_000u32).collect(), 2)
        .collect()
        .unwrap();
    assert_eq!(rows, (0..40_000u32).collect::<Vec<_>>());
    let st = ctx.status().metrics;
    assert!(
        st.result_size > 20 << 10,
        "each partition's result is above the 10k direct limit: {st:?}"
    );
    ctx.stop();
}

#[test]
fn results_above_max_result_size_fail_the_job_and_the_context_survives() {
    let ctx = context(CLUSTER, &[("ember.driver.maxResultSize", "64k")]);
    let err = ctx
        .parallelize((0..200_000u64).collect(), 2)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Total size of serialized results of")
            && err.contains("is bigger than ember.driver.maxResultSize (64.0 KiB)"),
        "{err}"
    );
    // Many small results that add up past the limit fail too.
    let err = ctx
        .parallelize((0..200_000u64).collect(), 40)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is bigger than ember.driver.maxResultSize"),
        "{err}"
    );
    assert_eq!(
        ctx.parallelize((0..10u64).collect(), 2)
            .collect()
            .unwrap()
            .len(),
        10
    );
    ctx.stop();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn standalone(secret: &str) -> (Context, SocketAddr) {
    let port = free_port();
    let ctx = context(
        &format!("ember://127.0.0.1:{port}"),
        &[
            ("ember.authenticate", "true"),
            ("ember.authenticate.secret", secret),
        ],
    );
    let addr = ctx.driver_address().expect("a cluster driver listens");
    (ctx, addr)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_executor_of_another_build_is_refused() {
    let (ctx, addr) = standalone("s3cret");
    let reason = runtime().block_on(async {
        let mut conn = Connection::<ToExecutor, ToDriver>::connect(
            addr,
            &ember::rpc::secret::Security::authenticated("s3cret"),
            1 << 20,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        conn.send(&ToDriver::RegisterExecutor {
            requested_id: None,
            host: "127.0.0.1".into(),
            cores: 1,
            memory_mb: 512,
            block_port: 1,
            build_id: "some-other-build".into(),
            pid: 1,
        })
        .await
        .unwrap();
        match conn.recv().await.unwrap() {
            ToExecutor::RegisterRejected { reason } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    });
    assert!(
        reason.contains("some-other-build") && reason.contains(&ember::util::build_id().unwrap()),
        "{reason}"
    );
    ctx.stop();
}

#[test]
fn clients_without_the_secret_and_garbage_are_refused_without_harm() {
    let (ctx, addr) = standalone("right-secret");
    let rt = runtime();
    let no_secret = rt.block_on(Connection::<ToExecutor, ToDriver>::connect(
        addr,
        &ember::rpc::secret::Security::none(),
        1 << 20,
        Duration::from_secs(30),
    ));
    assert!(no_secret.is_err(), "no secret must be refused");
    let wrong = rt.block_on(Connection::<ToExecutor, ToDriver>::connect(
        addr,
        &ember::rpc::secret::Security::authenticated("wrong"),
        1 << 20,
        Duration::from_secs(30),
    ));
    assert!(wrong.is_err(), "a wrong secret must be refused");
    // Garbage, and a frame header announcing 4 GiB.
    for junk in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xff; 4096],
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(&junk);
    }
    // An authenticated peer sending an oversized frame is cut off too.
    rt.block_on(async {
        let mut conn = Connection::<ToExecutor, ToDriver>::connect(
            addr,
            &ember::rpc::secret::Security::authenticated("right-secret"),
            1 << 30,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let _ = conn.send_bytes(&vec![0u8; 200 << 20]).await;
    });
    // The driver still accepts a real executor and runs a job.
    let mut exec = spawn_executor(addr, "right-secret");
    assert_eq!(
        ctx.parallelize((0..100u32).collect(), 4)
            .map(|x| (x % 3, 1u32))
            .reduce_by_key(|a, b| a + b, 2)
            .count()
            .unwrap(),
        3
    );
    ctx.stop();
    wait_exit(&mut exec);
}

fn spawn_executor(driver: SocketAddr, secret: &str) -> std::process::Child {
    // The application binary itself (here: this test binary) started in executor mode.
    Command::new(std::env::current_exe().unwrap())
        .args([
            "executor",
            "--driver",
            &driver.to_string(),
            "--cores",
            "1",
            "--memory",
            "512m",
        ])
        .env("EMBER_AUTH_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start an executor process")
}

fn wait_exit(child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
    let _ = child.kill();
    panic!(
        "executor process {} did not exit after its driver stopped",
        child.id()
    );
}

#[test]
fn executors_started_by_hand_join_a_standalone_driver_over_tcp() {
    let (ctx, addr) = standalone("team-secret");
    let mut executors = vec![
        spawn_executor(addr, "team-secret"),
        spawn_executor(addr, "team-secret"),
    ];
    let words = ctx.parallelize((0..2000u32).map(|i| format!("w{}", i % 37)).collect(), 6);
    let counts = words
        .map(|w| (w, 1u32))
        .reduce_by_key(|a, b| a + b, 3)
        .collect_as_map()
        .unwrap();
    assert_eq!(counts.len(), 37);
    assert_eq!(counts.values().sum::<u32>(), 2000);
    let joined = ctx
        .parallelize((0..500u32).map(|i| (i % 50, i)).collect(), 4)
        .join(
            ctx.parallelize((0..50u32).map(|i| (i, i * 2)).collect(), 2),
            3,
        )
        .count()
        .unwrap();
    assert_eq!(joined, 500);
    ctx.stop();
    for e in &mut executors {
        wait_exit(e);
    }
}

#[test]
fn listening_beyond_loopback_without_a_secret_is_refused() {
    let err = Context::new(EmberConf::new().set_master(format!("ember://0.0.0.0:{}", free_port())))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("ember.authenticate") && err.contains("without authentication"),
        "{err}"
    );
}

/// Run by `no_executor_outlives_a_killed_driver` in a child process: a local-cluster driver
/// that prints its executors' pids and then waits forever.
#[test]
#[ignore = "helper process for no_executor_outlives_a_killed_driver"]
fn driver_process_helper() {
    if std::env::var("EMBER_TEST_DRIVER_HELPER").is_err() {
        return;
    }
    let ctx = context(CLUSTER, &[]);
    assert_eq!(ctx.parallelize(vec![1, 2, 3], 2).count().unwrap(), 3);
    let pids: Vec<String> = ctx.executor_pids().iter().map(u32::to_string).collect();
    println!("EXECUTOR_PIDS {}", pids.join(" "));
    std::io::stdout().flush().unwrap();
    // Wait to be killed.
    let _ = ctx.range(0, i64::MAX, 1, 1).count();
}

#[test]
fn no_executor_outlives_a_killed_driver() {
    let mut driver = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cluster::driver_process_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EMBER_TEST_DRIVER_HELPER", "1")
        .env("EMBER_CONF", "ember.network.timeout=5s")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(driver.stdout.take().unwrap());
    let mut pids = Vec::new();
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0 {
        // The harness may print "test driver_process_helper ... " on the same line first.
        if let Some(at) = line.find("EXECUTOR_PIDS ") {
            pids = line[at + "EXECUTOR_PIDS ".len()..]
                .split_whitespace()
                .map(|p| p.parse::<u32>().unwrap())
                .collect();
            break;
        }
        line.clear();
    }
    assert_eq!(pids.len(), 2, "the helper driver reported its executors");
    driver.kill().unwrap(); // SIGKILL: no clean shutdown
    let _ = driver.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    while pids.iter().any(alive) {
        assert!(
            Instant::now() < deadline,
            "executors {pids:?} outlived their driver by more than ember.network.timeout"
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// Task binaries are sent once per executor and stage attempt, and dropped on both sides when
/// the stage attempt is over: 2,000 stages leave the caches as small as one job does.
#[test]
fn task_binaries_are_dropped_when_their_stage_is_done() {
    const JOBS: u64 = 1_000;
    const BOUND: usize = 8;
    let ctx = context(CLUSTER, &[("ember.executor.heartbeatInterval", "100ms")]);
    let (mut driver_peak, mut executor_peak) = (0, 0);
    for i in 0..JOBS {
        let sums = ctx
            .parallelize(vec![i, i + 1, i + 2, i + 3], 2)
            .map(|x| (x % 2, x))
            .reduce_by_key(|a, b| a + b, 2)
            .collect()
            .unwrap();
        assert_eq!(sums.iter().map(|(_, s)| s).sum::<u64>(), 4 * i + 6);
        let held = ctx.task_binaries().expect("a cluster master");
        driver_peak = driver_peak.max(held.driver);
        executor_peak = executor_peak.max(held.executors.values().copied().max().unwrap_or(0));
    }
    assert!(
        driver_peak <= BOUND,
        "the driver kept {driver_peak} task binaries"
    );
    assert!(
        executor_peak <= BOUND,
        "an executor kept {executor_peak} task binaries"
    );
    let held = ctx.task_binaries().unwrap();
    assert_eq!(held.driver, 0, "{held:?}");
    assert!(held.executors.values().all(|n| *n == 0), "{held:?}");
    // What the executor processes themselves report (with heartbeats): they held binaries, never
    // many, and hold none once every stage is over.
    let settled = ctx.wait_for_status(Duration::from_secs(30), |st| {
        st.executor_metrics.len() == 2
            && st
                .executor_metrics
                .values()
                .all(|m| m.task_binaries == 0 && m.task_binaries_peak > 0)
    });
    let reported = ctx.status().executor_metrics;
    assert!(settled, "{reported:?}");
    for (id, m) in &reported {
        assert!(
            m.task_binaries_peak <= BOUND as u64,
            "executor {id} held {} task binaries at once",
            m.task_binaries_peak
        );
    }
    ctx.stop();
}
