//! The two events written once per task attempt, `SparkListenerTaskStart` and
//! `SparkListenerTaskEnd`, in Spark's `JsonProtocol` shape.
//!
//! They are nearly every line of a log, so they are written from fragments fixed at compile
//! time: each of Spark's field names is a literal already in JSON form, and only the values are
//! formatted per event. Through serde, escaping those names at every event (a byte-by-byte scan
//! of about 1 KB of keys per task end) was a third of the log thread's time on short tasks, and
//! the all-zero blocks (the 23 executor peak metrics and the 9 push-based shuffle counters) are
//! each one constant here. The shape is checked against Spark's own event logs by the
//! integration tests, as the other events are.

use std::sync::LazyLock;

use super::json::{task_end_reason, EXECUTOR_METRICS};
use crate::listener::events::{
    TaskEnd, TaskEndReason, TaskGettingResult, TaskInfo, TaskStart, TaskType,
};
use crate::status::views::split_blocks;
use crate::task::TaskMetricsSnapshot;
use ember_scheduler::locality::TaskLocality;

/// A value written into a line.
trait JsonValue {
    fn write(&self, out: &mut Vec<u8>);
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl JsonValue for $t {
            fn write(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
            }
        }
    )*};
}
integers!(u32, u64, usize, i64);

impl JsonValue for bool {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

impl JsonValue for &str {
    fn write(&self, out: &mut Vec<u8>) {
        // Executor ids and hosts come from the network and the user: escaped.
        if serde_json::to_writer(&mut *out, self).is_err() {
            // Writing a `&str` into a `Vec` cannot fail; an empty string keeps the line valid.
            out.extend_from_slice(b"\"\"");
        }
    }
}

/// JSON text written as it is: a constant block, or an object written by [`object!`].
struct Raw<'a>(&'a str);

impl JsonValue for Raw<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }
}

/// A nested object, written by its function.
struct Nested<F: Fn(&mut Vec<u8>)>(F);

impl<F: Fn(&mut Vec<u8>)> JsonValue for Nested<F> {
    fn write(&self, out: &mut Vec<u8>) {
        (self.0)(out)
    }
}

/// Writes `{"Key":value,…}`; keys are string literals that need no escaping (Spark's field
/// names), joined with their quotes, colon and comma at compile time.
macro_rules! object {
    ($out:expr, { $first:literal : $v:expr $(, $key:literal : $val:expr)* $(,)? }) => {{
        let out: &mut Vec<u8> = $out;
        out.extend_from_slice(concat!("{\"", $first, "\":").as_bytes());
        JsonValue::write(&$v, out);
        $(
            out.extend_from_slice(concat!(",\"", $key, "\":").as_bytes());
            JsonValue::write(&$val, out);
        )*
        out.push(b'}');
    }};
}

/// Spark always writes the executor's peak metrics at a task's end; Ember measures none of
/// these JVM and process-tree gauges, so they are zero, as Spark writes them when its poller is
/// off.
static ZERO_EXECUTOR_METRICS: LazyLock<String> = LazyLock::new(|| {
    let fields: Vec<String> = EXECUTOR_METRICS.iter().map(|k| format!("\"{k}\":0")).collect();
    format!("{{{}}}", fields.join(","))
});

/// Push-based shuffle's read metrics: Ember has no push-based shuffle, all zero.
const ZERO_PUSH_BASED_SHUFFLE: &str = concat!(
    "{\"Corrupt Merged Block Chunks\":0,\"Merged Fetch Fallback Count\":0,",
    "\"Merged Remote Blocks Fetched\":0,\"Merged Local Blocks Fetched\":0,",
    "\"Merged Remote Chunks Fetched\":0,\"Merged Local Chunks Fetched\":0,",
    "\"Merged Remote Bytes Read\":0,\"Merged Local Bytes Read\":0,",
    "\"Merged Remote Requests Duration\":0}"
);

/// `SparkListenerTaskStart`.
pub(super) fn write_task_start(e: &TaskStart, out: &mut Vec<u8>) {
    object!(out, {
        "Event": Raw("\"SparkListenerTaskStart\""),
        "Stage ID": e.stage_id,
        "Stage Attempt ID": e.stage_attempt_id,
        "Task Info": Nested(|out: &mut Vec<u8>| write_task_info(&e.task_info, out)),
    });
}

/// `SparkListenerTaskGettingResult`.
pub(super) fn write_task_getting_result(e: &TaskGettingResult, out: &mut Vec<u8>) {
    object!(out, {
        "Event": Raw("\"SparkListenerTaskGettingResult\""),
        "Task Info": Nested(|out: &mut Vec<u8>| write_task_info(&e.task_info, out)),
    });
}

