//! The load test (`cargo xtask load`): 200 concurrent clients browse a 100,000-point study for 60 s
//! on loopback, with access tokens on, while a 2-D t-SNE job runs on another study. The clients are
//! wrk's (Debian's `wrk`, which `cargo xtask load` installs): each request is one of the calls the
//! web app makes while browsing — layout, column buffers, the embedding's coordinates, a random
//! sample's details, image and neighbours, a failures page, a risk–coverage figure. wrk reports the
//! latency distribution and the errors (non-2xx answers, socket errors); this prints them and
//! writes them to `artifacts/load.json`.
//!
//! Settings: `FAILSCOPE_LOAD_CLIENTS` (200), `FAILSCOPE_LOAD_SECONDS` (60).

use std::process::Command;
use std::time::Duration;

use failscope::http::access::Access;
use failscope::store::Store;
use failscope_e2e::browser::serve_with;
use failscope_e2e::synthetic::{synthetic_study, synthetic_study_with_images};
use failscope_shared::api::Role;

const POINTS: usize = 100_000;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One request through a raw HTTP/1.1 connection (setup only; the load is wrk's).
fn http(addr: std::net::SocketAddr, method: &str, path: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

fn job_of(resp: &str) -> u64 {
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["job"].as_u64().unwrap_or_else(|| panic!("no job in {resp}"))
}

/// A latency as wrk prints it (`850.00us`, `12.34ms`, `1.02s`) in milliseconds.
fn millis(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => f64::NAN,
    }
}

#[tokio::main]
async fn main() {
    let clients = setting("FAILSCOPE_LOAD_CLIENTS", 200);
    let seconds = setting("FAILSCOPE_LOAD_SECONDS", 60);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("load.db");
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    eprintln!("load: building a {POINTS}-point study with images and a 20,000-point one for the t-SNE job");
    synthetic_study_with_images(&db, POINTS, Some(&images));
    synthetic_study(&db, 20_000);
    let token = Store::open(&db)
        .unwrap()
        .create_token("load", Role::Analyst, None)
        .unwrap();
    // Tokens on; the rate limit off, since all clients share one token here.
    let addr = serve_with(db, Access::new(true, None)).await;

    // The browsing study's embedding (cached: the job finishes at once), then the background job.
    let resp = http(addr, "POST", "/api/studies/1/embeddings", &token, "{}");
    let layout_job = job_of(&resp);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let background = job_of(&http(
        addr,
        "POST",
        "/api/studies/2/embeddings",
        &token,
        r#"{"perplexity": 30, "iterations": 100000}"#,
    ));

    let paths = [
        "/api/studies/1/layout".to_string(),
        "/api/studies/1/columns/label".into(),
        "/api/studies/1/columns/predicted".into(),
        "/api/studies/1/columns/dataset_idx".into(),
        "/api/studies/1/columns/score:det_mcp".into(),
        format!("/api/jobs/{layout_job}/result"),
        "/api/studies/1/samples/{row}".into(),
        "/api/studies/1/samples/{row}".into(),
        "/api/studies/1/samples/{row}/image".into(),
        "/api/studies/1/samples/{row}/image".into(),
        "/api/studies/1/samples/{row}/neighbours?k=10".into(),
        "/api/studies/1/failures?csf=det_mcp&page=0&per_page=50".into(),
        "/api/studies/1/figures/risk-coverage.svg?csf=det_mcp".into(),
    ];
    // Each call alone first (the t-SNE job already running): where a request's time goes.
    let mut alone = serde_json::Map::new();
    for p in paths.iter().collect::<std::collections::BTreeSet<_>>() {
        let mut times: Vec<f64> = (0..5u64)
            .map(|k| {
                let path = p.replace("{row}", &((k * 7919 + 13) % POINTS as u64).to_string());
                let t = std::time::Instant::now();
                let resp = http(addr, "GET", &path, &token, "");
                assert!(
                    resp.starts_with("HTTP/1.1 200"),
                    "{path}: {}",
                    &resp[..resp.len().min(200)]
                );
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        eprintln!("load: alone {:>8.1} ms  {p}", times[2]);
        alone.insert(p.clone(), times[2].into());
    }
    let lua = format!(
        "math.randomseed(7)\nlocal paths = {{{}}}\nrequest = function()\n  local p = paths[math.random(#paths)]\n  p = p:gsub(\"{{row}}\", tostring(math.random(0, {})))\n  return wrk.format(\"GET\", p, {{[\"Authorization\"] = \"Bearer {token}\"}})\nend\n",
        paths.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", "),
        POINTS - 1
    );
    let script = dir.path().join("browse.lua");
    std::fs::write(&script, lua).unwrap();
    eprintln!("load: {clients} clients for {seconds} s against http://{addr}, a t-SNE job running on study 2");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args([
                "-t2",
                &format!("-c{clients}"),
                &format!("-d{seconds}s"),
                "--timeout",
                "10s",
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(format!("http://{addr}"))
            .output()
            .expect("wrk on PATH (`cargo xtask load` installs Debian's wrk)")
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{report}");
    assert!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The background job ran throughout: still running, then cancelled.
    let status = http(addr, "GET", &format!("/api/jobs/{background}"), &token, "");
    let job_ran = status.contains("\"finished\":false");
    // How far it got: jobs compute at a lower priority than requests, so under load they advance
    // on what the requests leave.
    let job: serde_json::Value = status
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or_default();
    let job_progress = serde_json::json!({"stage": job["stage"], "fraction": job["fraction"]});
    http(addr, "DELETE", &format!("/api/jobs/{background}"), &token, "");

    let line = |label: &str| {
        report
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(label))
            .map(|l| l[label.len()..].trim().to_string())
    };
    let p50 = millis(&line("50%").unwrap_or_default());
    let p99 = millis(&line("99%").unwrap_or_default());
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non_2xx: u64 = line("Non-2xx or 3xx responses:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let socket: u64 = line("Socket errors:")
        .map(|l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let summary = serde_json::json!({
        "clients": clients,
        "seconds": seconds,
        "points": POINTS,
        "requests": requests,
        "requests_per_second": requests as f64 / seconds as f64,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": non_2xx + socket,
        "non_2xx": non_2xx,
        "socket_errors": socket,
        "background_tsne_running": job_ran,
        "background_tsne_progress": job_progress,
        "median_ms_alone": alone,
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
    });
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(
        artifacts.join("load.json"),
        serde_json::to_string_pretty(&summary).unwrap(),
    )
    .unwrap();
    println!(
        "load: {requests} requests from {clients} clients in {seconds} s ({:.0}/s): p50 {p50:.1} ms, p99 {p99:.1} ms, {} errors; t-SNE running meanwhile: {job_ran}",
        requests as f64 / seconds as f64,
        non_2xx + socket
    );
}
