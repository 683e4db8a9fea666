//! Operations on RDDs of `(key, value)` pairs (Spark's `PairRDDFunctions`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::fns::{assert_no_captures, Call1, Call2, Plain, With};
use super::narrow::{FlatMapValuesOp, MapOp, MapValuesOp, NarrowRdd};
use super::{AggregatedRdd, CoGroupedRdd, Rdd, ShuffledRdd, SortedRdd};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::partitioner::{determine_bounds, reservoir_sample, HashPartitioner, Partitioner, RangePartitioner};
use crate::rdd::actions::Actions;

/// `reduce_by_key`'s aggregator: the combiner is the running reduction.
#[derive(Serialize, Deserialize)]
pub struct ReduceAgg<C, F> {
    cap: Arc<C>,
    f: F,
}
impl<C, F: Copy> Clone for ReduceAgg<C, F> {
    fn clone(&self) -> Self {
        ReduceAgg { cap: self.cap.clone(), f: self.f }
    }
}
impl<K, V: Clone, C: Data, F: Call2<C, V, V, V>> Aggregator<K, V, V> for ReduceAgg<C, F> {
    const MAP_SIDE_COMBINE: bool = true;
    #[inline]
    fn create_combiner(&self, v: V) -> V {
        v
    }
    #[inline]
    fn merge_value(&self, c: &mut V, v: V) {
        // The user function takes both values by value; cloning the accumulator is free for
        // the plain-data values reductions mostly use, and keeps the map panic-safe.
        *c = self.f.call(&self.cap, c.clone(), v);
    }
    #[inline]
    fn merge_combiners(&self, c: &mut V, other: V) {
        *c = self.f.call(&self.cap, c.clone(), other);
    }
}

/// `aggregate_by_key`/`fold_by_key`'s aggregator: a zero value, a per-value step, a merge.
#[derive(Serialize, Deserialize)]
pub struct ZeroAgg<U, S, M> {
    zero: Arc<U>,
    seq: S,
    comb: M,
}
impl<U, S: Copy, M: Copy> Clone for ZeroAgg<U, S, M> {
    fn clone(&self) -> Self {
        ZeroAgg { zero: self.zero.clone(), seq: self.seq, comb: self.comb }
    }
}
impl<K, V, U: Data, S: Call2<(), U, V, U>, M: Call2<(), U, U, U>> Aggregator<K, V, U> for ZeroAgg<U, S, M> {
    const MAP_SIDE_COMBINE: bool = true;
    #[inline]
    fn create_combiner(&self, v: V) -> U {
        self.seq.call(&(), (*self.zero).clone(), v)
    }
    #[inline]
    fn merge_value(&self, c: &mut U, v: V) {
        *c = self.seq.call(&(), c.clone(), v);
    }
    #[inline]
    fn merge_combiners(&self, c: &mut U, other: U) {
        *c = self.comb.call(&(), c.clone(), other);
    }
}

