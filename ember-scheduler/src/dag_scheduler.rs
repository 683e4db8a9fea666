//! The DAG scheduler (Spark's `DAGScheduler`): turns a job into stages at shuffle boundaries,
//! submits a stage's missing tasks once its parents' outputs exist, reuses shuffles computed by
//! earlier jobs, and reacts to task completions and failures.
//!
//! A plain state machine: everything it wants done — task sets to run or cancel, events for a
//! job's caller, accumulator updates to apply — it returns as [`DagAction`]s, in the order they
//! must happen; the event loop owns it, feeds it events one at a time and carries the actions
//! out.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tracing::{debug, info, warn};

use ember_common::{
    bytes_to_string, AccumulatorUpdate, DirectTaskResult, JobId, ShuffleId, StageId, TaskEndReason,
    TaskLocation, TaskValue,
};

use crate::cache_locations::CacheLocations;
use crate::error::SchedulerError;
use crate::map_output_tracker::{
    MapOutputTracker, REDUCER_PREF_LOCS_FRACTION, SHUFFLE_PREF_MAP_THRESHOLD,
    SHUFFLE_PREF_REDUCE_THRESHOLD,
};
use crate::rdd::{
    output_deterministic_level, Dependency, DeterministicLevel, RddBase, ShuffleDependencyBase,
};
use crate::stage::{Stage, StageKind};
use crate::task::TaskBody;
use crate::task_set::{TaskSet, TaskSpec};

/// What a job's caller hears about its job.
#[derive(Debug)]
pub enum JobEvent {
    /// The result of output partition `output_index` (position in the job's partition list).
    TaskSucceeded {
        /// The partition's position in the job's partition list.
        output_index: usize,
        /// Its value.
        value: TaskValue,
    },
    /// Every partition has been delivered.
    Succeeded,
    /// The job failed or was cancelled.
    Failed(SchedulerError),
}

/// A job as submitted by an action.
pub struct JobSubmission {
    /// The RDD whose partitions the job computes.
    pub rdd: Arc<dyn RddBase>,
    /// What its result tasks run: the pipeline and the action's per-partition function.
    pub body: TaskBody,
    /// Partitions of `rdd` to compute, in output order.
    pub partitions: Vec<usize>,
    /// FAIR pool (`ember.scheduler.pool` of the submitting thread).
    pub pool: String,
    /// Job group for `cancel_job_group`.
    pub group: Option<String>,
    /// Where in user code the action was called.
    pub call_site: String,
    /// The submitting thread's local properties (Spark's job `properties`), which the scheduler
    /// does not read: they are handed to listeners with the job, e.g. its description.
    pub properties: BTreeMap<String, String>,
}

/// What the DAG scheduler asks of the rest of the driver, in the order it must happen.
#[derive(Debug)]
pub enum DagAction {
    /// Give this task set to the task scheduler.
    SubmitTasks(TaskSet),
    /// Kill the running tasks of every attempt of a stage.
    CancelStage {
        /// The stage.
        stage_id: StageId,
        /// Why (the kill reason).
        reason: String,
    },
    /// An attempt of an earlier, zombie attempt of the stage computed `partition`: the stage's
    /// active attempt need not run it (Spark's `TaskScheduler.notifyPartitionCompletion`).
    NotifyPartitionCompletion {
        /// The stage.
        stage_id: StageId,
        /// The partition now done.
        partition: usize,
    },
    /// Tell a job's caller.
    NotifyJob {
        /// The job.
        job_id: JobId,
        /// What to tell.
        event: JobEvent,
    },
    /// Merge the accumulator updates of a partition's first successful attempt into the
    /// application's accumulators (Spark applies an action's updates exactly once per
    /// partition; this is that once).
    ApplyAccumulatorUpdates {
        /// The stage the attempt belonged to (for per-stage totals).
        stage_id: StageId,
        /// The partition the attempt computed (named when an update cannot be merged).
        partition: usize,
        /// The attempt's updates, opaque to the core.
        updates: Vec<AccumulatorUpdate>,
    },
    /// A stage attempt is over (Spark's `markStageAsFinished`, which posts
    /// `SparkListenerStageCompleted`): every task it needed succeeded, or it failed or was
    /// cancelled with `failure_reason`. Listeners only; nothing to carry out.
    StageCompleted {
        /// The stage.
        stage_id: StageId,
        /// The attempt that ended.
        stage_attempt_id: u32,
        /// Why it did not complete, when it did not.
        failure_reason: Option<String>,
    },
}

struct ActiveJob {
    #[allow(dead_code)]
    final_stage: StageId,
    /// Output index of each partition of the final RDD the job computes. Fx, not std's
    /// randomly seeded SipHash: looked up at every task's end, and the scheduler's core takes
    /// no randomness it is not given.
    output_index: FxHashMap<usize, usize>,
    finished: Vec<bool>,
    num_finished: usize,
    /// Serialized result bytes received so far (checked against `ember.driver.maxResultSize`).
    result_bytes: u64,
    pool: String,
    group: Option<String>,
    call_site: String,
}

/// A stage's RDD and its one-to-one narrow ancestors: where partition `p`'s placement can come
/// from (bounded, so a very long lineage does not make submission slow).
fn locality_chain(rdd: &Arc<dyn RddBase>) -> Vec<Arc<dyn RddBase>> {
    let mut chain = vec![rdd.clone()];
    while chain.len() < 64 {
        let next = chain.last().and_then(|r| {
            r.dependencies().into_iter().find_map(|d| match d {
                Dependency::Narrow {
                    rdd,
                    one_to_one: true,
                } => Some(rdd),
                _ => None,
            })
        });
        match next {
            Some(parent) => chain.push(parent),
            None => break,
        }
    }
    chain
}

/// A result task's value with its serialized size (Spark's `DirectTaskResult` size).
struct SizedResult {
    value: TaskValue,
    size: u64,
    accum_updates: Vec<AccumulatorUpdate>,
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// How long after a fetch failure the failed stages are resubmitted (Spark's
/// `DAGScheduler.RESUBMIT_TIMEOUT`).
pub const RESUBMIT_TIMEOUT_MS: u64 = 200;

/// Jobs, stages and their state.
pub struct DagScheduler {
    next_job_id: JobId,
    next_stage_id: StageId,
    stages: BTreeMap<StageId, Stage>,
    shuffle_to_stage: FxHashMap<ShuffleId, StageId>,
    jobs: BTreeMap<JobId, ActiveJob>,
    waiting: BTreeSet<StageId>,
    running: BTreeSet<StageId>,
    /// Stages that hit a fetch failure, resubmitted together at `resubmit_at` (Spark's
    /// `failedStages` and its `ResubmitFailedStages` message).
    failed: BTreeSet<StageId>,
    resubmit_at: Option<u64>,
    tracker: Arc<MapOutputTracker>,
    cache: Arc<dyn CacheLocations>,
    max_stage_attempts: u32,
    max_result_size: u64,
    /// `ember.shuffle.reduceLocality.enabled`.
    reduce_locality: bool,
    /// The map output tracker's epoch when each executor was last known to have failed (lost,
    /// or blamed for a fetch failure): map tasks launched on it before then may report outputs
    /// that are gone (Spark's `executorFailureEpoch`, SPARK-19263).
    executor_failure_epoch: FxHashMap<String, u64>,
    /// Tasks the cluster can run at once (Spark's `maxNumConcurrentTasks`), for the barrier
    /// slot check; the event loop keeps it current.
    max_concurrent_tasks: usize,
    /// `ember.scheduler.barrier.maxConcurrentTasksCheck.interval` and `.maxFailures`.
    barrier_check_interval_ms: u64,
    barrier_check_max_failures: u32,
    /// Jobs whose barrier stage found too few slots, submitted again when due (Spark re-posts
    /// `JobSubmitted`): the time, the checks failed so far, the job.
    slot_check_retries: BTreeMap<JobId, (u64, u32, JobSubmission)>,
}

/// Why a barrier stage cannot be created (Spark's barrier checks in `createResultStage` and
/// `createShuffleMapStage`).
enum BarrierCheckFailed {
    Slots { required: usize, max: usize },
    Chain,
}

/// Spark's `checkBarrierStageWithRDDChainPattern`: every RDD of a barrier stage has one
/// partition per task and at most one barrier parent.
fn barrier_chain_is_supported(rdd: &Arc<dyn RddBase>, num_tasks: usize) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![rdd.clone()];
    while let Some(r) = todo.pop() {
        if !seen.insert(r.id()) {
            continue;
        }
        let deps = r.dependencies();
        let barrier_parents = deps
            .iter()
            .filter(|d| match d {
                Dependency::Narrow { rdd, .. } => rdd.is_barrier(),
                Dependency::Shuffle(s) => s.rdd().is_barrier(),
            })
            .count();
        if r.num_partitions() != num_tasks || barrier_parents > 1 {
            return false;
        }
        todo.extend(deps.into_iter().filter_map(|d| match d {
            Dependency::Narrow { rdd, .. } => Some(rdd),
            Dependency::Shuffle(_) => None,
        }));
    }
    true
}

/// Spark's `Task.toString`: "ResultTask(1, 0)", "ShuffleMapTask(0, 3)".
fn task_name(stage: &Stage, partition: usize) -> String {
    match stage.kind {
        StageKind::ShuffleMap { .. } => format!("ShuffleMapTask({}, {partition})", stage.id),
        StageKind::Result { .. } => format!("ResultTask({}, {partition})", stage.id),
    }
}

