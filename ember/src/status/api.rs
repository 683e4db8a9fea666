//! The REST API's data (Spark's `org.apache.spark.status.api.v1`), with Spark's JSON field names
//! and shapes: dates as `yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'` strings, durations in milliseconds,
//! empty optional fields left out, empty collections kept.

use std::collections::BTreeMap;

use serde::Serialize;

/// `ApplicationInfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    pub id: String,
    pub name: String,
    pub attempts: Vec<ApplicationAttemptInfo>,
}

/// `ApplicationAttemptInfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationAttemptInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_id: Option<String>,
    pub start_time: String,
    pub end_time: String,
    pub last_updated: String,
    pub duration: i64,
    pub spark_user: String,
    pub completed: bool,
    pub app_spark_version: String,
    pub start_time_epoch: i64,
    pub end_time_epoch: i64,
    pub last_updated_epoch: i64,
}

/// `JobData`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobData {
    pub job_id: usize,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    pub stage_ids: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_group: Option<String>,
    pub job_tags: Vec<String>,
    pub status: &'static str,
    pub num_tasks: i64,
    pub num_active_tasks: i64,
    pub num_completed_tasks: i64,
    pub num_skipped_tasks: i64,
    pub num_failed_tasks: i64,
    pub num_killed_tasks: i64,
    pub num_completed_indices: i64,
    pub num_active_stages: i64,
    pub num_completed_stages: i64,
    pub num_skipped_stages: i64,
    pub num_failed_stages: i64,
    pub killed_tasks_summary: BTreeMap<String, i64>,
}

/// Spark's `ExecutorMetrics` as the REST API names them (`peakMemoryMetrics`). Ember has no JVM:
/// the heap and GC entries stay 0; memory is the process's resident set where known.
#[derive(Clone, Debug, Default, Serialize)]
#[allow(non_snake_case)]
pub struct PeakMemoryMetrics {
    pub JVMHeapMemory: i64,
    pub JVMOffHeapMemory: i64,
    pub OnHeapExecutionMemory: i64,
    pub OffHeapExecutionMemory: i64,
    pub OnHeapStorageMemory: i64,
    pub OffHeapStorageMemory: i64,
    pub OnHeapUnifiedMemory: i64,
    pub OffHeapUnifiedMemory: i64,
    pub DirectPoolMemory: i64,
    pub MappedPoolMemory: i64,
    pub ProcessTreeJVMVMemory: i64,
    pub ProcessTreeJVMRSSMemory: i64,
    pub ProcessTreePythonVMemory: i64,
    pub ProcessTreePythonRSSMemory: i64,
    pub ProcessTreeOtherVMemory: i64,
    pub ProcessTreeOtherRSSMemory: i64,
    pub MinorGCCount: i64,
    pub MinorGCTime: i64,
    pub MajorGCCount: i64,
    pub MajorGCTime: i64,
    pub TotalGCTime: i64,
    pub ConcurrentGCCount: i64,
    pub ConcurrentGCTime: i64,
}

/// `InputMetrics`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputMetrics {
    pub bytes_read: i64,
    pub records_read: i64,
}

/// `OutputMetrics`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputMetrics {
    pub bytes_written: i64,
    pub records_written: i64,
}

/// `ShufflePushReadMetrics` (push-based shuffle: never used by Ember, all zeros).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShufflePushReadMetrics {
    pub corrupt_merged_block_chunks: i64,
    pub merged_fetch_fallback_count: i64,
    pub remote_merged_blocks_fetched: i64,
    pub local_merged_blocks_fetched: i64,
    pub remote_merged_chunks_fetched: i64,
    pub local_merged_chunks_fetched: i64,
    pub remote_merged_bytes_read: i64,
    pub local_merged_bytes_read: i64,
    pub remote_merged_reqs_duration: i64,
}

