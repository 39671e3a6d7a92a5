//! Training in Rust with tch (CPU): a small CNN with dropout (so MC-dropout works), and the two
//! trained CSFs of the benchmark — DeepGamblers (a reservation output, Liu et al. 2019) and
//! ConfidNet (an auxiliary head regressing the true-class probability, Corbière et al. 2019).
//! Seeded; class-weighted cross-entropy (medical sets are imbalanced); early stopping on the
//! validation loss with the best weights restored; the training curve is returned.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

pub mod checkpoint;

use crate::data::Dataset;
use crate::error::{Error, InputError};
use crate::infer::{self, Classifier};
use crate::preprocess::{self, Preprocess};
use crate::torch::Outputs;

/// Width of the penultimate features.
pub const FEATURES: i64 = 64;

/// A small CNN: three conv–BatchNorm–ReLU blocks, global pooling, dropout, a linear classifier.
/// With `extra_output` the classifier has one more output: DeepGamblers' reservation.
pub struct Cnn {
    vs: nn::VarStore,
    body: nn::SequentialT,
    fc: nn::Linear,
    classes: i64,
    extra_output: bool,
    dropout: f64,
}

fn block(p: &nn::Path<'_>, i: i64, o: i64) -> nn::SequentialT {
    let conv = nn::ConvConfig {
        padding: 1,
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::conv2d(p / "conv", i, o, 3, conv))
        .add(nn::batch_norm2d(p / "bn", o, Default::default()))
        .add_fn(|x| x.relu())
}

impl Cnn {
    /// A fresh network for `classes` classes on `device` (seed with `tch::manual_seed` first).
    pub fn new(classes: i64, extra_output: bool, dropout: f64, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let body = nn::seq_t()
            .add(block(&(&root / "b1"), 3, 16))
            .add_fn(|x| x.max_pool2d_default(2))
            .add(block(&(&root / "b2"), 16, 32))
            .add_fn(|x| x.max_pool2d_default(2))
            .add(block(&(&root / "b3"), 32, FEATURES))
            .add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1));
        let fc = nn::linear(
            &root / "fc",
            FEATURES,
            classes + i64::from(extra_output),
            Default::default(),
        );
        Self {
            vs,
            body,
            fc,
            classes,
            extra_output,
            dropout,
        }
    }

    /// Penultimate features (on the network's device); `train` puts BatchNorm in training mode.
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        self.body.forward_t(&x.to_device(self.vs.device()), train)
    }

    /// Raw outputs (C, or C + 1 with the reservation); `dropout` samples the dropout mask.
    pub fn head(&self, features: &Tensor, dropout: bool) -> Tensor {
        features.dropout(self.dropout, dropout).apply(&self.fc)
    }

    fn outputs(&self, x: &Tensor, dropout: bool) -> Outputs {
        tch::no_grad(|| {
            let f = self.features(x, false);
            let raw = self.head(&f, dropout);
            Outputs {
                logits: raw.narrow(1, 0, self.classes).to_device(Device::Cpu),
                features: Some(f.to_device(Device::Cpu)),
            }
        })
    }
}

impl Classifier for Cnn {
    /// The class outputs of `fc` (DeepGamblers' reservation output left out).
    fn last_layer(&self) -> Option<(Tensor, Tensor)> {
        let b = self.fc.bs.as_ref()?;
        let to_cpu = |t: &Tensor| t.narrow(0, 0, self.classes).detach().to_device(Device::Cpu).copy();
        Some((to_cpu(&self.fc.ws), to_cpu(b)))
    }

    fn forward(&self, x: &Tensor) -> Result<Outputs, InputError> {
        Ok(self.outputs(x, false))
    }

    /// MC-dropout: dropout samples, BatchNorm uses its running statistics. Dropout sits after the
    /// features, so they are computed once and only the head runs per pass.
    fn forward_mc(&self, x: &Tensor, passes: usize) -> Result<Vec<Outputs>, InputError> {
        Ok(tch::no_grad(|| {
            let f = self.features(x, false);
            let on_cpu = f.to_device(Device::Cpu);
            (0..passes)
                .map(|_| Outputs {
                    logits: self.head(&f, true).narrow(1, 0, self.classes).to_device(Device::Cpu),
                    features: Some(on_cpu.shallow_clone()),
                })
                .collect()
        }))
    }

    /// DeepGamblers' confidence: 1 − p(reservation).
    fn external(&self, x: &Tensor) -> Option<Tensor> {
        self.extra_output.then(|| {
            tch::no_grad(|| {
                let raw = self.head(&self.features(x, false), false);
                let p: Tensor = 1.0 - raw.softmax(-1, Kind::Float).select(1, self.classes);
                p.to_device(Device::Cpu)
            })
        })
    }
}

