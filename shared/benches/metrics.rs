//! All metrics of one CSF on 100k samples (the size FD-Shifts' own code is timed at, by
//! `fdshifts_reference.py`) and on 1M, and each expensive piece on its own.
//! Run: `cargo bench -p failscope-shared --bench metrics`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use failscope_shared::analysis::{calibration, metrics, rc::RiskCoverageStats, roc, Compat, EvalConfig, TieOrder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 1_000_000;

/// A realistic mix: 85 % accuracy, successes more confident on average, many ties (4 decimals).
fn data(n: usize) -> (Vec<f64>, Vec<bool>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let correct: Vec<bool> = (0..n).map(|_| rng.random_bool(0.85)).collect();
    let confids = correct
        .iter()
        .map(|&c| {
            let base: f64 = rng.random();
            let v = if c { 0.5 + 0.5 * base.sqrt() } else { 0.5 + 0.5 * base };
            (v * 1e4).round() / 1e4
        })
        .collect();
    let labels = (0..n).map(|_| rng.random_range(0..7)).collect();
    (confids, correct, labels)
}

/// All confid metrics under both FD-Shifts versions' definitions.
fn all_metrics(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    (confids, correct, labels): &(Vec<f64>, Vec<bool>, Vec<i64>),
) {
    for compat in [Compat::Head, Compat::FdShifts011] {
        let cfg = EvalConfig {
            compat,
            ..EvalConfig::default()
        };
        g.bench_function(format!("all confid metrics ({})", compat.name()), |b| {
            b.iter(|| metrics::confid_metrics(confids, correct, labels, &cfg))
        });
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("100k samples");
    all_metrics(&mut g, &data(100_000));
    g.finish();
    let full = data(N);
    let (confids, correct, labels) = &full;
    let mut g = c.benchmark_group("1M samples");
    g.sample_size(10);
    all_metrics(&mut g, &full);
    g.bench_function("sort (RiskCoverageStats::new)", |b| {
        b.iter(|| RiskCoverageStats::new(confids, correct, Some(labels), TieOrder::Numpy))
    });
    let stats = RiskCoverageStats::new(confids, correct, Some(labels), TieOrder::Numpy);
    g.bench_function("aurc (HEAD)", |b| b.iter(|| stats.aurc()));
    g.bench_function("aurc (legacy)", |b| b.iter(|| stats.aurc_legacy()));
    g.bench_function("failauc", |b| b.iter(|| roc::failauc(correct, confids)));
    g.bench_function("ece", |b| {
        b.iter_batched(
            || (),
            |_| calibration::reliability_bins(correct, confids, 20, calibration::Binarize::Correct),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
