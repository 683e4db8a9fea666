//! The executor's block manager: cached partitions in its memory store and disk store, within
//! its memory manager's budget, reported to the driver's [`BlockManagerMaster`] (Spark's
//! `BlockManager`).
//!
//! [`BlockManager::get_or_compute`] is what `Rdd::iterator` calls for a persisted RDD (Spark's
//! `getOrElseUpdate`): a cached copy is read from memory or disk; otherwise the partition is
//! computed and stored at its level. Storing in memory *unrolls* the partition: storage memory is
//! reserved as the elements arrive, and when no more can be had the partition is not cached in
//! memory — it goes to disk when the level allows, else the task goes on with the elements
//! computed so far followed by the rest of the computation, uncached.
//!
//! Every change of where a block is (stored, evicted to disk, dropped, removed) is reported
//! while `status_lock` is held, so the driver hears a block's changes in the order they happened.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};
use tracing::{debug, info, warn};

use super::block_codec::{self, BytesEncoder};
use super::disk_store::DiskStore;
use super::memory_store::{MemoryEntry, MemoryStore, MemoryValue};
use super::{BlockManagerMaster, BlockStatus, StorageLevel};
use crate::codec::ChunkFormat;
use crate::conf::{self, EmberConf};
use crate::data::Data;
use crate::error::Result;
use crate::memory::{BlockEvictor, MemoryConfig, MemoryMetrics, UnifiedMemoryManager};
use crate::size_tracker::SizeTracker;
use crate::util::bytes_to_string;
pub use ember_common::BlockId;
use ember_common::BlockManagerId;

/// How an executor process reports a block's new status to the driver, with its memory
/// manager's metrics at that moment.
pub type BlockReporter = Arc<dyn Fn(BlockId, BlockStatus, MemoryMetrics) + Send + Sync>;

/// Elements of a partition read or computed by the block manager.
pub enum Values<T> {
    /// Shared with the memory store (deserialized levels).
    Shared(Arc<Vec<T>>),
    /// Decoded from serialized bytes, or computed and stored elsewhere than deserialized in
    /// memory.
    Owned(Vec<T>),
}

/// The result of [`BlockManager::get_or_compute`].
pub enum GetOrCompute<T, I> {
    /// A cached copy was read.
    Hit(Values<T>),
    /// The partition was computed (and stored, unless storing failed: see the logs).
    Computed(Values<T>),
    /// The partition did not fit in memory and its level has no disk: the elements unrolled so
    /// far, then the rest of the computation. Nothing is cached.
    Partial(Vec<T>, I),
}

/// Elements between two checks of the unroll memory (Spark's `memoryCheckPeriod`).
const UNROLL_CHECK_PERIOD: usize = 16;
/// How much more unroll memory is asked for than the estimate (Spark's `memoryGrowthFactor`).
const UNROLL_GROWTH: f64 = 1.5;

/// Stores blocks of one executor and tells the driver's [`BlockManagerMaster`] about them.
pub struct BlockManager {
    id: BlockManagerId,
    memory: Arc<UnifiedMemoryManager>,
    memory_store: MemoryStore,
    disk_store: DiskStore,
    /// Serialized blocks served to other processes (indirect task results).
    bytes: Mutex<FxHashMap<String, Arc<Vec<u8>>>>,
    master: Arc<BlockManagerMaster>,
    /// Tells the driver about blocks when the master above is not the driver's.
    reporter: Mutex<Option<BlockReporter>>,
    /// Held while a block changes place and the change is reported (see the module docs).
    status_lock: Mutex<()>,
    /// How serialized blocks are written: `ember.rdd.compress` and the chunk checksum
    /// (`ember.shuffle.checksum.*`), so that a damaged block is dropped and recomputed rather
    /// than read.
    format: ChunkFormat,
    /// `ember.storage.unrollMemoryThreshold`.
    unroll_threshold: u64,
}

