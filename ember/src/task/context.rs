//! `TaskContext`: what a running task knows about itself and its executor.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::services::ExecutorServices;
use super::{StageId, TaskEndReason, TaskId};
use crate::error::Result;
use crate::memory::{MemoryConsumer, TaskMemoryManager};
use crate::metrics::task_metrics::CurrentMetricsGuard;
use crate::metrics::{self, TaskMetrics};

/// A task's copy of one accumulator, type-erased so a task can hold copies of several kinds
/// (implemented by `crate::accumulator` for each accumulator type).
pub trait TaskAccumulator: Send {
    /// The copy, to be downcast to its concrete type by the accumulator that made it.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Whether nothing was added (such copies are not sent).
    fn is_zero(&self) -> bool;
    /// The copy's value, serialized for the driver.
    fn to_bytes(&self) -> Result<Vec<u8>>;
}

/// Information about the running task attempt, given to every RDD's `compute` and to the
/// action's function (Spark's `TaskContext`).
pub struct TaskContext {
    /// The stage this task belongs to.
    pub stage_id: StageId,
    /// Which attempt of the stage (0 first, more after fetch failures).
    pub stage_attempt_id: u32,
    /// The partition this task computes.
    pub partition_id: usize,
    /// How many times this partition was tried before in this stage attempt (0 first).
    pub attempt_number: u32,
    /// The id of this attempt, unique in the application (Spark's TID).
    pub task_attempt_id: TaskId,
    /// Live metrics of this attempt (shared with [`crate::metrics::count_file_op`] while the
    /// attempt runs on a thread).
    pub metrics: Arc<TaskMetrics>,
    services: Arc<dyn ExecutorServices>,
    memory: Arc<TaskMemoryManager>,
    interrupted: AtomicBool,
    kill_reason: Mutex<Option<String>>,
    /// The first fetch failure the attempt raised, remembered even if user code catches the
    /// unwind (Spark's `TaskContext.setFetchFailed`, SPARK-19276).
    fetch_failure: Mutex<Option<TaskEndReason>>,
    /// This attempt's copies of the accumulators it added to (few, so a list).
    accumulators: Mutex<Vec<(u64, Box<dyn TaskAccumulator>)>>,
    /// Signalled when the attempt is interrupted, for [`TaskContext::wait_for_interrupt`].
    killed: Condvar,
    /// For a task of a barrier stage: the tasks of its stage attempt, and how many syncs it has
    /// finished (its barrier epoch, which outlives each `BarrierTaskContext`).
    barrier: Option<(usize, AtomicU64)>,
}

impl TaskContext {
    /// A context for one attempt on an executor.
    pub fn new(
        services: Arc<dyn ExecutorServices>,
        stage_id: StageId,
        stage_attempt_id: u32,
        partition_id: usize,
        attempt_number: u32,
        task_attempt_id: TaskId,
    ) -> Self {
        TaskContext {
            stage_id,
            stage_attempt_id,
            partition_id,
            attempt_number,
            task_attempt_id,
            metrics: Arc::new(TaskMetrics::default()),
            memory: Arc::new(TaskMemoryManager::new(
                services.block_manager().memory_manager().clone(),
                task_attempt_id,
            )),
            services,
            interrupted: AtomicBool::new(false),
            kill_reason: Mutex::new(None),
            fetch_failure: Mutex::new(None),
            accumulators: Mutex::new(Vec::new()),
            killed: Condvar::new(),
            barrier: None,
        }
    }

    /// Makes this the context of a barrier task of a stage attempt of `num_tasks` tasks (`None`:
    /// an ordinary task).
    pub(crate) fn with_barrier_tasks(mut self, num_tasks: Option<usize>) -> Self {
        self.barrier = num_tasks.map(|n| (n, AtomicU64::new(0)));
        self
    }

    /// A barrier task's number of tasks and barrier epoch counter.
    pub(crate) fn barrier_state(&self) -> Option<(usize, &AtomicU64)> {
        self.barrier.as_ref().map(|(n, epoch)| (*n, epoch))
    }

    /// Records a fetch failure the attempt raises (the first one is kept).
    pub(crate) fn set_fetch_failed(&self, reason: &TaskEndReason) {
        let mut failure = self.fetch_failure.lock();
        if failure.is_none() {
            *failure = Some(reason.clone());
        }
    }

    /// The fetch failure the attempt raised, if any, whatever became of its unwind.
    pub(crate) fn fetch_failure(&self) -> Option<TaskEndReason> {
        self.fetch_failure.lock().clone()
    }

    /// The executor's services: block manager, shuffle settings, map output locations,
    /// broadcasts, block client.
    pub fn services(&self) -> &dyn ExecutorServices {
        self.services.as_ref()
    }

