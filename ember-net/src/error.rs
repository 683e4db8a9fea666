//! The transport's errors.

use thiserror::Error;

/// Errors of the transport. Each message says what went wrong and, where there is one, what to do.
///
/// `Clone` so that one connection failure can be reported to every request waiting on it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RpcError {
    /// A frame larger than `ember.rpc.message.maxSize`, refused before it is sent or allocated.
    #[error(
        "RPC message of {size} bytes exceeds max allowed: ember.rpc.message.maxSize ({limit} \
         bytes). Consider increasing ember.rpc.message.maxSize or using broadcast variables for \
         large values."
    )]
    FrameTooLarge {
        /// The frame's payload size.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },

    /// The peer closed the connection in the middle of a frame or of a chunked block.
    #[error(
        "connection closed in the middle of a message (truncated frame); the peer may have \
         crashed or been stopped"
    )]
    Truncated,

    /// A frame that does not decode as the expected message (or a message that cannot be encoded).
    #[error("malformed RPC message: {0}")]
    Decode(String),

    /// A socket error or a timeout.
    #[error("RPC I/O error: {0}")]
    Io(String),

    /// The handshake failed: wrong or missing secret, or a peer that is not an Ember process.
    #[error(
        "RPC authentication failed: {0}. Check that ember.authenticate and the secret are the \
         same on the driver and all executors"
    )]
    AuthFailed(String),

    /// A listener beyond loopback without a secret, refused (the message names
    /// `ember.authenticate`).
    #[error("{0}")]
    Unprotected(String),

    /// A frame after the handshake failed authentication: it was modified, injected, replayed,
    /// reordered or cut. The connection is dropped and nothing it carried from then on is used.
    #[error("RPC frame integrity check failed: {0}")]
    Integrity(String),

    /// The peer speaks another version of the protocol.
    #[error(
        "RPC protocol version mismatch: this process speaks version {ours}, the peer version \
         {theirs}; run the same Ember build on the driver and all executors"
    )]
    VersionMismatch {
        /// Our protocol version.
        ours: u8,
        /// The peer's.
        theirs: u8,
    },

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
