//! The listener bus (Spark's `SparkListener` and `LiveListenerBus`): what happens to the
//! application — jobs, stages, tasks, executors, blocks — as events, delivered in order to
//! each listener on its own thread.
//!
//! The scheduler's event loop posts and never waits: each listener has a bounded queue
//! (`ember.scheduler.listenerbus.eventqueue.capacity`, 10000) and a thread that drains it; when
//! a listener cannot keep up its queue fills, and further events for it are dropped and counted
//! (logged as Spark does: "Dropping event from queue …" once, then the count every minute).
//! The web UI's store, the event log and the console progress bar are listeners like the ones
//! programs register with `Context::add_listener`.
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
//! use ember::listener::{Listener, events::TaskEnd};
//! use ember::prelude::*;
//!
//! struct CountTasks(Arc<AtomicU64>);
//! impl Listener for CountTasks {
//!     fn on_task_end(&mut self, _event: &TaskEnd) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let ctx = Context::new(
//!     EmberConf::new()
//!         .set_master("local[2]")
//!         .set("ember.ui.enabled", "false"),
//! )
//! .unwrap();
//! let ended = Arc::new(AtomicU64::new(0));
//! ctx.add_listener(CountTasks(ended.clone()));
//! ctx.parallelize((0..100u32).collect::<Vec<_>>(), 4).count().unwrap();
//! ctx.stop(); // delivers what is queued, then stops the listeners
//! assert_eq!(ended.load(Ordering::Relaxed), 4);
//! ```

mod bus;
pub mod events;

pub use bus::{ListenerBus, QueueStats};

use events::*;

/// Receives the application's events (Spark's `SparkListener`): every method does nothing
/// unless overridden. Each listener runs on its own thread and sees events in the order they
/// were posted; a slow one loses events rather than slowing the scheduler.
#[allow(unused_variables)]
pub trait Listener: Send + 'static {
    /// A stage attempt was submitted.
    fn on_stage_submitted(&mut self, event: &StageSubmitted) {}
    /// A stage attempt ended (completed, failed or cancelled).
    fn on_stage_completed(&mut self, event: &StageCompleted) {}
    /// A task attempt was launched.
    fn on_task_start(&mut self, event: &TaskStart) {}
    /// The driver started fetching a task's result from its executor.
    fn on_task_getting_result(&mut self, event: &TaskGettingResult) {}
    /// A task attempt ended.
    fn on_task_end(&mut self, event: &TaskEnd) {}
    /// A job was submitted.
    fn on_job_start(&mut self, event: &JobStart) {}
    /// A job ended.
    fn on_job_end(&mut self, event: &JobEnd) {}
    /// The application's environment (configuration, system properties).
    fn on_environment_update(&mut self, event: &EnvironmentUpdate) {}
    /// A block manager registered.
    fn on_block_manager_added(&mut self, event: &BlockManagerAdded) {}
    /// A block manager is gone.
    fn on_block_manager_removed(&mut self, event: &BlockManagerRemoved) {}
    /// An RDD was unpersisted.
    fn on_unpersist_rdd(&mut self, event: &UnpersistRdd) {}
    /// The application started.
    fn on_application_start(&mut self, event: &ApplicationStart) {}
    /// The application ended.
    fn on_application_end(&mut self, event: &ApplicationEnd) {}
    /// An executor joined.
    fn on_executor_added(&mut self, event: &ExecutorAdded) {}
    /// An executor is gone.
    fn on_executor_removed(&mut self, event: &ExecutorRemoved) {}
    /// An executor was excluded for the application (excludeOnFailure).
    fn on_executor_excluded(&mut self, event: &ExecutorExcluded) {}
    /// An executor's exclusion ended.
    fn on_executor_unexcluded(&mut self, event: &ExecutorUnexcluded) {}
    /// An executor's heartbeat: its running tasks' metrics.
    fn on_executor_metrics_update(&mut self, event: &ExecutorMetricsUpdate) {}
    /// A block changed place.
    fn on_block_updated(&mut self, event: &BlockUpdated) {}
}

/// Calls the method of `listener` for `event` (Spark's `SparkListenerBus.doPostEvent`).
pub fn dispatch(listener: &mut dyn Listener, event: &ListenerEvent) {
    match event {
        ListenerEvent::StageSubmitted(e) => listener.on_stage_submitted(e),
        ListenerEvent::StageCompleted(e) => listener.on_stage_completed(e),
        ListenerEvent::TaskStart(e) => listener.on_task_start(e),
        ListenerEvent::TaskGettingResult(e) => listener.on_task_getting_result(e),
        ListenerEvent::TaskEnd(e) => listener.on_task_end(e),
        ListenerEvent::JobStart(e) => listener.on_job_start(e),
        ListenerEvent::JobEnd(e) => listener.on_job_end(e),
        ListenerEvent::EnvironmentUpdate(e) => listener.on_environment_update(e),
        ListenerEvent::BlockManagerAdded(e) => listener.on_block_manager_added(e),
        ListenerEvent::BlockManagerRemoved(e) => listener.on_block_manager_removed(e),
        ListenerEvent::UnpersistRdd(e) => listener.on_unpersist_rdd(e),
        ListenerEvent::ApplicationStart(e) => listener.on_application_start(e),
        ListenerEvent::ApplicationEnd(e) => listener.on_application_end(e),
        ListenerEvent::ExecutorAdded(e) => listener.on_executor_added(e),
        ListenerEvent::ExecutorRemoved(e) => listener.on_executor_removed(e),
        ListenerEvent::ExecutorExcluded(e) => listener.on_executor_excluded(e),
        ListenerEvent::ExecutorUnexcluded(e) => listener.on_executor_unexcluded(e),
        ListenerEvent::ExecutorMetricsUpdate(e) => listener.on_executor_metrics_update(e),
        ListenerEvent::BlockUpdated(e) => listener.on_block_updated(e),
    }
}

/// A listener that also wants every event whole, e.g. to write it out (the event log).
pub trait EventSink: Send + 'static {
    /// Handles one event.
    fn on_event(&mut self, event: &ListenerEvent);
    /// The queue's thread has handed over every event it took in one go (a batch of up to
    /// 256, or what came within the linger time); a sink that buffers output writes it here.
    fn on_batch_end(&mut self) {}
    /// The bus is stopping: nothing follows.
    fn on_stop(&mut self) {}
}

impl<L: Listener> EventSink for L {
    fn on_event(&mut self, event: &ListenerEvent) {
        dispatch(self, event)
    }
}
