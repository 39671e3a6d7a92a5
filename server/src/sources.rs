//! Where each row of a study came from: the image (relative to the dataset's root folder), the
//! corruption applied, the sample's id, domain and metadata. `failscope infer` writes it as
//! `failscope_samples.json` beside the FD-Shifts files (FD-Shifts ignores it); import stores it per
//! sample; the web app renders a row's image exactly as the model saw it — resized, then corrupted
//! with the same seed — and never reads outside the root.

use std::path::{Component, Path, PathBuf};

use image::RgbImage;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, ImageRef};
use crate::error::{InputError, WriteError};
use crate::preprocess::{self, Preprocess};
use crate::shift::corrupt::Applied;
use crate::shift::Design;

/// The sidecar's file name inside an experiment folder.
pub const FILE: &str = "failscope_samples.json";

/// One row's provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSource {
    /// The dataset's id of the sample.
    pub id: String,
    /// Dataset row (seeds the corruption).
    pub index: usize,
    /// Image path relative to the root; `None` for in-memory images (MedMNIST arrays).
    pub image: Option<String>,
    /// The corruption applied, for corrupted test sets.
    pub corruption: Option<Applied>,
    /// Acquisition domain (site).
    pub domain: Option<String>,
    /// Further metadata (diagnosis, age, sex, …).
    pub meta: IndexMap<String, String>,
}

/// The provenance of every row of an experiment, in row order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSources {
    /// Images are read only below this folder.
    pub root: Option<PathBuf>,
    /// The model's input preprocessing (images are shown at its size).
    pub preprocess: Preprocess,
    /// Seed of the corruptions.
    pub seed: u64,
    /// Class names, in label order.
    #[serde(default)]
    pub classes: Vec<String>,
    /// One entry per row.
    pub rows: Vec<SampleSource>,
    /// In-memory images (MedMNIST) to write into the experiment folder under [`EMBEDDED`], by
    /// relative path; their rows' `image` points there and `root` is then the experiment folder.
    #[serde(skip)]
    pub embedded: Vec<(String, std::sync::Arc<RgbImage>)>,
}

/// Folder (inside the experiment) of in-memory images written out for the web app.
pub const EMBEDDED: &str = "images";

