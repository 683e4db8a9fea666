//! The web UI's pages (Spark's `JobsTab`, `StagesTab`, `StorageTab`, `EnvironmentTab`,
//! `ExecutorsTab`), rendered on the server from the UI's store at each request, under Spark's
//! paths: `/jobs/`, `/jobs/job/?id=`, `/stages/`, `/stages/stage/?id=&attempt=`, `/storage/`,
//! `/storage/rdd/?id=`, `/environment/`, `/executors/` (the thread-dump page is
//! [`super::threads`]'s).
//!
//! A page reads the store under its lock once, builds its HTML from the REST API's views (the
//! same numbers as `/api/v1`), and escapes every string it shows.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::status::store::{JobStatus, Stage, StageStatus, State as StoreState, Task};
use crate::status::views;

use super::html::{self, bytes, bytes_records, date, duration, esc, link, Html};
use super::rest::ApiState;
use super::svg;

type Params = Query<Vec<(String, String)>>;

fn param<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An HTML answer.
pub fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html;charset=utf-8")],
        body,
    )
        .into_response()
}

/// A required numeric parameter, or Spark's 400 answer ("Missing id parameter").
fn id_param(p: &[(String, String)], key: &str) -> Result<usize, Response> {
    match param(p, key) {
        None => Err(html_response(
            StatusCode::BAD_REQUEST,
            format!("Missing {key} parameter"),
        )),
        Some(v) => v.trim().parse().map_err(|_| {
            html_response(
                StatusCode::BAD_REQUEST,
                esc(&format!("Bad value for parameter \"{key}\": {v}")),
            )
        }),
    }
}

fn app_name(st: &StoreState) -> String {
    st.app.as_ref().map(|a| a.name.clone()).unwrap_or_default()
}

fn live(st: &StoreState) -> bool {
    st.app.as_ref().is_some_and(|a| a.end_time.is_none())
}

fn render(st: &StoreState, tab: &str, title: &str, body: &str) -> Response {
    html_response(
        StatusCode::OK,
        html::page(&app_name(st), tab, title, live(st), body),
    )
}

// ---------------------------------------------------------------------------------------------
// Jobs

fn job_description(j: &crate::status::store::Job) -> String {
    let mut s = String::new();
    if let Some(d) = &j.description {
        let _ = write!(s, "<div class=\"description\">{}</div>", esc(d));
    }
    s.push_str(&link(&format!("/jobs/job/?id={}", j.id), &j.name));
    s
}

fn job_duration(j: &crate::status::store::Job, now: u64) -> String {
    match j.submission_time {
        Some(s) => duration(j.completion_time.unwrap_or(now).saturating_sub(s)),
        None => "Unknown".into(),
    }
}

fn jobs_table(id: &str, jobs: &[&crate::status::store::Job], now: u64) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let total_stages = j.stage_ids.len() as i64 - j.skipped_stages.len() as i64;
            vec![
                match &j.job_group {
                    Some(g) => format!("{} ({})", j.id, esc(g)),
                    None => j.id.to_string(),
                },
                job_description(j),
                j.submission_time.map(date).unwrap_or_else(|| "Unknown".into()),
                job_duration(j, now),
                format!(
                    "{}/{}{}{}",
                    j.completed_stages.len(),
                    total_stages.max(0),
                    if j.failed_stages > 0 {
                        format!(" ({} failed)", j.failed_stages)
                    } else {
                        String::new()
                    },
                    if j.skipped_stages.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} skipped)", j.skipped_stages.len())
                    }
                ),
                html::progress(
                    j.completed_indices() as i64,
                    j.failed_tasks,
                    j.skipped_tasks,
                    j.killed_tasks,
                    j.active_tasks.max(0),
                    j.num_tasks - j.skipped_tasks,
                ),
            ]
        })
        .collect();
    let mut h = Html::default();
    h.table(
        id,
        &[
            "Job Id",
            "Description",
            "Submitted",
            "Duration",
            "Stages: Succeeded/Total",
            "Tasks (for all stages): Succeeded/Total",
        ],
        &rows,
    );
    h.0
}

/// Executors' arrivals and departures, for the timelines: those of the `max` executors added
/// or removed last (Spark's `ember.ui.timeline.executors.maximum`), and Spark's notice when
/// some are left out.
fn executor_markers(st: &StoreState, max: usize) -> (Vec<svg::Marker>, String) {
    let mut execs: Vec<&crate::status::store::Executor> = st.executors.values().collect();
    execs.sort_by_key(|e| (e.remove_time.unwrap_or(e.add_time), e.add_time));
    let total = execs.len();
    let mut m = Vec::new();
    for e in &execs[total.saturating_sub(max)..] {
        m.push(svg::Marker {
            time: e.add_time,
            label: format!("Executor {} added", e.id),
            removed: false,
        });
        if let Some(t) = e.remove_time {
            m.push(svg::Marker {
                time: t,
                label: format!(
                    "Executor {} removed: {}",
                    e.id,
                    e.remove_reason.as_deref().unwrap_or("")
                ),
                removed: true,
            });
        }
    }
    let notice = if max < total {
        format!(
            "<p><strong>Only the most recent {max} added/removed executors (of {total} total) \
             are shown.</strong></p>"
        )
    } else {
        String::new()
    };
    (m, notice)
}

/// The `max` entries finished last (running ones count as finishing now), then submitted last,
/// newest first: Spark's choice of what a timeline draws (`sortBy(completion, submission)
/// .takeRight(max)`).
fn finished_last<T>(mut items: Vec<(u64, u64, T)>, max: usize) -> Vec<T> {
    items.sort_by_key(|(end, start, _)| (*end, *start));
    let skip = items.len().saturating_sub(max);
    items.into_iter().skip(skip).rev().map(|(_, _, t)| t).collect()
}

