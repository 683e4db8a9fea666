//! Sealed frames: every frame after the handshake authenticated (and, with
//! `ember.network.crypto.enabled`, encrypted) with keys derived from the shared secret and the
//! handshake ([`keys`]), one key per direction of one connection.
//!
//! With `ember.authenticate` on, a frame that was modified, injected, replayed, reordered or cut
//! off is refused and the connection dropped: nothing it carried is acted on. With
//! `ember.network.crypto.enabled` the payload is also encrypted ([`Mode::Encrypt`]); otherwise it
//! travels in clear but authenticated ([`Mode::Authenticate`]).
//!
//! # Wire format of one sealed frame
//!
//! ```text
//! [len: u32 LE][kind: u8][body: len bytes][tag: 16 bytes]
//! ```
//!
//! - `len` is the payload length (tag excluded), bounded by the receiver's maximum
//!   (`ember.rpc.message.maxSize`) *before* it allocates anything; `kind` is [`FrameKind::Data`]
//!   (0) or [`FrameKind::End`] (1, empty body).
//! - `body` is the payload (Authenticate) or its ciphertext (Encrypt).
//! - `tag` is the AES-256-GCM tag over:
//!   - Encrypt: plaintext = payload, associated data = `len ‖ kind` (the 5 header bytes);
//!   - Authenticate: plaintext = empty, associated data = `payload ‖ len ‖ kind` (GMAC; the payload
//!     first so that both sides MAC it in place, without copying it; the header has a fixed size,
//!     so the encoding is unambiguous).
//! - nonce (96 bits) = `iv XOR (0u32 ‖ seq as u64 big-endian)`: `seq` is this direction's frame
//!   counter, starting at 0 and never sent, so a dropped, replayed, reordered or injected frame
//!   fails the tag check of the frame at that position. The counter never wraps: after 2^64 frames
//!   the sealer refuses ([`FrameError::SequenceExhausted`]). `iv` is per direction, from the key
//!   schedule (as in TLS 1.3). A key also stops after [`AES_GCM_BYTES_PER_KEY`] bytes (256 GiB);
//!   reconnecting gives new keys.
//!
//! A stream may end with an `End` frame ([`FrameSealer::seal_end`]); an EOF without it is
//! reported as [`FrameError::UnauthenticatedEof`], so a cut at a frame boundary is told apart
//! from a clean close. Any error poisons the opener: the connection must be dropped.

mod error;
pub mod io;
pub mod keys;
mod sealer;

pub use error::FrameError;
pub use keys::{
    derive_session_keys, CipherSuite, DirectionKey, Mode, Role, SessionKeys, Transcript,
};
pub use sealer::{
    FrameKind, FrameOpener, FrameSealer, Header, Opened, AES_GCM_BYTES_PER_KEY, HEADER_LEN, TAG_LEN,
};

#[cfg(test)]
mod attack_tests;
