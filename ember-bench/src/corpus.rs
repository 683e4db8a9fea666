//! The W3 word-count corpus: a Rust port of `shared/anchors/spark/GenCorpus.java` that writes
//! the same bytes (SHA-256 [`FULL_SHA256`] at full size), so Ember and Spark count the same file.
//!
//! The algorithm, from the Java header comment:
//! * vocabulary "w0".."w99999"; word "w{k-1}" has rank k and weight k^-1.1;
//! * `cdf[k-1]` = running sum of the weights in rank order (f64, sequential); total = `cdf[99999]`;
//! * draw t = 0, 1, 2, … over the whole file: r = splitmix64(SEED + t), u = (r >> 11)·2^-53, x =
//!   u·total, word = smallest j with `cdf[j] > x` (99999 if none);
//! * a line is 12 words joined by single spaces and ended by '\n';
//! * lines are written while the file stays <= the limit (256 MiB): the first line that would cross
//!   it is not written, so the file is a whole number of lines.
//!
//! Java computes the weights with `StrictMath.pow` (fdlibm); Rust's `powf` is the platform's
//! `pow`. Both are within an ulp of the exact value, and a one-ulp difference in a weight would
//! change a drawn word only if a draw fell within an ulp of a bucket edge; the full-size hash
//! test (`full_corpus_matches_java_sha256`) is what proves the bytes are equal.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::gen::splitmix64;

/// Words in the vocabulary.
pub const VOCAB: usize = 100_000;
/// Words on every line.
pub const WORDS_PER_LINE: u64 = 12;
/// Size limit of the full corpus: 256 MiB.
pub const FULL_LIMIT: u64 = 256 * 1024 * 1024;
/// Exact size of the full corpus (the whole lines that fit in [`FULL_LIMIT`]).
pub const FULL_BYTES: u64 = 268_435_422;
/// Words in the full corpus (5,059,008 lines × 12).
pub const FULL_WORDS: u64 = 60_708_096;
/// SHA-256 of the full corpus, as `GenCorpus.java` writes it.
pub const FULL_SHA256: &str = "829ff1abfb7c3a0b368ced1154b95117080c58575a632edbe0babbb3e1177bbc";
/// Seed of the draw stream (Java's `0x5EED0000C0FFEEL`).
const SEED: u64 = 0x005E_ED00_00C0_FFEE;

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusStats {
    /// Bytes written.
    pub bytes: u64,
    /// Lines written.
    pub lines: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
}

