//! Where a map output's files are and how they are committed and read back by block (Spark's
//! `IndexShuffleBlockResolver`): `shuffle_S_M_0.data` holds the reduce partitions' blocks in
//! order, `shuffle_S_M_0.index` the `num_partitions + 1` little-endian u64 offsets of those
//! blocks in the data file. `M` is the map id, the id of the task attempt that wrote the output
//! (Spark 3's `mapId`), not the map partition.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ember_net::block_server::ShuffleBlock;

use crate::codec::{io_err, SpillFile};
use crate::error::Result;
use crate::task::ShuffleId;

/// The data file of one map output (Spark's `shuffle_S_M_0.data`).
pub fn data_file(dir: &Path, shuffle_id: ShuffleId, map_id: u64) -> PathBuf {
    dir.join(format!("shuffle_{shuffle_id}_{map_id}_0.data"))
}

/// The index file of one map output (Spark's `shuffle_S_M_0.index`).
pub fn index_file(dir: &Path, shuffle_id: ShuffleId, map_id: u64) -> PathBuf {
    dir.join(format!("shuffle_{shuffle_id}_{map_id}_0.index"))
}

/// The byte range `start..end` of reduce partition `reduce_id`'s block in a map output's data
/// file, read from the map output's index (`index`, at any position): the partition's offset and
/// the next one. The index is a file, so nothing in it is trusted: a partition past its end or a
/// range that ends before it starts is an error naming the partition.
pub fn block_range<R: Read + Seek>(
    index: &mut R,
    reduce_id: usize,
) -> std::result::Result<(u64, u64), String> {
    let mut offsets = [0u8; 16];
    // A reduce id comes from a block request on the network: past any index, not an overflow.
    let at = (reduce_id as u64).checked_mul(8).ok_or_else(|| {
        format!("reduce partition {reduce_id} is past the end of any index")
    })?;
    index
        .seek(SeekFrom::Start(at))
        .and_then(|_| index.read_exact(&mut offsets))
        .map_err(|e| format!("{e} (reduce partition {reduce_id})"))?;
    let (start_bytes, end_bytes) = offsets.split_at(8);
    let start = u64::from_le_bytes(start_bytes.try_into().unwrap_or_default());
    let end = u64::from_le_bytes(end_bytes.try_into().unwrap_or_default());
    if end < start {
        return Err(format!(
            "reduce partition {reduce_id} spans {start}..{end}"
        ));
    }
    Ok((start, end))
}

/// Opens a map output's data file at the start of one reduce partition's block, as the local
/// shuffle reader does; returns it with the block's length, or why the block is not available
/// (what an executor's block server streams).
pub fn open_block(
    dir: &Path,
    shuffle_id: ShuffleId,
    map_id: u64,
    reduce_id: usize,
) -> std::result::Result<ShuffleBlock, String> {
    let index_path = index_file(dir, shuffle_id, map_id);
    let describe = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut index = File::open(&index_path).map_err(|e| describe(&index_path, e))?;
    let (start, end) = block_range(&mut index, reduce_id)
        .map_err(|e| format!("{}: {e}", index_path.display()))?;
    let data_path = data_file(dir, shuffle_id, map_id);
    let mut data = File::open(&data_path).map_err(|e| describe(&data_path, e))?;
    let data_len = data.metadata().map_err(|e| describe(&data_path, e))?.len();
    if data_len < end {
        return Err(format!(
            "{}: {data_len} bytes, but the index says reduce partition {reduce_id} ends at {end}",
            data_path.display()
        ));
    }
    data.seek(SeekFrom::Start(start))
        .map_err(|e| describe(&data_path, e))?;
    Ok(ShuffleBlock {
        file: data,
        len: end - start,
    })
}

/// Writes the index of a map output whose blocks have these lengths to a new temporary file in
/// `dir`, to be committed with [`commit`].
pub(crate) fn write_index(
    dir: &Path,
    shuffle_id: ShuffleId,
    map_id: u64,
    lengths: &[u64],
) -> Result<SpillFile> {
    let tmp_index = SpillFile::create(dir, &format!("shuffle_{shuffle_id}_{map_id}_0.index"))
        .map_err(io_err(dir))?;
    let mut index = Vec::with_capacity((lengths.len() + 1) * 8);
    let mut offset = 0u64;
    index.extend_from_slice(&offset.to_le_bytes());
    for l in lengths {
        offset += l;
        index.extend_from_slice(&offset.to_le_bytes());
    }
    tmp_index
        .file()
        .write_all(&index)
        .map_err(io_err(tmp_index.path()))?;
    Ok(tmp_index)
}

/// The block sizes an index describes, when it is one of `partitions` blocks that start at 0,
/// never go backwards and end exactly at `data_len`; `None` for anything else. Only the fuzz
/// target and tests read whole indexes now that no commit looks at an earlier output.
#[cfg(any(test, feature = "fuzzing"))]
pub fn consistent_sizes(index: &[u8], partitions: usize, data_len: u64) -> Option<Vec<u64>> {
    if Some(index.len()) != partitions.checked_add(1)?.checked_mul(8) {
        return None;
    }
    let offsets: Vec<u64> = index
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0xff; 8])))
        .collect();
    if offsets[0] != 0 || offsets.windows(2).any(|w| w[1] < w[0]) {
        return None;
    }
    (data_len == offsets[partitions]).then(|| offsets.windows(2).map(|w| w[1] - w[0]).collect())
}

