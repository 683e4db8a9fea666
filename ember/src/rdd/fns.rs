//! The zero-sized closure rule (DESIGN.md 2).
//!
//! Every function given to an RDD operation must be a closure that captures nothing: it runs on
//! executors, which in cluster mode are other processes that re-create it from its type alone.
//! Values a function needs travel explicitly: `rdd.map_with(factor, |factor, x| x * factor)`.
//!
//! A capturing closure is rejected at build time (`cargo build` / `cargo test`; `cargo check`
//! does not evaluate the assertion):
//!
//! ```compile_fail,E0080
//! use ember::prelude::*;
//! let ctx = Context::local("doc").unwrap();
//! let factor = 3;
//! // error: Ember: a function given to an RDD operation captures variables
//! let v = ctx.parallelize(vec![1, 2, 3], 2).map(move |x| x * factor).collect();
//! ```
//!
//! The same job written the Ember way:
//!
//! ```
//! use ember::prelude::*;
//! let ctx = Context::local("doc").unwrap();
//! let factor = 3;
//! let v = ctx.parallelize(vec![1, 2, 3], 2).map_with(factor, |factor, x| x * factor).collect().unwrap();
//! assert_eq!(v, vec![3, 6, 9]);
//! ```

/// Fails the build when `F` is not zero-sized, i.e. when a closure captures something.
///
/// The check runs when the generic function is instantiated, so it catches every call site.
#[inline(always)]
pub(crate) fn assert_no_captures<F>(_f: &F) {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "Ember: a function given to an RDD operation captures variables. Functions run on executors, \
             possibly in other processes, and are re-created there from their type alone, so they must not \
             capture anything. Pass the value explicitly with the `_with` form of the operation, e.g. \
             `rdd.map_with(factor, |factor, x| x * factor)`, or use a broadcast variable for large values."
        )
    }
}

// ---- Function shapes ----
// An operation stores its user function inside one of these wrappers so that the plain form
// (`map(f)`) and the capturing form (`map_with(c, f)`) share one implementation, while every
// call stays static and inlinable.
/// A function of one argument with access to the operation's captured value.
pub trait Call1<C, A, R>: Copy + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static {
    /// Calls the function.
    fn call(&self, cap: &C, a: A) -> R;
}

/// A plain function: ignores the captured value (which is `()`).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct Plain<F>(#[serde(with = "crate::ship::zst")] pub(crate) F);

/// A function that receives the captured value first.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct With<F>(#[serde(with = "crate::ship::zst")] pub(crate) F);

impl<C, A, R, F: Fn(A) -> R + Copy + Send + Sync + 'static> Call1<C, A, R> for Plain<F> {
    #[inline(always)]
    fn call(&self, _cap: &C, a: A) -> R {
        (self.0)(a)
    }
}

impl<C, A, R, F: Fn(&C, A) -> R + Copy + Send + Sync + 'static> Call1<C, A, R> for With<F> {
    #[inline(always)]
    fn call(&self, cap: &C, a: A) -> R {
        (self.0)(cap, a)
    }
}

/// A function of two arguments with access to the captured value (reducers, folds).
pub trait Call2<C, A, B, R>: Copy + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static {
    /// Calls the function.
    fn call(&self, cap: &C, a: A, b: B) -> R;
}

impl<C, A, B, R, F: Fn(A, B) -> R + Copy + Send + Sync + 'static> Call2<C, A, B, R> for Plain<F> {
    #[inline(always)]
    fn call(&self, _cap: &C, a: A, b: B) -> R {
        (self.0)(a, b)
    }
}

impl<C, A, B, R, F: Fn(&C, A, B) -> R + Copy + Send + Sync + 'static> Call2<C, A, B, R> for With<F> {
    #[inline(always)]
    fn call(&self, cap: &C, a: A, b: B) -> R {
        (self.0)(cap, a, b)
    }
}

/// A function over a whole partition: `(captured, partition index, iterator) -> iterator`.
pub trait PartitionFn<C, I, J>: Copy + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static {
    /// Calls the function.
    fn call(&self, cap: &C, index: usize, it: I) -> J;
}

/// `map_partitions(f)`: `f(iter)`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct PartPlain<F>(#[serde(with = "crate::ship::zst")] pub(crate) F);
/// `map_partitions_with_index(f)`: `f(index, iter)`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct PartIndex<F>(#[serde(with = "crate::ship::zst")] pub(crate) F);
/// `map_partitions_with(c, f)`: `f(&c, iter)`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct PartWith<F>(#[serde(with = "crate::ship::zst")] pub(crate) F);
/// `map_partitions_with_index_with(c, f)`: `f(&c, index, iter)`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "F: Copy + 'static"))]
pub struct PartIndexWith<F>(#[serde(with = "crate::ship::zst")] pub(crate) F);

impl<C, I, J, F: Fn(I) -> J + Copy + Send + Sync + 'static> PartitionFn<C, I, J> for PartPlain<F> {
    #[inline(always)]
    fn call(&self, _cap: &C, _index: usize, it: I) -> J {
        (self.0)(it)
    }
}
impl<C, I, J, F: Fn(usize, I) -> J + Copy + Send + Sync + 'static> PartitionFn<C, I, J> for PartIndex<F> {
    #[inline(always)]
    fn call(&self, _cap: &C, index: usize, it: I) -> J {
        (self.0)(index, it)
    }
}
impl<C, I, J, F: Fn(&C, I) -> J + Copy + Send + Sync + 'static> PartitionFn<C, I, J> for PartWith<F> {
    #[inline(always)]
    fn call(&self, cap: &C, _index: usize, it: I) -> J {
        (self.0)(cap, it)
    }
}
impl<C, I, J, F: Fn(&C, usize, I) -> J + Copy + Send + Sync + 'static> PartitionFn<C, I, J> for PartIndexWith<F> {
    #[inline(always)]
    fn call(&self, cap: &C, index: usize, it: I) -> J {
        (self.0)(cap, index, it)
    }
}
