//! Comparing two builds: per operation and variant, the ratio of candidate
//! to baseline for p50, p95, p99, p99.9 and throughput, with an interval
//! from a two-level bootstrap and a verdict that holds between runs.
//!
//! Noise comes at two levels. Within a run, latencies are correlated in
//! time, so the unit resampled is a block of consecutive interval
//! histograms (moving blocks, of a length that grows with the measured
//! autocorrelation). Between runs of one build, the whole distribution
//! moves (cache warmth, checkpoints, a neighbour on the host), which no
//! resampling inside one run can see. So each side's runs are resampled
//! first, then blocks within each drawn run. A side of one run cannot show
//! its between-run spread: it is allowed for instead, with the spread
//! learned from the other side's runs when it has several, else a stated
//! default (`run_spread`), and the verdict says which.
//!
//! The bootstrap gives each log ratio's standard error, extrapolated from
//! blocks of b and 2b (2·V(2b) − V(b)); intervals and p-values are Student-t
//! ones on the log scale (exp(log ratio ± t·se)), with the blocks a side
//! could draw, less one, as degrees of freedom: a few hundred draws cannot
//! reach the far tails a Holm-corrected 1% needs, and a standard error
//! from a few blocks is itself uncertain.
//!
//! Verdicts: a metric is *significant* when its p-value passes
//! Holm's correction across the percentiles of its operation (family-wise
//! `alpha`, two-sided), so one noisy percentile cannot make a verdict. A
//! **regression** is significant, beyond the metric's floor and at least
//! `min_abs_ms`; an **improvement** mirrors it, except that an operation
//! that also regressed at another percentile reports it as
//! **contradictory**. **no change**: the interval lies inside the floor's
//! band; **below min-abs**: the change is smaller than `min_abs_ms`;
//! **inconclusive** otherwise, or when a side has too few samples for the
//! percentile (100 / (1 − q)).
//!
//! The module's parts: this file is the decision (the settings, a row's
//! verdict, Holm's correction, what would decide an undecided row);
//! `bootstrap.rs` the two-level block bootstrap on a shared value grid;
//! `runs.rs` reading run directories into interval histograms.

mod bootstrap;
mod runs;
#[cfg(test)]
mod tests;

use std::ops::Range;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::generate::rng::SplitMix;
pub(crate) use crate::stats::{t_quantile, t_tail};
use bootstrap::{learned_spread, Grid, Side};
use bootstrap::{Resampler, TWO_LEVEL};
pub use runs::{run_dirs, run_intervals, runs, RunIntervals, Runs};

/// The metrics compared, their quantile, and their default floors.
pub const METRICS: [(&str, f64, f64); 4] = [
    ("p50", 0.5, 0.05),
    ("p95", 0.95, 0.10),
    ("p99", 0.99, 0.15),
    ("p99.9", 0.999, 0.20),
];
/// Floor for throughput (higher is better).
pub const THROUGHPUT_FLOOR: f64 = 0.05;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareSettings {
    pub resamples: usize,
    /// Family-wise error rate (two-sided) of the verdicts of one operation's
    /// percentiles; intervals are shown at 1 − alpha.
    pub alpha: f64,
    /// Changes smaller than this (ms) are never a regression or improvement.
    pub min_abs_ms: f64,
    /// Between-run spread (standard deviation of the log of a figure across
    /// runs of one build) allowed for a side of one run when neither side
    /// has the runs to learn it.
    pub run_spread: f64,
    pub seed: u64,
}

impl Default for CompareSettings {
    fn default() -> Self {
        CompareSettings {
            resamples: 1000,
            alpha: 0.01,
            min_abs_ms: 0.05,
            run_spread: 0.05,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Regression,
    Improvement,
    /// Faster here while significantly slower at another percentile of the
    /// same operation: not credited as an improvement.
    Contradictory,
    NoChange,
    /// A change smaller than `min_abs_ms`, whatever its ratio.
    BelowMinAbs,
    Inconclusive,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Finding::Regression => "REGRESSION",
            Finding::Improvement => "improvement",
            Finding::Contradictory => "CONTRADICTORY",
            Finding::NoChange => "no change",
            Finding::BelowMinAbs => "below min-abs",
            Finding::Inconclusive => "inconclusive",
        })
    }
}

