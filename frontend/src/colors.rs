//! Point colours for each colour mode, with the legend; filters hide points (alpha 0).

use failscope_shared::analysis::compare::Verdict;
use failscope_shared::view::camera::GHOST_ALPHA;
use failscope_shared::view::{shifts, ColorMode, ViewState};

use crate::columns::Columns;
use crate::scatter::SHAPES;

/// Ten well-separated colours (Tableau 10).
pub const PALETTE: [[u8; 3]; 10] = [
    [78, 121, 167],
    [242, 142, 43],
    [89, 161, 79],
    [225, 87, 89],
    [118, 183, 178],
    [237, 201, 72],
    [176, 122, 161],
    [255, 157, 167],
    [156, 117, 95],
    [186, 176, 172],
];

/// One legend entry.
#[derive(Clone, PartialEq)]
pub struct Legend {
    /// CSS colour.
    pub css: String,
    /// Label.
    pub label: String,
    /// The marker's shape, when the entry is about shapes (a glyph of [`SHAPES`]).
    pub glyph: Option<&'static str>,
}

/// What the scatter draws per point, and its legend.
#[derive(Clone, PartialEq)]
pub struct Paint {
    /// RGBA per point (alpha 0: filtered out).
    pub rgba: Vec<u8>,
    /// Marker shape index per point ([`SHAPES`]).
    pub shapes: Vec<u8>,
    /// Legend entries: colours, then shapes when classes are drawn as shapes.
    pub legend: Vec<Legend>,
}

fn css(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let m = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * t).round() as u8;
    [m(a[0], b[0]), m(a[1], b[1]), m(a[2], b[2])]
}

/// A comparison's verdict colours, by `Verdict` code: right for both (light grey), silent for both
/// (dark red), silent for A only (orange, yellow), silent for B only (blue, teal), caught (green),
/// unmatched (grey).
pub const VERDICT: [[u8; 3]; 8] = [
    [205, 205, 205],
    [165, 15, 21],
    [242, 142, 43],
    [237, 201, 72],
    [78, 121, 167],
    [118, 183, 178],
    [89, 161, 79],
    [120, 120, 120],
];

/// The grey of the points the filters leave out, when they stay visible (`ghost=1`).
const GHOST: [u8; 3] = [140, 140, 140];

/// Whether point `i` passes the view's filters; `sets[k]`: whether test set `k` is shown
/// ([`failscope_shared::view::shifts::shown`]).
pub fn visible(c: &Columns, s: &ViewState, sets: &[bool], threshold: f64, i: usize) -> bool {
    let wrong = c.label[i] != c.predicted[i];
    sets.get(usize::from(c.dataset_idx[i])).copied().unwrap_or(true)
        && !s.hide_classes.contains(&i64::from(c.label[i]))
        && (!s.failures_only || wrong)
        && (!s.silent_only || c.is_silent(i, threshold))
}

