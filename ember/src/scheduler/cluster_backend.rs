//! The cluster backend (Spark's `CoarseGrainedSchedulerBackend`): executors in other processes,
//! joined over authenticated TCP connections, on this machine (`local-cluster[N,C,MEM]`, spawned
//! from this very executable) or on others (`ember://HOST:PORT`, started by an operator).
//!
//! Network I/O runs on a small tokio runtime; the event loop calls the [`SchedulerBackend`]
//! methods, which only touch the shared executor table and queue encoded frames.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};
use rustc_hash::{FxHashMap, FxHashSet};
use ember_net::shared_writer::SharedWriter;
use tracing::{debug, info, warn};

use super::backend::{LaunchFailure, SchedulerBackend};
use super::event_loop::DriverEvent;
use crate::error::{EmberError, Result};
use crate::rpc::connection::Connection;
use crate::rpc::messages::{ToDriver, ToExecutor, WirePayload, WireTask, WireValue};
use crate::rpc::secret::Security;
use crate::rpc::RpcError;
use crate::task::MapOutputSource;
use crate::task::Shipped;
use crate::task::{
    DirectTaskResult, ExecutorId, StageId, StatusUpdate, TaskDescription, TaskEndReason, TaskId,
    TaskOutcome, TaskValue,
};
use ember_net::block_client::BlockClient;
use ember_net::block_server::{BlockServer, BlockStore, ShuffleBlock};
use ember_net::protocol::{BlockRequest, BlockResponse};
use ember_scheduler::map_output_tracker::MapOutputTracker;
use ember_scheduler::task_set::WorkerOffer;

/// How the driver's network side is set up.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Address to listen on for executors.
    pub bind: SocketAddr,
    /// The shared secret (`ember.authenticate.secret`, absent when authentication is off) and
    /// `ember.network.crypto.enabled`. `Debug` redacts the secret.
    pub security: Security,
    /// `ember.rpc.message.maxSize` in bytes.
    pub max_frame: usize,
    /// `ember.network.timeout`.
    pub timeout: Duration,
    /// The application's configuration, sent to executors at registration.
    pub conf: Vec<(String, String)>,
    /// This driver's build id (`crate::image`), which executors must match and check.
    pub build_id: String,
}

struct ExecutorData {
    host: String,
    pid: u32,
    total_cores: u32,
    free_cores: u32,
    /// The connection to the executor, written by whichever thread sends (the event loop's for
    /// task launches): no hop through a writer task (`ember_net::shared_writer`).
    out: Arc<SharedWriter<ToExecutor>>,
    /// Task binaries this executor already has.
    binaries: FxHashSet<u64>,
}

#[derive(Default)]
struct State {
    executors: BTreeMap<ExecutorId, ExecutorData>,
    /// Task binaries the driver holds now (`ClusterBackend::binaries`), for
    /// [`ClusterView::task_binaries`].
    driver_binaries: usize,
    next_id: usize,
    /// Every id an executor has had in this application: as in Spark, an id is never given
    /// twice, so what the scheduler remembers of a lost executor (its failure epoch, its
    /// outputs) can never be mistaken for a newcomer's.
    used_ids: std::collections::HashSet<ExecutorId>,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when an executor registers or its connection ends.
    registered: Condvar,
    settings: ClusterSettings,
    build_id: String,
    events: Sender<DriverEvent>,
    tracker: Arc<MapOutputTracker>,
    blocks: BlockClient,
    block_master: Arc<crate::storage::BlockManagerMaster>,
    /// Thread dumps asked of executors and not answered yet, by request id.
    dumps: Mutex<FxHashMap<u64, crossbeam_channel::Sender<Vec<crate::threaddump::ThreadStack>>>>,
    next_dump: std::sync::atomic::AtomicU64,
}

/// A registered executor as the application sees it (Spark's `SparkExecutorInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorInfo {
    pub executor_id: ExecutorId,
    pub host: String,
    pub total_cores: u32,
    /// Process id the executor reported at registration (on its own host).
    pub pid: u32,
}

/// Reads the cluster backend's registered executors from any thread.
#[derive(Clone)]
pub struct ClusterView(Arc<Shared>);

/// How many task binaries are kept now: by the driver, and by each executor (what the driver
/// sent it and has not told it to drop, which is what the executor holds).
#[cfg(feature = "testing")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskBinaryCounts {
    /// Task binaries of stage attempts not over yet, on the driver.
    pub driver: usize,
    /// Task binaries each executor holds.
    pub executors: BTreeMap<ExecutorId, usize>,
}

impl ClusterView {
    /// The task binaries kept now (for the project's tests: `Context::task_binaries`).
    #[cfg(feature = "testing")]
    pub fn task_binaries(&self) -> TaskBinaryCounts {
        let st = self.0.state.lock();
        TaskBinaryCounts {
            driver: st.driver_binaries,
            executors: st
                .executors
                .iter()
                .map(|(id, e)| (id.clone(), e.binaries.len()))
                .collect(),
        }
    }

