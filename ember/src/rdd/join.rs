//! Inner join as a hash join (an optimization of Spark's cogroup-then-flatten `join`): each
//! partition builds a hash table from the right side and streams the left side through it, so no
//! per-key vectors of left values are built and output pairs are produced as the left side is
//! read. When the build side passes the memory budget (`ember.shuffle.spill.threshold`), the
//! partition falls back to the spilling cogroup path, so a join larger than memory still
//! completes.
//!
//! A build side larger than the cache ([`RADIX_ABOVE`]) is radix-partitioned: [`FANOUT`] small
//! tables chosen by bits of the key's hash, each built in one go at its exact size, and the left
//! side is read in slices of [`PROBE_SLICE`] records scattered by the same bits, so each slice
//! probes one small table at a time. One table per partition is larger than the cache at W6's
//! size (8 MiB), and its probes waited on memory: 85 % of the probe loop's samples sat on the
//! entry's load in `perf annotate`. Within a slice the output then follows the small tables,
//! not the left side's order (a join promises no order). A smaller build side is one table
//! probed in the left side's order: scattering the left records would also scatter the reads
//! of the heap data they own (PageRank's adjacency lists: W7 took 25 % more CPU that way).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::Arc;

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Serialize};

use super::cogroup::{CoGroupAgg, Tagged};
use super::shuffle_side::{aggregator_for, SourceIter, TwoSided};
use super::{Dependency, Partitioning, Rdd, RddMeta};
use crate::data::{Data, Key};
use crate::shuffle::external_aggregator::AggregatedIter;
use crate::size_tracker::{map_slot_bytes, SizeTracker};
use crate::task::TaskContext;

/// One table of the build side. The first value of each key sits in the table itself, so an
/// entry is a key and a value (16 bytes for W6's `u64` pairs, against 32 with a vector or an
/// enum beside the key: the probes' misses are in these entries); further values of a key go
/// to `more`, which a build side of unique keys leaves empty and never probes.
struct BuildTable<K, W> {
    first: FxHashMap<K, W>,
    more: FxHashMap<K, Vec<W>>,
}

impl<K: Key, W: Data> BuildTable<K, W> {
    fn with_capacity(keys: usize) -> Self {
        BuildTable {
            first: FxHashMap::with_capacity_and_hasher(keys, FxBuildHasher),
            more: FxHashMap::default(),
        }
    }

    /// Adds `w` to the values of `k`.
    #[inline]
    fn insert(&mut self, k: K, w: W) {
        match self.first.entry(k) {
            std::collections::hash_map::Entry::Occupied(e) => {
                self.more.entry(e.key().clone()).or_default().push(w);
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(w);
            }
        }
    }

    /// Appends the joined records of the left record `(k, v)` to `out`, in the order the
    /// build side's values of `k` were read.
    #[inline]
    fn probe<V: Data>(&self, k: K, v: V, out: &mut VecDeque<(K, (V, W))>) {
        let Some(w) = self.first.get(&k) else {
            return;
        };
        let rest = if self.more.is_empty() {
            None
        } else {
            self.more.get(&k)
        };
        match rest {
            None => out.push_back((k, (v, w.clone()))),
            Some(rest) => {
                out.push_back((k.clone(), (v.clone(), w.clone())));
                if let Some((last, init)) = rest.split_last() {
                    for w in init {
                        out.push_back((k.clone(), (v.clone(), w.clone())));
                    }
                    out.push_back((k, (v, last.clone())));
                }
            }
        }
    }
}

/// `(K, (V, W))` for every pair of values with equal keys.
#[derive(Clone, Serialize, Deserialize)]
pub struct HashJoinRdd<K, V, W> {
    sides: TwoSided,
    _kvw: PhantomData<fn() -> (K, V, W)>,
}

impl<K: Key, V: Data, W: Data> HashJoinRdd<K, V, W> {
    pub(crate) fn new<A: Rdd<Item = (K, V)>, B: Rdd<Item = (K, W)>>(
        a: A,
        b: B,
        partitions: usize,
    ) -> Self {
        HashJoinRdd {
            sides: TwoSided::new(a, b, partitions, "JoinRdd"),
            _kvw: PhantomData,
        }
    }
}

/// Small tables a partition's build side is split into: at W6's size (125,000 keys a
/// partition) each holds about 500 keys, 16 KiB of entries.
const FANOUT: usize = 256;

/// The estimated table bytes above which the build side is split into [`FANOUT`] tables:
/// twice the 512 KiB second-level cache of the machine the figures come from.
const RADIX_ABOVE: u64 = 1 << 20;

/// Left records scattered over the small tables before any is looked up, so that each table
/// gets a run of probes while it is in the cache (about 256 each at W6's size).
const PROBE_SLICE: usize = 64 * 1024;

/// The bytes a slice of left records may take (estimated as the build side's are), so that
/// large records make shorter slices.
const PROBE_SLICE_BYTES: u64 = 4 << 20;

/// Which of `tables` small tables `key` belongs to (`tables` is 1 or [`FANOUT`]). The bits are
/// taken after a second mix, so that they do not repeat the bits the tables' own hashing uses
/// (the low ones for the bucket, the top seven for the tag), which would leave a small table's
/// keys crowding a few buckets or tags.
#[inline]
fn sub_table<K: std::hash::Hash>(key: &K, tables: usize) -> usize {
    if tables == 1 {
        return 0;
    }
    let h = FxBuildHasher.hash_one(key);
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FANOUT.trailing_zeros())) as usize
}

