//! Executor processes (Spark's `CoarseGrainedExecutorBackend`): the application's own executable
//! started in executor mode, joining its driver over an authenticated connection.
//!
//! A process becomes an executor before `main` runs (the `.init_array` hook below), when it
//! was spawned by a `local-cluster` driver (the `EMBER_EXECUTOR_ARGS` environment variable) or
//! started by an operator as `PROGRAM executor --driver HOST:PORT [--cores N] [--memory 4g]
//! [--host ADVERTISED_HOST] [--executor-id ID] [--conf ember.network.crypto.enabled=true]`, with
//! the secret in `EMBER_AUTH_SECRET`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tracing::{debug, error, info, warn};

use super::{Executor, ExecutorBackend};
use crate::conf::{self, EmberConf};
use crate::env::ExecutorEnv;
use crate::error::{EmberError, Result};
use crate::memory::MemoryConfig;
use crate::rpc::connection::Connection;
use crate::rpc::messages::{task_result_block_id, ToDriver, ToExecutor, WirePayload, WireValue};
use crate::rpc::secret::{Secret, Security};
use crate::shuffle::ShuffleConf;
use crate::storage::{BlockManager, BlockManagerMaster};
use crate::task::MapOutputSource;
use crate::task::{
    BlockManagerId, MapStatus, ShuffleId, StatusUpdate, TaskDescription, TaskKind, TaskOutcome,
    TaskValue,
};
use ember_net::block_client::BlockClient;
use ember_scheduler::barrier_coordinator::SyncMethod;
use ember_net::block_server::{BlockServer, BlockStore, ShuffleBlock};
use ember_net::shared_writer::SharedWriter;

/// The connection to the driver, written by whichever thread sends.
type DriverOut = Arc<SharedWriter<ToDriver>>;

/// The environment variable that makes a spawned copy of the program an executor.
pub const EXECUTOR_ENV: &str = "EMBER_EXECUTOR_ARGS";

