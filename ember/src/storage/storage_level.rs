//! Storage levels (Spark's `StorageLevel`).

use serde::{Deserialize, Serialize};

/// How a persisted RDD's partitions are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StorageLevel {
    pub use_disk: bool,
    pub use_memory: bool,
    /// Kept as objects (true) or serialized bytes (false).
    pub deserialized: bool,
    pub replication: u8,
}

impl StorageLevel {
    pub const NONE: StorageLevel = StorageLevel { use_disk: false, use_memory: false, deserialized: false, replication: 1 };
    pub const DISK_ONLY: StorageLevel = StorageLevel { use_disk: true, use_memory: false, deserialized: false, replication: 1 };
    pub const MEMORY_ONLY: StorageLevel = StorageLevel { use_disk: false, use_memory: true, deserialized: true, replication: 1 };
    pub const MEMORY_ONLY_SER: StorageLevel = StorageLevel { use_disk: false, use_memory: true, deserialized: false, replication: 1 };
    pub const MEMORY_AND_DISK: StorageLevel = StorageLevel { use_disk: true, use_memory: true, deserialized: true, replication: 1 };
    pub const MEMORY_AND_DISK_SER: StorageLevel = StorageLevel { use_disk: true, use_memory: true, deserialized: false, replication: 1 };

    /// Whether anything is stored at this level.
    pub fn is_valid(&self) -> bool {
        self.use_memory || self.use_disk
    }
}

impl std::fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match (self.use_disk, self.use_memory, self.deserialized) {
            (false, false, _) => "NONE",
            (true, false, _) => "DISK_ONLY",
            (false, true, true) => "MEMORY_ONLY",
            (false, true, false) => "MEMORY_ONLY_SER",
            (true, true, true) => "MEMORY_AND_DISK",
            (true, true, false) => "MEMORY_AND_DISK_SER",
        };
        if self.replication > 1 {
            write!(f, "{name}_{}", self.replication)
        } else {
            f.write_str(name)
        }
    }
}
