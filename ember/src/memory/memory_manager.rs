//! `UnifiedMemoryManager`: the memory budget of one executor, shared by execution and storage
//! with a soft boundary between them (Spark's `UnifiedMemoryManager`, `StorageMemoryPool` and
//! `ExecutionMemoryPool`).
//!
//! The budget (`max_memory`) is `(executor memory - reserved) * ember.memory.fraction`. It is
//! split into two pools whose sizes add up to it, starting at `storage_region`
//! (`ember.memory.storageFraction` of the budget) for storage and the rest for execution:
//!
//! - storage that needs more than its pool borrows whatever execution leaves free;
//! - execution that needs more than its pool takes back free storage memory, and evicts cached
//!   blocks, but only as far as storage had grown beyond its region: blocks within the region are
//!   safe from execution;
//! - storage never evicts execution memory: a block that does not fit is refused.
//!
//! Execution memory is shared fairly among the tasks that hold some: with N of them, a task gets
//! at most 1/N of what execution could have, and waits for others to release memory rather than
//! being refused below 1/(2N), as Spark does, so a task that arrives late is not starved by
//! earlier ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, Weak};

use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::conf::{self, EmberConf};
use crate::error::{EmberError, Result};
use ember_common::BlockId;
use ember_common::TaskId;

/// Drops cached blocks when memory is needed (implemented by the block manager; Spark's
/// `BlockEvictionHandler` together with `MemoryStore.evictBlocksToFreeSpace`).
pub trait BlockEvictor: Send + Sync {
    /// Evicts blocks, least recently used first and never one of the RDD of `for_block` (the block
    /// being stored), until at least `space` bytes of storage memory are freed. All or nothing:
    /// when that much cannot be freed nothing is evicted. Returns the bytes freed.
    ///
    /// Called with the memory manager's lock held, so it must not call back into the memory
    /// manager; the caller accounts for the freed bytes itself.
    fn evict_blocks_to_free_space(&self, for_block: Option<BlockId>, space: u64) -> u64;
}

/// The sizes an executor's memory manager works with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Execution plus storage memory, in bytes.
    pub max_memory: u64,
    /// Storage memory that execution cannot evict, in bytes.
    pub storage_region: u64,
}

/// What set the memory a budget is computed from, so that a size too small is reported against
/// what the user actually wrote.
#[derive(Clone, Copy, Debug)]
pub enum MemorySource<'a> {
    /// A configuration key (`ember.driver.memory`, `ember.executor.memory`).
    Key(&'a str),
    /// The MEM field of a `local-cluster[N,C,MEM]` master URL.
    MasterUrl(&'a str),
    /// An executor process's `--memory` argument.
    ExecutorFlag,
}

impl MemoryConfig {
    /// The budget of an executor of `system_memory` bytes, whose size was set by `source`
    /// (named in the error when it is too small). Spark's `getMaxMemory`: the memory must be at
    /// least 1.5 times `ember.testing.reservedMemory`.
    pub fn from_conf(
        conf: &EmberConf,
        system_memory: u64,
        source: MemorySource<'_>,
    ) -> Result<Self> {
        let reserved = conf.get_size_bytes(conf::TESTING_RESERVED_MEMORY)?;
        let min_system = reserved.saturating_mul(3).div_ceil(2);
        if system_memory < min_system {
            let need = format!(
                "executors need at least {} ({min_system} bytes): 1.5 times the {} reserved for \
                 the system (ember.testing.reservedMemory)",
                crate::util::bytes_to_string(min_system),
                crate::util::bytes_to_string(reserved),
            );
            return Err(match source {
                MemorySource::Key(key) => conf.bad(
                    key,
                    conf.get(key),
                    &format!("{need}; give more memory with {key}"),
                ),
                MemorySource::MasterUrl(url) => conf.bad(
                    conf::MASTER,
                    url,
                    &format!(
                        "its MEM field gives each executor {} MiB, but {need}; write a larger MEM \
                         (in MiB) in local-cluster[N,C,MEM]",
                        system_memory >> 20
                    ),
                ),
                MemorySource::ExecutorFlag => EmberError::Argument(format!(
                    "--memory {}: {need}; give the executor more with --memory",
                    crate::util::bytes_to_string(system_memory)
                )),
            });
        }
        // Both within their bounds (`(0, 1]`, `[0, 1)`): the getter applies the table's check.
        let fraction = conf.get_f64(conf::MEMORY_FRACTION)?;
        let storage_fraction = conf.get_f64(conf::MEMORY_STORAGE_FRACTION)?;
        let max_memory = ((system_memory - reserved) as f64 * fraction) as u64;
        Ok(MemoryConfig {
            max_memory,
            storage_region: (max_memory as f64 * storage_fraction) as u64,
        })
    }

    /// A budget of `max_memory` bytes with `storage_region` of them safe from eviction.
    pub fn fixed(max_memory: u64, storage_region: u64) -> Self {
        MemoryConfig {
            max_memory,
            storage_region: storage_region.min(max_memory),
        }
    }
}

/// What an executor's memory manager holds now: the executor-level memory metrics of the status
/// API (Spark's `peakExecutionMemory`/`storageMemory` gauges).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryMetrics {
    /// Execution plus storage memory, in bytes.
    pub max_memory: u64,
    /// Storage memory that execution cannot evict, in bytes.
    pub storage_region: u64,
    /// Bytes held by cached blocks and partitions being unrolled.
    pub storage_used: u64,
    /// Bytes held by running tasks.
    pub execution_used: u64,
}

