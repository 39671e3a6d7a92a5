//! Test sets grouped by the kind of shift they hold, from their names: i.i.d., acquisition (per
//! site), manifestation (per subtype), corruption (per type, with its severity), other in-class
//! and new-class sets. The names are those `analysis::studies::test_set_names` gives and that
//! failscope's recipes write (`in_class_study_acquisition_<site>`,
//! `in_class_study_manifestation_<values>`, `in_class_study_corruption_<kind>_<severity>`), and
//! FD-Shifts' own (`iid_study`, `noise_study`, `in_class_study_<set>`, `new_class_study_<set>`).
//!
//! A [`SeverityRange`] per corruption type narrows which severities the view shows; it lives in the
//! URL as `sev=gaussian_noise:3-5,blur:1-2`.

use std::fmt;

use super::ViewState;

/// The kind of shift a test set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `val_tuning` and `iid_study`: no shift.
    Iid,
    /// Another site or device.
    Acquisition,
    /// Disease subtypes unseen in training.
    Manifestation,
    /// Image corruptions (noise, blur, brightness, …), each at a severity.
    Corruption,
    /// Other in-class shifts (FD-Shifts' `in_class_study_<set>` of an imported experiment).
    InClass,
    /// Classes unseen in training (semantic shift).
    NewClass,
}

impl Family {
    /// Every family, in the order the view lists them.
    pub const ALL: [Family; 6] = [
        Family::Iid,
        Family::Acquisition,
        Family::Manifestation,
        Family::Corruption,
        Family::InClass,
        Family::NewClass,
    ];

    /// A short label for the user, also the family's id in the page.
    pub fn label(self) -> &'static str {
        match self {
            Family::Iid => "i.i.d.",
            Family::Acquisition => "acquisition",
            Family::Manifestation => "manifestation",
            Family::Corruption => "corruption",
            Family::InClass => "in-class",
            Family::NewClass => "new-class",
        }
    }

    /// The family's id in the page (`iid`, `acquisition`, …).
    pub fn id(self) -> &'static str {
        match self {
            Family::Iid => "iid",
            Family::InClass => "in-class",
            Family::NewClass => "new-class",
            other => other.label(),
        }
    }
}

/// What a test set's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftSet {
    /// Its kind of shift.
    pub family: Family,
    /// Its group within the family: the site, the subtype, the corruption type or the set's name.
    pub group: String,
    /// A corruption's severity.
    pub severity: Option<u8>,
}

/// Reads a test set's name.
pub fn classify(name: &str) -> ShiftSet {
    let set = |family, group: &str, severity| ShiftSet {
        family,
        group: group.to_string(),
        severity,
    };
    if name == "val_tuning" || name == "iid_study" {
        return set(Family::Iid, name, None);
    }
    if name == "noise_study" {
        return set(Family::Corruption, name, None);
    }
    if let Some(rest) = name.strip_prefix("new_class_study_") {
        return set(Family::NewClass, rest, None);
    }
    let Some(rest) = name.strip_prefix("in_class_study_") else {
        return set(Family::InClass, name, None);
    };
    if let Some(site) = rest.strip_prefix("acquisition_") {
        return set(Family::Acquisition, site, None);
    }
    if let Some(values) = rest.strip_prefix("manifestation_") {
        return set(Family::Manifestation, values, None);
    }
    if let Some(corruption) = rest.strip_prefix("corruption_") {
        if let Some((kind, severity)) = corruption.rsplit_once('_') {
            if let Ok(severity) = severity.parse::<u8>() {
                return set(Family::Corruption, kind, Some(severity));
            }
        }
        return set(Family::Corruption, corruption, None);
    }
    set(Family::InClass, rest, None)
}

/// The severities of one corruption type the view shows, `lo..=hi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityRange {
    /// The corruption type (`gaussian_noise`).
    pub kind: String,
    /// Lowest severity shown.
    pub lo: u8,
    /// Highest severity shown.
    pub hi: u8,
}

impl SeverityRange {
    /// Whether a set of this range's kind at `severity` is shown.
    pub fn holds(&self, severity: u8) -> bool {
        (self.lo..=self.hi).contains(&severity)
    }
}

impl fmt::Display for SeverityRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}-{}", self.kind, self.lo, self.hi)
    }
}

