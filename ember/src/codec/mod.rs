//! Chunked record encoding shared by shuffle files, spill files and serialized cached blocks
//! (format in [`super`]): a block is a run of chunks `[u32 LE length][payload][u32 LE checksum]`;
//! the payload is the postcard encoding of consecutive records, lz4-block-compressed with its
//! uncompressed size prepended (the layout of `lz4_flex::block::compress_prepend_size`) when
//! compression is on. The checksum (of the length and the payload, see [`checksum`]) is there
//! when `ember.shuffle.checksum.enabled` is on; the length does not count it.
//!
//! Records never straddle chunks, and chunks carry their own length and checksum, so a block can
//! be copied byte-for-byte between files and read back chunk by chunk with bounded memory, and a
//! damaged chunk is refused before any of its records is decoded.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EmberError, Result};

pub mod checksum;
mod pair;
pub use checksum::ChecksumAlgorithm;
pub use pair::encode_pair_into;

/// How the chunks of a block are written: compressed or not, with a checksum or not. The reader
/// must be given the format the writer used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkFormat {
    /// Payloads are lz4-compressed.
    pub compress: bool,
    /// Each chunk ends with this algorithm's checksum of its length and payload.
    pub checksum: Option<ChecksumAlgorithm>,
}

impl ChunkFormat {
    /// Neither compressed nor checksummed.
    pub const PLAIN: ChunkFormat = ChunkFormat {
        compress: false,
        checksum: None,
    };

    /// A format.
    pub const fn new(compress: bool, checksum: Option<ChecksumAlgorithm>) -> Self {
        ChunkFormat { compress, checksum }
    }

    /// Bytes after each payload.
    #[inline]
    fn trailer(self) -> usize {
        if self.checksum.is_some() {
            CHECKSUM
        } else {
            0
        }
    }
}

/// Bytes of a chunk's checksum.
const CHECKSUM: usize = 4;

/// Uncompressed bytes after which a chunk is closed: large enough for lz4 to find matches and for
/// the per-chunk header and syscall to be negligible, small enough that a reader's buffers stay
/// small.
pub const CHUNK_TARGET: usize = 64 << 10;

/// Bytes of the frame header (the chunk length).
const HEADER: usize = 4;

/// postcard output straight into a borrowed `Vec`, so encoding a record never allocates once
/// the buffer has grown (postcard's own `to_extend` consumes the Vec, `to_io` adds io::Result
/// plumbing per byte).
struct VecSink<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for VecSink<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Measured against pushing short (varint) slices byte by byte or through a fixed-size
        // array: plain `extend_from_slice` was fastest.
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends the postcard encoding of `value` to `buf`; on error `buf` is left as it was.
#[inline]
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    let start = buf.len();
    match postcard::serialize_with_flavor::<T, _, ()>(value, VecSink(buf)) {
        Ok(()) => Ok(()),
        Err(e) => {
            buf.truncate(start);
            Err(EmberError::ser(e))
        }
    }
}

fn frame_len(n: usize) -> io::Result<[u8; 4]> {
    u32::try_from(n).map(u32::to_le_bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shuffle chunk of {n} bytes exceeds 4 GiB"),
        )
    })
}

/// The records of one open (not yet framed) chunk.
///
/// Kept separate from the compression scratch buffer so that a writer with many partitions holds
/// one scratch buffer, not one per partition.
#[derive(Debug)]
pub struct ChunkBuf {
    /// `HEADER` reserved bytes, then the encoded records: the uncompressed frame is written in
    /// one `write_all` with its header filled in place.
    buf: Vec<u8>,
}

impl Default for ChunkBuf {
    fn default() -> Self {
        ChunkBuf::new()
    }
}

impl ChunkBuf {
    /// An empty chunk.
    pub fn new() -> Self {
        ChunkBuf {
            buf: vec![0; HEADER],
        }
    }

    /// Appends one record.
    #[inline]
    pub fn push<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<()> {
        encode_into(record, &mut self.buf)
    }

    /// Appends the record `(key, value)`: the same bytes as `push(&(key, value))`, written
    /// directly when both are primitive numbers ([`encode_pair_into`]).
    #[inline]
    pub fn push_pair<K: Serialize + 'static, V: Serialize + 'static>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<()> {
        encode_pair_into(key, value, &mut self.buf)
    }

