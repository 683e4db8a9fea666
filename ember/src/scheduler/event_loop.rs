//! The driver's scheduler thread (Spark's `DAGSchedulerEventProcessLoop` together with the
//! task scheduler's offer rounds and its speculation timer). It alone owns the DAG scheduler,
//! the task scheduler and the backend, so none of their state is shared or locked; everything
//! reaches it as a [`DriverEvent`] on one channel, and it wakes up on its own when the task
//! scheduler has something due (delay scheduling, a speculation check, an exclusion ending).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustc_hash::FxHashMap;
use tracing::{debug, error};

use ember_scheduler::clock::Clock;
use ember_scheduler::dag_scheduler::{DagAction, DagScheduler, JobEvent, JobSubmission};
use ember_scheduler::heartbeat_receiver::HeartbeatReceiver;
use ember_scheduler::task_scheduler::TaskSchedulerImpl;
use ember_scheduler::task_set::SchedulerEvent;

use super::backend::{LaunchFailure, SchedulerBackend};
use super::recorder::Recorder;
pub use super::status::{AppStatus, StatusCell};
use crate::accumulator::AccumulatorRegistry;
use crate::listener::events::{JobResult, Properties};
use crate::storage::BlockManagerMaster;
use crate::task::{JobId, StatusUpdate, TaskDescription, TaskKind};

/// Everything that can happen to the driver's scheduler.
pub enum DriverEvent {
    /// An action submitted a job; what becomes of it is sent on `listener`, its id on
    /// `id_reply`.
    JobSubmitted { job: JobSubmission, listener: Sender<JobEvent>, id_reply: Option<Sender<JobId>> },
    /// An executor reported on a task.
    StatusUpdate(StatusUpdate),
    /// Cancel one job.
    CancelJob { job_id: JobId, reason: String },
    /// Cancel every job of a group.
    CancelJobGroup { group: String },
    /// An executor joined with `cores` cores.
    ExecutorAdded { executor_id: String, host: String, cores: u32 },
    /// An executor is gone.
    ExecutorLost { executor_id: String, reason: String },
    /// An executor is alive; the metrics of its running tasks. `reply` learns whether the
    /// driver knows the executor.
    Heartbeat {
        executor_id: String,
        task_metrics: Vec<(crate::task::TaskId, crate::task::TaskMetricsSnapshot)>,
        executor_metrics: Option<crate::executor::ExecutorSourceMetrics>,
        reply: Option<crossbeam_channel::Sender<bool>>,
    },
    /// Drop the cached partitions of an RDD everywhere.
    RemoveRdd { rdd_id: usize },
    /// Drop the executors' copies of a broadcast.
    RemoveBroadcast { id: u64 },
    /// Stop: cancel all jobs, stop the executors, end the loop.
    Stop,
}

/// The driver-side services the loop updates for the scheduler core: the application's
/// accumulators (merged with the updates the DAG scheduler hands back) and the registry of
/// cached blocks (which forgets a lost executor's blocks).
pub struct DriverServices {
    pub accumulators: Arc<AccumulatorRegistry>,
    pub blocks: Arc<BlockManagerMaster>,
}

/// The loop's state.
pub struct EventLoop {
    dag: DagScheduler,
    tasks: TaskSchedulerImpl,
    backend: Box<dyn SchedulerBackend>,
    clock: Arc<dyn Clock>,
    /// Tells the listener bus what happens (status, UI, event log, progress bar, users').
    recorder: Recorder,
    services: DriverServices,
    /// Where each running job's events go (the caller blocked in `run_job`).
    listeners: FxHashMap<JobId, Sender<JobEvent>>,
    /// Watches executor liveness (cluster masters; the embedded executor cannot go silent).
    heartbeats: Option<HeartbeatReceiver>,
}

impl EventLoop {
    /// Declares executors silent for longer than `timeout_ms` lost (cluster masters).
    pub fn with_heartbeat_timeout(mut self, timeout_ms: u64) -> Self {
        self.heartbeats = Some(HeartbeatReceiver::new(timeout_ms));
        self
    }

