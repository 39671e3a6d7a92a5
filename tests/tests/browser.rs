//! A real browser: headless Chromium through chromedriver (fantoccini) against the real server and the
//! real WASM frontend. `cargo xtask test` builds `dist/` and runs this with `--include-ignored`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use failscope::http::{app, AppState};
use failscope::store::Store;
use failscope_e2e::import_demo_study;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_chromedriver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver on PATH (`cargo xtask setup` installs Debian's chromium-driver)");
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (driver, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn start_server(dir: &std::path::Path) -> SocketAddr {
    let dist = std::env::var_os("FAILSCOPE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist"));
    assert!(
        dist.join("index.html").is_file(),
        "{} has no index.html: run `cargo xtask web` first",
        dist.display()
    );
    let db = dir.join("s.db");
    import_demo_study(&db, "derm-demo");
    let state = AppState {
        store: Arc::new(Mutex::new(Store::open(&db).unwrap())),
        dist,
        jobs: failscope::latent::jobs::Jobs::new(db.clone()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs dist/ (the wasm build) and chromedriver: run through `cargo xtask test`"]
async fn page_lists_studies_and_shows_a_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_server(dir.path()).await;
    let (_driver, port) = start_chromedriver().await;
    let profile = dir.path().join("chrome-profile");
    let mut caps = serde_json::Map::new();
    let mut opts = serde_json::json!({ "args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,800", format!("--user-data-dir={}", profile.display()),
    ]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        opts["binary"] = "/usr/bin/chromium".into();
    }
    caps.insert("goog:chromeOptions".into(), opts);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromedriver session");
    // Assertions run in their own task so the browser session is closed even when one fails.
    let c = client.clone();
    let outcome = tokio::spawn(async move {
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
    client.close().await.expect("close the browser session");
    outcome.expect("browser task panicked").expect("browser command failed");
}
