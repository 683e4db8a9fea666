//! Shuffle records that are `(key, value)` pairs of primitive numbers, encoded and decoded
//! without serde.
//!
//! postcard writes each field of a record through its flavor's `try_extend`, so every varint
//! becomes a `memcpy` call of one to ten bytes; in `perf record` of W5 and W6 (pairs of `u64`)
//! those calls were 10–11 % of the samples. It reads each varint a byte at a time through its
//! flavor, with a `Result` per byte (14 % of W6's instructions under callgrind).
//! [`encode_pair_into`] writes the same bytes directly for the types whose postcard encoding is
//! a varint or a fixed number of bytes, and [`decode_pair`] reads them back; both fall back to
//! postcard for anything else, so the bytes on disk and on the wire are postcard's either way
//! (a proptest compares them).

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
        // Both fields are written into a zeroed window at the end of `buf`, then the unused
        // tail is cut: one capacity check a record instead of one a byte.
        let start = buf.len();
        buf.extend_from_slice(&[0; 2 * MAX_FIELD]);
        let Some(window) = buf[start..].first_chunk_mut::<{ 2 * MAX_FIELD }>() else {
            return Ok(()); // unreachable: the window was just appended
        };
        let n = put_primitive(key, window, 0);
        let n = put_primitive(value, window, n);
        buf.truncate(start + n);
        Ok(())
    } else {
        encode_into(&(key, value), buf)
    }
}

/// What [`decode_pair`] made of the start of a slice.
pub enum Decoded<T> {
    /// `T` is not a pair of primitive numbers: decode it with postcard.
    Unsupported,
    /// The record and the bytes it took.
    Record(T, usize),
    /// The bytes are not a record of this type (postcard would refuse them too).
    Invalid,
}

/// Decodes one record of type `T` from the start of `bytes` if `T` is a pair of primitive
/// numbers, the inverse of [`encode_pair_into`].
#[inline]
pub fn decode_pair<T: 'static>(bytes: &[u8]) -> Decoded<T> {
    // Pairs are matched by their tuple type: without specialization a record type cannot be
    // split into its fields, so the common combinations are listed. Each comparison is on
    // types alone and folds away in every instance.
    macro_rules! keys {
        ($($k:ty),*) => { $( values!($k; u64, u32, i64, i32, usize, f64, f32); )* };
    }
    macro_rules! values {
        ($k:ty; $($v:ty),*) => {
            $(
                if TypeId::of::<T>() == TypeId::of::<($k, $v)>() {
                    return decode_fields::<$k, $v, T>(bytes);
                }
            )*
        };
    }
    keys!(u64, u32, i64, i32, usize);
    Decoded::Unsupported
}

/// Decodes a `K` then a `V` and hands the pair back as `T`, which the caller checked is `(K, V)`.
#[inline(always)]
fn decode_fields<K: 'static, V: 'static, T: 'static>(bytes: &[u8]) -> Decoded<T> {
    // The pair list of `decode_pair` must stay within the primitives' list: a type outside it
    // would make every record look invalid instead of falling back to postcard.
    if !(is_primitive::<K>() && is_primitive::<V>()) {
        return Decoded::Unsupported;
    }
    let mut pos = 0;
    let Some(k) = get_primitive::<K>(bytes, &mut pos) else {
        return Decoded::Invalid;
    };
    let Some(v) = get_primitive::<V>(bytes, &mut pos) else {
        return Decoded::Invalid;
    };
    // `T` is `(K, V)`, so this moves the pair into `T`'s slot; it folds to a plain move.
    let mut slot: Option<T> = None;
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<(K, V)>>() {
        Some(pair) => *pair = Some((k, v)),
        None => return Decoded::Unsupported,
    }
    match slot {
        Some(t) => Decoded::Record(t, pos),
        None => Decoded::Unsupported,
    }
}

/// The longest encoding of a primitive field (a `u64` varint).
const MAX_FIELD: usize = 10;

