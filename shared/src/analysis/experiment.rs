//! A whole FD-Shifts experiment evaluated in memory: `dataset_idx` → studies, every configured CSF
//! computed per study, Platt scaling fitted on `val_tuning`, and the metrics of each (study, CSF)
//! (`fd_shifts.analysis.Analysis` + `studies.py`). The server's loader fills [`Experiment`] from disk;
//! nothing here touches files.

use indexmap::IndexMap;

use super::csf::{self, Matrix, McSamples, WaicStd};
use super::metrics::{self, Compat, EvalConfig, MetricRow};
use super::platt::Platt;

/// Study → CSF → metrics, in FD-Shifts' order.
pub type Report = IndexMap<String, IndexMap<String, MetricRow>>;

/// The arrays of one experiment, rows aligned. Matrices are row-major; MC arrays use FD-Shifts'
/// `(n, c, m)` layout.
#[derive(Debug, Clone, Default)]
pub struct Experiment {
    /// Number of classes `c`.
    pub num_classes: usize,
    /// `(n, c)` softmax.
    pub softmax: Vec<f64>,
    /// `(n, c)` logits, when the experiment stored them (`raw_logits.npz`).
    pub logits: Option<Vec<f64>>,
    /// Integer class labels.
    pub labels: Vec<i64>,
    /// FD-Shifts' test-loader index of each row.
    pub dataset_idx: Vec<i64>,
    /// `(n, c, m)` MC-dropout softmax.
    pub mcd_softmax: Option<Vec<f64>>,
    /// `(n, c, m)` MC-dropout logits.
    pub mcd_logits: Option<Vec<f64>>,
    /// Number of MC passes `m`.
    pub mc_samples: usize,
    /// `(n,)` external confidences.
    pub external: Option<Vec<f64>>,
    /// `(n, m_ext)` external confidences per MC pass.
    pub external_dist: Option<Vec<f64>>,
    /// `m_ext`.
    pub external_samples: usize,
}

/// What to evaluate (the fields of FD-Shifts' config that the analysis reads).
#[derive(Debug, Clone, Default, PartialEq)]
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
}

/// Why an experiment cannot be evaluated. The server adds the file names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExperimentError {
    /// A CSF name FD-Shifts does not know.
    #[error("unknown confidence scoring function '{0}' in eval.confidence_measures.test")]
    UnknownCsf(String),
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
    /// `ext_mcd` / `ext_waic` without `external_confids_dist.npz`.
    #[error("'{0}' needs external_confids_dist.npz")]
    MissingExternalDist(String),
    /// A logit-based CSF without stored logits.
    #[error("'{0}' needs logits: raw_logits.npz (or raw_logits_dist.npz for MC-dropout)")]
    MissingLogits(String),
    /// Platt scaling impossible for a CSF.
    #[error("cannot fit Platt scaling for '{0}': all val_tuning confidences are NaN")]
    PlattAllNan(String),
}

/// One study's rows, with FD-Shifts' overrides for new-class studies.
#[derive(Debug, Clone)]
struct StudyRows {
    name: String,
    rows: Vec<usize>,
    mcd_rows: Vec<usize>,
    /// New-class studies: rows of the OOD set (correct = 0, label = −99) and whether the iid rows count
    /// as correct regardless (original mode).
    open_set: Option<(i64, bool)>,
}

