//! The scatter's data model: what is known of every point, loaded column by column from
//! `/api/studies/{id}/columns/…` (see [`crate::api::columns`]).

/// A categorical metadata column (e.g. the acquisition site).
#[derive(Clone, Default, PartialEq)]
pub struct MetaColumn {
    /// Its key (`domain` or a metadata column's name).
    pub key: String,
    /// Category code per point; 0 is "(none)".
    pub codes: Vec<u16>,
    /// Category names by code (`categories[0]` is "(none)").
    pub categories: Vec<String>,
}

/// What is known per point.
#[derive(Clone, Default, PartialEq)]
pub struct Columns {
    /// FD-Shifts dataset index.
    pub dataset_idx: Vec<u16>,
    /// True class.
    pub label: Vec<u16>,
    /// Prediction.
    pub predicted: Vec<u16>,
    /// The chosen CSF's score.
    pub score: Vec<f32>,
    /// Cluster per point (−1 noise), when clustered.
    pub cluster: Option<Vec<i32>>,
    /// The chosen metadata column, when colouring by one.
    pub meta: Option<MetaColumn>,
}

impl Columns {
    /// Whether point `i` is a silent failure: wrong, with the CSF's score at or above `threshold`.
    pub fn is_silent(&self, i: usize, threshold: f64) -> bool {
        self.label[i] != self.predicted[i] && f64::from(self.score[i]) >= threshold
    }
}
