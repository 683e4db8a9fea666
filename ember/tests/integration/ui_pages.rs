//! The web UI's pages, the thread dumps and the Prometheus endpoints over HTTP with a real
//! client (`ureq`), in `local[2]` and `local-cluster[2,1,1024]`, while a job runs (its tasks
//! wait on a TCP latch the test holds: in local-cluster they run in other processes) and after;
//! the metrics system's CSV sink; the store's limits under a 100,000-task job.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ember::prelude::*;
use ember::storage::StorageLevel;

use crate::common::{context, is_cluster, sorted};

const WAIT: Duration = Duration::from_secs(120);

fn ui_context(master: &str, extra: &[(&str, &str)]) -> Context {
    let mut settings = vec![
        ("ember.ui.enabled", "true"),
        ("ember.ui.port", "0"),
        ("ember.app.name", "ui <pages> & \"quotes\""),
    ];
    settings.extend_from_slice(extra);
    context(master, &settings)
}

/// GET `path` on the UI: status, content type and body.
fn get(ctx: &Context, path: &str) -> (u16, String, String) {
    let url = format!("{}{path}", ctx.ui_url().expect("the UI is on"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WAIT))
        .build()
        .into();
    let mut resp = agent
        .get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (status, ctype, body)
}

/// GET that must answer 200 with HTML holding each of `needles`.
fn page(ctx: &Context, path: &str, needles: &[&str]) -> String {
    let (status, ctype, body) = get(ctx, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    assert!(ctype.starts_with("text/html"), "GET {path}: {ctype}");
    assert!(
        body.starts_with("<!DOCTYPE html>") && body.ends_with("</html>"),
        "{path}"
    );
    for n in needles {
        assert!(body.contains(n), "GET {path}: no {n:?} in\n{body}");
    }
    // Data never reaches a page unescaped (the application's name has markup in it).
    assert!(!body.contains("ui <pages>"), "GET {path}: unescaped name");
    // Nothing is fetched from elsewhere.
    assert!(
        !body.contains("src=\"http") && !body.contains("href=\"http"),
        "{path}: {body}"
    );
    body
}

/// The Prometheus text, parsed by a real parser; its samples by name.
fn scrape(ctx: &Context, path: &str) -> Vec<prometheus_parse::Sample> {
    let (status, ctype, body) = get(ctx, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    assert!(!scrape.samples.is_empty(), "{body}");
    // Every line is a sample the parser understood.
    assert_eq!(scrape.samples.len(), body.lines().count(), "{body}");
    scrape.samples
}

fn value(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The tasks of a latched job connect here and wait until the test closes their connections;
/// once it is open, a task finds no listener and goes on at once.
struct Latch {
    listener: Option<TcpListener>,
    held: Vec<TcpStream>,
}

impl Latch {
    fn new() -> Self {
        Latch {
            listener: Some(TcpListener::bind("127.0.0.1:0").unwrap()),
            held: Vec::new(),
        }
    }

    fn address(&self) -> String {
        self.listener
            .as_ref()
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    }

    /// Waits until `n` tasks wait on the latch.
    fn wait_for(&mut self, n: usize) {
        let l = self.listener.as_ref().expect("not open yet");
        while self.held.len() < n {
            let (s, _) = l.accept().expect("a task connects");
            self.held.push(s);
        }
    }

    fn open(&mut self) {
        self.listener = None;
        self.held.clear();
    }
}

/// What a latched task runs: connect, then wait until the test closes the connection (at most
/// `WAIT`, so a failed test never leaves a task behind).
fn wait_on_latch(address: &str) {
    let Ok(mut s) = TcpStream::connect(address) else {
        return; // the latch is open
    };
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.read_to_end(&mut Vec::new());
}

fn app_id(ctx: &Context) -> String {
    ctx.application_id().to_string()
}

#[test]
fn every_page_and_endpoint_while_a_job_runs_and_after() {
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        let ctx = ui_context(master, &[]);
        // A cached RDD, for the Storage pages.
        let cached = ctx
            .parallelize((0..1000u32).collect::<Vec<_>>(), 4)
            .map(|x| x * 2)
            .persist(StorageLevel::MEMORY_ONLY);
        assert_eq!(cached.count().unwrap(), 1000);
        let rdd_id = cached.id();
        // A job whose two first tasks hold until the latch opens.
        let mut latch = Latch::new();
        let address = latch.address();
        let job_ctx = ctx.clone();
        let job = std::thread::spawn(move || {
            job_ctx
                .parallelize((0..10u32).collect::<Vec<_>>(), 10)
                .map(func!(move |x: u32| {
                    wait_on_latch(address);
                    (x % 3, x)
                }))
                .reduce_by_key(|a, b| a + b, 2)
                .count()
        });
        latch.wait_for(2);
        assert!(ctx.wait_for_listeners(WAIT));
        let running = check_pages(&ctx, master, rdd_id, true);
        assert!(running.contains("Active Jobs (1)"), "{running}");
        latch.open();
        assert_eq!(job.join().unwrap().unwrap(), 3);
        assert!(ctx.wait_for_listeners(WAIT));
        let done = check_pages(&ctx, master, rdd_id, false);
        assert!(done.contains("Completed Jobs (2)"), "{done}");
        ctx.stop();
    }
}

/// Opens every page and endpoint; returns the Jobs page.
fn check_pages(ctx: &Context, master: &str, rdd_id: usize, running: bool) -> String {
    let jobs = page(
        ctx,
        "/jobs/",
        &[
            "Ember Jobs",
            "Event Timeline",
            "class=\"timeline-viz\"",
            "timeline-bar",
        ],
    );
    assert!(
        jobs.contains("ui &lt;pages&gt; &amp; &quot;quotes&quot;"),
        "the application's name, escaped"
    );
    page(
        ctx,
        "/jobs/job/?id=1",
        &["Details for Job 1", "DAG Visualization", "stage-cluster"],
    );
    page(
        ctx,
        "/jobs/job/?id=99",
        &["No information to display for job 99"],
    );
    assert_eq!(get(ctx, "/jobs/job/").0, 400, "a missing id");
    let stages = page(ctx, "/stages/", &["Stages for All Jobs"]);
    if running {
        assert!(stages.contains("Active Stages (1)"), "{stages}");
    }
    // The map stage of the latched job: its DAG, summary metrics, the task table sorted and
    // paged as asked.
    let stage = page(
        ctx,
        "/stages/stage/?id=1&attempt=0&task.sort=Duration&task.desc=true&task.pageSize=3",
        &[
            "Details for Stage 1 (Attempt 0)",
            "class=\"dag-viz\"",
            "class=\"rdd\"",
            "Summary Metrics for",
            "Aggregated Metrics by Executor",
            "id=\"task-table\"",
            "Duration ▾",
        ],
    );
    // Running: the two tasks started; after: all ten, three a page.
    let pages = if running {
        "Page 1 of 1"
    } else {
        "Page 1 of 4"
    };
    assert!(stage.contains(pages), "{pages}: {stage}");
    if running {
        assert!(stage.contains(">RUNNING<"), "running tasks are shown");
    } else {
        for row in [
            "Duration",
            "Executor Run Time",
            "Peak Execution Memory",
            "Shuffle Write",
        ] {
            assert!(stage.contains(row), "no {row} quantiles");
        }
    }
    let rows = stage.matches("<tr>").count();
    assert!(rows >= 4, "three tasks on the page, plus headers: {rows}");
    assert_eq!(
        get(ctx, "/stages/stage/?id=1&attempt=0&task.sort=Nope").0,
        400,
        "an unknown column"
    );
    page(
        ctx,
        "/stages/stage/?id=2&attempt=0",
        &["shuffle read from stage 1"],
    );
    page(
        ctx,
        "/storage/",
        &[
            "storage-by-rdd-table",
            &format!("/storage/rdd/?id={rdd_id}"),
        ],
    );
    page(
        ctx,
        &format!("/storage/rdd/?id={rdd_id}"),
        &[
            "Data Distribution on Executors",
            &format!("rdd_{rdd_id}_0"),
            "Memory Deserialized",
        ],
    );
    page(
        ctx,
        "/environment/",
        &[
            "Ember Properties",
            "ember.ui.retainedTasks",
            "ember.master",
            "Metrics Properties",
        ],
    );
    let executors = page(
        ctx,
        "/executors/",
        &["Executors", "Thread Dump", "Storage Memory"],
    );
    // Thread dumps: the driver, and in local-cluster each executor process.
    let ids: Vec<String> = if is_cluster(master) {
        let mut ids: Vec<String> = ctx
            .executor_infos()
            .iter()
            .map(|e| e.executor_id.clone())
            .collect();
        ids.push("driver".into());
        ids
    } else {
        vec!["driver".into()]
    };
    let mut task_threads = 0;
    for id in &ids {
        assert!(executors.contains(&format!("threadDump/?executorId={id}")));
        let dump = page(
            ctx,
            &format!("/executors/threadDump/?executorId={id}"),
            &[
                &format!("Thread dump for executor {id}"),
                "thread-dump-table",
                "RUNNABLE",
            ],
        );
        let json = get(
            ctx,
            &format!(
                "/api/v1/applications/{}/executors/{id}/threads",
                app_id(ctx)
            ),
        );
        assert_eq!(json.0, 200, "{}", json.2);
        let threads: serde_json::Value = serde_json::from_str(&json.2).unwrap();
        let threads = threads.as_array().expect("an array of threads");
        assert!(threads.len() > 2, "{id}: {threads:?}");
        for t in threads {
            for field in ["threadId", "threadName", "threadState", "stackTrace"] {
                assert!(t.get(field).is_some(), "{field} in {t}");
            }
            assert!(t["stackTrace"]["elems"].is_array(), "{t}");
        }
        let ids: BTreeSet<i64> = threads
            .iter()
            .map(|t| t["threadId"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), threads.len(), "one entry per thread");
        let with_task: Vec<&serde_json::Value> = threads
            .iter()
            .filter(|t| t["threadName"].as_str().unwrap().contains("(TID "))
            .collect();
        task_threads += with_task.len();
        if running && !with_task.is_empty() {
            // A task thread's stack is the task's: it waits on the latch.
            assert!(
                with_task.iter().any(|t| t["stackTrace"]["elems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f.as_str().unwrap().contains("wait_on_latch"))),
                "{with_task:?}"
            );
            assert!(dump.contains("(TID "));
        }
    }
    if running {
        assert_eq!(task_threads, 2, "two tasks run, each named on its thread");
    } else {
        assert_eq!(task_threads, 0, "no task runs");
    }
    let (status, _, body) = get(
        ctx,
        &format!(
            "/api/v1/applications/{}/executors/nope/threads",
            app_id(ctx)
        ),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(get(ctx, "/static/ember-ui.css").0, 200);
    assert_eq!(get(ctx, "/static/ember-ui.js").0, 200);
    // Prometheus: the driver's metrics system, then the executors' summaries.
    let driver = scrape(ctx, "/metrics/prometheus");
    let ns = app_id(ctx).replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let find = |samples: &[prometheus_parse::Sample], name: &str| -> f64 {
        samples
            .iter()
            .find(|s| s.metric == name)
            .map(value)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        find(
            &driver,
            &format!("metrics_{ns}_driver_DAGScheduler_job_activeJobs_Value")
        ),
        if running { 1.0 } else { 0.0 }
    );
    assert!(
        find(
            &driver,
            &format!("metrics_{ns}_driver_JVMCPU_jvmCpuTime_Value")
        ) > 0.0
    );
    assert!(
        find(
            &driver,
            &format!("metrics_{ns}_driver_ExecutorMetrics_ProcessTreeJVMRSSMemory_Value")
        ) > 0.0
    );
    assert!(
        find(
            &driver,
            &format!("metrics_{ns}_driver_LiveListenerBus_numEventsPosted_Count")
        ) > 0.0
    );
    let executors = scrape(ctx, "/metrics/executors/prometheus");
    assert_eq!(find(&executors, "ember_info"), 1.0);
    let cores: f64 = executors
        .iter()
        .filter(|s| s.metric == "metrics_executor_totalCores")
        .map(value)
        .sum();
    assert_eq!(cores, 2.0, "{master}: two cores in all");
    assert!(executors
        .iter()
        .filter(|s| s.metric == "metrics_executor_totalCores")
        .all(|s| s.labels.get("application_id") == Some(app_id(ctx).as_str())));
    jobs
}

#[test]
fn the_csv_sink_reports_and_prometheus_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    let ctx = ui_context(
        "local[2]",
        &[
            (
                "ember.metrics.conf.*.sink.csv.class",
                "org.apache.spark.metrics.sink.CsvSink",
            ),
            (
                "ember.metrics.conf.*.sink.csv.directory",
                csv.to_str().unwrap(),
            ),
            ("ember.metrics.conf.*.sink.csv.period", "1"),
            ("ember.metrics.conf.*.sink.csv.unit", "hours"),
            ("ember.metrics.namespace", "wc"),
            ("ember.ui.prometheus.enabled", "false"),
        ],
    );
    assert_eq!(
        ctx.parallelize((0..10u32).collect::<Vec<_>>(), 2)
            .count()
            .unwrap(),
        10
    );
    assert_eq!(get(&ctx, "/metrics/executors/prometheus").0, 404);
    let names: Vec<String> = scrape(&ctx, "/metrics/prometheus")
        .iter()
        .map(|s| s.metric.clone())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("metrics_wc_")),
        "{names:?}"
    );
    // A sink reports once more when the application stops: nothing to wait for.
    assert!(ctx.wait_for_listeners(WAIT));
    ctx.stop();
    let file = csv.join("wc.driver.DAGScheduler.job.allJobs.csv");
    let text = std::fs::read_to_string(&file).expect("the CSV sink wrote the metric");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("t,value"));
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(",1"), "one job: {text}");
}