    /// Encoded bytes buffered.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len() - HEADER
    }

    /// Whether no record is buffered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER
    }

    /// Whether the chunk has reached [`CHUNK_TARGET`] and should be framed.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() >= CHUNK_TARGET
    }

    /// Writes the buffered records as one frame (nothing if empty) and empties the chunk.
    /// Returns the bytes written. `scratch` is reused across calls for the compressed payload.
    pub fn finish_into<W: Write + ?Sized>(
        &mut self,
        format: ChunkFormat,
        scratch: &mut Vec<u8>,
        out: &mut W,
    ) -> io::Result<u64> {
        let n = self.len();
        if n == 0 {
            return Ok(0);
        }
        let trailer = format.trailer();
        let written = if format.compress {
            let size = frame_len(n)?;
            let max = 2 * HEADER + lz4_flex::block::get_maximum_output_size(n);
            if scratch.len() < max + trailer {
                scratch.resize(max + trailer, 0);
            }
            let c =
                lz4_flex::block::compress_into(&self.buf[HEADER..], &mut scratch[2 * HEADER..max])
                    .map_err(io::Error::other)?;
            scratch[..HEADER].copy_from_slice(&frame_len(HEADER + c)?);
            scratch[HEADER..2 * HEADER].copy_from_slice(&size);
            let end = 2 * HEADER + c;
            if let Some(a) = format.checksum {
                let sum = a.checksum(&[&scratch[..end]]);
                scratch[end..end + CHECKSUM].copy_from_slice(&sum.to_le_bytes());
            }
            out.write_all(&scratch[..end + trailer])?;
            end + trailer
        } else {
            let len = frame_len(n)?;
            self.buf[..HEADER].copy_from_slice(&len);
            if let Some(a) = format.checksum {
                let sum = a.checksum(&[&self.buf]);
                self.buf.extend_from_slice(&sum.to_le_bytes());
            }
            out.write_all(&self.buf)?;
            HEADER + n + trailer
        };
        self.buf.truncate(HEADER);
        Ok(written as u64)
    }
}

/// Encodes records into chunks and writes each full chunk to an `io::Write`.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk: ChunkBuf,
    scratch: Vec<u8>,
    format: ChunkFormat,
    records: u64,
    bytes_written: u64,
}

impl ChunkWriter {
    /// A writer of chunks in `format`.
    pub fn new(format: ChunkFormat) -> Self {
        ChunkWriter {
            chunk: ChunkBuf::new(),
            scratch: Vec::new(),
            format,
            records: 0,
            bytes_written: 0,
        }
    }

    /// Appends a record without writing anything; see [`ChunkWriter::should_flush`].
    #[inline]
    pub fn push<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<()> {
        self.chunk.push(record)?;
        self.records += 1;
        Ok(())
    }

    /// Whether the open chunk has reached its target size.
    #[inline]
    pub fn should_flush(&self) -> bool {
        self.chunk.is_full()
    }

    /// Writes the open chunk (if any) to `out`; returns the bytes written.
    pub fn flush_chunk<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<u64> {
        let n = self
            .chunk
            .finish_into(self.format, &mut self.scratch, out)?;
        self.bytes_written += n;
        Ok(n)
    }

    /// Uncompressed bytes of the open chunk.
    pub fn buffered_bytes(&self) -> usize {
        self.chunk.len()
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes written by [`ChunkWriter::flush_chunk`] so far (headers included).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }
}

/// Bytes a reader allocates ahead of what it has read: a chunk's length is read from a file or
/// the network before its bytes, and a damaged one must not make it allocate gigabytes.
const MAX_READ_AHEAD: usize = 1 << 20;

/// Fills `buf[..n]` from `src`: in one read when `n` is at most [`MAX_READ_AHEAD`] (every chunk
/// Ember writes, unless one record is larger), else growing `buf` as bytes arrive, so a length
/// that overstates what `src` holds costs at most twice what was really read.
fn read_growing<R: Read>(src: &mut R, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let mut filled = 0;
    while filled < n {
        let step = (n - filled).min(filled.max(MAX_READ_AHEAD));
        if buf.len() < filled + step {
            buf.resize(filled + step, 0);
        }
        src.read_exact(&mut buf[filled..filled + step])?;
        filled += step;
    }
    Ok(())
}

