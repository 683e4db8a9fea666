//! A hash aggregation that spills to disk (the role of Spark's `ExternalAppendOnlyMap`), used on
//! the reduce side of `reduce_by_key`, `group_by_key`, `combine_by_key`, …
//!
//! Spark spills hash-sorted runs and merges them; this uses grace hashing instead, which needs no
//! sort: when the in-memory state's estimated size passes the threshold, its entries are written
//! into `S` bucket files chosen by a second hash of the key, and aggregation starts again in
//! memory (later input is combined first, then goes to the same buckets at the next spill). At
//! the end every key's combiners are in one bucket (file plus in-memory part), so each bucket is
//! completed on its own, one at a time; a bucket still too large is split again with a different
//! hash (a few levels deep — a single huge key cannot be split and is aggregated in memory).
//! Memory stays within about twice the threshold (the in-memory parts plus the bucket being
//! completed), and the output is exact.

use std::collections::hash_map;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::append_only_map::{
    push_queued, queueing_pays, upsert, DIRECT_MAX_ENTRIES, PENDING_BUDGET,
};
use super::ShuffleConf;
use crate::aggregator::Aggregator;
use crate::codec::{io_err, ChunkBuf, ChunkFormat, RecordReader, SpillFile};
use crate::data::{Data, Key};
use crate::error::Result;
use crate::memory::MemoryConsumer;
use crate::partitioner::{fast_range, fx_hash, mix64};
use crate::size_tracker::{map_slot_bytes, SizeTracker};
use crate::task::TaskMetrics;

/// Bucket files per split: enough that one split usually brings a bucket under the threshold,
/// few enough that their write buffers (one chunk each) stay small.
const SPILL_BUCKETS: usize = 64;

/// Split levels before a bucket is aggregated in memory whatever its size (64^4 ≈ 16.7M-way).
const MAX_LEVEL: u32 = 4;

/// The bucket of a key at a split level. Seeded per level, and different from the partitioner's
/// hash: on the reduce side all keys share one partition, so reusing that hash would put them all
/// in a few buckets.
#[inline]
fn bucket_of<K: std::hash::Hash>(key: &K, level: u32) -> usize {
    let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(u64::from(level) + 1);
    fast_range(mix64(fx_hash(key) ^ seed), SPILL_BUCKETS)
}

/// One set of bucket files being written.
struct Buckets {
    level: u32,
    dir: PathBuf,
    format: ChunkFormat,
    files: Vec<Option<SpillFile>>,
    chunks: Vec<ChunkBuf>,
    sizes: Vec<u64>,
    /// Bytes already reported by `flush_all`.
    reported: u64,
    scratch: Vec<u8>,
}

impl Buckets {
    fn new(dir: &Path, level: u32, format: ChunkFormat) -> Self {
        Buckets {
            level,
            dir: dir.to_path_buf(),
            format,
            files: (0..SPILL_BUCKETS).map(|_| None).collect(),
            chunks: (0..SPILL_BUCKETS).map(|_| ChunkBuf::new()).collect(),
            sizes: vec![0; SPILL_BUCKETS],
            reported: 0,
            scratch: Vec::new(),
        }
    }

    /// Writes bucket `b`'s open chunk to its file (created on first use); returns bytes written.
    fn flush_bucket(&mut self, b: usize) -> Result<u64> {
        if self.chunks[b].is_empty() {
            return Ok(0);
        }
        if self.files[b].is_none() {
            self.files[b] =
                Some(SpillFile::create(&self.dir, "agg-spill").map_err(io_err(&self.dir))?);
        }
        let Some(file) = &self.files[b] else {
            unreachable!("bucket file created above")
        };
        let n = self.chunks[b]
            .finish_into(self.format, &mut self.scratch, &mut file.file())
            .map_err(io_err(file.path()))?;
        self.sizes[b] += n;
        Ok(n)
    }

