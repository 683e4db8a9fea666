//! `cogroup` and the joins built on it (Spark's `CoGroupedRDD`).

use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shuffled::{new_shuffle, AggSource, PassThrough};
use super::{Dependency, Partitioning, Rdd, RddMeta};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::partitioner::HashPartitioner;
use crate::shuffle::external_aggregator::{AggregatedIter, ExternalAggregator};
use crate::task::TaskContext;

/// A value from the left or the right input of a cogroup.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Tagged<V, W> {
    Left(V),
    Right(W),
}

/// Collects the values of each side of a key into two vectors.
#[derive(Serialize, Deserialize)]
pub struct CoGroupAgg<V, W>(PhantomData<fn() -> (V, W)>);
impl<V, W> Default for CoGroupAgg<V, W> {
    fn default() -> Self {
        CoGroupAgg(PhantomData)
    }
}

impl<V, W> Clone for CoGroupAgg<V, W> {
    fn clone(&self) -> Self {
        CoGroupAgg(PhantomData)
    }
}

impl<K, V: Data, W: Data> Aggregator<K, Tagged<V, W>, (Vec<V>, Vec<W>)> for CoGroupAgg<V, W> {
    const MAP_SIDE_COMBINE: bool = false;
    fn create_combiner(&self, value: Tagged<V, W>) -> (Vec<V>, Vec<W>) {
        match value {
            Tagged::Left(v) => (vec![v], Vec::new()),
            Tagged::Right(w) => (Vec::new(), vec![w]),
        }
    }
    fn merge_value(&self, c: &mut (Vec<V>, Vec<W>), value: Tagged<V, W>) {
        match value {
            Tagged::Left(v) => c.0.push(v),
            Tagged::Right(w) => c.1.push(w),
        }
    }
    fn merge_combiners(&self, c: &mut (Vec<V>, Vec<W>), other: (Vec<V>, Vec<W>)) {
        c.0.extend(other.0);
        c.1.extend(other.1);
    }
}

/// One input of a two-sided operation: read in place when already hash-partitioned into
/// `partitions`, else through a new shuffle.
pub(crate) fn side<K: Key, X: Data, R: Rdd<Item = (K, X)>>(rdd: R, partitions: usize) -> AggSource {
    if rdd.partitioning() == Some(Partitioning::Hash(partitions)) {
        AggSource::narrow(rdd)
    } else {
        let (shuffle_id, dep, _) = new_shuffle(rdd, HashPartitioner::new(partitions), PassThrough);
        AggSource::Shuffle { shuffle_id, dep: Some(dep) }
    }
}

/// For each key, the values of both inputs: `(K, (Vec<V>, Vec<W>))`. An input already
/// hash-partitioned into the same number of partitions is read in place, without a shuffle.
#[derive(Clone, Serialize, Deserialize)]
pub struct CoGroupedRdd<K, V, W> {
    sides: TwoSided,
    _kvw: PhantomData<fn() -> (K, V, W)>,
}

/// The two inputs of a cogroup or join and the number of partitions they meet in.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TwoSided {
    pub(crate) meta: RddMeta,
    pub(crate) left: AggSource,
    pub(crate) right: AggSource,
    pub(crate) partitions: usize,
}

impl TwoSided {
    pub(crate) fn new<K: Key, V: Data, W: Data, A: Rdd<Item = (K, V)>, B: Rdd<Item = (K, W)>>(a: A, b: B, partitions: usize, name: &'static str) -> Self {
        let meta = RddMeta::derived(a.meta(), name);
        let partitions = partitions.max(1);
        TwoSided { meta, left: side(a, partitions), right: side(b, partitions), partitions }
    }

    pub(crate) fn dependencies(&self) -> Vec<Dependency> {
        self.left.dependency().into_iter().chain(self.right.dependency()).collect()
    }
}

impl<K: Key, V: Data, W: Data> CoGroupedRdd<K, V, W> {
    pub(crate) fn new<A: Rdd<Item = (K, V)>, B: Rdd<Item = (K, W)>>(a: A, b: B, partitions: usize) -> Self {
        CoGroupedRdd { sides: TwoSided::new(a, b, partitions, "CoGroupedRdd"), _kvw: PhantomData }
    }
}

impl<K: Key, V: Data, W: Data> Rdd for CoGroupedRdd<K, V, W> {
    type Item = (K, (Vec<V>, Vec<W>));
    type Iter = AggregatedIter<K, (Vec<V>, Vec<W>), CoGroupAgg<V, W>, Tagged<V, W>>;
    fn meta(&self) -> &RddMeta {
        &self.sides.meta
    }
    fn num_partitions(&self) -> usize {
        self.sides.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.sides.dependencies()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let env = ctx.services();
        let mut map = ExternalAggregator::new(CoGroupAgg(PhantomData), env.shuffle_conf(), &env.local_dir());
        let metrics = &ctx.metrics;
        self.sides.left.for_each::<K, V>(p, ctx, |k, v| map.insert_value(k, Tagged::Left(v), metrics));
        self.sides.right.for_each::<K, W>(p, ctx, |k, w| map.insert_value(k, Tagged::Right(w), metrics));
        map.into_iter()
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(Partitioning::Hash(self.sides.partitions))
    }
}
