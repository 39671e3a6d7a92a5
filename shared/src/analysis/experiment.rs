//! A whole FD-Shifts experiment evaluated in memory (`fd_shifts.analysis.Analysis`): the CSF list
//! FD-Shifts builds, every study, normalisations fitted once on `val_tuning`, and the metrics of each
//! (study, CSF) — plus every CSF's score for every row, from the same fit ([`Evaluation`]).
//!
//! The loop follows FD-Shifts' own, quirks included, because its numbers depend on them: the
//! external CSF is renamed to `eval.ext_confid_name` after its first study (and from then on is
//! resolved by that name), a name listed twice is computed twice and the later normalisation wins,
//! and the SGR threshold of each CSF is fitted on `val_tuning`. The server's loader fills
//! [`Experiment`] from disk; nothing here touches files.

use indexmap::IndexMap;

use super::csf::{self, Matrix, McSamples};
use super::features::FeatureSet;
use super::metrics::{self, Compat, EvalConfig, MetricRow};
use super::scoring::{self, McOutputs, Normalisation, Outputs, Source, Version, FEATURE_CSFS, MAHA_SECONDARY};
use super::sgr;
use super::studies::{self, OpenSet, StudyRows};

/// Study → CSF → metrics, in FD-Shifts' order.
pub type Report = IndexMap<String, IndexMap<String, MetricRow>>;

/// The arrays of one experiment, rows aligned. Matrices are row-major; MC arrays use FD-Shifts'
/// `(n, c, m)` layout, at the precision they were stored in.
#[derive(Debug, Clone, Default)]
pub struct Experiment {
    /// Number of classes `c`.
    pub num_classes: usize,
    /// `(n, c)` softmax (`scipy.special.softmax` of the logits when logits were stored).
    pub softmax: Vec<f64>,
    /// `(n, c)` logits, when the experiment stored them (`raw_logits.npz`).
    pub logits: Option<Vec<f64>>,
    /// Integer class labels (any integer in new-class sets).
    pub labels: Vec<i64>,
    /// FD-Shifts' test-loader index of each row.
    pub dataset_idx: Vec<i64>,
    /// `(n, c, m)` MC-dropout softmax (`raw_output_dist.npz`).
    pub mcd_softmax: Option<Vec<f64>>,
    /// `(n, c, m)` MC-dropout logits (`raw_logits_dist.npz`), as stored.
    pub mcd_logits: Option<Vec<f64>>,
    /// Number of MC passes `m`.
    pub mc_samples: usize,
    /// `(n,)` external confidences.
    pub external: Option<Vec<f64>>,
    /// `(n, m_ext)` external confidences per MC pass, as stored.
    pub external_dist: Option<Vec<f64>>,
    /// `m_ext`.
    pub external_samples: usize,
    /// Features, training features and last layer (HEAD's feature CSFs), when all three are there.
    pub features: Option<FeatureSet>,
}

/// What to evaluate (the fields of FD-Shifts' config that the analysis reads).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `eval.query_studies.iid_study`: the dataset name of the i.i.d. test set.
    pub iid_study: Option<String>,
    /// `noise_study` dataset names.
    pub noise_study: Vec<String>,
    /// `in_class_study` dataset names.
    pub in_class_study: Vec<String>,
    /// `new_class_study` dataset names.
    pub new_class_study: Vec<String>,
    /// `trainer.fast_dev_run`: every noise level is the whole noise set.
    pub fast_dev_run: bool,
    /// `eval.confidence_measures.test`.
    pub csfs: Vec<String>,
    /// `eval.ext_confid_name` (e.g. `dg`, `tcp`, `devries`): the name `ext` is reported under.
    pub ext_confid_name: Option<String>,
    /// `eval.r_star`: the target risk of the SGR threshold (`test_risk`).
    pub r_star: f64,
    /// `eval.r_delta`: its confidence.
    pub r_delta: f64,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            iid_study: None,
            noise_study: Vec::new(),
            in_class_study: Vec::new(),
            new_class_study: Vec::new(),
            fast_dev_run: false,
            csfs: Vec::new(),
            ext_confid_name: None,
            r_star: 0.25,
            r_delta: 0.05,
        }
    }
}

