//! `TaskSetExcludelist`: exclusion within one task set (Spark's `TaskSetExcludelist`, part of
//! `excludeOnFailure`). A task is not retried on an executor or node where it already failed too
//! often, and an executor or node where too many of the stage's tasks failed gets no more of the
//! stage's tasks.
//!
//! It also keeps, per executor, which tasks failed there and when: once the task set succeeds,
//! [`crate::health_tracker::HealthTracker`] adds those failures to the application's
//! counts. Failures of a task set that does not succeed never reach the application level (the
//! code, not the executor, may be at fault).
//!
//! Only failures that count towards `ember.task.maxFailures` are recorded here (the task's own
//! fault): the task set manager does not report kills, fetch failures or executor losses.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use ember_common::{ExecutorId, StageId};

use crate::config::ExcludeOnFailureConfig;

/// The failures of one executor within one task set (Spark's `ExecutorFailuresInTaskSet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorFailuresInTaskSet {
    /// The executor's host.
    pub node: String,
    /// Task index → (failures of that task here, clock time of the latest one).
    pub task_failures: BTreeMap<usize, (u32, u64)>,
}

impl ExecutorFailuresInTaskSet {
    fn new(node: &str) -> Self {
        ExecutorFailuresInTaskSet {
            node: node.to_string(),
            task_failures: BTreeMap::new(),
        }
    }

    fn record(&mut self, index: usize, now: u64) {
        let entry = self.task_failures.entry(index).or_insert((0, now));
        entry.0 += 1;
        // Driver times never go backwards, but keep the latest anyway.
        entry.1 = entry.1.max(now);
    }

    /// Failures of task `index` on this executor.
    pub fn failures_of(&self, index: usize) -> u32 {
        self.task_failures.get(&index).map_or(0, |(n, _)| *n)
    }

    /// Distinct tasks that failed on this executor.
    pub fn distinct_tasks_failed(&self) -> usize {
        self.task_failures.len()
    }
}

/// Exclusion state of one task set. Maps are ordered so that logs and messages are repeatable.
#[derive(Clone, Debug)]
pub struct TaskSetExcludelist {
    config: ExcludeOnFailureConfig,
    stage_id: StageId,
    stage_attempt_id: u32,
    exec_failures: BTreeMap<ExecutorId, ExecutorFailuresInTaskSet>,
    /// Executors of each host that had failures. Kept after an executor is lost, so that failures
    /// of successive executors on one host still add up to the host's.
    node_execs_with_failures: BTreeMap<String, BTreeSet<ExecutorId>>,
    node_excluded_tasks: BTreeMap<String, BTreeSet<usize>>,
    excluded_executors: BTreeSet<ExecutorId>,
    excluded_nodes: BTreeSet<String>,
    latest_failure_reason: Option<String>,
}

impl TaskSetExcludelist {
    /// Nothing excluded yet.
    pub fn new(config: ExcludeOnFailureConfig, stage_id: StageId, stage_attempt_id: u32) -> Self {
        TaskSetExcludelist {
            config,
            stage_id,
            stage_attempt_id,
            exec_failures: BTreeMap::new(),
            node_execs_with_failures: BTreeMap::new(),
            node_excluded_tasks: BTreeMap::new(),
            excluded_executors: BTreeSet::new(),
            excluded_nodes: BTreeSet::new(),
            latest_failure_reason: None,
        }
    }

    /// Whether task `index` may no longer run on the executor (it failed there
    /// `maxTaskAttemptsPerExecutor` times). Says nothing about stage- or application-level
    /// exclusion, which callers check first.
    pub fn is_executor_excluded_for_task(&self, executor_id: &str, index: usize) -> bool {
        self.exec_failures
            .get(executor_id)
            .is_some_and(|f| f.failures_of(index) >= self.config.max_task_attempts_per_executor)
    }

    /// Whether task `index` may no longer run on the host.
    pub fn is_node_excluded_for_task(&self, host: &str, index: usize) -> bool {
        self.node_excluded_tasks
            .get(host)
            .is_some_and(|t| t.contains(&index))
    }

    /// Whether the executor gets no more tasks of this task set.
    pub fn is_executor_excluded_for_task_set(&self, executor_id: &str) -> bool {
        self.excluded_executors.contains(executor_id)
    }

    /// Whether the host gets no more tasks of this task set.
    pub fn is_node_excluded_for_task_set(&self, host: &str) -> bool {
        self.excluded_nodes.contains(host)
    }

    /// The executors excluded for this task set.
    pub fn excluded_executors(&self) -> impl Iterator<Item = &str> {
        self.excluded_executors.iter().map(String::as_str)
    }

    /// The most recent counted failure, for the abort message.
    pub fn latest_failure_reason(&self) -> Option<&str> {
        self.latest_failure_reason.as_deref()
    }

    /// The failures per executor, which the application-level tracker adds up when the task set
    /// succeeds.
    pub fn exec_failures(&self) -> &BTreeMap<ExecutorId, ExecutorFailuresInTaskSet> {
        &self.exec_failures
    }

