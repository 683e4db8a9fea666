//! `TaskSchedulerImpl`: assigns the tasks of all active task sets to executors' free cores and
//! routes status updates back to the task set they belong to (Spark's `TaskSchedulerImpl`).
//!
//! It also holds the two application-wide policies of Spark's `TaskSchedulerImpl`: the
//! speculation check (run by the event loop every `ember.speculation.interval`, see
//! [`TaskSchedulerImpl::next_speculation_check_ms`]) and the [`HealthTracker`] of
//! `excludeOnFailure`, whose excluded executors and nodes get no offers.
//!
//! A deterministic state machine: it owns no thread, reads time from an injected
//! [`Clock`] and shuffles offers with a seeded RNG, and returns what the DAG scheduler and the
//! executors must hear as [`SchedulerEvent`]s. The driver's event loop owns it.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::{debug, error, info, warn};

use ember_common::{
    ExecutorId, StageId, StatusUpdate, TaskEndReason, TaskId, TaskOutcome, TaskState,
};

use crate::clock::Clock;
use crate::config::SchedulerConfig;
use crate::health_tracker::HealthTracker;
use crate::live_executors::LiveExecutors;
use crate::locality::TaskLocality;
use crate::pool::{RootPool, SchedulableStats, TaskSetKey, DEFAULT_POOL_NAME};
use crate::task::TaskDescription;
use crate::task_set::{SchedulerEvent, TaskSet, WorkerOffer};
use crate::task_set_manager::{TaskIdSource, TaskSetManager};

/// Where a launched attempt belongs.
#[derive(Clone, Debug)]
struct RunningTask {
    task_set: TaskSetKey,
    executor_id: ExecutorId,
}

/// The task scheduler. See the module documentation.
pub struct TaskSchedulerImpl {
    config: SchedulerConfig,
    clock: Arc<dyn Clock>,
    rng: SmallRng,
    root: RootPool,
    /// Active task sets; ordered so that walks over them (executor loss, cancel) are
    /// deterministic.
    task_sets: BTreeMap<TaskSetKey, TaskSetManager>,
    task_ids: TaskIdSource,
    /// Launched attempts whose end has not been reported yet.
    running: FxHashMap<TaskId, RunningTask>,
    live: LiveExecutors,
    /// An executor joined since the last `resource_offers`: task sets must recompute their
    /// locality levels before the next assignment.
    new_executor_available: bool,
    /// Application-level `excludeOnFailure`, when enabled.
    health: Option<HealthTracker>,
    /// When the next speculation check is due (with speculation on).
    next_speculation_check_ms: u64,
    /// Task sets with a task excluded on every executor, waiting for a new executor (SPARK-22148):
    /// when they are aborted, and the task (Spark's `unschedulableTaskSetToExpiryTime`).
    unschedulable: BTreeMap<TaskSetKey, (u64, usize)>,
    /// A task set was ever submitted / a task ever launched (Spark's `hasReceivedTask`,
    /// `hasLaunchedTask`), and when the starvation warning is next due while none launched.
    has_received_task: bool,
    has_launched_task: bool,
    next_starvation_warning_ms: Option<u64>,
    /// When "Releasing the assigned resource offers …" was last logged (Spark logs it at most
    /// once a minute).
    last_barrier_release_log_ms: Option<u64>,
}

/// How often a barrier task set that could not launch in full says so.
const BARRIER_RELEASE_LOG_INTERVAL_MS: u64 = 60_000;

/// Spark's warning, every `ember.starvation.timeout` while the first task set of the application
/// has launched nothing (see [`TaskSchedulerImpl::check_starvation`]).
pub const STARVATION_WARNING: &str = "Initial job has not accepted any resources; check your \
                                      cluster UI to ensure that workers are registered and have \
                                      sufficient resources";

impl std::fmt::Debug for TaskSchedulerImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSchedulerImpl")
            .field("mode", &self.config.mode)
            .field("task_sets", &self.task_sets.values().collect::<Vec<_>>())
            .field("running", &self.running.len())
            .field("executors", &self.live.len())
            .finish()
    }
}

