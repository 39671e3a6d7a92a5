//! A benchmark's numbers: per test set and CSF, AURC and AUGRC over seeds (mean ± sd) with paired
//! bootstrap CIs over the test rows, the ranking with its uncertainty and significance, and SGR's
//! working point fitted on validation and checked on the test set.

use failscope_shared::analysis::bootstrap::{for_each_resample, percentile, Interval};
use failscope_shared::analysis::ranking::{self, Better};
use failscope_shared::analysis::rc::{RiskCoverageStats, TieOrder};
use failscope_shared::analysis::sgr;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One seed's rows of one test set (or of validation): each model's correctness and each
/// column's confidence, rows in the same order for every seed.
#[derive(Debug, Clone)]
pub struct SeedRows {
    /// `correct[m][i]`: model `m` classified row `i` correctly.
    pub correct: Vec<Vec<bool>>,
    /// `confids[c][i]`: column `c`'s confidence of row `i`.
    pub confids: Vec<Vec<f64>>,
}

/// What a benchmark's numbers are computed from.
#[derive(Debug, Clone)]
pub struct BenchData {
    /// The recipe's name.
    pub recipe: String,
    /// The recipe's data source (its licence and citation go into the report).
    pub source: String,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// The stored studies read, seed by seed, model by model.
    pub studies: Vec<i64>,
    /// The models (FD-Shifts methods), e.g. `confidnet`, `deepgamblers`.
    pub methods: Vec<String>,
    /// The columns ranked: a model's CSF, `(model index, CSF name)`.
    pub columns: Vec<(usize, String)>,
    /// The class names.
    pub classes: Vec<String>,
    /// Each seed's validation rows.
    pub val: Vec<SeedRows>,
    /// Each test set: its name, its labels, and each seed's rows.
    pub sets: Vec<(String, Vec<i64>, Vec<SeedRows>)>,
}

/// The settings of the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Bootstrap resamples.
    pub n_boot: usize,
    /// Seed of the bootstrap's generator.
    pub boot_seed: u64,
    /// Two-sided level of the CIs and family-wise level of the pairwise tests.
    pub alpha: f64,
    /// SGR's target risk r*.
    pub r_star: f64,
    /// SGR's confidence δ.
    pub delta: f64,
    /// The fixed coverage of the second working point (risk at this coverage on validation).
    pub coverage: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            n_boot: 500,
            boot_seed: 0,
            alpha: 0.05,
            r_star: 0.25,
            delta: 0.05,
            coverage: 0.9,
        }
    }
}

/// Which kind of shift a test set is, from its name (`failscope run`'s sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Iid,
    Acquisition,
    Manifestation,
    Corruption,
    Other,
}

impl Family {
    /// The family of an FD-Shifts study name such as `in_class_study_corruption_blur_3`.
    pub fn of(name: &str) -> Self {
        let bare = name.strip_prefix("in_class_study_").unwrap_or(name);
        if name == "iid_study" {
            Family::Iid
        } else if bare.starts_with("acquisition_") {
            Family::Acquisition
        } else if bare.starts_with("manifestation_") {
            Family::Manifestation
        } else if bare.starts_with("corruption_") {
            Family::Corruption
        } else {
            Family::Other
        }
    }

    /// In words, for findings.
    pub fn words(self) -> &'static str {
        match self {
            Family::Iid => "i.i.d.",
            Family::Acquisition => "acquisition",
            Family::Manifestation => "manifestation",
            Family::Corruption => "corruption",
            Family::Other => "other",
        }
    }
}

/// A metric over seeds with its bootstrap CI (of the seeds' mean).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub sd: f64,
    pub ci: Option<Interval>,
}

/// A working point checked on a test set, over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkingPoint {
    /// Mean test risk (selective) over seeds.
    pub risk: f64,
    /// Mean test coverage over seeds.
    pub coverage: f64,
    /// Seeds on which the test risk exceeded the target (SGR: r*; fixed coverage: the validation
    /// risk at that coverage).
    pub violated: usize,
}

/// One column on one test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnResult {
    /// `model/csf`.
    pub column: String,
    pub aurc: Spread,
    pub augrc: Spread,
    /// Mean rank over the bootstrap resamples (by AURC), and how often it ranked first.
    pub mean_rank: f64,
    pub first_share: f64,
    /// SGR fitted on validation for r* with confidence δ; `None` where it could not be fitted.
    pub sgr: Option<WorkingPoint>,
    /// The threshold keeping the wanted coverage of validation.
    pub at_coverage: Option<WorkingPoint>,
}

