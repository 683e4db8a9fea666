//! The store's state as the REST API shows it (Spark's `AppStatusStore` queries and the
//! `toApi` conversions of its wrappers).

use std::collections::BTreeMap;

use crate::listener::events::{locality_name, StageInfo};
use crate::task::TaskMetricsSnapshot;
use crate::util::gmt_date;

use super::api;
use super::store::{Executor, Job, Rdd, Stage, State, Task};

fn date(ms: u64) -> String {
    gmt_date(ms as i64)
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The version Ember reports where Spark reports its own (`appSparkVersion`).
pub const EMBER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `applications` (and `applications/{id}`): this one application.
pub fn application(st: &State, now: u64) -> Option<api::ApplicationInfo> {
    let app = st.app.as_ref()?;
    let (end, end_epoch, duration) = match app.end_time {
        Some(e) => (date(e), n(e), n(e.saturating_sub(app.start_time))),
        None => (gmt_date(-1), -1, n(now.saturating_sub(app.start_time))),
    };
    let last = app.end_time.unwrap_or(app.start_time);
    Some(api::ApplicationInfo {
        id: app.id.clone(),
        name: app.name.clone(),
        attempts: vec![api::ApplicationAttemptInfo {
            attempt_id: None,
            start_time: date(app.start_time),
            end_time: end,
            last_updated: date(last),
            duration,
            spark_user: app.user.clone(),
            completed: app.end_time.is_some(),
            app_spark_version: EMBER_VERSION.to_string(),
            start_time_epoch: n(app.start_time),
            end_time_epoch: end_epoch,
            last_updated_epoch: n(last),
        }],
    })
}

/// One job.
pub fn job(j: &Job) -> api::JobData {
    api::JobData {
        job_id: j.id,
        name: j.name.clone(),
        description: j.description.clone(),
        submission_time: j.submission_time.map(date),
        completion_time: j.completion_time.map(date),
        stage_ids: j.stage_ids.clone(),
        job_group: j.job_group.clone(),
        job_tags: Vec::new(),
        status: j.status.name(),
        num_tasks: j.num_tasks,
        num_active_tasks: j.active_tasks.max(0),
        num_completed_tasks: j.completed_tasks,
        num_skipped_tasks: j.skipped_tasks,
        num_failed_tasks: j.failed_tasks,
        num_killed_tasks: j.killed_tasks,
        num_completed_indices: j.completed_indices() as i64,
        num_active_stages: j.active_stages.max(0),
        num_completed_stages: j.completed_stages.len() as i64,
        num_skipped_stages: j.skipped_stages.len() as i64,
        num_failed_stages: j.failed_stages,
        killed_tasks_summary: j.killed_summary.clone(),
    }
}

/// Jobs, newest first, optionally only those of some statuses (`?status=`).
pub fn jobs(st: &State, statuses: &[String]) -> Vec<api::JobData> {
    st.jobs
        .values()
        .rev()
        .filter(|j| {
            statuses.is_empty()
                || statuses
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(j.status.name()))
        })
        .map(job)
        .collect()
}

/// Ember's metrics under Spark's REST names. Ember measures no deserialization, CPU or GC
/// time separately (0); shuffle blocks count as local unless bytes came from other executors.
pub fn task_metrics(m: &TaskMetricsSnapshot) -> api::TaskMetrics {
    let (local_blocks, remote_blocks) = split_blocks(m);
    api::TaskMetrics {
        executor_deserialize_time: 0,
        executor_deserialize_cpu_time: 0,
        executor_run_time: n(m.executor_run_time_ms),
        executor_cpu_time: 0,
        result_size: n(m.result_size),
        jvm_gc_time: 0,
        result_serialization_time: 0,
        memory_bytes_spilled: n(m.memory_bytes_spilled),
        disk_bytes_spilled: n(m.disk_bytes_spilled),
        peak_execution_memory: n(m.peak_execution_memory),
        input_metrics: api::InputMetrics {
            bytes_read: n(m.input_bytes_read),
            records_read: n(m.input_records_read),
        },
        output_metrics: api::OutputMetrics {
            bytes_written: n(m.output_bytes_written),
            records_written: n(m.output_records_written),
        },
        shuffle_read_metrics: api::ShuffleReadMetrics {
            remote_blocks_fetched: remote_blocks,
            local_blocks_fetched: local_blocks,
            fetch_wait_time: 0,
            remote_bytes_read: n(m.shuffle_remote_bytes_read),
            remote_bytes_read_to_disk: 0,
            local_bytes_read: n(m.shuffle_local_bytes_read),
            records_read: n(m.shuffle_records_read),
            remote_reqs_duration: 0,
            shuffle_push_read_metrics: Default::default(),
        },
        shuffle_write_metrics: api::ShuffleWriteMetrics {
            bytes_written: n(m.shuffle_bytes_written),
            write_time: 0,
            records_written: n(m.shuffle_records_written),
        },
    }
}

