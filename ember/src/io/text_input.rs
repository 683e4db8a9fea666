//! Hadoop's `TextInputFormat` as `textFile(path, minPartitions)` uses it: which files a path
//! names, how they are cut into splits, and how one split is read as lines.
//!
//! The rules are Hadoop's so that an Ember job sees exactly the partitions and records a Spark
//! job would see on the same input: same split count, same lines in the same partitions.

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EmberError, Result};
use crate::io::compression::Compression;

/// Block size Hadoop reports for files on the local file system (`fs.local.block.size`).
///
/// Splits never exceed one block, so a large file gets at least `len / 32 MiB` splits whatever
/// `min_partitions` asks for.
pub const LOCAL_FS_BLOCK_SIZE: u64 = 32 * 1024 * 1024;

/// Hadoop's `FileInputFormat.SPLIT_SLOP`: the last split may be up to 10% larger than the split
/// size rather than leaving a tiny tail split.
const SPLIT_SLOP: f64 = 1.1;

/// Largest read buffer of a [`LineReader`]; large enough that a read costs little per byte,
/// small enough that 2 × cores readers fit easily in cache-friendly memory.
const MAX_BUFFER: usize = 1 << 20;
/// Smallest read buffer, so tiny splits do not allocate a full megabyte each; also the read
/// size past the split's end, where only the one line crossing the end is still needed.
const MIN_BUFFER: usize = 64 << 10;

/// UTF-8 byte-order mark, which Hadoop's `LineRecordReader` drops from the file's first line.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Hadoop's hidden-file filter: `_SUCCESS`, `_temporary`, `.crc` files and the like are
/// bookkeeping of earlier jobs, not input.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .map(|n| {
            let n = n.as_encoded_bytes();
            n.first().is_some_and(|&c| c == b'_' || c == b'.')
        })
        .unwrap_or(false)
}

fn has_glob_meta(path: &str) -> bool {
    path.bytes().any(|c| matches!(c, b'*' | b'?' | b'['))
}

/// Users coming from Spark write `file:///data/x`; the local file system is the only one here.
fn strip_file_scheme(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("file://") {
        rest
    } else if let Some(rest) = path.strip_prefix("file:") {
        rest
    } else {
        path
    }
}

/// Appends the visible regular files of `dir` (not recursing, as Hadoop does by default).
fn list_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| EmberError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EmberError::io(dir, e))?;
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        // `metadata` follows symlinks, so a link to a file counts as a file.
        let md = fs::metadata(&path).map_err(|e| EmberError::io(&path, e))?;
        if md.is_dir() {
            tracing::debug!(path = %path.display(), "skipping subdirectory of input directory");
            continue;
        }
        out.push(path);
    }
    Ok(())
}

/// The files an input path names, sorted: the file itself; a directory's visible files (not
/// recursive; names starting with `_` or `.` are skipped, like Hadoop's hidden-file filter);
/// or the visible matches of a glob pattern (a matched directory contributes its files).
///
/// A path that does not exist, or a pattern that matches nothing, is
/// [`EmberError::InputNotFound`]. An existing but empty directory gives an empty list, as in
/// Hadoop (the RDD then has no partitions).
pub fn list_input_files(path: &str) -> Result<Vec<PathBuf>> {
    let local = strip_file_scheme(path);
    let p = Path::new(local);
    let mut out = Vec::new();
    match fs::metadata(p) {
        Ok(md) if md.is_dir() => list_dir(p, &mut out)?,
        Ok(_) => out.push(p.to_path_buf()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if !has_glob_meta(local) {
                return Err(EmberError::InputNotFound(path.to_string()));
            }
            let matches = glob::glob(local).map_err(|e| EmberError::InvalidGlob {
                pattern: path.to_string(),
                position: e.pos,
                reason: e.msg,
            })?;
            for m in matches {
                let m = m.map_err(|e| {
                    let at = e.path().to_path_buf();
                    EmberError::io(at, e.into())
                })?;
                if is_hidden(&m) {
                    continue;
                }
                let md = fs::metadata(&m).map_err(|e| EmberError::io(&m, e))?;
                if md.is_dir() {
                    list_dir(&m, &mut out)?;
                } else {
                    out.push(m);
                }
            }
            if out.is_empty() {
                return Err(EmberError::InputNotFound(path.to_string()));
            }
        }
        Err(e) => return Err(EmberError::io(p, e)),
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One split of one input file: the bytes `[start, start + length)`. Its reader yields the
/// lines that *start* in `[start, start + length]` (see [`LineReader`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// Offset of the split's first byte.
    pub start: u64,
    /// Number of bytes in the split.
    pub length: u64,
}

impl FileSplit {
    /// Offset one past the split's last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.length)
    }
}

