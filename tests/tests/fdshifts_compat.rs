//! `failscope eval` on FD-Shifts experiment folders it has never seen, against the reference values
//! of `fixtures/make_fixtures.py` (scikit-learn for every metric FD-Shifts delegates to it).
//! Tolerance: 1e-6 relative; 1e-5 for value-dependent metrics of Platt-scaled CSFs, whose fit
//! scikit-learn stops at its optimiser tolerance.

use failscope_e2e::{failscope, fixture};
use failscope_shared::analysis::csf::needs_platt;
use serde_json::Value;

/// `failscope eval <dir> --format json <extra…>`: exit 0 and exactly one JSON object on stdout.
fn eval_json(dir: &std::path::Path, extra: &[&str]) -> Value {
    let mut args: Vec<&std::ffi::OsStr> = vec!["eval".as_ref(), dir.as_os_str(), "--format".as_ref(), "json".as_ref()];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    let run = failscope(&args);
    assert_eq!(run.code, 0, "{}: {}", dir.display(), run.stderr);
    serde_json::from_str(&run.stdout).expect("stdout is exactly one JSON object")
}

const CASES: [&str; 5] = [
    "v011_basic",
    "v011_all_correct_iid",
    "v011_single_class_iid",
    "v011_nan_ext",
    "head_logits_f16_ties",
];

fn compare(case: &str, compat: &str) {
    let dir = fixture(&format!("fdshifts/{case}"));
    let expected_path = dir.join(format!("expected_{compat}.json"));
    if !expected_path.exists() {
        assert_eq!(
            case, "head_logits_f16_ties",
            "only the HEAD-format case lacks a v0.1.1 reference"
        );
        return;
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    let got = eval_json(&dir, &["--compat", compat]);
    let (exp, got) = (expected.as_object().unwrap(), got.as_object().unwrap());
    assert_eq!(
        exp.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{case}: studies"
    );
    let mut compared = 0;
    for (study, csfs) in exp {
        for (csf, metrics) in csfs.as_object().unwrap() {
            let g = got[study]
                .get(csf)
                .unwrap_or_else(|| panic!("{case}/{study}: missing CSF {csf}"));
            for (metric, e) in metrics.as_object().unwrap() {
                let v = g
                    .get(metric)
                    .unwrap_or_else(|| panic!("{case}/{study}/{csf}: missing {metric}"));
                let platt_value = needs_platt(csf) && ["ece", "mce", "fail-NLL"].contains(&metric.as_str());
                let tol = if platt_value { 1e-5 } else { 1e-6 };
                match (e.as_f64(), v.as_f64()) {
                    (None, None) => {}
                    (Some(e), Some(v)) => {
                        let rel = (e - v).abs() / e.abs().max(1e-12);
                        assert!(
                            rel <= tol || (e - v).abs() < 1e-12,
                            "{case}/{compat}/{study}/{csf}/{metric}: {v} vs FD-Shifts {e}"
                        );
                    }
                    (e, v) => panic!("{case}/{compat}/{study}/{csf}/{metric}: {v:?} vs FD-Shifts {e:?}"),
                }
                compared += 1;
            }
        }
        // CSFs we report beyond the reference are exactly the logit-based ones FD-Shifts HEAD adds.
        for extra in got[study]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !csfs.as_object().unwrap().contains_key(*k))
        {
            assert!(
                ["det_mls", "temp_mls", "energy_mls", "mcd_mls"].contains(&extra.as_str()),
                "{case}: unexpected CSF {extra}"
            );
        }
    }
    assert!(compared > 1000, "{case}: compared only {compared} values");
}

#[test]
fn current_definitions_match_the_reference() {
    for case in CASES {
        compare(case, "current");
    }
}

#[test]
fn fd_shifts_0_1_1_definitions_match_the_reference() {
    for case in CASES {
        compare(case, "fd-shifts-0.1.1");
    }
}

#[test]
fn all_correct_iid_shows_the_legacy_ece_quirk_only_in_compat_mode() {
    let dir = fixture("fdshifts/v011_all_correct_iid");
    let (cur, old) = (
        eval_json(&dir, &["--compat", "current"]),
        eval_json(&dir, &["--compat", "fd-shifts-0.1.1"]),
    );
    let iid = |v: &Value, m: &str| v["iid_study"]["det_mcp"][m].as_f64().unwrap();
    assert_eq!(iid(&cur, "accuracy"), 1.0);
    // Legacy: all-correct ⇒ target 0 ⇒ ECE = mean confidence; current: ECE = 1 − mean confidence.
    assert!((iid(&old, "ece") + iid(&cur, "ece") - 1.0).abs() < 1e-12);
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