/// Blocks fetched as (local, remote): Ember counts them together.
pub fn split_blocks(m: &TaskMetricsSnapshot) -> (i64, i64) {
    let blocks = n(m.shuffle_blocks_fetched);
    if m.shuffle_remote_bytes_read == 0 {
        (blocks, 0)
    } else if m.shuffle_local_bytes_read == 0 {
        (0, blocks)
    } else {
        let total = m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read;
        let local = (m.shuffle_blocks_fetched as u128 * m.shuffle_local_bytes_read as u128
            / total as u128) as i64;
        (local, blocks - local)
    }
}

/// A task's duration so far or in all (ms).
fn task_duration(t: &Task, now: u64) -> u64 {
    t.info.duration_at(now)
}

/// Spark's scheduler delay: the part of a task's duration it spent neither running nor
/// having its result fetched.
fn scheduler_delay(t: &Task, now: u64) -> i64 {
    let run = t.metrics.as_ref().map_or(0, |m| m.executor_run_time_ms);
    n(task_duration(t, now)
        .saturating_sub(run)
        .saturating_sub(getting_result_time(t, now)))
}

/// How long the driver has been fetching the task's result, or took to (Spark's
/// `AppStatusUtils.gettingResultTime`): from the fetch's start to the task's end, or to now.
fn getting_result_time(t: &Task, now: u64) -> u64 {
    let start = t.info.getting_result_time;
    if start == 0 {
        return 0;
    }
    let end = if t.info.finish_time > 0 {
        t.info.finish_time
    } else {
        now
    };
    end.saturating_sub(start)
}

/// One task.
pub fn task(t: &Task, now: u64) -> api::TaskData {
    api::TaskData {
        task_id: t.info.task_id,
        index: t.info.index,
        attempt: t.info.attempt,
        partition_id: t.info.partition_id,
        launch_time: date(t.info.launch_time),
        result_fetch_start: (t.info.getting_result_time > 0)
            .then(|| date(t.info.getting_result_time)),
        duration: Some(n(task_duration(t, now))),
        executor_id: t.info.executor_id.to_string(),
        host: t.info.host.to_string(),
        status: t.info.status(),
        task_locality: locality_name(t.info.locality),
        speculative: t.info.speculative,
        accumulator_updates: Vec::new(),
        error_message: t.error_message.clone(),
        task_metrics: t.metrics.as_ref().map(task_metrics),
        executor_logs: BTreeMap::new(),
        scheduler_delay: if t.metrics.is_some() {
            scheduler_delay(t, now)
        } else {
            0
        },
        getting_result_time: n(getting_result_time(t, now)),
    }
}

