//! The map side of the sort-based shuffle (Spark's `SortShuffleWriter`): writes one map task's
//! records as one data file (a block per reduce partition, in partition order) and one index
//! file, in the format of [`super`].
//!
//! Records are encoded as they arrive into per-reduce-partition chunk buffers, so each record is
//! serialized exactly once; spills write those buffers as per-partition runs, and the final file
//! is assembled by byte copies of the runs followed by the in-memory remainder. Nothing is sorted:
//! partition order comes from keeping partitions apart from the start.

use std::collections::hash_map::Entry;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::block_format::{io_err, ChunkBuf, SpillFile};
use crate::partitioner::{fast_range, fx_hash, mix64};
use super::size_tracker::{map_slot_bytes, SizeTracker};
use super::str_table::{self, InlineKey, StrTable};
use crate::util::{cast, cast_ref, is_string};
use super::{data_file, index_file, ShuffleConf};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::error::{EmberError, Result};
use crate::memory::MemoryConsumer;
use crate::partitioner::Partitioner;
use crate::rdd::PairSink;
use crate::task::{ShuffleId, TaskMetrics};

/// Smallest write buffer for output and spill files: fewer syscalls than Spark's 32 KiB default
/// costs nothing here, as only one file is open for writing at a time.
const MIN_FILE_BUFFER: usize = 256 << 10;

fn file_buffer(conf: &ShuffleConf) -> usize {
    conf.file_buffer.max(MIN_FILE_BUFFER)
}

/// A map task's output held in memory, written out one reduce partition at a time (to a spill
/// file or to the final data file).
trait MapOutput {
    /// Number of reduce partitions.
    fn partitions(&self) -> usize;
    /// Writes partition `p`'s records as chunks to `out` and drops them from memory; returns the
    /// bytes written. `path` names `out` in errors.
    fn write_partition<W: Write>(&mut self, p: usize, out: &mut W, path: &Path) -> Result<u64>;
}

/// One reduce partition's encoded records held in memory.
#[derive(Default)]
struct PartBuf {
    /// Records of the chunk being filled.
    open: ChunkBuf,
    /// Finished chunks, framed and (if configured) compressed: ready to be copied to a file.
    done: Vec<u8>,
}

/// Per-reduce-partition chunk buffers of one map task (no aggregation).
struct PartitionedBuffers {
    parts: Vec<PartBuf>,
    /// Compression output, shared by all partitions.
    scratch: Vec<u8>,
    compress: bool,
    /// Bytes held in `open` and `done` buffers (what the spill threshold is compared with).
    bytes: u64,
}

impl PartitionedBuffers {
    fn new(partitions: usize, compress: bool) -> Self {
        PartitionedBuffers {
            parts: (0..partitions).map(|_| PartBuf::default()).collect(),
            scratch: Vec::new(),
            compress,
            bytes: 0,
        }
    }

    /// Encodes `record` into partition `p`'s buffer, closing the chunk when it is full.
    #[inline]
    fn push<T: Serialize + ?Sized>(&mut self, p: usize, record: &T) -> Result<()> {
        let n = self.parts.len();
        let part = self.parts.get_mut(p).ok_or_else(|| bad_partition(p, n))?;
        let before = part.open.len();
        part.open.push(record)?;
        let after = part.open.len();
        self.bytes += (after - before) as u64;
        if part.open.is_full() {
            // Writing into a Vec only fails for a chunk over 4 GiB.
            let framed = part.open.finish_into(self.compress, &mut self.scratch, &mut part.done).map_err(|e| EmberError::io("an in-memory shuffle buffer", e))?;
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
        let held = (part.done.len() + part.open.len()) as u64;
        out.write_all(&part.done).map_err(io_err(path))?;
        let mut n = part.done.len() as u64;
        part.done.clear();
        n += part.open.finish_into(self.compress, &mut self.scratch, out).map_err(io_err(path))?;
        self.bytes -= held;
        Ok(n)
    }
}

fn bad_partition(p: usize, n: usize) -> EmberError {
    EmberError::InvalidPartition { partition: p, partitions: n }
}

/// A spill of all partitions: partition `p`'s chunks are `segments[p]` = (offset, len).
struct SpilledRuns {
    file: SpillFile,
    segments: Vec<(u64, u64)>,
}

/// Writes every partition of `output` to a new spill file, in partition order.
fn spill_output<O: MapOutput>(
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

/// Copies `len` bytes at `offset` of `src` to `out`.
fn copy_range<W: Write>(mut src: &File, offset: u64, len: u64, out: &mut W, buf: &mut Vec<u8>) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    src.seek(SeekFrom::Start(offset))?;
    if buf.is_empty() {
        buf.resize(1 << 20, 0);
    }
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        src.read_exact(&mut buf[..n])?;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Serializes commits of map outputs in this process: two attempts of the same map task (a
/// speculative copy, a re-run) must not interleave their renames, which would pair one attempt's
/// index with the other's data.
static COMMIT_LOCK: Mutex<()> = Mutex::new(());

/// The block sizes of an already committed, consistent output, if there is one (Spark's
/// `IndexShuffleBlockResolver.checkIndexAndDataFile`).
fn existing_output(data_path: &Path, index_path: &Path, partitions: usize) -> Option<Vec<u64>> {
    let index = fs::read(index_path).ok()?;
    if index.len() != (partitions + 1) * 8 {
        return None;
    }
    let offsets: Vec<u64> = index.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0xff; 8]))).collect();
    if offsets[0] != 0 || offsets.windows(2).any(|w| w[1] < w[0]) {
        return None;
    }
    let data_len = fs::metadata(data_path).ok()?.len();
    (data_len == offsets[partitions]).then(|| offsets.windows(2).map(|w| w[1] - w[0]).collect())
}

