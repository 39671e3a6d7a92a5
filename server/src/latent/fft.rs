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

    /// The real transforms of the first `rows` rows of `real` (rows of `m` values, used as
    /// scratch) into `rows_hat` (`rows × h`, row-major), a row per parallel task.
    fn rows_forward(&self, real: &mut [f32], rows: usize, rows_hat: &mut [Complex<f32>]) {
        let (m, h) = (self.m, self.h());
        real[..rows * m]
            .par_chunks_mut(m)
            .zip(rows_hat[..rows * h].par_chunks_mut(h))
            .for_each_init(
                || self.r2c.make_scratch_vec(),
                |scratch, (row, out)| {
                    self.r2c
                        .process_with_scratch(row, out, scratch)
                        .expect("buffers sized for the plan");
                },
            );
    }

    /// The column transforms: column `c` of `spec` (column-major, `spec[c * m + r]`) is set to
    /// column `c` of `rows_hat` (`rows × h`, zero below) and transformed; with a kernel spectrum,
    /// multiplied by its column and transformed back (unnormalised) in the same task, while the
    /// column is in cache.
    fn columns(
        &self,
        rows_hat: &[Complex<f32>],
        rows: usize,
        spec: &mut [Complex<f32>],
        kernel_hat: Option<&[Complex<f32>]>,
    ) {
        let (m, h) = (self.m, self.h());
        let scratch_len = self
            .fwd
            .get_inplace_scratch_len()
            .max(self.inv.get_inplace_scratch_len());
        spec.par_chunks_mut(m * COLUMNS_PER_TASK).enumerate().for_each_init(
            || vec![Complex::new(0.0, 0.0); scratch_len],
            |scratch, (t, chunk)| {
                let c0 = t * COLUMNS_PER_TASK;
                for (dc, col) in chunk.chunks_mut(m).enumerate() {
                    for (r, v) in col[..rows].iter_mut().enumerate() {
                        *v = rows_hat[r * h + c0 + dc];
                    }
                    col[rows..].fill(Complex::new(0.0, 0.0));
                }
                self.fwd.process_with_scratch(chunk, scratch);
                if let Some(k) = kernel_hat {
                    chunk.iter_mut().zip(&k[c0 * m..]).for_each(|(s, k)| *s *= k);
                    self.inv.process_with_scratch(chunk, scratch);
                }
            },
        );
    }

    /// The inverse real transforms of the first `rows` rows of the column-major spectrum `spec`
    /// into the rows of `out` (rows of `m` values), a row per parallel task.
    fn rows_inverse(&self, spec: &[Complex<f32>], rows: usize, out: &mut [f32]) {
        let (m, h) = (self.m, self.h());
        out[..rows * m].par_chunks_mut(m).enumerate().for_each_init(
            || (vec![Complex::new(0.0, 0.0); h], self.c2r.make_scratch_vec()),
            |(row, scratch), (r, o)| {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = spec[c * m + r];
                }
                // A real signal's spectrum has real DC and Nyquist terms; rounding leaves ~1e-17.
                row[0].im = 0.0;
                row[h - 1].im = 0.0;
                self.c2r
                    .process_with_scratch(row, o, scratch)
                    .expect("buffers sized for the plan");
            },
        );
    }
}

/// Columns of the spectrum per parallel task of [`Plans::columns`].
const COLUMNS_PER_TASK: usize = 4;

/// Grids reused between iterations while the grid size stays the same (allocating and zeroing
/// fresh pages each iteration cost a fifth of the run).
struct Buffers {
    m: usize,
    /// Node spacing `kernel_hat` was computed for.
    kernel_delta: f64,
    /// The kernel's spectrum, column-major (`h × m`).
    kernel_hat: Vec<Complex<f32>>,
    /// Per charge ([`CHARGES`]).
    terms: Vec<Term>,
}

/// One charge's grids.
struct Term {
    /// The charges on the nodes (`nodes` rows of `m`, zero past column `nodes`), then the
    /// potentials on them.
    grid: Vec<f32>,
    /// The real transforms of the grid's rows (`nodes × h`).
    rows_hat: Vec<Complex<f32>>,
    /// The spectrum, column-major (`h × m`).
    spec: Vec<Complex<f32>>,
}

