//! Time, injected: the scheduler core never reads the system clock itself. `ember` passes a
//! clock on the real time; tests and the simulator pass a [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of milliseconds since an arbitrary start.
pub trait Clock: Send + Sync {
    /// Milliseconds since this clock's start; never goes backwards.
    fn now_ms(&self) -> u64;
}

/// A clock that moves only when told to: tests and the simulator drive the scheduler with it.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(start_ms),
        }
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
    /// Sets the clock (never backwards).
    pub fn set(&self, ms: u64) {
        self.now.fetch_max(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}
