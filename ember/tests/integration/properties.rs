//! Property tests: shuffle operators and sorting on random inputs agree with plain Rust.

use std::collections::BTreeMap;

use crate::common::{context, sorted};
use ember::prelude::*;
use proptest::prelude::*;

/// Each case runs embedded or on two executor processes.
fn master(cluster: bool) -> &'static str {
    if cluster {
        "local-cluster[2,1,1024]"
    } else {
        "local[2]"
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reduce_group_and_sort_by_key(
        pairs in prop::collection::vec((0u16..50, -1000i32..1000), 0..300),
        maps in 1usize..6,
        reduces in 1usize..6,
        cluster in any::<bool>()
    ) {
        let ctx = context(master(cluster), &[("ember.shuffle.spill.threshold", "2k")]);
        let rdd = ctx.parallelize(pairs.clone(), maps);
        let mut expect: BTreeMap<u16, Vec<i32>> = BTreeMap::new();
        for (k, v) in &pairs {
            expect.entry(*k).or_default().push(*v);
        }
        let sums: Vec<(u16, i64)> = expect
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|x| *x as i64).sum()))
            .collect();
        let got = rdd
            .clone()
            .map_values(|v| v as i64)
            .reduce_by_key(|a, b| a + b, reduces)
            .collect()
            .unwrap();
        prop_assert_eq!(sorted(&got), sums);
        let groups = rdd
            .clone()
            .group_by_key(reduces)
            .map_values(|mut v| {
                v.sort();
                v
            })
            .collect()
            .unwrap();
        let expect_groups: Vec<(u16, Vec<i32>)> =
            expect.iter().map(|(k, v)| (*k, sorted(v))).collect();
        prop_assert_eq!(sorted(&groups), expect_groups);
        let by_key = rdd
            .clone()
            .sort_by_key(SortOrder::Ascending, reduces)
            .unwrap()
            .keys()
            .collect()
            .unwrap();
        prop_assert_eq!(by_key, sorted(&pairs.iter().map(|(k, _)| *k).collect::<Vec<_>>()));
        let desc = rdd
            .clone()
            .sort_by_key(SortOrder::Descending, reduces)
            .unwrap()
            .keys()
            .collect()
            .unwrap();
        let mut d = pairs.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        d.sort_by(|a, b| b.cmp(a));
        prop_assert_eq!(desc, d);
        ctx.stop();
    }

    #[test]
    fn joins_and_distinct(
        a in prop::collection::vec((0u8..20, any::<u16>()), 0..80),
        b in prop::collection::vec((0u8..20, any::<u16>()), 0..80),
        parts in 1usize..5,
        cluster in any::<bool>()
    ) {
        let ctx = context(master(cluster), &[]);
        let ra = ctx.parallelize(a.clone(), parts);
        let rb = ctx.parallelize(b.clone(), 2);
        let mut expect = Vec::new();
        for (ka, va) in &a {
            for (kb, vb) in &b {
                if ka == kb {
                    expect.push((*ka, (*va, *vb)));
                }
            }
        }
        prop_assert_eq!(
            sorted(&ra.clone().join(rb.clone(), parts).collect().unwrap()),
            sorted(&expect)
        );
        let full = ra.clone().full_outer_join(rb.clone(), parts).count().unwrap() as usize;
        let only_a = a.iter().filter(|(k, _)| !b.iter().any(|(kb, _)| kb == k)).count();
        let only_b = b.iter().filter(|(k, _)| !a.iter().any(|(ka, _)| ka == k)).count();
        prop_assert_eq!(full, expect.len() + only_a + only_b);
        let mut d: Vec<u8> = a.iter().map(|(k, _)| *k).collect();
        d.sort();
        d.dedup();
        prop_assert_eq!(sorted(&ra.keys().distinct(parts).collect().unwrap()), d);
        ctx.stop();
    }

    #[test]
    fn partitioning_preserves_every_element(
        data in prop::collection::vec(any::<u32>(), 0..500),
        from in 1usize..8,
        to in 1usize..8
    ) {
        let ctx = context("local[2]", &[]);
        let rdd = ctx.parallelize(data.clone(), from);
        prop_assert_eq!(sorted(&rdd.clone().repartition(to).collect().unwrap()), sorted(&data));
        prop_assert_eq!(rdd.clone().coalesce(to).collect().unwrap(), data.clone());
        let hashed = rdd
            .map(|x| (x, ()))
            .partition_by(HashPartitioner::new(to))
            .keys()
            .collect()
            .unwrap();
        prop_assert_eq!(sorted(&hashed), sorted(&data));
        ctx.stop();
    }
}
