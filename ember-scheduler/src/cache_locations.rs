//! Where cached partitions are, as the DAG scheduler asks (Spark's `DAGScheduler.getCacheLocs`
//! over the `BlockManagerMaster`). `ember`'s block manager master answers; the core only reads.

use ember_common::{BlockManagerId, RddId};

/// The block managers holding cached partitions.
pub trait CacheLocations: Send + Sync {
    /// The block managers holding a copy of partition `partition` of RDD `rdd_id` (none when it
    /// is not cached anywhere).
    fn cache_locations(&self, rdd_id: RddId, partition: usize) -> Vec<BlockManagerId>;
}

/// No cached partitions anywhere (tests and the simulator).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCache;

impl CacheLocations for NoCache {
    fn cache_locations(&self, _rdd_id: RddId, _partition: usize) -> Vec<BlockManagerId> {
        Vec::new()
    }
}
