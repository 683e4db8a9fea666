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
//! This crate is the one a program names. It puts together the scheduler core
//! (`ember-scheduler`), the network layer (`ember-net`) and the shared task types
//! (`ember-common`) with what runs jobs: the typed RDD API, the executors, the sort shuffle,
//! block storage and memory management, broadcast variables and accumulators. Types of the
//! lower crates that programs see are re-exported here.
//!
//! Its modules are layered: each uses only modules of the layers before it (checked by the
//! `ember-architecture` tests), in this order:
//!
//! 1. leaves: `error`, `data`, `size_tracker`, `util`, `text`, `prefetch`, `metrics`, `codec`,
//!    `aggregator`, `partitioner`, `ui`, `io`;
//! 2. `conf`, then `memory`, then `storage`;
//! 3. `task` (what a running task sees: its context, and its executor through
//!    `task::ExecutorServices`);
//! 4. `accumulator`, `broadcast`, `shuffle`;
//! 5. `ship`, `rpc`, `env`, then `executor`;
//! 6. `scheduler` (the glue around the core), then `context`, then `rdd`, then `prelude`.
//!
//! Architecture invariant: no module imports one of a later layer: the executor never imports
//! the scheduler, the shuffle never imports RDDs, the context never imports RDD types (RDDs add
//! their sources to it), memory never imports storage, and only `ship` turns bytes into code.
//! The scheduler's decisions are the core's; this crate only feeds it events and carries out
//! its actions. See `ARCHITECTURE.md` for the map of modules and the life of a job.

// Leaves.
pub mod aggregator;
pub mod codec;
pub mod data;
pub mod error;
pub mod io;
pub mod metrics;
pub mod partitioner;
pub mod prefetch;
pub mod size_tracker;
pub mod text;
pub mod ui;
pub mod util;

// Configuration, memory and blocks.
pub mod conf;
pub mod memory;
pub mod storage;

// What a running task sees, and what tasks use.
pub mod accumulator;
pub mod broadcast;
pub mod shuffle;
pub mod task;

// Executors and the wire.
pub mod env;
pub mod executor;
pub mod rpc;
pub mod ship;

// The driver.
pub mod context;
pub mod rdd;
pub mod scheduler;

/// Where every shuffle's map outputs are (the scheduler core's `MapOutputTracker`).
pub use ember_scheduler::map_output_tracker;

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