impl BlockManager {
    /// A block manager registered with `master`, with a memory manager of `memory`, keeping
    /// block files under `dir`.
    pub fn new(
        id: BlockManagerId,
        master: Arc<BlockManagerMaster>,
        memory: MemoryConfig,
        dir: PathBuf,
        conf: &EmberConf,
    ) -> Result<Arc<Self>> {
        let format = ChunkFormat::new(
            conf.get_bool(conf::RDD_COMPRESS)?,
            conf::chunk_checksum(conf)?,
        );
        let unroll_threshold = conf.get_size_bytes(conf::STORAGE_UNROLL_MEMORY_THRESHOLD)?;
        master.register(&id, memory.max_memory);
        Ok(Arc::new_cyclic(|me: &Weak<BlockManager>| {
            let manager = Arc::new(UnifiedMemoryManager::new(memory));
            let evictor: Weak<dyn BlockEvictor> = me.clone();
            manager.set_evictor(evictor);
            BlockManager {
                id,
                memory: manager,
                memory_store: MemoryStore::new(),
                disk_store: DiskStore::new(dir),
                bytes: Mutex::new(FxHashMap::default()),
                master,
                reporter: Mutex::new(None),
                status_lock: Mutex::new(()),
                format,
                unroll_threshold,
            }
        }))
    }

    /// Sets the function that reports block changes to the driver (executor processes).
    pub fn set_reporter(&self, reporter: BlockReporter) {
        *self.reporter.lock() = Some(reporter);
    }

    /// This block manager's id.
    pub fn id(&self) -> &BlockManagerId {
        &self.id
    }

    /// The executor's memory manager.
    pub fn memory_manager(&self) -> &Arc<UnifiedMemoryManager> {
        &self.memory
    }

    /// The cached blocks in memory.
    pub fn memory_store(&self) -> &MemoryStore {
        &self.memory_store
    }

    /// The cached blocks on disk.
    pub fn disk_store(&self) -> &DiskStore {
        &self.disk_store
    }

    /// Where a block is here now.
    pub fn status(&self, block: BlockId) -> BlockStatus {
        let mem = self.memory_store.peek(block);
        let disk = self.disk_store.get(block);
        BlockStatus {
            level: StorageLevel {
                use_disk: disk.is_some(),
                use_memory: mem.is_some(),
                deserialized: mem.is_some_and(|(_, level)| level.deserialized),
                replication: 1,
            },
            memory_size: mem.map_or(0, |(size, _)| size),
            disk_size: disk.map_or(0, |d| d.size),
        }
    }

    /// The partition's elements: a cached copy when this executor has one, else computed by
    /// `compute` and stored at `level` (Spark's `getOrElseUpdate`). Storage trouble (a block that
    /// does not fit, a disk that fails, a damaged file) is logged and never fails the task: the
    /// elements are then computed and returned uncached.
    pub fn get_or_compute<T: Data, I: Iterator<Item = T>>(
        &self,
        block: BlockId,
        level: StorageLevel,
        compute: impl FnOnce() -> I,
    ) -> GetOrCompute<T, I> {
        if let Some(values) = self.get_local::<T>(block) {
            return GetOrCompute::Hit(values);
        }
        self.put_iterator(block, level, compute())
    }

    /// A cached copy of the block, from memory or disk.
    pub fn get_local<T: Data>(&self, block: BlockId) -> Option<Values<T>> {
        if let Some(entry) = self.memory_store.get(block) {
            match entry.value {
                MemoryValue::Values(v) => match v.as_any().downcast::<Vec<T>>() {
                    Ok(v) => return Some(Values::Shared(v)),
                    Err(_) => {
                        warn!("cached block {block} holds elements of another type; dropping it");
                        self.remove_block(block);
                        return None;
                    }
                },
                MemoryValue::Bytes { bytes, format } => {
                    match block_codec::decode_bytes::<T>(&bytes, format) {
                        Ok(v) => return Some(Values::Owned(v)),
                        Err(e) => {
                            warn!(
                                "cached block {block} does not decode ({e}); dropping it and \
                                 recomputing the partition"
                            );
                            self.remove_block(block);
                            return None;
                        }
                    }
                }
            }
        }
        let disk = self.disk_store.get(block)?;
        match block_codec::read_file::<T>(&disk.path, disk.size, disk.format) {
            Ok(v) => Some(Values::Owned(v)),
            Err(e) => {
                warn!(
                    "cannot read cached block {block} from {} ({e}); dropping it and recomputing \
                     the partition",
                    disk.path.display()
                );
                self.remove_block(block);
                None
            }
        }
    }