/// Why an experiment cannot be evaluated. The server adds the file names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExperimentError {
    /// A CSF name FD-Shifts does not know.
    #[error("unknown confidence scoring function '{0}' in eval.confidence_measures.test")]
    UnknownCsf(String),
    /// A name FD-Shifts knows but cannot compute from these outputs.
    #[error("'{0}' cannot be computed from this experiment's outputs (FD-Shifts stops on it too)")]
    UnsupportedCsf(String),
    /// `val_tuning` (dataset_idx 0) has no rows: Platt scaling cannot be fitted.
    #[error("no val_tuning rows (dataset_idx 0): FD-Shifts needs them to fit Platt scaling")]
    NoValTuning,
    /// A configured test set has no rows.
    #[error("study '{study}' is empty: no row has dataset_idx {idx}")]
    EmptyStudy {
        /// Study name.
        study: String,
        /// The dataset_idx the study selects.
        idx: i64,
    },
    /// A noise set whose size is not `15 corruptions × 5 levels × k`.
    #[error("noise set '{set}' has {rows} rows, not a multiple of 75 (15 corruptions × 5 severities)")]
    NoiseSize {
        /// Dataset name.
        set: String,
        /// Its number of rows.
        rows: usize,
    },
    /// An MC-dropout CSF without MC outputs.
    #[error("'{0}' needs MC-dropout outputs (raw_output_dist.npz or raw_logits_dist.npz)")]
    MissingMc(String),
    /// An external CSF without `external_confids.npz`.
    #[error("'{0}' needs external_confids.npz")]
    MissingExternal(String),
    /// `ext_mcd` / `ext_waic` without `external_confids_dist.npz`.
    #[error("'{0}' needs external_confids_dist.npz")]
    MissingExternalDist(String),
    /// A logit-based CSF without stored logits.
    #[error("'{0}' needs logits: raw_logits.npz (or raw_logits_dist.npz for MC-dropout)")]
    MissingLogits(String),
    /// A feature-based CSF without features.
    #[error("'{0}' needs encoded_output.npz, train_features.npz and last_layer.npz")]
    MissingFeatures(String),
    /// The feature CSFs failed.
    #[error("feature-based CSFs: {0}")]
    Features(#[from] super::features::FeatureError),
    /// Platt scaling impossible for a CSF.
    #[error("cannot fit Platt scaling for '{0}': all val_tuning confidences are NaN")]
    PlattAllNan(String),
}

/// An evaluated experiment: the report, and every CSF's confidence for every row from the same
/// fitted normalisations (higher = more confident; NaN where the model gave none). The scores
/// are what the latent view colours by and the inspector lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Study → CSF → metrics.
    pub report: Report,
    /// CSF → one confidence per row of the experiment, in row order.
    pub scores: IndexMap<String, Vec<f64>>,
    /// The normalisation each CSF got on `val_tuning` (Platt parameters, temperature, quantile).
    pub fitted: IndexMap<String, Normalisation>,
    /// What was left out and why (e.g. feature-based CSFs whose inputs do not allow them).
    pub warnings: Vec<String>,
}

/// One CSF's confidences on one study, with what they are judged by.
struct Scored {
    confids: Vec<f64>,
    source: Source,
}

/// A study's rows with FD-Shifts' overrides (new-class rows: label −99, failure; original mode:
/// every i.i.d. row correct).
struct StudyView {
    det: Judged,
    mcd: Option<Judged>,
}

struct Judged {
    rows: Vec<usize>,
    labels: Vec<i64>,
    correct: Vec<bool>,
    probs: Vec<f64>,
}

impl Judged {
    fn new(
        rows: &[usize],
        probs: &[f64],
        c: usize,
        labels: &[i64],
        correct: &[bool],
        idx: &[i64],
        open: Option<OpenSet>,
    ) -> Self {
        let (correct, labels) = rows
            .iter()
            .map(|&r| match open {
                Some(o) if idx[r] == o.ood_idx => (false, -99),
                Some(o) => (correct[r] || o.original, labels[r]),
                None => (correct[r], labels[r]),
            })
            .unzip();
        Self {
            rows: rows.to_vec(),
            labels,
            correct,
            probs: rows
                .iter()
                .flat_map(|&r| probs[r * c..(r + 1) * c].iter().copied())
                .collect(),
        }
    }
}

