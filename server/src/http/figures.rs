//! Server-rendered figures (plotters): the risk–coverage curves and the reliability diagram of a
//! CSF, as SVG or PNG (`GET /api/studies/{id}/figures/{risk-coverage|reliability}.{svg|png}`).
//! PNGs are drawn with the bundled DejaVu Sans (`crate::plot`).

use std::io::Cursor;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use failscope_shared::analysis::calibration::{ece, reliability_bins, Binarize};
use failscope_shared::analysis::rc::{RiskCoverageStats, TieOrder};
use failscope_shared::analysis::sets::{curves_by_test_set, SetRows};
use failscope_shared::api::FigureQuery;
use failscope_shared::wire::DEFAULT_CSF;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::plot::LineChart;

use super::{parse_id, with_store, AppError, AppState};

/// A figure's data, ready to draw.
enum Figure {
    /// One risk–coverage curve `(coverage, selective risk)` per test set, with its name and AURC.
    RiskCoverage {
        title: String,
        curves: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Per bin (mean confidence, accuracy, share of rows).
    Reliability { title: String, bins: Vec<(f64, f64, f64)> },
}

type Drawn = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::RiskCoverage { .. } => (640, 420),
            Figure::Reliability { .. } => (520, 480),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        root.fill(&WHITE).map_err(err)?;
        match self {
            Figure::RiskCoverage { title, curves } => {
                let max_risk = curves
                    .iter()
                    .flat_map(|c| c.1.iter().map(|p| p.1))
                    .fold(0.0f64, f64::max)
                    .max(1e-3)
                    * 1.05;
                LineChart {
                    title,
                    title_size: 18,
                    x: 0.0..1.0,
                    y: 0.0..max_risk,
                    x_desc: "coverage",
                    y_desc: "selective risk",
                    series: curves,
                    reference: None,
                    legend: SeriesLabelPosition::UpperLeft,
                    legend_size: 12,
                }
                .draw(root)?;
            }
            Figure::Reliability { title, bins } => {
                let mut chart = ChartBuilder::on(root)
                    .caption(title, ("sans-serif", 18))
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(50)
                    .build_cartesian_2d(0f64..1f64, 0f64..1f64)
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc("confidence")
                    .y_desc("accuracy")
                    .draw()
                    .map_err(err)?;
                chart
                    .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
                    .map_err(err)?;
                chart
                    .draw_series(LineSeries::new(bins.iter().map(|b| (b.0, b.1)), BLUE.stroke_width(2)))
                    .map_err(err)?;
                chart
                    .draw_series(
                        bins.iter().map(|b| {
                            Circle::new((b.0, b.1), (3.0 + 25.0 * b.2.sqrt()) as i32, BLUE.mix(0.35).filled())
                        }),
                    )
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)
    }

    /// The figure as an SVG document.
    fn svg(&self) -> Result<String, String> {
        crate::plot::register_fonts();
        let mut svg = String::new();
        self.draw(&SVGBackend::with_string(&mut svg, self.size()).into_drawing_area())?;
        Ok(svg)
    }

    /// The figure as a PNG image.
    fn png(&self) -> Result<Vec<u8>, String> {
        crate::plot::register_fonts();
        let (w, h) = self.size();
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        self.draw(&BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area())?;
        let img = image::RgbImage::from_raw(w, h, rgb).ok_or("the bitmap has the wrong size")?;
        let mut png = Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).map_err(err)?;
        Ok(png.into_inner())
    }
}

