//! Where every shuffle's map outputs are (Spark's `MapOutputTracker`), kept on the driver.
//!
//! The DAG scheduler registers outputs as map tasks finish and forgets them when executors are
//! lost; reduce tasks read the statuses (in local mode directly, from executor processes through
//! the driver's connection), so the state sits behind a lock and is shared as an `Arc`.

use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

use ember_common::{BlockManagerId, MapStatus, ShuffleId};

/// Reduce-task locality is computed only for shuffles with fewer map partitions than this
/// (Spark's `SHUFFLE_PREF_MAP_THRESHOLD`): past it, no location is likely to hold a large
/// share, and summing the sizes costs more.
pub const SHUFFLE_PREF_MAP_THRESHOLD: usize = 1000;

/// … and fewer reduce partitions than this (Spark's `SHUFFLE_PREF_REDUCE_THRESHOLD`).
pub const SHUFFLE_PREF_REDUCE_THRESHOLD: usize = 1000;

/// The share of a reduce partition's input a location must hold to be preferred (Spark's
/// `REDUCER_PREF_LOCS_FRACTION`): at most five locations qualify.
pub const REDUCER_PREF_LOCS_FRACTION: f64 = 0.2;

#[derive(Default)]
struct ShuffleStatus {
    outputs: Vec<Option<MapStatus>>,
    available: usize,
    /// A shared copy handed to reduce tasks, rebuilt only after a change, so thousands of
    /// reducers of one shuffle do not each copy the list.
    snapshot: Option<Arc<Vec<Option<MapStatus>>>>,
}

/// Map output locations of every shuffle.
#[derive(Default)]
pub struct MapOutputTracker {
    shuffles: Mutex<FxHashMap<ShuffleId, ShuffleStatus>>,
    /// Spark's `MapOutputTracker` epoch: bumped whenever outputs are lost and when a map stage
    /// completes, so the DAG scheduler can tell a task launched before an executor's failure
    /// from one launched after it.
    epoch: std::sync::atomic::AtomicU64,
}

