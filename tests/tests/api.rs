//! The HTTP API through `app(state)` with `oneshot`: no socket, real SQLite store, real import.

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
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), dist).unwrap();
    (d, state)
}

/// The router's whole response to `GET uri`.
async fn get_response(state: &AppState, uri: impl AsRef<str>) -> axum::response::Response {
    app(state.clone())
        .oneshot(Request::get(uri.as_ref()).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

/// Sends `req` to the router; answers the status and the body.
async fn send(state: &AppState, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, body.to_vec())
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Vec<u8>) {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
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
    // The store keeps where the study came from; clients see its name only, never a server path.
    let stored = state.store.get().unwrap().list().unwrap()[0].source.clone();
    assert!(std::path::Path::new(&stored).is_absolute(), "{stored}");
    for source in [&list[0].source, &detail.summary.source] {
        assert!(!source.contains('/') && stored.ends_with(source.as_str()), "{source}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (_d, state) = state_with_fixture();
    for uri in ["/api/studies", "/api/nope", "/", "/style.css"] {
        let resp = get_response(&state, uri).await;
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{uri}: {csp}"
        );
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(h["x-frame-options"], "DENY", "{uri}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{uri}");
    }
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
    failscope_e2e::import(&db, &dir, None);
    let r = failscope(&["study".as_ref(), "list".as_ref(), "--db".as_ref(), db.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("head_logits_f16_ties") && r.stdout.contains("fd-shifts"),
        "{}",
        r.stdout
    );
}

async fn post(state: &AppState, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(state, req).await
}

/// Polls a job until it finishes; returns its last status.
async fn wait(state: &AppState, job: u64) -> serde_json::Value {
    for _ in 0..600 {
        let (status, body) = get(state, &format!("/api/jobs/{job}")).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["finished"] == true {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {job} did not finish in 60 s");
}

async fn delete(state: &AppState, uri: &str) -> (StatusCode, Vec<u8>) {
    send(state, Request::delete(uri).body(Body::empty()).unwrap()).await
}

fn job_of(body: &[u8]) -> u64 {
    serde_json::from_slice::<failscope_shared::api::Started>(body)
        .unwrap()
        .job
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_job_stops_at_its_next_step_and_the_same_request_starts_afresh() {
    let d = tempfile::tempdir().unwrap();
    let (db, _) = failscope_e2e::inferred_study(d.path());
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    // 100,000 iterations: minutes of work unless the cancel stops it.
    let params = r#"{"perplexity": 5, "iterations": 100000}"#;
    let (status, body) = post(&state, "/api/studies/1/embeddings", params).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job = job_of(&body);
    // Wait until it is optimising, then cancel.
    for _ in 0..300 {
        let (_, body) = get(&state, &format!("/api/jobs/{job}")).await;
        let s: failscope_shared::api::JobStatus = serde_json::from_slice(&body).unwrap();
        if s.stage == "t-SNE" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let asked = std::time::Instant::now();
    let (status, _) = delete(&state, &format!("/api/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);
    let done = wait(&state, job).await;
    assert!(asked.elapsed().as_secs_f64() < 5.0, "took {:?}", asked.elapsed());
    assert_eq!(done["stage"], "cancelled", "{done}");
    assert_eq!(done["error"]["kind"], "cancelled", "{done}");
    let (status, body) = get(&state, &format!("/api/jobs/{job}/result")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&body));
    // Nothing was cached, and the same request now starts a new job rather than the cancelled one.
    let (_, body) = post(&state, "/api/studies/1/embeddings", params).await;
    let again = job_of(&body);
    assert_ne!(again, job);
    assert_eq!(delete(&state, &format!("/api/jobs/{again}")).await.0, StatusCode::OK);
    assert_eq!(wait(&state, again).await["stage"], "cancelled");
    assert_eq!(delete(&state, "/api/jobs/424242").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_embedding_streams_intermediate_layouts_that_move() {
    let d = tempfile::tempdir().unwrap();
    let (db, _) = failscope_e2e::inferred_study(d.path());
    let n = Store::open(&db).unwrap().samples(1).unwrap().len();
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    for params in [
        r#"{"perplexity": 5, "iterations": 8000}"#,
        r#"{"layout": "umap", "neighbours": 10, "epochs": 8000}"#,
    ] {
        let job = job_of(&post(&state, "/api/studies/1/embeddings", params).await.1);
        // The whole stream, to the job's end.
        let (status, events) = get(&state, &format!("/api/jobs/{job}/events")).await;
        assert_eq!(status, StatusCode::OK);
        let events = String::from_utf8(events).unwrap();
        let layouts: Vec<failscope_shared::api::LiveLayout> = events
            .split("\n\n")
            .filter(|e| e.starts_with("event: layout"))
            .map(|e| serde_json::from_str(e.split_once("data: ").unwrap().1).unwrap())
            .collect();
        assert!(
            layouts.len() >= 2,
            "{params}: {} layouts in {events:.400}",
            layouts.len()
        );
        let coords: Vec<Vec<f32>> = layouts.iter().map(|l| l.decode().unwrap()).collect();
        for (l, c) in layouts.iter().zip(&coords) {
            assert_eq!((l.rows, l.dims, c.len()), (n, 2, 2 * n), "{params}");
        }
        assert!(layouts.windows(2).all(|w| w[0].version < w[1].version), "{params}");
        assert_ne!(coords[0], coords[coords.len() - 1], "{params}: the points moved");
        // Layouts come before the end, and the stream ends with `done`.
        let last = events.trim_end().rsplit("\n\n").next().unwrap();
        assert!(last.starts_with("event: done"), "{params}: {last}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn latent_jobs_run_in_the_background_and_serve_binary_coordinates() {
    let d = tempfile::tempdir().unwrap();
    let (db, _) = failscope_e2e::inferred_study(d.path());
    let n = Store::open(&db).unwrap().samples(1).unwrap().len();
    failscope_e2e::import_demo_study(&db, "no features");
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    let (status, body) = post(&state, "/api/studies/1/embeddings", r#"{"perplexity": 10}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let job = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["job"]
        .as_u64()
        .unwrap();
    let done = wait(&state, job).await;
    assert_eq!(done["stage"], "done", "{done}");
    // Server-Sent Events of a finished job: one `done` event.
    let (status, events) = get(&state, &format!("/api/jobs/{job}/events")).await;
    assert_eq!(status, StatusCode::OK);
    let events = String::from_utf8(events).unwrap();
    assert!(
        events.contains("event: done") && events.contains("\"finished\":true"),
        "{events}"
    );
    // Coordinates as little-endian f32, n × 2.
    let resp = get_response(&state, format!("/api/jobs/{job}/result")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-failscope-shape"], format!("{n},2").as_str());
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    assert_eq!(bytes.len(), n * 2 * 4);
    let first = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    assert!(first.is_finite());

    // UMAP: the same job API, its own stage name (cancelled there), n × 2 coordinates.
    let long = r#"{"layout": "umap", "neighbours": 10, "epochs": 100000}"#;
    let job = job_of(&post(&state, "/api/studies/1/embeddings", long).await.1);
    let mut stages = Vec::new();
    for _ in 0..500 {
        let (_, body) = get(&state, &format!("/api/jobs/{job}")).await;
        let s: failscope_shared::api::JobStatus = serde_json::from_slice(&body).unwrap();
        if stages.last() != Some(&s.stage) {
            stages.push(s.stage.clone());
        }
        if s.stage == "UMAP" || s.finished {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stages.last().map(String::as_str), Some("UMAP"), "{stages:?}");
    assert_eq!(delete(&state, &format!("/api/jobs/{job}")).await.0, StatusCode::OK);
    assert_eq!(wait(&state, job).await["stage"], "cancelled");
    let (status, body) = post(
        &state,
        "/api/studies/1/embeddings",
        r#"{"layout": "umap", "neighbours": 10}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    let job = job_of(&body);
    assert_eq!(wait(&state, job).await["stage"], "done");
    let resp = get_response(&state, format!("/api/jobs/{job}/result")).await;
    assert_eq!(resp.headers()["x-failscope-shape"], format!("{n},2").as_str());

    // Clustering: JSON with every sample assigned.
    let params =
        r#"{"method": {"method": "k-means", "k": 3, "per_class": false}, "space": {"space": "pca", "dims": 5}}"#;
    let (status, body) = post(&state, "/api/studies/1/clusterings", params).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    let job = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["job"]
        .as_u64()
        .unwrap();
    assert_eq!(wait(&state, job).await["stage"], "done");
    let (status, body) = get(&state, &format!("/api/jobs/{job}/result")).await;
    assert_eq!(status, StatusCode::OK);
    let c: failscope_shared::api::Clustering = serde_json::from_slice(&body).unwrap();
    assert_eq!(c.assignment.len(), n);
    assert_eq!(c.clusters.len(), 3);

    // A study without features: refused before a job starts, with a 422 naming why.
    let (status, body) = post(&state, "/api/studies/2/embeddings", "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let e: ApiError = serde_json::from_slice(&body).unwrap();
    assert!(e.error.contains("has no features"), "{}", e.error);
    // Nor has it similar cases; asking for them leaves study 1's features in the cache.
    assert_eq!(
        get(&state, "/api/studies/1/samples/0/neighbours").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&state, "/api/studies/2/samples/0/neighbours").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, warmth) = get(&state, "/api/studies/1/features/warm").await;
    let warmth: failscope_shared::api::FeaturesWarmth = serde_json::from_slice(&warmth).unwrap();
    assert!(warmth.loaded, "study 1's features were dropped for a study without any");
    // Malformed parameters, unknown study, unknown job.
    let (status, body) = post(&state, "/api/studies/1/embeddings", r#"{"perplexity": "high"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(serde_json::from_slice::<ApiError>(&body)
        .unwrap()
        .error
        .contains("invalid parameters"));
    assert_eq!(
        post(&state, "/api/studies/99/embeddings", "{}").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&state, "/api/jobs/12345").await.0, StatusCode::NOT_FOUND);

    // Parameters are checked before a job starts: a 400 naming the API field, no job.
    let too_many = format!("{{\"perplexity\": {}}}", n);
    for (path, body, field) in [
        ("embeddings", r#"{"dims": 4}"#, "dims:"),
        ("embeddings", r#"{"perplexity": -1}"#, "perplexity:"),
        ("embeddings", too_many.as_str(), "perplexity:"),
        ("embeddings", r#"{"iterations": 0}"#, "iterations:"),
        ("embeddings", r#"{"perplexty": 5}"#, "perplexty"),
        ("embeddings", r#"{"layout": "pca"}"#, "layout"),
        (
            "embeddings",
            r#"{"layout": "umap", "neighbours": 100000}"#,
            "neighbours:",
        ),
        ("embeddings", r#"{"layout": "umap", "min_dist": 1}"#, "min_dist:"),
        ("embeddings", r#"{"layout": "umap", "epochs": 0}"#, "epochs:"),
        ("clusterings", r#"{"method": {"method": "gmm", "k": 0}}"#, "method.k:"),
        (
            "clusterings",
            r#"{"method": {"method": "dbscan", "eps": 0, "min_points": 3}}"#,
            "method.eps:",
        ),
        (
            "clusterings",
            r#"{"space": {"space": "embedding", "perplexity": 0}}"#,
            "space.perplexity:",
        ),
        ("clusterings", r#"{"coverage": 2}"#, "coverage:"),
        ("clusterings", r#"{"csf": "nonsense"}"#, "csf:"),
    ] {
        let (status, resp) = post(&state, &format!("/api/studies/1/{path}"), body).await;
        let e: ApiError = serde_json::from_slice(&resp).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {}", e.error);
        assert!(e.error.contains(field), "{body}: {}", e.error);
    }
    let e = serde_json::from_slice::<ApiError>(
        &post(&state, "/api/studies/1/clusterings", r#"{"csf": "nonsense"}"#)
            .await
            .1,
    )
    .unwrap();
    assert!(e.error.contains("det_mcp"), "the study's CSFs are listed: {}", e.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_columns_images_failures_links_and_figures() {
    let d = tempfile::tempdir().unwrap();
    let (db, _) = failscope_e2e::inferred_study(d.path());
    let n = Store::open(&db).unwrap().samples(1).unwrap().len();
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    let (status, body) = get(&state, "/api/studies/1/layout").await;
    assert_eq!(status, StatusCode::OK);
    let layout: failscope_shared::api::StudyLayout = serde_json::from_slice(&body).unwrap();
    assert_eq!(layout.n as usize, n);
    assert_eq!(layout.classes, vec!["class0", "class1", "class2"]);
    assert_eq!(
        layout.test_sets[..2],
        ["val_tuning".to_string(), "iid_study".to_string()]
    );
    assert!(
        layout
            .test_sets
            .contains(&"in_class_study_acquisition_site2".to_string()),
        "{:?}",
        layout.test_sets
    );
    assert!(layout.has_features && layout.has_images && layout.meta.contains(&"domain".to_string()));

    // Columns: compact little-endian buffers.
    let (status, labels) = get(&state, "/api/studies/1/columns/label").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(labels.len(), 2 * n);
    let (_, scores) = get(&state, "/api/studies/1/columns/score:det_mcp").await;
    assert_eq!(scores.len(), 4 * n);
    let resp = get_response(&state, "/api/studies/1/columns/meta:domain").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["x-failscope-categories"]
        .to_str()
        .unwrap()
        .contains("site2"));
    // Asked again, a column comes from the server's response cache: the same bytes and headers.
    let again = get_response(&state, "/api/studies/1/columns/meta:domain").await;
    assert_eq!(again.headers(), resp.headers());
    let first = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let second = axum::body::to_bytes(again.into_body(), usize::MAX).await.unwrap();
    assert_eq!((first.len(), &first), (2 * n, &second));
    assert_eq!(get(&state, "/api/studies/1/columns/label").await.1, labels);
    assert_eq!(
        get(&state, "/api/studies/1/columns/nonsense").await.0,
        StatusCode::NOT_FOUND
    );

    // One sample: label names, softmax, every CSF with a percentile, and its image as PNG.
    let (status, body) = get(&state, "/api/studies/1/samples/3").await;
    assert_eq!(status, StatusCode::OK);
    let s: failscope_shared::api::SampleDetail = serde_json::from_slice(&body).unwrap();
    assert_eq!(s.probs.len(), 3);
    assert!((s.probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert!(s.label_name.starts_with("class") && s.has_image);
    assert!(s.scores.iter().any(|c| c.csf == "det_mcp" && c.percentile.is_some()));
    // HEAD's feature-based CSFs too (inference wrote the training features and the last layer).
    for csf in ["maha", "vim", "dknn", "react_det_mcp", "react_temp_mls"] {
        assert!(
            s.scores.iter().any(|c| c.csf == csf && c.percentile.is_some()),
            "{csf} in the inspector"
        );
        assert_eq!(
            get(&state, &format!("/api/studies/1/columns/score:{csf}"))
                .await
                .1
                .len(),
            4 * n
        );
    }
    let (_, body) = get(&state, "/api/studies/1").await;
    let detail: StudyDetail = serde_json::from_slice(&body).unwrap();
    assert!(
        detail.report["iid_study"]["vim"]["aurc"].is_some(),
        "vim in the benchmark"
    );
    let resp = get_response(&state, "/api/studies/1/samples/3/image").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let png = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(
        get(&state, &format!("/api/studies/1/samples/{n}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&state, "/api/studies/1/samples/-1").await.0,
        StatusCode::BAD_REQUEST
    );
    // Path traversal through the row is not a row; through the URL it never reaches a file.
    assert_eq!(
        get(&state, "/api/studies/1/samples/..%2F..%2Fetc%2Fpasswd/image")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    // Neighbours in feature space, failures most confident first (huge page sizes capped).
    let (_, body) = get(&state, "/api/studies/1/samples/3/neighbours?k=5").await;
    let nb: Vec<failscope_shared::api::RankedSample> = serde_json::from_slice(&body).unwrap();
    assert_eq!(nb.len(), 5);
    assert!(nb.windows(2).all(|w| w[0].value <= w[1].value) && nb.iter().all(|r| r.row != 3));
    // Exactly the nearest rows (brute force here), and the same again from the in-memory cache.
    let x = Store::open(&db).unwrap().features(1).unwrap().unwrap();
    let mut by_distance: Vec<(usize, f32)> = (0..x.nrows())
        .filter(|&j| j != 3)
        .map(|j| (j, x.row(j).iter().zip(x.row(3)).map(|(a, b)| (a - b) * (a - b)).sum()))
        .collect();
    by_distance.sort_by(|a, b| a.1.total_cmp(&b.1));
    let rows: Vec<usize> = nb.iter().map(|r| r.row as usize).collect();
    assert_eq!(rows, by_distance[..5].iter().map(|p| p.0).collect::<Vec<_>>());
    assert_eq!(get(&state, "/api/studies/1/samples/3/neighbours?k=5").await.1, body);
    let header = failscope::http::samples::SEARCH_HEADER;
    assert_eq!(
        get_response(&state, "/api/studies/1/samples/3/neighbours?k=5")
            .await
            .headers()[header],
        "exact",
        "a study below the threshold is searched exactly"
    );
    // From `approx_from` rows the answers come from a partition index built in the background (exact
    // scans answer meanwhile), as the header says; here it finds the same rows and distances.
    let approx = state.clone().with_approx_from(1);
    let mut how = String::new();
    // The index is built on idle-priority threads: while other tests compute, it waits.
    for _ in 0..1200 {
        let resp = get_response(&approx, "/api/studies/1/samples/3/neighbours?k=5").await;
        how = resp.headers()[header].to_str().unwrap().to_string();
        let answer = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
        assert_eq!(answer, body, "{how} search");
        if how == "approximate" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(how, "approximate", "the index was never used");
    // Warming a study of `approx_from` rows or more (the web app asks when it opens one) reads
    // its features and builds the index before anything is asked: after a pause, the very first
    // query is answered from the index.
    let warm = state.clone().with_approx_from(1);
    assert_eq!(
        get(&warm, "/api/studies/9/features/warm").await.0,
        StatusCode::NOT_FOUND
    );
    let mut warmth = failscope_shared::api::FeaturesWarmth {
        loaded: false,
        indexed: false,
    };
    // The index is built on idle-priority threads: while other tests compute, it waits.
    for _ in 0..1200 {
        let (status, answer) = get(&warm, "/api/studies/1/features/warm").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        warmth = serde_json::from_slice(&answer).unwrap();
        if warmth.indexed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(warmth.loaded && warmth.indexed, "{warmth:?}");
    let resp = get_response(&warm, "/api/studies/1/samples/3/neighbours?k=5").await;
    assert_eq!(
        resp.headers()[header],
        "approximate",
        "the first query after the study was opened"
    );
    assert_eq!(axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap(), body);
    assert_eq!(
        get(&state, "/api/studies/1/samples/100000/neighbours").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = get(&state, "/api/studies/1/failures?csf=det_mcp&per_page=100000000").await;
    assert_eq!(status, StatusCode::OK);
    let f: Vec<failscope_shared::api::RankedSample> = serde_json::from_slice(&body).unwrap();
    assert!(f.windows(2).all(|w| w[0].value >= w[1].value) && f.iter().all(|r| r.label != r.predicted));
    assert_eq!(
        get(&state, "/api/studies/1/failures?csf=nope").await.0,
        StatusCode::NOT_FOUND
    );

    // Short links: stored, resolved by a redirect to the view.
    let (status, body) = post(&state, "/api/links", r#"{"state": "study=1&color=confusion&sel=3"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let link: failscope_shared::api::Link = serde_json::from_slice(&body).unwrap();
    let resp = get_response(&state, format!("/s/{}", link.id)).await;
    assert!(resp.status().is_redirection());
    assert_eq!(resp.headers()["location"], "/?study=1&color=confusion&sel=3");
    assert_eq!(get(&state, "/s/doesnotexist").await.0, StatusCode::NOT_FOUND);
    assert_eq!(post(&state, "/api/links", "{").await.0, StatusCode::BAD_REQUEST);
    // A state that is not a view (or could not be a redirect header) is refused, not stored.
    for bad in [
        r#"{"state": "study=1\r\nSet-Cookie: x=1"}"#,
        r#"{"state": "color=rainbow"}"#,
    ] {
        let (status, body) = post(&state, "/api/links", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(serde_json::from_slice::<ApiError>(&body).is_ok());
    }
    // A link written into the store by anything else still cannot crash the redirect.
    let id = Store::open(&db).unwrap().create_link("study=1\nX").unwrap();
    assert_eq!(get(&state, &format!("/s/{id}")).await.0, StatusCode::NOT_FOUND);

    // A risk–coverage figure (SVG, plotters).
    let (status, svg) = get(
        &state,
        "/api/studies/1/figures/risk-coverage.svg?test_set=1&csf=det_mcp",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let svg = String::from_utf8(svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("selective risk") && svg.contains("<polyline"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    // Every test set's curve when no test set is named; the same figure as PNG; the reliability
    // diagram in both formats; an unknown figure or format is a 404 naming the choices.
    let (status, svg) = get(&state, "/api/studies/1/figures/risk-coverage.svg?csf=det_mcp").await;
    assert_eq!(status, StatusCode::OK);
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.matches("<polyline").count() >= 2 && svg.contains("AURC"), "{svg}");
    for (name, size) in [("risk-coverage.png", (640, 420)), ("reliability.png", (520, 480))] {
        let (status, png) = get(&state, &format!("/api/studies/1/figures/{name}?csf=det_mcp")).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), size);
        std::fs::create_dir_all(artifacts()).unwrap();
        std::fs::write(artifacts().join(name), &png).unwrap();
    }
    let (status, svg) = get(&state, "/api/studies/1/figures/reliability.svg").await;
    assert!(status == StatusCode::OK && String::from_utf8(svg).unwrap().contains("ECE"));
    for bad in [
        "risk-coverage.gif",
        "histogram.svg",
        "reliability.svg?test_set=99",
        "risk-coverage.svg?csf=nope",
    ] {
        let (status, body) = get(&state, &format!("/api/studies/1/figures/{bad}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert!(serde_json::from_slice::<ApiError>(&body).is_ok(), "{bad}");
    }
}

/// Where the tests leave figures for a person to look at.
fn artifacts() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts/figures")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_path_leaving_the_data_root_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (db, out) = failscope_e2e::inferred_study(d.path());
    // A tampered sample list pointing outside the data root, imported as study 2.
    let sidecar = out.join("failscope_samples.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    v["rows"][0]["image"] = serde_json::json!("../../../../../../etc/passwd");
    std::fs::write(&sidecar, v.to_string()).unwrap();
    failscope_e2e::import(&db, &out, None);
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    let (status, body) = get(&state, "/api/studies/2/samples/0/image").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let e: ApiError = serde_json::from_slice(&body).unwrap();
    assert!(e.error.contains("outside the study's data root"), "{}", e.error);
}
