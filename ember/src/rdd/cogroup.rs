//! `cogroup` and the joins built on it (Spark's `CoGroupedRDD`).

use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shuffled::{new_shuffle, NarrowPairSource, PassThrough};
use super::{Dependency, Partitioning, Rdd, RddMeta, ShuffleDependencyBase};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::partitioner::HashPartitioner;
use crate::shuffle::external_aggregator::{AggregatedIter, ExternalAggregator};
use crate::shuffle::reader::read_reduce_partition;
use crate::task::{ShuffleId, TaskContext};

/// A value from the left or the right input of a cogroup.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Tagged<V, W> {
    Left(V),
    Right(W),
}

/// Collects the values of each side of a key into two vectors.
pub struct CoGroupAgg<V, W>(PhantomData<fn() -> (V, W)>);
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

#[derive(Clone)]
enum Side {
    Shuffle { shuffle_id: ShuffleId, dep: Arc<dyn ShuffleDependencyBase> },
    Narrow(Arc<dyn NarrowPairSource>),
}

struct Narrow<R>(R);
impl<R: Rdd> NarrowPairSource for Narrow<R> {
    fn base(&self) -> Arc<dyn super::RddBase> {
        self.0.as_base()
    }
    fn iter_any(&self, p: usize, ctx: &Arc<TaskContext>) -> Box<dyn std::any::Any> {
        let it: Box<dyn Iterator<Item = R::Item>> = Box::new(self.0.iterator(p, ctx));
        Box::new(it)
    }
}

fn side<K: Key, X: Data, R: Rdd<Item = (K, X)>>(rdd: R, partitions: usize) -> Side {
    if rdd.partitioning() == Some(Partitioning::Hash(partitions)) {
        Side::Narrow(Arc::new(Narrow(rdd)))
    } else {
        let (shuffle_id, dep, _) = new_shuffle(rdd, HashPartitioner::new(partitions), PassThrough);
        Side::Shuffle { shuffle_id, dep }
    }
}

/// For each key, the values of both inputs: `(K, (Vec<V>, Vec<W>))`. An input already
/// hash-partitioned into the same number of partitions is read in place, without a shuffle.
pub struct CoGroupedRdd<K, V, W> {
    meta: RddMeta,
    left: Side,
    right: Side,
    partitions: usize,
    _kvw: PhantomData<fn() -> (K, V, W)>,
}

impl<K, V, W> Clone for CoGroupedRdd<K, V, W> {
    fn clone(&self) -> Self {
        CoGroupedRdd { meta: self.meta.clone(), left: self.left.clone(), right: self.right.clone(), partitions: self.partitions, _kvw: PhantomData }
    }
}

impl<K: Key, V: Data, W: Data> CoGroupedRdd<K, V, W> {
    pub(crate) fn new<A: Rdd<Item = (K, V)>, B: Rdd<Item = (K, W)>>(a: A, b: B, partitions: usize) -> Self {
        let ctx = a.meta().context().clone();
        let partitions = partitions.max(1);
        CoGroupedRdd { meta: RddMeta::new(&ctx, "CoGroupedRdd"), left: side(a, partitions), right: side(b, partitions), partitions, _kvw: PhantomData }
    }
}

fn dep_of(s: &Side) -> Dependency {
    match s {
        Side::Shuffle { dep, .. } => Dependency::Shuffle(dep.clone()),
        Side::Narrow(src) => Dependency::Narrow { rdd: src.base(), one_to_one: true },
    }
}

fn feed<K: Key, X: Data, V: Data, W: Data>(
    s: &Side,
    p: usize,
    ctx: &Arc<TaskContext>,
    map: &mut ExternalAggregator<K, Tagged<V, W>, (Vec<V>, Vec<W>), CoGroupAgg<V, W>>,
    tag: fn(X) -> Tagged<V, W>,
) {
    match s {
        Side::Shuffle { shuffle_id, .. } => {
            for (k, x) in read_reduce_partition::<(K, X)>(ctx, *shuffle_id, p).metered(&ctx.metrics) {
                map.insert_value(k, tag(x), &ctx.metrics);
            }
        }
        Side::Narrow(src) => {
            if let Ok(it) = src.iter_any(p, ctx).downcast::<Box<dyn Iterator<Item = (K, X)>>>() {
                for (k, x) in *it {
                    map.insert_value(k, tag(x), &ctx.metrics);
                }
            }
        }
    }
}

impl<K: Key, V: Data, W: Data> Rdd for CoGroupedRdd<K, V, W> {
    type Item = (K, (Vec<V>, Vec<W>));
    type Iter = AggregatedIter<K, (Vec<V>, Vec<W>), CoGroupAgg<V, W>, Tagged<V, W>>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![dep_of(&self.left), dep_of(&self.right)]
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let env = ctx.env();
        let mut map = ExternalAggregator::new(CoGroupAgg(PhantomData), &env.shuffle, &env.local_dir);
        feed::<K, V, V, W>(&self.left, p, ctx, &mut map, Tagged::Left);
        feed::<K, W, V, W>(&self.right, p, ctx, &mut map, Tagged::Right);
        map.into_iter()
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(Partitioning::Hash(self.partitions))
    }
}
