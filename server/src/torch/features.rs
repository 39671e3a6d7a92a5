//! FD-Shifts HEAD's `_maha_dist` and `_vim`, run as FD-Shifts runs them: the same libtorch
//! operations in float32 (`torch.cov`, `torch.pinverse`, `torch.linalg.eig`, `einsum`, …), in the
//! same order. Both depend on a float32 eigendecomposition or pseudo-inverse of the training
//! covariance; where its eigenvalues lie close together (ViM's principal subspace, a nearly singular
//! covariance) float32 rounding moves the scores by more than float32 units, so the float64
//! arithmetic of `failscope_shared::analysis::features` cannot give FD-Shifts' numbers there. These
//! do, bit for bit with the same libtorch on the same CPU.
//!
//! `ingest` attaches the result to the experiment's [`FeatureSet`] before it is scored.

use failscope_shared::analysis::features::{self, FeatureError, FeatureSet, TorchScores};
use tch::{Kind, TchError, Tensor};

/// Rows per product. FD-Shifts multiplies all rows at once; blocks this large change no result on
/// the sizes FD-Shifts experiments have and bound memory at a million rows.
const BLOCK: usize = 1 << 16;

/// `maha` and `vim` for every row. `logits` `(n, classes)` are the experiment's logits (ViM's
/// energy), `predicted` each row's arg-max class (maha's class mean).
pub fn head_scores(
    set: &FeatureSet,
    logits: &[f64],
    classes: usize,
    predicted: &[usize],
) -> Result<TorchScores, FeatureError> {
    let d = set.dim;
    let t = set.train.len() / d;
    if t < 2 {
        return Err(FeatureError::TooFewTrainRows(t));
    }
    let _guard = tch::no_grad_guard();
    // `train_features[:, :-1]`, float64 as FD-Shifts loads it.
    let train = Tensor::from_slice(&set.train).view([t as i64, d as i64]);
    Ok(TorchScores {
        maha: maha(set, &train, predicted)?,
        vim: vim(set, &train, logits, classes).map_err(linalg)?,
    })
}

/// A libtorch failure (a decomposition that did not converge) as the feature CSFs report it.
fn linalg(e: TchError) -> FeatureError {
    FeatureError::Linalg(e.to_string())
}

/// The experiment's features `(rows, d)` of rows `start..end`, float64 as FD-Shifts loads them.
fn rows_f64(set: &FeatureSet, start: usize, end: usize) -> Tensor {
    let d = set.dim;
    let rows: Vec<f64> = set.features[start * d..end * d].iter().map(|v| f64::from(*v)).collect();
    Tensor::from_slice(&rows).view([(end - start) as i64, d as i64])
}

fn blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(BLOCK).map(move |s| (s, (s + BLOCK).min(n)))
}

fn to_f32(t: &Tensor) -> Result<Vec<f32>, TchError> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view(-1))
}

/// `_maha_dist`: class means in `np.unique` order (float64), `icov = pinverse(cov(train.float().T))`,
/// `zm = (x − μ_ŷ).float()`, `−einsum("ij,jk,ik->i", zm, icov, zm)`.
fn maha(set: &FeatureSet, train: &Tensor, predicted: &[usize]) -> Result<Vec<f32>, FeatureError> {
    let d = set.dim;
    let mut labels = set.train_labels.clone();
    labels.sort_by(f64::total_cmp);
    labels.dedup();
    let t = set.train_labels.len();
    // numpy's float64 mean (pairwise summation) rounds to the same float32 as this sum but for
    // ties at the last float64 bit, which the float32 cast of `zm` then absorbs.
    let mut means = Vec::with_capacity(labels.len() * d);
    for &l in &labels {
        let rows: Vec<usize> = (0..t).filter(|&i| set.train_labels[i] == l).collect();
        means.extend((0..d).map(|j| rows.iter().map(|&i| set.train[i * d + j]).sum::<f64>() / rows.len() as f64));
    }
    if let Some(&missing) = predicted.iter().find(|&&p| p >= labels.len()) {
        return Err(FeatureError::NoClassMean(missing));
    }
    let means = Tensor::from_slice(&means).view([labels.len() as i64, d as i64]);
    let icov = train
        .to_kind(Kind::Float)
        .tr()
        .f_cov(1, None::<Tensor>, None::<Tensor>)
        .and_then(|c| c.f_pinverse(1e-15))
        .map_err(linalg)?;
    let mut out = Vec::with_capacity(predicted.len());
    for (start, end) in blocks(predicted.len()) {
        let idx: Vec<i64> = predicted[start..end].iter().map(|&p| p as i64).collect();
        let zm = (rows_f64(set, start, end) - means.index_select(0, &Tensor::from_slice(&idx))).to_kind(Kind::Float);
        let m = -Tensor::f_einsum("ij,jk,ik->i", &[&zm, &icov, &zm], None::<&[i64]>).map_err(linalg)?;
        out.extend(to_f32(&m).map_err(linalg)?);
    }
    Ok(out)
}

/// `_vim` (not a DeepGamblers model: every output of the last layer is a class logit).
fn vim(set: &FeatureSet, train: &Tensor, logits: &[f64], classes: usize) -> Result<Vec<f32>, TchError> {
    let d = set.dim as i64;
    let principal = features::vim_principal(set.dim) as i64;
    let k = set.bias.len() as i64;
    let w = Tensor::from_slice(&set.weight).view([k, d]).to_kind(Kind::Float);
    let b = Tensor::from_slice(&set.bias).to_kind(Kind::Float);
    let u = -w.f_pinverse(1e-15)?.f_matmul(&b)?;
    let train_f = train.to_kind(Kind::Float);
    let cov = (&train_f - &u).tr().f_cov(1, None::<Tensor>, None::<Tensor>)?;
    let (values, vectors) = cov.f_linalg_eig()?;
    let (values, vectors) = (values.real(), vectors.real());
    let order = (values * -1).argsort(-1, false).narrow(0, principal, d - principal);
    let ns = vectors.tr().index_select(0, &order).tr();
    let logit_train = train_f.f_matmul(&w.tr())? + &b;
    let vlogit_train = (&train_f - &u)
        .f_matmul(&ns)?
        .f_linalg_norm(2, [-1i64].as_slice(), false, None::<Kind>)?;
    let alpha = logit_train.max_dim(-1, false).0.mean(None::<Kind>) / vlogit_train.mean(None::<Kind>);
    let n = logits.len() / classes;
    let mut out = Vec::with_capacity(n);
    for (start, end) in blocks(n) {
        let tlogits = Tensor::from_slice(&logits[start * classes..end * classes])
            .view([(end - start) as i64, classes as i64])
            .to_kind(Kind::Float);
        // `torch.tensor(features, dtype=torch.float)`: the float64 copy holds float32 values, so
        // the float32 features as they are.
        let tfeatures =
            Tensor::from_slice(&set.features[start * set.dim..end * set.dim]).view([(end - start) as i64, d]);
        let energy = tlogits.f_logsumexp([-1i64].as_slice(), false)?;
        let vlogit = (tfeatures - &u)
            .f_matmul(&ns)?
            .f_linalg_norm(2, [-1i64].as_slice(), false, None::<Kind>)?
            * &alpha;
        out.extend(to_f32(&(-vlogit + energy))?);
    }
    Ok(out)
}
