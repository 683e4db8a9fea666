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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tracing::{debug, error, info, warn};

use crate::scheduler::health_tracker::{ExcludeOnFailureConfig, HealthTracker};
use crate::scheduler::locality::{LocalityWaits, TaskLocality};
use crate::scheduler::pool::{SchedulableStats, TaskSetKey};
use crate::scheduler::task_set::{SchedulerEvent, TaskLocation, TaskSet};
use crate::scheduler::task_set_excludelist::TaskSetExcludelist;
use crate::task::{
    DirectTaskResult, ExecutorId, JobId, StageId, TaskDescription, TaskEndReason, TaskId, TaskKind, TaskState,
};

/// How often a repeated exception is logged in full (Spark's `spark.logging.exceptionPrintInterval`
/// default); in between, repeats are counted on one line.
const EXCEPTION_PRINT_INTERVAL_MS: u64 = 10_000;

/// The kill reason of an attempt whose task succeeded in another attempt (Spark's wording).
pub const KILLED_BY_OTHER_ATTEMPT: &str = "another attempt succeeded";

/// The end reason of an attempt that reported success after another attempt of its task had
/// already succeeded: its result is dropped, and it counts as killed.
pub const LATE_RESULT_DROPPED: &str = "finished after another attempt had succeeded; result not used";

/// The executors the scheduler knows to be alive, by id and by host. Task set managers consult it
/// to decide which locality levels can be met at all.
#[derive(Clone, Debug, Default)]
pub struct LiveExecutors {
    host_of: FxHashMap<ExecutorId, String>,
    executors_on_host: FxHashMap<String, usize>,
}

impl LiveExecutors {
    /// No executors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an executor; whether it was new.
    pub fn add(&mut self, executor_id: &str, host: &str) -> bool {
        if self.host_of.contains_key(executor_id) {
            return false;
        }
        self.host_of.insert(executor_id.to_string(), host.to_string());
        *self.executors_on_host.entry(host.to_string()).or_insert(0) += 1;
        true
    }

    /// Forgets an executor; its host if it was known.
    pub fn remove(&mut self, executor_id: &str) -> Option<String> {
        let host = self.host_of.remove(executor_id)?;
        if let Some(n) = self.executors_on_host.get_mut(&host) {
            *n -= 1;
            if *n == 0 {
                self.executors_on_host.remove(&host);
            }
        }
        Some(host)
    }

    /// Whether the executor is alive.
    pub fn is_executor_alive(&self, executor_id: &str) -> bool {
        self.host_of.contains_key(executor_id)
    }

    /// Whether any executor is alive on the host.
    pub fn has_executors_alive_on_host(&self, host: &str) -> bool {
        self.executors_on_host.contains_key(host)
    }

    /// The host of a live executor.
    pub fn host_of(&self, executor_id: &str) -> Option<&str> {
        self.host_of.get(executor_id).map(String::as_str)
    }

    /// The live executors grouped by host, both in name order.
    pub fn executors_by_host(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (exec, host) in &self.host_of {
            by_host.entry(host.as_str()).or_default().push(exec.as_str());
        }
        for execs in by_host.values_mut() {
            execs.sort_unstable();
        }
        by_host
    }

    /// How many executors are alive.
    pub fn len(&self) -> usize {
        self.host_of.len()
    }

    /// Whether no executor is alive.
    pub fn is_empty(&self) -> bool {
        self.host_of.is_empty()
    }
}

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

/// Settings of a task set manager, from the scheduler's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskSetManagerConfig {
    /// Failures of one task (counted per index) after which the task set is aborted.
    pub max_task_failures: u32,
    /// Cores each task occupies (`ember.task.cpus`).
    pub task_cpus: u32,
    /// Delay-scheduling waits per level.
    pub locality_waits: LocalityWaits,
    /// A running task is speculated when it has run this many times the median duration of the
    /// successful ones (`ember.speculation.multiplier`).
    pub speculation_multiplier: f64,
    /// Fraction of the tasks that must have succeeded before any is speculated
    /// (`ember.speculation.quantile`).
    pub speculation_quantile: f64,
    /// `excludeOnFailure` settings when it is enabled.
    pub exclude_on_failure: Option<ExcludeOnFailureConfig>,
}

