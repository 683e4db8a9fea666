//! Where input bytes come from, behind one small trait: list a path's files with their sizes,
//! read from an offset. The local file system is the only store today; an object store
//! (`s3://`, `gs://`, …) would be another [`FileStore`] chosen by the path's scheme in
//! [`store_for`], and nothing above this module would change: splits are planned from listed
//! sizes without reading data, and tasks read their byte ranges through [`FileStore::open_at`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{EmberError, Result};

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
    /// The entries of a directory: `(path, is_dir)`, unsorted.
    fn list_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, bool)>>;
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

    fn list_dir(&self, dir: &Path) -> Result<Vec<(PathBuf, bool)>> {
        let entries = std::fs::read_dir(dir).map_err(|e| EmberError::io(dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| EmberError::io(dir, e))?;
            let path = entry.path();
            let md = std::fs::metadata(&path).map_err(|e| EmberError::io(&path, e))?;
            out.push((path, md.is_dir()));
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

/// The store a path lives in.
pub fn store_for(_path: &str) -> &'static dyn FileStore {
    &LocalStore
}

/// Whether an error is a file that is not there (what `ember.files.ignoreMissingFiles` skips).
pub fn is_missing_file(e: &EmberError) -> bool {
    matches!(e, EmberError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}
