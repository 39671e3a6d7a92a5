//! The malformed-input corpus (`tests/fixtures/malformed`, written by its `make_corpus.py`): every
//! file is fed to failscope the way a user would (an FD-Shifts folder with the file in place, a CSV,
//! a dataset, a recipe, a model, an image, an HTTP body). Each must give exit code 2 (or an HTTP
//! 4xx) with a message naming the file and the problem; the store must stay byte-for-byte
//! unchanged, and no output may be left half-written. All cases run; the failures are listed
//! together.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::Request;
use failscope::http::{app, AppState};
use failscope::store::Store;
use failscope_e2e::{failscope, fixture, image_folder, import, Run};
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    file: String,
    mode: String,
    expect: String,
    note: String,
    request: Option<String>,
    big: Option<String>,
}

/// A copy of fixture folder `rel` in `dir` with `target` (relative) replaced by `file`.
fn folder_with(dir: &Path, rel: &str, target: &str, file: &Path) -> PathBuf {
    let src = fixture(rel);
    let dst = dir.join("experiment");
    for entry in walk(&src) {
        let to = dst.join(entry.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    std::fs::copy(file, dst.join(target)).unwrap();
    dst
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The case's input: the committed file, or a big one written here from its recipe.
fn input(case: &Case, dir: &Path) -> PathBuf {
    let Some(big) = &case.big else {
        return fixture("malformed/files").join(&case.file);
    };
    let path = dir.join(&case.file);
    let (kind, n) = big.split_once(':').unwrap();
    let n: usize = n.parse().unwrap();
    let data = match kind {
        "columns" => {
            let mut s = "c,".repeat(n);
            s.pop();
            s.push('\n');
            s.push_str(&"1,".repeat(n));
            s.into_bytes()
        }
        "bytes" => {
            let mut s = br#"{"state": ""#.to_vec();
            s.resize(n, b'a');
            s.extend_from_slice(br#""}"#);
            s
        }
        other => panic!("unknown big input {other}"),
    };
    std::fs::write(&path, data).unwrap();
    path
}

fn import_run(db: &Path, path: &Path) -> Run {
    failscope(&["study", "import", path.to_str().unwrap(), "--db", db.to_str().unwrap()])
}

fn infer_run(dir: &Path, model: &Path, manifest: &Path) -> (Run, PathBuf) {
    let out = dir.join("out");
    let run = failscope_e2e::infer(model, manifest, &out, &["--size", "8,8"]);
    (run, out)
}

/// Runs one CLI case; answers what went wrong, if anything.
fn cli_case(case: &Case, db: &Path) -> Option<String> {
    let d = tempfile::tempdir().unwrap();
    let file = input(case, d.path());
    let (run, names, leftover) = match case.mode.as_str() {
        "raw_output" => {
            let dir = folder_with(d.path(), "fdshifts/v011_basic", "test_results/raw_output.npz", &file);
            (import_run(db, &dir), "raw_output.npz".to_string(), None)
        }
        "encoded_output" => {
            let dir = folder_with(d.path(), "fdshifts/features", "test_results/encoded_output.npz", &file);
            (import_run(db, &dir), "encoded_output.npz".to_string(), None)
        }
        "config" => {
            let dir = folder_with(d.path(), "fdshifts/v011_basic", "hydra/config.yaml", &file);
            (import_run(db, &dir), "config.yaml".to_string(), None)
        }
        "csv" => (import_run(db, &file), case.file.clone(), None),
        "dataset" => (failscope(&["dataset", file.to_str().unwrap()]), String::new(), None),
        "recipe" => {
            let out = d.path().join("run");
            let r = failscope(&[
                "train",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--data",
                d.path().to_str().unwrap(),
            ]);
            (r, case.file.clone(), Some(out))
        }
        "model" => {
            let images = d.path().join("images");
            std::fs::create_dir(&images).unwrap();
            let manifest = image_folder(&images, 3);
            let (r, out) = infer_run(d.path(), &file, &manifest);
            (r, case.file.clone(), Some(out))
        }
        "image" => {
            let images = d.path().join("images");
            std::fs::create_dir(&images).unwrap();
            let manifest = image_folder(&images, 3);
            std::fs::copy(&file, images.join(&case.file)).unwrap();
            let mut csv = std::fs::read_to_string(&manifest).unwrap();
            csv.push_str(&format!("{},class0,site1,bad\n", case.file));
            std::fs::write(&manifest, csv).unwrap();
            let (r, out) = infer_run(d.path(), &fixture("tiny_cnn.pt"), &manifest);
            (r, case.file.clone(), Some(out))
        }
        other => return Some(format!("unknown mode {other}")),
    };
    let mut problems = Vec::new();
    if run.code != 2 {
        problems.push(format!("exit code {} (stdout {:?})", run.code, run.stdout));
    }
    if !run.stderr.contains(&case.expect) {
        problems.push(format!("the message lacks {:?}", case.expect));
    }
    if !names.is_empty() && !run.stderr.contains(&names) {
        problems.push(format!("the message does not name {names}"));
    }
    if run.stderr.contains("panicked") {
        problems.push("a panic".into());
    }
    if let Some(out) = leftover.filter(|o| o.exists()) {
        problems.push(format!("{} was left behind", out.display()));
    }
    if std::env::var_os("FAILSCOPE_SHOW_MESSAGES").is_some() {
        eprintln!(
            "{} ({}): exit {}: {}",
            case.file,
            case.mode,
            run.code,
            run.stderr.trim()
        );
    }
    (!problems.is_empty()).then(|| format!("{}: {}; stderr: {}", problems.join(", "), case.note, run.stderr.trim()))
}

async fn http_case(case: &Case, state: &AppState) -> Option<String> {
    let d = tempfile::tempdir().unwrap();
    let body = std::fs::read(input(case, d.path())).unwrap();
    let (method, uri) = case.request.as_deref().unwrap().split_once(' ').unwrap();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let injected = resp.headers().contains_key(axum::http::header::SET_COOKIE);
    let text = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let ok = status.is_client_error() && text.contains(&case.expect) && !injected;
    (!ok).then(|| format!("HTTP {status}, body {text:?}: {}", case.note))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_malformed_input_is_refused_clearly_and_changes_nothing() {
    let corpus: Corpus = toml::from_str(&std::fs::read_to_string(fixture("malformed/cases.toml")).unwrap()).unwrap();
    assert!(corpus.case.len() >= 40, "the corpus holds {} cases", corpus.case.len());
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    import(&db, &fixture("fdshifts/features"), Some("before"));
    let before = std::fs::read(&db).unwrap();
    let mut failures = Vec::new();
    for case in corpus.case.iter().filter(|c| c.mode != "http") {
        let c = case;
        let db2 = db.clone();
        let outcome = tokio::task::spawn_blocking({
            let case = Case {
                file: c.file.clone(),
                mode: c.mode.clone(),
                expect: c.expect.clone(),
                note: c.note.clone(),
                request: c.request.clone(),
                big: c.big.clone(),
            };
            move || cli_case(&case, &db2)
        })
        .await
        .unwrap_or_else(|e| Some(format!("panicked: {e}")));
        if let Some(f) = outcome {
            failures.push(format!("{} ({}): {f}", case.file, case.mode));
        }
        if std::fs::read(&db).unwrap() != before {
            failures.push(format!("{}: the store changed", case.file));
            break;
        }
    }
    let state = AppState::new(Store::open(&db).unwrap(), db.clone(), d.path().to_path_buf()).unwrap();
    for case in corpus.case.iter().filter(|c| c.mode == "http") {
        if let Some(f) = http_case(case, &state).await {
            failures.push(format!("{} (http): {f}", case.file));
        }
    }
    // The server still answers, and the study is as it was.
    let list = state.store.get().unwrap().list().unwrap();
    if list.len() != 1 {
        failures.push(format!("the store holds {} studies", list.len()));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.case.len(),
        failures.join("\n")
    );
}
