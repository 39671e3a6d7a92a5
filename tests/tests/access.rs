//! Access control through `app(state)` with `oneshot`: tokens, the sign-in page and cookie, roles,
//! study scopes, share links, the rate limit, jobs across a restart, and the CLI's refusals.

use std::num::NonZeroU32;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use failscope::http::access::Access;
use failscope::http::{app, AppState};
use failscope::store::Store;
use failscope_e2e::{failscope, fixture, import};
use failscope_shared::api::{EmbedParams, JobStatus, Role, StudySummary};
use tower::ServiceExt;

/// A store with study 1 (`derm-a`, with features) and study 2 (`chest-b`), served with tokens on;
/// answers the tokens of an analyst, a viewer and a viewer of study 1 only.
struct Shared {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    state: AppState,
    analyst: String,
    viewer: String,
    scoped: String,
}

fn shared() -> Shared {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    import(&db, &fixture("fdshifts/features"), Some("derm-a"));
    import(&db, &fixture("fdshifts/features"), Some("chest-b"));
    let store = Store::open(&db).unwrap();
    let analyst = store.create_token("alice", Role::Analyst, None).unwrap();
    let viewer = store.create_token("bob", Role::Viewer, None).unwrap();
    let scoped = store.create_token("carol", Role::Viewer, Some(&[1])).unwrap();
    let dist = d.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>failscope</title>").unwrap();
    let state = AppState::new(store, db.clone(), dist)
        .unwrap()
        .with_access(Access::new(true, None));
    Shared {
        _dir: d,
        db,
        state,
        analyst,
        viewer,
        scoped,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(state: &AppState, req: Request<Body>) -> Answer {
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `method uri` with `token` as a bearer token (none when empty) and a JSON body.
async fn call(state: &AppState, method: &str, uri: &str, token: &str, body: &str) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if !token.is_empty() {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(state, req).await
}

async fn get(state: &AppState, uri: &str, token: &str) -> Answer {
    call(state, "GET", uri, token, "").await
}

#[tokio::test]
async fn without_a_token_the_api_answers_401_and_a_page_answers_with_the_sign_in_form() {
    let s = shared();
    for uri in ["/api/studies", "/api/studies/1", "/api/jobs/1", "/api/me"] {
        let a = get(&s.state, uri, "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(a.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert!(a.body.contains("sign in"), "{}", a.body);
        assert!(!a.body.contains("derm-a"));
    }
    assert_eq!(
        get(&s.state, "/api/studies", "fst_0000").await.status,
        StatusCode::UNAUTHORIZED
    );
    for (uri, next) in [
        ("/", "/"),
        ("/?study=1&color=testset", "/?study=1&amp;color=testset"),
        ("/s/abc", "/s/abc"),
    ] {
        let a = get(&s.state, uri, "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(a.body.contains(r#"action="/signin""#), "{}", a.body);
        assert!(a.body.contains(&format!(r#"name="next" value="{next}""#)), "{}", a.body);
        assert!(a.headers.contains_key(header::CONTENT_SECURITY_POLICY));
    }
    // A POST without a token changes nothing.
    assert_eq!(
        call(&s.state, "POST", "/api/links", "", r#"{"state": "study=1"}"#)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(&s.state, "/api/health", "").await.status, StatusCode::OK);
    assert_eq!(get(&s.state, "/signin?next=/s/abc", "").await.status, StatusCode::OK);
}

async fn sign_in(state: &AppState, token: &str, next: &str) -> Answer {
    let form = format!(
        "token={}&next={}",
        token,
        failscope_shared::wire::percent_encode(next, b"-_.")
    );
    let req = Request::post("/signin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    send(state, req).await
}

#[tokio::test]
async fn signing_in_sets_a_cookie_that_signs_in_the_pages_requests_until_the_token_is_revoked() {
    let s = shared();
    let a = sign_in(&s.state, &s.viewer, "/s/abc").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/s/abc");
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let with_cookie = |uri: &str| {
        Request::get(uri)
            .header(header::COOKIE, format!("theme=dark; {pair}"))
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&s.state, with_cookie("/api/me")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let me: failscope_shared::api::Identity = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        (me.name.as_str(), me.role, me.access_control),
        ("bob", Role::Viewer, true)
    );
    assert_eq!(send(&s.state, with_cookie("/")).await.status, StatusCode::OK);
    // Signing in never sends the browser to another site.
    for evil in ["//evil.example/x", "https://evil.example"] {
        assert_eq!(sign_in(&s.state, &s.viewer, evil).await.headers[header::LOCATION], "/");
    }
    // A wrong token shows the form again, saying so.
    let a = sign_in(&s.state, "fst_nope", "/").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("not valid") && !a.headers.contains_key(header::SET_COOKIE));
    // Revoked by the CLI, the same cookie signs in no more.
    let r = failscope(&["token", "revoke", "bob", "--db", s.db.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        send(&s.state, with_cookie("/api/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let out = send(&s.state, Request::post("/signout").body(Body::empty()).unwrap()).await;
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_reads_stored_results_but_cannot_start_work_cancel_jobs_or_create_links() {
    let s = shared();
    let a = get(&s.state, "/api/studies", &s.viewer).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(serde_json::from_str::<Vec<StudySummary>>(&a.body).unwrap().len(), 2);
    for uri in [
        "/api/studies/1/layout",
        "/api/studies/1/failures",
        "/api/studies/1/columns/label",
    ] {
        assert_eq!(get(&s.state, uri, &s.viewer).await.status, StatusCode::OK, "{uri}");
    }
    // A layout nobody computed yet: the viewer may not start it.
    let params = r#"{"perplexity": 5, "iterations": 250}"#;
    let a = call(&s.state, "POST", "/api/studies/1/embeddings", &s.viewer, params).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("analyst"), "{}", a.body);
    let a = call(&s.state, "POST", "/api/links", &s.viewer, r#"{"state": "study=1"}"#).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // The analyst computes it; then the viewer reads it through the same request.
    let a = call(&s.state, "POST", "/api/studies/1/embeddings", &s.analyst, params).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let job = serde_json::from_str::<failscope_shared::api::Started>(&a.body)
        .unwrap()
        .job;
    wait(&s.state, job, &s.analyst).await;
    assert_eq!(
        call(&s.state, "DELETE", &format!("/api/jobs/{job}"), &s.viewer, "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let a = call(&s.state, "POST", "/api/studies/1/embeddings", &s.viewer, params).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let job = serde_json::from_str::<failscope_shared::api::Started>(&a.body)
        .unwrap()
        .job;
    assert!(wait(&s.state, job, &s.viewer).await.error.is_none());
    let a = get(&s.state, &format!("/api/jobs/{job}/result"), &s.viewer).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(&s.state, "POST", "/api/links", &s.analyst, r#"{"state": "study=1"}"#).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

async fn wait(state: &AppState, job: u64, token: &str) -> JobStatus {
    for _ in 0..600 {
        let a = get(state, &format!("/api/jobs/{job}"), token).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let st: JobStatus = serde_json::from_str(&a.body).unwrap();
        if st.finished {
            return st;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {job} did not finish in 60 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_link_to_study_a_reveals_nothing_about_study_b() {
    let s = shared();
    let link = |state: &'static str| {
        let st = s.state.clone();
        let t = s.analyst.clone();
        async move {
            let a = call(&st, "POST", "/api/links", &t, &format!(r#"{{"state": "{state}"}}"#)).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            serde_json::from_str::<failscope_shared::api::Link>(&a.body).unwrap().id
        }
    };
    let to_a = link("study=1&color=testset").await;
    let to_b = link("study=2&color=confusion").await;
    // The viewer of study 1 follows the link to it.
    let a = get(&s.state, &format!("/s/{to_a}"), &s.scoped).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/?study=1&color=testset");
    // Study 2 does not exist for it: every answer is the one for a study or link that is not there.
    let unknown_link = get(&s.state, "/s/AAAAAAAAAAAAAAAA", &s.scoped).await;
    let a = get(&s.state, &format!("/s/{to_b}"), &s.scoped).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body.replace(&to_b, "AAAAAAAAAAAAAAAA"), unknown_link.body);
    let list: Vec<StudySummary> = serde_json::from_str(&get(&s.state, "/api/studies", &s.scoped).await.body).unwrap();
    assert_eq!(list.iter().map(|l| l.id).collect::<Vec<_>>(), [1]);
    let missing = get(&s.state, "/api/studies/99", &s.scoped).await;
    // An analyst's answer is cached; the scoped viewer still gets none of it.
    let a = get(&s.state, "/api/studies/1/matches/2", &s.analyst).await;
    assert_eq!(a.status, StatusCode::OK);
    for uri in [
        "/api/studies/1/matches/2",
        "/api/studies/2",
        "/api/studies/2/layout",
        "/api/studies/2/samples/0",
        "/api/studies/2/figures/rc.svg",
        "/api/studies/2/hotspots",
        "/api/studies/2/features/warm",
    ] {
        let a = get(&s.state, uri, &s.scoped).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(a.body.replace("id 2", "id 99"), missing.body, "{uri}");
        assert!(!a.body.contains("chest-b"));
    }
    // Nor can it be reached through a job or a new link.
    let a = call(&s.state, "POST", "/api/studies/2/clusterings", &s.analyst, "{}").await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let job = serde_json::from_str::<failscope_shared::api::Started>(&a.body)
        .unwrap()
        .job;
    assert_eq!(
        get(&s.state, &format!("/api/jobs/{job}"), &s.scoped).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s.state, &format!("/api/jobs/{job}"), &s.viewer).await.status,
        StatusCode::OK
    );
    let scoped_analyst = Store::open(&s.db)
        .unwrap()
        .create_token("dave", Role::Analyst, Some(&[1]))
        .unwrap();
    let a = call(
        &s.state,
        "POST",
        "/api/links",
        &scoped_analyst,
        r#"{"state": "study=2"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    let a = call(&s.state, "DELETE", &format!("/api/jobs/{job}"), &scoped_analyst, "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
}

#[tokio::test]
async fn each_client_is_held_to_its_rate() {
    let s = shared();
    let state = s.state.clone().with_access(Access::new(true, NonZeroU32::new(2)));
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(get(&state, "/api/studies", &s.viewer).await.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let a = get(&state, "/api/studies", &s.viewer).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "1");
    assert_eq!(get(&state, "/api/studies", &s.analyst).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_the_last_server_left_running_is_failed_after_a_restart_and_can_be_run_again() {
    let s = shared();
    // A job that finished, and one that was running when the server was killed.
    let params = EmbedParams {
        perplexity: 5.0,
        iterations: 250,
        ..EmbedParams::default()
    };
    let body = serde_json::to_string(&params).unwrap();
    let a = call(&s.state, "POST", "/api/studies/1/embeddings", &s.analyst, &body).await;
    let done = serde_json::from_str::<failscope_shared::api::Started>(&a.body)
        .unwrap()
        .job;
    wait(&s.state, done, &s.analyst).await;
    let running = Store::open(&s.db)
        .unwrap()
        .begin_job(1, "embedding", &EmbedParams::default().key())
        .unwrap() as u64;
    drop(s.state);
    let state = AppState::new(Store::open(&s.db).unwrap(), s.db.clone(), std::env::temp_dir())
        .unwrap()
        .with_access(Access::new(true, None));
    let st = wait(&state, running, &s.analyst).await;
    let e = st.error.expect("failed");
    assert_eq!(
        (st.stage.as_str(), e.kind),
        ("failed", failscope_shared::api::FailureKind::Interrupted)
    );
    let a = get(&state, &format!("/api/jobs/{running}/result"), &s.analyst).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.body.contains("start it again"), "{}", a.body);
    // The finished one is still done, its result still served, and new ids never repeat old ones.
    assert!(wait(&state, done, &s.analyst).await.error.is_none());
    assert_eq!(
        get(&state, &format!("/api/jobs/{done}/result"), &s.analyst)
            .await
            .status,
        StatusCode::OK
    );
    let a = call(&state, "POST", "/api/studies/1/embeddings", &s.analyst, &body).await;
    let again = serde_json::from_str::<failscope_shared::api::Started>(&a.body)
        .unwrap()
        .job;
    assert!(again > running);
    assert!(wait(&state, again, &s.analyst).await.error.is_none());
}

#[test]
fn tokens_are_made_listed_and_revoked_by_the_cli_and_a_shared_server_needs_one() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    let db = db.to_str().unwrap();
    std::fs::create_dir(d.path().join("dist")).unwrap();
    std::fs::write(d.path().join("dist/index.html"), "<!doctype html>").unwrap();
    let dist = d.path().join("dist");
    let dist = dist.to_str().unwrap();
    for bind in [
        vec!["--addr", "0.0.0.0:0"],
        vec!["--addr", "[::]:0"],
        vec!["--addr", "127.0.0.1:0", "--auth"],
    ] {
        let mut args = vec!["serve", "--db", db, "--dist", dist];
        args.extend(bind.iter().copied());
        let r = failscope(&args);
        assert_eq!(r.code, 2, "{bind:?}: {}", r.stdout);
        assert!(
            r.stderr.contains("needs access tokens") && r.stderr.contains("failscope token create"),
            "{}",
            r.stderr
        );
    }
    let r = failscope(&["token", "create", "--name", "alice", "--role", "analyst", "--db", db]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = r.stdout.trim().to_string();
    assert!(token.starts_with("fst_"), "{token}");
    let r = failscope(&["token", "create", "--name", "alice", "--role", "viewer", "--db", db]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("exists"), "{}", r.stderr);
    let r = failscope(&["token", "create", "--name", "x", "--role", "admin", "--db", db]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("viewer or analyst"), "{}", r.stderr);
    let r = failscope(&[
        "token", "create", "--name", "y", "--role", "viewer", "--study", "4", "--db", db,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no study with id 4"), "{}", r.stderr);
    let r = failscope(&["token", "list", "--db", db]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("alice\tanalyst\tall studies\t"), "{}", r.stdout);
    assert!(!r.stdout.contains(&token[4..]));
    let r = failscope(&["token", "revoke", "nobody", "--db", db]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no token named"), "{}", r.stderr);
}

#[tokio::test]
async fn a_benchmark_report_is_served_to_those_who_see_all_its_studies() {
    let s = shared();
    let store = Store::open(&s.db).unwrap();
    let files = |tag: &str| failscope::store::reports::ReportFiles {
        markdown: format!("# {tag}\n"),
        html: format!("<!doctype html><h1>{tag}</h1>"),
        json: "{}\n".into(),
    };
    store.save_report("derm", &[0, 1], &[1], &files("derm")).unwrap();
    store.save_report("both", &[0], &[1, 2], &files("both")).unwrap();
    // Saved again: replaced, not doubled.
    store.save_report("derm", &[0, 1], &[1], &files("derm v2")).unwrap();
    let names = |a: &Answer| -> Vec<String> {
        serde_json::from_str::<Vec<failscope_shared::api::ReportSummary>>(&a.body)
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    assert_eq!(names(&get(&s.state, "/api/reports", &s.viewer).await), ["both", "derm"]);
    let page = get(&s.state, "/reports/derm", &s.viewer).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(page.body, "<!doctype html><h1>derm v2</h1>");
    let md = get(&s.state, "/reports/derm.md", &s.viewer).await;
    assert_eq!((md.status, md.body.as_str()), (StatusCode::OK, "# derm v2\n"));
    // A token scoped to study 1 sees the report of study 1 only; the other is missing, not forbidden.
    assert_eq!(names(&get(&s.state, "/api/reports", &s.scoped).await), ["derm"]);
    let hidden = get(&s.state, "/reports/both", &s.scoped).await;
    let missing = get(&s.state, "/reports/nothing", &s.scoped).await;
    assert_eq!(
        (hidden.status, missing.status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert!(!hidden.body.contains("both</h1>"));
    // Without a token: the sign-in page.
    assert_eq!(
        get(&s.state, "/reports/derm", "").await.status,
        StatusCode::UNAUTHORIZED
    );
}
