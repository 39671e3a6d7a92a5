//! The metrics of one test set: classifier performance and the failure-detection quality of one CSF,
//! under FD-Shifts' names and scales (AURC-type ×1000, `risk@…cov` ×100).

use indexmap::IndexMap;

use super::bootstrap;
use super::calibration::{self, Binarize};
use super::csf::{argmax, Matrix};
use super::rc::{RiskCoverageStats, TieOrder};
use super::roc;

/// Metric name → value; `None` where FD-Shifts gives NaN or nothing (undefined).
pub type MetricRow = IndexMap<String, Option<f64>>;

/// Which FD-Shifts definitions to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// FD-Shifts HEAD (c4467ae), the default, quirks included as HEAD computes them: MCD-WAIC reads
    /// row 0's std, ECE of an all-correct set is the mean confidence (`label_binarize`), `temp_mls`
    /// uses the temperature of 50 fixed L-BFGS steps, MC logits and external passes are read as
    /// float16, and the feature-based CSFs (maha, vim, dknn, ReAct) are added when features exist.
    #[default]
    Head,
    /// FD-Shifts v0.1.1 (the MICCAI-2023 paper code): legacy AURC and risk@coverage, the same
    /// MCD-WAIC and ECE quirks, no AUGRC-family metrics and no feature-based CSFs.
    FdShifts011,
    /// HEAD's definitions with its quirks corrected: MCD-WAIC reads each row's own std, ECE's target
    /// is correctness even when every prediction is correct, the temperature minimises the
    /// validation NLL, and MC outputs keep their stored precision.
    Corrected,
}

impl Compat {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            Compat::Head => "fd-shifts-head",
            Compat::FdShifts011 => "fd-shifts-0.1.1",
            Compat::Corrected => "corrected",
        }
    }

    /// Parses a CLI spelling (`current` and `head` are accepted for `fd-shifts-head`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "fd-shifts-head" | "head" | "current" => Some(Compat::Head),
            "fd-shifts-0.1.1" => Some(Compat::FdShifts011),
            "corrected" => Some(Compat::Corrected),
            _ => None,
        }
    }

    /// The v0.1.1 definitions (legacy AURC, no AUGRC family)?
    pub fn legacy(self) -> bool {
        self == Compat::FdShifts011
    }
}

/// Settings of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalConfig {
    /// Which definitions.
    pub compat: Compat,
    /// Order of tied confidences for the legacy, tie-order dependent metrics.
    pub ties: TieOrder,
    /// Calibration bins (FD-Shifts: 20).
    pub n_bins: usize,
    /// Bootstrap resamples for 95 % confidence intervals of AURC/AUGRC (0 = none).
    pub bootstrap: usize,
    /// Seed of the bootstrap resampling.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            compat: Compat::Head,
            ties: TieOrder::Numpy,
            n_bins: 20,
            bootstrap: 0,
            seed: 0,
        }
    }
}

/// Coverages (in %) at which `risk@XXcov` is reported.
pub const RISK_COVERAGES: [u32; 6] = [100, 95, 90, 85, 80, 75];

fn set(row: &mut MetricRow, name: &str, v: Option<f64>) {
    row.insert(name.to_string(), v.filter(|x| x.is_finite()));
}

/// Accuracy, balanced accuracy, NLL and Brier score of the classifier on one test set
/// (`Analysis._compute_performance_metrics`). `open_set` (new-class studies) leaves NLL and Brier
/// undefined, as FD-Shifts does. Labels outside `0..C` may only occur in open-set studies (−99).
///
/// NLL is FD-Shifts' `mean(−log(p + 1e-7) · onehot)`: a mean over all `n · C` entries, i.e. the usual
/// NLL divided by `C`.
pub fn performance_metrics(probs: &Matrix<'_>, labels: &[i64], correct: &[bool], open_set: bool) -> MetricRow {
    let n = correct.len();
    let mut row = MetricRow::new();
    let acc = (n > 0).then(|| correct.iter().filter(|&&c| c).count() as f64 / n as f64);
    set(&mut row, "accuracy", acc);
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let per_class: Vec<f64> = classes
        .iter()
        .map(|cl| {
            let (hit, total) = labels
                .iter()
                .zip(correct)
                .filter(|(l, _)| *l == cl)
                .fold((0usize, 0usize), |(h, t), (_, &c)| (h + usize::from(c), t + 1));
            hit as f64 / total as f64
        })
        .collect();
    let bacc = (!per_class.is_empty()).then(|| per_class.iter().sum::<f64>() / per_class.len() as f64);
    set(&mut row, "b-accuracy", bacc);
    let (nll, brier) = if open_set || n == 0 {
        (None, None)
    } else {
        let c = probs.cols();
        let mut nll = 0.0;
        let mut brier = 0.0;
        for (i, &l) in labels.iter().enumerate() {
            let p = probs.row(i);
            nll += -super::numpy::ln(p[l as usize] + 1e-7);
            brier += p
                .iter()
                .enumerate()
                .map(|(k, pk)| {
                    let y = if k as i64 == l { 1.0 } else { 0.0 };
                    (pk - y) * (pk - y)
                })
                .sum::<f64>();
        }
        (Some(nll / (n * c) as f64), Some(brier / n as f64))
    };
    set(&mut row, "nll", nll);
    set(&mut row, "brier_score", brier);
    row
}

