//! The UI's state (Spark's `AppStatusListener` writing into its `ElementTrackingStore`): jobs,
//! stages, tasks, executors and cached RDDs as the bus's events describe them, with Spark's
//! counting rules and its retention limits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::RwLock;
use ember_scheduler::locality::TaskLocality;
use rustc_hash::FxHashMap;

use crate::listener::events::*;
use crate::listener::Listener;
use crate::metrics::ExecutorSourceMetrics;
use crate::task::{StageId, TaskId, TaskMetricsSnapshot};

use super::task_table::TaskTable;

/// How much finished work the store remembers (`ember.ui.retained*`, Spark's defaults).
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Finished jobs (`ember.ui.retainedJobs`, 1000).
    pub jobs: usize,
    /// Finished stages (`ember.ui.retainedStages`, 1000).
    pub stages: usize,
    /// Tasks per stage attempt (`ember.ui.retainedTasks`, 100000).
    pub tasks_per_stage: usize,
    /// Removed executors (`ember.ui.retainedDeadExecutors`, 100).
    pub dead_executors: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            jobs: 1000,
            stages: 1000,
            tasks_per_stage: 100_000,
            dead_executors: 100,
        }
    }
}

/// Spark's `calculateNumberToRemove`: past the limit, remove at least a tenth of it at once.
pub(crate) fn number_to_remove(size: usize, limit: usize) -> usize {
    if size > limit {
        (limit / 10).max(size - limit)
    } else {
        0
    }
}

/// A set of small integers (task indices), one bit each.
#[derive(Clone, Debug, Default)]
pub(crate) struct BitSet {
    words: Vec<u64>,
    len: usize,
}

impl BitSet {
    /// Adds `i`; returns whether it was new.
    pub(crate) fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, i % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        self.len += usize::from(new);
        new
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// `JobExecutionStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Spark's spelling.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
        }
    }
}

/// `v1.StageStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageStatus {
    Active,
    Complete,
    Failed,
    Pending,
    Skipped,
}

impl StageStatus {
    /// Spark's spelling.
    pub fn name(self) -> &'static str {
        match self {
            StageStatus::Active => "ACTIVE",
            StageStatus::Complete => "COMPLETE",
            StageStatus::Failed => "FAILED",
            StageStatus::Pending => "PENDING",
            StageStatus::Skipped => "SKIPPED",
        }
    }
}

/// The application.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub name: String,
    pub user: String,
    pub start_time: u64,
    pub end_time: Option<u64>,
}

/// A job (Spark's `LiveJob`).
#[derive(Clone, Debug)]
pub struct Job {
    pub id: usize,
    pub name: String,
    pub description: Option<String>,
    pub submission_time: Option<u64>,
    pub completion_time: Option<u64>,
    pub stage_ids: Vec<StageId>,
    pub job_group: Option<String>,
    pub status: JobStatus,
    pub num_tasks: i64,
    pub active_tasks: i64,
    pub completed_tasks: i64,
    pub failed_tasks: i64,
    pub killed_tasks: i64,
    pub skipped_tasks: i64,
    pub(crate) completed_indices: FxHashMap<StageId, BitSet>,
    pub killed_summary: BTreeMap<String, i64>,
    pub active_stages: i64,
    pub completed_stages: BTreeSet<StageId>,
    pub skipped_stages: BTreeSet<StageId>,
    pub failed_stages: i64,
}

impl Job {
    /// Distinct (stage, index) pairs that succeeded.
    pub fn completed_indices(&self) -> usize {
        self.completed_indices.values().map(BitSet::len).sum()
    }
}

/// A task attempt as the store keeps it.
#[derive(Clone, Debug)]
pub struct Task {
    pub info: TaskInfo,
    pub error_message: Option<String>,
    /// Its metrics: final when it ended, the latest heartbeat's while it runs.
    pub metrics: Option<TaskMetricsSnapshot>,
}

/// One executor's part of a stage (Spark's `LiveExecutorStageSummary`).
#[derive(Clone, Debug, Default)]
pub struct ExecutorStageSummary {
    pub task_time: i64,
    pub succeeded_tasks: i64,
    pub failed_tasks: i64,
    pub killed_tasks: i64,
    pub metrics: TaskMetricsSnapshot,
    pub is_excluded: bool,
}

/// A stage attempt (Spark's `LiveStage`).
#[derive(Clone, Debug)]
pub struct Stage {
    pub info: StageInfo,
    pub status: StageStatus,
    pub job_ids: BTreeSet<usize>,
    pub description: Option<String>,
    pub scheduling_pool: String,
    pub active_tasks: i64,
    pub completed_tasks: i64,
    pub failed_tasks: i64,
    pub killed_tasks: i64,
    pub(crate) completed_indices: BitSet,
    pub killed_summary: BTreeMap<String, i64>,
    pub first_launch_time: Option<u64>,
    pub locality_summary: LocalitySummary,
    pub metrics: TaskMetricsSnapshot,
    pub executor_summaries: BTreeMap<Arc<str>, ExecutorStageSummary>,
    /// Its tasks, by id; at most `Retention::tasks_per_stage` of them.
    pub tasks: TaskTable,
    /// Tasks dropped to stay within the limit.
    pub tasks_dropped: u64,
}

