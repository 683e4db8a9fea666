//! Every operator and action against a plain-Rust computation of the same thing, on every master.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::common::{for_each_master, is_cluster, sorted};
use ember::prelude::*;

fn words() -> Vec<String> {
    (0..500u64)
        .map(|i| format!("w{}", (i * 7919) % 37))
        .collect()
}

fn pairs() -> Vec<(u32, i64)> {
    (0..400u32)
        .map(|i| ((i * 31) % 23, i as i64 - 100))
        .collect()
}

#[test]
fn sources_and_narrow_transformations() {
    for_each_master(|ctx, m| {
        let data: Vec<u64> = (0..1000).collect();
        let rdd = ctx.parallelize(data.clone(), 7);
        assert_eq!(rdd.num_partitions(), 7);
        assert_eq!(rdd.collect().unwrap(), data, "{m}");
        assert_eq!(
            rdd.clone().map(|x| x * 2).collect().unwrap(),
            data.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        assert_eq!(
            rdd.clone()
                .map(func!([k = 3u64] | x | x * k))
                .collect()
                .unwrap(),
            data.iter().map(|x| x * 3).collect::<Vec<_>>()
        );
        assert_eq!(
            rdd.clone().filter(|x| x % 3 == 0).collect().unwrap(),
            data.iter()
                .copied()
                .filter(|x| x % 3 == 0)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            rdd.clone()
                .filter(func!([k = 5u64] | x | x % k == 0))
                .count()
                .unwrap(),
            200
        );
        assert_eq!(
            rdd.clone()
                .flat_map(|x| vec![x; (x % 3) as usize])
                .collect()
                .unwrap(),
            data.iter()
                .flat_map(|&x| vec![x; (x % 3) as usize])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            rdd.clone()
                .flat_map(func!([n = 2usize] | x | vec![x; n]))
                .count()
                .unwrap(),
            2000
        );
        let sums = rdd
            .clone()
            .map_partitions(|it| std::iter::once(it.sum::<u64>()))
            .collect()
            .unwrap();
        assert_eq!(sums.len(), 7);
        assert_eq!(sums.iter().sum::<u64>(), data.iter().sum::<u64>());
        let idx = rdd
            .clone()
            .map_partitions_with_index(|i, it| it.map(move |x| (i, x)))
            .collect()
            .unwrap();
        assert!(idx.windows(2).all(|w| w[0].0 <= w[1].0));
        // The returned iterator owns what it needs: `k` is `Copy`, so it is the value itself.
        let with = rdd
            .clone()
            .map_partitions(func!([k = 10u64] | it | it.map(move |x| x * k)));
        assert_eq!(
            with.collect().unwrap(),
            data.iter().map(|x| x * 10).collect::<Vec<_>>()
        );
        let tagged = rdd.clone().map_partitions_with_index(func!(
            [k = 100u64] | i,
            it | {
                let base = k * i as u64;
                it.take(1).map(move |x| base + x)
            }
        ));
        assert_eq!(tagged.count().unwrap(), 7);
        let glom = rdd.clone().glom().collect().unwrap();
        assert_eq!(glom.len(), 7);
        assert_eq!(glom.concat(), data);
        assert_eq!(
            rdd.clone().key_by(|x| x % 10).collect().unwrap(),
            data.iter().map(|x| (x % 10, *x)).collect::<Vec<_>>()
        );
        assert_eq!(
            rdd.clone()
                .key_by(func!([k = 4u64] | x | x % k))
                .count()
                .unwrap(),
            1000
        );
        let zipped = rdd
            .clone()
            .filter(|x| x % 2 == 1)
            .zip_with_index()
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(
            zipped,
            data.iter()
                .copied()
                .filter(|x| x % 2 == 1)
                .zip(0u64..)
                .collect::<Vec<_>>()
        );
        let u = rdd.clone().union(ctx.parallelize(vec![5000u64, 5001], 2));
        assert_eq!(u.num_partitions(), 9);
        assert_eq!(u.count().unwrap(), 1002);
        let all = ctx.union(vec![
            ctx.parallelize(vec![1u8], 1),
            ctx.parallelize(vec![2u8, 3], 2),
        ]);
        assert_eq!(all.collect().unwrap(), vec![1, 2, 3]);
        let co = rdd.clone().coalesce(3);
        assert_eq!(co.num_partitions(), 3);
        assert_eq!(co.collect().unwrap(), data);
        let re = rdd.clone().repartition(4);
        assert_eq!(re.num_partitions(), 4);
        assert_eq!(sorted(&re.collect().unwrap()), data);
        let parts = re.glom().collect().unwrap();
        assert!(
            parts.iter().all(|p| p.len() > 150),
            "repartition balances: {:?}",
            parts.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(
            ctx.range(0, 100, 3, 4).collect().unwrap(),
            (0..100).step_by(3).collect::<Vec<i64>>()
        );
        assert_eq!(
            ctx.range(10, 0, -2, 3).collect().unwrap(),
            vec![10, 8, 6, 4, 2]
        );
        assert_eq!(ctx.parallelize(Vec::<u8>::new(), 3).count().unwrap(), 0);
    });
}

#[test]
fn sample_is_deterministic_and_about_right() {
    for_each_master(|ctx, _| {
        let rdd = ctx.parallelize((0..10_000u32).collect(), 4);
        let a = rdd
            .clone()
            .sample(Sampling::WithoutReplacement, 0.1, 7)
            .collect()
            .unwrap();
        let b = rdd
            .clone()
            .sample(Sampling::WithoutReplacement, 0.1, 7)
            .collect()
            .unwrap();
        assert_eq!(a, b);
        assert!((800..1200).contains(&a.len()), "{}", a.len());
        let w = rdd
            .clone()
            .sample(Sampling::WithReplacement, 0.5, 3)
            .count()
            .unwrap();
        assert!((4000..6000).contains(&w), "{w}");
    });
}

#[test]
fn key_value_shuffles_match_plain_rust() {
    for_each_master(|ctx, m| {
        let p = pairs();
        let rdd = ctx.parallelize(p.clone(), 5);
        let mut sums: BTreeMap<u32, i64> = BTreeMap::new();
        let mut groups: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for (k, v) in &p {
            *sums.entry(*k).or_default() += v;
            groups.entry(*k).or_default().push(*v);
        }
        let expect_sums: Vec<(u32, i64)> = sums.clone().into_iter().collect();
        assert_eq!(
            sorted(
                &rdd.clone()
                    .reduce_by_key(|a, b| a + b, 3)
                    .collect()
                    .unwrap()
            ),
            expect_sums,
            "{m}"
        );
        assert_eq!(
            sorted(
                &rdd.clone()
                    .reduce_by_key(|a, b| a + b, None)
                    .collect()
                    .unwrap()
            ),
            expect_sums
        );
        assert_eq!(
            sorted(
                &rdd.clone()
                    .reduce_by_key(func!([k = 2i64] | a, b | a + b * k), 4)
                    .collect()
                    .unwrap()
            )
            .len(),
            23
        );
        assert_eq!(
            sorted(
                &rdd.clone()
                    .fold_by_key(0, |a, b| a + b, 2)
                    .collect()
                    .unwrap()
            ),
            expect_sums
        );
        let agg = rdd
            .clone()
            .aggregate_by_key(
                (0i64, 0u32),
                |(s, n), v| (s + v, n + 1),
                |(s1, n1), (s2, n2)| (s1 + s2, n1 + n2),
                4,
            )
            .collect()
            .unwrap();
        assert_eq!(
            sorted(&agg.iter().map(|(k, (s, _))| (*k, *s)).collect::<Vec<_>>()),
            expect_sums
        );
        assert_eq!(
            agg.iter().map(|(_, (_, n))| *n as usize).sum::<usize>(),
            p.len()
        );
        let comb = rdd
            .clone()
            .combine_by_key(
                |v| vec![v],
                |c: &mut Vec<i64>, v| c.push(v),
                |c: &mut Vec<i64>, o| c.extend(o),
                3,
            )
            .map_values(|mut v| {
                v.sort();
                v
            })
            .collect()
            .unwrap();
        let grouped = rdd.clone().group_by_key(6).map_values(|mut v| {
            v.sort();
            v
        });
        let expect_groups: Vec<(u32, Vec<i64>)> = groups
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v)
            })
            .collect();
        assert_eq!(sorted(&comb), expect_groups);
        assert_eq!(sorted(&grouped.collect().unwrap()), expect_groups);
        let counts = rdd.clone().count_by_key().unwrap();
        assert_eq!(counts.values().sum::<u64>(), 400);
        assert_eq!(counts[&0], p.iter().filter(|(k, _)| *k == 0).count() as u64);
        let hashed = rdd.clone().partition_by(HashPartitioner::new(4));
        assert_eq!(hashed.num_partitions(), 4);
        let parts = hashed.clone().glom().collect().unwrap();
        for part in &parts {
            let keys: std::collections::HashSet<u32> = part.iter().map(|(k, _)| *k).collect();
            for other in &parts {
                if !std::ptr::eq(part, other) {
                    assert!(
                        other.iter().all(|(k, _)| !keys.contains(k)),
                        "a key is in two partitions"
                    );
                }
            }
        }
        assert_eq!(
            sorted(&hashed.clone().lookup(5).unwrap()),
            sorted(
                &p.iter()
                    .filter(|(k, _)| *k == 5)
                    .map(|(_, v)| *v)
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(rdd.clone().lookup(99).unwrap(), Vec::<i64>::new());
        assert_eq!(
            sorted(&rdd.clone().keys().distinct(3).collect().unwrap()),
            (0..23).collect::<Vec<u32>>()
        );
        assert_eq!(rdd.clone().values().count().unwrap(), 400);
        let fm = rdd.clone().flat_map_values(|v| vec![v, v]).count().unwrap();
        assert_eq!(fm, 800);
        let fmw = rdd
            .clone()
            .flat_map_values(func!([n = 3usize] | v | vec![v; n]))
            .count()
            .unwrap();
        assert_eq!(fmw, 1200);
        assert_eq!(
            rdd.clone()
                .map_values(func!([k = 2i64] | v | v * k))
                .values()
                .reduce(|a, b| a + b)
                .unwrap(),
            2 * p.iter().map(|(_, v)| v).sum::<i64>()
        );
        let map = rdd
            .clone()
            .reduce_by_key(|a, b| a + b, 2)
            .collect_as_map()
            .unwrap();
        assert_eq!(map, sums.into_iter().collect::<HashMap<_, _>>());
    });
}

/// Words of a line with a count of one each, lent from the line (for `flat_map_ref`).
fn lent_words(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    line.split_whitespace().map(|w| (w, 1))
}

/// Lines of short words, long words (past the inline key size) and non-ASCII words.
fn text_lines() -> Vec<String> {
    (0..300u64)
        .map(|i| {
            let long = format!("a-word-longer-than-twenty-three-bytes-{}", i % 7);
            format!(
                "w{} {long}  é{}\tw{} {}",
                i % 13,
                i % 5,
                (i * 7) % 17,
                if i % 4 == 0 {
                    "ünïcödé-ünïcödé-ünïcödé"
                } else {
                    ""
                }
            )
        })
        .collect()
}

#[test]
fn flat_map_ref_matches_flat_map() {
    for_each_master(|ctx, m| {
        let lines = text_lines();
        let rdd = ctx.parallelize(lines.clone(), 4);
        let expect_words: Vec<String> = lines
            .iter()
            .flat_map(|l| l.split_whitespace().map(str::to_string))
            .collect();
        assert_eq!(
            rdd.clone()
                .flat_map_ref(str::split_whitespace)
                .collect()
                .unwrap(),
            expect_words,
            "{m}"
        );
        let mut expect: BTreeMap<String, u64> = BTreeMap::new();
        for w in &expect_words {
            *expect.entry(w.clone()).or_default() += 1;
        }
        let expect: Vec<(String, u64)> = expect.into_iter().collect();
        // Through the combining shuffle (lent keys), without map-side combine, and owned.
        assert_eq!(
            sorted(
                &rdd.clone()
                    .flat_map_ref(lent_words)
                    .reduce_by_key(|a, b| a + b, 3)
                    .collect()
                    .unwrap()
            ),
            expect,
            "{m}"
        );
        assert_eq!(
            sorted(
                &rdd.clone()
                    .flat_map_ref(lent_words)
                    .aggregate_by_key(0u64, |a, b| a + b, |a, b| a + b, 2)
                    .collect()
                    .unwrap()
            ),
            expect
        );
        let grouped = rdd
            .clone()
            .flat_map_ref(lent_words)
            .group_by_key(2)
            .map_values(|v| v.len() as u64)
            .collect()
            .unwrap();
        assert_eq!(sorted(&grouped), expect);
        let owned = rdd.clone().flat_map(|l: String| {
            l.split_whitespace()
                .map(|w| (w.to_string(), 1u64))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            sorted(&owned.reduce_by_key(|a, b| a + b, 3).collect().unwrap()),
            expect
        );
        // Persisted: later jobs read the cached owned pairs.
        let cached = rdd.clone().flat_map_ref(lent_words).cache();
        assert_eq!(cached.clone().count().unwrap(), expect_words.len() as u64);
        assert_eq!(
            sorted(&cached.reduce_by_key(|a, b| a + b, 2).collect().unwrap()),
            expect
        );
    });
}

#[test]
fn sorting() {
    for_each_master(|ctx, m| {
        let data: Vec<(u64, u32)> = (0..2000u32)
            .map(|i| ((i as u64 * 2654435761) % 1009, i))
            .collect();
        let rdd = ctx.parallelize(data.clone(), 6);
        let asc = rdd.clone().sort_by_key(SortOrder::Ascending, 4).unwrap();
        assert_eq!(asc.num_partitions(), 4);
        let got = asc.collect().unwrap();
        assert!(
            got.windows(2).all(|w| w[0].0 <= w[1].0),
            "{m}: ascending across partitions"
        );
        assert_eq!(sorted(&got), sorted(&data));
        let desc = rdd
            .clone()
            .sort_by_key(SortOrder::Descending, 3)
            .unwrap()
            .keys()
            .collect()
            .unwrap();
        assert!(desc.windows(2).all(|w| w[0] >= w[1]));
        let by = ctx
            .parallelize(words(), 4)
            .sort_by(|w: &String| w.len(), SortOrder::Ascending, 2)
            .unwrap()
            .collect()
            .unwrap();
        assert!(by.windows(2).all(|w| w[0].len() <= w[1].len()));
        assert_eq!(
            ctx.parallelize(vec![(3u8, 'a')], 1)
                .sort_by_key(SortOrder::Ascending, 1)
                .unwrap()
                .collect()
                .unwrap(),
            vec![(3, 'a')]
        );
        assert_eq!(
            ctx.parallelize(Vec::<(u8, u8)>::new(), 2)
                .sort_by_key(SortOrder::Ascending, 3)
                .unwrap()
                .count()
                .unwrap(),
            0
        );
    });
}

/// A join whose build side is past the cache-sized limit splits it into small tables and reads
/// the left side in several slices (`rdd/join.rs`); every match must still come out once.
#[test]
fn a_join_with_a_large_build_side_keeps_every_match() {
    for_each_master(|ctx, m| {
        // 200,000 right records (keys 0..100,000, each twice) in two partitions, so each
        // partition's build side is far past 1 MiB; 300,000 left records (keys 0..150,000, each
        // twice): each of the 200,000 left records of a key below 100,000 matches twice.
        let b: Vec<(u64, u64)> = (0..200_000u64).map(|i| (i % 100_000, i)).collect();
        let a: Vec<(u64, u64)> = (0..300_000u64).map(|i| (i % 150_000, i * 3)).collect();
        let fingerprint = |k: u64, v: u64, w: u64| {
            (k ^ v.rotate_left(21) ^ w.rotate_left(42)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        };
        let mut right: HashMap<u64, Vec<u64>> = HashMap::new();
        for (k, w) in &b {
            right.entry(*k).or_default().push(*w);
        }
        let (mut count, mut sum) = (0u64, 0u64);
        for (k, v) in &a {
            for w in right.get(k).into_iter().flatten() {
                count += 1;
                sum = sum.wrapping_add(fingerprint(*k, *v, *w));
            }
        }
        let joined = ctx.parallelize(a, 3).join(ctx.parallelize(b, 2), 2);
        let got = joined
            .map(move |(k, (v, w))| (1u64, fingerprint(k, v, w)))
            .fold((0, 0), |x, y| (x.0 + y.0, x.1.wrapping_add(y.1)))
            .unwrap();
        assert_eq!(got, (count, sum), "{m}");
        assert_eq!(count, 400_000, "{m}");
    });
}

#[test]
fn joins_and_cogroup() {
    for_each_master(|ctx, m| {
        let a: Vec<(u32, String)> = (0..60u32).map(|i| (i % 20, format!("a{i}"))).collect();
        let b: Vec<(u32, u64)> = (10..35u32).map(|i| (i, i as u64 * 10)).collect();
        let ra = ctx.parallelize(a.clone(), 4);
        let rb = ctx.parallelize(b.clone(), 3);
        let mut inner = Vec::new();
        for (ka, va) in &a {
            for (kb, vb) in &b {
                if ka == kb {
                    inner.push((*ka, (va.clone(), *vb)));
                }
            }
        }
        assert_eq!(
            sorted(&ra.clone().join(rb.clone(), 5).collect().unwrap()),
            sorted(&inner),
            "{m}"
        );
        let left = ra.clone().left_outer_join(rb.clone(), 2).collect().unwrap();
        assert_eq!(left.len(), 60);
        assert_eq!(left.iter().filter(|(_, (_, w))| w.is_none()).count(), 30);
        let right = ra
            .clone()
            .right_outer_join(rb.clone(), 2)
            .collect()
            .unwrap();
        assert_eq!(right.iter().filter(|(_, (v, _))| v.is_none()).count(), 15);
        assert_eq!(right.len(), 30 + 15);
        let full = ra
            .clone()
            .full_outer_join(rb.clone(), None)
            .collect()
            .unwrap();
        assert_eq!(full.len(), 30 + 30 + 15);
        let cg = ra.clone().cogroup(rb.clone(), 3).collect().unwrap();
        assert_eq!(cg.len(), 35);
        for (k, (vs, ws)) in cg {
            assert_eq!(vs.len(), a.iter().filter(|(ka, _)| *ka == k).count());
            assert_eq!(ws.len(), b.iter().filter(|(kb, _)| *kb == k).count());
        }
        // Co-partitioned inputs are joined without a new shuffle, and give the same answer.
        let pa = ra.clone().partition_by(HashPartitioner::new(4));
        let pb = rb.clone().partition_by(HashPartitioner::new(4));
        assert_eq!(sorted(&pa.join(pb, 4).collect().unwrap()), sorted(&inner));
    });
}

static SEEN: AtomicU64 = AtomicU64::new(0);

#[test]
fn actions_match_plain_rust() {
    for_each_master(|ctx, m| {
        let data: Vec<i64> = (0..1234).map(|i| (i * 7919) % 1000 - 500).collect();
        let rdd = ctx.parallelize(data.clone(), 9);
        assert_eq!(rdd.count().unwrap(), 1234, "{m}");
        assert_eq!(rdd.reduce(|a, b| a + b).unwrap(), data.iter().sum::<i64>());
        assert_eq!(
            rdd.reduce(func!([k = 1i64] | a, b | a + b * k)).unwrap(),
            data.iter().sum::<i64>()
        );
        assert_eq!(rdd.fold(0, |a, b| a + b).unwrap(), data.iter().sum::<i64>());
        assert_eq!(
            rdd.aggregate(
                (0i64, 0u64),
                |(s, n), x| (s + x, n + 1),
                |(a, b), (c, d)| (a + c, b + d)
            )
            .unwrap(),
            (data.iter().sum::<i64>(), 1234)
        );
        assert_eq!(rdd.take(5).unwrap(), data[..5].to_vec());
        assert_eq!(rdd.take(1000).unwrap(), data[..1000].to_vec());
        assert_eq!(rdd.take(5000).unwrap(), data);
        assert_eq!(rdd.take(0).unwrap(), Vec::<i64>::new());
        assert_eq!(rdd.first().unwrap(), data[0]);
        let mut desc = data.clone();
        desc.sort_by(|a, b| b.cmp(a));
        assert_eq!(rdd.top(7).unwrap(), desc[..7].to_vec());
        assert_eq!(rdd.take_ordered(7).unwrap(), sorted(&data)[..7].to_vec());
        let cbv = rdd.count_by_value().unwrap();
        assert_eq!(cbv.values().sum::<u64>(), 1234);
        assert_eq!(
            cbv[&data[0]],
            data.iter().filter(|x| **x == data[0]).count() as u64
        );
        if is_cluster(m) {
            // Side effects of foreach happen in the executor processes, as in Spark.
            rdd.foreach(|_| {}).unwrap();
            rdd.foreach_partition(func!([_k = 1u64] | it | drop(it)))
                .unwrap();
            return;
        }
        SEEN.store(0, Ordering::SeqCst);
        rdd.foreach(|x| {
            SEEN.fetch_add(x.unsigned_abs(), Ordering::SeqCst);
        })
        .unwrap();
        assert_eq!(
            SEEN.load(Ordering::SeqCst),
            data.iter().map(|x| x.unsigned_abs()).sum::<u64>()
        );
        SEEN.store(0, Ordering::SeqCst);
        rdd.foreach(func!(
            [k = 2u64] | _x | {
                SEEN.fetch_add(k, Ordering::SeqCst);
            }
        ))
        .unwrap();
        assert_eq!(SEEN.load(Ordering::SeqCst), 2468);
        SEEN.store(0, Ordering::SeqCst);
        rdd.foreach_partition(|it| {
            SEEN.fetch_add(it.count() as u64, Ordering::SeqCst);
        })
        .unwrap();
        assert_eq!(SEEN.load(Ordering::SeqCst), 1234);
        rdd.foreach_partition(func!([_k = 1u64] | it | drop(it)))
            .unwrap();
        let empty = ctx.parallelize(Vec::<i64>::new(), 2);
        assert!(matches!(
            empty.reduce(|a, b| a + b),
            Err(EmberError::EmptyCollection(_))
        ));
        assert!(matches!(empty.first(), Err(EmberError::EmptyCollection(_))));
        assert_eq!(
            empty.fold(5, |a, b| a + b).unwrap(),
            15,
            "fold applies zero per partition and once more, as Spark"
        );
    });
}

#[test]
fn cache_keeps_partitions_and_unpersist_frees_them() {
    for_each_master(|ctx, m| {
        let rdd = ctx
            .parallelize((0..100u32).collect(), 4)
            .map(|x| x + 1)
            .cache();
        assert_eq!(rdd.storage_level(), StorageLevel::MEMORY_ONLY);
        assert_eq!(rdd.count().unwrap(), 100);
        assert_eq!(
            ctx.rdd_storage_info(rdd.id()).0,
            4,
            "{m}: every partition cached"
        );
        let hits_before = ctx.status().metrics.cache_hits;
        assert_eq!(
            rdd.clone().map(|x| x * 2).reduce(|a, b| a + b).unwrap(),
            (1..=100u32).map(|x| x * 2).sum::<u32>()
        );
        assert_eq!(
            ctx.status().metrics.cache_hits - hits_before,
            4,
            "the second action read the cache"
        );
        let rdd = rdd.unpersist();
        assert_eq!(ctx.rdd_storage_info(rdd.id()).0, 0);
        assert_eq!(rdd.count().unwrap(), 100);
    });
}
