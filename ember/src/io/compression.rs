//! Compressed files, chosen by extension as Hadoop's `CompressionCodecFactory` chooses them:
//! `.gz`, `.bz2`, `.zst`, `.lz4`, `.deflate`. Every codec here is read as one stream from the
//! file's start, so a compressed file is one split (Hadoop splits `.bz2` at block markers; Ember
//! does not, see ARCHITECTURE.md).
//!
//! `.lz4` is what Spark reads and writes under that name: Hadoop's `Lz4Codec` stream, repeated
//! blocks of `[u32 BE uncompressed length]` then `[u32 BE compressed length][raw LZ4 block]`
//! chunks until that length is produced, with no magic and no checksum. A file starting with
//! the LZ4 *frame* magic (what the `lz4` tool writes) is read as a frame instead; Spark would die
//! on it taking the magic for a 69 MB block length.

use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The magic number that starts an LZ4 frame (`0x184D2204`, little-endian).
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4D, 0x18];

/// Hadoop's default `io.compression.codec.lz4.buffersize`: the uncompressed size of a block.
const HADOOP_LZ4_BLOCK: usize = 256 << 10;

/// Largest block length a Hadoop-framed `.lz4` stream may announce before it is taken for
/// corrupt: far above what Hadoop writes (256 KiB blocks), far below what would exhaust memory.
const HADOOP_LZ4_MAX_BLOCK: usize = 64 << 20;

/// A compression codec of text, CSV and JSON-lines files (Spark's `compression` option of those
/// writers; readers pick the codec by the file's extension).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip (`.gz`); concatenated members are read as one stream, as Hadoop does.
    Gzip,
    /// bzip2 (`.bz2`).
    Bzip2,
    /// Zstandard (`.zst`).
    Zstd,
    /// LZ4 (`.lz4`) in Hadoop's `Lz4Codec` block framing, which Spark reads and writes.
    Lz4,
    /// zlib (`.deflate`), Hadoop's `DefaultCodec`.
    Deflate,
}

impl Compression {
    /// The codec of a file by its extension (Hadoop's `CompressionCodecFactory.getCodec`).
    pub fn from_path(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("bz2") => Compression::Bzip2,
            Some("zst") => Compression::Zstd,
            Some("lz4") => Compression::Lz4,
            Some("deflate") => Compression::Deflate,
            _ => Compression::None,
        }
    }

    /// The codec named as Spark's `compression` option names it (`none`, `uncompressed`,
    /// `gzip`, `bzip2`, `zstd`, `lz4`, `deflate`; case-insensitive).
    pub fn from_name(name: &str) -> Option<Compression> {
        Some(match name.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Compression::None,
            "gzip" => Compression::Gzip,
            "bzip2" => Compression::Bzip2,
            "zstd" => Compression::Zstd,
            "lz4" => Compression::Lz4,
            "deflate" => Compression::Deflate,
            _ => return None,
        })
    }

    /// The extension written files get (`.gz`, …; empty when not compressed).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Zstd => ".zst",
            Compression::Lz4 => ".lz4",
            Compression::Deflate => ".deflate",
        }
    }

    /// Whether a file can be cut into byte-range splits.
    pub fn is_splittable(self) -> bool {
        self == Compression::None
    }

    /// The decompressed contents of `raw`.
    pub(crate) fn decoder<'a>(self, raw: Box<dyn Read + Send + 'a>) -> Box<dyn Read + Send + 'a> {
        match self {
            Compression::None => raw,
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(raw)),
            Compression::Zstd => match zstd::stream::read::Decoder::new(raw) {
                Ok(d) => Box::new(d),
                Err(e) => Box::new(FailingReader(Some(e))),
            },
            Compression::Lz4 => Box::new(Lz4Reader::new(raw)),
            Compression::Deflate => Box::new(flate2::read::ZlibDecoder::new(raw)),
        }
    }

    /// A writer compressing into `w`; [`Encoder::finish`] ends the stream.
    pub(crate) fn encoder<W: Write>(self, w: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            Compression::None => Encoder::Plain(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Bzip2 => Encoder::Bzip2(bzip2::write::BzEncoder::new(
                w,
                bzip2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, 0)?),
            Compression::Lz4 => Encoder::Lz4(HadoopLz4Writer {
                inner: w,
                block: Vec::with_capacity(HADOOP_LZ4_BLOCK),
            }),
            Compression::Deflate => Encoder::Deflate(flate2::write::ZlibEncoder::new(
                w,
                flate2::Compression::default(),
            )),
        })
    }
}

