//! Silent-failure hotspots: a clustering's clusters ranked by their silent failures, each with a
//! label a person can read ("pneumonia · gaussian_noise ≥ 3 · 92 % silent"): the majority class,
//! the dominant shift (test sets grouped as `view::shifts` groups them; a corruption with the
//! severities that hold most of it) and the silent share.

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

/// The clusters of `c`, most silent failures first (then the higher rate, then the smaller id),
/// labelled with the names of `classes` and `test_sets` (by index; `class k` / `dataset k` beyond).
pub fn ranked(c: &Clustering, classes: &[String], test_sets: &[String]) -> Vec<Hotspot> {
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
            parts.extend(shift_label(&s.test_set_mix, test_sets));
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
        let r = ranked(&c, &classes, &sets);
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
}
