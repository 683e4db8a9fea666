//! The reduce side of the sort-based shuffle (Spark's `BlockStoreShuffleReader` with
//! `ShuffleBlockFetcherIterator`): finds the block of one reduce partition in every map output and
//! iterates over their records.
//!
//! Blocks on this executor are read from its local files. Blocks of other executors will come
//! through a network fetcher: it only has to produce a block's bytes as a [`BlockSource`];
//! planning, decoding and failure reporting are shared.
//!
//! Any failure to get a block (unknown or missing map output, unreadable or damaged file) is a
//! fetch failure, raised as a [`TaskEndReason::FetchFailed`] unwind payload, as in Spark: the
//! scheduler then re-runs the map stage instead of retrying a reduce task that cannot succeed.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::{data_file, index_file};
use crate::codec::{ChunkFormat, RecordReader};
use crate::task::MapOutputSource;
use crate::task::{BlockManagerId, ShuffleId, TaskContext, TaskEndReason, TaskMetrics};
use ember_net::block_client::{BlockClient, BlockFetchIter};
use ember_net::protocol::BlockRequest;

/// Raises a fetch failure: the task unwinds with this payload and the task runner reports it.
fn fetch_failed(
    location: Option<BlockManagerId>,
    shuffle_id: ShuffleId,
    map_index: Option<usize>,
    reduce_id: usize,
    message: String,
) -> ! {
    tracing::warn!(shuffle_id, ?map_index, reduce_id, "fetch failed: {message}");
    let reason = TaskEndReason::FetchFailed {
        location,
        shuffle_id,
        map_index,
        reduce_id,
        message,
    };
    // Remembered by the attempt, so that user code catching the unwind cannot hide it.
    TaskContext::with_current(|ctx| {
        if let Some(ctx) = ctx {
            ctx.set_fetch_failed(&reason);
        }
    });
    std::panic::resume_unwind(Box::new(reason))
}

/// One non-empty block to read: reduce partition `reduce_id` of one map output.
#[derive(Clone, Debug)]
struct BlockRef {
    map_index: usize,
    /// The attempt that wrote the output, which names its files and blocks.
    map_id: u64,
    location: BlockManagerId,
    /// Stored size from the map status.
    size: u64,
}

/// The bytes of one block: a range of a local data file, or a buffer fetched from another
/// executor. An enum rather than a trait object: dispatch happens per chunk read, but stays
/// static.
pub enum BlockSource {
    /// A local data file positioned at the block's first chunk.
    File(File),
    /// A block received over the network.
    Bytes(Cursor<Vec<u8>>),
}

impl Read for BlockSource {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BlockSource::File(f) => f.read(buf),
            BlockSource::Bytes(c) => c.read(buf),
        }
    }

    #[inline]
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self {
            BlockSource::File(f) => f.read_exact(buf),
            BlockSource::Bytes(c) => c.read_exact(buf),
        }
    }
}

/// Opens a local block: its offsets come from the map output's index file.
fn open_local_block(
    local_dir: &Path,
    shuffle_id: ShuffleId,
    reduce_id: usize,
    block: &BlockRef,
) -> Result<BlockSource, String> {
    let index_path = index_file(local_dir, shuffle_id, block.map_id);
    let describe = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
    let mut index = File::open(&index_path).map_err(|e| describe(&index_path, e))?;
    crate::metrics::count_file_op(false);
    let (start, end) = super::block_resolver::block_range(&mut index, reduce_id)
        .map_err(|e| format!("{}: {e}", index_path.display()))?;
    if end - start != block.size {
        return Err(format!(
            "{}: block of reduce partition {reduce_id} spans {start}..{end}, but its map status \
             says {} bytes",
            index_path.display(),
            block.size
        ));
    }
    let data_path = data_file(local_dir, shuffle_id, block.map_id);
    let mut data = File::open(&data_path).map_err(|e| describe(&data_path, e))?;
    crate::metrics::count_file_op(false);
    data.seek(SeekFrom::Start(start))
        .map_err(|e| describe(&data_path, e))?;
    Ok(BlockSource::File(data))
}

