//! Two confidence rankings of the same samples at one working point: which failures each lets
//! through silently and which it catches. Side A is the study on screen; side B is either another
//! study over the same samples (another model: rows matched by [`match_rows`]) or the same study
//! under a second CSF.
//!
//! Each side is cut at its own threshold: its CSF's value at the chosen coverage of its own i.i.d.
//! test set ([`coverage_threshold`], the rule the silent-failure filter uses). A failure (a wrong
//! prediction) at or above the threshold is *silent*, below it *caught*.

use std::collections::HashMap;

use crate::analysis::rc::{coverage_threshold, is_silent};

/// One side of a comparison: a study's columns under one CSF.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// FD-Shifts dataset index per row (the i.i.d. set, index 1, fixes the threshold).
    pub dataset_idx: &'a [u16],
    /// True class per row.
    pub label: &'a [u16],
    /// Prediction per row.
    pub predicted: &'a [u16],
    /// The CSF's score per row.
    pub score: &'a [f32],
}

impl Side<'_> {
    /// The CSF's value at `coverage` of the i.i.d. set (of every row when there is none).
    pub fn threshold(&self, coverage: f64) -> f64 {
        let idx: Vec<i64> = self.dataset_idx.iter().map(|&d| i64::from(d)).collect();
        coverage_threshold(self.score, &idx, coverage)
    }

    fn fate(&self, row: usize, threshold: f64) -> Fate {
        if self.label[row] == self.predicted[row] {
            Fate::Right
        } else if is_silent(true, self.score[row], threshold) {
            Fate::Silent
        } else {
            Fate::Caught
        }
    }
}

/// A row's fate on one side (its code: right 0, caught 1, silent 2).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Right = 0,
    Caught = 1,
    Silent = 2,
}

/// What a row of A is in the comparison (its colour and legend entry), in legend order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Verdict {
    /// Right on both sides.
    Right = 0,
    /// A silent failure on both sides.
    SilentBoth = 1,
    /// Silent for A, a failure B catches.
    SilentACaughtB = 2,
    /// Silent for A, right in B (another model predicts it correctly).
    SilentARightB = 3,
    /// Silent for B, a failure A catches.
    SilentBCaughtA = 4,
    /// Silent for B, right in A.
    SilentBRightA = 5,
    /// A failure on at least one side, silent on neither.
    Caught = 6,
    /// No row of B holds this sample.
    Unmatched = 7,
}

impl Verdict {
    /// Every verdict, by code.
    pub const ALL: [Verdict; 8] = [
        Verdict::Right,
        Verdict::SilentBoth,
        Verdict::SilentACaughtB,
        Verdict::SilentARightB,
        Verdict::SilentBCaughtA,
        Verdict::SilentBRightA,
        Verdict::Caught,
        Verdict::Unmatched,
    ];

    /// Its URL and element name.
    pub fn name(self) -> &'static str {
        [
            "right",
            "silent-both",
            "silent-a-caught-b",
            "silent-a-right-b",
            "silent-b-caught-a",
            "silent-b-right-a",
            "caught",
            "unmatched",
        ][self as usize]
    }

    /// Its legend text, with the two sides named.
    pub fn label(self, a: &str, b: &str) -> String {
        match self {
            Verdict::Right => "right for both".into(),
            Verdict::SilentBoth => "silent for both".into(),
            Verdict::SilentACaughtB => format!("silent for {a}, caught by {b}"),
            Verdict::SilentARightB => format!("silent for {a}, right in {b}"),
            Verdict::SilentBCaughtA => format!("silent for {b}, caught by {a}"),
            Verdict::SilentBRightA => format!("silent for {b}, right in {a}"),
            Verdict::Caught => "failure caught, silent for neither".into(),
            Verdict::Unmatched => format!("not in {b}"),
        }
    }

    fn of(a: Fate, b: Fate) -> Verdict {
        use Fate::*;
        match (a, b) {
            (Right, Right) => Verdict::Right,
            (Silent, Silent) => Verdict::SilentBoth,
            (Silent, Caught) => Verdict::SilentACaughtB,
            (Silent, Right) => Verdict::SilentARightB,
            (Caught, Silent) => Verdict::SilentBCaughtA,
            (Right, Silent) => Verdict::SilentBRightA,
            (Caught, _) | (Right, Caught) => Verdict::Caught,
        }
    }
}

/// Failures, silent and caught, of one side over the matched rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Its threshold: the CSF's value at the coverage.
    pub threshold: f64,
    /// Wrong predictions.
    pub failures: usize,
    /// Wrong and at or above the threshold.
    pub silent: usize,
    /// Wrong and below the threshold.
    pub caught: usize,
}

