//! `Context` (Spark's `SparkContext`): the entry point of an Ember application.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Sender};
use parking_lot::Mutex;
use tracing::info;

use ember_scheduler::clock::Clock;
use ember_scheduler::dag_scheduler::{DagScheduler, JobEvent, JobSubmission};
use ember_scheduler::map_output_tracker::MapOutputTracker;
use ember_scheduler::rdd::{Dependency, RddBase};
use ember_scheduler::task::TaskBody;
use ember_scheduler::task_scheduler::TaskSchedulerImpl;

use crate::accumulator::{
    AccumulableInfo, Accumulator, AccumulatorRegistry, AccumulatorValue, Collection, DoubleSum,
    LongSum,
};
use crate::broadcast::{Broadcast, BroadcastManager, BroadcastMetrics};
use crate::conf::{self, EmberConf, MasterUrl, ShuffleConf};
use crate::data::Data;
use crate::env::ExecutorEnv;
use crate::error::{EmberError, Result};
use crate::event_log::{EventLogSettings, EventLogWriter};
use crate::files::FileServer;
use crate::listener::events::{
    ApplicationEnd, ApplicationStart, BlockManagerAdded, EnvironmentDetails, EnvironmentUpdate,
    ExecutorAdded, ListenerEvent,
};
use crate::listener::{Listener, ListenerBus, QueueStats};
use crate::memory::{MemoryConfig, MemorySource, UnifiedMemoryManager};
use crate::rpc::secret::{Secret, Security};
use crate::scheduler::backend::SchedulerBackend;
use crate::scheduler::cluster_backend::{
    ClusterBackend, ClusterSettings, ClusterView, ExecutorInfo,
};
use crate::scheduler::event_loop::{AppStatus, DriverEvent, DriverServices, EventLoop, StatusCell};
use crate::scheduler::local_backend::LocalBackend;
use crate::scheduler::recorder::Recorder;
use crate::scheduler::status::StatusListener;
use crate::scheduler::system_clock::SystemClock;
use crate::status::{AppStatusStore, Retention};
use crate::storage::{
    BlockManager, BlockManagerMaster, ExecutorStorageStatus, RddStorageInfo, StorageLevel,
};
use crate::task::{BlockManagerId, JobId, ResultFunc, TaskKind, TaskValue};
use crate::ui::console_progress::{ConsoleProgressBar, ProgressRefresher, ProgressTracker};
use crate::ui::server::UiServer;

thread_local! {
    /// Spark's local properties: per driver thread (`ember.scheduler.pool`, the job group).
    static LOCAL_PROPERTIES: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

const JOB_GROUP: &str = conf::JOB_GROUP_ID;
/// The name of the scheduler's thread (Spark's `dag-scheduler-event-loop`).
const LOOP_THREAD: &str = "dag-scheduler-event-loop";

/// The entry point of an Ember application: creates RDDs and runs jobs on them.
///
/// Cloning is cheap; every clone is the same application. The application stops when
/// [`Context::stop`] is called or the last handle you hold is dropped (RDDs keep only a weak
/// hold on it, so an RDD never keeps an application alive).
///
/// ```
/// use ember::prelude::*;
/// let ctx = Context::new(EmberConf::new().set_master("local[2]").set_app_name("doc")).unwrap();
/// let sum = ctx.parallelize((1..=100).collect::<Vec<u64>>(), 4).reduce(|a, b| a + b).unwrap();
/// assert_eq!(sum, 5050);
/// ctx.stop();
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
    /// Present in the handles the application holds; dropping the last one stops it.
    #[allow(dead_code)]
    owner: Option<Arc<OwnerGuard>>,
}

struct OwnerGuard(Arc<Inner>);

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        self.0.stop();
    }
}

struct Inner {
    conf: Arc<EmberConf>,
    master: MasterUrl,
    next_rdd_id: AtomicUsize,
    next_shuffle_id: AtomicUsize,
    default_parallelism: usize,
    events: Sender<DriverEvent>,
    loop_thread: Mutex<Option<JoinHandle<()>>>,
    stopped: AtomicBool,
    /// Held for the whole of a stop: a second caller returns only when the first has finished
    /// (a program that ends right after must not cut a signal's cleanup short).
    stop_lock: Mutex<()>,
    app_dir: PathBuf,
    blocks: Arc<BlockManagerMaster>,
    status: Arc<StatusCell>,
    accumulators: Arc<AccumulatorRegistry>,
    broadcasts: Arc<BroadcastManager>,
    /// The files and archives added with `add_file` and `add_archive`.
    files: Arc<FileServer>,
    /// The driver's block server, where executors fetch broadcast pieces (cluster masters).
    broadcast_source: Option<std::net::SocketAddr>,
    /// The embedded executor (local mode), read for its metrics source.
    local_executor: Option<crate::executor::ExecutorMonitor>,
    /// Where executors connect (cluster masters) and who is connected.
    cluster: Option<(std::net::SocketAddr, ClusterView)>,
    /// RDDs persisted through this context (Spark's `persistentRdds`), for the storage status
    /// (shared with the event loop, which names RDDs for listeners).
    persisted: Arc<Mutex<std::collections::BTreeMap<usize, PersistedRdd>>>,
    /// Spark's `applicationId`: `local-<ms>` in local mode, `app-<date>-<n>` otherwise.
    app_id: String,
    /// The listener bus: status, UI, event log, progress bar and programs' listeners.
    bus: Arc<ListenerBus>,
    /// The web UI and REST API, when `ember.ui.enabled`.
    ui: Mutex<Option<UiServer>>,
    /// The metrics system's console and CSV sinks.
    metrics_sinks: Mutex<Option<crate::ui::metrics_system::PolledSinks>>,
    ui_url: Option<String>,
    /// Draws the console progress bar (stderr a terminal and `ember.ui.showConsoleProgress`).
    progress: Mutex<Option<ProgressRefresher>>,
    /// The embedded executor's memory manager (local mode), read live by the storage status.
    local_memory: Option<Arc<UnifiedMemoryManager>>,
}

/// Unregisters a context's file server if the context fails to start.
struct StopFilesOnDrop(Option<Arc<FileServer>>);

impl StopFilesOnDrop {
    /// The context started: its stop does it.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopFilesOnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.stop();
        }
    }
}

/// What the driver remembers of a persisted RDD.
#[derive(Clone, Debug)]
struct PersistedRdd {
    name: Option<String>,
    level: StorageLevel,
    partitions: usize,
}

