//! Tests of block transfer: a real server and client on loopback.

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::block_client::BlockClient;
use crate::block_server::{BlockServer, BlockStore, ShuffleBlock};
use crate::connection::Connection;
use crate::protocol::{BlockRequest, BlockResponse, ResponseHeader};
use crate::secret::Security;
use crate::RpcError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A block store in memory.
#[derive(Default)]
struct MemStore(Mutex<HashMap<String, Vec<u8>>>);

impl BlockStore for MemStore {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(id).cloned()
    }
    fn remove(&self, id: &str) -> bool {
        self.0.lock().unwrap().remove(id).is_some()
    }
}

fn store_with(blocks: &[(&str, Vec<u8>)]) -> Arc<MemStore> {
    let s = MemStore::default();
    for (id, b) in blocks {
        s.0.lock().unwrap().insert(id.to_string(), b.clone());
    }
    Arc::new(s)
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Shuffle blocks kept as one file each (`ember` keeps them in data + index files; the
/// server only streams what the store opens).
struct BlockFiles(PathBuf);

impl BlockStore for BlockFiles {
    fn get_bytes(&self, _id: &str) -> Option<Vec<u8>> {
        None
    }
    fn remove(&self, _id: &str) -> bool {
        false
    }
    fn open_shuffle_block(
        &self,
        shuffle_id: usize,
        map_id: u64,
        reduce_id: usize,
    ) -> Result<ShuffleBlock, String> {
        let path = self.0.join(format!("{shuffle_id}_{map_id}_{reduce_id}"));
        let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        Ok(ShuffleBlock { file, len })
    }
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn streams_shuffle_blocks_from_the_store_in_chunks() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let blocks = [b"first".to_vec(), Vec::new(), bytes(1000, 3)];
    for (reduce_id, b) in blocks.iter().enumerate() {
        std::fs::write(dir.path().join(format!("4_1_{reduce_id}")), b).unwrap();
    }
    let max_frame = 64; // the third block travels as 16 chunks
    let store = Arc::new(BlockFiles(dir.path().to_path_buf()));
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::authenticated("k"),
        max_frame,
        store,
    )
    .unwrap();
    let client = BlockClient::new(
        rt.handle().clone(),
        Security::authenticated("k"),
        max_frame,
        T,
    );
    for (reduce_id, expected) in blocks.iter().enumerate() {
        let got = client
            .fetch(
                addr,
                BlockRequest::Shuffle {
                    shuffle_id: 4,
                    map_id: 1,
                    reduce_id,
                },
            )
            .unwrap();
        assert_eq!(got, BlockResponse::Data(expected.clone()));
    }
    // What the store cannot open is not found, with the store's reason.
    let missing = client
        .fetch(
            addr,
            BlockRequest::Shuffle {
                shuffle_id: 4,
                map_id: 9,
                reduce_id: 0,
            },
        )
        .unwrap();
    assert!(
        matches!(
            missing,
            BlockResponse::NotFound(ref m) if m.contains("shuffle_4_9_0") && m.contains("4_9_0")
        ),
        "{missing:?}"
    );
    // A store without shuffle outputs says so.
    let (_plain, plain_addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::none(),
        max_frame,
        store_with(&[]),
    )
    .unwrap();
    let plain = BlockClient::new(rt.handle().clone(), Security::none(), max_frame, T);
    let none = plain
        .fetch(
            plain_addr,
            BlockRequest::Shuffle {
                shuffle_id: 0,
                map_id: 0,
                reduce_id: 0,
            },
        )
        .unwrap();
    assert!(matches!(none, BlockResponse::NotFound(_)), "{none:?}");
}

#[test]
fn serves_and_removes_stored_blocks() {
    let rt = runtime();
    let big = bytes(5000, 9);
    let store = store_with(&[
        ("rdd_1_0", b"cached".to_vec()),
        ("taskresult_7", big.clone()),
    ]);
    let (server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::none(),
        100,
        store,
    )
    .unwrap();
    assert_eq!(server.local_addr(), addr);
    let client = BlockClient::new(rt.handle().clone(), Security::none(), 100, T);
    let get = |id: &str| {
        client
            .fetch(
                addr,
                BlockRequest::Stored {
                    block_id: id.into(),
                },
            )
            .unwrap()
    };
    assert_eq!(get("rdd_1_0"), BlockResponse::Data(b"cached".to_vec()));
    assert_eq!(get("taskresult_7"), BlockResponse::Data(big));
    assert!(matches!(get("rdd_2_0"), BlockResponse::NotFound(ref m) if m.contains("rdd_2_0")));
    let remove = |id: &str| {
        client
            .fetch(
                addr,
                BlockRequest::Remove {
                    block_id: id.into(),
                },
            )
            .unwrap()
    };
    assert_eq!(remove("rdd_1_0"), BlockResponse::Removed(true));
    assert_eq!(remove("rdd_1_0"), BlockResponse::Removed(false));
    assert!(matches!(get("rdd_1_0"), BlockResponse::NotFound(_)));
    // A request too large for a frame fails alone; the connection goes on.
    let huge = client.fetch(
        addr,
        BlockRequest::Stored {
            block_id: "x".repeat(500),
        },
    );
    assert!(
        matches!(huge, Err(RpcError::FrameTooLarge { .. })),
        "{huge:?}"
    );
    assert!(matches!(get("taskresult_7"), BlockResponse::Data(_)));
}

#[test]
fn authentication_is_enforced() {
    let rt = runtime();
    let store = store_with(&[("b", b"secret data".to_vec())]);
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::authenticated("right"),
        1024,
        store,
    )
    .unwrap();
    let req = BlockRequest::Stored {
        block_id: "b".into(),
    };
    for secret in [Security::authenticated("wrong"), Security::none()] {
        let client = BlockClient::new(rt.handle().clone(), secret, 1024, T);
        assert!(matches!(
            client.fetch(addr, req.clone()),
            Err(RpcError::AuthFailed(_))
        ));
    }
    let client = BlockClient::new(
        rt.handle().clone(),
        Security::authenticated("right"),
        1024,
        T,
    );
    assert_eq!(
        client.fetch(addr, req.clone()).unwrap(),
        BlockResponse::Data(b"secret data".to_vec())
    );
    // A client refuses a server that does not know the secret (mutual authentication).
    let (_rogue, rogue_addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::authenticated("guess"),
        1024,
        store_with(&[]),
    )
    .unwrap();
    assert!(matches!(
        client.fetch(rogue_addr, req),
        Err(RpcError::AuthFailed(_))
    ));
}

