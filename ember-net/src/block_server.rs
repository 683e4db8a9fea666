//! The serving side of block transfer: a [`BlockServer`] per executor (and one on the driver,
//! for broadcast pieces) hands out the blocks of its [`BlockStore`]: shuffle blocks, streamed
//! from the map output's data file in chunks, stored blocks (cached partitions, indirect
//! task results, broadcast pieces), and ranges of the files a driver hands out (`add_file`),
//! streamed the same way. Wire format in [`crate::protocol`].

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinSet;

use ember_common::ShuffleId;

use crate::connection::{Connection, FRAME_RESERVE};
use crate::protocol::{BlockRequest, ResponseHeader, MAX_CHUNK};
use crate::secret::Security;
use crate::RpcError;

/// How long a server waits for a new connection's handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// One shuffle block (or file range) ready to be streamed: the data file, positioned at the
/// first byte to send, and how many bytes to send.
#[derive(Debug)]
pub struct ShuffleBlock {
    /// The data file, positioned at the start of the block.
    pub file: File,
    /// Bytes of the block.
    pub len: u64,
}

/// Where a server finds its blocks: the executor's shuffle outputs and block manager (or the
/// driver's broadcast pieces). Implemented by `ember`, which knows the file layout.
///
/// Called from tokio's blocking thread pool, so an implementation may read from disk.
pub trait BlockStore: Send + Sync {
    /// The serialized bytes of a stored block, if this process has it.
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>>;
    /// Removes a stored block; whether it was there.
    fn remove(&self, id: &str) -> bool;
    /// Opens the block of reduce partition `reduce_id` in the output of map task attempt `map_id`,
    /// or says why it is not available. A store without shuffle outputs (the driver's) keeps
    /// this default.
    fn open_shuffle_block(
        &self,
        shuffle_id: ShuffleId,
        map_id: u64,
        reduce_id: usize,
    ) -> Result<ShuffleBlock, String> {
        let _ = (shuffle_id, map_id, reduce_id);
        Err("no shuffle outputs are kept by this process".into())
    }
    /// Opens up to `len` bytes from `offset` of the file `file_id` (fewer at the end of the
    /// file), or says why it is not available. Only the driver serves files (those added with
    /// `add_file`/`add_archive`); other stores keep this default.
    fn open_file_range(
        &self,
        file_id: &str,
        offset: u64,
        len: u64,
    ) -> Result<ShuffleBlock, String> {
        let _ = (file_id, offset, len);
        Err("no files are served by this process".into())
    }
}

/// A running block server. Stops (closing its connections) when stopped or dropped.
pub struct BlockServer {
    addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

/// What every connection task of a server needs.
struct ServerShared {
    security: Security,
    max_frame: usize,
    chunk: usize,
    store: Arc<dyn BlockStore>,
    handshake_timeout: Duration,
}

impl BlockServer {
    /// Binds `bind` (port 0 picks a free port) and serves `store` on `handle`'s runtime; returns
    /// the server and the address it actually listens on. `security`: the application's secret
    /// and `ember.network.crypto.enabled`: without a secret only a loopback address may be bound
    /// (anything else is refused with an error naming `ember.authenticate`), since whoever
    /// reaches the server could read every block. `max_frame`: `ember.rpc.message.maxSize` in
    /// bytes.
    ///
    /// Can be called from any thread, inside a runtime or not: it does not block.
    pub fn start(
        handle: Handle,
        bind: SocketAddr,
        security: Security,
        max_frame: usize,
        store: Arc<dyn BlockStore>,
    ) -> Result<(BlockServer, SocketAddr), RpcError> {
        Self::start_with_timeout(
            handle,
            bind,
            security,
            max_frame,
            store,
            DEFAULT_HANDSHAKE_TIMEOUT,
        )
    }

