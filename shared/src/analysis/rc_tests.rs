//! Tests of `rc`: FD-Shifts' published values and hand-computed cases.
use super::*;
use crate::analysis::test_vectors::{vectors, Vectors};

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} != {b} (tol {tol})");
}

#[test]
fn legacy_aurc_matches_fd_shifts_published_values() {
    let Vectors {
        some_correct: correct,
        all,
        some,
        inv,
        med,
        unnorm,
        ..
    } = vectors();
    let cases = [
        (&all, 490.02525252525254),
        (&some, 128.71212121212122),
        (&inv, 861.2878787878789),
        (&unnorm, 482.81112575762546),
    ];
    for (confids, expected) in cases {
        let s = RiskCoverageStats::new(confids, &correct, None, TieOrder::Input);
        close(s.aurc_legacy(), expected, 1e-9);
    }
    // Ten tie groups of ten: FD-Shifts' value comes from numpy's introsort order of the ties, which
    // no stable order reproduces; it lies within the errors-first / corrects-first bracket.
    let lo = RiskCoverageStats::new(&med, &correct, None, TieOrder::ErrorsFirst).aurc_legacy();
    let hi = RiskCoverageStats::new(&med, &correct, None, TieOrder::CorrectsFirst).aurc_legacy();
    assert!(lo < 488.47515054956466 && 488.47515054956466 < hi, "{lo} {hi}");
    // numpy's own introsort order of those ties gives FD-Shifts' value exactly.
    let numpy = RiskCoverageStats::new(&med, &correct, None, TieOrder::Numpy).aurc_legacy();
    close(numpy, 488.47515054956466, 1e-9);
    // none correct: the last 1/n is omitted.
    let s = RiskCoverageStats::new(&unnorm, &[false; 100], None, TieOrder::Input);
    close(s.aurc_legacy(), 990.0, 1e-9);
}

#[test]
fn e_aurc_of_perfect_ranking_is_negative_as_published() {
    let Vectors { some_correct, some, .. } = vectors();
    let s = RiskCoverageStats::new(&some, &some_correct, None, TieOrder::Input);
    close(s.aurc_legacy() - s.aurc_optimal(), -24.71428850790636, 1e-9);
    let none = RiskCoverageStats::new(&some, &[false; 100], None, TieOrder::Input);
    close(none.aurc_legacy() - none.aurc_optimal(), -10.0, 1e-9);
}

#[test]
fn current_definitions_on_all_equal_confidences_with_half_errors() {
    let s = RiskCoverageStats::new(&[0.7; 100], &vectors().some_correct, None, TieOrder::Input);
    close(s.aurc() / 1000.0, 0.5, 1e-12);
    close((s.aurc() - s.aurc_optimal()) / 1000.0, 0.34657, 1e-5);
    close(s.augrc() / 1000.0, 0.25, 1e-12);
}

/// n = 100 with 10 % errors (the first ten rows fail).
fn ten_percent() -> Vec<bool> {
    (0..100).map(|i| i >= 10).collect()
}

#[test]
fn ten_percent_errors_perfect_worst_and_tied() {
    let correct = ten_percent();
    let perfect: Vec<f64> = (0..100).map(f64::from).collect();
    let worst: Vec<f64> = (0..100).map(|i| -f64::from(i)).collect();
    let p = RiskCoverageStats::new(&perfect, &correct, None, TieOrder::Input);
    close(p.aurc_legacy(), 5.1738, 1e-4);
    close(p.aurc(), 5.1738, 1e-4);
    close(p.augrc(), 5.0, 1e-9);
    let w = RiskCoverageStats::new(&worst, &correct, None, TieOrder::Input);
    close(w.aurc_legacy(), 320.34, 5e-3);
    close(w.aurc(), 330.34, 5e-3);
    close(w.augrc(), 95.0, 1e-9);
    let t = RiskCoverageStats::new(&[0.5; 100], &correct, None, TieOrder::Input);
    close(t.aurc_legacy(), 90.05, 5e-3);
    close(t.aurc(), 100.0, 1e-9);
    close(t.augrc(), 50.0, 1e-9);
}

#[test]
fn tie_order_brackets_the_legacy_aurc_and_leaves_current_unchanged() {
    let correct = ten_percent();
    let lo = RiskCoverageStats::new(&[0.5; 100], &correct, None, TieOrder::ErrorsFirst);
    let hi = RiskCoverageStats::new(&[0.5; 100], &correct, None, TieOrder::CorrectsFirst);
    assert!(lo.aurc_legacy() < hi.aurc_legacy());
    close(hi.aurc_legacy(), 99.995, 5e-3);
    close(lo.aurc(), hi.aurc(), 1e-12);
}

