//! Platt scaling exactly as FD-Shifts fits it: `sklearn.calibration._sigmoid_calibration` on the
//! `val_tuning` scores, applied as `1 / (1 + exp(a·s + b))`.
//!
//! scikit-learn minimises the same convex log-loss with L-BFGS-B (older releases: BFGS) and stops at a
//! gradient tolerance; we solve it with Newton's method to machine precision. Both land on the same
//! unique optimum; the difference is the optimiser's tolerance (~1e-6 relative in the parameters).

/// Fitted Platt parameters: `p = 1 / (1 + exp(a·s + b))`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Platt {
    /// Slope.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

/// Why a Platt fit is impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlattError {
    /// Every validation score was NaN (FD-Shifts raises "All confids are NaN").
    #[error("all validation confidences are NaN")]
    AllNan,
}

fn softplus(z: f64) -> f64 {
    // ln(1 + e^z) without overflow.
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

impl Platt {
    /// Fits on validation scores and correctness; NaN scores are dropped first (FD-Shifts' `PlattScaling`).
    pub fn fit(scores: &[f64], correct: &[bool]) -> Result<Self, PlattError> {
        let (f, y): (Vec<f64>, Vec<bool>) = scores
            .iter()
            .zip(correct)
            .filter(|(s, _)| !s.is_nan())
            .map(|(s, c)| (*s, *c))
            .unzip();
        if f.is_empty() {
            return Err(PlattError::AllNan);
        }
        let prior1 = y.iter().filter(|&&c| c).count() as f64;
        let prior0 = y.len() as f64 - prior1;
        // Platt's regularised targets.
        let t_pos = (prior1 + 1.0) / (prior1 + 2.0);
        let t_neg = 1.0 / (prior0 + 2.0);
        let t: Vec<f64> = y.iter().map(|&c| if c { t_pos } else { t_neg }).collect();
        // loss(a, b) = Σ T·softplus(z) + (1 − T)·softplus(−z), z = a·f + b, p = σ(−z).
        let loss = |a: f64, b: f64| -> f64 {
            f.iter()
                .zip(&t)
                .map(|(fi, ti)| {
                    let z = a * fi + b;
                    ti * softplus(z) + (1.0 - ti) * softplus(-z)
                })
                .sum()
        };
        let (mut a, mut b) = (0.0, ((prior0 + 1.0) / (prior1 + 1.0)).ln());
        let mut current = loss(a, b);
        for _ in 0..200 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (fi, ti) in f.iter().zip(&t) {
                let z = a * fi + b;
                let p = 1.0 / (1.0 + z.exp()); // σ(−z)
                let g = ti - p; // ∂loss/∂z
                let h = p * (1.0 - p);
                ga += g * fi;
                gb += g;
                haa += h * fi * fi;
                hab += h * fi;
                hbb += h;
            }
            // A tiny ridge keeps the step defined when all scores are equal (singular Hessian).
            let ridge = 1e-12 * (haa + hbb).max(1e-300);
            let (haa, hbb) = (haa + ridge, hbb + ridge);
            let det = haa * hbb - hab * hab;
            if !det.is_finite() || det <= 0.0 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            // Backtracking line search: Newton steps on a convex loss, never uphill.
            let mut step = 1.0;
            let mut accepted = false;
            while step > 1e-10 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l <= current {
                    a = na;
                    b = nb;
                    current = l;
                    accepted = true;
                    break;
                }
                step *= 0.5;
            }
            let converged =
                (step * da).abs() <= 1e-15 * a.abs().max(1.0) && (step * db).abs() <= 1e-15 * b.abs().max(1.0);
            if !accepted || converged {
                break;
            }
        }
        Ok(Self { a, b })
    }

    /// Applies the fitted sigmoid to one score (NaN stays NaN).
    pub fn apply(&self, s: f64) -> f64 {
        1.0 / (1.0 + super::numpy::exp(self.a * s + self.b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fit is the optimum of scikit-learn's regularised log-loss: its gradient vanishes there.
    /// (Agreement with scikit-learn itself is checked end to end by the FD-Shifts fixture tests.)
    #[test]
    fn matches_sklearn_on_a_small_problem() {
        let scores: Vec<f64> = (0..20).map(|i| f64::from(i) / 10.0).collect();
        let correct: Vec<bool> = (0..20).map(|i| i % 3 != 0 && i < 15 || i == 17).collect();
        let p = Platt::fit(&scores, &correct).unwrap();
        // Gradient of the regularised loss vanishes at the optimum.
        let prior1 = correct.iter().filter(|&&c| c).count() as f64;
        let prior0 = 20.0 - prior1;
        let (mut ga, mut gb) = (0.0, 0.0);
        for (s, c) in scores.iter().zip(&correct) {
            let t = if *c {
                (prior1 + 1.0) / (prior1 + 2.0)
            } else {
                1.0 / (prior0 + 2.0)
            };
            let g = t - p.apply(*s);
            ga += g * s;
            gb += g;
        }
        assert!(ga.abs() < 1e-10 && gb.abs() < 1e-10, "{ga} {gb}");
        assert!(p.a > 0.0, "higher score, less confident: {p:?}");
    }

    #[test]
    fn nan_scores_are_dropped_and_all_nan_is_an_error() {
        assert_eq!(Platt::fit(&[f64::NAN; 3], &[true; 3]), Err(PlattError::AllNan));
        let p = Platt::fit(&[0.1, f64::NAN, 0.9, 0.5], &[true, false, false, true]).unwrap();
        assert!(p.a.is_finite() && p.b.is_finite());
    }

    #[test]
    fn constant_scores_still_give_a_finite_fit() {
        let p = Platt::fit(
            &[0.3; 10],
            &[true, true, true, false, true, true, false, true, true, true],
        )
        .unwrap();
        assert!(p.a.is_finite() && p.b.is_finite());
        // Matches the (regularised) success rate.
        let t = (8.0 + 1.0) / (8.0 + 2.0) * 0.8 + 1.0 / 4.0 * 0.2;
        assert!((p.apply(0.3) - t).abs() < 1e-9, "{}", p.apply(0.3));
    }
}
