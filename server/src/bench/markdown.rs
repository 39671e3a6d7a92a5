//! A benchmark report in Markdown: the findings in plain words, computed from the numbers (never
//! typed), then one table per test set. The same result always gives the same bytes.

use std::fmt::Write as _;

use super::aggregate::{BenchResult, Family, SetResult, Spread};

/// The licence and citation of a recipe's data source, as every report states them.
pub fn dataset_note(source: &str) -> String {
    let s = source.to_ascii_lowercase();
    if s.contains("ham10000") {
        "HAM10000 (Tschandl, Rosendahl & Kittler, *Scientific Data* 5, 180161, 2018), licensed CC BY-NC 4.0.".into()
    } else if s.contains("mnist") {
        "MedMNIST v2 (Yang et al., *Scientific Data* 10, 41, 2023), licensed CC BY 4.0; cite the source dataset too."
            .into()
    } else {
        format!("`{source}`: the user's own data; its licence and citation are the user's to state.")
    }
}

/// `x` with a negative zero made positive, so that no table shows `-0.0`.
fn z(x: f64) -> f64 {
    x + 0.0
}

fn spread(s: &Spread) -> String {
    match s.ci {
        Some(ci) => format!(
            "{:.1} ± {:.1} [{:.1}, {:.1}]",
            z(s.mean),
            z(s.sd),
            z(ci.low),
            z(ci.high)
        ),
        None => format!("{:.1} ± {:.1}", z(s.mean), z(s.sd)),
    }
}

fn overlaps(a: &Spread, b: &Spread) -> bool {
    match (a.ci, b.ci) {
        (Some(x), Some(y)) => x.low <= y.high && y.low <= x.high,
        _ => true,
    }
}

/// How many columns' AURC CIs on `set` overlap their own CI on the i.i.d. set.
fn overlapping(set: &SetResult, iid: &SetResult) -> usize {
    set.columns
        .iter()
        .zip(&iid.columns)
        .filter(|(s, i)| overlaps(&s.aurc, &i.aurc))
        .count()
}

/// A test set's name without FD-Shifts' `in_class_study_` prefix, e.g. `corruption_blur_3`.
pub(super) fn bare(name: &str) -> &str {
    name.strip_prefix("in_class_study_").unwrap_or(name)
}

/// A test set's name without its family either, e.g. `blur_3`.
pub(super) fn short(name: &str) -> &str {
    let bare = bare(name);
    ["acquisition_", "manifestation_", "corruption_"]
        .iter()
        .find_map(|p| bare.strip_prefix(p))
        .unwrap_or(bare)
}

/// The sentence on who ranks first on `set`.
fn first_sentence(r: &BenchResult, set: &SetResult) -> String {
    let first = &r.columns[set.first];
    let others = r.columns.len() - 1;
    if others == 0 {
        return format!("`{first}` is the only CSF");
    }
    if set.first_beats.len() == others {
        format!(
            "`{first}` ranks first, ahead of all {others} others (Holm-adjusted bootstrap p < {})",
            r.settings.alpha
        )
    } else {
        let level: Vec<String> = (0..r.columns.len())
            .filter(|&c| c != set.first && !set.first_beats.contains(&c))
            .map(|c| format!("`{}`", r.columns[c]))
            .collect();
        format!("`{first}` ranks first but not significantly ahead of {}", list(&level))
    }
}

fn list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n if n <= 4 => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
        n => format!("{}, … ({n} in all)", items[..3].join(", ")),
    }
}

