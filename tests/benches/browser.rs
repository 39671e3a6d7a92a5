//! Browser benchmark (`cargo xtask bench`; needs `dist/` and chromedriver, like the browser tests):
//! in headless Chromium (WebGL2 on SwiftShader, i.e. software rendering — a real GPU is faster),
//! the time from navigation start to the first drawn scatter of a 100,000-point study, and the
//! frame time while panning (2-D) and orbiting (3-D) 1,000,000 points, against the idle frame.
//! Studies are synthetic (random labels, scores and coordinates) with the embedding already cached,
//! so the figures are the app's: loading columns and coordinates as binary buffers, colouring,
//! uploading and drawing.

use std::time::Duration;

use failscope_e2e::browser::{serve, session, start_chromedriver};
use failscope_e2e::synthetic::synthetic_study;

/// First 40 idle frames (waiting for each frame and for the GPU to finish it: the display's frame
/// interval, the baseline), then a drag across the canvas for 40 frames, then the release (a full
/// redraw); answers `[idle frame, frame while dragging, full redraw]` in ms.
const DRAG: &str = "const done = arguments[arguments.length - 1];
 const c = document.getElementById('scatter'); const r = c.getBoundingClientRect();
 const gl = c.getContext('webgl2');
 const ev = (t, x, y) => c.dispatchEvent(new MouseEvent(t, {clientX: r.left + x, clientY: r.top + y, bubbles: true}));
 const frame = async () => { await new Promise(res => requestAnimationFrame(res)); gl.finish(); };
 (async () => {
   const frames = 40, i0 = performance.now();
   for (let i = 1; i <= frames; i++) await frame();
   const idle = (performance.now() - i0) / frames;
   ev('mousedown', 300, 300);
   const t0 = performance.now();
   for (let i = 1; i <= frames; i++) {
     ev('mousemove', 300 + 4 * i, 300 + 2 * i);
     await frame();
   }
   const t1 = performance.now();
   ev('mouseup', 300 + 4 * frames, 300 + 2 * frames);
   await frame();
   done([idle, (t1 - t0) / frames, performance.now() - t1]);
 })();";

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
        // With the silent-failure contours drawn over the scatter.
        c.goto(&format!("http://{addr}/?study=1&contours=1")).await.unwrap();
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
    for (what, query) in [
        ("panning (2-D), 4-px markers, contours drawn", "size=4&contours=1"),
        ("panning (2-D), 1-px markers, contours drawn", "size=1&contours=1"),
        ("orbiting (3-D), 4-px markers", "size=4&dims=3"),
    ] {
        c.goto(&format!("http://{addr}/?study=1&{query}")).await.unwrap();
        for _ in 0..3000 {
            if attr(&c, "data-drawn").await > 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ms = c.execute_async(DRAG, vec![]).await.unwrap();
        let v = |i: usize| ms.get(i).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        results.push((what, v(0), v(1), v(2)));
    }
    c.close().await.unwrap();
    for (what, idle, drag, full) in results {
        println!(
            "1,000,000 points, {what}: {drag:.1} ms per frame = {:.2} × the idle frame ({idle:.1} ms, the display's interval; goal ≤ 33 ms); full redraw on release {full:.0} ms — SwiftShader software rendering",
            drag / idle
        );
    }
}
