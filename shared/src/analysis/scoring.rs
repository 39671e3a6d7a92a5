//! Which CSFs FD-Shifts evaluates for an experiment, what each name computes from which outputs,
//! and how its scores are normalised — `Analysis.__init__`, `ConfidScore`, the registry of
//! `confid_scores.py` and `_get_confidence_scores`, for v0.1.1 and HEAD.

use super::csf::{self, Matrix, McSamples, WaicStd};
use super::experiment::ExperimentError;
use super::metrics::Compat;
use super::numpy;
use super::platt::Platt;
use super::temperature;

/// The names FD-Shifts adds for an external confidence named `maha` (HEAD and v0.1.1 alike).
pub const MAHA_SECONDARY: [&str; 3] = [
    "det_mcp-maha-average",
    "det_mcp-maha-product",
    "det_mcp-maha_qt-average",
];

/// HEAD's CSFs from `encoded_output.npz`, `train_features.npz` and `last_layer.npz`.
pub const FEATURE_CSFS: [&str; 7] = [
    "maha",
    "dknn",
    "vim",
    "react_det_mcp",
    "react_det_mls",
    "react_temp_mls",
    "react_energy_mls",
];

/// Which FD-Shifts code a name is resolved with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HEAD c4467ae (also the corrected mode's rules).
    Head,
    /// v0.1.1.
    V011,
}

impl Version {
    /// The FD-Shifts code a compatibility mode follows.
    pub fn of(compat: Compat) -> Self {
        match compat {
            Compat::FdShifts011 => Version::V011,
            Compat::Head | Compat::Corrected => Version::Head,
        }
    }

    fn external(self) -> &'static [&'static str] {
        match self {
            Version::Head => &["ext", "bpd", "tcp", "dg", "devries"],
            Version::V011 => &["ext", "bpd", "maha", "tcp", "dg", "devries"],
        }
    }

    /// `is_external_confid`: the name's first `_`-separated token is an external CSF.
    pub fn is_external(self, name: &str) -> bool {
        self.external().contains(&name.split('_').next().unwrap_or(""))
    }
}

/// `is_mcd_confid`.
pub fn is_mcd(name: &str) -> bool {
    name.contains("mcd") || name.contains("waic")
}

/// What a registered name computes (`_confid_funcs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Max,
    Energy,
    Entropy,
    ExpectedEntropy,
    MutualInformation,
    SoftmaxVariance,
    Waic,
    ExtWaic,
    ExtMcd,
    Identity,
}

fn registered(name: &str, version: Version) -> Option<Func> {
    let ext_family = ["ext", "bpd", "maha", "tcp", "dg", "devries"];
    if let Some(base) = name.strip_suffix("_waic") {
        if ext_family.contains(&base) {
            return Some(Func::ExtWaic);
        }
    }
    if let Some(base) = name.strip_suffix("_mcd") {
        if ext_family.contains(&base) {
            return Some(Func::ExtMcd);
        }
    }
    let head_only = [
        "react_det_mcp",
        "react_det_mls",
        "energy_mls",
        "react_energy_mls",
        "vim",
        "dknn",
        "temp_mls",
        "react_temp_mls",
    ];
    if version == Version::V011 && head_only.contains(&name) {
        return None;
    }
    Some(match name {
        "det_mcp" | "det_mls" | "react_det_mcp" | "react_det_mls" | "mcd_mcp" | "mcd_mls" => Func::Max,
        "energy_mls" | "react_energy_mls" => Func::Energy,
        "det_pe" | "mcd_pe" => Func::Entropy,
        "mcd_ee" => Func::ExpectedEntropy,
        "mcd_mi" => Func::MutualInformation,
        "mcd_sv" => Func::SoftmaxVariance,
        "mcd_waic" => Func::Waic,
        "ext" | "bpd" | "maha" | "vim" | "dknn" | "maha_qt" | "temp_mls" | "react_temp_mls" | "ext_qt" | "tcp"
        | "dg" | "devries" => Func::Identity,
        _ => return None,
    })
}

/// Whether a name is one FD-Shifts' registry knows (in the version `compat` follows). `temp_logits`
/// is registered but never produces a score vector there, so it is refused too.
pub fn is_known(name: &str, compat: Compat) -> bool {
    name != "temp_logits" && registered(name, Version::of(compat)).is_some()
}