    /// Puts the parts together.
    pub fn new(
        dag: DagScheduler,
        tasks: TaskSchedulerImpl,
        backend: Box<dyn SchedulerBackend>,
        clock: Arc<dyn Clock>,
        recorder: Recorder,
        services: DriverServices,
    ) -> Self {
        EventLoop { dag, tasks, backend, clock, recorder, services, listeners: FxHashMap::default(), heartbeats: None }
    }

    /// Runs until `Stop` or until every sender is gone.
    pub fn run(mut self, events: Receiver<DriverEvent>) {
        loop {
            let now = self.clock.now_ms();
            let mut timeout = self.tasks.next_wakeup_ms().map(|t| t.saturating_sub(now)).unwrap_or(1000);
            if let Some(t) = self.dag.next_wakeup_ms() {
                timeout = timeout.min(t.saturating_sub(now));
            }
            if self.dag.active_jobs() > 0 {
                timeout = timeout.min(200);
            }
            if let Some(deadline) = self.heartbeats.as_ref().and_then(|h| h.next_deadline_ms()) {
                timeout = timeout.min(deadline.saturating_sub(now));
            }
            let first = match events.recv_timeout(Duration::from_millis(timeout.max(1))) {
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut stop = false;
            if let Some(ev) = first {
                stop = !self.handle(ev);
                while !stop {
                    match events.try_recv() {
                        Ok(ev) => stop = !self.handle(ev),
                        Err(_) => break,
                    }
                }
            }
            if stop {
                break;
            }
            self.expire_silent_executors();
            let actions = self.dag.resubmit_failed_stages(self.clock.now_ms());
            self.apply(actions);
            if self.dag.active_jobs() > 0 {
                self.fail_if_no_executors_can_run();
            }
            self.check_speculation();
            self.make_offers();
            self.sync_exclusions();
        }
        let actions = self.dag.cancel_all("the Ember context was stopped");
        self.apply(actions);
        self.backend.stop();
        debug!("scheduler event loop stopped");
    }

    /// Handles one event; false means stop.
    fn handle(&mut self, ev: DriverEvent) -> bool {
        let now = self.clock.now_ms();
        match ev {
            DriverEvent::JobSubmitted { job, listener, id_reply } => {
                let properties = job_properties(&job);
                let (id, actions) = self.dag.submit_job(job, now);
                self.recorder.job_started(&self.dag, id, properties, now);
                self.listeners.insert(id, listener);
                if let Some(r) = id_reply {
                    let _ = r.send(id);
                }
                self.apply(actions);
                self.fail_if_no_executors_can_run();
            }
            DriverEvent::StatusUpdate(update) => {
                self.backend.status_update(&update);
                // Counted from the task scheduler's verdict (TaskEnded), not from the report: a
                // late result of a speculation loser is a kill, and repeated reports are ignored.
                let events = self.tasks.status_update(update);
                self.scheduler_events(events);
            }
            DriverEvent::CancelJob { job_id, reason } => {
                let actions = self.dag.cancel_job(job_id, &reason);
                self.apply(actions);
            }
            DriverEvent::CancelJobGroup { group } => {
                let actions = self.dag.cancel_job_group(&group);
                self.apply(actions);
            }
            DriverEvent::ExecutorAdded { executor_id, host, cores } => {
                if let Some(h) = &mut self.heartbeats {
                    h.executor_added(&executor_id, now);
                }
                self.recorder.executor_added(&executor_id, &host, cores);
                self.backend.executor_added(&executor_id);
                self.tasks.executor_added(&executor_id, &host)
            }
            DriverEvent::ExecutorLost { executor_id, reason } => self.lose_executor(&executor_id, &reason),
            DriverEvent::Heartbeat { executor_id, task_metrics, executor_metrics, reply } => {
                let known = self.heartbeats.as_mut().is_some_and(|h| h.heartbeat(&executor_id, now));
                if let Some(r) = reply {
                    let _ = r.send(known);
                }
                self.recorder.heartbeat(&executor_id, task_metrics, executor_metrics.filter(|_| known));
            }
            DriverEvent::RemoveRdd { rdd_id } => {
                self.recorder.unpersist_rdd(rdd_id);
                self.backend.remove_rdd(rdd_id)
            }
            DriverEvent::RemoveBroadcast { id } => self.backend.remove_broadcast(id),
            DriverEvent::Stop => return false,
        }
        true
    }

    fn lose_executor(&mut self, executor_id: &str, reason: &str) {
        if let Some(h) = &mut self.heartbeats {
            h.executor_removed(executor_id);
        }
        self.recorder.executor_removed(executor_id, reason);
        let id = executor_id.to_string();
        self.backend.executor_lost(&id);
        let events = self.tasks.executor_lost(executor_id, reason);
        self.scheduler_events(events);
        // Its cached blocks are gone too: the stages resubmitted below must not prefer it.
        self.services.blocks.remove_executor(executor_id);
        let actions = self.dag.executor_lost(executor_id, self.clock.now_ms());
        self.apply(actions);
        self.fail_if_no_executors_can_run();
    }

    /// With no executor left and none allowed to replace them, every job fails at once with
    /// the reason instead of waiting forever.
    fn fail_if_no_executors_can_run(&mut self) {
        if let Some(reason) = self.backend.application_failure() {
            let actions = self.dag.abort_all(&reason);
            self.apply(actions);
        }
    }

    /// Spark's `HeartbeatReceiver.expireDeadHosts`: executors silent past the timeout are lost,
    /// and their processes are told to stop.
    fn expire_silent_executors(&mut self) {
        let Some(h) = &mut self.heartbeats else { return };
        let timeout = h.timeout_ms();
        for id in h.expire(self.clock.now_ms()) {
            tracing::warn!("Removing executor {id} with no recent heartbeats: {timeout} ms exceeds timeout {timeout} ms");
            self.backend.kill_executor(&id);
            self.lose_executor(&id, &format!("Executor heartbeat timed out after {timeout} ms"));
        }
    }

    /// Runs the speculation check when it is due (Spark's `task-scheduler-speculation` timer);
    /// newly marked stragglers get their copies in the offer round that follows.
    fn check_speculation(&mut self) {
        let now = self.clock.now_ms();
        if self.tasks.next_speculation_check_ms().is_some_and(|t| t <= now) && self.tasks.check_speculatable_tasks(now) {
            debug!("speculatable tasks found; offering resources");
        }
    }

    /// Publishes the application-level exclusions (after lifting the ones that timed out).
    fn sync_exclusions(&mut self) {
        self.tasks.apply_exclude_on_failure_timeout();
        self.recorder.exclusions(self.tasks.excluded_executors());
    }

    fn scheduler_events(&mut self, events: Vec<SchedulerEvent>) {
        let now = self.clock.now_ms();
        for ev in events {
            match ev {
                SchedulerEvent::TaskStarted { stage_id, stage_attempt_id, task_id, partition, .. } => {
                    self.recorder.task_started(&self.tasks, stage_id, stage_attempt_id, task_id, partition)
                }
                SchedulerEvent::TaskEnded { stage_id, stage_attempt_id, task_id, partition, result, .. } => {
                    // Before the DAG scheduler sees it: a caller whose job it completes must find
                    // the attempt counted.
                    self.recorder.task_ended(&self.tasks, stage_id, stage_attempt_id, task_id, &result);
                    let actions = self.dag.task_ended(stage_id, stage_attempt_id, partition, result, now);
                    self.apply(actions);
                }
                SchedulerEvent::TaskSetFailed { stage_id, reason, .. } => {
                    let actions = self.dag.task_set_failed(stage_id, &reason);
                    self.apply(actions);
                }
                SchedulerEvent::KillTask { task_id, executor_id, reason } => self.backend.kill_task(task_id, &executor_id, &reason),
            }
        }
    }

    fn apply(&mut self, actions: Vec<DagAction>) {
        for a in actions {
            match a {
                DagAction::SubmitTasks(ts) => {
                    self.recorder.stage_submitted(&self.dag, &ts, self.clock.now_ms());
                    self.tasks.submit_tasks(ts)
                }
                DagAction::CancelStage { stage_id, reason } => {
                    let events = self.tasks.cancel_stage(stage_id, &reason);
                    self.scheduler_events(events);
                }
                DagAction::NotifyJob { job_id, event } => self.notify_job(job_id, event),
                DagAction::ApplyAccumulatorUpdates { stage_id, updates } => self.services.accumulators.apply(stage_id, &updates),
                DagAction::StageCompleted { stage_id, stage_attempt_id, failure_reason } => {
                    self.recorder.stage_completed(&self.dag, stage_id, stage_attempt_id, failure_reason)
                }
            }
        }
    }

    /// Passes a job's event to its caller; the last event of a job forgets the caller.
    fn notify_job(&mut self, job_id: JobId, event: JobEvent) {
        match &event {
            JobEvent::Succeeded => self.recorder.job_ended(job_id, JobResult::Succeeded),
            JobEvent::Failed(e) => self.recorder.job_ended(job_id, JobResult::Failed(e.to_string())),
            JobEvent::TaskSucceeded { .. } => {}
        }
        let last = matches!(event, JobEvent::Succeeded | JobEvent::Failed(_));
        let listener = if last { self.listeners.remove(&job_id) } else { self.listeners.get(&job_id).cloned() };
        if let Some(l) = listener {
            // The caller may have given up waiting (its thread ended): nothing to tell then.
            let _ = l.send(event);
        }
    }

    fn make_offers(&mut self) {
        let offers = self.backend.offers();
        if offers.iter().all(|o| o.cores == 0) {
            return;
        }
        let (assigned, events) = self.tasks.resource_offers(&offers);
        self.scheduler_events(events);
        let mut launch = Vec::new();
        let mut failures = Vec::new();
        for desc in assigned.into_iter().flatten() {
            match launchable(desc) {
                Ok(t) => launch.push(t),
                Err(f) => failures.push(f),
            }
        }
        if !launch.is_empty() {
            failures.extend(self.backend.launch_tasks(launch));
        }
        for failure in failures {
            let events = self.tasks.abort_task_set_of(failure.task_id, &failure.executor_id, &failure.message);
            self.scheduler_events(events);
        }
    }
}

/// The task an executor runs for an attempt the task scheduler handed out: the core's opaque
/// body turned back into this crate's task code.
fn launchable(desc: ember_scheduler::task::TaskDescription) -> Result<TaskDescription, LaunchFailure> {
    let Some(kind) = desc.body.downcast_ref::<TaskKind>().cloned() else {
        // Every body the core hands out came from this crate as a TaskKind: a bug otherwise.
        return Err(LaunchFailure {
            task_id: desc.task_id,
            executor_id: desc.executor_id,
            message: "internal error: a task body that is not a TaskKind".into(),
        });
    };
    Ok(TaskDescription {
        task_id: desc.task_id,
        attempt_number: desc.attempt_number,
        executor_id: desc.executor_id,
        name: desc.name,
        index: desc.index,
        partition_id: desc.partition_id,
        stage_id: desc.stage_id,
        stage_attempt_id: desc.stage_attempt_id,
        cpus: desc.cpus,
        kind,
    })
}

/// A job's properties as listeners see them (Spark's local properties of the submitting thread).
fn job_properties(job: &JobSubmission) -> Properties {
    let mut p = Properties::new();
    p.insert(crate::conf::SCHEDULER_POOL.to_string(), job.pool.clone());
    if let Some(g) = &job.group {
        p.insert(crate::conf::JOB_GROUP_ID.to_string(), g.clone());
    }
    p.insert("callSite.short".to_string(), job.call_site.clone());
    p
}

/// Logs a failure to start the loop's thread (the context then reports it).
pub(crate) fn spawn_failed(e: &std::io::Error) {
    error!("could not start the scheduler thread: {e}");
}
