//! Resilient distributed datasets: the typed API and the type-erased view the scheduler uses.
//!
//! An RDD is a value of a concrete type that describes how to compute each partition. Narrow
//! transformations wrap their parent (`MapRdd<ParallelCollection<u32>, ..>`), like iterator
//! adapters, so the whole narrow pipeline of a stage is one type and runs as one loop with the
//! user's functions inlined. Each RDD names its partition iterator (`Rdd::Iter`), which is what
//! lets `map_partitions` hand the parent's iterator to user code without boxing it.
//!
//! At a shuffle the chain is cut: a shuffled RDD holds its parent behind
//! `Arc<dyn ShuffleDependencyBase>`, and the scheduler sees every RDD through [`RddBase`].

mod actions;
pub mod barrier;
mod cogroup;
mod files;
pub mod fns;
mod join;
mod lend;
mod narrow;
mod pair;
mod result_job;
mod shuffle_side;
mod shuffled;
mod sources;

pub use actions::*;
pub use cogroup::*;
pub use files::*;
pub use join::*;
pub use lend::*;
pub use narrow::*;
pub use pair::*;
pub use shuffle_side::{ShuffleReadIter, SourceIter};
pub use shuffled::*;
pub use sources::*;

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::context::Context;
use crate::data::Data;
use crate::storage::{BlockId, GetOrCompute, StorageLevel, Values};
use crate::task::TaskLocation;
use crate::task::{ShuffleId, TaskContext, TaskMetrics};

/// RDD id, unique within a context.
pub type RddId = usize;

/// How an RDD's elements are laid out over its partitions by key, so that two RDDs laid out
/// the same way are joined without a shuffle (Spark's `partitioner` comparison).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Partitioning {
    /// Hash-partitioned into this many partitions.
    Hash(usize),
    /// Another partitioner, identified by the shuffle that applied it.
    Other(ShuffleId),
}

/// The parts of an RDD that are the same for every RDD type: id, context, storage level.
#[derive(Clone)]
pub struct RddMeta {
    inner: Arc<MetaInner>,
}

struct MetaInner {
    id: RddId,
    /// The driver's application; `None` in a copy deserialized on an executor.
    ctx: Option<Context>,
    name: &'static str,
    /// The base level's index in `LEVELS` in the low 3 bits, the replication above them.
    storage: AtomicU8,
    /// A name given by the application (`set_name`), shown in the storage status.
    user_name: parking_lot::Mutex<Option<String>>,
    /// An argument the RDD was built with that no job can run with (see
    /// [`RddMeta::refuse_argument`]); driver-side only, never serialized.
    invalid: std::sync::OnceLock<(String, String)>,
}

const LEVELS: [StorageLevel; 6] = [
    StorageLevel::NONE,
    StorageLevel::MEMORY_ONLY,
    StorageLevel::MEMORY_ONLY_SER,
    StorageLevel::MEMORY_AND_DISK,
    StorageLevel::MEMORY_AND_DISK_SER,
    StorageLevel::DISK_ONLY,
];

