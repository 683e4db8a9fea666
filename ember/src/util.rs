//! Small process-wide helpers: task-thread panic capture and size estimates.

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
        bytes += postcard::experimental::serialized_size(x).unwrap_or(0) as u64;
        n += 1;
    }
    inline + bytes * v.len() as u64 / n.max(1)
}