/// How many of a stage's tasks were launched at each locality level (Spark's
/// `localitySummary`), counted in [`LocalitySummary::BY_NAME`]'s order. An array: a map entry
/// per task start cost the store's thread about 110 instructions (callgrind, W1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalitySummary([i64; 5]);

impl LocalitySummary {
    /// The levels, by name in alphabetical order: the order Spark's page prints its map in.
    const BY_NAME: [TaskLocality; 5] = [
        TaskLocality::Any,
        TaskLocality::NodeLocal,
        TaskLocality::NoPref,
        TaskLocality::ProcessLocal,
        TaskLocality::RackLocal,
    ];

    fn add(&mut self, level: TaskLocality) {
        let slot = match level {
            TaskLocality::Any => 0,
            TaskLocality::NodeLocal => 1,
            TaskLocality::NoPref => 2,
            TaskLocality::ProcessLocal => 3,
            TaskLocality::RackLocal => 4,
        };
        self.0[slot] += 1;
    }

    /// The levels at which tasks were launched, with their counts, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        Self::BY_NAME
            .into_iter()
            .zip(self.0)
            .map(|(l, n)| (locality_name(l), n))
            .filter(|&(_, n)| n > 0)
    }
}

impl Stage {
    fn new(info: StageInfo) -> Self {
        Stage {
            info,
            status: StageStatus::Pending,
            job_ids: BTreeSet::new(),
            description: None,
            scheduling_pool: "default".into(),
            active_tasks: 0,
            completed_tasks: 0,
            failed_tasks: 0,
            killed_tasks: 0,
            completed_indices: BitSet::default(),
            killed_summary: BTreeMap::new(),
            first_launch_time: None,
            locality_summary: LocalitySummary::default(),
            metrics: TaskMetricsSnapshot::default(),
            executor_summaries: BTreeMap::new(),
            tasks: TaskTable::default(),
            tasks_dropped: 0,
        }
    }

    /// Distinct task indices that succeeded.
    pub fn completed_indices(&self) -> usize {
        self.completed_indices.len()
    }
}

/// An executor, the driver included (Spark's `LiveExecutor`).
#[derive(Clone, Debug)]
pub struct Executor {
    pub id: String,
    pub host: String,
    pub host_port: Option<String>,
    pub is_active: bool,
    pub total_cores: i64,
    pub max_tasks: i64,
    pub add_time: u64,
    pub remove_time: Option<u64>,
    pub remove_reason: Option<String>,
    pub rdd_blocks: i64,
    pub memory_used: i64,
    pub disk_used: i64,
    pub max_memory: i64,
    pub total_on_heap: Option<i64>,
    pub used_on_heap: i64,
    pub total_tasks: i64,
    pub active_tasks: i64,
    pub completed_tasks: i64,
    pub failed_tasks: i64,
    pub total_duration: i64,
    pub total_gc_time: i64,
    pub total_input_bytes: i64,
    pub total_shuffle_read: i64,
    pub total_shuffle_write: i64,
    pub is_excluded: bool,
    pub excluded_in_stages: BTreeSet<StageId>,
    pub executor_logs: BTreeMap<String, String>,
    /// Its metrics source as of its latest heartbeat.
    pub source: Option<ExecutorSourceMetrics>,
}

impl Executor {
    fn new(id: &str, add_time: u64) -> Self {
        Executor {
            id: id.to_string(),
            host: String::new(),
            host_port: None,
            is_active: true,
            total_cores: 0,
            max_tasks: 0,
            add_time,
            remove_time: None,
            remove_reason: None,
            rdd_blocks: 0,
            memory_used: 0,
            disk_used: 0,
            max_memory: 0,
            total_on_heap: None,
            used_on_heap: 0,
            total_tasks: 0,
            active_tasks: 0,
            completed_tasks: 0,
            failed_tasks: 0,
            total_duration: 0,
            total_gc_time: 0,
            total_input_bytes: 0,
            total_shuffle_read: 0,
            total_shuffle_write: 0,
            is_excluded: false,
            excluded_in_stages: BTreeSet::new(),
            executor_logs: BTreeMap::new(),
            source: None,
        }
    }

    /// `host:port` of its block manager, else its host.
    pub fn address(&self) -> String {
        self.host_port.clone().unwrap_or_else(|| self.host.clone())
    }
}

/// A cached partition (Spark's `LiveRDDPartition`).
#[derive(Clone, Debug, Default)]
pub struct RddPartition {
    pub executors: Vec<String>,
    pub memory_used: i64,
    pub disk_used: i64,
}

/// An RDD's data on one executor (Spark's `LiveRDDDistribution`).
#[derive(Clone, Debug, Default)]
pub struct RddDistribution {
    pub memory_used: i64,
    pub disk_used: i64,
    pub on_heap_used: i64,
}

