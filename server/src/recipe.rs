//! `failscope run <recipe.toml>`: a whole study end to end — dataset, shifts, training (CNN with
//! dropout + ConfidNet head, and a DeepGamblers CNN), inference on every test set, FD-Shifts
//! experiment folders, metrics, and the study store.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::data::split::Fractions;
use crate::error::{Error, InputError, WriteError};
use crate::infer::{self, InferConfig};
use crate::preprocess::Preprocess;
use crate::shift::corrupt::Corruption;
use crate::shift::{self, Design, ShiftPlan};
use crate::train::checkpoint::{self, ModelCard, Trained};
use crate::train::{self, Compute, EpochStats, TrainConfig};

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
        toml::from_str(&text)
            .map_err(|e| InputError::file(path, format!("not a valid recipe: {}", describe(&text, &e))))
    }

    /// The shift plan of `[shifts]` (corruption names checked).
    pub fn plan(&self) -> Result<ShiftPlan, InputError> {
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

    /// Input size and normalisation.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            size: self.data.size,
            mean: self.data.mean,
            std: self.data.std,
        }
    }
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

/// A recipe's trained models with the data they were trained on.
pub struct Training {
    /// The dataset.
    pub ds: crate::data::Dataset,
    /// Its shift design.
    pub design: Design,
    /// ConfidNet and DeepGamblers models with their training curves.
    pub models: Vec<(Trained, Vec<EpochStats>)>,
}

/// The training half of a recipe: dataset → shift design → CNN + ConfidNet head, and a
/// DeepGamblers CNN, on `device`.
pub fn train(recipe: &Recipe, data: Option<&Path>, device: Compute) -> Result<Training, Error> {
    let ds = crate::data::load(&recipe.data.source, data)?;
    let design = shift::design(&ds, &recipe.plan()?)?;
    let p = recipe.preprocess();
    let train_set = train::TensorSet::load(&ds, &design.train, &p, "train")?;
    let val_set = train::TensorSet::load(&ds, &design.val, &p, "val")?;
    let classes = ds.classes.len() as i64;
    let cfg = TrainConfig {
        device,
        ..recipe.train.clone()
    };
    let (cnn, cnn_curve) = train::train_cnn(&train_set, &val_set, classes, false, &cfg)?;
    let confidnet = train::train_confidnet(cnn, &train_set, classes, &cfg)?;
    let (gambler, dg_curve) = train::train_cnn(&train_set, &val_set, classes, true, &cfg)?;
    Ok(Training {
        ds,
        design,
        models: vec![
            (Trained::ConfidNet(confidnet), cnn_curve),
            (Trained::DeepGamblers(gambler), dg_curve),
        ],
    })
}

/// Saves every model of `t` as a checkpoint folder `<dir>/<method>/`; returns the folders.
pub fn save_checkpoints(t: &Training, recipe: &Recipe, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    t.models
        .iter()
        .map(|(model, curve)| {
            let card = ModelCard {
                method: model.method().to_string(),
                classes: t.ds.classes.clone(),
                dropout: recipe.train.dropout,
                preprocess: recipe.preprocess(),
            };
            let path = dir.join(model.method());
            checkpoint::save(&path, model, &card, curve)?;
            Ok(path)
        })
        .collect()
}

/// Runs the recipe: trains, saves checkpoints under `<out>/checkpoints/`, and writes one
/// `<out>/<method>/` experiment folder per model.
pub fn run(
    recipe: &Recipe,
    data: Option<&Path>,
    out: &Path,
    device: Compute,
) -> Result<(Design, Vec<RunOutput>), Error> {
    let t = train(recipe, data, device)?;
    save_checkpoints(&t, recipe, &out.join("checkpoints"))?;
    let cfg = InferConfig {
        preprocess: recipe.preprocess(),
        batch: recipe.infer.batch,
        mc_passes: recipe.infer.mc,
        seed: recipe.shifts.seed,
    };
    let mut outputs = Vec::new();
    for (model, curve) in t.models {
        let rows = infer::run(model.classifier(), &t.ds, &t.design, &cfg)?;
        let method = model.method();
        let dir = out.join(method);
        crate::export::write_fdshifts(&dir, &rows, model.ext_name())?;
        let curve_path = dir.join("training_curve.json");
        std::fs::write(&curve_path, serde_json::to_string_pretty(&curve).expect("serialisable"))
            .map_err(|e| WriteError::new(&curve_path, format!("cannot write ({e})")))?;
        outputs.push(RunOutput { method, dir, curve });
    }
    Ok((t.design, outputs))
}

/// A TOML error with where it is: `line L, column C` and the line itself, so a wrong value is
/// found without counting.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_string();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let source = text.lines().nth(line - 1).unwrap_or("").trim();
    format!("{} (line {line}, column {column}: `{source}`)", e.message())
}
