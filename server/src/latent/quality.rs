//! Embedding quality: trustworthiness (Venna & Kaski 2001), as scikit-learn's
//! `sklearn.manifold.trustworthiness` defines it (Euclidean, self excluded).

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use super::knn;

/// Trustworthiness at `k` of `embedded` (rows matching `original`): 1 − a penalty for every point
/// among a row's `k` embedded neighbours that is not among its `k` original neighbours, by how far
/// down the original ranking it is. 1 is perfect; a random projection of clustered data scores far
/// lower. `k < n / 2` (scikit-learn's requirement).
pub fn trustworthiness(original: ArrayView2<'_, f32>, embedded: ArrayView2<'_, f32>, k: usize) -> f64 {
    let n = original.nrows();
    assert!(
        k < n / 2 && embedded.nrows() == n,
        "trustworthiness needs k < n / 2 and matching rows"
    );
    let nn = knn::knn(embedded, k);
    let penalty: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let xi = original.row(i);
            let d: Vec<f64> = original
                .axis_iter(Axis(0))
                .map(|r| xi.iter().zip(r).map(|(a, b)| f64::from(a - b).powi(2)).sum())
                .collect();
            nn.indices[i * k..(i + 1) * k]
                .iter()
                .map(|&j| {
                    let dij = d[j as usize];
                    // Rank of j among i's original neighbours (1 = nearest), self excluded.
                    let rank = d
                        .iter()
                        .enumerate()
                        .filter(|(l, dl)| *l != i && (**dl < dij || (**dl == dij && *l < j as usize)))
                        .count()
                        + 1;
                    (rank as f64 - k as f64).max(0.0)
                })
                .sum::<f64>()
        })
        .sum();
    let (n, k) = (n as f64, k as f64);
    1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn by_hand_on_a_line() {
        // Points on a line at 0 1 3 7 12 20 (no tied distances); the embedding moves point 0 to
        // 20 and point 5 to −0.5. With k = 2 each row's embedded neighbours and their original
        // ranks (penalty = rank − 2 when above 2):
        //   0: {4 (rank 4), 3 (3)} → 3;  1: {5 (5), 2 (2)} → 3;  2: {1 (1), 5 (5)} → 3;
        //   3: {2 (1), 4 (2)} → 0;      4: {3 (1), 0 (5)} → 3;  5: {1 (4), 2 (3)} → 3.
        // Total 15: T = 1 − 15 · 2 / (6 · 2 · (12 − 6 − 1)) = 0.5 (scikit-learn agrees).
        let x = array![[0.0f32], [1.0], [3.0], [7.0], [12.0], [20.0]];
        assert_eq!(trustworthiness(x.view(), x.view(), 2), 1.0);
        let y = array![[20.0f32], [1.0], [3.0], [7.0], [12.0], [-0.5]];
        assert!((trustworthiness(x.view(), y.view(), 2) - 0.5).abs() < 1e-12);
    }
}