    /// Asks executor `id` for its threads (Spark's `TriggerThreadDump`) and waits for the
    /// answer at most `timeout`; `None` for an executor that is not registered or did not answer.
    pub fn thread_dump(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Option<Vec<crate::threaddump::ThreadStack>> {
        let request_id = self
            .0
            .next_dump
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.0.dumps.lock().insert(request_id, tx);
        let bytes = postcard::to_allocvec(&ToExecutor::ThreadDump { request_id }).ok();
        let sent = bytes.is_some_and(|b| {
            self.0
                .state
                .lock()
                .executors
                .get(id)
                .is_some_and(|e| e.out.send_bytes(&b).is_ok())
        });
        let answer = if sent { rx.recv_timeout(timeout).ok() } else { None };
        self.0.dumps.lock().remove(&request_id);
        answer
    }

    /// The registered executors, by id.
    pub fn executors(&self) -> Vec<ExecutorInfo> {
        let st = self.0.state.lock();
        st.executors
            .iter()
            .map(|(id, e)| ExecutorInfo {
                executor_id: id.clone(),
                host: e.host.clone(),
                total_cores: e.total_cores,
                pid: e.pid,
            })
            .collect()
    }
}

/// Executors in their own processes.
pub struct ClusterBackend {
    /// The driver's block server (broadcast pieces) and its address.
    broadcast_server: (SocketAddr, BlockServer),
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    addr: SocketAddr,
    binaries: FxHashMap<(StageId, u32), (u64, Arc<Shipped>)>,
    next_binary: u64,
    running: FxHashMap<TaskId, (ExecutorId, u32)>,
    /// The executor processes this driver spawned (`local-cluster`), with the `--executor-id`
    /// each was given (which names its scratch directory).
    children: Vec<(Child, usize)>,
    /// Process ids of the registered executors the event loop has been told of (only those
    /// are offered), to find a lost one's process.
    pids: FxHashMap<ExecutorId, u32>,
    /// Executors this driver stopped itself (heartbeat expiry): their exit is not the app's doing.
    killed: FxHashSet<ExecutorId>,
    /// `local-cluster`'s executor shape, to replace executors that are lost.
    local_shape: Option<(usize, u64)>,
    next_local_id: usize,
    /// Executors lost since one last registered (Spark's standalone retry count); replacement
    /// stops past `ember.deploy.maxExecutorRetries`, so an executor that dies at start-up cannot
    /// make the driver spawn processes forever.
    replacements: usize,
    max_replacements: usize,
    /// The last executor lost without a replacement.
    last_lost: Option<ExecutorId>,
}

impl ClusterBackend {
    /// Starts listening for executors.
    pub fn start(
        settings: ClusterSettings,
        events: Sender<DriverEvent>,
        tracker: Arc<MapOutputTracker>,
        block_master: Arc<crate::storage::BlockManagerMaster>,
        broadcasts: Arc<crate::broadcast::BroadcastManager>,
        files: Arc<crate::files::FileServer>,
    ) -> Result<Self> {
        let runtime = crate::rpc::network_runtime("ember-driver-rpc")?;
        // The driver's block server: executors fetch broadcast pieces and added files from it.
        let (server, server_addr) = BlockServer::start(
            runtime.handle().clone(),
            SocketAddr::new(settings.bind.ip(), 0),
            settings.security.clone(),
            settings.max_frame,
            Arc::new(DriverStore { broadcasts, files }),
        )
        .map_err(|e| {
            EmberError::network(
                format!(
                    "I/O error on {}: cannot start the driver's block server",
                    settings.bind.ip()
                ),
                e,
            )
        })?;
        let listener =
            std::net::TcpListener::bind(settings.bind).map_err(|e| EmberError::DriverListen {
                addr: settings.bind.to_string(),
                source: crate::error::SharedIoError::new(e),
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| EmberError::io("driver listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| EmberError::io("driver listener", e))?;
        let blocks = BlockClient::new(
            runtime.handle().clone(),
            settings.security.clone(),
            settings.max_frame,
            settings.timeout,
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            registered: Condvar::new(),
            build_id: settings.build_id.clone(),
            settings,
            events,
            tracker,
            blocks,
            block_master,
            dumps: Mutex::new(FxHashMap::default()),
            next_dump: std::sync::atomic::AtomicU64::new(0),
        });
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|e| EmberError::io("driver listener", e))?
        };
        runtime.spawn(accept_loop(listener, shared.clone()));
        info!("Driver listening for executors on {addr}");
        Ok(ClusterBackend {
            broadcast_server: (server_addr, server),
            runtime: Some(runtime),
            shared,
            addr,
            binaries: FxHashMap::default(),
            next_binary: 0,
            running: FxHashMap::default(),
            children: Vec::new(),
            pids: FxHashMap::default(),
            killed: FxHashSet::default(),
            local_shape: None,
            next_local_id: 0,
            replacements: 0,
            max_replacements: 10,
            last_lost: None,
        })
    }

