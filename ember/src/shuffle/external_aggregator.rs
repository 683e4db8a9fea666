//! A hash aggregation that spills to disk (the role of Spark's `ExternalAppendOnlyMap`), used on
//! the reduce side of `reduce_by_key`, `group_by_key`, `combine_by_key`, …
//!
//! Spark spills hash-sorted runs and merges them; this uses grace hashing instead, which needs no
//! sort and keeps memory bounded by the threshold: when the map's estimated size passes the
//! threshold, its entries are written into `S` bucket files chosen by a second hash of the key,
//! and the map starts again (later input is combined in memory first, then goes to the same
//! buckets at the next spill). At the end, every key's combiners are all in one bucket, so each
//! bucket is aggregated in memory on its own, one at a time; a bucket still too large is split
//! again with a different hash (a few levels deep — a single huge key cannot be split and is
//! aggregated in memory).

use std::collections::hash_map;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::block_format::{io_err, ChunkBuf, RecordReader, SpillFile};
use super::size_tracker::{map_slot_bytes, SizeTracker};
use super::sort_writer::upsert;
use super::ShuffleConf;
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::partitioner::{fast_range, fx_hash, mix64};
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
    compress: bool,
    files: Vec<Option<SpillFile>>,
    chunks: Vec<ChunkBuf>,
    sizes: Vec<u64>,
    scratch: Vec<u8>,
}

impl Buckets {
    fn new(dir: &Path, level: u32, compress: bool) -> Self {
        Buckets {
            level,
            dir: dir.to_path_buf(),
            compress,
            files: (0..SPILL_BUCKETS).map(|_| None).collect(),
            chunks: (0..SPILL_BUCKETS).map(|_| ChunkBuf::new()).collect(),
            sizes: vec![0; SPILL_BUCKETS],
            scratch: Vec::new(),
        }
    }

    /// Writes bucket `b`'s open chunk to its file (created on first use); returns bytes written.
    fn flush_bucket(&mut self, b: usize) -> Result<u64> {
        if self.chunks[b].is_empty() {
            return Ok(0);
        }
        if self.files[b].is_none() {
            self.files[b] = Some(SpillFile::create(&self.dir, "agg-spill").map_err(io_err(&self.dir))?);
        }
        let Some(file) = &self.files[b] else { unreachable!("bucket file created above") };
        let n = self.chunks[b].finish_into(self.compress, &mut self.scratch, &mut file.file()).map_err(io_err(file.path()))?;
        self.sizes[b] += n;
        Ok(n)
    }

    /// Adds one entry; returns bytes written to disk (when a chunk filled up).
    #[inline]
    fn add<K: Key, C: Data>(&mut self, key: &K, combiner: &C) -> Result<u64> {
        let b = bucket_of(key, self.level);
        self.chunks[b].push(&(key, combiner))?;
        if self.chunks[b].is_full() {
            self.flush_bucket(b)
        } else {
            Ok(0)
        }
    }

    /// Moves every entry of `map` into the buckets and writes all open chunks, so that what was
    /// spilled is on disk (and counted) now.
    fn spill_map<K: Key, C: Data>(&mut self, map: &mut FxHashMap<K, C>) -> Result<u64> {
        let mut written = 0;
        for (k, c) in map.drain() {
            written += self.add(&k, &c)?;
        }
        for b in 0..SPILL_BUCKETS {
            written += self.flush_bucket(b)?;
        }
        Ok(written)
    }

    /// The non-empty bucket files with their sizes and level.
    fn into_pending(self) -> impl Iterator<Item = PendingBucket> {
        let level = self.level;
        self.files
            .into_iter()
            .zip(self.sizes)
            .filter_map(move |(f, len)| f.map(|file| PendingBucket { file, len, level }))
    }
}

/// A bucket file waiting to be aggregated.
struct PendingBucket {
    file: SpillFile,
    len: u64,
    level: u32,
}

