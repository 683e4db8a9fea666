//! How code reaches executors: the same binary (DESIGN.md 2). The only module with `unsafe`.
//!
//! A task crosses the network as a [`Shipped`] value: the offset of a monomorphized decode
//! function (e.g. `decode_result_job::<R, C, F>`) from a fixed anchor function of this binary, a
//! tag naming the concrete type, and the postcard bytes of the task body. The executor runs the
//! same executable (checked by build id at registration), so `anchor + offset` is that same decode
//! function there. The decode function checks the tag before anything else and re-creates the
//! user's zero-sized closures with [`conjure`], which works only while the task permit of this
//! module is held, i.e. only inside [`decode`].
//!
//! Three `unsafe` operations live here, each with its argument:
//! 1. offset → function pointer ([`decode`]),
//! 2. calling it (same place),
//! 3. reading a zero-sized closure out of nothing ([`conjure`]).
//!
//! It knows how to encode and decode task bodies, nothing more: the hook that turns a spawned
//! process into an executor before `main` is the executor's (`crate::executor::process`).

use std::cell::Cell;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::error::{EmberError, Result};
pub use crate::task::Shipped;

/// The signature of every decode entry point: `(type tag, bytes) -> value`.
pub type DecodeFn<T> = fn(u64, &[u8]) -> Result<T>;

/// The fixed point offsets are measured from. `inline(never)` and a body with a side effect
/// keep it a distinct function with a stable address.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x454d_4245_52)
}

/// A stable tag for a type within one build: a hash of its `TypeId`.
pub fn type_tag<T: 'static>() -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    std::any::TypeId::of::<T>().hash(&mut h);
    h.finish()
}

/// Packs a value for the executor: `decoder` must be the monomorphized decode function of `T`.
pub fn ship<T: Serialize + 'static, U>(value: &T, decoder: DecodeFn<U>) -> Result<Shipped> {
    let bytes = postcard::to_allocvec(value).map_err(EmberError::ser)?;
    let entry = (decoder as usize as i64).wrapping_sub(anchor as fn() -> u64 as usize as i64);
    Ok(Shipped { entry, tag: type_tag::<T>(), bytes })
}

thread_local! {
    /// Set only while [`decode`] runs: the one place zero-sized closures may be re-created.
    static PERMIT: Cell<bool> = const { Cell::new(false) };
}

struct PermitGuard(bool);
impl Drop for PermitGuard {
    fn drop(&mut self) {
        PERMIT.with(|p| p.set(self.0));
    }
}

/// Unpacks a shipped value on an executor.
///
/// Only call this with values that came from the driver of this application over an
/// authenticated connection from an executor whose build id matched the driver's: that is what
/// makes `entry` the offset of a `DecodeFn<U>` in this very binary.
pub fn decode<U>(shipped: &Shipped) -> Result<U> {
    let addr = (anchor as fn() -> u64 as usize as i64).wrapping_add(shipped.entry) as usize;
    if addr == 0 {
        return Err(EmberError::serialization("shipped task has a null entry point"));
    }
    // SAFETY: `addr` is `anchor + (decoder - anchor)` computed by `ship` in the driver, which runs
    // the same executable (build ids are compared at executor registration, and only
    // authenticated peers can send tasks). Rust code of one image is relocated as a whole, so the
    // distance between two functions is the same in both processes and `addr` is the address of
    // the same `DecodeFn<U>` instance. `U` is the type the caller expects, fixed by the call site
    // that matches the one used with `ship`.
    let f: DecodeFn<U> = unsafe { std::mem::transmute::<usize, DecodeFn<U>>(addr) };
    let previous = PERMIT.with(|p| p.replace(true));
    let _guard = PermitGuard(previous);
    // Calling `f` is safe Rust once it is a valid fn pointer (argued above); it checks the tag
    // before reading the bytes.
    f(shipped.tag, &shipped.bytes)
}

