//! `GET /api/studies/{id}/hotspots` through `app(state)` (no socket, real SQLite): a planted
//! cluster of confident errors comes first; what the endpoint refuses, it names.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use failscope::http::{app, AppState};
use failscope::store::Store;
use failscope_e2e::synthetic::synthetic_study_planted;
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
    }

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