/// Parses `kind:lo-hi,kind:lo-hi` (the URL's `sev`), sorted by kind, one range per kind.
pub fn parse_ranges(v: &str) -> Result<Vec<SeverityRange>, String> {
    let mut out: Vec<SeverityRange> = Vec::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("sev={v}: expected corruption:lo-hi[,…], e.g. gaussian_noise:3-5");
        let (kind, range) = part.rsplit_once(':').ok_or_else(bad)?;
        let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
        let (lo, hi) = (
            lo.parse::<u8>().map_err(|_| bad())?,
            hi.parse::<u8>().map_err(|_| bad())?,
        );
        if kind.is_empty() || lo > hi {
            return Err(bad());
        }
        if out.iter().any(|r| r.kind == kind) {
            return Err(format!("sev={v}: {kind} is given twice"));
        }
        out.push(SeverityRange {
            kind: kind.to_string(),
            lo,
            hi,
        });
    }
    out.sort_by(|a, b| a.kind.cmp(&b.kind));
    Ok(out)
}

/// Which test sets (by dataset index) the view shows: not hidden, and for a corruption with a
/// severity, within its type's range when it has one.
pub fn shown(names: &[String], hidden: &[i64], ranges: &[SeverityRange]) -> Vec<bool> {
    names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            if hidden.contains(&(k as i64)) {
                return false;
            }
            let set = classify(name);
            match (set.family, set.severity) {
                (Family::Corruption, Some(sev)) => {
                    ranges.iter().find(|r| r.kind == set.group).is_none_or(|r| r.holds(sev))
                }
                _ => true,
            }
        })
        .collect()
}

impl ViewState {
    /// Shows every set of `sets` when one of them is hidden, else hides them all (a group's or a
    /// family's checkbox).
    pub fn toggle_sets(&mut self, sets: &[i64]) {
        if sets.iter().any(|k| self.hide_sets.contains(k)) {
            self.hide_sets.retain(|k| !sets.contains(k));
        } else {
            self.hide_sets.extend_from_slice(sets);
            self.hide_sets.sort_unstable();
            self.hide_sets.dedup();
        }
    }

    /// The severities shown of corruption type `kind` whose sets span `full` (all of them when
    /// no range is set).
    pub fn severity_of(&self, kind: &str, full: (u8, u8)) -> (u8, u8) {
        self.severity
            .iter()
            .find(|r| r.kind == kind)
            .map_or(full, |r| (r.lo.max(full.0), r.hi.min(full.1)))
    }

    /// Shows severities `lo..=hi` of corruption type `kind`; its full range is no range, so
    /// the URL stays short.
    pub fn set_severity(&mut self, kind: &str, (lo, hi): (u8, u8), full: (u8, u8)) {
        self.severity.retain(|r| r.kind != kind);
        if (lo, hi) != full {
            self.severity.push(SeverityRange {
                kind: kind.to_string(),
                lo,
                hi,
            });
            self.severity.sort_by(|a, b| a.kind.cmp(&b.kind));
        }
    }
}

/// One group of test sets as the view lists it: its sets' indices, rows and correct predictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its family.
    pub family: Family,
    /// Its name within the family (site, subtype, corruption type, set name).
    pub name: String,
    /// `(dataset index, severity)` of its sets, in index order.
    pub sets: Vec<(i64, Option<u8>)>,
    /// Rows in its sets.
    pub rows: u64,
    /// Correct predictions among them.
    pub correct: u64,
}

impl Group {
    /// Accuracy of its rows (`None` without rows).
    pub fn accuracy(&self) -> Option<f64> {
        (self.rows > 0).then(|| self.correct as f64 / self.rows as f64)
    }

    /// The lowest and highest severity among its sets.
    pub fn severities(&self) -> Option<(u8, u8)> {
        let s = self.sets.iter().filter_map(|(_, s)| *s);
        Some((s.clone().min()?, s.max()?))
    }
}

