//! Silent-failure hotspots: a clustering's clusters ranked by their silent failures, each with a
//! label a person can read ("pneumonia · corruption_gaussian_noise_5 · 92 % silent").

use crate::api::Clustering;

/// One cluster as a hotspot.
#[derive(Debug, Clone, PartialEq)]
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
            if let Some(k) = argmax(&s.test_set_mix) {
                parts.push(name(test_sets, k, "dataset"));
            }
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

/// The rows assigned to cluster `id`.
pub fn rows_of(c: &Clustering, id: u32) -> Vec<usize> {
    c.assignment
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
        assert_eq!(r[1].label, "pneumonia · dataset 2 · 92 % silent");
        assert_eq!(r[3].label, "0 % silent");
        assert_eq!(rows_of(&c, 2), [3, 5, 6]);
        assert!(rows_of(&c, 9).is_empty());
    }
}