#[test]
fn balanced_curves_equal_plain_ones_for_balanced_classes_with_equal_accuracy() {
    // Two classes of 50, each with 25 % errors spread alike.
    let correct: Vec<bool> = (0..100).map(|i| (i / 2) % 4 != 0).collect();
    let labels: Vec<i64> = (0..100).map(|i| i % 2).collect();
    let confids: Vec<f64> = (0..100).map(|i| f64::from(i / 2)).collect();
    let s = RiskCoverageStats::new(&confids, &correct, Some(&labels), TieOrder::Input);
    close(
        s.generalized_ba_curve().unwrap().trapezoid_area() * 1000.0,
        s.augrc(),
        1e-9,
    );
    close(
        s.selective_ba_curve().unwrap().trapezoid_area() * 1000.0,
        s.aurc(),
        1e-9,
    );
}

#[test]
fn b_aurc_by_hand() {
    // All wrong, 40 rows, two classes, distinct confidences: every class risk stays 1 and the
    // last row is never integrated: 1000 · 39/40 = 975 (FD-Shifts' value).
    let confids: Vec<f64> = (0..40).map(f64::from).collect();
    let labels: Vec<i64> = (0..40).map(|i| i % 2).collect();
    let s = RiskCoverageStats::new(&confids, &[false; 40], Some(&labels), TieOrder::Numpy);
    close(s.b_aurc().unwrap(), 975.0, 1e-9);
    // Four rows: class 0 = {c 0.1 wrong, c 0.4 right}, class 1 = {c 0.2 right, c 0.3 right}.
    // Start: mean(1/2, 0) = 0.25. Remove 0.1 (class 0): class 0 risk 0/1 → mean 0, weight 1/4.
    // Remove 0.2: class 1 risk 0/1 → mean 0, weight 1/4. Remove 0.3: class 1 empty → mean of
    // class 0 alone = 0, weight 1/4. Area: (0.25 + 0)/2·¼ = 0.03125 → ×1000.
    let s = RiskCoverageStats::new(
        &[0.1, 0.4, 0.2, 0.3],
        &[false, true, true, true],
        Some(&[0, 0, 1, 1]),
        TieOrder::Numpy,
    );
    assert!((s.b_aurc().unwrap() - 31.25).abs() < 1e-12);
    assert!(RiskCoverageStats::new(&confids, &[true; 40], None, TieOrder::Input)
        .b_aurc()
        .is_none());
}

#[test]
fn min_risk_at_coverage_and_plot_points() {
    let correct = ten_percent();
    let perfect: Vec<f64> = (0..100).map(f64::from).collect();
    let s = RiskCoverageStats::new(&perfect, &correct, None, TieOrder::Input);
    let c = s.selective_curve();
    close(c.min_risk_at_coverage(1.0).unwrap(), 0.1, 1e-12);
    close(c.min_risk_at_coverage(0.9).unwrap(), 0.0, 1e-12);
    let pts = RiskCoverageStats::plot_points(&c, 11);
    assert_eq!(pts.len(), 11);
    assert_eq!(pts[0], (1.0, 0.1));
    assert_eq!(*pts.last().unwrap(), (0.0, 0.0));
}

#[test]
fn nearest_point_on_a_curve() {
    let curve = Curve {
        coverages: vec![1.0, 0.75, 0.5, 0.25, 0.0],
        risks: vec![0.4, 0.3, 0.2, 0.1, 0.1],
        thresholds: vec![0.1, 0.2, 0.3, 0.4],
    };
    assert_eq!(curve.nearest(1.0), Some((1.0, 0.4, Some(0.1))));
    assert_eq!(curve.nearest(0.7), Some((0.75, 0.3, Some(0.2))));
    assert_eq!(curve.nearest(0.55), Some((0.5, 0.2, Some(0.3))));
    assert_eq!(curve.nearest(0.625), Some((0.75, 0.3, Some(0.2))));
    assert_eq!(curve.nearest(0.1), Some((0.0, 0.1, None)));
    assert_eq!(curve.nearest(0.0), Some((0.0, 0.1, None)));
    assert_eq!(
        Curve {
            coverages: vec![],
            risks: vec![],
            thresholds: vec![]
        }
        .nearest(0.5),
        None
    );
}
