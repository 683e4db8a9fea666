//! The executors the task scheduler knows to be alive (Spark's `executorIdToHost` and
//! `hostToExecutors` in `TaskSchedulerImpl`).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use ember_common::ExecutorId;

/// The executors the scheduler knows to be alive, by id and by host. Task set managers consult it
/// to decide which locality levels can be met at all.
#[derive(Clone, Debug, Default)]
pub struct LiveExecutors {
    host_of: FxHashMap<ExecutorId, String>,
    executors_on_host: FxHashMap<String, usize>,
}

impl LiveExecutors {
    /// No executors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an executor; whether it was new.
    pub fn add(&mut self, executor_id: &str, host: &str) -> bool {
        if self.host_of.contains_key(executor_id) {
            return false;
        }
        self.host_of
            .insert(executor_id.to_string(), host.to_string());
        *self.executors_on_host.entry(host.to_string()).or_insert(0) += 1;
        true
    }

    /// Forgets an executor; its host if it was known.
    pub fn remove(&mut self, executor_id: &str) -> Option<String> {
        let host = self.host_of.remove(executor_id)?;
        if let Some(n) = self.executors_on_host.get_mut(&host) {
            *n -= 1;
            if *n == 0 {
                self.executors_on_host.remove(&host);
            }
        }
        Some(host)
    }

    /// Whether the executor is alive.
    pub fn is_executor_alive(&self, executor_id: &str) -> bool {
        self.host_of.contains_key(executor_id)
    }

    /// Whether any executor is alive on the host.
    pub fn has_executors_alive_on_host(&self, host: &str) -> bool {
        self.executors_on_host.contains_key(host)
    }

    /// The host of a live executor.
    pub fn host_of(&self, executor_id: &str) -> Option<&str> {
        self.host_of.get(executor_id).map(String::as_str)
    }

    /// The live executors grouped by host, both in name order.
    pub fn executors_by_host(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (exec, host) in &self.host_of {
            by_host
                .entry(host.as_str())
                .or_default()
                .push(exec.as_str());
        }
        for execs in by_host.values_mut() {
            execs.sort_unstable();
        }
        by_host
    }

    /// How many executors are alive.
    pub fn len(&self) -> usize {
        self.host_of.len()
    }

    /// Whether no executor is alive.
    pub fn is_empty(&self) -> bool {
        self.host_of.is_empty()
    }
}
