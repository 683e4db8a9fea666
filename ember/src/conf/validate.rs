//! Checks across keys that make an application unable to run, made when its context starts
//! (Spark's `SparkConf.validateSettings` and `SparkContext`'s `validateTaskCpusLargeEnough`).

use super::{
    EmberConf, MasterUrl, BLOCK_MANAGER_HEARTBEAT_TIMEOUT, EXECUTOR_CORES,
    EXECUTOR_HEARTBEAT_INTERVAL, MASTER, NETWORK_EXECUTOR_TIMEOUT, NETWORK_TIMEOUT,
    NETWORK_TIMEOUT_INTERVAL, TASK_CPUS,
};
use crate::error::{EmberError, Result};

/// Refuses settings under which no task could ever run or every executor would be dropped.
pub fn validate_settings(conf: &EmberConf, master: &MasterUrl) -> Result<()> {
    check_thread_count(conf, master, process_thread_limit())?;
    check_task_cpus(conf, master)?;
    check_network_timeout(conf)?;
    check_heartbeat_receiver(conf)
}

/// The driver's executor heartbeat timeout, as Spark's `HeartbeatReceiver` resolves it:
/// `ember.storage.blockManagerHeartbeatTimeoutMs`, else `ember.network.executorTimeout`, else
/// `ember.network.timeout`.
pub(crate) fn executor_timeout_ms(conf: &EmberConf) -> Result<u64> {
    if let Some(ms) = conf.get_opt_time_ms(BLOCK_MANAGER_HEARTBEAT_TIMEOUT)? {
        return Ok(ms);
    }
    match conf.get_opt_time_ms(NETWORK_EXECUTOR_TIMEOUT)? {
        Some(ms) => Ok(ms),
        None => conf.get_time_ms(NETWORK_TIMEOUT),
    }
}

/// The `require`s of Spark's `HeartbeatReceiver` constructor, with its messages: silence is
/// looked at every `ember.network.timeoutInterval`, and executors beat every
/// `ember.executor.heartbeatInterval`, so neither may exceed the executor timeout.
fn check_heartbeat_receiver(conf: &EmberConf) -> Result<()> {
    let timeout = executor_timeout_ms(conf)?;
    let check_interval = conf.get_time_ms(NETWORK_TIMEOUT_INTERVAL)?;
    if check_interval > timeout {
        return Err(EmberError::Config {
            key: NETWORK_TIMEOUT_INTERVAL.into(),
            value: conf.get(NETWORK_TIMEOUT_INTERVAL).into(),
            reason: format!(
                "{NETWORK_TIMEOUT_INTERVAL} should be less than or equal to \
                 {BLOCK_MANAGER_HEARTBEAT_TIMEOUT}."
            ),
        });
    }
    let beat = conf.get_time_ms(EXECUTOR_HEARTBEAT_INTERVAL)?;
    if beat > timeout {
        return Err(EmberError::Config {
            key: EXECUTOR_HEARTBEAT_INTERVAL.into(),
            value: conf.get(EXECUTOR_HEARTBEAT_INTERVAL).into(),
            reason: format!(
                "{EXECUTOR_HEARTBEAT_INTERVAL} should be less than or equal to \
                 {BLOCK_MANAGER_HEARTBEAT_TIMEOUT}"
            ),
        });
    }
    Ok(())
}

/// The cores of one executor, where they are known before executors register: a standalone
/// executor takes what its operator gives it unless `ember.executor.cores` says otherwise.
fn executor_cores(conf: &EmberConf, master: &MasterUrl) -> Result<Option<u64>> {
    Ok(match master {
        MasterUrl::Local { threads, .. } => Some(*threads as u64),
        MasterUrl::LocalCluster { cores, .. } => Some(*cores as u64),
        MasterUrl::Standalone { .. } if conf.contains(EXECUTOR_CORES) => {
            Some(conf.get_u64(EXECUTOR_CORES)?)
        }
        MasterUrl::Standalone { .. } => None,
    })
}

/// The most threads this process can have, and what limits it: the kernel's `threads-max`, the
/// user's process limit, and the memory mappings each thread needs (its stack and guard page, and
/// Rust's signal stack and its guard page: 4 of `vm.max_map_count`). `None` where unknown.
fn process_thread_limit() -> Option<(u64, String)> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let mut limits = Vec::new();
    if let Some(n) = read("/proc/sys/kernel/threads-max") {
        limits.push((n, format!("kernel.threads-max = {n}")));
    }
    if let Some(n) = read("/proc/sys/vm/max_map_count") {
        limits.push((
            n / 4,
            format!("vm.max_map_count = {n}, 4 memory mappings per thread"),
        ));
    }
    let nproc = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            let line = l
                .lines()
                .find(|l| l.starts_with("Max processes"))?
                .to_string();
            line.split_whitespace().nth(2)?.parse::<u64>().ok()
        });
    if let Some(n) = nproc {
        limits.push((n, format!("ulimit -u = {n}")));
    }
    limits.into_iter().min_by_key(|(n, _)| *n)
}

