//! Spark's `JsonProtocol`: each event as one JSON object with Spark's field names ("Stage
//! ID", "Task Info", …), as Spark's History Server reads them. Fields Ember does not measure
//! are written as Spark writes them when empty (0, `[]`, `{}`), so every field the History
//! Server requires is there with the type it expects.

use serde_json::{json, Map, Value};

use crate::listener::events::*;
use crate::status::views::{split_blocks, EMBER_VERSION};
use crate::storage::StorageLevel;
use crate::task::{BlockManagerId, TaskMetricsSnapshot};

/// Spark's `ExecutorMetricType.metricToOffset` names, in its order.
const EXECUTOR_METRICS: [&str; 23] = [
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

fn properties(p: &Properties) -> Value {
    Value::Object(
        p.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn storage_level(l: &StorageLevel) -> Value {
    json!({
        "Use Disk": l.use_disk,
        "Use Memory": l.use_memory,
        "Use Off Heap": false,
        "Deserialized": l.deserialized,
        "Replication": l.replication,
    })
}

fn block_manager_id(b: &BlockManagerId) -> Value {
    // Spark's reader asserts a positive port (`BlockManagerId`), and the History Server fails
    // the whole application on a 0. Local mode's block manager lives in the driver and listens
    // on no port at all; 1 stands for "in process" where Spark would show its listening port.
    json!({"Executor ID": b.executor_id, "Host": b.host, "Port": b.port.max(1)})
}

fn rdd_info(r: &RddInfo) -> Value {
    json!({
        "RDD ID": r.id,
        "Name": r.name,
        "Callsite": r.callsite,
        "Parent IDs": r.parent_ids,
        "Storage Level": storage_level(&r.storage_level),
        "Barrier": false,
        "DeterministicLevel": "DETERMINATE",
        "Number of Partitions": r.num_partitions,
        "Number of Cached Partitions": 0,
        "Memory Size": 0,
        "Disk Size": 0,
    })
}

fn stage_info(s: &StageInfo) -> Value {
    let mut m = Map::new();
    m.insert("Stage ID".into(), json!(s.stage_id));
    m.insert("Stage Attempt ID".into(), json!(s.attempt_id));
    m.insert("Stage Name".into(), json!(s.name));
    m.insert("Number of Tasks".into(), json!(s.num_tasks));
    m.insert(
        "RDD Info".into(),
        Value::Array(s.rdd_infos.iter().map(rdd_info).collect()),
    );
    m.insert("Parent IDs".into(), json!(s.parent_ids));
    m.insert("Details".into(), json!(s.details));
    if let Some(t) = s.submission_time {
        m.insert("Submission Time".into(), json!(t));
    }
    if let Some(t) = s.completion_time {
        m.insert("Completion Time".into(), json!(t));
    }
    if let Some(r) = &s.failure_reason {
        m.insert("Failure Reason".into(), json!(r));
    }
    m.insert("Accumulables".into(), json!([]));
    m.insert("Resource Profile Id".into(), json!(0));
    m.insert("Shuffle Push Enabled".into(), json!(false));
    m.insert("Shuffle Push Mergers Count".into(), json!(0));
    Value::Object(m)
}

fn task_info(t: &TaskInfo) -> Value {
    json!({
        "Task ID": t.task_id,
        "Index": t.index,
        "Attempt": t.attempt,
        "Partition ID": t.partition_id,
        "Launch Time": t.launch_time,
        "Executor ID": t.executor_id,
        "Host": t.host,
        "Locality": locality_name(t.locality),
        "Speculative": t.speculative,
        "Getting Result Time": t.getting_result_time,
        "Finish Time": t.finish_time,
        "Failed": t.failed,
        "Killed": t.killed,
        "Accumulables": [],
    })
}

fn task_end_reason(r: &TaskEndReason) -> Value {
    use crate::task::TaskEndReason as R;
    match r {
        TaskEndReason::Success => json!({"Reason": "Success"}),
        TaskEndReason::Resubmitted => json!({"Reason": "Resubmitted"}),
        TaskEndReason::Failed(R::ExceptionFailure { description }) => json!({
            "Reason": "ExceptionFailure",
            "Class Name": "ember.TaskFailure",
            "Description": description,
            "Stack Trace": [],
            "Full Stack Trace": description,
            "Accumulator Updates": [],
        }),
        TaskEndReason::Failed(R::FetchFailed {
            location,
            shuffle_id,
            map_index,
            reduce_id,
            message,
        }) => {
            // Spark writes a missing address as null (`blockManagerIdToJson` of null).
            let address = location.as_ref().map_or(Value::Null, block_manager_id);
            let map = map_index.map_or(-1, |m| m as i64);
            json!({
                "Reason": "FetchFailed",
                "Block Manager Address": address,
                "Shuffle ID": shuffle_id,
                "Map ID": map,
                "Map Index": map,
                "Reduce ID": reduce_id,
                "Message": message,
            })
        }
        TaskEndReason::Failed(R::TaskKilled { reason }) => {
            json!({"Reason": "TaskKilled", "Kill Reason": reason, "Accumulator Updates": []})
        }
        TaskEndReason::Failed(R::ExecutorLostFailure {
            executor_id,
            exit_caused_by_app,
            reason,
        }) => json!({
            "Reason": "ExecutorLostFailure",
            "Executor ID": executor_id,
            "Exit Caused By App": exit_caused_by_app,
            "Loss Reason": reason,
        }),
        TaskEndReason::Failed(R::TaskResultLost) => json!({"Reason": "TaskResultLost"}),
    }
}

fn task_metrics(m: &TaskMetricsSnapshot) -> Value {
    let (local_blocks, remote_blocks) = split_blocks(m);
    json!({
        "Executor Deserialize Time": 0,
        "Executor Deserialize CPU Time": 0,
        "Executor Run Time": m.executor_run_time_ms,
        "Executor CPU Time": 0,
        "Peak Execution Memory": m.peak_execution_memory,
        "Peak On Heap Execution Memory": m.peak_execution_memory,
        "Peak Off Heap Execution Memory": 0,
        "Result Size": m.result_size,
        "JVM GC Time": 0,
        "Result Serialization Time": 0,
        "Memory Bytes Spilled": m.memory_bytes_spilled,
        "Disk Bytes Spilled": m.disk_bytes_spilled,
        "Shuffle Read Metrics": {
            "Remote Blocks Fetched": remote_blocks,
            "Local Blocks Fetched": local_blocks,
            "Fetch Wait Time": 0,
            "Remote Bytes Read": m.shuffle_remote_bytes_read,
            "Remote Bytes Read To Disk": 0,
            "Local Bytes Read": m.shuffle_local_bytes_read,
            "Total Records Read": m.shuffle_records_read,
            "Remote Requests Duration": 0,
            "Push Based Shuffle": {
                "Corrupt Merged Block Chunks": 0,
                "Merged Fetch Fallback Count": 0,
                "Merged Remote Blocks Fetched": 0,
                "Merged Local Blocks Fetched": 0,
                "Merged Remote Chunks Fetched": 0,
                "Merged Local Chunks Fetched": 0,
                "Merged Remote Bytes Read": 0,
                "Merged Local Bytes Read": 0,
                "Merged Remote Requests Duration": 0,
            },
        },
        "Shuffle Write Metrics": {
            "Shuffle Bytes Written": m.shuffle_bytes_written,
            "Shuffle Write Time": 0,
            "Shuffle Records Written": m.shuffle_records_written,
        },
        "Input Metrics": {"Bytes Read": m.input_bytes_read, "Records Read": m.input_records_read},
        "Output Metrics": {
            "Bytes Written": m.output_bytes_written,
            "Records Written": m.output_records_written,
        },
        "Updated Blocks": [],
    })
}

fn block_id_name(b: &crate::storage::BlockId) -> String {
    match b {
        crate::storage::BlockId::Rdd { rdd_id, partition } => format!("rdd_{rdd_id}_{partition}"),
    }
}

/// The event as Spark's `JsonProtocol.sparkEventToJson` writes it; `None` for events Spark
/// never logs (executor heartbeats).
pub fn event_to_json(event: &ListenerEvent) -> Option<Value> {
    let name = event.spark_name();
    let v = match event {
        ListenerEvent::StageSubmitted(e) => {
            json!({
                "Event": name,
                "Stage Info": stage_info(&e.stage_info),
                "Properties": properties(&e.properties),
            })
        }
        ListenerEvent::StageCompleted(e) => {
            json!({"Event": name, "Stage Info": stage_info(&e.stage_info)})
        }
        ListenerEvent::TaskStart(e) => {
            json!({
                "Event": name,
                "Stage ID": e.stage_id,
                "Stage Attempt ID": e.stage_attempt_id,
                "Task Info": task_info(&e.task_info),
            })
        }
        ListenerEvent::TaskEnd(e) => {
            let mut m = Map::new();
            m.insert("Event".into(), json!(name));
            m.insert("Stage ID".into(), json!(e.stage_id));
            m.insert("Stage Attempt ID".into(), json!(e.stage_attempt_id));
            let task_type = match e.task_type {
                TaskType::ShuffleMapTask => "ShuffleMapTask",
                TaskType::ResultTask => "ResultTask",
            };
            m.insert("Task Type".into(), json!(task_type));
            m.insert("Task End Reason".into(), task_end_reason(&e.reason));
            m.insert("Task Info".into(), task_info(&e.task_info));
            // Spark always writes the executor's peak metrics at the task's end; Ember measures
            // none of these JVM and process-tree gauges, so they are zero, as Spark writes them
            // when its poller is off.
            m.insert(
                "Task Executor Metrics".into(),
                Value::Object(
                    EXECUTOR_METRICS
                        .iter()
                        .map(|k| (k.to_string(), json!(0)))
                        .collect(),
                ),
            );
            if let Some(metrics) = &e.task_metrics {
                m.insert("Task Metrics".into(), task_metrics(metrics));
            }
            Value::Object(m)
        }
        ListenerEvent::JobStart(e) => json!({
            "Event": name,
            "Job ID": e.job_id,
            "Submission Time": e.time,
            "Stage Infos": e.stage_infos.iter().map(stage_info).collect::<Vec<_>>(),
            "Stage IDs": e.stage_ids(),
            "Properties": properties(&e.properties),
        }),
        ListenerEvent::JobEnd(e) => {
            let result = match &e.job_result {
                JobResult::Succeeded => json!({"Result": "JobSucceeded"}),
                JobResult::Failed(msg) => {
                    json!({
                        "Result": "JobFailed",
                        "Exception": {"Message": msg, "Stack Trace": []},
                    })
                }
            };
            json!({
                "Event": name,
                "Job ID": e.job_id,
                "Completion Time": e.time,
                "Job Result": result,
            })
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
        ListenerEvent::ExecutorMetricsUpdate(_) => return None,
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
    Some(v)
}
