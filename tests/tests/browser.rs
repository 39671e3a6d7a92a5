//! A real browser: headless Chromium through chromedriver (fantoccini) against the real server and the
//! real WASM frontend. `cargo xtask test` builds `dist/` and runs this with `--include-ignored`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use failscope::store::Store;
use failscope_e2e::browser::{
    click, drawn, in_browser, in_browsers, serve, serve_with, shot, text, text_when, type_into, with_element,
};
use failscope_e2e::import_demo_study;
use fantoccini::Locator;

/// Serves `db` (or, when `None`, a fresh store with the FD-Shifts demo study) and the built frontend.
async fn start_server(dir: &std::path::Path, db: Option<PathBuf>) -> SocketAddr {
    let db = db.unwrap_or_else(|| {
        let db = dir.join("s.db");
        import_demo_study(&db, "derm-demo");
        db
    });
    serve(db).await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn page_lists_studies_and_shows_a_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path(), None).await;
    in_browser(dir.path(), |c| async move {
        c.goto(&format!("http://{addr}/")).await?;
        let item = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("#study-list li.study"))
            .await?;
        let text = item.text().await?;
        assert!(
            text.contains("derm-demo"),
            "study list shows the imported study: {text}"
        );
        item.click().await?;
        // A study without features: the view says so, and its benchmark is one tab away.
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("#view-error"))
            .await?;
        c.find(Locator::Css("#tab-benchmark")).await?.click().await?;
        let table = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("section.benchmark table"))
            .await?;
        let body = c.find(Locator::Css("section.benchmark")).await?.text().await?;
        assert!(
            body.contains("iid_study") && body.contains("det_mcp") && body.contains("aurc"),
            "benchmark: {body}"
        );
        assert!(
            table.text().await?.contains("dg"),
            "the external CSF is reported under ext_confid_name"
        );
        let png = c.screenshot().await?;
        let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts/screenshots");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("study-benchmark.png"), &png).unwrap();
        assert!(
            png.len() > 10_000,
            "a real screenshot, not an empty page ({} bytes)",
            png.len()
        );
        Ok::<_, fantoccini::error::CmdError>(())
    })
    .await;
}

