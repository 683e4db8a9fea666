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

/// Whether an RDD gives the same output when a partition is computed again (Spark's
/// `DeterministicLevel`), from most to least deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeterministicLevel {
    /// The same records in the same order.
    Determinate,
    /// The same records, maybe in another order (e.g. a shuffle's output: reducers read the map
    /// outputs as they arrive).
    Unordered,
    /// Maybe other records (e.g. `repartition` of an unordered input, whose round-robin sends
    /// records to other reducers when their order changes).
    Indeterminate,
}

/// The output level of `rdd` (Spark's `RDD.outputDeterministicLevel`): the level it declares,
/// else the least deterministic of its dependencies' (a shuffle of an input that is not
/// indeterminate is unordered; an order-sensitive RDD over an unordered input is
/// indeterminate). Each RDD is looked at once, however often the lineage reuses it.
pub fn output_deterministic_level(rdd: &Arc<dyn RddBase>) -> DeterministicLevel {
    fn level(
        rdd: &Arc<dyn RddBase>,
        memo: &mut std::collections::HashMap<RddId, DeterministicLevel>,
    ) -> DeterministicLevel {
        if let Some(l) = memo.get(&rdd.id()) {
            return *l;
        }
        let l = rdd.output_deterministic_level().unwrap_or_else(|| {
            let derived = rdd
                .dependencies()
                .iter()
                .map(|d| match d {
                    Dependency::Narrow { rdd, .. } => level(rdd, memo),
                    Dependency::Shuffle(s) => match level(&s.rdd(), memo) {
                        DeterministicLevel::Indeterminate => DeterministicLevel::Indeterminate,
                        _ => DeterministicLevel::Unordered,
                    },
                })
                .max()
                .unwrap_or(DeterministicLevel::Determinate);
            if rdd.is_order_sensitive() && derived == DeterministicLevel::Unordered {
                DeterministicLevel::Indeterminate
            } else {
                derived
            }
        });
        memo.insert(rdd.id(), l);
        l
    }
    level(rdd, &mut std::collections::HashMap::new())
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
    /// The output level this RDD declares (Spark's `getOutputDeterministicLevel` override), or
    /// `None` to derive it from its dependencies (see [`output_deterministic_level`]).
    fn output_deterministic_level(&self) -> Option<DeterministicLevel> {
        None
    }
    /// Whether its output depends on the order of its input (Spark's `isOrderSensitive` of
    /// `MapPartitionsRDD`, true for `repartition`'s round-robin): over an unordered input it is
    /// indeterminate.
    fn is_order_sensitive(&self) -> bool {
        false
    }
    /// Whether this RDD was made by `rdd.barrier().map_partitions(…)` (Spark's
    /// `MapPartitionsRDD.isFromBarrier`).
    fn is_from_barrier(&self) -> bool {
        false
    }
    /// Whether the stage computing this RDD is a barrier stage (Spark's `RDD.isBarrier`): it
    /// comes from a barrier, or a narrow parent does. A shuffle cuts it: the stage that reads a
    /// barrier stage's output is an ordinary one.
    fn is_barrier(&self) -> bool {
        self.is_from_barrier()
            || self.dependencies().iter().any(|d| match d {
                Dependency::Narrow { rdd, .. } => rdd.is_barrier(),
                Dependency::Shuffle(_) => false,
            })
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
