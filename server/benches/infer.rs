//! Inference benchmark (`cargo xtask bench`): images/s of a TorchScript model's eval-mode forward
//! pass through failscope (the C++ shim over libtorch) vs PyTorch on the same `.pt`, same input
//! batches and threads — PyTorch in the same run when `FAILSCOPE_BENCH_PYTHON` names a Python with
//! torch (`benches/infer_reference.py` also writes the model: four conv–BN–ReLU blocks, 64×64
//! input). Also `failscope infer` end to end (PNG decoding, resizing, forward, MC-dropout off,
//! writing the experiment) on 1,024 images.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use failscope::torch::TorchModel;
use tch::{Kind, Tensor};

const BATCH: i64 = 64;
const BATCHES: usize = 20;

fn python(args: &[&str]) -> Option<String> {
    let python = std::env::var("FAILSCOPE_BENCH_PYTHON").ok()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/infer_reference.py");
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("run Python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn images(dir: &Path, n: u32) -> PathBuf {
    let mut csv = String::from("path,label\n");
    for i in 0..n {
        let img = image::RgbImage::from_fn(96, 96, |x, y| {
            image::Rgb([(x + i) as u8, (y * 2) as u8, (i % 251) as u8])
        });
        let name = format!("i{i}.png");
        img.save(dir.join(&name)).expect("write png");
        csv.push_str(&format!("{name},c{}\n", i % 7));
    }
    let p = dir.join("manifest.csv");
    std::fs::write(&p, csv).expect("write manifest");
    p
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(threads as i32);
    let dir = tempfile::tempdir().expect("temp dir");
    let (model_path, size) = {
        let p = dir.path().join("bench_cnn.pt");
        match python(&["make", p.to_str().expect("utf-8 path")]) {
            Some(_) => (p, 64i64),
            None => {
                println!("(set FAILSCOPE_BENCH_PYTHON to a Python with torch for the PyTorch comparison; timing the 8×8 fixture)");
                (
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny_cnn.pt"),
                    8,
                )
            }
        }
    };
    let model = TorchModel::load(&model_path).expect("TorchScript model");
    let x = Tensor::randn([BATCH, 3, size, size], (Kind::Float, tch::Device::Cpu));
    for _ in 0..3 {
        model.forward(&x).expect("forward");
    }
    let start = Instant::now();
    for _ in 0..BATCHES {
        model.forward(&x).expect("forward");
    }
    let ours = (BATCH as usize * BATCHES) as f64 / start.elapsed().as_secs_f64();
    println!("failscope forward ({size}×{size}, batch {BATCH}, {threads} threads): {ours:.0} images/s");
    if let Some(out) = python(&[
        "time",
        model_path.to_str().expect("utf-8 path"),
        &threads.to_string(),
        &BATCH.to_string(),
        &size.to_string(),
        &BATCHES.to_string(),
    ]) {
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        let torch = v["torch_images_per_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "PyTorch forward, same .pt and inputs: {torch:.0} images/s → failscope/PyTorch = {:.2}",
            ours / torch
        );
    }

    let manifest = images(dir.path(), 1024);
    let out = dir.path().join("experiment");
    let args = [
        "failscope",
        "infer",
        "--model",
        model_path.to_str().expect("utf-8 path"),
        "--dataset",
        manifest.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
        "--size",
        &format!("{size},{size}"),
        "--train",
        "0.05",
        "--val",
        "0.05",
    ];
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let code = failscope::cli::run(args, &mut o, &mut e);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&e));
    println!(
        "failscope infer end to end (96×96 PNGs → {size}×{size}, decode + resize + forward + write): {:.0} images/s",
        1024.0 * 0.95 / secs
    );
}