/// ConfidNet: a head on the (frozen) classifier's features predicting the true-class probability.
pub struct ConfidNet {
    /// The trained classifier.
    pub cnn: Cnn,
    _vs: nn::VarStore,
    head: nn::SequentialT,
}

impl Classifier for ConfidNet {
    fn last_layer(&self) -> Option<(Tensor, Tensor)> {
        self.cnn.last_layer()
    }

    fn forward(&self, x: &Tensor) -> Result<Outputs, InputError> {
        self.cnn.forward(x)
    }

    fn forward_mc(&self, x: &Tensor, passes: usize) -> Result<Vec<Outputs>, InputError> {
        self.cnn.forward_mc(x, passes)
    }

    fn external(&self, x: &Tensor) -> Option<Tensor> {
        Some(tch::no_grad(|| {
            self.head
                .forward_t(&self.cnn.features(x, false), false)
                .sigmoid()
                .squeeze_dim(1)
                .to_device(Device::Cpu)
        }))
    }
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Maximum epochs of the classifier.
    pub epochs: usize,
    /// Early stopping: epochs without a better validation loss.
    pub patience: usize,
    /// Batch size.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Dropout probability before the classifier.
    pub dropout: f64,
    /// DeepGamblers' reward o (the reservation pays 1/o).
    pub reward: f64,
    /// Epochs of plain cross-entropy before the gambler's loss.
    pub pretrain_epochs: usize,
    /// Epochs of the ConfidNet head (the classifier frozen).
    pub confidnet_epochs: usize,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Where to train (a flag, not part of a recipe).
    #[serde(skip)]
    pub device: Compute,
}

/// The device to train and run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compute {
    /// The CPU (default).
    #[default]
    Cpu,
    /// The first CUDA device (needs an NVIDIA driver and the CUDA libraries of the torch wheel).
    Cuda,
}

impl Compute {
    /// The tch device, or a named error when CUDA is requested but libtorch sees no GPU.
    pub fn device(self) -> Result<Device, InputError> {
        match self {
            Compute::Cpu => Ok(Device::Cpu),
            Compute::Cuda => match crate::torch::load_cuda() {
                Ok(true) => Ok(Device::Cuda(0)),
                Ok(false) => Err(InputError::item(
                    "--device cuda",
                    "libtorch's CUDA backend is loaded but sees no CUDA device (is the NVIDIA driver installed?)",
                )),
                Err(why) => Err(InputError::item(
                    "--device cuda",
                    format!(
                        "no CUDA: {why} (the README's \"Training on its own\" section lists what a GPU machine needs)"
                    ),
                )),
            },
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 12,
            patience: 3,
            batch: 64,
            lr: 2e-3,
            dropout: 0.3,
            reward: 2.2,
            pretrain_epochs: 3,
            confidnet_epochs: 4,
            seed: 0,
            device: Compute::Cpu,
        }
    }
}

/// One epoch of the training curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochStats {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation balanced accuracy.
    pub val_balanced_accuracy: f64,
}

/// Images and labels in memory: `(n, 3, h, w)` floats and `(n,)` class indices.
pub struct TensorSet {
    /// Images.
    pub x: Tensor,
    /// Labels.
    pub y: Tensor,
}

impl TensorSet {
    /// The images of `rows` of `ds`, resized and normalised as `p` says, with their labels, under a
    /// progress bar named `what`.
    pub fn load(ds: &Dataset, rows: &[usize], p: &Preprocess, what: &str) -> Result<Self, InputError> {
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
                .map(|&r| Ok(preprocess::resize(ds.samples[r].load_rgb()?, p)))
                .collect::<Result<Vec<_>, InputError>>()?;
            parts.push(infer::to_tensor(&imgs, p));
            pb.inc(chunk.len() as u64);
        }
        pb.finish();
        let y: Vec<i64> = rows.iter().map(|&r| ds.samples[r].label as i64).collect();
        Ok(Self {
            x: Tensor::cat(&parts, 0),
            y: Tensor::from_slice(&y).to_kind(Kind::Int64),
        })
    }
}

fn class_weights(y: &Tensor, classes: i64) -> Tensor {
    let counts = y.bincount::<Tensor>(None, classes).to_kind(Kind::Float).clamp_min(1.0);
    let n = y.size()[0] as f64;
    n / (counts * classes as f64)
}