    /// Adds one entry to bucket `b` (which must be the key's bucket at this level).
    #[inline]
    fn add_to<K: Key, C: Data>(&mut self, b: usize, key: &K, combiner: &C) -> Result<()> {
        self.chunks[b].push(&(key, combiner))?;
        if self.chunks[b].is_full() {
            self.flush_bucket(b)?;
        }
        Ok(())
    }

    /// Writes all open chunks, so that what was spilled is on disk (and counted) now; returns the
    /// bytes written since the previous call.
    fn flush_all(&mut self) -> Result<u64> {
        for b in 0..SPILL_BUCKETS {
            self.flush_bucket(b)?;
        }
        let total: u64 = self.sizes.iter().sum();
        let new = total - self.reported;
        self.reported = total;
        Ok(new)
    }

    /// Moves every entry of `map` into the buckets and writes all open chunks; returns the bytes
    /// written.
    fn spill_map<K: Key, C: Data>(&mut self, map: &mut FxHashMap<K, C>) -> Result<u64> {
        for (k, c) in map.drain() {
            self.add_to(bucket_of(&k, self.level), &k, &c)?;
        }
        self.flush_all()
    }

    /// Each bucket's file (if it has one) with its length, in bucket order.
    fn into_files(self) -> impl Iterator<Item = (Option<SpillFile>, u64)> {
        self.files.into_iter().zip(self.sizes)
    }
}

/// Aggregates values (or combiners) by key in memory, spilling to grace-hash buckets past the
/// shuffle spill threshold; [`IntoIterator`] yields every key once with its complete combiner.
///
/// In memory it works like the map side's combiner: one map while it fits in cache, then (for
/// plain inline keys and values, see `queueing_pays`) `SPILL_BUCKETS` (64) maps (split by the
/// level-0 bucket hash) fed from per-bucket queues, a batch at a time, so that each insert hits a
/// map that is in cache. The in-memory buckets are the spill buckets: a spill writes map `b` to
/// bucket file `b`, and at the end bucket `b`'s file is merged into the in-memory map `b` without
/// writing it out again.
pub struct ExternalAggregator<K, V, C, A> {
    agg: A,
    /// The single map used until it holds `DIRECT_MAX_ENTRIES` keys.
    direct: FxHashMap<K, C>,
    bucketed: bool,
    maps: Vec<FxHashMap<K, C>>,
    /// Values (`insert_value`) and combiners (`insert_combiner`) waiting per bucket.
    values: Vec<Vec<(K, V)>>,
    combiners: Vec<Vec<(K, C)>>,
    value_batch: usize,
    combiner_batch: usize,
    /// Bytes of queued items.
    pending_bytes: usize,
    /// Keys over all bucket maps.
    entries: usize,
    tracker: SizeTracker,
    threshold: u64,
    format: ChunkFormat,
    dir: PathBuf,
    buckets: Option<Buckets>,
    updates: u64,
    /// The task's execution memory behind the maps: spill when refused.
    memory: MemoryConsumer,
}

