//! Spark's `JsonProtocol`: each event as one JSON object with Spark's field names ("Stage
//! ID", "Task Info", …), as Spark's History Server reads them. Fields Ember does not measure
//! are written as Spark writes them when empty (0, `[]`, `{}`), so every field the History
//! Server requires is there with the type it expects.
//!
//! The per-task events are written by `task_json` from compile-time fragments. The events that
//! come once per stage or job (stage submission and completion, job start and end) are written
//! from borrowed structs with Spark's field names in Spark's order, straight into the line:
//! building a `serde_json::Value` for each (a map with its keys copied and sorted) cost the
//! listener thread most of its time on short tasks. The rare events go through `Value`.

use serde::ser::Serializer;
use serde::Serialize;
use serde_json::{json, Value};

use crate::listener::events::*;
use crate::status::views::EMBER_VERSION;
use crate::storage::StorageLevel;
use crate::task::BlockManagerId;
use ember_common::{ShuffleId, StageId};

/// Spark's `ExecutorMetricType.metricToOffset` names, in its order.
pub(super) const EXECUTOR_METRICS: [&str; 23] = [
    "JVMHeapMemory",
    "JVMOffHeapMemory",
    "OnHeapExecutionMemory",
    "OffHeapExecutionMemory",
    "OnHeapStorageMemory",
    "OffHeapStorageMemory",
    "OnHeapUnifiedMemory",
    "OffHeapUnifiedMemory",
    "DirectPoolMemory",
    "MappedPoolMemory",
    "ProcessTreeJVMVMemory",
    "ProcessTreeJVMRSSMemory",
    "ProcessTreePythonVMemory",
    "ProcessTreePythonRSSMemory",
    "ProcessTreeOtherVMemory",
    "ProcessTreeOtherRSSMemory",
    "MinorGCCount",
    "MinorGCTime",
    "MajorGCCount",
    "MajorGCTime",
    "TotalGCTime",
    "ConcurrentGCCount",
    "ConcurrentGCTime",
];

/// `SparkListenerLogStart`, the first line of a log.
pub fn log_start() -> Value {
    json!({"Event": "SparkListenerLogStart", "Spark Version": EMBER_VERSION})
}

fn pairs(p: &[(String, String)]) -> Value {
    Value::Object(
        p.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// `storageLevelToJson`.
#[derive(Serialize)]
struct StorageLevelJson {
    #[serde(rename = "Use Disk")]
    use_disk: bool,
    #[serde(rename = "Use Memory")]
    use_memory: bool,
    #[serde(rename = "Use Off Heap")]
    use_off_heap: bool,
    #[serde(rename = "Deserialized")]
    deserialized: bool,
    #[serde(rename = "Replication")]
    replication: u8,
}

fn storage_level(l: &StorageLevel) -> StorageLevelJson {
    StorageLevelJson {
        use_disk: l.use_disk,
        use_memory: l.use_memory,
        use_off_heap: false,
        deserialized: l.deserialized,
        replication: l.replication,
    }
}

/// `blockManagerIdToJson`.
#[derive(Serialize)]
pub(super) struct BlockManagerIdJson<'a> {
    #[serde(rename = "Executor ID")]
    executor_id: &'a str,
    #[serde(rename = "Host")]
    host: &'a str,
    #[serde(rename = "Port")]
    port: u16,
}

fn block_manager_id(b: &BlockManagerId) -> BlockManagerIdJson<'_> {
    // Spark's reader asserts a positive port (`BlockManagerId`), and the History Server fails
    // the whole application on a 0. Local mode's block manager lives in the driver and listens
    // on no port at all; 1 stands for "in process" where Spark would show its listening port.
    BlockManagerIdJson {
        executor_id: &b.executor_id,
        host: &b.host,
        port: b.port.max(1),
    }
}

/// A job's or stage's properties (Spark's `Properties`), written without copying them, with
/// Ember's local properties under Spark's names (`ember.job.description` as
/// `spark.job.description`, the pool, the job group, …): Spark's History Server reads those
/// names to show a job's description and a stage's pool. Other keys are the user's, kept.
struct StringMap<'a>(&'a Properties);