    /// The address executors connect to.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Where executors fetch broadcast pieces and added files: the driver's block server.
    pub fn broadcast_address(&self) -> SocketAddr {
        self.broadcast_server.0
    }

    fn send_to_all(&self, msg: &ToExecutor) {
        let st = self.shared.state.lock();
        if let Ok(bytes) = postcard::to_allocvec(msg) {
            for e in st.executors.values() {
                let _ = e.out.send_bytes(&bytes);
            }
        }
    }

    /// Sets `ember.deploy.maxExecutorRetries`: how many lost `local-cluster` executors in a row
    /// are replaced before the application gives up (0: never replace).
    pub fn set_max_executor_retries(&mut self, n: usize) {
        self.max_replacements = n;
    }

    /// Spawns `n` executor processes of this executable (`local-cluster`), passing the secret
    /// in the environment (not on the command line, where other users could read it).
    pub fn spawn_local_executors(&mut self, n: usize, cores: usize, memory_mb: u64) -> Result<()> {
        self.local_shape = Some((cores, memory_mb));
        for _ in 0..n {
            let i = self.next_local_id;
            self.next_local_id += 1;
            let security = &self.shared.settings.security;
            // The settings an executor needs before it can even connect travel with its
            // arguments, as Spark passes its startup settings (`isExecutorStartupConf`).
            let args = format!(
                "--driver {} --cores {cores} --memory {memory_mb}m --executor-id {i} --conf {}={}",
                self.addr,
                crate::conf::NETWORK_CRYPTO_ENABLED,
                security.encrypts()
            );
            let mut cmd = Command::new("/proc/self/exe");
            // Named after the program and its role in `ps` (`wordcount executor --driver …`); the
            // arguments are read from the environment, these only show what the process is.
            std::os::unix::process::CommandExt::arg0(&mut cmd, program_name());
            cmd.arg("executor").args(args.split_whitespace());
            // A process group of its own: a Ctrl-C or a signal to the driver's group reaches
            // only the driver, which then stops its executors itself (and a SIGKILL of the
            // group leaves them alive to see the connection drop and clean up).
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            cmd.env(crate::executor::process::EXECUTOR_ENV, args)
                .stdin(Stdio::null());
            match security.secret() {
                Some(s) => cmd.env(SECRET_ENV, String::from_utf8_lossy(s.expose()).into_owned()),
                None => cmd.env_remove(SECRET_ENV),
            };
            // Executors' stdout goes to the driver's stderr: the application's stdout stays its
            // own.
            if let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
                cmd.stdout(Stdio::from(fd));
            }
            let child = cmd
                .spawn()
                .map_err(|e| EmberError::io("/proc/self/exe (executor process)", e))?;
            debug!("spawned executor process {} (pid {})", i, child.id());
            self.children.push((child, i));
        }
        Ok(())
    }

    /// Waits until `n` executors have registered, at most `timeout`.
    pub fn wait_for_executors(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.shared.state.lock();
        while st.executors.len() < n {
            if self
                .shared
                .registered
                .wait_until(&mut st, deadline)
                .timed_out()
            {
                return Err(EmberError::ExecutorsNotRegistered {
                    registered: st.executors.len(),
                    expected: n,
                    timeout_secs: timeout.as_secs(),
                });
            }
        }
        Ok(())
    }

    /// Process ids of the executors this driver spawned (`local-cluster`).
    #[cfg(any(test, feature = "testing"))]
    pub fn child_pids(&self) -> Vec<u32> {
        self.children.iter().map(|(c, _)| c.id()).collect()
    }

    /// Executors registered now.
    #[cfg(any(test, feature = "testing"))]
    pub fn executor_count(&self) -> usize {
        self.shared.state.lock().executors.len()
    }

    /// A handle that lists the registered executors from any thread.
    pub fn view(&self) -> ClusterView {
        ClusterView(self.shared.clone())
    }

    /// Forgets the executor processes that have exited, deleting their scratch directories
    /// (Spark's Worker deletes an executor's directories too): one that died without stopping
    /// (SIGKILL, abort) could not delete its own.
    fn reap_exited(&mut self) {
        self.children.retain_mut(|(c, id)| match c.try_wait() {
            Ok(Some(_)) => {
                remove_work_dir(c.id(), *id);
                false
            }
            _ => true,
        });
    }

    /// Waits briefly for a lost executor's process to exit (its connection closes just before
    /// the process ends), so that it can be reaped and cleaned up now; returns its exit status
    /// (as SPARK-39957 waits for the worker's report of it).
    fn await_exit(&mut self, executor_id: &ExecutorId) -> Option<std::process::ExitStatus> {
        let pid = self.pids.remove(executor_id)?;
        let (child, _) = self.children.iter_mut().find(|(c, _)| c.id() == pid)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    debug!(
                        "executor {executor_id} (pid {pid}) closed its connection but has not \
                         exited yet"
                    );
                    return None;
                }
            }
        }
    }

    fn binary_for(&mut self, t: &TaskDescription) -> Result<(u64, Arc<Shipped>)> {
        let key = (t.stage_id, t.stage_attempt_id);
        if let Some(b) = self.binaries.get(&key) {
            return Ok(b.clone());
        }
        let shipped = Arc::new(t.kind.ship()?);
        let id = self.next_binary;
        self.next_binary += 1;
        self.binaries.insert(key, (id, shipped.clone()));
        self.shared.state.lock().driver_binaries = self.binaries.len();
        Ok((id, shipped))
    }
}

