//! Helpers for the end-to-end tests: fixture paths and running the `failscope` CLI in-process
//! (the binary is a thin wrapper over `failscope::cli::run`).

pub mod browser;
pub mod synthetic;

use std::path::{Path, PathBuf};

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// What a CLI run printed and returned.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `failscope <args>` in-process.
pub fn failscope<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let mut argv: Vec<std::ffi::OsString> = vec!["failscope".into()];
    argv.extend(args.iter().map(|a| a.as_ref().to_os_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = failscope::cli::run(argv, &mut out, &mut err);
    Run {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// Copies a fixture folder to a temp dir so a test can break it.
pub fn copy_fixture(rel: &str) -> tempfile::TempDir {
    let dst = tempfile::tempdir().expect("temp dir");
    copy_dir(&fixture(rel), dst.path());
    dst
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// Writes `data` with `shape` as member `name` of an `.npz` archive being built (as `np.savez` does).
pub fn write_npz_member<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    npz: &mut npyz::npz::NpzWriter<std::fs::File>,
    name: &str,
    shape: &[u64],
    data: &[T],
) {
    use npyz::WriterBuilder;
    let mut w = npz
        .array::<T>(name, Default::default())
        .unwrap()
        .default_dtype()
        .shape(shape)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// `failscope study import <dir> --db <db> [--name <name>]`, which must succeed; answers its run.
pub fn import(db: &Path, dir: &Path, name: Option<&str>) -> Run {
    let mut args = vec![
        std::ffi::OsStr::new("study"),
        "import".as_ref(),
        dir.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ];
    if let Some(name) = name {
        args.extend(["--name".as_ref(), std::ffi::OsStr::new(name)]);
    }
    let r = failscope(&args);
    assert_eq!(r.code, 0, "import {}: {}", dir.display(), r.stderr);
    r
}

/// Imports the `fdshifts/v011_basic` fixture into the store at `db` under `name` (study id 1 in a
/// fresh store), through the CLI.
pub fn import_demo_study(db: &std::path::Path, name: &str) {
    import(db, &fixture("fdshifts/v011_basic"), Some(name));
}

/// 90 PNG images in 3 classes at 2 sites, each class with its own colour (plus noise).
pub fn image_folder(dir: &Path, classes: usize) -> std::path::PathBuf {
    let mut csv = String::from("path,label,domain,group\n");
    for i in 0..90u32 {
        let label = i as usize % classes;
        let img = image::RgbImage::from_fn(8, 8, |x, y| {
            let base = [60 + 70 * label as u32, 200 - 60 * label as u32, 120];
            let n = (x * 7 + y * 13 + i * 31) % 40;
            image::Rgb([(base[0] + n) as u8, (base[1] + n) as u8, base[2] as u8])
        });
        let name = format!("img{i}.png");
        img.save(dir.join(&name)).unwrap();
        csv.push_str(&format!("{name},class{label},site{},p{}\n", i % 2 + 1, i / 2));
    }
    let p = dir.join("manifest.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

/// `failscope infer --model <model> --dataset <manifest> --out <out> <extra…>`.
pub fn infer(model: &Path, manifest: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "infer".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        "--dataset".as_ref(),
        manifest.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    failscope(&args)
}

/// A store with one study inferred by the TorchScript fixture from 90 images (features + MC passes).
pub fn inferred_study(d: &Path) -> (PathBuf, PathBuf) {
    let manifest = image_folder(d, 3);
    let out = d.join("experiment");
    let r = infer(
        &fixture("tiny_cnn.pt"),
        &manifest,
        &out,
        &[
            "--size",
            "8,8",
            "--mc",
            "3",
            "--hold-out-domain",
            "site2",
            "--corrupt",
            "gaussian_noise",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let db = d.join("s.db");
    import(&db, &out, None);
    (db, out)
}
