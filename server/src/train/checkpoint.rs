//! Checkpoints of models trained here: a folder with `model.json` (what the model is and how its
//! input is prepared), the weights as safetensors and the training curve. `failscope train` writes
//! them (atomically), `failscope infer --model <folder>` loads them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn;

use super::{confidnet_head, Cnn, ConfidNet, EpochStats};
use crate::error::{Error, InputError, WriteError};
use crate::infer::Classifier;
use crate::preprocess::Preprocess;

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// `confidnet` (CNN + ConfidNet head, confidence `tcp`) or `deepgamblers` (confidence `dg`).
    pub method: String,
    /// Class names, in output order.
    pub classes: Vec<String>,
    /// Dropout probability (MC-dropout samples it).
    pub dropout: f64,
    /// Input size and normalisation.
    pub preprocess: Preprocess,
}

/// A trained model of either method.
pub enum Trained {
    /// CNN with a ConfidNet head.
    ConfidNet(ConfidNet),
    /// CNN with DeepGamblers' reservation output.
    DeepGamblers(Cnn),
}

impl Trained {
    /// The model for inference.
    pub fn classifier(&self) -> &dyn Classifier {
        match self {
            Trained::ConfidNet(m) => m,
            Trained::DeepGamblers(m) => m,
        }
    }

    /// FD-Shifts' `ext_confid_name` of the model's own confidence.
    pub fn ext_name(&self) -> &'static str {
        match self {
            Trained::ConfidNet(_) => "tcp",
            Trained::DeepGamblers(_) => "dg",
        }
    }

    /// `confidnet` or `deepgamblers`.
    pub fn method(&self) -> &'static str {
        match self {
            Trained::ConfidNet(_) => "confidnet",
            Trained::DeepGamblers(_) => "deepgamblers",
        }
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError::new(path, format!("cannot write ({e})"))
}

/// Writes the checkpoint folder `dir` (which must not exist), atomically.
pub fn save(dir: &Path, model: &Trained, card: &ModelCard, curve: &[EpochStats]) -> Result<(), Error> {
    let tmp = crate::io::atomic::staging(dir)?;
    let at = |name: &str| tmp.path().join(name);
    let (cnn, head) = match model {
        Trained::ConfidNet(m) => (&m.cnn, Some(&m._vs)),
        Trained::DeepGamblers(m) => (m, None),
    };
    cnn.vs
        .save(at("cnn.safetensors"))
        .map_err(|e| io(&at("cnn.safetensors"), e))?;
    if let Some(vs) = head {
        vs.save(at("head.safetensors"))
            .map_err(|e| io(&at("head.safetensors"), e))?;
    }
    let json = serde_json::to_string_pretty(card).expect("plain fields serialise");
    std::fs::write(at("model.json"), json).map_err(|e| io(&at("model.json"), e))?;
    let curve = serde_json::to_string_pretty(curve).expect("plain fields serialise");
    std::fs::write(at("training_curve.json"), curve).map_err(|e| io(&at("training_curve.json"), e))?;
    Ok(crate::io::atomic::publish(tmp, dir)?)
}

/// Whether `path` is a checkpoint folder (rather than a TorchScript file).
pub fn is_checkpoint(path: &Path) -> bool {
    path.join("model.json").is_file()
}

/// Loads a checkpoint folder onto `device`.
pub fn load(dir: &Path, device: tch::Device) -> Result<(Trained, ModelCard), InputError> {
    let card_path = dir.join("model.json");
    let text =
        std::fs::read_to_string(&card_path).map_err(|e| InputError::file(&card_path, format!("cannot read ({e})")))?;
    let card: ModelCard = serde_json::from_str(&text).map_err(|e| {
        InputError::file(
            &card_path,
            format!("expected {{\"method\", \"classes\", \"dropout\", \"preprocess\"}} ({e})"),
        )
    })?;
    let classes = card.classes.len() as i64;
    let weights = |name: &str, vs: &mut nn::VarStore| {
        let p = dir.join(name);
        vs.load(&p)
            .map_err(|e| InputError::file(&p, format!("weights do not fit a {} model ({e})", card.method)))
    };
    let model = match card.method.as_str() {
        "confidnet" => {
            let mut cnn = Cnn::new(classes, false, card.dropout, device);
            weights("cnn.safetensors", &mut cnn.vs)?;
            let mut vs = nn::VarStore::new(device);
            let head = confidnet_head(&vs.root());
            weights("head.safetensors", &mut vs)?;
            Trained::ConfidNet(ConfidNet { cnn, _vs: vs, head })
        }
        "deepgamblers" => {
            let mut cnn = Cnn::new(classes, true, card.dropout, device);
            weights("cnn.safetensors", &mut cnn.vs)?;
            Trained::DeepGamblers(cnn)
        }
        other => {
            return Err(InputError::file(
                &card_path,
                format!("method {other:?}: expected \"confidnet\" or \"deepgamblers\""),
            ))
        }
    };
    Ok((model, card))
}
