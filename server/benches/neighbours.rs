//! Neighbour-search benchmark (`cargo xtask bench`): exact against approximate (the partition
//! search of `latent::ivf`, which the server uses, and HNSW, `latent::ann`) k-NN on `FAILSCOPE_BENCH_N` (default 100,000) synthetic points × 512 features,
//! in the t-SNE's space (PCA 50, k = 90 for perplexity 30, and k = 10) and in the inspector's
//! (the raw 512 features, k = 10 for one clicked sample). Prints times, their ratios and
//! recall@k against exact search, all measured here in this run.
//!
//! Not criterion: the builds take seconds, and the figures of interest are recall and the ratio
//! of two timings of one run.

use std::ops::ControlFlow;
use std::time::Instant;

use failscope::latent::{ann, ivf, knn, pca};
use synthetic::{features, peak_rss_mib, points};

mod synthetic;

fn go(_: f64) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn main() {
    let n = points(100_000);
    let threads = rayon::current_num_threads();
    let raw = features(n, 512);
    let z = pca(raw.view(), 50).expect("PCA");
    println!("neighbours: {n} points, PCA 50 of 512 features, {threads} threads");

    let t = Instant::now();
    let exact90 = knn::knn(z.view(), 90);
    let exact_s = t.elapsed().as_secs_f64();
    // The partition search the t-SNE and UMAP use past `latent::APPROXIMATE_FROM` rows, at its
    // default probe (or each of `FAILSCOPE_BENCH_PROBES`, comma-separated).
    let probes: Vec<usize> = std::env::var("FAILSCOPE_BENCH_PROBES")
        .ok()
        .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![ivf::PROBE]);
    let exact10 = knn::Knn {
        k: 10,
        indices: exact90.indices.chunks(90).flat_map(|r| r[..10].to_vec()).collect(),
        dist2: exact90.dist2.chunks(90).flat_map(|r| r[..10].to_vec()).collect(),
    };
    // HNSW, for comparison, unless `FAILSCOPE_BENCH_HNSW=0` (its builds take minutes here).
    let hnsw = std::env::var("FAILSCOPE_BENCH_HNSW").as_deref() != Ok("0");
    for probe in probes {
        let t = Instant::now();
        let approx90 = ivf::knn(z.view(), 90, probe, &go).expect("not stopped");
        let ivf_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let approx10 = ivf::knn(z.view(), 10, probe, &go).expect("not stopped");
        let ivf10_s = t.elapsed().as_secs_f64();
        println!(
            "  k = 90 (t-SNE): partition ({} cells, {probe} probed) {ivf_s:.2} s = {:.1}× faster than exact; recall@90 {:.4}; k = 10: {ivf10_s:.2} s, recall@10 {:.4}",
            ivf::cells_for(n),
            exact_s / ivf_s,
            ann::recall(&exact90, &approx90),
            ann::recall(&exact10, &approx10)
        );
    }
    if hnsw {
        hnsw_knn(&z, &exact90, &exact10, exact_s);
    }
    drop((exact90, exact10));

    similar_cases(&raw, hnsw);
    println!("  peak memory {:.0} MiB", peak_rss_mib().unwrap_or(f64::NAN));
}

/// HNSW's k-NN in the t-SNE's space, against the exact one.
fn hnsw_knn(z: &ndarray::Array2<f32>, exact90: &knn::Knn, exact10: &knn::Knn, exact_s: f64) {
    let t = Instant::now();
    let index = ann::Index::build(z.view(), &go).expect("not stopped");
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let approx90 = index.knn(z.view(), 90, &go).expect("not stopped");
    let search_s = t.elapsed().as_secs_f64();
    println!(
        "  k = 90 (t-SNE): exact {exact_s:.2} s; HNSW {:.2} s (build {build_s:.2} s, search {search_s:.2} s) = {:.1}× faster; recall@90 {:.4}",
        build_s + search_s,
        exact_s / (build_s + search_s),
        ann::recall(exact90, &approx90)
    );
    // Recall@10 of a 10-neighbour search (the acceptance figure), on the same index.
    let t = Instant::now();
    let approx10 = index.knn(z.view(), 10, &go).expect("not stopped");
    println!(
        "  k = 10: HNSW search {:.2} s, recall@10 {:.4}",
        t.elapsed().as_secs_f64(),
        ann::recall(exact10, &approx10)
    );
}

/// The inspector's "similar cases": one clicked sample, k = 10, in the raw features; exact scan,
/// the partition index the server uses, and (unless `FAILSCOPE_BENCH_HNSW=0`) HNSW.
fn similar_cases(raw: &ndarray::Array2<f32>, hnsw: bool) {
    let n = raw.nrows();

    let queries: Vec<usize> = (0..200).map(|i| i * n / 200).collect();
    // The queries' neighbours as `Knn`s (rows in query order), so `ann::recall` scores them.
    let as_knn = |rows: Vec<Vec<usize>>| knn::Knn {
        k: 10,
        indices: rows.into_iter().flatten().map(|j| j as u32).collect(),
        dist2: vec![0.0; 10 * queries.len()],
    };
    let t = Instant::now();
    let exact = as_knn(
        queries
            .iter()
            .map(|&i| knn::neighbours_of(raw.view(), i, 10).into_iter().map(|p| p.0).collect())
            .collect(),
    );
    let exact_q = t.elapsed().as_secs_f64() / queries.len() as f64;
    let queried = |near: &dyn Fn(usize) -> Vec<(usize, f64)>| {
        let t = Instant::now();
        let found = as_knn(
            queries
                .iter()
                .map(|&i| near(i).into_iter().map(|p| p.0).collect())
                .collect(),
        );
        (t.elapsed().as_secs_f64() / queries.len() as f64, found)
    };
    let t = Instant::now();
    let index = ivf::Index::build(raw.view(), &go).expect("not stopped");
    let build_s = t.elapsed().as_secs_f64();
    let (approx_q, found) = queried(&|i| index.near(raw.view(), i, 10));
    println!(
        "  one query, k = 10, 512 features: exact scan {:.1} ms; partition ({} cells, {} probed) {:.2} ms ({:.0}× faster, after a {build_s:.1} s build); recall@10 {:.4}",
        exact_q * 1e3,
        ivf::cells_for(n),
        ivf::QUERY_PROBE,
        approx_q * 1e3,
        exact_q / approx_q,
        ann::recall(&exact, &found)
    );
    if hnsw {
        let t = Instant::now();
        let index = ann::Index::build(raw.view(), &go).expect("not stopped");
        let build_s = t.elapsed().as_secs_f64();
        let (approx_q, found) = queried(&|i| index.near(raw.view(), i, 10));
        println!(
            "  one query, k = 10, 512 features: HNSW {:.2} ms ({:.0}× faster than the scan, after a {build_s:.1} s build); recall@10 {:.4}",
            approx_q * 1e3,
            exact_q / approx_q,
            ann::recall(&exact, &found)
        );
    }
}