/// The findings, one per line.
pub fn findings(r: &BenchResult) -> Vec<String> {
    let mut out = Vec::new();
    let Some(iid) = r.sets.iter().find(|s| s.family == Family::Iid) else {
        return vec!["There is no i.i.d. test set to compare the shifts with.".into()];
    };
    let shifts: Vec<&SetResult> = r.sets.iter().filter(|s| s.family != Family::Iid).collect();
    // Acquisition, manifestation and other single shifts: one sentence each.
    for set in shifts.iter().filter(|s| s.family != Family::Corruption) {
        let k = overlapping(set, iid);
        let acc = r
            .methods
            .iter()
            .zip(&set.accuracy)
            .map(|(m, a)| format!("{m} {:.2}", a.0))
            .collect::<Vec<_>>()
            .join(", ");
        let ci = if k == 0 {
            "no CSF's AURC CI overlaps the i.i.d. one".to_string()
        } else {
            format!("{k} of {} CSFs' AURC CIs overlap the i.i.d. ones", set.columns.len())
        };
        out.push(format!(
            "Under {} shift to `{}` (accuracy {acc}): {ci}; {}.",
            set.family.words(),
            short(&set.name),
            first_sentence(r, set)
        ));
    }
    // Corruptions: per kind, from which severity on no CSF's CI overlaps the i.i.d. one.
    let mut kinds: Vec<(String, Vec<(u32, usize)>)> = Vec::new();
    for set in shifts.iter().filter(|s| s.family == Family::Corruption) {
        let name = short(&set.name);
        let (kind, severity) = name.rsplit_once('_').unwrap_or((name, "0"));
        let severity: u32 = severity.parse().unwrap_or(0);
        let k = overlapping(set, iid);
        match kinds.iter_mut().find(|(n, _)| n == kind) {
            Some((_, v)) => v.push((severity, k)),
            None => kinds.push((kind.to_string(), vec![(severity, k)])),
        }
    }
    for (kind, mut sev) in kinds {
        sev.sort();
        let from = (0..sev.len())
            .find(|&i| sev[i..].iter().all(|(_, k)| *k == 0))
            .map(|i| sev[i].0);
        out.push(match from {
            Some(s) => {
                format!("Under corruption `{kind}`, no CSF's AURC CI overlaps the i.i.d. one from severity {s} on.")
            }
            None => format!(
                "Under corruption `{kind}`, some CSF's AURC CI still overlaps the i.i.d. one at severity {}.",
                sev.last().map_or(0, |s| s.0)
            ),
        });
    }
    // Who ranks first how often.
    let mut firsts = vec![(0usize, 0usize); r.columns.len()];
    for set in &shifts {
        firsts[set.first].0 += 1;
        if set.first_beats.len() + 1 == r.columns.len() {
            firsts[set.first].1 += 1;
        }
    }
    let mut order: Vec<usize> = (0..r.columns.len()).filter(|&c| firsts[c].0 > 0).collect();
    order.sort_by(|&a, &b| firsts[b].0.cmp(&firsts[a].0).then(a.cmp(&b)));
    for &c in order.iter().take(3) {
        out.push(format!(
            "`{}` ranks first on {} of {} shifts ({} of them significantly ahead of every other CSF).",
            r.columns[c],
            firsts[c].0,
            shifts.len(),
            firsts[c].1
        ));
    }
    out.push(format!("On i.i.d. data {}.", first_sentence(r, iid)));
    // AURC against AUGRC.
    let taus: Vec<f64> = r.sets.iter().filter_map(|s| s.tau_aurc_augrc).collect();
    if !taus.is_empty() {
        let mean = taus.iter().sum::<f64>() / taus.len() as f64;
        let min = taus.iter().copied().fold(f64::INFINITY, f64::min);
        out.push(format!(
            "AURC and AUGRC rank the CSFs with a mean Kendall τ of {mean:.2} over {} test sets (lowest {min:.2}).",
            taus.len()
        ));
    }
    // The guarantee.
    let (mut broke, mut cases, mut iid_broke) = (0usize, 0usize, 0usize);
    for set in &r.sets {
        for c in &set.columns {
            if let Some(w) = c.sgr {
                cases += r.seeds.len();
                broke += w.violated;
                if set.family == Family::Iid {
                    iid_broke += w.violated;
                }
            }
        }
    }
    if cases > 0 {
        let accuracies = |acc: &[(f64, f64)]| {
            r.methods
                .iter()
                .zip(acc)
                .map(|(m, a)| format!("{m} {:.2}", a.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "SGR's working point (risk ≤ {} with probability {}, fitted on validation) broke on {broke} of {cases} test set × CSF × seed cases, {iid_broke} of them on i.i.d. data, where accuracy is {} against {} on validation (the split the models were selected on).",
            r.settings.r_star,
            1.0 - r.settings.delta,
            accuracies(&iid.accuracy),
            accuracies(&r.val_accuracy)
        ));
    }
    out
}

/// The whole report, with its `findings` (from [`findings`]).
pub fn markdown(r: &BenchResult, findings: &[String]) -> String {
    let mut md = String::new();
    let seeds = r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let _ = writeln!(md, "# Benchmark: {}\n", r.recipe);
    let _ = writeln!(
        md,
        "Seeds {seeds}; models {}; {} CSFs; {} test sets. AURC and AUGRC × 1000, mean ± sd over seeds, [{:.0} % bootstrap CI of the mean over {} resamples of the test rows].\n",
        r.methods.join(", "),
        r.columns.len(),
        r.sets.len(),
        100.0 * (1.0 - r.settings.alpha),
        r.settings.n_boot
    );
    let _ = writeln!(md, "Data: {}\n", dataset_note(&r.source));
    let _ = writeln!(md, "## Findings\n");
    for f in findings {
        let _ = writeln!(md, "- {f}");
    }
    let _ = writeln!(md, "\n## Test sets\n");
    for set in &r.sets {
        let acc: Vec<String> = r
            .methods
            .iter()
            .zip(&set.accuracy)
            .map(|(m, a)| format!("{m} {:.3} ± {:.3}", a.0, a.1))
            .collect();
        let mix: Vec<String> = r
            .classes
            .iter()
            .zip(&set.label_mix)
            .map(|(c, k)| format!("{c} {k}"))
            .collect();
        let _ = writeln!(
            md,
            "### {} ({})\n\n{} rows ({}); accuracy {}. Kendall τ (AURC vs AUGRC ranking): {}.\n",
            set.name,
            set.family.words(),
            set.n,
            mix.join(", "),
            acc.join(", "),
            set.tau_aurc_augrc.map_or("—".into(), |t| format!("{t:.2}"))
        );
        let _ = writeln!(
            md,
            "| CSF | AURC | AUGRC | mean rank | first | SGR risk / coverage (broke) | risk / coverage at {:.0} % (above validation) |",
            100.0 * r.settings.coverage
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for c in &set.columns {
            let point = |w: Option<super::aggregate::WorkingPoint>| {
                w.map_or("—".into(), |w| {
                    format!(
                        "{:.3} / {:.3} ({}/{})",
                        z(w.risk),
                        z(w.coverage),
                        w.violated,
                        r.seeds.len()
                    )
                })
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {:.2} | {:.0} % | {} | {} |",
                c.column,
                spread(&c.aurc),
                spread(&c.augrc),
                c.mean_rank,
                100.0 * c.first_share,
                point(c.sgr),
                point(c.at_coverage)
            );
        }
        let _ = writeln!(md);
    }
    md
}

/// The marker lines around a recipe's summary in a document such as the README.
pub fn block_markers(recipe: &str) -> (String, String) {
    (format!("<!-- bench:{recipe} -->"), format!("<!-- /bench:{recipe} -->"))
}

/// The test sets a summary shows: every set but the corruptions, and each corruption kind at its
/// highest severity.
fn summary_sets(r: &BenchResult) -> Vec<&SetResult> {
    let worst = |set: &SetResult| -> bool {
        let Some((kind, sev)) = short(&set.name).rsplit_once('_') else {
            return true;
        };
        let sev: u32 = sev.parse().unwrap_or(0);
        !r.sets.iter().any(|o| {
            o.family == Family::Corruption
                && short(&o.name)
                    .rsplit_once('_')
                    .is_some_and(|(k, s)| k == kind && s.parse::<u32>().unwrap_or(0) > sev)
        })
    };
    r.sets
        .iter()
        .filter(|s| s.family != Family::Corruption || worst(s))
        .collect()
}

/// A short summary for a README: the findings and one row per shift (each corruption kind at its
/// highest severity), between [`block_markers`]. It is computed from `r` alone, so a report's JSON
/// regenerates it.
pub fn summary(r: &BenchResult, findings: &[String]) -> String {
    let (begin, end) = block_markers(&r.recipe);
    let mut md = String::new();
    let _ = writeln!(md, "{begin}");
    let _ = writeln!(
        md,
        "**{}**, seeds {}, models {}; AURC × 1000, mean ± sd over seeds [{:.0} % bootstrap CI over {} resamples of the test rows]. Data: {}\n",
        r.recipe,
        r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        r.methods.join(", "),
        100.0 * (1.0 - r.settings.alpha),
        r.settings.n_boot,
        dataset_note(&r.source)
    );
    for f in findings {
        let _ = writeln!(md, "- {f}");
    }
    let iid = r.sets.iter().find(|s| s.family == Family::Iid);
    let _ = writeln!(
        md,
        "\n| test set | rows | accuracy ({}), mean ± sd over seeds | first CSF | its AURC | ahead of all others | AURC CIs overlapping i.i.d. | SGR broke |",
        r.methods.join(" / ")
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for set in summary_sets(r) {
        let first = &set.columns[set.first];
        let ahead = if r.columns.len() == 1 {
            "—".to_string()
        } else if set.first_beats.len() + 1 == r.columns.len() {
            format!("yes (p < {})", r.settings.alpha)
        } else {
            format!("no ({} level)", r.columns.len() - 1 - set.first_beats.len())
        };
        let overlap = match iid {
            Some(i) if i.name != set.name => format!("{} of {}", overlapping(set, i), set.columns.len()),
            _ => "—".into(),
        };
        let (broke, cases) = set
            .columns
            .iter()
            .filter_map(|c| c.sgr)
            .fold((0, 0), |(b, n), w| (b + w.violated, n + r.seeds.len()));
        let _ = writeln!(
            md,
            "| {} | {} | {} | `{}` | {} | {} | {} | {broke} of {cases} |",
            bare(&set.name),
            set.n,
            set.accuracy
                .iter()
                .map(|a| format!("{:.2} ± {:.2}", a.0, a.1))
                .collect::<Vec<_>>()
                .join(" / "),
            first.column,
            spread(&first.aurc),
            ahead,
            overlap
        );
    }
    let _ = writeln!(md, "{end}");
    md
}

/// `doc` with the text between `recipe`'s [`block_markers`] (markers included) replaced by
/// `block`; `None` when the markers are missing or out of order.
pub fn replace_block(doc: &str, recipe: &str, block: &str) -> Option<String> {
    let (begin, end) = block_markers(recipe);
    let start = doc.find(&begin)?;
    let stop = start + doc[start..].find(&end)? + end.len();
    let stop = if doc[stop..].starts_with('\n') { stop + 1 } else { stop };
    Some(format!("{}{}{}", &doc[..start], block, &doc[stop..]))
}
