//! # ember-net
//!
//! The network transport of Ember's cluster mode. Everything that
//! crosses a socket goes through this crate:
//!
//! - [`frame`]: length-prefixed frames `[u32 LE length][payload]` of postcard-encoded messages,
//!   bounded by `ember.rpc.message.maxSize` on both the sending and the receiving side.
//! - [`auth`]: the versioned, mutually authenticated handshake every TCP connection starts with
//!   (HMAC-SHA256 over both hellos with the application's shared secret), which also agrees the
//!   connection's frame keys.
//! - [`seal`]: with `ember.authenticate`, every frame after the handshake is authenticated
//!   (AES-256-GCM, keys per connection and direction, implicit sequence numbers: no injection,
//!   replay, reordering or cut goes unnoticed), and encrypted with `ember.network.crypto.enabled`.
//! - [`secret`]: the shared secret (never printed: `Debug` redacts it) and [`secret::Security`],
//!   the two settings above; no listener beyond loopback starts without a secret.
//! - [`connection`]: a typed, authenticated connection (`send` / `recv`), generic over the message
//!   types, splittable into a reader and a writer half for two tasks.
//! - [`protocol`], [`block_server`], [`block_client`]: the data plane, Spark's block transfer
//!   service: a server that hands out shuffle blocks and stored blocks (read through the
//!   [`block_server::BlockStore`] trait), and a blocking client for task threads with a bounded
//!   number of bytes in flight (Spark's `ShuffleBlockFetcherIterator`).
//! - [`runtime`]: the small tokio runtime a driver or an executor runs its network I/O on.
//!
//! A failure on one connection closes that connection only; bad input never panics a process.
//! This crate has no `unsafe` code (`#![forbid(unsafe_code)]`).
//!
//! Architecture invariant: this crate knows nothing of what it carries. The control messages
//! between driver and executors are `ember`'s (`ember::rpc::messages`), shuffle files and cached
//! blocks are found by `ember` behind [`block_server::BlockStore`]; it depends on no other Ember
//! crate than `ember-common`, and never on the scheduler.

#![forbid(unsafe_code)]

pub mod auth;
pub mod block_client;
pub mod block_server;
pub mod connection;
pub mod error;
pub mod frame;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz;
pub mod protocol;
pub mod runtime;
pub mod seal;
pub mod secret;
pub mod shared_writer;

pub use error::RpcError;

#[cfg(test)]
mod block_transfer_tests;
