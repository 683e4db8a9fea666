//! The map side of the sort-based shuffle (Spark's `SortShuffleWriter`): writes one map task's
//! records as one data file (a block per reduce partition, in partition order) and one index
//! file, in the format of [`super`].
//!
//! Without aggregation the records go to per-partition buffers
//! (`partitioned_buffer`); with map-side combine, to the combiner its key and value
//! types call for (`combiner`). Either spills per-partition runs when the task's memory
//! runs out, and `map_output_writer` assembles the final file from the runs and the
//! in-memory remainder.

use std::fs;
use std::path::Path;

use super::append_only_map::queueing_pays;
use super::combiner::{BucketedCombiner, HashCombiner, InlineStrCombiner, MapCombiner};
use super::map_output_writer::{spill_output, write_output, SpilledRuns};
use super::partitioned_buffer::PartitionedBuffers;
use super::ShuffleConf;
use crate::aggregator::Aggregator;
use crate::codec::io_err;
use crate::data::{Data, Key};
use crate::error::{EmberError, Result};
use crate::memory::MemoryConsumer;
use crate::partitioner::Partitioner;
use crate::task::{ShuffleId, TaskMetrics};
use crate::util::{cast, is_string};

/// Receives the `(K, V)` records of one map partition (a shuffle writer). Engine hook.
#[doc(hidden)]
pub trait PairSink<K: 'static, V> {
    /// One record.
    fn pair(&mut self, key: K, value: V) -> Result<()>;

    /// One record whose `String` key is lent: the same as `pair(key.to_owned(), value)`, which
    /// is what this default does.
    fn str_pair(&mut self, key: &str, value: V) -> Result<()> {
        match cast::<String, K>(key.to_owned()) {
            Ok(k) => self.pair(k, value),
            Err(_) => Err(EmberError::Internal(
                "lent pair fed to a sink of another type".into(),
            )),
        }
    }
}

/// The records of one map partition, pushed into a shuffle writer's sink: an RDD partition
/// (which may lend its keys, see `crate::rdd::Rdd::feed_pairs`) or any iterator of pairs.
/// Engine hook.
#[doc(hidden)]
pub trait PairSource<K: 'static, V> {
    /// Pushes every record into `sink`, stopping at the first error.
    fn feed<S: PairSink<K, V>>(self, sink: &mut S) -> Result<()>;
}

/// The pairs of an iterator, as a [`PairSource`].
pub struct IterSource<I>(pub I);

impl<K: 'static, V, I: Iterator<Item = (K, V)>> PairSource<K, V> for IterSource<I> {
    fn feed<S: PairSink<K, V>>(self, sink: &mut S) -> Result<()> {
        for (k, v) in self.0 {
            sink.pair(k, v)?;
        }
        Ok(())
    }
}

/// Writes a map task's records without aggregation (Spark's sort shuffle with no map-side
/// combine): each record goes to its reduce partition's buffer as it arrives.
///
/// Past `conf.spill_threshold` bytes of buffered output, all buffers are spilled to a spill file
/// as per-partition runs. Returns the stored size of each reduce block.
pub fn write_records<K: Key, V: Data, P: Partitioner<K>>(
    records: impl Iterator<Item = (K, V)>,
    partitioner: &P,
    shuffle_id: ShuffleId,
    map_id: u64,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut bufs = PartitionedBuffers::new(partitioner.num_partitions(), conf.format());
    let mut spills = Vec::new();
    let mut count = 0u64;
    let mut memory = MemoryConsumer::for_current_task(conf.spill_threshold);
    for (k, v) in records {
        let p = partitioner.partition(&k);
        // A tuple of references encodes exactly like `(K, V)`.
        bufs.push_pair(p, &k, &v)?;
        count += 1;
        if memory.should_spill(bufs.bytes) {
            let held = bufs.bytes;
            spills.push(spill_output(&mut bufs, held, dir, conf, metrics)?);
            memory.release();
        }
    }
    write_output(
        bufs, spills, count, shuffle_id, map_id, dir, conf, metrics,
    )
}

