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

use hashbrown::HashTable;

/// Longest key (in bytes) stored inline: 23 bytes plus a length byte fill three words.
pub const INLINE_MAX: usize = 23;

/// A key of at most [`INLINE_MAX`] bytes: the bytes little-endian in three words, zero-padded,
/// with the length in the last byte. Equal keys have equal words and vice versa.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InlineKey([u64; 3]);

/// The little-endian value of 1 to 8 bytes, zero-extended, without a byte loop: two possibly
/// overlapping loads whose common bytes agree.
#[inline(always)]
fn load_le(b: &[u8]) -> u64 {
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
            0..=8 => [load_le(bytes), 0, 0],
            9..=16 => [load8(bytes), load_le(&bytes[8..]), 0],
            17..=INLINE_MAX => [load8(bytes), load8(&bytes[8..]), load_le(&bytes[16..])],
            _ => return None,
        };
        Some(InlineKey([a, b, c | (n as u64) << 56]))
    }

    /// Length of the key in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        (self.0[2] >> 56) as usize
    }

    /// Whether the key is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table hash (not the partitioner's hash, which is computed once per distinct key when
    /// the table is written out).
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        // One folded multiply of the first word against the other two (foldhash's scheme for
        // short inputs): the third word holds the length, so no two lengths collide trivially.
        let [a, b, c] = self.0;
        fold_mul(a ^ 0x243F_6A88_85A3_08D3, b ^ c.rotate_left(23) ^ 0x1319_8A2E_0370_7344)
    }

    /// Copies the key's bytes into `out` (replacing its contents) as a `String`.
    ///
    /// Inline keys are only built from `str`s, so the bytes are UTF-8; they are validated anyway
    /// (a few bytes, once per distinct key) rather than trusted.
    pub fn write_to(&self, out: &mut String) {
        let mut bytes = [0u8; 24];
        for (i, w) in self.0.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        out.clear();
        out.push_str(std::str::from_utf8(&bytes[..self.len()]).unwrap_or_default());
    }
}

/// A hash table from inline string keys to combiners.
pub struct StrTable<C> {
    table: HashTable<(InlineKey, C)>,
}

impl<C> Default for StrTable<C> {
    fn default() -> Self {
        StrTable { table: HashTable::new() }
    }
}

impl<C> StrTable<C> {
    /// Folds `x` into `key`'s combiner (`merge`), or inserts `create(x)`. Returns whether the
    /// key was new.
    #[inline(always)]
    pub fn upsert<X>(&mut self, key: InlineKey, x: X, create: impl FnOnce(X) -> C, merge: impl FnOnce(&mut C, X)) -> bool {
        let hash = key.hash();
        // A plain lookup first: nearly every record finds its key, and `entry` would also
        // prepare an insert slot on the way.
        if let Some(e) = self.table.find_mut(hash, |e| e.0 == key) {
            merge(&mut e.1, x);
            return false;
        }
        self.table.insert_unique(hash, (key, create(x)), |e| e.0.hash());
        true
    }

    /// The combiner of `key`.
    pub fn get(&self, key: &InlineKey) -> Option<&C> {
        self.table.find(key.hash(), |e| e.0 == *key).map(|e| &e.1)
    }

    /// Number of keys.
    #[inline]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Removes and returns every entry, keeping the allocation.
    pub fn drain(&mut self) -> impl Iterator<Item = (InlineKey, C)> + '_ {
        self.table.drain()
    }

    /// Every entry, by reference.
    pub fn iter(&self) -> impl Iterator<Item = &(InlineKey, C)> + '_ {
        self.table.iter()
    }
}

/// Fixed bytes per entry of a [`StrTable`]: the entry plus its control byte, over the 7/8
/// maximum load factor (as `size_tracker::map_slot_bytes` for hash maps).
pub fn slot_bytes<C>() -> usize {
    (std::mem::size_of::<(InlineKey, C)>() + 1) * 8 / 7
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
            t.upsert(InlineKey::new(w.as_bytes()).unwrap(), 1u64, |v| v, |c, v| *c += v);
            *reference.entry(w).or_insert(0u64) += 1;
        }
        assert_eq!(t.len(), reference.len());
        let got: std::collections::HashMap<String, u64> = t.drain().map(|(k, c)| (bytes_of(&k), c)).collect();
        assert_eq!(got, reference);
        assert!(t.is_empty());
    }

    proptest! {
        #[test]
        fn equal_keys_iff_equal_bytes(a in prop::collection::vec(any::<u8>(), 0..=INLINE_MAX), b in prop::collection::vec(any::<u8>(), 0..=INLINE_MAX)) {
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
