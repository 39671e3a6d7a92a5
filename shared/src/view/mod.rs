//! The web app's view state, kept in the URL's query string so a link opens exactly the same view:
//! study, layout (t-SNE or UMAP and its parameters), colour mode, CSF, filters, camera, marker
//! style, selected sample, open panel and the comparison (a second study or CSF at a coverage).
//! `?study=1&layout=umap&nn=30&color=confusion&csf=det_mcp&hide=2,3&sev=blur:3-5&fail=1&shape=class&sel=12&panel=failures&cam=0.1,-0.2,1.5`;
//! `?study=1&vs=2&csf2=mcd_ee&cov=0.9&color=compare&panel=compare` compares study 1 under
//! `det_mcp` with study 2 under `mcd_ee` at 90 % coverage.

pub mod camera;
pub mod shifts;

pub use camera::Camera;
pub use shifts::SeverityRange;

use std::fmt::Write as _;

use crate::api::jobs::{DEFAULT_MIN_DIST, DEFAULT_NEIGHBOURS};
use crate::api::{EmbedParams, Layout};

/// What the points are coloured by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColorMode {
    /// i.i.d. vs each shifted test set.
    TestSet,
    /// Correct / incorrect × true class.
    Confusion,
    /// The chosen CSF's confidence, separate scales for successes and failures.
    Confidence,
    /// Cluster of the default clustering.
    Cluster,
    /// A metadata column (`domain`, `sex`, `age`, …).
    Meta(String),
    /// The comparison's verdict per point (`analysis::compare::Verdict`).
    Compare,
}

impl ColorMode {
    /// The URL form.
    pub fn name(&self) -> String {
        match self {
            ColorMode::TestSet => "testset".into(),
            ColorMode::Confusion => "confusion".into(),
            ColorMode::Confidence => "confidence".into(),
            ColorMode::Cluster => "cluster".into(),
            ColorMode::Meta(k) => format!("meta:{k}"),
            ColorMode::Compare => "compare".into(),
        }
    }

    /// Parses the URL form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "testset" => ColorMode::TestSet,
            "confusion" => ColorMode::Confusion,
            "confidence" => ColorMode::Confidence,
            "cluster" => ColorMode::Cluster,
            "compare" => ColorMode::Compare,
            other => ColorMode::Meta(other.strip_prefix("meta:").filter(|k| !k.is_empty())?.to_string()),
        })
    }
}

/// The side panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// The selected sample.
    Inspector,
    /// Most confident failures.
    Failures,
    /// Cluster statistics.
    Clusters,
    /// CSF × test-set metrics and risk–coverage curves.
    Benchmark,
    /// The box selection's statistics.
    Selection,
    /// The comparison with a second study or CSF.
    Compare,
}

impl Panel {
    /// Every panel, in tab order.
    pub const TABS: [Panel; 6] = [
        Panel::Inspector,
        Panel::Failures,
        Panel::Clusters,
        Panel::Benchmark,
        Panel::Selection,
        Panel::Compare,
    ];

    const ALL: [(Panel, &'static str); 6] = [
        (Panel::Inspector, "inspector"),
        (Panel::Failures, "failures"),
        (Panel::Clusters, "clusters"),
        (Panel::Benchmark, "benchmark"),
        (Panel::Selection, "selection"),
        (Panel::Compare, "compare"),
    ];

    /// The URL form.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("inspector", |(_, n)| n)
    }

    /// Parses the URL form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(p, _)| *p)
    }
}

