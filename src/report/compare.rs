//! Comparing two builds: per operation and variant, the ratio of candidate
//! to baseline for p50, p95, p99, p99.9 and throughput, with a confidence
//! interval from a block bootstrap over whole interval histograms.
//!
//! Latencies within a run are correlated in time, so single requests are
//! not independent draws; intervals (1 s histograms) are closer to it, and
//! resampling runs of consecutive intervals (blocks of ⌈n^⅓⌉) keeps what
//! correlation is left between neighbours. Each side is resampled on its
//! own; several runs per side are pooled. A row is a **regression** only
//! when the whole 95% interval of the ratio lies above 1 (the change is
//! real) and the ratio itself exceeds the metric's floor and the absolute
//! change exceeds `min_abs_ms` (the change matters); an **improvement**
//! mirrors it; **no change** when the whole interval lies within the
//! floor's band; **inconclusive** otherwise, or when a side has too few
//! samples for the percentile (100 / (1 − q)).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::generate::rng::SplitMix;

/// The metrics compared, their quantile, and their default floors.
pub const METRICS: [(&str, f64, f64); 4] = [
    ("p50", 0.5, 0.05),
    ("p95", 0.95, 0.10),
    ("p99", 0.99, 0.15),
    ("p99.9", 0.999, 0.20),
];
/// Floor for throughput (higher is better).
pub const THROUGHPUT_FLOOR: f64 = 0.05;

#[derive(Debug, Clone, Serialize)]
pub struct CompareSettings {
    pub resamples: usize,
    pub confidence: f64,
    /// Changes smaller than this (ms) are never a regression or improvement.
    pub min_abs_ms: f64,
    pub seed: u64,
}

impl Default for CompareSettings {
    fn default() -> Self {
        CompareSettings {
            resamples: 1000,
            confidence: 0.95,
            min_abs_ms: 0.05,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Regression,
    Improvement,
    NoChange,
    Inconclusive,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Regression => "REGRESSION",
            Change::Improvement => "improvement",
            Change::NoChange => "no change",
            Change::Inconclusive => "inconclusive",
        })
    }
}

/// One compared figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub baseline: f64,
    pub candidate: f64,
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    pub floor: f64,
    pub change: Change,
    pub note: Option<String>,
}

/// One side's interval histograms in a shared sparse form: for each
/// interval, (index into `values`, count) of its non-empty buckets.
struct Side {
    /// Per interval, samples at or below each grid value: `cum[i * k + j]`.
    cum: Vec<u32>,
    totals: Vec<u64>,
}

/// Both sides over one value grid.
struct Grid {
    values: Vec<u64>,
    a: Side,
    b: Side,
}

impl Grid {
    fn new(a: &[Histogram<u64>], b: &[Histogram<u64>]) -> Grid {
        let mut values: Vec<u64> = a
            .iter()
            .chain(b)
            .flat_map(|h| {
                h.iter_recorded()
                    .map(move |v| h.highest_equivalent(v.value_iterated_to()))
            })
            .collect();
        values.sort_unstable();
        values.dedup();
        let k = values.len();
        let side = |hs: &[Histogram<u64>]| {
            let mut cum = vec![0u32; hs.len() * k];
            for (i, h) in hs.iter().enumerate() {
                let row = &mut cum[i * k..(i + 1) * k];
                for v in h.iter_recorded() {
                    let x = h.highest_equivalent(v.value_iterated_to());
                    let j = values.binary_search(&x).expect("on the grid");
                    row[j] += v.count_at_value() as u32;
                }
                for j in 1..k {
                    row[j] += row[j - 1];
                }
            }
            let totals = hs.iter().map(|h| h.len()).collect();
            Side { cum, totals }
        };
        let (a, b) = (side(a), side(b));
        Grid { values, a, b }
    }