/// Whether lz4 can produce `size` bytes from `compressed` bytes: it cannot expand more than
/// about 255 times, so a larger claim is corruption, and trusting it would allocate whatever a
/// damaged size prefix says.
pub fn lz4_size_is_possible(size: usize, compressed: usize) -> bool {
    size <= compressed.saturating_mul(255).saturating_add(64)
}

/// Decompresses bytes in the layout of `lz4_flex::block::compress_prepend_size` (the
/// uncompressed size, u32 LE, then the lz4 block), refusing a size lz4 cannot produce from them
/// before anything is allocated.
pub fn decompress_size_prepended(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let Some((size, block)) = bytes.split_first_chunk::<HEADER>() else {
        return Err(corrupt(format!(
            "{} bytes of lz4 data are shorter than their size prefix",
            bytes.len()
        )));
    };
    let size = u32::from_le_bytes(*size) as usize;
    if !lz4_size_is_possible(size, block.len()) {
        return Err(corrupt(format!(
            "lz4 data claims {size} uncompressed bytes from {}",
            block.len()
        )));
    }
    let mut out = vec![0; size];
    let got = lz4_flex::block::decompress_into(block, &mut out)
        .map_err(|e| corrupt(format!("lz4 data does not decompress: {e}")))?;
    if got != size {
        return Err(corrupt(format!(
            "lz4 data decompressed to {got} bytes, its prefix says {size}"
        )));
    }
    Ok(out)
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Checks a chunk's stored checksum against its length and payload.
#[inline]
fn verify(
    algorithm: ChecksumAlgorithm,
    len: usize,
    payload: &[u8],
    stored: &[u8],
) -> io::Result<()> {
    let mut s = [0u8; CHECKSUM];
    s.copy_from_slice(stored);
    let stored = u32::from_le_bytes(s);
    let computed = algorithm.checksum(&[&(len as u32).to_le_bytes(), payload]);
    if stored == computed {
        Ok(())
    } else {
        Err(corrupt(format!(
            "chunk of {len} bytes fails its {} checksum (stored {stored:#010x}, computed \
             {computed:#010x}): the data is corrupt",
            algorithm.name()
        )))
    }
}

/// Copies the `len` bytes of chunks that `src` is positioned at to `out`, checking every chunk's
/// checksum when `format` has one (then also its framing), so that damaged bytes are an error
/// here rather than copied on. `buf` is reused across calls.
pub fn copy_chunks<R: Read + ?Sized, W: Write + ?Sized>(
    src: &mut R,
    len: u64,
    format: ChunkFormat,
    out: &mut W,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let Some(algorithm) = format.checksum else {
        if buf.is_empty() {
            buf.resize(1 << 20, 0);
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            src.read_exact(&mut buf[..n])?;
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        return Ok(());
    };
    let mut left = len;
    while left > 0 {
        if left < HEADER as u64 {
            return Err(corrupt(format!("{left} stray bytes at the end of a block")));
        }
        let mut h = [0u8; HEADER];
        src.read_exact(&mut h)?;
        let n = u32::from_le_bytes(h) as usize;
        let framed = (HEADER + n + CHECKSUM) as u64;
        if framed > left {
            return Err(corrupt(format!(
                "chunk of {n} bytes overruns its block ({} bytes left)",
                left - HEADER as u64
            )));
        }
        if buf.len() < n + CHECKSUM {
            buf.resize(n + CHECKSUM, 0);
        }
        src.read_exact(&mut buf[..n + CHECKSUM])?;
        verify(algorithm, n, &buf[..n], &buf[n..n + CHECKSUM])?;
        out.write_all(&h)?;
        out.write_all(&buf[..n + CHECKSUM])?;
        left -= framed;
    }
    Ok(())
}

/// Iterates over the records of a byte range of chunks, one chunk in memory at a time.
///
/// Yields `io::Result<T>`: callers decide whether a bad block is a fetch failure (shuffle
/// reads) or a task error (spill files). Data from files is never trusted: lengths are checked
/// against the range, and decompressed sizes against what lz4 can produce.
pub struct RecordReader<T, R> {
    src: R,
    /// Bytes of the range not yet read from `src`.
    remaining: u64,
    format: ChunkFormat,
    /// The length of the next chunk, read together with the previous payload to save a read call.
    next_len: Option<usize>,
    raw: Vec<u8>,
    /// Decoded records of the current chunk are `data[pos..end]`.
    data: Vec<u8>,
    pos: usize,
    end: usize,
    records: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> RecordReader<T, File> {
    /// Reads the `len` bytes at `offset` of the file at `path`.
    pub fn open(path: &Path, offset: u64, len: u64, format: ChunkFormat) -> io::Result<Self> {
        let mut f = File::open(path)?;
        crate::metrics::count_file_op(false);
        if offset != 0 {
            f.seek(SeekFrom::Start(offset))?;
        }
        Ok(RecordReader::new(f, len, format))
    }
}

impl<T: DeserializeOwned, R: Read> RecordReader<T, R> {
    /// Reads `len` bytes of chunks from `src` (positioned at the first chunk).
    pub fn new(src: R, len: u64, format: ChunkFormat) -> Self {
        RecordReader {
            src,
            remaining: len,
            format,
            next_len: None,
            raw: Vec::new(),
            data: Vec::new(),
            pos: 0,
            end: 0,
            records: 0,
            _t: PhantomData,
        }
    }

    /// Records returned so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn records_read(&self) -> u64 {
        self.records
    }
}

impl<T: DeserializeOwned + 'static, R: Read> RecordReader<T, R> {
    /// The next record, `None` at the end of the range.
    #[inline]
    pub fn next_record(&mut self) -> io::Result<Option<T>> {
        loop {
            if self.pos < self.end {
                let slice = &self.data[self.pos..self.end];
                match pair::decode_pair::<T>(slice) {
                    pair::Decoded::Record(v, used) => {
                        self.pos += used;
                        self.records += 1;
                        return Ok(Some(v));
                    }
                    pair::Decoded::Invalid => {
                        return Err(corrupt(format!(
                            "undecodable record at byte {} of a chunk: not a pair of {}",
                            self.pos,
                            std::any::type_name::<T>()
                        )))
                    }
                    pair::Decoded::Unsupported => {}
                }
                return match postcard::take_from_bytes::<T>(slice) {
                    Ok((v, rest)) => {
                        self.pos = self.end - rest.len();
                        self.records += 1;
                        Ok(Some(v))
                    }
                    Err(e) => Err(corrupt(format!(
                        "undecodable record at byte {} of a chunk: {e}",
                        self.pos
                    ))),
                };
            }
            if !self.load_chunk()? {
                return Ok(None);
            }
        }
    }

    /// Reads and decompresses the next chunk; false at the end of the range.
    fn load_chunk(&mut self) -> io::Result<bool> {
        let len = match self.next_len.take() {
            Some(l) => l,
            None => {
                if self.remaining == 0 {
                    return Ok(false);
                }
                if self.remaining < HEADER as u64 {
                    return Err(corrupt(format!(
                        "{} stray bytes at the end of a block",
                        self.remaining
                    )));
                }
                let mut h = [0u8; HEADER];
                self.src.read_exact(&mut h)?;
                self.remaining -= HEADER as u64;
                u32::from_le_bytes(h) as usize
            }
        };
        let framed = len + self.format.trailer();
        if framed as u64 > self.remaining {
            return Err(corrupt(format!(
                "chunk of {len} bytes overruns its block ({} bytes left)",
                self.remaining
            )));
        }
        // Read the following chunk's header in the same call when there is one.
        let extra = if self.remaining - framed as u64 >= HEADER as u64 {
            HEADER
        } else {
            0
        };
        let total = framed + extra;
        read_growing(&mut self.src, &mut self.raw, total)?;
        self.remaining -= total as u64;
        if extra != 0 {
            let mut h = [0u8; HEADER];
            h.copy_from_slice(&self.raw[framed..total]);
            self.next_len = Some(u32::from_le_bytes(h) as usize);
        }
        if let Some(a) = self.format.checksum {
            // Before anything of the chunk is decoded: damaged bytes never become records.
            verify(a, len, &self.raw[..len], &self.raw[len..framed])?;
        }
        if self.format.compress {
            if len < HEADER {
                return Err(corrupt(format!(
                    "compressed chunk of {len} bytes is shorter than its size prefix"
                )));
            }
            let mut s = [0u8; HEADER];
            s.copy_from_slice(&self.raw[..HEADER]);
            let size = u32::from_le_bytes(s) as usize;
            if !lz4_size_is_possible(size, len - HEADER) {
                return Err(corrupt(format!(
                    "chunk claims {size} uncompressed bytes from {} compressed",
                    len - HEADER
                )));
            }
            if self.data.len() < size {
                self.data.resize(size, 0);
            }
            let got =
                lz4_flex::block::decompress_into(&self.raw[HEADER..len], &mut self.data[..size])
                    .map_err(|e| corrupt(format!("lz4 chunk does not decompress: {e}")))?;
            if got != size {
                return Err(corrupt(format!(
                    "lz4 chunk decompressed to {got} bytes, header says {size}"
                )));
            }
            self.pos = 0;
            self.end = size;
        } else {
            // The payload is the records: decode in place by swapping buffers, no copy.
            std::mem::swap(&mut self.raw, &mut self.data);
            self.pos = 0;
            self.end = len;
        }
        Ok(true)
    }
}

impl<T: DeserializeOwned + 'static, R: Read> Iterator for RecordReader<T, R> {
    type Item = io::Result<T>;

    #[inline]
    fn next(&mut self) -> Option<io::Result<T>> {
        self.next_record().transpose()
    }
}

