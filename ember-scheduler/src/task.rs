//! Task bodies, opaque to the core, and the task attempts it hands out.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use ember_common::{ExecutorId, StageId, TaskId};

/// What every task of a stage runs, as the core sees it: nothing it can look into. `ember` puts
/// its task code in (the RDD pipeline and the action or the shuffle writer) and takes it out
/// again with [`TaskBody::downcast_ref`] when it launches an attempt; the core only clones the
/// handle into the attempts it launches.
#[derive(Clone)]
pub struct TaskBody(Arc<dyn Any + Send + Sync>);

impl TaskBody {
    /// Wraps a task body.
    pub fn new<T: Any + Send + Sync>(body: T) -> Self {
        TaskBody(Arc::new(body))
    }

    /// The body, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for TaskBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskBody(..)")
    }
}

/// How Spark's logs name an attempt, "task 3.0 in stage 1.0" (the task's index and attempt
/// number, its stage and stage attempt). Formatted only where it is printed: a `String` built at
/// every launch cost the scheduler's thread as much as the rest of a task's `TaskInfo`
/// (callgrind of W1, 10,000 one-element tasks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskName {
    /// The task's index in its task set.
    pub index: usize,
    /// The attempt's number.
    pub attempt: u32,
    /// The stage.
    pub stage_id: StageId,
    /// The stage attempt.
    pub stage_attempt: u32,
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task {}.{} in stage {}.{}",
            self.index, self.attempt, self.stage_id, self.stage_attempt
        )
    }
}

/// One task attempt assigned to an executor (Spark's `TaskDescription`), as the task scheduler
/// hands it out. The backend that launches it turns the opaque body back into code.
#[derive(Clone, Debug)]
pub struct TaskDescription {
    /// The attempt's id (TID).
    pub task_id: TaskId,
    /// 0 for a task's first attempt, then 1, 2, …
    pub attempt_number: u32,
    /// Where it runs.
    pub executor_id: ExecutorId,
    /// Index of the task within its task set.
    pub index: usize,
    /// The partition it computes.
    pub partition_id: usize,
    /// Its stage.
    pub stage_id: StageId,
    /// Its stage attempt.
    pub stage_attempt_id: u32,
    /// Cores this task occupies (`ember.task.cpus`).
    pub cpus: u32,
    /// What it runs.
    pub body: TaskBody,
    /// For a task of a barrier stage, the number of tasks of its stage attempt (what every
    /// barrier sync waits for); `None` otherwise.
    pub barrier_tasks: Option<usize>,
}

impl TaskDescription {
    /// "task 3.0 in stage 1.0", as in Spark's logs.
    pub fn name(&self) -> TaskName {
        TaskName {
            index: self.index,
            attempt: self.attempt_number,
            stage_id: self.stage_id,
            stage_attempt: self.stage_attempt_id,
        }
    }
}
