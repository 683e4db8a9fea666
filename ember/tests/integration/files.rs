//! Files and archives shipped to executors (`add_file`, `add_archive`, `EmberFiles`), on every
//! kind of master: `local[2]`, `local-cluster[2,1,1024]`, and a standalone driver with two
//! executors started by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
}

impl App {
    fn start(mode: Mode, extra: &[(&str, &str)]) -> App {
        match mode {
            Mode::Local => App {
                ctx: context("local[2]", extra),
                executors: Vec::new(),
            },
            Mode::LocalCluster => App {
                ctx: context("local-cluster[2,1,1024]", extra),
                executors: Vec::new(),
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
                App { ctx, executors }
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
            .add_file("https://example.com/data.txt", false)
            .unwrap_err();
        assert!(err.to_string().contains("not supported yet"), "{err}");

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
