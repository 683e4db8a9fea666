//! Shuffle dependencies (the map side) and shuffled RDDs (the reduce side).

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use super::{Dependency, Partitioning, Rdd, RddBase, RddMeta, ShuffleDependencyBase};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::partitioner::{HashPartitioner, Partitioner};
use crate::shuffle::external_aggregator::{AggregatedIter, ExternalAggregator};
use crate::shuffle::external_sorter::{ExternalSorter, SortedIter};
use crate::shuffle::reader::{read_reduce_partition, ShuffleRecords};
use crate::shuffle::sort_writer;
use crate::task::{MapStatus, ShuffleId, ShuffleMapFunc, TaskContext};

/// How a shuffle's map side treats records.
pub trait MapSide<K, V>: Clone + Send + Sync + 'static {
    /// Writes one map partition's records; returns each reduce block's size.
    fn write<I: Iterator<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        records: I,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_index: usize,
        ctx: &TaskContext,
    ) -> crate::Result<Vec<u64>>;
}

/// Map side without aggregation: records are written as they are.
#[derive(Clone, Copy, Default)]
pub struct PassThrough;

impl<K: Key, V: Data> MapSide<K, V> for PassThrough {
    fn write<I: Iterator<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        records: I,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_index: usize,
        ctx: &TaskContext,
    ) -> crate::Result<Vec<u64>> {
        let env = ctx.env();
        sort_writer::write_records(records, partitioner, shuffle_id, map_index, &env.local_dir, &env.shuffle, &ctx.metrics)
    }
}

/// Map side with an aggregator: combines per key before writing when the aggregator allows it.
pub struct Combine<A, C>(pub A, PhantomData<fn() -> C>);

impl<A: Clone, C> Clone for Combine<A, C> {
    fn clone(&self) -> Self {
        Combine(self.0.clone(), PhantomData)
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> MapSide<K, V> for Combine<A, C> {
    fn write<I: Iterator<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        records: I,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_index: usize,
        ctx: &TaskContext,
    ) -> crate::Result<Vec<u64>> {
        let env = ctx.env();
        if A::MAP_SIDE_COMBINE {
            sort_writer::write_combined(records, partitioner, &self.0, shuffle_id, map_index, &env.local_dir, &env.shuffle, &ctx.metrics)
        } else {
            sort_writer::write_records(records, partitioner, shuffle_id, map_index, &env.local_dir, &env.shuffle, &ctx.metrics)
        }
    }
}

/// The map side of one shuffle: the parent RDD, how to partition, how to write.
pub struct ShuffleDependency<P, Part, M> {
    shuffle_id: ShuffleId,
    parent: P,
    partitioner: Part,
    map_side: M,
}

impl<P: Clone, Part: Clone, M: Clone> Clone for ShuffleDependency<P, Part, M> {
    fn clone(&self) -> Self {
        ShuffleDependency {
            shuffle_id: self.shuffle_id,
            parent: self.parent.clone(),
            partitioner: self.partitioner.clone(),
            map_side: self.map_side.clone(),
        }
    }
}

impl<K: Key, V: Data, P: Rdd<Item = (K, V)>, Part: Partitioner<K>, M: MapSide<K, V>> ShuffleMapFunc for ShuffleDependency<P, Part, M> {
    fn shuffle_id(&self) -> ShuffleId {
        self.shuffle_id
    }
    fn run(&self, partition: usize, ctx: &Arc<TaskContext>) -> crate::Result<MapStatus> {
        let records = self.parent.iterator(partition, ctx);
        let sizes = self.map_side.write(records, &self.partitioner, self.shuffle_id, partition, ctx)?;
        Ok(MapStatus { location: ctx.env().block_manager.id().clone(), map_index: partition, sizes })
    }
}

impl<K: Key, V: Data, P: Rdd<Item = (K, V)>, Part: Partitioner<K>, M: MapSide<K, V>> ShuffleDependencyBase
    for ShuffleDependency<P, Part, M>
{
    fn shuffle_id(&self) -> ShuffleId {
        self.shuffle_id
    }
    fn rdd(&self) -> Arc<dyn RddBase> {
        self.parent.as_base()
    }
    fn num_reduce_partitions(&self) -> usize {
        self.partitioner.num_partitions()
    }
    fn map_func(&self) -> Arc<dyn ShuffleMapFunc> {
        Arc::new(self.clone())
    }
}

/// Registers a shuffle of `parent` and returns its id, dependency and resulting partitioning.
pub(crate) fn new_shuffle<K: Key, V: Data, P: Rdd<Item = (K, V)>, Part: Partitioner<K>, M: MapSide<K, V>>(
    parent: P,
    partitioner: Part,
    map_side: M,
) -> (ShuffleId, Arc<dyn ShuffleDependencyBase>, Partitioning) {
    let shuffle_id = parent.meta().context().new_shuffle_id();
    let partitioning = match (&partitioner as &dyn Any).downcast_ref::<HashPartitioner>() {
        Some(h) => Partitioning::Hash(<HashPartitioner as Partitioner<K>>::num_partitions(h)),
        None => Partitioning::Other(shuffle_id),
    };
    let dep = Arc::new(ShuffleDependency { shuffle_id, parent, partitioner, map_side });
    (shuffle_id, dep, partitioning)
}

/// The reduce side of a shuffle without aggregation (Spark's `ShuffledRDD`): `partition_by`,
/// `repartition`.
pub struct ShuffledRdd<K, V> {
    meta: RddMeta,
    shuffle_id: ShuffleId,
    dep: Arc<dyn ShuffleDependencyBase>,
    partitions: usize,
    partitioning: Partitioning,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for ShuffledRdd<K, V> {
    fn clone(&self) -> Self {
        ShuffledRdd {
            meta: self.meta.clone(),
            shuffle_id: self.shuffle_id,
            dep: self.dep.clone(),
            partitions: self.partitions,
            partitioning: self.partitioning.clone(),
            _kv: PhantomData,
        }
    }
}

impl<K: Key, V: Data> ShuffledRdd<K, V> {
    pub(crate) fn new<P: Rdd<Item = (K, V)>, Part: Partitioner<K>>(parent: P, partitioner: Part) -> Self {
        let ctx = parent.meta().context().clone();
        let partitions = partitioner.num_partitions();
        let (shuffle_id, dep, partitioning) = new_shuffle(parent, partitioner, PassThrough);
        ShuffledRdd { meta: RddMeta::new(&ctx, "ShuffledRdd"), shuffle_id, dep, partitions, partitioning, _kv: PhantomData }
    }
}

impl<K: Key, V: Data> Rdd for ShuffledRdd<K, V> {
    type Item = (K, V);
    type Iter = ShuffleReadIter<(K, V)>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Shuffle(self.dep.clone())]
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        ShuffleReadIter { records: read_reduce_partition(ctx, self.shuffle_id, p), ctx: ctx.clone(), read: 0 }
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(self.partitioning.clone())
    }
}