/// A persisted RDD (Spark's `LiveRDD`).
#[derive(Clone, Debug)]
pub struct Rdd {
    pub info: RddInfo,
    pub memory_used: i64,
    pub disk_used: i64,
    pub partitions: BTreeMap<usize, RddPartition>,
    pub distributions: BTreeMap<String, RddDistribution>,
}

/// Everything the store knows.
#[derive(Default)]
pub struct State {
    pub app: Option<App>,
    pub environment: Option<EnvironmentDetails>,
    pub jobs: BTreeMap<usize, Job>,
    pub stages: BTreeMap<(StageId, u32), Stage>,
    pub executors: BTreeMap<String, Executor>,
    pub rdds: BTreeMap<usize, Rdd>,
    /// The jobs still running (Spark's `liveJobs`): a stage submission looks for its jobs
    /// among these, not among every job the store retains.
    running_jobs: BTreeSet<usize>,
    /// Cores per task (`ember.task.cpus`), for executors' `maxTasks`.
    task_cpus: i64,
    /// Jobs and stages removed to stay within the limits.
    pub jobs_dropped: u64,
    pub stages_dropped: u64,
}

/// The UI's state, shared by its listener (the only writer) and the HTTP server.
pub struct AppStatusStore {
    state: RwLock<State>,
    retention: Retention,
}

fn add(a: &mut i64, d: u64) {
    *a += d as i64;
}

impl AppStatusStore {
    /// A store for the application `app`, keeping at most what `retention` allows.
    ///
    /// The application is known from the start, as Spark's live UI knows its own: the REST
    /// API lists it before the bus has delivered `ApplicationStart` to the store's listener.
    pub fn new(retention: Retention, app: App) -> Arc<Self> {
        Arc::new(AppStatusStore {
            state: RwLock::new(State {
                app: Some(app),
                task_cpus: 1,
                ..State::default()
            }),
            retention,
        })
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.read())
    }

    /// The listener that fills the store.
    pub fn listener(self: &Arc<Self>) -> AppStatusListener {
        AppStatusListener(self.clone())
    }
}

/// Fills an [`AppStatusStore`] from the bus (Spark's `AppStatusListener`).
pub struct AppStatusListener(Arc<AppStatusStore>);

impl AppStatusListener {
    fn write(&self, f: impl FnOnce(&mut State, &Retention)) {
        f(&mut self.0.state.write(), &self.0.retention)
    }
}

impl State {
    fn executor(&mut self, id: &str, time: u64) -> &mut Executor {
        self.executors
            .entry(id.to_string())
            .or_insert_with(|| Executor::new(id, time))
    }

    fn stage_entry(&mut self, info: &StageInfo) -> &mut Stage {
        let stage = self
            .stages
            .entry((info.stage_id, info.attempt_id))
            .or_insert_with(|| Stage::new(info.clone()));
        stage.info = info.clone();
        stage
    }

    fn cleanup_jobs(&mut self, limit: usize) {
        // Checked first: this runs at every job's end, and most find nothing to remove.
        let n = number_to_remove(self.jobs.len(), limit);
        if n == 0 {
            return;
        }
        let mut finished: Vec<(u64, usize)> = self
            .jobs
            .values()
            .filter(|j| j.status != JobStatus::Running)
            .map(|j| (j.completion_time.unwrap_or(0), j.id))
            .collect();
        finished.sort_unstable();
        for (_, id) in finished.into_iter().take(n) {
            self.jobs.remove(&id);
            self.jobs_dropped += 1;
        }
    }

    fn cleanup_stages(&mut self, limit: usize) {
        let n = number_to_remove(self.stages.len(), limit);
        if n == 0 {
            return;
        }
        // Skipped stages have no completion time: they go first, as in Spark.
        let mut done: Vec<(u64, (StageId, u32))> = self
            .stages
            .iter()
            .filter(|(_, s)| !matches!(s.status, StageStatus::Active | StageStatus::Pending))
            .map(|(k, s)| (s.info.completion_time.unwrap_or(0), *k))
            .collect();
        done.sort_unstable();
        for (_, k) in done.into_iter().take(n) {
            self.stages.remove(&k);
            self.stages_dropped += 1;
        }
    }

    fn cleanup_executors(&mut self, limit: usize) {
        let dead: Vec<(u64, String)> = self
            .executors
            .values()
            .filter(|e| !e.is_active)
            .map(|e| (e.remove_time.unwrap_or(0), e.id.clone()))
            .collect();
        let n = number_to_remove(dead.len(), limit);
        let mut dead = dead;
        dead.sort_unstable();
        for (_, id) in dead.into_iter().take(n) {
            self.executors.remove(&id);
        }
    }
}