#[test]
fn a_100000_task_job_keeps_the_store_within_its_limits() {
    let ctx = ui_context(
        "local[2]",
        &[
            ("ember.ui.retainedTasks", "1000"),
            ("ember.ui.retainedStages", "3"),
            ("ember.ui.retainedJobs", "3"),
        ],
    );
    let start = Instant::now();
    assert_eq!(
        ctx.parallelize((0..100_000u32).collect::<Vec<_>>(), 100_000)
            .count()
            .unwrap(),
        100_000
    );
    for _ in 0..5 {
        assert_eq!(ctx.parallelize(vec![1u8; 4], 2).count().unwrap(), 4);
    }
    assert!(ctx.wait_for_listeners(WAIT), "after {:?}", start.elapsed());
    let app = format!("/api/v1/applications/{}", app_id(&ctx));
    let (_, _, jobs) = get(&ctx, &format!("{app}/jobs"));
    let jobs: serde_json::Value = serde_json::from_str(&jobs).unwrap();
    assert!(jobs.as_array().unwrap().len() <= 3, "{jobs}");
    let (_, _, stages) = get(&ctx, &format!("{app}/stages"));
    let stages: serde_json::Value = serde_json::from_str(&stages).unwrap();
    assert!(stages.as_array().unwrap().len() <= 3, "{stages}");
    // The big stage went out with the old ones; while it ran, its tasks stayed under the limit:
    // the next big job's stage page shows what is kept.
    assert_eq!(
        ctx.parallelize((0..5000u32).collect::<Vec<_>>(), 5000)
            .count()
            .unwrap(),
        5000
    );
    assert!(ctx.wait_for_listeners(WAIT));
    let (_, _, stages) = get(&ctx, &format!("{app}/stages"));
    let stages: serde_json::Value = serde_json::from_str(&stages).unwrap();
    let newest = &stages.as_array().unwrap()[0];
    let id = newest["stageId"].as_u64().unwrap();
    let (_, _, tasks) = get(
        &ctx,
        &format!("{app}/stages/{id}/0/taskList?length=1000000"),
    );
    let tasks: serde_json::Value = serde_json::from_str(&tasks).unwrap();
    assert!(
        tasks.as_array().unwrap().len() <= 1000,
        "at most ember.ui.retainedTasks"
    );
    assert_eq!(newest["numCompleteTasks"], 5000, "counts are kept whole");
    page(
        &ctx,
        &format!("/stages/stage/?id={id}&attempt=0"),
        &["older tasks are not kept (ember.ui.retainedTasks)"],
    );
    ctx.stop();
}

