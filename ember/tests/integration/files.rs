//! Files and archives shipped to executors (`add_file`, `add_archive`, `EmberFiles`), on every
//! kind of master: `local[2]`, `local-cluster[2,1,1024]`, and a standalone driver with two
//! executors started by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::context;
use ember::prelude::*;

const SECRET: &str = "files-secret";

#[derive(Clone, Copy, Debug)]
enum Mode {
    Local,
    LocalCluster,
    Standalone,
}

const MODES: [Mode; 3] = [Mode::Local, Mode::LocalCluster, Mode::Standalone];

/// An application and the executor processes started for it by hand.
struct App {
    ctx: Context,
    executors: Vec<Child>,
    /// Held while the application runs (dropped last).
    _alone: std::sync::MutexGuard<'static, ()>,
}

/// `EmberFiles::get` outside a task, like Spark's `SparkFiles.get`, speaks of the application of
/// this process, and in local mode the tasks run in it too; these tests add the same names, so
/// their applications take turns rather than share the test binary's process.
static ONE_APPLICATION: Mutex<()> = Mutex::new(());

impl App {
    fn start(mode: Mode, extra: &[(&str, &str)]) -> App {
        let alone = ONE_APPLICATION
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match mode {
            Mode::Local => App {
                ctx: context("local[2]", extra),
                executors: Vec::new(),
                _alone: alone,
            },
            Mode::LocalCluster => App {
                ctx: context("local-cluster[2,1,1024]", extra),
                executors: Vec::new(),
                _alone: alone,
            },
            Mode::Standalone => {
                let port = TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                let mut conf = vec![
                    ("ember.authenticate", "true"),
                    ("ember.authenticate.secret", SECRET),
                ];
                conf.extend_from_slice(extra);
                let ctx = context(&format!("ember://127.0.0.1:{port}"), &conf);
                let addr = ctx.driver_address().expect("a cluster driver listens");
                let executors = (0..2)
                    .map(|_| {
                        Command::new(std::env::current_exe().unwrap())
                            .args(["executor", "--driver", &addr.to_string(), "--cores", "1"])
                            .args(["--memory", "512m"])
                            .env("EMBER_AUTH_SECRET", SECRET)
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .spawn()
                            .expect("start an executor process")
                    })
                    .collect();
                let deadline = Instant::now() + Duration::from_secs(60);
                while ctx.executor_infos().len() < 2 {
                    assert!(
                        Instant::now() < deadline,
                        "the two executors did not register within 60 s"
                    );
                    std::thread::park_timeout(Duration::from_millis(20));
                }
                App {
                    ctx,
                    executors,
                    _alone: alone,
                }
            }
        }
    }

    fn stop(mut self) {
        self.ctx.stop();
        for child in &mut self.executors {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "executor {} did not exit after its driver stopped",
                        child.id()
                    );
                }
                std::thread::park_timeout(Duration::from_millis(10));
            }
        }
    }
}

fn is_cluster(mode: Mode) -> bool {
    !matches!(mode, Mode::Local)
}

/// A `.tar.gz` of `n` files `f<i>.txt` holding `i`.
fn tar_gz(path: &Path, n: usize) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    for i in 0..n {
        let data = i.to_string();
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("f{i}.txt"), data.as_bytes())
            .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

/// A `.tar` whose second entry is `../escaped.txt` (a "zip slip").
fn evil_tar(path: &Path) {
    let mut b = tar::Builder::new(Vec::new());
    for name in ["fine.txt", "../escaped.txt"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        // `set_path` refuses `..` (rightly): write the raw name.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &b"bad"[..]).unwrap();
    }
    std::fs::write(path, b.into_inner().unwrap()).unwrap();
}

/// What one task saw: its executor, the file's text, the number of unpacked files, whether
/// its own file of the archive holds its index, and how often its executor updated each name.
type Seen = (String, String, usize, bool, u64, u64);

fn look(ctx: &Context, tasks: u32) -> Vec<Seen> {
    ctx.parallelize((0..tasks).collect(), tasks as usize)
        .map(|i: u32| {
            let executor = TaskContext::current()
                .map(|c| c.services().executor_id().to_string())
                .unwrap_or_default();
            let text = std::fs::read_to_string(EmberFiles::get("lookup.txt")).unwrap_or_default();
            let unpacked = std::fs::read_dir(EmberFiles::get("bundle"))
                .map(|d| d.count())
                .unwrap_or(0);
            let own = std::fs::read_to_string(EmberFiles::get(&format!("bundle/f{i}.txt")))
                .is_ok_and(|s| s == i.to_string());
            (
                executor,
                text,
                unpacked,
                own,
                EmberFiles::update_count("lookup.txt").unwrap_or(0),
                EmberFiles::update_count("bundle").unwrap_or(0),
            )
        })
        .collect()
        .unwrap()
}