/// Writes a map task's records combined by key (map-side combine of `reduce_by_key`,
/// `aggregate_by_key`, …): values are folded into the combiner that suits their types (see the
/// `combiner` module); when their estimated size passes `conf.spill_threshold`, the entries are
/// spilled as per-partition runs and aggregation starts again. A key may therefore appear in
/// several runs of one block: the reduce side merges combiners anyway, so no order or uniqueness is
/// needed. Returns the stored size of each block.
#[allow(clippy::too_many_arguments)]
pub fn write_combined<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>>(
    records: impl Iterator<Item = (K, V)>,
    partitioner: &P,
    agg: &A,
    shuffle_id: ShuffleId,
    map_id: u64,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    write_combined_from(
        IterSource(records),
        partitioner,
        agg,
        shuffle_id,
        map_id,
        dir,
        conf,
        metrics,
    )
}

/// [`write_combined`] with the records pushed by `source` into the sink it is given, which also
/// takes pairs with a lent `&str` key ([`PairSink::str_pair`]). The combiner is chosen by the key
/// and value types (see the `combiner` module).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_combined_from<
    K: Key,
    V: Data,
    C: Data,
    A: Aggregator<K, V, C>,
    P: Partitioner<K>,
    S: PairSource<K, V>,
>(
    source: S,
    partitioner: &P,
    agg: &A,
    shuffle_id: ShuffleId,
    map_id: u64,
    dir: &Path,
    conf: &ShuffleConf,
    metrics: &TaskMetrics,
) -> Result<Vec<u64>> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let w = Writing {
        shuffle_id,
        map_id,
        dir,
        conf,
        metrics,
    };
    if is_string::<K>() {
        w.combine(
            InlineStrCombiner::new(agg, partitioner, conf.format()),
            source,
        )
    } else if queueing_pays::<K, V>() {
        w.combine(
            BucketedCombiner::new(agg, partitioner, conf.format(), conf.spill_threshold),
            source,
        )
    } else {
        w.combine(HashCombiner::new(agg, partitioner, conf.format()), source)
    }
}

/// Where a map task's combined output goes.
struct Writing<'a> {
    shuffle_id: ShuffleId,
    map_id: u64,
    dir: &'a Path,
    conf: &'a ShuffleConf,
    metrics: &'a TaskMetrics,
}

impl<'a> Writing<'a> {
    /// Feeds `source` through `combiner`, spilling as needed, and writes the output.
    fn combine<K: 'static, V, M: MapCombiner<K, V>, S: PairSource<K, V>>(
        self,
        combiner: M,
        source: S,
    ) -> Result<Vec<u64>> {
        let Writing {
            shuffle_id,
            map_id,
            dir,
            conf,
            metrics,
        } = self;
        let mut sink = CombineSink {
            combiner,
            spills: Vec::new(),
            written: 0,
            seen: 0,
            dir,
            conf,
            metrics,
            memory: MemoryConsumer::for_current_task(conf.spill_threshold),
        };
        source.feed(&mut sink)?;
        // The memory stays reserved until the output is written.
        let CombineSink {
            mut combiner,
            spills,
            mut written,
            memory: _memory,
            ..
        } = sink;
        written += combiner.prepare_output()?;
        write_output(
            combiner, spills, written, shuffle_id, map_id, dir, conf, metrics,
        )
    }
}

/// The records' way into a map task's combiner: inserts, and spills when the estimate passes
/// the threshold.
pub(crate) struct CombineSink<'a, M> {
    combiner: M,
    spills: Vec<SpilledRuns>,
    /// Entries written by earlier spills.
    written: u64,
    seen: u64,
    dir: &'a Path,
    conf: &'a ShuffleConf,
    metrics: &'a TaskMetrics,
    /// The table's execution memory, reserved from the task's memory manager as it grows.
    memory: MemoryConsumer,
}

