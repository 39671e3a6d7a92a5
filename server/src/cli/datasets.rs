//! `failscope dataset`: dataset specs and their composition.

use crate::data::{self, Dataset};

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