/// The deepest folder holding every file-backed image of the dataset.
fn common_root(ds: &Dataset) -> Option<PathBuf> {
    let mut root: Option<PathBuf> = None;
    for s in &ds.samples {
        let ImageRef::File(p) = &s.image else { continue };
        let p = p.canonicalize().unwrap_or_else(|_| p.clone());
        let parent = p.parent()?.to_path_buf();
        root = Some(match root {
            None => parent,
            Some(r) => r
                .components()
                .zip(parent.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    root
}

impl SampleSources {
    /// The rows of `infer::run` over `design` (validation, then each test set), with their images.
    pub fn of(ds: &Dataset, design: &Design, preprocess: &Preprocess, seed: u64) -> Self {
        let root = common_root(ds);
        let mut rows = Vec::new();
        let mut embedded = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let sets = std::iter::once((&design.val, None)).chain(design.test_sets.iter().map(|t| (&t.rows, t.corruption)));
        for (set, corruption) in sets {
            for &r in set {
                let s = &ds.samples[r];
                let image = match (&s.image, &root) {
                    (ImageRef::File(p), Some(root)) => {
                        let p = p.canonicalize().unwrap_or_else(|_| p.clone());
                        p.strip_prefix(root).ok().map(|rel| rel.to_string_lossy().into_owned())
                    }
                    (ImageRef::Memory(img), None) => {
                        let rel = format!("{EMBEDDED}/{r}.png");
                        if seen.insert(r) {
                            embedded.push((rel.clone(), img.clone()));
                        }
                        Some(rel)
                    }
                    _ => None,
                };
                rows.push(SampleSource {
                    id: s.id.clone(),
                    index: r,
                    image,
                    corruption: corruption.map(|(kind, severity)| Applied { kind, severity }),
                    domain: s.domain.clone(),
                    meta: s.meta.clone(),
                });
            }
        }
        Self {
            root,
            preprocess: preprocess.clone(),
            seed,
            classes: ds.classes.clone(),
            rows,
            embedded,
        }
    }

    /// Reads the sidecar of an experiment folder; `None` when absent. Without a recorded root the
    /// images were written into the experiment folder, which becomes the root.
    pub fn read(experiment: &Path) -> Result<Option<Self>, InputError> {
        let p = experiment.join(FILE);
        if !p.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(|e| InputError::file(&p, format!("cannot read ({e})")))?;
        let mut s: Self = serde_json::from_str(&text)
            .map_err(|e| InputError::file(&p, format!("not a failscope sample list ({e})")))?;
        if s.root.is_none() && s.rows.iter().any(|r| r.image.is_some()) {
            s.root = Some(experiment.canonicalize().unwrap_or_else(|_| experiment.to_path_buf()));
        }
        Ok(Some(s))
    }

    /// Writes the sidecar and the in-memory images into the (staging) experiment folder `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), WriteError> {
        let p = dir.join(FILE);
        let json = serde_json::to_vec(self).expect("plain fields serialise");
        std::fs::write(&p, json).map_err(|e| WriteError::new(&p, format!("cannot write ({e})")))?;
        if !self.embedded.is_empty() {
            let folder = dir.join(EMBEDDED);
            std::fs::create_dir_all(&folder).map_err(|e| WriteError::new(&folder, format!("cannot create ({e})")))?;
            for (rel, img) in &self.embedded {
                let p = dir.join(rel);
                img.save(&p)
                    .map_err(|e| WriteError::new(&p, format!("cannot write ({e})")))?;
            }
        }
        Ok(())
    }
}

/// Why an image cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The path leaves the study's data root (or is absolute): refused.
    #[error("refused: {0} is outside the study's data root")]
    Outside(String),
    /// No file-backed image (in-memory dataset) or no root recorded.
    #[error("this sample has no image file")]
    NoImage,
    /// The file is missing or unreadable.
    #[error("cannot read the image: {0}")]
    Unreadable(String),
}

/// The image of a row as the model saw it: `rel` below `root`, resized to the model's input and
/// corrupted as at inference. Paths with `..`, absolute paths and symlinks leading outside the
/// root are refused.
pub fn render(
    root: &Path,
    rel: &str,
    preprocess: &Preprocess,
    corruption: Option<Applied>,
    seed: u64,
    index: usize,
) -> Result<RgbImage, ImageError> {
    let relp = Path::new(rel);
    if relp.is_absolute() || relp.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(ImageError::Outside(rel.to_string()));
    }
    let root = root.canonicalize().map_err(|e| ImageError::Unreadable(e.to_string()))?;
    let full = root
        .join(relp)
        .canonicalize()
        .map_err(|e| ImageError::Unreadable(format!("{rel}: {e}")))?;
    if !full.starts_with(&root) {
        return Err(ImageError::Outside(rel.to_string()));
    }
    let img = image::open(&full)
        .map_err(|e| ImageError::Unreadable(format!("{rel}: {e}")))?
        .to_rgb8();
    let img = preprocess::resize(img, preprocess);
    Ok(match corruption {
        Some(c) => c.kind.apply(&img, c.severity, preprocess::corruption_seed(seed, index)),
        None => img,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leaving_the_root_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("data");
        std::fs::create_dir(&root).unwrap();
        image::RgbImage::new(4, 4).save(root.join("a.png")).unwrap();
        image::RgbImage::new(4, 4).save(d.path().join("secret.png")).unwrap();
        let p = Preprocess {
            size: [4, 4],
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        assert!(render(&root, "a.png", &p, None, 0, 0).is_ok());
        for bad in ["../secret.png", "/etc/passwd", "./../secret.png"] {
            assert!(
                matches!(render(&root, bad, &p, None, 0, 0), Err(ImageError::Outside(_))),
                "{bad}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.path().join("secret.png"), root.join("link.png")).unwrap();
            assert!(matches!(
                render(&root, "link.png", &p, None, 0, 0),
                Err(ImageError::Outside(_))
            ));
        }
    }
}
