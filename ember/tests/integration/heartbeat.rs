//! Executor liveness: heartbeats keep an executor registered; silence past the executor timeout
//! (`ember.network.executorTimeout`, else `ember.network.timeout`), seen at the next check every
//! `ember.network.timeoutInterval`, gets it declared lost; an executor whose block manager the
//! driver does not know registers it again and keeps running.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::sync::{Arc, Condvar, Mutex};

use crate::common::context;
use ember::listener::events::ExecutorRemoved;
use ember::listener::Listener;
use ember::rpc::connection::Connection;
use ember::rpc::messages::{ToDriver, ToExecutor};

const SECRET: &str = "hb-secret";

fn standalone() -> ember::context::Context {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    context(
        &format!("ember://127.0.0.1:{port}"),
        &[
            ("ember.authenticate", "true"),
            ("ember.authenticate.secret", SECRET),
            ("ember.network.timeout", "1s"),
            ("ember.network.timeoutInterval", "200ms"),
            ("ember.executor.heartbeatInterval", "100ms"),
        ],
    )
}

/// The reasons of executor losses, as listeners see them.
#[derive(Clone, Default)]
struct Losses(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Listener for Losses {
    fn on_executor_removed(&mut self, e: &ExecutorRemoved) {
        self.0 .0.lock().unwrap().push(e.reason.clone());
        self.0 .1.notify_all();
    }
}

impl Losses {
    fn wait_for_one(&self) -> String {
        let (lock, cv) = &*self.0;
        let (g, _) = cv
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(30), |v| {
                v.is_empty()
            })
            .unwrap();
        g.first().cloned().expect("no executor was declared lost")
    }
}

#[test]
fn a_silent_executor_is_declared_lost_after_the_network_timeout() {
    let ctx = standalone();
    let losses = Losses::default();
    ctx.add_listener(losses.clone()).unwrap();
    let addr = ctx.driver_address().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A peer that registers properly, then never sends a heartbeat but keeps its connection.
    let mut conn = rt.block_on(async {
        let mut conn = Connection::<ToExecutor, ToDriver>::connect(
            addr,
            &ember::rpc::secret::Security::authenticated(SECRET),
            1 << 20,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        conn.send(&ToDriver::RegisterExecutor {
            requested_id: Some("silent".into()),
            host: "127.0.0.1".into(),
            cores: 1,
            memory_mb: 512,
            block_port: 1,
            build_id: ember::util::build_id().unwrap(),
            pid: 1,
        })
        .await
        .unwrap();
        assert!(matches!(
            conn.recv().await.unwrap(),
            ToExecutor::RegisteredExecutor { .. }
        ));
        conn
    });
    assert!(
        ctx.wait_for_status(Duration::from_secs(30), |s| s.executors_lost == 1),
        "the silent executor was not declared lost: {:?}",
        ctx.status()
    );
    // The driver also told it to stop.
    let stop = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), conn.recv()).await {
                Ok(Ok(ToExecutor::StopExecutor)) => break true,
                Ok(Ok(_)) => continue,
                _ => break false,
            }
        }
    });
    assert!(stop, "a timed-out executor is told to stop");
    // Spark's reason names how long the executor was really silent, which the periodic check
    // sees past the 1 s timeout (not the timeout itself).
    let reason = losses.wait_for_one();
    let silent: u64 = reason
        .strip_prefix("Executor heartbeat timed out after ")
        .and_then(|r| r.strip_suffix(" ms"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("unexpected loss reason {reason:?}"));
    assert!(silent > 1000, "{reason}");
    ctx.stop();
}

#[test]
fn heartbeats_keep_a_live_executor_registered() {
    let ctx = standalone();
    let addr = ctx.driver_address().unwrap();
    let mut exec = Command::new(std::env::current_exe().unwrap())
        .args(["executor", "--driver", &addr.to_string(), "--cores", "1"])
        .env("EMBER_AUTH_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Twenty heartbeats at 100 ms span twice the 1 s timeout.
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.heartbeats >= 20),
        "no heartbeats: {:?}",
        ctx.status()
    );
    assert_eq!(
        ctx.status().executors_lost,
        0,
        "a heartbeating executor must not expire"
    );
    use ember::prelude::*;
    assert_eq!(
        ctx.parallelize((0..100u32).collect(), 4)
            .map(|x| (x % 7, x))
            .reduce_by_key(|a, b| a + b, 2)
            .count()
            .unwrap(),
        7
    );
    ctx.stop();
    let _ = exec.wait();
}