/// Writes the final data and index files: for each partition, its spilled runs in spill order,
/// then its in-memory remainder. Returns the size of each block.
#[allow(clippy::too_many_arguments)]
fn write_output<O: MapOutput>(
    mut output: O,
    spills: Vec<SpilledRuns>,
    records: u64,
    shuffle_id: ShuffleId,
    map_index: usize,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    let partitions = output.partitions();
    let data_path = data_file(dir, shuffle_id, map_index);
    let index_path = index_file(dir, shuffle_id, map_index);
    // Temporary names first: a task that fails half-way leaves nothing a reader could mistake for
    // its output (the guards delete the files on any early return).
    let tmp_data = SpillFile::create(dir, &format!("shuffle_{shuffle_id}_{map_index}_0.data")).map_err(io_err(dir))?;
    let mut lengths = Vec::with_capacity(partitions);
    {
        let tmp_path = tmp_data.path();
        let mut w = BufWriter::with_capacity(file_buffer(conf), tmp_data.file());
        let mut copy_buf = Vec::new();
        for p in 0..partitions {
            let mut len = 0;
            for s in &spills {
                let (off, l) = s.segments[p];
                copy_range(s.file.file(), off, l, &mut w, &mut copy_buf).map_err(io_err(s.file.path()))?;
                len += l;
            }
            len += output.write_partition(p, &mut w, tmp_path)?;
            lengths.push(len);
        }
        w.flush().map_err(io_err(tmp_path))?;
    }
    drop(spills);
    drop(output);

    let tmp_index = SpillFile::create(dir, &format!("shuffle_{shuffle_id}_{map_index}_0.index")).map_err(io_err(dir))?;
    let mut index = Vec::with_capacity((partitions + 1) * 8);
    let mut offset = 0u64;
    index.extend_from_slice(&offset.to_le_bytes());
    for l in &lengths {
        offset += l;
        index.extend_from_slice(&offset.to_le_bytes());
    }
    tmp_index.file().write_all(&index).map_err(io_err(tmp_index.path()))?;

    TaskMetrics::add(&metrics.shuffle_records_written, records);
    TaskMetrics::add(&metrics.shuffle_bytes_written, offset);

    let _guard = COMMIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = existing_output(&data_path, &index_path, partitions) {
        // Another attempt of this map task already committed: keep its output (readers may be
        // using it) and report its sizes, as Spark does. Ours is deleted by the guards.
        tracing::debug!(shuffle_id, map_index, "map output already committed by another attempt");
        return Ok(existing);
    }
    // Data before index: an index on disk always describes the data file next to it.
    tmp_data.persist(&data_path).map_err(io_err(&data_path))?;
    tmp_index.persist(&index_path).map_err(io_err(&index_path))?;
    Ok(lengths)
}

/// Writes a map task's records without aggregation (Spark's sort shuffle with no map-side
/// combine): each record goes to its reduce partition's buffer as it arrives.
///
/// Past `conf.spill_threshold` bytes of buffered output, all buffers are spilled to a spill file
/// as per-partition runs. Returns the stored size of each reduce block.
pub fn write_records<K: Key, V: Data, P: Partitioner<K>>(
    records: impl Iterator<Item = (K, V)>,
    partitioner: &P,
    shuffle_id: ShuffleId,
    map_index: usize,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut bufs = PartitionedBuffers::new(partitioner.num_partitions(), conf.compress);
    let mut spills = Vec::new();
    let mut count = 0u64;
    let mut memory = MemoryConsumer::for_current_task(conf.spill_threshold);
    for (k, v) in records {
        let p = partitioner.partition(&k);
        // A tuple of references encodes exactly like `(K, V)`.
        bufs.push(p, &(&k, &v))?;
        count += 1;
        if memory.should_spill(bufs.bytes) {
            let held = bufs.bytes;
            spills.push(spill_output(&mut bufs, held, dir, conf, metrics)?);
            memory.release();
        }
    }
    write_output(bufs, spills, count, shuffle_id, map_index, dir, conf, metrics)
}

