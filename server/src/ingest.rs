//! Ingest, the use case "read a source and score it": an FD-Shifts experiment folder or a CSV of
//! per-sample outputs becomes one [`Evaluated`] — the FD-Shifts report and every per-sample record the
//! store keeps. One evaluation fits each calibration once and yields both the report and the scores.
//!
//! **Layer:** above the readers (`fdshifts`, `csv_input`, `sources`), below `store`, which takes an
//! [`Evaluated`] as it is.

use std::path::Path;

use failscope_shared::analysis::experiment;
use failscope_shared::analysis::experiment::Report;
use failscope_shared::analysis::scoring::Version;
use failscope_shared::analysis::{csf, EvalConfig};
use indexmap::IndexMap;
use ndarray::{Array2, Array3};

use crate::error::InputError;
use crate::sources::SampleSources;
use crate::{csv_input, fdshifts, torch};

/// One sample of a study: its row in the source, test set (FD-Shifts dataset_idx), label and
/// prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRecord {
    /// Row in the source arrays.
    pub row: i64,
    /// FD-Shifts dataset index (0 = val_tuning, 1 = iid, …).
    pub dataset_idx: i64,
    /// Class label.
    pub label: i64,
    /// Arg-max prediction.
    pub predicted: i64,
}

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
    /// Test-set names by dataset index (empty when there are no per-sample records).
    pub test_sets: Vec<String>,
    /// `(n, d)` penultimate features, when the source has them.
    pub features: Option<Array2<f32>>,
    /// `(n, c, m)` MC-dropout outputs, when the source has them.
    pub mc: Option<Array3<f32>>,
    /// Every CSF's score per sample (empty for confidence-only CSVs).
    pub scores: IndexMap<String, Vec<f64>>,
    /// `(n, c)` softmax, when the source has it.
    pub probs: Option<Array2<f32>>,
    /// Where each sample's image came from (`failscope_samples.json`).
    pub sources: Option<SampleSources>,
}

/// HEAD's `maha` and `vim` as FD-Shifts computes them, in libtorch's float32 (see
/// [`torch::features`]). Where they cannot be computed, the shared float64 code meets the same
/// problem and says why in the evaluation's warnings.
pub fn attach_torch_features(e: &mut experiment::Experiment) {
    let (Some(set), Some(logits)) = (e.features.as_mut(), e.logits.as_ref()) else {
        return;
    };
    let c = e.num_classes;
    let predicted: Vec<usize> = e.softmax.chunks(c).map(csf::argmax).collect();
    set.torch = torch::features::head_scores(set, logits, c, &predicted).ok();
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
            test_sets: Vec::new(),
            n_classes: 0,
            n_samples,
            features: None,
            mc: None,
            scores: IndexMap::new(),
            probs: None,
            sources: None,
        });
    }
    let mut loaded = fdshifts::load(path)?;
    if Version::of(cfg.compat) == Version::Head {
        attach_torch_features(&mut loaded.experiment);
    }
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
            predicted: csf::argmax(p) as i64,
        })
        .collect();
    let sets = e.dataset_idx.iter().max().map_or(0, |m| (*m + 1).max(0) as usize);
    let test_sets = failscope_shared::analysis::studies::test_set_names(&loaded.plan, sets);
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
        test_sets,
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