pub use crate::rpc::auth::SECRET_ENV;

/// What the driver's block server hands out: broadcast pieces, and the files added with
/// `add_file`/`add_archive` (their manifests, then ranges of their files).
struct DriverStore {
    broadcasts: Arc<crate::broadcast::BroadcastManager>,
    files: Arc<crate::files::FileServer>,
}

impl BlockStore for DriverStore {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        if crate::files::FileServer::is_manifest_id(id) {
            self.files.manifest_bytes(id)
        } else {
            self.broadcasts.get_bytes(id)
        }
    }

    fn remove(&self, _id: &str) -> bool {
        // Nothing the driver serves is removed by a remote request.
        false
    }

    fn open_file_range(
        &self,
        file_id: &str,
        offset: u64,
        len: u64,
    ) -> std::result::Result<ShuffleBlock, String> {
        self.files.open_range(file_id, offset, len)
    }
}

impl SchedulerBackend for ClusterBackend {
    fn executor_cores(&self) -> Vec<u32> {
        let st = self.shared.state.lock();
        st.executors.values().map(|e| e.total_cores).collect()
    }

    fn offers(&mut self) -> Vec<WorkerOffer> {
        let st = self.shared.state.lock();
        // An executor registers on a connection thread, and the event loop learns of it later:
        // offering it before then would launch tasks (and post their TaskStart) ahead of its
        // ExecutorAdded. Spark's DriverEndpoint posts ExecutorAdded before any offer of it.
        st.executors
            .iter()
            .filter(|(id, _)| self.pids.contains_key(*id))
            .map(|(id, e)| WorkerOffer {
                executor_id: id.clone(),
                host: e.host.clone(),
                cores: e.free_cores,
            })
            .collect()
    }

    fn launch_tasks(&mut self, tasks: Vec<TaskDescription>) -> Vec<LaunchFailure> {
        let mut failures = Vec::new();
        let max = self.shared.settings.max_frame;
        for t in tasks {
            let (binary_id, shipped) = match self.binary_for(&t) {
                Ok(b) => b,
                Err(e) => {
                    failures.push(LaunchFailure {
                        task_id: t.task_id,
                        executor_id: t.executor_id.clone(),
                        message: e.to_string(),
                        executor_gone: false,
                    });
                    continue;
                }
            };
            let mut st = self.shared.state.lock();
            let Some(exec) = st.executors.get_mut(&t.executor_id) else {
                failures.push(LaunchFailure {
                    task_id: t.task_id,
                    executor_id: t.executor_id.clone(),
                    message: format!("executor {} is gone", t.executor_id),
                    executor_gone: true,
                });
                continue;
            };
            let first = !exec.binaries.contains(&binary_id);
            let wire = WireTask {
                task_id: t.task_id,
                attempt_number: t.attempt_number,
                index: t.index,
                partition_id: t.partition_id,
                stage_id: t.stage_id,
                stage_attempt_id: t.stage_attempt_id,
                cpus: t.cpus,
                barrier_tasks: t.barrier_tasks,
                binary_id,
                binary: first.then(|| (*shipped).clone()),
                dependencies: t.dependencies.clone(),
            };
            let bytes = match postcard::to_allocvec(&ToExecutor::LaunchTask(wire)) {
                Ok(b) => b,
                Err(e) => {
                    failures.push(LaunchFailure {
                        task_id: t.task_id,
                        executor_id: t.executor_id.clone(),
                        message: e.to_string(),
                        executor_gone: false,
                    });
                    continue;
                }
            };
            if bytes.len() >= max {
                // Spark's CoarseGrainedSchedulerBackend.launchTasks message.
                let message = format!(
                    "Serialized task {}:{} was {} bytes, which exceeds max allowed: \
                     ember.rpc.message.maxSize ({} bytes). Consider increasing \
                     ember.rpc.message.maxSize or using broadcast variables for large values.",
                    t.task_id,
                    t.index,
                    bytes.len(),
                    max
                );
                failures.push(LaunchFailure {
                    task_id: t.task_id,
                    executor_id: t.executor_id.clone(),
                    message,
                    executor_gone: false,
                });
                continue;
            }
            exec.free_cores = exec.free_cores.saturating_sub(t.cpus);
            exec.binaries.insert(binary_id);
            debug!(
                "Launching task {} on executor id: {} hostname: {}.",
                t.task_id, t.executor_id, exec.host
            );
            if exec.out.send_bytes(&bytes).is_err() {
                warn!(
                    "executor {} connection closed before task {} could be sent",
                    t.executor_id, t.task_id
                );
            }
            self.running
                .insert(t.task_id, (t.executor_id.clone(), t.cpus));
        }
        failures
    }

