//! Accumulators and task metrics: totals are exact whatever attempts fail, and the metrics of a
//! word count are what its data implies.

use std::collections::HashSet;

use crate::common::{context, for_each_master, is_cluster};
use ember::accumulator::{AccumulatorValue, Collection};
use ember::prelude::*;

/// The masters of the suite, with retries allowed in local mode (`local[N,F]`).
fn retrying_masters() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("local[2,4]", vec![]),
        ("local[3,4]", vec![("ember.test.serializeLocal", "true")]),
        ("local-cluster[2,1,1024]", vec![]),
    ]
}

fn attempt() -> u32 {
    TaskContext::current()
        .map(|c| c.attempt_number)
        .unwrap_or(0)
}

#[test]
fn long_double_and_collection_accumulators_in_every_mode() {
    for_each_master(|ctx, master| {
        let n = ctx.long_accumulator("elements");
        let total = ctx.double_accumulator("halves");
        let odd = ctx.collection_accumulator::<u32>("odd below 10");
        ctx.parallelize((0..1000u32).collect(), 7)
            .foreach(func!(|x| {
                n.add(1);
                total.add(x as f64 / 2.0);
                if x < 10 && x % 2 == 1 {
                    odd.add(x);
                }
            }))
            .unwrap();
        assert_eq!(n.value(), 1000, "{master}");
        assert_eq!(n.count(), 1000, "{master}");
        assert_eq!(
            total.value(),
            (0..1000).map(|x| x as f64 / 2.0).sum::<f64>(),
            "{master}"
        );
        let mut got = odd.value();
        got.sort();
        assert_eq!(got, vec![1, 3, 5, 7, 9], "{master}");
        // Added on the driver: straight into the value.
        n.add(5);
        assert_eq!(n.value(), 1005);
        let infos = ctx.accumulables();
        assert!(
            infos
                .iter()
                .any(|i| i.name == "elements" && i.value.contains("sum: 1000")),
            "{master}: {infos:?}"
        );
    });
}

#[test]
fn failed_attempts_never_add_and_retries_add_once() {
    for (master, extra) in retrying_masters() {
        let ctx = context(master, &extra);
        let acc = ctx.long_accumulator("seen");
        // Every task adds for each element, then its first attempt fails: only the second
        // attempt's additions count.
        let count = ctx
            .parallelize((0..100u64).collect(), 5)
            .map(func!(|x| {
                acc.add(1);
                x
            }))
            .map_partitions(|it| {
                let v: Vec<u64> = it.collect();
                assert!(attempt() >= 1, "flaky first attempt");
                v.into_iter()
            })
            .count()
            .unwrap();
        assert_eq!(count, 100);
        assert_eq!(acc.value(), 100, "{master}");
        assert_eq!(ctx.status().failed_tasks, 5, "{master}");

        // The same in a shuffle map stage, whose reduce side fails once too.
        let map_side = ctx.long_accumulator("map side");
        let reduce_side = ctx.long_accumulator("reduce side");
        let sums = ctx
            .parallelize((0..100u64).collect(), 4)
            .map(func!(|x| {
                map_side.add(1);
                assert!(attempt() >= 1 || x % 25 != 24, "flaky map attempt");
                (x % 10, x)
            }))
            .reduce_by_key(|a, b| a + b, 3)
            .map(func!(|kv| {
                reduce_side.add(1);
                assert!(attempt() >= 1, "flaky reduce attempt");
                kv
            }))
            .collect()
            .unwrap();
        assert_eq!(sums.len(), 10);
        assert_eq!(map_side.value(), 100, "{master}");
        assert_eq!(reduce_side.value(), 10, "{master}");
        ctx.stop();
    }
}

#[test]
fn a_user_defined_accumulator() {
    #[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
    struct Longest(String);
    impl AccumulatorValue for Longest {
        type In = String;
        type Out = String;
        fn zero(&self) -> Self {
            Longest::default()
        }
        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }
        fn add(&mut self, v: String) {
            if v.len() > self.0.len() || (v.len() == self.0.len() && v > self.0) {
                self.0 = v;
            }
        }
        fn merge(&mut self, other: &Self) {
            self.add(other.0.clone());
        }
        fn value(&self) -> String {
            self.0.clone()
        }
    }
    for_each_master(|ctx, master| {
        let longest = ctx.accumulator(Longest::default(), Some("longest"));
        let words = ["a", "bb", "ccc", "dddd", "ee", "zzzz"]
            .map(String::from)
            .to_vec();
        ctx.parallelize(words, 3)
            .foreach(func!(|w| longest.add(w)))
            .unwrap();
        assert_eq!(longest.value(), "zzzz", "{master}");
        let c: ember::accumulator::Accumulator<Collection<u8>> =
            ctx.accumulator(Collection::default(), None);
        assert!(c.value().is_empty());
    });
}

