//! `MemoryConsumer`: the execution memory behind one growing collection of a task (the role of
//! Spark's `Spillable` and `MemoryConsumer`).
//!
//! An aggregation map or sort buffer reports its estimated size now and then; the consumer
//! reserves execution memory ahead of it (twice the current size, so the number of requests grows
//! with the logarithm of the final size) and answers "spill" when the task's memory manager
//! refuses. `ember.shuffle.spill.threshold` stays an upper bound: past it the collection spills
//! whatever memory is free. Outside a task (unit tests of the shuffle) only that bound applies.

use std::sync::Arc;

use super::TaskMemoryManager;

/// A reservation of execution memory that follows a collection's size and says when to spill.
/// Released when the collection spills ([`MemoryConsumer::release`]) and when dropped.
#[derive(Debug)]
pub struct MemoryConsumer {
    task: Option<Arc<TaskMemoryManager>>,
    reserved: u64,
    /// `ember.shuffle.spill.threshold`: spill past this size whatever memory is free.
    cap: u64,
}

impl MemoryConsumer {
    /// A consumer of `task`'s memory (or of no task: then only `cap` applies).
    pub fn new(task: Option<Arc<TaskMemoryManager>>, cap: u64) -> Self {
        MemoryConsumer {
            task,
            reserved: 0,
            cap,
        }
    }

    /// Whether a collection of `estimate` bytes must spill now: it is past the cap, or it outgrew
    /// its reservation and the task could not get more memory.
    #[inline]
    pub fn should_spill(&mut self, estimate: u64) -> bool {
        if estimate <= self.reserved {
            return false;
        }
        self.grow(estimate)
    }

    #[cold]
    fn grow(&mut self, estimate: u64) -> bool {
        if estimate > self.cap {
            return true;
        }
        let Some(task) = &self.task else { return false };
        let want = estimate
            .saturating_mul(2)
            .min(self.cap)
            .saturating_sub(self.reserved);
        self.reserved += task.acquire_execution_memory(want);
        estimate > self.reserved
    }

    /// Reserves `bytes` more outright; returns how much was granted.
    #[cfg(any(test, feature = "testing"))]
    pub fn acquire(&mut self, bytes: u64) -> u64 {
        let Some(task) = &self.task else { return 0 };
        let got = task.acquire_execution_memory(bytes);
        self.reserved += got;
        got
    }

    /// Gives the whole reservation back (after a spill emptied the collection).
    pub fn release(&mut self) {
        if let Some(task) = &self.task {
            if self.reserved > 0 {
                task.release_execution_memory(self.reserved);
            }
        }
        self.reserved = 0;
    }

    /// Bytes reserved now.
    #[cfg(any(test, feature = "testing"))]
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryConfig, UnifiedMemoryManager};

    #[test]
    fn reserves_ahead_and_spills_when_refused() {
        let mm = Arc::new(UnifiedMemoryManager::new(MemoryConfig::fixed(1000, 0)));
        let task = Arc::new(TaskMemoryManager::new(mm.clone(), 1));
        let mut c = MemoryConsumer::new(Some(task.clone()), 1 << 20);
        assert!(!c.should_spill(100));
        assert_eq!(c.reserved(), 200, "twice the size, ahead of growth");
        assert!(!c.should_spill(150), "within the reservation: no request");
        assert!(!c.should_spill(400));
        assert_eq!(c.reserved(), 800);
        assert!(c.should_spill(1200), "the budget is 1000: refused, spill");
        c.release();
        assert_eq!(mm.metrics().execution_used, 0);
        assert!(!c.should_spill(300));
        drop(c);
        assert_eq!(task.memory_used(), 0, "dropping releases");
    }

    #[test]
    fn the_spill_threshold_stays_an_upper_bound() {
        let mut outside = MemoryConsumer::new(None, 1000);
        assert!(!outside.should_spill(999));
        assert!(outside.should_spill(1001));
        let mm = Arc::new(UnifiedMemoryManager::new(MemoryConfig::fixed(1 << 30, 0)));
        let mut c = MemoryConsumer::new(Some(Arc::new(TaskMemoryManager::new(mm, 1))), 1000);
        assert!(!c.should_spill(900));
        assert_eq!(c.reserved(), 1000, "never more than the cap");
        assert!(c.should_spill(1001));
    }
}
