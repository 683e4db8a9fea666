//! The driver's scheduler thread (Spark's `DAGSchedulerEventProcessLoop` together with the
//! task scheduler's offer rounds and its speculation timer). It alone owns the DAG scheduler,
//! the task scheduler and the backend, so none of their state is shared or locked; everything
//! reaches it as a [`DriverEvent`] on one channel, and it wakes up on its own when the task
//! scheduler has something due (delay scheduling, a speculation check, an exclusion ending).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rustc_hash::FxHashMap;
use tracing::{debug, error, info};

use ember_scheduler::barrier_coordinator::{BarrierCoordinator, SyncReply, SyncRequest};
use ember_scheduler::clock::Clock;
use ember_scheduler::dag_scheduler::{
    panic_message, DagAction, DagScheduler, JobEvent, JobSubmission,
};
use ember_scheduler::heartbeat_receiver::HeartbeatReceiver;
use ember_scheduler::task_scheduler::{TaskSchedulerImpl, STARVATION_WARNING};
use ember_scheduler::task_set::SchedulerEvent;
use ember_scheduler::SchedulerError;

use super::backend::{LaunchFailure, SchedulerBackend};
use super::recorder::Recorder;
pub use super::status::{AppStatus, StatusCell};
use crate::accumulator::AccumulatorRegistry;
use crate::handoff;
use crate::listener::events::{JobResult, Properties};
use crate::storage::BlockManagerMaster;
use crate::task::{JobId, StatusUpdate, TaskDescription, TaskKind};

/// How long the loop sleeps, at most, while a timer is due but every core is busy.
const BUSY_WAKEUP_MS: u64 = 100;

/// Everything that can happen to the driver's scheduler.
pub enum DriverEvent {
    /// An action submitted a job; what becomes of it is sent on `listener`, its id on
    /// `id_reply`.
    JobSubmitted {
        job: JobSubmission,
        listener: Sender<JobEvent>,
        id_reply: Option<Sender<JobId>>,
    },
    /// An executor reported on a task.
    StatusUpdate(StatusUpdate),
    /// The driver starts fetching a finished task's result from its executor's block manager
    /// (sent before that task's `StatusUpdate`; Spark's `handleTaskGettingResult`).
    TaskGettingResult { task_id: crate::task::TaskId },
    /// Cancel one job.
    CancelJob { job_id: JobId, reason: String },
    /// Cancel every job of a group.
    CancelJobGroup { group: String },
    /// An executor joined with `cores` cores.
    ExecutorAdded {
        executor_id: String,
        host: String,
        cores: u32,
    },
    /// An executor is gone.
    ExecutorLost { executor_id: String, reason: String },
    /// An executor is alive; the metrics of its running tasks. `reply` learns whether it must
    /// register its block manager again (the backend is told too, to answer the executor).
    Heartbeat {
        executor_id: String,
        task_metrics: Vec<(crate::task::TaskId, crate::task::TaskMetricsSnapshot)>,
        executor_metrics: Option<crate::metrics::ExecutorSourceMetrics>,
        reply: Option<crossbeam_channel::Sender<bool>>,
    },
    /// Drop the cached partitions of an RDD everywhere.
    RemoveRdd { rdd_id: usize },
    /// Drop the executors' copies of a broadcast.
    RemoveBroadcast { id: u64 },
    /// A barrier task asks to sync (Spark's `RequestToSync` to `barrierSync`); the answer goes
    /// to `reply`.
    BarrierSync {
        request: SyncRequest,
        reply: BarrierReply,
    },
    /// Stop: cancel all jobs, stop the executors, end the loop.
    Stop,
}

/// Where the answer to a barrier sync goes: every task's message, or why the sync failed (a
/// channel of the waiting task in local mode, a message to its executor otherwise).
pub type BarrierReply = Box<dyn FnOnce(Result<Vec<String>, String>) + Send>;