impl DagScheduler {
    /// Sets `ember.driver.maxResultSize` (0: unlimited).
    pub fn set_max_result_size(&mut self, bytes: u64) {
        self.max_result_size = bytes;
    }

    /// Sets `ember.shuffle.reduceLocality.enabled` (on by default, as in Spark): whether reduce
    /// tasks prefer the hosts that hold most of their input.
    pub fn set_reduce_locality(&mut self, enabled: bool) {
        self.reduce_locality = enabled;
    }

    /// A scheduler that records map outputs in `tracker` and asks `cache` where cached
    /// partitions are; a stage is retried after fetch failures up to `max_stage_attempts` times
    /// in a row (`ember.stage.maxConsecutiveAttempts`).
    pub fn new(
        tracker: Arc<MapOutputTracker>,
        cache: Arc<dyn CacheLocations>,
        max_stage_attempts: u32,
    ) -> Self {
        DagScheduler {
            next_job_id: 0,
            next_stage_id: 0,
            stages: BTreeMap::new(),
            shuffle_to_stage: FxHashMap::default(),
            jobs: BTreeMap::new(),
            waiting: BTreeSet::new(),
            running: BTreeSet::new(),
            failed: BTreeSet::new(),
            resubmit_at: None,
            tracker,
            cache,
            max_stage_attempts: max_stage_attempts.max(1),
            max_result_size: 0,
            reduce_locality: true,
            executor_failure_epoch: FxHashMap::default(),
            max_concurrent_tasks: usize::MAX,
            barrier_check_interval_ms: 15_000,
            barrier_check_max_failures: 40,
            slot_check_retries: BTreeMap::new(),
        }
    }

    /// Sets how many tasks the cluster can run at once (Spark's `maxNumConcurrentTasks`:
    /// `local[N]` has N / `ember.task.cpus`, a cluster the sum over its live executors): a
    /// barrier stage needing more waits for slots.
    pub fn set_max_concurrent_tasks(&mut self, slots: usize) {
        self.max_concurrent_tasks = slots;
    }

    /// Sets `ember.scheduler.barrier.maxConcurrentTasksCheck.interval` (15 s) and `.maxFailures`
    /// (40): how often, and how many times, a barrier job that found too few slots checks again
    /// before it fails.
    pub fn set_barrier_slot_check(&mut self, interval_ms: u64, max_failures: u32) {
        self.barrier_check_interval_ms = interval_ms;
        self.barrier_check_max_failures = max_failures;
    }

