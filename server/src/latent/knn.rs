//! Exact k-nearest neighbours in Euclidean space, blocked and multi-threaded.
//!
//! Written here rather than taken from `linfa-nn`: its trees (kd, ball) degrade to worse than brute
//! force at the 50 dimensions t-SNE works in, and blocked brute force turns the work into matrix
//! products (`ndarray`'s `dot`), which on 20k × 50 points takes about a second on 2 cores.

use std::collections::BinaryHeap;
use std::ops::ControlFlow;

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use wide::{f32x8, CmpLt};

/// Rows per block.
const BLOCK: usize = 64;
/// Candidates per tile: a block's distances to one tile (`BLOCK × TILE` f32, 1 MiB) stay in the
/// cache between the matrix product that writes them and the scan that reads them; a whole row
/// of candidates (25 MB at 100k points) went to memory and back (21.6 → 18.5 s at 100k, k = 14).
const TILE: usize = 4096;

/// The `k` nearest neighbours of every row (itself excluded), nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Knn {
    /// Neighbours per row.
    pub k: usize,
    /// `(n, k)` row indices.
    pub indices: Vec<u32>,
    /// `(n, k)` squared Euclidean distances, ascending per row.
    pub dist2: Vec<f64>,
}

/// A candidate neighbour ordered by distance (a max-heap keeps the `k` best seen so far).
#[derive(PartialEq)]
struct Cand(f32, u32);
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Offers row `i`'s candidates `offset..offset + g.len()` to `heap` (a max-heap of the `k`
/// nearest so far, itself excluded), from its Gram row `g` (`gᵢⱼ = xᵢ·xⱼ`) and the candidates'
/// squared norms `norms`: `dᵢⱼ = ‖xᵢ‖² + ‖xⱼ‖² − 2gᵢⱼ`, in f32.
///
/// Vectorised by hand (`wide`, 8 lanes): once the heap is full, nearly every candidate is farther
/// than its worst, so eight distances are computed and compared with that bound at once and only
/// a lane below it is pushed. Scanning the row one candidate at a time through the heap took
/// twice the time of the matrix product that made it (perf, 40k points).
fn scan(heap: &mut BinaryHeap<Cand>, g: &[f32], norms: &[f32], offset: usize, (i, ni): (usize, f32), k: usize) {
    let n = g.len();
    let push = |heap: &mut BinaryHeap<Cand>, j: usize, d: f32| {
        let j = j + offset;
        if j == i {
            return;
        }
        if heap.len() < k {
            heap.push(Cand(d, j as u32));
        } else if let Some(mut worst) = heap.peek_mut().filter(|w| d < w.0) {
            // Replaced in place: one sift down, where a pop and a push took two.
            *worst = Cand(d, j as u32);
        }
    };
    // Fill the heap from the first candidates one by one, then filter eight at a time.
    let mut j = 0;
    while j < n && heap.len() < k {
        push(heap, j, ni + norms[j] - 2.0 * g[j]);
        j += 1;
    }
    let (two, base) = (f32x8::splat(2.0), f32x8::splat(ni));
    while j + 8 <= n {
        let gj = f32x8::from(<[f32; 8]>::try_from(&g[j..j + 8]).expect("8 lanes"));
        let nj = f32x8::from(<[f32; 8]>::try_from(&norms[j..j + 8]).expect("8 lanes"));
        let d = base + nj - two * gj;
        let worst = heap.peek().map_or(f32::INFINITY, |c| c.0);
        if d.cmp_lt(f32x8::splat(worst)).any() {
            for (lane, dl) in d.to_array().into_iter().enumerate() {
                push(heap, j + lane, dl);
            }
        }
        j += 8;
    }
    while j < n {
        push(heap, j, ni + norms[j] - 2.0 * g[j]);
        j += 1;
    }
}

/// Exact `k`-NN of all rows of `x` (`k < n`).
pub fn knn(x: ArrayView2<'_, f32>, k: usize) -> Knn {
    knn_with_progress(x, k, &|_| ControlFlow::Continue(())).expect("never stopped")
}