/// The scratch directories of the executor process `pid` started with `--executor-id ID` (empty
/// without one): its shuffle files, spills and blocks. Each is `ember-executor-PID-ID-RANDOM`
/// (see `private_scratch_dir`): the process deletes it when it stops; a `local-cluster` driver
/// deletes it for a process that died without stopping, finding it by this prefix.
pub(crate) fn work_dirs(pid: u32, requested_id: &str) -> Vec<std::path::PathBuf> {
    let prefix = format!("ember-executor-{pid}-{requested_id}-");
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        // A directory, not a link someone planted under that name.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Runs before `main` in every program linked with Ember (the ELF `.init_array` hook): if this
/// process was started as an executor, it becomes one and exits without running `main`, so a
/// program cannot forget to enter executor mode.
extern "C" fn executor_hook() {
    maybe_run_executor();
}

// The one unsafe attribute outside the crate root's named modules.
// SAFETY (link_section): `.init_array` entries are `extern "C" fn()` pointers the loader calls
// after relocation and before `main`; this one is such a pointer. On Linux, std's own start-up
// (argument capture) also runs from `.init_array`, and allocation and threads work there.
// `#[used]` keeps it in the binary even though nothing names it (rustc links every `#[used]`
// static of a dependency, so a test binary or an example gets it as a program does).
#[used]
#[allow(unsafe_code)]
#[link_section = ".init_array"]
static EXECUTOR_HOOK: extern "C" fn() = executor_hook;

/// Runs before `main`: becomes an executor if this process was started as one, and exits.
fn maybe_run_executor() {
    let args: Vec<String> = match std::env::var(EXECUTOR_ENV) {
        Ok(a) => {
            // Gone before any user code runs: a task that starts a program (this one included)
            // must not turn it into an executor of this application.
            std::env::remove_var(EXECUTOR_ENV);
            a.split_whitespace().map(str::to_string).collect()
        }
        Err(_) => {
            let argv: Vec<String> = std::env::args().collect();
            // `PROGRAM executor --driver ...`: both words are required, so a program whose own
            // first argument happens to be "executor" is not taken over.
            if argv.get(1).map(String::as_str) == Some("executor")
                && argv
                    .iter()
                    .any(|a| a == "--driver" || a.starts_with("--driver="))
            {
                argv[2..].to_vec()
            } else if argv.get(1).map(String::as_str) == Some("executor")
                && asks_for_executor_usage(&argv[2..])
            {
                let program = argv.first().map(|p| {
                    std::path::Path::new(p)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                });
                eprintln!(
                    "{}",
                    executor_usage(program.as_deref().unwrap_or("PROGRAM"))
                );
                std::process::exit(if argv.iter().any(|a| a == "--help" || a == "-h") {
                    0
                } else {
                    1
                });
            } else {
                return;
            }
        }
    };
    ignore_sigpipe();
    super::stack_guard::install_process();
    let code = match std::panic::catch_unwind(|| run_executor(args)) {
        Ok(Ok(())) => crate::shutdown::signal_exit_code().unwrap_or(0),
        Ok(Err(e)) => {
            eprintln!("ember executor: {e}");
            1
        }
        Err(_) => {
            eprintln!("ember executor: internal error (panic)");
            1
        }
    };
    std::process::exit(code);
}

/// What std's start-up does before `main` and the hook skips: ignore SIGPIPE, so that a write to
/// a closed pipe (a task's child process, stderr) is an error instead of killing the executor
/// silently. (Sockets are safe either way: std sends with `MSG_NOSIGNAL`.)
#[allow(unsafe_code)]
fn ignore_sigpipe() {
    // SAFETY: `signal` with `SIG_IGN` installs no handler code; it only changes the disposition
    // of SIGPIPE, as std's own start-up does (`reset_sigpipe`). The hook runs before `main`, on
    // the only thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Whether `PROGRAM executor ARGS` (without `--driver`) is a request for the executor's usage:
/// nothing more, `--help`, or an executor option. Anything else is left to the program, whose
/// own first argument may be the word "executor".
fn asks_for_executor_usage(rest: &[String]) -> bool {
    const OPTIONS: [&str; 6] = [
        "--help",
        "-h",
        "--cores",
        "--memory",
        "--host",
        "--executor-id",
    ];
    rest.is_empty()
        || rest
            .iter()
            .any(|a| OPTIONS.contains(&a.split('=').next().unwrap_or_default()))
}

/// How to start an executor by hand.
fn executor_usage(program: &str) -> String {
    format!(
        "usage: {program} executor --driver HOST:PORT [--cores N] [--memory SIZE] [--host \
         ADVERTISED_HOST] [--executor-id ID]\nRuns {program} as an executor of the driver \
         listening at HOST:PORT (the driver prints it at start,\ne.g. with master \
         ember://0.0.0.0:7077). --cores: task threads (default 1); --memory: its memory,\ne.g. 4g \
         (default 1g); --host: the address other executors reach it at. If the driver \
         requires\nauthentication, put the secret in EMBER_AUTH_SECRET."
    )
}

/// Command line of an executor.
#[derive(Debug, Clone)]
pub struct ExecutorArgs {
    pub driver: String,
    pub cores: usize,
    pub memory_mb: u64,
    pub host: Option<String>,
    pub executor_id: Option<String>,
    /// Settings needed before the driver can be reached (`--conf key=value`; Spark's executor
    /// startup settings): `ember.network.crypto.enabled`.
    pub startup_conf: Vec<(String, String)>,
}

/// The keys an executor accepts on its command line: those it needs to connect at all (and the
/// tests' build-id override).
const STARTUP_KEYS: &[&str] = &[conf::NETWORK_CRYPTO_ENABLED, conf::TESTING_BUILD_ID];

impl ExecutorArgs {
    /// Parses `--driver HOST:PORT --cores N --memory 4g --host H --executor-id ID --conf K=V`.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut out = ExecutorArgs {
            driver: String::new(),
            cores: 1,
            memory_mb: 1024,
            host: None,
            executor_id: None,
            startup_conf: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| EmberError::Argument(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--driver" => out.driver = value()?,
                "--cores" => {
                    out.cores = value()?.parse().ok().filter(|c| *c > 0).ok_or_else(|| {
                        EmberError::Argument("--cores takes a positive number".into())
                    })?
                }
                "--memory" => {
                    let v = value()?;
                    out.memory_mb = conf::parse_size(&v, conf::SizeUnit::MiB)
                        .map_err(|e| EmberError::Argument(format!("--memory {v}: {e}")))?
                        >> 20
                }
                "--host" => out.host = Some(value()?),
                "--executor-id" => out.executor_id = Some(value()?),
                "--conf" => {
                    let pair = value()?;
                    let (k, v) = pair.split_once('=').ok_or_else(|| {
                        EmberError::Argument(format!("--conf takes key=value, got {pair:?}"))
                    })?;
                    if !STARTUP_KEYS.contains(&k.trim()) {
                        return Err(EmberError::Argument(format!(
                            "--conf {k}: an executor takes only its startup settings ({}) on its \
                             command line; the rest comes from the driver",
                            STARTUP_KEYS.join(", ")
                        )));
                    }
                    out.startup_conf
                        .push((k.trim().to_string(), v.trim().to_string()));
                }
                other => {
                    return Err(EmberError::Argument(format!(
                        "unknown executor option {other}"
                    )))
                }
            }
        }
        if out.driver.is_empty() {
            return Err(EmberError::Argument(
                "an executor needs --driver HOST:PORT".into(),
            ));
        }
        Ok(out)
    }
}