/// The reduce side of an aggregating shuffle (`combine_by_key` and everything built on it):
/// merges the map outputs of each key with the aggregator, spilling past the memory budget.
pub struct AggregatedRdd<K, V, C, A> {
    meta: RddMeta,
    source: AggSource,
    partitions: usize,
    partitioning: Partitioning,
    agg: A,
    _kvc: PhantomData<fn() -> (K, V, C)>,
}

/// Where an [`AggregatedRdd`] reads from.
#[derive(Clone)]
enum AggSource {
    /// A shuffle.
    Shuffle { shuffle_id: ShuffleId, dep: Arc<dyn ShuffleDependencyBase> },
    /// The parent is already partitioned as wanted: aggregate its partitions in place.
    Narrow(Arc<dyn NarrowPairSource>),
}

/// A parent that is already partitioned by key, read partition by partition (type-erased to
/// keep the RDD's type independent of the parent's).
pub(crate) trait NarrowPairSource: Send + Sync {
    fn base(&self) -> Arc<dyn RddBase>;
    fn iter_any(&self, p: usize, ctx: &Arc<TaskContext>) -> Box<dyn Any>;
}

struct NarrowSource<R>(R);
impl<R: Rdd> NarrowPairSource for NarrowSource<R> {
    fn base(&self) -> Arc<dyn RddBase> {
        self.0.as_base()
    }
    fn iter_any(&self, p: usize, ctx: &Arc<TaskContext>) -> Box<dyn Any> {
        let it: Box<dyn Iterator<Item = R::Item>> = Box::new(self.0.iterator(p, ctx));
        Box::new(it)
    }
}

