//! Distribution shifts, as test sets of a study: acquisition (held-out sites), manifestation
//! (held-out disease subtypes) and corruption (every kind × severity applied to the i.i.d. test set).
//! Deterministic for a given seed.

pub mod corrupt;

use indexmap::IndexMap;

use crate::data::split::{group_split, Fractions};
use crate::data::{Dataset, Split};
use crate::error::InputError;
use corrupt::Corruption;

/// Which kind of shift a test set represents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftKind {
    /// The i.i.d. test set.
    Iid,
    /// New acquisition site / device.
    Acquisition,
    /// Disease subtypes unseen in training.
    Manifestation,
    /// Synthetic corruption of i.i.d. test images.
    Corruption,
}

/// What to hold out and corrupt.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftPlan {
    /// Domains (sites) never seen in training; one test set each.
    pub held_out_domains: Vec<String>,
    /// Metadata key and values of held-out subtypes (HAM10000: `dx` = `bkl`, `akiec`); one test set.
    pub held_out_subtypes: Option<(String, Vec<String>)>,
    /// Corruptions applied to the i.i.d. test set at severities 1..=5.
    pub corruptions: Vec<Corruption>,
    /// Split of the in-distribution samples that have no predefined split.
    pub fractions: Fractions,
    /// Seed of the split and the corruptions.
    pub seed: u64,
}

/// One test set: rows of the dataset, optionally corrupted.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSet {
    /// Name (`iid`, `acquisition_<site>`, `manifestation_<values>`, `corruption_<kind>_<severity>`).
    pub name: String,
    /// Kind of shift.
    pub kind: ShiftKind,
    /// Indices into the dataset's samples.
    pub rows: Vec<usize>,
    /// The corruption and severity applied to every image.
    pub corruption: Option<(Corruption, u8)>,
}

/// Training, validation and test sets of a study.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows (early stopping; FD-Shifts' `val_tuning`).
    pub val: Vec<usize>,
    /// Test sets, i.i.d. first.
    pub test_sets: Vec<TestSet>,
}

/// Number of rows per class: the label mix, which shifts change too.
pub fn label_mix(ds: &Dataset, rows: &[usize]) -> IndexMap<String, usize> {
    let mut mix: IndexMap<String, usize> = ds.classes.iter().map(|c| (c.clone(), 0)).collect();
    for &r in rows {
        mix[ds.samples[r].label] += 1;
    }
    mix
}

/// Builds the study design. Held-out domains win over held-out subtypes (a held-out subtype image
/// from a held-out site belongs to that site's test set); everything else is split by group.
pub fn design(ds: &Dataset, plan: &ShiftPlan) -> Result<Design, InputError> {
    let domains: Vec<&str> = ds.samples.iter().filter_map(|s| s.domain.as_deref()).collect();
    for d in &plan.held_out_domains {
        if !domains.contains(&d.as_str()) {
            return Err(InputError::item(
                "shifts.held_out_domains",
                format!("no sample of {} has domain {d:?}", ds.name),
            ));
        }
    }
    let is_subtype = |i: usize| {
        plan.held_out_subtypes
            .as_ref()
            .is_some_and(|(key, values)| ds.samples[i].meta.get(key).is_some_and(|v| values.contains(v)))
    };
    let mut test_sets = Vec::new();
    let mut in_dist = Vec::new();
    let mut acquisition: IndexMap<&str, Vec<usize>> =
        plan.held_out_domains.iter().map(|d| (d.as_str(), Vec::new())).collect();
    let mut manifestation = Vec::new();
    for (i, s) in ds.samples.iter().enumerate() {
        if let Some(rows) = s.domain.as_deref().and_then(|d| acquisition.get_mut(d)) {
            rows.push(i);
        } else if is_subtype(i) {
            manifestation.push(i);
        } else {
            in_dist.push(i);
        }
    }
    if let Some((key, values)) = &plan.held_out_subtypes {
        if manifestation.is_empty() {
            return Err(InputError::item(
                "shifts.held_out_subtypes",
                format!("no in-site sample has {key} in {values:?}"),
            ));
        }
    }
    // Predefined splits are kept; the rest is split by group.
    let subset: Vec<_> = in_dist.iter().map(|&i| ds.samples[i].clone()).collect();
    let drawn = group_split(&subset, plan.fractions, plan.seed);
    let (mut train, mut val, mut iid) = (Vec::new(), Vec::new(), Vec::new());
    for (k, &i) in in_dist.iter().enumerate() {
        match ds.samples[i].split.unwrap_or(drawn[k]) {
            Split::Train => train.push(i),
            Split::Val => val.push(i),
            Split::Test => iid.push(i),
        }
    }
    if train.is_empty() || val.is_empty() || iid.is_empty() {
        return Err(InputError::item(
            "shifts",
            format!(
                "{}: train {}, val {}, iid test {} rows; each needs at least one",
                ds.name,
                train.len(),
                val.len(),
                iid.len()
            ),
        ));
    }
    test_sets.push(TestSet {
        name: "iid".into(),
        kind: ShiftKind::Iid,
        rows: iid.clone(),
        corruption: None,
    });
    for (domain, rows) in acquisition {
        test_sets.push(TestSet {
            name: format!("acquisition_{domain}"),
            kind: ShiftKind::Acquisition,
            rows,
            corruption: None,
        });
    }
    if let Some((_, values)) = &plan.held_out_subtypes {
        test_sets.push(TestSet {
            name: format!("manifestation_{}", values.join("+")),
            kind: ShiftKind::Manifestation,
            rows: manifestation,
            corruption: None,
        });
    }
    for kind in corruptions_for(ds, &plan.corruptions)? {
        for severity in 1..=5u8 {
            test_sets.push(TestSet {
                name: format!("corruption_{}_{severity}", kind.name()),
                kind: ShiftKind::Corruption,
                rows: iid.clone(),
                corruption: Some((kind, severity)),
            });
        }
    }
    Ok(Design { train, val, test_sets })
}