/// A file in a local directory that is deleted when dropped: spill files, and the temporary
/// outputs of a map task until they are committed with [`SpillFile::persist`].
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    file: File,
    keep: bool,
}

static SPILL_COUNTER: AtomicU64 = AtomicU64::new(0);

impl SpillFile {
    /// Creates a new empty file `dir/{prefix}-{pid}-{n}.tmp` with a name unique in this process
    /// (and, through the pid, among executors sharing the directory).
    pub fn create(dir: &Path, prefix: &str) -> io::Result<Self> {
        loop {
            let n = SPILL_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{prefix}-{}-{n}.tmp", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    crate::metrics::count_file_op(true);
                    return Ok(SpillFile {
                        path,
                        file,
                        keep: false,
                    });
                }
                // A leftover of an earlier process with the same pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file (read + write).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Renames the file to `to` (atomic within a file system) and keeps it.
    pub fn persist(mut self, to: &Path) -> io::Result<()> {
        fs::rename(&self.path, to)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Converts an I/O error on `path` into the crate error.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> EmberError + '_ {
    move |e| EmberError::io(path, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    const ADLER: Option<ChecksumAlgorithm> = Some(ChecksumAlgorithm::Adler32);
    const CRC: Option<ChecksumAlgorithm> = Some(ChecksumAlgorithm::Crc32);

    /// Every format: compressed or not, without a checksum or with either algorithm.
    fn formats() -> Vec<ChunkFormat> {
        let mut v = Vec::new();
        for compress in [false, true] {
            for checksum in [None, ADLER, CRC] {
                v.push(ChunkFormat::new(compress, checksum));
            }
        }
        v
    }

    fn any_format() -> impl Strategy<Value = ChunkFormat> {
        (any::<bool>(), 0..3usize)
            .prop_map(|(compress, c)| ChunkFormat::new(compress, [None, ADLER, CRC][c]))
    }

    fn checksummed_format() -> impl Strategy<Value = ChunkFormat> {
        (any::<bool>(), any::<bool>())
            .prop_map(|(compress, crc)| ChunkFormat::new(compress, if crc { CRC } else { ADLER }))
    }

    fn encode_block<T: Serialize>(records: &[T], format: ChunkFormat) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = ChunkWriter::new(format);
        for r in records {
            w.push(r).unwrap();
            if w.should_flush() {
                w.flush_chunk(&mut out).unwrap();
            }
        }
        w.flush_chunk(&mut out).unwrap();
        assert_eq!(w.records(), records.len() as u64);
        assert_eq!(w.bytes_written(), out.len() as u64);
        out
    }

    fn decode_block<T: DeserializeOwned + 'static>(
        bytes: &[u8],
        format: ChunkFormat,
    ) -> io::Result<Vec<T>> {
        RecordReader::<T, _>::new(Cursor::new(bytes), bytes.len() as u64, format).collect()
    }

    /// Whether a damaged block is refused both by the reader and by a checked copy.
    fn refused(bytes: &[u8], format: ChunkFormat) -> bool {
        let read = decode_block::<(u64, String)>(bytes, format).is_err();
        let copied = copy_chunks(
            &mut Cursor::new(bytes),
            bytes.len() as u64,
            format,
            &mut io::sink(),
            &mut Vec::new(),
        )
        .is_err();
        read && copied
    }

    #[test]
    fn empty_block_has_no_bytes() {
        for f in formats() {
            let out = encode_block::<u64>(&[], f);
            assert!(out.is_empty());
            assert!(decode_block::<u64>(&out, f).unwrap().is_empty());
        }
    }

    #[test]
    fn compressed_payload_is_lz4_prepend_size() {
        let recs: Vec<(u64, String)> = (0..100).map(|i| (i, "x".repeat(i as usize))).collect();
        let mut plain = Vec::new();
        for r in &recs {
            plain.extend(postcard::to_stdvec(r).unwrap());
        }
        for (checksum, trailer) in [(None, 0), (ADLER, 4), (CRC, 4)] {
            let out = encode_block(&recs, ChunkFormat::new(true, checksum));
            let len = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 4 + trailer, out.len());
            let raw = lz4_flex::block::decompress_size_prepended(&out[4..4 + len]).unwrap();
            assert_eq!(raw, plain);
            if let Some(a) = checksum {
                let stored = u32::from_le_bytes(out[4 + len..].try_into().unwrap());
                assert_eq!(stored, a.checksum(&[&out[..4 + len]]));
            }
        }
    }

