//! The REST API (Spark's `/api/v1`, `ApiRootResource` and its resources): the UI's store as
//! JSON under Spark's paths, parameters and error answers.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::status::store::{Stage, State as StoreState};
use crate::status::views::{self, TaskSorting, DEFAULT_QUANTILES};
use crate::status::AppStatusStore;

/// What the handlers read: the store and the clock.
#[derive(Clone)]
pub struct ApiState {
    /// The UI's store.
    pub store: Arc<AppStatusStore>,
    /// Now, in epoch milliseconds, on the scheduler's clock.
    pub now: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Who takes thread dumps (set once the backend runs).
    pub threads: super::threads::ThreadDumps,
    /// The metrics system's settings and sources.
    pub metrics: Arc<super::metrics_system::MetricsState>,
    /// What the pages show, from `ember.ui.*`.
    pub settings: UiSettings,
}

/// The pages' settings (Spark's `spark.ui.*` keys that the pages read when they render).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UiSettings {
    /// `ember.ui.timeline.jobs.maximum`: jobs the Jobs page's timeline draws at most.
    pub timeline_jobs: usize,
    /// `ember.ui.timeline.stages.maximum`: stages a job's timeline draws at most.
    pub timeline_stages: usize,
    /// `ember.ui.timeline.tasks.maximum`: tasks a stage's timeline draws at most.
    pub timeline_tasks: usize,
    /// `ember.ui.timeline.executors.maximum`: executors whose arrival and departure the
    /// timelines draw at most.
    pub timeline_executors: usize,
    /// `ember.ui.threadDumpsEnabled`: the Executors page links each live executor's thread
    /// dump, and the thread-dump page is served.
    pub thread_dumps_enabled: bool,
}

impl UiSettings {
    /// The settings of `c`.
    pub fn from_conf(c: &crate::conf::EmberConf) -> crate::error::Result<Self> {
        use crate::conf;
        let n = |key: &str| c.get_u64(key).map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        Ok(UiSettings {
            timeline_jobs: n(conf::UI_TIMELINE_JOBS_MAXIMUM)?,
            timeline_stages: n(conf::UI_TIMELINE_STAGES_MAXIMUM)?,
            timeline_tasks: n(conf::UI_TIMELINE_TASKS_MAXIMUM)?,
            timeline_executors: n(conf::UI_TIMELINE_EXECUTORS_MAXIMUM)?,
            thread_dumps_enabled: c.get_bool(conf::UI_THREAD_DUMPS_ENABLED)?,
        })
    }
}

type Params = Query<Vec<(String, String)>>;

/// An answer that is not the data asked for, with Spark's status and text.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

fn not_found(msg: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, msg)
}

fn bad_request(msg: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg)
}

type ApiResult = Result<Response, ApiError>;

/// A JSON answer.
pub fn json<T: Serialize>(value: &T) -> ApiResult {
    let body = serde_json::to_vec_pretty(value)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Every value of a parameter, repeated (`?status=a&status=b`) or comma-separated.
fn values(params: &[(String, String)], key: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn one<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn number<T: std::str::FromStr>(
    params: &[(String, String)],
    key: &str,
    default: T,
) -> Result<T, ApiError> {
    match one(params, key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad_request(format!("Bad value for parameter \"{key}\": {v}"))),
    }
}

fn flag(params: &[(String, String)], key: &str, default: bool) -> Result<bool, ApiError> {
    match one(params, key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(bad_request(format!(
            "Bad value for parameter \"{key}\": {v}"
        ))),
    }
}

/// Checks that `app_id` is this application's (Spark's "no such app").
pub fn check_app(st: &StoreState, app_id: &str) -> Result<(), ApiError> {
    match &st.app {
        Some(a) if a.id == app_id => Ok(()),
        _ => Err(not_found(format!("no such app: {app_id}"))),
    }
}

fn stage_attempt(
    st: &StoreState,
    stage_id: usize,
    attempt: u32,
) -> Result<&Stage, ApiError> {
    if let Some(s) = st.stages.get(&(stage_id, attempt)) {
        return Ok(s);
    }
    let attempts: Vec<String> = st
        .stages
        .range((stage_id, 0)..=(stage_id, u32::MAX))
        .map(|(k, _)| k.1.to_string())
        .collect();
    if attempts.is_empty() {
        Err(not_found(format!("unknown stage: {stage_id}")))
    } else {
        Err(not_found(format!(
            "unknown attempt for stage {stage_id}.  Found attempts: [{}]",
            attempts.join(",")
        )))
    }
}

async fn applications(State(s): State<ApiState>) -> ApiResult {
    let now = (s.now)();
    json(
        &s.store
            .read(|st| views::application(st, now).into_iter().collect::<Vec<_>>()),
    )
}

async fn application(State(s): State<ApiState>, Path(app_id): Path<String>) -> ApiResult {
    let now = (s.now)();
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::application(st, now))
    })
}

async fn jobs(
    State(s): State<ApiState>,
    Path(app_id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::jobs(st, &values(&p, "status")))
    })
}

async fn job(
    State(s): State<ApiState>,
    Path((app_id, job_id)): Path<(String, usize)>,
) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        let j = st
            .jobs
            .get(&job_id)
            .ok_or_else(|| not_found(format!("unknown job: {job_id}")))?;
        json(&views::job(j))
    })
}

async fn stages(
    State(s): State<ApiState>,
    Path(app_id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let now = (s.now)();
    let details = flag(&p, "details", false)?;
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::stages(st, &values(&p, "status"), details, now))
    })
}

