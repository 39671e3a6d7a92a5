//! Seeded bootstrap confidence intervals for any metric of a test set.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A two-sided percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// Lower bound (the `alpha/2` percentile).
    pub low: f64,
    /// Upper bound (the `1 − alpha/2` percentile).
    pub high: f64,
}

/// Percentile bootstrap: `n_boot` resamples of `n` row indices with replacement (ChaCha8 seeded with
/// `seed`, so the interval is reproducible), the metric evaluated on each, and the `alpha/2` and
/// `1 − alpha/2` percentiles with numpy's default linear interpolation. Resamples where the metric is
/// undefined are skipped; `None` if none is defined.
pub fn bootstrap_ci(
    n: usize,
    n_boot: usize,
    alpha: f64,
    seed: u64,
    mut metric: impl FnMut(&[usize]) -> Option<f64>,
) -> Option<Interval> {
    if n == 0 || n_boot == 0 {
        return None;
    }
    let mut values = Vec::with_capacity(n_boot);
    for_each_resample(n, n_boot, seed, |idx| {
        if let Some(v) = metric(idx).filter(|v| v.is_finite()) {
            values.push(v);
        }
    });
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(Interval {
        low: percentile(&values, alpha / 2.0),
        high: percentile(&values, 1.0 - alpha / 2.0),
    })
}

/// Calls `f` with each of `n_boot` resamples of `n` row indices drawn with replacement (ChaCha8
/// seeded with `seed`): the same resamples for the same arguments, so that metrics of several
/// CSFs computed on them are paired.
pub fn for_each_resample(n: usize, n_boot: usize, seed: u64, mut f: impl FnMut(&[usize])) {
    if n == 0 {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = vec![0usize; n];
    for _ in 0..n_boot {
        idx.iter_mut().for_each(|i| *i = rng.random_range(0..n));
        f(&idx);
    }
}

/// `np.percentile(sorted, q * 100)` with linear interpolation; `sorted` must be ascending and non-empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.5);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!((percentile(&v, 0.975) - 3.925).abs() < 1e-12);
    }

    #[test]
    fn seeded_and_covering_the_mean() {
        let x: Vec<f64> = (0..200).map(|i| f64::from(i % 10)).collect();
        let mean = |idx: &[usize]| Some(idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64);
        let a = bootstrap_ci(x.len(), 500, 0.05, 7, mean).unwrap();
        let b = bootstrap_ci(x.len(), 500, 0.05, 7, mean).unwrap();
        assert_eq!(a, b, "same seed, same interval");
        assert!(a.low < 4.5 && 4.5 < a.high, "{a:?}");
        assert!(a.high - a.low < 1.5);
        let c = bootstrap_ci(x.len(), 500, 0.05, 8, mean).unwrap();
        assert_ne!(a, c);
    }
}
