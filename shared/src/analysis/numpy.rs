//! numpy's order of operations, where FD-Shifts' results depend on it (numpy 1.24, the version its
//! analysis runs with).
//!
//! Floating-point addition is not associative, so `np.sum` and a left-to-right loop can differ in
//! the last bit. That is harmless for a metric's value, but FD-Shifts ranks rows by their scores: two
//! rows that numpy gives exactly equal scores form a tie, and AURC treats a tie group differently
//! from two neighbours. `mcd_mi` on saturated or uniform rows (PE(mean) − EE, nearly equal numbers)
//! and the mean of identical MC passes are such cases. So every sum a CSF takes goes through
//! [`sum`], and the tie-order dependent metrics sort with [`argsort`], numpy's own introsort.
//! Written here rather than taken from a crate: no crate reproduces numpy's operation order.

/// `np.add.reduce` over a contiguous 1-D slice: numpy's pairwise summation (blocks of 128 summed
/// with eight accumulators, halves summed recursively), in chunks of numpy's 8192-element buffer.
pub fn sum(x: &[f64]) -> f64 {
    x.chunks(8192).fold(0.0, |acc, chunk| acc + pairwise(chunk))
}

/// `pairwise_sum_DOUBLE` of `numpy/core/src/umath/loops_utils.h.src`.
fn pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let mut i = 8;
        while i < n - n % 8 {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// `np.mean` of a contiguous slice: [`sum`] divided by the length.
pub fn mean(x: &[f64]) -> f64 {
    sum(x) / x.len() as f64
}

/// `np.sum(a, axis=k)` over an axis that is **not** the innermost one: numpy adds the slices one
/// after the other (`out = a[0]; out += a[1]; …`), a plain left-to-right sum.
pub fn sum_outer<I: IntoIterator<Item = f64>>(values: I) -> f64 {
    let mut it = values.into_iter();
    let first = it.next().unwrap_or(0.0);
    it.fold(first, |acc, v| acc + v)
}

/// `np.exp` for float64 as numpy 1.24 computes it on an AVX-512 (Skylake-X or later) CPU: Intel
/// SVML's `__svml_exp8` (shipped inside numpy), whose results differ from the C library's `exp` in
/// the last bit for about one input in four. FD-Shifts' softmax, Platt scaling and log-sum-exp
/// run through it, and a last-bit difference decides whether two rows tie. Ported here from the
/// SVML source in numpy's tree: x = (N + j/16)·ln 2 + r with N truncated toward zero to four
/// fraction bits, 2^(j/16) from a 16-entry table, exp(r) − 1 by a degree-6 polynomial, every step
/// a fused multiply-add as the vector code does it. Inputs beyond ±707.70 (SVML's scalar rare
/// path) and NaN use the C library's `exp`.
pub fn exp(x: f64) -> f64 {
    const LOG2E: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
    const SHIFTER: f64 = f64::from_bits(0x42f8_0000_0000_3ff0); // 1.5·2^48 + 1023
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fefa_39ef);
    const LN2_LO: f64 = f64::from_bits(0x3c7a_bc9e_3b39_803f);
    const C6: f64 = f64::from_bits(0x3f57_2eb5_ef0d_213d);
    const C5: f64 = f64::from_bits(0x3f81_1066_03d9_7c00);
    const C4: f64 = f64::from_bits(0x3fa5_5556_4bb4_f5f0);
    const C3: f64 = f64::from_bits(0x3fc5_5555_54b5_08a2);
    const C2: f64 = f64::from_bits(0x3fe0_0000_0000_2622);
    const THRESHOLD: f64 = f64::from_bits(0x4086_1da0_4cba_fe44);
    const TABLE: [u64; 16] = [
        0x3ff0000000000000,
        0x3ff0b5586cf9890f,
        0x3ff172b83c7d517b,
        0x3ff2387a6e756238,
        0x3ff306fe0a31b715,
        0x3ff3dea64c123422,
        0x3ff4bfdad5362a27,
        0x3ff5ab07dd485429,
        0x3ff6a09e667f3bcd,
        0x3ff7a11473eb0187,
        0x3ff8ace5422aa0db,
        0x3ff9c49182a3f090,
        0x3ffae89f995ad3ad,
        0x3ffc199bdd85529c,
        0x3ffd5818dcfba487,
        0x3ffea4afa2a490da,
    ];
    if x.is_nan() || x.abs() >= THRESHOLD {
        return x.exp();
    }
    // t = x·log2(e) + shifter, rounded toward zero (the vector code's {rz-sae} FMA).
    let nearest = x.mul_add(LOG2E, SHIFTER);
    let residual = x.mul_add(LOG2E, SHIFTER - nearest); // exact − nearest, sign exact
    let t = if residual < 0.0 {
        f64::from_bits(nearest.to_bits() - 1)
    } else {
        nearest
    };
    let n = t - SHIFTER;
    let th = f64::from_bits(TABLE[(t.to_bits() & 15) as usize]);
    let r = (-n).mul_add(LN2_HI, x);
    let r = f64::from_bits((-n).mul_add(LN2_LO, r).to_bits() & 0xbfff_ffff_ffff_ffff);
    let r2 = r * r;
    let p56 = r.mul_add(C6, C5);
    let p34 = r.mul_add(C4, C3);
    let r3 = r2 * r;
    let p12 = r2.mul_add(C2, r);
    let p36 = r2.mul_add(p56, p34);
    let p16 = r3.mul_add(p36, p12);
    let y = th.mul_add(p16, th);
    // vscalefpd: y·2^floor(n); the result is a normal number below the threshold.
    let k = n.floor() as i64;
    y * f64::from_bits(((1023 + k) as u64) << 52)
}

