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
use crate::accumulator::AccumulatorRegistry;
use crate::storage::BlockManagerMaster;
use crate::task::{JobId, StatusUpdate, TaskDescription, TaskKind};
use crate::ui::console_progress::{ConsoleProgressBar, StageProgress};

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
    /// An executor joined.
    ExecutorAdded { executor_id: String, host: String },
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

/// Totals over the application's finished task attempts, readable from any thread
/// (`Context::status`).
#[derive(Clone, Debug, Default)]
pub struct AppStatus {
    /// Task attempts that succeeded (one per task: a copy that also finished counts as killed).
    pub succeeded_tasks: u64,
    /// Task attempts that failed (including killed and lost ones).
    pub failed_tasks: u64,
    /// Task attempts that ended killed (a subset of `failed_tasks`), as Spark's `numKilledTasks`.
    pub killed_tasks: u64,
    /// Killed attempts by kill reason, as Spark's `killedTasksSummary`: e.g. "another attempt
    /// succeeded" for the losers of speculation.
    pub killed_tasks_summary: std::collections::BTreeMap<String, u64>,
    /// Speculative copies launched (`ember.speculation`).
    pub speculative_tasks_launched: u64,
    /// Executors excluded for the application by `excludeOnFailure`, in id order.
    pub excluded_executors: Vec<String>,
    /// Task attempts running now.
    pub running_tasks: u64,
    /// Heartbeats received from executors.
    pub heartbeats: u64,
    /// Executors that registered (cluster masters), replacements included.
    pub executors_added: u64,
    /// Executors declared lost (connection closed or heartbeat timed out).
    pub executors_lost: u64,
    /// Task attempts launched at each locality level (a cached partition's task runs
    /// `ProcessLocal` on the executor that holds it).
    pub launched_by_locality: std::collections::BTreeMap<ember_scheduler::locality::TaskLocality, u64>,
    /// The latest metrics of running tasks, from heartbeats.
    pub running_task_metrics: std::collections::BTreeMap<crate::task::TaskId, crate::task::TaskMetricsSnapshot>,
    /// Sum of the metrics of successful attempts.
    pub metrics: crate::task::TaskMetricsSnapshot,
    /// Jobs running now, ascending (Spark's `statusTracker.getActiveJobIds`), for `cancel_job`.
    pub active_job_ids: Vec<JobId>,
    /// Sum of the metrics of successful attempts, per stage (Spark's stage metrics).
    pub stage_metrics: std::collections::BTreeMap<crate::task::StageId, crate::task::TaskMetricsSnapshot>,
    /// Each live executor's metrics source, as of its latest heartbeat (cluster masters; in
    /// local mode see `Context::executor_metrics`).
    pub executor_metrics: std::collections::BTreeMap<String, crate::executor::ExecutorSourceMetrics>,
}

/// [`AppStatus`] shared between the event loop and the application's threads, with a condition
/// variable so callers can wait for a state instead of sleeping.
#[derive(Default)]
pub struct StatusCell {
    status: parking_lot::Mutex<AppStatus>,
    changed: parking_lot::Condvar,
}

impl StatusCell {
    /// A copy of the current status.
    pub fn get(&self) -> AppStatus {
        self.status.lock().clone()
    }

    fn get_excluded_executors(&self) -> Vec<String> {
        self.status.lock().excluded_executors.clone()
    }

    /// Whether the published active jobs differ from `jobs` (to notify waiters only on change).
    fn active_jobs_differ(&self, jobs: &[JobId]) -> bool {
        self.status.lock().active_job_ids != jobs
    }

    fn update(&self, f: impl FnOnce(&mut AppStatus)) {
        f(&mut self.status.lock());
        self.changed.notify_all();
    }

