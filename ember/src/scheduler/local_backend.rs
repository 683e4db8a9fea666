//! The local backend (Spark's `LocalSchedulerBackend`): one executor inside the driver process,
//! with `local[N]`'s N task threads.

use std::sync::Arc;

use crossbeam_channel::Sender;
use rustc_hash::FxHashMap;
use tracing::debug;

use super::backend::{LaunchFailure, SchedulerBackend};
use super::event_loop::DriverEvent;
use crate::env::ExecutorEnv;
use crate::executor::{Executor, ExecutorBackend};
use crate::task::{ExecutorId, StatusUpdate, TaskDescription, TaskId};
use ember_scheduler::task_set::WorkerOffer;

/// Barrier syncs of the embedded executor's tasks go straight into the driver's event queue.
pub struct LocalBarrierSync {
    /// The event loop's queue.
    pub events: Sender<DriverEvent>,
}

impl crate::task::BarrierSyncSource for LocalBarrierSync {
    fn request_sync(
        &self,
        request: ember_scheduler::barrier_coordinator::SyncRequest,
    ) -> crate::Result<crossbeam_channel::Receiver<Result<Vec<String>, String>>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (stage_id, stage_attempt_id) = (request.stage_id, request.stage_attempt_id);
        let reply = Box::new(move |result| {
            let _ = tx.send(result);
        });
        self.events
            .send(DriverEvent::BarrierSync { request, reply })
            .map_err(|_| crate::EmberError::BarrierSyncFailed {
                stage_id,
                stage_attempt_id,
                message: "the driver's scheduler has stopped".into(),
            })?;
        Ok(rx)
    }
}

/// Status updates of the embedded executor go straight into the driver's event queue.
struct LocalExecutorBackend {
    events: Sender<DriverEvent>,
}

impl ExecutorBackend for LocalExecutorBackend {
    fn status_update(&self, update: StatusUpdate) {
        let _ = self.events.send(DriverEvent::StatusUpdate(update));
    }
}

/// One in-process executor and its free cores.
pub struct LocalBackend {
    executor: Executor,
    total_cores: u32,
    free_cores: u32,
    running: FxHashMap<TaskId, u32>,
}

impl LocalBackend {
    /// Starts the embedded executor with `cores` task threads.
    pub fn new(env: Arc<ExecutorEnv>, cores: usize, events: Sender<DriverEvent>) -> Self {
        let executor = Executor::new(env, cores, Arc::new(LocalExecutorBackend { events }));
        LocalBackend {
            executor,
            total_cores: cores as u32,
            free_cores: cores as u32,
            running: FxHashMap::default(),
        }
    }

    /// The embedded executor.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }
}

impl SchedulerBackend for LocalBackend {
    fn executor_cores(&self) -> Vec<u32> {
        vec![self.total_cores]
    }
    fn offers(&mut self) -> Vec<WorkerOffer> {
        let env = self.executor.env();
        vec![WorkerOffer {
            executor_id: env.executor_id.clone(),
            host: env.host.clone(),
            cores: self.free_cores,
        }]
    }

    fn launch_tasks(&mut self, tasks: Vec<TaskDescription>) -> Vec<LaunchFailure> {
        for t in tasks {
            debug!(
                "Launching task {} on executor {} hostname {}",
                t.task_id,
                t.executor_id,
                self.executor.env().host
            );
            self.free_cores = self.free_cores.saturating_sub(t.cpus);
            self.running.insert(t.task_id, t.cpus);
            self.executor.launch_task(t);
        }
        Vec::new()
    }

    fn status_update(&mut self, update: &StatusUpdate) {
        if update.state.is_finished() {
            if let Some(cpus) = self.running.remove(&update.task_id) {
                self.free_cores = (self.free_cores + cpus).min(self.total_cores);
            }
        }
    }

    fn remove_rdd(&mut self, rdd_id: usize) {
        self.executor.env().block_manager.remove_rdd(rdd_id);
    }

    fn kill_task(&mut self, task_id: TaskId, _executor_id: &ExecutorId, reason: &str) {
        self.executor.kill_task(task_id, reason);
    }

    fn stop(&mut self) {
        self.executor.stop();
    }
}
