//! Block storage: cached RDD partitions in memory and on disk (and, in cluster mode, large task
//! results), and the driver's registry of where they are.

pub mod block_codec;
pub mod block_manager;
pub mod block_manager_master;
pub mod disk_store;
pub mod memory_store;
pub mod status;
pub mod storage_level;

pub use block_manager::{BlockId, BlockManager, GetOrCompute, Values};
pub use block_manager_master::BlockManagerMaster;
pub use status::{BlockStatus, ExecutorStorageStatus, RddStorageInfo};
pub use storage_level::StorageLevel;
