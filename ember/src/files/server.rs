//! The driver's side: the files and archives the application added (Spark's `addedFiles`,
//! `addedArchives` and its `RpcEnvFileServer`), the driver's own copies, and what its block
//! server hands to executors.
//!
//! Each addition is frozen in a version directory, `<app dir>/fileServer/<timestamp>/`, which is
//! what executors fetch, so a file the user changes afterwards (or re-adds) never reaches them
//! half old, half new. The driver's own view (`EmberFiles` on the driver, and the tasks of
//! local mode) is `<app dir>/userFiles/`: a copy of each file or directory, each archive
//! unpacked.
//!
//! A name added by `http://` or `https://` URL is downloaded by the driver when it is added (as
//! Spark's `addFile` fetches it into the driver's root), frozen and viewed the same way, and
//! downloaded again by each executor from the URL itself: tasks carry the URL.

use std::collections::{BTreeMap, HashMap};
use std::io::{Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tracing::{info, warn};

use super::url::{self, Download};
use super::{manifest_block_id, Dependencies, Kind, Manifest};
use crate::error::{EmberError, Result};
use ember_net::block_server::ShuffleBlock;

/// One added name.
struct Added {
    kind: Kind,
    /// What the user gave (path or URL), for messages.
    url: String,
    /// The http(s) URL executors download it from (without an archive's `#alias`).
    remote: Option<String>,
    manifest: Arc<Manifest>,
}

#[derive(Default)]
struct State {
    /// Added files and directories, by name.
    files: BTreeMap<String, Added>,
    /// Added archives, by the directory they unpack to.
    archives: BTreeMap<String, Added>,
    /// The regular files of each version, by timestamp: what executors may fetch.
    versions: HashMap<u64, HashMap<String, u64>>,
    last_timestamp: u64,
    /// What tasks carry, rebuilt at each addition.
    snapshot: Arc<Dependencies>,
}

/// The application's added files and archives, on the driver.
pub struct FileServer {
    root: PathBuf,
    served: PathBuf,
    overwrite: bool,
    /// `ember.files.fetchTimeout`, for the driver's downloads of http(s) URLs.
    fetch_timeout: std::time::Duration,
    /// Numbers the driver's temporary download directories.
    next_download: AtomicU64,
    source: OnceLock<SocketAddr>,
    state: Mutex<State>,
    /// Manifests handed out, by name: how many times executors fetched each name.
    fetches: Mutex<BTreeMap<String, u64>>,
    stopped: AtomicBool,
}

impl FileServer {
    /// A server keeping its files under `app_dir` (`userFiles/` and `fileServer/`), created at
    /// the first addition: a cluster driver that adds nothing creates no directory, so even a
    /// SIGKILL leaves nothing behind. `overwrite`: `ember.files.overwrite`; `fetch_timeout`:
    /// `ember.files.fetchTimeout`.
    pub fn new(app_dir: &Path, overwrite: bool, fetch_timeout: std::time::Duration) -> Arc<Self> {
        let root = app_dir.join("userFiles");
        let served = app_dir.join("fileServer");
        let server = Arc::new(FileServer {
            root,
            served,
            overwrite,
            fetch_timeout,
            next_download: AtomicU64::new(0),
            source: OnceLock::new(),
            state: Mutex::new(State::default()),
            fetches: Mutex::new(BTreeMap::new()),
            stopped: AtomicBool::new(false),
        });
        super::register_driver(&server);
        server
    }

    /// Where executors fetch from: the driver's block server (cluster mode only).
    pub fn set_source(&self, addr: SocketAddr) {
        let _ = self.source.set(addr);
        let mut st = self.state.lock();
        let snapshot = Self::snapshot_of(&st, self.source.get().copied());
        st.snapshot = Arc::new(snapshot);
    }

    /// The driver's file root (`EmberFiles::root_directory` on the driver and in local mode).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What a task set created now carries (Spark's `TaskSetManager` copies `addedFiles` and
    /// `addedArchives` when it is created, SPARK-21563).
    pub fn snapshot(&self) -> Arc<Dependencies> {
        self.state.lock().snapshot.clone()
    }

    /// Whether `name` was added (as a file, a directory or an archive).
    pub fn has(&self, name: &str) -> bool {
        let st = self.state.lock();
        st.files.contains_key(name) || st.archives.contains_key(name)
    }

    /// Paths and URLs of the added files (Spark's `listFiles`).
    pub(crate) fn list(&self, kind: Kind) -> Vec<String> {
        let st = self.state.lock();
        let map = match kind {
            Kind::File => &st.files,
            Kind::Archive => &st.archives,
        };
        map.values().map(|a| a.url.clone()).collect()
    }

    /// Stops answering for `EmberFiles` on the driver (the context stopped).
    pub fn stop(self: &Arc<Self>) {
        self.stopped.store(true, Relaxed);
        super::unregister_driver(self);
    }

    /// How many times executors fetched `name` (its manifest).
    #[cfg(any(test, feature = "testing"))]
    pub fn fetch_count(&self, name: &str) -> u64 {
        self.fetches.lock().get(name).copied().unwrap_or(0)
    }

    fn snapshot_of(st: &State, source: Option<SocketAddr>) -> Dependencies {
        let list = |m: &BTreeMap<String, Added>| {
            m.iter()
                .map(|(k, a)| (k.clone(), a.manifest.timestamp))
                .collect()
        };
        let urls = st
            .files
            .iter()
            .chain(&st.archives)
            .filter_map(|(k, a)| Some((k.clone(), a.remote.clone()?)))
            .collect();
        Dependencies {
            source,
            files: list(&st.files),
            archives: list(&st.archives),
            urls,
        }
    }

    /// Adds a file, or with `recursive` a directory (Spark's `addFile`).
    pub fn add_file(&self, path: &str, recursive: bool) -> Result<()> {
        self.add(path, recursive, Kind::File)
    }

    /// Adds an archive to unpack on every executor (Spark's `addArchive`); `path#alias` names
    /// the directory it unpacks to.
    pub fn add_archive(&self, path: &str) -> Result<()> {
        self.add(path, false, Kind::Archive)
    }

    fn add(&self, url: &str, recursive: bool, kind: Kind) -> Result<()> {
        if self.stopped.load(Relaxed) {
            return Err(EmberError::ContextStopped);
        }
        let (location, alias) = match location(url, kind)? {
            Some(p) => p,
            None => return Ok(()),
        };
        // Removes the driver's download, if any, once it is frozen (or refused).
        let mut _download = None;
        let (local, remote) = match location {
            Location::Local(p) => (p, None),
            Location::Http(remote) => {
                let added_already = {
                    let st = self.state.lock();
                    st.files
                        .values()
                        .chain(st.archives.values())
                        .any(|a| a.url == url)
                };
                if added_already {
                    warn!(
                        "The path {url} has been added already. Overwriting of added paths is \
                         not supported in the current version."
                    );
                    return Ok(());
                }
                let file_name = url::file_name(&remote).ok_or_else(|| {
                    EmberError::Argument(format!("cannot add {url}: its path names no file"))
                })?;
                if !super::is_plain_relative(Path::new(&file_name)) || file_name.contains('/') {
                    return Err(EmberError::Argument(format!(
                        "cannot add {url}: {file_name:?} is not a file name"
                    )));
                }
                let dir = self.served.join(format!(
                    ".download-{}",
                    self.next_download.fetch_add(1, Relaxed)
                ));
                std::fs::create_dir_all(&dir).map_err(|e| EmberError::io(&dir, e))?;
                _download = Some(super::RemoveOnDrop(dir.clone()));
                let path = dir.join(&file_name);
                info!("Fetching {remote} to {}", path.display());
                url::download(&remote, &path, self.fetch_timeout).map_err(|e| match e {
                    Download::Remote(reason) => EmberError::UrlFetchFailed {
                        url: remote.clone(),
                        reason,
                    },
                    Download::Local(e) => e,
                })?;
                (path, Some(remote))
            }
        };
        let source = std::fs::canonicalize(&local).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EmberError::FileNotFound {
                path: local.display().to_string(),
            },
            _ => EmberError::io(&local, e),
        })?;
        let meta = std::fs::metadata(&source).map_err(|e| EmberError::io(&source, e))?;
        if meta.is_dir() && (kind == Kind::Archive || !recursive) {
            return Err(EmberError::AddDirectory {
                path: url.to_string(),
                archive: kind == Kind::Archive,
            });
        }
        let file_name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| EmberError::FileNotFound {
                path: url.to_string(),
            })?;
        let name = alias.unwrap_or_else(|| file_name.clone());
        if !super::is_plain_relative(Path::new(&name)) || name.contains('/') {
            return Err(EmberError::Argument(format!(
                "cannot add {url}: {name:?} is not a file name"
            )));
        }

        // One addition at a time: the comparison with what is there and the replacement are
        // one step.
        let mut st = self.state.lock();
        let existing = st.files.get(&name).or_else(|| st.archives.get(&name));
        let dest = self.root.join(&name);
        if let Some(old) = existing {
            let old_copy = self
                .served
                .join(old.manifest.timestamp.to_string())
                .join(old.manifest.archive.as_deref().unwrap_or(&name));
            let same = old.kind == kind
                && same_source(&source, &old_copy).map_err(|e| EmberError::io(&source, e))?;
            if same {
                info!("{url} has been added already with the same contents as {name}");
                return Ok(());
            }
            if !self.overwrite {
                return Err(EmberError::FileContentsMismatch {
                    dest: dest.display().to_string(),
                    url: url.to_string(),
                });
            }
            info!(
                "File {} exists and does not match contents of {url}, replacing it with {url}",
                dest.display()
            );
        }

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // Strictly increasing, so that executors see every re-addition as newer.
        let timestamp = now.max(st.last_timestamp + 1);
        std::fs::create_dir_all(&self.root).map_err(|e| EmberError::io(&self.root, e))?;
        let version_dir = self.served.join(timestamp.to_string());
        let mut manifest = Manifest {
            timestamp,
            archive: (kind == Kind::Archive).then(|| file_name.clone()),
            entries: Vec::new(),
            dirs: Vec::new(),
        };
        let frozen_name = manifest.archive.clone().unwrap_or_else(|| name.clone());
        let frozen = version_dir.join(&frozen_name);
        let frozen_made = std::fs::create_dir_all(&version_dir)
            .map_err(|e| EmberError::io(&version_dir, e))
            .and_then(|()| copy_tree(&source, &frozen, &frozen_name, &mut manifest));
        if let Err(e) = frozen_made {
            let _ = std::fs::remove_dir_all(&version_dir);
            return Err(e);
        }
        // The driver's own view, which `EmberFiles` on the driver and local tasks read.
        let view_made = super::remove_path(&dest)
            .map_err(|e| EmberError::io(&dest, e))
            .and_then(|()| match kind {
                Kind::File => {
                    let mut ignored = Manifest {
                        entries: Vec::new(),
                        dirs: Vec::new(),
                        ..manifest.clone()
                    };
                    copy_tree(&frozen, &dest, &name, &mut ignored)
                }
                Kind::Archive => {
                    info!(
                        "Unpacking an archive {url} ({} bytes) from {} to {}",
                        meta.len(),
                        frozen.display(),
                        dest.display()
                    );
                    super::unpack(&frozen, &file_name, &dest)
                }
            });
        if let Err(e) = view_made {
            let _ = std::fs::remove_dir_all(&version_dir);
            let _ = super::remove_path(&dest);
            if let Some(old) = st.files.remove(&name).or_else(|| st.archives.remove(&name)) {
                // The old version's view went with `dest`: forget the name rather than serve
                // executors what the driver no longer has.
                warn!("{name} ({}) is no longer added: {e}", old.url);
                let snapshot = Self::snapshot_of(&st, self.source.get().copied());
                st.snapshot = Arc::new(snapshot);
            }
            return Err(e);
        }
        let files: HashMap<String, u64> = manifest.entries.iter().cloned().collect();
        st.versions.insert(timestamp, files);
        st.last_timestamp = timestamp;
        let added = Added {
            kind,
            url: url.to_string(),
            remote,
            manifest: Arc::new(manifest),
        };
        st.files.remove(&name);
        st.archives.remove(&name);
        match kind {
            Kind::File => st.files.insert(name.clone(), added),
            Kind::Archive => st.archives.insert(name.clone(), added),
        };
        let snapshot = Self::snapshot_of(&st, self.source.get().copied());
        st.snapshot = Arc::new(snapshot);
        info!(
            "Added {} {url} at {name} with timestamp {timestamp}",
            match kind {
                Kind::File => "file",
                Kind::Archive => "archive",
            }
        );
        Ok(())
    }

    /// The manifest of `block_id` (a [`manifest_block_id`]), encoded; counts the fetch.
    pub fn manifest_bytes(&self, block_id: &str) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let (added, name) = if let Some(n) = block_id.strip_prefix(super::FILE_MANIFEST) {
            (st.files.get(n)?, n)
        } else if let Some(n) = block_id.strip_prefix(super::ARCHIVE_MANIFEST) {
            (st.archives.get(n)?, n)
        } else {
            return None;
        };
        debug_assert_eq!(manifest_block_id(added.kind, name), block_id);
        let bytes = postcard::to_allocvec(added.manifest.as_ref()).ok()?;
        *self.fetches.lock().entry(name.to_string()).or_default() += 1;
        Some(bytes)
    }

    /// Whether `block_id` names a manifest (the driver's block store routes it here).
    pub fn is_manifest_id(block_id: &str) -> bool {
        block_id.starts_with(super::FILE_MANIFEST) || block_id.starts_with(super::ARCHIVE_MANIFEST)
    }

    /// A range of a served file: `file_id` is `<timestamp>/<path in the version>`, as the
    /// manifest lists it; anything else is refused.
    pub fn open_range(
        &self,
        file_id: &str,
        offset: u64,
        len: u64,
    ) -> std::result::Result<ShuffleBlock, String> {
        let (ts, rel) = file_id
            .split_once('/')
            .ok_or_else(|| "not a served file".to_string())?;
        let ts: u64 = ts.parse().map_err(|_| "not a served file".to_string())?;
        let size = {
            let st = self.state.lock();
            *st.versions
                .get(&ts)
                .and_then(|v| v.get(rel))
                .ok_or_else(|| "not a served file".to_string())?
        };
        let path = self.served.join(ts.to_string()).join(rel);
        let mut file = std::fs::File::open(&path).map_err(|e| format!("{e}"))?;
        let offset = offset.min(size);
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("{e}"))?;
        Ok(ShuffleBlock {
            file,
            len: len.min(size - offset),
        })
    }
}

