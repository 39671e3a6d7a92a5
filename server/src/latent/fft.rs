//! t-SNE's repulsive forces in 2-D by FFT-accelerated interpolation (Linderman et al., "Fast
//! interpolation-based t-SNE", Nature Methods 2019 — the method of FIt-SNE and openTSNE).
//!
//! The repulsion needs, for every point `i`, the sums over all points `j` of `Kᵢⱼ²(yᵢ − yⱼ)` and,
//! for the normaliser, of `Kᵢⱼ = (1 + |yᵢ − yⱼ|²)⁻¹`. The plane is cut into boxes with `P`
//! equispaced interpolation nodes each; a unit charge per point is spread onto the nodes with
//! Lagrange polynomials, the node-to-node sums are 2-D convolutions of that one grid with three
//! kernels — `K`, and `Δ₁K²`, `Δ₂K²` for the two components of the force — done by zero-padded
//! real FFTs, and the three potentials are interpolated back to the points. O(n + m² log m) per
//! iteration instead of O(n log n) (Barnes-Hut) or O(n²).
//!
//! FIt-SNE and openTSNE convolve four charges (`1, y₁, y₂, |y|²`) with `K²` and assemble the
//! force as `yᵢ·φ₀ − φ₁`: four forward transforms and four inverse ones per iteration, and a
//! difference of large terms. With the force's components as kernels of their own, all three
//! convolutions share one charge grid and so one forward transform (two thirds of the transforms,
//! a third of the spreading), and the force comes out of its convolution directly.
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
use realfft::{RealFftPlanner, RealToComplex};
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

    /// Copies column `c0 + dc` of `rows_hat` (`rows × h`, zero below) into column `dc` of
    /// `chunk` (columns of `m`) and transforms the chunk's columns in place.
    fn column_forward(
        &self,
        rows_hat: &[Complex<f32>],
        rows: usize,
        c0: usize,
        chunk: &mut [Complex<f32>],
        scratch: &mut [Complex<f32>],
    ) {
        let (m, h) = (self.m, self.h());
        for (dc, col) in chunk.chunks_mut(m).enumerate() {
            for (r, v) in col[..rows].iter_mut().enumerate() {
                *v = rows_hat[r * h + c0 + dc];
            }
            col[rows..].fill(Complex::new(0.0, 0.0));
        }
        self.fwd.process_with_scratch(chunk, scratch);
    }

    fn scratch_len(&self) -> usize {
        self.fwd
            .get_inplace_scratch_len()
            .max(self.inv.get_inplace_scratch_len())
    }

    /// The column transforms of `rows_hat` (`rows × h`, zero below) into `spec` (column-major,
    /// `spec[c * m + r]`), a few columns per parallel task.
    fn columns(&self, rows_hat: &[Complex<f32>], rows: usize, spec: &mut [Complex<f32>]) {
        let m = self.m;
        spec.par_chunks_mut(m * COLUMNS_PER_TASK).enumerate().for_each_init(
            || vec![Complex::new(0.0, 0.0); self.scratch_len()],
            |scratch, (t, chunk)| self.column_forward(rows_hat, rows, t * COLUMNS_PER_TASK, chunk, scratch),
        );
    }

    /// The column passes of the convolutions of one grid with the force kernels, and the
    /// normaliser's sum: each column of `rows_hat` is transformed once, multiplied by each force
    /// kernel's column into `specs` and transformed back (unnormalised) in the same task, while
    /// the columns are in cache. Answers `Σ_ω |Ŝ(ω)|² K̂(ω)` over the whole spectrum (the
    /// columns past `h` are the conjugates of those before: counted twice), from `kernels.z`.
    /// Per column of spectrum, this streams the kernels' columns from memory: they are kept as
    /// one f32 each (their real or imaginary part), half the traffic of complex ones (perf: the
    /// products took as long as the transforms).
    fn columns_convolved(
        &self,
        rows_hat: &[Complex<f32>],
        rows: usize,
        kernels: &Kernels,
        specs: &mut [Vec<Complex<f32>>; 2],
    ) -> f64 {
        let (m, h) = (self.m, self.h());
        let [s0, s1] = specs;
        let width = m * COLUMNS_PER_TASK;
        let sums: Vec<f64> = s0
            .par_chunks_mut(width)
            .zip(s1.par_chunks_mut(width))
            .enumerate()
            .map_init(
                || {
                    (
                        vec![Complex::new(0.0, 0.0); width],
                        vec![Complex::new(0.0, 0.0); self.scratch_len()],
                    )
                },
                |(hat, scratch), (t, (c0, c1))| {
                    let (start, len) = (t * width, c0.len());
                    let hat = &mut hat[..len];
                    self.column_forward(rows_hat, rows, t * COLUMNS_PER_TASK, hat, scratch);
                    let mut z = 0.0f64;
                    for (dc, (col, kz)) in hat.chunks(m).zip(kernels.z[start..start + len].chunks(m)).enumerate() {
                        let c = t * COLUMNS_PER_TASK + dc;
                        let twice = if c == 0 || c == h - 1 { 1.0 } else { 2.0 };
                        // A column's sum in f32 (720 terms: ~1e-5, far below the interpolation's
                        // error), the columns' in f64.
                        z += twice * f64::from(col.iter().zip(kz).map(|(v, k)| v.norm_sqr() * k).sum::<f32>());
                    }
                    let force = kernels.force.iter().map(|k| &k[start..start + len]);
                    for (out, k) in [&mut *c0, &mut *c1].into_iter().zip(force) {
                        // Times `i·k`: the force kernels' spectra are imaginary.
                        for ((o, v), k) in out.iter_mut().zip(&*hat).zip(k) {
                            *o = Complex::new(-v.im * k, v.re * k);
                        }
                        self.inv.process_with_scratch(out, scratch);
                    }
                    z
                },
            )
            .collect();
        sums.iter().sum()
    }

    /// The inverse real transforms of the first `rows` rows of two column-major spectra at once,
    /// into the rows of `outs` (rows of `m` values): each pair of rows is one complex transform,
    /// `a + i·b`, its spectrum `Â + i·B̂` completed past `h` by conjugate symmetry (one transform
    /// where two real inverses took about as long as a complex one each: perf). A few rows per
    /// parallel task: they are adjacent in every column, so each cache line read is used whole.
    fn rows_inverse_pair(&self, specs: &[Vec<Complex<f32>>; 2], rows: usize, outs: &mut [Vec<f32>; 2]) {
        let (m, h) = (self.m, self.h());
        let [oa, ob] = outs;
        oa[..rows * m]
            .par_chunks_mut(m * ROWS_PER_TASK)
            .zip(ob[..rows * m].par_chunks_mut(m * ROWS_PER_TASK))
            .enumerate()
            .for_each_init(
                || {
                    let half = vec![Complex::new(0.0, 0.0); 2 * h * ROWS_PER_TASK];
                    (
                        half,
                        vec![Complex::new(0.0, 0.0); m],
                        vec![Complex::new(0.0, 0.0); self.scratch_len()],
                    )
                },
                |(half, row, scratch), (t, (oa, ob))| {
                    let (r0, count) = (t * ROWS_PER_TASK, oa.len() / m);
                    let (ha, hb) = half.split_at_mut(h * ROWS_PER_TASK);
                    for (spec, half) in specs.iter().zip([ha, hb]) {
                        for c in 0..h {
                            for (k, v) in spec[c * m + r0..c * m + r0 + count].iter().enumerate() {
                                half[k * h + c] = *v;
                            }
                        }
                    }
                    let (ha, hb) = half.split_at(h * ROWS_PER_TASK);
                    for k in 0..count {
                        let (a, b) = (&ha[k * h..(k + 1) * h], &hb[k * h..(k + 1) * h]);
                        // A real row's spectrum has real DC and Nyquist terms; rounding leaves
                        // ~1e-7 there, which would leak from one row of the pair into the other.
                        let real = |v: Complex<f32>, c: usize| {
                            if c == 0 || c == h - 1 {
                                Complex::new(v.re, 0.0)
                            } else {
                                v
                            }
                        };
                        for c in 0..h {
                            let (a, b) = (real(a[c], c), real(b[c], c));
                            row[c] = Complex::new(a.re - b.im, a.im + b.re);
                        }
                        for c in h..m {
                            let (a, b) = (a[m - c].conj(), b[m - c].conj());
                            row[c] = Complex::new(a.re - b.im, a.im + b.re);
                        }
                        self.inv.process_with_scratch(row, scratch);
                        for ((x, va), vb) in row
                            .iter()
                            .zip(&mut oa[k * m..(k + 1) * m])
                            .zip(&mut ob[k * m..(k + 1) * m])
                        {
                            *va = x.re;
                            *vb = x.im;
                        }
                    }
                },
            );
    }
}

