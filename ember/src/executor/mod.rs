//! The executor side: a pool of task threads that runs tasks and reports their status
//! (Spark's `Executor`, `TaskRunner` and the executor backend interface).

// Spark's `Executor` class in Spark's `executor` package: the name users look for.
#[allow(clippy::module_inception)]
pub mod executor;
pub mod process;
#[allow(unsafe_code)]
pub(crate) mod stack_guard;
pub mod task_runner;

pub use executor::{Executor, ExecutorBackend, ExecutorMonitor};
