//! The shuffle's settings, read once per executor: every task that writes or reads a shuffle
//! gets them from its executor (see `crate::task::ExecutorServices`), not from the keys.

use super::{self as conf, EmberConf};
use crate::error::Result;

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
