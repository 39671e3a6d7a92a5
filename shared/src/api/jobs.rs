//! The latent-space job API: what `POST /api/studies/{id}/embeddings` and `…/clusterings` take
//! ([`EmbedParams`], [`ClusterParams`]), what they answer ([`Started`]) and how a job is followed
//! ([`JobStatus`], [`JobFailure`]).
//!
//! Parameters are checked before a job starts, linfa-style: [`EmbedParams::check`] and
//! [`ClusterParams::check`] need nothing but the parameters; [`ClusterParams::check_for`] and
//! [`EmbedParams::check_for`] add what depends on the study (its size, its CSFs). A failed check is
//! a [`ParamError`] naming the API field (`space.perplexity`, `method.k`), which the server answers
//! with 400 and the CLI reports under its own flag.
//!
//! The JSON of a parameter set is the key its result is cached under, so the fields keep their
//! order and names.

use serde::{Deserialize, Serialize};

use crate::wire::{DEFAULT_CSF, SILENT_FAILURE_COVERAGE};

/// Largest t-SNE iteration count a request may ask for (openTSNE's defaults total 750).
pub const MAX_ITERATIONS: usize = 100_000;
/// Largest PCA dimension a request may ask for.
pub const MAX_PCA: usize = 4096;

/// A parameter that fails its check: the API field (dotted path) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ParamError {
    /// The field as the API names it, e.g. `perplexity` or `method.k`.
    pub field: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

impl ParamError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// The same error under the parent field `prefix` (`space` + `perplexity` → `space.perplexity`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// The layout algorithm of an embedding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// t-SNE (openTSNE's schedule; FFT in 2-D, Barnes-Hut in 3-D).
    #[default]
    Tsne,
    /// UMAP (umap-learn's fuzzy simplicial set and SGD with negative sampling).
    Umap,
}

impl Layout {
    /// Its name in the API, the CLI and the URL.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Tsne => "tsne",
            Layout::Umap => "umap",
        }
    }

    /// The layout named `name` (`tsne`, `umap`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Layout::Tsne, Layout::Umap].into_iter().find(|l| l.name() == name)
    }

    fn is_tsne(&self) -> bool {
        *self == Layout::Tsne
    }
}

/// UMAP's default neighbour count (umap-learn's `n_neighbors`, the point itself included).
pub const DEFAULT_NEIGHBOURS: usize = 15;
/// UMAP's default minimum distance (umap-learn's `min_dist`).
pub const DEFAULT_MIN_DIST: f64 = 0.1;
/// Most UMAP neighbours a request may ask for.
pub const MAX_NEIGHBOURS: usize = 200;

fn is_default_neighbours(k: &usize) -> bool {
    *k == DEFAULT_NEIGHBOURS
}

fn is_default_min_dist(d: &f64) -> bool {
    *d == DEFAULT_MIN_DIST
}

/// Parameters of an embedding, linfa-style (builder methods). Missing fields take their defaults.
///
/// The UMAP fields (and `layout` when it is t-SNE) are left out of the JSON at their defaults, so
/// a t-SNE's cache key is what it was before UMAP existed. (`layout`, not `method`: a clustering's
/// `method` is its algorithm, and the CLI's `cluster` takes both.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedParams {
    /// 2 or 3 output dimensions.
    pub dims: usize,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// t-SNE's total iterations (the first 250 — or a third if fewer — with early exaggeration).
    pub iterations: usize,
    /// PCA dimensions before the layout (SF-Visuals: 50).
    pub pca: usize,
    /// Seed, part of the cache key; t-SNE starts from the PCA, so 2-D and 3-D are deterministic
    /// whatever it is; UMAP's negative samples are drawn from it.
    pub seed: u64,
    /// The layout algorithm.
    #[serde(skip_serializing_if = "Layout::is_tsne")]
    pub layout: Layout,
    /// UMAP: neighbours per point, itself included (umap-learn's `n_neighbors`).
    #[serde(skip_serializing_if = "is_default_neighbours")]
    pub neighbours: usize,
    /// UMAP: how tightly points may pack, 0 ≤ `min_dist` < 1 (`spread` is 1).
    #[serde(skip_serializing_if = "is_default_min_dist")]
    pub min_dist: f64,
    /// UMAP: SGD epochs; umap-learn's rule when absent (500 up to 10,000 points, else 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
}

