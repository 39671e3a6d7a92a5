//! Temperature scaling (`temp_mls`): a temperature `T` fitted on the validation logits, and the
//! confidence `max softmax(z / T)`.
//!
//! FD-Shifts HEAD fits `T` with one call of `torch.optim.LBFGS([T], lr=0.01, max_iter=50).step()`
//! from `T = 1`, with `T` a float32 tensor and the loss `cross_entropy(logits / T, labels)` in
//! float64. With a fixed step of 0.01 (no line search) fifty iterations stop far from the NLL
//! optimum (e.g. T = 1.11 where the optimum is 1.44), and FD-Shifts' published `temp_mls` numbers
//! carry that. [`fit_like_fd_shifts`] reproduces the optimiser step by step in float32, so the
//! temperature comes out bit for bit; [`fit_converged`] minimises the NLL for the corrected mode.

use super::csf::{self, Matrix};
use super::sleef;

/// Mean cross-entropy of `softmax(z / t)` against `labels` (float64, as torch computes it for
/// float64 logits) and its derivative in `t`.
fn nll_and_grad(logits: &Matrix<'_>, labels: &[i64], t: f64) -> (f64, f64) {
    let n = logits.rows();
    let (mut loss, mut grad) = (0.0, 0.0);
    for (i, &label) in labels.iter().enumerate().take(n) {
        let row: Vec<f64> = logits.row(i).iter().map(|z| z / t).collect();
        let lse = csf::logsumexp(&row);
        let y = label as usize;
        loss += lse - row[y];
        // d/dt of (z/t) is −(z/t)/t; upstream gradient softmax − onehot.
        for (k, zt) in row.iter().enumerate() {
            let p = (zt - lse).exp();
            let g = p - f64::from(u8::from(k == y));
            grad += g * -(zt / t);
        }
    }
    (loss / n as f64, grad / n as f64)
}

/// The temperature FD-Shifts HEAD fits (`TemperatureScaling`): torch's L-BFGS without line search
/// (lr 0.01, max_iter 50, max_eval 62, tolerance_grad 1e-7, tolerance_change 1e-9, history 100),
/// one `step()`, every optimiser state in float32 as torch keeps it for a float32 parameter.
pub fn fit_like_fd_shifts(logits: &Matrix<'_>, labels: &[i64]) -> f32 {
    const LR: f32 = 0.01;
    const MAX_ITER: usize = 50;
    const MAX_EVAL: usize = MAX_ITER * 5 / 4;
    const HISTORY: usize = 100;
    let tolerance_grad = 1e-7f32;
    let tolerance_change = 1e-9f32;
    let eval = |t: f32| -> (f64, f32) {
        let (loss, grad) = nll_and_grad(logits, labels, f64::from(t));
        (loss, grad as f32)
    };
    // `p.add_(update, alpha=step)`: torch's CPU kernel computes `self + alpha * other` fused.
    let add = |x: f32, alpha: f32, y: f32| alpha.mul_add(y, x);

    let mut param = 1.0f32;
    let (mut loss, mut g) = eval(param);
    let mut current_evals = 1;
    if g.abs() <= tolerance_grad {
        return param;
    }
    let (mut d, mut t) = (0.0f32, LR);
    let (mut old_dirs, mut old_stps, mut ro): (Vec<f32>, Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new(), Vec::new());
    let mut h_diag = 1.0f32;
    let mut prev_g = 0.0f32;
    for n_iter in 1..=MAX_ITER {
        if n_iter == 1 {
            d = -g;
        } else {
            let y = g - prev_g;
            let s = d * t;
            let ys = y * s;
            if ys > 1e-10 {
                if old_dirs.len() == HISTORY {
                    old_dirs.remove(0);
                    old_stps.remove(0);
                    ro.remove(0);
                }
                old_dirs.push(y);
                old_stps.push(s);
                ro.push(1.0 / ys);
                h_diag = ys / (y * y);
            }
            let mut al = vec![0.0f32; old_dirs.len()];
            let mut q = -g;
            for i in (0..old_dirs.len()).rev() {
                al[i] = (old_stps[i] * q) * ro[i];
                q = add(q, -al[i], old_dirs[i]);
            }
            let mut r = q * h_diag;
            for i in 0..old_dirs.len() {
                let be_i = (old_dirs[i] * r) * ro[i];
                r = add(r, al[i] - be_i, old_stps[i]);
            }
            d = r;
        }
        prev_g = g;
        let prev_loss = loss;
        // First iteration: `min(1., 1. / |g|) * lr`, a float32 tensor when 1/|g| < 1.
        t = if n_iter == 1 {
            let inv = 1.0f32 / g.abs();
            if inv < 1.0 {
                inv * LR
            } else {
                LR
            }
        } else {
            LR
        };
        let gtd = g * d;
        if gtd > -tolerance_change {
            break;
        }
        param = add(param, t, d);
        let mut opt_cond = false;
        if n_iter != MAX_ITER {
            (loss, g) = eval(param);
            opt_cond = g.abs() <= tolerance_grad;
            current_evals += 1;
        }
        if n_iter == MAX_ITER
            || current_evals >= MAX_EVAL
            || opt_cond
            || (d * t).abs() <= tolerance_change
            || (loss - prev_loss).abs() < 1e-9
        {
            break;
        }
    }
    param
}

