//! HAM10000 (Tschandl et al., Sci. Data 2018; CC BY-NC 4.0): `HAM10000_metadata.csv` + `images/`.
//! The `dataset` column is the acquisition site; `lesion_id` groups images of one lesion.

use std::path::Path;

use indexmap::IndexMap;

use super::{Dataset, ImageRef, Sample};
use crate::error::InputError;

/// The seven diagnoses, in the metadata's spelling.
pub const DIAGNOSES: [&str; 7] = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"];
/// The malignant diagnoses of the usual binary task.
pub const MALIGNANT: [&str; 3] = ["mel", "bcc", "akiec"];

/// Which classification task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// benign (nv, bkl, df, vasc) vs malignant (mel, bcc, akiec).
    Binary,
    /// The seven diagnoses.
    SevenClass,
}

const COLUMNS: [&str; 8] = [
    "lesion_id",
    "image_id",
    "dx",
    "dx_type",
    "age",
    "sex",
    "localization",
    "dataset",
];

/// Loads `dir/HAM10000_metadata.csv` with images at `dir/images/<image_id>.jpg` (checked to exist).
pub fn load(dir: &Path, task: Task) -> Result<Dataset, InputError> {
    let csv_path = dir.join("HAM10000_metadata.csv");
    let mut rdr =
        csv::Reader::from_path(&csv_path).map_err(|e| InputError::file(&csv_path, format!("cannot read ({e})")))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| InputError::file(&csv_path, format!("bad header ({e})")))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let missing: Vec<&str> = COLUMNS.iter().copied().filter(|c| col(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(InputError::file(
            &csv_path,
            format!("missing columns {missing:?} (expected {COLUMNS:?})"),
        ));
    }
    let classes: Vec<String> = match task {
        Task::Binary => vec!["benign".into(), "malignant".into()],
        Task::SevenClass => DIAGNOSES.iter().map(|d| d.to_string()).collect(),
    };
    let mut samples = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| InputError::file(&csv_path, format!("line {line}: {e}")))?;
        let field = |name: &str| rec.get(col(name).expect("checked above")).unwrap_or("").to_string();
        let dx = field("dx");
        let Some(dx_index) = DIAGNOSES.iter().position(|d| *d == dx) else {
            return Err(InputError::file(
                &csv_path,
                format!("line {line}: dx {dx:?} is not one of {DIAGNOSES:?}"),
            ));
        };
        let label = match task {
            Task::Binary => usize::from(MALIGNANT.contains(&dx.as_str())),
            Task::SevenClass => dx_index,
        };
        let image_id = field("image_id");
        let path = dir.join("images").join(format!("{image_id}.jpg"));
        if !path.is_file() {
            return Err(InputError::file(
                &path,
                format!("missing image for line {line} of {}", csv_path.display()),
            ));
        }
        let meta: IndexMap<String, String> = ["dx", "dx_type", "age", "sex", "localization"]
            .iter()
            .map(|k| (k.to_string(), field(k)))
            .collect();
        samples.push(Sample {
            id: image_id,
            image: ImageRef::File(path),
            label,
            group: Some(field("lesion_id")),
            domain: Some(field("dataset")),
            split: None,
            meta,
        });
    }
    let name = match task {
        Task::Binary => "ham10000-binary",
        Task::SevenClass => "ham10000-7class",
    };
    Ok(Dataset {
        name: name.into(),
        classes,
        samples,
        greyscale: false,
    })
}
