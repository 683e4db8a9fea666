//! Per-task metrics (Spark's `TaskMetrics`), updated by the task thread, readable from others.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

/// Counts one file opened by the task running on this thread (Spark's file-system statistics
/// behind the executor source's `filesystem.file.*_ops`). Outside a task, nothing is counted.
pub fn count_file_op(write: bool) {
    super::TaskContext::with_current(|ctx| {
        if let Some(ctx) = ctx {
            let c = if write { &ctx.metrics.file_write_ops } else { &ctx.metrics.file_read_ops };
            c.fetch_add(1, Relaxed);
        }
    });
}

impl TaskMetrics {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}
