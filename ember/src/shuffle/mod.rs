//! Sort-based shuffle: map tasks write one data file and one index file each; reduce tasks read
//! their block of every map output.
//!
//! On-disk format of a data file: for each reduce partition in order, its block; a block is a
//! sequence of chunks, each `[u32 little-endian length][payload]`, where the payload is an
//! lz4-compressed (with `ember.shuffle.compress`) run of postcard-encoded records. Chunks are
//! independent, so spilled runs are concatenated into the final file without re-encoding.
//! The index file holds `num_partitions + 1` little-endian u64 offsets into the data file.

pub mod block_format;
pub mod external_aggregator;
pub mod external_sorter;
pub mod reader;
pub mod size_tracker;
pub mod sort_writer;
pub mod str_table;

use std::path::{Path, PathBuf};

use crate::conf::{self, EmberConf};
use crate::error::Result;
use crate::task::ShuffleId;

/// Shuffle settings read once per executor.
#[derive(Clone, Debug)]
pub struct ShuffleConf {
    /// lz4-compress shuffle blocks (`ember.shuffle.compress`).
    pub compress: bool,
    /// lz4-compress spill files (`ember.shuffle.spill.compress`).
    pub spill_compress: bool,
    /// In-memory bytes of one task's map or sort buffer past which it spills
    /// (`ember.shuffle.spill.threshold`).
    pub spill_threshold: u64,
    /// Writer buffer size (`ember.shuffle.file.buffer`).
    pub file_buffer: usize,
    /// Most bytes one reduce task fetches at once (`ember.reducer.maxSizeInFlight`).
    pub max_size_in_flight: u64,
}

impl ShuffleConf {
    /// Reads the shuffle keys.
    pub fn from_conf(c: &EmberConf) -> Result<Self> {
        Ok(ShuffleConf {
            compress: c.get_bool(conf::SHUFFLE_COMPRESS)?,
            spill_compress: c.get_bool(conf::SHUFFLE_SPILL_COMPRESS)?,
            spill_threshold: c.get_size_bytes(conf::SHUFFLE_SPILL_THRESHOLD)?,
            file_buffer: c.get_size_bytes(conf::SHUFFLE_FILE_BUFFER)? as usize,
            max_size_in_flight: c.get_size_bytes(conf::REDUCER_MAX_SIZE_IN_FLIGHT)?,
        })
    }
}

impl Default for ShuffleConf {
    fn default() -> Self {
        ShuffleConf {
            compress: true,
            spill_compress: true,
            spill_threshold: 512 << 20,
            file_buffer: 32 << 10,
            max_size_in_flight: 48 << 20,
        }
    }
}

/// The data file of one map output (Spark's `shuffle_S_M_0.data`).
pub fn data_file(dir: &Path, shuffle_id: ShuffleId, map_index: usize) -> PathBuf {
    dir.join(format!("shuffle_{shuffle_id}_{map_index}_0.data"))
}

/// The index file of one map output (Spark's `shuffle_S_M_0.index`).
pub fn index_file(dir: &Path, shuffle_id: ShuffleId, map_index: usize) -> PathBuf {
    dir.join(format!("shuffle_{shuffle_id}_{map_index}_0.index"))
}
