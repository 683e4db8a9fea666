//! Captured values of [`func!`](crate::func) closures: how they reach the closure on an executor.
//!
//! An RDD operation's function is a zero-sized closure, rebuilt on executors from its type alone.
//! `func!(move |x| x * factor)` keeps it that way: the macro moves `factor` into a *captured
//! environment* and leaves the closure holding only a zero-sized key. The protocol:
//!
//! 1. On the driver, the macro calls [`stash`]: the values go, with the key's *site* (a type unique
//!    to that macro invocation), into this thread's pending list.
//! 2. The operation the closure is passed to ([`Captures::take`], called by every RDD method and
//!    action that takes functions) moves the pending list into the operation. It travels with the
//!    operation: in place in embedded mode, serialized (each value by its own encoder, recorded at
//!    step 1) to executors.
//! 3. Wherever the operation calls its function it does so inside [`Captures::enter`], which makes
//!    the operation's environment the current one of the thread for the duration of the call.
//! 4. The closure body, wrapped by the macro in [`with_captured`], looks its values up by site in
//!    the current environment (decoding them on first use on an executor) and binds them by name:
//!    `Copy` values by value, others by reference, as inside a `Fn` closure. A scoped thread-local
//!    (`scoped-tls`) carries the environment, so none of this needs `unsafe`.
//!
//! Invariant: values are found by site *within one operation*, so the same macro invocation
//! used for two operations (a helper function called twice, a loop) finds each operation's own
//! values. What the protocol cannot tell apart — one closure value passed to two operations, or
//! two closures of one site created before one operation is built — fails the task with a message
//! that says to write `func!` directly as the operation's argument; it never picks wrong values.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use crate::data::Data;

/// Values a `func!` closure may capture: they are sent to executors.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be captured by `func!`: captured values are sent to executors",
    label = "this value is captured",
    note = "derive serde's `Serialize` and `Deserialize` for it (`#[derive(serde::Serialize, \
            serde::Deserialize)]`), or capture a broadcast variable that holds it"
)]
pub trait Capturable: Data {}

#[diagnostic::do_not_recommend]
impl<T: Data> Capturable for T {}

/// Checks one captured value (the macro calls it on each, so an error names the variable).
#[inline(always)]
pub fn capturable<T: Capturable>(value: T) -> T {
    value
}

/// What a `func!` closure holds: a zero-sized handle naming its site and the type of its values.
pub struct CaptureKey<S, T>(PhantomData<fn() -> (S, T)>);

impl<S, T> Clone for CaptureKey<S, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, T> Copy for CaptureKey<S, T> {}

/// A site's id: the same in every process of one build, like the type tags of task bodies.
fn site_id<S: 'static>() -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    TypeId::of::<S>().hash(&mut h);
    h.finish()
}

type Encoder = fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>, postcard::Error>;

