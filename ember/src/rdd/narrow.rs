//! Narrow transformations: each output partition is computed from the same-numbered parent
//! partition, in the same task, by an iterator adapter.

use std::marker::PhantomData;
use std::sync::Arc;

use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::fns::{assert_shippable, Call1, PartFn, PartIndexFn, PartitionFn, Shippable, UserFn};
use super::{Dependency, FlatMapRefRdd, LendFn, PartIter, Partitioning, Rdd, RddMeta};
use crate::data::Data;
use crate::func::Captures;
use crate::task::TaskContext;

/// A per-partition iterator transformation applied by [`NarrowRdd`].
pub trait NarrowOp<T>:
    Clone + Send + Sync + Serialize + serde::de::DeserializeOwned + 'static
{
    /// Output element type.
    type Out: Data;
    /// The adapted iterator.
    type Iter<I: Iterator<Item = T> + 'static>: Iterator<Item = Self::Out> + 'static;
    /// Whether keys stay where they were (so a hash-partitioned parent stays hash-partitioned).
    const KEEPS_PARTITIONING: bool = false;
    /// Adapts the parent's iterator for partition `partition`.
    fn apply<I: Iterator<Item = T> + 'static>(&self, partition: usize, input: I) -> Self::Iter<I>;
}

/// An RDD computed from its parent by a [`NarrowOp`] (Spark's `MapPartitionsRDD`).
#[derive(Clone, Serialize, Deserialize)]
pub struct NarrowRdd<P, O> {
    meta: RddMeta,
    parent: P,
    op: O,
}

impl<P: Rdd, O: NarrowOp<P::Item>> NarrowRdd<P, O> {
    pub(crate) fn new(parent: P, name: &'static str, op: O) -> Self {
        NarrowRdd {
            meta: RddMeta::derived(parent.meta(), name),
            parent,
            op,
        }
    }
}

impl<P: Rdd, O: NarrowOp<P::Item>> Rdd for NarrowRdd<P, O> {
    type Item = O::Out;
    type Iter = O::Iter<PartIter<P>>;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.parent.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow {
            rdd: self.parent.as_base(),
            one_to_one: true,
        }]
    }
    #[inline]
    fn compute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        self.op
            .apply(partition, self.parent.iterator(partition, ctx))
    }
    fn partitioning(&self) -> Option<Partitioning> {
        if O::KEEPS_PARTITIONING {
            self.parent.partitioning()
        } else {
            None
        }
    }
}

/// `map`: one output per input.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "F: Serialize", deserialize = "F: Deserialize<'de>"))]
pub struct MapOp<F, U> {
    f: F,
    _out: PhantomData<fn() -> U>,
}
impl<F: Clone, U> Clone for MapOp<F, U> {
    fn clone(&self) -> Self {
        MapOp {
            f: self.f.clone(),
            _out: PhantomData,
        }
    }
}
impl<F, U> MapOp<F, U> {
    pub(crate) fn new(f: F) -> Self {
        MapOp {
            f,
            _out: PhantomData,
        }
    }
}

/// Iterator of [`MapOp`].
pub struct MapIter<I, F, U> {
    it: I,
    f: F,
    _out: PhantomData<fn() -> U>,
}
impl<I: Iterator, F: Call1<I::Item, U>, U> Iterator for MapIter<I, F, U> {
    type Item = U;
    #[inline]
    fn next(&mut self) -> Option<U> {
        let x = self.it.next()?;
        Some(self.f.call(x))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.it.size_hint()
    }
}
impl<T: 'static, F: Call1<T, U>, U: Data> NarrowOp<T> for MapOp<F, U> {
    type Out = U;
    type Iter<I: Iterator<Item = T> + 'static> = MapIter<I, F, U>;
    fn apply<I: Iterator<Item = T> + 'static>(&self, _p: usize, it: I) -> Self::Iter<I> {
        MapIter {
            it,
            f: self.f.clone(),
            _out: PhantomData,
        }
    }
}

