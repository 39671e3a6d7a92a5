//! `failscope embed` and `failscope cluster`: latent-space jobs on a stored study, with a progress
//! bar, cached in the store by their parameters.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use comfy_table::Table;
use failscope_shared::api::Clustering;
use failscope_shared::wire::{DEFAULT_CSF, SILENT_FAILURE_COVERAGE};

use super::{bar, check_study, io, open_store, report_to, CliError, DbArg};
use crate::error::InputError;
use crate::latent::cluster::Method;
use crate::latent::jobs::{self, ClusterParams, Space};
use crate::latent::{quality, EmbedParams, Layout};

#[derive(Debug, clap::Args)]
pub(super) struct EmbedArgs {
    /// Study id.
    study: i64,
    #[command(flatten)]
    embed: EmbedFlags,
    /// Also write the coordinates as CSV (`row,dataset_idx,label,predicted,x,y[,z]`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Report the trustworthiness (k = 10) of the embedding on a 2,000-point subsample.
    #[arg(long)]
    trustworthiness: bool,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Debug, Clone, clap::Args)]
struct EmbedFlags {
    /// Layout algorithm.
    #[arg(long, value_enum, default_value = "tsne")]
    layout: LayoutArg,
    /// Output dimensions: 2 (t-SNE: FFT-accelerated) or 3 (t-SNE: parallel Barnes-Hut).
    #[arg(long, default_value_t = 2)]
    dims: usize,
    /// t-SNE perplexity.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    /// t-SNE iterations in total (the first 250 with early exaggeration).
    #[arg(long, default_value_t = 750)]
    iterations: usize,
    /// PCA dimensions before the layout.
    #[arg(long, default_value_t = 50)]
    pca: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// UMAP: neighbours per point, itself included (umap-learn's n_neighbors).
    #[arg(long, default_value_t = failscope_shared::api::jobs::DEFAULT_NEIGHBOURS)]
    neighbours: usize,
    /// UMAP: minimum distance between embedded points, in [0, 1).
    #[arg(long, default_value_t = failscope_shared::api::jobs::DEFAULT_MIN_DIST)]
    min_dist: f64,
    /// UMAP: SGD epochs (default: 500 up to 10,000 points, else 200, as umap-learn).
    #[arg(long)]
    epochs: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LayoutArg {
    /// t-SNE (openTSNE's schedule).
    Tsne,
    /// UMAP (umap-learn's algorithm on exact neighbours).
    Umap,
}

impl EmbedFlags {
    fn params(&self) -> EmbedParams {
        EmbedParams::default()
            .dims(self.dims)
            .perplexity(self.perplexity)
            .iterations(self.iterations)
            .pca(self.pca)
            .seed(self.seed)
            .layout(match self.layout {
                LayoutArg::Tsne => Layout::Tsne,
                LayoutArg::Umap => Layout::Umap,
            })
            .neighbours(self.neighbours)
            .min_dist(self.min_dist)
            .epochs(self.epochs)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MethodArg {
    Kmeans,
    Gmm,
    Dbscan,
    /// Silent-failure regions by density on the layout (needs `--space embedding`).
    Density,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SpaceArg {
    /// The features after PCA (`--pca` dimensions).
    Pca,
    /// The embedding (`--layout`, `--dims`, `--perplexity`, … as for `embed`).
    Embedding,
}

#[derive(Debug, clap::Args)]
pub(super) struct ClusterArgs {
    /// Study id.
    study: i64,
    /// Algorithm.
    #[arg(long, value_enum, default_value = "kmeans")]
    method: MethodArg,
    /// Clusters (k-means: per class unless `--per-class false`; GMM: components).
    #[arg(long, default_value_t = 9)]
    k: usize,
    /// k-means within each true class (SF-Visuals' default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    per_class: bool,
    /// DBSCAN neighbourhood radius (in the clustering space's units).
    #[arg(long)]
    eps: Option<f64>,
    /// DBSCAN neighbours that make a core point.
    #[arg(long, default_value_t = 5)]
    min_points: usize,
    /// Density regions: grid cells per axis.
    #[arg(long, default_value_t = failscope_shared::analysis::regions::DEFAULT_GRID)]
    grid: usize,
    /// Density regions: the kernel's standard deviation, in grid cells.
    #[arg(long, default_value_t = failscope_shared::analysis::regions::DEFAULT_BANDWIDTH)]
    bandwidth: f64,
    /// Space to cluster in.
    #[arg(long, value_enum, default_value = "pca")]
    space: SpaceArg,
    #[command(flatten)]
    embed: EmbedFlags,
    /// CSF whose confidence defines silent failures.
    #[arg(long, default_value = DEFAULT_CSF)]
    csf: String,
    /// Coverage of the i.i.d. test set at which the silent-failure threshold is taken.
    #[arg(long, default_value_t = SILENT_FAILURE_COVERAGE)]
    coverage: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArg,
}

pub(super) fn embed(args: &EmbedArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let store = open_store(&args.db.db)?;
    check_study(&store, args.study, &args.db)?;
    let params = args.embed.params();
    let start = std::time::Instant::now();
    let progress = bar();
    let (y, cached) = jobs::embedding(&store, args.study, &params, &report_to(&progress), &()).map_err(job_error)?;
    progress.finish_and_clear();
    writeln!(
        out,
        "study {}: {} points in {}-D by {} — {}",
        args.study,
        y.nrows(),
        params.dims,
        params.describe(),
        if cached {
            "from the cache".to_string()
        } else {
            format!("computed in {:.1} s", start.elapsed().as_secs_f64())
        }
    )
    .map_err(io)?;
    let samples = store.samples(args.study)?;
    if args.trustworthiness {
        let x = store.features(args.study)?.unwrap_or_default();
        let step = (y.nrows() / 2000).max(1);
        let rows: Vec<usize> = (0..y.nrows()).step_by(step).collect();
        let sub = |a: &ndarray::Array2<f32>| a.select(ndarray::Axis(0), &rows);
        let t = quality::trustworthiness(sub(&x).view(), sub(&y).view(), 10.min(rows.len() / 2 - 1));
        writeln!(out, "trustworthiness (k = 10, {} points): {t:.4}", rows.len()).map_err(io)?;
    }
    if let Some(path) = &args.out {
        let mut w = csv::Writer::from_path(path).map_err(|e| InputError::file(path, format!("cannot write ({e})")))?;
        let axes = ["x", "y", "z"];
        let mut header = vec!["row", "dataset_idx", "label", "predicted"];
        header.extend(&axes[..params.dims]);
        let werr = |e: csv::Error| InputError::file(path, format!("cannot write ({e})"));
        w.write_record(&header).map_err(werr)?;
        for (s, coords) in samples.iter().zip(y.rows()) {
            let mut rec = vec![
                s.row.to_string(),
                s.dataset_idx.to_string(),
                s.label.to_string(),
                s.predicted.to_string(),
            ];
            rec.extend(coords.iter().map(|v| v.to_string()));
            w.write_record(&rec).map_err(werr)?;
        }
        w.flush()
            .map_err(|e| InputError::file(path, format!("cannot write ({e})")))?;
        writeln!(out, "coordinates written to {}", path.display()).map_err(io)?;
    }
    Ok(())
}

/// A job's error as the CLI reports it: a parameter under the flag that sets it.
fn job_error(e: jobs::JobError) -> CliError {
    match e {
        jobs::JobError::Params(e) => {
            // `space.perplexity` is set by `--perplexity`, `space.dims` (a PCA space) by `--pca`.
            let flag = match e.field.as_str() {
                "space.dims" => "pca".to_string(),
                f => f.rsplit('.').next().unwrap_or(f).replace('_', "-"),
            };
            CliError::Input(InputError::item(format!("--{flag}"), e.problem))
        }
        jobs::JobError::Input(e) => CliError::Input(e),
        jobs::JobError::Store(e) => e.into(),
        jobs::JobError::Cancelled => CliError::Other("cancelled".into()),
    }
}

pub(super) fn cluster(args: &ClusterArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let store = open_store(&args.db.db)?;
    check_study(&store, args.study, &args.db)?;
    let method = match args.method {
        MethodArg::Kmeans => Method::KMeans {
            k: args.k,
            per_class: args.per_class,
        },
        MethodArg::Gmm => Method::Gmm { k: args.k },
        MethodArg::Dbscan => Method::Dbscan {
            eps: args
                .eps
                .ok_or_else(|| InputError::item("--eps", "DBSCAN needs a neighbourhood radius (--eps)"))?,
            min_points: args.min_points,
        },
        MethodArg::Density => Method::Density {
            grid: args.grid,
            bandwidth: args.bandwidth,
        },
    };
    let params = ClusterParams {
        method,
        space: match args.space {
            SpaceArg::Pca => Space::Pca { dims: args.embed.pca },
            SpaceArg::Embedding => Space::Embedding(args.embed.params()),
        },
        csf: args.csf.clone(),
        coverage: args.coverage,
        seed: args.embed.seed,
    };
    let progress = bar();
    let (c, cached) = jobs::clustering(&store, args.study, &params, &report_to(&progress)).map_err(job_error)?;
    progress.finish_and_clear();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&c).expect("plain fields serialise")).map_err(io)?;
    } else {
        write!(out, "{}", cluster_table(&c, cached)).map_err(io)?;
    }
    Ok(())
}

fn cluster_table(c: &Clustering, cached: bool) -> String {
    let mut t = Table::new();
    t.set_header(vec![
        "cluster",
        "size",
        "accuracy",
        "failures",
        "silent",
        "classes",
        "test sets (val, iid, …)",
        "representative",
    ]);
    for s in &c.clusters {
        let mix = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join("/");
        t.add_row(vec![
            s.id.to_string(),
            s.size.to_string(),
            format!("{:.3}", s.accuracy),
            s.failures.to_string(),
            s.silent_failures.to_string(),
            mix(&s.class_mix),
            mix(&s.test_set_mix),
            s.representative.to_string(),
        ]);
    }
    let noise = c.assignment.iter().filter(|a| **a < 0).count();
    format!(
        "{t}\n{} clusters{}; silent failure = wrong with {} ≥ {:.4}{}\n",
        c.clusters.len(),
        if noise > 0 {
            format!(", {noise} noise points")
        } else {
            String::new()
        },
        c.csf,
        c.threshold,
        if cached { " (from the cache)" } else { "" }
    )
}