/// One compared figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub metric: String,
    pub baseline: f64,
    pub candidate: f64,
    pub ratio: f64,
    /// The interval of the ratio, at 1 − alpha.
    pub low: f64,
    pub high: f64,
    /// Two-sided bootstrap p-value of "no change", and whether it passed Holm.
    pub p_value: f64,
    /// Standard error of the log ratio, and the degrees of freedom of its t.
    pub se_log: f64,
    pub df: f64,
    pub significant: bool,
    pub floor: f64,
    /// How far the estimate must be from no change for a significant row
    /// to count as a regression or improvement; the floor when absent.
    /// `ab` sets half its floor: a change of the floor itself is then
    /// found once the interval is narrow, not in half the cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect: Option<f64>,
    pub change: Finding,
    pub note: Option<String>,
}

/// The comparison of one operation of one variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Runs on each side.
    pub runs: (usize, usize),
    /// How the between-run spread was accounted for.
    pub between_runs: String,
}

/// Compare a baseline's runs with a candidate's (each run its interval
/// histograms); `interval_s` is their length.
pub fn compare(
    baseline: &[Vec<Histogram<u64>>],
    candidate: &[Vec<Histogram<u64>>],
    interval_s: f64,
    s: &CompareSettings,
) -> Comparison {
    compare_with(baseline, candidate, interval_s, s, TWO_LEVEL)
}

