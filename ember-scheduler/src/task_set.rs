//! What the DAG scheduler hands the task scheduler, and what the task scheduler reports back.

use ember_common::{
    DirectTaskResult, ExecutorId, JobId, ShuffleId, StageId, TaskEndReason, TaskId, TaskLocation,
};

use crate::locality::TaskLocality;
use crate::task::TaskBody;

/// One task of a task set: which partition, and where it would rather run.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// The partition the task computes.
    pub partition: usize,
    /// Where it would rather run, best first.
    pub preferred_locations: Vec<TaskLocation>,
}

/// The tasks of one stage attempt that are missing (Spark's `TaskSet`).
#[derive(Clone, Debug)]
pub struct TaskSet {
    /// The stage.
    pub stage_id: StageId,
    /// The stage attempt.
    pub stage_attempt_id: u32,
    /// FIFO priority: the id of the job that submitted the stage (lower runs first).
    pub priority: JobId,
    /// The FAIR pool of the submitting job (`ember.scheduler.pool`), "default" when unset.
    pub pool_name: String,
    /// The missing tasks.
    pub tasks: Vec<TaskSpec>,
    /// The shuffle a map stage's tasks write (`None` for a result stage): when an executor is
    /// lost, the outputs it held must be computed again.
    pub shuffle_id: Option<ShuffleId>,
    /// What every task runs.
    pub body: TaskBody,
    /// A barrier stage's task set (Spark's `TaskSet.isBarrier`): all its tasks launch in one
    /// round of offers or none does, none is speculated, and one failure ends the attempt.
    pub barrier: bool,
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
    /// The executor.
    pub executor_id: ExecutorId,
    /// Its host.
    pub host: String,
    /// Its free cores.
    pub cores: u32,
}

/// What the task scheduler reports to the DAG scheduler (Spark's `DAGScheduler.taskStarted`,
/// `taskEnded` and `taskSetFailed` calls, here returned as values so the core stays a plain
/// state machine).
#[derive(Debug)]
// Events are moved, not stored in bulk; a task's result travels inline in `TaskEnded`.
#[allow(clippy::large_enum_variant)]
pub enum SchedulerEvent {
    /// A task attempt was launched, at this locality level; `speculative` for a copy of a task
    /// already running.
    TaskStarted {
        /// The stage.
        stage_id: StageId,
        /// The stage attempt.
        stage_attempt_id: u32,
        /// The attempt.
        task_id: TaskId,
        /// The partition it computes.
        partition: usize,
        /// The locality level it was launched at.
        locality: TaskLocality,
        /// Whether it is a speculative copy.
        speculative: bool,
    },
    /// A task attempt ended. `result` is `Ok` for success.
    TaskEnded {
        /// The stage.
        stage_id: StageId,
        /// The stage attempt.
        stage_attempt_id: u32,
        /// The attempt.
        task_id: TaskId,
        /// The partition it computed.
        partition: usize,
        /// Where it ran.
        executor_id: ExecutorId,
        /// Its result, or why it did not succeed.
        result: Result<DirectTaskResult, TaskEndReason>,
    },
    /// A task set gave up (a task failed too often): abort its stage's jobs with this message.
    TaskSetFailed {
        /// The stage.
        stage_id: StageId,
        /// The stage attempt.
        stage_attempt_id: u32,
        /// Spark's message.
        reason: String,
    },
    /// An executor should stop this running attempt.
    KillTask {
        /// The attempt.
        task_id: TaskId,
        /// Where it runs.
        executor_id: ExecutorId,
        /// Why.
        reason: String,
    },
    /// `excludeOnFailure` wants this executor gone so that a new one replaces it (Spark's
    /// `HealthTracker` asking its `ExecutorAllocationClient` to kill it). A backend that cannot
    /// replace executors ignores it, and the executor is lost only once it has stopped.
    KillExecutor {
        /// The executor.
        executor_id: ExecutorId,
        /// Why, as Spark logs it.
        reason: String,
    },
}