fn job_bar_status(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Running => "running",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
    }
}

async fn jobs_page(State(s): State<ApiState>) -> Response {
    let now = (s.now)();
    s.store.read(|st| {
        let mut b = Html::default();
        let start = st.app.as_ref().map_or(now, |a| a.start_time);
        let end = st.app.as_ref().and_then(|a| a.end_time).unwrap_or(now);
        let mode = st
            .environment
            .as_ref()
            .and_then(|e| {
                e.spark_properties
                    .iter()
                    .find(|(k, _)| k == crate::conf::SCHEDULER_MODE)
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| "FIFO".into());
        let by = |status: JobStatus| -> Vec<&crate::status::store::Job> {
            st.jobs.values().rev().filter(|j| j.status == status).collect()
        };
        let (active, done, failed) = (
            by(JobStatus::Running),
            by(JobStatus::Succeeded),
            by(JobStatus::Failed),
        );
        b.raw("<ul class=\"summary\"><li><strong>User:</strong> ")
            .text(st.app.as_ref().map_or("", |a| a.user.as_str()))
            .raw("</li><li><strong>Total Uptime:</strong> ")
            .text(&duration(end.saturating_sub(start)))
            .raw("</li><li><strong>Scheduling Mode:</strong> ")
            .text(&mode);
        let _ = write!(
            b.0,
            "</li><li><a href=\"#active\"><strong>Active Jobs:</strong></a> {}</li>\
             <li><a href=\"#completed\"><strong>Completed Jobs:</strong></a> {}</li>\
             <li><a href=\"#failed\"><strong>Failed Jobs:</strong></a> {}</li></ul>",
            active.len(),
            done.len(),
            failed.len()
        );
        let max = s.settings.timeline_jobs;
        let submitted: Vec<(u64, u64, &crate::status::store::Job)> = st
            .jobs
            .values()
            .filter_map(|j| Some((j.completion_time.unwrap_or(now), j.submission_time?, j)))
            .collect();
        let bars: Vec<svg::Bar> = finished_last(submitted, max)
            .into_iter()
            .map(|j| svg::Bar {
                // Spark labels a job by its description when it has one.
                label: format!("{} (Job {})", j.description.as_ref().unwrap_or(&j.name), j.id),
                start: j.submission_time.unwrap_or(now),
                end: j.completion_time.unwrap_or(now),
                status: job_bar_status(j.status),
                href: format!("/jobs/job/?id={}", j.id),
            })
            .collect();
        let (markers, executors_notice) = executor_markers(st, s.settings.timeline_executors);
        b.raw("<h4>Event Timeline</h4>");
        if max < st.jobs.len() {
            let _ = write!(
                b.0,
                "<p><strong>Only the most recent {max} submitted/completed jobs (of {} total) \
                 are shown.</strong></p>",
                st.jobs.len()
            );
        }
        b.raw(&executors_notice)
            .raw(&svg::timeline(start, end, &markers, &bars));
        for (id, title, list) in [
            ("active", "Active Jobs", &active),
            ("completed", "Completed Jobs", &done),
            ("failed", "Failed Jobs", &failed),
        ] {
            if !list.is_empty() {
                b.section(id, title, list.len());
                b.raw(&jobs_table(&format!("{id}JobsTable"), list, now));
            }
        }
        if st.jobs_dropped > 0 {
            let _ = write!(
                b.0,
                "<p>Only the latest jobs are kept ({} dropped, ember.ui.retainedJobs).</p>",
                st.jobs_dropped
            );
        }
        render(st, "Jobs", "Ember Jobs", &b.0)
    })
}

async fn job_page(State(s): State<ApiState>, Query(p): Params) -> Response {
    let now = (s.now)();
    let settings = s.settings;
    let id = match id_param(&p, "id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    s.store.read(|st| {
        let Some(j) = st.jobs.get(&id) else {
            return render(
                st,
                "Jobs",
                &format!("Details for Job {id}"),
                &format!("<p>No information to display for job {id}</p>"),
            );
        };
        let mut b = Html::default();
        b.raw("<ul class=\"summary\"><li><strong>Status:</strong> <span class=\"status-")
            .raw(j.status.name())
            .raw("\">")
            .raw(j.status.name())
            .raw("</span></li>");
        if let Some(t) = j.submission_time {
            b.raw("<li><strong>Submitted:</strong> ").text(&date(t)).raw("</li>");
        }
        b.raw("<li><strong>Duration:</strong> ")
            .text(&job_duration(j, now))
            .raw("</li>");
        if let Some(g) = &j.job_group {
            b.raw("<li><strong>Job Group:</strong> ").text(g).raw("</li>");
        }
        if let Some(d) = &j.description {
            b.raw("<li><strong>Description:</strong> ").text(d).raw("</li>");
        }
        b.raw("</ul>");
        let stages: Vec<&Stage> = st
            .stages
            .values()
            .filter(|s| j.stage_ids.contains(&s.info.stage_id))
            .collect();
        // The DAG: the latest attempt of each stage of the job.
        let mut latest: std::collections::BTreeMap<usize, &Stage> = Default::default();
        for s in &stages {
            latest.insert(s.info.stage_id, s);
        }
        let dag: Vec<svg::DagStage<'_>> = latest
            .values()
            .map(|s| svg::DagStage {
                stage_id: s.info.stage_id,
                rdds: &s.info.rdd_infos,
                parents: &s.info.parent_ids,
            })
            .collect();
        b.raw("<h4>DAG Visualization</h4>").raw(&svg::dag(&dag));
        let start = j.submission_time.unwrap_or(now);
        let end = j.completion_time.unwrap_or(now);
        let max = settings.timeline_stages;
        let submitted: Vec<(u64, u64, &&Stage)> = stages
            .iter()
            .filter_map(|s| {
                Some((s.info.completion_time.unwrap_or(now), s.info.submission_time?, s))
            })
            .collect();
        let total = submitted.len();
        let bars: Vec<svg::Bar> = finished_last(submitted, max)
            .into_iter()
            .map(|s| svg::Bar {
                label: format!(
                    "{} (Stage {}.{})",
                    s.info.name, s.info.stage_id, s.info.attempt_id
                ),
                start: s.info.submission_time.unwrap_or(now),
                end: s.info.completion_time.unwrap_or(now),
                status: match s.status {
                    StageStatus::Failed => "failed",
                    StageStatus::Active => "running",
                    _ => "succeeded",
                },
                href: stage_href(s),
            })
            .collect();
        let (markers, executors_notice) = executor_markers(st, settings.timeline_executors);
        b.raw("<h4>Event Timeline</h4>");
        if max < total {
            let _ = write!(
                b.0,
                "<p><strong>Only the most recent {max} submitted/completed stages (of {total} \
                 total) are shown.</strong></p>"
            );
        }
        b.raw(&executors_notice)
            .raw(&svg::timeline(start, end.max(start + 1), &markers, &bars));
        stage_sections(&mut b, &stages, now);
        render(st, "Jobs", &format!("Details for Job {id}"), &b.0)
    })
}

