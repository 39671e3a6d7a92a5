//! Build orchestration: `cargo xtask <setup|web|test|demo|bench>`.
//!
//! Every step that installs something first checks whether it is already there, so a second run is
//! quick. What gets installed: libtorch 2.13.0 from PyPI into `.torch/` (the torch wheel without its
//! NVIDIA dependencies, only the two runtime libraries `libtorch_cpu` links against), the `wasm32-unknown-unknown` target, and Debian's chromium +
//! chromedriver for the browser tests.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

mod layers;

const TORCH: &str = "torch==2.13.0";
const TORCH_RUNTIME_DEPS: [&str; 3] = [
    "nvidia-cuda-runtime==13.0.96.*",
    "nvidia-cuda-cupti==13.0.85.*",
    "typing-extensions",
];
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The Leptos app's package: built and linted for wasm32 only.
const FRONTEND: &str = "failscope-frontend";
/// The study `cargo xtask demo` serves until a recipe-built one exists: a committed FD-Shifts experiment.
const DEMO_EXPERIMENT: &str = "tests/fixtures/fdshifts/v011_basic";

const USAGE: &str = "usage: cargo xtask <command>

  setup [--no-browser]   install libtorch (.torch/), the wasm32 target, chromium + chromedriver
  web [--release]        build the Leptos frontend to WebAssembly into dist/
  tidy                   the code map's invariants: server layers (no upward import, no cycle),
                         tch only in torch/infer/train, every module named in ARCHITECTURE.md
  test                   setup, tidy, fmt check, clippy -D warnings, all tests, wasm checks, browser tests
                         (needs FAILSCOPE_DATA: the folder holding ham10000/ and medmnist/)
  demo [--addr A]        setup, build, and serve the app on a default study (http://127.0.0.1:8080);
                         with FAILSCOPE_DATA, first builds a PneumoniaMNIST study once (~2 min)
  load                   the load test: 200 clients (wrk) browse a 100,000-point study for 60 s
                         with tokens on while a t-SNE job runs; p50/p99/errors to artifacts/load.json
  fuzz [SECONDS] [T…]    each libFuzzer target of fuzz/ (or those named) for SECONDS (600) on its
                         committed corpus; installs cargo-fuzz
  bench                  criterion benchmarks (+ FD-Shifts' own code as the baseline with
                         FAILSCOPE_BENCH_PYTHON, FAILSCOPE_FDSHIFTS_HEAD, FAILSCOPE_FDSHIFTS_V011)";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH").is_some_and(|paths| env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn setup_libtorch() -> Result<()> {
    let root = root();
    let link = root.join(".torch/libtorch");
    if link.join("lib/libtorch_cpu.so").is_file() {
        eprintln!("xtask: libtorch present at {}", link.display());
        return Ok(());
    }
    if !on_path("python3") {
        bail!("python3 is not on PATH: it is needed to fetch libtorch ({TORCH}) from PyPI");
    }
    let venv = root.join(".torch/venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--no-deps", TORCH])
        .args(TORCH_RUNTIME_DEPS))?;
    let site = std::fs::read_dir(venv.join("lib"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/torch"))
        .find(|p| p.join("lib/libtorch_cpu.so").is_file())
        .context("the torch wheel installed no lib/libtorch_cpu.so")?;
    let target = site
        .strip_prefix(root.join(".torch"))
        .context("torch outside .torch/")?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(target, &link).context("linking .torch/libtorch")?;
    eprintln!("xtask: libtorch installed at {}", link.display());
    Ok(())
}

fn setup_wasm() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

fn setup_browser() -> Result<()> {
    if on_path("chromedriver") && (on_path("chromium") || on_path("chromium-browser")) {
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver"])
}

/// Installs Debian's `packages`: as root (CI) directly, else through sudo.
fn apt_install(packages: &[&str]) -> Result<()> {
    let sudo = |args: &[&str]| -> Command {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
        let mut c = if is_root {
            Command::new(args[0])
        } else {
            Command::new("sudo")
        };
        if !is_root {
            c.arg(args[0]);
        }
        c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run(&mut sudo(&["apt-get", "update", "-qq"]))?;
    let mut install = vec!["apt-get", "install", "-y", "-qq"];
    install.extend_from_slice(packages);
    run(&mut sudo(&install))
}

fn setup(browser: bool) -> Result<()> {
    setup_libtorch()?;
    setup_wasm()?;
    if browser {
        setup_browser()?;
    }
    Ok(())
}

fn web(release: bool) -> Result<PathBuf> {
    let root = root();
    let profile = if release { "wasm-release" } else { "dev" };
    run(cargo().args(["build", "-p", FRONTEND, "--target", WASM_TARGET, "--profile", profile]))?;
    let dir = if release { "wasm-release" } else { "debug" };
    let wasm = root
        .join("target")
        .join(WASM_TARGET)
        .join(dir)
        .join("failscope_frontend.wasm");
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .out_name("failscope")
        .typescript(false)
        .remove_name_section(release)
        .remove_producers_section(release)
        .generate(&dist)
        .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    // The web assets are the files at the top of assets/ (recipes live in subfolders).
    for entry in std::fs::read_dir(root.join("assets"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), dist.join(entry.file_name()))?;
        }
    }
    let size = std::fs::metadata(dist.join("failscope_bg.wasm"))?.len();
    eprintln!(
        "xtask: frontend built into {} ({} KiB wasm)",
        dist.display(),
        size / 1024
    );
    Ok(dist)
}

/// `FAILSCOPE_DATA` made absolute against the folder xtask was started in, and exported so, so that
/// every command xtask runs — test binaries run in their own crate's folder — reads the same folder.
fn data_dir() -> Result<Option<PathBuf>> {
    let Some(dir) = env::var_os("FAILSCOPE_DATA").filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = std::path::absolute(PathBuf::from(&dir))
        .with_context(|| format!("FAILSCOPE_DATA={}: cannot make it absolute", dir.to_string_lossy()))?;
    env::set_var("FAILSCOPE_DATA", &dir);
    Ok(Some(dir))
}

fn test() -> Result<()> {
    // The real-data tests (HAM10000, MedMNIST) read the data folder from FAILSCOPE_DATA; fail early.
    match data_dir()? {
        Some(dir) if dir.join("ham10000").is_dir() && dir.join("medmnist").is_dir() => {}
        Some(dir) => bail!(
            "FAILSCOPE_DATA={} has no ham10000/ and medmnist/ folders",
            dir.display()
        ),
        None => {
            bail!("set FAILSCOPE_DATA to the data folder (holding ham10000/ and medmnist/) for the real-data tests")
        }
    }
    tidy()?;
    setup(true)?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // Native clippy and tests leave out the frontend: it is a wasm32 program (no native tests) and
    // is linted for wasm32 below; compiling Leptos natively as well cost CI minutes for nothing.
    run(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        FRONTEND,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "-p",
        FRONTEND,
        "--target",
        WASM_TARGET,
        "--",
        "-D",
        "warnings",
    ]))?;
    // `shared` is also the browser's analysis core: the wasm32 clippy run above builds it for wasm32.
    let dist = web(false)?;
    // One test run for the whole workspace (one feature resolution, one build); `--include-ignored`
    // adds the browser tests, which need `dist/` and chromedriver.
    run(cargo()
        .args(["test", "--workspace", "--exclude", FRONTEND, "--", "--include-ignored"])
        .env("FAILSCOPE_DIST", dist))?;
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// The code map's invariants (`layers`): fails with every problem listed.
fn tidy() -> Result<()> {
    let problems = layers::check(&root())?;
    if !problems.is_empty() {
        bail!(
            "the code map's invariants do not hold (ARCHITECTURE.md, \"Layers\"):\n{}",
            problems.join("\n")
        );
    }
    eprintln!("xtask: layers and code map hold");
    Ok(())
}

