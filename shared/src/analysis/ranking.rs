//! How sure a ranking of CSFs is, the way challengeR-style benchmark reports (and FD-Shifts'
//! bootstrap report after them) show it: every CSF's metric on the same bootstrap resamples of the
//! test set, then
//! - the distribution of each CSF's rank over the resamples ([`rank_distribution`]);
//! - for every ordered pair, a one-sided bootstrap test of "a beats b" (the paired difference over
//!   the resamples against its bootstrap standard error), Holm-adjusted over all pairs
//!   ([`pairwise_significance`]);
//! - Kendall's τ-b between two rankings, e.g. by AURC and by AUGRC ([`kendall_tau_b`]).

use super::bootstrap::for_each_resample;

/// Whether a lower or a higher value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// AURC, AUGRC, ECE.
    Lower,
    /// AUROC_f.
    Higher,
}

impl Better {
    /// Whether `a` is strictly better than `b`; NaN is never better, and anything beats NaN.
    fn beats(self, a: f64, b: f64) -> bool {
        match (a.is_nan(), b.is_nan()) {
            (true, _) => false,
            (false, true) => true,
            _ => match self {
                Better::Lower => a < b,
                Better::Higher => a > b,
            },
        }
    }
}

/// Ranks of `values`, 1 for the best; tied values share the smallest of their ranks (R's
/// `rank(ties.method = "min")`, challengeR's default). NaN ranks behind every number.
pub fn ranks_min(values: &[f64], better: Better) -> Vec<usize> {
    values
        .iter()
        .map(|&v| 1 + values.iter().filter(|&&w| better.beats(w, v)).count())
        .collect()
}

/// `metrics[b][c]`: CSF `c`'s metric on the `b`-th of `n_boot` paired resamples of `n` test rows
/// (`metric(c, rows)`, NaN where undefined). The same resamples for every CSF.
pub fn paired_bootstrap(
    n: usize,
    csfs: usize,
    n_boot: usize,
    seed: u64,
    mut metric: impl FnMut(usize, &[usize]) -> Option<f64>,
) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(n_boot);
    for_each_resample(n, n_boot, seed, |rows| {
        out.push((0..csfs).map(|c| metric(c, rows).unwrap_or(f64::NAN)).collect());
    });
    out
}

/// How each CSF ranked over the resamples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RankDistribution {
    /// `counts[c][r]`: resamples in which CSF `c` ranked `r + 1`.
    pub counts: Vec<Vec<u32>>,
    /// Each CSF's mean rank.
    pub mean_rank: Vec<f64>,
}

/// The rank of every CSF in every resample of `metrics` (from [`paired_bootstrap`]).
pub fn rank_distribution(metrics: &[Vec<f64>], better: Better) -> RankDistribution {
    let csfs = metrics.first().map_or(0, Vec::len);
    let mut counts = vec![vec![0u32; csfs]; csfs];
    for resample in metrics {
        for (c, r) in ranks_min(resample, better).into_iter().enumerate() {
            counts[c][r - 1] += 1;
        }
    }
    let total = metrics.len().max(1) as f64;
    let mean_rank = counts
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(r, &k)| (r + 1) as f64 * f64::from(k))
                .sum::<f64>()
                / total
        })
        .collect();
    RankDistribution { counts, mean_rank }
}

/// Pairwise one-sided tests over the resamples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Significance {
    /// `p[a][b]`: the p-value of "CSF `a` beats CSF `b`": the normal tail `1 − Φ(d̄ / s)` of the
    /// mean `d̄` of the paired differences over the resamples (positive where `a` is better) and
    /// their standard deviation `s`, the bootstrap standard error (Efron & Tibshirani 1993, §16).
    /// Resamples where either value is NaN are left out; with fewer than two left, or `d̄ ≤ 0`,
    /// p = 1. NaN on the diagonal.
    ///
    /// Not the Monte-Carlo share of resamples in which `a` fails to beat `b`: that p is at least
    /// 1 / (1 + resamples), so with 40 CSFs (1,560 ordered pairs) no Holm-adjusted p could fall
    /// below 0.05 with fewer than ~31,000 resamples.
    pub p: Vec<Vec<f64>>,
    /// The same, Holm-adjusted over all ordered pairs.
    pub adjusted: Vec<Vec<f64>>,
}

impl Significance {
    /// Whether `a` beats `b` at family-wise level `alpha`.
    pub fn beats(&self, a: usize, b: usize, alpha: f64) -> bool {
        a != b && self.adjusted[a][b] < alpha
    }
}

