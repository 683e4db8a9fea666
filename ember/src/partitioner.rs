//! Partitioners: which reduce partition a shuffle key goes to (Spark's `Partitioner`,
//! `HashPartitioner`, `RangePartitioner`), plus the sampling helpers a range partitioner is built
//! from (Spark's `SamplingUtils.reservoirSampleAndCount` and `RangePartitioner.determineBounds`).

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};

/// Maps keys to reduce partitions.
///
/// Implementations are small plain values shipped with the shuffle dependency; `partition` is
/// called once per record on the map side, so it is generic (monomorphized, inlined) rather than
/// a trait object.
pub trait Partitioner<K>:
    Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static
{
    /// Number of reduce partitions.
    fn num_partitions(&self) -> usize;
    /// The partition of `key`, in `0..num_partitions()`.
    fn partition(&self, key: &K) -> usize;
}

/// FxHash of a value with the fixed default seed.
///
/// Unlike std's `RandomState`, this is the same in every process and every run, which is what
/// lets a map task in one executor and a reduce task in another agree on where a key lives.
#[inline]
pub fn fx_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Murmur3's 64-bit finalizer: every output bit depends on every input bit.
///
/// FxHash is a single multiply, so its low bits are what hashbrown uses for bucket selection. If
/// the partition were `fx_hash % n`, every key of a reduce partition would share those low bits and
/// the reduce side's `FxHashMap` would cluster into 1/n of its buckets. Mixing first decorrelates
/// the partition choice from the bits hash tables look at.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z ^= z >> 33;
    z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    z = z.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// Maps a uniformly distributed `h` onto `0..n` (Lemire's multiply-shift): a non-negative,
/// in-range result like Spark's `nonNegativeMod`, without a 64-bit division per record.
#[inline]
pub fn fast_range(h: u64, n: usize) -> usize {
    ((h as u128 * n as u128) >> 64) as usize
}

/// Partitions by the hash of the key (Spark's `HashPartitioner`), deterministic across processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HashPartitioner {
    /// Number of reduce partitions (a shuffle into 0 is refused when its job runs).
    pub partitions: usize,
}

impl HashPartitioner {
    /// A partitioner over `partitions` partitions. With 0, which could place no key, a shuffle
    /// over it is refused when its job runs ([`crate::EmberError::InvalidArgument`], "Number of
    /// partitions (0) must be positive."), rather than panicking here.
    pub fn new(partitions: usize) -> Self {
        HashPartitioner { partitions }
    }
}

impl<K: Hash> Partitioner<K> for HashPartitioner {
    #[inline]
    fn num_partitions(&self) -> usize {
        self.partitions
    }

    #[inline]
    fn partition(&self, key: &K) -> usize {
        fast_range(mix64(fx_hash(key)), self.partitions)
    }
}

/// The direction of a sort (`sort_by_key`, `sort_by`, [`RangePartitioner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortOrder {
    /// Smallest key first.
    Ascending,
    /// Largest key first.
    Descending,
}

impl SortOrder {
    /// Whether this is [`SortOrder::Ascending`].
    #[inline]
    pub fn is_ascending(self) -> bool {
        self == SortOrder::Ascending
    }
}

/// Partitions sortable keys into roughly equal ranges (Spark's `RangePartitioner`): partition `i`
/// holds the keys in `(bounds[i-1], bounds[i]]` (reversed when descending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangePartitioner<K> {
    /// Upper bounds (inclusive) of every partition but the last, strictly increasing.
    pub bounds: Vec<K>,
    /// [`SortOrder::Ascending`] when partition 0 holds the smallest keys.
    pub order: SortOrder,
}

impl<K: Ord> RangePartitioner<K> {
    /// A range partitioner with the given sorted bounds (`bounds.len() + 1` partitions).
    pub fn new(bounds: Vec<K>, order: SortOrder) -> Self {
        debug_assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "range bounds must be strictly increasing"
        );
        RangePartitioner { bounds, order }
    }
}

/// Above this many bounds a binary search beats a linear scan (Spark's threshold).
const LINEAR_SCAN_MAX_BOUNDS: usize = 128;

