//! Plain single-threaded computations of the answers the workloads must produce. They run
//! outside the timed region; the sanity checks compare Ember's results with them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::gen::{splitmix64, Edge, PairGen};

/// The expected answer of W3.
pub struct WordCount {
    /// Lines in the file.
    pub lines: u64,
    /// Words in the file.
    pub words: u64,
    /// Distinct words.
    pub distinct: u64,
    /// The 10 most frequent words, by count descending then word ascending.
    pub top: Vec<(String, u64)>,
}

/// Counts the words of a file line by line (streamed, so the corpus is never held in memory).
pub fn word_count(path: &Path) -> io::Result<WordCount> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut counts: HashMap<String, u64> = HashMap::new();
    let (mut lines, mut words) = (0u64, 0u64);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        lines += 1;
        for w in line.split_whitespace() {
            words += 1;
            match counts.get_mut(w) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(w.to_string(), 1);
                }
            }
        }
    }
    let distinct = counts.len() as u64;
    let mut all: Vec<(String, u64)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(10);
    Ok(WordCount {
        lines,
        words,
        distinct,
        top: all,
    })
}

/// Number of distinct keys `splitmix64(i) % modulus` for `i < n` (W4).
pub fn distinct_mod_keys(n: u64, modulus: u64) -> u64 {
    let mut seen = vec![false; modulus as usize];
    for i in 0..n {
        seen[(splitmix64(i) % modulus) as usize] = true;
    }
    seen.iter().filter(|s| **s).count() as u64
}

/// Σ splitmix64(i) for `i < n`, wrapping (W5's key checksum).
pub fn key_checksum(n: u64) -> u64 {
    (0..n).fold(0u64, |acc, i| acc.wrapping_add(splitmix64(i)))
}

/// Σ i for `i < n`, wrapping: the value checksum of every generated data set.
pub fn index_sum(n: u64) -> u64 {
    // The product is exact in u128; truncating gives the wrapping u64 sum.
    (n as u128 * (n as u128).saturating_sub(1) / 2) as u64
}

/// PageRank of W7's graph computed sequentially with the same algorithm as the RDD job
/// (Spark's `JavaPageRank` without `distinct()`): ranks start at 1.0 for every node with an
/// out-link; each iteration, a node that has a rank sends rank/out-degree along each of its
/// edges, and every node that received something gets 0.15 + 0.85·received (the others drop out).
/// Returns each node's rank, or `None` for nodes without one at the end.
pub fn pagerank(nodes: u64, edges: u64, iterations: usize) -> Vec<Option<f64>> {
    let n = nodes as usize;
    let mut deg = vec![0u32; n];
    let mut src = Vec::with_capacity(edges as usize);
    let mut dst = Vec::with_capacity(edges as usize);
    for i in 0..edges {
        let (s, d) = Edge::at(nodes, i);
        deg[s as usize] += 1;
        src.push(s as u32);
        dst.push(d as u32);
    }
    let mut rank: Vec<Option<f64>> = deg.iter().map(|d| (*d > 0).then_some(1.0)).collect();
    for _ in 0..iterations {
        let mut sum: Vec<Option<f64>> = vec![None; n];
        for (s, d) in src.iter().zip(&dst) {
            if let Some(r) = rank[*s as usize] {
                let slot = &mut sum[*d as usize];
                *slot = Some(slot.unwrap_or(0.0) + r / deg[*s as usize] as f64);
            }
        }
        rank = sum
            .into_iter()
            .map(|s| s.map(|s| 0.15 + 0.85 * s))
            .collect();
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sum_is_gauss() {
        for n in [0u64, 1, 2, 3, 10, 20_000_000] {
            assert_eq!(index_sum(n), (0..n).sum::<u64>());
        }
    }

    #[test]
    fn pagerank_drops_nodes_without_in_edges() {
        // W7's generator on a tiny graph: a node that receives nothing has no rank (as in the
        // RDD job, where it is absent from the reduced contributions); the others are >= 0.15.
        let ranks = pagerank(10, 40, 3);
        let mut has_in = [false; 10];
        for i in 0..40 {
            has_in[Edge::at(10, i).1 as usize] = true;
        }
        for (v, r) in ranks.iter().enumerate() {
            if !has_in[v] {
                assert!(r.is_none());
            }
            if let Some(r) = r {
                assert!(*r >= 0.15);
            }
        }
    }
}