/// The records of one reduce partition, block after block (map output order).
///
/// `'static`: it owns everything it reads from, so it can be returned from an RDD's `compute`.
/// Because it cannot borrow the task's metrics, it counts records itself
/// ([`ShuffleRecords::records_read`]); wrap it with [`ShuffleRecords::metered`] to have them added
/// to `shuffle_records_read`. Blocks fetched and bytes read are counted when it is created.
pub struct ShuffleRecords<T> {
    executor_id: String,
    local_dir: PathBuf,
    format: ChunkFormat,
    shuffle_id: ShuffleId,
    reduce_id: usize,
    blocks: std::vec::IntoIter<BlockRef>,
    /// Blocks of other executors, fetched with a bounded amount in flight once the local ones
    /// are read (Spark's `ShuffleBlockFetcherIterator`).
    remote_refs: Vec<BlockRef>,
    remote: Option<BlockFetchIter>,
    current: Option<(BlockRef, RecordReader<T, BlockSource>)>,
    records: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> ShuffleRecords<T> {
    /// Records returned so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Starts fetching the blocks of other executors through `client`, with at most
    /// `max_in_flight` bytes requested at once (`ember.reducer.maxSizeInFlight`). Without a
    /// client (embedded mode has one executor) a remote block is a fetch failure.
    pub fn start_remote(
        &mut self,
        client: Option<&BlockClient>,
        max_in_flight: u64,
        metrics: &TaskMetrics,
    ) {
        if self.remote_refs.is_empty() {
            return;
        }
        let Some(client) = client else {
            let b = &self.remote_refs[0];
            fetch_failed(
                Some(b.location.clone()),
                self.shuffle_id,
                Some(b.map_index),
                self.reduce_id,
                format!(
                    "block of executor {} cannot be fetched: no block transfer service here",
                    b.location.executor_id
                ),
            )
        };
        let mut reqs = Vec::with_capacity(self.remote_refs.len());
        for b in &self.remote_refs {
            let addr = match format!("{}:{}", b.location.host, b.location.port)
                .parse::<std::net::SocketAddr>()
            {
                Ok(a) => a,
                Err(e) => fetch_failed(
                    Some(b.location.clone()),
                    self.shuffle_id,
                    Some(b.map_index),
                    self.reduce_id,
                    format!("bad block manager address: {e}"),
                ),
            };
            reqs.push((
                addr,
                BlockRequest::Shuffle {
                    shuffle_id: self.shuffle_id,
                    map_id: b.map_id,
                    reduce_id: self.reduce_id,
                },
                b.size,
            ));
        }
        TaskMetrics::add(
            &metrics.shuffle_remote_bytes_read,
            self.remote_refs.iter().map(|b| b.size).sum(),
        );
        self.remote = Some(client.fetch_many(reqs, max_in_flight));
    }

    /// This iterator, adding the records it returns to `metrics.shuffle_records_read`.
    pub fn metered(self, metrics: &TaskMetrics) -> Metered<'_, T> {
        Metered {
            inner: self,
            metrics,
            pending: 0,
        }
    }

    fn open(&self, block: &BlockRef) -> RecordReader<T, BlockSource> {
        let source = if block.location.executor_id == self.executor_id {
            open_local_block(&self.local_dir, self.shuffle_id, self.reduce_id, block)
        } else {
            // Planning already refused remote blocks; this is where a BlockFetcher's bytes
            // (BlockSource::Bytes) will come in.
            Err(format!(
                "remote shuffle fetch from executor {} not available",
                block.location.executor_id
            ))
        };
        match source {
            Ok(src) => RecordReader::new(src, block.size, self.format),
            Err(message) => fetch_failed(
                Some(block.location.clone()),
                self.shuffle_id,
                Some(block.map_index),
                self.reduce_id,
                message,
            ),
        }
    }
}

impl<T: DeserializeOwned + 'static> Iterator for ShuffleRecords<T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        loop {
            if let Some((block, reader)) = &mut self.current {
                match reader.next_record() {
                    Ok(Some(rec)) => {
                        self.records += 1;
                        return Some(rec);
                    }
                    Ok(None) => self.current = None,
                    Err(e) => {
                        let path = data_file(&self.local_dir, self.shuffle_id, block.map_id);
                        fetch_failed(
                            Some(block.location.clone()),
                            self.shuffle_id,
                            Some(block.map_index),
                            self.reduce_id,
                            format!(
                                "{}: damaged block of reduce partition {}: {e}",
                                path.display(),
                                self.reduce_id
                            ),
                        )
                    }
                }
            }
            if let Some(block) = self.blocks.next() {
                let reader = self.open(&block);
                self.current = Some((block, reader));
                continue;
            }
            let fetched = self.remote.as_mut()?.next()?;
            match fetched {
                Ok((i, bytes)) => {
                    let block = self.remote_refs[i].clone();
                    let reader = RecordReader::new(
                        BlockSource::Bytes(Cursor::new(bytes)),
                        block.size,
                        self.format,
                    );
                    self.current = Some((block, reader));
                }
                Err((i, e)) => {
                    let block = &self.remote_refs[i];
                    fetch_failed(
                        Some(block.location.clone()),
                        self.shuffle_id,
                        Some(block.map_index),
                        self.reduce_id,
                        e.to_string(),
                    )
                }
            }
        }
    }
}

