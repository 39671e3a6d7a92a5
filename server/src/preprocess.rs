//! How an image becomes model input, without libtorch: the model's input size and normalisation
//! ([`Preprocess`]), the resize, and the per-row seed of a corruption. Inference, the study store and
//! the web app's image rendering share these.

use std::path::Path;

use image::imageops::{self, FilterType};
use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// How images become model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Input height and width.
    pub size: [u32; 2],
    /// Per-channel mean subtracted from [0, 1] intensities.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Preprocess {
    /// Reads the sidecar `<model>.json` (`{"size": [h, w], "mean": [...], "std": [...]}`) if present.
    pub fn sidecar(model: &Path) -> Result<Option<Self>, InputError> {
        let p = model.with_extension("json");
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| InputError::file(&p, format!("cannot read ({e})")))?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            InputError::file(
                &p,
                format!("expected {{\"size\": [h, w], \"mean\": [r, g, b], \"std\": [r, g, b]}} ({e})"),
            )
        })
    }
}

/// The seed of row `index`'s corruption (per image, so the web app can re-render it).
pub fn corruption_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Resizes to the model's input size (a no-op when it already has it).
pub fn resize(img: image::RgbImage, p: &Preprocess) -> image::RgbImage {
    let [h, w] = p.size;
    if img.dimensions() == (w, h) {
        img
    } else {
        imageops::resize(&img, w, h, FilterType::Triangle)
    }
}
