//! Thread dumps of this process (what Spark's executors answer with the JVM's
//! `ThreadMXBean.dumpAllThreads`): every thread's id, name, state and stack.
//!
//! Threads come from `/proc/self/task`, their kernel state from `/proc/self/task/TID/stat`.
//! Stacks are taken by the `backtrace` crate's unwinder: the dumping thread walks its own stack,
//! and asks each other thread to walk its own by sending it a signal (`tgkill`); the handler
//! records the return addresses in a static buffer, and the dumping thread resolves them to
//! symbols afterwards, outside the handler. One dump runs at a time (a process-wide lock).
//!
//! This module holds the only `unsafe` code of this feature: the handler's installation, the
//! signal itself, the thread id, and the unwinder's walk inside the handler. The handler does
//! nothing but compare atomics and walk the stack: no allocation, no lock.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One thread of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadStack {
    /// The kernel's thread id (what `top -H` and `/proc` show).
    pub thread_id: i64,
    /// Its name: the full name the program gave it when known, else the kernel's (15 bytes).
    pub thread_name: String,
    /// Its state, in the names of Java's `Thread.State` (see [`java_state`]).
    pub thread_state: String,
    /// Its frames, innermost first: `symbol (file:line)`, or the address when unknown.
    pub stack: Vec<String>,
    /// The task attempt it runs, for an executor's task thread that runs one.
    pub task_id: Option<u64>,
}

/// Java's `Thread.State` for a Linux state letter of `/proc/…/stat`: running (`R`) is
/// `RUNNABLE`; sleeping (`S`, `I`) is `WAITING` (Linux does not tell a timed wait from another);
/// uninterruptible sleep (`D`) is `BLOCKED`; stopped (`T`, `t`) is `WAITING`; dead or zombie
/// (`X`, `Z`) is `TERMINATED`.
pub fn java_state(linux: char) -> &'static str {
    match linux {
        'R' => "RUNNABLE",
        'D' => "BLOCKED",
        'Z' | 'X' | 'x' => "TERMINATED",
        _ => "WAITING",
    }
}

/// The name and state letter in a `/proc/…/stat` line (`tid (name) S …`; the name may hold
/// spaces and parentheses, so it ends at the last `)`).
pub fn parse_stat(stat: &str) -> Option<(String, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some((name, state))
}

const MAX_FRAMES: usize = 128;

/// The frames the handler writes (return addresses), and how many.
static FRAMES: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
static FRAME_COUNT: AtomicUsize = AtomicUsize::new(0);
/// The thread asked to walk its stack (0: none).
static TARGET: AtomicI32 = AtomicI32::new(0);
/// IDLE → REQUESTED (by the dumper) → WRITING (by the handler, once) → DONE.
static PHASE: AtomicU8 = AtomicU8::new(IDLE);
const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;

/// One dump at a time: they share the static buffer.
static DUMP_LOCK: Mutex<()> = Mutex::new(());
/// The signal, once its handler is installed (`None`: it could not be).
static SIGNAL: OnceLock<Option<i32>> = OnceLock::new();

/// How long a thread gets to answer: one blocked in a system call answers at once (the signal
/// interrupts the wait and the call restarts), so only a thread that blocks the signal, or a
/// kernel thread state that runs no handler, is ever left without a stack.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

extern "C" fn on_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    if TARGET.load(Ordering::Acquire) != current_tid() {
        return;
    }
    if PHASE
        .compare_exchange(REQUESTED, WRITING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let mut n = 0;
    // SAFETY: `trace_unsynchronized` is unsafe only because it does not take the crate's lock
    // (which a signal handler must not take); the dump lock, held by the dumping thread,
    // keeps any other user of this buffer out, and the callback only stores integers.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            if n < MAX_FRAMES {
                FRAMES[n].store(frame.ip() as usize, Ordering::Relaxed);
                n += 1;
                true
            } else {
                false
            }
        });
    }
    FRAME_COUNT.store(n, Ordering::Relaxed);
    PHASE.store(DONE, Ordering::Release);
}

/// Installs the handler of the dump signal (a real-time signal no other part of Ember uses:
/// `SIGRTMIN + 7`), once per process.
fn signal() -> Option<i32> {
    *SIGNAL.get_or_init(|| {
        let sig = libc::SIGRTMIN() + 7;
        // SAFETY: `sigaction` is given a zeroed, then filled, `sigaction` struct whose handler
        // is an `extern "C"` function with the SA_SIGINFO signature; SA_RESTART makes system
        // calls the signal interrupts restart, so interrupted threads see no EINTR.
        let ok = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                on_signal as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut()) == 0
        };
        ok.then_some(sig)
    })
}

/// Asks thread `tid` for its return addresses; `None` when it did not answer in time.
fn remote_frames(tid: i32, sig: i32) -> Option<Vec<usize>> {
    FRAME_COUNT.store(0, Ordering::Relaxed);
    TARGET.store(tid, Ordering::Release);
    PHASE.store(REQUESTED, Ordering::Release);
    // SAFETY: tgkill with this process's id and one of its thread ids; a thread that has exited
    // meanwhile makes it fail with ESRCH, nothing else.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid() as libc::c_long,
            tid as libc::c_long,
            sig as libc::c_long,
        )
    } == 0;
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let answered = sent
        && loop {
            if PHASE.load(Ordering::Acquire) == DONE {
                break true;
            }
            if Instant::now() >= deadline {
                // The handler may have started meanwhile: then wait for it to finish, as
                // the buffer is about to be reused.
                match PHASE.compare_exchange(REQUESTED, IDLE, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break false,
                    Err(_) => {
                        while PHASE.load(Ordering::Acquire) != DONE {
                            std::thread::yield_now();
                        }
                        break true;
                    }
                }
            }
            std::thread::yield_now();
        };
    let frames = answered.then(|| {
        let n = FRAME_COUNT.load(Ordering::Relaxed).min(MAX_FRAMES);
        FRAMES[..n]
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .collect()
    });
    TARGET.store(0, Ordering::Release);
    PHASE.store(IDLE, Ordering::Release);
    frames
}

