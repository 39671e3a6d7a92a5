//! FD-Shifts' studies (`fd_shifts/analysis/studies.py`): which rows of an experiment each study
//! scores, from `dataset_idx` and the config's `query_studies`.

use super::experiment::{ExperimentError, Plan};

/// How a new-class study treats its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSet {
    /// `dataset_idx` of the new-class (OOD) set: its rows count as failures with label −99.
    pub ood_idx: i64,
    /// `original_mode`: every i.i.d. row counts as correct; `proposed_mode` keeps only the correct ones.
    pub original: bool,
}

/// One study's rows, in experiment order.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRows {
    /// FD-Shifts' study name (`val_tuning`, `iid_study`, `noise_study_3`, …).
    pub name: String,
    /// Rows scored by the deterministic CSFs.
    pub rows: Vec<usize>,
    /// Rows scored by the MC-dropout CSFs (they differ in new-class studies, which select by
    /// `mcd_correct`).
    pub mcd_rows: Vec<usize>,
    /// Set for new-class studies.
    pub open_set: Option<OpenSet>,
}

impl StudyRows {
    /// Every row of an experiment of `n` rows, as one plain study.
    pub fn all(n: usize) -> Self {
        Self {
            name: "all".into(),
            rows: (0..n).collect(),
            mcd_rows: (0..n).collect(),
            open_set: None,
        }
    }
}

/// The test sets in FD-Shifts' flattened order (`dataset_name_to_idx`: iid, noise…, in-class…,
/// new-class…); set `k` of this list has `dataset_idx` `k + 1` (0 is `val_tuning`).
pub fn flat_sets(plan: &Plan) -> Vec<&String> {
    let mut flat: Vec<&String> = Vec::new();
    flat.extend(plan.iid_study.iter());
    flat.extend(plan.noise_study.iter());
    flat.extend(plan.in_class_study.iter());
    flat.extend(plan.new_class_study.iter());
    flat
}

/// The name of every test set by `dataset_idx`, `0..sets`: `val_tuning`, `iid_study`, `noise_study`
/// (whose rows FD-Shifts splits into five levels), `in_class_study_<set>`, `new_class_study_<set>`
/// — FD-Shifts' study names — and `dataset <k>` for an index the plan does not name.
pub fn test_set_names(plan: &Plan, sets: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..sets).map(|k| format!("dataset {k}")).collect();
    let mut name = |idx: i64, text: String| {
        if let Some(slot) = usize::try_from(idx).ok().and_then(|i| names.get_mut(i)) {
            // FD-Shifts' `list.index`: a set listed twice keeps its first role.
            if slot.starts_with("dataset ") {
                *slot = text;
            }
        }
    };
    name(0, "val_tuning".into());
    if let Some(iid) = &plan.iid_study {
        name(dataset_idx_of(plan, iid), "iid_study".into());
    }
    for set in &plan.noise_study {
        name(dataset_idx_of(plan, set), "noise_study".into());
    }
    for set in &plan.in_class_study {
        name(dataset_idx_of(plan, set), format!("in_class_study_{set}"));
    }
    for set in &plan.new_class_study {
        name(dataset_idx_of(plan, set), format!("new_class_study_{set}"));
    }
    names
}

/// `dataset_idx` of a named test set (FD-Shifts' `list.index`: the first match), −1 if unknown.
pub fn dataset_idx_of(plan: &Plan, name: &str) -> i64 {
    flat_sets(plan)
        .iter()
        .position(|n| *n == name)
        .map_or(-1, |p| p as i64 + 1)
}

/// The `dataset_idx` values of the new-class sets: the only rows whose labels may lie outside
/// `0..num_classes`.
pub fn new_class_indices(plan: &Plan) -> Vec<i64> {
    plan.new_class_study.iter().map(|s| dataset_idx_of(plan, s)).collect()
}