/// One stage attempt; `details` adds its tasks and per-executor summaries.
pub fn stage(s: &Stage, details: bool, now: u64) -> api::StageData {
    let m = &s.metrics;
    let (local_blocks, remote_blocks) = split_blocks(m);
    let info: &StageInfo = &s.info;
    api::StageData {
        status: s.status.name(),
        stage_id: info.stage_id,
        attempt_id: info.attempt_id,
        num_tasks: info.num_tasks as i64,
        num_active_tasks: s.active_tasks.max(0),
        num_complete_tasks: s.completed_tasks,
        num_failed_tasks: s.failed_tasks,
        num_killed_tasks: s.killed_tasks,
        num_completed_indices: s.completed_indices() as i64,
        submission_time: info.submission_time.map(date),
        first_task_launched_time: s.first_launch_time.map(date),
        completion_time: info.completion_time.map(date),
        failure_reason: info.failure_reason.clone(),
        executor_deserialize_time: 0,
        executor_deserialize_cpu_time: 0,
        executor_run_time: n(m.executor_run_time_ms),
        executor_cpu_time: 0,
        result_size: n(m.result_size),
        jvm_gc_time: 0,
        result_serialization_time: 0,
        memory_bytes_spilled: n(m.memory_bytes_spilled),
        disk_bytes_spilled: n(m.disk_bytes_spilled),
        peak_execution_memory: n(m.peak_execution_memory),
        input_bytes: n(m.input_bytes_read),
        input_records: n(m.input_records_read),
        output_bytes: n(m.output_bytes_written),
        output_records: n(m.output_records_written),
        shuffle_remote_blocks_fetched: remote_blocks,
        shuffle_local_blocks_fetched: local_blocks,
        shuffle_fetch_wait_time: 0,
        shuffle_remote_bytes_read: n(m.shuffle_remote_bytes_read),
        shuffle_remote_bytes_read_to_disk: 0,
        shuffle_local_bytes_read: n(m.shuffle_local_bytes_read),
        shuffle_read_bytes: n(m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read),
        shuffle_read_records: n(m.shuffle_records_read),
        shuffle_corrupt_merged_block_chunks: 0,
        shuffle_merged_fetch_fallback_count: 0,
        shuffle_merged_remote_blocks_fetched: 0,
        shuffle_merged_local_blocks_fetched: 0,
        shuffle_merged_remote_chunks_fetched: 0,
        shuffle_merged_local_chunks_fetched: 0,
        shuffle_merged_remote_bytes_read: 0,
        shuffle_merged_local_bytes_read: 0,
        shuffle_remote_reqs_duration: 0,
        shuffle_merged_remote_reqs_duration: 0,
        shuffle_write_bytes: n(m.shuffle_bytes_written),
        shuffle_write_time: 0,
        shuffle_write_records: n(m.shuffle_records_written),
        name: info.name.to_string(),
        description: s.description.clone(),
        details: info.details.to_string(),
        scheduling_pool: s.scheduling_pool.clone(),
        rdd_ids: info.rdd_infos.iter().map(|r| r.id).collect(),
        accumulator_updates: Vec::new(),
        tasks: details.then(|| {
            s.tasks
                .iter()
                .map(|(id, t)| (id.to_string(), task(t, now)))
                .collect()
        }),
        executor_summary: details.then(|| {
            s.executor_summaries
                .iter()
                .map(|(id, e)| {
                    let m = &e.metrics;
                    let summary = api::ExecutorStageSummary {
                        task_time: e.task_time,
                        failed_tasks: e.failed_tasks,
                        succeeded_tasks: e.succeeded_tasks,
                        killed_tasks: e.killed_tasks,
                        input_bytes: n(m.input_bytes_read),
                        input_records: n(m.input_records_read),
                        output_bytes: n(m.output_bytes_written),
                        output_records: n(m.output_records_written),
                        shuffle_read: n(m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read),
                        shuffle_read_records: n(m.shuffle_records_read),
                        shuffle_write: n(m.shuffle_bytes_written),
                        shuffle_write_records: n(m.shuffle_records_written),
                        memory_bytes_spilled: n(m.memory_bytes_spilled),
                        disk_bytes_spilled: n(m.disk_bytes_spilled),
                        is_blacklisted_for_stage: e.is_excluded,
                        peak_memory_metrics: Default::default(),
                        is_excluded_for_stage: e.is_excluded,
                    };
                    (id.to_string(), summary)
                })
                .collect()
        }),
        killed_tasks_summary: s.killed_summary.clone(),
        resource_profile_id: 0,
        peak_executor_metrics: None,
        is_shuffle_push_enabled: false,
        shuffle_mergers_count: 0,
    }
}

