//! Silent-failure hotspots: a clustering's clusters ranked by their silent failures, each with a
//! label a person can read ("pneumonia · gaussian_noise ≥ 3 · 92 % silent"): the majority class,
//! the dominant shift (test sets grouped as `view::shifts` groups them; a corruption with the
//! severities that hold most of it), a metadata value that marks it out (`domain site3` when 80 %
//! of the region is from site 3 but the study is not) and the silent share.

use crate::api::Clustering;
use crate::view::shifts::{classify, Family};

/// One cluster as a hotspot.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hotspot {
    /// Cluster id (as in [`Clustering::assignment`]).
    pub id: u32,
    /// Majority class, dominant test set and the share of silent failures.
    pub label: String,
    /// Samples.
    pub size: u64,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Wrong predictions at or above the silent-failure threshold.
    pub silent: u64,
    /// `silent / size`.
    pub silent_rate: f64,
    /// Sample nearest the centroid.
    pub representative: u64,
}

/// Index of the largest count (the first of equals); `None` when all are zero.
fn argmax(counts: &[u64]) -> Option<usize> {
    let (i, max) = counts
        .iter()
        .enumerate()
        .fold((0, 0), |best, (i, &c)| if c > best.1 { (i, c) } else { best });
    (max > 0).then_some(i)
}

/// The dominant shift among the rows counted by `mix` (per dataset index): the group of test
/// sets (a site, a subtype, a corruption type, …) holding most of them; for a corruption, the
/// lowest severity from which up holds 80 % of the group's rows (`gaussian_noise ≥ 3`, or
/// `gaussian_noise 5` when that is the highest).
fn shift_label(mix: &[u64], test_sets: &[String]) -> Option<String> {
    /// A group's family, name, rows and rows per severity.
    type Tally = (Family, String, u64, Vec<(u8, u64)>);
    let mut groups: Vec<Tally> = Vec::new();
    for (k, &rows) in mix.iter().enumerate().filter(|(_, r)| **r > 0) {
        let set = classify(test_sets.get(k).map_or(&format!("dataset {k}"), |n| n));
        let at = match groups.iter().position(|g| g.0 == set.family && g.1 == set.group) {
            Some(at) => at,
            None => {
                groups.push((set.family, set.group.clone(), 0, Vec::new()));
                groups.len() - 1
            }
        };
        groups[at].2 += rows;
        if let Some(sev) = set.severity {
            groups[at].3.push((sev, rows));
        }
    }
    let best = groups.iter().map(|g| g.2).max()?;
    let (family, group, rows, mut severities) = groups.into_iter().find(|g| g.2 == best)?;
    Some(match family {
        Family::Iid => group,
        Family::Corruption if !severities.is_empty() => {
            severities.sort_unstable();
            let top = severities.last().map_or(0, |s| s.0);
            // Walk down from the highest severity until 80 % of the group's rows are covered.
            let mut covered = 0;
            let mut from = top;
            for &(sev, r) in severities.iter().rev() {
                covered += r;
                from = sev;
                if covered * 5 >= rows * 4 {
                    break;
                }
            }
            if from == top {
                format!("{group} {top}")
            } else {
                format!("{group} ≥ {from}")
            }
        }
        Family::Corruption => group,
        other => format!("{} {group}", other.label()),
    })
}

/// A categorical metadata column: a code per row (0: none) and the categories by code.
#[derive(Clone, Copy)]
pub struct Meta<'a> {
    /// Its key (`domain`, `sex`, …).
    pub key: &'a str,
    /// Category code per row; 0 is "none".
    pub codes: &'a [u16],
    /// Category names by code (`categories[0]` is "(none)").
    pub categories: &'a [String],
}

/// Codes and categories of per-row values: categories sorted, `(none)` first with code 0.
/// `None` when there are more than `max` distinct values (not a category: ids, ages) or none.
pub fn categorise(values: &[Option<&str>], max: usize) -> Option<(Vec<u16>, Vec<String>)> {
    let mut cats: Vec<&str> = values.iter().flatten().copied().collect();
    cats.sort_unstable();
    cats.dedup();
    if cats.is_empty() || cats.len() > max.min(usize::from(u16::MAX) - 1) {
        return None;
    }
    let codes = values
        .iter()
        .map(|v| v.and_then(|v| cats.binary_search(&v).ok()).map_or(0, |i| i as u16 + 1))
        .collect();
    let categories = std::iter::once("(none)".to_string())
        .chain(cats.iter().map(|c| c.to_string()))
        .collect();
    Some((codes, categories))
}

