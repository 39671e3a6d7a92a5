//! The latent space of a study: PCA (the covariance's eigenvectors, by faer) → t-SNE over the union of all test sets
//! ([`tsne`]), in 2-D (FFT-accelerated, [`fft`]) or 3-D (parallel Barnes-Hut, [`octree`]), or
//! UMAP ([`umap`]);
//! clustering ([`cluster`]);
//! nearest neighbours (exact: [`knn`]; by partition from 10,000 rows: [`ivf`]); embedding quality
//! ([`quality`]).
//!
//! Invariant: every function here is pure (features in, numbers out) and validates its input with
//! an [`InputError`] instead of panicking; caching and jobs live in [`jobs`].

pub mod affinity;
pub mod ann;
pub mod attract;
pub mod cluster;
pub mod fft;
pub mod ivf;
pub mod jobs;
pub mod knn;
pub mod live;
pub mod octree;
pub mod quality;
pub mod tsne;
pub mod umap;

use failscope_shared::api::ParamError;
use ndarray::{s, Array2, ArrayView2, Axis};

use crate::error::InputError;

pub use failscope_shared::api::{EmbedParams, Layout};
pub use live::Live;

pub use std::ops::ControlFlow;

/// A progress callback: stage name and the fraction of it done. It answers `Break` to stop the
/// work at this step (a cancelled job), `Continue` to go on.
pub type Progress<'a> = &'a (dyn Fn(&str, f64) -> ControlFlow<()> + Sync);

/// Why an embedding did not come out.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Bad parameters or features.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The progress callback asked to stop.
    #[error("cancelled")]
    Cancelled,
}

/// Reports a step; `Err(Cancelled)` when the callback asks to stop.
fn step(progress: Progress<'_>, stage: &str, fraction: f64) -> Result<(), EmbedError> {
    match progress(stage, fraction) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(EmbedError::Cancelled),
    }
}

fn bad(problem: impl Into<String>) -> InputError {
    InputError::item("features", problem)
}

/// A parameter that fails its check, as bad input naming the parameter.
pub fn param(e: ParamError) -> InputError {
    InputError::item(format!("parameter `{}`", e.field), e.problem)
}

/// Rejects non-finite features, naming the first bad row and column.
pub fn check_finite(x: ArrayView2<'_, f32>) -> Result<(), InputError> {
    for (i, row) in x.axis_iter(Axis(0)).enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "row {i}, column {j} is {} (NaN or Inf): the latent space needs finite features",
                row[j]
            )));
        }
    }
    Ok(())
}

/// Rows the PCA is fitted on at most (evenly spaced, so every test set is represented in
/// proportion); all rows are projected. The leading components of 8,192 samples match the full
/// data's to within sampling error, and fitting is linear in the rows.
pub const PCA_FIT_ROWS: usize = 8192;

/// Centres the features and projects them on their first `dims` principal components (fitted on
/// at most [`PCA_FIT_ROWS`] rows, signed as scikit-learn signs them: [`principal_axes`]); with
/// `dims ≥` the feature count the centred features are returned.
pub fn pca(x: ArrayView2<'_, f32>, dims: usize) -> Result<Array2<f32>, InputError> {
    let n = x.nrows();
    let dims = dims.min(x.ncols()).min(n.saturating_sub(1)).max(1);
    if dims >= x.ncols() {
        return Ok(project(x, &column_means(x), &Array2::eye(x.ncols())));
    }
    let fit_rows: Vec<usize> = if n > PCA_FIT_ROWS {
        (0..PCA_FIT_ROWS).map(|i| i * n / PCA_FIT_ROWS).collect()
    } else {
        (0..n).collect()
    };
    let (mean, axes) = principal_axes(x.select(Axis(0), &fit_rows).view(), dims)?;
    Ok(project(x, &mean, &axes))
}

/// The mean of each column, in f64.
fn column_means(x: ArrayView2<'_, f32>) -> ndarray::Array1<f64> {
    let mut mean = ndarray::Array1::<f64>::zeros(x.ncols());
    for row in x.axis_iter(Axis(0)) {
        mean.zip_mut_with(&row, |m, v| *m += f64::from(*v));
    }
    mean / x.nrows().max(1) as f64
}

/// Rows per block of the scatter matrix in [`principal_axes`].
const SCATTER_ROWS: usize = 1024;

