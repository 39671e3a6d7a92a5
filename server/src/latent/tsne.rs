//! t-SNE optimisation in 2-D or 3-D: sparse input affinities from k-NN (exact below
//! 10,000 rows, a partition search past that: [`super::ivf::neighbours`]); repulsion by FFT
//! interpolation in 2-D ([`super::fft`]), by a parallel Barnes-Hut octree in 3-D
//! ([`super::octree`]), exact below [`EXACT_MAX`] points; openTSNE's schedule — early
//! exaggeration 12 with momentum 0.5 for 250 iterations, then momentum 0.8; learning rate
//! max(200, n / exaggeration); delta-bar-delta gains; steps clipped to length 5.

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::affinity;
use super::attract::Attraction;
use super::fft::Repulsion2d;
use super::ivf;
use super::live::Live;
use super::octree;

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

/// `yᵢ − yⱼ` and its squared length, for rows of `D` coordinates.
#[inline]
fn diff<const D: usize>(y: &[f64], i: usize, j: usize) -> ([f64; D], f64) {
    let d: [f64; D] = std::array::from_fn(|a| y[D * i + a] - y[D * j + a]);
    // Folded from the first square (a sum from 0.0 costs one more addition per pair).
    (d, d[1..].iter().fold(d[0] * d[0], |s, v| s + *v * *v))
}

/// Below this many points the repulsion is summed exactly (O(n²), parallel): cheaper than the
/// FFT's minimum grid, and exact.
pub const EXACT_MAX: usize = 1024;

/// Subtracts the exact repulsive gradient `Σⱼ qᵢⱼ² (yᵢ − yⱼ) / Z` (divided by 4) from `grad`
/// (rows of `D` coordinates) and returns `Z = Σ_{i≠j} qᵢⱼ`, `qᵢⱼ = (1 + |yᵢ − yⱼ|²)⁻¹`.
pub fn repulsion_exact<const D: usize>(y: &[f64], grad: &mut [f64]) -> f64 {
    let n = y.len() / D;
    let per_point: Vec<(f64, [f64; D])> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (mut z, mut f) = (0.0, [0.0; D]);
            for j in (0..n).filter(|j| *j != i) {
                let (d, d2) = diff::<D>(y, i, j);
                let q = 1.0 / (1.0 + d2);
                z += q;
                for a in 0..D {
                    f[a] += q * q * d[a];
                }
            }
            (z, f)
        })
        .collect();
    let z: f64 = per_point.iter().map(|p| p.0).sum();
    for (i, (_, f)) in per_point.into_iter().enumerate() {
        for a in 0..D {
            grad[D * i + a] -= f[a] / z;
        }
    }
    z
}

/// A finished embedding and its KL divergence.
pub struct Fitted {
    /// `(n, D)` coordinates.
    pub embedding: Array2<f32>,
    /// KL(P ‖ Q) at the end.
    pub kl: f64,
}

/// The repulsion of one iteration: adds it to the gradient and returns Q's normaliser.
fn repulsion<const D: usize>(fft: &mut Repulsion2d, y: &[f64], grad: &mut [f64]) -> f64 {
    match D {
        _ if y.len() / D <= EXACT_MAX => repulsion_exact::<D>(y, grad),
        2 => fft.apply(y, grad),
        3 => octree::repulsion(y, grad),
        _ => unreachable!("t-SNE here embeds in 2 or 3 dimensions"),
    }
}

/// Rows per parallel task of the step.
const STEP_ROWS: usize = 4096;

/// `y` (rows of `D` coordinates) less its mean: the mean summed in fixed blocks, then in order
/// (the same bits on every run, which rayon's own reduction does not promise).
fn centred<const D: usize>(y: &[f64]) -> Vec<f64> {
    let n = (y.len() / D).max(1);
    let sums: Vec<[f64; D]> = y
        .par_chunks(D * STEP_ROWS)
        .map(|b| b.chunks(D).fold([0.0; D], |s, v| std::array::from_fn(|t| s[t] + v[t])))
        .collect();
    let mean = sums
        .iter()
        .fold([0.0; D], |a, b| std::array::from_fn(|t| a[t] + b[t]))
        .map(|v| v / n as f64);
    y.par_chunks(D)
        .flat_map_iter(|v| (0..D).map(move |t| v[t] - mean[t]))
        .collect()
}