/// Where an addition's contents come from.
#[derive(Debug, PartialEq, Eq)]
enum Location {
    /// A path on the driver.
    Local(PathBuf),
    /// An `http://` or `https://` URL (without an archive's `#alias`).
    Http(String),
}

/// Where `url` is and, for an archive, the `#alias` it unpacks under; `None` for a `local:`
/// URL, which names a file already on every node (Spark logs a warning and adds nothing).
fn location(url: &str, kind: Kind) -> Result<Option<(Location, Option<String>)>> {
    let (without_alias, alias) = match (kind, url.rsplit_once('#')) {
        (Kind::Archive, Some((p, a))) if !a.is_empty() => (p, Some(a.to_string())),
        _ => (url, None),
    };
    let path = match without_alias.split_once("://") {
        None if without_alias.starts_with("local:") => {
            warn!(
                "File with 'local' scheme {url} is not supported to add to file server, since it \
                 is already available on every node."
            );
            return Ok(None);
        }
        None => without_alias.strip_prefix("file:").unwrap_or(without_alias),
        Some(("file", rest)) => rest,
        Some((scheme, _)) if url::HTTP_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) => {
            // A file's fragment is no alias, and never sent to the server.
            let remote = without_alias.split('#').next().unwrap_or(without_alias);
            return Ok(Some((Location::Http(remote.to_string()), alias)));
        }
        Some(("local", _)) => {
            warn!(
                "File with 'local' scheme {url} is not supported to add to file server, since it \
                 is already available on every node."
            );
            return Ok(None);
        }
        Some((scheme, _)) => {
            return Err(EmberError::UnsupportedScheme {
                url: url.to_string(),
                scheme: scheme.to_string(),
            })
        }
    };
    Ok(Some((Location::Local(PathBuf::from(path)), alias)))
}