    /// Stores a computed partition at `level` and returns its elements.
    fn put_iterator<T: Data, I: Iterator<Item = T>>(
        &self,
        block: BlockId,
        level: StorageLevel,
        values: I,
    ) -> GetOrCompute<T, I> {
        if !level.use_memory {
            let all: Vec<T> = values.collect();
            self.put_on_disk(block, &all);
            return GetOrCompute::Computed(Values::Owned(all));
        }
        let unrolled = if level.deserialized {
            self.unroll_values(block, values)
        } else {
            self.unroll_bytes(block, values)
        };
        match unrolled {
            Unrolled::Values {
                values,
                reservation,
            } => {
                let values = Arc::new(values);
                self.store_in_memory(
                    block,
                    level,
                    MemoryValue::Values(values.clone()),
                    reservation,
                );
                GetOrCompute::Computed(Values::Shared(values))
            }
            Unrolled::Bytes {
                bytes,
                values,
                reservation,
            } => {
                self.store_in_memory(
                    block,
                    level,
                    MemoryValue::Bytes {
                        bytes: Arc::new(bytes),
                        format: self.format,
                    },
                    reservation,
                );
                GetOrCompute::Computed(Values::Owned(values))
            }
            Unrolled::TooLarge {
                unrolled,
                rest,
                so_far,
            } => {
                let m = self.memory.metrics();
                let where_to = if level.use_disk {
                    "writing it to disk instead"
                } else {
                    "not caching it (it is recomputed when needed)"
                };
                warn!(
                    "Not enough memory to cache {block} at {level}: {} computed so far, storage \
                     memory {} in use of {} (execution holds {}); {where_to}",
                    bytes_to_string(so_far),
                    bytes_to_string(m.storage_used),
                    bytes_to_string(m.max_memory),
                    bytes_to_string(m.execution_used),
                );
                if level.use_disk {
                    let mut all = unrolled;
                    all.extend(rest);
                    self.put_on_disk(block, &all);
                    GetOrCompute::Computed(Values::Owned(all))
                } else {
                    GetOrCompute::Partial(unrolled, rest)
                }
            }
        }
    }