/// Inserts into a map with size tracking; returns the sampled entry size when the tracker asks.
#[inline]
pub(crate) fn upsert<K: Key, C: Serialize, X>(
    map: &mut FxHashMap<K, C>,
    tracker: &mut SizeTracker,
    key: K,
    x: X,
    create: impl FnOnce(X) -> C,
    merge: impl FnOnce(&mut C, X),
) -> Option<usize> {
    match map.entry(key) {
        Entry::Occupied(mut e) => {
            merge(e.get_mut(), x);
            tracker.tick().then(|| SizeTracker::measure(&(e.key(), e.get())))
        }
        Entry::Vacant(e) => {
            let c = create(x);
            if tracker.tick() {
                let e = e.insert_entry(c);
                Some(SizeTracker::measure(&(e.key(), e.get())))
            } else {
                e.insert(c);
                None
            }
        }
    }
}

/// Entries a combine map may hold before it is split into buckets: below this it stays in cache
/// and a single map is fastest.
pub(crate) const DIRECT_MAX_ENTRIES: usize = 16 << 10;

/// Whether queueing records per bucket pays off for these types: only for plain inline data.
///
/// Queued keys and values that own heap data (`String`, `Vec`) are cold by the time they are
/// folded — hashing a queued `String` key is a cache miss — and the queue keeps up to
/// `PENDING_BUDGET` of allocations alive. Measured on a word count (5M `String` keys, Zipf over
/// 100K words): 1300 ms queued vs 420 ms with one map; on 2.5M `u64` keys over 1M: 120 ms queued
/// vs 208 ms with one map. Types without drop glue own no heap data.
pub(crate) const fn queueing_pays<K, V>() -> bool {
    !std::mem::needs_drop::<K>() && !std::mem::needs_drop::<V>()
}
/// Buckets aimed for in total (reduce partitions x sub-buckets): each bucket's map is then a
/// fraction of the whole, small enough to stay in cache while a batch is folded into it.
const TARGET_BUCKETS: usize = 256;
/// Bytes of values waiting in bucket queues, over all buckets (at most a quarter of the spill
/// threshold). Folding pays off when a bucket's batch is large next to its map, so that the map's
/// cache lines are reused: measured on 2.5M records / 918K keys, 2 MiB gave 170 ms, 32 MiB 120 ms
/// (a single map: 208 ms).
pub(crate) const PENDING_BUDGET: usize = 32 << 20;
/// Seed of the sub-bucket hash: independent of the partitioner's hash, so sub-buckets split a
/// partition's keys evenly.
const SUB_BUCKET_SEED: u64 = 0xD6E8_FEB8_6659_FD93;

/// Map-side combine state (Spark's `PartitionedAppendOnlyMap`, reorganized for cache locality).
///
/// A big combine map is slow because every insert is a cache miss in a table of many megabytes.
/// So once the map outgrows the cache, keys are split into buckets — by reduce partition, then by
/// an independent hash into sub-buckets — each with its own small map. Records are queued per
/// bucket and folded into the bucket's map a batch at a time, while that map is in cache.
/// Buckets are grouped by partition, so the output is written partition by partition straight
/// from the maps, with no sort and no intermediate buffer.
struct MapCombiner<'a, K, V, C, A, P> {
    agg: &'a A,
    partitioner: &'a P,
    partitions: usize,
    /// Sub-buckets per partition.
    sub: usize,
    /// The single map used until it holds `DIRECT_MAX_ENTRIES` keys.
    direct: FxHashMap<K, C>,
    bucketed: bool,
    /// Bucket `p * sub + s`'s map.
    maps: Vec<FxHashMap<K, C>>,
    /// Values waiting to be folded into each bucket's map.
    pending: Vec<Vec<(K, V)>>,
    /// Queue length at which a bucket is folded.
    batch: usize,
    pending_count: usize,
    /// Keys over all bucket maps.
    entries: usize,
    tracker: SizeTracker,
    chunk: ChunkBuf,
    scratch: Vec<u8>,
    compress: bool,
    /// Bytes the bucket queues may hold.
    pending_budget: usize,
    /// When `K` is `String`: the keys of up to `str_table::INLINE_MAX` bytes, stored inline
    /// (longer ones go to `direct`).
    strs: StrTable<C>,
    /// `strs`'s entries by reduce partition, once split for writing.
    str_parts: Vec<Vec<(InlineKey, C)>>,
    /// An inline key as a `String`, for the partitioner and the encoder.
    key_buf: String,
    /// The size of `strs` when its combiners own heap data (see `insert_inline`).
    str_tracker: SizeTracker,
    /// Inline-key records whose slots are being prefetched, with their hashes.
    str_batch: Vec<(InlineKey, u64, V)>,
}

