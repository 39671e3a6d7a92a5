//! Browser benchmark (`cargo xtask bench`; needs `dist/` and chromedriver, like the browser tests):
//! in headless Chromium (WebGL2 on SwiftShader, i.e. software rendering — a real GPU is faster),
//! the time from navigation start to the first drawn scatter of a 100,000-point study, and the
//! frame time while panning 1,000,000 points. Studies are synthetic (random labels, scores and
//! coordinates) with the embedding already cached, so the figures are the app's: loading columns
//! and coordinates as binary buffers, colouring, uploading and drawing.

use std::time::Duration;

use failscope::latent::EmbedParams;
use failscope::store::{NewStudy, SampleRecord, Store};
use failscope_e2e::browser::{serve, session, start_chromedriver};
use failscope_shared::analysis::experiment::Report;
use indexmap::IndexMap;
use ndarray::Array2;

/// Drags across the canvas for 40 frames, waiting for each frame and for the GPU to finish it,
/// then releases (a full redraw); answers `[mean frame time while dragging, full redraw]` in ms.
const PAN: &str = "const done = arguments[arguments.length - 1];
 const c = document.getElementById('scatter'); const r = c.getBoundingClientRect();
 const gl = c.getContext('webgl2');
 const ev = (t, x, y) => c.dispatchEvent(new MouseEvent(t, {clientX: r.left + x, clientY: r.top + y, bubbles: true}));
 (async () => {
   ev('mousedown', 300, 300);
   const frames = 40, t0 = performance.now();
   for (let i = 1; i <= frames; i++) {
     ev('mousemove', 300 + 4 * i, 300 + 2 * i);
     await new Promise(res => requestAnimationFrame(res));
     gl.finish();
   }
   const t1 = performance.now();
   ev('mouseup', 300 + 4 * frames, 300 + 2 * frames);
   await new Promise(res => requestAnimationFrame(res));
   gl.finish();
   done([(t1 - t0) / frames, performance.now() - t1]);
 })();";

/// A study of `n` points with 4 classes, 6 test sets, scores, 2-D features and a cached embedding.
fn synthetic_study(db: &std::path::Path, n: usize) {
    let mut store = Store::open(db).unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let samples: Vec<SampleRecord> = (0..n)
        .map(|i| {
            let label = (next() * 4.0) as i64;
            SampleRecord {
                row: i as i64,
                dataset_idx: (next() * 6.0) as i64,
                label,
                predicted: if next() < 0.8 { label } else { (label + 1) % 4 },
            }
        })
        .collect();
    let coords = Array2::from_shape_fn((n, 2), |(i, d)| {
        let c = (samples[i].label as f32) * 10.0;
        c * if d == 0 { 1.0 } else { -0.5 } + (next() as f32 - 0.5) * 12.0
    });
    let scores = IndexMap::from([(
        "det_mcp".to_string(),
        (0..n).map(|_| 0.5 + next() / 2.0).collect::<Vec<f64>>(),
    )]);
    let id = store
        .insert(&NewStudy {
            name: &format!("synthetic {n}"),
            kind: "synthetic",
            source: "benchmark",
            n_classes: 4,
            n_samples: n as u64,
            compat: "current",
            report: &Report::new(),
            files: &[],
            samples: &samples,
            features: Some(coords.view()),
            mc: None,
            scores: &scores,
            probs: None,
            sources: None,
        })
        .unwrap();
    let blob: Vec<u8> = coords.iter().flat_map(|v| v.to_le_bytes()).collect();
    store
        .cache(id, "embedding", &EmbedParams::default().key(), &blob)
        .unwrap();
}

/// A numeric attribute of the scatter canvas; 0 while the page has no canvas yet.
async fn attr(c: &fantoccini::Client, name: &str) -> f64 {
    let Ok(el) = c.find(fantoccini::Locator::Css("#scatter")).await else {
        return 0.0;
    };
    el.attr(name)
        .await
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (load_db, pan_db) = (dir.path().join("load.db"), dir.path().join("pan.db"));
    synthetic_study(&load_db, 100_000);
    synthetic_study(&pan_db, 1_000_000);
    let (_driver, port) = start_chromedriver().await;

    let addr = serve(load_db).await;
    let c = session(port, &dir.path().join("profile-load")).await;
    // A warm-up load (the wasm compiled and cached), then the measured one.
    let mut first = Vec::new();
    for _ in 0..3 {
        c.goto(&format!("http://{addr}/?study=1")).await.unwrap();
        for _ in 0..600 {
            if attr(&c, "data-drawn").await > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        first.push(attr(&c, "data-first-draw-ms").await);
    }
    c.close().await.unwrap();
    println!(
        "100,000 points: navigation start → first drawn scatter: {:.0} ms (runs: {:?} ms; goal ≤ 1500)",
        first[1..].iter().sum::<f64>() / (first.len() - 1) as f64,
        first.iter().map(|v| v.round()).collect::<Vec<_>>()
    );

    let addr = serve(pan_db).await;
    let c = session(port, &dir.path().join("profile-pan")).await;
    let mut results = Vec::new();
    for size in [4, 1] {
        c.goto(&format!("http://{addr}/?study=1&size={size}")).await.unwrap();
        for _ in 0..3000 {
            if attr(&c, "data-drawn").await > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ms = c.execute_async(PAN, vec![]).await.unwrap();
        let v = |i: usize| ms.get(i).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        results.push((size, v(0), v(1)));
    }
    c.close().await.unwrap();
    for (size, drag, full) in results {
        println!(
            "1,000,000 points, {size}-px markers: frame time while panning {drag:.1} ms (50,000-point sample while dragging; goal ≤ 33), full redraw on release {full:.1} ms — SwiftShader software rendering"
        );
    }
}