// ---------------------------------------------------------------------------------------------
// Stages

fn stage_href(s: &Stage) -> String {
    format!(
        "/stages/stage/?id={}&attempt={}",
        s.info.stage_id, s.info.attempt_id
    )
}

fn stage_rows(stages: &[&Stage], now: u64) -> Vec<Vec<String>> {
    stages
        .iter()
        .map(|s| {
            let m = &s.metrics;
            let dur = match (s.info.submission_time, s.info.completion_time) {
                (Some(a), Some(b)) => duration(b.saturating_sub(a)),
                (Some(a), None) => duration(now.saturating_sub(a)),
                _ => "Unknown".into(),
            };
            let mut desc = String::new();
            if let Some(d) = &s.description {
                let _ = write!(desc, "<div class=\"description\">{}</div>", esc(d));
            }
            desc.push_str(&link(&stage_href(s), &s.info.name));
            vec![
                if s.info.attempt_id > 0 {
                    format!("{} (retry {})", s.info.stage_id, s.info.attempt_id)
                } else {
                    s.info.stage_id.to_string()
                },
                esc(&s.scheduling_pool),
                desc,
                s.info
                    .submission_time
                    .map(date)
                    .unwrap_or_else(|| "Unknown".into()),
                dur,
                html::progress(
                    s.completed_indices() as i64,
                    s.failed_tasks,
                    0,
                    s.killed_tasks,
                    s.active_tasks.max(0),
                    s.info.num_tasks as i64,
                ),
                bytes_if(m.input_bytes_read),
                bytes_if(m.output_bytes_written),
                bytes_if(m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read),
                bytes_if(m.shuffle_bytes_written),
                s.info
                    .failure_reason
                    .as_deref()
                    .map(|r| format!("<span class=\"error\">{}</span>", esc(r)))
                    .unwrap_or_default(),
            ]
        })
        .collect()
}

fn bytes_if(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        bytes(n as i64)
    }
}

const STAGE_HEADERS: [&str; 11] = [
    "Stage Id",
    "Pool Name",
    "Description",
    "Submitted",
    "Duration",
    "Tasks: Succeeded/Total",
    "Input",
    "Output",
    "Shuffle Read",
    "Shuffle Write",
    "Failure Reason",
];

fn stage_sections(b: &mut Html, stages: &[&Stage], now: u64) {
    for (status, id, title) in [
        (StageStatus::Active, "active", "Active Stages"),
        (StageStatus::Pending, "pending", "Pending Stages"),
        (StageStatus::Complete, "completed", "Completed Stages"),
        (StageStatus::Skipped, "skipped", "Skipped Stages"),
        (StageStatus::Failed, "failed", "Failed Stages"),
    ] {
        let list: Vec<&Stage> = stages
            .iter()
            .rev()
            .filter(|s| s.status == status)
            .copied()
            .collect();
        if list.is_empty() {
            continue;
        }
        b.section(id, title, list.len());
        b.table(
            &format!("{id}StagesTable"),
            &STAGE_HEADERS,
            &stage_rows(&list, now),
        );
    }
}

async fn stages_page(State(s): State<ApiState>) -> Response {
    let now = (s.now)();
    s.store.read(|st| {
        let stages: Vec<&Stage> = st.stages.values().collect();
        let mut b = Html::default();
        let count = |x: StageStatus| stages.iter().filter(|s| s.status == x).count();
        let _ = write!(
            b.0,
            "<ul class=\"summary\"><li><strong>Active Stages:</strong> {}</li>\
             <li><strong>Pending Stages:</strong> {}</li>\
             <li><strong>Completed Stages:</strong> {}</li>\
             <li><strong>Skipped Stages:</strong> {}</li>\
             <li><strong>Failed Stages:</strong> {}</li></ul>",
            count(StageStatus::Active),
            count(StageStatus::Pending),
            count(StageStatus::Complete),
            count(StageStatus::Skipped),
            count(StageStatus::Failed)
        );
        stage_sections(&mut b, &stages, now);
        render(st, "Stages", "Stages for All Jobs", &b.0)
    })
}