#[test]
fn garbage_closes_one_connection_and_the_server_goes_on() {
    use rand::{RngCore, SeedableRng};
    let rt = runtime();
    let store = store_with(&[("b", b"ok".to_vec())]);
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::authenticated("k"),
        1024,
        store,
    )
    .unwrap();
    let mut junk = vec![0u8; 4096];
    rand::rngs::SmallRng::seed_from_u64(7).fill_bytes(&mut junk);
    rt.block_on(async {
        // Random bytes instead of a handshake: the server hangs up.
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = raw.write_all(&junk).await;
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(T, raw.read_to_end(&mut sink)).await;
        assert!(
            closed.is_ok(),
            "the server must close a connection that sends garbage"
        );
        // Random bytes after a valid handshake: same.
        let mut c = Connection::<ResponseHeader, BlockRequest>::connect(
            addr,
            &Security::authenticated("k"),
            1024,
            T,
        )
        .await
        .unwrap();
        c.send_bytes(&junk[..1000]).await.unwrap();
        let r = tokio::time::timeout(T, c.recv()).await.unwrap();
        assert!(
            matches!(r, Err(RpcError::Closed) | Err(RpcError::Io(_))),
            "{r:?}"
        );
    });
    let client = BlockClient::new(rt.handle().clone(), Security::authenticated("k"), 1024, T);
    assert_eq!(
        client
            .fetch(
                addr,
                BlockRequest::Stored {
                    block_id: "b".into()
                }
            )
            .unwrap(),
        BlockResponse::Data(b"ok".to_vec())
    );
}

#[test]
fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let rt = runtime();
    let (_server, addr) = BlockServer::start_with_timeout(
        rt.handle().clone(),
        localhost(),
        Security::none(),
        1024,
        store_with(&[]),
        Duration::from_millis(200),
    )
    .unwrap();
    rt.block_on(async {
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut sink = Vec::new();
        // The server's hello arrives, then the close when our silence times out.
        let r = tokio::time::timeout(T, raw.read_to_end(&mut sink)).await;
        assert!(r.is_ok(), "the server must drop a silent client");
    });
}

