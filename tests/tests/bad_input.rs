//! Bad input gives exit code 2 and one clear message naming the file and the problem; never a panic.

use std::path::Path;

use failscope_e2e::{copy_fixture, failscope, write_npz_member, Run};

fn eval(dir: &Path) -> Run {
    failscope(&["eval".as_ref(), dir.as_os_str(), "--format".as_ref(), "json".as_ref()])
}

/// Writes `arr` as `arr_0` of an .npz (uncompressed, as `np.savez` does).
fn write_npz(path: &Path, shape: &[u64], data: &[f64]) {
    let mut npz = npyz::npz::NpzWriter::new(std::fs::File::create(path).unwrap());
    write_npz_member(&mut npz, "arr_0", shape, data);
}

fn raw_output(dir: &Path) -> std::path::PathBuf {
    dir.join("test_results/raw_output.npz")
}

/// A valid 2-class raw output with val_tuning and iid rows, then mutated by `edit`.
fn with_raw(edit: impl Fn(&mut Vec<f64>)) -> tempfile::TempDir {
    let d = copy_fixture("fdshifts/v011_basic");
    for f in [
        "raw_output_dist.npz",
        "external_confids.npz",
        "external_confids_dist.npz",
    ] {
        std::fs::remove_file(d.path().join("test_results").join(f)).unwrap();
    }
    let mut data = Vec::new();
    for i in 0..20 {
        let p = 0.2 + 0.03 * f64::from(i);
        data.extend([p, 1.0 - p, 0.0, f64::from(i % 2), if i < 10 { 0.0 } else { 1.0 }]);
    }
    edit(&mut data);
    write_npz(&raw_output(d.path()), &[20, 5], &data);
    d
}

