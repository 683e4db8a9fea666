//! The driver's registry of where every block lives (Spark's `BlockManagerMasterEndpoint`):
//! each executor's block manager, its memory, and the status (memory and disk size) of each
//! block it reported. Cached partitions become preferred locations; the status API reads it.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;

use super::{BlockId, BlockStatus, ExecutorStorageStatus};
use crate::listener::events::{
    BlockManagerAdded, BlockManagerRemoved, BlockUpdated, BlockUpdatedInfo, ListenerEvent,
};
use crate::listener::ListenerBus;
use crate::memory::MemoryMetrics;
use ember_common::BlockManagerId;
use ember_scheduler::cache_locations::CacheLocations;

/// Where every stored block lives, so cached partitions become preferred locations.
#[derive(Default)]
pub struct BlockManagerMaster {
    state: Mutex<State>,
    /// Woken on every change, for [`BlockManagerMaster::wait_for`].
    changed: Condvar,
    /// Where block managers' arrivals and departures and blocks' moves are posted (Spark's
    /// `BlockManagerMasterEndpoint` posts them too).
    bus: std::sync::OnceLock<std::sync::Arc<ListenerBus>>,
}

#[derive(Default)]
struct ManagerInfo {
    max_memory: u64,
    metrics: MemoryMetrics,
    blocks_evicted: u64,
}

#[derive(Default)]
struct State {
    managers: FxHashMap<BlockManagerId, ManagerInfo>,
    locations: FxHashMap<BlockId, FxHashMap<BlockManagerId, BlockStatus>>,
}

impl BlockManagerMaster {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Posts block manager and block events to `bus` from now on.
    pub fn set_listener_bus(&self, bus: std::sync::Arc<ListenerBus>) {
        let _ = self.bus.set(bus);
    }

    fn post(&self, event: impl FnOnce(u64) -> ListenerEvent) {
        if let Some(bus) = self.bus.get() {
            bus.post(event(bus.time_ms()));
        }
    }

    /// Records a block manager with `max_memory` bytes of execution plus storage memory.
    pub fn register(&self, id: &BlockManagerId, max_memory: u64) {
        let mut st = self.state.lock();
        let info = st.managers.entry(id.clone()).or_default();
        info.max_memory = max_memory;
        info.metrics.max_memory = max_memory;
        drop(st);
        self.changed.notify_all();
        self.post(|time| {
            ListenerEvent::BlockManagerAdded(BlockManagerAdded {
                time,
                block_manager_id: id.clone(),
                max_mem: max_memory,
            })
        });
    }

    /// Records a block's new status on `manager` (Spark's `updateBlockInfo`): a block that is
    /// nowhere any more is forgotten there. A block that leaves memory without being removed on
    /// purpose (the driver forgets those first) counts as evicted.
    pub fn update_block_info(
        &self,
        manager: &BlockManagerId,
        block: BlockId,
        status: BlockStatus,
        metrics: Option<MemoryMetrics>,
    ) {
        let mut st = self.state.lock();
        let before = st
            .locations
            .get(&block)
            .and_then(|l| l.get(manager))
            .copied();
        if before.is_some_and(|b| b.level.use_memory && !status.level.use_memory) {
            st.managers
                .entry(manager.clone())
                .or_default()
                .blocks_evicted += 1;
        }
        if status.is_cached() {
            st.locations
                .entry(block)
                .or_default()
                .insert(manager.clone(), status);
        } else if let Some(locs) = st.locations.get_mut(&block) {
            locs.remove(manager);
            if locs.is_empty() {
                st.locations.remove(&block);
            }
        }
        if let Some(m) = metrics {
            let info = st.managers.entry(manager.clone()).or_default();
            info.metrics = m;
            info.max_memory = m.max_memory;
        }
        // Posted under the lock, so listeners see a block's changes in the order applied here.
        self.post(|_| {
            ListenerEvent::BlockUpdated(BlockUpdated {
                block_updated_info: BlockUpdatedInfo {
                    block_manager_id: manager.clone(),
                    block_id: block,
                    storage_level: status.level,
                    mem_size: status.memory_size,
                    disk_size: status.disk_size,
                },
            })
        });
        drop(st);
        self.changed.notify_all();
    }

