//! The hash map both sides of a shuffle combine values in (Spark's `SizeTrackingAppendOnlyMap`):
//! inserts that sample the size of what they touched, and the rules for splitting a map that
//! outgrew the cache into queued buckets (the map-side combiners and the reduce-side
//! `ExternalAggregator` share them).

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::data::Key;
use crate::size_tracker::SizeTracker;

/// Inserts into a map with size tracking; returns the sampled entry size when the tracker asks.
#[inline]
pub(crate) fn upsert<K: Key, C: Serialize, X>(
    map: &mut FxHashMap<K, C>,
    tracker: &mut SizeTracker,
    key: K,
    x: X,
    create: impl FnOnce(X) -> C,
    merge: impl FnOnce(&mut C, X),
) -> Option<usize> {
    match map.entry(key) {
        Entry::Occupied(mut e) => {
            merge(e.get_mut(), x);
            tracker
                .tick()
                .then(|| SizeTracker::measure(&(e.key(), e.get())))
        }
        Entry::Vacant(e) => {
            let c = create(x);
            if tracker.tick() {
                let e = e.insert_entry(c);
                Some(SizeTracker::measure(&(e.key(), e.get())))
            } else {
                e.insert(c);
                None
            }
        }
    }
}

/// Entries a combine map may hold before it is split into buckets: below this it stays in cache
/// and a single map is fastest.
pub(crate) const DIRECT_MAX_ENTRIES: usize = 16 << 10;

/// Whether queueing records per bucket pays off for these types: only for plain inline data.
///
/// Queued keys and values that own heap data (`String`, `Vec`) are cold by the time they are
/// folded — hashing a queued `String` key is a cache miss — and the queue keeps up to
/// `PENDING_BUDGET` of allocations alive. Measured on a word count (5M `String` keys, Zipf over
/// 100K words): 1300 ms queued vs 420 ms with one map; on 2.5M `u64` keys over 1M: 120 ms queued
/// vs 208 ms with one map. Types without drop glue own no heap data.
pub(crate) const fn queueing_pays<K, V>() -> bool {
    !std::mem::needs_drop::<K>() && !std::mem::needs_drop::<V>()
}

/// Bytes of values waiting in bucket queues, over all buckets (at most a quarter of the spill
/// threshold). Folding pays off when a bucket's batch is large next to its map, so that the map's
/// cache lines are reused: measured on 2.5M records / 918K keys, 2 MiB gave 170 ms, 32 MiB 120 ms
/// (a single map: 208 ms).
pub(crate) const PENDING_BUDGET: usize = 32 << 20;

/// Entries a bucket queue is first given room for.
const FIRST_QUEUE_ENTRIES: usize = 128;

/// How much a full bucket queue grows at a time, up to its batch.
const QUEUE_GROWTH: usize = 8;

/// Appends `item` to a bucket queue that is folded when it holds `batch` items.
///
/// The queue starts small and grows eightfold up to `batch` instead of getting all of it at its
/// first item. A task with fewer records than `PENDING_BUDGET` holds would otherwise take the
/// whole budget (32 MiB) from the allocator, as pages the kernel zeroes when first touched (huge
/// pages: 2 MiB at a time): in PageRank's iterations (125,000 records a map task) that zeroing
/// was 11 % of the job's time. Eightfold rather than doubling: a queue that fills (W4) then
/// copies an eighth of its batch and takes about 1.15 batches of fresh memory, not 2.
#[inline]
pub(crate) fn push_queued<T>(queue: &mut Vec<T>, item: T, batch: usize) {
    if queue.len() == queue.capacity() {
        grow_queue(queue, batch);
    }
    queue.push(item);
}

#[cold]
#[inline(never)]
fn grow_queue<T>(queue: &mut Vec<T>, batch: usize) {
    let cap = queue.capacity();
    let target = if cap == 0 {
        FIRST_QUEUE_ENTRIES.min(batch)
    } else {
        cap.saturating_mul(QUEUE_GROWTH).min(batch)
    };
    queue.reserve_exact(target.max(queue.len() + 1) - queue.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_grows_eightfold_up_to_its_batch_and_keeps_every_item() {
        let batch = 10_000;
        let mut queue = Vec::new();
        let mut capacities = Vec::new();
        for i in 0..batch {
            push_queued(&mut queue, i, batch);
            if capacities.last() != Some(&queue.capacity()) {
                capacities.push(queue.capacity());
            }
        }
        assert_eq!(queue, (0..batch).collect::<Vec<_>>());
        assert_eq!(capacities, [128, 1024, 8192, 10_000]);
        // Drained after a fold, the queue keeps its room for the next batch.
        queue.clear();
        push_queued(&mut queue, 7, batch);
        assert_eq!(queue.capacity(), batch);
        // A batch smaller than the first size is all the queue gets.
        let mut small = Vec::new();
        push_queued(&mut small, 1u8, 16);
        assert_eq!(small.capacity(), 16);
    }
}