fn batch_for<T>(threshold: u64) -> usize {
    let budget = PENDING_BUDGET.min((threshold / 4) as usize);
    (budget / (SPILL_BUCKETS * std::mem::size_of::<T>().max(1))).clamp(16, 1 << 16)
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> ExternalAggregator<K, V, C, A> {
    /// An empty aggregation spilling into `dir` past `conf.spill_threshold` (spill files are
    /// written in `conf.spill_format()`).
    pub fn new(agg: A, conf: &ShuffleConf, dir: &Path) -> Self {
        ExternalAggregator {
            agg,
            direct: FxHashMap::default(),
            bucketed: false,
            maps: Vec::new(),
            values: Vec::new(),
            combiners: Vec::new(),
            value_batch: batch_for::<(K, V)>(conf.spill_threshold),
            combiner_batch: batch_for::<(K, C)>(conf.spill_threshold),
            pending_bytes: 0,
            entries: 0,
            tracker: SizeTracker::new(),
            threshold: conf.spill_threshold,
            format: conf.spill_format(),
            dir: dir.to_path_buf(),
            buckets: None,
            updates: 0,
            memory: MemoryConsumer::for_current_task(conf.spill_threshold),
        }
    }

    /// Folds a value into its key's combiner (`create_combiner` / `merge_value`).
    #[inline]
    pub fn insert_value(&mut self, key: K, value: V, metrics: &TaskMetrics) {
        if self.bucketed {
            let b = bucket_of(&key, 0);
            let queue = &mut self.values[b];
            push_queued(queue, (key, value), self.value_batch);
            self.pending_bytes += std::mem::size_of::<(K, V)>();
            if queue.len() >= self.value_batch {
                self.fold(b);
            }
        } else {
            let agg = &self.agg;
            let sampled = upsert(
                &mut self.direct,
                &mut self.tracker,
                key,
                value,
                |v| agg.create_combiner(v),
                |c, v| agg.merge_value(c, v),
            );
            self.after_direct_insert(sampled);
        }
        self.after_update(metrics);
    }

    /// Folds a combiner from a map task into its key's combiner (`merge_combiners`).
    #[inline]
    pub fn insert_combiner(&mut self, key: K, combiner: C, metrics: &TaskMetrics) {
        if self.bucketed {
            let b = bucket_of(&key, 0);
            let queue = &mut self.combiners[b];
            push_queued(queue, (key, combiner), self.combiner_batch);
            self.pending_bytes += std::mem::size_of::<(K, C)>();
            if queue.len() >= self.combiner_batch {
                self.fold(b);
            }
        } else {
            let agg = &self.agg;
            let sampled = upsert(
                &mut self.direct,
                &mut self.tracker,
                key,
                combiner,
                |c| c,
                |c, o| agg.merge_combiners(c, o),
            );
            self.after_direct_insert(sampled);
        }
        self.after_update(metrics);
    }

    /// Whether anything has been spilled.
    #[cfg(any(test, feature = "testing"))]
    pub fn has_spilled(&self) -> bool {
        self.buckets.is_some()
    }

    #[inline]
    fn after_direct_insert(&mut self, sampled: Option<usize>) {
        if let Some(bytes) = sampled {
            self.tracker
                .sample(bytes, self.direct.len(), map_slot_bytes::<K, C>());
        }
        if queueing_pays::<K, V>()
            && queueing_pays::<K, C>()
            && self.direct.len() > DIRECT_MAX_ENTRIES
        {
            self.split_into_buckets();
        }
    }

    #[inline]
    fn after_update(&mut self, metrics: &TaskMetrics) {
        self.updates += 1;
        // Checked every 32 updates, as Spark's `maybeSpill`, to keep it off the hot path.
        if self.updates & 31 == 0 && self.memory.should_spill(self.estimate()) {
            if let Err(e) = self.spill(metrics) {
                e.raise();
            }
        }
    }

    /// Estimated bytes held: the maps plus the queues.
    #[inline]
    fn estimate(&self) -> u64 {
        self.tracker.estimate() + self.pending_bytes as u64
    }

    /// Moves the direct map's entries into bucket maps; from now on inserts are queued.
    fn split_into_buckets(&mut self) {
        if self.bucketed {
            return;
        }
        self.maps = (0..SPILL_BUCKETS).map(|_| FxHashMap::default()).collect();
        self.values = (0..SPILL_BUCKETS).map(|_| Vec::new()).collect();
        self.combiners = (0..SPILL_BUCKETS).map(|_| Vec::new()).collect();
        self.bucketed = true;
        let direct = std::mem::take(&mut self.direct);
        self.entries = direct.len();
        for (k, c) in direct {
            self.maps[bucket_of(&k, 0)].insert(k, c);
        }
    }

    /// Folds bucket `b`'s queues into its map.
    fn fold(&mut self, b: usize) {
        let agg = &self.agg;
        let map = &mut self.maps[b];
        let before = map.len();
        let slot = map_slot_bytes::<K, C>();
        let queued = self.values[b].len() * std::mem::size_of::<(K, V)>()
            + self.combiners[b].len() * std::mem::size_of::<(K, C)>();
        for (k, v) in self.values[b].drain(..) {
            if let Some(bytes) = upsert(
                map,
                &mut self.tracker,
                k,
                v,
                |v| agg.create_combiner(v),
                |c, v| agg.merge_value(c, v),
            ) {
                self.tracker
                    .sample(bytes, self.entries + map.len() - before, slot);
            }
        }
        for (k, c) in self.combiners[b].drain(..) {
            if let Some(bytes) = upsert(
                map,
                &mut self.tracker,
                k,
                c,
                |c| c,
                |c, o| agg.merge_combiners(c, o),
            ) {
                self.tracker
                    .sample(bytes, self.entries + map.len() - before, slot);
            }
        }
        self.entries += map.len() - before;
        self.pending_bytes -= queued;
    }

    fn fold_all(&mut self) {
        for b in 0..self.maps.len() {
            self.fold(b);
        }
    }

    fn spill(&mut self, metrics: &TaskMetrics) -> Result<()> {
        let held = self.estimate();
        if self.bucketed {
            self.fold_all();
        }
        let buckets = self
            .buckets
            .get_or_insert_with(|| Buckets::new(&self.dir, 0, self.format));
        let written = if self.bucketed {
            for (b, map) in self.maps.iter_mut().enumerate() {
                for (k, c) in map.drain() {
                    buckets.add_to(b, &k, &c)?;
                }
            }
            buckets.flush_all()?
        } else {
            buckets.spill_map(&mut self.direct)?
        };
        self.tracker.reset();
        self.entries = 0;
        TaskMetrics::add(&metrics.memory_bytes_spilled, held);
        TaskMetrics::add(&metrics.disk_bytes_spilled, written);
        self.memory.release();
        tracing::debug!(bytes = written, "spilled aggregation map");
        Ok(())
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> IntoIterator
    for ExternalAggregator<K, V, C, A>
{
    type Item = (K, C);
    type IntoIter = AggregatedIter<K, C, A, V>;

    /// Every key with its combiner, in no particular order. If the aggregation spilled, each
    /// bucket's file is merged into its in-memory map as the iterator reaches it; an I/O error on
    /// a spill file fails the task (`EmberError::raise`).
    fn into_iter(mut self) -> AggregatedIter<K, C, A, V> {
        let mut pending = Vec::new();
        if let Some(buckets) = self.buckets.take() {
            self.split_into_buckets();
            self.fold_all();
            let maps = std::mem::take(&mut self.maps);
            for ((file, len), map) in buckets.into_files().zip(maps) {
                if file.is_some() || !map.is_empty() {
                    pending.push(PendingBucket {
                        file: file.map(|f| (f, len)),
                        map,
                        level: 0,
                    });
                }
            }
        } else if self.bucketed {
            self.fold_all();
            for map in std::mem::take(&mut self.maps) {
                pending.push(PendingBucket {
                    file: None,
                    map,
                    level: 0,
                });
            }
        } else {
            pending.push(PendingBucket {
                file: None,
                map: std::mem::take(&mut self.direct),
                level: 0,
            });
        }
        AggregatedIter {
            agg: self.agg,
            current: FxHashMap::default().into_iter(),
            pending,
            threshold: self.threshold,
            format: self.format,
            dir: self.dir,
            _memory: self.memory,
            _v: PhantomData,
        }
    }
}

/// A bucket still to be output: its in-memory map and, if it spilled, its file.
struct PendingBucket<K, C> {
    file: Option<(SpillFile, u64)>,
    map: FxHashMap<K, C>,
    level: u32,
}

/// The output of an [`ExternalAggregator`]: its buckets, each completed from its spill file (if
/// any) when the iterator reaches it.
pub struct AggregatedIter<K, C, A, V> {
    agg: A,
    current: hash_map::IntoIter<K, C>,
    pending: Vec<PendingBucket<K, C>>,
    threshold: u64,
    format: ChunkFormat,
    dir: PathBuf,
    /// The maps' memory stays reserved until the output is consumed.
    _memory: MemoryConsumer,
    _v: PhantomData<fn(V)>,
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> AggregatedIter<K, C, A, V> {
    /// Merges a bucket's file into its map, or splits it into finer buckets (pushed on `pending`,
    /// an empty map returned) if it outgrows the threshold.
    ///
    /// Memory: the other buckets' in-memory maps (under the threshold together) plus this one,
    /// kept under the threshold by splitting, so at most about twice the threshold.
    fn load(&mut self, bucket: PendingBucket<K, C>) -> Result<FxHashMap<K, C>> {
        let PendingBucket {
            file,
            mut map,
            level,
        } = bucket;
        let Some((file, len)) = file else {
            return Ok(map);
        };
        let path = file.path().to_path_buf();
        let mut reader = RecordReader::<(K, C), File>::open(&path, 0, len, self.format)
            .map_err(io_err(&path))?;
        let mut tracker = SizeTracker::new();
        let mut split: Option<Buckets> = None;
        let mut updates = 0u64;
        while let Some((k, c)) = reader.next_record().map_err(io_err(&path))? {
            let agg = &self.agg;
            if let Some(bytes) = upsert(
                &mut map,
                &mut tracker,
                k,
                c,
                |c| c,
                |c, o| agg.merge_combiners(c, o),
            ) {
                tracker.sample(bytes, map.len(), map_slot_bytes::<K, C>());
            }
            updates += 1;
            // A map of one key cannot be split by hashing: let it grow.
            if updates & 31 == 0
                && level + 1 < MAX_LEVEL
                && map.len() > 1
                && tracker.estimate() > self.threshold
            {
                split
                    .get_or_insert_with(|| Buckets::new(&self.dir, level + 1, self.format))
                    .spill_map(&mut map)?;
                tracker.reset();
            }
        }
        drop(reader);
        drop(file); // deletes it
        if let Some(mut split) = split {
            split.spill_map(&mut map)?;
            self.pending
                .extend(split.into_files().filter_map(|(f, len)| {
                    f.map(|f| PendingBucket {
                        file: Some((f, len)),
                        map: FxHashMap::default(),
                        level: level + 1,
                    })
                }));
        }
        Ok(map)
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> Iterator for AggregatedIter<K, C, A, V> {
    type Item = (K, C);

    #[inline]
    fn next(&mut self) -> Option<(K, C)> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some(entry);
            }
            let bucket = self.pending.pop()?;
            match self.load(bucket) {
                Ok(map) => self.current = map.into_iter(),
                Err(e) => e.raise(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::atomic::Ordering::Relaxed;

    use crate::shuffle::test_support::Sum;

    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct Group;
    impl Aggregator<String, u32, Vec<u32>> for Group {
        const MAP_SIDE_COMBINE: bool = false;
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

    fn conf(threshold: u64) -> ShuffleConf {
        ShuffleConf {
            spill_threshold: threshold,
            ..ShuffleConf::default()
        }
    }

    #[test]
    fn no_spill_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut a = ExternalAggregator::new(Sum, &conf(1 << 30), dir.path());
        for i in 0..10_000u64 {
            a.insert_value((i % 10) as u32, i, &m);
        }
        assert!(!a.has_spilled());
        let mut out: Vec<_> = a.into_iter().collect();
        out.sort();
        assert_eq!(out.len(), 10);
        assert_eq!(out[3], (3, (0..10_000u64).filter(|i| i % 10 == 3).sum()));
    }

    #[test]
    fn spills_split_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        // 1 KiB: spills every 32 updates, and every bucket outgrows it again (recursive splits).
        let mut a = ExternalAggregator::new(Sum, &conf(1024), dir.path());
        let mut reference: HashMap<u32, u64> = HashMap::new();
        for i in 0..50_000u64 {
            let k = (mix64(i) % 5000) as u32;
            a.insert_value(k, i, &m);
            *reference.entry(k).or_default() += i;
        }
        assert!(a.has_spilled());
        assert!(m.memory_bytes_spilled.load(Relaxed) > 0 && m.disk_bytes_spilled.load(Relaxed) > 0);
        let out: HashMap<u32, u64> = a.into_iter().collect();
        assert_eq!(out, reference);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "spill files left behind"
        );
    }

    #[test]
    fn hot_key_group_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut a = ExternalAggregator::new(Group, &conf(2048), dir.path());
        for i in 0..20_000u32 {
            let k = if i % 2 == 0 {
                "hot".to_string()
            } else {
                format!("k{}", i % 300)
            };
            a.insert_value(k, i, &m);
        }
        let out: HashMap<String, Vec<u32>> = a.into_iter().collect();
        let mut hot = out["hot"].clone();
        hot.sort();
        assert_eq!(hot, (0..20_000).step_by(2).collect::<Vec<_>>());
        assert_eq!(out.len(), 151); // "hot" and the 150 odd residues
    }

    #[test]
    fn dropping_unconsumed_iterator_removes_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut a = ExternalAggregator::new(Sum, &conf(1024), dir.path());
        for i in 0..5000u64 {
            a.insert_combiner(i as u32, i, &m);
        }
        let mut it = a.into_iter();
        it.next();
        drop(it);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn queued_buckets_with_and_without_spills() {
        // Past DIRECT_MAX_ENTRIES keys, u64 data goes through the per-bucket queues.
        for threshold in [1u64 << 30, 1 << 20, 300 << 10] {
            let dir = tempfile::tempdir().unwrap();
            let m = TaskMetrics::default();
            let mut a = ExternalAggregator::new(Sum, &conf(threshold), dir.path());
            let mut reference: HashMap<u32, u64> = HashMap::new();
            for i in 0..200_000u64 {
                let k = (mix64(i) % 60_000) as u32;
                if i % 3 == 0 {
                    a.insert_combiner(k, i, &m);
                } else {
                    a.insert_value(k, i, &m);
                }
                *reference.entry(k).or_default() += i;
            }
            assert!(a.bucketed || a.has_spilled());
            assert_eq!(
                a.has_spilled(),
                threshold < 1 << 30,
                "threshold {threshold}"
            );
            let mut n = 0;
            let mut out = HashMap::new();
            for (k, c) in a {
                n += 1;
                out.insert(k, c);
            }
            assert_eq!(n, reference.len());
            assert_eq!(out, reference);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn heap_keys_stay_in_one_map() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut a = ExternalAggregator::new(Group, &conf(1 << 30), dir.path());
        for i in 0..40_000u32 {
            a.insert_value(format!("k{i}"), i, &m);
        }
        assert!(!a.bucketed);
        assert_eq!(a.into_iter().count(), 40_000);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn matches_hashmap(
            input in prop::collection::vec((0u32..500, any::<u64>(), any::<bool>()), 0..3000),
            threshold in prop_oneof![Just(512u64), Just(4096), Just(1 << 30)]
        ) {
            let dir = tempfile::tempdir().unwrap();
            let m = TaskMetrics::default();
            let mut a = ExternalAggregator::new(Sum, &conf(threshold), dir.path());
            let mut reference: HashMap<u32, u64> = HashMap::new();
            for (k, v, as_combiner) in input {
                if as_combiner { a.insert_combiner(k, v, &m) } else { a.insert_value(k, v, &m) }
                let e = reference.entry(k).or_default();
                *e = e.wrapping_add(v);
            }
            let mut n = 0;
            let mut out = HashMap::new();
            for (k, c) in a {
                n += 1;
                out.insert(k, c);
            }
            prop_assert_eq!(n, out.len()); // each key exactly once
            prop_assert_eq!(out, reference);
        }
    }
}
