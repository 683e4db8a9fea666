//! The task set's part of `excludeOnFailure` that needs the whole cluster in view: a task that
//! no live executor may run any more aborts the task set instead of hanging it.

use tracing::error;

use crate::health_tracker::HealthTracker;
use crate::live_executors::LiveExecutors;
use crate::task_set::SchedulerEvent;

use super::pending::needs_launch;
use super::TaskSetManager;

impl TaskSetManager {
    /// A pending task that no live executor may run any more (Spark's
    /// `getCompletelyExcludedTaskIfAny`), when `excludeOnFailure` is enabled.
    ///
    /// Only the task most recently put back is checked, which keeps this cheap; another stuck
    /// task is found by a later call, when it is the last one pending. Nothing is reported while
    /// no executor is alive (they may still be starting).
    pub fn completely_excluded_task(
        &self,
        live: &LiveExecutors,
        health: Option<&HealthTracker>,
    ) -> Option<usize> {
        let excludelist = self.excludelist.as_ref()?;
        if live.is_empty() || self.zombie {
            return None;
        }
        let index = *self
            .pending
            .all
            .iter()
            .rev()
            .find(|i| needs_launch(**i, &self.successful, &self.copies_running))?;
        let runnable_somewhere = live.executors_by_host().into_iter().any(|(host, execs)| {
            let node_excluded = health.is_some_and(|h| h.is_node_excluded(host))
                || excludelist.is_node_excluded_for_task_set(host)
                || excludelist.is_node_excluded_for_task(host, index);
            !node_excluded
                && execs.iter().any(|e| {
                    !(health.is_some_and(|h| h.is_executor_excluded(e))
                        || excludelist.is_executor_excluded_for_task_set(e)
                        || excludelist.is_executor_excluded_for_task(e, index))
                })
        });
        (!runnable_somewhere).then_some(index)
    }

    /// Aborts the task set because task `index` can run on no live executor (Spark's
    /// `abortSinceCompletelyExcludedOnFailure`), with Spark's message: it begins and ends with
    /// a line break, as Spark's does.
    pub fn abort_since_completely_excluded(&mut self, index: usize, out: &mut Vec<SchedulerEvent>) {
        let Some(excludelist) = &self.excludelist else {
            return;
        };
        if self.zombie {
            return;
        }
        let partition = self.task_set.tasks[index].partition;
        let latest = excludelist
            .latest_failure_reason()
            .unwrap_or("none recorded")
            .to_string();
        let message = format!(
            "\nAborting TaskSet {} because task {index} (partition {partition})\ncannot run \
             anywhere due to node and executor excludeOnFailure.\nMost recent \
             failure:\n{latest}\n\nExcludeOnFailure behavior can be configured via \
             ember.excludeOnFailure.*.\n",
            self.id
        );
        error!("{message}");
        self.abort(&message, out);
    }
}
