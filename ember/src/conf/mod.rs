//! Configuration: `EmberConf` (Spark's `SparkConf`), Spark-style size and duration parsing,
//! master URLs, and the `--master` / `--conf key=value` command line every example accepts.
//!
//! Keys mirror Spark's with the `ember.` prefix, and defaults are Spark 4.3.0's.
//! Values are kept as strings, as in Spark, and parsed when read, so a bad value is reported
//! with its key at the point of use and at context start-up (see [`EmberConf::validate`]).

use std::collections::BTreeMap;

use crate::error::{EmberError, Result};

pub mod check;
pub mod redact;
mod shuffle;
mod validate;
pub use shuffle::{chunk_checksum, ShuffleConf};
pub(crate) use validate::executor_timeout_ms;
pub use validate::validate_settings;

/// A configuration key with its default and meaning. The list is [`ENTRIES`].
#[derive(Clone, Copy, Debug)]
pub struct ConfigEntry {
    /// The key, `ember.` and Spark's name after it.
    pub key: &'static str,
    /// Spark's default, as text (empty when there is none).
    pub default: &'static str,
    /// How the value parses.
    pub kind: ValueKind,
    /// The range or choice the value must fall in, checked at start-up (Spark's `checkValue`).
    pub check: Option<Check>,
    /// What the key does.
    pub doc: &'static str,
}

/// How a key's value parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `true` or `false`.
    Bool,
    /// A non-negative whole number.
    Int,
    /// A size; the unit of a bare number is given (Spark's `bytesConf(unit)`).
    Size(SizeUnit),
    /// A duration; the unit of a bare number is given (Spark's `timeConf(unit)`).
    Time(TimeUnit),
    /// A number.
    Float,
    /// Any text.
    Str,
}

/// Units of sizes, as a multiplier of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeUnit {
    /// Bytes.
    Byte = 1,
    /// Kibibytes.
    KiB = 1 << 10,
    /// Mebibytes.
    MiB = 1 << 20,
    /// Gibibytes.
    GiB = 1 << 30,
}

/// Units of durations, as a multiplier of microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Microseconds.
    Micros = 1,
    /// Milliseconds.
    Millis = 1_000,
    /// Seconds.
    Seconds = 1_000_000,
}