/// The charges spread onto the grid: `1, y₁, y₂`. FIt-SNE and openTSNE spread a fourth, `|y|²`,
/// for the normaliser Z only; Z needs just its sum over the points, `Σᵢ Σⱼ Kᵢⱼ|yⱼ|²`, which by the
/// (interpolated) kernel's symmetry is `Σⱼ |yⱼ|² φ₀(yⱼ)`: one transform fewer per iteration.
const CHARGES: usize = 3;

impl Buffers {
    fn new(m: usize) -> Self {
        let (h, nodes) = (m / 2 + 1, m / 2);
        Self {
            m,
            kernel_delta: f64::NAN,
            kernel_hat: vec![Complex::new(0.0, 0.0); h * m],
            terms: (0..CHARGES)
                .map(|_| Term {
                    grid: vec![0.0f32; nodes * m],
                    rows_hat: vec![Complex::new(0.0, 0.0); nodes * h],
                    spec: vec![Complex::new(0.0, 0.0); h * m],
                })
                .collect(),
        }
    }

    /// Recomputes the kernel's spectrum for node spacing `delta` unless it is current: the kernel
    /// on node offsets, embedded in a circulant of size `m` (offset `m / 2` unused).
    fn kernel_for(&mut self, plans: &Plans, delta: f64) {
        if self.kernel_delta == delta {
            return;
        }
        self.kernel_delta = delta;
        let (m, h, nodes) = (self.m, plans.h(), self.m / 2);
        let mut kernel = vec![0.0f32; m * m];
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
        let mut rows_hat = vec![Complex::new(0.0, 0.0); m * h];
        plans.rows_forward(&mut kernel, m, &mut rows_hat);
        plans.columns(&rows_hat, m, &mut self.kernel_hat, None);
    }
}

/// The repulsion of a 2-D embedding; keeps FFT plans between iterations.
#[derive(Default)]
pub struct Repulsion2d {
    plans: HashMap<usize, Arc<Plans>>,
    buffers: Option<Buffers>,
    stencils: Stencils,
}

/// Points per block of the sum of Z.
const Z_ROWS: usize = 4096;

/// Box widths of small embeddings are powers of `2^(1 / WIDTH_STEPS)`.
const WIDTH_STEPS: f64 = 16.0;

/// Boxes per dimension and their width for an embedding spanning `range`. Small embeddings get
/// about `MIN_BOXES` boxes (at most 9 % more), of the largest width on a geometric ladder (ratio
/// `2^(1/8)`) that gives `MIN_BOXES`; larger ones boxes of fixed width `1 / BOXES_PER_UNIT`
/// (openTSNE's width is at most that). The kernel's spectrum depends only on the grid size and
/// node spacing, so it is reused until the embedding grows past a step of the ladder or the grid
/// has to grow: openTSNE sizes its boxes to the range exactly and recomputes it every iteration of
/// early exaggeration. Box counts are FFT-friendly (5-smooth).
fn grid(range: f64) -> (usize, f64) {
    // Widen slightly so the largest coordinate falls inside the last box.
    let range = range * (1.0 + 1e-9);
    let width = if range * BOXES_PER_UNIT <= MIN_BOXES as f64 {
        let exact = range / MIN_BOXES as f64;
        (exact.log2() * WIDTH_STEPS)
            .floor()
            .exp2()
            .powf(1.0 / WIDTH_STEPS)
            .min(exact)
    } else {
        1.0 / BOXES_PER_UNIT
    };
    (box_count(range / width), width)
}