/// Everything that defines a view.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewState {
    /// Study id (`None`: the study list).
    pub study: Option<i64>,
    /// 2-D or 3-D embedding.
    pub dims: u8,
    /// t-SNE or UMAP.
    pub layout: Layout,
    /// UMAP's neighbours (`nn`).
    pub neighbours: usize,
    /// UMAP's minimum distance (`mindist`).
    pub min_dist: f64,
    /// Colouring.
    pub color: ColorMode,
    /// CSF for confidence colouring, failures and silent failures.
    pub csf: String,
    /// Hidden test sets (dataset indices).
    pub hide_sets: Vec<i64>,
    /// Hidden true classes.
    pub hide_classes: Vec<i64>,
    /// Severities shown per corruption type (`sev=gaussian_noise:3-5`), sorted by type.
    pub severity: Vec<SeverityRange>,
    /// Points the filters leave out stay visible in grey (`ghost=1`).
    pub ghost: bool,
    /// Contours of the silent failures' density over a 2-D layout (`contours=1`).
    pub contours: bool,
    /// Only failures.
    pub failures_only: bool,
    /// Only silent failures (wrong and confident at the 95 %-coverage threshold).
    pub silent_only: bool,
    /// True class drawn as the marker's shape (circle, square, triangle, …).
    pub class_shapes: bool,
    /// Selected sample row.
    pub sel: Option<u64>,
    /// Open panel.
    pub panel: Panel,
    /// Camera.
    pub cam: Camera,
    /// Marker size in pixels.
    pub size: f32,
    /// Marker opacity.
    pub opacity: f32,
    /// The study compared with this one over the same samples (`vs`).
    pub vs: Option<i64>,
    /// The compared side's CSF (`csf2`; `None`: the view's own).
    pub csf_b: Option<String>,
    /// The comparison's working point: the coverage of each side's i.i.d. set (`cov`).
    pub coverage: f64,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            study: None,
            dims: 2,
            layout: Layout::Tsne,
            neighbours: DEFAULT_NEIGHBOURS,
            min_dist: DEFAULT_MIN_DIST,
            color: ColorMode::TestSet,
            csf: crate::wire::DEFAULT_CSF.into(),
            hide_sets: Vec::new(),
            hide_classes: Vec::new(),
            severity: Vec::new(),
            ghost: false,
            contours: false,
            failures_only: false,
            silent_only: false,
            class_shapes: false,
            sel: None,
            panel: Panel::Inspector,
            cam: Camera::default(),
            size: 4.0,
            opacity: 0.85,
            vs: None,
            csf_b: None,
            coverage: crate::wire::SILENT_FAILURE_COVERAGE,
        }
    }
}

/// Query-string escaping of a value (RFC 3986 unreserved characters kept, and `:` and `,`, which
/// the view's values use as separators).
pub(crate) fn escape(s: &str) -> String {
    crate::wire::percent_encode(s, b"-_.~:,")
}

fn unescape(s: &str) -> Result<String, String> {
    let bytes = crate::wire::percent_decode(s, true).ok_or_else(|| format!("bad escape in {s:?}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{s:?} is not UTF-8"))
}

fn list<T: std::str::FromStr>(key: &str, v: &str) -> Result<Vec<T>, String> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|x| {
            x.parse()
                .map_err(|_| format!("{key}={v}: expected comma-separated numbers"))
        })
        .collect()
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{key}={v}: expected a number"))
}

/// A number for an embedding parameter, checked as the API checks it (`set` puts it in place).
fn embed_number<T: std::str::FromStr + Copy>(
    key: &str,
    v: &str,
    set: fn(EmbedParams, T) -> EmbedParams,
) -> Result<T, String> {
    let x = number(key, v)?;
    set(EmbedParams::default(), x)
        .check()
        .map_err(|e| format!("{key}={v}: {}", e.problem))?;
    Ok(x)
}

impl ViewState {
    /// The embedding this view draws.
    pub fn embed_params(&self) -> EmbedParams {
        EmbedParams::default()
            .dims(usize::from(self.dims))
            .layout(self.layout)
            .neighbours(self.neighbours)
            .min_dist(self.min_dist)
    }

    /// Whether a comparison is set: another study, or a second CSF of this one.
    pub fn comparing(&self) -> bool {
        self.vs.is_some() || self.csf_b.is_some()
    }

    /// The compared side's CSF (the view's own unless `csf2` names another).
    pub fn csf_of_b(&self) -> &str {
        self.csf_b.as_deref().unwrap_or(&self.csf)
    }

    /// Switches between 2-D and 3-D, with the camera reset (the other layout's frame differs).
    pub fn toggle_dims(&mut self) {
        self.dims = if self.dims == 3 { 2 } else { 3 };
        self.cam = Camera::default();
    }

