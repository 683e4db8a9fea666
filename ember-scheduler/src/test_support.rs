//! Helpers shared by the scheduler core's unit tests.

use std::sync::Arc;

use ember_common::{
    DirectTaskResult, ShuffleId, StorageLevel, TaskLocation, TaskMetricsSnapshot, TaskValue,
};

use crate::rdd::{Dependency, RddBase, ShuffleDependencyBase};
use crate::task::TaskBody;
use crate::task_set::{TaskSet, TaskSpec};

/// The body of the tests' tasks: never run, the tests decide each attempt's outcome from it.
#[derive(Debug, PartialEq, Eq)]
pub enum TestBody {
    /// A result task.
    Result,
    /// A map task writing this shuffle.
    ShuffleMap(ShuffleId),
}

/// The RDD of the scheduler's tests: any shape, with each property a test may set (the others
/// as `Default`: no dependencies, not persisted, determinate, not barrier).
pub struct FakeRdd {
    pub id: usize,
    pub parts: usize,
    pub deps: Vec<Dependency>,
    pub level: StorageLevel,
    /// As a shuffled RDD, which prefers the hosts holding most of its input.
    pub reads_shuffle: bool,
    /// As `repartition`'s round-robin over a shuffle's output: indeterminate.
    pub order_sensitive: bool,
    /// As `rdd.barrier().map_partitions(…)`.
    pub from_barrier: bool,
}

impl Default for FakeRdd {
    fn default() -> Self {
        FakeRdd {
            id: 0,
            parts: 1,
            deps: Vec::new(),
            level: StorageLevel::NONE,
            reads_shuffle: false,
            order_sensitive: false,
            from_barrier: false,
        }
    }
}

impl FakeRdd {
    /// An RDD of `parts` partitions over `deps`.
    pub fn new(id: usize, parts: usize, deps: Vec<Dependency>) -> Self {
        FakeRdd {
            id,
            parts,
            deps,
            ..FakeRdd::default()
        }
    }

    /// As a shared trait object.
    pub fn shared(self) -> Arc<dyn RddBase> {
        Arc::new(self)
    }
}

impl RddBase for FakeRdd {
    fn id(&self) -> usize {
        self.id
    }
    fn name(&self) -> &'static str {
        "Fake"
    }
    fn num_partitions(&self) -> usize {
        self.parts
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.deps.clone()
    }
    fn preferred_locations(&self, _p: usize) -> Vec<TaskLocation> {
        Vec::new()
    }
    fn storage_level(&self) -> StorageLevel {
        self.level
    }
    fn prefers_shuffle_input_hosts(&self) -> bool {
        self.reads_shuffle
    }
    fn is_order_sensitive(&self) -> bool {
        self.order_sensitive
    }
    fn is_from_barrier(&self) -> bool {
        self.from_barrier
    }
}

/// The shuffle of the scheduler's tests; its map tasks' body names it.
pub struct FakeShuffle {
    pub id: ShuffleId,
    pub rdd: Arc<dyn RddBase>,
    pub reduces: usize,
}

impl FakeShuffle {
    /// `rdd`'s output cut into `reduces` partitions, as a dependency.
    pub fn dependency(id: ShuffleId, rdd: Arc<dyn RddBase>, reduces: usize) -> Dependency {
        Dependency::Shuffle(Arc::new(FakeShuffle { id, rdd, reduces }))
    }
}

impl ShuffleDependencyBase for FakeShuffle {
    fn shuffle_id(&self) -> ShuffleId {
        self.id
    }
    fn rdd(&self) -> Arc<dyn RddBase> {
        self.rdd.clone()
    }
    fn num_reduce_partitions(&self) -> usize {
        self.reduces
    }
    fn map_task(&self) -> TaskBody {
        TaskBody::new(TestBody::ShuffleMap(self.id))
    }
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
    ts.body = TaskBody::new(TestBody::ShuffleMap(0));
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
