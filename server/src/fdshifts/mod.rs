//! FD-Shifts experiment folders (v0.1.1 and HEAD formats; the README's "FD-Shifts folders"): find the files,
//! read and validate every array, and hand the pure analysis an [`Experiment`] and its [`Plan`].

pub mod config;
mod features;

use std::path::{Path, PathBuf};

use failscope_shared::analysis::experiment::{Experiment, Plan};
use failscope_shared::analysis::{csf, studies};

use ndarray::Array2;

use crate::error::InputError;
use crate::io::npz::{self, Array};

/// A loaded experiment.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The arrays.
    pub experiment: Experiment,
    /// What to evaluate.
    pub plan: Plan,
    /// The folder holding the `.npz` files.
    pub test_dir: PathBuf,
    /// The experiment's `hydra/config.yaml`.
    pub config_path: PathBuf,
    /// `(n, d)` penultimate features from `encoded_output.npz`, when present. Not checked for
    /// finiteness here: scoring does not need them, and the latent-space jobs reject NaN with the row.
    pub features: Option<Array2<f32>>,
}

impl Loaded {
    /// The experiment folder (holding `hydra/` and `test_results/`).
    pub fn experiment_dir(&self) -> PathBuf {
        self.config_path
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// The rows' provenance (`failscope_samples.json`), checked to have one entry per row.
    pub fn sources(&self) -> Result<Option<crate::sources::SampleSources>, InputError> {
        let Some(s) = crate::sources::SampleSources::read(&self.experiment_dir())? else {
            return Ok(None);
        };
        if s.rows.len() != self.experiment.labels.len() {
            return Err(InputError::file(
                &self.experiment_dir().join(crate::sources::FILE),
                format!(
                    "{} rows, expected {} (one per row of raw_logits)",
                    s.rows.len(),
                    self.experiment.labels.len()
                ),
            ));
        }
        Ok(Some(s))
    }

    /// The files that make up the experiment (relative path in an FD-Shifts folder, bytes): the
    /// config and every `.npz` of `test_results/`.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>, InputError> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| InputError::file(p, format!("cannot read ({e})")));
        let mut out = vec![("hydra/config.yaml".to_string(), read(&self.config_path)?)];
        let mut npz: Vec<PathBuf> = std::fs::read_dir(&self.test_dir)
            .map_err(|e| InputError::file(&self.test_dir, format!("cannot list ({e})")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "npz"))
            .collect();
        npz.sort();
        let sidecar = self.experiment_dir().join(crate::sources::FILE);
        if sidecar.is_file() {
            out.push((crate::sources::FILE.to_string(), read(&sidecar)?));
        }
        for p in npz {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((format!("test_results/{name}"), read(&p)?));
        }
        Ok(out)
    }
}

/// Finds `test_results/` and `hydra/config.yaml` for an experiment folder (or its `test_results/`).
fn locate(dir: &Path) -> Result<(PathBuf, PathBuf), InputError> {
    if !dir.is_dir() {
        return Err(InputError::file(
            dir,
            "not a folder: expected an FD-Shifts experiment folder",
        ));
    }
    let (exp_dir, test_dir) = if dir.join("test_results").is_dir() {
        (dir.to_path_buf(), dir.join("test_results"))
    } else {
        (dir.parent().unwrap_or(dir).to_path_buf(), dir.to_path_buf())
    };
    let config = exp_dir.join("hydra").join("config.yaml");
    if !config.is_file() {
        return Err(InputError::file(
            &config,
            "missing file: FD-Shifts writes the experiment's config here",
        ));
    }
    Ok((config, test_dir))
}

fn optional(path: &Path) -> Result<Option<Array>, InputError> {
    path.is_file().then(|| npz::read(path, "arr_0")).transpose()
}

fn check_finite(path: &Path, what: &str, data: &[f64], width: usize) -> Result<(), InputError> {
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(InputError::file(
            path,
            format!(
                "{what} of row {} is {} (NaN or Inf is not a valid model output)",
                i / width,
                data[i]
            ),
        ));
    }
    Ok(())
}

