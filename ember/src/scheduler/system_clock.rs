//! The real clock the driver's scheduler runs on (the core only ever sees a [`Clock`]).

use std::time::Instant;

use ember_scheduler::clock::Clock;

/// Milliseconds since the clock was made, from the monotonic system clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock starting at zero now.
    pub fn new() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}
