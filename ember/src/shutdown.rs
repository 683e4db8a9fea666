//! Stopping on SIGINT and SIGTERM (Spark's `SignalUtils` with its shutdown hook, which stops the
//! `SparkContext`): the first signal stops every running application as `Context::stop` does —
//! executors stopped, scratch directories and shuffle files deleted — and then exits with the
//! shell's status for the signal (128 + its number); a second signal exits at once.
//!
//! The handler is installed when the first application of the process starts (a library that
//! never starts one changes nothing). Signals are received by tokio's `signal` support on a
//! thread of its own, so no code runs inside the signal handler itself, and the stop runs on yet
//! another thread so that a second signal is seen while the first stop is still in progress.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Once, Weak};

use parking_lot::Mutex;
use tracing::{error, info};

/// What a signal stops: an application.
pub trait Stoppable: Send + Sync {
    /// Stops it as an explicit stop does; returns when it is stopped.
    fn stop(&self);
}

static APPS: Mutex<Vec<Weak<dyn Stoppable>>> = Mutex::new(Vec::new());
static STOPPING: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Stops `app` on SIGINT or SIGTERM (installing the handler the first time).
pub fn register(app: Weak<dyn Stoppable>) {
    install();
    let mut apps = APPS.lock();
    apps.retain(|a| a.strong_count() > 0);
    apps.push(app);
}

/// Whether a signal is stopping the process: an action that fails because its application was
/// stopped must then wait for the exit instead of returning (its caller could otherwise end the
/// process, with a success status, before the cleanup is done).
pub fn stopping_for_signal() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Blocks the calling thread until the signal's stop exits the process.
pub fn wait_for_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// The exit status for the signal that stopped this process (128 + its number), if one did.
pub fn signal_exit_code() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(128 + s),
    }
}

/// Records that `signo` arrived; false if one had arrived before (the caller then exits at once).
pub(crate) fn note_signal(signo: i32) -> bool {
    SIGNAL
        .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// The signals a process stops on, as a future: resolves to the next one's number.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Starts listening; must run inside a tokio runtime with I/O enabled. From here on the
    /// signals no longer end the process by themselves.
    pub(crate) fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's number (2 for SIGINT, 15 for SIGTERM).
    pub(crate) async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.interrupt.recv() => 2,
            _ = self.terminate.recv() => 15,
        }
    }
}

/// Spark's log line for a received signal.
pub(crate) fn signal_name(signo: i32) -> &'static str {
    match signo {
        2 => "INT",
        15 => "TERM",
        _ => "?",
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registered here, before the first application is returned to its caller: a signal
        // that arrives as soon as it runs must already find the handler.
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                return error!("cannot watch for SIGINT and SIGTERM (no cleanup on them): {e}")
            }
        };
        let signals = {
            let _guard = runtime.enter();
            Signals::new()
        };
        let mut signals = match signals {
            Ok(s) => s,
            Err(e) => {
                return error!("cannot watch for SIGINT and SIGTERM (no cleanup on them): {e}")
            }
        };
        let spawned = std::thread::Builder::new()
            .name("ember-signal-handler".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let signo = signals.next().await;
                    let code = 128 + signo;
                    note_signal(signo);
                    STOPPING.store(true, Ordering::SeqCst);
                    info!(
                        "RECEIVED SIGNAL {}: stopping the application (again to exit at once)",
                        signal_name(signo)
                    );
                    let stopper = std::thread::Builder::new()
                        .name("ember-signal-stop".into())
                        .spawn(move || {
                            stop_all();
                            std::process::exit(code);
                        });
                    if stopper.is_err() {
                        stop_all();
                        std::process::exit(code);
                    }
                    let again = signals.next().await;
                    info!(
                        "RECEIVED SIGNAL {} again: exiting without cleaning up",
                        signal_name(again)
                    );
                    std::process::exit(code);
                })
            });
        if let Err(e) = spawned {
            error!("cannot start the signal thread (no cleanup on SIGINT and SIGTERM): {e}");
        }
    });
}

fn stop_all() {
    let apps: Vec<_> = APPS.lock().drain(..).filter_map(|a| a.upgrade()).collect();
    for app in apps {
        app.stop();
    }
}
