//! Hotspot-ranking benchmark (`cargo xtask bench`): silent-failure regions by density on a
//! `FAILSCOPE_BENCH_N`-point (default 100,000) 2-D and 3-D layout — four class blobs, 20 % of the
//! rows wrong at random and a planted blob of 1 % confident errors — through what
//! `GET /api/studies/{id}/hotspots` runs after reading the store: `cluster::assign` with
//! `Method::Density`, `cluster::summarise`, `hotspots::ranked`. The baseline, timed in the same
//! run: DBSCAN (linfa) on the same layout, the other density-based clustering failscope offers.
//! Prints the best of five runs, the ratio, and where the planted blob ranks.
//!
//! Not criterion: the baseline takes seconds, and the figure of interest is a ratio of one run.

use std::time::Instant;

use failscope::latent::cluster::{self, Method, Samples};
use failscope_shared::analysis::hotspots;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use synthetic::points;

// Only `points` of the benchmarks' shared helpers is used here.
#[allow(dead_code)]
mod synthetic;

/// A layout of `n` points in `dims` dimensions and what each point is; the last 1 % are planted.
struct Study {
    layout: Array2<f32>,
    labels: Vec<i64>,
    predicted: Vec<i64>,
    dataset_idx: Vec<i64>,
    confidence: Vec<f32>,
}

fn study(n: usize, dims: usize) -> Study {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let normal = Normal::new(0.0f32, 1.0).expect("valid");
    let planted = n / 100;
    let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..4)).collect();
    let layout = Array2::from_shape_fn((n, dims), |(i, d)| {
        if i >= n - planted {
            [5.0, 9.0, 3.0][d] + 0.4 * normal.sample(&mut rng)
        } else {
            labels[i] as f32 * [10.0, -5.0, 2.0][d] + 3.0 * normal.sample(&mut rng)
        }
    });
    let predicted = (0..n)
        .map(|i| {
            if i >= n - planted || rng.random_bool(0.2) {
                (labels[i] + 1) % 4
            } else {
                labels[i]
            }
        })
        .collect();
    let dataset_idx = (0..n)
        .map(|i| if i >= n - planted { 5 } else { rng.random_range(0..6) })
        .collect();
    let confidence = (0..n)
        .map(|i| {
            if i >= n - planted {
                0.999
            } else {
                rng.random_range(0.5..1.0)
            }
        })
        .collect();
    Study {
        layout,
        labels,
        predicted,
        dataset_idx,
        confidence,
    }
}

/// Best of `runs` timings of `f`, in seconds, and its last result.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = None;
    let mut fastest = f64::INFINITY;
    for _ in 0..runs {
        let t = Instant::now();
        out = Some(f());
        fastest = fastest.min(t.elapsed().as_secs_f64());
    }
    (fastest, out.expect("at least one run"))
}

fn main() {
    let n = points(100_000);
    let classes: Vec<String> = (0..4).map(|c| format!("class {c}")).collect();
    let sets: Vec<String> = (0..6).map(|k| format!("dataset {k}")).collect();
    println!("hotspots: {n} points, 1 % planted confident errors");
    for dims in [2, 3] {
        let s = study(n, dims);
        let samples = Samples {
            labels: &s.labels,
            predicted: &s.predicted,
            dataset_idx: &s.dataset_idx,
            confidence: &s.confidence,
        };
        let (secs, ranked) = best(5, || {
            let threshold = cluster::coverage_threshold(&samples, 0.95);
            let a = cluster::assign(s.layout.view(), &samples, &Method::density(), 0, threshold).expect("density");
            let c = cluster::summarise(s.layout.view(), a, &samples, "det_mcp", threshold);
            hotspots::ranked(&c, &classes, &sets, &[])
        });
        let first = ranked.first().map_or(0, |h| h.silent);
        println!(
            "  {dims}-D density regions + ranking: {:.3} s ({} regions; the first holds {first} silent failures, {} planted)",
            secs,
            ranked.len(),
            n / 100
        );
        // DBSCAN with a radius of about one density-grid cell.
        let eps = f64::from(s.layout.column(0).fold(0.0f32, |m, v| m.max(v.abs()))) / 64.0;
        let dbscan = Method::Dbscan { eps, min_points: 10 };
        let (base, _) = best(1, || {
            // DBSCAN ignores the threshold (it clusters every point).
            cluster::assign(s.layout.view(), &samples, &dbscan, 0, f64::NAN).expect("DBSCAN")
        });
        println!(
            "  {dims}-D DBSCAN (linfa, eps {eps:.3}, 10 points): {base:.3} s — {:.0}× the density regions",
            base / secs
        );
    }
}
