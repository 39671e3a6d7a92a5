//! UMAP (McInnes, Healy & Melville 2018) as umap-learn 0.5 computes it, on exact neighbours below
//! 10,000 rows ([`super::ivf::neighbours`]):
//!
//! 1. **Fuzzy simplicial set.** Each point's `k − 1` nearest neighbours (`k` counts the point
//!    itself, as `n_neighbors` does) get memberships `exp(−(d − ρ) / σ)`, `ρ` the distance to
//!    the nearest neighbour and `σ` found by bisection so that they sum to `log₂ k`
//!    (`smooth_knn_dist`, with its floor of 10⁻³ × the mean distance); the directed graph is
//!    symmetrised by the fuzzy union `A + Aᵀ − A∘Aᵀ`, and edges below `max / epochs` dropped.
//! 2. **Layout.** The low-dimensional similarity is `1 / (1 + a·d^{2b})`, `a` and `b` fitted to
//!    `min_dist` by least squares ([`curve`], scipy's `curve_fit` in umap-learn). Each edge is
//!    sampled in proportion to its weight; a sample pulls both ends together and pushes the head
//!    away from 5 random points; gradients are clipped to ±4; the learning rate falls linearly
//!    from 1 to 0 over the epochs.
//!
//! Differences from umap-learn, each on purpose: the neighbours are exact below 10,000 rows and
//! from a partition search past that (umap-learn's NN-descent approximates them at any size);
//! the start is the PCA (umap-learn's `init="pca"`, not its default spectral layout, which
//! needs an eigensolver over the whole graph); the SGD runs on all
//! cores, lock-free — as umap-learn's does without a `random_state` — with relaxed atomic loads and
//! stores of the coordinates, so two runs with one seed agree in quality, not bit for bit (the
//! layout is cached once computed).

use std::sync::atomic::{AtomicU32, Ordering};

use ndarray::{Array2, ArrayView2};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::affinity::{self, Csr};
use super::knn::Knn;
use super::live::Live;
use super::tsne::Phase;

/// Negative samples per positive one (umap-learn's `negative_sample_rate`).
const NEGATIVE_RATE: f32 = 5.0;
/// Gradient components are clipped to ±this (umap-learn's `clip`).
const CLIP: f32 = 4.0;
/// Rows a rayon task takes in one epoch (each with its own random stream).
const ROWS_PER_TASK: usize = 512;

/// Settings of one run (built from [`super::EmbedParams`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Neighbours per point, itself included.
    pub neighbours: usize,
    /// Minimum distance between embedded points (spread 1).
    pub min_dist: f64,
    /// SGD epochs.
    pub epochs: usize,
    /// Seed of the negative samples and of the start's jitter.
    pub seed: u64,
}

