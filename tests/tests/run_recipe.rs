//! `failscope run`: a recipe end to end on a small image folder — training (CNN + ConfidNet,
//! DeepGamblers), inference with shifts, FD-Shifts folders, metrics and the store.

use failscope_e2e::failscope;
use serde_json::Value;

/// Rows' keys as `match_rows` takes them.
fn keys(k: &[(String, Option<String>)]) -> Vec<(&str, Option<&str>)> {
    k.iter().map(|(set, id)| (set.as_str(), id.as_deref())).collect()
}

#[test]
fn a_small_recipe_trains_infers_scores_and_stores() {
    let d = tempfile::tempdir().unwrap();
    // Two classes told apart by colour, at two sites; site2 held out.
    let mut csv = String::from("path,label,domain,group\n");
    for i in 0..160u32 {
        let label = i % 2;
        let img = image::RgbImage::from_fn(12, 12, |x, y| {
            let n = ((x * 7 + y * 13 + i * 31) % 50) as u8;
            if label == 0 {
                image::Rgb([180 + n / 2, 60 + n, 60])
            } else {
                image::Rgb([60 + n, 90, 170 + n / 2])
            }
        });
        img.save(d.path().join(format!("i{i}.png"))).unwrap();
        csv.push_str(&format!(
            "i{i}.png,{},site{},g{i}\n",
            ["red", "blue"][label as usize],
            1 + i % 4 / 3
        ));
    }
    std::fs::write(d.path().join("m.csv"), csv).unwrap();
    let recipe = d.path().join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"toy\"\n[data]\nsource = \"{}\"\nsize = [12, 12]\n[shifts]\nhold_out_domains = [\"site2\"]\ncorruptions = [\"contrast\"]\ntrain = 0.6\nval = 0.2\n[train]\nepochs = 4\nbatch = 16\npretrain_epochs = 1\nconfidnet_epochs = 2\n[infer]\nmc = 3\n",
            d.path().join("m.csv").display()
        ),
    )
    .unwrap();
    let out = d.path().join("runs");
    let db = d.path().join("s.db");
    let r = failscope(&[
        "run".as_ref(),
        recipe.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--db".as_ref(),
        db.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("toy / confidnet") && r.stdout.contains("toy / deepgamblers"),
        "{}",
        r.stdout
    );
    for (method, ext) in [("confidnet", "tcp"), ("deepgamblers", "dg")] {
        let dir = out.join(method);
        assert!(dir.join("test_results/external_confids.npz").is_file());
        let curve: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("training_curve.json")).unwrap()).unwrap();
        assert!(!curve.as_array().unwrap().is_empty());
        let e = failscope(&["eval".as_ref(), dir.as_os_str(), "--format".as_ref(), "json".as_ref()]);
        assert_eq!(e.code, 0, "{}", e.stderr);
        let v: Value = serde_json::from_str(&e.stdout).unwrap();
        let iid = &v["iid_study"];
        assert!(
            iid["det_mcp"]["accuracy"].as_f64().unwrap() > 0.8,
            "colour is easy: {}",
            iid["det_mcp"]["accuracy"]
        );
        assert!(
            iid[ext]["aurc"].is_number(),
            "{method}: the trained CSF is scored as {ext}"
        );
        assert!(v["in_class_study_acquisition_site2"]["mcd_pe"]["aurc"].is_number());
        assert!(v["in_class_study_corruption_contrast_5"].is_object());
        // The trained CNN's last layer (class outputs only) and training features feed HEAD's
        // feature-based CSFs.
        let layer = failscope::io::npz::read_all(&dir.join("test_results/last_layer.npz")).unwrap();
        assert_eq!(
            layer[0].1.shape,
            vec![2, failscope::train::FEATURES as usize],
            "{method}"
        );
        for csf in ["maha", "vim", "dknn", "react_energy_mls"] {
            assert!(iid[csf]["aurc"].is_number(), "{method}/{csf}");
        }
    }
    let list = failscope(&["study".as_ref(), "list".as_ref(), "--db".as_ref(), db.as_os_str()]);
    assert!(
        list.stdout.contains("toy/confidnet") && list.stdout.contains("toy/deepgamblers"),
        "{}",
        list.stdout
    );
    // The two models' studies hold the same samples, with ids: the compare view pairs every row.
    let store = failscope::store::Store::open(&db).unwrap();
    let (k1, k2) = (store.row_keys(1).unwrap(), store.row_keys(2).unwrap());
    assert!(k1.iter().all(|k| k.1.is_some()), "every row has its sample id");
    let (a, b) = (keys(&k1), keys(&k2));
    let rows = failscope_shared::analysis::compare::match_rows(&a, &b);
    assert!(
        rows.iter().all(|&r| r != u32::MAX),
        "every row of one model is in the other's study"
    );
    assert!(rows.iter().enumerate().all(|(r, &m)| a[r] == b[m as usize]));
    // A bad recipe is named.
    std::fs::write(&recipe, "name = \"x\"\n[data]\nsource = \"ham10000\"\nsize = [8]\n").unwrap();
    let bad = failscope(&[
        "run".as_ref(),
        recipe.as_os_str(),
        "--out".as_ref(),
        d.path().join("o2").as_os_str(),
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("r.toml: not a valid recipe"), "{}", bad.stderr);
}
