//! The HTTP API through `app(state)` with `oneshot`: no socket, real SQLite store, real import.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use failscope::http::{app, AppState};
use failscope::store::Store;
use failscope_e2e::{failscope, fixture, import_demo_study};
use failscope_shared::api::{ApiError, StudyDetail, StudySummary};
use tower::ServiceExt;

fn state_with_fixture() -> (tempfile::TempDir, AppState) {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    import_demo_study(&db, "derm");
    let dist = d.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>failscope</title>").unwrap();
    let state = AppState {
        store: Arc::new(Mutex::new(Store::open(&db).unwrap())),
        dist,
    };
    (d, state)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Vec<u8>) {
    let resp = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, body.to_vec())
}

#[tokio::test]
async fn lists_and_shows_studies() {
    let (_d, state) = state_with_fixture();
    let (status, body) = get(&state, "/api/studies").await;
    assert_eq!(status, StatusCode::OK);
    let list: Vec<StudySummary> = serde_json::from_slice(&body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "derm");
    assert!(list[0].test_sets.contains(&"iid_study".to_string()));
    let (status, body) = get(&state, &format!("/api/studies/{}", list[0].id)).await;
    assert_eq!(status, StatusCode::OK);
    let detail: StudyDetail = serde_json::from_slice(&body).unwrap();
    assert!(detail.report["iid_study"]["det_mcp"]["aurc"].is_some());
}

#[tokio::test]
async fn errors_are_json_and_the_spa_falls_back_to_index() {
    let (_d, state) = state_with_fixture();
    for uri in ["/api/studies/999", "/api/studies/abc", "/api/nope"] {
        let (status, body) = get(&state, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        let e: ApiError = serde_json::from_slice(&body).unwrap();
        assert!(!e.error.is_empty());
    }
    let (status, body) = get(&state, "/some/client/route").await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("<title>failscope</title>"));
    let (status, _) = get(&state, "/../../etc/passwd").await;
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn import_is_listed_by_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    let dir = fixture("fdshifts/head_logits_f16_ties");
    assert_eq!(
        failscope(&[
            "study".as_ref(),
            "import".as_ref(),
            dir.as_os_str(),
            "--db".as_ref(),
            db.as_os_str()
        ])
        .code,
        0
    );
    let r = failscope(&["study".as_ref(), "list".as_ref(), "--db".as_ref(), db.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("head_logits_f16_ties") && r.stdout.contains("fd-shifts"),
        "{}",
        r.stdout
    );
}
