//! `LiveListenerBus` and its `AsyncEventQueue`s: one bounded queue and one thread per listener.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use tracing::{error, warn};

use ember_scheduler::clock::Clock;

use super::events::ListenerEvent;
use super::EventSink;

/// How often the count of dropped events is logged (Spark's `LOGGING_INTERVAL`).
const DROP_REPORT_INTERVAL_MS: u64 = 60_000;

/// What one queue has done so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name (`appStatus`, `eventLog`, `progress`, or a user listener's type).
    pub name: String,
    /// Events it can hold.
    pub capacity: usize,
    /// Events waiting in it now.
    pub queued: u64,
    /// Events dropped because it was full.
    pub dropped: u64,
    /// Events its listener has handled (counted at the end of each batch it takes).
    pub processed: u64,
}

/// How many queued events wake a lingering queue thread at once.
const BATCH: usize = 256;
/// How long a queue thread that holds fewer than [`BATCH`] events waits for more before it
/// handles them. Waking a thread per event costs more than most listeners spend on one: on
/// 2 cores, 10,000 one-element tasks took twice as long with the UI on when each event woke
/// the UI's thread (BENCHMARKS.md). Listeners see events this much later, never out of order;
/// `wait_until_empty` and `stop` cut the wait short.
const LINGER: Duration = Duration::from_millis(20);

/// How long a queue's thread delivers events before it offers its core to the threads that
/// run jobs. A batch can take the UI's store a few hundred microseconds; without these yields
/// the kernel does not preempt it for a job's thread that wakes on the same core, and the jobs
/// that overlap a batch waited for it: W2's p99 with the UI on was 0.14–0.15 ms against
/// 0.024–0.029 ms with it off (BENCHMARKS.md). A time rather than a count of events, because
/// events differ several times in cost (a job's start against a task's end): a yield every 16
/// events cost W1 (10,000 short tasks) about 5 % more than this, for the same p99. A yield with
/// nothing else runnable returns at once.
const YIELD_AFTER: Duration = Duration::from_micros(10);

/// Events between two readings of the clock for [`YIELD_AFTER`].
const CLOCK_EVERY: usize = 4;

/// What a queue holds, under its lock.
#[derive(Default)]
struct Inbox {
    events: std::collections::VecDeque<Arc<ListenerEvent>>,
    /// Events taken by the thread and not yet handled.
    in_hand: u64,
    /// The thread waits for a first event (`Some(false)`) or for more (`Some(true)`).
    parked: Option<bool>,
    /// Callers of `wait_until_empty` now waiting: the thread must not linger.
    flushers: usize,
    stopping: bool,
}

impl Inbox {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.in_hand == 0
    }
}