/// The recipe `cargo xtask demo` builds once when `FAILSCOPE_DATA` holds MedMNIST.
const DEMO_RECIPE: &str = "assets/recipes/pneumoniamnist-demo.toml";

fn demo(args: &[String]) -> Result<()> {
    setup(false)?;
    let dist = web(true)?;
    let root = root();
    let addr = args
        .windows(2)
        .find(|w| w[0] == "--addr")
        .map_or("127.0.0.1:8080", |w| w[1].as_str());
    run(cargo().args(["build", "--release", "-p", "failscope-server", "--bin", "failscope"]))?;
    let bin = root.join("target/release/failscope");
    let db = root.join(".failscope/demo.db");
    // With the data folder, a real study with a latent space: PneumoniaMNIST trained here, built
    // once (about two minutes) and kept in the demo store.
    let data = data_dir()?;
    match data.filter(|d| d.join("medmnist/pneumoniamnist.npz").is_file()) {
        Some(data) => {
            let listed = Command::new(&bin).args(["study", "list", "--db"]).arg(&db).output()?;
            if !String::from_utf8_lossy(&listed.stdout).contains("pneumoniamnist-demo/") {
                let out = root.join(".failscope/demo-runs");
                if out.exists() {
                    std::fs::remove_dir_all(&out)?;
                }
                run(Command::new(&bin)
                    .arg("run")
                    .arg(root.join(DEMO_RECIPE))
                    .arg("--out")
                    .arg(&out)
                    .arg("--data")
                    .arg(&data)
                    .arg("--db")
                    .arg(&db))?;
            }
        }
        None => eprintln!(
            "xtask: set FAILSCOPE_DATA to a folder with medmnist/pneumoniamnist.npz to also build a demo study with a latent space"
        ),
    }
    run(Command::new(&bin)
        .args(["serve", "--addr", addr])
        .arg("--dist")
        .arg(&dist)
        .arg("--db")
        .arg(&db)
        .arg("--import")
        .arg(root.join(DEMO_EXPERIMENT)))
}