    /// The query string (without `?`); defaults are left out, so links stay short.
    pub fn to_query(&self) -> String {
        let d = ViewState::default();
        let mut q = String::new();
        let mut put = |k: &str, v: String| {
            if !q.is_empty() {
                q.push('&');
            }
            let _ = write!(q, "{k}={}", escape(&v));
        };
        let join = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        if let Some(s) = self.study {
            put("study", s.to_string());
        }
        if self.dims != d.dims {
            put("dims", self.dims.to_string());
        }
        if self.layout != d.layout {
            put("layout", self.layout.name().into());
        }
        if self.neighbours != d.neighbours {
            put("nn", self.neighbours.to_string());
        }
        if self.min_dist != d.min_dist {
            put("mindist", self.min_dist.to_string());
        }
        if self.color != d.color {
            put("color", self.color.name());
        }
        if self.csf != d.csf {
            put("csf", self.csf.clone());
        }
        if !self.hide_sets.is_empty() {
            put("hide", join(&self.hide_sets));
        }
        if !self.hide_classes.is_empty() {
            put("hideclass", join(&self.hide_classes));
        }
        if !self.severity.is_empty() {
            let ranges: Vec<String> = self.severity.iter().map(ToString::to_string).collect();
            put("sev", ranges.join(","));
        }
        if self.ghost {
            put("ghost", "1".into());
        }
        if self.contours {
            put("contours", "1".into());
        }
        if self.failures_only {
            put("fail", "1".into());
        }
        if self.silent_only {
            put("silent", "1".into());
        }
        if self.class_shapes {
            put("shape", "class".into());
        }
        if let Some(s) = self.sel {
            put("sel", s.to_string());
        }
        if self.panel != d.panel {
            put("panel", self.panel.name().into());
        }
        if self.cam != d.cam {
            let c = self.cam;
            let orbit = if c.yaw != 0.0 || c.pitch != 0.0 {
                format!(",{},{}", c.yaw, c.pitch)
            } else {
                String::new()
            };
            put("cam", format!("{},{},{}{orbit}", c.x, c.y, c.zoom));
        }
        if self.size != d.size {
            put("size", self.size.to_string());
        }
        if self.opacity != d.opacity {
            put("opacity", self.opacity.to_string());
        }
        if let Some(v) = self.vs {
            put("vs", v.to_string());
        }
        if let Some(c) = &self.csf_b {
            put("csf2", c.clone());
        }
        if self.coverage != d.coverage {
            put("cov", self.coverage.to_string());
        }
        q
    }

