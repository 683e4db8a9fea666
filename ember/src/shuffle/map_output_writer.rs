//! Assembling a map task's output files (Spark's `ShuffleMapOutputWriter` with the spill merge
//! of `ExternalSorter.writePartitionedMapOutput`): a map task's in-memory output ([`MapOutput`]:
//! the no-combine buffers or a combiner) is spilled as per-partition runs when memory runs out,
//! and the final data file is assembled by byte copies of the runs followed by the in-memory
//! remainder, partition by partition; [`super::block_resolver`] writes the index and commits.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::block_resolver;
use super::ShuffleConf;
use crate::codec::{copy_chunks, io_err, SpillFile};
use crate::error::Result;
use crate::task::{ShuffleId, TaskMetrics};

/// Smallest write buffer for output and spill files: fewer syscalls than Spark's 32 KiB default
/// costs nothing here, as only one file is open for writing at a time.
const MIN_FILE_BUFFER: usize = 256 << 10;

pub(super) fn file_buffer(conf: &ShuffleConf) -> usize {
    conf.file_buffer.max(MIN_FILE_BUFFER)
}

/// A map task's output held in memory, written out one reduce partition at a time (to a spill
/// file or to the final data file).
pub(super) trait MapOutput {
    /// Number of reduce partitions.
    fn partitions(&self) -> usize;
    /// Writes partition `p`'s records as chunks to `out` and drops them from memory; returns the
    /// bytes written. `path` names `out` in errors.
    fn write_partition<W: Write>(&mut self, p: usize, out: &mut W, path: &Path) -> Result<u64>;
}

/// A spill of all partitions: partition `p`'s chunks are `segments[p]` = (offset, len).
pub(super) struct SpilledRuns {
    file: SpillFile,
    segments: Vec<(u64, u64)>,
}

/// Writes every partition of `output` to a new spill file, in partition order.
pub(super) fn spill_output<O: MapOutput>(
    output: &mut O,
    in_memory_bytes: u64,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<SpilledRuns> {
    let file = SpillFile::create(dir, "shuffle-spill").map_err(io_err(dir))?;
    let path = file.path().to_path_buf();
    let mut segments = Vec::with_capacity(output.partitions());
    let mut offset = 0;
    {
        let mut w = BufWriter::with_capacity(file_buffer(conf), file.file());
        for p in 0..output.partitions() {
            let len = output.write_partition(p, &mut w, &path)?;
            segments.push((offset, len));
            offset += len;
        }
        w.flush().map_err(io_err(&path))?;
    }
    TaskMetrics::add(&metrics.memory_bytes_spilled, in_memory_bytes);
    TaskMetrics::add(&metrics.disk_bytes_spilled, offset);
    tracing::debug!(path = %path.display(), bytes = offset, "spilled shuffle map output");
    Ok(SpilledRuns { file, segments })
}

/// Writes the final data and index files: for each partition, its spilled runs in spill order
/// (their chunks' checksums checked on the way: a damaged spill fails the task, which is retried,
/// rather than becoming a damaged map output), then its in-memory remainder. Returns the size of
/// each block.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_output<O: MapOutput>(
    mut output: O,
    spills: Vec<SpilledRuns>,
    records: u64,
    shuffle_id: ShuffleId,
    map_id: u64,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    let partitions = output.partitions();
    // Temporary names first: a task that fails half-way leaves nothing a reader could mistake for
    // its output (the guards delete the files on any early return).
    let tmp_data = SpillFile::create(dir, &format!("shuffle_{shuffle_id}_{map_id}_0.data"))
        .map_err(io_err(dir))?;
    let mut lengths = Vec::with_capacity(partitions);
    {
        let tmp_path = tmp_data.path();
        let mut w = BufWriter::with_capacity(file_buffer(conf), tmp_data.file());
        let mut copy_buf = Vec::new();
        for p in 0..partitions {
            let mut len = 0;
            for s in &spills {
                let (off, l) = s.segments[p];
                if l > 0 {
                    let mut src = s.file.file();
                    src.seek(SeekFrom::Start(off))
                        .and_then(|_| {
                            copy_chunks(&mut src, l, conf.format(), &mut w, &mut copy_buf)
                        })
                        .map_err(io_err(s.file.path()))?;
                }
                len += l;
            }
            len += output.write_partition(p, &mut w, tmp_path)?;
            lengths.push(len);
        }
        w.flush().map_err(io_err(tmp_path))?;
    }
    drop(spills);
    drop(output);

    let tmp_index = block_resolver::write_index(dir, shuffle_id, map_id, &lengths)?;
    TaskMetrics::add(&metrics.shuffle_records_written, records);
    TaskMetrics::add(&metrics.shuffle_bytes_written, lengths.iter().sum());
    block_resolver::commit(
        tmp_data,
        tmp_index,
        dir,
        shuffle_id,
        map_id,
        lengths,
    )
}
