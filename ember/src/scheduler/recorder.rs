//! What the event loop tells the listener bus (the `listenerBus.post` calls of Spark's
//! `DAGScheduler` and `TaskSchedulerImpl`): the loop calls one method at each point where
//! something happened, and this turns the schedulers' state into Spark's event data.
//!
//! It keeps only what is live — running tasks and submitted stage attempts — so its memory
//! follows the running work, not the application's history.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use ember_scheduler::dag_scheduler::DagScheduler;
use ember_scheduler::rdd::Dependency;
use ember_scheduler::stage::{Stage, StageKind};
use ember_scheduler::task_scheduler::TaskSchedulerImpl;
use ember_scheduler::task_set::TaskSet;

use crate::listener::events::*;
use crate::listener::ListenerBus;
use crate::task::{DirectTaskResult, JobId, StageId, TaskId};

/// Gives the name set with `set_name` of an RDD, if any.
pub type RddNames = Box<dyn Fn(usize) -> Option<String> + Send>;

/// The parts of a [`StageInfo`] that do not change during an attempt.
#[derive(Clone)]
struct StageShape {
    name: Arc<str>,
    rdd_infos: Arc<[RddInfo]>,
    parent_ids: Arc<[StageId]>,
}

/// What the recorder keeps of a running job whose start it posted with details.
struct PostedJob {
    /// Its properties, for its stages' submissions.
    properties: Arc<Properties>,
    /// The stage attempts its start described (their shapes are dropped with the job).
    shapes: Vec<(StageId, u32)>,
}

/// The event loop's side of the listener bus.
pub struct Recorder {
    bus: Arc<ListenerBus>,
    rdd_names: RddNames,
    /// Attempts launched and not ended, with their type and stage attempt.
    tasks: FxHashMap<TaskId, (TaskInfo, TaskType, (StageId, u32))>,
    /// Stage attempts submitted and not completed.
    stages: FxHashMap<(StageId, u32), StageInfo>,
    /// What running jobs' stage attempts are (name, RDDs, parents), built at the job's start
    /// and shared by its stages' events; dropped when the attempt completes or the job ends.
    shapes: FxHashMap<(StageId, u32), StageShape>,
    /// Running jobs, as their starts were posted.
    jobs: FxHashMap<JobId, PostedJob>,
    /// Executors excluded for the application, as last posted.
    excluded: Vec<String>,
    /// Each live executor's id and host, shared by the events of its tasks.
    names: FxHashMap<String, (Arc<str>, Arc<str>)>,
}

impl Recorder {
    /// A recorder posting to `bus`; `rdd_names` gives user-set RDD names.
    pub fn new(bus: Arc<ListenerBus>, rdd_names: RddNames) -> Self {
        Recorder {
            bus,
            rdd_names,
            tasks: FxHashMap::default(),
            stages: FxHashMap::default(),
            shapes: FxHashMap::default(),
            jobs: FxHashMap::default(),
            excluded: Vec::new(),
            names: FxHashMap::default(),
        }
    }

    /// The shared id and host of an executor: two copies of short strings per task event
    /// were, with their frees on the listeners' threads, a good part of what the events cost
    /// the scheduler's thread.
    fn names(&mut self, executor_id: &str, host: &str) -> (Arc<str>, Arc<str>) {
        match self.names.get(executor_id) {
            Some((id, h)) if &**h == host => (id.clone(), h.clone()),
            _ => {
                let names: (Arc<str>, Arc<str>) = (executor_id.into(), host.into());
                self.names.insert(executor_id.to_string(), names.clone());
                names
            }
        }
    }

    /// The one way out to the bus.
    fn post(&self, event: ListenerEvent) {
        self.bus.post(event);
    }

    /// Epoch milliseconds of a time on the scheduler's clock.
    fn epoch(&self, clock_ms: u64) -> u64 {
        self.bus.epoch_ms(clock_ms)
    }

    fn now(&self) -> u64 {
        self.bus.time_ms()
    }

