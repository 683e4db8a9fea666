//! The events of the listener bus (Spark's `SparkListenerEvent`s), with Spark's data: stage and
//! task infos, task end reasons, job results, executor and block manager infos.
//!
//! Times are milliseconds since the Unix epoch, read from the scheduler's clock (see
//! [`super::ListenerBus::time_ms`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use ember_common::{BlockId, BlockManagerId, StageId, StorageLevel, TaskId, TaskMetricsSnapshot};
use ember_scheduler::locality::TaskLocality;

use crate::metrics::ExecutorSourceMetrics;

/// Spark's `Properties` of a job or stage submission (`ember.scheduler.pool`, the job group,
/// the description), as string pairs.
pub type Properties = BTreeMap<String, String>;

/// What the listeners learn about an RDD of a stage (Spark's `RDDInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct RddInfo {
    /// The RDD's id.
    pub id: usize,
    /// Its name: the one given with `set_name`, else its kind.
    pub name: String,
    /// Partitions.
    pub num_partitions: usize,
    /// The level it is persisted at (`NONE` when not persisted).
    pub storage_level: StorageLevel,
    /// The RDDs it depends on (narrow and shuffle parents).
    pub parent_ids: Vec<usize>,
    /// Where in user code it was made, when known.
    pub callsite: String,
}

/// What the listeners learn about a stage attempt (Spark's `StageInfo`).
///
/// Its name, RDDs and parents are built once per attempt and shared by every event and
/// listener that holds the attempt (as Spark's events share one `StageInfo` object): copied,
/// they were most of what a short job's events cost the scheduler's and the UI's threads.
#[derive(Clone, Debug, PartialEq)]
pub struct StageInfo {
    /// The stage.
    pub stage_id: StageId,
    /// Its attempt.
    pub attempt_id: u32,
    /// "count at wordcount.rs:31"-style name.
    pub name: Arc<str>,
    /// Tasks of this attempt (all partitions for a stage not run yet).
    pub num_tasks: usize,
    /// The RDDs the stage computes: its RDD and its narrow ancestors.
    pub rdd_infos: Arc<[RddInfo]>,
    /// The stages it reads shuffle outputs of.
    pub parent_ids: Arc<[StageId]>,
    /// Longer description (the call site).
    pub details: Arc<str>,
    /// When the attempt was submitted; `None` for a stage that never ran (skipped).
    pub submission_time: Option<u64>,
    /// When it ended.
    pub completion_time: Option<u64>,
    /// Why it failed, when it did.
    pub failure_reason: Option<String>,
    /// The shuffle it writes, for a map stage.
    pub shuffle_dep_id: Option<usize>,
}

/// What the listeners learn about a task attempt (Spark's `TaskInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskInfo {
    /// The attempt's id (TID).
    pub task_id: TaskId,
    /// Its index in the stage attempt's task set.
    pub index: usize,
    /// 0 for the first attempt of a task, then 1, 2, …
    pub attempt: u32,
    /// The partition it computes.
    pub partition_id: usize,
    /// When it was launched.
    pub launch_time: u64,
    /// The executor it runs on (shared by every event of the executor's tasks, as the events
    /// of a short task would otherwise cost more in copies of these names than in the rest).
    pub executor_id: Arc<str>,
    /// That executor's host.
    pub host: Arc<str>,
    /// The locality level it was launched at.
    pub locality: TaskLocality,
    /// Whether it is a speculative copy.
    pub speculative: bool,
    /// When the driver started fetching its result from the executor's block manager (0: the
    /// result came with the status update).
    pub getting_result_time: u64,
    /// When it ended (0 while running).
    pub finish_time: u64,
    /// Whether it ended failed.
    pub failed: bool,
    /// Whether it ended killed.
    pub killed: bool,
}

impl TaskInfo {
    /// Milliseconds it ran: until its end, or until `now` while it runs (Spark's
    /// `duration` / `timeRunning`).
    pub fn duration_at(&self, now: u64) -> u64 {
        let end = if self.finish_time > 0 {
            self.finish_time
        } else {
            now
        };
        end.saturating_sub(self.launch_time)
    }

    /// Whether it still runs.
    pub fn running(&self) -> bool {
        self.finish_time == 0
    }

    /// Spark's task status names: `RUNNING`, `GET RESULT`, `SUCCESS`, `FAILED`, `KILLED`.
    pub fn status(&self) -> &'static str {
        if self.running() {
            if self.getting_result_time > 0 {
                "GET RESULT"
            } else {
                "RUNNING"
            }
        } else if self.failed {
            "FAILED"
        } else if self.killed {
            "KILLED"
        } else {
            "SUCCESS"
        }
    }
}

