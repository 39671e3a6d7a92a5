//! Ranking metrics of failure detection, with scikit-learn's exact conventions (FD-Shifts calls
//! `sklearn.metrics.roc_curve`, `auc` and `average_precision_score`).
//!
//! Everything works on counts at distinct score thresholds (`_binary_clf_curve`), so the order of
//! tied rows never matters.

/// Cumulative true/false positive counts at each distinct score, scores descending
/// (`sklearn.metrics._ranking._binary_clf_curve`).
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryClfCurve {
    /// True positives with score `>=` each threshold.
    pub tps: Vec<f64>,
    /// False positives with score `>=` each threshold.
    pub fps: Vec<f64>,
    /// The distinct scores, descending.
    pub thresholds: Vec<f64>,
}

impl BinaryClfCurve {
    /// `positive[i]` marks the positive class of row `i`; `scores` must be free of NaN.
    pub fn new(positive: &[bool], scores: &[f64]) -> Self {
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let (mut tps, mut fps, mut thresholds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tp, mut fp) = (0.0, 0.0);
        for (k, &i) in idx.iter().enumerate() {
            if positive[i] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            let last_of_group = k + 1 == idx.len() || scores[idx[k + 1]] != scores[i];
            if last_of_group {
                tps.push(tp);
                fps.push(fp);
                thresholds.push(scores[i]);
            }
        }
        Self { tps, fps, thresholds }
    }
}

/// A ROC curve: false and true positive rates, starting at (0, 0).
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// False positive rate of each point (NaN when there are no negatives, as in scikit-learn).
    pub fpr: Vec<f64>,
    /// True positive rate of each point (NaN when there are no positives).
    pub tpr: Vec<f64>,
}

impl BinaryClfCurve {
    /// The same ranking seen from the other class: negatives become positives and scores are negated
    /// (ascending groups). Built from the counts, without sorting again.
    pub fn complement(&self) -> Self {
        let m = self.tps.len();
        let (t, f) = (
            self.tps.last().copied().unwrap_or(0.0),
            self.fps.last().copied().unwrap_or(0.0),
        );
        let before = |v: &[f64], j: usize| if j == 0 { 0.0 } else { v[j - 1] };
        let groups = (0..m).rev();
        Self {
            tps: groups.clone().map(|j| f - before(&self.fps, j)).collect(),
            fps: groups.clone().map(|j| t - before(&self.tps, j)).collect(),
            thresholds: groups.map(|j| -self.thresholds[j]).collect(),
        }
    }

    /// `sklearn.metrics.roc_curve` with its default `drop_intermediate=True`: collinear interior
    /// points are dropped (this can change `fpr@95tpr` on tie-heavy scores), then (0, 0) is prepended.
    pub fn roc(&self) -> RocCurve {
        let m = self.tps.len();
        let keep: Vec<usize> = (0..m)
            .filter(|&i| {
                if i == 0 || i + 1 == m {
                    return true;
                }
                let d2 = |v: &[f64]| v[i + 1] - 2.0 * v[i] + v[i - 1];
                d2(&self.fps) != 0.0 || d2(&self.tps) != 0.0
            })
            .collect();
        let mut tps = vec![0.0];
        let mut fps = vec![0.0];
        tps.extend(keep.iter().map(|&i| self.tps[i]));
        fps.extend(keep.iter().map(|&i| self.fps[i]));
        let (tp_total, fp_total) = (*tps.last().unwrap_or(&0.0), *fps.last().unwrap_or(&0.0));
        let rate = |v: &[f64], total: f64| -> Vec<f64> {
            if total <= 0.0 {
                vec![f64::NAN; v.len()]
            } else {
                v.iter().map(|x| x / total).collect()
            }
        };
        RocCurve {
            fpr: rate(&fps, fp_total),
            tpr: rate(&tps, tp_total),
        }
    }

    /// `sklearn.metrics.average_precision_score`: `Σ (R_k − R_{k−1}) · P_k` over distinct thresholds.
    /// With no positive rows scikit-learn sets recall to 1 everywhere, giving 0. `None` when empty.
    pub fn average_precision(&self) -> Option<f64> {
        let total_pos = *self.tps.last()?;
        let mut ap = 0.0;
        let mut prev_recall = 0.0;
        for (tp, fp) in self.tps.iter().zip(&self.fps) {
            let precision = if tp + fp == 0.0 { 0.0 } else { tp / (tp + fp) };
            let recall = if total_pos == 0.0 { 1.0 } else { tp / total_pos };
            ap += (recall - prev_recall) * precision;
            prev_recall = recall;
        }
        finite(ap)
    }
}

/// `sklearn.metrics.roc_curve(positive, scores)` (see [`BinaryClfCurve::roc`]).
pub fn roc_curve(positive: &[bool], scores: &[f64]) -> RocCurve {
    BinaryClfCurve::new(positive, scores).roc()
}

/// Trapezoidal area under a curve given by `x` (monotone) and `y` (`sklearn.metrics.auc`).
/// NaN propagates, as in numpy.
pub fn auc(x: &[f64], y: &[f64]) -> f64 {
    let area: f64 = x
        .windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) * 0.5)
        .sum();
    // sklearn flips the sign when x is decreasing.
    let decreasing = x.windows(2).all(|w| w[1] <= w[0]) && x.windows(2).any(|w| w[1] < w[0]);
    if decreasing {
        -area
    } else {
        area
    }
}