/// `map_values`: like map on the value of a pair, keeping the partitioning.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "F: Serialize", deserialize = "F: Deserialize<'de>"))]
pub struct MapValuesOp<F, U>(MapOp<F, U>);
impl<F, U> MapValuesOp<F, U> {
    pub(crate) fn new(f: F) -> Self {
        MapValuesOp(MapOp::new(f))
    }
}
impl<F: Clone, U> Clone for MapValuesOp<F, U> {
    fn clone(&self) -> Self {
        MapValuesOp(self.0.clone())
    }
}
/// Iterator of [`MapValuesOp`].
pub struct MapValuesIter<I, F, U>(MapIter<I, F, U>);
impl<K, V, I: Iterator<Item = (K, V)>, F: Call1<V, U>, U> Iterator for MapValuesIter<I, F, U> {
    type Item = (K, U);
    #[inline]
    fn next(&mut self) -> Option<(K, U)> {
        let m = &mut self.0;
        let (k, v) = m.it.next()?;
        Some((k, m.f.call(v)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.it.size_hint()
    }
}
impl<K: Data, V: 'static, F: Call1<V, U>, U: Data> NarrowOp<(K, V)> for MapValuesOp<F, U> {
    type Out = (K, U);
    type Iter<I: Iterator<Item = (K, V)> + 'static> = MapValuesIter<I, F, U>;
    const KEEPS_PARTITIONING: bool = true;
    fn apply<I: Iterator<Item = (K, V)> + 'static>(&self, _p: usize, it: I) -> Self::Iter<I> {
        MapValuesIter(MapIter {
            it,
            f: self.0.f.clone(),
            _out: PhantomData,
        })
    }
}

/// `filter`: keeps the elements the predicate accepts.
#[derive(Clone, Serialize, Deserialize)]
pub struct FilterOp<F> {
    f: F,
}
/// Iterator of [`FilterOp`].
pub struct FilterIter<I, F> {
    it: I,
    f: F,
}
impl<I: Iterator, F: for<'a> Call1<&'a I::Item, bool>> Iterator for FilterIter<I, F> {
    type Item = I::Item;
    #[inline]
    fn next(&mut self) -> Option<I::Item> {
        loop {
            let x = self.it.next()?;
            if self.f.call(&x) {
                return Some(x);
            }
        }
    }
}
impl<T: Data, F: for<'a> Call1<&'a T, bool>> NarrowOp<T> for FilterOp<F> {
    type Out = T;
    type Iter<I: Iterator<Item = T> + 'static> = FilterIter<I, F>;
    const KEEPS_PARTITIONING: bool = true;
    fn apply<I: Iterator<Item = T> + 'static>(&self, _p: usize, it: I) -> Self::Iter<I> {
        FilterIter {
            it,
            f: self.f.clone(),
        }
    }
}

/// `flat_map`: any number of outputs per input.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "F: Serialize", deserialize = "F: Deserialize<'de>"))]
pub struct FlatMapOp<F, J> {
    f: F,
    _out: PhantomData<fn() -> J>,
}
impl<F: Clone, J> Clone for FlatMapOp<F, J> {
    fn clone(&self) -> Self {
        FlatMapOp {
            f: self.f.clone(),
            _out: PhantomData,
        }
    }
}
/// Iterator of [`FlatMapOp`].
pub struct FlatMapIter<I, F, J: IntoIterator> {
    it: I,
    f: F,
    cur: Option<J::IntoIter>,
}
impl<I: Iterator, F: Call1<I::Item, J>, J: IntoIterator> Iterator for FlatMapIter<I, F, J> {
    type Item = J::Item;
    #[inline]
    fn next(&mut self) -> Option<J::Item> {
        loop {
            if let Some(cur) = &mut self.cur {
                if let Some(x) = cur.next() {
                    return Some(x);
                }
            }
            let x = self.it.next()?;
            self.cur = Some(self.f.call(x).into_iter());
        }
    }
}
impl<T: 'static, F: Call1<T, J>, J: IntoIterator + 'static> NarrowOp<T> for FlatMapOp<F, J>
where
    J::Item: Data,
    J::IntoIter: 'static,
{
    type Out = J::Item;
    type Iter<I: Iterator<Item = T> + 'static> = FlatMapIter<I, F, J>;
    fn apply<I: Iterator<Item = T> + 'static>(&self, _p: usize, it: I) -> Self::Iter<I> {
        FlatMapIter {
            it,
            f: self.f.clone(),
            cur: None,
        }
    }
}