struct Pools {
    storage_pool: u64,
    storage_used: u64,
    execution_pool: u64,
    execution_used: u64,
    /// Execution memory of each task that holds some (Spark's `memoryForTask`).
    by_task: FxHashMap<TaskId, u64>,
}

impl Pools {
    fn storage_free(&self) -> u64 {
        self.storage_pool - self.storage_used
    }
    fn execution_free(&self) -> u64 {
        self.execution_pool - self.execution_used
    }
}

/// The memory budget of one executor, shared by execution and storage (see the module docs).
pub struct UnifiedMemoryManager {
    config: MemoryConfig,
    pools: Mutex<Pools>,
    /// Woken when memory is released, for tasks waiting for their fair share.
    released: Condvar,
    evictor: OnceLock<Weak<dyn BlockEvictor>>,
    /// Copies of the used counters, readable without the lock (the eviction path reports metrics
    /// while the lock is held).
    storage_used: AtomicU64,
    execution_used: AtomicU64,
}

impl UnifiedMemoryManager {
    /// A manager with this budget and nothing used.
    pub fn new(config: MemoryConfig) -> Self {
        UnifiedMemoryManager {
            config,
            pools: Mutex::new(Pools {
                storage_pool: config.storage_region,
                storage_used: 0,
                execution_pool: config.max_memory - config.storage_region,
                execution_used: 0,
                by_task: FxHashMap::default(),
            }),
            released: Condvar::new(),
            evictor: OnceLock::new(),
            storage_used: AtomicU64::new(0),
            execution_used: AtomicU64::new(0),
        }
    }

    /// Sets who evicts cached blocks (the block manager; weak, since it owns this manager).
    pub fn set_evictor(&self, evictor: Weak<dyn BlockEvictor>) {
        let _ = self.evictor.set(evictor);
    }

    /// The budget.
    pub fn config(&self) -> MemoryConfig {
        self.config
    }

    /// The current use, read without waiting for the lock (may lag an eviction in progress).
    pub fn metrics(&self) -> MemoryMetrics {
        MemoryMetrics {
            max_memory: self.config.max_memory,
            storage_region: self.config.storage_region,
            storage_used: self.storage_used.load(Ordering::Relaxed),
            execution_used: self.execution_used.load(Ordering::Relaxed),
        }
    }

    /// Storage memory the executor could have now: all that execution does not hold (Spark's
    /// `maxOnHeapStorageMemory`).
    pub fn max_storage_memory(&self) -> u64 {
        self.config.max_memory - self.pools.lock().execution_used
    }

    fn publish(&self, p: &Pools) {
        self.storage_used.store(p.storage_used, Ordering::Relaxed);
        self.execution_used
            .store(p.execution_used, Ordering::Relaxed);
    }

    fn evict(&self, for_block: Option<BlockId>, space: u64) -> u64 {
        match self.evictor.get().and_then(Weak::upgrade) {
            Some(e) => e.evict_blocks_to_free_space(for_block, space),
            None => 0,
        }
    }

