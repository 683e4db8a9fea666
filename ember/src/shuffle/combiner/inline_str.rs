//! [`InlineStrCombiner`]: `String` keys looked up inline, without allocating.

use std::io::Write;
use std::path::Path;

use super::{partition_of, type_mismatch, BlockWriter, HashCombiner, MapCombiner};
use crate::aggregator::Aggregator;
use crate::codec::ChunkFormat;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::partitioner::Partitioner;
use crate::shuffle::map_output_writer::MapOutput;
use crate::shuffle::str_table::{self, InlineKey, StrTable};
use crate::size_tracker::SizeTracker;
use crate::util::{cast, cast_ref};

/// Records whose table slots are prefetched before any is looked up: enough for the misses of
/// the rare keys among them to overlap, few enough that the first slots are still in cache when
/// the last are fetched.
const PREFETCH_BATCH: usize = 16;

/// The combiner for `String` keys (`K` is `String`; it is generic only so that the writer can
/// name it for every key type and choose it by type id). Keys of up to `str_table::INLINE_MAX`
/// bytes are stored inline in a [`StrTable`], so a key lent as `&str` is copied to the heap
/// never; longer keys go to a [`HashCombiner`].
pub(in crate::shuffle) struct InlineStrCombiner<'a, K, V, C, A, P> {
    agg: &'a A,
    partitioner: &'a P,
    partitions: usize,
    /// The short keys, inline.
    strs: StrTable<C>,
    /// The size of `strs` when its combiners own heap data (see `flush_inline`).
    str_tracker: SizeTracker,
    /// Inline-key records whose slots are being prefetched, with their hashes.
    str_batch: Vec<(InlineKey, u64, V)>,
    /// `strs`'s entries by reduce partition, once split for writing.
    str_parts: Vec<Vec<(InlineKey, C)>>,
    /// An inline key as a `String`, for the partitioner and the encoder.
    key_buf: String,
    /// The long keys.
    long: HashCombiner<'a, K, V, C, A, P>,
    /// Whether the output is split by partition (until the next `reset`).
    prepared: bool,
    out: BlockWriter,
}

impl<'a, K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>>
    InlineStrCombiner<'a, K, V, C, A, P>
{
    pub(in crate::shuffle) fn new(agg: &'a A, partitioner: &'a P, format: ChunkFormat) -> Self {
        InlineStrCombiner {
            agg,
            partitioner,
            partitions: partitioner.num_partitions(),
            strs: StrTable::default(),
            str_tracker: SizeTracker::new(),
            str_batch: Vec::with_capacity(PREFETCH_BATCH),
            str_parts: Vec::new(),
            key_buf: String::new(),
            long: HashCombiner::new(agg, partitioner, format),
            prepared: false,
            out: BlockWriter::new(format),
        }
    }

    /// Queues an inline-key record and prefetches its slot; the queue is folded into `strs`
    /// every `PREFETCH_BATCH` records, when the prefetched slots have (mostly) arrived.
    #[inline(always)]
    fn insert_inline(&mut self, key: InlineKey, value: V) {
        let hash = key.hash();
        self.strs.prefetch(hash);
        self.str_batch.push((key, hash, value));
        if self.str_batch.len() >= PREFETCH_BATCH {
            self.flush_inline();
        }
    }

    /// Folds the queued inline-key records into `strs`, in arrival order.
    #[inline]
    fn flush_inline(&mut self) {
        let agg = self.agg;
        let mut batch = std::mem::take(&mut self.str_batch);
        for (key, hash, value) in batch.drain(..) {
            self.strs.upsert_hashed(
                key,
                hash,
                value,
                |v| agg.create_combiner(v),
                |c, v| agg.merge_value(c, v),
            );
            // Inline keys own no heap memory, so `strs` takes a fixed size per entry unless the
            // combiners own heap data; only then are entries sampled.
            if std::mem::needs_drop::<C>() && self.str_tracker.tick() {
                if let Some(c) = self.strs.get(&key) {
                    let bytes = SizeTracker::measure(c);
                    self.str_tracker
                        .sample(bytes, self.strs.len(), str_table::slot_bytes::<C>());
                }
            }
        }
        self.str_batch = batch;
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapCombiner<K, V>
    for InlineStrCombiner<'_, K, V, C, A, P>
{
    #[inline]
    fn insert(&mut self, key: K, value: V) -> Result<()> {
        match cast::<K, String>(key) {
            Ok(s) => match InlineKey::new(s.as_bytes()) {
                Some(k) => {
                    self.insert_inline(k, value);
                    Ok(())
                }
                None => self
                    .long
                    .insert(cast::<String, K>(s).map_err(|_| type_mismatch())?, value),
            },
            // Only chosen for `String` keys; anything else takes the plain map.
            Err(key) => self.long.insert(key, value),
        }
    }

    /// A short lent key is looked up inline and never copied to the heap.
    #[inline]
    fn insert_str(&mut self, key: &str, value: V) -> Result<()> {
        match InlineKey::new(key.as_bytes()) {
            Some(k) => {
                self.insert_inline(k, value);
                Ok(())
            }
            None => self.long.insert(
                cast::<String, K>(key.to_owned()).map_err(|_| type_mismatch())?,
                value,
            ),
        }
    }

    #[inline]
    fn estimate(&self) -> u64 {
        let strs = if std::mem::needs_drop::<C>() {
            self.str_tracker.estimate()
        } else {
            (self.strs.len() * str_table::slot_bytes::<C>()) as u64
        };
        self.long.estimate() + strs
    }

    fn prepare_output(&mut self) -> Result<u64> {
        self.flush_inline();
        if self.prepared {
            return Ok(0);
        }
        self.prepared = true;
        let n = self.long.prepare_output()? + self.strs.len() as u64;
        if !self.strs.is_empty() {
            self.str_parts = (0..self.partitions).map(|_| Vec::new()).collect();
            for (k, c) in self.strs.drain() {
                k.write_to(&mut self.key_buf);
                let key = cast_ref::<String, K>(&self.key_buf).ok_or_else(type_mismatch)?;
                let p = partition_of(self.partitioner, key, self.partitions)?;
                self.str_parts[p].push((k, c));
            }
        }
        Ok(n)
    }

    fn reset(&mut self) {
        self.long.reset();
        self.str_tracker.reset();
        self.str_parts = Vec::new();
        self.prepared = false;
    }
}

impl<K: Key, V: Data, C: Data, A: Aggregator<K, V, C>, P: Partitioner<K>> MapOutput
    for InlineStrCombiner<'_, K, V, C, A, P>
{
    fn partitions(&self) -> usize {
        self.partitions
    }

    fn write_partition<W: Write>(&mut self, p: usize, out: &mut W, path: &Path) -> Result<u64> {
        self.prepare_output()?;
        let mut written = self.long.write_entries(p, &mut self.out, out, path)?;
        if let Some(part) = self.str_parts.get_mut(p) {
            for (k, c) in part.drain(..) {
                k.write_to(&mut self.key_buf);
                // `(&str, &C)` encodes exactly like `(String, C)`.
                written += self.out.push(&(self.key_buf.as_str(), &c), out, path)?;
            }
        }
        Ok(written + self.out.finish(out, path)?)
    }
}
