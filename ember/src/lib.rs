//! # Ember
//!
//! Apache Spark's core — its DAG and task schedulers, its executors, its shuffle — rebuilt in
//! Rust, for Rust programs. Jobs are written against a typed RDD API with Spark's names:
//!
//! ```
//! use ember::prelude::*;
//!
//! let ctx = Context::new(EmberConf::new().set_master("local[2]")).unwrap();
//! let counts = ctx
//!     .parallelize(vec!["a b".to_string(), "b c".into(), "c".into()], 2)
//!     .flat_map(|line: String| line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
//!     .map(|w| (w, 1u64))
//!     .reduce_by_key(|a, b| a + b, 2)
//!     .collect_as_map()
//!     .unwrap();
//! assert_eq!(counts["b"], 2);
//! ```
//!
//! See `ARCHITECTURE.md` for the map of modules and the life of a job.

pub mod accumulator;
pub mod aggregator;
pub mod broadcast;
pub mod codec;
pub mod conf;
pub mod context;
pub mod data;
pub mod env;
pub mod error;
pub mod executor;
pub mod io;
/// Where every shuffle's map outputs are (the scheduler core's `MapOutputTracker`).
pub use ember_scheduler::map_output_tracker;
pub mod memory;
pub mod metrics;
pub mod partitioner;
pub mod prefetch;
pub mod rpc;
pub mod rdd;
pub mod scheduler;
pub mod ship;
pub mod shuffle;
pub mod size_tracker;
pub mod storage;
pub mod task;
pub mod text;
pub mod ui;
pub mod util;

pub use error::{EmberError, Result};
pub use util::init_logging;

/// The README's Rust examples, compiled (and run) as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

/// Everything a job needs: `use ember::prelude::*;`.
pub mod prelude {
    pub use crate::accumulator::{Accumulator, AccumulatorValue};
    pub use crate::broadcast::Broadcast;
    pub use crate::conf::EmberConf;
    pub use crate::context::Context;
    pub use crate::error::{EmberError, Result, SchedulerError};
    pub use crate::partitioner::{HashPartitioner, Partitioner, RangePartitioner};
    pub use crate::rdd::{Actions, PairRdd, Rdd, Transformations};
    pub use crate::storage::StorageLevel;
    pub use crate::task::TaskContext;
}