impl Serialize for StringMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (SparkKey(k), v)))
    }
}

/// A property's key with `ember.` written as `spark.`.
struct SparkKey<'a>(&'a str);

impl Serialize for SparkKey<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.strip_prefix("ember.") {
            Some(rest) => s.collect_str(&format_args!("spark.{rest}")),
            None => s.serialize_str(self.0),
        }
    }
}

/// Spark's always-empty `Accumulables` and `Stack Trace` arrays.
type Empty = [(); 0];

/// `rddInfoToJson`.
#[derive(Serialize)]
struct RddInfoJson<'a> {
    #[serde(rename = "RDD ID")]
    id: usize,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Callsite")]
    callsite: &'a str,
    #[serde(rename = "Parent IDs")]
    parent_ids: &'a [usize],
    #[serde(rename = "Storage Level")]
    storage_level: StorageLevelJson,
    #[serde(rename = "Barrier")]
    barrier: bool,
    #[serde(rename = "DeterministicLevel")]
    deterministic_level: &'static str,
    #[serde(rename = "Number of Partitions")]
    num_partitions: usize,
    #[serde(rename = "Number of Cached Partitions")]
    num_cached_partitions: u64,
    #[serde(rename = "Memory Size")]
    memory_size: u64,
    #[serde(rename = "Disk Size")]
    disk_size: u64,
}

/// `stageInfoToJson`; the times and the failure reason only when known, as Spark.
#[derive(Serialize)]
struct StageInfoJson<'a> {
    #[serde(rename = "Stage ID")]
    stage_id: StageId,
    #[serde(rename = "Stage Attempt ID")]
    attempt_id: u32,
    #[serde(rename = "Stage Name")]
    name: &'a str,
    #[serde(rename = "Number of Tasks")]
    num_tasks: usize,
    #[serde(rename = "RDD Info")]
    rdd_infos: Vec<RddInfoJson<'a>>,
    #[serde(rename = "Parent IDs")]
    parent_ids: &'a [StageId],
    #[serde(rename = "Details")]
    details: &'a str,
    #[serde(rename = "Submission Time", skip_serializing_if = "Option::is_none")]
    submission_time: Option<u64>,
    #[serde(rename = "Completion Time", skip_serializing_if = "Option::is_none")]
    completion_time: Option<u64>,
    #[serde(rename = "Failure Reason", skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    #[serde(rename = "Accumulables")]
    accumulables: Empty,
    #[serde(rename = "Resource Profile Id")]
    resource_profile_id: u32,
    #[serde(rename = "Shuffle Push Enabled")]
    shuffle_push_enabled: bool,
    #[serde(rename = "Shuffle Push Mergers Count")]
    shuffle_push_mergers_count: u32,
}

fn stage_info(s: &StageInfo) -> StageInfoJson<'_> {
    StageInfoJson {
        stage_id: s.stage_id,
        attempt_id: s.attempt_id,
        name: &s.name,
        num_tasks: s.num_tasks,
        rdd_infos: s
            .rdd_infos
            .iter()
            .map(|r| RddInfoJson {
                id: r.id,
                name: &r.name,
                callsite: &r.callsite,
                parent_ids: &r.parent_ids,
                storage_level: storage_level(&r.storage_level),
                barrier: false,
                deterministic_level: "DETERMINATE",
                num_partitions: r.num_partitions,
                num_cached_partitions: 0,
                memory_size: 0,
                disk_size: 0,
            })
            .collect(),
        parent_ids: &s.parent_ids,
        details: &s.details,
        submission_time: s.submission_time,
        completion_time: s.completion_time,
        failure_reason: s.failure_reason.as_deref(),
        accumulables: [],
        resource_profile_id: 0,
        shuffle_push_enabled: false,
        shuffle_push_mergers_count: 0,
    }
}