/// The corruptions of `plan` that suit `ds`'s images. On greyscale data the dermoscopy
/// corruptions are an error when named, and left out of `all` (every kind, in order).
fn corruptions_for(ds: &Dataset, plan: &[Corruption]) -> Result<Vec<Corruption>, InputError> {
    if !ds.greyscale {
        return Ok(plan.to_vec());
    }
    if plan == Corruption::ALL {
        return Ok(plan.iter().copied().filter(|c| !c.colour_only()).collect());
    }
    match plan.iter().find(|c| c.colour_only()) {
        Some(c) => Err(InputError::item(
            "corruptions",
            format!(
                "{c} is a dermoscopy corruption for colour images, and {} is greyscale: leave it out (\"all\" does so on greyscale data)",
                ds.name
            ),
        )),
        None => Ok(plan.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ImageRef, Sample};

    fn dataset() -> Dataset {
        let sites = ["a", "b", "c"];
        let dx = ["nv", "mel", "bkl", "akiec"];
        let samples = (0..600)
            .map(|i| Sample {
                id: i.to_string(),
                image: ImageRef::File(format!("{i}.jpg").into()),
                label: usize::from(dx[i % 4] == "mel" || dx[i % 4] == "akiec"),
                group: Some(format!("lesion{}", i / 2)),
                domain: Some(sites[i % 3].to_string()),
                split: None,
                meta: [("dx".to_string(), dx[i % 4].to_string())].into_iter().collect(),
            })
            .collect();
        Dataset {
            name: "toy".into(),
            classes: vec!["benign".into(), "malignant".into()],
            samples,
            greyscale: false,
        }
    }

    fn plan() -> ShiftPlan {
        ShiftPlan {
            held_out_domains: vec!["c".into()],
            held_out_subtypes: Some(("dx".into(), vec!["bkl".into(), "akiec".into()])),
            corruptions: vec![Corruption::GaussianNoise, Corruption::Hair],
            fractions: Fractions { train: 0.7, val: 0.1 },
            seed: 1,
        }
    }

    #[test]
    fn greyscale_data_gets_no_dermoscopy_corruptions() {
        let grey = Dataset {
            greyscale: true,
            ..dataset()
        };
        let e = design(&grey, &plan()).unwrap_err();
        assert!(e.to_string().contains("hair is a dermoscopy corruption"), "{e}");
        let all = ShiftPlan {
            corruptions: Corruption::ALL.to_vec(),
            ..plan()
        };
        let kinds = |d: &Design| -> Vec<Corruption> {
            let mut k: Vec<Corruption> = d.test_sets.iter().filter_map(|t| t.corruption.map(|c| c.0)).collect();
            k.dedup();
            k
        };
        let d = design(&grey, &all).unwrap();
        assert_eq!(kinds(&d).len(), 7);
        assert!(kinds(&d).iter().all(|c| !c.colour_only()));
        // Colour data keeps every kind.
        assert_eq!(kinds(&design(&dataset(), &all).unwrap()).len(), 9);
    }

    #[test]
    fn held_out_sites_and_subtypes_never_reach_training() {
        let ds = dataset();
        let d = design(&ds, &plan()).unwrap();
        let names: Vec<&str> = d.test_sets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names[..3], ["iid", "acquisition_c", "manifestation_bkl+akiec"]);
        assert_eq!(names.len(), 3 + 2 * 5);
        for &i in d.train.iter().chain(&d.val) {
            assert_ne!(ds.samples[i].domain.as_deref(), Some("c"));
            assert!(!["bkl", "akiec"].contains(&ds.samples[i].meta["dx"].as_str()));
        }
        assert_eq!(d.test_sets[1].rows.len(), 200, "every site-c sample");
        // bkl/akiec are 300 samples; a third of them (100) are at the held-out site c.
        assert_eq!(d.test_sets[2].rows.len(), 200, "bkl/akiec outside site c");
        let total: usize = d.train.len() + d.val.len() + d.test_sets[..3].iter().map(|t| t.rows.len()).sum::<usize>();
        assert_eq!(
            total, 600,
            "every sample in exactly one of train, val, iid, acquisition, manifestation"
        );
        assert_eq!(d, design(&ds, &plan()).unwrap(), "seeded");
        let mix = label_mix(&ds, &d.test_sets[2].rows);
        assert_eq!(mix["benign"] + mix["malignant"], d.test_sets[2].rows.len());
    }

    #[test]
    fn unknown_site_is_an_error() {
        let mut p = plan();
        p.held_out_domains = vec!["zz".into()];
        let e = design(&dataset(), &p).unwrap_err();
        assert!(e.problem.contains("\"zz\""), "{e}");
    }
}