    /// Quantiles (ms) of the union of the chosen intervals of a side: a
    /// binary search over the grid for each quantile, summing the chosen
    /// intervals' cumulative counts (times how often each was drawn).
    fn quantiles(
        &self,
        side: &Side,
        chosen: &[usize],
        qs: &[f64],
        mult: &mut Vec<u32>,
    ) -> (Vec<f64>, u64) {
        let k = self.values.len();
        mult.clear();
        mult.resize(side.totals.len(), 0);
        for &i in chosen {
            mult[i] += 1;
        }
        let picked: Vec<(usize, u64)> = mult
            .iter()
            .enumerate()
            .filter(|(_, m)| **m > 0)
            .map(|(i, m)| (i * k, *m as u64))
            .collect();
        let total: u64 = picked
            .iter()
            .map(|&(row, m)| m * side.totals[row / k.max(1)])
            .sum();
        let at_or_below = |j: usize| -> u64 {
            picked
                .iter()
                .map(|&(row, m)| m * side.cum[row + j] as u64)
                .sum()
        };
        let out = qs
            .iter()
            .map(|&q| {
                let rank = ((q * total as f64).ceil() as u64).max(1);
                let (mut lo, mut hi) = (0usize, k - 1);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if at_or_below(mid) >= rank {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                self.values[lo] as f64 / 1e6
            })
            .collect();
        (out, total)
    }
}

/// Moving-block bootstrap indexes for `n` intervals.
fn resample(n: usize, rng: &mut SplitMix, out: &mut Vec<usize>) {
    out.clear();
    let block = ((n as f64).cbrt().ceil() as usize).clamp(1, n.max(1));
    while out.len() < n {
        let start = (rng.next_u64() % (n - block + 1) as u64) as usize;
        out.extend((start..start + block).take(n - out.len()));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn verdict(
    ratio: f64,
    low: f64,
    high: f64,
    floor: f64,
    abs: f64,
    min_abs: f64,
    higher_is_better: bool,
) -> Change {
    let (worse_sig, better_sig) = if higher_is_better {
        (high < 1.0, low > 1.0)
    } else {
        (low > 1.0, high < 1.0)
    };
    let (worse_big, better_big) = if higher_is_better {
        (ratio < 1.0 - floor, ratio > 1.0 + floor)
    } else {
        (ratio > 1.0 + floor, ratio < 1.0 - floor)
    };
    if worse_sig && worse_big && abs >= min_abs {
        Change::Regression
    } else if better_sig && better_big && abs >= min_abs {
        Change::Improvement
    } else if (low >= 1.0 - floor && high <= 1.0 + floor) || abs < min_abs {
        Change::NoChange
    } else {
        Change::Inconclusive
    }
}

/// Compare a baseline's interval histograms with a candidate's (each side
/// possibly pooled from several runs); `interval_s` is their length.
pub fn compare(
    baseline: &[Histogram<u64>],
    candidate: &[Histogram<u64>],
    interval_s: f64,
    s: &CompareSettings,
) -> Vec<Row> {
    if baseline.is_empty() || candidate.is_empty() {
        return Vec::new();
    }
    let grid = Grid::new(baseline, candidate);
    let qs: Vec<f64> = METRICS.iter().map(|m| m.1).collect();
    let mut acc: Vec<u32> = Vec::new();
    let all_a: Vec<usize> = (0..baseline.len()).collect();
    let all_b: Vec<usize> = (0..candidate.len()).collect();
    let (base, n_a) = grid.quantiles(&grid.a, &all_a, &qs, &mut acc);
    let (cand, n_b) = grid.quantiles(&grid.b, &all_b, &qs, &mut acc);
    let rate = |n: u64, k: usize| n as f64 / (k as f64 * interval_s);
    let (tp_a, tp_b) = (rate(n_a, baseline.len()), rate(n_b, candidate.len()));

    let mut rng = SplitMix(s.seed);
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(s.resamples); qs.len() + 1];
    let (mut ia, mut ib) = (Vec::new(), Vec::new());
    for _ in 0..s.resamples {
        resample(baseline.len(), &mut rng, &mut ia);
        resample(candidate.len(), &mut rng, &mut ib);
        let (qa, na) = grid.quantiles(&grid.a, &ia, &qs, &mut acc);
        let (qb, nb) = grid.quantiles(&grid.b, &ib, &qs, &mut acc);
        for m in 0..qs.len() {
            ratios[m].push(qb[m] / qa[m].max(1e-9));
        }
        ratios[qs.len()].push(rate(nb, ib.len()) / rate(na, ia.len()).max(1e-9));
    }
    let tail = (1.0 - s.confidence) / 2.0;
    let mut rows = Vec::new();
    for (m, (name, q, floor)) in METRICS.iter().enumerate() {
        let r = &mut ratios[m];
        r.sort_by(|x, y| x.total_cmp(y));
        let (low, high) = (percentile(r, tail), percentile(r, 1.0 - tail));
        let ratio = cand[m] / base[m].max(1e-9);
        let need = (100.0 / (1.0 - q)).ceil() as u64;
        let (change, note) = if n_a < need || n_b < need {
            (
                Change::Inconclusive,
                Some(format!(
                    "needs {need} samples per side, has {n_a} and {n_b}"
                )),
            )
        } else {
            let abs = (cand[m] - base[m]).abs();
            (
                verdict(ratio, low, high, *floor, abs, s.min_abs_ms, false),
                None,
            )
        };
        rows.push(Row {
            metric: name.to_string(),
            baseline: base[m],
            candidate: cand[m],
            ratio,
            low,
            high,
            floor: *floor,
            change,
            note,
        });
    }
    let r = &mut ratios[qs.len()];
    r.sort_by(|x, y| x.total_cmp(y));
    let (low, high) = (percentile(r, tail), percentile(r, 1.0 - tail));
    let ratio = tp_b / tp_a.max(1e-9);
    rows.push(Row {
        metric: "throughput".into(),
        baseline: tp_a,
        candidate: tp_b,
        ratio,
        low,
        high,
        floor: THROUGHPUT_FLOOR,
        change: verdict(ratio, low, high, THROUGHPUT_FLOOR, f64::INFINITY, 0.0, true),
        note: None,
    });
    rows
}

/// Compare every variant/operation the two sides share, on all cores.
pub fn compare_all(
    base: &RunIntervals,
    cand: &RunIntervals,
    interval_s: f64,
    s: &CompareSettings,
) -> Vec<(String, Vec<Row>)> {
    type Pair<'a> = (&'a String, &'a [Histogram<u64>], &'a [Histogram<u64>]);
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

/// Measured interval histograms by "variant/operation".
pub type RunIntervals = BTreeMap<String, Vec<Histogram<u64>>>;

/// Several runs' intervals pooled per variant and operation, and their interval length.
pub fn pooled(dirs: &[std::path::PathBuf]) -> crate::Result<(RunIntervals, f64)> {
    let mut all = RunIntervals::new();
    let mut interval = 1.0;
    for d in dirs {
        let (m, i) = run_intervals(d)?;
        interval = i;
        for (k, v) in m {
            all.entry(k).or_default().extend(v);
        }
    }
    Ok((all, interval))
}

/// Interval histograms of one run's measured intervals, by "variant/operation".
pub fn run_intervals(dir: &std::path::Path) -> crate::Result<(RunIntervals, f64)> {
    let r = crate::run::read(dir)?;
    let interval = r.scenario.interval.0.as_secs_f64();
    let mut out = BTreeMap::new();
    let mut want: BTreeMap<String, (String, f64, f64)> = BTreeMap::new();
    for v in &r.variants {
        let name = &v.variant.name;
        let from = v.started_s + v.warmup_s;
        let end = v.started_s + v.seconds;
        for o in &v.operations {
            let key = format!("{name}/{}", o.name);
            want.insert(format!("{key}/response"), (key.clone(), from, end));
            out.insert(key, Vec::new());
        }
    }
    crate::run::hlog::for_each(
        &dir.join("latency.hlog"),
        |tag| want.contains_key(tag),
        |tag, t, h| {
            let (key, from, end) = &want[tag];
            // Measured, whole intervals: the last one is cut short by the end.
            if t >= from - interval / 2.0 && t + interval <= end + interval / 2.0 {
                out.get_mut(key)
                    .expect("every wanted key has a slot")
                    .push(h);
            }
            Ok(())
        },
    )?;
    Ok((out, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One interval of a bursty service: a log-normal body whose scale moves
    /// from interval to interval (load), with a heavier tail now and then.
    fn interval(rng: &mut SplitMix, n: usize, slowdown: f64) -> Histogram<u64> {
        let mut h = crate::driver::record::histogram::<u64>();
        let normal = |rng: &mut SplitMix| {
            // Box-Muller.
            let (u1, u2) = (1.0 - rng.unit(), rng.unit());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let load = (0.12 * normal(rng)).exp();
        for _ in 0..n {
            let mut ms = 0.8 * load * (0.5 * normal(rng)).exp();
            if rng.unit() < 0.01 {
                ms *= 4.0; // a tail event: a lock wait, a checkpoint
            }
            h.record((ms * slowdown * 1e6) as u64).unwrap();
        }
        h
    }

    fn side(rng: &mut SplitMix, intervals: usize, slowdown: f64) -> Vec<Histogram<u64>> {
        (0..intervals)
            .map(|_| interval(rng, 2_000, slowdown))
            .collect()
    }

    fn settings(seed: u64) -> CompareSettings {
        CompareSettings {
            resamples: 300,
            seed,
            ..CompareSettings::default()
        }
    }

    #[test]
    fn the_same_build_twice_is_almost_never_a_regression() {
        let mut rng = SplitMix(1);
        let mut alarms = 0;
        for trial in 0..200 {
            let a = side(&mut rng, 60, 1.0);
            let b = side(&mut rng, 60, 1.0);
            let rows = compare(&a, &b, 1.0, &settings(trial));
            if rows.iter().any(|r| r.change == Change::Regression) {
                alarms += 1;
            }
        }
        eprintln!("A/A: {alarms} of 200 trials flagged a regression");
        assert!(alarms <= 2, "{alarms} false alarms in 200 A/A trials");
    }

    #[test]
    fn twenty_percent_slower_at_p99_is_flagged() {
        let mut rng = SplitMix(2);
        let mut flagged = 0;
        for trial in 0..200 {
            let a = side(&mut rng, 60, 1.0);
            let b = side(&mut rng, 60, 1.2);
            let rows = compare(&a, &b, 1.0, &settings(trial));
            let p99 = rows.iter().find(|r| r.metric == "p99").unwrap();
            if p99.change == Change::Regression {
                flagged += 1;
            }
        }
        eprintln!("p99 20% slower: flagged in {flagged} of 200 trials");
        assert!(flagged >= 190, "flagged {flagged} of 200");
    }

    #[test]
    fn too_few_samples_are_inconclusive_not_a_verdict() {
        let mut rng = SplitMix(3);
        let a: Vec<_> = (0..5).map(|_| interval(&mut rng, 100, 1.0)).collect();
        let b: Vec<_> = (0..5).map(|_| interval(&mut rng, 100, 3.0)).collect();
        let rows = compare(&a, &b, 1.0, &settings(1));
        let p999 = rows.iter().find(|r| r.metric == "p99.9").unwrap();
        assert_eq!(p999.change, Change::Inconclusive);
        assert!(p999.note.as_deref().unwrap().contains("100000"));
        let p50 = rows.iter().find(|r| r.metric == "p50").unwrap();
        assert_eq!(p50.change, Change::Regression, "{p50:?}");
    }
}
