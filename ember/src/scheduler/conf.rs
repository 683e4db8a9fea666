//! The scheduler core's configuration, read from `ember.*` keys: the core takes typed structs
//! ([`ember_scheduler::config`]) and never sees a key, so every key is parsed, checked and named
//! in errors here. The FAIR pools come from [`super::allocation_file`].

use tracing::warn;

use ember_scheduler::config::{ExcludeOnFailureConfig, SchedulerConfig, SpeculationConfig};
use ember_scheduler::pool::SchedulingMode;

use super::allocation_file::load_allocation_file;
use crate::conf::{
    self, EmberConf, EXCLUDE_ON_FAILURE_ENABLED, EXCLUDE_ON_FAILURE_TIMEOUT, LOCALITY_WAIT,
    LOCALITY_WAIT_LEGACY_RESET, LOCALITY_WAIT_NODE, LOCALITY_WAIT_PROCESS, LOCALITY_WAIT_RACK,
    MAX_FAILED_EXEC_PER_NODE, MAX_FAILED_EXEC_PER_NODE_STAGE, MAX_FAILURES_PER_EXEC,
    MAX_FAILURES_PER_EXEC_STAGE, MAX_TASK_ATTEMPTS_PER_EXECUTOR, MAX_TASK_ATTEMPTS_PER_NODE,
    SCHEDULER_ALLOCATION_FILE, SCHEDULER_MODE, SPECULATION, SPECULATION_INTERVAL,
    SPECULATION_MIN_TASK_RUNTIME, SPECULATION_MULTIPLIER, SPECULATION_QUANTILE, TASK_CPUS,
};
use crate::error::{EmberError, Result};

/// Parses `FIFO` or `FAIR`, in any case. The error names `ember.scheduler.mode`, the key this
/// value normally comes from.
pub fn scheduling_mode(value: &str) -> Result<SchedulingMode> {
    SchedulingMode::from_name(value).ok_or_else(|| EmberError::Config {
        key: SCHEDULER_MODE.to_string(),
        value: value.to_string(),
        reason: "expected FIFO or FAIR".to_string(),
    })
}

/// Reads the scheduler's keys. `max_task_failures` is passed in because it depends on the
/// master URL (`local[N,F]`), not only on `ember.task.maxFailures`.
///
/// In FAIR mode the allocation file, when set, is read now, so that a missing or malformed
/// file fails the context at start-up. In FIFO mode it is ignored, as in Spark.
pub fn scheduler_config(conf: &EmberConf, max_task_failures: u32) -> Result<SchedulerConfig> {
    let mode = scheduling_mode(conf.get(SCHEDULER_MODE))?;
    let file = conf.get(SCHEDULER_ALLOCATION_FILE).trim();
    let pools = match (mode, file.is_empty()) {
        (SchedulingMode::Fair, false) => load_allocation_file(file)?,
        (SchedulingMode::Fair, true) => {
            warn!(
                "Fair Scheduler configuration file not found so jobs will be scheduled in FIFO \
                 order. To use fair scheduling, set {SCHEDULER_ALLOCATION_FILE} to a file that \
                 configures the pools."
            );
            Vec::new()
        }
        (SchedulingMode::Fifo, _) => Vec::new(),
    };
    let task_cpus = conf.get_u64(TASK_CPUS)?;
    // At least 1 and at most 2^31-1 (the table's bound, applied by the getter).
    let task_cpus = u32::try_from(task_cpus)
        .map_err(|_| conf.bad(TASK_CPUS, conf.get(TASK_CPUS), "must fit in 32 bits"))?;
    if max_task_failures == 0 {
        return Err(EmberError::Config {
            key: conf::TASK_MAX_FAILURES.to_string(),
            value: "0".to_string(),
            reason: "must be at least 1".to_string(),
        });
    }
    let base = conf.get_time_ms(LOCALITY_WAIT)?;
    let wait = |key: &str| -> Result<u64> { Ok(conf.get_opt_time_ms(key)?.unwrap_or(base)) };
    Ok(SchedulerConfig {
        mode,
        pools,
        task_cpus,
        max_task_failures,
        locality_wait_process_ms: wait(LOCALITY_WAIT_PROCESS)?,
        locality_wait_node_ms: wait(LOCALITY_WAIT_NODE)?,
        locality_wait_rack_ms: wait(LOCALITY_WAIT_RACK)?,
        legacy_locality_wait_reset: conf.get_bool(LOCALITY_WAIT_LEGACY_RESET)?,
        speculation: speculation_config(conf)?,
        exclude_on_failure: exclude_on_failure_config(conf)?,
        starvation_timeout_ms: Some(conf.get_time_ms(conf::STARVATION_TIMEOUT)?.max(1)),
    })
}