/// The CSFs FD-Shifts would evaluate for this experiment, under their reported names, in order.
pub fn csf_names(exp: &Experiment, plan: &Plan) -> Result<Vec<String>, ExperimentError> {
    let mut out = Vec::new();
    for name in &plan.csfs {
        let external = is_external(name);
        if !external && !KNOWN.contains(&name.as_str()) {
            return Err(ExperimentError::UnknownCsf(name.clone()));
        }
        if external && exp.external.is_none() {
            continue;
        }
        if is_mcd(name) && exp.mcd_softmax.is_none() {
            continue;
        }
        if external && is_mcd(name) && exp.external_dist.is_none() {
            return Err(ExperimentError::MissingExternalDist(name.clone()));
        }
        let needs_logits = if is_mcd(name) {
            exp.mcd_logits.is_none()
        } else {
            exp.logits.is_none()
        };
        if name.contains("mls") && needs_logits {
            return Err(ExperimentError::MissingLogits(name.clone()));
        }
        out.push(reported_name(name, plan));
    }
    // FD-Shifts adds the logit-based CSFs whenever logits are stored.
    let mut added: Vec<&str> = Vec::new();
    if exp.logits.is_some() {
        added.extend(["det_mls", "temp_mls", "energy_mls"]);
    }
    if exp.mcd_logits.is_some() {
        added.push("mcd_mls");
    }
    for name in added {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

const KNOWN: [&str; 13] = [
    "det_mcp",
    "det_pe",
    "det_mls",
    "energy_mls",
    "temp_mls",
    "mcd_mcp",
    "mcd_pe",
    "mcd_ee",
    "mcd_mi",
    "mcd_sv",
    "mcd_waic",
    "mcd_mls",
    "ext",
];
const EXTERNAL: [&str; 5] = ["ext", "bpd", "tcp", "dg", "devries"];

fn is_external(name: &str) -> bool {
    EXTERNAL.contains(&name.split('_').next().unwrap_or(""))
}

fn is_mcd(name: &str) -> bool {
    name.contains("mcd") || name.contains("waic")
}

/// `_fix_external_confid_name`: `ext[_x]` is reported as `<ext_confid_name>[_x]`.
fn reported_name(name: &str, plan: &Plan) -> String {
    if !is_external(name) {
        return name.to_string();
    }
    let base = plan.ext_confid_name.clone().unwrap_or_else(|| "ext".into());
    match name.split('_').nth(1) {
        Some(suffix) => format!("{base}_{suffix}"),
        None => base,
    }
}

/// Whether each row is correct: by the softmax arg-max and, with MC samples, by the MC-mean
/// arg-max (`mcd_correct`). Computed once per experiment.
struct Correctness {
    det: Vec<bool>,
    mcd: Option<Vec<bool>>,
}

impl Correctness {
    fn of(exp: &Experiment) -> Self {
        let c = exp.num_classes;
        let det = metrics::correctness(&Matrix::new(&exp.softmax, c), &exp.labels);
        let mcd = exp.mcd_softmax.as_ref().map(|d| {
            let mean = McSamples::new(d, c, exp.mc_samples.max(1)).mean();
            metrics::correctness(&Matrix::new(&mean, c), &exp.labels)
        });
        Self { det, mcd }
    }
}

/// The rows of an experiment gathered for one study.
struct View {
    probs: Vec<f64>,
    logits: Option<Vec<f64>>,
    labels: Vec<i64>,
    correct: Vec<bool>,
    mc: Option<Vec<f64>>,
    mc_logits: Option<Vec<f64>>,
    mc_labels: Vec<i64>,
    mc_correct: Vec<bool>,
    mc_probs_mean: Vec<f64>,
    ext: Option<Vec<f64>>,
    ext_dist: Option<Vec<f64>>,
}

fn gather<T: Copy>(src: &[T], rows: &[usize], width: usize) -> Vec<T> {
    rows.iter()
        .flat_map(|&r| src[r * width..(r + 1) * width].iter().copied())
        .collect()
}

impl View {
    fn new(exp: &Experiment, study: &StudyRows, ok: &Correctness) -> Self {
        let c = exp.num_classes;
        let m = exp.mc_samples.max(1);
        let override_row = |r: usize, correct: bool| -> (bool, i64) {
            match study.open_set {
                Some((ood_idx, _)) if exp.dataset_idx[r] == ood_idx => (false, -99),
                Some((_, original)) => (correct || original, exp.labels[r]),
                None => (correct, exp.labels[r]),
            }
        };
        let (correct, labels): (Vec<bool>, Vec<i64>) = study.rows.iter().map(|&r| override_row(r, ok.det[r])).unzip();
        let mc = exp.mcd_softmax.as_ref().map(|d| gather(d, &study.mcd_rows, c * m));
        let mc_probs_mean = mc.as_ref().map(|d| McSamples::new(d, c, m).mean()).unwrap_or_default();
        let (mc_correct, mc_labels) = match &ok.mcd {
            Some(mcd) => study.mcd_rows.iter().map(|&r| override_row(r, mcd[r])).unzip(),
            None => (Vec::new(), Vec::new()),
        };
        Self {
            probs: gather(&exp.softmax, &study.rows, c),
            logits: exp.logits.as_ref().map(|l| gather(l, &study.rows, c)),
            labels,
            correct,
            mc,
            mc_logits: exp.mcd_logits.as_ref().map(|d| gather(d, &study.mcd_rows, c * m)),
            mc_labels,
            mc_correct,
            mc_probs_mean,
            ext: exp.external.as_ref().map(|e| gather(e, &study.rows, 1)),
            ext_dist: exp
                .external_dist
                .as_ref()
                .map(|e| gather(e, &study.mcd_rows, exp.external_samples.max(1))),
        }
    }
}

/// Raw scores of CSF `name` (a reported name) on a study, with the correctness and labels it is judged by.
struct Scored<'v> {
    scores: Vec<f64>,
    correct: &'v [bool],
    labels: &'v [i64],
    probs: Vec<f64>,
}

fn score<'v>(
    name: &str,
    view: &'v View,
    exp: &Experiment,
    plan: &Plan,
    compat: Compat,
    temperature: Option<f64>,
) -> Scored<'v> {
    let c = exp.num_classes;
    let m = exp.mc_samples.max(1);
    let det = |scores: Vec<f64>| Scored {
        scores,
        correct: &view.correct,
        labels: &view.labels,
        probs: view.probs.clone(),
    };
    let mcd = |scores: Vec<f64>| Scored {
        scores,
        correct: &view.mc_correct,
        labels: &view.mc_labels,
        probs: view.mc_probs_mean.clone(),
    };
    let rows = |data: &[f64], f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
        let mx = Matrix::new(data, c);
        (0..mx.rows()).map(|i| f(mx.row(i))).collect()
    };
    let ext_name = reported_name("ext", plan);
    let empty: Vec<f64> = Vec::new();
    let logits = view.logits.as_ref().unwrap_or(&empty);
    let mc_data = view.mc.as_deref().unwrap_or(&[]);
    match name {
        "det_mcp" => det(rows(&view.probs, &csf::max)),
        "det_pe" => det(rows(&view.probs, &csf::entropy)),
        "det_mls" => det(rows(logits, &csf::max)),
        "energy_mls" => det(rows(logits, &csf::logsumexp)),
        "temp_mls" => {
            let t = temperature.unwrap_or(1.0);
            det(rows(logits, &|r: &[f64]| {
                csf::max(&csf::softmax(&r.iter().map(|z| z / t).collect::<Vec<_>>()))
            }))
        }
        "mcd_mcp" => mcd(rows(&view.mc_probs_mean, &csf::max)),
        "mcd_pe" => mcd(rows(&view.mc_probs_mean, &csf::entropy)),
        "mcd_ee" | "mcd_mi" | "mcd_sv" => {
            let s = McSamples::new(mc_data, c, m);
            let mean = Matrix::new(&view.mc_probs_mean, c);
            mcd((0..s.rows())
                .map(|i| match name {
                    "mcd_ee" => csf::expected_entropy(&s, i),
                    "mcd_mi" => csf::entropy(mean.row(i)) - csf::expected_entropy(&s, i),
                    _ => csf::softmax_variance(&s, i),
                })
                .collect())
        }
        "mcd_waic" => {
            let which = if compat == Compat::FdShifts011 {
                WaicStd::RowZero
            } else {
                WaicStd::OwnRow
            };
            mcd(csf::mcd_waic(&McSamples::new(mc_data, c, m), which))
        }
        "mcd_mls" => {
            let mean = McSamples::new(view.mc_logits.as_deref().unwrap_or(&[]), c, m).mean();
            mcd(rows(&mean, &csf::max))
        }
        n if n == ext_name => det(view.ext.clone().unwrap_or_default()),
        n => {
            // <ext>_mcd / <ext>_waic from the per-pass external confidences.
            let me = exp.external_samples.max(1);
            let dist = view.ext_dist.as_deref().unwrap_or(&[]);
            let per_row = dist.chunks(me);
            let scores = if n.ends_with("_waic") {
                per_row
                    .map(|x| {
                        let mean = x.iter().sum::<f64>() / me as f64;
                        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / me as f64;
                        mean - var.sqrt()
                    })
                    .collect()
            } else {
                per_row.map(|x| x.iter().sum::<f64>() / me as f64).collect()
            };
            mcd(scores)
        }
    }
}

