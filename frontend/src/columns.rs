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
    /// The comparison with a second study or CSF, when the view sets one.
    pub compare: Option<Compared>,
}

/// What a comparison was computed for (the view's fields it depends on).
#[derive(Clone, Debug, PartialEq)]
pub struct CompareKey {
    /// The other study (`None`: this one, under a second CSF).
    pub vs: Option<i64>,
    /// Side A's CSF.
    pub csf_a: String,
    /// Side B's CSF.
    pub csf_b: String,
    /// The working point's coverage.
    pub coverage: f64,
}

impl CompareKey {
    /// The comparison `s` asks for, if any.
    pub fn of(s: &failscope_shared::view::ViewState) -> Option<Self> {
        s.comparing().then(|| CompareKey {
            vs: s.vs,
            csf_a: s.csf.clone(),
            csf_b: s.csf_of_b().to_string(),
            coverage: s.coverage,
        })
    }

    /// The two sides' names in legends: the CSFs for one study, `A` and `B` for two.
    pub fn names(&self) -> (String, String) {
        match self.vs {
            None => (self.csf_a.clone(), self.csf_b.clone()),
            Some(_) => ("A".into(), "B".into()),
        }
    }
}

/// A computed comparison (`failscope_shared::analysis::compare`).
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    /// What it compares.
    pub key: CompareKey,
    /// Verdict per point, counts and both sides' tallies.
    pub result: failscope_shared::analysis::compare::Comparison,
    /// Rows of this study found in the other (all of them for one study).
    pub matched: usize,
}

impl Columns {
    /// These columns as one side of a comparison.
    pub fn side(&self) -> failscope_shared::analysis::compare::Side<'_> {
        failscope_shared::analysis::compare::Side {
            dataset_idx: &self.dataset_idx,
            label: &self.label,
            predicted: &self.predicted,
            score: &self.score,
        }
    }

    /// Whether point `i` is a silent failure: wrong, with the CSF's score at or above `threshold`.
    pub fn is_silent(&self, i: usize, threshold: f64) -> bool {
        failscope_shared::analysis::rc::is_silent(self.label[i] != self.predicted[i], self.score[i], threshold)
    }
}