/// A `local[N]` the machine cannot give threads for fails here, naming the URL, rather than
/// later when the pool has grown to what the kernel refuses (where Rust's thread start aborts
/// the process).
fn check_thread_count(
    conf: &EmberConf,
    master: &MasterUrl,
    limit: Option<(u64, String)>,
) -> Result<()> {
    let (MasterUrl::Local { threads, .. }, Some((max, why))) = (master, limit) else {
        return Ok(());
    };
    if (*threads as u64) < max {
        return Ok(());
    }
    Err(EmberError::MasterUrl {
        url: conf.get(MASTER).into(),
        reason: format!(
            "{threads} task threads are more than this machine gives one process (at most {max}: \
             {why})"
        ),
    })
}

/// SPARK-27192: a task needing more cores than an executor has could never be scheduled.
fn check_task_cpus(conf: &EmberConf, master: &MasterUrl) -> Result<()> {
    let task_cpus = conf.get_u64(TASK_CPUS)?;
    match executor_cores(conf, master)? {
        Some(cores) if cores < task_cpus => Err(EmberError::Config {
            key: TASK_CPUS.into(),
            value: conf.get(TASK_CPUS).into(),
            reason: format!(
                "The number of cores per executor (={cores}) has to be >= the number of cpus per \
                 task = {task_cpus}."
            ),
        }),
        _ => Ok(()),
    }
}

