//! t-SNE optimisation in 2-D: sparse input affinities from exact k-NN, FFT-interpolated repulsion
//! ([`super::fft`]), and openTSNE's schedule — early exaggeration 12 with momentum 0.5 for 250
//! iterations, then momentum 0.8; learning rate max(200, n / exaggeration); delta-bar-delta gains;
//! steps clipped to length 5.

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::affinity::{self, Csr};
use super::fft::Repulsion2d;
use super::knn;

/// Settings of one run (built from [`super::EmbedParams`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Perplexity of the input affinities.
    pub perplexity: f64,
    /// Early-exaggeration iterations.
    pub early: usize,
    /// Iterations after early exaggeration.
    pub late: usize,
    /// Early exaggeration factor.
    pub exaggeration: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            perplexity: 30.0,
            early: 250,
            late: 500,
            exaggeration: 12.0,
        }
    }
}

/// Which part of the run a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nearest neighbours.
    Neighbours,
    /// Gradient descent.
    Optimise,
}

/// Sets `grad` to the attractive gradient `Σⱼ e·pᵢⱼ qᵢⱼ (yᵢ − yⱼ)` (divided by 4). Single
/// precision (`y32`, `p32`: copies of the embedding and of P's values): this sparse sum streams P
/// once per iteration and is bound by memory and divisions, both halved in f32.
fn attractive(p: &Csr, p32: &[f32], y32: &[f32], exaggeration: f64, grad: &mut [f64]) {
    let e = exaggeration as f32;
    grad.par_chunks_mut(2).enumerate().for_each(|(i, g)| {
        let (mut g0, mut g1) = (0.0f32, 0.0f32);
        let (yi0, yi1) = (y32[2 * i], y32[2 * i + 1]);
        let row = p.indptr[i]..p.indptr[i + 1];
        for (&j, &pij) in p.indices[row.clone()].iter().zip(&p32[row]) {
            let j = j as usize;
            let (d0, d1) = (yi0 - y32[2 * j], yi1 - y32[2 * j + 1]);
            let w = e * pij / (1.0 + d0 * d0 + d1 * d1);
            g0 += w * d0;
            g1 += w * d1;
        }
        g[0] = f64::from(g0);
        g[1] = f64::from(g1);
    });
}

/// Below this many points the repulsion is summed exactly (O(n²), parallel): cheaper than the
/// FFT's minimum grid, and exact.
pub const EXACT_MAX: usize = 1024;

/// Subtracts the exact repulsive gradient `Σⱼ qᵢⱼ² (yᵢ − yⱼ) / Z` (divided by 4) from `grad` and
/// returns `Z = Σ_{i≠j} qᵢⱼ`, `qᵢⱼ = (1 + |yᵢ − yⱼ|²)⁻¹`.
pub fn repulsion_exact(y: &[f64], grad: &mut [f64]) -> f64 {
    let n = y.len() / 2;
    let per_point: Vec<(f64, f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (mut z, mut g0, mut g1) = (0.0, 0.0, 0.0);
            for j in (0..n).filter(|j| *j != i) {
                let (d0, d1) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                let q = 1.0 / (1.0 + d0 * d0 + d1 * d1);
                z += q;
                g0 += q * q * d0;
                g1 += q * q * d1;
            }
            (z, g0, g1)
        })
        .collect();
    let z: f64 = per_point.iter().map(|p| p.0).sum();
    for (i, (_, g0, g1)) in per_point.into_iter().enumerate() {
        grad[2 * i] -= g0 / z;
        grad[2 * i + 1] -= g1 / z;
    }
    z
}

/// KL(P ‖ Q) of the final embedding, with `z` the normaliser of Q.
fn kl_divergence(p: &Csr, y: &[f64], z: f64) -> f64 {
    (0..p.indptr.len() - 1)
        .into_par_iter()
        .map(|i| {
            (p.indptr[i]..p.indptr[i + 1])
                .map(|s| {
                    let j = p.indices[s] as usize;
                    let (d0, d1) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
                    let q = 1.0 / (1.0 + d0 * d0 + d1 * d1) / z;
                    let pv = p.values[s];
                    if pv > 0.0 {
                        pv * (pv / q.max(f64::MIN_POSITIVE)).ln()
                    } else {
                        0.0
                    }
                })
                .sum::<f64>()
        })
        .sum()
}

