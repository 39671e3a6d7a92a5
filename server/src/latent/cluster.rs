//! Clustering of a study's samples with linfa-clustering (k-means — per class, SF-Visuals' default
//! — Gaussian mixture, DBSCAN), or into silent-failure regions by density on a layout
//! (`failscope_shared::analysis::regions`), and per-cluster statistics: class and test-set mix, accuracy, silent
//! failures at a coverage threshold, and the representative sample nearest to the centroid.

use failscope_shared::analysis::{rc, regions};
use failscope_shared::api::{ClusterStats, Clustering};
use linfa::traits::{Fit, Predict, Transformer};
use linfa::DatasetBase;
use linfa_clustering::{Dbscan, GaussianMixtureModel, KMeans};
use ndarray::{Array2, ArrayView2, Axis};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

use crate::error::InputError;

pub use failscope_shared::api::Method;

/// What each sample is, for the statistics.
pub struct Samples<'a> {
    /// True class per row.
    pub labels: &'a [i64],
    /// Predicted class per row.
    pub predicted: &'a [i64],
    /// FD-Shifts dataset index per row.
    pub dataset_idx: &'a [i64],
    /// The chosen CSF's confidence per row (NaN = none).
    pub confidence: &'a [f32],
}

impl Samples<'_> {
    /// Whether row `r` is a silent failure: wrong, with a confidence at or above `threshold`.
    pub fn is_silent(&self, r: usize, threshold: f64) -> bool {
        rc::is_silent(self.labels[r] != self.predicted[r], self.confidence[r], threshold)
    }
}

fn bad(problem: impl Into<String>) -> InputError {
    InputError::item("clustering", problem)
}

/// Cluster ids (−1 = noise) of the rows of `x`. Density regions are of the silent failures of
/// `s` at the confidence `threshold` ([`coverage_threshold`]).
pub fn assign(
    x: ArrayView2<'_, f32>,
    s: &Samples<'_>,
    method: &Method,
    seed: u64,
    threshold: f64,
) -> Result<Vec<i32>, InputError> {
    let n = x.nrows();
    let labels = s.labels;
    super::check_finite(x)?;
    method.check_for(n).map_err(|e| super::param(e.under("method")))?;
    if let Method::Density { grid, bandwidth } = *method {
        let silent: Vec<bool> = (0..n).map(|r| s.is_silent(r, threshold)).collect();
        let coords: Vec<f32> = x.iter().copied().collect();
        return Ok(regions::assign(&coords, x.ncols(), &silent, grid, bandwidth));
    }
    let x64 = x.mapv(f64::from);
    match *method {
        Method::KMeans { k, per_class } => {
            if !per_class {
                return kmeans(x64, k, seed).map(|a| a.into_iter().map(|c| c as i32).collect());
            }
            let mut out = vec![-1i32; n];
            let mut next = 0i32;
            let mut classes: Vec<i64> = labels.to_vec();
            classes.sort_unstable();
            classes.dedup();
            for class in classes {
                let rows: Vec<usize> = (0..n).filter(|&r| labels[r] == class).collect();
                // A class with fewer samples than k gets one cluster per sample.
                let kc = k.min(rows.len());
                let a = kmeans(x64.select(Axis(0), &rows), kc, seed)?;
                for (r, c) in rows.iter().zip(a) {
                    out[*r] = next + c as i32;
                }
                next += kc as i32;
            }
            Ok(out)
        }
        Method::Gmm { k } => {
            let ds = DatasetBase::from(x64);
            let model = GaussianMixtureModel::params(k)
                .with_rng(Xoshiro256Plus::seed_from_u64(seed))
                .n_runs(1)
                .tolerance(1e-3)
                .reg_covariance(1e-4)
                .max_n_iterations(200)
                .fit(&ds)
                .map_err(|e| bad(format!("Gaussian mixture with {k} components failed ({e})")))?;
            Ok(model.predict(ds.records()).iter().map(|c| *c as i32).collect())
        }
        Method::Dbscan { eps, min_points } => {
            let labels = Dbscan::params(min_points)
                .tolerance(eps)
                .transform(&x64)
                .map_err(|e| bad(format!("DBSCAN failed ({e})")))?;
            Ok(labels.iter().map(|c| c.map_or(-1, |c| c as i32)).collect())
        }
        Method::Density { .. } => unreachable!("density regions returned above"),
    }
}

fn kmeans(x: Array2<f64>, k: usize, seed: u64) -> Result<Vec<usize>, InputError> {
    let ds = DatasetBase::from(x);
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(3)
        .max_n_iterations(300)
        .tolerance(1e-4)
        .fit(&ds)
        .map_err(|e| bad(format!("k-means with k = {k} failed ({e})")))?;
    Ok(model.predict(ds.records()).to_vec())
}

/// The silent-failure threshold of `s` ([`failscope_shared::analysis::rc::coverage_threshold`]).
pub fn coverage_threshold(s: &Samples<'_>, coverage: f64) -> f64 {
    failscope_shared::analysis::rc::coverage_threshold(s.confidence, s.dataset_idx, coverage)
}