/// The task table's columns (Spark's `ApiHelper` column names), which `task.sort` names.
const TASK_COLUMNS: [&str; 15] = [
    "Index",
    "Task ID",
    "Attempt",
    "Status",
    "Locality Level",
    "Executor ID",
    "Host",
    "Launch Time",
    "Duration",
    "Input Size / Records",
    "Shuffle Read Size / Records",
    "Shuffle Write Size / Records",
    "Spill (Memory)",
    "Spill (Disk)",
    "Peak Execution Memory",
];

/// Sorts tasks by a column of [`TASK_COLUMNS`] (the errors column sorts as the index).
fn sort_tasks(tasks: &mut [&Task], column: &str, desc: bool, now: u64) {
    let metric = |t: &Task, f: fn(&crate::task::TaskMetricsSnapshot) -> u64| {
        t.metrics.as_ref().map_or(0, f)
    };
    let key = |t: &Task| -> (u64, String) {
        let i = &t.info;
        match column {
            "Task ID" => (i.task_id, String::new()),
            "Attempt" => (u64::from(i.attempt), String::new()),
            "Status" => (0, i.status().to_string()),
            "Locality Level" => (0, crate::listener::events::locality_name(i.locality).into()),
            "Executor ID" => (0, i.executor_id.to_string()),
            "Host" => (0, i.host.to_string()),
            "Launch Time" => (i.launch_time, String::new()),
            "Duration" => (i.duration_at(now), String::new()),
            "Input Size / Records" => (metric(t, |m| m.input_bytes_read), String::new()),
            "Shuffle Read Size / Records" => (
                metric(t, |m| m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read),
                String::new(),
            ),
            "Shuffle Write Size / Records" => {
                (metric(t, |m| m.shuffle_bytes_written), String::new())
            }
            "Spill (Memory)" => (metric(t, |m| m.memory_bytes_spilled), String::new()),
            "Spill (Disk)" => (metric(t, |m| m.disk_bytes_spilled), String::new()),
            "Peak Execution Memory" => (metric(t, |m| m.peak_execution_memory), String::new()),
            _ => (i.index as u64, String::new()),
        }
    };
    tasks.sort_by(|a, b| {
        let o = key(a)
            .cmp(&key(b))
            .then(a.info.task_id.cmp(&b.info.task_id));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
}

fn task_row(t: &Task, now: u64) -> Vec<String> {
    let i = &t.info;
    let m = t.metrics.clone().unwrap_or_default();
    vec![
        i.index.to_string(),
        i.task_id.to_string(),
        i.attempt.to_string(),
        format!("<span class=\"status-{0}\">{0}</span>", i.status()),
        crate::listener::events::locality_name(i.locality).to_string(),
        esc(&i.executor_id),
        esc(&i.host),
        date(i.launch_time),
        duration(i.duration_at(now)),
        bytes_records(m.input_bytes_read as i64, m.input_records_read as i64),
        bytes_records(
            (m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read) as i64,
            m.shuffle_records_read as i64,
        ),
        bytes_records(
            m.shuffle_bytes_written as i64,
            m.shuffle_records_written as i64,
        ),
        bytes_if(m.memory_bytes_spilled),
        bytes_if(m.disk_bytes_spilled),
        bytes(m.peak_execution_memory as i64),
        t.error_message
            .as_deref()
            .map(|e| format!("<pre class=\"stack error\">{}</pre>", esc(e)))
            .unwrap_or_default(),
    ]
}

/// The task table's page: `task.sort` (a column), `task.desc`, `task.page` (from 1),
/// `task.pageSize` (Spark's parameters; 100 a page by default).
struct TaskPaging {
    sort: String,
    desc: bool,
    page: usize,
    page_size: usize,
}

impl TaskPaging {
    fn from(p: &[(String, String)]) -> Result<Self, Response> {
        let sort = param(p, "task.sort").unwrap_or("Index").to_string();
        if !TASK_COLUMNS.contains(&sort.as_str()) {
            return Err(html_response(
                StatusCode::BAD_REQUEST,
                esc(&format!("Unknown column: {sort}")),
            ));
        }
        let num = |k: &str, d: usize| -> Result<usize, Response> {
            match param(p, k) {
                None => Ok(d),
                Some(v) => v.trim().parse().map_err(|_| {
                    html_response(
                        StatusCode::BAD_REQUEST,
                        esc(&format!("Bad value for parameter \"{k}\": {v}")),
                    )
                }),
            }
        };
        Ok(TaskPaging {
            desc: param(p, "task.desc").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            page: num("task.page", 1)?.max(1),
            page_size: num("task.pageSize", 100)?.clamp(1, 10_000),
            sort,
        })
    }

    fn href(&self, base: &str, sort: &str, desc: bool, page: usize) -> String {
        format!(
            "{base}&task.sort={}&task.desc={desc}&task.page={page}&task.pageSize={}#tasks",
            html::url_param(sort),
            self.page_size
        )
    }
}

/// The stage page's task timeline (Spark's `StagePage.makeTimeline`): the `max` tasks launched
/// last, in a group per executor, each bar split into Spark's phases.
///
/// Ember measures a task's run time (`executor_run_time_ms`) and, for a result the driver
/// fetches, when the fetch began; it does not measure deserialization, shuffle read blocked
/// time, shuffle write time or result serialization apart. Those phases are drawn as "not
/// measured": their time is inside executor computing time when it falls in the task body, and
/// inside scheduler delay (Spark's remainder: duration minus everything measured) otherwise.
fn task_timeline(stage: &Stage, max: usize, now: u64) -> String {
    let mut tasks: Vec<&Task> = stage.tasks.values().collect();
    let total = tasks.len();
    if total == 0 {
        return "<p>No tasks have started yet.</p>".into();
    }
    tasks.sort_by_key(|t| std::cmp::Reverse((t.info.launch_time, t.info.task_id)));
    tasks.truncate(max);
    let mut out = String::new();
    if max < total {
        let _ = write!(
            out,
            "<p><strong>This page has more than the maximum number of tasks that can be shown \
             in the visualization! Only the most recent {max} tasks (of {total} total) are \
             shown.</strong></p>"
        );
    }
    let mut groups: std::collections::BTreeMap<(bool, Option<u64>, &str), svg::TaskGroup> =
        Default::default();
    let (mut start, mut end) = (u64::MAX, 0);
    for t in tasks {
        let i = &t.info;
        let bar = task_bar(t, now);
        start = start.min(bar.start);
        end = end.max(bar.end);
        // The driver first, then executors by number, as on the Executors page.
        let key = (&*i.executor_id != "driver", i.executor_id.parse().ok(), &*i.executor_id);
        groups
            .entry(key)
            .or_insert_with(|| svg::TaskGroup {
                label: format!("Executor {} / {}", i.executor_id, i.host),
                tasks: Vec::new(),
            })
            .tasks
            .push(bar);
    }
    let groups: Vec<svg::TaskGroup> = groups.into_values().collect();
    out.push_str(&svg::task_timeline(start, end, &groups));
    out
}

/// A task's bar: Spark's `StagePage` arithmetic over what the store has (see
/// [`task_timeline`]). Scheduler delay is what a finished task's duration leaves after its run
/// time and the result's fetch (0 while it runs, as in Spark); executor computing time is the
/// rest.
fn task_bar(t: &Task, now: u64) -> svg::TaskBar {
    let i = &t.info;
    let finished = i.finish_time > 0;
    let end = if finished { i.finish_time } else { now.max(i.launch_time) };
    let total = end.saturating_sub(i.launch_time);
    let getting_result = if i.getting_result_time > 0 {
        end.saturating_sub(i.getting_result_time)
    } else {
        0
    };
    let delay = match &t.metrics {
        Some(m) if finished => total
            .saturating_sub(m.executor_run_time_ms)
            .saturating_sub(getting_result),
        _ => 0,
    };
    let computing = total.saturating_sub(delay + getting_result);
    svg::TaskBar {
        label: format!(
            "Task {} (attempt {})\nLaunch Time: {}{}",
            i.index,
            i.attempt,
            date(i.launch_time),
            if finished {
                format!("\nFinish Time: {}", date(i.finish_time))
            } else {
                String::new()
            }
        ),
        status: i.status().to_string(),
        start: i.launch_time,
        end,
        phases: [
            Some(delay),
            None,
            None,
            Some(computing),
            None,
            None,
            Some(getting_result),
        ],
    }
}

fn quantile_row(name: &str, values: &[f64], fmt: impl Fn(f64) -> String) -> Vec<String> {
    let mut row = vec![esc(name)];
    row.extend(values.iter().map(|v| esc(&fmt(*v))));
    row
}

async fn stage_page(State(s): State<ApiState>, Query(p): Params) -> Response {
    let now = (s.now)();
    let id = match id_param(&p, "id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    let attempt = match id_param(&p, "attempt") {
        Ok(a) => a as u32,
        Err(r) => return r,
    };
    let paging = match TaskPaging::from(&p) {
        Ok(x) => x,
        Err(r) => return r,
    };
    s.store.read(|st| {
        let title = format!("Details for Stage {id} (Attempt {attempt})");
        let Some(stage) = st.stages.get(&(id, attempt)) else {
            return render(
                st,
                "Stages",
                &title,
                &format!("<p>No information to display for Stage {id} (Attempt {attempt})</p>"),
            );
        };
        let m = &stage.metrics;
        let mut b = Html::default();
        let total_time: i64 = stage.executor_summaries.values().map(|e| e.task_time).sum();
        b.raw("<ul class=\"summary\"><li><strong>Status:</strong> ")
            .raw(stage.status.name())
            .raw("</li><li><strong>Resource Profile Id:</strong> 0</li>")
            .raw("<li><strong>Total Time Across All Tasks:</strong> ")
            .text(&duration(total_time.max(0) as u64))
            .raw("</li><li><strong>Locality Level Summary:</strong> ");
        let loc: Vec<String> = stage
            .locality_summary
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        b.text(&loc.join("; ")).raw("</li>");
        for (label, v, r) in [
            ("Input Size / Records", m.input_bytes_read, m.input_records_read),
            ("Output Size / Records", m.output_bytes_written, m.output_records_written),
            (
                "Shuffle Read Size / Records",
                m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read,
                m.shuffle_records_read,
            ),
            ("Shuffle Write Size / Records", m.shuffle_bytes_written, m.shuffle_records_written),
        ] {
            if v > 0 || r > 0 {
                let _ = write!(
                    b.0,
                    "<li><strong>{label}:</strong> {}</li>",
                    esc(&bytes_records(v as i64, r as i64))
                );
            }
        }
        if m.memory_bytes_spilled > 0 || m.disk_bytes_spilled > 0 {
            let _ = write!(
                b.0,
                "<li><strong>Spill (Memory):</strong> {}</li>\
                 <li><strong>Spill (Disk):</strong> {}</li>",
                bytes(m.memory_bytes_spilled as i64),
                bytes(m.disk_bytes_spilled as i64)
            );
        }
        let jobs: Vec<String> = stage
            .job_ids
            .iter()
            .map(|j| link(&format!("/jobs/job/?id={j}"), &j.to_string()))
            .collect();
        let _ = write!(
            b.0,
            "<li><strong>Associated Job Ids:</strong> {}</li></ul>",
            jobs.join(", ")
        );
        b.raw("<h4>DAG Visualization</h4>").raw(&svg::dag(&[svg::DagStage {
            stage_id: id,
            rdds: &stage.info.rdd_infos,
            parents: &stage.info.parent_ids,
        }]));
        b.raw("<h4>Event Timeline</h4>")
            .raw(&task_timeline(stage, s.settings.timeline_tasks, now));
        // Summary metrics: Spark's page shows min, 25th, median, 75th, max.
        let q = [0.0, 0.25, 0.5, 0.75, 1.0];
        let done = stage
            .tasks
            .values()
            .filter(|t| t.info.status() == "SUCCESS")
            .count();
        let _ = write!(
            b.0,
            "<h4 id=\"summary-metrics\">Summary Metrics for {done} Completed Tasks</h4>"
        );
        match views::task_summary(stage, &q, now) {
            None => {
                b.raw("<p>No tasks have reported metrics yet.</p>");
            }
            Some(d) => {
                let ms = |v: f64| duration(v as u64);
                let by = |v: f64| bytes(v as i64);
                let sr = &d.shuffle_read_metrics;
                let sw = &d.shuffle_write_metrics;
                let mut rows = vec![
                    quantile_row("Duration", &d.duration, ms),
                    quantile_row("Executor Run Time (no GC to subtract)", &d.executor_run_time, ms),
                    quantile_row("Scheduler Delay", &d.scheduler_delay, ms),
                    quantile_row("Peak Execution Memory", &d.peak_execution_memory, by),
                ];
                let with_records = |name: &str, b: &[f64], r: &[f64]| -> Vec<String> {
                    let mut row = vec![esc(name)];
                    row.extend(
                        b.iter()
                            .zip(r)
                            .map(|(b, r)| esc(&format!("{} / {}", bytes(*b as i64), *r as i64))),
                    );
                    row
                };
                rows.push(with_records(
                    "Input Size / Records",
                    &d.input_metrics.bytes_read,
                    &d.input_metrics.records_read,
                ));
                rows.push(with_records(
                    "Shuffle Read Size / Records",
                    &sr.read_bytes,
                    &sr.read_records,
                ));
                rows.push(with_records(
                    "Shuffle Write Size / Records",
                    &sw.write_bytes,
                    &sw.write_records,
                ));
                rows.push(quantile_row("Spill (Memory)", &d.memory_bytes_spilled, by));
                rows.push(quantile_row("Spill (Disk)", &d.disk_bytes_spilled, by));
                b.table(
                    "summary-metrics-table",
                    &["Metric", "Min", "25th percentile", "Median", "75th percentile", "Max"],
                    &rows,
                );
            }
        }
        // Aggregated by executor.
        let exec_rows: Vec<Vec<String>> = stage
            .executor_summaries
            .iter()
            .map(|(x, e)| {
                let addr = st
                    .executors
                    .get(&**x)
                    .map(|e| e.address())
                    .unwrap_or_default();
                vec![
                    esc(x),
                    esc(&addr),
                    duration(e.task_time.max(0) as u64),
                    (e.succeeded_tasks + e.failed_tasks + e.killed_tasks).to_string(),
                    e.failed_tasks.to_string(),
                    e.killed_tasks.to_string(),
                    e.succeeded_tasks.to_string(),
                    bytes_records(
                        e.metrics.input_bytes_read as i64,
                        e.metrics.input_records_read as i64,
                    ),
                    bytes_records(
                        (e.metrics.shuffle_local_bytes_read + e.metrics.shuffle_remote_bytes_read)
                            as i64,
                        e.metrics.shuffle_records_read as i64,
                    ),
                    bytes_records(
                        e.metrics.shuffle_bytes_written as i64,
                        e.metrics.shuffle_records_written as i64,
                    ),
                    bytes_if(e.metrics.memory_bytes_spilled),
                    bytes_if(e.metrics.disk_bytes_spilled),
                ]
            })
            .collect();
        b.raw("<h4>Aggregated Metrics by Executor</h4>").table(
            "aggregated-metrics-table",
            &[
                "Executor ID",
                "Address",
                "Task Time",
                "Total Tasks",
                "Failed Tasks",
                "Killed Tasks",
                "Succeeded Tasks",
                "Input Size / Records",
                "Shuffle Read Size / Records",
                "Shuffle Write Size / Records",
                "Spill (Memory)",
                "Spill (Disk)",
            ],
            &exec_rows,
        );
        // Tasks: sorted and paged on the server.
        let mut tasks: Vec<&Task> = stage.tasks.values().collect();
        sort_tasks(&mut tasks, &paging.sort, paging.desc, now);
        let total = tasks.len();
        let pages = total.div_ceil(paging.page_size).max(1);
        let page = paging.page.min(pages);
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .skip((page - 1) * paging.page_size)
            .take(paging.page_size)
            .map(|t| task_row(t, now))
            .collect();
        let base = format!("/stages/stage/?id={id}&attempt={attempt}");
        let _ = write!(b.0, "<h4 id=\"tasks\">Tasks ({total})</h4>");
        if stage.tasks_dropped > 0 {
            let _ = write!(
                b.0,
                "<p>{} older tasks are not kept (ember.ui.retainedTasks).</p>",
                stage.tasks_dropped
            );
        }
        b.raw("<div class=\"pager\">");
        let _ = write!(b.0, "<span>Page {page} of {pages}</span>");
        if page > 1 {
            b.raw(&format!(
                "<a href=\"{}\">&lt; Prev</a>",
                esc(&paging.href(&base, &paging.sort, paging.desc, page - 1))
            ));
        }
        if page < pages {
            b.raw(&format!(
                "<a href=\"{}\">Next &gt;</a>",
                esc(&paging.href(&base, &paging.sort, paging.desc, page + 1))
            ));
        }
        b.raw("</div>");
        let headers: Vec<String> = TASK_COLUMNS
            .iter()
            .map(|c| {
                let desc = if *c == paging.sort { !paging.desc } else { false };
                let arrow = match (*c == paging.sort, paging.desc) {
                    (true, false) => " ▴",
                    (true, true) => " ▾",
                    _ => "",
                };
                format!(
                    "<a href=\"{}\">{}{arrow}</a>",
                    esc(&paging.href(&base, c, desc, 1)),
                    esc(c)
                )
            })
            .chain(std::iter::once("Errors".to_string()))
            .collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        b.table_of_class("server-sorted", "task-table", &headers, &rows);
        render(st, "Stages", &title, &b.0)
    })
}

// ---------------------------------------------------------------------------------------------
// Storage

async fn storage_page(State(s): State<ApiState>) -> Response {
    s.store.read(|st| {
        let rows: Vec<Vec<String>> = views::rdds(st)
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    link(&format!("/storage/rdd/?id={}", r.id), &r.name),
                    esc(&r.storage_level),
                    r.num_cached_partitions.to_string(),
                    format!(
                        "{:.0}%",
                        r.num_cached_partitions as f64 * 100.0 / r.num_partitions.max(1) as f64
                    ),
                    bytes(r.memory_used),
                    bytes(r.disk_used),
                ]
            })
            .collect();
        let mut b = Html::default();
        b.section("rdds", "RDDs", rows.len()).table(
            "storage-by-rdd-table",
            &[
                "ID",
                "RDD Name",
                "Storage Level",
                "Cached Partitions",
                "Fraction Cached",
                "Size in Memory",
                "Size on Disk",
            ],
            &rows,
        );
        render(st, "Storage", "Storage", &b.0)
    })
}

