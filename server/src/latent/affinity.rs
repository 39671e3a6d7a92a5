//! t-SNE's input affinities: per-point Gaussian bandwidths calibrated to a perplexity over the
//! point's nearest neighbours (scikit-learn's `_binary_search_perplexity`), then symmetrised and
//! normalised, `P = (P + Pᵀ) / Σ`, as a sparse matrix.

use rayon::prelude::*;

use super::knn::Knn;

/// A symmetric sparse matrix in CSR form; rows sum to the row's total affinity, all entries to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    /// Row `i` is `indices[indptr[i]..indptr[i + 1]]`.
    pub indptr: Vec<usize>,
    /// Column indices, ascending within a row.
    pub indices: Vec<u32>,
    /// Values.
    pub values: Vec<f64>,
}

/// Conditional probabilities `p_{j|i}` over each row's neighbours, each row summing to 1.
pub fn conditional(knn: &Knn, perplexity: f64) -> Vec<f64> {
    const STEPS: usize = 100;
    const TOL: f64 = 1e-5;
    let target = perplexity.ln();
    let k = knn.k;
    let mut p = vec![0.0; knn.dist2.len()];
    p.par_chunks_mut(k).zip(knn.dist2.par_chunks(k)).for_each(|(p, d)| {
        let (mut beta, mut lo, mut hi) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
        for _ in 0..STEPS {
            let mut sum = 0.0;
            for (pj, dj) in p.iter_mut().zip(d) {
                *pj = (-dj * beta).exp();
                sum += *pj;
            }
            let sum = sum.max(1e-8);
            let weighted: f64 = p.iter().zip(d).map(|(pj, dj)| dj * pj).sum();
            let entropy = sum.ln() + beta * weighted / sum;
            p.iter_mut().for_each(|pj| *pj /= sum);
            let diff = entropy - target;
            if diff.abs() <= TOL {
                break;
            }
            if diff > 0.0 {
                lo = beta;
                beta = if hi.is_infinite() {
                    beta * 2.0
                } else {
                    (beta + hi) / 2.0
                };
            } else {
                hi = beta;
                beta = if lo.is_infinite() {
                    beta / 2.0
                } else {
                    (beta + lo) / 2.0
                };
            }
        }
    });
    p
}

/// The joint probabilities `P = (P_cond + P_condᵀ) / Σ`.
pub fn joint(knn: &Knn, perplexity: f64) -> Csr {
    let n = knn.indices.len() / knn.k.max(1);
    let cond = conditional(knn, perplexity);
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::with_capacity(2 * knn.k); n];
    for (s, (&j, &p)) in knn.indices.iter().zip(&cond).enumerate() {
        let i = s / knn.k;
        rows[i].push((j, p));
        rows[j as usize].push((i as u32, p));
    }
    rows.par_iter_mut().for_each(|r| {
        r.sort_by_key(|e| e.0);
        r.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
    });
    let total: f64 = rows.iter().flatten().map(|e| e.1).sum::<f64>().max(f64::EPSILON);
    let mut csr = Csr {
        indptr: Vec::with_capacity(n + 1),
        indices: Vec::new(),
        values: Vec::new(),
    };
    csr.indptr.push(0);
    for r in rows {
        csr.indices.extend(r.iter().map(|e| e.0));
        csr.values.extend(r.iter().map(|e| e.1 / total));
        csr.indptr.push(csr.indices.len());
    }
    csr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_rows_reach_the_perplexity() {
        // Two neighbours at squared distance 1 and 4: a perplexity of 1.5 needs
        // H = ln 1.5 = -Σ p ln p, solved by hand for p = (p1, 1 - p1): p1 ≈ 0.8597.
        let knn = Knn {
            k: 2,
            indices: vec![1, 2, 0, 2, 0, 1],
            dist2: vec![1.0, 4.0, 1.0, 4.0, 1.0, 4.0],
        };
        let p = conditional(&knn, 1.5);
        let h = -(p[0] * p[0].ln() + p[1] * p[1].ln());
        assert!((h - 1.5f64.ln()).abs() < 1e-5, "entropy {h}");
        assert!((p[0] - 0.8597).abs() < 1e-3, "{}", p[0]);
        let joint = joint(&knn, 1.5);
        let sum: f64 = joint.values.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);
        // Symmetric: P[0][1] == P[1][0].
        let at = |i: usize, j: u32| {
            let r = joint.indptr[i]..joint.indptr[i + 1];
            joint.indices[r.clone()]
                .iter()
                .position(|c| *c == j)
                .map(|pos| joint.values[r.start + pos])
        };
        assert_eq!(at(0, 1), at(1, 0));
        assert_eq!(at(2, 0), at(0, 2));
    }
}
