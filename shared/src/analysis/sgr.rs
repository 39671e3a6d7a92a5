//! Selective classification with guaranteed risk (SGR, Geifman & El-Yaniv, NeurIPS 2017), as
//! FD-Shifts fits it on `val_tuning` (`ConfidEvaluator.get_val_risk_scores`) and reports it on every
//! test set (`test_risk`, `test_cov`, `diff_risk`, `diff_cov`, `rstar`, `val_theta`).
//!
//! A threshold θ is chosen on validation by a binary search over the sorted confidences: the upper
//! confidence bound of the selective risk of the rows above a candidate (the inverse binomial
//! tail at confidence δ / ⌈log₂ m⌉) must not exceed the target risk r*. The search reads rows by
//! `np.argsort` position, so its result depends on the order of tied confidences ([`TieOrder`]).

use super::rc::TieOrder;

/// What SGR picks on validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Selective risk of the validation rows kept.
    pub risk: f64,
    /// Fraction of validation rows kept.
    pub coverage: f64,
    /// The confidence threshold θ.
    pub theta: f64,
}

/// `P(X ≤ k)` for `X ~ Binomial(n, p)`, summed term by term in log space (accurate to ~1e-13,
/// far below the 1e-9 the bound's search resolves).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let mut log_choose = 0.0f64; // ln C(n, 0)
    let mut total = 0.0;
    for i in 0..=k {
        if i > 0 {
            log_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        total += (log_choose + i as f64 * lp + (n - i) as f64 * lq).exp();
    }
    total.min(1.0)
}

/// FD-Shifts' `calculate_bound`: the `b` in `[erm, 1]` with `binom.cdf(⌊m·erm⌋, m, b) = δ` (to
/// 1e-9), found by bisection — the upper confidence bound of a risk `erm` measured on `m` rows.
pub fn risk_bound(delta: f64, m: u64, erm: f64) -> f64 {
    const PRECISION: f64 = 1e-9;
    let k = (m as f64 * erm) as u64; // Python's int(): truncation, as FD-Shifts.
    let func = |b: f64| -delta + binomial_cdf(k, m, b);
    let (mut a, mut c) = (erm, 1.0f64);
    let mut b = (a + c) / 2.0;
    let mut funcval = func(b);
    // FD-Shifts loops until |func| ≤ 1e-9; bisection gets there long before 10,000 halvings.
    for _ in 0..10_000 {
        if funcval.abs() <= PRECISION {
            break;
        }
        if a == 1.0 && c == 1.0 {
            b = 1.0;
            break;
        } else if funcval > 0.0 {
            a = b;
        } else {
            c = b;
        }
        b = (a + c) / 2.0;
        funcval = func(b);
    }
    b
}

/// The SGR threshold on validation confidences (NaN-free), for target risk `rstar` with confidence
/// `delta`. `None` with fewer than two rows (FD-Shifts divides by `⌈log₂ m⌉ = 0` there).
pub fn fit(confids: &[f64], correct: &[bool], rstar: f64, delta: f64, ties: TieOrder) -> Option<Threshold> {
    let m = confids.len();
    if m < 2 {
        return None;
    }
    let order = ties.argsort(confids, correct);
    let steps = (m as f64).log2().ceil() as usize;
    let deltahat = delta / steps as f64;
    let (mut a, mut b) = (0usize, m - 1);
    let mut out = None;
    for _ in 0..=steps {
        let mid = (a + b).div_ceil(2);
        let kept = &order[mid..];
        let mi = kept.len();
        let errors = kept.iter().filter(|&&r| !correct[r]).count();
        let risk = errors as f64 / mi as f64;
        let bound = risk_bound(deltahat, mi as u64, risk);
        out = Some(Threshold {
            risk,
            coverage: mi as f64 / m as f64,
            theta: confids[order[mid]],
        });
        if bound > rstar {
            a = mid;
        } else {
            b = mid;
        }
    }
    out
}

/// The threshold applied to a test set (NaN confidences are never above it): `(test_risk, test_cov)`,
/// FD-Shifts' `sum(residuals) / (kept + 1e-9)` and `kept / n`.
pub fn apply(theta: f64, confids: &[f64], correct: &[bool]) -> (f64, f64) {
    let kept: Vec<bool> = confids
        .iter()
        .zip(correct)
        .filter(|(c, _)| **c > theta)
        .map(|(_, ok)| *ok)
        .collect();
    let errors = kept.iter().filter(|ok| !**ok).count() as f64;
    (
        errors / (kept.len() as f64 + 1e-9),
        kept.len() as f64 / correct.len() as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_cdf_by_hand() {
        // n = 4, p = 0.5: P(X ≤ 1) = (1 + 4) / 16.
        assert!((binomial_cdf(1, 4, 0.5) - 5.0 / 16.0).abs() < 1e-15);
        assert!((binomial_cdf(0, 3, 0.2) - 0.512).abs() < 1e-15);
        assert_eq!(binomial_cdf(3, 3, 0.7), 1.0);
        assert_eq!(binomial_cdf(2, 5, 1.0), 0.0);
    }

    #[test]
    fn the_bound_inverts_the_binomial_tail() {
        // 2 errors in 50 rows: the bound b satisfies P(X ≤ 2 | 50, b) = δ, and lies above 2/50.
        let b = risk_bound(0.05, 50, 0.04);
        assert!((binomial_cdf(2, 50, b) - 0.05).abs() <= 1e-9);
        assert!(b > 0.04 && b < 0.2, "{b}");
        // No errors: (1 − b)^m = δ.
        let b0 = risk_bound(0.05, 30, 0.0);
        assert!(((1.0 - b0).powi(30) - 0.05).abs() <= 1e-9);
        // All errors: the bound is 1.
        assert_eq!(risk_bound(0.05, 10, 1.0), 1.0);
    }

    #[test]
    fn threshold_keeps_the_confident_rows_when_they_are_right() {
        // 100 rows, the 40 least confident wrong: the search settles at the 40/60 boundary.
        let confids: Vec<f64> = (0..100).map(f64::from).collect();
        let correct: Vec<bool> = (0..100).map(|i| i >= 40).collect();
        let t = fit(&confids, &correct, 0.25, 0.05, TieOrder::Numpy).unwrap();
        assert!(t.risk <= 0.25 && t.theta >= 20.0, "{t:?}");
        let (risk, cov) = apply(t.theta, &confids, &correct);
        assert!(risk < 0.25 && cov < t.coverage + 1e-12, "{risk} {cov}");
        assert!(fit(&[0.5], &[true], 0.25, 0.05, TieOrder::Numpy).is_none());
    }
}
