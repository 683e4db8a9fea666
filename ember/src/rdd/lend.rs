//! `flat_map_ref`: a `flat_map` whose function lends its outputs, borrowed from the input
//! element, instead of allocating each one.
//!
//! A word count written with `flat_map` allocates a `String` per word only for the map-side
//! combine to find that the word is already in its table and free the copy again. With
//! `flat_map_ref` the function gets each element by reference (a line as `&str`) and returns
//! items borrowed from it (`&str` words, or `(&str, V)` pairs). Where the records go straight into
//! a shuffle that combines by key (`reduce_by_key`, `aggregate_by_key`, `combine_by_key`, …), the
//! borrowed key is looked up as it is and copied only when it is new to the map task. Every
//! other consumer sees the owned elements (`String`, `(String, V)`), exactly as if `flat_map` had
//! produced them.
//!
//! Rust closures cannot return values that borrow from their arguments, so the function is a
//! named `fn` (or a method such as `str::split_whitespace`):
//!
//! ```
//! use ember::prelude::*;
//!
//! /// A line's words, each with a count of one.
//! fn words(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
//!     line.split_whitespace().map(|w| (w, 1))
//! }
//!
//! let ctx = Context::local("doc").unwrap();
//! let lines = ctx.parallelize(vec!["a b".to_string(), "b c".into()], 2);
//! let counts = lines
//!     .clone()
//!     .flat_map_ref(words)
//!     .reduce_by_key(|a, b| a + b, 2)
//!     .collect_as_map()
//!     .unwrap();
//! assert_eq!(counts["b"], 2);
//! let all: Vec<String> = lines.flat_map_ref(str::split_whitespace).collect().unwrap();
//! assert_eq!(all, ["a", "b", "b", "c"]);
//! ```

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Dependency, PartIter, Partitioning, Rdd, RddMeta};
use crate::data::Data;
use crate::error::{EmberError, Result};
pub use crate::shuffle::PairSink;
use crate::task::TaskContext;
use crate::util::{cast, is_string};

/// An item a [`flat_map_ref`](super::Transformations::flat_map_ref) function lends: a borrowed
/// view of an RDD element. Implemented for `&str` (standing for a `String`) and `(&str, V)`
/// (standing for a `(String, V)` pair).
pub trait Lent: Sized {
    /// The element this item stands for.
    type Owned: Data;

    /// The owned element.
    fn into_owned(self) -> Self::Owned;

    /// Hands the item to a shuffle writer as a `(K, V)` pair (`Self::Owned` is `(K, V)`),
    /// keeping a borrowed key borrowed. Engine hook; the default passes the owned pair.
    #[doc(hidden)]
    fn feed_pair<K: Data, V: Data, S: PairSink<K, V>>(self, sink: &mut S) -> Result<()> {
        let (k, v) = cast::<Self::Owned, (K, V)>(self.into_owned()).map_err(|_| type_mismatch())?;
        sink.pair(k, v)
    }
}

impl Lent for &str {
    type Owned = String;
    #[inline]
    fn into_owned(self) -> String {
        self.to_owned()
    }
}

impl<V: Data> Lent for (&str, V) {
    type Owned = (String, V);
    #[inline]
    fn into_owned(self) -> (String, V) {
        (self.0.to_owned(), self.1)
    }

    #[inline]
    fn feed_pair<K: Data, W: Data, S: PairSink<K, W>>(self, sink: &mut S) -> Result<()> {
        // `(String, V)` is `(K, W)`, so both checks hold; they only tell the compiler so.
        match cast::<V, W>(self.1) {
            Ok(v) if is_string::<K>() => sink.str_pair(self.0, v),
            _ => Err(type_mismatch()),
        }
    }
}

fn type_mismatch() -> EmberError {
    EmberError::Internal("lent pair fed to a sink of another type".into())
}