    /// What a stage attempt is: its RDDs (its RDD and narrow ancestors), parents and name;
    /// built once per attempt while a job that runs it is running.
    fn stage_info(&mut self, stage: &Stage, attempt_id: u32, num_tasks: usize) -> StageInfo {
        let key = (stage.id, attempt_id);
        let shape = match self.shapes.get(&key) {
            Some(shape) => shape.clone(),
            None => self.stage_shape(stage),
        };
        StageInfo {
            stage_id: stage.id,
            attempt_id,
            name: shape.name.clone(),
            num_tasks,
            rdd_infos: shape.rdd_infos,
            parent_ids: shape.parent_ids,
            details: shape.name,
            submission_time: None,
            completion_time: None,
            failure_reason: None,
            shuffle_dep_id: stage.shuffle_id(),
        }
    }

    fn stage_shape(&self, stage: &Stage) -> StageShape {
        let mut rdd_infos = Vec::new();
        let mut seen = rustc_hash::FxHashSet::default();
        let mut todo = vec![stage.rdd.clone()];
        while let Some(rdd) = todo.pop() {
            if !seen.insert(rdd.id()) {
                continue;
            }
            let mut parent_ids = Vec::new();
            for dep in rdd.dependencies() {
                match dep {
                    Dependency::Narrow { rdd: parent, .. } => {
                        parent_ids.push(parent.id());
                        todo.push(parent);
                    }
                    Dependency::Shuffle(s) => parent_ids.push(s.rdd().id()),
                }
            }
            rdd_infos.push(RddInfo {
                id: rdd.id(),
                name: (self.rdd_names)(rdd.id()).unwrap_or_else(|| rdd.name().to_string()),
                num_partitions: rdd.num_partitions(),
                storage_level: rdd.storage_level(),
                parent_ids,
                callsite: String::new(),
            });
        }
        StageShape {
            name: stage.name.as_str().into(),
            rdd_infos: rdd_infos.into(),
            parent_ids: stage.parents.as_slice().into(),
        }
    }

    /// Whether anyone reads stage details and job properties: only listeners with a queue do.
    /// Without one (the UI off, no event log, no user listener) the events carry counts only,
    /// which spares every job the walk over its RDDs and the copies of its properties.
    pub fn wants_details(&self) -> bool {
        self.bus.has_queues()
    }

    /// A job was submitted: its stages (skipped ones included), with its properties (`None`
    /// when [`Self::wants_details`] said no).
    pub fn job_started(
        &mut self,
        dag: &DagScheduler,
        job_id: JobId,
        properties: Option<Properties>,
        clock_ms: u64,
    ) {
        let Some(properties) = properties.filter(|_| self.wants_details()) else {
            self.post(ListenerEvent::JobStart(JobStart {
                job_id,
                time: self.epoch(clock_ms),
                stage_infos: Vec::new(),
                properties: Arc::default(),
            }));
            return;
        };
        let stages = dag.job_stages(job_id);
        let mut stage_infos = Vec::with_capacity(stages.len());
        let mut described = Vec::with_capacity(stages.len());
        for s in stages {
            let all = match &s.kind {
                StageKind::ShuffleMap { .. } => s.rdd.num_partitions(),
                StageKind::Result { partitions, .. } => partitions.len(),
            };
            let key = (s.id, s.latest_attempt());
            if !self.shapes.contains_key(&key) {
                let shape = self.stage_shape(s);
                self.shapes.insert(key, shape);
            }
            described.push(key);
            stage_infos.push(self.stage_info(s, key.1, all));
        }
        let properties = Arc::new(properties);
        self.jobs.insert(
            job_id,
            PostedJob {
                properties: properties.clone(),
                shapes: described,
            },
        );
        self.post(ListenerEvent::JobStart(JobStart {
            job_id,
            time: self.epoch(clock_ms),
            stage_infos,
            properties,
        }));
    }

    /// A job ended.
    pub fn job_ended(&mut self, job_id: JobId, result: JobResult) {
        // A stage another running job shares is described again if that job submits it.
        if let Some(job) = self.jobs.remove(&job_id) {
            for key in job.shapes {
                self.shapes.remove(&key);
            }
        }
        self.post(ListenerEvent::JobEnd(JobEnd {
            job_id,
            time: self.now(),
            job_result: result,
        }));
    }

