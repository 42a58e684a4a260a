//! Confidence bounds for the figures budgets are set on: a latency quantile
//! of an operation, or its error rate, over the measured intervals of a run.
//!
//! A quantile's interval is distribution-free: the order statistics whose
//! ranks a binomial puts around q (the Clopper-Pearson idea), read from the
//! run's own HDR values. Requests close in time are not independent (a
//! checkpoint or a lock queue slows a whole stretch), so the sample is worth
//! fewer requests than it holds: the intervals are grouped into batches long
//! enough to be nearly independent ([`crate::stats::block_length`]), the
//! variance of the exceedance count across batches is set against the
//! binomial's (the design effect), and the ranks are drawn for the effective
//! sample `n / design effect`. The variance is itself estimated from a few
//! batches, so the design effect is widened by (t₍K−1₎ / z)², Student's
//! price for K batches. The unit tests prove the wrong-verdict rate on
//! autocorrelated synthetic latencies, and that dropping the correction
//! breaks it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::stats::{block_length, incomplete_beta, normal_tail, t_quantile};

/// One measured interval of one operation: its successful responses as
/// (value in ns, count) pairs in ascending order, and its requests and
/// failures (for error-rate budgets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    pub values: Vec<(u64, u64)>,
    pub requests: u64,
    pub errors: u64,
}

impl Block {
    /// An interval from its response histogram (None: no success) and failures.
    pub fn of<T: hdrhistogram::Counter>(h: Option<&Histogram<T>>, errors: u64) -> Block {
        let values: Vec<(u64, u64)> = h.map_or_else(Vec::new, |h| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value().as_u64()))
                .collect()
        });
        let ok: u64 = values.iter().map(|(_, c)| c).sum();
        Block {
            values,
            requests: ok + errors,
            errors,
        }
    }

    fn ok(&self) -> u64 {
        self.values.iter().map(|(_, c)| c).sum()
    }

    fn above(&self, x: u64) -> u64 {
        self.values
            .iter()
            .filter(|(v, _)| *v > x)
            .map(|(_, c)| c)
            .sum()
    }
}

/// A figure's estimate and its two-sided interval at `confidence`, in the
/// figure's unit (ms, or a fraction for an error rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    pub estimate: f64,
    /// None: the sample cannot bound it from below (0 is possible).
    pub lower: Option<f64>,
    /// None: the sample cannot bound it from above (too few requests beyond it).
    pub upper: Option<f64>,
    pub confidence: f64,
    pub samples: u64,
    /// The samples divided by the design effect: what they are worth.
    pub effective_samples: f64,
    pub design_effect: f64,
}

/// The values of all blocks, merged and ranked: (value, cumulative count).
struct Ranked(Vec<(u64, u64)>);

impl Ranked {
    fn of(blocks: &[Block]) -> Ranked {
        let mut all: BTreeMap<u64, u64> = BTreeMap::new();
        for b in blocks {
            for (v, c) in &b.values {
                *all.entry(*v).or_default() += c;
            }
        }
        let mut cum = 0;
        Ranked(
            all.into_iter()
                .map(|(v, c)| {
                    cum += c;
                    (v, cum)
                })
                .collect(),
        )
    }

    fn n(&self) -> u64 {
        self.0.last().map_or(0, |(_, c)| *c)
    }

    /// The value of rank r (1-based, clamped).
    fn at(&self, r: u64) -> u64 {
        let r = r.clamp(1, self.n());
        let i = self.0.partition_point(|(_, c)| *c < r);
        self.0[i].0
    }

    /// The value at fraction f of the sample, as HdrHistogram reads a quantile.
    fn at_fraction(&self, f: f64) -> u64 {
        self.at((f * self.n() as f64).ceil() as u64)
    }

    /// The fraction of the sample at or below x.
    fn fraction_at_or_below(&self, x: u64) -> f64 {
        let i = self.0.partition_point(|(v, _)| *v <= x);
        if i == 0 {
            0.0
        } else {
            self.0[i - 1].1 as f64 / self.n() as f64
        }
    }
}

/// P(Bin(m, p) ≤ k) for a real m (an effective sample size): the
/// regularized incomplete beta I₁₋ₚ(m − k, k + 1), or the normal with a
/// continuity correction once the variance is large enough for it to be
/// exact to a few parts in a thousand.
fn binomial_cdf(m: f64, p: f64, k: f64) -> f64 {
    if k < 0.0 {
        return 0.0;
    }
    if k >= m {
        return 1.0;
    }
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let var = m * p * (1.0 - p);
    if var > 400.0 {
        return 1.0 - normal_tail((k + 0.5 - m * p) / var.sqrt());
    }
    incomplete_beta(m - k, k + 1.0, 1.0 - p)
}