/// A reader that fails with the error its decoder could not be created with.
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("decoder unavailable")))
    }
}

/// A compressing writer (see [`Compression::encoder`]).
pub(crate) enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Lz4(HadoopLz4Writer<W>),
    Deflate(flate2::write::ZlibEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// Writes the end of the compressed stream and returns the inner writer (not flushed).
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Bzip2(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Lz4(mut e) => {
                e.write_block()?;
                Ok(e.inner)
            }
            Encoder::Deflate(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Bzip2(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Lz4(e) => e.write(buf),
            Encoder::Deflate(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Bzip2(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Lz4(e) => e.inner.flush(),
            Encoder::Deflate(e) => e.flush(),
        }
    }
}

/// Writes Hadoop's `BlockCompressorStream` framing of LZ4 blocks, as Spark's `Lz4Codec` output.
pub(crate) struct HadoopLz4Writer<W> {
    inner: W,
    block: Vec<u8>,
}

impl<W: Write> HadoopLz4Writer<W> {
    fn write_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let compressed = lz4_flex::block::compress(&self.block);
        let (raw_len, len) = (block_len(self.block.len())?, block_len(compressed.len())?);
        self.inner.write_all(&raw_len.to_be_bytes())?;
        self.inner.write_all(&len.to_be_bytes())?;
        self.inner.write_all(&compressed)?;
        self.block.clear();
        Ok(())
    }
}

fn block_len(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| io::Error::other("LZ4 block longer than 4 GiB"))
}

impl<W: Write> Write for HadoopLz4Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(HADOOP_LZ4_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == HADOOP_LZ4_BLOCK {
            self.write_block()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // A block is written whole; flushing mid-block would change the framing.
        self.inner.flush()
    }
}

/// Reads `.lz4`: an LZ4 frame when the stream starts with the frame magic, else Hadoop's block
/// framing.
struct Lz4Reader<'a> {
    state: Lz4State<'a>,
}

enum Lz4State<'a> {
    /// Nothing read yet: which format it is is decided by the first four bytes.
    Start(Box<dyn Read + Send + 'a>),
    Frame(Box<lz4_flex::frame::FrameDecoder<Box<dyn Read + Send + 'a>>>),
    Hadoop {
        raw: Box<dyn Read + Send + 'a>,
        /// Decompressed bytes of the current block not yet returned: `out[pos..]`.
        out: Vec<u8>,
        pos: usize,
        /// Compressed bytes of the current chunk (reused).
        chunk: Vec<u8>,
    },
    Done,
}

impl<'a> Lz4Reader<'a> {
    fn new(raw: Box<dyn Read + Send + 'a>) -> Self {
        Lz4Reader {
            state: Lz4State::Start(raw),
        }
    }
}

/// Reads exactly 4 bytes as a big-endian `u32`; `None` at a clean end of stream.
fn read_u32_be(r: &mut dyn Read) -> io::Result<Option<u32>> {
    let mut b = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut b[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "LZ4 stream ends inside a block header",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(u32::from_be_bytes(b)))
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Decodes the next Hadoop block into `out`; false at the end of the stream.
fn next_hadoop_block(
    raw: &mut dyn Read,
    out: &mut Vec<u8>,
    chunk: &mut Vec<u8>,
) -> io::Result<bool> {
    let Some(total) = read_u32_be(raw)? else {
        return Ok(false);
    };
    let total = total as usize;
    if total > HADOOP_LZ4_MAX_BLOCK {
        return Err(corrupt(format!(
            "not an LZ4 stream of Hadoop's Lz4Codec: block of {total} bytes announced"
        )));
    }
    out.clear();
    while out.len() < total {
        let Some(len) = read_u32_be(raw)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "LZ4 stream ends inside a block",
            ));
        };
        let len = len as usize;
        if len > HADOOP_LZ4_MAX_BLOCK {
            return Err(corrupt(format!(
                "not an LZ4 stream of Hadoop's Lz4Codec: chunk of {len} bytes announced"
            )));
        }
        chunk.resize(len, 0);
        raw.read_exact(chunk)?;
        let part = lz4_flex::block::decompress(chunk, total - out.len())
            .map_err(|e| corrupt(format!("corrupt LZ4 block: {e}")))?;
        if part.is_empty() {
            return Err(corrupt("empty LZ4 chunk inside a block".into()));
        }
        out.extend_from_slice(&part);
    }
    if out.len() != total {
        return Err(corrupt(format!(
            "LZ4 block decompressed to {} bytes, {total} announced",
            out.len()
        )));
    }
    Ok(true)
}