#[test]
fn a_job_description_reaches_the_pages_the_rest_api_and_the_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().display().to_string();
    let ctx = ui_context(
        "local[2]",
        &[
            ("ember.eventLog.enabled", "true"),
            ("ember.eventLog.dir", logs.as_str()),
        ],
    );
    ctx.set_job_description(Some("nightly <totals>"));
    assert_eq!(
        ctx.parallelize((0..10u32).collect::<Vec<_>>(), 2)
            .map(|x| (x % 2, x))
            .reduce_by_key(|a, b| a + b, 2)
            .count()
            .unwrap(),
        2
    );
    ctx.set_job_description(None);
    assert_eq!(ctx.parallelize(vec![1u8; 4], 2).count().unwrap(), 4);
    assert!(ctx.wait_for_listeners(WAIT));
    let shown = "<div class=\"description\">nightly &lt;totals&gt;</div>";
    // Spark shows the description, with the call site's name under it as the link.
    let jobs = page(&ctx, "/jobs/", &[shown, "nightly &lt;totals&gt; (Job 0)"]);
    assert_eq!(jobs.matches(shown).count(), 1, "only job 0 has it: {jobs}");
    let stages = page(&ctx, "/stages/", &[shown]);
    assert_eq!(
        stages.matches(shown).count(),
        2,
        "both stages of job 0: {stages}"
    );
    let app = format!("/api/v1/applications/{}", app_id(&ctx));
    let (_, _, body) = get(&ctx, &format!("{app}/jobs"));
    let jobs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let by_id = |id: u64| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["jobId"] == id)
            .unwrap_or_else(|| panic!("no job {id}: {jobs}"))
            .clone()
    };
    assert_eq!(by_id(0)["description"], "nightly <totals>");
    assert!(
        by_id(1).get("description").is_none_or(|d| d.is_null()),
        "{jobs}"
    );
    let (_, _, body) = get(&ctx, &format!("{app}/stages"));
    let stages: serde_json::Value = serde_json::from_str(&body).unwrap();
    let described = stages
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["description"] == "nightly <totals>")
        .count();
    assert_eq!(described, 2, "{stages}");
    ctx.stop();
    // The event log keeps it with the job's properties.
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .expect("an event log")
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    let start = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["Event"] == "SparkListenerJobStart" && e["Job ID"] == 0)
        .expect("job 0's start");
    // Under Spark's name, which Spark's History Server reads.
    assert_eq!(
        start["Properties"]["spark.job.description"], "nightly <totals>",
        "{start}"
    );
}