/// Largest integer k in [lo, hi] with `ok(k)`, for `ok` true up to a point.
fn last_true(lo: u64, hi: u64, ok: impl Fn(u64) -> bool) -> Option<u64> {
    if !ok(lo) {
        return None;
    }
    let (mut a, mut b) = (lo, hi);
    while a < b {
        let mid = a + (b - a).div_ceil(2);
        if ok(mid) {
            a = mid;
        } else {
            b = mid - 1;
        }
    }
    Some(a)
}

/// The fractions of an effective sample of m whose order statistics bound
/// the q-quantile, each side missing with probability at most `tail`:
/// (lower, upper), None where the sample is too small to bound that side.
fn order_fractions(m: f64, q: f64, tail: f64) -> (Option<f64>, Option<f64>) {
    let p = 1.0 - q;
    let top = m.floor().max(0.0) as u64;
    // Upper: the (m − e)th order statistic with e the most exceedances E ~
    // Bin(m, 1 − q) can show below, P(E ≤ e) ≤ tail.
    let upper = last_true(0, top, |e| binomial_cdf(m, p, e as f64) <= tail)
        .map(|e| ((m - e as f64) / m).clamp(0.0, 1.0));
    // Lower: the l-th with l = m − f + 1, f the fewest exceedances with
    // P(E ≥ f) ≤ tail, i.e. P(E ≤ f − 1) ≥ 1 − tail.
    let lower = last_true(0, top + 1, |f| {
        binomial_cdf(m, p, f as f64 - 1.0) < 1.0 - tail
    })
    .map(|last_short| last_short + 1)
    .and_then(|f| {
        let l = m - f as f64 + 1.0;
        (l >= 1.0).then(|| (l / m).clamp(0.0, 1.0))
    });
    (lower, upper)
}

/// The design effect of counts `(n_i, e_i)` per interval (e of n showing an
/// event) and the batches it was measured on: the variance of the event
/// count across batches of consecutive intervals against the binomial's,
/// widened by Student's price for the few batches. The batches are as long
/// as the event fractions' own autocorrelation asks (the series whose
/// variance this is); following the medians' drift too made batches so few
/// at 1M organizations that Student's price alone cut samples fivefold.
/// None: fewer than two batches, so the dependence cannot be measured.
fn design_effect(pairs: &[(u64, u64)], tail: f64) -> Option<(f64, usize)> {
    let k = pairs.len();
    let props: Vec<f64> = pairs
        .iter()
        .map(|(n, e)| if *n == 0 { 0.0 } else { *e as f64 / *n as f64 })
        .collect();
    let b = block_length(&props).max(1);
    let batches = k / b;
    if batches < 2 {
        return None;
    }
    let mut sums = vec![(0u64, 0u64); batches];
    for (i, (n, e)) in pairs.iter().enumerate() {
        let j = (i / b).min(batches - 1);
        sums[j].0 += n;
        sums[j].1 += e;
    }
    let n: u64 = sums.iter().map(|s| s.0).sum();
    let e: u64 = sums.iter().map(|s| s.1).sum();
    if n == 0 {
        return None;
    }
    let p = e as f64 / n as f64;
    let binomial = p * (1.0 - p) / n as f64;
    let kb = batches as f64;
    let batch = kb / (kb - 1.0)
        * sums
            .iter()
            .map(|(nj, ej)| (*ej as f64 - p * *nj as f64).powi(2))
            .sum::<f64>()
        / (n as f64).powi(2);
    let raw = if binomial > 0.0 {
        batch / binomial
    } else {
        1.0
    };
    let t = t_quantile(1.0 - tail, kb - 1.0);
    let z = t_quantile(1.0 - tail, 1e7);
    Some(((raw * (t / z).powi(2)).max(1.0), batches))
}

/// Why a figure has no bound.
#[derive(Debug, Clone, PartialEq)]
pub enum NoBound {
    /// Nothing was measured.
    Empty,
    /// Too few intervals to measure their dependence.
    FewIntervals(usize),
}

