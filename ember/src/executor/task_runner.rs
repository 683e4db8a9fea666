//! `TaskRunner`: runs one task attempt on a pool thread and reports how it ended (Spark's
//! `Executor.TaskRunner.run`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, error, info, warn};

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
        debug!("Running {} (TID {})", t.name(), t.task_id);
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
                                    t.name(),
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
            let kill_reason = ctx
                .is_interrupted()
                .then(|| ctx.kill_reason().unwrap_or_default());
            let fetch_failure = ctx.fetch_failure();
            match result {
                Ok(Ok(v)) => {
                    if fetch_failure.is_some() {
                        error!(
                            "{} (TID {}) completed successfully though internally it encountered \
                             unrecoverable fetch failures! Most likely this means user code is \
                             incorrectly swallowing Ember's internal FetchFailedException",
                            t.name(), t.task_id
                        );
                    }
                    Ok(v)
                }
                Ok(Err(e)) => {
                    let ended = Ended {
                        kill_reason,
                        fetch_failure,
                        task: t.name(),
                    };
                    Err(ended.reason(Box::new(e)))
                }
                Err(payload) => {
                    let ended = Ended {
                        kill_reason,
                        fetch_failure,
                        task: t.name(),
                    };
                    Err(ended.reason(payload))
                }
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
                    t.name(), t.task_id, metrics.result_size
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
                            t.name(), t.task_id
                        );
                        TaskState::Killed
                    }
                    _ => {
                        warn!("Exception in {} (TID {}): {reason}", t.name(), t.task_id);
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

/// What the attempt left behind when it failed, besides its error.
struct Ended {
    /// Why it was killed, if it was.
    kill_reason: Option<String>,
    /// The fetch failure it raised, if any.
    fetch_failure: Option<TaskEndReason>,
    /// "task 3.0 in stage 1.0".
    task: ember_scheduler::task::TaskName,
}

impl Ended {
    /// Turns the attempt's error (an unwind payload, or a returned [`EmberError`]) into the
    /// reason the driver sees, in the order of Spark's `TaskRunner.run`: a kill wins, even over
    /// a fetch failure the kill may have caused (SPARK-23816); then a fetch failure, even one
    /// user code caught and replaced with another error (SPARK-19276); then the error itself.
    fn reason(self, payload: Box<dyn std::any::Any + Send>) -> TaskEndReason {
        let payload = match payload.downcast::<TaskKilledPanic>() {
            Ok(k) => return TaskEndReason::TaskKilled { reason: k.0 },
            Err(p) => p,
        };
        if let Some(reason) = self.kill_reason {
            return TaskEndReason::TaskKilled { reason };
        }
        let payload = match payload.downcast::<TaskEndReason>() {
            Ok(r) => return self.fetch_failure.unwrap_or(*r),
            Err(p) => p,
        };
        let description = match payload.downcast::<EmberError>() {
            Ok(e) => e.to_string(),
            Err(p) => crate::util::take_panic_message()
                .unwrap_or_else(|| crate::util::panic_payload_message(&*p)),
        };
        match self.fetch_failure {
            Some(fetch_failure) => {
                warn!(
                    "{} encountered a FetchFailedException and failed, but the \
                     FetchFailedException was hidden by another exception. Ember is handling \
                     this like a fetch failure and ignoring the other exception: {description}",
                    self.task
                );
                fetch_failure
            }
            None => TaskEndReason::ExceptionFailure { description },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch_failed() -> TaskEndReason {
        TaskEndReason::FetchFailed {
            location: None,
            shuffle_id: 0,
            map_index: Some(1),
            reduce_id: 2,
            message: "gone".into(),
        }
    }

    fn ended(kill_reason: Option<&str>, fetch_failure: Option<TaskEndReason>) -> Ended {
        Ended {
            kill_reason: kill_reason.map(str::to_string),
            fetch_failure,
            task: ember_scheduler::task::TaskName {
                index: 2,
                attempt: 0,
                stage_id: 1,
                stage_attempt: 0,
            },
        }
    }

    #[test]
    fn an_attempt_is_named_as_in_spark_logs() {
        assert_eq!(ended(None, None).task.to_string(), "task 2.0 in stage 1.0");
    }

    #[test]
    fn spark_23816_a_kill_is_not_masked_by_a_fetch_failure() {
        // ExecutorSuite "SPARK-23816: interrupts are not masked by a FetchFailure".
        let reason = ended(Some("stage cancelled"), Some(fetch_failed()))
            .reason(Box::new(fetch_failed()));
        assert_eq!(
            reason,
            TaskEndReason::TaskKilled {
                reason: "stage cancelled".into()
            }
        );
    }

    #[test]
    fn spark_19276_a_fetch_failure_hidden_by_a_user_error_is_still_a_fetch_failure() {
        // ExecutorSuite "SPARK-19276: Handle FetchFailedExceptions that are hidden by user
        // exceptions": user code caught the fetch failure's unwind and panicked with its own.
        let reason = ended(None, Some(fetch_failed())).reason(Box::new("boom"));
        assert_eq!(reason, fetch_failed());
        let returned = EmberError::Internal("user error".into());
        let reason = ended(None, Some(fetch_failed())).reason(Box::new(returned));
        assert_eq!(reason, fetch_failed());
    }

    #[test]
    fn without_a_fetch_failure_or_a_kill_the_error_is_reported() {
        let reason = ended(None, None).reason(Box::new("boom".to_string()));
        assert!(
            matches!(&reason, TaskEndReason::ExceptionFailure { description }
                if description.contains("boom")),
            "{reason:?}"
        );
        let reason = ended(None, None).reason(Box::new(fetch_failed()));
        assert_eq!(reason, fetch_failed());
    }
}
