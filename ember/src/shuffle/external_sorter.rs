//! Sorting by key with spills to disk (the reduce side of `sort_by_key`; Spark's
//! `ExternalSorter` with an ordering and no aggregator).
//!
//! Records collect in a vector; past the spill threshold the vector is sorted and written as a
//! run. At the end the in-memory remainder is sorted and merged with the runs through a binary
//! heap holding one record per run, so memory during the merge is one chunk buffer per run.

use std::cmp::Ordering;
use std::collections::binary_heap::{BinaryHeap, PeekMut};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::ShuffleConf;
use crate::codec::{io_err, ChunkFormat, ChunkWriter, RecordReader, SpillFile};
use crate::data::Data;
use crate::error::Result;
use crate::memory::MemoryConsumer;
use crate::size_tracker::SizeTracker;
use crate::task::TaskMetrics;

/// Sorts `(K, V)` records by key, ascending or descending, spilling sorted runs to disk.
pub struct ExternalSorter<K, V> {
    buf: Vec<(K, V)>,
    tracker: SizeTracker,
    runs: Vec<(SpillFile, u64)>,
    format: ChunkFormat,
    dir: PathBuf,
    ascending: bool,
    updates: u64,
    /// The task's execution memory behind the buffer: spill when refused.
    memory: MemoryConsumer,
}

impl<K: Ord + Data, V: Data> ExternalSorter<K, V> {
    /// An empty sorter spilling into `dir` past `conf.spill_threshold` (runs written in
    /// `conf.spill_format()`).
    pub fn new(conf: &ShuffleConf, dir: &Path, ascending: bool) -> Self {
        ExternalSorter {
            buf: Vec::new(),
            tracker: SizeTracker::new(),
            runs: Vec::new(),
            format: conf.spill_format(),
            dir: dir.to_path_buf(),
            ascending,
            updates: 0,
            memory: MemoryConsumer::for_current_task(conf.spill_threshold),
        }
    }

    /// Adds a record. An I/O error while spilling fails the task (`EmberError::raise`).
    #[inline]
    pub fn insert(&mut self, key: K, value: V, metrics: &TaskMetrics) {
        self.buf.push((key, value));
        if self.tracker.tick() {
            let bytes = self.buf.last().map_or(0, SizeTracker::measure);
            self.tracker
                .sample(bytes, self.buf.len(), std::mem::size_of::<(K, V)>());
        }
        self.updates += 1;
        if self.updates & 31 == 0 && self.memory.should_spill(self.tracker.estimate()) {
            if let Err(e) = self.spill(metrics) {
                e.raise();
            }
        }
    }

    /// Runs spilled so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn spill_count(&self) -> usize {
        self.runs.len()
    }

    fn sort_buf(&mut self) {
        if self.ascending {
            self.buf.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        } else {
            self.buf.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        }
    }

    fn spill(&mut self, metrics: &TaskMetrics) -> Result<()> {
        let held = self.tracker.estimate();
        self.sort_buf();
        let file = SpillFile::create(&self.dir, "sort-spill").map_err(io_err(&self.dir))?;
        let mut out = file.file();
        let mut w = ChunkWriter::new(self.format);
        for rec in self.buf.drain(..) {
            w.push(&rec)?;
            if w.should_flush() {
                w.flush_chunk(&mut out).map_err(io_err(file.path()))?;
            }
        }
        w.flush_chunk(&mut out).map_err(io_err(file.path()))?;
        let len = w.bytes_written();
        self.runs.push((file, len));
        self.tracker.reset();
        self.memory.release();
        TaskMetrics::add(&metrics.memory_bytes_spilled, held);
        TaskMetrics::add(&metrics.disk_bytes_spilled, len);
        tracing::debug!(bytes = len, runs = self.runs.len(), "spilled sorted run");
        Ok(())
    }

    /// All records in key order (records with equal keys in no particular order).
    pub fn into_sorted_iter(mut self) -> SortedIter<K, V> {
        self.sort_buf();
        let buf = std::mem::take(&mut self.buf);
        if self.runs.is_empty() {
            return SortedIter(Inner::Memory(buf.into_iter()));
        }
        let runs = std::mem::take(&mut self.runs);
        let mut sources = Vec::with_capacity(runs.len() + 1);
        for (file, len) in &runs {
            match RecordReader::open(file.path(), 0, *len, self.format) {
                Ok(r) => sources.push(Source::Run(r, file.path().to_path_buf())),
                Err(e) => crate::error::EmberError::io(file.path(), e).raise(),
            }
        }
        sources.push(Source::Memory(buf.into_iter()));
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (src, s) in sources.iter_mut().enumerate() {
            if let Some((key, value)) = s.next() {
                heap.push(Head {
                    key,
                    value,
                    src,
                    ascending: self.ascending,
                });
            }
        }
        SortedIter(Inner::Merge {
            heap,
            sources,
            _runs: runs,
        })
    }
}

/// Where merged records come from.
enum Source<K, V> {
    Memory(std::vec::IntoIter<(K, V)>),
    Run(RecordReader<(K, V), File>, PathBuf),
}

