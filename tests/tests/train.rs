//! `failscope train`: a recipe's models trained with tch and saved as checkpoint folders, which
//! `failscope infer --model <folder>` runs like a TorchScript model.

use std::ffi::OsStr;

use failscope_e2e::{failscope, image_folder, Run};

fn run(args: &[&OsStr]) -> Run {
    failscope(args)
}

#[test]
fn train_saves_checkpoints_that_infer_runs() {
    let d = tempfile::tempdir().unwrap();
    let manifest = image_folder(d.path(), 3);
    let recipe = d.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"toy\"\n[data]\nsource = {:?}\nsize = [8, 8]\n[shifts]\nhold_out_domains = [\"site2\"]\n[train]\nepochs = 2\npatience = 1\nbatch = 16\nconfidnet_epochs = 1\npretrain_epochs = 1\n",
            manifest.display().to_string()
        ),
    )
    .unwrap();
    let ckpt = d.path().join("ckpt");
    let t = run(&[
        OsStr::new("train"),
        recipe.as_os_str(),
        OsStr::new("--out"),
        ckpt.as_os_str(),
    ]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(
        t.stdout.contains("confidnet: ") && t.stdout.contains("deepgamblers: "),
        "{}",
        t.stdout
    );
    for f in [
        "model.json",
        "cnn.safetensors",
        "head.safetensors",
        "training_curve.json",
    ] {
        assert!(ckpt.join("confidnet").join(f).is_file(), "{f}");
    }
    assert!(ckpt.join("deepgamblers/cnn.safetensors").is_file());
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("confidnet/model.json")).unwrap()).unwrap();
    assert_eq!(card["classes"], serde_json::json!(["class0", "class1", "class2"]));
    assert_eq!(card["preprocess"]["size"], serde_json::json!([8, 8]));

    // Inference from the checkpoint: input size from model.json; the model's own confidence as `tcp`.
    for (method, ext) in [("confidnet", "tcp"), ("deepgamblers", "dg")] {
        let out = d.path().join(format!("exp-{method}"));
        let model = ckpt.join(method);
        let i = run(&[
            OsStr::new("infer"),
            OsStr::new("--model"),
            model.as_os_str(),
            OsStr::new("--dataset"),
            manifest.as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--mc"),
            OsStr::new("2"),
            OsStr::new("--hold-out-domain"),
            OsStr::new("site2"),
        ]);
        assert_eq!(i.code, 0, "{}", i.stderr);
        let e = run(&[
            OsStr::new("eval"),
            out.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ]);
        assert_eq!(e.code, 0, "{}", e.stderr);
        let v: serde_json::Value = serde_json::from_str(&e.stdout).unwrap();
        assert!(v["iid_study"][ext]["aurc"].is_number(), "{method}: {}", e.stdout);
        assert!(v["in_class_study_acquisition_site2"]["mcd_mi"]["aurc"].is_number());
    }

    // A checkpoint for other classes, CUDA on a machine without it, an existing output folder.
    let two = tempfile::tempdir().unwrap();
    let other = image_folder(two.path(), 2);
    let out = d.path().join("never");
    let model = ckpt.join("confidnet");
    let r = run(&[
        OsStr::new("infer"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--dataset"),
        other.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("trained for classes"), "{}", r.stderr);
    assert!(!out.exists());
    let again = d.path().join("ckpt2");
    let r = run(&[
        OsStr::new("train"),
        recipe.as_os_str(),
        OsStr::new("--out"),
        again.as_os_str(),
        OsStr::new("--device"),
        OsStr::new("cuda"),
    ]);
    match failscope::torch::load_cuda() {
        // A GPU machine with torch's NVIDIA libraries trains there.
        Ok(true) => assert_eq!(r.code, 0, "{}", r.stderr),
        // Elsewhere the error says why: here, the loader names the NVIDIA library it lacks.
        Ok(false) => assert!(r.code == 2 && r.stderr.contains("sees no CUDA device"), "{}", r.stderr),
        Err(why) => {
            assert_eq!(r.code, 2);
            assert!(
                r.stderr.contains("--device cuda") && r.stderr.contains(&why),
                "{}",
                r.stderr
            );
            assert!(why.contains("libtorch_cuda.so"), "{why}");
        }
    }
    let r = run(&[
        OsStr::new("train"),
        recipe.as_os_str(),
        OsStr::new("--out"),
        ckpt.as_os_str(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
}
