//! What the DAG scheduler hands the task scheduler, and what the task scheduler reports back.

use super::locality::TaskLocality;
use crate::task::{DirectTaskResult, ExecutorId, JobId, StageId, TaskEndReason, TaskId, TaskKind};

pub use ember_common::TaskLocation;

/// One task of a task set: which partition, and where it would rather run.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub partition: usize,
    pub preferred_locations: Vec<TaskLocation>,
}

/// The tasks of one stage attempt that are missing (Spark's `TaskSet`).
#[derive(Clone, Debug)]
pub struct TaskSet {
    pub stage_id: StageId,
    pub stage_attempt_id: u32,
    /// FIFO priority: the id of the job that submitted the stage (lower runs first).
    pub priority: JobId,
    /// The FAIR pool of the submitting job (`ember.scheduler.pool`), "default" when unset.
    pub pool_name: String,
    pub tasks: Vec<TaskSpec>,
    pub kind: TaskKind,
}

impl TaskSet {
    /// "1.0" for stage 1, attempt 0: how Spark names a task set in its logs.
    pub fn id(&self) -> String {
        format!("{}.{}", self.stage_id, self.stage_attempt_id)
    }
}

/// Free resources of one executor (Spark's `WorkerOffer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerOffer {
    pub executor_id: ExecutorId,
    pub host: String,
    pub cores: u32,
}

/// What the task scheduler reports to the DAG scheduler (Spark's `DAGScheduler.taskStarted`,
/// `taskEnded` and `taskSetFailed` calls, here returned as values so the core stays a plain
/// state machine).
#[derive(Debug)]
pub enum SchedulerEvent {
    /// A task attempt was launched, at this locality level; `speculative` for a copy of a task
    /// already running.
    TaskStarted { stage_id: StageId, stage_attempt_id: u32, task_id: TaskId, partition: usize, locality: TaskLocality, speculative: bool },
    /// A task attempt ended. `result` is `Ok` for success.
    TaskEnded {
        stage_id: StageId,
        stage_attempt_id: u32,
        task_id: TaskId,
        partition: usize,
        executor_id: ExecutorId,
        result: Result<DirectTaskResult, TaskEndReason>,
    },
    /// A task set gave up (a task failed too often): abort its stage's jobs with this message.
    TaskSetFailed { stage_id: StageId, stage_attempt_id: u32, reason: String },
    /// An executor should stop this running attempt.
    KillTask { task_id: TaskId, executor_id: ExecutorId, reason: String },
}