/// Whether the user's `source` has the same contents as the frozen copy of an earlier addition.
fn same_source(source: &Path, frozen: &Path) -> std::io::Result<bool> {
    match super::same_contents(source, frozen) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        other => other,
    }
}

/// Copies `from` (a file, or a directory tree, following links) to `to`, listing the regular
/// files and directories in `manifest` by their paths below `rel`.
fn copy_tree(from: &Path, to: &Path, rel: &str, manifest: &mut Manifest) -> Result<()> {
    let meta = std::fs::metadata(from).map_err(|e| EmberError::io(from, e))?;
    if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| EmberError::io(to, e))?;
        manifest.dirs.push(rel.to_string());
        let mut names: Vec<_> = std::fs::read_dir(from)
            .map_err(|e| EmberError::io(from, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| EmberError::io(from, e))?;
        names.sort();
        for n in names {
            let Some(s) = n.to_str() else {
                warn!(
                    "skipping {}: its name is not UTF-8",
                    from.join(&n).display()
                );
                continue;
            };
            copy_tree(
                &from.join(&n),
                &to.join(&n),
                &format!("{rel}/{s}"),
                manifest,
            )?;
        }
        Ok(())
    } else if meta.is_file() {
        std::fs::copy(from, to).map_err(|e| EmberError::io(to, e))?;
        manifest.entries.push((rel.to_string(), meta.len()));
        Ok(())
    } else {
        warn!(
            "skipping {}: not a regular file or a directory",
            from.display()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

    fn server(overwrite: bool) -> (tempfile::TempDir, Arc<FileServer>) {
        let d = tempfile::tempdir().unwrap();
        let s = FileServer::new(&d.path().join("app"), overwrite, TIMEOUT);
        (d, s)
    }

    #[test]
    fn urls_name_local_paths_or_http_or_are_refused() {
        let local = |p: &str| Location::Local(PathBuf::from(p));
        let http = |u: &str| Location::Http(u.to_string());
        assert_eq!(
            location("/a/b.txt", Kind::File).unwrap(),
            Some((local("/a/b.txt"), None))
        );
        assert_eq!(
            location("file:///a/b.txt", Kind::File).unwrap(),
            Some((local("/a/b.txt"), None))
        );
        assert_eq!(
            location("/a/b.zip#env", Kind::Archive).unwrap(),
            Some((local("/a/b.zip"), Some("env".into())))
        );
        assert_eq!(location("local:/opt/x", Kind::File).unwrap(), None);
        assert_eq!(
            location("https://h/m.bin#x", Kind::File).unwrap(),
            Some((http("https://h/m.bin"), None))
        );
        assert_eq!(
            location("http://h:8080/env.tgz?v=2#py", Kind::Archive).unwrap(),
            Some((http("http://h:8080/env.tgz?v=2"), Some("py".into())))
        );
        let err = location("ftp://example.com/x.txt", Kind::File).unwrap_err();
        assert!(matches!(err, EmberError::UnsupportedScheme { ref scheme, .. } if scheme == "ftp"));
        assert!(err.to_string().contains("not supported"), "{err}");
        assert!(err.to_string().contains("ftp://example.com/x.txt"), "{err}");
    }

    #[test]
    fn a_tls_url_to_a_port_without_tls_fails_naming_the_url() {
        // Answers the TLS client hello in plain HTTP, as a server without TLS would.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let plain = std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });
        let (_d, s) = server(false);
        let url = format!("https://127.0.0.1:{port}/model.bin");
        let err = s.add_file(&url, false).unwrap_err();
        plain.join().unwrap();
        assert!(
            matches!(err, EmberError::UrlFetchFailed { url: ref u, .. } if *u == url),
            "{err}"
        );
        assert!(err.to_string().contains(&url), "{err}");
        assert!(!s.has("model.bin"));

        // Nothing listens there any more: refused, the same way.
        let url = format!("https://127.0.0.1:{port}/model.bin");
        let err = s.add_file(&url, false).unwrap_err();
        assert!(matches!(err, EmberError::UrlFetchFailed { .. }), "{err}");
        assert!(s.snapshot().is_empty());
        // No download left behind.
        let left: Vec<_> = std::fs::read_dir(&s.served)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn re_adding_is_a_no_op_if_identical_an_error_if_not_unless_overwrite() {
        for overwrite in [false, true] {
            let (d, s) = server(overwrite);
            let f = d.path().join("data.txt");
            std::fs::write(&f, "v1").unwrap();
            let url = f.to_str().unwrap();
            s.add_file(url, false).unwrap();
            let first = s.snapshot();
            assert_eq!(first.files.len(), 1);
            s.add_file(url, false).unwrap();
            assert_eq!(s.snapshot(), first, "identical contents change nothing");
            std::fs::write(&f, "v2").unwrap();
            let r = s.add_file(url, false);
            if overwrite {
                r.unwrap();
                let second = s.snapshot();
                assert!(second.files[0].1 > first.files[0].1, "a newer timestamp");
                assert_eq!(std::fs::read(s.root().join("data.txt")).unwrap(), b"v2");
            } else {
                let err = r.unwrap_err();
                assert!(
                    matches!(err, EmberError::FileContentsMismatch { .. }),
                    "{err}"
                );
                assert!(
                    err.to_string().contains("does not match contents of"),
                    "{err}"
                );
                assert_eq!(s.snapshot(), first);
                assert_eq!(std::fs::read(s.root().join("data.txt")).unwrap(), b"v1");
            }
        }
    }

    #[test]
    fn missing_files_and_plain_directories_are_refused_at_once() {
        let (d, s) = server(false);
        let missing = d.path().join("nope.txt");
        let err = s.add_file(missing.to_str().unwrap(), false).unwrap_err();
        assert!(matches!(err, EmberError::FileNotFound { .. }), "{err}");
        assert!(err.to_string().contains("nope.txt"), "{err}");
        let dir = d.path().join("dir");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/x"), "x").unwrap();
        let err = s.add_file(dir.to_str().unwrap(), false).unwrap_err();
        assert!(err.to_string().contains("recursive"), "{err}");
        s.add_file(dir.to_str().unwrap(), true).unwrap();
        assert_eq!(std::fs::read(s.root().join("dir/sub/x")).unwrap(), b"x");
        assert!(s.snapshot().files.iter().any(|(n, _)| n == "dir"));
    }

    #[test]
    fn only_listed_files_of_a_version_are_served() {
        let (d, s) = server(false);
        let f = d.path().join("a.txt");
        std::fs::write(&f, "0123456789").unwrap();
        s.add_file(f.to_str().unwrap(), false).unwrap();
        let id = manifest_block_id(Kind::File, "a.txt");
        let m: Manifest = postcard::from_bytes(&s.manifest_bytes(&id).unwrap()).unwrap();
        assert_eq!(m.entries, [("a.txt".to_string(), 10)]);
        assert_eq!(s.fetch_count("a.txt"), 1);
        let block = s
            .open_range(&format!("{}/a.txt", m.timestamp), 4, 100)
            .unwrap();
        assert_eq!(block.len, 6);
        for bad in [
            format!("{}/../app/userFiles/a.txt", m.timestamp),
            format!("{}/b.txt", m.timestamp),
            "1/a.txt".to_string(),
            "a.txt".to_string(),
        ] {
            assert!(s.open_range(&bad, 0, 1).is_err(), "{bad}");
        }
        assert!(s.manifest_bytes("userfile_manifest_zzz").is_none());
    }

    #[test]
    fn archives_unpack_on_the_driver_under_their_alias() {
        let (d, s) = server(false);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "in/side.txt", &b"hi"[..]).unwrap();
        let archive = d.path().join("env.tar");
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        s.add_archive(&format!("{}#pyenv", archive.display()))
            .unwrap();
        assert_eq!(
            std::fs::read(s.root().join("pyenv/in/side.txt")).unwrap(),
            b"hi"
        );
        let snap = s.snapshot();
        assert_eq!(snap.archives.len(), 1);
        assert_eq!(snap.archives[0].0, "pyenv");
        assert!(s.has("pyenv"));
    }
}