    /// [`BlockServer::start`] with the time a new connection has to complete its handshake.
    pub fn start_with_timeout(
        handle: Handle,
        bind: SocketAddr,
        security: Security,
        max_frame: usize,
        store: Arc<dyn BlockStore>,
        handshake_timeout: Duration,
    ) -> Result<(BlockServer, SocketAddr), RpcError> {
        security
            .check_listen(bind.ip(), "the block server")
            .map_err(RpcError::Unprotected)?;
        // Bind with std so that a bind error is returned here, synchronously, without block_on
        // (which would panic when the caller is itself inside a runtime).
        let std_listener = std::net::TcpListener::bind(bind)
            .map_err(|e| RpcError::Io(format!("cannot bind the block server to {bind}: {e}")))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| RpcError::io("configuring the block server socket", e))?;
        let addr = std_listener
            .local_addr()
            .map_err(|e| RpcError::io("reading the block server address", e))?;
        let listener = {
            let _runtime = handle.enter();
            tokio::net::TcpListener::from_std(std_listener)
                .map_err(|e| RpcError::io("registering the block server socket", e))?
        };
        let shared = Arc::new(ServerShared {
            security,
            max_frame,
            chunk: max_frame.clamp(1, MAX_CHUNK),
            store,
            handshake_timeout,
        });
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
    let conn = Connection::<BlockRequest, ResponseHeader>::accept(
        stream,
        &sh.security,
        sh.max_frame,
        sh.handshake_timeout,
    )
    .await;
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
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RpcError::Io(format!("block server worker failed: {e}")))
}

async fn respond(
    conn: &mut Connection<BlockRequest, ResponseHeader>,
    request: BlockRequest,
    sh: &ServerShared,
) -> Result<(), RpcError> {
    match request {
        BlockRequest::Shuffle {
            shuffle_id,
            map_id,
            reduce_id,
        } => {
            let store = sh.store.clone();
            match blocking(move || store.open_shuffle_block(shuffle_id, map_id, reduce_id)).await? {
                Err(message) => {
                    let message = format!(
                        "shuffle block shuffle_{shuffle_id}_{map_id}_{reduce_id}: {message}"
                    );
                    conn.send(&ResponseHeader::NotFound(fit(message, sh.max_frame)))
                        .await
                }
                Ok(ShuffleBlock { file, len }) => {
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
                    conn.send(&ResponseHeader::Data {
                        len: bytes.len() as u64,
                    })
                    .await?;
                    for chunk in bytes.chunks(sh.chunk) {
                        conn.send_bytes(chunk).await?;
                    }
                    Ok(())
                }
                None => {
                    conn.send(&ResponseHeader::NotFound(fit(
                        format!("block {block_id} is not stored here"),
                        sh.max_frame,
                    )))
                    .await
                }
            }
        }
        BlockRequest::FileRange {
            file_id,
            offset,
            len,
        } => {
            let store = sh.store.clone();
            let id = file_id.clone();
            match blocking(move || store.open_file_range(&id, offset, len)).await? {
                Err(message) => {
                    let message = format!("file {file_id}: {message}");
                    conn.send(&ResponseHeader::NotFound(fit(message, sh.max_frame)))
                        .await
                }
                Ok(ShuffleBlock { file, len }) => {
                    conn.send(&ResponseHeader::Data { len }).await?;
                    stream_file(conn, file, len, sh.chunk).await
                }
            }
        }
        BlockRequest::Remove { block_id } => {
            let store = sh.store.clone();
            let removed = blocking(move || store.remove(&block_id)).await?;
            conn.send(&ResponseHeader::Removed(removed)).await
        }
    }
}

/// Streams `len` bytes of `file` as chunk frames. Each chunk is read behind the frame's reserved
/// header and sealed in place: no copy of the data between the file and the socket.
async fn stream_file(
    conn: &mut Connection<BlockRequest, ResponseHeader>,
    file: File,
    len: u64,
    chunk: usize,
) -> Result<(), RpcError> {
    let mut remaining = len;
    let mut state = (file, Vec::new());
    while remaining > 0 {
        let n = remaining.min(chunk as u64) as usize;
        let (mut file, mut buf) = state;
        // File and buffer move to the blocking thread and back, so one buffer serves all chunks.
        let (file, mut buf, read) = blocking(move || {
            buf.resize(FRAME_RESERVE + n, 0);
            let read = file.read_exact(&mut buf[FRAME_RESERVE..]);
            (file, buf, read)
        })
        .await?;
        // The header promised `len` bytes: past this point the only way to report a failure
        // is to close the connection, which the client sees as a truncated block.
        read.map_err(|e| RpcError::Io(format!("reading a served data file: {e}")))?;
        conn.send_frame_in_place(&mut buf).await?;
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
