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

/// `sklearn.metrics.roc_curve(positive, scores)` with its default `drop_intermediate=True`:
/// collinear interior points are dropped, which can change `fpr@95tpr` on tie-heavy scores.
pub fn roc_curve(positive: &[bool], scores: &[f64]) -> RocCurve {
    let c = BinaryClfCurve::new(positive, scores);
    let m = c.tps.len();
    let keep: Vec<usize> = (0..m)
        .filter(|&i| {
            if i == 0 || i + 1 == m {
                return true;
            }
            let d2 = |v: &[f64]| v[i + 1] - 2.0 * v[i] + v[i - 1];
            d2(&c.fps) != 0.0 || d2(&c.tps) != 0.0
        })
        .collect();
    let mut tps = vec![0.0];
    let mut fps = vec![0.0];
    tps.extend(keep.iter().map(|&i| c.tps[i]));
    fps.extend(keep.iter().map(|&i| c.fps[i]));
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

/// AUROC of failure detection (`failauc`): successes are the positive class, higher confidence
/// should mean success. `None` when only one class is present (scikit-learn gives NaN).
pub fn failauc(correct: &[bool], confids: &[f64]) -> Option<f64> {
    let roc = roc_curve(correct, confids);
    finite(auc(&roc.fpr, &roc.tpr))
}

/// Lowest FPR among ROC points with TPR ≥ 0.9495 (`fpr@95tpr`). `None` when undefined.
pub fn fpr_at_95_tpr(correct: &[bool], confids: &[f64]) -> Option<f64> {
    let roc = roc_curve(correct, confids);
    roc.tpr
        .iter()
        .zip(&roc.fpr)
        .filter(|(t, _)| **t >= 0.9495)
        .map(|(_, f)| *f)
        .reduce(f64::min)
        .and_then(finite)
}

/// `sklearn.metrics.average_precision_score(positive, scores)`: `Σ (R_k − R_{k−1}) · P_k` over
/// distinct thresholds. With no positive rows scikit-learn sets recall to 1 everywhere, giving 0.
pub fn average_precision(positive: &[bool], scores: &[f64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let c = BinaryClfCurve::new(positive, scores);
    let total_pos = *c.tps.last().expect("non-empty");
    let precision: Vec<f64> = c
        .tps
        .iter()
        .zip(&c.fps)
        .map(|(tp, fp)| if tp + fp == 0.0 { 0.0 } else { tp / (tp + fp) })
        .collect();
    let recall: Vec<f64> = c
        .tps
        .iter()
        .map(|tp| if total_pos == 0.0 { 1.0 } else { tp / total_pos })
        .collect();
    // sklearn reverses the arrays and appends (precision 1, recall 0); AP = −Σ diff(recall)·precision[:-1].
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (r, p) in recall.iter().zip(&precision) {
        ap += (r - prev_recall) * p;
        prev_recall = *r;
    }
    finite(ap)
}

/// AP with successes as positives and confidence as score (`failap_suc`).
pub fn failap_suc(correct: &[bool], confids: &[f64]) -> Option<f64> {
    average_precision(correct, confids)
}

/// AP with failures as positives and negated confidence as score (`failap_err`).
pub fn failap_err(correct: &[bool], confids: &[f64]) -> Option<f64> {
    let errors: Vec<bool> = correct.iter().map(|c| !c).collect();
    let neg: Vec<f64> = confids.iter().map(|c| -c).collect();
    average_precision(&errors, &neg)
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