/// Sends status updates and map output requests to the driver, from task threads.
struct NetBackend {
    out: DriverOut,
    env: Arc<ExecutorEnv>,
    max_direct: u64,
    max_result: u64,
}

impl ExecutorBackend for NetBackend {
    fn status_update(&self, update: StatusUpdate) {
        let StatusUpdate {
            task_id,
            state,
            outcome,
            ..
        } = update;
        let payload = match outcome {
            TaskOutcome::None => WirePayload::None,
            TaskOutcome::Failure { reason, metrics } => WirePayload::Failure { reason, metrics },
            TaskOutcome::Success(r) => {
                let accum_updates = r.accum_updates;
                match r.value {
                    TaskValue::MapStatus(s) => WirePayload::Direct {
                        value: WireValue::MapStatus(s),
                        metrics: r.metrics,
                        accum_updates,
                    },
                    TaskValue::Bytes(b) => {
                        let size = b.len() as u64;
                        if self.max_result > 0 && size > self.max_result {
                            // Spark's first case: too large for the driver at all; not kept.
                            warn!(
                                "Finished task {task_id}. Result is larger than maxResultSize \
                                 ({size} > {}), dropping it.",
                                self.max_result
                            );
                            WirePayload::Indirect {
                                block_id: None,
                                size,
                                metrics: r.metrics,
                                accum_updates,
                            }
                        } else if size > self.max_direct {
                            let id = task_result_block_id(task_id);
                            self.env.block_manager.put_bytes(id.clone(), b);
                            info!(
                                "Finished task {task_id}. {size} bytes result sent via \
                                 BlockManager"
                            );
                            WirePayload::Indirect {
                                block_id: Some(id),
                                size,
                                metrics: r.metrics,
                                accum_updates,
                            }
                        } else {
                            WirePayload::Direct {
                                value: WireValue::Bytes(b),
                                metrics: r.metrics,
                                accum_updates,
                            }
                        }
                    }
                    TaskValue::Value(_) | TaskValue::ResultTooLarge { .. } => {
                        WirePayload::Failure {
                            reason: crate::task::TaskEndReason::ExceptionFailure {
                                description: "result was not serialized".into(),
                            },
                            metrics: Some(r.metrics),
                        }
                    }
                }
            }
        };
        let sent = self.out.send(&ToDriver::StatusUpdate {
            task_id,
            state,
            payload,
        });
        // A broken connection needs no word here: it also ends the reader, which stops the
        // executor. A status too large for a frame is lost on a live one.
        if let Err(e @ ember_net::RpcError::FrameTooLarge { .. }) = sent {
            error!("cannot send the status of task {task_id} to the driver: {e}");
        }
    }
}

/// Map output locations asked of the driver (Spark's `MapOutputTrackerWorker`).
struct RemoteMapOutputs {
    out: DriverOut,
    pending: Arc<
        Mutex<
            FxHashMap<
                u64,
                std::sync::mpsc::Sender<std::result::Result<Vec<Option<MapStatus>>, String>>,
            >,
        >,
    >,
    next: AtomicU64,
    timeout: Duration,
}

impl MapOutputSource for RemoteMapOutputs {
    fn map_statuses(&self, shuffle_id: ShuffleId) -> Result<Arc<Vec<Option<MapStatus>>>> {
        let request_id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        self.pending.lock().insert(request_id, tx);
        if self
            .out
            .send(&ToDriver::GetMapOutputStatuses {
                request_id,
                shuffle_id,
            })
            .is_err()
        {
            self.pending.lock().remove(&request_id);
            return Err(EmberError::MapOutputsUnavailable {
                shuffle_id,
                message: "the driver connection is closed".into(),
            });
        }
        let got = rx.recv_timeout(self.timeout);
        self.pending.lock().remove(&request_id);
        match got {
            Ok(Ok(v)) => Ok(Arc::new(v)),
            Ok(Err(message)) => Err(EmberError::MapOutputsUnavailable {
                shuffle_id,
                message,
            }),
            Err(_) => Err(EmberError::MapOutputsUnavailable {
                shuffle_id,
                message: format!(
                    "no map output locations for shuffle {shuffle_id} from the driver"
                ),
            }),
        }
    }
}

/// Barrier syncs asked of the driver's coordinator (Spark's `barrierCoordinator` RPC).
struct RemoteBarrierSync {
    out: DriverOut,
    pending: Arc<Mutex<FxHashMap<u64, BarrierWaiter>>>,
    next: AtomicU64,
}

/// Where a barrier sync's answer goes: the waiting task.
type BarrierWaiter = crossbeam_channel::Sender<std::result::Result<Vec<String>, String>>;