/// Every study FD-Shifts runs, `val_tuning` first. `correct` and `mcd_correct` are the
/// experiment's correctness by the softmax and the MC-mean arg-max (new-class studies select by them).
pub fn study_plan(
    dataset_idx: &[i64],
    plan: &Plan,
    correct: &[bool],
    mcd_correct: Option<&[bool]>,
) -> Result<Vec<StudyRows>, ExperimentError> {
    let rows_of = |idx: i64| -> Vec<usize> { (0..dataset_idx.len()).filter(|&r| dataset_idx[r] == idx).collect() };
    let plain = |name: String, idx: i64| -> Result<StudyRows, ExperimentError> {
        let rows = rows_of(idx);
        if rows.is_empty() {
            return Err(ExperimentError::EmptyStudy { study: name, idx });
        }
        Ok(StudyRows {
            name,
            mcd_rows: rows.clone(),
            rows,
            open_set: None,
        })
    };
    let mut out = Vec::new();
    if rows_of(0).is_empty() {
        return Err(ExperimentError::NoValTuning);
    }
    out.push(plain("val_tuning".into(), 0)?);
    if let Some(iid) = &plan.iid_study {
        out.push(plain("iid_study".into(), dataset_idx_of(plan, iid))?);
    }
    for set in &plan.noise_study {
        let all = plain(format!("noise_study ({set})"), dataset_idx_of(plan, set))?.rows;
        if !plan.fast_dev_run && !all.len().is_multiple_of(75) {
            return Err(ExperimentError::NoiseSize {
                set: set.clone(),
                rows: all.len(),
            });
        }
        let per_level = all.len() / 75;
        for level in 0..5 {
            let rows: Vec<usize> = if plan.fast_dev_run {
                all.clone()
            } else {
                // Rows are ordered [corruption (15)][severity (5)][image]: take [:, level].
                (0..15)
                    .flat_map(|c| all[(c * 5 + level) * per_level..(c * 5 + level + 1) * per_level].to_vec())
                    .collect()
            };
            out.push(StudyRows {
                name: format!("noise_study_{}", level + 1),
                mcd_rows: rows.clone(),
                rows,
                open_set: None,
            });
        }
    }
    for set in &plan.in_class_study {
        out.push(plain(format!("in_class_study_{set}"), dataset_idx_of(plan, set))?);
    }
    let iid_idx = plan.iid_study.as_deref().map_or(-1, |s| dataset_idx_of(plan, s));
    for set in &plan.new_class_study {
        let ood = dataset_idx_of(plan, set);
        let name = format!("new_class_study_{set}");
        if rows_of(ood).is_empty() {
            return Err(ExperimentError::EmptyStudy { study: name, idx: ood });
        }
        for (mode, original) in [("original_mode", true), ("proposed_mode", false)] {
            // Rows in experiment order; incorrect i.i.d. predictions are dropped in proposed mode.
            let select = |ok: &[bool]| -> Vec<usize> {
                (0..dataset_idx.len())
                    .filter(|&r| dataset_idx[r] == ood || (dataset_idx[r] == iid_idx && (original || ok[r])))
                    .collect()
            };
            let rows = select(correct);
            let mcd_rows = mcd_correct.map_or_else(|| rows.clone(), select);
            out.push(StudyRows {
                name: format!("{name}_{mode}"),
                rows,
                mcd_rows,
                open_set: Some(OpenSet { ood_idx: ood, original }),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_index_gets_its_study_name() {
        let plan = Plan {
            iid_study: Some("derm".into()),
            noise_study: vec!["derm_corrupt".into()],
            in_class_study: vec!["ph2".into(), "d7".into()],
            new_class_study: vec!["svhn".into()],
            ..Plan::default()
        };
        assert_eq!(
            test_set_names(&plan, 7),
            [
                "val_tuning",
                "iid_study",
                "noise_study",
                "in_class_study_ph2",
                "in_class_study_d7",
                "new_class_study_svhn",
                "dataset 6"
            ]
        );
        // Sets beyond the rows present are not named; a set listed twice keeps its first role.
        let twice = Plan {
            iid_study: Some("derm".into()),
            in_class_study: vec!["derm".into()],
            ..Plan::default()
        };
        assert_eq!(test_set_names(&twice, 2), ["val_tuning", "iid_study"]);
    }
}