/// Whose correctness, labels and softmax a CSF is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The deterministic softmax.
    Det,
    /// The MC-dropout mean.
    Mcd,
}

/// A CSF's raw scores on some rows, before normalisation.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// One score per row; `f32` when FD-Shifts' array is float32 (the feature CSFs).
    Scores {
        /// The scores.
        values: Vec<f64>,
        /// Whether FD-Shifts holds them as float32.
        f32: bool,
    },
    /// `(rows, k)` logits: what `temp_mls` passes to its temperature scaling.
    Logits {
        /// Row-major logits.
        values: Vec<f64>,
        /// `k`.
        cols: usize,
    },
}

impl Raw {
    fn scores(values: Vec<f64>) -> Self {
        Raw::Scores { values, f32: false }
    }
}

/// The experiment's outputs in the form FD-Shifts computes CSFs from (the MC arrays already
/// rounded to float16 where HEAD reads them so).
pub struct Outputs<'a> {
    /// Classes.
    pub c: usize,
    /// `(n, c)` softmax.
    pub softmax: &'a [f64],
    /// `(n, c)` logits.
    pub logits: Option<&'a [f64]>,
    /// `(n, c, m)` MC softmax, `(n, c, m)` MC logits, `m`.
    pub mc: Option<McOutputs>,
    /// `(n,)` external confidences.
    pub external: Option<&'a [f64]>,
    /// `(n, m_ext)` external confidences per pass, and `m_ext`.
    pub external_dist: Option<(Vec<f64>, usize)>,
    /// The feature CSFs' per-row scores (HEAD), with ReAct's softmax.
    pub features: Option<(super::features::FeatureScores, Vec<f64>)>,
}

/// MC-dropout outputs.
pub struct McOutputs {
    /// `(n, c, m)` softmax of every pass.
    pub softmax: Vec<f64>,
    /// `(n, c, m)` logits of every pass, when stored.
    pub logits: Option<Vec<f64>>,
    /// `m`.
    pub samples: usize,
    /// `(n, c)` mean softmax over the passes.
    pub mean: Vec<f64>,
}

fn gather(src: &[f64], rows: &[usize], width: usize) -> Vec<f64> {
    rows.iter()
        .flat_map(|&r| src[r * width..(r + 1) * width].iter().copied())
        .collect()
}

/// What a name's function is applied to (`ConfidScore.confid_args`).
enum Args {
    Matrix(Vec<f64>, usize),
    Vector(Vec<f64>, bool),
    Mc {
        mean: Vec<f64>,
        dist: Vec<f64>,
        samples: usize,
    },
    Ext {
        mean: Vec<f64>,
        dist: Vec<f64>,
        samples: usize,
    },
}