impl<K: Data, V: Data> Source<K, V> {
    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        match self {
            Source::Memory(it) => it.next(),
            Source::Run(r, path) => match r.next_record() {
                Ok(rec) => rec,
                Err(e) => crate::error::EmberError::io(&*path, e).raise(),
            },
        }
    }
}

/// The next record of one source, ordered so that `BinaryHeap` (a max-heap) pops the record that
/// comes first in the requested order.
struct Head<K, V> {
    key: K,
    value: V,
    src: usize,
    ascending: bool,
}

impl<K: Ord, V> Ord for Head<K, V> {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        if self.ascending {
            other.key.cmp(&self.key)
        } else {
            self.key.cmp(&other.key)
        }
    }
}

impl<K: Ord, V> PartialOrd for Head<K, V> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, V> PartialEq for Head<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<K: Ord, V> Eq for Head<K, V> {}

enum Inner<K, V> {
    Memory(std::vec::IntoIter<(K, V)>),
    Merge {
        heap: BinaryHeap<Head<K, V>>,
        sources: Vec<Source<K, V>>,
        /// Keeps the run files until the merge is dropped, then deletes them.
        _runs: Vec<(SpillFile, u64)>,
    },
}

/// The sorted output of an [`ExternalSorter`].
pub struct SortedIter<K, V>(Inner<K, V>);

impl<K: Ord + Data, V: Data> Iterator for SortedIter<K, V> {
    type Item = (K, V);

    #[inline]
    fn next(&mut self) -> Option<(K, V)> {
        match &mut self.0 {
            Inner::Memory(it) => it.next(),
            Inner::Merge { heap, sources, .. } => {
                let mut top = heap.peek_mut()?;
                match sources[top.src].next() {
                    // Replace the head in place: one sift-down instead of a pop and a push.
                    Some((k, v)) => {
                        let key = std::mem::replace(&mut top.key, k);
                        let value = std::mem::replace(&mut top.value, v);
                        drop(top);
                        Some((key, value))
                    }
                    None => {
                        let h = PeekMut::pop(top);
                        Some((h.key, h.value))
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Inner::Memory(it) => it.size_hint(),
            Inner::Merge { heap, .. } => (heap.len(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioner::mix64;
    use proptest::prelude::*;
    use std::sync::atomic::Ordering::Relaxed;

    fn conf(threshold: u64) -> ShuffleConf {
        ShuffleConf {
            spill_threshold: threshold,
            ..ShuffleConf::default()
        }
    }

    #[test]
    fn sorts_with_many_runs_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut s = ExternalSorter::new(&conf(4096), dir.path(), true);
        for i in 0..30_000u64 {
            s.insert(mix64(i) % 100_000, i, &m);
        }
        assert!(s.spill_count() > 10);
        assert!(m.memory_bytes_spilled.load(Relaxed) > 0 && m.disk_bytes_spilled.load(Relaxed) > 0);
        let out: Vec<(u64, u64)> = s.into_sorted_iter().collect();
        assert_eq!(out.len(), 30_000);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut values: Vec<u64> = out.iter().map(|r| r.1).collect();
        values.sort();
        assert_eq!(values, (0..30_000).collect::<Vec<_>>());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn drop_before_iterating_removes_runs() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut s = ExternalSorter::new(&conf(256), dir.path(), false);
        for i in 0..2000u32 {
            s.insert(i, (), &m);
        }
        assert!(s.spill_count() > 0);
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_damaged_run_fails_the_task_before_its_records_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        let m = TaskMetrics::default();
        let mut s = ExternalSorter::new(&conf(4096), dir.path(), true);
        for i in 0..5_000u64 {
            s.insert(mix64(i) % 100_000, i, &m);
        }
        assert!(s.spill_count() > 1);
        // One changed byte in the middle of the first run.
        let path = s.runs[0].0.path().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x04;
        std::fs::write(&path, bytes).unwrap();
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.into_sorted_iter().count()
        }))
        .expect_err("a damaged run must fail the task");
        let e = payload
            .downcast::<crate::error::EmberError>()
            .expect("raised as a task error");
        assert!(e.to_string().contains("checksum"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn sorted_permutation(input in prop::collection::vec((any::<i32>(), ".{0,8}"), 0..2000),
                              ascending in any::<bool>(),
                              threshold in prop_oneof![Just(1024u64), Just(1 << 30)]) {
            let dir = tempfile::tempdir().unwrap();
            let m = TaskMetrics::default();
            let mut s = ExternalSorter::new(&conf(threshold), dir.path(), ascending);
            for (k, v) in input.clone() {
                s.insert(k, v, &m);
            }
            let out: Vec<(i32, String)> = s.into_sorted_iter().collect();
            let ordered = out
                .windows(2)
                .all(|w| if ascending { w[0].0 <= w[1].0 } else { w[0].0 >= w[1].0 });
            prop_assert!(ordered);
            let mut a = out.clone();
            a.sort();
            let mut b = input;
            b.sort();
            prop_assert_eq!(a, b);
        }
    }
}