/// `flat_map_values`: any number of values per pair, keeping the key and the partitioning.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "F: Serialize", deserialize = "F: Deserialize<'de>"))]
pub struct FlatMapValuesOp<F, J>(FlatMapOp<F, J>);
impl<F, J> FlatMapValuesOp<F, J> {
    pub(crate) fn new(f: F) -> Self {
        FlatMapValuesOp(FlatMapOp {
            f,
            _out: PhantomData,
        })
    }
}
impl<F: Clone, J> Clone for FlatMapValuesOp<F, J> {
    fn clone(&self) -> Self {
        FlatMapValuesOp(self.0.clone())
    }
}
/// Iterator of [`FlatMapValuesOp`].
pub struct FlatMapValuesIter<I, K, F, J: IntoIterator> {
    it: I,
    f: F,
    cur: Option<(K, J::IntoIter)>,
}
impl<K: Clone, V, I: Iterator<Item = (K, V)>, F: Call1<V, J>, J: IntoIterator> Iterator
    for FlatMapValuesIter<I, K, F, J>
{
    type Item = (K, J::Item);
    #[inline]
    fn next(&mut self) -> Option<(K, J::Item)> {
        loop {
            if let Some((k, cur)) = &mut self.cur {
                if let Some(x) = cur.next() {
                    return Some((k.clone(), x));
                }
            }
            let (k, v) = self.it.next()?;
            self.cur = Some((k, self.f.call(v).into_iter()));
        }
    }
}
impl<K: Data, V: 'static, F: Call1<V, J>, J: IntoIterator + 'static> NarrowOp<(K, V)>
    for FlatMapValuesOp<F, J>
where
    J::Item: Data,
    J::IntoIter: 'static,
{
    type Out = (K, J::Item);
    type Iter<I: Iterator<Item = (K, V)> + 'static> = FlatMapValuesIter<I, K, F, J>;
    const KEEPS_PARTITIONING: bool = true;
    fn apply<I: Iterator<Item = (K, V)> + 'static>(&self, _p: usize, it: I) -> Self::Iter<I> {
        FlatMapValuesIter {
            it,
            f: self.0.f.clone(),
            cur: None,
        }
    }
}

/// `glom`: the whole partition as one vector.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct GlomOp;
impl<T: Data> NarrowOp<T> for GlomOp {
    type Out = Vec<T>;
    type Iter<I: Iterator<Item = T> + 'static> = std::iter::Once<Vec<T>>;
    fn apply<I: Iterator<Item = T> + 'static>(&self, _p: usize, it: I) -> Self::Iter<I> {
        std::iter::once(it.collect())
    }
}

/// `sample`: Bernoulli sampling, or Poisson sampling with replacement (as Spark's samplers).
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct SampleOp {
    replacement: Sampling,
    fraction: f64,
    seed: u64,
}
/// How [`Transformations::sample`] draws: Spark's `withReplacement` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sampling {
    /// Each element kept at most once, with probability `fraction` (Bernoulli sampling).
    WithoutReplacement,
    /// Each element repeated a Poisson(`fraction`) number of times.
    WithReplacement,
}

