//! Combine tables for `String` keys that keep short keys inline (no pointer to the key's heap
//! bytes), used by the map-side combine and the reduce-side aggregation when the key type is
//! `String`.
//!
//! In a `HashMap<String, C>` every probe that lands on a candidate entry follows the entry's
//! pointer to the key's heap block and compares bytes there: with many distinct keys (a word
//! count) that is a second cache miss per record, and every record's key is a heap allocation of
//! its own. Here a key of up to [`INLINE_MAX`] bytes lives in the entry as three machine words,
//! so a probe touches one entry and compares three words, and a record whose key is lent
//! (`&str`) costs no allocation at all. Longer keys are left to the caller's ordinary map.
//!
//! The probe's address follows from the hash alone, so callers compute the hashes of a batch of
//! records and prefetch their slots before looking any up: the cache misses of rarely seen keys
//! then overlap instead of queueing one after the other.

use std::num::NonZeroU64;

/// Longest key (in bytes) stored inline: 23 bytes plus a length byte fill three words.
pub const INLINE_MAX: usize = 23;

/// A key of at most [`INLINE_MAX`] bytes: the bytes little-endian in three words, zero-padded,
/// with the length plus one in the last byte (so the last word is never zero, which lets
/// `Option<(InlineKey, C)>` mark an empty slot without a tag). Equal keys have equal words and
/// vice versa.
#[derive(Clone, Copy, Debug)]
pub struct InlineKey(u64, u64, NonZeroU64);

impl PartialEq for InlineKey {
    /// Word by word in general-purpose registers. The derived comparison loads the probe key
    /// as one 16-byte vector from where it was just stored as two 8-byte words, which
    /// store-to-load forwarding cannot serve: a stall of about a dozen cycles on every lookup.
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        ((self.0 ^ other.0) | (self.1 ^ other.1) | (self.2.get() ^ other.2.get())) == 0
    }
}

impl Eq for InlineKey {}

#[inline(always)]
fn load8(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The high and low halves of a 64 × 64-bit product folded together: every input bit reaches
/// every output bit, for the price of one multiply.
#[inline(always)]
fn fold_mul(x: u64, y: u64) -> u64 {
    let p = u128::from(x) * u128::from(y);
    (p as u64) ^ ((p >> 64) as u64)
}

impl InlineKey {
    /// The inline form of `bytes`, or `None` if longer than [`INLINE_MAX`].
    #[inline(always)]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let n = bytes.len();
        let [a, b, c] = match n {
            0..=8 => [crate::util::load_le_partial(bytes), 0, 0],
            9..=16 => [load8(bytes), crate::util::load_le_partial(&bytes[8..]), 0],
            17..=INLINE_MAX => [
                load8(bytes),
                load8(&bytes[8..]),
                crate::util::load_le_partial(&bytes[16..]),
            ],
            _ => return None,
        };
        let last = NonZeroU64::new(c | (n as u64 + 1) << 56)?;
        Some(InlineKey(a, b, last))
    }

    /// Length of the key in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        (self.2.get() >> 56) as usize - 1
    }

    /// Whether the key is empty.
    #[inline]
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table hash (not the partitioner's hash, which is computed once per distinct key when
    /// the table is written out).
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        // One folded multiply of the first word against the other two (foldhash's scheme for
        // short inputs): the third word holds the length, so no two lengths collide trivially.
        fold_mul(
            self.0 ^ 0x243F_6A88_85A3_08D3,
            self.1 ^ self.2.get().rotate_left(23) ^ 0x1319_8A2E_0370_7344,
        )
    }

    /// Copies the key's bytes into `out` (replacing its contents) as a `String`.
    ///
    /// Inline keys are only built from `str`s, so the bytes are UTF-8; they are validated anyway
    /// (a few bytes, once per distinct key) rather than trusted.
    pub fn write_to(&self, out: &mut String) {
        let mut bytes = [0u8; 24];
        for (i, w) in [self.0, self.1, self.2.get()].iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out.clear();
        out.push_str(std::str::from_utf8(&bytes[..self.len()]).unwrap_or_default());
    }
}

/// A hash table from inline string keys to combiners: open addressing with linear probing
/// over one array of entries, at most half full.
///
/// Not `hashbrown`: a probe here touches one entry, usually one cache line, whose address is
/// known from the hash alone, so [`StrTable::prefetch`] can fetch it ahead of the lookup.
pub struct StrTable<C> {
    /// Power-of-two length (or empty); `None` is a free slot.
    slots: Vec<Option<(InlineKey, C)>>,
    len: usize,
}