/// The driver-side services the loop updates for the scheduler core: the application's
/// accumulators (merged with the updates the DAG scheduler hands back) and the registry of
/// cached blocks (which forgets a lost executor's blocks), and the added files.
pub struct DriverServices {
    pub accumulators: Arc<AccumulatorRegistry>,
    pub blocks: Arc<BlockManagerMaster>,
    /// The added files and archives, whose list each task set copies when it is created.
    pub files: Arc<crate::files::FileServer>,
}

/// Succeeded tasks' results held for a job's caller before they are sent. Sent one by one, a
/// job of many short tasks kept the caller's thread awake for each result, on a core the
/// scheduler and the task threads need: `W1` (10,000 one-element tasks) made 10,000 such
/// hand-offs (BENCHMARKS.md). Results are values the caller only stores or folds until the job
/// ends, so sending them later changes nothing it sees; a job of fewer tasks sends them at its
/// end.
const RESULT_BATCH: usize = 256;

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
    /// Results of a running job's succeeded tasks not yet sent to its caller: they go in
    /// batches of [`RESULT_BATCH`], and all of them before the job's end.
    pending_results: FxHashMap<JobId, Vec<JobEvent>>,
    /// Watches executor liveness (cluster masters; the embedded executor cannot go silent).
    heartbeats: Option<HeartbeatReceiver>,
    /// The added files of each running task set, as they were when it was created (Spark's
    /// `TaskSetManager` copies them then, SPARK-21563): all its tasks see the same files.
    dependencies: FxHashMap<(crate::task::StageId, u32), Arc<crate::files::Dependencies>>,
    /// The barrier stages' syncs (Spark's `BarrierCoordinator`, created with the context here
    /// rather than on the first barrier stage: it holds nothing until a sync arrives).
    barriers: BarrierCoordinator<BarrierReply>,
}

impl EventLoop {
    /// Sets `ember.barrier.sync.timeout`.
    pub fn with_barrier_sync_timeout(mut self, timeout_ms: u64) -> Self {
        self.barriers = BarrierCoordinator::new(timeout_ms);
        self
    }

    /// Declares executors silent for longer than `timeout_ms` lost, looking every
    /// `check_interval_ms` (cluster masters).
    pub fn with_heartbeat_timeout(mut self, timeout_ms: u64, check_interval_ms: u64) -> Self {
        self.heartbeats = Some(HeartbeatReceiver::new(
            timeout_ms,
            check_interval_ms,
            self.clock.now_ms(),
        ));
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
        EventLoop {
            dag,
            tasks,
            backend,
            clock,
            recorder,
            services,
            listeners: FxHashMap::default(),
            pending_results: FxHashMap::default(),
            heartbeats: None,
            dependencies: FxHashMap::default(),
            barriers: BarrierCoordinator::new(365 * 24 * 3_600_000),
        }
    }

