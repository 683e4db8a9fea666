//! Functions given to RDD operations, and how they reach executors.
//!
//! # The rule
//!
//! An operation's function runs where the partition is computed: on an executor, which in
//! cluster mode is another process — the same program, started in executor mode. A Rust closure
//! cannot be sent there as code, so Ember sends its *type*: every closure has a distinct type,
//! and a closure that captures nothing is a zero-sized value of that type, which the executor
//! rebuilds from the type alone. Everything else a function needs must travel as data.
//!
//! So functions come in two kinds:
//!
//! - **Closures that capture nothing**, and function items (`str::len`, a `fn` of yours): pass them
//!   as they are.
//! - **Closures that use values from their surroundings**: write them inside
//!   [`func!`](crate::func). The macro sends the values they use along with the operation
//!   (serialized with serde, so their types need `Serialize` and `Deserialize`), and inside the
//!   closure each captured name is the value (for `Copy` types) or a reference to it, as inside an
//!   ordinary `Fn` closure. Large values are better captured as a
//!   [`Broadcast`](crate::broadcast::Broadcast), which reaches each executor once.
//!
//! ```
//! use ember::prelude::*;
//! let ctx = Context::local("doc").unwrap();
//! let factor = 3;
//! let names = vec!["zero".to_string(), "one".into(), "two".into()];
//! let v = ctx
//!     .parallelize(vec![0usize, 1, 2], 2)
//!     .map(func!(move |x| x * factor))
//!     .filter(|x| x % 2 == 0)
//!     .map(func!(|x| names[x / 3].clone())) // without `move`: `names` is cloned, still usable
//!     .collect()
//!     .unwrap();
//! assert_eq!(v, ["zero", "two"]);
//! assert_eq!(names.len(), 3);
//! ```
//!
//! `func!` finds the variables a closure uses by reading it; `func!([a, b = expr] move |x| …)`
//! names them explicitly instead (and may compute a value on the spot). Write `func!(…)`
//! directly as the argument of the operation that runs it: a closure kept in a variable and
//! given to two operations has its values only in the first.
//!
//! # When it does not build
//!
//! A closure that captures without `func!` is a build error that says what to write instead.
//! A capture that is not `Copy` (a `String`, a `Vec`) is found by `cargo check` already:
//!
//! ```compile_fail,E0277
//! use ember::prelude::*;
//! let ctx = Context::local("doc").unwrap();
//! let prefix = String::from("id-");
//! // error[E0277]: Ember: this function captures values that cannot be sent to executors
//! let v = ctx.parallelize(vec![1, 2], 1).map(move |x| format!("{prefix}{x}")).collect();
//! ```
//!
//! A `Copy` capture (a number) is found when the program is built (`cargo build`, `cargo test`,
//! `cargo run`): `cargo check` stops before the compiler evaluates the size check. The error's
//! note "the above error was encountered while instantiating …" points at your call. Editors
//! that run `cargo check` on save show it when set to build instead (rust-analyzer:
//! `"rust-analyzer.check.command": "build"`).
//!
//! ```compile_fail,E0080
//! use ember::prelude::*;
//! let ctx = Context::local("doc").unwrap();
//! let factor = 3;
//! // error[E0080]: Ember: a function given to an RDD operation captures variables …
//! let v = ctx.parallelize(vec![1, 2, 3], 2).map(move |x| x * factor).collect();
//! ```
//!
//! The same size check catches a function pointer held in a variable (`let f: fn(u32) -> u32 =
//! double;`): a pointer cannot be rebuilt on another process either. Pass the function itself
//! (`rdd.map(double)`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::func::Captures;

/// What every function given to an RDD operation is: `Copy` (so it captures only `Copy`
/// values, or nothing), `Send`, `Sync` and `'static`. The build also checks that it is
/// zero-sized, i.e. captures nothing (see the [module docs](self)).
#[diagnostic::on_unimplemented(
    message = "Ember: this function captures values that cannot be sent to executors",
    label = "captures values: write this closure as `func!(move |..| ..)`",
    note = "functions run on executors, which rebuild them from their type alone; `func!` sends \
            what the closure uses along with it (see the docs of `ember::func!`)"
)]
pub trait Shippable: Copy + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<F: Copy + Send + Sync + 'static> Shippable for F {}

