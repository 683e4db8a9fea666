//! The metrics of one task attempt at one moment (Spark's `TaskMetrics` as it travels with a
//! result or a heartbeat).
//!
//! The live counters a running task updates are `ember`'s business (atomics on the task
//! thread); they are generated from the same field list, [`crate::with_task_metric_fields`], so the
//! two can never disagree on what a task measures.

use serde::{Deserialize, Serialize};

/// Calls macro `$callback` with the documented list of task metric fields, comma-separated.
/// `ember` builds its live counters from it; this crate builds [`TaskMetricsSnapshot`].
#[macro_export]
macro_rules! with_task_metric_fields {
    ($callback:ident) => {
        $callback! {
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
            /// Bytes of broadcast pieces this task fetched (the first reader of a broadcast on an
            /// executor).
            broadcast_bytes_fetched,
            /// Local files this task opened for reading (input splits, shuffle index and data
            /// files, spills).
            file_read_ops,
            /// Local files this task created (shuffle outputs, spills, output part files).
            file_write_ops,
            /// The most execution memory the task held at once (aggregation maps, sort buffers).
            peak_execution_memory,
        }
    };
}

macro_rules! snapshot {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// A copy of a task's metrics at one moment, sent with results and heartbeats.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct TaskMetricsSnapshot { $($(#[$doc])* pub $name: u64,)* }

        impl TaskMetricsSnapshot {
            /// Adds another snapshot into this one (stage totals).
            pub fn merge(&mut self, other: &TaskMetricsSnapshot) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

with_task_metric_fields!(snapshot);