/// The ranking metrics of failure detection from one sort of the confidences: successes are the
/// positive class of the ROC curve and of `failap_suc`; failures, ranked by negated confidence, of
/// `failap_err`.
#[derive(Debug, Clone)]
pub struct FailureRanking {
    successes: BinaryClfCurve,
    roc: RocCurve,
}

impl FailureRanking {
    /// Sorts once; `confids` must be free of NaN.
    pub fn new(correct: &[bool], confids: &[f64]) -> Self {
        let successes = BinaryClfCurve::new(correct, confids);
        let roc = successes.roc();
        Self { successes, roc }
    }

    /// AUROC of failure detection (`failauc`). `None` when only one class is present (sklearn: NaN).
    pub fn failauc(&self) -> Option<f64> {
        finite(auc(&self.roc.fpr, &self.roc.tpr))
    }

    /// Lowest FPR among ROC points with TPR ≥ 0.9495 (`fpr@95tpr`). `None` when undefined.
    pub fn fpr_at_95_tpr(&self) -> Option<f64> {
        self.roc
            .tpr
            .iter()
            .zip(&self.roc.fpr)
            .filter(|(t, _)| **t >= 0.9495)
            .map(|(_, f)| *f)
            .reduce(f64::min)
            .and_then(finite)
    }

    /// AP with successes as positives and confidence as score (`failap_suc`).
    pub fn failap_suc(&self) -> Option<f64> {
        self.successes.average_precision()
    }

    /// AP with failures as positives and negated confidence as score (`failap_err`).
    pub fn failap_err(&self) -> Option<f64> {
        self.successes.complement().average_precision()
    }
}

/// `failauc` of one CSF (see [`FailureRanking`]).
pub fn failauc(correct: &[bool], confids: &[f64]) -> Option<f64> {
    FailureRanking::new(correct, confids).failauc()
}

/// `fpr@95tpr` of one CSF (see [`FailureRanking`]).
pub fn fpr_at_95_tpr(correct: &[bool], confids: &[f64]) -> Option<f64> {
    FailureRanking::new(correct, confids).fpr_at_95_tpr()
}

/// `sklearn.metrics.average_precision_score(positive, scores)`.
pub fn average_precision(positive: &[bool], scores: &[f64]) -> Option<f64> {
    BinaryClfCurve::new(positive, scores).average_precision()
}

/// `failap_suc` of one CSF (see [`FailureRanking`]).
pub fn failap_suc(correct: &[bool], confids: &[f64]) -> Option<f64> {
    FailureRanking::new(correct, confids).failap_suc()
}

/// `failap_err` of one CSF (see [`FailureRanking`]).
pub fn failap_err(correct: &[bool], confids: &[f64]) -> Option<f64> {
    FailureRanking::new(correct, confids).failap_err()
}

pub(crate) fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: Option<f64>) {
        match (a, b) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-7, "{a} != {b}"),
            (a, b) => assert_eq!(a, b),
        }
    }

    /// FD-Shifts' published expectations (`test_metrics.py`), N = 100.
    #[test]
    fn matches_fd_shifts_test_vectors() {
        let crate::analysis::test_vectors::Vectors {
            some_correct,
            all,
            some,
            inv,
            med,
            unnorm,
            ..
        } = crate::analysis::test_vectors::vectors();
        // (confids, failauc, fpr@95tpr, failap_suc, failap_err)
        let cases = [
            (&all, 0.5, 1.0, 0.5, 0.5),
            (&some, 1.0, 0.0, 1.0, 1.0),
            (&inv, 0.0, 1.0, 0.5, 0.5),
            (&med, 0.5, 1.0, 0.5, 0.5),
            (&unnorm, 0.51, 0.94, 0.5293777484847491, 0.5293777484847491),
        ];
        for (confids, auroc, fpr, ap_suc, ap_err) in cases {
            close(failauc(&some_correct, confids), Some(auroc));
            close(fpr_at_95_tpr(&some_correct, confids), Some(fpr));
            close(failap_suc(&some_correct, confids), Some(ap_suc));
            close(failap_err(&some_correct, confids), Some(ap_err));
        }
        // Only one class present: AUROC and FPR undefined, AP 1 or 0.
        close(failauc(&[true; 100], &unnorm), None);
        close(fpr_at_95_tpr(&[false; 100], &unnorm), None);
        close(failap_suc(&[true; 100], &unnorm), Some(1.0));
        close(failap_err(&[true; 100], &unnorm), Some(0.0));
        close(failap_suc(&[false; 100], &unnorm), Some(0.0));
        close(failap_err(&[false; 100], &unnorm), Some(1.0));
    }

    #[test]
    fn complement_equals_sorting_the_negated_problem() {
        let correct = [true, false, true, true, false, false, true, false];
        let conf = [0.9, 0.9, 0.7, 0.3, 0.3, 0.1, 0.5, 0.7];
        let errors: Vec<bool> = correct.iter().map(|c| !c).collect();
        let neg: Vec<f64> = conf.iter().map(|c| -c).collect();
        assert_eq!(
            BinaryClfCurve::new(&correct, &conf).complement(),
            BinaryClfCurve::new(&errors, &neg)
        );
    }

    #[test]
    fn drop_intermediate_removes_collinear_points_only() {
        // Three tie groups with one positive and one negative each: (1,1)…(3,3) are collinear.
        let roc = roc_curve(
            &[true, false, true, false, true, false],
            &[0.9, 0.9, 0.5, 0.5, 0.1, 0.1],
        );
        assert_eq!(roc.fpr, vec![0.0, 1.0 / 3.0, 1.0]);
        assert_eq!(roc.tpr, vec![0.0, 1.0 / 3.0, 1.0]);
    }
}