impl Read for Lz4Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.state {
                Lz4State::Start(_) => {
                    let Lz4State::Start(mut raw) =
                        std::mem::replace(&mut self.state, Lz4State::Done)
                    else {
                        unreachable!("matched Start above")
                    };
                    let mut head = [0u8; 4];
                    let mut got = 0;
                    while got < 4 {
                        match raw.read(&mut head[got..]) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    let head_reader = io::Cursor::new(head[..got].to_vec());
                    let joined: Box<dyn Read + Send + '_> = Box::new(head_reader.chain(raw));
                    self.state = if got == 4 && head == LZ4_FRAME_MAGIC {
                        Lz4State::Frame(Box::new(lz4_flex::frame::FrameDecoder::new(joined)))
                    } else {
                        Lz4State::Hadoop {
                            raw: joined,
                            out: Vec::new(),
                            pos: 0,
                            chunk: Vec::new(),
                        }
                    };
                }
                Lz4State::Frame(d) => return d.read(buf),
                Lz4State::Hadoop {
                    raw,
                    out,
                    pos,
                    chunk,
                } => {
                    if *pos < out.len() {
                        let n = buf.len().min(out.len() - *pos);
                        buf[..n].copy_from_slice(&out[*pos..*pos + n]);
                        *pos += n;
                        return Ok(n);
                    }
                    *pos = 0;
                    if !next_hadoop_block(raw.as_mut(), out, chunk)? {
                        self.state = Lz4State::Done;
                    }
                }
                Lz4State::Done => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut e = c.encoder(Vec::new()).unwrap();
        e.write_all(data).unwrap();
        let bytes = e.finish().unwrap();
        let mut out = Vec::new();
        c.decoder(Box::new(io::Cursor::new(bytes)))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..700_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Zstd,
            Compression::Lz4,
            Compression::Deflate,
        ] {
            assert_eq!(round_trip(c, &data), data, "{c:?}");
            assert_eq!(round_trip(c, b""), b"", "{c:?} empty");
        }
    }

    #[test]
    fn hadoop_lz4_layout_is_length_prefixed_blocks() {
        let mut e = Compression::Lz4.encoder(Vec::new()).unwrap();
        e.write_all(b"hello hello hello").unwrap();
        let bytes = e.finish().unwrap();
        assert_eq!(&bytes[..4], &17u32.to_be_bytes());
        let clen = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        assert_eq!(bytes.len(), 8 + clen);
    }

    #[test]
    fn lz4_frame_is_sniffed() {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(b"framed text\n").unwrap();
        let bytes = enc.finish().unwrap();
        let mut out = String::new();
        Compression::Lz4
            .decoder(Box::new(io::Cursor::new(bytes)))
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "framed text\n");
    }

    #[test]
    fn huge_hadoop_block_length_is_an_error_not_an_allocation() {
        let bytes = [0xFFu8, 0xFF, 0xFF, 0xF0, 0, 0, 0, 1, 0];
        let err = Compression::Lz4
            .decoder(Box::new(io::Cursor::new(bytes.to_vec())))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn extensions_and_names() {
        assert_eq!(
            Compression::from_path(Path::new("a/b.txt.gz")),
            Compression::Gzip
        );
        assert_eq!(Compression::from_path(Path::new("x.lz4")), Compression::Lz4);
        assert_eq!(
            Compression::from_path(Path::new("x.csv")),
            Compression::None
        );
        assert_eq!(Compression::from_name("GZIP"), Some(Compression::Gzip));
        assert_eq!(Compression::from_name("snappy"), None);
        for c in [Compression::Gzip, Compression::Zstd, Compression::Bzip2] {
            let name = format!("part-00000{}", c.extension());
            assert_eq!(Compression::from_path(Path::new(&name)), c);
        }
    }
}