    /// Waits until `pred` holds, or `timeout` passes; returns whether it holds.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&AppStatus) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.status.lock();
        while !pred(&st) {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return pred(&st);
            }
        }
        true
    }
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
    progress: ConsoleProgressBar,
    status: Arc<StatusCell>,
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
        progress: ConsoleProgressBar,
        status: Arc<StatusCell>,
        services: DriverServices,
    ) -> Self {
        EventLoop { dag, tasks, backend, clock, progress, status, services, listeners: FxHashMap::default(), heartbeats: None }
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
            self.update_progress();
        }
        self.progress.finish();
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
                let (id, actions) = self.dag.submit_job(job, now);
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
            DriverEvent::ExecutorAdded { executor_id, host } => {
                if let Some(h) = &mut self.heartbeats {
                    h.executor_added(&executor_id, now);
                }
                self.status.update(|st| st.executors_added += 1);
                self.backend.executor_added(&executor_id);
                self.tasks.executor_added(&executor_id, &host)
            }
            DriverEvent::ExecutorLost { executor_id, reason } => self.lose_executor(&executor_id, &reason),
            DriverEvent::Heartbeat { executor_id, task_metrics, executor_metrics, reply } => {
                let known = self.heartbeats.as_mut().is_some_and(|h| h.heartbeat(&executor_id, now));
                if let Some(r) = reply {
                    let _ = r.send(known);
                }
                self.status.update(|st| {
                    st.heartbeats += 1;
                    if let (Some(m), true) = (executor_metrics, known) {
                        st.executor_metrics.insert(executor_id.clone(), m);
                    }
                    for (tid, m) in task_metrics {
                        st.running_task_metrics.insert(tid, m);
                    }
                });
            }
            DriverEvent::RemoveRdd { rdd_id } => self.backend.remove_rdd(rdd_id),
            DriverEvent::RemoveBroadcast { id } => self.backend.remove_broadcast(id),
            DriverEvent::Stop => return false,
        }
        true
    }

    fn lose_executor(&mut self, executor_id: &str, reason: &str) {
        if let Some(h) = &mut self.heartbeats {
            h.executor_removed(executor_id);
        }
        self.status.update(|st| {
            st.executors_lost += 1;
            st.executor_metrics.remove(executor_id);
        });
        let id = executor_id.to_string();
        let events = match self.backend.executor_lost(&id) {
            // Spark's StandaloneSchedulerBackend.executorRemoved: an exit status reported for the
            // process means the application caused the exit (a task called exit, aborted, or
            // was killed for its memory), so its running tasks count the failure.
            Some(status) => self.tasks.executor_exited(executor_id, &exit_message(status), true),
            None => self.tasks.executor_lost(executor_id, reason),
        };
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
        let excluded = self.tasks.excluded_executors();
        if self.status.get_excluded_executors() != excluded {
            self.status.update(|st| st.excluded_executors = excluded);
        }
    }

    fn scheduler_events(&mut self, events: Vec<SchedulerEvent>) {
        let now = self.clock.now_ms();
        for ev in events {
            match ev {
                SchedulerEvent::TaskStarted { speculative, locality, .. } => {
                    let running = self.tasks.running_task_count() as u64;
                    self.status.update(|st| {
                        st.running_tasks = running;
                        st.speculative_tasks_launched += u64::from(speculative);
                        *st.launched_by_locality.entry(locality).or_default() += 1;
                    })
                }
                SchedulerEvent::TaskEnded { stage_id, stage_attempt_id, task_id, partition, result, .. } => {
                    // Before the DAG scheduler sees it: a caller whose job it completes must find
                    // the attempt counted.
                    let running = self.tasks.running_task_count() as u64;
                    self.status.update(|st| {
                        st.running_task_metrics.remove(&task_id);
                        st.running_tasks = running;
                        match &result {
                            Ok(r) => {
                                st.succeeded_tasks += 1;
                                st.metrics.merge(&r.metrics);
                                st.stage_metrics.entry(stage_id).or_default().merge(&r.metrics);
                            }
                            Err(reason) => {
                                st.failed_tasks += 1;
                                if let crate::task::TaskEndReason::TaskKilled { reason } = reason {
                                    st.killed_tasks += 1;
                                    *st.killed_tasks_summary.entry(reason.clone()).or_insert(0) += 1;
                                }
                            }
                        }
                    });
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
                DagAction::SubmitTasks(ts) => self.tasks.submit_tasks(ts),
                DagAction::CancelStage { stage_id, reason } => {
                    let events = self.tasks.cancel_stage(stage_id, &reason);
                    self.scheduler_events(events);
                }
                DagAction::NotifyJob { job_id, event } => self.notify_job(job_id, event),
                DagAction::ApplyAccumulatorUpdates { stage_id, updates } => self.services.accumulators.apply(stage_id, &updates),
            }
        }
    }

    /// Passes a job's event to its caller; the last event of a job forgets the caller.
    fn notify_job(&mut self, job_id: JobId, event: JobEvent) {
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
            let events = launch_failed(&mut self.tasks, failure);
            self.scheduler_events(events);
        }
    }

    fn update_progress(&mut self) {
        let jobs = self.dag.active_job_ids();
        if self.status.active_jobs_differ(&jobs) {
            self.status.update(|st| st.active_job_ids = jobs);
        }
        if !self.progress.is_enabled() {
            return;
        }
        let stages: Vec<StageProgress> = self
            .dag
            .running_stages()
            .into_iter()
            .map(|(stage_id, stage_attempt, num_tasks, completed, submitted_at_ms)| StageProgress {
                stage_id,
                stage_attempt,
                num_tasks,
                completed,
                active: self.tasks.running_tasks_of_stage(stage_id),
                submitted_at_ms,
            })
            .collect();
        if stages.is_empty() {
            self.progress.finish();
        } else {
            self.progress.update(self.clock.now_ms(), &stages);
        }
    }
}