/// `ShuffleReadMetrics`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShuffleReadMetrics {
    pub remote_blocks_fetched: i64,
    pub local_blocks_fetched: i64,
    pub fetch_wait_time: i64,
    pub remote_bytes_read: i64,
    pub remote_bytes_read_to_disk: i64,
    pub local_bytes_read: i64,
    pub records_read: i64,
    pub remote_reqs_duration: i64,
    pub shuffle_push_read_metrics: ShufflePushReadMetrics,
}

/// `ShuffleWriteMetrics`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShuffleWriteMetrics {
    pub bytes_written: i64,
    pub write_time: i64,
    pub records_written: i64,
}

/// `TaskMetrics`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetrics {
    pub executor_deserialize_time: i64,
    pub executor_deserialize_cpu_time: i64,
    pub executor_run_time: i64,
    pub executor_cpu_time: i64,
    pub result_size: i64,
    pub jvm_gc_time: i64,
    pub result_serialization_time: i64,
    pub memory_bytes_spilled: i64,
    pub disk_bytes_spilled: i64,
    pub peak_execution_memory: i64,
    pub input_metrics: InputMetrics,
    pub output_metrics: OutputMetrics,
    pub shuffle_read_metrics: ShuffleReadMetrics,
    pub shuffle_write_metrics: ShuffleWriteMetrics,
}

/// `TaskData`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskData {
    pub task_id: u64,
    pub index: usize,
    pub attempt: u32,
    pub partition_id: usize,
    pub launch_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_fetch_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    pub executor_id: String,
    pub host: String,
    pub status: &'static str,
    pub task_locality: &'static str,
    pub speculative: bool,
    pub accumulator_updates: Vec<AccumulableInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_metrics: Option<TaskMetrics>,
    pub executor_logs: BTreeMap<String, String>,
    pub scheduler_delay: i64,
    pub getting_result_time: i64,
}

/// `AccumulableInfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccumulableInfo {
    pub id: u64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    pub value: String,
}

/// `ExecutorStageSummary`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorStageSummary {
    pub task_time: i64,
    pub failed_tasks: i64,
    pub succeeded_tasks: i64,
    pub killed_tasks: i64,
    pub input_bytes: i64,
    pub input_records: i64,
    pub output_bytes: i64,
    pub output_records: i64,
    pub shuffle_read: i64,
    pub shuffle_read_records: i64,
    pub shuffle_write: i64,
    pub shuffle_write_records: i64,
    pub memory_bytes_spilled: i64,
    pub disk_bytes_spilled: i64,
    pub is_blacklisted_for_stage: bool,
    pub peak_memory_metrics: PeakMemoryMetrics,
    pub is_excluded_for_stage: bool,
}

/// `StageData`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageData {
    pub status: &'static str,
    pub stage_id: usize,
    pub attempt_id: u32,
    pub num_tasks: i64,
    pub num_active_tasks: i64,
    pub num_complete_tasks: i64,
    pub num_failed_tasks: i64,
    pub num_killed_tasks: i64,
    pub num_completed_indices: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_task_launched_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub executor_deserialize_time: i64,
    pub executor_deserialize_cpu_time: i64,
    pub executor_run_time: i64,
    pub executor_cpu_time: i64,
    pub result_size: i64,
    pub jvm_gc_time: i64,
    pub result_serialization_time: i64,
    pub memory_bytes_spilled: i64,
    pub disk_bytes_spilled: i64,
    pub peak_execution_memory: i64,
    pub input_bytes: i64,
    pub input_records: i64,
    pub output_bytes: i64,
    pub output_records: i64,
    pub shuffle_remote_blocks_fetched: i64,
    pub shuffle_local_blocks_fetched: i64,
    pub shuffle_fetch_wait_time: i64,
    pub shuffle_remote_bytes_read: i64,
    pub shuffle_remote_bytes_read_to_disk: i64,
    pub shuffle_local_bytes_read: i64,
    pub shuffle_read_bytes: i64,
    pub shuffle_read_records: i64,
    pub shuffle_corrupt_merged_block_chunks: i64,
    pub shuffle_merged_fetch_fallback_count: i64,
    pub shuffle_merged_remote_blocks_fetched: i64,
    pub shuffle_merged_local_blocks_fetched: i64,
    pub shuffle_merged_remote_chunks_fetched: i64,
    pub shuffle_merged_local_chunks_fetched: i64,
    pub shuffle_merged_remote_bytes_read: i64,
    pub shuffle_merged_local_bytes_read: i64,
    pub shuffle_remote_reqs_duration: i64,
    pub shuffle_merged_remote_reqs_duration: i64,
    pub shuffle_write_bytes: i64,
    pub shuffle_write_time: i64,
    pub shuffle_write_records: i64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub details: String,
    pub scheduling_pool: String,
    pub rdd_ids: Vec<usize>,
    pub accumulator_updates: Vec<AccumulableInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<BTreeMap<String, TaskData>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_summary: Option<BTreeMap<String, ExecutorStageSummary>>,
    pub killed_tasks_summary: BTreeMap<String, i64>,
    pub resource_profile_id: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_executor_metrics: Option<PeakMemoryMetrics>,
    pub is_shuffle_push_enabled: bool,
    pub shuffle_mergers_count: i32,
}