macro_rules! entries {
    ($($name:ident = $key:literal, $default:literal, $kind:expr, $(check: $check:expr,)?
        $doc:literal;)*) => {
        $(#[doc = $doc] pub const $name: &str = $key;)*
        /// Every key Ember reads, with Spark's default and the bound of its value.
        pub const ENTRIES: &[ConfigEntry] = &[$(
            ConfigEntry {
                key: $key,
                default: $default,
                kind: $kind,
                check: entries!(@check $($check)?),
                doc: $doc,
            },
        )*];
    };
    (@check) => { None };
    (@check $check:expr) => { Some($check) };
}

/// Spark's message for a non-positive limit of `excludeOnFailure` (`HealthTracker`).
const EXCLUDE_LIMIT: &str = "{key} was {value}, but must be > 0.";

use check::{buffer_size, count, count_msg, positive, Check, FRACTION, PORT};
use SizeUnit::*;
use TimeUnit::*;
use ValueKind::*;

entries! {
    MASTER = "ember.master", "local[*]", Str,
        "The master URL: `local`, `local[N]`, `local[*]`, `local[N,F]`, `local-cluster[N,C,MEM]`, \
        `ember://HOST:PORT`.";
    APP_NAME = "ember.app.name", "ember", Str, "The application's name, shown in logs.";
    DEFAULT_PARALLELISM = "ember.default.parallelism", "", Int,
        check: count_msg(1, "Number of partitions ({value}) must be positive."),
        "Partitions of parallelize and of shuffles when not given (default: total cores).";
    TASK_MAX_FAILURES = "ember.task.maxFailures", "4", Int,
        check: count_msg(1, "The retry times of task should be greater than or equal to 1"),
        "Attempts of one task before its job is aborted (cluster mode; `local[N]` allows 1, \
        `local[N,F]` allows F).";
    TASK_CPUS = "ember.task.cpus", "1", Int,
        check: count(1), "Cores each task occupies.";
    LOCALITY_WAIT = "ember.locality.wait", "3s", Time(Millis),
        "How long to wait for a better locality level before trying the next one.";
    LOCALITY_WAIT_PROCESS = "ember.locality.wait.process", "", Time(Millis),
        "Wait at PROCESS_LOCAL (default: ember.locality.wait).";
    LOCALITY_WAIT_NODE = "ember.locality.wait.node", "", Time(Millis),
        "Wait at NODE_LOCAL (default: ember.locality.wait).";
    LOCALITY_WAIT_RACK = "ember.locality.wait.rack", "", Time(Millis),
        "Wait at RACK_LOCAL (default: ember.locality.wait).";
    LOCALITY_WAIT_LEGACY_RESET = "ember.locality.wait.legacyResetOnTaskLaunch", "false", Bool,
        "Delay scheduling as before Spark 3.1: every launch restarts the locality wait, even while \
        offered cores go unused.";
    STARVATION_TIMEOUT = "ember.starvation.timeout", "15s", Time(Millis),
        "How often to warn while the application's first job has launched no task (cluster \
        masters).";
    SCHEDULER_MODE = "ember.scheduler.mode", "FIFO", Str,
        check: Check::OneOf {
            values: &["FIFO", "FAIR"],
            message: "Unrecognized {key}: {value}",
        },
        "FIFO or FAIR ordering of task sets.";
    SCHEDULER_ALLOCATION_FILE = "ember.scheduler.allocation.file", "", Str,
        "Pools for FAIR mode, in Spark's fairscheduler.xml format.";
    SCHEDULER_POOL = "ember.scheduler.pool", "", Str,
        "Local property: the FAIR pool of jobs submitted from this thread.";
    SCHEDULER_SEED = "ember.scheduler.seed", "", Int,
        "Seed of the offer-shuffling RNG (default: random per context).";
    RPC_MESSAGE_MAX_SIZE = "ember.rpc.message.maxSize", "128", Size(MiB),
        check: Check::Range {
            min: 1,
            max: 2047,
            below: "",
            above: "{key} should not be greater than 2047 MB",
        },
        "Largest RPC message, in MiB.";
    TASK_MAX_DIRECT_RESULT_SIZE = "ember.task.maxDirectResultSize", "1m", Size(Byte),
        check: Check::Range {
            min: 0,
            max: check::INT_MAX - 16,
            below: "",
            above: "The max direct result size is 2GB",
        },
        "Results larger than this go through the block manager.";
    STAGE_MAX_CONSECUTIVE_ATTEMPTS = "ember.stage.maxConsecutiveAttempts", "4", Int,
        check: count(1),
        "Consecutive fetch-failed attempts of a stage before its jobs are aborted.";
    BARRIER_SYNC_TIMEOUT = "ember.barrier.sync.timeout", "365d", Time(Seconds),
        check: positive("The value should be a positive time value."),
        "How long a barrier task's barrier() / all_gather() waits for every task of its stage \
        (Spark's default: a year).";
    BARRIER_MAX_CONCURRENT_TASKS_CHECK_INTERVAL =
        "ember.scheduler.barrier.maxConcurrentTasksCheck.interval", "15s", Time(Seconds),
        "How long a job whose barrier stage needs more slots than the cluster has waits before \
        it checks again.";
    BARRIER_MAX_CONCURRENT_TASKS_CHECK_MAX_FAILURES =
        "ember.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "40", Int,
        check: count_msg(1, "The max failures should be a positive value."),
        "Failed slot checks of a barrier job before it fails.";
    DEPLOY_MAX_EXECUTOR_RETRIES = "ember.deploy.maxExecutorRetries", "10", Int,
        check: count(0),
        "Lost local-cluster executors in a row replaced by new processes before the application \
        fails (0: none).";
    BROADCAST_BLOCK_SIZE = "ember.broadcast.blockSize", "4m", Size(KiB),
        check: buffer_size(KiB as u64, ""),
        "Size of each piece of a broadcast value.";
    BROADCAST_COMPRESS = "ember.broadcast.compress", "true", Bool,
        "Compress broadcast values (lz4) before sending them.";
    FILES_OVERWRITE = "ember.files.overwrite", "false", Bool,
        "Whether adding a file or archive under a name already added with other contents \
        replaces it (executors fetch the new version before their next task set's tasks) \
        instead of failing. Adding identical contents again is always a no-op.";
    FILES_FETCH_TIMEOUT = "ember.files.fetchTimeout", "60s", Time(Seconds),
        "How long an executor waits for the driver while fetching files added with add_file \
        and add_archive.";
    FILES_IGNORE_CORRUPT_FILES = "ember.files.ignoreCorruptFiles", "false", Bool,
        "Whether a job reading files goes on past a file that cannot be read (a corrupt Parquet \
        footer, a truncated compressed stream): the rest of that file is skipped with a warning \
        and the records read before the error are kept.";
    FILES_IGNORE_MISSING_FILES = "ember.files.ignoreMissingFiles", "false", Bool,
        "Whether a job reading files goes on when a file listed when the job was planned is gone \
        when a task opens it (skipped with a warning).";
    DRIVER_MAX_RESULT_SIZE = "ember.driver.maxResultSize", "1g", Size(Byte),
        "Total size of serialized results of one job (0 = unlimited).";
    EXECUTOR_HEARTBEAT_INTERVAL = "ember.executor.heartbeatInterval", "10s", Time(Millis),
        check: positive(""),
        "How often executors send heartbeats.";
    NETWORK_TIMEOUT = "ember.network.timeout", "120s", Time(Seconds),
        check: positive(""),
        "Default timeout for network interactions and executor liveness.";
    NETWORK_EXECUTOR_TIMEOUT = "ember.network.executorTimeout", "", Time(Millis),
        "How long the driver waits for an executor's heartbeat before declaring it lost \
        (default: ember.network.timeout).";
    BLOCK_MANAGER_HEARTBEAT_TIMEOUT = "ember.storage.blockManagerHeartbeatTimeoutMs", "",
        Time(Millis),
        "Overrides ember.network.executorTimeout as the executor heartbeat timeout.";
    NETWORK_TIMEOUT_INTERVAL = "ember.network.timeoutInterval", "60s", Time(Millis),
        check: positive(""),
        "How often the driver looks for executors whose heartbeats have timed out.";
    SPECULATION = "ember.speculation", "false", Bool,
        "Launch speculative copies of slow tasks (cluster masters; local mode never speculates, as \
        in Spark).";
    SPECULATION_INTERVAL = "ember.speculation.interval", "100ms", Time(Millis),
        check: positive(""),
        "How often the driver looks for tasks to speculate.";
    SPECULATION_MULTIPLIER = "ember.speculation.multiplier", "3", Float,
        check: Check::Number {
            min: 0.0,
            min_included: true,
            max: f64::INFINITY,
            max_included: true,
            message: "",
        },
        "How many times slower than the median successful task a task must be to be speculated.";
    SPECULATION_QUANTILE = "ember.speculation.quantile", "0.9", Float,
        check: FRACTION,
        "Fraction of a stage's tasks that must have succeeded before any of its tasks is \
        speculated.";
    SPECULATION_MIN_TASK_RUNTIME = "ember.speculation.minTaskRuntime", "100ms", Time(Millis),
        "Least time a task runs before it is considered for speculation.";
    SPECULATION_TASK_DURATION_THRESHOLD = "ember.speculation.task.duration.threshold",
        "", Time(Millis),
        "Speculate a task running longer than this even before ember.speculation.quantile is \
        reached, in stages with no more tasks than one executor's slots (executor cores / \
        ember.task.cpus).";
    EXCLUDE_ON_FAILURE_ENABLED = "ember.excludeOnFailure.enabled", "false", Bool,
        "Stop scheduling tasks on executors and nodes where tasks keep failing.";
    EXCLUDE_ON_FAILURE_TIMEOUT = "ember.excludeOnFailure.timeout", "1h", Time(Millis),
        "How long an executor or node stays excluded for the whole application.";
    MAX_TASK_ATTEMPTS_PER_EXECUTOR = "ember.excludeOnFailure.task.maxTaskAttemptsPerExecutor",
        "1", Int,
        check: count_msg(1, EXCLUDE_LIMIT),
        "Failures of one task on one executor before the task is not retried there.";
    MAX_TASK_ATTEMPTS_PER_NODE = "ember.excludeOnFailure.task.maxTaskAttemptsPerNode", "2", Int,
        check: count_msg(1, EXCLUDE_LIMIT),
        "Failures of one task on one node before the task is not retried there.";
    MAX_FAILURES_PER_EXEC_STAGE = "ember.excludeOnFailure.stage.maxFailedTasksPerExecutor",
        "2", Int,
        check: count_msg(1, EXCLUDE_LIMIT),
        "Distinct tasks failed on one executor before it is excluded for the stage.";
    MAX_FAILED_EXEC_PER_NODE_STAGE = "ember.excludeOnFailure.stage.maxFailedExecutorsPerNode",
        "2", Int,
        check: count_msg(1, EXCLUDE_LIMIT),
        "Executors excluded for a stage on one node before the node is excluded for the stage.";
    MAX_FAILURES_PER_EXEC = "ember.excludeOnFailure.application.maxFailedTasksPerExecutor",
        "2", Int,
        check: count_msg(1, EXCLUDE_LIMIT),
        "Task failures on one executor, in stages that succeeded, before it is excluded for the \
        application.";
    MAX_FAILED_EXEC_PER_NODE = "ember.excludeOnFailure.application.maxFailedExecutorsPerNode",
        "2", Int,
        check: count_msg(1, EXCLUDE_LIMIT),
        "Executors excluded for the application on one node before the node is excluded too.";
    UNSCHEDULABLE_TASK_SET_TIMEOUT = "ember.scheduler.excludeOnFailure.unschedulableTaskSetTimeout",
        "120s", Time(Seconds),
        "How long a task set whose task is excluded on every executor waits for a new executor (an \
        idle excluded executor is killed to get one where executors are replaced) before it is \
        aborted.";
    KILL_EXCLUDED_EXECUTORS = "ember.excludeOnFailure.killExcludedExecutors", "false", Bool,
        "Kill executors (and all executors of nodes) as they are excluded for the application, so \
        that local-cluster replaces them.";
    SHUFFLE_REDUCE_LOCALITY_ENABLED = "ember.shuffle.reduceLocality.enabled", "true", Bool,
        "Reduce tasks prefer the hosts that hold at least a fifth of their input (shuffles under \
        1000 map and 1000 reduce partitions).";
    SHUFFLE_COMPRESS = "ember.shuffle.compress", "true", Bool, "Compress shuffle output with lz4.";
    SHUFFLE_SPILL_COMPRESS = "ember.shuffle.spill.compress", "true", Bool,
        "Compress data spilled during shuffles.";
    SHUFFLE_CHECKSUM_ENABLED = "ember.shuffle.checksum.enabled", "true", Bool,
        "Checksum every chunk of shuffle files, shuffle spills and serialized cached partitions, \
        and check it before the chunk is decoded: a damaged shuffle block is a fetch failure (its \
        map output is computed again), a damaged spill fails the task (retried), a damaged cached \
        partition is dropped and recomputed.";
    SHUFFLE_CHECKSUM_ALGORITHM = "ember.shuffle.checksum.algorithm", "ADLER32", Str,
        check: Check::OneOf {
            values: &["ADLER32", "CRC32"],
            message: "Shuffle checksum algorithm should be either ADLER32 or CRC32.",
        },
        "The algorithm of those checksums: ADLER32 or CRC32.";
    SHUFFLE_SPILL_THRESHOLD = "ember.shuffle.spill.threshold", "512m", Size(Byte),
        check: positive(""),
        "In-memory size of a task's aggregation map or sort buffer past which it spills to disk.";
    REDUCER_MAX_SIZE_IN_FLIGHT = "ember.reducer.maxSizeInFlight", "48m", Size(MiB),
        check: positive(""),
        "Largest amount of shuffle data fetched at once by one reduce task.";
    SHUFFLE_FILE_BUFFER = "ember.shuffle.file.buffer", "32k", Size(KiB),
        check: buffer_size(
            KiB as u64,
            "The file buffer size must be positive and less than or equal to 2097151.",
        ),
        "Buffer of shuffle file writers.";
    EXECUTOR_MEMORY = "ember.executor.memory", "1g", Size(MiB),
        check: positive(""),
        "Memory of each executor in cluster mode (local-cluster: the MEM of the master URL unless \
        this is set).";
    DRIVER_MEMORY = "ember.driver.memory", "1g", Size(MiB),
        check: positive(""),
        "Memory of the driver; in local mode also of its embedded executor.";
    EXECUTOR_CORES = "ember.executor.cores", "1", Int,
        check: count(1), "Cores of each executor in cluster mode.";
    EXECUTOR_DRIVER_CONNECT_TIMEOUT = "ember.executor.driverConnectTimeout", "120s", Time(Seconds),
        "How long an executor started by hand keeps trying to reach a driver that is not listening \
        yet (read from its EMBER_CONF).";
    MEMORY_FRACTION = "ember.memory.fraction", "0.6", Float,
        check: Check::Number {
            min: 0.0,
            min_included: false,
            max: 1.0,
            max_included: true,
            message: "",
        },
        "Fraction of (memory - reserved memory) for execution and storage.";
    MEMORY_STORAGE_FRACTION = "ember.memory.storageFraction", "0.5", Float,
        check: Check::Number {
            min: 0.0,
            min_included: true,
            max: 1.0,
            max_included: false,
            message: "Storage fraction must be in [0,1)",
        },
        "Part of that fraction immune to eviction by execution.";
    TESTING_BUILD_ID = "ember.testing.buildId", "", Str,
        "Testing only: the build id this process claims instead of its own (driver: from its \
        configuration; executor: --conf at start-up), to simulate a process of another build. \
        Claiming another build only gets a process refused. Honoured only by builds with the \
        `testing` feature (the project's own tests); elsewhere setting it is an error.";
    TESTING_RESERVED_MEMORY = "ember.testing.reservedMemory", "300m", Size(Byte),
        "Memory set aside for the system before ember.memory.fraction applies; memory must be at \
        least 1.5 times this (tests lower it to run with a few MiB).";
    STORAGE_UNROLL_MEMORY_THRESHOLD = "ember.storage.unrollMemoryThreshold", "1m", Size(Byte),
        "Storage memory a task reserves before it starts unrolling a partition into the cache.";
    RDD_COMPRESS = "ember.rdd.compress", "false", Bool,
        "lz4-compress serialized cached partitions (_SER levels and partitions on disk).";
    LOCAL_DIR = "ember.local.dir", "", Str,
        "Directory for shuffle files and spills (default: the system temp dir).";
    LOCAL_DIR_CLEAN_STALE = "ember.local.dir.cleanStale", "true", Bool,
        "At start, delete the scratch directories (ember-PID-…, ember-executor-PID-…) that \
        Ember processes of this user left when they were killed (SIGKILL, OOM) and whose PID no \
        longer runs. Turn off when processes of other PID namespaces share the directory.";
    UI_SHOW_CONSOLE_PROGRESS = "ember.ui.showConsoleProgress", "true", Bool,
        "Show the console progress bar (only when stderr is a terminal).";
    UI_ENABLED = "ember.ui.enabled", "true", Bool,
        "Serve the web UI and the REST API (/api/v1) from the driver.";
    UI_PORT = "ember.ui.port", "4040", Int,
        check: PORT,
        "Port of the web UI and REST API; the next ones are tried when it is taken (0: any free \
        port).";
    PORT_MAX_RETRIES = "ember.port.maxRetries", "16", Int,
        check: count(0),
        "How many ports after a taken one a server tries before giving up.";
    UI_PROMETHEUS_ENABLED = "ember.ui.prometheus.enabled", "true", Bool,
        "Serve the executors' metrics in Prometheus's format at /metrics/executors/prometheus.";
    METRICS_CONF = "ember.metrics.conf", "", Str,
        "A metrics.properties-like file of the metrics system (sinks: ConsoleSink, CsvSink, \
        MetricsServlet, PrometheusServlet); ember.metrics.conf.INSTANCE.PROPERTY settings \
        override it.";
    METRICS_NAMESPACE = "ember.metrics.namespace", "", Str,
        "The first part of every metric's name (default: the application's id).";
    UI_RETAINED_JOBS = "ember.ui.retainedJobs", "1000", Int,
        check: count(0),
        "Finished jobs the UI and REST API remember.";
    UI_RETAINED_STAGES = "ember.ui.retainedStages", "1000", Int,
        check: count(0),
        "Finished stages the UI and REST API remember.";
    UI_RETAINED_TASKS = "ember.ui.retainedTasks", "100000", Int,
        check: count(0),
        "Tasks of one stage the UI and REST API remember.";
    UI_RETAINED_DEAD_EXECUTORS = "ember.ui.retainedDeadExecutors", "100", Int,
        check: count(0),
        "Removed executors the UI and REST API remember.";
    UI_THREAD_DUMPS_ENABLED = "ember.ui.threadDumpsEnabled", "true", Bool,
        "Link each live executor's thread dump from the Executors page and serve the \
        thread-dump page (the REST API's threads endpoint answers either way, as Spark's).";
    UI_TIMELINE_JOBS_MAXIMUM = "ember.ui.timeline.jobs.maximum", "500", Int,
        check: count(0),
        "Jobs the event timeline of the Jobs page draws at most (those finished last).";
    UI_TIMELINE_STAGES_MAXIMUM = "ember.ui.timeline.stages.maximum", "500", Int,
        check: count(0),
        "Stages the event timeline of a job's page draws at most (those finished last).";
    UI_TIMELINE_TASKS_MAXIMUM = "ember.ui.timeline.tasks.maximum", "1000", Int,
        check: count(0),
        "Tasks the event timeline of a stage's page draws at most (the latest launched).";
    UI_TIMELINE_EXECUTORS_MAXIMUM = "ember.ui.timeline.executors.maximum", "250", Int,
        check: count(0),
        "Executors whose arrival and removal the event timelines draw at most (the latest).";
    LISTENER_BUS_CAPACITY = "ember.scheduler.listenerbus.eventqueue.capacity", "10000", Int,
        check: count_msg(1, "The capacity of listener bus event queue must be positive"),
        "Events each listener's queue holds; a listener that falls further behind loses events \
        (counted and logged).";
    EVENT_LOG_ENABLED = "ember.eventLog.enabled", "false", Bool,
        "Write the application's events to a file in ember.eventLog.dir, which Spark's History \
        Server opens.";
    EVENT_LOG_DIR = "ember.eventLog.dir", "/tmp/spark-events", Str,
        "Directory of event logs (a path, or a file: URI); it must exist.";
    EVENT_LOG_COMPRESS = "ember.eventLog.compress", "false", Bool,
        "Compress event logs with ember.eventLog.compression.codec (Spark 4 defaults to true; \
        Ember writes plain JSON unless asked).";
    EVENT_LOG_COMPRESSION_CODEC = "ember.eventLog.compression.codec", "lz4", Str,
        "Codec of compressed event logs: lz4 (Spark's LZ4 block framing, read by the History \
        Server).";
    EVENT_LOG_OVERWRITE = "ember.eventLog.overwrite", "false", Bool,
        "Replace an existing event log of the same application id instead of failing.";
    EVENT_LOG_LOG_BLOCK_UPDATES = "ember.eventLog.logBlockUpdates.enabled", "false", Bool,
        "Write every block update to the event log.";
    EVENT_LOG_BUFFER = "ember.eventLog.buffer.kb", "100k", Size(KiB),
        check: buffer_size(KiB as u64, ""),
        "Buffer of the event log writer.";
    SERIALIZE_LOCAL_TASKS = "ember.test.serializeLocal", "false", Bool,
        "Send local-mode results through serialization, as cluster mode does.";
    DRIVER_HOST = "ember.driver.host", "", Str,
        "Address the driver listens on for executors (default: 127.0.0.1 for local-cluster, the \
        master URL's host for ember://).";
    DRIVER_PORT = "ember.driver.port", "0", Int,
        check: PORT,
        "Port the driver listens on for executors (0: any free port; ember:// URLs give theirs).";
    AUTHENTICATE = "ember.authenticate", "false", Bool,
        "Authenticate every connection with ember.authenticate.secret and every frame after the \
        handshake with keys derived from it (always on for local-cluster). Without it no listener \
        binds beyond loopback.";
    AUTHENTICATE_SECRET = "ember.authenticate.secret", "", Str,
        "The shared secret (also read from EMBER_AUTH_SECRET); local-cluster makes one per \
        application. Never shown: see ember.redaction.regex.";
    NETWORK_CRYPTO_ENABLED = "ember.network.crypto.enabled", "false", Bool,
        "Also encrypt every frame (AES-256-GCM); requires ember.authenticate. Passed to executors \
        at start-up (--conf), as Spark's startup settings are.";
    REDACTION_REGEX = "ember.redaction.regex",
        "(?i)secret|password|token|access[.]?key|credential", Str,
        "When this regex matches a property key or value, the value is redacted wherever the \
        configuration is shown (EmberConf::to_debug_string, Debug, configuration errors).";
    UNSAFE_EXCEPTION_ON_MEMORY_LEAK = "ember.unsafe.exceptionOnMemoryLeak", "false", Bool,
        "Fail a task that ends with managed memory still reserved.";
}

/// The local property naming the job group of a thread's jobs (Spark's `spark.jobGroup.id`).
pub const JOB_GROUP_ID: &str = "ember.jobGroup.id";

/// Looks up the entry of a key.
pub fn entry(key: &str) -> Option<&'static ConfigEntry> {
    ENTRIES.iter().find(|e| e.key == key)
}

