//! Shuffle dependencies (the map side) and shuffled RDDs (the reduce side).

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shuffle_side::{aggregator_for, ShuffleRead, ShuffleReadIter, ShuffleSide};
use super::{Dependency, Partitioning, Rdd, RddBase, RddMeta, ShuffleDependencyBase};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::partitioner::{HashPartitioner, Partitioner};
use crate::shuffle::external_aggregator::AggregatedIter;
use crate::shuffle::external_sorter::{ExternalSorter, SortedIter};
use crate::shuffle::reader::read_reduce_partition;
use crate::shuffle::sort_writer;
use crate::shuffle::{PairSink, PairSource};
use crate::task::Shipped;
use crate::task::{MapStatus, ShuffleId, ShuffleMapFunc, TaskContext, TaskKind};
use ember_scheduler::task::TaskBody;

/// How a shuffle's map side treats records.
pub trait MapSide<K: Key, V: Data>:
    Clone + Send + Sync + Serialize + serde::de::DeserializeOwned + 'static
{
    /// Writes one map partition's records as the output of task attempt `map_id` (which names
    /// its files); returns each reduce block's size.
    fn write<I: Iterator<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        records: I,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_id: u64,
        ctx: &TaskContext,
    ) -> crate::Result<Vec<u64>>;

    /// Writes partition `map_index` of `rdd`. The default writes its iterator; a combining map
    /// side lets the RDD feed it records with borrowed keys (see [`Rdd::feed_pairs`]).
    fn write_rdd<R: Rdd<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        rdd: &R,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_index: usize,
        ctx: &Arc<TaskContext>,
    ) -> crate::Result<Vec<u64>> {
        self.write(
            rdd.iterator(map_index, ctx),
            partitioner,
            shuffle_id,
            ctx.task_attempt_id,
            ctx,
        )
    }
}

/// Map side without aggregation: records are written as they are.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct PassThrough;

impl<K: Key, V: Data> MapSide<K, V> for PassThrough {
    fn write<I: Iterator<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        records: I,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_id: u64,
        ctx: &TaskContext,
    ) -> crate::Result<Vec<u64>> {
        let env = ctx.services();
        sort_writer::write_records(
            records,
            partitioner,
            shuffle_id,
            map_id,
            env.local_dir(),
            env.shuffle_conf(),
            &ctx.metrics,
        )
    }
}

/// Map side with an aggregator: combines per key before writing when the aggregator allows it.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "A: Serialize", deserialize = "A: Deserialize<'de>"))]
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
        map_id: u64,
        ctx: &TaskContext,
    ) -> crate::Result<Vec<u64>> {
        let env = ctx.services();
        if A::MAP_SIDE_COMBINE {
            sort_writer::write_combined(
                records,
                partitioner,
                &self.0,
                shuffle_id,
                map_id,
                env.local_dir(),
                env.shuffle_conf(),
                &ctx.metrics,
            )
        } else {
            sort_writer::write_records(
                records,
                partitioner,
                shuffle_id,
                map_id,
                env.local_dir(),
                env.shuffle_conf(),
                &ctx.metrics,
            )
        }
    }

    fn write_rdd<R: Rdd<Item = (K, V)>, P: Partitioner<K>>(
        &self,
        rdd: &R,
        partitioner: &P,
        shuffle_id: ShuffleId,
        map_index: usize,
        ctx: &Arc<TaskContext>,
    ) -> crate::Result<Vec<u64>> {
        if !A::MAP_SIDE_COMBINE {
            return self.write(
                rdd.iterator(map_index, ctx),
                partitioner,
                shuffle_id,
                ctx.task_attempt_id,
                ctx,
            );
        }
        let env = ctx.services();
        sort_writer::write_combined_from(
            RddPartition {
                rdd,
                partition: map_index,
                ctx,
            },
            partitioner,
            &self.0,
            shuffle_id,
            ctx.task_attempt_id,
            env.local_dir(),
            env.shuffle_conf(),
            &ctx.metrics,
        )
    }
}

