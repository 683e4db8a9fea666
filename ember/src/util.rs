//! Small process-wide helpers: task-thread panic capture, size estimates, and the type-id casts
//! behind the `String`-key fast paths.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    static TASK_THREAD: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the current thread as a task thread: panics on it are captured for the task's failure
/// reason instead of being printed.
pub(crate) fn mark_task_thread() {
    TASK_THREAD.with(|t| t.set(true));
}

/// The message of the last panic on this task thread, in Rust's own shape:
/// `panicked at 'boom', src/main.rs:10:5`.
pub(crate) fn take_panic_message() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// The text of a panic payload (`&str` or `String`), for payloads the hook did not see.
pub(crate) fn panic_payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked at '{s}'")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked at '{s}'")
    } else {
        "panicked with a non-string payload".to_string()
    }
}

/// Installs (once per process) a panic hook that records panics of task threads with their
/// location, and leaves every other thread to the previous hook.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if TASK_THREAD.with(|t| t.get()) {
                let msg = panic_payload_message(info.payload());
                let msg = match info.location() {
                    Some(l) => format!("{msg}, {}:{}:{}", l.file(), l.line(), l.column()),
                    None => msg,
                };
                tracing::debug!("task thread {msg}");
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
            } else {
                previous(info);
            }
        }));
    });
}

/// Sends Ember's logs (and the program's `tracing` events) to stderr, filtered by `EMBER_LOG`
/// (e.g. `EMBER_LOG=info`, `EMBER_LOG=ember=debug`; default `warn`). Safe to call more than once.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMBER_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only for a person at a terminal: piped or redirected logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

/// A rough in-memory size of a vector of elements: the elements' inline size plus, from a
/// sample of up to 16 elements, their serialized size as a stand-in for heap data.
pub(crate) fn estimate_vec_size<T: serde::Serialize>(v: &[T]) -> u64 {
    let inline = std::mem::size_of_val(v) as u64;
    if v.is_empty() {
        return inline;
    }
    let step = (v.len() / 16).max(1);
    let (mut n, mut bytes) = (0u64, 0u64);
    for x in v.iter().step_by(step).take(16) {
        bytes += crate::size_tracker::SizeTracker::measure(x) as u64;
        n += 1;
    }
    inline + bytes * v.len() as u64 / n.max(1)
}

/// A byte count the way Spark prints it (`Utils.bytesToString`); shared with the scheduler core's
/// messages, so it lives in `ember-common`.
pub use ember_common::bytes_to_string;

/// This executable's build fingerprint: its ELF `NT_GNU_BUILD_ID` note (forced on by
/// `.cargo/config.toml`), else a hash of the whole file. Executors of another build are refused.
pub fn build_id() -> String {
    let Ok(bytes) = std::fs::read("/proc/self/exe") else { return "unknown".into() };
    // A note is namesz=4, descsz, type=3 (NT_GNU_BUILD_ID), "GNU\0", then the id bytes.
    let head = &bytes[..bytes.len().min(1 << 20)];
    let pattern = [4u8, 0, 0, 0];
    let mut i = 0;
    while i + 16 <= head.len() {
        if head[i..i + 4] == pattern && head[i + 8..i + 12] == [3, 0, 0, 0] && &head[i + 12..i + 16] == b"GNU\0" {
            let len = u32::from_le_bytes([head[i + 4], head[i + 5], head[i + 6], head[i + 7]]) as usize;
            if (8..=64).contains(&len) && i + 16 + len <= head.len() {
                return head[i + 16..i + 16 + len].iter().map(|b| format!("{b:02x}")).collect();
            }
        }
        i += 4;
    }
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    bytes.hash(&mut h);
    format!("file-{:016x}-{}", h.finish(), bytes.len())
}

/// Moves `a` into a `B` when `A` and `B` are the same type (a type-id check that compiles away),
/// else gives it back. Lets generic code take a `String`-only fast path without `unsafe`.
#[inline(always)]
pub(crate) fn cast<A: 'static, B: 'static>(a: A) -> Result<B, A> {
    let mut slot = Some(a);
    if let Some(b) = (&mut slot as &mut dyn Any).downcast_mut::<Option<B>>() {
        if let Some(b) = b.take() {
            return Ok(b);
        }
    }
    match slot {
        Some(a) => Err(a),
        None => unreachable!("the value was only taken when the types matched"),
    }
}

/// `a` as a `&B` when `A` and `B` are the same type.
#[inline(always)]
pub(crate) fn cast_ref<A: 'static, B: 'static>(a: &A) -> Option<&B> {
    (a as &dyn Any).downcast_ref::<B>()
}

/// Whether `K` is `String`, the key type with an inline table.
#[inline(always)]
pub(crate) fn is_string<K: 'static>() -> bool {
    std::any::TypeId::of::<K>() == std::any::TypeId::of::<String>()
}

#[cfg(test)]
mod cast_tests {
    use super::*;

    #[test]
    fn cast_only_between_equal_types() {
        assert_eq!(cast::<String, String>("a".into()), Ok("a".to_string()));
        assert_eq!(cast::<u64, String>(7), Err(7));
        assert_eq!(cast_ref::<String, String>(&"b".to_string()).map(String::as_str), Some("b"));
        assert!(cast_ref::<u32, u64>(&1).is_none());
        assert!(is_string::<String>() && !is_string::<&'static str>());
    }
}

/// The little-endian value of up to 8 bytes, zero-extended, without a byte loop: two possibly
/// overlapping loads whose common bytes agree (the inline-key table and the whitespace scanner).
#[inline(always)]
pub(crate) fn load_le_partial(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let lo = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let hi = u64::from(u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]));
        lo | hi << ((n - 4) * 8)
    } else if n > 0 {
        u64::from(b[0]) | u64::from(b[n / 2]) << (n / 2 * 8) | u64::from(b[n - 1]) << ((n - 1) * 8)
    } else {
        0
    }
}