    /// Records an executor's memory metrics (from a heartbeat).
    pub fn update_memory_metrics(&self, executor_id: &str, metrics: MemoryMetrics) {
        let mut st = self.state.lock();
        for (id, info) in st.managers.iter_mut() {
            if id.executor_id == executor_id {
                info.metrics = metrics;
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Whether a block manager of this executor is registered (what Spark's
    /// `BlockManagerMasterHeartbeatEndpoint` answers a heartbeat with).
    pub fn knows_executor(&self, executor_id: &str) -> bool {
        self.state
            .lock()
            .managers
            .keys()
            .any(|m| m.executor_id == executor_id)
    }

    /// Forgets every block of a lost executor.
    pub fn remove_executor(&self, executor_id: &str) {
        let mut st = self.state.lock();
        let removed: Vec<BlockManagerId> = st
            .managers
            .keys()
            .filter(|m| m.executor_id == executor_id)
            .cloned()
            .collect();
        for id in removed {
            self.post(|time| {
                ListenerEvent::BlockManagerRemoved(BlockManagerRemoved {
                    time,
                    block_manager_id: id,
                })
            });
        }
        st.managers.retain(|m, _| m.executor_id != executor_id);
        st.locations.retain(|_, locs| {
            locs.retain(|m, _| m.executor_id != executor_id);
            !locs.is_empty()
        });
        drop(st);
        self.changed.notify_all();
    }

    /// Forgets every block of an RDD (`unpersist`; the executors drop theirs).
    pub fn remove_rdd(&self, rdd_id: usize) {
        self.state
            .lock()
            .locations
            .retain(|b, _| b.rdd_id() != rdd_id);
        self.changed.notify_all();
    }

    /// The block managers that hold `block`.
    pub fn locations(&self, block: BlockId) -> Vec<BlockManagerId> {
        let st = self.state.lock();
        let mut v: Vec<BlockManagerId> = st
            .locations
            .get(&block)
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.executor_id.cmp(&b.executor_id));
        v
    }

    /// The status of each copy of a block.
    pub fn block_status(&self, block: BlockId) -> Vec<(BlockManagerId, BlockStatus)> {
        let st = self.state.lock();
        let mut v: Vec<_> = st
            .locations
            .get(&block)
            .map(|l| l.iter().map(|(m, s)| (m.clone(), *s)).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.executor_id.cmp(&b.0.executor_id));
        v
    }

    /// Cached partitions of an RDD and their total size in memory: `(partitions, bytes)`.
    pub fn rdd_storage(&self, rdd_id: usize) -> (usize, u64) {
        let (n, mem, _) = self.rdd_blocks(rdd_id);
        (n, mem)
    }

    /// Cached partitions of an RDD with their bytes in memory and on disk:
    /// `(partitions, memory bytes, disk bytes)`. A partition cached on several executors counts
    /// once, at its largest copy.
    pub fn rdd_blocks(&self, rdd_id: usize) -> (usize, u64, u64) {
        let st = self.state.lock();
        st.locations
            .iter()
            .filter(|(b, _)| b.rdd_id() == rdd_id)
            .fold((0, 0, 0), |(n, mem, disk), (_, locs)| {
                let m = locs.values().map(|s| s.memory_size).max().unwrap_or(0);
                let d = locs.values().map(|s| s.disk_size).max().unwrap_or(0);
                (n + 1, mem + m, disk + d)
            })
    }

    /// The storage of every registered executor, by executor id.
    pub fn storage_status(&self) -> Vec<ExecutorStorageStatus> {
        let st = self.state.lock();
        storage_status(&st)
    }

    /// Waits until `pred` holds for the executors' storage, at most `timeout`; returns whether it
    /// does. Executors report asynchronously (e.g. the blocks an `unpersist` removed).
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[ExecutorStorageStatus]) -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            if pred(&storage_status(&st)) {
                return true;
            }
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return pred(&storage_status(&st));
            }
        }
    }
}

