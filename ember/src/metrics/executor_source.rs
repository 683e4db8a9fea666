//! The executor's metrics source (Spark's `ExecutorSource`): task-pool gauges and local file-system
//! counters, sent to the driver with every heartbeat.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use ember_common::TaskMetricsSnapshot;

/// One executor's gauges and counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorSourceMetrics {
    /// `threadpool.activeTasks`: tasks running now.
    pub active_tasks: u64,
    /// `threadpool.completeTasks`: tasks that ended (in any state).
    pub complete_tasks: u64,
    /// `threadpool.currentPool_size`: task threads started.
    pub current_pool_size: u64,
    /// `threadpool.maxPool_size`: task threads allowed (the executor's cores).
    pub max_pool_size: u64,
    /// `filesystem.file.read_bytes`: bytes read from local files (input splits, shuffle blocks
    /// read from this executor's disk).
    pub file_read_bytes: u64,
    /// `filesystem.file.write_bytes`: bytes written to local files (shuffle outputs, spills,
    /// output part files).
    pub file_write_bytes: u64,
    /// `filesystem.file.read_ops`: local files opened for reading.
    pub file_read_ops: u64,
    /// `filesystem.file.write_ops`: local files created.
    pub file_write_ops: u64,
    /// Task binaries an executor process holds now (Ember's, not one of Spark's gauges: they
    /// are dropped when their stage attempt is over, so this stays small).
    pub task_binaries: u64,
    /// The most task binaries the executor process ever held at once.
    pub task_binaries_peak: u64,
}

impl ExecutorSourceMetrics {
    /// The metrics under Spark's names, in Spark's order.
    pub fn gauges(&self) -> [(&'static str, u64); 8] {
        [
            ("threadpool.activeTasks", self.active_tasks),
            ("threadpool.completeTasks", self.complete_tasks),
            ("threadpool.currentPool_size", self.current_pool_size),
            ("threadpool.maxPool_size", self.max_pool_size),
            ("filesystem.file.read_bytes", self.file_read_bytes),
            ("filesystem.file.write_bytes", self.file_write_bytes),
            ("filesystem.file.read_ops", self.file_read_ops),
            ("filesystem.file.write_ops", self.file_write_ops),
        ]
    }
}

/// The file-system counters of an executor, summed over its ended tasks.
#[derive(Debug, Default)]
pub struct FileSystemCounters {
    read_bytes: AtomicU64,
    write_bytes: AtomicU64,
    read_ops: AtomicU64,
    write_ops: AtomicU64,
}

impl FileSystemCounters {
    /// Adds an ended task's file activity.
    pub fn add_task(&self, m: &TaskMetricsSnapshot) {
        self.read_bytes
            .fetch_add(m.input_bytes_read + m.shuffle_local_bytes_read, Relaxed);
        self.write_bytes.fetch_add(
            m.shuffle_bytes_written + m.disk_bytes_spilled + m.output_bytes_written,
            Relaxed,
        );
        self.read_ops.fetch_add(m.file_read_ops, Relaxed);
        self.write_ops.fetch_add(m.file_write_ops, Relaxed);
    }

    /// Fills the file-system fields of `out`.
    pub fn fill(&self, out: &mut ExecutorSourceMetrics) {
        out.file_read_bytes = self.read_bytes.load(Relaxed);
        out.file_write_bytes = self.write_bytes.load(Relaxed);
        out.file_read_ops = self.read_ops.load(Relaxed);
        out.file_write_ops = self.write_ops.load(Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_activity_is_summed_under_sparks_names() {
        let c = FileSystemCounters::default();
        let m = TaskMetricsSnapshot {
            input_bytes_read: 10,
            shuffle_local_bytes_read: 5,
            shuffle_bytes_written: 7,
            disk_bytes_spilled: 3,
            file_read_ops: 2,
            file_write_ops: 4,
            ..Default::default()
        };
        c.add_task(&m);
        c.add_task(&m);
        let mut out = ExecutorSourceMetrics::default();
        c.fill(&mut out);
        let g = out.gauges();
        assert_eq!(g[4], ("filesystem.file.read_bytes", 30));
        assert_eq!(g[5], ("filesystem.file.write_bytes", 20));
        assert_eq!(g[6], ("filesystem.file.read_ops", 4));
        assert_eq!(g[7], ("filesystem.file.write_ops", 8));
    }
}