/// The temperature `T > 0` that minimises the validation NLL (golden-section search on `ln T` in
/// `[-5, 5]`, i.e. T from 0.0067 to 148, to convergence): the corrected mode's fit.
pub fn fit_converged(logits: &Matrix<'_>, labels: &[i64]) -> f64 {
    let nll = |log_t: f64| nll_and_grad(logits, labels, log_t.exp()).0;
    let (mut lo, mut hi) = (-5.0f64, 5.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut f1, mut f2) = (nll(x1), nll(x2));
    for _ in 0..100 {
        if f1 < f2 {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - g * (hi - lo);
            f1 = nll(x1);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + g * (hi - lo);
            f2 = nll(x2);
        }
    }
    ((lo + hi) / 2.0).exp()
}

/// `temp_mls` of one row: `max softmax(z / T)` as torch computes it in float64: `exp(z − max)` by
/// SLEEF, summed by `vec::reduce_all`, the largest term (exp(0) = 1) times the reciprocal of the sum.
pub fn confidence(row: &[f64], temperature: f64) -> f64 {
    let scaled: Vec<f64> = row.iter().map(|z| z / temperature).collect();
    let m = csf::max(&scaled);
    let e: Vec<f64> = scaled.iter().map(|z| sleef::exp(z - m)).collect();
    1.0 / sleef::reduce_sum(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three of four confident predictions are right: the NLL optimum is a finite temperature.
    fn three_of_four() -> (Vec<f64>, Vec<i64>) {
        (vec![4.0, 0.0, 0.0, 4.0, 4.0, 0.0, 0.0, 4.0], vec![0, 1, 1, 1])
    }

    #[test]
    fn converged_fit_minimises_the_nll() {
        let (logits, labels) = three_of_four();
        let m = Matrix::new(&logits, 2);
        let t = fit_converged(&m, &labels);
        let nll = |t: f64| nll_and_grad(&m, &labels, t).0;
        assert!(nll(t) <= nll(t * 1.01) && nll(t) <= nll(t / 1.01), "T = {t}");
        let (_, grad) = nll_and_grad(&m, &labels, t);
        assert!(grad.abs() < 1e-7, "gradient {grad} at the optimum");
    }

    #[test]
    fn gradient_matches_a_finite_difference() {
        let (logits, labels) = three_of_four();
        let m = Matrix::new(&logits, 2);
        let (_, g) = nll_and_grad(&m, &labels, 1.3);
        let h = 1e-6;
        let fd = (nll_and_grad(&m, &labels, 1.3 + h).0 - nll_and_grad(&m, &labels, 1.3 - h).0) / (2.0 * h);
        assert!((g - fd).abs() < 1e-8, "{g} vs {fd}");
    }

    #[test]
    fn fifty_fixed_steps_stop_short_of_the_optimum() {
        let (logits, labels) = three_of_four();
        let m = Matrix::new(&logits, 2);
        let converged = fit_converged(&m, &labels);
        let fd = f64::from(fit_like_fd_shifts(&m, &labels));
        assert!(fd > 1.0 && fd < converged, "{fd} should lie between 1 and {converged}");
    }

    /// torch's own fits (`tests/fixtures/temperature/make_reference.py`): the emulation gives the
    /// same float32 temperature, bit for bit, negative ones (L-BFGS stepping through 0) included.
    #[test]
    fn emulated_lbfgs_returns_torchs_temperature() {
        let problems: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/temperature/lbfgs_reference.json")).unwrap();
        let mut mismatches = Vec::new();
        for (i, p) in problems.as_array().unwrap().iter().enumerate() {
            let c = p["classes"].as_u64().unwrap() as usize;
            let logits: Vec<f64> = p["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let labels: Vec<i64> = p["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let expected = p["temperature"].as_f64().unwrap() as f32;
            let got = fit_like_fd_shifts(&Matrix::new(&logits, c), &labels);
            if got.to_bits() != expected.to_bits() {
                mismatches.push(format!("problem {i}: {got} vs torch {expected}"));
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }

    /// torch's own `max(softmax(z / T))` (`tests/fixtures/temperature/make_reference.py`), bit for bit.
    #[test]
    fn confidence_is_torchs_softmax_bit_for_bit() {
        let rows: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/temperature/softmax_reference.json"
        ))
        .unwrap();
        let mut mismatches = Vec::new();
        for (i, r) in rows.as_array().unwrap().iter().enumerate() {
            let z: Vec<f64> = r["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (t, expected) = (r["temperature"].as_f64().unwrap(), r["confidence"].as_f64().unwrap());
            let got = confidence(&z, t);
            if got.to_bits() != expected.to_bits() {
                mismatches.push(format!("row {i} ({} classes): {got} vs torch {expected}", z.len()));
            }
        }
        assert!(mismatches.is_empty(), "{mismatches:#?}");
    }
}
