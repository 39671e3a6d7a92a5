//! Approximate nearest neighbours for large studies: a hierarchical navigable small-world graph
//! (HNSW, Malkov & Yashunin 2018) from the `hnsw_rs` crate, chosen over `instant-distance`
//! (single-threaded build), `usearch` and `faiss` bindings (C++ builds), and `arroy` (an LMDB
//! index on disk): it is pure Rust, maintained, builds and searches on all cores through rayon,
//! and takes any distance. The server answers "similar cases" of large studies from it (on the
//! raw features, recall@10 0.98 at 100k); the t-SNE keeps exact neighbours, which were faster
//! and exact where HNSW reached recall@10 0.74 (PCA 50 of synthetic clusters of intrinsic
//! dimension 32). Both measured by `cargo xtask bench` (`benches/neighbours.rs`).
//!
//! Parallel insertion makes the graph depend on thread timing, so approximate neighbours can
//! differ slightly between runs; exact search is deterministic.

use std::ops::ControlFlow;

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use ndarray::ArrayView2;
use wide::f32x8;

use super::knn::Knn;

/// Links per node and layer (`M`; twice that on the bottom layer).
const LINKS: usize = 24;
/// Candidates kept while inserting (`ef_construction`).
const EF_BUILD: usize = 128;
/// Rows inserted or searched between two progress reports (and cancellation checks).
const CHUNK: usize = 4096;

/// Squared Euclidean distance, 8 lanes at a time. HNSW only compares distances, so squared ones
/// give the same graph and answers as Euclidean ones, without a square root; `anndists`' own L2
/// is a scalar loop unless built with its nightly-era SIMD features.
#[derive(Default, Clone, Copy)]
pub struct SquaredL2;

impl Distance<f32> for SquaredL2 {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        let lanes = |v: &[f32]| f32x8::from(<[f32; 8]>::try_from(v).expect("chunks of 8"));
        let acc = ca.zip(cb).fold(f32x8::ZERO, |acc, (x, y)| {
            let d = lanes(x) - lanes(y);
            acc + d * d
        });
        acc.reduce_add() + tail
    }
}

/// Candidates kept when searching for `k` neighbours: with [`LINKS`] and [`EF_BUILD`], recall@10
/// 0.98 on 100k rows of 512 synthetic features (`benches/neighbours.rs`).
pub fn ef_for(k: usize) -> usize {
    (2 * k).max(64)
}

/// An HNSW index over the rows of a matrix (row numbers are the ids).
pub struct Index {
    hnsw: Hnsw<'static, f32, SquaredL2>,
    rows: usize,
}