impl crate::task::BarrierSyncSource for RemoteBarrierSync {
    fn request_sync(
        &self,
        request: ember_scheduler::barrier_coordinator::SyncRequest,
    ) -> Result<crossbeam_channel::Receiver<std::result::Result<Vec<String>, String>>> {
        let request_id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.pending.lock().insert(request_id, tx);
        let (stage_id, stage_attempt_id) = (request.stage_id, request.stage_attempt_id);
        let sent = self.out.send(&ToDriver::BarrierSync {
            request_id,
            num_tasks: request.num_tasks,
            stage_id,
            stage_attempt_id,
            task_attempt_id: request.task_attempt_id,
            barrier_epoch: request.barrier_epoch,
            partition_id: request.partition_id,
            message: request.message,
            all_gather: request.method == SyncMethod::AllGather,
        });
        if sent.is_err() {
            self.pending.lock().remove(&request_id);
            return Err(EmberError::BarrierSyncFailed {
                stage_id,
                stage_attempt_id,
                message: "the driver connection is closed".into(),
            });
        }
        Ok(rx)
    }
}

/// Creates this executor's scratch directory (shuffle files, spills, blocks on disk) under `root`:
/// a fresh name with a random part, created exclusively (an existing path, or a symlink another
/// user planted, is never reused) and private to this user (mode 0700), so no other local user
/// can read or replace the application's data.
fn private_scratch_dir(root: &std::path::Path, executor_id: &str) -> Result<std::path::PathBuf> {
    use rand::TryRngCore;
    use std::os::unix::fs::DirBuilderExt;
    let mut last = None;
    for _ in 0..16 {
        let random = rand::rngs::OsRng
            .try_next_u64()
            .map_err(|e| EmberError::io(root, std::io::Error::other(e)))?;
        let path = root.join(format!(
            "ember-executor-{}-{executor_id}-{random:016x}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(EmberError::io(&path, e)),
        }
    }
    Err(EmberError::io(
        root,
        last.unwrap_or_else(|| std::io::Error::other("no free scratch directory name")),
    ))
}

/// Removes a directory tree when dropped.
struct RemoveDirOnDrop(std::path::PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs an executor until its driver tells it to stop or goes away.
pub fn run_executor(args: Vec<String>) -> Result<()> {
    crate::util::init_logging();
    crate::util::install_panic_hook();
    let args = ExecutorArgs::parse(&args)?;
    let driver: SocketAddr = args
        .driver
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            EmberError::Argument(format!("cannot resolve driver address {}", args.driver))
        })?;
    let secret = std::env::var(crate::rpc::auth::SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .map(Secret::from);
    // Read once and removed before any thread or task exists: user code, and every program it
    // starts, would otherwise inherit the application's secret.
    std::env::remove_var(crate::rpc::auth::SECRET_ENV);
    let mut startup = EmberConf::new();
    for (k, v) in &args.startup_conf {
        startup.insert(k.clone(), v.clone());
    }
    let encrypt = startup.get_bool(conf::NETWORK_CRYPTO_ENABLED)?;
    // Refused before anything is sent: a build without an id, or with Rust code in separately
    // loaded images, cannot decode task bodies meaningfully.
    let build_id = crate::image::presented_build_id(startup.get(conf::TESTING_BUILD_ID))
        .map_err(EmberError::UnsupportedBuild)?;
    let security =
        Security::from_settings(secret, encrypt).map_err(|reason| EmberError::Config {
            key: conf::NETWORK_CRYPTO_ENABLED.into(),
            value: "true".into(),
            reason: format!("{reason} ({} is not set)", crate::rpc::auth::SECRET_ENV),
        })?;
    // Its threads (the RPC workers and the blocking pool) get the stack-overflow report too.
    let runtime = crate::rpc::network_runtime_with(
        "ember-executor-rpc",
        super::stack_guard::install_thread,
    )?;
    let handle = runtime.handle().clone();
    let result = runtime.block_on(executor_main(args, driver, security, build_id, handle));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn executor_main(
    args: ExecutorArgs,
    driver: SocketAddr,
    security: Security,
    build_id: String,
    handle: tokio::runtime::Handle,
) -> Result<()> {
    // Before registration only the bootstrap limits are known; the driver's arrive with it.
    let boot_max = 128usize << 20;
    let timeout = Duration::from_secs(120);
    let conn = connect_with_retries(driver, &security, boot_max, timeout).await?;
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| conn.local_addr().ip().to_string());
    let (mut reader, mut writer) = conn.into_split();

    // The block server starts first so its port can be registered.
    let work_root = private_scratch_dir(
        &std::env::temp_dir(),
        args.executor_id.as_deref().unwrap_or_default(),
    )?;
    // Removed however this function returns (a refused registration included).
    let _remove_scratch = RemoveDirOnDrop(work_root.clone());
    let blocks_master = Arc::new(BlockManagerMaster::new());
    let pending_bm = Arc::new(std::sync::OnceLock::<Arc<BlockManager>>::new());
    let store: Arc<LateStore> = Arc::new(LateStore {
        block_manager: pending_bm.clone(),
        local_dir: work_root.clone(),
    });
    let bind: SocketAddr = SocketAddr::new(
        if host == "127.0.0.1" {
            [127, 0, 0, 1].into()
        } else {
            [0, 0, 0, 0].into()
        },
        0,
    );
    let (server, block_addr) =
        BlockServer::start(handle.clone(), bind, security.clone(), boot_max, store)
            .map_err(|e| EmberError::network("cannot start the block server", e))?;

    writer
        .send(&ToDriver::RegisterExecutor {
            requested_id: args.executor_id.clone(),
            host: host.clone(),
            cores: args.cores as u32,
            memory_mb: args.memory_mb,
            block_port: block_addr.port(),
            build_id: build_id.clone(),
            pid: std::process::id(),
        })
        .await
        .map_err(|e| EmberError::network("registering with the driver failed", e))?;

    // Until registration completes, a LaunchTask is a protocol error (reference 000/003).
    let (executor_id, conf) = loop {
        match reader.recv().await {
            Ok(ToExecutor::RegisteredExecutor {
                executor_id,
                conf,
                build_id: driver_build,
            }) => {
                // Checked here too, not only by the driver: task bodies name entries of this
                // build's decode table, meaningless in another build.
                if driver_build != build_id {
                    return Err(EmberError::RegistrationRejected(format!(
                        "the driver at {driver} runs build {driver_build}, this executor build \
                         {build_id}: run the same executable on every machine"
                    )));
                }
                break (executor_id, conf);
            }
            Ok(ToExecutor::RegisterRejected { reason }) => {
                return Err(EmberError::RegistrationRejected(reason))
            }
            Ok(ToExecutor::LaunchTask(_)) => {
                return Err(EmberError::Protocol(
                    "Received LaunchTask command but executor was null".into(),
                ))
            }
            Ok(other) => debug!("ignoring {other:?} before registration"),
            Err(e) => {
                return Err(EmberError::network(
                    "the driver closed the connection during registration",
                    e,
                ))
            }
        }
    };
    let mut ember_conf = EmberConf::new();
    for (k, v) in conf {
        ember_conf.insert(k, v);
    }
    info!(
        "Successfully registered with driver {driver} as executor {executor_id} on {host} with {} \
         cores",
        args.cores
    );
    let max_frame = ember_conf.get_size_bytes(conf::RPC_MESSAGE_MAX_SIZE)? as usize;
    let net_timeout = Duration::from_millis(ember_conf.get_time_ms(conf::NETWORK_TIMEOUT)?);
    let local_dir = work_root.clone();
    // The driver's configuration decides the budget (fraction, reserved memory), this process's
    // --memory its size.
    let memory = MemoryConfig::from_conf(
        &ember_conf,
        args.memory_mb << 20,
        crate::memory::MemorySource::ExecutorFlag,
    )?;
    let bm_id = BlockManagerId {
        executor_id: executor_id.clone(),
        host: host.clone(),
        port: block_addr.port(),
    };
    let bm = BlockManager::new(
        bm_id,
        blocks_master,
        memory,
        local_dir.join("blocks"),
        &ember_conf,
    )?;
    let _ = pending_bm.set(bm.clone());
    // Every message to the driver is written by the thread that sends it (a task's status by its
    // task thread): no hop through a writer task (`ember_net::shared_writer`).
    let (out_tx, write_backlog) = SharedWriter::new(writer);
    let writer_task = tokio::spawn(write_backlog);
    {
        // Sent from the thread that changed the block, under the block manager's status lock,
        // on the one ordered channel to the driver: the driver sees each block's changes in order,
        // and before the status update of the task that made them.
        let out = out_tx.clone();
        bm.set_reporter(Arc::new(move |block, status, memory| {
            let crate::storage::BlockId::Rdd { rdd_id, partition } = block;
            let _ = out.send(&ToDriver::BlockUpdated {
                rdd_id,
                partition,
                status,
                memory,
            });
        }));
    }

    let pending: Arc<Mutex<FxHashMap<u64, _>>> = Arc::new(Mutex::new(FxHashMap::default()));
    let barrier_waiters: Arc<Mutex<FxHashMap<u64, BarrierWaiter>>> = Arc::default();
    let env = Arc::new(ExecutorEnv {
        hadoop_conf: Arc::new(crate::io::cloud::HadoopConf::from_pairs(ember_conf.iter())),
        barrier_sync: Arc::new(RemoteBarrierSync {
            out: out_tx.clone(),
            pending: barrier_waiters.clone(),
            next: AtomicU64::new(0),
        }),
        executor_id: executor_id.clone(),
        host: host.clone(),
        shuffle: ShuffleConf::from_conf(&ember_conf)?,
        local_dir,
        memory_manager: bm.memory_manager().clone(),
        block_manager: bm,
        broadcasts: Arc::new(crate::broadcast::BroadcastManager::new()),
        map_outputs: Arc::new(RemoteMapOutputs {
            out: out_tx.clone(),
            pending: pending.clone(),
            next: AtomicU64::new(0),
            timeout: net_timeout,
        }),
        block_client: Some(BlockClient::new(
            handle.clone(),
            security.clone(),
            max_frame,
            net_timeout,
        )),
        files: Arc::new(crate::files::ExecutorFiles::new(
            // In the private scratch directory, so the files go with it when the executor stops.
            work_root.join("userFiles"),
            Some(crate::files::Remote {
                client: BlockClient::new(
                    handle.clone(),
                    security.clone(),
                    max_frame,
                    Duration::from_millis(ember_conf.get_time_ms(conf::FILES_FETCH_TIMEOUT)?),
                ),
                max_in_flight: ember_conf.get_size_bytes(conf::REDUCER_MAX_SIZE_IN_FLIGHT)?,
                fetch_timeout: Duration::from_millis(
                    ember_conf.get_time_ms(conf::FILES_FETCH_TIMEOUT)?,
                ),
            }),
        )?),
        conf: Arc::new(ember_conf.clone()),
    });
    let max_direct = ember_conf
        .get_size_bytes(conf::TASK_MAX_DIRECT_RESULT_SIZE)?
        .min(max_frame as u64 - (max_frame as u64).min(64 << 10));
    let max_result = ember_conf.get_size_bytes(conf::DRIVER_MAX_RESULT_SIZE)?;
    let backend = Arc::new(NetBackend {
        out: out_tx.clone(),
        env: env.clone(),
        max_direct,
        max_result,
    });
    let mut executor = Executor::new_remote(env.clone(), args.cores, backend);
    let heartbeat_stop = start_heartbeater(
        &executor,
        out_tx.clone(),
        Duration::from_millis(
            ember_conf
                .get_time_ms(conf::EXECUTOR_HEARTBEAT_INTERVAL)?
                .max(1),
        ),
    );

    let mut binaries: FxHashMap<u64, TaskKind> = FxHashMap::default();
    // SIGINT/SIGTERM stop the executor as its driver's StopExecutor does, so that its scratch
    // directory goes with it; a second one exits at once.
    let mut signals = match crate::shutdown::Signals::new() {
        Ok(s) => Some(s),
        Err(e) => {
            warn!("cannot watch for SIGINT and SIGTERM (no cleanup on them): {e}");
            None
        }
    };
    let outcome = loop {
        let received = tokio::select! {
            m = reader.recv() => m,
            signo = next_signal(&mut signals) => {
                crate::shutdown::note_signal(signo);
                info!(
                    "RECEIVED SIGNAL {}: stopping the executor",
                    crate::shutdown::signal_name(signo)
                );
                break Ok(());
            }
        };
        match received {
            Ok(ToExecutor::LaunchTask(t)) => {
                debug!("Got assigned task {}", t.task_id);
                if let Some(shipped) = &t.binary {
                    // SAFETY: `shipped` comes from this executor's driver, which runs this very
                    // build (both sides compared build ids at registration, before any task), over
                    // a connection whose every frame was authenticated with keys derived from the
                    // application's secret (with `ember.authenticate` off, only a loopback driver
                    // can be reached, and the operator accepted that local processes may act as
                    // it). The driver made it with `ship` from a task body it held.
                    #[allow(unsafe_code)]
                    let decoded = unsafe { crate::ship::decode::<TaskKind>(shipped) };
                    match decoded {
                        Ok(kind) => {
                            binaries.insert(t.binary_id, kind);
                            executor.set_cached_task_binaries(binaries.len());
                        }
                        Err(e) => {
                            error!("cannot decode the task binary of stage {}: {e}", t.stage_id)
                        }
                    }
                }
                let Some(kind) = binaries.get(&t.binary_id).cloned() else {
                    let reason = crate::task::TaskEndReason::ExceptionFailure {
                        description: format!("task binary {} could not be decoded", t.binary_id),
                    };
                    let _ = out_tx.send(&ToDriver::StatusUpdate {
                        task_id: t.task_id,
                        state: crate::task::TaskState::Failed,
                        payload: WirePayload::Failure {
                            reason,
                            metrics: None,
                        },
                    });
                    continue;
                };
                executor.launch_task(TaskDescription {
                    task_id: t.task_id,
                    attempt_number: t.attempt_number,
                    executor_id: executor_id.clone(),
                    index: t.index,
                    partition_id: t.partition_id,
                    stage_id: t.stage_id,
                    stage_attempt_id: t.stage_attempt_id,
                    cpus: t.cpus,
                    barrier_tasks: t.barrier_tasks,
                    kind,
                    dependencies: t.dependencies,
                });
            }
            Ok(ToExecutor::KillTask { task_id, reason }) => executor.kill_task(task_id, &reason),
            Ok(ToExecutor::RemoveRdd { rdd_id }) => {
                executor.env().block_manager.remove_rdd(rdd_id);
            }
            Ok(ToExecutor::RemoveBroadcast { id }) => executor.env().broadcasts.remove_value(id),
            Ok(ToExecutor::RemoveTaskBinary { binary_id }) => {
                // Running tasks of the stage keep their own copy of the decoded body.
                binaries.remove(&binary_id);
                executor.set_cached_task_binaries(binaries.len());
            }
            Ok(ToExecutor::MapOutputStatuses {
                request_id,
                statuses,
            }) => {
                if let Some(tx) = pending.lock().remove(&request_id) {
                    let _ = tx.send(statuses);
                }
            }
            Ok(ToExecutor::BarrierSyncResult { request_id, result }) => {
                if let Some(tx) = barrier_waiters.lock().remove(&request_id) {
                    let _ = tx.send(result);
                }
            }
            Ok(ToExecutor::ThreadDump { request_id }) => {
                // Off this loop: the dump signals every thread, this one included, and
                // resolves symbols, which takes a while.
                let (monitor, out) = (executor.monitor(), out_tx.clone());
                let spawned = std::thread::Builder::new()
                    .name("thread-dump".into())
                    .spawn(move || {
                        super::stack_guard::install_thread();
                        let threads = monitor.dump_threads();
                        let _ = out.send(&ToDriver::ThreadDumpResult {
                            request_id,
                            threads,
                        });
                    });
                if let Err(e) = spawned {
                    warn!("cannot start a thread dump: {e}");
                }
            }
            Ok(ToExecutor::StopExecutor) => {
                info!("Driver commanded a shutdown");
                break Ok(());
            }
            Ok(ToExecutor::HeartbeatResponse { reregister }) => {
                // Spark's executor re-registers its block manager and keeps running. Never while
                // stopping (SPARK-34949): this loop has ended by then, so no answer is read.
                if reregister {
                    info!("Told to re-register on heartbeat");
                    let _ = out_tx.send(&reregistration(&executor.env().block_manager));
                }
            }
            Ok(ToExecutor::RegisteredExecutor { .. }) | Ok(ToExecutor::RegisterRejected { .. }) => {
                warn!("unexpected registration message")
            }
            Err(e) => {
                // No executor outlives its driver.
                error!("Driver {driver} disassociated! Shutting down. ({e})");
                break Ok(());
            }
        }
    };
    if let (Some(mut s), Some(code)) = (signals, crate::shutdown::signal_exit_code()) {
        tokio::spawn(async move {
            s.next().await;
            std::process::exit(code);
        });
    }
    drop(heartbeat_stop);
    // Stop running tasks on blocking threads so this async context is not blocked by joins.
    let _ = tokio::task::spawn_blocking(move || executor.stop()).await;
    writer_task.abort();
    server.stop();
    let _ = std::fs::remove_dir_all(&work_root);
    outcome
}

/// Spark's `BlockManager.reregister`: the block manager registers again with every block it
/// holds (`reportAllBlocks`).
fn reregistration(bm: &BlockManager) -> ToDriver {
    let id = bm.id();
    info!(
        "BlockManager BlockManagerId({}, {}, {}) re-registering with master",
        id.executor_id, id.host, id.port
    );
    let (blocks, memory) = bm.all_block_statuses();
    ToDriver::ReregisterBlockManager {
        blocks: blocks
            .into_iter()
            .map(|(crate::storage::BlockId::Rdd { rdd_id, partition }, status)| {
                (rdd_id, partition, status)
            })
            .collect(),
        memory,
    }
}

/// Joins the driver, retrying with backoff while nothing listens there yet (an executor started
/// before its driver) for up to `ember.executor.driverConnectTimeout` from the executor's own
/// `EMBER_CONF`.
async fn connect_with_retries(
    driver: SocketAddr,
    security: &Security,
    max_frame: usize,
    timeout: Duration,
) -> Result<Connection<ToExecutor, ToDriver>> {
    let patience = EmberConf::from_env()?.get_time_ms(conf::EXECUTOR_DRIVER_CONNECT_TIMEOUT)?;
    let deadline = std::time::Instant::now() + Duration::from_millis(patience);
    let mut backoff = Duration::from_millis(100);
    loop {
        let e =
            match Connection::<ToExecutor, ToDriver>::connect(driver, security, max_frame, timeout)
                .await
            {
                Ok(conn) => return Ok(conn),
                // Nothing listening (yet): worth another try. A refused handshake is not.
                Err(e @ crate::rpc::RpcError::Io(_)) => e,
                Err(e) => {
                    return Err(EmberError::network(
                        format!("cannot join the driver at {driver}"),
                        e,
                    ))
                }
            };
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(EmberError::network(
                format!(
                    "cannot join the driver at {driver} (tried for {} s, \
                     ember.executor.driverConnectTimeout)",
                    patience / 1000
                ),
                e,
            ));
        }
        info!(
            "Cannot reach the driver at {driver} yet ({e}); retrying in {} ms",
            backoff.as_millis()
        );
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The next SIGINT or SIGTERM, never without a handler.
async fn next_signal(signals: &mut Option<crate::shutdown::Signals>) -> i32 {
    match signals {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// When the first heartbeat goes out: within one interval of registration, so that any
/// `ember.network.timeout` above the interval (all that is allowed) keeps a healthy executor,
/// at a random point of the interval's second half so that executors started together do not
/// beat in step. (Spark waits one to two intervals, which a timeout between one and two
/// intervals turns into the loss of healthy executors.)
fn first_heartbeat_delay(interval: Duration, rng: &mut impl rand::Rng) -> Duration {
    let ms = interval.as_millis().min(u64::MAX as u128) as u64;
    Duration::from_millis(ms - ms / 2 + rng.random_range(0..=ms / 2))
}

/// Sends a heartbeat with the running tasks' metrics every `interval`, the first within one
/// interval ([`first_heartbeat_delay`]). Stops when the returned sender is dropped.
fn start_heartbeater(
    executor: &Executor,
    out: DriverOut,
    interval: Duration,
) -> crossbeam_channel::Sender<()> {
    use rand::SeedableRng;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let monitor = executor.monitor();
    let memory = executor.env().memory_manager.clone();
    let first = first_heartbeat_delay(interval, &mut rand::rngs::SmallRng::from_os_rng());
    let spawned = std::thread::Builder::new()
        .name("executor-heartbeater".into())
        .spawn(move || {
            super::stack_guard::install_thread();
            let mut wait = first;
            // A timer, not a wait for an event: the stop channel ends it at once.
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(wait)
            {
                let sent = out.send(&ToDriver::Heartbeat {
                    task_metrics: monitor.running_metrics(),
                    executor_metrics: monitor.source_metrics(),
                    memory: memory.metrics(),
                });
                match sent {
                    Ok(()) => {}
                    // Only that heartbeat is lost; the driver hears the next one.
                    Err(e @ ember_net::RpcError::FrameTooLarge { .. }) => {
                        warn!("heartbeat not sent: {e}")
                    }
                    Err(_) => break,
                }
                wait = interval;
            }
        });
    if let Err(e) = spawned {
        error!("cannot start the heartbeat thread: {e}");
    }
    stop_tx
}

/// What this executor's block server serves: its shuffle outputs, from the start, and its
/// block manager's blocks, which it answers "not found" for until the block manager exists (its
/// id needs the server's port).
struct LateStore {
    block_manager: Arc<std::sync::OnceLock<Arc<BlockManager>>>,
    /// Where this executor's map outputs are written.
    local_dir: std::path::PathBuf,
}

impl BlockStore for LateStore {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.block_manager
            .get()
            .and_then(|bm| BlockStore::get_bytes(bm.as_ref(), id))
    }
    fn remove(&self, id: &str) -> bool {
        self.block_manager
            .get()
            .is_some_and(|bm| BlockStore::remove(bm.as_ref(), id))
    }
    fn open_shuffle_block(
        &self,
        shuffle_id: ShuffleId,
        map_id: u64,
        reduce_id: usize,
    ) -> std::result::Result<ShuffleBlock, String> {
        crate::shuffle::open_block(&self.local_dir, shuffle_id, map_id, reduce_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scratch_directories_are_private_fresh_and_never_a_planted_path() {
        let root = tempfile::tempdir().unwrap();
        let a = private_scratch_dir(root.path(), "7").unwrap();
        let b = private_scratch_dir(root.path(), "7").unwrap();
        assert_ne!(a, b, "each start gets a fresh name, not a predictable one");
        for d in [&a, &b] {
            let meta = std::fs::symlink_metadata(d).unwrap();
            assert!(meta.is_dir());
            assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{d:?}");
        }
        // The old predictable name, planted by someone else, is not what the executor uses.
        let planted = root
            .path()
            .join(format!("ember-executor-{}-7", std::process::id()));
        std::fs::create_dir(&planted).unwrap();
        let c = private_scratch_dir(root.path(), "7").unwrap();
        assert_ne!(c, planted);
    }
}
