//! Confidence scoring functions (CSFs) over a model's outputs, as FD-Shifts computes them
//! (`fd_shifts/analysis/confid_scores.py`). Higher score = more confident, except for the
//! entropy-type scores, which FD-Shifts Platt-scales instead of negating (see [`needs_platt`]).

/// A row-major `(n, c)` matrix of softmax probabilities or logits.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f64],
    cols: usize,
}

impl<'a> Matrix<'a> {
    /// Wraps `data` of length `rows · cols`. Panics on a length mismatch (a programming error:
    /// loaders validate shapes before this point).
    pub fn new(data: &'a [f64], cols: usize) -> Self {
        assert!(
            cols > 0 && data.len().is_multiple_of(cols),
            "matrix data is not a multiple of {cols} columns"
        );
        Self { data, cols }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.cols
    }

    /// Number of columns (classes).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// MC-dropout samples in FD-Shifts' `(n, c, m)` layout: class-major, samples innermost.
#[derive(Debug, Clone, Copy)]
pub struct McSamples<'a> {
    data: &'a [f64],
    classes: usize,
    samples: usize,
}

impl<'a> McSamples<'a> {
    /// Wraps `data` of length `n · classes · samples`.
    pub fn new(data: &'a [f64], classes: usize, samples: usize) -> Self {
        assert!(
            classes > 0 && samples > 0 && data.len().is_multiple_of(classes * samples),
            "MC data is not a multiple of {classes}×{samples}"
        );
        Self { data, classes, samples }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / (self.classes * self.samples)
    }

    /// Number of MC passes.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The `m` samples of class `k` in row `i`.
    pub fn class_samples(&self, i: usize, k: usize) -> &'a [f64] {
        let start = (i * self.classes + k) * self.samples;
        &self.data[start..start + self.samples]
    }

    /// Mean over the MC passes: an `(n, c)` row-major matrix.
    pub fn mean(&self) -> Vec<f64> {
        let m = self.samples as f64;
        (0..self.rows())
            .flat_map(|i| (0..self.classes).map(move |k| (i, k)))
            .map(|(i, k)| self.class_samples(i, k).iter().sum::<f64>() / m)
            .collect()
    }

    /// Population standard deviation (ddof = 0) over the passes: an `(n, c)` row-major matrix.
    pub fn std(&self) -> Vec<f64> {
        (0..self.rows())
            .flat_map(|i| (0..self.classes).map(move |k| (i, k)))
            .map(|(i, k)| std_dev(self.class_samples(i, k)))
            .collect()
    }
}

fn std_dev(x: &[f64]) -> f64 {
    let m = x.len() as f64;
    let mean = x.iter().sum::<f64>() / m;
    (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m).sqrt()
}

/// Index of the largest entry; the first one on ties (`np.argmax`).
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (k, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = k;
        }
    }
    best
}

