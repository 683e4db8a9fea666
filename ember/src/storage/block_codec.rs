//! The serialized form of a cached partition (`_SER` levels in memory, every level on disk): its
//! elements as postcard records in the chunked format of shuffle files
//! (the `codec` module's), each chunk lz4-compressed when `ember.rdd.compress` is on and
//! checksummed when `ember.shuffle.checksum.enabled` is.
//! Chunks carry their length, so a block is encoded while it is computed and read back one chunk
//! at a time, and damaged bytes are reported, never trusted.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{ChunkFormat, ChunkWriter, RecordReader};
use crate::error::{EmberError, Result};

/// Encodes elements one by one into bytes in memory, counting the bytes exactly (unrolling a
/// partition into a `_SER` level).
pub struct BytesEncoder {
    writer: ChunkWriter,
    bytes: Vec<u8>,
}

impl BytesEncoder {
    /// An empty block in `format`.
    pub fn new(format: ChunkFormat) -> Self {
        BytesEncoder {
            writer: ChunkWriter::new(format),
            bytes: Vec::new(),
        }
    }

    /// Appends one element.
    pub fn push<T: Serialize>(&mut self, value: &T) -> Result<()> {
        self.writer.push(value)?;
        if self.writer.should_flush() {
            self.writer
                .flush_chunk(&mut self.bytes)
                .map_err(|e| EmberError::io("an in-memory block", e))?;
        }
        Ok(())
    }

    /// Bytes used so far: the finished chunks plus the open one.
    pub fn len(&self) -> u64 {
        (self.bytes.len() + self.writer.buffered_bytes()) as u64
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.writer.records() == 0
    }

    /// The encoded block, trimmed to its size.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.writer
            .flush_chunk(&mut self.bytes)
            .map_err(|e| EmberError::io("an in-memory block", e))?;
        self.bytes.shrink_to_fit();
        Ok(self.bytes)
    }
}

/// Writes elements as a block to `out`; returns the bytes written.
pub fn write_values<T: Serialize>(
    values: &[T],
    out: &mut dyn Write,
    format: ChunkFormat,
) -> std::io::Result<u64> {
    let mut w = ChunkWriter::new(format);
    for v in values {
        w.push(v).map_err(std::io::Error::other)?;
        if w.should_flush() {
            w.flush_chunk(out)?;
        }
    }
    w.flush_chunk(out)?;
    Ok(w.bytes_written())
}

/// Decodes a block held in memory.
pub fn decode_bytes<T: DeserializeOwned + 'static>(
    bytes: &[u8],
    format: ChunkFormat,
) -> std::io::Result<Vec<T>> {
    RecordReader::<T, &[u8]>::new(bytes, bytes.len() as u64, format).collect()
}

/// Decodes a block file of `len` bytes.
pub fn read_file<T: DeserializeOwned + 'static>(
    path: &Path,
    len: u64,
    format: ChunkFormat,
) -> std::io::Result<Vec<T>> {
    RecordReader::<T, std::fs::File>::open(path, 0, len, format)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ChecksumAlgorithm;

    #[test]
    fn round_trips_in_memory_and_counts_exactly() {
        for compress in [false, true] {
            let compress = ChunkFormat::new(compress, None);
            let values: Vec<(u64, String)> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
            let mut enc = BytesEncoder::new(compress);
            for v in &values {
                enc.push(v).unwrap();
            }
            let bytes = enc.finish().unwrap();
            let mut via_writer = Vec::new();
            assert_eq!(
                write_values(&values, &mut via_writer, compress).unwrap(),
                bytes.len() as u64
            );
            assert_eq!(via_writer, bytes, "one format for memory and disk");
            assert_eq!(
                decode_bytes::<(u64, String)>(&bytes, compress).unwrap(),
                values
            );
        }
        let empty = BytesEncoder::new(ChunkFormat::PLAIN);
        assert!(empty.is_empty());
        assert!(
            decode_bytes::<u32>(&empty.finish().unwrap(), ChunkFormat::PLAIN)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        let compressed = ChunkFormat::new(true, None);
        let mut enc = BytesEncoder::new(compressed);
        for i in 0..1000u64 {
            enc.push(&i).unwrap();
        }
        let mut bytes = enc.finish().unwrap();
        bytes.truncate(bytes.len() - 3);
        assert!(decode_bytes::<u64>(&bytes, compressed).is_err());
        assert!(decode_bytes::<u64>(&[0xff, 0xff, 0xff, 0x7f, 1], ChunkFormat::PLAIN).is_err());
        // With a checksum, a changed byte is refused (without one, it may decode as another
        // value: what the checksum is for).
        for algorithm in [ChecksumAlgorithm::Adler32, ChecksumAlgorithm::Crc32] {
            let format = ChunkFormat::new(false, Some(algorithm));
            let mut enc = BytesEncoder::new(format);
            for i in 0..1000u64 {
                enc.push(&i).unwrap();
            }
            let good = enc.finish().unwrap();
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x01;
                assert!(decode_bytes::<u64>(&bad, format).is_err(), "byte {i}");
            }
        }
    }
}
