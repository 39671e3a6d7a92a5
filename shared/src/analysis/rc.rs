//! Risk–coverage analysis: one [`RiskCoverageStats`] per (confidences, correctness) pair, every
//! AURC-type metric a method of it (FD-Shifts' `StatsCache` / `RiskCoverageStatsMixin`).
//!
//! Two families of curves live here:
//! - the **current** curves of FD-Shifts HEAD (`rc_stats_utils.py`): one point per distinct confidence
//!   threshold, integrated with the trapezoid rule, independent of the order of tied rows;
//! - the **legacy** curve of FD-Shifts v0.1.1 (`metrics.py: rc_curve_stats`), whose AURC depends on the
//!   order in which `np.argsort` puts tied rows and omits the last `1/n` of coverage. It is reproduced
//!   exactly, with the tie order chosen by the caller ([`TieOrder`]).

/// How rows with equal confidence are ordered before the tie-order dependent algorithms run (the
/// legacy AURC of v0.1.1, `b-aurc`, the selective-risk threshold of `test_risk`).
///
/// FD-Shifts sorts with `np.argsort`, an introsort whose order of ties is neither stable nor
/// random: [`TieOrder::Numpy`] reproduces numpy 1.24's (the default: FD-Shifts' numbers). The
/// others are for asking how much ties matter: errors-first gives the lowest legacy AURC,
/// corrects-first the highest, and every other order lies between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TieOrder {
    /// `np.argsort`'s order (numpy 1.24's introsort).
    #[default]
    Numpy,
    /// Stable: tied rows keep their input order.
    Input,
    /// Tied rows that are failures come first (are rejected first).
    ErrorsFirst,
    /// Tied rows that are successes come first.
    CorrectsFirst,
}

impl TieOrder {
    /// Row indices in ascending confidence, ties ordered by `self`.
    pub fn argsort(self, confids: &[f64], correct: &[bool]) -> Vec<usize> {
        if self == TieOrder::Numpy {
            return super::numpy::argsort(confids);
        }
        let mut order: Vec<usize> = (0..confids.len()).collect();
        // `sort_by` is stable, so TieOrder::Input keeps the input order of ties.
        order.sort_by(|&a, &b| {
            let by_conf = confids[a].total_cmp(&confids[b]);
            let tie = match self {
                TieOrder::ErrorsFirst => correct[a].cmp(&correct[b]),
                TieOrder::CorrectsFirst => correct[b].cmp(&correct[a]),
                _ => std::cmp::Ordering::Equal,
            };
            by_conf.then(tie)
        });
        order
    }
}

/// A risk–coverage curve: `coverages` descending from 1 to 0, `risks` aligned with them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    /// Coverage of each point, descending, in `[0, 1]`.
    pub coverages: Vec<f64>,
    /// Risk at each point.
    pub risks: Vec<f64>,
    /// Confidence threshold of each point but the final `coverage = 0` one: rows with confidence
    /// `>= threshold` are kept.
    pub thresholds: Vec<f64>,
}

impl Curve {
    /// Area under the curve by the trapezoid rule over coverage (`-np.trapz(risks, coverages)`,
    /// summed in numpy's order).
    pub fn trapezoid_area(&self) -> f64 {
        let terms: Vec<f64> = self
            .coverages
            .windows(2)
            .zip(self.risks.windows(2))
            .map(|(c, r)| (c[1] - c[0]) * (r[1] + r[0]) / 2.0)
            .collect();
        -super::numpy::sum(&terms)
    }

    /// The point whose coverage is nearest to `coverage` (the higher one on a tie), as
    /// `(coverage, risk, threshold)`; the threshold is `None` for the final `coverage = 0` point.
    /// `None` for an empty curve.
    pub fn nearest(&self, coverage: f64) -> Option<(f64, f64, Option<f64>)> {
        let n = self.coverages.len();
        if n == 0 {
            return None;
        }
        // Coverages descend: `i` is the first point at or below `coverage`.
        let i = self.coverages.partition_point(|&c| c > coverage);
        let j = if i == n || (i > 0 && self.coverages[i - 1] - coverage <= coverage - self.coverages[i]) {
            i - 1
        } else {
            i
        };
        Some((self.coverages[j], self.risks[j], self.thresholds.get(j).copied()))
    }

    /// Lowest risk among the points whose coverage is at least `coverage` (`None` when there is none).
    pub fn min_risk_at_coverage(&self, coverage: f64) -> Option<f64> {
        self.coverages
            .iter()
            .zip(&self.risks)
            .filter(|(c, _)| **c >= coverage)
            .map(|(_, r)| *r)
            .reduce(f64::min)
    }
}