impl TaskSchedulerImpl {
    /// A scheduler with no executors and no task sets. `seed` fixes the order in which offers
    /// are tried, so a run can be replayed exactly. A `task_cpus` or `max_task_failures` of 0
    /// (which `ember` rejects when it reads the configuration) is taken as 1.
    pub fn new(mut config: SchedulerConfig, clock: Arc<dyn Clock>, seed: u64) -> Self {
        config.task_cpus = config.task_cpus.max(1);
        config.max_task_failures = config.max_task_failures.max(1);
        let root = RootPool::new(config.mode, &config.pools);
        let health = config.exclude_on_failure.map(HealthTracker::new);
        let next_speculation_check_ms = clock
            .now_ms()
            .saturating_add(config.speculation.map_or(0, |s| s.interval_ms));
        TaskSchedulerImpl {
            config,
            clock,
            rng: SmallRng::seed_from_u64(seed),
            root,
            task_sets: BTreeMap::new(),
            task_ids: TaskIdSource::new(),
            running: FxHashMap::default(),
            live: LiveExecutors::new(),
            new_executor_available: false,
            health,
            next_speculation_check_ms,
            unschedulable: BTreeMap::new(),
            has_received_task: false,
            has_launched_task: false,
            next_starvation_warning_ms: None,
            last_barrier_release_log_ms: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The pool tree.
    pub fn root_pool(&self) -> &RootPool {
        &self.root
    }

    /// The executors known to be alive.
    pub fn live_executors(&self) -> &LiveExecutors {
        &self.live
    }

    /// The application-level exclusion state, when `excludeOnFailure` is enabled.
    pub fn health_tracker(&self) -> Option<&HealthTracker> {
        self.health.as_ref()
    }

    /// Lifts the application-level exclusions that have timed out by now (also done before
    /// every offer round).
    pub fn apply_exclude_on_failure_timeout(&mut self) {
        let now = self.clock.now_ms();
        if let Some(h) = &mut self.health {
            h.apply_timeout(now);
        }
    }

    /// The executors excluded for the application, in id order (empty when `excludeOnFailure`
    /// is off).
    pub fn excluded_executors(&self) -> Vec<ExecutorId> {
        self.health
            .as_ref()
            .map(HealthTracker::excluded_executors)
            .unwrap_or_default()
    }

    /// Launched attempts whose end has not been reported yet.
    pub fn running_task_count(&self) -> usize {
        self.running.len()
    }

    /// An active task set, by stage and attempt.
    pub fn task_set_manager(
        &self,
        stage_id: StageId,
        stage_attempt_id: u32,
    ) -> Option<&TaskSetManager> {
        self.task_sets.get(&(stage_id, stage_attempt_id))
    }

    /// Adds a task set (Spark's `submitTasks`). Earlier attempts of the same stage become
    /// zombies: they finish their running tasks but launch no more.
    pub fn submit_tasks(&mut self, task_set: TaskSet) {
        let key = (task_set.stage_id, task_set.stage_attempt_id);
        info!(
            "Adding task set {} with {} tasks",
            task_set.id(),
            task_set.tasks.len()
        );
        let stage_keys: Vec<TaskSetKey> = self.stage_keys(task_set.stage_id);
        let mut finished = Vec::new();
        for k in stage_keys {
            if let Some(old) = self.task_sets.get_mut(&k) {
                if k == key {
                    error!(
                        "Task set {} was submitted twice; the earlier one is dropped",
                        task_set.id()
                    );
                    for tid in old.running_task_ids().collect::<Vec<_>>() {
                        self.running.remove(&tid);
                    }
                    self.task_sets.remove(&k);
                    self.root.remove_task_set(k);
                } else if !old.is_zombie() {
                    warn!(
                        "Marking TaskSet {} as a zombie: attempt {} of the stage was submitted",
                        old.id(),
                        key.1
                    );
                    old.mark_zombie();
                }
            }
            self.maybe_finish(k, &mut finished);
        }
        let pool = task_set.pool_name.clone();
        let now = self.clock.now_ms();
        if let (Some(timeout), false) = (self.config.starvation_timeout_ms, self.has_received_task)
        {
            self.next_starvation_warning_ms = Some(now.saturating_add(timeout));
        }
        self.has_received_task = true;
        let manager = TaskSetManager::new(
            task_set,
            self.config.manager_config(),
            self.task_ids.clone(),
            &self.live,
            now,
        );
        self.task_sets.insert(key, manager);
        self.root.add_task_set(key, &pool);
        // Only a task set whose last task just succeeded can get executors excluded (and ask for
        // kills), and that one was finished by the status update that reported it.
        self.maybe_finish(key, &mut finished);
    }

    /// Records a new executor. The next [`Self::resource_offers`] recomputes every task set's
    /// locality levels, since some may now be attainable.
    pub fn executor_added(&mut self, executor_id: &str, host: &str) {
        if self.live.add(executor_id, host) {
            info!("Executor {executor_id} added on host {host}");
            self.new_executor_available = true;
        }
    }

    /// Handles the loss of an executor: its running attempts end with `ExecutorLostFailure`
    /// (`exit_caused_by_app: false`, so not counted as task failures) and are re-queued; for
    /// shuffle-map task sets, tasks whose output was there are re-queued too. Status updates
    /// that arrive later for those attempts are ignored.
    pub fn executor_lost(&mut self, executor_id: &str, reason: &str) -> Vec<SchedulerEvent> {
        self.executor_exited(executor_id, reason, false)
    }

    /// Handles the loss of an executor whose process is known to have exited while running its
    /// tasks (Spark's `ExecutorExited` with `exitCausedByApp`): if `exit_caused_by_app`, the loss
    /// counts as a failure of each of its running tasks, so a task that kills its executor fails
    /// its job after `max_task_failures` attempts instead of being retried forever.
    pub fn executor_exited(
        &mut self,
        executor_id: &str,
        reason: &str,
        exit_caused_by_app: bool,
    ) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        let Some(host) = self.live.remove(executor_id) else {
            error!("Lost an executor {executor_id} (already removed): {reason}");
            return events;
        };
        error!("Lost executor {executor_id} on {host}: {reason}");
        self.running.retain(|_, t| t.executor_id != executor_id);
        if let Some(h) = &mut self.health {
            h.handle_removed_executor(executor_id);
        }
        let now = self.clock.now_ms();
        for tsm in self.task_sets.values_mut() {
            tsm.executor_lost(
                executor_id,
                reason,
                exit_caused_by_app,
                &self.live,
                now,
                &mut events,
            );
        }
        self.remove_finished(&mut events);
        events
    }

    /// Assigns tasks to free cores (Spark's `resourceOffers`, reference 001).
    ///
    /// `result[i]` holds the tasks for `offers[i]`. Offers from unknown executors register
    /// them. The offers are tried in a fresh seeded-random order on every call, so tasks spread
    /// over the cluster. Task sets are taken in the root pool's order; each is offered every
    /// executor at each of its locality levels from best to worst, again and again while that
    /// launches something. The events are one `TaskStarted` per launch.
    ///
    /// Delay scheduling as in Spark ≥ 3.1 (SPARK-18886): a task set's locality wait restarts
    /// only after a round in which it launched something and declined no offer for locality
    /// (see [`TaskSetManager::offer`]), so while it leaves free cores unused its wait keeps
    /// running and it moves to worse levels. `ember.locality.wait.legacyResetOnTaskLaunch`
    /// restores the older rule (every launch restarts the wait).
    ///
    /// With `excludeOnFailure`, executors and nodes excluded for the application get nothing
    /// (exclusions that timed out are lifted first). A task set that launches nothing while one
    /// of its tasks is excluded on every live executor could only hang (SPARK-22148): if some
    /// executor is idle, a `KillExecutor` asks for it to be replaced and the task set waits
    /// `ember.scheduler.excludeOnFailure.unschedulableTaskSetTimeout` for a usable executor
    /// (see [`Self::abort_unschedulable_task_sets`]); if every executor is busy, no replacement
    /// can be had and the task set is aborted at once. Any launch ends every such wait.
    // The unschedulable-wait bookkeeping checks, logs and pushes events between the lookup and
    // the insert; an `entry` would hold the map borrowed across all of it.
    #[allow(clippy::map_entry)]
    pub fn resource_offers(
        &mut self,
        offers: &[WorkerOffer],
    ) -> (Vec<Vec<TaskDescription>>, Vec<SchedulerEvent>) {
        let mut assigned: Vec<Vec<TaskDescription>> = offers.iter().map(|_| Vec::new()).collect();
        let mut events = Vec::new();
        for o in offers {
            self.executor_added(&o.executor_id, &o.host);
        }
        if offers.is_empty() || self.task_sets.is_empty() {
            return (assigned, events);
        }
        let now = self.clock.now_ms();
        if let Some(h) = &mut self.health {
            h.apply_timeout(now);
        }

        let mut order: Vec<usize> = (0..offers.len()).collect();
        order.shuffle(&mut self.rng);
        let task_cpus = self.config.task_cpus;
        let health = self.health.as_ref();
        let mut free_cpus: Vec<u32> = offers
            .iter()
            .map(|o| {
                let excluded = health.is_some_and(|h| {
                    h.is_node_excluded(&o.host) || h.is_executor_excluded(&o.executor_id)
                });
                if excluded {
                    0
                } else {
                    o.cores
                }
            })
            .collect();
        // Launches still possible: each launch takes exactly task_cpus off one offer, i.e. one
        // slot. Stopping at zero changes nothing (no offer could be asked) and saves the walk.
        let mut slots: u64 = free_cpus.iter().map(|c| u64::from(c / task_cpus)).sum();

        let task_sets = &self.task_sets;
        let sorted = self.root.sorted_task_sets(|k| match task_sets.get(&k) {
            Some(tsm) => tsm.stats(),
            // Not reachable (the tree and the map change together); sorted last and skipped.
            None => SchedulableStats {
                name: "",
                priority: usize::MAX,
                stage_id: usize::MAX,
                running_tasks: usize::MAX,
                min_share: 0,
                weight: 1,
            },
        });
        if self.new_executor_available {
            for tsm in self.task_sets.values_mut() {
                tsm.recompute_locality(&self.live);
            }
            self.new_executor_available = false;
        }

        let mut aborted: Vec<TaskSetKey> = Vec::new();
        for key in sorted {
            // Once the cores are used up only the exclusion check is left to do.
            if slots == 0 && self.health.is_none() {
                break;
            }
            let Some(tsm) = self.task_sets.get_mut(&key) else {
                continue;
            };
            debug!(
                "Offering to {}: {} running tasks",
                tsm.name(),
                tsm.running_tasks()
            );
            // A barrier task set launches all its tasks in this round or none (Spark's
            // resourceOffers): with too few free slots it is not even offered.
            let barrier_tasks = tsm.is_barrier().then(|| tsm.pending_tasks());
            match barrier_tasks {
                Some(0) => continue,
                Some(n) if slots < n as u64 => {
                    info!(
                        "Skip current round of resource offers for barrier stage {} because the \
                         barrier taskSet requires {} slots, while the total number of available \
                         slots is {slots}.",
                        key.0,
                        tsm.num_tasks()
                    );
                    continue;
                }
                _ => {}
            }
            // This task set's launches, committed once the round is over (a barrier task set's
            // may be taken back).
            let mut launches: Vec<(usize, TaskDescription, SchedulerEvent)> = Vec::new();
            let levels: Vec<TaskLocality> = tsm.locality_levels().to_vec();
            let mut launched_any = false;
            // Spark ≥ 3.1 (SPARK-18886): the locality wait restarts only after a round in which
            // the set declined no offer for delay scheduling.
            let mut no_delay_rejects = true;
            let mut min_locality: Option<TaskLocality> = None;
            'levels: for max_locality in levels {
                loop {
                    if slots == 0 {
                        break 'levels;
                    }
                    let mut launched = false;
                    for &i in &order {
                        if free_cpus[i] < task_cpus {
                            continue;
                        }
                        let offer = &offers[i];
                        let offered = tsm.offer(&offer.executor_id, &offer.host, max_locality, now);
                        no_delay_rejects &= !offered.delay_reject;
                        if let Some(task) = offered.task {
                            let locality = tsm
                                .task_info(task.task_id)
                                .map_or(TaskLocality::Any, |i| i.locality);
                            min_locality = Some(min_locality.map_or(locality, |m| m.min(locality)));
                            let started = SchedulerEvent::TaskStarted {
                                stage_id: task.stage_id,
                                stage_attempt_id: task.stage_attempt_id,
                                task_id: task.task_id,
                                partition: task.partition_id,
                                speculative: tsm
                                    .task_info(task.task_id)
                                    .is_some_and(|t| t.speculative),
                                locality,
                            };
                            free_cpus[i] -= task_cpus;
                            slots -= 1;
                            launches.push((i, task, started));
                            launched = true;
                        }
                    }
                    if !launched {
                        break;
                    }
                    launched_any = true;
                }
            }
            if barrier_tasks.is_some_and(|n| launches.len() < n) {
                if self.config.legacy_locality_wait_reset {
                    let message = format!(
                        "Fail resource offers for barrier stage {} because only {} out of a total \
                         number of {} tasks got resource offers. We highly recommend you to use \
                         the non-legacy delay scheduling by setting \
                         ember.locality.wait.legacyResetOnTaskLaunch to false to get rid of this \
                         error.",
                        key.0,
                        launches.len(),
                        tsm.num_tasks()
                    );
                    warn!("{message}");
                    tsm.abort(&message, &mut events);
                    aborted.push(key);
                } else if self
                    .last_barrier_release_log_ms
                    .is_none_or(|t| now.saturating_sub(t) >= BARRIER_RELEASE_LOG_INTERVAL_MS)
                {
                    self.last_barrier_release_log_ms = Some(now);
                    info!(
                        "Releasing the assigned resource offers since only partial tasks can be \
                         launched. Waiting for later round resource offers."
                    );
                }
                // SPARK-24818: the cores go back to the round and the tasks wait for a later
                // one, in their first order.
                for (i, task, _) in launches.drain(..).rev() {
                    tsm.undo_launch(task.task_id);
                    free_cpus[i] += task_cpus;
                    slots += 1;
                }
                launched_any = false;
            } else if barrier_tasks.is_some() {
                info!(
                    "Successfully scheduled all the {} tasks for barrier stage {}.",
                    launches.len(),
                    key.0
                );
            }
            for (i, task, started) in launches {
                self.running.insert(
                    task.task_id,
                    RunningTask {
                        task_set: key,
                        executor_id: offers[i].executor_id.clone(),
                    },
                );
                events.push(started);
                assigned[i].push(task);
            }
            // Every round offers all free cores (Spark's `isAllFreeResources`), so a round that
            // launched and declined nothing for locality is a fair share fully used.
            if !self.config.legacy_locality_wait_reset && no_delay_rejects && launched_any {
                tsm.reset_delay_schedule_timer(min_locality, now);
            }
            if let (Some(exclusion), false) = (self.config.exclude_on_failure, launched_any) {
                if let Some(index) = tsm.completely_excluded_task(&self.live, self.health.as_ref())
                {
                    let busy: FxHashSet<&str> = self
                        .running
                        .values()
                        .map(|t| t.executor_id.as_str())
                        .collect();
                    let mut executors: Vec<&str> = self
                        .live
                        .executors_by_host()
                        .into_values()
                        .flatten()
                        .collect();
                    executors.sort_unstable();
                    match executors
                        .into_iter()
                        .find(|e| !busy.contains(e))
                        .map(str::to_string)
                    {
                        Some(idle) => {
                            if !self.unschedulable.contains_key(&key) {
                                let reason = format!(
                                    "Killing excluded idle executor id {idle} because of task \
                                     unschedulability and trying to acquire a new executor."
                                );
                                // Nothing more goes to it this round: it is about to stop.
                                for (i, o) in offers.iter().enumerate() {
                                    if o.executor_id == idle {
                                        slots -= u64::from(free_cpus[i] / task_cpus);
                                        free_cpus[i] = 0;
                                    }
                                }
                                events.push(SchedulerEvent::KillExecutor {
                                    executor_id: idle,
                                    reason,
                                });
                                let timeout = exclusion.unschedulable_task_set_timeout_ms;
                                info!(
                                    "Waiting for {timeout} ms for completely excluded task to be \
                                     schedulable again before aborting stage {}.",
                                    key.0
                                );
                                self.unschedulable
                                    .insert(key, (now.saturating_add(timeout), index));
                            }
                        }
                        None => {
                            info!(
                                "Cannot schedule any task because all executors excluded from \
                                 failures. No idle executors can be found to kill. Aborting stage \
                                 {}.",
                                key.0
                            );
                            tsm.abort_since_completely_excluded(index, &mut events);
                            aborted.push(key);
                        }
                    }
                }
            } else if launched_any && !self.unschedulable.is_empty() {
                info!(
                    "Clearing the expiry times for all unschedulable taskSets as a task was \
                     recently scheduled."
                );
                self.unschedulable.clear();
            }
        }
        for key in aborted {
            self.maybe_finish(key, &mut events);
        }
        self.has_launched_task |= assigned.iter().any(|a| !a.is_empty());
        (assigned, events)
    }

