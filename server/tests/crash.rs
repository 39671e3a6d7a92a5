//! Crash safety: `kill -9` during import, training, an embedding job and link creation. After each
//! kill the store passes `PRAGMA integrity_check`, every study in it is complete (all its samples,
//! test sets and scores) or absent, nothing half-written is left in an output folder, and a
//! restarted server reports the interrupted job as failed and runs it again on request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use failscope::store::Store;

fn failscope() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_failscope"));
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The store at `db` is sound: SQLite's own check passes, and every study is whole.
fn assert_sound(db: &Path) -> usize {
    let store = Store::open(db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let studies = store.list().unwrap();
    for s in &studies {
        let samples = store.samples(s.id).unwrap();
        assert_eq!(samples.len() as u64, s.n_samples, "study {} is missing samples", s.id);
        assert!(!store.scores(s.id).unwrap().is_empty(), "study {} has no scores", s.id);
        let sets = store.test_sets(s.id).unwrap();
        assert_eq!(
            sets.iter().map(|t| t.size).sum::<u64>(),
            s.n_samples,
            "study {}'s test sets",
            s.id
        );
    }
    studies.len()
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

/// The `fdshifts/features` experiment with its per-sample arrays repeated `times` times: an
/// experiment whose import writes tens of thousands of rows with features and MC passes.
fn big_experiment(dir: &Path, times: usize) -> PathBuf {
    use npyz::WriterBuilder;
    let src = fixture("fdshifts/features");
    let out = dir.join("experiment");
    std::fs::create_dir_all(out.join("hydra")).unwrap();
    std::fs::create_dir_all(out.join("test_results")).unwrap();
    std::fs::copy(src.join("hydra/config.yaml"), out.join("hydra/config.yaml")).unwrap();
    for name in ["train_features.npz", "last_layer.npz"] {
        std::fs::copy(src.join("test_results").join(name), out.join("test_results").join(name)).unwrap();
    }
    for name in ["raw_logits", "raw_logits_dist", "encoded_output", "external_confids"] {
        let file = format!("test_results/{name}.npz");
        let a = failscope::io::npz::read(&src.join(&file), "arr_0").unwrap();
        let mut shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
        shape[0] *= times as u64;
        let mut npz = npyz::npz::NpzWriter::create(out.join(&file)).unwrap();
        let mut w = npz
            .array::<f64>("arr_0", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&shape)
            .begin_nd()
            .unwrap();
        for _ in 0..times {
            w.extend(a.data.iter().copied()).unwrap();
        }
        w.finish().unwrap();
    }
    out
}

/// Kills `child` after `after`; `false` when it had already finished.
fn kill_after(child: &mut Child, after: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

#[test]
fn an_import_killed_at_any_moment_leaves_the_study_complete_or_absent() {
    let d = tempfile::tempdir().unwrap();
    let experiment = big_experiment(d.path(), 20);
    let db = d.path().join("s.db");
    let import = || {
        failscope()
            .args(["study", "import"])
            .arg(&experiment)
            .arg("--db")
            .arg(&db)
            .spawn()
            .unwrap()
    };
    // Time two imports (the first may pay for a cold disk cache; the faster one counts), then
    // kill others at points spread over that time.
    let mut full = Duration::MAX;
    for _ in 0..2 {
        let start = Instant::now();
        assert!(import().wait().unwrap().success());
        full = full.min(start.elapsed());
    }
    const BEFORE: usize = 2;
    assert_eq!(assert_sound(&db), BEFORE);
    let mut killed = 0;
    for k in 1..=6usize {
        let mut child = import();
        if kill_after(&mut child, full * k as u32 / 7) {
            killed += 1;
        }
        let n = assert_sound(&db);
        assert!(
            n == BEFORE + k || n == BEFORE + k - 1,
            "{n} studies after {} imports",
            BEFORE + k
        );
        if n == BEFORE + k - 1 {
            // The killed import left nothing: import it again so the counts stay simple.
            assert!(import().wait().unwrap().success());
        }
    }
    assert!(
        killed >= 4,
        "only {killed} of 6 imports were killed before they finished (one import takes {full:?})"
    );
    assert_eq!(assert_sound(&db), BEFORE + 6);
}

/// An image folder of two colour-coded classes at two sites (`manifest.csv` in `dir`) and a
/// recipe over it with `train` as its `[train]` table and `rest` appended.
fn small_recipe(dir: &Path, train: &str, rest: &str) -> PathBuf {
    let mut csv = String::from("path,label,domain\n");
    for i in 0..240u32 {
        let label = i % 2;
        let img = image::RgbImage::from_fn(8, 8, |x, y| {
            image::Rgb([(90 * label + x * 9) as u8, (y * 20) as u8, (i % 200) as u8])
        });
        img.save(dir.join(format!("i{i}.png"))).unwrap();
        csv.push_str(&format!("i{i}.png,c{label},site{}\n", 1 + i % 3 / 2));
    }
    std::fs::write(dir.join("manifest.csv"), csv).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"crash\"\n[data]\nsource = \"{}\"\nsize = [8, 8]\n[train]\n{train}\n{rest}",
            dir.join("manifest.csv").display()
        ),
    )
    .unwrap();
    recipe
}

#[test]
fn training_killed_leaves_no_checkpoint_folder() {
    let d = tempfile::tempdir().unwrap();
    let recipe = small_recipe(d.path(), "epochs = 500\npatience = 500\nbatch = 16", "");
    let out = d.path().join("models");
    let mut child = failscope()
        .arg("train")
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .spawn()
        .unwrap();
    assert!(
        kill_after(&mut child, Duration::from_secs(4)),
        "training finished within 4 s"
    );
    assert!(!out.exists(), "a killed training left {}", out.display());
}

#[test]
fn a_bench_killed_mid_seed_redoes_that_seed_only_and_its_report_regenerates_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let recipe = small_recipe(
        d.path(),
        "epochs = 2\nbatch = 16\npretrain_epochs = 1\nconfidnet_epochs = 1",
        "[shifts]\nhold_out_domains = [\"site2\"]\ncorruptions = [\"contrast\"]\ntrain = 0.6\nval = 0.2\n[infer]\nmc = 2\n",
    );
    let (out, db) = (d.path().join("bench"), d.path().join("s.db"));
    let bench = |extra: &[&str]| {
        let mut c = failscope();
        c.arg("bench")
            .arg(&recipe)
            .args(["--seeds", "2", "--boot", "40", "--out"])
            .arg(&out)
            .arg("--db")
            .arg(&db)
            .args(extra);
        c
    };
    // Killed as soon as seed 0's two studies are stored, during seed 1.
    let mut child = bench(&[]).spawn().unwrap();
    let named = |name: &str| Store::open(&db).ok().and_then(|s| s.study_named(name).unwrap());
    let start = Instant::now();
    while named("crash/seed-0/deepgamblers").is_none() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "bench finished before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(600), "seed 0 never stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_sound(&db);
    let seed0 = (
        named("crash/seed-0/confidnet").unwrap(),
        named("crash/seed-0/deepgamblers").unwrap(),
    );
    assert!(named("crash/seed-1/confidnet").is_none() && !out.join("report.md").exists());
    // The rerun does seed 1 only.
    let rerun = bench(&[]).stdout(Stdio::piped()).output().unwrap();
    let said = String::from_utf8_lossy(&rerun.stdout);
    assert!(rerun.status.success(), "{said}");
    assert!(
        said.contains("seed 0: stored") && said.contains("seed 1: training"),
        "{said}"
    );
    assert_eq!(assert_sound(&db), 4);
    assert_eq!(
        seed0,
        (
            named("crash/seed-0/confidnet").unwrap(),
            named("crash/seed-0/deepgamblers").unwrap()
        )
    );
    // The report: findings in words, the held-out site, the ranking; regenerated byte for byte.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for want in [
        "## Findings",
        "Under acquisition shift to `site2`",
        "ranks first on",
        "SGR's working point",
        "its licence and citation",
    ] {
        assert!(report.contains(want), "{want:?} missing:\n{report}");
    }
    let json = std::fs::read(out.join("report.json")).unwrap();
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        page.contains("<h2>Findings</h2>") && page.matches("<svg").count() >= 4,
        "{page:.2000}"
    );
    assert!(!page.contains("figure not drawn"));
    assert!(bench(&["--report-only"]).status().unwrap().success());
    assert_eq!(std::fs::read_to_string(out.join("report.html")).unwrap(), page);
    // Stored for the web app, with the four studies it was computed from.
    let store = Store::open(&db).unwrap();
    let stored = store.reports().unwrap();
    assert_eq!(
        (stored.len(), stored[0].name.as_str(), stored[0].studies.len()),
        (1, "crash", 4)
    );
    assert_eq!(store.report("crash").unwrap().unwrap().html, page);
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), report);
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), json);
    // A report of seeds never run is refused, naming the seed.
    let missing = failscope()
        .arg("bench")
        .arg(&recipe)
        .args(["--seeds", "3", "--report-only", "--out"])
        .arg(&out)
        .arg("--db")
        .arg(&db)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("seed 2"));
}

