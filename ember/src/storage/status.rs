//! Where a block is and how large, as executors report it and the status API shows it (Spark's
//! `BlockStatus`, `RDDInfo` and the executors' storage status).

use serde::{Deserialize, Serialize};

use super::StorageLevel;
use crate::memory::MemoryMetrics;

/// Where one copy of a block is now (Spark's `BlockStatus`): `level` tells where it actually is
/// (in memory, on disk, neither), not the level it was persisted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStatus {
    /// Where the block is: `use_memory` when in the memory store, `use_disk` when on disk.
    pub level: StorageLevel,
    /// Bytes in memory (estimated for deserialized blocks, exact for serialized ones).
    pub memory_size: u64,
    /// Bytes on disk.
    pub disk_size: u64,
}

impl BlockStatus {
    /// The status of a block that is nowhere (removed, dropped).
    pub const REMOVED: BlockStatus = BlockStatus {
        level: StorageLevel::NONE,
        memory_size: 0,
        disk_size: 0,
    };

    /// Whether the block is stored anywhere.
    pub fn is_cached(&self) -> bool {
        self.level.is_valid()
    }
}

/// A persisted RDD's cached partitions (Spark's `RDDInfo`, from `SparkContext.getRDDStorageInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RddStorageInfo {
    /// The RDD's id.
    pub id: usize,
    /// The name given with `set_name`, if any.
    pub name: Option<String>,
    /// The level it was persisted with.
    pub storage_level: StorageLevel,
    /// Partitions of the RDD.
    pub num_partitions: usize,
    /// Partitions stored somewhere (memory or disk).
    pub num_cached_partitions: usize,
    /// Bytes in executors' memory.
    pub memory_size: u64,
    /// Bytes on executors' disks.
    pub disk_size: u64,
}

/// The storage of one executor as the driver knows it (Spark's `StorageStatus` and
/// `getExecutorMemoryStatus`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutorStorageStatus {
    /// The executor.
    pub executor_id: String,
    /// Its host.
    pub host: String,
    /// Execution plus storage memory of the executor, in bytes.
    pub max_memory: u64,
    /// Bytes of cached blocks in its memory.
    pub memory_used: u64,
    /// Bytes of cached blocks on its disk.
    pub disk_used: u64,
    /// Blocks it stores.
    pub blocks: usize,
    /// Blocks it dropped from memory to make room (to disk, or gone).
    pub blocks_evicted: u64,
    /// The executor's memory manager at its last report (live for the embedded executor).
    pub memory: MemoryMetrics,
}