impl<K: Ord + Clone + Send + Sync + Serialize + serde::de::DeserializeOwned + 'static>
    Partitioner<K> for RangePartitioner<K>
{
    #[inline]
    fn num_partitions(&self) -> usize {
        self.bounds.len() + 1
    }

    #[inline]
    fn partition(&self, key: &K) -> usize {
        let b = &self.bounds;
        // Both branches find the first bound >= key, as Spark's scan and its
        // `binarySearch` + insertion-point fix-up do.
        let p = if b.len() <= LINEAR_SCAN_MAX_BOUNDS {
            let mut p = 0;
            while p < b.len() && key > &b[p] {
                p += 1;
            }
            p
        } else {
            b.partition_point(|x| x < key)
        };
        if self.order.is_ascending() {
            p
        } else {
            b.len() - p
        }
    }
}

/// Picks at most `partitions - 1` strictly increasing bounds from weighted samples so that each
/// range holds about the same total weight (Spark's `RangePartitioner.determineBounds`).
///
/// `candidates` are sampled keys; a key's weight is the number of items its sample stands for
/// (items in its input partition / samples taken there), so partitions sampled more thinly count
/// for more.
pub fn determine_bounds<K: Ord + Clone>(
    mut candidates: Vec<(K, f64)>,
    partitions: usize,
) -> Vec<K> {
    // Stable sort, as Scala's `sortBy`, so equal keys are visited in a reproducible order.
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let sum_weights: f64 = candidates.iter().map(|c| c.1).sum();
    let step = sum_weights / partitions as f64;
    let mut cum_weight = 0.0;
    let mut target = step;
    let mut bounds: Vec<K> = Vec::with_capacity(partitions.saturating_sub(1));
    for (key, weight) in candidates {
        if bounds.len() + 1 >= partitions {
            break;
        }
        cum_weight += weight;
        // Skip keys equal to the previous bound: bounds must be strictly increasing.
        if cum_weight >= target && bounds.last().is_none_or(|prev| key > *prev) {
            bounds.push(key);
            target += step;
        }
    }
    bounds
}

/// Spark's sample sizing for a range partitioner over `partitions` output partitions built from
/// `input_partitions` input partitions: `(total sample size, sample size per input partition)`.
///
/// The per-partition size is 3x the fair share so that skewed input partitions are still sampled
/// well enough; see [`weighted_candidates`].
pub fn range_sample_sizes(partitions: usize, input_partitions: usize) -> (f64, usize) {
    let sample_size = (20.0 * partitions as f64).min(1e6);
    let per_partition = (3.0 * sample_size / input_partitions.max(1) as f64).ceil() as usize;
    (sample_size, per_partition)
}

/// Turns per-partition reservoir sketches `(partition index, items in it, sample)` into weighted
/// candidates for [`determine_bounds`] (the middle of Spark's `RangePartitioner` constructor).
///
/// Returns the candidates, the sampling fraction, and the indices of partitions that hold too
/// many items for their sketch to represent them (`fraction * items > per_partition`): the caller
/// re-samples those with Bernoulli sampling at `fraction` and adds each kept key with weight
/// `1 / fraction`, as Spark does.
pub fn weighted_candidates<K>(
    sketches: Vec<(usize, u64, Vec<K>)>,
    sample_size: f64,
    per_partition: usize,
) -> (Vec<(K, f64)>, f64, Vec<usize>) {
    let total: u64 = sketches.iter().map(|s| s.1).sum();
    let fraction = (sample_size / total.max(1) as f64).min(1.0);
    let mut candidates = Vec::new();
    let mut imbalanced = Vec::new();
    for (idx, n, sample) in sketches {
        if fraction * n as f64 > per_partition as f64 {
            imbalanced.push(idx);
        } else if !sample.is_empty() {
            let weight = n as f64 / sample.len() as f64;
            candidates.extend(sample.into_iter().map(|k| (k, weight)));
        }
    }
    (candidates, fraction, imbalanced)
}

/// A small seeded generator (xorshift64*, seeded through splitmix64) so sampling is reproducible
/// from the seed alone, independent of any RNG crate's version.
struct SeededRng(u64);

