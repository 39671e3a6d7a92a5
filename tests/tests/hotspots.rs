//! The latent view's read endpoints through `app(state)` (no socket, real SQLite):
//! `GET /api/studies/{id}/hotspots` (a planted cluster of confident errors comes first; what the
//! endpoint refuses, it names) and `GET /api/studies/{id}/matches/{other}` (two studies of the
//! same samples paired by sample id).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use failscope::http::{app, AppState};
use failscope::store::Store;
use failscope_e2e::synthetic::{synthetic_pair, synthetic_study_planted, synthetic_study_planted_with_images};
use failscope_shared::api::HotspotRanking;
use tower::ServiceExt;

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    let resp = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 26).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_planted_cluster_ranks_first_and_bad_queries_are_named() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    let planted = synthetic_study_planted(&db, 20_000, 400);
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();

    for query in ["", "?dims=3", "?csf=det_mcp&dims=2&layout=tsne"] {
        let (status, body) = get(&state, &format!("/api/studies/1/hotspots{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let r: HotspotRanking = serde_json::from_str(&body).unwrap();
        assert_eq!(r.assignment.len(), 20_000);
        let first = &r.hotspots[0];
        let held = planted
            .clone()
            .filter(|&row| r.assignment[row] == first.id as i32)
            .count();
        assert!(held >= 360, "{query}: the first hotspot holds {held} of 400");
        assert!(first.silent >= 360 && first.silent_rate > 0.8, "{query}: {first:?}");
        // Ranked: silent failures never increase down the list.
        assert!(r.hotspots.windows(2).all(|w| w[0].silent >= w[1].silent), "{query}");
        // The planted rows are confident errors at 0.999, above the working point.
        assert!(r.threshold < 0.999, "{}", r.threshold);
        // Asked again, the same ranking, now read from the store's cache.
        let (_, again) = get(&state, &format!("/api/studies/1/hotspots{query}")).await;
        assert_eq!(again, body, "{query}");
    }
    let cached: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM latent_results WHERE kind = 'hotspots'", [], |r| {
            r.get(0)
        })
        .unwrap();
    // Three queries, two of them the same parameters spelt twice ("" and the explicit 2-D t-SNE).
    assert_eq!(cached, 2);

    for (query, status, says) in [
        ("?dims=4", StatusCode::BAD_REQUEST, "dims"),
        ("?csf=nope", StatusCode::BAD_REQUEST, "nope"),
        ("?layout=pca", StatusCode::BAD_REQUEST, "layout"),
        ("?nn=1&layout=umap", StatusCode::BAD_REQUEST, "neighbours"),
        // No UMAP layout was computed: the endpoint says how to get one instead of starting it.
        ("?layout=umap", StatusCode::CONFLICT, "POST /api/studies/1/embeddings"),
    ] {
        let (got, body) = get(&state, &format!("/api/studies/1/hotspots{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(
            body.starts_with("{\"error\":") && body.contains(says),
            "{query}: {body}"
        );
    }
    let (status, body) = get(&state, "/api/studies/9/hotspots").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_studies_of_the_same_samples_pair_their_rows_by_sample_id() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    // Study 2 holds study 1's samples in reverse order: row r of 1 is row 599 − r of 2.
    synthetic_pair(&db, 600, d.path());
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    let matched = |uri: &'static str| {
        let state = state.clone();
        async move {
            let resp = app(state)
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            let h = |k: &str| resp.headers()[k].to_str().unwrap().to_string();
            let (dtype, n) = (h("x-failscope-dtype"), h("x-failscope-matched"));
            let body = axum::body::to_bytes(resp.into_body(), 1 << 26).await.unwrap();
            (dtype, n, failscope_shared::wire::u32s(&body).unwrap())
        }
    };
    let (dtype, n, rows) = matched("/api/studies/1/matches/2").await;
    assert_eq!((dtype.as_str(), n.as_str()), ("u32", "600"));
    assert_eq!(rows, (0..600u32).rev().collect::<Vec<_>>());
    let (_, _, back) = matched("/api/studies/2/matches/1").await;
    assert_eq!(back, rows);
    let (_, n, same) = matched("/api/studies/1/matches/1").await;
    assert_eq!((n.as_str(), same), ("600", (0..600u32).collect::<Vec<_>>()));
    let (status, body) = get(&state, "/api/studies/1/matches/9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no study with id 9"), "{body}");
    let (status, body) = get(&state, "/api/studies/1/matches/two").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("ids are integers"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_from_one_domain_is_labelled_with_it() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    // The 300 planted rows all come from `scanner-x`; the other rows from three sites in turn.
    synthetic_study_planted_with_images(&db, 6_000, 300, d.path());
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    let (status, body) = get(&state, "/api/studies/1/hotspots").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r: HotspotRanking = serde_json::from_str(&body).unwrap();
    let first = &r.hotspots[0].label;
    assert!(first.contains(" · domain scanner-x · "), "{first}");
    // Regions of the class blobs mix the three sites: none names a site.
    assert!(
        r.hotspots.iter().all(|h| !h.label.contains("domain site")),
        "{:?}",
        r.hotspots
    );
}
