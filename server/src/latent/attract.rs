//! t-SNE's attractive forces, `Σⱼ e·pᵢⱼ qᵢⱼ (yᵢ − yⱼ)`: a pass over the sparse input affinities
//! every iteration, the hottest loop of a 2-D run (2.7 M entries at 20,000 points).
//!
//! Written by hand, twice: with AVX2 and FMA where the processor has them (checked at run time;
//! the build targets plain x86-64), else 8 lanes of `wide`. The AVX2 kernel loads each
//! neighbour's two coordinates at once (2-D; gathers them in 3-D), uses FMA and keeps its 8-lane
//! accumulators in registers; the portable one assembles its lanes from scalar loads and, on
//! SSE2's 16 registers, spills them (perf). A scratch benchmark of the kernel on 20,000 rows ×
//! 137 random entries: 1.3–1.5 ms per pass (1.4–1.9 with gathers in 2-D) against 4.3–4.6 ms.

use rayon::prelude::*;
use wide::f32x8;

use super::affinity::Csr;

/// Rows of the gradient per parallel task.
const ROWS: usize = 256;

/// The affinities of one run in single precision, each row padded to a multiple of 8 entries
/// with entries of the row's own point at probability 0 (they add nothing: no scalar remainder
/// per row), their column indices checked once to be rows of the embedding (the AVX2 kernel
/// reads coordinates at them unchecked).
pub struct Attraction {
    /// Row `i` is `indices[indptr[i]..indptr[i + 1]]`.
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl Attraction {
    /// Panics unless every column of `p` is a row of it and `3 n` fits an `i32` (a gather's
    /// offset): `p` comes from [`super::affinity`], which builds it so. Takes `p`, so that its
    /// double-precision values are freed once copied.
    pub fn new(p: Csr) -> Self {
        let n = p.indptr.len() - 1;
        assert!(
            3 * n <= i32::MAX as usize,
            "{n} rows: too many to gather by i32 offsets"
        );
        assert!(
            p.indices.iter().all(|j| (*j as usize) < n),
            "an affinity's column is not a row of the matrix"
        );
        let padded = |len: usize| len.div_ceil(8) * 8;
        let total: usize = (0..n).map(|i| padded(p.indptr[i + 1] - p.indptr[i])).sum();
        let mut out = Self {
            indptr: Vec::with_capacity(n + 1),
            indices: Vec::with_capacity(total),
            values: Vec::with_capacity(total),
        };
        out.indptr.push(0);
        for i in 0..n {
            let s = p.indptr[i]..p.indptr[i + 1];
            let pad = padded(s.len()) - s.len();
            out.indices.extend_from_slice(&p.indices[s.clone()]);
            out.indices.extend(std::iter::repeat_n(i as u32, pad));
            out.values.extend(p.values[s].iter().map(|v| *v as f32));
            out.values.extend(std::iter::repeat_n(0.0, pad));
            out.indptr.push(out.indices.len());
        }
        out
    }

    /// KL(P ‖ Q) of the embedding `y` (`n × D` in f64), with `z` the normaliser of Q.
    pub fn kl_divergence<const D: usize>(&self, y: &[f64], z: f64) -> f64 {
        (0..self.indptr.len() - 1)
            .into_par_iter()
            .map(|i| {
                (self.indptr[i]..self.indptr[i + 1])
                    .map(|s| {
                        let j = self.indices[s] as usize;
                        let d2: f64 = (0..D).map(|a| (y[D * i + a] - y[D * j + a]).powi(2)).sum();
                        let q = 1.0 / (1.0 + d2) / z;
                        let pv = f64::from(self.values[s]);
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

    /// Sets `grad` (rows of `D` coordinates) to the attractive gradient divided by 4, for the
    /// f32 coordinates `y32` (`n × D`, row-major) and exaggeration `e`.
    pub fn apply<const D: usize>(&self, y32: &[f32], exaggeration: f64, grad: &mut [f64]) {
        self.apply_with::<D>(y32, exaggeration, grad, fast());
    }

    fn apply_with<const D: usize>(&self, y32: &[f32], exaggeration: f64, grad: &mut [f64], fast: bool) {
        let n = self.indptr.len() - 1;
        assert!(D == 2 || D == 3, "t-SNE here embeds in 2 or 3 dimensions");
        assert!(y32.len() == D * n && grad.len() == D * n, "n × {D} coordinates");
        let e = exaggeration as f32;
        grad.par_chunks_mut(D * ROWS).enumerate().for_each(|(c, block)| {
            for (r, g) in block.chunks_mut(D).enumerate() {
                let i = c * ROWS + r;
                let s = self.indptr[i]..self.indptr[i + 1];
                let (cols, vals) = (&self.indices[s.clone()], &self.values[s]);
                let acc = match fast {
                    // SAFETY: `fast` only where the processor has AVX2 and FMA; `new` checked that
                    // every column is a row of `y32` (`apply_with` checked its length).
                    #[cfg(target_arch = "x86_64")]
                    true => unsafe { avx2::row::<D>(y32, i, cols, vals) },
                    _ => row::<D>(y32, i, cols, vals),
                };
                for a in 0..D {
                    g[a] = f64::from(e * acc[a]);
                }
            }
        });
    }
}

/// Whether the AVX2 kernel can run here.
fn fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Row `i`'s sum, eight entries at a time (`wide`): the neighbours' coordinates gathered into
/// lanes and the kernel computed for all eight at once, by reciprocal (below).
fn row<const D: usize>(y32: &[f32], i: usize, cols: &[u32], vals: &[f32]) -> [f32; D] {
    let yi: [f32; D] = std::array::from_fn(|a| y32[D * i + a]);
    let yl: [f32x8; D] = std::array::from_fn(|a| f32x8::splat(yi[a]));
    let mut lanes = [f32x8::ZERO; D];
    debug_assert!(cols.len().is_multiple_of(8), "rows padded to whole lanes");
    for (js, ps) in cols.chunks_exact(8).zip(vals.chunks_exact(8)) {
        let d: [f32x8; D] = std::array::from_fn(|a| {
            yl[a] - f32x8::from(std::array::from_fn::<f32, 8, _>(|l| y32[D * js[l] as usize + a]))
        });
        let d2 = d.iter().fold(f32x8::ONE, |s, v| s + *v * *v);
        // 1 / (1 + d²) from the approximate reciprocal and one Newton step (relative error
        // ~1e-7, f32's own): a division of eight lanes waited on the divider.
        let r = d2.recip();
        let r = r * (f32x8::splat(2.0) - d2 * r);
        let w = f32x8::from(<[f32; 8]>::try_from(ps).expect("8 lanes")) * r;
        for a in 0..D {
            lanes[a] += w * d[a];
        }
    }
    lanes.map(|l| l.reduce_add())
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// The sum of the eight lanes of `v`.
    #[target_feature(enable = "avx2,fma")]
    fn reduce(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }

    /// [`super::row`] with AVX2 and FMA: each neighbour's coordinates by one 8-byte load in 2-D,
    /// by gathers in 3-D.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `y32` holds rows of `D` coordinates, `i` and every entry of
    /// `cols` are rows of it, `D · rows ≤ i32::MAX`, and `cols` and `vals` are as long, a multiple
    /// of 8.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row<const D: usize>(y32: &[f32], i: usize, cols: &[u32], vals: &[f32]) -> [f32; D] {
        let yi: [f32; D] = std::array::from_fn(|a| y32[D * i + a]);
        let (one, two) = (_mm256_set1_ps(1.0), _mm256_set1_ps(2.0));
        let yl: [__m256; D] = std::array::from_fn(|a| _mm256_set1_ps(yi[a]));
        let mut lanes = [_mm256_setzero_ps(); D];
        debug_assert!(cols.len().is_multiple_of(8), "rows padded to whole lanes");
        for e in (0..cols.len()).step_by(8) {
            // SAFETY: e + 8 ≤ cols.len() = vals.len(); every offset read is D·j + a < y32.len().
            let (d, w) = unsafe {
                let mut ps = _mm256_loadu_ps(vals.as_ptr().add(e));
                let mut yj = [_mm256_setzero_ps(); D];
                if D == 2 {
                    // Each neighbour's two coordinates in one 64-bit load, four to a register
                    // (eight loads beat two 4-lane gathers by a quarter on Zen 4: a scratch
                    // benchmark); the two halves de-interleaved give lanes in the order
                    // 0 1 4 5 2 3 6 7, and the probabilities are permuted to match (a sum does
                    // not mind the order).
                    let base = y32.as_ptr().cast::<i64>();
                    let at = |l: usize| base.add(cols[e + l] as usize).read_unaligned();
                    let lo = _mm256_castsi256_ps(_mm256_set_epi64x(at(3), at(2), at(1), at(0)));
                    let hi = _mm256_castsi256_ps(_mm256_set_epi64x(at(7), at(6), at(5), at(4)));
                    yj[0] = _mm256_shuffle_ps::<0x88>(lo, hi);
                    yj[1] = _mm256_shuffle_ps::<0xDD>(lo, hi);
                    ps = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(ps)));
                } else {
                    let js = _mm256_loadu_si256(cols.as_ptr().add(e).cast());
                    let offsets = _mm256_add_epi32(_mm256_add_epi32(js, js), js);
                    for (a, v) in yj.iter_mut().enumerate() {
                        *v = _mm256_i32gather_ps::<4>(y32.as_ptr().add(a), offsets);
                    }
                }
                let d: [__m256; D] = std::array::from_fn(|a| _mm256_sub_ps(yl[a], yj[a]));
                let d2 = d.iter().fold(one, |s, v| _mm256_fmadd_ps(*v, *v, s));
                // 1 / (1 + d²) by reciprocal and one Newton step, as the portable kernel.
                let r = _mm256_rcp_ps(d2);
                let r = _mm256_mul_ps(r, _mm256_fnmadd_ps(d2, r, two));
                (d, _mm256_mul_ps(ps, r))
            };
            for a in 0..D {
                lanes[a] = _mm256_fmadd_ps(w, d[a], lanes[a]);
            }
        }
        lanes.map(|l| reduce(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Both kernels against a sum in f64, on rows of every remainder length, in 2-D and 3-D.
    fn agree<const D: usize>() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 300;
        let mut indptr = vec![0];
        let mut indices = Vec::new();
        for i in 0..n {
            // 0 to 40 entries: full blocks of 8 and every remainder.
            let len = i % 41;
            let mut row: Vec<u32> = (0..len).map(|_| rng.random_range(0..n as u32)).collect();
            row.sort_unstable();
            row.dedup();
            indices.extend(row);
            indptr.push(indices.len());
        }
        let values: Vec<f64> = indices.iter().map(|_| rng.random_range(0.0..1e-3)).collect();
        let p = Csr {
            indptr,
            indices,
            values,
        };
        let y: Vec<f32> = (0..D * n).map(|_| rng.random_range(-30.0..30.0)).collect();
        let expected: Vec<f64> = (0..n)
            .flat_map(|i| {
                let mut acc = [0.0f64; D];
                for s in p.indptr[i]..p.indptr[i + 1] {
                    let j = p.indices[s] as usize;
                    let d: [f64; D] = std::array::from_fn(|a| f64::from(y[D * i + a]) - f64::from(y[D * j + a]));
                    let w = 12.0 * p.values[s] / (1.0 + d.iter().map(|v| v * v).sum::<f64>());
                    for a in 0..D {
                        acc[a] += w * d[a];
                    }
                }
                acc
            })
            .collect();
        let attraction = Attraction::new(p.clone());
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for avx2 in [false, fast()] {
            let mut grad = vec![f64::NAN; D * n];
            attraction.apply_with::<D>(&y, 12.0, &mut grad, avx2);
            let worst = grad
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-5 * scale,
                "{D}-D, AVX2 {avx2}: off by {worst:e} of {scale:e}"
            );
        }
    }

    #[test]
    fn both_kernels_sum_the_attraction() {
        agree::<2>();
        agree::<3>();
    }

    #[test]
    #[should_panic(expected = "not a row")]
    fn a_column_past_the_rows_is_refused() {
        let p = Csr {
            indptr: vec![0, 1, 2],
            indices: vec![1, 2],
            values: vec![0.5, 0.5],
        };
        Attraction::new(p);
    }
}