/// A finished embedding and its KL divergence.
pub struct Fitted {
    /// `(n, 2)` coordinates.
    pub embedding: Array2<f32>,
    /// KL(P ‖ Q) at the end.
    pub kl: f64,
}

/// Embeds the rows of `x` (already PCA-reduced) in 2-D, starting from `init` (`n × 2`, e.g. the
/// first two principal components scaled to standard deviation 1e-4). `progress(phase, fraction)`
/// is called after each block of neighbours and every ten iterations; `None` once it answers
/// `Break` (a cancelled job stops there).
pub fn fit(
    x: ArrayView2<'_, f32>,
    init: Array2<f64>,
    schedule: &Schedule,
    progress: &(dyn Fn(Phase, f64) -> ControlFlow<()> + Sync),
) -> Option<Fitted> {
    let n = x.nrows();
    let k = ((3.0 * schedule.perplexity) as usize).clamp(1, n - 1);
    let nn = knn::knn_with_progress(x, k, &|f| progress(Phase::Neighbours, f))?;
    let p = affinity::joint(&nn, schedule.perplexity);
    drop(nn);

    let p32: Vec<f32> = p.values.iter().map(|v| *v as f32).collect();
    let mut y: Vec<f64> = init.iter().copied().collect();
    let mut y32 = vec![0.0f32; 2 * n];
    let mut update = vec![0.0; 2 * n];
    let mut gains = vec![1.0; 2 * n];
    let mut grad = vec![0.0; 2 * n];
    let mut repulsion = Repulsion2d::default();
    let total = schedule.early + schedule.late;
    let mut z = 1.0;
    for iter in 0..total {
        let (exaggeration, momentum) = if iter < schedule.early {
            (schedule.exaggeration, 0.5)
        } else {
            (1.0, 0.8)
        };
        let rate = (n as f64 / exaggeration).max(200.0);
        y32.iter_mut().zip(&y).for_each(|(a, b)| *a = *b as f32);
        attractive(&p, &p32, &y32, exaggeration, &mut grad);
        z = if n <= EXACT_MAX {
            repulsion_exact(&y, &mut grad)
        } else {
            repulsion.apply(&y, &mut grad)
        };
        update
            .par_chunks_mut(2)
            .zip(gains.par_chunks_mut(2))
            .zip(grad.par_chunks(2))
            .zip(y.par_chunks_mut(2))
            .for_each(|(((u, g), d), yi)| {
                for t in 0..2 {
                    if (u[t] > 0.0) != (d[t] > 0.0) || u[t] == 0.0 {
                        g[t] += 0.2;
                    } else {
                        g[t] = g[t] * 0.8 + 0.01;
                    }
                    u[t] = momentum * u[t] - rate * g[t] * d[t];
                }
                let norm = (u[0] * u[0] + u[1] * u[1]).sqrt();
                if norm > 5.0 {
                    u[0] *= 5.0 / norm;
                    u[1] *= 5.0 / norm;
                }
                yi[0] += u[0];
                yi[1] += u[1];
            });
        // Keep the embedding centred (t-SNE is translation invariant; the grid stays small).
        let (m0, m1) = y.chunks(2).fold((0.0, 0.0), |(a, b), v| (a + v[0], b + v[1]));
        let (m0, m1) = (m0 / n as f64, m1 / n as f64);
        y.par_chunks_mut(2).for_each(|v| {
            v[0] -= m0;
            v[1] -= m1;
        });
        if (iter % 10 == 9 || iter + 1 == total)
            && progress(Phase::Optimise, (iter + 1) as f64 / total as f64).is_break()
        {
            return None;
        }
    }
    let kl = kl_divergence(&p, &y, z);
    Some(Fitted {
        embedding: Array2::from_shape_vec((n, 2), y.into_iter().map(|v| v as f32).collect()).expect("n × 2"),
        kl,
    })
}