/// One test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetResult {
    pub name: String,
    pub family: Family,
    pub n: usize,
    /// Each model's accuracy, mean ± sd over seeds.
    pub accuracy: Vec<(f64, f64)>,
    /// Rows per class.
    pub label_mix: Vec<usize>,
    pub columns: Vec<ColumnResult>,
    /// The column with the lowest mean AURC.
    pub first: usize,
    /// Columns the first one beats (Holm-adjusted bootstrap test at `alpha`).
    pub first_beats: Vec<usize>,
    /// `p[a][b]`, Holm-adjusted: "column a has a lower AURC than column b" (NaN on the diagonal,
    /// `null` in JSON).
    #[serde(deserialize_with = "nan_for_null")]
    pub adjusted_p: Vec<Vec<f64>>,
    /// Kendall's τ-b between the AURC and the AUGRC rankings (mean over seeds).
    pub tau_aurc_augrc: Option<f64>,
    /// The risk–coverage curves `(coverage, selective risk)` of the three columns with the lowest
    /// mean AURC, on the first seed, thinned to at most 120 points each.
    pub curves: Vec<(usize, Vec<(f64, f64)>)>,
}

/// A benchmark's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub recipe: String,
    /// The recipe's data source.
    pub source: String,
    pub seeds: Vec<u64>,
    pub methods: Vec<String>,
    pub columns: Vec<String>,
    pub classes: Vec<String>,
    /// Each model's accuracy on validation (the split SGR and the working points are fitted on,
    /// and the models were selected on), mean ± sd over seeds.
    pub val_accuracy: Vec<(f64, f64)>,
    pub settings: Settings,
    pub sets: Vec<SetResult>,
}

