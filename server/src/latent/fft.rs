//! t-SNE's repulsive forces in 2-D by FFT-accelerated interpolation (Linderman et al., "Fast
//! interpolation-based t-SNE", Nature Methods 2019 — the method of FIt-SNE and openTSNE).
//!
//! The repulsion needs, for every point `i`, sums over all points `j` of the squared Cauchy kernel
//! `K = (1 + |yᵢ − yⱼ|²)⁻²` times the charges `1, yⱼ₁, yⱼ₂, |yⱼ|²`. The plane is cut into boxes with
//! `P` equispaced interpolation nodes each; charges are spread onto the nodes with Lagrange
//! polynomials, the node-to-node sums are a 2-D convolution with the kernel (done by zero-padded
//! real FFTs), and the potentials are interpolated back to the points. O(n + m² log m) per
//! iteration instead of O(n log n) (Barnes-Hut) or O(n²).
//!
//! The grids and transforms are single precision (twice the SIMD width): their rounding error,
//! ~1e-6 of the grid's norm, is far below the interpolation error (~1e-2 on openTSNE's coarsest
//! grid; see the tests). Everything per point stays double.
//!
//! Written here: no Rust crate offers it (linfa-tsne wraps Barnes-Hut), and the speed goal against
//! scikit-learn and openTSNE needs it (see the benchmark in the README).

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// Interpolation nodes per box and dimension.
const P: usize = 3;
/// At least this many boxes per dimension (openTSNE's `min_num_intervals`).
const MIN_BOXES: usize = 50;
/// Boxes per unit of embedding length (openTSNE's `ints_in_interval` = 1).
const BOXES_PER_UNIT: f64 = 1.0;

/// Plans for one padded grid size `m × m`.
struct Plans {
    m: usize,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
}

impl Plans {
    fn new(m: usize) -> Self {
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        Self {
            m,
            r2c: real.plan_fft_forward(m),
            c2r: real.plan_fft_inverse(m),
            fwd: complex.plan_fft_forward(m),
            inv: complex.plan_fft_inverse(m),
        }
    }

    /// Spectrum width: the real transform of a row of `m` values has `m / 2 + 1` entries.
    fn h(&self) -> usize {
        self.m / 2 + 1
    }

    /// 2-D forward transform of the `m × m` grid whose rows at or past `nonzero_rows` are zero,
    /// into `spec`, stored column-major (`spec[c * m + r]`) so column transforms are contiguous.
    /// `real` is used as scratch.
    fn forward(&self, real: &mut [f32], nonzero_rows: usize, spec: &mut [Complex<f32>]) {
        let (m, h) = (self.m, self.h());
        spec.fill(Complex::new(0.0, 0.0));
        let mut row = vec![Complex::new(0.0, 0.0); h];
        for r in 0..nonzero_rows {
            self.r2c
                .process(&mut real[r * m..(r + 1) * m], &mut row)
                .expect("buffers sized for the plan");
            for (c, v) in row.iter().enumerate() {
                spec[c * m + r] = *v;
            }
        }
        self.fwd.process(spec);
    }

    /// 2-D inverse transform (unnormalised) of a column-major spectrum (used as scratch) into the
    /// first `rows` rows of `out`.
    fn inverse(&self, spec: &mut [Complex<f32>], rows: usize, out: &mut [f32]) {
        let (m, h) = (self.m, self.h());
        self.inv.process(spec);
        let mut row = vec![Complex::new(0.0, 0.0); h];
        for r in 0..rows {
            for (c, v) in row.iter_mut().enumerate() {
                *v = spec[c * m + r];
            }
            // A real signal's spectrum has real DC and Nyquist terms; rounding leaves ~1e-17.
            row[0].im = 0.0;
            row[h - 1].im = 0.0;
            self.c2r
                .process(&mut row, &mut out[r * m..(r + 1) * m])
                .expect("buffers sized for the plan");
        }
    }
}

/// Grids reused between iterations while the grid size stays the same (allocating and zeroing
/// fresh pages each iteration cost a fifth of the run).
struct Buffers {
    m: usize,
    /// Node spacing `kernel_hat` was computed for.
    kernel_delta: f64,
    kernel: Vec<f32>,
    kernel_hat: Vec<Complex<f32>>,
    /// Per charge: the charge grid (then the potential grid) and its spectrum.
    terms: Vec<(Vec<f32>, Vec<Complex<f32>>)>,
}

impl Buffers {
    fn new(m: usize) -> Self {
        let h = m / 2 + 1;
        Self {
            m,
            kernel_delta: f64::NAN,
            kernel: vec![0.0f32; m * m],
            kernel_hat: vec![Complex::new(0.0, 0.0); h * m],
            terms: (0..4)
                .map(|_| (vec![0.0f32; m * m], vec![Complex::new(0.0, 0.0); h * m]))
                .collect(),
        }
    }
}

/// The repulsion of a 2-D embedding; keeps FFT plans between iterations.
#[derive(Default)]
pub struct Repulsion2d {
    plans: HashMap<usize, Arc<Plans>>,
    buffers: Option<Buffers>,
}

