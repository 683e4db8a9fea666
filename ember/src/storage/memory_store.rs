//! `MemoryStore`: cached blocks in an executor's memory, whole, in least-recently-used order
//! (Spark's `MemoryStore`).
//!
//! The store only keeps entries and their order; the memory they occupy is reserved with the
//! `UnifiedMemoryManager` before an entry is added and returned after it is
//! removed, by the block manager.

use std::any::Any;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::{BlockId, StorageLevel};
use crate::codec::ChunkFormat;
use crate::data::Data;

/// A partition's elements kept as objects, with their type erased so that the store can write
/// them to disk when they are evicted.
pub trait StoredValues: Send + Sync {
    /// The elements as `Arc<dyn Any>`, to downcast to `Vec<T>`.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// Writes the elements in the serialized block format ([`super::block_codec`]).
    fn write_to(&self, out: &mut dyn Write, format: ChunkFormat) -> std::io::Result<u64>;
}

impl<T: Data> StoredValues for Vec<T> {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
    fn write_to(&self, out: &mut dyn Write, format: ChunkFormat) -> std::io::Result<u64> {
        super::block_codec::write_values(self, out, format)
    }
}

/// What a memory entry holds.
#[derive(Clone)]
pub enum MemoryValue {
    /// Objects (deserialized levels).
    Values(Arc<dyn StoredValues>),
    /// Serialized bytes (`_SER` levels), in the chunk format `format`.
    #[allow(missing_docs)]
    Bytes {
        bytes: Arc<Vec<u8>>,
        format: ChunkFormat,
    },
}

/// One cached block.
#[derive(Clone)]
pub struct MemoryEntry {
    /// The block's content.
    pub value: MemoryValue,
    /// Storage memory reserved for it.
    pub size: u64,
    /// The level it was persisted with (whether eviction moves it to disk).
    pub level: StorageLevel,
}

#[derive(Default)]
struct Entries {
    map: FxHashMap<BlockId, (MemoryEntry, u64)>,
    /// Blocks by last use: the first is the least recently used.
    order: BTreeMap<u64, BlockId>,
    next_use: u64,
    used: u64,
}

impl Entries {
    fn touch(&mut self, block: BlockId) {
        let next = self.next_use;
        if let Some((_, last)) = self.map.get_mut(&block) {
            self.order.remove(last);
            *last = next;
            self.order.insert(next, block);
            self.next_use += 1;
        }
    }
}

