//! The HTTP API's types, shared by the server (serialises) and the frontend (deserialises).

use serde::{Deserialize, Serialize};

use crate::analysis::experiment::Report;

/// One study in the store, as listed by `GET /api/studies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySummary {
    /// Store id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Where it came from (e.g. the FD-Shifts experiment folder).
    pub source: String,
    /// Kind of source: `fd-shifts`, `csv`, …
    pub kind: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Rows over all test sets.
    pub n_samples: u64,
    /// Number of classes.
    pub n_classes: u32,
    /// Test sets (FD-Shifts studies) in order.
    pub test_sets: Vec<String>,
    /// CSFs evaluated.
    pub csfs: Vec<String>,
}

/// `GET /api/studies/{id}`: a study with its benchmark (test set → CSF → metric).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyDetail {
    /// The summary.
    pub summary: StudySummary,
    /// Which definitions the metrics follow (`current` or `fd-shifts-0.1.1`).
    pub compat: String,
    /// Metrics.
    pub report: Report,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for a person.
    pub error: String,
}

/// One cluster of a study's latent space and what is in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStats {
    /// Cluster id (as in [`Clustering::assignment`]).
    pub id: u32,
    /// Number of samples.
    pub size: u64,
    /// Samples per true class (index = class).
    pub class_mix: Vec<u64>,
    /// Samples per FD-Shifts dataset index (index = dataset_idx: 0 val, 1 iid, 2… shifted).
    pub test_set_mix: Vec<u64>,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Wrong predictions.
    pub failures: u64,
    /// Wrong predictions with a confidence at or above the silent-failure threshold.
    pub silent_failures: u64,
    /// Sample row nearest to the cluster's centroid.
    pub representative: u64,
}

/// A clustering of a study's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clustering {
    /// Cluster of each sample row; `-1` = noise (DBSCAN).
    pub assignment: Vec<i32>,
    /// Per-cluster statistics, by id.
    pub clusters: Vec<ClusterStats>,
    /// The CSF whose confidence defines silent failures.
    pub csf: String,
    /// Confidence at or above which a failure is silent: the CSF's value at the chosen coverage
    /// of the i.i.d. test set.
    pub threshold: f64,
}
