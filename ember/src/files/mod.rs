//! Files and archives shipped to executors: Spark's `SparkContext.addFile`/`addArchive`, the
//! task dependencies of its `TaskDescription` (`addedFiles`, `addedArchives`), the executor's
//! `updateDependencies`, and `SparkFiles`.
//!
//! `Context::add_file(path, recursive)` copies a local file (or directory) into the driver's
//! file root, and `Context::add_archive(path)` unpacks a `.zip`, `.tar.gz`, `.tgz` or `.tar`
//! there, into a directory named after the archive (or after a `#alias` fragment). Each task
//! carries the names and timestamps of everything added when its task set was created. Before
//! a task runs, its executor fetches what is new or changed (a timestamp greater than the one it
//! has) from the driver's block server (authenticated like shuffle blocks), once per executor
//! however many tasks start at once, and unpacks archives. A name added by `http://` or
//! `https://` URL is downloaded by the driver when added and by each executor from the URL. A
//! task then finds its files with [`EmberFiles::get`]:
//!
//! ```
//! use ember::prelude::*;
//! let dir = std::env::temp_dir().join(format!("ember-doc-files-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("factors.txt");
//! std::fs::write(&path, "3").unwrap();
//! let ctx = Context::new(EmberConf::new().set_master("local[2]")).unwrap();
//! ctx.add_file(path.to_str().unwrap(), false).unwrap();
//! let scaled = ctx
//!     .parallelize(vec![1u32, 2], 2)
//!     .map(|x| {
//!         let k: u32 = std::fs::read_to_string(EmberFiles::get("factors.txt"))
//!             .unwrap()
//!             .parse()
//!             .unwrap();
//!         x * k
//!     })
//!     .collect()
//!     .unwrap();
//! assert_eq!(scaled, [3, 6]);
//! ctx.stop();
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! The files live in the executor's private scratch directory, deleted when it stops (the
//! driver's copies in the application's directory, deleted with it).

mod fetch;
mod server;
mod unpack;
mod url;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};

pub(crate) use fetch::{ExecutorFiles, Remote};
pub(crate) use server::FileServer;
pub(crate) use unpack::unpack;

/// What a task needs of the files the application added: the names and timestamps of the
/// files (and directories) and of the archives, as Spark's `TaskDescription` carries them
/// (`addedFiles`, `addedArchives`), and where to fetch them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependencies {
    /// The driver's block server (cluster mode); `None` when the executor is the driver.
    pub source: Option<SocketAddr>,
    /// Added files and directories: name in the file root, timestamp of the addition.
    pub files: Vec<(String, u64)>,
    /// Added archives: the directory they unpack to (file name or `#alias`), timestamp.
    pub archives: Vec<(String, u64)>,
    /// The names (of `files` or `archives`) added by `http://` or `https://` URL, with the
    /// URL each executor downloads them from itself.
    pub urls: Vec<(String, String)>,
}

impl Dependencies {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.archives.is_empty()
    }
}

/// The kind of an added name: a file (or directory), or an archive unpacked under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// `add_file`.
    File,
    /// `add_archive`.
    Archive,
}

/// The block id under which the driver serves the manifest of an added name.
pub(crate) fn manifest_block_id(kind: Kind, name: &str) -> String {
    match kind {
        Kind::File => format!("{FILE_MANIFEST}{name}"),
        Kind::Archive => format!("{ARCHIVE_MANIFEST}{name}"),
    }
}

const FILE_MANIFEST: &str = "userfile_manifest_";
const ARCHIVE_MANIFEST: &str = "userarchive_manifest_";

/// What an executor must fetch for one added name: every regular file of the version the
/// driver serves, with its size, and the directories to create (a directory added with
/// `recursive` may hold empty ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// The timestamp of the version served.
    pub timestamp: u64,
    /// For an archive, the archive's file name (its extension says how to unpack it).
    pub archive: Option<String>,
    /// Regular files, by path relative to the version's directory, with their sizes.
    pub entries: Vec<(String, u64)>,
    /// Directories, by path relative to the version's directory, parents first.
    pub dirs: Vec<String>,
}

thread_local! {
    /// The files of the executor running the current thread's task.
    static CURRENT: RefCell<Option<Arc<ExecutorFiles>>> = const { RefCell::new(None) };
}

/// Makes `files` what [`EmberFiles`] answers from on this thread until the guard is dropped
/// (the executor's task runner, around a task).
pub(crate) fn enter(files: &Arc<ExecutorFiles>) -> EnterGuard {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(files.clone()));
    EnterGuard { previous }
}

/// Restores what [`EmberFiles`] answered from before [`enter`].
pub(crate) struct EnterGuard {
    previous: Option<Arc<ExecutorFiles>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The file servers of the running contexts of this process, oldest first (for
/// [`EmberFiles`] on the driver, where no task says which application is meant).
static DRIVERS: std::sync::Mutex<Vec<Weak<FileServer>>> = std::sync::Mutex::new(Vec::new());

fn drivers() -> std::sync::MutexGuard<'static, Vec<Weak<FileServer>>> {
    // Only pushes and retains happen under the lock: a panic cannot leave the list half done.
    DRIVERS.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn register_driver(server: &Arc<FileServer>) {
    let mut drivers = drivers();
    drivers.retain(|w| w.strong_count() > 0);
    drivers.push(Arc::downgrade(server));
}

pub(crate) fn unregister_driver(server: &Arc<FileServer>) {
    drivers().retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(server)));
}