    /// Collects elements while reserving storage memory for their estimated size (Spark's
    /// `putIteratorAsValues`).
    fn unroll_values<T: Data, I: Iterator<Item = T>>(
        &self,
        block: BlockId,
        mut values: I,
    ) -> Unrolled<'_, T, I> {
        let mut reservation = Reservation {
            memory: &self.memory,
            bytes: 0,
        };
        let mut keep_unrolling = reservation.grow(block, self.unroll_threshold);
        let mut vec = Vec::new();
        let mut tracker = SizeTracker::new();
        while keep_unrolling {
            let Some(v) = values.next() else { break };
            vec.push(v);
            if tracker.tick() {
                let bytes = vec.last().map_or(0, SizeTracker::measure);
                tracker.sample(bytes, vec.len(), std::mem::size_of::<T>());
            }
            if vec.len() % UNROLL_CHECK_PERIOD == 0 {
                let estimate = tracker.estimate();
                if estimate >= reservation.bytes {
                    let request = (estimate as f64 * UNROLL_GROWTH) as u64 - reservation.bytes;
                    keep_unrolling = reservation.grow(block, request);
                }
            }
        }
        if keep_unrolling && reservation.resize(block, crate::util::estimate_vec_size(&vec)) {
            return Unrolled::Values {
                values: vec,
                reservation,
            };
        }
        let so_far = tracker.estimate();
        Unrolled::TooLarge {
            unrolled: vec,
            rest: values,
            so_far,
        }
    }

    /// Serializes elements while reserving storage memory for the bytes (Spark's
    /// `putIteratorAsBytes`); the elements are kept too, to be returned to the task.
    fn unroll_bytes<T: Data, I: Iterator<Item = T>>(
        &self,
        block: BlockId,
        mut values: I,
    ) -> Unrolled<'_, T, I> {
        let mut reservation = Reservation {
            memory: &self.memory,
            bytes: 0,
        };
        let mut keep_unrolling = reservation.grow(block, self.unroll_threshold);
        let mut encoder = BytesEncoder::new(self.format);
        let mut kept = Vec::new();
        while keep_unrolling {
            let Some(v) = values.next() else { break };
            let pushed = encoder.push(&v);
            kept.push(v);
            if let Err(e) = pushed {
                warn!("cannot serialize {block}: {e}");
                keep_unrolling = false;
                break;
            }
            if kept.len() % UNROLL_CHECK_PERIOD == 0 && encoder.len() >= reservation.bytes {
                let request = (encoder.len() as f64 * UNROLL_GROWTH) as u64 - reservation.bytes;
                keep_unrolling = reservation.grow(block, request);
            }
        }
        let so_far = encoder.len();
        if keep_unrolling {
            match encoder.finish() {
                Ok(bytes) => {
                    if reservation.resize(block, bytes.len() as u64) {
                        return Unrolled::Bytes {
                            bytes,
                            values: kept,
                            reservation,
                        };
                    }
                }
                Err(e) => warn!("cannot serialize {block}: {e}"),
            }
        }
        Unrolled::TooLarge {
            unrolled: kept,
            rest: values,
            so_far,
        }
    }

    /// Adds an unrolled block to the memory store, its unroll reservation becoming its storage
    /// memory; if another task stored it first, the reservation is returned.
    fn store_in_memory(
        &self,
        block: BlockId,
        level: StorageLevel,
        value: MemoryValue,
        reservation: Reservation<'_>,
    ) {
        let size = reservation.bytes;
        let _g = self.status_lock.lock();
        if self
            .memory_store
            .put(block, MemoryEntry { value, size, level })
        {
            reservation.into_stored();
            debug!(
                "Block {block} stored as {} in memory",
                bytes_to_string(size)
            );
            self.report(block);
        }
    }

    /// Writes a partition's elements to disk and reports it; a failure is logged.
    fn put_on_disk<T: Data>(&self, block: BlockId, values: &[T]) {
        let format = self.format;
        match self.disk_store.put(block, format, |w| {
            block_codec::write_values(values, w, format)
        }) {
            Ok(size) => {
                debug!("Block {block} stored as {} on disk", bytes_to_string(size));
                let _g = self.status_lock.lock();
                self.report(block);
            }
            Err(e) => warn!("could not write {block} to disk ({e}); it is not cached"),
        }
    }

    /// Reports a block's current status to the master (and the driver). Called with
    /// `status_lock` held.
    fn report(&self, block: BlockId) {
        let status = self.status(block);
        let metrics = self.memory.metrics();
        self.master
            .update_block_info(&self.id, block, status, Some(metrics));
        let reporter = self.reporter.lock().clone();
        if let Some(report) = reporter {
            report(block, status, metrics);
        }
    }

    /// Every block held here with its status, and the memory metrics, taken together under the
    /// status lock (what Spark's `reportAllBlocks` sends after a re-registration).
    pub fn all_block_statuses(&self) -> (Vec<(BlockId, BlockStatus)>, MemoryMetrics) {
        let _g = self.status_lock.lock();
        let mut blocks: Vec<BlockId> = self.memory_store.blocks();
        blocks.extend(self.disk_store.blocks());
        blocks.sort_unstable();
        blocks.dedup();
        let statuses = blocks
            .into_iter()
            .map(|b| (b, self.status(b)))
            .filter(|(_, s)| s.is_cached())
            .collect();
        (statuses, self.memory.metrics())
    }

    /// Removes a block from memory and disk, returns its memory, and reports it; false when it
    /// was not here.
    pub fn remove_block(&self, block: BlockId) -> bool {
        let (mem, disk) = {
            let _g = self.status_lock.lock();
            (
                self.memory_store.remove(block),
                self.disk_store.remove(block),
            )
        };
        if let Some(entry) = &mem {
            self.memory.release_storage_memory(entry.size);
        }
        let removed = mem.is_some() || disk;
        if removed {
            // After the memory is returned, so that the report shows it free.
            let _g = self.status_lock.lock();
            self.report(block);
        }
        removed
    }

    /// Drops every cached partition of an RDD, in memory and on disk; returns how many blocks
    /// were removed.
    pub fn remove_rdd(&self, rdd_id: usize) -> usize {
        let blocks: FxHashSet<BlockId> = self
            .memory_store
            .blocks_of_rdd(rdd_id)
            .into_iter()
            .chain(self.disk_store.blocks_of_rdd(rdd_id))
            .collect();
        let removed = blocks.into_iter().filter(|b| self.remove_block(*b)).count();
        if removed > 0 {
            info!("Removed {removed} blocks of RDD {rdd_id}");
        }
        removed
    }

    /// Stores a serialized block under a name (an indirect task result).
    pub fn put_bytes(&self, id: String, bytes: Vec<u8>) {
        self.bytes.lock().insert(id, Arc::new(bytes));
    }

    /// Bytes of cached blocks in memory.
    pub fn memory_used(&self) -> u64 {
        self.memory_store.memory_used()
    }

    /// Bytes of cached blocks on disk.
    pub fn disk_used(&self) -> u64 {
        self.disk_store.disk_used()
    }

    /// Moves a block out of memory to make room: to disk when its level has disk and it is not
    /// there yet, else it is dropped (recomputed from lineage when needed). Spark's
    /// `dropFromMemory`. Returns the memory it held. Called with `status_lock` held.
    fn drop_from_memory(&self, block: BlockId) -> u64 {
        let Some(entry) = self.memory_store.get(block) else {
            return 0;
        };
        // Written before the memory copy goes, so a reader always finds one of the two.
        if entry.level.use_disk && !self.disk_store.contains(block) {
            info!("Writing block {block} to disk");
            let written = match &entry.value {
                MemoryValue::Values(v) => self
                    .disk_store
                    .put(block, self.format, |w| v.write_to(w, self.format)),
                MemoryValue::Bytes { bytes, format } => {
                    self.disk_store.put(block, *format, |w: &mut dyn Write| {
                        w.write_all(bytes).map(|_| bytes.len() as u64)
                    })
                }
            };
            if let Err(e) = written {
                warn!("could not write evicted block {block} to disk ({e}); dropping it");
            }
        }
        info!("Dropping block {block} from memory");
        let freed = self.memory_store.remove(block).map_or(0, |e| e.size);
        self.report(block);
        freed
    }
}