/// One listener's queue (Spark's `AsyncEventQueue`).
struct Queue {
    name: String,
    capacity: usize,
    inbox: Mutex<Inbox>,
    /// Wakes the queue's thread.
    ready: Condvar,
    /// Wakes `wait_until_empty` callers.
    drained: Condvar,
    processed: AtomicU64,
    dropped: AtomicU64,
    logged_first_drop: AtomicBool,
    /// Time of the last "Dropped N events" report (0: none yet) and the count it reported.
    last_report_ms: AtomicU64,
    last_reported: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Queue {
    fn offer(&self, event: &Arc<ListenerEvent>, now_ms: impl FnOnce() -> u64) {
        let mut inbox = self.inbox.lock();
        if inbox.stopping {
            return;
        }
        if inbox.events.len() >= self.capacity {
            drop(inbox);
            self.dropped_one(now_ms());
            return;
        }
        inbox.events.push_back(event.clone());
        let wake = match inbox.parked {
            Some(false) => true,
            Some(true) => inbox.events.len() >= BATCH,
            None => false,
        };
        if wake {
            inbox.parked = None;
            self.ready.notify_one();
        }
    }

    /// Takes the next batch for the thread: waits for a first event, then up to [`LINGER`] for
    /// [`BATCH`] of them. False once the queue is stopping and empty.
    fn take(&self, batch: &mut Vec<Arc<ListenerEvent>>) -> bool {
        let mut inbox = self.inbox.lock();
        let mut deadline = None;
        loop {
            let n = inbox.events.len();
            if n >= BATCH || (n > 0 && (inbox.stopping || inbox.flushers > 0)) {
                break;
            }
            if n == 0 {
                if inbox.stopping {
                    return false;
                }
                inbox.parked = Some(false);
                self.ready.wait(&mut inbox);
                continue;
            }
            let until = *deadline.get_or_insert_with(|| std::time::Instant::now() + LINGER);
            inbox.parked = Some(true);
            if self.ready.wait_until(&mut inbox, until).timed_out() {
                break;
            }
        }
        inbox.parked = None;
        inbox.in_hand = inbox.events.len() as u64;
        batch.extend(inbox.events.drain(..));
        true
    }

    /// The thread handled what it took.
    fn handled(&self) {
        let mut inbox = self.inbox.lock();
        inbox.in_hand = 0;
        if inbox.events.is_empty() {
            self.drained.notify_all();
        }
    }

    /// Spark's `AsyncEventQueue.post` when the queue is full: one error the first time, then
    /// the count at most once a minute.
    fn dropped_one(&self, now_ms: u64) {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.logged_first_drop.swap(true, Ordering::Relaxed) {
            error!(
                "Dropping event from queue {}. This likely means one of the listeners is too slow \
                 and cannot keep up with the rate at which tasks are being started by the \
                 scheduler.",
                self.name
            );
        }
        let last = self.last_report_ms.load(Ordering::Relaxed);
        let since_last = dropped - self.last_reported.load(Ordering::Relaxed);
        if since_last > 0
            && now_ms.saturating_sub(last) >= DROP_REPORT_INTERVAL_MS
            && self
                .last_report_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.last_reported.store(dropped, Ordering::Relaxed);
            let since = if last == 0 {
                "the application started".to_string()
            } else {
                crate::util::gmt_date(last as i64)
            };
            warn!(
                "Dropped {since_last} events from {} since {since}.",
                self.name
            );
        }
    }

    fn stats(&self, capacity: usize) -> QueueStats {
        QueueStats {
            name: self.name.clone(),
            capacity,
            queued: self.inbox.lock().events.len() as u64,
            dropped: self.dropped.load(Ordering::Relaxed),
            processed: self.processed.load(Ordering::Relaxed),
        }
    }
}

/// The application's listener bus (Spark's `LiveListenerBus`). Posting never blocks: each
/// queue takes the event if it has room, else counts it as dropped.
pub struct ListenerBus {
    capacity: usize,
    clock: Arc<dyn Clock>,
    /// Epoch milliseconds at the clock's zero: event times are `epoch_at_zero + clock`.
    epoch_at_zero_ms: u64,
    queues: RwLock<Vec<Arc<Queue>>>,
    /// Listeners run on the posting thread, in order (the engine's own bookkeeping that must be
    /// exact when a job returns, `Context::status`); they only update counters under a lock.
    inline: Mutex<Vec<Box<dyn EventSink>>>,
    has_inline: AtomicBool,
    /// Whether any queue exists: without one, only the inline listeners see events, and the
    /// scheduler can skip building the details only queued listeners read.
    has_queues: AtomicBool,
    stopped: AtomicBool,
}