/// The column means of `x` and its first `dims` principal axes (rows of the answer, by
/// decreasing variance): the leading eigenvectors of the scatter matrix `(x − mean)ᵀ(x − mean)`,
/// summed in f64 a block of rows at a time on all cores and decomposed by faer's symmetric
/// eigensolver. Each axis is signed so that its largest entry (in absolute value) is
/// positive, scikit-learn's `svd_flip` convention, so scores compare with its PCA's.
///
/// Not linfa-reduction's `Pca`: without BLAS it runs an iterative truncated SVD (LOBPCG) on the
/// centred rows, 0.8 s for 8,192 × 512 on 2 cores; the scatter matrix is one matrix product (0.1 s)
/// and its eigendecomposition exact (scikit-learn's `covariance_eigh` solver, which it picks for
/// such shapes). Not linfa-linalg's `eigh`, which takes 2.8 s for 512 × 512; faer's takes ms.
pub fn principal_axes(x: ArrayView2<'_, f32>, dims: usize) -> Result<(ndarray::Array1<f64>, Array2<f64>), InputError> {
    use rayon::prelude::*;
    let d = x.ncols();
    let mean = column_means(x);
    let scatter = x
        .axis_chunks_iter(Axis(0), SCATTER_ROWS)
        .into_par_iter()
        .map(|b| {
            let c = b.mapv(f64::from) - &mean;
            c.t().dot(&c)
        })
        .reduce(|| Array2::zeros((d, d)), |a, b| a + b);
    let eig = faer::Mat::<f64>::from_fn(d, d, |i, j| scatter[[i, j]])
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| {
            bad(format!(
                "PCA to {dims} dimensions failed: the eigendecomposition did not converge ({e:?})"
            ))
        })?;
    // Eigenvalues come in nondecreasing order: the leading axes are the last columns.
    let u = eig.U();
    let mut axes = Array2::<f64>::zeros((dims.min(d), d));
    for (r, mut axis) in axes.axis_iter_mut(Axis(0)).enumerate() {
        let c = d - 1 - r;
        let largest = (0..d)
            .map(|i| u[(i, c)])
            .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        let sign = if largest < 0.0 { -1.0 } else { 1.0 };
        axis.iter_mut().enumerate().for_each(|(i, a)| *a = sign * u[(i, c)]);
    }
    Ok((mean, axes))
}

/// Rows projected per block in [`project`].
const PROJECT_ROWS: usize = 2048;

/// `(x − mean) · componentsᵀ` in f64, a block of rows at a time on all cores. linfa's `predict`
/// copies the whole matrix to f64 and centres it into a second copy: 820 MB at 100k × 512, 8 GB
/// at a million rows; a block needs 8 MB.
fn project(x: ArrayView2<'_, f32>, mean: &ndarray::Array1<f64>, components: &Array2<f64>) -> Array2<f32> {
    use rayon::prelude::*;
    let mut out = Array2::<f32>::zeros((x.nrows(), components.nrows()));
    out.axis_chunks_iter_mut(Axis(0), PROJECT_ROWS)
        .into_par_iter()
        .zip(x.axis_chunks_iter(Axis(0), PROJECT_ROWS).into_par_iter())
        .for_each(|(mut o, xb)| {
            let centred = xb.mapv(f64::from) - mean;
            o.assign(&centred.dot(&components.t()).mapv(|v| v as f32));
        });
    out
}

/// The joint embedding of all rows of `x` (`n × d` features, all test sets together). Stops with
/// [`EmbedError::Cancelled`] at the first progress step whose callback answers `Break`.
pub fn embed(x: ArrayView2<'_, f32>, params: &EmbedParams, progress: Progress<'_>) -> Result<Array2<f32>, EmbedError> {
    embed_live(x, params, progress, &())
}

/// [`embed`], offering `live` the layout after every iteration (t-SNE) or epoch (UMAP).
pub fn embed_live(
    x: ArrayView2<'_, f32>,
    params: &EmbedParams,
    progress: Progress<'_>,
    live: &dyn Live,
) -> Result<Array2<f32>, EmbedError> {
    let z = reduce(x, params, progress)?;
    lay_out(z.view(), params, progress, live)
}

