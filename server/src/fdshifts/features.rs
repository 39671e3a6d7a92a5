//! HEAD's feature files beside `encoded_output.npz`: `train_features.npz` (training features, then
//! the label) and `last_layer.npz` (the classifier's weight and bias, the first two arrays in
//! stored order, whatever their keys — FD-Shifts takes `tuple(npz.values())`).

use std::path::Path;

use failscope_shared::analysis::features::FeatureSet;
use ndarray::Array2;

use crate::error::InputError;
use crate::io::npz;

/// The training features file.
pub const TRAIN_FEATURES: &str = "train_features.npz";
/// The last layer file.
pub const LAST_LAYER: &str = "last_layer.npz";

/// Reads the feature CSFs' inputs when both files are there (`None` otherwise: FD-Shifts HEAD adds
/// the feature CSFs only with all three files). `features` are the rows' features, already read.
pub fn read(test_dir: &Path, features: &Array2<f32>) -> Result<Option<FeatureSet>, InputError> {
    let (train_path, layer_path) = (test_dir.join(TRAIN_FEATURES), test_dir.join(LAST_LAYER));
    if !train_path.is_file() || !layer_path.is_file() {
        return Ok(None);
    }
    let d = features.ncols();
    let train = npz::read(&train_path, "arr_0")?;
    let layout = format!("(N_train, d + 1 = {}): training features, then the label", d + 1);
    train.expect_ndim(&train_path, 2, &layout)?;
    if train.shape[1] != d + 1 {
        return Err(InputError::file(
            &train_path,
            format!("array has shape {:?}, expected {layout}", train.shape),
        ));
    }
    if let Some(i) = train.data.iter().position(|v| !v.is_finite()) {
        return Err(InputError::file(
            &train_path,
            format!(
                "row {}: {} is not a finite feature or label",
                i / (d + 1),
                train.data[i]
            ),
        ));
    }
    let (mut values, mut labels) = (
        Vec::with_capacity(train.shape[0] * d),
        Vec::with_capacity(train.shape[0]),
    );
    for row in train.data.chunks(d + 1) {
        values.extend_from_slice(&row[..d]);
        labels.push(row[d]);
    }
    let arrays = npz::read_all(&layer_path)?;
    let [(_, w), (_, b), ..] = arrays.as_slice() else {
        return Err(InputError::file(
            &layer_path,
            format!(
                "holds {} array(s), expected two: the weight (k, {d}) and the bias (k,)",
                arrays.len()
            ),
        ));
    };
    let k = b.data.len();
    if w.shape != [k, d] || b.shape.len() != 1 || k == 0 {
        return Err(InputError::file(
            &layer_path,
            format!(
                "weight {:?} and bias {:?}: expected (k, {d}) and (k,) — d from encoded_output.npz",
                w.shape, b.shape
            ),
        ));
    }
    if w.data.iter().chain(&b.data).any(|v| !v.is_finite()) {
        return Err(InputError::file(&layer_path, "the weight or bias holds NaN or Inf"));
    }
    Ok(Some(FeatureSet {
        features: features.iter().copied().collect(),
        dim: d,
        train: values,
        train_labels: labels,
        weight: w.data.clone(),
        bias: b.data.clone(),
        torch: None,
    }))
}
