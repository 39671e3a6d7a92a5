//! Embedding benchmark (`cargo xtask bench`): the joint 2-D and 3-D embeddings (PCA 50 → t-SNE)
//! and the 2-D UMAP of `FAILSCOPE_BENCH_N` (default 20,000) points × 512 features
//! (`FAILSCOPE_BENCH_DIMS=2` or `3` for one t-SNE, `FAILSCOPE_BENCH_LAYOUT=tsne` or `umap` for one
//! method; `FAILSCOPE_BENCH_ITERATIONS` for t-SNE's total iterations, default 750), timed here and — in the same run, on the same features and threads — by scikit-learn
//! (the SF-Visuals pipeline, 2-D and 3-D), openTSNE (2-D) and umap-learn (its warm second fit) when
//! `FAILSCOPE_BENCH_PYTHON` names a Python with them (`benches/tsne_reference.py`). Prints the
//! ratios, each embedding's trustworthiness (k = 10, computed by scikit-learn on one subsample)
//! and this process's peak memory.
//!
//! Each comparison runs in `FAILSCOPE_BENCH_ROUNDS` rounds (default 3), interleaved: failscope,
//! then the references (openTSNE, umap-learn) on the same features; scikit-learn's t-SNE, minutes
//! long, in the first round only. The figure reported is the ratio of the medians, beside every
//! round's own: this machine's speed drifts by a third within minutes, and one failscope run of
//! seconds can fall in a slow spell that a reference's half minute averages out.
//!
//! Not criterion: one run takes seconds to minutes, and the comparison is against external
//! programs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use failscope::latent::{embed, EmbedParams, Layout};
use ndarray::Array2;
use npyz::WriterBuilder;
use synthetic::{features, peak_rss_mib, points};

mod synthetic;

fn write_npy(path: &Path, a: &Array2<f32>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create .npy"));
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[a.nrows() as u64, a.ncols() as u64])
        .writer(&mut f)
        .begin_nd()
        .expect("npy header");
    w.extend(a.iter().copied()).expect("npy data");
    w.finish().expect("npy finish");
}