/// Cuts `files` into splits with Hadoop's `FileInputFormat.getSplits` rules (old `mapred` API,
/// which Spark's `textFile` uses): goal size = total / `min_partitions`, split size =
/// max(1, min(goal, 32 MiB block)), a tail up to 1.1 × split size stays one split, and an
/// empty file gives one empty split.
///
/// A 268,435,422-byte file with `min_partitions` 8 gives exactly 8 splits.
pub fn compute_splits(files: &[PathBuf], min_partitions: usize) -> Result<Vec<FileSplit>> {
    let mut sized = Vec::with_capacity(files.len());
    for f in files {
        let md = fs::metadata(f).map_err(|e| EmberError::io(f, e))?;
        if md.is_dir() {
            // Hadoop's wording ("Not a file: …"), as a user of Spark would have seen it.
            return Err(EmberError::io(f, std::io::Error::other("Not a file")));
        }
        sized.push((f.clone(), md.len()));
    }
    Ok(plan_splits(&sized, min_partitions, LOCAL_FS_BLOCK_SIZE))
}

/// The split arithmetic of [`compute_splits`] on known file lengths, for callers (and tests)
/// that already know the sizes or use another block size.
pub fn plan_splits(
    files: &[(PathBuf, u64)],
    min_partitions: usize,
    block_size: u64,
) -> Vec<FileSplit> {
    plan_splits_by(files, min_partitions, block_size, |p| {
        Compression::from_path(p).is_splittable()
    })
}

/// [`plan_splits`] with the caller saying which files can be cut (a compressed file, a CSV file
/// read with `multi_line`, cannot: it is one split of its whole length).
pub fn plan_splits_by(
    files: &[(PathBuf, u64)],
    min_partitions: usize,
    block_size: u64,
    splittable: impl Fn(&Path) -> bool,
) -> Vec<FileSplit> {
    let total: u64 = files.iter().map(|(_, len)| *len).sum();
    let goal = total / (min_partitions.max(1) as u64);
    let split_size = goal.min(block_size).max(1);
    let mut splits = Vec::new();
    for (path, len) in files {
        let len = *len;
        if len == 0 || !splittable(path) {
            splits.push(FileSplit {
                path: path.clone(),
                start: 0,
                length: len,
            });
            continue;
        }
        let mut remaining = len;
        while remaining as f64 / split_size as f64 > SPLIT_SLOP {
            splits.push(FileSplit {
                path: path.clone(),
                start: len - remaining,
                length: split_size,
            });
            remaining -= split_size;
        }
        if remaining != 0 {
            splits.push(FileSplit {
                path: path.clone(),
                start: len - remaining,
                length: remaining,
            });
        }
    }
    splits
}

/// How a text source turns a line's bytes into text (`text_file`, and the lines of CSV and JSON
/// lines files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Utf8Decoding {
    /// As Hadoop's `Text.toString` (what Spark's `textFile` does): each invalid sequence
    /// becomes U+FFFD and the job goes on.
    #[default]
    Lossy,
    /// A line that is not UTF-8 fails the task with [`EmberError::InvalidUtf8`] naming the file
    /// and the offset of the first bad byte.
    Strict,
}

