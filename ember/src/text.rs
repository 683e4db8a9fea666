//! Text helpers for jobs over lines of text.
//!
//! [`split_whitespace`] yields exactly the words of [`str::split_whitespace`], faster on ASCII
//! text: std's version decodes every character and tests it against the Unicode whitespace
//! table one at a time (about 20 instructions a byte), which in a word count costs as much as
//! counting the word. Here an ASCII line is classified 8 bytes at a time into a bitmap of its
//! whitespace, and words are read off the bitmap; a line with any non-ASCII byte is handed to
//! std's version.

/// Bytes classified per block: one bit each in a `u64`.
const BLOCK: usize = 64;

const LO7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const HI: u64 = 0x8080_8080_8080_8080;
const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The ASCII whitespace bytes of an 8-byte word of ASCII bytes, as the high bit of each byte:
/// `' '` and `'\t'..='\r'` (what `char::is_whitespace` accepts below 0x80).
#[inline(always)]
fn ws_lanes(v: u64) -> u64 {
    // No byte has its high bit set, so the byte-wise sums below never carry into the next byte.
    let x = v ^ splat(b' ');
    let space = !((x + LO7) | x) & HI;
    let ge_tab = v + splat(0x80 - b'\t');
    let ge_cr_plus_1 = v + splat(0x80 - (b'\r' + 1));
    space | (ge_tab & !ge_cr_plus_1 & HI)
}

/// Packs the high bit of each byte of `lanes` into the low 8 bits, byte 0 first.
#[inline(always)]
fn pack_lanes(lanes: u64) -> u64 {
    // Bits 7, 15, …, 63 shifted to 0, 8, …, 56; the multiply adds each into bits 56..64 at
    // distinct offsets (no carries: every partial product lands on a different bit).
    ((lanes >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bit `i` set when byte `base + i` of `b` (ASCII) is whitespace or past the end.
#[inline]
fn block_mask(b: &[u8], base: usize) -> u64 {
    let block = &b[base..b.len().min(base + BLOCK)];
    let mut mask = 0u64;
    let mut words = block.chunks_exact(8);
    for (k, w) in words.by_ref().enumerate() {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        mask |= pack_lanes(ws_lanes(v)) << (8 * k);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // The zero bytes past the tail are not whitespace; the end marking below covers them.
        mask |=
            pack_lanes(ws_lanes(crate::util::load_le_partial(tail))) << (block.len() - tail.len());
    }
    // Bytes past the end count as whitespace, so a word ends there.
    if block.len() < BLOCK {
        mask |= !0u64 << block.len();
    }
    mask
}

/// The words of `s`: the same items as [`str::split_whitespace`] (Unicode whitespace
/// separates; no empty words), found faster when `s` is ASCII.
///
/// ```
/// let line = "the  quick\tbrown fox ";
/// assert!(ember::text::split_whitespace(line).eq(line.split_whitespace()));
/// ```
pub fn split_whitespace(s: &str) -> SplitWhitespace<'_> {
    if s.is_ascii() {
        SplitWhitespace {
            s,
            std: None,
            base: 0,
            ws: block_mask(s.as_bytes(), 0),
            pos: 0,
        }
    } else {
        SplitWhitespace {
            s,
            std: Some(s.split_whitespace()),
            base: 0,
            ws: !0,
            pos: 0,
        }
    }
}

/// Iterator of [`split_whitespace`].
#[derive(Clone, Debug)]
pub struct SplitWhitespace<'a> {
    s: &'a str,
    /// std's iterator, for text that is not ASCII.
    std: Option<std::str::SplitWhitespace<'a>>,
    /// Start of the block `ws` describes.
    base: usize,
    /// Whitespace bitmap of `s[base..base + 64]` (see `block_mask`).
    ws: u64,
    /// Where the search for the next word starts (at or after `base`).
    pos: usize,
}

impl SplitWhitespace<'_> {
    /// Moves to the next block (`pos` to its start); false, with an all-whitespace bitmap, past
    /// the end.
    #[inline]
    fn advance(&mut self) -> bool {
        self.base += BLOCK;
        self.pos = self.base;
        if self.base >= self.s.len() {
            self.ws = !0;
            return false;
        }
        self.ws = block_mask(self.s.as_bytes(), self.base);
        true
    }
}

impl<'a> SplitWhitespace<'a> {
    /// The next word when it is not within the current block, or when `s` is not ASCII.
    #[inline(never)]
    fn next_slow(&mut self) -> Option<&'a str> {
        if let Some(std) = &mut self.std {
            return std.next();
        }
        // The word's first byte: the first non-whitespace bit at or after `pos`.
        let start = loop {
            let words = !self.ws & (!0u64 << (self.pos - self.base));
            if words != 0 {
                break self.base + words.trailing_zeros() as usize;
            }
            if !self.advance() {
                return None;
            }
        };
        // Its end: the next whitespace bit, possibly blocks later, or the end of `s`.
        let mut from = start - self.base;
        let end = loop {
            let gaps = self.ws & (!0u64 << from);
            if gaps != 0 {
                break self.base + gaps.trailing_zeros() as usize;
            }
            if !self.advance() {
                break self.s.len();
            }
            from = 0;
        };
        self.pos = end.max(self.base);
        Some(&self.s[start..end])
    }
}

impl<'a> Iterator for SplitWhitespace<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        // `base <= pos < base + 64` throughout (`std` set: `ws` is all ones). The common case:
        // the next word starts and ends inside the current block.
        let words = !self.ws & (!0u64 << (self.pos - self.base));
        if words != 0 {
            let gaps = self.ws & (!0u64 << words.trailing_zeros());
            if gaps != 0 {
                let start = self.base + words.trailing_zeros() as usize;
                let end = self.base + gaps.trailing_zeros() as usize;
                self.pos = end;
                return Some(&self.s[start..end]);
            }
        }
        self.next_slow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(s: &str) {
        let ours: Vec<&str> = split_whitespace(s).collect();
        let std: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(ours, std, "{s:?}");
    }

    #[test]
    fn pack_and_classify() {
        assert_eq!(pack_lanes(HI), 0xFF);
        assert_eq!(pack_lanes(0x80), 1);
        assert_eq!(pack_lanes(0x80 << 56), 0x80);
        for c in 0u8..0x80 {
            let v = u64::from(c) << 24 | splat(b'a') & !(0xFF << 24);
            let expect = (c as char).is_whitespace();
            assert_eq!(ws_lanes(v) == 0x80 << 24, expect, "byte {c:#x}");
            assert_eq!(ws_lanes(v) & !(0x80 << 24), 0, "byte {c:#x} marks others");
        }
    }

    #[test]
    fn edge_cases() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "  a  b  ",
            "\u{b}x\u{c}y\r\nz\t",
            "é a",
            "a\u{3000}b",
            "a\u{85}b",
        ] {
            check(s);
        }
        // Words and gaps across block boundaries.
        for n in [63, 64, 65, 127, 128, 129, 200] {
            check(&"x".repeat(n));
            check(&format!("{} y", "x".repeat(n)));
            check(&format!("{}y z", " ".repeat(n)));
            check(&format!("a{}", " ".repeat(n)));
        }
    }

    proptest! {
        #[test]
        fn same_words_as_std(s in "[ a-z\\t\\n\\x0b\\x0c\\r]{0,200}") {
            check(&s);
        }

        #[test]
        fn same_words_as_std_on_any_text(s in "\\PC{0,100}|[ \\u{a0}\\u{3000}a\\u{85}]{0,80}") {
            check(&s);
        }
    }
}