async fn rdd_page(State(s): State<ApiState>, Query(p): Params) -> Response {
    let id = match id_param(&p, "id") {
        Ok(id) => id,
        Err(r) => return r,
    };
    s.store.read(|st| {
        let Some(r) = st.rdds.get(&id) else {
            return render(
                st,
                "Storage",
                &format!("RDD Storage Info for {id}"),
                &format!("<p>No information to display for RDD {id}</p>"),
            );
        };
        let info = views::rdd(st, r, true);
        let mut b = Html::default();
        let _ = write!(
            b.0,
            "<ul class=\"summary\"><li><strong>Storage Level:</strong> {}</li>\
             <li><strong>Cached Partitions:</strong> {}</li>\
             <li><strong>Total Partitions:</strong> {}</li>\
             <li><strong>Memory Size:</strong> {}</li>\
             <li><strong>Disk Size:</strong> {}</li></ul>",
            esc(&info.storage_level),
            info.num_cached_partitions,
            info.num_partitions,
            bytes(info.memory_used),
            bytes(info.disk_used)
        );
        let dist: Vec<Vec<String>> = info
            .data_distribution
            .iter()
            .flatten()
            .map(|d| {
                vec![
                    esc(&d.address),
                    format!(
                        "{} ({} Remaining)",
                        bytes(d.memory_used),
                        bytes(d.memory_remaining)
                    ),
                    bytes(d.disk_used),
                ]
            })
            .collect();
        b.section("distribution", "Data Distribution on Executors", dist.len())
            .table(
                "rdd-storage-by-executor-table",
                &["Host", "On Heap Memory Usage", "Disk Usage"],
                &dist,
            );
        let parts: Vec<Vec<String>> = info
            .partitions
            .iter()
            .flatten()
            .map(|p| {
                vec![
                    esc(&p.block_name),
                    esc(&p.storage_level),
                    bytes(p.memory_used),
                    bytes(p.disk_used),
                    esc(&p.executors.join(", ")),
                ]
            })
            .collect();
        b.section("partitions", "Partitions", parts.len()).table(
            "rdd-storage-by-block-table",
            &[
                "Block Name",
                "Storage Level",
                "Size in Memory",
                "Size on Disk",
                "Executors",
            ],
            &parts,
        );
        render(st, "Storage", &format!("RDD Storage Info for {}", r.info.name), &b.0)
    })
}

