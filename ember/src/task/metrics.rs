//! Per-task metrics (Spark's `TaskMetrics`), updated by the task thread, readable from others.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

macro_rules! metrics {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one task attempt. Updated with relaxed atomics: a task thread writes,
        /// heartbeats read a recent value.
        #[derive(Debug, Default)]
        pub struct TaskMetrics { $($(#[$doc])* pub $name: AtomicU64,)* }

        /// A copy of [`TaskMetrics`] at one moment, sent with results and heartbeats.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct TaskMetricsSnapshot { $($(#[$doc])* pub $name: u64,)* }

        impl TaskMetrics {
            /// Reads every counter.
            pub fn snapshot(&self) -> TaskMetricsSnapshot {
                TaskMetricsSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }

        impl TaskMetricsSnapshot {
            /// Adds another snapshot into this one (stage totals).
            pub fn merge(&mut self, other: &TaskMetricsSnapshot) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

metrics! {
    /// Wall time the task body ran, in milliseconds.
    executor_run_time_ms,
    /// Records read from the input source (files, parallelized collections).
    input_records_read,
    /// Bytes read from input files.
    input_bytes_read,
    /// Records written by `save_as_text_file`.
    output_records_written,
    /// Bytes written by `save_as_text_file`.
    output_bytes_written,
    /// Records written to shuffle files.
    shuffle_records_written,
    /// Bytes written to shuffle files (compressed, as stored).
    shuffle_bytes_written,
    /// Records read from shuffle blocks.
    shuffle_records_read,
    /// Bytes of shuffle blocks read from this executor's own disk.
    shuffle_local_bytes_read,
    /// Bytes of shuffle blocks fetched from other executors.
    shuffle_remote_bytes_read,
    /// Shuffle blocks fetched.
    shuffle_blocks_fetched,
    /// In-memory size of data spilled to disk.
    memory_bytes_spilled,
    /// Bytes written to disk by spills.
    disk_bytes_spilled,
    /// Size of the serialized result (0 when handed over in memory).
    result_size,
    /// Partitions read from the cache instead of being computed.
    cache_hits,
    /// Bytes of broadcast pieces this task fetched (the first reader of a broadcast on an executor).
    broadcast_bytes_fetched,
    /// Local files this task opened for reading (input splits, shuffle index and data files, spills).
    file_read_ops,
    /// Local files this task created (shuffle outputs, spills, output part files).
    file_write_ops,
    /// The most execution memory the task held at once (aggregation maps, sort buffers).
    peak_execution_memory,
}

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
