//! A cache prefetch hint: the one `unsafe` call outside `ship.rs`.
//!
//! A combine table with 100,000 distinct keys does not fit in a core's cache; a record whose
//! key is rarely seen waits for main memory (about 100 ns) on its probe. The map-side combine
//! computes the slots of a batch of records first and prefetches them, so that those waits
//! overlap instead of adding up (see `shuffle::sort_writer::CombineSink`).

/// Asks the CPU to bring the cache line holding `value` into its caches. A hint only: no
/// observable effect on the program.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: `_mm_prefetch` is an `unsafe fn` only because it is a `#[target_feature(enable
    // = "sse")]` function; SSE is enabled for this build (the `cfg` above; it is part of the
    // x86_64 baseline). The instruction reads and writes no program-visible memory and never
    // faults, and the address is that of a live reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn prefetch_changes_nothing() {
        let v: Vec<u64> = (0..4096).collect();
        for x in v.iter().step_by(8) {
            prefetch(x);
        }
        prefetch(&v);
        assert_eq!(v, (0..4096).collect::<Vec<_>>());
    }
}
