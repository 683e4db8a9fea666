//! Storage levels (Spark's `StorageLevel`).

use serde::{Deserialize, Serialize};

/// How a persisted RDD's partitions are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StorageLevel {
    /// Written to the executor's local disk (when evicted from memory, or always without memory).
    pub use_disk: bool,
    /// Kept in the executor's storage memory while it fits.
    pub use_memory: bool,
    /// Kept as objects (true) or serialized bytes (false).
    pub deserialized: bool,
    /// Copies on different executors. Ember keeps one: a level asking for more is refused
    /// (`EmberError::ReplicationNotSupported`).
    pub replication: u8,
}

impl StorageLevel {
    /// Not persisted.
    pub const NONE: StorageLevel = StorageLevel {
        use_disk: false,
        use_memory: false,
        deserialized: false,
        replication: 1,
    };
    /// Serialized on disk only.
    pub const DISK_ONLY: StorageLevel = StorageLevel {
        use_disk: true,
        use_memory: false,
        deserialized: false,
        replication: 1,
    };
    /// [`StorageLevel::DISK_ONLY`] on two executors (not supported).
    pub const DISK_ONLY_2: StorageLevel = StorageLevel {
        replication: 2,
        ..StorageLevel::DISK_ONLY
    };
    /// [`StorageLevel::DISK_ONLY`] on three executors (not supported).
    pub const DISK_ONLY_3: StorageLevel = StorageLevel {
        replication: 3,
        ..StorageLevel::DISK_ONLY
    };
    /// Objects in memory; partitions that do not fit are recomputed when needed.
    pub const MEMORY_ONLY: StorageLevel = StorageLevel {
        use_disk: false,
        use_memory: true,
        deserialized: true,
        replication: 1,
    };
    /// [`StorageLevel::MEMORY_ONLY`] on two executors (not supported).
    pub const MEMORY_ONLY_2: StorageLevel = StorageLevel {
        replication: 2,
        ..StorageLevel::MEMORY_ONLY
    };
    /// Serialized bytes in memory (smaller, slower to read); partitions that do not fit are
    /// recomputed when needed.
    pub const MEMORY_ONLY_SER: StorageLevel = StorageLevel {
        use_disk: false,
        use_memory: true,
        deserialized: false,
        replication: 1,
    };
    /// [`StorageLevel::MEMORY_ONLY_SER`] on two executors (not supported).
    pub const MEMORY_ONLY_SER_2: StorageLevel = StorageLevel {
        replication: 2,
        ..StorageLevel::MEMORY_ONLY_SER
    };
    /// Objects in memory; partitions that do not fit, or are evicted, go to disk.
    pub const MEMORY_AND_DISK: StorageLevel = StorageLevel {
        use_disk: true,
        use_memory: true,
        deserialized: true,
        replication: 1,
    };
    /// [`StorageLevel::MEMORY_AND_DISK`] on two executors (not supported).
    pub const MEMORY_AND_DISK_2: StorageLevel = StorageLevel {
        replication: 2,
        ..StorageLevel::MEMORY_AND_DISK
    };
    /// Serialized bytes in memory; partitions that do not fit, or are evicted, go to disk.
    pub const MEMORY_AND_DISK_SER: StorageLevel = StorageLevel {
        use_disk: true,
        use_memory: true,
        deserialized: false,
        replication: 1,
    };
    /// [`StorageLevel::MEMORY_AND_DISK_SER`] on two executors (not supported).
    pub const MEMORY_AND_DISK_SER_2: StorageLevel = StorageLevel {
        replication: 2,
        ..StorageLevel::MEMORY_AND_DISK_SER
    };

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sparks() {
        assert_eq!(
            StorageLevel::MEMORY_AND_DISK_SER.to_string(),
            "MEMORY_AND_DISK_SER"
        );
        assert_eq!(StorageLevel::MEMORY_ONLY_2.to_string(), "MEMORY_ONLY_2");
        assert_eq!(StorageLevel::DISK_ONLY_3.to_string(), "DISK_ONLY_3");
        assert!(!StorageLevel::NONE.is_valid() && StorageLevel::DISK_ONLY.is_valid());
    }
}