fn study_plan(exp: &Experiment, plan: &Plan, ok: &Correctness) -> Result<Vec<StudyRows>, ExperimentError> {
    let rows_of = |idx: i64| -> Vec<usize> {
        (0..exp.dataset_idx.len())
            .filter(|&r| exp.dataset_idx[r] == idx)
            .collect()
    };
    // dataset_idx: 0 = val_tuning, then iid, noise…, in_class…, new_class… in config-schema order.
    let mut flat: Vec<&String> = Vec::new();
    flat.extend(plan.iid_study.iter());
    flat.extend(plan.noise_study.iter());
    flat.extend(plan.in_class_study.iter());
    flat.extend(plan.new_class_study.iter());
    let idx_of = |name: &str| -> i64 { flat.iter().position(|n| *n == name).map_or(-1, |p| p as i64 + 1) };
    let plain = |name: String, idx: i64| -> Result<StudyRows, ExperimentError> {
        let rows = rows_of(idx);
        if rows.is_empty() {
            return Err(ExperimentError::EmptyStudy { study: name, idx });
        }
        Ok(StudyRows {
            name,
            mcd_rows: rows.clone(),
            rows,
            open_set: None,
        })
    };
    let mut out = Vec::new();
    let val = rows_of(0);
    if val.is_empty() {
        return Err(ExperimentError::NoValTuning);
    }
    out.push(plain("val_tuning".into(), 0)?);
    if let Some(iid) = &plan.iid_study {
        out.push(plain("iid_study".into(), idx_of(iid))?);
    }
    for set in &plan.noise_study {
        let all = plain(format!("noise_study ({set})"), idx_of(set))?.rows;
        if !plan.fast_dev_run && !all.len().is_multiple_of(75) {
            return Err(ExperimentError::NoiseSize {
                set: set.clone(),
                rows: all.len(),
            });
        }
        let per_level = all.len() / 75;
        for level in 0..5 {
            let rows: Vec<usize> = if plan.fast_dev_run {
                all.clone()
            } else {
                // Rows are ordered [corruption (15)][severity (5)][image]: take [:, level].
                (0..15)
                    .flat_map(|c| all[(c * 5 + level) * per_level..(c * 5 + level + 1) * per_level].to_vec())
                    .collect()
            };
            out.push(StudyRows {
                name: format!("noise_study_{}", level + 1),
                mcd_rows: rows.clone(),
                rows,
                open_set: None,
            });
        }
    }
    for set in &plan.in_class_study {
        out.push(plain(format!("in_class_study_{set}"), idx_of(set))?);
    }
    if !plan.new_class_study.is_empty() {
        let iid_idx = plan.iid_study.as_deref().map_or(-1, idx_of);
        let (correct, mcd_correct) = (&ok.det, ok.mcd.as_deref());
        for set in &plan.new_class_study {
            let ood = idx_of(set);
            let name = format!("new_class_study_{set}");
            if rows_of(ood).is_empty() {
                return Err(ExperimentError::EmptyStudy { study: name, idx: ood });
            }
            for (mode, original) in [("original_mode", true), ("proposed_mode", false)] {
                // Original order of rows; incorrect iid predictions are dropped in proposed mode.
                let select = |ok: &[bool]| -> Vec<usize> {
                    (0..exp.dataset_idx.len())
                        .filter(|&r| {
                            exp.dataset_idx[r] == ood || (exp.dataset_idx[r] == iid_idx && (original || ok[r]))
                        })
                        .collect()
                };
                let rows = select(correct);
                let mcd_rows = mcd_correct.map_or_else(|| rows.clone(), select);
                out.push(StudyRows {
                    name: format!("{name}_{mode}"),
                    rows,
                    mcd_rows,
                    open_set: Some((ood, original)),
                });
            }
        }
    }
    Ok(out)
}

