//! `failscope dataset`: dataset specs and their composition.

use std::path::{Path, PathBuf};

use crate::data::{self, ham10000, manifest, medmnist, Dataset};
use crate::error::InputError;

/// Resolves a dataset spec (see `failscope dataset --help`).
pub fn load_dataset(source: &str, data: Option<&Path>) -> Result<Dataset, InputError> {
    let in_data = |rel: &str| -> Result<PathBuf, InputError> { Ok(data::data_dir(data)?.join(rel)) };
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

fn count_by<'a>(items: impl Iterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut counts: indexmap::IndexMap<String, usize> = indexmap::IndexMap::new();
    for i in items {
        *counts.entry(i.to_string()).or_default() += 1;
    }
    counts.sort_keys();
    counts.into_iter().collect()
}

/// A dataset's composition as text: classes, domains, predefined splits.
pub fn dataset_summary(ds: &Dataset) -> String {
    let mut out = format!(
        "{}: {} samples, {} classes\n",
        ds.name,
        ds.samples.len(),
        ds.classes.len()
    );
    let line = |(k, n): &(String, usize)| format!("  {k:<24}{n:>8}\n");
    out.push_str("classes\n");
    for (c, n) in ds.classes.iter().zip(ds.class_counts()) {
        out.push_str(&line(&(c.clone(), n)));
    }
    let domains = count_by(ds.samples.iter().filter_map(|s| s.domain.as_deref()));
    if !domains.is_empty() {
        out.push_str("domains\n");
        domains.iter().for_each(|d| out.push_str(&line(d)));
    }
    let splits = count_by(ds.samples.iter().filter_map(|s| s.split).map(|s| match s {
        data::Split::Train => "train",
        data::Split::Val => "val",
        data::Split::Test => "test",
    }));
    if !splits.is_empty() {
        out.push_str("splits\n");
        splits.iter().for_each(|d| out.push_str(&line(d)));
    }
    out
}
