//! Ids, unique within an application, and the address of a block manager.

use serde::{Deserialize, Serialize};

/// Task attempt id, unique within an application (Spark's TID).
pub type TaskId = u64;
/// Stage id, unique within an application.
pub type StageId = usize;
/// Job id, unique within an application.
pub type JobId = usize;
/// Shuffle id, unique within an application.
pub type ShuffleId = usize;
/// RDD id, unique within an application.
pub type RddId = usize;
/// Executor id: `"driver"` in local mode, `"0"`, `"1"`, … in cluster mode (as in Spark).
pub type ExecutorId = String;

/// Where a block manager lives: the executor and the address its block server listens on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockManagerId {
    /// The executor the block manager belongs to.
    pub executor_id: ExecutorId,
    /// The host its block server listens on.
    pub host: String,
    /// The port of its block server (0 in local mode, where nothing listens).
    pub port: u16,
}

/// Names a block (Spark's `BlockId`): `rdd_{rdd}_{partition}` for a cached partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BlockId {
    /// Partition `partition` of RDD `rdd_id`.
    Rdd {
        /// The RDD.
        rdd_id: RddId,
        /// The partition.
        partition: usize,
    },
}

impl BlockId {
    /// The RDD a block belongs to.
    pub fn rdd_id(&self) -> RddId {
        match self {
            BlockId::Rdd { rdd_id, .. } => *rdd_id,
        }
    }
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockId::Rdd { rdd_id, partition } => write!(f, "rdd_{rdd_id}_{partition}"),
        }
    }
}
