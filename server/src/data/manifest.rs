//! Users' own data: an image folder with a CSV manifest `path,label[,domain][,split][,group]`.
//! Paths are relative to the manifest's folder; labels are class names (classes sorted by name).

use std::path::Path;

use indexmap::IndexMap;

use super::{Dataset, ImageRef, Sample, Split};
use crate::error::InputError;

/// Loads a manifest. Every listed image must exist; columns other than the known ones become metadata.
pub fn load(csv_path: &Path) -> Result<Dataset, InputError> {
    let root = csv_path.parent().unwrap_or(Path::new("."));
    let mut rdr = csv::Reader::from_path(csv_path)
        .map_err(|e| InputError::file(csv_path, format!("cannot read the manifest ({e})")))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| InputError::file(csv_path, format!("bad header ({e})")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(path_col), Some(label_col)) = (col("path"), col("label")) else {
        return Err(InputError::file(
            csv_path,
            format!(
                "columns {}: a manifest needs `path` and `label` (optional: domain, split, group)",
                crate::error::list_some(&header, 8)
            ),
        ));
    };
    let known = ["path", "label", "domain", "split", "group"];
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| InputError::file(csv_path, format!("line {line}: {e}")))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let rel =
            get(Some(path_col)).ok_or_else(|| InputError::file(csv_path, format!("line {line}: empty `path`")))?;
        let label =
            get(Some(label_col)).ok_or_else(|| InputError::file(csv_path, format!("line {line}: empty `label`")))?;
        // Images live below the manifest's folder: the web app serves them from there and refuses
        // any path that leaves it, so such a path is refused here, where it can be fixed.
        let escapes = Path::new(&rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        if escapes {
            return Err(InputError::file(
                csv_path,
                format!("line {line}: path {rel:?} leaves the manifest's folder: list images by paths relative to it, and place the manifest at their common root"),
            ));
        }
        let path = root.join(&rel);
        if !path.is_file() {
            return Err(InputError::file(
                &path,
                format!("missing image listed on line {line} of {}", csv_path.display()),
            ));
        }
        let split = match get(col("split")) {
            None => None,
            Some(s) => Some(Split::parse(&s).ok_or_else(|| {
                InputError::file(csv_path, format!("line {line}: split {s:?} is not train, val or test"))
            })?),
        };
        let meta: IndexMap<String, String> = header
            .iter()
            .enumerate()
            .filter(|(_, h)| !known.contains(&h.as_str()))
            .map(|(j, h)| (h.clone(), rec.get(j).unwrap_or("").to_string()))
            .collect();
        rows.push((rel, path, label, get(col("domain")), split, get(col("group")), meta));
    }
    if rows.is_empty() {
        return Err(InputError::file(csv_path, "no rows"));
    }
    let mut classes: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    classes.sort();
    classes.dedup();
    let samples = rows
        .into_iter()
        .map(|(rel, path, label, domain, split, group, meta)| Sample {
            id: rel,
            image: ImageRef::File(path),
            label: classes.binary_search(&label).expect("collected above"),
            group,
            domain,
            split,
            meta,
        })
        .collect();
    let name = csv_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest".into());
    Ok(Dataset {
        name,
        classes,
        samples,
        greyscale: false,
    })
}
