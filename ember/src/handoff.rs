//! Waiting for the next message on the driver's critical path: poll for a short while, then
//! block.
//!
//! An empty job crosses four threads: the caller submits it to the scheduler's thread, which
//! launches its task on a task thread, whose status goes back to the scheduler, which wakes the
//! caller. When the receiving thread is parked and its CPU idle, each hop costs a futex wake-up of
//! another CPU; on a virtual machine that CPU first has to leave its halted state, and a hop then
//! costs tens of microseconds instead of one or two. Measured on the 2-core machine of
//! BENCHMARKS.md: `ember-bench W2` ran at 0.037–0.137 ms a job depending on where the threads
//! happened to land, and at 0.021–0.024 ms with every thread pinned to one CPU (`taskset -c 0`),
//! where no hop crosses CPUs.
//!
//! So the threads that receive the hops poll their channel for up to [`SPIN`] before they block.
//! A message that comes within it is taken by a running thread. The poll is bounded and yields
//! the CPU between checks, so a thread that waits longer (a task thread between stages, the
//! caller during a long job) parks as before and costs at most [`SPIN`] of CPU per wait.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

/// How long a waiting thread polls before it parks: longer than the scheduler's handling of
/// one event (a few microseconds) and a task thread's run of a one-element task, so that both
/// hops of an empty job come within it; short enough that waits that do park waste little.
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// Polls between two reads of the clock.
const POLLS_PER_CLOCK_READ: u32 = 32;

/// [`Receiver::recv`] after polling for up to [`SPIN`].
pub(crate) fn recv<T>(rx: &Receiver<T>) -> Result<T, crossbeam_channel::RecvError> {
    match poll(rx, SPIN) {
        Polled::Got(v) => Ok(v),
        Polled::Disconnected => Err(crossbeam_channel::RecvError),
        Polled::Empty => rx.recv(),
    }
}

/// [`Receiver::recv_timeout`] after polling for up to [`SPIN`] (or `timeout`, if shorter); the
/// poll counts towards `timeout`.
pub(crate) fn recv_timeout<T>(rx: &Receiver<T>, timeout: Duration) -> Result<T, RecvTimeoutError> {
    let spin = SPIN.min(timeout);
    match poll(rx, spin) {
        Polled::Got(v) => Ok(v),
        Polled::Disconnected => Err(RecvTimeoutError::Disconnected),
        Polled::Empty => rx.recv_timeout(timeout - spin),
    }
}

enum Polled<T> {
    Got(T),
    Empty,
    Disconnected,
}

fn poll<T>(rx: &Receiver<T>, spin: Duration) -> Polled<T> {
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        match rx.try_recv() {
            Ok(v) => return Polled::Got(v),
            Err(TryRecvError::Disconnected) => return Polled::Disconnected,
            Err(TryRecvError::Empty) => {}
        }
        polls += 1;
        if polls.is_multiple_of(POLLS_PER_CLOCK_READ) {
            if start.elapsed() >= spin {
                return Polled::Empty;
            }
            // The thread that will send may be waiting for this CPU.
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_already_sent_is_taken_without_blocking() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(7).unwrap();
        assert_eq!(recv(&rx), Ok(7));
        tx.send(8).unwrap();
        assert_eq!(recv_timeout(&rx, Duration::from_secs(5)), Ok(8));
    }

    #[test]
    fn a_message_sent_while_the_receiver_waits_is_received() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(0);
        let sender = std::thread::spawn(move || {
            // Sent only once the receiver has seen an empty channel: it arrives during the
            // poll or the blocking wait, whichever the scheduler makes it.
            go_rx.recv().unwrap();
            tx.send(1).unwrap();
        });
        assert!(matches!(poll(&rx, Duration::ZERO), Polled::Empty));
        go_tx.send(()).unwrap();
        assert_eq!(recv_timeout(&rx, Duration::from_secs(30)), Ok(1));
        sender.join().unwrap();
    }

    #[test]
    fn timeouts_and_disconnection_are_reported_as_by_the_channel() {
        let (tx, rx) = crossbeam_channel::unbounded::<u8>();
        assert_eq!(
            recv_timeout(&rx, Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
        assert_eq!(
            recv_timeout(&rx, Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        drop(tx);
        assert_eq!(recv(&rx), Err(crossbeam_channel::RecvError));
        assert_eq!(
            recv_timeout(&rx, Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}
