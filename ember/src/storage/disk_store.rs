//! `DiskStore`: cached blocks as files in the executor's local directory (Spark's `DiskStore`).
//!
//! A block is written to a temporary file and renamed into place, so a reader never sees half a
//! block. The files live under the executor's directory (`blocks/rdd_R_P`), which is deleted with
//! the rest of the executor's files when the application or the executor process stops.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::BlockId;
use crate::codec::{ChunkFormat, SpillFile};
use crate::error::{EmberError, Result};

/// A block file: its size and the format of its chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskBlock {
    /// Where it is.
    pub path: PathBuf,
    /// Its length in bytes.
    pub size: u64,
    /// How its chunks are written (`ember.rdd.compress` and the chunk checksum when it was
    /// written).
    pub format: ChunkFormat,
}

/// Cached blocks on the executor's disk.
pub struct DiskStore {
    dir: PathBuf,
    blocks: Mutex<FxHashMap<BlockId, DiskBlock>>,
}

impl DiskStore {
    /// A store writing into `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Self {
        DiskStore {
            dir,
            blocks: Mutex::new(FxHashMap::default()),
        }
    }

    /// The directory of the block files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a block with `write` (into a buffered temporary file, then renamed into place) and
    /// records it; returns its size. A block already on disk is replaced.
    pub fn put(
        &self,
        block: BlockId,
        format: ChunkFormat,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<u64>,
    ) -> Result<u64> {
        std::fs::create_dir_all(&self.dir).map_err(|e| EmberError::io(&self.dir, e))?;
        let tmp =
            SpillFile::create(&self.dir, "block").map_err(|e| EmberError::io(&self.dir, e))?;
        let mut out = BufWriter::new(tmp.file());
        let size = write(&mut out)
            .and_then(|n| out.flush().map(|_| n))
            .map_err(|e| EmberError::io(tmp.path(), e))?;
        drop(out);
        let path = self.dir.join(block.to_string());
        tmp.persist(&path).map_err(|e| EmberError::io(&path, e))?;
        self.blocks
            .lock()
            .insert(block, DiskBlock { path, size, format });
        Ok(size)
    }

    /// The file of a block, if it is on disk.
    pub fn get(&self, block: BlockId) -> Option<DiskBlock> {
        self.blocks.lock().get(&block).cloned()
    }

    /// Whether a block is on disk.
    pub fn contains(&self, block: BlockId) -> bool {
        self.blocks.lock().contains_key(&block)
    }

    /// Deletes a block's file; false when it was not on disk.
    pub fn remove(&self, block: BlockId) -> bool {
        let removed = self.blocks.lock().remove(&block);
        match removed {
            Some(b) => {
                if let Err(e) = std::fs::remove_file(&b.path) {
                    tracing::warn!("could not delete {}: {e}", b.path.display());
                }
                true
            }
            None => false,
        }
    }

    /// Every block on disk.
    pub fn blocks(&self) -> Vec<BlockId> {
        self.blocks.lock().keys().copied().collect()
    }

    /// The blocks of an RDD on disk.
    pub fn blocks_of_rdd(&self, rdd: usize) -> Vec<BlockId> {
        self.blocks
            .lock()
            .keys()
            .filter(|BlockId::Rdd { rdd_id, .. }| *rdd_id == rdd)
            .copied()
            .collect()
    }

    /// Bytes of all block files.
    pub fn disk_used(&self) -> u64 {
        self.blocks.lock().values().map(|b| b.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPRESSED: ChunkFormat = ChunkFormat::new(true, None);

    #[test]
    fn put_get_replace_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::new(dir.path().join("blocks"));
        let b = BlockId::Rdd {
            rdd_id: 2,
            partition: 5,
        };
        assert_eq!(
            store
                .put(b, ChunkFormat::PLAIN, |w| w.write_all(b"hello").map(|_| 5))
                .unwrap(),
            5
        );
        let got = store.get(b).unwrap();
        assert_eq!(got.path.file_name().unwrap(), "rdd_2_5");
        assert_eq!(std::fs::read(&got.path).unwrap(), b"hello");
        store
            .put(b, COMPRESSED, |w| w.write_all(b"hi").map(|_| 2))
            .unwrap();
        assert_eq!(
            store.get(b).map(|d| (d.size, d.format)),
            Some((2, COMPRESSED))
        );
        assert_eq!(store.disk_used(), 2);
        assert_eq!(store.blocks_of_rdd(2), vec![b]);
        assert!(store.remove(b));
        assert!(!store.remove(b));
        assert!(!got.path.exists());
        // A failed write leaves nothing behind.
        assert!(store
            .put(b, ChunkFormat::PLAIN, |_| Err(std::io::Error::other(
                "disk full"
            )))
            .is_err());
        assert!(!store.contains(b));
        assert_eq!(
            std::fs::read_dir(dir.path().join("blocks"))
                .unwrap()
                .count(),
            0
        );
    }
}