    /// When [`DagScheduler::resubmit_failed_stages`] has work, on the scheduler's clock.
    pub fn next_wakeup_ms(&self) -> Option<u64> {
        let retry = self.slot_check_retries.values().map(|(t, ..)| *t).min();
        match (self.resubmit_at, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Resubmits the stages that hit fetch failures, oldest job first, once their delay is over.
    /// Jobs waiting for barrier slots are submitted again when due.
    pub fn resubmit_failed_stages(&mut self, now_ms: u64) -> Vec<DagAction> {
        let mut actions = Vec::new();
        let due: Vec<JobId> = self
            .slot_check_retries
            .iter()
            .filter(|(_, (t, ..))| *t <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for job_id in due {
            if let Some((_, failures, job)) = self.slot_check_retries.remove(&job_id) {
                self.handle_job_submitted(job_id, job, now_ms, failures, &mut actions);
            }
        }
        if self.resubmit_at.is_none_or(|t| now_ms < t) {
            return actions;
        }
        self.resubmit_at = None;
        let mut failed: Vec<StageId> = std::mem::take(&mut self.failed).into_iter().collect();
        failed.sort_by_key(|s| self.stages.get(s).map_or(usize::MAX, |st| st.first_job_id));
        for stage_id in failed {
            // A stage whose jobs all ended meanwhile is gone.
            if self
                .stages
                .get(&stage_id)
                .is_some_and(|s| !s.job_ids.is_empty())
            {
                info!("Resubmitting failed stage {stage_id}");
                self.submit_stage(stage_id, now_ms, &mut actions);
            }
        }
        actions
    }

    /// Number of jobs still running.
    pub fn active_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Ids of the jobs still running, ascending (Spark's `getActiveJobIds`).
    pub fn active_job_ids(&self) -> Vec<JobId> {
        self.jobs.keys().copied().collect()
    }

    /// A stage the scheduler still knows (it forgets those no running job needs).
    pub fn stage(&self, stage_id: StageId) -> Option<&Stage> {
        self.stages.get(&stage_id)
    }

    /// The stages of a running job, its ancestors' included, by id (Spark's `jobIdToStageIds`:
    /// what `SparkListenerJobStart` lists).
    pub fn job_stages(&self, job_id: JobId) -> Vec<&Stage> {
        self.stages
            .values()
            .filter(|s| s.job_ids.contains(&job_id))
            .collect()
    }

    /// Submits a job; `now_ms` stamps its stages. Returns the job id and the actions: the task
    /// sets to run (or, for a job of no partitions, its success at once).
    pub fn submit_job(&mut self, job: JobSubmission, now_ms: u64) -> (JobId, Vec<DagAction>) {
        let job_id = self.next_job_id;
        self.next_job_id += 1;
        let mut actions = Vec::new();
        if job.partitions.is_empty() {
            actions.push(DagAction::NotifyJob {
                job_id,
                event: JobEvent::Succeeded,
            });
            return (job_id, actions);
        }
        self.handle_job_submitted(job_id, job, now_ms, 0, &mut actions);
        (job_id, actions)
    }

    /// Spark's `handleJobSubmitted`: creates the job's stages and submits them, after
    /// `slot_check_failures` failed barrier slot checks.
    fn handle_job_submitted(
        &mut self,
        job_id: JobId,
        job: JobSubmission,
        now_ms: u64,
        slot_check_failures: u32,
        actions: &mut Vec<DagAction>,
    ) {
        // The RDD graph is user code (a custom RDD's partitions or dependencies, a
        // partitioner): a panic there fails this job only, with the panic as the cause, as
        // Spark's handleJobSubmitted does with an exception ("Creating new stage failed").
        let graph = catch_unwind(AssertUnwindSafe(|| {
            let barrier = job.rdd.is_barrier();
            if barrier {
                self.check_barrier_stage(&job.rdd, job.partitions.len())?;
            }
            let parents = self.parent_stages(&job.rdd, job_id)?;
            Ok((parents, output_deterministic_level(&job.rdd), barrier))
        }));
        let (parents, level, barrier) = match graph {
            Ok(Ok(graph)) => graph,
            Ok(Err(BarrierCheckFailed::Slots { required, max })) => {
                let failures = slot_check_failures + 1;
                let max_failures = self.barrier_check_max_failures;
                warn!(
                    "Barrier stage in job {job_id} requires {required} slots, but only {max} are \
                     available. Will retry up to {} more times",
                    (max_failures + 1).saturating_sub(failures)
                );
                if failures <= max_failures {
                    let due = now_ms.saturating_add(self.barrier_check_interval_ms);
                    self.slot_check_retries.insert(job_id, (due, failures, job));
                } else {
                    actions.push(DagAction::NotifyJob {
                        job_id,
                        event: JobEvent::Failed(SchedulerError::BarrierSlotsCheckFailed {
                            required,
                            max,
                        }),
                    });
                }
                return;
            }
            Ok(Err(BarrierCheckFailed::Chain)) => {
                let error = SchedulerError::BarrierUnsupportedRddChain;
                warn!("Creating new stage failed due to exception - job: {job_id}: {error}");
                actions.push(DagAction::NotifyJob {
                    job_id,
                    event: JobEvent::Failed(error),
                });
                return;
            }
            Err(payload) => {
                let cause = panic_message(payload.as_ref());
                warn!("Creating new stage failed due to exception - job: {job_id}: {cause}");
                let error = SchedulerError::StageCreationFailed { job_id, cause };
                actions.push(DagAction::NotifyJob {
                    job_id,
                    event: JobEvent::Failed(error),
                });
                return;
            }
        };
        let stage_id = self.new_stage_id();
        let n = job.partitions.len();
        let kind = StageKind::Result {
            job_id,
            body: job.body.clone(),
            partitions: job.partitions.clone(),
        };
        let mut stage = Stage::new(
            stage_id,
            job.rdd.clone(),
            kind,
            parents,
            job_id,
            job.call_site.clone(),
        );
        stage.indeterminate = level == DeterministicLevel::Indeterminate;
        stage.barrier = barrier;
        self.stages.insert(stage_id, stage);
        self.add_job_to_stage_tree(stage_id, job_id);
        info!(
            "Got job {job_id} ({}) with {n} output partitions",
            job.call_site
        );
        let output_index = job
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, i))
            .collect();
        self.jobs.insert(
            job_id,
            ActiveJob {
                final_stage: stage_id,
                output_index,
                finished: vec![false; n],
                num_finished: 0,
                result_bytes: 0,
                pool: job.pool,
                group: job.group,
                call_site: job.call_site,
            },
        );
        self.submit_stage(stage_id, now_ms, actions);
    }

    /// Spark's `checkBarrierStageWithNumSlots` and `checkBarrierStageWithRDDChainPattern` for a
    /// barrier stage computing `rdd` in `num_tasks` tasks.
    fn check_barrier_stage(
        &self,
        rdd: &Arc<dyn RddBase>,
        num_tasks: usize,
    ) -> Result<(), BarrierCheckFailed> {
        if rdd.num_partitions() > self.max_concurrent_tasks {
            return Err(BarrierCheckFailed::Slots {
                required: rdd.num_partitions(),
                max: self.max_concurrent_tasks,
            });
        }
        if !barrier_chain_is_supported(rdd, num_tasks) {
            return Err(BarrierCheckFailed::Chain);
        }
        Ok(())
    }

    fn new_stage_id(&mut self) -> StageId {
        let id = self.next_stage_id;
        self.next_stage_id += 1;
        id
    }

    fn add_job_to_stage_tree(&mut self, stage_id: StageId, job_id: JobId) {
        let mut todo = vec![stage_id];
        while let Some(s) = todo.pop() {
            if let Some(st) = self.stages.get_mut(&s) {
                if st.job_ids.insert(job_id) {
                    todo.extend(st.parents.iter().copied());
                }
            }
        }
    }

    /// The shuffle dependencies reachable from `rdd` through narrow dependencies.
    fn direct_shuffle_deps(rdd: &Arc<dyn RddBase>) -> Vec<Arc<dyn ShuffleDependencyBase>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![rdd.clone()];
        while let Some(r) = todo.pop() {
            if !seen.insert(r.id()) {
                continue;
            }
            for dep in r.dependencies() {
                match dep {
                    Dependency::Narrow { rdd, .. } => todo.push(rdd),
                    Dependency::Shuffle(s) => {
                        if !out.iter().any(|d: &Arc<dyn ShuffleDependencyBase>| {
                            d.shuffle_id() == s.shuffle_id()
                        }) {
                            out.push(s)
                        }
                    }
                }
            }
        }
        out
    }

    fn parent_stages(
        &mut self,
        rdd: &Arc<dyn RddBase>,
        job_id: JobId,
    ) -> Result<Vec<StageId>, BarrierCheckFailed> {
        Self::direct_shuffle_deps(rdd)
            .into_iter()
            .map(|d| self.shuffle_map_stage(d, job_id))
            .collect()
    }

    /// The map stage of a shuffle, created (with its ancestors) on first use and reused by later
    /// jobs; its outputs stay registered, so a later job skips it.
    fn shuffle_map_stage(
        &mut self,
        dep: Arc<dyn ShuffleDependencyBase>,
        job_id: JobId,
    ) -> Result<StageId, BarrierCheckFailed> {
        if let Some(id) = self.shuffle_to_stage.get(&dep.shuffle_id()) {
            return Ok(*id);
        }
        let rdd = dep.rdd();
        let barrier = rdd.is_barrier();
        if barrier {
            self.check_barrier_stage(&rdd, rdd.num_partitions())?;
        }
        let parents = self.parent_stages(&rdd, job_id)?;
        let id = self.new_stage_id();
        self.tracker
            .register_shuffle(dep.shuffle_id(), rdd.num_partitions());
        let kind = StageKind::ShuffleMap {
            shuffle_id: dep.shuffle_id(),
            body: dep.map_task(),
            dep: dep.clone(),
        };
        let mut stage = Stage::new(
            id,
            rdd.clone(),
            kind,
            parents,
            job_id,
            format!("{} {}", rdd.name(), rdd.id()),
        );
        stage.indeterminate = output_deterministic_level(&rdd) == DeterministicLevel::Indeterminate;
        stage.barrier = barrier;
        self.stages.insert(id, stage);
        self.shuffle_to_stage.insert(dep.shuffle_id(), id);
        Ok(id)
    }

    fn is_available(&self, stage_id: StageId) -> bool {
        match self.stages.get(&stage_id).and_then(|s| s.shuffle_id()) {
            Some(sid) => self.tracker.is_available(sid),
            None => false,
        }
    }

    /// Whether every partition of `rdd` has a cached copy somewhere (Spark's
    /// `!getCacheLocs(rdd).contains(Nil)`): an RDD not persisted has none.
    fn fully_cached(&self, rdd: &dyn RddBase) -> bool {
        rdd.storage_level().is_valid()
            && (0..rdd.num_partitions())
                .all(|p| !self.cache.cache_locations(rdd.id(), p).is_empty())
    }

    /// The parent stages whose outputs a stage still needs (Spark's `getMissingParentStages`):
    /// the walk through the stage's narrow lineage stops at an RDD cached in full, since its
    /// tasks read the cached copies, so the shuffles below it are not needed even if their
    /// outputs are gone. (Should a cached block vanish before a task reads it, the task
    /// recomputes it and hits a fetch failure, which resubmits the map stage.)
    fn missing_parent_stages(&self, stage_id: StageId) -> Vec<StageId> {
        let Some(stage) = self.stages.get(&stage_id) else {
            return Vec::new();
        };
        let mut missing = Vec::new();
        let mut visited = BTreeSet::new();
        let mut todo = vec![stage.rdd.clone()];
        while let Some(rdd) = todo.pop() {
            if !visited.insert(rdd.id()) || self.fully_cached(rdd.as_ref()) {
                continue;
            }
            for dep in rdd.dependencies() {
                match dep {
                    Dependency::Narrow { rdd, .. } => todo.push(rdd),
                    Dependency::Shuffle(s) => {
                        if let Some(&p) = self.shuffle_to_stage.get(&s.shuffle_id()) {
                            if !self.is_available(p) && !missing.contains(&p) {
                                missing.push(p);
                            }
                        }
                    }
                }
            }
        }
        // In the order of the stage's parents, so submissions do not depend on the walk.
        stage
            .parents
            .iter()
            .copied()
            .filter(|p| missing.contains(p))
            .collect()
    }

    fn submit_stage(&mut self, stage_id: StageId, now_ms: u64, actions: &mut Vec<DagAction>) {
        if self.waiting.contains(&stage_id) || self.running.contains(&stage_id) {
            return;
        }
        if !self.stages.contains_key(&stage_id) {
            return;
        }
        let missing = self.missing_parent_stages(stage_id);
        if missing.is_empty() {
            self.submit_missing_tasks(stage_id, now_ms, actions);
        } else {
            for p in missing {
                self.submit_stage(p, now_ms, actions);
            }
            self.waiting.insert(stage_id);
        }
    }

    fn submit_missing_tasks(
        &mut self,
        stage_id: StageId,
        now_ms: u64,
        actions: &mut Vec<DagAction>,
    ) {
        let (partitions, shuffle_id, body, priority, pool, barrier) = {
            let Some(stage) = self.stages.get(&stage_id) else {
                return;
            };
            let job = self
                .jobs
                .get(&stage.first_job_id)
                .or_else(|| stage.job_ids.iter().find_map(|j| self.jobs.get(j)));
            let pool = job
                .map(|j| j.pool.clone())
                .unwrap_or_else(|| "default".into());
            let priority = stage
                .job_ids
                .iter()
                .next()
                .copied()
                .unwrap_or(stage.first_job_id);
            match &stage.kind {
                StageKind::ShuffleMap {
                    shuffle_id, body, ..
                } => {
                    // A barrier stage runs all its tasks together or not at all.
                    if (stage.indeterminate || stage.barrier)
                        && !self.tracker.is_available(*shuffle_id)
                    {
                        // Spark's SPARK-23207: the outputs that are left were written from
                        // another ordering of the input; mixed with recomputed ones, reducers
                        // would see records twice or never. Run it all again.
                        self.tracker.unregister_all_map_outputs(*shuffle_id);
                    }
                    let missing = self
                        .tracker
                        .missing_partitions(*shuffle_id)
                        .unwrap_or_default();
                    let barrier = stage.barrier;
                    (
                        missing,
                        Some(*shuffle_id),
                        body.clone(),
                        priority,
                        pool,
                        barrier,
                    )
                }
                StageKind::Result {
                    job_id,
                    body,
                    partitions,
                } => {
                    let Some(job) = self.jobs.get(job_id) else {
                        return;
                    };
                    let missing = partitions
                        .iter()
                        .copied()
                        .filter(|p| job.output_index.get(p).is_some_and(|i| !job.finished[*i]))
                        .collect();
                    (missing, None, body.clone(), priority, pool, stage.barrier)
                }
            }
        };
        // The RDDs whose placement matters are the same for every task: walk the lineage once.
        // Both the walk and the preferences are user code (custom RDDs): a panic there aborts
        // the stage, as Spark's submitMissingTasks does ("Task creation failed").
        let tasks = catch_unwind(AssertUnwindSafe(|| {
            let chain = self
                .stages
                .get(&stage_id)
                .map(|s| locality_chain(&s.rdd))
                .unwrap_or_default();
            partitions
                .iter()
                .map(|&p| TaskSpec {
                    partition: p,
                    preferred_locations: self.preferred_locations(&chain, p),
                })
                .collect::<Vec<_>>()
        }));
        let tasks: Vec<TaskSpec> = match tasks {
            Ok(tasks) => tasks,
            Err(payload) => {
                let reason = format!("Task creation failed: {}", panic_message(payload.as_ref()));
                warn!("Stage {stage_id}: {reason}");
                self.abort_stage(stage_id, &reason, actions);
                return;
            }
        };
        let epoch = self.tracker.epoch();
        let Some(stage) = self.stages.get_mut(&stage_id) else {
            return;
        };
        let attempt = stage.next_attempt;
        stage.next_attempt += 1;
        stage.attempt_epochs.insert(attempt, epoch);
        stage.pending = partitions.iter().copied().collect();
        stage.num_tasks = partitions.len();
        stage.completed_tasks = 0;
        stage.submitted_at_ms = now_ms;
        if tasks.is_empty() {
            debug!("Stage {stage_id} has no missing tasks");
            actions.push(DagAction::StageCompleted {
                stage_id,
                stage_attempt_id: attempt,
                failure_reason: None,
            });
            self.stage_finished(stage_id, now_ms, actions);
            return;
        }
        info!(
            "Submitting {} missing tasks from stage {stage_id} ({})",
            tasks.len(),
            stage.name
        );
        self.running.insert(stage_id);
        actions.push(DagAction::SubmitTasks(TaskSet {
            stage_id,
            stage_attempt_id: attempt,
            priority,
            pool_name: pool,
            tasks,
            shuffle_id,
            body,
            barrier,
        }));
    }

    /// Where a partition would rather run: its cached copies, else the RDD's own preference,
    /// else that of its one-to-one narrow parents (Spark's `getPreferredLocs`), in `chain` order.
    fn preferred_locations(
        &self,
        chain: &[Arc<dyn RddBase>],
        partition: usize,
    ) -> Vec<TaskLocation> {
        for rdd in chain {
            if rdd.storage_level().is_valid() {
                let locs = self.cache.cache_locations(rdd.id(), partition);
                if !locs.is_empty() {
                    return locs
                        .into_iter()
                        .map(|m| TaskLocation::Executor {
                            host: m.host,
                            executor_id: m.executor_id,
                        })
                        .collect();
                }
            }
            let own = rdd.preferred_locations(partition);
            if !own.is_empty() {
                return own;
            }
            let input = self.shuffle_input_hosts(rdd.as_ref(), partition);
            if !input.is_empty() {
                return input;
            }
        }
        Vec::new()
    }

    /// The hosts holding at least a fifth of reduce partition `partition`'s input, for an RDD
    /// that reads a shuffle and prefers them (Spark's `getPreferredLocationsForShuffle`). They
    /// are hosts, not executors: the outputs are served from the host's files, so any executor
    /// there reads them locally. Large shuffles are left out (no host is likely to hold much).
    fn shuffle_input_hosts(&self, rdd: &dyn RddBase, partition: usize) -> Vec<TaskLocation> {
        if !self.reduce_locality || !rdd.prefers_shuffle_input_hosts() {
            return Vec::new();
        }
        let Some(dep) = rdd.dependencies().into_iter().find_map(|d| match d {
            Dependency::Shuffle(dep) => Some(dep),
            Dependency::Narrow { .. } => None,
        }) else {
            return Vec::new();
        };
        if dep.rdd().num_partitions() >= SHUFFLE_PREF_MAP_THRESHOLD
            || dep.num_reduce_partitions() >= SHUFFLE_PREF_REDUCE_THRESHOLD
        {
            return Vec::new();
        }
        let Some(locations) = self.tracker.locations_with_largest_outputs(
            dep.shuffle_id(),
            partition,
            REDUCER_PREF_LOCS_FRACTION,
        ) else {
            return Vec::new();
        };
        let mut hosts: Vec<TaskLocation> = Vec::new();
        for loc in locations {
            let host = TaskLocation::Host(loc.host);
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
    }

    /// Spark's `markStageAsFinished`: a running stage's latest attempt is over.
    fn mark_stage_finished(
        &mut self,
        stage_id: StageId,
        failure_reason: Option<String>,
        actions: &mut Vec<DagAction>,
    ) {
        if self.running.remove(&stage_id) {
            if let Some(s) = self.stages.get(&stage_id) {
                actions.push(DagAction::StageCompleted {
                    stage_id,
                    stage_attempt_id: s.latest_attempt(),
                    failure_reason,
                });
            }
        }
    }

    fn stage_finished(&mut self, stage_id: StageId, now_ms: u64, actions: &mut Vec<DagAction>) {
        self.mark_stage_finished(stage_id, None, actions);
        if let Some(s) = self.stages.get_mut(&stage_id) {
            // SPARK-17644: only attempts failed since the stage last succeeded count.
            s.failed_attempt_ids.clear();
            if s.shuffle_id().is_some() {
                // Spark's processShuffleMapStageCompletion: tasks launched from now on read
                // the completed outputs.
                self.tracker.increment_epoch();
            }
        }
        info!("Stage {stage_id} finished");
        let ready: Vec<StageId> = self
            .waiting
            .iter()
            .copied()
            .filter(|w| self.missing_parent_stages(*w).is_empty())
            .collect();
        for w in ready {
            self.waiting.remove(&w);
            self.submit_stage(w, now_ms, actions);
        }
    }

    /// Handles the end of a task attempt.
    pub fn task_ended(
        &mut self,
        stage_id: StageId,
        stage_attempt_id: u32,
        partition: usize,
        result: Result<DirectTaskResult, TaskEndReason>,
        now_ms: u64,
    ) -> Vec<DagAction> {
        let mut actions = Vec::new();
        let Some(stage) = self.stages.get_mut(&stage_id) else {
            return actions;
        };
        match result {
            Ok(_)
                if stage.indeterminate
                    && (stage_attempt_id < stage.latest_attempt()
                        || !self.running.contains(&stage_id)) =>
            {
                // SPARK-45182: the output of an attempt that is no longer the running one was
                // computed from input that has been (or is being) rolled back.
                info!(
                    "Ignoring task {partition} completion of stage {stage_id} attempt \
                     {stage_attempt_id}: an older attempt of indeterminate stage"
                );
            }
            Ok(res) => {
                // As Spark's: a success of an earlier attempt counts for the running one (its
                // tasks are left to finish after a fetch failure, SPARK-17064).
                if stage.pending.remove(&partition) {
                    stage.completed_tasks += 1;
                }
                if stage_attempt_id < stage.latest_attempt() {
                    actions.push(DagAction::NotifyPartitionCompletion {
                        stage_id,
                        partition,
                    });
                }
                // Spark sizes a result by its serialized bytes; a value handed over unserialized
                // (local mode) was measured by its executor.
                let result_size = match &res.value {
                    TaskValue::Bytes(b) => b.len() as u64,
                    TaskValue::ResultTooLarge { size } => *size,
                    TaskValue::Value(_) => res.metrics.result_size,
                    TaskValue::MapStatus(_) => 0,
                };
                match (&stage.kind, res.value) {
                    (StageKind::Result { job_id, .. }, value) => {
                        let job_id = *job_id;
                        let result = SizedResult {
                            value,
                            size: result_size,
                            accum_updates: res.accum_updates,
                        };
                        self.result_task_succeeded(
                            job_id,
                            stage_id,
                            partition,
                            result,
                            now_ms,
                            &mut actions,
                        );
                    }
                    (StageKind::ShuffleMap { shuffle_id, .. }, TaskValue::MapStatus(status)) => {
                        let sid = *shuffle_id;
                        let task_epoch = stage
                            .attempt_epochs
                            .get(&stage_attempt_id)
                            .copied()
                            .unwrap_or(0);
                        let exec = status.location.executor_id.clone();
                        if self
                            .executor_failure_epoch
                            .get(&exec)
                            .is_some_and(|failed| task_epoch <= *failed)
                        {
                            // Launched before the executor failed: its output may be gone
                            // (SPARK-19263); the partition runs again elsewhere.
                            info!(
                                "Ignoring possibly bogus ShuffleMapTask({stage_id}, {partition}) \
                                 completion from executor {exec}"
                            );
                        } else if self.tracker.register_map_output(sid, status)
                            && !res.accum_updates.is_empty()
                        {
                            // Only the first success of a map partition counts its updates: a
                            // speculative copy or a late zombie finds the output already there.
                            actions.push(DagAction::ApplyAccumulatorUpdates {
                                stage_id,
                                partition,
                                updates: res.accum_updates,
                            });
                        }
                        let pending_empty = stage.pending.is_empty();
                        if self.running.contains(&stage_id) {
                            if self.tracker.is_available(sid) {
                                self.stage_finished(stage_id, now_ms, &mut actions);
                            } else if pending_empty {
                                // Some outputs of this stage were lost meanwhile: run them again.
                                self.mark_stage_finished(stage_id, None, &mut actions);
                                self.submit_missing_tasks(stage_id, now_ms, &mut actions);
                            }
                        }
                    }
                    (StageKind::ShuffleMap { .. }, other) => {
                        warn!("map task of stage {stage_id} returned {other:?}")
                    }
                }
            }
            Err(reason @ TaskEndReason::FetchFailed { .. }) => {
                let failure = reason.to_string();
                let TaskEndReason::FetchFailed {
                    location,
                    shuffle_id,
                    map_index,
                    message,
                    ..
                } = reason
                else {
                    return actions;
                };
                let latest = stage.latest_attempt();
                if stage_attempt_id != latest {
                    info!(
                        "Ignoring fetch failure from stage {stage_id} attempt {stage_attempt_id} \
                         as there is a more recent attempt for that stage (attempt {latest}) \
                         running"
                    );
                    return actions;
                }
                let task_epoch = stage
                    .attempt_epochs
                    .get(&stage_attempt_id)
                    .copied()
                    .unwrap_or(0);
                // A set of attempt ids, as Spark's: the other fetch failures of an attempt
                // already counted do not count again.
                stage.failed_attempt_ids.insert(stage_attempt_id);
                let attempts = stage.failed_attempt_ids.len() as u32;
                if self.running.remove(&stage_id) {
                    info!(
                        "Marking {stage} ({}) as failed due to a fetch failure",
                        stage.name
                    );
                    // What `mark_stage_finished` reports, inline: `stage` is still borrowed.
                    // Its running tasks are not killed (Spark's SPARK-17064 TODO): the attempt
                    // is a zombie, and what they still compute counts for the next attempt.
                    actions.push(DagAction::StageCompleted {
                        stage_id,
                        stage_attempt_id: latest,
                        failure_reason: Some(failure),
                    });
                } else {
                    // A later fetch failure of the same attempt still tells which outputs are
                    // gone: forget them too, so one resubmission recomputes them all.
                    debug!(
                        "Received fetch failure from stage {stage_id} attempt {stage_attempt_id}, \
                         which is no longer running"
                    );
                }
                if let Some(m) = map_index {
                    self.tracker.unregister_map_output(shuffle_id, m);
                }
                if let Some(loc) = &location {
                    // Spark's removeExecutorAndUnregisterOutputs with the task's epoch: the
                    // executor's outputs are forgotten once per failure, not once per reducer.
                    let exec = &loc.executor_id;
                    if self
                        .executor_failure_epoch
                        .get(exec)
                        .is_none_or(|failed| *failed < task_epoch)
                    {
                        self.executor_failure_epoch.insert(exec.clone(), task_epoch);
                        info!("Shuffle files lost for executor: {exec} (epoch {task_epoch})");
                        self.tracker.remove_outputs_on_executor(exec);
                    }
                }
                if stage.barrier {
                    // The stage's other tasks would wait at their barrier for this one: kill
                    // them, and run the whole stage again, which a result stage cannot (Spark's
                    // fetch-failure handling of a barrier stage).
                    let task = task_name(stage, partition);
                    let reason = format!(
                        "Task {task} from barrier stage {stage} ({}) failed.",
                        stage.name
                    );
                    let own_shuffle = stage.shuffle_id();
                    actions.push(DagAction::CancelStage { stage_id, reason });
                    match own_shuffle {
                        Some(own) => self.tracker.unregister_all_map_outputs(own),
                        None => {
                            let reason = format!(
                                "Could not recover from a failed barrier ResultStage. Most \
                                 recent failure reason: {message}"
                            );
                            self.abort_stage(stage_id, &reason, &mut actions);
                            return actions;
                        }
                    }
                }
                if attempts >= self.max_stage_attempts {
                    // Spark's wording: "ResultStage 1 (count at …) has failed the maximum …".
                    let reason = format!(
                        "{stage} ({}) has failed the maximum allowable number of times: {}. Most \
                         recent failure reason:\n{message}",
                        stage.name, self.max_stage_attempts
                    );
                    self.abort_stage(stage_id, &reason, &mut actions);
                    return actions;
                }
                // As Spark: wait RESUBMIT_TIMEOUT so that the other reducers' fetch failures from
                // the same lost outputs arrive first and are handled by one resubmission.
                if self.failed.insert(stage_id) {
                    if let Some(&map_stage) = self.shuffle_to_stage.get(&shuffle_id) {
                        if self.roll_back_indeterminate(map_stage, &mut actions) {
                            return actions;
                        }
                    }
                    warn!(
                        "Stage {stage_id} will be resubmitted with its parents after a fetch \
                         failure: {message}"
                    );
                    self.resubmit_at.get_or_insert(now_ms + RESUBMIT_TIMEOUT_MS);
                }
            }
            Err(reason) if stage.barrier => {
                self.barrier_task_failed(stage_id, stage_attempt_id, partition, &reason, now_ms)
                    .into_iter()
                    .for_each(|a| actions.push(a));
            }
            Err(_) => {
                // Ordinary failures are retried by the task set manager; nothing to do here.
            }
        }
        actions
    }

    /// A task of a barrier stage failed (any reason but a fetch failure): its attempt fails as a
    /// whole, the other tasks are killed and the stage runs again in full; a result stage
    /// cannot (it may have delivered partitions), so its jobs fail (Spark's `handleTaskCompletion`
    /// for `task.isBarrier`).
    fn barrier_task_failed(
        &mut self,
        stage_id: StageId,
        stage_attempt_id: u32,
        partition: usize,
        reason: &TaskEndReason,
        now_ms: u64,
    ) -> Vec<DagAction> {
        let mut actions = Vec::new();
        let Some(stage) = self.stages.get_mut(&stage_id) else {
            return actions;
        };
        let task = task_name(stage, partition);
        let latest = stage.latest_attempt();
        if stage_attempt_id != latest {
            info!(
                "Ignoring task failure from {task} as it's from {stage} attempt \
                 {stage_attempt_id} and there is a more recent attempt for that stage (attempt \
                 {latest}) running"
            );
            return actions;
        }
        let name = stage.name.clone();
        let stage_text = stage.to_string();
        let message =
            format!("Stage failed because barrier task {task} finished unsuccessfully.\n{reason}");
        // A set: the other tasks of the attempt, failing or killed, do not count again.
        stage.failed_attempt_ids.insert(stage_attempt_id);
        let should_abort = stage.failed_attempt_ids.len() as u32 >= self.max_stage_attempts;
        let shuffle_id = stage.shuffle_id();
        if self.running.contains(&stage_id) {
            info!("Marking {stage_text} ({name}) as failed due to a barrier task failed.");
            actions.push(DagAction::CancelStage {
                stage_id,
                reason: format!("Task {task} from barrier stage {stage_text} ({name}) failed."),
            });
            self.mark_stage_finished(stage_id, Some(message.clone()), &mut actions);
        }
        if should_abort {
            let reason = format!(
                "{stage_text} ({name}) has failed the maximum allowable number of times: {}. Most \
                 recent failure reason: {message}",
                self.max_stage_attempts
            );
            self.abort_stage(stage_id, &reason, &mut actions);
            return actions;
        }
        let Some(shuffle_id) = shuffle_id else {
            let reason = format!(
                "Could not recover from a failed barrier ResultStage. Most recent failure \
                 reason: {message}"
            );
            self.abort_stage(stage_id, &reason, &mut actions);
            return actions;
        };
        // Every task runs again: the outputs of this attempt's finished tasks go too.
        self.tracker.unregister_all_map_outputs(shuffle_id);
        if self.failed.insert(stage_id) {
            info!("Resubmitting {stage_text} ({name}) due to barrier stage failure.");
            self.resubmit_at
                .get_or_insert(now_ms.saturating_add(RESUBMIT_TIMEOUT_MS));
        }
        actions
    }

    /// Whether `stage_id` reads, through its ancestors, the output of `ancestor`.
    fn depends_on(&self, stage_id: StageId, ancestor: StageId) -> bool {
        let mut todo = vec![stage_id];
        let mut seen = BTreeSet::new();
        while let Some(s) = todo.pop() {
            if !seen.insert(s) {
                continue;
            }
            let Some(stage) = self.stages.get(&s) else {
                continue;
            };
            if stage.parents.contains(&ancestor) {
                return true;
            }
            todo.extend(stage.parents.iter().copied());
        }
        false
    }

    /// A fetch failure hit the output of `map_stage`: if that stage is indeterminate, its
    /// recomputed output may differ, so it and every stage of a running job that read it run
    /// again in full (Spark's SPARK-25341 roll-back); a result stage that already delivered
    /// partitions cannot take them back, so its jobs fail (SPARK-23207). Returns whether it
    /// aborted.
    fn roll_back_indeterminate(
        &mut self,
        map_stage: StageId,
        actions: &mut Vec<DagAction>,
    ) -> bool {
        if !self.stages.get(&map_stage).is_some_and(|s| s.indeterminate) {
            return false;
        }
        let succeeding: Vec<StageId> = self
            .stages
            .iter()
            .filter(|(id, s)| {
                !s.job_ids.is_empty() && (**id == map_stage || self.depends_on(**id, map_stage))
            })
            .map(|(id, _)| *id)
            .collect();
        let mut rolling_back = Vec::new();
        for s in succeeding {
            let Some(stage) = self.stages.get(&s) else {
                continue;
            };
            match &stage.kind {
                StageKind::ShuffleMap { shuffle_id, .. } => {
                    let missing = self
                        .tracker
                        .missing_partitions(*shuffle_id)
                        .map_or(0, |m| m.len());
                    if missing < stage.rdd.num_partitions() {
                        rolling_back.push((s, *shuffle_id));
                    }
                }
                StageKind::Result { job_id, .. } => {
                    if self.jobs.get(job_id).is_some_and(|j| j.num_finished > 0) {
                        let reason = format!(
                            "A shuffle map stage with indeterminate output was failed and \
                             retried. However, Ember cannot rollback the {stage} to re-process \
                             the input data, and has to fail this job. Please eliminate the \
                             indeterminacy by checkpointing the RDD before repartition and try \
                             again."
                        );
                        self.abort_stage(s, &reason, actions);
                        return true;
                    }
                }
            }
        }
        let names: Vec<String> = rolling_back
            .iter()
            .filter_map(|(s, _)| self.stages.get(s).map(|st| st.to_string()))
            .collect();
        info!(
            "The shuffle map stage {map_stage} with indeterminate output was failed, we will roll \
             back and rerun below stages which include itself and all its indeterminate child \
             stages: {}",
            names.join(", ")
        );
        for (_, shuffle_id) in rolling_back {
            self.tracker.unregister_all_map_outputs(shuffle_id);
        }
        false
    }

    fn result_task_succeeded(
        &mut self,
        job_id: JobId,
        stage_id: StageId,
        partition: usize,
        result: SizedResult,
        now_ms: u64,
        actions: &mut Vec<DagAction>,
    ) {
        let SizedResult {
            value,
            size,
            accum_updates,
        } = result;
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return;
        };
        let Some(&i) = job.output_index.get(&partition) else {
            return;
        };
        if job.finished[i] {
            return;
        }
        // Only result tasks count (SPARK-32470): map statuses never reach here.
        job.result_bytes += size;
        let too_large = matches!(value, TaskValue::ResultTooLarge { .. });
        if too_large || (self.max_result_size > 0 && job.result_bytes > self.max_result_size) {
            // Spark's TaskSetManager.canFetchMoreResults wording.
            let msg = format!(
                "Total size of serialized results of {} tasks ({}) is bigger than \
                 ember.driver.maxResultSize ({})",
                job.num_finished + 1,
                bytes_to_string(job.result_bytes),
                bytes_to_string(self.max_result_size)
            );
            self.fail_job(job_id, SchedulerError::JobAborted(msg), actions);
            return;
        }
        job.finished[i] = true;
        job.num_finished += 1;
        // Spark's guarantee for actions: each partition's updates are applied exactly once, and
        // before the caller can see the partition's result.
        if !accum_updates.is_empty() {
            actions.push(DagAction::ApplyAccumulatorUpdates {
                stage_id,
                partition,
                updates: accum_updates,
            });
        }
        actions.push(DagAction::NotifyJob {
            job_id,
            event: JobEvent::TaskSucceeded {
                output_index: i,
                value,
            },
        });
        if job.num_finished == job.finished.len() {
            info!("Job {job_id} finished: {}", job.call_site);
            // As Spark: the stage's end, then the job's (listeners see StageCompleted first).
            self.mark_stage_finished(stage_id, None, actions);
            self.cleanup_job(job_id, None, actions);
            actions.push(DagAction::NotifyJob {
                job_id,
                event: JobEvent::Succeeded,
            });
            self.stage_finished(stage_id, now_ms, actions);
        }
    }

    /// A task set gave up: fail every job that needs the stage.
    pub fn task_set_failed(&mut self, stage_id: StageId, reason: &str) -> Vec<DagAction> {
        let mut actions = Vec::new();
        self.abort_stage(stage_id, reason, &mut actions);
        actions
    }

    fn abort_stage(&mut self, stage_id: StageId, reason: &str, actions: &mut Vec<DagAction>) {
        let Some(stage) = self.stages.get(&stage_id) else {
            return;
        };
        let jobs: Vec<JobId> = stage.job_ids.iter().copied().collect();
        for job_id in jobs {
            self.fail_job(
                job_id,
                SchedulerError::JobAborted(reason.to_string()),
                actions,
            );
        }
    }

    fn fail_job(&mut self, job_id: JobId, err: SchedulerError, actions: &mut Vec<DagAction>) {
        if !self.jobs.contains_key(&job_id) {
            return;
        }
        info!("Job {job_id} failed: {err}");
        let reason = err.to_string();
        // As Spark's failJobAndIndependentStages: its stages end (failed), then the job.
        self.cleanup_job(job_id, Some(&reason), actions);
        actions.push(DagAction::NotifyJob {
            job_id,
            event: JobEvent::Failed(err),
        });
    }

    /// Cancels a job: its tasks are killed and its caller gets `JobCancelled`.
    pub fn cancel_job(&mut self, job_id: JobId, reason: &str) -> Vec<DagAction> {
        let mut actions = Vec::new();
        if self.slot_check_retries.remove(&job_id).is_some() {
            actions.push(DagAction::NotifyJob {
                job_id,
                event: JobEvent::Failed(SchedulerError::JobCancelled {
                    job_id,
                    reason: reason.to_string(),
                }),
            });
        }
        self.fail_job(
            job_id,
            SchedulerError::JobCancelled {
                job_id,
                reason: reason.to_string(),
            },
            &mut actions,
        );
        actions
    }

    /// Cancels every active job of a job group.
    pub fn cancel_job_group(&mut self, group: &str) -> Vec<DagAction> {
        let ids: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.group.as_deref() == Some(group))
            .map(|(id, _)| *id)
            .collect();
        let mut actions = Vec::new();
        for id in ids {
            let reason = format!("part of cancelled job group {group}");
            self.fail_job(
                id,
                SchedulerError::JobCancelled { job_id: id, reason },
                &mut actions,
            );
        }
        actions
    }

