//! `failscope eval` against FD-Shifts' own analysis code, run on every case folder of
//! `fixtures/fdshifts/` (`make_expected.py`: FD-Shifts HEAD c4467ae and v0.1.1, numpy 1.24.4,
//! scikit-learn 1.2.2, torch 2.13.0, faiss 1.8.0). Every metric of every study × CSF:
//! - equal to 1e-9 relative;
//! - for the Platt-scaled CSFs (and the combinations built on one), equal to 1e-9 relative to the
//!   run with the Platt fit solved to convergence, and within 1e-5 of FD-Shifts' own run for the
//!   value-dependent metrics (scikit-learn's BFGS tolerance is the only difference);
//! - for HEAD's feature-based CSFs (torch and faiss in float32), within 1e-6 relative, and every
//!   per-row score within float32 rounding of FD-Shifts' own.

use std::path::Path;

use failscope_e2e::{failscope, fixture};
use failscope_shared::analysis::scoring::FEATURE_CSFS;
use serde_json::Value;

/// Every case folder (those with a `hydra/config.yaml`).
fn cases() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixture("fdshifts"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("hydra/config.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn reference(case: &str, version: &str) -> Value {
    let path = fixture(&format!("fdshifts/{case}/expected_{version}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// `failscope eval <dir> --format json <extra…>`: exit 0 and exactly one JSON object on stdout.
fn eval_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<&std::ffi::OsStr> = vec!["eval".as_ref(), dir.as_os_str(), "--format".as_ref(), "json".as_ref()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let run = failscope(&args);
    assert_eq!(run.code, 0, "{}: {}", dir.display(), run.stderr);
    serde_json::from_str(&run.stdout).expect("stdout is exactly one JSON object")
}

/// Metrics whose value (not only the ranking) depends on the confidences' values.
const VALUE_METRICS: [&str; 4] = ["ece", "mce", "fail-NLL", "val_theta"];

fn feature_based(csf: &str) -> bool {
    FEATURE_CSFS.contains(&csf) || csf.contains("maha")
}

fn close(e: f64, v: f64, tol: f64) -> bool {
    (e - v).abs() <= tol * e.abs().max(1e-12) || (e - v).abs() < 1e-13
}

/// Compares one metric; `None` when equal, else the message.
fn check(at: &str, e: &Value, v: Option<&Value>, tol: f64) -> Option<String> {
    let Some(v) = v else {
        return Some(format!("{at}: missing (FD-Shifts {e})"));
    };
    match (e.as_f64(), v.as_f64()) {
        (None, None) => None,
        (Some(a), Some(b)) if close(a, b, tol) => None,
        _ => Some(format!("{at}: {v} vs FD-Shifts {e}")),
    }
}

/// How close a metric of a feature-based CSF must be when failscope computes the scores itself.
/// FD-Shifts computes maha and ViM from a float32 eigendecomposition (`torch.linalg.eig`) and
/// pseudo-inverse of the training covariance; failscope runs the same libtorch calls, which give
/// FD-Shifts' scores bit for bit on the machine FD-Shifts ran on. On another CPU the float32
/// linear algebra rounds differently: FD-Shifts' own `_vim`, same torch 2.13.0, run on two machines
/// gave ViM scores 68.7 float32 units apart, which moves the value-based metrics (ECE, MCE,
/// `val_theta`) by up to 7e-6. Rank-based ones stay within 1e-6.
fn own_scores(value_metric: bool) -> f64 {
    if value_metric {
        5e-5
    } else {
        1e-6
    }
}

/// Every metric of `eval --compat compat` against a reference; MC-dropout CSFs are left out where
/// `skip_mc` says so.
fn compare(case: &str, version: &str, compat: &str, skip_mc: bool) -> usize {
    let got = eval_json(&fixture(&format!("fdshifts/{case}")), &["--compat", compat]);
    compare_with(case, version, &got, skip_mc, own_scores)
}

/// Every metric of `got` against a reference; `feature_tol(value_metric)` is the tolerance for the
/// metrics of feature-based CSFs.
fn compare_with(case: &str, version: &str, got: &Value, skip_mc: bool, feature_tol: fn(bool) -> f64) -> usize {
    let r = reference(case, version);
    let Some(metrics) = r.get("metrics").and_then(Value::as_object) else {
        return 0;
    };
    let converged = &r["converged_platt"]["metrics"];
    let got = got.as_object().unwrap();
    assert_eq!(
        metrics.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{case}/{version}: studies"
    );
    let (mut compared, mut bad) = (0, Vec::new());
    for (study, csfs) in metrics {
        let ours = got[study].as_object().unwrap();
        let names: Vec<&String> = csfs.as_object().unwrap().keys().collect();
        assert_eq!(names, ours.keys().collect::<Vec<_>>(), "{case}/{version}/{study}: CSFs");
        for (csf, m) in csfs.as_object().unwrap() {
            if skip_mc && (csf.contains("mcd") || csf.contains("waic")) {
                continue;
            }
            let mine = &ours[csf];
            let platt_run = converged[study].get(csf);
            for (metric, e) in m.as_object().unwrap() {
                let at = format!("{case}/{version}/{study}/{csf}/{metric}");
                let value_metric = VALUE_METRICS.contains(&metric.as_str());
                let tol = if feature_based(csf) {
                    feature_tol(value_metric)
                } else {
                    1e-9
                };
                let problem = match platt_run {
                    // Equal to the converged-Platt run, or (value-dependent metrics) within 1e-5
                    // of FD-Shifts' own.
                    Some(c) => check(&format!("{at} (converged Platt)"), &c[metric], mine.get(metric), tol)
                        .filter(|_| !value_metric || check(&at, e, mine.get(metric), 1e-5).is_some()),
                    None => check(&at, e, mine.get(metric), tol),
                };
                bad.extend(problem);
                compared += 1;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {compared} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    compared
}

#[test]
fn every_case_was_scored_by_fd_shifts_itself() {
    let cases = cases();
    assert!(cases.len() >= 13, "{cases:?}");
    for case in &cases {
        for version in ["head", "fd-shifts-0.1.1"] {
            let r = reference(case, version);
            assert!(
                r.get("metrics").is_some() || r.get("fd_shifts_error").is_some(),
                "{case}/{version}: neither metrics nor FD-Shifts' error"
            );
        }
    }
}

/// Which dist files are stored as float16: FD-Shifts v0.1.1 computes the MC-dropout CSFs in
/// float16 arithmetic on them (it never wrote such files; HEAD does, and reads them as float16
/// then casts up). failscope computes those CSFs from the float16 values in float64.
fn float16_dists(case: &str) -> bool {
    [
        "raw_logits_dist.npz",
        "raw_output_dist.npz",
        "external_confids_dist.npz",
    ]
    .iter()
    .any(|f| {
        let p = fixture(&format!("fdshifts/{case}/test_results/{f}"));
        p.is_file() && {
            let mut npz = npyz::npz::NpzArchive::open(&p).unwrap();
            let arr = npz.by_name("arr_0").unwrap().unwrap();
            matches!(arr.dtype(), npyz::DType::Plain(t) if t.to_string().ends_with("f2"))
        }
    })
}

#[test]
fn default_definitions_equal_fd_shifts_head() {
    let mut total = 0;
    for case in cases() {
        total += compare(&case, "head", "fd-shifts-head", false);
    }
    assert!(total > 25_000, "compared {total} values");
}

#[test]
fn compat_0_1_1_equals_fd_shifts_v0_1_1() {
    let mut total = 0;
    for case in cases() {
        total += compare(&case, "fd-shifts-0.1.1", "fd-shifts-0.1.1", float16_dists(&case));
    }
    assert!(total > 25_000, "compared {total} values");
}

#[test]
fn from_fd_shifts_own_feature_scores_every_metric_is_fd_shifts_to_1e_6() {
    // The float32 linear algebra aside (above), the rest of the pipeline is exact: given
    // FD-Shifts' own maha and ViM of every row, every metric of every feature-based CSF (and of
    // their combinations) equals FD-Shifts' to 1e-6, value-based ones included.
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let mut total = 0;
    for case in ["features", "features_maha_ext"] {
        let r = reference(case, "head");
        let mut loaded = failscope::fdshifts::load(&fixture(&format!("fdshifts/{case}"))).unwrap();
        let set = loaded.experiment.features.as_mut().unwrap();
        set.torch = Some(failscope_shared::analysis::features::TorchScores {
            maha: floats(&r["feature_scores"]["maha"]),
            vim: floats(&r["feature_scores"]["vim"]),
        });
        let cfg = failscope_shared::analysis::EvalConfig::default();
        let ev = failscope_shared::analysis::experiment::evaluate(&loaded.experiment, &loaded.plan, &cfg).unwrap();
        let got: Value = serde_json::from_str(&failscope::report::to_json(&ev.report)).unwrap();
        total += compare_with(case, "head", &got, false, |_| 1e-6);
    }
    assert!(total > 2_000, "compared {total} values");
}

/// How far two float32 results may lie apart: `ulps` units in the last place of float32 at the
/// scale of the array's values (torch sums in float32, so its rounding errors grow with the scale
/// of the terms, not of each result).
fn within_f32(expected: &[f64], ours: &[f64], ulps: f64) -> Result<f64, String> {
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let unit = scale * f64::from(f32::EPSILON);
    let worst = expected
        .iter()
        .zip(ours)
        .map(|(a, b)| (a - b).abs() / unit)
        .fold(0.0f64, f64::max);
    if expected.len() == ours.len() && worst <= ulps {
        Ok(worst)
    } else {
        Err(format!(
            "{} rows, worst {worst:.1} float32 ulps of the scale {scale}",
            expected.len()
        ))
    }
}

#[test]
fn feature_scores_lie_within_float32_rounding_of_fd_shifts() {
    for case in ["features", "features_maha_ext"] {
        let r = reference(case, "head");
        let fs = &r["feature_scores"];
        let floats = |v: &Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        let mut loaded = failscope::fdshifts::load(&fixture(&format!("fdshifts/{case}"))).unwrap();
        failscope::ingest::attach_torch_features(&mut loaded.experiment);
        let e = &loaded.experiment;
        assert!(
            e.features.as_ref().is_some_and(|f| f.torch.is_some()),
            "{case}: libtorch scored maha and vim"
        );
        let predicted: Vec<usize> = e
            .softmax
            .chunks(e.num_classes)
            .map(failscope_shared::analysis::csf::argmax)
            .collect();
        let ours = e
            .features
            .as_ref()
            .expect("the loader read the feature files")
            .scores(e.logits.as_ref().unwrap(), e.num_classes, &predicted)
            .unwrap();
        let widen = |v: &[f32]| -> Vec<f64> { v.iter().map(|x| f64::from(*x)).collect() };
        let react: Vec<f64> = fs["react_logits"].as_array().unwrap().iter().flat_map(floats).collect();
        for (name, expected, got) in [
            ("maha", floats(&fs["maha"]), widen(&ours.maha)),
            ("vim", floats(&fs["vim"]), widen(&ours.vim)),
            ("dknn", floats(&fs["dknn"]), widen(&ours.dknn)),
            ("react_logits", react, ours.react_logits.clone()),
        ] {
            // ViM projects on the complement of the top eigenvectors of a float32 covariance whose
            // eigenvalues cluster: FD-Shifts' own code, run on two machines, gave ViM scores 68.7
            // units apart (see `own_scores`).
            let ulps = if name == "vim" { 128.0 } else { 32.0 };
            within_f32(&expected, &got, ulps).unwrap_or_else(|m| panic!("{case}/{name}: {m}"));
        }
    }
}

#[test]
fn where_fd_shifts_head_stops_failscope_still_scores() {
    // v0.1.1-format folders with external MC passes: HEAD looks for logits and fails.
    for case in cases() {
        let r = reference(&case, "head");
        if let Some(err) = r.get("fd_shifts_error").filter(|_| r.get("metrics").is_none()) {
            assert!(err.as_str().unwrap().contains("shape"), "{case}: {err}");
            let got = eval_json(&fixture(&format!("fdshifts/{case}")), &[]);
            assert!(got["iid_study"]["det_mcp"]["aurc"].is_number(), "{case}");
        }
    }
}

#[test]
fn corrected_mode_departs_from_head_exactly_where_documented() {
    let dir = fixture("fdshifts/softmax_edge_sets");
    let (head, corr) = (eval_json(&dir, &[]), eval_json(&dir, &["--compat", "corrected"]));
    let iid = |v: &Value, csf: &str, m: &str| v["iid_study"][csf][m].as_f64().unwrap();
    assert_eq!(iid(&head, "det_mcp", "accuracy"), 1.0);
    // All correct: HEAD's label_binarize target is 0 (ECE = mean confidence), corrected's is 1.
    assert!((iid(&head, "det_mcp", "ece") + iid(&corr, "det_mcp", "ece") - 1.0).abs() < 1e-12);
    // MCD-WAIC: every row reads row 0's std in HEAD, its own in corrected mode.
    let val = |v: &Value, csf: &str, m: &str| v["val_tuning"][csf][m].as_f64().unwrap();
    assert_ne!(val(&head, "mcd_waic", "aurc"), val(&corr, "mcd_waic", "aurc"));
    // The rank-only metrics of the unaffected CSFs agree.
    assert_eq!(iid(&head, "det_mcp", "aurc"), iid(&corr, "det_mcp", "aurc"));
    // temp_mls: 50 fixed L-BFGS steps in HEAD, the NLL optimum in corrected mode.
    let dir = fixture("fdshifts/logits_ties_f64_dist");
    let (head, corr) = (eval_json(&dir, &[]), eval_json(&dir, &["--compat", "corrected"]));
    assert_ne!(
        head["val_tuning"]["temp_mls"]["ece"],
        corr["val_tuning"]["temp_mls"]["ece"]
    );
}

#[test]
fn legacy_tie_dependent_values_lie_between_the_extreme_tie_orders() {
    let dir = fixture("fdshifts/logits_ties_f64_dist");
    let at = |ties: &str| eval_json(&dir, &["--compat", "fd-shifts-0.1.1", "--ties", ties]);
    let (numpy, lo, hi) = (at("numpy"), at("errors-first"), at("corrects-first"));
    let mut strictly_inside = 0;
    for (study, csfs) in numpy.as_object().unwrap() {
        for csf in csfs.as_object().unwrap().keys() {
            for metric in ["aurc"] {
                let v = |r: &Value| r[study][csf][metric].as_f64();
                let (Some(x), Some(a), Some(b)) = (v(&numpy), v(&lo), v(&hi)) else {
                    continue;
                };
                let (a, b) = (a.min(b), a.max(b));
                assert!(
                    a - 1e-9 <= x && x <= b + 1e-9,
                    "{study}/{csf}/{metric}: {x} outside [{a}, {b}]"
                );
                strictly_inside += usize::from(a < x && x < b);
            }
        }
    }
    assert!(strictly_inside > 10, "ties should matter somewhere: {strictly_inside}");
}

#[test]
fn table_format_prints_every_study() {
    let dir = fixture("fdshifts/v011_basic");
    let r = failscope(&["eval".as_ref(), dir.as_os_str(), "--format".as_ref(), "table".as_ref()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for study in [
        "val_tuning",
        "iid_study",
        "noise_study_5",
        "in_class_study_derm_site_b",
        "new_class_study_derm_ood_proposed_mode",
    ] {
        assert!(r.stdout.contains(study), "missing {study}");
    }
    assert!(r.stdout.contains("aurc") && r.stdout.contains("dg"));
}

#[test]
fn bootstrap_adds_seeded_intervals() {
    let dir = fixture("fdshifts/v011_basic");
    let a = eval_json(&dir, &["--bootstrap", "200", "--seed", "1"]);
    assert_eq!(a, eval_json(&dir, &["--bootstrap", "200", "--seed", "1"]), "seeded");
    let m = &a["iid_study"]["det_mcp"];
    let (lo, est, hi) = (
        m["aurc_ci95_low"].as_f64().unwrap(),
        m["aurc"].as_f64().unwrap(),
        m["aurc_ci95_high"].as_f64().unwrap(),
    );
    assert!(lo < est && est < hi, "{lo} {est} {hi}");
    assert!(m["augrc_ci95_high"].as_f64().unwrap() > m["augrc"].as_f64().unwrap());
}
