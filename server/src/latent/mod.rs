//! The latent space of a study: PCA (linfa-reduction) → t-SNE over the union of all test sets
//! ([`tsne`]), in 2-D (FFT-accelerated, [`fft`]) or 3-D (parallel Barnes-Hut, [`octree`]), or
//! UMAP ([`umap`]);
//! clustering ([`cluster`]);
//! nearest neighbours ([`knn`]); embedding quality ([`quality`]).
//!
//! Invariant: every function here is pure (features in, numbers out) and validates its input with
//! an [`InputError`] instead of panicking; caching and jobs live in [`jobs`].

pub mod affinity;
pub mod ann;
pub mod cluster;
pub mod fft;
pub mod jobs;
pub mod knn;
pub mod live;
pub mod octree;
pub mod quality;
pub mod tsne;
pub mod umap;

use failscope_shared::api::ParamError;
use linfa::traits::Fit;
use linfa::DatasetBase;
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
/// data's to within sampling error, and fitting is linear in the rows (1.4 s → 0.5 s at 20k × 512).
pub const PCA_FIT_ROWS: usize = 8192;

/// Centres the features and projects them on their first `dims` principal components
/// (linfa-reduction's PCA, fitted on at most [`PCA_FIT_ROWS`] rows); with `dims ≥` the feature
/// count the centred features are returned.
pub fn pca(x: ArrayView2<'_, f32>, dims: usize) -> Result<Array2<f32>, InputError> {
    let n = x.nrows();
    let dims = dims.min(x.ncols()).min(n.saturating_sub(1)).max(1);
    if dims >= x.ncols() {
        let mut mean = ndarray::Array1::<f64>::zeros(x.ncols());
        for row in x.axis_iter(Axis(0)) {
            mean.zip_mut_with(&row, |m, v| *m += f64::from(*v));
        }
        mean /= n as f64;
        return Ok(project(x, &mean, &Array2::eye(x.ncols())));
    }
    let fit_rows: Vec<usize> = if n > PCA_FIT_ROWS {
        (0..PCA_FIT_ROWS).map(|i| i * n / PCA_FIT_ROWS).collect()
    } else {
        (0..n).collect()
    };
    let ds = DatasetBase::from(x.select(Axis(0), &fit_rows).mapv(f64::from));
    let model = linfa_reduction::Pca::params(dims)
        .fit(&ds)
        .map_err(|e| bad(format!("PCA to {dims} dimensions failed ({e})")))?;
    Ok(project(x, model.mean(), model.components()))
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
    let fitted = match params.layout {
        Layout::Tsne => tsne_of(z.view(), params, progress, live),
        Layout::Umap => umap_of(z.view(), params, progress, live),
    };
    fitted.ok_or(EmbedError::Cancelled)
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