    /// Fails every active job with `JobAborted(reason)` (the application lost its executors).
    pub fn abort_all(&mut self, reason: &str) -> Vec<DagAction> {
        let ids: Vec<JobId> = self.jobs.keys().copied().collect();
        let mut actions = Vec::new();
        for id in ids {
            self.fail_job(
                id,
                SchedulerError::JobAborted(reason.to_string()),
                &mut actions,
            );
        }
        actions
    }

    /// Fails every active job because the event loop failed with `cause` (a panic of Ember's
    /// own code), as Spark's `onError` cancels all jobs before stopping the context.
    pub fn event_loop_failed(&mut self, cause: &str) -> Vec<DagAction> {
        let ids: Vec<JobId> = self.jobs.keys().copied().collect();
        let mut actions = Vec::new();
        for job_id in ids {
            self.fail_job(
                job_id,
                SchedulerError::EventLoopFailed {
                    job_id,
                    cause: cause.to_string(),
                },
                &mut actions,
            );
        }
        actions
    }

    /// Cancels every active job (context stop).
    pub fn cancel_all(&mut self, reason: &str) -> Vec<DagAction> {
        let ids: Vec<JobId> = self.jobs.keys().copied().collect();
        let mut actions = Vec::new();
        for job_id in std::mem::take(&mut self.slot_check_retries).into_keys() {
            actions.push(DagAction::NotifyJob {
                job_id,
                event: JobEvent::Failed(SchedulerError::JobCancelled {
                    job_id,
                    reason: reason.to_string(),
                }),
            });
        }
        for id in ids {
            self.fail_job(
                id,
                SchedulerError::JobCancelled {
                    job_id: id,
                    reason: reason.to_string(),
                },
                &mut actions,
            );
        }
        actions
    }

