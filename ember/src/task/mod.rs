//! Tasks: what an executor runs and what comes back (Spark's `Task`, `TaskContext`,
//! `TaskDescription`).
//!
//! This module is the contract between the driver's scheduling and the executor:
//! the executor never imports the scheduler, both speak these types (and `ember-common`'s). A
//! running task reaches its executor through [`services::ExecutorServices`], a trait, so nothing
//! here depends on the executor either.

pub mod barrier;
pub mod context;
pub mod services;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use barrier::BarrierTaskContext;
pub use context::{TaskAccumulator, TaskContext};
pub use services::{BarrierSyncSource, BroadcastValues, ExecutorServices, MapOutputSource};

pub use crate::metrics::TaskMetrics;

pub use ember_common::{
    BlockManagerId, DirectTaskResult, ExecutorId, JobId, MapStatus, ShuffleId, StageId,
    StatusUpdate, TaskEndReason, TaskId, TaskLocation, TaskMetricsSnapshot, TaskOutcome, TaskState,
    TaskValue,
};

/// The body of a result task: runs the final RDD's pipeline on one partition and applies the
/// action's function (Spark's `ResultTask.runTask`).
pub trait ResultFunc: Send + Sync {
    /// Computes the partition and returns the action's per-partition value, with the size it
    /// would have serialized when `measure` (0 otherwise): local mode hands values over without
    /// serializing them, yet `ember.driver.maxResultSize` holds there too, as in Spark.
    fn run(
        &self,
        partition: usize,
        ctx: &Arc<TaskContext>,
        measure: bool,
    ) -> (Box<dyn Any + Send>, u64);
    /// Computes the partition and returns the value serialized, as it would cross the network.
    fn run_serialized(&self, partition: usize, ctx: &Arc<TaskContext>) -> crate::Result<Vec<u8>>;
    /// Packs this task body for an executor process (see `crate::ship`).
    fn ship(&self) -> crate::Result<Shipped>;
}

/// The body of a shuffle map task: runs the parent pipeline on one partition and writes it
/// through the shuffle writer (Spark's `ShuffleMapTask.runTask`).
pub trait ShuffleMapFunc: Send + Sync {
    /// The shuffle this task writes.
    fn shuffle_id(&self) -> ShuffleId;
    /// Computes the partition, writes its shuffle output, and reports where it is.
    fn run(&self, partition: usize, ctx: &Arc<TaskContext>) -> crate::Result<MapStatus>;
    /// Packs this task body for an executor process (see `crate::ship`).
    fn ship(&self) -> crate::Result<Shipped>;
}

/// A task body as it crosses the network: the index of its decode entry in this
/// build's decode table, a tag naming its concrete type, and its postcard bytes. Made and turned
/// back into a task body by `crate::ship`; opaque everywhere else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// Index of the body's decode entry in the decode table (never an address).
    pub entry: u64,
    /// Hash of the body's `TypeId`, checked before decoding.
    pub tag: u64,
    /// The body, postcard-encoded.
    pub bytes: Vec<u8>,
}

/// The code of a task set: what every task of a stage runs, on its own partition.
#[derive(Clone)]
pub enum TaskKind {
    /// A result task: the action's function over the partition.
    Result(Arc<dyn ResultFunc>),
    /// A shuffle map task: writes the partition's map output.
    ShuffleMap(Arc<dyn ShuffleMapFunc>),
}

impl TaskKind {
    /// Packs the task body for an executor process.
    pub fn ship(&self) -> crate::Result<Shipped> {
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
    /// The attempt's id (Spark's TID).
    pub task_id: TaskId,
    /// Which attempt of this partition in this stage attempt.
    pub attempt_number: u32,
    /// The executor it runs on.
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
    /// For a task of a barrier stage, the number of tasks of its stage attempt.
    pub barrier_tasks: Option<usize>,
    /// What it runs.
    pub kind: TaskKind,
    /// The files and archives the application had added when the task set was created, with
    /// their timestamps (Spark's `addedFiles`, `addedArchives`): the executor fetches what is
    /// new to it before the task runs.
    pub dependencies: Arc<crate::files::Dependencies>,
}

impl TaskDescription {
    /// "task 3.0 in stage 1.0", as in Spark's logs.
    pub fn name(&self) -> ember_scheduler::task::TaskName {
        ember_scheduler::task::TaskName {
            index: self.index,
            attempt: self.attempt_number,
            stage_id: self.stage_id,
            stage_attempt: self.stage_attempt_id,
        }
    }
}