/// Reads the lines of one [`FileSplit`] with Hadoop `LineRecordReader`'s rules.
///
/// - A split that does not start at offset 0 skips everything up to and including the first line
///   terminator at or after its start: that partial (or whole) line belongs to the previous split.
/// - A split reads every line that starts at or before its end, even one that crosses the end, so
///   each line is read by exactly one split.
/// - Lines end with `\n`, `\r\n` or a lone `\r` (Hadoop's default terminators); the terminator is
///   not part of the line. A final line without terminator is a line; a file ending with a
///   terminator has no trailing empty line. A UTF-8 BOM at offset 0 is dropped.
/// - A compressed file (by extension, see [`Compression`]) is one split read to its end;
///   offsets are then offsets in the decompressed stream.
///
/// [`LineReader::try_next_line`] returns errors; [`Iterator::next`] and
/// [`LineReader::next_line`] fail the task through [`EmberError::raise`]. An I/O or decoding
/// error is [`EmberError::Io`] (with the offset reached), a line that is not UTF-8 in
/// [`Utf8Decoding::Strict`] is [`EmberError::InvalidUtf8`] with the absolute offset of its first
/// bad byte.
pub struct LineReader {
    path: PathBuf,
    input: Box<dyn Read + Send>,
    decoding: Utf8Decoding,
    /// `buf[pos..filled]` is read but not yet consumed; `buf[0]` is at file offset `buf_offset`.
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    buf_offset: u64,
    end: u64,
    /// The split's first (partial) line has yet to be skipped.
    skip_first: bool,
    eof: bool,
    done: bool,
    bytes_read: u64,
    /// Where the line last returned starts.
    line_offset: u64,
    /// A lossily decoded line, when the line was not UTF-8.
    lossy: String,
}

impl LineReader {
    /// Opens the split's file with [`Utf8Decoding::Strict`], returning the error instead of
    /// unwinding.
    #[cfg(any(test, feature = "testing"))]
    pub fn try_open(split: FileSplit) -> Result<Self> {
        Self::try_open_with(split, Utf8Decoding::Strict)
    }

    /// Opens the split's file, returning the error instead of unwinding. A file that does not
    /// exist is an [`EmberError::Io`] whose source's kind is `NotFound`.
    pub fn try_open_with(split: FileSplit, decoding: Utf8Decoding) -> Result<Self> {
        let codec = Compression::from_path(&split.path);
        let store = crate::io::store::store_for(&split.path.to_string_lossy())?;
        let (input, end, start): (Box<dyn Read + Send>, u64, u64) = if codec.is_splittable() {
            let file = store.open_at(&split.path, split.start)?;
            (file, split.end(), split.start)
        } else {
            // The whole file, from its start, whatever the split says: its bytes are not lines.
            let file = store.open_at(&split.path, 0)?;
            (codec.decoder(file), u64::MAX, 0)
        };
        // Room for the split plus a typical line past its end, capped.
        let want = usize::try_from(split.length)
            .unwrap_or(usize::MAX)
            .saturating_add(4096);
        let cap = want.clamp(MIN_BUFFER, MAX_BUFFER);
        Ok(LineReader {
            end,
            buf_offset: start,
            skip_first: start != 0,
            path: split.path,
            input,
            decoding,
            buf: vec![0; cap],
            pos: 0,
            filled: 0,
            eof: false,
            done: false,
            bytes_read: 0,
            line_offset: start,
            lossy: String::new(),
        })
    }

    /// Bytes read from the file so far (Spark's input metric `bytesRead`): the split, plus the
    /// line crossing its end and read-ahead within one buffer (decompressed bytes for a
    /// compressed file).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of the first byte of the line last returned (in the decompressed stream for a
    /// compressed file): what error messages about that line name.
    pub fn line_offset(&self) -> u64 {
        self.line_offset
    }

