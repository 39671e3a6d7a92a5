//! The libtorch path end to end: a TorchScript model exported from PyTorch (`fixtures/make_fixtures.py`)
//! loads through tch and reproduces PyTorch's eval-mode outputs.

use failscope::torch::TorchModel;
use failscope_e2e::fixture;
use serde_json::Value;
use tch::{Kind, Tensor};

#[test]
fn tiny_cnn_matches_pytorch() {
    let model = TorchModel::load(&fixture("tiny_cnn.pt")).expect("fixture loads");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny_cnn_expected.json")).unwrap()).unwrap();
    let x = Tensor::linspace(-1.0, 1.0, 2 * 3 * 8 * 8, (Kind::Float, tch::Device::Cpu)).reshape([2, 3, 8, 8]);
    let out = model.forward(&x).unwrap();
    assert_eq!(out.logits.size(), vec![2, 3]);
    let features = out.features.expect("the fixture returns (logits, features)");
    assert_eq!(features.size(), vec![2, 4]);
    for (name, t) in [("logits", &out.logits), ("features", &features)] {
        for (i, row) in expected[name].as_array().unwrap().iter().enumerate() {
            for (k, e) in row.as_array().unwrap().iter().enumerate() {
                let got = t.double_value(&[i as i64, k as i64]);
                let e = e.as_f64().unwrap();
                assert!((got - e).abs() < 1e-5, "{name}[{i}][{k}]: {got} vs PyTorch {e}");
            }
        }
    }
}

#[test]
fn a_file_that_is_not_torchscript_is_an_input_error() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.pt");
    std::fs::write(&p, b"not a model").unwrap();
    let err = TorchModel::load(&p).err().expect("must fail");
    assert!(err.item.ends_with("model.pt"));
    assert!(err.problem.contains("not a TorchScript model"), "{err}");
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn mc_dropout_samples_while_batchnorm_stays_in_eval_mode() {
    let model = TorchModel::load(&fixture("tiny_cnn.pt")).unwrap();
    let x = Tensor::linspace(-1.0, 1.0, 2 * 3 * 8 * 8, (Kind::Float, tch::Device::Cpu)).reshape([2, 3, 8, 8]);
    let eval = model.forward(&x).unwrap();
    let eval_features = eval.features.as_ref().unwrap();
    let passes = model.forward_mc(&x, 400).unwrap();
    assert_eq!(passes.len(), 400);
    assert!(
        max_abs_diff(&passes[0].logits, &passes[1].logits) > 1e-4,
        "dropout samples differ"
    );
    // The features are computed before the Dropout layer: with BatchNorm in eval mode (running
    // statistics) they equal the eval features in every pass; batch statistics would change them.
    for p in &passes {
        assert!(
            max_abs_diff(p.features.as_ref().unwrap(), eval_features) < 1e-6,
            "BatchNorm switched to batch statistics"
        );
    }
    // Inverted dropout is unbiased before a linear layer: the MC mean approaches the eval logits.
    let mean = Tensor::stack(&passes.iter().map(|p| p.logits.shallow_clone()).collect::<Vec<_>>(), 0).mean_dim(
        0,
        false,
        Kind::Float,
    );
    assert!(
        max_abs_diff(&mean, &eval.logits) < 0.05,
        "MC mean {mean} vs eval {}",
        eval.logits
    );
    // Afterwards the model is back in eval mode, running statistics untouched.
    let again = model.forward(&x).unwrap();
    assert_eq!(max_abs_diff(&again.logits, &eval.logits), 0.0);
}
