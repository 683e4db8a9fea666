//! Cheap size estimation of a growing in-memory collection (Spark's `SizeTracker`).
//!
//! Measuring a collection on every insert would cost more than the insert. Instead, at update
//! counts spaced exponentially (each 10% after the previous) the caller measures the entry it
//! just inserted or updated; the tracker turns that into a whole-collection estimate
//! (`entries x (fixed bytes per slot + average variable bytes per entry)`) and extrapolates between
//! samples with the growth per update observed between the last two samples, as Spark does.
//! An update costs an increment and a compare; a sample costs one postcard size pass over one
//! entry.

use serde::Serialize;

/// Growth factor between sample points (Spark's `SAMPLE_GROWTH_RATE`).
const SAMPLE_GROWTH: f64 = 1.1;

/// Samples averaged at most (weight of a new sample is at least 1/this): enough to smooth noise,
/// few enough to follow entries whose size changes over time (e.g. growing groups).
const MAX_AVERAGED: f64 = 8.0;

/// Estimates the in-memory size of a collection from sampled entries.
#[derive(Debug, Clone)]
pub struct SizeTracker {
    updates: u64,
    next_sample: u64,
    samples: u64,
    /// Running average of the sampled entries' variable size (postcard length as a proxy for the
    /// heap data an entry owns).
    avg_entry: f64,
    last_updates: u64,
    last_size: f64,
    bytes_per_update: f64,
}

impl Default for SizeTracker {
    fn default() -> Self {
        SizeTracker::new()
    }
}

impl SizeTracker {
    /// A tracker for an empty collection.
    pub fn new() -> Self {
        SizeTracker {
            updates: 0,
            next_sample: 1,
            samples: 0,
            avg_entry: 0.0,
            last_updates: 0,
            last_size: 0.0,
            bytes_per_update: 0.0,
        }
    }

    /// Counts one insert or update; returns true when the caller should measure the entry it just
    /// touched and pass it to [`SizeTracker::sample`].
    #[inline]
    pub fn tick(&mut self) -> bool {
        self.updates += 1;
        self.updates >= self.next_sample
    }

    /// Postcard-encoded size of an entry (0 if it does not encode: the real encoding reports it).
    #[inline]
    pub fn measure<T: Serialize + ?Sized>(entry: &T) -> usize {
        postcard::serialize_with_flavor::<T, _, usize>(entry, CountingFlavor(0)).unwrap_or(0)
    }

    /// Records a sample: `entry_bytes` is the measured size of the entry just touched, `entries`
    /// the collection's length, `slot_bytes` its fixed cost per entry (the inline size in the
    /// table or vector plus bookkeeping).
    pub fn sample(&mut self, entry_bytes: usize, entries: usize, slot_bytes: usize) {
        self.samples += 1;
        let w = 1.0 / (self.samples as f64).min(MAX_AVERAGED);
        self.avg_entry += (entry_bytes as f64 - self.avg_entry) * w;
        let size = entries as f64 * (slot_bytes as f64 + self.avg_entry);
        if self.samples > 1 && self.updates > self.last_updates {
            self.bytes_per_update =
                ((size - self.last_size) / (self.updates - self.last_updates) as f64).max(0.0);
        }
        self.last_size = size;
        self.last_updates = self.updates;
        self.next_sample =
            ((self.updates as f64 * SAMPLE_GROWTH).ceil() as u64).max(self.updates + 1);
    }

    /// Estimated bytes of the collection now.
    #[inline]
    pub fn estimate(&self) -> u64 {
        (self.last_size + self.bytes_per_update * (self.updates - self.last_updates) as f64) as u64
    }

    /// Forgets everything (after the collection was spilled and cleared).
    pub fn reset(&mut self) {
        *self = SizeTracker::new();
    }
}

/// A postcard output that only counts bytes (postcard's own `serialized_size` needs an
/// experimental feature).
struct CountingFlavor(usize);

impl postcard::ser_flavors::Flavor for CountingFlavor {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// Fixed bytes per entry of a `hashbrown`-backed `HashMap<K, V>`: the inline pair plus one
/// control byte, over the 7/8 maximum load factor.
pub fn map_slot_bytes<K, V>() -> usize {
    (std::mem::size_of::<(K, V)>() + 1) * 8 / 7
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track<T: Serialize>(items: impl Iterator<Item = T>, slot: usize) -> (SizeTracker, u64) {
        let mut t = SizeTracker::new();
        let mut n = 0usize;
        let mut sampled = 0;
        for it in items {
            n += 1;
            if t.tick() {
                sampled += 1;
                t.sample(SizeTracker::measure(&it), n, slot);
            }
        }
        (t, sampled)
    }

    #[test]
    fn estimate_follows_uniform_growth_with_few_samples() {
        // 1M entries of 16 inline bytes and ~8 encoded bytes: about 24 MB.
        let (t, samples) = track((0..1_000_000u64).map(|i| (i << 20, i)), 16);
        let est = t.estimate() as f64;
        let expect = 1_000_000.0 * (16.0 + 4.0 + 3.0);
        assert!(
            (est - expect).abs() / expect < 0.3,
            "estimate {est} vs {expect}"
        );
        // Exponential spacing: ~log_1.1(1e6) samples.
        assert!(samples < 200, "{samples} samples");
    }

    #[test]
    fn estimate_sees_large_entries() {
        let (t, _) = track((0..10_000).map(|i| vec![i as u8; 1000]), 24);
        assert!(t.estimate() > 9_000_000);
    }

    #[test]
    fn extrapolates_between_samples() {
        let mut t = SizeTracker::new();
        for n in 1..=1000usize {
            if t.tick() {
                t.sample(10, n, 0);
            }
        }
        let before = t.estimate();
        // Updates without samples still raise the estimate at the last observed rate.
        while !t.tick() {}
        assert!(t.estimate() > before);
        t.reset();
        assert_eq!(t.estimate(), 0);
    }
}
