//! A real browser on the latent view's workspace: the test-set filters grouped by shift family,
//! with a severity range per corruption type that lives in the URL, and the silent-failure
//! hotspots found by density on the layout, and a comparison of two models or two CSFs reopened
//! from its short link in a fresh browser profile. Headless Chromium through
//! chromedriver against the real server and WASM frontend (`cargo xtask test` runs it with
//! `--include-ignored`).

use std::time::Duration;

use failscope::store::Store;
use failscope_e2e::browser::{click, drawn, in_browser, in_browsers, serve, shot, text, with_element};
use failscope_e2e::synthetic::{synthetic_pair, synthetic_study, synthetic_study_planted, TEST_SETS};
use failscope_shared::analysis::compare::{compare, Side, Summary, Tally, Verdict};
use failscope_shared::api::HotspotRanking;
use failscope_shared::wire::SILENT_FAILURE_COVERAGE;
use fantoccini::Locator;

type Cmd<T> = Result<T, fantoccini::error::CmdError>;

/// The page's view state (its query string).
async fn view_state(c: &fantoccini::Client) -> Cmd<String> {
    let v = c
        .execute("return document.getElementById('view-state').textContent", vec![])
        .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Waits (up to 10 s) until the filters leave `expected` points shown.
async fn shown(c: &fantoccini::Client, expected: usize) -> Cmd<()> {
    let mut last = None;
    for _ in 0..100 {
        last = with_element(c, "#shown-count", |e| async move { e.attr("data-shown").await }).await?;
        if last.as_deref() == Some(expected.to_string().as_str()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{last:?} points shown, expected {expected}");
}

async fn value(c: &fantoccini::Client, css: &str) -> Cmd<String> {
    with_element(c, css, |e| async move { e.prop("value").await })
        .await
        .map(Option::unwrap_or_default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn shift_families_group_the_filters_and_a_severity_range_reopens_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    synthetic_study(&db, 3_000);
    // Rows per test set, to know what each filter leaves.
    let sets: Vec<i64> = Store::open(&db)
        .unwrap()
        .samples(1)
        .unwrap()
        .iter()
        .map(|s| s.dataset_idx)
        .collect();
    let count = |keep: &dyn Fn(i64) -> bool| sets.iter().filter(|k| keep(**k)).count();
    let blur = |k: i64| TEST_SETS[k as usize].strip_prefix("in_class_study_corruption_blur_");
    assert_eq!(blur(4), Some("3"), "dataset 4 is blur at severity 3");
    let (n_blur, without_blur1, severity3, without_site2, all_but_site2) = (
        count(&|k| k >= 3),
        count(&|k| k != 3),
        count(&|k| k != 3 && k != 5),
        count(&|k| k != 2 && k != 3 && k != 5),
        count(&|k| k != 2),
    );
    let addr = serve(db).await;
    let link = format!("http://{addr}/?study=1&sev=blur:3-5");
    in_browser(dir.path(), |c| async move {
        c.goto(&link).await?;
        assert_eq!(drawn(&c).await?, 3_000);
        // Three families: i.i.d. (validation, test), acquisition (site2), corruption (blur 1, 3, 5).
        let families: Vec<String> = {
            let mut ids = Vec::new();
            for f in c.find_all(Locator::Css("#shift-filters fieldset.family")).await? {
                ids.push(f.attr("id").await?.unwrap_or_default());
            }
            ids
        };
        assert_eq!(families, ["family-iid", "family-acquisition", "family-corruption"]);
        let corruption = text(&c, "#family-corruption legend").await?;
        assert!(corruption.starts_with("corruption"), "{corruption}");
        assert!(
            corruption.replace(",", "").contains(&format!("{n_blur} · ")),
            "the family shows its rows and accuracy: {corruption}"
        );
        // The range from the link: severities 3–5 of blur, so blur 1 (dataset 3) is hidden.
        assert_eq!(
            (value(&c, "#sev-lo-blur").await?, value(&c, "#sev-hi-blur").await?),
            ("3".into(), "5".into())
        );
        assert_eq!(text(&c, "#sev-blur").await?, "3–5");
        shown(&c, without_blur1).await?;
        assert_eq!(view_state(&c).await?, "study=1&sev=blur:3-5");
        shot(&c, "shift-families.png").await?;
        // Narrow it to severity 3 with the upper slider.
        c.execute(
            "const e = document.getElementById('sev-hi-blur'); e.value = '3'; \
             e.dispatchEvent(new Event('input', {bubbles: true}));",
            vec![],
        )
        .await?;
        shown(&c, severity3).await?;
        assert_eq!(view_state(&c).await?, "study=1&sev=blur:3-3");
        // One click hides the whole acquisition family; the range stays.
        click(&c, "#fam-acquisition").await?;
        shown(&c, without_site2).await?;
        assert_eq!(view_state(&c).await?, "study=1&hide=2&sev=blur:3-3");
        // Filtered-out points may stay in grey: drawn, but still not counted as shown.
        click(&c, "#ghost").await?;
        shown(&c, without_site2).await?;
        assert_eq!(view_state(&c).await?, "study=1&hide=2&sev=blur:3-3&ghost=1");
        shot(&c, "filters-ghosts.png").await?;
        click(&c, "#ghost").await?;
        // A range over every severity is no range: the link stays short.
        c.execute(
            "for (const [id, v] of [['sev-lo-blur', '1'], ['sev-hi-blur', '5']]) { \
             const e = document.getElementById(id); e.value = v; \
             e.dispatchEvent(new Event('input', {bubbles: true})); }",
            vec![],
        )
        .await?;
        shown(&c, all_but_site2).await?;
        assert_eq!(view_state(&c).await?, "study=1&hide=2");
        Cmd::Ok(())
    })
    .await;

    // The link opened in a fresh browser profile reopens exactly: the same range, the same points.
    let link = format!("http://{addr}/?study=1&hide=2&sev=blur:3-3");
    in_browser(dir.path(), |c| async move {
        c.goto(&link).await?;
        drawn(&c).await?;
        assert_eq!(
            (value(&c, "#sev-lo-blur").await?, value(&c, "#sev-hi-blur").await?),
            ("3".into(), "3".into())
        );
        let checked = with_element(&c, "#fam-acquisition", |e| async move { e.prop("checked").await }).await?;
        assert_eq!(checked.as_deref(), Some("false"));
        shown(&c, without_site2).await?;
        assert_eq!(view_state(&c).await?, "study=1&hide=2&sev=blur:3-3");
        Cmd::Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn a_planted_cluster_of_confident_errors_is_the_first_hotspot_and_a_click_selects_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let planted = synthetic_study_planted(&db, 20_000, 400);
    let addr = serve(db).await;
    in_browser(dir.path(), |c| async move {
        c.goto(&format!("http://{addr}/?study=1&panel=clusters")).await?;
        // The ranking over the API: the planted blob is ranked first and holds ≥ 90 % of it.
        let answer = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 fetch('/api/studies/1/hotspots').then(r => r.text()).then(done);",
                vec![],
            )
            .await?;
        let body = answer.as_str().unwrap_or_default().to_string();
        let ranking: HotspotRanking = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let first = &ranking.hotspots[0];
        let held = planted
            .clone()
            .filter(|&r| ranking.assignment[r] == first.id as i32)
            .count();
        assert!(
            held * 10 >= planted.len() * 9,
            "the first hotspot holds {held} of {}",
            planted.len()
        );
        assert!(
            first.label.contains("blur 5") && first.label.ends_with("% silent"),
            "{}",
            first.label
        );
        let (size, label) = (first.size, first.label.clone());
        drawn(&c).await?;
        // The row is found afresh for each use: the panel re-renders as the layout settles.
        let first_row = text(&c, "#clusters tr.cluster-row").await?;
        assert!(first_row.contains(&label), "the panel ranks it first too: {first_row}");
        click(&c, "#clusters tr.cluster-row").await?;
        // Framed and selected: the camera moved, and the selection is the region.
        for _ in 0..50 {
            if view_state(&c).await?.contains("cam=") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(view_state(&c).await?.contains("cam="));
        // The silent failures' density as contours, drawn over the framed blob.
        c.execute(
            "window.dispatchEvent(new KeyboardEvent('keydown', {key: 'c'}));",
            vec![],
        )
        .await?;
        let levels = with_element(&c, "#contour-lines", |e| async move { e.attr("data-levels").await }).await?;
        let count = levels.as_deref().and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
        assert!(count >= 2, "contour levels: {levels:?}");
        let inside = c
            .execute(
                "const p = document.querySelector('#contour-lines path.level-3').getBoundingClientRect(); \
                 const s = document.getElementById('scatter').getBoundingClientRect(); \
                 return p.width > 4 && p.height > 4 && p.left >= s.left - 1 && p.right <= s.right + 1 \
                    && p.top >= s.top - 1 && p.bottom <= s.bottom + 1;",
                vec![],
            )
            .await?;
        assert_eq!(
            inside.as_bool(),
            Some(true),
            "the densest contour lies on the framed scatter"
        );
        assert!(view_state(&c).await?.contains("contours=1"));
        shot(&c, "hotspot-density.png").await?;
        click(&c, "#tab-selection").await?;
        let picked = text(&c, "#selection-stats").await?;
        assert!(
            picked.contains(&format!("points\n{size}\n")),
            "region of {size}: {picked}"
        );
        Cmd::Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn the_scatter_fills_the_window_with_the_panels_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    synthetic_study(&db, 5_000);
    let addr = serve(db).await;
    in_browser(dir.path(), |c| async move {
        let measure = "const r = document.getElementById('scatter').getBoundingClientRect(); \
             const p = document.querySelector('aside.panel').getBoundingClientRect(); \
             return [r.width, r.height, window.innerWidth, window.innerHeight, p.width];";
        let sizes =
            |v: serde_json::Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
            c.set_window_size(w, h).await?;
            c.goto(&format!("http://{addr}/?study=1&panel=clusters")).await?;
            drawn(&c).await?;
            let m = sizes(c.execute(measure, vec![]).await?);
            let (height, inner) = (m[1], m[3]);
            assert!(
                height >= 0.8 * inner,
                "{w}×{h}: the scatter is {height} of {inner} px high"
            );
            assert!(m[4] >= 280.0, "{w}×{h}: the panel is open ({} px)", m[4]);
            shot(&c, &format!("workspace-{w}x{h}.png")).await?;
            // Folding the rail widens the scatter, which redraws at its new size.
            let before = m[0];
            c.execute(
                "window.dispatchEvent(new KeyboardEvent('keydown', {key: '['}));",
                vec![],
            )
            .await?;
            let mut wider = before;
            for _ in 0..50 {
                wider = sizes(c.execute(measure, vec![]).await?)[0];
                if wider > before + 200.0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(wider > before + 200.0, "{w}×{h}: {before} → {wider} px wide");
            let pixels = c
                .execute(
                    "const c = document.getElementById('scatter'); return [c.width, c.clientWidth * devicePixelRatio];",
                    vec![],
                )
                .await?;
            let px = sizes(pixels);
            assert!(
                (px[0] - px[1]).abs() <= 1.0,
                "{w}×{h}: the canvas redrew at its new size: {px:?}"
            );
        }
        // The shortcuts overlay opens with "?" and closes with Escape; "t" switches the theme.
        for (key, shown) in [("?", true), ("Escape", false)] {
            c.execute(
                &format!("window.dispatchEvent(new KeyboardEvent('keydown', {{key: '{key}'}}));"),
                vec![],
            )
            .await?;
            let hidden = with_element(&c, "#shortcuts", |e| async move { e.attr("class").await }).await?;
            assert_eq!(!hidden.unwrap_or_default().contains("hidden"), shown, "after {key}");
        }
        // The header's "?" button opens it too; a click on the overlay closes it.
        for (css, shown) in [("#help-toggle", true), ("#shortcuts", false)] {
            click(&c, css).await?;
            let hidden = with_element(&c, "#shortcuts", |e| async move { e.attr("class").await }).await?;
            assert_eq!(
                !hidden.unwrap_or_default().contains("hidden"),
                shown,
                "after a click on {css}"
            );
        }
        click(&c, "#theme-toggle").await?;
        let theme = c
            .execute("return document.documentElement.getAttribute('data-theme')", vec![])
            .await?;
        assert_eq!(theme.as_str(), Some("dark"));
        drawn(&c).await?;
        shot(&c, "workspace-dark.png").await?;
        Cmd::Ok(())
    })
    .await;
}

/// Side A's or B's columns from the store, as the comparison reads them.
struct Cols {
    dataset_idx: Vec<u16>,
    label: Vec<u16>,
    predicted: Vec<u16>,
    score: Vec<f32>,
}

impl Cols {
    fn of(store: &Store, id: i64, csf: &str) -> Cols {
        let s = store.samples(id).unwrap();
        let u = |f: &dyn Fn(&failscope::ingest::SampleRecord) -> i64| s.iter().map(|r| f(r) as u16).collect();
        Cols {
            dataset_idx: u(&|r| r.dataset_idx),
            label: u(&|r| r.label),
            predicted: u(&|r| r.predicted),
            score: store.scores(id).unwrap()[csf].clone(),
        }
    }

    fn side(&self) -> Side<'_> {
        Side {
            dataset_idx: &self.dataset_idx,
            label: &self.label,
            predicted: &self.predicted,
            score: &self.score,
        }
    }
}

/// Waits (up to 20 s) until the compare panel shows `expected`: both sides' tallies and every
/// verdict's count.
async fn shows(c: &fantoccini::Client, expected: &Summary) -> Cmd<()> {
    let attr = |css: String, name: &'static str| async move {
        with_element(c, &css, |e| async move { e.attr(name).await })
            .await
            .map(|v| v.unwrap_or_default())
    };
    let want = |t: &Tally| vec![t.silent.to_string(), t.caught.to_string(), t.failures.to_string()];
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen.clear();
        for side in ["#compare-a", "#compare-b"] {
            for name in ["data-silent", "data-caught", "data-failures"] {
                seen.push(attr(side.to_string(), name).await?);
            }
        }
        if seen == [want(&expected.a), want(&expected.b)].concat() {
            for v in Verdict::ALL {
                let css = format!("#compare-verdicts tr[data-verdict='{}']", v.name());
                let n = expected.counts[v as usize];
                let found = c.find_all(Locator::Css(&css)).await?;
                match found.first() {
                    Some(row) => assert_eq!(row.attr("data-count").await?, Some(n.to_string()), "{v:?}"),
                    None => assert_eq!(n, 0, "{v:?} has no row"),
                }
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the compare panel shows {seen:?}, expected A {:?} and B {:?}",
        expected.a, expected.b
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn a_comparison_link_opens_the_same_comparison_in_a_fresh_browser_profile() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    // Study 2 holds study 1's samples in reverse order, with other predictions and scores.
    synthetic_pair(&db, 3_000, &images);
    let store = Store::open(&db).unwrap();
    let (a, b, pe) = (
        Cols::of(&store, 1, "det_mcp"),
        Cols::of(&store, 2, "det_mcp"),
        Cols::of(&store, 1, "det_pe"),
    );
    drop(store);
    let reversed: Vec<u32> = (0..3_000).rev().collect();
    let compared = compare(&a.side(), &b.side(), Some(&reversed), 0.9);
    let models = compared.all;
    // With the i.i.d. sets (dataset indices 0 and 1) hidden by the filters.
    let shifted = compared.summary(|r| a.dataset_idx[r] > 1);
    let csfs = compare(&a.side(), &pe.side(), None, SILENT_FAILURE_COVERAGE).all;
    assert!(
        models.counts[Verdict::SilentACaughtB as usize] > 0 && models.counts[Verdict::SilentARightB as usize] > 0,
        "the models disagree: {:?}",
        models.counts
    );
    let addr = serve(db).await;
    in_browsers(dir.path(), |[c, c2]: [fantoccini::Client; 2]| async move {
        c.goto(&format!("http://{addr}/?study=1&panel=compare")).await?;
        assert_eq!(drawn(&c).await?, 3_000);
        // Compare with study 2 at 90 % coverage, as a user does it in the panel.
        with_element(&c, "#compare-with option[value='2']", |_| async { Ok(()) }).await?;
        with_element(&c, "#compare-with", |e| async move { e.select_by_value("2").await }).await?;
        c.execute(
            "const e = document.getElementById('compare-coverage'); e.value = '0.9'; \
             e.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![],
        )
        .await?;
        shows(&c, &models).await?;
        assert_eq!(
            view_state(&c).await?,
            "study=1&color=compare&panel=compare&vs=2&cov=0.9"
        );
        let legend = text(&c, ".legend").await?;
        let n = models.counts[Verdict::SilentACaughtB as usize];
        assert!(legend.contains(&format!("silent for A, caught by B ({n})")), "{legend}");
        shot(&c, "compare.png").await?;
        // A verdict frames and selects its points.
        click(&c, "#compare-verdicts tr[data-verdict='silent-a-caught-b']").await?;
        click(&c, "#tab-selection").await?;
        let stats = text(&c, "#selection-stats").await?;
        assert!(stats.starts_with(&format!("points\n{n}\n")), "{stats}");
        click(&c, "#tab-compare").await?;
        let state = view_state(&c).await?;
        assert!(state.contains("cam="), "the camera framed the verdict: {state}");

        // Its short link, opened in a fresh browser profile, gives the same comparison.
        click(&c, "#short-link").await?;
        let mut short = String::new();
        for _ in 0..100 {
            short = value(&c, "#short-url").await?;
            if !short.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(short.contains("/s/"), "{short}");
        c2.goto(&short).await?;
        assert_eq!(drawn(&c2).await?, 3_000);
        assert_eq!(view_state(&c2).await?, state);
        shows(&c2, &models).await?;
        assert_eq!(value(&c2, "#compare-with").await?, "2");
        assert_eq!(value(&c2, "#compare-coverage").await?, "0.9");
        // The filters narrow the counts to the points shown; the thresholds stay.
        c2.goto(&format!(
            "http://{addr}/?study=1&hide=0,1&vs=2&cov=0.9&color=compare&panel=compare"
        ))
        .await?;
        drawn(&c2).await?;
        shows(&c2, &shifted).await?;
        assert!(shifted.a.failures < models.a.failures && shifted.a.threshold == models.a.threshold);

        // One study, two CSFs: which failures each catches.
        c2.goto(&format!(
            "http://{addr}/?study=1&csf2=det_pe&color=compare&panel=compare"
        ))
        .await?;
        drawn(&c2).await?;
        shows(&c2, &csfs).await?;
        assert_eq!(value(&c2, "#compare-with").await?, "self");
        let legend = text(&c2, ".legend").await?;
        assert!(legend.contains("silent for det_mcp, caught by det_pe"), "{legend}");
        assert_eq!(
            (csfs.a.failures, csfs.counts[Verdict::SilentARightB as usize]),
            (csfs.b.failures, 0),
            "one model: the same failures"
        );
        shot(&c2, "compare-csfs.png").await?;
        // A CSF side B lacks is named in the panel.
        c2.goto(&format!("http://{addr}/?study=1&vs=2&csf2=nope&panel=compare"))
            .await?;
        let e = text(&c2, "#compare-error").await?;
        assert!(
            e.contains("cannot compare with study 2 under nope") && e.contains("nope"),
            "{e}"
        );
        // The CSF select says so, and choosing one of B's CSFs compares.
        assert_eq!(text(&c2, "#compare-csf option:checked").await?, "nope: not in B");
        with_element(
            &c2,
            "#compare-csf",
            |e| async move { e.select_by_value("det_mcp").await },
        )
        .await?;
        c2.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("#compare-verdicts"))
            .await?;
        assert!(view_state(&c2).await?.contains("csf2=det_mcp"));
        Cmd::Ok(())
    })
    .await;
}