impl Outputs<'_> {
    /// The source a name is judged by, and its raw scores on `rows` (the study's det or MC rows),
    /// following `ConfidScore` and the registry. `compat` picks the MCD-WAIC row.
    pub fn raw(&self, name: &str, rows: &[usize], compat: Compat) -> Result<(Source, Raw), ExperimentError> {
        let version = Version::of(compat);
        let func = registered(name, version)
            .filter(|_| name != "temp_logits")
            .ok_or_else(|| ExperimentError::UnknownCsf(name.to_string()))?;
        let c = self.c;
        let (source, args) = if is_mcd(name) {
            let mc = self
                .mc
                .as_ref()
                .ok_or_else(|| ExperimentError::MissingMc(name.to_string()))?;
            let m = mc.samples;
            let args = if version.is_external(name) {
                let (dist, me) = self
                    .external_dist
                    .as_ref()
                    .ok_or_else(|| ExperimentError::MissingExternalDist(name.to_string()))?;
                let dist = gather(dist, rows, *me);
                let mean = dist.chunks(*me).map(numpy::mean).collect();
                Args::Ext {
                    mean,
                    dist,
                    samples: *me,
                }
            } else if name.contains("mls") {
                let logits = mc
                    .logits
                    .as_ref()
                    .ok_or_else(|| ExperimentError::MissingLogits(name.to_string()))?;
                let dist = gather(logits, rows, c * m);
                Args::Mc {
                    mean: McSamples::new(&dist, c, m).mean(),
                    dist,
                    samples: m,
                }
            } else {
                Args::Mc {
                    mean: gather(&mc.mean, rows, c),
                    dist: gather(&mc.softmax, rows, c * m),
                    samples: m,
                }
            };
            (Source::Mcd, args)
        } else {
            let head = version == Version::Head;
            let feature = |pick: fn(&super::features::FeatureScores) -> &Vec<f32>| -> Result<Args, ExperimentError> {
                let (f, _) = self
                    .features
                    .as_ref()
                    .ok_or_else(|| ExperimentError::MissingFeatures(name.to_string()))?;
                let all = pick(f);
                Ok(Args::Vector(rows.iter().map(|&r| f64::from(all[r])).collect(), true))
            };
            let react = || -> Result<&(super::features::FeatureScores, Vec<f64>), ExperimentError> {
                self.features
                    .as_ref()
                    .ok_or_else(|| ExperimentError::MissingFeatures(name.to_string()))
            };
            let args = if version.is_external(name) {
                let ext = self
                    .external
                    .ok_or_else(|| ExperimentError::MissingExternal(name.to_string()))?;
                Args::Vector(gather(ext, rows, 1), false)
            } else if head && name.contains("maha") {
                feature(|f| &f.maha)?
            } else if head && name.contains("vim") {
                feature(|f| &f.vim)?
            } else if head && name.contains("dknn") {
                feature(|f| &f.dknn)?
            } else if name.contains("mls") {
                if head && name.contains("react") {
                    let (f, _) = react()?;
                    Args::Matrix(gather(&f.react_logits, rows, f.classes), f.classes)
                } else {
                    let logits = self
                        .logits
                        .ok_or_else(|| ExperimentError::MissingLogits(name.to_string()))?;
                    Args::Matrix(gather(logits, rows, c), c)
                }
            } else if head && name.contains("react") {
                let (f, react_softmax) = react()?;
                Args::Matrix(gather(react_softmax, rows, f.classes), f.classes)
            } else {
                Args::Matrix(gather(self.softmax, rows, c), c)
            };
            (Source::Det, args)
        };
        let unsupported = || ExperimentError::UnsupportedCsf(name.to_string());
        let per_row =
            |data: &[f64], k: usize, f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> { data.chunks(k).map(f).collect() };
        let raw = match (func, args) {
            (Func::Max, Args::Matrix(m, k)) => Raw::scores(per_row(&m, k, &csf::max)),
            (Func::Max, Args::Mc { mean, .. }) => Raw::scores(per_row(&mean, c, &csf::max)),
            (Func::Energy, Args::Matrix(m, k)) => Raw::scores(per_row(&m, k, &csf::logsumexp)),
            (Func::Entropy, Args::Matrix(m, k)) => Raw::scores(per_row(&m, k, &csf::entropy)),
            (Func::Entropy, Args::Mc { mean, .. }) => Raw::scores(per_row(&mean, c, &csf::entropy)),
            (Func::ExpectedEntropy, Args::Mc { dist, samples, .. }) => {
                let s = McSamples::new(&dist, c, samples);
                Raw::scores((0..s.rows()).map(|i| csf::expected_entropy(&s, i)).collect())
            }
            (Func::MutualInformation, Args::Mc { mean, dist, samples }) => {
                let s = McSamples::new(&dist, c, samples);
                Raw::scores(
                    (0..s.rows())
                        .map(|i| csf::entropy(&mean[i * c..(i + 1) * c]) - csf::expected_entropy(&s, i))
                        .collect(),
                )
            }
            (Func::SoftmaxVariance, Args::Mc { dist, samples, .. }) => {
                let s = McSamples::new(&dist, c, samples);
                Raw::scores((0..s.rows()).map(|i| csf::softmax_variance(&s, i)).collect())
            }
            (Func::Waic, Args::Mc { dist, samples, .. }) => {
                let which = if compat == Compat::Corrected {
                    WaicStd::OwnRow
                } else {
                    WaicStd::RowZero
                };
                Raw::scores(csf::mcd_waic(&McSamples::new(&dist, c, samples), which))
            }
            (Func::ExtWaic, Args::Ext { mean, dist, samples }) => Raw::scores(
                mean.iter()
                    .zip(dist.chunks(samples))
                    .map(|(m, d)| m - csf::std_dev(d))
                    .collect(),
            ),
            (Func::ExtMcd, Args::Ext { mean, .. }) => Raw::scores(mean),
            (Func::Identity, Args::Vector(values, f32)) => Raw::Scores { values, f32 },
            (Func::Identity, Args::Matrix(values, cols)) if name.contains("temp_mls") => Raw::Logits { values, cols },
            _ => return Err(unsupported()),
        };
        Ok((source, raw))
    }
}