/// Weighted cross-entropy of `logits` (first `classes` columns).
fn weighted_ce(logits: &Tensor, y: &Tensor, w: &Tensor) -> Tensor {
    let logp = logits.log_softmax(-1, Kind::Float);
    let picked = logp.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    let wy = w.index_select(0, y);
    -(picked * &wy).sum(Kind::Float) / wy.sum(Kind::Float)
}

/// DeepGamblers' loss: −log(p_y + p_reservation / o), class-weighted.
fn gambler_loss(raw: &Tensor, y: &Tensor, w: &Tensor, classes: i64, reward: f64) -> Tensor {
    let p = raw.softmax(-1, Kind::Float);
    let py = p.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    let pres = p.select(1, classes);
    let wy = w.index_select(0, y);
    -((py + pres / reward).clamp_min(1e-12).log() * &wy).sum(Kind::Float) / wy.sum(Kind::Float)
}

fn balanced_accuracy(pred: &Tensor, y: &Tensor, classes: i64) -> f64 {
    let mut accs = Vec::new();
    for c in 0..classes {
        let mask = y.eq(c);
        let n = mask.sum(Kind::Int64).int64_value(&[]);
        if n > 0 {
            let hit = (pred.eq_tensor(y).logical_and(&mask)).sum(Kind::Int64).int64_value(&[]);
            accs.push(hit as f64 / n as f64);
        }
    }
    accs.iter().sum::<f64>() / accs.len().max(1) as f64
}

fn bar(epochs: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(epochs as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] epoch {pos}/{len} ({elapsed})")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// libtorch failing during training (an optimiser step, a backward pass): not the input's fault.
fn libtorch(e: tch::TchError) -> Error {
    Error::Internal(format!("training: libtorch failed ({e})"))
}

/// Trains a CNN (with the reservation output when `gambler`); returns it with its training curve.
pub fn train_cnn(
    train: &TensorSet,
    val: &TensorSet,
    classes: i64,
    gambler: bool,
    cfg: &TrainConfig,
) -> Result<(Cnn, Vec<EpochStats>), Error> {
    tch::manual_seed(cfg.seed as i64);
    let dev = cfg.device.device()?;
    let net = Cnn::new(classes, gambler, cfg.dropout, dev);
    let val = TensorSet {
        x: val.x.to_device(dev),
        y: val.y.to_device(dev),
    };
    let mut opt = nn::Adam::default().build(&net.vs, cfg.lr).map_err(libtorch)?;
    let w = class_weights(&train.y, classes).to_device(dev);
    let n = train.y.size()[0];
    let mut curve = Vec::new();
    let (mut best, mut best_loss, mut stale) = (Vec::new(), f64::INFINITY, 0);
    let pb = bar(cfg.epochs, if gambler { "deepgamblers" } else { "cnn" });
    for epoch in 1..=cfg.epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let (mut total, mut batches) = (0.0, 0);
        for start in (0..n).step_by(cfg.batch) {
            let idx = perm.narrow(0, start, cfg.batch.min((n - start) as usize) as i64);
            let mut x = train.x.index_select(0, &idx);
            if Tensor::rand([1], (Kind::Float, Device::Cpu)).double_value(&[0]) < 0.5 {
                x = x.flip([3]); // horizontal flip
            }
            let y = train.y.index_select(0, &idx).to_device(dev);
            let raw = net.head(&net.features(&x, true), true);
            let loss = if gambler && epoch > cfg.pretrain_epochs {
                gambler_loss(&raw, &y, &w, classes, cfg.reward)
            } else {
                weighted_ce(&raw.narrow(1, 0, classes), &y, &w)
            };
            opt.backward_step(&loss);
            total += loss.double_value(&[]);
            batches += 1;
        }
        let (val_loss, bacc) = tch::no_grad(|| {
            let raw = net.head(&net.features(&val.x, false), false);
            let logits = raw.narrow(1, 0, classes);
            (
                weighted_ce(&logits, &val.y, &w).double_value(&[]),
                balanced_accuracy(&logits.argmax(1, false), &val.y, classes),
            )
        });
        curve.push(EpochStats {
            epoch,
            train_loss: total / f64::from(batches.max(1)),
            val_loss,
            val_balanced_accuracy: bacc,
        });
        pb.inc(1);
        // The gambler's objective changes after pre-training: only compare losses from then on.
        let comparable = !gambler || epoch > cfg.pretrain_epochs;
        if comparable && val_loss < best_loss {
            best_loss = val_loss;
            stale = 0;
            best.clear();
            net.vs.save_to_stream(&mut best).map_err(libtorch)?;
        } else if comparable {
            stale += 1;
            if stale >= cfg.patience {
                break;
            }
        }
    }
    pb.finish();
    let mut net = net;
    if !best.is_empty() {
        net.vs.load_from_stream(std::io::Cursor::new(best)).map_err(libtorch)?;
    }
    Ok((net, curve))
}