/// Rows per parallel task of [`Plans::rows_inverse_pair`]: 8 complex values fill a cache line.
const ROWS_PER_TASK: usize = 8;

/// Columns of the spectrum per parallel task of [`Plans::columns`].
const COLUMNS_PER_TASK: usize = 4;

/// The kernels' spectra for one grid size and node spacing, column-major (`h × m`), as functions
/// of the offset `Δ` between two nodes. Each kernel is even or odd in each coordinate of `Δ` (on
/// the circulant too), so its spectrum is real or imaginary: only that part is kept.
struct Kernels {
    /// Node spacing they were computed for.
    delta: f64,
    /// `K = (1 + |Δ|²)⁻¹` (even: a real spectrum): summed over all pairs of points, Z + n.
    z: Vec<f32>,
    /// `Δ₁K²` and `Δ₂K²` (each odd in one coordinate: imaginary spectra, their imaginary parts
    /// here): their potentials are the two components of a point's repulsive force, divided by 4.
    force: [Vec<f32>; 2],
}

/// Grids reused between iterations while the grid size stays the same (allocating and zeroing
/// fresh pages each iteration cost a fifth of the run).
struct Buffers {
    m: usize,
    kernels: Kernels,
    /// The unit charges on the nodes (`nodes` rows of `m`, zero past column `nodes`).
    charges: Vec<f32>,
    /// The real transforms of the charge grid's rows (`nodes × h`).
    rows_hat: Vec<Complex<f32>>,
    /// Per force kernel: the spectrum of its convolution, column-major (`h × m`).
    specs: [Vec<Complex<f32>>; 2],
    /// Per force kernel: its potentials on the nodes (`nodes` rows of `m`).
    potentials: [Vec<f32>; 2],
}