/// The primitive numbers and how postcard writes each: unsigned integers above a byte as
/// varints, signed ones as zigzag varints, floats as their little-endian bits. One list makes
/// [`is_primitive`], [`put_primitive`] and [`get_primitive`], so the three cannot disagree.
macro_rules! primitives {
    ($($t:ty => put |$v:ident, $out:ident, $at:ident| $write:expr,
        get |$b:ident, $p:ident| $read:expr;)*) => {
        /// Whether `T` is one of the types [`put_primitive`] writes.
        #[inline(always)]
        fn is_primitive<T: 'static>() -> bool {
            let t = TypeId::of::<T>();
            false $(|| t == TypeId::of::<$t>())*
        }

        /// Writes `x` as postcard does at `at` in `out`; returns the end. Writes nothing if
        /// `x` is not a primitive number (callers check [`is_primitive`] first).
        #[inline(always)]
        fn put_primitive<T: 'static>(x: &T, out: &mut [u8; 2 * MAX_FIELD], at: usize) -> usize {
            let x = x as &dyn Any;
            $(
                if let Some(&$v) = x.downcast_ref::<$t>() {
                    let ($out, $at) = (out, at);
                    return $write;
                }
            )*
            at
        }

        /// Reads a `T` as postcard writes it at `*pos` of `bytes` and moves `*pos` past it;
        /// `None` if the bytes are not one (or `T` is not a primitive number).
        #[inline(always)]
        fn get_primitive<T: 'static>(bytes: &[u8], pos: &mut usize) -> Option<T> {
            let mut slot: Option<T> = None;
            let s = &mut slot as &mut dyn Any;
            $(
                if let Some(s) = s.downcast_mut::<Option<$t>>() {
                    let ($b, $p) = (bytes, &mut *pos);
                    *s = Some($read?);
                    return slot;
                }
            )*
            None
        }
    };
}

primitives! {
    u64 => put |v, out, at| put_varint(v, out, at), get |b, p| get_varint(b, p, u64::MAX);
    u32 => put |v, out, at| put_varint(v.into(), out, at),
        get |b, p| narrow(get_varint(b, p, u32::MAX.into())?);
    u16 => put |v, out, at| put_varint(v.into(), out, at),
        get |b, p| narrow(get_varint(b, p, u16::MAX.into())?);
    usize => put |v, out, at| put_varint(v as u64, out, at),
        get |b, p| narrow(get_varint(b, p, u64::MAX)?);
    i64 => put |v, out, at| put_varint(((v << 1) ^ (v >> 63)) as u64, out, at),
        get |b, p| Some(unzigzag(get_varint(b, p, u64::MAX)?));
    i32 => put |v, out, at| put_varint(((v << 1) ^ (v >> 31)) as u32 as u64, out, at),
        get |b, p| narrow(unzigzag(get_varint(b, p, u32::MAX.into())?));
    i16 => put |v, out, at| put_varint(((v << 1) ^ (v >> 15)) as u16 as u64, out, at),
        get |b, p| narrow(unzigzag(get_varint(b, p, u16::MAX.into())?));
    isize => put |v, out, at| put_varint((((v as i64) << 1) ^ ((v as i64) >> 63)) as u64, out, at),
        get |b, p| narrow(unzigzag(get_varint(b, p, u64::MAX)?));
    f64 => put |v, out, at| put_bytes(v.to_le_bytes(), out, at),
        get |b, p| get_bytes(b, p).map(f64::from_le_bytes);
    f32 => put |v, out, at| put_bytes(v.to_le_bytes(), out, at),
        get |b, p| get_bytes(b, p).map(f32::from_le_bytes);
}

/// LEB128, as postcard's varints: seven bits a byte, low bits first, the high bit set on every
/// byte but the last.
#[inline(always)]
fn put_varint(mut v: u64, out: &mut [u8; 2 * MAX_FIELD], mut at: usize) -> usize {
    // `at` is at most MAX_FIELD here and a varint at most MAX_FIELD long, so the bounds
    // checks never fail; they keep this free of `unsafe`.
    while v >= 0x80 {
        if let Some(b) = out.get_mut(at) {
            *b = v as u8 | 0x80;
        }
        v >>= 7;
        at += 1;
    }
    if let Some(b) = out.get_mut(at) {
        *b = v as u8;
    }
    at + 1
}

/// The little-endian bytes of a float, as postcard writes them.
#[inline(always)]
fn put_bytes<const N: usize>(b: [u8; N], out: &mut [u8; 2 * MAX_FIELD], at: usize) -> usize {
    if let Some(dst) = out.get_mut(at..at + N) {
        dst.copy_from_slice(&b);
    }
    at + N
}

/// Reads a LEB128 varint of at most `max`, refusing what postcard refuses: a varint longer
/// than the type allows, or a value past its largest.
#[inline(always)]
fn get_varint(bytes: &[u8], pos: &mut usize, max: u64) -> Option<u64> {
    let limit = (64 - max.leading_zeros() as usize).div_ceil(7);
    let mut v = 0u64;
    for i in 0..limit {
        let b = *bytes.get(*pos + i)?;
        let bits = u64::from(b & 0x7f);
        // Bits shifted past the top would be lost: only the tenth byte of a u64 can do that.
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b < 0x80 {
            *pos += i + 1;
            return (v <= max).then_some(v);
        }
    }
    None
}