    /// Reserves `bytes` of storage memory for `block` (a block to cache, or a partition being
    /// unrolled), borrowing free execution memory and evicting other RDDs' blocks as needed.
    /// False when it does not fit.
    pub fn acquire_storage_memory(&self, block: BlockId, bytes: u64) -> bool {
        let mut p = self.pools.lock();
        let max_storage = self.config.max_memory - p.execution_used;
        if bytes > max_storage {
            debug!(
                "Will not store {block}: {bytes} bytes exceed the storage memory limit \
                 ({max_storage} bytes)"
            );
            return false;
        }
        if bytes > p.storage_free() {
            let borrowed = p.execution_free().min(bytes - p.storage_free());
            p.execution_pool -= borrowed;
            p.storage_pool += borrowed;
        }
        if bytes > p.storage_free() {
            let needed = bytes - p.storage_free();
            let freed = self.evict(Some(block), needed);
            p.storage_used -= freed.min(p.storage_used);
        }
        let granted = bytes <= p.storage_free();
        if granted {
            p.storage_used += bytes;
        }
        self.publish(&p);
        granted
    }

    /// Returns storage memory (a block dropped or removed, an unroll given up).
    pub fn release_storage_memory(&self, bytes: u64) {
        let mut p = self.pools.lock();
        if bytes > p.storage_used {
            warn!(
                "releasing {bytes} bytes of storage memory while only {} are in use",
                p.storage_used
            );
        }
        p.storage_used -= bytes.min(p.storage_used);
        self.publish(&p);
        self.released.notify_all();
    }

    /// Reserves up to `bytes` of execution memory for a task; returns how much it got (possibly
    /// less, possibly 0, in which case the caller spills). May evict cached blocks that storage
    /// borrowed beyond its region, and may wait until other tasks release memory when this task
    /// holds less than its minimal share (Spark's `ExecutionMemoryPool.acquireMemory`).
    pub fn acquire_execution_memory(&self, task: TaskId, bytes: u64) -> u64 {
        if bytes == 0 {
            return 0;
        }
        let mut p = self.pools.lock();
        p.by_task.entry(task).or_insert(0);
        loop {
            let active = p.by_task.len() as u64;
            let current = p.by_task.get(&task).copied().unwrap_or(0);
            self.maybe_grow_execution_pool(&mut p, bytes);
            // What execution could have if it evicted all storage beyond the region: the cap of
            // each task's share.
            let max_pool = self.config.max_memory - p.storage_used.min(self.config.storage_region);
            let max_per_task = max_pool / active;
            let min_per_task = p.execution_pool / (2 * active);
            let max_to_grant = bytes.min(max_per_task.saturating_sub(current));
            let to_grant = max_to_grant.min(p.execution_free());
            if to_grant < bytes && current + to_grant < min_per_task {
                debug!(
                    "TID {task} waiting for at least 1/2N of the execution memory pool to be free"
                );
                self.released.wait(&mut p);
                continue;
            }
            *p.by_task.entry(task).or_insert(0) += to_grant;
            p.execution_used += to_grant;
            self.publish(&p);
            return to_grant;
        }
    }

    /// Grows the execution pool by `extra` bytes at most, taking free storage memory, then
    /// evicting blocks storage borrowed beyond its region.
    fn maybe_grow_execution_pool(&self, p: &mut Pools, wanted: u64) {
        let free = p.execution_free();
        if wanted <= free {
            return;
        }
        let extra = wanted - free;
        let reclaimable = p
            .storage_free()
            .max(p.storage_pool.saturating_sub(self.config.storage_region));
        if reclaimable == 0 {
            return;
        }
        let to_reclaim = extra.min(reclaimable);
        let from_free = to_reclaim.min(p.storage_free());
        let mut reclaimed = from_free;
        if to_reclaim > from_free {
            let freed = self.evict(None, to_reclaim - from_free);
            p.storage_used -= freed.min(p.storage_used);
            reclaimed += freed;
        }
        // Whole blocks may free more than asked: the rest stays free storage memory.
        let reclaimed = reclaimed.min(to_reclaim).min(p.storage_free());
        p.storage_pool -= reclaimed;
        p.execution_pool += reclaimed;
    }

    /// Returns execution memory of a task.
    pub fn release_execution_memory(&self, task: TaskId, bytes: u64) {
        let mut p = self.pools.lock();
        let current = p.by_task.get(&task).copied().unwrap_or(0);
        if bytes > current {
            warn!("TID {task} releases {bytes} bytes of execution memory but holds only {current}");
        }
        let released = bytes.min(current);
        if current - released == 0 {
            p.by_task.remove(&task);
        } else {
            p.by_task.insert(task, current - released);
        }
        p.execution_used -= released;
        self.publish(&p);
        self.released.notify_all();
    }

    /// Returns all the execution memory a task still holds; returns how much that was.
    pub fn release_all_execution_memory_for_task(&self, task: TaskId) -> u64 {
        let mut p = self.pools.lock();
        let held = p.by_task.remove(&task).unwrap_or(0);
        p.execution_used -= held;
        self.publish(&p);
        self.released.notify_all();
        held
    }