/// The q-quantile (0 < q < 1) of the blocks' latencies in ms, with its
/// interval at `confidence` on the effective sample.
///
/// `at_ms` is the budget the figure is held against. The design effect is
/// measured on the exceedances of the estimate: near the quantile, where the
/// verdict is close, that is the dependence that moves it. Where no request
/// at all exceeds the budget, the budget is far above the quantile and that
/// dependence no longer decides it: on a service of nearly fixed latency the
/// requests a few microseconds over the median swing together with every
/// drift, and made 500 requests at 21 ms worth one against a 30 ms p50. The
/// design effect is then the smaller of the estimate's and that of the
/// budget's (no) exceedances, which is independence with Student's price.
/// Measuring it at the budget in every case was tried, and on the drifting
/// model of the unit tests it called a p99 10% over its budget met in 5 of
/// 500 runs (the estimate's: 1 of 500), so it is kept to that case.
pub fn quantile(
    blocks: &[Block],
    q: f64,
    confidence: f64,
    at_ms: Option<f64>,
) -> Result<Bound, NoBound> {
    let ranked = Ranked::of(blocks);
    let n = ranked.n();
    if n == 0 {
        return Err(NoBound::Empty);
    }
    let tail = (1.0 - confidence) / 2.0;
    let estimate = ranked.at_fraction(q);
    let with_values: Vec<&Block> = blocks.iter().filter(|b| b.ok() > 0).collect();
    let exceeding =
        |x: u64| -> Vec<(u64, u64)> { with_values.iter().map(|b| (b.ok(), b.above(x))).collect() };
    let (at_estimate, _) = design_effect(&exceeding(estimate), tail)
        .ok_or(NoBound::FewIntervals(with_values.len()))?;
    let deff = match at_ms {
        Some(ms) => {
            let pairs = exceeding((ms * 1e6) as u64);
            if pairs.iter().all(|(_, e)| *e == 0) {
                let (at_budget, _) =
                    design_effect(&pairs, tail).ok_or(NoBound::FewIntervals(with_values.len()))?;
                at_budget.min(at_estimate)
            } else {
                at_estimate
            }
        }
        None => at_estimate,
    };
    let m = n as f64 / deff;
    let (lo, hi) = order_fractions(m, q, tail);
    let ms = |v: u64| v as f64 / 1e6;
    Ok(Bound {
        estimate: ms(estimate),
        lower: lo.map(|f| ms(ranked.at_fraction(f))),
        upper: hi.map(|f| ms(ranked.at_fraction(f))),
        confidence,
        samples: n,
        effective_samples: m,
        design_effect: deff,
    })
}

/// The error rate of the blocks (failures over requests) with its
/// Clopper-Pearson interval at `confidence` on the effective sample.
pub fn error_rate(blocks: &[Block], confidence: f64) -> Result<Bound, NoBound> {
    let n: u64 = blocks.iter().map(|b| b.requests).sum();
    if n == 0 {
        return Err(NoBound::Empty);
    }
    let e: u64 = blocks.iter().map(|b| b.errors).sum();
    let tail = (1.0 - confidence) / 2.0;
    let with_requests: Vec<&Block> = blocks.iter().filter(|b| b.requests > 0).collect();
    let pairs: Vec<(u64, u64)> = with_requests
        .iter()
        .map(|b| (b.requests, b.errors))
        .collect();
    let (deff, _) =
        design_effect(&pairs, tail).ok_or(NoBound::FewIntervals(with_requests.len()))?;
    let m = n as f64 / deff;
    let rate = e as f64 / n as f64;
    let k = rate * m;
    // Bisect p for P(Bin(m, p) ≤ k) = tail (upper) and P(Bin(m, p) ≥ k) = tail (lower).
    let solve = |f: &dyn Fn(f64) -> f64| {
        let (mut a, mut b) = (0.0f64, 1.0f64);
        for _ in 0..80 {
            let mid = (a + b) / 2.0;
            if f(mid) > tail {
                a = mid;
            } else {
                b = mid;
            }
        }
        (a + b) / 2.0
    };
    let upper = if k >= m {
        1.0
    } else {
        solve(&|p| binomial_cdf(m, p, k))
    };
    let lower = if e == 0 {
        0.0
    } else {
        // P(Bin ≥ k) grows with p: solve on its complement.
        1.0 - solve(&|pp| binomial_cdf(m, pp, m - k))
    };
    Ok(Bound {
        estimate: rate,
        lower: Some(lower),
        upper: Some(upper),
        confidence,
        samples: n,
        effective_samples: m,
        design_effect: deff,
    })
}

