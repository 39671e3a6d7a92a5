//! Server-rendered figures (plotters, SVG): downloadable as they are, and embedded by the web app.

use plotters::prelude::*;

/// A risk–coverage curve (coverage on x, selective risk on y) titled `title`.
pub fn risk_coverage_svg(points: &[(f64, f64)], title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max_risk = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..max_risk)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("coverage")
            .y_desc("selective risk")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A reliability diagram: per bin (mean confidence, accuracy, share of rows) a point sized by its
/// share, joined by a line, and the diagonal of perfect calibration.
pub fn reliability_svg(bins: &[(f64, f64, f64)], title: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("confidence")
            .y_desc("accuracy")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(bins.iter().map(|b| (b.0, b.1)), BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                bins.iter()
                    .map(|b| Circle::new((b.0, b.1), (3.0 + 25.0 * b.2.sqrt()) as i32, BLUE.mix(0.35).filled())),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
