//! The scheduler core's typed configuration. `ember` fills these structs from its `ember.*`
//! keys (and from `fairscheduler.xml` for the pools); the core never sees a key or a file.

use crate::locality::LocalityWaits;
use crate::pool::{PoolConfig, SchedulingMode};

/// Settings of speculative execution (`ember.speculation.*`, Spark's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpeculationConfig {
    /// How often stragglers are looked for (`ember.speculation.interval`).
    pub interval_ms: u64,
    /// How many times the median successful duration a task must run to be speculated
    /// (`ember.speculation.multiplier`).
    pub multiplier: f64,
    /// Fraction of a task set that must have succeeded first (`ember.speculation.quantile`).
    pub quantile: f64,
    /// Least running time of a speculated task (`ember.speculation.minTaskRuntime`).
    pub min_task_runtime_ms: u64,
    /// A task running longer than this is speculated even before `quantile` of its task set
    /// succeeded, when the task set has no more tasks than one executor has slots
    /// (`ember.speculation.task.duration.threshold`, SPARK-29976; unset or 0: never).
    pub task_duration_threshold_ms: Option<u64>,
    /// Tasks one executor runs at once (executor cores / `ember.task.cpus`, at least 1; 1 when
    /// the executors' cores are not known in advance, as Spark's SPARK-30417).
    pub executor_slots: u32,
}

impl Default for SpeculationConfig {
    /// Spark 4's defaults: a task is speculated once 90% of its task set succeeded and it has
    /// run 3 times the median.
    fn default() -> Self {
        SpeculationConfig {
            interval_ms: 100,
            multiplier: 3.0,
            quantile: 0.9,
            min_task_runtime_ms: 100,
            task_duration_threshold_ms: None,
            executor_slots: 1,
        }
    }
}

/// Settings of the task scheduler.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// How the root pool orders task sets (`ember.scheduler.mode`).
    pub mode: SchedulingMode,
    /// FAIR pools (`ember.scheduler.allocation.file`); a `default` pool is added if missing.
    pub pools: Vec<PoolConfig>,
    /// Cores each task occupies (`ember.task.cpus`).
    pub task_cpus: u32,
    /// Failures of one task before its task set is aborted (`ember.task.maxFailures`, or the
    /// master URL's value in local mode).
    pub max_task_failures: u32,
    /// Delay-scheduling wait at PROCESS_LOCAL (`ember.locality.wait.process`, defaulting to
    /// `ember.locality.wait`).
    pub locality_wait_process_ms: u64,
    /// Wait at NODE_LOCAL (`ember.locality.wait.node`, defaulting to `ember.locality.wait`).
    pub locality_wait_node_ms: u64,
    /// Wait at RACK_LOCAL (`ember.locality.wait.rack`, defaulting to `ember.locality.wait`).
    pub locality_wait_rack_ms: u64,
    /// Spark's delay scheduling before 3.1 (`ember.locality.wait.legacyResetOnTaskLaunch`): every
    /// launch restarts the locality wait, even while other executors sit idle.
    pub legacy_locality_wait_reset: bool,
    /// Speculative execution, when on.
    pub speculation: Option<SpeculationConfig>,
    /// `excludeOnFailure`, when on.
    pub exclude_on_failure: Option<ExcludeOnFailureConfig>,
    /// How often to warn that the first task set has launched nothing
    /// (`ember.starvation.timeout`); `None` in local mode, where the executor is always there.
    pub starvation_timeout_ms: Option<u64>,
}

impl Default for SchedulerConfig {
    /// Spark's defaults: FIFO, 1 core per task, 4 failures, 3 s at every locality level, no
    /// speculation, no exclusion.
    fn default() -> Self {
        SchedulerConfig {
            mode: SchedulingMode::Fifo,
            pools: Vec::new(),
            task_cpus: 1,
            max_task_failures: 4,
            locality_wait_process_ms: 3000,
            locality_wait_node_ms: 3000,
            locality_wait_rack_ms: 3000,
            legacy_locality_wait_reset: false,
            speculation: None,
            exclude_on_failure: None,
            starvation_timeout_ms: Some(15_000),
        }
    }
}

impl SchedulerConfig {
    /// The delay-scheduling waits.
    pub fn locality_waits(&self) -> LocalityWaits {
        LocalityWaits {
            process_ms: self.locality_wait_process_ms,
            node_ms: self.locality_wait_node_ms,
            rack_ms: self.locality_wait_rack_ms,
        }
    }

    /// What each task set manager is given.
    pub fn manager_config(&self) -> TaskSetManagerConfig {
        let speculation = self.speculation.unwrap_or_default();
        TaskSetManagerConfig {
            max_task_failures: self.max_task_failures,
            task_cpus: self.task_cpus,
            locality_waits: self.locality_waits(),
            legacy_locality_wait_reset: self.legacy_locality_wait_reset,
            speculation_multiplier: speculation.multiplier,
            speculation_quantile: speculation.quantile,
            speculation_task_duration_threshold_ms: speculation.task_duration_threshold_ms,
            speculation_executor_slots: speculation.executor_slots,
            exclude_on_failure: self.exclude_on_failure,
        }
    }
}

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
    /// How long a task set whose task is excluded on every executor waits for a new executor
    /// before it is aborted (`ember.scheduler.excludeOnFailure.unschedulableTaskSetTimeout`).
    pub unschedulable_task_set_timeout_ms: u64,
    /// Kill executors (and every executor of nodes) when they are excluded for the
    /// application, so that they are replaced (`ember.excludeOnFailure.killExcludedExecutors`).
    pub kill_excluded_executors: bool,
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
            unschedulable_task_set_timeout_ms: 120_000,
            kill_excluded_executors: false,
        }
    }
}

/// Settings of a task set manager, from the scheduler's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskSetManagerConfig {
    /// Failures of one task (counted per index) after which the task set is aborted.
    pub max_task_failures: u32,
    /// Cores each task occupies (`ember.task.cpus`).
    pub task_cpus: u32,
    /// Delay-scheduling waits per level.
    pub locality_waits: LocalityWaits,
    /// Restart the locality wait on every launch (`ember.locality.wait.legacyResetOnTaskLaunch`).
    pub legacy_locality_wait_reset: bool,
    /// A running task is speculated when it has run this many times the median duration of the
    /// successful ones (`ember.speculation.multiplier`).
    pub speculation_multiplier: f64,
    /// Fraction of the tasks that must have succeeded before any is speculated
    /// (`ember.speculation.quantile`).
    pub speculation_quantile: f64,
    /// `ember.speculation.task.duration.threshold` (see [`SpeculationConfig`]).
    pub speculation_task_duration_threshold_ms: Option<u64>,
    /// Tasks one executor runs at once (see [`SpeculationConfig`]).
    pub speculation_executor_slots: u32,
    /// `excludeOnFailure` settings when it is enabled.
    pub exclude_on_failure: Option<ExcludeOnFailureConfig>,
}

impl Default for TaskSetManagerConfig {
    fn default() -> Self {
        TaskSetManagerConfig {
            max_task_failures: 4,
            task_cpus: 1,
            locality_waits: LocalityWaits::default(),
            legacy_locality_wait_reset: false,
            speculation_multiplier: 3.0,
            speculation_quantile: 0.9,
            speculation_task_duration_threshold_ms: None,
            speculation_executor_slots: 1,
            exclude_on_failure: None,
        }
    }
}