/// The counts of a comparison over some of its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    /// Rows per verdict code.
    pub counts: [usize; 8],
    /// Side A over the matched rows.
    pub a: Tally,
    /// Side B over the matched rows.
    pub b: Tally,
}

/// A row's pair of fates, `3 × A + B` ([`Fate`] codes), or [`UNMATCHED`].
const UNMATCHED: u8 = 9;

fn fate_of(code: u8) -> Fate {
    [Fate::Right, Fate::Caught, Fate::Silent][usize::from(code % 3)]
}

/// The verdict of a pair of fates' code.
fn verdict_of(pair: u8) -> Verdict {
    if pair == UNMATCHED {
        Verdict::Unmatched
    } else {
        Verdict::of(fate_of(pair / 3), fate_of(pair % 3))
    }
}

/// A comparison of A's rows with B's.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Both sides' fates per row of A (`3 × A + B`, or `UNMATCHED`); a row's verdict follows.
    fates: Vec<u8>,
    /// Both thresholds.
    thresholds: (f64, f64),
    /// Counts over every row.
    pub all: Summary,
}

impl Comparison {
    /// The verdict of row `r` of A (`None` past the last row).
    pub fn verdict(&self, r: usize) -> Option<Verdict> {
        self.fates.get(r).map(|&f| verdict_of(f))
    }

    /// The rows of A with verdict `v`.
    pub fn rows_of(&self, v: Verdict) -> Vec<usize> {
        (0..self.fates.len())
            .filter(|&r| verdict_of(self.fates[r]) == v)
            .collect()
    }

    /// The counts over the rows `keep` accepts (the points a view's filters leave, say); the
    /// thresholds stay each side's own.
    pub fn summary(&self, keep: impl Fn(usize) -> bool) -> Summary {
        let mut out = Summary {
            a: Tally {
                threshold: self.thresholds.0,
                ..Tally::default()
            },
            b: Tally {
                threshold: self.thresholds.1,
                ..Tally::default()
            },
            ..Summary::default()
        };
        let tally = |t: &mut Tally, f: Fate| match f {
            Fate::Right => {}
            Fate::Silent => {
                t.failures += 1;
                t.silent += 1;
            }
            Fate::Caught => {
                t.failures += 1;
                t.caught += 1;
            }
        };
        for (r, &f) in self.fates.iter().enumerate() {
            if !keep(r) {
                continue;
            }
            out.counts[verdict_of(f) as usize] += 1;
            if f != UNMATCHED {
                tally(&mut out.a, fate_of(f / 3));
                tally(&mut out.b, fate_of(f % 3));
            }
        }
        out
    }
}

/// Compares A's rows with B's at `coverage`: `matched[r]` is the row of B holding A's row `r`
/// (`u32::MAX`: none); without `matched` the sides share their rows (one study, two CSFs).
pub fn compare(a: &Side, b: &Side, matched: Option<&[u32]>, coverage: f64) -> Comparison {
    let (ta, tb) = (a.threshold(coverage), b.threshold(coverage));
    let n = a.label.len();
    let fates = (0..n)
        .map(|r| {
            let rb = match matched {
                None => Some(r),
                Some(m) => m.get(r).filter(|&&x| x != u32::MAX).map(|&x| x as usize),
            };
            match rb.filter(|&rb| rb < b.label.len()) {
                None => UNMATCHED,
                Some(rb) => 3 * a.fate(r, ta) as u8 + b.fate(rb, tb) as u8,
            }
        })
        .collect();
    let mut out = Comparison {
        fates,
        thresholds: (ta, tb),
        all: Summary::default(),
    };
    out.all = out.summary(|_| true);
    out
}

/// A row's identity across studies: its test set's name and its sample id (when the study
/// recorded one).
pub type RowKey<'a> = (&'a str, Option<&'a str>);

