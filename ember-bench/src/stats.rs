//! Order statistics of timings, computed as the Spark harness computes them.

/// The median (mean of the two middle values for an even count); 0 for no values.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The smallest value; 0 for no values.
pub fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().reduce(f64::min).unwrap_or(0.0)
}

/// The nearest-rank percentile `q` (0 < q <= 1): the value at rank ceil(q·n); 0 for no values.
pub fn nearest_rank(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (q * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_the_spark_harness() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(min(&[3.0, 1.0, 2.0]), 1.0);
        let lat: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(nearest_rank(&lat, 0.99), 198.0); // ceil(0.99 * 200) = 198
        assert_eq!(nearest_rank(&lat, 1.0), 200.0);
        assert_eq!(nearest_rank(&[5.0], 0.99), 5.0);
    }
}
