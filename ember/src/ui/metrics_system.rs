//! The driver's metrics system (Spark's `MetricsSystem`, `MetricsConfig`, `MetricsServlet`,
//! `PrometheusServlet`, `PrometheusResource`, `ConsoleSink`, `CsvSink`).
//!
//! Configuration has Spark's shape: a `metrics.properties`-like file named by
//! `ember.metrics.conf`, then `ember.metrics.conf.<instance>.<property>` settings over it
//! (`*.sink.console.class=org.apache.spark.metrics.sink.ConsoleSink`,
//! `driver.sink.csv.period=5`, …). The metrics are read from the UI's store, the listener bus
//! and `/proc/self` when asked: there is no registry that every event updates.
//!
//! Names are Spark's: the driver's sources (`DAGScheduler`, `BlockManager`, `LiveListenerBus`,
//! `JVMCPU`, `ExecutorMetrics`) under `<namespace>.driver.`, each executor's `executor` source
//! (the `threadpool.*` and `filesystem.*` gauges its heartbeats carry) under
//! `<namespace>.<executor id>.executor.`; the namespace is `ember.metrics.namespace`, by default
//! the application's id (Spark's `spark.metrics.namespace`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};
use tracing::warn;

use crate::conf::{self, EmberConf};
use crate::error::{EmberError, Result};
use crate::listener::QueueStats;
use crate::status::store::{JobStatus, StageStatus, State};

/// Spark's prefix of metrics properties among the application's settings.
pub const CONF_PREFIX: &str = "ember.metrics.conf.";

/// The metrics configuration: `instance.property` → value (instance `*` for all).
#[derive(Clone, Debug, Default)]
pub struct MetricsConfig {
    props: BTreeMap<String, String>,
}

/// What a sink is.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkKind {
    /// Prints every metric every period (Spark's `ConsoleSink`).
    Console,
    /// Appends every metric to `<directory>/<name>.csv` every period (Spark's `CsvSink`).
    Csv(PathBuf),
    /// Serves the metrics on the UI's port at a path (Spark's `PrometheusServlet`).
    PrometheusServlet(String),
    /// Serves the metrics as JSON on the UI's port at a path (Spark's `MetricsServlet`).
    MetricsServlet(String),
}

/// One configured sink of an instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Sink {
    /// Its name in the configuration (`console` in `*.sink.console.class`).
    pub name: String,
    /// What it is.
    pub kind: SinkKind,
    /// How often it reports (`period` in `unit`, Spark's defaults 10 seconds).
    pub period: Duration,
}

fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let i = l.find(['=', ':', ' ', '\t'])?;
            let (k, v) = (l[..i].trim(), l[i + 1..].trim());
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

impl MetricsConfig {
    /// Ember's defaults (Spark's `setDefaultProperties`: the JSON servlet at `/metrics/json`;
    /// and the Prometheus servlet at `/metrics/prometheus`, which Spark leaves off), then the
    /// file of `ember.metrics.conf`, then the `ember.metrics.conf.*` settings.
    pub fn from_conf(c: &EmberConf) -> Result<Self> {
        let mut props = BTreeMap::new();
        props.insert(
            "*.sink.servlet.class".to_string(),
            "org.apache.spark.metrics.sink.MetricsServlet".to_string(),
        );
        props.insert("*.sink.servlet.path".to_string(), "/metrics/json".to_string());
        props.insert(
            "*.sink.prometheusServlet.class".to_string(),
            "org.apache.spark.metrics.sink.PrometheusServlet".to_string(),
        );
        props.insert(
            "*.sink.prometheusServlet.path".to_string(),
            "/metrics/prometheus".to_string(),
        );
        let file = c.get(conf::METRICS_CONF);
        if !file.is_empty() {
            let text = std::fs::read_to_string(file).map_err(|e| EmberError::Config {
                key: conf::METRICS_CONF.into(),
                value: file.into(),
                reason: format!("cannot read the metrics configuration: {e}"),
            })?;
            props.extend(parse_properties(&text));
        }
        for (k, v) in c.iter() {
            if let Some(p) = k.strip_prefix(CONF_PREFIX) {
                props.insert(p.to_string(), v.to_string());
            }
        }
        Ok(MetricsConfig { props })
    }