/// Drops a stage attempt's oldest finished tasks once it holds more than `limit` (Spark's
/// `cleanupTasks`: finished tasks by completion time first, then running ones if need be).
fn cleanup_tasks(stage: &mut Stage, limit: usize) {
    let n = number_to_remove(stage.tasks.len(), limit);
    if n == 0 {
        return;
    }
    // The first finished, then (if that is not enough) the first launched.
    let mut finished: Vec<(u64, TaskId)> = stage
        .tasks
        .values()
        .filter(|t| !t.info.running())
        .map(|t| (t.info.finish_time, t.info.task_id))
        .collect();
    finished.sort_unstable();
    let mut doomed: rustc_hash::FxHashSet<TaskId> =
        finished.into_iter().take(n).map(|(_, id)| id).collect();
    for (id, _) in stage.tasks.iter() {
        if doomed.len() >= n {
            break;
        }
        doomed.insert(id);
    }
    let before = stage.tasks.len();
    stage.tasks.retain(|id, _| !doomed.contains(&id));
    stage.tasks_dropped += (before - stage.tasks.len()) as u64;
}

impl Listener for AppStatusListener {
    fn on_application_start(&mut self, e: &ApplicationStart) {
        self.write(|st, _| {
            st.app = Some(App {
                id: e.app_id.clone(),
                name: e.app_name.clone(),
                user: e.spark_user.clone(),
                start_time: e.time,
                end_time: None,
            })
        })
    }

    fn on_application_end(&mut self, e: &ApplicationEnd) {
        self.write(|st, _| {
            if let Some(app) = &mut st.app {
                app.end_time = Some(e.time);
            }
        })
    }

    fn on_environment_update(&mut self, e: &EnvironmentUpdate) {
        self.write(|st, _| {
            let cpus = e
                .environment_details
                .spark_properties
                .iter()
                .find(|(k, _)| k == crate::conf::TASK_CPUS)
                .and_then(|(_, v)| v.parse().ok());
            st.task_cpus = cpus.unwrap_or(1).max(1);
            st.environment = Some(e.environment_details.clone());
        })
    }

    fn on_executor_added(&mut self, e: &ExecutorAdded) {
        self.write(|st, _| {
            let cpus = st.task_cpus;
            let exec = st.executor(&e.executor_id, e.time);
            exec.host = e.executor_info.host.clone();
            exec.is_active = true;
            exec.total_cores = i64::from(e.executor_info.total_cores);
            exec.max_tasks = exec.total_cores / cpus;
            exec.executor_logs = e.executor_info.log_urls.clone();
        })
    }

    fn on_executor_removed(&mut self, e: &ExecutorRemoved) {
        self.write(|st, r| {
            let Some(exec) = st.executors.get_mut(&e.executor_id) else {
                return;
            };
            exec.is_active = false;
            exec.remove_time = Some(e.time);
            exec.remove_reason = Some(e.reason.clone());
            for rdd in st.rdds.values_mut() {
                rdd.distributions.remove(&e.executor_id);
                let mut emptied = Vec::new();
                for (p, part) in rdd.partitions.iter_mut() {
                    if let Some(i) = part.executors.iter().position(|x| *x == e.executor_id) {
                        let n = part.executors.len() as i64;
                        let (mem, disk) = (part.memory_used / n, part.disk_used / n);
                        rdd.memory_used = (rdd.memory_used - mem).max(0);
                        rdd.disk_used = (rdd.disk_used - disk).max(0);
                        part.executors.remove(i);
                        part.memory_used -= mem;
                        part.disk_used -= disk;
                        if part.executors.is_empty() {
                            emptied.push(*p);
                        }
                    }
                }
                for p in emptied {
                    rdd.partitions.remove(&p);
                }
            }
            st.cleanup_executors(r.dead_executors);
        })
    }

    fn on_executor_excluded(&mut self, e: &ExecutorExcluded) {
        self.write(|st, _| {
            if let Some(x) = st.executors.get_mut(&e.executor_id) {
                x.is_excluded = true;
            }
        })
    }

    fn on_executor_unexcluded(&mut self, e: &ExecutorUnexcluded) {
        self.write(|st, _| {
            if let Some(x) = st.executors.get_mut(&e.executor_id) {
                x.is_excluded = false;
            }
        })
    }

    fn on_block_manager_added(&mut self, e: &BlockManagerAdded) {
        self.write(|st, _| {
            let exec = st.executor(&e.block_manager_id.executor_id, e.time);
            exec.host_port = Some(format!(
                "{}:{}",
                e.block_manager_id.host, e.block_manager_id.port
            ));
            if exec.host.is_empty() {
                exec.host = e.block_manager_id.host.clone();
            }
            exec.total_on_heap = Some(e.max_mem as i64);
            exec.used_on_heap = 0;
            exec.is_active = true;
            exec.max_memory = e.max_mem as i64;
        })
    }