    /// Runs until `Stop` or until every sender is gone.
    pub fn run(mut self, events: Receiver<DriverEvent>) {
        loop {
            let now = self.clock.now_ms();
            let mut timeout = self
                .tasks
                .next_wakeup_ms()
                .map(|t| t.saturating_sub(now))
                .unwrap_or(1000);
            if let Some(t) = self.dag.next_wakeup_ms() {
                timeout = timeout.min(t.saturating_sub(now));
            }
            if let Some(t) = self.barriers.next_deadline_ms() {
                timeout = timeout.min(t.saturating_sub(now));
            }
            if self.dag.active_jobs() > 0 {
                timeout = timeout.min(200);
            }
            if let Some(h) = &self.heartbeats {
                timeout = timeout.min(h.next_deadline_ms().saturating_sub(now));
            }
            // A timer still due after the periodic steps is a locality wait that only an offer
            // moves on, and with every core busy there is none until a task ends (an event that
            // wakes the loop anyway): waking at once would spin. Spark's speculation interval
            // (100 ms) is then the finest timer worth waking for.
            if timeout == 0 && self.backend.offers().iter().all(|o| o.cores == 0) {
                timeout = BUSY_WAKEUP_MS;
            }
            let wait = Duration::from_millis(timeout.max(1));
            let first = match handoff::recv_timeout(&events, wait) {
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Every entry point is guarded: user code the scheduler calls is guarded where it
            // is called (and fails only its job); a panic that still reaches here is Ember's
            // own, and fails the running jobs with it as the cause before the loop stops.
            let step = catch_unwind(AssertUnwindSafe(|| {
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
                    return true;
                }
                self.periodic_steps();
                false
            }));
            match step {
                Ok(false) => {}
                Ok(true) => break,
                Err(payload) => {
                    self.fail_jobs_after_panic(&panic_message(payload.as_ref()));
                    break;
                }
            }
        }
        // After a panic the state may be broken: stopping the executors must happen anyway.
        let cancelled = catch_unwind(AssertUnwindSafe(|| {
            let actions = self
                .dag
                .cancel_all("because the Ember context was shut down");
            self.apply(actions);
        }));
        if cancelled.is_err() {
            error!("DAGScheduler failed to cancel all jobs.");
        }
        self.backend.stop();
        debug!("scheduler event loop stopped");
    }

    /// What the loop does after each batch of events: expire silent executors, resubmit failed
    /// stages, make offers, publish the state.
    fn periodic_steps(&mut self) {
        self.expire_silent_executors();
        let now = self.clock.now_ms();
        Self::reply_barriers(self.barriers.check_timeouts(now));
        self.update_max_concurrent_tasks();
        let actions = self.dag.resubmit_failed_stages(now);
        self.apply(actions);
        if self.dag.active_jobs() > 0 {
            self.fail_if_no_executors_can_run();
        }
        self.check_speculation();
        self.abort_unschedulable_task_sets();
        self.make_offers();
        if self.tasks.check_starvation() {
            tracing::warn!("{STARVATION_WARNING}");
        }
        self.sync_exclusions();
    }

    /// Spark's `DAGSchedulerEventProcessLoop.onError`: the loop's state can no longer be
    /// trusted, so every running job fails with the panic as its cause (each caller learns
    /// why, rather than "context stopped") and the loop stops.
    fn fail_jobs_after_panic(&mut self, cause: &str) {
        error!("DAGSchedulerEventProcessLoop failed; shutting down the context: {cause}");
        let notified = catch_unwind(AssertUnwindSafe(|| {
            let actions = self.dag.event_loop_failed(cause);
            for a in actions {
                if let DagAction::NotifyJob { job_id, event } = a {
                    self.notify_job(job_id, event);
                }
            }
        }));
        if notified.is_err() {
            error!("DAGScheduler failed to cancel all jobs.");
        }
        // Callers the DAG scheduler could not reach still hear why.
        self.pending_results.clear();
        for (job_id, listener) in self.listeners.drain() {
            let _ = listener.send(JobEvent::Failed(SchedulerError::EventLoopFailed {
                job_id,
                cause: cause.to_string(),
            }));
        }
    }