    /// This attempt's execution memory (Spark's `TaskContext.taskMemoryManager()`).
    pub fn task_memory_manager(&self) -> &Arc<TaskMemoryManager> {
        &self.memory
    }

    /// Reserves up to `bytes` of the executor's execution memory for this task; returns how much
    /// was granted. User code that buffers data can use it to stay within the executor's memory;
    /// what is not given back with [`TaskContext::release_execution_memory`] by the end of the
    /// task is reported as a managed memory leak.
    pub fn acquire_execution_memory(&self, bytes: u64) -> u64 {
        self.memory.acquire_execution_memory(bytes)
    }

    /// Returns execution memory reserved with [`TaskContext::acquire_execution_memory`].
    pub fn release_execution_memory(&self, bytes: u64) {
        self.memory.release_execution_memory(bytes)
    }

    /// Whether this attempt has been asked to stop (job cancelled, speculative copy lost).
    #[inline]
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Asks this attempt to stop at its next record boundary.
    pub fn mark_interrupted(&self, reason: &str) {
        let mut kill_reason = self.kill_reason.lock();
        *kill_reason = Some(reason.to_string());
        self.interrupted.store(true, Ordering::Relaxed);
        self.killed.notify_all();
    }

    /// Blocks until this attempt is asked to stop or `timeout` passes; returns whether it was
    /// asked. For task code that waits on something outside Ember (a lock, an external service)
    /// and must still give its core back promptly when killed, e.g. when a speculative copy won.
    pub fn wait_for_interrupt(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut kill_reason = self.kill_reason.lock();
        // The flag is set under the lock, so no notification can slip between test and wait.
        while !self.is_interrupted() {
            if self
                .killed
                .wait_until(&mut kill_reason, deadline)
                .timed_out()
            {
                return self.is_interrupted();
            }
        }
        true
    }

    /// Why the attempt was killed, if it was.
    pub fn kill_reason(&self) -> Option<String> {
        self.kill_reason.lock().clone()
    }

    /// Runs `f` on this attempt's copy of accumulator `id`, creating it with `zero` first.
    pub(crate) fn with_accumulator(
        &self,
        id: u64,
        zero: impl FnOnce() -> Box<dyn TaskAccumulator>,
        f: impl FnOnce(&mut dyn TaskAccumulator),
    ) {
        let mut accs = self.accumulators.lock();
        let i = match accs.iter().position(|(i, _)| *i == id) {
            Some(i) => i,
            None => {
                accs.push((id, zero()));
                accs.len() - 1
            }
        };
        f(accs[i].1.as_mut());
    }

    /// Takes this attempt's accumulator copies (at task end).
    pub(crate) fn take_accumulators(&self) -> Vec<(u64, Box<dyn TaskAccumulator>)> {
        std::mem::take(&mut *self.accumulators.lock())
    }

    /// Unwinds the task if it was killed. Called by sources between records.
    #[inline]
    pub fn check_interrupted(&self) {
        if self.is_interrupted() {
            std::panic::resume_unwind(Box::new(TaskKilledPanic(
                self.kill_reason().unwrap_or_default(),
            )));
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<TaskContext>>> = const { RefCell::new(None) };
}

impl TaskContext {
    /// The context of the task running on this thread (Spark's `TaskContext.get()`), `None`
    /// outside tasks. Lets user functions see their partition and attempt number.
    pub fn current() -> Option<Arc<TaskContext>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Runs `f` on the current task's context without taking a reference count (per-record
    /// callers such as accumulators); `f` gets `None` outside tasks.
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&TaskContext>) -> R) -> R {
        CURRENT.with(|c| f(c.borrow().as_deref()))
    }

    /// Makes `ctx` (and its metrics) this thread's current task context until the guard is
    /// dropped.
    pub(crate) fn enter(ctx: &Arc<TaskContext>) -> CurrentGuard {
        CURRENT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
        CurrentGuard {
            _metrics: metrics::task_metrics::enter(&ctx.metrics),
            _hadoop: crate::io::cloud::enter(ctx.services().hadoop_conf()),
        }
    }
}

/// Clears the thread's current task context (and metrics) when dropped.
pub(crate) struct CurrentGuard {
    _metrics: CurrentMetricsGuard,
    _hadoop: crate::io::cloud::CurrentConfGuard,
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

impl MemoryConsumer {
    /// A consumer of the task running on this thread (none outside tasks), spilling past `cap`
    /// bytes at most. (Defined here, not in `crate::memory`, which knows no tasks.)
    pub fn for_current_task(cap: u64) -> Self {
        MemoryConsumer::new(
            TaskContext::current().map(|c| c.task_memory_manager().clone()),
            cap,
        )
    }
}

/// Unwind payload of a killed task; the task runner reports it as `TaskKilled`.
#[derive(Debug)]
pub struct TaskKilledPanic(pub String);
