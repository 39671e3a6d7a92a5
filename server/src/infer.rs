//! Batched TorchScript inference over a study design: every row of validation and of every test
//! set (corrupted where the test set says so), logits, features and MC-dropout passes, with a
//! progress bar. Memory holds only the outputs, never more than one batch of images.

use indicatif::{ProgressBar, ProgressStyle};
use tch::{Kind, Tensor};

use crate::data::Dataset;
use crate::error::InputError;
use crate::export::ExportRows;
pub use crate::preprocess::{corruption_seed, resize, Preprocess};
use crate::shift::Design;
use crate::torch::{Outputs, TorchModel};

/// A model inference can run: TorchScript models and the ones trained here.
pub trait Classifier {
    /// Eval-mode outputs, without gradients.
    fn forward(&self, x: &Tensor) -> Result<Outputs, InputError>;
    /// `passes` MC-dropout passes (BatchNorm in eval mode).
    fn forward_mc(&self, x: &Tensor, passes: usize) -> Result<Vec<Outputs>, InputError>;
    /// The model's own confidence per image (DeepGamblers, ConfidNet), if it has one.
    fn external(&self, _x: &Tensor) -> Option<Tensor> {
        None
    }
    /// The last layer `logits = W·features + b` over the class outputs, as `((c, d) W, (c,) b)`,
    /// when it is known: what FD-Shifts HEAD's feature-based CSFs (maha, vim, ReAct) need.
    fn last_layer(&self) -> Option<(Tensor, Tensor)> {
        None
    }
}

impl Classifier for TorchModel {
    fn forward(&self, x: &Tensor) -> Result<Outputs, InputError> {
        TorchModel::forward(self, x)
    }

    fn forward_mc(&self, x: &Tensor, passes: usize) -> Result<Vec<Outputs>, InputError> {
        TorchModel::forward_mc(self, x, passes)
    }

    fn last_layer(&self) -> Option<(Tensor, Tensor)> {
        TorchModel::last_layer(self)
    }
}

/// Inference settings.
#[derive(Debug, Clone)]
pub struct InferConfig {
    /// Image preprocessing.
    pub preprocess: Preprocess,
    /// Images per forward pass.
    pub batch: usize,
    /// MC-dropout passes (0 = none).
    pub mc_passes: usize,
    /// Seed of the corruptions.
    pub seed: u64,
}

/// Normalises images of the model's input size into a `(b, 3, h, w)` float tensor.
pub fn to_tensor(images: &[image::RgbImage], p: &Preprocess) -> Tensor {
    let [h, w] = p.size;
    let mut data = Vec::with_capacity(images.len() * 3 * (h * w) as usize);
    for img in images {
        debug_assert_eq!(img.dimensions(), (w, h));
        for ch in 0..3 {
            data.extend(
                img.pixels()
                    .map(|px| (f32::from(px.0[ch]) / 255.0 - p.mean[ch]) / p.std[ch]),
            );
        }
    }
    Tensor::from_slice(&data).reshape([images.len() as i64, 3, i64::from(h), i64::from(w)])
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    let t = t.to_kind(Kind::Float).contiguous().view([-1]);
    Vec::<f32>::try_from(&t).expect("a contiguous float tensor converts")
}

