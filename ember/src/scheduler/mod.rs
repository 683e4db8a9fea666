//! Scheduling on the driver: the scheduler core (`ember-scheduler`, re-exported here under its
//! own module names) and what puts it to work in a process:
//!
//! - [`event_loop`]: the one thread that owns the DAG scheduler, the task scheduler and the
//!   backend, turns their actions into messages to executors and answers to waiting jobs;
//! - [`backend`], [`local_backend`], [`cluster_backend`]: how tasks reach executors (in this
//!   process, or in executor processes over the network);
//! - [`conf`] and [`allocation_file`]: the core's typed configuration, from `ember.*` keys and
//!   `fairscheduler.xml`;
//! - [`recorder`]: what the event loop tells the listener bus; [`status`]: `Context::status()`,
//!   kept by a listener of the bus;
//! - [`system_clock`]: the real time the core is driven by.
//!
//! The core never sees a thread, a socket, a file or the system clock; everything that does is
//! in this module.

// Named here for the integration tests (feature `testing`), which speak the wire protocol.
#[cfg_attr(not(feature = "testing"), allow(unused_imports))]
pub use ember_scheduler::{
    cache_locations, clock, config, dag_scheduler, health_tracker, heartbeat_receiver,
    live_executors, locality, map_output_tracker, pool, rdd, stage, task_scheduler, task_set,
    task_set_excludelist, task_set_manager, SchedulerError,
};

pub mod allocation_file;
pub mod backend;
pub mod cluster_backend;
pub mod conf;
pub mod event_loop;
pub mod local_backend;
pub mod recorder;
pub mod status;
pub mod system_clock;
