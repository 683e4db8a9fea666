//! Memory management of an executor (Spark's `org.apache.spark.memory`).
//!
//! One [`UnifiedMemoryManager`] per executor splits a fixed budget between *execution* (the
//! aggregation maps, sort buffers and shuffle writer buffers of running tasks) and *storage*
//! (cached partitions, and the memory used while a partition is unrolled into the cache). Each
//! running task reaches it through its [`TaskMemoryManager`]; the shuffle's growing collections
//! hold a [`MemoryConsumer`] that asks for more as they grow and tells them to spill when refused.

pub mod consumer;
pub mod memory_manager;
pub mod task_memory_manager;

pub use consumer::MemoryConsumer;
pub use memory_manager::{
    BlockEvictor, MemoryConfig, MemoryMetrics, MemorySource, UnifiedMemoryManager,
};
pub use task_memory_manager::TaskMemoryManager;
