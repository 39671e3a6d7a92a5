//! The HTTP API's types, shared by the server (serialises) and the frontend (deserialises): every
//! request and response body. [`jobs`] holds the latent-space job API, [`access`] the roles.

use serde::{Deserialize, Serialize};

pub mod access;
pub mod jobs;

pub use access::{Identity, Role};
pub use jobs::{
    ClusterParams, EmbedParams, FailureKind, JobFailure, JobStatus, Layout, LiveLayout, Method, ParamError, Space,
    Started,
};

use crate::analysis::experiment::Report;

/// A stored benchmark report (`failscope bench`), as listed by `GET /api/reports`; the page itself
/// is `GET /reports/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// The recipe's name.
    pub name: String,
    /// The seeds it aggregates.
    pub seeds: Vec<u64>,
    /// The studies it was computed from.
    pub studies: Vec<i64>,
    /// When it was written (UTC, ISO 8601).
    pub created_at: String,
}

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
    /// Rows per dataset index.
    #[serde(default)]
    pub test_set_sizes: Vec<u64>,
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

/// The answer of `GET /api/studies/{id}/features/warm`: where the study's "similar cases" stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturesWarmth {
    /// The study's features are in the server's memory (a query need not read them).
    pub loaded: bool,
    /// Its partition index is built (queries are answered from it).
    pub indexed: bool,
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

/// `POST /api/links`: a view state to store under a short id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLink {
    /// The view state (a URL query string, as `ViewState::to_query` writes it).
    pub state: String,
}

/// A short link: `POST /api/links` answers with it; `/s/{id}` opens the stored view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Short id.
    pub id: String,
    /// The view state (the URL's query string).
    pub state: String,
}

/// A query string of the pairs whose value is set (`?a=1&b=x`, or empty).
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", crate::view::escape(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// `GET /api/studies/{id}/failures?…`: wrong predictions, most confident first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailuresQuery {
    /// Only this test set (dataset index); every test set when absent.
    pub test_set: Option<i64>,
    /// The CSF ranking them ([`crate::wire::DEFAULT_CSF`] when absent).
    pub csf: Option<String>,
    /// Page, from 0.
    pub page: Option<usize>,
    /// Rows per page (20 when absent, at most 500).
    pub per_page: Option<usize>,
}

impl FailuresQuery {
    /// As a query string.
    pub fn to_query(&self) -> String {
        query(&[
            ("test_set", self.test_set.map(|v| v.to_string())),
            ("csf", self.csf.clone()),
            ("page", self.page.map(|v| v.to_string())),
            ("per_page", self.per_page.map(|v| v.to_string())),
        ])
    }
}

/// `GET /api/studies/{id}/samples/{row}/neighbours?k=`: nearest samples in feature space.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NeighboursQuery {
    /// How many (8 when absent, at most 500).
    pub k: Option<usize>,
}

impl NeighboursQuery {
    /// As a query string.
    pub fn to_query(&self) -> String {
        query(&[("k", self.k.map(|v| v.to_string()))])
    }
}

/// `GET /api/studies/{id}/figures/{name}?…`: a risk–coverage or reliability figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FigureQuery {
    /// The test set (dataset index); risk–coverage draws every test set but validation when
    /// absent, reliability the i.i.d. set.
    pub test_set: Option<i64>,
    /// The CSF ([`crate::wire::DEFAULT_CSF`] when absent).
    pub csf: Option<String>,
}

impl FigureQuery {
    /// As a query string.
    pub fn to_query(&self) -> String {
        query(&[
            ("test_set", self.test_set.map(|v| v.to_string())),
            ("csf", self.csf.clone()),
        ])
    }
}

/// `GET /api/studies/{id}/hotspots?…`: the view's layout, as the web app's URL names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HotspotsQuery {
    /// The CSF whose working point defines silent failures ([`crate::wire::DEFAULT_CSF`]).
    pub csf: Option<String>,
    /// 2 or 3.
    pub dims: usize,
    /// t-SNE or UMAP.
    pub layout: Layout,
    /// UMAP's neighbours.
    pub nn: usize,
    /// UMAP's minimum distance.
    pub mindist: f64,
}