/// Records whose table slots are prefetched before any is looked up: enough for the misses of
/// the rare keys among them to overlap, few enough that the first slots are still in cache when
/// the last are fetched.
const PREFETCH_BATCH: usize = 16;

impl<'a, K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapCombiner<'a, K, V, C, A, P> {
    fn new(agg: &'a A, partitioner: &'a P, compress: bool, spill_threshold: u64) -> Self {
        let partitions = partitioner.num_partitions();
        MapCombiner {
            agg,
            partitioner,
            partitions,
            // Without queueing, buckets only group the output by partition: one per partition.
            sub: if queueing_pays::<K, V>() { (TARGET_BUCKETS / partitions.max(1)).max(1) } else { 1 },
            direct: FxHashMap::default(),
            bucketed: false,
            maps: Vec::new(),
            pending: Vec::new(),
            batch: 0,
            pending_count: 0,
            entries: 0,
            tracker: SizeTracker::new(),
            chunk: ChunkBuf::new(),
            scratch: Vec::new(),
            compress,
            pending_budget: PENDING_BUDGET.min((spill_threshold / 4) as usize),
            strs: StrTable::default(),
            str_parts: Vec::new(),
            key_buf: String::new(),
            str_tracker: SizeTracker::new(),
            str_batch: Vec::with_capacity(PREFETCH_BATCH),
        }
    }

    #[inline]
    fn bucket_of(&self, key: &K) -> Result<usize> {
        let p = self.partitioner.partition(key);
        if p >= self.partitions {
            return Err(bad_partition(p, self.partitions));
        }
        let s = if self.sub == 1 { 0 } else { fast_range(mix64(fx_hash(key) ^ SUB_BUCKET_SEED), self.sub) };
        Ok(p * self.sub + s)
    }

    #[inline]
    fn insert(&mut self, key: K, value: V) -> Result<()> {
        let key = if is_string::<K>() {
            match cast::<K, String>(key) {
                Ok(s) => match InlineKey::new(s.as_bytes()) {
                    Some(k) => {
                        self.insert_inline(k, value);
                        return Ok(());
                    }
                    None => cast::<String, K>(s).map_err(|_| type_mismatch())?,
                },
                Err(key) => key,
            }
        } else {
            key
        };
        self.insert_owned(key, value)
    }

    /// Inserts a pair whose key is lent as a `&str` (`K` is `String`): a short key is looked up
    /// inline and never copied to the heap.
    #[inline]
    fn insert_str(&mut self, key: &str, value: V) -> Result<()> {
        match InlineKey::new(key.as_bytes()) {
            Some(k) => {
                self.insert_inline(k, value);
                Ok(())
            }
            None => self.insert_owned(cast::<String, K>(key.to_owned()).map_err(|_| type_mismatch())?, value),
        }
    }

    /// Queues an inline-key record and prefetches its slot; the queue is folded into `strs`
    /// every `PREFETCH_BATCH` records, when the prefetched slots have (mostly) arrived.
    #[inline(always)]
    fn insert_inline(&mut self, key: InlineKey, value: V) {
        let hash = key.hash();
        self.strs.prefetch(hash);
        self.str_batch.push((key, hash, value));
        if self.str_batch.len() >= PREFETCH_BATCH {
            self.flush_inline();
        }
    }

    /// Folds the queued inline-key records into `strs`, in arrival order.
    #[inline]
    fn flush_inline(&mut self) {
        let agg = self.agg;
        let mut batch = std::mem::take(&mut self.str_batch);
        for (key, hash, value) in batch.drain(..) {
            self.strs.upsert_hashed(key, hash, value, |v| agg.create_combiner(v), |c, v| agg.merge_value(c, v));
            // Inline keys own no heap memory, so `strs` takes a fixed size per entry unless the
            // combiners own heap data; only then are entries sampled.
            if std::mem::needs_drop::<C>() && self.str_tracker.tick() {
                if let Some(c) = self.strs.get(&key) {
                    let bytes = SizeTracker::measure(c);
                    self.str_tracker.sample(bytes, self.strs.len(), str_table::slot_bytes::<C>());
                }
            }
        }
        self.str_batch = batch;
    }