/// The columns of `raw_output.npz` / `raw_logits.npz`.
struct RawColumns {
    /// `(n, c)` softmax or logits.
    outputs: Vec<f64>,
    labels: Vec<i64>,
    dataset_idx: Vec<i64>,
}

/// Splits an `(n, c + 2)` raw array into outputs, labels and dataset indices, validating each.
/// Labels must be class indices in `0..c` in the sets FD-Shifts scores as classification sets
/// (`strict`: validation, i.i.d., noise, in-class); new-class sets keep their own dataset's labels
/// (any integer), as FD-Shifts allows.
fn split_raw(path: &Path, raw: &Array, c: usize, strict: &[i64]) -> Result<RawColumns, InputError> {
    raw.expect_ndim(path, 2, "(N, num_classes + 2): outputs, label, dataset_idx")?;
    let (n, cols) = (raw.shape[0], raw.shape[1]);
    if n == 0 {
        return Err(InputError::file(
            path,
            "array has no rows: an experiment needs at least one sample",
        ));
    }
    if cols != c + 2 {
        return Err(InputError::file(
            path,
            format!(
                "array has {cols} columns, expected num_classes + 2 = {} (outputs, label, dataset_idx)",
                c + 2
            ),
        ));
    }
    let mut outputs = Vec::with_capacity(n * c);
    let (mut labels, mut idx) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, row) in raw.data.chunks(cols).enumerate() {
        outputs.extend_from_slice(&row[..c]);
        let (label, d) = (row[c], row[c + 1]);
        if d.fract() != 0.0 || d < 0.0 {
            return Err(InputError::file(
                path,
                format!("row {i}: dataset_idx {d} is not a non-negative integer"),
            ));
        }
        if !label.is_finite() || label.fract() != 0.0 {
            return Err(InputError::file(
                path,
                format!("row {i}: label {label} is not an integer"),
            ));
        }
        if strict.contains(&(d as i64)) && (label < 0.0 || label >= c as f64) {
            return Err(InputError::file(
                path,
                format!("row {i}: label {label} is not a class index in 0..{c}"),
            ));
        }
        labels.push(label as i64);
        idx.push(d as i64);
    }
    Ok(RawColumns {
        outputs,
        labels,
        dataset_idx: idx,
    })
}

/// Reads `raw_output.npz` / `raw_logits.npz`: split into columns, every output finite.
fn read_raw(path: &Path, c: usize, what: &str, strict: &[i64]) -> Result<RawColumns, InputError> {
    let cols = split_raw(path, &npz::read(path, "arr_0")?, c, strict)?;
    check_finite(path, what, &cols.outputs, c)?;
    Ok(cols)
}

fn softmax_rows(logits: &[f64], c: usize) -> Vec<f64> {
    logits.chunks(c).flat_map(csf::softmax).collect()
}

/// The `dataset_idx` values whose labels must be class indices: validation, i.i.d., noise and
/// in-class sets (new-class sets and unused indices keep any integer label).
fn strict_sets(plan: &failscope_shared::analysis::experiment::Plan) -> Vec<i64> {
    let new_class = studies::new_class_indices(plan);
    let mut strict = vec![0];
    strict.extend((1..=studies::flat_sets(plan).len() as i64).filter(|i| !new_class.contains(i)));
    strict
}

