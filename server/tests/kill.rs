//! A study is complete or absent: `failscope infer` killed (SIGKILL) while it writes its experiment
//! folder leaves no output folder, and the next run cleans up the killed run's staging folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 1,500 PNG images in 3 classes (enough rows that writing the MC-dropout arrays takes a while).
fn images(dir: &Path) -> PathBuf {
    let mut csv = String::from("path,label\n");
    for i in 0..1500u32 {
        let label = i % 3;
        let img = image::RgbImage::from_fn(8, 8, |x, y| {
            image::Rgb([(40 * label + x * 9) as u8, (y * 20 + i % 50) as u8, (i % 200) as u8])
        });
        let name = format!("i{i}.png");
        img.save(dir.join(&name)).unwrap();
        csv.push_str(&format!("{name},c{label}\n"));
    }
    let p = dir.join("manifest.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

fn staging_folders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".failscope-export-"))
        .map(|e| e.path())
        .collect()
}

fn infer(manifest: &Path, out: &Path) -> Command {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny_cnn.pt");
    let mut c = Command::new(env!("CARGO_BIN_EXE_failscope"));
    c.arg("infer")
        .arg("--model")
        .arg(model)
        .arg("--dataset")
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(["--size", "8,8", "--mc", "40", "--corrupt", "all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn killed_mid_write_leaves_no_output_and_the_next_run_cleans_up() {
    let d = tempfile::tempdir().unwrap();
    let manifest = images(d.path());
    let out = d.path().join("experiment");
    let mut child = infer(&manifest, &out).spawn().unwrap();
    // Wait until the export's staging folder appears, then kill at once.
    let start = Instant::now();
    loop {
        if !staging_folders(d.path()).is_empty() {
            child.kill().unwrap();
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("infer finished ({status}) before it could be killed mid-write");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no staging folder after 300 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait().unwrap();
    assert!(!out.exists(), "a killed run must not leave its output folder");
    assert_eq!(
        staging_folders(d.path()).len(),
        1,
        "the killed run's staging folder is left"
    );

    // The next run completes and removes the dead run's staging folder.
    let status = infer(&manifest, &out).status().unwrap();
    assert!(status.success());
    assert!(out.join("test_results/raw_logits_dist.npz").is_file());
    assert!(out.join("hydra/config.yaml").is_file());
    assert!(
        staging_folders(d.path()).is_empty(),
        "stale staging folders are removed"
    );
}