#[test]
fn the_stage_page_draws_its_tasks_on_a_timeline_up_to_the_maximum() {
    let ctx = ui_context("local[2]", &[("ember.ui.timeline.tasks.maximum", "4")]);
    for n in [3u32, 6] {
        assert_eq!(
            ctx.parallelize((0..n).collect::<Vec<_>>(), n as usize)
                .count()
                .unwrap(),
            u64::from(n)
        );
    }
    assert!(ctx.wait_for_listeners(WAIT));
    let small = page(
        &ctx,
        "/stages/stage/?id=0&attempt=0",
        &[
            "Event Timeline",
            "class=\"task-timeline-viz\"",
            "Executor driver / ",
            "Scheduler Delay",
            "Executor Computing Time",
            "Getting Result Time",
            "Task Deserialization Time: not measured",
            "class=\"executor-runtime-proportion\"",
        ],
    );
    assert_eq!(small.matches("class=\"task-bar\"").count(), 3, "{small}");
    assert!(!small.contains("maximum number of tasks"));
    let big = page(
        &ctx,
        "/stages/stage/?id=1&attempt=0",
        &["Only the most recent 4 tasks (of 6 total) are shown."],
    );
    assert_eq!(big.matches("class=\"task-bar\"").count(), 4, "{big}");
    ctx.stop();
}

