//! `TaskSetManager`: schedules the tasks of one task set (one stage attempt) — which task goes
//! to an offered executor (delay scheduling over locality levels), retries of failed tasks up to
//! `ember.task.maxFailures`, and re-queueing when an executor is lost (Spark's `TaskSetManager`).
//!
//! It also finds stragglers and runs speculative copies of them (`ember.speculation`), kills the
//! other attempts of a task once one succeeds, and applies the task set's part of
//! `excludeOnFailure` (see [`TaskSetExcludelist`]).
//!
//! It is a plain state machine: time is passed in (`now`, from the scheduler's injected clock),
//! and what the DAG scheduler must hear about is appended to an event list instead of being
//! called back.
//!
//! One concern per file: the pending lists (`pending.rs`), delay scheduling over locality levels
//! (`locality.rs`), speculation (`speculation.rs`) and the "cannot run anywhere" check of
//! `excludeOnFailure` (`exclusion.rs`) are `impl TaskSetManager` blocks of their own; this file
//! holds the state, launches, and the handling of attempts' ends.

mod exclusion;
mod locality;
mod pending;
mod speculation;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tracing::{error, info, warn};

use ember_common::{
    DirectTaskResult, ExecutorId, JobId, StageId, TaskEndReason, TaskId, TaskState,
};

use crate::config::TaskSetManagerConfig;
use crate::live_executors::LiveExecutors;
use crate::locality::TaskLocality;
use crate::pool::{SchedulableStats, TaskSetKey};
use crate::task::TaskDescription;
use crate::task_set::{SchedulerEvent, TaskSet};
use crate::task_set_excludelist::TaskSetExcludelist;

use pending::PendingTasks;

/// How often a repeated exception is logged in full (Spark's `spark.logging.exceptionPrintInterval`
/// default); in between, repeats are counted on one line.
const EXCEPTION_PRINT_INTERVAL_MS: u64 = 10_000;

/// The kill reason of an attempt whose task succeeded in another attempt (Spark's wording).
pub const KILLED_BY_OTHER_ATTEMPT: &str = "another attempt succeeded";

/// The end reason of an attempt that reported success after another attempt of its task had
/// already succeeded: its result is dropped, and it counts as killed (Spark's `TaskKilled`
/// reason, SPARK-13343).
pub const LATE_RESULT_DROPPED: &str = "Finish but did not commit due to another attempt succeeded";

/// Hands out task attempt ids (TIDs), unique across all task sets of a scheduler. Clones share
/// the counter. (An atomic only so that the manager stays `Send`; nothing uses it concurrently.)
#[derive(Clone, Debug, Default)]
pub struct TaskIdSource(Arc<AtomicU64>);

impl TaskIdSource {
    /// A source whose first id is 0, as in Spark.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id.
    pub fn next_id(&self) -> TaskId {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Where an attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptState {
    /// Launched, no end reported yet.
    Running,
    /// Reported `Finished` with a result.
    Succeeded,
    /// Failed, lost, or ended with its executor.
    Failed,
    /// Killed on request.
    Killed,
}

/// What an offer of one executor gave a task set: see [`TaskSetManager::offer`].
#[derive(Debug, Default)]
pub struct Offered {
    /// The attempt to launch there, if any.
    pub task: Option<TaskDescription>,
    /// The offer was declined only because delay scheduling waits for a better-placed executor.
    pub delay_reject: bool,
}

/// One task attempt (Spark's `TaskInfo`).
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// The attempt's TID.
    pub task_id: TaskId,
    /// Index of the task within its task set.
    pub index: usize,
    /// 0 for the first attempt of the task, then 1, 2, …
    pub attempt_number: u32,
    /// Clock time of the launch.
    pub launch_time_ms: u64,
    /// Clock time the end was reported.
    pub finish_time_ms: Option<u64>,
    /// Where it runs.
    pub executor_id: ExecutorId,
    /// The executor's host.
    pub host: String,
    /// The level it was launched at.
    pub locality: TaskLocality,
    /// Where it stands.
    pub state: AttemptState,
    /// Whether it is a speculative copy of a task that was already running.
    pub speculative: bool,
}

impl TaskInfo {
    /// Whether the attempt is still running.
    pub fn is_running(&self) -> bool {
        self.state == AttemptState::Running
    }
}

/// Schedules the tasks of one task set. See the module documentation.
pub struct TaskSetManager {
    task_set: TaskSet,
    /// "1.0": stage and attempt, as Spark names a task set in logs.
    id: String,
    /// "TaskSet_1.0": the name FAIR pools break ties with.
    name: String,
    config: TaskSetManagerConfig,
    task_ids: TaskIdSource,