/// One partition of a map task's RDD as the records of a shuffle write: fed through
/// [`Rdd::feed_pairs`], so an RDD that lends its keys (`flat_map_ref`) keeps them borrowed.
struct RddPartition<'a, R> {
    rdd: &'a R,
    partition: usize,
    ctx: &'a Arc<TaskContext>,
}

impl<K: Data, V: Data, R: Rdd<Item = (K, V)>> PairSource<K, V> for RddPartition<'_, R> {
    fn feed<S: PairSink<K, V>>(self, sink: &mut S) -> crate::Result<()> {
        self.rdd.feed_pairs(self.partition, self.ctx, sink)
    }
}

/// The map side of one shuffle: the parent RDD, how to partition, how to write.
#[derive(Serialize, Deserialize)]
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

impl<K: Key, V: Data, P: Rdd<Item = (K, V)>, Part: Partitioner<K>, M: MapSide<K, V>> ShuffleMapFunc
    for ShuffleDependency<P, Part, M>
{
    fn shuffle_id(&self) -> ShuffleId {
        self.shuffle_id
    }
    fn ship(&self) -> crate::Result<Shipped> {
        crate::ship::ship(self)
    }
    fn run(&self, partition: usize, ctx: &Arc<TaskContext>) -> crate::Result<MapStatus> {
        let sizes = self.map_side.write_rdd(
            &self.parent,
            &self.partitioner,
            self.shuffle_id,
            partition,
            ctx,
        )?;
        Ok(MapStatus {
            location: ctx.services().block_manager().id().clone(),
            map_index: partition,
            map_id: ctx.task_attempt_id,
            sizes,
        })
    }
}

impl<K: Key, V: Data, P: Rdd<Item = (K, V)>, Part: Partitioner<K>, M: MapSide<K, V>>
    ShuffleDependencyBase for ShuffleDependency<P, Part, M>
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
    fn map_task(&self) -> TaskBody {
        TaskBody::new(TaskKind::ShuffleMap(Arc::new(self.clone())))
    }
}

/// A shuffle map task body as the executor gets it (see [`crate::ship`]).
impl<K: Key, V: Data, P: Rdd<Item = (K, V)>, Part: Partitioner<K>, M: MapSide<K, V>>
    crate::ship::Shippable for ShuffleDependency<P, Part, M>
{
    type Output = TaskKind;
    fn into_output(self) -> TaskKind {
        TaskKind::ShuffleMap(Arc::new(self))
    }
}

/// Registers a shuffle of `parent` and returns its id, dependency and resulting partitioning.
pub(crate) fn new_shuffle<
    K: Key,
    V: Data,
    P: Rdd<Item = (K, V)>,
    Part: Partitioner<K>,
    M: MapSide<K, V>,
>(
    parent: P,
    partitioner: Part,
    map_side: M,
) -> (ShuffleId, Arc<dyn ShuffleDependencyBase>, Partitioning) {
    let shuffle_id = parent.meta().new_shuffle_id();
    let partitioning = match (&partitioner as &dyn Any).downcast_ref::<HashPartitioner>() {
        Some(h) => Partitioning::Hash(<HashPartitioner as Partitioner<K>>::num_partitions(h)),
        None => Partitioning::Other(shuffle_id),
    };
    let dep = Arc::new(ShuffleDependency {
        shuffle_id,
        parent,
        partitioner,
        map_side,
    });
    (shuffle_id, dep, partitioning)
}

