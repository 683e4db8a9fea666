//! Spark's `lz4` codec stream: lz4-java's `LZ4BlockOutputStream` framing, so that Spark's
//! History Server reads Ember's `.lz4` event logs.
//!
//! Each block is `"LZ4Block"`, a token (method `0x10` raw or `0x20` LZ4, ORed with the
//! compression level from the block size), the compressed and the original length and an
//! xxHash32 checksum (seed `0x9747b28c`, lowest 28 bits) of the original bytes, all
//! little-endian, then the data. An empty raw block ends the stream.

use std::io::{self, Write};

const MAGIC: &[u8; 8] = b"LZ4Block";
const METHOD_RAW: u8 = 0x10;
const METHOD_LZ4: u8 = 0x20;
const LEVEL_BASE: u32 = 10;
const SEED: u32 = 0x9747_b28c;
/// Spark's `spark.io.compression.lz4.blockSize` default.
pub const BLOCK_SIZE: usize = 32 * 1024;

/// Writes Spark's lz4 stream to `W`.
pub struct Lz4BlockWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
    block_size: usize,
    level: u8,
    compressed: Vec<u8>,
    finished: bool,
}

impl<W: Write> Lz4BlockWriter<W> {
    /// A stream of `block_size`-byte blocks (at least 64 bytes).
    pub fn new(inner: W, block_size: usize) -> Self {
        let block_size = block_size.max(64);
        // lz4-java: 32 - numberOfLeadingZeros(blockSize - 1) - COMPRESSION_LEVEL_BASE, at least 0.
        let bits = 32 - ((block_size - 1) as u32).leading_zeros();
        let level = bits.saturating_sub(LEVEL_BASE) as u8;
        Lz4BlockWriter {
            inner,
            buffer: Vec::with_capacity(block_size),
            block_size,
            level,
            compressed: Vec::new(),
            finished: false,
        }
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let checksum = twox_hash::XxHash32::oneshot(SEED, &self.buffer) & 0x0FFF_FFFF;
        self.compressed.resize(
            lz4_flex::block::get_maximum_output_size(self.buffer.len()),
            0,
        );
        let n = lz4_flex::block::compress_into(&self.buffer, &mut self.compressed)
            .map_err(io::Error::other)?;
        let (method, data) = if n >= self.buffer.len() {
            (METHOD_RAW, &self.buffer[..])
        } else {
            (METHOD_LZ4, &self.compressed[..n])
        };
        let mut header = [0u8; 21];
        header[..8].copy_from_slice(MAGIC);
        header[8] = method | self.level;
        header[9..13].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[13..17].copy_from_slice(&(self.buffer.len() as u32).to_le_bytes());
        header[17..21].copy_from_slice(&checksum.to_le_bytes());
        self.inner.write_all(&header)?;
        self.inner.write_all(data)?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered and the end mark, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        let mut end = [0u8; 21];
        end[..8].copy_from_slice(MAGIC);
        end[8] = METHOD_RAW | self.level;
        self.inner.write_all(&end)?;
        self.inner.flush()?;
        self.finished = true;
        // `self` has a Drop-free layout: take the inner writer out by value.
        let Lz4BlockWriter { inner, .. } = self;
        Ok(inner)
    }
}

impl<W: Write> Write for Lz4BlockWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            let room = self.block_size - self.buffer.len();
            let take = room.min(buf.len());
            self.buffer.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.buffer.len() == self.block_size {
                self.write_block()?;
            }
        }
        Ok(total)
    }

    /// Like lz4-java's `flush`: what is buffered becomes a (short) block.
    fn flush(&mut self) -> io::Result<()> {
        self.write_block()?;
        self.inner.flush()
    }
}

/// Reads a stream written by [`Lz4BlockWriter`] (for tests): the original bytes.
#[cfg(test)]
pub fn decode(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut out = Vec::new();
    loop {
        if data.len() < 21 || &data[..8] != MAGIC {
            return Err(bad("not an LZ4Block header"));
        }
        let method = data[8] & 0xF0;
        let clen = u32::from_le_bytes([data[9], data[10], data[11], data[12]]) as usize;
        let olen = u32::from_le_bytes([data[13], data[14], data[15], data[16]]) as usize;
        let check = u32::from_le_bytes([data[17], data[18], data[19], data[20]]);
        data = &data[21..];
        if olen == 0 {
            return Ok(out);
        }
        if data.len() < clen {
            return Err(bad("truncated block"));
        }
        let block = match method {
            METHOD_RAW => data[..clen].to_vec(),
            METHOD_LZ4 => {
                lz4_flex::block::decompress(&data[..clen], olen).map_err(|e| bad(&e.to_string()))?
            }
            _ => return Err(bad("unknown compression method")),
        };
        if twox_hash::XxHash32::oneshot(SEED, &block) & 0x0FFF_FFFF != check {
            return Err(bad("checksum mismatch"));
        }
        out.extend_from_slice(&block);
        data = &data[clen..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_blocks_and_flushes() {
        let text: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{{\"Event\":\"x\",\"n\":{i}}}\n").into_bytes())
            .collect();
        let mut w = Lz4BlockWriter::new(Vec::new(), BLOCK_SIZE);
        w.write_all(&text[..10]).unwrap();
        w.flush().unwrap();
        w.write_all(&text[10..]).unwrap();
        let bytes = w.finish().unwrap();
        assert!(
            bytes.len() < text.len() / 2,
            "compressed: {} of {}",
            bytes.len(),
            text.len()
        );
        assert_eq!(decode(&bytes).unwrap(), text);
        assert_eq!(&bytes[..8], MAGIC);
        // 32 KiB blocks: level 15 - 10 = 5, as lz4-java computes it.
        assert_eq!(bytes[8] & 0x0F, 5);
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let mut x: u64 = 0x1234_5678;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut w = Lz4BlockWriter::new(Vec::new(), BLOCK_SIZE);
        w.write_all(&noise).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes[8] & 0xF0, METHOD_RAW);
        assert_eq!(decode(&bytes).unwrap(), noise);
    }
}
