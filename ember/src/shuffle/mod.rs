//! Sort-based shuffle: map tasks write one data file and one index file each; reduce tasks read
//! their block of every map output.
//!
//! On-disk format of a data file: for each reduce partition in order, its block; a block is a
//! sequence of chunks, each `[u32 little-endian length][payload]`, where the payload is an
//! lz4-compressed (with `ember.shuffle.compress`) run of postcard-encoded records. Chunks are
//! independent, so spilled runs are concatenated into the final file without re-encoding.
//! The index file holds `num_partitions + 1` little-endian u64 offsets into the data file.

pub mod block_format;
pub mod external_aggregator;
pub mod external_sorter;
pub mod reader;
pub mod size_tracker;
pub mod sort_writer;
pub mod str_table;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ember_net::block_server::ShuffleBlock;

use crate::conf::{self, EmberConf};
use crate::error::Result;
use crate::task::ShuffleId;

/// Shuffle settings read once per executor.
#[derive(Clone, Debug)]
pub struct ShuffleConf {
    /// lz4-compress shuffle blocks (`ember.shuffle.compress`).
    pub compress: bool,
    /// lz4-compress spill files (`ember.shuffle.spill.compress`).
    pub spill_compress: bool,
    /// In-memory bytes of one task's map or sort buffer past which it spills
    /// (`ember.shuffle.spill.threshold`).
    pub spill_threshold: u64,
    /// Writer buffer size (`ember.shuffle.file.buffer`).
    pub file_buffer: usize,
    /// Most bytes one reduce task fetches at once (`ember.reducer.maxSizeInFlight`).
    pub max_size_in_flight: u64,
}

impl ShuffleConf {
    /// Reads the shuffle keys.
    pub fn from_conf(c: &EmberConf) -> Result<Self> {
        Ok(ShuffleConf {
            compress: c.get_bool(conf::SHUFFLE_COMPRESS)?,
            spill_compress: c.get_bool(conf::SHUFFLE_SPILL_COMPRESS)?,
            spill_threshold: c.get_size_bytes(conf::SHUFFLE_SPILL_THRESHOLD)?,
            file_buffer: c.get_size_bytes(conf::SHUFFLE_FILE_BUFFER)? as usize,
            max_size_in_flight: c.get_size_bytes(conf::REDUCER_MAX_SIZE_IN_FLIGHT)?,
        })
    }
}

impl Default for ShuffleConf {
    fn default() -> Self {
        ShuffleConf {
            compress: true,
            spill_compress: true,
            spill_threshold: 512 << 20,
            file_buffer: 32 << 10,
            max_size_in_flight: 48 << 20,
        }
    }
}

/// The data file of one map output (Spark's `shuffle_S_M_0.data`).
pub fn data_file(dir: &Path, shuffle_id: ShuffleId, map_index: usize) -> PathBuf {
    dir.join(format!("shuffle_{shuffle_id}_{map_index}_0.data"))
}

/// The index file of one map output (Spark's `shuffle_S_M_0.index`).
pub fn index_file(dir: &Path, shuffle_id: ShuffleId, map_index: usize) -> PathBuf {
    dir.join(format!("shuffle_{shuffle_id}_{map_index}_0.index"))
}

