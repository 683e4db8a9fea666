//! The inputs of the reduce side of a shuffle (Spark's shuffle dependencies seen from the RDD
//! that reads them): [`ShuffleRead`] (a shuffle's id, and its map side on the driver),
//! [`ShuffleSide`] (a shuffle, or a parent already partitioned as wanted and read in place), and
//! [`TwoSided`] (the two inputs of a cogroup or join). The shuffled RDDs, aggregations, cogroups
//! and joins are built from these, so the choice between a shuffle and a narrow read, and the
//! reading itself, are written once.

use std::any::Any;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::shuffled::{new_shuffle, MapSide, PassThrough};
use super::{Dependency, Partitioning, Rdd, RddBase, RddMeta, ShuffleDependencyBase};
use crate::aggregator::Aggregator;
use crate::data::{Data, Key};
use crate::partitioner::{HashPartitioner, Partitioner};
use crate::shuffle::external_aggregator::ExternalAggregator;
use crate::shuffle::reader::{read_reduce_partition, ShuffleRecords};
use crate::task::{Shipped, ShuffleId, TaskContext, TaskMetrics};

/// A shuffle an RDD reads: its id, which is all an executor needs, and on the driver the map
/// side, which the DAG scheduler runs.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ShuffleRead {
    pub(crate) shuffle_id: ShuffleId,
    #[serde(skip)]
    dep: Option<Arc<dyn ShuffleDependencyBase>>,
}

impl ShuffleRead {
    /// A new shuffle of `parent` by `partitioner`, written by `map_side`; returns it with how
    /// its output is partitioned.
    pub(crate) fn new<
        K: Key,
        V: Data,
        P: Rdd<Item = (K, V)>,
        Part: Partitioner<K>,
        M: MapSide<K, V>,
    >(
        parent: P,
        partitioner: Part,
        map_side: M,
    ) -> (Self, Partitioning) {
        let (shuffle_id, dep, partitioning) = new_shuffle(parent, partitioner, map_side);
        (
            ShuffleRead {
                shuffle_id,
                dep: Some(dep),
            },
            partitioning,
        )
    }

    /// The shuffle dependency (on the driver; a copy on an executor has none).
    pub(crate) fn dependency(&self) -> Option<Dependency> {
        self.dep.clone().map(Dependency::Shuffle)
    }

    /// The records of reduce partition `p`, counted into the task's metrics.
    pub(crate) fn records<T: serde::de::DeserializeOwned + 'static>(
        &self,
        p: usize,
        ctx: &Arc<TaskContext>,
    ) -> ShuffleReadIter<T> {
        ShuffleReadIter {
            records: read_reduce_partition(ctx, self.shuffle_id, p),
            ctx: ctx.clone(),
            read: 0,
        }
    }
}

/// Where an aggregation or one side of a cogroup or join reads from (Spark's `CoGroupedRDD`
/// dependencies): a shuffle, or a parent already partitioned as wanted, read in place.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum ShuffleSide {
    /// A shuffle.
    Shuffle(ShuffleRead),
    /// The parent is already partitioned as wanted: read its partitions in place.
    Narrow(ErasedSource),
}

impl ShuffleSide {
    /// Reads `parent` partitioned by `partitioner`: in place when `partitioner` is a hash
    /// partitioner and the parent is already hash-partitioned into as many partitions (as
    /// Spark's `combineByKey` and `cogroup` do), else through a new shuffle written by
    /// `map_side`. Returns how the result is partitioned.
    pub(crate) fn new<
        K: Key,
        V: Data,
        P: Rdd<Item = (K, V)>,
        Part: Partitioner<K>,
        M: MapSide<K, V>,
    >(
        parent: P,
        partitioner: Part,
        map_side: M,
    ) -> (Self, Partitioning) {
        let partitions = partitioner.num_partitions();
        let is_hash = (&partitioner as &dyn Any)
            .downcast_ref::<HashPartitioner>()
            .is_some();
        if is_hash && parent.partitioning() == Some(Partitioning::Hash(partitions)) {
            return (ShuffleSide::narrow(parent), Partitioning::Hash(partitions));
        }
        let (read, partitioning) = ShuffleRead::new(parent, partitioner, map_side);
        (ShuffleSide::Shuffle(read), partitioning)
    }