    /// Every property, for the Environment page's "Metrics Properties".
    pub fn properties(&self) -> Vec<(String, String)> {
        self.props
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The properties of `instance`: its own over those of `*`, without the instance prefix.
    fn instance(&self, instance: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for prefix in ["*.", &format!("{instance}.")] {
            for (k, v) in &self.props {
                if let Some(p) = k.strip_prefix(prefix) {
                    out.insert(p.to_string(), v.clone());
                }
            }
        }
        out
    }

    /// The sinks of `instance` (`driver`), in name order; a sink of an unknown class is left
    /// out with a warning, as Spark logs and skips a sink it cannot create.
    pub fn sinks(&self, instance: &str) -> Vec<Sink> {
        let props = self.instance(instance);
        let mut out = Vec::new();
        for (k, class) in &props {
            let Some(name) = k
                .strip_prefix("sink.")
                .and_then(|r| r.strip_suffix(".class"))
            else {
                continue;
            };
            let get = |p: &str| props.get(&format!("sink.{name}.{p}")).cloned();
            let period = period(get("period").as_deref(), get("unit").as_deref());
            let short = class.rsplit('.').next().unwrap_or(class);
            let kind = match short {
                "ConsoleSink" => SinkKind::Console,
                "CsvSink" => SinkKind::Csv(PathBuf::from(
                    get("directory").unwrap_or_else(|| std::env::temp_dir().display().to_string()),
                )),
                "PrometheusServlet" => SinkKind::PrometheusServlet(
                    get("path").unwrap_or_else(|| "/metrics/prometheus".into()),
                ),
                "MetricsServlet" => SinkKind::MetricsServlet(
                    get("path").unwrap_or_else(|| "/metrics/json".into()),
                ),
                _ => {
                    warn!(
                        "Sink class {class} cannot be instantiated: Ember knows ConsoleSink, \
                         CsvSink, MetricsServlet and PrometheusServlet"
                    );
                    continue;
                }
            };
            out.push(Sink {
                name: name.to_string(),
                kind,
                period,
            });
        }
        out
    }
}

/// Spark's `period` and `unit` of a polled sink (10 seconds by default, at least 1 ms).
fn period(period: Option<&str>, unit: Option<&str>) -> Duration {
    let n: u64 = period.and_then(|p| p.trim().parse().ok()).unwrap_or(10);
    let ms = match unit.map(|u| u.trim().to_ascii_lowercase()).as_deref() {
        Some("milliseconds") => n,
        Some("minutes") => n * 60_000,
        Some("hours") => n * 3_600_000,
        Some("days") => n * 86_400_000,
        _ => n * 1000,
    };
    Duration::from_millis(ms.max(1))
}

/// A metric's kind, as Spark's registry has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A value now.
    Gauge,
    /// A count that only grows.
    Counter,
}

/// One metric: its dotted name (`app-….driver.DAGScheduler.job.activeJobs`), kind and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The full name.
    pub name: String,
    /// Gauge or counter.
    pub kind: Kind,
    /// The value.
    pub value: f64,
}

/// This process's CPU time and memory, from `/proc/self` (what Spark reads from the JVM and
/// its process tree).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time of every thread, nanoseconds (Spark's `JVMCPU.jvmCpuTime`).
    pub cpu_time_ns: u64,
    /// Resident set size, bytes (Spark's `ProcessTreeJVMRSSMemory`).
    pub rss_bytes: u64,
    /// Virtual memory size, bytes (Spark's `ProcessTreeJVMVMemory`).
    pub virtual_bytes: u64,
    /// Threads of the process.
    pub threads: u64,
}

