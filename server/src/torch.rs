//! TorchScript models through tch (libtorch). The contract: `forward(x)` returns logits, or a tuple
//! `(logits, features)`.

use std::path::Path;

use tch::{CModule, Device, IValue, Tensor};

use crate::error::InputError;

/// A loaded TorchScript model in inference mode.
pub struct TorchModel {
    module: CModule,
}

/// What `forward` returned.
pub struct Outputs {
    /// `(batch, classes)` logits.
    pub logits: Tensor,
    /// `(batch, dim)` penultimate features, when the model returns them.
    pub features: Option<Tensor>,
}

impl TorchModel {
    /// Loads `path` on the CPU; a file that is not TorchScript is an input error naming it.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let mut module = CModule::load_on_device(path, Device::Cpu).map_err(|e| {
            InputError::file(
                path,
                format!("not a TorchScript model ({})", first_line(&e.to_string())),
            )
        })?;
        module.set_eval();
        Ok(Self { module })
    }

    /// Runs `forward` without gradients.
    pub fn forward(&self, x: &Tensor) -> Result<Outputs, InputError> {
        let out = tch::no_grad(|| self.module.forward_is(&[IValue::Tensor(x.shallow_clone())]))
            .map_err(|e| InputError::item("model forward", first_line(&e.to_string())))?;
        match out {
            IValue::Tensor(logits) => Ok(Outputs { logits, features: None }),
            IValue::Tuple(mut items) if items.len() == 2 => {
                let (f, l) = (items.pop(), items.pop());
                match (l, f) {
                    (Some(IValue::Tensor(logits)), Some(IValue::Tensor(features))) => Ok(Outputs {
                        logits,
                        features: Some(features),
                    }),
                    _ => Err(InputError::item(
                        "model forward",
                        "expected a tuple of two tensors (logits, features)",
                    )),
                }
            }
            _ => Err(InputError::item(
                "model forward",
                "expected a tensor of logits or a tuple (logits, features)",
            )),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