/// Criterion benchmarks, then — in the same run, when `FAILSCOPE_BENCH_PYTHON` names a Python with
/// numpy, scipy, scikit-learn and pyyaml — the FD-Shifts-style reference on the same workload, so the
/// README's ratios compare numbers from one run on one machine. Then the embedding benchmark, which
/// runs scikit-learn's and openTSNE's t-SNE itself when `FAILSCOPE_BENCH_PYTHON` is set, and the
/// neighbour-search benchmark (exact against the partition search and HNSW, recall).
fn bench() -> Result<()> {
    data_dir()?;
    run(cargo().args(["bench", "-p", "failscope-shared", "--bench", "metrics"]))?;
    // The baseline is FD-Shifts' own code: a Python environment and FD-Shifts' analysis package set
    // up outside the repository (tests/fixtures/fdshifts/make_expected.py describes both).
    match env::var_os("FAILSCOPE_BENCH_PYTHON") {
        Some(python) => run(Command::new(python).arg(root().join("shared/benches/fdshifts_reference.py")))?,
        None => eprintln!(
            "xtask: set FAILSCOPE_BENCH_PYTHON (and FAILSCOPE_FDSHIFTS_HEAD / FAILSCOPE_FDSHIFTS_V011) to also time FD-Shifts' own code"
        ),
    }
    run(cargo().args(["bench", "-p", "failscope-server", "--bench", "embed"]))?;
    run(cargo().args(["bench", "-p", "failscope-server", "--bench", "neighbours"]))?;
    run(cargo().args(["bench", "-p", "failscope-server", "--bench", "hotspots"]))?;
    run(cargo().args(["bench", "-p", "failscope-server", "--bench", "infer"]))?;
    // The browser benchmark needs the release frontend and chromedriver.
    let dist = web(true)?;
    run(cargo()
        .args(["bench", "-p", "failscope-e2e", "--bench", "browser"])
        .env("FAILSCOPE_DIST", dist))
}

