//! Stack-overflow reporting in executor processes.
//!
//! An executor process is started by the pre-`main` hook (`executor::process`), so std's
//! runtime start-up never runs in it: nothing handles SIGSEGV on an alternate stack, and a task
//! that overflows its stack would kill the executor with a bare SIGSEGV. This module gives the
//! executor what std's start-up gives a program: a SIGSEGV/SIGBUS handler, and on every thread
//! that runs executor code an alternate signal stack for it to run on (a thread that overflowed
//! has no stack left). When the fault is in the faulting thread's guard page, the handler writes
//! std's message (`thread 'NAME' has overflowed its stack`, `fatal runtime error: stack
//! overflow`) with `write(2)` only; any other fault gets the default action.
//!
//! Unlike std, which aborts (SIGABRT) after its message, the handler then lets the fault happen
//! again under the default action, so the executor dies of SIGSEGV: the driver, which sees
//! only how its child ended, can then tell a stack overflow from other aborts (see
//! `scheduler::event_loop`).
//!
//! Only [`install_process`] (called by the hook) turns the handling on; [`install_thread`] is a
//! no-op elsewhere, so a driver, whose threads std's start-up already looks after, is untouched.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this process handles SIGSEGV and SIGBUS here (set once, by the executor's hook).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Longest thread name kept for the message (Linux names are at most 15 bytes; std's are
/// longer and cut here).
const NAME_MAX: usize = 64;

thread_local! {
    // Const-initialised and without destructors: reading them is a plain thread-local load,
    // which is what a signal handler may do.
    /// This thread's guard area, `start..end` (empty when unknown).
    static GUARD: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// This thread's name, as std would print it.
    static NAME: Cell<([u8; NAME_MAX], usize)> = const { Cell::new(([0; NAME_MAX], 0)) };
    /// The alternate stack, released when the thread ends.
    static ALT_STACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
}

/// Turns on stack-overflow reporting for this process and its calling thread. Called once by
/// the executor's pre-`main` hook, on the only thread there is. Leaves a handler someone else
/// installed alone, as std does.
pub(crate) fn install_process() {
    for signum in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: `sigaction` reads the zeroed-then-filled `action` and writes the previous one
        // into `old`, both valid for the call. The handler only does async-signal-safe work
        // (see `on_fault`), and SA_ONSTACK makes it run on the thread's alternate stack.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signum, std::ptr::null(), &mut old) != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as extern "C" fn(_, _, _) as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signum, &action, std::ptr::null_mut());
        }
    }
    INSTALLED.store(true, Ordering::SeqCst);
    install_thread();
}

/// Gives the calling thread an alternate signal stack and records its guard page and name, so
/// that an overflow of its stack is reported. Call it first thing on every thread an executor
/// starts; a no-op outside executor processes and on a thread that has it already.
pub(crate) fn install_thread() {
    if !INSTALLED.load(Ordering::SeqCst) || ALT_STACK.with(|a| a.borrow().is_some()) {
        return;
    }
    GUARD.with(|g| g.set(current_guard().unwrap_or((0, 0))));
    let name = std::thread::current()
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| "<unnamed>".to_string());
    let mut buf = [0u8; NAME_MAX];
    let len = name.len().min(NAME_MAX);
    buf[..len].copy_from_slice(&name.as_bytes()[..len]);
    NAME.with(|n| n.set((buf, len)));
    if let Some(alt) = AltStack::new() {
        ALT_STACK.with(|a| *a.borrow_mut() = Some(alt));
    }
}

/// The calling thread's guard area, as std finds it: glibc may place the guard below the stack
/// or (before 2.27) inside its lowest pages, so the pages on both sides of the stack's low end
/// count; the main thread's guard is the page below its stack (the kernel's gap).
fn current_guard() -> Option<(usize, usize)> {
    let page = page_size();
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read and destroyed
    // once; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut guard_size = 0usize;
        let mut stack: *mut libc::c_void = std::ptr::null_mut();
        let mut size = 0usize;
        let ok = libc::pthread_attr_getguardsize(&attr, &mut guard_size) == 0
            && libc::pthread_attr_getstack(&attr, &mut stack, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok {
            return None;
        }
        let low = stack as usize;
        if libc::getpid() == libc::gettid() {
            Some((low.saturating_sub(page), low))
        } else if guard_size == 0 {
            None
        } else {
            Some((low.saturating_sub(guard_size), low + guard_size))
        }
    }
}