/// [`ShuffleRecords`] counting into a task's metrics (in batches, flushed at the end and on drop).
pub struct Metered<'a, T> {
    inner: ShuffleRecords<T>,
    metrics: &'a TaskMetrics,
    pending: u64,
}

impl<T> Metered<'_, T> {
    fn flush(&mut self) {
        if self.pending > 0 {
            TaskMetrics::add(&self.metrics.shuffle_records_read, self.pending);
            self.pending = 0;
        }
    }
}

impl<T: DeserializeOwned + 'static> Iterator for Metered<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match self.inner.next() {
            Some(rec) => {
                self.pending += 1;
                // Batched so the hot loop does not do an atomic add per record; heartbeats still
                // see progress.
                if self.pending == 4096 {
                    self.flush();
                }
                Some(rec)
            }
            None => {
                self.flush();
                None
            }
        }
    }
}

impl<T> Drop for Metered<'_, T> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Reads reduce partition `reduce_id` of a shuffle given the executor's identity and local
/// directory: the body of [`read_reduce_partition`], usable without a full executor environment.
#[allow(clippy::too_many_arguments)]
pub fn read_partition_from<T: DeserializeOwned + 'static>(
    map_outputs: &dyn MapOutputSource,
    executor_id: &str,
    local_dir: &Path,
    format: ChunkFormat,
    metrics: &TaskMetrics,
    shuffle_id: ShuffleId,
    reduce_id: usize,
) -> ShuffleRecords<T> {
    let statuses = match map_outputs.map_statuses(shuffle_id) {
        Ok(s) => s,
        Err(e) => fetch_failed(None, shuffle_id, None, reduce_id, e.to_string()),
    };
    let mut blocks = Vec::with_capacity(statuses.len());
    let mut remote_refs = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        let Some(status) = status else {
            fetch_failed(
                None,
                shuffle_id,
                Some(i),
                reduce_id,
                format!(
                    "Missing an output location for shuffle {shuffle_id} partition {reduce_id}"
                ),
            )
        };
        let Some(&size) = status.sizes.get(reduce_id) else {
            fetch_failed(
                Some(status.location.clone()),
                shuffle_id,
                Some(status.map_index),
                reduce_id,
                format!(
                    "map output {} has {} partitions, reduce partition {reduce_id} requested",
                    status.map_index,
                    status.sizes.len()
                ),
            )
        };
        if size == 0 {
            continue;
        }
        let block = BlockRef {
            map_index: status.map_index,
            map_id: status.map_id,
            location: status.location.clone(),
            size,
        };
        if status.location.executor_id != executor_id {
            remote_refs.push(block);
        } else {
            blocks.push(block);
        }
    }
    TaskMetrics::add(
        &metrics.shuffle_blocks_fetched,
        (blocks.len() + remote_refs.len()) as u64,
    );
    TaskMetrics::add(
        &metrics.shuffle_local_bytes_read,
        blocks.iter().map(|b| b.size).sum(),
    );
    ShuffleRecords {
        executor_id: executor_id.to_string(),
        local_dir: local_dir.to_path_buf(),
        format,
        shuffle_id,
        reduce_id,
        blocks: blocks.into_iter(),
        remote_refs,
        remote: None,
        current: None,
        records: 0,
        _t: PhantomData,
    }
}