/// One HTTP/1.1 request to `addr`; answers the status and the body, or `None` when the server
/// is gone (killed mid-request).
fn try_http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.get(9..12)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    Some((status, body))
}

/// [`try_http`] to a server that must answer.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    try_http(addr, method, path, body).unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

/// Starts a t-SNE job long enough to be killed mid-way; answers its id.
fn start_long_embedding(addr: SocketAddr) -> u64 {
    let (status, body) = http(
        addr,
        "POST",
        "/api/studies/1/embeddings",
        r#"{"perplexity": 5, "iterations": 100000}"#,
    );
    assert_eq!(status, 202, "{body}");
    job_of(&body)
}

/// Starts `failscope serve` on the store `db`; answers it and its address once it listens.
fn serve(db: &Path, dist: &Path) -> (Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = failscope()
        .arg("serve")
        .arg("--addr")
        .arg(addr.to_string())
        .arg("--db")
        .arg(db)
        .arg("--dist")
        .arg(dist)
        .arg("--rate-limit")
        .arg("0")
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, addr)
}

fn job_of(body: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["job"].as_u64().unwrap()
}

#[test]
fn a_server_killed_mid_job_and_mid_link_restarts_sound_with_the_job_failed() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fdshifts/features");
    assert!(failscope()
        .args(["study", "import"])
        .arg(&fixture)
        .arg("--db")
        .arg(&db)
        .status()
        .unwrap()
        .success());
    let dist = d.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html>").unwrap();

    let (mut server, addr) = serve(&db, &dist);
    let job = start_long_embedding(addr);
    let (status, body) = http(addr, "POST", "/api/links", r#"{"state": "study=1&color=testset"}"#);
    assert_eq!(status, 200, "{body}");
    let link: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Links are written while the job computes; the server is killed in the middle of both.
    let writer = std::thread::spawn(move || {
        for _ in 0..10_000 {
            if try_http(addr, "POST", "/api/links", r#"{"state": "study=1&color=confusion"}"#).is_none() {
                return;
            }
        }
    });
    loop {
        let (_, body) = http(addr, "GET", &format!("/api/jobs/{job}"), "");
        if body.contains("t-SNE") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    server.kill().unwrap();
    server.wait().unwrap();
    writer.join().unwrap();
    assert_eq!(assert_sound(&db), 1);

    let (mut server, addr) = serve(&db, &dist);
    let (status, body) = http(addr, "GET", &format!("/api/jobs/{job}"), "");
    assert_eq!(status, 200, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (st["finished"].as_bool(), st["stage"].as_str()),
        (Some(true), Some("failed")),
        "{st}"
    );
    assert_eq!(st["error"]["kind"], "interrupted", "{st}");
    // The link made before the kill still opens.
    let (status, _) = http(addr, "GET", &format!("/s/{}", link["id"].as_str().unwrap()), "");
    assert_eq!(status, 303);
    // The same request runs again as a new job.
    let again = start_long_embedding(addr);
    assert!(again > job);
    let (_, body) = http(addr, "GET", &format!("/api/jobs/{again}"), "");
    assert!(body.contains("\"finished\":false"), "{body}");
    let (status, _) = http(addr, "DELETE", &format!("/api/jobs/{again}"), "");
    assert_eq!(status, 200);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(assert_sound(&db), 1);
}
