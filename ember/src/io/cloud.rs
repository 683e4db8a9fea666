//! Object stores as a [`FileStore`]: `s3://` (and Hadoop's `s3a://`), `gs://`, `az://` and
//! `http(s)://` (read-only) through the `object_store` crate.
//!
//! A dataset path is a URL whose authority names the bucket (container, host); the rest is the
//! object key, `/` separating "directories" as Hadoop's object-store file systems pretend.
//! Listing is by prefix and gives each object's size, so the driver plans splits without
//! reading data; a task reads its byte range with ranged GETs ([`RangedReader`]).
//!
//! Settings come from the application's `ember.hadoop.*` keys (Spark's `spark.hadoop.*`, S3A's
//! names, see [`s3_options`]), then from the usual environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`) and, for S3, the shared credentials file (`~/.aws/credentials`).
//! The driver reads them from its configuration; a task reads them from its executor's, which
//! the driver sent at registration, so executor processes need no settings of their own.
//! Secrets are never logged: the stores are built from the values without printing them, and
//! errors carry the object's URL and the service's answer, not the request's signature.
//!
//! `object_store` is async and task threads are plain threads, so every call goes through one
//! small tokio runtime per process, built on first use ([`run`]): the future is spawned on it
//! and the calling thread waits on a channel, which is safe from any thread, including a
//! `spawn_blocking` thread of another runtime (where `Runtime::block_on` would panic).

use std::collections::HashMap;
use std::future::Future;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;

use crate::error::{EmberError, Result};
use crate::io::store::{FileStatus, FileStore};

/// The prefix of the Hadoop settings (Spark's `spark.hadoop.`).
pub const HADOOP_PREFIX: &str = "ember.hadoop.";

/// How many bytes one ranged GET of a sequential reader asks for: large enough that the
/// request's latency is small next to its transfer, small enough that a split's reader does
/// not fetch far past its end.
const READ_CHUNK: u64 = 4 << 20;

/// The kind of store a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A local path or `file://` URL.
    Local,
    /// `s3://`, `s3a://`, `s3n://`.
    S3,
    /// `gs://`.
    Gcs,
    /// `az://`, `abfs://`, `abfss://`.
    Azure,
    /// `http://`, `https://`: read-only.
    Http,
}

/// The scheme of `path` (anything without a known `scheme://` is local).
pub fn scheme_of(path: &str) -> Scheme {
    let Some((scheme, _)) = path.split_once("://") else {
        return Scheme::Local;
    };
    match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" | "s3n" => Scheme::S3,
        "gs" => Scheme::Gcs,
        "az" | "abfs" | "abfss" => Scheme::Azure,
        "http" | "https" => Scheme::Http,
        _ => Scheme::Local,
    }
}

/// Whether `path` lives in an object store.
pub fn is_object_store(path: &str) -> bool {
    scheme_of(path) != Scheme::Local
}

thread_local! {
    /// The settings of the task running on this thread, if any.
    static CURRENT: std::cell::RefCell<Option<Arc<HadoopConf>>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes `conf` the settings of this thread's task until the guard is dropped (done by the task
/// context when a task starts running on a thread, as for its metrics: this module knows no
/// tasks).
pub fn enter(conf: &Arc<HadoopConf>) -> CurrentConfGuard {
    CURRENT.with(|c| *c.borrow_mut() = Some(conf.clone()));
    CurrentConfGuard(())
}

/// Clears the thread's task settings when dropped.
pub struct CurrentConfGuard(());

impl Drop for CurrentConfGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// The `ember.hadoop.*` settings of an application, without the prefix, sorted. Secrets are
/// among them: `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct HadoopConf(Vec<(String, String)>);

impl std::fmt::Debug for HadoopConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl HadoopConf {
    /// The `ember.hadoop.*` keys among `pairs`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut v: Vec<(String, String)> = pairs
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(HADOOP_PREFIX)
                    .map(|k| (k.to_string(), v.to_string()))
            })
            .collect();
        v.sort();
        HadoopConf(v)
    }

    /// The settings of the task running on this thread (its executor's: the driver's in local
    /// mode, the ones sent at registration in an executor process; see [`enter`]); none on a
    /// thread that runs no task.
    pub fn of_current_task() -> Arc<Self> {
        CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// An S3A setting (`fs.s3a.<key>`), the bucket's own (`fs.s3a.bucket.<bucket>.<key>`) first,
    /// as S3A's per-bucket configuration.
    fn s3a(&self, bucket: &str, key: &str) -> Option<&str> {
        self.get(&format!("fs.s3a.bucket.{bucket}.{key}"))
            .or_else(|| self.get(&format!("fs.s3a.{key}")))
    }
}