impl Default for TaskSetManagerConfig {
    fn default() -> Self {
        TaskSetManagerConfig {
            max_task_failures: 4,
            task_cpus: 1,
            locality_waits: LocalityWaits::default(),
            speculation_multiplier: 1.5,
            speculation_quantile: 0.75,
            exclude_on_failure: None,
        }
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

/// Indices of tasks waiting to launch, by where they would like to run (Spark's
/// `PendingTasksByLocality`).
///
/// The lists are stacks: tasks are pushed at the end and taken from the end, so that a failed
/// task, pushed back, is retried soon. A task sits in every list it qualifies for; launching it
/// from one list does not touch the others. Stale entries (launched or finished tasks) are
/// dropped when they reach the end of a list, which keeps every operation O(1) amortised.
#[derive(Debug, Default)]
struct PendingTasks {
    for_executor: FxHashMap<ExecutorId, Vec<usize>>,
    for_host: FxHashMap<String, Vec<usize>>,
    no_prefs: Vec<usize>,
    all: Vec<usize>,
}

/// Whether a task still needs launching: not succeeded and no attempt running.
#[inline]
fn needs_launch(index: usize, successful: &[bool], copies_running: &[u32]) -> bool {
    !successful[index] && copies_running[index] == 0
}

/// Takes the last entry of `list` that may run on the offered executor (`usable`) and should
/// launch (`launchable`), walking from the end (Spark's `dequeueTaskFromList`).
///
/// Entries the executor may not take (excluded there) stay for other executors. Entries it may
/// take that no longer need launching are stale and dropped. Without exclusions every entry is
/// usable, so this pops from the end as a stack does.
fn dequeue_from_list(
    list: &mut Vec<usize>,
    usable: impl Fn(usize) -> bool,
    launchable: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        let index = list[i];
        if !usable(index) {
            continue;
        }
        list.remove(i);
        if launchable(index) {
            return Some(index);
        }
    }
    None
}

/// Spark's `MedianHeap.median`: the middle value, or the mean of the two middle values of an
/// even count. `values` must not be empty.
fn median(values: &[u64]) -> f64 {
    let mut v = values.to_vec();
    let mid = v.len() / 2;
    let (_, upper, _) = v.select_nth_unstable(mid);
    let upper = *upper as f64;
    if v.len() % 2 == 1 {
        return upper;
    }
    let lower = v[..mid].iter().copied().max().unwrap_or(0) as f64;
    (lower + upper) / 2.0
}

/// Whether `list` still holds a task that needs launching, dropping stale entries at its end.
fn has_pending(list: &mut Vec<usize>, successful: &[bool], copies_running: &[u32]) -> bool {
    while let Some(&index) = list.last() {
        if needs_launch(index, successful, copies_running) {
            return true;
        }
        list.pop();
    }
    false
}

/// Whether any list of `map` still holds a task that needs launching. Stops at the first that
/// does (as Spark's `moreTasksToRunIn`), removing the emptied lists it walked past.
fn any_pending_in(map: &mut FxHashMap<String, Vec<usize>>, successful: &[bool], copies_running: &[u32]) -> bool {
    let mut emptied: Vec<String> = Vec::new();
    let mut found = false;
    for (key, list) in map.iter_mut() {
        if has_pending(list, successful, copies_running) {
            found = true;
            break;
        }
        emptied.push(key.clone());
    }
    for key in emptied {
        map.remove(&key);
    }
    found
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
    /// Delay scheduling: the level we are at, and when we last launched at it (or moved to it).
    current_locality_index: usize,
    last_launch_time: u64,

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
            last_launch_time: now,
            recent_exceptions: FxHashMap::default(),
            task_set,
        };
        // Pushed in reverse so that the lowest indices are at the ends of the stacks and launch
        // first.
        for index in (0..n).rev() {
            tsm.add_pending_task(index);
        }
        tsm.locality_levels = tsm.compute_valid_locality_levels(live);
        tsm.locality_waits = tsm.locality_levels.iter().map(|l| config.locality_waits.wait_ms(*l)).collect();
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
        self.num_tasks().saturating_sub(self.tasks_successful).saturating_sub(self.indices_running)
    }

    /// The attempts of task `index`, in launch order.
    pub fn attempts_of(&self, index: usize) -> &[TaskId] {
        self.attempts.get(index).map_or(&[], Vec::as_slice)
    }

    /// Tasks marked for a speculative copy that has not launched yet, in index order.
    pub fn speculatable_tasks(&self) -> Vec<usize> {
        (0..self.num_tasks()).filter(|i| self.speculatable[*i]).collect()
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

    /// Puts a task on every pending list it belongs to (Spark's `addPendingTask`).
    fn add_pending_task(&mut self, index: usize) {
        if self.zombie {
            return;
        }
        Self::push_pending(&mut self.pending, &self.task_set.tasks[index].preferred_locations, index);
    }

    /// Puts a task on every list of `pending` its preferences qualify it for.
    fn push_pending(pending: &mut PendingTasks, prefs: &[TaskLocation], index: usize) {
        for loc in prefs {
            if let TaskLocation::Executor { executor_id, .. } = loc {
                pending.for_executor.entry(executor_id.clone()).or_default().push(index);
            }
            pending.for_host.entry(loc.host().to_string()).or_default().push(index);
        }
        if prefs.is_empty() {
            pending.no_prefs.push(index);
        }
        pending.all.push(index);
    }

    /// The levels worth trying given the pending tasks and the live executors (Spark's
    /// `computeValidLocalityLevels`): `ProcessLocal` if a pending task prefers a live executor,
    /// `NodeLocal` if one prefers a host with a live executor, `NoPref` if some task has no
    /// preference, and always `Any`. `RackLocal` never appears: Ember has no rack topology
    /// (Spark's default `getRackForHost` also knows none).
    pub fn compute_valid_locality_levels(&self, live: &LiveExecutors) -> Vec<TaskLocality> {
        let mut levels = Vec::with_capacity(4);
        if self.pending.for_executor.keys().any(|e| live.is_executor_alive(e)) {
            levels.push(TaskLocality::ProcessLocal);
        }
        if self.pending.for_host.keys().any(|h| live.has_executors_alive_on_host(h)) {
            levels.push(TaskLocality::NodeLocal);
        }
        if !self.pending.no_prefs.is_empty() {
            levels.push(TaskLocality::NoPref);
        }
        levels.push(TaskLocality::Any);
        debug!("Valid locality levels for TaskSet {}: {:?}", self.id, levels);
        levels
    }

    /// Recomputes the locality levels after executors came or went, staying at the same level
    /// (or the next worse one that remains valid).
    pub fn recompute_locality(&mut self, live: &LiveExecutors) {
        if self.zombie {
            return;
        }
        let previous = self.locality_levels[self.current_locality_index];
        self.locality_levels = self.compute_valid_locality_levels(live);
        self.locality_waits = self.locality_levels.iter().map(|l| self.config.locality_waits.wait_ms(*l)).collect();
        self.current_locality_index = self.locality_index(previous);
    }

    /// Index in the current levels of `locality`, or of the next worse level present (the last
    /// level is `Any`, so this always ends).
    fn locality_index(&self, locality: TaskLocality) -> usize {
        let mut i = 0;
        while i + 1 < self.locality_levels.len() && locality > self.locality_levels[i] {
            i += 1;
        }
        i
    }

    /// The worst level delay scheduling allows at `now` (Spark's `getAllowedLocalityLevel`).
    ///
    /// A level with no task left to launch is skipped at once (nothing to wait for, and the
    /// timer restarts). Otherwise we move one level down each time the level's wait has passed
    /// since the last launch; the timer then advances by that wait, so the next level's wait
    /// is measured from when the previous one expired rather than from `now`.
    pub fn get_allowed_locality(&mut self, now: u64) -> TaskLocality {
        while self.current_locality_index + 1 < self.locality_levels.len() {
            let level = self.locality_levels[self.current_locality_index];
            let (succ, copies) = (&self.successful[..], &self.copies_running[..]);
            let more_tasks = match level {
                TaskLocality::ProcessLocal => any_pending_in(&mut self.pending.for_executor, succ, copies),
                TaskLocality::NodeLocal => any_pending_in(&mut self.pending.for_host, succ, copies),
                TaskLocality::NoPref => has_pending(&mut self.pending.no_prefs, succ, copies),
                TaskLocality::RackLocal | TaskLocality::Any => false,
            };
            let next = self.locality_levels[self.current_locality_index + 1];
            if !more_tasks {
                self.last_launch_time = now;
                debug!("No tasks for locality level {level}, so moving to locality level {next}");
                self.current_locality_index += 1;
            } else if now.saturating_sub(self.last_launch_time) >= self.locality_waits[self.current_locality_index] {
                let wait = self.locality_waits[self.current_locality_index];
                self.last_launch_time += wait;
                debug!("Moving to {next} after waiting for {wait}ms");
                self.current_locality_index += 1;
            } else {
                return level;
            }
        }
        self.locality_levels[self.current_locality_index]
    }

    /// When delay scheduling will next allow a worse level, if tasks are pending and we are not
    /// already at the worst level. Past times are possible (nothing has been offered since the
    /// wait expired): offer again as soon as cores are free.
    pub fn next_wakeup_ms(&self) -> Option<u64> {
        if self.zombie || self.pending_tasks() == 0 || self.current_locality_index + 1 >= self.locality_levels.len() {
            return None;
        }
        Some(self.last_launch_time.saturating_add(self.locality_waits[self.current_locality_index]))
    }

    /// Takes the next task that may run on `exec_id`/`host` at `max_locality` or better, with the
    /// level it would run at and whether it is a speculative copy (Spark's `dequeueTask`): a task
    /// waiting for its first (or next) attempt if there is one, else a speculative copy of a
    /// straggler. Tasks without preferences are reported as `ProcessLocal`, as Spark does: they
    /// are as good as local anywhere.
    fn dequeue_task(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
    ) -> Option<(usize, TaskLocality, bool)> {
        if let Some((index, locality)) = self.dequeue_from(exec_id, host, max_locality, false) {
            return Some((index, locality, false));
        }
        if self.num_speculatable == 0 {
            return None;
        }
        let (index, locality) = self.dequeue_from(exec_id, host, max_locality, true)?;
        self.speculatable[index] = false;
        self.num_speculatable -= 1;
        Some((index, locality, true))
    }

    /// Searches the regular or the speculative pending lists (Spark's `dequeueTaskHelper`).
    ///
    /// A task is skipped where `excludeOnFailure` excludes it. A speculative copy also never goes
    /// to an executor or host that already ran an attempt of its task: if the first attempt is
    /// slow because of its machine, a copy there would be slow too.
    fn dequeue_from(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
        speculative: bool,
    ) -> Option<(usize, TaskLocality)> {
        let (succ, copies, spec) = (&self.successful[..], &self.copies_running[..], &self.speculatable[..]);
        let (attempts, infos, excludelist) = (&self.attempts, &self.task_infos, self.excludelist.as_ref());
        let usable = |index: usize| {
            let excluded = excludelist
                .is_some_and(|l| l.is_executor_excluded_for_task(exec_id, index) || l.is_node_excluded_for_task(host, index));
            let ran_here = speculative
                && attempts[index]
                    .iter()
                    .filter_map(|tid| infos.get(tid))
                    .any(|i| i.host == host || i.executor_id == exec_id);
            !excluded && !ran_here
        };
        // A copy is only worth launching while exactly the one slow attempt runs.
        let launchable = |index: usize| {
            if speculative {
                spec[index] && !succ[index] && copies[index] == 1
            } else {
                needs_launch(index, succ, copies)
            }
        };
        let pending = if speculative { &mut self.pending_speculative } else { &mut self.pending };
        if let Some(list) = pending.for_executor.get_mut(exec_id) {
            if let Some(i) = dequeue_from_list(list, usable, launchable) {
                return Some((i, TaskLocality::ProcessLocal));
            }
        }
        if max_locality.allows(TaskLocality::NodeLocal) {
            if let Some(list) = pending.for_host.get_mut(host) {
                if let Some(i) = dequeue_from_list(list, usable, launchable) {
                    return Some((i, TaskLocality::NodeLocal));
                }
            }
        }
        if max_locality.allows(TaskLocality::NoPref) {
            if let Some(i) = dequeue_from_list(&mut pending.no_prefs, usable, launchable) {
                return Some((i, TaskLocality::ProcessLocal));
            }
        }
        // RackLocal: no racks are known, so there is no rack list to search.
        if max_locality.allows(TaskLocality::Any) {
            if let Some(i) = dequeue_from_list(&mut pending.all, usable, launchable) {
                return Some((i, TaskLocality::Any));
            }
        }
        None
    }

    /// Answers an offer of one executor (Spark's `resourceOffer`): a task to launch there at
    /// `max_locality` or better, subject to delay scheduling, or `None`.
    ///
    /// `max_locality == NoPref` is the special pass that neither consults nor moves the
    /// delay-scheduling state, as in Spark.
    pub fn resource_offer(
        &mut self,
        exec_id: &str,
        host: &str,
        max_locality: TaskLocality,
        now: u64,
    ) -> Option<TaskDescription> {
        if self.zombie {
            return None;
        }
        if self
            .excludelist
            .as_ref()
            .is_some_and(|l| l.is_node_excluded_for_task_set(host) || l.is_executor_excluded_for_task_set(exec_id))
        {
            return None;
        }
        let allowed = if max_locality == TaskLocality::NoPref {
            max_locality
        } else {
            self.get_allowed_locality(now).min(max_locality)
        };
        let (index, locality, speculative) = self.dequeue_task(exec_id, host, allowed)?;

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
        if max_locality != TaskLocality::NoPref {
            // A launch at a better level brings us back to it, and restarts the wait.
            self.current_locality_index = self.locality_index(locality);
            self.last_launch_time = now;
        }
        self.running.insert(task_id);

        let partition = self.task_set.tasks[index].partition;
        let name = format!("task {index}.{attempt_number} in stage {}", self.id);
        let kind = if speculative { "speculative " } else { "" };
        info!("Starting {kind}{name} (TID {task_id}) ({host}, executor {exec_id}, partition {partition}, {locality})");
        Some(TaskDescription {
            task_id,
            attempt_number,
            executor_id: exec_id.to_string(),
            name,
            index,
            partition_id: partition,
            stage_id: self.task_set.stage_id,
            stage_attempt_id: self.task_set.stage_attempt_id,
            cpus: self.config.task_cpus,
            kind: self.task_set.kind.clone(),
        })
    }

    /// The attempt `task_id` stopped running.
    fn finish_attempt(&mut self, task_id: TaskId, index: usize) {
        self.running.remove(&task_id);
        self.copies_running[index] -= 1;
        if self.copies_running[index] == 0 {
            self.indices_running -= 1;
        }
    }

    fn task_ended(&self, info: &TaskInfo, result: Result<DirectTaskResult, TaskEndReason>) -> SchedulerEvent {
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
            warn!("Ignoring success of unknown TID {task_id} in TaskSet {}", self.id);
            return;
        };
        if !info.is_running() {
            warn!("Ignoring success of TID {task_id} in TaskSet {}: the attempt already ended", self.id);
            return;
        }
        let index = info.index;
        if self.successful[index] && self.killed_by_other_attempt.contains(&task_id) {
            info!(
                "Dropping the result of TID {task_id} in TaskSet {}: another attempt of task {index} already succeeded",
                self.id
            );
            let reason = TaskEndReason::TaskKilled { reason: LATE_RESULT_DROPPED.to_string() };
            self.handle_failed_task(task_id, TaskState::Killed, reason, now, out);
            return;
        }
        info.state = AttemptState::Succeeded;
        info.finish_time_ms = Some(now);
        let info = info.clone();
        self.finish_attempt(task_id, index);
        self.kill_other_attempts(&info, out);
        if !self.successful[info.index] {
            self.tasks_successful += 1;
            self.successful[info.index] = true;
            self.successful_durations.push(now.saturating_sub(info.launch_time_ms));
            self.unmark_speculatable(index);
            info!(
                "Finished task {}.{} in stage {} (TID {task_id}) in {} ms on {} (executor {}) ({}/{})",
                info.index,
                info.attempt_number,
                self.id,
                now.saturating_sub(info.launch_time_ms),
                info.host,
                info.executor_id,
                self.tasks_successful,
                self.num_tasks()
            );
            if self.all_succeeded() {
                self.zombie = true;
            }
        } else {
            info!(
                "Ignoring task-finished event for {}.{} in stage {} because task {} has already completed successfully",
                info.index, info.attempt_number, self.id, info.index
            );
        }
        out.push(self.task_ended(&info, Ok(result)));
    }

    /// Asks the executors to kill the running attempts of `winner`'s task other than `winner`.
    fn kill_other_attempts(&mut self, winner: &TaskInfo, out: &mut Vec<SchedulerEvent>) {
        for &tid in &self.attempts[winner.index] {
            let Some(other) = self.task_infos.get(&tid) else { continue };
            if tid == winner.task_id || !other.is_running() {
                continue;
            }
            info!(
                "Killing attempt {} for task {} in stage {} (TID {tid}) on {} as the attempt {} succeeded on {}",
                other.attempt_number, other.index, self.id, other.host, winner.attempt_number, winner.host
            );
            self.killed_by_other_attempt.insert(tid);
            out.push(SchedulerEvent::KillTask {
                task_id: tid,
                executor_id: other.executor_id.clone(),
                reason: KILLED_BY_OTHER_ATTEMPT.to_string(),
            });
        }
    }

    /// Drops a task's pending speculative copy (it succeeded, or has no attempt left running).
    fn unmark_speculatable(&mut self, index: usize) {
        if self.speculatable[index] {
            self.speculatable[index] = false;
            self.num_speculatable -= 1;
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
            warn!("Ignoring failure of unknown TID {task_id} in TaskSet {}", self.id);
            return;
        };
        if !info.is_running() {
            // Already handled, e.g. failed when its executor was lost and reported again later.
            return;
        }
        info.state = if state == TaskState::Killed { AttemptState::Killed } else { AttemptState::Failed };
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
            TaskEndReason::ExecutorLostFailure { exit_caused_by_app: false, .. } => info!(
                "Task {task_id} failed because while it was being computed, its executor exited for a reason \
                 unrelated to the task. Not counting this failure towards the maximum number of failures for the task."
            ),
            _ => warn!("{failure_reason}"),
        }

        let counts = reason.counts_towards_task_failures();
        out.push(self.task_ended(&info, Err(reason)));

        if !self.zombie && counts {
            if let Some(excludelist) = &mut self.excludelist {
                excludelist.update_for_failed_task(&info.host, &info.executor_id, index, &failure_reason, now);
            }
            self.num_failures[index] += 1;
            if self.num_failures[index] >= self.config.max_task_failures {
                let max = self.config.max_task_failures;
                error!("Task {index} in stage {} failed {max} times; aborting job", self.id);
                let message = format!(
                    "Task {index} in stage {} failed {max} times, most recent failure: {failure_reason}",
                    self.id
                );
                self.abort(&message, out);
                return;
            }
        }

        if self.successful[index] {
            info!(
                "Task {}.{} in stage {} (TID {task_id}) failed, but the task will not be re-executed (either because \
                 the task failed with a shuffle data fetch failure, so the previous stage needs to be re-run, or \
                 because a different copy of the task has already succeeded).",
                index, info.attempt_number, self.id
            );
        } else {
            self.add_pending_task(index);
        }
    }

    /// Marks running stragglers for a speculative copy (Spark's `checkSpeculatableTasks`); returns
    /// whether any task was newly marked.
    ///
    /// Nothing happens before `ember.speculation.quantile` of the tasks have succeeded (at least
    /// one), nor for a task set of one task, which has nothing to compare with. Then a task with
    /// exactly one attempt running, for longer than `max(multiplier × median successful
    /// duration, min_time_to_speculation)`, is marked; the next offer that cannot launch a
    /// regular task may launch its copy.
    pub fn check_speculatable_tasks(&mut self, min_time_to_speculation: u64, now: u64) -> bool {
        if self.zombie || self.num_tasks() == 1 {
            return false;
        }
        let min_finished = ((self.config.speculation_quantile * self.num_tasks() as f64).floor() as usize).max(1);
        if self.successful_durations.len() < min_finished {
            return false;
        }
        let threshold =
            (self.config.speculation_multiplier * median(&self.successful_durations)).max(min_time_to_speculation as f64);
        debug!("Task length threshold for speculation in TaskSet {}: {threshold} ms", self.id);
        let marked: Vec<(usize, String)> = self
            .running
            .iter()
            .filter_map(|tid| self.task_infos.get(tid))
            .filter(|i| {
                !self.successful[i.index]
                    && self.copies_running[i.index] == 1
                    && !self.speculatable[i.index]
                    && now.saturating_sub(i.launch_time_ms) as f64 > threshold
            })
            .map(|i| (i.index, i.host.clone()))
            .collect();
        for (index, host) in &marked {
            self.speculatable[*index] = true;
            self.num_speculatable += 1;
            Self::push_pending(&mut self.pending_speculative, &self.task_set.tasks[*index].preferred_locations, *index);
            info!(
                "Marking task {index} in stage {} (on {host}) as speculatable because it ran more than {threshold:.0} ms \
                 ({} speculatable tasks in this taskset now)",
                self.id, self.num_speculatable
            );
        }
        !marked.is_empty()
    }

    /// A pending task that no live executor may run any more (Spark's
    /// `getCompletelyExcludedTaskIfAny`), when `excludeOnFailure` is enabled.
    ///
    /// Only the task most recently put back is checked, which keeps this cheap; another stuck
    /// task is found by a later call, when it is the last one pending. Nothing is reported while
    /// no executor is alive (they may still be starting).
    pub fn completely_excluded_task(&self, live: &LiveExecutors, health: Option<&HealthTracker>) -> Option<usize> {
        let excludelist = self.excludelist.as_ref()?;
        if live.is_empty() || self.zombie {
            return None;
        }
        let index = *self.pending.all.iter().rev().find(|i| needs_launch(**i, &self.successful, &self.copies_running))?;
        let runnable_somewhere = live.executors_by_host().into_iter().any(|(host, execs)| {
            let node_excluded = health.is_some_and(|h| h.is_node_excluded(host))
                || excludelist.is_node_excluded_for_task_set(host)
                || excludelist.is_node_excluded_for_task(host, index);
            !node_excluded
                && execs.iter().any(|e| {
                    !(health.is_some_and(|h| h.is_executor_excluded(e))
                        || excludelist.is_executor_excluded_for_task_set(e)
                        || excludelist.is_executor_excluded_for_task(e, index))
                })
        });
        (!runnable_somewhere).then_some(index)
    }

    /// Aborts the task set because task `index` can run on none of the `live` executors; the
    /// message names the task and every live executor with why it is excluded.
    pub fn abort_since_completely_excluded(
        &mut self,
        index: usize,
        live: &LiveExecutors,
        health: Option<&HealthTracker>,
        out: &mut Vec<SchedulerEvent>,
    ) {
        let Some(excludelist) = &self.excludelist else { return };
        let mut why: Vec<String> = Vec::new();
        for (host, execs) in live.executors_by_host() {
            for e in execs {
                let reason = if health.is_some_and(|h| h.is_executor_excluded(e)) {
                    "for the application"
                } else if health.is_some_and(|h| h.is_node_excluded(host)) {
                    "its node is excluded for the application"
                } else if excludelist.is_executor_excluded_for_task_set(e) {
                    "for the stage"
                } else if excludelist.is_node_excluded_for_task_set(host) {
                    "its node is excluded for the stage"
                } else if excludelist.is_node_excluded_for_task(host, index) {
                    "its node is excluded for the task"
                } else {
                    "for the task"
                };
                why.push(format!("{e} on {host} ({reason})"));
            }
        }
        let partition = self.task_set.tasks[index].partition;
        let latest = excludelist.latest_failure_reason().unwrap_or("none recorded").to_string();
        let message = format!(
            "Aborting TaskSet {} because task {index} (partition {partition}) cannot run anywhere due to node and \
             executor excludeOnFailure. Excluded executors: {}. Most recent failure: {latest}. ExcludeOnFailure is \
             configured by the ember.excludeOnFailure.* keys.",
            self.id,
            why.join(", ")
        );
        error!("{message}");
        self.abort(&message, out);
    }

    /// Logs a task's exception in full, or — when the same one was printed less than
    /// [`EXCEPTION_PRINT_INTERVAL_MS`] ago — as a one-line repeat, so a task failing the same way
    /// everywhere does not flood the log.
    fn log_exception(&mut self, info: &TaskInfo, description: &str, failure_reason: &str, now: u64) {
        let (print_full, repeats) = match self.recent_exceptions.get_mut(description) {
            Some((count, printed_at)) if now.saturating_sub(*printed_at) <= EXCEPTION_PRINT_INTERVAL_MS => {
                *count += 1;
                (false, *count)
            }
            Some(entry) => {
                *entry = (0, now);
                (true, 0)
            }
            None => {
                self.recent_exceptions.insert(description.to_string(), (0, now));
                (true, 0)
            }
        };
        if print_full {
            warn!("{failure_reason}");
        } else {
            info!(
                "Lost task {}.{} in stage {} (TID {}) on {}, executor {}: {description} [duplicate {repeats}]",
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

    /// Launches nothing more but lets running attempts finish (a newer attempt of the stage
    /// was submitted).
    pub fn mark_zombie(&mut self) {
        self.zombie = true;
    }

    /// Handles the loss of an executor (Spark's `executorLost`).
    ///
    /// Its running attempts fail with `ExecutorLostFailure` (not counted towards
    /// `max_task_failures`) and are re-queued. For a shuffle-map task set still running, tasks
    /// that had succeeded there are re-queued too, since their map output was on that executor;
    /// each is reported as a `TaskEnded` with `ExecutorLostFailure`, which tells the DAG
    /// scheduler the partition is missing again (Spark's `Resubmitted`). Then the locality levels
    /// are recomputed against `live`, which no longer holds the executor.
    pub fn executor_lost(
        &mut self,
        exec_id: &str,
        reason: &str,
        live: &LiveExecutors,
        now: u64,
        out: &mut Vec<SchedulerEvent>,
    ) {
        let lost = |exit_caused_by_app| TaskEndReason::ExecutorLostFailure {
            executor_id: exec_id.to_string(),
            exit_caused_by_app,
            reason: reason.to_string(),
        };
        if matches!(self.task_set.kind, TaskKind::ShuffleMap(_)) && !self.zombie {
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
                        "Resubmitting task {}.{} in stage {} (TID {task_id}): its map output was on lost executor {exec_id}",
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
            .filter(|t| self.task_infos.get(t).is_some_and(|i| i.executor_id == exec_id))
            .collect();
        for task_id in running_here {
            self.handle_failed_task(task_id, TaskState::Failed, lost(false), now, out);
        }
        self.recompute_locality(live);
    }
}

/// Helpers shared by the scheduler's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::any::Any;
    use std::sync::Arc;

    use crate::scheduler::task_set::{TaskLocation, TaskSet, TaskSpec};
    use crate::task::{
        DirectTaskResult, MapStatus, ResultFunc, ShuffleId, ShuffleMapFunc, TaskContext, TaskKind, TaskMetricsSnapshot,
        TaskValue,
    };

    struct NoopResult;
    impl ResultFunc for NoopResult {
        fn run(&self, _partition: usize, _ctx: &Arc<TaskContext>) -> Box<dyn Any + Send> {
            Box::new(())
        }
        fn run_serialized(&self, _partition: usize, _ctx: &Arc<TaskContext>) -> crate::error::Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn ship(&self) -> crate::error::Result<crate::ship::Shipped> {
            Err(crate::error::EmberError::Task("the scheduler tests never ship tasks".into()))
        }
    }

    struct NoopShuffleMap;
    impl ShuffleMapFunc for NoopShuffleMap {
        fn shuffle_id(&self) -> ShuffleId {
            0
        }
        fn run(&self, _partition: usize, _ctx: &Arc<TaskContext>) -> crate::error::Result<MapStatus> {
            Err(crate::error::EmberError::Task("the scheduler tests never run tasks".into()))
        }
        fn ship(&self) -> crate::error::Result<crate::ship::Shipped> {
            Err(crate::error::EmberError::Task("the scheduler tests never ship tasks".into()))
        }
    }

    /// A result task kind whose body is never run.
    pub fn result_kind() -> TaskKind {
        TaskKind::Result(Arc::new(NoopResult))
    }

    /// A shuffle-map task kind whose body is never run.
    pub fn shuffle_kind() -> TaskKind {
        TaskKind::ShuffleMap(Arc::new(NoopShuffleMap))
    }

    /// A task set of `n` tasks without preferences.
    pub fn task_set(stage_id: usize, attempt: u32, job: usize, n: usize) -> TaskSet {
        task_set_with_prefs(stage_id, attempt, job, vec![Vec::new(); n])
    }

    /// A task set with one task per preference list.
    pub fn task_set_with_prefs(stage_id: usize, attempt: u32, job: usize, prefs: Vec<Vec<TaskLocation>>) -> TaskSet {
        TaskSet {
            stage_id,
            stage_attempt_id: attempt,
            priority: job,
            pool_name: String::new(),
            tasks: prefs
                .into_iter()
                .enumerate()
                .map(|(partition, preferred_locations)| TaskSpec { partition, preferred_locations })
                .collect(),
            kind: result_kind(),
        }
    }

    /// A preference for an executor's memory.
    pub fn on_executor(host: &str, exec: &str) -> TaskLocation {
        TaskLocation::Executor { host: host.into(), executor_id: exec.into() }
    }

    /// A successful result with no value.
    pub fn ok_result() -> DirectTaskResult {
        DirectTaskResult { value: TaskValue::Value(Box::new(())), metrics: TaskMetricsSnapshot::default(), accum_updates: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::scheduler::task_set::TaskLocation;

    fn live(execs: &[(&str, &str)]) -> LiveExecutors {
        let mut l = LiveExecutors::new();
        for (e, h) in execs {
            l.add(e, h);
        }
        l
    }

    fn manager(ts: TaskSet, live: &LiveExecutors, waits: LocalityWaits, max_failures: u32) -> TaskSetManager {
        let config = TaskSetManagerConfig {
            max_task_failures: max_failures,
            locality_waits: waits,
            ..TaskSetManagerConfig::default()
        };
        TaskSetManager::new(ts, config, TaskIdSource::new(), live, 0)
    }

    /// A manager with excludeOnFailure on (Spark's default limits) and 4 attempts per task.
    fn excluding_manager(ts: TaskSet, live: &LiveExecutors) -> TaskSetManager {
        let config = TaskSetManagerConfig {
            exclude_on_failure: Some(ExcludeOnFailureConfig::default()),
            ..TaskSetManagerConfig::default()
        };
        TaskSetManager::new(ts, config, TaskIdSource::new(), live, 0)
    }

    fn boom() -> TaskEndReason {
        TaskEndReason::ExceptionFailure { description: "boom".into() }
    }

    fn launch(tsm: &mut TaskSetManager, exec: &str, host: &str, now: u64) -> TaskDescription {
        tsm.resource_offer(exec, host, TaskLocality::Any, now).expect("a task launches")
    }

    /// Four tasks: 0..3 launched on executor A (host ha) at time 0, then 1..3 finished at the
    /// given times, so only task 0 is still running.
    fn three_done(durations: [u64; 3]) -> (TaskSetManager, TaskDescription, Vec<SchedulerEvent>) {
        let l = live(&[("A", "ha"), ("B", "ha"), ("C", "hc")]);
        let mut tsm = manager(task_set(0, 0, 0, 4), &l, LocalityWaits::uniform(0), 1);
        let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
        let mut out = Vec::new();
        for (t, d) in tasks[1..].iter().zip(durations) {
            tsm.handle_successful_task(t.task_id, ok_result(), d, &mut out);
        }
        out.clear();
        let first = tasks[0].clone();
        (tsm, first, out)
    }

    #[test]
    fn median_is_sparks() {
        assert_eq!(median(&[5]), 5.0);
        assert_eq!(median(&[5, 1, 3]), 3.0);
        assert_eq!(median(&[4, 1, 3, 10]), 3.5);
    }

    #[test]
    fn speculation_waits_for_the_quantile() {
        let l = live(&[("A", "ha")]);
        let mut tsm = manager(task_set(0, 0, 0, 4), &l, LocalityWaits::uniform(0), 1);
        let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
        let mut out = Vec::new();
        tsm.handle_successful_task(tasks[1].task_id, ok_result(), 1, &mut out);
        tsm.handle_successful_task(tasks[2].task_id, ok_result(), 1, &mut out);
        // 2 of 4 succeeded, below 0.75 × 4 = 3: however long the others run, nothing is marked.
        assert!(!tsm.check_speculatable_tasks(0, 1_000_000));
        tsm.handle_successful_task(tasks[3].task_id, ok_result(), 1, &mut out);
        assert!(tsm.check_speculatable_tasks(0, 1_000_000));
        assert_eq!(tsm.speculatable_tasks(), [0]);
        // Already marked: not marked again.
        assert!(!tsm.check_speculatable_tasks(0, 2_000_000));
    }

    #[test]
    fn threshold_is_the_multiplier_times_the_median() {
        let (mut tsm, _, _) = three_done([10, 20, 30]);
        // Median 20, × 1.5 = 30: a task that ran exactly 30 ms is not a straggler yet.
        assert!(!tsm.check_speculatable_tasks(0, 30));
        assert!(tsm.speculatable_tasks().is_empty());
        assert!(tsm.check_speculatable_tasks(0, 31));
        assert_eq!(tsm.speculatable_tasks(), [0]);
    }

    #[test]
    fn threshold_is_at_least_min_task_runtime() {
        let (mut tsm, _, _) = three_done([1, 1, 1]);
        assert!(!tsm.check_speculatable_tasks(100, 100), "1.5 ms × median is below minTaskRuntime 100");
        assert!(tsm.check_speculatable_tasks(100, 101));
    }

    #[test]
    fn multiplier_and_quantile_come_from_the_config() {
        let l = live(&[("A", "ha")]);
        let config =
            TaskSetManagerConfig { speculation_multiplier: 3.0, speculation_quantile: 0.5, ..TaskSetManagerConfig::default() };
        let mut tsm = TaskSetManager::new(task_set(0, 0, 0, 4), config, TaskIdSource::new(), &l, 0);
        let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
        let mut out = Vec::new();
        tsm.handle_successful_task(tasks[2].task_id, ok_result(), 10, &mut out);
        tsm.handle_successful_task(tasks[3].task_id, ok_result(), 10, &mut out);
        // 2 of 4 is the quantile 0.5; threshold 3 × 10 = 30.
        assert!(!tsm.check_speculatable_tasks(0, 30));
        assert!(tsm.check_speculatable_tasks(0, 31));
        assert_eq!(tsm.speculatable_tasks(), [0, 1]);
    }

    #[test]
    fn a_single_task_or_a_zombie_is_never_speculated() {
        let l = live(&[("A", "ha")]);
        let mut one = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::uniform(0), 1);
        launch(&mut one, "A", "ha", 0);
        assert!(!one.check_speculatable_tasks(0, 1_000_000));
        let (mut tsm, _, mut out) = three_done([1, 1, 1]);
        tsm.cancel("stop", &mut out);
        assert!(!tsm.check_speculatable_tasks(0, 1_000_000));
    }

    #[test]
    fn a_copy_never_runs_on_the_executor_or_host_of_its_task() {
        let (mut tsm, first, _) = three_done([1, 1, 1]);
        assert!(tsm.check_speculatable_tasks(0, 200));
        // A runs the first attempt; B is another executor on the same host.
        assert!(tsm.resource_offer("A", "ha", TaskLocality::Any, 200).is_none());
        assert!(tsm.resource_offer("B", "ha", TaskLocality::Any, 200).is_none());
        let copy = launch(&mut tsm, "C", "hc", 200);
        assert_eq!((copy.index, copy.attempt_number), (0, 1));
        let info = tsm.task_info(copy.task_id).unwrap();
        assert!(info.speculative);
        assert!(!tsm.task_info(first.task_id).unwrap().speculative);
        assert_eq!(tsm.attempts_of(0), [first.task_id, copy.task_id]);
        assert!(tsm.speculatable_tasks().is_empty(), "the copy is launched: no longer waiting");
        // Two copies running: no third one, and no new mark.
        assert!(tsm.resource_offer("D", "hd", TaskLocality::Any, 300).is_none());
        assert!(!tsm.check_speculatable_tasks(0, 10_000));
    }

    #[test]
    fn regular_tasks_go_before_speculative_copies() {
        let l = live(&[("A", "ha"), ("C", "hc")]);
        let mut tsm = manager(task_set(0, 0, 0, 5), &l, LocalityWaits::uniform(0), 1);
        let tasks: Vec<TaskDescription> = (0..4).map(|_| launch(&mut tsm, "A", "ha", 0)).collect();
        let mut out = Vec::new();
        for t in &tasks[1..] {
            tsm.handle_successful_task(t.task_id, ok_result(), 1, &mut out);
        }
        // 3 of 5 succeeded (0.75 × 5 = 3.75 → 3): task 0 is a straggler, task 4 never ran.
        assert!(tsm.check_speculatable_tasks(0, 500));
        let next = launch(&mut tsm, "C", "hc", 500);
        assert_eq!((next.index, next.attempt_number), (4, 0));
        let copy = launch(&mut tsm, "C", "hc", 500);
        assert_eq!((copy.index, copy.attempt_number), (0, 1));
    }

    #[test]
    fn first_result_wins_and_the_other_attempt_is_killed_without_counting_a_failure() {
        let (mut tsm, first, mut out) = three_done([1, 1, 1]);
        tsm.check_speculatable_tasks(0, 200);
        let copy = launch(&mut tsm, "C", "hc", 200);
        tsm.handle_successful_task(copy.task_id, ok_result(), 210, &mut out);
        match &out[..] {
            [SchedulerEvent::KillTask { task_id, executor_id, reason }, SchedulerEvent::TaskEnded { task_id: ended, result: Ok(_), .. }] =>
            {
                assert_eq!((*task_id, executor_id.as_str(), reason.as_str()), (first.task_id, "A", KILLED_BY_OTHER_ATTEMPT));
                assert_eq!(*ended, copy.task_id);
            }
            e => panic!("unexpected {e:?}"),
        }
        assert!(tsm.all_succeeded() && tsm.is_zombie() && !tsm.is_finished());
        out.clear();
        // max_task_failures is 1: a counted failure would abort the set.
        let killed = TaskEndReason::TaskKilled { reason: KILLED_BY_OTHER_ATTEMPT.into() };
        tsm.handle_failed_task(first.task_id, TaskState::Killed, killed, 220, &mut out);
        assert!(matches!(&out[..], [SchedulerEvent::TaskEnded { result: Err(TaskEndReason::TaskKilled { .. }), .. }]));
        assert!(tsm.is_finished());
        assert_eq!(tsm.task_info(first.task_id).unwrap().state, AttemptState::Killed);
    }

    #[test]
    fn a_late_result_of_the_loser_is_dropped() {
        let (mut tsm, first, mut out) = three_done([1, 1, 1]);
        tsm.check_speculatable_tasks(0, 200);
        let copy = launch(&mut tsm, "C", "hc", 200);
        // The original finishes first this time: the copy is killed.
        tsm.handle_successful_task(first.task_id, ok_result(), 205, &mut out);
        assert!(matches!(&out[0], SchedulerEvent::KillTask { task_id, .. } if *task_id == copy.task_id));
        out.clear();
        // The copy finished before the kill reached it: its result is not a second success.
        tsm.handle_successful_task(copy.task_id, ok_result(), 206, &mut out);
        match &out[..] {
            [SchedulerEvent::TaskEnded { task_id, result: Err(TaskEndReason::TaskKilled { reason }), .. }] => {
                assert_eq!((*task_id, reason.as_str()), (copy.task_id, LATE_RESULT_DROPPED));
            }
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(tsm.tasks_successful(), 4);
        assert!(tsm.is_finished());
    }

    #[test]
    fn a_failed_copy_leaves_the_first_attempt_running_without_retry() {
        let (mut tsm, first, mut out) = three_done([1, 1, 1]);
        tsm.check_speculatable_tasks(0, 200);
        let copy = launch(&mut tsm, "C", "hc", 200);
        let lost = TaskEndReason::ExecutorLostFailure { executor_id: "C".into(), exit_caused_by_app: false, reason: "x".into() };
        tsm.handle_failed_task(copy.task_id, TaskState::Failed, lost, 210, &mut out);
        // The first attempt still runs: nothing to launch for task 0.
        assert_eq!(tsm.pending_tasks(), 0);
        assert!(tsm.resource_offer("D", "hd", TaskLocality::Any, 210).is_none());
        // It is still slow: a new copy may be marked, on a host without an attempt.
        assert!(tsm.check_speculatable_tasks(0, 1_000));
        assert!(tsm.resource_offer("C", "hc", TaskLocality::Any, 1_000).is_none(), "hc had an attempt");
        let again = launch(&mut tsm, "D", "hd", 1_000);
        assert_eq!((again.index, again.attempt_number), (0, 2));
        tsm.handle_successful_task(first.task_id, ok_result(), 1_001, &mut out);
        assert!(tsm.all_succeeded());
    }

    #[test]
    fn a_task_is_not_retried_on_the_executor_where_it_failed() {
        let l = live(&[("A", "ha"), ("B", "hb")]);
        let mut tsm = excluding_manager(task_set(0, 0, 0, 1), &l);
        let mut out = Vec::new();
        let d = launch(&mut tsm, "A", "ha", 0);
        tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 1, &mut out);
        assert!(tsm.resource_offer("A", "ha", TaskLocality::Any, 2).is_none());
        let retry = launch(&mut tsm, "B", "hb", 2);
        assert_eq!((retry.index, retry.attempt_number), (0, 1));
        assert!(tsm.completely_excluded_task(&l, None).is_none());
    }

    #[test]
    fn a_task_failing_twice_on_a_node_is_not_retried_there() {
        let l = live(&[("A1", "h1"), ("A2", "h1"), ("A3", "h1"), ("B", "h2")]);
        let mut tsm = excluding_manager(task_set(0, 0, 0, 1), &l);
        let mut out = Vec::new();
        let d = launch(&mut tsm, "A1", "h1", 0);
        tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 1, &mut out);
        let d = launch(&mut tsm, "A2", "h1", 1);
        tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 2, &mut out);
        assert!(tsm.resource_offer("A3", "h1", TaskLocality::Any, 3).is_none(), "excluded on h1 for the task");
        assert_eq!(launch(&mut tsm, "B", "h2", 3).attempt_number, 2);
    }

    #[test]
    fn an_executor_with_two_failed_tasks_gets_none_of_the_stage() {
        let l = live(&[("A", "ha"), ("B", "hb")]);
        let mut tsm = excluding_manager(task_set(0, 0, 0, 3), &l);
        let mut out = Vec::new();
        for _ in 0..2 {
            let d = launch(&mut tsm, "A", "ha", 0);
            tsm.handle_failed_task(d.task_id, TaskState::Failed, boom(), 1, &mut out);
        }
        assert!(tsm.excludelist().unwrap().is_executor_excluded_for_task_set("A"));
        // Task 2 never failed anywhere, still A gets nothing.
        assert!(tsm.resource_offer("A", "ha", TaskLocality::Any, 2).is_none());
        let got: BTreeSet<usize> = (0..3).map(|_| launch(&mut tsm, "B", "hb", 2).index).collect();
        assert_eq!(got, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn kills_executor_loss_and_fetch_failures_do_not_exclude() {
        let mut l = live(&[("A", "ha")]);
        let mut tsm = excluding_manager(task_set(0, 0, 0, 2), &l);
        let mut out = Vec::new();
        let d = launch(&mut tsm, "A", "ha", 0);
        tsm.handle_failed_task(d.task_id, TaskState::Killed, TaskEndReason::TaskKilled { reason: "x".into() }, 1, &mut out);
        let d = launch(&mut tsm, "A", "ha", 1);
        assert_eq!((d.index, d.attempt_number), (0, 1), "retried on A after a kill");
        l.add("B", "hb");
        l.remove("A");
        tsm.executor_lost("A", "gone", &l, 2, &mut out);
        assert!(tsm.excludelist().unwrap().exec_failures().is_empty());
        let d = launch(&mut tsm, "B", "hb", 3);
        let fetch = TaskEndReason::FetchFailed {
            location: None,
            shuffle_id: 0,
            map_index: Some(0),
            reduce_id: 0,
            message: "gone".into(),
        };
        tsm.handle_failed_task(d.task_id, TaskState::Failed, fetch, 4, &mut out);
        assert!(tsm.excludelist().unwrap().exec_failures().is_empty());
    }

    #[test]
    fn a_task_that_can_run_nowhere_aborts_the_task_set_naming_it() {
        let l = live(&[("A", "ha"), ("B", "hb")]);
        let mut tsm = excluding_manager(task_set(2, 0, 0, 2), &l);
        let mut out = Vec::new();
        let a = launch(&mut tsm, "A", "ha", 0);
        let b = launch(&mut tsm, "B", "hb", 0);
        tsm.handle_failed_task(a.task_id, TaskState::Failed, boom(), 1, &mut out);
        tsm.handle_successful_task(b.task_id, ok_result(), 1, &mut out);
        assert_eq!(tsm.completely_excluded_task(&l, None), None, "B may still run task 0");
        let retry = launch(&mut tsm, "B", "hb", 2);
        assert_eq!(retry.index, 0);
        tsm.handle_failed_task(retry.task_id, TaskState::Failed, boom(), 3, &mut out);
        // Task 0 failed on both executors; 2 of its 4 attempts are left, but it can run nowhere.
        assert!(!tsm.is_zombie());
        assert_eq!(tsm.completely_excluded_task(&l, None), Some(0));
        out.clear();
        tsm.abort_since_completely_excluded(0, &l, None, &mut out);
        assert!(tsm.is_zombie());
        match &out[..] {
            [SchedulerEvent::TaskSetFailed { stage_id: 2, reason, .. }] => {
                assert!(
                    reason.starts_with(
                        "Aborting TaskSet 2.0 because task 0 (partition 0) cannot run anywhere due to node and executor \
                         excludeOnFailure. Excluded executors: A on ha (for the task), B on hb (for the task)."
                    ),
                    "{reason}"
                );
                assert!(reason.contains("Most recent failure: Lost task 0.1 in stage 2.0 (TID 2) (hb executor B): boom"), "{reason}");
            }
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn application_exclusion_counts_for_the_nowhere_check() {
        let l = live(&[("A", "ha"), ("B", "hb")]);
        let mut tsm = excluding_manager(task_set(0, 0, 0, 1), &l);
        let mut out = Vec::new();
        let a = launch(&mut tsm, "A", "ha", 0);
        tsm.handle_failed_task(a.task_id, TaskState::Failed, boom(), 1, &mut out);
        assert_eq!(tsm.completely_excluded_task(&l, None), None);
        // B is excluded for the application (two failures in an earlier successful stage).
        let mut health = HealthTracker::new(ExcludeOnFailureConfig::default());
        let mut earlier = TaskSetExcludelist::new(ExcludeOnFailureConfig::default(), 9, 0);
        earlier.update_for_failed_task("hb", "B", 0, "x", 0);
        earlier.update_for_failed_task("hb", "B", 1, "x", 0);
        health.update_for_successful_task_set(9, 0, earlier.exec_failures(), 0);
        assert_eq!(tsm.completely_excluded_task(&l, Some(&health)), Some(0));
        tsm.abort_since_completely_excluded(0, &l, Some(&health), &mut out);
        assert!(matches!(out.last(), Some(SchedulerEvent::TaskSetFailed { reason, .. }) if reason.contains("B on hb (for the application)")));
    }

    #[test]
    fn live_executors_track_hosts() {
        let mut l = live(&[("1", "a"), ("2", "a")]);
        assert!(!l.add("1", "a"));
        assert_eq!(l.remove("1").as_deref(), Some("a"));
        assert!(l.has_executors_alive_on_host("a"));
        l.remove("2");
        assert!(!l.has_executors_alive_on_host("a"));
        assert!(l.remove("2").is_none());
        assert!(l.is_empty());
    }

    #[test]
    fn launches_low_indices_first_and_names_tasks_like_spark() {
        let l = live(&[("0", "h")]);
        let mut tsm = manager(task_set(3, 1, 0, 3), &l, LocalityWaits::default(), 4);
        assert_eq!(tsm.locality_levels(), &[TaskLocality::NoPref, TaskLocality::Any]);
        let ids: Vec<usize> =
            (0..3).map(|_| tsm.resource_offer("0", "h", TaskLocality::Any, 0).unwrap().index).collect();
        assert_eq!(ids, [0, 1, 2]);
        let d = tsm.task_info(1).unwrap();
        assert_eq!((d.index, d.attempt_number, d.locality), (1, 0, TaskLocality::ProcessLocal));
        assert!(tsm.resource_offer("0", "h", TaskLocality::Any, 0).is_none());
        assert_eq!(tsm.running_tasks(), 3);
        assert_eq!(tsm.pending_tasks(), 0);
    }

    #[test]
    fn task_description_fields() {
        let l = live(&[("7", "h")]);
        let mut tsm = manager(task_set(2, 1, 0, 1), &l, LocalityWaits::default(), 4);
        let d = tsm.resource_offer("7", "h", TaskLocality::Any, 5).unwrap();
        assert_eq!(d.name, "task 0.0 in stage 2.1");
        assert_eq!((d.task_id, d.executor_id.as_str(), d.stage_id, d.stage_attempt_id, d.cpus), (0, "7", 2, 1, 1));
        assert!(matches!(d.kind, TaskKind::Result(_)));
    }

    #[test]
    fn delay_scheduling_waits_per_level_and_resets_on_launch() {
        // Task 0 prefers executor A's memory, task 1 host hb's disk.
        let l = live(&[("A", "ha"), ("B", "hb"), ("C", "hc")]);
        let prefs = vec![vec![on_executor("ha", "A")], vec![TaskLocation::Host("hb".into())]];
        let waits = LocalityWaits { process_ms: 100, node_ms: 200, rack_ms: 0 };
        let mut tsm = manager(task_set_with_prefs(0, 0, 0, prefs), &l, waits, 4);
        assert_eq!(tsm.locality_levels(), &[TaskLocality::ProcessLocal, TaskLocality::NodeLocal, TaskLocality::Any]);
        assert_eq!(tsm.next_wakeup_ms(), Some(100));
        // C is nobody's preference: nothing until both waits pass.
        assert!(tsm.resource_offer("C", "hc", TaskLocality::Any, 99).is_none());
        assert_eq!(tsm.get_allowed_locality(100), TaskLocality::NodeLocal);
        assert_eq!(tsm.next_wakeup_ms(), Some(300));
        assert!(tsm.resource_offer("C", "hc", TaskLocality::Any, 299).is_none());
        // B is node-local for task 1; launching it brings us back to NODE_LOCAL and restarts the wait.
        let d = tsm.resource_offer("B", "hb", TaskLocality::Any, 250).unwrap();
        assert_eq!((d.index, tsm.task_info(d.task_id).unwrap().locality), (1, TaskLocality::NodeLocal));
        // Task 0 is also node-local (on ha), so NODE_LOCAL waits 200 ms from that launch.
        assert!(tsm.resource_offer("C", "hc", TaskLocality::Any, 449).is_none());
        assert_eq!(tsm.next_wakeup_ms(), Some(450));
        let d = tsm.resource_offer("C", "hc", TaskLocality::Any, 450).unwrap();
        assert_eq!((d.index, tsm.task_info(d.task_id).unwrap().locality), (0, TaskLocality::Any));
        assert_eq!(tsm.next_wakeup_ms(), None);
    }

    #[test]
    fn max_locality_caps_the_search() {
        let l = live(&[("A", "ha"), ("B", "hb")]);
        let mut tsm =
            manager(task_set_with_prefs(0, 0, 0, vec![vec![on_executor("ha", "A")]]), &l, LocalityWaits::uniform(0), 4);
        assert!(tsm.resource_offer("B", "hb", TaskLocality::ProcessLocal, 0).is_none());
        assert!(tsm.resource_offer("B", "hb", TaskLocality::NodeLocal, 0).is_none());
        assert!(tsm.resource_offer("B", "hb", TaskLocality::Any, 0).is_some());
    }

    #[test]
    fn levels_need_live_executors() {
        let prefs = vec![vec![on_executor("ha", "A")]];
        let mut l = live(&[("B", "hb")]);
        let mut tsm = manager(task_set_with_prefs(0, 0, 0, prefs), &l, LocalityWaits::default(), 4);
        assert_eq!(tsm.locality_levels(), &[TaskLocality::Any]);
        l.add("A", "ha");
        tsm.recompute_locality(&l);
        assert_eq!(tsm.locality_levels(), &[TaskLocality::ProcessLocal, TaskLocality::NodeLocal, TaskLocality::Any]);
        // Another executor on A's host keeps NODE_LOCAL valid when A goes.
        l.add("A2", "ha");
        l.remove("A");
        tsm.recompute_locality(&l);
        assert_eq!(tsm.locality_levels(), &[TaskLocality::NodeLocal, TaskLocality::Any]);
    }

    #[test]
    fn retries_then_aborts_with_sparks_message() {
        let l = live(&[("1", "host1")]);
        let mut tsm = manager(task_set(0, 0, 0, 2), &l, LocalityWaits::default(), 2);
        let mut out = Vec::new();
        let boom = TaskEndReason::ExceptionFailure { description: "boom".into() };
        let first = tsm.resource_offer("1", "host1", TaskLocality::Any, 0).unwrap();
        tsm.handle_failed_task(first.task_id, TaskState::Failed, boom.clone(), 1, &mut out);
        assert!(!tsm.is_zombie());
        // The failed task goes back on top of the stacks and is retried before task 1.
        let retry = tsm.resource_offer("1", "host1", TaskLocality::Any, 2).unwrap();
        assert_eq!((retry.index, retry.attempt_number), (0, 1));
        let other = tsm.resource_offer("1", "host1", TaskLocality::Any, 2).unwrap();
        out.clear();
        tsm.handle_failed_task(retry.task_id, TaskState::Failed, boom, 3, &mut out);
        assert!(tsm.is_zombie());
        assert!(
            matches!(&out[0], SchedulerEvent::TaskEnded { result: Err(_), task_id, .. } if *task_id == retry.task_id)
        );
        match &out[1] {
            SchedulerEvent::TaskSetFailed { stage_id: 0, stage_attempt_id: 0, reason } => assert_eq!(
                reason,
                "Task 0 in stage 0.0 failed 2 times, most recent failure: Lost task 0.1 in stage 0.0 (TID 1) (host1 executor 1): boom"
            ),
            e => panic!("unexpected {e:?}"),
        }
        // The other running attempt is killed.
        assert!(matches!(&out[2], SchedulerEvent::KillTask { task_id, .. } if *task_id == other.task_id));
        assert!(tsm.resource_offer("1", "host1", TaskLocality::Any, 4).is_none());
        assert!(!tsm.is_finished());
        tsm.handle_failed_task(
            other.task_id,
            TaskState::Killed,
            TaskEndReason::TaskKilled { reason: "x".into() },
            5,
            &mut out,
        );
        assert!(tsm.is_finished());
    }

    #[test]
    fn uncounted_failures_never_abort() {
        let l = live(&[("1", "h")]);
        let mut tsm = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::default(), 1);
        let mut out = Vec::new();
        for _ in 0..5 {
            let d = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
            let reason = TaskEndReason::TaskKilled { reason: "speculation".into() };
            tsm.handle_failed_task(d.task_id, TaskState::Killed, reason, 0, &mut out);
        }
        assert!(!tsm.is_zombie());
        assert!(out.iter().all(|e| matches!(e, SchedulerEvent::TaskEnded { .. })));
    }

    #[test]
    fn fetch_failure_makes_a_zombie_without_retry() {
        let l = live(&[("1", "h")]);
        let mut tsm = manager(task_set(1, 0, 0, 2), &l, LocalityWaits::default(), 4);
        let d = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
        let mut out = Vec::new();
        let reason = TaskEndReason::FetchFailed {
            location: None,
            shuffle_id: 0,
            map_index: Some(0),
            reduce_id: 0,
            message: "gone".into(),
        };
        tsm.handle_failed_task(d.task_id, TaskState::Failed, reason, 0, &mut out);
        assert!(tsm.is_zombie() && tsm.is_finished());
        assert_eq!(out.len(), 1);
        assert!(tsm.resource_offer("1", "h", TaskLocality::Any, 0).is_none());
    }

    #[test]
    fn executor_loss_requeues_running_and_lost_map_output() {
        let mut l = live(&[("1", "h1"), ("2", "h2")]);
        let mut ts = task_set(0, 0, 0, 3);
        ts.kind = shuffle_kind();
        let mut tsm = manager(ts, &l, LocalityWaits::default(), 1);
        let a = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
        let b = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
        let c = tsm.resource_offer("2", "h2", TaskLocality::Any, 0).unwrap();
        let mut out = Vec::new();
        tsm.handle_successful_task(a.task_id, ok_result(), 1, &mut out);
        tsm.handle_successful_task(c.task_id, ok_result(), 1, &mut out);
        out.clear();
        l.remove("1");
        tsm.executor_lost("1", "worker died", &l, 2, &mut out);
        // Completed task a (output on 1) and running task b are both reported and re-queued.
        let ended: Vec<TaskId> = out
            .iter()
            .map(|e| match e {
                SchedulerEvent::TaskEnded {
                    task_id,
                    result: Err(TaskEndReason::ExecutorLostFailure { exit_caused_by_app: false, .. }),
                    ..
                } => *task_id,
                e => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(ended, [a.task_id, b.task_id]);
        assert_eq!(tsm.tasks_successful(), 1);
        assert_eq!(tsm.pending_tasks(), 2);
        // max_task_failures is 1, yet nothing was aborted: executor loss does not count.
        assert!(!tsm.is_zombie());
        let retried: Vec<usize> =
            (0..2).map(|_| tsm.resource_offer("2", "h2", TaskLocality::Any, 3).unwrap().index).collect();
        // The pending lists are stacks: the last task put back is retried first.
        assert_eq!(retried, [1, 0]);
    }

    #[test]
    fn result_task_set_keeps_results_on_executor_loss() {
        let mut l = live(&[("1", "h1")]);
        let mut tsm = manager(task_set(0, 0, 0, 2), &l, LocalityWaits::default(), 4);
        let a = tsm.resource_offer("1", "h1", TaskLocality::Any, 0).unwrap();
        let mut out = Vec::new();
        tsm.handle_successful_task(a.task_id, ok_result(), 1, &mut out);
        out.clear();
        l.remove("1");
        tsm.executor_lost("1", "gone", &l, 2, &mut out);
        assert!(out.is_empty());
        assert_eq!(tsm.tasks_successful(), 1);
    }

    #[test]
    fn duplicate_and_late_updates_are_ignored() {
        let l = live(&[("1", "h")]);
        let mut tsm = manager(task_set(0, 0, 0, 1), &l, LocalityWaits::default(), 4);
        let d = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
        let mut out = Vec::new();
        tsm.handle_successful_task(d.task_id, ok_result(), 1, &mut out);
        tsm.handle_successful_task(d.task_id, ok_result(), 1, &mut out);
        tsm.handle_failed_task(d.task_id, TaskState::Failed, TaskEndReason::TaskResultLost, 1, &mut out);
        tsm.handle_failed_task(99, TaskState::Failed, TaskEndReason::TaskResultLost, 1, &mut out);
        assert_eq!(out.len(), 1);
        assert!(tsm.is_finished() && tsm.all_succeeded());
    }

    #[test]
    fn cancel_kills_running_attempts() {
        let l = live(&[("1", "h")]);
        let mut tsm = manager(task_set(0, 0, 0, 3), &l, LocalityWaits::default(), 4);
        let a = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
        let b = tsm.resource_offer("1", "h", TaskLocality::Any, 0).unwrap();
        let mut out = Vec::new();
        tsm.cancel("Stage 0 cancelled", &mut out);
        let killed: Vec<TaskId> = out
            .iter()
            .map(|e| match e {
                SchedulerEvent::KillTask { task_id, executor_id, reason } => {
                    assert_eq!((executor_id.as_str(), reason.as_str()), ("1", "Stage 0 cancelled"));
                    *task_id
                }
                e => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(killed, [a.task_id, b.task_id]);
        assert!(tsm.is_zombie() && !tsm.is_finished());
        assert!(tsm.resource_offer("1", "h", TaskLocality::Any, 0).is_none());
    }

    #[test]
    fn empty_task_set_is_finished_at_once() {
        let tsm = manager(task_set(0, 0, 0, 0), &LiveExecutors::new(), LocalityWaits::default(), 4);
        assert!(tsm.is_finished());
    }
}