#[test]
fn a_server_restart_is_survived_by_the_cached_connection() {
    let rt = runtime();
    let store = store_with(&[("b", b"x".to_vec())]);
    let (server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::none(),
        1024,
        store.clone(),
    )
    .unwrap();
    let client = BlockClient::new(rt.handle().clone(), Security::none(), 1024, T);
    let req = BlockRequest::Stored {
        block_id: "b".into(),
    };
    assert!(client.fetch(addr, req.clone()).is_ok());
    rt.block_on(server.shutdown());
    let (_server, _) =
        BlockServer::start(rt.handle().clone(), addr, Security::none(), 1024, store).unwrap();
    assert_eq!(
        client.fetch(addr, req).unwrap(),
        BlockResponse::Data(b"x".to_vec())
    );
}

/// A store that measures how many bytes it serves at once, and can hold requests until a
/// given number are inside it together (to prove the client overlaps requests).
struct CountingStore {
    blocks: HashMap<String, Vec<u8>>,
    together: usize,
    state: Mutex<(u64, u64, usize)>, // (active bytes, peak active bytes, arrivals)
    arrived: Condvar,
}

impl BlockStore for CountingStore {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        let block = self.blocks.get(id)?.clone();
        let size = block.len() as u64;
        let mut s = self.state.lock().unwrap();
        s.0 += size;
        s.1 = s.1.max(s.0);
        s.2 += 1;
        // Arrival t waits for the rest of its group of `together`; bounded wait, no hang.
        let group_end = (s.2 - 1) / self.together * self.together + self.together;
        self.arrived.notify_all();
        let (mut s, _) = self
            .arrived
            .wait_timeout_while(s, T, |s| s.2 < group_end)
            .unwrap();
        s.0 -= size;
        Some(block)
    }
    fn remove(&self, _: &str) -> bool {
        false
    }
}

fn fetch_many_case(limit: u64, together: usize) -> (u64, u64) {
    let rt = runtime();
    let blocks: HashMap<String, Vec<u8>> = (0..8)
        .map(|i| (format!("b{i}"), bytes(100, i as u8)))
        .collect();
    let store = Arc::new(CountingStore {
        blocks: blocks.clone(),
        together,
        state: Mutex::new((0, 0, 0)),
        arrived: Condvar::new(),
    });
    let start = |s: Arc<CountingStore>| {
        BlockServer::start(rt.handle().clone(), localhost(), Security::none(), 32, s).unwrap()
    };
    let (server_a, a) = start(store.clone());
    let (server_b, b) = start(store.clone());
    let client = BlockClient::new(rt.handle().clone(), Security::none(), 32, T);
    let reqs: Vec<_> = (0..8)
        .map(|i| {
            (
                if i % 2 == 0 { a } else { b },
                BlockRequest::Stored {
                    block_id: format!("b{i}"),
                },
                100,
            )
        })
        .collect();
    let mut it = client.fetch_many(reqs, limit);
    let mut seen = [false; 8];
    for r in it.by_ref() {
        let (i, data) = r.unwrap();
        assert!(!seen[i], "index {i} answered twice");
        seen[i] = true;
        assert_eq!(data, blocks[&format!("b{i}")]);
    }
    assert!(seen.iter().all(|s| *s));
    drop((server_a, server_b));
    let peak_server = store.state.lock().unwrap().1;
    (it.peak_bytes_in_flight(), peak_server)
}

#[test]
fn fetch_many_keeps_bytes_in_flight_under_the_limit() {
    // Room for two blocks: both servers work at once (the store waits for pairs), never three.
    let (client_peak, server_peak) = fetch_many_case(250, 2);
    assert_eq!((client_peak, server_peak), (200, 200));
    // A limit below one block still completes, one block at a time.
    let (client_peak, server_peak) = fetch_many_case(50, 1);
    assert_eq!((client_peak, server_peak), (100, 100));
}

#[test]
fn fetch_many_reports_failures_with_their_index() {
    let rt = runtime();
    let store = store_with(&[("b", b"ok".to_vec())]);
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::none(),
        1024,
        store,
    )
    .unwrap();
    // A port with no server behind it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = BlockClient::new(rt.handle().clone(), Security::none(), 1024, T);
    let reqs = vec![
        (
            addr,
            BlockRequest::Stored {
                block_id: "b".into(),
            },
            2,
        ),
        (
            addr,
            BlockRequest::Stored {
                block_id: "gone".into(),
            },
            2,
        ),
        (
            dead,
            BlockRequest::Stored {
                block_id: "b".into(),
            },
            2,
        ),
    ];
    let mut results: Vec<_> = client.fetch_many(reqs, 1 << 20).collect();
    results.sort_by_key(|r| match r {
        Ok((i, _)) | Err((i, _)) => *i,
    });
    assert_eq!(results[0], Ok((0, b"ok".to_vec())));
    assert!(
        matches!(&results[1], Err((1, RpcError::NotFound(m))) if m.contains("gone")),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err((2, RpcError::Io(m))) if m.contains("cannot connect")),
        "{:?}",
        results[2]
    );
    assert_eq!(client.fetch_many(Vec::new(), 10).count(), 0);
}