    /// Whether the side reads a shuffle (rather than its parent in place).
    pub(crate) fn is_shuffle(&self) -> bool {
        matches!(self, ShuffleSide::Shuffle(_))
    }

    /// The dependency on the side's input.
    pub(crate) fn dependency(&self) -> Option<Dependency> {
        match self {
            ShuffleSide::Shuffle(read) => read.dependency(),
            ShuffleSide::Narrow(src) => Some(Dependency::Narrow {
                rdd: src.0.base(),
                one_to_one: true,
            }),
        }
    }

    /// Feeds every record of partition `p` to `insert`.
    ///
    /// `insert` is called from one place only, so that the compiler inlines it into the loop:
    /// with a loop per kind of source it stayed an out-of-line call per record (1.9 million
    /// calls in a W4 at 1/20 scale under callgrind).
    #[inline]
    pub(crate) fn for_each<K: Key, X: Data>(
        &self,
        p: usize,
        ctx: &Arc<TaskContext>,
        mut insert: impl FnMut(K, X),
    ) {
        enum Records<S, N> {
            Shuffle(S),
            Narrow(N),
        }
        let mut records = match self {
            ShuffleSide::Shuffle(read) => Records::Shuffle(
                read_reduce_partition::<(K, X)>(ctx, read.shuffle_id, p).metered(&ctx.metrics),
            ),
            ShuffleSide::Narrow(src) => match src
                .0
                .iter_any(p, ctx)
                .downcast::<Box<dyn Iterator<Item = (K, X)>>>()
            {
                Ok(it) => Records::Narrow(*it),
                Err(_) => return,
            },
        };
        loop {
            let next = match &mut records {
                Records::Shuffle(it) => it.next(),
                Records::Narrow(it) => it.next(),
            };
            let Some((k, x)) = next else { break };
            insert(k, x);
        }
    }

    /// Every record of partition `p`, pulled.
    pub(crate) fn iter<K: Key, X: Data>(
        &self,
        p: usize,
        ctx: &Arc<TaskContext>,
    ) -> SourceIter<K, X> {
        match self {
            ShuffleSide::Shuffle(read) => SourceIter::Shuffle(read.records(p, ctx)),
            ShuffleSide::Narrow(src) => match src
                .0
                .iter_any(p, ctx)
                .downcast::<Box<dyn Iterator<Item = (K, X)>>>()
            {
                Ok(it) => SourceIter::Narrow(*it),
                Err(_) => SourceIter::Narrow(Box::new(std::iter::empty())),
            },
        }
    }

    /// A narrow source over an RDD already partitioned as wanted.
    pub(crate) fn narrow<R: Rdd>(rdd: R) -> Self {
        ShuffleSide::Narrow(ErasedSource(Arc::new(NarrowSource(rdd))))
    }
}

/// The records of one side of a join or aggregation: a shuffle read (static dispatch) or a
/// co-partitioned parent read in place.
// The shuffle reader is large but lives once per task, inline: boxing it would add an
// indirection to every record read.
#[allow(clippy::large_enum_variant)]
pub enum SourceIter<K: Key, X: Data> {
    /// Records fetched from a shuffle.
    Shuffle(ShuffleReadIter<(K, X)>),
    /// Records of a parent partition read in place.
    Narrow(Box<dyn Iterator<Item = (K, X)>>),
}

impl<K: Key, X: Data> Iterator for SourceIter<K, X> {
    type Item = (K, X);
    #[inline]
    fn next(&mut self) -> Option<(K, X)> {
        match self {
            SourceIter::Shuffle(it) => it.next(),
            SourceIter::Narrow(it) => it.next(),
        }
    }
}

/// A type-erased narrow parent that ships itself like a task body.
#[derive(Clone)]
pub(crate) struct ErasedSource(pub(crate) Arc<dyn NarrowPairSource>);

