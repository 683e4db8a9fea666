//! A cluster on two machines, made of Linux network namespaces (issue #13): a driver in one
//! namespace, two executors in another, joined by a veth pair, started as the README's
//! multi-host walkthrough starts them (the same `wordcount` binary, `--master ember://…` on the
//! driver, `executor --driver …` on the workers), with `ember.authenticate` and a secret. A
//! relay process on the executors' path to the driver records every byte it forwards across the
//! veth pair.
//!
//! Needs root and `ip` (iproute2); skipped with a message elsewhere. Every namespace, link,
//! process and file it makes is removed at the end, also when it fails (`Lab`'s `Drop`), and
//! the test checks that nothing is left.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::example;

/// The driver's address, on its end of the veth pair.
const DRIVER: &str = "10.77.0.1";
/// The executors' address, on the other end.
const EXECUTORS: &str = "10.77.0.2";
const DRIVER_PORT: u16 = 7077;
/// The relay listens beside the driver; executors join the driver through it.
const RELAY_PORT: u16 = 7078;
const SECRET: &str = "netns-test-secret-4f1c";
const T: Duration = Duration::from_secs(120);
/// Tells a re-executed test binary to be the relay: `LISTEN UPSTREAM CAPTURE_FILE`.
const RELAY_ENV: &str = "EMBER_TEST_NETNS_RELAY";

/// Words that occur nowhere else in the traffic (names, ids, configuration), with how often
/// each is in the corpus.
const WORDS: [(&str, usize); 6] = [
    ("xylophonist", 211),
    ("quokkalike", 157),
    ("zebrafinch", 101),
    ("marzipanic", 64),
    ("brontosaurish", 23),
    ("kumquatery", 5),
];

static LABS: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Two namespaces joined by a veth pair, the processes started in them and a private directory
/// (their `TMPDIR`, the corpus, logs, the capture). Dropping it stops the processes and removes
/// the namespaces, with the veth pair in them, then the directory.
struct Lab {
    driver_ns: String,
    executor_ns: String,
    veth: [String; 2],
    children: Vec<(String, Child)>,
    dir: tempfile::TempDir,
    torn_down: bool,
}

