//! FD-Shifts HEAD's feature-based CSFs (`fd_shifts.analysis`: `_maha_dist`, `_vim`, `_deep_knn`,
//! `_react`), computed from the penultimate features of every row, the training set's features and
//! the last layer. FD-Shifts computes them in float32 with torch (and faiss for DkNN); here the sums
//! run in float64 over the same float32 inputs and each result is rounded to float32 where FD-Shifts'
//! array is float32, so every score lies within float32 rounding of FD-Shifts' own — but for `maha`
//! and `vim`, whose float32 eigendecomposition and pseudo-inverse can move FD-Shifts' scores by more
//! where eigenvalues lie close together. A caller with libtorch (the server) runs those two as
//! FD-Shifts does and hands them in as [`TorchScores`]; this crate takes them as given.
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

/// Rows per matrix product (the products are the cost: n × d × d for maha, n × 1000 × d for dknn).
const BLOCK: usize = 2048;

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
    /// `maha` and `vim` as FD-Shifts' own float32 torch code computes them, when the caller ran it;
    /// [`FeatureSet::scores`] then uses these instead of its float64 ones.
    pub torch: Option<TorchScores>,
}

/// `maha` and `vim` of every row, computed by FD-Shifts' float32 torch operations.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchScores {
    /// `_maha_dist`.
    pub maha: Vec<f32>,
    /// `_vim`.
    pub vim: Vec<f32>,
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

    /// Rows `start..end` of the features as a float64 matrix (exact: they are float32 values).
    fn block(&self, start: usize, end: usize) -> Array2<f64> {
        let d = self.dim;
        Array2::from_shape_fn((end - start, d), |(i, j)| f64::from(self.features[(start + i) * d + j]))
    }

    /// The row ranges the products below run over: bounded memory at a million rows.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let n = self.n();
        (0..n).step_by(BLOCK).map(move |s| (s, (s + BLOCK).min(n)))
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
    /// `predicted` each row's arg-max class (maha's class mean). `maha` and `vim` are the
    /// [`TorchScores`] handed in, when there are.
    pub fn scores(&self, logits: &[f64], classes: usize, predicted: &[usize]) -> Result<FeatureScores, FeatureError> {
        let t = self.train_rows();
        if t < 2 {
            return Err(FeatureError::TooFewTrainRows(t));
        }
        if let Some(torch) = &self.torch {
            return Ok(FeatureScores {
                maha: torch.maha.clone(),
                vim: torch.vim.clone(),
                dknn: self.dknn(),
                classes: self.bias.len(),
                react_logits: self.react(),
            });
        }
        // One eigendecomposition of the training covariance serves both maha (its pseudo-inverse)
        // and ViM (its principal subspace; FD-Shifts centres on u first, which leaves it unchanged).
        let (values, vectors) = covariance(&self.train_f32().view())
            .eigh()
            .map_err(|e| FeatureError::Linalg(e.to_string()))?;
        Ok(FeatureScores {
            maha: self.maha(predicted, &pinv_from_eigen(&values, &vectors))?,
            vim: self.vim(logits, classes, &values, &vectors)?,
            dknn: self.dknn(),
            classes: self.bias.len(),
            react_logits: self.react(),
        })
    }

    /// `_maha_dist`.
    fn maha(&self, predicted: &[usize], icov: &Array2<f64>) -> Result<Vec<f32>, FeatureError> {
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
        let mut out = Vec::with_capacity(self.n());
        for (start, end) in self.blocks() {
            // zm = float32(x − μ_ŷ), then −Σ_j zm_j (Σ⁺ zm)_j for every row of the block.
            let mut zm = self.block(start, end);
            for (r, mut row) in zm.rows_mut().into_iter().enumerate() {
                let class = predicted[start + r];
                let mean = means.get(class).ok_or(FeatureError::NoClassMean(class))?;
                row.iter_mut()
                    .zip(mean)
                    .for_each(|(x, m)| *x = f64::from((*x - m) as f32));
            }
            let projected = zm.dot(icov);
            out.extend(
                zm.rows()
                    .into_iter()
                    .zip(projected.rows())
                    .map(|(z, p)| -(z.dot(&p)) as f32),
            );
        }
        Ok(out)
    }

    /// `_vim` (not a DeepGamblers model: every output of the last layer is a class logit).
    fn vim(
        &self,
        logits: &[f64],
        classes: usize,
        values: &Array1<f64>,
        vectors: &Array2<f64>,
    ) -> Result<Vec<f32>, FeatureError> {
        let d = self.dim;
        let principal = vim_principal(d);
        let w = self.weight_f32();
        let b: Array1<f64> = self.bias.iter().map(|v| f64::from(*v as f32)).collect();
        // u = −W⁺b with W⁺ = Wᵀ (W Wᵀ)⁺.
        let u: Array1<f64> = -w.t().dot(&pinv_symmetric(&w.dot(&w.t()))?.dot(&b));
        let train = self.train_f32();
        let centred = &train - &u.view().insert_axis(Axis(0));
        // The complement of the top `principal` eigenvectors (torch.argsort(eig_vals * -1)[D:]).
        let mut by_value: Vec<usize> = (0..d).collect();
        by_value.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let ns = vectors.select(Axis(1), &by_value[principal.min(d)..]);

        let train_logits = train.dot(&w.t()) + &b;
        let t = train.nrows() as f64;
        let max_logit_mean = train_logits
            .rows()
            .into_iter()
            .map(|r| r.fold(f64::NEG_INFINITY, |m, v| m.max(f64::from(*v as f32))))
            .sum::<f64>()
            / t;
        let residual_mean = centred
            .dot(&ns)
            .rows()
            .into_iter()
            .map(|r| r.dot(&r).sqrt())
            .sum::<f64>()
            / t;
        let alpha = max_logit_mean / residual_mean;
        let mut out = Vec::with_capacity(self.n());
        for (start, end) in self.blocks() {
            let residuals = (self.block(start, end) - u.view().insert_axis(Axis(0))).dot(&ns);
            for (r, res) in residuals.rows().into_iter().enumerate() {
                let i = start + r;
                let row: Vec<f64> = logits[i * classes..(i + 1) * classes]
                    .iter()
                    .map(|z| f64::from(*z as f32))
                    .collect();
                let energy = f64::from(csf::logsumexp(&row) as f32);
                let vlogit = f64::from((res.dot(&res).sqrt() * alpha) as f32);
                out.push((-vlogit + energy) as f32);
            }
        }
        Ok(out)
    }

    /// `_deep_knn`: faiss `IndexFlatL2` over the first 1000 training rows, k = 50. Squared
    /// distances as faiss computes them for a batch of queries, ‖x‖² + ‖y‖² − 2·x·y (in float64).
    fn dknn(&self) -> Vec<f32> {
        const K: usize = 50;
        let d = self.dim;
        let bank_rows = self.train_rows().min(1000);
        if bank_rows < K {
            // faiss fills missing neighbours with the largest float.
            return vec![-f32::MAX; self.n()];
        }
        let bank = Array2::from_shape_fn((bank_rows, d), |(i, j)| f64::from(self.train[i * d + j] as f32));
        let bank_norms: Vec<f64> = bank.rows().into_iter().map(|r| r.dot(&r)).collect();
        let mut out = Vec::with_capacity(self.n());
        for (start, end) in self.blocks() {
            let x = self.block(start, end);
            let products = x.dot(&bank.t());
            for (xr, pr) in x.rows().into_iter().zip(products.rows()) {
                let xn = xr.dot(&xr);
                let mut dist: Vec<f64> = pr
                    .iter()
                    .zip(&bank_norms)
                    .map(|(p, yn)| (xn + yn - 2.0 * p).max(0.0))
                    .collect();
                let (_, kth, _) = dist.select_nth_unstable_by(K - 1, f64::total_cmp);
                out.push(-(*kth as f32));
            }
        }
        out
    }

    /// `_react`: float32 logits of the clipped features, plus the float64 bias.
    fn react(&self) -> Vec<f64> {
        let clip = f64::from(super::numpy::quantile(&self.train, 0.99).unwrap_or(f64::INFINITY) as f32);
        let w = self.weight_f32();
        let mut out = Vec::with_capacity(self.n() * self.bias.len());
        for (start, end) in self.blocks() {
            let logits = self.block(start, end).mapv(|v| v.min(clip)).dot(&w.t());
            for row in logits.rows() {
                out.extend(row.iter().zip(&self.bias).map(|(z, b)| f64::from(*z as f32) + b));
            }
        }
        out
    }
}

