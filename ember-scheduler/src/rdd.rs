//! The RDD graph as the scheduler core sees it: structure only. `ember`'s typed RDDs implement
//! these traits; the core walks them to cut a job into stages at shuffle boundaries and to find
//! where a partition would rather be computed, and never computes anything.

use std::sync::Arc;

use ember_common::{RddId, ShuffleId, StorageLevel, TaskLocation};

use crate::task::TaskBody;

/// A dependency of an RDD on a parent (Spark's `Dependency`).
#[derive(Clone)]
pub enum Dependency {
    /// Each partition needs a few parent partitions, computed in the same task. `one_to_one`
    /// when partition `i` needs exactly parent partition `i` (used for preferred locations).
    Narrow {
        /// The parent.
        rdd: Arc<dyn RddBase>,
        /// Whether partition `i` needs exactly the parent's partition `i`.
        one_to_one: bool,
    },
    /// Each partition needs a part of every parent partition: a stage boundary.
    Shuffle(Arc<dyn ShuffleDependencyBase>),
}

/// The scheduler's view of an RDD: no element type, just structure.
pub trait RddBase: Send + Sync {
    /// The RDD's id.
    fn id(&self) -> RddId;
    /// The RDD's kind, e.g. `MapRdd` (stage names).
    fn name(&self) -> &'static str;
    /// Number of partitions.
    fn num_partitions(&self) -> usize;
    /// Parents.
    fn dependencies(&self) -> Vec<Dependency>;
    /// Where partition `p` would rather be computed (e.g. the hosts of its file block).
    fn preferred_locations(&self, p: usize) -> Vec<TaskLocation>;
    /// The storage level set by `persist`: a persisted RDD's cached copies are the best place
    /// to compute its partitions.
    fn storage_level(&self) -> StorageLevel;
    /// Whether partition `p` is reduce partition `p` of this RDD's shuffle dependency and would
    /// rather run on the hosts holding most of that input (Spark's `ShuffledRDD`, whose
    /// preferred locations come from the map output sizes; cogroups and joins do not). The DAG
    /// scheduler asks its map output tracker, subject to `ember.shuffle.reduceLocality.enabled`.
    fn prefers_shuffle_input_hosts(&self) -> bool {
        false
    }
    /// An argument the RDD was built with that no job can run with, and why (the argument's
    /// name, the message): the caller refuses jobs over such an RDD before submitting them.
    fn invalid_argument(&self) -> Option<(String, String)> {
        None
    }
}

/// The map side of a shuffle, as the DAG scheduler sees it (Spark's `ShuffleDependency`).
pub trait ShuffleDependencyBase: Send + Sync {
    /// The shuffle's id.
    fn shuffle_id(&self) -> ShuffleId;
    /// The RDD whose partitions the map tasks write.
    fn rdd(&self) -> Arc<dyn RddBase>;
    /// Partitions of the reduce side.
    fn num_reduce_partitions(&self) -> usize;
    /// What the map tasks run.
    fn map_task(&self) -> TaskBody;
}