    #[inline]
    fn insert_owned(&mut self, key: K, value: V) -> Result<()> {
        if !self.bucketed {
            let agg = self.agg;
            let sampled = upsert(&mut self.direct, &mut self.tracker, key, value, |v| agg.create_combiner(v), |c, v| {
                agg.merge_value(c, v)
            });
            if let Some(bytes) = sampled {
                self.tracker.sample(bytes, self.direct.len(), map_slot_bytes::<K, C>());
            }
            if queueing_pays::<K, V>() && self.direct.len() > DIRECT_MAX_ENTRIES {
                self.split_into_buckets()?;
            }
            return Ok(());
        }
        let b = self.bucket_of(&key)?;
        let queue = &mut self.pending[b];
        if queue.capacity() == 0 {
            // Allocated on first use: with many partitions most queues may stay empty.
            queue.reserve_exact(self.batch);
        }
        queue.push((key, value));
        self.pending_count += 1;
        if queue.len() >= self.batch {
            self.fold(b);
        }
        Ok(())
    }

    /// Moves the direct map's entries into bucket maps; from now on records are queued.
    fn split_into_buckets(&mut self) -> Result<()> {
        self.flush_inline();
        if self.bucketed {
            return Ok(());
        }
        let buckets = self.partitions * self.sub;
        self.maps = (0..buckets).map(|_| FxHashMap::default()).collect();
        self.batch = (self.pending_budget / (buckets * std::mem::size_of::<(K, V)>().max(1))).clamp(16, 1 << 16);
        self.pending = (0..buckets).map(|_| Vec::new()).collect();
        self.bucketed = true;
        let direct = std::mem::take(&mut self.direct);
        self.entries = direct.len() + self.strs.len();
        for (k, c) in direct {
            let b = self.bucket_of(&k)?;
            self.maps[b].insert(k, c);
        }
        if !self.strs.is_empty() {
            self.str_parts = (0..self.partitions).map(|_| Vec::new()).collect();
            for (k, c) in self.strs.drain() {
                k.write_to(&mut self.key_buf);
                let key = cast_ref::<String, K>(&self.key_buf).ok_or_else(type_mismatch)?;
                let p = self.partitioner.partition(key);
                self.str_parts.get_mut(p).ok_or_else(|| bad_partition(p, self.partitions))?.push((k, c));
            }
        }
        Ok(())
    }

    /// Folds bucket `b`'s queued values into its map.
    fn fold(&mut self, b: usize) {
        let map = &mut self.maps[b];
        let queue = &mut self.pending[b];
        let agg = self.agg;
        let before = map.len();
        self.pending_count -= queue.len();
        for (k, v) in queue.drain(..) {
            if let Some(bytes) = upsert(map, &mut self.tracker, k, v, |v| agg.create_combiner(v), |c, v| agg.merge_value(c, v)) {
                let entries = self.entries + map.len() - before;
                self.tracker.sample(bytes, entries, map_slot_bytes::<K, C>());
            }
        }
        self.entries += map.len() - before;
    }

    /// Estimated bytes held: the maps, plus the queued values.
    #[inline]
    fn estimate(&self) -> u64 {
        let strs = if std::mem::needs_drop::<C>() {
            self.str_tracker.estimate()
        } else {
            (self.strs.len() * str_table::slot_bytes::<C>()) as u64
        };
        self.tracker.estimate() + strs + (self.pending_count * std::mem::size_of::<(K, V)>()) as u64
    }

    /// Forgets the size history once everything has been written out.
    fn reset(&mut self) {
        self.tracker.reset();
        self.str_tracker.reset();
        self.entries = 0;
        if !queueing_pays::<K, V>() {
            // The buckets only existed to write partitions in order: back to one map.
            self.bucketed = false;
            self.maps = Vec::new();
            self.pending = Vec::new();
        }
        self.str_parts = Vec::new();
    }
}

/// The error for a `String`-only path reached with another key type (a bug: the paths are chosen
/// by type id).
fn type_mismatch() -> EmberError {
    EmberError::Internal("String key path used for another key type".into())
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapOutput for MapCombiner<'_, K, V, C, A, P> {
    fn partitions(&self) -> usize {
        self.partitions
    }

    fn write_partition<W: Write>(&mut self, p: usize, out: &mut W, path: &Path) -> Result<u64> {
        self.split_into_buckets()?;
        let mut written = 0;
        for b in p * self.sub..(p + 1) * self.sub {
            self.fold(b);
            let drained = self.maps[b].len();
            for (k, c) in self.maps[b].drain() {
                self.chunk.push(&(&k, &c))?;
                if self.chunk.is_full() {
                    written += self.chunk.finish_into(self.compress, &mut self.scratch, out).map_err(io_err(path))?;
                }
            }
            self.entries -= drained;
        }
        if let Some(part) = self.str_parts.get_mut(p) {
            self.entries -= part.len();
            for (k, c) in part.drain(..) {
                k.write_to(&mut self.key_buf);
                // `(&str, &C)` encodes exactly like `(String, C)`.
                self.chunk.push(&(self.key_buf.as_str(), &c))?;
                if self.chunk.is_full() {
                    written += self.chunk.finish_into(self.compress, &mut self.scratch, out).map_err(io_err(path))?;
                }
            }
        }
        // A block ends with its own chunk: blocks are read independently.
        written += self.chunk.finish_into(self.compress, &mut self.scratch, out).map_err(io_err(path))?;
        Ok(written)
    }
}