pub(crate) fn compare_with(
    baseline: &[Vec<Histogram<u64>>],
    candidate: &[Vec<Histogram<u64>>],
    interval_s: f64,
    s: &CompareSettings,
    resample: Resampler,
) -> Comparison {
    let baseline: Vec<Vec<Histogram<u64>>> =
        baseline.iter().filter(|r| !r.is_empty()).cloned().collect();
    let candidate: Vec<Vec<Histogram<u64>>> = candidate
        .iter()
        .filter(|r| !r.is_empty())
        .cloned()
        .collect();
    let runs = (baseline.len(), candidate.len());
    if baseline.is_empty() || candidate.is_empty() {
        return Comparison {
            rows: Vec::new(),
            runs,
            between_runs: "a side has no measured interval".into(),
        };
    }
    let grid = Grid::new(&baseline, &candidate);
    let qs: Vec<f64> = METRICS.iter().map(|m| m.1).collect();
    let mut acc: Vec<u32> = Vec::new();
    let all = |side: &Side| -> Vec<usize> { (0..side.totals.len()).collect() };
    let (base, n_a) = grid.quantiles(&grid.a, &all(&grid.a), &qs, &mut acc);
    let (cand, n_b) = grid.quantiles(&grid.b, &all(&grid.b), &qs, &mut acc);
    let rate = |n: u64, k: usize| n as f64 / (k as f64 * interval_s);
    let (tp_a, tp_b) = (
        rate(n_a, grid.a.totals.len()),
        rate(n_b, grid.b.totals.len()),
    );

    // A side of one run is allowed a between-run spread: learned, or the default.
    let learned = learned_spread(&grid, &qs, interval_s);
    let single = (runs.0 == 1, runs.1 == 1);
    let (spread, spread_df): (Vec<f64>, f64) = match &learned {
        Some((l, df)) => (l.clone(), *df),
        // Latencies only: an open loop's throughput is its schedule's.
        // The default is a stated constant: it adds no uncertainty of its own.
        None => {
            let mut v = vec![s.run_spread; qs.len()];
            v.push(0.0);
            (v, f64::INFINITY)
        }
    };
    let between_runs = match (single, &learned) {
        ((false, false), _) => format!(
            "{} and {} runs: runs resampled, between-run spread measured",
            runs.0, runs.1
        ),
        (_, Some((l, _))) => format!(
            "{} vs {} runs: the single run's between-run spread is not measured; allowed for with the spread of the other side's runs (p50 {:.1}%)",
            runs.0,
            runs.1,
            l[0] * 100.0
        ),
        (_, None) => format!(
            "one run per side: between-run spread unknown; allowed for with the default {:.1}% (more runs per side measure it)",
            s.run_spread * 100.0
        ),
    };

    // Draws with each run's block length b, and with 2b, alternately (half
    // the resamples each); each
    // side's log figures are kept apart, since the sides are drawn
    // independently and their variances add.
    let doubled = |runs: &[(Range<usize>, usize)]| -> Vec<(Range<usize>, usize)> {
        runs.iter()
            .map(|(r, b)| (r.clone(), (b * 2).min(r.len() / 2).max(*b)))
            .collect()
    };
    let layouts = [
        (grid.a.layout.runs.clone(), grid.b.layout.runs.clone()),
        (doubled(&grid.a.layout.runs), doubled(&grid.b.layout.runs)),
    ];
    let metrics = qs.len() + 1;
    let mut rng = SplitMix(s.seed);
    // draws[side][metric][2 * draw + layout]
    let mut draws: [Vec<Vec<f64>>; 2] =
        std::array::from_fn(|_| vec![Vec::with_capacity(s.resamples); metrics]);
    let (mut ia, mut ib) = (Vec::new(), Vec::new());
    for draw in 0..s.resamples {
        let (la, lb) = &layouts[draw % 2];
        (resample.draw)(la, &mut rng, &mut ia);
        (resample.draw)(lb, &mut rng, &mut ib);
        for (k, (side, chosen)) in [(&grid.a, &ia), (&grid.b, &ib)].into_iter().enumerate() {
            let (q, n) = grid.quantiles(side, chosen, &qs, &mut acc);
            for (m, v) in q.iter().enumerate() {
                draws[k][m].push(v.max(1e-9).ln());
            }
            draws[k][qs.len()].push(rate(n, chosen.len()).max(1e-9).ln());
        }
    }
    let variance = |x: &[f64]| {
        let n = x.len().max(2) as f64;
        let mean = x.iter().sum::<f64>() / n;
        x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    };
    // One side's variance of a log figure, and its degrees of freedom.
    //  - A bootstrap variance is a plug-in one: over k independent units
    //    (runs, or blocks within one run) it falls short by (k − 1)/k, so it
    //    is scaled by k/(k − 1).
    //  - With autocorrelated intervals, blocks of length b also miss about
    //    c/b of it; 2·W(2b) − W(b) removes that (Richardson in 1/b).
    //  - A side of one run adds the between-run allowance.
    let side_variance = |k: usize, m: usize| -> (f64, f64) {
        let side = if k == 0 { &grid.a } else { &grid.b };
        let runs = &side.layout.runs;
        let units = resample.units;
        let lay = if k == 0 { &layouts[1].0 } else { &layouts[1].1 };
        let (u_b, u_2b) = (units(runs), units(lay));
        let scale = |u: f64| if u > 1.0 { u / (u - 1.0) } else { 2.0 };
        let x = &draws[k][m];
        let short: Vec<f64> = x.iter().step_by(2).copied().collect();
        let long: Vec<f64> = x.iter().skip(1).step_by(2).copied().collect();
        let (wb, w2b) = (variance(&short) * scale(u_b), variance(&long) * scale(u_2b));
        let boot = (2.0 * w2b - wb).max(w2b).max(wb);
        let df = (u_b - 1.0).max(1.0);
        if runs.len() == 1 {
            let allow = spread[m] * spread[m];
            let total = boot + allow;
            // Welch–Satterthwaite over the bootstrap part and the allowance.
            let denom = boot * boot / df
                + if spread_df.is_finite() {
                    allow * allow / spread_df
                } else {
                    0.0
                };
            (
                total,
                if denom > 0.0 {
                    total * total / denom
                } else {
                    f64::INFINITY
                },
            )
        } else {
            (boot, df)
        }
    };
    // Interval and two-sided p-value of "no change" for one metric's point
    // log ratio: Student's t with Welch–Satterthwaite degrees of freedom.
    let judge = |point: f64, m: usize| {
        let ((va, dfa), (vb, dfb)) = (side_variance(0, m), side_variance(1, m));
        let var = va + vb;
        let denom = va * va / dfa + vb * vb / dfb;
        let df = if denom > 0.0 {
            (var * var / denom).max(1.0)
        } else {
            f64::INFINITY
        };
        let se = var.sqrt();
        let t = t_quantile(1.0 - s.alpha / 2.0, df);
        let p = if se > 0.0 {
            2.0 * t_tail(point.abs() / se, df)
        } else if point == 0.0 {
            1.0
        } else {
            0.0
        };
        (
            (point - t * se).exp(),
            (point + t * se).exp(),
            p.min(1.0),
            se,
            df,
        )
    };
    let log_ratio = |c: f64, b: f64| (c.max(1e-9) / b.max(1e-9)).ln();
    let mut rows = Vec::new();
    for (m, (name, q, floor)) in METRICS.iter().enumerate() {
        let (low, high, p, se_log, df) = judge(log_ratio(cand[m], base[m]), m);
        let need = crate::run::judge::samples_needed(*q);
        let enough = n_a >= need && n_b >= need;
        rows.push(Row {
            metric: name.to_string(),
            baseline: base[m],
            candidate: cand[m],
            ratio: cand[m] / base[m].max(1e-9),
            low,
            high,
            p_value: p,
            se_log,
            df,
            significant: false,
            floor: *floor,
            detect: None,
            change: Finding::Inconclusive,
            note: (!enough).then(|| format!("needs {need} samples per side, has {n_a} and {n_b}")),
        });
    }
    let (low, high, p, se_log, df) = judge(log_ratio(tp_b, tp_a), qs.len());
    rows.push(Row {
        metric: "throughput".into(),
        baseline: tp_a,
        candidate: tp_b,
        ratio: tp_b / tp_a.max(1e-9),
        low,
        high,
        p_value: p,
        se_log,
        df,
        significant: false,
        floor: THROUGHPUT_FLOOR,
        detect: None,
        change: Finding::Inconclusive,
        note: None,
    });
    decide(&mut rows, s);
    Comparison {
        rows,
        runs,
        between_runs,
    }
}