/// Cached blocks in memory, in LRU order.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block; false (and nothing changes) when it is already there.
    pub fn put(&self, block: BlockId, entry: MemoryEntry) -> bool {
        let mut e = self.entries.lock();
        if e.map.contains_key(&block) {
            return false;
        }
        let last = e.next_use;
        e.next_use += 1;
        e.used += entry.size;
        e.order.insert(last, block);
        e.map.insert(block, (entry, last));
        true
    }

    /// A block, marked as just used.
    pub fn get(&self, block: BlockId) -> Option<MemoryEntry> {
        let mut e = self.entries.lock();
        let entry = e.map.get(&block).map(|(entry, _)| entry.clone())?;
        e.touch(block);
        Some(entry)
    }

    /// Whether the block is here.
    pub fn contains(&self, block: BlockId) -> bool {
        self.entries.lock().map.contains_key(&block)
    }

    /// The size of a block here.
    pub fn size(&self, block: BlockId) -> Option<u64> {
        self.entries
            .lock()
            .map
            .get(&block)
            .map(|(entry, _)| entry.size)
    }

    /// A block's size and level, without marking it as used.
    pub fn peek(&self, block: BlockId) -> Option<(u64, StorageLevel)> {
        self.entries
            .lock()
            .map
            .get(&block)
            .map(|(entry, _)| (entry.size, entry.level))
    }

    /// Removes a block.
    pub fn remove(&self, block: BlockId) -> Option<MemoryEntry> {
        let mut e = self.entries.lock();
        let (entry, last) = e.map.remove(&block)?;
        e.order.remove(&last);
        e.used -= entry.size;
        Some(entry)
    }

    /// The blocks to evict to free `space` bytes, least recently used first, skipping blocks of
    /// `exclude_rdd` (Spark never evicts a block of the RDD being stored: it would evict the
    /// partitions the same job is about to read). `None` when not enough can be freed, so that
    /// nothing is evicted for a block that will not fit anyway.
    pub fn select_victims(&self, exclude_rdd: Option<usize>, space: u64) -> Option<Vec<BlockId>> {
        let e = self.entries.lock();
        let mut freed = 0;
        let mut victims = Vec::new();
        for block in e.order.values() {
            if freed >= space {
                break;
            }
            let BlockId::Rdd { rdd_id, .. } = block;
            if exclude_rdd == Some(*rdd_id) {
                continue;
            }
            if let Some((entry, _)) = e.map.get(block) {
                freed += entry.size;
                victims.push(*block);
            }
        }
        (freed >= space).then_some(victims)
    }

    /// Every block held here.
    pub fn blocks(&self) -> Vec<BlockId> {
        self.entries.lock().map.keys().copied().collect()
    }

    /// The blocks of an RDD held here.
    pub fn blocks_of_rdd(&self, rdd: usize) -> Vec<BlockId> {
        self.entries
            .lock()
            .map
            .keys()
            .filter(|BlockId::Rdd { rdd_id, .. }| *rdd_id == rdd)
            .copied()
            .collect()
    }

    /// Bytes of all entries.
    pub fn memory_used(&self) -> u64 {
        self.entries.lock().used
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.lock().map.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(rdd_id: usize, partition: usize) -> BlockId {
        BlockId::Rdd { rdd_id, partition }
    }

    fn entry(size: u64) -> MemoryEntry {
        MemoryEntry {
            value: MemoryValue::Values(Arc::new(vec![size])),
            size,
            level: StorageLevel::MEMORY_ONLY,
        }
    }

    #[test]
    fn evicts_least_recently_used_first_and_never_the_rdd_being_stored() {
        let s = MemoryStore::new();
        for p in 0..3 {
            assert!(s.put(block(0, p), entry(100)));
        }
        assert!(s.put(block(1, 0), entry(100)));
        assert!(!s.put(block(1, 0), entry(5)), "a block is stored once");
        assert_eq!(s.memory_used(), 400);
        // Reading block 0 makes it the most recently used.
        assert!(s.get(block(0, 0)).is_some());
        assert_eq!(
            s.select_victims(None, 150),
            Some(vec![block(0, 1), block(0, 2)])
        );
        assert_eq!(s.select_victims(Some(0), 100), Some(vec![block(1, 0)]));
        assert_eq!(s.select_victims(Some(0), 101), None, "all or nothing");
        assert_eq!(
            s.select_victims(Some(1), 300),
            Some(vec![block(0, 1), block(0, 2), block(0, 0)])
        );
        assert_eq!(s.select_victims(None, 0), Some(vec![]));
    }

    #[test]
    fn removal_and_lookup() {
        let s = MemoryStore::new();
        s.put(block(3, 1), entry(10));
        s.put(block(3, 2), entry(20));
        s.put(block(4, 0), entry(30));
        let mut of3 = s.blocks_of_rdd(3);
        of3.sort();
        assert_eq!(of3, vec![block(3, 1), block(3, 2)]);
        assert_eq!(s.remove(block(3, 1)).map(|e| e.size), Some(10));
        assert!(s.remove(block(3, 1)).is_none());
        assert_eq!(s.size(block(3, 2)), Some(20));
        assert_eq!(s.memory_used(), 50);
        assert_eq!(s.len(), 2);
        let Some(MemoryEntry {
            value: MemoryValue::Values(v),
            ..
        }) = s.get(block(4, 0))
        else {
            panic!("values expected")
        };
        assert_eq!(*v.as_any().downcast::<Vec<u64>>().unwrap(), vec![30]);
        assert_eq!(
            s.select_victims(None, 40),
            Some(vec![block(3, 2), block(4, 0)])
        );
    }
}