/// The values of one `func!` invocation.
struct Entry {
    site: u64,
    /// Where the macro was written (driver only; for messages).
    origin: Option<(&'static str, u32)>,
    /// The values: set on the driver, decoded from `bytes` on first use on an executor.
    value: OnceLock<Box<dyn Any + Send + Sync>>,
    encode: Option<Encoder>,
    bytes: Option<Vec<u8>>,
}

fn encode<T: Data>(value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, postcard::Error> {
    match value.downcast_ref::<T>() {
        Some(v) => postcard::to_allocvec(v),
        None => Err(postcard::Error::SerializeBufferFull),
    }
}

thread_local! {
    /// Values stashed by `func!` on this thread and not yet taken by an operation.
    static PENDING: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

scoped_tls::scoped_thread_local! {
    /// The environment of the operation whose function this thread is calling.
    static CURRENT: Captures
}

/// Step 1: records the captured values of a `func!` invocation.
pub fn stash<S: 'static, T: Capturable>(
    values: T,
    file: &'static str,
    line: u32,
) -> CaptureKey<S, T> {
    let value = OnceLock::new();
    let _ = value.set(Box::new(values) as Box<dyn Any + Send + Sync>);
    let entry = Entry {
        site: site_id::<S>(),
        origin: Some((file, line)),
        value,
        encode: Some(encode::<T>),
        bytes: None,
    };
    PENDING.with(|p| p.borrow_mut().push(entry));
    CaptureKey(PhantomData)
}

/// The captured values an operation's functions read (empty for functions without captures).
#[derive(Clone, Default)]
pub struct Captures(Option<Arc<[Entry]>>);

impl Captures {
    /// Step 2: takes the values stashed on this thread since the last operation was built.
    pub fn take() -> Captures {
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if pending.is_empty() {
            Captures(None)
        } else {
            Captures(Some(pending.into()))
        }
    }

    /// Step 3: calls `f` with this environment current on this thread.
    #[inline(always)]
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.0.is_none() {
            return f();
        }
        CURRENT.set(self, f)
    }

    fn get<S: 'static, T: Data>(&self) -> &T {
        let site = site_id::<S>();
        let entries = self.0.as_deref().unwrap_or(&[]);
        let mut found = entries.iter().filter(|e| e.site == site);
        let entry = match (found.next(), found.next()) {
            (Some(e), None) => e,
            (None, _) => panic!(
                "a func! closure found none of its captured values: the RDD operation that runs \
                 it was not given them. Write `func!(…)` directly as the argument of the \
                 operation (a closure value kept in a variable and passed to two operations, or \
                 created on another thread, loses them)"
            ),
            (Some(e), Some(_)) => panic!(
                "two closures written by the func! at {} were created before one RDD operation \
                 was built, and Ember cannot tell their captured values apart: create each func! \
                 closure where it is passed",
                e.origin
                    .map_or_else(|| "one place".to_string(), |(f, l)| format!("{f}:{l}"))
            ),
        };
        let value = entry.value.get_or_init(|| {
            let bytes = entry.bytes.as_deref().unwrap_or(&[]);
            match postcard::from_bytes::<T>(bytes) {
                Ok(v) => Box::new(v),
                Err(e) => panic!("the captured values of a func! closure do not decode: {e}"),
            }
        });
        match value.downcast_ref::<T>() {
            Some(v) => v,
            None => panic!(
                "the captured values of a func! closure have another type than the closure expects"
            ),
        }
    }
}

/// Step 4: runs a `func!` closure's body with its captured values.
#[inline(always)]
pub fn with_captured<S: 'static, T: Data, R>(
    _key: CaptureKey<S, T>,
    body: impl FnOnce(&T) -> R,
) -> R {
    if !CURRENT.is_set() {
        panic!(
            "a func! closure was called outside of an RDD operation: func! closures only run as \
             the functions of RDD operations and actions"
        );
    }
    CURRENT.with(|captures| body(captures.get::<S, T>()))
}

/// How the macro binds a captured name: `Copy` values by value (autoref specialization: this
/// impl is found first when it applies), others by reference.
pub struct Captured<'a, T>(pub &'a T);

/// The by-value binding of a `Copy` captured value.
pub trait ByCopy<T> {
    /// The value.
    fn get(&self) -> T;
}
impl<T: Copy> ByCopy<T> for Captured<'_, T> {
    #[inline(always)]
    fn get(&self) -> T {
        *self.0
    }
}

/// The by-reference binding of other captured values.
pub trait ByRef<'a, T> {
    /// A reference to the value.
    fn get(&self) -> &'a T;
}
impl<'a, T> ByRef<'a, T> for &Captured<'a, T> {
    #[inline(always)]
    fn get(&self) -> &'a T {
        self.0
    }
}

impl serde::Serialize for Captures {
    fn serialize<Se: serde::Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        use serde::ser::{Error, SerializeSeq};
        let entries = self.0.as_deref().unwrap_or(&[]);
        let mut seq = s.serialize_seq(Some(entries.len()))?;
        for e in entries {
            let bytes = match (&e.bytes, e.encode, e.value.get()) {
                (Some(b), _, _) => b.clone(),
                (None, Some(encode), Some(v)) => encode(&**v).map_err(Se::Error::custom)?,
                _ => {
                    return Err(Se::Error::custom(
                        "func! captured values without an encoding",
                    ))
                }
            };
            seq.serialize_element(&(e.site, bytes))?;
        }
        seq.end()
    }
}

impl<'de> serde::Deserialize<'de> for Captures {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = <Vec<(u64, Vec<u8>)>>::deserialize(d)?;
        if list.is_empty() {
            return Ok(Captures(None));
        }
        let entries = list
            .into_iter()
            .map(|(site, bytes)| Entry {
                site,
                origin: None,
                value: OnceLock::new(),
                encode: None,
                bytes: Some(bytes),
            })
            .collect();
        Ok(Captures(Some(entries)))
    }
}
