//! [`HashCombiner`]: one map of combiners, grouped by reduce partition only when written.

use std::io::Write;
use std::marker::PhantomData;
use std::path::Path;

use rustc_hash::FxHashMap;

use super::{partition_of, BlockWriter, MapCombiner};
use crate::aggregator::Aggregator;
use crate::codec::ChunkFormat;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::partitioner::Partitioner;
use crate::shuffle::append_only_map::upsert;
use crate::shuffle::map_output_writer::MapOutput;
use crate::size_tracker::{map_slot_bytes, SizeTracker};

/// One map of combiners (see the module documentation of `super`).
pub(in crate::shuffle) struct HashCombiner<'a, K, V, C, A, P> {
    agg: &'a A,
    partitioner: &'a P,
    partitions: usize,
    map: FxHashMap<K, C>,
    tracker: SizeTracker,
    /// The combiners by reduce partition, once split for writing.
    parts: Vec<Vec<(K, C)>>,
    out: BlockWriter,
    _v: PhantomData<fn(V)>,
}

impl<'a, K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>>
    HashCombiner<'a, K, V, C, A, P>
{
    pub(in crate::shuffle) fn new(agg: &'a A, partitioner: &'a P, format: ChunkFormat) -> Self {
        HashCombiner {
            agg,
            partitioner,
            partitions: partitioner.num_partitions(),
            map: FxHashMap::default(),
            tracker: SizeTracker::new(),
            parts: Vec::new(),
            out: BlockWriter::new(format),
            _v: PhantomData,
        }
    }

    /// Writes partition `p`'s combiners into the block `w` is writing (without ending it), and
    /// drops them; returns the bytes written to `out`.
    pub(super) fn write_entries<W: Write>(
        &mut self,
        p: usize,
        w: &mut BlockWriter,
        out: &mut W,
        path: &Path,
    ) -> Result<u64> {
        write_part(&mut self.parts, p, w, out, path)
    }
}

fn write_part<K: Key, C: Data, W: Write>(
    parts: &mut [Vec<(K, C)>],
    p: usize,
    w: &mut BlockWriter,
    out: &mut W,
    path: &Path,
) -> Result<u64> {
    let mut written = 0;
    if let Some(part) = parts.get_mut(p) {
        for (k, c) in part.drain(..) {
            written += w.push_pair(&k, &c, out, path)?;
        }
    }
    Ok(written)
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapCombiner<K, V>
    for HashCombiner<'_, K, V, C, A, P>
{
    #[inline]
    fn insert(&mut self, key: K, value: V) -> Result<()> {
        let agg = self.agg;
        let sampled = upsert(
            &mut self.map,
            &mut self.tracker,
            key,
            value,
            |v| agg.create_combiner(v),
            |c, v| agg.merge_value(c, v),
        );
        if let Some(bytes) = sampled {
            self.tracker
                .sample(bytes, self.map.len(), map_slot_bytes::<K, C>());
        }
        Ok(())
    }

    fn estimate(&self) -> u64 {
        self.tracker.estimate()
    }

    fn prepare_output(&mut self) -> Result<u64> {
        if self.parts.is_empty() {
            self.parts = (0..self.partitions).map(|_| Vec::new()).collect();
        }
        // Taken, not drained: the map's memory goes back with the spill.
        let map = std::mem::take(&mut self.map);
        let n = map.len() as u64;
        for (k, c) in map {
            let p = partition_of(self.partitioner, &k, self.partitions)?;
            self.parts[p].push((k, c));
        }
        Ok(n)
    }

    fn reset(&mut self) {
        self.tracker.reset();
        self.parts = Vec::new();
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapOutput
    for HashCombiner<'_, K, V, C, A, P>
{
    fn partitions(&self) -> usize {
        self.partitions
    }

    fn write_partition<W: Write>(&mut self, p: usize, out: &mut W, path: &Path) -> Result<u64> {
        self.prepare_output()?;
        let written = write_part(&mut self.parts, p, &mut self.out, out, path)?;
        Ok(written + self.out.finish(out, path)?)
    }
}
