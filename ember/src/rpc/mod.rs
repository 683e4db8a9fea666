//! The network transport of cluster mode.
//!
//! Frames, the authenticated handshake, typed connections and block transfer are `ember-net`'s
//! (re-exported here, since programs that talk to a driver name them through `ember`). What
//! stays in this crate is what those connections carry: the control [`messages`] between the
//! driver and its executors, whose payloads are this crate's types.

pub mod messages;

// Named here for the integration tests (feature `testing`), which speak the wire protocol.
#[cfg_attr(not(feature = "testing"), allow(unused_imports))]
pub use ember_net::{
    auth, block_client, block_server, connection, frame, protocol, seal, secret, RpcError,
};

use crate::error::{EmberError, Result};

/// The small tokio runtime a driver or an executor runs its network I/O on (task code never
/// runs there), with threads named `name`.
pub fn network_runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    ember_net::runtime::network_runtime(name)
        .map_err(|e| EmberError::io(format!("{name} runtime"), e))
}

/// [`network_runtime`], with `on_thread_start` run first on each of its threads.
pub fn network_runtime_with(name: &str, on_thread_start: fn()) -> Result<tokio::runtime::Runtime> {
    ember_net::runtime::network_runtime_with(name, on_thread_start)
        .map_err(|e| EmberError::io(format!("{name} runtime"), e))
}
