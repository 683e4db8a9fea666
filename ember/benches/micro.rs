//! Micro-benchmarks of the engine's inner loops, below the job level of `ember-bench`:
//!
//! - `shuffle_combine`: one W4 map task's worth of data (2.5 M `(u64, u64)` pairs, 1 M distinct
//!   keys) written with map-side combining into 8 reduce partitions, then read back and aggregated,
//!   as a `reduce_by_key` map and reduce task do;
//! - `line_reader`: splitting a 64 MiB text file into lines with the `text_file` reader.
//!
//! Run with `cargo bench -p ember --bench micro` (release profile). Every file is created in a
//! temporary directory that is removed when the benchmark ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember::aggregator::Aggregator;
use ember::io::text_input::{compute_splits, LineReader};
use ember::partitioner::HashPartitioner;
use ember::shuffle::external_aggregator::ExternalAggregator;
use ember::shuffle::reader::read_partition_from;
use ember::shuffle::sort_writer::write_combined;
use ember::shuffle::ShuffleConf;
use ember::task::{BlockManagerId, MapOutputSource, MapStatus, ShuffleId, TaskMetrics};
use serde::{Deserialize, Serialize};

fn main() {
    divan::main();
}

/// `reduce_by_key(|a, b| a + b)`'s aggregator.
#[derive(Clone, Serialize, Deserialize)]
struct Sum;

impl Aggregator<u64, u64, u64> for Sum {
    const MAP_SIDE_COMBINE: bool = true;
    fn create_combiner(&self, v: u64) -> u64 {
        v
    }
    fn merge_value(&self, c: &mut u64, v: u64) {
        *c = c.wrapping_add(v)
    }
    fn merge_combiners(&self, c: &mut u64, o: u64) {
        *c = c.wrapping_add(o)
    }
}

const EXECUTOR: &str = "exec-1";

/// The map output of one task, as the driver's tracker would answer for it.
struct OneMapOutput(Arc<Vec<Option<MapStatus>>>);

impl MapOutputSource for OneMapOutput {
    fn map_statuses(&self, _: ShuffleId) -> ember::Result<Arc<Vec<Option<MapStatus>>>> {
        Ok(self.0.clone())
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[divan::bench(sample_count = 5)]
fn shuffle_combine(bencher: divan::Bencher) {
    const RECORDS: u64 = 2_500_000;
    const REDUCERS: usize = 8;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let conf = ShuffleConf::default();
    let partitioner = HashPartitioner::new(REDUCERS);
    bencher
        .counter(divan::counter::ItemsCount::new(RECORDS))
        .bench_local(|| {
            let metrics = TaskMetrics::default();
            let records = (0..RECORDS).map(|i| (splitmix64(i) % 1_000_000, i));
            let sizes = write_combined(
                records,
                &partitioner,
                &Sum,
                0,
                0,
                dir.path(),
                &conf,
                &metrics,
            )
            .expect("the map output is written");
            let location = BlockManagerId {
                executor_id: EXECUTOR.into(),
                host: "localhost".into(),
                port: 0,
            };
            let outputs = OneMapOutput(Arc::new(vec![Some(MapStatus {
                location,
                map_index: 0,
                map_id: 0,
                sizes,
            })]));
            let mut total = 0u64;
            for reducer in 0..REDUCERS {
                let mut agg = ExternalAggregator::new(Sum, &conf, dir.path());
                let read = read_partition_from::<(u64, u64)>(
                    &outputs,
                    EXECUTOR,
                    dir.path(),
                    conf.format(),
                    &metrics,
                    0,
                    reducer,
                );
                for (k, c) in read.metered(&metrics) {
                    agg.insert_combiner(k, c, &metrics);
                }
                total = agg.into_iter().fold(total, |t, (_, c)| t.wrapping_add(c));
            }
            assert_eq!(total, (0..RECORDS).fold(0u64, u64::wrapping_add));
        });
}

/// Writes about `bytes` of word-count-like text to `dir/input.txt`.
fn text_file(dir: &Path, bytes: u64) -> PathBuf {
    let path = dir.join("input.txt");
    let file = std::fs::File::create(&path).expect("the input file is created");
    let mut w = std::io::BufWriter::new(file);
    let (mut written, mut i) = (0u64, 0u64);
    while written < bytes {
        let n = i.wrapping_mul(2_654_435_761) % 100_000;
        let line =
            format!("{i} the quick brown fox jumps over the lazy dog {n} lorem ipsum dolor\n");
        w.write_all(line.as_bytes())
            .expect("the input file is written");
        written += line.len() as u64;
        i += 1;
    }
    w.flush().expect("the input file is written");
    path
}

#[divan::bench(sample_count = 5)]
fn line_reader(bencher: divan::Bencher) {
    const BYTES: u64 = 64 << 20;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files = vec![text_file(dir.path(), BYTES)];
    let splits = compute_splits(&files, 4).expect("the file is split");
    bencher
        .counter(divan::counter::BytesCount::new(BYTES))
        .bench_local(|| {
            let mut lines = 0u64;
            for split in splits.clone() {
                let reader = LineReader::try_open(split).expect("the split opens");
                lines += reader.count() as u64;
            }
            divan::black_box(lines)
        });
}