/// `taskEndReasonToJson`: the reason's name under `"Reason"`, then its fields.
#[derive(Serialize)]
#[serde(tag = "Reason")]
pub(super) enum TaskEndReasonJson<'a> {
    Success,
    Resubmitted,
    ExceptionFailure {
        #[serde(rename = "Class Name")]
        class_name: &'static str,
        #[serde(rename = "Description")]
        description: &'a str,
        #[serde(rename = "Stack Trace")]
        stack_trace: Empty,
        #[serde(rename = "Full Stack Trace")]
        full_stack_trace: &'a str,
        #[serde(rename = "Accumulator Updates")]
        accumulator_updates: Empty,
    },
    FetchFailed {
        /// Spark writes a missing address as null (`blockManagerIdToJson` of null).
        #[serde(rename = "Block Manager Address")]
        address: Option<BlockManagerIdJson<'a>>,
        #[serde(rename = "Shuffle ID")]
        shuffle_id: ShuffleId,
        #[serde(rename = "Map ID")]
        map_id: i64,
        #[serde(rename = "Map Index")]
        map_index: i64,
        #[serde(rename = "Reduce ID")]
        reduce_id: usize,
        #[serde(rename = "Message")]
        message: &'a str,
    },
    TaskKilled {
        #[serde(rename = "Kill Reason")]
        reason: &'a str,
        #[serde(rename = "Accumulator Updates")]
        accumulator_updates: Empty,
    },
    ExecutorLostFailure {
        #[serde(rename = "Executor ID")]
        executor_id: &'a str,
        #[serde(rename = "Exit Caused By App")]
        exit_caused_by_app: bool,
        #[serde(rename = "Loss Reason")]
        reason: &'a str,
    },
    TaskResultLost,
}

pub(super) fn task_end_reason(r: &TaskEndReason) -> TaskEndReasonJson<'_> {
    use crate::task::TaskEndReason as R;
    match r {
        TaskEndReason::Success => TaskEndReasonJson::Success,
        TaskEndReason::Resubmitted => TaskEndReasonJson::Resubmitted,
        TaskEndReason::Failed(R::ExceptionFailure { description }) => {
            TaskEndReasonJson::ExceptionFailure {
                class_name: "ember.TaskFailure",
                description,
                stack_trace: [],
                full_stack_trace: description,
                accumulator_updates: [],
            }
        }
        TaskEndReason::Failed(R::FetchFailed {
            location,
            shuffle_id,
            map_index,
            reduce_id,
            message,
        }) => {
            let map = map_index.map_or(-1, |m| m as i64);
            TaskEndReasonJson::FetchFailed {
                address: location.as_ref().map(block_manager_id),
                shuffle_id: *shuffle_id,
                map_id: map,
                map_index: map,
                reduce_id: *reduce_id,
                message,
            }
        }
        TaskEndReason::Failed(R::TaskKilled { reason }) => TaskEndReasonJson::TaskKilled {
            reason,
            accumulator_updates: [],
        },
        TaskEndReason::Failed(R::ExecutorLostFailure {
            executor_id,
            exit_caused_by_app,
            reason,
        }) => TaskEndReasonJson::ExecutorLostFailure {
            executor_id,
            exit_caused_by_app: *exit_caused_by_app,
            reason,
        },
        TaskEndReason::Failed(R::TaskResultLost) => TaskEndReasonJson::TaskResultLost,
    }
}

/// `SparkListenerStageSubmitted` and `…StageCompleted` (which has no properties).
#[derive(Serialize)]
struct StageEventJson<'a> {
    #[serde(rename = "Event")]
    event: &'static str,
    #[serde(rename = "Stage Info")]
    stage_info: StageInfoJson<'a>,
    #[serde(rename = "Properties", skip_serializing_if = "Option::is_none")]
    properties: Option<StringMap<'a>>,
}

#[derive(Serialize)]
struct JobStartJson<'a> {
    #[serde(rename = "Event")]
    event: &'static str,
    #[serde(rename = "Job ID")]
    job_id: usize,
    #[serde(rename = "Submission Time")]
    time: u64,
    #[serde(rename = "Stage Infos")]
    stage_infos: Vec<StageInfoJson<'a>>,
    #[serde(rename = "Stage IDs")]
    stage_ids: Vec<StageId>,
    #[serde(rename = "Properties")]
    properties: StringMap<'a>,
}