impl BlockEvictor for BlockManager {
    fn evict_blocks_to_free_space(&self, for_block: Option<BlockId>, space: u64) -> u64 {
        let _g = self.status_lock.lock();
        let Some(victims) = self
            .memory_store
            .select_victims(for_block.map(|b| b.rdd_id()), space)
        else {
            if let Some(b) = for_block {
                info!(
                    "Will not store {b}: not enough memory can be freed ({} needed)",
                    bytes_to_string(space)
                );
            }
            return 0;
        };
        victims.into_iter().map(|b| self.drop_from_memory(b)).sum()
    }
}

impl ember_net::block_server::BlockStore for BlockManager {
    fn get_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.bytes.lock().get(id).map(|b| b.as_ref().clone())
    }

    fn remove(&self, id: &str) -> bool {
        self.bytes.lock().remove(id).is_some()
    }
}

/// A partition being unrolled.
enum Unrolled<'a, T, I> {
    /// All elements, with the storage memory reserved for their estimated size.
    Values {
        values: Vec<T>,
        reservation: Reservation<'a>,
    },
    /// All elements serialized, with the storage memory reserved for exactly the bytes.
    Bytes {
        bytes: Vec<u8>,
        values: Vec<T>,
        reservation: Reservation<'a>,
    },
    /// Memory ran out: the elements so far, the rest of the computation, and the size reached.
    TooLarge {
        unrolled: Vec<T>,
        rest: I,
        so_far: u64,
    },
}

