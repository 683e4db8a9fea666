//! Scheduling: the DAG scheduler (stages), the task scheduler (which task runs where), the
//! backends that reach executors, and the event loop that owns them.
//!
//! The core (`dag_scheduler`, `task_scheduler`, `task_set_manager`, `task_set_excludelist`,
//! `health_tracker`, `pool`, `locality`) is plain state machines: no sockets, no sleeping; time
//! comes from a [`clock::Clock`] and randomness from a seeded RNG, so tests drive it exactly.

pub mod backend;
pub mod clock;
pub mod cluster_backend;
pub mod dag_scheduler;
pub mod event_loop;
pub mod health_tracker;
pub mod heartbeat_receiver;
pub mod local_backend;
pub mod locality;
pub mod pool;
#[cfg(test)]
mod simulation;
pub mod stage;
pub mod task_scheduler;
pub mod task_set;
pub mod task_set_excludelist;
pub mod task_set_manager;