/// The message of the build-time size check.
pub(crate) const CAPTURES_MESSAGE: &str =
    "Ember: a function given to an RDD operation captures variables. It runs on executors, \
     possibly other processes, which rebuild it from its type alone, so it cannot carry what it \
     captures. Write it with `func!`, which sends the values it uses along: `rdd.map(func!(move \
     |x| x * factor))`. A function pointer held in a variable (`let f: fn(u32) -> u32 = double;`) \
     cannot be rebuilt either: pass the function itself, `rdd.map(double)`. The note below (\"the \
     above error was encountered while instantiating\") points at the call.";

/// Fails the build when a function type is not zero-sized. Written out in each public method
/// (not called through a helper) so that the compiler's note names the user's call.
macro_rules! assert_shippable {
    ($($f:ty),+ $(,)?) => {
        $(
            const {
                assert!(
                    ::std::mem::size_of::<$f>() == 0,
                    "{}",
                    $crate::rdd::fns::CAPTURES_MESSAGE
                )
            };
        )+
    };
}
pub(crate) use assert_shippable;

/// A user function and the captured values of the operation it was given to.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct UserFn<F> {
    #[serde(with = "crate::ship::zst")]
    f: F,
    captures: Captures,
}

impl<F: Copy> Clone for UserFn<F> {
    fn clone(&self) -> Self {
        UserFn {
            f: self.f,
            captures: self.captures.clone(),
        }
    }
}

impl<F> UserFn<F> {
    /// `f` with the captured values its operation took ([`Captures::take`]).
    pub(crate) fn new(f: F, captures: &Captures) -> Self {
        UserFn {
            f,
            captures: captures.clone(),
        }
    }

    /// Calls `g` with the function, its captured values reachable.
    #[inline(always)]
    pub(crate) fn enter<R>(&self, g: impl FnOnce(&F) -> R) -> R {
        self.captures.enter(|| g(&self.f))
    }
}

/// A function of one argument, as operations store it: a user function or one of Ember's own.
pub trait Call1<A, R>: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// Calls the function.
    fn call(&self, a: A) -> R;
}

impl<A, R, F: Fn(A) -> R + Copy + Send + Sync + 'static> Call1<A, R> for UserFn<F> {
    #[inline(always)]
    fn call(&self, a: A) -> R {
        self.enter(|f| f(a))
    }
}

/// A function of two arguments (reducers, folds).
pub trait Call2<A, B, R>: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// Calls the function.
    fn call(&self, a: A, b: B) -> R;
}

impl<A, B, R, F: Fn(A, B) -> R + Copy + Send + Sync + 'static> Call2<A, B, R> for UserFn<F> {
    #[inline(always)]
    fn call(&self, a: A, b: B) -> R {
        self.enter(|f| f(a, b))
    }
}

/// A function over a whole partition: `(partition index, iterator) -> iterator`.
pub trait PartitionFn<I, J>: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// Calls the function.
    fn call(&self, index: usize, it: I) -> J;
}

/// `map_partitions(f)`: `f(iter)`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct PartFn<F>(pub(crate) UserFn<F>);

/// `map_partitions_with_index(f)`: `f(index, iter)`.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct PartIndexFn<F>(pub(crate) UserFn<F>);

impl<F: Copy> Clone for PartFn<F> {
    fn clone(&self) -> Self {
        PartFn(self.0.clone())
    }
}
impl<F: Copy> Clone for PartIndexFn<F> {
    fn clone(&self) -> Self {
        PartIndexFn(self.0.clone())
    }
}

impl<I, J, F: Fn(I) -> J + Copy + Send + Sync + 'static> PartitionFn<I, J> for PartFn<F> {
    #[inline(always)]
    fn call(&self, _index: usize, it: I) -> J {
        self.0.enter(|f| f(it))
    }
}
impl<I, J, F: Fn(usize, I) -> J + Copy + Send + Sync + 'static> PartitionFn<I, J>
    for PartIndexFn<F>
{
    #[inline(always)]
    fn call(&self, index: usize, it: I) -> J {
        self.0.enter(|f| f(index, it))
    }
}