    fn on_job_start(&mut self, e: &JobStart) {
        self.write(|st, r| {
            let num_tasks = e
                .stage_infos
                .iter()
                .filter(|s| s.completion_time.is_none())
                .map(|s| s.num_tasks as i64)
                .sum();
            let name = e
                .stage_infos
                .iter()
                .max_by_key(|s| s.stage_id)
                .map(|s| s.name.to_string())
                .unwrap_or_default();
            let job = Job {
                id: e.job_id,
                name,
                description: e.properties.get(JOB_DESCRIPTION).cloned(),
                submission_time: (e.time > 0).then_some(e.time),
                completion_time: None,
                stage_ids: e.stage_ids(),
                job_group: e.properties.get(crate::conf::JOB_GROUP_ID).cloned(),
                status: JobStatus::Running,
                num_tasks,
                active_tasks: 0,
                completed_tasks: 0,
                failed_tasks: 0,
                killed_tasks: 0,
                skipped_tasks: 0,
                completed_indices: FxHashMap::default(),
                killed_summary: BTreeMap::new(),
                active_stages: 0,
                completed_stages: BTreeSet::new(),
                skipped_stages: BTreeSet::new(),
                failed_stages: 0,
            };
            st.jobs.insert(e.job_id, job);
            st.running_jobs.insert(e.job_id);
            for info in &e.stage_infos {
                st.stage_entry(info).job_ids.insert(e.job_id);
            }
            st.cleanup_jobs(r.jobs);
            st.cleanup_stages(r.stages);
        })
    }

    fn on_job_end(&mut self, e: &JobEnd) {
        self.write(|st, r| {
            st.running_jobs.remove(&e.job_id);
            let Some(job) = st.jobs.get_mut(&e.job_id) else {
                return;
            };
            for &id in &job.stage_ids {
                for stage in st.stages.range_mut((id, 0)..=(id, u32::MAX)).map(|(_, s)| s) {
                    if stage.status == StageStatus::Pending {
                        stage.status = StageStatus::Skipped;
                        job.skipped_stages.insert(id);
                        job.skipped_tasks += stage.info.num_tasks as i64;
                        job.active_stages -= 1;
                    }
                }
            }
            job.status = match e.job_result {
                JobResult::Succeeded => JobStatus::Succeeded,
                JobResult::Failed(_) => JobStatus::Failed,
            };
            job.completion_time = (e.time > 0).then_some(e.time);
            st.cleanup_jobs(r.jobs);
            st.cleanup_stages(r.stages);
        })
    }

    fn on_stage_submitted(&mut self, e: &StageSubmitted) {
        self.write(|st, _| {
            let job_ids: BTreeSet<usize> = st
                .running_jobs
                .iter()
                .copied()
                .filter(|j| {
                    st.jobs.get(j).is_some_and(|j| {
                        j.status == JobStatus::Running
                            && j.stage_ids.contains(&e.stage_info.stage_id)
                    })
                })
                .collect();
            let stage = st.stage_entry(&e.stage_info);
            stage.status = StageStatus::Active;
            stage.scheduling_pool = e
                .properties
                .get(crate::conf::SCHEDULER_POOL)
                .cloned()
                .unwrap_or_else(|| "default".into());
            stage.description = e.properties.get(JOB_DESCRIPTION).cloned();
            stage.job_ids = job_ids.clone();
            for j in job_ids {
                if let Some(job) = st.jobs.get_mut(&j) {
                    job.completed_stages.remove(&e.stage_info.stage_id);
                    job.active_stages += 1;
                }
            }
            for info in e.stage_info.rdd_infos.iter() {
                if info.storage_level.is_valid() {
                    st.rdds.entry(info.id).or_insert_with(|| Rdd {
                        info: info.clone(),
                        memory_used: 0,
                        disk_used: 0,
                        partitions: BTreeMap::new(),
                        distributions: BTreeMap::new(),
                    });
                }
            }
        })
    }

    fn on_task_start(&mut self, e: &TaskStart) {
        self.write(|st, r| {
            let State { stages, jobs, .. } = st;
            let key = (e.stage_id, e.stage_attempt_id);
            if let Some(stage) = stages.get_mut(&key) {
                stage.active_tasks += 1;
                let launch = e.task_info.launch_time;
                stage.first_launch_time =
                    Some(stage.first_launch_time.map_or(launch, |f| f.min(launch)));
                stage.locality_summary.add(e.task_info.locality);
                if stage.tasks.is_empty() {
                    stage
                        .tasks
                        .reserve(stage.info.num_tasks.min(r.tasks_per_stage));
                }
                stage.tasks.insert(
                    e.task_info.task_id,
                    Task {
                        info: e.task_info.clone(),
                        error_message: None,
                        metrics: None,
                    },
                );
                cleanup_tasks(stage, r.tasks_per_stage);
                for j in &stage.job_ids {
                    if let Some(job) = jobs.get_mut(j) {
                        job.active_tasks += 1;
                    }
                }
            }
            if let Some(exec) = st.executors.get_mut(&*e.task_info.executor_id) {
                exec.active_tasks += 1;
                exec.total_tasks += 1;
            }
        })
    }

    fn on_task_getting_result(&mut self, e: &TaskGettingResult) {
        // The event names the task only; its stage is one of the active ones.
        self.write(|st, _r| {
            let id = e.task_info.task_id;
            let task = st
                .stages
                .values_mut()
                .filter(|s| s.status == StageStatus::Active)
                .find_map(|s| s.tasks.get_mut(id));
            if let Some(task) = task {
                task.info.getting_result_time = e.task_info.getting_result_time;
            }
        })
    }