impl Buffers {
    fn new(m: usize) -> Self {
        // At most `m / 2` nodes per dimension ([`transform_size`]).
        let (h, nodes) = (m / 2 + 1, m / 2);
        let spectrum = || vec![Complex::new(0.0, 0.0); h * m];
        Self {
            m,
            kernels: Kernels {
                delta: f64::NAN,
                z: vec![0.0; h * m],
                force: [vec![0.0; h * m], vec![0.0; h * m]],
            },
            charges: vec![0.0f32; nodes * m],
            rows_hat: vec![Complex::new(0.0, 0.0); nodes * h],
            specs: [spectrum(), spectrum()],
            potentials: [vec![0.0f32; nodes * m], vec![0.0f32; nodes * m]],
        }
    }

    /// Recomputes the kernels' spectra for node spacing `delta` unless they are current: each
    /// kernel on node offsets, embedded in a circulant of size `m` (offset `m / 2` unused).
    fn kernel_for(&mut self, plans: &Plans, delta: f64) {
        let k = &mut self.kernels;
        if k.delta == delta {
            return;
        }
        k.delta = delta;
        let (m, h, half) = (self.m, plans.h(), self.m / 2);
        // Offset of index `a` of the circulant: `a` up to `half`, then negative (a grid of fewer
        // than `half` nodes reads only the offsets it has).
        let offset = |a: usize| if a <= half { a as f64 } else { a as f64 - m as f64 };
        let mut kernel = vec![0.0f32; m * m];
        let mut rows_hat = vec![Complex::new(0.0, 0.0); m * h];
        let mut hat = vec![Complex::new(0.0, 0.0); m * h];
        for force in [false, true] {
            kernel.par_chunks_mut(m).enumerate().for_each(|(a, row)| {
                for (b, v) in row.iter_mut().enumerate() {
                    *v = if a == half || b == half {
                        0.0
                    } else {
                        let (da, db) = (delta * offset(a), delta * offset(b));
                        let k = 1.0 / (1.0 + da * da + db * db);
                        (if force { da * k * k } else { k }) as f32
                    };
                }
            });
            plans.rows_forward(&mut kernel, m, &mut rows_hat);
            plans.columns(&rows_hat, m, &mut hat);
            if force {
                // `Δ₂K²` is `Δ₁K²` transposed, and so is its spectrum: F₂[r][c] = F₁[c][r], read
                // from the stored half (`hat[c * m + r]`, c < h) directly or, past it, by
                // conjugate symmetry (F[r][c] = conj F[−r][−c] for a real kernel).
                let [f1, f2] = &mut k.force;
                f1.iter_mut().zip(&hat).for_each(|(k, v)| *k = v.im);
                f2.par_chunks_mut(m).enumerate().for_each(|(c, col)| {
                    for (r, v) in col.iter_mut().enumerate() {
                        *v = if r < h {
                            hat[r * m + c].im
                        } else {
                            -hat[(m - r) * m + (m - c) % m].im
                        };
                    }
                });
            } else {
                k.z.iter_mut().zip(&hat).for_each(|(k, v)| *k = v.re);
            }
        }
    }
}

