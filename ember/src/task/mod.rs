//! Tasks: what the scheduler hands to an executor and what comes back.
//!
//! This module is the contract between the scheduler core and the executor (DESIGN.md 1): neither
//! imports the other, both speak these types.

pub mod context;
pub mod metrics;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use context::TaskContext;
pub use metrics::{TaskMetrics, TaskMetricsSnapshot};

/// Task attempt id, unique within an application (Spark's TID).
pub type TaskId = u64;
/// Stage id, unique within an application.
pub type StageId = usize;
/// Job id, unique within an application.
pub type JobId = usize;
/// Shuffle id, unique within an application.
pub type ShuffleId = usize;
/// Executor id: `"driver"` in local mode, `"0"`, `"1"`, … in cluster mode (as in Spark).
pub type ExecutorId = String;

/// Where a block manager lives: the executor and the address its block server listens on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockManagerId {
    pub executor_id: ExecutorId,
    pub host: String,
    pub port: u16,
}

/// What a finished map task reports: where its output is and how large each reduce block is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapStatus {
    pub location: BlockManagerId,
    /// The map partition this output belongs to.
    pub map_index: usize,
    /// Size in bytes (as stored, i.e. compressed) of each reduce partition's block.
    pub sizes: Vec<u64>,
}

/// The body of a result task: runs the final RDD's pipeline on one partition and applies the
/// action's function (Spark's `ResultTask.runTask`).
pub trait ResultFunc: Send + Sync {
    /// Computes the partition and returns the action's per-partition value.
    fn run(&self, partition: usize, ctx: &Arc<TaskContext>) -> Box<dyn Any + Send>;
    /// Computes the partition and returns the value serialized, as it would cross the network.
    fn run_serialized(&self, partition: usize, ctx: &Arc<TaskContext>) -> crate::Result<Vec<u8>>;
    /// Packs this task body for an executor process (see [`crate::ship`]).
    fn ship(&self) -> crate::Result<crate::ship::Shipped>;
}

/// The body of a shuffle map task: runs the parent pipeline on one partition and writes it
/// through the shuffle writer (Spark's `ShuffleMapTask.runTask`).
pub trait ShuffleMapFunc: Send + Sync {
    /// The shuffle this task writes.
    fn shuffle_id(&self) -> ShuffleId;
    /// Computes the partition, writes its shuffle output, and reports where it is.
    fn run(&self, partition: usize, ctx: &Arc<TaskContext>) -> crate::Result<MapStatus>;
    /// Packs this task body for an executor process (see [`crate::ship`]).
    fn ship(&self) -> crate::Result<crate::ship::Shipped>;
}

/// The code of a task set: what every task of a stage runs, on its own partition.
#[derive(Clone)]
pub enum TaskKind {
    Result(Arc<dyn ResultFunc>),
    ShuffleMap(Arc<dyn ShuffleMapFunc>),
}

impl TaskKind {
    /// Packs the task body for an executor process.
    pub fn ship(&self) -> crate::Result<crate::ship::Shipped> {
        match self {
            TaskKind::Result(f) => f.ship(),
            TaskKind::ShuffleMap(m) => m.ship(),
        }
    }
}

impl fmt::Debug for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskKind::Result(_) => f.write_str("ResultTask"),
            TaskKind::ShuffleMap(m) => write!(f, "ShuffleMapTask(shuffle {})", m.shuffle_id()),
        }
    }
}

/// One task attempt assigned to an executor (Spark's `TaskDescription`).
#[derive(Clone, Debug)]
pub struct TaskDescription {
    pub task_id: TaskId,
    pub attempt_number: u32,
    pub executor_id: ExecutorId,
    /// "task 3.0 in stage 1.0", as in Spark's logs.
    pub name: String,
    /// Index of the task within its task set.
    pub index: usize,
    pub partition_id: usize,
    pub stage_id: StageId,
    pub stage_attempt_id: u32,
    /// Cores this task occupies (`ember.task.cpus`).
    pub cpus: u32,
    pub kind: TaskKind,
}

/// The value a successful task produced.
pub enum TaskValue {
    /// A result task's value, handed over without serialization (embedded mode).
    Value(Box<dyn Any + Send>),
    /// A result task's value, serialized (cluster mode, or the forced wire path).
    Bytes(Vec<u8>),
    /// A shuffle map task's output description.
    MapStatus(MapStatus),
    /// A result larger than `ember.driver.maxResultSize`: the executor did not keep it.
    ResultTooLarge { size: u64 },
}