    fn on_task_end(&mut self, e: &TaskEnd) {
        self.write(|st, _r| {
            let State { stages, jobs, .. } = st;
            let key = (e.stage_id, e.stage_attempt_id);
            let resubmitted = e.reason == TaskEndReason::Resubmitted;
            let (completed, failed, killed) = match &e.reason {
                TaskEndReason::Success => (1, 0, 0),
                TaskEndReason::Failed(crate::task::TaskEndReason::TaskKilled { .. }) => (0, 0, 1),
                _ => (0, 1, 0),
            };
            let killed_reason = match &e.reason {
                TaskEndReason::Failed(crate::task::TaskEndReason::TaskKilled { reason }) => {
                    Some(reason.clone())
                }
                _ => None,
            };
            // The metrics this end adds (a heartbeat may have added part of them already).
            let mut delta = None;
            let info = &e.task_info;
            let duration = info.duration_at(info.finish_time) as i64;
            if let Some(stage) = stages.get_mut(&key) {
                let task = stage.tasks.get_mut(info.task_id);
                // A resubmitted attempt had ended already: its first end counted its metrics.
                let was_running = task.as_ref().is_some_and(|t| t.info.running());
                if was_running || !resubmitted {
                    if let Some(task) = task {
                        // What an end changes; the rest (and the shared names) is the start's.
                        task.info.getting_result_time = info.getting_result_time;
                        task.info.finish_time = info.finish_time;
                        task.info.failed = info.failed;
                        task.info.killed = info.killed;
                        task.error_message = e.reason.error_message();
                        if let Some(m) = &e.task_metrics {
                            delta = Some(subtract(m, task.metrics.as_ref()));
                            task.metrics = Some(m.clone());
                        }
                    } else if let Some(m) = &e.task_metrics {
                        delta = Some(m.clone());
                    }
                }
                if let Some(d) = &delta {
                    stage.metrics.merge(d);
                }
                stage.active_tasks -= 1;
                stage.completed_tasks += completed;
                if completed > 0 {
                    stage.completed_indices.insert(info.index);
                }
                stage.failed_tasks += failed;
                stage.killed_tasks += killed;
                if let Some(k) = &killed_reason {
                    *stage.killed_summary.entry(k.clone()).or_default() += 1;
                }
                let es = stage
                    .executor_summaries
                    .entry(info.executor_id.clone())
                    .or_default();
                es.task_time += duration;
                es.succeeded_tasks += completed;
                es.failed_tasks += failed;
                es.killed_tasks += killed;
                if let Some(d) = &delta {
                    es.metrics.merge(d);
                }
                for j in &stage.job_ids {
                    if let Some(job) = jobs.get_mut(j) {
                        job.active_tasks -= 1;
                        job.completed_tasks += completed;
                        if completed > 0 {
                            job.completed_indices
                                .entry(e.stage_id)
                                .or_default()
                                .insert(info.index);
                        }
                        job.failed_tasks += failed;
                        job.killed_tasks += killed;
                        if let Some(k) = &killed_reason {
                            *job.killed_summary.entry(k.clone()).or_default() += 1;
                        }
                    }
                }
            }
            if let Some(exec) = st.executors.get_mut(&*info.executor_id) {
                exec.active_tasks -= 1;
                exec.completed_tasks += completed;
                exec.failed_tasks += failed;
                exec.total_duration += duration;
                // Spark keeps the first attempt's metrics for a resubmitted task.
                if !resubmitted {
                    if let Some(m) = &e.task_metrics {
                        exec.total_input_bytes += m.input_bytes_read as i64;
                        exec.total_shuffle_read +=
                            (m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read) as i64;
                        exec.total_shuffle_write += m.shuffle_bytes_written as i64;
                    }
                }
            }
        })
    }

    fn on_stage_completed(&mut self, e: &StageCompleted) {
        self.write(|st, r| {
            let info = &e.stage_info;
            let Some(stage) = st.stages.get_mut(&(info.stage_id, info.attempt_id)) else {
                return;
            };
            stage.info = info.clone();
            stage.status = if info.failure_reason.is_some() {
                StageStatus::Failed
            } else if info.submission_time.is_some() {
                StageStatus::Complete
            } else {
                StageStatus::Skipped
            };
            let status = stage.status;
            for j in stage.job_ids.clone() {
                if let Some(job) = st.jobs.get_mut(&j) {
                    match status {
                        StageStatus::Complete => {
                            job.completed_stages.insert(info.stage_id);
                        }
                        StageStatus::Skipped => {
                            job.skipped_stages.insert(info.stage_id);
                            job.skipped_tasks += info.num_tasks as i64;
                        }
                        _ => job.failed_stages += 1,
                    }
                    job.active_stages -= 1;
                }
            }
            for exec in st.executors.values_mut() {
                exec.excluded_in_stages.remove(&info.stage_id);
            }
            st.cleanup_stages(r.stages);
        })
    }

