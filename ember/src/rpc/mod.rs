//! The network transport of cluster mode (DESIGN.md §3 and §5).
//!
//! Everything that crosses a socket goes through this module:
//!
//! - [`frame`]: length-prefixed frames `[u32 LE length][payload]` of postcard-encoded messages,
//!   bounded by `ember.rpc.message.maxSize` on both the sending and the receiving side.
//! - [`auth`]: the versioned, mutually authenticated handshake every TCP connection starts with
//!   (HMAC-SHA256 challenge with the application's shared secret).
//! - [`connection`]: a typed, authenticated connection (`send` / `recv`), splittable into a reader
//!   and a writer half for two tasks.
//! - [`block_transfer`]: the data plane, Spark's block transfer service: a server that hands out
//!   shuffle blocks and stored blocks, and a blocking client for task threads with a bounded
//!   number of bytes in flight (Spark's `ShuffleBlockFetcherIterator`).
//!
//! A failure on one connection closes that connection only; bad input never panics a process.

pub mod auth;
pub mod block_transfer;
pub mod connection;
pub mod frame;
pub mod messages;

use thiserror::Error;

/// The small tokio runtime a driver or an executor runs its network I/O on (task code never
/// runs there), with threads named `name`.
pub fn network_runtime(name: &str) -> crate::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| crate::EmberError::io(format!("{name} runtime"), e))
}

/// Errors of the transport. Each message says what went wrong and, where there is one, what to do.
///
/// `Clone` so that one connection failure can be reported to every request waiting on it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RpcError {
    /// A frame larger than `ember.rpc.message.maxSize`, refused before it is sent or allocated.
    #[error(
        "RPC message of {size} bytes exceeds max allowed: ember.rpc.message.maxSize ({limit} bytes). \
         Consider increasing ember.rpc.message.maxSize or using broadcast variables for large values."
    )]
    FrameTooLarge { size: u64, limit: u64 },

    /// The peer closed the connection in the middle of a frame or of a chunked block.
    #[error("connection closed in the middle of a message (truncated frame); the peer may have crashed or been stopped")]
    Truncated,

    /// A frame that does not decode as the expected message (or a message that cannot be encoded).
    #[error("malformed RPC message: {0}")]
    Decode(String),

    /// A socket error or a timeout.
    #[error("RPC I/O error: {0}")]
    Io(String),

    /// The handshake failed: wrong or missing secret, or a peer that is not an Ember process.
    #[error("RPC authentication failed: {0}. Check that ember.authenticate and the secret are the same on the driver and all executors")]
    AuthFailed(String),

    /// The peer speaks another version of the protocol.
    #[error("RPC protocol version mismatch: this process speaks version {ours}, the peer version {theirs}; run the same Ember build on the driver and all executors")]
    VersionMismatch { ours: u8, theirs: u8 },

    /// A block the peer does not have (a lost shuffle output or an evicted cached block).
    #[error("block not found: {0}")]
    NotFound(String),

    /// The peer closed the connection cleanly between two messages.
    #[error("connection closed by the peer")]
    Closed,
}

impl RpcError {
    /// Wraps an I/O error; an unexpected EOF means the peer went away mid-message.
    pub(crate) fn io(context: &str, err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            RpcError::Truncated
        } else {
            RpcError::Io(format!("{context}: {err}"))
        }
    }

    /// The error of an operation that did not finish in time.
    pub(crate) fn timeout(what: &str, after: std::time::Duration) -> Self {
        RpcError::Io(format!("timed out after {after:?} {what}"))
    }
}
