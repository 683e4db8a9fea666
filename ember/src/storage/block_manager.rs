//! The executor's block manager: a memory store of cached partitions.

use std::any::Any;
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::BlockManagerMaster;
use crate::task::BlockManagerId;

/// Names a block (Spark's `BlockId`): `rdd_{rdd}_{partition}` for a cached partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockId {
    /// Partition `partition` of RDD `rdd_id`.
    Rdd { rdd_id: usize, partition: usize },
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockId::Rdd { rdd_id, partition } => write!(f, "rdd_{rdd_id}_{partition}"),
        }
    }
}

struct StoredBlock {
    value: Arc<dyn Any + Send + Sync>,
    size: u64,
}

/// Stores blocks of one executor and tells the driver's [`BlockManagerMaster`] about them.
pub struct BlockManager {
    id: BlockManagerId,
    memory: Mutex<FxHashMap<BlockId, StoredBlock>>,
    /// Serialized blocks served to other processes (indirect task results).
    bytes: Mutex<FxHashMap<String, Arc<Vec<u8>>>>,
    master: Arc<BlockManagerMaster>,
    /// Tells the driver about new blocks when the master above is not the driver's.
    reporter: Mutex<Option<BlockReporter>>,
}

/// How an executor process reports a stored block to the driver.
pub type BlockReporter = Arc<dyn Fn(BlockId, u64) + Send + Sync>;

impl BlockManager {
    /// A block manager registered with `master`.
    pub fn new(id: BlockManagerId, master: Arc<BlockManagerMaster>) -> Self {
        master.register(&id);
        BlockManager { id, memory: Mutex::new(FxHashMap::default()), bytes: Mutex::new(FxHashMap::default()), master, reporter: Mutex::new(None) }
    }

    /// Sets the function that reports new blocks to the driver (executor processes).
    pub fn set_reporter(&self, reporter: BlockReporter) {
        *self.reporter.lock() = Some(reporter);
    }

    /// This block manager's id.
    pub fn id(&self) -> &BlockManagerId {
        &self.id
    }

    /// A cached partition's elements, if this executor holds it.
    pub fn get_values<T: Send + Sync + 'static>(&self, block: BlockId) -> Option<Arc<Vec<T>>> {
        let value = self.memory.lock().get(&block).map(|b| b.value.clone())?;
        value.downcast::<Vec<T>>().ok()
    }

    /// Stores a partition's elements; `size` is an estimate of their memory in bytes.
    pub fn put_values<T: Send + Sync + 'static>(&self, block: BlockId, values: Arc<Vec<T>>, size: u64) {
        self.memory.lock().insert(block, StoredBlock { value: values, size });
        self.master.block_added(&self.id, block, size);
        let reporter = self.reporter.lock().clone();
        if let Some(report) = reporter {
            report(block, size);
        }
    }

    /// Drops every cached partition of an RDD; returns how many blocks were removed.
    pub fn remove_rdd(&self, rdd_id: usize) -> usize {
        let mut mem = self.memory.lock();
        let before = mem.len();
        mem.retain(|b, _| !matches!(b, BlockId::Rdd { rdd_id: r, .. } if *r == rdd_id));
        before - mem.len()
    }

    /// Stores a serialized block under a name (an indirect task result).
    pub fn put_bytes(&self, id: String, bytes: Vec<u8>) {
        self.bytes.lock().insert(id, Arc::new(bytes));
    }

    /// Bytes held in memory.
    pub fn memory_used(&self) -> u64 {
        self.memory.lock().values().map(|b| b.size).sum()
    }
}

impl crate::rpc::block_transfer::BlockStore for BlockManager {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.bytes.lock().get(id).map(|b| b.as_ref().clone())
    }

    fn remove(&self, id: &str) -> bool {
        self.bytes.lock().remove(id).is_some()
    }
}