// ---------------------------------------------------------------------------------------------
// Environment

async fn environment_page(State(s): State<ApiState>) -> Response {
    s.store.read(|st| {
        let mut b = Html::default();
        let Some(env) = views::environment(st) else {
            return render(st, "Environment", "Environment", "<p>No environment yet.</p>");
        };
        let pairs = |v: &[(String, String)]| -> Vec<Vec<String>> {
            v.iter().map(|(k, v)| vec![esc(k), esc(v)]).collect()
        };
        let runtime = vec![
            vec![esc("Version"), esc(&env.runtime.java_version)],
            vec![
                esc("Program"),
                esc(&env
                    .classpath_entries
                    .first()
                    .map(|c| c.0.clone())
                    .unwrap_or_default()),
            ],
        ];
        for (id, title, rows) in [
            ("runtime", "Runtime Information", runtime),
            ("ember-properties", "Ember Properties", pairs(&env.spark_properties)),
            ("system-properties", "System Properties", pairs(&env.system_properties)),
            ("metrics-properties", "Metrics Properties", pairs(&env.metrics_properties)),
            ("classpath-entries", "Program", pairs(&env.classpath_entries)),
        ] {
            b.section(id, title, rows.len())
                .table(&format!("{id}-table"), &["Name", "Value"], &rows);
        }
        render(st, "Environment", "Environment", &b.0)
    })
}

