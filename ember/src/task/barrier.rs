//! `BarrierTaskContext`: what a task of a barrier stage (`rdd.barrier().map_partitions(…)`)
//! uses to wait for, and exchange messages with, every other task of its stage attempt (Spark's
//! `BarrierTaskContext`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ember_scheduler::barrier_coordinator::{SyncMethod, SyncRequest};

use super::TaskContext;
use crate::error::{EmberError, Result};

/// How often a task waiting at a barrier checks whether it was killed.
const KILL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The context of a barrier task: its [`TaskContext`] and the barrier of its stage attempt.
///
/// ```no_run
/// use ember::prelude::*;
/// use ember::task::BarrierTaskContext;
///
/// # fn main() -> ember::Result<()> {
/// let ctx = Context::new(EmberConf::new().set_master("local[2]"))?;
/// let hosts = ctx
///     .parallelize(vec![1, 2], 2)
///     .barrier()
///     .map_partitions(|it| {
///         let barrier = BarrierTaskContext::get().expect("a barrier task");
///         let all = barrier.all_gather(format!("task {}", barrier.partition_id()));
///         it.map(move |x| (x, all.as_ref().map_or(0, |v| v.len())))
///     })
///     .collect()?;
/// assert_eq!(hosts, vec![(1, 2), (2, 2)]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BarrierTaskContext {
    ctx: Arc<TaskContext>,
    num_tasks: usize,
}

impl BarrierTaskContext {
    /// The context of the barrier task running on this thread (Spark's
    /// `BarrierTaskContext.get()`); [`EmberError::NotABarrierTask`] outside one.
    pub fn get() -> Result<Self> {
        let ctx = TaskContext::current().ok_or(EmberError::NotABarrierTask)?;
        let (num_tasks, _) = ctx.barrier_state().ok_or(EmberError::NotABarrierTask)?;
        Ok(BarrierTaskContext { ctx, num_tasks })
    }

    /// Waits until every task of this stage attempt has called `barrier()` as often as this one
    /// (Spark's `barrier()`). Fails with Spark's message when they do not within
    /// `ember.barrier.sync.timeout`, or when some task called `all_gather` instead.
    pub fn barrier(&self) -> Result<()> {
        self.sync(SyncMethod::Barrier, String::new()).map(|_| ())
    }

    /// Sends `message` to every task of this stage attempt and returns all their messages,
    /// ordered by partition id (Spark's `allGather`). A global sync, as [`Self::barrier`].
    pub fn all_gather(&self, message: impl Into<String>) -> Result<Vec<String>> {
        self.sync(SyncMethod::AllGather, message.into())
    }

    /// The partition this task computes.
    pub fn partition_id(&self) -> usize {
        self.ctx.partition_id
    }

    /// Which attempt of the stage this is (0 first; a barrier stage runs again in full when one
    /// of its tasks fails).
    pub fn stage_attempt_number(&self) -> u32 {
        self.ctx.stage_attempt_id
    }

    /// How many tasks the stage attempt has (all of them sync together).
    pub fn num_tasks(&self) -> usize {
        self.num_tasks
    }

    /// The task's ordinary context.
    pub fn task_context(&self) -> &Arc<TaskContext> {
        &self.ctx
    }

    fn sync(&self, method: SyncMethod, message: String) -> Result<Vec<String>> {
        let Some((_, epoch)) = self.ctx.barrier_state() else {
            return Err(EmberError::NotABarrierTask);
        };
        let request = SyncRequest {
            num_tasks: self.num_tasks,
            stage_id: self.ctx.stage_id,
            stage_attempt_id: self.ctx.stage_attempt_id,
            task_attempt_id: self.ctx.task_attempt_id,
            barrier_epoch: epoch.load(Ordering::SeqCst),
            partition_id: self.ctx.partition_id,
            message,
            method,
        };
        let failed = |message: String| EmberError::BarrierSyncFailed {
            stage_id: self.ctx.stage_id,
            stage_attempt_id: self.ctx.stage_attempt_id,
            message,
        };
        let answer = self.ctx.services().barrier_sync().request_sync(request)?;
        // The coordinator's own timeout bounds the wait; a kill ends it sooner (Spark polls for
        // the same reason).
        let result = loop {
            match answer.recv_timeout(KILL_CHECK_INTERVAL) {
                Ok(result) => break result,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => self.ctx.check_interrupted(),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(failed("the driver stopped answering barrier syncs".into()))
                }
            }
        };
        let messages = result.map_err(failed)?;
        epoch.fetch_add(1, Ordering::SeqCst);
        Ok(messages)
    }
}
