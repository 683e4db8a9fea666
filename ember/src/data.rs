//! The bound every element of an RDD satisfies.

use serde::{de::DeserializeOwned, Serialize};

/// A value that can be an element of an RDD: owned, shareable between task threads, and
/// serializable, because in cluster mode elements cross process boundaries in shuffles and results.
///
/// Implemented automatically for every type with those properties.
pub trait Data: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Data for T {}

/// Keys of shuffles: data that can be hashed and compared.
pub trait Key: Data + Eq + std::hash::Hash {}
impl<T: Data + Eq + std::hash::Hash> Key for T {}