#[derive(Serialize)]
struct JobEndJson<'a> {
    #[serde(rename = "Event")]
    event: &'static str,
    #[serde(rename = "Job ID")]
    job_id: usize,
    #[serde(rename = "Completion Time")]
    time: u64,
    #[serde(rename = "Job Result")]
    result: JobResultJson<'a>,
}

/// `jobResultToJson`.
#[derive(Serialize)]
#[serde(tag = "Result")]
enum JobResultJson<'a> {
    JobSucceeded,
    JobFailed {
        #[serde(rename = "Exception")]
        exception: ExceptionJson<'a>,
    },
}

#[derive(Serialize)]
struct ExceptionJson<'a> {
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "Stack Trace")]
    stack_trace: Empty,
}

fn block_id_name(b: &crate::storage::BlockId) -> String {
    match b {
        crate::storage::BlockId::Rdd { rdd_id, partition } => format!("rdd_{rdd_id}_{partition}"),
    }
}

/// Appends the event as Spark's `JsonProtocol.sparkEventToJson` writes it (one line, without
/// its end); false, and nothing written, for events Spark never logs (executor heartbeats).
pub fn write_event(event: &ListenerEvent, out: &mut Vec<u8>) -> serde_json::Result<bool> {
    let name = event.spark_name();
    let v = match event {
        ListenerEvent::TaskStart(e) => {
            super::task_json::write_task_start(e, out);
            return Ok(true);
        }
        ListenerEvent::TaskGettingResult(e) => {
            super::task_json::write_task_getting_result(e, out);
            return Ok(true);
        }
        ListenerEvent::TaskEnd(e) => {
            super::task_json::write_task_end(e, out)?;
            return Ok(true);
        }
        ListenerEvent::StageSubmitted(e) => {
            return write(
                out,
                &StageEventJson {
                    event: name,
                    stage_info: stage_info(&e.stage_info),
                    properties: Some(StringMap(&e.properties)),
                },
            )
        }
        ListenerEvent::StageCompleted(e) => {
            return write(
                out,
                &StageEventJson {
                    event: name,
                    stage_info: stage_info(&e.stage_info),
                    properties: None,
                },
            )
        }
        ListenerEvent::JobStart(e) => {
            return write(
                out,
                &JobStartJson {
                    event: name,
                    job_id: e.job_id,
                    time: e.time,
                    stage_infos: e.stage_infos.iter().map(stage_info).collect(),
                    stage_ids: e.stage_ids(),
                    properties: StringMap(&e.properties),
                },
            )
        }
        ListenerEvent::JobEnd(e) => {
            let result = match &e.job_result {
                JobResult::Succeeded => JobResultJson::JobSucceeded,
                JobResult::Failed(message) => JobResultJson::JobFailed {
                    exception: ExceptionJson {
                        message,
                        stack_trace: [],
                    },
                },
            };
            return write(
                out,
                &JobEndJson {
                    event: name,
                    job_id: e.job_id,
                    time: e.time,
                    result,
                },
            );
        }
        ListenerEvent::EnvironmentUpdate(e) => {
            let d = &e.environment_details;
            json!({
                "Event": name,
                "JVM Information": pairs(&d.runtime),
                "Spark Properties": pairs(&d.spark_properties),
                "Hadoop Properties": pairs(&d.hadoop_properties),
                "System Properties": pairs(&d.system_properties),
                "Metrics Properties": pairs(&d.metrics_properties),
                "Classpath Entries": pairs(&d.classpath_entries),
            })
        }
        ListenerEvent::BlockManagerAdded(e) => json!({
            "Event": name,
            "Block Manager ID": block_manager_id(&e.block_manager_id),
            "Maximum Memory": e.max_mem,
            "Timestamp": e.time,
            "Maximum Onheap Memory": e.max_mem,
            "Maximum Offheap Memory": 0,
        }),
        ListenerEvent::BlockManagerRemoved(e) => {
            json!({
                "Event": name,
                "Block Manager ID": block_manager_id(&e.block_manager_id),
                "Timestamp": e.time,
            })
        }
        ListenerEvent::UnpersistRdd(e) => json!({"Event": name, "RDD ID": e.rdd_id}),
        ListenerEvent::ApplicationStart(e) => {
            json!({
                "Event": name,
                "App Name": e.app_name,
                "App ID": e.app_id,
                "Timestamp": e.time,
                "User": e.spark_user,
            })
        }
        ListenerEvent::ApplicationEnd(e) => {
            json!({"Event": name, "Timestamp": e.time, "ExitCode": 0})
        }
        ListenerEvent::ExecutorAdded(e) => json!({
            "Event": name,
            "Timestamp": e.time,
            "Executor ID": e.executor_id,
            "Executor Info": {
                "Host": e.executor_info.host,
                "Total Cores": e.executor_info.total_cores,
                "Log Urls": e.executor_info.log_urls,
                "Attributes": {},
                "Resources": {},
                "Resource Profile Id": 0,
                "Registration Time": e.time,
            },
        }),
        ListenerEvent::ExecutorRemoved(e) => {
            json!({
                "Event": name,
                "Timestamp": e.time,
                "Executor ID": e.executor_id,
                "Removed Reason": e.reason,
            })
        }
        // Spark writes the events it has no JsonProtocol case for with Jackson: the class name
        // and the case class's own field names.
        ListenerEvent::ExecutorExcluded(e) => json!({
            "Event": "org.apache.spark.scheduler.SparkListenerExecutorExcluded",
            "time": e.time,
            "executorId": e.executor_id,
            "taskFailures": 0,
        }),
        ListenerEvent::ExecutorUnexcluded(e) => {
            json!({
                "Event": "org.apache.spark.scheduler.SparkListenerExecutorUnexcluded",
                "time": e.time,
                "executorId": e.executor_id,
            })
        }
        ListenerEvent::ExecutorMetricsUpdate(_) => return Ok(false),
        ListenerEvent::BlockUpdated(e) => {
            let b = &e.block_updated_info;
            json!({
                "Event": name,
                "Block Updated Info": {
                    "Block Manager ID": block_manager_id(&b.block_manager_id),
                    "Block ID": block_id_name(&b.block_id),
                    "Storage Level": storage_level(&b.storage_level),
                    "Memory Size": b.mem_size,
                    "Disk Size": b.disk_size,
                },
            })
        }
    };
    write_event_first(out, &v)?;
    Ok(true)
}

