//! Executor liveness: heartbeats keep an executor registered; silence past
//! `ember.network.timeout` gets it declared lost.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::context;
use ember::rpc::connection::Connection;
use ember::rpc::messages::{ToDriver, ToExecutor};

const SECRET: &str = "hb-secret";

fn standalone() -> ember::context::Context {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    context(
        &format!("ember://127.0.0.1:{port}"),
        &[
            ("ember.authenticate", "true"),
            ("ember.authenticate.secret", SECRET),
            ("ember.network.timeout", "1s"),
            ("ember.executor.heartbeatInterval", "100ms"),
        ],
    )
}

#[test]
fn a_silent_executor_is_declared_lost_after_the_network_timeout() {
    let ctx = standalone();
    let addr = ctx.driver_address().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A peer that registers properly, then never sends a heartbeat but keeps its connection.
    let mut conn = rt.block_on(async {
        let mut conn = Connection::<ToExecutor, ToDriver>::connect(addr, Some(SECRET.as_bytes()), 1 << 20, Duration::from_secs(30)).await.unwrap();
        conn.send(&ToDriver::RegisterExecutor {
            requested_id: Some("silent".into()),
            host: "127.0.0.1".into(),
            cores: 1,
            memory_mb: 512,
            block_port: 1,
            build_id: ember::util::build_id(),
            pid: 1,
        })
        .await
        .unwrap();
        assert!(matches!(conn.recv().await.unwrap(), ToExecutor::RegisteredExecutor { .. }));
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
    assert!(ctx.wait_for_status(Duration::from_secs(60), |s| s.heartbeats >= 20), "no heartbeats: {:?}", ctx.status());
    assert_eq!(ctx.status().executors_lost, 0, "a heartbeating executor must not expire");
    use ember::prelude::*;
    assert_eq!(ctx.parallelize((0..100u32).collect(), 4).map(|x| (x % 7, x)).reduce_by_key(|a, b| a + b, 2).count().unwrap(), 7);
    ctx.stop();
    let _ = exec.wait();
}