/// What becomes of a task the backend could not send. An executor that went away between the
/// offer and the launch is an executor loss, not a reason to abort: the attempt fails as lost
/// (not counted) and is re-queued, as Spark's launch never finds its executor gone (offers and
/// removals are serialized there) and a lost executor's tasks are re-queued. Anything else
/// (a task over the RPC limit) aborts its task set.
fn launch_failed(tasks: &mut TaskSchedulerImpl, failure: LaunchFailure) -> Vec<SchedulerEvent> {
    if !failure.executor_gone {
        return tasks.abort_task_set_of(failure.task_id, &failure.executor_id, &failure.message);
    }
    debug!("task {} not launched: {}", failure.task_id, failure.message);
    let reason = crate::task::TaskEndReason::ExecutorLostFailure {
        executor_id: failure.executor_id.clone(),
        exit_caused_by_app: false,
        reason: failure.message,
    };
    tasks.status_update(StatusUpdate {
        executor_id: failure.executor_id,
        task_id: failure.task_id,
        state: crate::task::TaskState::Failed,
        outcome: crate::task::TaskOutcome::Failure { reason, metrics: None },
    })
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
            executor_gone: false,
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

/// Spark's worker's description of an executor process's end.
fn exit_message(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with code {code}"),
        (None, Some(signal)) => format!("Command exited with code {} (killed by signal {signal})", 128 + signal),
        (None, None) => format!("Command exited: {status}"),
    }
}

/// Logs a failure to start the loop's thread (the context then reports it).
pub(crate) fn spawn_failed(e: &std::io::Error) {
    error!("could not start the scheduler thread: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_scheduler::clock::ManualClock;
    use ember_scheduler::config::SchedulerConfig;
    use ember_scheduler::task::TaskBody;
    use ember_scheduler::task_set::{TaskSet, TaskSpec, WorkerOffer};

    fn scheduler() -> TaskSchedulerImpl {
        let config = SchedulerConfig { max_task_failures: 1, ..SchedulerConfig::default() };
        let mut tasks = TaskSchedulerImpl::new(config, Arc::new(ManualClock::new(0)), 0);
        tasks.executor_added("1", "h1");
        tasks.executor_added("2", "h2");
        let specs = vec![TaskSpec { partition: 0, preferred_locations: Vec::new() }];
        tasks.submit_tasks(TaskSet { stage_id: 0, stage_attempt_id: 0, priority: 0, pool_name: String::new(), tasks: specs, shuffle_id: None, body: TaskBody::new(()) });
        tasks
    }

    fn offer(tasks: &mut TaskSchedulerImpl, executor: &str, host: &str) -> Option<ember_scheduler::task::TaskDescription> {
        let offer = WorkerOffer { executor_id: executor.into(), host: host.into(), cores: 1 };
        tasks.resource_offers(&[offer]).0.into_iter().flatten().next()
    }

    fn failure(t: &ember_scheduler::task::TaskDescription, executor_gone: bool) -> LaunchFailure {
        LaunchFailure { task_id: t.task_id, executor_id: t.executor_id.clone(), message: format!("executor {} is gone", t.executor_id), executor_gone }
    }

    #[test]
    fn a_launch_that_finds_its_executor_gone_requeues_the_task() {
        let mut tasks = scheduler();
        let first = offer(&mut tasks, "1", "h1").expect("launched on 1");
        let events = launch_failed(&mut tasks, failure(&first, true));
        assert!(!events.iter().any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })), "{events:?}");
        // The loss that follows finds nothing of it running; the task runs on the other executor,
        // although max_task_failures is 1: the launch did not count.
        let events = tasks.executor_lost("1", "connection closed");
        assert!(!events.iter().any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })), "{events:?}");
        let again = offer(&mut tasks, "2", "h2").expect("re-queued");
        assert_eq!((again.index, again.attempt_number), (first.index, 1));
    }

    #[test]
    fn any_other_launch_failure_aborts_the_task_set() {
        let mut tasks = scheduler();
        let first = offer(&mut tasks, "1", "h1").unwrap();
        let events = launch_failed(&mut tasks, failure(&first, false));
        assert!(events.iter().any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })), "{events:?}");
    }
}