impl Lab {
    /// `Err` (the reason) when this machine does not let the test make namespaces.
    fn new() -> Result<Lab, String> {
        if !is_root() {
            return Err("network namespaces need root".into());
        }
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}x{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("ember-netns-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        std::fs::create_dir(dir.path().join("tmp")).map_err(|e| e.to_string())?;
        let mut lab = Lab {
            driver_ns: format!("ember-test-{tag}-driver"),
            executor_ns: format!("ember-test-{tag}-exec"),
            // Interface names have at most 15 bytes: 3 + a pid (at most 7 digits) + x + n.
            veth: [format!("emd{tag}"), format!("eme{tag}")],
            children: Vec::new(),
            dir,
            torn_down: false,
        };
        // The first namespace tells whether namespaces are allowed here at all; a failure after
        // it is a failure of the test.
        ip(&["netns", "add", &lab.driver_ns])
            .map_err(|e| format!("network namespaces are not allowed here ({e})"))?;
        let (d, e) = (lab.driver_ns.clone(), lab.executor_ns.clone());
        let [vd, ve] = lab.veth.clone();
        let (d_addr, e_addr) = (format!("{DRIVER}/24"), format!("{EXECUTORS}/24"));
        let steps: [&[&str]; 9] = [
            &["netns", "add", &e],
            &[
                "-n", &d, "link", "add", &vd, "type", "veth", "peer", "name", &ve, "netns", &e,
            ],
            &["-n", &d, "addr", "add", &d_addr, "dev", &vd],
            &["-n", &e, "addr", "add", &e_addr, "dev", &ve],
            &["-n", &d, "link", "set", &vd, "up"],
            &["-n", &e, "link", "set", &ve, "up"],
            // Each namespace reaches its own address through its loopback device.
            &["-n", &d, "link", "set", "lo", "up"],
            &["-n", &e, "link", "set", "lo", "up"],
            &["-n", &e, "route", "get", DRIVER],
        ];
        for step in steps {
            if let Err(err) = ip(step) {
                lab.teardown();
                panic!("setting up the namespaces failed: {err}");
            }
        }
        Ok(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `program args` in namespace `ns`, with the secret in its environment (never on
    /// its command line), `TMPDIR` in the lab and its output in `<name>.out` / `<name>.err`.
    fn spawn(&mut self, name: &str, ns: &str, program: &Path, args: &[&str], env: &[(&str, &str)]) {
        let out = File::create(self.path(&format!("{name}.out"))).unwrap();
        let err = File::create(self.path(&format!("{name}.err"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .env("TMPDIR", self.path("tmp"))
            .env("EMBER_AUTH_SECRET", SECRET)
            .env_remove("EMBER_CONF")
            .env_remove("EMBER_MASTER")
            .env_remove("EMBER_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.children.push((name.to_string(), child));
    }

    fn output(&self, name: &str, stream: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.{stream}"))).unwrap_or_default()
    }

    /// Waits until process `name` exits; panics with its stderr after [`T`] or on failure.
    fn wait_success(&mut self, name: &str) {
        self.wait_exit_allowing(name, &[]);
    }

    /// The process id of `name`.
    fn pid(&self, name: &str) -> u32 {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, child)| child.id())
            .expect("a process of the lab")
    }

    /// Ends process `name` of the lab (SIGKILL) and reaps it.
    fn kill(&mut self, name: &str) {
        if let Some((_, child)) = self.children.iter_mut().find(|(n, _)| n == name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for `name` to exit: successfully, or failing with one of `allowed` in its stderr.
    fn wait_exit_allowing(&mut self, name: &str, allowed: &[&str]) {
        let deadline = Instant::now() + T;
        loop {
            let (_, child) = self
                .children
                .iter_mut()
                .find(|(n, _)| n == name)
                .expect("a process of the lab");
            if let Some(status) = child.try_wait().unwrap() {
                let err = self.output(name, "err");
                assert!(
                    status.success() || allowed.iter().any(|a| err.contains(a)),
                    "{name} failed ({status}): {err}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not exit within {T:?}: {}",
                self.output(name, "err")
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Stops the processes still running, checks that no other process is left in the
    /// namespaces, removes them, and returns what was left behind (empty when nothing).
    fn teardown(&mut self) -> Vec<String> {
        self.torn_down = true;
        let mut left = Vec::new();
        for (_, child) in &mut self.children {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for ns in [&self.driver_ns, &self.executor_ns] {
            if let Ok(pids) = ip(&["netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    left.push(format!("process {pid} in namespace {ns}"));
                    // Started by one of this lab's processes: ended by its id.
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
        left
    }

    /// Tears down and checks that nothing of the lab is left: namespaces, links, processes,
    /// files in its `TMPDIR`.
    fn close_and_check(mut self) {
        let mut left = self.teardown();
        let namespaces = ip(&["netns", "list"]).unwrap_or_default();
        for ns in [&self.driver_ns, &self.executor_ns] {
            if namespaces.contains(ns.as_str()) {
                left.push(format!("namespace {ns}"));
            }
        }
        let links = ip(&["-o", "link", "show"]).unwrap_or_default();
        for v in &self.veth {
            if links.contains(v.as_str()) {
                left.push(format!("link {v}"));
            }
        }
        for (name, child) in &self.children {
            if Path::new(&format!("/proc/{}", child.id())).exists() {
                left.push(format!("process {name} ({})", child.id()));
            }
        }
        for e in std::fs::read_dir(self.path("tmp")).unwrap().flatten() {
            left.push(format!("file {}", e.path().display()));
        }
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.torn_down {
            self.teardown();
        }
    }
}

/// Runs a word count of a fresh corpus on a driver and two executors in separate namespaces,
/// with encryption on or off; checks the counts and returns the relay's capture, or `None` when
/// namespaces cannot be made here.
fn word_count_across_namespaces(encrypt: bool) -> Option<Vec<u8>> {
    let mut lab = match Lab::new() {
        Ok(lab) => lab,
        Err(why) => {
            eprintln!("netns test skipped: {why}");
            return None;
        }
    };
    let wordcount = example("wordcount");
    let corpus = lab.path("corpus.txt");
    let mut text = String::new();
    let mut left: Vec<(&str, usize)> = WORDS.to_vec();
    // Lines of a few words each, the words interleaved.
    while left.iter().any(|(_, n)| *n > 0) {
        for (w, n) in left.iter_mut().filter(|(_, n)| *n > 0) {
            text.push_str(w);
            text.push(if *n % 4 == 0 { '\n' } else { ' ' });
            *n -= 1;
        }
    }
    std::fs::write(&corpus, text).unwrap();
    let corpus = corpus.to_str().unwrap().to_string();
    let crypto = format!("ember.network.crypto.enabled={encrypt}");
    let (driver_ns, executor_ns) = (lab.driver_ns.clone(), lab.executor_ns.clone());

    let master = format!("ember://{DRIVER}:{DRIVER_PORT}");
    let driver_host = format!("ember.driver.host={DRIVER}");
    let driver_args = [
        corpus.as_str(),
        "--top",
        "0",
        "--master",
        &master,
        "--conf",
        "ember.authenticate=true",
        "--conf",
        &crypto,
        "--conf",
        &driver_host,
        "--conf",
        "ember.ui.enabled=false",
        "--conf",
        "ember.ui.showConsoleProgress=false",
    ];
    // The driver logs which executor processes registered (their pids), at info.
    let log = [("EMBER_LOG", "warn,ember::scheduler::cluster_backend=info")];
    lab.spawn("driver", &driver_ns, &wordcount, &driver_args, &log);

    let relay_spec = format!(
        "{DRIVER}:{RELAY_PORT} {DRIVER}:{DRIVER_PORT} {}",
        lab.path("capture").display()
    );
    let me = std::env::current_exe().unwrap();
    lab.spawn(
        "relay",
        &driver_ns,
        &me,
        &[
            "netns::recording_relay_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ],
        &[(RELAY_ENV, &relay_spec)],
    );

    let via_relay = format!("{DRIVER}:{RELAY_PORT}");
    for name in ["executor-1", "executor-2"] {
        let args = [
            "executor", "--driver", &via_relay, "--host", EXECUTORS, "--cores", "1", "--memory",
            "512m", "--conf", &crypto,
        ];
        lab.spawn(name, &executor_ns, &wordcount, &args, &[]);
    }

    lab.wait_success("driver");
    let mut got = BTreeMap::new();
    for line in lab.output("driver", "out").lines() {
        let (w, n) = line.split_once('\t').expect("word<TAB>count");
        got.insert(w.to_string(), n.parse::<usize>().unwrap());
    }
    let expected: BTreeMap<String, usize> =
        WORDS.iter().map(|(w, n)| (w.to_string(), *n)).collect();
    assert_eq!(got, expected, "the cluster's word count is exact");
    // Executors that joined exit when their driver's connection closes.
    // The driver runs the job as soon as one executor is there (as Spark's standalone mode does,
    // whose minRegisteredResourcesRatio is 0): the other may still be joining when the driver
    // stops, told so by the closed connection, or still waiting in the relay for a driver that
    // is gone (it would keep trying for ember.executor.driverConnectTimeout): that one is ended
    // here, as nothing of the job depends on it.
    lab.kill("relay");
    let driver_log = lab.output("driver", "err");
    for name in ["executor-1", "executor-2"] {
        let joined = driver_log.contains(&format!("pid {})", lab.pid(name)));
        if joined {
            let race = "the driver closed the connection during registration";
            lab.wait_exit_allowing(name, &[race]);
        } else {
            lab.kill(name);
        }
    }
    assert!(
        driver_log.contains("Registered executor"),
        "an executor ran the job: {driver_log}"
    );
    let capture = std::fs::read(lab.path("capture")).unwrap_or_default();
    lab.close_and_check();
    Some(capture)
}

fn shows_a_word(capture: &[u8]) -> Vec<&'static str> {
    WORDS
        .iter()
        .map(|(w, _)| *w)
        .filter(|w| capture.windows(w.len()).any(|x| x == w.as_bytes()))
        .collect()
}

#[test]
fn a_cluster_across_network_namespaces_counts_words_exactly_and_encrypted_traffic_shows_none() {
    let Some(plain) = word_count_across_namespaces(false) else {
        return;
    };
    assert!(
        plain.len() > 1000,
        "the relay carried the cluster's traffic"
    );
    assert!(
        !shows_a_word(&plain).is_empty(),
        "the control: with authentication only the words cross the wire in clear, so the \
         capture sees the traffic"
    );
    let encrypted = word_count_across_namespaces(true).expect("namespaces worked a moment ago");
    assert!(
        encrypted.len() > 1000,
        "the relay carried the cluster's traffic"
    );
    assert_eq!(
        shows_a_word(&encrypted),
        Vec::<&str>::new(),
        "with ember.network.crypto.enabled no word of the corpus crosses the wire in clear"
    );
}

/// Not a test: the relay process of the test above, which starts this binary in the driver's
/// namespace with [`RELAY_ENV`] set. It forwards each connection to the driver and appends every
/// byte it forwards, both ways, to the capture file, until it is killed.
#[test]
#[ignore = "the relay process of the namespace test, started by it"]
fn recording_relay_process() {
    let Ok(spec) = std::env::var(RELAY_ENV) else {
        return;
    };
    let [listen, upstream, capture]: [&str; 3] = spec
        .splitn(3, ' ')
        .collect::<Vec<_>>()
        .try_into()
        .expect("LISTEN UPSTREAM CAPTURE");
    let capture = Arc::new(Mutex::new(File::create(capture).expect("capture file")));
    let listener = TcpListener::bind(listen).expect("the relay listens");
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let (capture, upstream) = (capture.clone(), upstream.to_string());
        std::thread::spawn(move || {
            // The driver may still be starting: retry until it listens.
            let deadline = Instant::now() + T;
            let server = loop {
                match TcpStream::connect(&upstream) {
                    Ok(s) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::park_timeout(Duration::from_millis(50))
                    }
                    Err(_) => return,
                }
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let capture = capture.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        capture.lock().unwrap().write_all(&buf[..n]).unwrap();
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        });
    }
}