impl MapOutputTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state. Every update leaves it consistent before anything can panic, so a panic on
    /// another thread (a poisoned lock) leaves nothing half-done to worry about.
    fn shuffles(&self) -> MutexGuard<'_, FxHashMap<ShuffleId, ShuffleStatus>> {
        self.shuffles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Moves to the next epoch (Spark's `incrementEpoch`).
    pub fn increment_epoch(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Starts tracking a shuffle with `num_maps` map partitions (no-op when already known).
    pub fn register_shuffle(&self, shuffle_id: ShuffleId, num_maps: usize) {
        self.shuffles()
            .entry(shuffle_id)
            .or_insert_with(|| ShuffleStatus {
                outputs: vec![None; num_maps],
                available: 0,
                snapshot: None,
            });
    }

    /// Records a finished map task's output. Returns whether the partition had no output before
    /// (false for a duplicate: a speculative copy or a zombie attempt finishing late).
    pub fn register_map_output(&self, shuffle_id: ShuffleId, status: MapStatus) -> bool {
        let mut all = self.shuffles();
        let Some(s) = all.get_mut(&shuffle_id) else {
            return false;
        };
        let i = status.map_index;
        if i >= s.outputs.len() {
            return false;
        }
        let new = s.outputs[i].is_none();
        if new {
            s.available += 1;
        }
        s.outputs[i] = Some(status);
        s.snapshot = None;
        new
    }

    /// Forgets one map output (its block could not be fetched); a new epoch begins.
    pub fn unregister_map_output(&self, shuffle_id: ShuffleId, map_index: usize) {
        let mut all = self.shuffles();
        if let Some(s) = all.get_mut(&shuffle_id) {
            if let Some(slot) = s.outputs.get_mut(map_index) {
                if slot.take().is_some() {
                    s.available -= 1;
                    s.snapshot = None;
                }
            }
        }
        self.increment_epoch();
    }

    /// Forgets every map output of a shuffle (Spark's `unregisterAllMapAndMergeOutput`): an
    /// indeterminate stage that runs again must run in full. A new epoch begins.
    pub fn unregister_all_map_outputs(&self, shuffle_id: ShuffleId) {
        let mut all = self.shuffles();
        if let Some(s) = all.get_mut(&shuffle_id) {
            for slot in s.outputs.iter_mut() {
                *slot = None;
            }
            s.available = 0;
            s.snapshot = None;
        }
        drop(all);
        self.increment_epoch();
    }

    /// Forgets every map output stored on an executor; returns how many were lost. A new
    /// epoch begins.
    pub fn remove_outputs_on_executor(&self, executor_id: &str) -> usize {
        self.increment_epoch();
        let mut lost = 0;
        for s in self.shuffles().values_mut() {
            for slot in s.outputs.iter_mut() {
                if slot
                    .as_ref()
                    .is_some_and(|st| st.location.executor_id == executor_id)
                {
                    *slot = None;
                    s.available -= 1;
                    s.snapshot = None;
                    lost += 1;
                }
            }
        }
        lost
    }

    /// Map partitions of the shuffle that have no output.
    pub fn missing_partitions(&self, shuffle_id: ShuffleId) -> Option<Vec<usize>> {
        let all = self.shuffles();
        let s = all.get(&shuffle_id)?;
        Some(
            s.outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.is_none())
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// Whether every map output of the shuffle is available.
    pub fn is_available(&self, shuffle_id: ShuffleId) -> bool {
        self.shuffles()
            .get(&shuffle_id)
            .is_some_and(|s| s.available == s.outputs.len())
    }

    /// Drops a shuffle's entry.
    pub fn unregister_shuffle(&self, shuffle_id: ShuffleId) {
        self.shuffles().remove(&shuffle_id);
    }

    /// The block managers holding at least `fraction` of reduce partition `reduce_id`'s input
    /// (Spark's `getLocationsWithLargestOutputs`), in the order of their first map output;
    /// `None` when none does or the shuffle is unknown.
    pub fn locations_with_largest_outputs(
        &self,
        shuffle_id: ShuffleId,
        reduce_id: usize,
        fraction: f64,
    ) -> Option<Vec<BlockManagerId>> {
        let all = self.shuffles();
        let s = all.get(&shuffle_id)?;
        let mut sizes: Vec<(&BlockManagerId, u64)> = Vec::new();
        let mut total: u64 = 0;
        for status in s.outputs.iter().flatten() {
            let size = status.sizes.get(reduce_id).copied().unwrap_or(0);
            if size == 0 {
                continue;
            }
            total = total.saturating_add(size);
            match sizes.iter_mut().find(|(loc, _)| **loc == status.location) {
                Some((_, sum)) => *sum = sum.saturating_add(size),
                None => sizes.push((&status.location, size)),
            }
        }
        let top: Vec<BlockManagerId> = sizes
            .into_iter()
            .filter(|(_, size)| *size as f64 / total as f64 >= fraction)
            .map(|(loc, _)| loc.clone())
            .collect();
        (!top.is_empty()).then_some(top)
    }

    /// The status of every map partition of the shuffle (`None` where an output is missing), or
    /// `None` for a shuffle it does not know. One shared copy per change of the shuffle's
    /// outputs, so thousands of reducers do not each copy the list.
    pub fn map_statuses(&self, shuffle_id: ShuffleId) -> Option<Arc<Vec<Option<MapStatus>>>> {
        let mut all = self.shuffles();
        let s = all.get_mut(&shuffle_id)?;
        Some(
            s.snapshot
                .get_or_insert_with(|| Arc::new(s.outputs.clone()))
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_common::BlockManagerId;

    fn status(exec: &str, i: usize) -> MapStatus {
        MapStatus {
            location: BlockManagerId {
                executor_id: exec.into(),
                host: "h".into(),
                port: 0,
            },
            map_index: i,
            map_id: i as u64,
            sizes: vec![1, 2],
        }
    }

    #[test]
    fn tracks_availability_and_executor_loss() {
        let t = MapOutputTracker::new();
        t.register_shuffle(0, 2);
        assert!(!t.is_available(0));
        t.register_map_output(0, status("a", 0));
        t.register_map_output(0, status("b", 1));
        assert!(t.is_available(0));
        assert_eq!(t.map_statuses(0).unwrap().len(), 2);
        assert_eq!(t.remove_outputs_on_executor("a"), 1);
        assert_eq!(t.missing_partitions(0).unwrap(), vec![0]);
        assert!(t.map_statuses(0).unwrap()[0].is_none());
        t.unregister_map_output(0, 1);
        assert_eq!(t.missing_partitions(0).unwrap(), vec![0, 1]);
        assert!(t.map_statuses(7).is_none());
    }

    fn sized(exec: &str, host: &str, i: usize, sizes: Vec<u64>) -> MapStatus {
        MapStatus {
            location: BlockManagerId {
                executor_id: exec.into(),
                host: host.into(),
                port: 0,
            },
            map_index: i,
            map_id: i as u64,
            sizes,
        }
    }

    #[test]
    fn largest_outputs_are_the_locations_over_the_fraction() {
        // Spark's "getLocationsWithLargestOutputs with multiple outputs in same machine": sizes
        // add up per block manager.
        let t = MapOutputTracker::new();
        t.register_shuffle(0, 4);
        t.register_map_output(0, sized("a", "ha", 0, vec![10, 0]));
        t.register_map_output(0, sized("b", "hb", 1, vec![20, 0]));
        t.register_map_output(0, sized("a", "ha", 2, vec![30, 0]));
        t.register_map_output(0, sized("c", "hc", 3, vec![40, 0]));
        let execs = |v: Option<Vec<BlockManagerId>>| {
            v.map(|v| v.into_iter().map(|b| b.executor_id).collect::<Vec<_>>())
        };
        assert_eq!(
            execs(t.locations_with_largest_outputs(0, 0, 0.2)),
            Some(vec!["a".to_string(), "b".into(), "c".into()])
        );
        assert_eq!(
            execs(t.locations_with_largest_outputs(0, 0, 0.4)),
            Some(vec!["a".to_string(), "c".into()])
        );
        // Nothing to read, or an unknown shuffle: no preference.
        assert_eq!(t.locations_with_largest_outputs(0, 1, 0.2), None);
        assert_eq!(t.locations_with_largest_outputs(9, 0, 0.2), None);
    }
}
