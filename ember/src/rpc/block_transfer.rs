//! The data plane: Spark's block transfer service.
//!
//! A [`BlockServer`] per executor hands out the blocks of its shuffle outputs (read from the map
//! output's data file at the offsets of its index file, exactly the bytes a local reader reads)
//! and the blocks of its block store. A [`BlockClient`] per process fetches them for task threads
//! through a blocking API, keeping one authenticated connection per remote address and at most
//! `ember.reducer.maxSizeInFlight` bytes requested at once ([`BlockClient::fetch_many`], Spark's
//! `ShuffleBlockFetcherIterator`).
//!
//! Wire format on one connection, after the handshake: the client sends [`BlockRequest`] frames;
//! for each, in order, the server answers with a header frame and, for data, the block's bytes
//! as raw frames of at most `min(max_frame, 4 MiB)` bytes each. Chunking lets a block larger than
//! `ember.rpc.message.maxSize` travel, and keeps the server's memory per connection bounded by
//! one chunk while it streams a shuffle block from disk. Requests are pipelined: the client
//! writes requests as they come and matches answers to requests by order.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::connection::{ConnReader, Connection};
use super::{frame, RpcError};
use crate::shuffle::{data_file, index_file};

/// How long a server waits for a new connection's handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest chunk of a block's data in one frame, whatever `max_frame` allows: bounds the memory
/// a streaming shuffle block takes on the server.
const MAX_CHUNK: usize = 4 << 20;

/// Largest buffer a client reserves up front for an announced block: the length comes from the
/// peer, so beyond this the buffer grows with the bytes that actually arrive.
const MAX_PREALLOC: usize = 64 << 20;

/// Where the server finds stored (non-shuffle) blocks: the executor's block manager.
///
/// Called from tokio's blocking thread pool, so an implementation may read from disk.
pub trait BlockStore: Send + Sync {
    /// The serialized bytes of a block, if this executor has it.
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>>;
    /// Removes a block; whether it was there.
    fn remove(&self, id: &str) -> bool;
}

/// A request to a block server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockRequest {
    /// The block of reduce partition `reduce_id` in the output of map task `map_index`.
    Shuffle { shuffle_id: usize, map_index: usize, reduce_id: usize },
    /// A block of the block store (a cached partition, an indirect task result).
    Stored { block_id: String },
    /// Removes a block of the block store.
    Remove { block_id: String },
}

/// A block server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockResponse {
    /// The block's bytes.
    Data(Vec<u8>),
    /// The server does not have the block; the message says what is missing.
    NotFound(String),
    /// The answer to [`BlockRequest::Remove`]: whether the block was there.
    Removed(bool),
}

/// The header frame of an answer; `Data` is followed by the block's bytes in raw frames.
#[derive(Debug, Serialize, Deserialize)]
enum ResponseHeader {
    Data { len: u64 },
    NotFound(String),
    Removed(bool),
}

// ---------------------------------------------------------------------------------------------
// Server

/// A running block server. Stops (closing its connections) when stopped or dropped.
pub struct BlockServer {
    addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

/// What every connection task of a server needs.
struct ServerShared {
    secret: Option<Vec<u8>>,
    max_frame: usize,
    chunk: usize,
    local_dir: PathBuf,
    store: Arc<dyn BlockStore>,
    handshake_timeout: Duration,
}

impl BlockServer {
    /// Binds `bind` (port 0 picks a free port) and serves on `handle`'s runtime; returns the
    /// server and the address it actually listens on. `secret`: the application's shared secret
    /// (`None` when `ember.authenticate` is off); `max_frame`: `ember.rpc.message.maxSize` in
    /// bytes; `local_dir`: where this executor's shuffle files are.
    ///
    /// Can be called from any thread, inside a runtime or not: it does not block.
    pub fn start(
        handle: Handle,
        bind: SocketAddr,
        secret: Option<Vec<u8>>,
        max_frame: usize,
        local_dir: PathBuf,
        store: Arc<dyn BlockStore>,
    ) -> Result<(BlockServer, SocketAddr), RpcError> {
        Self::start_with_timeout(handle, bind, secret, max_frame, local_dir, store, DEFAULT_HANDSHAKE_TIMEOUT)
    }