/// The legacy v0.1.1 curve with the weight (coverage removed, as a fraction) of each segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LegacyCurve {
    /// Coverage of each recorded point.
    pub coverages: Vec<f64>,
    /// Selective risk of each recorded point.
    pub risks: Vec<f64>,
    /// Weight of the segment after each point (one fewer than points).
    pub weights: Vec<f64>,
}

impl LegacyCurve {
    /// `Σ (r_j + r_{j+1}) / 2 · w_j`, unscaled.
    pub fn weighted_area(&self) -> f64 {
        self.weights
            .iter()
            .enumerate()
            .map(|(j, w)| (self.risks[j] + self.risks[j + 1]) * 0.5 * w)
            .sum()
    }
}

/// Confidences, residuals (1 = failure) and optional class labels of one CSF on one test set,
/// with the ascending-confidence order computed once.
#[derive(Debug, Clone)]
pub struct RiskCoverageStats {
    confids: Vec<f64>,
    residuals: Vec<f64>,
    labels: Option<Vec<i64>>,
    /// Row indices in ascending confidence (ties ordered by `TieOrder`).
    order: Vec<usize>,
}

impl RiskCoverageStats {
    /// Builds the stats. `confids` must be free of NaN (FD-Shifts drops NaN rows before this point:
    /// see `metrics::evaluate_csf`). Panics if the slices differ in length (a programming error).
    pub fn new(confids: &[f64], correct: &[bool], labels: Option<&[i64]>, ties: TieOrder) -> Self {
        assert_eq!(confids.len(), correct.len(), "confids and correct differ in length");
        if let Some(l) = labels {
            assert_eq!(l.len(), confids.len(), "labels and confids differ in length");
        }
        let order = ties.argsort(confids, correct);
        Self {
            confids: confids.to_vec(),
            residuals: correct.iter().map(|&c| if c { 0.0 } else { 1.0 }).collect(),
            labels: labels.map(<[i64]>::to_vec),
            order,
        }
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.confids.len()
    }

    /// Fraction of failures.
    pub fn error_rate(&self) -> f64 {
        self.residuals.iter().sum::<f64>() / self.n() as f64
    }

    fn sorted_confid(&self, i: usize) -> f64 {
        self.confids[self.order[i]]
    }

    /// `true` where sorted row `i` is the last of its tie group (FD-Shifts HEAD:
    /// `confidence[i] != confidence[i + 1]`).
    fn ends_tie_group(&self, i: usize) -> bool {
        self.sorted_confid(i) != self.sorted_confid(i + 1)
    }

    /// The legacy v0.1.1 selective-risk curve (`StatsCache.rc_curve_stats`), point for point:
    /// after removing sorted row `i` the risk is `errors_left / (n - 1 - i)`; a point is recorded when
    /// `i == 0` or the confidence differs from the previous row's; a final `(0, last risk)` point is
    /// added only when rows were removed after the last recorded point.
    pub fn legacy_curve(&self) -> LegacyCurve {
        let n = self.n();
        let nf = n as f64;
        let mut error_sum: f64 = self.order.iter().map(|&i| self.residuals[i]).sum();
        let mut curve = LegacyCurve {
            coverages: vec![1.0],
            risks: vec![error_sum / nf],
            weights: Vec::new(),
        };
        let mut coverage = n;
        let mut tmp_weight = 0usize;
        for i in 0..n.saturating_sub(1) {
            coverage -= 1;
            error_sum -= self.residuals[self.order[i]];
            let selective_risk = error_sum / (n - 1 - i) as f64;
            tmp_weight += 1;
            if i == 0 || self.sorted_confid(i) != self.sorted_confid(i - 1) {
                curve.coverages.push(coverage as f64 / nf);
                curve.risks.push(selective_risk);
                curve.weights.push(tmp_weight as f64 / nf);
                tmp_weight = 0;
            }
        }
        if tmp_weight > 0 {
            curve.coverages.push(0.0);
            curve.risks.push(*curve.risks.last().expect("curve has a first point"));
            curve.weights.push(tmp_weight as f64 / nf);
        }
        curve
    }

    /// Legacy AURC ×1000 (v0.1.1 `aurc`).
    pub fn aurc_legacy(&self) -> f64 {
        self.legacy_curve().weighted_area() * 1000.0
    }

    /// Optimal AURC for this error rate, ×1000: `err + (1 − err)·ln(1 − err + eps)`.
    pub fn aurc_optimal(&self) -> f64 {
        let err = self.error_rate();
        1000.0 * (err + (1.0 - err) * super::numpy::ln(1.0 - err + f64::EPSILON))
    }