fn own_frames() -> Vec<usize> {
    let mut out = Vec::new();
    backtrace::trace(|frame| {
        out.push(frame.ip() as usize);
        out.len() < MAX_FRAMES
    });
    out
}

/// The frames as text, from the first frame after the signal's trampoline (a remote stack) or
/// after this module's own frames (the dumping thread's).
fn symbolize(frames: &[usize]) -> Vec<String> {
    let mut lines: Vec<(String, bool)> = Vec::with_capacity(frames.len());
    for &ip in frames.iter().filter(|ip| **ip != 0) {
        let mut resolved = false;
        backtrace::resolve(ip as *mut c_void, |sym| {
            let name = sym
                .name()
                .map(|n| format!("{n:#}"))
                .unwrap_or_else(|| format!("{ip:#x}"));
            let place = match (sym.filename(), sym.lineno()) {
                (Some(f), Some(l)) => format!(" ({}:{l})", f.display()),
                _ => String::new(),
            };
            lines.push((format!("{name}{place}"), false));
            resolved = true;
        });
        if !resolved {
            lines.push((format!("{ip:#x}"), true));
        }
    }
    let mut start = lines
        .iter()
        .rposition(|(l, _)| {
            [
                "__restore_rt",
                "threaddump::on_signal",
                "threaddump::own_frames",
            ]
            .iter()
            .any(|m| l.contains(m))
        })
        .map_or(0, |i| i + 1);
    // The signal's trampoline has no symbol where the C library is stripped.
    if lines.get(start).is_some_and(|(_, unresolved)| *unresolved) {
        start += 1;
    }
    lines.into_iter().skip(start).map(|(l, _)| l).collect()
}

/// Dumps every thread of this process. `names` gives the full name of a thread the program
/// knows (by kernel id), and the task it runs, if any.
pub fn dump_threads(names: &dyn Fn(i64) -> Option<(String, Option<u64>)>) -> Vec<ThreadStack> {
    let _one_at_a_time = DUMP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let me = current_tid();
    let sig = signal();
    let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
            continue; // it exited meanwhile
        };
        let Some((comm, state)) = parse_stat(&stat) else {
            continue;
        };
        let frames = if tid == me {
            Some(own_frames())
        } else {
            sig.and_then(|s| remote_frames(tid, s))
        };
        let stack = match frames {
            Some(f) => symbolize(&f),
            None => vec!["(no stack: the thread did not answer)".to_string()],
        };
        let (thread_name, task_id) = names(i64::from(tid)).unwrap_or((comm, None));
        out.push(ThreadStack {
            thread_id: i64::from(tid),
            thread_name,
            thread_state: java_state(state).to_string(),
            stack,
            task_id,
        });
    }
    out
}

/// The calling thread's kernel id (what [`ThreadStack::thread_id`] holds).
pub fn thread_id() -> i64 {
    i64::from(current_tid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn stat_lines_give_name_and_state() {
        assert_eq!(
            parse_stat("1234 (executor-task-d) S 1 2 3"),
            Some(("executor-task-d".into(), 'S'))
        );
        assert_eq!(parse_stat("7 (a (b) c) R 1"), Some(("a (b) c".into(), 'R')));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(java_state('R'), "RUNNABLE");
        assert_eq!(java_state('S'), "WAITING");
        assert_eq!(java_state('D'), "BLOCKED");
        assert_eq!(java_state('Z'), "TERMINATED");
    }

    #[inline(never)]
    fn parked_in_a_named_function(ready: mpsc::Sender<i64>, go: mpsc::Receiver<()>) {
        ready.send(thread_id()).unwrap();
        let _ = go.recv();
    }

    #[test]
    fn every_thread_is_dumped_with_its_stack_and_a_blocked_one_keeps_waiting() {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel();
        let t = std::thread::Builder::new()
            .name("dump-me".into())
            .spawn(move || {
                parked_in_a_named_function(ready_tx, go_rx);
                "finished"
            })
            .unwrap();
        let tid = ready_rx.recv().unwrap();
        let dump = dump_threads(&|id| (id == tid).then(|| ("dump-me (full)".into(), Some(7))));
        let me = dump.iter().find(|t| t.thread_id == thread_id()).unwrap();
        assert_eq!(me.thread_state, "RUNNABLE");
        assert!(!me.stack.is_empty());
        let other = dump
            .iter()
            .find(|t| t.thread_id == tid)
            .expect("the parked thread");
        assert_eq!(other.thread_name, "dump-me (full)");
        assert_eq!(other.task_id, Some(7));
        assert!(
            other
                .stack
                .iter()
                .any(|f| f.contains("parked_in_a_named_function")),
            "{:#?}",
            other.stack
        );
        // The signal interrupted its wait; the wait went on, and ends when told to.
        go_tx.send(()).unwrap();
        assert_eq!(t.join().unwrap(), "finished");
        // A second dump works the same (the handler is installed once).
        assert!(!dump_threads(&|_| None).is_empty());
    }
}