fn main() {
    let n = points(20_000);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let x = features(n, 512);
    eprintln!(
        "features generated; peak memory so far {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    let feat_path = dir.join("embed-bench-features.npy");
    write_npy(&feat_path, &x);

    let dims: Vec<usize> = match std::env::var("FAILSCOPE_BENCH_DIMS").ok().as_deref() {
        Some("2") => vec![2],
        Some("3") => vec![3],
        _ => vec![2, 3],
    };
    let layout = std::env::var("FAILSCOPE_BENCH_LAYOUT").ok();
    if layout.as_deref() != Some("umap") {
        for d in dims {
            let mut params = EmbedParams::default().dims(d);
            if let Some(it) = std::env::var("FAILSCOPE_BENCH_ITERATIONS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                params = params.iterations(it);
            }
            rounds(&x, &feat_path, &params, dir);
        }
    }
    if layout.as_deref() != Some("tsne") {
        let params = EmbedParams::default().layout(Layout::Umap);
        rounds(&x, &feat_path, &params, dir);
    }
}

/// Embeds `x` with `params`; prints the time, the stages and the peak memory so far, and answers
/// the seconds and where the embedding was written.
fn ours(x: &Array2<f32>, params: &EmbedParams, dir: &Path) -> (f64, std::path::PathBuf) {
    let (n, threads) = (x.nrows(), rayon::current_num_threads());
    let start = Instant::now();
    // Time of each stage's first report, for the breakdown.
    let stages = std::sync::Mutex::new(Vec::<(String, f64)>::new());
    let (dims, method) = (params.dims, params.layout.name());
    let y = embed(x.view(), params, &|stage, _| {
        let mut s = stages.lock().expect("stages lock");
        if s.last().is_none_or(|(last, _)| last != stage) {
            s.push((stage.to_string(), start.elapsed().as_secs_f64()));
            eprintln!(
                "  {stage} starts; peak memory so far {:.0} MiB",
                peak_rss_mib().unwrap_or(f64::NAN)
            );
        }
        std::ops::ControlFlow::Continue(())
    })
    .expect("embedding");
    let ours = start.elapsed().as_secs_f64();
    let stages = stages.into_inner().expect("stages lock");
    let breakdown: Vec<String> = stages
        .iter()
        .enumerate()
        .map(|(i, (name, t0))| {
            let t1 = stages.get(i + 1).map_or(ours, |s| s.1);
            format!("{name} {:.2} s", t1 - t0)
        })
        .collect();
    let emb_path = dir.join(format!("embed-bench-failscope-{method}-{dims}d.npy"));
    write_npy(&emb_path, &y);
    println!(
        "failscope {method}: {n} points × {} features → {dims}-D in {ours:.2} s on {threads} threads; peak memory so far {:.0} MiB",
        x.ncols(),
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    println!("  stages: {}", breakdown.join(", "));
    (ours, emb_path)
}

/// Points above which scikit-learn's t-SNE is left out of the comparison.
const SKLEARN_MAX: usize = 50_000;

/// Rounds of one comparison: `FAILSCOPE_BENCH_ROUNDS`, default 3.
fn round_count() -> usize {
    std::env::var("FAILSCOPE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let h = v.len() / 2;
    if v.len() % 2 == 1 {
        v[h]
    } else {
        (v[h - 1] + v[h]) / 2.0
    }
}

/// The references compared with a layout: (label, key of `tsne_reference.py`'s answer).
const REFERENCES: [(&str, &str); 3] = [
    ("scikit-learn (SF-Visuals)", "sklearn"),
    ("openTSNE", "opentsne"),
    ("umap-learn (warm second fit)", "umap"),
];

/// Embeds `x` with `params` in interleaved rounds with the Python references and prints each
/// round and the ratios of the medians.
fn rounds(x: &Array2<f32>, feat_path: &Path, params: &EmbedParams, dir: &Path) {
    let (n, threads) = (x.nrows(), rayon::current_num_threads());
    let mut ours_s = Vec::new();
    let mut answers: Vec<serde_json::Value> = Vec::new();
    let count = round_count();
    for round in 0..count {
        println!("round {} of {count}", round + 1);
        let (t, emb_path) = ours(x, params, dir);
        ours_s.push(t);
        // After the first round only the references that run in seconds to a minute repeat.
        let repeats = params.layout == Layout::Umap || params.dims == 2;
        if round == 0 || repeats {
            if let Some(v) = reference(feat_path, &emb_path, n, params, threads, round > 0) {
                for (name, key) in REFERENCES {
                    if let Some(s) = v[format!("{key}_s")].as_f64() {
                        println!("  {name}: {s:.2} s → failscope {:.1}× faster this round", s / t);
                    }
                }
                answers.push(v);
            }
        }
    }
    let ours = median(&ours_s);
    println!(
        "{}-D {}: failscope's median of {count} rounds {ours:.2} s (rounds: {})",
        params.dims,
        params.layout.name(),
        ours_s.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", ")
    );
    let Some(first) = answers.first() else {
        return;
    };
    let trusts: Vec<String> = answers
        .iter()
        .map(|v| format!("{:.4}", v["failscope_trust"].as_f64().unwrap_or(f64::NAN)))
        .collect();
    println!(
        "{}-D {} trustworthiness (k = 10, same subsample): failscope {}",
        params.dims,
        params.layout.name(),
        trusts.join(" / ")
    );
    for (name, key) in REFERENCES {
        let times: Vec<f64> = answers.iter().filter_map(|v| v[format!("{key}_s")].as_f64()).collect();
        if times.is_empty() {
            continue;
        }
        let theirs = median(&times);
        println!(
            "{name}: median of {} {theirs:.2} s (rounds: {}), trustworthiness {:.4}, peak memory {:.0} MiB → failscope is {:.1}× faster",
            times.len(),
            times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", "),
            first[format!("{key}_trust")].as_f64().unwrap_or(f64::NAN),
            first[format!("{key}_peak_mib")].as_f64().unwrap_or(f64::NAN),
            theirs / ours
        );
    }
}

/// Runs the Python side on the same features with the same method and dimensions (without
/// scikit-learn's t-SNE when `repeat`) and answers its JSON object; `None` without
/// `FAILSCOPE_BENCH_PYTHON`.
fn reference(
    feat_path: &Path,
    emb_path: &Path,
    n: usize,
    params: &EmbedParams,
    threads: usize,
    repeat: bool,
) -> Option<serde_json::Value> {
    let dims = params.dims;
    let Ok(python) = std::env::var("FAILSCOPE_BENCH_PYTHON") else {
        println!(
            "(set FAILSCOPE_BENCH_PYTHON to a Python with scikit-learn, openTSNE and umap-learn for the comparison)"
        );
        return None;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tsne_reference.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .arg(feat_path)
        .arg(threads.to_string())
        .arg(emb_path)
        .arg(format!("--dims={dims}"));
    if params.layout == Layout::Umap {
        cmd.arg("--umap");
    } else if n > SKLEARN_MAX {
        // scikit-learn's Barnes-Hut t-SNE would take the better part of an hour here.
        println!("(scikit-learn skipped above {SKLEARN_MAX} points; openTSNE is the comparison)");
        cmd.arg("--skip-sklearn");
    } else if repeat {
        cmd.arg("--skip-sklearn");
    }
    let out = cmd
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .expect("run the Python reference");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("one JSON object"))
}
