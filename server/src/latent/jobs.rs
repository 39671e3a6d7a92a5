//! Latent-space work on a stored study, cached in the store by its parameters: an unchanged request
//! is answered from the cache, a changed parameter recomputes. [`Jobs`] runs the same work on a
//! background thread and reports its progress (for the HTTP API).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use failscope_shared::api::Clustering;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::cluster::{self, Method, Samples};
use super::EmbedParams;
use crate::error::InputError;
use crate::store::{Store, StoreError};

/// A failed latent-space job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad parameters or features.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Parameters of a clustering; their JSON is the cache key. Missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
            csf: "det_mcp".into(),
            coverage: 0.95,
            seed: 0,
        }
    }
}

fn features(store: &Store, id: i64) -> Result<Array2<f32>, JobError> {
    store.features(id)?.ok_or_else(|| {
        JobError::Input(InputError::item(
            format!("study {id}"),
            "has no features: import an FD-Shifts folder with encoded_output.npz, or run `failscope infer` with a model that returns (logits, features)",
        ))
    })
}

/// The study's embedding for `params`, from the cache or computed (and cached). The flag says
/// whether it came from the cache.
pub fn embedding(
    store: &Store,
    id: i64,
    params: &EmbedParams,
    progress: super::Progress<'_>,
) -> Result<(Array2<f32>, bool), JobError> {
    let key = params.key();
    let n = store.samples(id)?.len();
    if let Some(blob) = store.cached(id, "embedding", &key)? {
        let values: Vec<f32> = blob
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Ok(a) = Array2::from_shape_vec((n, params.dims), values) {
            return Ok((a, true));
        }
    }
    let x = features(store, id)?;
    let y = super::embed(x.view(), params, progress)?;
    let blob: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    store.cache(id, "embedding", &key, &blob)?;
    Ok((y, false))
}

/// The study's clustering for `params`, from the cache or computed (and cached).
pub fn clustering(
    store: &Store,
    id: i64,
    params: &ClusterParams,
    progress: super::Progress<'_>,
) -> Result<(Clustering, bool), JobError> {
    let key = serde_json::to_string(params).expect("plain fields serialise");
    if let Some(blob) = store.cached(id, "clustering", &key)? {
        if let Ok(c) = serde_json::from_slice(&blob) {
            return Ok((c, true));
        }
    }
    let samples = store.samples(id)?;
    let scores = store.scores(id)?;
    let confidence = scores.get(&params.csf).ok_or_else(|| {
        InputError::item(
            "--csf",
            format!(
                "study {id} has no CSF {:?}; it has: {}",
                params.csf,
                scores.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let space = match &params.space {
        Space::Pca { dims } => {
            let x = features(store, id)?;
            super::check_finite(x.view())?;
            progress("pca", 0.0);
            super::pca(x.view(), *dims)?
        }
        Space::Embedding(p) => embedding(store, id, p, progress)?.0,
    };
    let labels: Vec<i64> = samples.iter().map(|s| s.label).collect();
    let predicted: Vec<i64> = samples.iter().map(|s| s.predicted).collect();
    let dataset_idx: Vec<i64> = samples.iter().map(|s| s.dataset_idx).collect();
    progress("clustering", 0.0);
    let assignment = cluster::assign(space.view(), &labels, &params.method, params.seed)?;
    let s = Samples {
        labels: &labels,
        predicted: &predicted,
        dataset_idx: &dataset_idx,
        confidence,
    };
    let result = cluster::summarise(space.view(), assignment, &s, &params.csf, params.coverage);
    progress("clustering", 1.0);
    store.cache(
        id,
        "clustering",
        &key,
        &serde_json::to_vec(&result).expect("plain fields serialise"),
    )?;
    Ok((result, false))
}

/// What a background job is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// Stage name (`pca`, `neighbours`, `t-SNE`, `clustering`, `done`, `failed`).
    pub stage: String,
    /// Fraction of the stage done, 0–1.
    pub fraction: f64,
    /// Finished (successfully or not).
    pub finished: bool,
    /// The error, when it failed.
    pub error: Option<String>,
}

struct Job {
    study: i64,
    work: Work,
    stage: Mutex<String>,
    fraction: AtomicU64,
    outcome: Mutex<Option<Result<(), String>>>,
}

/// Background latent-space jobs over one store file (each job opens its own connection).
#[derive(Clone, Default)]
pub struct Jobs {
    db: PathBuf,
    next: Arc<AtomicU64>,
    jobs: Arc<Mutex<HashMap<u64, Arc<Job>>>>,
}

/// A job's work: computes and caches a result in the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// [`embedding`].
    Embed(EmbedParams),
    /// [`clustering`].
    Cluster(ClusterParams),
}

impl Jobs {
    /// Jobs on the store at `db`.
    pub fn new(db: PathBuf) -> Self {
        Self { db, ..Self::default() }
    }

    /// Starts `work` on study `id` on a new thread; returns the job id. The same work on the same
    /// study while it still runs is not started twice: its running job's id is returned.
    pub fn start(&self, id: i64, work: Work) -> u64 {
        // One lock for the check and the insert, so two identical requests cannot both start.
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let running = jobs
            .iter()
            .find(|(_, j)| j.study == id && j.work == work && j.outcome.lock().expect("outcome lock").is_none());
        if let Some((job_id, _)) = running {
            return *job_id;
        }
        let job_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let job = Arc::new(Job {
            study: id,
            work,
            stage: Mutex::new("queued".into()),
            fraction: AtomicU64::new(0f64.to_bits()),
            outcome: Mutex::new(None),
        });
        jobs.insert(job_id, job.clone());
        drop(jobs);
        let db = self.db.clone();
        std::thread::spawn(move || {
            let report = |stage: &str, f: f64| {
                *job.stage.lock().expect("stage lock") = stage.to_string();
                job.fraction.store(f.to_bits(), Ordering::Relaxed);
            };
            let result = Store::open(&db)
                .map_err(JobError::from)
                .and_then(|store| match &job.work {
                    Work::Embed(p) => embedding(&store, id, p, &report).map(|_| ()),
                    Work::Cluster(p) => clustering(&store, id, p, &report).map(|_| ()),
                })
                .map_err(|e| e.to_string());
            *job.outcome.lock().expect("outcome lock") = Some(result);
        });
        job_id
    }

    /// A job's study and work, or `None` for an unknown id.
    pub fn work(&self, job_id: u64) -> Option<(i64, Work)> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.get(&job_id).map(|j| (j.study, j.work.clone()))
    }

    /// A job's status, or `None` for an unknown id.
    pub fn status(&self, job_id: u64) -> Option<JobStatus> {
        let job = self.jobs.lock().expect("jobs lock").get(&job_id)?.clone();
        let outcome = job.outcome.lock().expect("outcome lock").clone();
        Some(match outcome {
            None => JobStatus {
                stage: job.stage.lock().expect("stage lock").clone(),
                fraction: f64::from_bits(job.fraction.load(Ordering::Relaxed)),
                finished: false,
                error: None,
            },
            Some(Ok(())) => JobStatus {
                stage: "done".into(),
                fraction: 1.0,
                finished: true,
                error: None,
            },
            Some(Err(e)) => JobStatus {
                stage: "failed".into(),
                fraction: 1.0,
                finished: true,
                error: Some(e),
            },
        })
    }
}