/// Configuration of an Ember application (Spark's `SparkConf`).
///
/// ```
/// use ember::conf::EmberConf;
/// let conf = EmberConf::new().set_master("local[2]").set("ember.locality.wait", "1s");
/// assert_eq!(conf.get_time_ms("ember.locality.wait").unwrap(), 1000);
/// assert_eq!(conf.get_size_bytes("ember.rpc.message.maxSize").unwrap(), 128 << 20);
/// ```
#[derive(Clone, Default)]
pub struct EmberConf {
    settings: BTreeMap<String, String>,
    /// Where a key's value came from when it was not set by the program itself (`EMBER_CONF`,
    /// `--conf`, …), so that an error about it can say what to change.
    origins: BTreeMap<String, &'static str>,
}

/// Shows the settings with secrets redacted (`ember.redaction.regex`), so a configuration can be
/// logged or printed in an error without leaking them.
impl std::fmt::Debug for EmberConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.redactor();
        f.debug_struct("EmberConf")
            .field(
                "settings",
                &self
                    .settings
                    .iter()
                    .map(|(k, v)| (k, shown(&r, k, v)))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

impl EmberConf {
    /// An empty configuration: every key at its default. Does not read the environment (see
    /// [`EmberConf::from_env`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `EMBER_MASTER`, `EMBER_APP_NAME` and `EMBER_CONF` (`key=value` pairs separated by
    /// whitespace or commas) from the environment.
    pub fn from_env() -> Result<Self> {
        let mut conf = Self::new();
        if let Ok(m) = std::env::var("EMBER_MASTER") {
            conf.insert_from(MASTER.into(), m, "the environment variable EMBER_MASTER");
        }
        if let Ok(n) = std::env::var("EMBER_APP_NAME") {
            conf.insert_from(
                APP_NAME.into(),
                n,
                "the environment variable EMBER_APP_NAME",
            );
        }
        if let Ok(pairs) = std::env::var("EMBER_CONF") {
            for pair in pairs
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
            {
                let (k, v) = split_pair(pair)?;
                conf.insert_from(k, v, "the environment variable EMBER_CONF");
            }
        }
        Ok(conf)
    }

    /// Parses `--master URL`, `--conf key=value`, `--name NAME` (also as `--flag=value`) out of
    /// `args`, and returns the configuration (environment first, then the arguments) and the
    /// arguments it did not consume, in order.
    pub fn from_args<I, S>(args: I) -> Result<(Self, Vec<String>)>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut conf = Self::from_env()?;
        let mut rest = Vec::new();
        let mut it = args.into_iter().map(Into::into);
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let key = match flag.as_str() {
                "--master" => Some(MASTER),
                "--name" => Some(APP_NAME),
                "--conf" => None,
                _ => {
                    rest.push(arg);
                    continue;
                }
            };
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| EmberError::Argument(format!("{flag} needs a value")))?,
            };
            match key {
                Some(k) if k == MASTER => conf.insert_from(k.into(), value, "--master"),
                Some(k) => conf.insert_from(k.into(), value, "--name"),
                None => {
                    let (k, v) = split_pair(&value)?;
                    conf.insert_from(k, v, "--conf");
                }
            }
        }
        conf.validate()?;
        Ok((conf, rest))
    }

    /// Sets a key (builder style).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets a key in place.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.origins.remove(&key);
        self.settings.insert(key, value.into());
    }

    fn insert_from(&mut self, key: String, value: String, origin: &'static str) {
        self.origins.insert(key.clone(), origin);
        self.settings.insert(key, value);
    }

    /// Where the value of `key` came from, when it was not set by the program:
    /// `"--conf"`, `"--master"`, `"the environment variable EMBER_CONF"`, …
    pub fn origin(&self, key: &str) -> Option<&'static str> {
        self.origins.get(key).copied()
    }

    /// `key=value` as the user wrote it, and where (for messages about a value).
    pub fn describe(&self, key: &str) -> String {
        let value = self.get(key);
        match self.origin(key) {
            Some(origin) => format!("{key}={value} (set by {origin})"),
            None => format!("{key}={value}"),
        }
    }

    /// An error about the value of `key`, saying where it was set when that was not the program.
    pub fn bad(&self, key: &str, value: &str, reason: &str) -> EmberError {
        let reason = match self.origin(key) {
            Some(origin) => format!("{reason} (set by {origin})"),
            None => reason.to_string(),
        };
        bad(key, value, &reason)
    }

    /// The `ember.*` keys that are set but that Ember does not know, each with the known key
    /// closest to it, when one is close enough to be a likely typo.
    pub fn unknown_keys(&self) -> Vec<(String, Option<&'static str>)> {
        self.settings
            .keys()
            .filter(|k| k.starts_with("ember.") && entry(k).is_none())
            // The metrics system's properties are free-form (Spark's `spark.metrics.conf.*`).
            .filter(|k| !k.starts_with("ember.metrics.conf."))
            // So are Hadoop's (Spark's `spark.hadoop.*`), which the object stores read.
            .filter(|k| !k.starts_with(crate::io::cloud::HADOOP_PREFIX))
            .map(|k| (k.clone(), closest_key(k)))
            .collect()
    }

    /// Logs a warning for each key of [`EmberConf::unknown_keys`]: a misspelled key would
    /// otherwise be silently ignored.
    pub fn warn_unknown_keys(&self) {
        for (key, closest) in self.unknown_keys() {
            let origin = self
                .origin(&key)
                .map(|o| format!(" (set by {o})"))
                .unwrap_or_default();
            match closest {
                Some(c) => tracing::warn!(
                    "Ignoring unknown configuration key {key}{origin}; did you mean {c}?"
                ),
                None => tracing::warn!("Ignoring unknown configuration key {key}{origin}"),
            }
        }
    }

    /// Sets the master URL.
    pub fn set_master(self, master: impl Into<String>) -> Self {
        self.set(MASTER, master)
    }

    /// Sets the application name.
    pub fn set_app_name(self, name: impl Into<String>) -> Self {
        self.set(APP_NAME, name)
    }

    /// Sets a key only where it is not set yet.
    pub fn set_if_missing(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings
            .entry(key.into())
            .or_insert_with(|| value.into());
        self
    }

    /// The raw value set for a key, without defaults.
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// The value of a key, or its default from [`ENTRIES`] (empty when it has none).
    pub fn get(&self, key: &str) -> &str {
        self.get_raw(key)
            .or_else(|| entry(key).map(|e| e.default))
            .unwrap_or("")
    }

    /// Whether a key is explicitly set.
    pub fn contains(&self, key: &str) -> bool {
        self.settings.contains_key(key)
    }

    /// Every explicitly set key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A boolean key.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.get(key);
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.bad(key, v, "expected true or false")),
        }
    }

    /// An integer key; `None` when it is unset and has no default.
    pub fn get_opt_u64(&self, key: &str) -> Result<Option<u64>> {
        let v = self.get(key).trim();
        if v.is_empty() {
            return Ok(None);
        }
        let n = v
            .parse()
            .map_err(|_| self.bad(key, v, "expected a non-negative whole number"))?;
        self.within_bound(key, v)?;
        Ok(Some(n))
    }

    /// An integer key that has a default.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_opt_u64(key)?
            .ok_or_else(|| self.bad(key, "", "a value is required"))
    }

    /// An integer key that must be at most `max` (a port, a count stored in 32 bits): refused
    /// with the key named, never truncated by a cast.
    pub fn get_u64_at_most(&self, key: &str, max: u64) -> Result<u64> {
        let n = self.get_u64(key)?;
        if n > max {
            return Err(bad(
                key,
                self.get(key).trim(),
                &format!("must be at most {max}"),
            ));
        }
        Ok(n)
    }

    /// A floating-point key.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        let v = self.get(key).trim();
        let f = v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| self.bad(key, v, "expected a number"))?;
        self.within_bound(key, v)?;
        Ok(f)
    }

    /// A size key in bytes; a bare number is in the key's unit (Spark's rules: `128` for
    /// `ember.rpc.message.maxSize` means 128 MiB, `1m` for `ember.task.maxDirectResultSize` 1 MiB).
    pub fn get_size_bytes(&self, key: &str) -> Result<u64> {
        let unit = match entry(key).map(|e| e.kind) {
            Some(Size(u)) => u,
            _ => Byte,
        };
        let v = self.get(key);
        let bytes = parse_size(v, unit).map_err(|reason| self.bad(key, v, &reason))?;
        self.within_bound(key, v)?;
        Ok(bytes)
    }

    /// A duration key in milliseconds; a bare number is in the key's unit.
    pub fn get_time_ms(&self, key: &str) -> Result<u64> {
        self.get_opt_time_ms(key)?
            .ok_or_else(|| self.bad(key, "", "a value is required"))
    }

    /// A duration key in milliseconds, `None` when unset without a default.
    pub fn get_opt_time_ms(&self, key: &str) -> Result<Option<u64>> {
        let unit = match entry(key).map(|e| e.kind) {
            Some(Time(u)) => u,
            _ => Millis,
        };
        let v = self.get(key);
        if v.trim().is_empty() {
            return Ok(None);
        }
        let us = parse_time_us(v, unit).map_err(|reason| self.bad(key, v, &reason))?;
        self.within_bound(key, v)?;
        Ok(Some(us / 1000))
    }

    /// Refuses a parsed value outside its key's bound ([`ConfigEntry::check`]): every reader of
    /// a key gets the table's bound, so no reader repeats it.
    fn within_bound(&self, key: &str, value: &str) -> Result<()> {
        match entry(key).and_then(|e| Some((e, e.check?))) {
            Some((e, check)) => match check.refuse(e, value) {
                Some(reason) => Err(self.bad(key, value, &reason)),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The master URL.
    pub fn master(&self) -> Result<MasterUrl> {
        MasterUrl::parse(self.get(MASTER)).map_err(|e| match (e, self.origin(MASTER)) {
            (EmberError::MasterUrl { url, reason }, Some(origin)) => EmberError::MasterUrl {
                url,
                reason: format!("{reason} (set by {origin})"),
            },
            (e, _) => e,
        })
    }

    /// The application name.
    pub fn app_name(&self) -> &str {
        self.get(APP_NAME)
    }

    /// Checks that every set `ember.*` key with a known type parses and falls within its bound
    /// ([`ConfigEntry::check`]), so a typo in a value is reported when the context starts rather
    /// than in the middle of a job.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in &self.settings {
            let Some(e) = entry(k) else { continue };
            // A blank number or duration reads as unset; a blank flag, size or fraction does
            // not read at all, so it is refused here rather than in the middle of a job.
            if v.trim().is_empty() && matches!(e.kind, Int | Time(_) | Str) {
                continue;
            }
            match e.kind {
                Bool => self.get_bool(k).map(drop)?,
                Int => self.get_opt_u64(k).map(drop)?,
                Size(_) => self.get_size_bytes(k).map(drop)?,
                Time(_) => self.get_time_ms(k).map(drop)?,
                Float => self.get_f64(k).map(drop)?,
                // The typed getters check the bound themselves; a string's choices only here.
                Str => self.within_bound(k, v)?,
            }
        }
        self.master()?;
        redact::Redactor::new(self.get(REDACTION_REGEX)).map_err(|e| {
            bad(
                REDACTION_REGEX,
                self.get(REDACTION_REGEX),
                &format!("not a regular expression: {e}"),
            )
        })?;
        Ok(())
    }

    /// Every explicitly set key and value, with the value redacted when `ember.redaction.regex`
    /// matches the key or the value (Spark's `Utils.redact`).
    pub fn redacted(&self) -> Vec<(String, String)> {
        let r = self.redactor();
        self.settings
            .iter()
            .map(|(k, v)| (k.clone(), shown(&r, k, v).into_owned()))
            .collect()
    }

    /// The settings as `key=value` lines, sorted, secrets redacted (Spark's
    /// `SparkConf.toDebugString`).
    pub fn to_debug_string(&self) -> String {
        self.redacted()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The configured redaction pattern; Spark's default when the configured one does not compile
    /// (which [`EmberConf::validate`] reports at start-up), so nothing is ever shown unredacted
    /// because of a typo in the pattern.
    fn redactor(&self) -> std::borrow::Cow<'static, redact::Redactor> {
        match self.get_raw(REDACTION_REGEX) {
            Some(p) => redact::Redactor::new(p)
                .map(std::borrow::Cow::Owned)
                .unwrap_or_else(
                    |_| std::borrow::Cow::Borrowed(redact::Redactor::default_pattern()),
                ),
            None => std::borrow::Cow::Borrowed(redact::Redactor::default_pattern()),
        }
    }
}

