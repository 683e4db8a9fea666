//! `HealthTracker`: application-wide exclusion of executors and nodes whose tasks keep failing
//! (Spark's `HealthTracker`, the `excludeOnFailure` feature), with an expiry on the injected
//! clock.
//!
//! The tracker only hears about failures of task sets that succeeded: a stage that fails as a
//! whole more likely has bad code than a bad executor. Within a running task set,
//! [`crate::task_set_excludelist::TaskSetExcludelist`] does the finer-grained work.
//! Like the rest of the scheduler core it is a plain state machine: time is passed in, and maps
//! are ordered so that everything it reports is repeatable.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use ember_common::{ExecutorId, StageId};

use crate::config::ExcludeOnFailureConfig;
use crate::task_set_excludelist::ExecutorFailuresInTaskSet;

/// An executor excluded for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExcludedExecutor {
    node: String,
    expiry_ms: u64,
}

/// Application-level exclusion. See the module documentation.
#[derive(Debug)]
pub struct HealthTracker {
    config: ExcludeOnFailureConfig,
    /// When each counted failure (one per task of a successful task set) expires, per executor.
    /// An executor's entry goes once it is excluded, so this stays small.
    executor_failures: BTreeMap<ExecutorId, Vec<u64>>,
    excluded_executors: BTreeMap<ExecutorId, ExcludedExecutor>,
    /// Node → expiry of its exclusion.
    excluded_nodes: BTreeMap<String, u64>,
    /// Executors excluded on each node, kept after they are lost so that successive bad
    /// executors of one node add up to excluding the node; cleared as their exclusions expire.
    node_excluded_executors: BTreeMap<String, BTreeSet<ExecutorId>>,
    /// The earliest expiry of any exclusion (`u64::MAX` when none): a quick test that there is
    /// nothing to expire.
    next_expiry_ms: u64,
}

