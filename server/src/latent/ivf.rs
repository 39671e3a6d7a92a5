//! Approximate k-NN of every row by partition — an inverted file, as faiss's IVF-Flat (Jégou,
//! Douze & Schmid 2011): k-means cells over the rows; each cell's rows are searched among the
//! rows of the [`PROBE`] cells whose centroids are nearest its own, with the exact search's
//! blocked matrix products ([`super::knn::search_block`]), so the work stays matrix products on
//! all cores and the answer is deterministic.
//!
//! Written here rather than taken from a crate: HNSW (`hnsw_rs`, [`super::ann`]) reached recall@90
//! 0.94 in 150 s where the exact search took 20 s and this one 4.3 s with recall@90 0.9993 (100k
//! points, PCA 50, `benches/neighbours.rs`); the graph crates insert one row at a time, and
//! faiss is a C++ build.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use rand::seq::index::sample;
use rand::SeedableRng;
use rayon::prelude::*;

use super::knn::{self, Knn, Scratch, QUERY_BLOCK};

/// Cells probed per cell: its own and the nearest others by centroid.
pub const PROBE: usize = 32;
/// Rows of the k-means sample per cell.
const SAMPLE_PER_CELL: usize = 64;
/// The k-means sample's seed (the same rows give the same cells).
const SEED: u64 = 0x1f5;
/// Lloyd iterations of the k-means.
const ITERATIONS: usize = 10;

/// Rows assigned to their nearest centroid per block (a `ROWS × cells` product).
const ROWS: usize = 256;

/// A partition of the rows of a matrix into k-means cells.
pub struct Partition {
    /// `(cells, d)` centroids.
    pub centroids: Array2<f32>,
    /// The rows of each cell, ascending.
    pub members: Vec<Vec<u32>>,
    /// The centroids' squared norms.
    cnorms: Vec<f32>,
}

/// The nearest of `centroids` (with squared norms `cnorms`) to each row of `x`, on all cores.
fn nearest_centroid(x: ArrayView2<'_, f32>, centroids: ArrayView2<'_, f32>, cnorms: &[f32]) -> Vec<u32> {
    let mut out = vec![0u32; x.nrows()];
    out.par_chunks_mut(ROWS)
        .zip(x.axis_chunks_iter(Axis(0), ROWS).into_par_iter())
        .for_each_init(
            || Array2::<f32>::zeros((ROWS, centroids.nrows())),
            |g, (o, xb)| {
                let mut g = g.slice_mut(s![..xb.nrows(), ..]);
                general_mat_mul(1.0, &xb, &centroids.t(), 0.0, &mut g);
                for (o, grow) in o.iter_mut().zip(g.axis_iter(Axis(0))) {
                    // ‖x − c‖² − ‖x‖² = ‖c‖² − 2x·c.
                    let (mut best, mut arg) = (f32::INFINITY, 0);
                    for (c, (gc, nc)) in grow.iter().zip(cnorms).enumerate() {
                        let d = nc - 2.0 * gc;
                        if d < best {
                            (best, arg) = (d, c);
                        }
                    }
                    *o = arg as u32;
                }
            },
        );
    out
}

/// The rows `rows` of `x`, copied a row at a time (`select` copied them element by element: perf).
fn rows_of(x: ArrayView2<'_, f32>, rows: &[usize]) -> Array2<f32> {
    let mut out = Array2::zeros((rows.len(), x.ncols()));
    for (mut dst, &i) in out.axis_iter_mut(Axis(0)).zip(rows) {
        dst.assign(&x.row(i));
    }
    out
}

fn squared_norms(x: ArrayView2<'_, f32>) -> Vec<f32> {
    x.axis_iter(Axis(0)).map(|r| r.dot(&r)).collect()
}

