//! Scoring a plain CSV of per-sample outputs, for users without FD-Shifts folders.
//!
//! Accepted layouts (one row per sample, header required):
//! - `confidence,correct[,label][,test_set]`: a ready-made confidence score (CSF `confidence`) and 0/1
//!   (or true/false) correctness;
//! - `p0,…,p{C-1},label[,test_set]`: softmax columns; CSFs `det_mcp`, and `det_pe` (Platt-scaled) when a
//!   `val_tuning` test set is present to fit it on.
//!
//! Rows are grouped into test sets by `test_set` (default `test`).

use std::path::Path;

use failscope_shared::analysis::csf::{self, Matrix};
use failscope_shared::analysis::experiment::Report;
use failscope_shared::analysis::metrics::{self, EvalConfig};
use failscope_shared::analysis::platt::Platt;
use indexmap::IndexMap;

use crate::error::InputError;

struct Rows {
    sets: IndexMap<String, Vec<usize>>,
    labels: Vec<i64>,
    correct: Vec<bool>,
    confidence: Option<Vec<f64>>,
    probs: Option<(Vec<f64>, usize)>,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "1.0" => Some(true),
        "0" | "false" | "0.0" => Some(false),
        _ => None,
    }
}

fn read(path: &Path) -> Result<Rows, InputError> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| InputError::file(path, format!("cannot read CSV ({e})")))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| InputError::file(path, format!("bad CSV header ({e})")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let prob_cols: Vec<usize> = (0..).map_while(|k| col(&format!("p{k}"))).collect();
    let (conf_col, correct_col, label_col, set_col) =
        (col("confidence"), col("correct"), col("label"), col("test_set"));
    if conf_col.is_none() && prob_cols.len() < 2 {
        return Err(InputError::file(
            path,
            format!(
                "columns {}: expected `confidence,correct` or softmax columns `p0,p1,…` with `label`",
                crate::error::list_some(&header, 8)
            ),
        ));
    }
    if conf_col.is_some() && correct_col.is_none() {
        return Err(InputError::file(
            path,
            "column `confidence` needs a `correct` column (0/1)",
        ));
    }
    if conf_col.is_none() && label_col.is_none() {
        return Err(InputError::file(path, "softmax columns need a `label` column"));
    }
    let c = prob_cols.len();
    let mut rows = Rows {
        sets: IndexMap::new(),
        labels: Vec::new(),
        correct: Vec::new(),
        confidence: conf_col.map(|_| Vec::new()),
        probs: (conf_col.is_none()).then(|| (Vec::new(), c)),
    };
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| InputError::file(path, format!("line {line}: {e}")))?;
        let get = |j: usize, what: &str| -> Result<&str, InputError> {
            rec.get(j)
                .ok_or_else(|| InputError::file(path, format!("line {line}: missing `{what}`")))
        };
        // Every number must be finite: NaN would sort anywhere and poison every metric.
        let num = |j: usize, what: &str| -> Result<f64, InputError> {
            let s = get(j, what)?;
            match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(v) => Err(InputError::file(
                    path,
                    format!("line {line}: `{what}` is {v} (NaN or Inf)"),
                )),
                Err(_) => Err(InputError::file(
                    path,
                    format!("line {line}: `{what}` = {s:?} is not a number"),
                )),
            }
        };
        let label = match label_col {
            Some(j) => {
                let l = num(j, "label")?;
                if l.fract() != 0.0 || l < 0.0 || (c > 0 && l >= c as f64) {
                    return Err(InputError::file(
                        path,
                        format!(
                            "line {line}: label {l} is not a class index{}",
                            if c > 0 { format!(" in 0..{c}") } else { String::new() }
                        ),
                    ));
                }
                l as i64
            }
            None => 0,
        };
        if let (Some(cc), Some(conf)) = (conf_col, rows.confidence.as_mut()) {
            conf.push(num(cc, "confidence")?);
            let s = get(correct_col.unwrap_or(0), "correct")?;
            rows.correct.push(parse_bool(s).ok_or_else(|| {
                InputError::file(
                    path,
                    format!("line {line}: `correct` = {s:?}, expected 0/1 or true/false"),
                )
            })?);
        } else if let Some((probs, _)) = rows.probs.as_mut() {
            let start = probs.len();
            for (k, &j) in prob_cols.iter().enumerate() {
                probs.push(num(j, &format!("p{k}"))?);
            }
            rows.correct.push(csf::argmax(&probs[start..]) as i64 == label);
        }
        rows.labels.push(label);
        let set = set_col
            .map(|j| get(j, "test_set").map(str::to_string))
            .transpose()?
            .unwrap_or_else(|| "test".into());
        rows.sets.entry(set).or_default().push(i);
    }
    if rows.labels.is_empty() {
        return Err(InputError::file(path, "no data rows"));
    }
    Ok(rows)
}

/// Evaluates a CSV file: test set → CSF → metrics.
pub fn evaluate(path: &Path, cfg: &EvalConfig) -> Result<Report, InputError> {
    let rows = read(path)?;
    let pick = |v: &[f64], idx: &[usize], w: usize| -> Vec<f64> {
        idx.iter()
            .flat_map(|&i| v[i * w..(i + 1) * w].iter().copied())
            .collect()
    };
    let mut report = Report::new();
    let platt = match (&rows.probs, rows.sets.get("val_tuning")) {
        (Some((p, c)), Some(val)) => {
            let vp = pick(p, val, *c);
            let pe: Vec<f64> = vp.chunks(*c).map(csf::entropy).collect();
            let vc: Vec<bool> = val.iter().map(|&i| rows.correct[i]).collect();
            Some(Platt::fit(&pe, &vc).map_err(|e| InputError::file(path, format!("val_tuning: {e}")))?)
        }
        _ => None,
    };
    for (set, idx) in &rows.sets {
        let labels: Vec<i64> = idx.iter().map(|&i| rows.labels[i]).collect();
        let correct: Vec<bool> = idx.iter().map(|&i| rows.correct[i]).collect();
        let mut per_csf = IndexMap::new();
        let mut add = |name: &str, scores: Vec<f64>, perf: metrics::MetricRow| {
            let mut row = perf;
            row.extend(metrics::confid_metrics(&scores, &correct, &labels, cfg));
            row.insert("n_test".into(), Some(scores.len() as f64));
            per_csf.insert(name.to_string(), row);
        };
        match (&rows.confidence, &rows.probs) {
            (Some(conf), _) => {
                let acc = correct.iter().filter(|&&c| c).count() as f64 / correct.len() as f64;
                let perf = metrics::MetricRow::from([("accuracy".to_string(), Some(acc))]);
                add("confidence", pick(conf, idx, 1), perf);
            }
            (None, Some((p, c))) => {
                let probs = pick(p, idx, *c);
                let m = Matrix::new(&probs, *c);
                let perf = metrics::performance_metrics(&m, &labels, &correct, false);
                add("det_mcp", probs.chunks(*c).map(csf::max).collect(), perf.clone());
                if let Some(pl) = platt {
                    add(
                        "det_pe",
                        probs.chunks(*c).map(|r| pl.apply(csf::entropy(r))).collect(),
                        perf,
                    );
                }
            }
            (None, None) => unreachable!("read() guarantees one of the layouts"),
        }
        report.insert(set.clone(), per_csf);
    }
    Ok(report)
}
