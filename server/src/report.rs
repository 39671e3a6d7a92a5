//! Rendering an evaluation report: one JSON object (machine use) or readable tables (terminal).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use failscope_shared::analysis::experiment::Report;

/// Exactly one JSON object: `{ study: { csf: { metric: number | null } } }`.
pub fn to_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report of strings and optional floats always serialises")
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x == x.trunc() && x.abs() < 1e9 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// One table per study: metrics as rows, CSFs as columns.
pub fn to_table(report: &Report) -> String {
    let mut out = String::new();
    for (study, csfs) in report {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec![Cell::new("metric")];
        header.extend(csfs.keys().map(Cell::new));
        table.set_header(header);
        let metrics: Vec<&String> = csfs.values().next().map(|row| row.keys().collect()).unwrap_or_default();
        for metric in metrics {
            let mut row = vec![Cell::new(metric)];
            row.extend(
                csfs.values()
                    .map(|r| Cell::new(fmt(r.get(metric).copied().flatten())).set_alignment(CellAlignment::Right)),
            );
            table.add_row(row);
        }
        out.push_str(&format!("\n{study}\n{table}\n"));
    }
    out
}

/// One table for a whole study: test sets as rows; accuracy, balanced accuracy and the AURC of every
/// CSF as columns (the headline numbers of a run).
pub fn summary_table(report: &Report) -> String {
    let csfs: Vec<&String> = report.values().next().map(|c| c.keys().collect()).unwrap_or_default();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec![
        Cell::new("test set"),
        Cell::new("n"),
        Cell::new("accuracy"),
        Cell::new("b-accuracy"),
    ];
    header.extend(csfs.iter().map(|c| Cell::new(format!("AURC {c}"))));
    table.set_header(header);
    for (study, per_csf) in report {
        let first = per_csf.values().next();
        let get = |m: &str| first.and_then(|r| r.get(m).copied().flatten());
        let mut row = vec![
            Cell::new(study),
            Cell::new(fmt(get("n_test"))),
            Cell::new(fmt(get("accuracy"))),
            Cell::new(fmt(get("b-accuracy"))),
        ];
        row.extend(csfs.iter().map(|c| {
            Cell::new(fmt(per_csf.get(*c).and_then(|r| r.get("aurc").copied().flatten())))
                .set_alignment(CellAlignment::Right)
        }));
        table.add_row(row);
    }
    table.to_string()
}