    fn on_unpersist_rdd(&mut self, e: &UnpersistRdd) {
        self.write(|st, _| {
            let Some(rdd) = st.rdds.remove(&e.rdd_id) else {
                return;
            };
            for part in rdd.partitions.values() {
                for x in &part.executors {
                    if let Some(exec) = st.executors.get_mut(x) {
                        exec.rdd_blocks -= 1;
                    }
                }
            }
            for (x, dist) in &rdd.distributions {
                if let Some(exec) = st.executors.get_mut(x) {
                    if exec.total_on_heap.is_some() {
                        exec.used_on_heap = (exec.used_on_heap - dist.on_heap_used).max(0);
                    }
                    exec.memory_used = (exec.memory_used - dist.memory_used).max(0);
                    exec.disk_used = (exec.disk_used - dist.disk_used).max(0);
                }
            }
        })
    }

    fn on_executor_metrics_update(&mut self, e: &ExecutorMetricsUpdate) {
        self.write(|st, _| {
            if let Some(m) = e.executor_updates {
                if let Some(exec) = st.executors.get_mut(&e.exec_id) {
                    exec.source = Some(m);
                }
            }
            for (tid, stage_id, attempt, m) in &e.accum_updates {
                let Some(stage) = st.stages.get_mut(&(*stage_id, *attempt)) else {
                    continue;
                };
                // A heartbeat sent before a task's end can arrive after it.
                let Some(task) = stage.tasks.get_mut(*tid).filter(|t| t.info.running()) else {
                    continue;
                };
                let delta = subtract(m, task.metrics.as_ref());
                task.metrics = Some(m.clone());
                stage.metrics.merge(&delta);
                stage
                    .executor_summaries
                    .entry(Arc::from(e.exec_id.as_str()))
                    .or_default()
                    .metrics
                    .merge(&delta);
            }
        })
    }

    fn on_block_updated(&mut self, e: &BlockUpdated) {
        self.write(|st, _| update_rdd_block(st, &e.block_updated_info))
    }
}

/// Spark's `updateRDDBlock`: a block's move changes its executor's and its RDD's accounting.
fn update_rdd_block(st: &mut State, b: &BlockUpdatedInfo) {
    let executor_id = &b.block_manager_id.executor_id;
    let level = b.storage_level;
    let disk_delta = b.disk_size as i64 * if level.use_disk { 1 } else { -1 };
    let mem_delta = b.mem_size as i64 * if level.use_memory { 1 } else { -1 };
    let has_exec = st.executors.contains_key(executor_id);
    if let Some(exec) = st.executors.get_mut(executor_id) {
        if exec.total_on_heap.is_some() {
            exec.used_on_heap = (exec.used_on_heap + mem_delta).max(0);
        }
        exec.memory_used = (exec.memory_used + mem_delta).max(0);
        exec.disk_used = (exec.disk_used + disk_delta).max(0);
    }
    let mut blocks_delta = 0;
    let partition = match b.block_id {
        crate::storage::BlockId::Rdd { partition, .. } => partition,
    };
    if let Some(rdd) = st.rdds.get_mut(&b.block_id.rdd_id()) {
        let part = rdd.partitions.entry(partition).or_default();
        if level.is_valid() {
            if !part.executors.contains(executor_id) {
                blocks_delta = 1;
                part.executors.push(executor_id.clone());
            }
        } else if let Some(i) = part.executors.iter().position(|x| x == executor_id) {
            blocks_delta = -1;
            part.executors.remove(i);
        }
        if part.executors.is_empty() {
            rdd.partitions.remove(&partition);
        } else {
            part.memory_used = (part.memory_used + mem_delta).max(0);
            part.disk_used = (part.disk_used + disk_delta).max(0);
        }
        if has_exec {
            let rdd_blocks = st.executors.get(executor_id).map_or(0, |x| x.rdd_blocks);
            if rdd_blocks + blocks_delta > 0 || level.is_valid() {
                let dist = rdd.distributions.entry(executor_id.clone()).or_default();
                dist.memory_used = (dist.memory_used + mem_delta).max(0);
                dist.disk_used = (dist.disk_used + disk_delta).max(0);
                dist.on_heap_used = (dist.on_heap_used + mem_delta).max(0);
                if dist.memory_used == 0
                    && dist.disk_used == 0
                    && !rdd
                        .partitions
                        .values()
                        .any(|p| p.executors.contains(executor_id))
                {
                    rdd.distributions.remove(executor_id);
                }
            } else {
                rdd.distributions.remove(executor_id);
            }
        }
        rdd.memory_used = (rdd.memory_used + mem_delta).max(0);
        rdd.disk_used = (rdd.disk_used + disk_delta).max(0);
    }
    if let Some(exec) = st.executors.get_mut(executor_id) {
        exec.rdd_blocks += blocks_delta;
    }
}

/// `new - old`, field by field (old: what a heartbeat already added).
fn subtract(new: &TaskMetricsSnapshot, old: Option<&TaskMetricsSnapshot>) -> TaskMetricsSnapshot {
    let Some(old) = old else { return new.clone() };
    let mut d = new.clone();
    macro_rules! sub {
        ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
            $(d.$name = new.$name.saturating_sub(old.$name);)*
        };
    }
    ember_common::with_task_metric_fields!(sub);
    d
}