/// Labels of metadata values that mark each cluster out: per column, the value holding at least
/// 80 % of the cluster's rows when it holds less than 80 % of all rows (a study from one site
/// says nothing per region). By cluster id; at most two per cluster, in column order.
fn meta_labels(c: &Clustering, meta: &[Meta]) -> Vec<Vec<String>> {
    let k = c.clusters.iter().map(|s| s.id as usize + 1).max().unwrap_or(0);
    let mut out = vec![Vec::new(); k];
    for m in meta.iter().filter(|m| m.codes.len() == c.assignment.len()) {
        let n_cats = m.categories.len().max(1);
        let mut per = vec![0u64; k * n_cats];
        let mut all = vec![0u64; n_cats];
        for (&a, &code) in c.assignment.iter().zip(m.codes) {
            let code = usize::from(code).min(n_cats - 1);
            all[code] += 1;
            if a >= 0 && (a as usize) < k {
                per[a as usize * n_cats + code] += 1;
            }
        }
        let total: u64 = all.iter().sum();
        for s in &c.clusters {
            let row = &per[s.id as usize * n_cats..(s.id as usize + 1) * n_cats];
            let size: u64 = row.iter().sum();
            let best = (1..n_cats).max_by_key(|&j| (row[j], std::cmp::Reverse(j)));
            if let Some(j) = best {
                let (here, there) = (row[j] * 5 >= size * 4 && size > 0, all[j] * 5 < total * 4);
                if here && there && out[s.id as usize].len() < 2 {
                    out[s.id as usize].push(format!("{} {}", m.key, m.categories[j]));
                }
            }
        }
    }
    out
}