    /// Execution memory a task holds now.
    pub fn execution_memory_of_task(&self, task: TaskId) -> u64 {
        self.pools.lock().by_task.get(&task).copied().unwrap_or(0)
    }

    /// The current sizes of the two pools: `(storage pool, execution pool)`.
    pub fn pool_sizes(&self) -> (u64, u64) {
        let p = self.pools.lock();
        (p.storage_pool, p.execution_pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Cached blocks in LRU order (front = least recently used), all of RDD `rdd`.
    #[derive(Default)]
    struct FakeStore {
        blocks: Mutex<Vec<(BlockId, u64)>>,
        evicted: Mutex<Vec<BlockId>>,
    }

    impl BlockEvictor for FakeStore {
        fn evict_blocks_to_free_space(&self, for_block: Option<BlockId>, space: u64) -> u64 {
            let mut blocks = self.blocks.lock();
            let rdd_of = |b: &BlockId| match b {
                BlockId::Rdd { rdd_id, .. } => *rdd_id,
            };
            let mut chosen = Vec::new();
            let mut freed = 0;
            for (b, size) in blocks.iter() {
                if freed >= space {
                    break;
                }
                if for_block.is_some_and(|f| rdd_of(&f) == rdd_of(b)) {
                    continue;
                }
                chosen.push(*b);
                freed += size;
            }
            if freed < space {
                return 0;
            }
            blocks.retain(|(b, _)| !chosen.contains(b));
            self.evicted.lock().extend(chosen);
            freed
        }
    }

    fn block(rdd_id: usize, partition: usize) -> BlockId {
        BlockId::Rdd { rdd_id, partition }
    }

    fn manager(max: u64, region: u64) -> (Arc<UnifiedMemoryManager>, Arc<FakeStore>) {
        let mm = Arc::new(UnifiedMemoryManager::new(MemoryConfig::fixed(max, region)));
        let store = Arc::new(FakeStore::default());
        let weak: Weak<dyn BlockEvictor> =
            Arc::downgrade(&(store.clone() as Arc<dyn BlockEvictor>));
        mm.set_evictor(weak);
        (mm, store)
    }

    /// Stores a block both in the manager's accounting and in the fake store.
    fn cache(mm: &UnifiedMemoryManager, store: &FakeStore, b: BlockId, size: u64) -> bool {
        let ok = mm.acquire_storage_memory(b, size);
        if ok {
            store.blocks.lock().push((b, size));
        }
        ok
    }

    #[test]
    fn budget_follows_spark_formula_and_refuses_small_memory() {
        let conf = EmberConf::new();
        let c = MemoryConfig::from_conf(&conf, 1 << 30, MemorySource::Key(conf::EXECUTOR_MEMORY))
            .unwrap();
        let usable = ((1u64 << 30) - (300 << 20)) as f64 * 0.6;
        assert_eq!(c.max_memory, usable as u64);
        assert_eq!(c.storage_region, (c.max_memory as f64 * 0.5) as u64);
        let e = MemoryConfig::from_conf(&conf, 400 << 20, MemorySource::Key(conf::EXECUTOR_MEMORY))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ember.executor.memory") && e.contains("ember.testing.reservedMemory"),
            "{e}"
        );
        // The value as the user wrote it, not a conversion of it.
        let small = EmberConf::new().set(conf::EXECUTOR_MEMORY, "1k");
        let e = MemoryConfig::from_conf(&small, 1024, MemorySource::Key(conf::EXECUTOR_MEMORY))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"1k\"") && e.contains("give more memory with ember.executor.memory"),
            "{e}"
        );
        // A local-cluster URL's MEM field is named as such, in MiB, with the URL.
        let url = EmberConf::new().set(conf::MASTER, "local-cluster[2,1,1]");
        let e = MemoryConfig::from_conf(
            &url,
            1 << 20,
            MemorySource::MasterUrl("local-cluster[2,1,1]"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("local-cluster[2,1,1]")
                && e.contains("MEM field gives each executor 1 MiB")
                && !e.contains("ember.executor.memory"),
            "{e}"
        );
        let tiny = EmberConf::new().set(conf::TESTING_RESERVED_MEMORY, "0");
        let c = MemoryConfig::from_conf(&tiny, 10 << 20, MemorySource::Key(conf::DRIVER_MEMORY))
            .unwrap();
        assert_eq!(c.max_memory, 6 << 20);
        let bad = EmberConf::new().set(conf::MEMORY_FRACTION, "1.5");
        assert!(
            MemoryConfig::from_conf(&bad, 1 << 30, MemorySource::Key(conf::EXECUTOR_MEMORY))
                .unwrap_err()
                .to_string()
                .contains("ember.memory.fraction")
        );
    }

