//! Object stores end to end, against an S3 server in this process (s3s-fs over a temporary
//! directory, on 127.0.0.1): the fixtures of `testdata/data` read from `s3://` exactly as from
//! the local disk, every writer's output committed to `s3a://` and read back, an executor killed
//! in the middle of a write leaving nothing visible, and bad credentials and read-only outputs
//! reported clearly. On `local[2]` and on `local-cluster[2,1,1024]`, whose executor processes
//! get the `ember.hadoop.*` settings from the driver.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use ::object_store::aws::{AmazonS3, AmazonS3Builder};
use ::object_store::path::Path as Key;
use ::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use ember::prelude::*;
use ember::rdd::{CsvOptions, JsonOptions, ParquetOptions};
use serde::{Deserialize, Serialize};

use crate::data_sources::Sale;

use crate::common::{context, sorted};

const ACCESS_KEY: &str = "ember-test-key";
const SECRET_KEY: &str = "ember-test-secret-9f3a";
const BUCKET: &str = "data";

const MASTERS: [&str; 2] = ["local[2]", "local-cluster[2,1,1024]"];

/// An S3 server of its own for one test: its runtime, address and the directory of its
/// buckets (removed with it).
struct S3 {
    rt: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    root: tempfile::TempDir,
}

impl S3 {
    fn start() -> S3 {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder as ConnBuilder;
        use s3s::auth::SimpleAuth;
        use s3s::service::S3ServiceBuilder;
        #[allow(deprecated)] // ring: what Ember installs too (io::cloud)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3 {
            rt: Some(rt),
            addr,
            root,
        }
    }

    /// The settings of an application using this server.
    fn settings(&self, secret: &str) -> Vec<(String, String)> {
        vec![
            (
                "ember.hadoop.fs.s3a.endpoint".into(),
                format!("http://{}", self.addr),
            ),
            ("ember.hadoop.fs.s3a.access.key".into(), ACCESS_KEY.into()),
            ("ember.hadoop.fs.s3a.secret.key".into(), secret.into()),
            (
                "ember.hadoop.fs.s3a.path.style.access".into(),
                "true".into(),
            ),
            (
                "ember.hadoop.fs.s3a.endpoint.region".into(),
                "us-east-1".into(),
            ),
        ]
    }

    fn context(&self, master: &str, secret: &str, extra: &[(&str, &str)]) -> Context {
        let settings = self.settings(secret);
        let mut all: Vec<(&str, &str)> = settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(extra);
        context(master, &all)
    }

    fn client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(format!("http://{}", self.addr))
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap()
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.as_ref().unwrap().block_on(f)
    }

    /// Uploads the files under `local` to `prefix/<relative path>`.
    fn upload(&self, local: &Path, prefix: &str) {
        let client = self.client();
        let mut files = Vec::new();
        walk(local, &mut files);
        for f in files {
            let rel = f.strip_prefix(local).unwrap().to_str().unwrap().to_string();
            let key = if rel.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}/{rel}")
            };
            let bytes = std::fs::read(&f).unwrap();
            self.block_on(client.put(&Key::from(key), PutPayload::from(bytes)))
                .unwrap();
        }
    }

    /// The keys under `prefix`, sorted: only completed objects are listed.
    fn keys(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        let client = self.client();
        let p = Key::from(prefix);
        let mut v: Vec<String> = self
            .block_on(client.list(Some(&p)).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        v.sort();
        v
    }

    /// Parts of multipart uploads neither completed nor aborted (s3s-fs keeps them as
    /// `.upload_id-<id>.part-<n>` files in its root until then).
    fn pending_parts(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload_id-"))
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_file() {
        out.push(p.to_path_buf());
        return;
    }
    for e in std::fs::read_dir(p).unwrap() {
        walk(&e.unwrap().path(), out);
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/data")
        .join(name)
}

/// A few columns of the `people` fixtures (serde skips the others).
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
struct Person {
    id: i64,
    age: Option<i32>,
    name: Option<String>,
    city: Option<String>,
}

/// The fixture quotes line breaks inside fields: read as RFC 4180, whole (as data_sources does).
fn people_csv() -> CsvOptions {
    CsvOptions {
        multi_line: true,
        escape: None,
        ..CsvOptions::with_header()
    }
}

fn by_id<T: Clone, K: Ord>(v: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort_by_key(|r| key(r));
    v
}

#[test]
fn every_reader_and_writer_works_on_s3_in_both_modes() {
    let s3 = S3::start();
    s3.upload(&fixture("sales"), "in/sales");
    s3.upload(&fixture("people.duckdb.csv"), "in/people.csv");
    s3.upload(&fixture("people.duckdb.ndjson"), "in/people.ndjson");
    s3.upload(&fixture("lines.python.txt"), "in/text/lines.txt");
    s3.upload(&fixture("lines.python.txt.gz"), "in/gz/lines.txt.gz");
    let local = context("local[2]", &[]);
    let want_sales = by_id(
        &local
            .parquet_file::<Sale>(
                fixture("sales").to_str().unwrap(),
                ParquetOptions::default(),
            )
            .unwrap()
            .collect()
            .unwrap(),
        |s| s.id,
    );
    let want_people = by_id(
        &local
            .csv_file::<Person>(fixture("people.duckdb.csv").to_str().unwrap(), people_csv())
            .unwrap()
            .collect()
            .unwrap(),
        |p| p.id,
    );
    let want_json = by_id(
        &local
            .json_lines::<Person>(
                fixture("people.duckdb.ndjson").to_str().unwrap(),
                JsonOptions::default(),
            )
            .unwrap()
            .collect()
            .unwrap(),
        |p| p.id,
    );
    let want_lines = local
        .text_file(fixture("lines.python.txt").to_str().unwrap(), None)
        .unwrap()
        .collect()
        .unwrap();
    local.stop();
    assert!(!want_sales.is_empty() && !want_people.is_empty() && !want_lines.is_empty());

    for m in MASTERS {
        let tag = m.replace(['[', ']', ','], "_");
        let ctx = s3.context(m, SECRET_KEY, &[]);
        // Reads: a Hive-partitioned Parquet dataset, CSV, JSON lines, text (plain and gzip).
        let sales = ctx
            .parquet_file::<Sale>("s3://data/in/sales", ParquetOptions::default())
            .unwrap();
        assert_eq!(
            by_id(&sales.collect().unwrap(), |s| s.id),
            want_sales,
            "{m}"
        );
        let people = ctx
            .csv_file::<Person>("s3a://data/in/people.csv", people_csv())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(by_id(&people, |p| p.id), want_people, "{m} csv");
        let people = ctx
            .json_lines::<Person>("s3://data/in/people.ndjson", JsonOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        // JSON has "" where CSV has an empty field (None): compared with the local JSON read.
        assert_eq!(by_id(&people, |p| p.id), want_json, "{m} json");
        // A directory, cut into several splits read by ranged GETs.
        let text = ctx.text_file("s3://data/in/text", 3).unwrap();
        assert!(text.num_partitions() >= 3, "{m}");
        assert_eq!(
            sorted(&text.collect().unwrap()),
            sorted(&want_lines),
            "{m} text"
        );
        let gz = ctx.text_file("s3://data/in/gz/lines.txt.gz", None).unwrap();
        assert_eq!(gz.collect().unwrap(), want_lines, "{m} gz");
        // Globs, as on a local file system: files matched by name, and the files inside a
        // matched directory; `*` stays within one path segment.
        let both = ctx.text_file("s3://data/in/*/lines.txt*", None).unwrap();
        let twice: Vec<String> = want_lines.iter().chain(&want_lines).cloned().collect();
        assert_eq!(sorted(&both.collect().unwrap()), sorted(&twice), "{m} glob");
        let dir = ctx.text_file("s3://data/in/te?t", None).unwrap();
        assert_eq!(
            sorted(&dir.collect().unwrap()),
            sorted(&want_lines),
            "{m} dir glob"
        );
        let none = ctx
            .text_file("s3://data/in/*.txt", None)
            .err()
            .map(|e| e.to_string());
        assert!(none.is_some_and(|e| e.contains("does not exist")), "{m}");

        // A job, and its result written with each writer, then read back exactly.
        let out = |what: &str| format!("s3a://data/out-{tag}/{what}");
        let big = sales.filter(|s: &Sale| s.qty.unwrap_or(0) > 0);
        let want: Vec<Sale> = by_id(
            &want_sales
                .iter()
                .filter(|s| s.qty.unwrap_or(0) > 0)
                .cloned()
                .collect::<Vec<_>>(),
            |s| s.id,
        );
        let opts = ParquetOptions {
            partition_by: vec!["year".into()],
            ..ParquetOptions::default()
        };
        big.save_as_parquet(&out("parquet"), opts).unwrap();
        let back = ctx
            .parquet_file::<Sale>(&out("parquet"), ParquetOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(by_id(&back, |s| s.id), want, "{m} parquet");
        big.save_as_csv(&out("csv"), CsvOptions::with_header())
            .unwrap();
        let back = ctx
            .csv_file::<Sale>(&out("csv"), CsvOptions::with_header())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(by_id(&back, |s| s.id), want, "{m} csv");
        big.save_as_json_lines(&out("json"), JsonOptions::default())
            .unwrap();
        let back = ctx
            .json_lines::<Sale>(&out("json"), JsonOptions::default())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(by_id(&back, |s| s.id), want, "{m} json");
        let ids = big.map(|s: Sale| s.id);
        ids.save_as_text_file(&out("text")).unwrap();
        let back: Vec<i64> = ctx
            .text_file(&out("text"), None)
            .unwrap()
            .map(|l: String| l.parse::<i64>().unwrap())
            .collect()
            .unwrap();
        let want_ids: Vec<i64> = want.iter().map(|s| s.id).collect();
        assert_eq!(sorted(&back), sorted(&want_ids), "{m} text");

        // Every output committed: _SUCCESS, no _temporary, no upload left pending.
        let keys = s3.keys(&format!("out-{tag}"));
        for what in ["parquet", "csv", "json", "text"] {
            let success = format!("out-{tag}/{what}/_SUCCESS");
            assert!(keys.contains(&success), "{m}: {keys:?}");
        }
        assert!(
            keys.iter().any(|k| k.contains("/parquet/year=")),
            "{keys:?}"
        );
        assert!(!keys.iter().any(|k| k.contains("_temporary")), "{keys:?}");
        assert_eq!(s3.pending_parts(), Vec::<String>::new(), "{m}");
        // Spark's checkOutputSpecs on an object store: the output exists.
        let err = ids.save_as_text_file(&out("text")).unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains(&out("text")),
            "{err}"
        );
        ctx.stop();
    }
}

#[test]
fn an_executor_killed_mid_write_leaves_nothing_visible_and_a_retry_succeeds() {
    let s3 = S3::start();
    let ctx = s3.context(
        "local-cluster[2,1,1024]",
        SECRET_KEY,
        &[("ember.task.maxFailures", "1")],
    );
    let pids = ctx.executor_pids();
    assert_eq!(pids.len(), 2);
    let out = "s3://data/killed";
    let (tx, rx) = mpsc::channel();
    let job_ctx = ctx.clone();
    let writer = std::thread::spawn(move || {
        // Partitions 0 and 1 write and commit their tasks; 2 and 3 then hold their executors
        // until the job is over, and never write.
        let r = job_ctx
            .parallelize((0..4000u32).collect(), 4)
            .map(|x| {
                if x >= 2000 {
                    while !TaskContext::current().is_some_and(|c| c.is_interrupted()) {
                        std::thread::yield_now();
                    }
                    panic!("interrupted");
                }
                x
            })
            .save_as_text_file(out);
        let _ = tx.send(r);
    });
    assert!(
        ctx.wait_for_status(Duration::from_secs(60), |s| s.succeeded_tasks >= 2
            && s.running_tasks == 2),
        "two tasks committed, two running: {:?}",
        ctx.status()
    );
    // The first two tasks' uploads are pending: invisible.
    assert!(s3
        .keys("killed")
        .iter()
        .all(|k| k.starts_with("killed/_temporary/")));
    assert!(std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap()
        .success());
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the job ends when its executor dies");
    writer.join().unwrap();
    assert!(r.is_err(), "one failure allowed: the job fails");
    let keys = s3.keys("killed");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("killed/_temporary/") && k.ends_with("/_ABORTED")),
        "only the abort marker is left: {keys:?}"
    );
    assert_eq!(s3.pending_parts(), Vec::<String>::new(), "uploads aborted");
    // The same output again: succeeds, and leaves no manifest, marker or pending upload.
    ctx.parallelize((0..4000u32).collect(), 4)
        .save_as_text_file(out)
        .unwrap();
    let keys = s3.keys("killed");
    assert!(keys.contains(&"killed/_SUCCESS".to_string()), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("_temporary")), "{keys:?}");
    assert_eq!(s3.pending_parts(), Vec::<String>::new());
    let n = ctx.text_file(out, None).unwrap().count().unwrap();
    assert_eq!(n, 4000);
    ctx.stop();
}