/// Reads back a matrix that JSON wrote with `null` for NaN.
fn nan_for_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
    let m: Vec<Vec<Option<f64>>> = Deserialize::deserialize(d)?;
    Ok(m.into_iter()
        .map(|row| row.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .collect())
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// AURC and AUGRC (× 1000, FD-Shifts' scale) of `rows` (all when `None`); NaN confidences are
/// dropped, as FD-Shifts does.
fn areas(confids: &[f64], correct: &[bool], rows: Option<&[usize]>) -> (f64, f64) {
    let (c, ok): (Vec<f64>, Vec<bool>) = match rows {
        Some(rows) => rows
            .iter()
            .map(|&i| (confids[i], correct[i]))
            .filter(|(c, _)| !c.is_nan())
            .unzip(),
        None => confids
            .iter()
            .copied()
            .zip(correct.iter().copied())
            .filter(|(c, _)| !c.is_nan())
            .unzip(),
    };
    if c.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let stats = RiskCoverageStats::new(&c, &ok, None, TieOrder::default());
    (stats.aurc(), stats.augrc())
}

/// The threshold keeping `coverage` of `confids` (the rows strictly above it are kept).
fn threshold_at_coverage(confids: &[f64], coverage: f64) -> Option<f64> {
    let mut v: Vec<f64> = confids.iter().copied().filter(|c| !c.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let drop = ((1.0 - coverage) * v.len() as f64).round() as usize;
    // Keep the rows above the `drop`-th smallest; nothing dropped: below the smallest.
    Some(if drop == 0 { f64::NEG_INFINITY } else { v[drop - 1] })
}

fn working_point(points: &[(f64, f64, bool)]) -> Option<WorkingPoint> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f64;
    Some(WorkingPoint {
        risk: points.iter().map(|p| p.0).sum::<f64>() / n,
        coverage: points.iter().map(|p| p.1).sum::<f64>() / n,
        violated: points.iter().filter(|p| p.2).count(),
    })
}

/// Each model's accuracy on `seeds`' rows, mean ± sd over seeds.
fn accuracy(models: usize, seeds: &[SeedRows]) -> Vec<(f64, f64)> {
    (0..models)
        .map(|m| {
            let per_seed: Vec<f64> = seeds
                .iter()
                .map(|s| s.correct[m].iter().filter(|&&ok| ok).count() as f64 / s.correct[m].len().max(1) as f64)
                .collect();
            mean_sd(&per_seed)
        })
        .collect()
}

/// Every test set's results. `progress` gets the fraction of test sets done after each one.
pub fn aggregate(data: &BenchData, settings: &Settings, progress: &(dyn Fn(f64) + Sync)) -> BenchResult {
    let done = AtomicUsize::new(0);
    let total = data.sets.len().max(1) as f64;
    let sets = data
        .sets
        .par_iter()
        .map(|(name, labels, seeds)| {
            let set = set_result(data, settings, name, labels, seeds);
            progress((done.fetch_add(1, Ordering::Relaxed) + 1) as f64 / total);
            set
        })
        .collect();
    BenchResult {
        recipe: data.recipe.clone(),
        source: data.source.clone(),
        seeds: data.seeds.clone(),
        methods: data.methods.clone(),
        columns: data
            .columns
            .iter()
            .map(|(m, c)| format!("{}/{c}", data.methods[*m]))
            .collect(),
        classes: data.classes.clone(),
        val_accuracy: accuracy(data.methods.len(), &data.val),
        settings: *settings,
        sets,
    }
}

fn set_result(data: &BenchData, st: &Settings, name: &str, labels: &[i64], seeds: &[SeedRows]) -> SetResult {
    let n = labels.len();
    let cols = data.columns.len();
    // Per column, per seed: the areas on all rows.
    let full: Vec<Vec<(f64, f64)>> = (0..cols)
        .map(|c| {
            let m = data.columns[c].0;
            seeds
                .iter()
                .map(|s| areas(&s.confids[c], &s.correct[m], None))
                .collect()
        })
        .collect();
    // Paired bootstrap over rows: the seeds' mean of each column's areas on the same rows.
    let (mut boot_aurc, mut boot_augrc) = (Vec::with_capacity(st.n_boot), Vec::with_capacity(st.n_boot));
    for_each_resample(n, st.n_boot, st.boot_seed, |rows| {
        let (mut a, mut g) = (Vec::with_capacity(cols), Vec::with_capacity(cols));
        for (c, (m, _)) in data.columns.iter().enumerate() {
            let per_seed: Vec<(f64, f64)> = seeds
                .iter()
                .map(|s| areas(&s.confids[c], &s.correct[*m], Some(rows)))
                .collect();
            a.push(per_seed.iter().map(|p| p.0).sum::<f64>() / per_seed.len() as f64);
            g.push(per_seed.iter().map(|p| p.1).sum::<f64>() / per_seed.len() as f64);
        }
        boot_aurc.push(a);
        boot_augrc.push(g);
    });
    let ci = |boot: &[Vec<f64>], c: usize| -> Option<Interval> {
        let mut v: Vec<f64> = boot.iter().map(|b| b[c]).filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Interval {
            low: percentile(&v, st.alpha / 2.0),
            high: percentile(&v, 1.0 - st.alpha / 2.0),
        })
    };
    let ranks = ranking::rank_distribution(&boot_aurc, Better::Lower);
    let significance = ranking::pairwise_significance(&boot_aurc, Better::Lower);
    let total = boot_aurc.len().max(1) as f64;
    let columns: Vec<ColumnResult> = (0..cols)
        .map(|c| {
            let m = data.columns[c].0;
            let aurc: Vec<f64> = full[c].iter().map(|p| p.0).collect();
            let augrc: Vec<f64> = full[c].iter().map(|p| p.1).collect();
            let (a_mean, a_sd) = mean_sd(&aurc);
            let (g_mean, g_sd) = mean_sd(&augrc);
            let mut sgr_points = Vec::new();
            let mut cov_points = Vec::new();
            for (s, val) in seeds.iter().zip(&data.val) {
                let (vc, vok): (Vec<f64>, Vec<bool>) = val.confids[c]
                    .iter()
                    .copied()
                    .zip(val.correct[m].iter().copied())
                    .filter(|(x, _)| !x.is_nan())
                    .unzip();
                if let Some(t) = sgr::fit(&vc, &vok, st.r_star, st.delta, TieOrder::default()) {
                    let (risk, cov) = sgr::apply(t.theta, &s.confids[c], &s.correct[m]);
                    sgr_points.push((risk, cov, risk > st.r_star));
                }
                if let Some(theta) = threshold_at_coverage(&vc, st.coverage) {
                    let (val_risk, _) = sgr::apply(theta, &vc, &vok);
                    let (risk, cov) = sgr::apply(theta, &s.confids[c], &s.correct[m]);
                    cov_points.push((risk, cov, risk > val_risk));
                }
            }
            ColumnResult {
                column: format!("{}/{}", data.methods[m], data.columns[c].1),
                aurc: Spread {
                    mean: a_mean,
                    sd: a_sd,
                    ci: ci(&boot_aurc, c),
                },
                augrc: Spread {
                    mean: g_mean,
                    sd: g_sd,
                    ci: ci(&boot_augrc, c),
                },
                mean_rank: ranks.mean_rank[c],
                first_share: f64::from(ranks.counts[c].first().copied().unwrap_or(0)) / total,
                sgr: working_point(&sgr_points),
                at_coverage: working_point(&cov_points),
            }
        })
        .collect();
    let first = (0..cols)
        .min_by(|&a, &b| columns[a].aurc.mean.total_cmp(&columns[b].aurc.mean).then(a.cmp(&b)))
        .unwrap_or(0);
    let first_beats = (0..cols).filter(|&b| significance.beats(first, b, st.alpha)).collect();
    let aurc_means: Vec<f64> = columns.iter().map(|c| c.aurc.mean).collect();
    let augrc_means: Vec<f64> = columns.iter().map(|c| c.augrc.mean).collect();
    let accuracy = accuracy(data.methods.len(), seeds);
    let mut label_mix = vec![0usize; data.classes.len()];
    for &l in labels {
        if let Some(slot) = usize::try_from(l).ok().and_then(|l| label_mix.get_mut(l)) {
            *slot += 1;
        }
    }
    let mut by_aurc: Vec<usize> = (0..cols).collect();
    by_aurc.sort_by(|&a, &b| columns[a].aurc.mean.total_cmp(&columns[b].aurc.mean).then(a.cmp(&b)));
    let curves = by_aurc
        .iter()
        .take(3)
        .filter_map(|&c| {
            let s = seeds.first()?;
            let (conf, ok): (Vec<f64>, Vec<bool>) = s.confids[c]
                .iter()
                .copied()
                .zip(s.correct[data.columns[c].0].iter().copied())
                .filter(|(x, _)| !x.is_nan())
                .unzip();
            (!conf.is_empty()).then(|| {
                let stats = RiskCoverageStats::new(&conf, &ok, None, TieOrder::default());
                (c, RiskCoverageStats::plot_points(&stats.selective_curve(), 120))
            })
        })
        .collect();
    SetResult {
        name: name.to_string(),
        family: Family::of(name),
        n,
        accuracy,
        label_mix,
        columns,
        first,
        first_beats,
        adjusted_p: significance.adjusted,
        tau_aurc_augrc: ranking::kendall_tau_b(&aurc_means, &augrc_means),
        curves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two seeds, one model, two columns: column 0 ranks every failure lowest, column 1 is noise.
    fn data() -> BenchData {
        let n = 200;
        let correct: Vec<bool> = (0..n).map(|i| i % 4 != 0).collect();
        let good: Vec<f64> = (0..n)
            .map(|i| {
                if correct[i] {
                    0.5 + (i % 7) as f64 / 20.0
                } else {
                    0.1 + (i % 5) as f64 / 50.0
                }
            })
            .collect();
        let noise: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64 / 101.0).collect();
        let rows = SeedRows {
            correct: vec![correct.clone()],
            confids: vec![good, noise],
        };
        BenchData {
            recipe: "toy".into(),
            source: "toy.csv".into(),
            seeds: vec![0, 1],
            studies: vec![1, 2],
            methods: vec!["cnn".into()],
            columns: vec![(0, "good".into()), (0, "noise".into())],
            classes: vec!["a".into(), "b".into()],
            val: vec![rows.clone(), rows.clone()],
            sets: vec![
                ("iid_study".into(), vec![0; n], vec![rows.clone(), rows.clone()]),
                (
                    "in_class_study_corruption_blur_3".into(),
                    (0..n as i64).map(|i| i % 2).collect(),
                    vec![rows.clone(), rows],
                ),
            ],
        }
    }

    #[test]
    fn a_perfect_csf_ranks_first_significantly_and_its_guarantee_holds() {
        let settings = Settings {
            n_boot: 200,
            ..Settings::default()
        };
        let r = aggregate(&data(), &settings, &|_| ());
        assert_eq!(r.columns, ["cnn/good", "cnn/noise"]);
        let iid = &r.sets[0];
        assert_eq!((iid.family, r.sets[1].family), (Family::Iid, Family::Corruption));
        assert_eq!(iid.label_mix, [200, 0]);
        assert_eq!(r.sets[1].label_mix, [100, 100]);
        assert_eq!(iid.accuracy, vec![(0.75, 0.0)]);
        // Every failure below every success, the same on both seeds: the AURC of all rows, sd 0,
        // less than half the noise column's.
        let good = &iid.columns[0];
        let rows = &data().sets[0].2[0];
        assert_eq!(good.aurc.mean, areas(&rows.confids[0], &rows.correct[0], None).0);
        assert_eq!(good.aurc.sd, 0.0);
        assert!(good.aurc.mean < iid.columns[1].aurc.mean / 2.0);
        let ci = good.aurc.ci.unwrap();
        assert!(
            ci.low <= good.aurc.mean + 1e-9 && good.aurc.mean <= ci.high + 20.0,
            "{ci:?}"
        );
        assert_eq!((iid.first, iid.first_beats.clone()), (0, vec![1]));
        assert_eq!(good.first_share, 1.0);
        assert!(iid.adjusted_p[0][1] < 0.05 && iid.adjusted_p[1][0] > 0.5);
        // SGR's bound holds on the rows it was fitted on: the risk stays below r*, far below the
        // 25 % error rate of all rows, at a coverage above the 75 % of successes alone.
        let sgr = good.sgr.unwrap();
        assert!(sgr.risk <= 0.25 && sgr.violated == 0, "{sgr:?}");
        assert!(sgr.coverage > 0.75, "{sgr:?}");
        // The noise column cannot get its bound under r* at any useful coverage, or breaks it.
        let noisy = iid.columns[1].sgr.unwrap();
        assert!(noisy.coverage < sgr.coverage, "{noisy:?}");
        // 90 % of validation kept: test = validation here, so the risk equals validation's.
        assert_eq!(good.at_coverage.unwrap().violated, 0);
        assert!((good.at_coverage.unwrap().coverage - 0.9).abs() < 0.01);
        assert_eq!(iid.tau_aurc_augrc, Some(1.0));
    }

    #[test]
    fn the_summary_shows_each_corruption_at_its_worst_severity_and_replaces_only_its_block() {
        use crate::bench::markdown::{findings, replace_block, summary};
        let mut d = data();
        let mut worse = d.sets[1].clone();
        worse.0 = "in_class_study_corruption_blur_5".into();
        d.sets.push(worse);
        let r = aggregate(
            &d,
            &Settings {
                n_boot: 50,
                ..Settings::default()
            },
            &|_| (),
        );
        let block = summary(&r, &findings(&r));
        let rows: Vec<&str> = block
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| test set"))
            .collect();
        assert_eq!(rows.len(), 2, "{block}");
        assert!(
            rows[0].starts_with("| iid_study | 200 | 0.75 ± 0.00 | `cnn/good` |"),
            "{}",
            rows[0]
        );
        assert!(rows[0].ends_with("| yes (p < 0.05) | — | 0 of 4 |"), "{}", rows[0]);
        assert!(rows[1].starts_with("| corruption_blur_5 | 200 |"), "{}", rows[1]);
        assert!(block.starts_with("<!-- bench:toy -->\n") && block.ends_with("<!-- /bench:toy -->\n"));
        let doc = "# Title\n\n<!-- bench:toy -->\nold\n<!-- /bench:toy -->\n\nAfter.\n";
        assert_eq!(
            replace_block(doc, "toy", &block).unwrap(),
            format!("# Title\n\n{block}\nAfter.\n")
        );
        assert_eq!(replace_block(doc, "other", &block), None);
        assert_eq!(
            replace_block("<!-- /bench:toy --> <!-- bench:toy -->", "toy", &block),
            None
        );
    }

    #[test]
    fn families_from_names() {
        assert_eq!(
            Family::of("in_class_study_acquisition_vienna_dias"),
            Family::Acquisition
        );
        assert_eq!(
            Family::of("in_class_study_manifestation_bkl+akiec"),
            Family::Manifestation
        );
        assert_eq!(Family::of("noise_study_3"), Family::Other);
        assert_eq!(threshold_at_coverage(&[1.0, 2.0, 3.0, 4.0], 0.75), Some(1.0));
        assert_eq!(threshold_at_coverage(&[1.0, 2.0], 1.0), Some(f64::NEG_INFINITY));
    }
}
