//! # ember-scheduler
//!
//! The scheduler core of Ember, as plain state machines (Spark's `DAGScheduler`,
//! `TaskSchedulerImpl`, `TaskSetManager`, pools, `HealthTracker`, `HeartbeatReceiver`):
//!
//! - [`dag_scheduler`] cuts a job into [`stage`]s at the shuffle boundaries of an RDD graph it sees
//!   through [`rdd`]'s structure-only traits, submits a stage's missing tasks once its parents'
//!   outputs exist ([`map_output_tracker`]), and reacts to task ends, fetch failures and lost
//!   executors. What it wants done it returns as actions: task sets to run, events for a job's
//!   caller, accumulator updates to apply.
//! - [`task_scheduler`] assigns the tasks of all active [`task_set`]s to free cores
//!   ([`task_scheduler::TaskSchedulerImpl::resource_offers`]) in the order of the [`pool`]s, with
//!   delay scheduling over [`locality`] levels, retries, speculation and `excludeOnFailure`
//!   ([`task_set_excludelist`], [`health_tracker`]); each task set has a [`task_set_manager`].
//! - [`heartbeat_receiver`] tells which executors have gone silent.
//!
//! Everything comes in as plain data or through a trait defined here: the configuration as
//! typed structs ([`config`], filled in by `ember` from its `ember.*` keys and
//! `fairscheduler.xml`), time from a [`clock::Clock`], randomness from a seed, cache locations
//! from a [`cache_locations::CacheLocations`], task code as an opaque [`task::TaskBody`]. So a
//! test or the simulator (`simulation.rs`, tests only) drives the real scheduler exactly, and a
//! seed replays a run.
//!
//! Architecture invariant: the core never sees a thread, a socket, a file, a channel or the
//! system clock, and knows nothing of executors, task contexts, serialization, accumulators'
//! types or configuration keys. It depends on `ember-common` and small pure crates only; no
//! other Ember crate depends on it but `ember`.

pub mod barrier_coordinator;
pub mod cache_locations;
pub mod clock;
pub mod config;
pub mod dag_scheduler;
pub mod error;
pub mod health_tracker;
pub mod heartbeat_receiver;
pub mod live_executors;
pub mod locality;
pub mod map_output_tracker;
pub mod pool;
pub mod rdd;
pub mod stage;
pub mod task;
pub mod task_scheduler;
pub mod task_set;
pub mod task_set_excludelist;
pub mod task_set_manager;

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod test_support;

pub use error::SchedulerError;