/// What the S3A settings of `bucket` set in `object_store`'s terms (Hadoop S3A's keys, Ember's
/// choices where object_store differs):
///
/// - `fs.s3a.endpoint` (a URL, or `host[:port]`: `https://` unless
///   `fs.s3a.connection.ssl.enabled=false`, then `http://` and `allow_http`) → `aws_endpoint`;
/// - `fs.s3a.endpoint.region` → `aws_region`;
/// - `fs.s3a.access.key`, `.secret.key`, `.session.token` → `aws_access_key_id`,
///   `aws_secret_access_key`, `aws_token`;
/// - `fs.s3a.path.style.access` → `aws_virtual_hosted_style_request`, negated;
/// - `fs.s3a.aws.credentials.provider` naming `AnonymousAWSCredentialsProvider` →
///   `aws_skip_signature`.
///
/// S3A's default is virtual-hosted requests; with an endpoint of its own (MinIO, a test
/// server), path style is the default here unless `fs.s3a.path.style.access=false` says
/// otherwise, because `object_store` sends a virtual-hosted request to the endpoint as given
/// (so the endpoint then gets the bucket in front of its host). Every key may be given per
/// bucket (`fs.s3a.bucket.<bucket>.endpoint`, …), which wins.
pub fn s3_options(conf: &HadoopConf, bucket: &str) -> Result<Vec<(AmazonS3ConfigKey, String)>> {
    let mut out = Vec::new();
    let bool_of = |key: &str| -> Result<Option<bool>> {
        match conf.s3a(bucket, key) {
            None => Ok(None),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(EmberError::Config {
                    key: format!("{HADOOP_PREFIX}fs.s3a.{key}"),
                    value: v.to_string(),
                    reason: "expected true or false".into(),
                }),
            },
        }
    };
    let ssl = bool_of("connection.ssl.enabled")?.unwrap_or(true);
    let path_style = bool_of("path.style.access")?;
    let endpoint = conf.s3a(bucket, "endpoint").map(str::trim);
    match endpoint.filter(|e| !e.is_empty()) {
        Some(e) => {
            let mut url = if e.contains("://") {
                e.to_string()
            } else if ssl {
                format!("https://{e}")
            } else {
                format!("http://{e}")
            };
            if url.starts_with("http://") {
                let allow = object_store::ClientConfigKey::AllowHttp;
                out.push((AmazonS3ConfigKey::Client(allow), "true".into()));
            }
            if path_style == Some(false) {
                if let Some((scheme, host)) = url.split_once("://") {
                    url = format!("{scheme}://{bucket}.{host}");
                }
                out.push((AmazonS3ConfigKey::VirtualHostedStyleRequest, "true".into()));
            } else {
                out.push((AmazonS3ConfigKey::VirtualHostedStyleRequest, "false".into()));
            }
            out.push((AmazonS3ConfigKey::Endpoint, url));
        }
        None => {
            let virtual_hosted = !path_style.unwrap_or(false);
            out.push((
                AmazonS3ConfigKey::VirtualHostedStyleRequest,
                virtual_hosted.to_string(),
            ));
        }
    }
    if let Some(r) = conf.s3a(bucket, "endpoint.region") {
        out.push((AmazonS3ConfigKey::Region, r.to_string()));
    }
    if let Some(k) = conf.s3a(bucket, "access.key") {
        out.push((AmazonS3ConfigKey::AccessKeyId, k.to_string()));
    }
    if let Some(k) = conf.s3a(bucket, "secret.key") {
        out.push((AmazonS3ConfigKey::SecretAccessKey, k.to_string()));
    }
    if let Some(k) = conf.s3a(bucket, "session.token") {
        out.push((AmazonS3ConfigKey::Token, k.to_string()));
    }
    if conf
        .s3a(bucket, "aws.credentials.provider")
        .is_some_and(|p| p.contains("AnonymousAWSCredentialsProvider"))
    {
        out.push((AmazonS3ConfigKey::SkipSignature, "true".into()));
    }
    Ok(out)
}