/// SPARK-22754: executors beat once per interval, so a timeout no longer than the interval
/// would drop healthy executors.
fn check_network_timeout(conf: &EmberConf) -> Result<()> {
    let timeout = conf.get_time_ms(NETWORK_TIMEOUT)?;
    let interval = conf.get_time_ms(EXECUTOR_HEARTBEAT_INTERVAL)?;
    if timeout > interval {
        return Ok(());
    }
    Err(EmberError::Config {
        key: NETWORK_TIMEOUT.into(),
        value: conf.get(NETWORK_TIMEOUT).into(),
        reason: format!(
            "The value of {NETWORK_TIMEOUT}={timeout}ms must be greater than the value of \
             {EXECUTOR_HEARTBEAT_INTERVAL}={interval}ms."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(master: &str, settings: &[(&str, &str)]) -> Result<()> {
        let mut conf = EmberConf::new();
        for (k, v) in settings {
            conf.insert(*k, *v);
        }
        validate_settings(&conf, &MasterUrl::parse(master).unwrap())
    }

    /// SparkContextSuite "Avoid setting spark.task.cpus unreasonably (SPARK-27192)".
    #[test]
    fn task_cpus_above_the_cores_of_an_executor_are_refused() {
        for (master, settings) in [
            ("local", vec![(TASK_CPUS, "2")]),
            ("local[2]", vec![(TASK_CPUS, "3")]),
            ("local[2, 1]", vec![(TASK_CPUS, "3")]),
            (
                "ember://127.0.0.1:7077",
                vec![(EXECUTOR_CORES, "1"), (TASK_CPUS, "2")],
            ),
            ("local-cluster[1, 1, 1000]", vec![(TASK_CPUS, "2")]),
        ] {
            let err = check(master, &settings).unwrap_err().to_string();
            assert!(
                err.contains("has to be >= the number of cpus per task"),
                "{master}: {err}"
            );
        }
        let err = check("local", &[(TASK_CPUS, "2")]).unwrap_err().to_string();
        assert!(
            err.contains(
                "The number of cores per executor (=1) has to be >= the number of cpus per task = \
                 2."
            ),
            "{err}"
        );
        for (master, settings) in [
            ("local[2]", vec![(TASK_CPUS, "2")]),
            ("local-cluster[1, 2, 1000]", vec![(TASK_CPUS, "2")]),
            // A standalone executor's cores are unknown until it registers.
            ("ember://127.0.0.1:7077", vec![(TASK_CPUS, "2")]),
        ] {
            check(master, &settings).unwrap_or_else(|e| panic!("{master}: {e}"));
        }
    }

    #[test]
    fn a_local_thread_count_above_the_machines_limit_names_the_master_url() {
        let mut conf = EmberConf::new();
        conf.insert(MASTER, "local[100000]");
        let master = MasterUrl::parse("local[100000]").unwrap();
        let err = check_thread_count(
            &conf,
            &master,
            Some((16382, "vm.max_map_count = 65530".into())),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"local[100000]\"") && err.contains("at most 16382"),
            "{err}"
        );
        check_thread_count(
            &conf,
            &MasterUrl::parse("local[16000]").unwrap(),
            Some((16382, String::new())),
        )
        .unwrap();
        check_thread_count(&conf, &master, None).unwrap();
        // This machine's own limit is found and far above what tests use.
        let (max, why) = process_thread_limit().expect("Linux reports its limits");
        assert!(max > 64, "{max} ({why})");
    }

    /// SparkConfSuite's SPARK-22754 check.
    #[test]
    fn a_network_timeout_not_above_the_heartbeat_interval_is_refused() {
        let err = check(
            "local",
            &[
                (NETWORK_TIMEOUT, "10s"),
                (EXECUTOR_HEARTBEAT_INTERVAL, "10s"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "The value of ember.network.timeout=10000ms must be greater than the value of \
                 ember.executor.heartbeatInterval=10000ms."
            ),
            "{err}"
        );
        assert!(check(
            "local",
            &[
                (NETWORK_TIMEOUT, "5s"),
                (EXECUTOR_HEARTBEAT_INTERVAL, "10s")
            ]
        )
        .is_err());
        check(
            "local",
            &[
                (NETWORK_TIMEOUT, "11s"),
                (EXECUTOR_HEARTBEAT_INTERVAL, "10s"),
                (NETWORK_TIMEOUT_INTERVAL, "11s"),
            ],
        )
        .unwrap();
        check("local", &[]).unwrap();
    }

    fn conf(settings: &[(&str, &str)]) -> EmberConf {
        let mut conf = EmberConf::new();
        for (k, v) in settings {
            conf.insert(*k, *v);
        }
        conf
    }

    /// HeartbeatReceiverSuite "executorTimeout will fallback to NETWORK_TIMEOUT if
    /// NETWORK_EXECUTOR_TIMEOUT is not set".
    #[test]
    fn the_executor_timeout_falls_back_to_the_network_timeout() {
        assert_eq!(executor_timeout_ms(&conf(&[])).unwrap(), 120_000);
        assert_eq!(
            executor_timeout_ms(&conf(&[(NETWORK_TIMEOUT, "140s")])).unwrap(),
            140_000
        );
    }

    /// HeartbeatReceiverSuite "check executorTimeout value when NETWORK_EXECUTOR_TIMEOUT is set",
    /// and `ember.storage.blockManagerHeartbeatTimeoutMs` above both (Spark's resolution).
    #[test]
    fn an_explicit_executor_timeout_wins() {
        let c = conf(&[
            (NETWORK_TIMEOUT, "140s"),
            (NETWORK_EXECUTOR_TIMEOUT, "150s"),
        ]);
        assert_eq!(executor_timeout_ms(&c).unwrap(), 150_000);
        let c = conf(&[(NETWORK_EXECUTOR_TIMEOUT, "90000")]);
        assert_eq!(
            executor_timeout_ms(&c).unwrap(),
            90_000,
            "plain numbers are ms"
        );
        let c = conf(&[
            (NETWORK_EXECUTOR_TIMEOUT, "150s"),
            (BLOCK_MANAGER_HEARTBEAT_TIMEOUT, "160000"),
        ]);
        assert_eq!(executor_timeout_ms(&c).unwrap(), 160_000);
    }

    /// The `require`s of Spark's `HeartbeatReceiver` constructor, refused when the context
    /// starts.
    #[test]
    fn heartbeat_intervals_above_the_executor_timeout_are_refused() {
        let err = check(
            "local",
            &[
                (NETWORK_TIMEOUT, "30s"),
                (EXECUTOR_HEARTBEAT_INTERVAL, "1s"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "ember.network.timeoutInterval should be less than or equal to \
                 ember.storage.blockManagerHeartbeatTimeoutMs."
            ),
            "the default 60s check interval exceeds a 30s timeout: {err}"
        );
        check(
            "local",
            &[(NETWORK_TIMEOUT, "30s"), (NETWORK_TIMEOUT_INTERVAL, "30s")],
        )
        .unwrap();
        let err = check(
            "local",
            &[
                (NETWORK_EXECUTOR_TIMEOUT, "60s"),
                (EXECUTOR_HEARTBEAT_INTERVAL, "61s"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "ember.executor.heartbeatInterval should be less than or equal to \
                 ember.storage.blockManagerHeartbeatTimeoutMs"
            ),
            "{err}"
        );
    }
}