#[inline(always)]
fn get_bytes<const N: usize>(bytes: &[u8], pos: &mut usize) -> Option<[u8; N]> {
    let b = *bytes.get(*pos..)?.first_chunk::<N>()?;
    *pos += N;
    Some(b)
}

#[inline(always)]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline(always)]
fn narrow<A, B: TryFrom<A>>(v: A) -> Option<B> {
    B::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    /// The pair encoded by [`encode_pair_into`] and by postcard, behind a byte already in the
    /// buffer; the fast bytes are also decoded back (by both decoders) and must agree.
    fn both<K, V>(k: K, v: V) -> (Vec<u8>, Vec<u8>)
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let (mut fast, mut serde) = (vec![1u8], vec![1u8]);
        encode_pair_into(&k, &v, &mut fast).unwrap();
        encode_into(&(&k, &v), &mut serde).unwrap();
        let mut padded = fast[1..].to_vec();
        padded.push(0x55);
        assert_eq!(decoded::<(K, V)>(&padded), postcard_decoded::<(K, V)>(&padded));
        (fast, serde)
    }

    /// What a decoder made of `bytes`: the record re-encoded (floats compare by bits) and the
    /// bytes it took, or `None` if it refused them.
    type Outcome = Option<(Vec<u8>, usize)>;

    /// [`decode_pair`]'s outcome, postcard's where it does not apply.
    fn decoded<T: Serialize + DeserializeOwned + 'static>(bytes: &[u8]) -> Outcome {
        match decode_pair::<T>(bytes) {
            Decoded::Record(t, used) => Some((postcard::to_allocvec(&t).unwrap(), used)),
            Decoded::Invalid => None,
            Decoded::Unsupported => postcard_decoded::<T>(bytes),
        }
    }

    fn postcard_decoded<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Outcome {
        let (t, rest) = postcard::take_from_bytes::<T>(bytes).ok()?;
        Some((postcard::to_allocvec(&t).unwrap(), bytes.len() - rest.len()))
    }

    #[test]
    fn only_pairs_of_listed_types_take_the_fast_decoder() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        assert!(matches!(decode_pair::<(u64, u64)>(&bytes), Decoded::Record((1, 2), 2)));
        assert!(matches!(decode_pair::<(i32, f64)>(&bytes), Decoded::Record((-1, _), 9)));
        assert!(matches!(decode_pair::<(u64, u64)>(&[0x80]), Decoded::Invalid));
        assert!(matches!(decode_pair::<(u16, u64)>(&bytes), Decoded::Unsupported));
        assert!(matches!(decode_pair::<(u64, String)>(&bytes), Decoded::Unsupported));
        assert!(matches!(decode_pair::<u64>(&bytes), Decoded::Unsupported));
    }

    #[test]
    fn overlong_and_overflowing_varints_are_refused_as_postcard_refuses_them() {
        let cases: [&[u8]; 8] = [
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0],
            &[0xff, 0xff, 0xff, 0xff, 0x0f, 0],
            &[0xff, 0xff, 0xff, 0xff, 0x1f, 0],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0],
            &[0x80, 0x00, 0x00],
            &[],
        ];
        for c in cases {
            assert_eq!(decoded::<(u64, u64)>(c), postcard_decoded::<(u64, u64)>(c), "{c:?}");
            assert_eq!(decoded::<(u32, i32)>(c), postcard_decoded::<(u32, i32)>(c), "{c:?}");
            assert_eq!(decoded::<(i64, f32)>(c), postcard_decoded::<(i64, f32)>(c), "{c:?}");
        }
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

        #[test]
        fn any_bytes_decode_as_postcard_decodes_them(bytes in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(0x80u8), Just(0xffu8)], 0..24)) {
            prop_assert_eq!(decoded::<(u64, u64)>(&bytes), postcard_decoded::<(u64, u64)>(&bytes));
            prop_assert_eq!(decoded::<(u32, i64)>(&bytes), postcard_decoded::<(u32, i64)>(&bytes));
            prop_assert_eq!(decoded::<(i32, u32)>(&bytes), postcard_decoded::<(i32, u32)>(&bytes));
            prop_assert_eq!(
                decoded::<(usize, f64)>(&bytes), postcard_decoded::<(usize, f64)>(&bytes));
            prop_assert_eq!(decoded::<(i64, f32)>(&bytes), postcard_decoded::<(i64, f32)>(&bytes));
        }
    }
}
