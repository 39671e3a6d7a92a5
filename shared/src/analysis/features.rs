//! FD-Shifts HEAD's feature-based CSFs (`fd_shifts.analysis`: `_maha_dist`, `_vim`, `_deep_knn`,
//! `_react`), computed from the penultimate features of every row, the training set's features and
//! the last layer. FD-Shifts computes them in float32 with torch (and faiss for DkNN); here the sums
//! run in float64 over the same float32 inputs and each result is rounded to float32 where FD-Shifts'
//! array is float32, so every score lies within float32 rounding of FD-Shifts' own.
//!
//! - `maha`: −(x − μ_ŷ)ᵀ Σ⁺ (x − μ_ŷ), class means μ and covariance Σ of the training features
//!   (`np.unique` label order), ŷ the predicted class.
//! - `vim`: energy of the logits − α·‖(x − u)·N‖, N the eigenvectors of the training covariance
//!   outside the top `D` (1000 for 2048+ features, 512 for 768+, else half), u = −W⁺b, α scaling
//!   the residual to the training logits.
//! - `dknn`: −(squared distance to the 50th nearest of the first 1000 training features).
//! - ReAct: logits of the last layer on features clipped at the 0.99 quantile of all training
//!   feature values (`react_det_mcp`, `react_det_mls`, `react_temp_mls`, `react_energy_mls`).

use linfa_linalg::eigh::Eigh;
use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::csf;

/// What the feature CSFs need: the features of every row, the training features with their labels,
/// and the last layer `logits = W·x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    /// `(n, d)` row-major features of every row of the experiment (`encoded_output.npz`).
    pub features: Vec<f32>,
    /// `d`.
    pub dim: usize,
    /// `(n_train, d)` row-major training features (`train_features.npz`).
    pub train: Vec<f64>,
    /// The training rows' labels (the last column of `train_features.npz`).
    pub train_labels: Vec<f64>,
    /// `(k, d)` weight of the last layer (the first array of `last_layer.npz`).
    pub weight: Vec<f64>,
    /// `(k,)` bias (the second array).
    pub bias: Vec<f64>,
}

/// Why the feature CSFs cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// A predicted class has no training rows to take a mean from.
    #[error("class {0} is predicted but has no training features (train_features.npz), so maha has no class mean")]
    NoClassMean(usize),
    /// An eigendecomposition did not converge.
    #[error("the eigendecomposition of the training features' covariance failed ({0})")]
    Linalg(String),
    /// Fewer than two training rows: no covariance.
    #[error("train_features.npz has {0} row(s): the covariance needs at least two")]
    TooFewTrainRows(usize),
}

/// Every row's feature-based scores, as FD-Shifts holds them (float32 where it has float32).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureScores {
    /// `_maha_dist` (float32).
    pub maha: Vec<f32>,
    /// `_vim_score` (float32).
    pub vim: Vec<f32>,
    /// `_deep_knn` (float32).
    pub dknn: Vec<f32>,
    /// `(n, k)` ReAct logits (float64: float32 products plus the float64 bias).
    pub react_logits: Vec<f64>,
    /// `k`.
    pub classes: usize,
}

