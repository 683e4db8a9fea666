//! The map side's buffers without aggregation (Spark's `PartitionedPairBuffer`): records are
//! encoded as they arrive into per-reduce-partition chunk buffers, so each record is serialized
//! exactly once, and partition order comes from keeping partitions apart from the start (nothing
//! is sorted).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::map_output_writer::MapOutput;
use crate::codec::{io_err, ChunkBuf, ChunkFormat};
use crate::error::{EmberError, Result};

/// One reduce partition's encoded records held in memory.
#[derive(Default)]
struct PartBuf {
    /// Records of the chunk being filled.
    open: ChunkBuf,
    /// Finished chunks, framed and (if configured) compressed: ready to be copied to a file.
    /// One allocation each rather than one growing buffer: growing a buffer of megabytes by
    /// doubling copied it at each step and took fresh pages for every new size, which the kernel
    /// zeroed (10 % of W5's samples in `perf record`).
    done: Vec<Vec<u8>>,
}

/// Per-reduce-partition chunk buffers of one map task (no aggregation).
pub(super) struct PartitionedBuffers {
    parts: Vec<PartBuf>,
    /// Compression output, shared by all partitions.
    scratch: Vec<u8>,
    format: ChunkFormat,
    /// Bytes held in `open` and `done` buffers (what the spill threshold is compared with).
    pub(super) bytes: u64,
}

impl PartitionedBuffers {
    pub(super) fn new(partitions: usize, format: ChunkFormat) -> Self {
        PartitionedBuffers {
            parts: (0..partitions).map(|_| PartBuf::default()).collect(),
            scratch: Vec::new(),
            format,
            bytes: 0,
        }
    }

    /// Encodes the record `(key, value)` into partition `p`'s buffer, closing the chunk when it
    /// is full.
    #[inline]
    pub(super) fn push_pair<K: Serialize + 'static, V: Serialize + 'static>(
        &mut self,
        p: usize,
        key: &K,
        value: &V,
    ) -> Result<()> {
        let n = self.parts.len();
        // The error is built only on the error path (`ok_or` built one for every record).
        let Some(part) = self.parts.get_mut(p) else {
            return Err(EmberError::InvalidPartition {
                partition: p,
                partitions: n,
            });
        };
        let before = part.open.len();
        part.open.push_pair(key, value)?;
        let after = part.open.len();
        self.bytes += (after - before) as u64;
        if part.open.is_full() {
            // Writing into a Vec only fails for a chunk over 4 GiB.
            let mut chunk = Vec::new();
            let framed = part
                .open
                .finish_into(self.format, &mut self.scratch, &mut chunk)
                .map_err(|e| EmberError::io("an in-memory shuffle buffer", e))?;
            part.done.push(chunk);
            self.bytes = self.bytes - after as u64 + framed;
        }
        Ok(())
    }
}

impl MapOutput for PartitionedBuffers {
    fn partitions(&self) -> usize {
        self.parts.len()
    }

    fn write_partition<W: Write>(&mut self, p: usize, out: &mut W, path: &Path) -> Result<u64> {
        let part = &mut self.parts[p];
        let mut n = 0;
        for chunk in part.done.drain(..) {
            out.write_all(&chunk).map_err(io_err(path))?;
            n += chunk.len() as u64;
        }
        let held = n + part.open.len() as u64;
        n += part
            .open
            .finish_into(self.format, &mut self.scratch, out)
            .map_err(io_err(path))?;
        self.bytes -= held;
        Ok(n)
    }
}