#[test]
fn a_file_and_a_thousand_file_archive_reach_every_task_once_per_executor() {
    for mode in MODES {
        let tmp = tempfile::tempdir().unwrap();
        let lookup = tmp.path().join("lookup.txt");
        std::fs::write(&lookup, "ember lookup table").unwrap();
        let archive = tmp.path().join("data-1000.tar.gz");
        tar_gz(&archive, 1000);
        let app = App::start(mode, &[]);
        let ctx = &app.ctx;
        ctx.add_file(lookup.to_str().unwrap(), false).unwrap();
        ctx.add_archive(&format!("{}#bundle", archive.display()))
            .unwrap();
        // The driver sees them too.
        assert_eq!(
            std::fs::read_to_string(EmberFiles::get("lookup.txt")).unwrap(),
            "ember lookup table"
        );
        assert_eq!(
            std::fs::read_dir(EmberFiles::get("bundle"))
                .unwrap()
                .count(),
            1000
        );

        let seen = look(ctx, 200);
        assert_eq!(seen.len(), 200);
        let mut per_executor: BTreeMap<&str, usize> = BTreeMap::new();
        for (executor, text, unpacked, own, lookups, bundles) in &seen {
            assert_eq!(text, "ember lookup table", "{mode:?} on {executor}");
            assert_eq!(*unpacked, 1000, "{mode:?} on {executor}");
            assert!(own, "{mode:?} on {executor}");
            // Each executor brought each name in once, whatever the number of its tasks.
            assert_eq!((*lookups, *bundles), (1, 1), "{mode:?} on {executor}");
            *per_executor.entry(executor).or_default() += 1;
        }
        let executors = per_executor.len() as u64;
        if is_cluster(mode) {
            assert_eq!(executors, 2, "{mode:?}: {per_executor:?}");
            // Counted where they are served: one transfer per executor.
            assert_eq!(ctx.file_fetch_count("lookup.txt"), executors, "{mode:?}");
            assert_eq!(ctx.file_fetch_count("bundle"), executors, "{mode:?}");
        } else {
            assert_eq!(per_executor.keys().collect::<Vec<_>>(), [&"driver"]);
            assert_eq!(ctx.file_fetch_count("lookup.txt"), 0, "nothing to transfer");
        }
        // A second job fetches nothing more.
        look(ctx, 20);
        if is_cluster(mode) {
            assert_eq!(ctx.file_fetch_count("lookup.txt"), executors, "{mode:?}");
            assert_eq!(ctx.file_fetch_count("bundle"), executors, "{mode:?}");
        }
        assert_eq!(
            ctx.list_archives(),
            [format!("{}#bundle", archive.display())]
        );
        app.stop();
    }
}

#[test]
fn a_changed_file_re_added_with_overwrite_reaches_the_next_jobs_tasks() {
    for mode in MODES {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model.txt");
        std::fs::write(&model, "version 1").unwrap();
        let app = App::start(mode, &[("ember.files.overwrite", "true")]);
        let ctx = &app.ctx;
        let read = |ctx: &Context| -> BTreeSet<String> {
            ctx.parallelize((0..40u32).collect(), 40)
                .map(|_| std::fs::read_to_string(EmberFiles::get("model.txt")).unwrap_or_default())
                .collect()
                .unwrap()
                .into_iter()
                .collect()
        };
        ctx.add_file(model.to_str().unwrap(), false).unwrap();
        assert_eq!(
            read(ctx),
            BTreeSet::from(["version 1".to_string()]),
            "{mode:?}"
        );
        std::fs::write(&model, "version 2, longer").unwrap();
        ctx.add_file(model.to_str().unwrap(), false).unwrap();
        assert_eq!(
            read(ctx),
            BTreeSet::from(["version 2, longer".to_string()]),
            "{mode:?}"
        );
        if is_cluster(mode) {
            assert_eq!(
                ctx.file_fetch_count("model.txt"),
                4,
                "{mode:?}: twice per executor"
            );
        }
        app.stop();
    }
}