    /// A task set is about to be handed to the task scheduler.
    pub fn stage_submitted(&mut self, dag: &DagScheduler, ts: &TaskSet, clock_ms: u64) {
        if !self.wants_details() {
            return;
        }
        let Some(stage) = dag.stage(ts.stage_id) else {
            return;
        };
        let mut info = self.stage_info(stage, ts.stage_attempt_id, ts.tasks.len());
        info.submission_time = Some(self.epoch(clock_ms));
        let properties = stage
            .job_ids
            .iter()
            .find_map(|j| self.jobs.get(j))
            .map(|j| j.properties.clone())
            .unwrap_or_default();
        self.stages
            .insert((ts.stage_id, ts.stage_attempt_id), info.clone());
        self.post(ListenerEvent::StageSubmitted(StageSubmitted {
            stage_info: info,
            properties,
        }));
    }

    /// A stage attempt is over.
    pub fn stage_completed(
        &mut self,
        dag: &DagScheduler,
        stage_id: StageId,
        attempt: u32,
        failure_reason: Option<String>,
    ) {
        self.shapes.remove(&(stage_id, attempt));
        let info = match self.stages.remove(&(stage_id, attempt)) {
            Some(info) => info,
            // Nobody listened when it was submitted, and nobody needs its details now.
            None if !self.wants_details() => return,
            None => {
                // An attempt with no task to run completes without a task set: it was submitted
                // all the same (as in Spark, which posts StageSubmitted first).
                let Some(stage) = dag.stage(stage_id) else {
                    return;
                };
                let mut info = self.stage_info(stage, attempt, 0);
                info.submission_time = Some(self.now());
                self.post(ListenerEvent::StageSubmitted(StageSubmitted {
                    stage_info: info.clone(),
                    properties: Arc::default(),
                }));
                info
            }
        };
        let stage_info = StageInfo {
            completion_time: Some(self.now()),
            failure_reason,
            ..info
        };
        self.post(ListenerEvent::StageCompleted(StageCompleted { stage_info }));
    }

    /// The task scheduler launched an attempt.
    pub fn task_started(
        &mut self,
        tasks: &TaskSchedulerImpl,
        stage_id: StageId,
        stage_attempt_id: u32,
        task_id: TaskId,
        partition: usize,
    ) {
        let Some(tsm) = tasks.task_set_manager(stage_id, stage_attempt_id) else {
            return;
        };
        let Some(t) = tsm.task_info(task_id) else {
            return;
        };
        let task_type = if tsm.task_set().shuffle_id.is_some() {
            TaskType::ShuffleMapTask
        } else {
            TaskType::ResultTask
        };
        let (executor_id, host) = self.names(&t.executor_id, &t.host);
        let info = TaskInfo {
            task_id,
            index: t.index,
            attempt: t.attempt_number,
            partition_id: partition,
            launch_time: self.epoch(t.launch_time_ms),
            executor_id,
            host,
            locality: t.locality,
            speculative: t.speculative,
            getting_result_time: 0,
            finish_time: 0,
            failed: false,
            killed: false,
        };
        self.tasks.insert(
            task_id,
            (info.clone(), task_type, (stage_id, stage_attempt_id)),
        );
        self.post(ListenerEvent::TaskStart(TaskStart {
            stage_id,
            stage_attempt_id,
            task_info: info,
        }));
    }

    /// The driver started fetching an attempt's result (Spark's `TaskInfo.markGettingResult`
    /// and `SparkListenerTaskGettingResult`); its end event carries the time too.
    pub fn task_getting_result(&mut self, task_id: TaskId) {
        let now = self.now();
        let Some((info, _, _)) = self.tasks.get_mut(&task_id) else {
            return;
        };
        info.getting_result_time = now.max(info.launch_time).max(1);
        let task_info = info.clone();
        self.post(ListenerEvent::TaskGettingResult(TaskGettingResult { task_info }));
    }