/// How a CSF's raw scores become confidences, fitted on `val_tuning`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalisation {
    /// Unchanged.
    Identity,
    /// `1 / (1 + exp(a·s + b))`.
    Platt(Platt),
    /// `expit(−(s − q))`, q the 0.01 quantile of the validation scores.
    Quantile(f64),
    /// `max softmax(z / T)`.
    Temperature(f64),
}

impl Normalisation {
    /// FD-Shifts' choice for a (reported) name, fitted on the validation study's raw scores with
    /// their correctness and labels. `Ok(None)` would be FD-Shifts' "All confids are NaN".
    pub fn fit(
        name: &str,
        raw: &Raw,
        correct: &[bool],
        labels: &[i64],
        compat: Compat,
    ) -> Result<Self, ExperimentError> {
        let head_rules = Version::of(compat) == Version::Head;
        let scores = || match raw {
            Raw::Scores { values, .. } => Ok(values.as_slice()),
            Raw::Logits { .. } => Err(ExperimentError::UnsupportedCsf(name.to_string())),
        };
        if name == "maha_qt" {
            let valid: Vec<f64> = scores()?.to_vec();
            // np.quantile propagates NaN.
            let q = if valid.iter().any(|v| v.is_nan()) {
                f64::NAN
            } else {
                numpy::quantile(&valid, 0.01).unwrap_or(f64::NAN)
            };
            return Ok(Normalisation::Quantile(q));
        }
        if head_rules && name.contains("temp_mls") {
            let Raw::Logits { values, cols } = raw else {
                return Err(ExperimentError::UnsupportedCsf(name.to_string()));
            };
            let m = Matrix::new(values, *cols);
            let t = match compat {
                Compat::Corrected => temperature::fit_converged(&m, labels),
                _ => f64::from(temperature::fit_like_fd_shifts(&m, labels)),
            };
            return Ok(Normalisation::Temperature(t));
        }
        if csf::needs_platt(name) {
            let fit = Platt::fit(scores()?, correct).map_err(|_| ExperimentError::PlattAllNan(name.to_string()))?;
            return Ok(Normalisation::Platt(fit));
        }
        Ok(Normalisation::Identity)
    }

    /// Applies the normalisation, in float32 where FD-Shifts' array is float32 (numpy keeps
    /// float32 through a float64 scalar). Logits without a temperature are an `UnsupportedCsf`.
    pub fn apply(&self, name: &str, raw: Raw) -> Result<Vec<f64>, ExperimentError> {
        let per_f32 = |values: Vec<f64>, f: &dyn Fn(f32) -> f32| -> Vec<f64> {
            values.into_iter().map(|s| f64::from(f(s as f32))).collect()
        };
        Ok(match (self, raw) {
            (Normalisation::Temperature(t), Raw::Logits { values, cols }) => values
                .chunks(cols)
                .map(|row| temperature::confidence(row, *t))
                .collect(),
            (_, Raw::Logits { .. }) => return Err(ExperimentError::UnsupportedCsf(name.to_string())),
            (Normalisation::Identity | Normalisation::Temperature(_), Raw::Scores { values, .. }) => values,
            (Normalisation::Platt(p), Raw::Scores { values, f32: false }) => {
                values.into_iter().map(|s| p.apply(s)).collect()
            }
            (Normalisation::Platt(p), Raw::Scores { values, f32: true }) => {
                let (a, b) = (p.a as f32, p.b as f32);
                per_f32(values, &|s| 1.0 / (1.0 + (s * a + b).exp()))
            }
            // scipy's expit(−(s − q)) = 1 / (1 + exp(s − q)), with the C library's exp.
            (Normalisation::Quantile(q), Raw::Scores { values, f32: false }) => {
                values.into_iter().map(|s| 1.0 / (1.0 + (s - q).exp())).collect()
            }
            (Normalisation::Quantile(q), Raw::Scores { values, f32: true }) => {
                let q = *q as f32;
                per_f32(values, &|s| 1.0 / (1.0 + (s - q).exp()))
            }
        })
    }
}
