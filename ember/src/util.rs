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
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMBER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only for a person at a terminal: piped or redirected logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
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

/// A byte count the way Spark prints it (`Utils.bytesToString`); shared with the scheduler
/// core's messages, so it lives in `ember-common`.
pub use ember_common::bytes_to_string;

/// This executable's build id: its ELF `NT_GNU_BUILD_ID` note as hex (forced on by
/// `.cargo/config.toml`), read from memory. `None` when the executable has none: cluster mode
/// then refuses to start, since driver and executors could not check they run the same build.
#[cfg(any(test, feature = "testing"))]
pub fn build_id() -> Option<String> {
    crate::image::image().build_id()
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
        assert_eq!(
            cast_ref::<String, String>(&"b".to_string()).map(String::as_str),
            Some("b")
        );
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

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The calendar date and time of `ms` milliseconds after the Unix epoch, in UTC:
/// `(year, month, day, hour, minute, second, millisecond)`.
fn civil_utc(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    let in_day = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    (year, month, day, h as u32, m as u32, s as u32, milli as u32)
}

/// Spark's REST date format, `yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'` in UTC, of epoch milliseconds
/// (`-1` gives Spark's "no date", `1969-12-31T23:59:59.999GMT`).
pub fn gmt_date(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = civil_utc(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}GMT")
}

/// `yyyyMMddHHmmss` in UTC (the date in Spark's standalone application ids).
pub fn compact_date(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil_utc(ms);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn dates_print_like_sparks_rest_api() {
        assert_eq!(gmt_date(1_796_542_373_614), "2026-12-06T07:32:53.614GMT");
        assert_eq!(gmt_date(-1), "1969-12-31T23:59:59.999GMT");
        assert_eq!(gmt_date(0), "1970-01-01T00:00:00.000GMT");
        assert_eq!(gmt_date(951_782_400_000), "2000-02-29T00:00:00.000GMT");
        assert_eq!(compact_date(1_796_542_547_000), "20261206073547");
    }
}
