//! The block transfer protocol, Spark's block transfer service on the wire.
//!
//! On one connection, after the handshake, the client sends [`BlockRequest`] frames; for each, in
//! order, the server answers with a header frame and, for data, the block's bytes as raw frames
//! of at most `min(max_frame, 4 MiB)` bytes each. Chunking lets a block larger than
//! `ember.rpc.message.maxSize` travel, and keeps the server's memory per connection bounded by
//! one chunk while it streams a shuffle block from disk. Requests are pipelined: the client
//! writes requests as they come and matches answers to requests by order.

use serde::{Deserialize, Serialize};

use ember_common::ShuffleId;

/// Largest chunk of a block's data in one frame, whatever `max_frame` allows: bounds the memory
/// a streaming shuffle block takes on the server.
pub(crate) const MAX_CHUNK: usize = 4 << 20;

/// A request to a block server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockRequest {
    /// The block of reduce partition `reduce_id` in the output of map task attempt `map_id`.
    Shuffle {
        /// The shuffle.
        shuffle_id: ShuffleId,
        /// The map output: the id of the task attempt that wrote it (Spark's `mapId`).
        map_id: u64,
        /// The reduce partition.
        reduce_id: usize,
    },
    /// A block of the block store (a cached partition, an indirect task result).
    Stored {
        /// The block's id.
        block_id: String,
    },
    /// Removes a block of the block store.
    Remove {
        /// The block's id.
        block_id: String,
    },
    /// Up to `len` bytes from `offset` of a file the server hands out (the driver's files added
    /// with `add_file`); the answer is shorter at the end of the file. What `file_id` names is
    /// the store's business ([`crate::block_server::BlockStore::open_file_range`]).
    FileRange {
        /// The file, as the store names it.
        file_id: String,
        /// First byte.
        offset: u64,
        /// Most bytes wanted.
        len: u64,
    },
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
pub(crate) enum ResponseHeader {
    Data { len: u64 },
    NotFound(String),
    Removed(bool),
}