/// Stage attempts, newest first (by stage id, then attempt), optionally only some statuses.
pub fn stages(st: &State, statuses: &[String], details: bool, now: u64) -> Vec<api::StageData> {
    st.stages
        .values()
        .rev()
        .filter(|s| {
            statuses.is_empty()
                || statuses
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(s.status.name()))
        })
        .map(|s| stage(s, details, now))
        .collect()
}

/// How `taskList` orders tasks (Spark's `TaskSorting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskSorting {
    /// By task id (the default).
    Id,
    /// By run time, shortest first (`runtime`).
    IncreasingRuntime,
    /// By run time, longest first (`-runtime`).
    DecreasingRuntime,
}

impl TaskSorting {
    /// Parses `sortBy` (`ID`, `runtime`, `-runtime`, as Spark's `TaskSorting.fromString`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "id" => Some(TaskSorting::Id),
            "runtime" | "increasing_runtime" => Some(TaskSorting::IncreasingRuntime),
            "-runtime" | "decreasing_runtime" => Some(TaskSorting::DecreasingRuntime),
            _ => None,
        }
    }
}

/// `taskList`: `length` tasks from `offset` in `sort` order, optionally only some statuses.
pub fn task_list(
    s: &Stage,
    offset: usize,
    length: usize,
    sort: TaskSorting,
    statuses: &[String],
    now: u64,
) -> Vec<api::TaskData> {
    let mut tasks: Vec<&Task> = s
        .tasks
        .values()
        .filter(|t| {
            statuses.is_empty()
                || statuses
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(t.info.status()))
        })
        .collect();
    let run_time = |t: &Task| t.metrics.as_ref().map_or(-1, |m| n(m.executor_run_time_ms));
    match sort {
        TaskSorting::Id => {}
        TaskSorting::IncreasingRuntime => tasks.sort_by_key(|t| (run_time(t), t.info.task_id)),
        TaskSorting::DecreasingRuntime => {
            tasks.sort_by_key(|t| (std::cmp::Reverse(run_time(t)), t.info.task_id))
        }
    }
    tasks
        .into_iter()
        .skip(offset)
        .take(length)
        .map(|t| task(t, now))
        .collect()
}