impl Default for EmbedParams {
    fn default() -> Self {
        Self {
            dims: 2,
            perplexity: 30.0,
            iterations: 750,
            pca: 50,
            seed: 0,
            layout: Layout::Tsne,
            neighbours: DEFAULT_NEIGHBOURS,
            min_dist: DEFAULT_MIN_DIST,
            epochs: None,
        }
    }
}

impl EmbedParams {
    /// Output dimensions.
    pub fn dims(mut self, dims: usize) -> Self {
        self.dims = dims;
        self
    }
    /// Perplexity.
    pub fn perplexity(mut self, p: f64) -> Self {
        self.perplexity = p;
        self
    }
    /// Total iterations.
    pub fn iterations(mut self, n: usize) -> Self {
        self.iterations = n;
        self
    }
    /// PCA dimensions.
    pub fn pca(mut self, n: usize) -> Self {
        self.pca = n;
        self
    }
    /// Seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Layout algorithm.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
    /// UMAP neighbours.
    pub fn neighbours(mut self, k: usize) -> Self {
        self.neighbours = k;
        self
    }
    /// UMAP minimum distance.
    pub fn min_dist(mut self, d: f64) -> Self {
        self.min_dist = d;
        self
    }
    /// UMAP epochs (`None`: umap-learn's rule).
    pub fn epochs(mut self, epochs: Option<usize>) -> Self {
        self.epochs = epochs;
        self
    }

    /// The method and its parameters for a person: `t-SNE (perplexity 30, 750 iterations, PCA 50)`
    /// or `UMAP (15 neighbours, min_dist 0.1, PCA 50)`.
    pub fn describe(&self) -> String {
        match self.layout {
            Layout::Tsne => format!(
                "t-SNE (perplexity {}, {} iterations, PCA {})",
                self.perplexity, self.iterations, self.pca
            ),
            Layout::Umap => format!(
                "UMAP ({} neighbours, min_dist {}{}, PCA {})",
                self.neighbours,
                self.min_dist,
                self.epochs.map(|e| format!(", {e} epochs")).unwrap_or_default(),
                self.pca
            ),
        }
    }

