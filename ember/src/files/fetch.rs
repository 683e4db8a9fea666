//! The executor's side (Spark's `Executor.updateDependencies` and `Utils.fetchFile`): before a
//! task runs, bring the executor's file root up to date with the task's [`Dependencies`].
//!
//! Whatever the task lists with a newer timestamp than the executor has is fetched from the
//! driver's block server: first its manifest (the files of the version the driver serves), then
//! the files in ranges, several in flight, written into a fresh directory next to the root and
//! moved into place once complete, so a task never sees half a file. Archives are unpacked
//! into a directory named after them. All of it under one lock per executor, as Spark's
//! `updateDependenciesLock`: tasks that start together wait for one fetch instead of each
//! making their own, and a name is recorded only once it is in place, so a failed fetch fails
//! the task (naming the file and the reason) and the next attempt tries again.
//!
//! A name added by `http://` or `https://` URL is downloaded from the URL instead (the task
//! carries it, as Spark's tasks carry the added URLs), under the same lock and into the same
//! temporary directory; a failure names the URL.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use tracing::info;

use super::{manifest_block_id, Dependencies, Kind, Manifest};
use crate::error::{EmberError, Result};
use ember_net::block_client::BlockClient;
use ember_net::protocol::{BlockRequest, BlockResponse};
use ember_net::RpcError;

/// Bytes asked for in one range request.
const RANGE: u64 = 4 << 20;

/// How an executor in its own process reaches the driver's files.
pub struct Remote {
    /// A client whose waits are bounded by `ember.files.fetchTimeout`.
    pub client: BlockClient,
    /// Most bytes requested and not yet received (`ember.reducer.maxSizeInFlight`).
    pub max_in_flight: u64,
    /// Bounds each step of a download from an http(s) URL (`ember.files.fetchTimeout`).
    pub fetch_timeout: std::time::Duration,
}

/// What the executor has: timestamps by name, as Spark's `currentFiles`, `currentArchives`.
#[derive(Default)]
struct Current {
    files: BTreeMap<String, u64>,
    archives: BTreeMap<String, u64>,
}

/// One executor's added files: its file root and what it has fetched into it.
pub struct ExecutorFiles {
    root: PathBuf,
    /// `None` when the executor is the driver's own (local mode): the driver put the files in
    /// this root already.
    remote: Option<Remote>,
    /// Held for a whole update (Spark's `updateDependenciesLock`).
    current: Mutex<Current>,
    /// Updates by name, for tests and logs.
    updates: Mutex<BTreeMap<String, u64>>,
    next_temp: AtomicU64,
}

impl ExecutorFiles {
    /// The files of an executor whose root is `root` (created if needed). `remote`: how to
    /// fetch from the driver, `None` in local mode.
    pub fn new(root: PathBuf, remote: Option<Remote>) -> Result<Self> {
        std::fs::create_dir_all(&root).map_err(|e| EmberError::io(&root, e))?;
        Ok(ExecutorFiles {
            root,
            remote,
            current: Mutex::new(Current::default()),
            updates: Mutex::new(BTreeMap::new()),
            next_temp: AtomicU64::new(0),
        })
    }

    /// The directory that holds the added files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many times `name` was brought up to date here.
    #[cfg(any(test, feature = "testing"))]
    pub fn update_count(&self, name: &str) -> u64 {
        self.updates.lock().get(name).copied().unwrap_or(0)
    }