impl FeatureSet {
    fn n(&self) -> usize {
        self.features.len() / self.dim
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    fn train_rows(&self) -> usize {
        self.train.len() / self.dim
    }

    fn train_f32(&self) -> Array2<f64> {
        Array2::from_shape_fn((self.train_rows(), self.dim), |(i, j)| {
            f64::from(self.train[i * self.dim + j] as f32)
        })
    }

    fn weight_f32(&self) -> Array2<f64> {
        let k = self.bias.len();
        Array2::from_shape_fn((k, self.dim), |(i, j)| f64::from(self.weight[i * self.dim + j] as f32))
    }

    /// Every feature score. `logits` `(n, c)` are the experiment's logits (ViM's energy term);
    /// `predicted` each row's arg-max class (maha's class mean).
    pub fn scores(&self, logits: &[f64], classes: usize, predicted: &[usize]) -> Result<FeatureScores, FeatureError> {
        let t = self.train_rows();
        if t < 2 {
            return Err(FeatureError::TooFewTrainRows(t));
        }
        let react_logits = self.react();
        Ok(FeatureScores {
            maha: self.maha(predicted)?,
            vim: self.vim(logits, classes)?,
            dknn: self.dknn(),
            classes: self.bias.len(),
            react_logits,
        })
    }

    /// `_maha_dist`.
    fn maha(&self, predicted: &[usize]) -> Result<Vec<f32>, FeatureError> {
        let d = self.dim;
        // Class means in np.unique order of the (float) labels, each a float64 mean.
        let mut labels: Vec<f64> = self.train_labels.clone();
        labels.sort_by(f64::total_cmp);
        labels.dedup();
        let means: Vec<Vec<f64>> = labels
            .iter()
            .map(|&l| {
                let rows: Vec<usize> = (0..self.train_rows()).filter(|&i| self.train_labels[i] == l).collect();
                (0..d)
                    .map(|j| rows.iter().map(|&i| self.train[i * d + j]).sum::<f64>() / rows.len() as f64)
                    .collect()
            })
            .collect();
        let icov = pinv_symmetric(&covariance(&self.train_f32().view()))?;
        (0..self.n())
            .map(|i| {
                let mean = means.get(predicted[i]).ok_or(FeatureError::NoClassMean(predicted[i]))?;
                let zm: Array1<f64> = self
                    .row(i)
                    .iter()
                    .zip(mean)
                    .map(|(x, m)| f64::from((f64::from(*x) - m) as f32))
                    .collect();
                Ok(-(zm.dot(&icov.dot(&zm))) as f32)
            })
            .collect()
    }

    /// `_vim` (not a DeepGamblers model: every output of the last layer is a class logit).
    fn vim(&self, logits: &[f64], classes: usize) -> Result<Vec<f32>, FeatureError> {
        let d = self.dim;
        let principal = if d >= 2048 {
            1000
        } else if d >= 768 {
            512
        } else {
            d / 2
        };
        let w = self.weight_f32();
        let b: Array1<f64> = self.bias.iter().map(|v| f64::from(*v as f32)).collect();
        // u = −W⁺b with W⁺ = Wᵀ (W Wᵀ)⁺.
        let u: Array1<f64> = -w.t().dot(&pinv_symmetric(&w.dot(&w.t()))?.dot(&b));
        let train = self.train_f32();
        let centred = &train - &u.view().insert_axis(Axis(0));
        let (values, vectors) = covariance(&centred.view())
            .eigh()
            .map_err(|e| FeatureError::Linalg(e.to_string()))?;
        // The complement of the top `principal` eigenvectors (torch.argsort(eig_vals * -1)[D:]).
        let mut by_value: Vec<usize> = (0..d).collect();
        by_value.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let ns = vectors.select(Axis(1), &by_value[principal.min(d)..]);
        let residual = |x: ndarray::ArrayView1<f64>| -> f64 { (&x - &u).dot(&ns).mapv(|v| v * v).sum().sqrt() };
        let train_logits = train.dot(&w.t()) + &b;
        let t = train.nrows() as f64;
        let max_logit_mean = train_logits
            .rows()
            .into_iter()
            .map(|r| r.fold(f64::NEG_INFINITY, |m, v| m.max(f64::from(*v as f32))))
            .sum::<f64>()
            / t;
        let residual_mean = train.rows().into_iter().map(residual).sum::<f64>() / t;
        let alpha = max_logit_mean / residual_mean;
        Ok((0..self.n())
            .map(|i| {
                let row: Vec<f64> = logits[i * classes..(i + 1) * classes]
                    .iter()
                    .map(|z| f64::from(*z as f32))
                    .collect();
                let energy = f64::from(csf::logsumexp(&row) as f32);
                let x: Array1<f64> = self.row(i).iter().map(|v| f64::from(*v)).collect();
                let vlogit = f64::from((residual(x.view()) * alpha) as f32);
                (-vlogit + energy) as f32
            })
            .collect())
    }

    /// `_deep_knn`: faiss `IndexFlatL2` over the first 1000 training rows, k = 50.
    fn dknn(&self) -> Vec<f32> {
        const K: usize = 50;
        let d = self.dim;
        let bank: Vec<f32> = self.train[..self.train_rows().min(1000) * d]
            .iter()
            .map(|v| *v as f32)
            .collect();
        let bank_rows = bank.len() / d;
        (0..self.n())
            .map(|i| {
                if bank_rows < K {
                    // faiss fills missing neighbours with the largest float.
                    return -f32::MAX;
                }
                let x = self.row(i);
                let mut dist: Vec<f64> = bank
                    .chunks(d)
                    .map(|y| {
                        x.iter()
                            .zip(y)
                            .map(|(a, b)| {
                                let t = f64::from(*a) - f64::from(*b);
                                t * t
                            })
                            .sum()
                    })
                    .collect();
                let (_, kth, _) = dist.select_nth_unstable_by(K - 1, f64::total_cmp);
                -(*kth as f32)
            })
            .collect()
    }

    /// `_react`: float32 logits of the clipped features, plus the float64 bias.
    fn react(&self) -> Vec<f64> {
        let clip = super::numpy::quantile(&self.train, 0.99).unwrap_or(f64::INFINITY) as f32;
        let k = self.bias.len();
        let d = self.dim;
        let w: Vec<f32> = self.weight.iter().map(|v| *v as f32).collect();
        let mut out = Vec::with_capacity(self.n() * k);
        for i in 0..self.n() {
            let x: Vec<f32> = self.row(i).iter().map(|v| v.min(clip)).collect();
            for c in 0..k {
                let dot: f64 = x
                    .iter()
                    .zip(&w[c * d..(c + 1) * d])
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                out.push(f64::from(dot as f32) + self.bias[c]);
            }
        }
        out
    }
}

/// `torch.cov(x.T)`: the unbiased covariance of the rows of `x`.
fn covariance(x: &ArrayView2<f64>) -> Array2<f64> {
    let n = x.nrows() as f64;
    let mean = x.mean_axis(Axis(0)).expect("at least one row");
    let centred = x - &mean.insert_axis(Axis(0));
    centred.t().dot(&centred) / (n - 1.0)
}

/// `torch.pinverse` of a symmetric matrix (rcond 1e-15): eigenvalues below `1e-15 · max |λ|` are
/// dropped, the others inverted.
fn pinv_symmetric(a: &Array2<f64>) -> Result<Array2<f64>, FeatureError> {
    let (values, vectors) = a.eigh().map_err(|e| FeatureError::Linalg(e.to_string()))?;
    let cutoff = 1e-15 * values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let inv: Array1<f64> = values.mapv(|v| if v.abs() > cutoff { 1.0 / v } else { 0.0 });
    Ok((&vectors * &inv.insert_axis(Axis(0))).dot(&vectors.t()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes in 4-D, 40 training rows.
    fn set() -> FeatureSet {
        let d = 4;
        let mut train = Vec::new();
        let mut labels = Vec::new();
        for i in 0..40 {
            let c = i % 2;
            let x = f64::from(i as u32) / 40.0;
            train.extend([
                c as f64 * 2.0 + x,
                -(c as f64) + x * x,
                (x * 7.0).sin(),
                (x * 3.0).cos(),
            ]);
            labels.push(c as f64);
        }
        FeatureSet {
            features: vec![0.5, 0.1, 0.2, 0.9, 2.5, -1.0, 0.0, 0.3],
            dim: d,
            train,
            train_labels: labels,
            weight: vec![1.0, 0.0, 0.5, 0.0, -1.0, 0.5, 0.0, 0.2],
            bias: vec![0.1, -0.2],
        }
    }

    #[test]
    fn maha_is_zero_at_a_class_mean_and_negative_elsewhere() {
        let mut s = set();
        // Row 0 := the mean of class 0.
        let mean0: Vec<f32> = (0..4)
            .map(|j| ((0..40).step_by(2).map(|i| s.train[i * 4 + j]).sum::<f64>() / 20.0) as f32)
            .collect();
        s.features[..4].copy_from_slice(&mean0);
        let maha = s.maha(&[0, 1]).unwrap();
        assert!(maha[0].abs() < 1e-5, "{}", maha[0]);
        assert!(maha[1] < -1.0);
        assert_eq!(s.maha(&[2, 0]), Err(FeatureError::NoClassMean(2)));
    }

    #[test]
    fn symmetric_pseudo_inverse_inverts_and_drops_null_directions() {
        let a = ndarray::arr2(&[[2.0, 1.0], [1.0, 2.0]]);
        let p = pinv_symmetric(&a).unwrap();
        let id = a.dot(&p);
        assert!((id[[0, 0]] - 1.0).abs() < 1e-12 && id[[0, 1]].abs() < 1e-12);
        let singular = ndarray::arr2(&[[1.0, 1.0], [1.0, 1.0]]);
        let p = pinv_symmetric(&singular).unwrap();
        assert!((p[[0, 0]] - 0.25).abs() < 1e-12, "{p}");
    }

    #[test]
    fn dknn_and_react_by_hand() {
        let s = set();
        // Fewer than 50 training rows: faiss reports the largest float.
        assert_eq!(s.dknn(), vec![-f32::MAX, -f32::MAX]);
        let r = s.react();
        assert_eq!(r.len(), 4);
        // The clip is far above row 0's values, so its ReAct logits are the plain logits.
        let plain = 0.5f64 * 1.0 + 0.2f32 as f64 * 0.5;
        assert!((r[0] - (f64::from(plain as f32) + 0.1)).abs() < 1e-7, "{}", r[0]);
        let v = s.vim(&[1.0, 0.0, 0.0, 1.0], 2).unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
    }
}