/// Aggregates values (or combiners) by key in memory, spilling to grace-hash buckets past the
/// shuffle spill threshold; [`IntoIterator`] yields every key once with its complete combiner.
pub struct ExternalAggregator<K, V, C, A> {
    agg: A,
    map: FxHashMap<K, C>,
    tracker: SizeTracker,
    threshold: u64,
    compress: bool,
    dir: PathBuf,
    buckets: Option<Buckets>,
    updates: u64,
    _v: PhantomData<fn(V)>,
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> ExternalAggregator<K, V, C, A> {
    /// An empty aggregation spilling into `dir` past `conf.spill_threshold` (spill files are
    /// compressed per `conf.spill_compress`).
    pub fn new(agg: A, conf: &ShuffleConf, dir: &Path) -> Self {
        ExternalAggregator {
            agg,
            map: FxHashMap::default(),
            tracker: SizeTracker::new(),
            threshold: conf.spill_threshold,
            compress: conf.spill_compress,
            dir: dir.to_path_buf(),
            buckets: None,
            updates: 0,
            _v: PhantomData,
        }
    }

    /// Folds a value into its key's combiner (`create_combiner` / `merge_value`).
    #[inline]
    pub fn insert_value(&mut self, key: K, value: V, metrics: &TaskMetrics) {
        let agg = &self.agg;
        let sampled = upsert(&mut self.map, &mut self.tracker, key, value, |v| agg.create_combiner(v), |c, v| {
            agg.merge_value(c, v)
        });
        self.after_update(sampled, metrics);
    }

    /// Folds a combiner from a map task into its key's combiner (`merge_combiners`).
    #[inline]
    pub fn insert_combiner(&mut self, key: K, combiner: C, metrics: &TaskMetrics) {
        let agg = &self.agg;
        let sampled = upsert(&mut self.map, &mut self.tracker, key, combiner, |c| c, |c, o| agg.merge_combiners(c, o));
        self.after_update(sampled, metrics);
    }

    /// Whether anything has been spilled.
    pub fn has_spilled(&self) -> bool {
        self.buckets.is_some()
    }

    #[inline]
    fn after_update(&mut self, sampled: Option<usize>, metrics: &TaskMetrics) {
        if let Some(bytes) = sampled {
            self.tracker.sample(bytes, self.map.len(), map_slot_bytes::<K, C>());
        }
        self.updates += 1;
        // Checked every 32 updates, as Spark's `maybeSpill`, to keep it off the hot path.
        if self.updates & 31 == 0 && self.tracker.estimate() > self.threshold {
            if let Err(e) = self.spill(metrics) {
                e.raise();
            }
        }
    }

    fn spill(&mut self, metrics: &TaskMetrics) -> Result<()> {
        let held = self.tracker.estimate();
        let buckets = self.buckets.get_or_insert_with(|| Buckets::new(&self.dir, 0, self.compress));
        let written = buckets.spill_map(&mut self.map)?;
        self.tracker.reset();
        TaskMetrics::add(&metrics.memory_bytes_spilled, held);
        TaskMetrics::add(&metrics.disk_bytes_spilled, written);
        tracing::debug!(bytes = written, "spilled aggregation map");
        Ok(())
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> IntoIterator for ExternalAggregator<K, V, C, A> {
    type Item = (K, C);
    type IntoIter = AggregatedIter<K, C, A, V>;

    /// Every key with its combiner, in no particular order. If the aggregation spilled, the
    /// buckets are aggregated one at a time as the iterator advances; an I/O error on a spill
    /// file fails the task (`EmberError::raise`).
    fn into_iter(mut self) -> AggregatedIter<K, C, A, V> {
        let mut pending = Vec::new();
        if let Some(mut buckets) = self.buckets.take() {
            // The last map joins the buckets so each key's combiners are in one place. These
            // bytes are not in the task metrics: the iterator has no handle on them.
            if let Err(e) = buckets.spill_map(&mut self.map) {
                e.raise();
            }
            pending.extend(buckets.into_pending());
        }
        AggregatedIter {
            agg: self.agg,
            current: std::mem::take(&mut self.map).into_iter(),
            pending,
            threshold: self.threshold,
            compress: self.compress,
            dir: self.dir,
            _v: PhantomData,
        }
    }
}

/// The output of an [`ExternalAggregator`]: its in-memory map, or its spill buckets aggregated
/// one after another.
pub struct AggregatedIter<K, C, A, V> {
    agg: A,
    current: hash_map::IntoIter<K, C>,
    pending: Vec<PendingBucket>,
    threshold: u64,
    compress: bool,
    dir: PathBuf,
    _v: PhantomData<fn(V)>,
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> AggregatedIter<K, C, A, V> {
    /// Aggregates one bucket file in memory, or splits it into finer buckets (pushed on
    /// `pending`, an empty map returned) if it outgrows the threshold.
    fn load(&mut self, bucket: PendingBucket) -> Result<FxHashMap<K, C>> {
        let path = bucket.file.path().to_path_buf();
        let mut reader = RecordReader::<(K, C), File>::open(&path, 0, bucket.len, self.compress).map_err(io_err(&path))?;
        let mut map: FxHashMap<K, C> = FxHashMap::default();
        let mut tracker = SizeTracker::new();
        let mut split: Option<Buckets> = None;
        let mut updates = 0u64;
        while let Some((k, c)) = reader.next_record().map_err(io_err(&path))? {
            let agg = &self.agg;
            if let Some(bytes) = upsert(&mut map, &mut tracker, k, c, |c| c, |c, o| agg.merge_combiners(c, o)) {
                tracker.sample(bytes, map.len(), map_slot_bytes::<K, C>());
            }
            updates += 1;
            // A map of one key cannot be split by hashing: let it grow.
            if updates & 31 == 0
                && bucket.level + 1 < MAX_LEVEL
                && map.len() > 1
                && tracker.estimate() > self.threshold
            {
                split.get_or_insert_with(|| Buckets::new(&self.dir, bucket.level + 1, self.compress)).spill_map(&mut map)?;
                tracker.reset();
            }
        }
        drop(reader);
        drop(bucket); // deletes the file
        if let Some(mut split) = split {
            split.spill_map(&mut map)?;
            self.pending.extend(split.into_pending());
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

    #[derive(Clone)]
    struct Sum;
    impl Aggregator<u32, u64, u64> for Sum {
        const MAP_SIDE_COMBINE: bool = true;
        fn create_combiner(&self, v: u64) -> u64 {
            v
        }
        fn merge_value(&self, c: &mut u64, v: u64) {
            *c = c.wrapping_add(v)
        }
        fn merge_combiners(&self, c: &mut u64, o: u64) {
            *c = c.wrapping_add(o)
        }
    }

    #[derive(Clone)]
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
        ShuffleConf { spill_threshold: threshold, ..ShuffleConf::default() }
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
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "spill files left behind");
    }

    #[test]
    fn hot_key_group_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut a = ExternalAggregator::new(Group, &conf(2048), dir.path());
        for i in 0..20_000u32 {
            let k = if i % 2 == 0 { "hot".to_string() } else { format!("k{}", i % 300) };
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn matches_hashmap(input in prop::collection::vec((0u32..500, any::<u64>(), any::<bool>()), 0..3000),
                           threshold in prop_oneof![Just(512u64), Just(4096), Just(1 << 30)]) {
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