/// The driver's file root to answer from outside a task: the newest running application that
/// added `name` (any name: the newest running application).
fn driver_root(name: Option<&str>) -> Option<PathBuf> {
    let drivers: Vec<Arc<FileServer>> = drivers().iter().filter_map(Weak::upgrade).collect();
    name.and_then(|n| drivers.iter().rev().find(|d| d.has(n)))
        .or(drivers.last())
        .map(|d| d.root().to_path_buf())
}

/// Where the files added with `Context::add_file` and `add_archive` are (Spark's
/// `SparkFiles`). In a task: the executor's copies; on the driver: the driver's own.
pub struct EmberFiles;

impl EmberFiles {
    /// The local path of a file (or directory, or unpacked archive) added with
    /// `Context::add_file` or `add_archive`, by its name (the file name, or the archive's
    /// `#alias`); paths below it work too (`"dir/sub/file.txt"`). Spark's `SparkFiles.get`.
    ///
    /// # Panics
    ///
    /// Outside a task, when no application is running in this process.
    pub fn get(name: &str) -> PathBuf {
        match Self::current_root(Some(name)) {
            Some(root) => root.join(name),
            None => panic!("{}", Self::NO_ROOT),
        }
    }

    /// The directory that holds the added files (Spark's `SparkFiles.getRootDirectory`).
    ///
    /// # Panics
    ///
    /// Outside a task, when no application is running in this process.
    pub fn root_directory() -> PathBuf {
        match Self::current_root(None) {
            Some(root) => root,
            None => panic!("{}", Self::NO_ROOT),
        }
    }

    const NO_ROOT: &'static str =
        "EmberFiles used outside a task while no Ember context is running in this process";

    fn current_root(name: Option<&str>) -> Option<PathBuf> {
        let in_task = CURRENT.with(|c| c.borrow().as_ref().map(|f| f.root().to_path_buf()));
        in_task.or_else(|| driver_root(name.map(first_component)))
    }

    /// How many times the current task's executor brought `name` up to date (fetched it, or in
    /// local mode found the driver's copy); `None` outside a task. For tests.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn update_count(name: &str) -> Option<u64> {
        CURRENT.with(|c| c.borrow().as_ref().map(|f| f.update_count(name)))
    }
}

/// The added name a path below it starts with (`"dir/sub/x"` → `"dir"`).
fn first_component(path: &str) -> &str {
    path.split('/').find(|c| !c.is_empty()).unwrap_or(path)
}

/// Whether `rel` is a plain relative path (only normal components): never absolute, never
/// `..`, so joining it to a directory stays inside it.
pub(crate) fn is_plain_relative(rel: &Path) -> bool {
    use std::path::Component;
    let mut any = false;
    for c in rel.components() {
        match c {
            Component::Normal(_) => any = true,
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    any
}

/// Whether two files or directory trees have the same contents (Spark's `filesEqualRecursive`).
pub(crate) fn same_contents(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    if ma.is_dir() != mb.is_dir() {
        return Ok(false);
    }
    if ma.is_dir() {
        let names = |p: &Path| -> std::io::Result<Vec<std::ffi::OsString>> {
            let mut v: Vec<_> = std::fs::read_dir(p)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()?;
            v.sort();
            Ok(v)
        };
        let (na, nb) = (names(a)?, names(b)?);
        if na != nb {
            return Ok(false);
        }
        for n in na {
            if !same_contents(&a.join(&n), &b.join(&n))? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }

    fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}

/// Removes a file or a directory tree when dropped (a temporary download).
pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = remove_path(&self.0);
    }
}

/// Removes a file or a directory tree, if there is one.
pub(crate) fn remove_path(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_stay_inside() {
        for ok in ["a", "a/b", "./a", "a/./b"] {
            assert!(is_plain_relative(Path::new(ok)), "{ok}");
        }
        for bad in ["", ".", "../a", "a/../../b", "/etc/passwd", "a/.."] {
            assert!(!is_plain_relative(Path::new(bad)), "{bad}");
        }
    }

    #[test]
    fn contents_are_compared_recursively() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for root in [&a, &b] {
            std::fs::create_dir_all(root.join("sub")).unwrap();
            std::fs::write(root.join("sub/x"), b"same").unwrap();
        }
        assert!(same_contents(&a, &b).unwrap());
        std::fs::write(b.join("sub/x"), b"diff").unwrap();
        assert!(!same_contents(&a, &b).unwrap());
        std::fs::write(b.join("sub/x"), b"same").unwrap();
        std::fs::write(b.join("extra"), b"").unwrap();
        assert!(!same_contents(&a, &b).unwrap());
        assert!(!same_contents(&a.join("sub/x"), &a).unwrap());
    }

    #[test]
    fn names_below_an_added_directory_resolve_to_it() {
        assert_eq!(first_component("dir/sub/x"), "dir");
        assert_eq!(first_component("/x"), "x");
        assert_eq!(first_component("x"), "x");
    }
}