    copies_running: Vec<u32>,
    /// Whether an attempt of each task succeeded. Also set for a task that hit a fetch failure,
    /// which must not be retried before the parent stage is re-run.
    successful: Vec<bool>,
    num_failures: Vec<u32>,
    /// Attempts launched so far per task: the next attempt's number.
    attempts_launched: Vec<u32>,
    tasks_successful: usize,
    /// Tasks with at least one attempt running.
    indices_running: usize,
    /// Every attempt of each task, in launch order.
    attempts: Vec<Vec<TaskId>>,

    task_infos: FxHashMap<TaskId, TaskInfo>,
    /// Running attempts, ordered so that kills and executor-loss handling are deterministic.
    running: BTreeSet<TaskId>,

    /// No more launches: every task succeeded, or the set was aborted or cancelled. A zombie is
    /// kept until its running attempts end so that their results are still accounted for.
    zombie: bool,

    pending: PendingTasks,
    /// Tasks marked for a speculative copy that has not launched yet (Spark's
    /// `speculatableTasks`), and the same tasks by locality.
    speculatable: Vec<bool>,
    num_speculatable: usize,
    pending_speculative: PendingTasks,
    /// How long each task's winning attempt ran, for the speculation threshold.
    successful_durations: Vec<u64>,
    /// Attempts killed because another attempt of their task succeeded: a result they still
    /// send is dropped.
    killed_by_other_attempt: FxHashSet<TaskId>,
    /// This task set's part of `excludeOnFailure`, when enabled.
    excludelist: Option<TaskSetExcludelist>,

    locality_levels: Vec<TaskLocality>,
    locality_waits: Vec<u64>,
    /// Delay scheduling: the level we are at, and when its wait started (Spark's
    /// `lastLocalityWaitResetTime`): when the set was created, moved to the level, or — see
    /// [`TaskSetManager::reset_delay_schedule_timer`] — last used every slot it was offered.
    current_locality_index: usize,
    last_locality_wait_reset_ms: u64,

    /// Recent exception descriptions: (repeats since last full print, time of last full print).
    recent_exceptions: FxHashMap<String, (u32, u64)>,
}

impl std::fmt::Debug for TaskSetManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSetManager")
            .field("name", &self.name)
            .field("tasks", &self.num_tasks())
            .field("successful", &self.tasks_successful)
            .field("running", &self.running.len())
            .field("zombie", &self.zombie)
            .field("locality_levels", &self.locality_levels)
            .finish()
    }
}

impl TaskSetManager {
    /// A manager for `task_set`, whose tasks all start pending. `live` decides its initial
    /// locality levels; `now` starts the delay-scheduling clock.
    pub fn new(
        task_set: TaskSet,
        config: TaskSetManagerConfig,
        task_ids: TaskIdSource,
        live: &LiveExecutors,
        now: u64,
    ) -> Self {
        let n = task_set.tasks.len();
        let id = task_set.id();
        let mut tsm = TaskSetManager {
            name: format!("TaskSet_{id}"),
            id,
            config,
            task_ids,
            copies_running: vec![0; n],
            successful: vec![false; n],
            num_failures: vec![0; n],
            attempts_launched: vec![0; n],
            tasks_successful: 0,
            indices_running: 0,
            attempts: vec![Vec::new(); n],
            task_infos: FxHashMap::default(),
            running: BTreeSet::new(),
            // An empty task set has nothing to do: it finishes at once.
            zombie: n == 0,
            pending: PendingTasks::default(),
            speculatable: vec![false; n],
            num_speculatable: 0,
            pending_speculative: PendingTasks::default(),
            successful_durations: Vec::new(),
            killed_by_other_attempt: FxHashSet::default(),
            excludelist: config
                .exclude_on_failure
                .map(|c| TaskSetExcludelist::new(c, task_set.stage_id, task_set.stage_attempt_id)),
            locality_levels: Vec::new(),
            locality_waits: Vec::new(),
            current_locality_index: 0,
            last_locality_wait_reset_ms: now,
            recent_exceptions: FxHashMap::default(),
            task_set,
        };
        // Pushed in reverse so that the lowest indices are at the ends of the stacks and launch
        // first.
        for index in (0..n).rev() {
            tsm.add_pending_task(index);
        }
        tsm.locality_levels = tsm.compute_valid_locality_levels(live);
        tsm.locality_waits = tsm
            .locality_levels
            .iter()
            .map(|l| config.locality_waits.wait_ms(*l))
            .collect();
        tsm
    }