impl Inner {
    fn stop(&self) {
        // The loop thread itself never waits: the stop in progress is joining it.
        let on_loop_thread = std::thread::current().name() == Some(LOOP_THREAD);
        let _stopping = (!on_loop_thread).then(|| self.stop_lock.lock());
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.events.send(DriverEvent::Stop);
        if let Some(t) = self.loop_thread.lock().take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        // As SparkContext.stop: the application's end is the last event; then the listeners
        // finish what they hold (the event log gets its final name) and the UI stops.
        self.bus.post(ListenerEvent::ApplicationEnd(ApplicationEnd {
            time: self.bus.time_ms(),
        }));
        drop(self.progress.lock().take());
        self.bus.stop();
        // After the bus: the sinks' last report sees every event.
        drop(self.metrics_sinks.lock().take());
        if let Some(mut ui) = self.ui.lock().take() {
            ui.stop();
        }
        self.files.stop();
        let _ = std::fs::remove_dir_all(&self.app_dir);
        info!("Successfully stopped the Ember context");
    }
}

/// Thread dumps for the UI: the driver's own process (with local mode's task threads named),
/// or an executor's, asked over its connection.
struct ProcessThreadDumps {
    local: Option<crate::executor::ExecutorMonitor>,
    cluster: Option<ClusterView>,
    timeout: std::time::Duration,
}

impl crate::ui::threads::ThreadDumpSource for ProcessThreadDumps {
    fn thread_dump(&self, executor_id: &str) -> Option<Vec<crate::threaddump::ThreadStack>> {
        if executor_id == "driver" {
            return Some(match &self.local {
                Some(m) => m.dump_threads(),
                None => crate::threaddump::dump_threads(&|_| None),
            });
        }
        self.cluster
            .as_ref()?
            .thread_dump(executor_id, self.timeout)
    }
}

impl crate::shutdown::Stoppable for Inner {
    fn stop(&self) {
        Inner::stop(self)
    }
}

impl Context {
    /// Starts an application with this configuration (master from `ember.master`, default
    /// `local[*]`).
    pub fn new(conf: EmberConf) -> Result<Self> {
        conf.warn_unknown_keys();
        conf.validate()?;
        crate::util::install_panic_hook();
        let master = conf.master()?;
        conf::validate_settings(&conf, &master)?;
        let conf = Arc::new(conf);
        Self::start(conf, master)
    }

    /// A `local[*]` application named `app_name`, configured from the environment.
    pub fn local(app_name: &str) -> Result<Self> {
        Self::new(EmberConf::from_env()?.set_if_missing(conf::APP_NAME, app_name))
    }

    /// Starts an application configured from the environment and the process's command line
    /// (`--master URL`, `--conf key=value`, `--name NAME`); returns it with the arguments it did
    /// not consume (without the program name).
    pub fn from_args(app_name: &str) -> Result<(Self, Vec<String>)> {
        let (conf, rest) = EmberConf::from_args(std::env::args().skip(1))?;
        Ok((
            Self::new(conf.set_if_missing(conf::APP_NAME, app_name))?,
            rest,
        ))
    }