/// Samples (as measured, dependence included) a q-quantile budget of
/// `limit_ms` would need to be decided, were the latencies distributed as
/// these are: None when no length would do (the figure sits on the budget).
pub fn samples_to_decide(blocks: &[Block], q: f64, limit_ms: f64, b: &Bound) -> Option<f64> {
    let ranked = Ranked::of(blocks);
    let f = ranked.fraction_at_or_below((limit_ms * 1e6) as u64);
    // Met once the upper rank's fraction falls to f; missed once the lower
    // rank's rises above it. Either needs the binomial's spread to fit in
    // |f − q|, which takes m ≈ (z / (f − q))² · q(1 − q) effective samples.
    let gap = (f - q).abs();
    if gap < 1e-12 || (f >= 1.0 && q >= 1.0) {
        return None;
    }
    let tail = (1.0 - b.confidence) / 2.0;
    let z = t_quantile(1.0 - tail, 1e7);
    let mut m = ((z / gap).powi(2) * q * (1.0 - q)).max(b.effective_samples);
    // The normal guess is short for far tails: grow until the exact ranks decide.
    for _ in 0..60 {
        let (lo, hi) = order_fractions(m, q, tail);
        let decided = if f > q {
            hi.is_some_and(|h| h <= f)
        } else {
            lo.is_some_and(|l| l > f)
        };
        if decided {
            return Some(m * b.design_effect);
        }
        m *= 1.25;
    }
    None
}

/// Requests an error-rate budget would need to be decided at this rate.
pub fn requests_to_decide(limit: f64, b: &Bound) -> Option<f64> {
    let gap = (b.estimate - limit).abs();
    if gap < 1e-12 {
        return None;
    }
    let tail = (1.0 - b.confidence) / 2.0;
    let z = t_quantile(1.0 - tail, 1e7);
    let p = b.estimate.max(limit);
    // Zero errors: the bound falls as about 3/m (the rule of three, here ln(1/tail)/m).
    let m = if b.estimate == 0.0 {
        (1.0 / tail).ln() / limit
    } else {
        (z / gap).powi(2) * p * (1.0 - p)
    };
    Some(m.max(b.effective_samples) * b.design_effect)
}

/// What the forecast of [`samples_to_decide_at`] assumes about a service
/// before it runs: a lognormal tail of this shape (σ of the log), and
/// requests worth half their number once their dependence is allowed for.
pub const FORECAST_SIGMA: f64 = 1.0;
/// Latency budgets: the median design effect of the p99 budgets in the 1M
/// main job of 2026-12-05 was 5.4 (2.0 to 20.2, 24 budgets).
pub const FORECAST_DESIGN_EFFECT: f64 = 5.0;
/// Error budgets: with no or few errors, only Student's price (1.2 to 1.4
/// in that run).
pub const FORECAST_ERROR_DESIGN_EFFECT: f64 = 1.5;

/// Requests a q-quantile budget needs to be decided (met) when the true
/// quantile is `ratio` of the budget (0.5: half of it), before any run:
/// the budget then sits at the fraction Φ(z_q + ln(1/ratio)/σ) of a
/// lognormal of shape [`FORECAST_SIGMA`], and the exact order statistics
/// must fall under it, on [`FORECAST_DESIGN_EFFECT`] times the samples.
pub fn samples_to_decide_at(q: f64, ratio: f64, confidence: f64) -> f64 {
    let tail = (1.0 - confidence) / 2.0;
    let zq = t_quantile(q, 1e7);
    let f = 1.0 - normal_tail(zq + (1.0 / ratio).ln() / FORECAST_SIGMA);
    let mut m = 10.0;
    while m < 1e12 {
        if order_fractions(m, q, tail).1.is_some_and(|h| h <= f) {
            return m * FORECAST_DESIGN_EFFECT;
        }
        m *= 1.05;
    }
    f64::INFINITY
}

