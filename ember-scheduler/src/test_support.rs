//! Helpers shared by the scheduler core's unit tests.

use ember_common::{DirectTaskResult, TaskLocation, TaskMetricsSnapshot, TaskValue};

use crate::task::TaskBody;
use crate::task_set::{TaskSet, TaskSpec};

/// The body of the tests' task sets: never run, the tests decide each attempt's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum TestBody {
    /// A result task.
    Result,
    /// A shuffle map task.
    ShuffleMap,
}

/// A task set of `n` result tasks without preferences.
pub fn task_set(stage_id: usize, attempt: u32, job: usize, n: usize) -> TaskSet {
    task_set_with_prefs(stage_id, attempt, job, vec![Vec::new(); n])
}

/// A task set of result tasks, one per preference list.
pub fn task_set_with_prefs(
    stage_id: usize,
    attempt: u32,
    job: usize,
    prefs: Vec<Vec<TaskLocation>>,
) -> TaskSet {
    TaskSet {
        stage_id,
        stage_attempt_id: attempt,
        priority: job,
        pool_name: String::new(),
        tasks: prefs
            .into_iter()
            .enumerate()
            .map(|(partition, preferred_locations)| TaskSpec {
                partition,
                preferred_locations,
            })
            .collect(),
        shuffle_id: None,
        body: TaskBody::new(TestBody::Result),
        barrier: false,
    }
}

/// The same task set as shuffle map tasks (of shuffle 0).
pub fn shuffle_map(mut ts: TaskSet) -> TaskSet {
    ts.shuffle_id = Some(0);
    ts.body = TaskBody::new(TestBody::ShuffleMap);
    ts
}

/// A preference for an executor's memory.
pub fn on_executor(host: &str, exec: &str) -> TaskLocation {
    TaskLocation::Executor {
        host: host.into(),
        executor_id: exec.into(),
    }
}

/// A successful result with no value.
pub fn ok_result() -> DirectTaskResult {
    DirectTaskResult {
        value: TaskValue::Value(Box::new(())),
        metrics: TaskMetricsSnapshot::default(),
        accum_updates: Vec::new(),
    }
}
