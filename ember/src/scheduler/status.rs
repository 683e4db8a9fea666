//! `Context::status()`: totals over the application's task attempts, kept by a listener of the
//! bus that runs on the posting thread (the event loop), so that a job's caller finds its
//! tasks counted as soon as the job returns (Spark's status tracker is eventually consistent;
//! Ember's is exact at that point, and its tests rely on it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ember_scheduler::locality::TaskLocality;

use crate::metrics::ExecutorSourceMetrics;
use crate::listener::events::*;
use crate::listener::Listener;
use crate::task::{JobId, StageId, TaskId, TaskMetricsSnapshot};

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
    pub killed_tasks_summary: BTreeMap<String, u64>,
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
    pub launched_by_locality: BTreeMap<TaskLocality, u64>,
    /// The latest metrics of running tasks, from heartbeats.
    pub running_task_metrics: BTreeMap<TaskId, TaskMetricsSnapshot>,
    /// Sum of the metrics of successful attempts.
    pub metrics: TaskMetricsSnapshot,
    /// Jobs running now, ascending (Spark's `statusTracker.getActiveJobIds`), for `cancel_job`.
    pub active_job_ids: Vec<JobId>,
    /// Sum of the metrics of successful attempts, per stage (Spark's stage metrics).
    pub stage_metrics: BTreeMap<StageId, TaskMetricsSnapshot>,
    /// Each live executor's metrics source, as of its latest heartbeat (cluster masters; in
    /// local mode see `Context::executor_metrics`).
    pub executor_metrics: BTreeMap<String, ExecutorSourceMetrics>,
}

/// [`AppStatus`] shared between the bus and the application's threads, with a condition
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

/// Keeps a [`StatusCell`] up to date from the bus's events.
pub struct StatusListener(pub Arc<StatusCell>);

impl Listener for StatusListener {
    fn on_task_start(&mut self, e: &TaskStart) {
        self.0.update(|st| {
            st.running_tasks += 1;
            st.speculative_tasks_launched += u64::from(e.task_info.speculative);
            *st.launched_by_locality
                .entry(e.task_info.locality)
                .or_default() += 1;
        })
    }

    fn on_task_end(&mut self, e: &TaskEnd) {
        self.0.update(|st| match &e.reason {
            // A second end of an attempt that had succeeded: it no longer counts as running.
            TaskEndReason::Resubmitted => st.failed_tasks += 1,
            reason => {
                st.running_task_metrics.remove(&e.task_info.task_id);
                st.running_tasks = st.running_tasks.saturating_sub(1);
                match reason {
                    TaskEndReason::Success => {
                        st.succeeded_tasks += 1;
                        if let Some(m) = &e.task_metrics {
                            st.metrics.merge(m);
                            st.stage_metrics.entry(e.stage_id).or_default().merge(m);
                        }
                    }
                    TaskEndReason::Failed(r) => {
                        st.failed_tasks += 1;
                        if let crate::task::TaskEndReason::TaskKilled { reason } = r {
                            st.killed_tasks += 1;
                            *st.killed_tasks_summary.entry(reason.clone()).or_insert(0) += 1;
                        }
                    }
                    TaskEndReason::Resubmitted => {}
                }
            }
        })
    }

    fn on_job_start(&mut self, e: &JobStart) {
        self.0.update(|st| {
            if let Err(i) = st.active_job_ids.binary_search(&e.job_id) {
                st.active_job_ids.insert(i, e.job_id);
            }
        })
    }

    fn on_job_end(&mut self, e: &JobEnd) {
        self.0
            .update(|st| st.active_job_ids.retain(|j| *j != e.job_id))
    }

    fn on_executor_added(&mut self, e: &ExecutorAdded) {
        // The embedded executor of local mode is not one that registered.
        if e.executor_id != "driver" {
            self.0.update(|st| st.executors_added += 1)
        }
    }

    fn on_executor_removed(&mut self, e: &ExecutorRemoved) {
        self.0.update(|st| {
            st.executors_lost += 1;
            st.executor_metrics.remove(&e.executor_id);
        })
    }

    fn on_executor_excluded(&mut self, e: &ExecutorExcluded) {
        self.0.update(|st| {
            if let Err(i) = st.excluded_executors.binary_search(&e.executor_id) {
                st.excluded_executors.insert(i, e.executor_id.clone());
            }
        })
    }

    fn on_executor_unexcluded(&mut self, e: &ExecutorUnexcluded) {
        self.0
            .update(|st| st.excluded_executors.retain(|x| *x != e.executor_id))
    }

    fn on_executor_metrics_update(&mut self, e: &ExecutorMetricsUpdate) {
        self.0.update(|st| {
            st.heartbeats += 1;
            if let Some(m) = e.executor_updates {
                st.executor_metrics.insert(e.exec_id.clone(), m);
            }
            for (tid, _, _, m) in &e.accum_updates {
                st.running_task_metrics.insert(*tid, m.clone());
            }
        })
    }
}