/// `correct[i]`: whether the arg-max of row `i` equals its label (`np.argmax`, first class on ties).
pub fn correctness(probs: &Matrix<'_>, labels: &[i64]) -> Vec<bool> {
    (0..probs.rows())
        .map(|i| argmax(probs.row(i)) as i64 == labels[i])
        .collect()
}

/// The failure-detection metrics of one CSF on one test set (`ConfidEvaluator`). Rows whose
/// confidence is NaN are dropped first, as FD-Shifts does. Labels feed the balanced metrics.
pub fn confid_metrics(confids: &[f64], correct: &[bool], labels: &[i64], cfg: &EvalConfig) -> MetricRow {
    let keep: Vec<usize> = (0..confids.len()).filter(|&i| !confids[i].is_nan()).collect();
    let conf: Vec<f64> = keep.iter().map(|&i| confids[i]).collect();
    let corr: Vec<bool> = keep.iter().map(|&i| correct[i]).collect();
    let lab: Vec<i64> = keep.iter().map(|&i| labels[i]).collect();
    let legacy = cfg.compat.legacy();
    let mut row = MetricRow::new();
    let names = metric_names(cfg);
    if conf.is_empty() {
        for name in names {
            row.insert(name, None);
        }
        return row;
    }
    let ranking = roc::FailureRanking::new(&corr, &conf);
    set(&mut row, "failauc", ranking.failauc());
    set(&mut row, "failap_suc", ranking.failap_suc());
    set(&mut row, "failap_err", ranking.failap_err());
    set(&mut row, "fpr@95tpr", ranking.fpr_at_95_tpr());

    let stats = RiskCoverageStats::new(&conf, &corr, Some(&lab), cfg.ties);
    let risk_at: Box<dyn Fn(f64) -> Option<f64>> = if legacy {
        let curve = stats.legacy_curve();
        set(&mut row, "aurc", Some(curve.weighted_area() * 1000.0));
        set(
            &mut row,
            "e-aurc",
            Some(curve.weighted_area() * 1000.0 - stats.aurc_optimal()),
        );
        Box::new(move |cov| {
            curve
                .coverages
                .iter()
                .zip(&curve.risks)
                .filter(|(c, _)| **c >= cov)
                .map(|(_, r)| *r)
                .reduce(f64::min)
        })
    } else {
        let aurc = stats.aurc();
        let augrc = stats.augrc();
        set(&mut row, "aurc", Some(aurc));
        set(&mut row, "e-aurc", Some(aurc - stats.aurc_optimal()));
        set(&mut row, "augrc", Some(augrc));
        set(&mut row, "e-augrc", Some(augrc - stats.augrc_optimal()));
        set(
            &mut row,
            "aurc-ba",
            stats.selective_ba_curve().map(|c| c.trapezoid_area() * 1000.0),
        );
        set(
            &mut row,
            "augrc-ba",
            stats.generalized_ba_curve().map(|c| c.trapezoid_area() * 1000.0),
        );
        let curve = stats.selective_curve();
        Box::new(move |cov| curve.min_risk_at_coverage(cov))
    };
    set(&mut row, "b-aurc", stats.b_aurc());
    for pct in RISK_COVERAGES {
        set(
            &mut row,
            &format!("risk@{pct}cov"),
            risk_at(f64::from(pct) / 100.0).map(|r| r * 100.0),
        );
    }

    let binarize = if cfg.compat == Compat::Corrected {
        Binarize::Correct
    } else {
        Binarize::LegacyLabelBinarize
    };
    let bins = calibration::reliability_bins(&corr, &conf, cfg.n_bins, binarize);
    set(&mut row, "mce", bins.as_deref().and_then(calibration::mce));
    set(&mut row, "ece", bins.as_deref().map(calibration::ece));
    // FD-Shifts evaluates both logarithms for every row (`c·ln(p) + (1 − c)·ln(1 − p)`), so one
    // confidence outside [0, 1] makes fail-NLL undefined even where its factor is 0.
    let terms: Vec<f64> = conf
        .iter()
        .zip(&corr)
        .map(|(p, &c)| {
            let (hit, miss) = (super::numpy::ln(p + 1e-7), super::numpy::ln(1.0 - p + 1e-7));
            if hit.is_nan() || miss.is_nan() {
                f64::NAN
            } else if c {
                hit
            } else {
                miss
            }
        })
        .collect();
    let fail_nll = -super::numpy::mean(&terms);
    set(&mut row, "fail-NLL", Some(fail_nll));
    if cfg.bootstrap > 0 {
        add_bootstrap_cis(&mut row, &conf, &corr, cfg);
    }
    row
}

