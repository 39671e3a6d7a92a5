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
