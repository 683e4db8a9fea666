//! `ExecutorEnv` (Spark's `SparkEnv` as seen by an executor): the services of one executor, which
//! its running tasks reach through [`ExecutorServices`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember_net::block_client::BlockClient;
use ember_scheduler::map_output_tracker::MapOutputTracker;

use crate::broadcast::BroadcastManager;
use crate::conf::{EmberConf, ShuffleConf};
use crate::error::{EmberError, Result};
use crate::memory::UnifiedMemoryManager;
use crate::storage::BlockManager;
use crate::task::{
    BroadcastValues, ExecutorId, ExecutorServices, MapOutputSource, MapStatus, ShuffleId,
};

/// The services of one executor.
pub struct ExecutorEnv {
    pub executor_id: ExecutorId,
    pub host: String,
    pub conf: Arc<EmberConf>,
    /// The object-store settings among `conf`, which tasks read.
    pub hadoop_conf: Arc<crate::io::cloud::HadoopConf>,
    /// This executor's directory for shuffle files and spills.
    pub local_dir: PathBuf,
    pub shuffle: ShuffleConf,
    pub block_manager: Arc<BlockManager>,
    /// Broadcast values of this process (in local mode, the driver's own manager).
    pub broadcasts: Arc<BroadcastManager>,
    /// The executor's memory budget (the block manager's memory manager).
    pub memory_manager: Arc<UnifiedMemoryManager>,
    pub map_outputs: Arc<dyn MapOutputSource>,
    /// Fetches blocks from other executors (cluster mode); `None` in embedded mode.
    pub block_client: Option<BlockClient>,
    /// The files and archives added by the application, as this executor has them.
    pub files: Arc<crate::files::ExecutorFiles>,
    /// Where barrier tasks' syncs go.
    pub barrier_sync: Arc<dyn crate::task::BarrierSyncSource>,
}

impl ExecutorServices for ExecutorEnv {
    fn executor_id(&self) -> &str {
        &self.executor_id
    }
    fn local_dir(&self) -> &Path {
        &self.local_dir
    }
    fn shuffle_conf(&self) -> &ShuffleConf {
        &self.shuffle
    }
    fn block_manager(&self) -> &Arc<BlockManager> {
        &self.block_manager
    }
    fn map_outputs(&self) -> &dyn MapOutputSource {
        self.map_outputs.as_ref()
    }
    fn broadcasts(&self) -> &dyn BroadcastValues {
        self.broadcasts.as_ref()
    }
    fn block_client(&self) -> Option<&BlockClient> {
        self.block_client.as_ref()
    }
    fn barrier_sync(&self) -> &dyn crate::task::BarrierSyncSource {
        self.barrier_sync.as_ref()
    }
    fn hadoop_conf(&self) -> &Arc<crate::io::cloud::HadoopConf> {
        &self.hadoop_conf
    }
}

/// In local mode, reduce tasks read the driver's tracker itself.
impl MapOutputSource for MapOutputTracker {
    fn map_statuses(&self, shuffle_id: ShuffleId) -> Result<Arc<Vec<Option<MapStatus>>>> {
        MapOutputTracker::map_statuses(self, shuffle_id).ok_or_else(|| {
            EmberError::MapOutputsUnavailable {
                shuffle_id,
                message: format!("Missing an output location for shuffle {shuffle_id}"),
            }
        })
    }
}
