//! [`BucketedCombiner`]: one map until it outgrows the cache, then buckets fed from queues.

use std::io::Write;
use std::path::Path;

use rustc_hash::FxHashMap;

use super::{partition_of, BlockWriter, MapCombiner};
use crate::aggregator::Aggregator;
use crate::codec::ChunkFormat;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::partitioner::{fast_range, fx_hash, mix64, Partitioner};
use crate::shuffle::append_only_map::{push_queued, upsert, DIRECT_MAX_ENTRIES, PENDING_BUDGET};
use crate::shuffle::map_output_writer::MapOutput;
use crate::size_tracker::{map_slot_bytes, SizeTracker};

/// Buckets aimed for in total (reduce partitions x sub-buckets): each bucket's map is then a
/// fraction of the whole, small enough to stay in cache while a batch is folded into it.
const TARGET_BUCKETS: usize = 256;

/// Seed of the sub-bucket hash: independent of the partitioner's hash, so sub-buckets split a
/// partition's keys evenly.
const SUB_BUCKET_SEED: u64 = 0xD6E8_FEB8_6659_FD93;

/// The combiner for keys and values without heap data.
///
/// A big combine map is slow because every insert is a cache miss in a table of many megabytes.
/// So once the map outgrows the cache, keys are split into buckets — by reduce partition, then by
/// an independent hash into sub-buckets — each with its own small map. Records are queued per
/// bucket and folded into the bucket's map a batch at a time, while that map is in cache.
/// Buckets are grouped by partition, so the output is written partition by partition straight
/// from the maps, with no sort and no intermediate buffer.
pub(in crate::shuffle) struct BucketedCombiner<'a, K, V, C, A, P> {
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
    /// Bytes the bucket queues may hold.
    pending_budget: usize,
    out: BlockWriter,
}

impl<'a, K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>>
    BucketedCombiner<'a, K, V, C, A, P>
{
    pub(in crate::shuffle) fn new(
        agg: &'a A,
        partitioner: &'a P,
        format: ChunkFormat,
        spill_threshold: u64,
    ) -> Self {
        let partitions = partitioner.num_partitions();
        BucketedCombiner {
            agg,
            partitioner,
            partitions,
            sub: (TARGET_BUCKETS / partitions.max(1)).max(1),
            direct: FxHashMap::default(),
            bucketed: false,
            maps: Vec::new(),
            pending: Vec::new(),
            batch: 0,
            pending_count: 0,
            entries: 0,
            tracker: SizeTracker::new(),
            pending_budget: PENDING_BUDGET.min((spill_threshold / 4) as usize),
            out: BlockWriter::new(format),
        }
    }

    #[inline]
    fn bucket_of(&self, key: &K) -> Result<usize> {
        let p = partition_of(self.partitioner, key, self.partitions)?;
        let s = if self.sub == 1 {
            0
        } else {
            fast_range(mix64(fx_hash(key) ^ SUB_BUCKET_SEED), self.sub)
        };
        Ok(p * self.sub + s)
    }

    /// Moves the direct map's entries into bucket maps; from now on records are queued.
    fn split_into_buckets(&mut self) -> Result<()> {
        if self.bucketed {
            return Ok(());
        }
        let buckets = self.partitions * self.sub;
        self.maps = (0..buckets).map(|_| FxHashMap::default()).collect();
        self.batch = (self.pending_budget / (buckets * std::mem::size_of::<(K, V)>().max(1)))
            .clamp(16, 1 << 16);
        self.pending = (0..buckets).map(|_| Vec::new()).collect();
        self.bucketed = true;
        let direct = std::mem::take(&mut self.direct);
        self.entries = direct.len();
        for (k, c) in direct {
            let b = self.bucket_of(&k)?;
            self.maps[b].insert(k, c);
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
            if let Some(bytes) = upsert(
                map,
                &mut self.tracker,
                k,
                v,
                |v| agg.create_combiner(v),
                |c, v| agg.merge_value(c, v),
            ) {
                let entries = self.entries + map.len() - before;
                self.tracker
                    .sample(bytes, entries, map_slot_bytes::<K, C>());
            }
        }
        self.entries += map.len() - before;
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapCombiner<K, V>
    for BucketedCombiner<'_, K, V, C, A, P>
{
    #[inline]
    fn insert(&mut self, key: K, value: V) -> Result<()> {
        if !self.bucketed {
            let agg = self.agg;
            let sampled = upsert(
                &mut self.direct,
                &mut self.tracker,
                key,
                value,
                |v| agg.create_combiner(v),
                |c, v| agg.merge_value(c, v),
            );
            if let Some(bytes) = sampled {
                self.tracker
                    .sample(bytes, self.direct.len(), map_slot_bytes::<K, C>());
            }
            if self.direct.len() > DIRECT_MAX_ENTRIES {
                self.split_into_buckets()?;
            }
            return Ok(());
        }
        let b = self.bucket_of(&key)?;
        let queue = &mut self.pending[b];
        push_queued(queue, (key, value), self.batch);
        self.pending_count += 1;
        if queue.len() >= self.batch {
            self.fold(b);
        }
        Ok(())
    }

    /// The maps, plus the queued values.
    #[inline]
    fn estimate(&self) -> u64 {
        self.tracker.estimate() + (self.pending_count * std::mem::size_of::<(K, V)>()) as u64
    }

    fn prepare_output(&mut self) -> Result<u64> {
        self.split_into_buckets()?;
        for b in 0..self.maps.len() {
            self.fold(b);
        }
        Ok(self.entries as u64)
    }

    /// The buckets stay (empty): the next records are queued at once.
    fn reset(&mut self) {
        self.tracker.reset();
        self.entries = 0;
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapOutput
    for BucketedCombiner<'_, K, V, C, A, P>
{
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
                written += self.out.push_pair(&k, &c, out, path)?;
            }
            self.entries -= drained;
        }
        Ok(written + self.out.finish(out, path)?)
    }
}