/// Runs the model over validation (dataset_idx 0), the i.i.d. test set (1) and every other test set
/// (2, 3, …), in that order.
pub fn run(model: &dyn Classifier, ds: &Dataset, design: &Design, cfg: &InferConfig) -> Result<ExportRows, InputError> {
    let c = ds.classes.len();
    // (rows, dataset_idx, corruption)
    let mut jobs = vec![(design.val.clone(), 0i64, None)];
    jobs.extend(
        design
            .test_sets
            .iter()
            .enumerate()
            .map(|(k, t)| (t.rows.clone(), k as i64 + 1, t.corruption)),
    );
    let total: usize = jobs.iter().map(|j| j.0.len()).sum();
    let last_layer = model.last_layer().map(|(w, b)| (to_vec(&w), to_vec(&b)));
    // With a known last layer, the training rows' features too (FD-Shifts' train_features.npz).
    let train_rows = if last_layer.is_some() { design.train.len() } else { 0 };
    let bar = ProgressBar::new((total + train_rows) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message("inference");
    let mut out = ExportRows {
        num_classes: c,
        logits: Vec::with_capacity(total * c),
        labels: Vec::with_capacity(total),
        dataset_idx: Vec::with_capacity(total),
        mc_logits: (cfg.mc_passes > 0).then(|| (Vec::with_capacity(total * c * cfg.mc_passes), cfg.mc_passes)),
        features: None,
        train_features: None,
        last_layer: None,
        external: None,
        shifted_sets: design.test_sets.iter().skip(1).map(|t| t.name.clone()).collect(),
        sources: Some(crate::sources::SampleSources::of(ds, design, &cfg.preprocess, cfg.seed)),
    };
    // Corrupted test sets reuse the i.i.d. images: decode and resize each once. Corruptions apply at
    // the model's input size (their parameters are relative to the image size).
    let mut cache: std::collections::HashMap<usize, image::RgbImage> = std::collections::HashMap::new();
    for (rows, idx, corruption) in jobs {
        for batch in rows.chunks(cfg.batch.max(1)) {
            let images = batch
                .iter()
                .map(|&r| {
                    let img = match cache.get(&r) {
                        Some(img) => img.clone(),
                        None => {
                            let img = resize(ds.samples[r].load_rgb()?, &cfg.preprocess);
                            if idx == 1 {
                                cache.insert(r, img.clone());
                            }
                            img
                        }
                    };
                    Ok(match corruption {
                        Some((kind, severity)) => kind.apply(&img, severity, corruption_seed(cfg.seed, r)),
                        None => img,
                    })
                })
                .collect::<Result<Vec<_>, InputError>>()?;
            let x = to_tensor(&images, &cfg.preprocess);
            let o = model.forward(&x)?;
            let size = o.logits.size();
            if size != [batch.len() as i64, c as i64] {
                return Err(InputError::item(
                    "model output",
                    format!(
                        "logits have shape {size:?}, expected [{}, {c}]: the dataset has {c} classes",
                        batch.len()
                    ),
                ));
            }
            out.logits.extend(to_vec(&o.logits));
            if let Some(f) = &o.features {
                let d = f.size().get(1).copied().unwrap_or(0) as usize;
                let (buf, _) = out.features.get_or_insert_with(|| (Vec::with_capacity(total * d), d));
                buf.extend(to_vec(&f.view([batch.len() as i64, -1])));
            }
            if let Some(e) = model.external(&x) {
                out.external
                    .get_or_insert_with(|| Vec::with_capacity(total))
                    .extend(to_vec(&e));
            }
            if let Some((mc, m)) = out.mc_logits.as_mut() {
                let passes = model.forward_mc(&x, *m)?;
                // (m, b, c) → FD-Shifts' (b, c, m).
                let stacked = Tensor::stack(&passes.iter().map(|p| p.logits.shallow_clone()).collect::<Vec<_>>(), 0);
                mc.extend(to_vec(&stacked.permute([1, 2, 0])));
            }
            out.labels.extend(batch.iter().map(|&r| ds.samples[r].label as i64));
            out.dataset_idx.extend(std::iter::repeat_n(idx, batch.len()));
            bar.inc(batch.len() as u64);
        }
    }
    if let (Some((w, b)), Some((_, d))) = (last_layer, out.features.as_ref()) {
        let d = *d;
        if w.len() == b.len() * d && b.len() == c {
            bar.set_message("train");
            let mut feats = Vec::with_capacity(design.train.len() * d);
            for batch in design.train.chunks(cfg.batch.max(1)) {
                let images = batch
                    .iter()
                    .map(|&r| Ok(resize(ds.samples[r].load_rgb()?, &cfg.preprocess)))
                    .collect::<Result<Vec<_>, InputError>>()?;
                if let Some(f) = model.forward(&to_tensor(&images, &cfg.preprocess))?.features {
                    feats.extend(to_vec(&f.view([batch.len() as i64, -1])));
                }
                bar.inc(batch.len() as u64);
            }
            let labels = design.train.iter().map(|&r| ds.samples[r].label as i64).collect();
            out.train_features = Some((feats, labels));
            out.last_layer = Some((w, b));
        }
    }
    bar.finish_with_message("done");
    Ok(out)
}