/// The `[profile]` section of an AWS shared credentials file: `(key, secret, token)`.
pub fn parse_aws_credentials(
    text: &str,
    profile: &str,
) -> Option<(String, String, Option<String>)> {
    let mut in_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => key = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some((key?, secret?, token))
}

/// The shared credentials file's keys (`AWS_SHARED_CREDENTIALS_FILE` or
/// `~/.aws/credentials`, profile `AWS_PROFILE` or `default`), which `object_store` does not
/// read itself.
fn aws_credentials_file() -> Option<(String, String, Option<String>)> {
    let path = match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".aws/credentials"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    parse_aws_credentials(&text, &profile)
}

/// The process's runtime for object-store calls: two worker threads (the calls are network
/// waits, not work), built on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ember-object-store")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| EmberError::Internal(format!("cannot start the object-store runtime: {e}")))
}

/// Runs `fut` on the object-store runtime and waits for it on this thread (see the module
/// docs). Must not be called from a thread of that runtime (nothing in Ember does).
pub fn run<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| EmberError::Internal("an object-store call was dropped".into()))
}

/// An object store error as an I/O error on `url`: not-found keeps its kind (what
/// `ember.files.ignoreMissingFiles` looks for), the rest carry the service's message.
pub fn os_error(url: &str, e: object_store::Error) -> EmberError {
    let kind = match &e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    EmberError::io(url, std::io::Error::new(kind, e.to_string()))
}

/// One bucket (container, HTTP host) of one service, with the settings it was built from.
pub struct Bucket {
    /// `scheme://bucket` as the user wrote the scheme: the prefix of every URL in it.
    pub root: String,
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The same store's multipart API (what output needs); `None` for HTTP.
    pub multipart: Option<Arc<dyn MultipartStore>>,
}

impl Bucket {
    /// The key of `url` (which must start with this bucket's root).
    pub fn key(&self, url: &str) -> Result<Key> {
        let rest = url
            .strip_prefix(&self.root)
            .ok_or_else(|| EmberError::Argument(format!("{url} is not in {}", self.root)))?;
        let rest = rest.trim_matches('/');
        if scheme_of(&self.root) == Scheme::Http {
            return Key::from_url_path(rest)
                .map_err(|e| EmberError::Argument(format!("bad object path {url}: {e}")));
        }
        Key::parse(rest).map_err(|e| EmberError::Argument(format!("bad object path {url}: {e}")))
    }

    /// The URL of `key`.
    pub fn url(&self, key: &Key) -> String {
        if key.as_ref().is_empty() {
            self.root.clone()
        } else {
            format!("{}/{}", self.root, key)
        }
    }
}

/// Splits `url` into its bucket root (`scheme://authority`) and the rest.
fn root_of(url: &str) -> Result<(String, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| EmberError::Argument(format!("not a URL: {url}")))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(EmberError::Argument(format!(
            "{url}: an object-store URL names its bucket (scheme://bucket/key)"
        )));
    }
    Ok((format!("{scheme}://{authority}"), authority.to_string()))
}