#[test]
fn the_timelines_draw_at_most_their_maximum_of_jobs_stages_and_executors() {
    let defaults: Vec<(&str, &str)> = ember::conf::ENTRIES
        .iter()
        .filter(|e| e.key.starts_with("ember.ui.timeline."))
        .map(|e| (e.key, e.default))
        .collect();
    assert_eq!(
        sorted(&defaults),
        [
            ("ember.ui.timeline.executors.maximum", "250"),
            ("ember.ui.timeline.jobs.maximum", "500"),
            ("ember.ui.timeline.stages.maximum", "500"),
            ("ember.ui.timeline.tasks.maximum", "1000"),
        ],
        "Spark's defaults"
    );
    let ctx = ui_context(
        "local[2]",
        &[
            ("ember.ui.timeline.jobs.maximum", "2"),
            ("ember.ui.timeline.stages.maximum", "1"),
            ("ember.ui.timeline.executors.maximum", "0"),
        ],
    );
    for _ in 0..2 {
        assert_eq!(ctx.parallelize(vec![1u8; 4], 2).count().unwrap(), 4);
    }
    let pairs = ctx
        .parallelize((0..10u32).collect::<Vec<_>>(), 2)
        .map(|x| (x % 2, x))
        .reduce_by_key(|a, b| a + b, 2)
        .count()
        .unwrap();
    assert_eq!(pairs, 2);
    assert!(ctx.wait_for_listeners(WAIT));
    let jobs = page(
        &ctx,
        "/jobs/",
        &[
            "Only the most recent 2 submitted/completed jobs (of 3 total) are shown.",
            "Only the most recent 0 added/removed executors (of 1 total) are shown.",
            "(Job 2)",
            "(Job 1)",
        ],
    );
    assert_eq!(jobs.matches("class=\"timeline-bar").count(), 2, "{jobs}");
    assert!(
        !jobs.contains("(Job 0)"),
        "the job finished first is left out"
    );
    assert!(!jobs.contains("executor-event"), "{jobs}");
    let job = page(
        &ctx,
        "/jobs/job/?id=2",
        &["Only the most recent 1 submitted/completed stages (of 2 total) are shown."],
    );
    assert_eq!(job.matches("class=\"timeline-bar").count(), 1, "{job}");
    assert!(
        job.contains("(Stage 3.0)"),
        "the result stage finished last: {job}"
    );
    ctx.stop();
}