#[test]
fn wrong_credentials_name_the_path_not_the_secret_and_http_output_is_refused() {
    let s3 = S3::start();
    s3.upload(&fixture("lines.python.txt"), "in/lines.txt");
    let wrong = "wrong-secret-7c1d";
    for m in MASTERS {
        let ctx = s3.context(m, wrong, &[]);
        // Listing on the driver.
        let err = ctx
            .text_file("s3://data/in", None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("s3://data/in"), "{m}: {err}");
        assert!(
            !err.contains(wrong) && !err.contains(SECRET_KEY),
            "{m}: {err}"
        );
        // A per-bucket setting wins over the general one.
        let ctx2 = s3.context(
            m,
            SECRET_KEY,
            &[("ember.hadoop.fs.s3a.bucket.data.secret.key", wrong)],
        );
        let err = ctx2
            .text_file("s3://data/in/lines.txt", None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("s3://data/in/lines.txt"), "{m}: {err}");
        assert!(!err.contains(wrong), "{m}: {err}");
        // The secret is redacted where settings are shown (environment page, event log).
        let shown = ctx.conf().to_debug_string();
        assert!(
            !shown.contains(wrong) && !shown.contains(ACCESS_KEY),
            "{shown}"
        );
        // http(s) is read-only.
        let err = ctx
            .parallelize(vec![1, 2, 3], 1)
            .save_as_text_file("http://127.0.0.1:9/out")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("read-only") && err.contains("http://127.0.0.1:9/out"),
            "{err}"
        );
        ctx2.stop();
        ctx.stop();
    }
}
