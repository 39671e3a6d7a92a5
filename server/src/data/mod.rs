//! Datasets: one sample = an image + a label + metadata (acquisition site, lesion/patient group, …).
//! Loaders for HAM10000, MedMNIST `.npz` files and image folders with a CSV manifest all produce a
//! [`Dataset`]; images are decoded lazily ([`Sample::load_rgb`]).

pub mod ham10000;
pub mod manifest;
pub mod medmnist;
pub mod split;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use indexmap::IndexMap;

use crate::error::InputError;

/// Where a sample's pixels are.
#[derive(Debug, Clone)]
pub enum ImageRef {
    /// An image file (JPEG, PNG, …), decoded on demand.
    File(PathBuf),
    /// Pixels already in memory (MedMNIST arrays), shared.
    Memory(Arc<RgbImage>),
}

/// A predefined split a sample belongs to (MedMNIST, or a manifest's `split` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (early stopping, Platt scaling: FD-Shifts' `val_tuning`).
    Val,
    /// Test data.
    Test,
}

impl Split {
    /// Parses `train` / `val` (`valid`, `validation`) / `test`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// One image with its label and metadata.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Stable identifier (file stem, `split/index`, …).
    pub id: String,
    /// The pixels.
    pub image: ImageRef,
    /// Class index into [`Dataset::classes`].
    pub label: usize,
    /// Samples of one group (lesion, patient) must stay in one split.
    pub group: Option<String>,
    /// Acquisition domain (site, scanner): what acquisition shifts hold out.
    pub domain: Option<String>,
    /// A predefined split, if the source has one.
    pub split: Option<Split>,
    /// Further metadata columns (fine-grained diagnosis, age, sex, …).
    pub meta: IndexMap<String, String>,
}

impl Sample {
    /// Decodes the image as 8-bit RGB (grey images are replicated to three channels).
    pub fn load_rgb(&self) -> Result<RgbImage, InputError> {
        match &self.image {
            ImageRef::Memory(img) => Ok((**img).clone()),
            ImageRef::File(path) => image::open(path)
                .map(|i| i.to_rgb8())
                .map_err(|e| InputError::file(path, format!("unreadable image ({e})"))),
        }
    }
}

/// A labelled image collection.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Display name.
    pub name: String,
    /// Class names; a sample's label indexes this list.
    pub classes: Vec<String>,
    /// The samples.
    pub samples: Vec<Sample>,
    /// Every image is greyscale (a one-channel source, e.g. an X-ray MedMNIST set). Image-folder
    /// datasets say `false`: their files are not decoded up front.
    pub greyscale: bool,
}

impl Dataset {
    /// Number of samples per class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in &self.samples {
            counts[s.label] += 1;
        }
        counts
    }
}

/// The data folder: `--data DIR` or `FAILSCOPE_DATA`. Never a built-in path.
pub fn data_dir(flag: Option<&Path>) -> Result<PathBuf, InputError> {
    let dir = flag
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("FAILSCOPE_DATA").map(PathBuf::from))
        .ok_or_else(|| InputError::item("data folder", "not given: pass --data DIR or set FAILSCOPE_DATA"))?;
    if !dir.is_dir() {
        return Err(InputError::file(&dir, "data folder does not exist"));
    }
    Ok(dir)
}

/// Resolves a dataset spec (see `failscope dataset --help`).
pub fn load(source: &str, data: Option<&Path>) -> Result<Dataset, InputError> {
    let in_data = |rel: &str| -> Result<PathBuf, InputError> { Ok(data_dir(data)?.join(rel)) };
    match source {
        "ham10000" => ham10000::load(&in_data("ham10000")?, ham10000::Task::Binary),
        "ham10000-7class" => ham10000::load(&in_data("ham10000")?, ham10000::Task::SevenClass),
        s if s.ends_with(".npz") => {
            let p = PathBuf::from(s);
            let p = if p.is_absolute() || p.exists() { p } else { in_data(s)? };
            medmnist::load(&p)
        }
        s if s.ends_with(".csv") => manifest::load(Path::new(s)),
        other => Err(InputError::item(
            "dataset",
            format!("unknown source {other:?}: expected ham10000, ham10000-7class, a .npz or a manifest .csv"),
        )),
    }
}