// ---------------------------------------------------------------------------------------------
// Executors

async fn executors_page(State(s): State<ApiState>) -> Response {
    let thread_dumps = s.settings.thread_dumps_enabled;
    s.store.read(|st| {
        let all = views::executors(st, false);
        let mut list: Vec<&crate::status::api::ExecutorSummary> = all.iter().collect();
        list.sort_by_key(|e| {
            let n = e.id.parse::<u64>().ok();
            (e.id != "driver", !e.is_active, n, e.id.clone())
        });
        let mut b = Html::default();
        let sum = |f: fn(&crate::status::api::ExecutorSummary) -> i64, act: Option<bool>| -> i64 {
            list.iter()
                .filter(|e| act.is_none_or(|a| e.is_active == a))
                .map(|e| f(e))
                .sum()
        };
        let summary_row = |name: &str, act: Option<bool>| -> Vec<String> {
            let n = list
                .iter()
                .filter(|e| act.is_none_or(|a| e.is_active == a))
                .count();
            vec![
                format!("{}({n})", esc(name)),
                sum(|e| e.rdd_blocks, act).to_string(),
                format!(
                    "{} / {}",
                    bytes(sum(|e| e.memory_used, act)),
                    bytes(sum(|e| e.max_memory, act))
                ),
                bytes(sum(|e| e.disk_used, act)),
                sum(|e| e.total_cores, act).to_string(),
                sum(|e| e.active_tasks, act).to_string(),
                sum(|e| e.failed_tasks, act).to_string(),
                sum(|e| e.completed_tasks, act).to_string(),
                sum(|e| e.total_tasks, act).to_string(),
                duration(sum(|e| e.total_duration, act).max(0) as u64),
                bytes(sum(|e| e.total_input_bytes, act)),
                bytes(sum(|e| e.total_shuffle_read, act)),
                bytes(sum(|e| e.total_shuffle_write, act)),
            ]
        };
        let common = [
            "RDD Blocks",
            "Storage Memory",
            "Disk Used",
            "Cores",
            "Active Tasks",
            "Failed Tasks",
            "Complete Tasks",
            "Total Tasks",
            "Task Time",
            "Input",
            "Shuffle Read",
            "Shuffle Write",
        ];
        let mut headers = vec![""];
        headers.extend(common);
        b.raw("<h4>Summary</h4>").table(
            "summary-execs-table",
            &headers,
            &[
                summary_row("Active", Some(true)),
                summary_row("Dead", Some(false)),
                summary_row("Total", None),
            ],
        );
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                let mut row = vec![
                    esc(&e.id),
                    esc(&e.host_port),
                    if e.is_active {
                        "Active".into()
                    } else {
                        format!(
                            "Dead{}",
                            e.remove_reason
                                .as_deref()
                                .map(|r| format!(": {}", esc(r)))
                                .unwrap_or_default()
                        )
                    },
                    e.rdd_blocks.to_string(),
                    format!("{} / {}", bytes(e.memory_used), bytes(e.max_memory)),
                    bytes(e.disk_used),
                    e.total_cores.to_string(),
                    e.active_tasks.to_string(),
                    e.failed_tasks.to_string(),
                    e.completed_tasks.to_string(),
                    e.total_tasks.to_string(),
                    duration(e.total_duration.max(0) as u64),
                    bytes(e.total_input_bytes),
                    bytes(e.total_shuffle_read),
                    bytes(e.total_shuffle_write),
                ];
                // Spark shows the column only with spark.ui.threadDumpsEnabled.
                if thread_dumps {
                    row.push(if e.is_active {
                        format!(
                            "<a href=\"/executors/threadDump/?executorId={}\">Thread Dump</a>",
                            esc(&html::url_param(&e.id))
                        )
                    } else {
                        String::new()
                    });
                }
                row
            })
            .collect();
        let mut headers = vec!["Executor ID", "Address", "Status"];
        headers.extend(common);
        if thread_dumps {
            headers.push("Thread Dump");
        }
        let _ = write!(b.0, "<h4 id=\"executors\">Executors ({})</h4>", list.len());
        b.table("active-executors-table", &headers, &rows);
        render(st, "Executors", "Executors", &b.0)
    })
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css;charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        html::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript;charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        html::JS,
    )
        .into_response()
}