/// Coloured (non-white, non-grey-border) pixels inside the canvas in a real screenshot.
async fn coloured_pixels(c: &fantoccini::Client) -> Result<usize, fantoccini::error::CmdError> {
    let png = c.screenshot().await?;
    let img = image::load_from_memory(&png).expect("a PNG screenshot").to_rgb8();
    let (x, y, w, h) = c.find(Locator::Css("#scatter")).await?.rectangle().await?;
    let scale = f64::from(img.width()) / 1400.0;
    let mut n = 0;
    for py in (y + 4.0) as u32..(y + h - 4.0) as u32 {
        for px in (x + 4.0) as u32..(x + w - 4.0) as u32 {
            let (sx, sy) = ((f64::from(px) * scale) as u32, (f64::from(py) * scale) as u32);
            if sx >= img.width() || sy >= img.height() {
                continue;
            }
            let p = img.get_pixel(sx, sy).0;
            let spread = p.iter().max().unwrap() - p.iter().min().unwrap();
            if spread > 40 {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Finds `css` (waiting up to 30 s) and applies `f` to it, from a fresh find again while the
/// element goes stale (the app re-rendered it between the find and the use).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn latent_view_inspect_recolour_share_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = failscope_e2e::inferred_study(dir.path());
    let store = Store::open(&db).unwrap();
    let n = store.samples(1).unwrap().len();
    let label_of_5 = format!("class{}", store.samples(1).unwrap()[5].label);
    drop(store);
    let addr = start_server(dir.path(), Some(db)).await;
    in_browsers(dir.path(), |[c, c2]: [fantoccini::Client; 2]| async move {
        let base = format!("http://{addr}");
        // The scatter draws every point (pixel check on a real screenshot, not just the DOM).
        c.goto(&format!("{base}/?study=1")).await?;
        assert_eq!(drawn(&c).await?, n);
        let pixels = coloured_pixels(&c).await?;
        assert!(pixels > 300, "the canvas shows coloured points ({pixels} coloured pixels)");
        shot(&c, "scatter-test-sets.png").await?;
        // The embedding job's progress arrived over Server-Sent Events, not by polling its status.
        let paths = c
            .execute("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)", vec![])
            .await?;
        let paths: Vec<&str> = paths.as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
        let jobs: Vec<&str> = paths.iter().filter_map(|p| p.strip_prefix("/api/jobs/")).collect();
        assert!(jobs.iter().any(|p| p.ends_with("/events")), "{paths:?}");
        assert!(
            !jobs.iter().any(|p| p.bytes().all(|b| b.is_ascii_digit())),
            "no status polling: {paths:?}"
        );

        // Select a known sample through the URL: the inspector shows its image and label.
        c.goto(&format!("{base}/?study=1&sel=5")).await?;
        drawn(&c).await?;
        assert_eq!(text(&c, "#inspector-label").await?, label_of_5);
        let img = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#inspector-image")).await?;
        let mut loaded = false;
        for _ in 0..100 {
            let w = c
                .execute("return document.getElementById('inspector-image').naturalWidth", vec![])
                .await?;
            if w.as_u64().unwrap_or(0) > 0 {
                loaded = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(loaded, "the inspector's image loads ({:?})", img.attr("src").await?);
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#neighbours .thumb")).await?;
        shot(&c, "inspector.png").await?;

        // Switch the colour mode: legend and URL state follow.
        c.find(Locator::Css("#color-mode")).await?.select_by_value("confusion").await?;
        let legend = text(&c, ".legend").await?;
        assert!(legend.contains("correct") && legend.contains("wrong"), "{legend}");
        let state = c
            .execute("return document.getElementById('view-state').textContent", vec![])
            .await?;
        let state = state.as_str().unwrap_or_default().to_string();
        assert!(state.contains("color=confusion") && state.contains("sel=5"), "{state}");
        assert!(coloured_pixels(&c).await? > 300);
        shot(&c, "scatter-confusion.png").await?;

        // Copy link → a fresh browser session opens exactly the same view.
        c.find(Locator::Css("#copy-link")).await?.click().await?;
        let url = c.find(Locator::Css("#share-url")).await?.prop("value").await?.unwrap_or_default();
        assert!(url.contains("color=confusion"), "{url}");
        c2.goto(&url).await?;
        assert_eq!(drawn(&c2).await?, n);
        let state2 = c2.execute("return document.getElementById('view-state').textContent", vec![]).await?;
        assert_eq!(state2.as_str().unwrap_or_default(), state);
        assert_eq!(text(&c2, "#inspector-label").await?, label_of_5);
        let select = c2.execute("return document.getElementById('color-mode').value", vec![]).await?;
        assert_eq!(select.as_str(), Some("confusion"));

        // A short link resolves to the same view.
        c.find(Locator::Css("#short-link")).await?.click().await?;
        let mut short = String::new();
        for _ in 0..100 {
            short = c.find(Locator::Css("#short-url")).await?.prop("value").await?.unwrap_or_default();
            if !short.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(short.contains("/s/"), "{short}");
        c2.goto(&short).await?;
        drawn(&c2).await?;
        let state3 = c2.execute("return document.getElementById('view-state').textContent", vec![]).await?;
        assert_eq!(state3.as_str().unwrap_or_default(), state);

        // The panels, each with a screenshot.
        c.find(Locator::Css("#tab-failures")).await?.click().await?;
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#failures .thumb, #failures p")).await?;
        shot(&c, "panel-failures.png").await?;
        c.find(Locator::Css("#tab-clusters")).await?.click().await?;
        // The k-means clusters per class (density regions are `browser_views`' test).
        with_element(&c, "#regions", |e| async move { e.select_by_value("kmeans").await }).await?;
        text_when(&c, "#clusters", Duration::from_secs(60), |t| {
            t.contains(" clusters, most silent failures first")
        })
        .await?;
        c.wait().at_most(Duration::from_secs(60)).for_element(Locator::Css("#clusters table")).await?;
        shot(&c, "panel-clusters.png").await?;
        // Hotspots: ranked by silent failures; a click frames the cluster and selects its samples.
        let hotspots = c.find_all(Locator::Css("#clusters tr.cluster-row")).await?;
        let mut silent = Vec::new();
        for h in &hotspots {
            let cells = h.find_all(Locator::Css("td.num")).await?;
            silent.push(cells[2].text().await?.parse::<u64>().unwrap_or(u64::MAX));
        }
        assert!(silent.windows(2).all(|w| w[0] >= w[1]), "not ranked: {silent:?}");
        let first = &hotspots[0];
        let size: usize = first.find_all(Locator::Css("td.num")).await?[0].text().await?.parse().unwrap_or(0);
        assert!(first.text().await?.contains("% silent"));
        first.click().await?;
        let mut framed = String::new();
        for _ in 0..50 {
            let v = c
                .execute("const e=document.getElementById('view-state'); return e ? e.textContent : ''", vec![])
                .await?;
            framed = v.as_str().unwrap_or_default().to_string();
            if framed.contains("color=cluster") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(framed.contains("color=cluster") && framed.contains("cam="), "{framed}");
        c.find(Locator::Css("#tab-selection")).await?.click().await?;
        let picked = text(&c, "#selection-stats").await?;
        assert!(picked.contains(&format!("points\n{size}\n")), "cluster of {size}: {picked}");
        // Back to the whole study for what follows.
        c.goto(&format!("{base}/?study=1")).await?;
        assert_eq!(drawn(&c).await?, n);
        c.find(Locator::Css("#tab-benchmark")).await?.click().await?;
        c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("section.benchmark table")).await?;
        // The interactive risk–coverage chart: one curve per test set; hovering reads off risk and
        // threshold; a legend click hides a curve; generalised risk switches the legend to AUGRC.
        let curves = c.find_all(Locator::Css("#rc-chart polyline.rc-curve")).await?.len();
        assert!(curves >= 2, "{curves} curves");
        c.execute(
            "const s=document.querySelector('#rc-chart svg'); const r=s.getBoundingClientRect();
             s.dispatchEvent(new MouseEvent('mousemove',{clientX:r.left+r.width*0.6,clientY:r.top+r.height/2,bubbles:true}));",
            vec![],
        )
        .await?;
        let readout = text(&c, "#rc-readout").await?;
        assert!(readout.starts_with("coverage 0.") && readout.contains("keeps det_mcp ≥"), "{readout}");
        c.find(Locator::Css("#rc-chart li.rc-legend")).await?.click().await?;
        assert_eq!(c.find_all(Locator::Css("#rc-chart polyline.rc-curve")).await?.len(), curves - 1);
        c.find(Locator::Css("#rc-generalised")).await?.click().await?;
        assert!(text(&c, "#rc-chart ul.chart-legend").await?.contains("AUGRC"));
        assert_eq!(c.find_all(Locator::Css("a.figure-download")).await?.len(), 4);
        shot(&c, "panel-benchmark.png").await?;
        // Box selection (shift-drag over the whole plot): every visible point is selected.
        c.execute(
            "const c=document.getElementById('scatter'); const r=c.getBoundingClientRect();
             const ev=(t,x,y)=>c.dispatchEvent(new MouseEvent(t,{clientX:r.left+x,clientY:r.top+y,shiftKey:true,bubbles:true}));
             ev('mousedown',2,2); ev('mousemove',r.width-2,r.height-2); ev('mouseup',r.width-2,r.height-2);",
            vec![],
        )
        .await?;
        let stats = text(&c, "#selection-stats").await?;
        assert!(stats.contains(&n.to_string()), "{stats}");
        // The selection as images: a page of 24, most confident first, wrong ones marked.
        let tiles = c.find_all(Locator::Css("#selection-grid figure.thumb")).await?;
        assert_eq!(tiles.len(), n.min(24));
        let mut scores = Vec::new();
        for t in &tiles {
            let caption = t.text().await?;
            let score: f64 = caption.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            assert!(caption.starts_with('✓') || caption.starts_with('✗'), "{caption}");
            scores.push(score);
        }
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "not most confident first: {scores:?}");
        assert!(text(&c, "#selection-page").await?.contains(&format!("of {}", n.div_ceil(24))));
        shot(&c, "panel-selection.png").await?;
        // A tile opens its sample in the inspector, whose prediction agrees with the tile's mark.
        let row = tiles[0].attr("data-row").await?.unwrap_or_default();
        let wrong = tiles[0].attr("class").await?.unwrap_or_default().contains("wrong");
        tiles[0].click().await?;
        let shown = text_when(&c, "#inspector-row", Duration::from_secs(5), |t| {
            t.starts_with(&format!("#{row} ")) || t == format!("#{row}")
        })
        .await?;
        assert!(shown.starts_with(&format!("#{row}")), "inspector shows {shown:?}, tile {row}");
        assert_eq!(text(&c, "#inspector-prediction").await?.contains("wrong"), wrong);
        c.find(Locator::Css("#tab-selection")).await?.click().await?;
        // Lasso: a triangle over the lower-left half selects some points but not all; an outline
        // around the whole plot (closed where it started) selects every point.
        c.find(Locator::Css("#tool-lasso")).await?.click().await?;
        let lasso = |outline: &str| {
            format!(
                "const c=document.getElementById('scatter'); const r=c.getBoundingClientRect();
                 const ev=(t,x,y)=>c.dispatchEvent(new MouseEvent(t,{{clientX:r.left+x*r.width,clientY:r.top+y*r.height,bubbles:true}}));
                 const p={outline}; ev('mousedown',p[0][0],p[0][1]);
                 for (const [x,y] of p.slice(1)) ev('mousemove',x,y);
                 ev('mouseup',p[p.length-1][0],p[p.length-1][1]);"
            )
        };
        let boxed = text(&c, "#selection-stats").await?;
        // Waits for the selection panel to change from `before`.
        let changed = |before: String| {
            let c = c.clone();
            async move { text_when(&c, "#selection-stats", Duration::from_secs(5), |now| now != before).await }
        };
        c.execute(&lasso("[[0.005,0.005],[0.995,0.995],[0.005,0.995],[0.005,0.01]]"), vec![]).await?;
        let some = changed(boxed).await?;
        let k: usize = some.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0);
        assert!(k > 0 && k < n, "a half-plot lasso selected {k} of {n}: {some}");
        c.execute(&lasso("[[0.005,0.005],[0.995,0.005],[0.995,0.995],[0.005,0.995],[0.005,0.01]]"), vec![]).await?;
        let all = changed(some).await?;
        assert!(all.contains(&format!("points\n{n}")), "{all}");
        c.find(Locator::Css("#tool-move")).await?.click().await?;

        // Classes as marker shapes: a shape legend entry per class, big markers drawn.
        c.goto(&format!("{base}/?study=1&color=confusion&shape=class&size=14")).await?;
        assert_eq!(drawn(&c).await?, n);
        let glyphs = c.find_all(Locator::Css(".legend b.glyph")).await?.len();
        assert_eq!(glyphs, 3, "one shape per class");
        assert!(c.find(Locator::Css("#class-shapes")).await?.prop("checked").await?.as_deref() == Some("true"));
        assert!(coloured_pixels(&c).await? > 300);
        shot(&c, "scatter-shapes.png").await?;

        // 3-D: the embedding is recomputed in three dimensions and orbits with the mouse.
        c.goto(&format!("{base}/?study=1&dims=3")).await?;
        assert_eq!(drawn(&c).await?, n);
        c.execute(
            "const c=document.getElementById('scatter'); const r=c.getBoundingClientRect();
             const ev=(t,x,y)=>c.dispatchEvent(new MouseEvent(t,{clientX:r.left+x,clientY:r.top+y,bubbles:true}));
             ev('mousedown',200,200); ev('mousemove',260,230); ev('mouseup',260,230);",
            vec![],
        )
        .await?;
        let state3d = c.execute("return document.getElementById('view-state').textContent", vec![]).await?;
        let state3d = state3d.as_str().unwrap_or_default().to_string();
        let v = failscope_shared::view::ViewState::from_query(&state3d).unwrap();
        assert!(v.dims == 3 && (v.cam.yaw - 0.6).abs() < 1e-4 && (v.cam.pitch - 0.3).abs() < 1e-4, "{state3d}");
        assert!(coloured_pixels(&c).await? > 300);
        shot(&c, "scatter-3d.png").await?;

        // UMAP from the toolbar: the view state records it and its parameters, and the link
        // reopens it with the controls set.
        c.goto(&format!("{base}/?study=1")).await?;
        drawn(&c).await?;
        let change = |id: &str, value: &str| {
            format!(
                "const e=document.getElementById('{id}'); e.value='{value}'; e.dispatchEvent(new Event('change',{{bubbles:true}}));"
            )
        };
        c.execute(&change("layout", "umap"), vec![]).await?;
        c.execute(&change("umap-nn", "10"), vec![]).await?;
        let mut umap_state = String::new();
        for _ in 0..50 {
            let v = c.execute("return document.getElementById('view-state').textContent", vec![]).await?;
            umap_state = v.as_str().unwrap_or_default().to_string();
            if umap_state.contains("nn=10") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let v = failscope_shared::view::ViewState::from_query(&umap_state).unwrap();
        assert!(v.layout == failscope_shared::api::Layout::Umap && v.neighbours == 10, "{umap_state}");
        c.goto(&format!("{base}/?{umap_state}")).await?;
        assert_eq!(drawn(&c).await?, n);
        assert_eq!(c.find(Locator::Css("#layout")).await?.prop("value").await?.as_deref(), Some("umap"));
        assert_eq!(c.find(Locator::Css("#umap-nn")).await?.prop("value").await?.as_deref(), Some("10"));
        assert!(coloured_pixels(&c).await? > 300);
        shot(&c, "scatter-umap.png").await?;

        // Bad requests: a malformed link, an unknown study, a path-traversal image request.
        c.goto(&format!("{base}/?study=abc")).await?;
        assert!(text(&c, "#page-error").await?.contains("study=abc"));
        c.goto(&format!("{base}/?study=999")).await?;
        assert!(text(&c, "#page-error").await?.contains("no study with id 999"));
        c.goto(&format!("{base}/api/studies/1/samples/..%2F..%2F..%2Fetc%2Fpasswd/image")).await?;
        let body = c.find(Locator::Css("body")).await?.text().await?;
        assert!(body.contains("non-negative integers") && !body.contains("root:"), "{body}");
        Ok::<_, fantoccini::error::CmdError>(())
    })
    .await;
}

/// Drags across the scatter of `n` points and compares the frame mid-drag with the frame before,
/// shifted by the drag: answers `[pixels that moved with the mouse, drawn pixels before]`.
const PAN_CHECK: &str = "const done = arguments[arguments.length - 1];
 const c = document.getElementById('scatter'); const r = c.getBoundingClientRect();
 const ev = (t, x, y) => c.dispatchEvent(new MouseEvent(t, {clientX: r.left + x, clientY: r.top + y, bubbles: true}));
 const pixels = () => { const k = document.createElement('canvas'); k.width = c.width; k.height = c.height;
   const g = k.getContext('2d'); g.drawImage(c, 0, 0); return g.getImageData(0, 0, c.width, c.height).data; };
 const frame = () => new Promise(res => requestAnimationFrame(() => requestAnimationFrame(res)));
 (async () => {
   const before = pixels(), s = c.width / r.width, dx = Math.round(30 * s), dy = Math.round(15 * s);
   ev('mousedown', 200, 200); ev('mousemove', 230, 215); await frame();
   const during = pixels();
   ev('mouseup', 230, 215); await frame();
   let same = 0, inked = 0;
   for (let y = 8; y + dy < c.height - 8; y++) for (let x = 8; x + dx < c.width - 8; x++) {
     const a = 4 * (y * c.width + x), b = 4 * ((y + dy) * c.width + x + dx);
     if (before[a] + before[a + 1] + before[a + 2] < 740) {
       inked++;
       if (Math.abs(before[a] - during[b]) + Math.abs(before[a + 1] - during[b + 1]) + Math.abs(before[a + 2] - during[b + 2]) < 12) same++;
     }
   }
   done([same, inked]);
 })();";

/// A hash of the scatter's pixels and whether it shows an intermediate layout (`[0, null]` before
/// the scatter exists).
const CANVAS_HASH: &str = "const c = document.getElementById('scatter'); if (!c || !c.width) return [0, null];
 const k = document.createElement('canvas'); k.width = c.width; k.height = c.height;
 const g = k.getContext('2d'); g.drawImage(c, 0, 0); const d = g.getImageData(0, 0, c.width, c.height).data;
 let h = 0; for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) | 0;
 return [h, c.getAttribute('data-live')];";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn a_layout_grows_live_settles_and_stops_when_asked() {
    // 20,000 points with no cached UMAP: seconds of epochs, a layout every 250 ms.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    failscope_e2e::synthetic::synthetic_study(&db, 20_000);
    let addr = serve(db).await;
    in_browser(dir.path(), |c| async move {
        let frame = |c: fantoccini::Client| async move {
            let v = c.execute(CANVAS_HASH, vec![]).await?;
            Ok::<_, fantoccini::error::CmdError>((v[0].as_i64().unwrap_or(0), v[1].as_str() == Some("true")))
        };
        c.goto(&format!("http://{addr}/?study=1&layout=umap&size=2")).await?;
        // Two frames while the job runs differ: the points move.
        let mut live = None;
        for _ in 0..600 {
            let (h, is_live) = frame(c.clone()).await?;
            if is_live {
                live = Some(h);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let first = live.expect("an intermediate layout within 30 s");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (second, still_live) = frame(c.clone()).await?;
        assert!(still_live, "the job was over before a second frame");
        assert_ne!(first, second, "the points moved between two frames while the job ran");
        // Then the final layout: no longer live, and still.
        assert_eq!(drawn(&c).await?, 20_000);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (settled, is_live) = frame(c.clone()).await?;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!((settled, is_live), frame(c.clone()).await?, "the final layout stays put");
        assert!(c.find(Locator::Css("#job-progress")).await.is_err(), "no progress bar once done");

        // Another layout, stopped from the progress bar: the job ends as cancelled at its next step.
        c.goto(&format!("http://{addr}/?study=1&layout=umap&nn=30&size=2")).await?;
        for _ in 0..600 {
            if frame(c.clone()).await?.1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cancel = c.find(Locator::Css("#job-cancel")).await?;
        let job = cancel.attr("data-job").await?.expect("the running job's id on its stop button");
        cancel.click().await?;
        // The page says so at once; the server's answer to the stop request follows.
        let said = text_when(&c, "#view-error", Duration::from_secs(30), |t| !t.is_empty()).await?;
        assert!(said.contains("embedding stopped"), "the page's line after the click: {said:?}");
        // The job ends as cancelled at its next epoch (slow on a busy 2-core runner: the job runs at
        // a lower priority than the browsers drawing beside it).
        let mut seen = Vec::new();
        for _ in 0..300 {
            let s = c
                .execute_async(
                    &format!("const done = arguments[0]; fetch('/api/jobs/{job}').then(r => r.json()).then(s => done([s.stage, s.fraction]));"),
                    vec![],
                )
                .await?;
            let stage = (s[0].as_str().unwrap_or_default().to_string(), s[1].as_f64().unwrap_or(f64::NAN));
            if seen.last().is_none_or(|l: &(String, f64)| *l != stage) {
                seen.push(stage);
            }
            if seen.last().is_some_and(|(s, _)| s == "cancelled") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let said = text(&c, "#view-error").await?;
        assert_eq!(
            seen.last().map(|(s, _)| s.as_str()),
            Some("cancelled"),
            "job {job}'s stages after the click: {seen:?}; the page said {said:?}"
        );
        Ok::<_, fantoccini::error::CmdError>(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn panning_a_large_study_keeps_every_point_on_screen() {
    // More points than any sample drawn while moving: only the kept full frame moves them all.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("large.db");
    failscope_e2e::synthetic::synthetic_study(&db, 60_000);
    let addr = serve(db).await;
    in_browser(dir.path(), |c| async move {
        c.goto(&format!("http://{addr}/?study=1&size=2")).await?;
        assert_eq!(drawn(&c).await?, 60_000);
        let moved = c.execute_async(PAN_CHECK, vec![]).await?;
        let (same, inked) = (moved[0].as_f64().unwrap_or(0.0), moved[1].as_f64().unwrap_or(0.0));
        assert!(
            inked > 10_000.0 && same / inked > 0.97,
            "mid-drag frame: {same} of {inked} drawn pixels moved with the mouse"
        );
        let state = c
            .execute("return document.getElementById('view-state').textContent", vec![])
            .await?;
        let state = failscope_shared::view::ViewState::from_query(state.as_str().unwrap_or_default()).unwrap();
        assert!(
            state.cam.x < 0.0 && state.cam.y > 0.0,
            "a drag right and down pans left and up: {:?}",
            state.cam
        );
        Ok::<_, fantoccini::error::CmdError>(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn a_shared_server_signs_a_colleague_in_and_opens_the_share_link_they_were_sent() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    // Study 1 has features, so the jobs a viewer may not start are refused for the role alone.
    let run = failscope_e2e::import(&db, &failscope_e2e::fixture("fdshifts/features"), Some("derm-demo"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    import_demo_study(&db, "secret-b");
    let store = Store::open(&db).unwrap();
    // A viewer of study 1 only.
    let token = store
        .create_token("bob", failscope_shared::api::Role::Viewer, Some(&[1]))
        .unwrap();
    let link = store.create_link("study=1&panel=benchmark").unwrap();
    drop(store);
    let addr = serve_with(db, failscope::http::access::Access::new(true, None)).await;
    in_browser(dir.path(), |c| async move {
        // Not signed in: the link shows the sign-in form, not the study. (Every element is found
        // afresh for each use: the form and the header re-render as the app learns who is in.)
        c.goto(&format!("http://{addr}/s/{link}")).await?;
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("input#token"))
            .await?;
        let page = c.source().await?;
        assert!(!page.contains("derm-demo"), "nothing of the study before signing in");
        // A wrong token is refused on the form.
        type_into(&c, "input#token", "fst_0123").await?;
        click(&c, "button#signin").await?;
        // The form posts and the answer is a new page: until it arrives, the old one's empty line.
        let refused = text_when(&c, "#signin-error", Duration::from_secs(30), |t| !t.is_empty()).await?;
        assert!(refused.contains("not valid"), "{refused:?}");
        // The right one opens the shared view: the study's benchmark, signed in as bob.
        type_into(&c, "input#token", &token).await?;
        click(&c, "button#signin").await?;
        assert_eq!(
            text_when(&c, "#signed-in-as", Duration::from_secs(30), |t| !t.is_empty()).await?,
            "bob · viewer"
        );
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("section.benchmark table"))
            .await?;
        let url = c.current_url().await?;
        assert!(url.as_str().contains("study=1"), "{url}");
        let shown = with_element(&c, "#short-link", |e| async move { e.is_displayed().await }).await?;
        assert!(!shown, "a viewer is not offered short links");
        shot(&c, "signed-in-share-link.png").await?;
        assert!(!c.source().await?.contains("secret-b"), "study 2 is not listed");
        // What the page itself may do with bob's cookie: read study 1; study 2 is "not found" as
        // an unknown study is; starting work and making links are refused.
        let answers = c
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                (async () => {
                    const calls = [["GET", "/api/studies", null], ["GET", "/api/studies/1", null],
                        ["GET", "/api/studies/2", null], ["GET", "/api/studies/99", null],
                        ["GET", "/api/studies/2/layout", null],
                        ["POST", "/api/studies/1/embeddings", '{"perplexity": 5}'],
                        ["POST", "/api/studies/1/clusterings", '{}'],
                        ["POST", "/api/links", '{"state": "study=1"}']];
                    const out = [];
                    for (const [method, url, body] of calls) {
                        const r = await fetch(url, {method, body,
                            headers: body ? {"content-type": "application/json"} : {}});
                        out.push([r.status, await r.text()]);
                    }
                    done(out);
                })();"#,
                vec![],
            )
            .await?;
        let answers: Vec<(u16, String)> = serde_json::from_value(answers).unwrap();
        let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
        let short: Vec<String> = answers.iter().map(|a| a.1.chars().take(160).collect()).collect();
        assert_eq!(statuses, [200, 200, 404, 404, 404, 403, 403, 403], "{short:?}");
        assert!(answers[0].1.contains("derm-demo") && !answers[0].1.contains("secret-b"));
        assert_eq!(answers[2].1.replace("id 2", "id 99"), answers[3].1);
        assert!(answers.iter().all(|a| !a.1.contains("secret-b")));
        // Signing out returns to the form; the study is out of reach again.
        click(&c, "#signout").await?;
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("input#token"))
            .await?;
        c.goto(&format!("http://{addr}/?study=1")).await?;
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("input#token"))
            .await?;
        Ok::<_, fantoccini::error::CmdError>(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn the_reports_list_opens_a_benchmark_report_with_its_figures() {
    use failscope::bench;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    // One seed of a recipe "fx" with two models (the same FD-Shifts experiment twice), aggregated
    // and rendered as `failscope bench` does, and stored.
    for model in ["confidnet", "deepgamblers"] {
        let run = failscope_e2e::import(
            &db,
            &failscope_e2e::fixture("fdshifts/features"),
            Some(&bench::study_name("fx", 0, model)),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let store = Store::open(&db).unwrap();
    let data = bench::load(&store, "fx", "derm.csv", &[0], &["confidnet", "deepgamblers"]).unwrap();
    let settings = bench::aggregate::Settings {
        n_boot: 50,
        ..Default::default()
    };
    let result = bench::aggregate::aggregate(&data, &settings, &|_| ());
    let files = bench::render(&result, &bench::markdown::findings(&result));
    store.save_report("fx", &[0], &data.studies, &files).unwrap();
    drop(store);
    let addr = serve(db).await;
    in_browser(dir.path(), |c| async move {
        c.goto(&format!("http://{addr}/")).await?;
        let link = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("#reports a.report-link"))
            .await?;
        assert_eq!(link.text().await?, "fx");
        link.click().await?;
        let title = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("h1"))
            .await?;
        assert_eq!(title.text().await?, "Benchmark: fx");
        let findings = c.find(Locator::Css("ul")).await?.text().await?;
        assert!(findings.contains("ranks first"), "{findings}");
        // The figures are inline SVG that the browser lays out: rank heat map, working points and
        // the risk–coverage curves.
        let figures = c.find_all(Locator::Css("svg")).await?;
        assert!(figures.len() >= 4, "{} figures", figures.len());
        let (_, _, width, height) = figures[0].rectangle().await?;
        assert!(
            width > 300.0 && height > 200.0,
            "the heat map is drawn at {width}×{height}"
        );
        shot(&c, "benchmark-report.png").await?;
        // Each of the report's studies links to it.
        c.goto(&format!("http://{addr}/?study=1")).await?;
        let back = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("a.study-report"))
            .await?;
        assert_eq!(back.attr("href").await?.as_deref(), Some("/reports/fx"));
        Ok::<_, fantoccini::error::CmdError>(())
    })
    .await;
}