/// The smallest 5-smooth box count of at least `boxes` and at least `MIN_BOXES`.
fn box_count(boxes: f64) -> usize {
    let mut n = MIN_BOXES.max(boxes.ceil() as usize);
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

/// Box-relative positions of the interpolation nodes, `(k + ½) / P`.
const fn node(k: usize) -> f64 {
    (k as f64 + 0.5) / P as f64
}

/// `1 / Πⱼ≠ₖ (tₖ − tⱼ)`, the Lagrange denominators, computed once (a division per weight was
/// most of the per-point work of an iteration).
const DENOMINATORS: [f64; P] = {
    let mut d = [1.0; P];
    let mut k = 0;
    while k < P {
        let mut j = 0;
        while j < P {
            if j != k {
                d[k] *= node(k) - node(j);
            }
            j += 1;
        }
        d[k] = 1.0 / d[k];
        k += 1;
    }
    d
};

/// Lagrange weights of the `P` nodes at box-relative positions `(k + ½) / P` for a point at `u ∈ [0, 1]`.
fn lagrange(u: f64) -> [f64; P] {
    std::array::from_fn(|k| {
        (0..P)
            .filter(|j| *j != k)
            .fold(DENOMINATORS[k], |w, j| w * (u - node(j)))
    })
}

/// Adds the charges `q(i)` of every point onto `grids` (one per charge, rows of `m` nodes), each
/// at its `P × P` nodes with weights `wa · wb` ([`Stencils`]).
fn spread<const C: usize>(st: &Stencils, m: usize, mut grids: [&mut [f32]; C], q: impl Fn(usize) -> [f64; C]) {
    for i in 0..st.first.len() / 2 {
        let charges = q(i);
        st.each(i, m, |node, w| {
            for (g, c) in grids.iter_mut().zip(charges) {
                g[node] += (w * c) as f32;
            }
        });
    }
}

/// Each point's first node and Lagrange weights along both axes (`2n` of each, row-major like
/// the coordinates), kept between iterations.
#[derive(Default)]
struct Stencils {
    first: Vec<usize>,
    weights: Vec<[f64; P]>,
}

impl Stencils {
    /// The stencils of `y` on a grid of `boxes` boxes of `width` from `lo`, in parallel.
    fn fill(&mut self, y: &[f64], lo: f64, width: f64, boxes: usize) {
        self.first.resize(y.len(), 0);
        self.weights.resize(y.len(), [0.0; P]);
        self.first
            .par_iter_mut()
            .zip(self.weights.par_iter_mut())
            .zip(y.par_iter())
            .for_each(|((f, w), v)| {
                let t = (v - lo) / width;
                let b = (t.floor() as usize).min(boxes - 1);
                *f = b * P;
                *w = lagrange(t - b as f64);
            });
    }

    /// Calls `f(node, weight)` for each of point `i`'s `P × P` nodes on a grid of rows of `m`
    /// (`node` indexes the grid; the weight is `wa · wb`): the one stencil walk that spreading and
    /// gathering share.
    #[inline]
    fn each(&self, i: usize, m: usize, mut f: impl FnMut(usize, f64)) {
        let (wa, wb) = (&self.weights[2 * i], &self.weights[2 * i + 1]);
        for (ka, wa) in wa.iter().enumerate() {
            let row = (self.first[2 * i] + ka) * m + self.first[2 * i + 1];
            for (kb, wb) in wb.iter().enumerate() {
                f(row + kb, wa * wb);
            }
        }
    }

    /// The stencil weights times the values of `grids` (rows of `m`) around point `i`.
    #[inline]
    fn gather<const C: usize>(&self, i: usize, m: usize, grids: &[&[f32]; C]) -> [f64; C] {
        let mut phi = [0.0; C];
        self.each(i, m, |node, w| {
            for (p, g) in phi.iter_mut().zip(grids) {
                *p += w * f64::from(g[node]);
            }
        });
        phi
    }
}

impl Repulsion2d {
    /// Adds the negative (repulsive) gradient, divided by 4 like the attractive part, to `grad`
    /// (`n × 2`, row-major) for the embedding `y`, and returns `Z = Σ_{i≠j} (1 + |yᵢ − yⱼ|²)⁻¹`.
    pub fn apply(&mut self, y: &[f64], grad: &mut [f64]) -> f64 {
        let n = y.len() / 2;
        let (lo, hi) = y
            .par_iter()
            .fold(
                || (f64::INFINITY, f64::NEG_INFINITY),
                |(a, b), v| (a.min(*v), b.max(*v)),
            )
            .reduce(
                || (f64::INFINITY, f64::NEG_INFINITY),
                |(a, b), (c, d)| (a.min(c), b.max(d)),
            );
        let range = (hi - lo).max(1e-6);
        let (boxes, width) = grid(range);
        let nodes = boxes * P;
        let m = 2 * nodes;
        let plans = self.plans.entry(m).or_insert_with(|| Arc::new(Plans::new(m))).clone();
        let delta = width / P as f64;
        self.stencils.fill(y, lo, width, boxes);
        let st = &self.stencils;

        if self.buffers.as_ref().is_none_or(|b| b.m != m) {
            self.buffers = Some(Buffers::new(m));
        }
        let buf = self.buffers.as_mut().expect("just made");
        buf.kernel_for(&plans, delta);

        // The charges spread onto the nodes and convolved with the kernel, in parallel: the
        // constant charge on one side, the two coordinate charges (one pass over the points) on
        // the other, each term's transforms starting as soon as its grid is ready.
        let Buffers { kernel_hat, terms, .. } = buf;
        let kernel_hat = &kernel_hat[..];
        let convolve = |term: &mut Term| {
            plans.rows_forward(&mut term.grid, nodes, &mut term.rows_hat);
            plans.columns(&term.rows_hat, nodes, &mut term.spec, Some(kernel_hat));
            plans.rows_inverse(&term.spec, nodes, &mut term.grid);
        };
        let [one, by1, by2] = &mut terms[..] else {
            unreachable!("{CHARGES} charges")
        };
        rayon::join(
            || {
                one.grid.fill(0.0);
                spread(st, m, [&mut one.grid[..]], |_| [1.0]);
                convolve(one);
            },
            || {
                by1.grid.fill(0.0);
                by2.grid.fill(0.0);
                spread(st, m, [&mut by1.grid[..], &mut by2.grid[..]], |i| {
                    [y[2 * i], y[2 * i + 1]]
                });
                rayon::join(|| convolve(by1), || convolve(by2));
            },
        );
        let scale = 1.0 / (m * m) as f64;
        let potentials: [&[f32]; CHARGES] = [&one.grid, &by1.grid, &by2.grid];

        // Interpolate the potentials back to the points; Z and the repulsive gradient.
        let per_point: Vec<[f64; CHARGES]> = (0..n)
            .into_par_iter()
            .map(|i| st.gather(i, m, &potentials).map(|p| p * scale))
            .collect();
        // Z = Σᵢ Σⱼ Kᵢⱼ (1 + |yᵢ − yⱼ|²) − n: per point (1 + |yᵢ|²) φ₀ − 2 yᵢ·(φ₁, φ₂), plus the sum
        // of the |y|² charge's potentials, Σⱼ |yⱼ|² φ₀(yⱼ) (see [`CHARGES`]); the diagonal adds n.
        // Summed in fixed blocks, then in order: the same bits on every run.
        let z = per_point
            .par_chunks(Z_ROWS)
            .zip(y.par_chunks(2 * Z_ROWS))
            .map(|(phis, ys)| {
                phis.iter()
                    .zip(ys.chunks(2))
                    .map(|(phi, yi)| {
                        let r2 = yi[0] * yi[0] + yi[1] * yi[1];
                        (1.0 + 2.0 * r2) * phi[0] - 2.0 * (yi[0] * phi[1] + yi[1] * phi[2])
                    })
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum::<f64>()
            - n as f64;
        grad.par_chunks_mut(2)
            .zip(per_point.par_iter())
            .zip(y.par_chunks(2))
            .for_each(|((g, phi), yi)| {
                g[0] -= (yi[0] * phi[0] - phi[1]) / z;
                g[1] -= (yi[1] * phi[0] - phi[2]) / z;
            });
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
            let interp: f64 = (0..3).map(|k| w[k] * node(k) * node(k)).sum();
            assert!((interp - u * u).abs() < 1e-12);
        }
        assert_eq!(box_count(10.0), 50);
        assert_eq!(box_count(61.5), 64);
        assert_eq!(grid(61.5), (64, 1.0));
        // Small ranges: a width on the ladder, the range covered by 50 to 54 boxes.
        for range in [1e-3, 0.37, 10.0, 49.9] {
            let (boxes, width) = grid(range);
            let steps = width.log2() * WIDTH_STEPS;
            assert!(
                (steps - steps.round()).abs() < 1e-9,
                "{range}: width {width} off the ladder"
            );
            assert!(
                boxes as f64 * width >= range && (50..=54).contains(&boxes),
                "{range}: {boxes} × {width}"
            );
        }
        // Nearby ranges share a grid (and so the kernel's spectrum).
        assert_eq!(grid(10.0), grid(10.05));
    }
}