fn storage_status(st: &State) -> Vec<ExecutorStorageStatus> {
    let mut out: Vec<ExecutorStorageStatus> = st
        .managers
        .iter()
        .map(|(id, info)| ExecutorStorageStatus {
            executor_id: id.executor_id.clone(),
            host: id.host.clone(),
            max_memory: info.max_memory,
            blocks_evicted: info.blocks_evicted,
            memory: info.metrics,
            ..Default::default()
        })
        .collect();
    out.sort_by(|a, b| a.executor_id.cmp(&b.executor_id));
    for locs in st.locations.values() {
        for (m, s) in locs {
            if let Some(e) = out.iter_mut().find(|e| e.executor_id == m.executor_id) {
                e.memory_used += s.memory_size;
                e.disk_used += s.disk_size;
                e.blocks += 1;
            }
        }
    }
    out
}

/// The DAG scheduler asks the master where cached partitions are, to run their tasks there.
impl CacheLocations for BlockManagerMaster {
    fn cache_locations(&self, rdd_id: usize, partition: usize) -> Vec<BlockManagerId> {
        self.locations(BlockId::Rdd { rdd_id, partition })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageLevel;

    fn manager(e: &str) -> BlockManagerId {
        BlockManagerId {
            executor_id: e.into(),
            host: "h".into(),
            port: 1,
        }
    }

    fn status(level: StorageLevel, mem: u64, disk: u64) -> BlockStatus {
        BlockStatus {
            level,
            memory_size: mem,
            disk_size: disk,
        }
    }

    #[test]
    fn tracks_sizes_evictions_and_removals() {
        let m = BlockManagerMaster::new();
        m.register(&manager("0"), 1000);
        m.register(&manager("1"), 1000);
        let b0 = BlockId::Rdd {
            rdd_id: 1,
            partition: 0,
        };
        let b1 = BlockId::Rdd {
            rdd_id: 1,
            partition: 1,
        };
        m.update_block_info(
            &manager("0"),
            b0,
            status(StorageLevel::MEMORY_ONLY, 100, 0),
            None,
        );
        m.update_block_info(
            &manager("1"),
            b1,
            status(StorageLevel::MEMORY_ONLY_SER, 50, 0),
            None,
        );
        assert_eq!(m.rdd_blocks(1), (2, 150, 0));
        // Evicted to disk, then another block dropped.
        m.update_block_info(
            &manager("0"),
            b0,
            status(StorageLevel::DISK_ONLY, 0, 70),
            None,
        );
        m.update_block_info(&manager("1"), b1, BlockStatus::REMOVED, None);
        assert_eq!(m.rdd_blocks(1), (1, 0, 70));
        assert!(m.locations(b1).is_empty());
        let st = m.storage_status();
        assert_eq!(
            (st[0].disk_used, st[0].blocks_evicted, st[1].blocks_evicted),
            (70, 1, 1)
        );
        // unpersist: forgotten first, so the executors' removal reports are no evictions.
        m.remove_rdd(1);
        m.update_block_info(&manager("0"), b0, BlockStatus::REMOVED, None);
        assert_eq!(m.storage_status()[0].blocks_evicted, 1);
        assert_eq!(m.rdd_blocks(1), (0, 0, 0));
        m.update_block_info(
            &manager("1"),
            b0,
            status(StorageLevel::MEMORY_ONLY, 10, 0),
            None,
        );
        m.remove_executor("1");
        assert!(m.locations(b0).is_empty());
        assert_eq!(m.storage_status().len(), 1);
        assert!(m.wait_for(Duration::ZERO, |s| s[0].memory_used == 0));
    }
}
