//! Headless Chromium for the browser tests and benchmarks: chromedriver and sessions.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// A running chromedriver, killed on drop.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on localhost.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free port; returns it with the port once it listens.
pub async fn start_chromedriver() -> (Driver, u16) {
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

/// A fresh headless Chromium session (its own profile folder).
pub async fn session(port: u16, profile: &std::path::Path) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    let mut opts = serde_json::json!({ "args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1400,1000", format!("--user-data-dir={}", profile.display()),
    ]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        opts["binary"] = "/usr/bin/chromium".into();
    }
    caps.insert("goog:chromeOptions".into(), opts);
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromedriver session")
}

/// Runs `body` with `N` fresh Chromium sessions, each with a new profile folder under `dir`, in a
/// task of its own; then closes every session — also when `body` failed — and fails the test
/// with `body`'s panic or error.
pub async fn in_browsers<const N: usize, F, Fut>(dir: &std::path::Path, body: F)
where
    F: FnOnce([fantoccini::Client; N]) -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>> + Send + 'static,
{
    let (_driver, port) = start_chromedriver().await;
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        let profile = tempfile::Builder::new()
            .prefix("profile-")
            .tempdir_in(dir)
            .expect("a browser profile folder")
            .keep();
        clients.push(session(port, &profile).await);
    }
    let clients: [fantoccini::Client; N] = clients.try_into().unwrap_or_else(|_| unreachable!("N sessions"));
    let outcome = tokio::spawn(body(clients.clone())).await;
    for c in clients {
        c.close().await.expect("close the browser session");
    }
    outcome.expect("browser task panicked").expect("browser command failed");
}

/// [`in_browsers`] with one session.
pub async fn in_browser<F, Fut>(dir: &std::path::Path, body: F)
where
    F: FnOnce(fantoccini::Client) -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>> + Send + 'static,
{
    in_browsers(dir, |[c]: [fantoccini::Client; 1]| body(c)).await
}

/// Serves the store `db` and the built frontend (`FAILSCOPE_DIST`, default `dist/`) on a free port.
pub async fn serve(db: std::path::PathBuf) -> std::net::SocketAddr {
    serve_with(db, failscope::http::access::Access::default()).await
}

/// [`serve`], admitting requests as `access` says (tokens on or off, the rate limit).
pub async fn serve_with(db: std::path::PathBuf, access: failscope::http::access::Access) -> std::net::SocketAddr {
    let dist = std::env::var_os("FAILSCOPE_DIST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist"));
    assert!(
        dist.join("index.html").is_file(),
        "{} has no index.html: run `cargo xtask web` first",
        dist.display()
    );
    let state = failscope::http::AppState::new(failscope::store::Store::open(&db).unwrap(), db.clone(), dist)
        .unwrap()
        .with_access(access);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, failscope::http::app(state)).await.unwrap() });
    addr
}

/// Where the browser tests' screenshots go (`artifacts/screenshots/`).
pub fn screenshots() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    out
}

/// Waits until the scatter has drawn its points; returns how many.
pub async fn drawn(c: &fantoccini::Client) -> Result<usize, fantoccini::error::CmdError> {
    c.wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#scatter"))
        .await?;
    for _ in 0..600 {
        // The canvas is found afresh each time: the view may have been rendered again.
        let (n, live) = with_element(c, "#scatter", |e| async move {
            Ok((e.attr("data-drawn").await?, e.attr("data-live").await?))
        })
        .await?;
        let n: usize = n.and_then(|v| v.parse().ok()).unwrap_or(0);
        // An intermediate layout of a running job is not the view yet.
        if n > 0 && live.as_deref() != Some("true") {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scatter drew nothing settled in 60 s");
}

/// Runs `f` on the element `css` (waiting up to 30 s for it), again when the page re-rendered it.
pub async fn with_element<T, Fut>(
    c: &fantoccini::Client,
    css: &str,
    mut f: impl FnMut(fantoccini::elements::Element) -> Fut,
) -> Result<T, fantoccini::error::CmdError>
where
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    let mut stale = 0;
    loop {
        let el = c
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await?;
        match f(el).await {
            Err(e) if e.is_stale_element_reference() && stale < 100 => {
                stale += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done => return done,
        }
    }
}

/// The text of the element `css`.
pub async fn text(c: &fantoccini::Client, css: &str) -> Result<String, fantoccini::error::CmdError> {
    with_element(c, css, |e| async move { e.text().await }).await
}

/// The text of the element `css` once `ready` holds for it (the page may still be loading or
/// re-rendering after an action), or as it is after `within`, for the caller's assertion to show.
/// Read every 100 ms.
pub async fn text_when(
    c: &fantoccini::Client,
    css: &str,
    within: Duration,
    ready: impl Fn(&str) -> bool,
) -> Result<String, fantoccini::error::CmdError> {
    let mut last = String::new();
    for _ in 0..within.as_millis().div_ceil(100) {
        // The element may be gone between finding and reading it while a new page loads.
        last = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ready(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(last)
}

/// Clicks the element `css`.
pub async fn click(c: &fantoccini::Client, css: &str) -> Result<(), fantoccini::error::CmdError> {
    with_element(c, css, |e| async move { e.click().await }).await
}

/// Types `keys` into the element `css`.
pub async fn type_into(c: &fantoccini::Client, css: &str, keys: &str) -> Result<(), fantoccini::error::CmdError> {
    with_element(c, css, |e| async move { e.send_keys(keys).await }).await
}

/// Saves a screenshot as `artifacts/screenshots/<name>`.
pub async fn shot(c: &fantoccini::Client, name: &str) -> Result<(), fantoccini::error::CmdError> {
    let png = c.screenshot().await?;
    std::fs::write(screenshots().join(name), &png).unwrap();
    Ok(())
}
