//! The study store: import keeps the source (arrays as blobs) and per-sample records; `study export`
//! writes it back, and `failscope eval` on the export gives the same numbers as on the source.

use failscope_e2e::{failscope, fixture};

#[test]
fn export_then_eval_round_trips_exactly() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    let csv = d.path().join("scores.csv");
    std::fs::write(&csv, "confidence,correct\n0.9,1\n0.8,1\n0.3,0\n0.7,0\n0.6,1\n").unwrap();
    let sources = [
        fixture("fdshifts/v011_basic"),
        fixture("fdshifts/head_logits_f16_ties"),
        csv.clone(),
    ];
    for (i, src) in sources.iter().enumerate() {
        let id = (i + 1).to_string();
        let imp = failscope_e2e::import(&db, src, None);
        assert!(imp.stdout.contains(&format!("imported study {id}")), "{}", imp.stdout);
        let show = failscope(&[
            "study".as_ref(),
            "show".as_ref(),
            id.as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
        ]);
        assert_eq!(show.code, 0, "{}", show.stderr);
        assert!(show.stdout.contains("AURC"), "{}", show.stdout);
        let out = d.path().join(format!("export{id}"));
        let exp = failscope(&[
            "study".as_ref(),
            "export".as_ref(),
            id.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--db".as_ref(),
            db.as_os_str(),
        ]);
        assert_eq!(exp.code, 0, "{}", exp.stderr);
        let target = if src.is_dir() {
            out.clone()
        } else {
            out.join("scores.csv")
        };
        let json = |p: &std::path::Path| {
            let r = failscope(&["eval".as_ref(), p.as_os_str(), "--format".as_ref(), "json".as_ref()]);
            assert_eq!(r.code, 0, "{}", r.stderr);
            r.stdout
        };
        assert_eq!(
            json(src),
            json(&target),
            "{}: export → eval must give identical metrics",
            src.display()
        );
    }
    // Per-sample records of the FD-Shifts study: one per row.
    let store = failscope::store::Store::open(&db).unwrap();
    assert_eq!(store.samples(1).unwrap().len(), 375);
    assert!(store.samples(1).unwrap().iter().any(|s| s.dataset_idx == 4));
    // Errors: unknown id, existing output folder.
    let r = failscope(&[
        "study".as_ref(),
        "show".as_ref(),
        "99".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no study with id 99"), "{}", r.stderr);
    let r = failscope(&[
        "study".as_ref(),
        "export".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        d.path().as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
}

/// A write that fails is not the user's input: exit 1, with the path and the system's reason. An
/// output folder that already exists is: exit 2. (`/proc` takes no new folders, even from root.)
#[test]
fn a_failed_write_exits_1_and_bad_input_2() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("s.db");
    let imp = failscope_e2e::import(&db, &fixture("fdshifts/v011_basic"), None);
    assert!(imp.stdout.contains("imported study 1"), "{}", imp.stdout);
    let export_to = |out: &std::path::Path| {
        failscope(&[
            "study".as_ref(),
            "export".as_ref(),
            "1".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
            "--db".as_ref(),
            db.as_os_str(),
        ])
    };
    let unwritable = std::path::Path::new("/proc/failscope-no-such-folder/export");
    let r = export_to(unwritable);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("/proc/failscope-no-such-folder: cannot create ("),
        "{}",
        r.stderr
    );
    let r = export_to(d.path());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
}
