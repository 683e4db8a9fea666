//! Inner join as a hash join (an optimization of Spark's cogroup-then-flatten `join`): each
//! partition builds a hash table from the right side and streams the left side through it, so no
//! per-key vectors of left values are built and output pairs are produced as the left side is
//! read. When the build side passes the memory budget (`ember.shuffle.spill.threshold`), the
//! partition falls back to the spilling cogroup path, so a join larger than memory still
//! completes.

use std::marker::PhantomData;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::cogroup::{CoGroupAgg, Tagged};
use super::shuffle_side::{aggregator_for, SourceIter, TwoSided};
use super::{Dependency, Partitioning, Rdd, RddMeta};
use crate::data::{Data, Key};
use crate::shuffle::external_aggregator::AggregatedIter;
use crate::size_tracker::{map_slot_bytes, SizeTracker};
use crate::task::TaskContext;

/// The values of one key on the build side; one value needs no allocation.
enum Values<W> {
    One(W),
    Many(Vec<W>),
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

/// Iterator of a [`HashJoinRdd`] partition.
pub struct HashJoinIter<K: Key, V: Data, W: Data>(JoinState<K, V, W>);

// One per task, read record by record: kept inline rather than boxed.
#[allow(clippy::large_enum_variant)]
enum JoinState<K: Key, V: Data, W: Data> {
    /// The build side fit in memory: probe it with the streamed left side.
    Probe {
        left: SourceIter<K, V>,
        table: FxHashMap<K, Values<W>>,
        /// The current left record and the position in its key's values.
        current: Option<(K, V, usize)>,
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
                table,
                current,
            } => loop {
                if let Some((k, v, i)) = current {
                    match table.get(k) {
                        Some(Values::One(w)) if *i == 0 => {
                            // The common case of unique build keys: move the left record out.
                            let (k, v, _) = current.take()?;
                            let w = w.clone();
                            return Some((k, (v, w)));
                        }
                        Some(Values::Many(ws)) if *i < ws.len() => {
                            let w = ws[*i].clone();
                            *i += 1;
                            if *i == ws.len() {
                                let (k, v, _) = current.take()?;
                                return Some((k, (v, w)));
                            }
                            return Some((k.clone(), (v.clone(), w)));
                        }
                        _ => *current = None,
                    }
                }
                let (k, v) = left.next()?;
                *current = Some((k, v, 0));
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
        let mut table: FxHashMap<K, Values<W>> = FxHashMap::default();
        let mut tracker = SizeTracker::new();
        let slot = map_slot_bytes::<K, W>();
        let mut right = self.sides.right.iter::<K, W>(p, ctx);
        let mut too_large = false;
        for (k, w) in right.by_ref() {
            if tracker.tick() {
                tracker.sample(SizeTracker::measure(&(&k, &w)), table.len(), slot);
            }
            match table.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => match e.get_mut() {
                    Values::Many(ws) => ws.push(w),
                    one @ Values::One(_) => {
                        if let Values::One(first) =
                            std::mem::replace(one, Values::Many(Vec::with_capacity(2)))
                        {
                            if let Values::Many(ws) = one {
                                ws.push(first);
                                ws.push(w);
                            }
                        }
                    }
                },
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Values::One(w));
                }
            }
            if tracker.estimate() > threshold {
                too_large = true;
                break;
            }
        }
        if !too_large {
            return HashJoinIter(JoinState::Probe {
                left: self.sides.left.iter::<K, V>(p, ctx),
                table,
                current: None,
            });
        }
        // Fall back to the cogroup, which spills: what was built, the rest of the build side,
        // then the whole left side.
        let mut map = aggregator_for(CoGroupAgg::default(), ctx);
        let metrics = &ctx.metrics;
        for (k, vals) in table.drain() {
            match vals {
                Values::One(w) => map.insert_value(k, Tagged::Right(w), metrics),
                Values::Many(ws) => {
                    for w in ws {
                        map.insert_value(k.clone(), Tagged::Right(w), metrics);
                    }
                }
            }
        }
        for (k, w) in right {
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