impl<K, V, C, A: Clone> Clone for AggregatedRdd<K, V, C, A> {
    fn clone(&self) -> Self {
        AggregatedRdd {
            meta: self.meta.clone(),
            source: self.source.clone(),
            partitions: self.partitions,
            partitioning: self.partitioning.clone(),
            agg: self.agg.clone(),
            _kvc: PhantomData,
        }
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> AggregatedRdd<K, V, C, A> {
    /// Aggregates `parent` by key into `partitioner`'s partitions. When the parent is already
    /// hash-partitioned the same way, no shuffle is needed (as in Spark's `combineByKey`).
    pub(crate) fn new<P: Rdd<Item = (K, V)>, Part: Partitioner<K>>(parent: P, partitioner: Part, agg: A) -> Self {
        let ctx = parent.meta().context().clone();
        let partitions = partitioner.num_partitions();
        let is_hash = (&partitioner as &dyn Any).downcast_ref::<HashPartitioner>().is_some();
        if is_hash && parent.partitioning() == Some(Partitioning::Hash(partitions)) {
            return AggregatedRdd {
                meta: RddMeta::new(&ctx, "AggregatedRdd"),
                source: AggSource::Narrow(Arc::new(NarrowSource(parent))),
                partitions,
                partitioning: Partitioning::Hash(partitions),
                agg,
                _kvc: PhantomData,
            };
        }
        let (shuffle_id, dep, partitioning) = new_shuffle(parent, partitioner, Combine::<A, C>(agg.clone(), PhantomData));
        AggregatedRdd {
            meta: RddMeta::new(&ctx, "ShuffledRdd"),
            source: AggSource::Shuffle { shuffle_id, dep },
            partitions,
            partitioning,
            agg,
            _kvc: PhantomData,
        }
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>> Rdd for AggregatedRdd<K, V, C, A> {
    type Item = (K, C);
    type Iter = AggregatedIter<K, C, A, V>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        match &self.source {
            AggSource::Shuffle { dep, .. } => vec![Dependency::Shuffle(dep.clone())],
            AggSource::Narrow(src) => vec![Dependency::Narrow { rdd: src.base(), one_to_one: true }],
        }
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let env = ctx.env();
        let mut map = ExternalAggregator::new(self.agg.clone(), &env.shuffle, &env.local_dir);
        match &self.source {
            AggSource::Shuffle { shuffle_id, .. } => {
                if A::MAP_SIDE_COMBINE {
                    for (k, c) in read_reduce_partition::<(K, C)>(ctx, *shuffle_id, p).metered(&ctx.metrics) {
                        map.insert_combiner(k, c, &ctx.metrics);
                    }
                } else {
                    for (k, v) in read_reduce_partition::<(K, V)>(ctx, *shuffle_id, p).metered(&ctx.metrics) {
                        map.insert_value(k, v, &ctx.metrics);
                    }
                }
            }
            AggSource::Narrow(src) => {
                let any = src.iter_any(p, ctx);
                if let Ok(it) = any.downcast::<Box<dyn Iterator<Item = (K, V)>>>() {
                    for (k, v) in *it {
                        map.insert_value(k, v, &ctx.metrics);
                    }
                }
            }
        }
        map.into_iter()
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(self.partitioning.clone())
    }
}

/// The reduce side of `sort_by_key`: range-partitioned, each partition sorted by key
/// (spilling sorted runs past the memory budget).
pub struct SortedRdd<K, V> {
    meta: RddMeta,
    shuffle_id: ShuffleId,
    dep: Arc<dyn ShuffleDependencyBase>,
    partitions: usize,
    ascending: bool,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for SortedRdd<K, V> {
    fn clone(&self) -> Self {
        SortedRdd {
            meta: self.meta.clone(),
            shuffle_id: self.shuffle_id,
            dep: self.dep.clone(),
            partitions: self.partitions,
            ascending: self.ascending,
            _kv: PhantomData,
        }
    }
}

impl<K: Key + Ord, V: Data> SortedRdd<K, V> {
    pub(crate) fn new<P: Rdd<Item = (K, V)>, Part: Partitioner<K>>(parent: P, partitioner: Part, ascending: bool) -> Self {
        let ctx = parent.meta().context().clone();
        let partitions = partitioner.num_partitions();
        let (shuffle_id, dep, _) = new_shuffle(parent, partitioner, PassThrough);
        SortedRdd { meta: RddMeta::new(&ctx, "ShuffledRdd"), shuffle_id, dep, partitions, ascending, _kv: PhantomData }
    }
}

impl<K: Key + Ord, V: Data> Rdd for SortedRdd<K, V> {
    type Item = (K, V);
    type Iter = SortedIter<K, V>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Shuffle(self.dep.clone())]
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let env = ctx.env();
        let mut sorter = ExternalSorter::new(&env.shuffle, &env.local_dir, self.ascending);
        for (k, v) in read_reduce_partition::<(K, V)>(ctx, self.shuffle_id, p).metered(&ctx.metrics) {
            sorter.insert(k, v, &ctx.metrics);
        }
        sorter.into_sorted_iter()
    }
}

/// The records of one reduce partition, counted into the task's metrics when done.
pub struct ShuffleReadIter<T: serde::de::DeserializeOwned> {
    records: ShuffleRecords<T>,
    ctx: Arc<TaskContext>,
    read: u64,
}

impl<T: serde::de::DeserializeOwned> Iterator for ShuffleReadIter<T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        let x = self.records.next()?;
        self.read += 1;
        if self.read & 4095 == 0 {
            self.ctx.check_interrupted();
        }
        Some(x)
    }
}

impl<T: serde::de::DeserializeOwned> Drop for ShuffleReadIter<T> {
    fn drop(&mut self) {
        crate::task::TaskMetrics::add(&self.ctx.metrics.shuffle_records_read, self.records.records_read());
    }
}
