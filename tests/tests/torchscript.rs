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