    /// [`BlockServer::start`] with the time a new connection has to complete its handshake.
    pub fn start_with_timeout(
        handle: Handle,
        bind: SocketAddr,
        secret: Option<Vec<u8>>,
        max_frame: usize,
        local_dir: PathBuf,
        store: Arc<dyn BlockStore>,
        handshake_timeout: Duration,
    ) -> Result<(BlockServer, SocketAddr), RpcError> {
        // Bind with std so that a bind error is returned here, synchronously, without block_on
        // (which would panic when the caller is itself inside a runtime).
        let std_listener =
            std::net::TcpListener::bind(bind).map_err(|e| RpcError::Io(format!("cannot bind the block server to {bind}: {e}")))?;
        std_listener.set_nonblocking(true).map_err(|e| RpcError::io("configuring the block server socket", e))?;
        let addr = std_listener.local_addr().map_err(|e| RpcError::io("reading the block server address", e))?;
        let listener = {
            let _runtime = handle.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(|e| RpcError::io("registering the block server socket", e))?
        };
        let shared =
            Arc::new(ServerShared { secret, max_frame, chunk: max_frame.clamp(1, MAX_CHUNK), local_dir, store, handshake_timeout });
        let accept_task = handle.spawn(accept_loop(listener, shared));
        tracing::debug!(%addr, "block server listening");
        Ok((BlockServer { addr, accept_task }, addr))
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every connection (asynchronously: see [`BlockServer::shutdown`]).
    pub fn stop(&self) {
        self.accept_task.abort();
    }

    /// Stops the server and waits until its listening socket is closed, so that the address
    /// can be bound again.
    pub async fn shutdown(mut self) {
        self.accept_task.abort();
        // Resolves (with a cancellation error) once the task and its listener are dropped.
        let _ = (&mut self.accept_task).await;
    }
}

impl Drop for BlockServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<ServerShared>) {
    // Connection tasks live in this set: aborting the accept task drops it, which aborts them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, shared.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!("block server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, sh: Arc<ServerShared>) {
    let conn = Connection::<BlockRequest, ResponseHeader>::accept(stream, sh.secret.as_deref(), sh.max_frame, sh.handshake_timeout).await;
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%peer, "block server: refused connection: {e}");
            return;
        }
    };
    loop {
        let request = match conn.recv().await {
            Ok(r) => r,
            Err(RpcError::Closed) => return,
            Err(e) => {
                tracing::warn!(%peer, "block server: closing connection after a bad request: {e}");
                return;
            }
        };
        if let Err(e) = respond(&mut conn, request, &sh).await {
            tracing::warn!(%peer, "block server: closing connection: {e}");
            return;
        }
    }
}

/// Runs blocking work (file reads, the block store) off the async workers. A panic in it
/// becomes an error of this connection, not of the process.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| RpcError::Io(format!("block server worker failed: {e}")))
}

async fn respond(conn: &mut Connection<BlockRequest, ResponseHeader>, request: BlockRequest, sh: &ServerShared) -> Result<(), RpcError> {
    match request {
        BlockRequest::Shuffle { shuffle_id, map_index, reduce_id } => {
            let dir = sh.local_dir.clone();
            match blocking(move || open_shuffle_block(&dir, shuffle_id, map_index, reduce_id)).await? {
                Err(message) => {
                    let message = format!("shuffle block shuffle_{shuffle_id}_{map_index}_{reduce_id}: {message}");
                    conn.send(&ResponseHeader::NotFound(fit(message, sh.max_frame))).await
                }
                Ok((file, len)) => {
                    conn.send(&ResponseHeader::Data { len }).await?;
                    stream_file(conn, file, len, sh.chunk).await
                }
            }
        }
        BlockRequest::Stored { block_id } => {
            let store = sh.store.clone();
            let id = block_id.clone();
            match blocking(move || store.get_bytes(&id)).await? {
                Some(bytes) => {
                    conn.send(&ResponseHeader::Data { len: bytes.len() as u64 }).await?;
                    for chunk in bytes.chunks(sh.chunk) {
                        conn.send_bytes(chunk).await?;
                    }
                    Ok(())
                }
                None => conn.send(&ResponseHeader::NotFound(fit(format!("block {block_id} is not stored here"), sh.max_frame))).await,
            }
        }
        BlockRequest::Remove { block_id } => {
            let store = sh.store.clone();
            let removed = blocking(move || store.remove(&block_id)).await?;
            conn.send(&ResponseHeader::Removed(removed)).await
        }
    }
}

