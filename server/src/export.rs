//! Writing model outputs as an FD-Shifts experiment folder (HEAD format: `raw_logits.npz`,
//! `raw_logits_dist.npz`, `encoded_output.npz`, `train_features.npz`, `last_layer.npz`,
//! `hydra/config.yaml`), so `failscope eval` — and FD-Shifts itself — score it. Written into a temporary folder and renamed into place at the end:
//! the folder is either complete or absent.

use std::path::Path;

use npyz::WriterBuilder;

use crate::error::{Error, InputError, WriteError};
use crate::io::atomic;

/// Outputs of one model over all rows of a study, rows in FD-Shifts order.
pub struct ExportRows {
    /// Number of classes `c`.
    pub num_classes: usize,
    /// `(n, c)` logits, row-major.
    pub logits: Vec<f32>,
    /// Class label of each row.
    pub labels: Vec<i64>,
    /// FD-Shifts dataset index of each row (0 = val_tuning, 1 = iid, 2… = the other test sets).
    pub dataset_idx: Vec<i64>,
    /// `(n, c, m)` MC-dropout logits, when MC passes were run.
    pub mc_logits: Option<(Vec<f32>, usize)>,
    /// `(n, d)` penultimate features, when the model returns them.
    pub features: Option<(Vec<f32>, usize)>,
    /// `(n_train, d)` features of the training rows and their labels (`train_features.npz`).
    pub train_features: Option<(Vec<f32>, Vec<i64>)>,
    /// The last layer: `(c, d)` weight and `(c,)` bias (`last_layer.npz`).
    pub last_layer: Option<(Vec<f32>, Vec<f32>)>,
    /// The model's own confidence per row (DeepGamblers, ConfidNet), reported as `ext_name`.
    pub external: Option<Vec<f32>>,
    /// Names of the test sets after `iid` (dataset_idx 2, 3, …), reported as `in_class_study_<name>`.
    pub shifted_sets: Vec<String>,
    /// Where each row's image came from (written as `failscope_samples.json`).
    pub sources: Option<crate::sources::SampleSources>,
}

fn write_npz(path: &Path, shape: &[u64], data: impl Iterator<Item = f64>) -> std::io::Result<()> {
    let mut npz = npyz::npz::NpzWriter::create(path)?;
    let mut w = npz
        .array::<f64>("arr_0", npyz::zip::write::FileOptions::default())?
        .default_dtype()
        .shape(shape)
        .begin_nd()?;
    w.extend(data)?;
    w.finish()
}

/// `np.savez(path, w=w, b=b)`: the last layer as two arrays, weight first.
fn write_last_layer(path: &Path, w: &[f32], b: &[f32], d: usize) -> std::io::Result<()> {
    let mut npz = npyz::npz::NpzWriter::create(path)?;
    for (name, shape, data) in [("w", vec![b.len() as u64, d as u64], w), ("b", vec![b.len() as u64], b)] {
        let mut arr = npz
            .array::<f64>(name, npyz::zip::write::FileOptions::default())?
            .default_dtype()
            .shape(&shape)
            .begin_nd()?;
        arr.extend(data.iter().map(|v| f64::from(*v)))?;
        arr.finish()?;
    }
    Ok(())
}

