//! Shuffles larger than the memory budget complete correctly by spilling to disk.

use std::collections::HashMap;

use crate::common::context;
use ember::prelude::*;

#[test]
fn aggregation_sort_and_join_spill_past_a_small_budget() {
    for (master, serialize) in [
        ("local[2]", "false"),
        ("local[3]", "true"),
        ("local-cluster[2,1,1024]", "false"),
    ] {
        let ctx = context(
            master,
            &[
                ("ember.shuffle.spill.threshold", "16k"),
                ("ember.test.serializeLocal", serialize),
            ],
        );
        let n = 60_000u64;
        let data = ctx.parallelize((0..n).collect(), 6);
        let before = ctx.status().metrics;

        let sums = data
            .clone()
            .map(|x| (x % 5000, x))
            .reduce_by_key(|a, b| a + b, 4)
            .collect_as_map()
            .unwrap();
        let mut expect: HashMap<u64, u64> = HashMap::new();
        for x in 0..n {
            *expect.entry(x % 5000).or_default() += x;
        }
        assert_eq!(sums, expect);

        let groups = data
            .clone()
            .map(|x| (x % 3000, x))
            .group_by_key(3)
            .map_values(|v| v.len())
            .collect()
            .unwrap();
        assert_eq!(groups.len(), 3000);
        assert!(groups.iter().all(|(_, n)| *n == 20));

        let sorted_keys = data
            .clone()
            .map(|x| ((x * 2_654_435_761) % 100_003, x))
            .sort_by_key(SortOrder::Ascending, 5)
            .unwrap()
            .keys()
            .collect()
            .unwrap();
        assert!(sorted_keys.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(sorted_keys.len() as u64, n);

        let left = data.clone().map(|x| (x % 10_000, x));
        let right = ctx
            .parallelize((0..10_000u64).collect(), 3)
            .map(|x| (x, x * 3));
        assert_eq!(left.join(right, 4).count().unwrap(), n);

        let after = ctx.status().metrics;
        assert!(
            after.disk_bytes_spilled > before.disk_bytes_spilled,
            "{master}: nothing spilled: {after:?}"
        );
        assert!(after.memory_bytes_spilled > before.memory_bytes_spilled);
        ctx.stop();
    }
}

/// A line's words with a count of one, lent from the line.
fn lent_words(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    line.split_whitespace().map(|w| (w, 1))
}

#[test]
fn string_key_combine_spills_with_lent_and_owned_keys() {
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        let ctx = context(master, &[("ember.shuffle.spill.threshold", "16k")]);
        // 4,000 distinct words, a tenth of them longer than the inline key size.
        let lines: Vec<String> = (0..6_000u64)
            .map(|i| {
                (0..8u64)
                    .map(|j| {
                        let k = (i * 8 + j) * 2_654_435_761 % 4_000;
                        if k % 10 == 0 {
                            format!("long-word-past-the-inline-size-{k}")
                        } else {
                            format!("w{k}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let mut expect: HashMap<String, u64> = HashMap::new();
        for w in lines.iter().flat_map(|l| l.split_whitespace()) {
            *expect.entry(w.to_string()).or_default() += 1;
        }
        let rdd = ctx.parallelize(lines, 6);
        let before = ctx.status().metrics;
        let lent = rdd
            .clone()
            .flat_map_ref(lent_words)
            .reduce_by_key(|a, b| a + b, 4)
            .collect_as_map()
            .unwrap();
        assert_eq!(lent, expect, "{master}");
        let mid = ctx.status().metrics;
        assert!(
            mid.disk_bytes_spilled > before.disk_bytes_spilled,
            "{master}: lent keys did not spill: {mid:?}"
        );
        let owned = rdd
            .flat_map(|l: String| {
                l.split_whitespace()
                    .map(|w| (w.to_string(), 1u64))
                    .collect::<Vec<_>>()
            })
            .reduce_by_key(|a, b| a + b, 4)
            .collect_as_map()
            .unwrap();
        assert_eq!(owned, expect, "{master}");
        assert!(
            ctx.status().metrics.disk_bytes_spilled > mid.disk_bytes_spilled,
            "{master}: owned keys did not spill"
        );
        ctx.stop();
    }
}
