//! A benchmark report as one self-contained HTML page: the findings, then plotters figures drawn as
//! inline SVG (rank heat map with significance, accuracy per corruption severity, SGR guarantee
//! violations, risk–coverage curves per shift) and the tables of the Markdown report. No script, no
//! external file: it opens offline and can be mailed.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::aggregate::{BenchResult, Family};
use super::markdown::{bare, dataset_note, short};
use crate::plot::LineChart;

type Drawn = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown's inline code as HTML.
fn inline(s: &str) -> String {
    let escaped = escape(s);
    let mut out = String::new();
    for (i, part) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn svg(size: (u32, u32), draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Drawn) -> String {
    crate::plot::register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        if let Err(e) = root
            .fill(&WHITE)
            .map_err(err)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(err))
        {
            return format!("<p>(figure not drawn: {})</p>", escape(&e));
        }
    }
    out
}

/// Green (rank 1) to red (last rank).
fn rank_colour(mean_rank: f64, columns: usize) -> RGBColor {
    let t = ((mean_rank - 1.0) / (columns.max(2) - 1) as f64).clamp(0.0, 1.0);
    RGBColor((40.0 + 200.0 * t) as u8, (170.0 - 120.0 * t) as u8, 70)
}

/// Mean rank of every column on every test set; a dot marks the first column where it is
/// significantly ahead of every other.
fn rank_heat_map(r: &BenchResult) -> String {
    let (rows, cols) = (r.columns.len(), r.sets.len());
    let (cell_w, cell_h, left, top) = (16u32, 14u32, 230u32, 40u32);
    let size = (
        (left + cell_w * cols as u32 + 20).max(760),
        top + cell_h * rows as u32 + 150,
    );
    svg(size, |root| {
        root.draw(&Text::new(
            "Mean rank by AURC over bootstrap resamples (green = first; dot = first, significantly ahead of all)",
            (10, 10),
            ("sans-serif", 13),
        ))
        .map_err(err)?;
        for (j, set) in r.sets.iter().enumerate() {
            let x = (left + cell_w * j as u32) as i32;
            for (i, c) in set.columns.iter().enumerate() {
                let y = (top + cell_h * i as u32) as i32;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w as i32 - 1, y + cell_h as i32 - 1)],
                    rank_colour(c.mean_rank, rows).filled(),
                ))
                .map_err(err)?;
                if i == set.first && set.first_beats.len() + 1 == rows {
                    root.draw(&Circle::new(
                        (x + cell_w as i32 / 2, y + cell_h as i32 / 2),
                        3,
                        BLACK.filled(),
                    ))
                    .map_err(err)?;
                }
            }
            let label = Text::new(
                bare(&set.name).to_string(),
                (x + 4, (top + cell_h * rows as u32 + 4) as i32),
                ("sans-serif", 10).into_font().transform(FontTransform::Rotate90),
            );
            root.draw(&label).map_err(err)?;
        }
        for (i, name) in r.columns.iter().enumerate() {
            let y = (top + cell_h * i as u32 + 2) as i32;
            root.draw(&Text::new(name.clone(), (6, y), ("sans-serif", 11)))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// Each model's accuracy per corruption kind over the severities, with the i.i.d. accuracy.
fn accuracy_per_severity(r: &BenchResult) -> Option<String> {
    let mut kinds: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for set in r.sets.iter().filter(|s| s.family == Family::Corruption) {
        let (kind, severity) = short(&set.name).rsplit_once('_')?;
        let point = (severity.parse::<f64>().ok()?, set.accuracy.first()?.0);
        match kinds.iter_mut().find(|(k, _)| k == kind) {
            Some((_, v)) => v.push(point),
            None => kinds.push((kind.to_string(), vec![point])),
        }
    }
    if kinds.is_empty() {
        return None;
    }
    let iid = r
        .sets
        .iter()
        .find(|s| s.family == Family::Iid)
        .and_then(|s| s.accuracy.first())
        .map(|a| a.0);
    let title = format!(
        "Accuracy of {} per corruption severity (mean over seeds)",
        r.methods.first()?
    );
    let series: Vec<(String, Vec<(f64, f64)>)> = kinds
        .into_iter()
        .map(|(kind, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (kind, points)
        })
        .collect();
    Some(svg((640, 400), |root| {
        LineChart {
            title: &title,
            title_size: 15,
            x: 0.5..5.5,
            y: 0.0..1.05,
            x_desc: "severity",
            y_desc: "accuracy",
            series: &series,
            reference: iid.map(|a| ("i.i.d.", vec![(0.5, a), (5.5, a)])),
            legend: SeriesLabelPosition::LowerLeft,
            legend_size: 11,
        }
        .draw(root)
    }))
}

/// The share of CSF × seed cases per test set whose SGR guarantee broke.
fn violations(r: &BenchResult) -> String {
    let shares: Vec<f64> = r
        .sets
        .iter()
        .map(|s| {
            let (broke, cases) = s
                .columns
                .iter()
                .filter_map(|c| c.sgr)
                .fold((0usize, 0usize), |(b, n), w| (b + w.violated, n + r.seeds.len()));
            if cases == 0 {
                0.0
            } else {
                broke as f64 / cases as f64
            }
        })
        .collect();
    let n = shares.len();
    let title = format!(
        "SGR guarantee broken (test risk > {}), share of CSF × seed cases per test set",
        r.settings.r_star
    );
    svg(((60 + 16 * n as u32).max(520), 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 13))
            .margin(12)
            .x_label_area_size(20)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..n.max(1) as f64, 0f64..1.05f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("share broken")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(shares.iter().enumerate().map(|(i, &v)| {
                let colour = if r.sets[i].family == Family::Iid { BLUE } else { RED };
                Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, v)], colour.mix(0.7).filled())
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// The three best columns' risk–coverage curves on one test set.
fn curves(r: &BenchResult, set: &super::aggregate::SetResult) -> String {
    let max_risk = set
        .curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    let series: Vec<(String, Vec<(f64, f64)>)> = set
        .curves
        .iter()
        .map(|(c, points)| (r.columns[*c].clone(), points.clone()))
        .collect();
    svg((420, 300), |root| {
        LineChart {
            title: bare(&set.name),
            title_size: 13,
            x: 0.0..1.0,
            y: 0.0..max_risk,
            x_desc: "coverage",
            y_desc: "selective risk",
            series: &series,
            reference: None,
            legend: SeriesLabelPosition::UpperLeft,
            legend_size: 10,
        }
        .draw(root)
    })
}

/// The whole page, with the `findings` and the Markdown report's test-set tables.
pub fn html(r: &BenchResult, findings: &[String], markdown_tables: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Benchmark: {}</title>\n<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:first-child{{text-align:left}}code{{background:#f3f3f3;padding:0 3px}}.figs{{display:flex;flex-wrap:wrap;gap:8px}}</style></head><body>\n",
        escape(&r.recipe)
    );
    let _ = writeln!(h, "<h1>Benchmark: {}</h1>", escape(&r.recipe));
    let _ = writeln!(
        h,
        "<p>Seeds {}; models {}; {} CSFs; {} test sets; {} bootstrap resamples.</p><p>Data: {}</p>",
        r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        escape(&r.methods.join(", ")),
        r.columns.len(),
        r.sets.len(),
        r.settings.n_boot,
        inline(&dataset_note(&r.source)).replace("*Scientific Data*", "<i>Scientific Data</i>")
    );
    let _ = writeln!(h, "<h2>Findings</h2><ul>");
    for f in findings {
        let _ = writeln!(h, "<li>{}</li>", inline(f));
    }
    let _ = writeln!(h, "</ul><h2>Rankings</h2>{}", rank_heat_map(r));
    if let Some(a) = accuracy_per_severity(r) {
        let _ = writeln!(h, "<h2>Accuracy under corruption</h2>{a}");
    }
    let _ = writeln!(h, "<h2>Working points</h2>{}", violations(r));
    let _ = writeln!(
        h,
        "<h2>Risk–coverage curves (first seed, three best CSFs)</h2><div class=\"figs\">"
    );
    for set in r
        .sets
        .iter()
        .filter(|s| s.family != Family::Corruption || s.name.ends_with("_5") || s.name.ends_with("_3"))
    {
        h.push_str(&curves(r, set));
    }
    let _ = writeln!(h, "</div><h2>Tables</h2>");
    h.push_str(&tables_html(markdown_tables));
    h.push_str("</body></html>\n");
    h
}

/// The Markdown report's test-set sections (headings, paragraphs, pipe tables) as HTML.
fn tables_html(md: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in md.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            let _ = writeln!(out, "<h3>{}</h3>", inline(rest));
        } else if line.starts_with("|---") {
            continue;
        } else if let Some(row) = line.strip_prefix('|') {
            if !in_table {
                out.push_str("<table>\n");
                in_table = true;
            }
            let cells: Vec<String> = row
                .trim_end_matches('|')
                .split(" | ")
                .map(|c| inline(c.trim()))
                .collect();
            let _ = writeln!(out, "<tr><td>{}</td></tr>", cells.join("</td><td>"));
        } else {
            if in_table {
                out.push_str("</table>\n");
                in_table = false;
            }
            if !line.trim().is_empty() {
                let _ = writeln!(out, "<p>{}</p>", inline(line));
            }
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    out
}