fn page_size() -> usize {
    // SAFETY: `sysconf` only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096).max(4096)
}

/// A thread's alternate signal stack: a mapping with a guard page below it, registered with
/// `sigaltstack` and unregistered and unmapped when the thread ends.
struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

impl AltStack {
    fn new() -> Option<AltStack> {
        let page = page_size();
        // SAFETY: `getauxval` only reads the auxiliary vector.
        let min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
        let size = min.max(libc::SIGSTKSZ).max(16 << 10).next_multiple_of(page);
        let len = size + page;
        // SAFETY: a fresh anonymous private mapping, whose result is checked; the guard page at
        // its low end is made inaccessible so that an overflow of the handler itself faults
        // instead of writing over other memory; `sigaltstack` gets the mapping's upper part,
        // which stays mapped until `drop` unregisters it first.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return None;
            }
            let stack = AltStack { base, len };
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return None;
            }
            let ss = libc::stack_t {
                ss_sp: base.cast::<u8>().add(page).cast(),
                ss_flags: 0,
                ss_size: size,
            };
            if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
                return None;
            }
            Some(stack)
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: the alternate stack is unregistered before its memory goes, and the mapping
        // is exactly the one `new` made. Thread-local destructors run outside any handler.
        unsafe {
            let off = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: libc::SIGSTKSZ,
            };
            libc::sigaltstack(&off, std::ptr::null_mut());
            libc::munmap(self.base, self.len);
        }
    }
}

/// The SIGSEGV/SIGBUS handler. Async-signal-safe: it reads two const thread-locals, calls
/// `write`, `sigaction` and returns.
extern "C" fn on_fault(signum: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; for SIGSEGV and
    // SIGBUS its address field is set.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = GUARD.try_with(Cell::get).unwrap_or((0, 0));
    if start <= addr && addr < end {
        let (name, len) = NAME.try_with(Cell::get).unwrap_or(([0; NAME_MAX], 0));
        write_stderr(b"\nthread '");
        write_stderr(&name[..len.min(NAME_MAX)]);
        write_stderr(b"' has overflowed its stack\nfatal runtime error: stack overflow\n");
    }
    // The default action, for this fault or any other: returning re-runs the faulting
    // instruction, which now ends the process with this signal.
    // SAFETY: `sigaction` is async-signal-safe; `action` is a valid zeroed local set to
    // SIG_DFL.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signum, &action, std::ptr::null_mut());
    }
}

fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `write` reads `bytes.len()` bytes from a live slice.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[(n as usize).min(bytes.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_guard_area_is_just_below_or_at_the_low_end_of_its_stack() {
        let (start, end) = std::thread::spawn(current_guard)
            .join()
            .unwrap()
            .expect("a spawned thread has a guard page");
        assert!(start < end);
        let local = 0u8;
        let here = std::ptr::addr_of!(local) as usize;
        assert!(end <= here, "the guard is below the live stack");
        assert!(here - end < 64 << 20, "and belongs to this thread's stack");
    }

    #[test]
    fn an_alternate_stack_is_registered_and_released() {
        std::thread::spawn(|| {
            let current = || {
                // SAFETY: a null new stack only reads the current one into `ss`, a valid local.
                unsafe {
                    let mut ss: libc::stack_t = std::mem::zeroed();
                    libc::sigaltstack(std::ptr::null(), &mut ss);
                    ss
                }
            };
            let alt = AltStack::new().expect("an alternate stack");
            let ss = current();
            assert_eq!(ss.ss_flags & libc::SS_DISABLE, 0);
            assert_eq!(ss.ss_sp as usize, alt.base as usize + page_size());
            drop(alt);
            assert_ne!(current().ss_flags & libc::SS_DISABLE, 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn threads_are_left_alone_outside_executor_processes() {
        // The test binary never runs the executor's hook, so nothing is installed.
        std::thread::spawn(|| {
            install_thread();
            assert!(ALT_STACK.with(|a| a.borrow().is_none()));
            assert_eq!(GUARD.with(Cell::get), (0, 0));
        })
        .join()
        .unwrap();
    }
}
