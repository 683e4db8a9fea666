//! `SchedulerBackend`: how the task scheduler reaches executors (Spark's `SchedulerBackend`).
//! The local backend runs one executor in this process; the cluster backend talks to executor
//! processes over the network.

use crate::task::{ExecutorId, StageId, StatusUpdate, TaskDescription, TaskId};

use ember_scheduler::task_set::WorkerOffer;

/// The executors of an application as the driver's event loop sees them.
pub trait SchedulerBackend: Send {
    /// Free cores of every live executor (Spark's `makeOffers`).
    fn offers(&mut self) -> Vec<WorkerOffer>;
    /// All cores of every live executor, busy or not: what Spark's `maxNumConcurrentTasks`
    /// counts slots in.
    fn executor_cores(&self) -> Vec<u32>;
    /// Sends tasks to their executors, taking their cores off the free cores. Returns the tasks
    /// that could not be sent: a task whose executor is gone is re-queued; any other (too large
    /// for the RPC limit) aborts its task set with the message.
    fn launch_tasks(&mut self, tasks: Vec<TaskDescription>) -> Vec<LaunchFailure>;
    /// Sees every status update first: a finished task gives its cores back.
    fn status_update(&mut self, update: &StatusUpdate);
    /// An executor is gone: forget it and its running tasks. Returns how its process ended when
    /// the backend knows (it spawned the process and did not stop it itself): Spark's
    /// `ExecutorExited`, whose running tasks count the loss as their failure.
    fn executor_lost(&mut self, _executor_id: &ExecutorId) -> Option<std::process::ExitStatus> {
        None
    }
    /// Stops an executor the driver has given up on (heartbeat timeout) and forgets it.
    fn kill_executor(&mut self, _executor_id: &ExecutorId) {}
    /// Whether a killed or lost executor is replaced by a new one (local-cluster), so that
    /// `excludeOnFailure` may kill excluded executors to get fresh ones.
    fn replaces_executors(&self) -> bool {
        false
    }
    /// An executor registered.
    fn executor_added(&mut self, _executor_id: &ExecutorId) {}
    /// Answers an executor's heartbeat (Spark's `HeartbeatResponse`): `reregister` asks it to
    /// register its block manager with the driver again.
    fn heartbeat_answered(&mut self, _executor_id: &ExecutorId, _reregister: bool) {}
    /// Why the application cannot run anything any more (every executor lost and none may
    /// replace them); `None` while it can.
    fn application_failure(&mut self) -> Option<String> {
        None
    }
    /// Drops the cached partitions of an RDD on every executor.
    fn remove_rdd(&mut self, _rdd_id: usize) {}
    /// Drops the executors' copies of a broadcast value (they keep no copy in local mode).
    fn remove_broadcast(&mut self, _id: u64) {}
    /// A stage attempt is over (succeeded, failed or cancelled): no task of it is launched any
    /// more, so its task binary can go, on the driver and on the executors (Spark cleans the
    /// broadcast task binary of a finished stage).
    fn stage_finished(&mut self, _stage_id: StageId, _stage_attempt_id: u32) {}
    /// Asks an executor to kill a running attempt.
    fn kill_task(&mut self, task_id: TaskId, executor_id: &ExecutorId, reason: &str);
    /// Stops every executor.
    fn stop(&mut self);
}

/// A task the backend could not send.
#[derive(Clone, Debug)]
pub struct LaunchFailure {
    pub task_id: TaskId,
    pub executor_id: ExecutorId,
    pub message: String,
    /// The executor was removed between the offer and the launch (its loss is on its way to
    /// the scheduler): the task was never sent and runs elsewhere, as in Spark.
    pub executor_gone: bool,
}
