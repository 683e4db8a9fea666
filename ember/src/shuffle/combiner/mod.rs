//! Map-side combine (Spark's `PartitionedAppendOnlyMap`, reorganized for cache locality): a map
//! task folds its records into one combiner per key, writes the combiners partition by partition,
//! and spills them as per-partition runs when its memory runs out.
//!
//! One trait, [`MapCombiner`], and one implementation per strategy; which one a shuffle uses is
//! decided by its key and value types (`crate::shuffle::sort_writer::write_combined_from`):
//!
//! - [`InlineStrCombiner`] for `String` keys: short keys live inline in a probing table
//!   (`super::str_table`), looked up without allocating, with prefetched probes; longer keys go to
//!   a [`HashCombiner`].
//! - [`BucketedCombiner`] for keys and values without heap data: one map until it outgrows the
//!   cache, then buckets (by reduce partition and an independent hash) whose maps are fed from
//!   queues a batch at a time, while the map is in cache.
//! - [`HashCombiner`] for everything else: one map, grouped by reduce partition when written
//!   (queueing keys that own heap data costs more than it saves; see `queueing_pays`).

mod bucketed;
mod hash;
mod inline_str;

use std::io::Write;
use std::path::Path;

use serde::Serialize;

pub(super) use bucketed::BucketedCombiner;
pub(super) use hash::HashCombiner;
pub(super) use inline_str::InlineStrCombiner;

use super::map_output_writer::MapOutput;
use crate::codec::{io_err, ChunkBuf, ChunkFormat};
use crate::error::{EmberError, Result};
use crate::partitioner::Partitioner;
use crate::util::cast;

/// Combines a map task's `(K, V)` records into one combiner per key, and writes them out by
/// reduce partition (as a [`MapOutput`]: in spills and in the final file).
pub(super) trait MapCombiner<K: 'static, V>: MapOutput {
    /// Folds one record into its key's combiner.
    fn insert(&mut self, key: K, value: V) -> Result<()>;

    /// [`MapCombiner::insert`] with the key lent as a `&str` (`K` is `String`): the same as
    /// inserting `key.to_owned()`, which is what this default does; a combiner that can look a
    /// borrowed key up copies it only when it is new.
    fn insert_str(&mut self, key: &str, value: V) -> Result<()> {
        let key = cast::<String, K>(key.to_owned()).map_err(|_| type_mismatch())?;
        self.insert(key, value)
    }

    /// Estimated bytes held (what is compared with the task's memory and the spill threshold).
    fn estimate(&self) -> u64;

    /// Gets everything inserted so far ready to be written partition by partition; returns the
    /// number of combiners (records) that will be written.
    fn prepare_output(&mut self) -> Result<u64>;

    /// Forgets the size history once everything has been written out (after a spill).
    fn reset(&mut self);
}

/// Writes one block's records as chunks: a chunk is closed when full, and the block ends with
/// its own chunk (blocks are read independently).
pub(super) struct BlockWriter {
    chunk: ChunkBuf,
    /// Compression output, reused for every chunk.
    scratch: Vec<u8>,
    format: ChunkFormat,
}

impl BlockWriter {
    pub(super) fn new(format: ChunkFormat) -> Self {
        BlockWriter {
            chunk: ChunkBuf::new(),
            scratch: Vec::new(),
            format,
        }
    }

    /// Appends a record; returns the bytes written to `out` (a chunk that filled up).
    #[inline]
    pub(super) fn push<T: Serialize + ?Sized, W: Write>(
        &mut self,
        record: &T,
        out: &mut W,
        path: &Path,
    ) -> Result<u64> {
        self.chunk.push(record)?;
        self.close_if_full(out, path)
    }

    /// [`BlockWriter::push`] of the record `(key, value)`, encoded without serde when both are
    /// primitive numbers.
    #[inline]
    pub(super) fn push_pair<K: Serialize + 'static, V: Serialize + 'static, W: Write>(
        &mut self,
        key: &K,
        value: &V,
        out: &mut W,
        path: &Path,
    ) -> Result<u64> {
        self.chunk.push_pair(key, value)?;
        self.close_if_full(out, path)
    }

    /// Writes the chunk to `out` once it is full; returns the bytes written.
    #[inline]
    fn close_if_full<W: Write>(&mut self, out: &mut W, path: &Path) -> Result<u64> {
        if self.chunk.is_full() {
            return self
                .chunk
                .finish_into(self.format, &mut self.scratch, out)
                .map_err(io_err(path));
        }
        Ok(0)
    }

    /// Ends the block; returns the bytes written to `out`.
    pub(super) fn finish<W: Write>(&mut self, out: &mut W, path: &Path) -> Result<u64> {
        self.chunk
            .finish_into(self.format, &mut self.scratch, out)
            .map_err(io_err(path))
    }
}

/// The reduce partition of `key`, checked against the shuffle's partitions.
#[inline]
pub(super) fn partition_of<K, P: Partitioner<K>>(
    partitioner: &P,
    key: &K,
    partitions: usize,
) -> Result<usize> {
    let p = partitioner.partition(key);
    if p >= partitions {
        return Err(EmberError::InvalidPartition {
            partition: p,
            partitions,
        });
    }
    Ok(p)
}

/// The error for a `String`-only path reached with another key type (a bug: the paths are chosen
/// by type id).
pub(super) fn type_mismatch() -> EmberError {
    EmberError::Internal("String key path used for another key type".into())
}