/// Iterator of [`SampleOp`].
pub struct SampleIter<I: Iterator> {
    it: I,
    op: SampleOp,
    rng: SmallRng,
    repeat: Option<(I::Item, u32)>,
}
impl<I: Iterator> Iterator for SampleIter<I>
where
    I::Item: Clone,
{
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        loop {
            if let Some((x, n)) = &mut self.repeat {
                if *n > 0 {
                    *n -= 1;
                    return Some(x.clone());
                }
                self.repeat = None;
            }
            let x = self.it.next()?;
            if self.op.replacement == Sampling::WithReplacement {
                let k = poisson(&mut self.rng, self.op.fraction);
                if k > 0 {
                    self.repeat = Some((x, k));
                }
            } else if self.rng.random::<f64>() < self.op.fraction {
                return Some(x);
            }
        }
    }
}
/// Knuth's Poisson sampler; the mean is a sampling fraction, so the loop is short.
fn poisson(rng: &mut SmallRng, mean: f64) -> u32 {
    let l = (-mean).exp();
    let mut k = 0u32;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}
impl<T: Data> NarrowOp<T> for SampleOp {
    type Out = T;
    type Iter<I: Iterator<Item = T> + 'static> = SampleIter<I>;
    const KEEPS_PARTITIONING: bool = true;
    fn apply<I: Iterator<Item = T> + 'static>(&self, p: usize, it: I) -> Self::Iter<I> {
        let seed = self.seed ^ (p as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SampleIter {
            it,
            op: *self,
            rng: SmallRng::seed_from_u64(seed),
            repeat: None,
        }
    }
}

/// `zip_with_index`: pairs each element with its position in the whole RDD.
#[derive(Clone, Serialize, Deserialize)]
pub struct ZipWithIndexOp {
    starts: Arc<Vec<u64>>,
}
/// Iterator of [`ZipWithIndexOp`].
pub struct ZipWithIndexIter<I> {
    it: I,
    next: u64,
}
impl<I: Iterator> Iterator for ZipWithIndexIter<I> {
    type Item = (I::Item, u64);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let x = self.it.next()?;
        let i = self.next;
        self.next += 1;
        Some((x, i))
    }
}
impl<T: Data> NarrowOp<T> for ZipWithIndexOp {
    type Out = (T, u64);
    type Iter<I: Iterator<Item = T> + 'static> = ZipWithIndexIter<I>;
    fn apply<I: Iterator<Item = T> + 'static>(&self, p: usize, it: I) -> Self::Iter<I> {
        ZipWithIndexIter {
            it,
            next: self.starts.get(p).copied().unwrap_or(0),
        }
    }
}

/// `map_partitions` and its forms: a function from the partition's iterator to a new iterator.
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "P: Serialize, F: Serialize",
    deserialize = "P: Deserialize<'de>, F: Deserialize<'de>"
))]
pub struct MapPartitionsRdd<P, F, J> {
    meta: RddMeta,
    parent: P,
    f: F,
    keeps_partitioning: bool,
    /// Spark's `isOrderSensitive`: only the driver's scheduler asks.
    #[serde(skip)]
    order_sensitive: bool,
    /// Made by `rdd.barrier().map_partitions(…)` (Spark's `isFromBarrier`): only the driver's
    /// scheduler asks.
    #[serde(skip)]
    from_barrier: bool,
    _out: PhantomData<fn() -> J>,
}
impl<P: Clone, F: Clone, J> Clone for MapPartitionsRdd<P, F, J> {
    fn clone(&self) -> Self {
        MapPartitionsRdd {
            meta: self.meta.clone(),
            parent: self.parent.clone(),
            f: self.f.clone(),
            keeps_partitioning: self.keeps_partitioning,
            order_sensitive: self.order_sensitive,
            from_barrier: self.from_barrier,
            _out: PhantomData,
        }
    }
}
impl<P: Rdd, F: PartitionFn<PartIter<P>, J>, J: Iterator + 'static> Rdd
    for MapPartitionsRdd<P, F, J>