impl RddMeta {
    /// A new id in `ctx`; `name` is the RDD's kind, shown in stage names.
    pub fn new(ctx: &Context, name: &'static str) -> Self {
        RddMeta {
            inner: Arc::new(MetaInner {
                id: ctx.new_rdd_id(),
                ctx: Some(ctx.weak_handle()),
                name,
                storage: AtomicU8::new(0),
                user_name: Default::default(),
                invalid: Default::default(),
            }),
        }
    }
    /// The meta of a new RDD derived from `parent`, in the same application.
    pub fn derived(parent: &RddMeta, name: &'static str) -> Self {
        let ctx = parent.inner.ctx.clone();
        let id = ctx.as_ref().map_or(usize::MAX, |c| c.new_rdd_id());
        RddMeta {
            inner: Arc::new(MetaInner {
                id,
                ctx,
                name,
                storage: AtomicU8::new(0),
                user_name: Default::default(),
                invalid: Default::default(),
            }),
        }
    }
    /// Marks the RDD as built with an argument no job can run with (a partition count of 0, a
    /// `range` step of 0, …): every job over it, or over an RDD derived from it, fails with
    /// [`crate::EmberError::InvalidArgument`] naming `argument`, with `message` (Spark's, where
    /// Spark has one), before any stage is made. The first refusal is kept.
    pub(crate) fn refuse_argument(&self, argument: impl Into<String>, message: impl Into<String>) {
        let _ = self.inner.invalid.set((argument.into(), message.into()));
    }
    /// Refuses a partition count of 0 given as `argument`, with Spark's message (its
    /// `coalesce`/`repartition` `require`).
    pub(crate) fn refuse_zero_partitions(&self, argument: &str, n: usize) {
        if n == 0 {
            self.refuse_argument(
                argument,
                format!("Number of partitions ({n}) must be positive."),
            );
        }
    }
    /// The argument this RDD refuses to run with and why, when it was built with one no job can
    /// run with.
    pub fn invalid_argument(&self) -> Option<(String, String)> {
        self.inner.invalid.get().cloned()
    }
    /// A new shuffle id in this RDD's application.
    pub(crate) fn new_shuffle_id(&self) -> ShuffleId {
        self.inner
            .ctx
            .as_ref()
            .map_or(usize::MAX, |c| c.new_shuffle_id())
    }
    /// The RDD's id.
    pub fn id(&self) -> RddId {
        self.inner.id
    }
    /// The application the RDD belongs to; an error for a copy on an executor, where jobs
    /// cannot be started.
    pub fn context(&self) -> crate::Result<&Context> {
        self.inner
            .ctx
            .as_ref()
            .ok_or(crate::EmberError::NotOnDriver)
    }
    /// The RDD's kind, e.g. `MapRdd`.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }
    /// The storage level set by `persist`.
    pub fn storage_level(&self) -> StorageLevel {
        decode_level(self.inner.storage.load(Ordering::Relaxed)).unwrap_or(StorageLevel::NONE)
    }
    fn set_storage_level(&self, level: StorageLevel) {
        self.inner
            .storage
            .store(encode_level(level), Ordering::Relaxed);
    }
    /// The name given with `set_name`, if any.
    pub fn user_name(&self) -> Option<String> {
        self.inner.user_name.lock().clone()
    }
    fn set_user_name(&self, name: String) {
        *self.inner.user_name.lock() = Some(name);
    }
}

/// Packs a level into a byte: its base level's index in `LEVELS`, and its replication (at most
/// 31) above the low 3 bits.
fn encode_level(level: StorageLevel) -> u8 {
    let i = LEVELS
        .iter()
        .position(|l| {
            *l == StorageLevel {
                replication: 1,
                ..level
            }
        })
        .unwrap_or(0) as u8;
    i | (level.replication.clamp(1, 31) << 3)
}

fn decode_level(b: u8) -> Option<StorageLevel> {
    let base = LEVELS.get((b & 7) as usize)?;
    Some(StorageLevel {
        replication: (b >> 3).max(1),
        ..*base
    })
}

impl serde::Serialize for RddMeta {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.inner.id, self.inner.storage.load(Ordering::Relaxed)).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for RddMeta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (id, storage) = <(RddId, u8)>::deserialize(d)?;
        if decode_level(storage).is_none() {
            return Err(serde::de::Error::custom("unknown storage level"));
        }
        Ok(RddMeta {
            inner: Arc::new(MetaInner {
                id,
                ctx: None,
                name: "Rdd",
                storage: AtomicU8::new(storage),
                user_name: Default::default(),
                invalid: Default::default(),
            }),
        })
    }
}

impl fmt::Debug for RddMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.inner.name, self.inner.id)
    }
}

/// The scheduler core's view of the RDD graph: every typed RDD is also an [`RddBase`] (through
/// [`Rdd::as_base`]), and its dependencies are the core's [`Dependency`]s.
pub use ember_scheduler::rdd::{Dependency, DeterministicLevel, RddBase, ShuffleDependencyBase};