    /// Fetches what `deps` lists that is new or newer than what this executor has (Spark's
    /// `updateDependencies`). An error names the file and the reason; what was fetched before
    /// it stays recorded.
    pub fn update(&self, deps: &Dependencies) -> Result<()> {
        if deps.is_empty() {
            return Ok(());
        }
        let mut current = self.current.lock();
        for (name, timestamp) in &deps.files {
            if current
                .files
                .get(name)
                .is_some_and(|have| have >= timestamp)
            {
                continue;
            }
            info!("Fetching {name} with timestamp {timestamp}");
            let got = self.bring(Kind::File, name, deps)?;
            current.files.insert(name.clone(), got.max(*timestamp));
            *self.updates.lock().entry(name.clone()).or_default() += 1;
        }
        for (name, timestamp) in &deps.archives {
            if current
                .archives
                .get(name)
                .is_some_and(|have| have >= timestamp)
            {
                continue;
            }
            info!("Fetching {name} with timestamp {timestamp}");
            let got = self.bring(Kind::Archive, name, deps)?;
            current.archives.insert(name.clone(), got.max(*timestamp));
            *self.updates.lock().entry(name.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Puts the driver's current version of `name` (or the contents of its URL) in the root;
    /// returns its timestamp (0 in local mode, where the driver's copy is already there, and
    /// for a URL).
    fn bring(&self, kind: Kind, name: &str, deps: &Dependencies) -> Result<u64> {
        let Some(remote) = &self.remote else {
            return Ok(0);
        };
        let failed = |reason: String| EmberError::FileFetchFailed {
            name: name.to_string(),
            reason,
        };
        // Names come from the driver, which checked them; never trusted to stay inside anyway.
        let single = |n: &str| super::is_plain_relative(Path::new(n)) && !n.contains('/');
        if !single(name) {
            return Err(failed("not a file name".into()));
        }
        let temp = self.root.join(format!(
            ".fetching-{}",
            self.next_temp.fetch_add(1, Relaxed)
        ));
        let _cleanup = super::RemoveOnDrop(temp.clone());
        let url = deps.urls.iter().find(|(n, _)| n == name).map(|(_, u)| u);
        // What was put in `temp`: the file (or directory, or archive) name, and the timestamp.
        let (fetched, timestamp) = if let Some(url) = url {
            let file_name = super::url::file_name(url)
                .filter(|n| single(n))
                .ok_or_else(|| failed(format!("{url} names no file")))?;
            std::fs::create_dir_all(&temp).map_err(|e| EmberError::io(&temp, e))?;
            info!("Fetching {url} to {}", temp.join(&file_name).display());
            super::url::download(url, &temp.join(&file_name), remote.fetch_timeout).map_err(
                |e| match e {
                    super::url::Download::Remote(m) => failed(format!("from {url}: {m}")),
                    super::url::Download::Local(e) => e,
                },
            )?;
            (file_name, 0)
        } else {
            let source = deps
                .source
                .ok_or_else(|| failed("the task does not say where the driver is".into()))?;
            let manifest = fetch_manifest(&remote.client, source, kind, name)
                .map_err(|e| failed(format!("from {source}: {e}")))?;
            download(remote, source, &manifest, &temp).map_err(|e| match e {
                Fetch::Remote(m) => failed(format!("from {source}: {m}")),
                Fetch::Local(e) => e,
            })?;
            let fetched = match kind {
                Kind::File => name.to_string(),
                Kind::Archive => manifest
                    .archive
                    .clone()
                    .filter(|n| single(n))
                    .ok_or_else(|| failed("the driver sent no archive name".into()))?,
            };
            (fetched, manifest.timestamp)
        };
        let dest = self.root.join(name);
        match kind {
            Kind::File => {
                // A newer version of a name exists only if the driver allowed the replacement
                // (`ember.files.overwrite`), so it replaces what is here.
                super::remove_path(&dest).map_err(|e| EmberError::io(&dest, e))?;
                std::fs::rename(temp.join(&fetched), &dest)
                    .map_err(|e| EmberError::io(&dest, e))?;
            }
            Kind::Archive => {
                let file_name = fetched.as_str();
                let archive = temp.join(file_name);
                super::remove_path(&dest).map_err(|e| EmberError::io(&dest, e))?;
                info!(
                    "Unpacking an archive {name} from {} to {}",
                    archive.display(),
                    dest.display()
                );
                if let Err(e) = super::unpack(&archive, file_name, &dest) {
                    let _ = super::remove_path(&dest);
                    return Err(e);
                }
            }
        }
        Ok(timestamp)
    }
}

fn fetch_manifest(
    client: &BlockClient,
    source: SocketAddr,
    kind: Kind,
    name: &str,
) -> std::result::Result<Manifest, String> {
    let request = BlockRequest::Stored {
        block_id: manifest_block_id(kind, name),
    };
    match client.fetch(source, request) {
        Ok(BlockResponse::Data(bytes)) => postcard::from_bytes(&bytes)
            .map_err(|e| format!("a manifest that does not decode: {e}")),
        Ok(BlockResponse::NotFound(m)) => Err(format!("the driver does not serve it ({m})")),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Why a download failed: the driver or the network (a fetch failure), or this machine.
enum Fetch {
    Remote(String),
    Local(EmberError),
}

/// Fetches every file of `manifest` below `temp`, in ranges, at most `max_in_flight` bytes
/// requested at once.
fn download(
    remote: &Remote,
    source: SocketAddr,
    manifest: &Manifest,
    temp: &Path,
) -> std::result::Result<(), Fetch> {
    let local = |p: &Path, e: std::io::Error| Fetch::Local(EmberError::io(p, e));
    std::fs::create_dir_all(temp).map_err(|e| local(temp, e))?;
    let checked = |rel: &str| -> std::result::Result<PathBuf, Fetch> {
        if super::is_plain_relative(Path::new(rel)) {
            Ok(temp.join(rel))
        } else {
            Err(Fetch::Remote(format!("refusing the served path {rel:?}")))
        }
    };
    for d in &manifest.dirs {
        let p = checked(d)?;
        std::fs::create_dir_all(&p).map_err(|e| local(&p, e))?;
    }
    // (file index, offset, length) of each range request.
    let mut ranges = Vec::new();
    let mut requests = Vec::new();
    let mut paths = Vec::with_capacity(manifest.entries.len());
    for (i, (rel, size)) in manifest.entries.iter().enumerate() {
        let p = checked(rel)?;
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| local(parent, e))?;
        }
        let f = std::fs::File::create(&p).map_err(|e| local(&p, e))?;
        f.set_len(*size).map_err(|e| local(&p, e))?;
        paths.push(p);
        let mut offset = 0;
        while offset < *size {
            let len = RANGE.min(size - offset);
            ranges.push((i, offset, len));
            requests.push((
                source,
                BlockRequest::FileRange {
                    file_id: format!("{}/{rel}", manifest.timestamp),
                    offset,
                    len,
                },
                len,
            ));
            offset += len;
        }
    }
    for answer in remote.client.fetch_many(requests, remote.max_in_flight) {
        let (r, bytes) = answer.map_err(|(r, e): (usize, RpcError)| {
            let (i, offset, _) = ranges[r];
            Fetch::Remote(format!("{} at offset {offset}: {e}", manifest.entries[i].0))
        })?;
        let (i, offset, len) = ranges[r];
        if bytes.len() as u64 != len {
            return Err(Fetch::Remote(format!(
                "{} at offset {offset}: {} bytes instead of {len} (did it change?)",
                manifest.entries[i].0,
                bytes.len()
            )));
        }
        let p = &paths[i];
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(|e| local(p, e))?;
        f.write_all_at(&bytes, offset).map_err(|e| local(p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::files::FileServer;
    use ember_net::block_server::{BlockServer, BlockStore, ShuffleBlock};
    use ember_net::secret::Security;

    /// The driver's store as the cluster backend builds it: manifests and file ranges.
    struct Store(Arc<FileServer>);

    impl BlockStore for Store {
        fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
            self.0.manifest_bytes(id)
        }
        fn remove(&self, _: &str) -> bool {
            false
        }
        fn open_file_range(
            &self,
            id: &str,
            offset: u64,
            len: u64,
        ) -> std::result::Result<ShuffleBlock, String> {
            self.0.open_range(id, offset, len)
        }
    }

    struct Net {
        _server: BlockServer,
        addr: SocketAddr,
        client: BlockClient,
        // Last: dropped after what runs on it.
        _runtime: tokio::runtime::Runtime,
    }

    fn serve(files: &Arc<FileServer>) -> Net {
        let runtime = ember_net::runtime::network_runtime("files-test").unwrap();
        let security = Security::authenticated("s3cret");
        let (server, addr) = BlockServer::start(
            runtime.handle().clone(),
            "127.0.0.1:0".parse().unwrap(),
            security.clone(),
            1 << 20,
            Arc::new(Store(files.clone())),
        )
        .unwrap();
        files.set_source(addr);
        let client = BlockClient::new(
            runtime.handle().clone(),
            security,
            1 << 20,
            std::time::Duration::from_secs(30),
        );
        Net {
            _runtime: runtime,
            _server: server,
            addr,
            client,
        }
    }

    fn executor(dir: &Path, net: &Net) -> ExecutorFiles {
        let remote = Remote {
            client: net.client.clone(),
            max_in_flight: 3 << 20,
            fetch_timeout: Duration::from_secs(30),
        };
        ExecutorFiles::new(dir.to_path_buf(), Some(remote)).unwrap()
    }

    #[test]
    fn a_name_is_fetched_once_until_its_timestamp_grows() {
        let d = tempfile::tempdir().unwrap();
        let driver = FileServer::new(&d.path().join("app"), true, Duration::from_secs(30));
        let net = serve(&driver);
        let f = d.path().join("big.bin");
        // Several ranges, the last one short.
        let data: Vec<u8> = (0..(9u32 << 20) + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &data).unwrap();
        driver.add_file(f.to_str().unwrap(), false).unwrap();
        let exec = executor(&d.path().join("exec"), &net);
        for _ in 0..3 {
            exec.update(&driver.snapshot()).unwrap();
        }
        assert_eq!(exec.update_count("big.bin"), 1);
        assert_eq!(driver.fetch_count("big.bin"), 1);
        assert_eq!(std::fs::read(exec.root().join("big.bin")).unwrap(), data);
        // Changed and re-added (overwrite on): fetched again.
        std::fs::write(&f, b"small now").unwrap();
        driver.add_file(f.to_str().unwrap(), false).unwrap();
        exec.update(&driver.snapshot()).unwrap();
        assert_eq!(exec.update_count("big.bin"), 2);
        assert_eq!(
            std::fs::read(exec.root().join("big.bin")).unwrap(),
            b"small now"
        );
        // Nothing left behind but the file itself.
        let names: Vec<_> = std::fs::read_dir(exec.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["big.bin"]);
        assert_eq!(net.addr, driver.snapshot().source.unwrap());
    }

    #[test]
    fn tasks_starting_together_share_one_fetch() {
        let d = tempfile::tempdir().unwrap();
        let driver = FileServer::new(&d.path().join("app"), false, Duration::from_secs(30));
        let net = serve(&driver);
        let dir = d.path().join("tree");
        for i in 0..50 {
            let sub = dir.join(format!("s{}", i % 5));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("f{i}")), format!("{i}")).unwrap();
        }
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        driver.add_file(dir.to_str().unwrap(), true).unwrap();
        let exec = Arc::new(executor(&d.path().join("exec"), &net));
        let deps = driver.snapshot();
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (exec, deps) = (exec.clone(), deps.clone());
                s.spawn(move || exec.update(&deps).unwrap());
            }
        });
        assert_eq!(exec.update_count("tree"), 1);
        assert_eq!(driver.fetch_count("tree"), 1);
        assert!(super::super::same_contents(&dir, &exec.root().join("tree")).unwrap());
    }

