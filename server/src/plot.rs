//! What every plotters figure shares (the API's, the benchmark report's): the bundled DejaVu Sans
//! (`assets/fonts`) registered as `sans-serif`, so that text is measured and drawn the same on every
//! machine, with or without system fonts; and the line chart with a legend they all draw.

use std::ops::Range;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the font (once per process).
pub fn register_fonts() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is compiled in and parsed by a test, so this cannot fail at run time.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A line chart: one coloured line per series, a legend, and optionally a grey reference line.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub title_size: u32,
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// `(label, points)`, coloured in order from plotters' 99-colour palette.
    pub series: &'a [(String, Vec<(f64, f64)>)],
    /// A grey line drawn first, e.g. the i.i.d. level.
    pub reference: Option<(&'a str, Vec<(f64, f64)>)>,
    pub legend: SeriesLabelPosition,
    pub legend_size: u32,
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl LineChart<'_> {
    /// Draws the chart on `root` (already filled).
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", self.title_size))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(52)
            .build_cartesian_2d(self.x.clone(), self.y.clone())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .draw()
            .map_err(err)?;
        if let Some((label, points)) = &self.reference {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), BLACK.mix(0.5)))
                .map_err(err)?
                .label(*label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.5)));
        }
        for (i, (label, points)) in self.series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", self.legend_size))
            .draw()
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundled_font_parses() {
        assert!(plotters::style::register_font("check", plotters::style::FontStyle::Normal, super::FONT).is_ok());
    }
}