/// The speculation settings when `ember.speculation` is true, `None` otherwise.
pub fn speculation_config(conf: &EmberConf) -> Result<Option<SpeculationConfig>> {
    if !conf.get_bool(SPECULATION)? {
        return Ok(None);
    }
    // Each within its bound (positive, not negative, a fraction): the getters apply the table's.
    let interval_ms = conf.get_time_ms(SPECULATION_INTERVAL)?;
    let multiplier = conf.get_f64(SPECULATION_MULTIPLIER)?;
    let quantile = conf.get_f64(SPECULATION_QUANTILE)?;
    let min_task_runtime_ms = conf.get_time_ms(SPECULATION_MIN_TASK_RUNTIME)?;
    let task_duration_threshold_ms =
        conf.get_opt_time_ms(conf::SPECULATION_TASK_DURATION_THRESHOLD)?;
    Ok(Some(SpeculationConfig {
        interval_ms,
        multiplier,
        quantile,
        min_task_runtime_ms,
        task_duration_threshold_ms,
        ..SpeculationConfig::default()
    }))
}

/// The `excludeOnFailure` settings when `ember.excludeOnFailure.enabled` is true, `None`
/// otherwise; checked as Spark checks them (see [`validate_exclude_on_failure`]) against
/// `ember.task.maxFailures`.
pub fn exclude_on_failure_config(conf: &EmberConf) -> Result<Option<ExcludeOnFailureConfig>> {
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
        unschedulable_task_set_timeout_ms: conf
            .get_time_ms(conf::UNSCHEDULABLE_TASK_SET_TIMEOUT)?,
        kill_excluded_executors: conf.get_bool(conf::KILL_EXCLUDED_EXECUTORS)?,
    };
    let max_task_failures = conf.get_u64(conf::TASK_MAX_FAILURES)?;
    validate_exclude_on_failure(&config, max_task_failures)?;
    Ok(Some(config))
}