/// The repulsion of a 2-D embedding; keeps FFT plans between iterations.
#[derive(Default)]
pub struct Repulsion2d {
    plans: HashMap<usize, Arc<Plans>>,
    buffers: Option<Buffers>,
    stencils: Stencils,
}

/// Box widths of small embeddings are powers of `2^(1 / WIDTH_STEPS)`.
const WIDTH_STEPS: f64 = 16.0;

/// Boxes per dimension and their width for an embedding spanning `range`. Small embeddings get
/// about `MIN_BOXES` boxes (50 to 53), of the largest width on a geometric ladder (ratio
/// `2^(1/WIDTH_STEPS)`) that gives `MIN_BOXES`; larger ones boxes of fixed width
/// `1 / BOXES_PER_UNIT` (openTSNE's width is at most that). The kernels' spectra depend only on
/// the grid size and node spacing, so they are reused until the embedding grows past a step of the
/// ladder or the grid has to grow: openTSNE sizes its boxes to the range exactly and recomputes its
/// kernel every iteration of early exaggeration. The transforms' size is chosen apart from the box
/// count ([`transform_size`]).
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

/// The box count for `boxes` boxes' worth of range: at least `MIN_BOXES`.
fn box_count(boxes: f64) -> usize {
    MIN_BOXES.max(boxes.ceil() as usize)
}

/// Whether rustfft transforms `m` points quickly: `m = 2ᵃ·3ᵇ` or `2ᵃ·5`, a multiple of 4 (so that
/// the real transform's half, `m / 2`, is even too). One iteration's transforms at sizes with 5²
/// or 3·5 in them took up to 2.2 times as long as at the next such size up (450 against 512, 750
/// against 768; 720 against 768 1.15×: a scratch benchmark on this machine).
fn fast_size(m: usize) -> bool {
    let mut r = m;
    while r.is_multiple_of(2) {
        r /= 2;
    }
    let twos = m / r;
    while r.is_multiple_of(3) {
        r /= 3;
    }
    twos >= 4 && (r == 1 || (r == 5 && m == 5 * twos))
}