/// The CSF list FD-Shifts builds (`Analysis.__init__`), and the secondary (combined) CSFs.
fn query_list(exp: &Experiment, out: &Outputs<'_>, plan: &Plan, compat: Compat) -> (Vec<String>, Vec<String>) {
    let version = Version::of(compat);
    let mut names = plan.csfs.clone();
    if exp.external.is_none() {
        names.retain(|n| !n.contains("ext"));
    }
    if out.mc.is_none() {
        names.retain(|n| !n.contains("mcd") && !n.contains("waic"));
    }
    let mut secondary = Vec::new();
    if names.iter().any(|n| n == "ext") && plan.ext_confid_name.as_deref() == Some("maha") {
        names.push("ext_qt".into());
        secondary = MAHA_SECONDARY.map(String::from).to_vec();
        names.extend(secondary.iter().cloned());
    }
    if exp.logits.is_some() {
        names.push("det_mls".into());
        if version == Version::Head {
            names.extend(["temp_mls", "energy_mls"].map(String::from));
        }
    }
    if version == Version::Head && out.features.is_some() {
        names.extend(FEATURE_CSFS.map(String::from));
    }
    if out.mc.as_ref().is_some_and(|m| m.logits.is_some()) {
        names.push("mcd_mls".into());
    }
    (names, secondary)
}

/// `_fix_external_confid_name`: `ext[_x]` (any external name) is reported as `<ext_confid_name>[_x]`.
fn reported_name(name: &str, plan: &Plan, version: Version) -> String {
    if !version.is_external(name) {
        return name.to_string();
    }
    let base = plan.ext_confid_name.clone().unwrap_or_else(|| "ext".into());
    match name.split('_').nth(1) {
        Some(suffix) => format!("{base}_{suffix}"),
        None => base,
    }
}

/// HEAD reads the MC logits and external passes as float16 (and only when an `mcd` CSF is
/// configured); v0.1.1 reads every file as stored. The corrected mode reads them as stored, on
/// HEAD's condition.
fn round_like_reader(values: &[f64], compat: Compat) -> Vec<f64> {
    match compat {
        Compat::Head => values.iter().map(|v| super::numpy::to_f16(*v)).collect(),
        _ => values.to_vec(),
    }
}

fn outputs<'a>(exp: &'a Experiment, plan: &Plan, compat: Compat, warnings: &mut Vec<String>) -> Outputs<'a> {
    let c = exp.num_classes;
    let m = exp.mc_samples.max(1);
    let wants_mcd = Version::of(compat) == Version::V011 || plan.csfs.iter().any(|n| n.contains("mcd"));
    let mc = if let Some(logits) = exp.mcd_logits.as_ref().filter(|_| wants_mcd) {
        let logits = round_like_reader(logits, compat);
        let softmax = csf::softmax_mc(&logits, c, m);
        Some(McOutputs {
            mean: McSamples::new(&softmax, c, m).mean(),
            softmax,
            logits: Some(logits),
            samples: m,
        })
    } else {
        exp.mcd_softmax.as_ref().map(|softmax| McOutputs {
            mean: McSamples::new(softmax, c, m).mean(),
            softmax: softmax.clone(),
            logits: None,
            samples: m,
        })
    };
    let external_dist = exp
        .external_dist
        .as_ref()
        .filter(|_| wants_mcd)
        .map(|d| (round_like_reader(d, compat), exp.external_samples.max(1)));
    // FD-Shifts stops where the feature CSFs cannot be computed (a predicted class without
    // training features, no logits for ViM); failscope leaves them out and says why.
    let features = match (&exp.features, &exp.logits, Version::of(compat)) {
        (Some(f), Some(logits), Version::Head) => {
            let predicted: Vec<usize> = exp.softmax.chunks(c).map(csf::argmax).collect();
            match f.scores(logits, c, &predicted) {
                Ok(scores) => {
                    let react_softmax = scores
                        .react_logits
                        .chunks(scores.classes)
                        .flat_map(csf::softmax)
                        .collect();
                    Some((scores, react_softmax))
                }
                Err(e) => {
                    warnings.push(format!("feature-based CSFs left out: {e}"));
                    None
                }
            }
        }
        (Some(_), None, Version::Head) => {
            warnings.push("feature-based CSFs left out: ViM needs the logits (raw_logits.npz)".into());
            None
        }
        _ => None,
    };
    Outputs {
        c,
        softmax: &exp.softmax,
        logits: exp.logits.as_deref(),
        mc,
        external: exp.external.as_deref(),
        external_dist,
        features,
    }
}

