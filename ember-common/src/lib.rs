//! # ember-common
//!
//! The plain data that Ember's crates exchange: ids of tasks, stages, jobs, shuffles, RDDs,
//! executors and blocks; where a block manager lives; what a task reports when it ends (its
//! state, its result, why it failed, its metrics, its accumulator updates); where a task would
//! rather run; and storage levels.
//!
//! `ember-scheduler` decides with these types, `ember-net` carries them, `ember` produces and
//! consumes them. Nothing here does anything: the types are data with a few pure helpers.
//!
//! Architecture invariant: this crate depends on no other Ember crate and knows nothing of
//! threads, sockets, files, clocks, serialization formats or task code. A result value it
//! carries is opaque (`Box<dyn Any>` or bytes); an accumulator update is an id and bytes.

pub mod bytes;
pub mod ids;
pub mod metrics;
pub mod storage_level;
pub mod task;

pub use bytes::bytes_to_string;
pub use ids::{BlockId, BlockManagerId, ExecutorId, JobId, RddId, ShuffleId, StageId, TaskId};
pub use metrics::TaskMetricsSnapshot;
pub use storage_level::StorageLevel;
pub use task::{
    AccumulatorUpdate, DirectTaskResult, MapStatus, StatusUpdate, TaskEndReason, TaskLocation,
    TaskOutcome, TaskState, TaskValue,
};
