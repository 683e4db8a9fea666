//! The control messages between the driver and its executors (Spark's
//! `CoarseGrainedClusterMessages`), sent as postcard frames over an authenticated connection.

use serde::{Deserialize, Serialize};

use crate::memory::MemoryMetrics;
use crate::storage::BlockStatus;
use crate::task::Shipped;
use crate::task::{
    ExecutorId, MapStatus, ShuffleId, StageId, TaskEndReason, TaskId, TaskMetricsSnapshot,
    TaskState,
};
use ember_common::AccumulatorUpdate;

/// Executor → driver.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToDriver {
    /// The first message of an executor (Spark's `RegisterExecutor`).
    RegisterExecutor {
        /// An id asked for by the operator (`--executor-id`), or `None` to get one.
        requested_id: Option<ExecutorId>,
        host: String,
        cores: u32,
        memory_mb: u64,
        /// Port of the executor's block server on `host`.
        block_port: u16,
        /// The executable's GNU build id (hex); the driver refuses any other build, and any
        /// executor without one.
        build_id: String,
        pid: u32,
    },
    /// A task's new state (Spark's `StatusUpdate`).
    StatusUpdate {
        task_id: TaskId,
        state: TaskState,
        payload: WirePayload,
    },
    /// Where a shuffle's map outputs are (Spark's `GetMapOutputStatuses`).
    GetMapOutputStatuses {
        request_id: u64,
        shuffle_id: ShuffleId,
    },
    /// A barrier task's `barrier()` / `all_gather()` (Spark's `RequestToSync` to the driver's
    /// `barrierSync` endpoint); answered by `BarrierSyncResult` with the same `request_id`.
    BarrierSync {
        request_id: u64,
        num_tasks: usize,
        stage_id: StageId,
        stage_attempt_id: u32,
        task_attempt_id: TaskId,
        barrier_epoch: u64,
        partition_id: usize,
        message: String,
        all_gather: bool,
    },
    /// Liveness and the metrics of running tasks, every `ember.executor.heartbeatInterval`
    /// (Spark's `Heartbeat`).
    /// `memory` is the executor's memory manager at that moment.
    Heartbeat {
        task_metrics: Vec<(TaskId, TaskMetricsSnapshot)>,
        executor_metrics: crate::metrics::ExecutorSourceMetrics,
        memory: MemoryMetrics,
    },
    /// A partition of `rdd_id` changed place here (Spark's `UpdateBlockInfo`): stored in memory
    /// or on disk, evicted from memory to disk, dropped, or removed (`status` says where it is
    /// now and how large), with the executor's memory metrics after the change.
    BlockUpdated {
        rdd_id: usize,
        partition: usize,
        status: BlockStatus,
        memory: MemoryMetrics,
    },
    /// The executor's block manager registers again, with every block it holds, after a
    /// heartbeat answer asked it to (Spark's `BlockManager.reregister`: `RegisterBlockManager`
    /// then `reportAllBlocks`), in one message so that the driver records all or nothing.
    ReregisterBlockManager {
        /// `(rdd_id, partition, status)` of each block held here.
        blocks: Vec<(usize, usize, BlockStatus)>,
        memory: MemoryMetrics,
    },
    /// The answer to `ThreadDump`: every thread of the executor process (Spark's
    /// `ThreadStackTrace`s of `TriggerThreadDump`).
    ThreadDumpResult {
        request_id: u64,
        threads: Vec<crate::threaddump::ThreadStack>,
    },
}

/// The payload of a status update.
#[derive(Debug, Serialize, Deserialize)]
pub enum WirePayload {
    None,
    /// A result small enough to travel in the message, or a map status.
    Direct {
        value: WireValue,
        metrics: TaskMetricsSnapshot,
        accum_updates: Vec<AccumulatorUpdate>,
    },
    /// A result kept in the executor's block manager (`block_id`), or, when larger than
    /// `ember.driver.maxResultSize`, not kept at all (`block_id: None`).
    Indirect {
        block_id: Option<String>,
        size: u64,
        metrics: TaskMetricsSnapshot,
        accum_updates: Vec<AccumulatorUpdate>,
    },
    /// The task failed, was killed or lost.
    Failure {
        reason: TaskEndReason,
        metrics: Option<TaskMetricsSnapshot>,
    },
}

/// A value in a direct result.
#[derive(Debug, Serialize, Deserialize)]
pub enum WireValue {
    Bytes(Vec<u8>),
    MapStatus(MapStatus),
}

/// Driver → executor.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToExecutor {
    /// Registration accepted (Spark's `RegisteredExecutor`): the executor's id, the
    /// application's configuration (never the secret), and the driver's build id, which the
    /// executor checks against its own before it decodes anything from this driver.
    RegisteredExecutor {
        executor_id: ExecutorId,
        conf: Vec<(String, String)>,
        build_id: String,
    },
    /// Registration refused; the executor exits with this message.
    RegisterRejected { reason: String },
    /// Run a task (Spark's `LaunchTask`).
    LaunchTask(WireTask),
    /// Stop a running attempt.
    KillTask { task_id: TaskId, reason: String },
    /// Stop the executor (Spark's `StopExecutor`).
    StopExecutor,
    /// The answer to a heartbeat: `reregister` asks an executor whose block manager the driver
    /// does not know to register it again (Spark's `HeartbeatResponse(reregisterBlockManager)`).
    HeartbeatResponse { reregister: bool },
    /// Drop every cached partition of an RDD (`unpersist`).
    RemoveRdd { rdd_id: usize },
    /// Drop this executor's copy of a broadcast value (`unpersist`, `destroy`).
    RemoveBroadcast { id: u64 },
    /// Drop a task binary: its stage attempt is over and no task names it any more.
    RemoveTaskBinary { binary_id: u64 },
    /// The answer to `GetMapOutputStatuses`.
    MapOutputStatuses {
        request_id: u64,
        statuses: Result<Vec<Option<MapStatus>>, String>,
    },
    /// The answer to `BarrierSync`: every task's message by partition, or why the sync failed.
    BarrierSyncResult {
        request_id: u64,
        result: Result<Vec<String>, String>,
    },
    /// Dump every thread of the executor process (Spark's `TriggerThreadDump`), answered by
    /// `ThreadDumpResult` with the same `request_id`.
    ThreadDump { request_id: u64 },
}

/// A task as sent to an executor. The task body (`binary`) is the same for every task of a stage
/// attempt, so it is sent to each executor once and then named by `binary_id` (like Spark's
/// broadcast task binary).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireTask {
    pub task_id: TaskId,
    pub attempt_number: u32,
    pub index: usize,
    pub partition_id: usize,
    pub stage_id: StageId,
    pub stage_attempt_id: u32,
    pub cpus: u32,
    /// For a barrier task, the number of tasks of its stage attempt.
    pub barrier_tasks: Option<usize>,
    pub binary_id: u64,
    pub binary: Option<Shipped>,
    /// The application's added files and archives with their timestamps, as the task set saw
    /// them (Spark's `TaskDescription.addedFiles`, `addedArchives`).
    pub dependencies: std::sync::Arc<crate::files::Dependencies>,
}

/// The stored-block id of an indirect task result.
pub fn task_result_block_id(task_id: TaskId) -> String {
    format!("taskresult_{task_id}")
}