/// Embeds the rows of `x` (already PCA-reduced) in `D` = 2 or 3 dimensions, starting from `init`
/// (`n × D`, e.g. the first principal components scaled to standard deviation 1e-4).
/// `progress(phase, fraction)` is called after each block of neighbours and every ten iterations;
/// `None` once it answers `Break` (a cancelled job stops there). `live` is offered the layout after
/// every iteration.
pub fn fit<const D: usize>(
    x: ArrayView2<'_, f32>,
    init: Array2<f64>,
    schedule: &Schedule,
    progress: &(dyn Fn(Phase, f64) -> ControlFlow<()> + Sync),
    live: &dyn Live,
) -> Option<Fitted> {
    let n = x.nrows();
    let k = ((3.0 * schedule.perplexity) as usize).clamp(1, n - 1);
    let nn = ivf::neighbours(x, k, &|f| progress(Phase::Neighbours, f))?;
    let p = affinity::joint(nn, schedule.perplexity);

    assert!(D == 2 || D == 3, "t-SNE here embeds in 2 or 3 dimensions");
    assert_eq!(init.dim(), (n, D), "one initial point of D coordinates per row");
    let attraction = Attraction::new(p);
    let mut y = centred::<D>(&init.iter().copied().collect::<Vec<f64>>());
    let mut y32: Vec<f32> = y.iter().map(|v| *v as f32).collect();
    let mut update = vec![0.0; D * n];
    let mut gains = vec![1.0; D * n];
    let mut grad = vec![0.0; D * n];
    let mut fft = Repulsion2d::default();
    let total = schedule.early + schedule.late;
    let mut z = 1.0;
    for iter in 0..total {
        let (exaggeration, momentum) = if iter < schedule.early {
            (schedule.exaggeration, 0.5)
        } else {
            (1.0, 0.8)
        };
        let rate = (n as f64 / exaggeration).max(200.0);
        attraction.apply::<D>(&y32, exaggeration, &mut grad);
        z = repulsion::<D>(&mut fft, &y, &mut grad);
        // The step, and the f32 copy the attractive forces read, in one pass. The layout is not
        // recentred as it goes: every force depends on differences of coordinates only, the FFT
        // grid is placed on the layout's own extent, and the mean's drift in 750 steps costs
        // the f32 copy nothing that matters (a pass of its own took a tenth of the step time).
        update
            .par_chunks_mut(D * STEP_ROWS)
            .zip(gains.par_chunks_mut(D * STEP_ROWS))
            .zip(grad.par_chunks(D * STEP_ROWS))
            .zip(y.par_chunks_mut(D * STEP_ROWS).zip(y32.par_chunks_mut(D * STEP_ROWS)))
            .for_each(|(((u, g), d), (yb, yb32))| {
                for ((((u, g), d), yi), yi32) in u
                    .chunks_mut(D)
                    .zip(g.chunks_mut(D))
                    .zip(d.chunks(D))
                    .zip(yb.chunks_mut(D))
                    .zip(yb32.chunks_mut(D))
                {
                    for t in 0..D {
                        if (u[t] > 0.0) != (d[t] > 0.0) || u[t] == 0.0 {
                            g[t] += 0.2;
                        } else {
                            g[t] = g[t] * 0.8 + 0.01;
                        }
                        u[t] = momentum * u[t] - rate * g[t] * d[t];
                    }
                    let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if norm > 5.0 {
                        u.iter_mut().for_each(|v| *v *= 5.0 / norm);
                    }
                    for t in 0..D {
                        yi[t] += u[t];
                        yi32[t] = yi[t] as f32;
                    }
                }
            });
        if live.due() {
            live.show(centred::<D>(&y).into_iter().map(|v| v as f32).collect(), D);
        }
        if (iter % 10 == 9 || iter + 1 == total)
            && progress(Phase::Optimise, (iter + 1) as f64 / total as f64).is_break()
        {
            return None;
        }
    }
    let kl = attraction.kl_divergence::<D>(&y, z);
    let y = centred::<D>(&y);
    Some(Fitted {
        embedding: Array2::from_shape_vec((n, D), y.into_iter().map(|v| v as f32).collect()).expect("n × D"),
        kl,
    })
}