/// Boxes per dimension and their width for an embedding spanning `range`. Small embeddings get
/// `MIN_BOXES` boxes spanning exactly the range; larger ones boxes of fixed width `1 /
/// BOXES_PER_UNIT` (openTSNE's width is at most that), so the kernel's spectrum, which depends
/// only on the grid size and node spacing, is reused until the grid has to grow. Box counts are
/// FFT-friendly (5-smooth).
fn grid(range: f64) -> (usize, f64) {
    // Widen slightly so the largest coordinate falls inside the last box.
    let range = range * (1.0 + 1e-9);
    if range * BOXES_PER_UNIT <= MIN_BOXES as f64 {
        return (MIN_BOXES, range / MIN_BOXES as f64);
    }
    (box_count(range), 1.0 / BOXES_PER_UNIT)
}

/// The smallest 5-smooth box count covering `range` at `BOXES_PER_UNIT`, at least `MIN_BOXES`.
fn box_count(range: f64) -> usize {
    let mut n = MIN_BOXES.max((range * BOXES_PER_UNIT).ceil() as usize);
    while {
        let mut r = n;
        for f in [2, 3, 5] {
            while r.is_multiple_of(f) {
                r /= f;
            }
        }
        r != 1
    } {
        n += 1;
    }
    n
}

/// Lagrange weights of the `P` nodes at box-relative positions `(k + ½) / P` for a point at `u ∈ [0, 1]`.
fn lagrange(u: f64) -> [f64; P] {
    let t = |k: usize| (k as f64 + 0.5) / P as f64;
    let mut w = [1.0; P];
    for (k, wk) in w.iter_mut().enumerate() {
        for j in (0..P).filter(|j| *j != k) {
            *wk *= (u - t(j)) / (t(k) - t(j));
        }
    }
    w
}