impl ProcessStats {
    /// Reads `/proc/self/stat` and `/proc/self/status`; fields it cannot read are 0.
    pub fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Self::parse(&stat, &status)
    }

    /// Parses the two files. CPU times in `stat` are in clock ticks of USER_HZ, which Linux
    /// fixes at 100 per second for user space.
    pub fn parse(stat: &str, status: &str) -> Self {
        let after_name = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        // After the name: state (3rd field), …, utime (14th), stime (15th).
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        let cpu_ticks = tick(11) + tick(12);
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ProcessStats {
            cpu_time_ns: cpu_ticks * 10_000_000,
            rss_bytes: kb("VmRSS:") * 1024,
            virtual_bytes: kb("VmSize:") * 1024,
            threads: kb("Threads:"),
        }
    }
}

/// The driver's metrics and each executor's `executor` source now.
pub fn snapshot(
    st: &State,
    queues: &[QueueStats],
    process: &ProcessStats,
    namespace: &str,
) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut put = |name: String, kind: Kind, value: f64| out.push(Metric { name, kind, value });
    let d = format!("{namespace}.driver");
    let stages = |s: StageStatus| st.stages.values().filter(|x| x.status == s).count() as f64;
    put(format!("{d}.DAGScheduler.stage.failedStages"), Kind::Gauge, stages(StageStatus::Failed));
    put(format!("{d}.DAGScheduler.stage.runningStages"), Kind::Gauge, stages(StageStatus::Active));
    put(format!("{d}.DAGScheduler.stage.waitingStages"), Kind::Gauge, stages(StageStatus::Pending));
    let all_jobs = st.jobs.keys().next_back().map_or(0, |j| j + 1);
    put(format!("{d}.DAGScheduler.job.allJobs"), Kind::Gauge, all_jobs as f64);
    put(
        format!("{d}.DAGScheduler.job.activeJobs"),
        Kind::Gauge,
        st.jobs.values().filter(|j| j.status == JobStatus::Running).count() as f64,
    );
    // BlockManager: the sums over live executors, in MiB as Spark's source reports them.
    let live = || st.executors.values().filter(|e| e.is_active);
    let mb = |b: i64| (b.max(0) / (1024 * 1024)) as f64;
    let max: i64 = live().map(|e| e.max_memory).sum();
    let used: i64 = live().map(|e| e.memory_used).sum();
    let disk: i64 = live().map(|e| e.disk_used).sum();
    put(format!("{d}.BlockManager.memory.maxMem_MB"), Kind::Gauge, mb(max));
    put(format!("{d}.BlockManager.memory.memUsed_MB"), Kind::Gauge, mb(used));
    put(format!("{d}.BlockManager.memory.remainingMem_MB"), Kind::Gauge, mb(max - used));
    put(format!("{d}.BlockManager.disk.diskSpaceUsed_MB"), Kind::Gauge, mb(disk));
    let posted: u64 = queues.iter().map(|q| q.processed + q.queued + q.dropped).max().unwrap_or(0);
    put(format!("{d}.LiveListenerBus.numEventsPosted"), Kind::Counter, posted as f64);
    for q in queues {
        let name = q.name.clone();
        put(
            format!("{d}.LiveListenerBus.queue.{name}.numDroppedEvents"),
            Kind::Counter,
            q.dropped as f64,
        );
        put(format!("{d}.LiveListenerBus.queue.{name}.size"), Kind::Gauge, q.queued as f64);
    }
    put(format!("{d}.JVMCPU.jvmCpuTime"), Kind::Gauge, process.cpu_time_ns as f64);
    put(
        format!("{d}.ExecutorMetrics.ProcessTreeJVMRSSMemory"),
        Kind::Gauge,
        process.rss_bytes as f64,
    );
    put(
        format!("{d}.ExecutorMetrics.ProcessTreeJVMVMemory"),
        Kind::Gauge,
        process.virtual_bytes as f64,
    );
    put(format!("{d}.process.threads"), Kind::Gauge, process.threads as f64);
    for e in st.executors.values().filter(|e| e.is_active) {
        let Some(src) = &e.source else { continue };
        for (name, v) in src.gauges() {
            put(format!("{namespace}.{}.executor.{name}", e.id), Kind::Gauge, v as f64);
        }
    }
    out
}