/// Opens a map output's data file at the start of one reduce partition's block, as the local
/// shuffle reader does; returns it with the block's length, or why the block is not available.
fn open_shuffle_block(dir: &Path, shuffle_id: usize, map_index: usize, reduce_id: usize) -> Result<(File, u64), String> {
    let index_path = index_file(dir, shuffle_id, map_index);
    let describe = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut offsets = [0u8; 16];
    let mut index = File::open(&index_path).map_err(|e| describe(&index_path, e))?;
    index
        .seek(SeekFrom::Start(reduce_id as u64 * 8))
        .and_then(|_| index.read_exact(&mut offsets))
        .map_err(|e| format!("{} (reduce partition {reduce_id})", describe(&index_path, e)))?;
    let (start_bytes, end_bytes) = offsets.split_at(8);
    let start = u64::from_le_bytes(start_bytes.try_into().unwrap_or_default());
    let end = u64::from_le_bytes(end_bytes.try_into().unwrap_or_default());
    if end < start {
        return Err(format!("{}: reduce partition {reduce_id} spans {start}..{end}", index_path.display()));
    }
    let data_path = data_file(dir, shuffle_id, map_index);
    let mut data = File::open(&data_path).map_err(|e| describe(&data_path, e))?;
    let data_len = data.metadata().map_err(|e| describe(&data_path, e))?.len();
    if data_len < end {
        return Err(format!("{}: {data_len} bytes, but the index says reduce partition {reduce_id} ends at {end}", data_path.display()));
    }
    data.seek(SeekFrom::Start(start)).map_err(|e| describe(&data_path, e))?;
    Ok((data, end - start))
}

/// Streams `len` bytes of `file` as chunk frames.
async fn stream_file(conn: &mut Connection<BlockRequest, ResponseHeader>, file: File, len: u64, chunk: usize) -> Result<(), RpcError> {
    let mut remaining = len;
    let mut state = (file, Vec::new());
    while remaining > 0 {
        let n = remaining.min(chunk as u64) as usize;
        let (mut file, mut buf) = state;
        // File and buffer move to the blocking thread and back, so one buffer serves all chunks.
        let (file, buf, read) = blocking(move || {
            buf.resize(n, 0);
            let read = file.read_exact(&mut buf);
            (file, buf, read)
        })
        .await?;
        // The header promised `len` bytes: past this point the only way to report a failure
        // is to close the connection, which the client sees as a truncated block.
        read.map_err(|e| RpcError::Io(format!("reading a shuffle data file: {e}")))?;
        conn.send_bytes(&buf).await?;
        remaining -= n as u64;
        state = (file, buf);
    }
    Ok(())
}