/// Decodes `bytes` as `T` after checking the tag; the body of every decode entry point.
pub fn decode_checked<T: serde::de::DeserializeOwned + 'static>(tag: u64, bytes: &[u8]) -> Result<T> {
    if tag != type_tag::<T>() {
        return Err(EmberError::serialization(format!("task type tag mismatch: expected {:x}, got {tag:x}", type_tag::<T>())));
    }
    postcard::from_bytes(bytes).map_err(EmberError::ser)
}

/// Re-creates a zero-sized, drop-free `F` (a user closure that captures nothing).
///
/// Only inside [`decode`]: a value of a zero-sized type exists only if the type is inhabited, and
/// a closure capturing an uninhabited zero-sized value would be zero-sized too. Inside `decode`
/// the type was fixed by the driver, where a value of it existed, so it is inhabited.
pub fn conjure<F: Copy + 'static>() -> Result<F> {
    const {
        assert!(std::mem::size_of::<F>() == 0, "only zero-sized closures can be shipped");
        assert!(!std::mem::needs_drop::<F>(), "only closures without drop glue can be shipped");
    }
    if !PERMIT.with(|p| p.get()) {
        return Err(EmberError::serialization("closures can be decoded only inside a task"));
    }
    // SAFETY: `F` is zero-sized (asserted at compile time), so reading it reads no memory, and a
    // dangling, well-aligned pointer is valid for zero-sized reads. The value is valid because
    // `F` is inhabited (the permit confines this to `decode`, see above) and has no drop glue
    // (asserted), so creating it out of thin air cannot double-free anything.
    Ok(unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() })
}

/// The serde form of a zero-sized function value: nothing on the wire, re-created on decode.
pub mod zst {
    use serde::{Deserializer, Serializer};

    /// Serializes a zero-sized function as unit.
    pub fn serialize<F, S: Serializer>(_f: &F, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }

    /// Re-creates the function under the task permit.
    pub fn deserialize<'de, F: Copy + 'static, D: Deserializer<'de>>(d: D) -> Result<F, D::Error> {
        <() as serde::Deserialize>::deserialize(d)?;
        super::conjure::<F>().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Job {
        n: u32,
    }

    fn decode_job(tag: u64, bytes: &[u8]) -> Result<Job> {
        decode_checked::<Job>(tag, bytes)
    }

    fn decode_other(tag: u64, bytes: &[u8]) -> Result<String> {
        decode_checked::<String>(tag, bytes)
    }

    #[test]
    fn round_trip_through_an_offset() {
        let s = ship(&Job { n: 7 }, decode_job).unwrap();
        assert_eq!(decode::<Job>(&s).unwrap(), Job { n: 7 });
    }

    #[test]
    fn a_wrong_tag_is_refused() {
        let mut s = ship(&Job { n: 7 }, decode_job).unwrap();
        s.tag ^= 1;
        assert!(decode::<Job>(&s).is_err());
        // The right entry point of another type refuses the job's tag.
        let mut other = ship(&"x".to_string(), decode_other).unwrap();
        other.tag = type_tag::<Job>();
        assert!(decode::<String>(&other).is_err());
    }

    #[test]
    fn closures_are_conjured_only_under_the_permit() {
        let f = |x: u32| x + 1;
        fn make<F: Fn(u32) -> u32 + Copy + 'static>(_: F) -> Result<F> {
            conjure::<F>()
        }
        assert!(make(f).is_err(), "outside decode");
        // Inside decode the permit is held.
        fn decode_closure(_tag: u64, _bytes: &[u8]) -> Result<u32> {
            let add = |x: u32| x + 1;
            fn again<F: Fn(u32) -> u32 + Copy + 'static>(_: F) -> Result<F> {
                conjure::<F>()
            }
            Ok(again(add)?(41))
        }
        let s = Shipped { entry: (decode_closure as DecodeFn<u32> as usize as i64).wrapping_sub(anchor as fn() -> u64 as usize as i64), tag: 0, bytes: vec![] };
        assert_eq!(decode::<u32>(&s).unwrap(), 42);
    }
}
