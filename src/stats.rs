//! The statistics the verdicts share: the normal and Student's t
//! distributions, the regularized incomplete beta function (and with it the
//! binomial's tails), and the block length that makes intervals of a run
//! independent enough to resample or batch. `compare`, `ab` and the budget
//! bounds all use these; nothing here knows what a run is.

/// P(Z > x) for a standard normal Z (Abramowitz and Stegun 7.1.26 for
/// erfc, absolute error below 1.5e-7).
pub fn normal_tail(x: f64) -> f64 {
    let t = x.abs() / std::f64::consts::SQRT_2;
    let k = 1.0 / (1.0 + 0.327_591_1 * t);
    let poly = k
        * (0.254_829_592
            + k * (-0.284_496_736
                + k * (1.421_413_741 + k * (-1.453_152_027 + k * 1.061_405_429))));
    let erfc = poly * (-t * t).exp();
    if x >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// P(T > x) for Student's t with `df` degrees of freedom:
/// ½·I_{df/(df+x²)}(df/2, ½), the regularized incomplete beta function.
pub fn t_tail(x: f64, df: f64) -> f64 {
    if df > 1e5 {
        return normal_tail(x);
    }
    let half = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + x * x));
    if x >= 0.0 {
        half
    } else {
        1.0 - half
    }
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction (Lentz's method), on the side where it converges fast.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for k in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + k * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + k / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-12 {
            break;
        }
    }
    front * f / a
}

/// The quantile of p for Student's t, by bisection on [`t_tail`].
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-60.0, 60.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if 1.0 - t_tail(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// Block length for a series of intervals (their log medians, say): at
/// least ⌈n^⅓⌉, and three times the integrated autocorrelation time of the series, so that
/// a slow drift is resampled whole rather than cut into independent bits.
pub fn block_length(x: &[f64]) -> usize {
    let n = x.len();
    if n < 4 {
        return n.max(1);
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let mut tau = 1.0;
    // A constant series has no correlation to measure; rounding leaves it a
    // variance of a few ulps, which must not read as perfect correlation.
    if var > 1e-12 * (mean * mean).max(1e-12) {
        let cut = 2.0 / (n as f64).sqrt();
        for lag in 1..n / 3 {
            let r = (0..n - lag)
                .map(|i| (x[i] - mean) * (x[i + lag] - mean))
                .sum::<f64>()
                / (n as f64 * var);
            if r < cut {
                break;
            }
            tau += 2.0 * r;
        }
    }
    let cube = (n as f64).cbrt().ceil();
    (cube.max(3.0 * tau).ceil() as usize).clamp(1, n / 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_and_quantile_agree_with_tables() {
        assert!((normal_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((t_quantile(0.995, 1e6) - 2.5758).abs() < 1e-3);
        // Student's t tables: t(0.975; 4) = 2.776, t(0.995; 10) = 3.169.
        assert!((t_quantile(0.975, 4.0) - 2.776).abs() < 2e-3);
        assert!((t_quantile(0.995, 10.0) - 3.169).abs() < 2e-3);
    }
}
