//! Process lifecycle: SIGINT, SIGTERM and SIGKILL of a driver, of its executors and of its
//! process group leave nothing in the temp dir.
//!
//! The driver is this test binary itself, run in a child process as the ignored test
//! `signal_probe` with a private `TMPDIR`, so that everything the application and its executors
//! create lands in a directory the test can check exactly.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::context;
use ember::prelude::*;

const PROBE_ENV: &str = "EMBER_LIFECYCLE_PROBE";
const WAIT: Duration = Duration::from_secs(90);
const CLUSTER: &str = "local-cluster[2,1,1024]";

/// The driver program of these tests (runs only in their child processes): writes shuffle
/// files, then runs a job whose two tasks never end (slow records, each a point where a task
/// can be stopped), prints `READY <executor pids>` once both run, and `ADDED <n> <pids>` when
/// executors register later.
#[test]
#[ignore = "the driver program of the lifecycle tests, run by them in a child process"]
fn signal_probe() {
    let Ok(master) = std::env::var(PROBE_ENV) else {
        return;
    };
    // The driver's own log (EMBER_LOG=info), as a program's would be, for the tests to read.
    ember::init_logging();
    let ctx = context(&master, &[]);
    if std::env::var(STUCK_ENV).is_ok() {
        ctx.add_listener(StuckAtTheEnd).unwrap();
    }
    let keys = ctx
        .parallelize((0..1000u64).collect(), 4)
        .map(|x| (x % 10, x))
        .reduce_by_key(|a, b| a + b, 2)
        .count()
        .unwrap();
    assert_eq!(keys, 10);
    let job = ctx.clone();
    std::thread::spawn(move || {
        let r = job
            .parallelize((0..1_000_000u64).collect(), 2)
            .map(|x| {
                std::thread::sleep(Duration::from_millis(5));
                x
            })
            .count();
        println!("JOB ENDED {r:?}");
        std::process::exit(3);
    });
    assert!(
        ctx.wait_for_status(WAIT, |s| s.running_tasks >= 2),
        "tasks did not start: {:?}",
        ctx.status()
    );
    let pids = |ctx: &Context| {
        ctx.executor_pids()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    println!("READY {}", pids(&ctx));
    let mut added = ctx.status().executors_added;
    loop {
        if ctx.wait_for_status(WAIT, |s| s.executors_added > added) {
            added = ctx.status().executors_added;
            println!("ADDED {added} {}", pids(&ctx));
        }
    }
}

/// Makes `signal_probe`'s stop hang: a listener that never finishes with the application's end
/// (the stop waits for every listener to see the last events).
const STUCK_ENV: &str = "EMBER_LIFECYCLE_STUCK";

struct StuckAtTheEnd;

impl ember::listener::Listener for StuckAtTheEnd {
    fn on_application_end(&mut self, _: &ember::listener::events::ApplicationEnd) {
        // A hung listener, as far as the stop can tell (the test never waits this long).
        std::thread::sleep(Duration::from_secs(600));
    }
}

/// A driver started by `signal_probe` in its own process group.
struct Probe {
    child: Child,
    tmp: tempfile::TempDir,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Probe {
    fn start(master: &str) -> Probe {
        Self::start_with(master, &[])
    }

    fn start_with(master: &str, env: &[(&str, &str)]) -> Probe {
        let tmp = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.envs(env.iter().copied());
        cmd.args([
            "--exact",
            "lifecycle::signal_probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, master)
        .env("TMPDIR", tmp.path())
        .env("EMBER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut err, sink) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Probe {
            child,
            tmp,
            lines,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The rest of the first output line that starts with `prefix`.
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // libtest's "test lifecycle::signal_probe ... " may precede the first line.
                    if let Some((_, rest)) = line.split_once(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(e) => panic!(
                    "no line {prefix:?} from the driver ({e}); its log:\n{}",
                    self.log()
                ),
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the driver did not exit; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What is left in the private temp dir.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        collect(self.tmp.path(), &mut left);
        left
    }
}

/// A failed test leaves no driver behind (its executors then see the connection drop).
impl Drop for Probe {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &(-self.pid()).to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path().display().to_string());
        if e.path().is_dir() {
            collect(&e.path(), out);
        }
    }
}

/// Sends `signal` (a name such as `INT`) to a process, or to a process group if `target` is
/// negative.
fn kill(signal: &str, target: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {target} failed");
}

fn pids(list: &str) -> Vec<i32> {
    list.split([',', ' '])
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Whether a process has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn wait_until_ended(pids: &[i32], probe: &Probe) {
    let deadline = Instant::now() + WAIT;
    while !pids.iter().all(|p| ended(*p)) {
        assert!(
            Instant::now() < deadline,
            "executor processes {pids:?} outlived their driver; its log:\n{}",
            probe.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Signals a running application (its driver alone, or its whole process group) and checks that
/// it exits with the signal's status and leaves nothing behind.
fn stops_cleanly(master: &str, signal: &str, group: bool) {
    let mut probe = Probe::start(master);
    let executors = pids(&probe.expect("READY"));
    assert!(
        !probe.leftovers().is_empty(),
        "the application has scratch files while it runs"
    );
    for pid in &executors {
        // Named after the program and its role in `ps`.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = std::env::current_exe()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            argv[..3],
            [program, "executor".to_string(), "--driver".to_string()],
            "{argv:?}"
        );
    }
    kill(signal, if group { -probe.pid() } else { probe.pid() });
    let status = probe.wait_exit();
    let expected = if signal == "INT" { 130 } else { 143 };
    assert_eq!(
        status.code(),
        Some(expected),
        "{status}; log:\n{}",
        probe.log()
    );
    wait_until_ended(&executors, &probe);
    assert_eq!(
        probe.leftovers(),
        Vec::<String>::new(),
        "left behind after SIG{signal}; log:\n{}",
        probe.log()
    );
}

#[test]
fn sigint_stops_a_local_application_and_leaves_nothing() {
    stops_cleanly("local[2]", "INT", false);
}

#[test]
fn sigterm_to_the_process_group_stops_a_local_application_and_leaves_nothing() {
    stops_cleanly("local[2]", "TERM", true);
}

#[test]
fn sigint_to_the_process_group_stops_a_local_cluster_application_and_its_executors() {
    stops_cleanly(CLUSTER, "INT", true);
}

#[test]
fn sigterm_stops_a_local_cluster_application_and_its_executors() {
    stops_cleanly(CLUSTER, "TERM", false);
}

#[test]
fn the_driver_deletes_the_directory_of_a_sigkilled_executor() {
    let mut probe = Probe::start(CLUSTER);
    let executors = pids(&probe.expect("READY"));
    let victim = executors[0];
    let prefix = format!("ember-executor-{victim}-");
    let has_dir = |probe: &Probe| {
        probe.leftovers().iter().any(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
    };
    assert!(
        has_dir(&probe),
        "the executor has a scratch directory: {:?}",
        probe.leftovers()
    );
    kill("KILL", victim);
    // Its replacement registers after the driver has reaped it and deleted its directory.
    let now = pids(&probe.expect("ADDED 3"));
    assert!(
        !has_dir(&probe),
        "the killed executor's directory is left: {:?}",
        probe.leftovers()
    );
    kill("TERM", probe.pid());
    assert_eq!(probe.wait_exit().code(), Some(143), "log:\n{}", probe.log());
    wait_until_ended(&now, &probe);
    assert_eq!(
        probe.leftovers(),
        Vec::<String>::new(),
        "log:\n{}",
        probe.log()
    );
}

fn sigkill_of_the_driver_leaves_nothing(group: bool) {
    let mut probe = Probe::start(CLUSTER);
    let executors = pids(&probe.expect("READY"));
    kill("KILL", if group { -probe.pid() } else { probe.pid() });
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&probe.wait_exit()),
        Some(9)
    );
    // The executors see their driver's connection drop, stop, and delete their directories.
    wait_until_ended(&executors, &probe);
    assert_eq!(
        probe.leftovers(),
        Vec::<String>::new(),
        "log:\n{}",
        probe.log()
    );
}

#[test]
fn executors_of_a_sigkilled_driver_delete_their_directories() {
    sigkill_of_the_driver_leaves_nothing(false);
}

#[test]
fn sigkill_of_the_process_group_of_a_local_cluster_application_leaves_nothing() {
    sigkill_of_the_driver_leaves_nothing(true);
}

/// Ctrl-C while the first Ctrl-C's stop hangs (here on a listener that never returns) exits at
/// once, with the same status, saying so.
#[test]
fn a_second_sigint_exits_at_once_while_the_first_stop_hangs() {
    let mut probe = Probe::start_with("local[2]", &[(STUCK_ENV, "1")]);
    probe.expect("READY");
    kill("INT", probe.pid());
    let deadline = Instant::now() + WAIT;
    while !probe.log().contains("RECEIVED SIGNAL INT: stopping") {
        assert!(
            Instant::now() < deadline,
            "the first SIGINT was not seen; log:\n{}",
            probe.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        probe.child.try_wait().unwrap().is_none(),
        "the stop did not hang; log:\n{}",
        probe.log()
    );
    kill("INT", probe.pid());
    let status = probe.wait_exit();
    assert_eq!(status.code(), Some(130), "{status}; log:\n{}", probe.log());
    assert!(
        probe
            .log()
            .contains("RECEIVED SIGNAL INT again: exiting without cleaning up"),
        "log:\n{}",
        probe.log()
    );
}

/// A local-mode driver killed outright leaves its directory, with shuffle files in it: nothing
/// of it survives to delete them. The next application started on the machine does.
#[test]
fn the_next_application_deletes_what_a_sigkilled_local_driver_left() {
    let mut probe = Probe::start("local[2]");
    probe.expect("READY");
    kill("KILL", probe.pid());
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&probe.wait_exit()),
        Some(9)
    );
    let left = probe.leftovers();
    assert!(
        left.iter().any(|p| p.contains("shuffle_")),
        "the killed driver left no shuffle files: {left:?}"
    );
    let dir = probe.tmp.path().display().to_string();
    let ctx = context("local[1]", &[("ember.local.dir", dir.as_str())]);
    assert_eq!(ctx.parallelize(vec![1u8, 2, 3], 1).count().unwrap(), 3);
    ctx.stop();
    assert_eq!(probe.leftovers(), Vec::<String>::new());
}

/// Spark's DistributedSuite "repeatedly failing task that crashes JVM" (and SPARK-16925, with a
/// zero exit code): a task that ends its executor's process fails its job after
/// `ember.task.maxFailures` attempts, and the application keeps working.
#[test]
fn a_task_that_exits_its_executor_fails_the_job_after_max_failures() {
    let ctx = context(CLUSTER, &[]);
    for (code, input) in [(42, 1u32), (0, 2)] {
        let err = ctx
            .parallelize((1..=10u32).map(|x| x * input).collect(), 2)
            .foreach(|x| {
                if x == 1 {
                    std::process::exit(42);
                }
                if x == 2 {
                    std::process::exit(0);
                }
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("failed 4 times"), "{err}");
        assert!(
            err.contains(
                "exited caused by one of the running tasks) Reason: Command exited with code "
            ) && err.contains(&format!("code {code}")),
            "{err}"
        );
        assert_eq!(
            ctx.parallelize((0..100u32).collect(), 4).count().unwrap(),
            100,
            "the context keeps working"
        );
    }
    ctx.stop();
}

#[test]
fn task_cpus_above_an_executors_cores_fail_the_context_with_sparks_message() {
    for master in ["local[1]", "local-cluster[1,1,1024]"] {
        let conf = EmberConf::new()
            .set_master(master)
            .set("ember.task.cpus", "2");
        let err = Context::new(conf).err().expect("refused").to_string();
        assert!(
            err.contains(
                "The number of cores per executor (=1) has to be >= the number of cpus per task = \
                 2."
            ),
            "{master}: {err}"
        );
    }
}

#[test]
fn a_standalone_executor_with_fewer_cores_than_a_task_needs_is_refused() {
    use ember::rpc::connection::Connection;
    use ember::rpc::messages::{ToDriver, ToExecutor};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx = context(
        &format!("ember://127.0.0.1:{port}"),
        &[
            ("ember.authenticate", "true"),
            ("ember.authenticate.secret", "cpus"),
            ("ember.task.cpus", "2"),
        ],
    );
    let addr = ctx.driver_address().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = rt.block_on(async {
        let mut conn = Connection::<ToExecutor, ToDriver>::connect(
            addr,
            &ember::rpc::secret::Security::authenticated("cpus"),
            1 << 20,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        conn.send(&ToDriver::RegisterExecutor {
            requested_id: None,
            host: "127.0.0.1".into(),
            cores: 1,
            memory_mb: 512,
            block_port: 1,
            build_id: ember::util::build_id().unwrap(),
            pid: 1,
        })
        .await
        .unwrap();
        conn.recv().await.unwrap()
    });
    match reply {
        ToExecutor::RegisterRejected { reason } => assert!(
            reason.contains("ember.task.cpus") && reason.contains("1 cores"),
            "{reason}"
        ),
        other => panic!("registered: {other:?}"),
    }
    assert!(ctx.executor_infos().is_empty());
    ctx.stop();
}

/// An executor started by hand before its driver listens keeps trying (with backoff, saying so
/// at INFO) and joins once the driver is up.
#[test]
fn an_executor_started_before_its_driver_joins_it() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "executor",
        "--driver",
        &format!("127.0.0.1:{port}"),
        "--cores",
        "1",
    ])
    .env("EMBER_AUTH_SECRET", "early")
    .env("EMBER_LOG", "info")
    .env("TMPDIR", tmp.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut executor = cmd.spawn().unwrap();
    // The deliberate head start: the executor runs 3 s before its driver exists.
    std::thread::sleep(Duration::from_secs(3));
    let ctx = context(
        &format!("ember://127.0.0.1:{port}"),
        &[
            ("ember.authenticate", "true"),
            ("ember.authenticate.secret", "early"),
        ],
    );
    let joined = ctx.wait_for_status(WAIT, |s| s.executors_added == 1);
    if !joined {
        let _ = executor.kill();
    }
    assert!(joined, "the early executor never joined");
    assert_eq!(
        ctx.parallelize((0..100u32).collect(), 2).count().unwrap(),
        100
    );
    ctx.stop();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = executor.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the executor did not stop with its driver"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut log = String::new();
    executor
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("INFO")
            && log.contains("Cannot reach the driver at")
            && log.contains("retrying in"),
        "{log}"
    );
    // Told to stop by a driver that stopped normally: nothing to warn about.
    assert!(
        !log.contains("ERROR") && !log.contains("WARN"),
        "a standalone executor's normal stop logged a problem:\n{log}"
    );
    let mut left = Vec::new();
    collect(tmp.path(), &mut left);
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn a_local_master_with_more_threads_than_the_machine_gives_fails_naming_it() {
    let err = Context::new(EmberConf::new().set_master("local[100000000]"))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("\"local[100000000]\"")
            && err.contains("more than this machine gives one process"),
        "{err}"
    );
    // A large pool that fits starts at once: its threads start as tasks need them.
    let ctx = context("local[2000]", &[]);
    assert_eq!(
        ctx.parallelize((0..10u32).collect(), 2).count().unwrap(),
        10
    );
    ctx.stop();
}