    /// Handles one event; false means stop.
    fn handle(&mut self, ev: DriverEvent) -> bool {
        let now = self.clock.now_ms();
        match ev {
            DriverEvent::JobSubmitted {
                job,
                listener,
                id_reply,
            } => {
                let properties = self
                    .recorder
                    .wants_details()
                    .then(|| job_properties(&job));
                self.update_max_concurrent_tasks();
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
            DriverEvent::TaskGettingResult { task_id } => {
                self.recorder.task_getting_result(task_id);
            }
            DriverEvent::CancelJob { job_id, reason } => {
                let actions = self.dag.cancel_job(job_id, &reason);
                self.apply(actions);
            }
            DriverEvent::CancelJobGroup { group } => {
                let actions = self.dag.cancel_job_group(&group);
                self.apply(actions);
            }
            DriverEvent::ExecutorAdded {
                executor_id,
                host,
                cores,
            } => {
                if let Some(h) = &mut self.heartbeats {
                    h.executor_added(&executor_id, now);
                }
                self.recorder.executor_added(&executor_id, &host, cores);
                self.backend.executor_added(&executor_id);
                self.dag.executor_added(&executor_id);
                self.tasks.executor_added(&executor_id, &host)
            }
            DriverEvent::ExecutorLost {
                executor_id,
                reason,
            } => self.lose_executor(&executor_id, &reason),
            DriverEvent::Heartbeat {
                executor_id,
                task_metrics,
                executor_metrics,
                reply,
            } => {
                let block_manager_known = self.services.blocks.knows_executor(&executor_id);
                let reregister = self
                    .heartbeats
                    .as_mut()
                    .is_some_and(|h| h.heartbeat(&executor_id, now, block_manager_known));
                let known = self
                    .heartbeats
                    .as_ref()
                    .is_some_and(|h| h.knows(&executor_id));
                self.backend.heartbeat_answered(&executor_id, reregister);
                if let Some(r) = reply {
                    let _ = r.send(reregister);
                }
                self.recorder.heartbeat(
                    &executor_id,
                    task_metrics,
                    executor_metrics.filter(|_| known),
                );
            }
            DriverEvent::RemoveRdd { rdd_id } => {
                self.recorder.unpersist_rdd(rdd_id);
                self.backend.remove_rdd(rdd_id)
            }
            DriverEvent::RemoveBroadcast { id } => self.backend.remove_broadcast(id),
            DriverEvent::BarrierSync { request, reply } => {
                Self::reply_barriers(self.barriers.handle_request(request, reply, now));
            }
            DriverEvent::Stop => {
                if let Some(h) = &mut self.heartbeats {
                    h.stop();
                }
                return false;
            }
        }
        true
    }

    /// Answers barrier syncs; a task that stopped waiting has nothing to hear.
    fn reply_barriers(replies: Vec<SyncReply<BarrierReply>>) {
        for (reply, result) in replies {
            reply(result);
        }
    }

    /// Tells the DAG scheduler how many tasks the executors can run at once (Spark's
    /// `maxNumConcurrentTasks`: per executor, its cores over `ember.task.cpus`), for the barrier
    /// slot check.
    fn update_max_concurrent_tasks(&mut self) {
        let task_cpus = self.tasks.config().task_cpus.max(1);
        let slots = self
            .backend
            .executor_cores()
            .iter()
            .map(|c| (c / task_cpus) as usize)
            .sum();
        self.dag.set_max_concurrent_tasks(slots);
    }

    fn lose_executor(&mut self, executor_id: &str, reason: &str) {
        if let Some(h) = &mut self.heartbeats {
            h.executor_removed(executor_id);
        }
        self.recorder.executor_removed(executor_id, reason);
        let id = executor_id.to_string();
        let events = match self.backend.executor_lost(&id) {
            // Spark's StandaloneSchedulerBackend.executorRemoved: an exit status reported for the
            // process means the application caused the exit (a task called exit, aborted, or
            // was killed for its memory), so its running tasks count the failure.
            Some(status) => self
                .tasks
                .executor_exited(executor_id, &exit_message(status), true),
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
        let Some(h) = &mut self.heartbeats else {
            return;
        };
        let timeout = h.timeout_ms();
        for dead in h.expire(self.clock.now_ms()) {
            let (id, silent) = (dead.executor_id, dead.silent_ms);
            tracing::warn!(
                "Removing executor {id} with no recent heartbeats: {silent} ms exceeds timeout \
                 {timeout} ms"
            );
            self.backend.kill_executor(&id);
            self.lose_executor(
                &id,
                &format!("Executor heartbeat timed out after {silent} ms"),
            );
        }
    }

    /// Stops an executor `excludeOnFailure` wants replaced (Spark's `killExecutors` through the
    /// `ExecutorAllocationClient`). Only a backend that replaces executors has one: killing the
    /// one executor of local mode would leave nothing to run on.
    fn kill_executor(&mut self, executor_id: &str, reason: &str) {
        if !self.backend.replaces_executors() {
            info!(
                "Not attempting to kill excluded executor id {executor_id} since allocation \
                 client is not defined."
            );
            return;
        }
        info!("{reason}");
        let id = executor_id.to_string();
        self.backend.kill_executor(&id);
        self.lose_executor(executor_id, "Executor killed by driver.");
    }

    /// Aborts the task sets whose wait for an executor able to run a completely excluded task
    /// has expired (Spark's unschedulable-task-set abort timer).
    fn abort_unschedulable_task_sets(&mut self) {
        let events = self.tasks.abort_unschedulable_task_sets();
        self.scheduler_events(events);
    }

    /// Runs the speculation check when it is due (Spark's `task-scheduler-speculation` timer);
    /// newly marked stragglers get their copies in the offer round that follows.
    fn check_speculation(&mut self) {
        let now = self.clock.now_ms();
        if self
            .tasks
            .next_speculation_check_ms()
            .is_some_and(|t| t <= now)
            && self.tasks.check_speculatable_tasks(now)
        {
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
                SchedulerEvent::TaskStarted {
                    stage_id,
                    stage_attempt_id,
                    task_id,
                    partition,
                    ..
                } => self.recorder.task_started(
                    &self.tasks,
                    stage_id,
                    stage_attempt_id,
                    task_id,
                    partition,
                ),
                SchedulerEvent::TaskEnded {
                    stage_id,
                    stage_attempt_id,
                    task_id,
                    partition,
                    result,
                    ..
                } => {
                    // Before the DAG scheduler sees it: a caller whose job it completes must find
                    // the attempt counted.
                    self.recorder.task_ended(
                        &self.tasks,
                        stage_id,
                        stage_attempt_id,
                        task_id,
                        &result,
                    );
                    let actions =
                        self.dag
                            .task_ended(stage_id, stage_attempt_id, partition, result, now);
                    self.apply(actions);
                }
                SchedulerEvent::TaskSetFailed {
                    stage_id, reason, ..
                } => {
                    let actions = self.dag.task_set_failed(stage_id, &reason);
                    self.apply(actions);
                }
                SchedulerEvent::KillTask {
                    task_id,
                    executor_id,
                    reason,
                } => self.backend.kill_task(task_id, &executor_id, &reason),
                SchedulerEvent::KillExecutor {
                    executor_id,
                    reason,
                } => self.kill_executor(&executor_id, &reason),
            }
        }
    }

    fn apply(&mut self, actions: Vec<DagAction>) {
        for a in actions {
            match a {
                DagAction::SubmitTasks(ts) => {
                    self.recorder
                        .stage_submitted(&self.dag, &ts, self.clock.now_ms());
                    self.dependencies.insert(
                        (ts.stage_id, ts.stage_attempt_id),
                        self.services.files.snapshot(),
                    );
                    self.tasks.submit_tasks(ts)
                }
                DagAction::CancelStage { stage_id, reason } => {
                    let events = self.tasks.cancel_stage(stage_id, &reason);
                    self.scheduler_events(events);
                }
                DagAction::NotifyPartitionCompletion {
                    stage_id,
                    partition,
                } => {
                    let events = self.tasks.notify_partition_completion(stage_id, partition);
                    self.scheduler_events(events);
                }
                DagAction::NotifyJob { job_id, event } => self.notify_job(job_id, event),
                DagAction::ApplyAccumulatorUpdates {
                    stage_id,
                    partition,
                    updates,
                } => self
                    .services
                    .accumulators
                    .apply(stage_id, partition, &updates),
                DagAction::StageCompleted {
                    stage_id,
                    stage_attempt_id,
                    failure_reason,
                } => {
                    self.dependencies.remove(&(stage_id, stage_attempt_id));
                    Self::reply_barriers(
                        self.barriers
                            .stage_attempt_ended(stage_id, stage_attempt_id),
                    );
                    self.backend.stage_finished(stage_id, stage_attempt_id);
                    self.recorder.stage_completed(
                        &self.dag,
                        stage_id,
                        stage_attempt_id,
                        failure_reason,
                    )
                }
            }
        }
    }

    /// Passes a job's event to its caller: a task's result joins the job's held results (sent
    /// when [`RESULT_BATCH`] are held); the job's end sends what is held, then itself, and
    /// forgets the caller.
    fn notify_job(&mut self, job_id: JobId, event: JobEvent) {
        match &event {
            JobEvent::Succeeded => self.recorder.job_ended(job_id, JobResult::Succeeded),
            JobEvent::Failed(e) => self
                .recorder
                .job_ended(job_id, JobResult::Failed(e.to_string())),
            JobEvent::TaskSucceeded { .. } => {
                let batch = self.pending_results.entry(job_id).or_default();
                batch.push(event);
                if batch.len() >= RESULT_BATCH {
                    let batch = std::mem::take(batch);
                    self.send_to_caller(job_id, batch);
                }
                return;
            }
        }
        let mut batch = self.pending_results.remove(&job_id).unwrap_or_default();
        batch.push(event);
        self.send_to_caller(job_id, batch);
        self.listeners.remove(&job_id);
    }

    /// Sends a job's events to its caller, in order, one message each: the caller wakes once for
    /// the lot and takes them without waiting.
    fn send_to_caller(&self, job_id: JobId, events: Vec<JobEvent>) {
        if let Some(l) = self.listeners.get(&job_id) {
            for event in events {
                // The caller may have given up waiting (its thread ended): nothing to tell then.
                let _ = l.send(event);
            }
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
            let dependencies = match self
                .dependencies
                .get(&(desc.stage_id, desc.stage_attempt_id))
            {
                Some(d) => d.clone(),
                None => self.services.files.snapshot(),
            };
            match launchable(desc, dependencies) {
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
        outcome: crate::task::TaskOutcome::Failure {
            reason,
            metrics: None,
        },
    })
}

/// The task an executor runs for an attempt the task scheduler handed out: the core's opaque
/// body turned back into this crate's task code.
fn launchable(
    desc: ember_scheduler::task::TaskDescription,
    dependencies: Arc<crate::files::Dependencies>,
) -> Result<TaskDescription, LaunchFailure> {
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
        index: desc.index,
        partition_id: desc.partition_id,
        stage_id: desc.stage_id,
        stage_attempt_id: desc.stage_attempt_id,
        cpus: desc.cpus,
        barrier_tasks: desc.barrier_tasks,
        kind,
        dependencies,
    })
}