/// `MemoryMetrics` of an executor summary.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryMetrics {
    pub used_on_heap_storage_memory: i64,
    pub used_off_heap_storage_memory: i64,
    pub total_on_heap_storage_memory: i64,
    pub total_off_heap_storage_memory: i64,
}

/// `ExecutorSummary`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorSummary {
    pub id: String,
    pub host_port: String,
    pub is_active: bool,
    pub rdd_blocks: i64,
    pub memory_used: i64,
    pub disk_used: i64,
    pub total_cores: i64,
    pub max_tasks: i64,
    pub active_tasks: i64,
    pub failed_tasks: i64,
    pub completed_tasks: i64,
    pub total_tasks: i64,
    pub total_duration: i64,
    #[serde(rename = "totalGCTime")]
    pub total_gc_time: i64,
    pub total_input_bytes: i64,
    pub total_shuffle_read: i64,
    pub total_shuffle_write: i64,
    pub is_blacklisted: bool,
    pub max_memory: i64,
    pub add_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_reason: Option<String>,
    pub executor_logs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_metrics: Option<MemoryMetrics>,
    pub blacklisted_in_stages: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_metrics: Option<PeakMemoryMetrics>,
    pub attributes: BTreeMap<String, String>,
    pub resources: BTreeMap<String, String>,
    pub resource_profile_id: i32,
    pub is_excluded: bool,
    pub excluded_in_stages: Vec<usize>,
}

/// `RDDDataDistribution`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RddDataDistribution {
    pub address: String,
    pub memory_used: i64,
    pub memory_remaining: i64,
    pub disk_used: i64,
    pub on_heap_memory_used: i64,
    pub off_heap_memory_used: i64,
    pub on_heap_memory_remaining: i64,
    pub off_heap_memory_remaining: i64,
}

/// `RDDPartitionInfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RddPartitionInfo {
    pub block_name: String,
    pub storage_level: String,
    pub memory_used: i64,
    pub disk_used: i64,
    pub executors: Vec<String>,
}

/// `RDDStorageInfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RddStorageInfo {
    pub id: usize,
    pub name: String,
    pub num_partitions: i64,
    pub num_cached_partitions: i64,
    pub storage_level: String,
    pub memory_used: i64,
    pub disk_used: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_distribution: Option<Vec<RddDataDistribution>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<RddPartitionInfo>>,
}

/// `RuntimeInfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeInfo {
    pub java_version: String,
    pub java_home: String,
    pub scala_version: String,
}

/// `ApplicationEnvironmentInfo`: each part a list of `[key, value]` pairs.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationEnvironmentInfo {
    pub runtime: RuntimeInfo,
    pub spark_properties: Vec<(String, String)>,
    pub hadoop_properties: Vec<(String, String)>,
    pub system_properties: Vec<(String, String)>,
    pub metrics_properties: Vec<(String, String)>,
    pub classpath_entries: Vec<(String, String)>,
    pub resource_profiles: Vec<serde_json::Value>,
}