/// The AURC-type metrics that get bootstrap intervals under `compat`.
fn ci_metrics(compat: Compat) -> &'static [&'static str] {
    if compat.legacy() {
        &["aurc"]
    } else {
        &["aurc", "augrc"]
    }
}

/// Seeded percentile-bootstrap 95 % intervals: `<metric>_ci95_low` / `<metric>_ci95_high`.
fn add_bootstrap_cis(row: &mut MetricRow, conf: &[f64], corr: &[bool], cfg: &EvalConfig) {
    for &metric in ci_metrics(cfg.compat) {
        let ci = bootstrap::bootstrap_ci(conf.len(), cfg.bootstrap, 0.05, cfg.seed, |idx| {
            let c: Vec<f64> = idx.iter().map(|&i| conf[i]).collect();
            let k: Vec<bool> = idx.iter().map(|&i| corr[i]).collect();
            let s = RiskCoverageStats::new(&c, &k, None, cfg.ties);
            Some(match metric {
                "aurc" if cfg.compat.legacy() => s.aurc_legacy(),
                "aurc" => s.aurc(),
                _ => s.augrc(),
            })
        });
        set(row, &format!("{metric}_ci95_low"), ci.map(|i| i.low));
        set(row, &format!("{metric}_ci95_high"), ci.map(|i| i.high));
    }
}

