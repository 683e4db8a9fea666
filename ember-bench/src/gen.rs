//! Deterministic data of the reference workloads (`shared/WORKLOADS.md`), generated lazily
//! inside the tasks, never materialised in the driver.

use ember::prelude::*;

/// Map (and reduce) partitions of W3–W7.
pub const P: usize = 8;

/// splitmix64 as WORKLOADS.md defines it (all arithmetic wrapping).
#[inline]
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th pair of a generated data set, given one parameter (a key modulus, a node count).
///
/// A trait rather than a closure because functions given to Ember must capture nothing: the
/// generator travels as a type, its parameter as the operation's explicit value.
pub trait PairGen: Send + Sync + 'static {
    /// The pair number `i`.
    fn at(param: u64, i: u64) -> (u64, u64);
}

/// W4 and W6 side A: key = splitmix64(i) % param, value = i.
pub struct ModKey;
impl PairGen for ModKey {
    #[inline]
    fn at(modulus: u64, i: u64) -> (u64, u64) {
        (splitmix64(i) % modulus, i)
    }
}

/// W5: key = splitmix64(i) (a u64, so ordered unsigned), value = i.
pub struct RawKey;
impl PairGen for RawKey {
    #[inline]
    fn at(_: u64, i: u64) -> (u64, u64) {
        (splitmix64(i), i)
    }
}

/// W6 side B: key = value = i.
pub struct Identity;
impl PairGen for Identity {
    #[inline]
    fn at(_: u64, i: u64) -> (u64, u64) {
        (i, i)
    }
}

/// W7 edges over `nodes` nodes: src = splitmix64(2i) % nodes, dst = splitmix64(2i+1) % nodes.
pub struct Edge;
impl PairGen for Edge {
    #[inline]
    fn at(nodes: u64, i: u64) -> (u64, u64) {
        (
            splitmix64(i.wrapping_mul(2)) % nodes,
            splitmix64(i.wrapping_mul(2).wrapping_add(1)) % nodes,
        )
    }
}

/// The half-open range of pair indices that partition `p` of `parts` generates out of `n`.
#[inline]
pub fn part_range(p: u64, parts: u64, n: u64) -> std::ops::Range<u64> {
    // u128: p·n must not overflow whatever the scale.
    let at = |q: u64| ((q as u128 * n as u128) / parts as u128) as u64;
    at(p)..at(p + 1)
}

/// `n` pairs of `G`, produced inside [`P`] tasks: an 8-element `parallelize` whose element `p`
/// expands to the pairs `i` in `[p·n/8, (p+1)·n/8)`, as the Spark harness does.
pub fn generate<G: PairGen>(ctx: &Context, n: u64, param: u64) -> impl Rdd<Item = (u64, u64)> {
    ctx.parallelize((0..P as u64).collect::<Vec<u64>>(), P)
        .flat_map(func!(
            move |p: u64| part_range(p, P as u64, n).map(move |i| G::at(param, i))
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_known_values() {
        // splitmix64(0) is the first output of Vigna's reference generator seeded at 0; the
        // others were computed independently (Python, arbitrary-precision integers masked to
        // 64 bits). u64::MAX checks that the first addition wraps.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(1), 0x910A_2DEC_8902_5CC1);
        assert_eq!(splitmix64(2), 0x9758_35DE_1C97_56CE);
        assert_eq!(splitmix64(12345), 0x2211_8258_A9D1_11A0);
        assert_eq!(splitmix64(u64::MAX), 0xE4D9_7177_1B65_2C20);
    }

    #[test]
    fn partitions_cover_every_index_once() {
        for n in [0u64, 1, 7, 8, 9, 20_000_000] {
            let mut next = 0;
            for p in 0..8 {
                let r = part_range(p, 8, n);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }
}