    #[test]
    fn chunks_split_at_target() {
        let recs: Vec<u64> = (0..100_000).collect();
        for f in formats().into_iter().filter(|f| !f.compress) {
            let out = encode_block(&recs, f);
            let first = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
            assert!((CHUNK_TARGET..CHUNK_TARGET + 16).contains(&first));
            assert_eq!(decode_block::<u64>(&out, f).unwrap(), recs);
        }
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let recs: Vec<(u64, u64)> = (0..5000).map(|i| (i, i * 7)).collect();
        for f in formats() {
            let good = encode_block(&recs, f);
            // Truncated.
            assert!(decode_block::<(u64, u64)>(&good[..good.len() - 3], f).is_err());
            // Length pointing past the end.
            let mut bad = good.clone();
            bad[..4].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(decode_block::<(u64, u64)>(&bad, f).is_err());
            // Flipped bytes must not panic (without a checksum the result may be error or
            // garbage records; with one, an error).
            let mut bad = good.clone();
            for i in (8..bad.len()).step_by(97) {
                bad[i] ^= 0x5a;
            }
            let r = decode_block::<(u64, u64)>(&bad, f);
            assert!(f.checksum.is_none() || r.is_err());
        }
        // A size claim lz4 cannot produce.
        let mut bad = encode_block(&recs, ChunkFormat::new(true, None));
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_block::<(u64, u64)>(&bad, ChunkFormat::new(true, None)).is_err());
    }

    #[test]
    fn every_single_byte_change_of_a_small_block_is_refused() {
        let recs: Vec<(u64, String)> = (0..40).map(|i| (i, format!("record {i}"))).collect();
        for f in formats().into_iter().filter(|f| f.checksum.is_some()) {
            let good = encode_block(&recs, f);
            assert_eq!(decode_block::<(u64, String)>(&good, f).unwrap(), recs);
            for i in 0..good.len() {
                for x in [0x01u8, 0x80, 0xff, 0x5a] {
                    let mut bad = good.clone();
                    bad[i] ^= x;
                    assert!(
                        refused(&bad, f),
                        "{f:?}: byte {i} ^ {x:#x} was not detected"
                    );
                }
            }
        }
    }

    #[test]
    fn checked_copies_are_exact() {
        let recs: Vec<(u64, String)> = (0..30_000).map(|i| (i, format!("v{i}"))).collect();
        for f in formats() {
            let good = encode_block(&recs, f);
            let mut out = Vec::new();
            copy_chunks(
                &mut Cursor::new(&good),
                good.len() as u64,
                f,
                &mut out,
                &mut Vec::new(),
            )
            .unwrap();
            assert_eq!(out, good);
        }
    }

    #[test]
    fn lengths_past_the_bytes_present_are_not_allocated() {
        // Fuzz regression (chunk_codec): a block whose length (a map status, an index)
        // and first chunk header both claim 4 GiB made the reader allocate 4 GiB before reading.
        let mut bytes = (u32::MAX - 8).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        for compress in [false, true] {
            let format = ChunkFormat::new(compress, None);
            let mut r = RecordReader::<u64, _>::new(Cursor::new(&bytes), 1 << 40, format);
            assert!(r.next_record().is_err());
            assert!(r.raw.capacity() <= 2 * MAX_READ_AHEAD, "{}", r.raw.capacity());
        }
        // A chunk larger than the read-ahead still reads back.
        let big = vec![7u8; 3 * MAX_READ_AHEAD];
        let out = encode_block(std::slice::from_ref(&big), ChunkFormat::PLAIN);
        assert_eq!(
            decode_block::<Vec<u8>>(&out, ChunkFormat::PLAIN).unwrap(),
            [big]
        );
        // A size prefix lz4 cannot produce is refused before it is allocated.
        let mut lz = u32::MAX.to_le_bytes().to_vec();
        lz.extend_from_slice(&[0x10, b'a']);
        assert!(decompress_size_prepended(&lz).is_err());
        let ok = lz4_flex::block::compress_prepend_size(b"abcabcabcabc");
        assert_eq!(decompress_size_prepended(&ok).unwrap(), b"abcabcabcabc");
        assert!(decompress_size_prepended(&ok[..3]).is_err());
    }

    #[test]
    fn spill_file_is_removed_on_drop_and_kept_on_persist() {
        let dir = tempfile::tempdir().unwrap();
        let f = SpillFile::create(dir.path(), "spill").unwrap();
        let p = f.path().to_path_buf();
        assert!(p.exists());
        drop(f);
        assert!(!p.exists());
        let f = SpillFile::create(dir.path(), "out").unwrap();
        let dest = dir.path().join("final");
        f.persist(&dest).unwrap();
        assert!(dest.exists());
    }

    #[test]
    fn reader_honours_offset_and_length() {
        let dir = tempfile::tempdir().unwrap();
        for f in formats() {
            let a = encode_block(&(0..1000u32).collect::<Vec<_>>(), f);
            let b = encode_block(&(5000..9000u32).collect::<Vec<_>>(), f);
            let path = dir.path().join("f");
            fs::write(&path, [&b"junk"[..], &a, &b, b"tail"].concat()).unwrap();
            let r: Vec<u32> = RecordReader::open(&path, 4 + a.len() as u64, b.len() as u64, f)
                .unwrap()
                .collect::<io::Result<_>>()
                .unwrap();
            assert_eq!(r, (5000..9000).collect::<Vec<_>>());
        }
    }

    proptest! {
        #[test]
        fn round_trip(
            recs in prop::collection::vec(
                (any::<u64>(), ".{0,40}", prop::collection::vec(any::<u8>(), 0..50)),
                0..300,
            ),
            format in any_format()
        ) {
            let out = encode_block(&recs, format);
            prop_assert_eq!(
                decode_block::<(u64, String, Vec<u8>)>(&out, format).unwrap(),
                recs
            );
        }

        #[test]
        fn round_trip_records_larger_than_a_chunk(
            sizes in prop::collection::vec(0usize..3 * CHUNK_TARGET, 1..6),
            format in any_format()
        ) {
            let recs: Vec<Vec<u8>> =
                sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
            let out = encode_block(&recs, format);
            prop_assert_eq!(decode_block::<Vec<u8>>(&out, format).unwrap(), recs);
        }

        #[test]
        fn blocks_concatenate(
            a in prop::collection::vec(any::<i64>(), 0..3000),
            b in prop::collection::vec(any::<i64>(), 0..3000),
            format in any_format()
        ) {
            // Spilled runs are concatenated by byte copy: the result must read as a + b.
            let bytes = [encode_block(&a, format), encode_block(&b, format)].concat();
            let mut all = a.clone();
            all.extend(&b);
            prop_assert_eq!(decode_block::<i64>(&bytes, format).unwrap(), all);
        }

        #[test]
        fn any_single_byte_change_in_a_block_is_refused(
            recs in prop::collection::vec((any::<u64>(), ".{0,200}"), 1..3000),
            format in checksummed_format(),
            at in any::<prop::sample::Index>(),
            x in 1u8..=255,
        ) {
            // Blocks of one chunk to several: the change lands in a length, a payload or a
            // checksum, of any chunk.
            let good = encode_block(&recs, format);
            let mut bad = good.clone();
            let i = at.index(bad.len());
            bad[i] ^= x;
            prop_assert!(
                refused(&bad, format),
                "byte {} of {} ^ {:#x} not detected",
                i,
                bad.len(),
                x
            );
        }
    }
}