#[test]
fn missing_files_escaping_archives_and_changed_contents_are_refused() {
    for mode in MODES {
        let tmp = tempfile::tempdir().unwrap();
        let app = App::start(mode, &[]);
        let ctx = &app.ctx;

        let missing = tmp.path().join("no-such-file.txt");
        let err = ctx.add_file(missing.to_str().unwrap(), false).unwrap_err();
        assert!(
            matches!(err, EmberError::FileNotFound { .. }),
            "{mode:?}: {err}"
        );
        assert!(err.to_string().contains("no-such-file.txt"), "{err}");

        let evil = tmp.path().join("evil.tar");
        evil_tar(&evil);
        let err = ctx.add_archive(evil.to_str().unwrap()).unwrap_err();
        assert!(
            matches!(&err, EmberError::UnsafeArchiveEntry { archive, entry, .. }
                if archive == "evil.tar" && entry == "../escaped.txt"),
            "{mode:?}: {err}"
        );
        assert!(!tmp.path().join("escaped.txt").exists());
        assert!(ctx.list_archives().is_empty());

        let f = tmp.path().join("conf.txt");
        std::fs::write(&f, "a=1").unwrap();
        ctx.add_file(f.to_str().unwrap(), false).unwrap();
        // The same contents again: nothing happens.
        ctx.add_file(f.to_str().unwrap(), false).unwrap();
        std::fs::write(&f, "a=2").unwrap();
        let err = ctx.add_file(f.to_str().unwrap(), false).unwrap_err();
        assert!(
            matches!(err, EmberError::FileContentsMismatch { .. }),
            "{mode:?}: {err}"
        );
        assert!(err.to_string().contains("ember.files.overwrite"), "{err}");

        let err = ctx
            .add_file("ftp://example.com/data.txt", false)
            .unwrap_err();
        assert!(
            matches!(err, EmberError::UnsupportedScheme { .. }),
            "{mode:?}: {err}"
        );
        assert!(
            err.to_string().contains("ftp://example.com/data.txt"),
            "{err}"
        );

        // Tasks still see the first version.
        let seen = ctx
            .parallelize((0..4u32).collect(), 4)
            .map(|_| std::fs::read_to_string(EmberFiles::get("conf.txt")).unwrap_or_default())
            .collect()
            .unwrap();
        assert_eq!(seen, ["a=1"; 4], "{mode:?}");
        app.stop();
    }
}

#[test]
fn a_file_that_cannot_be_fetched_fails_its_tasks_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("fragile.txt");
    std::fs::write(&f, "here").unwrap();
    let app = App::start(Mode::LocalCluster, &[("ember.task.maxFailures", "2")]);
    let ctx = &app.ctx;
    ctx.add_file(f.to_str().unwrap(), false).unwrap();
    // What the driver serves disappears (its copies live next to the driver's file root).
    let served = EmberFiles::get("fragile.txt")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("fileServer");
    assert!(served.is_dir(), "{served:?}");
    std::fs::remove_dir_all(&served).unwrap();
    let err = ctx
        .parallelize(vec![1u32, 2], 2)
        .map(|x| x + 1)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed 2 times"), "{err}");
    assert!(
        err.contains("Failed to fetch the added file fragile.txt"),
        "{err}"
    );
    app.stop();
}