    /// UMAP's epochs for `n` points: as asked, else umap-learn's rule.
    pub fn epochs_for(&self, n: usize) -> usize {
        self.epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 })
    }

    /// The cache key: the parameters as canonical JSON.
    pub fn key(&self) -> String {
        serde_json::to_string(self).expect("plain fields serialise")
    }

    /// Checks what needs no study: 2 or 3 dimensions, a positive finite perplexity, 1 to
    /// [`MAX_ITERATIONS`] iterations, 1 to [`MAX_PCA`] PCA dimensions; UMAP's 2 to
    /// [`MAX_NEIGHBOURS`] neighbours, `0 ≤ min_dist < 1` and 1 to [`MAX_ITERATIONS`] epochs.
    pub fn check(&self) -> Result<(), ParamError> {
        if !matches!(self.dims, 2 | 3) {
            return Err(ParamError::new(
                "dims",
                format!("{} dimensions requested: choose 2 or 3", self.dims),
            ));
        }
        if !(self.perplexity > 0.0 && self.perplexity.is_finite()) {
            return Err(ParamError::new(
                "perplexity",
                format!("{} is not a positive number", self.perplexity),
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(ParamError::new(
                "iterations",
                format!("{} iterations: choose 1 to {MAX_ITERATIONS}", self.iterations),
            ));
        }
        if !(1..=MAX_PCA).contains(&self.pca) {
            return Err(ParamError::new(
                "pca",
                format!("{} PCA dimensions: choose 1 to {MAX_PCA}", self.pca),
            ));
        }
        if !(2..=MAX_NEIGHBOURS).contains(&self.neighbours) {
            return Err(ParamError::new(
                "neighbours",
                format!("{} neighbours: choose 2 to {MAX_NEIGHBOURS}", self.neighbours),
            ));
        }
        if !(0.0..1.0).contains(&self.min_dist) {
            return Err(ParamError::new(
                "min_dist",
                format!("{} is not a distance in [0, 1) (UMAP's spread is 1)", self.min_dist),
            ));
        }
        if let Some(e) = self.epochs.filter(|e| !(1..=MAX_ITERATIONS).contains(e)) {
            return Err(ParamError::new(
                "epochs",
                format!("{e} epochs: choose 1 to {MAX_ITERATIONS}"),
            ));
        }
        Ok(())
    }

    /// [`check`](Self::check), then whether `n` points are enough: t-SNE uses 3 × perplexity
    /// neighbours per point (scikit-learn, openTSNE, failscope), UMAP `neighbours` (itself
    /// included), so each needs more points than that.
    pub fn check_for(&self, n: usize) -> Result<(), ParamError> {
        self.check()?;
        match self.layout {
            Layout::Tsne => {
                // A float-to-integer cast saturates, so a huge perplexity asks for every point there is.
                let needed = ((3.0 * self.perplexity).ceil() as usize).saturating_add(1);
                if n < needed {
                    return Err(ParamError::new(
                        "perplexity",
                        format!(
                            "{n} points are too few for perplexity {}: t-SNE needs at least {needed} (3 × perplexity + 1); lower the perplexity",
                            self.perplexity
                        ),
                    ));
                }
            }
            Layout::Umap => {
                if n <= self.neighbours {
                    return Err(ParamError::new(
                        "neighbours",
                        format!(
                            "{n} points are too few for {} neighbours: UMAP needs more points than neighbours; choose 2 to {}",
                            self.neighbours,
                            n.saturating_sub(1).max(2)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The clustering algorithm and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Method {
    /// k-means with `k` clusters — within each true class when `per_class` (ids class-major).
    KMeans {
        /// Clusters (per class when `per_class`).
        k: usize,
        /// Cluster each true class separately.
        per_class: bool,
    },
    /// Gaussian mixture (full covariances) with `k` components.
    Gmm {
        /// Components.
        k: usize,
    },
    /// DBSCAN: points with `min_points` neighbours within `eps` are cores; the rest noise (−1).
    Dbscan {
        /// Neighbourhood radius.
        eps: f64,
        /// Neighbours (itself included) that make a core point.
        min_points: usize,
    },
    /// Silent-failure regions by density on a layout (`analysis::regions`): where silent
    /// failures are dense and most of what lies there; the rest noise (−1). Needs an embedding
    /// space.
    Density {
        /// Grid cells per axis.
        #[serde(default = "default_grid")]
        grid: usize,
        /// The kernel's standard deviation, in cells.
        #[serde(default = "default_bandwidth")]
        bandwidth: f64,
    },
}

fn default_grid() -> usize {
    crate::analysis::regions::DEFAULT_GRID
}

fn default_bandwidth() -> f64 {
    crate::analysis::regions::DEFAULT_BANDWIDTH
}

impl Method {
    /// Density regions with the default grid and bandwidth.
    pub fn density() -> Self {
        Method::Density {
            grid: default_grid(),
            bandwidth: default_bandwidth(),
        }
    }

    /// Checks what needs no study: `k ≥ 1`; DBSCAN's `eps > 0` and finite, `min_points ≥ 1`;
    /// density's grid 8 to 1,024 cells and bandwidth in (0, 20] cells.
    pub fn check(&self) -> Result<(), ParamError> {
        match *self {
            Method::Density { grid, .. } if !(8..=1024).contains(&grid) => Err(ParamError::new(
                "grid",
                format!("{grid} cells per axis: choose 8 to 1024"),
            )),
            Method::Density { bandwidth, .. } if !(bandwidth > 0.0 && bandwidth <= 20.0) => Err(ParamError::new(
                "bandwidth",
                format!("{bandwidth} cells: choose a bandwidth in (0, 20]"),
            )),
            Method::KMeans { k, .. } | Method::Gmm { k } if k == 0 => {
                Err(ParamError::new("k", "0 clusters: choose at least 1"))
            }
            Method::Dbscan { eps, .. } if !(eps > 0.0 && eps.is_finite()) => {
                Err(ParamError::new("eps", format!("{eps} is not a positive radius")))
            }
            Method::Dbscan { min_points: 0, .. } => {
                Err(ParamError::new("min_points", "0 neighbours: choose at least 1"))
            }
            _ => Ok(()),
        }
    }

    /// [`check`](Self::check), then `k` against the `n` points to cluster (per-class k-means
    /// gives a small class one cluster per sample, so only `k ≤ n` is asked of it too).
    pub fn check_for(&self, n: usize) -> Result<(), ParamError> {
        self.check()?;
        match *self {
            Method::KMeans { k, .. } | Method::Gmm { k } if k > n => Err(ParamError::new(
                "k",
                format!("{k} clusters for {n} points: choose 1 to {n}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Where clustering runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "space", rename_all = "kebab-case")]
pub enum Space {
    /// The features after PCA to `dims` dimensions.
    Pca {
        /// PCA dimensions.
        dims: usize,
    },
    /// The t-SNE embedding with these parameters.
    Embedding(EmbedParams),
}

/// Parameters of a clustering. Missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterParams {
    /// Algorithm.
    pub method: Method,
    /// Space clustered in.
    pub space: Space,
    /// The CSF defining silent failures.
    pub csf: String,
    /// Coverage of the i.i.d. test set whose confidence threshold defines silent failures.
    pub coverage: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            method: Method::KMeans { k: 9, per_class: true },
            space: Space::Pca { dims: 50 },
            csf: DEFAULT_CSF.into(),
            coverage: SILENT_FAILURE_COVERAGE,
            seed: 0,
        }
    }
}

impl ClusterParams {
    /// The cache key: the parameters as canonical JSON.
    pub fn key(&self) -> String {
        serde_json::to_string(self).expect("plain fields serialise")
    }

    /// Checks what needs no study: the method's parameters, the space's, a coverage in (0, 1].
    pub fn check(&self) -> Result<(), ParamError> {
        self.method.check().map_err(|e| e.under("method"))?;
        match &self.space {
            Space::Pca { dims } if !(1..=MAX_PCA).contains(dims) => {
                return Err(ParamError::new(
                    "space.dims",
                    format!("{dims} PCA dimensions: choose 1 to {MAX_PCA}"),
                ))
            }
            Space::Pca { .. } if matches!(self.method, Method::Density { .. }) => {
                return Err(ParamError::new(
                    "space",
                    "density regions are found on a layout: choose the embedding space",
                ))
            }
            Space::Pca { .. } => {}
            Space::Embedding(p) => p.check().map_err(|e| e.under("space"))?,
        }
        if !(self.coverage > 0.0 && self.coverage <= 1.0) {
            return Err(ParamError::new(
                "coverage",
                format!("{} is not a coverage in (0, 1]", self.coverage),
            ));
        }
        Ok(())
    }

    /// [`check`](Self::check), then against the study: `n` points, and `csf` one of `csfs`.
    pub fn check_for(&self, n: usize, csfs: &[String]) -> Result<(), ParamError> {
        self.check()?;
        self.method.check_for(n).map_err(|e| e.under("method"))?;
        if let Space::Embedding(p) = &self.space {
            p.check_for(n).map_err(|e| e.under("space"))?;
        }
        if !csfs.contains(&self.csf) {
            return Err(ParamError::new(
                "csf",
                format!("the study has no CSF {:?}; it has: {}", self.csf, csfs.join(", ")),
            ));
        }
        Ok(())
    }
}

/// An intermediate layout of a running embedding (the `layout` events of
/// `GET /api/jobs/{id}/events`): `rows × dims` coordinates, each axis quantised to 16 bits over
/// its range `lo..hi` (a 65,536-step grid is finer than any screen), little-endian and base64'd —
/// 2.7 bytes a coordinate instead of JSON's ~10.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveLayout {
    /// Counts up from 1 within a job.
    pub version: u64,
    /// Points.
    pub rows: usize,
    /// Coordinates per point.
    pub dims: usize,
    /// Each axis' smallest value.
    pub lo: Vec<f32>,
    /// Each axis' largest value.
    pub hi: Vec<f32>,
    /// The quantised coordinates, row-major `u16` little-endian, base64 (standard alphabet).
    pub data: String,
}

impl LiveLayout {
    /// Quantises `coords` (`rows × dims`, row-major).
    pub fn encode(version: u64, coords: &[f32], dims: usize) -> Self {
        use base64::Engine as _;
        let dims = dims.max(1);
        let rows = coords.len() / dims;
        let (mut lo, mut hi) = (vec![f32::INFINITY; dims], vec![f32::NEG_INFINITY; dims]);
        for row in coords.chunks_exact(dims) {
            for d in 0..dims {
                lo[d] = lo[d].min(row[d]);
                hi[d] = hi[d].max(row[d]);
            }
        }
        if rows == 0 {
            (lo, hi) = (vec![0.0; dims], vec![0.0; dims]);
        }
        let mut bytes = Vec::with_capacity(coords.len() * 2);
        for row in coords.chunks_exact(dims) {
            for d in 0..dims {
                let span = hi[d] - lo[d];
                let q = if span > 0.0 {
                    ((row[d] - lo[d]) / span * 65535.0).round().clamp(0.0, 65535.0) as u16
                } else {
                    0
                };
                bytes.extend_from_slice(&q.to_le_bytes());
            }
        }
        Self {
            version,
            rows,
            dims,
            lo,
            hi,
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The coordinates back (each within half a grid step of the encoded ones); `None` when the
    /// data does not hold `rows × dims` values.
    pub fn decode(&self) -> Option<Vec<f32>> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.data).ok()?;
        if self.dims == 0
            || self.lo.len() != self.dims
            || self.hi.len() != self.dims
            || bytes.len() != self.rows * self.dims * 2
        {
            return None;
        }
        Some(
            bytes
                .chunks_exact(2)
                .enumerate()
                .map(|(k, b)| {
                    let d = k % self.dims;
                    self.lo[d] + f32::from(u16::from_le_bytes([b[0], b[1]])) / 65535.0 * (self.hi[d] - self.lo[d])
                })
                .collect(),
        )
    }
}

/// `202 Accepted` to a started job: where to follow it (`/api/jobs/{job}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// Job id.
    pub job: u64,
}

/// Why a job failed, which decides the status of its `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The study's data cannot be used this way (e.g. non-finite features): 422.
    Unprocessable,
    /// The server failed (the store, a thread): 500; the message stays generic.
    Internal,
    /// The job was cancelled (`DELETE /api/jobs/{id}`): 409.
    Cancelled,
    /// The server stopped while the job ran; it can be started again: 409.
    Interrupted,
}

/// A failed job's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFailure {
    /// Whose fault.
    pub kind: FailureKind,
    /// What went wrong, for a person.
    pub message: String,
}

/// What a background job is doing (`GET /api/jobs/{id}`, and each Server-Sent Event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// Stage name (`queued`, `pca`, `neighbours`, `t-SNE`, `clustering`, `done`, `failed`,
    /// `cancelled`).
    pub stage: String,
    /// Fraction of the stage done, 0–1.
    pub fraction: f64,
    /// Finished (successfully or not).
    pub finished: bool,
    /// The error, when it failed.
    pub error: Option<JobFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_layouts_round_trip_within_half_a_grid_step() {
        let coords: Vec<f32> = (0..300)
            .map(|i| ((i * 37) % 101) as f32 * 0.5 - 20.0 + (i % 3) as f32 * 100.0)
            .collect();
        let live = LiveLayout::encode(4, &coords, 3);
        assert_eq!((live.version, live.rows, live.dims), (4, 100, 3));
        let json = serde_json::to_string(&live).unwrap();
        let back = serde_json::from_str::<LiveLayout>(&json).unwrap().decode().unwrap();
        for (k, (a, b)) in coords.iter().zip(&back).enumerate() {
            let step = (live.hi[k % 3] - live.lo[k % 3]) / 65535.0;
            assert!((a - b).abs() <= step * 0.5 + 1e-4, "{k}: {a} vs {b}");
        }
        // A constant axis, an empty layout, and data of the wrong length.
        let flat = LiveLayout::encode(1, &[2.0, 5.0, 2.0, 6.0], 2);
        assert_eq!(flat.decode().unwrap(), vec![2.0, 5.0, 2.0, 6.0]);
        assert_eq!(LiveLayout::encode(1, &[], 2).decode().unwrap(), Vec::<f32>::new());
        let broken = LiveLayout { rows: 101, ..live };
        assert!(broken.decode().is_none());
    }

    #[test]
    fn a_huge_perplexity_is_refused_not_overflowed() {
        // Found by `cargo xtask fuzz` (json_bodies): the needed count overflowed and wrapped to 0,
        // so the check passed in a release build.
        let p: EmbedParams = serde_json::from_str(r#"{"perplexity": 44444444444444444443}"#).unwrap();
        assert!(p.check().is_ok());
        let e = p.check_for(1000).unwrap_err();
        assert_eq!(e.field, "perplexity");
        assert!(e.problem.contains("too few"), "{}", e.problem);
    }

    #[test]
    fn parameters_round_trip_and_keep_their_cache_keys() {
        // The keys results are cached under in existing stores.
        assert_eq!(
            EmbedParams::default().key(),
            r#"{"dims":2,"perplexity":30.0,"iterations":750,"pca":50,"seed":0}"#
        );
        assert_eq!(
            ClusterParams::default().key(),
            r#"{"method":{"method":"k-means","k":9,"per_class":true},"space":{"space":"pca","dims":50},"csf":"det_mcp","coverage":0.95,"seed":0}"#
        );
        let p = ClusterParams {
            method: Method::Dbscan {
                eps: 0.5,
                min_points: 4,
            },
            space: Space::Embedding(EmbedParams::default().dims(3).perplexity(12.5)),
            csf: "mcd_mi".into(),
            coverage: 0.8,
            seed: 7,
        };
        assert_eq!(serde_json::from_str::<ClusterParams>(&p.key()).unwrap(), p);
        let partial: ClusterParams = serde_json::from_str(r#"{"csf":"det_pe"}"#).unwrap();
        assert_eq!(partial.method, ClusterParams::default().method);
        let status = JobStatus {
            stage: "failed".into(),
            fraction: 1.0,
            finished: true,
            error: Some(JobFailure {
                kind: FailureKind::Unprocessable,
                message: "features: row 3 is NaN".into(),
            }),
        };
        let json = serde_json::to_string(&status).unwrap();
        assert!(json.contains(r#""kind":"unprocessable""#), "{json}");
        assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), status);
        assert_eq!(
            serde_json::from_str::<Started>(r#"{"job":3}"#).unwrap(),
            Started { job: 3 }
        );
        // UMAP's fields appear in its key only away from their defaults.
        let umap = EmbedParams::default().layout(Layout::Umap);
        assert_eq!(
            umap.key(),
            r#"{"dims":2,"perplexity":30.0,"iterations":750,"pca":50,"seed":0,"layout":"umap"}"#
        );
        let tuned = umap.clone().neighbours(30).min_dist(0.5).epochs(Some(300));
        assert!(tuned
            .key()
            .ends_with(r#""layout":"umap","neighbours":30,"min_dist":0.5,"epochs":300}"#));
        assert_eq!(serde_json::from_str::<EmbedParams>(&tuned.key()).unwrap(), tuned);
        assert_eq!(umap.epochs_for(10_000), 500);
        assert_eq!(umap.epochs_for(10_001), 200);
        assert!(serde_json::from_str::<EmbedParams>(r#"{"layout":"pca"}"#).is_err());
        // A misspelt field is an error, not a silent default.
        assert!(serde_json::from_str::<EmbedParams>(r#"{"perplexty":5}"#).is_err());
    }

    #[test]
    fn checks_name_the_api_field() {
        let field = |r: Result<(), ParamError>| r.unwrap_err().field;
        assert_eq!(field(EmbedParams::default().dims(4).check()), "dims");
        assert_eq!(field(EmbedParams::default().perplexity(f64::NAN).check()), "perplexity");
        assert_eq!(field(EmbedParams::default().iterations(0).check()), "iterations");
        assert_eq!(field(EmbedParams::default().pca(0).check()), "pca");
        assert_eq!(field(EmbedParams::default().check_for(50)), "perplexity");
        let umap = EmbedParams::default().layout(Layout::Umap);
        assert_eq!(field(umap.clone().neighbours(1).check()), "neighbours");
        assert_eq!(field(umap.clone().min_dist(1.0).check()), "min_dist");
        assert_eq!(field(umap.clone().min_dist(-0.1).check()), "min_dist");
        assert_eq!(field(umap.clone().epochs(Some(0)).check()), "epochs");
        assert_eq!(field(umap.clone().check_for(15)), "neighbours");
        // UMAP needs no perplexity's worth of points: 16 are enough for 15 neighbours.
        assert!(umap.check_for(16).is_ok());
        assert!(EmbedParams::default().check_for(91).is_ok());
        let csfs = vec!["det_mcp".to_string()];
        let with = |f: &dyn Fn(&mut ClusterParams)| {
            let mut p = ClusterParams::default();
            f(&mut p);
            p.check_for(100, &csfs)
        };
        assert!(with(&|_| {}).is_ok());
        assert_eq!(field(with(&|p| p.method = Method::Gmm { k: 0 })), "method.k");
        assert_eq!(field(with(&|p| p.method = Method::Gmm { k: 101 })), "method.k");
        assert_eq!(
            field(with(&|p| p.method = Method::Dbscan {
                eps: -1.0,
                min_points: 3
            })),
            "method.eps"
        );
        assert_eq!(
            field(with(&|p| p.method = Method::Dbscan {
                eps: 1.0,
                min_points: 0
            })),
            "method.min_points"
        );
        assert_eq!(field(with(&|p| p.space = Space::Pca { dims: 0 })), "space.dims");
        assert_eq!(
            field(with(
                &|p| p.space = Space::Embedding(EmbedParams::default().perplexity(-2.0))
            )),
            "space.perplexity"
        );
        assert_eq!(field(with(&|p| p.coverage = 1.5)), "coverage");
        // Density regions: on a layout only, a sane grid and bandwidth.
        assert_eq!(field(with(&|p| p.method = Method::density())), "space");
        let on_layout = |m: Method| {
            move |p: &mut ClusterParams| {
                p.method = m.clone();
                p.space = Space::Embedding(EmbedParams::default());
            }
        };
        assert!(with(&on_layout(Method::density())).is_ok());
        let grid = Method::Density {
            grid: 4,
            bandwidth: 1.5,
        };
        assert_eq!(field(with(&on_layout(grid))), "method.grid");
        let flat = Method::Density {
            grid: 64,
            bandwidth: 0.0,
        };
        assert_eq!(field(with(&on_layout(flat))), "method.bandwidth");
        // Its JSON: the defaults fill in.
        let m: Method = serde_json::from_str(r#"{"method": "density"}"#).unwrap();
        assert_eq!(m, Method::density());
        let e = with(&|p| p.csf = "nope".into()).unwrap_err();
        assert_eq!(e.field, "csf");
        assert!(e.problem.contains("det_mcp"), "{e}");
    }
}
