//! Who may talk to a cluster and what crosses the wire (issue #13): frames after the handshake are
//! authenticated (and encrypted), both sides check build ids, executors keep their secret from
//! user code.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::context;
use ember::prelude::*;
use ember::rpc::block_client::BlockClient;
use ember::rpc::connection::Connection;
use ember::rpc::messages::{ToDriver, ToExecutor};
use ember::rpc::protocol::BlockRequest;
use ember::rpc::seal::{FrameOpener, FrameSealer};
use ember::rpc::secret::Security;
use ember::rpc::{auth, frame};

const T: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A driver of an `ember://` master on loopback that executors join by hand.
fn standalone(secret: &str, extra: &[(&str, &str)]) -> (Context, SocketAddr) {
    let master = format!("ember://127.0.0.1:{}", free_port());
    let mut conf = vec![
        ("ember.authenticate", "true"),
        ("ember.authenticate.secret", secret),
    ];
    conf.extend_from_slice(extra);
    let ctx = context(&master, &conf);
    let addr = ctx.driver_address().expect("a cluster driver listens");
    (ctx, addr)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// This test binary started as an executor of the driver at `driver`.
fn executor_process(driver: SocketAddr, secret: &str, extra: &[&str]) -> std::process::Child {
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
        .args(extra)
        .env("EMBER_AUTH_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start an executor process")
}

/// Waits for `child` to exit; returns whether it succeeded and what it wrote to stderr.
fn wait_exit(child: &mut std::process::Child) -> (bool, String) {
    let deadline = Instant::now() + T;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("executor process {} did not exit", child.id());
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

fn register(id: &str) -> Vec<u8> {
    frame::encode(&ToDriver::RegisterExecutor {
        requested_id: Some(id.into()),
        host: "127.0.0.1".into(),
        cores: 1,
        memory_mb: 512,
        block_port: 1,
        build_id: ember::util::build_id().unwrap(),
        pid: 1,
    })
    .unwrap()
}

/// A raw TCP peer that completed the handshake with the secret: it holds the connection's keys and
/// writes whatever bytes it likes.
async fn raw_peer(
    addr: SocketAddr,
    secret: &str,
) -> (tokio::net::TcpStream, FrameSealer, FrameOpener) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let keys = auth::client_handshake(&mut s, &Security::authenticated(secret), T)
        .await
        .unwrap()
        .expect("an authenticated handshake gives keys");
    let (sealer, opener) = keys.into_pair(1 << 20);
    (s, sealer, opener)
}

fn sealed(sealer: &mut FrameSealer, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sealer.seal(payload, &mut out).unwrap();
    out
}

/// Reads until the driver closes the connection; fails if it does not within `T`.
async fn cut_off(s: &mut tokio::net::TcpStream) {
    let mut sink = Vec::new();
    match tokio::time::timeout(T, s.read_to_end(&mut sink)).await {
        Ok(_) => {}
        Err(_) => panic!("the driver kept the connection open"),
    }
}

#[test]
fn a_peer_that_injects_flips_reorders_or_replays_frames_is_cut_off_and_not_acted_on() {
    let (ctx, addr) = standalone("k", &[]);
    let rt = runtime();
    let added = || ctx.status().executors_added;
    rt.block_on(async {
        // Injected: a frame in the old, unprotected format, right after the handshake.
        let (mut s, _, _) = raw_peer(addr, "k").await;
        let payload = register("injected");
        let mut plain = (payload.len() as u32).to_le_bytes().to_vec();
        plain.extend_from_slice(&payload);
        // More bytes behind it, so the driver has a whole frame's worth to judge.
        plain.extend_from_slice(&[0u8; 64]);
        s.write_all(&plain).await.unwrap();
        cut_off(&mut s).await;

        // One bit flipped in a sealed frame: the length's top bit, the kind, the body, the tag.
        for bit in [
            3 * 8 + 7,
            4 * 8,
            5 * 8 + 3,
            20 * 8,
            (payload.len() + 5) * 8 + 7,
        ] {
            let (mut s, mut sealer, _) = raw_peer(addr, "k").await;
            let mut f = sealed(&mut sealer, &register("flipped"));
            f[bit / 8] ^= 1 << (bit % 8);
            s.write_all(&f).await.unwrap();
            cut_off(&mut s).await;
        }

        // Reordered: the second frame first.
        let (mut s, mut sealer, _) = raw_peer(addr, "k").await;
        let (first, second) = (
            sealed(&mut sealer, &register("first")),
            sealed(&mut sealer, &register("second")),
        );
        s.write_all(&second).await.unwrap();
        s.write_all(&first).await.unwrap();
        cut_off(&mut s).await;

        // Replayed into another connection: a valid frame recorded on one connection.
        let (_keep, mut sealer, _) = raw_peer(addr, "k").await;
        let recorded = sealed(&mut sealer, &register("recorded"));
        let (mut s, _, _) = raw_peer(addr, "k").await;
        s.write_all(&recorded).await.unwrap();
        cut_off(&mut s).await;
    });
    assert_eq!(added(), 0, "nothing a tampering peer sent was acted on");

    // The same peer, sealing correctly, is served: the refusals above were the frames'.
    rt.block_on(async {
        let (mut s, mut sealer, mut opener) = raw_peer(addr, "k").await;
        let f = sealed(&mut sealer, &register("honest"));
        s.write_all(&f).await.unwrap();
        let mut buf = Vec::new();
        let n = tokio::time::timeout(
            T,
            ember::rpc::seal::io::read_frame_into(&mut s, &mut opener, &mut buf),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(n.is_some());
        let reply: ToExecutor = frame::decode(&buf).unwrap();
        assert!(
            matches!(reply, ToExecutor::RegisteredExecutor { .. }),
            "{reply:?}"
        );
        // Replayed within the connection: the registration again, byte for byte.
        s.write_all(&f).await.unwrap();
        cut_off(&mut s).await;
    });
    assert!(
        ctx.wait_for_status(T, |st| st.executors_lost == 1),
        "the replaying peer was dropped"
    );
    assert_eq!(added(), 1, "only the honest registration was acted on");
    ctx.stop();
}

#[test]
fn an_unknown_build_id_is_refused_even_when_both_sides_claim_it() {
    let (ctx, addr) = standalone("k", &[("ember.testing.buildId", "unknown")]);
    let rt = runtime();
    let reason = rt.block_on(async {
        let mut conn = Connection::<ToExecutor, ToDriver>::connect(
            addr,
            &Security::authenticated("k"),
            1 << 20,
            T,
        )
        .await
        .unwrap();
        conn.send(&ToDriver::RegisterExecutor {
            requested_id: None,
            host: "127.0.0.1".into(),
            cores: 1,
            memory_mb: 512,
            block_port: 1,
            build_id: "unknown".into(),
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
        reason.contains("\"unknown\" is not a build id") && reason.contains("build-id"),
        "{reason}"
    );
    assert_eq!(ctx.status().executors_added, 0);
    ctx.stop();
}

/// A driver that registers one executor by hand, answering with `driver_build`.
#[test]
fn an_executor_refuses_a_driver_of_another_build_and_its_block_server_refuses_strangers() {
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut exec = executor_process(addr, "k", &[]);
    let (mut conn, block_port, build_id) = rt.block_on(async {
        let (stream, _) = tokio::time::timeout(T, listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut conn = Connection::<ToDriver, ToExecutor>::accept(
            stream,
            &Security::authenticated("k"),
            1 << 20,
            T,
        )
        .await
        .unwrap();
        match conn.recv().await.unwrap() {
            ToDriver::RegisterExecutor {
                block_port,
                build_id,
                ..
            } => (conn, block_port, build_id),
            other => panic!("expected a registration, got {other:?}"),
        }
    });
    assert_eq!(Some(build_id), ember::util::build_id());

    // The executor's block server: nothing for a peer without the secret or with another one.
    let block_addr: SocketAddr = ([127, 0, 0, 1], block_port).into();
    let req = BlockRequest::Stored {
        block_id: "rdd_0_0".into(),
    };
    for stranger in [
        Security::none(),
        Security::authenticated("guess"),
        Security::encrypted("k"),
    ] {
        let client = BlockClient::new(rt.handle().clone(), stranger.clone(), 1 << 20, T);
        let got = client.fetch(block_addr, req.clone());
        assert!(got.is_err(), "{stranger:?} got {got:?}");
    }
    let client = BlockClient::new(
        rt.handle().clone(),
        Security::authenticated("k"),
        1 << 20,
        T,
    );
    assert!(
        client.fetch(block_addr, req).is_ok(),
        "the application itself is served"
    );

    rt.block_on(async {
        conn.send(&ToExecutor::RegisteredExecutor {
            executor_id: "0".into(),
            conf: Vec::new(),
            build_id: "0badb17d".into(),
        })
        .await
        .unwrap();
        // The executor hangs up instead of waiting for tasks.
        assert!(tokio::time::timeout(T, conn.recv()).await.unwrap().is_err());
    });
    let (ok, err) = wait_exit(&mut exec);
    assert!(!ok && err.contains("runs build 0badb17d"), "{err}");
    // Its scratch directory went with it.
    let pid = exec.id();
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("ember-executor-{pid}-"))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn task_children_inherit_neither_executor_mode_nor_the_secret_and_sigpipe_is_ignored() {
    let ctx = context("local-cluster[2,1,1024]", &[]);
    let seen = ctx
        .parallelize(vec![0u32; 4], 2)
        .map(|_| {
            let args = std::env::var("EMBER_EXECUTOR_ARGS").is_ok();
            let secret = std::env::var("EMBER_AUTH_SECRET").is_ok();
            // A program the task starts: this very binary. Were it an executor, it would not
            // list the tests (and would join the driver); only asked when the variables are gone.
            let child_is_a_program = !args
                && std::process::Command::new("/proc/self/exe")
                    .args(["--list", "security::"])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map(|o| {
                        o.status.success()
                            && String::from_utf8_lossy(&o.stdout).contains("security::")
                    })
                    .unwrap_or(false);
            // SIGPIPE ignored, as std's start-up does for `main` (bit 13 - 1 of SigIgn).
            let sigpipe_ignored = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|st| {
                    st.lines().find_map(|l| {
                        l.strip_prefix("SigIgn:")
                            .map(|m| u64::from_str_radix(m.trim(), 16).unwrap_or(0))
                    })
                })
                .is_some_and(|mask| mask & (1 << 12) != 0);
            (args, secret, child_is_a_program, sigpipe_ignored)
        })
        .collect()
        .unwrap();
    assert_eq!(seen, vec![(false, false, true, true); 4]);
    assert_eq!(
        ctx.executor_pids().len(),
        2,
        "no child joined as an executor"
    );
    ctx.stop();
}

/// A relay between executors and their driver that records every byte in both directions.
fn recording_relay(driver: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let capture = Arc::new(Mutex::new(Vec::new()));
    let cap = capture.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = std::net::TcpStream::connect(driver) else {
                return;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let cap = cap.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        cap.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (addr, capture)
}

/// Word count over a relay that records the traffic; returns whether any word showed in it.
fn word_count_through_a_relay(encrypt: bool) -> bool {
    let crypto = encrypt.to_string();
    let (ctx, driver) = standalone("k", &[("ember.network.crypto.enabled", &crypto)]);
    let (relay, capture) = recording_relay(driver);
    let flag = format!("ember.network.crypto.enabled={crypto}");
    let mut exec = executor_process(relay, "k", &["--conf", &flag]);
    let words = ["xylophonist", "quokkalike", "zebrafinch", "marzipanic"];
    let corpus: Vec<String> = (0..400).map(|i| words[i % 4].to_string()).collect();
    let counts = ctx
        .parallelize(corpus, 4)
        .map(|w| (w, 1u32))
        .reduce_by_key(|a, b| a + b, 2)
        .collect_as_map()
        .unwrap();
    assert_eq!(counts.len(), 4);
    assert!(counts.values().all(|&n| n == 100), "{counts:?}");
    ctx.stop();
    let (ok, err) = wait_exit(&mut exec);
    assert!(ok, "{err}");
    let bytes = capture.lock().unwrap().clone();
    assert!(
        bytes.len() > 1000,
        "the relay carried the cluster's traffic"
    );
    words
        .iter()
        .any(|w| bytes.windows(w.len()).any(|x| x == w.as_bytes()))
}

#[test]
fn an_encrypted_cluster_counts_words_exactly_and_the_wire_shows_none_of_them() {
    assert!(
        word_count_through_a_relay(false),
        "the control: authenticated-only frames show the words, so the capture works"
    );
    assert!(
        !word_count_through_a_relay(true),
        "with ember.network.crypto.enabled no word crosses the wire in clear"
    );
}