/// ConfidNet's head: features → 32 → 1 (a logit of the true-class probability).
fn confidnet_head(root: &nn::Path<'_>) -> nn::SequentialT {
    nn::seq_t()
        .add(nn::linear(root / "h1", FEATURES, 32, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(root / "h2", 32, 1, Default::default()))
}

/// ConfidNet stage 2: the classifier frozen, a head on its features regresses the true-class
/// probability with MSE (sigmoid output).
pub fn train_confidnet(cnn: Cnn, train: &TensorSet, classes: i64, cfg: &TrainConfig) -> Result<ConfidNet, Error> {
    tch::manual_seed(cfg.seed as i64 + 1);
    let vs = nn::VarStore::new(cnn.vs.device());
    let head = confidnet_head(&vs.root());
    let mut opt = nn::Adam::default().build(&vs, cfg.lr).map_err(libtorch)?;
    let n = train.y.size()[0];
    let pb = bar(cfg.confidnet_epochs, "confidnet");
    for _ in 0..cfg.confidnet_epochs {
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        for start in (0..n).step_by(cfg.batch) {
            let idx = perm.narrow(0, start, cfg.batch.min((n - start) as usize) as i64);
            let x = train.x.index_select(0, &idx);
            let y = train.y.index_select(0, &idx).to_device(cnn.vs.device());
            let (f, tcp) = tch::no_grad(|| {
                let f = cnn.features(&x, false);
                let p = cnn.head(&f, false).narrow(1, 0, classes).softmax(-1, Kind::Float);
                (f, p.gather(1, &y.unsqueeze(1), false).squeeze_dim(1))
            });
            let pred = head.forward_t(&f, true).sigmoid().squeeze_dim(1);
            opt.backward_step(&(pred - tcp).square().mean(Kind::Float));
        }
        pb.inc(1);
    }
    pb.finish();
    Ok(ConfidNet { cnn, _vs: vs, head })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes told apart by the mean colour of the image: any working trainer separates them.
    fn toy(n: i64, seed: i64) -> TensorSet {
        tch::manual_seed(seed);
        let y = Tensor::randint(2, [n], (Kind::Int64, Device::Cpu));
        let shift = y.to_kind(Kind::Float).view([n, 1, 1, 1]) * 1.5 - 0.75;
        let x = Tensor::randn([n, 3, 16, 16], (Kind::Float, Device::Cpu)) * 0.5 + shift;
        TensorSet { x, y }
    }

    #[test]
    fn cnn_learns_deepgamblers_abstains_and_confidnet_tracks_correctness() {
        let (train, val) = (toy(256, 1), toy(128, 2));
        let cfg = TrainConfig {
            epochs: 6,
            batch: 32,
            pretrain_epochs: 2,
            confidnet_epochs: 3,
            ..TrainConfig::default()
        };
        let (cnn, curve) = train_cnn(&train, &val, 2, false, &cfg).unwrap();
        assert!(!curve.is_empty() && curve.len() <= 6);
        assert!(
            curve.iter().map(|e| e.val_balanced_accuracy).fold(0.0, f64::max) > 0.9,
            "{curve:?}"
        );
        let out = cnn.forward(&val.x).unwrap();
        assert_eq!(out.logits.size(), [128, 2]);
        assert_eq!(out.features.unwrap().size(), [128, FEATURES]);
        let mc = cnn.forward_mc(&val.x, 3).unwrap();
        assert!(
            (&mc[0].logits - &mc[1].logits).abs().max().double_value(&[]) > 0.0,
            "dropout samples"
        );
        let (dg, _) = train_cnn(&train, &val, 2, true, &cfg).unwrap();
        let conf = dg.external(&val.x).unwrap();
        assert_eq!(conf.size(), [128]);
        assert!(conf.min().double_value(&[]) >= 0.0 && conf.max().double_value(&[]) <= 1.0);
        let cn = train_confidnet(cnn, &train, 2, &cfg).unwrap();
        let tcp = cn.external(&val.x).unwrap();
        assert_eq!(tcp.size(), [128]);
        assert!(
            tcp.mean(Kind::Float).double_value(&[]) > 0.5,
            "mostly right, so the predicted TCP is high"
        );
    }
}