/// The reduce side of a shuffle without aggregation (Spark's `ShuffledRDD`): `partition_by`,
/// `repartition`.
#[derive(Clone, Serialize, Deserialize)]
pub struct ShuffledRdd<K, V> {
    meta: RddMeta,
    read: ShuffleRead,
    partitions: usize,
    partitioning: Partitioning,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K: Key, V: Data> ShuffledRdd<K, V> {
    pub(crate) fn new<P: Rdd<Item = (K, V)>, Part: Partitioner<K>>(
        parent: P,
        partitioner: Part,
    ) -> Self {
        let meta = RddMeta::derived(parent.meta(), "ShuffledRdd");
        let partitions = partitioner.num_partitions();
        meta.refuse_zero_partitions("partitioner", partitions);
        let (read, partitioning) = ShuffleRead::new(parent, partitioner, PassThrough);
        ShuffledRdd {
            meta,
            read,
            partitions,
            partitioning,
            _kv: PhantomData,
        }
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
        self.read.dependency().into_iter().collect()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        self.read.records(p, ctx)
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(self.partitioning.clone())
    }
    fn prefers_shuffle_input_hosts(&self) -> bool {
        true
    }
}

/// The reduce side of an aggregating shuffle (`combine_by_key` and everything built on it):
/// merges the map outputs of each key with the aggregator, spilling past the memory budget.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "A: Serialize", deserialize = "A: Deserialize<'de>"))]
pub struct AggregatedRdd<K, V, C, A> {
    meta: RddMeta,
    source: ShuffleSide,
    partitions: usize,
    partitioning: Partitioning,
    agg: A,
    _kvc: PhantomData<fn() -> (K, V, C)>,
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
    pub(crate) fn new<P: Rdd<Item = (K, V)>, Part: Partitioner<K>>(
        parent: P,
        partitioner: Part,
        agg: A,
    ) -> Self {
        let parent_meta = parent.meta().clone();
        let partitions = partitioner.num_partitions();
        let (source, partitioning) = ShuffleSide::new(
            parent,
            partitioner,
            Combine::<A, C>(agg.clone(), PhantomData),
        );
        let name = if source.is_shuffle() {
            "ShuffledRdd"
        } else {
            "AggregatedRdd"
        };
        let meta = RddMeta::derived(&parent_meta, name);
        meta.refuse_zero_partitions("num_partitions", partitions);
        AggregatedRdd {
            meta,
            source,
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
        self.source.dependency().into_iter().collect()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let mut map = aggregator_for(self.agg.clone(), ctx);
        let metrics = &ctx.metrics;
        // Map outputs are combiners when the map side combined; a narrow parent gives values.
        if self.source.is_shuffle() && A::MAP_SIDE_COMBINE {
            self.source
                .for_each::<K, C>(p, ctx, |k, c| map.insert_combiner(k, c, metrics));
        } else {
            self.source
                .for_each::<K, V>(p, ctx, |k, v| map.insert_value(k, v, metrics));
        }
        map.into_iter()
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(self.partitioning.clone())
    }
    fn prefers_shuffle_input_hosts(&self) -> bool {
        // Spark's combineByKey reads through a ShuffledRDD; read in place, there is no shuffle.
        self.source.is_shuffle()
    }
}

/// The reduce side of `sort_by_key`: range-partitioned, each partition sorted by key
/// (spilling sorted runs past the memory budget).
#[derive(Clone, Serialize, Deserialize)]
pub struct SortedRdd<K, V> {
    meta: RddMeta,
    read: ShuffleRead,
    partitions: usize,
    ascending: bool,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K: Key + Ord, V: Data> SortedRdd<K, V> {
    pub(crate) fn new<P: Rdd<Item = (K, V)>, Part: Partitioner<K>>(
        parent: P,
        partitioner: Part,
        ascending: bool,
    ) -> Self {
        let meta = RddMeta::derived(parent.meta(), "ShuffledRdd");
        let partitions = partitioner.num_partitions();
        meta.refuse_zero_partitions("partitioner", partitions);
        let (read, _) = ShuffleRead::new(parent, partitioner, PassThrough);
        SortedRdd {
            meta,
            read,
            partitions,
            ascending,
            _kv: PhantomData,
        }
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
        self.read.dependency().into_iter().collect()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let services = ctx.services();
        let mut sorter = ExternalSorter::new(
            services.shuffle_conf(),
            services.local_dir(),
            self.ascending,
        );
        for (k, v) in
            read_reduce_partition::<(K, V)>(ctx, self.read.shuffle_id, p).metered(&ctx.metrics)
        {
            sorter.insert(k, v, &ctx.metrics);
        }
        sorter.into_sorted_iter()
    }
    fn prefers_shuffle_input_hosts(&self) -> bool {
        true
    }
}