#[test]
fn thread_dumps_can_be_turned_off_as_in_spark() {
    for enabled in ["true", "false"] {
        let ctx = ui_context("local[2]", &[("ember.ui.threadDumpsEnabled", enabled)]);
        let on = enabled == "true";
        assert_eq!(ctx.parallelize(vec![1u8; 4], 2).count().unwrap(), 4);
        assert!(ctx.wait_for_listeners(WAIT), "the store knows the driver");
        let executors = page(&ctx, "/executors/", &["active-executors-table"]);
        assert_eq!(executors.contains("Thread Dump"), on, "{executors}");
        assert_eq!(executors.contains("threadDump/?executorId=driver"), on);
        let (status, _, body) = get(&ctx, "/executors/threadDump/?executorId=driver");
        assert_eq!(status, if on { 200 } else { 404 }, "{body}");
        // Spark's REST resource does not read the setting: it serves the dump either way.
        let (status, _, body) = get(
            &ctx,
            &format!(
                "/api/v1/applications/{}/executors/driver/threads",
                app_id(&ctx)
            ),
        );
        assert_eq!(status, 200, "{body}");
        ctx.stop();
    }
}

#[test]
fn metrics_json_is_sparks_metrics_servlet() {
    let ctx = ui_context("local[2]", &[]);
    assert_eq!(ctx.parallelize(vec![1u8; 4], 2).count().unwrap(), 4);
    assert!(ctx.wait_for_listeners(WAIT));
    let (status, ctype, body) = get(&ctx, "/metrics/json");
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/json"), "{ctype}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["version"], "4.0.0", "{json}");
    let name = |n: &str| format!("{}.driver.{n}", app_id(&ctx));
    let gauges = &json["gauges"];
    assert_eq!(
        gauges[name("DAGScheduler.job.allJobs").as_str()]["value"],
        1,
        "{json}"
    );
    assert_eq!(
        gauges[name("DAGScheduler.job.activeJobs").as_str()]["value"],
        0
    );
    assert!(gauges[name("JVMCPU.jvmCpuTime").as_str()]["value"].as_i64() > Some(0));
    let posted = &json["counters"][name("LiveListenerBus.numEventsPosted").as_str()]["count"];
    assert!(posted.as_i64() > Some(0), "{json}");
    for kind in ["histograms", "meters", "timers"] {
        assert!(json[kind].is_object(), "{kind}: {json}");
    }
    ctx.stop();
}
