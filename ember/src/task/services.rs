//! What a running task reaches of its executor: [`ExecutorServices`], a narrow view of the
//! executor's environment (Spark's `SparkEnv` as a task uses it).
//!
//! The executor (`crate::env::ExecutorEnv`) implements it; tasks, RDDs, shuffle readers and
//! broadcasts only ever see this trait, so they depend on nothing above the task layer: the
//! block manager and configuration views below it, and traits defined here for what lives above
//! it (map output locations, broadcast values).

use std::any::Any;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ember_common::{MapStatus, ShuffleId};
use ember_net::block_client::BlockClient;

use crate::conf::ShuffleConf;
use crate::error::Result;
use crate::storage::BlockManager;

/// Where a reduce task learns the locations of a shuffle's map outputs (Spark's
/// `MapOutputTracker` as seen from an executor). In local mode it is the driver's tracker itself;
/// an executor process asks its driver.
pub trait MapOutputSource: Send + Sync {
    /// The status of every map partition of the shuffle; an error (or a missing entry) means an
    /// output is unavailable, which the reducer reports as a fetch failure.
    fn map_statuses(&self, shuffle_id: ShuffleId) -> Result<Arc<Vec<Option<MapStatus>>>>;
}

/// The broadcast values a process holds (its `BroadcastManager`), as a task reads them: one cell
/// per broadcast, filled by the first task that fetches the value, shared by the others.
pub trait BroadcastValues: Send + Sync {
    /// The cell of broadcast `id` in this process, created empty when new.
    fn value_cell(&self, id: u64) -> Arc<OnceLock<Arc<dyn Any + Send + Sync>>>;
    /// Forgets broadcast `id`'s cell (a fetch failed: the next task tries again).
    fn forget_value(&self, id: u64);
    /// Counts bytes of broadcast pieces this process fetched.
    fn add_bytes_fetched(&self, bytes: u64);
}

/// Where a barrier task's syncs go (Spark's RPC to the driver's `barrierSync` endpoint): the
/// driver's coordinator, in this process in local mode, over the executor's connection
/// otherwise.
pub trait BarrierSyncSource: Send + Sync {
    /// Sends the request; the answer (every task's message by partition, or why the sync
    /// failed) arrives on the returned channel.
    fn request_sync(
        &self,
        request: ember_scheduler::barrier_coordinator::SyncRequest,
    ) -> Result<crossbeam_channel::Receiver<std::result::Result<Vec<String>, String>>>;
}

/// The executor's services a running task uses. See the module documentation.
pub trait ExecutorServices: Send + Sync {
    /// The executor's id (`"driver"` in local mode).
    fn executor_id(&self) -> &str;
    /// This executor's directory for shuffle files and spills.
    fn local_dir(&self) -> &Path;
    /// The shuffle settings.
    fn shuffle_conf(&self) -> &ShuffleConf;
    /// The executor's block manager: cached partitions, and the memory manager behind them.
    fn block_manager(&self) -> &Arc<BlockManager>;
    /// Where map outputs are.
    fn map_outputs(&self) -> &dyn MapOutputSource;
    /// Broadcast values of this process.
    fn broadcasts(&self) -> &dyn BroadcastValues;
    /// Fetches blocks from other processes (cluster mode); `None` in embedded mode.
    fn block_client(&self) -> Option<&BlockClient>;
    /// Where barrier syncs go.
    fn barrier_sync(&self) -> &dyn BarrierSyncSource;
    /// The object-store settings (`ember.hadoop.*`) of the application as this executor has
    /// them: the driver's own in local mode, the ones sent at registration in an executor
    /// process.
    fn hadoop_conf(&self) -> &Arc<crate::io::cloud::HadoopConf>;
}