/// The verdicts of one operation's rows, from their intervals and p-values:
/// Holm across the latency percentiles that have enough samples (a row with
/// a note has too few and stays inconclusive), throughput on its own, then
/// an improvement next to a regression becomes a contradiction. `compare`
/// and `ab` both decide through it.
pub(crate) fn decide(rows: &mut [Row], s: &CompareSettings) {
    let latency = |r: &Row| r.metric != "throughput";
    let mut order: Vec<usize> = (0..rows.len())
        .filter(|&i| latency(&rows[i]) && rows[i].note.is_none())
        .collect();
    order.sort_by(|&x, &y| rows[x].p_value.total_cmp(&rows[y].p_value));
    let family = order.len();
    for (rank, &i) in order.iter().enumerate() {
        // A p-value that is not a number is never significant.
        let passes = rows[i].p_value <= s.alpha / (family - rank) as f64;
        if !passes {
            break;
        }
        rows[i].significant = true;
    }
    for r in rows.iter_mut().filter(|r| r.note.is_none()) {
        r.change = if latency(r) {
            let abs = (r.candidate - r.baseline).abs();
            verdict(r, abs, s.min_abs_ms, false)
        } else {
            r.significant = r.p_value <= s.alpha; // false for NaN
            verdict(r, f64::INFINITY, 0.0, true)
        };
    }
    // An improvement is credited only when no other percentile of the
    // operation is worse beyond its floor, significant or not: a build whose
    // every request is slower can still show a quieter tail by chance.
    let worse: Vec<(String, f64, bool)> = rows
        .iter()
        .filter(|r| latency(r) && r.note.is_none() && r.ratio > 1.0 + r.floor)
        .map(|r| (r.metric.clone(), r.ratio, r.change == Finding::Regression))
        .collect();
    if let Some((metric, ratio, significant)) = worse.first() {
        for r in rows
            .iter_mut()
            .filter(|r| r.change == Finding::Improvement && latency(r))
        {
            r.change = Finding::Contradictory;
            r.note = Some(format!(
                "faster here but {}slower at {metric} (x{ratio:.3}) of this operation",
                if *significant { "significantly " } else { "" }
            ));
        }
    }
}

