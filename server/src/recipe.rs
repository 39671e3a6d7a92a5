//! `failscope run <recipe.toml>`: a whole study end to end — dataset, shifts, training (CNN with
//! dropout + ConfidNet head, and a DeepGamblers CNN), inference on every test set, FD-Shifts
//! experiment folders, metrics, and the study store.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use tch::{Kind, Tensor};

use crate::data::split::Fractions;
use crate::error::InputError;
use crate::infer::{self, Classifier, InferConfig, Preprocess};
use crate::shift::corrupt::Corruption;
use crate::shift::{self, Design, ShiftPlan};
use crate::train::{self, EpochStats, TensorSet, TrainConfig};

/// A study recipe (TOML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Study name.
    pub name: String,
    /// Dataset and preprocessing.
    pub data: DataSpec,
    /// Distribution shifts.
    #[serde(default)]
    pub shifts: ShiftSpec,
    /// Training.
    #[serde(default)]
    pub train: TrainConfig,
    /// Inference.
    #[serde(default)]
    pub infer: InferSpec,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// As for `failscope dataset`.
    pub source: String,
    /// Model input `[h, w]`.
    pub size: [u32; 2],
    /// Normalisation mean (default ImageNet's).
    #[serde(default = "imagenet_mean")]
    pub mean: [f32; 3],
    /// Normalisation std (default ImageNet's).
    #[serde(default = "imagenet_std")]
    pub std: [f32; 3],
}

fn imagenet_mean() -> [f32; 3] {
    [0.485, 0.456, 0.406]
}

fn imagenet_std() -> [f32; 3] {
    [0.229, 0.224, 0.225]
}

/// `[shifts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShiftSpec {
    /// Held-out domains (acquisition shift).
    pub hold_out_domains: Vec<String>,
    /// Metadata key of held-out subtypes (manifestation shift), e.g. `dx`.
    pub subtype_key: Option<String>,
    /// Held-out subtype values, e.g. `["bkl", "akiec"]`.
    pub hold_out_subtypes: Vec<String>,
    /// Corruption names, or `["all"]`.
    pub corruptions: Vec<String>,
    /// Training share (default 0.7).
    pub train: Option<f64>,
    /// Validation share (default 0.1).
    pub val: Option<f64>,
    /// Seed of split and corruptions.
    pub seed: u64,
}

/// `[infer]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferSpec {
    /// MC-dropout passes.
    pub mc: usize,
    /// Batch size.
    pub batch: usize,
}

impl Default for InferSpec {
    fn default() -> Self {
        Self { mc: 10, batch: 128 }
    }
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read ({e})")))?;
        toml::from_str(&text).map_err(|e| InputError::file(path, format!("not a valid recipe: {}", e.message())))
    }

    fn plan(&self) -> Result<ShiftPlan, InputError> {
        let s = &self.shifts;
        let corruptions = Corruption::parse_list(&s.corruptions, "shifts.corruptions")?;
        let held_out_subtypes = match (&s.subtype_key, s.hold_out_subtypes.is_empty()) {
            (Some(k), false) => Some((k.clone(), s.hold_out_subtypes.clone())),
            (None, true) => None,
            _ => {
                return Err(InputError::item(
                    "shifts",
                    "subtype_key and hold_out_subtypes go together",
                ))
            }
        };
        Ok(ShiftPlan {
            held_out_domains: s.hold_out_domains.clone(),
            held_out_subtypes,
            corruptions,
            fractions: Fractions {
                train: s.train.unwrap_or(0.7),
                val: s.val.unwrap_or(0.1),
            },
            seed: s.seed,
        })
    }

    fn preprocess(&self) -> Preprocess {
        Preprocess {
            size: self.data.size,
            mean: self.data.mean,
            std: self.data.std,
        }
    }
}

fn load_tensors(
    ds: &crate::data::Dataset,
    rows: &[usize],
    p: &Preprocess,
    what: &str,
) -> Result<TensorSet, InputError> {
    let pb = ProgressBar::new(rows.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} images")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    let mut parts = Vec::new();
    for chunk in rows.chunks(256) {
        let imgs = chunk
            .iter()
            .map(|&r| Ok(infer::resize(ds.samples[r].load_rgb()?, p)))
            .collect::<Result<Vec<_>, InputError>>()?;
        parts.push(infer::to_tensor(&imgs, p));
        pb.inc(chunk.len() as u64);
    }
    pb.finish();
    let y: Vec<i64> = rows.iter().map(|&r| ds.samples[r].label as i64).collect();
    Ok(TensorSet {
        x: Tensor::cat(&parts, 0),
        y: Tensor::from_slice(&y).to_kind(Kind::Int64),
    })
}

/// One trained model's experiment.
pub struct RunOutput {
    /// `confidnet` or `deepgamblers`.
    pub method: &'static str,
    /// Its FD-Shifts experiment folder.
    pub dir: PathBuf,
    /// Its training curve.
    pub curve: Vec<EpochStats>,
}

/// Runs the recipe, writing `<out>/<method>/` experiment folders.
pub fn run(recipe: &Recipe, data: Option<&Path>, out: &Path) -> Result<(Design, Vec<RunOutput>), InputError> {
    let ds = crate::cli::load_dataset(&recipe.data.source, data)?;
    let design = shift::design(&ds, &recipe.plan()?)?;
    let p = recipe.preprocess();
    let train_set = load_tensors(&ds, &design.train, &p, "train")?;
    let val_set = load_tensors(&ds, &design.val, &p, "val")?;
    let classes = ds.classes.len() as i64;
    let (cnn, cnn_curve) = train::train_cnn(&train_set, &val_set, classes, false, &recipe.train)?;
    let confidnet = train::train_confidnet(cnn, &train_set, classes, &recipe.train)?;
    let (gambler, dg_curve) = train::train_cnn(&train_set, &val_set, classes, true, &recipe.train)?;
    let cfg = InferConfig {
        preprocess: p,
        batch: recipe.infer.batch,
        mc_passes: recipe.infer.mc,
        seed: recipe.shifts.seed,
    };
    let models: [(&'static str, &dyn Classifier, &str, Vec<EpochStats>); 2] = [
        ("confidnet", &confidnet, "tcp", cnn_curve),
        ("deepgamblers", &gambler, "dg", dg_curve),
    ];
    let mut outputs = Vec::new();
    for (method, model, ext, curve) in models {
        let rows = infer::run(model, &ds, &design, &cfg)?;
        let dir = out.join(method);
        crate::export::write_fdshifts(&dir, &rows, ext)?;
        let curve_path = dir.join("training_curve.json");
        std::fs::write(&curve_path, serde_json::to_string_pretty(&curve).expect("serialisable"))
            .map_err(|e| InputError::file(&curve_path, format!("cannot write ({e})")))?;
        outputs.push(RunOutput { method, dir, curve });
    }
    Ok((design, outputs))
}
