//! t-SNE's input affinities: per-point Gaussian bandwidths calibrated to a perplexity over the
//! point's nearest neighbours (scikit-learn's `_binary_search_perplexity`), then symmetrised and
//! normalised, `P = (P + Pᵀ) / Σ`, as a sparse matrix. [`symmetrise`] also builds UMAP's fuzzy
//! union `A + Aᵀ − A∘Aᵀ`.

use rayon::prelude::*;

use super::knn::Knn;

/// A symmetric sparse matrix in CSR form (t-SNE's joint probabilities sum to 1).
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
    let mut p = knn.dist2.clone();
    calibrate(&mut p, knn.k, perplexity);
    p
}

/// Turns rows of `k` squared distances into the conditional probabilities `p_{j|i}` (in place:
/// at 100k points the distances are 72 MB).
///
/// Each row's precision β is found as scikit-learn's `_binary_search_perplexity` finds it — from
/// β = 1, the entropy within 1e-5 of ln(perplexity), the bracket halved or doubled — but each
/// step tries Newton's step first (`dH/dβ = −β·Var(d)` comes from the same pass) and bisects only
/// when that leaves the bracket: about 5 passes over a row instead of about 30, each a `k`
/// exponentials (perf: a sixth of the neighbour stage at 20,000 points).
fn calibrate(dist2: &mut [f64], k: usize, perplexity: f64) {
    const STEPS: usize = 100;
    const TOL: f64 = 1e-5;
    let target = perplexity.ln();
    dist2.par_chunks_mut(k).for_each_init(Vec::new, |d: &mut Vec<f64>, p| {
        d.clear();
        d.extend_from_slice(p);
        let d = &d[..];
        let (mut beta, mut lo, mut hi) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
        for _ in 0..STEPS {
            let (mut sum, mut weighted, mut squares) = (0.0, 0.0, 0.0);
            for (pj, dj) in p.iter_mut().zip(d) {
                *pj = (-dj * beta).exp();
                sum += *pj;
                weighted += dj * *pj;
                squares += dj * dj * *pj;
            }
            let sum = f64::max(sum, 1e-8);
            let (mean, mean_square) = (weighted / sum, squares / sum);
            let entropy = sum.ln() + beta * mean;
            p.iter_mut().for_each(|pj| *pj /= sum);
            let diff = entropy - target;
            if diff.abs() <= TOL {
                break;
            }
            // The entropy falls as β grows: too high, β goes up.
            if diff > 0.0 {
                lo = beta;
            } else {
                hi = beta;
            }
            let slope = -beta * (mean_square - mean * mean);
            let newton = beta - diff / slope;
            beta = if newton.is_finite() && newton > lo && newton < hi && newton > 0.0 {
                newton
            } else if diff > 0.0 {
                if hi.is_infinite() {
                    beta * 2.0
                } else {
                    (beta + hi) / 2.0
                }
            } else if lo.is_infinite() {
                beta / 2.0
            } else {
                (beta + lo) / 2.0
            };
        }
    });
}

/// The joint probabilities `P = (P_cond + P_condᵀ) / Σ`.
///
/// Takes the neighbours (their distances become the conditional probabilities in place) and
/// symmetrises them in place ([`symmetrise`]).
pub fn joint(knn: Knn, perplexity: f64) -> Csr {
    let k = knn.k.max(1);
    let (neighbours, mut cond) = (knn.indices, knn.dist2);
    calibrate(&mut cond, k, perplexity);
    let mut p = symmetrise(neighbours, cond, k, |a, b| a + b);
    let total: f64 = p.values.iter().sum::<f64>().max(f64::EPSILON);
    p.values.par_iter_mut().for_each(|v| *v /= total);
    p
}

