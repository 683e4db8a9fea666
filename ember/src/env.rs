//! `ExecutorEnv` (Spark's `SparkEnv` as seen by an executor): the services a running task uses.

use std::path::PathBuf;
use std::sync::Arc;

use crate::conf::EmberConf;
use crate::error::Result;
use crate::memory::UnifiedMemoryManager;
use crate::shuffle::ShuffleConf;
use crate::storage::BlockManager;
use crate::error::EmberError;
use crate::task::{ExecutorId, MapStatus, ShuffleId};
use ember_scheduler::map_output_tracker::MapOutputTracker;

/// Where a reduce task learns the locations of a shuffle's map outputs (Spark's
/// `MapOutputTracker` as seen from an executor). In local mode it is the driver's tracker itself.
pub trait MapOutputSource: Send + Sync {
    /// The status of every map partition of the shuffle; an error (or a missing entry) means an
    /// output is unavailable, which the reducer reports as a fetch failure.
    fn map_statuses(&self, shuffle_id: ShuffleId) -> Result<Arc<Vec<Option<MapStatus>>>>;
}

/// The services of one executor.
pub struct ExecutorEnv {
    pub executor_id: ExecutorId,
    pub host: String,
    pub conf: Arc<EmberConf>,
    /// This executor's directory for shuffle files and spills.
    pub local_dir: PathBuf,
    pub shuffle: ShuffleConf,
    pub block_manager: Arc<BlockManager>,
    /// Broadcast values of this process (in local mode, the driver's own manager).
    pub broadcasts: Arc<crate::broadcast::BroadcastManager>,
    /// The executor's memory budget (the block manager's memory manager).
    pub memory_manager: Arc<UnifiedMemoryManager>,
    pub map_outputs: Arc<dyn MapOutputSource>,
    /// Fetches blocks from other executors (cluster mode); `None` in embedded mode.
    pub block_client: Option<ember_net::block_client::BlockClient>,
}

/// In local mode, reduce tasks read the driver's tracker itself.
impl MapOutputSource for MapOutputTracker {
    fn map_statuses(&self, shuffle_id: ShuffleId) -> Result<Arc<Vec<Option<MapStatus>>>> {
        MapOutputTracker::map_statuses(self, shuffle_id).ok_or_else(|| EmberError::MapOutputsUnavailable {
            shuffle_id,
            message: format!("Missing an output location for shuffle {shuffle_id}"),
        })
    }
}