    fn start(conf: Arc<EmberConf>, master: MasterUrl) -> Result<Self> {
        let root = match conf.get(conf::LOCAL_DIR) {
            "" => std::env::temp_dir(),
            d => PathBuf::from(d),
        };
        if conf.get_bool(conf::LOCAL_DIR_CLEAN_STALE)? {
            crate::scratch::sweep(&root);
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // The sequence number keeps two applications of one process apart even if they start
        // within the clock's resolution (tests start many at once); each deletes its directory.
        static APPS: AtomicUsize = AtomicUsize::new(0);
        let seq = APPS.fetch_add(1, Ordering::Relaxed);
        let app_dir = root.join(format!("ember-{}-{stamp:x}-{seq}", std::process::id()));
        // A context that fails to start (too little memory, a bad key) has no owner to delete
        // its directory when dropped: delete it here.
        Self::start_in(conf, master, app_dir.clone(), stamp).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&app_dir);
        })
    }

    fn start_in(
        conf: Arc<EmberConf>,
        master: MasterUrl,
        app_dir: PathBuf,
        stamp: u128,
    ) -> Result<Self> {
        let blocks = Arc::new(BlockManagerMaster::new());
        let tracker = Arc::new(MapOutputTracker::new());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let epoch_now = (stamp / 1_000_000) as u64;
        let start_time = epoch_now;
        let app_id = application_id(&master, start_time);
        // At least 1 (Spark's message when it is not): the getter applies the table's bound.
        let capacity = conf.get_u64(conf::LISTENER_BUS_CAPACITY)?;
        let bus = Arc::new(ListenerBus::new(
            capacity as usize,
            clock.clone(),
            epoch_now.saturating_sub(clock.now_ms()),
        ));
        let status = Arc::new(StatusCell::default());
        bus.add_inline(Box::new(StatusListener(status.clone())));
        let ui_enabled = conf.get_bool(conf::UI_ENABLED)?;
        let store = if ui_enabled {
            let retention = Retention {
                jobs: conf.get_u64(conf::UI_RETAINED_JOBS)? as usize,
                stages: conf.get_u64(conf::UI_RETAINED_STAGES)? as usize,
                tasks_per_stage: conf.get_u64(conf::UI_RETAINED_TASKS)? as usize,
                dead_executors: conf.get_u64(conf::UI_RETAINED_DEAD_EXECUTORS)? as usize,
            };
            let app = crate::status::store::App {
                id: app_id.clone(),
                name: conf.app_name().to_string(),
                user: spark_user(),
                start_time,
                end_time: None,
            };
            let store = AppStatusStore::new(retention, app);
            bus.add_sink("appStatus", Box::new(store.listener()))
                .map_err(|e| EmberError::io("appStatus listener thread", e))?;
            Some(store)
        } else {
            None
        };
        if let Some(settings) = EventLogSettings::from_conf(&conf)? {
            let writer = EventLogWriter::create(&settings, &app_id)?;
            bus.add_sink("eventLog", Box::new(writer))
                .map_err(|e| EmberError::io("eventLog listener thread", e))?;
        }
        let progress = if ConsoleProgressBar::enabled_for_stderr(
            conf.get_bool(conf::UI_SHOW_CONSOLE_PROGRESS)?,
        ) {
            let tracker = ProgressTracker::new();
            bus.add_sink("progress", Box::new(tracker.handle()))
                .map_err(|e| EmberError::io("progress listener thread", e))?;
            let b = bus.clone();
            let refresher = ProgressRefresher::start(
                tracker,
                ConsoleProgressBar::new(true),
                Arc::new(move || b.time_ms()),
            )
            .map_err(|e| EmberError::io("refresh progress thread", e))?;
            Some(refresher)
        } else {
            None
        };
        // From here on, whatever happens to the application is on the bus; a start that fails
        // below stops it (its threads, the event log) when `bus` is dropped.
        blocks.set_listener_bus(bus.clone());
        let metrics_config = crate::ui::metrics_system::MetricsConfig::from_conf(&conf)?;
        let thread_dumps = crate::ui::threads::ThreadDumps::default();
        let mut metrics_sinks = None;
        let ui = match &store {
            Some(store) => {
                let host: std::net::IpAddr = conf
                    .get(conf::DRIVER_HOST)
                    .parse()
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
                let port = u16::try_from(conf.get_u64(conf::UI_PORT)?).map_err(|_| {
                    EmberError::Config {
                        key: conf::UI_PORT.into(),
                        value: conf.get(conf::UI_PORT).into(),
                        reason: "a port is at most 65535".into(),
                    }
                })?;
                let retries = conf.get_u64(conf::PORT_MAX_RETRIES)?.min(1000) as u32;
                let listener = crate::ui::server::bind("EmberUI", host, port, retries)?;
                let b = bus.clone();
                let queues_bus = bus.clone();
                let metrics = Arc::new(crate::ui::metrics_system::MetricsState::from_conf(
                    &conf,
                    &metrics_config,
                    &app_id,
                    Arc::new(move || queues_bus.stats()),
                )?);
                let api = crate::ui::rest::ApiState {
                    store: store.clone(),
                    now: Arc::new(move || b.time_ms()),
                    threads: thread_dumps.clone(),
                    metrics: metrics.clone(),
                    settings: crate::ui::rest::UiSettings::from_conf(&conf)?,
                };
                let app = crate::ui::rest::routes(api.clone())
                    .merge(crate::ui::pages::routes(api.clone()))
                    .merge(crate::ui::metrics_system::routes(api));
                let (sink_store, sink_metrics) = (store.clone(), metrics);
                metrics_sinks = Some(crate::ui::metrics_system::PolledSinks::start(
                    &metrics_config.sinks("driver"),
                    Arc::new(move || sink_store.read(|st| sink_metrics.snapshot(st))),
                )?);
                let server = UiServer::start(listener, app)?;
                crate::ui::server::log_started(&server);
                Some(server)
            }
            None => None,
        };
        let ui_url = ui.as_ref().map(UiServer::url);

        let (tx, rx) = unbounded();
        let mut cluster = None;
        let broadcasts = Arc::new(BroadcastManager::new());
        let files = FileServer::new(
            &app_dir,
            conf.get_bool(conf::FILES_OVERWRITE)?,
            std::time::Duration::from_millis(conf.get_time_ms(conf::FILES_FETCH_TIMEOUT)?),
        );
        // Until the context exists, nobody else stops it.
        let files_guard = StopFilesOnDrop(Some(files.clone()));
        let mut broadcast_source = None;
        let mut local_executor = None;
        let mut local_memory = None;
        let (backend, threads, max_failures): (Box<dyn SchedulerBackend>, usize, u32) =
            match &master {
                MasterUrl::Local {
                    threads,
                    max_failures,
                } => {
                    // The embedded executor: only this mode has one in the driver process.
                    let local_dir = app_dir.join("executor-driver");
                    std::fs::create_dir_all(&local_dir)
                        .map_err(|e| EmberError::io(&local_dir, e))?;
                    bus.post(ListenerEvent::ExecutorAdded(ExecutorAdded {
                        time: bus.time_ms(),
                        executor_id: "driver".into(),
                        executor_info: crate::listener::events::ExecutorInfo {
                            host: "localhost".into(),
                            total_cores: *threads as u32,
                            log_urls: Default::default(),
                        },
                    }));
                    let bm_id = BlockManagerId {
                        executor_id: "driver".into(),
                        host: "localhost".into(),
                        port: 0,
                    };
                    // Local mode: the executor lives in the driver, so the driver's memory is its
                    // memory.
                    let memory = MemoryConfig::from_conf(
                        &conf,
                        conf.get_size_bytes(conf::DRIVER_MEMORY)?,
                        MemorySource::Key(conf::DRIVER_MEMORY),
                    )?;
                    // As in Spark, a too small ember.executor.memory is refused in local mode too,
                    // though the driver's memory is the one used.
                    if conf.contains(conf::EXECUTOR_MEMORY) {
                        MemoryConfig::from_conf(
                            &conf,
                            conf.get_size_bytes(conf::EXECUTOR_MEMORY)?,
                            MemorySource::Key(conf::EXECUTOR_MEMORY),
                        )?;
                    }
                    let block_manager = BlockManager::new(
                        bm_id,
                        blocks.clone(),
                        memory,
                        local_dir.join("blocks"),
                        &conf,
                    )?;
                    local_memory = Some(block_manager.memory_manager().clone());
                    let env = Arc::new(ExecutorEnv {
                        executor_id: "driver".into(),
                        host: "localhost".into(),
                        hadoop_conf: Arc::new(crate::io::cloud::HadoopConf::from_pairs(
                            conf.iter(),
                        )),
                        conf: conf.clone(),
                        local_dir,
                        shuffle: ShuffleConf::from_conf(&conf)?,
                        memory_manager: block_manager.memory_manager().clone(),
                        block_manager,
                        broadcasts: broadcasts.clone(),
                        map_outputs: tracker.clone(),
                        block_client: None,
                        barrier_sync: Arc::new(crate::scheduler::local_backend::LocalBarrierSync {
                            events: tx.clone(),
                        }),
                        // The driver's own file root: the driver put the added files there.
                        files: Arc::new(crate::files::ExecutorFiles::new(
                            files.root().to_path_buf(),
                            None,
                        )?),
                    });
                    let backend = LocalBackend::new(env, *threads, tx.clone());
                    local_executor = Some(backend.executor().monitor());
                    (Box::new(backend), *threads, *max_failures)
                }
                MasterUrl::LocalCluster {
                    executors,
                    cores,
                    memory_mb,
                } => {
                    // The master URL's MEM, unless ember.executor.memory says otherwise; checked
                    // here so that too little memory fails the context, not the
                    // executor processes.
                    let memory_mb = if conf.contains(conf::EXECUTOR_MEMORY) {
                        let bytes = conf.get_size_bytes(conf::EXECUTOR_MEMORY)?;
                        MemoryConfig::from_conf(
                            &conf,
                            bytes,
                            MemorySource::Key(conf::EXECUTOR_MEMORY),
                        )?;
                        bytes >> 20
                    } else {
                        MemoryConfig::from_conf(
                            &conf,
                            *memory_mb << 20,
                            MemorySource::MasterUrl(conf.get(conf::MASTER)),
                        )?;
                        *memory_mb
                    };
                    let backend = start_cluster(
                        &conf,
                        tx.clone(),
                        tracker.clone(),
                        blocks.clone(),
                        broadcasts.clone(),
                        files.clone(),
                        Some((*executors, *cores, memory_mb)),
                        None,
                    )?;
                    cluster = Some((backend.address(), backend.view()));
                    broadcast_source = Some(backend.broadcast_address());
                    (
                        Box::new(backend),
                        executors * cores,
                        conf.get_u64_at_most(conf::TASK_MAX_FAILURES, u32::MAX.into())? as u32,
                    )
                }
                MasterUrl::Standalone { host, port } => {
                    let backend = start_cluster(
                        &conf,
                        tx.clone(),
                        tracker.clone(),
                        blocks.clone(),
                        broadcasts.clone(),
                        files.clone(),
                        None,
                        Some((host.clone(), *port)),
                    )?;
                    cluster = Some((backend.address(), backend.view()));
                    broadcast_source = Some(backend.broadcast_address());
                    let cores = conf.get_opt_u64(conf::DEFAULT_PARALLELISM)?.unwrap_or(2) as usize;
                    (
                        Box::new(backend),
                        cores,
                        conf.get_u64_at_most(conf::TASK_MAX_FAILURES, u32::MAX.into())? as u32,
                    )
                }
            };
        if let Some(addr) = broadcast_source {
            files.set_source(addr);
            // The driver's block manager in cluster mode (Spark posts it; the History Server
            // lists the driver from it): it serves broadcast pieces and stores nothing.
            let memory = MemoryConfig::from_conf(
                &conf,
                conf.get_size_bytes(conf::DRIVER_MEMORY)?,
                MemorySource::Key(conf::DRIVER_MEMORY),
            )?;
            bus.post(ListenerEvent::BlockManagerAdded(BlockManagerAdded {
                time: bus.time_ms(),
                block_manager_id: BlockManagerId {
                    executor_id: "driver".into(),
                    host: addr.ip().to_string(),
                    port: addr.port(),
                },
                max_mem: memory.max_memory,
            }));
        }
        bus.post(ListenerEvent::EnvironmentUpdate(EnvironmentUpdate {
            environment_details: {
                let mut details = environment(&conf, &app_id, start_time, ui_url.as_deref());
                details.metrics_properties = crate::status::redact::redact(
                    conf.get(conf::REDACTION_REGEX),
                    metrics_config.properties(),
                );
                details
            },
        }));
        bus.post(ListenerEvent::ApplicationStart(ApplicationStart {
            app_name: conf.app_name().to_string(),
            app_id: app_id.clone(),
            time: start_time,
            spark_user: spark_user(),
        }));
        let seed = match conf.get_opt_u64(conf::SCHEDULER_SEED)? {
            Some(s) => s,
            None => stamp as u64,
        };
        let mut scheduler_config = crate::scheduler::conf::scheduler_config(&conf, max_failures)?;
        if matches!(master, MasterUrl::Local { .. })
            && scheduler_config.speculation.take().is_some()
        {
            // As in Spark: the one embedded executor is the only place a copy could run, and a
            // copy never runs where its task already runs.
            info!(
                "{} is ignored in local mode: there is no other executor to run copies on",
                conf::SPECULATION
            );
        }
        if matches!(master, MasterUrl::Local { .. }) {
            // As in Spark: the embedded executor is there from the start.
            scheduler_config.starvation_timeout_ms = None;
        }
        if let Some(speculation) = &mut scheduler_config.speculation {
            // Spark's SPARK-30417: executors' cores are known for local-cluster (its C) or when
            // ember.executor.cores is set; otherwise one slot is assumed.
            let cores = match &master {
                MasterUrl::LocalCluster { cores, .. } => Some(*cores as u64),
                _ if conf.contains(conf::EXECUTOR_CORES) => {
                    Some(conf.get_u64(conf::EXECUTOR_CORES)?)
                }
                _ => None,
            };
            let slots = cores
                .map_or(1, |c| c / u64::from(scheduler_config.task_cpus))
                .max(1);
            speculation.executor_slots = u32::try_from(slots).unwrap_or(u32::MAX);
        }
        let mut tasks = TaskSchedulerImpl::new(scheduler_config, clock.clone(), seed);
        if matches!(master, MasterUrl::Local { .. }) {
            tasks.executor_added("driver", "localhost");
        }
        let max_stage_attempts = conf
            .get_u64(conf::STAGE_MAX_CONSECUTIVE_ATTEMPTS)?
            .clamp(1, u32::MAX as u64) as u32;
        let mut dag = DagScheduler::new(tracker, blocks.clone(), max_stage_attempts);
        dag.set_max_result_size(conf.get_size_bytes(conf::DRIVER_MAX_RESULT_SIZE)?);
        dag.set_reduce_locality(conf.get_bool(conf::SHUFFLE_REDUCE_LOCALITY_ENABLED)?);
        dag.set_barrier_slot_check(
            conf.get_time_ms(conf::BARRIER_MAX_CONCURRENT_TASKS_CHECK_INTERVAL)?,
            conf.get_u64(conf::BARRIER_MAX_CONCURRENT_TASKS_CHECK_MAX_FAILURES)?
                .min(u64::from(u32::MAX)) as u32,
        );
        let barrier_sync_timeout_ms = conf.get_time_ms(conf::BARRIER_SYNC_TIMEOUT)?;
        let accumulators = Arc::new(AccumulatorRegistry::new());
        let services = DriverServices {
            accumulators: accumulators.clone(),
            blocks: blocks.clone(),
            files: files.clone(),
        };
        let persisted: Arc<Mutex<std::collections::BTreeMap<usize, PersistedRdd>>> = Arc::default();
        let names = persisted.clone();
        let recorder = Recorder::new(
            bus.clone(),
            Box::new(move |id| names.lock().get(&id).and_then(|p| p.name.clone())),
        );
        let mut event_loop = EventLoop::new(dag, tasks, backend, clock, recorder, services)
            .with_barrier_sync_timeout(barrier_sync_timeout_ms);
        if !matches!(master, MasterUrl::Local { .. }) {
            event_loop = event_loop.with_heartbeat_timeout(
                conf::executor_timeout_ms(&conf)?,
                conf.get_time_ms(conf::NETWORK_TIMEOUT_INTERVAL)?,
            );
        }
        let handle = std::thread::Builder::new()
            .name(LOOP_THREAD.into())
            .spawn(move || event_loop.run(rx))
            .map_err(|e| {
                crate::scheduler::event_loop::spawn_failed(&e);
                EmberError::io("dag-scheduler-event-loop thread", e)
            })?;

        let default_parallelism = match conf.get_opt_u64(conf::DEFAULT_PARALLELISM)? {
            Some(n) if n > 0 => n as usize,
            _ => threads,
        };
        info!(
            "Running Ember {} as {} on {}",
            env!("CARGO_PKG_VERSION"),
            conf.app_name(),
            conf.get(conf::MASTER)
        );
        let _ = thread_dumps.set(Arc::new(ProcessThreadDumps {
            local: local_executor.clone(),
            cluster: cluster
                .as_ref()
                .map(|c: &(std::net::SocketAddr, ClusterView)| c.1.clone()),
            timeout: std::time::Duration::from_millis(conf.get_time_ms(conf::NETWORK_TIMEOUT)?),
        }));
        let inner = Arc::new(Inner {
            conf,
            master,
            next_rdd_id: AtomicUsize::new(0),
            next_shuffle_id: AtomicUsize::new(0),
            default_parallelism,
            events: tx,
            loop_thread: Mutex::new(Some(handle)),
            stopped: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            app_dir,
            blocks,
            status,
            accumulators,
            broadcasts,
            files,
            broadcast_source,
            local_executor,
            cluster,
            persisted,
            local_memory,
            app_id,
            bus,
            ui: Mutex::new(ui),
            metrics_sinks: Mutex::new(metrics_sinks),
            ui_url,
            progress: Mutex::new(progress),
        });
        files_guard.disarm();
        let stoppable: Arc<dyn crate::shutdown::Stoppable> = inner.clone();
        let stoppable = Arc::downgrade(&stoppable);
        crate::shutdown::register(stoppable);
        Ok(Context {
            owner: Some(Arc::new(OwnerGuard(inner.clone()))),
            inner,
        })
    }

    /// A handle that does not keep the application alive (what RDDs hold).
    pub(crate) fn weak_handle(&self) -> Context {
        Context {
            inner: self.inner.clone(),
            owner: None,
        }
    }

    /// The configuration.
    pub fn conf(&self) -> &EmberConf {
        &self.inner.conf
    }

    /// The master URL this application runs on.
    pub fn master(&self) -> &MasterUrl {
        &self.inner.master
    }

    /// Partitions of `parallelize` and of shuffles when none is given (Spark's
    /// `defaultParallelism`: `ember.default.parallelism`, else the total cores).
    pub fn default_parallelism(&self) -> usize {
        self.inner.default_parallelism
    }

    pub(crate) fn default_shuffle_partitions(&self, upstream: usize) -> usize {
        match self.inner.conf.get_opt_u64(conf::DEFAULT_PARALLELISM) {
            Ok(Some(n)) if n > 0 => n as usize,
            _ => upstream.max(1),
        }
    }

    pub(crate) fn new_rdd_id(&self) -> usize {
        self.inner.next_rdd_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn new_shuffle_id(&self) -> usize {
        self.inner.next_shuffle_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn remove_rdd_blocks(&self, rdd_id: usize) {
        self.inner.persisted.lock().remove(&rdd_id);
        self.inner.blocks.remove_rdd(rdd_id);
        let _ = self.inner.events.send(DriverEvent::RemoveRdd { rdd_id });
    }

    /// Sends a read-only value to the executors, each at most once (Spark's `broadcast`). Capture
    /// the handle with the `_with` forms and read it with [`Broadcast::value`]; see
    /// [`crate::broadcast`].
    pub fn broadcast<T: Data>(&self, value: T) -> Result<Broadcast<T>> {
        let block_size = self.inner.conf.get_size_bytes(conf::BROADCAST_BLOCK_SIZE)?;
        let block_size = usize::try_from(block_size).unwrap_or(usize::MAX).max(1);
        let compress = self.inner.conf.get_bool(conf::BROADCAST_COMPRESS)?;
        let events = self.inner.events.clone();
        let on_unpersist = Box::new(move |id| {
            let _ = events.send(DriverEvent::RemoveBroadcast { id });
        });
        let b = Broadcast::create(
            &self.inner.broadcasts,
            value,
            block_size,
            compress,
            self.inner.broadcast_source,
            on_unpersist,
        )?;
        info!(
            "Created broadcast {} ({} bytes serialized)",
            b.id(),
            b.serialized_size()
        );
        Ok(b)
    }

    /// Every live executor's metrics source (Spark's `ExecutorSource`: `threadpool.*` and
    /// `filesystem.file.*`): read directly in local mode, from the latest heartbeats otherwise.
    pub fn executor_metrics(
        &self,
    ) -> std::collections::BTreeMap<String, crate::metrics::ExecutorSourceMetrics> {
        match &self.inner.local_executor {
            Some(m) => [("driver".to_string(), m.source_metrics())]
                .into_iter()
                .collect(),
            None => self.inner.status.get().executor_metrics,
        }
    }

    /// What the driver's broadcast store sent to executors so far.
    pub fn broadcast_metrics(&self) -> BroadcastMetrics {
        self.inner.broadcasts.metrics()
    }

    /// Adds a file to be fetched by every executor before its next tasks run (Spark's
    /// `addFile`): a local path or a `file://` URL (with `recursive`, a directory), or an
    /// `http://` or `https://` URL. Tasks (and the driver) find it at
    /// [`crate::files::EmberFiles::get`] with its file name (a URL's last path segment). Tasks
    /// of task sets created from now on see it; running ones do not.
    ///
    /// A path that does not exist is an error at once, and so is a directory without
    /// `recursive`. A URL is downloaded by the driver now (a failure is an error at once,
    /// `EmberError::UrlFetchFailed`) and by each executor from the URL before its first task
    /// that needs it (a failure fails the task, which is retried), every download bounded by
    /// `ember.files.fetchTimeout`. Adding a name again with the same contents does nothing
    /// (the same URL again is not even downloaded); with other contents it is an error, unless
    /// `ember.files.overwrite` is true: then executors fetch the new version before their next
    /// task set's tasks. Other schemes (`ftp://`, ...) are refused
    /// (`EmberError::UnsupportedScheme`); `local:` paths, already on every node, are not added
    /// (as Spark, with a warning). See [`crate::files`].
    pub fn add_file(&self, path: &str, recursive: bool) -> Result<()> {
        self.inner.files.add_file(path, recursive)
    }

    /// Adds an archive (`.zip`, `.tar.gz`, `.tgz`, `.tar`) to be fetched and unpacked by every
    /// executor into a directory named after it, or after `#alias` (`env.tar.gz#env`); Spark's
    /// `addArchive`. It is unpacked on the driver too, so an entry that would land outside that
    /// directory (`../x`, `/etc/x`) is an error here. Same rules as [`Context::add_file`].
    pub fn add_archive(&self, path: &str) -> Result<()> {
        self.inner.files.add_archive(path)
    }

    /// The paths of the files added so far (Spark's `listFiles`).
    pub fn list_files(&self) -> Vec<String> {
        self.inner.files.list(crate::files::Kind::File)
    }

    /// The paths of the archives added so far (Spark's `listArchives`).
    pub fn list_archives(&self) -> Vec<String> {
        self.inner.files.list(crate::files::Kind::Archive)
    }

    /// How many times executors fetched the added `name` from the driver. For tests.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn file_fetch_count(&self, name: &str) -> u64 {
        self.inner.files.fetch_count(name)
    }

    /// A new accumulator starting at `initial` (Spark's `SparkContext.register`). Named ones
    /// appear in [`Context::accumulables`].
    pub fn accumulator<A: AccumulatorValue>(
        &self,
        initial: A,
        name: Option<&str>,
    ) -> Accumulator<A> {
        self.inner
            .accumulators
            .register(initial, name.map(str::to_string))
    }

    /// A named `i64` sum (Spark's `longAccumulator(name)`).
    pub fn long_accumulator(&self, name: &str) -> Accumulator<LongSum> {
        self.accumulator(LongSum::default(), Some(name))
    }

    /// A named `f64` sum (Spark's `doubleAccumulator(name)`).
    pub fn double_accumulator(&self, name: &str) -> Accumulator<DoubleSum> {
        self.accumulator(DoubleSum::default(), Some(name))
    }

    /// A named list of values (Spark's `collectionAccumulator(name)`).
    pub fn collection_accumulator<T>(&self, name: &str) -> Accumulator<Collection<T>>
    where
        Collection<T>: AccumulatorValue,
    {
        self.accumulator(Collection::default(), Some(name))
    }

    /// Named accumulators' totals per stage, over the stages' successful tasks.
    pub fn accumulables(&self) -> Vec<AccumulableInfo> {
        self.inner.accumulators.accumulables()
    }

    /// The address executors join (cluster masters only).
    pub fn driver_address(&self) -> Option<std::net::SocketAddr> {
        self.inner.cluster.as_ref().map(|c| c.0)
    }

    /// The executors registered now (cluster masters; empty in local mode).
    pub fn executor_infos(&self) -> Vec<ExecutorInfo> {
        self.inner
            .cluster
            .as_ref()
            .map(|c| c.1.executors())
            .unwrap_or_default()
    }

    /// The task binaries kept now by the driver and by each executor (cluster masters; local
    /// mode ships none). Entries go when their stage attempt is over.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn task_binaries(&self) -> Option<crate::scheduler::cluster_backend::TaskBinaryCounts> {
        self.inner.cluster.as_ref().map(|c| c.1.task_binaries())
    }

    /// Process ids of the executors registered now (cluster masters).
    pub fn executor_pids(&self) -> Vec<u32> {
        self.executor_infos().into_iter().map(|e| e.pid).collect()
    }

    /// The application's id (Spark's `applicationId`): `local-<start ms>` in local mode,
    /// `app-<yyyyMMddHHmmss>-<n>` on cluster masters; never a dot, which Spark's History Server
    /// would read as a codec in the event log's name.
    pub fn application_id(&self) -> &str {
        &self.inner.app_id
    }

    /// Where the web UI and the REST API are (`http://host:port`), when `ember.ui.enabled`
    /// (Spark's `uiWebUrl`).
    pub fn ui_url(&self) -> Option<&str> {
        self.inner.ui_url.as_deref()
    }

    /// Registers a listener of the application's events (Spark's `addSparkListener`). It gets
    /// a queue and a thread of its own; it sees every event from now on, in order, unless it
    /// falls more than `ember.scheduler.listenerbus.eventqueue.capacity` events behind (then
    /// events are dropped and counted, see [`Context::listener_queue_stats`]).
    pub fn add_listener<L: Listener>(&self, listener: L) -> Result<()> {
        let name = std::any::type_name::<L>()
            .rsplit("::")
            .next()
            .unwrap_or("listener")
            .to_string();
        self.inner
            .bus
            .add_sink(&name, Box::new(listener))
            .map_err(|e| EmberError::io(format!("listener thread {name}"), e))
    }

    /// Each listener queue's counts: events waiting, handled, dropped.
    pub fn listener_queue_stats(&self) -> Vec<QueueStats> {
        self.inner.bus.stats()
    }

    /// Waits until every listener has handled the events posted so far, at most `timeout`;
    /// returns whether they have (Spark's `listenerBus.waitUntilEmpty`).
    pub fn wait_for_listeners(&self, timeout: std::time::Duration) -> bool {
        self.inner.bus.wait_until_empty(timeout)
    }

    /// Task counts and summed task metrics of the application so far.
    pub fn status(&self) -> AppStatus {
        self.inner.status.get()
    }

    /// Waits until the application's status satisfies `pred`, for at most `timeout`; returns
    /// whether it does. For tests and tools that must wait for tasks to start or finish.
    pub fn wait_for_status(
        &self,
        timeout: std::time::Duration,
        pred: impl FnMut(&AppStatus) -> bool,
    ) -> bool {
        self.inner.status.wait_for(timeout, pred)
    }

    /// Makes the driver forget an executor's block manager and the blocks it holds, leaving the
    /// executor registered (as a driver whose view of storage was lost). For tests of the
    /// heartbeat's re-registration.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn forget_block_manager(&self, executor_id: &str) {
        self.inner.blocks.remove_executor(executor_id)
    }

    /// Cached partitions of an RDD and their size in memory: `(partitions, bytes)`.
    pub fn rdd_storage_info(&self, rdd_id: usize) -> (usize, u64) {
        self.inner.blocks.rdd_storage(rdd_id)
    }

    /// Records a persisted RDD for the storage status.
    pub(crate) fn note_persisted(
        &self,
        rdd_id: usize,
        name: Option<String>,
        level: StorageLevel,
        partitions: usize,
    ) {
        // (Listeners learn the name from the stages that compute the RDD.)
        self.inner.persisted.lock().insert(
            rdd_id,
            PersistedRdd {
                name,
                level,
                partitions,
            },
        );
    }

    /// The persisted RDDs that have cached partitions, by id, with their sizes in memory and on
    /// disk (Spark's `getRDDStorageInfo`).
    pub fn get_rdd_storage_info(&self) -> Vec<RddStorageInfo> {
        let persisted = self.inner.persisted.lock().clone();
        persisted
            .into_iter()
            .filter_map(|(id, p)| {
                let (cached, memory_size, disk_size) = self.inner.blocks.rdd_blocks(id);
                (cached > 0).then_some(RddStorageInfo {
                    id,
                    name: p.name,
                    storage_level: p.level,
                    num_partitions: p.partitions,
                    num_cached_partitions: cached,
                    memory_size,
                    disk_size,
                })
            })
            .collect()
    }

    /// The storage of every executor: its memory, what its cached blocks use, its evictions, and
    /// its memory manager's metrics (live for the embedded executor, as of the last block update
    /// or heartbeat for executor processes).
    pub fn executor_storage_status(&self) -> Vec<ExecutorStorageStatus> {
        let mut status = self.inner.blocks.storage_status();
        if let Some(mm) = &self.inner.local_memory {
            for s in &mut status {
                s.memory = mm.metrics();
            }
        }
        status
    }

    /// Waits until `pred` holds for [`Context::executor_storage_status`], at most `timeout`;
    /// returns whether it does. Executor processes report block changes asynchronously, e.g. the
    /// memory an `unpersist` freed.
    pub fn wait_for_storage(
        &self,
        timeout: std::time::Duration,
        mut pred: impl FnMut(&[ExecutorStorageStatus]) -> bool,
    ) -> bool {
        let local = self.inner.local_memory.clone();
        self.inner.blocks.wait_for(timeout, |status| match &local {
            Some(mm) => {
                let live: Vec<ExecutorStorageStatus> = status
                    .iter()
                    .cloned()
                    .map(|mut s| {
                        s.memory = mm.metrics();
                        s
                    })
                    .collect();
                pred(&live)
            }
            None => pred(status),
        })
    }

    /// Sets a property of jobs submitted from this thread, e.g. `ember.scheduler.pool`.
    pub fn set_local_property(&self, key: &str, value: Option<&str>) {
        LOCAL_PROPERTIES.with(|p| {
            let mut p = p.borrow_mut();
            match value {
                Some(v) => p.insert(key.to_string(), v.to_string()),
                None => p.remove(key),
            };
        });
    }

    /// A property of this thread's jobs.
    pub fn get_local_property(&self, key: &str) -> Option<String> {
        LOCAL_PROPERTIES.with(|p| p.borrow().get(key).cloned())
    }

    /// Puts the jobs this thread submits from now on into a group, for `cancel_job_group`.
    pub fn set_job_group(&self, group: &str) {
        self.set_local_property(JOB_GROUP, Some(group));
    }

    /// Removes this thread's job group.
    pub fn clear_job_group(&self) {
        self.set_local_property(JOB_GROUP, None);
    }

    /// Describes the jobs this thread submits from now on (Spark's `setJobDescription`, the
    /// local property `ember.job.description`): the web UI shows it in place of the call site,
    /// the REST API as the jobs' and stages' `description`, and the event log keeps it with the
    /// job's properties. `None` removes it.
    pub fn set_job_description(&self, description: Option<&str>) {
        self.set_local_property(crate::status::store::JOB_DESCRIPTION, description);
    }

    /// Cancels every running job of a group; their actions return `JobCancelled`.
    pub fn cancel_job_group(&self, group: &str) {
        let _ = self.inner.events.send(DriverEvent::CancelJobGroup {
            group: group.to_string(),
        });
    }

    /// Cancels one job; its action returns `JobCancelled` ("Job 3 cancelled ", as Spark's
    /// `cancelJob` without a reason words it).
    pub fn cancel_job(&self, job_id: JobId) {
        let _ = self.inner.events.send(DriverEvent::CancelJob {
            job_id,
            reason: String::new(),
        });
    }

    /// Runs a job of type-erased pieces (Spark's `runJob` below its typed front, which is in
    /// `crate::rdd`): `func` on each of `partitions` of `rdd`, handing each partition's value to
    /// `deliver` with its position in `partitions` (as they arrive, in batches of up to 256, every
    /// one before the job's end). Returns when every partition has been delivered, or with the
    /// job's failure.
    pub(crate) fn run_job_erased(
        &self,
        rdd: Arc<dyn RddBase>,
        func: Arc<dyn ResultFunc>,
        partitions: Vec<usize>,
        call_site: String,
        mut deliver: impl FnMut(usize, TaskValue) -> Result<()>,
    ) -> Result<()> {
        let (tx, rx) = unbounded();
        let job = JobSubmission {
            rdd,
            body: TaskBody::new(TaskKind::Result(func)),
            partitions,
            pool: self
                .get_local_property(conf::SCHEDULER_POOL)
                .unwrap_or_else(|| "default".into()),
            group: self.get_local_property(JOB_GROUP),
            call_site,
            properties: LOCAL_PROPERTIES.with(|p| {
                p.borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        };
        self.inner
            .events
            .send(DriverEvent::JobSubmitted {
                job,
                listener: tx,
                id_reply: None,
            })
            .map_err(|_| EmberError::ContextStopped)?;
        loop {
            match crate::handoff::recv(&rx) {
                Ok(JobEvent::TaskSucceeded {
                    output_index,
                    value,
                }) => deliver(output_index, value)?,
                Ok(JobEvent::Succeeded) => return Ok(()),
                // Stopped by SIGINT/SIGTERM: the process exits once the cleanup is done.
                Ok(JobEvent::Failed(_)) | Err(_) if crate::shutdown::stopping_for_signal() => {
                    crate::shutdown::wait_for_exit()
                }
                Ok(JobEvent::Failed(e)) => return Err(e.into()),
                Err(_) => return Err(EmberError::ContextStopped),
            }
        }
    }

    /// Stops the application: cancels running jobs, stops the executors, deletes shuffle files.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Whether the application has stopped.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }
}

/// Spark's application ids: `local-<ms>` (local mode) and `app-<yyyyMMddHHmmss>-<NNNN>`
/// (cluster masters). Ids of one process never repeat, even for contexts started in the same
/// millisecond (each names its own event log).
fn application_id(master: &MasterUrl, start_ms: u64) -> String {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    match master {
        MasterUrl::Local { .. } => {
            let mut last = LAST.load(Ordering::SeqCst);
            loop {
                let next = start_ms.max(last + 1);
                match LAST.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => return format!("local-{next}"),
                    Err(now) => last = now,
                }
            }
        }
        _ => format!(
            "app-{}-{:04}",
            crate::util::compact_date(start_ms as i64),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

/// Who runs the application (Spark's `sparkUser`: `SPARK_USER`, else the login name).
fn spark_user() -> String {
    ["EMBER_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The application's environment for listeners: every `ember.*` key (set, or at its default)
/// and the process's properties, secrets redacted with `ember.redaction.regex`.
fn environment(
    conf: &EmberConf,
    app_id: &str,
    start_ms: u64,
    ui_url: Option<&str>,
) -> EnvironmentDetails {
    let mut props: std::collections::BTreeMap<String, String> = conf::ENTRIES
        .iter()
        .filter(|e| !e.default.is_empty())
        .map(|e| (e.key.to_string(), e.default.to_string()))
        .collect();
    for (k, v) in conf.iter() {
        props.insert(k.to_string(), v.to_string());
    }
    props.insert("ember.app.id".into(), app_id.to_string());
    props.insert("ember.app.startTime".into(), start_ms.to_string());
    if let Some(url) = ui_url {
        props.insert("ember.ui.url".into(), url.to_string());
    }
    let regex = conf.get(conf::REDACTION_REGEX).to_string();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let system = vec![
        ("os.arch".to_string(), std::env::consts::ARCH.to_string()),
        ("os.name".to_string(), std::env::consts::OS.to_string()),
        ("process.id".to_string(), std::process::id().to_string()),
        (
            "user.dir".to_string(),
            std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("user.name".to_string(), spark_user()),
    ];
    EnvironmentDetails {
        runtime: vec![
            ("Java Home".into(), String::new()),
            (
                "Java Version".into(),
                format!("none: Ember {} is native code", env!("CARGO_PKG_VERSION")),
            ),
            ("Scala Version".into(), String::new()),
        ],
        spark_properties: crate::status::redact::redact(&regex, props),
        hadoop_properties: Vec::new(),
        system_properties: crate::status::redact::redact(&regex, system),
        metrics_properties: Vec::new(),
        classpath_entries: vec![(exe, "System Classpath".into())],
    }
}

/// Refuses a job whose lineage has an RDD built with an argument no job can run with (a
/// partition count of 0, …: [`EmberError::InvalidArgument`]) or persisted with replication, which
/// Ember does not support (see `Rdd::persist`).
pub(crate) fn check_lineage(rdd: &Arc<dyn RddBase>) -> Result<()> {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut stack = vec![rdd.clone()];
    while let Some(r) = stack.pop() {
        if !seen.insert(r.id()) {
            continue;
        }
        if let Some((argument, message)) = r.invalid_argument() {
            return Err(EmberError::InvalidArgument { argument, message });
        }
        let level = r.storage_level();
        if level.replication > 1 {
            return Err(EmberError::ReplicationNotSupported {
                rdd_id: r.id(),
                level: level.to_string(),
            });
        }
        for dep in r.dependencies() {
            match dep {
                Dependency::Narrow { rdd, .. } => stack.push(rdd),
                Dependency::Shuffle(s) => stack.push(s.rdd()),
            }
        }
    }
    Ok(())
}

/// Starts the network side of a cluster master: the listener, and for `local-cluster` the
/// executor processes, waiting until they have all registered.
fn start_cluster(
    conf: &EmberConf,
    events: Sender<DriverEvent>,
    tracker: Arc<MapOutputTracker>,
    block_master: Arc<BlockManagerMaster>,
    broadcasts: Arc<BroadcastManager>,
    files: Arc<FileServer>,
    local: Option<(usize, usize, u64)>,
    standalone: Option<(String, u16)>,
) -> Result<ClusterBackend> {
    let mut conf = conf.clone();
    let (host, port) = match &standalone {
        Some((h, p)) => (h.clone(), *p),
        None => {
            let h = match conf.get(conf::DRIVER_HOST) {
                "" => "127.0.0.1".to_string(),
                h => h.to_string(),
            };
            (
                h,
                conf.get_u64_at_most(conf::DRIVER_PORT, u16::MAX.into())? as u16,
            )
        }
    };
    let ip: std::net::IpAddr = host.parse().map_err(|_| EmberError::Config {
        key: conf::DRIVER_HOST.into(),
        value: host.clone(),
        reason: "the driver's bind address must be an IP address".into(),
    })?;
    let configured_secret = match conf.get(conf::AUTHENTICATE_SECRET) {
        "" => std::env::var(crate::rpc::auth::SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty()),
        s => Some(s.to_string()),
    };
    let secret = if local.is_some() {
        // local-cluster: one secret per application, unless one was given.
        Some(configured_secret.unwrap_or_else(crate::rpc::auth::generate_secret))
    } else if conf.get_bool(conf::AUTHENTICATE)? {
        Some(configured_secret.ok_or_else(|| {
            EmberError::Config {
                key: conf::AUTHENTICATE_SECRET.into(),
                value: String::new(),
                reason: "ember.authenticate is true but no secret is set \
                         (ember.authenticate.secret or EMBER_AUTH_SECRET)"
                    .into(),
            }
        })?)
    } else {
        None
    };
    let encrypt = conf.get_bool(conf::NETWORK_CRYPTO_ENABLED)?;
    let security =
        Security::from_settings(secret.map(Secret::from), encrypt).map_err(|reason| {
            EmberError::Config {
                key: conf::NETWORK_CRYPTO_ENABLED.into(),
                value: "true".into(),
                reason,
            }
        })?;
    security
        .check_listen(ip, "the driver's listener")
        .map_err(|reason| EmberError::Config {
            key: conf::AUTHENTICATE.into(),
            value: conf.get(conf::AUTHENTICATE).into(),
            reason,
        })?;
    // Refused before anything listens: executors of such a build could not decode task bodies.
    let build_id = crate::image::presented_build_id(conf.get(conf::TESTING_BUILD_ID))
        .map_err(EmberError::UnsupportedBuild)?;
    // Executors get the application's configuration at registration, but never the secret.
    conf.insert(conf::AUTHENTICATE_SECRET, "");
    let settings = ClusterSettings {
        build_id,
        bind: std::net::SocketAddr::new(ip, port),
        security,
        max_frame: conf.get_size_bytes(conf::RPC_MESSAGE_MAX_SIZE)? as usize,
        timeout: std::time::Duration::from_millis(conf.get_time_ms(conf::NETWORK_TIMEOUT)?),
        conf: conf
            .iter()
            .filter(|(k, _)| *k != conf::AUTHENTICATE_SECRET)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let timeout = settings.timeout;
    let mut backend =
        ClusterBackend::start(settings, events, tracker, block_master, broadcasts, files)?;
    if let Some((n, cores, memory_mb)) = local {
        backend.set_max_executor_retries(conf.get_u64(conf::DEPLOY_MAX_EXECUTOR_RETRIES)? as usize);
        backend.spawn_local_executors(n, cores, memory_mb)?;
        backend.wait_for_executors(n, timeout)?;
    }
    Ok(backend)
}