impl HealthTracker {
    /// A tracker with nothing excluded.
    pub fn new(config: ExcludeOnFailureConfig) -> Self {
        HealthTracker {
            config,
            executor_failures: BTreeMap::new(),
            excluded_executors: BTreeMap::new(),
            excluded_nodes: BTreeMap::new(),
            node_excluded_executors: BTreeMap::new(),
            next_expiry_ms: u64::MAX,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ExcludeOnFailureConfig {
        &self.config
    }

    /// Whether the executor is excluded for the application.
    pub fn is_executor_excluded(&self, executor_id: &str) -> bool {
        self.excluded_executors.contains_key(executor_id)
    }

    /// Whether the node is excluded for the application.
    pub fn is_node_excluded(&self, host: &str) -> bool {
        self.excluded_nodes.contains_key(host)
    }

    /// The excluded executors, in id order.
    pub fn excluded_executors(&self) -> Vec<ExecutorId> {
        self.excluded_executors.keys().cloned().collect()
    }

    /// The excluded nodes, in name order.
    pub fn excluded_nodes(&self) -> Vec<String> {
        self.excluded_nodes.keys().cloned().collect()
    }

    /// When the next exclusion ends, if any: an exclusion ending at `t` is lifted by the first
    /// [`Self::apply_timeout`] after `t`.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        (self.next_expiry_ms != u64::MAX).then(|| self.next_expiry_ms.saturating_add(1))
    }

    /// Lifts the exclusions that have lasted `ember.excludeOnFailure.timeout`. Called before
    /// every offer round, so that no timer thread is needed.
    pub fn apply_timeout(&mut self, now: u64) {
        if now <= self.next_expiry_ms {
            return;
        }
        let expired: Vec<ExecutorId> = self
            .excluded_executors
            .iter()
            .filter(|(_, e)| e.expiry_ms < now)
            .map(|(id, _)| id.clone())
            .collect();
        if !expired.is_empty() {
            info!(
                "Removing executors {expired:?} from the exclude list: their exclusion timed out"
            );
        }
        for id in expired {
            if let Some(status) = self.excluded_executors.remove(&id) {
                if let Some(on_node) = self.node_excluded_executors.get_mut(&status.node) {
                    on_node.remove(&id);
                    if on_node.is_empty() {
                        self.node_excluded_executors.remove(&status.node);
                    }
                }
            }
        }
        let expired_nodes: Vec<String> = self
            .excluded_nodes
            .iter()
            .filter(|(_, e)| **e < now)
            .map(|(n, _)| n.clone())
            .collect();
        if !expired_nodes.is_empty() {
            info!(
                "Removing nodes {expired_nodes:?} from the exclude list: their exclusion timed out"
            );
        }
        for node in expired_nodes {
            self.excluded_nodes.remove(&node);
        }
        self.update_next_expiry();
    }

    fn update_next_expiry(&mut self) {
        let execs = self.excluded_executors.values().map(|e| e.expiry_ms);
        let nodes = self.excluded_nodes.values().copied();
        self.next_expiry_ms = execs.chain(nodes).min().unwrap_or(u64::MAX);
    }

    /// Adds the failures of a task set that succeeded to the application's counts, and excludes
    /// the executors (and then nodes) that reach the application limits, until
    /// `now + ember.excludeOnFailure.timeout`. Returns what it newly excluded, executors and
    /// nodes, for `ember.excludeOnFailure.killExcludedExecutors`.
    pub fn update_for_successful_task_set(
        &mut self,
        stage_id: StageId,
        stage_attempt_id: u32,
        failures_by_executor: &BTreeMap<ExecutorId, ExecutorFailuresInTaskSet>,
        now: u64,
    ) -> (Vec<ExecutorId>, Vec<String>) {
        let mut newly_excluded = (Vec::new(), Vec::new());
        let timeout = self.config.timeout_ms;
        for (exec, in_task_set) in failures_by_executor {
            let list = self.executor_failures.entry(exec.clone()).or_default();
            // One entry per failed task, however often it failed there.
            list.extend(
                in_task_set
                    .task_failures
                    .values()
                    .map(|&(_, failed_at)| failed_at.saturating_add(timeout)),
            );
            // Failures far apart in time say little about the executor: each is forgotten after
            // the timeout.
            list.retain(|expiry| *expiry >= now);
            let total = list.len();
            if total < self.config.max_failed_tasks_per_executor as usize
                || self.excluded_executors.contains_key(exec)
            {
                continue;
            }
            info!(
                "Excluding executor {exec} because it has {total} task failures in successful \
                 task sets (the latest in stage {stage_id}.{stage_attempt_id})"
            );
            let expiry_ms = now.saturating_add(timeout);
            let node = in_task_set.node.clone();
            self.excluded_executors.insert(
                exec.clone(),
                ExcludedExecutor {
                    node: node.clone(),
                    expiry_ms,
                },
            );
            newly_excluded.0.push(exec.clone());
            self.executor_failures.remove(exec);
            self.update_next_expiry();

            let on_node = self
                .node_excluded_executors
                .entry(node.clone())
                .or_default();
            on_node.insert(exec.clone());
            let excluded_on_node = on_node.len();
            // An already excluded node keeps its earlier expiry.
            if excluded_on_node >= self.config.max_failed_executors_per_node as usize
                && !self.excluded_nodes.contains_key(&node)
            {
                info!(
                    "Excluding node {node} because it has {excluded_on_node} executors excluded: \
                     {on_node:?}"
                );
                self.excluded_nodes.insert(node.clone(), expiry_ms);
                newly_excluded.1.push(node);
                self.update_next_expiry();
            }
        }
        newly_excluded
    }

    /// Forgets the failures of an executor that is gone. Its exclusion (if any) stays until it
    /// expires, so that a node whose executors keep failing is still noticed.
    pub fn handle_removed_executor(&mut self, executor_id: &str) {
        self.executor_failures.remove(executor_id);
    }

    /// Counted failures remembered for an executor (not yet excluded, not expired at the last
    /// update).
    pub fn failures_of(&self, executor_id: &str) -> usize {
        self.executor_failures.get(executor_id).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_set_excludelist::TaskSetExcludelist;

    /// The failures of a task set in which `failures` (executor, host, task index, time) happened.
    fn task_set_failures(
        failures: &[(&str, &str, usize, u64)],
    ) -> BTreeMap<ExecutorId, ExecutorFailuresInTaskSet> {
        let mut l = TaskSetExcludelist::new(ExcludeOnFailureConfig::default(), 0, 0);
        for (e, h, i, t) in failures {
            l.update_for_failed_task(h, e, *i, "boom", *t);
        }
        l.exec_failures().clone()
    }

    fn tracker(timeout_ms: u64) -> HealthTracker {
        HealthTracker::new(ExcludeOnFailureConfig {
            timeout_ms,
            ..ExcludeOnFailureConfig::default()
        })
    }

    #[test]
    fn two_failures_in_successful_task_sets_exclude_an_executor_until_the_timeout() {
        let mut t = tracker(1000);
        t.update_for_successful_task_set(0, 0, &task_set_failures(&[("1", "h1", 0, 10)]), 20);
        assert!(
            !t.is_executor_excluded("1"),
            "one failure is below the limit of 2"
        );
        assert_eq!(t.failures_of("1"), 1);
        // A failure of another stage adds up.
        t.update_for_successful_task_set(1, 0, &task_set_failures(&[("1", "h1", 4, 30)]), 40);
        assert!(t.is_executor_excluded("1"));
        assert_eq!(t.excluded_executors(), ["1"]);
        assert!(!t.is_node_excluded("h1"), "one excluded executor on h1");
        assert_eq!(
            t.failures_of("1"),
            0,
            "the counts of an excluded executor are dropped"
        );
        // Excluded from 40 until 1040; lifted by the first check after that.
        assert_eq!(t.next_expiry_ms(), Some(1041));
        t.apply_timeout(1040);
        assert!(t.is_executor_excluded("1"));
        t.apply_timeout(1041);
        assert!(!t.is_executor_excluded("1"));
        assert!(t.excluded_executors().is_empty());
        assert_eq!(t.next_expiry_ms(), None);
    }

    #[test]
    fn two_failures_of_one_task_set_exclude_at_once() {
        let mut t = tracker(1000);
        t.update_for_successful_task_set(
            0,
            0,
            &task_set_failures(&[("1", "h1", 0, 1), ("1", "h1", 1, 2)]),
            3,
        );
        assert!(t.is_executor_excluded("1"));
        assert!(!t.is_executor_excluded("2"));
    }

    #[test]
    fn old_failures_expire_before_they_add_up() {
        let mut t = tracker(100);
        t.update_for_successful_task_set(0, 0, &task_set_failures(&[("1", "h1", 0, 0)]), 0);
        // The first failure expired at 100: the second one alone is below the limit.
        t.update_for_successful_task_set(1, 0, &task_set_failures(&[("1", "h1", 0, 150)]), 150);
        assert!(!t.is_executor_excluded("1"));
        assert_eq!(t.failures_of("1"), 1);
    }

    #[test]
    fn two_excluded_executors_exclude_their_node_and_both_expire() {
        let mut t = tracker(1000);
        let both = task_set_failures(&[
            ("1", "h1", 0, 1),
            ("1", "h1", 1, 1),
            ("2", "h1", 2, 1),
            ("2", "h1", 3, 1),
        ]);
        let newly = t.update_for_successful_task_set(0, 0, &both, 5);
        assert_eq!(
            newly,
            (
                vec!["1".to_string(), "2".to_string()],
                vec!["h1".to_string()]
            )
        );
        assert_eq!(t.excluded_executors(), ["1", "2"]);
        assert!(t.is_node_excluded("h1"));
        assert_eq!(t.excluded_nodes(), ["h1"]);
        // A lost executor stays excluded until its timeout.
        t.handle_removed_executor("1");
        assert!(t.is_executor_excluded("1"));
        t.apply_timeout(1006);
        assert!(!t.is_node_excluded("h1") && t.excluded_executors().is_empty());
    }

    #[test]
    fn failures_of_removed_executors_are_forgotten() {
        let mut t = tracker(1000);
        t.update_for_successful_task_set(0, 0, &task_set_failures(&[("1", "h1", 0, 1)]), 2);
        t.handle_removed_executor("1");
        t.update_for_successful_task_set(1, 0, &task_set_failures(&[("1", "h1", 0, 3)]), 4);
        assert!(!t.is_executor_excluded("1"));
    }
}
