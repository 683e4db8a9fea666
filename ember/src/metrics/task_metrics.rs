//! Per-task metrics (Spark's `TaskMetrics`), updated by the task thread, readable from others.
//!
//! The metrics of the attempt running on a thread are also reachable without its task context,
//! so that the layers below tasks (the record codec, the block store's files, input and output
//! files) count their file operations into them ([`count_file_op`]), as Hadoop's per-thread
//! file-system statistics do for Spark.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use ember_common::TaskMetricsSnapshot;

macro_rules! live_metrics {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one task attempt. Updated with relaxed atomics: a task thread writes,
        /// heartbeats read a recent value.
        #[derive(Debug, Default)]
        pub struct TaskMetrics { $($(#[$doc])* pub $name: AtomicU64,)* }

        impl TaskMetrics {
            /// Reads every counter.
            pub fn snapshot(&self) -> TaskMetricsSnapshot {
                TaskMetricsSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

// The same fields as the snapshot that travels with results and heartbeats.
ember_common::with_task_metric_fields!(live_metrics);

impl TaskMetrics {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

thread_local! {
    /// The metrics of the task attempt running on this thread, if any.
    static CURRENT: RefCell<Option<Arc<TaskMetrics>>> = const { RefCell::new(None) };
}

/// Makes `metrics` this thread's current task metrics until the guard is dropped (done by the
/// task context when a task starts running on a thread).
pub fn enter(metrics: &Arc<TaskMetrics>) -> CurrentMetricsGuard {
    CURRENT.with(|c| *c.borrow_mut() = Some(metrics.clone()));
    CurrentMetricsGuard(())
}

/// Clears the thread's current task metrics when dropped.
pub struct CurrentMetricsGuard(());

impl Drop for CurrentMetricsGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// Counts one file opened by the task running on this thread (Spark's file-system statistics
/// behind the executor source's `filesystem.file.*_ops`). Outside a task, nothing is counted.
pub fn count_file_op(write: bool) {
    CURRENT.with(|c| {
        if let Some(m) = c.borrow().as_deref() {
            let counter = if write {
                &m.file_write_ops
            } else {
                &m.file_read_ops
            };
            counter.fetch_add(1, Relaxed);
        }
    });
}