/// `a` and `b` of `1 / (1 + a·x^{2b})` fitted by least squares to umap-learn's target curve:
/// 1 below `min_dist`, `exp(−(x − min_dist))` above, at 300 points on [0, 3] (spread 1).
/// Levenberg–Marquardt from (1, 1), as scipy's `curve_fit` solves it.
pub fn curve(min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| if x < min_dist { 1.0 } else { (-(x - min_dist)).exp() })
        .collect();
    // Residuals and their Jacobian at (a, b); x = 0 contributes no gradient (0^{2b} = 0).
    let eval = |a: f64, b: f64| {
        let (mut cost, mut jtj, mut jtr) = (0.0, [[0.0f64; 2]; 2], [0.0f64; 2]);
        for (&x, &y) in xs.iter().zip(&ys) {
            let p = if x > 0.0 { x.powf(2.0 * b) } else { 0.0 };
            let f = 1.0 / (1.0 + a * p);
            let r = f - y;
            let da = -p * f * f;
            let db = if x > 0.0 { -a * p * 2.0 * x.ln() * f * f } else { 0.0 };
            let j = [da, db];
            cost += r * r;
            for u in 0..2 {
                jtr[u] += j[u] * r;
                for v in 0..2 {
                    jtj[u][v] += j[u] * j[v];
                }
            }
        }
        (cost, jtj, jtr)
    };
    let (mut a, mut b, mut lambda) = (1.0f64, 1.0f64, 1e-3f64);
    let (mut cost, mut jtj, mut jtr) = eval(a, b);
    for _ in 0..500 {
        let m = [
            [jtj[0][0] * (1.0 + lambda), jtj[0][1]],
            [jtj[1][0], jtj[1][1] * (1.0 + lambda)],
        ];
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        if det.abs() < f64::MIN_POSITIVE {
            break;
        }
        let da = -(m[1][1] * jtr[0] - m[0][1] * jtr[1]) / det;
        let db = -(m[0][0] * jtr[1] - m[1][0] * jtr[0]) / det;
        let (na, nb) = (a + da, b + db);
        let (c, jj, jr) = eval(na, nb);
        if c.is_finite() && c < cost {
            let converged = (cost - c) <= 1e-15 * cost.max(1e-300) && da.abs() + db.abs() < 1e-12;
            (a, b, cost, jtj, jtr) = (na, nb, c, jj, jr);
            lambda = (lambda / 10.0).max(1e-12);
            if converged {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (a, b)
}

/// Turns each row's `k − 1` squared neighbour distances into memberships in place
/// (umap-learn's `smooth_knn_dist` and `compute_membership_strengths`, local connectivity 1).
pub fn memberships(dist2: &mut [f64], neighbours: usize) {
    const STEPS: usize = 64;
    const TOL: f64 = 1e-5;
    const MIN_SCALE: f64 = 1e-3;
    let per_row = neighbours - 1;
    let target = (neighbours as f64).log2();
    dist2.par_iter_mut().for_each(|d| *d = d.sqrt());
    // umap-learn's rows hold the point itself at distance 0: means are over `neighbours`.
    let mean_all = dist2.iter().sum::<f64>() / (dist2.len() / per_row * neighbours).max(1) as f64;
    dist2.par_chunks_mut(per_row).for_each(|row| {
        let rho = row.iter().copied().find(|d| *d > 0.0).unwrap_or(0.0);
        let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
        for _ in 0..STEPS {
            let psum: f64 = row
                .iter()
                .map(|&d| if d - rho > 0.0 { (-(d - rho) / mid).exp() } else { 1.0 })
                .sum();
            if (psum - target).abs() < TOL {
                break;
            }
            if psum > target {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                mid = if hi.is_infinite() { mid * 2.0 } else { (lo + hi) / 2.0 };
            }
        }
        let floor = MIN_SCALE
            * if rho > 0.0 {
                row.iter().sum::<f64>() / neighbours as f64
            } else {
                mean_all
            };
        let sigma = mid.max(floor);
        for d in row.iter_mut() {
            *d = if *d - rho <= 0.0 || sigma == 0.0 {
                1.0
            } else {
                (-(*d - rho) / sigma).exp()
            };
        }
    });
}

/// The fuzzy simplicial set of `x`'s rows: symmetric memberships, `neighbours` counting the point
/// itself. `None` once `progress` stops the neighbour search.
pub fn graph(
    x: ArrayView2<'_, f32>,
    neighbours: usize,
    progress: &(dyn Fn(Phase, f64) -> std::ops::ControlFlow<()> + Sync),
) -> Option<Csr> {
    let Knn { k, indices, mut dist2 } = super::ivf::neighbours(x, neighbours - 1, &|f| progress(Phase::Neighbours, f))?;
    memberships(&mut dist2, k + 1);
    Some(affinity::symmetrise(indices, dist2, k, |a, b| a + b - a * b))
}

/// The layout of `graph` in `D` dimensions from `init` (`n × D`, e.g. the leading principal
/// components): rescaled as umap-learn rescales a start, then `settings.epochs` epochs of SGD.
/// Reports each epoch to `progress`; `None` once it answers `Break`. `live` is offered the layout
/// after every epoch.
pub fn layout<const D: usize>(
    graph: &Csr,
    init: ArrayView2<'_, f64>,
    settings: &Settings,
    progress: &(dyn Fn(Phase, f64) -> std::ops::ControlFlow<()> + Sync),
    live: &dyn Live,
) -> Option<Array2<f32>> {
    let n = graph.indptr.len() - 1;
    let epochs = settings.epochs.max(1);
    let (a, b) = curve(settings.min_dist);
    let (a, b) = (a as f32, b as f32);
    let y: Vec<AtomicU32> = start::<D>(init, settings.seed)
        .into_iter()
        .map(|v| AtomicU32::new(v.to_bits()))
        .collect();
    // Edges sampled every `max / w` epochs; those rarer than once per run are dropped.
    let max = graph.values.iter().copied().fold(0.0f64, f64::max);
    let period: Vec<f32> = graph
        .values
        .iter()
        .map(|&w| {
            if w >= max / epochs as f64 && w > 0.0 {
                (max / w) as f32
            } else {
                f32::INFINITY
            }
        })
        .collect();
    let mut next = period.clone();
    let mut next_negative: Vec<f32> = period.iter().map(|p| p / NEGATIVE_RATE).collect();
    let load = |i: usize| -> [f32; D] { std::array::from_fn(|d| f32::from_bits(y[D * i + d].load(Ordering::Relaxed))) };
    let store = |i: usize, v: &[f32; D]| {
        for (d, c) in v.iter().enumerate() {
            y[D * i + d].store(c.to_bits(), Ordering::Relaxed);
        }
    };
    let clip = |g: f32| g.clamp(-CLIP, CLIP);
    let n_u32 = n as u32;
    for epoch in 0..epochs {
        let e = epoch as f32;
        // umap-learn lowers the rate after each epoch: epochs 0 and 1 both run at 1.
        let alpha = 1.0 - (e - 1.0).max(0.0) / epochs as f32;
        let tasks = n.div_ceil(ROWS_PER_TASK);
        // Each task owns a run of rows and so the edge state of those rows: split it accordingly.
        let mut rest_next: &mut [f32] = &mut next;
        let mut rest_neg: &mut [f32] = &mut next_negative;
        let mut work = Vec::with_capacity(tasks);
        for t in 0..tasks {
            let rows = t * ROWS_PER_TASK..((t + 1) * ROWS_PER_TASK).min(n);
            let len = graph.indptr[rows.end] - graph.indptr[rows.start];
            let (a1, r1) = std::mem::take(&mut rest_next).split_at_mut(len);
            let (a2, r2) = std::mem::take(&mut rest_neg).split_at_mut(len);
            (rest_next, rest_neg) = (r1, r2);
            work.push((t, rows, a1, a2));
        }
        work.into_par_iter().for_each(|(t, rows, next, next_neg)| {
            let mut rng = SmallRng::seed_from_u64(
                settings.seed ^ ((epoch as u64) << 32) ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let base = graph.indptr[rows.start];
            for i in rows {
                let edges = graph.indptr[i]..graph.indptr[i + 1];
                let local = edges.start - base..edges.end - base;
                let row = graph.indices[edges.clone()].iter().zip(&period[edges]);
                for ((&j, &every), (next, next_neg)) in
                    row.zip(next[local.clone()].iter_mut().zip(&mut next_neg[local]))
                {
                    if *next > e {
                        continue;
                    }
                    let j = j as usize;
                    let (mut yi, mut yj) = (load(i), load(j));
                    let d2: f32 = (0..D).map(|d| (yi[d] - yj[d]).powi(2)).sum();
                    if d2 > 0.0 {
                        let p = d2.powf(b - 1.0);
                        let coeff = -2.0 * a * b * p / (a * p * d2 + 1.0);
                        for d in 0..D {
                            let g = clip(coeff * (yi[d] - yj[d])) * alpha;
                            yi[d] += g;
                            yj[d] -= g;
                        }
                        store(j, &yj);
                    }
                    *next += every;
                    let per_negative = every / NEGATIVE_RATE;
                    let samples = ((e - *next_neg) / per_negative).max(0.0) as usize;
                    for _ in 0..samples {
                        let k = rng.random_range(0..n_u32) as usize;
                        if k == i {
                            continue;
                        }
                        let yk = load(k);
                        let d2: f32 = (0..D).map(|d| (yi[d] - yk[d]).powi(2)).sum();
                        if d2 > 0.0 {
                            let coeff = 2.0 * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0));
                            for d in 0..D {
                                yi[d] += clip(coeff * (yi[d] - yk[d])) * alpha;
                            }
                        }
                    }
                    store(i, &yi);
                    *next_neg += samples as f32 * per_negative;
                }
            }
        });
        if live.due() {
            live.show(y.iter().map(|v| f32::from_bits(v.load(Ordering::Relaxed))).collect(), D);
        }
        if progress(Phase::Optimise, (epoch + 1) as f64 / epochs as f64).is_break() {
            return None;
        }
    }
    let flat: Vec<f32> = y.into_iter().map(|v| f32::from_bits(v.into_inner())).collect();
    Some(Array2::from_shape_vec((n, D), flat).expect("n × D coordinates"))
}

/// umap-learn's start from given coordinates: scaled to a largest magnitude of 10, jittered by
/// 10⁻⁴ (uniform here, normal there: it only separates duplicates), then each axis mapped onto
/// [0, 10].
fn start<const D: usize>(init: ArrayView2<'_, f64>, seed: u64) -> Vec<f32> {
    let largest = init.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut y: Vec<f64> = init
        .iter()
        .map(|v| v * 10.0 / largest + rng.random_range(-1e-4..1e-4))
        .collect();
    for d in 0..D {
        let (lo, hi) = y
            .iter()
            .skip(d)
            .step_by(D)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let range = (hi - lo).max(f64::MIN_POSITIVE);
        y.iter_mut()
            .skip(d)
            .step_by(D)
            .for_each(|v| *v = 10.0 * (*v - lo) / range);
    }
    y.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_matches_umap_learn() {
        // umap-learn 0.5.12's `find_ab_params(1.0, min_dist)` (scipy's curve_fit), run in
        // a scratch environment: the values as it printed them. scipy stops at its tolerances
        // (ftol = xtol = 1.49e-8 on the cost and the step), so agreement is to 1e-5, not 1e-12.
        for (min_dist, a, b) in [
            (0.0, 1.93280839734315, 0.7904949732233831),
            (0.1, 1.5769434602697652, 0.8950608778515733),
            (0.5, 0.5830300203414425, 1.3341669924314914),
            (0.99, 0.11930529992407873, 1.9163904168802517),
        ] {
            let (fa, fb) = curve(min_dist);
            assert!(
                (fa - a).abs() < 1e-5 * a && (fb - b).abs() < 1e-5 * b,
                "min_dist {min_dist}: ({fa}, {fb}) against ({a}, {b})"
            );
        }
    }

    #[test]
    fn memberships_sum_to_log2_k_and_the_nearest_is_one() {
        // k = 4 (3 neighbours): distances 1, 2, 3 → ρ = 1, and σ solves
        // 1 + e^{−1/σ} + e^{−2/σ} = 2, i.e. e^{−1/σ} = (√5 − 1) / 2 (the golden ratio's inverse).
        let mut d2 = vec![1.0, 4.0, 9.0];
        memberships(&mut d2, 4);
        assert_eq!(d2[0], 1.0);
        let phi = (5f64.sqrt() - 1.0) / 2.0;
        assert!((d2[1] - phi).abs() < 1e-5 && (d2[2] - phi * phi).abs() < 1e-5, "{d2:?}");
        // Duplicates (distance 0) are full members; ρ is the first distance above 0.
        let mut d2 = vec![0.0, 1.0, 4.0];
        memberships(&mut d2, 4);
        assert_eq!(&d2[..2], &[1.0, 1.0]);
    }

    #[test]
    fn clusters_stay_together_and_apart() {
        // Three Gaussian blobs in 10-D: every point's embedded nearest neighbour is in its blob.
        let mut rng = SmallRng::seed_from_u64(3);
        let x = Array2::from_shape_fn((300, 10), |(i, j)| {
            (if j == i / 100 { 20.0 } else { 0.0 }) + rng.random_range(-1.0f32..1.0)
        });
        let graph = graph(x.view(), 15, &|_, _| std::ops::ControlFlow::Continue(())).unwrap();
        let init = super::super::pca(x.view(), 2).unwrap().mapv(f64::from);
        let settings = Settings {
            neighbours: 15,
            min_dist: 0.1,
            epochs: 200,
            seed: 0,
        };
        // Intermediate layouts are offered every epoch, as many as asked for.
        struct Every(std::sync::Mutex<Vec<Vec<f32>>>);
        impl Live for Every {
            fn due(&self) -> bool {
                self.0.lock().unwrap().len() < 3
            }
            fn show(&self, coords: Vec<f32>, dims: usize) {
                assert_eq!((coords.len(), dims), (600, 2));
                self.0.lock().unwrap().push(coords);
            }
        }
        let shown = Every(Default::default());
        let go = |_: Phase, _: f64| std::ops::ControlFlow::Continue(());
        let y = layout::<2>(&graph, init.view(), &settings, &go, &shown).unwrap();
        let shown = shown.0.into_inner().unwrap();
        assert_eq!(shown.len(), 3);
        assert_ne!(shown[0], shown[2], "the points move from epoch to epoch");
        let nn = super::super::knn::knn(y.view(), 1);
        let same = (0..300).filter(|&i| nn.indices[i] as usize / 100 == i / 100).count();
        assert_eq!(same, 300);
        // Stopping at the first epoch answers nothing.
        let stopped = layout::<2>(
            &graph,
            init.view(),
            &settings,
            &|_, _| std::ops::ControlFlow::Break(()),
            &(),
        );
        assert!(stopped.is_none());
    }
}