/// Commits a map output written to temporary files (Spark's `writeIndexFileAndCommit`): renames
/// them to the output's names and returns the block sizes.
///
/// Since every task attempt names its output by its own id (`map_id`), no other attempt ever
/// commits to the same names, and nothing is shared to check or lock: Spark 2's "keep the output
/// another attempt committed first" is not needed, and would be wrong after an indeterminate
/// stage is rolled back (the kept output was computed from the input that was rolled back).
pub(crate) fn commit(
    tmp_data: SpillFile,
    tmp_index: SpillFile,
    dir: &Path,
    shuffle_id: ShuffleId,
    map_id: u64,
    lengths: Vec<u64>,
) -> Result<Vec<u64>> {
    let data_path = data_file(dir, shuffle_id, map_id);
    let index_path = index_file(dir, shuffle_id, map_id);
    // Data before index: an index on disk always describes the data file next to it.
    tmp_data.persist(&data_path).map_err(io_err(&data_path))?;
    tmp_index
        .persist(&index_path)
        .map_err(io_err(&index_path))?;
    Ok(lengths)
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

    #[test]
    fn a_reduce_partition_past_any_index_is_an_error_not_an_overflow() {
        // Fuzz regression (shuffle_output): a reduce id from a block request times 8
        // overflowed (a panic with overflow checks, another partition's block without).
        let index: Vec<u8> = [0u64, 5, 9].iter().flat_map(|o| o.to_le_bytes()).collect();
        let mut cursor = std::io::Cursor::new(&index);
        assert_eq!(block_range(&mut cursor, 1), Ok((5, 9)));
        let wrapped = (1usize << 61) + 1;
        let err = block_range(&mut cursor, wrapped).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
        assert!(block_range(&mut cursor, 2).is_err());
        assert_eq!(consistent_sizes(&index, 2, 9), Some(vec![5, 4]));
        assert_eq!(consistent_sizes(&index, 2, 10), None);
        assert_eq!(consistent_sizes(&index, usize::MAX, 9), None);
    }

    /// An executor's shuffle outputs, as its block server sees them.
    struct ShuffleDir(PathBuf);

    impl BlockStore for ShuffleDir {
        fn get_bytes(&self, _id: &str) -> Option<Vec<u8>> {
            None
        }
        fn remove(&self, _id: &str) -> bool {
            false
        }
        fn open_shuffle_block(
            &self,
            shuffle_id: ShuffleId,
            map_id: u64,
            reduce_id: usize,
        ) -> std::result::Result<ShuffleBlock, String> {
            open_block(&self.0, shuffle_id, map_id, reduce_id)
        }
    }

    /// Writes a map output by hand: blocks back to back in the data file, offsets in the index.
    fn write_map_output(dir: &Path, shuffle_id: usize, map_id: u64, blocks: &[Vec<u8>]) {
        let mut data = File::create(data_file(dir, shuffle_id, map_id)).unwrap();
        let mut index = File::create(index_file(dir, shuffle_id, map_id)).unwrap();
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let third: Vec<u8> = (0..1000usize)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(3))
            .collect();
        let blocks = vec![b"first".to_vec(), Vec::new(), third];
        write_map_output(dir.path(), 4, 1, &blocks);
        let max_frame = 64; // the third block travels as 16 chunks
        let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let store = Arc::new(ShuffleDir(dir.path().to_path_buf()));
        let (_server, addr) = BlockServer::start(
            rt.handle().clone(),
            localhost,
            ember_net::secret::Security::authenticated("k"),
            max_frame,
            store,
        )
        .unwrap();
        let client = BlockClient::new(
            rt.handle().clone(),
            ember_net::secret::Security::authenticated("k"),
            max_frame,
            Duration::from_secs(10),
        );
        let data = std::fs::read(data_file(dir.path(), 4, 1)).unwrap();
        for (reduce_id, expected) in blocks.iter().enumerate() {
            let got = client
                .fetch(
                    addr,
                    BlockRequest::Shuffle {
                        shuffle_id: 4,
                        map_id: 1,
                        reduce_id,
                    },
                )
                .unwrap();
            assert_eq!(got, BlockResponse::Data(expected.clone()));
        }
        // Exactly the byte range a local reader takes from the data file.
        let third = client
            .fetch(
                addr,
                BlockRequest::Shuffle {
                    shuffle_id: 4,
                    map_id: 1,
                    reduce_id: 2,
                },
            )
            .unwrap();
        assert_eq!(third, BlockResponse::Data(data[5..].to_vec()));
        // Missing map output, and a reduce partition past the index.
        let missing = client
            .fetch(
                addr,
                BlockRequest::Shuffle {
                    shuffle_id: 4,
                    map_id: 9,
                    reduce_id: 0,
                },
            )
            .unwrap();
        assert!(
            matches!(missing, BlockResponse::NotFound(ref m) if m.contains("shuffle_4_9_0")),
            "{missing:?}"
        );
        let past = client
            .fetch(
                addr,
                BlockRequest::Shuffle {
                    shuffle_id: 4,
                    map_id: 1,
                    reduce_id: 3,
                },
            )
            .unwrap();
        assert!(matches!(past, BlockResponse::NotFound(_)), "{past:?}");
    }
}