/// The row of B holding each row of A (`u32::MAX`: none). Rows match by test-set name and
/// sample id; the k-th row of A with a key takes the k-th row of B with it, so rows without ids
/// match by their order within the test set, and a sample repeated in a set pairs in order.
pub fn match_rows(a: &[RowKey], b: &[RowKey]) -> Vec<u32> {
    let mut in_b: HashMap<RowKey, (usize, Vec<u32>)> = HashMap::new();
    for (r, k) in b.iter().enumerate() {
        in_b.entry(*k).or_default().1.push(r as u32);
    }
    a.iter()
        .map(|k| match in_b.get_mut(k) {
            Some((next, rows)) if *next < rows.len() => {
                *next += 1;
                rows[*next - 1]
            }
            _ => u32::MAX,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten i.i.d. rows; the threshold at 50 % coverage is the fifth highest score.
    fn side<'a>(label: &'a [u16], predicted: &'a [u16], score: &'a [f32]) -> Side<'a> {
        const IID: [u16; 10] = [1; 10];
        Side {
            dataset_idx: &IID[..label.len()],
            label,
            predicted,
            score,
        }
    }

    #[test]
    fn two_csfs_split_the_failures_by_who_catches_them() {
        let label = [0u16; 10];
        // Rows 0–3 wrong, 4–9 right.
        let predicted = [1u16, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        // A trusts rows 0 and 1 (silent), B trusts rows 1 and 2.
        let sa = [0.9f32, 0.8, 0.1, 0.2, 0.95, 0.85, 0.7, 0.3, 0.4, 0.35];
        let sb = [0.1f32, 0.9, 0.8, 0.2, 0.95, 0.85, 0.7, 0.3, 0.4, 0.35];
        let (a, b) = (side(&label, &predicted, &sa), side(&label, &predicted, &sb));
        let c = compare(&a, &b, None, 0.5);
        // By hand: A's five highest are 0.95, 0.9, 0.85, 0.8, 0.7 → threshold 0.7.
        assert_eq!((c.all.a.threshold, c.all.b.threshold), (0.7f32 as f64, 0.7f32 as f64));
        use Verdict::*;
        let v: Vec<Verdict> = (0..c.fates.len()).map(|r| c.verdict(r).unwrap()).collect();
        assert_eq!(
            v,
            [
                SilentACaughtB,
                SilentBoth,
                SilentBCaughtA,
                Caught,
                Right,
                Right,
                Right,
                Right,
                Right,
                Right
            ]
        );
        assert_eq!(c.all.counts, [6, 1, 1, 0, 1, 0, 1, 0]);
        assert_eq!((c.all.a.failures, c.all.a.silent, c.all.a.caught), (4, 2, 2));
        assert_eq!((c.all.b.failures, c.all.b.silent, c.all.b.caught), (4, 2, 2));
        assert_eq!(c.rows_of(SilentACaughtB), [0]);
        // Over rows 0–2 only: A's silent rows 0 and 1, B's 1 and 2; row 3 (caught by both) out.
        let part = c.summary(|r| r < 3);
        assert_eq!(part.counts, [0, 1, 1, 0, 1, 0, 0, 0]);
        assert_eq!((part.a.failures, part.a.silent, part.a.caught), (3, 2, 1));
        assert_eq!((part.b.failures, part.b.silent, part.b.caught), (3, 2, 1));
        assert_eq!(part.a.threshold, c.all.a.threshold, "filters keep the thresholds");
    }

    #[test]
    fn two_models_differ_in_what_they_get_right_and_unmatched_rows_are_named() {
        let label = [0u16; 4];
        let (pa, pb) = ([1u16, 0, 1, 1], [0u16, 1, 1, 0]);
        let s = [0.9f32, 0.9, 0.9, 0.1];
        let (a, b) = (side(&label, &pa, &s), side(&label, &pb, &s));
        // B's rows are A's reversed; A's row 3 has no partner.
        let matched = [3, 2, 1, u32::MAX];
        let c = compare(&a, &b, Some(&matched), 1.0);
        // Threshold at full coverage: the lowest score, 0.1; everything wrong is silent.
        use Verdict::*;
        let v: Vec<Verdict> = (0..c.fates.len()).map(|r| c.verdict(r).unwrap()).collect();
        // Row 0: A wrong, B's row 3 right. Row 1: A right, B's row 2 wrong. Row 2: both wrong.
        assert_eq!(v, [SilentARightB, SilentBRightA, SilentBoth, Unmatched]);
        assert_eq!((c.all.a.failures, c.all.b.failures), (2, 2), "only matched rows count");
    }

    #[test]
    fn rows_match_by_set_and_id_then_by_order() {
        let a: Vec<RowKey> = vec![
            ("iid", Some("x")),
            ("iid", Some("y")),
            ("blur_3", Some("x")),
            ("iid", None),
            ("iid", None),
        ];
        let b: Vec<RowKey> = vec![
            ("iid", None),
            ("blur_3", Some("x")),
            ("iid", Some("y")),
            ("iid", Some("x")),
        ];
        assert_eq!(match_rows(&a, &b), [3, 2, 1, 0, u32::MAX]);
    }
}
