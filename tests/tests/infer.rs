//! `failscope infer`: a PyTorch-exported TorchScript model over an image folder with shifts, written
//! as an FD-Shifts experiment that `failscope eval` scores.

use failscope_e2e::{failscope, fixture, image_folder, infer};
use serde_json::Value;

#[test]
fn infer_writes_an_experiment_that_eval_scores() {
    let d = tempfile::tempdir().unwrap();
    let manifest = image_folder(d.path(), 3);
    let out = d.path().join("experiment");
    let extra = [
        "--size",
        "8,8",
        "--mc",
        "4",
        "--hold-out-domain",
        "site2",
        "--corrupt",
        "gaussian_noise,pixelate",
        "--batch",
        "16",
        "--train",
        "0.5",
        "--val",
        "0.2",
    ];
    let r = infer(&fixture("tiny_cnn.pt"), &manifest, &out, &extra);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("acquisition_site2") && r.stdout.contains("45 rows"),
        "{}",
        r.stdout
    );
    for f in [
        "raw_logits.npz",
        "raw_logits_dist.npz",
        "encoded_output.npz",
        "train_features.npz",
        "last_layer.npz",
    ] {
        assert!(out.join("test_results").join(f).is_file(), "{f}");
    }
    // The last layer is the TorchScript model's `fc` (3 classes × 4 features), weight first.
    let layer = failscope::io::npz::read_all(&out.join("test_results/last_layer.npz")).unwrap();
    assert_eq!(
        layer.iter().map(|(_, a)| a.shape.clone()).collect::<Vec<_>>(),
        vec![vec![3, 4], vec![3]]
    );
    let train = failscope::io::npz::read(&out.join("test_results/train_features.npz"), "arr_0").unwrap();
    assert_eq!(train.shape[1], 5, "4 features, then the label");
    assert!(train.shape[0] > 10, "{:?}", train.shape);
    let e = failscope(&["eval".as_ref(), out.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    let v: Value = serde_json::from_str(&e.stdout).unwrap();
    let studies: std::collections::BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected: std::collections::BTreeSet<String> =
        ["val_tuning", "iid_study", "in_class_study_acquisition_site2"]
            .map(String::from)
            .into();
    for kind in ["gaussian_noise", "pixelate"] {
        expected.extend((1..=5).map(|s| format!("in_class_study_corruption_{kind}_{s}")));
    }
    assert_eq!(studies, expected.iter().map(String::as_str).collect());
    assert!(v["in_class_study_corruption_pixelate_5"]["mcd_waic"]["aurc"].is_number());
    assert_eq!(v["in_class_study_acquisition_site2"]["det_mcp"]["n_test"], 45.0);
    assert!(v["iid_study"]["det_mls"]["failauc"].is_number() || v["iid_study"]["det_mls"]["failauc"].is_null());
    // HEAD's feature-based CSFs, from the files above.
    for csf in ["maha", "vim", "dknn", "react_det_mcp", "react_temp_mls"] {
        assert!(
            v["iid_study"][csf]["aurc"].is_number(),
            "{csf}: {}",
            v["iid_study"][csf]
        );
    }

    // Imported into the store, every sample keeps its features and MC passes (the latent space reads them).
    let db = d.path().join("s.db");
    failscope_e2e::import(&db, &out, None);
    let store = failscope::store::Store::open(&db).unwrap();
    let features = store.features(1).unwrap().expect("features stored");
    let encoded = failscope::io::npz::read(&out.join("test_results/encoded_output.npz"), "arr_0").unwrap();
    let d_feat = encoded.shape[1] - 1;
    assert_eq!(features.dim(), (encoded.shape[0], d_feat));
    assert_eq!(features[[7, 3]], encoded.data[7 * (d_feat + 1) + 3] as f32);
    let mc = store.mc(1, 5).unwrap().expect("MC passes stored");
    assert_eq!(mc.dim(), (3, 4));
    let scores = store.scores(1).unwrap();
    assert_eq!(scores["det_mcp"].len(), encoded.shape[0]);
    assert!(scores.contains_key("mcd_waic") && scores.contains_key("det_mls") && scores.contains_key("vim"));
    // MSR of a row is its largest softmax probability.
    assert!(scores["det_mcp"].iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn a_class_count_mismatch_fails_and_leaves_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    let manifest = image_folder(d.path(), 2);
    let out = d.path().join("experiment");
    let r = infer(&fixture("tiny_cnn.pt"), &manifest, &out, &["--size", "8,8"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("model output") && r.stderr.contains("2 classes"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "no half-written experiment");
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".failscope-export"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn missing_input_size_and_bad_model_are_named() {
    let d = tempfile::tempdir().unwrap();
    let manifest = image_folder(d.path(), 3);
    let out = d.path().join("o");
    let r = infer(&fixture("tiny_cnn.pt"), &manifest, &out, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("tiny_cnn.pt") && r.stderr.contains("--size"),
        "{}",
        r.stderr
    );
    let fake = d.path().join("fake.pt");
    std::fs::write(&fake, b"PK not torchscript").unwrap();
    let r = infer(&fake, &manifest, &out, &["--size", "8,8"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fake.pt: not a TorchScript model"), "{}", r.stderr);
}

#[test]
fn a_logits_only_model_warns_and_its_logits_become_the_features() {
    let d = tempfile::tempdir().unwrap();
    let manifest = image_folder(d.path(), 3);
    let out = d.path().join("experiment");
    let r = infer(&fixture("tiny_logits_only.pt"), &manifest, &out, &["--size", "8,8"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("warning: the model returns only logits"),
        "{}",
        r.stdout
    );
    let enc = failscope::io::npz::read(&out.join("test_results/encoded_output.npz"), "arr_0").unwrap();
    let raw = failscope::io::npz::read(&out.join("test_results/raw_logits.npz"), "arr_0").unwrap();
    // Features = logits (3 columns) + dataset_idx; logits file = logits + label + dataset_idx.
    assert_eq!(enc.shape[1], 4);
    assert_eq!(enc.data[..3], raw.data[..3]);
}

#[test]
fn a_model_expecting_another_channel_count_is_named() {
    let d = tempfile::tempdir().unwrap();
    let manifest = image_folder(d.path(), 3);
    let out = d.path().join("experiment");
    let r = infer(&fixture("tiny_grey.pt"), &manifest, &out, &["--size", "8,8"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("tiny_grey.pt") && r.stderr.contains("channels"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}