fn split_pair(pair: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(EmberError::Argument(format!(
            "--conf takes key=value, got {pair:?}"
        ))),
    }
}

/// The known key nearest to `key` by edit distance (letters inserted, removed, replaced or
/// swapped), if it is within a third of the key's length: close enough to be a typo.
fn closest_key(key: &str) -> Option<&'static str> {
    let budget = (key.len() / 3).max(2);
    ENTRIES
        .iter()
        .map(|e| {
            (
                edit_distance(&key.to_ascii_lowercase(), &e.key.to_ascii_lowercase()),
                e.key,
            )
        })
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, k)| (*d, *k))
        .map(|(_, k)| k)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// How a value is shown: redacted when the pattern says so, and the application's secret always,
/// whatever the pattern.
fn shown<'a>(r: &redact::Redactor, key: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if key == AUTHENTICATE_SECRET {
        std::borrow::Cow::Borrowed(redact::REDACTED)
    } else {
        r.redact(key, value)
    }
}

/// A configuration error; the value is redacted (Spark's default pattern) when it looks secret.
fn bad(key: &str, value: &str, reason: &str) -> EmberError {
    let value = redact::Redactor::default_pattern()
        .redact(key, value)
        .into_owned();
    EmberError::Config {
        key: key.into(),
        value,
        reason: reason.into(),
    }
}