/// The metric names [`confid_metrics`] reports under `cfg`, in order.
pub fn metric_names(cfg: &EvalConfig) -> Vec<String> {
    let compat = cfg.compat;
    let mut names: Vec<String> = ["failauc", "failap_suc", "failap_err", "fpr@95tpr", "aurc", "e-aurc"]
        .map(String::from)
        .to_vec();
    if !compat.legacy() {
        names.extend(["augrc", "e-augrc", "aurc-ba", "augrc-ba"].map(String::from));
    }
    names.push("b-aurc".into());
    names.extend(RISK_COVERAGES.iter().map(|p| format!("risk@{p}cov")));
    names.extend(["mce", "ece", "fail-NLL"].map(String::from));
    if cfg.bootstrap > 0 {
        for m in ci_metrics(compat) {
            names.push(format!("{m}_ci95_low"));
            names.push(format!("{m}_ci95_high"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn performance_metrics_by_hand() {
        // Three rows, two classes.
        let probs = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4];
        let m = Matrix::new(&probs, 2);
        let labels = [0, 1, 1];
        let correct = correctness(&m, &labels);
        assert_eq!(correct, vec![true, true, false]);
        let row = performance_metrics(&m, &labels, &correct, false);
        assert_eq!(row["accuracy"], Some(2.0 / 3.0));
        assert_eq!(row["b-accuracy"], Some((1.0 + 0.5) / 2.0));
        let nll = (-(0.9f64 + 1e-7).ln() - (0.8f64 + 1e-7).ln() - (0.4f64 + 1e-7).ln()) / 6.0;
        assert!((row["nll"].unwrap() - nll).abs() < 1e-15);
        let brier = (0.01 + 0.01 + 0.04 + 0.04 + 0.36 + 0.36) / 3.0;
        assert!((row["brier_score"].unwrap() - brier).abs() < 1e-15);
        let open = performance_metrics(&m, &labels, &correct, true);
        assert_eq!(open["nll"], None);
        assert_eq!(open["brier_score"], None);
    }

    #[test]
    fn fail_nll_matches_fd_shifts_test_vectors() {
        let crate::analysis::test_vectors::Vectors {
            some_correct,
            all,
            some,
            med,
            unnorm,
            ..
        } = crate::analysis::test_vectors::vectors();
        let labels = vec![0; 100];
        let legacy = EvalConfig {
            compat: Compat::FdShifts011,
            ..EvalConfig::default()
        };
        let cases = [
            (&some_correct, &all, 8.059047775479163),
            (&some_correct, &some, 0.0),
            (&some_correct, &med, 1.5980483303376622),
        ];
        for (correct, confids, expected) in cases {
            let row = confid_metrics(confids, correct, &labels, &legacy);
            assert!(
                (row["fail-NLL"].unwrap() - expected).abs() < 1e-7,
                "{:?}",
                row["fail-NLL"]
            );
        }
        let all_correct = [true; 100];
        let row = confid_metrics(&med, &all_correct, &labels, &legacy);
        assert!((row["fail-NLL"].unwrap() - 2.4039531178855778).abs() < 1e-7);
        // Unnormalised confidences make fail-NLL undefined.
        assert_eq!(
            confid_metrics(&unnorm, &some_correct, &labels, &legacy)["fail-NLL"],
            None
        );
    }

    #[test]
    fn nan_confidences_are_dropped_and_all_nan_gives_nothing() {
        let correct = [true, false, true, false];
        let labels = [0, 0, 1, 1];
        let cfg = EvalConfig::default();
        let with_nan = confid_metrics(&[0.9, 0.1, f64::NAN, 0.2], &correct, &labels, &cfg);
        let without = confid_metrics(&[0.9, 0.1, 0.2], &[true, false, false], &[0, 0, 1], &cfg);
        assert_eq!(with_nan, without);
        let none = confid_metrics(&[f64::NAN; 4], &correct, &labels, &cfg);
        assert!(none.values().all(Option::is_none));
        assert_eq!(none.len(), metric_names(&cfg).len());
    }

    #[test]
    fn bootstrap_intervals_bracket_the_estimate_and_are_seeded() {
        let correct: Vec<bool> = (0..200).map(|i| i % 5 != 0).collect();
        let conf: Vec<f64> = (0..200).map(|i| f64::from((i * 37) % 200) / 200.0).collect();
        let labels = vec![0; 200];
        let cfg = EvalConfig {
            bootstrap: 300,
            seed: 3,
            ..EvalConfig::default()
        };
        let row = confid_metrics(&conf, &correct, &labels, &cfg);
        assert_eq!(row.keys().cloned().collect::<Vec<_>>(), metric_names(&cfg));
        for m in ["aurc", "augrc"] {
            let (lo, est, hi) = (
                row[&format!("{m}_ci95_low")].unwrap(),
                row[m].unwrap(),
                row[&format!("{m}_ci95_high")].unwrap(),
            );
            assert!(lo < est && est < hi, "{m}: {lo} {est} {hi}");
        }
        assert_eq!(
            row,
            confid_metrics(&conf, &correct, &labels, &cfg),
            "same seed, same intervals"
        );
        let other = confid_metrics(&conf, &correct, &labels, &EvalConfig { seed: 4, ..cfg });
        assert_ne!(row["aurc_ci95_low"], other["aurc_ci95_low"]);
    }

    #[test]
    fn names_and_scales() {
        let correct: Vec<bool> = (0..100).map(|i| i >= 10).collect();
        let labels = vec![0; 100];
        let conf: Vec<f64> = (0..100).map(f64::from).collect();
        let row = confid_metrics(&conf, &correct, &labels, &EvalConfig::default());
        assert_eq!(
            row.keys().cloned().collect::<Vec<_>>(),
            metric_names(&EvalConfig::default())
        );
        assert_eq!(row["risk@100cov"], Some(10.0));
        assert_eq!(row["risk@90cov"], Some(0.0));
        assert!((row["augrc"].unwrap() - 5.0).abs() < 1e-9);
        assert!((row["e-augrc"].unwrap()).abs() < 1e-9, "perfect ranking: no excess");
        let legacy = confid_metrics(
            &conf,
            &correct,
            &labels,
            &EvalConfig {
                compat: Compat::FdShifts011,
                ..EvalConfig::default()
            },
        );
        assert!(!legacy.contains_key("augrc"));
    }
}