/// Shortens a message so that its header frame fits in `max_frame` (only matters for tiny limits).
fn fit(mut message: String, max_frame: usize) -> String {
    let limit = max_frame.saturating_sub(16);
    if message.len() > limit {
        let mut cut = limit;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}

// ---------------------------------------------------------------------------------------------
// Client

/// A fetched answer, tagged with the index of its request.
type Delivery = (usize, Result<BlockResponse, RpcError>);

/// Where the answer to one request goes. Dropping it unanswered (its connection died, the
/// runtime shut down) answers [`RpcError::Closed`], so a waiting task thread never hangs.
struct Reply {
    index: usize,
    tx: Option<std_mpsc::Sender<Delivery>>,
}

impl Reply {
    fn send(mut self, result: Result<BlockResponse, RpcError>) {
        if let Some(tx) = self.tx.take() {
            // The receiver may be gone (an iterator dropped early): nobody wants the answer.
            let _ = tx.send((self.index, result));
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send((self.index, Err(RpcError::Closed)));
        }
    }
}

struct Job {
    request: BlockRequest,
    reply: Reply,
}

struct ClientShared {
    handle: Handle,
    secret: Option<Vec<u8>>,
    max_frame: usize,
    timeout: Duration,
    /// The job queue of the connection task of each remote address.
    peers: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Job>>>,
}

/// Fetches blocks from block servers, for task threads (blocking API).
///
/// Keeps one authenticated connection per remote address, shared by all threads and pipelined.
/// A connection that fails is dropped, and the next request to that address opens a new one.
/// Cheap to clone; connections close when the last clone is dropped.
#[derive(Clone)]
pub struct BlockClient {
    shared: Arc<ClientShared>,
}

impl BlockClient {
    /// A client whose connections run on `handle`'s runtime. `timeout` bounds connecting, the
    /// handshake, and each wait for data from a server (Spark's `spark.network.timeout`).
    pub fn new(handle: Handle, secret: Option<Vec<u8>>, max_frame: usize, timeout: Duration) -> BlockClient {
        BlockClient { shared: Arc::new(ClientShared { handle, secret, max_frame, timeout, peers: Mutex::new(HashMap::new()) }) }
    }

    /// Fetches one block (or removes one), blocking the calling thread until the answer.
    ///
    /// A request that meets a connection the server has closed meanwhile is retried once on a
    /// new connection. Call from a task thread, not from async code on the client's runtime.
    pub fn fetch(&self, addr: SocketAddr, req: BlockRequest) -> Result<BlockResponse, RpcError> {
        let mut retried = false;
        loop {
            let (tx, rx) = std_mpsc::channel();
            self.submit(addr, Job { request: req.clone(), reply: Reply { index: 0, tx: Some(tx) } });
            // Every job is answered, if only by its Reply's drop, so this cannot wait forever.
            let (_, result) = rx.recv().map_err(|_| RpcError::Closed)?;
            match result {
                Err(RpcError::Closed) if !retried => retried = true,
                other => return other,
            }
        }
    }

    /// Fetches many blocks, with at most `max_bytes_in_flight` bytes (by the expected sizes)
    /// requested and not yet received, but always at least one request. Requests to different
    /// addresses go out interleaved, so several servers send at once. Results come as they
    /// arrive, each with the index of its request in `reqs`; an error comes with that index too,
    /// so the caller can tell which block failed. Each request is answered exactly once.
    pub fn fetch_many(&self, reqs: Vec<(SocketAddr, BlockRequest, u64)>, max_bytes_in_flight: u64) -> BlockFetchIter {
        // Round robin over addresses, each address's requests in their given order.
        let mut by_addr: Vec<(SocketAddr, VecDeque<usize>)> = Vec::new();
        for (i, (addr, _, _)) in reqs.iter().enumerate() {
            match by_addr.iter_mut().find(|(a, _)| a == addr) {
                Some((_, q)) => q.push_back(i),
                None => by_addr.push((*addr, VecDeque::from([i]))),
            }
        }
        let mut order = VecDeque::with_capacity(reqs.len());
        while order.len() < reqs.len() {
            for (_, q) in by_addr.iter_mut() {
                if let Some(i) = q.pop_front() {
                    order.push_back(i);
                }
            }
        }
        let (tx, rx) = std_mpsc::channel();
        BlockFetchIter {
            client: self.clone(),
            retried: vec![false; reqs.len()],
            reqs,
            order,
            max_bytes_in_flight,
            bytes_in_flight: 0,
            peak_bytes_in_flight: 0,
            outstanding: 0,
            tx,
            rx,
        }
    }

    /// Queues a job on the connection task of `addr`, starting one if there is none (or the
    /// one there has ended).
    fn submit(&self, addr: SocketAddr, job: Job) {
        let mut peers = self.shared.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let job = match peers.get(&addr) {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // `rx` is alive, so this send succeeds.
        let _ = tx.send(job);
        peers.insert(addr, tx);
        let sh = &self.shared;
        sh.handle.spawn(run_peer(addr, sh.secret.clone(), sh.max_frame, sh.timeout, rx));
    }
}

/// The connection task of one remote address: connects, then writes requests as they come and
/// reads the answers in order. When it ends, unanswered jobs get an error.
async fn run_peer(addr: SocketAddr, secret: Option<Vec<u8>>, max_frame: usize, timeout: Duration, mut jobs: mpsc::UnboundedReceiver<Job>) {
    // Replies of the requests written, in order, for the reading side.
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Reply>();
    // The reply whose answer is being read. Kept out here, like `sent_rx`, so that no reply is
    // answered before `jobs` is closed below: a caller that retries must find this task gone.
    let mut current: Option<Reply> = None;
    let conn = Connection::<ResponseHeader, BlockRequest>::connect(addr, secret.as_deref(), max_frame, timeout).await;
    let connected = conn.is_ok();
    let outcome = match conn {
        Err(e) => Err(e),
        Ok(conn) => {
            let (mut reader, mut writer) = conn.into_split();
            let writing = async {
                let sent_tx = sent_tx;
                while let Some(Job { request, reply }) = jobs.recv().await {
                    // Encode and check the size first: a request that cannot be sent fails
                    // alone and must not take a place in the order of answers.
                    let bytes = match frame::encode(&request) {
                        Ok(b) if b.len() <= max_frame => b,
                        Ok(b) => {
                            reply.send(Err(RpcError::FrameTooLarge { size: b.len() as u64, limit: max_frame as u64 }));
                            continue;
                        }
                        Err(e) => {
                            reply.send(Err(e));
                            continue;
                        }
                    };
                    if sent_tx.send(reply).is_err() {
                        return Err(RpcError::Closed);
                    }
                    writer.send_bytes(&bytes).await?;
                }
                Ok(())
            };
            let reading = async {
                loop {
                    let reply = tokio::select! {
                        biased;
                        next = sent_rx.recv() => match next {
                            Some(reply) => reply,
                            None => return Ok(()),
                        },
                        // Idle: notice at once when the server closes the connection.
                        activity = reader.peer_activity() => {
                            return Err(activity.err().unwrap_or_else(|| RpcError::Decode("the block server sent data nobody asked for".into())));
                        }
                    };
                    current = Some(reply);
                    let response = read_response(&mut reader, timeout).await?;
                    if let Some(reply) = current.take() {
                        reply.send(Ok(response));
                    }
                }
            };
            tokio::pin!(writing, reading);
            tokio::select! {
                written = &mut writing => match written {
                    // The client was dropped: finish reading the answers still expected.
                    Ok(()) => reading.await,
                    Err(e) => Err(e),
                },
                read = &mut reading => read,
            }
        }
    };
    if let Err(e) = &outcome {
        if *e != RpcError::Closed {
            tracing::warn!(%addr, "block fetch connection failed: {e}");
        }
    }
    // Refuse new jobs first, so that whoever retries after the answers below starts a new
    // connection instead of queueing here.
    jobs.close();
    if let Some(reply) = current.take() {
        reply.send(Err(outcome.clone().err().unwrap_or(RpcError::Closed)));
    }
    // Sent but not answered, or never sent: `Closed`, retried once by the caller, unless
    // connecting itself failed (then that error, which a retry would not cure).
    sent_rx.close();
    while let Ok(reply) = sent_rx.try_recv() {
        reply.send(Err(RpcError::Closed));
    }
    let queued_error = match &outcome {
        Err(e) if !connected => e.clone(),
        _ => RpcError::Closed,
    };
    while let Ok(job) = jobs.try_recv() {
        job.reply.send(Err(queued_error.clone()));
    }
}

/// Reads one answer: its header and, for data, all its chunks.
async fn read_response(reader: &mut ConnReader<ResponseHeader>, timeout: Duration) -> Result<BlockResponse, RpcError> {
    let peer = reader.peer_addr();
    let waited = |r: Result<Result<_, RpcError>, _>| match r {
        Ok(r) => r,
        Err(_) => Err(RpcError::timeout(&format!("waiting for a block from {peer}"), timeout)),
    };
    let header = match tokio::time::timeout(timeout, reader.recv()).await {
        Err(_) => return Err(RpcError::timeout(&format!("waiting for a block from {peer}"), timeout)),
        // Nothing of the answer arrived: the connection died under the request (a server that
        // restarted resets it). `Closed` lets the caller retry once on a new connection.
        Ok(Err(RpcError::Io(m))) => {
            tracing::debug!(%peer, "block fetch connection lost: {m}");
            return Err(RpcError::Closed);
        }
        Ok(header) => header?,
    };
    match header {
        ResponseHeader::NotFound(m) => Ok(BlockResponse::NotFound(m)),
        ResponseHeader::Removed(r) => Ok(BlockResponse::Removed(r)),
        ResponseHeader::Data { len } => {
            let len = usize::try_from(len).map_err(|_| RpcError::Decode(format!("block of {len} bytes does not fit in memory")))?;
            let mut out = Vec::with_capacity(len.min(MAX_PREALLOC));
            while out.len() < len {
                let n = match waited(tokio::time::timeout(timeout, reader.recv_bytes_into(&mut out)).await) {
                    // The header promised more: a close now is a truncation, not a clean end.
                    Err(RpcError::Closed) => return Err(RpcError::Truncated),
                    other => other?,
                };
                if n == 0 {
                    return Err(RpcError::Decode("empty chunk in a block".into()));
                }
                if out.len() > len {
                    return Err(RpcError::Decode(format!("block larger than the {len} bytes announced")));
                }
            }
            Ok(BlockResponse::Data(out))
        }
    }
}

/// The iterator of [`BlockClient::fetch_many`]: yields `(index in reqs, bytes)` as blocks
/// arrive, or `(index, error)`; a block not found is [`RpcError::NotFound`].
pub struct BlockFetchIter {
    client: BlockClient,
    reqs: Vec<(SocketAddr, BlockRequest, u64)>,
    /// Requests not yet sent, in sending order.
    order: VecDeque<usize>,
    retried: Vec<bool>,
    max_bytes_in_flight: u64,
    bytes_in_flight: u64,
    peak_bytes_in_flight: u64,
    outstanding: usize,
    tx: std_mpsc::Sender<Delivery>,
    rx: std_mpsc::Receiver<Delivery>,
}

impl BlockFetchIter {
    /// The most bytes (by expected size) that were requested and not yet received at once.
    pub fn peak_bytes_in_flight(&self) -> u64 {
        self.peak_bytes_in_flight
    }

    /// Sends requests while the limit allows (and at least one when none is outstanding).
    fn launch(&mut self) {
        while let Some(&i) = self.order.front() {
            let (addr, ref request, size) = self.reqs[i];
            if self.outstanding > 0 && self.bytes_in_flight.saturating_add(size) > self.max_bytes_in_flight {
                break;
            }
            self.order.pop_front();
            let reply = Reply { index: i, tx: Some(self.tx.clone()) };
            self.client.submit(addr, Job { request: request.clone(), reply });
            self.bytes_in_flight += size;
            self.outstanding += 1;
            self.peak_bytes_in_flight = self.peak_bytes_in_flight.max(self.bytes_in_flight);
        }
    }
}

impl Iterator for BlockFetchIter {
    type Item = Result<(usize, Vec<u8>), (usize, RpcError)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.launch();
            if self.outstanding == 0 {
                return None;
            }
            // We hold a sender, so this never reports a disconnect; every job sent is answered
            // (if only by its Reply's drop), so it does not wait forever either.
            let (i, result) = self.rx.recv().ok()?;
            self.outstanding -= 1;
            self.bytes_in_flight -= self.reqs[i].2;
            return Some(match result {
                Ok(BlockResponse::Data(bytes)) => Ok((i, bytes)),
                Ok(BlockResponse::NotFound(m)) => Err((i, RpcError::NotFound(m))),
                Ok(BlockResponse::Removed(_)) => Err((i, RpcError::Decode("a Removed answer to a fetch".into()))),
                Err(RpcError::Closed) if !self.retried[i] => {
                    // The connection was closed under the request (a server restarted): once
                    // more on a new connection, first in line.
                    self.retried[i] = true;
                    self.order.push_front(i);
                    continue;
                }
                Err(e) => Err((i, e)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Condvar;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const T: Duration = Duration::from_secs(10);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
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

    /// Writes a map output by hand: blocks back to back in the data file, offsets in the index.
    fn write_map_output(dir: &Path, shuffle_id: usize, map_index: usize, blocks: &[Vec<u8>]) {
        let mut data = File::create(data_file(dir, shuffle_id, map_index)).unwrap();
        let mut index = File::create(index_file(dir, shuffle_id, map_index)).unwrap();
        let mut offset = 0u64;
        index.write_all(&offset.to_le_bytes()).unwrap();
        for b in blocks {
            data.write_all(b).unwrap();
            offset += b.len() as u64;
            index.write_all(&offset.to_le_bytes()).unwrap();
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn serves_shuffle_blocks_including_chunked_ones() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let blocks = vec![b"first".to_vec(), Vec::new(), bytes(1000, 3)];
        write_map_output(dir.path(), 4, 1, &blocks);
        let max_frame = 64; // the third block travels as 16 chunks
        let (_server, addr) =
            BlockServer::start(rt.handle().clone(), localhost(), Some(b"k".to_vec()), max_frame, dir.path().to_path_buf(), store_with(&[]))
                .unwrap();
        let client = BlockClient::new(rt.handle().clone(), Some(b"k".to_vec()), max_frame, T);
        let data = std::fs::read(data_file(dir.path(), 4, 1)).unwrap();
        for (reduce_id, expected) in blocks.iter().enumerate() {
            let got = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 1, reduce_id }).unwrap();
            assert_eq!(got, BlockResponse::Data(expected.clone()));
        }
        // Exactly the byte range a local reader takes from the data file.
        let third = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 1, reduce_id: 2 }).unwrap();
        assert_eq!(third, BlockResponse::Data(data[5..].to_vec()));
        // Missing map output, and a reduce partition past the index.
        let missing = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 9, reduce_id: 0 }).unwrap();
        assert!(matches!(missing, BlockResponse::NotFound(ref m) if m.contains("shuffle_4_9_0")), "{missing:?}");
        let past = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 1, reduce_id: 3 }).unwrap();
        assert!(matches!(past, BlockResponse::NotFound(_)), "{past:?}");
    }

    #[test]
    fn serves_and_removes_stored_blocks() {
        let rt = runtime();
        let big = bytes(5000, 9);
        let store = store_with(&[("rdd_1_0", b"cached".to_vec()), ("taskresult_7", big.clone())]);
        let (server, addr) = BlockServer::start(rt.handle().clone(), localhost(), None, 100, PathBuf::from("/nonexistent"), store).unwrap();
        assert_eq!(server.local_addr(), addr);
        let client = BlockClient::new(rt.handle().clone(), None, 100, T);
        let get = |id: &str| client.fetch(addr, BlockRequest::Stored { block_id: id.into() }).unwrap();
        assert_eq!(get("rdd_1_0"), BlockResponse::Data(b"cached".to_vec()));
        assert_eq!(get("taskresult_7"), BlockResponse::Data(big));
        assert!(matches!(get("rdd_2_0"), BlockResponse::NotFound(ref m) if m.contains("rdd_2_0")));
        let remove = |id: &str| client.fetch(addr, BlockRequest::Remove { block_id: id.into() }).unwrap();
        assert_eq!(remove("rdd_1_0"), BlockResponse::Removed(true));
        assert_eq!(remove("rdd_1_0"), BlockResponse::Removed(false));
        assert!(matches!(get("rdd_1_0"), BlockResponse::NotFound(_)));
        // A request too large for a frame fails alone; the connection goes on.
        let huge = client.fetch(addr, BlockRequest::Stored { block_id: "x".repeat(500) });
        assert!(matches!(huge, Err(RpcError::FrameTooLarge { .. })), "{huge:?}");
        assert!(matches!(get("taskresult_7"), BlockResponse::Data(_)));
    }

    #[test]
    fn authentication_is_enforced() {
        let rt = runtime();
        let store = store_with(&[("b", b"secret data".to_vec())]);
        let (_server, addr) =
            BlockServer::start(rt.handle().clone(), localhost(), Some(b"right".to_vec()), 1024, "/x".into(), store).unwrap();
        let req = BlockRequest::Stored { block_id: "b".into() };
        for secret in [Some(b"wrong".to_vec()), None] {
            let client = BlockClient::new(rt.handle().clone(), secret, 1024, T);
            assert!(matches!(client.fetch(addr, req.clone()), Err(RpcError::AuthFailed(_))));
        }
        let client = BlockClient::new(rt.handle().clone(), Some(b"right".to_vec()), 1024, T);
        assert_eq!(client.fetch(addr, req.clone()).unwrap(), BlockResponse::Data(b"secret data".to_vec()));
        // A client refuses a server that does not know the secret (mutual authentication).
        let (_rogue, rogue_addr) =
            BlockServer::start(rt.handle().clone(), localhost(), Some(b"guess".to_vec()), 1024, "/x".into(), store_with(&[])).unwrap();
        assert!(matches!(client.fetch(rogue_addr, req), Err(RpcError::AuthFailed(_))));
    }

    #[test]
    fn garbage_closes_one_connection_and_the_server_goes_on() {
        use rand::{RngCore, SeedableRng};
        let rt = runtime();
        let store = store_with(&[("b", b"ok".to_vec())]);
        let (_server, addr) = BlockServer::start(rt.handle().clone(), localhost(), Some(b"k".to_vec()), 1024, "/x".into(), store).unwrap();
        let mut junk = vec![0u8; 4096];
        rand::rngs::SmallRng::seed_from_u64(7).fill_bytes(&mut junk);
        rt.block_on(async {
            // Random bytes instead of a handshake: the server hangs up.
            let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = raw.write_all(&junk).await;
            let mut sink = Vec::new();
            let closed = tokio::time::timeout(T, raw.read_to_end(&mut sink)).await;
            assert!(closed.is_ok(), "the server must close a connection that sends garbage");
            // Random bytes after a valid handshake: same.
            let mut c = Connection::<ResponseHeader, BlockRequest>::connect(addr, Some(b"k"), 1024, T).await.unwrap();
            c.send_bytes(&junk[..1000]).await.unwrap();
            let r = tokio::time::timeout(T, c.recv()).await.unwrap();
            assert!(matches!(r, Err(RpcError::Closed) | Err(RpcError::Io(_))), "{r:?}");
        });
        let client = BlockClient::new(rt.handle().clone(), Some(b"k".to_vec()), 1024, T);
        assert_eq!(client.fetch(addr, BlockRequest::Stored { block_id: "b".into() }).unwrap(), BlockResponse::Data(b"ok".to_vec()));
    }

    #[test]
    fn a_silent_client_is_dropped_after_the_handshake_timeout() {
        let rt = runtime();
        let (_server, addr) = BlockServer::start_with_timeout(
            rt.handle().clone(),
            localhost(),
            None,
            1024,
            "/x".into(),
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
        let (server, addr) = BlockServer::start(rt.handle().clone(), localhost(), None, 1024, "/x".into(), store.clone()).unwrap();
        let client = BlockClient::new(rt.handle().clone(), None, 1024, T);
        let req = BlockRequest::Stored { block_id: "b".into() };
        assert!(client.fetch(addr, req.clone()).is_ok());
        rt.block_on(server.shutdown());
        let (_server, _) = BlockServer::start(rt.handle().clone(), addr, None, 1024, "/x".into(), store).unwrap();
        assert_eq!(client.fetch(addr, req).unwrap(), BlockResponse::Data(b"x".to_vec()));
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
            let (mut s, _) = self.arrived.wait_timeout_while(s, T, |s| s.2 < group_end).unwrap();
            s.0 -= size;
            Some(block)
        }
        fn remove(&self, _: &str) -> bool {
            false
        }
    }

    fn fetch_many_case(limit: u64, together: usize) -> (u64, u64) {
        let rt = runtime();
        let blocks: HashMap<String, Vec<u8>> = (0..8).map(|i| (format!("b{i}"), bytes(100, i as u8))).collect();
        let store = Arc::new(CountingStore { blocks: blocks.clone(), together, state: Mutex::new((0, 0, 0)), arrived: Condvar::new() });
        let start = |s: Arc<CountingStore>| BlockServer::start(rt.handle().clone(), localhost(), None, 32, "/x".into(), s).unwrap();
        let (server_a, a) = start(store.clone());
        let (server_b, b) = start(store.clone());
        let client = BlockClient::new(rt.handle().clone(), None, 32, T);
        let reqs: Vec<_> =
            (0..8).map(|i| (if i % 2 == 0 { a } else { b }, BlockRequest::Stored { block_id: format!("b{i}") }, 100)).collect();
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
        let (_server, addr) = BlockServer::start(rt.handle().clone(), localhost(), None, 1024, "/x".into(), store).unwrap();
        // A port with no server behind it.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let client = BlockClient::new(rt.handle().clone(), None, 1024, T);
        let reqs = vec![
            (addr, BlockRequest::Stored { block_id: "b".into() }, 2),
            (addr, BlockRequest::Stored { block_id: "gone".into() }, 2),
            (dead, BlockRequest::Stored { block_id: "b".into() }, 2),
        ];
        let mut results: Vec<_> = client.fetch_many(reqs, 1 << 20).collect();
        results.sort_by_key(|r| match r {
            Ok((i, _)) | Err((i, _)) => *i,
        });
        assert_eq!(results[0], Ok((0, b"ok".to_vec())));
        assert!(matches!(&results[1], Err((1, RpcError::NotFound(m))) if m.contains("gone")), "{:?}", results[1]);
        assert!(matches!(&results[2], Err((2, RpcError::Io(m))) if m.contains("cannot connect")), "{:?}", results[2]);
        assert_eq!(client.fetch_many(Vec::new(), 10).count(), 0);
    }
}