/// Writes the experiment folder `dir` (which must not exist yet). `ext_name` is FD-Shifts'
/// `eval.ext_confid_name` for the external confidence (`dg`, `tcp`, …).
pub fn write_fdshifts(dir: &Path, rows: &ExportRows, ext_name: &str) -> Result<(), Error> {
    let tmp = atomic::staging(dir)?;
    let io = |p: &Path, e: std::io::Error| WriteError::new(p, format!("cannot write ({e})"));
    let results = tmp.path().join("test_results");
    std::fs::create_dir_all(&results).map_err(|e| io(&results, e))?;
    std::fs::create_dir_all(tmp.path().join("hydra")).map_err(|e| io(tmp.path(), e))?;
    let (n, c) = (rows.labels.len(), rows.num_classes);
    let raw = (0..n).flat_map(|i| {
        rows.logits[i * c..(i + 1) * c]
            .iter()
            .map(|v| f64::from(*v))
            .chain([rows.labels[i] as f64, rows.dataset_idx[i] as f64])
    });
    let p = results.join("raw_logits.npz");
    write_npz(&p, &[n as u64, c as u64 + 2], raw).map_err(|e| io(&p, e))?;
    if let Some((mc, m)) = &rows.mc_logits {
        let p = results.join("raw_logits_dist.npz");
        write_npz(&p, &[n as u64, c as u64, *m as u64], mc.iter().map(|v| f64::from(*v))).map_err(|e| io(&p, e))?;
    }
    if let Some((f, d)) = &rows.features {
        // FD-Shifts: features + dataset_idx in the last column.
        let p = results.join("encoded_output.npz");
        let data = (0..n).flat_map(|i| {
            f[i * d..(i + 1) * d]
                .iter()
                .map(|v| f64::from(*v))
                .chain([rows.dataset_idx[i] as f64])
        });
        write_npz(&p, &[n as u64, *d as u64 + 1], data).map_err(|e| io(&p, e))?;
    }
    if let (Some((_, d)), Some((train, labels)), Some((w, b))) =
        (&rows.features, &rows.train_features, &rows.last_layer)
    {
        // HEAD's feature-based CSFs: training features with the label last, and the last layer
        // (`w` then `b`, the order FD-Shifts reads them in).
        let p = results.join("train_features.npz");
        let data = labels.iter().enumerate().flat_map(|(i, l)| {
            train[i * d..(i + 1) * d]
                .iter()
                .map(|v| f64::from(*v))
                .chain([*l as f64])
        });
        write_npz(&p, &[labels.len() as u64, *d as u64 + 1], data).map_err(|e| io(&p, e))?;
        let p = results.join("last_layer.npz");
        write_last_layer(&p, w, b, *d).map_err(|e| io(&p, e))?;
    }
    if let Some(ext) = &rows.external {
        let p = results.join("external_confids.npz");
        write_npz(&p, &[n as u64], ext.iter().map(|v| f64::from(*v))).map_err(|e| io(&p, e))?;
    }
    let mut csfs = vec!["det_mcp", "det_pe"];
    if rows.external.is_some() {
        csfs.push("ext");
    }
    if rows.mc_logits.is_some() {
        csfs.extend(["mcd_mcp", "mcd_pe", "mcd_ee", "mcd_mi", "mcd_sv", "mcd_waic"]);
    }
    // Every field FD-Shifts' analysis reads, so FD-Shifts itself scores the folder too (with
    // EXPERIMENT_ROOT_DIR set to the folder's parent).
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\""))
        .unwrap_or_else(|| "experiment".into());
    let config = format!(
        "# Written by failscope: an FD-Shifts (HEAD format) experiment.\ndata:\n  num_classes: {c}\n  dataset: iid\n  kwargs: null\ntrainer:\n  fast_dev_run: false\nexp:\n  name: \"{name}\"\n  fold: 0\n  group_dir: ${{oc.env:EXPERIMENT_ROOT_DIR}}\n  dir: \"${{oc.env:EXPERIMENT_ROOT_DIR}}/{name}\"\nmodel:\n  name: failscope\n  network:\n    backbone: failscope\ntest:\n  dir: ${{exp.dir}}/test_results\neval:\n  val_tuning: true\n  r_star: 0.25\n  r_delta: 0.05\n  ext_confid_name: {ext_name}\n  confidence_measures:\n    test: [{}]\n  query_studies:\n    iid_study: iid\n    noise_study: []\n    in_class_study: [{}]\n    new_class_study: []\n",
        csfs.join(", "),
        rows.shifted_sets.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
    );
    let p = tmp.path().join("hydra/config.yaml");
    std::fs::write(&p, config).map_err(|e| io(&p, e))?;
    if let Some(sources) = &rows.sources {
        sources.write(tmp.path())?;
    }
    Ok(atomic::publish(tmp, dir)?)
}

/// Writes `files` (relative path, bytes) into the new folder `dir`, atomically (temp folder + rename).
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), Error> {
    let tmp = atomic::staging(dir)?;
    for (rel, data) in files {
        let rel = Path::new(rel);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(InputError::item(
                "study files",
                format!("refusing to write outside the export: {}", rel.display()),
            )
            .into());
        }
        let p = tmp.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| WriteError::new(d, format!("cannot create ({e})")))?;
        }
        std::fs::write(&p, data).map_err(|e| WriteError::new(&p, format!("cannot write ({e})")))?;
    }
    Ok(atomic::publish(tmp, dir)?)
}
