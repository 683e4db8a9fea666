//! Operations on RDDs of `(key, value)` pairs (Spark's `PairRDDFunctions`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::fns::{assert_shippable, Call1, Call2, Shippable, UserFn};
use super::narrow::{FlatMapValuesOp, MapOp, MapValuesOp, NarrowRdd};
use super::{AggregatedRdd, CoGroupedRdd, Rdd, ShuffledRdd, SortedRdd};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::func::Captures;
use crate::partitioner::SortOrder;
use crate::partitioner::{
    determine_bounds, reservoir_sample, HashPartitioner, Partitioner, RangePartitioner,
};
use crate::rdd::actions::Actions;

/// `reduce_by_key`'s aggregator: the combiner is the running reduction.
#[derive(Clone, Serialize, Deserialize)]
pub struct ReduceAgg<F> {
    f: F,
}
impl<F> ReduceAgg<F> {
    pub(crate) fn new(f: F) -> Self {
        ReduceAgg { f }
    }
}
impl<K, V: Clone, F: Call2<V, V, V>> Aggregator<K, V, V> for ReduceAgg<F> {
    const MAP_SIDE_COMBINE: bool = true;
    #[inline]
    fn create_combiner(&self, v: V) -> V {
        v
    }
    #[inline]
    fn merge_value(&self, c: &mut V, v: V) {
        // The user function takes both values by value; cloning the accumulator is free for
        // the plain-data values reductions mostly use, and keeps the map panic-safe.
        *c = self.f.call(c.clone(), v);
    }
    #[inline]
    fn merge_combiners(&self, c: &mut V, other: V) {
        *c = self.f.call(c.clone(), other);
    }
}

/// `aggregate_by_key`/`fold_by_key`'s aggregator: a zero value, a per-value step, a merge.
#[derive(Serialize, Deserialize)]
pub struct ZeroAgg<U, S, M> {
    zero: Arc<U>,
    seq: S,
    comb: M,
}
impl<U, S: Clone, M: Clone> Clone for ZeroAgg<U, S, M> {
    fn clone(&self) -> Self {
        ZeroAgg {
            zero: self.zero.clone(),
            seq: self.seq.clone(),
            comb: self.comb.clone(),
        }
    }
}
impl<K, V, U: Data, S: Call2<U, V, U>, M: Call2<U, U, U>> Aggregator<K, V, U> for ZeroAgg<U, S, M> {
    const MAP_SIDE_COMBINE: bool = true;
    #[inline]
    fn create_combiner(&self, v: V) -> U {
        self.seq.call((*self.zero).clone(), v)
    }
    #[inline]
    fn merge_value(&self, c: &mut U, v: V) {
        *c = self.seq.call(c.clone(), v);
    }
    #[inline]
    fn merge_combiners(&self, c: &mut U, other: U) {
        *c = self.comb.call(c.clone(), other);
    }
}

/// `combine_by_key`'s aggregator: the user's three functions.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "",
    deserialize = "F1: Copy + 'static, F2: Copy + 'static, F3: Copy + 'static"
))]
pub struct CombineAgg<F1, F2, F3> {
    create: UserFn<F1>,
    merge_value: UserFn<F2>,
    merge_combiners: UserFn<F3>,
}
impl<F1: Copy, F2: Copy, F3: Copy> Clone for CombineAgg<F1, F2, F3> {
    fn clone(&self) -> Self {
        CombineAgg {
            create: self.create.clone(),
            merge_value: self.merge_value.clone(),
            merge_combiners: self.merge_combiners.clone(),
        }
    }
}
impl<K, V, C, F1, F2, F3> Aggregator<K, V, C> for CombineAgg<F1, F2, F3>
where
    F1: Fn(V) -> C + Copy + Send + Sync + 'static,
    F2: Fn(&mut C, V) + Copy + Send + Sync + 'static,
    F3: Fn(&mut C, C) + Copy + Send + Sync + 'static,
{
    const MAP_SIDE_COMBINE: bool = true;
    #[inline]
    fn create_combiner(&self, v: V) -> C {
        self.create.enter(|f| f(v))
    }
    #[inline]
    fn merge_value(&self, c: &mut C, v: V) {
        self.merge_value.enter(|f| f(c, v))
    }
    #[inline]
    fn merge_combiners(&self, c: &mut C, other: C) {
        self.merge_combiners.enter(|f| f(c, other))
    }
}

