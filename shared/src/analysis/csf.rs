//! Confidence scoring functions (CSFs) over a model's outputs, as FD-Shifts computes them
//! (`fd_shifts/analysis/confid_scores.py`). Higher score = more confident, except for the
//! entropy-type scores, which FD-Shifts Platt-scales instead of negating (see [`needs_platt`]).
//! Every sum follows numpy's order (see [`numpy`]): FD-Shifts' ties depend on it.

use super::numpy;

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

    /// Mean over the MC passes (`np.mean(dist, axis=2)`): an `(n, c)` row-major matrix.
    pub fn mean(&self) -> Vec<f64> {
        (0..self.rows())
            .flat_map(|i| (0..self.classes).map(move |k| (i, k)))
            .map(|(i, k)| numpy::mean(self.class_samples(i, k)))
            .collect()
    }

    /// Population standard deviation (ddof = 0) over the passes (`np.std(dist, axis=2)`): an `(n, c)`
    /// row-major matrix.
    pub fn std(&self) -> Vec<f64> {
        (0..self.rows())
            .flat_map(|i| (0..self.classes).map(move |k| (i, k)))
            .map(|(i, k)| std_dev(self.class_samples(i, k)))
            .collect()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }
}

/// `np.std(x)` (ddof = 0) in numpy's order: mean, squared deviations, mean, square root.
pub fn std_dev(x: &[f64]) -> f64 {
    let mean = numpy::mean(x);
    let sq: Vec<f64> = x
        .iter()
        .map(|v| {
            let d = v - mean;
            d * d
        })
        .collect();
    numpy::mean(&sq).sqrt()
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

fn entropy_term(p: f64) -> f64 {
    p * -numpy::ln(p + f64::EPSILON)
}

/// Predictive entropy `Σ p · −ln(p + eps)`, eps = machine epsilon (FD-Shifts' `predictive_entropy`),
/// summed as `np.sum(…, axis=1)` sums a row.
pub fn entropy(row: &[f64]) -> f64 {
    let terms: Vec<f64> = row.iter().map(|&p| entropy_term(p)).collect();
    numpy::sum(&terms)
}

/// `scipy.special.logsumexp(row)`: `ln Σ exp(z − max) + max` (a non-finite max shifts by 0).
pub fn logsumexp(row: &[f64]) -> f64 {
    let m = max(row);
    let shift = if m.is_finite() { m } else { 0.0 };
    let e: Vec<f64> = row.iter().map(|z| numpy::exp(z - shift)).collect();
    numpy::ln(numpy::sum(&e)) + shift
}

/// `scipy.special.softmax` of one row of logits (the row is the contiguous axis).
pub fn softmax(row: &[f64]) -> Vec<f64> {
    let m = max(row);
    let e: Vec<f64> = row.iter().map(|z| numpy::exp(z - m)).collect();
    let s = numpy::sum(&e);
    e.into_iter().map(|v| v / s).collect()
}

/// `scipy.special.softmax(dist, axis=1)` of FD-Shifts' `(n, c, m)` MC logits: the class axis is not
/// the innermost one, so numpy sums the classes left to right.
pub fn softmax_mc(dist: &[f64], classes: usize, samples: usize) -> Vec<f64> {
    let mut out = vec![0.0; dist.len()];
    for (row, block) in dist.chunks(classes * samples).enumerate() {
        for s in 0..samples {
            let at = |k: usize| k * samples + s;
            let m = (0..classes).map(|k| block[at(k)]).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = (0..classes).map(|k| numpy::exp(block[at(k)] - m)).collect();
            let total = numpy::sum_outer(e.iter().copied());
            for (k, v) in e.into_iter().enumerate() {
                out[row * classes * samples + at(k)] = v / total;
            }
        }
    }
    out
}

/// Expected entropy over the MC passes (`mcd_ee`): each pass's entropy summed over the class axis
/// (left to right: not numpy's innermost axis), then the mean over passes.
pub fn expected_entropy(mc: &McSamples<'_>, i: usize) -> f64 {
    let per_pass: Vec<f64> = (0..mc.samples())
        .map(|s| numpy::sum_outer((0..mc.classes).map(|k| entropy_term(mc.class_samples(i, k)[s]))))
        .collect();
    numpy::mean(&per_pass)
}

/// Mean over classes of the standard deviation over passes (`mcd_sv`).
pub fn softmax_variance(mc: &McSamples<'_>, i: usize) -> f64 {
    let sd: Vec<f64> = (0..mc.classes).map(|k| std_dev(mc.class_samples(i, k))).collect();
    numpy::mean(&sd)
}

/// Which row's standard deviations `mcd_waic` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaicStd {
    /// The row's own std at its predicted class (what MCD-WAIC means).
    OwnRow,
    /// FD-Shifts' bug (v0.1.1 and HEAD): `np.take(std, argmax(mean))` without `axis` flattens the
    /// `(n, c)` array, so every row reads **row 0's** std at its own predicted class.
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
}