/// Spark's name of a locality level (`PROCESS_LOCAL`, …).
pub fn locality_name(l: TaskLocality) -> &'static str {
    match l {
        TaskLocality::ProcessLocal => "PROCESS_LOCAL",
        TaskLocality::NodeLocal => "NODE_LOCAL",
        TaskLocality::NoPref => "NO_PREF",
        TaskLocality::RackLocal => "RACK_LOCAL",
        TaskLocality::Any => "ANY",
    }
}

/// Why a task attempt ended (Spark's `TaskEndReason`).
#[derive(Clone, Debug, PartialEq)]
pub enum TaskEndReason {
    /// It succeeded.
    Success,
    /// It had succeeded, but its map output was on an executor that is gone: it runs again
    /// (Spark's `Resubmitted`, a second end of an attempt that already ended).
    Resubmitted,
    /// It failed, was killed or lost (the scheduler's reason).
    Failed(ember_common::TaskEndReason),
}

impl TaskEndReason {
    /// Spark's `toErrorString` for the REST API's `errorMessage` (`None` on success).
    pub fn error_message(&self) -> Option<String> {
        match self {
            TaskEndReason::Success => None,
            TaskEndReason::Resubmitted => {
                Some("Resubmitted (resubmitted due to lost executor)".into())
            }
            TaskEndReason::Failed(ember_common::TaskEndReason::TaskKilled { reason }) => {
                Some(reason.clone())
            }
            TaskEndReason::Failed(r) => Some(r.to_string()),
        }
    }
}

/// Spark's `Task Type`: a shuffle map task or a result task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskType {
    /// Writes map output for a shuffle.
    ShuffleMapTask,
    /// Computes a partition of an action's result.
    ResultTask,
}

/// How a job ended (Spark's `JobResult`).
#[derive(Clone, Debug, PartialEq)]
pub enum JobResult {
    /// Every partition was delivered.
    Succeeded,
    /// It failed or was cancelled, with this message.
    Failed(String),
}

/// An executor as it joins (Spark's `ExecutorInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutorInfo {
    /// Its host.
    pub host: String,
    /// Its cores.
    pub total_cores: u32,
    /// Where its logs are (Ember executors log to the driver's stderr: none).
    pub log_urls: BTreeMap<String, String>,
}

/// A block's new place (Spark's `BlockUpdatedInfo`).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockUpdatedInfo {
    /// The block manager that reported it.
    pub block_manager_id: BlockManagerId,
    /// The block.
    pub block_id: BlockId,
    /// Where it is now (`NONE`: removed).
    pub storage_level: StorageLevel,
    /// Bytes in memory.
    pub mem_size: u64,
    /// Bytes on disk.
    pub disk_size: u64,
}

/// The environment of the application (Spark's `environmentDetails`), each part as sorted pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvironmentDetails {
    /// Spark's "JVM Information": for Ember, the program and its version.
    pub runtime: Vec<(String, String)>,
    /// Every `ember.*` setting, secrets redacted.
    pub spark_properties: Vec<(String, String)>,
    /// Hadoop's properties (none in Ember).
    pub hadoop_properties: Vec<(String, String)>,
    /// The process's properties: user, OS, working directory.
    pub system_properties: Vec<(String, String)>,
    /// The metrics system's properties.
    pub metrics_properties: Vec<(String, String)>,
    /// What the program is made of (its executable).
    pub classpath_entries: Vec<(String, String)>,
}

/// `SparkListenerStageSubmitted`.
#[derive(Clone, Debug)]
pub struct StageSubmitted {
    /// The attempt, with its submission time.
    pub stage_info: StageInfo,
    /// The submitting job's properties (shared with its `JobStart`).
    pub properties: Arc<Properties>,
}

/// `SparkListenerStageCompleted`.
#[derive(Clone, Debug)]
pub struct StageCompleted {
    /// The attempt, with its completion time and failure reason.
    pub stage_info: StageInfo,
}

/// `SparkListenerTaskStart`.
#[derive(Clone, Debug)]
pub struct TaskStart {
    /// The stage.
    pub stage_id: StageId,
    /// The stage attempt.
    pub stage_attempt_id: u32,
    /// The task attempt.
    pub task_info: TaskInfo,
}

/// `SparkListenerTaskGettingResult`: the driver starts fetching a result too large to come
/// with the status update (`ember.task.maxDirectResultSize`).
#[derive(Clone, Debug)]
pub struct TaskGettingResult {
    /// The task attempt, with its `getting_result_time` set.
    pub task_info: TaskInfo,
}

