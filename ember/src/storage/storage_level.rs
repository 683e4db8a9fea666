//! Storage levels (Spark's `StorageLevel`): shared with the scheduler core, which prefers the
//! executors holding a cached partition, so the type lives in `ember-common`.

pub use ember_common::StorageLevel;
