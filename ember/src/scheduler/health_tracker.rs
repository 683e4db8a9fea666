//! `HealthTracker`: application-wide exclusion of executors and nodes whose tasks keep failing
//! (Spark's `HealthTracker`, the `excludeOnFailure` feature), with an expiry on the injected
//! clock.
//!
//! The tracker only hears about failures of task sets that succeeded: a stage that fails as a
//! whole more likely has bad code than a bad executor. Within a running task set,
//! [`crate::scheduler::task_set_excludelist::TaskSetExcludelist`] does the finer-grained work.
//! Like the rest of the scheduler core it is a plain state machine: time is passed in, and maps
//! are ordered so that everything it reports is repeatable.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use crate::conf::{
    self, EmberConf, EXCLUDE_ON_FAILURE_ENABLED, EXCLUDE_ON_FAILURE_TIMEOUT, MAX_FAILED_EXEC_PER_NODE,
    MAX_FAILED_EXEC_PER_NODE_STAGE, MAX_FAILURES_PER_EXEC, MAX_FAILURES_PER_EXEC_STAGE, MAX_TASK_ATTEMPTS_PER_EXECUTOR,
    MAX_TASK_ATTEMPTS_PER_NODE,
};
use crate::error::{EmberError, Result};
use crate::scheduler::task_set_excludelist::ExecutorFailuresInTaskSet;
use crate::task::{ExecutorId, StageId};

/// The `ember.excludeOnFailure.*` settings (Spark's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExcludeOnFailureConfig {
    /// How long an application-level exclusion lasts, and how long a counted failure is
    /// remembered (`ember.excludeOnFailure.timeout`).
    pub timeout_ms: u64,
    /// `ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor`.
    pub max_task_attempts_per_executor: u32,
    /// `ember.excludeOnFailure.task.maxTaskAttemptsPerNode`.
    pub max_task_attempts_per_node: u32,
    /// `ember.excludeOnFailure.stage.maxFailedTasksPerExecutor`.
    pub max_failed_tasks_per_executor_stage: u32,
    /// `ember.excludeOnFailure.stage.maxFailedExecutorsPerNode`.
    pub max_failed_executors_per_node_stage: u32,
    /// `ember.excludeOnFailure.application.maxFailedTasksPerExecutor`.
    pub max_failed_tasks_per_executor: u32,
    /// `ember.excludeOnFailure.application.maxFailedExecutorsPerNode`.
    pub max_failed_executors_per_node: u32,
}

impl Default for ExcludeOnFailureConfig {
    fn default() -> Self {
        ExcludeOnFailureConfig {
            timeout_ms: 3_600_000,
            max_task_attempts_per_executor: 1,
            max_task_attempts_per_node: 2,
            max_failed_tasks_per_executor_stage: 2,
            max_failed_executors_per_node_stage: 2,
            max_failed_tasks_per_executor: 2,
            max_failed_executors_per_node: 2,
        }
    }
}

impl ExcludeOnFailureConfig {
    /// The settings when `ember.excludeOnFailure.enabled` is true, `None` otherwise; checked as
    /// Spark checks them (see [`Self::validate`]) against `ember.task.maxFailures`.
    pub fn from_conf(conf: &EmberConf) -> Result<Option<Self>> {
        if !conf.get_bool(EXCLUDE_ON_FAILURE_ENABLED)? {
            return Ok(None);
        }
        let count = |key: &str| -> Result<u32> {
            let v = conf.get_u64(key)?;
            u32::try_from(v).map_err(|_| EmberError::Config {
                key: key.to_string(),
                value: v.to_string(),
                reason: "too large".to_string(),
            })
        };
        let config = ExcludeOnFailureConfig {
            timeout_ms: conf.get_time_ms(EXCLUDE_ON_FAILURE_TIMEOUT)?,
            max_task_attempts_per_executor: count(MAX_TASK_ATTEMPTS_PER_EXECUTOR)?,
            max_task_attempts_per_node: count(MAX_TASK_ATTEMPTS_PER_NODE)?,
            max_failed_tasks_per_executor_stage: count(MAX_FAILURES_PER_EXEC_STAGE)?,
            max_failed_executors_per_node_stage: count(MAX_FAILED_EXEC_PER_NODE_STAGE)?,
            max_failed_tasks_per_executor: count(MAX_FAILURES_PER_EXEC)?,
            max_failed_executors_per_node: count(MAX_FAILED_EXEC_PER_NODE)?,
        };
        let max_task_failures = conf.get_u64(conf::TASK_MAX_FAILURES)?;
        config.validate(max_task_failures)?;
        Ok(Some(config))
    }

