//! `Executor`: a pool of task threads (never one thread per task), started as tasks need them
//! up to the executor's cores, and the map of running tasks (Spark's `Executor`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tracing::{debug, info};

use super::task_runner::TaskRunner;
use crate::env::ExecutorEnv;
use crate::task::{StatusUpdate, TaskContext, TaskDescription, TaskId};

/// Where an executor sends status updates (Spark's `ExecutorBackend`): straight into the driver's
/// event loop in local mode, over the network in cluster mode.
pub trait ExecutorBackend: Send + Sync {
    /// Reports a task's new state.
    fn status_update(&self, update: StatusUpdate);
}

/// Counters of the executor's task pool (the `threadpool.*` gauges of Spark's executor source).
#[derive(Debug, Default)]
pub struct ExecutorCounters {
    pub active_tasks: AtomicUsize,
    pub completed_tasks: AtomicU64,
    pub pool_size: AtomicUsize,
    pub max_pool_size: AtomicUsize,
    /// Local file activity of ended tasks.
    pub fs: crate::metrics::FileSystemCounters,
    /// Task binaries the executor process holds now, and the most it ever held.
    pub task_binaries: AtomicU64,
    pub task_binaries_peak: AtomicU64,
}

impl ExecutorCounters {
    /// The executor source's current values.
    pub fn source_metrics(&self) -> crate::metrics::ExecutorSourceMetrics {
        let mut m = crate::metrics::ExecutorSourceMetrics {
            active_tasks: self.active_tasks.load(Ordering::Relaxed) as u64,
            complete_tasks: self.completed_tasks.load(Ordering::Relaxed),
            current_pool_size: self.pool_size.load(Ordering::Relaxed) as u64,
            max_pool_size: self.max_pool_size.load(Ordering::Relaxed) as u64,
            task_binaries: self.task_binaries.load(Ordering::Relaxed),
            task_binaries_peak: self.task_binaries_peak.load(Ordering::Relaxed),
            ..Default::default()
        };
        self.fs.fill(&mut m);
        m
    }
}

/// State shared by the executor and its task threads.
pub(crate) struct Shared {
    pub env: Arc<ExecutorEnv>,
    pub backend: Arc<dyn ExecutorBackend>,
    pub running: Mutex<FxHashMap<TaskId, Arc<TaskContext>>>,
    pub counters: ExecutorCounters,
    /// Results leave as postcard bytes (cluster mode, or the forced wire path).
    pub serialize_results: bool,
    /// Task bodies go through the ship/decode round trip before running (forced wire path).
    pub reship_tasks: bool,
    /// `ember.unsafe.exceptionOnMemoryLeak`: a task that ends holding execution memory fails.
    pub exception_on_leak: bool,
    /// `ember.driver.maxResultSize` (0: unlimited): an unserialized (local) result larger than
    /// this is dropped and only its size reported, as Spark's executor does.
    pub max_result_size: u64,
    /// The task threads: kernel thread id, full name, and the task each runs (TID + 1, 0 when
    /// idle), for thread dumps.
    pub task_threads: Mutex<Vec<(i64, String, Arc<AtomicU64>)>>,
}

type Queued = (TaskDescription, Arc<TaskContext>);

/// Runs tasks on at most `cores` threads.
pub struct Executor {
    shared: Arc<Shared>,
    queue: Option<Sender<Queued>>,
    /// Where a new task thread takes its tasks from.
    tasks: Receiver<Queued>,
    /// The task threads started so far: one more whenever more tasks run than there are threads
    /// (so `local[10000]` starts at once and uses the stacks its jobs need).
    threads: Mutex<Vec<JoinHandle<()>>>,
    max_pool_size: usize,
}

impl Executor {
    /// Starts an executor with `cores` task threads.
    pub fn new(env: Arc<ExecutorEnv>, cores: usize, backend: Arc<dyn ExecutorBackend>) -> Self {
        let wire = env
            .conf
            .get_bool(crate::conf::SERIALIZE_LOCAL_TASKS)
            .unwrap_or(false);
        Self::with_mode(env, cores, backend, wire, wire)
    }

    /// An executor of a separate process: tasks arrive decoded, results leave serialized.
    pub fn new_remote(
        env: Arc<ExecutorEnv>,
        cores: usize,
        backend: Arc<dyn ExecutorBackend>,
    ) -> Self {
        Self::with_mode(env, cores, backend, true, false)
    }