/// `group_by_key`'s aggregator. No map-side combine: it would not shrink the data (as in Spark).
#[derive(Serialize, Deserialize)]
pub struct GroupAgg<V>(PhantomData<fn() -> V>);
impl<V> Clone for GroupAgg<V> {
    fn clone(&self) -> Self {
        GroupAgg(PhantomData)
    }
}
impl<K, V: Data> Aggregator<K, V, Vec<V>> for GroupAgg<V> {
    const MAP_SIDE_COMBINE: bool = false;
    #[inline]
    fn create_combiner(&self, v: V) -> Vec<V> {
        vec![v]
    }
    #[inline]
    fn merge_value(&self, c: &mut Vec<V>, v: V) {
        c.push(v)
    }
    #[inline]
    fn merge_combiners(&self, c: &mut Vec<V>, other: Vec<V>) {
        c.extend(other)
    }
}

/// The reduction of `distinct`: all values are `()`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct UnitReduce;
impl Call2<(), (), ()> for UnitReduce {
    #[inline(always)]
    fn call(&self, _a: (), _b: ()) {}
}

fn flatten_inner<V: Clone, W: Clone>(vw: (Vec<V>, Vec<W>)) -> Vec<(V, W)> {
    let (vs, ws) = vw;
    let mut out = Vec::with_capacity(vs.len() * ws.len());
    for v in &vs {
        for w in &ws {
            out.push((v.clone(), w.clone()));
        }
    }
    out
}

fn flatten_left<V: Clone, W: Clone>(vw: (Vec<V>, Vec<W>)) -> Vec<(V, Option<W>)> {
    let (vs, ws) = vw;
    if ws.is_empty() {
        return vs.into_iter().map(|v| (v, None)).collect();
    }
    flatten_inner((vs, ws))
        .into_iter()
        .map(|(v, w)| (v, Some(w)))
        .collect()
}

fn flatten_right<V: Clone, W: Clone>(vw: (Vec<V>, Vec<W>)) -> Vec<(Option<V>, W)> {
    let (vs, ws) = vw;
    if vs.is_empty() {
        return ws.into_iter().map(|w| (None, w)).collect();
    }
    flatten_inner((vs, ws))
        .into_iter()
        .map(|(v, w)| (Some(v), w))
        .collect()
}

fn flatten_full<V: Clone, W: Clone>(vw: (Vec<V>, Vec<W>)) -> Vec<(Option<V>, Option<W>)> {
    let (vs, ws) = vw;
    match (vs.is_empty(), ws.is_empty()) {
        (true, _) => ws.into_iter().map(|w| (None, Some(w))).collect(),
        (_, true) => vs.into_iter().map(|v| (Some(v), None)).collect(),
        _ => flatten_inner((vs, ws))
            .into_iter()
            .map(|(v, w)| (Some(v), Some(w)))
            .collect(),
    }
}