/// `SparkListenerTaskEnd`.
#[derive(Clone, Debug)]
pub struct TaskEnd {
    /// The stage.
    pub stage_id: StageId,
    /// The stage attempt.
    pub stage_attempt_id: u32,
    /// Map or result task.
    pub task_type: TaskType,
    /// How it ended.
    pub reason: TaskEndReason,
    /// The attempt, with its finish time.
    pub task_info: TaskInfo,
    /// Its metrics, when it reported any.
    pub task_metrics: Option<TaskMetricsSnapshot>,
}

/// `SparkListenerJobStart`.
#[derive(Clone, Debug)]
pub struct JobStart {
    /// The job.
    pub job_id: usize,
    /// When it was submitted.
    pub time: u64,
    /// Its stages, its ancestors' included (some may be skipped).
    pub stage_infos: Vec<StageInfo>,
    /// The submitting thread's properties (shared by the events of its stages, as Spark's
    /// events share the job's `Properties`).
    pub properties: Arc<Properties>,
}

impl JobStart {
    /// The ids of its stages.
    pub fn stage_ids(&self) -> Vec<StageId> {
        self.stage_infos.iter().map(|s| s.stage_id).collect()
    }
}

/// `SparkListenerJobEnd`.
#[derive(Clone, Debug)]
pub struct JobEnd {
    /// The job.
    pub job_id: usize,
    /// When it ended.
    pub time: u64,
    /// How.
    pub job_result: JobResult,
}

/// `SparkListenerEnvironmentUpdate`.
#[derive(Clone, Debug)]
pub struct EnvironmentUpdate {
    /// The environment.
    pub environment_details: EnvironmentDetails,
}

/// `SparkListenerBlockManagerAdded`.
#[derive(Clone, Debug)]
pub struct BlockManagerAdded {
    /// When it registered.
    pub time: u64,
    /// The block manager.
    pub block_manager_id: BlockManagerId,
    /// Its memory for storage and execution, in bytes.
    pub max_mem: u64,
}

/// `SparkListenerBlockManagerRemoved`.
#[derive(Clone, Debug)]
pub struct BlockManagerRemoved {
    /// When it was removed.
    pub time: u64,
    /// The block manager.
    pub block_manager_id: BlockManagerId,
}

/// `SparkListenerUnpersistRDD`.
#[derive(Clone, Debug)]
pub struct UnpersistRdd {
    /// The RDD.
    pub rdd_id: usize,
}

/// `SparkListenerApplicationStart`.
#[derive(Clone, Debug)]
pub struct ApplicationStart {
    /// The application's name.
    pub app_name: String,
    /// Its id (`local-…`, `app-…`).
    pub app_id: String,
    /// When it started.
    pub time: u64,
    /// Who runs it.
    pub spark_user: String,
}

/// `SparkListenerApplicationEnd`.
#[derive(Clone, Debug)]
pub struct ApplicationEnd {
    /// When it ended.
    pub time: u64,
}

/// `SparkListenerExecutorAdded`.
#[derive(Clone, Debug)]
pub struct ExecutorAdded {
    /// When it registered.
    pub time: u64,
    /// The executor.
    pub executor_id: String,
    /// Its host and cores.
    pub executor_info: ExecutorInfo,
}

/// `SparkListenerExecutorRemoved`.
#[derive(Clone, Debug)]
pub struct ExecutorRemoved {
    /// When it was removed.
    pub time: u64,
    /// The executor.
    pub executor_id: String,
    /// Why.
    pub reason: String,
}

/// `SparkListenerExecutorExcluded` (excludeOnFailure, for the whole application).
#[derive(Clone, Debug)]
pub struct ExecutorExcluded {
    /// When.
    pub time: u64,
    /// The executor.
    pub executor_id: String,
}

/// `SparkListenerExecutorUnexcluded`.
#[derive(Clone, Debug)]
pub struct ExecutorUnexcluded {
    /// When.
    pub time: u64,
    /// The executor.
    pub executor_id: String,
}

/// `SparkListenerExecutorMetricsUpdate`: an executor's heartbeat, with its running tasks'
/// metrics so far and its metrics source.
#[derive(Clone, Debug)]
pub struct ExecutorMetricsUpdate {
    /// The executor.
    pub exec_id: String,
    /// `(task, stage, stage attempt, metrics so far)` of its running tasks.
    pub accum_updates: Vec<(TaskId, StageId, u32, TaskMetricsSnapshot)>,
    /// Its metrics source, when the driver knows the executor.
    pub executor_updates: Option<ExecutorSourceMetrics>,
}

