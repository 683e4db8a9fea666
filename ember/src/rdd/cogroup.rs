//! `cogroup` and the joins built on it (Spark's `CoGroupedRDD`).

use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shuffle_side::{aggregator_for, TwoSided};
use super::{Dependency, Partitioning, Rdd, RddMeta};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::shuffle::external_aggregator::AggregatedIter;
use crate::task::TaskContext;

/// A value from the left or the right input of a cogroup.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Tagged<V, W> {
    /// A value of the left RDD.
    Left(V),
    /// A value of the right RDD.
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

/// For each key, the values of both inputs: `(K, (Vec<V>, Vec<W>))`. An input already
/// hash-partitioned into the same number of partitions is read in place, without a shuffle.
#[derive(Clone, Serialize, Deserialize)]
pub struct CoGroupedRdd<K, V, W> {
    sides: TwoSided,
    _kvw: PhantomData<fn() -> (K, V, W)>,
}

impl<K: Key, V: Data, W: Data> CoGroupedRdd<K, V, W> {
    pub(crate) fn new<A: Rdd<Item = (K, V)>, B: Rdd<Item = (K, W)>>(
        a: A,
        b: B,
        partitions: usize,
    ) -> Self {
        CoGroupedRdd {
            sides: TwoSided::new(a, b, partitions, "CoGroupedRdd"),
            _kvw: PhantomData,
        }
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
        let mut map = aggregator_for(CoGroupAgg(PhantomData), ctx);
        let metrics = &ctx.metrics;
        self.sides
            .left
            .for_each::<K, V>(p, ctx, |k, v| map.insert_value(k, Tagged::Left(v), metrics));
        self.sides.right.for_each::<K, W>(p, ctx, |k, w| {
            map.insert_value(k, Tagged::Right(w), metrics)
        });
        map.into_iter()
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(Partitioning::Hash(self.sides.partitions))
    }
}