fn write(out: &mut Vec<u8>, event: &impl Serialize) -> serde_json::Result<bool> {
    serde_json::to_writer(out, event)?;
    Ok(true)
}

/// Writes an event built as a `Value` with `"Event"` as its first key, as Spark writes them:
/// the History Server lists an application by scanning lines for the prefix
/// `{"Event":"SparkListenerApplicationStart"` (`ReplayListenerBus`'s event filters), so a log
/// with its keys in another order is parsed and then not listed at all. (The structs above put
/// it first by declaration.)
pub fn write_event_first(line: &mut Vec<u8>, v: &Value) -> serde_json::Result<()> {
    let Value::Object(map) = v else {
        return serde_json::to_writer(line, v);
    };
    line.push(b'{');
    let first = map.get_key_value("Event");
    let rest = map.iter().filter(|(k, _)| k.as_str() != "Event");
    for (i, (k, value)) in first.into_iter().chain(rest).enumerate() {
        if i > 0 {
            line.push(b',');
        }
        serde_json::to_writer(&mut *line, k)?;
        line.push(b':');
        serde_json::to_writer(&mut *line, value)?;
    }
    line.push(b'}');
    Ok(())
}

/// The event's line parsed back (`None` for events Spark never logs), for tests.
#[cfg(test)]
pub fn event_to_json(event: &ListenerEvent) -> Option<Value> {
    let mut line = Vec::new();
    write_event(event, &mut line)
        .expect("events serialize")
        .then(|| serde_json::from_slice(&line).expect("a written event parses"))
}