/// Requests an error-rate budget of `limit` needs to be decided (met)
/// when the true rate is `ratio` of it, before any run: the
/// Clopper-Pearson upper bound of the effective sample must fall to the
/// limit, on [`FORECAST_ERROR_DESIGN_EFFECT`] times the requests.
pub fn requests_to_decide_at(limit: f64, ratio: f64, confidence: f64) -> f64 {
    let tail = (1.0 - confidence) / 2.0;
    let p = limit * ratio;
    let mut m = 10.0;
    while m < 1e12 {
        // The upper bound is at most the limit when P(Bin(m, limit) <= k) <= tail.
        if binomial_cdf(m, limit, p * m) <= tail {
            return m * FORECAST_ERROR_DESIGN_EFFECT;
        }
        m *= 1.05;
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::rng::SplitMix;

    /// Standard normal draw (Box-Muller).
    fn normal(rng: &mut SplitMix) -> f64 {
        let (u1, u2) = (1.0 - rng.unit(), rng.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Synthetic latencies whose noise has the structure of real runs (the
    /// model the compare tests use): lognormal requests around 1 ms, 1% tail
    /// events 4x slower, and a scale that drifts from interval to interval as
    /// an AR(1) with correlation `rho` and stationary spread `drift_sd`.
    struct Model {
        intervals: usize,
        per_interval: usize,
        drift_sd: f64,
        rho: f64,
    }

    fn latency(rng: &mut SplitMix, scale: f64) -> f64 {
        let mut ms = scale * (0.5 * normal(rng)).exp();
        if rng.unit() < 0.01 {
            ms *= 4.0;
        }
        ms
    }

    fn run(m: &Model, rng: &mut SplitMix) -> Vec<Block> {
        let mut x = m.drift_sd * normal(rng);
        let step = m.drift_sd * (1.0 - m.rho * m.rho).sqrt();
        (0..m.intervals)
            .map(|_| {
                x = m.rho * x + step * normal(rng);
                let scale = x.exp();
                let mut h = crate::run::histogram::histogram::<u64>();
                for _ in 0..m.per_interval {
                    h.record((latency(rng, scale) * 1e6) as u64).unwrap();
                }
                Block::of(Some(&h), 0)
            })
            .collect()
    }

    /// The model's true q-quantile (ms), from one very long stationary sample.
    fn truth(m: &Model, q: f64) -> f64 {
        let mut rng = SplitMix(7);
        let mut all: Vec<f64> = (0..2_000_000)
            .map(|_| {
                let scale = (m.drift_sd * normal(&mut rng)).exp();
                latency(&mut rng, scale)
            })
            .collect();
        all.sort_by(f64::total_cmp);
        all[(q * all.len() as f64) as usize]
    }

    /// Wilson 95% interval of k in n.
    fn wilson(k: usize, n: usize) -> (f64, f64) {
        let (k, n, z) = (k as f64, n as f64, 1.96f64);
        let p = k / n;
        let c = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let h = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        (c - h, c + h)
    }

    #[derive(Default, Debug)]
    struct Tally {
        wrong: usize,
        decided: usize,
        trials: usize,
    }

    /// Judge `trials` runs against budgets 10% over and 10% under the true
    /// p99; `naive` drops the dependence correction (design effect 1).
    fn tally(m: &Model, trials: usize, seed: u64, naive: bool) -> Tally {
        let q = 0.99;
        let p99 = truth(m, q);
        let mut rng = SplitMix(seed);
        let mut t = Tally::default();
        for _ in 0..trials {
            let blocks = run(m, &mut rng);
            // Budget 10% over the truth: "missed" is wrong. 10% under: "met" is wrong.
            for (limit, over) in [(p99 * 1.1, false), (p99 / 1.1, true)] {
                let b = if naive {
                    naive_quantile(&blocks, q, 0.99)
                } else {
                    quantile(&blocks, q, 0.99, Some(limit)).unwrap()
                };
                t.trials += 1;
                let met = b.upper.is_some_and(|u| u <= limit);
                let missed = b.lower.is_some_and(|l| l > limit);
                t.decided += (met || missed) as usize;
                t.wrong += if over { met } else { missed } as usize;
            }
        }
        t
    }

    /// The same order-statistic interval, taking every request as independent.
    fn naive_quantile(blocks: &[Block], q: f64, confidence: f64) -> Bound {
        let ranked = Ranked::of(blocks);
        let n = ranked.n() as f64;
        let (lo, hi) = order_fractions(n, q, (1.0 - confidence) / 2.0);
        let ms = |v: u64| v as f64 / 1e6;
        Bound {
            estimate: ms(ranked.at_fraction(q)),
            lower: lo.map(|f| ms(ranked.at_fraction(f))),
            upper: hi.map(|f| ms(ranked.at_fraction(f))),
            confidence,
            samples: ranked.n(),
            effective_samples: n,
            design_effect: 1.0,
        }
    }

    const DRIFTING: Model = Model {
        intervals: 150,
        per_interval: 200,
        drift_sd: 0.3,
        rho: 0.8,
    };

    #[test]
    fn p99_verdicts_on_autocorrelated_latencies_are_wrong_at_most_one_percent() {
        let t = tally(&DRIFTING, 500, 11, false);
        let (_, hi) = wilson(t.wrong, t.trials);
        eprintln!("dependence-corrected: {t:?}, wrong-verdict upper 95% bound {hi:.4}");
        assert!(hi <= 0.01, "{t:?}: upper bound {hi:.4}");
        // It does decide, sometimes, this close (10%) to a budget over 30,000
        // requests whose scale drifts this much: 92 of 1000 when measured.
        assert!(t.decided * 20 >= t.trials, "{t:?}");
    }

    #[test]
    fn a_naive_interval_that_ignores_the_dependence_is_wrong_too_often() {
        let t = tally(&DRIFTING, 500, 11, true);
        let (lo, _) = wilson(t.wrong, t.trials);
        eprintln!("naive: {t:?}, wrong-verdict lower 95% bound {lo:.4}");
        assert!(lo > 0.01, "{t:?}: lower bound {lo:.4}");
    }

    #[test]
    fn far_from_the_budget_few_samples_decide() {
        // 800 requests, p99 around 3 ms, against 1 s: met. Against 0.5 ms: missed.
        let m = Model {
            intervals: 40,
            per_interval: 20,
            drift_sd: 0.1,
            rho: 0.5,
        };
        let mut rng = SplitMix(3);
        let blocks = run(&m, &mut rng);
        let b = quantile(&blocks, 0.99, 0.99, Some(1000.0)).unwrap();
        assert_eq!(b.samples, 800);
        assert!(b.upper.is_some_and(|u| u <= 1000.0), "{b:?}");
        let b = quantile(&blocks, 0.99, 0.99, Some(0.5)).unwrap();
        assert!(b.lower.is_some_and(|l| l > 0.5), "{b:?}");
        // The sample-count rule wanted 10,000 requests for any p99 verdict.
        assert!(b.samples < crate::run::judge::samples_needed(0.99));
    }

    #[test]
    fn a_nearly_fixed_latency_far_under_its_budget_is_met_though_its_median_drifts() {
        // 500 requests of about 20.7 ms over 50 intervals (pg_sleep(0.02) in
        // the capacity test), whose median drifts by microseconds from
        // interval to interval: those just over the median swing together,
        // so the estimate's own design effect is huge. Against a 30 ms p50
        // none comes near, and it is met (CI: unjudged, "worth 1 independent").
        let mut rng = SplitMix(9);
        let mut drift = 0.0f64;
        let blocks: Vec<Block> = (0..50)
            .map(|i| {
                drift = 0.95 * drift + 0.3 * normal(&mut rng);
                let mut h = crate::run::histogram::histogram::<u64>();
                for _ in 0..10 {
                    let us = 20_700.0 + 40.0 * drift + 5.0 * normal(&mut rng) + (i % 2) as f64;
                    h.record((us * 1e3) as u64).unwrap();
                }
                Block::of(Some(&h), 0)
            })
            .collect();
        let at_estimate = quantile(&blocks, 0.5, 0.99, None).unwrap();
        let at_budget = quantile(&blocks, 0.5, 0.99, Some(30.0)).unwrap();
        // The estimate's own dependence could not bound it at all (272 here).
        assert!(at_estimate.upper.is_none(), "{at_estimate:?}");
        assert!(at_budget.upper.is_some_and(|u| u <= 30.0), "{at_budget:?}");
        assert!(
            at_budget.design_effect < at_estimate.design_effect,
            "{at_budget:?} {at_estimate:?}"
        );
    }

    #[test]
    fn the_interval_narrows_with_samples_and_covers_the_estimate() {
        let short = Model {
            intervals: 30,
            per_interval: 100,
            drift_sd: 0.1,
            rho: 0.5,
        };
        let long = Model {
            intervals: 300,
            ..short
        };
        let mut rng = SplitMix(5);
        let a = quantile(&run(&short, &mut rng), 0.95, 0.99, None).unwrap();
        let b = quantile(&run(&long, &mut rng), 0.95, 0.99, None).unwrap();
        for x in [&a, &b] {
            let (lo, hi) = (x.lower.unwrap(), x.upper.unwrap());
            assert!(lo <= x.estimate && x.estimate <= hi, "{x:?}");
        }
        let width = |x: &Bound| x.upper.unwrap() - x.lower.unwrap();
        assert!(width(&b) < width(&a), "{a:?} {b:?}");
    }

    #[test]
    fn too_few_intervals_cannot_measure_dependence() {
        let mut h = crate::run::histogram::histogram::<u64>();
        h.record(1_000_000).unwrap();
        let blocks = vec![Block::of(Some(&h), 0)];
        assert_eq!(
            quantile(&blocks, 0.99, 0.99, None),
            Err(NoBound::FewIntervals(1))
        );
        assert_eq!(quantile(&[], 0.99, 0.99, None), Err(NoBound::Empty));
    }

    #[test]
    fn the_forecast_needs_far_fewer_samples_than_the_count_rule_at_half_the_budget() {
        let p99 = samples_to_decide_at(0.99, 0.5, 0.99);
        let p999 = samples_to_decide_at(0.999, 0.5, 0.99);
        let p50 = samples_to_decide_at(0.5, 0.5, 0.99);
        eprintln!("p50 {p50:.0}, p99 {p99:.0}, p99.9 {p999:.0}");
        assert!(p99 > 2500.0 && p99 < 5000.0, "{p99}");
        assert!(p999 > 10.0 * p99 / 2.0, "{p999}");
        assert!(p50 < 500.0, "{p50}");
        // Closer to the budget, more.
        assert!(samples_to_decide_at(0.99, 0.8, 0.99) > 3.0 * p99);
    }

    #[test]
    fn order_fractions_match_the_exact_binomial() {
        // n = 800, q = 0.99, 0.5% a side: P(E = 0) = 0.99^800 = 0.00032,
        // P(E <= 1) = 0.0029 <= 0.005, P(E <= 2) = 0.0111: at most one
        // request may lie above the bound, so it is the 799th.
        let (_, hi) = order_fractions(800.0, 0.99, 0.005);
        assert!((hi.unwrap() - 799.0 / 800.0).abs() < 1e-12, "{hi:?}");
        // n = 400: P(E = 0) = 0.018 > 0.005, no upper bound.
        assert_eq!(order_fractions(400.0, 0.99, 0.005).1, None);
        // The median of 100: the classic 99% ranks are 37 and 64.
        let (lo, hi) = order_fractions(100.0, 0.5, 0.005);
        assert_eq!(
            ((lo.unwrap() * 100.0).round(), (hi.unwrap() * 100.0).round()),
            (37.0, 64.0)
        );
    }

    #[test]
    fn error_rate_bounds_are_clopper_pearson_and_widen_with_bursts() {
        // 3 errors in 1000, evenly spread: the exact 99% interval is (0.00034, 0.0112).
        let even: Vec<Block> = (0..100)
            .map(|i| Block {
                values: vec![(1_000_000, 10 - (i % 34 == 0) as u64)],
                requests: 10,
                errors: (i % 34 == 0) as u64,
            })
            .collect();
        // Spread evenly, the batches show no dependence: only Student's price
        // for 20 batches, (t₁₉/z)² ≈ 1.2, widens it.
        let b = error_rate(&even, 0.99).unwrap();
        assert!(b.design_effect < 1.3, "{b:?}");
        let (lo, hi) = (b.lower.unwrap(), b.upper.unwrap());
        assert!(hi > 0.0112 && hi < 0.0112 * 1.3, "{b:?}");
        assert!(lo < 0.00034 && lo > 0.00034 / 2.0, "{b:?}");
        // The same errors in one burst count for less: a wider interval.
        let mut burst = even.clone();
        for (i, blk) in burst.iter_mut().enumerate() {
            blk.errors = (i < 3) as u64;
        }
        let c = error_rate(&burst, 0.99).unwrap();
        assert!(
            c.design_effect > 1.0 && c.upper.unwrap() > b.upper.unwrap(),
            "{c:?}"
        );
        // No error in 100,000: the upper bound is near ln(1/0.005)/n.
        let clean: Vec<Block> = (0..100)
            .map(|_| Block {
                values: vec![(1_000_000, 1000)],
                requests: 1000,
                errors: 0,
            })
            .collect();
        let d = error_rate(&clean, 0.99).unwrap();
        assert!(d.upper.unwrap() < 7e-5 && d.lower == Some(0.0), "{d:?}");
    }
}