where
    J::Item: Data,
{
    type Item = J::Item;
    type Iter = J;
    fn meta(&self) -> &RddMeta {
        &self.meta
    }
    fn num_partitions(&self) -> usize {
        self.parent.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow {
            rdd: self.parent.as_base(),
            one_to_one: true,
        }]
    }
    fn compute(&self, partition: usize, ctx: &Arc<TaskContext>) -> J {
        self.f.call(partition, self.parent.iterator(partition, ctx))
    }
    fn partitioning(&self) -> Option<Partitioning> {
        if self.keeps_partitioning {
            self.parent.partitioning()
        } else {
            None
        }
    }
    fn is_order_sensitive(&self) -> bool {
        self.order_sensitive
    }
    fn is_from_barrier(&self) -> bool {
        self.from_barrier
    }
}

fn map_partitions_rdd<P: Rdd, F, J>(
    parent: P,
    f: F,
    keeps_partitioning: bool,
) -> MapPartitionsRdd<P, F, J> {
    MapPartitionsRdd {
        meta: RddMeta::derived(parent.meta(), "MapPartitionsRdd"),
        parent,
        f,
        keeps_partitioning,
        order_sensitive: false,
        from_barrier: false,
        _out: PhantomData,
    }
}

/// `rdd.barrier().map_partitions(f)`: a `MapPartitionsRdd` whose stage is a barrier stage.
pub(crate) fn barrier_map_partitions_rdd<P: Rdd, F, J>(
    parent: P,
    f: F,
) -> MapPartitionsRdd<P, F, J> {
    MapPartitionsRdd {
        from_barrier: true,
        ..map_partitions_rdd(parent, f, false)
    }
}