/// Evaluates every study × CSF, and every CSF on every row, with FD-Shifts' definitions under
/// `cfg.compat`.
pub fn evaluate(exp: &Experiment, plan: &Plan, cfg: &EvalConfig) -> Result<Evaluation, ExperimentError> {
    let compat = cfg.compat;
    let version = Version::of(compat);
    let mut warnings = Vec::new();
    let out = outputs(exp, plan, compat, &mut warnings);
    let c = exp.num_classes;
    let (mut names, secondary) = query_list(exp, &out, plan, compat);
    for name in names.iter().filter(|n| !secondary.contains(n)) {
        if !scoring::is_known(name, compat) {
            return Err(ExperimentError::UnknownCsf(name.clone()));
        }
    }
    let correct = metrics::correctness(&Matrix::new(&exp.softmax, c), &exp.labels);
    let mcd_correct = out
        .mc
        .as_ref()
        .map(|mc| metrics::correctness(&Matrix::new(&mc.mean, c), &exp.labels));
    let studies = studies::study_plan(&exp.dataset_idx, plan, &correct, mcd_correct.as_deref())?;
    let view_of = |study: &StudyRows| StudyView {
        det: Judged::new(
            &study.rows,
            &exp.softmax,
            c,
            &exp.labels,
            &correct,
            &exp.dataset_idx,
            study.open_set,
        ),
        mcd: out.mc.as_ref().zip(mcd_correct.as_ref()).map(|(mc, ok)| {
            Judged::new(
                &study.mcd_rows,
                &mc.mean,
                c,
                &exp.labels,
                ok,
                &exp.dataset_idx,
                study.open_set,
            )
        }),
    };

    let mut fitted: IndexMap<String, Normalisation> = IndexMap::new();
    let mut thresholds: IndexMap<String, sgr::Threshold> = IndexMap::new();
    let mut report = Report::new();
    for (si, study) in studies.iter().enumerate() {
        let view = view_of(study);
        let judged = |s: Source| -> &Judged {
            match s {
                Source::Mcd => view.mcd.as_ref().expect("MC CSFs exist only with MC outputs"),
                Source::Det => &view.det,
            }
        };
        let mut method: IndexMap<String, Scored> = IndexMap::new();
        let listed = names.clone();
        for name in listed.iter().filter(|n| !secondary.contains(n)) {
            let (source, raw) = {
                let mcd_rows = view.mcd.as_ref().map_or(&study.mcd_rows, |j| &j.rows);
                let rows = if scoring::is_mcd(name) {
                    mcd_rows
                } else {
                    &view.det.rows
                };
                raw_scores(&out, name, rows, plan, compat)?
            };
            let reported = reported_name(name, plan, version);
            if &reported != name {
                names
                    .iter_mut()
                    .filter(|v| *v == name)
                    .for_each(|v| *v = reported.clone());
            }
            let j = judged(source);
            if si == 0 {
                fitted.insert(
                    reported.clone(),
                    Normalisation::fit(&reported, &raw, &j.correct, &j.labels, compat)?,
                );
            }
            let confids = fitted[&reported].apply(&reported, raw)?;
            method.insert(reported, Scored { confids, source });
        }
        for name in &secondary {
            let confids = secondary_scores(name, |n| &method[n].confids);
            method.insert(
                name.clone(),
                Scored {
                    confids,
                    source: Source::Det,
                },
            );
        }
        let mut per_csf = IndexMap::new();
        for name in &names {
            if per_csf.contains_key(name) {
                continue;
            }
            let s = &method[name];
            let j = judged(s.source);
            let probs = Matrix::new(&j.probs, c);
            let mut row = metrics::performance_metrics(&probs, &j.labels, &j.correct, study.open_set.is_some());
            row.extend(metrics::confid_metrics(&s.confids, &j.correct, &j.labels, cfg));
            if si == 0 {
                let (conf, ok): (Vec<f64>, Vec<bool>) = s
                    .confids
                    .iter()
                    .zip(&j.correct)
                    .filter(|(v, _)| !v.is_nan())
                    .map(|(v, k)| (*v, *k))
                    .unzip();
                if let Some(t) = sgr::fit(&conf, &ok, plan.r_star, plan.r_delta, cfg.ties) {
                    thresholds.insert(name.clone(), t);
                }
            }
            if let Some(t) = thresholds.get(name) {
                let (risk, cov) = sgr::apply(t.theta, &s.confids, &j.correct);
                row.insert("test_risk".into(), Some(risk));
                row.insert("test_cov".into(), Some(cov));
                row.insert("diff_risk".into(), Some(risk - plan.r_star));
                row.insert("diff_cov".into(), Some(cov - t.coverage));
                row.insert("rstar".into(), Some(plan.r_star));
                row.insert("val_theta".into(), Some(t.theta).filter(|v| v.is_finite()));
            }
            // FD-Shifts' CSV counts the MC rows only for names containing "mcd" (so `<ext>_waic`
            // reports the deterministic row count).
            let n_test = if name.contains("mcd") {
                judged(Source::Mcd).rows.len()
            } else {
                view.det.rows.len()
            };
            row.insert("n_test".into(), Some(n_test as f64));
            per_csf.insert(name.clone(), row);
        }
        report.insert(study.name.clone(), per_csf);
    }
    let scores = row_scores(exp, &out, &names, &secondary, &fitted, plan, compat)?;
    Ok(Evaluation {
        report,
        scores,
        fitted,
        warnings,
    })
}