/// `np.log` for float64 as numpy 1.24 computes it on an AVX-512 CPU: Intel SVML's `__svml_log8`
/// (see [`exp`] for why). x = 2^e·m, m in [1, 2); with ρ = 1/m rounded to five fraction bits,
/// ln x = e·ln 2 − ln ρ (16-entry table) + ln(1 + (ρ·m − 1)) (degree-8 polynomial). The vector code
/// takes ρ from the 14-bit hardware reciprocal, reproduced by its measured rounding thresholds. Zero,
/// negative, infinite and NaN inputs use the C library's `ln`.
pub fn ln(x: f64) -> f64 {
    const TABLE: [u64; 16] = [
        0x0000000000000000,
        0xbfaf0a30c01162a6,
        0xbfbe27076e2af2e6,
        0xbfc5ff3070a793d4,
        0xbfcc8ff7c79a9a22,
        0xbfd1675cababa60e,
        0xbfd4618bc21c5ec2,
        0xbfd739d7f6bbd007,
        0x3fd269621134db92,
        0x3fcf991c6cb3b379,
        0x3fca93ed3c8ad9e3,
        0x3fc5bf406b543db2,
        0x3fc1178e8227e47c,
        0x3fb9335e5d594989,
        0x3fb08598b59e3a07,
        0x3fa0415d89e74444,
    ];
    let c = |bits: u64| f64::from_bits(bits);
    let (c256, c320, c384, c448) = (
        c(0x3fbc81cd309d7c70),
        c(0xbfc007357e93af62),
        c(0x3fc249229cee81ef),
        c(0xbfc55553fb28db06),
    );
    let (c512, c576, c640, c704) = (
        c(0x3fc9999999cc9f5c),
        c(0xbfd00000000c05bd),
        c(0x3fd5555555555466),
        c(0xbfdfffffffffffc6),
    );
    const LN2: f64 = f64::from_bits(0x3fe6_2e42_fefa_39ef);
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return x.ln();
    }
    // vgetexppd / vgetmantpd, subnormals normalised first.
    let (x, bias) = if x < f64::MIN_POSITIVE {
        (x * f64::from_bits(0x4330_0000_0000_0000), 52) // · 2^52
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut e = (((bits >> 52) & 0x7ff) as i64 - 1023 - bias) as f64;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // vrcp14pd, then vrndscalepd $0x58 (nearest, five fraction bits): ρ = k/32. The 14-bit hardware
    // reciprocal decides on which side of each midpoint (2k+1)/64 a mantissa falls; these are the
    // smallest mantissas it rounds down to k/32, k = 16..=31 (measured with the instruction itself:
    // they depend on the top 16 mantissa bits only).
    const DOWN_FROM: [u64; 16] = [
        0x3fff080000000000,
        0x3ffd41c000000000,
        0x3ffbad0000000000,
        0x3ffa41a000000000,
        0x3ff8f9c000000000,
        0x3ff7d07000000000,
        0x3ff6c15000000000,
        0x3ff5c99000000000,
        0x3ff4e5f000000000,
        0x3ff4143000000000,
        0x3ff3523000000000,
        0x3ff29e6000000000,
        0x3ff1f70000000000,
        0x3ff15b4000000000,
        0x3ff0c97000000000,
        0x3ff040f000000000,
    ];
    let k = DOWN_FROM
        .iter()
        .position(|&t| m >= f64::from_bits(t))
        .map_or(32, |i| i + 16);
    let rcp = k as f64 / 32.0;
    let r = rcp.mul_add(m, -1.0);
    if rcp < 0.75 {
        e += 1.0;
    }
    let index = ((rcp.to_bits() >> 48) & 15) as usize;
    let q1 = c384.mul_add(r, c448);
    let q2 = c256.mul_add(r, c320);
    let q3 = c640.mul_add(r, c704);
    let r2 = r * r;
    let q4 = c512.mul_add(r, c576);
    let r4 = r2 * r2;
    let p = r2.mul_add(q2, q1);
    let q = r2.mul_add(q4, q3);
    let p = r4.mul_add(p, q);
    let p = r2.mul_add(p, r);
    let t = f64::from_bits(TABLE[index]) + p;
    LN2.mul_add(e, t)
}