/// The first segments of the pages' paths, which no metrics servlet may take: a servlet at
/// one of them (or under one) would collide with a page's route.
pub const PAGE_PREFIXES: [&str; 7] = [
    "/jobs",
    "/stages",
    "/storage",
    "/environment",
    "/executors",
    "/static",
    "/api",
];

/// The pages' routes (Spark's paths; `/` and the paths without their slash redirect as
/// Spark's do). Without `ember.ui.threadDumpsEnabled` the thread-dump page is not served (404),
/// as Spark does not attach its `ExecutorThreadDumpPage`.
pub fn routes(state: ApiState) -> Router {
    let mut r = Router::new();
    if state.settings.thread_dumps_enabled {
        r = r.route(
            "/executors/threadDump/",
            get(super::threads::thread_dump_page),
        );
    }
    r
        .route("/", get(|| async { Redirect::to("/jobs/") }))
        .route("/jobs", get(|| async { Redirect::to("/jobs/") }))
        .route("/jobs/", get(jobs_page))
        .route("/jobs/job/", get(job_page))
        .route("/stages", get(|| async { Redirect::to("/stages/") }))
        .route("/stages/", get(stages_page))
        .route("/stages/stage/", get(stage_page))
        .route("/storage", get(|| async { Redirect::to("/storage/") }))
        .route("/storage/", get(storage_page))
        .route("/storage/rdd/", get(rdd_page))
        .route("/environment", get(|| async { Redirect::to("/environment/") }))
        .route("/environment/", get(environment_page))
        .route("/executors", get(|| async { Redirect::to("/executors/") }))
        .route("/executors/", get(executors_page))
        .route("/static/ember-ui.css", get(css))
        .route("/static/ember-ui.js", get(js))
        .with_state(state)
}
