//! What the shuffle's unit tests share.

use serde::{Deserialize, Serialize};

use crate::aggregator::Aggregator;

/// Sums `u64` values per key, combining on the map side (`reduce_by_key(+)`).
#[derive(Clone, Serialize, Deserialize)]
pub struct Sum;

impl<K> Aggregator<K, u64, u64> for Sum {
    const MAP_SIDE_COMBINE: bool = true;
    fn create_combiner(&self, v: u64) -> u64 {
        v
    }
    fn merge_value(&self, c: &mut u64, v: u64) {
        *c = c.wrapping_add(v)
    }
    fn merge_combiners(&self, c: &mut u64, o: u64) {
        *c = c.wrapping_add(o)
    }
}