/// Loads and validates an experiment folder.
pub fn load(dir: &Path) -> Result<Loaded, InputError> {
    let (config_path, test_dir) = locate(dir)?;
    let cfg = config::load(&config_path)?;
    let c = cfg.num_classes;
    let strict = strict_sets(&cfg.plan);
    let logits_path = test_dir.join("raw_logits.npz");
    let output_path = test_dir.join("raw_output.npz");
    let mut exp = Experiment {
        num_classes: c,
        ..Experiment::default()
    };
    let n;
    if logits_path.is_file() {
        // HEAD: logits; softmax = scipy.special.softmax(logits).
        let RawColumns {
            outputs: logits,
            labels,
            dataset_idx: idx,
        } = read_raw(&logits_path, c, "a logit", &strict)?;
        n = labels.len();
        exp.softmax = softmax_rows(&logits, c);
        exp.logits = Some(logits);
        exp.labels = labels;
        exp.dataset_idx = idx;
        let dist_path = test_dir.join("raw_logits_dist.npz");
        if let Some(dist) = optional(&dist_path)? {
            let m = mc_shape(&dist_path, &dist, n, c)?;
            check_finite(&dist_path, "an MC logit", &dist.data, c * m)?;
            exp.mc_samples = m;
            exp.mcd_logits = Some(dist.data);
        }
    } else if output_path.is_file() {
        let RawColumns {
            outputs: softmax,
            labels,
            dataset_idx: idx,
        } = read_raw(&output_path, c, "a softmax value", &strict)?;
        n = labels.len();
        exp.softmax = softmax;
        exp.labels = labels;
        exp.dataset_idx = idx;
        let dist_path = test_dir.join("raw_output_dist.npz");
        if let Some(dist) = optional(&dist_path)? {
            let m = mc_shape(&dist_path, &dist, n, c)?;
            check_finite(&dist_path, "an MC softmax value", &dist.data, c * m)?;
            exp.mc_samples = m;
            exp.mcd_softmax = Some(dist.data);
        }
    } else {
        return Err(InputError::file(
            &output_path,
            "missing file: an FD-Shifts experiment needs raw_output.npz (or raw_logits.npz)",
        ));
    }
    let ext_path = test_dir.join("external_confids.npz");
    if let Some(ext) = optional(&ext_path)? {
        ext.expect_ndim(&ext_path, 1, "(N,): one confidence per row")?;
        ext.expect_rows(&ext_path, n, "(N,)")?;
        exp.external = Some(ext.data);
    }
    let ext_dist_path = test_dir.join("external_confids_dist.npz");
    if let Some(d) = optional(&ext_dist_path)? {
        d.expect_ndim(&ext_dist_path, 2, "(N, M): one confidence per row and MC pass")?;
        d.expect_rows(&ext_dist_path, n, "(N, M)")?;
        exp.external_samples = d.shape[1];
        exp.external_dist = Some(d.data);
    }
    let features = read_features(&test_dir.join("encoded_output.npz"), &exp.dataset_idx)?;
    if let Some(f) = &features {
        exp.features = features::read(&test_dir, f)?;
    }
    Ok(Loaded {
        experiment: exp,
        plan: cfg.plan,
        test_dir,
        config_path,
        features,
    })
}

/// Reads `encoded_output.npz`: `(N, d + 1)`, features then dataset_idx, which must match
/// `raw_output`'s row by row.
fn read_features(path: &Path, dataset_idx: &[i64]) -> Result<Option<Array2<f32>>, InputError> {
    let Some(enc) = optional(path)? else { return Ok(None) };
    let layout = "(N, d + 1): penultimate features, then dataset_idx";
    enc.expect_ndim(path, 2, layout)?;
    enc.expect_rows(path, dataset_idx.len(), layout)?;
    let cols = enc.shape[1];
    if cols < 2 {
        return Err(InputError::file(
            path,
            format!("array has {cols} column(s), expected {layout}"),
        ));
    }
    let d = cols - 1;
    let mut data = Vec::with_capacity(dataset_idx.len() * d);
    for (i, row) in enc.data.chunks(cols).enumerate() {
        if row[d] != dataset_idx[i] as f64 {
            return Err(InputError::file(
                path,
                format!(
                    "row {i}: dataset_idx {} differs from raw_output's {} (rows must be in the same order)",
                    row[d], dataset_idx[i]
                ),
            ));
        }
        data.extend(row[..d].iter().map(|v| *v as f32));
    }
    Ok(Some(
        Array2::from_shape_vec((dataset_idx.len(), d), data).expect("n × d values"),
    ))
}

fn mc_shape(path: &Path, dist: &Array, n: usize, c: usize) -> Result<usize, InputError> {
    dist.expect_ndim(
        path,
        3,
        "(N, num_classes, M): MC-dropout outputs, classes before samples",
    )?;
    dist.expect_rows(path, n, "(N, num_classes, M)")?;
    if dist.shape[1] != c || dist.shape[2] == 0 {
        return Err(InputError::file(
            path,
            format!(
                "array has shape {:?}, expected (N, num_classes = {c}, M ≥ 1)",
                dist.shape
            ),
        ));
    }
    Ok(dist.shape[2])
}