/// Writes the corpus of at most `limit` bytes into `out` and returns its size and hash.
pub fn generate<W: Write>(limit: u64, out: &mut W) -> io::Result<CorpusStats> {
    // Sequential running sum in rank order: the summation order is part of the definition.
    let mut cdf = Vec::with_capacity(VOCAB);
    let mut acc = 0.0f64;
    for k in 1..=VOCAB {
        acc += (k as f64).powf(-1.1);
        cdf.push(acc);
    }
    let total = acc;
    let words: Vec<Vec<u8>> = (0..VOCAB).map(|j| format!("w{j}").into_bytes()).collect();

    let mut sha = Sha256::new();
    let (mut t, mut written, mut lines) = (0u64, 0u64, 0u64);
    let mut line = Vec::with_capacity(WORDS_PER_LINE as usize * 7);
    loop {
        line.clear();
        for w in 0..WORDS_PER_LINE {
            let r = splitmix64(SEED.wrapping_add(t));
            t += 1;
            let x = (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * total;
            // Smallest j with cdf[j] > x, else VOCAB - 1 (the same bisection as the Java code).
            let j = cdf.partition_point(|&c| c <= x).min(VOCAB - 1);
            line.extend_from_slice(&words[j]);
            line.push(if w == WORDS_PER_LINE - 1 { b'\n' } else { b' ' });
        }
        if written + line.len() as u64 > limit {
            break;
        }
        out.write_all(&line)?;
        sha.update(&line);
        written += line.len() as u64;
        lines += 1;
    }
    out.flush()?;
    Ok(CorpusStats {
        bytes: written,
        lines,
        sha256: hex(&sha.finalize()),
    })
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, streamed (the corpus is not held in memory, so it does not inflate the
/// peak RSS the harness reports).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(hex(&sha.finalize()))
}

/// The size limit of the corpus at `scale` (the full 256 MiB at scale >= 1).
pub fn limit_for_scale(scale: f64) -> u64 {
    if scale >= 1.0 {
        FULL_LIMIT
    } else {
        ((FULL_LIMIT as f64 * scale).round() as u64).max(64)
    }
}

/// Where the corpus of `limit` bytes lives: `path` itself at full size, else `path` with the
/// limit inserted before the extension (`corpus-w3-268435.txt`), so scaled runs never clobber
/// the full corpus.
pub fn path_for_limit(path: &Path, limit: u64) -> PathBuf {
    if limit == FULL_LIMIT {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "corpus".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{limit}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{limit}"),
    };
    path.with_file_name(name)
}

/// Makes sure the corpus of `limit` bytes exists at `path` and returns its size in bytes.
///
/// At full size the file is (re)generated when missing or when its SHA-256 differs from
/// [`FULL_SHA256`], and a freshly generated file must itself have that hash. Smaller corpora are
/// only generated when missing. Files are written under a temporary name and renamed, so an
/// interrupted run never leaves a truncated corpus that looks complete.
pub fn ensure(path: &Path, limit: u64) -> io::Result<u64> {
    let full = limit == FULL_LIMIT;
    if path.is_file() {
        if !full {
            return Ok(std::fs::metadata(path)?.len());
        }
        if sha256_file(path)? == FULL_SHA256 {
            return Ok(FULL_BYTES);
        }
        eprintln!(
            "corpus {} has the wrong SHA-256: regenerating",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let started = std::time::Instant::now();
    let stats = {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        generate(limit, &mut out)?
    };
    if full && stats.sha256 != FULL_SHA256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(io::Error::other(format!(
            "generated corpus has SHA-256 {}, expected {FULL_SHA256}",
            stats.sha256
        )));
    }
    std::fs::rename(&tmp, path)?;
    eprintln!(
        "corpus {}: generated {} bytes, {} lines in {:.1} s, sha256={}",
        path.display(),
        stats.bytes,
        stats.lines,
        started.elapsed().as_secs_f64(),
        stats.sha256
    );
    Ok(stats.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 300 bytes `java GenCorpus.java` writes (`head -c 300` of its output).
    const JAVA_HEAD: &str = "w7 w4 w56453 w280 w56 w4 w3878 w11 w4 w47090 w3 w13\nw164 w57 w33 \
                             w643 w10561 w3304 w4604 w49 w83 w120 w1108 w45924\nw10 w184 w18 w102 \
                             w0 w0 w260 w0 w0 w1 w13 w1\nw6 w18 w34 w0 w32 w0 w42 w33409 w4 w129 \
                             w1009 w1103\nw96 w6 w43333 w150 w3 w2 w31 w237 w0 w128 w21 w1\nw12 \
                             w130 w14406 w0 w0 w577 w83576 w6245";

    #[test]
    fn first_lines_match_java() {
        let mut out = Vec::new();
        let stats = generate(4096, &mut out).unwrap();
        assert_eq!(JAVA_HEAD.len(), 300);
        assert_eq!(&out[..300], JAVA_HEAD.as_bytes());
        // Whole lines only, never over the limit.
        assert!(stats.bytes <= 4096 && out.ends_with(b"\n"));
        assert_eq!(
            stats.lines,
            out.iter().filter(|b| **b == b'\n').count() as u64
        );
    }

    #[test]
    fn full_corpus_matches_java_sha256() {
        // Hashes the whole 256 MiB stream without writing it: the hard byte-for-byte requirement.
        let stats = generate(FULL_LIMIT, &mut io::sink()).unwrap();
        assert_eq!(stats.bytes, FULL_BYTES);
        assert_eq!(stats.lines * WORDS_PER_LINE, FULL_WORDS);
        assert_eq!(stats.sha256, FULL_SHA256);
    }

    #[test]
    fn scaled_paths_are_named_by_size() {
        let p = Path::new("/tmp/ember-bench/corpus-w3.txt");
        assert_eq!(path_for_limit(p, FULL_LIMIT), p);
        assert_eq!(
            path_for_limit(p, 1000),
            Path::new("/tmp/ember-bench/corpus-w3-1000.txt")
        );
        assert_eq!(limit_for_scale(2.0), FULL_LIMIT);
    }
}