/// [`Significance`] of every ordered pair of CSFs in `metrics` (from [`paired_bootstrap`]).
pub fn pairwise_significance(metrics: &[Vec<f64>], better: Better) -> Significance {
    let csfs = metrics.first().map_or(0, Vec::len);
    let mut p = vec![vec![f64::NAN; csfs]; csfs];
    for (a, row) in p.iter_mut().enumerate() {
        for (b, cell) in row.iter_mut().enumerate() {
            if a != b {
                let d: Vec<f64> = metrics
                    .iter()
                    .filter(|m| !m[a].is_nan() && !m[b].is_nan())
                    .map(|m| match better {
                        Better::Lower => m[b] - m[a],
                        Better::Higher => m[a] - m[b],
                    })
                    .collect();
                *cell = upper_tail(&d);
            }
        }
    }
    let pairs: Vec<(usize, usize)> = (0..csfs)
        .flat_map(|a| (0..csfs).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let flat: Vec<f64> = pairs.iter().map(|&(a, b)| p[a][b]).collect();
    let mut adjusted = vec![vec![f64::NAN; csfs]; csfs];
    for (&(a, b), q) in pairs.iter().zip(holm(&flat)) {
        adjusted[a][b] = q;
    }
    Significance { p, adjusted }
}

/// `1 − Φ(mean / sd)` of the differences `d` (sample standard deviation); 1 when the mean is not
/// positive or fewer than two are given, 0 when they are all equal and positive.
fn upper_tail(d: &[f64]) -> f64 {
    let n = d.len() as f64;
    if d.len() < 2 {
        return 1.0;
    }
    let mean = d.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return 1.0;
    }
    let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    if sd == 0.0 {
        return 0.0;
    }
    0.5 * libm::erfc(mean / sd / std::f64::consts::SQRT_2)
}