/// The first step of [`embed`]: checks `params` and `x`, and answers the PCA scores the layout
/// starts from. A caller holding the features can drop them here (a million rows of 512 features
/// are 2 GB; the scores 200 MB).
pub fn reduce(x: ArrayView2<'_, f32>, params: &EmbedParams, progress: Progress<'_>) -> Result<Array2<f32>, EmbedError> {
    let n = x.nrows();
    params.check_for(n).map_err(param)?;
    check_finite(x)?;
    if x.ncols() < params.dims {
        // t-SNE starts from the leading principal components, one per output axis.
        return Err(bad(format!(
            "{} columns: a {}-D layout needs at least {} feature columns",
            x.ncols(),
            params.dims,
            params.dims
        ))
        .into());
    }
    step(progress, "pca", 0.0)?;
    let z = pca(x, params.pca.max(params.dims))?;
    step(progress, "pca", 1.0)?;
    Ok(z)
}

/// The second step of [`embed`]: the layout of the PCA scores `z` from [`reduce`].
///
/// The rows are laid out in [`locality_order`] and the result put back in theirs: a point's
/// neighbours then sit near it in memory, so the gradient's reads of their coordinates hit the
/// cache instead of memory (a million points' coordinates do not fit in it).
pub fn lay_out(
    z: ArrayView2<'_, f32>,
    params: &EmbedParams,
    progress: Progress<'_>,
    live: &dyn Live,
) -> Result<Array2<f32>, EmbedError> {
    let order = locality_order(z);
    let zo = z.select(Axis(0), &order);
    let live = Reordered { live, order: &order };
    let fitted = match params.layout {
        Layout::Tsne => tsne_of(zo.view(), params, progress, &live),
        Layout::Umap => umap_of(zo.view(), params, progress, &live),
    };
    drop(zo);
    let yo = fitted.ok_or(EmbedError::Cancelled)?;
    Ok(unorder(yo.view(), &order))
}

/// The rows of `z` sorted by the Morton code of their first (up to) three columns, each scaled to
/// 21 bits over its range (ties by row): points near in the leading principal components come
/// one after the other.
pub fn locality_order(z: ArrayView2<'_, f32>) -> Vec<usize> {
    use rayon::prelude::*;
    let axes = z.ncols().min(3);
    let ranges: Vec<(f32, f32)> = (0..axes)
        .map(|a| {
            let col = z.column(a);
            let lo = col.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (lo, (hi - lo).max(f32::MIN_POSITIVE))
        })
        .collect();
    let scale = ((1u64 << 21) - 1) as f32;
    let mut keyed: Vec<(u64, usize)> = z
        .axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(i, row)| {
            let code = ranges.iter().enumerate().fold(0u64, |code, (a, (lo, span))| {
                let q = (((row[a] - lo) / span).clamp(0.0, 1.0) * scale) as u64;
                code | octree::spread(q) << a
            });
            (code, i)
        })
        .collect();
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The rows of `yo`, laid out in `order` (row `r` is row `order[r]`), back in their own order.
fn unorder(yo: ArrayView2<'_, f32>, order: &[usize]) -> Array2<f32> {
    let mut y = Array2::zeros(yo.dim());
    for (r, &i) in order.iter().enumerate() {
        y.row_mut(i).assign(&yo.row(r));
    }
    y
}

/// Intermediate layouts of reordered rows, shown in the rows' own order.
struct Reordered<'a> {
    live: &'a dyn Live,
    order: &'a [usize],
}

impl Live for Reordered<'_> {
    fn due(&self) -> bool {
        self.live.due()
    }
    fn show(&self, coords: Vec<f32>, dims: usize) {
        let mut own = vec![0.0; coords.len()];
        for (r, &i) in self.order.iter().enumerate() {
            own[i * dims..(i + 1) * dims].copy_from_slice(&coords[r * dims..(r + 1) * dims]);
        }
        self.live.show(own, dims);
    }
}

/// A layout's phases as progress stages: `neighbours`, then `optimise` (the method's name).
fn phases<'a>(
    progress: Progress<'a>,
    optimise: &'static str,
) -> impl Fn(tsne::Phase, f64) -> ControlFlow<()> + Sync + 'a {
    move |phase, f| match phase {
        tsne::Phase::Neighbours => progress("neighbours", f),
        tsne::Phase::Optimise => progress(optimise, f),
    }
}