/// The test sets grouped by family, then by group (in order of first appearance), with each
/// group's rows and correct predictions from `rows[k]`/`correct[k]` of dataset index `k`.
pub fn groups(names: &[String], rows: &[u64], correct: &[u64]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let set = classify(name);
        let (r, c) = (rows.get(k).copied().unwrap_or(0), correct.get(k).copied().unwrap_or(0));
        match out.iter_mut().find(|g| g.family == set.family && g.name == set.group) {
            Some(g) => {
                g.sets.push((k as i64, set.severity));
                g.rows += r;
                g.correct += c;
            }
            None => out.push(Group {
                family: set.family,
                name: set.group,
                sets: vec![(k as i64, set.severity)],
                rows: r,
                correct: c,
            }),
        }
    }
    // Stable: groups keep their order of appearance within a family.
    out.sort_by_key(|g| g.family);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_read_as_families_groups_and_severities() {
        let cases = [
            ("val_tuning", Family::Iid, "val_tuning", None),
            ("iid_study", Family::Iid, "iid_study", None),
            (
                "in_class_study_acquisition_vienna_dias",
                Family::Acquisition,
                "vienna_dias",
                None,
            ),
            (
                "in_class_study_manifestation_bkl+akiec",
                Family::Manifestation,
                "bkl+akiec",
                None,
            ),
            (
                "in_class_study_corruption_gaussian_noise_3",
                Family::Corruption,
                "gaussian_noise",
                Some(3),
            ),
            (
                "in_class_study_corruption_brightness_up_5",
                Family::Corruption,
                "brightness_up",
                Some(5),
            ),
            ("noise_study", Family::Corruption, "noise_study", None),
            ("in_class_study_derm_site_b", Family::InClass, "derm_site_b", None),
            (
                "new_class_study_derm_ood_proposed_mode",
                Family::NewClass,
                "derm_ood_proposed_mode",
                None,
            ),
            ("dataset 7", Family::InClass, "dataset 7", None),
        ];
        for (name, family, group, severity) in cases {
            assert_eq!(
                classify(name),
                ShiftSet {
                    family,
                    group: group.into(),
                    severity
                },
                "{name}"
            );
        }
    }

    #[test]
    fn severity_ranges_parse_print_and_refuse() {
        let r = parse_ranges("gaussian_noise:3-5,blur:1-2").unwrap();
        let printed: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(printed, ["blur:1-2", "gaussian_noise:3-5"]);
        assert_eq!(parse_ranges("").unwrap(), []);
        // Odd type names survive the URL's round trip (what the view_state fuzz target checks).
        for q in ["sev=x::01-2", "sev=a-b:1-2,,a%26b:0-255", "sev=%C3%A9:3-3"] {
            let s = ViewState::from_query(q).unwrap();
            assert_eq!(ViewState::from_query(&s.to_query()).unwrap(), s, "{q}");
        }
        for bad in [
            "blur",
            "blur:3",
            "blur:5-3",
            ":1-2",
            "blur:1-x",
            "blur:1-2,blur:3-4",
            "blur:1-300",
        ] {
            let e = parse_ranges(bad).unwrap_err();
            assert!(e.starts_with(&format!("sev={bad}")), "{bad}: {e}");
        }
    }

    #[test]
    fn a_range_hides_the_other_severities_of_its_type_only() {
        let sets = names(&[
            "val_tuning",
            "iid_study",
            "in_class_study_corruption_blur_1",
            "in_class_study_corruption_blur_4",
            "in_class_study_corruption_gaussian_noise_1",
            "in_class_study_acquisition_site2",
        ]);
        let ranges = parse_ranges("blur:3-5").unwrap();
        assert_eq!(shown(&sets, &[], &ranges), [true, true, false, true, true, true]);
        assert_eq!(shown(&sets, &[1, 3], &ranges), [true, false, false, false, true, true]);
        assert_eq!(shown(&sets, &[], &[]), [true; 6]);
    }

    #[test]
    fn a_group_toggles_all_its_sets_and_a_full_range_is_no_range() {
        let mut s = ViewState::default();
        s.toggle_sets(&[3, 4]);
        assert_eq!(s.hide_sets, [3, 4]);
        s.hide_sets = vec![4];
        s.toggle_sets(&[3, 4]);
        assert!(s.hide_sets.is_empty());
        s.set_severity("blur", (3, 5), (1, 5));
        assert_eq!(s.to_query(), "sev=blur:3-5");
        assert_eq!(s.severity_of("blur", (1, 5)), (3, 5));
        assert_eq!(s.severity_of("fog", (1, 5)), (1, 5));
        s.set_severity("blur", (1, 5), (1, 5));
        assert!(s.severity.is_empty());
    }

    #[test]
    fn groups_sum_their_sets_rows_and_accuracy() {
        let sets = names(&[
            "val_tuning",
            "iid_study",
            "in_class_study_corruption_blur_1",
            "in_class_study_acquisition_site2",
            "in_class_study_corruption_blur_4",
        ]);
        let g = groups(&sets, &[10, 20, 30, 40, 50], &[9, 18, 15, 20, 5]);
        let summary: Vec<(Family, &str, Vec<i64>, u64)> = g
            .iter()
            .map(|g| (g.family, g.name.as_str(), g.sets.iter().map(|s| s.0).collect(), g.rows))
            .collect();
        assert_eq!(
            summary,
            [
                (Family::Iid, "val_tuning", vec![0], 10),
                (Family::Iid, "iid_study", vec![1], 20),
                (Family::Acquisition, "site2", vec![3], 40),
                (Family::Corruption, "blur", vec![2, 4], 80),
            ]
        );
        assert_eq!(g[3].accuracy(), Some(0.25));
        assert_eq!(g[3].severities(), Some((1, 4)));
        assert_eq!(g[2].severities(), None);
    }
}