impl Partition {
    /// `cells` k-means cells (Lloyd's algorithm on a seeded sample of [`SAMPLE_PER_CELL`] rows
    /// per cell, started from sampled rows; an emptied cell restarts from a sampled row), then
    /// every row in the cell of its nearest centroid. `None` once `stop` answers `Break`
    /// (checked once per iteration).
    pub fn new(x: ArrayView2<'_, f32>, cells: usize, seed: u64, stop: &dyn Fn() -> ControlFlow<()>) -> Option<Self> {
        let n = x.nrows();
        let cells = cells.clamp(1, n.max(1));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut picked = sample(&mut rng, n, (cells * SAMPLE_PER_CELL).min(n)).into_vec();
        picked.sort_unstable();
        let xs = x.select(Axis(0), &picked);
        let mut centroids = xs.select(Axis(0), &sample(&mut rng, xs.nrows(), cells).into_vec());
        for _ in 0..ITERATIONS {
            stop().is_continue().then_some(())?;
            let cnorms = squared_norms(centroids.view());
            let assigned = nearest_centroid(xs.view(), centroids.view(), &cnorms);
            let mut sums = Array2::<f64>::zeros(centroids.dim());
            let mut counts = vec![0usize; cells];
            for (row, &c) in xs.axis_iter(Axis(0)).zip(&assigned) {
                sums.row_mut(c as usize).zip_mut_with(&row, |s, v| *s += f64::from(*v));
                counts[c as usize] += 1;
            }
            for (c, count) in counts.iter().enumerate() {
                if *count == 0 {
                    let r = rand::Rng::random_range(&mut rng, 0..xs.nrows());
                    centroids.row_mut(c).assign(&xs.row(r));
                } else {
                    let mean = sums.row(c).mapv(|v| (v / *count as f64) as f32);
                    centroids.row_mut(c).assign(&mean);
                }
            }
        }
        let cnorms = squared_norms(centroids.view());
        let assigned = nearest_centroid(x, centroids.view(), &cnorms);
        let mut members = vec![Vec::new(); cells];
        for (i, c) in assigned.iter().enumerate() {
            members[*c as usize].push(i as u32);
        }
        Some(Partition {
            centroids,
            members,
            cnorms,
        })
    }

    /// Each cell's cells to search, its own first, then by centroid distance: at least `probe`
    /// cells and enough of them to hold `need` rows.
    pub fn probes(&self, probe: usize, need: usize) -> Vec<Vec<u32>> {
        let c = self.centroids.view();
        let gram = c.dot(&c.t());
        (0..c.nrows())
            .into_par_iter()
            .map(|a| self.nearest_cells(gram.row(a), Some(a), probe, need))
            .collect()
    }

    /// The cells nearest the point whose products with the centroids are `g` (`first`, when
    /// given, before all others whatever the rounding): the nearest that make at least `probe`
    /// cells and hold at least `need` rows.
    fn nearest_cells(&self, g: ArrayView1<'_, f32>, first: Option<usize>, probe: usize, need: usize) -> Vec<u32> {
        // ‖p − c‖² − ‖p‖² = ‖c‖² − 2p·c orders the cells as the distance does.
        let mut order: Vec<(f32, usize)> = self
            .cnorms
            .iter()
            .zip(g)
            .map(|(nc, gc)| nc - 2.0 * gc)
            .zip(0..)
            .collect();
        if let Some(a) = first {
            order[a].0 = f32::NEG_INFINITY;
        }
        order.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let (mut rows, mut out) = (0, Vec::new());
        for (_, c) in order {
            if out.len() >= probe && rows >= need {
                break;
            }
            rows += self.members[c].len();
            out.push(c as u32);
        }
        out
    }
}

/// Rows from which the t-SNE's and UMAP's neighbours come from the partition search: below, the
/// exact search is about as quick (its cost grows with n², the partition's with n^1.5) and stays
/// exact. At 20k rows × 50, k = 90, the exact search takes 1.4 s, the partition 0.68 s with
/// recall@90 1.0 (`cargo bench --bench neighbours` with `FAILSCOPE_BENCH_N=20000`).
pub const APPROXIMATE_FROM: usize = 10_000;

/// The `k` nearest neighbours of every row of `x` for a layout: exact below
/// [`APPROXIMATE_FROM`] rows, else the partition search ([`knn`] with [`PROBE`] cells).
pub fn neighbours(x: ArrayView2<'_, f32>, k: usize, progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync)) -> Option<Knn> {
    if x.nrows() < APPROXIMATE_FROM {
        knn::knn_with_progress(x, k, progress)
    } else {
        self::knn(x, k, PROBE, progress)
    }
}

/// One row's place in a [`Knn`] being filled: its neighbours and their squared distances.
type RowOut<'a> = (&'a mut [u32], &'a mut [f64]);