/// The t-SNE of the PCA scores `z`, started from their leading components; `None` when stopped.
fn tsne_of(
    z: ArrayView2<'_, f32>,
    params: &EmbedParams,
    progress: Progress<'_>,
    live: &dyn Live,
) -> Option<Array2<f32>> {
    let early = params
        .iterations
        .min(250)
        .min(params.iterations / 3)
        .max(1)
        .min(params.iterations);
    let schedule = tsne::Schedule {
        perplexity: params.perplexity,
        early,
        late: params.iterations - early,
        ..tsne::Schedule::default()
    };
    let report = phases(progress, "t-SNE");
    // Start from the first principal components scaled to std 1e-4 (openTSNE, scikit-learn).
    let init = z.slice(s![.., ..params.dims]).mapv(f64::from);
    let std = init.column(0).std(0.0).max(f64::MIN_POSITIVE);
    let init = init / std * 1e-4;
    let fitted = match params.dims {
        2 => tsne::fit::<2>(z, init, &schedule, &report, live),
        _ => tsne::fit::<3>(z, init, &schedule, &report, live),
    };
    Some(fitted?.embedding)
}

/// The UMAP of the PCA scores `z`, started from their leading components; `None` when stopped.
fn umap_of(
    z: ArrayView2<'_, f32>,
    params: &EmbedParams,
    progress: Progress<'_>,
    live: &dyn Live,
) -> Option<Array2<f32>> {
    let report = phases(progress, "UMAP");
    let graph = umap::graph(z, params.neighbours, &report)?;
    let settings = umap::Settings {
        neighbours: params.neighbours,
        min_dist: params.min_dist,
        epochs: params.epochs_for(z.nrows()),
        seed: params.seed,
    };
    let init = z.slice(s![.., ..params.dims]).mapv(f64::from);
    match params.dims {
        2 => umap::layout::<2>(&graph, init.view(), &settings, &report, live),
        _ => umap::layout::<3>(&graph, init.view(), &settings, &report, live),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locality_order_is_a_permutation_that_puts_near_rows_together() {
        // Two far groups interleaved by row: the order puts each group's rows together.
        let z = Array2::from_shape_fn((400, 4), |(i, j)| {
            if i % 2 == 0 {
                100.0 + j as f32
            } else {
                (i % 7) as f32 * 0.01
            }
        });
        let order = locality_order(z.view());
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..400).collect::<Vec<_>>());
        let switches = order.windows(2).filter(|w| w[0] % 2 != w[1] % 2).count();
        assert_eq!(switches, 1, "one group after the other");
        // Laying out in that order and putting the rows back is the identity.
        let zo = z.select(Axis(0), &order);
        assert_eq!(unorder(zo.view(), &order), z);
    }

    #[test]
    fn intermediate_layouts_of_reordered_rows_are_shown_in_the_rows_own_order() {
        struct Shown(std::sync::Mutex<Vec<Vec<f32>>>);
        impl Live for Shown {
            fn due(&self) -> bool {
                true
            }
            fn show(&self, coords: Vec<f32>, _: usize) {
                self.0.lock().unwrap().push(coords);
            }
        }
        let shown = Shown(Default::default());
        // Laid-out row 0 is row 2, row 1 is row 0, row 2 is row 1.
        let live = Reordered {
            live: &shown,
            order: &[2, 0, 1],
        };
        assert!(live.due());
        live.show(vec![20.0, 21.0, 0.0, 1.0, 10.0, 11.0], 2);
        assert_eq!(
            shown.0.into_inner().unwrap(),
            vec![vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]]
        );
    }

    #[test]
    fn fewer_feature_columns_than_output_axes_is_named_not_a_panic() {
        let x = Array2::from_shape_fn((200, 2), |(i, j)| (i * (j + 1)) as f32 % 7.0);
        let params = EmbedParams {
            dims: 3,
            perplexity: 10.0,
            ..EmbedParams::default()
        };
        let err = embed(x.view(), &params, &|_, _| ControlFlow::Continue(())).unwrap_err();
        assert!(
            err.to_string()
                .contains("2 columns: a 3-D layout needs at least 3 feature columns"),
            "{err}"
        );
        // Two columns are enough for 2-D.
        let y = embed(x.view(), &params.clone().dims(2), &|_, _| ControlFlow::Continue(())).unwrap();
        assert_eq!(y.dim(), (200, 2));
    }
}