/// Spark's default `taskSummary` quantiles.
pub const DEFAULT_QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// `taskSummary`: quantiles of the metrics of the stage attempt's successful tasks; `None` when
/// none has reported metrics yet (Spark's 404).
pub fn task_summary(
    s: &Stage,
    quantiles: &[f64],
    now: u64,
) -> Option<api::TaskMetricDistributions> {
    let done: Vec<(&Task, &TaskMetricsSnapshot)> = s
        .tasks
        .values()
        .filter(|t| t.info.status() == "SUCCESS")
        .filter_map(|t| t.metrics.as_ref().map(|m| (t, m)))
        .collect();
    if done.is_empty() {
        return None;
    }
    let count = done.len();
    let dist = |f: &dyn Fn(&Task, &TaskMetricsSnapshot) -> f64| -> Vec<f64> {
        let mut v: Vec<f64> = done.iter().map(|(t, m)| f(t, m)).collect();
        v.sort_by(f64::total_cmp);
        quantiles
            .iter()
            .map(|q| v[((q * count as f64) as usize).min(count - 1)])
            .collect()
    };
    let zero = |_: &Task, _: &TaskMetricsSnapshot| 0.0;
    let push = || api::ShufflePushReadMetricDistributions {
        corrupt_merged_block_chunks: dist(&zero),
        merged_fetch_fallback_count: dist(&zero),
        remote_merged_blocks_fetched: dist(&zero),
        local_merged_blocks_fetched: dist(&zero),
        remote_merged_chunks_fetched: dist(&zero),
        local_merged_chunks_fetched: dist(&zero),
        remote_merged_bytes_read: dist(&zero),
        local_merged_bytes_read: dist(&zero),
        remote_merged_reqs_duration: dist(&zero),
    };
    Some(api::TaskMetricDistributions {
        quantiles: quantiles.to_vec(),
        duration: dist(&|t, _| task_duration(t, now) as f64),
        executor_deserialize_time: dist(&zero),
        executor_deserialize_cpu_time: dist(&zero),
        executor_run_time: dist(&|_, m| m.executor_run_time_ms as f64),
        executor_cpu_time: dist(&zero),
        result_size: dist(&|_, m| m.result_size as f64),
        jvm_gc_time: dist(&zero),
        result_serialization_time: dist(&zero),
        getting_result_time: dist(&|t, _| getting_result_time(t, now) as f64),
        scheduler_delay: dist(&|t, _| scheduler_delay(t, now) as f64),
        peak_execution_memory: dist(&|_, m| m.peak_execution_memory as f64),
        memory_bytes_spilled: dist(&|_, m| m.memory_bytes_spilled as f64),
        disk_bytes_spilled: dist(&|_, m| m.disk_bytes_spilled as f64),
        input_metrics: api::InputMetricDistributions {
            bytes_read: dist(&|_, m| m.input_bytes_read as f64),
            records_read: dist(&|_, m| m.input_records_read as f64),
        },
        output_metrics: api::OutputMetricDistributions {
            bytes_written: dist(&|_, m| m.output_bytes_written as f64),
            records_written: dist(&|_, m| m.output_records_written as f64),
        },
        shuffle_read_metrics: api::ShuffleReadMetricDistributions {
            read_bytes: dist(&|_, m| {
                (m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read) as f64
            }),
            read_records: dist(&|_, m| m.shuffle_records_read as f64),
            remote_blocks_fetched: dist(&|_, m| split_blocks(m).1 as f64),
            local_blocks_fetched: dist(&|_, m| split_blocks(m).0 as f64),
            fetch_wait_time: dist(&zero),
            remote_bytes_read: dist(&|_, m| m.shuffle_remote_bytes_read as f64),
            remote_bytes_read_to_disk: dist(&zero),
            total_blocks_fetched: dist(&|_, m| m.shuffle_blocks_fetched as f64),
            remote_reqs_duration: dist(&zero),
            shuffle_push_read_metrics_dist: push(),
        },
        shuffle_write_metrics: api::ShuffleWriteMetricDistributions {
            write_bytes: dist(&|_, m| m.shuffle_bytes_written as f64),
            write_records: dist(&|_, m| m.shuffle_records_written as f64),
            write_time: dist(&zero),
        },
    })
}

/// One executor.
pub fn executor(e: &Executor) -> api::ExecutorSummary {
    api::ExecutorSummary {
        id: e.id.clone(),
        host_port: e.address(),
        is_active: e.is_active,
        rdd_blocks: e.rdd_blocks.max(0),
        memory_used: e.memory_used,
        disk_used: e.disk_used,
        total_cores: e.total_cores,
        max_tasks: e.max_tasks,
        active_tasks: e.active_tasks.max(0),
        failed_tasks: e.failed_tasks,
        completed_tasks: e.completed_tasks,
        total_tasks: e.total_tasks,
        total_duration: e.total_duration,
        total_gc_time: e.total_gc_time,
        total_input_bytes: e.total_input_bytes,
        total_shuffle_read: e.total_shuffle_read,
        total_shuffle_write: e.total_shuffle_write,
        is_blacklisted: e.is_excluded,
        max_memory: e.max_memory,
        add_time: date(e.add_time),
        remove_time: e.remove_time.map(date),
        remove_reason: e.remove_reason.clone(),
        executor_logs: e.executor_logs.clone(),
        memory_metrics: e.total_on_heap.map(|total| api::MemoryMetrics {
            used_on_heap_storage_memory: e.used_on_heap,
            used_off_heap_storage_memory: 0,
            total_on_heap_storage_memory: total,
            total_off_heap_storage_memory: 0,
        }),
        blacklisted_in_stages: e.excluded_in_stages.iter().copied().collect(),
        peak_memory_metrics: None,
        attributes: BTreeMap::new(),
        resources: BTreeMap::new(),
        resource_profile_id: 0,
        is_excluded: e.is_excluded,
        excluded_in_stages: e.excluded_in_stages.iter().copied().collect(),
    }
}