    /// Current (HEAD) selective-risk curve (`selective_risk_stats`).
    pub fn selective_curve(&self) -> Curve {
        self.curve_with(|errors, kept, _n| errors / kept, true)
    }

    /// Current (HEAD) generalised-risk curve (`generalized_risk_stats`): errors kept / n, ending at (0, 0).
    pub fn generalized_curve(&self) -> Curve {
        self.curve_with(|errors, _kept, n| errors / n, false)
    }

    fn curve_with(&self, risk: impl Fn(f64, f64, f64) -> f64, hold_last: bool) -> Curve {
        let n = self.n();
        let nf = n as f64;
        let mut error_sum: f64 = self.residuals.iter().sum();
        let mut curve = Curve {
            coverages: vec![1.0],
            risks: vec![risk(error_sum, nf, nf)],
            thresholds: vec![self.sorted_confid(0)],
        };
        let mut kept = n;
        for i in 0..n - 1 {
            kept -= 1;
            error_sum -= self.residuals[self.order[i]];
            if self.ends_tie_group(i) {
                curve.coverages.push(kept as f64 / nf);
                curve.risks.push(risk(error_sum, kept as f64, nf));
                curve.thresholds.push(self.sorted_confid(i + 1));
            }
        }
        curve.coverages.push(0.0);
        let last = if hold_last {
            *curve.risks.last().expect("first point")
        } else {
            0.0
        };
        curve.risks.push(last);
        curve
    }

    /// Current AURC ×1000: trapezoid over the selective-risk curve.
    pub fn aurc(&self) -> f64 {
        self.selective_curve().trapezoid_area() * 1000.0
    }

    /// Current AUGRC ×1000: trapezoid over the generalised-risk curve.
    pub fn augrc(&self) -> f64 {
        self.generalized_curve().trapezoid_area() * 1000.0
    }

    /// Optimal AUGRC ×1000 for binary residuals: `err² / 2`.
    pub fn augrc_optimal(&self) -> f64 {
        0.5 * self.error_rate().powi(2) * 1000.0
    }

    fn class_index(&self) -> Option<(Vec<i64>, Vec<usize>)> {
        let labels = self.labels.as_ref()?;
        let mut classes = labels.clone();
        classes.sort_unstable();
        classes.dedup();
        let idx = labels
            .iter()
            .map(|l| classes.binary_search(l).expect("label is among the classes"))
            .collect();
        Some((classes, idx))
    }

    /// Selective risk with balanced accuracy (`selective_risk_ba_stats`, `drop_empty_classes=False`):
    /// the mean over classes of each class's selective error rate, a class with no rows left counting 0.
    /// `None` without labels.
    pub fn selective_ba_curve(&self) -> Option<Curve> {
        let (classes, class_of) = self.class_index()?;
        let n = self.n();
        let nf = n as f64;
        let k = classes.len();
        let mut count = vec![0usize; k];
        let mut errors = vec![0f64; k];
        for (i, &c) in class_of.iter().enumerate() {
            count[c] += 1;
            errors[c] += self.residuals[i];
        }
        let mean_rate = |errors: &[f64], count: &[usize]| {
            errors
                .iter()
                .zip(count)
                .map(|(e, &c)| if c == 0 { 0.0 } else { e / c as f64 })
                .sum::<f64>()
                / k as f64
        };
        let mut curve = Curve {
            coverages: vec![1.0],
            risks: vec![mean_rate(&errors, &count)],
            thresholds: vec![self.sorted_confid(0)],
        };
        for i in 0..n - 1 {
            let row = self.order[i];
            count[class_of[row]] -= 1;
            errors[class_of[row]] -= self.residuals[row];
            if self.ends_tie_group(i) {
                curve.coverages.push((n - 1 - i) as f64 / nf);
                curve.risks.push(mean_rate(&errors, &count));
                curve.thresholds.push(self.sorted_confid(i + 1));
            }
        }
        curve.coverages.push(0.0);
        curve.risks.push(*curve.risks.last().expect("first point"));
        Some(curve)
    }

    /// Generalised risk with balanced-accuracy weights (`generalized_risk_ba_stats`): each residual is
    /// weighted by `n / (K · n_class)`. `None` without labels.
    pub fn generalized_ba_curve(&self) -> Option<Curve> {
        let (classes, class_of) = self.class_index()?;
        let k = classes.len() as f64;
        let nf = self.n() as f64;
        let mut count = vec![0usize; classes.len()];
        for &c in &class_of {
            count[c] += 1;
        }
        let weighted = Self {
            residuals: self
                .residuals
                .iter()
                .zip(&class_of)
                .map(|(r, &c)| r * nf / (k * count[c] as f64))
                .collect(),
            ..self.clone()
        };
        Some(weighted.generalized_curve())
    }