/// `combine_by_key`'s aggregator: the user's three functions.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "F1: Copy + 'static, F2: Copy + 'static, F3: Copy + 'static"))]
pub struct CombineAgg<F1, F2, F3> {
    #[serde(with = "crate::ship::zst")]
    create: F1,
    #[serde(with = "crate::ship::zst")]
    merge_value: F2,
    #[serde(with = "crate::ship::zst")]
    merge_combiners: F3,
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
        (self.create)(v)
    }
    #[inline]
    fn merge_value(&self, c: &mut C, v: V) {
        (self.merge_value)(c, v)
    }
    #[inline]
    fn merge_combiners(&self, c: &mut C, other: C) {
        (self.merge_combiners)(c, other)
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
impl<Cap> Call2<Cap, (), (), ()> for UnitReduce {
    #[inline(always)]
    fn call(&self, _cap: &Cap, _a: (), _b: ()) {}
}

impl<C, F> ReduceAgg<C, F> {
    pub(crate) fn new(cap: C, f: F) -> Self {
        ReduceAgg { cap: Arc::new(cap), f }
    }
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
    flatten_inner((vs, ws)).into_iter().map(|(v, w)| (v, Some(w))).collect()
}

fn flatten_right<V: Clone, W: Clone>(vw: (Vec<V>, Vec<W>)) -> Vec<(Option<V>, W)> {
    let (vs, ws) = vw;
    if vs.is_empty() {
        return ws.into_iter().map(|w| (None, w)).collect();
    }
    flatten_inner((vs, ws)).into_iter().map(|(v, w)| (Some(v), w)).collect()
}

fn flatten_full<V: Clone, W: Clone>(vw: (Vec<V>, Vec<W>)) -> Vec<(Option<V>, Option<W>)> {
    let (vs, ws) = vw;
    match (vs.is_empty(), ws.is_empty()) {
        (true, _) => ws.into_iter().map(|w| (None, Some(w))).collect(),
        (_, true) => vs.into_iter().map(|v| (Some(v), None)).collect(),
        _ => flatten_inner((vs, ws)).into_iter().map(|(v, w)| (Some(v), Some(w))).collect(),
    }
}

macro_rules! fn_object {
    ($(#[$doc:meta])* $name:ident, <$($g:ident),*>, $arg:ty => $out:ty, $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
        pub struct $name;
        impl<Cap, $($g: Clone),*> Call1<Cap, $arg, $out> for $name {
            #[inline(always)]
            fn call(&self, _cap: &Cap, a: $arg) -> $out {
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
impl<Cap> Call2<Cap, u64, u64, u64> for AddU64 {
    #[inline(always)]
    fn call(&self, _cap: &Cap, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Result type of `join`.
pub type Joined<K, V, W> = super::HashJoinRdd<K, V, W>;

/// Number of partitions for a shuffle: the one given, else `ember.default.parallelism` when
/// set, else the parent's (Spark's `defaultPartitioner`).
pub(crate) fn partitions_or_default<R: Rdd>(rdd: &R, n: Option<usize>) -> usize {
    let upstream = rdd.num_partitions();
    n.filter(|n| *n > 0).unwrap_or_else(|| rdd.context().map_or(upstream.max(1), |c| c.default_shuffle_partitions(upstream)))
}

/// Partitions of a two-sided operation: the one given, else the default for the larger input.
fn two_sided_partitions<A: Rdd, B: Rdd>(a: &A, b: &B, n: Option<usize>) -> usize {
    let upstream = a.num_partitions().max(b.num_partitions());
    n.filter(|n| *n > 0).unwrap_or_else(|| a.context().map_or(upstream.max(1), |c| c.default_shuffle_partitions(upstream)))
}

/// Operations on RDDs of pairs. `num_partitions` arguments take a number or `None` for the
/// default.
pub trait PairRdd<K: Key, V: Data>: Rdd<Item = (K, V)> {
    /// Applies `f` to every value, keeping keys and partitioning.
    fn map_values<U: Data, F>(self, f: F) -> NarrowRdd<Self, MapValuesOp<(), Plain<F>, U>>
    where
        F: Fn(V) -> U + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        NarrowRdd::new(self, "MapValuesRdd", MapValuesOp::new((), Plain(f)))
    }

    /// Applies `f(&cap, v)` to every value.
    fn map_values_with<C: Data, U: Data, F>(self, cap: C, f: F) -> NarrowRdd<Self, MapValuesOp<C, With<F>, U>>
    where
        F: Fn(&C, V) -> U + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        NarrowRdd::new(self, "MapValuesRdd", MapValuesOp::new(cap, With(f)))
    }

    /// Replaces every value by the values of `f(v)`, keeping the key.
    fn flat_map_values<J, F>(self, f: F) -> NarrowRdd<Self, FlatMapValuesOp<(), Plain<F>, J>>
    where
        J: IntoIterator + 'static,
        J::Item: Data,
        J::IntoIter: 'static,
        F: Fn(V) -> J + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        NarrowRdd::new(self, "FlatMapValuesRdd", FlatMapValuesOp::new((), Plain(f)))
    }

    /// Replaces every value by the values of `f(&cap, v)`.
    fn flat_map_values_with<C: Data, J, F>(self, cap: C, f: F) -> NarrowRdd<Self, FlatMapValuesOp<C, With<F>, J>>
    where
        J: IntoIterator + 'static,
        J::Item: Data,
        J::IntoIter: 'static,
        F: Fn(&C, V) -> J + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        NarrowRdd::new(self, "FlatMapValuesRdd", FlatMapValuesOp::new(cap, With(f)))
    }

    /// The keys.
    fn keys(self) -> NarrowRdd<Self, MapOp<(), TakeKey, K>> {
        NarrowRdd::new(self, "MapRdd", MapOp::new((), TakeKey))
    }

    /// The values.
    fn values(self) -> NarrowRdd<Self, MapOp<(), TakeValue, V>> {
        NarrowRdd::new(self, "MapRdd", MapOp::new((), TakeValue))
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
        F1: Fn(V) -> C + Copy + Send + Sync + 'static,
        F2: Fn(&mut C, V) + Copy + Send + Sync + 'static,
        F3: Fn(&mut C, C) + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&create_combiner);
        assert_no_captures(&merge_value);
        assert_no_captures(&merge_combiners);
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), CombineAgg { create: create_combiner, merge_value, merge_combiners })
    }

    /// Merges the values of each key with `f`, combining inside map tasks first.
    fn reduce_by_key<F>(self, f: F, num_partitions: impl Into<Option<usize>>) -> AggregatedRdd<K, V, V, ReduceAgg<(), Plain<F>>>
    where
        F: Fn(V, V) -> V + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), ReduceAgg { cap: Arc::new(()), f: Plain(f) })
    }

    /// Merges the values of each key with `f(&cap, a, b)`.
    fn reduce_by_key_with<C: Data, F>(
        self,
        cap: C,
        f: F,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, V, ReduceAgg<C, With<F>>>
    where
        F: Fn(&C, V, V) -> V + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), ReduceAgg { cap: Arc::new(cap), f: With(f) })
    }

    /// Folds the values of each key, starting from `zero` in every partition.
    fn fold_by_key<F>(self, zero: V, f: F, num_partitions: impl Into<Option<usize>>) -> AggregatedRdd<K, V, V, ZeroAgg<V, Plain<F>, Plain<F>>>
    where
        F: Fn(V, V) -> V + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&f);
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), ZeroAgg { zero: Arc::new(zero), seq: Plain(f), comb: Plain(f) })
    }

    /// Aggregates the values of each key into a `U`: `seq` folds a value in, `comb` merges two
    /// partial results; `zero` starts every partial result.
    fn aggregate_by_key<U: Data, S, M>(
        self,
        zero: U,
        seq: S,
        comb: M,
        num_partitions: impl Into<Option<usize>>,
    ) -> AggregatedRdd<K, V, U, ZeroAgg<U, Plain<S>, Plain<M>>>
    where
        S: Fn(U, V) -> U + Copy + Send + Sync + 'static,
        M: Fn(U, U) -> U + Copy + Send + Sync + 'static,
    {
        assert_no_captures(&seq);
        assert_no_captures(&comb);
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), ZeroAgg { zero: Arc::new(zero), seq: Plain(seq), comb: Plain(comb) })
    }

    /// All values of each key, in one vector.
    fn group_by_key(self, num_partitions: impl Into<Option<usize>>) -> AggregatedRdd<K, V, Vec<V>, GroupAgg<V>> {
        let n = partitions_or_default(&self, num_partitions.into());
        AggregatedRdd::new(self, HashPartitioner::new(n), GroupAgg(PhantomData))
    }

    /// Sorts by key into range partitions (sampling the keys first, as Spark's
    /// `RangePartitioner` does: this runs a small job).
    #[track_caller]
    fn sort_by_key(self, ascending: bool, num_partitions: impl Into<Option<usize>>) -> Result<SortedRdd<K, V>>
    where
        K: Ord,
    {
        let n = num_partitions.into().filter(|n| *n > 0).unwrap_or(self.num_partitions()).max(1);
        let bounds = if n > 1 {
            // Spark's sketch: about 20 keys per output partition, 3x oversampled per input partition.
            let sample_size = (20 * n).min(1_000_000);
            let per_partition = (3 * sample_size).div_ceil(self.num_partitions().max(1));
            let sketches = self.context()?.run_job_with(
                &self,
                per_partition,
                |k: &usize, ctx, it| {
                    let seed = 0x5eed_u64 ^ ctx.partition_id as u64;
                    reservoir_sample(it.map(|(k, _)| k), *k, seed)
                },
                None,
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
        Ok(SortedRdd::new(self, RangePartitioner::new(bounds, ascending), ascending))
    }

    /// For each key, the values of both RDDs.
    fn cogroup<W: Data, B: Rdd<Item = (K, W)>>(self, other: B, num_partitions: impl Into<Option<usize>>) -> CoGroupedRdd<K, V, W> {
        let n = two_sided_partitions(&self, &other, num_partitions.into());
        CoGroupedRdd::new(self, other, n)
    }

    /// Pairs of values with equal keys (inner join), as a hash join on each partition: the
    /// other RDD's values are held in memory and this RDD's records stream through them (spilling
    /// through the cogroup path if the other side does not fit).
    fn join<W: Data, B: Rdd<Item = (K, W)>>(self, other: B, num_partitions: impl Into<Option<usize>>) -> Joined<K, V, W> {
        let n = two_sided_partitions(&self, &other, num_partitions.into());
        super::HashJoinRdd::new(self, other, n)
    }

    /// Every pair of this RDD, with the other's matching values or `None`.
    fn left_outer_join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<CoGroupedRdd<K, V, W>, FlatMapValuesOp<(), LeftJoin, Vec<(V, Option<W>)>>> {
        NarrowRdd::new(self.cogroup(other, num_partitions), "JoinRdd", FlatMapValuesOp::new((), LeftJoin))
    }

    /// Every pair of the other RDD, with this one's matching values or `None`.
    fn right_outer_join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<CoGroupedRdd<K, V, W>, FlatMapValuesOp<(), RightJoin, Vec<(Option<V>, W)>>> {
        NarrowRdd::new(self.cogroup(other, num_partitions), "JoinRdd", FlatMapValuesOp::new((), RightJoin))
    }

    /// Every key of either RDD, with the values of each side or `None`.
    fn full_outer_join<W: Data, B: Rdd<Item = (K, W)>>(
        self,
        other: B,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<CoGroupedRdd<K, V, W>, FlatMapValuesOp<(), FullJoin, Vec<(Option<V>, Option<W>)>>> {
        NarrowRdd::new(self.cogroup(other, num_partitions), "JoinRdd", FlatMapValuesOp::new((), FullJoin))
    }

    /// The number of pairs of each key (an action).
    #[track_caller]
    fn count_by_key(self) -> Result<HashMap<K, u64>> {
        let ones = NarrowRdd::new(self, "MapValuesRdd", MapValuesOp::new((), One));
        let n = partitions_or_default(&ones, None);
        let counts = AggregatedRdd::new(ones, HashPartitioner::new(n), ReduceAgg { cap: Arc::new(()), f: AddU64 });
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
            Some(super::Partitioning::Hash(n)) => Some(vec![<HashPartitioner as Partitioner<K>>::partition(&HashPartitioner::new(n), &key)]),
            _ => None,
        };
        let out = self.context()?.run_job_with(
            &self,
            key,
            |key: &K, _ctx, it| it.filter(|(k, _)| k == key).map(|(_, v)| v).collect::<Vec<V>>(),
            parts,
        )?;
        Ok(out.into_iter().flatten().collect())
    }
}

impl<K: Key, V: Data, R: Rdd<Item = (K, V)>> PairRdd<K, V> for R {}