#[test]
fn word_count_metrics_match_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("words.txt");
    let lines: Vec<String> = (0..500)
        .map(|i| format!("w{} w{} common", i % 37, i % 11))
        .collect();
    let text = lines.join("\n") + "\n";
    std::fs::write(&path, &text).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let distinct: HashSet<&str> = words.iter().copied().collect();

    for_each_master(|ctx, master| {
        let before = ctx.status().metrics;
        let counts = ctx
            .text_file(path.to_str().unwrap(), 1)
            .unwrap()
            .flat_map(|l: String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b, 2)
            .collect()
            .unwrap();
        assert_eq!(counts.len(), distinct.len());
        let mut m = ctx.status().metrics;
        m.input_records_read -= before.input_records_read;
        m.input_bytes_read -= before.input_bytes_read;
        m.shuffle_records_written -= before.shuffle_records_written;
        m.shuffle_records_read -= before.shuffle_records_read;
        m.shuffle_bytes_written -= before.shuffle_bytes_written;
        let read_bytes = m.shuffle_local_bytes_read + m.shuffle_remote_bytes_read
            - before.shuffle_local_bytes_read
            - before.shuffle_remote_bytes_read;
        assert_eq!(m.input_records_read, lines.len() as u64, "{master}");
        assert_eq!(m.input_bytes_read, text.len() as u64, "{master}");
        // One map partition with map-side combine: one record per distinct word.
        assert_eq!(m.shuffle_records_written, distinct.len() as u64, "{master}");
        assert_eq!(m.shuffle_records_read, distinct.len() as u64, "{master}");
        assert!(m.shuffle_bytes_written > 0, "{master}");
        assert_eq!(
            read_bytes, m.shuffle_bytes_written,
            "{master}: every byte written is read once"
        );
        if is_cluster(master) {
            assert!(m.result_size > 0, "{master}: results are serialized");
        }
        // Per stage: the map stage read the input and wrote the shuffle, the result stage read it.
        let st = ctx.status();
        let (map_stage, result_stage) = {
            let mut ids: Vec<_> = st.stage_metrics.keys().copied().collect();
            ids.sort();
            (ids[ids.len() - 2], ids[ids.len() - 1])
        };
        assert_eq!(
            st.stage_metrics[&map_stage].input_records_read,
            lines.len() as u64,
            "{master}"
        );
        assert_eq!(
            st.stage_metrics[&map_stage].shuffle_records_written,
            distinct.len() as u64,
            "{master}"
        );
        assert_eq!(
            st.stage_metrics[&result_stage].shuffle_records_read,
            distinct.len() as u64,
            "{master}"
        );
        assert_eq!(
            st.stage_metrics[&result_stage].input_records_read, 0,
            "{master}"
        );
    });
}

/// An accumulator whose `merge` always panics (Spark's misbehaved accumulator).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Explosive(u64);

impl AccumulatorValue for Explosive {
    type In = u64;
    type Out = u64;
    fn zero(&self) -> Self {
        Explosive(0)
    }
    fn is_zero(&self) -> bool {
        self.0 == 0
    }
    fn add(&mut self, v: u64) {
        self.0 += v;
    }
    fn merge(&mut self, _other: &Self) {
        panic!("this accumulator cannot merge");
    }
    fn value(&self) -> u64 {
        self.0
    }
}

/// DAGSchedulerSuite's "misbehaved accumulator should not crash DAGScheduler and SparkContext"
/// and "... should not impact other accumulators": the failing update is dropped (and logged)
/// on the scheduler's thread, the job succeeds, the good accumulator is exact, and the context
/// runs the next job.
#[test]
fn a_panicking_accumulator_merge_drops_its_update_only() {
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        let ctx = context(master, &[]);
        let bad = ctx.accumulator(Explosive(0), Some("explosive"));
        let good = ctx.long_accumulator("good");
        // The accumulators travel in the data: the closure captures nothing.
        let data: Vec<_> = (0..10u64).map(|i| (bad.clone(), good.clone(), i)).collect();
        ctx.parallelize(data, 2)
            .foreach(|(bad, good, _)| {
                bad.add(1);
                good.add(1);
            })
            .unwrap_or_else(|e| panic!("{master}: {e}"));
        assert_eq!(good.value(), 10, "{master}");
        assert_eq!(
            bad.value(),
            0,
            "{master}: the panicking merges changed nothing"
        );
        assert_eq!(
            ctx.parallelize((0..10u32).collect(), 2).count().unwrap(),
            10,
            "{master}"
        );
        ctx.stop();
    }
}
