//! `failscope bench`: a recipe's studies over several seeds (stored as `<recipe>/seed-<k>/<model>`),
//! read back from the store and aggregated ([`aggregate`]) into one report ([`markdown`]) whose
//! findings are sentences computed from the numbers.

pub mod aggregate;
pub mod html;
pub mod markdown;

use std::collections::BTreeMap;

use crate::error::InputError;
use crate::store::reports::ReportFiles;
use crate::store::{Store, StoreError};
use aggregate::{BenchData, SeedRows};

/// The report's three renderings: Markdown, the HTML page (with the Markdown's tables) and the
/// result as JSON. `findings` are [`markdown::findings`] of `result`.
pub fn render(result: &aggregate::BenchResult, findings: &[String]) -> ReportFiles {
    let markdown = markdown::markdown(result, findings);
    let tables = markdown.split_once("## Test sets\n").map_or("", |(_, t)| t);
    let html = html::html(result, findings, tables);
    let json = serde_json::to_string(result).expect("a benchmark result serialises");
    ReportFiles {
        html,
        markdown,
        json: format!("{json}\n"),
    }
}

/// The store name of seed `seed`'s study of `method` for recipe `recipe`.
pub fn study_name(recipe: &str, seed: u64, method: &str) -> String {
    format!("{recipe}/seed-{seed}/{method}")
}

/// Why a benchmark cannot be read from the store.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
}

/// The studies of `recipe`'s `seeds` for `methods`, read from the store into [`BenchData`]; `source`
/// is the recipe's data source. Every study must exist, and all must hold the same test sets with
/// the same rows and labels.
pub fn load(
    store: &Store,
    recipe: &str,
    source: &str,
    seeds: &[u64],
    methods: &[&str],
) -> Result<BenchData, BenchError> {
    let mut ids: BTreeMap<(u64, usize), i64> = BTreeMap::new();
    for &seed in seeds {
        for (m, method) in methods.iter().enumerate() {
            let name = study_name(recipe, seed, method);
            let id = store.study_named(&name)?.ok_or_else(|| {
                InputError::item(
                    format!("study {name:?}"),
                    format!("not in the store: run `failscope bench` with seed {seed} first"),
                )
            })?;
            ids.insert((seed, m), id);
        }
    }
    let first = ids[&(seeds[0], 0)];
    let sets = store.test_sets(first)?;
    let records = store.samples(first)?;
    let classes = store.classes(first)?;
    // Columns: each model's CSFs, in the order its study stores them.
    let mut columns = Vec::new();
    for (m, _) in methods.iter().enumerate() {
        let scores = store.scores(ids[&(seeds[0], m)])?;
        columns.extend(scores.keys().map(|c| (m, c.clone())));
    }
    let rows_of = |k: usize| -> Vec<usize> {
        records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.dataset_idx == k as i64)
            .map(|(i, _)| i)
            .collect()
    };
    let by_set: Vec<Vec<usize>> = (0..sets.len()).map(rows_of).collect();
    // seed → set → rows
    let mut per_seed: Vec<Vec<SeedRows>> = Vec::new();
    for &seed in seeds {
        let mut correct_all = Vec::new();
        let mut scores_all = Vec::new();
        for (m, method) in methods.iter().enumerate() {
            let id = ids[&(seed, m)];
            let recs = store.samples(id)?;
            let same = recs.len() == records.len()
                && recs
                    .iter()
                    .zip(&records)
                    .all(|(a, b)| a.dataset_idx == b.dataset_idx && a.label == b.label);
            if !same
                || store
                    .test_sets(id)?
                    .iter()
                    .map(|t| &t.name)
                    .ne(sets.iter().map(|t| &t.name))
            {
                return Err(InputError::item(
                    format!("study {:?}", study_name(recipe, seed, method)),
                    format!(
                        "does not hold the same test sets and rows as {:?}: the seeds must share one shift design (the recipe's [shifts] seed)",
                        study_name(recipe, seeds[0], methods[0])
                    ),
                )
                .into());
            }
            correct_all.push(recs.iter().map(|r| r.label == r.predicted).collect::<Vec<bool>>());
            let scores = store.scores(id)?;
            for (mm, csf) in &columns {
                if *mm == m {
                    let v = scores.get(csf).ok_or_else(|| {
                        InputError::item(
                            format!("study {:?}", study_name(recipe, seed, method)),
                            format!("has no CSF {csf:?} (seed {} has it)", seeds[0]),
                        )
                    })?;
                    scores_all.push(v.iter().map(|x| f64::from(*x)).collect::<Vec<f64>>());
                }
            }
        }
        per_seed.push(
            by_set
                .iter()
                .map(|rows| SeedRows {
                    correct: correct_all
                        .iter()
                        .map(|c| rows.iter().map(|&i| c[i]).collect())
                        .collect(),
                    confids: scores_all
                        .iter()
                        .map(|s| rows.iter().map(|&i| s[i]).collect())
                        .collect(),
                })
                .collect(),
        );
    }
    let val = per_seed.iter().map(|s| s[0].clone()).collect();
    let test_sets = sets
        .iter()
        .enumerate()
        .skip(1)
        .map(|(k, t)| {
            (
                t.name.clone(),
                by_set[k].iter().map(|&i| records[i].label).collect(),
                per_seed.iter().map(|s| s[k].clone()).collect(),
            )
        })
        .collect();
    Ok(BenchData {
        recipe: recipe.to_string(),
        source: source.to_string(),
        seeds: seeds.to_vec(),
        studies: ids.values().copied().collect(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        columns,
        classes,
        val,
        sets: test_sets,
    })
}

#[cfg(test)]
mod tests {
    use super::aggregate::BenchResult;
    use super::markdown;

    /// Every committed report (`assets/reports/<recipe>/`): its Markdown and the README's summary
    /// block are what its JSON gives.
    #[test]
    fn the_readme_summary_is_the_committed_reports() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
        let mut seen = 0;
        for dir in std::fs::read_dir(root.join("assets/reports")).expect("assets/reports") {
            let dir = dir.expect("an entry").path();
            let json = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
            let r: BenchResult = serde_json::from_str(&json).expect("a benchmark result");
            let findings = markdown::findings(&r);
            let files = super::render(&r, &findings);
            assert_eq!(
                files.json,
                json,
                "{}: report.json is not in the current format",
                dir.display()
            );
            let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
            assert!(
                files.markdown == md,
                "{}: report.md is not what report.json gives",
                dir.display()
            );
            let block = markdown::summary(&r, &findings);
            assert!(
                readme.contains(&block),
                "README.md lacks the summary of {}: run `failscope bench … --readme README.md`",
                dir.display()
            );
            seen += 1;
        }
        assert!(seen > 0, "no committed report");
    }
}