impl Default for HotspotsQuery {
    fn default() -> Self {
        let p = EmbedParams::default();
        Self {
            csf: None,
            dims: p.dims,
            layout: p.layout,
            nn: p.neighbours,
            mindist: p.min_dist,
        }
    }
}

impl HotspotsQuery {
    /// The query for the layout `p` (its dims, layout and UMAP parameters) and `csf`: the inverse
    /// of [`embed_params`](Self::embed_params) for a view's layout.
    pub fn of(csf: Option<String>, p: &EmbedParams) -> Self {
        Self {
            csf,
            dims: p.dims,
            layout: p.layout,
            nn: p.neighbours,
            mindist: p.min_dist,
        }
    }

    /// The embedding these name (the web app's view: the defaults but for these).
    pub fn embed_params(&self) -> EmbedParams {
        EmbedParams::default()
            .dims(self.dims)
            .layout(self.layout)
            .neighbours(self.nn)
            .min_dist(self.mindist)
    }

    /// As a query string.
    pub fn to_query(&self) -> String {
        let d = HotspotsQuery::default();
        query(&[
            ("csf", self.csf.clone()),
            ("dims", (self.dims != d.dims).then(|| self.dims.to_string())),
            (
                "layout",
                (self.layout != d.layout).then(|| self.layout.name().to_string()),
            ),
            ("nn", (self.nn != d.nn).then(|| self.nn.to_string())),
            ("mindist", (self.mindist != d.mindist).then(|| self.mindist.to_string())),
        ])
    }
}

/// The answer of `GET /api/studies/{id}/hotspots`: the layout's silent-failure regions, most
/// silent first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotspotRanking {
    /// The CSF.
    pub csf: String,
    /// Confidence at or above which a failure is silent (the CSF's working point).
    pub threshold: f64,
    /// The regions, ranked.
    pub hotspots: Vec<crate::analysis::hotspots::Hotspot>,
    /// The region of every sample row (−1: none).
    pub assignment: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_write_only_what_is_set_and_escape_values() {
        assert_eq!(FailuresQuery::default().to_query(), "");
        let q = FailuresQuery {
            csf: Some("det_mcp-maha average".into()),
            page: Some(2),
            per_page: Some(12),
            ..Default::default()
        };
        assert_eq!(q.to_query(), "?csf=det_mcp-maha%20average&page=2&per_page=12");
        assert_eq!(NeighboursQuery { k: Some(8) }.to_query(), "?k=8");
        assert_eq!(
            FigureQuery {
                test_set: Some(1),
                csf: None
            }
            .to_query(),
            "?test_set=1"
        );
    }

    #[test]
    fn a_hotspots_query_names_the_view_s_layout() {
        let p = EmbedParams::default()
            .dims(3)
            .layout(Layout::Umap)
            .neighbours(30)
            .min_dist(0.25);
        let q = HotspotsQuery::of(Some("mcd_mi".into()), &p);
        assert_eq!(q.embed_params(), p);
        let text = q.to_query();
        assert_eq!(text, "?csf=mcd_mi&dims=3&layout=umap&nn=30&mindist=0.25");
        assert_eq!(HotspotsQuery::default().to_query(), "");
    }

    #[test]
    fn response_types_round_trip() {
        let layout = StudyLayout {
            n: 3,
            test_sets: vec!["val_tuning".into(), "iid_study".into()],
            test_set_sizes: vec![1, 2],
            classes: vec!["nevus".into()],
            csfs: vec!["det_mcp".into()],
            meta: vec!["domain".into()],
            has_features: true,
            has_images: false,
        };
        let json = serde_json::to_string(&layout).unwrap();
        assert_eq!(serde_json::from_str::<StudyLayout>(&json).unwrap(), layout);
        let link = Link {
            id: "ab12cd34".into(),
            state: "study=1&color=shift".into(),
        };
        assert_eq!(
            serde_json::from_str::<Link>(&serde_json::to_string(&link).unwrap()).unwrap(),
            link
        );
        let new = NewLink {
            state: "study=1".into(),
        };
        assert_eq!(serde_json::from_str::<NewLink>(r#"{"state":"study=1"}"#).unwrap(), new);
        let q: FailuresQuery = serde_json::from_str(r#"{"csf":"det_pe","page":1}"#).unwrap();
        assert_eq!(q.csf.as_deref(), Some("det_pe"));
    }
}