    /// Removes a finished or failed job, and every stage no other job needs (cancelling those
    /// still running, which end with `failure`, or "Job N ended"). Map outputs stay in the
    /// tracker, so later jobs reuse finished shuffles.
    fn cleanup_job(&mut self, job_id: JobId, failure: Option<&str>, actions: &mut Vec<DagAction>) {
        self.jobs.remove(&job_id);
        let mut orphaned = Vec::new();
        for (id, stage) in self.stages.iter_mut() {
            if stage.job_ids.remove(&job_id) && stage.job_ids.is_empty() {
                orphaned.push(*id);
            }
        }
        for id in orphaned {
            if self.running.contains(&id) {
                let reason = failure.map_or_else(|| format!("Job {job_id} ended"), str::to_string);
                self.mark_stage_finished(id, Some(reason), actions);
                actions.push(DagAction::CancelStage {
                    stage_id: id,
                    reason: format!("job {job_id} ended"),
                });
            }
            self.waiting.remove(&id);
            if let Some(stage) = self.stages.remove(&id) {
                if let Some(sid) = stage.shuffle_id() {
                    self.shuffle_to_stage.remove(&sid);
                }
            }
        }
    }

    /// An executor is gone: its map outputs are forgotten, so the stages that need them run
    /// those tasks again. (Its cached blocks are forgotten by whoever answers
    /// [`CacheLocations`], before this is called.)
    pub fn executor_lost(&mut self, executor_id: &str, now_ms: u64) -> Vec<DagAction> {
        let mut actions = Vec::new();
        // Map tasks launched on it until now may still report success (a status update that
        // crossed the loss): their outputs are gone with it (SPARK-19263).
        let epoch = self.tracker.epoch();
        if self
            .executor_failure_epoch
            .get(executor_id)
            .is_none_or(|failed| *failed < epoch)
        {
            self.executor_failure_epoch
                .insert(executor_id.to_string(), epoch);
        }
        let lost = self.tracker.remove_outputs_on_executor(executor_id);
        if lost > 0 {
            info!("Executor {executor_id} lost: {lost} map outputs will be recomputed");
            // Map stages that finished but are now incomplete, and are needed by a waiting stage
            // or a running one, are resubmitted when their children ask for them (fetch
            // failures) or right away if they are still running.
            let running_maps: Vec<StageId> = self
                .running
                .iter()
                .copied()
                .filter(|s| {
                    self.stages
                        .get(s)
                        .is_some_and(|st| st.shuffle_id().is_some())
                })
                .collect();
            for s in running_maps {
                if let Some(st) = self.stages.get(&s) {
                    if st.pending.is_empty() {
                        self.mark_stage_finished(s, None, &mut actions);
                        self.submit_missing_tasks(s, now_ms, &mut actions);
                    }
                }
            }
            let waiting: Vec<StageId> = self.waiting.iter().copied().collect();
            for w in waiting {
                for p in self.missing_parent_stages(w) {
                    if !self.running.contains(&p) {
                        self.submit_stage(p, now_ms, &mut actions);
                    }
                }
            }
        }
        actions
    }

