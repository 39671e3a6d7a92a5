//! The benchmarks' synthetic features (shared by `embed.rs` and `neighbours.rs`) and their
//! memory reading.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// ReLU features of a 12-cluster mixture on a 32-dimensional subspace (like a CNN's penultimate layer).
pub fn features(n: usize, d: usize) -> Array2<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let normal = Normal::new(0.0f32, 1.0).expect("valid");
    let centres = Array2::from_shape_fn((12, 32), |_| normal.sample(&mut rng));
    let w = Array2::from_shape_fn((32, d), |_| normal.sample(&mut rng) / 32f32.sqrt());
    let low = Array2::from_shape_fn((n, 32), |_| 0.0f32);
    let mut low = low;
    for mut row in low.rows_mut() {
        let c = rng.random_range(0..12);
        for (j, v) in row.iter_mut().enumerate() {
            *v = centres[[c, j]] + 0.6 * normal.sample(&mut rng);
        }
    }
    let mut x = low.dot(&w);
    x.mapv_inplace(|v| (v + 0.3 * normal.sample(&mut rng)).max(0.0));
    x
}

/// This process's peak resident memory (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Points to benchmark: `FAILSCOPE_BENCH_N`, or `default`.
pub fn points(default: usize) -> usize {
    std::env::var("FAILSCOPE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