impl ListenerBus {
    /// A bus whose queues hold `capacity` events each, stamping times from `clock`, whose zero
    /// is `epoch_at_zero_ms` milliseconds after the Unix epoch.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>, epoch_at_zero_ms: u64) -> Self {
        ListenerBus {
            capacity: capacity.max(1),
            clock,
            epoch_at_zero_ms,
            queues: RwLock::new(Vec::new()),
            inline: Mutex::new(Vec::new()),
            has_inline: AtomicBool::new(false),
            has_queues: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }
    }

    /// Now, in milliseconds since the Unix epoch, on the scheduler's clock.
    pub fn time_ms(&self) -> u64 {
        self.epoch_at_zero_ms + self.clock.now_ms()
    }

    /// Epoch milliseconds of a time read from the scheduler's clock.
    pub fn epoch_ms(&self, clock_ms: u64) -> u64 {
        self.epoch_at_zero_ms + clock_ms
    }

    /// The scheduler's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Adds a listener with its own queue and thread (`ember-listener-group-NAME`).
    pub fn add_sink(&self, name: &str, sink: Box<dyn EventSink>) -> std::io::Result<()> {
        if self.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        let queue = Arc::new(Queue {
            name: name.to_string(),
            capacity: self.capacity,
            inbox: Mutex::new(Inbox::default()),
            ready: Condvar::new(),
            drained: Condvar::new(),
            processed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            logged_first_drop: AtomicBool::new(false),
            last_report_ms: AtomicU64::new(0),
            last_reported: AtomicU64::new(0),
            thread: Mutex::new(None),
        });
        let q = queue.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ember-listener-group-{name}"))
            .spawn(move || drain(q, sink))?;
        *queue.thread.lock() = Some(handle);
        self.queues.write().push(queue);
        self.has_queues.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether a listener with its own queue (the UI's store, the event log, the progress bar,
    /// a user's listener) has been added: the inline ones read only counts, not stage details.
    pub(crate) fn has_queues(&self) -> bool {
        self.has_queues.load(Ordering::Acquire)
    }

    /// Adds a listener that runs on the posting thread (crate-internal bookkeeping only).
    pub(crate) fn add_inline(&self, sink: Box<dyn EventSink>) {
        self.inline.lock().push(sink);
        self.has_inline.store(true, Ordering::Release);
    }

    /// Posts an event to every listener; never blocks on a listener. Dropped after `stop`.
    pub fn post(&self, event: ListenerEvent) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        if self.has_inline.load(Ordering::Acquire) {
            for sink in self.inline.lock().iter_mut() {
                sink.on_event(&event);
            }
        }
        let queues = self.queues.read();
        if queues.is_empty() {
            return;
        }
        let event = Arc::new(event);
        for q in queues.iter() {
            // The clock is read only to report drops: a read per event cost the scheduler's
            // thread more than the rest of posting on short tasks.
            q.offer(&event, || self.time_ms());
        }
    }

    /// Waits until every queue has handled what was posted so far, at most `timeout`; returns
    /// whether they did (Spark's `waitUntilEmpty`).
    pub fn wait_until_empty(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let queues: Vec<Arc<Queue>> = self.queues.read().clone();
        for q in queues {
            let mut inbox = q.inbox.lock();
            if inbox.is_empty() {
                continue;
            }
            inbox.flushers += 1;
            if inbox.parked == Some(true) {
                inbox.parked = None;
                q.ready.notify_one();
            }
            let mut timed_out = false;
            while !inbox.is_empty() && !timed_out {
                timed_out = q.drained.wait_until(&mut inbox, deadline).timed_out();
            }
            inbox.flushers -= 1;
            if !inbox.is_empty() {
                return false;
            }
        }
        true
    }

    /// Every queue's counts.
    pub fn stats(&self) -> Vec<QueueStats> {
        self.queues
            .read()
            .iter()
            .map(|q| q.stats(self.capacity))
            .collect()
    }

    /// Whether the bus has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops the bus: later events are dropped; every queue delivers what it holds, its
    /// listener is told (`EventSink::on_stop`) and its thread ends. Idempotent.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let queues: Vec<Arc<Queue>> = self.queues.read().clone();
        for q in &queues {
            q.inbox.lock().stopping = true;
            q.ready.notify_one();
        }
        for q in &queues {
            if let Some(t) = q.thread.lock().take() {
                if t.thread().id() != std::thread::current().id() {
                    let _ = t.join();
                }
            }
        }
        for sink in self.inline.lock().iter_mut() {
            sink.on_stop();
        }
    }
}