/// Cells for `n` rows: about √n, so a cell holds about √n rows.
pub fn cells_for(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(1)
}

/// The (approximate) `k` nearest neighbours of every row of `x` (`k < n`), as [`knn::knn`]
/// answers them: itself excluded, nearest first, squared distances exact in f64. Reports the
/// fraction of rows done to `progress`; `None` once it answers `Break`.
pub fn knn(
    x: ArrayView2<'_, f32>,
    k: usize,
    probe: usize,
    progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync),
) -> Option<Knn> {
    let n = x.nrows();
    assert!(k < n, "k-NN needs k < n (checked by the caller)");
    let part = Partition::new(x, cells_for(n), SEED, &|| progress(0.0))?;
    let probes = part.probes(probe, k + 1);
    let mut out = Knn {
        k,
        indices: vec![0; n * k],
        dist2: vec![0.0; n * k],
    };
    // Each row's output slices, handed to the cell that holds the row.
    let mut rows: Vec<Option<RowOut<'_>>> = out
        .indices
        .chunks_mut(k)
        .zip(out.dist2.chunks_mut(k))
        .map(Some)
        .collect();
    let mut work: Vec<(usize, Vec<RowOut<'_>>)> = part
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.is_empty())
        .map(|(c, m)| {
            (
                c,
                m.iter()
                    .map(|&i| rows[i as usize].take().expect("one cell per row"))
                    .collect(),
            )
        })
        .collect();
    drop(rows);
    // The cells with the most candidates first, so the last ones left are short.
    let cost =
        |c: usize| probes[c].iter().map(|b| part.members[*b as usize].len()).sum::<usize>() * part.members[c].len();
    work.sort_by_key(|(c, _)| std::cmp::Reverse(cost(*c)));
    let (done, stopped) = (AtomicUsize::new(0), AtomicBool::new(false));
    work.into_par_iter().for_each_init(
        || Scratch::new(0),
        |scratch, (c, mut slots)| {
            if stopped.load(Ordering::Relaxed) {
                return;
            }
            // The cell's own rows come first among its candidates (its own cell is probed first).
            let cand_rows: Vec<usize> = probes[c]
                .iter()
                .flat_map(|b| part.members[*b as usize].iter().map(|&i| i as usize))
                .collect();
            let cands = rows_of(x, &cand_rows);
            let norms = squared_norms(cands.view());
            let own = part.members[c].len();
            for b0 in (0..own).step_by(QUERY_BLOCK) {
                let b1 = (b0 + QUERY_BLOCK).min(own);
                let block = cands.slice(s![b0..b1, ..]);
                knn::search_block(block, b0, cands.view(), &norms, k, scratch, |r, found| {
                    let (idx, d2) = &mut slots[b0 + r];
                    for (t, (d, j)) in found.iter().enumerate() {
                        idx[t] = cand_rows[*j as usize] as u32;
                        d2[t] = *d;
                    }
                });
            }
            let so_far = done.fetch_add(own, Ordering::Relaxed) + own;
            if progress(so_far as f64 / n as f64).is_break() {
                stopped.store(true, Ordering::Relaxed);
            }
        },
    );
    (!stopped.load(Ordering::Relaxed)).then_some(out)
}

/// Cells probed per query of an [`Index`]: the query's own and the nearest others by centroid.
pub const QUERY_PROBE: usize = 32;

/// A partition of a study's rows for one-row queries (the inspector's "similar cases"): a query
/// is compared, exactly, with the rows of the [`QUERY_PROBE`] cells whose centroids are nearest
/// it — a few per cent of the rows at a million.
pub struct Index {
    part: Partition,
}

impl Index {
    /// Partitions the rows of `x` into [`cells_for`] cells; `None` once `progress` answers `Break`
    /// (asked once per k-means iteration; 0 until the partition is done, then 1).
    pub fn build(x: ArrayView2<'_, f32>, progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync)) -> Option<Index> {
        let part = Partition::new(x, cells_for(x.nrows()), SEED, &|| progress(0.0))?;
        progress(1.0).is_continue().then_some(())?;
        Some(Index { part })
    }