    fn with_mode(
        env: Arc<ExecutorEnv>,
        cores: usize,
        backend: Arc<dyn ExecutorBackend>,
        serialize_results: bool,
        reship_tasks: bool,
    ) -> Self {
        let exception_on_leak = match env
            .conf
            .get_bool(crate::conf::UNSAFE_EXCEPTION_ON_MEMORY_LEAK)
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("{e}; leaks are only logged");
                false
            }
        };
        let max_result_size = match env.conf.get_size_bytes(crate::conf::DRIVER_MAX_RESULT_SIZE) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("{e}; results are not limited");
                0
            }
        };
        let shared = Arc::new(Shared {
            env,
            backend,
            running: Mutex::new(FxHashMap::default()),
            counters: ExecutorCounters::default(),
            serialize_results,
            reship_tasks,
            exception_on_leak,
            max_result_size,
            task_threads: Mutex::new(Vec::new()),
        });
        let (tx, rx) = unbounded::<Queued>();
        let cores = cores.max(1);
        shared
            .counters
            .max_pool_size
            .store(cores, Ordering::Relaxed);
        info!(
            "Starting executor ID {} on host {} with {} task threads",
            shared.env.executor_id, shared.env.host, cores
        );
        Executor {
            shared,
            queue: Some(tx),
            tasks: rx,
            threads: Mutex::new(Vec::new()),
            max_pool_size: cores,
        }
    }

    /// Starts task threads until there is one per running task (at most `max_pool_size`).
    fn grow_pool(&self) {
        let mut threads = self.threads.lock();
        let wanted = self.shared.running.lock().len().min(self.max_pool_size);
        while threads.len() < wanted {
            let (rx, shared) = (self.tasks.clone(), self.shared.clone());
            let name = format!("executor-task-{}-{}", shared.env.executor_id, threads.len());
            let spawned = std::thread::Builder::new().name(name.clone()).spawn(move || {
                super::stack_guard::install_thread();
                crate::util::mark_task_thread();
                let running = Arc::new(AtomicU64::new(0));
                shared.task_threads.lock().push((
                    crate::threaddump::thread_id(),
                    name,
                    running.clone(),
                ));
                while let Ok((task, ctx)) = crate::handoff::recv(&rx) {
                    running.store(task.task_id + 1, Ordering::Relaxed);
                    TaskRunner::new(shared.clone(), task, ctx).run();
                    running.store(0, Ordering::Relaxed);
                }
            });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    // The threads there are take the queued tasks in turn.
                    tracing::error!(
                        "cannot start task thread {} of executor {}: {e}",
                        threads.len(),
                        self.shared.env.executor_id
                    );
                    break;
                }
            }
        }
        self.shared
            .counters
            .pool_size
            .store(threads.len(), Ordering::Relaxed);
    }

    /// Queues a task on the pool (Spark's `launchTask`).
    pub fn launch_task(&self, task: TaskDescription) {
        debug!("Got assigned task {}", task.task_id);
        // Recorded in running_tasks here, before a pool thread picks it up, so that a kill that
        // arrives in between is not lost (as Spark's launchTask does).
        let t = &task;
        let ctx = Arc::new(TaskContext::new(
            self.shared.env.clone(),
            t.stage_id,
            t.stage_attempt_id,
            t.partition_id,
            t.attempt_number,
            t.task_id,
        )
        .with_barrier_tasks(t.barrier_tasks));
        self.shared.running.lock().insert(t.task_id, ctx.clone());
        if let Some(q) = &self.queue {
            let _ = q.send((task, ctx));
        }
        self.grow_pool();
    }

    /// Asks a running task to stop at its next record boundary.
    pub fn kill_task(&self, task_id: TaskId, reason: &str) {
        if let Some(ctx) = self.shared.running.lock().get(&task_id) {
            info!("Executor is trying to kill task {task_id}, reason: {reason}");
            ctx.mark_interrupted(reason);
        }
    }

    /// The executor's environment.
    pub fn env(&self) -> &Arc<ExecutorEnv> {
        &self.shared.env
    }

    /// A handle that reads the running tasks' metrics from another thread (the heartbeater).
    pub fn monitor(&self) -> ExecutorMonitor {
        ExecutorMonitor(self.shared.clone())
    }

    /// Tasks currently running.
    #[cfg(any(test, feature = "testing"))]
    pub fn running_tasks(&self) -> usize {
        self.shared.running.lock().len()
    }

    /// Task-pool gauges: `(active, completed, current pool size, max pool size)`.
    #[cfg(any(test, feature = "testing"))]
    pub fn pool_metrics(&self) -> (usize, u64, usize, usize) {
        let c = &self.shared.counters;
        (
            c.active_tasks.load(Ordering::Relaxed),
            c.completed_tasks.load(Ordering::Relaxed),
            c.pool_size.load(Ordering::Relaxed),
            c.max_pool_size.load(Ordering::Relaxed),
        )
    }

    /// Records how many task binaries the executor process holds (reported with heartbeats).
    pub fn set_cached_task_binaries(&self, n: usize) {
        let c = &self.shared.counters;
        c.task_binaries.store(n as u64, Ordering::Relaxed);
        c.task_binaries_peak.fetch_max(n as u64, Ordering::Relaxed);
    }

    /// Kills running tasks and stops the threads once they finish (Spark's `stop`).
    pub fn stop(&mut self) {
        for ctx in self.shared.running.lock().values() {
            ctx.mark_interrupted("executor stopped");
        }
        self.queue = None;
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads an executor's running tasks from another thread.
#[derive(Clone)]
pub struct ExecutorMonitor(Arc<Shared>);

impl ExecutorMonitor {
    /// The executor source's gauges and counters (what a heartbeat carries too).
    pub fn source_metrics(&self) -> crate::metrics::ExecutorSourceMetrics {
        self.0.counters.source_metrics()
    }

    /// The task threads by kernel thread id: their full names and the task each runs now.
    pub fn task_threads(&self) -> FxHashMap<i64, (String, Option<u64>)> {
        self.0
            .task_threads
            .lock()
            .iter()
            .map(|(tid, name, running)| {
                let t = running.load(Ordering::Relaxed);
                (*tid, (name.clone(), t.checked_sub(1)))
            })
            .collect()
    }

    /// This process's threads, the task threads named with the tasks they run.
    pub fn dump_threads(&self) -> Vec<crate::threaddump::ThreadStack> {
        let names = self.task_threads();
        crate::threaddump::dump_threads(&|tid| names.get(&tid).cloned())
    }

    /// The current metrics of every running task (what a heartbeat carries).
    pub fn running_metrics(&self) -> Vec<(TaskId, crate::task::TaskMetricsSnapshot)> {
        self.0
            .running
            .lock()
            .iter()
            .map(|(tid, ctx)| (*tid, ctx.metrics.snapshot()))
            .collect()
    }
}