/// Spark's `PrometheusServlet.normalizeKey`: `metrics_` and the name with every character
/// outside `[a-zA-Z0-9]` made `_`, then `_`.
fn normalize_key(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 9);
    s.push_str("metrics_");
    s.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    s.push('_');
    s
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `/metrics/prometheus` (Spark's `PrometheusServlet.getMetricsSnapshot`): a gauge as
/// `…_Number{type="gauges"}` and `…_Value{type="gauges"}`, a counter as
/// `…_Count{type="counters"}`.
pub fn prometheus_servlet(metrics: &[Metric]) -> String {
    let mut s = String::new();
    for m in metrics.iter().filter(|m| m.kind == Kind::Gauge) {
        let k = normalize_key(&m.name);
        let v = number(m.value);
        let _ = writeln!(s, "{k}Number{{type=\"gauges\"}} {v}");
        let _ = writeln!(s, "{k}Value{{type=\"gauges\"}} {v}");
    }
    for m in metrics.iter().filter(|m| m.kind == Kind::Counter) {
        let _ = writeln!(
            s,
            "{}Count{{type=\"counters\"}} {}",
            normalize_key(&m.name),
            number(m.value)
        );
    }
    s
}

/// The version Dropwizard's `MetricsModule` (metrics-json 4) writes first.
const METRICS_JSON_VERSION: &str = "4.0.0";

/// A value as Jackson writes Spark's gauges: whole numbers without a fraction.
fn json_number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// `/metrics/json` (Spark's `MetricsServlet.getMetricsSnapshot`: the registry as Dropwizard's
/// `MetricsModule` writes it): `version`, then `gauges` (`{"value": …}`), `counters`
/// (`{"count": …}`), `histograms`, `meters` and `timers` by name. Ember's metrics are gauges
/// and counters, so the last three are empty.
pub fn metrics_json(metrics: &[Metric]) -> String {
    use serde_json::{json, Map, Value};
    let (mut gauges, mut counters) = (Map::new(), Map::new());
    for m in metrics {
        match m.kind {
            Kind::Gauge => gauges.insert(m.name.clone(), json!({ "value": json_number(m.value) })),
            Kind::Counter => counters.insert(m.name.clone(), json!({ "count": m.value as i64 })),
        };
    }
    json!({
        "version": METRICS_JSON_VERSION,
        "gauges": Value::Object(gauges),
        "counters": Value::Object(counters),
        "histograms": {},
        "meters": {},
        "timers": {},
    })
    .to_string()
}

/// A label value as Prometheus's text format writes it (`\`, `"` and newlines escaped).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `/metrics/executors/prometheus` (Spark's `PrometheusResource`, `ember_info` for
/// `spark_info`): each live executor's summary with its application and id as labels.
pub fn prometheus_executors(st: &State) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ember_info{{version=\"{}\", revision=\"\"}} 1.0",
        crate::status::views::EMBER_VERSION
    );
    let (app_id, app_name) = st
        .app
        .as_ref()
        .map_or((String::new(), String::new()), |a| (a.id.clone(), a.name.clone()));
    for e in crate::status::views::executors(st, true) {
        let labels = format!(
            "{{application_id=\"{}\", application_name=\"{}\", executor_id=\"{}\"}}",
            label(&app_id),
            label(&app_name),
            label(&e.id)
        );
        let p = "metrics_executor_";
        let mut line = |name: &str, v: String| {
            let _ = writeln!(s, "{p}{name}{labels} {v}");
        };
        line("rddBlocks", e.rdd_blocks.to_string());
        line("memoryUsed_bytes", e.memory_used.to_string());
        line("diskUsed_bytes", e.disk_used.to_string());
        line("totalCores", e.total_cores.to_string());
        line("maxTasks", e.max_tasks.to_string());
        line("activeTasks", e.active_tasks.to_string());
        line("failedTasks_total", e.failed_tasks.to_string());
        line("completedTasks_total", e.completed_tasks.to_string());
        line("totalTasks_total", e.total_tasks.to_string());
        line("totalDuration_seconds_total", format!("{}", e.total_duration as f64 * 0.001));
        line("totalGCTime_seconds_total", format!("{}", e.total_gc_time as f64 * 0.001));
        line("totalInputBytes_bytes_total", e.total_input_bytes.to_string());
        line("totalShuffleRead_bytes_total", e.total_shuffle_read.to_string());
        line("totalShuffleWrite_bytes_total", e.total_shuffle_write.to_string());
        line("maxMemory_bytes", e.max_memory.to_string());
        if let Some(m) = &e.memory_metrics {
            line("usedOnHeapStorageMemory_bytes", m.used_on_heap_storage_memory.to_string());
            line("usedOffHeapStorageMemory_bytes", m.used_off_heap_storage_memory.to_string());
            line("totalOnHeapStorageMemory_bytes", m.total_on_heap_storage_memory.to_string());
            line("totalOffHeapStorageMemory_bytes", m.total_off_heap_storage_memory.to_string());
        }
    }
    s
}

/// What a polled sink reads: the metrics now.
pub type MetricsSource = Arc<dyn Fn() -> Vec<Metric> + Send + Sync>;

/// The running polled sinks (console, CSV), each on a thread of its own.
pub struct PolledSinks {
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl PolledSinks {
    /// Starts a thread per console or CSV sink of `sinks`.
    pub fn start(sinks: &[Sink], source: MetricsSource) -> Result<Self> {
        let (tx, rx) = bounded::<()>(0);
        let mut threads = Vec::new();
        for sink in sinks {
            if matches!(
                sink.kind,
                SinkKind::PrometheusServlet(_) | SinkKind::MetricsServlet(_)
            ) {
                continue;
            }
            if let SinkKind::Csv(dir) = &sink.kind {
                std::fs::create_dir_all(dir).map_err(|e| EmberError::io(dir, e))?;
            }
            let (rx, source, sink) = (rx.clone(), source.clone(), sink.clone());
            let t = std::thread::Builder::new()
                .name(format!("metrics-{}-sink", sink.name))
                .spawn(move || {
                    // A closed channel (the sinks' stop) ends the wait and the thread.
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        rx.recv_timeout(sink.period)
                    {
                        report(&sink.kind, &source());
                    }
                    // One last report at the stop, as Spark's reporters do.
                    report(&sink.kind, &source());
                })
                .map_err(|e| EmberError::io("metrics sink thread", e))?;
            threads.push(t);
        }
        Ok(PolledSinks {
            stop: Some(tx),
            threads,
        })
    }

    /// Stops the sinks after their last report.
    pub fn stop(&mut self) {
        self.stop.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for PolledSinks {
    fn drop(&mut self) {
        self.stop();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One report: Dropwizard's console layout, or a line `t,value` per metric file (seconds since
/// the epoch, as Dropwizard's `CsvReporter` writes).
fn report(kind: &SinkKind, metrics: &[Metric]) {
    match kind {
        SinkKind::Console => {
            let mut s = format!("{} ", crate::util::gmt_date(now_ms() as i64));
            s.push_str(&"=".repeat(40));
            s.push_str("\n\n-- Gauges ");
            s.push_str(&"-".repeat(58));
            s.push('\n');
            for m in metrics.iter().filter(|m| m.kind == Kind::Gauge) {
                let _ = write!(s, "{}\n             value = {}\n", m.name, number(m.value));
            }
            s.push_str("\n-- Counters --------------------------------------------------------\n");
            for m in metrics.iter().filter(|m| m.kind == Kind::Counter) {
                let _ = write!(s, "{}\n             count = {}\n", m.name, number(m.value));
            }
            let _ = std::io::stdout().lock().write_all(s.as_bytes());
        }
        SinkKind::Csv(dir) => {
            let t = now_ms() / 1000;
            for m in metrics {
                let path = dir.join(format!("{}.csv", m.name));
                let new = !path.exists();
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
                match file {
                    Ok(mut f) => {
                        let header = match (new, m.kind) {
                            (true, Kind::Gauge) => "t,value\n",
                            (true, Kind::Counter) => "t,count\n",
                            _ => "",
                        };
                        let _ = writeln!(f, "{header}{t},{}", number(m.value));
                    }
                    Err(e) => {
                        warn!("the CSV metrics sink cannot write {}: {e}", path.display());
                        return;
                    }
                }
            }
        }
        SinkKind::PrometheusServlet(_) | SinkKind::MetricsServlet(_) => {}
    }
}

/// What the Prometheus endpoints need besides the store.
pub struct MetricsState {
    /// `ember.metrics.namespace`, by default the application's id.
    pub namespace: String,
    /// Where the Prometheus servlet sink serves the driver's metrics, if configured.
    pub servlet_path: Option<String>,
    /// Where the JSON servlet sink serves them (`/metrics/json`), if configured.
    pub json_path: Option<String>,
    /// `ember.ui.prometheus.enabled`: `/metrics/executors/prometheus`.
    pub executors_enabled: bool,
    /// The listener bus's queues now.
    pub queues: Arc<dyn Fn() -> Vec<QueueStats> + Send + Sync>,
}

impl MetricsState {
    /// The settings of `c` for the application `app_id`, with the bus's queues read by `queues`.
    pub fn from_conf(
        c: &EmberConf,
        config: &MetricsConfig,
        app_id: &str,
        queues: Arc<dyn Fn() -> Vec<QueueStats> + Send + Sync>,
    ) -> Result<Self> {
        let ns = c.get(conf::METRICS_NAMESPACE);
        let sinks = config.sinks("driver");
        let path_of = |want: fn(&SinkKind) -> Option<&String>| {
            sinks.iter().find_map(|s| want(&s.kind).map(|p| (s.name.clone(), p.clone())))
        };
        let prometheus = path_of(|k| match k {
            SinkKind::PrometheusServlet(p) => Some(p),
            _ => None,
        });
        let json = path_of(|k| match k {
            SinkKind::MetricsServlet(p) => Some(p),
            _ => None,
        });
        for (name, p) in prometheus.iter().chain(&json) {
            let bad = if !p.starts_with('/') || p.starts_with("/api/") || p.contains('{') {
                Some("a path of the UI's server: it starts with / and is not under /api")
            } else if prometheus.as_ref().zip(json.as_ref()).is_some_and(|(a, b)| a.1 == b.1) {
                Some("the JSON and the Prometheus servlets need paths of their own")
            } else {
                None
            };
            if let Some(reason) = bad {
                return Err(EmberError::Config {
                    key: format!("{CONF_PREFIX}*.sink.{name}.path"),
                    value: p.clone(),
                    reason: reason.into(),
                });
            }
        }
        Ok(MetricsState {
            namespace: if ns.is_empty() { app_id.to_string() } else { ns.to_string() },
            servlet_path: prometheus.map(|(_, p)| p),
            json_path: json.map(|(_, p)| p),
            executors_enabled: c.get_bool(conf::UI_PROMETHEUS_ENABLED)?,
            queues,
        })
    }

    /// The metrics now, read from `st`.
    pub fn snapshot(&self, st: &State) -> Vec<Metric> {
        snapshot(st, &(self.queues)(), &ProcessStats::read(), &self.namespace)
    }
}

fn text(body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn driver_prometheus(
    axum::extract::State(s): axum::extract::State<super::rest::ApiState>,
) -> axum::response::Response {
    let metrics = s.store.read(|st| s.metrics.snapshot(st));
    text(prometheus_servlet(&metrics))
}

async fn driver_json(
    axum::extract::State(s): axum::extract::State<super::rest::ApiState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let metrics = s.store.read(|st| s.metrics.snapshot(st));
    (
        [(axum::http::header::CONTENT_TYPE, "text/json;charset=utf-8")],
        metrics_json(&metrics),
    )
        .into_response()
}

async fn executors_prometheus(
    axum::extract::State(s): axum::extract::State<super::rest::ApiState>,
) -> axum::response::Response {
    text(s.store.read(prometheus_executors))
}

/// The metrics endpoints that are on: the servlet sinks' paths (JSON, Prometheus), and
/// `/metrics/executors/prometheus` with `ember.ui.prometheus.enabled`.
pub fn routes(state: super::rest::ApiState) -> axum::Router {
    use axum::routing::get;
    let mut r = axum::Router::new();
    if let Some(p) = &state.metrics.servlet_path {
        r = r.route(p, get(driver_prometheus));
    }
    if let Some(p) = &state.metrics.json_path {
        r = r.route(p, get(driver_json));
    }
    if state.metrics.executors_enabled {
        r = r.route("/metrics/executors/prometheus", get(executors_prometheus));
    }
    r.with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_has_sparks_shape() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metrics.properties");
        std::fs::write(
            &file,
            "# comment\n*.sink.console.class=org.apache.spark.metrics.sink.ConsoleSink\n\
             *.sink.console.period=20\n\
             driver.sink.csv.class=org.apache.spark.metrics.sink.CsvSink\n",
        )
        .unwrap();
        let c = EmberConf::new()
            .set(conf::METRICS_CONF, file.display().to_string())
            .set("ember.metrics.conf.driver.sink.console.period", "250")
            .set("ember.metrics.conf.driver.sink.console.unit", "milliseconds")
            .set("ember.metrics.conf.driver.sink.csv.directory", "/x");
        let m = MetricsConfig::from_conf(&c).unwrap();
        let sinks = m.sinks("driver");
        assert_eq!(sinks.len(), 4, "{sinks:?}");
        assert_eq!(sinks[0].kind, SinkKind::Console);
        assert_eq!(sinks[0].period, Duration::from_millis(250));
        assert_eq!(sinks[1].kind, SinkKind::Csv("/x".into()));
        assert_eq!(sinks[1].period, Duration::from_secs(10));
        assert_eq!(
            sinks[2].kind,
            SinkKind::PrometheusServlet("/metrics/prometheus".into())
        );
        assert_eq!(sinks[3].kind, SinkKind::MetricsServlet("/metrics/json".into()));
        // Another instance sees only the `*` properties.
        assert_eq!(m.sinks("executor").len(), 3);
    }

    #[test]
    fn proc_files_give_cpu_time_and_memory() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        let status = "Name:\tx\nVmSize:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t9\n";
        let p = ProcessStats::parse(stat, status);
        assert_eq!(p.cpu_time_ns, 300 * 10_000_000);
        assert_eq!(p.rss_bytes, 1024 * 1024);
        assert_eq!(p.virtual_bytes, 2048 * 1024);
        assert_eq!(p.threads, 9);
        let me = ProcessStats::read();
        assert!(me.rss_bytes > 0 && me.threads >= 1);
    }

    #[test]
    fn prometheus_names_are_sparks() {
        let m = [
            Metric {
                name: "app-1.driver.DAGScheduler.job.activeJobs".into(),
                kind: Kind::Gauge,
                value: 2.0,
            },
            Metric {
                name: "app-1.driver.LiveListenerBus.numEventsPosted".into(),
                kind: Kind::Counter,
                value: 7.0,
            },
        ];
        let text = prometheus_servlet(&m);
        assert!(text.contains(
            "metrics_app_1_driver_DAGScheduler_job_activeJobs_Number{type=\"gauges\"} 2\n"
        ));
        assert!(text.contains(
            "metrics_app_1_driver_DAGScheduler_job_activeJobs_Value{type=\"gauges\"} 2\n"
        ));
        assert!(text
            .contains("_LiveListenerBus_numEventsPosted_Count{type=\"counters\"} 7\n"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let json: serde_json::Value = serde_json::from_str(&metrics_json(&m)).unwrap();
        assert_eq!(json["version"], "4.0.0");
        assert_eq!(json["gauges"]["app-1.driver.DAGScheduler.job.activeJobs"]["value"], 2);
        assert_eq!(json["counters"]["app-1.driver.LiveListenerBus.numEventsPosted"]["count"], 7);
        for kind in ["histograms", "meters", "timers"] {
            assert_eq!(json[kind], serde_json::json!({}), "{kind}");
        }
    }

    #[test]
    fn the_two_servlets_cannot_share_a_path() {
        let c = EmberConf::new().set(
            "ember.metrics.conf.*.sink.servlet.path",
            "/metrics/prometheus",
        );
        let config = MetricsConfig::from_conf(&c).unwrap();
        let err = MetricsState::from_conf(&c, &config, "app", Arc::new(Vec::new))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("paths of their own"), "{err}");
    }
}
