//! Shuffle records that are `(key, value)` pairs of primitive numbers, encoded without serde.
//!
//! postcard writes each field of a record through its flavor's `try_extend`, so every varint
//! becomes a `memcpy` call of one to ten bytes; in `perf record` of W5 and W6 (pairs of `u64`)
//! those calls were 10–11 % of the samples. [`encode_pair_into`] writes the same bytes
//! directly for the types whose postcard encoding is a varint or a fixed number of bytes, and
//! falls back to postcard for anything else, so readers (which decode with postcard) see no
//! difference.

use std::any::{Any, TypeId};

use serde::Serialize;

use super::encode_into;
use crate::error::Result;

/// Appends the postcard encoding of `(key, value)` to `buf`: the same bytes as
/// `encode_into(&(key, value), buf)`.
#[inline]
pub fn encode_pair_into<K, V>(key: &K, value: &V, buf: &mut Vec<u8>) -> Result<()>
where
    K: Serialize + 'static,
    V: Serialize + 'static,
{
    // Both checks are on the types alone, so each instance keeps one of the two paths.
    if is_primitive::<K>() && is_primitive::<V>() {
        buf.reserve(2 * MAX_FIELD);
        put_primitive(key, buf);
        put_primitive(value, buf);
        Ok(())
    } else {
        encode_into(&(key, value), buf)
    }
}

/// The longest encoding of a primitive field (a `u64` varint).
const MAX_FIELD: usize = 10;

/// The primitive numbers and how postcard writes each: unsigned integers above a byte as
/// varints, signed ones as zigzag varints, floats as their little-endian bits. One list makes
/// both [`is_primitive`] and [`put_primitive`], so the two cannot disagree.
macro_rules! primitives {
    ($($t:ty => |$v:ident, $buf:ident| $write:expr;)*) => {
        /// Whether `T` is one of the types [`put_primitive`] writes.
        #[inline(always)]
        fn is_primitive<T: 'static>() -> bool {
            let t = TypeId::of::<T>();
            false $(|| t == TypeId::of::<$t>())*
        }

        /// Writes `x` as postcard does; nothing if it is not a primitive number (callers check
        /// [`is_primitive`] first).
        #[inline(always)]
        fn put_primitive<T: 'static>(x: &T, buf: &mut Vec<u8>) {
            let x = x as &dyn Any;
            $(
                if let Some(&$v) = x.downcast_ref::<$t>() {
                    let $buf = buf;
                    $write;
                    return;
                }
            )*
        }
    };
}

primitives! {
    u64 => |v, buf| put_varint(v, buf);
    u32 => |v, buf| put_varint(v.into(), buf);
    u16 => |v, buf| put_varint(v.into(), buf);
    usize => |v, buf| put_varint(v as u64, buf);
    i64 => |v, buf| put_varint(((v << 1) ^ (v >> 63)) as u64, buf);
    i32 => |v, buf| put_varint(((v << 1) ^ (v >> 31)) as u32 as u64, buf);
    i16 => |v, buf| put_varint(((v << 1) ^ (v >> 15)) as u16 as u64, buf);
    isize => |v, buf| put_varint((((v as i64) << 1) ^ ((v as i64) >> 63)) as u64, buf);
    f64 => |v, buf| buf.extend_from_slice(&v.to_le_bytes());
    f32 => |v, buf| buf.extend_from_slice(&v.to_le_bytes());
}

/// LEB128, as postcard's varints: seven bits a byte, low bits first, the high bit set on every
/// byte but the last.
#[inline(always)]
fn put_varint(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn both<K: Serialize + 'static, V: Serialize + 'static>(k: K, v: V) -> (Vec<u8>, Vec<u8>) {
        let (mut fast, mut serde) = (vec![1u8], vec![1u8]);
        encode_pair_into(&k, &v, &mut fast).unwrap();
        encode_into(&(&k, &v), &mut serde).unwrap();
        (fast, serde)
    }

    #[test]
    fn edge_values_encode_as_postcard_does() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let (a, b) = both(v, v);
            assert_eq!(a, b, "{v}");
        }
        for v in [0, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            let (a, b) = both(v, v as i32);
            assert_eq!(a, b, "{v}");
        }
        let (a, b) = both(f64::NAN, -0.0f32);
        assert_eq!(a, b);
        let (a, b) = both(u16::MAX, i16::MIN);
        assert_eq!(a, b);
        let (a, b) = both(usize::MAX, isize::MIN);
        assert_eq!(a, b);
        // Other types go through postcard.
        let (a, b) = both("key".to_string(), 7u8);
        assert_eq!(a, b);
        let (a, b) = both(3u64, vec![1u64, 2]);
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn pairs_encode_as_postcard_does(a in any::<u64>(), b in any::<i64>(), c in any::<u32>(),
                                         d in any::<i32>(), e in any::<f64>()) {
            let (x, y) = both(a, b);
            prop_assert_eq!(x, y);
            let (x, y) = both(c, d);
            prop_assert_eq!(x, y);
            let (x, y) = both(a, e);
            prop_assert_eq!(x, y);
        }
    }
}