impl Drop for ListenerBus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A queue's thread: hands each event to the listener; a listener that panics loses that
/// event, not its thread. At stop, what the queue holds is delivered first.
fn drain(queue: Arc<Queue>, mut sink: Box<dyn EventSink>) {
    let mut batch = Vec::new();
    while queue.take(&mut batch) {
        // Counted once a batch: one atomic write instead of one per event, on the queue the
        // scheduler's thread writes at every post.
        let taken = batch.len() as u64;
        let mut since_yield = std::time::Instant::now();
        for (i, event) in batch.drain(..).enumerate() {
            if i % CLOCK_EVERY == CLOCK_EVERY - 1 && since_yield.elapsed() >= YIELD_AFTER {
                std::thread::yield_now();
                since_yield = std::time::Instant::now();
            }
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.on_event(&event)));
            if result.is_err() {
                error!(
                    "Listener in queue {} threw an exception handling {}",
                    queue.name,
                    event.spark_name()
                );
            }
        }
        queue.processed.fetch_add(taken, Ordering::Relaxed);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.on_batch_end())).is_err() {
            error!(
                "Listener in queue {} threw an exception ending a batch",
                queue.name
            );
        }
        queue.handled();
    }
    sink.on_stop();
    queue.handled();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::events::{JobEnd, JobResult};
    use crate::listener::Listener;
    use ember_scheduler::clock::ManualClock;

    fn job_end(id: usize) -> ListenerEvent {
        ListenerEvent::JobEnd(JobEnd {
            job_id: id,
            time: 0,
            job_result: JobResult::Succeeded,
        })
    }

    struct Record(Arc<Mutex<Vec<usize>>>);
    impl Listener for Record {
        fn on_job_end(&mut self, e: &JobEnd) {
            self.0.lock().push(e.job_id);
        }
    }

    #[test]
    fn each_listener_sees_events_in_order() {
        let bus = ListenerBus::new(100, Arc::new(ManualClock::new(0)), 0);
        let seen = Arc::new(Mutex::new(Vec::new()));
        bus.add_sink("a", Box::new(Record(seen.clone()))).unwrap();
        for i in 0..50 {
            bus.post(job_end(i));
        }
        assert!(bus.wait_until_empty(Duration::from_secs(10)));
        assert_eq!(*seen.lock(), (0..50).collect::<Vec<_>>());
        bus.stop();
    }

    /// Says when it holds its first event, then blocks in it until told to go on.
    struct Gate(Arc<(Mutex<(bool, bool)>, Condvar)>, Arc<Mutex<Vec<usize>>>);
    impl Listener for Gate {
        fn on_job_end(&mut self, e: &JobEnd) {
            let (state, cv) = &*self.0;
            let mut st = state.lock();
            st.0 = true;
            cv.notify_all();
            while !st.1 {
                cv.wait(&mut st);
            }
            self.1.lock().push(e.job_id);
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking_the_poster() {
        let bus = ListenerBus::new(4, Arc::new(ManualClock::new(0)), 0);
        let gate = Arc::new((Mutex::new((false, false)), Condvar::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        bus.add_sink("slow", Box::new(Gate(gate.clone(), seen.clone())))
            .unwrap();
        bus.post(job_end(0));
        {
            let mut st = gate.0.lock();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !st.0 {
                assert!(
                    !gate.1.wait_until(&mut st, deadline).timed_out(),
                    "the listener never got its first event"
                );
            }
        }
        // One event in the listener's hands, four queued, the rest dropped; posting returns.
        for i in 1..20 {
            bus.post(job_end(i));
        }
        let stats = &bus.stats()[0];
        assert!(stats.dropped >= 15, "{stats:?}");
        assert_eq!(stats.dropped + stats.queued + 1, 20, "{stats:?}");
        gate.0.lock().1 = true;
        gate.1.notify_all();
        assert!(bus.wait_until_empty(Duration::from_secs(10)));
        let seen = seen.lock().clone();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "still in order: {seen:?}"
        );
        assert_eq!(seen.len() as u64 + bus.stats()[0].dropped, 20);
        bus.stop();
    }

    struct Panics;
    impl Listener for Panics {
        fn on_job_end(&mut self, e: &JobEnd) {
            assert!(e.job_id != 1, "listener bug");
        }
    }

    #[test]
    fn a_panicking_listener_keeps_its_thread_and_stop_is_idempotent() {
        let bus = ListenerBus::new(10, Arc::new(ManualClock::new(0)), 0);
        bus.add_sink("panics", Box::new(Panics)).unwrap();
        for i in 0..3 {
            bus.post(job_end(i));
        }
        assert!(bus.wait_until_empty(Duration::from_secs(10)));
        assert_eq!(bus.stats()[0].processed, 3);
        bus.stop();
        bus.stop();
        bus.post(job_end(9));
        assert_eq!(bus.stats()[0].processed, 3);
    }
}