/// Writes a map task's records combined by key (map-side combine of `reduce_by_key`,
/// `aggregate_by_key`, …): values are folded into `FxHashMap<K, C>`s (see `MapCombiner`);
/// when their estimated size passes `conf.spill_threshold`, the entries are spilled as
/// per-partition runs and aggregation starts again. A key may therefore appear in several runs
/// of one block: the reduce side merges combiners anyway, so no order or uniqueness is needed.
/// Returns the stored size of each block.
#[allow(clippy::too_many_arguments)]
pub fn write_combined<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>>(
    records: impl Iterator<Item = (K, V)>,
    partitioner: &P,
    agg: &A,
    shuffle_id: ShuffleId,
    map_index: usize,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    let feed = |sink: &mut CombineSink<'_, K, V, C, A, P>| {
        for (k, v) in records {
            sink.pair(k, v)?;
        }
        Ok(())
    };
    write_combined_from(feed, partitioner, agg, shuffle_id, map_index, dir, conf, metrics)
}

/// [`write_combined`] with the records pushed by `feed` into the sink it is given, which also
/// takes pairs with a lent `&str` key ([`PairSink::str_pair`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_combined_from<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>>(
    feed: impl FnOnce(&mut CombineSink<'_, K, V, C, A, P>) -> Result<()>,
    partitioner: &P,
    agg: &A,
    shuffle_id: ShuffleId,
    map_index: usize,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut sink = CombineSink {
        combiner: MapCombiner::new(agg, partitioner, conf.compress, conf.spill_threshold),
        spills: Vec::new(),
        written: 0,
        seen: 0,
        dir,
        conf,
        metrics,
        memory: MemoryConsumer::for_current_task(conf.spill_threshold),
    };
    feed(&mut sink)?;
    // The memory stays reserved until the output is written.
    let CombineSink { mut combiner, spills, mut written, memory: _memory, .. } = sink;
    combiner.split_into_buckets()?;
    for b in 0..combiner.maps.len() {
        combiner.fold(b);
    }
    written += combiner.entries as u64;
    write_output(combiner, spills, written, shuffle_id, map_index, dir, conf, metrics)
}