/// The clusters of `c`, most silent failures first (then the higher rate, then the smaller id),
/// labelled with the names of `classes` and `test_sets` (by index; `class k` / `dataset k` beyond)
/// and the values of `meta` that mark a cluster out.
pub fn ranked(c: &Clustering, classes: &[String], test_sets: &[String], meta: &[Meta]) -> Vec<Hotspot> {
    let marks = meta_labels(c, meta);
    let name = |names: &[String], k: usize, what: &str| names.get(k).cloned().unwrap_or_else(|| format!("{what} {k}"));
    let mut out: Vec<Hotspot> = c
        .clusters
        .iter()
        .map(|s| {
            let rate = if s.size == 0 {
                0.0
            } else {
                s.silent_failures as f64 / s.size as f64
            };
            let mut parts = Vec::new();
            if let Some(k) = argmax(&s.class_mix) {
                parts.push(name(classes, k, "class"));
            }
            let shift = shift_label(&s.test_set_mix, test_sets);
            // A value the shift already names (`acquisition site3`, `domain site3`) once.
            let marks = marks.get(s.id as usize).into_iter().flatten();
            let new: Vec<String> = marks
                .filter(|m| {
                    let value = m.split_once(' ').map_or(m.as_str(), |(_, v)| v);
                    !shift.as_deref().is_some_and(|l| l.split(' ').any(|w| w == value))
                })
                .cloned()
                .collect();
            parts.extend(shift);
            parts.extend(new);
            parts.push(format!("{:.0} % silent", 100.0 * rate));
            Hotspot {
                id: s.id,
                label: parts.join(" · "),
                size: s.size,
                accuracy: s.accuracy,
                silent: s.silent_failures,
                silent_rate: rate,
                representative: s.representative,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.silent
            .cmp(&a.silent)
            .then(b.silent_rate.total_cmp(&a.silent_rate))
            .then(a.id.cmp(&b.id))
    });
    out
}

/// The rows `assignment` (a clustering's, or the hotspot ranking's) gives to cluster `id`.
pub fn rows_of(assignment: &[i32], id: u32) -> Vec<usize> {
    assignment
        .iter()
        .enumerate()
        .filter(|(_, a)| i64::from(**a) == i64::from(id))
        .map(|(r, _)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ClusterStats;

    fn stats(id: u32, size: u64, silent: u64, class_mix: Vec<u64>, test_set_mix: Vec<u64>) -> ClusterStats {
        ClusterStats {
            id,
            size,
            class_mix,
            test_set_mix,
            accuracy: 0.5,
            failures: silent,
            silent_failures: silent,
            representative: u64::from(id),
        }
    }

    #[test]
    fn the_most_silent_cluster_comes_first_with_a_readable_label() {
        let c = Clustering {
            assignment: vec![0, 1, 1, 2, -1, 2, 2],
            clusters: vec![
                stats(0, 100, 3, vec![90, 10], vec![0, 100]),
                stats(1, 50, 46, vec![2, 48], vec![0, 5, 45]),
                stats(2, 48, 46, vec![48, 0], vec![0, 48]),
                stats(3, 10, 0, vec![0, 0], vec![0, 0]),
            ],
            csf: "det_mcp".into(),
            threshold: 0.9,
        };
        let classes = vec!["normal".to_string(), "pneumonia".to_string()];
        let sets = vec!["val_tuning".to_string(), "iid_study".to_string()];
        let r = ranked(&c, &classes, &sets, &[]);
        // 46 silent each: the higher rate (46 of 48 against 46 of 50) first.
        assert_eq!(r.iter().map(|h| h.id).collect::<Vec<_>>(), [2, 1, 0, 3]);
        assert_eq!(r[0].label, "normal · iid_study · 96 % silent");
        assert_eq!(r[1].label, "pneumonia · in-class dataset 2 · 92 % silent");
        assert_eq!(r[3].label, "0 % silent");
        assert_eq!(rows_of(&c.assignment, 2), [3, 5, 6]);
        // Shifts by family: a corruption at the severities holding 80 % of it, a site by name.
        let sets: Vec<String> = [
            "val_tuning",
            "iid_study",
            "in_class_study_corruption_gaussian_noise_1",
            "in_class_study_corruption_gaussian_noise_3",
            "in_class_study_corruption_gaussian_noise_5",
            "in_class_study_acquisition_site2",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shift_label(&[0, 0, 2, 30, 60, 40], &sets).unwrap(),
            "gaussian_noise ≥ 3"
        );
        assert_eq!(shift_label(&[0, 0, 2, 3, 60, 40], &sets).unwrap(), "gaussian_noise 5");
        assert_eq!(shift_label(&[0, 0, 2, 3, 6, 40], &sets).unwrap(), "acquisition site2");
        assert_eq!(shift_label(&[0, 9, 0, 0, 0, 0], &sets).unwrap(), "iid_study");
        assert_eq!(shift_label(&[0; 6], &sets), None);
        assert!(rows_of(&c.assignment, 9).is_empty());
    }

    #[test]
    fn a_metadata_value_that_marks_a_region_out_joins_its_label() {
        // Ten rows: cluster 0 rows 0–4, cluster 1 rows 5–9.
        let c = Clustering {
            assignment: vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            clusters: vec![stats(0, 5, 5, vec![5], vec![0, 5]), stats(1, 5, 0, vec![5], vec![0, 5])],
            csf: "det_mcp".into(),
            threshold: 0.9,
        };
        let site: Vec<Option<&str>> = ["b", "b", "b", "b", "a", "a", "a", "b", "a", "a"].map(Some).to_vec();
        let (codes, cats) = categorise(&site, 20).unwrap();
        assert_eq!(
            (codes[0], codes[4], &cats[..]),
            (2, 1, &["(none)", "a", "b"].map(String::from)[..])
        );
        // Every row female: true of the study, so of no region.
        let sex = vec![Some("female"); 10];
        let (sex_codes, sex_cats) = categorise(&sex, 20).unwrap();
        let meta = [
            Meta {
                key: "domain",
                codes: &codes,
                categories: &cats,
            },
            Meta {
                key: "sex",
                codes: &sex_codes,
                categories: &sex_cats,
            },
        ];
        let classes = vec!["nevus".to_string()];
        let sets = vec!["val_tuning".to_string(), "iid_study".to_string()];
        let r = ranked(&c, &classes, &sets, &meta);
        // Cluster 0: 4 of 5 from site b (80 %), b is 5 of 10 overall. Cluster 1: 4 of 5 from a.
        assert_eq!(r[0].label, "nevus · iid_study · domain b · 100 % silent");
        assert_eq!(r[1].label, "nevus · iid_study · domain a · 0 % silent");
        // A value the shift label already names is not repeated.
        let sets = vec!["val_tuning".to_string(), "in_class_study_acquisition_b".to_string()];
        assert_eq!(
            ranked(&c, &classes, &sets, &meta)[0].label,
            "nevus · acquisition b · 100 % silent"
        );
        // Too many distinct values are not a category.
        let ids: Vec<String> = (0..10).map(|i| format!("id{i}")).collect();
        let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        assert!(categorise(&ids, 5).is_none());
        assert!(categorise(&[None, None], 5).is_none());
    }
}