    /// The task set being managed.
    pub fn task_set(&self) -> &TaskSet {
        &self.task_set
    }

    /// Stage and stage attempt.
    pub fn key(&self) -> TaskSetKey {
        (self.task_set.stage_id, self.task_set.stage_attempt_id)
    }

    /// The stage.
    pub fn stage_id(&self) -> StageId {
        self.task_set.stage_id
    }

    /// The job id the FIFO order uses.
    pub fn priority(&self) -> JobId {
        self.task_set.priority
    }

    /// "TaskSet_1.0".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// "1.0".
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.task_set.tasks.len()
    }

    /// Tasks that have succeeded.
    pub fn tasks_successful(&self) -> usize {
        self.tasks_successful
    }

    /// Attempts running now.
    pub fn running_tasks(&self) -> usize {
        self.running.len()
    }

    /// The running attempts' ids, in increasing order.
    pub fn running_task_ids(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.running.iter().copied()
    }

    /// An attempt of this set.
    pub fn task_info(&self, task_id: TaskId) -> Option<&TaskInfo> {
        self.task_infos.get(&task_id)
    }

    /// Whether no more tasks will launch.
    pub fn is_zombie(&self) -> bool {
        self.zombie
    }

    /// Whether the manager can be dropped: a zombie with nothing running (Spark's
    /// `maybeFinishTaskSet` condition).
    pub fn is_finished(&self) -> bool {
        self.zombie && self.running.is_empty()
    }

    /// Whether every task has succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.tasks_successful == self.num_tasks()
    }

    /// Tasks waiting for a launch: neither succeeded nor running.
    pub fn pending_tasks(&self) -> usize {
        self.num_tasks()
            .saturating_sub(self.tasks_successful)
            .saturating_sub(self.indices_running)
    }

    /// The attempts of task `index`, in launch order.
    pub fn attempts_of(&self, index: usize) -> &[TaskId] {
        self.attempts.get(index).map_or(&[], Vec::as_slice)
    }

    /// Tasks marked for a speculative copy that has not launched yet, in index order.
    pub fn speculatable_tasks(&self) -> Vec<usize> {
        (0..self.num_tasks())
            .filter(|i| self.speculatable[*i])
            .collect()
    }

    /// The task set's exclusion state, when `excludeOnFailure` is enabled.
    pub fn excludelist(&self) -> Option<&TaskSetExcludelist> {
        self.excludelist.as_ref()
    }

    /// The locality levels this set currently tries, best first; always ends with `Any`.
    pub fn locality_levels(&self) -> &[TaskLocality] {
        &self.locality_levels
    }

    /// What the pool comparators see of this task set.
    pub fn stats(&self) -> SchedulableStats<'_> {
        SchedulableStats {
            name: &self.name,
            priority: self.task_set.priority,
            stage_id: self.task_set.stage_id,
            running_tasks: self.running.len(),
            min_share: 0,
            weight: 1,
        }
    }

    /// Answers an offer of one executor (Spark's `resourceOffer`): a task to launch there at
    /// `max_locality` or better, subject to delay scheduling, or `None`. See [`Self::offer`],
    /// which also tells whether the offer was declined for delay scheduling.
    pub fn resource_offer(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
        now: u64,
    ) -> Option<TaskDescription> {
        self.offer(exec_id, host, max_locality, now).task
    }

    /// Answers an offer of one executor (Spark's `resourceOffer`).
    ///
    /// `max_locality == NoPref` is the special pass that neither consults nor moves the
    /// delay-scheduling state, as in Spark. The offer counts as declined for delay scheduling
    /// (`delay_reject`) when it was made at `Any`, nothing launched and tasks are still pending:
    /// the task set would rather wait for a better-placed executor than use this one.
    ///
    /// With `ember.locality.wait.legacyResetOnTaskLaunch` (Spark before 3.1) a launch at a better
    /// level brings the set back to that level and restarts its wait. Otherwise the task
    /// scheduler restarts it, only when a round declined nothing for delay scheduling
    /// ([`Self::reset_delay_schedule_timer`]).
    pub fn offer(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
        now: u64,
    ) -> Offered {
        if self.zombie {
            return Offered::default();
        }
        if self.excludelist.as_ref().is_some_and(|l| {
            l.is_node_excluded_for_task_set(host) || l.is_executor_excluded_for_task_set(exec_id)
        }) {
            return Offered::default();
        }
        let allowed = if max_locality == TaskLocality::NoPref {
            max_locality
        } else {
            self.get_allowed_locality(now).min(max_locality)
        };
        let task =
            self.dequeue_task(exec_id, host, allowed)
                .map(|(index, locality, speculative)| {
                    if self.config.legacy_locality_wait_reset
                        && max_locality != TaskLocality::NoPref
                    {
                        self.reset_delay_schedule_timer(Some(locality), now);
                    }
                    self.prepare_launching_task(index, exec_id, host, locality, speculative, now)
                });
        let has_pending = !self.pending.all.is_empty() || !self.pending_speculative.all.is_empty();
        let delay_reject = task.is_none() && max_locality == TaskLocality::Any && has_pending;
        Offered { task, delay_reject }
    }

    /// Restarts the delay-scheduling wait at `now` and, when tasks were launched, moves back to
    /// the best level they launched at (Spark's `resetDelayScheduleTimer`).
    pub fn reset_delay_schedule_timer(&mut self, min_locality: Option<TaskLocality>, now: u64) {
        self.last_locality_wait_reset_ms = now;
        if let Some(l) = min_locality {
            self.current_locality_index = self.locality_index(l);
        }
    }

    /// The bookkeeping of a launch (Spark's `prepareLaunchingTask`): a new attempt of task
    /// `index` on `exec_id`.
    fn prepare_launching_task(
        &mut self,
        index: usize,
        exec_id: &str,
        host: &str,
        locality: TaskLocality,
        speculative: bool,
        now: u64,
    ) -> TaskDescription {
        let task_id = self.task_ids.next_id();
        self.copies_running[index] += 1;
        if self.copies_running[index] == 1 {
            self.indices_running += 1;
        }
        let attempt_number = self.attempts_launched[index];
        self.attempts_launched[index] += 1;
        self.task_infos.insert(
            task_id,
            TaskInfo {
                task_id,
                index,
                attempt_number,
                launch_time_ms: now,
                finish_time_ms: None,
                executor_id: exec_id.to_string(),
                host: host.to_string(),
                locality,
                state: AttemptState::Running,
                speculative,
            },
        );
        self.attempts[index].push(task_id);
        self.running.insert(task_id);

        let partition = self.task_set.tasks[index].partition;
        let kind = if speculative { "speculative " } else { "" };
        let description = TaskDescription {
            task_id,
            attempt_number,
            executor_id: exec_id.to_string(),
            index,
            partition_id: partition,
            stage_id: self.task_set.stage_id,
            stage_attempt_id: self.task_set.stage_attempt_id,
            cpus: self.config.task_cpus,
            body: self.task_set.body.clone(),
            barrier_tasks: self.task_set.barrier.then_some(self.task_set.tasks.len()),
        };
        info!(
            "Starting {kind}{} (TID {task_id}) ({host}, executor {exec_id}, partition \
             {partition}, {locality})",
            description.name()
        );
        description
    }

    /// Takes back a launch that was never sent (Spark's SPARK-24818 revert of a barrier task
    /// set's tentative assignments): the attempt is forgotten and its task pending again. Undo
    /// the launches of one round in the reverse order of launch, so that the tasks go back to
    /// the pending lists in their first order.
    pub fn undo_launch(&mut self, task_id: TaskId) {
        let Some(info) = self.task_infos.remove(&task_id) else {
            return;
        };
        let index = info.index;
        self.finish_attempt(task_id, index);
        self.attempts[index].retain(|t| *t != task_id);
        self.attempts_launched[index] = self.attempts_launched[index].saturating_sub(1);
        self.add_pending_task(index);
    }

    /// Whether this is a barrier stage's task set.
    pub fn is_barrier(&self) -> bool {
        self.task_set.barrier
    }

    /// The attempt `task_id` stopped running.
    fn finish_attempt(&mut self, task_id: TaskId, index: usize) {
        self.running.remove(&task_id);
        self.copies_running[index] -= 1;
        if self.copies_running[index] == 0 {
            self.indices_running -= 1;
        }
    }

    fn task_ended(
        &self,
        info: &TaskInfo,
        result: Result<DirectTaskResult, TaskEndReason>,
    ) -> SchedulerEvent {
        SchedulerEvent::TaskEnded {
            stage_id: self.task_set.stage_id,
            stage_attempt_id: self.task_set.stage_attempt_id,
            task_id: info.task_id,
            partition: self.task_set.tasks[info.index].partition,
            executor_id: info.executor_id.clone(),
            result,
        }
    }

    /// Records a successful attempt and reports it (Spark's `handleSuccessfulTask`), and asks
    /// the executors to kill the task's other running attempts: their work is no longer needed.
    ///
    /// An attempt killed that way may still report success (it finished before the kill
    /// arrived): it is ended as killed and its result dropped, so the DAG scheduler hears of one
    /// success per task. Another late success (after a fetch failure marked the task done) is
    /// reported but not counted again.
    pub fn handle_successful_task(
        &mut self,
        task_id: TaskId,
        result: DirectTaskResult,
        now: u64,
        out: &mut Vec<SchedulerEvent>,
    ) {
        let Some(info) = self.task_infos.get_mut(&task_id) else {
            warn!(
                "Ignoring success of unknown TID {task_id} in TaskSet {}",
                self.id
            );
            return;
        };
        if !info.is_running() {
            warn!(
                "Ignoring success of TID {task_id} in TaskSet {}: the attempt already ended",
                self.id
            );
            return;
        }
        let index = info.index;
        if self.successful[index] && self.killed_by_other_attempt.contains(&task_id) {
            info!(
                "Dropping the result of TID {task_id} in TaskSet {}: another attempt of task \
                 {index} already succeeded",
                self.id
            );
            let reason = TaskEndReason::TaskKilled {
                reason: LATE_RESULT_DROPPED.to_string(),
            };
            self.handle_failed_task(task_id, TaskState::Killed, reason, now, out);
            return;
        }
        info.state = AttemptState::Succeeded;
        info.finish_time_ms = Some(now);
        let (launch_time_ms, attempt_number) = (info.launch_time_ms, info.attempt_number);
        self.finish_attempt(task_id, index);
        self.kill_other_attempts(task_id, out);
        // The attempt's record is read again below rather than cloned here: a copy of its two
        // strings per task was a good part of what a success cost the scheduler's thread.
        if !self.successful[index] {
            self.tasks_successful += 1;
            self.successful[index] = true;
            // Spark's SPARK-37580: failures before a success do not count against the task if
            // it runs again (its map output lost with an executor, a late speculative copy).
            self.num_failures[index] = 0;
            self.successful_durations
                .push(now.saturating_sub(launch_time_ms));
            self.unmark_speculatable(index);
            if let Some(info) = self.task_infos.get(&task_id) {
                info!(
                    "Finished task {index}.{attempt_number} in stage {} (TID {task_id}) in {} ms \
                     on {} (executor {}) ({}/{})",
                    self.id,
                    now.saturating_sub(launch_time_ms),
                    info.host,
                    info.executor_id,
                    self.tasks_successful,
                    self.num_tasks()
                );
            }
            if self.all_succeeded() {
                self.zombie = true;
            }
        } else {
            info!(
                "Ignoring task-finished event for {}.{} in stage {} because task {} has already \
                 completed successfully",
                index, attempt_number, self.id, index
            );
        }
        if let Some(info) = self.task_infos.get(&task_id) {
            out.push(self.task_ended(info, Ok(result)));
        }
    }

    /// Records a failed, killed or lost attempt, reports it, and re-queues the task or aborts the
    /// task set (Spark's `handleFailedTask`).
    ///
    /// Only reasons that [`TaskEndReason::counts_towards_task_failures`] count; when one task
    /// has failed `max_task_failures` times the set is aborted with Spark's message. A fetch
    /// failure marks the task done and the set a zombie: the parent stage must run again first.
    pub fn handle_failed_task(
        &mut self,
        task_id: TaskId,
        state: TaskState,
        reason: TaskEndReason,
        now: u64,
        out: &mut Vec<SchedulerEvent>,
    ) {
        let Some(info) = self.task_infos.get_mut(&task_id) else {
            warn!(
                "Ignoring failure of unknown TID {task_id} in TaskSet {}",
                self.id
            );
            return;
        };
        if !info.is_running() {
            // Already handled, e.g. failed when its executor was lost and reported again later.
            return;
        }
        info.state = if state == TaskState::Killed {
            AttemptState::Killed
        } else {
            AttemptState::Failed
        };
        info.finish_time_ms = Some(now);
        let info = info.clone();
        let index = info.index;
        self.finish_attempt(task_id, index);
        if self.copies_running[index] == 0 {
            // It goes back to the regular pending lists (or is done); no copy of nothing.
            self.unmark_speculatable(index);
        }

        let failure_reason = format!(
            "Lost task {}.{} in stage {} (TID {task_id}) ({} executor {}): {reason}",
            index, info.attempt_number, self.id, info.host, info.executor_id
        );
        match &reason {
            TaskEndReason::FetchFailed { .. } => {
                warn!("{failure_reason}");
                if !self.successful[index] {
                    self.successful[index] = true;
                    self.tasks_successful += 1;
                }
                self.zombie = true;
            }
            TaskEndReason::ExceptionFailure { description } => {
                self.log_exception(&info, description, &failure_reason, now)
            }
            TaskEndReason::ExecutorLostFailure {
                exit_caused_by_app: false,
                ..
            } => info!(
                "Task {task_id} failed because while it was being computed, its executor exited \
                 for a reason unrelated to the task. Not counting this failure towards the \
                 maximum number of failures for the task."
            ),
            _ => warn!("{failure_reason}"),
        }

        let counts = reason.counts_towards_task_failures();
        out.push(self.task_ended(&info, Err(reason)));
        if self.task_set.barrier {
            // Spark's: a barrier task's failure ends the attempt; the DAG scheduler kills the
            // other tasks and runs the whole stage again.
            self.zombie = true;
        }

        if !self.zombie && counts {
            if let Some(excludelist) = &mut self.excludelist {
                excludelist.update_for_failed_task(
                    &info.host,
                    &info.executor_id,
                    index,
                    &failure_reason,
                    now,
                );
            }
            self.num_failures[index] += 1;
            if self.num_failures[index] >= self.config.max_task_failures {
                let max = self.config.max_task_failures;
                error!(
                    "Task {index} in stage {} failed {max} times; aborting job",
                    self.id
                );
                let message = format!(
                    "Task {index} in stage {} failed {max} times, most recent failure: \
                     {failure_reason}",
                    self.id
                );
                self.abort(&message, out);
                return;
            }
        }

        if self.successful[index] {
            info!(
                "Task {}.{} in stage {} (TID {task_id}) failed, but the task will not be \
                 re-executed (either because the task failed with a shuffle data fetch failure, \
                 so the previous stage needs to be re-run, or because a different copy of the \
                 task has already succeeded).",
                index, info.attempt_number, self.id
            );
        } else {
            self.add_pending_task(index);
        }
    }

    /// Logs a task's exception in full, or — when the same one was printed less than
    /// [`EXCEPTION_PRINT_INTERVAL_MS`] ago — as a one-line repeat, so a task failing the same way
    /// everywhere does not flood the log.
    fn log_exception(
        &mut self,
        info: &TaskInfo,
        description: &str,
        failure_reason: &str,
        now: u64,
    ) {
        let (print_full, repeats) = match self.recent_exceptions.get_mut(description) {
            Some((count, printed_at))
                if now.saturating_sub(*printed_at) <= EXCEPTION_PRINT_INTERVAL_MS =>
            {
                *count += 1;
                (false, *count)
            }
            Some(entry) => {
                *entry = (0, now);
                (true, 0)
            }
            None => {
                self.recent_exceptions
                    .insert(description.to_string(), (0, now));
                (true, 0)
            }
        };
        if print_full {
            warn!("{failure_reason}");
        } else {
            info!(
                "Lost task {}.{} in stage {} (TID {}) on {}, executor {}: {description} \
                 [duplicate {repeats}]",
                info.index, info.attempt_number, self.id, info.task_id, info.host, info.executor_id
            );
        }
    }

    /// Asks the executors to kill every running attempt, giving `reason`.
    fn kill_running(&self, reason: &str, out: &mut Vec<SchedulerEvent>) {
        for &task_id in &self.running {
            if let Some(info) = self.task_infos.get(&task_id) {
                out.push(SchedulerEvent::KillTask {
                    task_id,
                    executor_id: info.executor_id.clone(),
                    reason: reason.to_string(),
                });
            }
        }
    }

    /// Gives up on the task set: reports `message` to the DAG scheduler, kills the running
    /// attempts (which Spark leaves running) and launches nothing more.
    pub fn abort(&mut self, message: &str, out: &mut Vec<SchedulerEvent>) {
        out.push(SchedulerEvent::TaskSetFailed {
            stage_id: self.task_set.stage_id,
            stage_attempt_id: self.task_set.stage_attempt_id,
            reason: message.to_string(),
        });
        self.kill_running(message, out);
        self.zombie = true;
    }

    /// Stops the task set on request (stage cancelled): kills its running attempts and launches
    /// nothing more. The DAG scheduler asked for it, so no failure is reported.
    pub fn cancel(&mut self, reason: &str, out: &mut Vec<SchedulerEvent>) {
        self.kill_running(reason, out);
        self.zombie = true;
    }

    /// Marks partition `partition` done without running it here: an attempt of an earlier,
    /// zombie attempt of the stage computed it (Spark's `markPartitionCompleted`, told by the DAG
    /// scheduler's `notifyPartitionCompletion`). An attempt of it still running here is left to
    /// finish, as in Spark; its result is then ignored.
    pub fn mark_partition_completed(&mut self, partition: usize) {
        let Some(index) = self
            .task_set
            .tasks
            .iter()
            .position(|t| t.partition == partition)
        else {
            return;
        };
        if self.successful[index] {
            return;
        }
        info!(
            "Marking task {index} in stage {} (partition {partition}) completed: an earlier \
             attempt of the stage computed it",
            self.id
        );
        self.successful[index] = true;
        self.tasks_successful += 1;
        self.num_failures[index] = 0;
        self.unmark_speculatable(index);
        if self.all_succeeded() {
            self.zombie = true;
        }
    }

    /// Launches nothing more but lets running attempts finish (a newer attempt of the stage
    /// was submitted).
    pub fn mark_zombie(&mut self) {
        self.zombie = true;
    }

    /// Handles the loss of an executor (Spark's `executorLost`).
    ///
    /// Its running attempts fail with `ExecutorLostFailure`, counted towards
    /// `max_task_failures` only if `exit_caused_by_app` (the executor's process exited while
    /// running them: one of them may have made it exit), and are re-queued. Ember has no
    /// "launching" state (Spark's SPARK-39955: executors send no RUNNING update), so every
    /// attempt sent to the executor counts as running. For a shuffle-map task set still running,
    /// tasks that had succeeded there are re-queued too, since their map output was on that
    /// executor; each is reported as a `TaskEnded` with `ExecutorLostFailure`, which tells the
    /// DAG scheduler the partition is missing again (Spark's `Resubmitted`). Then the locality
    /// levels are recomputed against `live`, which no longer holds the executor.
    pub fn executor_lost(
        &mut self,
        exec_id: &str,
        reason: &str,
        exit_caused_by_app: bool,
        live: &LiveExecutors,
        now: u64,
        out: &mut Vec<SchedulerEvent>,
    ) {
        let lost = |exit_caused_by_app| TaskEndReason::ExecutorLostFailure {
            executor_id: exec_id.to_string(),
            exit_caused_by_app,
            reason: reason.to_string(),
        };
        if self.task_set.shuffle_id.is_some() && !self.zombie {
            let mut done_here: Vec<TaskId> = self
                .task_infos
                .values()
                .filter(|i| i.state == AttemptState::Succeeded && i.executor_id == exec_id)
                .map(|i| i.task_id)
                .collect();
            done_here.sort_unstable();
            for task_id in done_here {
                let info = &self.task_infos[&task_id];
                let index = info.index;
                if self.successful[index] {
                    info!(
                        "Resubmitting task {}.{} in stage {} (TID {task_id}): its map output was \
                         on lost executor {exec_id}",
                        index, info.attempt_number, self.id
                    );
                    let event = self.task_ended(info, Err(lost(false)));
                    self.successful[index] = false;
                    self.tasks_successful -= 1;
                    self.add_pending_task(index);
                    out.push(event);
                }
            }
        }
        let running_here: Vec<TaskId> = self
            .running
            .iter()
            .copied()
            .filter(|t| {
                self.task_infos
                    .get(t)
                    .is_some_and(|i| i.executor_id == exec_id)
            })
            .collect();
        for task_id in running_here {
            self.handle_failed_task(
                task_id,
                TaskState::Failed,
                lost(exit_caused_by_app),
                now,
                out,
            );
        }
        self.recompute_locality(live);
    }
}