/// A function that lends items borrowed from its argument: `fn(&'a B) -> impl IntoIterator<Item
/// = L>` where every `L` is a [`Lent`] standing for a `U`. Implemented for every such function;
/// it only names the types of the borrowing result.
pub trait LendFn<'a, B: ?Sized + 'a, U>: Fn(&'a B) -> <Self as LendFn<'a, B, U>>::Out {
    /// What the function returns.
    type Out: IntoIterator<Item = Self::Item>;
    /// The lent item.
    type Item: Lent<Owned = U>;
}

impl<'a, B: ?Sized + 'a, U, F, O> LendFn<'a, B, U> for F
where
    F: Fn(&'a B) -> O,
    O: IntoIterator,
    O::Item: Lent<Owned = U>,
{
    type Out = O;
    type Item = O::Item;
}

/// The RDD of [`flat_map_ref`](super::Transformations::flat_map_ref): the owned forms of the
/// items `f` lends from each parent element (as `&B`).
#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "P: Serialize",
    deserialize = "P: Deserialize<'de>, F: Copy + 'static"
))]
pub struct FlatMapRefRdd<P, F, B: ?Sized, U> {
    meta: RddMeta,
    parent: P,
    #[serde(with = "crate::ship::zst")]
    f: F,
    _types: PhantomData<fn(&B) -> U>,
}

impl<P: Clone, F: Copy, B: ?Sized, U> Clone for FlatMapRefRdd<P, F, B, U> {
    fn clone(&self) -> Self {
        FlatMapRefRdd {
            meta: self.meta.clone(),
            parent: self.parent.clone(),
            f: self.f,
            _types: PhantomData,
        }
    }
}

impl<P, F, B, U> FlatMapRefRdd<P, F, B, U>
where
    P: Rdd,
    P::Item: Borrow<B>,
    B: ?Sized + 'static,
    U: Data,
    F: for<'a> LendFn<'a, B, U> + Copy + Send + Sync + 'static,
{
    pub(crate) fn new(parent: P, f: F) -> Self {
        FlatMapRefRdd {
            meta: RddMeta::derived(parent.meta(), "FlatMapRdd"),
            parent,
            f,
            _types: PhantomData,
        }
    }
}

/// Iterator of a [`FlatMapRefRdd`] partition: each parent element's items, made owned.
pub struct FlatMapRefIter<I, F, B: ?Sized, U> {
    it: I,
    f: F,
    /// The owned items of the current parent element not yet returned (the buffer is reused).
    pending: VecDeque<U>,
    _b: PhantomData<fn(&B)>,
}

impl<I, F, B, U> Iterator for FlatMapRefIter<I, F, B, U>
where
    I: Iterator,
    I::Item: Borrow<B>,
    B: ?Sized,
    F: for<'a> LendFn<'a, B, U>,
{
    type Item = U;
    #[inline]
    fn next(&mut self) -> Option<U> {
        loop {
            if let Some(x) = self.pending.pop_front() {
                return Some(x);
            }
            let item = self.it.next()?;
            // The items borrow `item`, which this iterator cannot keep alongside them: they are
            // made owned while it is alive.
            self.pending
                .extend((self.f)(item.borrow()).into_iter().map(Lent::into_owned));
        }
    }
}

impl<P, F, B, U> Rdd for FlatMapRefRdd<P, F, B, U>
where
    P: Rdd,
    P::Item: Borrow<B>,
    B: ?Sized + 'static,
    U: Data,
    F: for<'a> LendFn<'a, B, U> + Copy + Send + Sync + 'static,
{
    type Item = U;
    type Iter = FlatMapRefIter<PartIter<P>, F, B, U>;

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
    fn compute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        FlatMapRefIter {
            it: self.parent.iterator(partition, ctx),
            f: self.f,
            pending: VecDeque::new(),
            _b: PhantomData,
        }
    }
    fn partitioning(&self) -> Option<Partitioning> {
        None
    }

    fn feed_pairs<K: Data, V: Data, S: PairSink<K, V>>(
        &self,
        partition: usize,
        ctx: &Arc<TaskContext>,
        sink: &mut S,
    ) -> Result<()>
    where
        Self: Rdd<Item = (K, V)>,
    {
        if self.meta.storage_level().is_valid() {
            // Persisted: the cached elements are owned anyway.
            for (k, v) in self.iterator(partition, ctx) {
                sink.pair(k, v)?;
            }
            return Ok(());
        }
        let f = self.f;
        self.parent.for_each_ref(partition, ctx, |item| {
            for lent in f(item.borrow()) {
                lent.feed_pair(sink)?;
            }
            Ok(())
        })
    }
}