/// A secondary CSF `<a>-<b>-<average|product>` (`SecondaryConfidScore`) from its two parts' confidences.
fn secondary_scores<'a>(name: &str, confids: impl Fn(&str) -> &'a Vec<f64>) -> Vec<f64> {
    let parts: Vec<&str> = name.split('-').collect();
    let (x, y) = (confids(parts[0]), confids(parts[1]));
    let average = parts[2] == "average";
    x.iter()
        .zip(y)
        .map(|(a, b)| if average { (a + b) / 2.0 } else { a * b })
        .collect()
}

/// `Outputs::raw` under FD-Shifts' resolution of a name, except where FD-Shifts would stop: a
/// renamed external CSF whose new name FD-Shifts cannot compute (an unregistered
/// `ext_confid_name`, or HEAD's `maha` without features) is computed under its original name.
fn raw_scores(
    out: &Outputs<'_>,
    name: &str,
    rows: &[usize],
    plan: &Plan,
    compat: Compat,
) -> Result<(Source, scoring::Raw), ExperimentError> {
    let first = out.raw(name, rows, compat);
    let original = plan
        .ext_confid_name
        .as_deref()
        .and_then(|base| name.strip_prefix(base))
        .filter(|rest| rest.is_empty() || rest.starts_with('_'))
        .map(|rest| format!("ext{rest}"));
    match (first, original) {
        (Err(ExperimentError::UnknownCsf(_) | ExperimentError::MissingFeatures(_)), Some(o)) if o != name => {
            out.raw(&o, rows, compat)
        }
        (result, _) => result,
    }
}

/// Every (reported) CSF's confidence for every row, normalised as on `val_tuning`.
fn row_scores(
    exp: &Experiment,
    out: &Outputs<'_>,
    names: &[String],
    secondary: &[String],
    fitted: &IndexMap<String, Normalisation>,
    plan: &Plan,
    compat: Compat,
) -> Result<IndexMap<String, Vec<f64>>, ExperimentError> {
    let all = StudyRows::all(exp.labels.len());
    let mut scores: IndexMap<String, Vec<f64>> = IndexMap::new();
    for name in names.iter().filter(|n| !secondary.contains(n)) {
        if scores.contains_key(name) {
            continue;
        }
        let (_, raw) = raw_scores(out, name, &all.rows, plan, compat)?;
        let confids = fitted[name].apply(name, raw)?;
        scores.insert(name.clone(), confids);
    }
    for name in secondary {
        let v = secondary_scores(name, |n| &scores[n]);
        scores.insert(name.clone(), v);
    }
    Ok(scores)
}