fn verdict(r: &Row, abs: f64, min_abs: f64, higher_is_better: bool) -> Finding {
    let edge = r.detect.unwrap_or(r.floor);
    let worse = if higher_is_better {
        r.ratio < 1.0 - edge
    } else {
        r.ratio > 1.0 + edge
    };
    let better = if higher_is_better {
        r.ratio > 1.0 + edge
    } else {
        r.ratio < 1.0 - edge
    };
    if r.low >= 1.0 - r.floor && r.high <= 1.0 + r.floor {
        Finding::NoChange
    } else if abs < min_abs {
        Finding::BelowMinAbs
    } else if r.significant && worse {
        Finding::Regression
    } else if r.significant && better {
        Finding::Improvement
    } else {
        Finding::Inconclusive
    }
}

impl Row {
    /// Whether this row leaves the comparison undecided: an interval that
    /// straddles the floor, or a gain at one percentile beside a loss at another.
    pub fn undecided(&self) -> bool {
        matches!(self.change, Finding::Inconclusive | Finding::Contradictory)
    }

    /// What would decide an undecided row: how many times the data per side
    /// would narrow its interval enough (it narrows as one over the square
    /// root of the runs), or the reason no amount would.
    pub fn to_decide(&self) -> String {
        if let Some(n) = &self.note {
            return n.clone();
        }
        let point = self.ratio.max(1e-12).ln().abs();
        let edge = (1.0 + self.floor)
            .ln()
            .min(-(1.0 - self.floor).max(1e-12).ln());
        let half = (self.high.max(1e-12).ln() - self.low.max(1e-12).ln()) / 2.0;
        // Beyond the floor, a narrower interval shows a change; inside it, no change.
        let room = (point - edge).abs();
        if room < 1e-6 || half <= 0.0 || !half.is_finite() {
            return "the change sits on the floor: more runs move the interval little; lower the floor or accept it".into();
        }
        let factor = (half / room).powi(2);
        format!(
            "deciding it needs an interval {:.1}x narrower: about {:.0}x the runs per side (or rounds of `rehearse ab`, which pairs the builds in time)",
            (half / room).max(1.0),
            factor.max(1.0).ceil()
        )
    }
}

/// Every "variant/operation" only one side measured: (key, "in the
/// baseline, not in the candidate" or the other way).
pub fn unmatched(base: &Runs, cand: &Runs) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = base
        .keys()
        .filter(|k| !cand.contains_key(*k))
        .map(|k| (k.clone(), "in the baseline, not in the candidate"))
        .collect();
    out.extend(
        cand.keys()
            .filter(|k| !base.contains_key(*k))
            .map(|k| (k.clone(), "in the candidate, not in the baseline")),
    );
    out
}

/// "dashboard [partitioned]" for the key "partitioned/dashboard".
pub fn key_name(key: &str) -> String {
    match key.split_once('/') {
        Some((variant, op)) => format!("{op} [{variant}]"),
        None => key.to_string(),
    }
}

/// Compare every variant/operation the two sides share, on all cores.
pub fn compare_all(
    base: &Runs,
    cand: &Runs,
    interval_s: f64,
    s: &CompareSettings,
) -> Vec<(String, Comparison)> {
    type Pair<'a> = (
        &'a String,
        &'a [Vec<Histogram<u64>>],
        &'a [Vec<Histogram<u64>>],
    );
    let pairs: Vec<Pair<'_>> = cand
        .iter()
        .filter_map(|(k, c)| base.get(k).map(|b| (k, b.as_slice(), c.as_slice())))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pairs.len().max(1));
    let chunk = pairs.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(k, b, c)| ((*k).clone(), compare(b, c, interval_s, s)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a comparison thread panicked"))
            .collect()
    })
}