impl Repulsion2d {
    /// Adds the negative (repulsive) gradient, divided by 4 like the attractive part, to `grad`
    /// (`n × 2`, row-major) for the embedding `y`, and returns `Z = Σ_{i≠j} (1 + |yᵢ − yⱼ|²)⁻¹`.
    pub fn apply(&mut self, y: &[f64], grad: &mut [f64]) -> f64 {
        let n = y.len() / 2;
        let (lo, hi) = y
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        let range = (hi - lo).max(1e-6);
        let (boxes, width) = grid(range);
        let nodes = boxes * P;
        let m = 2 * nodes;
        let plans = self.plans.entry(m).or_insert_with(|| Arc::new(Plans::new(m))).clone();
        let delta = width / P as f64;

        // Each point's first node and weights along both axes.
        let mut first = vec![0usize; 2 * n];
        let mut weights = vec![[0.0; P]; 2 * n];
        for (s, v) in y.iter().enumerate() {
            let t = (v - lo) / width;
            let b = (t.floor() as usize).min(boxes - 1);
            first[s] = b * P;
            weights[s] = lagrange(t - b as f64);
        }

        if self.buffers.as_ref().is_none_or(|b| b.m != m) {
            self.buffers = Some(Buffers::new(m));
        }
        let buf = self.buffers.as_mut().expect("just made");

        // The kernel on node offsets, embedded in a circulant of size m (offset m/2 unused), and the
        // charges 1, y₁, y₂, |y|² spread onto the nodes, with their spectra: in parallel.
        let Buffers {
            kernel_delta,
            kernel,
            kernel_hat,
            terms,
            ..
        } = buf;
        let kernel_stale = *kernel_delta != delta;
        *kernel_delta = delta;
        rayon::join(
            || {
                if !kernel_stale {
                    return;
                }
                kernel.par_chunks_mut(m).enumerate().for_each(|(a, row)| {
                    let da = if a <= nodes { a } else { m - a };
                    for (b, v) in row.iter_mut().enumerate() {
                        let db = if b <= nodes { b } else { m - b };
                        *v = if a == nodes || b == nodes {
                            0.0
                        } else {
                            let r2 = delta * delta * (da * da + db * db) as f64;
                            (1.0 / ((1.0 + r2) * (1.0 + r2))) as f32
                        };
                    }
                });
                plans.forward(kernel, m, kernel_hat);
            },
            || {
                terms.par_iter_mut().enumerate().for_each(|(t, (grid, spec))| {
                    grid.fill(0.0);
                    for i in 0..n {
                        let (y1, y2) = (y[2 * i], y[2 * i + 1]);
                        let q = match t {
                            0 => 1.0,
                            1 => y1,
                            2 => y2,
                            _ => y1 * y1 + y2 * y2,
                        };
                        for (ka, wa) in weights[2 * i].iter().enumerate() {
                            let row = (first[2 * i] + ka) * m + first[2 * i + 1];
                            for (kb, wb) in weights[2 * i + 1].iter().enumerate() {
                                grid[row + kb] += (wa * wb * q) as f32;
                            }
                        }
                    }
                    plans.forward(grid, nodes, spec);
                });
            },
        );
        let kernel_hat = &*kernel_hat;
        terms.par_iter_mut().for_each(|(grid, spec)| {
            spec.iter_mut().zip(kernel_hat).for_each(|(s, k)| *s *= k);
            plans.inverse(spec, nodes, grid);
        });
        let scale = 1.0 / (m * m) as f64;
        let potentials: Vec<&[f32]> = terms.iter().map(|(g, _)| &g[..]).collect();

        // Interpolate the potentials back to the points; Z and the repulsive gradient.
        let per_point: Vec<[f64; 4]> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut phi = [0.0; 4];
                for (ka, wa) in weights[2 * i].iter().enumerate() {
                    for (kb, wb) in weights[2 * i + 1].iter().enumerate() {
                        let node = (first[2 * i] + ka) * m + first[2 * i + 1] + kb;
                        for (t, p) in potentials.iter().enumerate() {
                            phi[t] += wa * wb * f64::from(p[node]) * scale;
                        }
                    }
                }
                phi
            })
            .collect();
        let mut z = 0.0;
        for (i, phi) in per_point.iter().enumerate() {
            let (y1, y2) = (y[2 * i], y[2 * i + 1]);
            z += (1.0 + y1 * y1 + y2 * y2) * phi[0] - 2.0 * (y1 * phi[1] + y2 * phi[2]) + phi[3];
        }
        z -= n as f64;
        for (i, phi) in per_point.iter().enumerate() {
            grad[2 * i] -= (y[2 * i] * phi[0] - phi[1]) / z;
            grad[2 * i + 1] -= (y[2 * i + 1] * phi[0] - phi[2]) / z;
        }
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact O(n²) repulsion, for comparison.
    fn exact(y: &[f64]) -> (Vec<f64>, f64) {
        let mut g = vec![0.0; y.len()];
        let z = crate::latent::tsne::repulsion_exact::<2>(y, &mut g);
        (g, z)
    }

    /// Relative errors of Z and of the gradient against the exact sums for 400 random points.
    fn errors(spread: f64) -> (f64, f64) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let y: Vec<f64> = (0..2 * 400).map(|_| rng.random_range(-spread..spread)).collect();
        let (g_exact, z_exact) = exact(&y);
        let mut g = vec![0.0; y.len()];
        let z = Repulsion2d::default().apply(&y, &mut g);
        let err: f64 = g.iter().zip(&g_exact).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let norm: f64 = g_exact.iter().map(|v| v * v).sum::<f64>().sqrt();
        ((z - z_exact).abs() / z_exact, err / norm)
    }

    #[test]
    fn interpolated_repulsion_matches_the_exact_sum() {
        // A fine grid (50 boxes over 10 units): interpolation is all but exact.
        let (ez, eg) = errors(5.0);
        assert!(ez < 1e-4 && eg < 1e-3, "Z {ez}, gradient {eg}");
        // openTSNE's coarsest grid (50 boxes over 40 units): about 1 % — FIt-SNE's accuracy.
        let (ez, eg) = errors(20.0);
        assert!(ez < 2e-2 && eg < 5e-2, "Z {ez}, gradient {eg}");
        eprintln!("coarse grid: Z {ez:.2e}, gradient {eg:.2e}");
        // Wider than 50 units, at a t-SNE embedding's density: 3,000 points in 30 clusters over
        // about 60 units, boxes of width 1.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let centres: Vec<(f64, f64)> = (0..30)
            .map(|_| (rng.random_range(-28.0..28.0), rng.random_range(-28.0..28.0)))
            .collect();
        let y: Vec<f64> = (0..3000)
            .flat_map(|i| {
                let (cx, cy) = centres[i % 30];
                [cx + rng.random_range(-2.0..2.0), cy + rng.random_range(-2.0..2.0)]
            })
            .collect();
        let (g_exact, z_exact) = exact(&y);
        let mut g = vec![0.0; y.len()];
        let z = Repulsion2d::default().apply(&y, &mut g);
        let err: f64 = g.iter().zip(&g_exact).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let norm: f64 = g_exact.iter().map(|v| v * v).sum::<f64>().sqrt();
        let (ez, eg) = ((z - z_exact).abs() / z_exact, err / norm);
        eprintln!("width-1 grid: Z {ez:.2e}, gradient {eg:.2e}");
        assert!(ez < 1e-2 && eg < 5e-2, "Z {ez}, gradient {eg}");
    }

    #[test]
    fn lagrange_weights_interpolate_quadratics_exactly() {
        for u in [0.0, 0.3, 0.77, 1.0] {
            let w = lagrange(u);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let t = |k: usize| (k as f64 + 0.5) / 3.0;
            let interp: f64 = (0..3).map(|k| w[k] * t(k) * t(k)).sum();
            assert!((interp - u * u).abs() < 1e-12);
        }
        assert_eq!(box_count(10.0), 50);
        assert_eq!(box_count(61.5), 64);
        assert_eq!(grid(10.0), (50, 10.0 * (1.0 + 1e-9) / 50.0));
        assert_eq!(grid(61.5), (64, 1.0));
    }
}