/// `executors` (active only, the driver first) or `allexecutors` (all, by id as a string).
pub fn executors(st: &State, active_only: bool) -> Vec<api::ExecutorSummary> {
    let mut list: Vec<&Executor> = st
        .executors
        .values()
        .filter(|e| !active_only || e.is_active)
        .collect();
    if active_only {
        list.sort_by_key(|e| (e.id != "driver", e.id.clone()));
    }
    list.into_iter().map(executor).collect()
}

/// Spark's `StorageLevel.description`: "Memory Deserialized 1x Replicated".
pub fn storage_level_description(l: &crate::storage::StorageLevel) -> String {
    let mut parts = Vec::new();
    if l.use_disk {
        parts.push("Disk");
    }
    if l.use_memory {
        parts.push("Memory");
    }
    parts.push(if l.deserialized {
        "Deserialized"
    } else {
        "Serialized"
    });
    format!("{} {}x Replicated", parts.join(" "), l.replication)
}

/// One cached RDD; `details` adds where its data is.
pub fn rdd(st: &State, r: &Rdd, details: bool) -> api::RddStorageInfo {
    let level = storage_level_description(&r.info.storage_level);
    api::RddStorageInfo {
        id: r.info.id,
        name: r.info.name.clone(),
        num_partitions: r.info.num_partitions as i64,
        num_cached_partitions: r.partitions.len() as i64,
        storage_level: level.clone(),
        memory_used: r.memory_used,
        disk_used: r.disk_used,
        data_distribution: details.then(|| {
            r.distributions
                .iter()
                .map(|(x, d)| {
                    let exec = st.executors.get(x);
                    let remaining = exec.map_or(0, |e| (e.max_memory - e.memory_used).max(0));
                    api::RddDataDistribution {
                        address: exec.map_or_else(|| x.clone(), Executor::address),
                        memory_used: d.memory_used,
                        memory_remaining: remaining,
                        disk_used: d.disk_used,
                        on_heap_memory_used: d.on_heap_used,
                        off_heap_memory_used: 0,
                        on_heap_memory_remaining: remaining,
                        off_heap_memory_remaining: 0,
                    }
                })
                .collect()
        }),
        partitions: details.then(|| {
            r.partitions
                .iter()
                .map(|(p, part)| api::RddPartitionInfo {
                    block_name: format!("rdd_{}_{p}", r.info.id),
                    storage_level: level.clone(),
                    memory_used: part.memory_used,
                    disk_used: part.disk_used,
                    executors: part.executors.clone(),
                })
                .collect()
        }),
    }
}

/// `storage/rdd`: the RDDs with cached partitions.
pub fn rdds(st: &State) -> Vec<api::RddStorageInfo> {
    st.rdds
        .values()
        .filter(|r| !r.partitions.is_empty())
        .map(|r| rdd(st, r, true))
        .collect()
}

/// `environment`.
pub fn environment(st: &State) -> Option<api::ApplicationEnvironmentInfo> {
    let env = st.environment.as_ref()?;
    let get = |k: &str| {
        env.runtime
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Some(api::ApplicationEnvironmentInfo {
        runtime: api::RuntimeInfo {
            java_version: get("Java Version"),
            java_home: get("Java Home"),
            scala_version: get("Scala Version"),
        },
        spark_properties: env.spark_properties.clone(),
        hadoop_properties: env.hadoop_properties.clone(),
        system_properties: env.system_properties.clone(),
        metrics_properties: env.metrics_properties.clone(),
        classpath_entries: env.classpath_entries.clone(),
        resource_profiles: Vec::new(),
    })
}
