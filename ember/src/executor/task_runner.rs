//! `TaskRunner`: runs one task attempt on a pool thread and reports how it ended (Spark's
//! `Executor.TaskRunner.run`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::executor::Shared;
use crate::error::EmberError;
use crate::task::context::TaskKilledPanic;
use crate::task::{
    DirectTaskResult, StatusUpdate, TaskContext, TaskDescription, TaskEndReason, TaskKind,
    TaskMetrics, TaskOutcome, TaskState, TaskValue,
};

/// One task attempt on its way through an executor.
pub struct TaskRunner {
    shared: Arc<Shared>,
    task: TaskDescription,
    ctx: Arc<TaskContext>,
}

impl TaskRunner {
    pub(crate) fn new(shared: Arc<Shared>, task: TaskDescription, ctx: Arc<TaskContext>) -> Self {
        TaskRunner { shared, task, ctx }
    }

    /// Runs the task and sends its final status; the task is always removed from
    /// `running_tasks`, whatever happens.
    pub fn run(self) {
        let t = &self.task;
        let ctx = self.ctx.clone();
        self.shared
            .counters
            .active_tasks
            .fetch_add(1, Ordering::Relaxed);
        debug!("Running {} (TID {})", t.name, t.task_id);
        let start = Instant::now();

        let guard = TaskContext::enter(&ctx);
        let outcome = if ctx.is_interrupted() {
            Err(TaskEndReason::TaskKilled {
                reason: ctx.kill_reason().unwrap_or_default(),
            })
        } else {
            let serialize = self.shared.serialize_results;
            let reship = self.shared.reship_tasks;
            let result = catch_unwind(AssertUnwindSafe(|| -> crate::Result<TaskValue> {
                // Spark's `updateDependencies`: what the task set lists that this executor does
                // not have yet is fetched first; a failure fails this attempt, which is retried.
                let files = &self.shared.env.files;
                files.update(&t.dependencies)?;
                let _files = crate::files::enter(files);
                // The forced wire path: the task body goes through the same ship/decode round
                // trip as in cluster mode, so local tests cover it.
                let kind = if reship {
                    crate::ship::round_trip(&t.kind)?
                } else {
                    t.kind.clone()
                };
                match &kind {
                    TaskKind::Result(f) => {
                        if serialize {
                            f.run_serialized(t.partition_id, &ctx).map(TaskValue::Bytes)
                        } else {
                            let max = self.shared.max_result_size;
                            let (value, size) = f.run(t.partition_id, &ctx, max > 0);
                            TaskMetrics::add(&ctx.metrics.result_size, size);
                            if max > 0 && size > max {
                                warn!(
                                    "Finished {} (TID {}). Result is larger than maxResultSize \
                                     ({} > {}), dropping it.",
                                    t.name,
                                    t.task_id,
                                    crate::util::bytes_to_string(size),
                                    crate::util::bytes_to_string(max)
                                );
                                Ok(TaskValue::ResultTooLarge { size })
                            } else {
                                Ok(TaskValue::Value(value))
                            }
                        }
                    }
                    TaskKind::ShuffleMap(m) => {
                        m.run(t.partition_id, &ctx).map(TaskValue::MapStatus)
                    }
                }
            }));
            match result {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(TaskEndReason::ExceptionFailure {
                    description: e.to_string(),
                }),
                Err(payload) => Err(failure_reason(payload, &ctx)),
            }
        };

        drop(guard);
        let outcome = self.check_memory_leak(outcome);
        // Updates leave only with a success: a failed attempt's are dropped, as in Spark.
        let copies = ctx.take_accumulators();
        let outcome = outcome.and_then(|v| match crate::accumulator::collect_updates(copies) {
            Ok(updates) => Ok((v, updates)),
            Err(e) => Err(TaskEndReason::ExceptionFailure {
                description: e.to_string(),
            }),
        });
        TaskMetrics::add(
            &ctx.metrics.executor_run_time_ms,
            start.elapsed().as_millis() as u64,
        );
        if let Ok((TaskValue::Bytes(b), _)) = &outcome {
            TaskMetrics::add(&ctx.metrics.result_size, b.len() as u64);
        }
        let metrics = ctx.metrics.snapshot();
        self.shared.counters.fs.add_task(&metrics);
        self.shared.running.lock().remove(&t.task_id);
        self.shared
            .counters
            .active_tasks
            .fetch_sub(1, Ordering::Relaxed);
        self.shared
            .counters
            .completed_tasks
            .fetch_add(1, Ordering::Relaxed);

        let (state, outcome) = match outcome {
            Ok((value, accum_updates)) => {
                debug!(
                    "Finished {} (TID {}). {} bytes result sent to driver",
                    t.name, t.task_id, metrics.result_size
                );
                (
                    TaskState::Finished,
                    TaskOutcome::Success(DirectTaskResult {
                        value,
                        metrics,
                        accum_updates,
                    }),
                )
            }
            Err(reason) => {
                let state = match reason {
                    TaskEndReason::TaskKilled { .. } => {
                        info!(
                            "Executor killed {} (TID {}), reason: {reason}",
                            t.name, t.task_id
                        );
                        TaskState::Killed
                    }
                    _ => {
                        warn!("Exception in {} (TID {}): {reason}", t.name, t.task_id);
                        TaskState::Failed
                    }
                };
                (
                    state,
                    TaskOutcome::Failure {
                        reason,
                        metrics: Some(metrics),
                    },
                )
            }
        };
        self.shared.backend.status_update(StatusUpdate {
            executor_id: self.shared.env.executor_id.clone(),
            task_id: t.task_id,
            state,
            outcome,
        });
    }
}