/// Narrow transformations of every RDD.
///
/// Functions given to them must capture nothing, or be written with [`func!`](crate::func):
/// see [the rule](crate::rdd::fns).
pub trait Transformations: Rdd {
    /// Applies `f` to every element.
    fn map<U: Data, F>(self, f: F) -> NarrowRdd<Self, MapOp<UserFn<F>, U>>
    where
        F: Fn(Self::Item) -> U + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        NarrowRdd::new(self, "MapRdd", MapOp::new(UserFn::new(f, &captures)))
    }

    /// Keeps the elements for which `f` is true.
    fn filter<F>(self, f: F) -> NarrowRdd<Self, FilterOp<UserFn<F>>>
    where
        F: Fn(&Self::Item) -> bool + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        NarrowRdd::new(
            self,
            "FilterRdd",
            FilterOp {
                f: UserFn::new(f, &captures),
            },
        )
    }

    /// Replaces every element by the elements of `f(x)`.
    fn flat_map<J, F>(self, f: F) -> NarrowRdd<Self, FlatMapOp<UserFn<F>, J>>
    where
        J: IntoIterator + 'static,
        J::Item: Data,
        J::IntoIter: 'static,
        F: Fn(Self::Item) -> J + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        NarrowRdd::new(
            self,
            "FlatMapRdd",
            FlatMapOp {
                f: UserFn::new(f, &captures),
                _out: PhantomData,
            },
        )
    }

    /// Replaces every element by the items `f` lends from it: `f` gets the
    /// element by reference, as `&B` (a `String` line as `&str`), and returns items borrowed
    /// from it, `&str` or `(&str, V)`; the RDD's elements are their owned forms (`String`,
    /// `(String, V)`).
    ///
    /// The same result as `flat_map(|x| f(&x).map(to_owned).collect())`, but when the pairs go
    /// straight into a combining shuffle (`reduce_by_key`, …) a key is copied only when it is
    /// new to the map task's table, not once per record. `f` is a `fn` item or a method such as
    /// `str::split_whitespace`: Rust closures cannot return borrows of their arguments.
    fn flat_map_ref<B, U, F>(self, f: F) -> FlatMapRefRdd<Self, F, B, U>
    where
        Self::Item: std::borrow::Borrow<B>,
        B: ?Sized + 'static,
        U: Data,
        F: for<'a> LendFn<'a, B, U> + Shippable,
    {
        assert_shippable!(F);
        FlatMapRefRdd::new(self, f)
    }

    /// Pairs every element with the key `f(&x)`.
    fn key_by<K: Data, F>(self, f: F) -> NarrowRdd<Self, MapOp<KeyBy<F>, (K, Self::Item)>>
    where
        F: Fn(&Self::Item) -> K + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        NarrowRdd::new(
            self,
            "KeyByRdd",
            MapOp::new(KeyBy(UserFn::new(f, &captures))),
        )
    }

    /// Applies `f` to each partition's iterator.
    fn map_partitions<J, F>(self, f: F) -> MapPartitionsRdd<Self, PartFn<F>, J>
    where
        J: Iterator + 'static,
        J::Item: Data,
        F: Fn(PartIter<Self>) -> J + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        map_partitions_rdd(self, PartFn(UserFn::new(f, &captures)), false)
    }

    /// Applies `f(index, iter)` to each partition.
    fn map_partitions_with_index<J, F>(self, f: F) -> MapPartitionsRdd<Self, PartIndexFn<F>, J>
    where
        J: Iterator + 'static,
        J::Item: Data,
        F: Fn(usize, PartIter<Self>) -> J + Shippable,
    {
        assert_shippable!(F);
        let captures = Captures::take();
        map_partitions_rdd(self, PartIndexFn(UserFn::new(f, &captures)), false)
    }

    /// Marks the current stage as a barrier stage (Spark's `RDD.barrier()`): see
    /// [`RddBarrier`](crate::rdd::barrier::RddBarrier).
    fn barrier(self) -> crate::rdd::barrier::RddBarrier<Self> {
        crate::rdd::barrier::RddBarrier::new(self)
    }

    /// Each partition as one vector.
    fn glom(self) -> NarrowRdd<Self, GlomOp> {
        NarrowRdd::new(self, "GlomRdd", GlomOp)
    }

    /// A random sample: each element kept with probability `fraction`, or, with replacement,
    /// repeated a Poisson(`fraction`) number of times. Deterministic for a given `seed`. A
    /// negative (or NaN) fraction, or one above 1 without replacement, is refused when a job
    /// runs ([`crate::EmberError::InvalidArgument`], Spark's messages).
    fn sample(self, replacement: Sampling, fraction: f64, seed: u64) -> NarrowRdd<Self, SampleOp> {
        let refused = if fraction.is_nan() || fraction < 0.0 {
            // Spark's RDD.sample `require` (NaN fails it too).
            Some(format!("Fraction must be nonnegative, but got {fraction}"))
        } else if replacement == Sampling::WithoutReplacement && fraction > 1.0 {
            // Spark's BernoulliSampler `require`.
            Some(format!(
                "Sampling fraction ({fraction}) must be on interval [0, 1]"
            ))
        } else if !fraction.is_finite() {
            Some(format!("Fraction must be finite, but got {fraction}"))
        } else {
            None
        };
        let out = NarrowRdd::new(
            self,
            "SampleRdd",
            SampleOp {
                replacement,
                fraction: if refused.is_some() { 0.0 } else { fraction },
                seed,
            },
        );
        if let Some(message) = refused {
            out.meta().refuse_argument("sample(fraction)", message);
        }
        out
    }

    /// Pairs every element with its index in the RDD (partition by partition). Like Spark, runs
    /// a job to count the elements of every partition but the last.
    #[track_caller]
    fn zip_with_index(self) -> crate::Result<NarrowRdd<Self, ZipWithIndexOp>> {
        let n = self.num_partitions();
        let mut starts = vec![0u64; n];
        if n > 1 {
            let counts = self.context()?.run_job(
                &self,
                |_ctx, it| it.count() as u64,
                Some((0..n - 1).collect()),
            )?;
            for i in 1..n {
                starts[i] = starts[i - 1] + counts[i - 1];
            }
        }
        Ok(NarrowRdd::new(
            self,
            "ZipWithIndexRdd",
            ZipWithIndexOp {
                starts: Arc::new(starts),
            },
        ))
    }
    /// The elements of both RDDs (duplicates kept).
    fn union<O: Rdd<Item = Self::Item>>(self, other: O) -> super::UnionRdd<Self, O> {
        super::UnionRdd::new(self, other)
    }

    /// Fewer partitions, without a shuffle: neighbouring partitions are read by one task.
    fn coalesce(self, num_partitions: usize) -> super::CoalescedRdd<Self> {
        super::CoalescedRdd::new(self, num_partitions)
    }

    /// Exactly `num_partitions` partitions of about equal size, through a shuffle.
    #[allow(clippy::type_complexity)]
    fn repartition(
        self,
        num_partitions: usize,
    ) -> NarrowRdd<super::ShuffledRdd<u64, Self::Item>, MapOp<super::TakeValue, Self::Item>> {
        use super::PairRdd;
        let mut keyed = self.map_partitions_with_index(|index, it| {
            // Like Spark, start each partition at a different target so small partitions spread.
            let start = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            it.enumerate().map(move |(i, x)| (start + i as u64, x))
        });
        // Round-robin by position: over an unordered input (another shuffle's output) a
        // recomputed partition sends records elsewhere, so retries must rerun it all
        // (Spark's SPARK-23207).
        keyed.order_sensitive = true;
        let out = keyed
            .partition_by(crate::partitioner::HashPartitioner::new(
                num_partitions.max(1),
            ))
            .values();
        out.meta()
            .refuse_zero_partitions("repartition(num_partitions)", num_partitions);
        out
    }

    /// The distinct elements.
    #[allow(clippy::type_complexity)]
    fn distinct(
        self,
        num_partitions: impl Into<Option<usize>>,
    ) -> NarrowRdd<
        super::AggregatedRdd<Self::Item, (), (), super::ReduceAgg<super::pair::UnitReduce>>,
        MapOp<super::TakeKey, Self::Item>,
    >
    where
        Self::Item: crate::data::Key,
    {
        use super::PairRdd;
        let pairs = NarrowRdd::new(self, "MapRdd", MapOp::new(Unit));
        let n = super::pair::partitions_or_default(&pairs, num_partitions.into());
        super::AggregatedRdd::new(
            pairs,
            crate::partitioner::HashPartitioner::new(n),
            super::ReduceAgg::new(super::pair::UnitReduce),
        )
        .keys()
    }

    /// Sorts the elements by the key `f(&x)`, through a range-partitioned shuffle.
    #[allow(clippy::type_complexity)]
    #[track_caller]
    fn sort_by<K, F>(
        self,
        f: F,
        order: crate::partitioner::SortOrder,
        num_partitions: impl Into<Option<usize>>,
    ) -> crate::Result<
        NarrowRdd<super::SortedRdd<K, Self::Item>, MapOp<super::TakeValue, Self::Item>>,
    >
    where
        K: crate::data::Key + Ord,
        F: Fn(&Self::Item) -> K + Shippable,
    {
        assert_shippable!(F);
        use super::PairRdd;
        Ok(self.key_by(f).sort_by_key(order, num_partitions)?.values())
    }
}

/// `x -> (x, ())`, for `distinct`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Unit;
impl<T> Call1<T, (T, ())> for Unit {
    #[inline(always)]
    fn call(&self, x: T) -> (T, ()) {
        (x, ())
    }
}

impl<R: Rdd> Transformations for R {}

/// `key_by`'s function: `x -> (f(&x), x)`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct KeyBy<F>(UserFn<F>);
impl<F: Copy> Clone for KeyBy<F> {
    fn clone(&self) -> Self {
        KeyBy(self.0.clone())
    }
}

impl<T, K, F: Fn(&T) -> K + Copy + Send + Sync + 'static> Call1<T, (K, T)> for KeyBy<F> {
    #[inline(always)]
    fn call(&self, x: T) -> (K, T) {
        (self.0.enter(|f| f(&x)), x)
    }
}