/// Parses a Spark size string (`512`, `32k`, `128m`, `1g`, `2t`, with optional `b`/`ib`) into
/// bytes; a bare number is in `unit`.
pub fn parse_size(s: &str, unit: SizeUnit) -> std::result::Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a size such as 512, 32k, 128m or 1g".to_string())?;
    let mult: u64 = match suffix.trim() {
        "" => unit as u64,
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use b, k, m, g, t or p)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| "size too large".to_string())
}

/// Parses a Spark duration string (`100ms`, `3s`, `2min`, `1h`, `1d`, `5us`) into microseconds;
/// a bare number is in `unit`.
pub fn parse_time_us(s: &str, unit: TimeUnit) -> std::result::Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a duration such as 100ms, 3s, 2min or 1h".to_string())?;
    let mult: u64 = match suffix.trim() {
        "" => unit as u64,
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        other => {
            return Err(format!(
                "unknown time unit {other:?} (use us, ms, s, m, min, h or d)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| "duration too large".to_string())
}

/// Where an application runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterUrl {
    /// Embedded: one executor inside the driver with `threads` task threads, and `max_failures`
    /// attempts per task (`local[N]`: 1, `local[N,F]`: F).
    #[allow(missing_docs)]
    Local { threads: usize, max_failures: u32 },
    /// `local-cluster[N,C,MEM]`: N executor processes of C cores and MEM MiB, spawned by the
    /// driver.
    #[allow(missing_docs)]
    LocalCluster {
        executors: usize,
        cores: usize,
        memory_mb: u64,
    },
    /// `ember://HOST:PORT`: the driver listens there and executors join over the network.
    #[allow(missing_docs)]
    Standalone { host: String, port: u16 },
}

impl MasterUrl {
    /// Parses a master URL.
    pub fn parse(url: &str) -> Result<Self> {
        let err = |reason: &str| EmberError::MasterUrl {
            url: url.into(),
            reason: reason.into(),
        };
        let u = url.trim();
        let cores = || {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        let count = |s: &str| -> Result<usize> {
            let s = s.trim();
            if s == "*" {
                return Ok(cores());
            }
            match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(err(
                    "thread and executor counts must be positive whole numbers or *",
                )),
            }
        };
        if u == "local" {
            return Ok(MasterUrl::Local {
                threads: 1,
                max_failures: 1,
            });
        }
        if let Some(inner) = u.strip_prefix("local[").and_then(|r| r.strip_suffix(']')) {
            let parts: Vec<&str> = inner.split(',').collect();
            return match parts.as_slice() {
                [n] => Ok(MasterUrl::Local {
                    threads: count(n)?,
                    max_failures: 1,
                }),
                [n, f] => {
                    let f = f
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|f| *f > 0)
                        .ok_or_else(|| err("maxFailures must be a positive whole number"))?;
                    Ok(MasterUrl::Local {
                        threads: count(n)?,
                        max_failures: f,
                    })
                }
                _ => Err(err("local[...] takes one or two values")),
            };
        }
        if let Some(inner) = u
            .strip_prefix("local-cluster[")
            .and_then(|r| r.strip_suffix(']'))
        {
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            return match parts.as_slice() {
                [n, c, m] => {
                    let executors = n
                        .parse::<usize>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| err("executor count must be positive"))?;
                    let cores = c
                        .parse::<usize>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| err("cores per executor must be positive"))?;
                    let memory_mb = m
                        .parse::<u64>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| err("memory per executor (MiB) must be positive"))?;
                    // Both are used in bytes and in all: refused here rather than wrapped later.
                    if memory_mb > u64::MAX >> 20 {
                        return Err(err("memory per executor (MiB) is too large"));
                    }
                    if executors.checked_mul(cores).is_none() {
                        return Err(err("executors times cores is too large"));
                    }
                    Ok(MasterUrl::LocalCluster {
                        executors,
                        cores,
                        memory_mb,
                    })
                }
                _ => Err(err("local-cluster takes [executors,cores,memoryMiB]")),
            };
        }
        if let Some(addr) = u.strip_prefix("ember://") {
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| err("expected ember://HOST:PORT"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| err("port must be a number from 0 to 65535"))?;
            if host.is_empty() {
                return Err(err("host is empty"));
            }
            return Ok(MasterUrl::Standalone {
                host: host.into(),
                port,
            });
        }
        Err(err("unknown form"))
    }

    /// Total task slots this master provides (Spark's default parallelism).
    pub fn total_cores(&self) -> usize {
        match self {
            MasterUrl::Local { threads, .. } => *threads,
            MasterUrl::LocalCluster {
                executors, cores, ..
            } => executors.saturating_mul(*cores),
            MasterUrl::Standalone { .. } => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys whose whole range is meaningful, so they carry no bound beyond parsing.
    const UNBOUNDED: &[(&str, &str)] = &[
        (SCHEDULER_SEED, "any 64-bit seed"),
        (
            DRIVER_MAX_RESULT_SIZE,
            "0 is unlimited, any size is a limit",
        ),
        (
            TESTING_RESERVED_MEMORY,
            "tests set it to 0; the memory check compares it",
        ),
        (
            STORAGE_UNROLL_MEMORY_THRESHOLD,
            "0 reserves nothing up front",
        ),
    ];

    #[test]
    fn every_number_size_and_choice_carries_a_bound_that_its_default_meets() {
        for e in ENTRIES {
            let numeric = matches!(e.kind, Int | Float | Size(_));
            let exempt = UNBOUNDED.iter().any(|(k, _)| *k == e.key);
            assert!(
                !numeric || exempt || e.check.is_some(),
                "{} has no bound",
                e.key
            );
            assert!(
                !(exempt && e.check.is_some()),
                "{} is listed as unbounded",
                e.key
            );
            if let (Some(c), false) = (e.check, e.default.is_empty()) {
                assert_eq!(c.refuse(e, e.default), None, "{}'s default", e.key);
            }
            // The default itself parses and passes start-up validation when set explicitly.
            if !e.default.is_empty() && e.key != TESTING_BUILD_ID {
                EmberConf::new()
                    .set(e.key, e.default)
                    .validate()
                    .unwrap_or_else(|err| panic!("{}={}: {err}", e.key, e.default));
            }
        }
    }

    #[test]
    fn validate_refuses_each_out_of_range_value_naming_the_key_in_sparks_words() {
        let cases = [
            (
                TASK_MAX_FAILURES,
                "0",
                "The retry times of task should be greater than or equal to 1",
            ),
            (
                MEMORY_STORAGE_FRACTION,
                "1.0",
                "Storage fraction must be in [0,1)",
            ),
            (MEMORY_FRACTION, "0", "must be in (0, 1]"),
            (SPECULATION_QUANTILE, "1.5", "must be in [0, 1]"),
            (DRIVER_PORT, "70000", "must be at most 65535"),
            (UI_PORT, "65536", "must be at most 65535"),
            (
                DEFAULT_PARALLELISM,
                "0",
                "Number of partitions (0) must be positive.",
            ),
            (
                LISTENER_BUS_CAPACITY,
                "0",
                "The capacity of listener bus event queue must be positive",
            ),
            (
                SHUFFLE_FILE_BUFFER,
                "4g",
                "The file buffer size must be positive and less than or equal to 2097151.",
            ),
            (
                TASK_MAX_DIRECT_RESULT_SIZE,
                "2g",
                "The max direct result size is 2GB",
            ),
            (
                RPC_MESSAGE_MAX_SIZE,
                "4096",
                "ember.rpc.message.maxSize should not be greater than 2047 MB",
            ),
            (
                BARRIER_SYNC_TIMEOUT,
                "0",
                "The value should be a positive time value.",
            ),
            (
                MAX_TASK_ATTEMPTS_PER_NODE,
                "0",
                "ember.excludeOnFailure.task.maxTaskAttemptsPerNode was 0, but must be > 0.",
            ),
            (
                SCHEDULER_MODE,
                "LIFO",
                "Unrecognized ember.scheduler.mode: LIFO",
            ),
            (UI_RETAINED_JOBS, "3000000000", "must be at most 2147483647"),
            (EXECUTOR_HEARTBEAT_INTERVAL, "0", "must be at least 1"),
            (EVENT_LOG_BUFFER, "1t", "must be between 1 and 2097151"),
        ];
        for (key, value, reason) in cases {
            let err = EmberConf::new().set(key, value).validate().unwrap_err();
            assert_eq!(
                err,
                EmberError::Config {
                    key: key.into(),
                    value: value.into(),
                    reason: reason.into()
                },
                "{key}={value}"
            );
        }
        // Where the value came from is named, as for values that do not parse.
        let (conf, _) = EmberConf::from_args(["--master", "local"]).unwrap();
        let err = EmberConf::from_args(["--conf", "ember.task.maxFailures=0"]).unwrap_err();
        assert!(err.to_string().contains("(set by --conf)"), "{err}");
        assert!(conf.validate().is_ok());
    }

    #[test]
    fn a_misspelled_key_is_reported_with_the_closest_known_key() {
        let conf = EmberConf::new()
            .set("ember.excutor.memory", "2g")
            .set("ember.locality.wiat", "1s")
            .set("ember.Task.MaxFailures", "2")
            .set("ember.something.else.entirely", "1")
            .set("not.ember.key", "x")
            .set(EXECUTOR_MEMORY, "2g");
        let unknown = conf.unknown_keys();
        let found = |k: &str| unknown.iter().find(|(u, _)| u == k).map(|(_, c)| *c);
        assert_eq!(found("ember.excutor.memory"), Some(Some(EXECUTOR_MEMORY)));
        assert_eq!(found("ember.locality.wiat"), Some(Some(LOCALITY_WAIT)));
        assert_eq!(
            found("ember.Task.MaxFailures"),
            Some(Some(TASK_MAX_FAILURES))
        );
        assert_eq!(found("ember.something.else.entirely"), Some(None));
        assert_eq!(
            found("not.ember.key"),
            None,
            "only ember.* keys are Ember's to judge"
        );
        assert_eq!(found(EXECUTOR_MEMORY), None);
        assert_eq!(edit_distance("abcd", "acbd"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn errors_say_where_a_value_was_set() {
        let (conf, _) = EmberConf::from_args(["--master", "local[2]"]).unwrap();
        assert_eq!(conf.origin(MASTER), Some("--master"));
        let conf = conf.set(LOCALITY_WAIT, "soon");
        assert_eq!(conf.origin(LOCALITY_WAIT), None);
        let e = EmberConf::from_args(["--conf", "ember.locality.wait=soon"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ember.locality.wait")
                && e.contains("\"soon\"")
                && e.contains("set by --conf"),
            "{e}"
        );
        let e = EmberConf::from_args(["--master", "local[x]"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("local[x]") && e.contains("set by --master"),
            "{e}"
        );
    }

    #[test]
    fn sizes_parse_like_spark() {
        assert_eq!(parse_size("128m", Byte).unwrap(), 128 << 20);
        assert_eq!(parse_size("128", MiB).unwrap(), 128 << 20);
        assert_eq!(parse_size("32k", Byte).unwrap(), 32 << 10);
        assert_eq!(parse_size("1g", Byte).unwrap(), 1 << 30);
        assert_eq!(parse_size("1GB", Byte).unwrap(), 1 << 30);
        assert!(parse_size("12x", Byte).is_err());
        assert!(parse_size("", Byte).is_err());
        assert!(parse_size("-1", Byte).is_err());
    }

    #[test]
    fn durations_parse_like_spark() {
        assert_eq!(parse_time_us("3s", Millis).unwrap(), 3_000_000);
        assert_eq!(parse_time_us("100ms", Millis).unwrap(), 100_000);
        assert_eq!(parse_time_us("100", Millis).unwrap(), 100_000);
        assert_eq!(parse_time_us("2min", Seconds).unwrap(), 120_000_000);
        assert_eq!(parse_time_us("120", Seconds).unwrap(), 120_000_000);
        assert!(parse_time_us("3 parsecs", Millis).is_err());
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let conf = EmberConf::new();
        assert_eq!(conf.get_u64(TASK_MAX_FAILURES).unwrap(), 4);
        assert_eq!(conf.get_time_ms(LOCALITY_WAIT).unwrap(), 3000);
        assert_eq!(conf.get_time_ms(NETWORK_TIMEOUT).unwrap(), 120_000);
        assert_eq!(
            conf.get_size_bytes(DRIVER_MAX_RESULT_SIZE).unwrap(),
            1 << 30
        );
        assert_eq!(
            conf.get_size_bytes(REDUCER_MAX_SIZE_IN_FLIGHT).unwrap(),
            48 << 20
        );
        let bad = EmberConf::new().set(LOCALITY_WAIT, "soon");
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("ember.locality.wait") && e.contains("soon"),
            "{e}"
        );
    }

    #[test]
    fn command_line_and_master_urls() {
        let (conf, rest) = EmberConf::from_args([
            "in.txt",
            "--master",
            "local[3]",
            "--conf",
            "ember.task.cpus=2",
            "--top=5",
        ])
        .unwrap();
        assert_eq!(rest, vec!["in.txt", "--top=5"]);
        assert_eq!(
            conf.master().unwrap(),
            MasterUrl::Local {
                threads: 3,
                max_failures: 1
            }
        );
        assert_eq!(conf.get_u64(TASK_CPUS).unwrap(), 2);
        assert_eq!(
            MasterUrl::parse("local[2,4]").unwrap(),
            MasterUrl::Local {
                threads: 2,
                max_failures: 4
            }
        );
        assert_eq!(
            MasterUrl::parse("local-cluster[2,1,1024]").unwrap(),
            MasterUrl::LocalCluster {
                executors: 2,
                cores: 1,
                memory_mb: 1024
            }
        );
        assert_eq!(
            MasterUrl::parse("ember://0.0.0.0:7077").unwrap(),
            MasterUrl::Standalone {
                host: "0.0.0.0".into(),
                port: 7077
            }
        );
        assert!(MasterUrl::parse("local[0]").is_err());
        assert!(MasterUrl::parse("yarn").is_err());
        // Sizes that wrapped once in bytes or in all (fuzz regression, master_url).
        let huge = format!("local-cluster[1,1,{}]", u64::MAX >> 19);
        assert!(
            matches!(MasterUrl::parse(&huge), Err(EmberError::MasterUrl { reason, .. })
            if reason.contains("too large"))
        );
        let many = format!("local-cluster[{},{},1024]", usize::MAX / 2, 3);
        assert!(MasterUrl::parse(&many).is_err());
        // A blank flag or size passed validation, then failed when read (fuzz invariant,
        // conf_values).
        for key in [SHUFFLE_COMPRESS, RPC_MESSAGE_MAX_SIZE] {
            assert!(EmberConf::new().set(key, " ").validate().is_err(), "{key}");
        }
        assert!(EmberConf::new()
            .set(DEFAULT_PARALLELISM, "")
            .validate()
            .is_ok());
        assert!(EmberConf::from_args(["--conf", "nokey"]).is_err());
        assert!(EmberConf::from_args(["--master"]).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_the_debug_string_or_errors() {
        let conf = EmberConf::new()
            .set(AUTHENTICATE_SECRET, "hunter2")
            .set("ember.hadoop.fs.s3a.access.key", "AKIAXYZ")
            .set("ember.app.note", "password=opensesame")
            .set(EXECUTOR_CORES, "3");
        for shown in [
            format!("{conf:?}"),
            format!("{conf:#?}"),
            conf.to_debug_string(),
        ] {
            for secret in ["hunter2", "AKIAXYZ", "opensesame"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(
                shown.contains(redact::REDACTED)
                    && shown.contains("ember.executor.cores")
                    && shown.contains('3'),
                "{shown}"
            );
        }
        assert!(conf
            .to_debug_string()
            .contains("ember.authenticate.secret=*********(redacted)"));
        // A value that fails to parse is not echoed in the error when its key looks secret.
        let e = EmberConf::new()
            .set("ember.some.token.size", "s3cr3t-value")
            .get_size_bytes("ember.some.token.size")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("s3cr3t-value") && e.contains("ember.some.token.size"),
            "{e}"
        );
        // A custom pattern, and a broken one: reported at start-up, and the default applies.
        let custom = EmberConf::new()
            .set(REDACTION_REGEX, "(?i)note")
            .set("ember.app.note", "x1")
            .set(AUTHENTICATE_SECRET, "y2");
        // Redacted: the note, the pattern itself (its value matches), and the secret, always.
        assert_eq!(
            custom
                .redacted()
                .into_iter()
                .filter(|(_, v)| v == redact::REDACTED)
                .count(),
            3
        );
        let broken = EmberConf::new()
            .set(REDACTION_REGEX, "(oops")
            .set(AUTHENTICATE_SECRET, "y2");
        let e = broken.validate().unwrap_err().to_string();
        assert!(
            e.contains("ember.redaction.regex") && e.contains("not a regular expression"),
            "{e}"
        );
        assert!(!format!("{broken:?}").contains("y2"));
    }

    #[test]
    fn out_of_range_integers_are_refused_naming_the_key_not_cast() {
        let conf = EmberConf::new().set(DRIVER_PORT, "70000");
        let e = conf.validate().unwrap_err().to_string();
        assert!(
            e.contains("ember.driver.port") && e.contains("70000") && e.contains("at most 65535"),
            "{e}"
        );
        assert_eq!(
            EmberConf::new()
                .set(DRIVER_PORT, "65535")
                .get_u64_at_most(DRIVER_PORT, 65535)
                .unwrap(),
            65535
        );
        assert!(EmberConf::new().set(DRIVER_PORT, "-1").validate().is_err());
    }
}
