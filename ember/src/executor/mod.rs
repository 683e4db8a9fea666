//! The executor side: a pool of task threads that runs tasks and reports their status
//! (Spark's `Executor`, `TaskRunner` and the executor backend interface).

pub mod executor;
pub mod process;
pub mod task_runner;

pub use executor::{Executor, ExecutorBackend, ExecutorMonitor};
pub use crate::metrics::ExecutorSourceMetrics;