/// A typed RDD.
///
/// Transformations are lazy and return new RDDs; actions ([`collect`](Actions::collect),
/// [`count`](Actions::count), …) run a job. Functions given to operations capture nothing, or
/// are written with [`func!`](crate::func) (see [`crate::rdd::fns`]).
pub trait Rdd:
    Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static
{
    /// Element type.
    type Item: Data;
    /// Iterator over one computed partition.
    type Iter: Iterator<Item = Self::Item> + 'static;

    /// Id, context and storage level.
    fn meta(&self) -> &RddMeta;
    /// Number of partitions.
    fn num_partitions(&self) -> usize;
    /// Parents.
    fn dependencies(&self) -> Vec<Dependency>;
    /// Computes one partition from the parents (ignores the cache; see [`Rdd::iterator`]).
    fn compute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Self::Iter;
    /// Where a partition would rather be computed.
    fn preferred_locations(&self, _partition: usize) -> Vec<TaskLocation> {
        Vec::new()
    }
    /// How elements are laid out by key, when known.
    fn partitioning(&self) -> Option<Partitioning> {
        None
    }
    /// Whether partition `p` is reduce partition `p` of this RDD's shuffle and would rather run
    /// where most of its input is (Spark's `ShuffledRDD`; see
    /// [`RddBase::prefers_shuffle_input_hosts`]).
    fn prefers_shuffle_input_hosts(&self) -> bool {
        false
    }
    /// The output level this RDD declares (Spark's `getOutputDeterministicLevel` override):
    /// an RDD whose partitions may hold other records when computed again (random keys, a
    /// sample of an unordered input) says [`DeterministicLevel::Indeterminate`], so that a
    /// retry reruns its stage and the stages after it in full. `None` (the default) derives it
    /// from the dependencies.
    fn output_deterministic_level(&self) -> Option<DeterministicLevel> {
        None
    }
    /// Whether the output depends on the order of the input (see
    /// [`RddBase::is_order_sensitive`]).
    fn is_order_sensitive(&self) -> bool {
        false
    }
    /// Whether `rdd.barrier()` made this RDD (see [`RddBase::is_from_barrier`]).
    fn is_from_barrier(&self) -> bool {
        false
    }

    /// The partition's elements: from the cache when persisted and present, else computed
    /// (and stored, when persisted, through the block manager: see
    /// [`crate::storage::BlockManager::get_or_compute`]).
    fn iterator(
        &self,
        partition: usize,
        ctx: &Arc<TaskContext>,
    ) -> CacheIter<Self::Iter, Self::Item> {
        let level = self.meta().storage_level();
        if !level.is_valid() {
            return CacheIter::Computed(self.compute(partition, ctx));
        }
        let block = BlockId::Rdd {
            rdd_id: self.meta().id(),
            partition,
        };
        let values = match ctx
            .services()
            .block_manager()
            .get_or_compute(block, level, || self.compute(partition, ctx))
        {
            GetOrCompute::Hit(values) => {
                TaskMetrics::add(&ctx.metrics.cache_hits, 1);
                values
            }
            GetOrCompute::Computed(values) => values,
            GetOrCompute::Partial(unrolled, rest) => {
                return CacheIter::Partial(unrolled.into_iter(), rest)
            }
        };
        match values {
            Values::Shared(v) => CacheIter::Cached(v, 0),
            Values::Owned(v) => CacheIter::Owned(v.into_iter()),
        }
    }

    /// Calls `f` with a reference to each element of the partition, stopping at the first error.
    ///
    /// The same elements as [`Rdd::iterator`]; sources may lend them from a reused buffer
    /// instead of allocating each (a text file's lines). Engine hook, used by `flat_map_ref`.
    #[doc(hidden)]
    fn for_each_ref<F: FnMut(&Self::Item) -> crate::Result<()>>(
        &self,
        partition: usize,
        ctx: &Arc<TaskContext>,
        mut f: F,
    ) -> crate::Result<()> {
        for x in self.iterator(partition, ctx) {
            f(&x)?;
        }
        Ok(())
    }

    /// Passes each `(key, value)` element of the partition to a shuffle writer. RDDs that can
    /// lend their keys borrowed (`flat_map_ref`) pass them so; the default passes the owned
    /// elements of [`Rdd::iterator`]. Engine hook.
    #[doc(hidden)]
    fn feed_pairs<K: Data, V: Data, S: PairSink<K, V>>(
        &self,
        partition: usize,
        ctx: &Arc<TaskContext>,
        sink: &mut S,
    ) -> crate::Result<()>
    where
        Self: Rdd<Item = (K, V)>,
    {
        for (k, v) in self.iterator(partition, ctx) {
            sink.pair(k, v)?;
        }
        Ok(())
    }

    /// This RDD's id.
    fn id(&self) -> RddId {
        self.meta().id()
    }

    /// The application this RDD belongs to (an error inside a task).
    fn context(&self) -> crate::Result<Context> {
        self.meta().context().cloned()
    }

    /// The scheduler's view of this RDD.
    fn as_base(&self) -> Arc<dyn RddBase> {
        Arc::new(Erased(self.clone()))
    }

    /// Keeps computed partitions in memory after the first action that computes them.
    /// Returns the same RDD (sharing the setting with every clone).
    fn cache(self) -> Self {
        self.persist(StorageLevel::MEMORY_ONLY)
    }

    /// Sets the storage level of this RDD (and of every clone of it): its partitions are kept
    /// at that level by the first action that computes them.
    ///
    /// Ember keeps one copy of each partition: a level with replication (`MEMORY_ONLY_2`, …) is
    /// refused with [`crate::EmberError::ReplicationNotSupported`], at once by
    /// [`Rdd::try_persist`], and by the first action on the RDD after `persist`.
    fn persist(self, level: StorageLevel) -> Self {
        self.meta().set_storage_level(level);
        if let Ok(ctx) = self.meta().context() {
            ctx.note_persisted(
                self.meta().id(),
                self.meta().user_name(),
                self.meta().storage_level(),
                self.num_partitions(),
            );
        }
        self
    }

    /// [`Rdd::persist`], refusing a level Ember does not support (replication) at once.
    fn try_persist(self, level: StorageLevel) -> crate::Result<Self> {
        if level.replication > 1 {
            return Err(crate::EmberError::ReplicationNotSupported {
                rdd_id: self.id(),
                level: level.to_string(),
            });
        }
        Ok(self.persist(level))
    }

    /// Names the RDD (shown in [`Context::get_rdd_storage_info`]).
    fn set_name(self, name: impl Into<String>) -> Self {
        self.meta().set_user_name(name.into());
        if let Ok(ctx) = self.meta().context() {
            if self.storage_level().is_valid() {
                ctx.note_persisted(
                    self.meta().id(),
                    self.meta().user_name(),
                    self.meta().storage_level(),
                    self.num_partitions(),
                );
            }
        }
        self
    }

    /// Drops the cached partitions, in memory and on disk, on every executor, and stops caching.
    /// The driver forgets them at once; executors free their memory shortly after.
    fn unpersist(self) -> Self {
        self.meta().set_storage_level(StorageLevel::NONE);
        if let Ok(ctx) = self.meta().context() {
            ctx.remove_rdd_blocks(self.meta().id());
        }
        self
    }

    /// The storage level.
    fn storage_level(&self) -> StorageLevel {
        self.meta().storage_level()
    }
}