    fn status_update(&mut self, update: &StatusUpdate) {
        if update.state.is_finished() {
            if let Some((exec, cpus)) = self.running.remove(&update.task_id) {
                if let Some(e) = self.shared.state.lock().executors.get_mut(&exec) {
                    e.free_cores = (e.free_cores + cpus).min(e.total_cores);
                }
            }
        }
    }

    fn executor_lost(&mut self, executor_id: &ExecutorId) -> Option<std::process::ExitStatus> {
        self.running.retain(|_, (e, _)| e != executor_id);
        let stopping = {
            let mut st = self.shared.state.lock();
            st.executors.remove(executor_id);
            st.stopping
        };
        // Reap processes that exited, so none is left a zombie and no directory is left behind.
        let exit = if self.killed.remove(executor_id) {
            self.pids.remove(executor_id);
            None
        } else {
            self.await_exit(executor_id)
        };
        self.reap_exited();
        // local-cluster keeps its size: a lost executor is replaced by a new process.
        if let (Some((cores, memory_mb)), false) = (self.local_shape, stopping) {
            if self.replacements >= self.max_replacements {
                let max = self.max_replacements;
                warn!(
                    "not replacing lost executor {executor_id}: ember.deploy.maxExecutorRetries \
                     ({max}) reached"
                );
                self.last_lost = Some(executor_id.clone());
                return exit;
            }
            self.replacements += 1;
            info!("Replacing lost executor {executor_id} with a new executor process");
            if let Err(e) = self.spawn_local_executors(1, cores, memory_mb) {
                warn!("could not replace executor {executor_id}: {e}");
            }
        }
        exit
    }

    fn executor_added(&mut self, executor_id: &ExecutorId) {
        if let Some(e) = self.shared.state.lock().executors.get(executor_id) {
            self.pids.insert(executor_id.clone(), e.pid);
        }
        self.replacements = 0;
    }

    fn replaces_executors(&self) -> bool {
        self.local_shape.is_some()
    }

    fn heartbeat_answered(&mut self, executor_id: &ExecutorId, reregister: bool) {
        // An executor this backend dropped (killed on expiry) has its StopExecutor already.
        let st = self.shared.state.lock();
        if let (Some(e), Ok(bytes)) = (
            st.executors.get(executor_id),
            postcard::to_allocvec(&ToExecutor::HeartbeatResponse { reregister }),
        ) {
            let _ = e.out.send_bytes(&bytes);
        }
    }

    fn application_failure(&mut self) -> Option<String> {
        let (Some(_), Some(last)) = (self.local_shape, self.last_lost.clone()) else {
            return None;
        };
        if self.replacements < self.max_replacements
            || !self.shared.state.lock().executors.is_empty()
        {
            return None;
        }
        // A process still starting (or still exiting) may yet register: wait for it.
        self.reap_exited();
        if !self.children.is_empty() {
            return None;
        }
        // Spark's standalone master removes an application in this state.
        Some(format!(
            "Master removed our application: FAILED (every executor was lost and \
             ember.deploy.maxExecutorRetries ({}) allows no more replacements; last lost: \
             executor {last})",
            self.max_replacements
        ))
    }

    fn kill_executor(&mut self, executor_id: &ExecutorId) {
        self.killed.insert(executor_id.clone());
        let removed = self.shared.state.lock().executors.remove(executor_id);
        if let Some(e) = removed {
            if let Ok(bytes) = postcard::to_allocvec(&ToExecutor::StopExecutor) {
                let _ = e.out.send_bytes(&bytes);
            }
        }
        self.running.retain(|_, (e, _)| e != executor_id);
    }

    fn remove_rdd(&mut self, rdd_id: usize) {
        self.send_to_all(&ToExecutor::RemoveRdd { rdd_id });
    }

    fn remove_broadcast(&mut self, id: u64) {
        self.send_to_all(&ToExecutor::RemoveBroadcast { id });
    }

    fn stage_finished(&mut self, stage_id: StageId, stage_attempt_id: u32) {
        let Some((binary_id, _)) = self.binaries.remove(&(stage_id, stage_attempt_id)) else {
            return;
        };
        let mut st = self.shared.state.lock();
        st.driver_binaries = self.binaries.len();
        // Only to the executors that got it; on the connection that carried its tasks, so the
        // executor drops it after every launch that names it.
        let Ok(bytes) = postcard::to_allocvec(&ToExecutor::RemoveTaskBinary { binary_id }) else {
            return;
        };
        for e in st.executors.values_mut() {
            if e.binaries.remove(&binary_id) {
                let _ = e.out.send_bytes(&bytes);
            }
        }
    }

