//! Calibration of confidence against correctness: reliability bins, ECE and MCE with FD-Shifts'
//! binning (`StatsCache.calibration_stats`, adapted from `sklearn.calibration.calibration_curve`).

/// One non-empty reliability bin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityBin {
    /// Fraction of all rows in this bin.
    pub fraction: f64,
    /// Mean of the (binarised) correctness in the bin.
    pub accuracy: f64,
    /// Mean clipped confidence in the bin.
    pub confidence: f64,
}

/// How correctness is turned into the 0/1 target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binarize {
    /// 1 for a correct prediction (the meaning of calibration).
    Correct,
    /// FD-Shifts v0.1.1: `label_binarize(correct, classes=np.unique(correct))[:, 0]`. With a single
    /// class present scikit-learn returns all zeros, so when every prediction is correct the
    /// target is 0 and ECE becomes the mean confidence.
    LegacyLabelBinarize,
}

/// Reliability bins: `n_bins` bins with edges `linspace(0, 1 + 1e-8, n_bins + 1)` over confidences
/// clipped to `[0, 1]`; empty bins are left out. `None` for an empty input.
pub fn reliability_bins(
    correct: &[bool],
    confids: &[f64],
    n_bins: usize,
    binarize: Binarize,
) -> Option<Vec<ReliabilityBin>> {
    if confids.is_empty() || n_bins == 0 {
        return None;
    }
    let single_class = correct.iter().all(|&c| c == correct[0]);
    let target = |c: bool| match binarize {
        Binarize::LegacyLabelBinarize if single_class => 0.0,
        _ => f64::from(u8::from(c)),
    };
    // numpy.linspace: j * step, with the last edge set to `stop` exactly.
    let stop = 1.0 + 1e-8;
    let step = stop / n_bins as f64;
    let mut edges: Vec<f64> = (0..=n_bins).map(|j| j as f64 * step).collect();
    edges[n_bins] = stop;
    let mut sums = vec![0.0; n_bins + 1];
    let mut trues = vec![0.0; n_bins + 1];
    let mut totals = vec![0usize; n_bins + 1];
    for (&c, &p) in correct.iter().zip(confids) {
        let p = p.clamp(0.0, 1.0);
        // np.digitize(p, edges) - 1: the number of edges <= p, minus one.
        let bin = edges.partition_point(|e| *e <= p) - 1;
        sums[bin] += p;
        trues[bin] += target(c);
        totals[bin] += 1;
    }
    let n = confids.len() as f64;
    Some(
        (0..=n_bins)
            .filter(|&b| totals[b] > 0)
            .map(|b| ReliabilityBin {
                fraction: totals[b] as f64 / n,
                accuracy: trues[b] / totals[b] as f64,
                confidence: sums[b] / totals[b] as f64,
            })
            .collect(),
    )
}

/// Expected calibration error: `Σ fraction · |accuracy − confidence|` over the bins.
pub fn ece(bins: &[ReliabilityBin]) -> f64 {
    bins.iter()
        .map(|b| (b.accuracy - b.confidence).abs() * b.fraction)
        .sum()
}

/// Maximum calibration error: the largest `|accuracy − confidence|` over non-empty bins.
pub fn mce(bins: &[ReliabilityBin]) -> Option<f64> {
    bins.iter().map(|b| (b.accuracy - b.confidence).abs()).reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ece_mce(correct: &[bool], confids: &[f64], mode: Binarize) -> (f64, f64) {
        let bins = reliability_bins(correct, confids, 20, mode).unwrap();
        (ece(&bins), mce(&bins).unwrap())
    }

    /// FD-Shifts' published ECE / MCE expectations (`test_metrics.py`), legacy binarisation.
    #[test]
    fn matches_fd_shifts_test_vectors() {
        let crate::analysis::test_vectors::Vectors {
            some_correct,
            all,
            some,
            inv,
            med,
            none,
            unnorm,
        } = crate::analysis::test_vectors::vectors();
        let all_correct = [true; 100];
        let none_correct = [false; 100];
        let l = Binarize::LegacyLabelBinarize;
        // (correct, confids, ece, mce)
        let cases: [(&[bool], &Vec<f64>, f64, f64); 16] = [
            (&all_correct, &all, 1.0, 1.0),
            (&all_correct, &some, 0.5, 1.0),
            (&all_correct, &med, 0.45, 0.9),
            (&all_correct, &none, 0.0, 0.0),
            (&all_correct, &unnorm, 0.49, 1.0),
            (&some_correct, &all, 0.5, 0.5),
            (&some_correct, &some, 0.0, 0.0),
            (&some_correct, &inv, 1.0, 1.0),
            (&some_correct, &med, 0.25, 0.5),
            (&some_correct, &none, 0.5, 0.5),
            (&some_correct, &unnorm, 0.49, 0.49019607843137253),
            (&none_correct, &all, 1.0, 1.0),
            (&none_correct, &some, 0.5, 1.0),
            (&none_correct, &med, 0.45, 0.9),
            (&none_correct, &none, 0.0, 0.0),
            (&none_correct, &unnorm, 0.49, 1.0),
        ];
        for (correct, confids, e, m) in cases {
            let (got_e, got_m) = ece_mce(correct, confids, l);
            assert!((got_e - e).abs() < 1e-7, "ece {got_e} != {e}");
            assert!((got_m - m).abs() < 1e-7, "mce {got_m} != {m}");
        }
    }

    #[test]
    fn current_binarisation_fixes_the_all_correct_quirk() {
        let (e, _) = ece_mce(&[true; 100], &[1.0; 100], Binarize::Correct);
        assert_eq!(e, 0.0);
        let (e, _) = ece_mce(&[true; 100], &[1.0; 100], Binarize::LegacyLabelBinarize);
        assert_eq!(e, 1.0);
    }
}