/// The records of reduce partition `reduce_id` of a shuffle, from every map output
/// (Spark's `BlockStoreShuffleReader.read`).
///
/// Map output locations come from the executor's `map_outputs`; a missing output, or an error
/// getting or reading one, raises a fetch failure. Blocks fetched and bytes read are added to the
/// task's metrics at once; records read are counted by the returned iterator, see
/// [`ShuffleRecords::metered`] and [`read_reduce_partition_metered`].
pub fn read_reduce_partition<T: DeserializeOwned + 'static>(
    ctx: &TaskContext,
    shuffle_id: ShuffleId,
    reduce_id: usize,
) -> ShuffleRecords<T> {
    let env = ctx.services();
    let mut records = read_partition_from(
        env.map_outputs(),
        env.executor_id(),
        env.local_dir(),
        env.shuffle_conf().format(),
        &ctx.metrics,
        shuffle_id,
        reduce_id,
    );
    records.start_remote(
        env.block_client(),
        env.shuffle_conf().max_size_in_flight,
        &ctx.metrics,
    );
    records
}

/// [`read_reduce_partition`] also counting `shuffle_records_read` (the iterator borrows the task
/// context).
#[cfg(any(test, feature = "testing"))]
pub fn read_reduce_partition_metered<T: DeserializeOwned + 'static>(
    ctx: &TaskContext,
    shuffle_id: ShuffleId,
    reduce_id: usize,
) -> Metered<'_, T> {
    read_reduce_partition(ctx, shuffle_id, reduce_id).metered(&ctx.metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioner::{HashPartitioner, Partitioner};
    use crate::shuffle::external_aggregator::ExternalAggregator;
    use crate::shuffle::sort_writer::{write_combined, write_records};
    use crate::shuffle::ShuffleConf;
    use crate::task::MapOutputSource;
    use crate::task::MapStatus;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;

    const ME: &str = "exec-1";

    struct Outputs(Vec<Option<MapStatus>>);
    impl MapOutputSource for Outputs {
        fn map_statuses(
            &self,
            shuffle_id: ShuffleId,
        ) -> crate::Result<Arc<Vec<Option<MapStatus>>>> {
            if shuffle_id == 99 {
                return Err(crate::error::EmberError::MapOutputsUnavailable {
                    shuffle_id,
                    message: "shuffle 99 is unknown".into(),
                });
            }
            Ok(Arc::new(self.0.clone()))
        }
    }

    fn loc(executor: &str) -> BlockManagerId {
        BlockManagerId {
            executor_id: executor.into(),
            host: "localhost".into(),
            port: 7077,
        }
    }

    use crate::shuffle::test_support::Sum;

    fn read_all<T: DeserializeOwned + 'static>(
        outputs: &Outputs,
        dir: &Path,
        format: ChunkFormat,
        reducers: usize,
        m: &TaskMetrics,
    ) -> Vec<Vec<T>> {
        (0..reducers)
            .map(|r| {
                read_partition_from::<T>(outputs, ME, dir, format, m, 0, r)
                    .metered(m)
                    .collect()
            })
            .collect()
    }

    /// The default format: compressed, with Adler-32 checksums.
    fn fmt() -> ChunkFormat {
        ShuffleConf::default().format()
    }

    fn fetch_failure<F: FnOnce()>(f: F) -> TaskEndReason {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a fetch failure");
        match payload.downcast::<TaskEndReason>() {
            Ok(r) => *r,
            Err(_) => panic!("unwound with something else than a TaskEndReason"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn records_round_trip(
            maps in prop::collection::vec(
                prop::collection::vec((0u64..300, any::<u64>()), 0..1500),
                1..4,
            ),
            reducers in 1usize..6,
            compress in any::<bool>(),
            tiny in any::<bool>()
        ) {
            let dir = tempfile::tempdir().unwrap();
            let conf = ShuffleConf {
                compress,
                spill_threshold: if tiny { 1024 } else { 1 << 30 },
                ..ShuffleConf::default()
            };
            let part = HashPartitioner::new(reducers);
            let wm = TaskMetrics::default();
            let mut statuses = Vec::new();
            for (i, recs) in maps.iter().enumerate() {
                let map_id = i as u64;
                let records = recs.clone().into_iter();
                let sizes =
                    write_records(records, &part, 0, map_id, dir.path(), &conf, &wm).unwrap();
                let location = loc(ME);
                statuses.push(Some(MapStatus { location, map_index: i, map_id, sizes }));
            }
            let total: usize = maps.iter().map(Vec::len).sum();
            if tiny && total > 200 {
                prop_assert!(
                    wm.memory_bytes_spilled.load(Relaxed) > 0
                        && wm.disk_bytes_spilled.load(Relaxed) > 0
                );
            }
            let rm = TaskMetrics::default();
            let outputs = Outputs(statuses);
            let got = read_all::<(u64, u64)>(&outputs, dir.path(), conf.format(), reducers, &rm);
            let mut all = Vec::new();
            for (r, recs) in got.into_iter().enumerate() {
                prop_assert!(recs.iter().all(|(k, _)| part.partition(k) == r));
                all.extend(recs);
            }
            all.sort();
            let mut expect: Vec<(u64, u64)> = maps.concat();
            expect.sort();
            prop_assert_eq!(all, expect);
            prop_assert_eq!(rm.shuffle_records_read.load(Relaxed), total as u64);
            prop_assert_eq!(
                rm.shuffle_local_bytes_read.load(Relaxed),
                wm.shuffle_bytes_written.load(Relaxed)
            );
        }

        #[test]
        fn combined_round_trip(
            maps in prop::collection::vec(
                prop::collection::vec((0u64..400, any::<u64>()), 0..2000),
                1..4,
            ),
            reducers in 1usize..6,
            compress in any::<bool>(),
            tiny in any::<bool>()
        ) {
            let dir = tempfile::tempdir().unwrap();
            let conf = ShuffleConf {
                compress,
                spill_threshold: if tiny { 1024 } else { 1 << 30 },
                ..ShuffleConf::default()
            };
            let part = HashPartitioner::new(reducers);
            let wm = TaskMetrics::default();
            let mut statuses = Vec::new();
            for (i, recs) in maps.iter().enumerate() {
                let sizes = write_combined(
                    recs.clone().into_iter(),
                    &part,
                    &Sum,
                    0,
                    i as u64,
                    dir.path(),
                    &conf,
                    &wm,
                )
                .unwrap();
                let (location, map_id) = (loc(ME), i as u64);
                statuses.push(Some(MapStatus { location, map_index: i, map_id, sizes }));
            }
            if tiny && maps.iter().any(|m| m.len() > 300) {
                prop_assert!(
                    wm.memory_bytes_spilled.load(Relaxed) > 0
                        && wm.disk_bytes_spilled.load(Relaxed) > 0
                );
            }
            let outputs = Outputs(statuses);
            let rm = TaskMetrics::default();
            let mut got: HashMap<u64, u64> = HashMap::new();
            for r in 0..reducers {
                let mut agg = ExternalAggregator::new(Sum, &conf, dir.path());
                for (k, c) in read_partition_from::<(u64, u64)>(
                    &outputs,
                    ME,
                    dir.path(),
                    conf.format(),
                    &rm,
                    0,
                    r,
                ) {
                    prop_assert_eq!(part.partition(&k), r);
                    agg.insert_combiner(k, c, &rm);
                }
                for (k, c) in agg {
                    prop_assert!(got.insert(k, c).is_none());
                }
            }
            let mut expect: HashMap<u64, u64> = HashMap::new();
            for (k, v) in maps.concat() {
                let e = expect.entry(k).or_default();
                *e = e.wrapping_add(v);
            }
            prop_assert_eq!(got, expect);
        }
    }

    #[test]
    fn missing_or_failed_status_is_a_fetch_failure() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let outputs = Outputs(vec![None]);
        let r = fetch_failure(|| {
            read_partition_from::<(u64, u64)>(&outputs, ME, dir.path(), fmt(), &m, 0, 3);
        });
        assert!(
            matches!(
                &r,
                TaskEndReason::FetchFailed {
                    shuffle_id: 0,
                    map_index: Some(0),
                    reduce_id: 3,
                    message,
                    ..
                } if message == "Missing an output location for shuffle 0 partition 3"
            ),
            "{r:?}"
        );
        let r = fetch_failure(|| {
            read_partition_from::<(u64, u64)>(&outputs, ME, dir.path(), fmt(), &m, 99, 0);
        });
        assert!(matches!(
            &r,
            TaskEndReason::FetchFailed { map_index: None, message, .. }
                if message.contains("unknown")
        ));
    }

    #[test]
    fn remote_and_damaged_blocks_are_fetch_failures() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf::default();
        let m = TaskMetrics::default();
        let sizes = write_records(
            (0..5000u64).map(|i| (i, i)),
            &HashPartitioner::new(2),
            0,
            0,
            dir.path(),
            &conf,
            &m,
        )
        .unwrap();
        // Another executor's output.
        let remote = Outputs(vec![Some(MapStatus {
            location: loc("exec-2"),
            map_index: 0,
            map_id: 0,
            sizes: sizes.clone(),
        })]);
        let r = fetch_failure(|| {
            let mut records =
                read_partition_from::<(u64, u64)>(&remote, ME, dir.path(), fmt(), &m, 0, 1);
            // Without a block transfer client (embedded mode), a remote block cannot be read.
            records.start_remote(None, 48 << 20, &m);
        });
        assert!(
            matches!(&r, TaskEndReason::FetchFailed { location: Some(l), message, .. }
            if l.executor_id == "exec-2" && message.contains("no block transfer service"))
        );
        // A status whose size disagrees with the index.
        let mut wrong = sizes.clone();
        wrong[1] += 1;
        let bad = Outputs(vec![Some(MapStatus {
            location: loc(ME),
            map_index: 0,
            map_id: 0,
            sizes: wrong,
        })]);
        let r = fetch_failure(|| {
            read_partition_from::<(u64, u64)>(&bad, ME, dir.path(), fmt(), &m, 0, 1).for_each(drop);
        });
        assert!(matches!(
            r,
            TaskEndReason::FetchFailed {
                map_index: Some(0),
                reduce_id: 1,
                ..
            }
        ));
        // Damaged data.
        let good = Outputs(vec![Some(MapStatus {
            location: loc(ME),
            map_index: 0,
            map_id: 0,
            sizes: sizes.clone(),
        })]);
        let path = data_file(dir.path(), 0, 0);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 20..].fill(0xee);
        std::fs::write(&path, bytes).unwrap();
        let r = fetch_failure(|| {
            read_partition_from::<(u64, u64)>(&good, ME, dir.path(), fmt(), &m, 0, 1)
                .for_each(drop);
        });
        assert!(
            matches!(&r, TaskEndReason::FetchFailed { message, .. } if message.contains("damaged")),
            "{r:?}"
        );
        // One changed byte in the middle of a block: its chunk's checksum says so, before any of
        // its records is returned.
        let intact = {
            std::fs::remove_file(&path).unwrap();
            write_records(
                (0..5000u64).map(|i| (i, i)),
                &HashPartitioner::new(2),
                0,
                0,
                dir.path(),
                &conf,
                &m,
            )
            .unwrap();
            std::fs::read(&path).unwrap()
        };
        // (In its payload, its size prefix and its checksum: a changed length is refused too,
        // as a chunk that overruns its block or fails the checksum of what it then covers.)
        for at in [
            sizes[0] + 5,
            sizes[0] + sizes[1] / 2,
            sizes[0] + sizes[1] - 1,
        ] {
            let mut bytes = intact.clone();
            bytes[at as usize] ^= 0x10;
            std::fs::write(&path, bytes).unwrap();
            let mut returned = 0;
            let r = fetch_failure(|| {
                read_partition_from::<(u64, u64)>(&good, ME, dir.path(), fmt(), &m, 0, 1)
                    .for_each(|_| returned += 1);
            });
            assert!(
                matches!(&r, TaskEndReason::FetchFailed { message, .. }
                    if message.contains("checksum")),
                "{r:?}"
            );
            assert_eq!(
                returned, 0,
                "a block of one chunk returns nothing once damaged"
            );
        }
        // Missing files.
        std::fs::remove_file(&path).unwrap();
        let r = fetch_failure(|| {
            read_partition_from::<(u64, u64)>(&good, ME, dir.path(), fmt(), &m, 0, 0)
                .for_each(drop);
        });
        assert!(matches!(r, TaskEndReason::FetchFailed { .. }));
    }

    #[test]
    fn empty_blocks_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        // An empty map output and a map output on another executor with nothing for us.
        let outputs = Outputs(vec![
            Some(MapStatus {
                location: loc(ME),
                map_index: 0,
                map_id: 0,
                sizes: vec![0, 0],
            }),
            Some(MapStatus {
                location: loc("exec-9"),
                map_index: 1,
                map_id: 1,
                sizes: vec![0, 0],
            }),
        ]);
        assert_eq!(
            read_partition_from::<(u64, u64)>(&outputs, ME, dir.path(), fmt(), &m, 0, 1).count(),
            0
        );
        assert_eq!(m.shuffle_blocks_fetched.load(Relaxed), 0);
    }
}