/// Spark's worker's description of an executor process's end, with the signal named. An
/// executor's only SIGSEGV in safe code is a thread running into its stack's guard page: the
/// executor's handler (`executor::stack_guard`) writes which thread overflowed to its stderr,
/// then lets the fault kill it, so that the loss reason here can say so.
fn exit_message(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with code {code}"),
        (None, Some(signal)) => {
            let name = match signal {
                libc::SIGSEGV => "SIGSEGV",
                libc::SIGBUS => "SIGBUS",
                libc::SIGABRT => "SIGABRT",
                libc::SIGKILL => "SIGKILL",
                libc::SIGTERM => "SIGTERM",
                libc::SIGINT => "SIGINT",
                libc::SIGILL => "SIGILL",
                libc::SIGFPE => "SIGFPE",
                _ => "",
            };
            let why = match signal {
                libc::SIGSEGV => {
                    ": a stack overflow (a task recursed too deeply, most likely; the executor's \
                     stderr names the thread that overflowed its stack)"
                }
                _ => "",
            };
            let sep = if name.is_empty() { "" } else { ", " };
            format!(
                "Command exited with code {} (killed by signal {signal}{sep}{name}{why})",
                128 + signal
            )
        }
        (None, None) => format!("Command exited: {status}"),
    }
}