/// Storage memory reserved while a block is unrolled; returned when dropped, unless it became
/// the block's memory.
struct Reservation<'a> {
    memory: &'a UnifiedMemoryManager,
    bytes: u64,
}

impl Reservation<'_> {
    fn grow(&mut self, block: BlockId, bytes: u64) -> bool {
        let ok = self.memory.acquire_storage_memory(block, bytes);
        if ok {
            self.bytes += bytes;
        }
        ok
    }

    /// Makes the reservation exactly `size` bytes; false when more memory cannot be had.
    fn resize(&mut self, block: BlockId, size: u64) -> bool {
        if size > self.bytes {
            self.grow(block, size - self.bytes)
        } else {
            self.memory.release_storage_memory(self.bytes - size);
            self.bytes = size;
            true
        }
    }

    /// The memory now belongs to a stored block.
    fn into_stored(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.memory.release_storage_memory(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(
        max: u64,
        dir: &std::path::Path,
        extra: &[(&str, &str)],
    ) -> (Arc<BlockManager>, Arc<BlockManagerMaster>) {
        let master = Arc::new(BlockManagerMaster::new());
        let id = BlockManagerId {
            executor_id: "0".into(),
            host: "localhost".into(),
            port: 0,
        };
        let mut conf = EmberConf::new().set(conf::STORAGE_UNROLL_MEMORY_THRESHOLD, "1k");
        for (k, v) in extra {
            conf = conf.set(*k, *v);
        }
        let bm = BlockManager::new(
            id,
            master.clone(),
            MemoryConfig::fixed(max, max / 2),
            dir.join("blocks"),
            &conf,
        )
        .unwrap();
        (bm, master)
    }

    fn block(rdd_id: usize, partition: usize) -> BlockId {
        BlockId::Rdd { rdd_id, partition }
    }

    /// Runs get_or_compute and returns the elements and whether they came from the cache.
    fn read(bm: &BlockManager, b: BlockId, level: StorageLevel, n: u64) -> (Vec<u64>, bool) {
        match bm.get_or_compute(b, level, || 0..n) {
            GetOrCompute::Hit(Values::Shared(v)) => (v.to_vec(), true),
            GetOrCompute::Hit(Values::Owned(v)) => (v, true),
            GetOrCompute::Computed(Values::Shared(v)) => (v.to_vec(), false),
            GetOrCompute::Computed(Values::Owned(v)) => (v, false),
            GetOrCompute::Partial(head, rest) => (head.into_iter().chain(rest).collect(), false),
        }
    }

    #[test]
    fn every_level_caches_and_reads_back() {
        for level in [
            StorageLevel::MEMORY_ONLY,
            StorageLevel::MEMORY_ONLY_SER,
            StorageLevel::MEMORY_AND_DISK,
            StorageLevel::MEMORY_AND_DISK_SER,
            StorageLevel::DISK_ONLY,
        ] {
            for compress in ["false", "true"] {
                let dir = tempfile::tempdir().unwrap();
                let (bm, master) = manager(1 << 20, dir.path(), &[(conf::RDD_COMPRESS, compress)]);
                let b = block(1, 0);
                assert_eq!(
                    read(&bm, b, level, 1000),
                    ((0..1000).collect(), false),
                    "{level}"
                );
                assert_eq!(
                    read(&bm, b, level, 1000),
                    ((0..1000).collect(), true),
                    "{level}: second read hits"
                );
                let st = bm.status(b);
                assert_eq!(st.level.use_memory, level.use_memory, "{level}");
                assert_eq!(
                    st.level.use_disk, !level.use_memory,
                    "{level}: disk only without memory"
                );
                if level == StorageLevel::MEMORY_ONLY_SER && compress == "false" {
                    let mut e = block_codec::BytesEncoder::new(ChunkFormat::new(
                        false,
                        Some(crate::codec::ChecksumAlgorithm::Adler32),
                    ));
                    for i in 0..1000u64 {
                        e.push(&i).unwrap();
                    }
                    assert_eq!(
                        st.memory_size,
                        e.finish().unwrap().len() as u64,
                        "serialized blocks are sized exactly"
                    );
                }
                assert_eq!(master.locations(b).len(), 1);
                assert_eq!(bm.memory_manager().metrics().storage_used, bm.memory_used());
                assert_eq!(bm.remove_rdd(1), 1);
                assert_eq!(bm.memory_manager().metrics().storage_used, 0);
                assert_eq!(bm.disk_used(), 0);
                assert!(master.locations(b).is_empty());
            }
        }
    }

    #[test]
    fn eviction_moves_disk_levels_to_disk_and_drops_the_others() {
        let dir = tempfile::tempdir().unwrap();
        // 64 KiB of storage; 4000 u64 are about 40 KiB estimated: two blocks cannot both fit.
        let (bm, master) = manager(64 << 10, dir.path(), &[]);
        read(&bm, block(0, 0), StorageLevel::MEMORY_ONLY, 4000);
        read(&bm, block(1, 0), StorageLevel::MEMORY_AND_DISK, 4000);
        assert!(
            !bm.memory_store().contains(block(0, 0)),
            "the older block of another RDD was evicted"
        );
        assert!(
            master.locations(block(0, 0)).is_empty(),
            "and the master forgot it"
        );
        read(&bm, block(2, 0), StorageLevel::MEMORY_ONLY, 4000);
        let st = bm.status(block(1, 0));
        assert!(
            st.level.use_disk && !st.level.use_memory && st.disk_size > 0,
            "{st:?}"
        );
        assert_eq!(
            read(&bm, block(1, 0), StorageLevel::MEMORY_AND_DISK, 4000),
            ((0..4000).collect(), true),
            "read back from disk"
        );
        assert_eq!(
            read(&bm, block(0, 0), StorageLevel::MEMORY_ONLY, 4000),
            ((0..4000).collect(), false),
            "recomputed"
        );
        assert_eq!(master.storage_status()[0].blocks_evicted, 3);
    }

    #[test]
    fn a_partition_larger_than_memory_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let (bm, _) = manager(64 << 10, dir.path(), &[]);
        let (v, hit) = read(&bm, block(0, 0), StorageLevel::MEMORY_ONLY, 100_000);
        assert_eq!((v.len(), hit), (100_000, false));
        assert!(
            v.iter().copied().eq(0..100_000),
            "elements in order across the unrolled part and the rest"
        );
        assert_eq!(bm.status(block(0, 0)), BlockStatus::REMOVED);
        assert_eq!(
            bm.memory_manager().metrics().storage_used,
            0,
            "the unroll memory was given back"
        );
        // With disk, it lands there.
        let (v, _) = read(&bm, block(0, 1), StorageLevel::MEMORY_AND_DISK_SER, 100_000);
        assert_eq!(v.len(), 100_000);
        let st = bm.status(block(0, 1));
        assert!(st.level.use_disk && !st.level.use_memory);
        assert_eq!(bm.memory_manager().metrics().storage_used, 0);
    }

    #[test]
    fn damaged_disk_blocks_are_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        let (bm, _) = manager(1 << 20, dir.path(), &[]);
        let b = block(4, 2);
        read(&bm, b, StorageLevel::DISK_ONLY, 5000);
        let path = bm.disk_store().get(b).unwrap().path;
        std::fs::write(&path, b"\x05\x00\x00\x00garbage").unwrap();
        assert_eq!(
            read(&bm, b, StorageLevel::DISK_ONLY, 5000),
            ((0..5000).collect(), false)
        );
        assert_eq!(
            read(&bm, b, StorageLevel::DISK_ONLY, 5000),
            ((0..5000).collect(), true),
            "stored again"
        );
    }
}