/// What the test HTTP server serves and has been asked.
#[derive(Default)]
struct Served {
    /// Body by path; any other path answers 404.
    bodies: BTreeMap<String, Vec<u8>>,
    /// GET requests by path, whatever the answer.
    requests: BTreeMap<String, u64>,
    stop: bool,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for the URL tests (there is no other network here): one
/// connection at a time, `Connection: close`, stopped and joined when dropped.
struct HttpServer {
    addr: SocketAddr,
    served: Arc<Mutex<Served>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    fn start(bodies: &[(&str, Vec<u8>)]) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Mutex::new(Served {
            bodies: bodies
                .iter()
                .map(|(p, b)| (p.to_string(), b.clone()))
                .collect(),
            ..Served::default()
        }));
        let state = served.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if state.lock().unwrap().stop {
                    return;
                }
                if let Ok(conn) = conn {
                    Self::answer(conn, &state);
                }
            }
        });
        HttpServer {
            addr,
            served,
            thread: Some(thread),
        }
    }

    fn answer(mut conn: TcpStream, state: &Mutex<Served>) {
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let body = {
            let mut st = state.lock().unwrap();
            *st.requests.entry(path.clone()).or_default() += 1;
            st.bodies.get(&path).cloned()
        };
        let (status, body) = match body {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"no such file".to_vec()),
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(&body);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self, path: &str) -> u64 {
        let st = self.served.lock().unwrap();
        st.requests.get(path).copied().unwrap_or(0)
    }

    /// Stops serving `path`: it answers 404 from now on.
    fn forget(&self, path: &str) {
        self.served.lock().unwrap().bodies.remove(path);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.served.lock().unwrap().stop = true;
        // Wakes the accepting thread, which sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_file_and_an_archive_added_by_url_reach_every_task_downloaded_once_per_executor() {
    for mode in [Mode::Local, Mode::LocalCluster] {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("data.tar.gz");
        tar_gz(&archive, 100);
        let http = HttpServer::start(&[
            ("/models/lookup.txt", b"ember lookup table".to_vec()),
            ("/other/lookup.txt", b"another table".to_vec()),
            ("/archives/data.tar.gz", std::fs::read(&archive).unwrap()),
        ]);
        let app = App::start(mode, &[]);
        let ctx = &app.ctx;
        let lookup = http.url("/models/lookup.txt");
        ctx.add_file(&lookup, false).unwrap();
        ctx.add_archive(&format!("{}#bundle", http.url("/archives/data.tar.gz")))
            .unwrap();
        // The driver downloaded both when they were added, and sees them.
        assert_eq!(http.requests("/models/lookup.txt"), 1, "{mode:?}");
        assert_eq!(
            std::fs::read_to_string(EmberFiles::get("lookup.txt")).unwrap(),
            "ember lookup table"
        );
        assert_eq!(
            std::fs::read_dir(EmberFiles::get("bundle"))
                .unwrap()
                .count(),
            100
        );
        // The same URL again is not downloaded again; another URL with the same file name
        // and other contents is refused.
        ctx.add_file(&lookup, false).unwrap();
        assert_eq!(http.requests("/models/lookup.txt"), 1, "{mode:?}");
        let err = ctx
            .add_file(&http.url("/other/lookup.txt"), false)
            .unwrap_err();
        assert!(
            matches!(err, EmberError::FileContentsMismatch { .. }),
            "{mode:?}: {err}"
        );

        let seen = look(ctx, 100);
        let mut executors = BTreeSet::new();
        for (executor, text, unpacked, own, lookups, bundles) in &seen {
            assert_eq!(text, "ember lookup table", "{mode:?} on {executor}");
            assert_eq!(*unpacked, 100, "{mode:?} on {executor}");
            assert!(own, "{mode:?} on {executor}");
            assert_eq!((*lookups, *bundles), (1, 1), "{mode:?} on {executor}");
            executors.insert(executor.clone());
        }
        let executors = executors.len() as u64;
        if is_cluster(mode) {
            assert_eq!(executors, 2, "{mode:?}");
        }
        // Embedded, the tasks use the driver's download; otherwise each executor downloads
        // from the URL itself, once, and never from the driver.
        let expected = if is_cluster(mode) { 1 + executors } else { 1 };
        assert_eq!(http.requests("/models/lookup.txt"), expected, "{mode:?}");
        assert_eq!(http.requests("/archives/data.tar.gz"), expected, "{mode:?}");
        assert_eq!(ctx.file_fetch_count("lookup.txt"), 0, "{mode:?}");
        look(ctx, 10);
        assert_eq!(http.requests("/models/lookup.txt"), expected, "{mode:?}");
        assert_eq!(ctx.list_files(), [lookup]);
        app.stop();
    }
}

#[test]
fn a_url_answering_404_is_refused_when_added_and_fails_the_tasks_that_need_it() {
    for mode in [Mode::Local, Mode::LocalCluster] {
        let http = HttpServer::start(&[("/gone.txt", b"here for now".to_vec())]);
        let app = App::start(mode, &[("ember.task.maxFailures", "2")]);
        let ctx = &app.ctx;
        let missing = http.url("/missing.txt");
        let err = ctx.add_file(&missing, false).unwrap_err();
        assert!(
            matches!(err, EmberError::UrlFetchFailed { ref url, .. } if *url == missing),
            "{mode:?}: {err}"
        );
        assert!(err.to_string().contains("404"), "{err}");
        assert!(ctx.list_files().is_empty(), "{mode:?}");

        // Served when added, gone when the executors come for it.
        let gone = http.url("/gone.txt");
        ctx.add_file(&gone, false).unwrap();
        http.forget("/gone.txt");
        let job = ctx.parallelize(vec![1u32, 2], 2).map(|x| x + 1).collect();
        if !is_cluster(mode) {
            // The embedded executor uses the driver's download.
            assert_eq!(job.unwrap(), [2, 3]);
            app.stop();
            continue;
        }
        let err = job.unwrap_err().to_string();
        assert!(err.contains("failed 2 times"), "{err}");
        assert!(
            err.contains("Failed to fetch the added file gone.txt"),
            "{err}"
        );
        assert!(err.contains(&gone) && err.contains("404"), "{err}");
        // The driver's download, then two attempts of the failed task at least.
        assert!(
            http.requests("/gone.txt") >= 3,
            "{}",
            http.requests("/gone.txt")
        );
        app.stop();
    }
}