/// Statistics of every cluster of `assignment` over the clustering space `x`, silent failures
/// counted at the confidence `threshold` ([`coverage_threshold`]).
pub fn summarise(
    x: ArrayView2<'_, f32>,
    assignment: Vec<i32>,
    s: &Samples<'_>,
    csf: &str,
    threshold: f64,
) -> Clustering {
    let n_clusters = assignment.iter().copied().max().map_or(0, |m| (m + 1).max(0) as usize);
    let n_classes = s.labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let n_sets = s.dataset_idx.iter().copied().max().map_or(0, |m| m as usize + 1);
    let clusters = (0..n_clusters)
        .map(|c| {
            let rows: Vec<usize> = (0..assignment.len()).filter(|&r| assignment[r] == c as i32).collect();
            let mut class_mix = vec![0u64; n_classes];
            let mut test_set_mix = vec![0u64; n_sets];
            let (mut failures, mut silent) = (0u64, 0u64);
            for &r in &rows {
                class_mix[s.labels[r] as usize] += 1;
                test_set_mix[s.dataset_idx[r] as usize] += 1;
                failures += u64::from(s.labels[r] != s.predicted[r]);
                silent += u64::from(s.is_silent(r, threshold));
            }
            let centroid = x.select(Axis(0), &rows).mean_axis(Axis(0));
            let representative = centroid.map_or(0, |m| {
                rows.iter()
                    .copied()
                    .min_by(|&a, &b| {
                        let d = |r: usize| x.row(r).iter().zip(&m).map(|(v, c)| (v - c).powi(2)).sum::<f32>();
                        d(a).total_cmp(&d(b))
                    })
                    .unwrap_or(0)
            });
            let size = rows.len() as u64;
            ClusterStats {
                id: c as u32,
                size,
                class_mix,
                test_set_mix,
                accuracy: if size == 0 {
                    0.0
                } else {
                    (size - failures) as f64 / size as f64
                },
                failures,
                silent_failures: silent,
                representative: representative as u64,
            }
        })
        .collect();
    Clustering {
        assignment,
        clusters,
        csf: csf.to_string(),
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Rows of `labels`, all predicted right, confidence 1, one test set.
    fn samples(labels: &[i64]) -> Samples<'_> {
        Samples {
            labels,
            predicted: labels,
            dataset_idx: &[1; 8][..labels.len()],
            confidence: &[1.0; 8][..labels.len()],
        }
    }

    fn blobs() -> Array2<f32> {
        // Two tight groups on a line: rows 0–3 near 0, rows 4–7 near 10.
        array![[0.0f32], [0.1], [0.2], [0.5], [10.0], [10.1], [10.2], [10.3]]
    }

    #[test]
    fn kmeans_gmm_and_dbscan_find_the_two_groups() {
        let x = blobs();
        let labels = [0, 0, 0, 0, 1, 1, 1, 1];
        for method in [
            Method::KMeans { k: 2, per_class: false },
            Method::Gmm { k: 2 },
            Method::Dbscan {
                eps: 0.5,
                min_points: 2,
            },
        ] {
            let a = assign(x.view(), &samples(&labels), &method, 1, 0.5).unwrap();
            assert!(
                a[..4].iter().all(|c| *c == a[0]) && a[4..].iter().all(|c| *c == a[4]),
                "{method:?}: {a:?}"
            );
            assert_ne!(a[0], a[4], "{method:?}");
        }
        // Per class with k = 2: four clusters, ids class-major.
        let a = assign(
            x.view(),
            &samples(&labels),
            &Method::KMeans { k: 2, per_class: true },
            1,
            0.5,
        )
        .unwrap();
        assert!(
            a[..4].iter().all(|c| *c < 2) && a[4..].iter().all(|c| (2..4).contains(c)),
            "{a:?}"
        );
    }

    #[test]
    fn statistics_by_hand() {
        let x = blobs();
        let labels = [0, 0, 0, 0, 1, 1, 1, 1];
        let predicted = [0, 0, 1, 1, 1, 1, 1, 0];
        let dataset_idx = [1, 1, 1, 1, 1, 2, 2, 2];
        let confidence = [0.9f32, 0.8, 0.95, 0.3, 0.7, 0.6, 0.99, 0.85];
        let s = Samples {
            labels: &labels,
            predicted: &predicted,
            dataset_idx: &dataset_idx,
            confidence: &confidence,
        };
        // i.i.d. rows 0–4: confidences 0.95 0.9 0.8 0.7 0.3; 80 % coverage keeps 4 → threshold 0.7.
        let threshold = coverage_threshold(&s, 0.8);
        assert_eq!(threshold, f64::from(0.7f32));
        let c = summarise(x.view(), vec![0, 0, 0, 0, 1, 1, 1, 1], &s, "det_mcp", threshold);
        assert_eq!(c.threshold, f64::from(0.7f32));
        let a = &c.clusters[0];
        // Cluster 0: rows 0–3; failures rows 2 (0.95 ≥ 0.7: silent) and 3 (0.3: not silent).
        assert_eq!((a.size, a.failures, a.silent_failures, a.accuracy), (4, 2, 1, 0.5));
        assert_eq!(a.class_mix, vec![4, 0]);
        assert_eq!(a.test_set_mix, vec![0, 4, 0]);
        // Centroid 0.2: row 2 sits on it.
        assert_eq!(a.representative, 2);
        let b = &c.clusters[1];
        // Cluster 1: rows 4–7; failure row 7 (0.85 ≥ 0.7: silent).
        assert_eq!((b.failures, b.silent_failures), (1, 1));
        assert_eq!(b.test_set_mix, vec![0, 1, 3]);
    }

    #[test]
    fn k_larger_than_the_points_is_named() {
        let x = blobs();
        let e = assign(
            x.view(),
            &samples(&[0; 8]),
            &Method::KMeans { k: 9, per_class: false },
            0,
            0.5,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("method.k") && e.to_string().contains("9 clusters for 8 points"),
            "{e}"
        );
    }
}