    /// The balanced AURC (`b-aurc`) of FD-Shifts, ×1000: `StatsCache.brc_curve_stats`, the same in
    /// v0.1.1 and HEAD. Each class present starts with `risk_c = errors_c / rows_c`; the first point
    /// is the mean of these risks. Walking the rows by ascending confidence, each removed row leaves
    /// **its own** class (a class with no rows left drops out of the mean); a point (the mean of the
    /// remaining class risks) is recorded when the confidence differs from the previous row's, with
    /// the number of rows removed since the last point as weight. Like the legacy AURC it depends on
    /// the order of tied rows and never integrates the last row. `None` without labels.
    pub fn b_aurc(&self) -> Option<f64> {
        let (classes, class_of) = self.class_index()?;
        let n = self.n();
        let nf = n as f64;
        let k = classes.len();
        let mut errors = vec![0f64; k];
        let mut count = vec![0usize; k];
        for (row, &c) in class_of.iter().enumerate() {
            errors[c] += self.residuals[row];
            count[c] += 1;
        }
        let mean_risk = |errors: &[f64], count: &[usize]| {
            let risks: Vec<f64> = (0..k)
                .filter(|&c| count[c] > 0)
                .map(|c| errors[c] / count[c] as f64)
                .collect();
            super::numpy::mean(&risks)
        };
        let mut curve = LegacyCurve {
            coverages: vec![1.0],
            risks: vec![mean_risk(&errors, &count)],
            weights: Vec::new(),
        };
        let mut tmp_weight = 0usize;
        for i in 0..n.saturating_sub(1) {
            let row = self.order[i];
            errors[class_of[row]] -= self.residuals[row];
            count[class_of[row]] -= 1;
            tmp_weight += 1;
            if i == 0 || self.sorted_confid(i) != self.sorted_confid(i - 1) {
                curve.coverages.push((n - 1 - i) as f64 / nf);
                curve.risks.push(mean_risk(&errors, &count));
                curve.weights.push(tmp_weight as f64 / nf);
                tmp_weight = 0;
            }
        }
        if tmp_weight > 0 {
            curve.coverages.push(0.0);
            curve.risks.push(*curve.risks.last().expect("first point"));
            curve.weights.push(tmp_weight as f64 / nf);
        }
        Some(curve.weighted_area() * 1000.0)
    }

    /// Risk–coverage curve points for plotting, thinned to at most `max_points` (first and last kept).
    pub fn plot_points(curve: &Curve, max_points: usize) -> Vec<(f64, f64)> {
        let len = curve.coverages.len();
        if len <= max_points || max_points < 2 {
            return curve
                .coverages
                .iter()
                .copied()
                .zip(curve.risks.iter().copied())
                .collect();
        }
        let step = (len - 1) as f64 / (max_points - 1) as f64;
        (0..max_points)
            .map(|j| {
                let i = ((j as f64 * step).round() as usize).min(len - 1);
                (curve.coverages[i], curve.risks[i])
            })
            .collect()
    }
}

/// The silent-failure rule: a wrong prediction whose confidence is at or above `threshold` (a
/// [`coverage_threshold`]); a NaN confidence is never silent. Every silent-failure count, filter,
/// colour and region uses it.
pub fn is_silent(wrong: bool, confidence: f32, threshold: f64) -> bool {
    wrong && f64::from(confidence) >= threshold
}

/// The confidence at `coverage` of the reference rows (`dataset_idx == 1`, the i.i.d. test set; all
/// rows if there are none): the lowest confidence among the `coverage` most confident. A failure
/// at or above it is *silent* — the model would have kept it at that coverage. NaN confidences are
/// ignored; `+∞` when there is no confidence at all.
pub fn coverage_threshold(confidence: &[f32], dataset_idx: &[i64], coverage: f64) -> f64 {
    let pick = |iid_only: bool| -> Vec<f64> {
        (0..confidence.len())
            .filter(|&r| !iid_only || dataset_idx[r] == 1)
            .map(|r| f64::from(confidence[r]))
            .filter(|v| !v.is_nan())
            .collect()
    };
    let mut v = pick(true);
    if v.is_empty() {
        v = pick(false);
    }
    if v.is_empty() {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| b.total_cmp(a));
    let keep = ((coverage.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[keep - 1]
}

#[cfg(test)]
#[path = "rc_tests.rs"]
mod tests;