/// What is fitted on `val_tuning` and applied to every study: the temperature (with logits) and a
/// Platt scaling per CSF that needs one.
struct Fitted {
    temperature: Option<f64>,
    platt: IndexMap<String, Platt>,
}

impl Fitted {
    fn on_val(
        exp: &Experiment,
        plan: &Plan,
        cfg: &EvalConfig,
        names: &[String],
        val: &View,
    ) -> Result<Self, ExperimentError> {
        let temperature = val
            .logits
            .as_ref()
            .map(|l| csf::fit_temperature(&Matrix::new(l, exp.num_classes), &val.labels));
        let mut platt = IndexMap::new();
        for name in names.iter().filter(|n| csf::needs_platt(n)) {
            let s = score(name, val, exp, plan, cfg.compat, temperature);
            let fit = Platt::fit(&s.scores, s.correct).map_err(|_| ExperimentError::PlattAllNan(name.clone()))?;
            platt.insert(name.clone(), fit);
        }
        Ok(Self { temperature, platt })
    }

    /// One CSF's scores over a view, Platt-scaled where FD-Shifts scales them.
    fn score<'v>(&self, name: &str, view: &'v View, exp: &Experiment, plan: &Plan, cfg: &EvalConfig) -> Scored<'v> {
        let mut s = score(name, view, exp, plan, cfg.compat, self.temperature);
        if let Some(p) = self.platt.get(name) {
            s.scores.iter_mut().for_each(|v| *v = p.apply(*v));
        }
        s
    }
}