    #[test]
    fn a_failed_fetch_names_the_file_and_is_tried_again() {
        let d = tempfile::tempdir().unwrap();
        let driver = FileServer::new(&d.path().join("app"), false, Duration::from_secs(30));
        let net = serve(&driver);
        let exec = executor(&d.path().join("exec"), &net);
        let deps = Dependencies {
            source: Some(net.addr),
            files: vec![("ghost.txt".into(), 7)],
            archives: Vec::new(),
            urls: Vec::new(),
        };
        let err = exec.update(&deps).unwrap_err();
        assert!(matches!(err, EmberError::FileFetchFailed { ref name, .. } if name == "ghost.txt"));
        assert!(err.to_string().contains("ghost.txt"), "{err}");
        // Now it exists: the next task fetches it.
        let f = d.path().join("ghost.txt");
        std::fs::write(&f, "boo").unwrap();
        driver.add_file(f.to_str().unwrap(), false).unwrap();
        exec.update(&driver.snapshot()).unwrap();
        assert_eq!(
            std::fs::read(exec.root().join("ghost.txt")).unwrap(),
            b"boo"
        );
    }

    #[test]
    fn local_mode_records_without_fetching() {
        let d = tempfile::tempdir().unwrap();
        let exec = ExecutorFiles::new(d.path().to_path_buf(), None).unwrap();
        let deps = Dependencies {
            source: None,
            files: vec![("a".into(), 5)],
            archives: vec![("b".into(), 6)],
            urls: Vec::new(),
        };
        exec.update(&deps).unwrap();
        exec.update(&deps).unwrap();
        assert_eq!((exec.update_count("a"), exec.update_count("b")), (1, 1));
    }
}
