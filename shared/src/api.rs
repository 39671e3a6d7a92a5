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

/// `GET /api/studies/{id}/samples/{row}`: one sample for the inspector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleDetail {
    /// Row in the study.
    pub row: u64,
    /// FD-Shifts dataset index and the test set's name.
    pub dataset_idx: i64,
    /// Test set name.
    pub test_set: String,
    /// True class index and name.
    pub label: i64,
    /// Class name of the label.
    pub label_name: String,
    /// Predicted class index.
    pub predicted: i64,
    /// Class name of the prediction.
    pub predicted_name: String,
    /// Softmax (empty when not stored).
    pub probs: Vec<f32>,
    /// Class names, in softmax order.
    pub classes: Vec<String>,
    /// Every CSF: score and its percentile (0–100) within the sample's test set.
    pub scores: Vec<CsfScore>,
    /// The dataset's id of the sample.
    pub sample_id: Option<String>,
    /// Acquisition domain.
    pub domain: Option<String>,
    /// Corruption (`name:severity`) applied.
    pub corruption: Option<String>,
    /// Metadata columns.
    pub meta: Vec<(String, String)>,
    /// Whether `/image` serves its image.
    pub has_image: bool,
}

/// One CSF's score of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsfScore {
    /// CSF name.
    pub csf: String,
    /// Score (`None` = NaN).
    pub score: Option<f32>,
    /// Percentile within the test set (share of the set's samples with a lower score, × 100).
    pub percentile: Option<f32>,
}

/// A study's per-sample layout for the scatter: names for dataset indices and classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyLayout {
    /// Number of samples.
    pub n: u64,
    /// Test-set name per dataset index.
    pub test_sets: Vec<String>,
    /// Class names.
    pub classes: Vec<String>,
    /// CSFs with per-sample scores.
    pub csfs: Vec<String>,
    /// Metadata columns available as categorical colourings.
    pub meta: Vec<String>,
    /// Whether the study has features (so it can be embedded).
    pub has_features: bool,
    /// Whether sample images can be shown.
    pub has_images: bool,
}

/// A sample row with a value (neighbours: distance; failures: confidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedSample {
    /// Row.
    pub row: u64,
    /// Distance or confidence.
    pub value: f64,
    /// Label and prediction.
    pub label: i64,
    /// Prediction.
    pub predicted: i64,
    /// Dataset index.
    pub dataset_idx: i64,
}

/// A short link: `POST /api/links` answers with it; `/s/{id}` opens the stored view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Short id.
    pub id: String,
    /// The view state (the URL's query string).
    pub state: String,
}