    /// An executor registered: a failure recorded under its id is of an earlier process
    /// (Spark's `handleExecutorAdded`).
    pub fn executor_added(&mut self, executor_id: &str) {
        self.executor_failure_epoch.remove(executor_id);
    }

    /// Progress of running stages: `(stage, attempt, tasks, completed, submitted_at_ms)`.
    pub fn running_stages(&self) -> Vec<(StageId, u32, usize, usize, u64)> {
        self.running
            .iter()
            .filter_map(|id| self.stages.get(id))
            .map(|s| {
                (
                    s.id,
                    s.latest_attempt(),
                    s.num_tasks,
                    s.completed_tasks,
                    s.submitted_at_ms,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_common::{BlockManagerId, MapStatus, StorageLevel, TaskMetricsSnapshot};

    use crate::cache_locations::NoCache;
    use crate::test_support::{FakeRdd, FakeShuffle};

    /// A reduce RDD of 2 partitions over a shuffle of `maps` map partitions.
    fn reduce_rdd(maps: usize, reads_shuffle: bool) -> Arc<dyn RddBase> {
        let source = FakeRdd::new(0, maps, Vec::new()).shared();
        FakeRdd {
            reads_shuffle,
            ..FakeRdd::new(1, 2, vec![FakeShuffle::dependency(0, source, 2)])
        }
        .shared()
    }

    fn map_status(host: &str, map_index: usize, sizes: Vec<u64>) -> MapStatus {
        MapStatus {
            location: BlockManagerId {
                executor_id: format!("exec-{host}"),
                host: host.into(),
                port: 0,
            },
            map_index,
            map_id: map_index as u64,
            sizes,
        }
    }

    fn submit(dag: &mut DagScheduler, rdd: Arc<dyn RddBase>) -> Vec<DagAction> {
        let job = JobSubmission {
            rdd,
            body: TaskBody::new(()),
            partitions: vec![0, 1],
            pool: String::new(),
            group: None,
            call_site: "test".into(),
            properties: BTreeMap::new(),
        };
        dag.submit_job(job, 0).1
    }

    fn submitted(actions: &[DagAction]) -> Vec<&TaskSet> {
        actions
            .iter()
            .filter_map(|a| {
                if let DagAction::SubmitTasks(ts) = a {
                    Some(ts)
                } else {
                    None
                }
            })
            .collect()
    }

    fn hosts(names: &[&str]) -> Vec<TaskLocation> {
        names
            .iter()
            .map(|h| TaskLocation::Host((*h).into()))
            .collect()
    }

    #[test]
    fn reduce_tasks_prefer_the_hosts_with_the_largest_map_outputs() {
        // Spark's "reduce task locality preferences should only include machines with largest
        // map outputs": reduce 0 reads 10/20/30/40 % of its input from hosts A-D.
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, Arc::new(NoCache), 4);
        let actions = submit(&mut dag, reduce_rdd(4, true));
        let map_stage = submitted(&actions)[0].stage_id;
        let mut actions = Vec::new();
        for (i, (host, size)) in [("hostA", 10), ("hostB", 20), ("hostC", 30), ("hostD", 40)]
            .into_iter()
            .enumerate()
        {
            let value = TaskValue::MapStatus(map_status(host, i, vec![size, 5]));
            let result = DirectTaskResult {
                value,
                metrics: TaskMetricsSnapshot::default(),
                accum_updates: Vec::new(),
            };
            actions.extend(dag.task_ended(map_stage, 0, i, Ok(result), 1));
        }
        let reduce = submitted(&actions);
        assert_eq!(reduce.len(), 1);
        assert_eq!(
            reduce[0].tasks[0].preferred_locations,
            hosts(&["hostB", "hostC", "hostD"])
        );
        // Reduce 1 reads a quarter from each: every host passes the fifth.
        assert_eq!(
            reduce[0].tasks[1].preferred_locations,
            hosts(&["hostA", "hostB", "hostC", "hostD"])
        );
    }

    #[test]
    fn reduce_locality_is_off_for_large_shuffles_other_rdds_and_when_disabled() {
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker.clone(), Arc::new(NoCache), 4);
        let register = |maps: usize| {
            tracker.unregister_shuffle(0);
            tracker.register_shuffle(0, maps);
            // Two outputs on one host ("reduce tasks should be placed locally with map output").
            for i in 0..maps {
                tracker.register_map_output(0, map_status("hostA", i, vec![1, 1]));
            }
        };
        register(2);
        assert_eq!(
            dag.shuffle_input_hosts(reduce_rdd(2, true).as_ref(), 0),
            hosts(&["hostA"])
        );
        // A cogroup-like reader keeps no preference, as Spark's CoGroupedRDD.
        assert!(dag
            .shuffle_input_hosts(reduce_rdd(2, false).as_ref(), 0)
            .is_empty());
        dag.set_reduce_locality(false);
        assert!(dag
            .shuffle_input_hosts(reduce_rdd(2, true).as_ref(), 0)
            .is_empty());
        dag.set_reduce_locality(true);
        register(SHUFFLE_PREF_MAP_THRESHOLD - 1);
        assert_eq!(
            dag.shuffle_input_hosts(reduce_rdd(SHUFFLE_PREF_MAP_THRESHOLD - 1, true).as_ref(), 0),
            hosts(&["hostA"])
        );
        register(SHUFFLE_PREF_MAP_THRESHOLD);
        assert!(dag
            .shuffle_input_hosts(reduce_rdd(SHUFFLE_PREF_MAP_THRESHOLD, true).as_ref(), 0)
            .is_empty());
    }

    /// Cached partitions as a test sets them.
    #[derive(Default)]
    struct TestCache(
        std::sync::Mutex<std::collections::HashMap<(usize, usize), Vec<BlockManagerId>>>,
    );

    impl CacheLocations for TestCache {
        fn cache_locations(&self, rdd_id: usize, partition: usize) -> Vec<BlockManagerId> {
            let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
            cached
                .get(&(rdd_id, partition))
                .cloned()
                .unwrap_or_default()
        }
    }

    /// An RDD of the cache tests: any shape, persisted or not.
    fn node(id: usize, deps: Vec<Dependency>, level: StorageLevel) -> Arc<dyn RddBase> {
        FakeRdd {
            level,
            ..FakeRdd::new(id, 2, deps)
        }
        .shared()
    }

    fn one_to_one(rdd: &Arc<dyn RddBase>) -> Dependency {
        Dependency::Narrow {
            rdd: rdd.clone(),
            one_to_one: true,
        }
    }

    /// A → shuffle 0 → B → C (persisted) → D → shuffle 1 → E, the final RDD.
    fn cached_in_the_middle() -> Arc<dyn RddBase> {
        let a = node(0, Vec::new(), StorageLevel::NONE);
        let s0 = FakeShuffle::dependency(0, a, 2);
        let b = node(1, vec![s0], StorageLevel::NONE);
        let c = node(2, vec![one_to_one(&b)], StorageLevel::MEMORY_ONLY);
        let d = node(3, vec![one_to_one(&c)], StorageLevel::NONE);
        let s1 = FakeShuffle::dependency(1, d, 2);
        node(4, vec![s1], StorageLevel::NONE)
    }

    fn block_manager(host: &str) -> BlockManagerId {
        BlockManagerId {
            executor_id: format!("exec-{host}"),
            host: host.into(),
            port: 0,
        }
    }

    #[test]
    fn missing_parent_stages_consider_all_ancestor_rdds_cache_statuses() {
        // DAGSchedulerSuite "getMissingParentStages should consider all ancestor RDDs' cache
        // statuses": C is cached in full, so shuffle 0's map stage below it is skipped and the
        // first task set is shuffle 1's, whose tasks prefer the cached copies.
        let cache = Arc::new(TestCache::default());
        for p in 0..2 {
            let locs = vec![block_manager("hostA"), block_manager("hostB")];
            cache.0.lock().unwrap().insert((2, p), locs);
        }
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, cache, 4);
        let actions = submit(&mut dag, cached_in_the_middle());
        let sets = submitted(&actions);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].shuffle_id, Some(1));
        assert_eq!(
            sets[0].tasks[0].preferred_locations,
            vec![
                on_executor("hostA", "exec-hostA"),
                on_executor("hostB", "exec-hostB")
            ]
        );
    }

    #[test]
    fn an_rdd_cached_in_part_does_not_skip_its_parent_stages() {
        let cache = Arc::new(TestCache::default());
        cache
            .0
            .lock()
            .unwrap()
            .insert((2, 0), vec![block_manager("hostA")]);
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, cache, 4);
        let actions = submit(&mut dag, cached_in_the_middle());
        let sets = submitted(&actions);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].shuffle_id, Some(0));
    }

    fn bnode(
        id: usize,
        parts: usize,
        deps: Vec<Dependency>,
        from_barrier: bool,
    ) -> Arc<dyn RddBase> {
        FakeRdd {
            from_barrier,
            ..FakeRdd::new(id, parts, deps)
        }
        .shared()
    }

    fn submit_parts(
        dag: &mut DagScheduler,
        rdd: Arc<dyn RddBase>,
        parts: Vec<usize>,
    ) -> Vec<DagAction> {
        let job = JobSubmission {
            rdd,
            body: TaskBody::new(()),
            partitions: parts,
            pool: String::new(),
            group: None,
            call_site: "test".into(),
            properties: BTreeMap::new(),
        };
        dag.submit_job(job, 0).1
    }

    fn job_failure(actions: &[DagAction]) -> Option<&SchedulerError> {
        actions.iter().find_map(|a| match a {
            DagAction::NotifyJob {
                event: JobEvent::Failed(e),
                ..
            } => Some(e),
            _ => None,
        })
    }

    fn boom() -> TaskEndReason {
        TaskEndReason::ExceptionFailure {
            description: "boom".into(),
        }
    }

    #[test]
    fn is_barrier_goes_through_narrow_dependencies_and_stops_at_shuffles() {
        let source = bnode(0, 2, Vec::new(), false);
        let b = bnode(1, 2, vec![one_to_one(&source)], true);
        let child = bnode(2, 2, vec![one_to_one(&b)], false);
        assert!(!source.is_barrier());
        assert!(b.is_barrier() && child.is_barrier());
        let reduce = bnode(3, 2, vec![FakeShuffle::dependency(0, child, 2)], false);
        assert!(!reduce.is_barrier());
    }

    #[test]
    fn a_failed_barrier_map_task_reruns_the_whole_stage_and_stale_failures_are_ignored() {
        // DAGSchedulerSuite "Retry all the tasks on a resubmitted attempt of a barrier stage"
        // and "Barrier task failures from a previous stage attempt don't trigger stage retry".
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker.clone(), Arc::new(NoCache), 4);
        let b = bnode(0, 2, Vec::new(), true);
        let reduce = bnode(1, 2, vec![FakeShuffle::dependency(0, b, 2)], false);
        let actions = submit(&mut dag, reduce);
        let sets = submitted(&actions);
        assert_eq!(sets.len(), 1);
        assert!(sets[0].barrier);
        let map_stage = sets[0].stage_id;
        let ok = |i: usize| DirectTaskResult {
            value: TaskValue::MapStatus(map_status("hostA", i, vec![1, 1])),
            metrics: TaskMetricsSnapshot::default(),
            accum_updates: Vec::new(),
        };
        dag.task_ended(map_stage, 0, 0, Ok(ok(0)), 1);
        let actions = dag.task_ended(map_stage, 0, 1, Err(boom()), 2);
        let failure = "Stage failed because barrier task ShuffleMapTask(0, 1) finished \
                       unsuccessfully.\nboom";
        assert!(actions.iter().any(|a| matches!(
            a,
            DagAction::CancelStage { stage_id: 0, reason }
                if reason == "Task ShuffleMapTask(0, 1) from barrier stage ShuffleMapStage 0 \
                              (Fake 0) failed."
        )));
        assert!(actions.iter().any(|a| matches!(
            a,
            DagAction::StageCompleted { failure_reason: Some(r), .. } if r == failure
        )));
        assert!(job_failure(&actions).is_none());
        // The other task, killed, fails the same attempt again: nothing more happens.
        let killed = TaskEndReason::TaskKilled {
            reason: "killed".into(),
        };
        assert!(submitted(&dag.task_ended(map_stage, 0, 0, Err(killed.clone()), 3)).is_empty());
        assert_eq!(dag.next_wakeup_ms(), Some(2 + RESUBMIT_TIMEOUT_MS));
        let actions = dag.resubmit_failed_stages(2 + RESUBMIT_TIMEOUT_MS);
        let sets = submitted(&actions);
        assert_eq!(sets.len(), 1);
        assert_eq!((sets[0].stage_id, sets[0].stage_attempt_id), (map_stage, 1));
        // Partition 0's output of attempt 0 was dropped: both run again.
        let parts: Vec<usize> = sets[0].tasks.iter().map(|t| t.partition).collect();
        assert_eq!(parts, [0, 1]);
        // A late failure of attempt 0 changes nothing.
        assert!(dag.task_ended(map_stage, 0, 1, Err(killed), 300).is_empty());
    }

    #[test]
    fn a_failed_barrier_result_task_fails_the_job() {
        // DAGSchedulerSuite "Fail the job if a barrier ResultTask failed".
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, Arc::new(NoCache), 4);
        let b = bnode(0, 2, Vec::new(), true);
        let actions = submit(&mut dag, b);
        assert!(submitted(&actions)[0].barrier);
        let actions = dag.task_ended(0, 0, 0, Err(boom()), 1);
        assert_eq!(
            job_failure(&actions),
            Some(&SchedulerError::JobAborted(
                "Could not recover from a failed barrier ResultStage. Most recent failure reason: \
                 Stage failed because barrier task ResultTask(0, 0) finished unsuccessfully.\nboom"
                    .into()
            ))
        );
    }

    #[test]
    fn a_barrier_stage_fails_after_max_consecutive_attempts() {
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, Arc::new(NoCache), 1);
        let b = bnode(0, 2, Vec::new(), true);
        let reduce = bnode(1, 2, vec![FakeShuffle::dependency(0, b, 2)], false);
        submit(&mut dag, reduce);
        let actions = dag.task_ended(0, 0, 1, Err(boom()), 1);
        let Some(SchedulerError::JobAborted(m)) = job_failure(&actions) else {
            panic!("no failure in {actions:?}");
        };
        assert!(m.starts_with(
            "ShuffleMapStage 0 (Fake 0) has failed the maximum allowable number of times: \
             1. Most recent failure reason: Stage failed because barrier task"
        ));
    }

    #[test]
    fn a_fetch_failure_in_a_barrier_result_stage_kills_its_tasks_and_fails_the_job() {
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, Arc::new(NoCache), 4);
        let source = bnode(0, 2, Vec::new(), false);
        let dep = FakeShuffle::dependency(0, source, 2);
        let reduce = bnode(1, 2, vec![dep], false);
        let b = bnode(2, 2, vec![one_to_one(&reduce)], true);
        submit(&mut dag, b);
        for i in 0..2 {
            let result = DirectTaskResult {
                value: TaskValue::MapStatus(map_status("hostA", i, vec![1, 1])),
                metrics: TaskMetricsSnapshot::default(),
                accum_updates: Vec::new(),
            };
            dag.task_ended(0, 0, i, Ok(result), 1);
        }
        let fetch = TaskEndReason::FetchFailed {
            location: None,
            shuffle_id: 0,
            map_index: Some(0),
            reduce_id: 0,
            message: "gone".into(),
        };
        let actions = dag.task_ended(1, 0, 0, Err(fetch), 2);
        assert!(actions
            .iter()
            .any(|a| matches!(a, DagAction::CancelStage { stage_id: 1, .. })));
        assert_eq!(
            job_failure(&actions),
            Some(&SchedulerError::JobAborted(
                "Could not recover from a failed barrier ResultStage. Most recent failure reason: \
                 gone"
                    .into()
            ))
        );
    }

    #[test]
    fn spark_24819_a_barrier_job_waits_for_slots_then_fails() {
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, Arc::new(NoCache), 4);
        dag.set_max_concurrent_tasks(1);
        dag.set_barrier_slot_check(1000, 2);
        let actions = submit(&mut dag, bnode(0, 2, Vec::new(), true));
        assert!(actions.is_empty());
        assert_eq!(dag.next_wakeup_ms(), Some(1000));
        assert!(dag.resubmit_failed_stages(999).is_empty());
        assert!(dag.resubmit_failed_stages(1000).is_empty());
        assert_eq!(dag.next_wakeup_ms(), Some(2000));
        let actions = dag.resubmit_failed_stages(2000);
        assert_eq!(
            job_failure(&actions),
            Some(&SchedulerError::BarrierSlotsCheckFailed {
                required: 2,
                max: 1
            })
        );
        assert!(job_failure(&actions).unwrap().to_string().starts_with(
            "[SPARK-24819]: Barrier execution mode does not allow run a barrier stage that \
             requires more slots than the total number of slots in the cluster currently."
        ));
        assert_eq!(dag.next_wakeup_ms(), None);
        // Slots that appear before the next check let the job run.
        let actions = submit(&mut dag, bnode(1, 2, Vec::new(), true));
        assert!(actions.is_empty());
        dag.set_max_concurrent_tasks(2);
        let actions = dag.resubmit_failed_stages(1000);
        assert_eq!(submitted(&actions).len(), 1);
        // A non-barrier job never waits.
        dag.set_max_concurrent_tasks(0);
        assert_eq!(
            submitted(&submit(&mut dag, bnode(2, 2, Vec::new(), false))).len(),
            1
        );
    }

    #[test]
    fn spark_24820_unsupported_barrier_rdd_chains_fail_the_job_at_once() {
        let tracker = Arc::new(MapOutputTracker::new());
        let mut dag = DagScheduler::new(tracker, Arc::new(NoCache), 4);
        let chain = Some(&SchedulerError::BarrierUnsupportedRddChain);
        // Part of the partitions (first()/take()).
        let actions = submit_parts(&mut dag, bnode(0, 2, Vec::new(), true), vec![0]);
        assert_eq!(job_failure(&actions), chain);
        // coalesce(): a barrier parent of another partition count.
        let b = bnode(1, 4, Vec::new(), true);
        let coalesced = bnode(
            2,
            2,
            vec![Dependency::Narrow {
                rdd: b,
                one_to_one: false,
            }],
            false,
        );
        assert_eq!(job_failure(&submit(&mut dag, coalesced)), chain);
        // zip() of two barrier RDDs, in a map stage.
        let b1 = bnode(3, 2, Vec::new(), true);
        let b2 = bnode(4, 2, Vec::new(), true);
        let zipped = bnode(5, 2, vec![one_to_one(&b1), one_to_one(&b2)], false);
        let reduce = bnode(6, 2, vec![FakeShuffle::dependency(0, zipped, 2)], false);
        assert_eq!(job_failure(&submit(&mut dag, reduce)), chain);
        assert!(SchedulerError::BarrierUnsupportedRddChain
            .to_string()
            .starts_with(
                "[SPARK-24820][SPARK-24821]: Barrier execution mode does not allow the following \
             pattern of RDD chain within a barrier stage:\n1. Ancestor RDDs"
            ));
        // zip() with an ordinary RDD is fine.
        let b = bnode(7, 2, Vec::new(), true);
        let plain = bnode(8, 2, Vec::new(), false);
        let zipped = bnode(9, 2, vec![one_to_one(&b), one_to_one(&plain)], false);
        assert_eq!(submitted(&submit(&mut dag, zipped)).len(), 1);
    }

    fn on_executor(host: &str, exec: &str) -> TaskLocation {
        TaskLocation::Executor {
            host: host.into(),
            executor_id: exec.into(),
        }
    }
}