impl fmt::Debug for TaskValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskValue::Value(_) => f.write_str("Value(..)"),
            TaskValue::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            TaskValue::MapStatus(s) => write!(f, "{s:?}"),
            TaskValue::ResultTooLarge { size } => write!(f, "ResultTooLarge({size} bytes)"),
        }
    }
}

/// A successful task's result with the metrics it gathered (Spark's `DirectTaskResult`).
#[derive(Debug)]
pub struct DirectTaskResult {
    pub value: TaskValue,
    pub metrics: TaskMetricsSnapshot,
    /// The attempt's accumulator updates, applied by the DAG scheduler once per partition.
    pub accum_updates: Vec<crate::accumulator::AccumulatorUpdate>,
}

/// Why a task attempt did not succeed (Spark's `TaskEndReason`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaskEndReason {
    /// User code panicked or returned an error. `description` reads like Spark's
    /// "panicked at 'boom', src/main.rs:10:5".
    ExceptionFailure { description: String },
    /// A reduce task could not fetch a map output block: the map stage must be re-run.
    FetchFailed {
        location: Option<BlockManagerId>,
        shuffle_id: ShuffleId,
        map_index: Option<usize>,
        reduce_id: usize,
        message: String,
    },
    /// The task was killed on request (job cancelled, speculative copy lost the race).
    TaskKilled { reason: String },
    /// The executor running the task went away.
    ExecutorLostFailure { executor_id: ExecutorId, exit_caused_by_app: bool, reason: String },
    /// The result could not be fetched from the executor.
    TaskResultLost,
}

impl TaskEndReason {
    /// Whether this failure counts towards `ember.task.maxFailures` (Spark's `countTowardsTaskFailures`).
    pub fn counts_towards_task_failures(&self) -> bool {
        match self {
            TaskEndReason::ExceptionFailure { .. } | TaskEndReason::TaskResultLost => true,
            TaskEndReason::ExecutorLostFailure { exit_caused_by_app, .. } => *exit_caused_by_app,
            TaskEndReason::FetchFailed { .. } | TaskEndReason::TaskKilled { .. } => false,
        }
    }
}

impl fmt::Display for TaskEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskEndReason::ExceptionFailure { description } => f.write_str(description),
            TaskEndReason::FetchFailed { location, shuffle_id, map_index, reduce_id, message } => {
                let loc = location.as_ref().map(|l| format!("{}:{}", l.host, l.port)).unwrap_or_else(|| "null".into());
                let map = map_index.map(|m| m.to_string()).unwrap_or_else(|| "-1".into());
                write!(f, "FetchFailed({loc}, shuffleId={shuffle_id}, mapIndex={map}, reduceId={reduce_id}, message={message})")
            }
            TaskEndReason::TaskKilled { reason } => write!(f, "TaskKilled ({reason})"),
            TaskEndReason::ExecutorLostFailure { executor_id, exit_caused_by_app, reason } => write!(
                f,
                "ExecutorLostFailure (executor {executor_id} exited {} by one of the running tasks) Reason: {reason}",
                if *exit_caused_by_app { "caused" } else { "unrelated to the running tasks" }
            ),
            TaskEndReason::TaskResultLost => f.write_str("TaskResultLost (result lost from block manager)"),
        }
    }
}

/// The state of a task attempt as reported by an executor (Spark's `TaskState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Launching,
    Running,
    Finished,
    Failed,
    Killed,
    Lost,
}

impl TaskState {
    /// Whether the attempt is over.
    pub fn is_finished(self) -> bool {
        matches!(self, TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Lost)
    }
}

/// What an executor reports about a task (Spark's `StatusUpdate` message).
#[derive(Debug)]
pub struct StatusUpdate {
    pub executor_id: ExecutorId,
    pub task_id: TaskId,
    pub state: TaskState,
    pub outcome: TaskOutcome,
}

/// The payload of a [`StatusUpdate`].
#[derive(Debug)]
pub enum TaskOutcome {
    /// No payload (`Running`, `Launching`).
    None,
    /// The task succeeded.
    Success(DirectTaskResult),
    /// The task failed, was killed or lost.
    Failure { reason: TaskEndReason, metrics: Option<TaskMetricsSnapshot> },
}