/// Colours, shapes and legend of every point.
pub fn colors(c: &Columns, s: &ViewState, threshold: f64, test_sets: &[String], classes: &[String]) -> Paint {
    let n = c.label.len();
    // A shown point's alpha is never a ghost's (`camera::GHOST_ALPHA`).
    let alpha = match (s.opacity.clamp(0.0, 1.0) * 255.0) as u8 {
        GHOST_ALPHA => GHOST_ALPHA + 1,
        a => a,
    };
    let (lo, hi) = c
        .score
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let span = (hi - lo).max(1e-12);
    const GREY: [u8; 3] = [170, 170, 170];
    const SUCCESS: ([u8; 3], [u8; 3]) = ([198, 219, 239], [8, 69, 148]);
    const FAILURE: ([u8; 3], [u8; 3]) = ([252, 187, 161], [165, 15, 21]);
    let sets = shifts::shown(test_sets, &s.hide_sets, &s.severity);
    let mut rgba = Vec::with_capacity(4 * n);
    // The comparison's verdicts among the points shown (its legend counts those).
    let mut verdicts_shown = [0usize; 8];
    for i in 0..n {
        let rgb = match &s.color {
            ColorMode::TestSet => PALETTE[usize::from(c.dataset_idx[i]) % 10],
            ColorMode::Confusion => {
                let base = PALETTE[usize::from(c.label[i]) % 10];
                if c.label[i] == c.predicted[i] {
                    mix(base, [255, 255, 255], 0.35)
                } else {
                    mix(base, [0, 0, 0], 0.55)
                }
            }
            ColorMode::Confidence => {
                let v = c.score[i];
                if !v.is_finite() {
                    GREY
                } else {
                    let t = (v - lo) / span;
                    let (a, b) = if c.label[i] == c.predicted[i] { SUCCESS } else { FAILURE };
                    mix(a, b, t)
                }
            }
            ColorMode::Cluster => match &c.cluster {
                Some(cl) if cl[i] >= 0 => PALETTE[cl[i] as usize % 10],
                _ => GREY,
            },
            ColorMode::Meta(_) => match c.meta.as_ref().and_then(|m| m.codes.get(i)) {
                Some(&code) if code > 0 => PALETTE[usize::from(code - 1) % 10],
                _ => GREY,
            },
            ColorMode::Compare => match c.compare.as_ref().and_then(|x| x.result.verdict(i)) {
                Some(v) => VERDICT[v as usize],
                None => GREY,
            },
        };
        if visible(c, s, &sets, threshold, i) {
            if let Some(v) = c.compare.as_ref().and_then(|x| x.result.verdict(i)) {
                verdicts_shown[v as usize] += 1;
            }
            rgba.extend_from_slice(&[rgb[0], rgb[1], rgb[2], alpha]);
        } else if s.ghost {
            rgba.extend_from_slice(&[GHOST[0], GHOST[1], GHOST[2], GHOST_ALPHA]);
        } else {
            rgba.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 0]);
        }
    }
    let mut legend: Vec<Legend> = match &s.color {
        ColorMode::TestSet => test_sets
            .iter()
            .enumerate()
            .map(|(k, t)| Legend {
                css: css(PALETTE[k % 10]),
                label: t.clone(),
                glyph: None,
            })
            .collect(),
        ColorMode::Confusion => classes
            .iter()
            .enumerate()
            .flat_map(|(k, name)| {
                let base = PALETTE[k % 10];
                [
                    Legend {
                        css: css(mix(base, [255, 255, 255], 0.35)),
                        label: format!("{name} · correct"),
                        glyph: None,
                    },
                    Legend {
                        css: css(mix(base, [0, 0, 0], 0.55)),
                        label: format!("{name} · wrong"),
                        glyph: None,
                    },
                ]
            })
            .collect(),
        ColorMode::Confidence => vec![
            Legend {
                css: css(SUCCESS.1),
                label: format!("success, confident ({hi:.3})"),
                glyph: None,
            },
            Legend {
                css: css(SUCCESS.0),
                label: format!("success, unsure ({lo:.3})"),
                glyph: None,
            },
            Legend {
                css: css(FAILURE.1),
                label: "failure, confident (silent)".into(),
                glyph: None,
            },
            Legend {
                css: css(FAILURE.0),
                label: "failure, unsure".into(),
                glyph: None,
            },
        ],
        ColorMode::Cluster => {
            let k = c.cluster.as_ref().and_then(|v| v.iter().max().copied()).unwrap_or(-1);
            (0..=k.max(-1))
                .take(10)
                .map(|j| Legend {
                    css: css(PALETTE[j as usize % 10]),
                    label: format!("cluster {j} (+10, +20, …)"),
                    glyph: None,
                })
                .collect()
        }
        ColorMode::Meta(key) => c
            .meta
            .as_ref()
            .map(|m| {
                m.categories
                    .iter()
                    .enumerate()
                    .skip(1)
                    .take(10)
                    .map(|(k, name)| Legend {
                        css: css(PALETTE[(k - 1) % 10]),
                        label: format!("{key}: {name}"),
                        glyph: None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ColorMode::Compare => c
            .compare
            .as_ref()
            .map(|x| {
                let (a, b) = x.key.names();
                Verdict::ALL
                    .iter()
                    .filter(|v| verdicts_shown[**v as usize] > 0)
                    .map(|v| Legend {
                        css: css(VERDICT[*v as usize]),
                        label: format!("{} ({})", v.label(&a, &b), verdicts_shown[*v as usize]),
                        glyph: None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let shapes = if s.class_shapes {
        legend.extend(classes.iter().enumerate().map(|(k, name)| Legend {
            css: "#444".into(),
            label: name.clone(),
            glyph: Some(SHAPES[k % SHAPES.len()]),
        }));
        c.label.iter().map(|&l| (usize::from(l) % SHAPES.len()) as u8).collect()
    } else {
        vec![0; n]
    };
    Paint { rgba, shapes, legend }
}