impl Index {
    /// Builds the index over all rows of `x`, reporting the fraction inserted to `progress` after
    /// each chunk; `None` once it answers `Break`.
    pub fn build(x: ArrayView2<'_, f32>, progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync)) -> Option<Index> {
        let n = x.nrows();
        let layers = 16.min((n.max(2) as f64).ln().ceil() as usize).max(1);
        let mut hnsw = Hnsw::new(LINKS, n, layers, EF_BUILD, SquaredL2);
        let x = x.as_standard_layout();
        let d = x.ncols();
        let flat = x.as_slice().expect("standard layout");
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            let batch: Vec<(&[f32], usize)> = (start..end).map(|i| (&flat[i * d..(i + 1) * d], i)).collect();
            hnsw.parallel_insert_slice(&batch);
            if progress(end as f64 / n as f64).is_break() {
                return None;
            }
        }
        hnsw.set_searching_mode(true);
        Some(Index { hnsw, rows: n })
    }

    /// The (about) `k` nearest indexed rows of `q`, nearest first: row and squared distance.
    /// `ef` candidates are kept in the search (at least `k`; more is slower and more exact).
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        self.hnsw
            .search(q, k, ef.max(k))
            .into_iter()
            .map(|nb| (nb.d_id, nb.distance))
            .collect()
    }

    /// The `k` rows nearest to row `i` of `x` (the matrix this index was built on; `i` itself
    /// excluded), nearest first, with squared distances recomputed in f64 (as
    /// [`super::knn::knn`] does). A graph search can come back short (rarely, on tiny or
    /// degenerate data): then the answer is an exact scan's, so there are `min(k, n − 1)`.
    pub fn near(&self, x: ArrayView2<'_, f32>, i: usize, k: usize) -> Vec<(usize, f64)> {
        let xi = x.row(i).to_vec();
        let mut near: Vec<(usize, f64)> = self
            .search(&xi, k + 1, ef_for(k + 1))
            .into_iter()
            .filter(|(j, _)| *j != i)
            .map(|(j, _)| {
                let d = xi
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| f64::from(a - b).powi(2))
                    .sum::<f64>();
                (j, d)
            })
            .collect();
        near.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        near.truncate(k);
        if near.len() < k.min(x.nrows().saturating_sub(1)) {
            near = super::knn::neighbours_of(x, i, k)
                .into_iter()
                .map(|(j, d)| (j, d * d))
                .collect();
        }
        near
    }

    /// The `k` nearest neighbours of every row of `x`, the matrix this index was built on (each
    /// row's own excluded), as a [`Knn`]; progress over the rows searched, `None` once it
    /// answers `Break`.
    pub fn knn(
        &self,
        x: ArrayView2<'_, f32>,
        k: usize,
        progress: &(dyn Fn(f64) -> ControlFlow<()> + Sync),
    ) -> Option<Knn> {
        let n = x.nrows();
        assert_eq!(n, self.rows, "the matrix the index was built on");
        assert!(k < n, "k-NN needs k < n (checked by the caller)");
        super::knn::fill_rows(
            n,
            k,
            CHUNK,
            progress,
            || (),
            |_, rows, idx, d2| {
                for (r, i) in rows.enumerate() {
                    for (t, (j, d)) in self.near(x, i, k).into_iter().enumerate() {
                        idx[r * k + t] = j as u32;
                        d2[r * k + t] = d;
                    }
                }
            },
        )
    }
}

/// Recall@k of `approx` against `exact` (same rows, same k): the mean share of each row's exact
/// neighbours that the approximate search found.
pub fn recall(exact: &Knn, approx: &Knn) -> f64 {
    assert_eq!((exact.k, exact.indices.len()), (approx.k, approx.indices.len()));
    let k = exact.k;
    let hits: usize = exact
        .indices
        .chunks(k)
        .zip(approx.indices.chunks(k))
        .map(|(e, a)| e.iter().filter(|j| a.contains(j)).count())
        .sum();
    hits as f64 / exact.indices.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn squared_l2_by_hand_with_a_tail_past_the_lanes() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..11).map(|i| (i * 2) as f32).collect();
        // Σ i² for i < 11 = 385.
        assert_eq!(SquaredL2.eval(&a, &b), 385.0);
        assert_eq!(SquaredL2.eval(&a[..3], &b[..3]), 5.0);
    }

    #[test]
    fn approximate_neighbours_recall_the_exact_ones_on_clustered_data() {
        // 6,000 points in 20 dimensions around 30 centres: recall@10 of the HNSW k-NN.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let centres: Vec<Vec<f32>> = (0..30)
            .map(|_| (0..20).map(|_| rng.random_range(-5.0..5.0)).collect())
            .collect();
        let x = ndarray::Array2::from_shape_fn((6000, 20), |(i, j)| centres[i % 30][j] + rng.random_range(-1.0..1.0));
        let exact = super::super::knn::knn(x.view(), 10);
        let go = |_| ControlFlow::Continue(());
        let approx = Index::build(x.view(), &go).unwrap().knn(x.view(), 10, &go).unwrap();
        let r = recall(&exact, &approx);
        assert!(r >= 0.95, "recall@10 {r}");
        // Each row: itself excluded, ascending f64 distances, k of them.
        for (i, row) in approx.indices.chunks(10).enumerate() {
            assert!(!row.contains(&(i as u32)));
        }
        for d in approx.dist2.chunks(10) {
            assert!(d.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn building_stops_at_the_asked_step() {
        let x = ndarray::Array2::from_shape_fn((3 * CHUNK, 4), |(i, j)| ((i * 7 + j * 13) % 101) as f32);
        let calls = AtomicUsize::new(0);
        let out = Index::build(x.view(), &|_| {
            if calls.fetch_add(1, Ordering::Relaxed) == 1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(out.is_none());
        assert_eq!(calls.load(Ordering::Relaxed), 2, "no step after the one that said stop");
    }
}
