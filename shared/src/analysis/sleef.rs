//! torch's float64 CPU arithmetic where FD-Shifts' `temp_mls` passes through it: `exp` from SLEEF
//! (`Sleef_expd8_u10`, the AVX-512 build torch ships) and the row sum of `vec::reduce_all`. The
//! softmax of tempered logits is `1 / Σ exp(z − max)` there, and which rows tie depends on its
//! last bit. Written here because no crate reproduces SLEEF's or torch's results bit for bit;
//! checked against torch 2.13 itself (`tests/fixtures/temperature/make_reference.py`).

/// SLEEF's `xexp` (1-ulp): x = q·ln 2 + s with q = rint(x / ln 2), exp(s) by a degree-12
/// polynomial in Estrin's scheme, every multiply-add fused, then two multiplications by 2^(q/2).
pub fn exp(d: f64) -> f64 {
    let c = f64::from_bits;
    let (r_ln2, l2u, l2l) = (
        c(0x3ff7_1547_652b_82fe),
        c(0x3fe6_2e42_fefa_3000),
        c(0x3d53_de6a_f278_ece6),
    );
    let (c9, c8, c7, c6, c5) = (
        c(0x3e21_e0c6_70af_ff06),
        c(0x3e5a_f6c3_6f75_740c),
        c(0x3e92_7e5d_38a2_3654),
        c(0x3ec7_1dde_f633_fb47),
        c(0x3efa_01a0_127f_883a),
    );
    let (c4, c3, c2, c1, c0) = (
        c(0x3f2a_01a0_1b44_21fd),
        c(0x3f56_c16c_16c3_396b),
        c(0x3f81_1111_1110_e7a5),
        c(0x3fa5_5555_5555_54f9),
        c(0x3fc5_5555_5555_555e),
    );
    let log_dbl_max = c(0x4086_2e42_fefa_39ef);
    let u = (d * r_ln2).round_ties_even();
    let q = u as i32;
    let s = u.mul_add(-l2u, d);
    let s = u.mul_add(-l2l, s);
    let s2 = s * s;
    let s4 = s2 * s2;
    let s8 = s4 * s4;
    let poly2 = |a: f64, b: f64| s.mul_add(a, b);
    let poly4 = |a: f64, b: f64, e: f64, f: f64| s2.mul_add(poly2(a, b), poly2(e, f));
    let poly8 = s4.mul_add(poly4(c7, c6, c5, c4), poly4(c3, c2, c1, c0));
    let u = s8.mul_add(poly2(c9, c8), poly8);
    let u = u.mul_add(s, 0.5);
    let u = u.mul_add(s, 1.0);
    let u = u.mul_add(s, 1.0);
    let pow2 = |e: i32| f64::from_bits(((0x3ff + i64::from(e)) as u64) << 52);
    let half = q >> 1;
    let u = u * pow2(half) * pow2(q - half);
    if d > log_dbl_max {
        f64::INFINITY
    } else if d < -1000.0 {
        0.0
    } else {
        u
    }
}

/// `vec::reduce_all` with `+` over one row of float64 (AVX-512, eight lanes): below eight values
/// left to right; otherwise eight lane accumulators (a partial last vector added into the first
/// lanes), then the lanes left to right.
pub fn reduce_sum(x: &[f64]) -> f64 {
    let sequential = |v: &[f64]| v.iter().skip(1).fold(v.first().copied().unwrap_or(0.0), |a, b| a + b);
    if x.len() < 8 {
        return sequential(x);
    }
    let mut acc = [0.0f64; 8];
    acc.copy_from_slice(&x[..8]);
    let mut i = 8;
    while i + 8 <= x.len() {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += x[i + k];
        }
        i += 8;
    }
    for (a, v) in acc.iter_mut().zip(&x[i..]) {
        *a += v;
    }
    sequential(&acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_and_saturates() {
        for x in [-700.0, -20.5, -1.0, -1e-9, 0.0, 0.3, 1.0, 50.0] {
            let (ours, libm) = (exp(x), f64::exp(x));
            assert!(
                (ours - libm).abs() <= 2.0 * f64::EPSILON * libm,
                "{x}: {ours} vs {libm}"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-1001.0), 0.0);
    }

    #[test]
    fn reduce_sum_folds_lanes() {
        let x: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(reduce_sum(&x), 66.0);
        assert_eq!(reduce_sum(&[0.5, 0.25]), 0.75);
        assert_eq!(reduce_sum(&[]), 0.0);
    }
}