/// ViM's `D`, the principal dimensions left out of the residual: 1000 for 2048+ features, 512 for
/// 768+, else half.
pub fn vim_principal(dim: usize) -> usize {
    if dim >= 2048 {
        1000
    } else if dim >= 768 {
        512
    } else {
        dim / 2
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
    Ok(pinv_from_eigen(&values, &vectors))
}

/// The pseudo-inverse from an eigendecomposition `A = V diag(λ) Vᵀ`.
fn pinv_from_eigen(values: &Array1<f64>, vectors: &Array2<f64>) -> Array2<f64> {
    let cutoff = 1e-15 * values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let inv: Array1<f64> = values.mapv(|v| if v.abs() > cutoff { 1.0 / v } else { 0.0 });
    (vectors * &inv.insert_axis(Axis(0))).dot(&vectors.t())
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
            torch: None,
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
        let icov = pinv_symmetric(&covariance(&s.train_f32().view())).unwrap();
        let maha = s.maha(&[0, 1], &icov).unwrap();
        assert!(maha[0].abs() < 1e-5, "{}", maha[0]);
        assert!(maha[1] < -1.0);
        assert_eq!(s.maha(&[2, 0], &icov), Err(FeatureError::NoClassMean(2)));
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
        let scores = s.scores(&[1.0, 0.0, 0.0, 1.0], 2, &[0, 1]).unwrap();
        assert!(scores.vim.iter().chain(&scores.maha).all(|x| x.is_finite()));
    }
}