    /// When the starvation warning is next due (see [`Self::check_starvation`]), while no task
    /// has launched.
    pub fn next_starvation_warning_ms(&self) -> Option<u64> {
        self.next_starvation_warning_ms
            .filter(|_| !self.has_launched_task)
    }

    /// Whether to warn now that the application's first task set has launched nothing for
    /// `ember.starvation.timeout` ([`STARVATION_WARNING`], Spark's `starvationTimer`): due every
    /// timeout after that first submission until a task launches; then never again, even if a
    /// later job starves. Never in local mode. The event loop calls this on every turn,
    /// [`Self::next_wakeup_ms`] includes the deadline.
    pub fn check_starvation(&mut self) -> bool {
        let (Some(due), Some(timeout)) = (
            self.next_starvation_warning_ms,
            self.config.starvation_timeout_ms,
        ) else {
            return false;
        };
        let now = self.clock.now_ms();
        if now < due {
            return false;
        }
        if self.has_launched_task {
            self.next_starvation_warning_ms = None;
            return false;
        }
        // One warning however late the check is; the next falls on the fixed rate.
        let periods = (now - due) / timeout.max(1) + 1;
        self.next_starvation_warning_ms = Some(due.saturating_add(periods.saturating_mul(timeout)));
        true
    }

    /// Aborts the task sets that waited `unschedulableTaskSetTimeout` for an executor able to
    /// run their completely excluded task (Spark's unschedulable-task-set abort timer; the event
    /// loop calls this on every turn, [`Self::next_wakeup_ms`] includes the deadlines).
    pub fn abort_unschedulable_task_sets(&mut self) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        let now = self.clock.now_ms();
        let expired: Vec<(TaskSetKey, usize)> = self
            .unschedulable
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, (_, index))| (*k, *index))
            .collect();
        for (key, index) in expired {
            self.unschedulable.remove(&key);
            let Some(tsm) = self.task_sets.get_mut(&key) else {
                continue;
            };
            info!(
                "Cannot schedule any task because all executors excluded due to failures. Wait \
                 time for scheduling expired. Aborting stage {}.",
                key.0
            );
            tsm.abort_since_completely_excluded(index, &mut events);
            self.maybe_finish(key, &mut events);
        }
        events
    }

    /// Marks stragglers of every task set for speculative copies (Spark's
    /// `checkSpeculatableTasks`, run from a timer there and by the event loop here); returns
    /// whether any task was newly marked, i.e. whether offers should be made. Schedules the next
    /// check one `ember.speculation.interval` after `now`. Does nothing with speculation off.
    pub fn check_speculatable_tasks(&mut self, now: u64) -> bool {
        let Some(speculation) = self.config.speculation else {
            return false;
        };
        self.next_speculation_check_ms = now.saturating_add(speculation.interval_ms);
        let mut found = false;
        for tsm in self.task_sets.values_mut() {
            found |= tsm.check_speculatable_tasks(speculation.min_task_runtime_ms, now);
        }
        found
    }

    /// When the next speculation check is due: with speculation on and some task set running
    /// tasks that could become stragglers; `None` otherwise. May be in the past.
    pub fn next_speculation_check_ms(&self) -> Option<u64> {
        self.config.speculation?;
        let any_running = self
            .task_sets
            .values()
            .any(|t| !t.is_zombie() && t.running_tasks() > 0);
        any_running.then_some(self.next_speculation_check_ms)
    }

    /// Handles an executor's report on a task (Spark's `statusUpdate`). A finished attempt is
    /// passed to its task set, which reports `TaskEnded` (and `TaskSetFailed` when it gives up).
    /// Updates for unknown or already-ended attempts are logged and ignored.
    pub fn status_update(&mut self, update: StatusUpdate) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        let StatusUpdate {
            executor_id,
            task_id,
            state,
            outcome,
        } = update;
        if !state.is_finished() {
            return events;
        }
        let Some(task) = self.running.remove(&task_id) else {
            error!(
                "Ignoring update with state {state:?} for TID {task_id} from executor \
                 {executor_id} because its task set is gone (this is likely the result of \
                 receiving duplicate task finished status updates) or its executor was lost"
            );
            return events;
        };
        let Some(tsm) = self.task_sets.get_mut(&task.task_set) else {
            error!(
                "Ignoring update for TID {task_id}: task set {}.{} is gone",
                task.task_set.0, task.task_set.1
            );
            return events;
        };
        let now = self.clock.now_ms();
        match (state, outcome) {
            (TaskState::Finished, TaskOutcome::Success(result)) => {
                tsm.handle_successful_task(task_id, result, now, &mut events)
            }
            (_, TaskOutcome::Failure { reason, .. }) => {
                tsm.handle_failed_task(task_id, state, reason, now, &mut events)
            }
            (state, outcome) => {
                // A finished state without a matching payload: report it as a failure rather than
                // lose the attempt.
                warn!("TID {task_id} ended in state {state:?} with unexpected payload {outcome:?}");
                let reason = match state {
                    TaskState::Killed => TaskEndReason::TaskKilled {
                        reason: "unknown reason".into(),
                    },
                    TaskState::Finished => TaskEndReason::TaskResultLost,
                    _ => TaskEndReason::ExceptionFailure {
                        description: format!("task ended in state {state:?} without a reason"),
                    },
                };
                tsm.handle_failed_task(task_id, state, reason, now, &mut events)
            }
        }
        self.maybe_finish(task.task_set, &mut events);
        events
    }

    /// Aborts the task set of a launched attempt that could not be sent to its executor (its
    /// serialized form is larger than the RPC limit), as Spark's `launchTasks` does; the attempt
    /// itself is ended as killed so nothing waits for it.
    pub fn abort_task_set_of(
        &mut self,
        task_id: TaskId,
        executor_id: &str,
        message: &str,
    ) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        let Some(task) = self.running.get(&task_id) else {
            return events;
        };
        let key = task.task_set;
        if let Some(tsm) = self.task_sets.get_mut(&key) {
            tsm.abort(message, &mut events);
        }
        let update = StatusUpdate {
            executor_id: executor_id.to_string(),
            task_id,
            state: TaskState::Killed,
            outcome: TaskOutcome::Failure {
                reason: TaskEndReason::TaskKilled {
                    reason: "task set aborted".into(),
                },
                metrics: None,
            },
        };
        events.extend(self.status_update(update));
        events
    }

    /// Cancels every attempt of a stage (Spark's `cancelTasks` / `killAllTaskAttempts`): its
    /// running attempts get `KillTask` and its task sets become zombies. Their ends still come
    /// back through [`Self::status_update`].
    pub fn cancel_stage(&mut self, stage_id: StageId, reason: &str) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        info!("Cancelling stage {stage_id}");
        for key in self.stage_keys(stage_id) {
            if let Some(tsm) = self.task_sets.get_mut(&key) {
                tsm.cancel(reason, &mut events);
                info!("Stage {stage_id} was cancelled");
            }
            self.maybe_finish(key, &mut events);
        }
        events
    }

    /// A zombie attempt of stage `stage_id` computed `partition`: its active attempts need not
    /// run it (Spark's `notifyPartitionCompletion` / `handlePartitionCompleted`). Returns what
    /// finishing a task set this completes asks for.
    pub fn notify_partition_completion(
        &mut self,
        stage_id: StageId,
        partition: usize,
    ) -> Vec<SchedulerEvent> {
        let mut events = Vec::new();
        for key in self.stage_keys(stage_id) {
            if let Some(tsm) = self.task_sets.get_mut(&key) {
                if !tsm.is_zombie() {
                    tsm.mark_partition_completed(partition);
                }
            }
            self.maybe_finish(key, &mut events);
        }
        events
    }

    /// The earliest clock time at which the event loop has something to do without being sent
    /// an event: a delay-scheduling wait expires while tasks are pending (a task refused for
    /// locality may now be accepted), a speculation check is due, an exclusion ends, an
    /// unschedulable task set's wait ends, or the starvation warning is due. May be
    /// in the past. `None` when nothing waits.
    pub fn next_wakeup_ms(&self) -> Option<u64> {
        let delay = self
            .task_sets
            .values()
            .filter_map(TaskSetManager::next_wakeup_ms)
            .min();
        let expiry = self.health.as_ref().and_then(HealthTracker::next_expiry_ms);
        let unschedulable = self.unschedulable.values().map(|(at, _)| *at).min();
        let starvation = self.next_starvation_warning_ms();
        [
            delay,
            self.next_speculation_check_ms(),
            expiry,
            unschedulable,
            starvation,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Running attempts of every attempt of a stage.
    pub fn running_tasks_of_stage(&self, stage_id: StageId) -> usize {
        self.task_sets
            .range((stage_id, 0)..=(stage_id, u32::MAX))
            .map(|(_, t)| t.running_tasks())
            .sum()
    }

    /// Whether no task set is active.
    pub fn is_idle(&self) -> bool {
        self.task_sets.is_empty()
    }

    fn stage_keys(&self, stage_id: StageId) -> Vec<TaskSetKey> {
        self.task_sets
            .range((stage_id, 0)..=(stage_id, u32::MAX))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Drops a task set that is done (Spark's `taskSetFinished`). With
    /// `ember.excludeOnFailure.killExcludedExecutors`, the executors its success got excluded
    /// (and every executor of a node it got excluded) are asked to be killed, in `events`.
    fn maybe_finish(&mut self, key: TaskSetKey, events: &mut Vec<SchedulerEvent>) {
        let Some(tsm) = self.task_sets.get(&key) else {
            return;
        };
        if !tsm.is_finished() {
            return;
        }
        let pool = if tsm.task_set().pool_name.is_empty() {
            DEFAULT_POOL_NAME
        } else {
            tsm.task_set().pool_name.as_str()
        };
        if tsm.all_succeeded() {
            // Only now do the task set's failures count against its executors: had the stage
            // failed, its code would be the likelier culprit.
            if let (Some(h), Some(l)) = (&mut self.health, tsm.excludelist()) {
                let (executors, nodes) = h.update_for_successful_task_set(
                    key.0,
                    key.1,
                    l.exec_failures(),
                    self.clock.now_ms(),
                );
                if h.config().kill_excluded_executors {
                    let key_name = "ember.excludeOnFailure.killExcludedExecutors";
                    let mut kills: Vec<(String, String)> = executors
                        .into_iter()
                        .map(|e| {
                            let reason = format!(
                                "Killing excluded executor id {e} since {key_name} is set."
                            );
                            (e, reason)
                        })
                        .collect();
                    let by_host = self.live.executors_by_host();
                    for node in nodes {
                        for e in by_host.get(node.as_str()).into_iter().flatten() {
                            if !kills.iter().any(|(k, _)| k == e) {
                                let reason = format!(
                                    "Killing all executors on excluded host {node} since \
                                     {key_name} is set."
                                );
                                kills.push((e.to_string(), reason));
                            }
                        }
                    }
                    for (executor_id, reason) in kills {
                        if self.live.is_executor_alive(&executor_id) {
                            events.push(SchedulerEvent::KillExecutor {
                                executor_id,
                                reason,
                            });
                        }
                    }
                }
            }
            info!(
                "Removed TaskSet {}, whose tasks have all completed, from pool {pool}",
                tsm.id()
            );
        } else {
            info!(
                "Removed TaskSet {}, since it failed, from pool {pool}",
                tsm.id()
            );
        }
        self.task_sets.remove(&key);
        self.root.remove_task_set(key);
        self.unschedulable.remove(&key);
    }

    fn remove_finished(&mut self, events: &mut Vec<SchedulerEvent>) {
        let done: Vec<TaskSetKey> = self
            .task_sets
            .iter()
            .filter(|(_, t)| t.is_finished())
            .map(|(k, _)| *k)
            .collect();
        for key in done {
            self.maybe_finish(key, events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_common::TaskLocation;

    use crate::clock::ManualClock;
    use crate::config::{ExcludeOnFailureConfig, SpeculationConfig};
    use crate::pool::{PoolConfig, SchedulingMode};
    use crate::task_set_manager::{KILLED_BY_OTHER_ATTEMPT, LATE_RESULT_DROPPED};
    use crate::test_support::*;
    use std::collections::{BTreeSet, HashMap};

    fn offer(exec: &str, host: &str, cores: u32) -> WorkerOffer {
        WorkerOffer {
            executor_id: exec.into(),
            host: host.into(),
            cores,
        }
    }

    fn scheduler(config: SchedulerConfig, seed: u64) -> (TaskSchedulerImpl, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(0));
        (TaskSchedulerImpl::new(config, clock.clone(), seed), clock)
    }

    fn success(exec: &str, task_id: TaskId) -> StatusUpdate {
        StatusUpdate {
            executor_id: exec.into(),
            task_id,
            state: TaskState::Finished,
            outcome: TaskOutcome::Success(ok_result()),
        }
    }

    fn failure(
        exec: &str,
        task_id: TaskId,
        state: TaskState,
        reason: TaskEndReason,
    ) -> StatusUpdate {
        StatusUpdate {
            executor_id: exec.into(),
            task_id,
            state,
            outcome: TaskOutcome::Failure {
                reason,
                metrics: None,
            },
        }
    }

    fn stages_of(tasks: &[Vec<TaskDescription>]) -> Vec<StageId> {
        tasks.iter().flatten().map(|t| t.stage_id).collect()
    }

    #[test]
    fn scheduler_is_send() {
        fn is_send<T: Send>() {}
        is_send::<TaskSchedulerImpl>();
    }

    #[test]
    fn fifo_orders_by_job_then_stage() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(task_set(7, 0, 2, 1)); // job 2
        s.submit_tasks(task_set(5, 0, 1, 1)); // job 1, later stage
        s.submit_tasks(task_set(4, 0, 1, 1)); // job 1, earlier stage
        let (tasks, events) = s.resource_offers(&[offer("0", "h", 2)]);
        assert_eq!(stages_of(&tasks), [4, 5]);
        assert_eq!(events.len(), 2);
        let (tasks, _) = s.resource_offers(&[offer("0", "h", 1)]);
        assert_eq!(stages_of(&tasks), [7]);
    }

    #[test]
    fn fair_shares_by_weight_and_min_share() {
        let config = SchedulerConfig {
            mode: SchedulingMode::Fair,
            pools: vec![
                PoolConfig {
                    name: "a".into(),
                    mode: SchedulingMode::Fifo,
                    weight: 1,
                    min_share: 0,
                },
                PoolConfig {
                    name: "b".into(),
                    mode: SchedulingMode::Fifo,
                    weight: 2,
                    min_share: 0,
                },
                PoolConfig {
                    name: "c".into(),
                    mode: SchedulingMode::Fifo,
                    weight: 1,
                    min_share: 2,
                },
            ],
            ..SchedulerConfig::default()
        };
        let (mut s, _) = scheduler(config, 1);
        for (stage, pool) in [(1, "a"), (2, "b"), (3, "c")] {
            let mut ts = task_set(stage, 0, stage, 10);
            ts.pool_name = pool.into();
            s.submit_tasks(ts);
        }
        // One core per call, so each call re-sorts the pools with the new running counts.
        let mut got = Vec::new();
        for _ in 0..8 {
            let (tasks, _) = s.resource_offers(&[offer("0", "h", 1)]);
            got.extend(stages_of(&tasks));
        }
        // c first up to its minShare of 2; then the lowest running/weight, ties by name:
        // a 0/1 = b 0/2 → a; b 0/2 < a 1/1 → b; b 1/2 → b; a 1/1 = b 2/2 → a; b 2/2 < a 2/1 → b;
        // b 3/2 < a 2/1 = c 2/1 → b.
        assert_eq!(got, [3, 3, 1, 2, 2, 1, 2, 2]);
        assert_eq!(s.running_tasks_of_stage(2), 4);
    }

    #[test]
    fn offers_are_shuffled_with_the_seed() {
        let offers: Vec<WorkerOffer> = (0..8)
            .map(|i| offer(&i.to_string(), &format!("h{i}"), 1))
            .collect();
        let assignment = |seed: u64| {
            let (mut s, _) = scheduler(SchedulerConfig::default(), seed);
            s.submit_tasks(task_set(0, 0, 0, 8));
            let (tasks, _) = s.resource_offers(&offers);
            // Every offer used once, one task per core.
            assert!(tasks.iter().all(|t| t.len() == 1));
            for (i, t) in tasks.iter().enumerate() {
                assert_eq!(t[0].executor_id, offers[i].executor_id);
            }
            tasks.iter().map(|t| t[0].index).collect::<Vec<_>>()
        };
        assert_eq!(assignment(1), assignment(1), "same seed, same assignment");
        let distinct: BTreeSet<Vec<usize>> = (0..5).map(assignment).collect();
        assert!(
            distinct.len() > 1,
            "different seeds should spread tasks differently"
        );
    }

    #[test]
    fn cores_are_respected() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 3);
        s.submit_tasks(task_set(0, 0, 0, 100));
        let offers = [
            offer("a", "h1", 3),
            offer("b", "h2", 0),
            offer("c", "h3", 2),
        ];
        let (tasks, events) = s.resource_offers(&offers);
        assert_eq!(tasks.iter().map(Vec::len).collect::<Vec<_>>(), [3, 0, 2]);
        assert_eq!(events.len(), 5);
        assert!(tasks[0].iter().all(|t| t.executor_id == "a"));
    }

    #[test]
    fn two_cpus_per_task_need_two_free_cores() {
        let config = SchedulerConfig {
            task_cpus: 2,
            ..SchedulerConfig::default()
        };
        let (mut s, _) = scheduler(config, 1);
        s.submit_tasks(task_set(0, 0, 0, 4));
        let (tasks, events) = s.resource_offers(&[offer("a", "h1", 1), offer("b", "h2", 1)]);
        assert!(tasks.iter().all(Vec::is_empty) && events.is_empty());
        let (tasks, _) = s.resource_offers(&[offer("a", "h1", 5)]);
        assert_eq!(tasks[0].len(), 2);
        assert!(tasks[0].iter().all(|t| t.cpus == 2));
    }

    fn barrier(mut ts: TaskSet) -> TaskSet {
        ts.barrier = true;
        ts
    }

    #[test]
    fn a_barrier_task_set_launches_all_its_tasks_in_one_round_or_none() {
        // TaskSchedulerImplSuite "don't schedule for a barrier taskSet if available slots are
        // less than pending tasks" and "schedule tasks for a barrier taskSet if all tasks can be
        // launched together".
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(barrier(task_set(0, 0, 0, 4)));
        let (tasks, events) = s.resource_offers(&[offer("A", "ha", 2), offer("B", "hb", 1)]);
        assert!(tasks.iter().all(Vec::is_empty));
        assert!(events.is_empty());
        assert_eq!(s.running_task_count(), 0);
        let (tasks, events) = s.resource_offers(&[offer("A", "ha", 2), offer("B", "hb", 2)]);
        assert_eq!(tasks.iter().flatten().count(), 4);
        assert_eq!(started(&events).len(), 4);
        assert!(tasks.iter().flatten().all(|t| t.barrier_tasks == Some(4)));
        // An ordinary task set's tasks are not barrier tasks.
        s.submit_tasks(task_set(1, 0, 1, 1));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 1)]);
        assert_eq!(tasks[0][0].barrier_tasks, None);
    }

    #[test]
    fn spark_24818_a_partial_assignment_of_a_barrier_task_set_is_released() {
        // All four tasks prefer executor A (2 cores): B's cores are declined at PROCESS_LOCAL,
        // so only two would launch: both go back and the cores stay free for the round.
        let config = SchedulerConfig {
            locality_wait_node_ms: 0,
            ..SchedulerConfig::default()
        };
        let (mut s, clock) = scheduler(config, 1);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        let prefs = vec![vec![on_executor("ha", "A")]; 4];
        s.submit_tasks(barrier(task_set_with_prefs(0, 0, 0, prefs)));
        s.submit_tasks(task_set(1, 0, 1, 4));
        let offers = [offer("A", "ha", 2), offer("B", "hb", 2)];
        let (tasks, _) = s.resource_offers(&offers);
        // The lower-priority ordinary task set got every core the barrier set gave back.
        assert_eq!(stages_of(&tasks), [1, 1, 1, 1]);
        let tsm = s.task_set_manager(0, 0).unwrap();
        assert_eq!((tsm.running_tasks(), tsm.pending_tasks()), (0, 4));
        for t in tasks.iter().flatten() {
            s.status_update(success(&t.executor_id, t.task_id));
        }
        // Once the locality wait is over, all four launch at once, first attempts all.
        clock.set(3000);
        let (tasks, _) = s.resource_offers(&offers);
        let launched: Vec<&TaskDescription> = tasks.iter().flatten().collect();
        assert_eq!(launched.len(), 4);
        assert!(launched
            .iter()
            .all(|t| t.stage_id == 0 && t.attempt_number == 0));
        let mut indices: Vec<usize> = launched.iter().map(|t| t.index).collect();
        indices.sort_unstable();
        assert_eq!(indices, [0, 1, 2, 3]);
    }

    #[test]
    fn a_failed_barrier_task_makes_its_task_set_a_zombie_and_nothing_is_relaunched() {
        // TaskSchedulerImplSuite "mark taskset for a barrier stage as zombie in case a task
        // fails".
        let (mut s, clock) = scheduler(speculating(), 1);
        s.submit_tasks(barrier(task_set(0, 0, 0, 3)));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 4)]);
        let launched: Vec<TaskDescription> = tasks.into_iter().flatten().collect();
        assert_eq!(launched.len(), 3);
        // Two finish fast, the third runs long: no speculative copy for a barrier task.
        s.status_update(success("A", launched[0].task_id));
        s.status_update(success("A", launched[1].task_id));
        clock.set(100_000);
        assert!(!s.check_speculatable_tasks(100_000));
        let boom = TaskEndReason::ExceptionFailure {
            description: "boom".into(),
        };
        let events = s.status_update(failure("A", launched[2].task_id, TaskState::Failed, boom));
        assert!(events
            .iter()
            .any(|e| matches!(e, SchedulerEvent::TaskEnded { result: Err(_), .. })));
        // Not a task-set failure: the DAG scheduler decides (whole-stage retry).
        assert!(!events
            .iter()
            .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })));
        assert!(s.task_set_manager(0, 0).is_none_or(|t| t.is_zombie()));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 4)]);
        assert!(tasks.iter().all(Vec::is_empty));
    }

    #[test]
    fn process_local_waits_for_the_locality_wait() {
        let config = SchedulerConfig {
            locality_wait_node_ms: 0,
            ..SchedulerConfig::default()
        };
        let (mut s, clock) = scheduler(config, 1);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set_with_prefs(
            0,
            0,
            0,
            vec![vec![on_executor("ha", "A")]],
        ));
        let levels = s.task_set_manager(0, 0).unwrap().locality_levels().to_vec();
        assert_eq!(
            levels,
            [
                TaskLocality::ProcessLocal,
                TaskLocality::NodeLocal,
                TaskLocality::Any
            ]
        );
        // A is busy; B is offered but the task would rather wait for A.
        let (tasks, _) = s.resource_offers(&[offer("B", "hb", 1)]);
        assert!(tasks[0].is_empty());
        assert_eq!(s.next_wakeup_ms(), Some(3000));
        clock.set(2999);
        assert!(s.resource_offers(&[offer("B", "hb", 1)]).0[0].is_empty());
        clock.set(3000);
        let (tasks, _) = s.resource_offers(&[offer("B", "hb", 1)]);
        assert_eq!(tasks[0].len(), 1);
        assert_eq!(s.next_wakeup_ms(), None);
    }

    /// Ten tasks preferring executor A's memory (host ha); A and B (host hb) have one core each,
    /// the NODE_LOCAL wait is 0. A finishes a task every second and gets the next one; B is
    /// offered each time too. Returns when B got its first task, if it did by 9 s.
    fn first_launch_on_b(legacy: bool) -> Option<u64> {
        let config = SchedulerConfig {
            locality_wait_node_ms: 0,
            legacy_locality_wait_reset: legacy,
            ..SchedulerConfig::default()
        };
        let (mut s, clock) = scheduler(config, 3);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set_with_prefs(
            0,
            0,
            0,
            vec![vec![on_executor("ha", "A")]; 10],
        ));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 1), offer("B", "hb", 1)]);
        assert_eq!((tasks[0].len(), tasks[1].len()), (1, 0));
        let mut on_a = tasks[0][0].task_id;
        for t in (1000..=9000).step_by(1000) {
            clock.set(t);
            s.status_update(success("A", on_a));
            let (tasks, _) = s.resource_offers(&[offer("A", "ha", 1), offer("B", "hb", 1)]);
            assert_eq!(tasks[0].len(), 1, "A always gets the next local task");
            on_a = tasks[0][0].task_id;
            if !tasks[1].is_empty() {
                return Some(t);
            }
        }
        None
    }

    #[test]
    fn spark_18886_an_idle_executor_gets_work_after_the_wait_while_the_preferred_one_launches() {
        // Every round declines B for locality, so the wait that started with the task set is never
        // restarted: B gets a task once it passes.
        assert_eq!(first_launch_on_b(false), Some(3000));
        // Before Spark 3.1 (and with ember.locality.wait.legacyResetOnTaskLaunch) each launch on A
        // restarted the wait: B stays idle for as long as A launches within 3 s of the previous
        // launch.
        assert_eq!(first_launch_on_b(true), None);
    }

    #[test]
    fn spark_18886_a_round_that_uses_every_offer_restarts_the_wait() {
        let (mut s, clock) = scheduler(
            SchedulerConfig {
                locality_wait_node_ms: 0,
                ..SchedulerConfig::default()
            },
            1,
        );
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set_with_prefs(
            0,
            0,
            0,
            vec![vec![on_executor("ha", "A")]; 3],
        ));
        // Only A is offered (B is busy): A takes everything offered, nothing is declined.
        clock.set(2500);
        assert_eq!(s.resource_offers(&[offer("A", "ha", 1)]).0[0].len(), 1);
        assert_eq!(s.next_wakeup_ms(), Some(5500), "the wait restarted at 2500");
        clock.set(5000);
        assert!(
            s.resource_offers(&[offer("B", "hb", 1)]).0[0].is_empty(),
            "2.5 s since the reset"
        );
        clock.set(5500);
        assert_eq!(s.resource_offers(&[offer("B", "hb", 1)]).0[0].len(), 1);
    }

    #[test]
    fn process_local_task_goes_to_its_executor_at_once() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set_with_prefs(
            0,
            0,
            0,
            vec![vec![on_executor("ha", "A")]; 2],
        ));
        let (tasks, _) = s.resource_offers(&[offer("B", "hb", 4), offer("A", "ha", 1)]);
        assert!(tasks[0].is_empty());
        assert_eq!(tasks[1].len(), 1);
    }

    #[test]
    fn new_executor_recomputes_locality_levels() {
        for seed in 0..5 {
            let (mut s, _) = scheduler(SchedulerConfig::default(), seed);
            let mut offers: Vec<WorkerOffer> = (0..8)
                .map(|i| offer(&format!("B{i}"), &format!("hb{i}"), 1))
                .collect();
            for o in &offers {
                s.executor_added(&o.executor_id, &o.host);
            }
            s.submit_tasks(task_set_with_prefs(
                0,
                0,
                0,
                vec![vec![TaskLocation::Host("ha".into())]],
            ));
            assert_eq!(
                s.task_set_manager(0, 0).unwrap().locality_levels(),
                &[TaskLocality::Any]
            );
            s.executor_added("A", "ha");
            offers.push(offer("A", "ha", 1));
            // The next round recomputes the levels first, so the NODE_LOCAL pass runs before the
            // ANY pass and the task goes to A whatever the offer order.
            let (tasks, _) = s.resource_offers(&offers);
            let levels = s.task_set_manager(0, 0).unwrap().locality_levels().to_vec();
            assert_eq!(levels, [TaskLocality::NodeLocal, TaskLocality::Any]);
            assert_eq!(tasks[8].len(), 1, "seed {seed}");
            assert!(tasks[..8].iter().all(Vec::is_empty), "seed {seed}");
        }
    }

    #[test]
    fn spark_31837_a_task_set_at_any_moves_back_when_its_preferred_executor_registers() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.executor_added("C", "hc");
        // Two tasks without preference, two preferring B, which has not registered yet.
        let b = vec![on_executor("hb", "B")];
        s.submit_tasks(task_set_with_prefs(
            0,
            0,
            0,
            vec![b.clone(), b, Vec::new(), Vec::new()],
        ));
        assert_eq!(
            s.task_set_manager(0, 0).unwrap().locality_levels(),
            &[TaskLocality::NoPref, TaskLocality::Any]
        );
        // C runs both tasks without preference and, at ANY, one of B's.
        let (tasks, _) = s.resource_offers(&[offer("C", "hc", 3)]);
        assert_eq!(tasks[0].len(), 3);
        s.executor_added("B", "hb");
        // The set now has PROCESS_LOCAL again and waits there for B instead of staying at ANY.
        assert!(s.resource_offers(&[offer("C", "hc", 1)]).0[0].is_empty());
        let tsm = s.task_set_manager(0, 0).unwrap();
        assert_eq!(
            tsm.locality_levels(),
            &[
                TaskLocality::ProcessLocal,
                TaskLocality::NodeLocal,
                TaskLocality::Any
            ]
        );
        let (tasks, events) = s.resource_offers(&[offer("B", "hb", 1)]);
        assert_eq!(tasks[0].len(), 1);
        assert!(matches!(
            events[..],
            [SchedulerEvent::TaskStarted {
                locality: TaskLocality::ProcessLocal,
                ..
            }]
        ));
    }

    #[test]
    fn offers_register_unknown_executors() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(task_set_with_prefs(
            1,
            0,
            1,
            vec![vec![on_executor("hc", "C")]],
        ));
        assert_eq!(
            s.task_set_manager(1, 0).unwrap().locality_levels(),
            &[TaskLocality::Any]
        );
        let (tasks, _) = s.resource_offers(&[offer("C", "hc", 1)]);
        assert!(s.live_executors().is_executor_alive("C"));
        assert_eq!(tasks[0].len(), 1);
    }

    #[test]
    fn retries_up_to_max_failures_then_fails_the_task_set() {
        let config = SchedulerConfig {
            max_task_failures: 3,
            ..SchedulerConfig::default()
        };
        let (mut s, _) = scheduler(config, 1);
        s.submit_tasks(task_set(2, 1, 0, 1));
        let boom = TaskEndReason::ExceptionFailure {
            description: "panicked at 'boom', src/main.rs:1:1".into(),
        };
        let mut all = Vec::new();
        for attempt in 0..3 {
            let (tasks, _) = s.resource_offers(&[offer("0", "localhost", 1)]);
            let t = &tasks[0][0];
            assert_eq!(
                (t.attempt_number, t.name().to_string()),
                (attempt, format!("task 0.{attempt} in stage 2.1"))
            );
            all.extend(s.status_update(failure("0", t.task_id, TaskState::Failed, boom.clone())));
        }
        let failed: Vec<&String> = all
            .iter()
            .filter_map(|e| match e {
                SchedulerEvent::TaskSetFailed { reason, .. } => Some(reason),
                _ => None,
            })
            .collect();
        assert_eq!(
            failed,
            [
                "Task 0 in stage 2.1 failed 3 times, most recent failure: Lost task 0.2 in stage \
                 2.1 (TID 2) (localhost executor 0): panicked at 'boom', src/main.rs:1:1"
            ]
        );
        assert_eq!(
            all.iter()
                .filter(|e| matches!(e, SchedulerEvent::TaskEnded { result: Err(_), .. }))
                .count(),
            3
        );
        assert!(s.is_idle());
    }

    #[test]
    fn executor_loss_requeues_without_counting_a_failure() {
        let config = SchedulerConfig {
            max_task_failures: 1,
            ..SchedulerConfig::default()
        };
        let (mut s, _) = scheduler(config, 1);
        s.submit_tasks(task_set(0, 0, 0, 2));
        let (tasks, _) = s.resource_offers(&[offer("1", "h1", 2)]);
        let tids: Vec<TaskId> = tasks[0].iter().map(|t| t.task_id).collect();
        let events = s.executor_lost("1", "heartbeat timed out");
        assert_eq!(events.len(), 2);
        for e in &events {
            match e {
                SchedulerEvent::TaskEnded {
                    executor_id,
                    result:
                        Err(TaskEndReason::ExecutorLostFailure {
                            exit_caused_by_app: false,
                            reason,
                            ..
                        }),
                    ..
                } => assert_eq!(
                    (executor_id.as_str(), reason.as_str()),
                    ("1", "heartbeat timed out")
                ),
                e => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(s.running_tasks_of_stage(0), 0);
        // A late report from the dead executor is ignored.
        assert!(s.status_update(success("1", tids[0])).is_empty());
        assert!(s.executor_lost("1", "again").is_empty());
        // Both tasks run again elsewhere and the stage completes.
        let (tasks, _) = s.resource_offers(&[offer("2", "h2", 2)]);
        assert_eq!(tasks[0].len(), 2);
        for t in &tasks[0] {
            s.status_update(success("2", t.task_id));
        }
        assert!(s.is_idle());
    }

    #[test]
    fn cancel_stage_kills_running_attempts() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(task_set(3, 0, 0, 5));
        s.submit_tasks(task_set(4, 0, 0, 1));
        let (tasks, _) = s.resource_offers(&[offer("1", "h1", 2)]);
        assert_eq!(stages_of(&tasks), [3, 3]);
        let events = s.cancel_stage(3, "Job 0 cancelled");
        let killed: Vec<TaskId> = events
            .iter()
            .map(|e| match e {
                SchedulerEvent::KillTask {
                    task_id,
                    executor_id,
                    reason,
                } => {
                    assert_eq!(
                        (executor_id.as_str(), reason.as_str()),
                        ("1", "Job 0 cancelled")
                    );
                    *task_id
                }
                e => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(killed, [tasks[0][0].task_id, tasks[0][1].task_id]);
        // Nothing more launches for the stage; stage 4 gets the cores.
        let (more, _) = s.resource_offers(&[offer("1", "h1", 5)]);
        assert_eq!(stages_of(&more), [4]);
        assert_eq!(s.running_tasks_of_stage(3), 2);
        for t in &tasks[0] {
            let ev = s.status_update(failure(
                "1",
                t.task_id,
                TaskState::Killed,
                TaskEndReason::TaskKilled {
                    reason: "Job 0 cancelled".into(),
                },
            ));
            assert!(matches!(
                &ev[..],
                [SchedulerEvent::TaskEnded {
                    result: Err(TaskEndReason::TaskKilled { .. }),
                    ..
                }]
            ));
        }
        assert!(s.task_set_manager(3, 0).is_none());
        assert_eq!(s.cancel_stage(3, "again").len(), 0);
    }

    #[test]
    fn new_stage_attempt_makes_the_old_one_a_zombie() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(task_set(1, 0, 0, 3));
        let (tasks, _) = s.resource_offers(&[offer("1", "h1", 1)]);
        s.submit_tasks(task_set(1, 1, 0, 3));
        assert!(s.task_set_manager(1, 0).unwrap().is_zombie());
        let (more, _) = s.resource_offers(&[offer("1", "h1", 10)]);
        assert!(more[0].iter().all(|t| t.stage_attempt_id == 1));
        assert_eq!(more[0].len(), 3);
        s.status_update(success("1", tasks[0][0].task_id));
        assert!(s.task_set_manager(1, 0).is_none());
    }

    #[test]
    fn completions_in_zombie_task_sets_update_the_active_one() {
        // DAGSchedulerSuite "Completions in zombie tasksets update status of non-zombie
        // taskset": partitions 0 and 1 finish in the zombie attempt 0; attempt 1 runs only 2.
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(task_set(1, 0, 0, 3));
        let (zombie, _) = s.resource_offers(&[offer("1", "h1", 2)]);
        assert_eq!(zombie[0].len(), 2);
        s.submit_tasks(task_set(1, 1, 0, 3));
        for t in &zombie[0] {
            s.status_update(success("1", t.task_id));
            assert!(s.notify_partition_completion(1, t.partition_id).is_empty());
        }
        let (more, _) = s.resource_offers(&[offer("2", "h2", 10)]);
        let partitions: Vec<usize> = more.iter().flatten().map(|t| t.partition_id).collect();
        assert_eq!(partitions, [2]);
        let active = s.task_set_manager(1, 1).unwrap();
        assert_eq!(active.tasks_successful(), 2);
        s.status_update(success("2", more[0][0].task_id));
        assert!(s.task_set_manager(1, 1).is_none(), "attempt 1 is finished");
    }

    #[test]
    fn status_updates_for_unknown_tasks_are_ignored() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        assert!(s.status_update(success("1", 42)).is_empty());
        s.submit_tasks(task_set(0, 0, 0, 1));
        let (tasks, _) = s.resource_offers(&[offer("1", "h1", 1)]);
        let running = StatusUpdate {
            executor_id: "1".into(),
            task_id: tasks[0][0].task_id,
            state: TaskState::Running,
            outcome: TaskOutcome::None,
        };
        assert!(s.status_update(running).is_empty());
        assert_eq!(s.status_update(success("1", tasks[0][0].task_id)).len(), 1);
        assert!(s
            .status_update(success("1", tasks[0][0].task_id))
            .is_empty());
    }

    #[test]
    fn shuffle_map_output_on_a_lost_executor_is_recomputed() {
        let (mut s, _) = scheduler(SchedulerConfig::default(), 1);
        let ts = shuffle_map(task_set(0, 0, 0, 2));
        s.submit_tasks(ts);
        let (tasks, _) = s.resource_offers(&[offer("1", "h1", 1), offer("2", "h2", 1)]);
        let on_1 = tasks[0][0].task_id;
        s.status_update(success("1", on_1));
        let events = s.executor_lost("1", "killed");
        assert!(matches!(
            &events[..],
            [SchedulerEvent::TaskEnded { task_id, result: Err(_), .. }] if *task_id == on_1
        ));
        let (again, _) = s.resource_offers(&[offer("2", "h2", 1)]);
        assert_eq!(again[0][0].index, tasks[0][0].index);
        assert_eq!(again[0][0].attempt_number, 1);
    }

    fn speculating() -> SchedulerConfig {
        SchedulerConfig {
            locality_wait_process_ms: 0,
            locality_wait_node_ms: 0,
            locality_wait_rack_ms: 0,
            // Spark 3's multiplier and quantile, which these tests were written with.
            speculation: Some(SpeculationConfig {
                interval_ms: 100,
                min_task_runtime_ms: 100,
                multiplier: 1.5,
                quantile: 0.75,
                ..SpeculationConfig::default()
            }),
            ..SchedulerConfig::default()
        }
    }

    fn excluding() -> SchedulerConfig {
        SchedulerConfig {
            exclude_on_failure: Some(ExcludeOnFailureConfig {
                timeout_ms: 1000,
                ..ExcludeOnFailureConfig::default()
            }),
            ..SchedulerConfig::default()
        }
    }

    fn started(events: &[SchedulerEvent]) -> Vec<(TaskId, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                SchedulerEvent::TaskStarted {
                    task_id,
                    speculative,
                    ..
                } => Some((*task_id, *speculative)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_speculation_timer_runs_while_tasks_run() {
        let (mut s, clock) = scheduler(speculating(), 1);
        assert_eq!(s.next_speculation_check_ms(), None, "nothing running");
        s.submit_tasks(task_set(0, 0, 0, 4));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 4)]);
        assert_eq!(s.next_speculation_check_ms(), Some(100));
        assert_eq!(s.next_wakeup_ms(), Some(100));
        clock.set(100);
        assert!(
            !s.check_speculatable_tasks(100),
            "no task has succeeded yet"
        );
        assert_eq!(s.next_speculation_check_ms(), Some(200));
        for t in &tasks[0][1..] {
            s.status_update(success("A", t.task_id));
        }
        clock.set(200);
        assert!(
            s.check_speculatable_tasks(200),
            "task 0 ran 200 ms > max(1.5 × 100, 100)"
        );
        assert_eq!(s.task_set_manager(0, 0).unwrap().speculatable_tasks(), [0]);
        // A runs the first attempt; the copy goes to B on another host.
        let (none, _) = s.resource_offers(&[offer("A", "ha", 3)]);
        assert!(none[0].is_empty());
        let (copies, events) = s.resource_offers(&[offer("B", "hb", 1)]);
        assert_eq!((copies[0][0].index, copies[0][0].attempt_number), (0, 1));
        assert_eq!(started(&events), [(copies[0][0].task_id, true)]);
        // The copy wins; the first attempt is killed and its end counts as no failure.
        let ev = s.status_update(success("B", copies[0][0].task_id));
        assert!(ev.iter().any(
            |e| matches!(e, SchedulerEvent::KillTask { task_id, reason, .. }
            if *task_id == tasks[0][0].task_id && reason == KILLED_BY_OTHER_ATTEMPT)
        ));
        let ev = s.status_update(failure(
            "A",
            tasks[0][0].task_id,
            TaskState::Killed,
            TaskEndReason::TaskKilled {
                reason: KILLED_BY_OTHER_ATTEMPT.into(),
            },
        ));
        assert!(matches!(
            &ev[..],
            [SchedulerEvent::TaskEnded {
                result: Err(TaskEndReason::TaskKilled { .. }),
                ..
            }]
        ));
        assert!(s.is_idle());
        assert_eq!(s.next_speculation_check_ms(), None);
    }

    #[test]
    fn speculation_off_never_marks_or_wakes_up() {
        let (mut s, clock) = scheduler(SchedulerConfig::default(), 1);
        s.submit_tasks(task_set(0, 0, 0, 2));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 2)]);
        s.status_update(success("A", tasks[0][0].task_id));
        clock.set(1_000_000);
        assert!(!s.check_speculatable_tasks(1_000_000));
        assert_eq!(s.next_wakeup_ms(), None);
    }

    #[test]
    fn a_late_success_of_the_loser_reaches_no_one() {
        let (mut s, clock) = scheduler(speculating(), 1);
        s.submit_tasks(task_set(0, 0, 0, 4));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 4)]);
        for t in &tasks[0][1..] {
            s.status_update(success("A", t.task_id));
        }
        clock.set(500);
        s.check_speculatable_tasks(500);
        let (copies, _) = s.resource_offers(&[offer("B", "hb", 1)]);
        let ev = s.status_update(success("A", tasks[0][0].task_id));
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, SchedulerEvent::TaskEnded { result: Ok(_), .. }))
                .count(),
            1
        );
        let ev = s.status_update(success("B", copies[0][0].task_id));
        match &ev[..] {
            [SchedulerEvent::TaskEnded {
                result: Err(TaskEndReason::TaskKilled { reason }),
                ..
            }] => {
                assert_eq!(reason, LATE_RESULT_DROPPED)
            }
            e => panic!("unexpected {e:?}"),
        }
        assert!(s.is_idle());
    }

    #[test]
    fn an_executor_failing_in_a_successful_stage_is_excluded_until_the_timeout() {
        let (mut s, clock) = scheduler(excluding(), 7);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set(0, 0, 0, 4));
        // A fails two distinct tasks: excluded for the stage.
        let (a, _) = s.resource_offers(&[offer("A", "ha", 2)]);
        for t in &a[0] {
            s.status_update(failure(
                "A",
                t.task_id,
                TaskState::Failed,
                TaskEndReason::ExceptionFailure {
                    description: "bad disk".into(),
                },
            ));
        }
        let (none, _) = s.resource_offers(&[offer("A", "ha", 2)]);
        assert!(none[0].is_empty(), "A is excluded for the stage");
        assert!(
            s.excluded_executors().is_empty(),
            "not for the application before the stage succeeds"
        );
        let mut done = 0;
        while !s.is_idle() {
            let (b, _) = s.resource_offers(&[offer("B", "hb", 1)]);
            for t in &b[0] {
                s.status_update(success("B", t.task_id));
                done += 1;
            }
        }
        assert_eq!(done, 4);
        assert_eq!(s.excluded_executors(), ["A"]);
        assert_eq!(s.next_wakeup_ms(), Some(1001), "excluded at 0 for 1000 ms");

        // The next stage gets no offer of A, whatever the seed's order.
        s.submit_tasks(task_set(1, 0, 1, 4));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 4), offer("B", "hb", 1)]);
        assert_eq!((tasks[0].len(), tasks[1].len()), (0, 1));
        clock.set(1001);
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 4)]);
        assert_eq!(tasks[0].len(), 3, "the exclusion timed out");
        assert!(s.excluded_executors().is_empty());
    }

    #[test]
    fn failures_of_a_failed_stage_or_lost_executors_exclude_no_one() {
        let config = SchedulerConfig {
            max_task_failures: 3,
            ..excluding()
        };
        let (mut s, _) = scheduler(config, 1);
        s.submit_tasks(task_set(0, 0, 0, 2));
        let _ = s.resource_offers(&[offer("A", "ha", 2)]);
        s.executor_lost("A", "gone");
        assert!(s.excluded_executors().is_empty());
        let boom = TaskEndReason::ExceptionFailure {
            description: "bug".into(),
        };
        let mut failed = false;
        for round in 0..20 {
            let (t, events) =
                s.resource_offers(&[offer(&format!("E{round}"), &format!("h{round}"), 2)]);
            failed |= events
                .iter()
                .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. }));
            for task in &t[0] {
                let ev = s.status_update(failure(
                    &task.executor_id,
                    task.task_id,
                    TaskState::Failed,
                    boom.clone(),
                ));
                failed |= ev
                    .iter()
                    .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. }));
            }
            if s.is_idle() {
                break;
            }
        }
        assert!(
            failed && s.is_idle(),
            "the stage fails after 3 attempts of a task"
        );
        assert!(
            s.excluded_executors().is_empty(),
            "a failed stage's failures are not held against executors"
        );
    }

    fn boom() -> TaskEndReason {
        TaskEndReason::ExceptionFailure {
            description: "boom".into(),
        }
    }

    fn killed(events: &[SchedulerEvent]) -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| match e {
                SchedulerEvent::KillExecutor { executor_id, .. } => Some(executor_id.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Task 0 of stage 3 failed on A, its only executor: it may not run there again.
    fn excluded_on_the_only_executor() -> (TaskSchedulerImpl, Arc<ManualClock>) {
        let (mut s, clock) = scheduler(excluding(), 1);
        s.executor_added("A", "ha");
        s.submit_tasks(task_set(3, 0, 0, 1));
        let (a, _) = s.resource_offers(&[offer("A", "ha", 1)]);
        s.status_update(failure("A", a[0][0].task_id, TaskState::Failed, boom()));
        (s, clock)
    }

    #[test]
    fn spark_22148_an_idle_excluded_executor_is_killed_and_a_new_one_runs_the_task() {
        let (mut s, clock) = excluded_on_the_only_executor();
        clock.set(10);
        let (none, events) = s.resource_offers(&[offer("A", "ha", 1)]);
        assert!(none[0].is_empty());
        assert_eq!(killed(&events), ["A"]);
        assert!(
            matches!(&events[..], [SchedulerEvent::KillExecutor { reason, .. }]
            if reason == "Killing excluded idle executor id A because of task unschedulability \
                and trying to acquire a new executor.")
        );
        assert_eq!(
            s.next_wakeup_ms(),
            Some(120_010),
            "the task set waits 120 s for a new executor"
        );
        // Asked once per wait: the next round kills nothing more.
        assert!(s.resource_offers(&[offer("A", "ha", 1)]).1.is_empty());
        clock.set(120_009);
        assert!(s.abort_unschedulable_task_sets().is_empty());
        // A's replacement registers and runs the task: the wait is over.
        s.executor_lost("A", "Executor killed by driver.");
        let (tasks, _) = s.resource_offers(&[offer("B", "hb", 1)]);
        assert_eq!(tasks[0].len(), 1);
        clock.set(120_010);
        assert!(s.abort_unschedulable_task_sets().is_empty());
        s.status_update(success("B", tasks[0][0].task_id));
        assert!(s.is_idle());
    }

    #[test]
    fn spark_22148_a_task_set_that_gets_no_new_executor_is_aborted_after_the_timeout() {
        let (mut s, clock) = excluded_on_the_only_executor();
        assert_eq!(killed(&s.resource_offers(&[offer("A", "ha", 1)]).1), ["A"]);
        clock.set(119_999);
        assert!(s.abort_unschedulable_task_sets().is_empty());
        clock.set(120_000);
        match &s.abort_unschedulable_task_sets()[..] {
            [SchedulerEvent::TaskSetFailed {
                stage_id: 3,
                reason,
                ..
            }] => assert_eq!(
                reason,
                "\nAborting TaskSet 3.0 because task 0 (partition 0)\ncannot run anywhere due to \
                 node and executor excludeOnFailure.\nMost recent failure:\nLost task 0.0 in \
                 stage 3.0 (TID 0) (ha executor A): boom\n\nExcludeOnFailure behavior can be \
                 configured via ember.excludeOnFailure.*.\n"
            ),
            e => panic!("unexpected {e:?}"),
        }
        assert!(s.is_idle());
        assert_eq!(s.next_wakeup_ms(), None);
    }

    #[test]
    fn a_task_set_excluded_on_every_busy_executor_is_aborted_at_once() {
        // Spark's "abort stage when all executors are excluded and we cannot acquire new
        // executor": no executor is idle, so none can be replaced.
        let (mut s, _) = scheduler(excluding(), 1);
        s.executor_added("A", "ha");
        s.submit_tasks(task_set(3, 0, 0, 2));
        let (a, _) = s.resource_offers(&[offer("A", "ha", 2)]);
        let first = a[0].iter().find(|t| t.index == 0).unwrap().task_id;
        s.status_update(failure("A", first, TaskState::Failed, boom()));
        let (none, events) = s.resource_offers(&[offer("A", "ha", 1)]);
        assert!(none[0].is_empty());
        assert!(killed(&events).is_empty());
        assert!(
            matches!(events.first(), Some(SchedulerEvent::TaskSetFailed { stage_id: 3, reason, .. })
            if reason.starts_with(
                "\nAborting TaskSet 3.0 because task 0 (partition 0)\ncannot run anywhere"
            )),
            "{events:?}"
        );
    }

    #[test]
    fn spark_22148_a_launch_in_any_task_set_ends_every_wait() {
        let (mut s, clock) = scheduler(excluding(), 1);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set(3, 0, 0, 1));
        let (t, _) = s.resource_offers(&[offer("A", "ha", 1)]);
        s.status_update(failure("A", t[0][0].task_id, TaskState::Failed, boom()));
        let (t, _) = s.resource_offers(&[offer("B", "hb", 1)]);
        s.status_update(failure("B", t[0][0].task_id, TaskState::Failed, boom()));
        // Task 0 failed on both executors; both idle, the first is asked for.
        assert_eq!(
            killed(
                &s.resource_offers(&[offer("A", "ha", 1), offer("B", "hb", 1)])
                    .1
            ),
            ["A"]
        );
        assert_eq!(s.next_wakeup_ms(), Some(120_000));
        // Another stage launches on B: stage 3 may get an executor too, its wait ends.
        s.submit_tasks(task_set(4, 0, 1, 1));
        assert_eq!(s.resource_offers(&[offer("B", "hb", 1)]).0[0].len(), 1);
        clock.set(120_000);
        assert!(s.abort_unschedulable_task_sets().is_empty());
        assert!(s.task_set_manager(3, 0).is_some_and(|t| !t.is_zombie()));
    }

    #[test]
    fn kill_excluded_executors_asks_to_kill_an_executor_when_it_is_excluded() {
        for kill in [false, true] {
            let exclusion = ExcludeOnFailureConfig {
                kill_excluded_executors: kill,
                ..ExcludeOnFailureConfig::default()
            };
            let (mut s, _) = scheduler(
                SchedulerConfig {
                    exclude_on_failure: Some(exclusion),
                    ..SchedulerConfig::default()
                },
                1,
            );
            s.executor_added("A", "ha");
            s.executor_added("B", "hb");
            s.submit_tasks(task_set(0, 0, 0, 2));
            // Both tasks fail on A, then succeed on B: the successful stage gets A excluded.
            let (on_a, _) = s.resource_offers(&[offer("A", "ha", 2)]);
            for t in &on_a[0] {
                assert!(killed(&s.status_update(failure(
                    "A",
                    t.task_id,
                    TaskState::Failed,
                    boom()
                )))
                .is_empty());
            }
            let (on_b, _) = s.resource_offers(&[offer("B", "hb", 2)]);
            let mut events = Vec::new();
            for t in &on_b[0] {
                events.extend(s.status_update(success("B", t.task_id)));
            }
            assert_eq!(s.excluded_executors(), ["A"]);
            if kill {
                assert!(matches!(
                    &events.last(),
                    Some(SchedulerEvent::KillExecutor { executor_id, reason })
                    if executor_id == "A"
                        && reason == "Killing excluded executor id A since \
                            ember.excludeOnFailure.killExcludedExecutors is set."
                ));
            } else {
                assert!(killed(&events).is_empty());
            }
        }
    }

    #[test]
    fn the_starvation_warning_repeats_until_the_first_task_launches() {
        let (mut s, clock) = scheduler(SchedulerConfig::default(), 1);
        assert!(!s.check_starvation(), "nothing submitted");
        clock.set(1000);
        s.submit_tasks(task_set(0, 0, 0, 1));
        assert_eq!(s.next_starvation_warning_ms(), Some(16_000));
        clock.set(15_999);
        assert!(!s.check_starvation());
        clock.set(16_000);
        assert!(s.check_starvation());
        assert!(!s.check_starvation(), "once per period");
        // A late check warns once and keeps the fixed rate.
        clock.set(47_000);
        assert!(s.check_starvation());
        assert_eq!(s.next_starvation_warning_ms(), Some(61_000));
        let (tasks, _) = s.resource_offers(&[offer("A", "ha", 1)]);
        assert_eq!(tasks[0].len(), 1);
        assert_eq!(s.next_starvation_warning_ms(), None);
        clock.set(61_000);
        assert!(!s.check_starvation());
        // Armed only by the application's first task set, as in Spark.
        s.status_update(success("A", tasks[0][0].task_id));
        s.submit_tasks(task_set(1, 0, 1, 1));
        clock.set(200_000);
        assert!(!s.check_starvation());
    }

    #[test]
    fn no_starvation_warning_in_local_mode() {
        let (mut s, clock) = scheduler(
            SchedulerConfig {
                starvation_timeout_ms: None,
                ..SchedulerConfig::default()
            },
            1,
        );
        s.submit_tasks(task_set(0, 0, 0, 1));
        clock.set(1_000_000);
        assert!(!s.check_starvation());
        assert_eq!(s.next_starvation_warning_ms(), None);
    }

    #[test]
    fn spark_22148_no_wait_while_an_executor_may_still_run_the_task() {
        // Spark's "Ensure we don't abort the taskSet if we haven't been completely excluded".
        let (mut s, _) = scheduler(excluding(), 1);
        s.executor_added("A", "ha");
        s.executor_added("B", "hb");
        s.submit_tasks(task_set(3, 0, 0, 1));
        let (t, _) = s.resource_offers(&[offer("A", "ha", 1)]);
        s.status_update(failure("A", t[0][0].task_id, TaskState::Failed, boom()));
        let (none, events) = s.resource_offers(&[offer("A", "ha", 1)]);
        assert!(none[0].is_empty() && events.is_empty());
        assert_eq!(s.next_wakeup_ms(), None);
    }

    #[test]
    fn ten_thousand_tasks_complete_through_offers_and_updates() {
        let (mut s, clock) = scheduler(SchedulerConfig::default(), 42);
        let n = 10_000;
        s.submit_tasks(task_set(0, 0, 0, n));
        let execs: Vec<(String, String)> = (0..4)
            .map(|i| (i.to_string(), format!("host{i}")))
            .collect();
        let mut free: HashMap<String, u32> = execs.iter().map(|(e, _)| (e.clone(), 2)).collect();
        let mut in_flight: Vec<(String, TaskId)> = Vec::new();
        let mut partitions_done = vec![false; n];
        let mut started = 0;
        let mut rounds = 0;
        while !s.is_idle() {
            rounds += 1;
            assert!(rounds < 3 * n, "no progress");
            let offers: Vec<WorkerOffer> = execs
                .iter()
                .map(|(e, h)| offer(e, h, free[e]))
                .filter(|o| o.cores > 0)
                .collect();
            let (tasks, events) = s.resource_offers(&offers);
            started += events.len();
            for (o, ts) in offers.iter().zip(&tasks) {
                for t in ts {
                    *free.get_mut(&o.executor_id).unwrap() -= t.cpus;
                    in_flight.push((o.executor_id.clone(), t.task_id));
                }
            }
            // Finish the oldest running task.
            clock.advance(1);
            let (exec, tid) = in_flight.remove(0);
            *free.get_mut(&exec).unwrap() += 1;
            for e in s.status_update(success(&exec, tid)) {
                match e {
                    SchedulerEvent::TaskEnded {
                        partition,
                        result: Ok(_),
                        ..
                    } => {
                        assert!(!partitions_done[partition]);
                        partitions_done[partition] = true;
                    }
                    e => panic!("unexpected {e:?}"),
                }
            }
        }
        assert_eq!(started, n);
        assert!(partitions_done.iter().all(|d| *d));
        assert!(in_flight.is_empty());
    }
}