/// The chosen CSF's rows of each test set a figure draws (`only`, or every test set but
/// validation), with the test sets' names.
async fn sets(
    state: &AppState,
    id: i64,
    csf: &str,
    only: Option<i64>,
) -> Result<(Vec<SetRows>, Vec<String>), AppError> {
    let csf2 = csf.to_string();
    let cache = state.studies.clone();
    with_store(state, move |s| {
        let Some(data) = super::cache::study_data(&cache, s, id)? else {
            return Ok(None);
        };
        let samples = &data.samples;
        let Some(v) = data.scores.all().get(&csf2) else {
            return Ok(Some(None));
        };
        let names = s.test_sets(id)?.into_iter().map(|t| t.name).collect();
        let idx: Vec<usize> = samples.iter().map(|r| r.dataset_idx.max(0) as usize).collect();
        let conf: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
        let correct: Vec<bool> = samples.iter().map(|r| r.label == r.predicted).collect();
        // An index that no set can have (negative) selects nothing.
        let only = only.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
        Ok(Some(Some((curves_by_test_set(&idx, &conf, &correct, only), names))))
    })
    .await?
    .ok_or_else(|| AppError::NotFound(format!("no study with id {id}")))?
    .ok_or_else(|| AppError::NotFound(format!("study {id} has no CSF {csf:?}")))
}

/// `GET /api/studies/{id}/figures/{name}` with `name` one of `risk-coverage.svg`,
/// `risk-coverage.png`, `reliability.svg`, `reliability.png`.
pub async fn figure(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<FigureQuery>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let (kind, format) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
    if !matches!(format, "svg" | "png") || !matches!(kind, "risk-coverage" | "reliability") {
        return Err(AppError::NotFound(format!(
            "no figure {name:?}: expected risk-coverage.svg, risk-coverage.png, reliability.svg or reliability.png"
        )));
    }
    let csf = q.csf.unwrap_or_else(|| DEFAULT_CSF.into());
    let wanted = q.test_set.or((kind == "reliability").then_some(1));
    let (sets, names) = sets(&state, id, &csf, wanted).await?;
    let name = |k: usize| names.get(k).cloned().unwrap_or_else(|| format!("dataset {k}"));
    if sets.is_empty() {
        return Err(AppError::NotFound(match wanted {
            Some(k) => format!("study {id} has no test set {k}"),
            None => format!("study {id} has no rows"),
        }));
    }
    let figure = if kind == "risk-coverage" {
        let curves = sets
            .iter()
            .map(|set| {
                let stats = RiskCoverageStats::new(&set.confidence, &set.correct, None, TieOrder::Input);
                let points = RiskCoverageStats::plot_points(&stats.selective_curve(), 400);
                (format!("{} (AURC {:.1})", name(set.idx), stats.aurc()), points)
            })
            .collect();
        let title = match wanted {
            Some(_) => format!("{csf} · {}", name(sets[0].idx)),
            None => format!("{csf} · risk–coverage"),
        };
        Figure::RiskCoverage { title, curves }
    } else {
        let set = &sets[0];
        let bins = reliability_bins(&set.correct, &set.confidence, 20, Binarize::Correct).unwrap_or_default();
        Figure::Reliability {
            title: format!("{csf} · {} · ECE {:.3}", name(set.idx), ece(&bins)),
            bins: bins.iter().map(|b| (b.confidence, b.accuracy, b.fraction)).collect(),
        }
    };
    Ok(if format == "svg" {
        let body = figure.svg().map_err(AppError::Internal)?;
        ([(header::CONTENT_TYPE, "image/svg+xml")], body).into_response()
    } else {
        let body = figure.png().map_err(AppError::Internal)?;
        ([(header::CONTENT_TYPE, "image/png")], body).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_render() {
        let fig = Figure::RiskCoverage {
            title: DEFAULT_CSF.into(),
            curves: vec![("iid".into(), vec![(0.0, 0.0), (0.5, 0.1), (1.0, 0.2)])],
        };
        assert!(fig.svg().unwrap().starts_with("<svg"));
        let png = fig.png().unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (640, 420));
        // The caption (text only, above the plot) was drawn with the bundled font.
        let caption = (0..30).flat_map(|y| (0..640).map(move |x| (x, y)));
        let inked = caption
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 128))
            .count();
        assert!(inked > 20, "{inked} dark pixels in the caption");
    }
}