    #[test]
    fn storage_borrows_free_execution_memory() {
        let (mm, store) = manager(1000, 500);
        assert!(
            cache(&mm, &store, block(0, 0), 800),
            "storage grows past its region into free execution memory"
        );
        assert_eq!(mm.pool_sizes(), (800, 200));
        assert_eq!(mm.metrics().storage_used, 800);
        // Execution takes back what storage borrowed beyond its region by evicting, not more.
        assert_eq!(mm.acquire_execution_memory(1, 500), 500);
        assert_eq!(*store.evicted.lock(), vec![block(0, 0)]);
        assert_eq!(mm.metrics().storage_used, 0);
        assert_eq!(mm.metrics().execution_used, 500);
        mm.release_execution_memory(1, 500);
        assert_eq!(mm.metrics().execution_used, 0);
    }

    #[test]
    fn execution_cannot_evict_within_the_storage_region() {
        let (mm, store) = manager(1000, 500);
        assert!(cache(&mm, &store, block(0, 0), 400));
        assert_eq!(
            mm.acquire_execution_memory(1, 1000),
            600,
            "only what storage does not hold of its region"
        );
        assert!(store.evicted.lock().is_empty());
        // Storage is refused what execution holds.
        assert!(!cache(&mm, &store, block(1, 0), 500));
        assert_eq!(mm.release_all_execution_memory_for_task(1), 600);
        assert!(
            cache(&mm, &store, block(1, 0), 500),
            "free execution memory is lent to storage again"
        );
        assert!(store.evicted.lock().is_empty());
    }

    #[test]
    fn storage_evicts_least_recently_used_blocks_of_other_rdds() {
        let (mm, store) = manager(1000, 500);
        for p in 0..4 {
            assert!(cache(&mm, &store, block(0, p), 250));
        }
        // A block of RDD 1 evicts RDD 0's oldest blocks, as few as needed.
        assert!(cache(&mm, &store, block(1, 0), 300));
        assert_eq!(*store.evicted.lock(), vec![block(0, 0), block(0, 1)]);
        assert_eq!(mm.metrics().storage_used, 800);
        assert!(cache(&mm, &store, block(1, 1), 400));
        assert_eq!(
            *store.evicted.lock(),
            vec![block(0, 0), block(0, 1), block(0, 2)]
        );
        // A block of RDD 1 never evicts RDD 1's blocks, and RDD 0's last one is not enough.
        assert!(!cache(&mm, &store, block(1, 2), 400));
        assert_eq!(
            store.evicted.lock().len(),
            3,
            "nothing evicted for a block that is refused"
        );
        assert!(
            !mm.acquire_storage_memory(block(2, 0), 1001),
            "larger than the whole budget"
        );
    }

    #[test]
    fn execution_is_shared_fairly_between_tasks() {
        let (mm, _) = manager(1000, 0);
        assert_eq!(mm.acquire_execution_memory(1, 400), 400);
        // Two active tasks: each may have at most half.
        assert_eq!(mm.acquire_execution_memory(2, 800), 500);
        assert_eq!(mm.acquire_execution_memory(1, 300), 100);
        assert_eq!(mm.execution_memory_of_task(1), 500);
        assert_eq!(
            mm.acquire_execution_memory(1, 10),
            0,
            "refused: the caller spills"
        );
        mm.release_execution_memory(2, 500);
        assert_eq!(mm.execution_memory_of_task(2), 0);
        assert_eq!(
            mm.acquire_execution_memory(1, 500),
            500,
            "alone again, task 1 may have it all"
        );
    }

    #[test]
    fn a_task_below_its_minimal_share_waits_for_memory() {
        let (mm, _) = manager(1000, 0);
        assert_eq!(mm.acquire_execution_memory(1, 1000), 1000);
        let waiter = {
            let mm = mm.clone();
            std::thread::spawn(move || mm.acquire_execution_memory(2, 300))
        };
        // Task 2 cannot return before task 1 releases: it has nothing and needs 1/4 at least.
        while mm.pools.lock().by_task.len() < 2 {
            std::thread::yield_now();
        }
        mm.release_execution_memory(1, 600);
        assert_eq!(waiter.join().unwrap(), 300);
    }
}