/// Builds the store of one bucket.
fn build(scheme: Scheme, root: &str, bucket: &str, conf: &HadoopConf) -> Result<Bucket> {
    // reqwest is built without a default TLS provider (no aws-lc-rs): ring, which rustls
    // already has for ureq (which uses it the same way). Deprecated only because ring has no
    // post-quantum key exchange; aws-lc-rs would add a C build. Installing fails harmlessly
    // when a provider is already installed.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let err = |e: object_store::Error| os_error(root, e);
    match scheme {
        Scheme::S3 => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            let options = s3_options(conf, bucket)?;
            let has_keys = options
                .iter()
                .any(|(k, _)| matches!(k, AmazonS3ConfigKey::AccessKeyId))
                || std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
            let anonymous = options
                .iter()
                .any(|(k, _)| matches!(k, AmazonS3ConfigKey::SkipSignature));
            if !has_keys && !anonymous {
                if let Some((key, secret, token)) = aws_credentials_file() {
                    b = b.with_access_key_id(key).with_secret_access_key(secret);
                    if let Some(t) = token {
                        b = b.with_token(t);
                    }
                }
            }
            for (k, v) in options {
                b = b.with_config(k, v);
            }
            let s = Arc::new(b.build().map_err(err)?);
            Ok(Bucket {
                root: root.to_string(),
                store: s.clone(),
                multipart: Some(s),
            })
        }
        Scheme::Gcs => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
            if let Some(p) = conf.get("fs.gs.auth.service.account.json.keyfile") {
                b = b.with_service_account_path(p);
            }
            let s = Arc::new(b.build().map_err(err)?);
            Ok(Bucket {
                root: root.to_string(),
                store: s.clone(),
                multipart: Some(s),
            })
        }
        Scheme::Azure => {
            let s = Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(root)
                    .build()
                    .map_err(err)?,
            );
            Ok(Bucket {
                root: root.to_string(),
                store: s.clone(),
                multipart: Some(s),
            })
        }
        Scheme::Http => {
            let s = HttpBuilder::new().with_url(root).build().map_err(err)?;
            Ok(Bucket {
                root: root.to_string(),
                store: Arc::new(s),
                multipart: None,
            })
        }
        Scheme::Local => Err(EmberError::Internal(format!("{root} is not an object store"))),
    }
}

/// The bucket `url` is in, built once per process for each set of settings.
pub fn bucket_for(url: &str, conf: &HadoopConf) -> Result<Arc<Bucket>> {
    type Cache = Mutex<HashMap<(String, HadoopConf), Arc<Bucket>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let scheme = scheme_of(url);
    let (root, bucket) = root_of(url)?;
    let cache = CACHE.get_or_init(Default::default);
    let cache_key = (root.clone(), conf.clone());
    if let Some(b) = cache.lock().get(&cache_key) {
        return Ok(b.clone());
    }
    let built = Arc::new(build(scheme, &root, &bucket, conf)?);
    Ok(cache.lock().entry(cache_key).or_insert(built).clone())
}

/// An object store seen as a [`FileStore`] (cheap to clone).
#[derive(Clone)]
pub struct ObjectFileStore {
    bucket: Arc<Bucket>,
}

impl ObjectFileStore {
    /// The store of `url`'s bucket with `conf`'s settings.
    pub fn new(url: &str, conf: &HadoopConf) -> Result<Self> {
        Ok(ObjectFileStore {
            bucket: bucket_for(url, conf)?,
        })
    }

    /// The store of a bucket built elsewhere (tests).
    #[cfg(test)]
    fn of_bucket(bucket: Arc<Bucket>) -> Self {
        ObjectFileStore { bucket }
    }