/// Opens a map output's data file at the start of one reduce partition's block, as the local
/// shuffle reader does; returns it with the block's length, or why the block is not available
/// (what an executor's block server streams).
pub fn open_block(dir: &Path, shuffle_id: ShuffleId, map_index: usize, reduce_id: usize) -> std::result::Result<ShuffleBlock, String> {
    let index_path = index_file(dir, shuffle_id, map_index);
    let describe = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut offsets = [0u8; 16];
    let mut index = File::open(&index_path).map_err(|e| describe(&index_path, e))?;
    index
        .seek(SeekFrom::Start(reduce_id as u64 * 8))
        .and_then(|_| index.read_exact(&mut offsets))
        .map_err(|e| format!("{} (reduce partition {reduce_id})", describe(&index_path, e)))?;
    let (start_bytes, end_bytes) = offsets.split_at(8);
    let start = u64::from_le_bytes(start_bytes.try_into().unwrap_or_default());
    let end = u64::from_le_bytes(end_bytes.try_into().unwrap_or_default());
    if end < start {
        return Err(format!("{}: reduce partition {reduce_id} spans {start}..{end}", index_path.display()));
    }
    let data_path = data_file(dir, shuffle_id, map_index);
    let mut data = File::open(&data_path).map_err(|e| describe(&data_path, e))?;
    let data_len = data.metadata().map_err(|e| describe(&data_path, e))?.len();
    if data_len < end {
        return Err(format!("{}: {data_len} bytes, but the index says reduce partition {reduce_id} ends at {end}", data_path.display()));
    }
    data.seek(SeekFrom::Start(start)).map_err(|e| describe(&data_path, e))?;
    Ok(ShuffleBlock { file: data, len: end - start })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use ember_net::block_client::BlockClient;
    use ember_net::block_server::{BlockServer, BlockStore, ShuffleBlock};
    use ember_net::protocol::{BlockRequest, BlockResponse};

    use super::*;

    /// An executor's shuffle outputs, as its block server sees them.
    struct ShuffleDir(PathBuf);

    impl BlockStore for ShuffleDir {
        fn get_bytes(&self, _id: &str) -> Option<Vec<u8>> {
            None
        }
        fn remove(&self, _id: &str) -> bool {
            false
        }
        fn open_shuffle_block(&self, shuffle_id: ShuffleId, map_index: usize, reduce_id: usize) -> std::result::Result<ShuffleBlock, String> {
            open_block(&self.0, shuffle_id, map_index, reduce_id)
        }
    }

    /// Writes a map output by hand: blocks back to back in the data file, offsets in the index.
    fn write_map_output(dir: &Path, shuffle_id: usize, map_index: usize, blocks: &[Vec<u8>]) {
        let mut data = File::create(data_file(dir, shuffle_id, map_index)).unwrap();
        let mut index = File::create(index_file(dir, shuffle_id, map_index)).unwrap();
        let mut offset = 0u64;
        index.write_all(&offset.to_le_bytes()).unwrap();
        for b in blocks {
            data.write_all(b).unwrap();
            offset += b.len() as u64;
            index.write_all(&offset.to_le_bytes()).unwrap();
        }
    }

    #[test]
    fn block_server_serves_shuffle_blocks_including_chunked_ones() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let third: Vec<u8> = (0..1000usize).map(|i| (i as u8).wrapping_mul(31).wrapping_add(3)).collect();
        let blocks = vec![b"first".to_vec(), Vec::new(), third];
        write_map_output(dir.path(), 4, 1, &blocks);
        let max_frame = 64; // the third block travels as 16 chunks
        let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let store = Arc::new(ShuffleDir(dir.path().to_path_buf()));
        let (_server, addr) = BlockServer::start(rt.handle().clone(), localhost, Some(b"k".to_vec()), max_frame, store).unwrap();
        let client = BlockClient::new(rt.handle().clone(), Some(b"k".to_vec()), max_frame, Duration::from_secs(10));
        let data = std::fs::read(data_file(dir.path(), 4, 1)).unwrap();
        for (reduce_id, expected) in blocks.iter().enumerate() {
            let got = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 1, reduce_id }).unwrap();
            assert_eq!(got, BlockResponse::Data(expected.clone()));
        }
        // Exactly the byte range a local reader takes from the data file.
        let third = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 1, reduce_id: 2 }).unwrap();
        assert_eq!(third, BlockResponse::Data(data[5..].to_vec()));
        // Missing map output, and a reduce partition past the index.
        let missing = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 9, reduce_id: 0 }).unwrap();
        assert!(matches!(missing, BlockResponse::NotFound(ref m) if m.contains("shuffle_4_9_0")), "{missing:?}");
        let past = client.fetch(addr, BlockRequest::Shuffle { shuffle_id: 4, map_index: 1, reduce_id: 3 }).unwrap();
        assert!(matches!(past, BlockResponse::NotFound(_)), "{past:?}");
    }
}