/// `SparkListenerTaskEnd`; `Task Metrics` only when the task reported them, as Spark.
pub(super) fn write_task_end(e: &TaskEnd, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let task_type = match e.task_type {
        TaskType::ShuffleMapTask => "\"ShuffleMapTask\"",
        TaskType::ResultTask => "\"ResultTask\"",
    };
    // Every reason but success is rare: those go through serde.
    let mut reason_buf = Vec::new();
    let reason = match e.reason {
        TaskEndReason::Success => "{\"Reason\":\"Success\"}",
        _ => {
            serde_json::to_writer(&mut reason_buf, &task_end_reason(&e.reason))?;
            std::str::from_utf8(&reason_buf).unwrap_or("{}")
        }
    };
    // The line without its closing brace, so `Task Metrics` can follow when there are some.
    object!(out, {
        "Event": Raw("\"SparkListenerTaskEnd\""),
        "Stage ID": e.stage_id,
        "Stage Attempt ID": e.stage_attempt_id,
        "Task Type": Raw(task_type),
        "Task End Reason": Raw(reason),
        "Task Info": Nested(|out: &mut Vec<u8>| write_task_info(&e.task_info, out)),
        "Task Executor Metrics": Raw(&ZERO_EXECUTOR_METRICS),
    });
    if let Some(m) = &e.task_metrics {
        out.pop();
        out.extend_from_slice(b",\"Task Metrics\":");
        write_task_metrics(m, out);
        out.push(b'}');
    }
    Ok(())
}

/// `taskInfoToJson`.
fn write_task_info(t: &TaskInfo, out: &mut Vec<u8>) {
    object!(out, {
        "Task ID": t.task_id,
        "Index": t.index,
        "Attempt": t.attempt,
        "Partition ID": t.partition_id,
        "Launch Time": t.launch_time,
        "Executor ID": &*t.executor_id,
        "Host": &*t.host,
        "Locality": Raw(locality_json(t)),
        "Speculative": t.speculative,
        "Getting Result Time": t.getting_result_time,
        "Finish Time": t.finish_time,
        "Failed": t.failed,
        "Killed": t.killed,
        "Accumulables": Raw("[]"),
    });
}

/// The locality level's name (`locality_name`), quoted.
fn locality_json(t: &TaskInfo) -> &'static str {
    match t.locality {
        TaskLocality::ProcessLocal => "\"PROCESS_LOCAL\"",
        TaskLocality::NodeLocal => "\"NODE_LOCAL\"",
        TaskLocality::NoPref => "\"NO_PREF\"",
        TaskLocality::RackLocal => "\"RACK_LOCAL\"",
        TaskLocality::Any => "\"ANY\"",
    }
}

