//! Metrics: the live counters of a task attempt ([`TaskMetrics`], Spark's `TaskMetrics`) and an
//! executor's metrics source ([`ExecutorSourceMetrics`], Spark's `ExecutorSource`), which travel to
//! the driver with results and heartbeats.
//!
//! A leaf: it knows no other module of this crate, so every layer can count into it.

pub mod executor_source;
pub mod task_metrics;

pub use executor_source::{ExecutorSourceMetrics, FileSystemCounters};
pub use task_metrics::{count_file_op, TaskMetrics};