#[test]
fn without_a_secret_only_loopback_may_be_served() {
    let rt = runtime();
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = BlockServer::start(
        rt.handle().clone(),
        any,
        Security::none(),
        1024,
        store_with(&[]),
    )
    .err()
    .expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("ember.authenticate") && msg.contains("0.0.0.0"),
        "{msg}"
    );
    // With a secret it starts; a peer without the secret gets nothing from it.
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        any,
        Security::authenticated("k"),
        1024,
        store_with(&[("b", b"data".to_vec())]),
    )
    .unwrap();
    let addr = SocketAddr::new([127, 0, 0, 1].into(), addr.port());
    let client = BlockClient::new(rt.handle().clone(), Security::none(), 1024, T);
    assert!(matches!(
        client.fetch(
            addr,
            BlockRequest::Stored {
                block_id: "b".into()
            }
        ),
        Err(RpcError::AuthFailed(_))
    ));
}

#[test]
fn encrypted_blocks_stream_in_chunks_and_match() {
    let rt = runtime();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let store = store_with(&[("big", big.clone())]);
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::encrypted("k"),
        4096,
        store,
    )
    .unwrap();
    let client = BlockClient::new(rt.handle().clone(), Security::encrypted("k"), 4096, T);
    assert_eq!(
        client
            .fetch(
                addr,
                BlockRequest::Stored {
                    block_id: "big".into()
                }
            )
            .unwrap(),
        BlockResponse::Data(big)
    );
    // A client that only authenticates is refused by an encrypting server, naming the key.
    let plain = BlockClient::new(rt.handle().clone(), Security::authenticated("k"), 4096, T);
    let r = plain.fetch(
        addr,
        BlockRequest::Stored {
            block_id: "big".into(),
        },
    );
    assert!(
        matches!(r, Err(RpcError::AuthFailed(ref m)) if m.contains("ember.network.crypto.enabled")),
        "{r:?}"
    );
}

/// Files served by name, whole or in ranges (the driver's added files).
struct ServedFiles(PathBuf);

impl BlockStore for ServedFiles {
    fn get_bytes(&self, _id: &str) -> Option<Vec<u8>> {
        None
    }
    fn remove(&self, _id: &str) -> bool {
        false
    }
    fn open_file_range(&self, id: &str, offset: u64, len: u64) -> Result<ShuffleBlock, String> {
        use std::io::{Seek, SeekFrom};
        let mut file = File::open(self.0.join(id)).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        let offset = offset.min(size);
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| e.to_string())?;
        Ok(ShuffleBlock {
            file,
            len: len.min(size - offset),
        })
    }
}

#[test]
fn streams_file_ranges_and_says_when_a_store_serves_no_files() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(1000, 9);
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let max_frame = 64;
    let (_server, addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::authenticated("k"),
        max_frame,
        Arc::new(ServedFiles(dir.path().to_path_buf())),
    )
    .unwrap();
    let client = BlockClient::new(
        rt.handle().clone(),
        Security::authenticated("k"),
        max_frame,
        T,
    );
    let range = |file_id: &str, offset, len| BlockRequest::FileRange {
        file_id: file_id.into(),
        offset,
        len,
    };
    let got = client.fetch(addr, range("f", 100, 300)).unwrap();
    assert_eq!(got, BlockResponse::Data(data[100..400].to_vec()));
    // Shorter at the end of the file.
    let got = client.fetch(addr, range("f", 900, 300)).unwrap();
    assert_eq!(got, BlockResponse::Data(data[900..].to_vec()));
    let missing = client.fetch(addr, range("g", 0, 1)).unwrap();
    assert!(
        matches!(missing, BlockResponse::NotFound(ref m) if m.contains("file g")),
        "{missing:?}"
    );
    let (_plain, plain_addr) = BlockServer::start(
        rt.handle().clone(),
        localhost(),
        Security::authenticated("k"),
        max_frame,
        store_with(&[]),
    )
    .unwrap();
    let none = client.fetch(plain_addr, range("f", 0, 1)).unwrap();
    assert!(
        matches!(none, BlockResponse::NotFound(ref m) if m.contains("no files are served")),
        "{none:?}"
    );
}