    /// Every limit and the timeout must be positive, and a task must be able to fail on a node
    /// (and on an executor) fewer times than it may fail in all: otherwise one bad node could use
    /// up every attempt of a task and fail the job, which is what exclusion is there to prevent.
    pub fn validate(&self, max_task_failures: u64) -> Result<()> {
        let limits = [
            (MAX_TASK_ATTEMPTS_PER_EXECUTOR, self.max_task_attempts_per_executor),
            (MAX_TASK_ATTEMPTS_PER_NODE, self.max_task_attempts_per_node),
            (MAX_FAILURES_PER_EXEC_STAGE, self.max_failed_tasks_per_executor_stage),
            (MAX_FAILED_EXEC_PER_NODE_STAGE, self.max_failed_executors_per_node_stage),
            (MAX_FAILURES_PER_EXEC, self.max_failed_tasks_per_executor),
            (MAX_FAILED_EXEC_PER_NODE, self.max_failed_executors_per_node),
        ];
        for (key, v) in limits {
            if v == 0 {
                return Err(EmberError::Config {
                    key: key.to_string(),
                    value: "0".to_string(),
                    reason: "must be positive when ember.excludeOnFailure.enabled is true".to_string(),
                });
            }
        }
        if self.timeout_ms == 0 {
            return Err(EmberError::Config {
                key: EXCLUDE_ON_FAILURE_TIMEOUT.to_string(),
                value: "0".to_string(),
                reason: "must be positive when ember.excludeOnFailure.enabled is true".to_string(),
            });
        }
        for (key, v) in [
            (MAX_TASK_ATTEMPTS_PER_NODE, self.max_task_attempts_per_node),
            (MAX_TASK_ATTEMPTS_PER_EXECUTOR, self.max_task_attempts_per_executor),
        ] {
            if u64::from(v) >= max_task_failures {
                return Err(EmberError::Config {
                    key: key.to_string(),
                    value: v.to_string(),
                    reason: format!(
                        "must be less than {} (= {max_task_failures}): with {EXCLUDE_ON_FAILURE_ENABLED} on, one bad \
                         node could still use up every attempt of a task. Decrease {key}, increase {}, or disable {}",
                        conf::TASK_MAX_FAILURES,
                        conf::TASK_MAX_FAILURES,
                        EXCLUDE_ON_FAILURE_ENABLED
                    ),
                });
            }
        }
        Ok(())
    }
}

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
        let expired: Vec<ExecutorId> =
            self.excluded_executors.iter().filter(|(_, e)| e.expiry_ms < now).map(|(id, _)| id.clone()).collect();
        if !expired.is_empty() {
            info!("Removing executors {expired:?} from the exclude list: their exclusion timed out");
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
        let expired_nodes: Vec<String> =
            self.excluded_nodes.iter().filter(|(_, e)| **e < now).map(|(n, _)| n.clone()).collect();
        if !expired_nodes.is_empty() {
            info!("Removing nodes {expired_nodes:?} from the exclude list: their exclusion timed out");
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
    /// `now + ember.excludeOnFailure.timeout`.
    pub fn update_for_successful_task_set(
        &mut self,
        stage_id: StageId,
        stage_attempt_id: u32,
        failures_by_executor: &BTreeMap<ExecutorId, ExecutorFailuresInTaskSet>,
        now: u64,
    ) {
        let timeout = self.config.timeout_ms;
        for (exec, in_task_set) in failures_by_executor {
            let list = self.executor_failures.entry(exec.clone()).or_default();
            // One entry per failed task, however often it failed there.
            list.extend(in_task_set.task_failures.values().map(|&(_, failed_at)| failed_at.saturating_add(timeout)));
            // Failures far apart in time say little about the executor: each is forgotten after
            // the timeout.
            list.retain(|expiry| *expiry >= now);
            let total = list.len();
            if total < self.config.max_failed_tasks_per_executor as usize || self.excluded_executors.contains_key(exec) {
                continue;
            }
            info!(
                "Excluding executor {exec} because it has {total} task failures in successful task sets (the latest \
                 in stage {stage_id}.{stage_attempt_id})"
            );
            let expiry_ms = now.saturating_add(timeout);
            let node = in_task_set.node.clone();
            self.excluded_executors.insert(exec.clone(), ExcludedExecutor { node: node.clone(), expiry_ms });
            self.executor_failures.remove(exec);
            self.update_next_expiry();

            let on_node = self.node_excluded_executors.entry(node.clone()).or_default();
            on_node.insert(exec.clone());
            let excluded_on_node = on_node.len();
            // An already excluded node keeps its earlier expiry.
            if excluded_on_node >= self.config.max_failed_executors_per_node as usize
                && !self.excluded_nodes.contains_key(&node)
            {
                info!("Excluding node {node} because it has {excluded_on_node} executors excluded: {on_node:?}");
                self.excluded_nodes.insert(node, expiry_ms);
                self.update_next_expiry();
            }
        }
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
    use crate::scheduler::task_set_excludelist::TaskSetExcludelist;

    /// The failures of a task set in which `failures` (executor, host, task index, time) happened.
    fn task_set_failures(failures: &[(&str, &str, usize, u64)]) -> BTreeMap<ExecutorId, ExecutorFailuresInTaskSet> {
        let mut l = TaskSetExcludelist::new(ExcludeOnFailureConfig::default(), 0, 0);
        for (e, h, i, t) in failures {
            l.update_for_failed_task(h, e, *i, "boom", *t);
        }
        l.exec_failures().clone()
    }

    fn tracker(timeout_ms: u64) -> HealthTracker {
        HealthTracker::new(ExcludeOnFailureConfig { timeout_ms, ..ExcludeOnFailureConfig::default() })
    }

    #[test]
    fn two_failures_in_successful_task_sets_exclude_an_executor_until_the_timeout() {
        let mut t = tracker(1000);
        t.update_for_successful_task_set(0, 0, &task_set_failures(&[("1", "h1", 0, 10)]), 20);
        assert!(!t.is_executor_excluded("1"), "one failure is below the limit of 2");
        assert_eq!(t.failures_of("1"), 1);
        // A failure of another stage adds up.
        t.update_for_successful_task_set(1, 0, &task_set_failures(&[("1", "h1", 4, 30)]), 40);
        assert!(t.is_executor_excluded("1"));
        assert_eq!(t.excluded_executors(), ["1"]);
        assert!(!t.is_node_excluded("h1"), "one excluded executor on h1");
        assert_eq!(t.failures_of("1"), 0, "the counts of an excluded executor are dropped");
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
        t.update_for_successful_task_set(0, 0, &task_set_failures(&[("1", "h1", 0, 1), ("1", "h1", 1, 2)]), 3);
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
        let both = task_set_failures(&[("1", "h1", 0, 1), ("1", "h1", 1, 1), ("2", "h1", 2, 1), ("2", "h1", 3, 1)]);
        t.update_for_successful_task_set(0, 0, &both, 5);
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

    #[test]
    fn config_from_conf_validates_like_spark() {
        assert_eq!(ExcludeOnFailureConfig::from_conf(&EmberConf::new()).unwrap(), None);
        let on = EmberConf::new().set("ember.excludeOnFailure.enabled", "true");
        assert_eq!(ExcludeOnFailureConfig::from_conf(&on).unwrap(), Some(ExcludeOnFailureConfig::default()));
        let c = ExcludeOnFailureConfig::from_conf(&on.clone().set("ember.excludeOnFailure.timeout", "5min"))
            .unwrap()
            .unwrap();
        assert_eq!(c.timeout_ms, 300_000);

        let err = |conf: EmberConf| match ExcludeOnFailureConfig::from_conf(&conf).unwrap_err() {
            EmberError::Config { key, reason, .. } => (key, reason),
            e => panic!("unexpected {e:?}"),
        };
        let (key, reason) = err(on.clone().set("ember.task.maxFailures", "2"));
        assert_eq!(key, "ember.excludeOnFailure.task.maxTaskAttemptsPerNode");
        assert!(reason.contains("ember.task.maxFailures (= 2)") && reason.contains("ember.excludeOnFailure.enabled"), "{reason}");
        let (key, _) = err(on
            .clone()
            .set("ember.excludeOnFailure.task.maxTaskAttemptsPerNode", "1")
            .set("ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor", "5"));
        assert_eq!(key, "ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor");
        let (key, _) = err(on.clone().set("ember.excludeOnFailure.stage.maxFailedExecutorsPerNode", "0"));
        assert_eq!(key, "ember.excludeOnFailure.stage.maxFailedExecutorsPerNode");
        let (key, _) = err(on.clone().set("ember.excludeOnFailure.timeout", "0"));
        assert_eq!(key, "ember.excludeOnFailure.timeout");
        // Disabled: the limits are not checked.
        assert!(ExcludeOnFailureConfig::from_conf(&EmberConf::new().set("ember.task.maxFailures", "1")).unwrap().is_none());
    }
}