macro_rules! fn_object {
    ($(#[$doc:meta])* $name:ident, <$($g:ident),*>, $arg:ty => $out:ty, $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
        pub struct $name;
        impl<$($g: Clone),*> Call1<$arg, $out> for $name {
            #[inline(always)]
            fn call(&self, a: $arg) -> $out {
                $body(a)
            }
        }
    };
}

fn_object!(/// Inner-join flattening of a cogroup.
    InnerJoin, <V, W>, (Vec<V>, Vec<W>) => Vec<(V, W)>, flatten_inner);
fn_object!(/// Left-outer-join flattening of a cogroup.
    LeftJoin, <V, W>, (Vec<V>, Vec<W>) => Vec<(V, Option<W>)>, flatten_left);
fn_object!(/// Right-outer-join flattening of a cogroup.
    RightJoin, <V, W>, (Vec<V>, Vec<W>) => Vec<(Option<V>, W)>, flatten_right);
fn_object!(/// Full-outer-join flattening of a cogroup.
    FullJoin, <V, W>, (Vec<V>, Vec<W>) => Vec<(Option<V>, Option<W>)>, flatten_full);
fn_object!(/// The key of a pair.
    TakeKey, <K, V>, (K, V) => K, |(k, _)| k);
fn_object!(/// The value of a pair.
    TakeValue, <K, V>, (K, V) => V, |(_, v)| v);
fn_object!(/// The constant 1, for counting.
    One, <V>, V => u64, |_| 1u64);

/// Adds two counts.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct AddU64;
impl Call2<u64, u64, u64> for AddU64 {
    #[inline(always)]
    fn call(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Result type of `join`.
pub type Joined<K, V, W> = super::HashJoinRdd<K, V, W>;

/// Number of partitions for a shuffle: the one given (0 too, which the shuffled RDD refuses when
/// a job runs), else `ember.default.parallelism` when set, else the parent's (Spark's
/// `defaultPartitioner`).
pub(crate) fn partitions_or_default<R: Rdd>(rdd: &R, n: Option<usize>) -> usize {
    let upstream = rdd.num_partitions();
    n.unwrap_or_else(|| {
        rdd.context()
            .map_or(upstream.max(1), |c| c.default_shuffle_partitions(upstream))
    })
}

/// Partitions of a two-sided operation: the one given (0 too, refused when a job runs), else the
/// default for the larger input.
fn two_sided_partitions<A: Rdd, B: Rdd>(a: &A, b: &B, n: Option<usize>) -> usize {
    let upstream = a.num_partitions().max(b.num_partitions());
    n.unwrap_or_else(|| {
        a.context()
            .map_or(upstream.max(1), |c| c.default_shuffle_partitions(upstream))
    })
}

/// Operations on RDDs of pairs. `num_partitions` arguments take a number or `None` for the
/// default.
pub trait PairRdd<K: Key, V: Data>: Rdd<Item = (K, V)> {
    /// Applies `f` to every value, keeping keys and partitioning.
    fn map_values<U: Data, F>(self, f: F) -> NarrowRdd<Self, MapValuesOp<UserFn<F>, U>>
    where
        F: Fn(V) -> U + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        NarrowRdd::new(
            self,
            "MapValuesRdd",
            MapValuesOp::new(UserFn::new(f, &captures)),
        )
    }

    /// Replaces every value by the values of `f(v)`, keeping the key.
    fn flat_map_values<J, F>(self, f: F) -> NarrowRdd<Self, FlatMapValuesOp<UserFn<F>, J>>
    where
        J: IntoIterator + 'static,
        J::Item: Data,
        J::IntoIter: 'static,
        F: Fn(V) -> J + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        NarrowRdd::new(
            self,
            "FlatMapValuesRdd",
            FlatMapValuesOp::new(UserFn::new(f, &captures)),
        )
    }

    /// The keys.
    fn keys(self) -> NarrowRdd<Self, MapOp<TakeKey, K>> {
        NarrowRdd::new(self, "MapRdd", MapOp::new(TakeKey))
    }

    /// The values.
    fn values(self) -> NarrowRdd<Self, MapOp<TakeValue, V>> {
        NarrowRdd::new(self, "MapRdd", MapOp::new(TakeValue))
    }

    /// Moves every pair to the partition `partitioner` gives its key.
    fn partition_by<P: Partitioner<K>>(self, partitioner: P) -> ShuffledRdd<K, V> {
        ShuffledRdd::new(self, partitioner)
    }

    /// Combines the values of each key with three functions (Spark's `combineByKey`).
    fn combine_by_key<C: Data, F1, F2, F3>(
        self,
        create_combiner: F1,
        merge_value: F2,
        merge_combiners: F3,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, C, CombineAgg<F1, F2, F3>>
    where
        F1: Fn(V) -> C + Shippable,
        F2: Fn(&mut C, V) + Shippable,
        F3: Fn(&mut C, C) + Shippable,
    {
        assert_shippable!(F1, F2, F3);
        let captures = Captures::take();
        let n = partitions_or_default(&self, num_partitions.into());
        let agg = CombineAgg {
            create: UserFn::new(create_combiner, &captures),
            merge_value: UserFn::new(merge_value, &captures),
            merge_combiners: UserFn::new(merge_combiners, &captures),
        };
        AggregatedRdd::new(self, HashPartitioner::new(n), agg)
    }

    /// Merges the values of each key with `f`, combining inside map tasks first.
    fn reduce_by_key<F>(
        self,
        f: F,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, V, ReduceAgg<UserFn<F>>>
    where
        F: Fn(V, V) -> V + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(
            self,
            HashPartitioner::new(n),
            ReduceAgg::new(UserFn::new(f, &captures)),
        )
    }

    /// Folds the values of each key, starting from `zero` in every partition.
    fn fold_by_key<F>(
        self,
        zero: V,
        f: F,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, V, ZeroAgg<V, UserFn<F>, UserFn<F>>>
    where
        F: Fn(V, V) -> V + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        let n = partitions_or_default(&self, num_partitions.into());
        let f = UserFn::new(f, &captures);
        AggregatedRdd::new(
            self,
            HashPartitioner::new(n),
            ZeroAgg {
                zero: Arc::new(zero),
                seq: f.clone(),
                comb: f,
            },
        )
    }

    /// Aggregates the values of each key into a `U`: `seq` folds a value in, `comb` merges two
    /// partial results; `zero` starts every partial result.
    fn aggregate_by_key<U: Data, S, M>(
        self,
        zero: U,
        seq: S,
        comb: M,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, U, ZeroAgg<U, UserFn<S>, UserFn<M>>>
    where
        S: Fn(U, V) -> U + Shippable,
        M: Fn(U, U) -> U + Shippable,
    {
        assert_shippable!(S, M);
        let captures = Captures::take();
        let n = partitions_or_default(&self, num_partitions.into());
        let agg = ZeroAgg {
            zero: Arc::new(zero),
            seq: UserFn::new(seq, &captures),
            comb: UserFn::new(comb, &captures),
        };
        AggregatedRdd::new(self, HashPartitioner::new(n), agg)
    }

    /// All values of each key, in one vector.
    fn group_by_key(
        self,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, Vec<V>, GroupAgg<V>> {
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), GroupAgg(PhantomData))
    }

    /// Sorts by key into range partitions (sampling the keys first, as Spark's
    /// `RangePartitioner` does: this runs a small job).
    #[track_caller]
    fn sort_by_key(
        self,
        order: SortOrder,
        num_partitions: impl Into<Option<usize>>,
    ) -> Result<SortedRdd<K, V>>
    where
        K: Ord,
    {
        let asked = num_partitions.into();
        if asked == Some(0) {
            return Err(crate::EmberError::InvalidArgument {
                argument: "sort_by_key(num_partitions)".into(),
                message: "Number of partitions (0) must be positive.".into(),
            });
        }
        let n = asked
            .filter(|n| *n > 0)
            .unwrap_or(self.num_partitions())
            .max(1);
        let bounds = if n > 1 {
            // Spark's sketch: about 20 keys per output partition, 3x oversampled per input
            // partition.
            let sample_size = (20 * n).min(1_000_000);
            let per_partition = (3 * sample_size).div_ceil(self.num_partitions().max(1));
            let sketches = self.context()?.run_job_inner(
                &self,
                per_partition,
                |k: &usize, ctx, it| {
                    let seed = 0x5eed_u64 ^ ctx.partition_id as u64;
                    reservoir_sample(it.map(|(k, _)| k), *k, seed)
                },
                None,
                Captures::default(),
            )?;
            let mut candidates = Vec::new();
            for (sample, count) in sketches {
                if sample.is_empty() {
                    continue;
                }
                let weight = count as f64 / sample.len() as f64;
                candidates.extend(sample.into_iter().map(|k| (k, weight)));
            }
            determine_bounds(candidates, n)
        } else {
            Vec::new()
        };
        Ok(SortedRdd::new(
            self,
            RangePartitioner::new(bounds, order),
            order.is_ascending(),
        ))
    }

    /// For each key, the values of both RDDs.
    fn cogroup<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> CoGroupedRdd<K, V, W> {
        let n = two_sided_partitions(&self, &other, num_partitions.into());
        CoGroupedRdd::new(self, other, n)
    }

    /// Pairs of values with equal keys (inner join), as a hash join on each partition: the
    /// other RDD's values are held in memory and this RDD's records stream through them (spilling
    /// through the cogroup path if the other side does not fit).
    fn join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> Joined<K, V, W> {
        let n = two_sided_partitions(&self, &other, num_partitions.into());
        super::HashJoinRdd::new(self, other, n)
    }

    /// Every pair of this RDD, with the other's matching values or `None`.
    fn left_outer_join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<CoGroupedRdd<K, V, W>, FlatMapValuesOp<LeftJoin, Vec<(V, Option<W>)>>> {
        NarrowRdd::new(
            self.cogroup(other, num_partitions),
            "JoinRdd",
            FlatMapValuesOp::new(LeftJoin),
        )
    }

    /// Every pair of the other RDD, with this one's matching values or `None`.
    fn right_outer_join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<CoGroupedRdd<K, V, W>, FlatMapValuesOp<RightJoin, Vec<(Option<V>, W)>>> {
        NarrowRdd::new(
            self.cogroup(other, num_partitions),
            "JoinRdd",
            FlatMapValuesOp::new(RightJoin),
        )
    }

    /// Every key of either RDD, with the values of each side or `None`.
    fn full_outer_join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<CoGroupedRdd<K, V, W>, FlatMapValuesOp<FullJoin, Vec<(Option<V>, Option<W>)>>>
    {
        NarrowRdd::new(
            self.cogroup(other, num_partitions),
            "JoinRdd",
            FlatMapValuesOp::new(FullJoin),
        )
    }

    /// The number of pairs of each key (an action).
    #[track_caller]
    fn count_by_key(self) -> Result<HashMap<K, u64>> {
        let ones = NarrowRdd::new(self, "MapValuesRdd", MapValuesOp::new(One));
        let n = partitions_or_default(&ones, None);
        let counts = AggregatedRdd::new(ones, HashPartitioner::new(n), ReduceAgg::new(AddU64));
        Ok(counts.collect()?.into_iter().collect())
    }

    /// The pairs as a map (an action; later pairs of a key win).
    #[track_caller]
    fn collect_as_map(self) -> Result<HashMap<K, V>> {
        Ok(self.collect()?.into_iter().collect())
    }

    /// The values of `key` (an action). Reads only the key's partition when the partitioning is
    /// known to be by hash.
    #[track_caller]
    fn lookup(self, key: K) -> Result<Vec<V>> {
        let parts = match self.partitioning() {
            Some(super::Partitioning::Hash(n)) => {
                Some(vec![<HashPartitioner as Partitioner<K>>::partition(
                    &HashPartitioner::new(n),
                    &key,
                )])
            }
            _ => None,
        };
        let out = self.context()?.run_job_inner(
            &self,
            key,
            |key: &K, _ctx, it| {
                it.filter(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .collect::<Vec<V>>()
            },
            parts,
            Captures::default(),
        )?;
        Ok(out.into_iter().flatten().collect())
    }
}

impl<K: Key, V: Data, R: Rdd<Item = (K, V)>> PairRdd<K, V> for R {}