/// The local property holding a job's description (Spark's `spark.job.description`).
pub const JOB_DESCRIPTION: &str = "ember.job.description";

/// Adds `n` to a counter kept as i64 (metrics are u64).
#[allow(dead_code)]
fn add_u64(a: &mut i64, n: u64) {
    add(a, n)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn the_locality_summary_lists_the_levels_used_by_name() {
        let mut summary = LocalitySummary::default();
        assert_eq!(summary.iter().count(), 0);
        for level in [
            TaskLocality::RackLocal,
            TaskLocality::ProcessLocal,
            TaskLocality::NodeLocal,
            TaskLocality::ProcessLocal,
            TaskLocality::Any,
        ] {
            summary.add(level);
        }
        let listed: Vec<(&str, i64)> = summary.iter().collect();
        assert_eq!(
            listed,
            [
                ("ANY", 1),
                ("NODE_LOCAL", 1),
                ("PROCESS_LOCAL", 2),
                ("RACK_LOCAL", 1)
            ]
        );
        let mut names: Vec<&str> = LocalitySummary::BY_NAME
            .into_iter()
            .map(locality_name)
            .collect();
        let printed = names.clone();
        names.sort_unstable();
        assert_eq!(printed, names, "a map keyed by name would list them so");
    }

    /// A task attempt on executor "1", running while `finish_time` is 0.
    pub(in crate::status) fn task_info(task_id: TaskId, finish_time: u64) -> TaskInfo {
        TaskInfo {
            task_id,
            index: 0,
            attempt: 0,
            partition_id: 0,
            launch_time: 10,
            executor_id: "1".into(),
            host: "h".into(),
            locality: TaskLocality::ProcessLocal,
            speculative: false,
            getting_result_time: 0,
            finish_time,
            failed: false,
            killed: false,
        }
    }

    fn run_time(ms: u64) -> TaskMetricsSnapshot {
        TaskMetricsSnapshot {
            executor_run_time_ms: ms,
            ..Default::default()
        }
    }

    /// The store keeps no map of running tasks: a heartbeat finds its task by the stage attempt
    /// it names and counts only while the task's record says it runs; the end adds the rest.
    #[test]
    fn heartbeats_count_while_a_task_runs_and_its_end_adds_the_rest() {
        let app = App {
            id: "app".into(),
            name: "test".into(),
            user: "u".into(),
            start_time: 1,
            end_time: None,
        };
        let store = AppStatusStore::new(Retention::default(), app);
        let mut listener = store.listener();
        let stage_info = StageInfo {
            stage_id: 1,
            attempt_id: 0,
            name: "count".into(),
            num_tasks: 1,
            rdd_infos: Arc::default(),
            parent_ids: Arc::default(),
            details: "count".into(),
            submission_time: Some(5),
            completion_time: None,
            failure_reason: None,
            shuffle_dep_id: None,
        };
        listener.on_stage_submitted(&StageSubmitted {
            stage_info,
            properties: Arc::default(),
        });
        listener.on_task_start(&TaskStart {
            stage_id: 1,
            stage_attempt_id: 0,
            task_info: task_info(7, 0),
        });
        let beat = |ms| ExecutorMetricsUpdate {
            exec_id: "1".into(),
            accum_updates: vec![(7, 1, 0, run_time(ms))],
            executor_updates: None,
        };
        listener.on_executor_metrics_update(&beat(30));
        let seen = |f: &dyn Fn(&Stage)| store.read(|st| f(&st.stages[&(1, 0)]));
        seen(&|s| {
            assert_eq!(s.metrics.executor_run_time_ms, 30);
            let task = s.tasks.values().next().expect("the task");
            assert_eq!(task.metrics.as_ref().map(|m| m.executor_run_time_ms), Some(30));
        });
        let mut fetched = task_info(7, 0);
        fetched.getting_result_time = 90;
        listener.on_task_getting_result(&TaskGettingResult {
            task_info: fetched.clone(),
        });
        fetched.finish_time = 100;
        listener.on_task_end(&TaskEnd {
            stage_id: 1,
            stage_attempt_id: 0,
            task_type: TaskType::ResultTask,
            reason: TaskEndReason::Success,
            task_info: fetched,
            task_metrics: Some(run_time(50)),
        });
        // Sent before the end, delivered after it: not counted again.
        listener.on_executor_metrics_update(&beat(70));
        seen(&|s| {
            assert_eq!(s.metrics.executor_run_time_ms, 50, "30 by heartbeat, 20 at the end");
            assert_eq!(s.executor_summaries["1"].metrics.executor_run_time_ms, 50);
            assert_eq!((s.active_tasks, s.completed_tasks), (0, 1));
            let task = s.tasks.values().next().expect("the task");
            assert_eq!(task.info.finish_time, 100);
            assert_eq!(task.info.getting_result_time, 90);
            assert_eq!(&*task.info.executor_id, "1");
            assert_eq!(task.metrics.as_ref().map(|m| m.executor_run_time_ms), Some(50));
        });
    }
}