/// The transform size for `nodes` nodes per dimension: the least fast size ([`fast_size`]) of
/// at least `2 · nodes`, so that the circular convolution holds every offset between two nodes,
/// `−(nodes − 1)..nodes`, without wrapping.
fn transform_size(nodes: usize) -> usize {
    (2 * nodes..).find(|m| fast_size(*m)).expect("some size is fast")
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

/// Adds a unit charge per point onto `grid` (rows of `m` nodes), at its `P × P` nodes with
/// weights `wa · wb` ([`Stencils`]).
fn spread(st: &Stencils, m: usize, grid: &mut [f32]) {
    for i in 0..st.first.len() / 2 {
        st.each(i, m, |node, w| grid[node] += w as f32);
    }
}

/// Coordinates per parallel task of [`Stencils::fill`].
const STENCIL_ROWS: usize = 4096;

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
            .with_min_len(STENCIL_ROWS)
            .for_each(|((f, w), v)| {
                let t = (v - lo) / width;
                // `t ≥ 0` (`lo` is the least coordinate): truncation is the floor, without
                // `floor`'s call into libm (plain x86-64 has no rounding instruction).
                let b = (t as usize).min(boxes - 1);
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
        let m = transform_size(nodes);
        let plans = self.plans.entry(m).or_insert_with(|| Arc::new(Plans::new(m))).clone();
        let delta = width / P as f64;
        self.stencils.fill(y, lo, width, boxes);
        let st = &self.stencils;

        if self.buffers.as_ref().is_none_or(|b| b.m != m) {
            self.buffers = Some(Buffers::new(m));
        }
        let buf = self.buffers.as_mut().expect("just made");
        buf.kernel_for(&plans, delta);

        // The charges spread onto the nodes, their rows transformed once, the column passes of
        // the force convolutions (and Z's sum), and their inverse row transforms.
        buf.charges.fill(0.0);
        spread(st, m, &mut buf.charges);
        plans.rows_forward(&mut buf.charges, nodes, &mut buf.rows_hat);
        let pairs = plans.columns_convolved(&buf.rows_hat, nodes, &buf.kernels, &mut buf.specs);
        plans.rows_inverse_pair(&buf.specs, nodes, &mut buf.potentials);
        let scale = 1.0 / (m * m) as f64;
        // Z = Σᵢ Σⱼ≠ᵢ Kᵢⱼ. The interpolated Σᵢ Σⱼ Kᵢⱼ is Σ over the nodes of the charges times
        // their potential, `⟨s, K ⊛ s⟩`, which is `Σ_ω |Ŝ|² K̂ / m²` (Parseval): no inverse
        // transform. The diagonal adds n (K = 1 at Δ = 0).
        let z = pairs * scale - n as f64;
        let potentials = [&buf.potentials[0][..], &buf.potentials[1][..]];
        grad.par_chunks_mut(2).enumerate().for_each(|(i, g)| {
            let force = st.gather(i, m, &potentials);
            g[0] -= force[0] * scale / z;
            g[1] -= force[1] * scale / z;
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
        assert_eq!(box_count(61.5), 62);
        assert_eq!(grid(61.5), (62, 1.0));
        // 150 nodes (50 boxes) need 300 points: 320 = 2⁶·5; 225 need 450 = 2·3²·5²: 512.
        assert_eq!(transform_size(150), 320);
        assert_eq!(transform_size(225), 512);
        assert_eq!(transform_size(162), 324);
        assert!([320, 384, 432, 512, 576, 640, 648, 768].iter().all(|m| fast_size(*m)));
        assert!([300, 360, 450, 480, 600, 720, 750, 486].iter().all(|m| !fast_size(*m)));
        // Small ranges: a width on the ladder, the range covered by 50 to 53 boxes.
        for range in [1e-3, 0.37, 10.0, 49.9] {
            let (boxes, width) = grid(range);
            let steps = width.log2() * WIDTH_STEPS;
            assert!(
                (steps - steps.round()).abs() < 1e-9,
                "{range}: width {width} off the ladder"
            );
            assert!(
                boxes as f64 * width >= range && (50..=53).contains(&boxes),
                "{range}: {boxes} × {width}"
            );
        }
        // Nearby ranges share a node spacing and a transform size, and so the kernels' spectra.
        let spectra = |range: f64| {
            let (boxes, width) = grid(range);
            (width, transform_size(boxes * P))
        };
        assert_eq!(spectra(10.0), spectra(10.05));
    }
}