/// `InputMetricDistributions`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputMetricDistributions {
    pub bytes_read: Vec<f64>,
    pub records_read: Vec<f64>,
}

/// `OutputMetricDistributions`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputMetricDistributions {
    pub bytes_written: Vec<f64>,
    pub records_written: Vec<f64>,
}

/// `ShufflePushReadMetricDistributions`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShufflePushReadMetricDistributions {
    pub corrupt_merged_block_chunks: Vec<f64>,
    pub merged_fetch_fallback_count: Vec<f64>,
    pub remote_merged_blocks_fetched: Vec<f64>,
    pub local_merged_blocks_fetched: Vec<f64>,
    pub remote_merged_chunks_fetched: Vec<f64>,
    pub local_merged_chunks_fetched: Vec<f64>,
    pub remote_merged_bytes_read: Vec<f64>,
    pub local_merged_bytes_read: Vec<f64>,
    pub remote_merged_reqs_duration: Vec<f64>,
}

/// `ShuffleReadMetricDistributions`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShuffleReadMetricDistributions {
    pub read_bytes: Vec<f64>,
    pub read_records: Vec<f64>,
    pub remote_blocks_fetched: Vec<f64>,
    pub local_blocks_fetched: Vec<f64>,
    pub fetch_wait_time: Vec<f64>,
    pub remote_bytes_read: Vec<f64>,
    pub remote_bytes_read_to_disk: Vec<f64>,
    pub total_blocks_fetched: Vec<f64>,
    pub remote_reqs_duration: Vec<f64>,
    pub shuffle_push_read_metrics_dist: ShufflePushReadMetricDistributions,
}

/// `ShuffleWriteMetricDistributions`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShuffleWriteMetricDistributions {
    pub write_bytes: Vec<f64>,
    pub write_records: Vec<f64>,
    pub write_time: Vec<f64>,
}

/// `TaskMetricDistributions` (`taskSummary`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetricDistributions {
    pub quantiles: Vec<f64>,
    pub duration: Vec<f64>,
    pub executor_deserialize_time: Vec<f64>,
    pub executor_deserialize_cpu_time: Vec<f64>,
    pub executor_run_time: Vec<f64>,
    pub executor_cpu_time: Vec<f64>,
    pub result_size: Vec<f64>,
    pub jvm_gc_time: Vec<f64>,
    pub result_serialization_time: Vec<f64>,
    pub getting_result_time: Vec<f64>,
    pub scheduler_delay: Vec<f64>,
    pub peak_execution_memory: Vec<f64>,
    pub memory_bytes_spilled: Vec<f64>,
    pub disk_bytes_spilled: Vec<f64>,
    pub input_metrics: InputMetricDistributions,
    pub output_metrics: OutputMetricDistributions,
    pub shuffle_read_metrics: ShuffleReadMetricDistributions,
    pub shuffle_write_metrics: ShuffleWriteMetricDistributions,
}

/// `StackTrace`: a thread's frames, one string each (Jackson writes the case class's field).
#[derive(Clone, Debug, Serialize)]
pub struct StackTrace {
    pub elems: Vec<String>,
}

/// `ThreadStackTrace` (the executors' `threads` endpoint). Ember knows no locks, monitors,
/// priorities or daemon flags of native threads: those fields are empty, false or Java's
/// default priority 5.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStackTrace {
    pub thread_id: i64,
    pub thread_name: String,
    pub thread_state: String,
    pub stack_trace: StackTrace,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by_thread_id: Option<i64>,
    pub blocked_by_lock: String,
    pub holding_locks: Vec<String>,
    pub synchronizers: Vec<String>,
    pub monitors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_owner_name: Option<String>,
    pub suspended: bool,
    pub in_native: bool,
    pub is_daemon: bool,
    pub priority: i32,
}