impl<M> CombineSink<'_, M> {
    #[inline]
    fn after_record<K: 'static, V>(&mut self) -> Result<()>
    where
        M: MapCombiner<K, V>,
    {
        self.seen += 1;
        // Checking every 32 records (as Spark's `maybeSpill`) keeps the estimate off the hot path.
        if self.seen & 31 == 0 && self.memory.should_spill(self.combiner.estimate()) {
            self.spill()?;
        }
        Ok(())
    }

    #[cold]
    fn spill<K: 'static, V>(&mut self) -> Result<()>
    where
        M: MapCombiner<K, V>,
    {
        let combiner = &mut self.combiner;
        let held = combiner.estimate();
        self.written += combiner.prepare_output()?;
        self.spills.push(spill_output(
            combiner,
            held,
            self.dir,
            self.conf,
            self.metrics,
        )?);
        combiner.reset();
        self.memory.release();
        Ok(())
    }
}

impl<K: 'static, V, M: MapCombiner<K, V>> PairSink<K, V> for CombineSink<'_, M> {
    #[inline]
    fn pair(&mut self, key: K, value: V) -> Result<()> {
        self.combiner.insert(key, value)?;
        self.after_record::<K, V>()
    }

    #[inline]
    fn str_pair(&mut self, key: &str, value: V) -> Result<()> {
        self.combiner.insert_str(key, value)?;
        self.after_record::<K, V>()
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::codec::{ChunkFormat, RecordReader};
    use crate::partitioner::HashPartitioner;
    use crate::shuffle::test_support::Sum;
    use crate::shuffle::{data_file, index_file};
    use std::sync::atomic::Ordering::Relaxed;

    fn read_block(dir: &Path, sizes: &[u64], p: usize, format: ChunkFormat) -> Vec<(u64, u64)> {
        let off: u64 = sizes[..p].iter().sum();
        RecordReader::open(&data_file(dir, 0, 0), off, sizes[p], format)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap()
    }

    #[test]
    fn output_files_and_index_agree() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf {
            spill_threshold: 4 << 10,
            ..ShuffleConf::default()
        };
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(5);
        let recs: Vec<(u64, u64)> = (0..20_000).map(|i| (i % 777, i)).collect();
        let sizes =
            write_records(recs.clone().into_iter(), &part, 0, 0, dir.path(), &conf, &m).unwrap();
        assert_eq!(sizes.len(), 5);
        let index = fs::read(index_file(dir.path(), 0, 0)).unwrap();
        assert_eq!(index.len(), 6 * 8);
        assert_eq!(
            fs::metadata(data_file(dir.path(), 0, 0)).unwrap().len(),
            sizes.iter().sum::<u64>()
        );
        let mut all = Vec::new();
        for p in 0..5 {
            let block = read_block(dir.path(), &sizes, p, conf.format());
            assert!(block.iter().all(|(k, _)| part.partition(k) == p));
            all.extend(block);
        }
        all.sort();
        let mut expect = recs;
        expect.sort();
        assert_eq!(all, expect);
        // Spilled, and only the two committed files remain.
        assert!(m.memory_bytes_spilled.load(Relaxed) > 0 && m.disk_bytes_spilled.load(Relaxed) > 0);
        assert_eq!(m.shuffle_records_written.load(Relaxed), 20_000);
        assert_eq!(
            m.shuffle_bytes_written.load(Relaxed),
            sizes.iter().sum::<u64>()
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn combined_output_has_one_entry_per_key_without_spill() {
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf {
            compress: false,
            ..ShuffleConf::default()
        };
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(3);
        let sizes = write_combined(
            (0..10_000u64).map(|i| (i % 100, 1)),
            &part,
            &Sum,
            0,
            0,
            dir.path(),
            &conf,
            &m,
        )
        .unwrap();
        let mut all: Vec<(u64, u64)> = (0..3)
            .flat_map(|p| read_block(dir.path(), &sizes, p, conf.format()))
            .collect();
        all.sort();
        assert_eq!(all, (0..100).map(|k| (k, 100)).collect::<Vec<_>>());
        assert_eq!(m.shuffle_records_written.load(Relaxed), 100);
        assert_eq!(m.disk_bytes_spilled.load(Relaxed), 0);
    }

    #[test]
    fn combined_through_queued_buckets_with_spills() {
        // > DIRECT_MAX_ENTRIES u64 keys: queued buckets; 512 KiB: several spills in that mode.
        for (threshold, partitions) in [(1u64 << 30, 8), (512 << 10, 8), (512 << 10, 300)] {
            let dir = tempfile::tempdir().unwrap();
            let conf = ShuffleConf {
                spill_threshold: threshold,
                ..ShuffleConf::default()
            };
            let m = TaskMetrics::default();
            let part = HashPartitioner::new(partitions);
            let input = (0..300_000u64).map(|i| (crate::partitioner::mix64(i) % 50_000, i));
            let sizes =
                write_combined(input.clone(), &part, &Sum, 0, 0, dir.path(), &conf, &m).unwrap();
            let mut got: std::collections::HashMap<u64, u64> = Default::default();
            for p in 0..partitions {
                for (k, c) in read_block(dir.path(), &sizes, p, conf.format()) {
                    assert_eq!(part.partition(&k), p);
                    *got.entry(k).or_default() += c;
                }
            }
            let mut expect: std::collections::HashMap<u64, u64> = Default::default();
            for (k, v) in input {
                *expect.entry(k).or_default() += v;
            }
            assert_eq!(got, expect);
            assert_eq!(m.disk_bytes_spilled.load(Relaxed) > 0, threshold < 1 << 30);
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        }
    }

    #[test]
    fn combined_heap_keys_with_spills() {
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct Count;
        impl Aggregator<String, u32, u64> for Count {
            const MAP_SIDE_COMBINE: bool = true;
            fn create_combiner(&self, v: u32) -> u64 {
                v.into()
            }
            fn merge_value(&self, c: &mut u64, v: u32) {
                *c += u64::from(v)
            }
            fn merge_combiners(&self, c: &mut u64, o: u64) {
                *c += o
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf {
            spill_threshold: 256 << 10,
            compress: false,
            ..ShuffleConf::default()
        };
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(4);
        let input = (0..100_000u32).map(|i| {
            (
                format!("w{}", crate::partitioner::mix64(i.into()) % 30_000),
                1u32,
            )
        });
        let sizes = write_combined(input, &part, &Count, 0, 0, dir.path(), &conf, &m).unwrap();
        assert!(m.disk_bytes_spilled.load(Relaxed) > 0);
        let mut got: std::collections::HashMap<String, u64> = Default::default();
        for p in 0..4 {
            let off: u64 = sizes[..p].iter().sum();
            let block: Vec<(String, u64)> =
                RecordReader::open(&data_file(dir.path(), 0, 0), off, sizes[p], conf.format())
                    .unwrap()
                    .collect::<io::Result<_>>()
                    .unwrap();
            for (k, c) in block {
                assert_eq!(Partitioner::<String>::partition(&part, &k), p);
                *got.entry(k).or_default() += c;
            }
        }
        assert_eq!(got.values().sum::<u64>(), 100_000);
        assert!(got.len() > 25_000);
    }

    #[test]
    fn lent_string_keys_of_every_length_with_heap_combiners() {
        // Combiners own heap data (the inline table samples their size) and keys cross the
        // inline size; a small threshold makes the lent path spill too.
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct Collect;
        impl Aggregator<String, u32, Vec<u32>> for Collect {
            const MAP_SIDE_COMBINE: bool = true;
            fn create_combiner(&self, v: u32) -> Vec<u32> {
                vec![v]
            }
            fn merge_value(&self, c: &mut Vec<u32>, v: u32) {
                c.push(v)
            }
            fn merge_combiners(&self, c: &mut Vec<u32>, o: Vec<u32>) {
                c.extend(o)
            }
        }
        /// The words with their positions, keys lent as `&str` or given as `String`s.
        struct Words<'a> {
            words: &'a [String],
            lent: bool,
        }
        impl PairSource<String, u32> for Words<'_> {
            fn feed<S: PairSink<String, u32>>(self, sink: &mut S) -> Result<()> {
                for (i, w) in self.words.iter().enumerate() {
                    if self.lent {
                        sink.str_pair(w, i as u32)?;
                    } else {
                        sink.pair(w.clone(), i as u32)?;
                    }
                }
                Ok(())
            }
        }
        let words: Vec<String> = (0..2_000u32)
            .map(|i| "k".repeat(1 + (i % 40) as usize) + &(i % 500).to_string())
            .collect();
        for (threshold, lent) in [(1u64 << 30, true), (64 << 10, true), (64 << 10, false)] {
            let dir = tempfile::tempdir().unwrap();
            let conf = ShuffleConf {
                spill_threshold: threshold,
                compress: false,
                ..ShuffleConf::default()
            };
            let m = TaskMetrics::default();
            let part = HashPartitioner::new(3);
            let sizes = write_combined_from(
                Words {
                    words: &words,
                    lent,
                },
                &part,
                &Collect,
                0,
                0,
                dir.path(),
                &conf,
                &m,
            )
            .unwrap();
            assert_eq!(m.disk_bytes_spilled.load(Relaxed) > 0, threshold < 1 << 30);
            let mut got: std::collections::HashMap<String, Vec<u32>> = Default::default();
            for p in 0..3 {
                let off: u64 = sizes[..p].iter().sum();
                let block: Vec<(String, Vec<u32>)> =
                    RecordReader::open(&data_file(dir.path(), 0, 0), off, sizes[p], conf.format())
                        .unwrap()
                        .collect::<io::Result<_>>()
                        .unwrap();
                for (k, c) in block {
                    assert_eq!(Partitioner::<String>::partition(&part, &k), p);
                    got.entry(k).or_default().extend(c);
                }
            }
            let mut expect: std::collections::HashMap<String, Vec<u32>> = Default::default();
            for (i, w) in words.iter().enumerate() {
                expect.entry(w.clone()).or_default().push(i as u32);
            }
            for v in got.values_mut() {
                v.sort();
            }
            assert_eq!(got, expect, "threshold {threshold}, lent {lent}");
        }
    }

    #[test]
    fn two_attempts_of_a_map_partition_keep_separate_outputs() {
        // Attempts 7 and 8 of one map partition, say before and after an indeterminate stage
        // was rolled back: each output stays as its attempt wrote it.
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf::default();
        let m = TaskMetrics::default();
        let part = HashPartitioner::new(4);
        let first = write_records(
            (0..1000u64).map(|i| (i, i)),
            &part,
            0,
            7,
            dir.path(),
            &conf,
            &m,
        )
        .unwrap();
        let second = write_records(
            (0..10u64).map(|i| (i, i)),
            &part,
            0,
            8,
            dir.path(),
            &conf,
            &m,
        )
        .unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);
        for (map_id, sizes) in [(7, &first), (8, &second)] {
            let index = fs::read(index_file(dir.path(), 0, map_id)).unwrap();
            let data_len = fs::metadata(data_file(dir.path(), 0, map_id)).unwrap().len();
            assert_eq!(
                crate::shuffle::block_resolver::consistent_sizes(&index, 4, data_len).as_ref(),
                Some(sizes)
            );
        }
    }

    #[test]
    fn failing_partitioner_leaves_no_files() {
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        struct Bad;
        impl Partitioner<u64> for Bad {
            fn num_partitions(&self) -> usize {
                2
            }
            fn partition(&self, k: &u64) -> usize {
                *k as usize
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = ShuffleConf {
            spill_threshold: 64,
            ..ShuffleConf::default()
        };
        let m = TaskMetrics::default();
        let err = write_records(
            (0..100u64).map(|i| (i % 3, i)),
            &Bad,
            0,
            0,
            dir.path(),
            &conf,
            &m,
        )
        .unwrap_err();
        assert!(err.to_string().contains("partition 2"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