/// A job's properties as listeners see them (Spark's local properties of the submitting thread,
/// with the pool it runs in and its call site).
fn job_properties(job: &JobSubmission) -> Properties {
    let mut p = job.properties.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_killed_by_sigsegv_reads_as_a_stack_overflow() {
        use std::os::unix::process::ExitStatusExt;
        let segv = exit_message(std::process::ExitStatus::from_raw(libc::SIGSEGV));
        assert!(
            segv.starts_with("Command exited with code 139 (killed by signal 11, SIGSEGV: ")
                && segv.contains("stack overflow"),
            "{segv}"
        );
        let kill = exit_message(std::process::ExitStatus::from_raw(libc::SIGKILL));
        assert_eq!(kill, "Command exited with code 137 (killed by signal 9, SIGKILL)");
        let code = exit_message(std::process::ExitStatus::from_raw(3 << 8));
        assert_eq!(code, "Command exited with code 3");
    }
    use ember_scheduler::clock::ManualClock;
    use ember_scheduler::config::SchedulerConfig;
    use ember_scheduler::task::TaskBody;
    use ember_scheduler::task_set::{TaskSet, TaskSpec, WorkerOffer};

    fn scheduler() -> TaskSchedulerImpl {
        let config = SchedulerConfig {
            max_task_failures: 1,
            ..SchedulerConfig::default()
        };
        let mut tasks = TaskSchedulerImpl::new(config, Arc::new(ManualClock::new(0)), 0);
        tasks.executor_added("1", "h1");
        tasks.executor_added("2", "h2");
        let specs = vec![TaskSpec {
            partition: 0,
            preferred_locations: Vec::new(),
        }];
        tasks.submit_tasks(TaskSet {
            stage_id: 0,
            stage_attempt_id: 0,
            priority: 0,
            pool_name: String::new(),
            tasks: specs,
            shuffle_id: None,
            body: TaskBody::new(()),
            barrier: false,
        });
        tasks
    }

    fn offer(
        tasks: &mut TaskSchedulerImpl,
        executor: &str,
        host: &str,
    ) -> Option<ember_scheduler::task::TaskDescription> {
        let offer = WorkerOffer {
            executor_id: executor.into(),
            host: host.into(),
            cores: 1,
        };
        tasks
            .resource_offers(&[offer])
            .0
            .into_iter()
            .flatten()
            .next()
    }

    fn failure(t: &ember_scheduler::task::TaskDescription, executor_gone: bool) -> LaunchFailure {
        LaunchFailure {
            task_id: t.task_id,
            executor_id: t.executor_id.clone(),
            message: format!("executor {} is gone", t.executor_id),
            executor_gone,
        }
    }

    #[test]
    fn a_launch_that_finds_its_executor_gone_requeues_the_task() {
        let mut tasks = scheduler();
        let first = offer(&mut tasks, "1", "h1").expect("launched on 1");
        let events = launch_failed(&mut tasks, failure(&first, true));
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })),
            "{events:?}"
        );
        // The loss that follows finds nothing of it running; the task runs on the other executor,
        // although max_task_failures is 1: the launch did not count.
        let events = tasks.executor_lost("1", "connection closed");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })),
            "{events:?}"
        );
        let again = offer(&mut tasks, "2", "h2").expect("re-queued");
        assert_eq!((again.index, again.attempt_number), (first.index, 1));
    }

    #[test]
    fn any_other_launch_failure_aborts_the_task_set() {
        let mut tasks = scheduler();
        let first = offer(&mut tasks, "1", "h1").unwrap();
        let events = launch_failed(&mut tasks, failure(&first, false));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, SchedulerEvent::TaskSetFailed { .. })),
            "{events:?}"
        );
    }
}