impl Serialize for ErasedSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0
            .ship()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ErasedSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let shipped = Shipped::deserialize(d)?;
        crate::ship::decode_nested::<Arc<dyn NarrowPairSource>>(&shipped)
            .map(ErasedSource)
            .map_err(serde::de::Error::custom)
    }
}

/// A narrow parent as the executor gets it, inside its task body (see [`crate::ship`]).
impl<R: Rdd> crate::ship::Shippable for NarrowSource<R> {
    type Output = Arc<dyn NarrowPairSource>;
    fn into_output(self) -> Arc<dyn NarrowPairSource> {
        Arc::new(self)
    }
}

/// A parent that is already partitioned by key, read partition by partition (type-erased to
/// keep the RDD's type independent of the parent's).
pub(crate) trait NarrowPairSource: Send + Sync {
    fn base(&self) -> Arc<dyn RddBase>;
    fn iter_any(&self, p: usize, ctx: &Arc<TaskContext>) -> Box<dyn Any>;
    fn ship(&self) -> crate::Result<Shipped>;
}

#[derive(Serialize, Deserialize)]
struct NarrowSource<R>(R);
impl<R: Rdd> NarrowPairSource for NarrowSource<R> {
    fn ship(&self) -> crate::Result<Shipped> {
        crate::ship::ship(self)
    }
    fn base(&self) -> Arc<dyn RddBase> {
        self.0.as_base()
    }
    fn iter_any(&self, p: usize, ctx: &Arc<TaskContext>) -> Box<dyn Any> {
        let it: Box<dyn Iterator<Item = R::Item>> = Box::new(self.0.iterator(p, ctx));
        Box::new(it)
    }
}

/// An external aggregation map for one reduce partition, with the task's shuffle settings and
/// directory.
pub(crate) fn aggregator_for<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>>(
    agg: A,
    ctx: &TaskContext,
) -> ExternalAggregator<K, V, C, A> {
    let services = ctx.services();
    ExternalAggregator::new(agg, services.shuffle_conf(), services.local_dir())
}

/// The two inputs of a cogroup or join and the number of partitions they meet in.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TwoSided {
    pub(crate) meta: RddMeta,
    pub(crate) left: ShuffleSide,
    pub(crate) right: ShuffleSide,
    pub(crate) partitions: usize,
}

impl TwoSided {
    /// The inputs `a` and `b`, meeting in `partitions` hash partitions (0 is refused when a job
    /// runs, see [`RddMeta::refuse_argument`]).
    pub(crate) fn new<K: Key, V: Data, W: Data, A: Rdd<Item = (K, V)>, B: Rdd<Item = (K, W)>>(
        a: A,
        b: B,
        partitions: usize,
        name: &'static str,
    ) -> Self {
        let meta = RddMeta::derived(a.meta(), name);
        meta.refuse_zero_partitions("num_partitions", partitions);
        let partitions = partitions.max(1);
        // Each input is read in place when already hash-partitioned into `partitions`.
        let (left, _) = ShuffleSide::new(a, HashPartitioner::new(partitions), PassThrough);
        let (right, _) = ShuffleSide::new(b, HashPartitioner::new(partitions), PassThrough);
        TwoSided {
            meta,
            left,
            right,
            partitions,
        }
    }

    /// The dependencies on both inputs.
    pub(crate) fn dependencies(&self) -> Vec<Dependency> {
        self.left
            .dependency()
            .into_iter()
            .chain(self.right.dependency())
            .collect()
    }
}

/// The records of one reduce partition, counted into the task's metrics when done.
pub struct ShuffleReadIter<T: serde::de::DeserializeOwned> {
    records: ShuffleRecords<T>,
    ctx: Arc<TaskContext>,
    read: u64,
}

impl<T: serde::de::DeserializeOwned + 'static> Iterator for ShuffleReadIter<T> {
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
        TaskMetrics::add(
            &self.ctx.metrics.shuffle_records_read,
            self.records.records_read(),
        );
    }
}