/// `SparkListenerBlockUpdated`.
#[derive(Clone, Debug)]
pub struct BlockUpdated {
    /// The block and its new place.
    pub block_updated_info: BlockUpdatedInfo,
}

/// Every event of the bus.
// `TaskEnd` (its metrics) is the largest variant by far. It is also, with `TaskStart`, the most
// frequent one, and the bus puts each event behind one `Arc` already: boxing it would add an
// allocation per task to save copies of events that are rare.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ListenerEvent {
    /// `SparkListenerStageSubmitted`.
    StageSubmitted(StageSubmitted),
    /// `SparkListenerStageCompleted`.
    StageCompleted(StageCompleted),
    /// `SparkListenerTaskStart`.
    TaskStart(TaskStart),
    /// `SparkListenerTaskGettingResult`.
    TaskGettingResult(TaskGettingResult),
    /// `SparkListenerTaskEnd`.
    TaskEnd(TaskEnd),
    /// `SparkListenerJobStart`.
    JobStart(JobStart),
    /// `SparkListenerJobEnd`.
    JobEnd(JobEnd),
    /// `SparkListenerEnvironmentUpdate`.
    EnvironmentUpdate(EnvironmentUpdate),
    /// `SparkListenerBlockManagerAdded`.
    BlockManagerAdded(BlockManagerAdded),
    /// `SparkListenerBlockManagerRemoved`.
    BlockManagerRemoved(BlockManagerRemoved),
    /// `SparkListenerUnpersistRDD`.
    UnpersistRdd(UnpersistRdd),
    /// `SparkListenerApplicationStart`.
    ApplicationStart(ApplicationStart),
    /// `SparkListenerApplicationEnd`.
    ApplicationEnd(ApplicationEnd),
    /// `SparkListenerExecutorAdded`.
    ExecutorAdded(ExecutorAdded),
    /// `SparkListenerExecutorRemoved`.
    ExecutorRemoved(ExecutorRemoved),
    /// `SparkListenerExecutorExcluded`.
    ExecutorExcluded(ExecutorExcluded),
    /// `SparkListenerExecutorUnexcluded`.
    ExecutorUnexcluded(ExecutorUnexcluded),
    /// `SparkListenerExecutorMetricsUpdate`.
    ExecutorMetricsUpdate(ExecutorMetricsUpdate),
    /// `SparkListenerBlockUpdated`.
    BlockUpdated(BlockUpdated),
}

impl ListenerEvent {
    /// Spark's class name of the event (`SparkListenerTaskEnd`), as in event logs.
    pub fn spark_name(&self) -> &'static str {
        match self {
            ListenerEvent::StageSubmitted(_) => "SparkListenerStageSubmitted",
            ListenerEvent::StageCompleted(_) => "SparkListenerStageCompleted",
            ListenerEvent::TaskStart(_) => "SparkListenerTaskStart",
            ListenerEvent::TaskGettingResult(_) => "SparkListenerTaskGettingResult",
            ListenerEvent::TaskEnd(_) => "SparkListenerTaskEnd",
            ListenerEvent::JobStart(_) => "SparkListenerJobStart",
            ListenerEvent::JobEnd(_) => "SparkListenerJobEnd",
            ListenerEvent::EnvironmentUpdate(_) => "SparkListenerEnvironmentUpdate",
            ListenerEvent::BlockManagerAdded(_) => "SparkListenerBlockManagerAdded",
            ListenerEvent::BlockManagerRemoved(_) => "SparkListenerBlockManagerRemoved",
            ListenerEvent::UnpersistRdd(_) => "SparkListenerUnpersistRDD",
            ListenerEvent::ApplicationStart(_) => "SparkListenerApplicationStart",
            ListenerEvent::ApplicationEnd(_) => "SparkListenerApplicationEnd",
            ListenerEvent::ExecutorAdded(_) => "SparkListenerExecutorAdded",
            ListenerEvent::ExecutorRemoved(_) => "SparkListenerExecutorRemoved",
            ListenerEvent::ExecutorExcluded(_) => "SparkListenerExecutorExcluded",
            ListenerEvent::ExecutorUnexcluded(_) => "SparkListenerExecutorUnexcluded",
            ListenerEvent::ExecutorMetricsUpdate(_) => "SparkListenerExecutorMetricsUpdate",
            ListenerEvent::BlockUpdated(_) => "SparkListenerBlockUpdated",
        }
    }
}