/// `x.astype(np.float16)` (then back to float64): rounded to the nearest half-precision value,
/// ties to even, in one step. (The `half` crate's conversion rounds twice for a few inputs in 10⁴.)
pub fn to_f16(x: f64) -> f64 {
    const MAX_FINITE: f64 = 65504.0;
    if !x.is_finite() {
        return x;
    }
    let a = x.abs();
    // Past the midpoint between the largest half (65504) and 65536, numpy rounds to infinity.
    if a >= MAX_FINITE + 16.0 {
        return f64::INFINITY.copysign(x);
    }
    let min_normal = f64::from_bits(0x3f10_0000_0000_0000); // 2^-14
    let quantum = if a < min_normal {
        f64::from_bits(0x3e70_0000_0000_0000) // 2^-24, the subnormal spacing
    } else {
        let exponent = ((a.to_bits() >> 52) & 0x7ff) as i64 - 1023;
        f64::from_bits(((exponent - 10 + 1023) as u64) << 52)
    };
    ((a / quantum).round_ties_even() * quantum).copysign(x)
}

/// numpy's `<` for floats in sorts: NaN sorts after everything.
fn less<T: PartialOrd + Copy>(a: T, b: T) -> bool {
    #[allow(clippy::eq_op)]
    let b_nan = b != b;
    #[allow(clippy::eq_op)]
    let a_num = a == a;
    a < b || (b_nan && a_num)
}

/// `np.argsort(v)` (default `kind="quicksort"`): numpy 1.24's introsort `aquicksort_` — median-of-3
/// quicksort, insertion sort below 16 elements, heapsort past the depth limit. Not stable: the order
/// it gives tied values is the one FD-Shifts' tie-dependent metrics (legacy AURC, b-aurc, the
/// selective-risk threshold) were computed with.
pub fn argsort<T: PartialOrd + Copy>(v: &[T]) -> Vec<usize> {
    // numpy sorts an index array, comparing through it; the same swaps on (value, index) pairs give
    // the same permutation with the values at hand (a third of the time on a million rows).
    let mut t: Vec<(T, usize)> = v.iter().copied().zip(0..).collect();
    let num = t.len();
    if num < 2 {
        return t.into_iter().map(|(_, i)| i).collect();
    }
    const SMALL_QUICKSORT: usize = 15;
    let mut stack: Vec<(usize, usize, i32)> = Vec::new();
    let (mut pl, mut pr) = (0usize, num - 1);
    let mut cdepth = 2 * (usize::BITS - 1 - num.leading_zeros()) as i32;
    loop {
        if cdepth < 0 {
            aheapsort(&mut t[pl..=pr]);
        } else {
            while pr - pl > SMALL_QUICKSORT {
                let pm = pl + ((pr - pl) >> 1);
                if less(t[pm].0, t[pl].0) {
                    t.swap(pm, pl);
                }
                if less(t[pr].0, t[pm].0) {
                    t.swap(pr, pm);
                }
                if less(t[pm].0, t[pl].0) {
                    t.swap(pm, pl);
                }
                let vp = t[pm].0;
                let mut pi = pl;
                let mut pj = pr - 1;
                t.swap(pm, pj);
                loop {
                    pi += 1;
                    while less(t[pi].0, vp) {
                        pi += 1;
                    }
                    pj -= 1;
                    while less(vp, t[pj].0) {
                        pj -= 1;
                    }
                    if pi >= pj {
                        break;
                    }
                    t.swap(pi, pj);
                }
                let pk = pr - 1;
                t.swap(pi, pk);
                // Push the larger partition, continue with the smaller.
                cdepth -= 1;
                if pi - pl < pr - pi {
                    stack.push((pi + 1, pr, cdepth));
                    pr = pi - 1;
                } else {
                    stack.push((pl, pi - 1, cdepth));
                    pl = pi + 1;
                }
            }
            // Insertion sort.
            for pi in pl + 1..=pr {
                let item = t[pi];
                let mut pj = pi;
                while pj > pl && less(item.0, t[pj - 1].0) {
                    t[pj] = t[pj - 1];
                    pj -= 1;
                }
                t[pj] = item;
            }
        }
        match stack.pop() {
            None => break,
            Some((l, r, d)) => {
                pl = l;
                pr = r;
                cdepth = d;
            }
        }
    }
    t.into_iter().map(|(_, i)| i).collect()
}