/// Iterator of a [`HashJoinRdd`] partition.
pub struct HashJoinIter<K: Key, V: Data, W: Data>(JoinState<K, V, W>);

// One per task, read record by record: kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
enum JoinState<K: Key, V: Data, W: Data> {
    /// The build side fit in memory: probe it with the streamed left side.
    Probe {
        left: SourceIter<K, V>,
        /// The build side: one table, or [`FANOUT`] by [`sub_table`].
        tables: Vec<BuildTable<K, W>>,
        /// The current slice of the left side, by [`sub_table`] (emptied after each slice).
        slice: Vec<Vec<(K, V)>>,
        /// The joined records of the last slice, handed out in order.
        out: VecDeque<(K, (V, W))>,
    },
    /// The build side was too large: the spilling cogroup, flattened.
    CoGroup {
        groups: AggregatedIter<K, (Vec<V>, Vec<W>), CoGroupAgg<V, W>, Tagged<V, W>>,
        current: Option<(K, Vec<V>, Vec<W>, usize)>,
    },
}

impl<K: Key, V: Data, W: Data> Iterator for HashJoinIter<K, V, W> {
    type Item = (K, (V, W));

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            JoinState::Probe {
                left,
                tables,
                slice,
                out,
            } => loop {
                if let Some(joined) = out.pop_front() {
                    return Some(joined);
                }
                let (mut read, mut size) = (0, SizeTracker::new());
                for (k, v) in left.by_ref() {
                    if size.tick() {
                        let slot = std::mem::size_of::<(K, V)>();
                        size.sample(SizeTracker::measure(&(&k, &v)), read, slot);
                    }
                    slice[sub_table(&k, tables.len())].push((k, v));
                    read += 1;
                    if read == PROBE_SLICE || size.estimate() > PROBE_SLICE_BYTES {
                        break;
                    }
                }
                if read == 0 {
                    return None;
                }
                for (part, table) in slice.iter_mut().zip(tables.iter()) {
                    for (k, v) in part.drain(..) {
                        table.probe(k, v, out);
                    }
                }
            },
            JoinState::CoGroup { groups, current } => loop {
                if let Some((k, vs, ws, i)) = current {
                    let n = vs.len() * ws.len();
                    if *i < n {
                        let (a, b) = (*i / ws.len(), *i % ws.len());
                        *i += 1;
                        return Some((k.clone(), (vs[a].clone(), ws[b].clone())));
                    }
                    *current = None;
                }
                let (k, (vs, ws)) = groups.next()?;
                *current = Some((k, vs, ws, 0));
            },
        }
    }
}

impl<K: Key, V: Data, W: Data> Rdd for HashJoinRdd<K, V, W> {
    type Item = (K, (V, W));
    type Iter = HashJoinIter<K, V, W>;
    fn meta(&self) -> &RddMeta {
        &self.sides.meta
    }
    fn num_partitions(&self) -> usize {
        self.sides.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.sides.dependencies()
    }
    fn compute(&self, p: usize, ctx: &Arc<TaskContext>) -> Self::Iter {
        let env = ctx.services();
        let threshold = env.shuffle_conf().spill_threshold;
        // The build side is first scattered by small table, so that each table is then built
        // at its exact size (no rehashing) and while it alone is in the cache.
        let mut scattered: Vec<Vec<(K, W)>> = (0..FANOUT).map(|_| Vec::new()).collect();
        let mut tracker = SizeTracker::new();
        let slot = map_slot_bytes::<K, W>();
        let mut right = self.sides.right.iter::<K, W>(p, ctx);
        let (mut built, mut too_large) = (0usize, false);
        for (k, w) in right.by_ref() {
            if tracker.tick() {
                tracker.sample(SizeTracker::measure(&(&k, &w)), built, slot);
            }
            scattered[sub_table(&k, FANOUT)].push((k, w));
            built += 1;
            if tracker.estimate() > threshold {
                too_large = true;
                break;
            }
        }
        if !too_large {
            let tables: Vec<_> = if (built * slot) as u64 > RADIX_ABOVE {
                scattered
                    .into_iter()
                    .map(|part| {
                        let mut table = BuildTable::with_capacity(part.len());
                        for (k, w) in part {
                            table.insert(k, w);
                        }
                        table
                    })
                    .collect()
            } else {
                let mut table = BuildTable::with_capacity(built);
                for (k, w) in scattered.into_iter().flatten() {
                    table.insert(k, w);
                }
                vec![table]
            };
            return HashJoinIter(JoinState::Probe {
                left: self.sides.left.iter::<K, V>(p, ctx),
                slice: (0..tables.len()).map(|_| Vec::new()).collect(),
                tables,
                out: VecDeque::new(),
            });
        }
        // Fall back to the cogroup, which spills: what was read, the rest of the build side,
        // then the whole left side.
        let mut map = aggregator_for(CoGroupAgg::default(), ctx);
        let metrics = &ctx.metrics;
        for (k, w) in scattered.into_iter().flatten().chain(right) {
            map.insert_value(k, Tagged::Right(w), metrics);
        }
        for (k, v) in self.sides.left.iter::<K, V>(p, ctx) {
            map.insert_value(k, Tagged::Left(v), metrics);
        }
        HashJoinIter(JoinState::CoGroup {
            groups: map.into_iter(),
            current: None,
        })
    }
    fn partitioning(&self) -> Option<Partitioning> {
        Some(Partitioning::Hash(self.sides.partitions))
    }
}
