//! MedMNIST v2 `.npz` files (Yang et al., Sci. Data 2023; CC BY 4.0): keys `{train,val,test}_images`
//! (uint8 `(N,H,W)` grey or `(N,H,W,3)` RGB) and `{train,val,test}_labels` (`(N,)` or `(N,1)`).

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use super::{Dataset, ImageRef, Sample, Split};
use crate::error::InputError;
use crate::io::npz;

/// Class names of the MedMNIST sets whose names we know; others get `0`, `1`, ….
fn known_classes(stem: &str) -> Option<Vec<&'static str>> {
    Some(match stem {
        "breastmnist" => vec!["malignant", "normal/benign"],
        "pneumoniamnist" => vec!["normal", "pneumonia"],
        "retinamnist" => vec!["grade 0", "grade 1", "grade 2", "grade 3", "grade 4"],
        "dermamnist" => vec!["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"],
        _ => return None,
    })
}

/// Loads every split of a MedMNIST `.npz`.
pub fn load(path: &Path) -> Result<Dataset, InputError> {
    let mut samples = Vec::new();
    let mut max_label = 0usize;
    let mut greyscale = true;
    for (split, key) in [(Split::Train, "train"), (Split::Val, "val"), (Split::Test, "test")] {
        let images = npz::read_u8(path, &format!("{key}_images"))?;
        let (n, h, w, c) = match images.shape[..] {
            [n, h, w] => (n, h, w, 1),
            [n, h, w, 3] => {
                greyscale = false;
                (n, h, w, 3)
            }
            _ => {
                return Err(InputError::file(
                    path,
                    format!(
                        "{key}_images has shape {:?}, expected (N, H, W) or (N, H, W, 3)",
                        images.shape
                    ),
                ))
            }
        };
        let labels = npz::read(path, &format!("{key}_labels"))?;
        let ok_labels = matches!(labels.shape[..], [m] | [m, 1] if m == n);
        if !ok_labels {
            return Err(InputError::file(
                path,
                format!(
                    "{key}_labels has shape {:?}, expected ({n},) or ({n}, 1) (multi-label sets are not supported)",
                    labels.shape
                ),
            ));
        }
        let px = h * w * c;
        for i in 0..n {
            let l = labels.data[i];
            if l.fract() != 0.0 || l < 0.0 {
                return Err(InputError::file(
                    path,
                    format!("{key}_labels[{i}] = {l} is not a class index"),
                ));
            }
            let label = l as usize;
            max_label = max_label.max(label);
            let raw = &images.data[i * px..(i + 1) * px];
            let rgb: Vec<u8> = if c == 3 {
                raw.to_vec()
            } else {
                raw.iter().flat_map(|&v| [v, v, v]).collect()
            };
            let img = RgbImage::from_raw(w as u32, h as u32, rgb).expect("length checked by the shape");
            samples.push(Sample {
                id: format!("{key}/{i}"),
                image: ImageRef::Memory(Arc::new(img)),
                label,
                group: None,
                domain: None,
                split: Some(split),
                meta: Default::default(),
            });
        }
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let classes: Vec<String> = match known_classes(&stem) {
        Some(names) if names.len() > max_label => names.into_iter().map(String::from).collect(),
        Some(names) => {
            return Err(InputError::file(
                path,
                format!("label {max_label} is not a class of {stem} ({} classes)", names.len()),
            ))
        }
        None => (0..=max_label).map(|k| k.to_string()).collect(),
    };
    Ok(Dataset {
        name: stem,
        classes,
        samples,
        greyscale,
    })
}