/// numpy's `aheapsort_` on a slice of (value, index) pairs.
fn aheapsort<T: PartialOrd + Copy>(a: &mut [(T, usize)]) {
    let n = a.len();
    // 1-based heap indexing, as numpy's `a = tosort - 1`.
    let sift = |a: &mut [(T, usize)], mut i: usize, n: usize, tmp: (T, usize)| {
        let mut j = i << 1;
        while j <= n {
            if j < n && less(a[j - 1].0, a[j].0) {
                j += 1;
            }
            if less(tmp.0, a[j - 1].0) {
                a[i - 1] = a[j - 1];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i - 1] = tmp;
    };
    let mut l = n >> 1;
    while l > 0 {
        let tmp = a[l - 1];
        sift(a, l, n, tmp);
        l -= 1;
    }
    let mut n = n;
    while n > 1 {
        let tmp = a[n - 1];
        a[n - 1] = a[0];
        n -= 1;
        sift(a, 1, n, tmp);
    }
}

/// `np.quantile(x, q)` with the default `linear` method; `None` for an empty slice. NaN-free input.
pub fn quantile(x: &[f64], q: f64) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    let prev = (virtual_index.floor() as usize).min(n - 1);
    let next = (prev + 1).min(n - 1);
    let gamma = virtual_index - prev as f64;
    let (a, b) = (sorted[prev], sorted[next]);
    // `_lerp`: from the nearer end, so that gamma = 1 gives b exactly.
    let diff = b - a;
    Some(if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_differs_from_a_loop_where_numpy_does() {
        // Ten copies of 0.1: numpy's eight accumulators give a different last bit than a loop.
        let x = [0.1; 10];
        let naive: f64 = x.iter().sum();
        let r = 0.1 + 0.1;
        let eight = (r + r) + (r + r);
        assert_eq!(sum(&x), eight + 0.1 + 0.1);
        assert_ne!(sum(&x), naive, "the two orders differ for this input");
        assert_eq!(sum(&[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(mean(&[1.0, 3.0]), 2.0);
    }

    #[test]
    fn argsort_orders_values_and_puts_nan_last() {
        let v = [3.0, f64::NAN, -1.0, 2.0, 2.0, 0.5];
        let idx = argsort(&v);
        assert_eq!(&idx[..5], &[2, 5, 3, 4, 0][..]);
        assert_eq!(idx[5], 1);
        // Large inputs go through the quicksort partitions (and the heapsort fallback is valid too).
        let big: Vec<f64> = (0..1000).map(|i| f64::from((i * 7919) % 100)).collect();
        let idx = argsort(&big);
        assert!(idx.windows(2).all(|w| big[w[0]] <= big[w[1]]));
        let mut seen = idx.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let mut heap: Vec<(f64, usize)> = big.iter().copied().zip(0..).collect();
        aheapsort(&mut heap);
        assert!(heap.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn quantile_interpolates_linearly() {
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0], 1.0), Some(2.0));
        assert_eq!(quantile(&[5.0], 0.01), Some(5.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    /// numpy 1.24's own results (`tests/fixtures/numpy/make_reference.py`).
    fn reference() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../tests/fixtures/numpy/reference.json")).expect("valid JSON")
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN))
            .collect()
    }

    #[test]
    fn argsort_is_numpys_order_of_ties() {
        let r = reference();
        for case in r["argsort"].as_array().unwrap() {
            let v = floats(&case["values"]);
            let expected: Vec<usize> = case["order"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(argsort(&v), expected, "n = {}", v.len());
        }
    }

    #[test]
    fn sums_means_and_quantiles_are_numpys_bit_for_bit() {
        let r = reference();
        for case in r["sum"].as_array().unwrap() {
            let v = floats(&case["values"]);
            assert_eq!(
                sum(&v).to_bits(),
                case["sum"].as_f64().unwrap().to_bits(),
                "n = {}",
                v.len()
            );
        }
        let cube = &r["cube"];
        let shape: Vec<usize> = cube["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let x = floats(&cube["values"]);
        let mc = crate::analysis::csf::McSamples::new(&x, shape[1], shape[2]);
        assert_eq!(mc.mean(), floats(&cube["mean_axis2"]));
        assert_eq!(mc.std(), floats(&cube["std_axis2"]));
        let (n, c, m) = (shape[0], shape[1], shape[2]);
        let mut sum_axis1 = Vec::new();
        for i in 0..n {
            for s in 0..m {
                sum_axis1.push(sum_outer((0..c).map(|k| mc.class_samples(i, k)[s])));
            }
        }
        assert_eq!(sum_axis1, floats(&cube["sum_axis1"]));
        for case in r["quantile"].as_array().unwrap() {
            let v = floats(&case["values"]);
            let q = case["q"].as_f64().unwrap();
            assert_eq!(quantile(&v, q), case["quantile"].as_f64(), "n = {}, q = {q}", v.len());
        }
    }
}
