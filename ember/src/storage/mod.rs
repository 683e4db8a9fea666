//! Block storage: cached RDD partitions (and, in cluster mode, large task results).

pub mod block_manager;
pub mod block_manager_master;
pub mod storage_level;

pub use block_manager::{BlockId, BlockManager};
pub use block_manager_master::BlockManagerMaster;
pub use storage_level::StorageLevel;