    /// Parses a query string (with or without `?`). Unknown keys are ignored (newer links in older
    /// apps); a malformed value is an error naming the key, shown on the error page.
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut s = ViewState::default();
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.len() > 8192 {
            return Err("the view state is longer than 8 KiB".into());
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let v = unescape(raw)?;
            match k {
                "study" => s.study = Some(number(k, &v)?),
                "dims" => {
                    s.dims = number(k, &v)?;
                    if !matches!(s.dims, 2 | 3) {
                        return Err(format!("dims={v}: expected 2 or 3"));
                    }
                }
                "layout" => {
                    s.layout = Layout::from_name(&v).ok_or_else(|| format!("layout={v}: expected tsne or umap"))?
                }
                "nn" => s.neighbours = embed_number(k, &v, EmbedParams::neighbours)?,
                "mindist" => s.min_dist = embed_number(k, &v, EmbedParams::min_dist)?,
                "color" => s.color = ColorMode::parse(&v).ok_or_else(|| format!("color={v}: unknown colour mode"))?,
                "csf" if !v.is_empty() => s.csf = v,
                "hide" => s.hide_sets = list(k, &v)?,
                "hideclass" => s.hide_classes = list(k, &v)?,
                "sev" => s.severity = shifts::parse_ranges(&v)?,
                "ghost" => s.ghost = v == "1",
                "contours" => s.contours = v == "1",
                "fail" => s.failures_only = v == "1",
                "silent" => s.silent_only = v == "1",
                "shape" => {
                    s.class_shapes = match v.as_str() {
                        "class" => true,
                        "none" => false,
                        _ => return Err(format!("shape={v}: expected class or none")),
                    }
                }
                "sel" => s.sel = Some(number(k, &v)?),
                "panel" => s.panel = Panel::parse(&v).ok_or_else(|| format!("panel={v}: unknown panel"))?,
                "cam" => {
                    let c: Vec<f32> = list(k, &v)?;
                    if !matches!(c.len(), 3 | 5) || !c.iter().all(|x| x.is_finite()) || c[2] <= 0.0 {
                        return Err(format!("cam={v}: expected x,y,zoom[,yaw,pitch] with zoom > 0"));
                    }
                    s.cam = Camera {
                        x: c[0],
                        y: c[1],
                        zoom: c[2],
                        yaw: c.get(3).copied().unwrap_or(0.0),
                        pitch: c.get(4).copied().unwrap_or(0.0),
                    };
                }
                "size" => s.size = number::<f32>(k, &v)?.clamp(1.0, 40.0),
                "opacity" => s.opacity = number::<f32>(k, &v)?.clamp(0.05, 1.0),
                "vs" => s.vs = Some(number(k, &v)?),
                "csf2" if !v.is_empty() => s.csf_b = Some(v),
                "cov" => {
                    s.coverage = number(k, &v)?;
                    if !(s.coverage > 0.0 && s.coverage <= 1.0) {
                        return Err(format!("cov={v}: expected a coverage in (0, 1]"));
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let s = ViewState {
            study: Some(3),
            dims: 3,
            layout: Layout::Umap,
            neighbours: 30,
            min_dist: 0.25,
            color: ColorMode::Meta("site name".into()),
            csf: "mcd_mi".into(),
            hide_sets: vec![0, 4],
            hide_classes: vec![1],
            severity: shifts::parse_ranges("gaussian_noise:3-5,blur:1-2").unwrap(),
            ghost: true,
            contours: true,
            failures_only: true,
            silent_only: true,
            class_shapes: true,
            sel: Some(42),
            panel: Panel::Failures,
            cam: Camera {
                x: 0.25,
                y: -1.5,
                zoom: 3.0,
                yaw: 0.5,
                pitch: -0.25,
            },
            size: 6.0,
            opacity: 0.5,
            vs: Some(7),
            csf_b: Some("mcd_ee".into()),
            coverage: 0.8,
        };
        let q = s.to_query();
        assert_eq!(ViewState::from_query(&q).unwrap(), s);
        assert!(q.contains("color=meta:site%20name"), "{q}");
        assert!(q.contains("layout=umap&nn=30&mindist=0.25"), "{q}");
        assert!(q.contains("sev=blur:1-2,gaussian_noise:3-5"), "{q}");
        assert!(q.ends_with("vs=7&csf2=mcd_ee&cov=0.8"), "{q}");
        assert!(s.comparing() && s.csf_of_b() == "mcd_ee");
        let compare = ViewState::from_query("study=1&vs=2&color=compare&panel=compare").unwrap();
        assert_eq!((&compare.color, compare.panel), (&ColorMode::Compare, Panel::Compare));
        assert_eq!(compare.csf_of_b(), crate::wire::DEFAULT_CSF);
        assert!(!ViewState::default().comparing());
        let p = s.embed_params();
        assert_eq!(
            (p.dims, p.layout, p.neighbours, p.min_dist),
            (3, Layout::Umap, 30, 0.25)
        );
        assert_eq!(ViewState::default().to_query(), "");
        assert_eq!(ViewState::from_query("?").unwrap(), ViewState::default());
        // 2-D links without orbit angles stay three numbers.
        let flat = ViewState::from_query("cam=1,2,3").unwrap();
        assert_eq!(flat.cam.yaw, 0.0);
        assert_eq!(flat.to_query(), "cam=1,2,3");
    }

    #[test]
    fn malformed_values_are_named() {
        for (q, key) in [
            ("study=abc", "study=abc"),
            ("color=rainbow", "color=rainbow"),
            ("cam=1,2", "cam=1,2"),
            ("cam=0,0,-1", "cam=0,0,-1"),
            ("dims=4", "dims=4"),
            ("layout=pca", "layout=pca"),
            ("nn=1", "nn=1"),
            ("nn=x", "nn=x"),
            ("mindist=2", "mindist=2"),
            ("hide=1,x", "hide=1,x"),
            ("sev=blur:4-2", "sev=blur:4-2"),
            ("panel=nope", "panel=nope"),
            ("shape=star", "shape=star"),
            ("csf=%ZZ", "bad escape"),
            ("vs=two", "vs=two"),
            ("cov=0", "cov=0"),
            ("cov=1.5", "cov=1.5"),
        ] {
            let e = ViewState::from_query(q).unwrap_err();
            assert!(e.contains(key), "{q}: {e}");
        }
        assert!(ViewState::from_query(&"a".repeat(9000)).is_err());
        // Unknown keys are ignored.
        assert_eq!(ViewState::from_query("future=1&study=2").unwrap().study, Some(2));
    }
}
