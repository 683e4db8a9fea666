//! The fetching side of block transfer: a [`BlockClient`] per process fetches blocks for task
//! threads through a blocking API, keeping one authenticated connection per remote address and
//! at most `ember.reducer.maxSizeInFlight` bytes requested at once ([`BlockClient::fetch_many`],
//! Spark's `ShuffleBlockFetcherIterator`). Wire format in [`crate::protocol`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::connection::{ConnReader, Connection};
use crate::protocol::{BlockRequest, BlockResponse, ResponseHeader};
use crate::secret::Security;
use crate::{frame, RpcError};

/// Largest buffer a client reserves up front for an announced block: the length comes from the
/// peer, so beyond this the buffer grows with the bytes that actually arrive.
const MAX_PREALLOC: usize = 64 << 20;

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
    security: Security,
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
    pub fn new(
        handle: Handle,
        security: Security,
        max_frame: usize,
        timeout: Duration,
    ) -> BlockClient {
        BlockClient {
            shared: Arc::new(ClientShared {
                handle,
                security,
                max_frame,
                timeout,
                peers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Fetches one block (or removes one), blocking the calling thread until the answer.
    ///
    /// A request that meets a connection the server has closed meanwhile is retried once on a
    /// new connection. Call from a task thread, not from async code on the client's runtime.
    pub fn fetch(&self, addr: SocketAddr, req: BlockRequest) -> Result<BlockResponse, RpcError> {
        let mut retried = false;
        loop {
            let (tx, rx) = std_mpsc::channel();
            self.submit(
                addr,
                Job {
                    request: req.clone(),
                    reply: Reply {
                        index: 0,
                        tx: Some(tx),
                    },
                },
            );
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
    pub fn fetch_many(
        &self,
        reqs: Vec<(SocketAddr, BlockRequest, u64)>,
        max_bytes_in_flight: u64,
    ) -> BlockFetchIter {
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
        let mut peers = self
            .shared
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
        sh.handle.spawn(run_peer(
            addr,
            sh.security.clone(),
            sh.max_frame,
            sh.timeout,
            rx,
        ));
    }
}

/// The connection task of one remote address: connects, then writes requests as they come and
/// reads the answers in order. When it ends, unanswered jobs get an error.
async fn run_peer(
    addr: SocketAddr,
    security: Security,
    max_frame: usize,
    timeout: Duration,
    mut jobs: mpsc::UnboundedReceiver<Job>,
) {
    // Replies of the requests written, in order, for the reading side.
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Reply>();
    // The reply whose answer is being read. Kept out here, like `sent_rx`, so that no reply is
    // answered before `jobs` is closed below: a caller that retries must find this task gone.
    let mut current: Option<Reply> = None;
    let conn =
        Connection::<ResponseHeader, BlockRequest>::connect(addr, &security, max_frame, timeout)
            .await;
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
                            reply.send(Err(RpcError::FrameTooLarge {
                                size: b.len() as u64,
                                limit: max_frame as u64,
                            }));
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
                            return Err(activity.err().unwrap_or_else(|| {
                                RpcError::Decode(
                                    "the block server sent data nobody asked for".into(),
                                )
                            }));
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
async fn read_response(
    reader: &mut ConnReader<ResponseHeader>,
    timeout: Duration,
) -> Result<BlockResponse, RpcError> {
    let peer = reader.peer_addr();
    let waited = |r: Result<Result<_, RpcError>, _>| match r {
        Ok(r) => r,
        Err(_) => Err(RpcError::timeout(
            &format!("waiting for a block from {peer}"),
            timeout,
        )),
    };
    let header = match tokio::time::timeout(timeout, reader.recv()).await {
        Err(_) => {
            return Err(RpcError::timeout(
                &format!("waiting for a block from {peer}"),
                timeout,
            ))
        }
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
            let len = usize::try_from(len).map_err(|_| {
                RpcError::Decode(format!("block of {len} bytes does not fit in memory"))
            })?;
            let mut out = Vec::with_capacity(len.min(MAX_PREALLOC));
            while out.len() < len {
                let n = match waited(
                    tokio::time::timeout(timeout, reader.recv_bytes_into(&mut out)).await,
                ) {
                    // The header promised more: a close now is a truncation, not a clean end.
                    Err(RpcError::Closed) => return Err(RpcError::Truncated),
                    other => other?,
                };
                if n == 0 {
                    return Err(RpcError::Decode("empty chunk in a block".into()));
                }
                if out.len() > len {
                    return Err(RpcError::Decode(format!(
                        "block larger than the {len} bytes announced"
                    )));
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
            if self.outstanding > 0
                && self.bytes_in_flight.saturating_add(size) > self.max_bytes_in_flight
            {
                break;
            }
            self.order.pop_front();
            let reply = Reply {
                index: i,
                tx: Some(self.tx.clone()),
            };
            self.client.submit(
                addr,
                Job {
                    request: request.clone(),
                    reply,
                },
            );
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
                Ok(BlockResponse::Removed(_)) => {
                    Err((i, RpcError::Decode("a Removed answer to a fetch".into())))
                }
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
