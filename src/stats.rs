//! The statistics the verdicts share: the normal and Student's t
//! distributions, the regularized incomplete beta function (and with it the
//! binomial's tails), and the block length that makes intervals of a run
//! independent enough to resample or batch. `compare`, `ab` and the budget
//! bounds all use these; nothing here knows what a run is.
//!
//! The distributions are statrs's (a maintained, tested library); this file
//! keeps the names the verdicts use, and the limits they rely on.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Above this many degrees of freedom Student's t is the normal.
const NORMAL_DF: f64 = 1e5;

/// P(Z > x) for a standard normal Z.
pub fn normal_tail(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(x / std::f64::consts::SQRT_2)
}

/// P(T > x) for Student's t with `df` degrees of freedom (the normal's
/// tail above 1e5 and at infinity). No degrees of freedom: no evidence,
/// P = 1/2 either way.
pub fn t_tail(x: f64, df: f64) -> f64 {
    if df > NORMAL_DF {
        return normal_tail(x);
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.sf(x),
        Err(_) => 0.5,
    }
}

/// The regularized incomplete beta function I_x(a, b), with its limits
/// where a parameter is 0: I_x(0, b) = 1 and I_x(a, 0) = 0 for 0 < x < 1
/// (the binomial tails meet them when every or no request exceeds).
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else if x >= 1.0 {
        1.0
    } else if a <= 0.0 {
        1.0
    } else if b <= 0.0 {
        0.0
    } else {
        statrs::function::beta::beta_reg(a, b, x)
    }
}

/// The quantile of p for Student's t (the normal's above 1e5 degrees of
/// freedom). No degrees of freedom gives an infinite quantile: an interval
/// without bound, so nothing is judged on it.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if df > NORMAL_DF {
        return Normal::standard().inverse_cdf(p);
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) if p > 0.5 => f64::INFINITY,
        Err(_) if p < 0.5 => f64::NEG_INFINITY,
        Err(_) => 0.0,
    }
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

    /// Reference values from SciPy 1.x (scipy.stats.t, scipy.stats.norm,
    /// scipy.special.betainc), computed independently of statrs.
    #[test]
    fn distributions_agree_with_scipy() {
        let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs().max(1e-300);
        for (p, df, want) in [
            (0.975, 4.0, 2.776_445_105_197_793_4),
            (0.995, 10.0, 3.169_272_672_616_95),
            (0.995, 2.5, 7.163_728_138_948_783),
            (0.9995, 1.0, 636.619_248_768_789_7),
            (0.995, 1e7, 2.575_829_303_548_900_4),
        ] {
            let got = t_quantile(p, df);
            assert!(
                close(got, want, 1e-6),
                "t_quantile({p}, {df}) = {got}, SciPy {want}"
            );
        }
        for (x, df, want) in [
            (2.0, 3.0, 0.069_662_984_279_421_52),
            (-1.5, 7.5, 0.912_759_714_706_768),
            (4.0, 200.0, 4.456_547_609_296_721e-5),
        ] {
            let got = t_tail(x, df);
            assert!(
                close(got, want, 1e-6),
                "t_tail({x}, {df}) = {got}, SciPy {want}"
            );
        }
        for (x, want) in [
            (1.96, 0.024_997_895_148_220_435),
            (-0.5, 0.691_462_461_274_013_1),
            (5.0, 2.866_515_718_791_933e-7),
        ] {
            let got = normal_tail(x);
            assert!(
                close(got, want, 1e-9),
                "normal_tail({x}) = {got}, SciPy {want}"
            );
        }
        for (a, b, x, want) in [
            (2.0, 3.0, 0.4, 0.524_8),
            (50.0, 1.0, 0.99, 0.605_006_067_137_536_4),
            (0.5, 200.0, 0.001, 0.472_755_892_974_764_4),
        ] {
            let got = incomplete_beta(a, b, x);
            assert!(
                close(got, want, 1e-9),
                "I_{x}({a}, {b}) = {got}, SciPy {want}"
            );
        }
        // The limits the binomial tails meet.
        assert_eq!(incomplete_beta(0.0, 5.0, 0.3), 1.0);
        assert_eq!(incomplete_beta(5.0, 0.0, 0.3), 0.0);
        assert_eq!(t_quantile(0.99, 0.0), f64::INFINITY);
    }

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