fn assert_input_error(run: &Run, file_part: &str, problem_part: &str) {
    assert_eq!(run.code, 2, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    let line = run.stderr.trim();
    assert_eq!(line.lines().count(), 1, "one message: {line}");
    assert!(line.starts_with("error: "), "{line}");
    assert!(line.contains(file_part), "names {file_part}: {line}");
    assert!(line.contains(problem_part), "says {problem_part}: {line}");
}

#[test]
fn missing_file() {
    let d = copy_fixture("fdshifts/v011_basic");
    std::fs::remove_file(raw_output(d.path())).unwrap();
    assert_input_error(&eval(d.path()), "raw_output.npz", "missing file");
    let d = copy_fixture("fdshifts/v011_basic");
    std::fs::remove_file(d.path().join("hydra/config.yaml")).unwrap();
    assert_input_error(&eval(d.path()), "config.yaml", "missing file");
    assert_input_error(
        &eval(Path::new("/nonexistent/experiment")),
        "/nonexistent/experiment",
        "not a folder",
    );
}

#[test]
fn wrong_array_shape() {
    let d = copy_fixture("fdshifts/v011_basic");
    write_npz(&raw_output(d.path()), &[4, 3], &[0.5; 12]);
    assert_input_error(&eval(d.path()), "raw_output.npz", "expected num_classes + 2 = 5");
    let d = copy_fixture("fdshifts/v011_basic");
    write_npz(&d.path().join("test_results/raw_output_dist.npz"), &[3, 3], &[0.5; 9]);
    assert_input_error(&eval(d.path()), "raw_output_dist.npz", "expected (N, num_classes, M)");
    let d = copy_fixture("fdshifts/v011_basic");
    write_npz(&d.path().join("test_results/external_confids.npz"), &[7], &[0.5; 7]);
    assert_input_error(&eval(d.path()), "external_confids.npz", "rows like the raw output");
}

#[test]
fn wrong_key() {
    let d = copy_fixture("fdshifts/v011_basic");
    let mut npz = npyz::npz::NpzWriter::new(std::fs::File::create(raw_output(d.path())).unwrap());
    write_npz_member(&mut npz, "softmax", &[1, 5], &[0.5, 0.5, 0.0, 0.0, 0.0]);
    drop(npz);
    assert_input_error(
        &eval(d.path()),
        "raw_output.npz",
        "no array 'arr_0' in the archive (found: softmax)",
    );
}

#[test]
fn nan_or_inf_softmax() {
    let d = with_raw(|v| v[5 * 3] = f64::NAN);
    assert_input_error(&eval(d.path()), "raw_output.npz", "row 3 is NaN");
    let d = with_raw(|v| v[5 * 4 + 1] = f64::INFINITY);
    assert_input_error(&eval(d.path()), "raw_output.npz", "row 4 is inf");
}

#[test]
fn label_out_of_range() {
    let d = with_raw(|v| v[5 * 6 + 3] = 7.0);
    assert_input_error(
        &eval(d.path()),
        "raw_output.npz",
        "row 6: label 7 is not a class index in 0..3",
    );
    let d = with_raw(|v| v[5 * 2 + 3] = 0.5);
    assert_input_error(&eval(d.path()), "raw_output.npz", "row 2: label 0.5");
}

#[test]
fn corrupt_npz() {
    let d = copy_fixture("fdshifts/v011_basic");
    std::fs::write(raw_output(d.path()), b"PK\x03\x04 this is not really a zip archive").unwrap();
    assert_input_error(&eval(d.path()), "raw_output.npz", "not a readable .npz archive");
    // A valid zip whose member is truncated.
    let d = copy_fixture("fdshifts/v011_basic");
    let bytes = std::fs::read(raw_output(d.path())).unwrap();
    std::fs::write(raw_output(d.path()), &bytes[..bytes.len() / 2]).unwrap();
    let run = eval(d.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("raw_output.npz"), "{}", run.stderr);
}

#[test]
fn unknown_study_in_config() {
    let d = copy_fixture("fdshifts/v011_basic");
    let cfg = d.path().join("hydra/config.yaml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("in_class_study:", "sideways_study:");
    std::fs::write(&cfg, text).unwrap();
    assert_input_error(
        &eval(d.path()),
        "config.yaml",
        "unknown study 'sideways_study' in eval.query_studies",
    );
}

#[test]
fn unknown_csf_and_empty_study() {
    let d = copy_fixture("fdshifts/v011_basic");
    let cfg = d.path().join("hydra/config.yaml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("- det_mcp", "- det_magic");
    std::fs::write(&cfg, text).unwrap();
    assert_input_error(
        &eval(d.path()),
        "test_results",
        "unknown confidence scoring function 'det_magic'",
    );
    // Only val_tuning and iid rows: the configured noise set is empty.
    let d = with_raw(|_| {});
    assert_input_error(&eval(d.path()), "test_results", "no row has dataset_idx 2");
}

#[test]
fn csv_missing_columns() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("scores.csv");
    std::fs::write(&p, "score,ok\n0.9,1\n").unwrap();
    let r = failscope(&["eval".as_ref(), p.as_os_str()]);
    assert_input_error(&r, "scores.csv", "expected `confidence,correct` or softmax columns");
    std::fs::write(&p, "confidence,correct\n0.9,1\n0.2,maybe\n").unwrap();
    assert_input_error(
        &failscope(&["eval".as_ref(), p.as_os_str()]),
        "scores.csv",
        "line 3: `correct` = \"maybe\"",
    );
}

#[test]
fn usage_errors_exit_2() {
    let r = failscope(&["eval", "x", "--compat", "fd-shifts-9"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fd-shifts-9"), "{}", r.stderr);
}

/// Sets the label of the first row of test set `idx` in a copy of `v011_basic`.
fn with_label_in_set(idx: f64, label: f64) -> (tempfile::TempDir, usize) {
    let d = copy_fixture("fdshifts/v011_basic");
    let path = raw_output(d.path());
    let mut raw = failscope::io::npz::read(&path, "arr_0").unwrap();
    let cols = raw.shape[1];
    let row = raw.data.chunks(cols).position(|r| r[cols - 1] == idx).unwrap();
    raw.data[row * cols + cols - 2] = label;
    write_npz(&path, &[raw.shape[0] as u64, cols as u64], &raw.data);
    (d, row)
}

#[test]
fn labels_beyond_the_class_count_only_in_new_class_sets() {
    // dataset_idx 4 is the new-class set `derm_ood`: its own dataset's labels (e.g. 0-9) are scored,
    // every row a failure, as FD-Shifts does.
    let (d, _) = with_label_in_set(4.0, 9.0);
    let run = eval(d.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v["new_class_study_derm_ood_proposed_mode"]["det_mcp"]["aurc"].is_number());
    // In the validation (0), i.i.d. (1), noise (2) and in-class (3) sets a label must be a class index.
    for idx in [0.0, 1.0, 2.0, 3.0] {
        let (d, row) = with_label_in_set(idx, 9.0);
        assert_input_error(
            &eval(d.path()),
            "raw_output.npz",
            &format!("row {row}: label 9 is not a class index in 0..3"),
        );
    }
}

#[test]
fn a_readme_without_the_summary_block_is_refused_before_any_training() {
    let d = tempfile::tempdir().unwrap();
    let readme = d.path().join("README.md");
    std::fs::write(&readme, "# Results\n\nNo markers here.\n").unwrap();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/recipes/ham10000-binary.toml");
    let out = d.path().join("bench");
    let db = d.path().join("s.db");
    let run = failscope(&[
        "bench".as_ref(),
        recipe.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--readme".as_ref(),
        readme.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
        "--data".as_ref(),
        d.path().as_os_str(),
    ]);
    assert_input_error(&run, "README.md", "<!-- bench:ham10000-binary -->");
    // Nothing was started: no output folder, no store.
    assert!(!out.exists() && !db.exists());
}
