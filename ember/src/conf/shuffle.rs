//! The shuffle's settings, read once per executor: every task that writes or reads a shuffle
//! gets them from its executor (see `crate::task::ExecutorServices`), not from the keys.

use super::{self as conf, EmberConf};
use crate::codec::{ChecksumAlgorithm, ChunkFormat};
use crate::error::Result;

/// The chunk checksum of shuffle files, spills and serialized cached partitions:
/// `ember.shuffle.checksum.algorithm` when `ember.shuffle.checksum.enabled`, else none.
pub fn chunk_checksum(c: &EmberConf) -> Result<Option<ChecksumAlgorithm>> {
    let key = conf::SHUFFLE_CHECKSUM_ALGORITHM;
    let name = c.get(key);
    // Checked even when checksums are off, as Spark checks a value whether or not it is used.
    let algorithm = ChecksumAlgorithm::parse(name).ok_or_else(|| {
        c.bad(
            key,
            name,
            &format!(
                "The value of {key} should be one of {}, but was {}",
                ChecksumAlgorithm::NAMES,
                name.trim()
            ),
        )
    })?;
    Ok(c.get_bool(conf::SHUFFLE_CHECKSUM_ENABLED)?
        .then_some(algorithm))
}

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
    /// The chunk checksum ([`chunk_checksum`]).
    pub checksum: Option<ChecksumAlgorithm>,
}

impl ShuffleConf {
    /// How shuffle blocks (and the spilled runs of map outputs, which are copied into them) are
    /// written.
    pub fn format(&self) -> ChunkFormat {
        ChunkFormat::new(self.compress, self.checksum)
    }

    /// How reduce-side spills (aggregation buckets, sorted runs) are written.
    pub fn spill_format(&self) -> ChunkFormat {
        ChunkFormat::new(self.spill_compress, self.checksum)
    }
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
            checksum: chunk_checksum(c)?,
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
            checksum: Some(ChecksumAlgorithm::Adler32),
        }
    }
}