async fn stage(
    State(s): State<ApiState>,
    Path((app_id, stage_id)): Path<(String, usize)>,
    Query(p): Params,
) -> ApiResult {
    let now = (s.now)();
    let details = flag(&p, "details", true)?;
    s.store.read(|st| {
        check_app(st, &app_id)?;
        let attempts: Vec<_> = st
            .stages
            .range((stage_id, 0)..=(stage_id, u32::MAX))
            .rev()
            .map(|(_, stage)| views::stage(stage, details, now))
            .collect();
        if attempts.is_empty() {
            return Err(not_found(format!("unknown stage: {stage_id}")));
        }
        json(&attempts)
    })
}

async fn stage_attempt_data(
    State(s): State<ApiState>,
    Path((app_id, stage_id, attempt)): Path<(String, usize, u32)>,
    Query(p): Params,
) -> ApiResult {
    let now = (s.now)();
    let details = flag(&p, "details", true)?;
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::stage(
            stage_attempt(st, stage_id, attempt)?,
            details,
            now,
        ))
    })
}

async fn task_list(
    State(s): State<ApiState>,
    Path((app_id, stage_id, attempt)): Path<(String, usize, u32)>,
    Query(p): Params,
) -> ApiResult {
    let now = (s.now)();
    let offset = number(&p, "offset", 0usize)?;
    let length = number(&p, "length", 20usize)?;
    let sort = match one(&p, "sortBy") {
        None => TaskSorting::Id,
        Some(v) => TaskSorting::parse(v)
            .ok_or_else(|| bad_request(format!("Bad value for parameter \"sortBy\": {v}")))?,
    };
    let statuses = values(&p, "status");
    for x in &statuses {
        if !["RUNNING", "SUCCESS", "FAILED", "KILLED", "UNKNOWN"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(x))
        {
            return Err(bad_request(format!(
                "Bad value for parameter \"status\": {x}"
            )));
        }
    }
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::task_list(
            stage_attempt(st, stage_id, attempt)?,
            offset,
            length,
            sort,
            &statuses,
            now,
        ))
    })
}

async fn task_summary(
    State(s): State<ApiState>,
    Path((app_id, stage_id, attempt)): Path<(String, usize, u32)>,
    Query(p): Params,
) -> ApiResult {
    let now = (s.now)();
    let quantiles = match one(&p, "quantiles") {
        None => DEFAULT_QUANTILES.to_vec(),
        Some(v) => {
            let parsed: Option<Vec<f64>> = v
                .split(',')
                .map(|q| {
                    q.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                })
                .collect();
            parsed
                .filter(|q| !q.is_empty())
                .ok_or_else(|| bad_request(format!("Bad value for parameter \"quantiles\": {v}")))?
        }
    };
    s.store.read(|st| {
        check_app(st, &app_id)?;
        let stage = stage_attempt(st, stage_id, attempt)?;
        match views::task_summary(stage, &quantiles, now) {
            Some(d) => json(&d),
            None => Err(not_found(format!(
                "No tasks reported metrics for {stage_id} / {attempt} yet."
            ))),
        }
    })
}

async fn executors(State(s): State<ApiState>, Path(app_id): Path<String>) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::executors(st, true))
    })
}

async fn all_executors(State(s): State<ApiState>, Path(app_id): Path<String>) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::executors(st, false))
    })
}

async fn rdds(State(s): State<ApiState>, Path(app_id): Path<String>) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        json(&views::rdds(st))
    })
}

async fn rdd(
    State(s): State<ApiState>,
    Path((app_id, rdd_id)): Path<(String, usize)>,
) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        let r = st
            .rdds
            .get(&rdd_id)
            .ok_or_else(|| not_found(format!("no rdd found w/ id {rdd_id}")))?;
        json(&views::rdd(st, r, true))
    })
}

async fn environment(State(s): State<ApiState>, Path(app_id): Path<String>) -> ApiResult {
    s.store.read(|st| {
        check_app(st, &app_id)?;
        let env =
            views::environment(st).ok_or_else(|| not_found("no environment yet".to_string()))?;
        json(&env)
    })
}

async fn version() -> ApiResult {
    json(&serde_json::json!({ "spark": views::EMBER_VERSION }))
}

/// The `/api/v1` routes.
pub fn routes(state: ApiState) -> Router {
    const APP: &str = "/api/v1/applications/{app_id}";
    Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/applications", get(applications))
        .route(APP, get(application))
        .route(&format!("{APP}/jobs"), get(jobs))
        .route(&format!("{APP}/jobs/{{job_id}}"), get(job))
        .route(&format!("{APP}/stages"), get(stages))
        .route(&format!("{APP}/stages/{{stage_id}}"), get(stage))
        .route(
            &format!("{APP}/stages/{{stage_id}}/{{attempt}}"),
            get(stage_attempt_data),
        )
        .route(
            &format!("{APP}/stages/{{stage_id}}/{{attempt}}/taskList"),
            get(task_list),
        )
        .route(
            &format!("{APP}/stages/{{stage_id}}/{{attempt}}/taskSummary"),
            get(task_summary),
        )
        .route(&format!("{APP}/executors"), get(executors))
        .route(&format!("{APP}/allexecutors"), get(all_executors))
        .route(
            &format!("{APP}/executors/{{executor_id}}/threads"),
            get(super::threads::threads_json),
        )
        .route(&format!("{APP}/storage/rdd"), get(rdds))
        .route(&format!("{APP}/storage/rdd/{{rdd_id}}"), get(rdd))
        .route(&format!("{APP}/environment"), get(environment))
        .with_state(state)
}