    fn kill_task(&mut self, task_id: TaskId, executor_id: &ExecutorId, reason: &str) {
        let st = self.shared.state.lock();
        if let Some(e) = st.executors.get(executor_id) {
            if let Ok(bytes) = postcard::to_allocvec(&ToExecutor::KillTask {
                task_id,
                reason: reason.to_string(),
            }) {
                let _ = e.out.send_bytes(&bytes);
            }
        }
    }

    fn stop(&mut self) {
        // Give executors a moment to exit on their own, then make sure no process outlives us.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        {
            let mut st = self.shared.state.lock();
            st.stopping = true;
            if let Ok(bytes) = postcard::to_allocvec(&ToExecutor::StopExecutor) {
                for e in st.executors.values() {
                    let _ = e.out.send_bytes(&bytes);
                }
            }
            // An executor hangs up once it has its StopExecutor. Until then the message may
            // still sit in its connection's backlog (a socket that did not take it at once),
            // which the runtime's shutdown below would drop: the executor would then only see
            // the connection close and report "Driver disassociated" as an error (standalone
            // executors are nobody's children here).
            while !st.executors.is_empty() {
                if self
                    .shared
                    .registered
                    .wait_until(&mut st, deadline)
                    .timed_out()
                {
                    break;
                }
            }
        }
        for (child, id) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
            remove_work_dir(child.id(), *id);
        }
        self.children.clear();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for ClusterBackend {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            self.stop();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_executor(stream, peer, shared).await {
                        warn!("connection from {peer} closed: {e}");
                    }
                });
            }
            Err(e) => {
                warn!("accepting an executor connection failed: {e}");
            }
        }
    }
}