/// Largest entry: MSR on softmax, MLS on logits.
pub fn max(row: &[f64]) -> f64 {
    row.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Predictive entropy `Σ p · −ln(p + eps)`, eps = machine epsilon (FD-Shifts' `predictive_entropy`).
pub fn entropy(row: &[f64]) -> f64 {
    row.iter().map(|p| p * -(p + f64::EPSILON).ln()).sum()
}

/// `ln Σ exp(z)`, computed stably (energy score of the logits).
pub fn logsumexp(row: &[f64]) -> f64 {
    let m = max(row);
    if !m.is_finite() {
        return m;
    }
    m + row.iter().map(|z| (z - m).exp()).sum::<f64>().ln()
}

/// Softmax of one row of logits.
pub fn softmax(row: &[f64]) -> Vec<f64> {
    let m = max(row);
    let e: Vec<f64> = row.iter().map(|z| (z - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Expected entropy over the MC passes (`mcd_ee`).
pub fn expected_entropy(mc: &McSamples<'_>, i: usize) -> f64 {
    let m = mc.samples();
    (0..m)
        .map(|s| {
            (0..mc.classes)
                .map(|k| {
                    let p = mc.class_samples(i, k)[s];
                    p * -(p + f64::EPSILON).ln()
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / m as f64
}

/// Mean over classes of the standard deviation over passes (`mcd_sv`).
pub fn softmax_variance(mc: &McSamples<'_>, i: usize) -> f64 {
    (0..mc.classes).map(|k| std_dev(mc.class_samples(i, k))).sum::<f64>() / mc.classes as f64
}

/// Which row's standard deviations `mcd_waic` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaicStd {
    /// The row's own std at its predicted class (what MCD-WAIC means).
    OwnRow,
    /// FD-Shifts' bug: `np.take(std, argmax(mean))` without `axis` flattens the `(n, c)` array, so every
    /// row reads **row 0's** std at its own predicted class. Needed to reproduce published numbers.
    RowZero,
}

/// MCD-WAIC for every row: `max(mean) − std[row, argmax(mean)]`.
pub fn mcd_waic(mc: &McSamples<'_>, which: WaicStd) -> Vec<f64> {
    let c = mc.classes;
    let mean = mc.mean();
    let std = mc.std();
    (0..mc.rows())
        .map(|i| {
            let row = &mean[i * c..(i + 1) * c];
            let k = argmax(row);
            let std_row = match which {
                WaicStd::OwnRow => i,
                WaicStd::RowZero => 0,
            };
            max(row) - std[std_row * c + k]
        })
        .collect()
}

/// FD-Shifts' rule for which CSFs are Platt-scaled on `val_tuning` (a substring test on the name).
pub fn needs_platt(name: &str) -> bool {
    ["_pe", "_ee", "_mi", "_sv", "bpd", "maha", "_mls"]
        .iter()
        .any(|t| name.contains(t))
}

/// Temperature `T > 0` minimising the NLL of `softmax(z / T)` on validation logits.
///
/// FD-Shifts fits it with torch's L-BFGS (lr 0.01, 50 iterations) from T = 1; we minimise the same
/// one-dimensional convex objective in `ln T` to convergence, so `temp_mls` agrees with FD-Shifts only as
/// far as its optimiser converged.
pub fn fit_temperature(logits: &Matrix<'_>, labels: &[i64]) -> f64 {
    let nll = |t: f64| -> f64 {
        (0..logits.rows())
            .map(|i| {
                let row: Vec<f64> = logits.row(i).iter().map(|z| z / t).collect();
                logsumexp(&row) - row[labels[i] as usize]
            })
            .sum()
    };
    // Golden-section search on ln T in [-5, 5] (T from 0.0067 to 148).
    let (mut lo, mut hi) = (-5.0f64, 5.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut f1, mut f2) = (nll(x1.exp()), nll(x2.exp()));
    for _ in 0..100 {
        if f1 < f2 {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = nll(x1.exp());
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = nll(x2.exp());
        }
    }
    ((lo + hi) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_msr_and_energy_by_hand() {
        let p = [0.5, 0.25, 0.25];
        assert!((entropy(&p) - 1.0397207708399179).abs() < 1e-12);
        assert_eq!(max(&p), 0.5);
        assert_eq!(argmax(&[0.4, 0.4, 0.2]), 0, "ties go to the first class, as np.argmax");
        assert!((logsumexp(&[0.0, 0.0]) - 2f64.ln()).abs() < 1e-15);
        let s = softmax(&[1.0, 2.0, 3.0]);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((s[2] - 0.6652409557748219).abs() < 1e-15);
    }

    /// Two rows, two classes, three passes. Row 0 is certain, row 1 wavers.
    fn mc_data() -> Vec<f64> {
        vec![
            1.0, 1.0, 1.0, // row 0, class 0
            0.0, 0.0, 0.0, // row 0, class 1
            0.2, 0.5, 0.8, // row 1, class 0
            0.8, 0.5, 0.2, // row 1, class 1
        ]
    }

    #[test]
    fn mc_dropout_scores_by_hand() {
        let data = mc_data();
        let mc = McSamples::new(&data, 2, 3);
        assert_eq!(mc.mean(), vec![1.0, 0.0, 0.5, 0.5]);
        let sd = (0.18f64 / 3.0).sqrt();
        assert!((softmax_variance(&mc, 1) - sd).abs() < 1e-15);
        assert_eq!(softmax_variance(&mc, 0), 0.0);
        let ee = (2.0 * entropy(&[0.2, 0.8]) + entropy(&[0.5, 0.5])) / 3.0;
        assert!((expected_entropy(&mc, 1) - ee).abs() < 1e-15);
        // WAIC: own row vs. FD-Shifts' row-0 quirk (row 0 has zero std).
        let own = mcd_waic(&mc, WaicStd::OwnRow);
        let quirk = mcd_waic(&mc, WaicStd::RowZero);
        assert!((own[1] - (0.5 - sd)).abs() < 1e-15);
        assert_eq!(quirk[1], 0.5);
        assert_eq!(own[0], quirk[0]);
    }

    #[test]
    fn platt_rule_follows_fd_shifts_names() {
        for n in [
            "det_pe",
            "mcd_pe",
            "mcd_ee",
            "mcd_mi",
            "mcd_sv",
            "det_mls",
            "mcd_mls",
            "energy_mls",
        ] {
            assert!(needs_platt(n), "{n}");
        }
        for n in ["det_mcp", "mcd_mcp", "mcd_waic", "ext", "dg", "tcp", "temp_mls_"] {
            assert_eq!(needs_platt(n), n.contains("_mls"), "{n}");
        }
    }

    #[test]
    fn temperature_fit_recovers_a_known_temperature() {
        // Three of four confident predictions are right: the optimum is a finite temperature.
        let logits = [4.0, 0.0, 0.0, 4.0, 4.0, 0.0, 0.0, 4.0];
        let m = Matrix::new(&logits, 2);
        let labels = [0, 1, 1, 1];
        let t = fit_temperature(&m, &labels);
        let nll = |t: f64| -> f64 {
            (0..4)
                .map(|i| {
                    let row: Vec<f64> = m.row(i).iter().map(|z| z / t).collect();
                    logsumexp(&row) - row[labels[i] as usize]
                })
                .sum()
        };
        assert!(nll(t) <= nll(t * 1.01) && nll(t) <= nll(t / 1.01), "T = {t}");
        assert!(t > 0.0 && t.is_finite());
    }
}