/// [`knn`], reporting the fraction done to `progress` after each block of rows; `None` once
/// `progress` answers `Break` (the blocks not yet started are skipped).
pub fn knn_with_progress(
    x: ArrayView2<'_, f32>,
    k: usize,
    progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync),
) -> Option<Knn> {
    let n = x.nrows();
    assert!(k < n, "k-NN needs k < n (checked by the caller)");
    let norms: Vec<f32> = x.axis_iter(Axis(0)).map(|r| r.dot(&r)).collect();
    // Each thread keeps one distance tile and one heap per row of its block for all its blocks.
    fill_rows(
        n,
        k,
        BLOCK,
        progress,
        || Scratch::new(n),
        |scratch, rows, idx, d2| {
            let lo = rows.start;
            search_block(x.slice(s![rows, ..]), lo, x, &norms, k, scratch, |r, found| {
                for (t, (d, j)) in found.iter().enumerate() {
                    idx[r * k + t] = *j;
                    d2[r * k + t] = *d;
                }
            });
        },
    )
}

/// One thread's scratch space for [`search_block`]: a distance tile and one heap per query row.
pub struct Scratch {
    g: Array2<f32>,
    heaps: Vec<BinaryHeap<Cand>>,
}

impl Scratch {
    /// Scratch for searches among at most `candidates` rows (the tile is no wider).
    pub fn new(candidates: usize) -> Self {
        Scratch {
            g: Array2::zeros((BLOCK, TILE.min(candidates.max(1)))),
            heaps: Vec::new(),
        }
    }
}

/// Rows per query block of [`search_block`].
pub const QUERY_BLOCK: usize = BLOCK;

/// The `k` nearest of the rows of `cands` to each row of `block` (at most [`QUERY_BLOCK`] rows),
/// whose row `r` is candidate `first + r` and is not its own neighbour; `norms` are the
/// candidates' squared norms. Calls `emit(r, found)` with row `r`'s neighbours as `(squared
/// distance, candidate index)`, nearest first, the distances recomputed exactly in f64 (the f32
/// expansion used to rank them loses precision for near points, which the perplexity calibration
/// is sensitive to). Blocked matrix products of [`TILE`] candidates, scanned by [`scan`].
pub fn search_block(
    block: ArrayView2<'_, f32>,
    first: usize,
    cands: ArrayView2<'_, f32>,
    norms: &[f32],
    k: usize,
    scratch: &mut Scratch,
    mut emit: impl FnMut(usize, &[(f64, u32)]),
) {
    let Scratch { g, heaps } = scratch;
    let (rows, n) = (block.nrows(), cands.nrows());
    assert!(
        rows <= BLOCK && k < n,
        "a block of at most {BLOCK} rows, k < candidates"
    );
    if g.ncols() < TILE.min(n) {
        *g = Array2::zeros((BLOCK, TILE.min(n)));
    }
    heaps.clear();
    heaps.resize_with(rows, || BinaryHeap::with_capacity(k + 1));
    for c0 in (0..n).step_by(TILE) {
        let c1 = (c0 + TILE).min(n);
        let mut g = g.slice_mut(s![..rows, ..c1 - c0]);
        general_mat_mul(1.0, &block, &cands.slice(s![c0..c1, ..]).t(), 0.0, &mut g);
        for (r, (grow, heap)) in g.axis_iter(Axis(0)).zip(heaps.iter_mut()).enumerate() {
            let grow = grow.as_slice().expect("a contiguous tile row");
            scan(heap, grow, &norms[c0..c1], c0, (first + r, norms[first + r]), k);
        }
    }
    let mut found: Vec<(f64, u32)> = Vec::with_capacity(k);
    for (r, heap) in heaps.drain(..).enumerate() {
        found.clear();
        found.extend(
            heap.into_iter()
                .map(|Cand(_, j)| (squared_distance(block.row(r), cands.row(j as usize)), j)),
        );
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        emit(r, &found);
    }
}