/// The records' way into a map task's combiner: inserts, and spills when the estimate passes
/// the threshold.
pub(crate) struct CombineSink<'a, K, V, C, A, P> {
    combiner: MapCombiner<'a, K, V, C, A, P>,
    spills: Vec<SpilledRuns>,
    /// Entries written by earlier spills.
    written: u64,
    seen: u64,
    dir: &'a Path,
    conf: &'a ShuffleConf,
    metrics: &'a TaskMetrics,
    /// The table's execution memory, reserved from the task's memory manager as it grows.
    memory: MemoryConsumer,
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> CombineSink<'_, K, V, C, A, P> {
    #[inline]
    fn after_record(&mut self) -> Result<()> {
        self.seen += 1;
        // Checking every 32 records (as Spark's `maybeSpill`) keeps the estimate off the hot path.
        if self.seen & 31 == 0 && self.memory.should_spill(self.combiner.estimate()) {
            self.spill()?;
        }
        Ok(())
    }

    #[cold]
    fn spill(&mut self) -> Result<()> {
        let combiner = &mut self.combiner;
        let held = combiner.estimate();
        combiner.split_into_buckets()?;
        for b in 0..combiner.maps.len() {
            combiner.fold(b);
        }
        self.written += combiner.entries as u64;
        self.spills.push(spill_output(combiner, held, self.dir, self.conf, self.metrics)?);
        combiner.reset();
        self.memory.release();
        Ok(())
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> PairSink<K, V> for CombineSink<'_, K, V, C, A, P> {
    #[inline]
    fn pair(&mut self, key: K, value: V) -> Result<()> {
        self.combiner.insert(key, value)?;
        self.after_record()
    }

    #[inline]
    fn str_pair(&mut self, key: &str, value: V) -> Result<()> {
        if is_string::<K>() {
            self.combiner.insert_str(key, value)?;
        } else {
            self.combiner.insert(cast::<String, K>(key.to_owned()).map_err(|_| type_mismatch())?, value)?;
        }
        self.after_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioner::HashPartitioner;
    use crate::shuffle::block_format::RecordReader;
    use std::sync::atomic::Ordering::Relaxed;

    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct Sum;
    impl Aggregator<u64, u64, u64> for Sum {
        const MAP_SIDE_COMBINE: bool = true;
        fn create_combiner(&self, v: u64) -> u64 {
            v
        }
        fn merge_value(&self, c: &mut u64, v: u64) {
            *c += v
        }
        fn merge_combiners(&self, c: &mut u64, o: u64) {
            *c += o
        }
    }

    fn read_block(dir: &Path, sizes: &[u64], p: usize, compress: bool) -> Vec<(u64, u64)> {
        let off: u64 = sizes[..p].iter().sum();
        RecordReader::open(&data_file(dir, 0, 0), off, sizes[p], compress)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap()
    }

    #[test]
    fn output_files_and_index_agree() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf { spill_threshold: 4 << 10, ..ShuffleConf::default() };
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(5);
        let recs: Vec<(u64, u64)> = (0..20_000).map(|i| (i % 777, i)).collect();
        let sizes = write_records(recs.clone().into_iter(), &part, 0, 0, dir.path(), &conf, &m).unwrap();
        assert_eq!(sizes.len(), 5);
        let index = fs::read(index_file(dir.path(), 0, 0)).unwrap();
        assert_eq!(index.len(), 6 * 8);
        assert_eq!(fs::metadata(data_file(dir.path(), 0, 0)).unwrap().len(), sizes.iter().sum::<u64>());
        let mut all = Vec::new();
        for p in 0..5 {
            let block = read_block(dir.path(), &sizes, p, true);
            assert!(block.iter().all(|(k, _)| part.partition(k) == p));
            all.extend(block);
        }
        all.sort();
        let mut expect = recs;
        expect.sort();
        assert_eq!(all, expect);
        // Spilled, and only the two committed files remain.
        assert!(m.memory_bytes_spilled.load(Relaxed) > 0 && m.disk_bytes_spilled.load(Relaxed) > 0);
        assert_eq!(m.shuffle_records_written.load(Relaxed), 20_000);
        assert_eq!(m.shuffle_bytes_written.load(Relaxed), sizes.iter().sum::<u64>());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn combined_output_has_one_entry_per_key_without_spill() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf { compress: false, ..ShuffleConf::default() };
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(3);
        let sizes =
            write_combined((0..10_000u64).map(|i| (i % 100, 1)), &part, &Sum, 0, 0, dir.path(), &conf, &m).unwrap();
        let mut all: Vec<(u64, u64)> = (0..3).flat_map(|p| read_block(dir.path(), &sizes, p, false)).collect();
        all.sort();
        assert_eq!(all, (0..100).map(|k| (k, 100)).collect::<Vec<_>>());
        assert_eq!(m.shuffle_records_written.load(Relaxed), 100);
        assert_eq!(m.disk_bytes_spilled.load(Relaxed), 0);
    }

    #[test]
    fn combined_through_queued_buckets_with_spills() {
        // > DIRECT_MAX_ENTRIES u64 keys: queued buckets; 512 KiB: several spills in that mode.
        for (threshold, partitions) in [(1u64 << 30, 8), (512 << 10, 8), (512 << 10, 300)] {
            let dir = tempfile::tempdir().unwrap();
            let conf = ShuffleConf { spill_threshold: threshold, ..ShuffleConf::default() };
            let m = TaskMetrics::default();
            let part = HashPartitioner::new(partitions);
            let input = (0..300_000u64).map(|i| (crate::partitioner::mix64(i) % 50_000, i));
            let sizes = write_combined(input.clone(), &part, &Sum, 0, 0, dir.path(), &conf, &m).unwrap();
            let mut got: std::collections::HashMap<u64, u64> = Default::default();
            for p in 0..partitions {
                for (k, c) in read_block(dir.path(), &sizes, p, true) {
                    assert_eq!(part.partition(&k), p);
                    *got.entry(k).or_default() += c;
                }
            }
            let mut expect: std::collections::HashMap<u64, u64> = Default::default();
            for (k, v) in input {
                *expect.entry(k).or_default() += v;
            }
            assert_eq!(got, expect);
            assert_eq!(m.disk_bytes_spilled.load(Relaxed) > 0, threshold < 1 << 30);
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        }
    }

    #[test]
    fn combined_heap_keys_with_spills() {
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct Count;
        impl Aggregator<String, u32, u64> for Count {
            const MAP_SIDE_COMBINE: bool = true;
            fn create_combiner(&self, v: u32) -> u64 {
                v.into()
            }
            fn merge_value(&self, c: &mut u64, v: u32) {
                *c += u64::from(v)
            }
            fn merge_combiners(&self, c: &mut u64, o: u64) {
                *c += o
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf { spill_threshold: 256 << 10, compress: false, ..ShuffleConf::default() };
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(4);
        let input = (0..100_000u32).map(|i| (format!("w{}", crate::partitioner::mix64(i.into()) % 30_000), 1u32));
        let sizes = write_combined(input, &part, &Count, 0, 0, dir.path(), &conf, &m).unwrap();
        assert!(m.disk_bytes_spilled.load(Relaxed) > 0);
        let mut got: std::collections::HashMap<String, u64> = Default::default();
        for p in 0..4 {
            let off: u64 = sizes[..p].iter().sum();
            let block: Vec<(String, u64)> = RecordReader::open(&data_file(dir.path(), 0, 0), off, sizes[p], false)
                .unwrap()
                .collect::<io::Result<_>>()
                .unwrap();
            for (k, c) in block {
                assert_eq!(Partitioner::<String>::partition(&part, &k), p);
                *got.entry(k).or_default() += c;
            }
        }
        assert_eq!(got.values().sum::<u64>(), 100_000);
        assert!(got.len() > 25_000);
    }

    #[test]
    fn lent_string_keys_of_every_length_with_heap_combiners() {
        // Combiners own heap data (the inline table samples their size) and keys cross the
        // inline size; a small threshold makes the lent path spill too.
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct Collect;
        impl Aggregator<String, u32, Vec<u32>> for Collect {
            const MAP_SIDE_COMBINE: bool = true;
            fn create_combiner(&self, v: u32) -> Vec<u32> {
                vec![v]
            }
            fn merge_value(&self, c: &mut Vec<u32>, v: u32) {
                c.push(v)
            }
            fn merge_combiners(&self, c: &mut Vec<u32>, o: Vec<u32>) {
                c.extend(o)
            }
        }
        let words: Vec<String> = (0..2_000u32).map(|i| "k".repeat(1 + (i % 40) as usize) + &(i % 500).to_string()).collect();
        for (threshold, lent) in [(1u64 << 30, true), (64 << 10, true), (64 << 10, false)] {
            let dir = tempfile::tempdir().unwrap();
            let conf = ShuffleConf { spill_threshold: threshold, compress: false, ..ShuffleConf::default() };
            let m = TaskMetrics::default();
            let part = HashPartitioner::new(3);
            let feed = |sink: &mut CombineSink<'_, String, u32, Vec<u32>, Collect, HashPartitioner>| {
                for (i, w) in words.iter().enumerate() {
                    if lent {
                        sink.str_pair(w, i as u32)?;
                    } else {
                        sink.pair(w.clone(), i as u32)?;
                    }
                }
                Ok(())
            };
            let sizes = write_combined_from(feed, &part, &Collect, 0, 0, dir.path(), &conf, &m).unwrap();
            assert_eq!(m.disk_bytes_spilled.load(Relaxed) > 0, threshold < 1 << 30);
            let mut got: std::collections::HashMap<String, Vec<u32>> = Default::default();
            for p in 0..3 {
                let off: u64 = sizes[..p].iter().sum();
                let block: Vec<(String, Vec<u32>)> = RecordReader::open(&data_file(dir.path(), 0, 0), off, sizes[p], false)
                    .unwrap()
                    .collect::<io::Result<_>>()
                    .unwrap();
                for (k, c) in block {
                    assert_eq!(Partitioner::<String>::partition(&part, &k), p);
                    got.entry(k).or_default().extend(c);
                }
            }
            let mut expect: std::collections::HashMap<String, Vec<u32>> = Default::default();
            for (i, w) in words.iter().enumerate() {
                expect.entry(w.clone()).or_default().push(i as u32);
            }
            for v in got.values_mut() {
                v.sort();
            }
            assert_eq!(got, expect, "threshold {threshold}, lent {lent}");
        }
    }

    #[test]
    fn second_attempt_reuses_committed_output() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf::default();
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(4);
        let a = write_records((0..1000u64).map(|i| (i, i)), &part, 0, 0, dir.path(), &conf, &m).unwrap();
        let b = write_records((0..10u64).map(|i| (i, i)), &part, 0, 0, dir.path(), &conf, &m).unwrap();
        assert_eq!(a, b);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        // A damaged output is replaced.
        fs::write(index_file(dir.path(), 0, 0), b"bad").unwrap();
        let c = write_records((0..10u64).map(|i| (i, i)), &part, 0, 0, dir.path(), &conf, &m).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn failing_partitioner_leaves_no_files() {
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct Bad;
        impl Partitioner<u64> for Bad {
            fn num_partitions(&self) -> usize {
                2
            }
            fn partition(&self, k: &u64) -> usize {
                *k as usize
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf { spill_threshold: 64, ..ShuffleConf::default() };
        let m = TaskMetrics::default();
        let err = write_records((0..100u64).map(|i| (i % 3, i)), &Bad, 0, 0, dir.path(), &conf, &m).unwrap_err();
        assert!(err.to_string().contains("partition 2"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
