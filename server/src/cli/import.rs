//! Evaluating a source (FD-Shifts folder or CSV) and importing it into the study store with
//! everything the later stages use: report, source files, per-sample records, features, MC
//! passes, softmax, CSF scores and image provenance.

use std::path::Path;

use failscope_shared::analysis::experiment::{self, Report};
use failscope_shared::analysis::EvalConfig;
use indexmap::IndexMap;
use ndarray::{Array2, Array3};

use super::{CliError, Definitions};
use crate::error::InputError;
use crate::store::{NewStudy, SampleRecord, Store};
use crate::{csv_input, fdshifts};

/// An evaluated source: its report and what the store records about it.
pub struct Evaluated {
    /// The metrics.
    pub report: Report,
    /// `fd-shifts` or `csv`.
    pub kind: &'static str,
    /// Number of classes (0 when unknown, e.g. a confidence-only CSV).
    pub n_classes: u32,
    /// Number of rows.
    pub n_samples: u64,
    /// The source's files, for the store.
    pub files: Vec<(String, Vec<u8>)>,
    /// Per-sample records, for the store.
    pub samples: Vec<SampleRecord>,
    /// `(n, d)` penultimate features, when the source has them.
    pub features: Option<Array2<f32>>,
    /// `(n, c, m)` MC-dropout outputs, when the source has them.
    pub mc: Option<Array3<f32>>,
    /// Every CSF's score per sample (empty for confidence-only CSVs).
    pub scores: IndexMap<String, Vec<f64>>,
    /// `(n, c)` softmax, when the source has it.
    pub probs: Option<Array2<f32>>,
    /// Where each sample's image came from (`failscope_samples.json`).
    pub sources: Option<crate::sources::SampleSources>,
}

/// Evaluates an FD-Shifts folder or a CSV file.
pub fn evaluate_path(path: &Path, cfg: &EvalConfig) -> Result<Evaluated, InputError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let report = csv_input::evaluate(path, cfg)?;
        let n_samples = report
            .values()
            .filter_map(|c| c.values().next())
            .filter_map(|r| r.get("n_test").copied().flatten())
            .sum::<f64>() as u64;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scores.csv".into());
        let bytes = std::fs::read(path).map_err(|e| InputError::file(path, format!("cannot read ({e})")))?;
        return Ok(Evaluated {
            report,
            kind: "csv",
            files: vec![(name, bytes)],
            samples: Vec::new(),
            n_classes: 0,
            n_samples,
            features: None,
            mc: None,
            scores: IndexMap::new(),
            probs: None,
            sources: None,
        });
    }
    let loaded = fdshifts::load(path)?;
    let experiment::Evaluation {
        report,
        scores,
        warnings,
        ..
    } = experiment::evaluate(&loaded.experiment, &loaded.plan, cfg)
        .map_err(|e| InputError::file(&loaded.test_dir, e.to_string()))?;
    for w in warnings {
        eprintln!("warning: {}: {w}", loaded.test_dir.display());
    }
    let e = &loaded.experiment;
    let samples = e
        .softmax
        .chunks(e.num_classes)
        .enumerate()
        .map(|(i, p)| SampleRecord {
            row: i as i64,
            dataset_idx: e.dataset_idx[i],
            label: e.labels[i],
            predicted: failscope_shared::analysis::csf::argmax(p) as i64,
        })
        .collect();
    let mc = e.mcd_logits.as_ref().or(e.mcd_softmax.as_ref()).map(|v| {
        Array3::from_shape_vec(
            (e.labels.len(), e.num_classes, e.mc_samples),
            v.iter().map(|x| *x as f32).collect(),
        )
        .expect("the loader checked the (n, c, m) shape")
    });
    Ok(Evaluated {
        report,
        kind: "fd-shifts",
        n_classes: e.num_classes as u32,
        n_samples: e.labels.len() as u64,
        files: loaded.files()?,
        samples,
        probs: Some(
            Array2::from_shape_vec(
                (e.labels.len(), e.num_classes),
                e.softmax.iter().map(|v| *v as f32).collect(),
            )
            .expect("the loader checked the (n, c) shape"),
        ),
        sources: loaded.sources()?,
        features: loaded.features,
        mc,
        scores,
    })
}

pub(super) fn open_store(db: &Path) -> Result<Store, CliError> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| InputError::file(parent, format!("cannot create the store's folder ({e})")))?;
    }
    Ok(Store::open(db)?)
}

/// Evaluates `path` and stores it (report, source files, samples) in one transaction.
pub(super) fn import(
    store: &mut Store,
    path: &Path,
    name: Option<&str>,
    defs: &Definitions,
) -> Result<(i64, Evaluated), CliError> {
    let cfg = defs.config();
    let ev = evaluate_path(path, &cfg)?;
    let default_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let source = path
        .canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let id = store.insert(&NewStudy {
        name: name.unwrap_or(&default_name),
        kind: ev.kind,
        source: &source,
        n_classes: ev.n_classes,
        n_samples: ev.n_samples,
        compat: cfg.compat.name(),
        report: &ev.report,
        files: &ev.files,
        samples: &ev.samples,
        features: ev.features.as_ref().map(|f| f.view()),
        mc: ev.mc.as_ref().map(|m| m.view()),
        scores: &ev.scores,
        probs: ev.probs.as_ref().map(|p| p.view()),
        sources: ev.sources.as_ref(),
    })?;
    Ok((id, ev))
}