    /// An attempt ended, as the task scheduler decided.
    pub fn task_ended(
        &mut self,
        tasks: &TaskSchedulerImpl,
        stage_id: StageId,
        stage_attempt_id: u32,
        task_id: TaskId,
        result: &Result<DirectTaskResult, crate::task::TaskEndReason>,
    ) {
        let (info, task_type, reason, task_metrics) = match self.tasks.remove(&task_id) {
            Some((mut info, task_type, _)) => {
                info.finish_time = self.now().max(info.launch_time);
                let (reason, metrics) = match result {
                    Ok(r) => (TaskEndReason::Success, Some(r.metrics.clone())),
                    Err(e) => {
                        info.killed = matches!(e, crate::task::TaskEndReason::TaskKilled { .. });
                        info.failed = !info.killed;
                        (TaskEndReason::Failed(e.clone()), None)
                    }
                };
                (info, task_type, reason, metrics)
            }
            None => {
                // An attempt that already ended ends again: it had succeeded, and its map
                // output is lost with its executor (Spark's `Resubmitted`).
                let Some(tsm) = tasks.task_set_manager(stage_id, stage_attempt_id) else {
                    return;
                };
                let Some(t) = tsm.task_info(task_id) else {
                    return;
                };
                let (executor_id, host) = self.names(&t.executor_id, &t.host);
                let info = TaskInfo {
                    task_id,
                    index: t.index,
                    attempt: t.attempt_number,
                    partition_id: tsm
                        .task_set()
                        .tasks
                        .get(t.index)
                        .map_or(t.index, |s| s.partition),
                    launch_time: self.epoch(t.launch_time_ms),
                    executor_id,
                    host,
                    locality: t.locality,
                    speculative: t.speculative,
                    getting_result_time: 0,
                    finish_time: t.finish_time_ms.map_or(0, |f| self.epoch(f)),
                    failed: false,
                    killed: false,
                };
                (
                    info,
                    TaskType::ShuffleMapTask,
                    TaskEndReason::Resubmitted,
                    None,
                )
            }
        };
        self.post(ListenerEvent::TaskEnd(TaskEnd {
            stage_id,
            stage_attempt_id,
            task_type,
            reason,
            task_info: info,
            task_metrics,
        }));
    }

    /// An executor registered.
    pub fn executor_added(&mut self, executor_id: &str, host: &str, cores: u32) {
        let executor_info = ExecutorInfo {
            host: host.to_string(),
            total_cores: cores,
            log_urls: Default::default(),
        };
        self.post(ListenerEvent::ExecutorAdded(ExecutorAdded {
            time: self.now(),
            executor_id: executor_id.to_string(),
            executor_info,
        }));
    }

    /// An executor is gone.
    pub fn executor_removed(&mut self, executor_id: &str, reason: &str) {
        self.names.remove(executor_id);
        self.post(ListenerEvent::ExecutorRemoved(ExecutorRemoved {
            time: self.now(),
            executor_id: executor_id.to_string(),
            reason: reason.to_string(),
        }));
    }

    /// A heartbeat: the executor's running tasks' metrics, and its metrics source when the
    /// driver knows it.
    pub fn heartbeat(
        &mut self,
        executor_id: &str,
        task_metrics: Vec<(TaskId, crate::task::TaskMetricsSnapshot)>,
        executor_metrics: Option<crate::metrics::ExecutorSourceMetrics>,
    ) {
        let accum_updates = task_metrics
            .into_iter()
            .map(|(tid, m)| {
                let (stage, attempt) = self.tasks.get(&tid).map_or((0, 0), |t| t.2);
                (tid, stage, attempt, m)
            })
            .collect();
        self.post(ListenerEvent::ExecutorMetricsUpdate(
            ExecutorMetricsUpdate {
                exec_id: executor_id.to_string(),
                accum_updates,
                executor_updates: executor_metrics,
            },
        ));
    }

    /// `unpersist` was called.
    pub fn unpersist_rdd(&mut self, rdd_id: usize) {
        self.post(ListenerEvent::UnpersistRdd(UnpersistRdd { rdd_id }));
    }

    /// The executors excluded for the application now; posts what changed.
    pub fn exclusions(&mut self, excluded: Vec<String>) {
        if excluded == self.excluded {
            return;
        }
        let now = self.now();
        for e in excluded.iter().filter(|e| !self.excluded.contains(e)) {
            self.post(ListenerEvent::ExecutorExcluded(ExecutorExcluded {
                time: now,
                executor_id: e.clone(),
            }));
        }
        for e in self.excluded.iter().filter(|e| !excluded.contains(e)) {
            self.post(ListenerEvent::ExecutorUnexcluded(ExecutorUnexcluded {
                time: now,
                executor_id: e.clone(),
            }));
        }
        self.excluded = excluded;
    }
}