    /// The `k` rows nearest to row `i` of `x` (the matrix this index was built on; `i` itself
    /// excluded) among the probed cells' rows, nearest first, with squared distances in f64 (as
    /// [`knn::neighbours_of`] computes them); `min(k, n − 1)` of them.
    pub fn near(&self, x: ArrayView2<'_, f32>, i: usize, k: usize) -> Vec<(usize, f64)> {
        let g = self.part.centroids.dot(&x.row(i));
        let cells = self
            .part
            .nearest_cells(g.view(), None, QUERY_PROBE, (k + 1).min(x.nrows()));
        let among = cells
            .par_iter()
            .flat_map_iter(|c| self.part.members[*c as usize].iter().map(|&j| j as usize));
        knn::nearest_among(x, i, among, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn clustered(n: usize, d: usize, seed: u64) -> Array2<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..30)
            .map(|_| (0..d).map(|_| rng.random_range(-5.0..5.0)).collect())
            .collect();
        Array2::from_shape_fn((n, d), |(i, j)| centres[i % 30][j] + rng.random_range(-1.0..1.0))
    }

    #[test]
    fn probing_every_cell_is_the_exact_search() {
        let x = clustered(2000, 8, 3);
        let exact = knn::knn(x.view(), 12);
        let all = knn(x.view(), 12, usize::MAX, &|_| ControlFlow::Continue(())).unwrap();
        // Ties aside (none in random floats), the same rows at the same f64 distances.
        assert_eq!(exact.indices, all.indices);
        assert_eq!(exact.dist2, all.dist2);
    }

    #[test]
    fn the_default_probe_recalls_the_exact_neighbours_on_clustered_data() {
        let x = clustered(6000, 20, 7);
        let exact = knn::knn(x.view(), 10);
        let approx = knn(x.view(), 10, PROBE, &|_| ControlFlow::Continue(())).unwrap();
        let r = super::super::ann::recall(&exact, &approx);
        assert!(r >= 0.95, "recall@10 {r}");
        for (i, (row, d)) in approx.indices.chunks(10).zip(approx.dist2.chunks(10)).enumerate() {
            assert!(!row.contains(&(i as u32)), "row {i} is not its own neighbour");
            assert!(d.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn an_index_answers_one_row_as_the_exact_scan_does_mostly() {
        let x = clustered(6000, 20, 5);
        let index = Index::build(x.view(), &|_| ControlFlow::Continue(())).unwrap();
        let (mut hits, mut total) = (0, 0);
        for i in (0..6000).step_by(60) {
            let exact: Vec<usize> = knn::neighbours_of(x.view(), i, 10).iter().map(|p| p.0).collect();
            let found = index.near(x.view(), i, 10);
            assert_eq!(found.len(), 10);
            assert!(found.windows(2).all(|w| w[0].1 <= w[1].1) && found.iter().all(|p| p.0 != i));
            hits += found.iter().filter(|p| exact.contains(&p.0)).count();
            total += 10;
        }
        assert!(hits as f64 / total as f64 >= 0.95, "recall@10 {hits}/{total}");
        // Asking for more rows than there are gives all the others.
        let small = clustered(30, 3, 9);
        let index = Index::build(small.view(), &|_| ControlFlow::Continue(())).unwrap();
        assert_eq!(index.near(small.view(), 4, 100).len(), 29);
    }

    #[test]
    fn every_row_lands_in_one_cell_and_tiny_inputs_work() {
        let x = clustered(50, 3, 1);
        let part = Partition::new(x.view(), 7, 1, &|| ControlFlow::Continue(())).unwrap();
        let mut all: Vec<u32> = part.members.concat();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<u32>>());
        // k + 1 rows needed: the probes grow past `probe` cells until they hold them.
        let nn = knn(x.view(), 40, 1, &|_| ControlFlow::Continue(())).unwrap();
        assert_eq!(nn.indices.len(), 50 * 40);
        let exact = knn::knn(x.view(), 40);
        assert!(super::super::ann::recall(&exact, &nn) > 0.9);
    }

    #[test]
    fn a_stop_is_obeyed() {
        let x = clustered(3000, 4, 2);
        let calls = AtomicUsize::new(0);
        let out = knn(x.view(), 5, 4, &|_| {
            if calls.fetch_add(1, Ordering::Relaxed) >= 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(out.is_none());
    }
}
