//! Where input bytes come from, behind one small trait: list a path's files with their sizes,
//! read from an offset. [`store_for`] picks the store by the path's scheme: the local file
//! system, or an object store (`s3://`, `gs://`, …, see [`crate::io::cloud`]). Splits are
//! planned from listed sizes without reading data, and tasks read their byte ranges through
//! [`FileStore::open_at`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{EmberError, Result};
use crate::io::cloud::{is_object_store, HadoopConf, ObjectFileStore};

/// A file of a dataset, as listed on the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStatus {
    /// The file.
    pub path: PathBuf,
    /// Its length in bytes when listed.
    pub len: u64,
}

/// A file system the readers list and read through.
pub trait FileStore: Send + Sync {
    /// The visible files `path` names (a file, a directory's files, a glob's matches; see
    /// [`crate::io::text_input::list_input_files`]), sorted, with their sizes.
    fn list(&self, path: &str) -> Result<Vec<FileStatus>>;
    /// The entries of a directory: `(path, is_dir, len)`, unsorted.
    fn list_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, bool, u64)>>;
    /// Whether `path` is a directory (false when it does not exist).
    fn is_dir(&self, path: &Path) -> bool;
    /// The file's bytes from `offset` on. A missing file is an [`EmberError::Io`] whose source
    /// has the kind `NotFound`.
    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>>;
}

/// The local file system.
pub struct LocalStore;

impl FileStore for LocalStore {
    fn list(&self, path: &str) -> Result<Vec<FileStatus>> {
        let files = crate::io::text_input::list_input_files(path)?;
        files
            .into_iter()
            .map(|path| {
                let md = std::fs::metadata(&path).map_err(|e| EmberError::io(&path, e))?;
                Ok(FileStatus {
                    len: md.len(),
                    path,
                })
            })
            .collect()
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, bool, u64)>> {
        let entries = std::fs::read_dir(dir).map_err(|e| EmberError::io(dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| EmberError::io(dir, e))?;
            let path = entry.path();
            let md = std::fs::metadata(&path).map_err(|e| EmberError::io(&path, e))?;
            out.push((path, md.is_dir(), md.len()));
        }
        Ok(out)
    }

    fn is_dir(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.is_dir())
    }

    fn open_at(&self, path: &Path, offset: u64) -> Result<Box<dyn Read + Send>> {
        let mut file = File::open(path).map_err(|e| EmberError::io(path, e))?;
        crate::metrics::count_file_op(false);
        if offset != 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| EmberError::io(path, e))?;
        }
        Ok(Box::new(file))
    }
}

/// The store a path lives in, with the settings of the running task's executor (see
/// [`HadoopConf::of_current_task`]); for the driver, see [`store_with`].
pub fn store_for(path: &str) -> Result<Arc<dyn FileStore>> {
    if !is_object_store(path) {
        return Ok(Arc::new(LocalStore));
    }
    store_with(path, &HadoopConf::of_current_task())
}

/// The store a path lives in, with the given object-store settings.
pub fn store_with(path: &str, conf: &HadoopConf) -> Result<Arc<dyn FileStore>> {
    if !is_object_store(path) {
        return Ok(Arc::new(LocalStore));
    }
    Ok(Arc::new(ObjectFileStore::new(path, conf)?))
}

/// Whether an error is a file that is not there (what `ember.files.ignoreMissingFiles` skips).
pub fn is_missing_file(e: &EmberError) -> bool {
    matches!(e, EmberError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}