/// The symmetric matrix of directed weights `w` (row `i` holds `weights[i·k..(i+1)·k]` towards
/// `neighbours[i·k..(i+1)·k]`): entry `(i, j)` is `union(wᵢⱼ, wⱼᵢ)` where both exist, the one
/// weight where only one does.
///
/// Built in place in the CSR arrays, sized by counting (row i holds its `k` neighbours and each
/// row that has i as a neighbour; the pairs present both ways are merged, then the rows are moved
/// together). A vector per row, as before, took 288 MB of row buffers beside the result at 100k
/// points; this takes the result's arrays at their largest (12 bytes per entry).
pub fn symmetrise(neighbours: Vec<u32>, weights: Vec<f64>, k: usize, union: fn(f64, f64) -> f64) -> Csr {
    let n = neighbours.len() / k.max(1);
    let mut indptr = vec![k; n + 1];
    indptr[0] = 0;
    for &j in &neighbours {
        indptr[j as usize + 1] += 1;
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    let (mut indices, mut values) = (vec![0u32; indptr[n]], vec![0.0f64; indptr[n]]);
    let mut fill: Vec<usize> = indptr[..n].to_vec();
    for (s, (&j, &p)) in neighbours.iter().zip(&weights).enumerate() {
        for (row, col) in [(s / k, j), (j as usize, (s / k) as u32)] {
            indices[fill[row]] = col;
            values[fill[row]] = p;
            fill[row] += 1;
        }
    }
    drop((neighbours, weights, fill));
    // Sort each row by column and merge duplicates (a pair appears at most twice); each row
    // keeps `kept[i]` entries at its start.
    let kept: Vec<usize> = split_rows(&mut indices, &indptr)
        .into_par_iter()
        .zip(split_rows(&mut values, &indptr))
        .map_init(Vec::new, |pairs: &mut Vec<(u32, f64)>, (cols, vals)| {
            pairs.clear();
            pairs.extend(cols.iter().copied().zip(vals.iter().copied()));
            pairs.sort_by_key(|e| e.0);
            let mut w = 0;
            for &(c, v) in pairs.iter() {
                if w > 0 && cols[w - 1] == c {
                    vals[w - 1] = union(vals[w - 1], v);
                } else {
                    cols[w] = c;
                    vals[w] = v;
                    w += 1;
                }
            }
            w
        })
        .collect();
    // Move the kept entries together (each row moves left or stays).
    let mut to = 0;
    for i in 0..n {
        let from = indptr[i];
        indices.copy_within(from..from + kept[i], to);
        values.copy_within(from..from + kept[i], to);
        indptr[i] = to;
        to += kept[i];
    }
    indptr[n] = to;
    indices.truncate(to);
    values.truncate(to);
    indices.shrink_to_fit();
    values.shrink_to_fit();
    Csr {
        indptr,
        indices,
        values,
    }
}

/// The rows of a CSR array as disjoint mutable slices.
fn split_rows<'a, T>(mut rest: &'a mut [T], indptr: &[usize]) -> Vec<&'a mut [T]> {
    let mut rows = Vec::with_capacity(indptr.len().saturating_sub(1));
    for w in indptr.windows(2) {
        let (row, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
        rows.push(row);
        rest = tail;
    }
    rows
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
        let joint = joint(knn, 1.5);
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

    #[test]
    fn rows_at_every_scale_reach_the_perplexity() {
        // 90 neighbours (perplexity 30) at squared distances from 1e-6 to 1e6 of each other, and
        // rows of a few distinct distances: Newton's steps leave the bracket there, and the
        // bisection has to take over.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let k = 90;
        let mut dist2 = Vec::new();
        for scale in [1e-6, 1e-3, 1.0, 1e3, 1e6] {
            for _ in 0..20 {
                let mut row: Vec<f64> = (0..k).map(|_| scale * rng.random_range(0.5..3.0f64).powi(4)).collect();
                row.sort_by(f64::total_cmp);
                dist2.extend(row);
            }
            dist2.extend((0..k).map(|j| scale * if j < 20 { 1.0 } else { 9.0 }));
        }
        let rows = dist2.len() / k;
        let knn = Knn {
            k,
            indices: vec![0; rows * k],
            dist2,
        };
        let p = conditional(&knn, 30.0);
        for (r, row) in p.chunks(k).enumerate() {
            let h = -row.iter().filter(|v| **v > 0.0).map(|v| v * v.ln()).sum::<f64>();
            assert!((h - 30f64.ln()).abs() < 1e-5, "row {r}: entropy {h}");
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "row {r}");
        }
    }
}