    fn url_of(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    /// The objects and "directories" right under `key`.
    fn list_level(&self, key: &Key) -> Result<object_store::ListResult> {
        let store = self.bucket.store.clone();
        let prefix = key.clone();
        let url = self.bucket.url(key);
        run(async move {
            let p = (!prefix.as_ref().is_empty()).then_some(&prefix);
            store.list_with_delimiter(p).await
        })?
        .map_err(|e| os_error(&url, e))
    }

    /// The size of the object at `url`.
    pub fn size(&self, url: &str) -> Result<u64> {
        let key = self.bucket.key(url)?;
        let store = self.bucket.store.clone();
        run(async move { store.head(&key).await })?
            .map(|m| m.size)
            .map_err(|e| os_error(url, e))
    }

    /// The bytes `range` of the object at `url`.
    pub fn read_range(&self, url: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let key = self.bucket.key(url)?;
        let store = self.bucket.store.clone();
        run(async move { store.get_range(&key, range).await })?.map_err(|e| os_error(url, e))
    }

    /// A sequential reader of the object at `url` from `offset`, by ranged GETs.
    pub fn reader(&self, url: &str, offset: u64) -> Result<RangedReader> {
        let len = self.size(url)?;
        Ok(RangedReader {
            store: self.clone(),
            url: url.to_string(),
            pos: offset.min(len),
            len,
            buf: Bytes::new(),
        })
    }
}

fn is_hidden_name(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

impl ObjectFileStore {
    /// The files a glob names, as on a local file system (Hadoop's `globStatus`): the objects
    /// whose key matches, and the objects right inside a matching "directory"; `*`, `?` and
    /// `[...]` do not cross a `/`. One recursive listing of the longest prefix without a
    /// pattern character.
    fn list_glob(&self, path: &str) -> Result<Vec<FileStatus>> {
        if scheme_of(path) == Scheme::Http {
            return Err(EmberError::Argument(format!(
                "{path}: an http(s) server cannot be listed, so it cannot take a glob"
            )));
        }
        let rest = path
            .strip_prefix(&self.bucket.root)
            .ok_or_else(|| EmberError::Argument(format!("{path} is not in {}", self.bucket.root)))?
            .trim_matches('/');
        let invalid = |position: usize, reason: &'static str| EmberError::InvalidGlob {
            pattern: path.to_string(),
            position,
            reason,
        };
        if rest.contains('{') {
            return Err(invalid(
                rest.find('{').unwrap_or(0),
                "alternatives ({a,b}) are not supported; use one pattern per alternative",
            ));
        }
        let pattern = glob::Pattern::new(rest).map_err(|e| invalid(e.pos, e.msg))?;
        let literal = &rest[..rest.find(['*', '?', '[']).unwrap_or(rest.len())];
        let prefix = Key::from(&literal[..literal.rfind('/').unwrap_or(0)]);
        let store = self.bucket.store.clone();
        let objects: Vec<object_store::ObjectMeta> = run(async move {
            let p = (!prefix.as_ref().is_empty()).then_some(&prefix);
            store.list(p).try_collect().await
        })?
        .map_err(|e| os_error(path, e))?;
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut out: Vec<FileStatus> = objects
            .into_iter()
            .filter(|m| {
                let key = m.location.as_ref();
                let dir = &key[..key.rfind('/').unwrap_or(0)];
                let visible = m.location.filename().is_some_and(|n| !is_hidden_name(n));
                // A matched "directory" that is hidden (`out/*` against `out/_temporary/…`)
                // is skipped with its files, as the local listing skips the directory.
                let dir_visible = !is_hidden_name(&dir[dir.rfind('/').map_or(0, |i| i + 1)..]);
                visible
                    && (pattern.matches_with(key, options)
                        || (dir_visible && pattern.matches_with(dir, options)))
            })
            .map(|m| FileStatus {
                path: PathBuf::from(self.bucket.url(&m.location)),
                len: m.size,
            })
            .collect();
        if out.is_empty() {
            return Err(EmberError::InputNotFound(path.to_string()));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

impl FileStore for ObjectFileStore {
    fn list(&self, path: &str) -> Result<Vec<FileStatus>> {
        if has_glob_meta(path) {
            return self.list_glob(path);
        }
        let key = self.bucket.key(path)?;
        // The "directory" first: a key is rarely both an object and a prefix, and some servers
        // answer a HEAD on a prefix with an error rather than "not found".
        let level = if scheme_of(path) == Scheme::Http {
            None
        } else {
            Some(self.list_level(&key)?)
        };
        let Some(level) = level.filter(|l| !l.objects.is_empty() || !l.common_prefixes.is_empty())
        else {
            if key.as_ref().is_empty() {
                return Err(EmberError::InputNotFound(path.to_string()));
            }
            let store = self.bucket.store.clone();
            return match run(async move { store.head(&key).await })? {
                Ok(meta) => Ok(vec![FileStatus {
                    path: PathBuf::from(path),
                    len: meta.size,
                }]),
                Err(object_store::Error::NotFound { .. }) => {
                    Err(EmberError::InputNotFound(path.to_string()))
                }
                Err(e) => Err(os_error(path, e)),
            };
        };
        let mut out: Vec<FileStatus> = level
            .objects
            .into_iter()
            .filter(|m| m.location.filename().is_some_and(|n| !is_hidden_name(n)))
            .map(|m| FileStatus {
                path: PathBuf::from(self.bucket.url(&m.location)),
                len: m.size,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, bool, u64)>> {
        let key = self.bucket.key(&Self::url_of(dir))?;
        let level = self.list_level(&key)?;
        let mut out: Vec<(PathBuf, bool, u64)> = level
            .common_prefixes
            .iter()
            .map(|p| (PathBuf::from(self.bucket.url(p)), true, 0))
            .collect();
        out.extend(
            level
                .objects
                .into_iter()
                .map(|m| (PathBuf::from(self.bucket.url(&m.location)), false, m.size)),
        );
        Ok(out)
    }

    fn is_dir(&self, path: &Path) -> bool {
        let Ok(key) = self.bucket.key(&Self::url_of(path)) else {
            return false;
        };
        if scheme_of(&self.bucket.root) == Scheme::Http {
            return false;
        }
        self.list_level(&key)
            .is_ok_and(|l| !l.objects.is_empty() || !l.common_prefixes.is_empty())
    }

    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>> {
        crate::metrics::count_file_op(false);
        Ok(Box::new(self.reader(&Self::url_of(path), offset)?))
    }
}

/// Reads an object from an offset to its end by ranged GETs of [`READ_CHUNK`] bytes, each
/// made when the previous one is used up, so a reader dropped early fetched little past the
/// point it stopped.
pub struct RangedReader {
    store: ObjectFileStore,
    url: String,
    pos: u64,
    len: u64,
    buf: Bytes,
}

impl Read for RangedReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.pos >= self.len || out.is_empty() {
                return Ok(0);
            }
            let end = self.len.min(self.pos + READ_CHUNK);
            self.buf = self
                .store
                .read_range(&self.url, self.pos..end)
                .map_err(|e| match e {
                    EmberError::Io { source, .. } => {
                        std::io::Error::new(source.kind(), source.to_string())
                    }
                    other => std::io::Error::other(other.to_string()),
                })?;
            if self.buf.is_empty() {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("{} ended at byte {}", self.url, self.pos),
                ));
            }
            self.pos += self.buf.len() as u64;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

/// Every object under `prefix` (recursively).
pub fn list_all(bucket: &Bucket, prefix: &Key) -> Result<Vec<object_store::ObjectMeta>> {
    let store = bucket.store.clone();
    let p = prefix.clone();
    let url = bucket.url(prefix);
    run(async move { store.list(Some(&p)).try_collect::<Vec<_>>().await })?
        .map_err(|e| os_error(&url, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> HadoopConf {
        let full: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (format!("{HADOOP_PREFIX}{k}"), v.to_string()))
            .collect();
        HadoopConf::from_pairs(full.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn find(o: &[(AmazonS3ConfigKey, String)], key: AmazonS3ConfigKey) -> Option<&str> {
        o.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme_of("s3a://b/k"), Scheme::S3);
        assert_eq!(scheme_of("S3://b/k"), Scheme::S3);
        assert_eq!(scheme_of("gs://b/k"), Scheme::Gcs);
        assert_eq!(scheme_of("az://c/k"), Scheme::Azure);
        assert_eq!(scheme_of("https://h/k"), Scheme::Http);
        assert_eq!(scheme_of("file:///tmp/x"), Scheme::Local);
        assert_eq!(scheme_of("/tmp/x"), Scheme::Local);
    }

    #[test]
    fn s3a_keys_map_to_object_store_keys() {
        let c = conf(&[
            ("fs.s3a.endpoint", "127.0.0.1:9000"),
            ("fs.s3a.connection.ssl.enabled", "false"),
            ("fs.s3a.endpoint.region", "eu-west-1"),
            ("fs.s3a.access.key", "AK"),
            ("fs.s3a.secret.key", "SK"),
            ("fs.s3a.session.token", "TOK"),
            ("fs.s3a.path.style.access", "true"),
        ]);
        let o = s3_options(&c, "data").unwrap();
        assert_eq!(find(&o, AmazonS3ConfigKey::Endpoint), Some("http://127.0.0.1:9000"));
        let allow = AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp);
        assert_eq!(find(&o, allow), Some("true"));
        assert_eq!(find(&o, AmazonS3ConfigKey::Region), Some("eu-west-1"));
        assert_eq!(find(&o, AmazonS3ConfigKey::AccessKeyId), Some("AK"));
        assert_eq!(find(&o, AmazonS3ConfigKey::SecretAccessKey), Some("SK"));
        assert_eq!(find(&o, AmazonS3ConfigKey::Token), Some("TOK"));
        assert_eq!(
            find(&o, AmazonS3ConfigKey::VirtualHostedStyleRequest),
            Some("false")
        );
    }

    #[test]
    fn endpoint_defaults_and_per_bucket_overrides() {
        // No scheme: https unless ssl is off; no endpoint: S3A's virtual-hosted default.
        let o = s3_options(&conf(&[("fs.s3a.endpoint", "s3.example.com")]), "b").unwrap();
        assert_eq!(find(&o, AmazonS3ConfigKey::Endpoint), Some("https://s3.example.com"));
        let allow = AmazonS3ConfigKey::Client(object_store::ClientConfigKey::AllowHttp);
        assert_eq!(find(&o, allow), None);
        let o = s3_options(&conf(&[]), "b").unwrap();
        assert_eq!(
            find(&o, AmazonS3ConfigKey::VirtualHostedStyleRequest),
            Some("true")
        );
        // Virtual-hosted with an endpoint of one's own: the bucket goes in front of the host.
        let o = s3_options(
            &conf(&[
                ("fs.s3a.endpoint", "https://s3.example.com"),
                ("fs.s3a.path.style.access", "false"),
            ]),
            "b",
        )
        .unwrap();
        assert_eq!(
            find(&o, AmazonS3ConfigKey::Endpoint),
            Some("https://b.s3.example.com")
        );
        // The bucket's own settings win over the general ones, for that bucket only.
        let c = conf(&[
            ("fs.s3a.secret.key", "general"),
            ("fs.s3a.bucket.special.secret.key", "special"),
            (
                "fs.s3a.aws.credentials.provider",
                "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider",
            ),
        ]);
        let o = s3_options(&c, "special").unwrap();
        assert_eq!(find(&o, AmazonS3ConfigKey::SecretAccessKey), Some("special"));
        assert_eq!(find(&o, AmazonS3ConfigKey::SkipSignature), Some("true"));
        let o = s3_options(&c, "other").unwrap();
        assert_eq!(find(&o, AmazonS3ConfigKey::SecretAccessKey), Some("general"));
        // A bad boolean names its key.
        let e = s3_options(&conf(&[("fs.s3a.path.style.access", "yes")]), "b").unwrap_err();
        assert!(e.to_string().contains("ember.hadoop.fs.s3a.path.style.access"), "{e}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = conf(&[("fs.s3a.secret.key", "hunter2")]);
        let shown = format!("{c:?}");
        assert!(shown.contains("fs.s3a.secret.key") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn credentials_file_profiles() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key=S\n\n\
                    [other]\naws_access_key_id=B\naws_secret_access_key=T\naws_session_token=X\n";
        assert_eq!(
            parse_aws_credentials(text, "default"),
            Some(("A".into(), "S".into(), None))
        );
        assert_eq!(
            parse_aws_credentials(text, "other"),
            Some(("B".into(), "T".into(), Some("X".into())))
        );
        assert_eq!(parse_aws_credentials(text, "none"), None);
    }

    #[test]
    fn lists_by_prefix_and_reads_ranges() {
        let mem = Arc::new(object_store::memory::InMemory::new());
        let put = |k: &str, bytes: Vec<u8>| {
            let (m, k) = (mem.clone(), Key::from(k));
            run(async move { m.put(&k, object_store::PutPayload::from(bytes)).await })
                .unwrap()
                .unwrap();
        };
        let big: Vec<u8> = (0..(READ_CHUNK as usize * 2 + 100)).map(|i| i as u8).collect();
        put("ds/year=1/a.txt", big.clone());
        put("ds/b.txt", b"b".to_vec());
        put("ds/_SUCCESS", Vec::new());
        put("ds/.hidden", Vec::new());
        put("ds/_temporary/part-0", b"t".to_vec());
        let store = ObjectFileStore::of_bucket(Arc::new(Bucket {
            root: "s3://bk".into(),
            store: mem.clone(),
            multipart: None,
        }));
        let listed = store.list("s3://bk/ds").unwrap();
        assert_eq!(
            listed,
            vec![FileStatus {
                path: PathBuf::from("s3://bk/ds/b.txt"),
                len: 1
            }],
            "visible files of the level only"
        );
        assert_eq!(store.list("s3://bk/ds/b.txt").unwrap(), listed);
        assert!(matches!(
            store.list("s3://bk/none"),
            Err(EmberError::InputNotFound(_))
        ));
        // Globs: a file by name (hidden ones skipped), the files inside a matched directory.
        assert_eq!(store.list("s3://bk/ds/*.txt").unwrap(), listed);
        let in_dir = store.list("s3://bk/ds/year=?").unwrap();
        let names: Vec<&Path> = in_dir.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(names, [Path::new("s3://bk/ds/year=1/a.txt")]);
        // A hidden "directory" the pattern matches is skipped with what is inside it.
        let all = store.list("s3://bk/ds/*").unwrap();
        let names: Vec<&Path> = all.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(
            names,
            [Path::new("s3://bk/ds/b.txt"), Path::new("s3://bk/ds/year=1/a.txt")]
        );
        assert!(matches!(
            store.list("s3://bk/ds/{a,b}.txt"),
            Err(EmberError::InvalidGlob { .. })
        ));
        assert!(matches!(
            store.list("s3://bk/ds/*.csv"),
            Err(EmberError::InputNotFound(_))
        ));
        let mut dir = store.list_dir(Path::new("s3://bk/ds")).unwrap();
        dir.sort();
        assert!(dir.contains(&(PathBuf::from("s3://bk/ds/year=1"), true, 0)), "{dir:?}");
        assert!(dir.contains(&(PathBuf::from("s3://bk/ds/b.txt"), false, 1)), "{dir:?}");
        assert!(store.is_dir(Path::new("s3://bk/ds/year=1")));
        assert!(!store.is_dir(Path::new("s3://bk/ds/b.txt")));
        // Reading from an offset across several ranged GETs.
        let mut r = store
            .open_at(Path::new("s3://bk/ds/year=1/a.txt"), 7)
            .unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, big[7..]);
        let missing = store.open_at(Path::new("s3://bk/ds/gone"), 0).err().unwrap();
        assert!(crate::io::store::is_missing_file(&missing), "{missing}");
        assert!(missing.to_string().contains("s3://bk/ds/gone"), "{missing}");
    }

    #[test]
    fn keys_of_urls() {
        let b = Bucket {
            root: "s3a://data".into(),
            store: Arc::new(object_store::memory::InMemory::new()),
            multipart: None,
        };
        assert_eq!(b.key("s3a://data/a/b=1/x.csv").unwrap().as_ref(), "a/b=1/x.csv");
        assert_eq!(b.key("s3a://data/").unwrap().as_ref(), "");
        assert_eq!(b.url(&Key::from("a/x")), "s3a://data/a/x");
        assert!(root_of("s3://").is_err());
    }
}