async fn serve_executor(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> std::result::Result<(), RpcError> {
    let s = &shared.settings;
    let conn =
        Connection::<ToDriver, ToExecutor>::accept(stream, &s.security, s.max_frame, s.timeout)
            .await?;
    let (mut reader, mut writer) = conn.into_split();
    let first = tokio::time::timeout(s.timeout, reader.recv())
        .await
        .map_err(|_| RpcError::Io("executor did not register in time".into()))??;
    let ToDriver::RegisterExecutor {
        requested_id,
        host,
        cores,
        memory_mb,
        block_port,
        build_id,
        pid,
    } = first
    else {
        return Err(RpcError::Decode(
            "the first message of an executor must be RegisterExecutor".into(),
        ));
    };
    let known = !build_id.is_empty() && build_id.bytes().all(|c| c.is_ascii_hexdigit());
    if !known || build_id != shared.build_id {
        let reason = if known {
            format!(
                "executor build {build_id} does not match the driver's build {}: run the same \
                 executable on every machine",
                shared.build_id
            )
        } else {
            format!(
                "executor build {build_id:?} is not a build id (the driver's is {}): {}",
                shared.build_id,
                crate::image::HOW_TO_BUILD
            )
        };
        warn!("Refusing executor from {peer}: {reason}");
        writer
            .send(&ToExecutor::RegisterRejected { reason })
            .await?;
        return Ok(());
    }
    let task_cpus = s
        .conf
        .iter()
        .find(|(k, _)| k == crate::conf::TASK_CPUS)
        .and_then(|(_, v)| v.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if cores < task_cpus {
        // Spark offers such an executor nothing, forever; refusing it says why at once.
        let reason = format!(
            "the executor has {cores} cores, fewer than the {task_cpus} each task needs \
             (ember.task.cpus = {task_cpus}): it could never run a task"
        );
        warn!("Refusing executor from {peer}: {reason}");
        writer
            .send(&ToExecutor::RegisterRejected { reason })
            .await?;
        return Ok(());
    }
    let block_addr = match format!("{host}:{block_port}").parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => SocketAddr::new(peer.ip(), block_port),
    };
    let (out, write_backlog) = SharedWriter::new(writer);
    let writer_task = tokio::spawn(write_backlog);
    let executor_id = {
        let mut st = shared.state.lock();
        if st.stopping {
            writer_task.abort();
            return Ok(());
        }
        let id = match requested_id {
            Some(id) if !st.used_ids.contains(&id) => id,
            _ => {
                while st.used_ids.contains(&st.next_id.to_string()) {
                    st.next_id += 1;
                }
                st.next_id.to_string()
            }
        };
        // Sent before the executor is listed, under the lock: no other message can precede
        // it, and an executor that cannot be told is never listed.
        let registered = out.send(&ToExecutor::RegisteredExecutor {
            executor_id: id.clone(),
            conf: s.conf.clone(),
            build_id: shared.build_id.clone(),
        });
        if let Err(e) = registered {
            writer_task.abort();
            return Err(e);
        }
        st.used_ids.insert(id.clone());
        st.executors.insert(
            id.clone(),
            ExecutorData {
                host: host.clone(),
                pid,
                total_cores: cores,
                free_cores: cores,
                out: out.clone(),
                binaries: FxHashSet::default(),
            },
        );
        id
    };
    // The executor computes the same budget from the same configuration; its block manager is
    // known (with no blocks) from now on.
    let bm_id = crate::task::BlockManagerId {
        executor_id: executor_id.clone(),
        host: host.clone(),
        port: block_port,
    };
    shared
        .block_master
        .register(&bm_id, executor_max_memory(&s.conf, memory_mb));
    info!(
        "Registered executor ({peer}, pid {pid}) with ID {executor_id}, host {host}, cores \
         {cores}, memory {memory_mb} MiB"
    );
    shared.registered.notify_all();
    let _ = shared.events.send(DriverEvent::ExecutorAdded {
        executor_id: executor_id.clone(),
        host: host.clone(),
        cores,
    });

    let reason = loop {
        match reader.recv().await {
            Ok(ToDriver::StatusUpdate {
                task_id,
                state,
                payload,
            }) => {
                let outcome = match payload {
                    WirePayload::None => TaskOutcome::None,
                    WirePayload::Direct {
                        value,
                        metrics,
                        accum_updates,
                    } => {
                        let value = match value {
                            WireValue::Bytes(b) => TaskValue::Bytes(b),
                            WireValue::MapStatus(m) => TaskValue::MapStatus(m),
                        };
                        TaskOutcome::Success(DirectTaskResult {
                            value,
                            metrics,
                            accum_updates,
                        })
                    }
                    WirePayload::Indirect {
                        block_id: None,
                        size,
                        metrics,
                        accum_updates,
                    } => TaskOutcome::Success(DirectTaskResult {
                        value: TaskValue::ResultTooLarge { size },
                        metrics,
                        accum_updates,
                    }),
                    WirePayload::Indirect {
                        block_id: Some(id),
                        size,
                        metrics,
                        accum_updates,
                    } => {
                        let _ = shared
                            .events
                            .send(DriverEvent::TaskGettingResult { task_id });
                        fetch_indirect(&shared, block_addr, id, size, metrics, accum_updates).await
                    }
                    WirePayload::Failure { reason, metrics } => {
                        TaskOutcome::Failure { reason, metrics }
                    }
                };
                let _ = shared.events.send(DriverEvent::StatusUpdate(StatusUpdate {
                    executor_id: executor_id.clone(),
                    task_id,
                    state,
                    outcome,
                }));
            }
            Ok(ToDriver::GetMapOutputStatuses {
                request_id,
                shuffle_id,
            }) => {
                let statuses = MapOutputSource::map_statuses(shared.tracker.as_ref(), shuffle_id)
                    .map(|s| (*s).clone())
                    .map_err(|e| e.to_string());
                if let Ok(bytes) = postcard::to_allocvec(&ToExecutor::MapOutputStatuses {
                    request_id,
                    statuses,
                }) {
                    let _ = out.send_bytes(&bytes);
                }
            }
            Ok(ToDriver::BarrierSync {
                request_id,
                num_tasks,
                stage_id,
                stage_attempt_id,
                task_attempt_id,
                barrier_epoch,
                partition_id,
                message,
                all_gather,
            }) => {
                let request = ember_scheduler::barrier_coordinator::SyncRequest {
                    num_tasks,
                    stage_id,
                    stage_attempt_id,
                    task_attempt_id,
                    barrier_epoch,
                    partition_id,
                    message,
                    method: if all_gather {
                        ember_scheduler::barrier_coordinator::SyncMethod::AllGather
                    } else {
                        ember_scheduler::barrier_coordinator::SyncMethod::Barrier
                    },
                };
                // Answered when the sync completes, from the event loop, on this executor's
                // outgoing queue (an executor gone by then hears nothing).
                let out = out.clone();
                let reply = Box::new(move |result| {
                    let _ = out.send(&ToExecutor::BarrierSyncResult { request_id, result });
                });
                let _ = shared
                    .events
                    .send(DriverEvent::BarrierSync { request, reply });
            }
            Ok(ToDriver::Heartbeat {
                task_metrics,
                executor_metrics,
                memory,
            }) => {
                shared
                    .block_master
                    .update_memory_metrics(&executor_id, memory);
                // The event loop's HeartbeatReceiver answers, through `heartbeat_answered`.
                let _ = shared.events.send(DriverEvent::Heartbeat {
                    executor_id: executor_id.clone(),
                    task_metrics,
                    executor_metrics: Some(executor_metrics),
                    reply: None,
                });
            }
            Ok(ToDriver::BlockUpdated {
                rdd_id,
                partition,
                status,
                memory,
            }) => {
                // Handled here, before the reader takes the next message: a task's block updates
                // reach the master before its status update reaches the scheduler.
                let id = crate::task::BlockManagerId {
                    executor_id: executor_id.clone(),
                    host: host.clone(),
                    port: block_port,
                };
                shared.block_master.update_block_info(
                    &id,
                    crate::storage::BlockId::Rdd { rdd_id, partition },
                    status,
                    Some(memory),
                );
            }
            Ok(ToDriver::ReregisterBlockManager { blocks, memory }) => {
                let id = crate::task::BlockManagerId {
                    executor_id: executor_id.clone(),
                    host: host.clone(),
                    port: block_port,
                };
                reregister_block_manager(&shared, &id, memory_mb, blocks, memory);
            }
            Ok(ToDriver::ThreadDumpResult {
                request_id,
                threads,
            }) => {
                if let Some(tx) = shared.dumps.lock().remove(&request_id) {
                    let _ = tx.send(threads);
                }
            }
            Ok(ToDriver::RegisterExecutor { .. }) => {
                warn!("executor {executor_id} registered twice; ignored")
            }
            Err(e) => break e.to_string(),
        }
    };
    writer_task.abort();
    // Only the first of "connection closed" and "heartbeat timed out" reports the loss.
    let (was_known, stopping) = {
        let mut st = shared.state.lock();
        let known = st.executors.remove(&executor_id).is_some();
        // `stop` waits for every executor to hang up.
        shared.registered.notify_all();
        (known, st.stopping)
    };
    if was_known && !stopping {
        warn!("Lost executor {executor_id} on {host}: {reason}");
        let _ = shared.events.send(DriverEvent::ExecutorLost {
            executor_id,
            reason: format!("connection closed: {reason}"),
        });
    }
    Ok(())
}

/// An executor's block manager registers again with the blocks it holds, after a heartbeat
/// answer asked it to. Only for an executor the scheduler still has (Spark refuses the
/// re-registration of a lost executor's block manager, SPARK-35011): a lost executor's blocks
/// must not come back, and its StopExecutor is already on its way.
fn reregister_block_manager(
    shared: &Shared,
    id: &crate::task::BlockManagerId,
    memory_mb: u64,
    blocks: Vec<(usize, usize, crate::storage::BlockStatus)>,
    memory: crate::memory::MemoryMetrics,
) {
    // Under the scheduler's lock, so a loss cannot slip between the check and the registration
    // (a loss takes the executor out under this lock before forgetting its blocks).
    let st = shared.state.lock();
    if !st.executors.contains_key(&id.executor_id) {
        warn!(
            "BlockManager re-registration shouldn't succeed when the executor is lost: {}",
            id.executor_id
        );
        return;
    }
    info!(
        "Registering block manager BlockManagerId({}, {}, {}) again, with {} blocks",
        id.executor_id,
        id.host,
        id.port,
        blocks.len()
    );
    shared
        .block_master
        .register(id, executor_max_memory(&shared.settings.conf, memory_mb));
    for (rdd_id, partition, status) in blocks {
        shared.block_master.update_block_info(
            id,
            crate::storage::BlockId::Rdd { rdd_id, partition },
            status,
            Some(memory),
        );
    }
    drop(st);
}

/// The name this program was started under, without its directory.
fn program_name() -> String {
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&arg0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    name.filter(|n| !n.is_empty())
        .unwrap_or_else(|| "ember".into())
}

/// Deletes the scratch directory of a spawned executor process that has exited.
fn remove_work_dir(pid: u32, local_id: usize) {
    for dir in crate::executor::process::work_dirs(pid, &local_id.to_string()) {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => debug!("deleted {} of exited executor process {pid}", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(
                "cannot delete {} of exited executor process {pid}: {e}",
                dir.display()
            ),
        }
    }
}

/// The execution plus storage memory of an executor of `memory_mb` MiB under the application's
/// configuration (0 when it is too small: such an executor fails to start).
fn executor_max_memory(conf: &[(String, String)], memory_mb: u64) -> u64 {
    let mut c = crate::conf::EmberConf::new();
    for (k, v) in conf {
        c.insert(k.clone(), v.clone());
    }
    crate::memory::MemoryConfig::from_conf(
        &c,
        memory_mb << 20,
        crate::memory::MemorySource::ExecutorFlag,
    )
    .map_or(0, |m| m.max_memory)
}

/// Fetches a result the executor kept in its block manager, then asks it to drop the block.
async fn fetch_indirect(
    shared: &Arc<Shared>,
    addr: SocketAddr,
    block_id: String,
    size: u64,
    metrics: crate::task::TaskMetricsSnapshot,
    accum_updates: Vec<crate::accumulator::AccumulatorUpdate>,
) -> TaskOutcome {
    let shared2 = shared.clone();
    let id = block_id.clone();
    let fetched = tokio::task::spawn_blocking(move || {
        let got = shared2.blocks.fetch(
            addr,
            BlockRequest::Stored {
                block_id: id.clone(),
            },
        );
        let _ = shared2
            .blocks
            .fetch(addr, BlockRequest::Remove { block_id: id });
        got
    })
    .await;
    match fetched {
        Ok(Ok(BlockResponse::Data(bytes))) => {
            debug!("fetched indirect result {block_id} ({size} bytes) from {addr}");
            TaskOutcome::Success(DirectTaskResult {
                value: TaskValue::Bytes(bytes),
                metrics,
                accum_updates,
            })
        }
        other => {
            warn!("could not fetch indirect result {block_id} from {addr}: {other:?}");
            TaskOutcome::Failure {
                reason: TaskEndReason::TaskResultLost,
                metrics: Some(metrics),
            }
        }
    }
}