/// The executor source (`threadpool.*`, `filesystem.file.*`) of every executor is readable from
/// the driver: directly in local mode, from heartbeats in cluster mode.
#[test]
fn executor_metrics_reach_the_driver() {
    use ember::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    let text: String = (0..2000).map(|i| format!("k{} v\n", i % 50)).collect();
    std::fs::write(&path, &text).unwrap();
    let job = |ctx: &Context| {
        ctx.text_file(path.to_str().unwrap(), 2)
            .unwrap()
            .map(|l: String| (l, 1u32))
            .reduce_by_key(|a, b| a + b, 2)
            .count()
            .unwrap()
    };

    let ctx = context("local[2]", &[]);
    assert_eq!(job(&ctx), 50);
    let m = ctx.executor_metrics();
    let d = m["driver"];
    assert_eq!(d.max_pool_size, 2);
    assert_eq!(d.complete_tasks, 4, "2 map and 2 reduce tasks");
    assert_eq!(d.active_tasks, 0);
    assert!(d.file_read_bytes >= text.len() as u64, "{d:?}");
    // 2 input splits, then 2 reducers × 2 map outputs × (index + data).
    assert_eq!(d.file_read_ops, 2 + 8, "{d:?}");
    assert!(
        d.file_write_ops >= 4 && d.file_write_bytes > 0,
        "each map task writes a data and an index file: {d:?}"
    );
    ctx.stop();

    let ctx = context(
        "local-cluster[2,1,1024]",
        &[("ember.executor.heartbeatInterval", "50ms")],
    );
    assert_eq!(job(&ctx), 50);
    let done = ctx.wait_for_status(Duration::from_secs(30), |st| {
        st.executor_metrics.len() == 2
            && st
                .executor_metrics
                .values()
                .map(|m| m.complete_tasks)
                .sum::<u64>()
                == 4
    });
    assert!(
        done,
        "heartbeats carry every executor's metrics: {:?}",
        ctx.status().executor_metrics
    );
    let all = ctx.executor_metrics();
    for (id, m) in &all {
        assert_eq!(m.max_pool_size, 1, "executor {id}");
        // Task threads start as tasks need them (Spark's cached pool): one, if it ran any.
        assert_eq!(
            m.current_pool_size,
            u64::from(m.complete_tasks > 0),
            "executor {id}"
        );
        let g = m.gauges();
        assert_eq!(g[0].0, "threadpool.activeTasks");
    }
    let read: u64 = all.values().map(|m| m.file_read_bytes).sum();
    assert!(read >= text.len() as u64, "{all:?}");
    ctx.stop();
}

/// Spark's executor, told on a heartbeat to re-register (the driver does not know its block
/// manager), registers its block manager again with every block it holds and keeps running: it
/// stays the same registered executor, its cached blocks are known again, and it runs tasks.
#[test]
fn an_executor_told_to_reregister_reports_its_blocks_and_keeps_running() {
    use ember::prelude::*;
    let ctx = context(
        "local-cluster[1,1,1024]",
        &[("ember.executor.heartbeatInterval", "100ms")],
    );
    let computed = ctx.long_accumulator("computed");
    let rdd = ctx
        .parallelize((0..100i64).collect(), 2)
        .map(func!(|x: i64| {
            computed.add(1);
            x * 2
        }))
        .cache();
    assert_eq!(rdd.count().unwrap(), 100);
    assert_eq!(computed.value(), 100);
    let before = ctx.executor_infos();
    assert_eq!(before.len(), 1);
    let id = before[0].executor_id.clone();
    assert!(
        ctx.wait_for_storage(Duration::from_secs(30), |s| s
            .iter()
            .any(|e| e.executor_id == id && e.blocks == 2)),
        "both partitions are cached: {:?}",
        ctx.executor_storage_status()
    );

    ctx.forget_block_manager(&id);
    assert_eq!(
        ctx.rdd_storage_info(rdd.id()).0,
        0,
        "the driver forgot the blocks"
    );
    assert!(
        ctx.wait_for_storage(Duration::from_secs(30), |s| s
            .iter()
            .any(|e| e.executor_id == id && e.blocks == 2)),
        "the executor did not register its block manager again: {:?}",
        ctx.executor_storage_status()
    );
    assert_eq!(ctx.rdd_storage_info(rdd.id()).0, 2);
    let after = ctx.executor_infos();
    assert_eq!(
        after
            .iter()
            .map(|e| (&e.executor_id, e.pid))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|e| (&e.executor_id, e.pid))
            .collect::<Vec<_>>(),
        "the same executor process, still registered"
    );
    assert_eq!(ctx.status().executors_lost, 0);
    // Still usable, and its cache with it: nothing is computed again.
    assert_eq!(rdd.count().unwrap(), 100);
    assert_eq!(computed.value(), 100);
    assert_eq!(ctx.status().executors_lost, 0);
    ctx.stop();
}
