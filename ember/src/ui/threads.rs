//! Thread dumps on the UI's server: the REST API's
//! `/api/v1/applications/{id}/executors/{executorId}/threads` (Spark's `ThreadStackTrace`s) and
//! the page `/executors/threadDump/?executorId=` (Spark's `ExecutorThreadDumpPage`).
//!
//! The dump itself is taken by whoever can reach the executor ([`ThreadDumpSource`]): the driver
//! dumps its own process (and so local mode's executor), and asks a `local-cluster` or
//! standalone executor over its connection.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::status::api;
use crate::threaddump::ThreadStack;

use super::html::{self, esc, Html};
use super::pages::html_response;
use super::rest::{ApiError, ApiState};

/// Takes the thread dump of a live executor (the driver: `driver`).
pub trait ThreadDumpSource: Send + Sync {
    /// Its threads, or `None` when no dump could be had (an executor that did not answer).
    fn thread_dump(&self, executor_id: &str) -> Option<Vec<ThreadStack>>;
}

/// Set once the backend exists (the UI's server starts before it).
pub type ThreadDumps = Arc<OnceLock<Arc<dyn ThreadDumpSource>>>;

/// A dump in Spark's JSON shape.
pub fn to_api(t: &ThreadStack) -> api::ThreadStackTrace {
    api::ThreadStackTrace {
        thread_id: t.thread_id,
        thread_name: display_name(t),
        thread_state: t.thread_state.clone(),
        stack_trace: api::StackTrace {
            elems: t.stack.iter().map(|f| format!("{f}\n")).collect(),
        },
        blocked_by_thread_id: None,
        blocked_by_lock: String::new(),
        holding_locks: Vec::new(),
        synchronizers: Vec::new(),
        monitors: Vec::new(),
        lock_name: None,
        lock_owner_name: None,
        suspended: false,
        in_native: false,
        is_daemon: false,
        priority: 5,
    }
}

/// A task thread's name says which task it runs, as Spark's names do ("… (TID 12)").
fn display_name(t: &ThreadStack) -> String {
    match t.task_id {
        Some(tid) => format!("{} (TID {tid})", t.thread_name),
        None => t.thread_name.clone(),
    }
}

/// Spark's checks before a dump: the id is `driver` or a number, the executor exists and is
/// active.
fn check(s: &ApiState, executor_id: &str) -> Result<(), ApiError> {
    if executor_id != "driver" && !executor_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "Invalid executorId: neither 'driver' nor number.".into(),
        ));
    }
    s.store.read(|st| match st.executors.get(executor_id) {
        Some(e) if e.is_active => Ok(()),
        Some(_) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            "Executor is not active.".into(),
        )),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "Executor does not exist.".into(),
        )),
    })
}

/// Takes the dump off the server's one thread: an executor's answer comes over the network.
async fn take(s: &ApiState, executor_id: &str) -> Result<Vec<ThreadStack>, ApiError> {
    check(s, executor_id)?;
    let unavailable = || ApiError(StatusCode::NOT_FOUND, "No thread dump is available.".into());
    let source = s.threads.get().cloned().ok_or_else(unavailable)?;
    let id = executor_id.to_string();
    let dump = tokio::task::spawn_blocking(move || source.thread_dump(&id))
        .await
        .ok()
        .flatten()
        .ok_or_else(unavailable)?;
    Ok(sorted(dump))
}

/// Spark's order: task threads first, then by name.
fn sorted(mut dump: Vec<ThreadStack>) -> Vec<ThreadStack> {
    dump.sort_by(|a, b| {
        (a.task_id.is_none(), a.thread_name.to_lowercase(), a.thread_id).cmp(&(
            b.task_id.is_none(),
            b.thread_name.to_lowercase(),
            b.thread_id,
        ))
    });
    dump
}

/// `GET /api/v1/applications/{app}/executors/{executorId}/threads`.
pub async fn threads_json(
    State(s): State<ApiState>,
    Path((app_id, executor_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    s.store.read(|st| super::rest::check_app(st, &app_id))?;
    let dump = take(&s, &executor_id).await?;
    let api: Vec<api::ThreadStackTrace> = dump.iter().map(to_api).collect();
    super::rest::json(&api)
}

/// `GET /executors/threadDump/?executorId=`.
pub async fn thread_dump_page(
    State(s): State<ApiState>,
    Query(p): Query<Vec<(String, String)>>,
) -> Response {
    let Some(id) = p
        .iter()
        .rev()
        .find(|(k, _)| k == "executorId")
        .map(|(_, v)| v.clone())
    else {
        return html_response(StatusCode::BAD_REQUEST, "Missing executorId parameter".into());
    };
    let (name, live) = s.store.read(|st| {
        (
            st.app.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
            st.app.as_ref().is_some_and(|a| a.end_time.is_none()),
        )
    });
    let title = format!("Thread dump for executor {id}");
    let body = match take(&s, &id).await {
        Err(ApiError(status, msg)) => {
            let text = format!("<p>{}</p>", esc(&msg));
            let page = html::page(&name, "Executors", &title, false, &text);
            return html_response(status, page);
        }
        Ok(dump) => {
            let mut b = Html::default();
            let _ = write!(
                b.0,
                "<p>Updated at {} ({} threads). Task threads come first; a thread's stack \
                 opens with a click.</p>",
                esc(&html::date(now_ms())),
                dump.len()
            );
            let rows: Vec<Vec<String>> = dump
                .iter()
                .map(|t| {
                    let stack = t
                        .stack
                        .iter()
                        .map(|f| esc(f))
                        .collect::<Vec<_>>()
                        .join("\n");
                    vec![
                        t.thread_id.to_string(),
                        format!(
                            "<details><summary>{}</summary><pre class=\"stack\">{stack}</pre>\
                             </details>",
                            esc(&display_name(t))
                        ),
                        esc(&t.thread_state),
                        t.task_id.map(|x| x.to_string()).unwrap_or_default(),
                    ]
                })
                .collect();
            b.table(
                "thread-dump-table",
                &["Thread ID", "Thread Name", "Thread State", "Task (TID)"],
                &rows,
            );
            b.0
        }
    };
    html_response(StatusCode::OK, html::page(&name, "Executors", &title, live, &body))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