    /// Reads more bytes, first moving the unconsumed tail to the front (growing the buffer when
    /// a single line fills it). Returns false at end of file. Indices below `pos` become invalid.
    fn fill_more(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.buf_offset += self.pos as u64;
            self.pos = 0;
        }
        if self.filled == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        // Read whole buffers within the split, but only small chunks past its end: the rest
        // belongs to the next split, and reading it would inflate `bytes_read` and the I/O.
        let file_pos = self.buf_offset + self.filled as u64;
        let to_end = usize::try_from(self.end.saturating_sub(file_pos)).unwrap_or(usize::MAX);
        let limit = self.buf.len().min(self.filled + to_end.max(MIN_BUFFER));
        loop {
            match self.input.read(&mut self.buf[self.filled..limit]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.filled += n;
                    self.bytes_read += n as u64;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    let at = file_pos;
                    return Err(EmberError::io(
                        &self.path,
                        std::io::Error::new(e.kind(), format!("{e} (at byte offset {at})")),
                    ));
                }
            }
        }
    }

    /// Finds the line starting at `pos`: returns `(content_end, next_pos)` as buffer indices, or
    /// `None` if no byte is left. At end of file an unterminated tail is a line.
    fn next_line_bounds(&mut self) -> Result<Option<(usize, usize)>> {
        // Bytes after `pos` already searched, kept relative because `fill_more` moves data.
        let mut scanned = 0usize;
        loop {
            let from = self.pos + scanned;
            if let Some(i) = memchr::memchr2(b'\n', b'\r', &self.buf[from..self.filled]) {
                let at = from + i;
                if self.buf[at] == b'\n' {
                    return Ok(Some((at, at + 1)));
                }
                // A `\r`: the terminator is `\r\n` if a `\n` follows, else the lone `\r`.
                if at + 1 < self.filled {
                    let next = if self.buf[at + 1] == b'\n' {
                        at + 2
                    } else {
                        at + 1
                    };
                    return Ok(Some((at, next)));
                }
                let rel = at - self.pos;
                if !self.fill_more()? {
                    let at = self.pos + rel;
                    return Ok(Some((at, at + 1)));
                }
                let at = self.pos + rel;
                let next = if self.buf[at + 1] == b'\n' {
                    at + 2
                } else {
                    at + 1
                };
                return Ok(Some((at, next)));
            }
            scanned = self.filled - self.pos;
            if !self.fill_more()? {
                if self.pos == self.filled {
                    return Ok(None);
                }
                return Ok(Some((self.filled, self.filled)));
            }
        }
    }

    /// The next line, borrowed from the reader's buffer (valid until the next call), or the
    /// error that stopped the reading (the reader is then done).
    pub fn try_next_line(&mut self) -> Result<Option<&str>> {
        Ok(self.try_next_line_at()?.map(|(_, line)| line))
    }

    /// [`try_next_line`](Self::try_next_line) with the offset where the line starts.
    pub fn try_next_line_at(&mut self) -> Result<Option<(u64, &str)>> {
        if self.done {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some((start, content_end))) => {
                let at = self.line_offset;
                self.decode(start, content_end).map(|line| Some((at, line)))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Moves past the next line; returns its content's bounds in the buffer.
    fn advance(&mut self) -> Result<Option<(usize, usize)>> {
        if self.skip_first {
            self.skip_first = false;
            match self.next_line_bounds()? {
                Some((_, next)) => self.pos = next,
                None => return Ok(None),
            }
        }
        let line_start = self.buf_offset + self.pos as u64;
        if line_start > self.end {
            return Ok(None);
        }
        let Some((content_end, next)) = self.next_line_bounds()? else {
            return Ok(None);
        };
        // `next_line_bounds` may have moved the data; recompute where the line starts.
        let mut start = self.pos;
        let line_start = self.buf_offset + start as u64;
        self.line_offset = line_start;
        if line_start == 0 && self.buf[start..content_end].starts_with(UTF8_BOM) {
            start += UTF8_BOM.len();
        }
        self.pos = next;
        Ok(Some((start, content_end)))
    }

    fn decode(&mut self, start: usize, content_end: usize) -> Result<&str> {
        let bytes = &self.buf[start..content_end];
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => match self.decoding {
                Utf8Decoding::Lossy => {
                    self.lossy = String::from_utf8_lossy(bytes).into_owned();
                    Ok(&self.lossy)
                }
                Utf8Decoding::Strict => {
                    self.done = true;
                    Err(EmberError::InvalidUtf8 {
                        path: self.path.display().to_string(),
                        offset: self.buf_offset + (start + e.valid_up_to()) as u64,
                    })
                }
            },
        }
    }

    /// The next line, borrowed from the reader's buffer (valid until the next call): what
    /// [`Iterator::next`] returns, without allocating it. Fails the task on an error.
    pub fn next_line(&mut self) -> Option<&str> {
        match self.try_next_line() {
            Ok(line) => line,
            Err(e) => e.raise(),
        }
    }
}

