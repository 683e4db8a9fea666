use std::sync::Arc;

use thiserror::Error;

/// Errors of sealed frames. Every error but [`FrameError::TooLarge`] on the sending side means
/// the connection must be dropped (the opener is poisoned after any error).
///
/// `Clone` (the `io::Error` source is shared in an `Arc`) so one failure can be reported to every
/// waiter, as Ember's `RpcError` is; `PartialEq` compares I/O errors by context and kind.
#[derive(Debug, Clone, Error)]
pub enum FrameError {
    /// A payload above the maximum frame size, refused before it is sealed (sender; nothing is
    /// written, the connection stays usable) or before anything is allocated (receiver).
    #[error(
        "RPC message of {size} bytes exceeds max allowed: ember.rpc.message.maxSize ({limit} \
         bytes). Consider increasing ember.rpc.message.maxSize or using broadcast variables for \
         large values."
    )]
    TooLarge { size: u64, limit: u64 },

    /// The tag did not verify: the frame was modified (length, kind, body or tag), injected,
    /// replayed, reordered, sealed with another key (other direction, other connection, other
    /// secret) or a frame before it was dropped.
    #[error(
        "frame {seq} failed authentication (modified, injected, replayed, reordered or sealed \
         with another key); the connection is closed"
    )]
    BadFrame { seq: u64 },

    /// A header that cannot be valid (unknown kind, an end frame with a body). Not authenticated
    /// yet, but fatal all the same.
    #[error("malformed frame header: {0}")]
    Malformed(&'static str),

    /// EOF inside a frame.
    #[error(
        "connection closed in the middle of a frame (truncated frame); the peer may have crashed \
         or been stopped"
    )]
    Truncated,

    /// EOF at a frame boundary without the authenticated end-of-stream frame: the stream may have
    /// been cut by an attacker, or the peer died without closing.
    #[error(
        "connection closed without the authenticated end-of-stream frame: the stream was cut or \
         the peer died"
    )]
    UnauthenticatedEof,

    /// Sealing or opening after the end-of-stream frame.
    #[error("the stream has already ended")]
    Ended,

    /// 2^64 frames in one direction of one connection (the nonce would repeat), or the data limit
    /// of the key (2^38 bytes for AES-GCM): the connection must be re-established.
    #[error("this connection's frame key is used up (sequence numbers or data limit); reconnect")]
    SequenceExhausted,

    /// A previous frame failed: nothing more is read from this connection.
    #[error("this connection already failed frame authentication and must be dropped")]
    Poisoned,

    /// Unusable key material (an empty secret).
    #[error("cannot derive frame keys: {0}")]
    Key(&'static str),

    /// A socket error (EOF is mapped to `Truncated` / `UnauthenticatedEof`), kept as the source.
    #[error("I/O error {context}")]
    Io {
        context: &'static str,
        #[source]
        source: Arc<std::io::Error>,
    },
}

impl PartialEq for FrameError {
    fn eq(&self, other: &Self) -> bool {
        use FrameError::*;
        match (self, other) {
            (TooLarge { size: a, limit: b }, TooLarge { size: c, limit: d }) => a == c && b == d,
            (BadFrame { seq: a }, BadFrame { seq: b }) => a == b,
            (Malformed(a), Malformed(b)) | (Key(a), Key(b)) => a == b,
            (
                Io {
                    context: a,
                    source: x,
                },
                Io {
                    context: b,
                    source: y,
                },
            ) => a == b && x.kind() == y.kind(),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for FrameError {}

impl FrameError {
    pub(crate) fn io(context: &'static str, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io {
                context,
                source: Arc::new(e),
            }
        }
    }
}