/// Every limit and the timeout must be positive, and a task must be able to fail on a node (and
/// on an executor) fewer times than it may fail in all: otherwise one bad node could use up
/// every attempt of a task and fail the job, which is what exclusion is there to prevent.
pub fn validate_exclude_on_failure(
    config: &ExcludeOnFailureConfig,
    max_task_failures: u64,
) -> Result<()> {
    let limits = [
        (
            MAX_TASK_ATTEMPTS_PER_EXECUTOR,
            config.max_task_attempts_per_executor,
        ),
        (
            MAX_TASK_ATTEMPTS_PER_NODE,
            config.max_task_attempts_per_node,
        ),
        (
            MAX_FAILURES_PER_EXEC_STAGE,
            config.max_failed_tasks_per_executor_stage,
        ),
        (
            MAX_FAILED_EXEC_PER_NODE_STAGE,
            config.max_failed_executors_per_node_stage,
        ),
        (MAX_FAILURES_PER_EXEC, config.max_failed_tasks_per_executor),
        (
            MAX_FAILED_EXEC_PER_NODE,
            config.max_failed_executors_per_node,
        ),
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
    if config.timeout_ms == 0 {
        return Err(EmberError::Config {
            key: EXCLUDE_ON_FAILURE_TIMEOUT.to_string(),
            value: "0".to_string(),
            reason: "must be positive when ember.excludeOnFailure.enabled is true".to_string(),
        });
    }
    for (key, v) in [
        (
            MAX_TASK_ATTEMPTS_PER_NODE,
            config.max_task_attempts_per_node,
        ),
        (
            MAX_TASK_ATTEMPTS_PER_EXECUTOR,
            config.max_task_attempts_per_executor,
        ),
    ] {
        if u64::from(v) >= max_task_failures {
            return Err(EmberError::Config {
                key: key.to_string(),
                value: v.to_string(),
                reason: format!(
                    "must be less than {} (= {max_task_failures}): with \
                     {EXCLUDE_ON_FAILURE_ENABLED} on, one bad node could still use up every \
                     attempt of a task. Decrease {key}, increase {}, or disable {}",
                    conf::TASK_MAX_FAILURES,
                    conf::TASK_MAX_FAILURES,
                    EXCLUDE_ON_FAILURE_ENABLED
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_scheduler::pool::PoolConfig;

    #[test]
    fn config_from_conf() {
        let conf = EmberConf::new()
            .set("ember.scheduler.mode", "fair")
            .set("ember.task.cpus", "2")
            .set("ember.locality.wait", "1s")
            .set("ember.locality.wait.node", "0");
        let c = scheduler_config(&conf, 3).unwrap();
        assert_eq!(c.mode, SchedulingMode::Fair);
        assert_eq!((c.task_cpus, c.max_task_failures), (2, 3));
        assert_eq!(
            (
                c.locality_wait_process_ms,
                c.locality_wait_node_ms,
                c.locality_wait_rack_ms
            ),
            (1000, 0, 1000)
        );
        let d = scheduler_config(&EmberConf::new(), 4).unwrap();
        assert_eq!(d, SchedulerConfig::default());
        assert!(!d.legacy_locality_wait_reset);
        let legacy = EmberConf::new().set("ember.locality.wait.legacyResetOnTaskLaunch", "true");
        assert!(
            scheduler_config(&legacy, 4)
                .unwrap()
                .legacy_locality_wait_reset
        );

        let bad = |conf: EmberConf, key: &str| match scheduler_config(&conf, 4).unwrap_err() {
            EmberError::Config { key: k, .. } => assert_eq!(k, key),
            e => panic!("unexpected {e:?}"),
        };
        bad(
            EmberConf::new().set("ember.scheduler.mode", "round-robin"),
            "ember.scheduler.mode",
        );
        bad(
            EmberConf::new().set("ember.task.cpus", "0"),
            "ember.task.cpus",
        );
        bad(
            EmberConf::new().set("ember.locality.wait", "soon"),
            "ember.locality.wait",
        );
        bad(
            EmberConf::new().set("ember.locality.wait.legacyResetOnTaskLaunch", "maybe"),
            "ember.locality.wait.legacyResetOnTaskLaunch",
        );
        assert!(scheduler_config(&EmberConf::new(), 0).is_err());
    }

    #[test]
    fn config_reads_allocation_file_in_fair_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fair.xml");
        std::fs::write(
            &path,
            "<allocations><pool name='etl'><minShare>2</minShare></pool></allocations>",
        )
        .unwrap();
        let conf = EmberConf::new().set("ember.scheduler.mode", "FAIR").set(
            "ember.scheduler.allocation.file",
            path.display().to_string(),
        );
        let c = scheduler_config(&conf, 4).unwrap();
        assert_eq!(
            c.pools,
            vec![PoolConfig {
                min_share: 2,
                ..PoolConfig::new("etl")
            }]
        );
        // A missing file is an error naming it.
        let conf = conf.set(
            "ember.scheduler.allocation.file",
            dir.path().join("nope.xml").display().to_string(),
        );
        assert!(matches!(
            scheduler_config(&conf, 4),
            Err(EmberError::Io { path, .. }) if path.ends_with("nope.xml")
        ));
    }

    #[test]
    fn config_reads_speculation_and_exclusion() {
        let conf = EmberConf::new()
            .set("ember.speculation", "true")
            .set("ember.speculation.interval", "1s")
            .set("ember.speculation.multiplier", "2")
            .set("ember.speculation.quantile", "0.5")
            .set("ember.speculation.minTaskRuntime", "250ms")
            .set("ember.speculation.task.duration.threshold", "5s")
            .set("ember.excludeOnFailure.enabled", "true");
        let c = scheduler_config(&conf, 4).unwrap();
        assert_eq!(
            c.speculation,
            Some(SpeculationConfig {
                interval_ms: 1000,
                multiplier: 2.0,
                quantile: 0.5,
                min_task_runtime_ms: 250,
                task_duration_threshold_ms: Some(5000),
                executor_slots: 1,
            })
        );
        assert_eq!(
            c.exclude_on_failure,
            Some(ExcludeOnFailureConfig::default())
        );
        let on = EmberConf::new().set("ember.speculation", "true");
        // Spark 4's defaults: multiplier 3, quantile 0.9, minTaskRuntime 100 ms, no threshold.
        let defaults = scheduler_config(&on, 4).unwrap().speculation.unwrap();
        assert_eq!(defaults, SpeculationConfig::default());
        assert_eq!(
            (
                defaults.multiplier,
                defaults.quantile,
                defaults.min_task_runtime_ms
            ),
            (3.0, 0.9, 100)
        );
        assert_eq!(defaults.task_duration_threshold_ms, None);
        let bad = |conf: EmberConf, key: &str| match scheduler_config(&conf, 4).unwrap_err() {
            EmberError::Config { key: k, .. } => assert_eq!(k, key),
            e => panic!("unexpected {e:?}"),
        };
        bad(
            on.clone().set("ember.speculation.quantile", "1.5"),
            "ember.speculation.quantile",
        );
        bad(
            on.clone().set("ember.speculation.interval", "0"),
            "ember.speculation.interval",
        );
        bad(
            on.clone().set("ember.speculation.multiplier", "-1"),
            "ember.speculation.multiplier",
        );
        bad(
            on.set("ember.speculation.multiplier", "fast"),
            "ember.speculation.multiplier",
        );
        bad(
            EmberConf::new()
                .set("ember.excludeOnFailure.enabled", "true")
                .set("ember.task.maxFailures", "1"),
            "ember.excludeOnFailure.task.maxTaskAttemptsPerNode",
        );
    }

    #[test]
    fn config_from_conf_validates_like_spark() {
        assert_eq!(exclude_on_failure_config(&EmberConf::new()).unwrap(), None);
        let on = EmberConf::new().set("ember.excludeOnFailure.enabled", "true");
        assert_eq!(
            exclude_on_failure_config(&on).unwrap(),
            Some(ExcludeOnFailureConfig::default())
        );
        let c =
            exclude_on_failure_config(&on.clone().set("ember.excludeOnFailure.timeout", "5min"))
                .unwrap()
                .unwrap();
        assert_eq!(c.timeout_ms, 300_000);
        assert_eq!(
            (
                c.unschedulable_task_set_timeout_ms,
                c.kill_excluded_executors
            ),
            (120_000, false)
        );
        let c = exclude_on_failure_config(
            &on.clone()
                .set(
                    "ember.scheduler.excludeOnFailure.unschedulableTaskSetTimeout",
                    "2",
                )
                .set("ember.excludeOnFailure.killExcludedExecutors", "true"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                c.unschedulable_task_set_timeout_ms,
                c.kill_excluded_executors
            ),
            (2000, true)
        );

        let err = |conf: EmberConf| match exclude_on_failure_config(&conf).unwrap_err() {
            EmberError::Config { key, reason, .. } => (key, reason),
            e => panic!("unexpected {e:?}"),
        };
        let (key, reason) = err(on.clone().set("ember.task.maxFailures", "2"));
        assert_eq!(key, "ember.excludeOnFailure.task.maxTaskAttemptsPerNode");
        assert!(
            reason.contains("ember.task.maxFailures (= 2)")
                && reason.contains("ember.excludeOnFailure.enabled"),
            "{reason}"
        );
        let (key, _) = err(on
            .clone()
            .set("ember.excludeOnFailure.task.maxTaskAttemptsPerNode", "1")
            .set(
                "ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor",
                "5",
            ));
        assert_eq!(
            key,
            "ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor"
        );
        let (key, _) = err(on.clone().set(
            "ember.excludeOnFailure.stage.maxFailedExecutorsPerNode",
            "0",
        ));
        assert_eq!(
            key,
            "ember.excludeOnFailure.stage.maxFailedExecutorsPerNode"
        );
        let (key, _) = err(on.clone().set("ember.excludeOnFailure.timeout", "0"));
        assert_eq!(key, "ember.excludeOnFailure.timeout");
        // Disabled: the limits are not checked.
        assert!(
            exclude_on_failure_config(&EmberConf::new().set("ember.task.maxFailures", "1"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn mode_parses_case_insensitively_and_names_the_key() {
        assert_eq!(scheduling_mode("fifo").unwrap(), SchedulingMode::Fifo);
        assert_eq!(scheduling_mode(" Fair ").unwrap(), SchedulingMode::Fair);
        assert_eq!(
            "FAIR".parse::<SchedulingMode>().unwrap(),
            SchedulingMode::Fair
        );
        let err = scheduling_mode("LIFO").unwrap_err();
        assert!(matches!(
            &err,
            EmberError::Config { key, value, .. }
                if key == "ember.scheduler.mode" && value == "LIFO"
        ));
        assert_eq!(SchedulingMode::Fair.to_string(), "FAIR");
    }
}