impl TaskRunner {
    /// Releases the execution memory the task still holds. For a task that succeeded, that
    /// memory is a leak (Spark's check in `Executor.TaskRunner.run`): logged, or the task's
    /// failure when `ember.unsafe.exceptionOnMemoryLeak` is true. A failed task may have been
    /// interrupted before it could release: its memory is returned silently.
    fn check_memory_leak(
        &self,
        outcome: Result<TaskValue, TaskEndReason>,
    ) -> Result<TaskValue, TaskEndReason> {
        let memory = self.ctx.task_memory_manager();
        TaskMetrics::add(
            &self.ctx.metrics.peak_execution_memory,
            memory.peak_memory_used(),
        );
        let leaked = memory.cleanup_all_allocated_memory();
        if leaked == 0 || outcome.is_err() {
            return outcome;
        }
        let message = format!(
            "Managed memory leak detected; size = {leaked} bytes, TID = {}",
            self.task.task_id
        );
        if self.shared.exception_on_leak {
            return Err(TaskEndReason::ExceptionFailure {
                description: message,
            });
        }
        warn!("{message}");
        outcome
    }
}

/// Turns an unwind payload into the reason the driver sees.
fn failure_reason(payload: Box<dyn std::any::Any + Send>, ctx: &TaskContext) -> TaskEndReason {
    let payload = match payload.downcast::<TaskEndReason>() {
        Ok(r) => return *r,
        Err(p) => p,
    };
    let payload = match payload.downcast::<TaskKilledPanic>() {
        Ok(k) => return TaskEndReason::TaskKilled { reason: k.0 },
        Err(p) => p,
    };
    let payload = match payload.downcast::<EmberError>() {
        Ok(e) => {
            return TaskEndReason::ExceptionFailure {
                description: e.to_string(),
            }
        }
        Err(p) => p,
    };
    if ctx.is_interrupted() {
        return TaskEndReason::TaskKilled {
            reason: ctx.kill_reason().unwrap_or_default(),
        };
    }
    let description = crate::util::take_panic_message()
        .unwrap_or_else(|| crate::util::panic_payload_message(&*payload));
    TaskEndReason::ExceptionFailure { description }
}