/// Holm's step-down adjustment of `p` (Holm 1979): the i-th smallest becomes
/// `max over j ≤ i of min(1, (m − j + 1) · p_(j))`, in the input's order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (j, &i) in order.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Kendall's τ-b of two paired samples (`scipy.stats.kendalltau`'s default): (C − D) /
/// √((n₀ − n₁)(n₀ − n₂)) with C, D the concordant and discordant pairs and n₁, n₂ the pairs tied
/// in `x`, in `y`. `None` when either sample is constant or the lengths differ. O(n²): rankings
/// have tens of entries.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() {
        return None;
    }
    let n = x.len();
    let (mut concordant, mut discordant, mut tied_x, mut tied_y, mut pairs) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            pairs += 1;
            let dx = x[i].total_cmp(&x[j]);
            let dy = y[i].total_cmp(&y[j]);
            match (dx.is_eq(), dy.is_eq()) {
                (true, true) => {
                    tied_x += 1;
                    tied_y += 1;
                }
                (true, false) => tied_x += 1,
                (false, true) => tied_y += 1,
                (false, false) if dx == dy => concordant += 1,
                (false, false) => discordant += 1,
            }
        }
    }
    let denominator = (((pairs - tied_x) * (pairs - tied_y)) as f64).sqrt();
    (denominator > 0.0).then(|| (concordant - discordant) as f64 / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_share_the_smallest_on_ties_and_nan_ranks_last() {
        assert_eq!(ranks_min(&[0.3, 0.1, 0.3, 0.2], Better::Lower), [3, 1, 3, 2]);
        assert_eq!(ranks_min(&[0.3, 0.1, 0.3, 0.2], Better::Higher), [1, 4, 1, 3]);
        assert_eq!(ranks_min(&[f64::NAN, 0.5, 0.7], Better::Lower), [3, 1, 2]);
    }

    #[test]
    fn rank_distribution_and_pairwise_tests_by_hand() {
        // Three resamples of two CSFs' AURC: ranks (1, 2), (2, 1), (1, 1).
        let m = vec![vec![0.25, 0.5], vec![0.75, 0.5], vec![0.25, 0.25]];
        let d = rank_distribution(&m, Better::Lower);
        assert_eq!(d.counts, [[2, 1], [2, 1]]);
        assert!((d.mean_rank[0] - 4.0 / 3.0).abs() < 1e-15);
        // Differences (b − a) 0.25, −0.25, 0: mean 0, so neither beats the other.
        let s = pairwise_significance(&m, Better::Lower);
        assert_eq!((s.p[0][1], s.p[1][0]), (1.0, 1.0));
        assert!(s.p[0][0].is_nan());
        assert!(!s.beats(0, 1, 0.05));
        // Differences 1, 2, 3, 4: z = 2.5 / 1.29099… = 1.93649…; scipy 1.17.1's
        // `norm.sf(1.9364916731037085)` is 0.02640375570805679. Holm over 2 pairs doubles it.
        let m: Vec<Vec<f64>> = (1..=4).map(|k| vec![0.0, f64::from(k)]).collect();
        let s = pairwise_significance(&m, Better::Lower);
        assert!((s.p[0][1] - 0.02640375570805679).abs() < 1e-15, "{}", s.p[0][1]);
        assert_eq!(s.p[1][0], 1.0);
        assert!((s.adjusted[0][1] - 2.0 * 0.02640375570805679).abs() < 1e-15);
        assert!(!s.beats(0, 1, 0.05));
        // Higher is better: the same differences, mirrored. A NaN resample is left out.
        let d = [0.1, -0.05, 0.2, 0.0, 0.15];
        let mut m: Vec<Vec<f64>> = d.iter().map(|x| vec![0.5 + x, 0.5]).collect();
        m.push(vec![f64::NAN, 0.5]);
        let s = pairwise_significance(&m, Better::Higher);
        // scipy: z = 0.7715885154726594, norm.sf(z) = 0.22017908920810259.
        assert!((s.p[0][1] - 0.22017908920810259).abs() < 1e-12, "{}", s.p[0][1]);
        assert_eq!(s.p[1][0], 1.0);
        // A constant positive difference is certain; many resamples of a clear difference are
        // significant even after Holm over 1,560 pairs (the Monte-Carlo p could not be).
        let m: Vec<Vec<f64>> = (0..99).map(|b| vec![0.1, 0.2 + b as f64 * 1e-3]).collect();
        let s = pairwise_significance(&m, Better::Lower);
        assert!(s.p[0][1] * 1560.0 < 0.05, "{}", s.p[0][1]);
        assert!(s.beats(0, 1, 0.05) && !s.beats(1, 0, 0.05));
        assert_eq!(upper_tail(&[0.3, 0.3, 0.3]), 0.0);
        assert_eq!(upper_tail(&[0.3]), 1.0);
    }

    #[test]
    fn holm_by_hand() {
        // Sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running
        // maximum 0.02, 0.03, 0.06, 0.06.
        let q = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
        assert_eq!(holm(&[0.6, 0.5]), [1.0, 1.0]);
    }

    #[test]
    fn kendall_tau_b_by_hand() {
        // C = 5, D = 1 of 6 pairs.
        assert!((kendall_tau_b(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap() - 4.0 / 6.0).abs() < 1e-15);
        // C = 4, D = 0, one pair tied in x and one in y: 4 / √(5 · 5).
        let t = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 3.0]).unwrap();
        assert!((t - 0.8).abs() < 1e-15, "{t}");
        assert_eq!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(kendall_tau_b(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn paired_bootstrap_uses_the_same_rows_for_every_csf() {
        let mut seen: Vec<Vec<usize>> = Vec::new();
        let m = paired_bootstrap(5, 2, 3, 7, |c, rows| {
            if c == 0 {
                seen.push(rows.to_vec());
            } else {
                assert_eq!(seen.last().unwrap(), rows);
            }
            (c == 0).then_some(rows.len() as f64)
        });
        assert_eq!(m.len(), 3);
        assert_eq!(m[0][0], 5.0);
        assert!(m[0][1].is_nan(), "an undefined metric is NaN");
    }

    #[test]
    fn equal_to_scipy_and_statsmodels() {
        // `tests/fixtures/ranking/make_reference.py`: scipy's kendalltau and rankdata, statsmodels' Holm.
        let r: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/ranking/reference.json")).unwrap();
        let floats =
            |v: &serde_json::Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        for case in r["kendall"].as_array().unwrap() {
            let (x, y) = (floats(&case["x"]), floats(&case["y"]));
            let mine = kendall_tau_b(&x, &y);
            match case["tau"].as_f64() {
                Some(t) => assert!(
                    mine.is_some_and(|m| (m - t).abs() < 1e-12),
                    "{x:?} {y:?}: {mine:?} vs {t}"
                ),
                None => assert_eq!(mine, None, "{x:?} {y:?}"),
            }
        }
        for case in r["rankdata_min"].as_array().unwrap() {
            let want: Vec<usize> = case["ranks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            // rankdata ranks ascending: "lower is better".
            assert_eq!(ranks_min(&floats(&case["x"]), Better::Lower), want);
        }
        for case in r["holm"].as_array().unwrap() {
            let (p, want) = (floats(&case["p"]), floats(&case["adjusted"]));
            for (a, b) in holm(&p).iter().zip(&want) {
                assert!((a - b).abs() <= 1e-15 * b.abs().max(1e-300), "{p:?}: {a} vs {b}");
            }
        }
    }
}
