//! `TaskMemoryManager`: the execution memory of one running task (Spark's `TaskMemoryManager`).
//!
//! Every task attempt gets one, through its task context (`TaskContext::task_memory_manager`). What
//! the task still holds when it ends is released by the executor and, if the task succeeded,
//! reported as a leak (`Managed memory leak detected; size = N bytes, TID = T`), and fails the task
//! when `ember.unsafe.exceptionOnMemoryLeak` is true.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::UnifiedMemoryManager;
use ember_common::TaskId;

/// Execution memory of one task attempt.
pub struct TaskMemoryManager {
    manager: Arc<UnifiedMemoryManager>,
    task_id: TaskId,
    /// Bytes held now; only the task's own thread changes it, others read it.
    used: AtomicU64,
    peak: AtomicU64,
}

impl TaskMemoryManager {
    /// The memory of task `task_id` in `manager`.
    pub fn new(manager: Arc<UnifiedMemoryManager>, task_id: TaskId) -> Self {
        TaskMemoryManager {
            manager,
            task_id,
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        }
    }

    /// Reserves up to `bytes` of execution memory; returns how much was granted (0 or less than
    /// asked when memory is short: the caller should spill, or do with less).
    pub fn acquire_execution_memory(&self, bytes: u64) -> u64 {
        let got = self.manager.acquire_execution_memory(self.task_id, bytes);
        let now = self.used.fetch_add(got, Ordering::Relaxed) + got;
        self.peak.fetch_max(now, Ordering::Relaxed);
        got
    }

    /// Returns execution memory reserved with [`TaskMemoryManager::acquire_execution_memory`].
    pub fn release_execution_memory(&self, bytes: u64) {
        let held = self.used.load(Ordering::Relaxed);
        let bytes = bytes.min(held);
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        self.manager.release_execution_memory(self.task_id, bytes);
    }

    /// Execution memory the task holds now.
    pub fn memory_used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The most execution memory the task held at once (Spark's `peakExecutionMemory`).
    pub fn peak_memory_used(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Releases everything the task still holds, at its end; returns how much that was (a
    /// leak, if the task thought it had released everything).
    pub fn cleanup_all_allocated_memory(&self) -> u64 {
        self.used.store(0, Ordering::Relaxed);
        self.manager
            .release_all_execution_memory_for_task(self.task_id)
    }

    /// The task attempt this memory belongs to.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }
}

impl std::fmt::Debug for TaskMemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TaskMemoryManager(TID {}, {} bytes)",
            self.task_id,
            self.memory_used()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryConfig;

    #[test]
    fn tracks_use_peak_and_leaks() {
        let mm = Arc::new(UnifiedMemoryManager::new(MemoryConfig::fixed(1000, 500)));
        let t = TaskMemoryManager::new(mm.clone(), 7);
        assert_eq!(t.acquire_execution_memory(300), 300);
        assert_eq!(t.acquire_execution_memory(300), 300);
        t.release_execution_memory(500);
        assert_eq!(t.memory_used(), 100);
        assert_eq!(t.peak_memory_used(), 600);
        t.release_execution_memory(1000); // more than held: only what it holds goes back
        assert_eq!(mm.metrics().execution_used, 0);
        assert_eq!(
            t.acquire_execution_memory(2000),
            1000,
            "at most the whole budget"
        );
        assert_eq!(
            t.cleanup_all_allocated_memory(),
            1000,
            "what is left at the end is reported"
        );
        assert_eq!(mm.metrics().execution_used, 0);
        assert_eq!(t.cleanup_all_allocated_memory(), 0);
    }
}