impl<C> Default for StrTable<C> {
    fn default() -> Self {
        StrTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

/// Slots of a table's first allocation.
const MIN_SLOTS: usize = 64;

impl<C> StrTable<C> {
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        // The high bits: `fold_mul` mixes every input bit into them.
        (hash >> 32) as usize & (self.slots.len().wrapping_sub(1))
    }

    /// Hints the cache to fetch the slot where a key of this hash is looked up first.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        if let Some(slot) = self.slots.get(self.home(hash)) {
            crate::prefetch::prefetch(slot);
        }
    }

    /// Folds `x` into `key`'s combiner (`merge`), or inserts `create(x)`. Returns whether the
    /// key was new.
    #[inline(always)]
    #[cfg(any(test, feature = "testing"))]
    pub fn upsert<X>(
        &mut self,
        key: InlineKey,
        x: X,
        create: impl FnOnce(X) -> C,
        merge: impl FnOnce(&mut C, X),
    ) -> bool {
        self.upsert_hashed(key, key.hash(), x, create, merge)
    }

    /// [`StrTable::upsert`] with `key.hash()` already computed.
    #[inline(always)]
    pub fn upsert_hashed<X>(
        &mut self,
        key: InlineKey,
        hash: u64,
        x: X,
        create: impl FnOnce(X) -> C,
        merge: impl FnOnce(&mut C, X),
    ) -> bool {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            match &mut self.slots[i] {
                Some((k, c)) if *k == key => {
                    merge(c, x);
                    return false;
                }
                Some(_) => i = (i + 1) & mask,
                None => {
                    self.slots[i] = Some((key, create(x)));
                    self.len += 1;
                    return true;
                }
            }
        }
    }

    #[cold]
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, (0..n).map(|_| None).collect());
        let mask = n - 1;
        for (k, c) in old.into_iter().flatten() {
            let mut i = self.home(k.hash());
            while self.slots[i].is_some() {
                i = (i + 1) & mask;
            }
            self.slots[i] = Some((k, c));
        }
    }

    /// The combiner of `key`.
    pub fn get(&self, key: &InlineKey) -> Option<&C> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key.hash());
        loop {
            match &self.slots[i] {
                Some((k, c)) if k == key => return Some(c),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// Number of keys.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes and returns every entry, keeping the allocation.
    pub fn drain(&mut self) -> impl Iterator<Item = (InlineKey, C)> + '_ {
        self.len = 0;
        self.slots.iter_mut().filter_map(Option::take)
    }

    /// Every entry, by reference.
    #[cfg(any(test, feature = "testing"))]
    pub fn iter(&self) -> impl Iterator<Item = &(InlineKey, C)> + '_ {
        self.slots.iter().flatten()
    }
}

/// Bytes per entry of a [`StrTable`] at its fullest (half its slots used).
pub fn slot_bytes<C>() -> usize {
    2 * std::mem::size_of::<Option<(InlineKey, C)>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes_of(k: &InlineKey) -> String {
        let mut s = String::new();
        k.write_to(&mut s);
        s
    }

    #[test]
    fn every_length_round_trips() {
        let text = "abcdefghijklmnopqrstuvwxyz";
        for n in 0..=INLINE_MAX {
            let k = InlineKey::new(&text.as_bytes()[..n]).unwrap();
            assert_eq!(k.len(), n);
            assert_eq!(bytes_of(&k), &text[..n]);
        }
        assert!(InlineKey::new(&text.as_bytes()[..INLINE_MAX + 1]).is_none());
    }

    #[test]
    fn table_counts_like_a_hash_map() {
        let mut t = StrTable::<u64>::default();
        let mut reference = std::collections::HashMap::new();
        for i in 0..20_000u64 {
            let w = format!("w{}", (i * 7919) % 3001);
            t.upsert(
                InlineKey::new(w.as_bytes()).unwrap(),
                1u64,
                |v| v,
                |c, v| *c += v,
            );
            *reference.entry(w).or_insert(0u64) += 1;
        }
        assert_eq!(t.len(), reference.len());
        assert_eq!(t.get(&InlineKey::new(b"w7").unwrap()), reference.get("w7"));
        assert_eq!(t.get(&InlineKey::new(b"absent").unwrap()), None);
        assert_eq!(t.iter().count(), reference.len());
        let got: std::collections::HashMap<String, u64> =
            t.drain().map(|(k, c)| (bytes_of(&k), c)).collect();
        assert_eq!(got, reference);
        assert!(t.is_empty() && t.get(&InlineKey::new(b"w7").unwrap()).is_none());
        // Drained tables are reused with their allocation.
        assert!(t.upsert(InlineKey::new(b"again").unwrap(), 5, |v| v, |c, v| *c += v));
        assert!(!t.upsert(InlineKey::new(b"again").unwrap(), 5, |v| v, |c, v| *c += v));
        assert_eq!(t.get(&InlineKey::new(b"again").unwrap()), Some(&10));
    }

    proptest! {
        #[test]
        fn equal_keys_iff_equal_bytes(
            a in prop::collection::vec(any::<u8>(), 0..=INLINE_MAX),
            b in prop::collection::vec(any::<u8>(), 0..=INLINE_MAX)
        ) {
            let (ka, kb) = (InlineKey::new(&a).unwrap(), InlineKey::new(&b).unwrap());
            prop_assert_eq!(ka == kb, a == b);
            prop_assert_eq!(ka.len(), a.len());
            if a == b {
                prop_assert_eq!(ka.hash(), kb.hash());
            }
        }

        #[test]
        fn utf8_keys_round_trip(s in "\\PC{0,7}") {
            if let Some(k) = InlineKey::new(s.as_bytes()) {
                prop_assert_eq!(bytes_of(&k), s);
            }
        }
    }
}