/// `‖a − b‖²` in f64, from four partial sums for contiguous rows (one running sum waited on
/// each addition).
fn squared_distance(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f64 {
    let term = |x: &f32, y: &f32| f64::from(x - y).powi(2);
    let (Some(a), Some(b)) = (a.as_slice(), b.as_slice()) else {
        return a.iter().zip(b).map(|(x, y)| term(x, y)).sum();
    };
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| term(x, y)).sum();
    let mut lanes = [0.0f64; 4];
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            lanes[l] += term(&x[l], &y[l]);
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// A [`Knn`] of `n` rows filled in place, `chunk` rows at a time on all cores: `fill(state, rows,
/// indices, dist2)` writes the rows' `k` neighbours into their slices, with a `state` made by
/// `init` once per thread. Reports the fraction of rows done to `progress` after each chunk;
/// `None` once it answers `Break` (the chunks not yet started are skipped).
pub fn fill_rows<S>(
    n: usize,
    k: usize,
    chunk: usize,
    progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync),
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, std::ops::Range<usize>, &mut [u32], &mut [f64]) + Sync + Send,
) -> Option<Knn> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (done, stopped) = (AtomicUsize::new(0), AtomicBool::new(false));
    let mut out = Knn {
        k,
        indices: vec![0; n * k],
        dist2: vec![0.0; n * k],
    };
    let chunk = chunk.max(1);
    let finished = out
        .indices
        .par_chunks_mut(chunk * k.max(1))
        .zip(out.dist2.par_chunks_mut(chunk * k.max(1)))
        .enumerate()
        .map_init(init, |state, (c, (idx, d2))| {
            if stopped.load(Ordering::Relaxed) {
                return false;
            }
            let rows = c * chunk..((c + 1) * chunk).min(n);
            let len = rows.len();
            fill(state, rows, idx, d2);
            let so_far = done.fetch_add(len, Ordering::Relaxed) + len;
            if progress(so_far as f64 / n as f64).is_break() {
                stopped.store(true, Ordering::Relaxed);
                return false;
            }
            true
        })
        .all(|ok| ok);
    finished.then_some(out)
}

/// The `k` rows nearest to row `i` of `x` (itself excluded), nearest first, with Euclidean distances.
pub fn neighbours_of(x: ArrayView2<'_, f32>, i: usize, k: usize) -> Vec<(usize, f64)> {
    // On all cores: one click at 100k × 512 scans 200 MB.
    nearest_among(x, i, (0..x.nrows()).into_par_iter(), k)
        .into_iter()
        .map(|(j, d2)| (j, d2.sqrt()))
        .collect()
}

/// The `k` of the rows `among` (row numbers of `x`) nearest to row `i` (itself excluded),
/// nearest first, with squared distances in f64; `min(k, candidates)` of them.
pub fn nearest_among(
    x: ArrayView2<'_, f32>,
    i: usize,
    among: impl ParallelIterator<Item = usize>,
    k: usize,
) -> Vec<(usize, f64)> {
    let q = x.row(i);
    let mut d: Vec<(f64, usize)> = among
        .filter(|j| *j != i)
        .map(|j| (squared_distance(q, x.row(j)), j))
        .collect();
    let k = k.min(d.len());
    if k == 0 {
        return Vec::new();
    }
    d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.truncate(k);
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().map(|(d2, j)| (j, d2)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn neighbours_on_a_line_by_hand() {
        let x = array![[0.0f32, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0], [2.9, 0.1]];
        let nn = knn(x.view(), 2);
        // Row 0: 1 (d²=1), then 4 (d² = 8.41 + 0.01).
        assert_eq!(&nn.indices[0..2], &[1, 4]);
        assert!((nn.dist2[1] - 8.42).abs() < 1e-5);
        // Row 2: 4 (d²=0.02), then 1 (d²=4).
        assert_eq!(&nn.indices[4..6], &[4, 1]);
        // Row 3: 2 (16), 4 (16.82).
        assert_eq!(&nn.indices[6..8], &[2, 4]);
        let by_row = neighbours_of(x.view(), 3, 2);
        assert_eq!(by_row.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2, 4]);
        assert!((by_row[0].1 - 4.0).abs() < 1e-9);
    }

    #[test]
    fn tiled_blocked_search_agrees_with_a_plain_scan() {
        // More rows than one tile (and not a multiple of it, of a block or of 8 lanes), so every
        // edge of the blocking is crossed; checked against `neighbours_of`'s independent scan.
        let n = TILE + 2 * BLOCK + 13;
        let mut state = 7u64;
        let x = Array2::from_shape_fn((n, 6), |_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        });
        let k = 9;
        let nn = knn(x.view(), k);
        for i in [0, 1, BLOCK - 1, BLOCK, TILE - 1, TILE, TILE + 5, n - 1] {
            let plain: Vec<u32> = neighbours_of(x.view(), i, k).iter().map(|p| p.0 as u32).collect();
            assert_eq!(&nn.indices[i * k..(i + 1) * k], &plain[..], "row {i}");
        }
    }
}
