//! The driver's registry of where every block lives (Spark's `BlockManagerMasterEndpoint`).

use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};

use super::BlockId;
use crate::task::BlockManagerId;

/// Where every stored block lives, so cached partitions become preferred locations.
#[derive(Default)]
pub struct BlockManagerMaster {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    managers: FxHashSet<BlockManagerId>,
    locations: FxHashMap<BlockId, FxHashMap<BlockManagerId, u64>>,
}

impl BlockManagerMaster {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a block manager.
    pub fn register(&self, id: &BlockManagerId) {
        self.state.lock().managers.insert(id.clone());
    }

    /// Records that `manager` now stores `block`.
    pub fn block_added(&self, manager: &BlockManagerId, block: BlockId, size: u64) {
        self.state.lock().locations.entry(block).or_default().insert(manager.clone(), size);
    }

    /// Forgets every block of a lost executor.
    pub fn remove_executor(&self, executor_id: &str) {
        let mut st = self.state.lock();
        st.managers.retain(|m| m.executor_id != executor_id);
        st.locations.retain(|_, locs| {
            locs.retain(|m, _| m.executor_id != executor_id);
            !locs.is_empty()
        });
    }

    /// Forgets every block of an RDD.
    pub fn remove_rdd(&self, rdd_id: usize) {
        self.state.lock().locations.retain(|b, _| !matches!(b, BlockId::Rdd { rdd_id: r, .. } if *r == rdd_id));
    }

    /// The block managers that hold `block`.
    pub fn locations(&self, block: BlockId) -> Vec<BlockManagerId> {
        let st = self.state.lock();
        let mut v: Vec<BlockManagerId> = st.locations.get(&block).map(|l| l.keys().cloned().collect()).unwrap_or_default();
        v.sort_by(|a, b| a.executor_id.cmp(&b.executor_id));
        v
    }

    /// Cached partitions of an RDD and their total size in memory: `(partitions, bytes)`.
    pub fn rdd_storage(&self, rdd_id: usize) -> (usize, u64) {
        let st = self.state.lock();
        st.locations
            .iter()
            .filter(|(b, _)| matches!(b, BlockId::Rdd { rdd_id: r, .. } if *r == rdd_id))
            .fold((0, 0), |(n, s), (_, locs)| (n + 1, s + locs.values().copied().max().unwrap_or(0)))
    }
}