/// The partition iterator of a possibly persisted RDD.
pub enum CacheIter<I, T> {
    /// Computed from the parents.
    Computed(I),
    /// Read from a cached block kept as objects in memory (shared with the cache).
    Cached(Arc<Vec<T>>, usize),
    /// Decoded from a serialized or on-disk block, or computed and stored in such a form.
    Owned(std::vec::IntoIter<T>),
    /// A partition too large to cache: the elements computed while trying, then the rest of the
    /// computation.
    Partial(std::vec::IntoIter<T>, I),
}

impl<I: Iterator<Item = T>, T: Clone> Iterator for CacheIter<I, T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        match self {
            CacheIter::Computed(it) => it.next(),
            CacheIter::Cached(v, i) => {
                let x = v.get(*i)?.clone();
                *i += 1;
                Some(x)
            }
            CacheIter::Owned(it) => it.next(),
            CacheIter::Partial(head, rest) => head.next().or_else(|| rest.next()),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            CacheIter::Computed(it) => it.size_hint(),
            CacheIter::Cached(v, i) => {
                let n = v.len().saturating_sub(*i);
                (n, Some(n))
            }
            CacheIter::Owned(it) => it.size_hint(),
            CacheIter::Partial(head, rest) => {
                let (lo, hi) = rest.size_hint();
                let n = head.len();
                (lo.saturating_add(n), hi.and_then(|h| h.checked_add(n)))
            }
        }
    }
}

/// The iterator type `R::iterator` returns.
pub type PartIter<R> = CacheIter<<R as Rdd>::Iter, <R as Rdd>::Item>;

/// Wraps a typed RDD as an [`RddBase`].
struct Erased<R>(R);

impl<R: Rdd> RddBase for Erased<R> {
    fn id(&self) -> RddId {
        self.0.meta().id()
    }
    fn name(&self) -> &'static str {
        self.0.meta().name()
    }
    fn num_partitions(&self) -> usize {
        self.0.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.0.dependencies()
    }
    fn preferred_locations(&self, p: usize) -> Vec<TaskLocation> {
        self.0.preferred_locations(p)
    }
    fn storage_level(&self) -> StorageLevel {
        self.0.meta().storage_level()
    }
    fn prefers_shuffle_input_hosts(&self) -> bool {
        self.0.prefers_shuffle_input_hosts()
    }
    fn invalid_argument(&self) -> Option<(String, String)> {
        self.0.meta().invalid_argument()
    }
    fn output_deterministic_level(&self) -> Option<DeterministicLevel> {
        self.0.output_deterministic_level()
    }
    fn is_order_sensitive(&self) -> bool {
        self.0.is_order_sensitive()
    }
    fn is_from_barrier(&self) -> bool {
        self.0.is_from_barrier()
    }
}

#[cfg(test)]
mod argument_tests;