impl Iterator for LineReader {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.next_line().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs::File;
    use std::io::Write;

    /// Reference line splitting with Hadoop's terminators (`\n`, `\r\n`, lone `\r`), and the
    /// BOM dropped from the first line.
    fn reference_lines(text: &[u8]) -> Vec<String> {
        let mut out = reference_raw_lines(text);
        if let Some(first) = out.first_mut() {
            if let Some(rest) = first.strip_prefix('\u{FEFF}') {
                *first = rest.to_string();
            }
        }
        out
    }

    fn reference_raw_lines(text: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut start = 0;
        while i < text.len() {
            match text[i] {
                b'\n' => {
                    out.push(String::from_utf8(text[start..i].to_vec()).unwrap());
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    out.push(String::from_utf8(text[start..i].to_vec()).unwrap());
                    i += if text.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start < text.len() {
            out.push(String::from_utf8(text[start..].to_vec()).unwrap());
        }
        out
    }

    fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        let mut f = File::create(&p).unwrap();
        f.write_all(data).unwrap();
        p
    }

    /// Reads all splits that cut `[0, len)` at `cuts` and concatenates their lines.
    fn read_with_cuts(path: &Path, len: u64, cuts: &[u64]) -> Vec<String> {
        let mut bounds: Vec<u64> = cuts.iter().copied().filter(|&c| c > 0 && c < len).collect();
        bounds.push(0);
        bounds.push(len);
        bounds.sort();
        bounds.dedup();
        let mut out = Vec::new();
        for w in bounds.windows(2) {
            let split = FileSplit {
                path: path.to_path_buf(),
                start: w[0],
                length: w[1] - w[0],
            };
            out.extend(LineReader::try_open(split).unwrap());
        }
        out
    }

    fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
        // Mostly short lines, sometimes very long ones so lines span buffer refills.
        let content = prop_oneof![
            8 => "[a-zé€😀 ]{0,20}".prop_map(String::into_bytes),
            1 => (1usize..200_000).prop_map(|n| "x".repeat(n).into_bytes()),
        ];
        let term = prop_oneof![
            6 => Just(&b"\n"[..]),
            2 => Just(&b"\r\n"[..]),
            1 => Just(&b"\r"[..]),
        ];
        (content, term).prop_map(|(mut c, t)| {
            c.extend_from_slice(t);
            c
        })
    }

    fn text_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(line_strategy(), 0..40),
            "[a-z]{0,5}",
            any::<bool>(),
        )
            .prop_map(|(lines, tail, bom)| {
                let mut t = Vec::new();
                if bom {
                    t.extend_from_slice(UTF8_BOM);
                }
                for l in lines {
                    t.extend_from_slice(&l);
                }
                t.extend_from_slice(tail.as_bytes());
                t
            })
    }

    proptest! {
        // No regression files: they would land in the source tree.
        #![proptest_config(ProptestConfig {
            cases: 200,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn splits_partition_lines_exactly(
            text in text_strategy(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = write_file(dir.path(), "t.txt", &text);
            let len = text.len() as u64;
            let cuts: Vec<u64> = cuts.iter().map(|i| i.index(text.len() + 1) as u64).collect();
            prop_assert_eq!(read_with_cuts(&p, len, &cuts), reference_lines(&text));
        }

        #[test]
        fn computed_splits_partition_lines_exactly(text in text_strategy(), parts in 1usize..20) {
            let dir = tempfile::tempdir().unwrap();
            let p = write_file(dir.path(), "t.txt", &text);
            let splits = plan_splits(&[(p.clone(), text.len() as u64)], parts, 1 << 12);
            let got: Vec<String> =
                splits.into_iter().flat_map(|s| LineReader::try_open(s).unwrap()).collect();
            prop_assert_eq!(got, reference_lines(&text));
        }
    }

    #[test]
    fn every_cut_point_of_a_small_text() {
        let text = b"ab\r\n\ncd\re\n\r\nlast";
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "t.txt", text);
        let want = reference_lines(text);
        assert_eq!(want, ["ab", "", "cd", "e", "", "last"]);
        for a in 0..=text.len() as u64 {
            for b in a..=text.len() as u64 {
                assert_eq!(
                    read_with_cuts(&p, text.len() as u64, &[a, b]),
                    want,
                    "cuts {a} {b}"
                );
            }
        }
    }

    #[test]
    fn line_starting_exactly_at_split_end_belongs_to_that_split() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "t.txt", b"aaa\nbbb\nccc\n");
        let first = FileSplit {
            path: p.clone(),
            start: 0,
            length: 4,
        };
        let second = FileSplit {
            path: p.clone(),
            start: 4,
            length: 8,
        };
        assert_eq!(
            LineReader::try_open(first).unwrap().collect::<Vec<_>>(),
            ["aaa", "bbb"]
        );
        assert_eq!(
            LineReader::try_open(second).unwrap().collect::<Vec<_>>(),
            ["ccc"]
        );
    }

    #[test]
    fn long_line_across_many_refills() {
        let dir = tempfile::tempdir().unwrap();
        let long = "y".repeat(3 * MAX_BUFFER + 17);
        let text = format!("a\n{long}\r\nb");
        let p = write_file(dir.path(), "t.txt", text.as_bytes());
        let mut r = LineReader::try_open(FileSplit {
            path: p,
            start: 0,
            length: 10,
        })
        .unwrap();
        assert_eq!(r.next().as_deref(), Some("a"));
        assert_eq!(r.next().as_deref(), Some(long.as_str()));
        assert_eq!(r.next(), None, "line `b` starts past the split end");
        assert_eq!(r.bytes_read(), text.len() as u64);
    }

    #[test]
    fn invalid_utf8_reports_absolute_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = b"good\nalso good\nbad: ".to_vec();
        let bad_at = text.len() as u64;
        text.extend_from_slice(b"\xFF\xFEtail\nmore\n");
        let p = write_file(dir.path(), "t.txt", &text);
        let split = FileSplit {
            path: p.clone(),
            start: 3,
            length: text.len() as u64 - 3,
        };
        let mut r = LineReader::try_open(split).unwrap();
        assert_eq!(r.next().as_deref(), Some("also good"));
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.next()))
            .expect_err("invalid UTF-8 must fail the task");
        let err = payload.downcast::<EmberError>().unwrap();
        assert_eq!(
            *err,
            EmberError::InvalidUtf8 {
                path: p.display().to_string(),
                offset: bad_at
            }
        );
    }

    #[test]
    fn invalid_utf8_in_skipped_partial_line_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "t.txt", b"\xFF\xFF\nok\n");
        let split = FileSplit {
            path: p,
            start: 1,
            length: 5,
        };
        assert_eq!(
            LineReader::try_open(split).unwrap().collect::<Vec<_>>(),
            ["ok"]
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let split = FileSplit {
            path: PathBuf::from("/nonexistent/ember/x"),
            start: 0,
            length: 1,
        };
        let err = LineReader::try_open(split).err().unwrap();
        assert!(matches!(err, EmberError::Io { .. }));
        assert!(crate::io::store::is_missing_file(&err));
    }

    #[test]
    fn w3_size_gives_eight_splits() {
        let len = 268_435_422u64;
        let splits = plan_splits(&[(PathBuf::from("w3.txt"), len)], 8, LOCAL_FS_BLOCK_SIZE);
        assert_eq!(splits.len(), 8);
        assert_eq!(splits.iter().map(|s| s.length).sum::<u64>(), len);
        assert_eq!(splits[0].length, len / 8);
        assert_eq!(splits[7].start + splits[7].length, len);

        // The same through the file system, on a sparse file that costs no disk.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w3.txt");
        File::create(&p).unwrap().set_len(len).unwrap();
        assert_eq!(compute_splits(&[p], 8).unwrap().len(), 8);
    }

    #[test]
    fn split_rules_follow_hadoop() {
        let a = PathBuf::from("a");
        // Block size caps the split size whatever min_partitions says.
        let s = plan_splits(&[(a.clone(), 100 * 1024 * 1024)], 1, LOCAL_FS_BLOCK_SIZE);
        assert_eq!(s.len(), 4);
        assert_eq!(s[3].length, 4 * 1024 * 1024);
        // A tail up to 10% over the split size stays in the last split.
        let s = plan_splits(&[(a.clone(), 21)], 1, 10);
        assert_eq!(s.iter().map(|x| x.length).collect::<Vec<_>>(), [10, 11]);
        let s = plan_splits(&[(a.clone(), 22)], 1, 10);
        assert_eq!(s.iter().map(|x| x.length).collect::<Vec<_>>(), [10, 10, 2]);
        assert_eq!(plan_splits(&[(a.clone(), 100)], 9, 1 << 20).len(), 9);
        // Split size is at least one byte; min_partitions 0 counts as 1.
        assert_eq!(plan_splits(&[(a.clone(), 3)], 10, 1 << 20).len(), 3);
        assert_eq!(plan_splits(&[(a.clone(), 3)], 0, 1 << 20).len(), 1);
        // Goal size is over all files together.
        let b = PathBuf::from("b");
        let s = plan_splits(&[(a.clone(), 30), (b.clone(), 10)], 4, 1 << 20);
        assert_eq!(s.iter().filter(|x| x.path == a).count(), 3);
        assert_eq!(s.iter().filter(|x| x.path == b).count(), 1);
    }

    #[test]
    fn empty_file_gives_one_empty_split_and_no_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "empty.txt", b"");
        let splits = compute_splits(std::slice::from_ref(&p), 2).unwrap();
        assert_eq!(
            splits,
            vec![FileSplit {
                path: p,
                start: 0,
                length: 0
            }]
        );
        assert_eq!(LineReader::try_open(splits[0].clone()).unwrap().count(), 0);
    }

    #[test]
    fn directory_listing_skips_hidden_and_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.txt", "a.txt", "_SUCCESS", ".a.txt.crc"] {
            write_file(dir.path(), n, b"x\n");
        }
        fs::create_dir(dir.path().join("sub")).unwrap();
        let got = list_input_files(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(
            got,
            vec![dir.path().join("a.txt"), dir.path().join("b.txt")]
        );

        let with_scheme = format!("file://{}", dir.path().display());
        assert_eq!(list_input_files(&with_scheme).unwrap(), got);

        let single = dir.path().join("b.txt");
        assert_eq!(
            list_input_files(single.to_str().unwrap()).unwrap(),
            vec![single]
        );

        let empty = dir.path().join("sub");
        assert_eq!(
            list_input_files(empty.to_str().unwrap()).unwrap(),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn glob_listing() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["p1.txt", "p2.txt", "q.txt", "_p3.txt"] {
            write_file(dir.path(), n, b"x\n");
        }
        fs::create_dir(dir.path().join("pdir")).unwrap();
        write_file(&dir.path().join("pdir"), "inner", b"y\n");
        let pattern = format!("{}/p*", dir.path().display());
        let got = list_input_files(&pattern).unwrap();
        assert_eq!(
            got,
            vec![
                dir.path().join("p1.txt"),
                dir.path().join("p2.txt"),
                dir.path().join("pdir/inner")
            ]
        );
        let none = format!("{}/zz*", dir.path().display());
        assert_eq!(
            list_input_files(&none),
            Err(EmberError::InputNotFound(none.clone()))
        );
        let missing = format!("{}/missing.txt", dir.path().display());
        assert_eq!(
            list_input_files(&missing),
            Err(EmberError::InputNotFound(missing.clone()))
        );
    }

    #[test]
    fn split_serde_round_trip_shape() {
        fn assert_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        assert_serde::<FileSplit>();
    }
}