/// Evaluates every study × CSF. Platt parameters and the temperature are fitted on `val_tuning`.
pub fn evaluate(exp: &Experiment, plan: &Plan, cfg: &EvalConfig) -> Result<Report, ExperimentError> {
    let names = csf_names(exp, plan)?;
    let ok = Correctness::of(exp);
    let studies = study_plan(exp, plan, &ok)?;
    let fitted = Fitted::on_val(exp, plan, cfg, &names, &View::new(exp, &studies[0], &ok))?;
    let mut report = Report::new();
    for study in &studies {
        let view = View::new(exp, study, &ok);
        let mut per_csf = IndexMap::new();
        for name in &names {
            let s = fitted.score(name, &view, exp, plan, cfg);
            let probs = Matrix::new(&s.probs, exp.num_classes);
            let mut row = metrics::performance_metrics(&probs, s.labels, s.correct, study.open_set.is_some());
            row.extend(metrics::confid_metrics(&s.scores, s.correct, s.labels, cfg));
            row.insert("n_test".into(), Some(s.scores.len() as f64));
            per_csf.insert(name.clone(), row);
        }
        report.insert(study.name.clone(), per_csf);
    }
    Ok(report)
}

/// Every CSF's score for every row of the experiment (in row order, Platt-scaled and with the
/// temperature fitted on `val_tuning`, as in [`evaluate`]): what the latent view colours by and the
/// inspector lists. Higher means more confident; NaN where the model gave none.
pub fn sample_scores(
    exp: &Experiment,
    plan: &Plan,
    cfg: &EvalConfig,
) -> Result<IndexMap<String, Vec<f64>>, ExperimentError> {
    let names = csf_names(exp, plan)?;
    let ok = Correctness::of(exp);
    let studies = study_plan(exp, plan, &ok)?;
    let fitted = Fitted::on_val(exp, plan, cfg, &names, &View::new(exp, &studies[0], &ok))?;
    let all: Vec<usize> = (0..exp.labels.len()).collect();
    let every_row = StudyRows {
        name: "all".into(),
        rows: all.clone(),
        mcd_rows: all,
        open_set: None,
    };
    let view = View::new(exp, &every_row, &ok);
    Ok(names
        .iter()
        .map(|name| (name.clone(), fitted.score(name, &view, exp, plan, cfg).scores))
        .collect())
}
