//! What the scheduler and an executor say about a task: where it would rather run, how its
//! attempt ended, and what it produced.

use std::any::Any;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{BlockManagerId, ExecutorId, ShuffleId, TaskId};
use crate::metrics::TaskMetricsSnapshot;

/// A preferred location of a task (Spark's `TaskLocation`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskLocation {
    /// The partition is cached in this executor's memory: `PROCESS_LOCAL` there.
    Executor {
        /// The executor's host.
        host: String,
        /// The executor.
        executor_id: ExecutorId,
    },
    /// The data is on this host's disk: `NODE_LOCAL` there.
    Host(String),
}

impl TaskLocation {
    /// The host of the location.
    pub fn host(&self) -> &str {
        match self {
            TaskLocation::Executor { host, .. } | TaskLocation::Host(host) => host,
        }
    }
}

/// What a finished map task reports: where its output is and how large each reduce block is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapStatus {
    /// The block manager that serves the output.
    pub location: BlockManagerId,
    /// The map partition this output belongs to.
    pub map_index: usize,
    /// The task attempt that wrote it (Spark's `mapId`, its TID). The output's files and block
    /// requests are named by it, so two attempts of one map partition on the same executor
    /// never share a file: after an indeterminate stage is rolled back, a new attempt's output
    /// cannot be mistaken for one computed from the input that was rolled back.
    pub map_id: u64,
    /// Size in bytes (as stored, i.e. compressed) of each reduce partition's block.
    pub sizes: Vec<u64>,
}

/// One accumulator's update from one task attempt, as it travels in a task result: the
/// accumulator's id and its partial value, serialized. Opaque to everyone but the driver's
/// accumulator registry, which decodes and merges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccumulatorUpdate {
    /// The accumulator's id.
    pub id: u64,
    /// The attempt's partial value, serialized.
    pub bytes: Vec<u8>,
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
    ResultTooLarge {
        /// The result's serialized size.
        size: u64,
    },
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
    /// What the task produced.
    pub value: TaskValue,
    /// The attempt's metrics when it ended.
    pub metrics: TaskMetricsSnapshot,
    /// The attempt's accumulator updates, applied by the driver once per partition.
    pub accum_updates: Vec<AccumulatorUpdate>,
}

/// Why a task attempt did not succeed (Spark's `TaskEndReason`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaskEndReason {
    /// User code panicked or returned an error. `description` reads like Spark's
    /// "panicked at 'boom', src/main.rs:10:5".
    ExceptionFailure {
        /// What went wrong, with its location when known.
        description: String,
    },
    /// A reduce task could not fetch a map output block: the map stage must be re-run.
    FetchFailed {
        /// The block manager that should have served the block, if known.
        location: Option<BlockManagerId>,
        /// The shuffle.
        shuffle_id: ShuffleId,
        /// The map output that could not be read, if known.
        map_index: Option<usize>,
        /// The reduce partition being read.
        reduce_id: usize,
        /// Why the fetch failed.
        message: String,
    },
    /// The task was killed on request (job cancelled, speculative copy lost the race).
    TaskKilled {
        /// Why it was killed.
        reason: String,
    },
    /// The executor running the task went away.
    ExecutorLostFailure {
        /// The executor.
        executor_id: ExecutorId,
        /// Whether the task's own code made it exit (counts as a task failure).
        exit_caused_by_app: bool,
        /// Why the executor is gone.
        reason: String,
    },
    /// The result could not be fetched from the executor.
    TaskResultLost,
}

impl TaskEndReason {
    /// Whether this failure counts towards `ember.task.maxFailures` (Spark's
    /// `countTowardsTaskFailures`).
    pub fn counts_towards_task_failures(&self) -> bool {
        match self {
            TaskEndReason::ExceptionFailure { .. } | TaskEndReason::TaskResultLost => true,
            TaskEndReason::ExecutorLostFailure {
                exit_caused_by_app, ..
            } => *exit_caused_by_app,
            TaskEndReason::FetchFailed { .. } | TaskEndReason::TaskKilled { .. } => false,
        }
    }
}

impl fmt::Display for TaskEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskEndReason::ExceptionFailure { description } => f.write_str(description),
            TaskEndReason::FetchFailed {
                location,
                shuffle_id,
                map_index,
                reduce_id,
                message,
            } => {
                let loc = location
                    .as_ref()
                    .map(|l| format!("{}:{}", l.host, l.port))
                    .unwrap_or_else(|| "null".into());
                let map = map_index
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-1".into());
                write!(
                    f,
                    "FetchFailed({loc}, shuffleId={shuffle_id}, mapIndex={map}, \
                     reduceId={reduce_id}, message={message})"
                )
            }
            TaskEndReason::TaskKilled { reason } => write!(f, "TaskKilled ({reason})"),
            TaskEndReason::ExecutorLostFailure {
                executor_id,
                exit_caused_by_app,
                reason,
            } => write!(
                f,
                "ExecutorLostFailure (executor {executor_id} exited {}) Reason: {reason}",
                if *exit_caused_by_app {
                    "caused by one of the running tasks"
                } else {
                    "unrelated to the running tasks"
                }
            ),
            TaskEndReason::TaskResultLost => {
                f.write_str("TaskResultLost (result lost from block manager)")
            }
        }
    }
}

/// The state of a task attempt as reported by an executor (Spark's `TaskState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Sent to the executor, not started yet.
    Launching,
    /// Running on a task thread.
    Running,
    /// Ended with a result.
    Finished,
    /// Ended with a failure.
    Failed,
    /// Ended because it was asked to stop.
    Killed,
    /// Its executor went away.
    Lost,
}

impl TaskState {
    /// Whether the attempt is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Lost
        )
    }
}

/// What an executor reports about a task (Spark's `StatusUpdate` message).
#[derive(Debug)]
pub struct StatusUpdate {
    /// The executor that ran the attempt.
    pub executor_id: ExecutorId,
    /// The attempt.
    pub task_id: TaskId,
    /// Its new state.
    pub state: TaskState,
    /// What it produced or why it ended.
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
    Failure {
        /// Why.
        reason: TaskEndReason,
        /// The attempt's metrics when it ended, if it got that far.
        metrics: Option<TaskMetricsSnapshot>,
    },
}