/// `taskMetricsToJson`: what Ember measures, and zero for the JVM's times and push-based
/// shuffle, which it does not have.
fn write_task_metrics(m: &TaskMetricsSnapshot, out: &mut Vec<u8>) {
    let (local_blocks, remote_blocks) = split_blocks(m);
    object!(out, {
        "Executor Deserialize Time": 0u64,
        "Executor Deserialize CPU Time": 0u64,
        "Executor Run Time": m.executor_run_time_ms,
        "Executor CPU Time": 0u64,
        "Peak Execution Memory": m.peak_execution_memory,
        "Peak On Heap Execution Memory": m.peak_execution_memory,
        "Peak Off Heap Execution Memory": 0u64,
        "Result Size": m.result_size,
        "JVM GC Time": 0u64,
        "Result Serialization Time": 0u64,
        "Memory Bytes Spilled": m.memory_bytes_spilled,
        "Disk Bytes Spilled": m.disk_bytes_spilled,
        "Shuffle Read Metrics": Nested(|out: &mut Vec<u8>| object!(out, {
            "Remote Blocks Fetched": remote_blocks,
            "Local Blocks Fetched": local_blocks,
            "Fetch Wait Time": 0u64,
            "Remote Bytes Read": m.shuffle_remote_bytes_read,
            "Remote Bytes Read To Disk": 0u64,
            "Local Bytes Read": m.shuffle_local_bytes_read,
            "Total Records Read": m.shuffle_records_read,
            "Remote Requests Duration": 0u64,
            "Push Based Shuffle": Raw(ZERO_PUSH_BASED_SHUFFLE),
        })),
        "Shuffle Write Metrics": Nested(|out: &mut Vec<u8>| object!(out, {
            "Shuffle Bytes Written": m.shuffle_bytes_written,
            "Shuffle Write Time": 0u64,
            "Shuffle Records Written": m.shuffle_records_written,
        })),
        "Input Metrics": Nested(|out: &mut Vec<u8>| object!(out, {
            "Bytes Read": m.input_bytes_read,
            "Records Read": m.input_records_read,
        })),
        "Output Metrics": Nested(|out: &mut Vec<u8>| object!(out, {
            "Bytes Written": m.output_bytes_written,
            "Records Written": m.output_records_written,
        })),
        "Updated Blocks": Raw("[]"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::events::ListenerEvent;
    use crate::task::TaskEndReason as Why;

    fn info() -> TaskInfo {
        TaskInfo {
            task_id: 7,
            index: 3,
            attempt: 1,
            partition_id: 4,
            launch_time: 1_700_000_000_123,
            executor_id: "exec \"1\"".into(),
            host: "host\\a".into(),
            locality: TaskLocality::NodeLocal,
            speculative: true,
            getting_result_time: 5,
            finish_time: 1_700_000_000_456,
            failed: false,
            killed: true,
        }
    }

    fn metrics() -> TaskMetricsSnapshot {
        TaskMetricsSnapshot {
            executor_run_time_ms: 1,
            input_records_read: 2,
            input_bytes_read: 3,
            output_records_written: 4,
            output_bytes_written: 5,
            shuffle_records_written: 6,
            shuffle_bytes_written: 7,
            shuffle_records_read: 8,
            shuffle_local_bytes_read: 9,
            shuffle_remote_bytes_read: 10,
            shuffle_blocks_fetched: 11,
            memory_bytes_spilled: 12,
            disk_bytes_spilled: 13,
            result_size: 14,
            peak_execution_memory: 15,
            ..Default::default()
        }
    }

    fn line(e: &ListenerEvent) -> (String, serde_json::Value) {
        let mut out = Vec::new();
        assert!(super::super::json::write_event(e, &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"));
        (text, v)
    }

    fn task_end(reason: TaskEndReason, m: Option<TaskMetricsSnapshot>) -> ListenerEvent {
        ListenerEvent::TaskEnd(TaskEnd {
            stage_id: 2,
            stage_attempt_id: 1,
            task_type: TaskType::ResultTask,
            reason,
            task_info: info(),
            task_metrics: m,
        })
    }

    #[test]
    fn a_task_start_is_sparks_json_with_its_strings_escaped() {
        let (text, v) = line(&ListenerEvent::TaskStart(TaskStart {
            stage_id: 2,
            stage_attempt_id: 1,
            task_info: info(),
        }));
        assert!(text.starts_with(r#"{"Event":"SparkListenerTaskStart","Stage ID":2,"#));
        let t = &v["Task Info"];
        assert_eq!(t["Task ID"], 7);
        assert_eq!(t["Executor ID"], "exec \"1\"");
        assert_eq!(t["Host"], "host\\a");
        assert_eq!(t["Locality"], "NODE_LOCAL");
        assert_eq!(t["Speculative"], true);
        assert_eq!(t["Killed"], true);
        assert_eq!(t["Finish Time"], 1_700_000_000_456u64);
        assert_eq!(t["Accumulables"], serde_json::json!([]));
    }

    #[test]
    fn a_task_end_carries_its_metrics_only_when_it_reported_some() {
        let (text, v) = line(&task_end(TaskEndReason::Success, Some(metrics())));
        assert!(text.starts_with(r#"{"Event":"SparkListenerTaskEnd","#));
        assert_eq!(v["Task Type"], "ResultTask");
        assert_eq!(v["Task End Reason"], serde_json::json!({"Reason": "Success"}));
        let executor = v["Task Executor Metrics"].as_object().unwrap();
        assert_eq!(executor.len(), EXECUTOR_METRICS.len());
        assert!(executor.values().all(|x| x == 0));
        let m = &v["Task Metrics"];
        assert_eq!(m["Executor Run Time"], 1);
        assert_eq!(m["Peak On Heap Execution Memory"], 15);
        assert_eq!(m["Result Size"], 14);
        let read = &m["Shuffle Read Metrics"];
        assert_eq!(read["Total Records Read"], 8);
        assert_eq!(read["Local Bytes Read"], 9);
        assert_eq!(read["Remote Bytes Read"], 10);
        let blocks = read["Local Blocks Fetched"].as_i64().unwrap()
            + read["Remote Blocks Fetched"].as_i64().unwrap();
        assert_eq!(blocks, 11);
        assert_eq!(read["Push Based Shuffle"].as_object().unwrap().len(), 9);
        assert_eq!(m["Shuffle Write Metrics"]["Shuffle Records Written"], 6);
        assert_eq!(m["Input Metrics"]["Bytes Read"], 3);
        assert_eq!(m["Output Metrics"]["Records Written"], 4);

        let (_, v) = line(&task_end(TaskEndReason::Resubmitted, None));
        assert_eq!(v["Task End Reason"], serde_json::json!({"Reason": "Resubmitted"}));
        assert!(v.get("Task Metrics").is_none(), "{v}");
    }

    #[test]
    fn a_failed_task_end_names_its_reason() {
        let why = Why::ExceptionFailure {
            description: "boom\nat main.rs:1".into(),
        };
        let (_, v) = line(&task_end(TaskEndReason::Failed(why), None));
        let r = &v["Task End Reason"];
        assert_eq!(r["Reason"], "ExceptionFailure");
        assert_eq!(r["Description"], "boom\nat main.rs:1");
    }
}