impl SeededRng {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed: never zero for xorshift, and nearby seeds diverge at once.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        SeededRng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Reservoir-samples up to `k` items of `iter` and counts all of them (Spark's
/// `SamplingUtils.reservoirSampleAndCount`): returns the sample (every item if there are at most
/// `k`) and the number of items. Deterministic for a given seed and input.
pub fn reservoir_sample<T, I: Iterator<Item = T>>(
    mut iter: I,
    k: usize,
    seed: u64,
) -> (Vec<T>, u64) {
    let mut reservoir = Vec::with_capacity(k.min(1 << 16));
    while reservoir.len() < k {
        match iter.next() {
            Some(item) => reservoir.push(item),
            None => {
                let n = reservoir.len() as u64;
                return (reservoir, n);
            }
        }
    }
    let mut seen = k as u64;
    let mut rng = SeededRng::new(seed);
    for item in iter {
        seen += 1;
        // The item just read is the `seen`-th: keep it with probability k / seen.
        let replace = (rng.next_f64() * seen as f64) as u64;
        if replace < k as u64 {
            reservoir[replace as usize] = item;
        }
    }
    (reservoir, seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_partition_is_pinned() {
        // Part of the contract between processes and between builds: if these change, map and
        // reduce sides built differently (or a new rustc-hash) could disagree on key placement.
        let p = HashPartitioner::new(8);
        assert_eq!(
            (0u64..8).map(|k| p.partition(&k)).collect::<Vec<_>>(),
            [0, 2, 3, 5, 0, 1, 4, 1]
        );
        assert_eq!(fx_hash(&1u64), 0xa8b9_8aa7_17c4_d5eb);
        assert_eq!(
            Partitioner::<String>::partition(&HashPartitioner::new(100), &"hello".to_string()),
            50
        );
    }

    #[test]
    fn zero_partitions_do_not_panic() {
        // Refused when a shuffle over it runs (rdd::argument_tests), never a panic here.
        let p = HashPartitioner::new(0);
        assert_eq!(Partitioner::<u64>::num_partitions(&p), 0);
        assert_eq!(Partitioner::<u64>::partition(&p, &7), 0);
    }

    #[test]
    fn range_partition_matches_spark_examples() {
        let r = RangePartitioner::new(vec![10, 20, 30], SortOrder::Ascending);
        assert_eq!(Partitioner::<i32>::num_partitions(&r), 4);
        assert_eq!(
            [5, 10, 11, 20, 25, 30, 31].map(|k| r.partition(&k)),
            [0, 0, 1, 1, 2, 2, 3]
        );
        let d = RangePartitioner::new(vec![10, 20, 30], SortOrder::Descending);
        assert_eq!([5, 10, 11, 31].map(|k| d.partition(&k)), [3, 3, 2, 0]);
        let empty: RangePartitioner<i32> = RangePartitioner::new(vec![], SortOrder::Ascending);
        assert_eq!(empty.partition(&42), 0);
    }

    #[test]
    fn determine_bounds_weighted() {
        // Spark's own test (keys x10): weights shift the bounds.
        let c = vec![
            (7, 2.0),
            (1, 1.0),
            (4, 1.0),
            (3, 1.0),
            (2, 1.0),
            (5, 1.0),
            (10, 3.0),
        ];
        assert_eq!(determine_bounds(c, 3), vec![4, 7]);
        // Duplicate keys never produce duplicate bounds.
        let c = vec![(1, 1.0), (1, 1.0), (1, 1.0), (1, 1.0), (2, 1.0)];
        assert_eq!(determine_bounds(c, 4), vec![1, 2]);
        assert!(determine_bounds(Vec::<(u8, f64)>::new(), 4).is_empty());
    }

    #[test]
    fn reservoir_small_input_returns_everything() {
        let (s, n) = reservoir_sample(0..5, 10, 1);
        assert_eq!((s, n), (vec![0, 1, 2, 3, 4], 5));
        let (s, n) = reservoir_sample(0..5, 0, 1);
        assert!(s.is_empty());
        assert_eq!(n, 5);
    }

    #[test]
    fn weighted_candidates_flags_imbalanced() {
        let (sample_size, per) = range_sample_sizes(2, 2); // 40 total, 60 per partition
        assert_eq!(per, 60);
        let sketches = vec![
            (0, 10, (0..10).collect::<Vec<u32>>()),
            (1, 1_000_000, (0..60).collect()),
        ];
        let (cands, fraction, imb) = weighted_candidates(sketches, sample_size, per);
        assert_eq!(imb, Vec::<usize>::new()); // 40/1000010 * 1e6 < 60
        assert!(fraction < 1.0);
        assert_eq!(cands.len(), 70);
        let sketches = vec![(0, 10, vec![1u32]), (1, 100, vec![2u32])];
        let (_, _, imb) = weighted_candidates(sketches, 1000.0, 50);
        assert_eq!(imb, vec![1]);
    }

    proptest! {
        #[test]
        fn hash_partition_in_range_and_deterministic(
            keys in prop::collection::vec(any::<u64>(), 1..200),
            n in 1usize..2000
        ) {
            let p = HashPartitioner::new(n);
            let q = p; // a copy, as after shipping
            for k in &keys {
                let a = p.partition(k);
                prop_assert!(a < n);
                prop_assert_eq!(a, q.partition(k));
            }
        }

        #[test]
        fn hash_partition_strings(
            keys in prop::collection::vec(".{0,12}", 1..100),
            n in 1usize..64
        ) {
            let p = HashPartitioner::new(n);
            for k in &keys {
                let a = Partitioner::<String>::partition(&p, k);
                prop_assert!(a < n);
                prop_assert_eq!(
                    a,
                    Partitioner::<String>::partition(&HashPartitioner::new(n), &k.clone())
                );
            }
        }

        #[test]
        fn range_partition_monotonic(
            mut bounds in prop::collection::vec(any::<i32>(), 0..400),
            mut keys in prop::collection::vec(any::<i32>(), 1..100),
            ascending in any::<bool>()
        ) {
            bounds.sort();
            bounds.dedup();
            keys.sort();
            let order = if ascending { SortOrder::Ascending } else { SortOrder::Descending };
            let r = RangePartitioner::new(bounds.clone(), order);
            let parts: Vec<usize> = keys.iter().map(|k| r.partition(k)).collect();
            for (k, &p) in keys.iter().zip(&parts) {
                prop_assert!(p < r.num_partitions());
                // Reference: number of bounds strictly below the key.
                let below = bounds.iter().filter(|b| *b < k).count();
                prop_assert_eq!(p, if ascending { below } else { bounds.len() - below });
            }
            for w in parts.windows(2) {
                if ascending { prop_assert!(w[0] <= w[1]) } else { prop_assert!(w[0] >= w[1]) }
            }
        }

        #[test]
        fn bounds_count_and_order(
            cands in prop::collection::vec((any::<u16>(), 0.1f64..10.0), 0..500),
            partitions in 1usize..50
        ) {
            let b = determine_bounds(cands, partitions);
            prop_assert!(b.len() < partitions.max(1));
            prop_assert!(b.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn range_balanced_on_uniform(seed in any::<u64>(), partitions in 2usize..20) {
            // Sample uniform data the way Spark does, then check every range gets a fair share.
            let n = 200_000u64;
            let data = |i: u64| mix64(i ^ seed);
            let (sample_size, per) = range_sample_sizes(partitions, 4);
            let sketches: Vec<(usize, u64, Vec<u64>)> = (0..4u64)
                .map(|p| {
                    let (s, c) =
                        reservoir_sample((p * n / 4..(p + 1) * n / 4).map(data), per, seed ^ p);
                    (p as usize, c, s)
                })
                .collect();
            let (cands, _, imb) = weighted_candidates(sketches, sample_size, per);
            prop_assert!(imb.is_empty());
            let bounds = determine_bounds(cands, partitions);
            prop_assert_eq!(bounds.len(), partitions - 1);
            let r = RangePartitioner::new(bounds, SortOrder::Ascending);
            let mut counts = vec![0u64; partitions];
            for i in 0..n { counts[r.partition(&data(i))] += 1; }
            let fair = n / partitions as u64;
            for c in counts {
                prop_assert!(c > fair / 3 && c < fair * 3, "count {} vs fair {}", c, fair);
            }
        }

        #[test]
        fn hash_balanced_on_sequential_keys(n in 2usize..32) {
            let p = HashPartitioner::new(n);
            let mut counts = vec![0u64; n];
            let total = 64_000u64;
            for k in 0..total { counts[p.partition(&k)] += 1; }
            let fair = total / n as u64;
            for c in counts { prop_assert!(c > fair * 8 / 10 && c < fair * 12 / 10); }
        }

        #[test]
        fn reservoir_sample_props(len in 0usize..2000, k in 0usize..300, seed in any::<u64>()) {
            let (s, n) = reservoir_sample(0..len, k, seed);
            prop_assert_eq!(n, len as u64);
            prop_assert_eq!(s.len(), k.min(len));
            let mut sorted = s.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), s.len()); // distinct items of the input
            prop_assert!(s.iter().all(|x| *x < len));
            prop_assert_eq!(reservoir_sample(0..len, k, seed).0, s); // deterministic
        }
    }
}