    /// Records a counted failure of task `index` on `executor_id`/`host` at `now`, and applies
    /// the task-, executor- and node-level limits.
    pub fn update_for_failed_task(
        &mut self,
        host: &str,
        executor_id: &str,
        index: usize,
        reason: &str,
        now: u64,
    ) {
        self.latest_failure_reason = Some(reason.to_string());
        let failures = self
            .exec_failures
            .entry(executor_id.to_string())
            .or_insert_with(|| ExecutorFailuresInTaskSet::new(host));
        failures.record(index, now);
        let distinct_failed = failures.distinct_tasks_failed();

        let execs_on_node = self
            .node_execs_with_failures
            .entry(host.to_string())
            .or_default();
        execs_on_node.insert(executor_id.to_string());
        // Attempts, not executors, are counted: jobs abort on attempts, so a limit in attempts is
        // what lets a user make sure another node is tried before the job gives up.
        let failures_on_node: u32 = execs_on_node
            .iter()
            .filter_map(|e| self.exec_failures.get(e))
            .map(|f| f.failures_of(index))
            .sum();
        if failures_on_node >= self.config.max_task_attempts_per_node {
            self.node_excluded_tasks
                .entry(host.to_string())
                .or_default()
                .insert(index);
        }

        if distinct_failed >= self.config.max_failed_tasks_per_executor_stage as usize
            && self.excluded_executors.insert(executor_id.to_string())
        {
            info!(
                "Excluding executor {executor_id} for stage {}.{} after {distinct_failed} failed \
                 tasks",
                self.stage_id, self.stage_attempt_id
            );
            let excluded_on_node = execs_on_node
                .iter()
                .filter(|e| self.excluded_executors.contains(*e))
                .count();
            if excluded_on_node >= self.config.max_failed_executors_per_node_stage as usize
                && self.excluded_nodes.insert(host.to_string())
            {
                info!(
                    "Excluding node {host} for stage {}.{}: {excluded_on_node} of its executors \
                     are excluded",
                    self.stage_id, self.stage_attempt_id
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> TaskSetExcludelist {
        TaskSetExcludelist::new(ExcludeOnFailureConfig::default(), 1, 0)
    }

    #[test]
    fn one_failure_excludes_the_task_on_its_executor_only() {
        let mut l = list();
        l.update_for_failed_task("h1", "1", 0, "boom", 10);
        assert!(l.is_executor_excluded_for_task("1", 0));
        assert!(!l.is_executor_excluded_for_task("1", 1));
        assert!(!l.is_executor_excluded_for_task("2", 0));
        assert!(
            !l.is_node_excluded_for_task("h1", 0),
            "one attempt on the node is below maxTaskAttemptsPerNode"
        );
        assert!(!l.is_executor_excluded_for_task_set("1"));
        assert_eq!(l.latest_failure_reason(), Some("boom"));
        assert_eq!(l.exec_failures()["1"].task_failures[&0], (1, 10));
    }

    #[test]
    fn two_attempts_on_one_node_exclude_the_task_on_the_node() {
        let mut l = list();
        l.update_for_failed_task("h1", "1", 3, "a", 1);
        l.update_for_failed_task("h1", "2", 3, "b", 2);
        assert!(l.is_node_excluded_for_task("h1", 3));
        assert!(!l.is_node_excluded_for_task("h2", 3));
        assert!(!l.is_node_excluded_for_task("h1", 4));
        // Each executor had one distinct failed task: neither is excluded for the stage.
        assert!(
            !l.is_executor_excluded_for_task_set("1") && !l.is_executor_excluded_for_task_set("2")
        );
    }

    #[test]
    fn executor_then_node_excluded_for_the_stage() {
        let mut l = list();
        l.update_for_failed_task("h1", "1", 0, "x", 1);
        assert!(!l.is_executor_excluded_for_task_set("1"));
        l.update_for_failed_task("h1", "1", 1, "x", 2);
        assert!(
            l.is_executor_excluded_for_task_set("1"),
            "two distinct tasks failed there"
        );
        assert!(
            !l.is_node_excluded_for_task_set("h1"),
            "one excluded executor on h1"
        );
        l.update_for_failed_task("h1", "2", 2, "x", 3);
        l.update_for_failed_task("h1", "2", 4, "x", 4);
        assert!(l.is_executor_excluded_for_task_set("2"));
        assert!(
            l.is_node_excluded_for_task_set("h1"),
            "two excluded executors on h1"
        );
        assert_eq!(l.excluded_executors().collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn the_same_task_failing_twice_is_one_distinct_task() {
        let config = ExcludeOnFailureConfig {
            max_task_attempts_per_executor: 3,
            ..ExcludeOnFailureConfig::default()
        };
        let mut l = TaskSetExcludelist::new(config, 0, 0);
        l.update_for_failed_task("h", "1", 0, "x", 1);
        l.update_for_failed_task("h", "1", 0, "x", 5);
        assert!(
            !l.is_executor_excluded_for_task("1", 0),
            "2 < maxTaskAttemptsPerExecutor 3"
        );
        assert!(!l.is_executor_excluded_for_task_set("1"));
        assert_eq!(l.exec_failures()["1"].task_failures[&0], (2, 5));
    }
}