/// The load test (`tests/benches/load.rs`): Debian's wrk drives 200 clients against a served
/// 100,000-point study for 60 s; p50, p99 and errors land in `artifacts/load.json`.
fn load() -> Result<()> {
    setup_libtorch()?;
    if !on_path("wrk") {
        apt_install(&["wrk"])?;
    }
    // The served pages are not requested; an index.html is all the server needs to start.
    let dist = root().join("target/load-dist");
    std::fs::create_dir_all(&dist)?;
    std::fs::write(dist.join("index.html"), "<!doctype html><title>failscope</title>")?;
    run(cargo()
        .args(["bench", "-p", "failscope-e2e", "--bench", "load"])
        .env("FAILSCOPE_DIST", dist))
}

/// The fuzz targets of `fuzz/` (libFuzzer through cargo-fuzz), each with its corpus in
/// `fuzz/corpus/<target>`, seeded from the committed fixtures.
const FUZZ_TARGETS: [(&str, &[&str]); 7] = [
    (
        "npz",
        &[
            "tests/fixtures/fdshifts/v011_basic/test_results",
            "tests/fixtures/malformed/files",
        ],
    ),
    ("manifest_csv", &["tests/fixtures/malformed/files"]),
    ("samples_csv", &["tests/fixtures/malformed/files"]),
    (
        "config_yaml",
        &[
            "tests/fixtures/fdshifts/v011_basic/hydra",
            "tests/fixtures/malformed/files",
        ],
    ),
    ("view_state", &[]),
    ("json_bodies", &["tests/fixtures/malformed/files"]),
    ("recipe_toml", &["assets/recipes", "tests/fixtures/malformed/files"]),
];

/// `cargo xtask fuzz [SECONDS] [TARGET…]`: every target (or the named ones) for SECONDS each
/// (default 600), on stable Rust through `RUSTC_BOOTSTRAP` (cargo-fuzz's sanitizer flags are
/// nightly-only). A crash stops with its input in `fuzz/artifacts/<target>/`.
fn fuzz(args: &[String]) -> Result<()> {
    setup_libtorch()?;
    if !on_path("cargo-fuzz") {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(600);
    let named: Vec<&String> = args.iter().filter(|a| a.parse::<u64>().is_err()).collect();
    for (target, seeds) in FUZZ_TARGETS {
        if !named.is_empty() && !named.iter().any(|n| n.as_str() == target) {
            continue;
        }
        // The committed, minimised corpus is where libFuzzer writes new inputs; the fixtures it
        // was seeded from are read as further corpus folders, never copied into it.
        let corpus = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seed_dirs: Vec<PathBuf> = seeds.iter().map(|s| root().join(s)).collect();
        // The targets link libtorch through the server crate, whose rpath reaches only its own binaries.
        run(cargo()
            .env("RUSTC_BOOTSTRAP", "1")
            .env("LD_LIBRARY_PATH", root().join(".torch/libtorch/lib"))
            .args(["fuzz", "run", target])
            .arg(&corpus)
            .args(&seed_dirs)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=4096",
                "-max_len=1048576",
            ]))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = &args[args.len().min(1)..];
    match args.first().map(String::as_str) {
        Some("setup") => setup(!rest.iter().any(|a| a == "--no-browser")),
        Some("web") => web(rest.iter().any(|a| a == "--release")).map(|_| ()),
        Some("test") => test(),
        Some("tidy") => tidy(),
        Some("demo") => demo(rest),
        Some("bench") => bench(),
        Some("load") => load(),
        Some("fuzz") => fuzz(rest),
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing command")
        }
    }
}
