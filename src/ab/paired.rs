//! The paired statistics of `rehearse ab`: per round, B's figure over A's
//! from two slices that ran side by side; across rounds, the mean of the
//! log ratios with a Student-t interval (rounds − 1 degrees of freedom).
//! Drift that moves both slices of a round cancels in their ratio, so the
//! spread left is the build's, not the machine's.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::sequential::Design;
use super::Slice;
use crate::compare::{
    decide, run_intervals, t_tail, CompareSettings, Comparison, Finding, Row, METRICS,
    THROUGHPUT_FLOOR,
};
use crate::error::{Error, Result};
use crate::run::histogram::histogram;

/// One round's ratios, B over A.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundRatio {
    pub round: u32,
    /// Seconds from the first slice's start to this round's second slice.
    pub at_s: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub throughput: f64,
}

/// Rounds that have both an A and a B slice.
pub fn complete_rounds(slices: &[Slice]) -> usize {
    let mut rounds: BTreeMap<u32, (bool, bool)> = BTreeMap::new();
    for s in slices {
        let e = rounds.entry(s.round).or_default();
        if s.side == "a" {
            e.0 = true;
        } else {
            e.1 = true;
        }
    }
    rounds.values().filter(|(a, b)| *a && *b).count()
}

/// One slice's measured figures per "variant/operation": its merged
/// histogram and its throughput.
fn figures(dir: &Path) -> Result<BTreeMap<String, (Histogram<u64>, f64)>> {
    let (runs, interval) = run_intervals(dir)?;
    let mut out = BTreeMap::new();
    for (key, hs) in runs {
        let mut h = histogram();
        for x in &hs {
            h.add(x)
                .map_err(|e| Error::Lab(format!("merging histograms of {key}: {e:?}")))?;
        }
        let rate = h.len() as f64 / (hs.len().max(1) as f64 * interval);
        out.insert(key, (h, rate));
    }
    Ok(out)
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e6
}

/// What the rounds judged: the comparisons, each key's per-round ratios,
/// and what only one side measured ("dashboard [legacy]: in A, not in B").
pub type Judged = (
    Vec<(String, Comparison)>,
    Vec<(String, Vec<RoundRatio>)>,
    Vec<String>,
);

/// The paired statistics of one figure: the mean of the rounds' log
/// ratios, its standard error, and the two-sided p-value of "no change"
/// from Student's t with rounds − 1 degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    pub point: f64,
    pub se: f64,
    pub p: f64,
}

pub fn paired(logs: &[f64]) -> Paired {
    let n = logs.len() as f64;
    let df = (n - 1.0).max(1.0);
    let point = logs.iter().sum::<f64>() / n;
    let sd = (logs.iter().map(|x| (x - point).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let se = sd / n.sqrt();
    let p = if se > 0.0 {
        (2.0 * t_tail(point.abs() / se, df)).min(1.0)
    } else if point == 0.0 {
        1.0
    } else {
        0.0
    };
    Paired { point, se, p }
}

/// How the rounds are judged, beyond the settings shared with `compare`.
#[derive(Debug, Clone, Copy)]
pub struct Judging<'a> {
    /// The looks and their level: what turns a round's t into a verdict.
    pub design: &'a Design,
    /// The smallest change that matters, as a fraction, for every figure;
    /// each figure's own floor when absent.
    pub min_effect: Option<f64>,
    /// The figures judged (p50, p95, p99, p99.9, throughput); all when empty.
    pub metrics: &'a [String],
    /// Whether each round's A and B ran at the same time (`--duet`)
    /// rather than one after the other.
    pub duet: bool,
}

/// Pair the complete rounds' slices and judge every variant/operation they
/// share; name each one that a side measured in some round and the other
/// did not measure in every round.
pub fn judge(out: &Path, slices: &[Slice], s: &CompareSettings, how: Judging) -> Result<Judged> {
    // (round, at, A figures, B figures) of each complete round.
    let mut rounds = Vec::new();
    let mut by_round: BTreeMap<u32, Vec<&Slice>> = BTreeMap::new();
    for sl in slices {
        by_round.entry(sl.round).or_default().push(sl);
    }
    for (round, pair) in by_round {
        let a = pair.iter().find(|x| x.side == "a");
        let b = pair.iter().find(|x| x.side == "b");
        let (Some(a), Some(b)) = (a, b) else { continue };
        let at = a.started_s.max(b.started_s);
        rounds.push((
            round,
            at,
            figures(&out.join(&a.dir))?,
            figures(&out.join(&b.dir))?,
        ));
    }
    let keys: Vec<String> = match rounds.first() {
        Some((_, _, a, _)) => a
            .keys()
            .filter(|k| {
                rounds
                    .iter()
                    .all(|(_, _, a, b)| a.contains_key(*k) && b.contains_key(*k))
            })
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let mut one_sided = Vec::new();
    for (this, other, side, not) in [(2, 3, "A", "B"), (3, 2, "B", "A")] {
        let seen: std::collections::BTreeSet<&String> = rounds
            .iter()
            .flat_map(|r| if this == 2 { r.2.keys() } else { r.3.keys() })
            .collect();
        for k in seen {
            let everywhere = rounds.iter().all(|r| {
                let m = if other == 2 { &r.2 } else { &r.3 };
                m.contains_key(k)
            });
            if !everywhere {
                one_sided.push(format!(
                    "{}: in {side}, not in every round of {not}",
                    crate::compare::key_name(k)
                ));
            }
        }
    }
    let n = rounds.len() as f64;
    let df = (n - 1.0).max(1.0);
    let t = how.design.t(rounds.len() as u32);
    let judged = |name: &str| how.metrics.is_empty() || how.metrics.iter().any(|m| m == name);
    let mut comparisons = Vec::new();
    let mut ratios = Vec::new();
    for key in keys {
        // Each side's slices merged, for the figures shown and the sample counts.
        let mut merged = [histogram::<u64>(), histogram::<u64>()];
        let mut rates = [0.0, 0.0];
        for (_, _, a, b) in &rounds {
            for (side, m) in [a, b].iter().enumerate() {
                let (h, r) = &m[&key];
                let _ = merged[side].add(h);
                rates[side] += r / n;
            }
        }
        let figure = |m: usize, h: &Histogram<u64>, rate: f64| -> f64 {
            if m < METRICS.len() {
                quantile_ms(h, METRICS[m].1)
            } else {
                rate
            }
        };
        let mut rows = Vec::new();
        #[allow(clippy::needless_range_loop)]
        // m indexes figures, METRICS and the throughput after them
        for m in 0..=METRICS.len() {
            let name = METRICS.get(m).map_or("throughput", |x| x.0);
            if !judged(name) {
                continue;
            }
            let logs: Vec<f64> = rounds
                .iter()
                .map(|(_, _, a, b)| {
                    let (ha, ra) = &a[&key];
                    let (hb, rb) = &b[&key];
                    (figure(m, hb, *rb).max(1e-9) / figure(m, ha, *ra).max(1e-9)).ln()
                })
                .collect();
            let Paired { point, se, p } = paired(&logs);
            let (name, floor, note) = if m < METRICS.len() {
                let (name, q, floor) = METRICS[m];
                let floor = how.min_effect.unwrap_or(floor);
                let need = crate::run::judge::samples_needed(q);
                let (na, nb) = (merged[0].len(), merged[1].len());
                let note = (na < need || nb < need)
                    .then(|| format!("needs {need} samples per side, has {na} and {nb}"));
                (name, floor, note)
            } else {
                (
                    "throughput",
                    how.min_effect.unwrap_or(THROUGHPUT_FLOOR),
                    None,
                )
            };
            rows.push(Row {
                metric: name.to_string(),
                baseline: figure(m, &merged[0], rates[0]),
                candidate: figure(m, &merged[1], rates[1]),
                ratio: point.exp(),
                low: (point - t * se).exp(),
                high: (point + t * se).exp(),
                p_value: how.design.p_value(p),
                se_log: se,
                df,
                significant: false,
                floor,
                detect: Some(floor / 2.0),
                change: Finding::Inconclusive,
                note,
            });
        }
        decide(&mut rows, s);
        ratios.push((
            key.clone(),
            rounds
                .iter()
                .map(|(round, at, a, b)| {
                    let r = |m: usize| {
                        let (ha, ra) = &a[&key];
                        let (hb, rb) = &b[&key];
                        figure(m, hb, *rb) / figure(m, ha, *ra).max(1e-9)
                    };
                    RoundRatio {
                        round: *round,
                        at_s: *at,
                        p50: r(0),
                        p95: r(1),
                        p99: r(2),
                        throughput: r(METRICS.len()),
                    }
                })
                .collect(),
        ));
        comparisons.push((
            key,
            Comparison {
                rows,
                runs: (rounds.len(), rounds.len()),
                between_runs: {
                    let how_run = if how.duet {
                        "A and B at the same time (duet)"
                    } else {
                        "interleaved (ABBA)"
                    };
                    let looks = if how.design.looks() > 1 {
                        format!(
                            ", at the level {:.4} of each of {} planned looks (alpha {} over all of them)",
                            how.design.level,
                            how.design.looks(),
                            how.design.alpha
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "{} rounds {how_run}, paired by round: drift common to both sides cancels; t with {} degrees of freedom{looks}",
                        rounds.len(),
                        rounds.len() - 1
                    )
                },
            },
        ));
    }
    Ok((comparisons, ratios, one_sided))
}

#[cfg(test)]
mod tests {
    //! Synthetic pairs: each round's two slices share a drift (an AR(1) of
    //! the log scale with a spread of 30%, far more than the change sought)
    //! and each has noise of its own (5% sd); B is `effect` slower. The
    //! pairing must cancel the drift: A/A false alarms at alpha, and a 15%
    //! slowdown caught at p50 (floor 5%) in most of six-round runs.
    use super::*;
    use crate::compare::t_quantile;
    use crate::generate::rng::SplitMix;

    fn normal(rng: &mut SplitMix) -> f64 {
        let (u1, u2) = (1.0 - rng.unit(), rng.unit());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// One ab of `rounds` rounds judged at p50 (floor 5%): its change.
    fn one(rng: &mut SplitMix, rounds: usize, effect: f64) -> Finding {
        let mut drift = 0.3 * normal(rng);
        let logs: Vec<f64> = (0..rounds)
            .map(|_| {
                drift = 0.8 * drift + 0.3 * 0.6 * normal(rng);
                let a = drift + 0.05 * normal(rng);
                let b = drift + (1.0 + effect).ln() + 0.05 * normal(rng);
                b - a
            })
            .collect();
        let s = CompareSettings::default();
        let Paired { point, se, p } = paired(&logs);
        let df = (rounds as f64 - 1.0).max(1.0);
        let t = t_quantile(1.0 - s.alpha / 2.0, df);
        let mut rows = vec![Row {
            metric: "p50".into(),
            baseline: 1.0,
            candidate: point.exp(),
            ratio: point.exp(),
            low: (point - t * se).exp(),
            high: (point + t * se).exp(),
            p_value: p,
            se_log: se,
            df,
            significant: false,
            floor: 0.05,
            detect: None,
            change: Finding::Inconclusive,
            note: None,
        }];
        decide(
            &mut rows,
            &CompareSettings {
                min_abs_ms: 0.0,
                ..s
            },
        );
        rows[0].change
    }

    #[test]
    fn pairing_cancels_the_drift_a_a_alarms_at_alpha_and_a_slowdown_is_caught() {
        let mut rng = SplitMix(17);
        let n = 2000;
        let alarms = (0..n)
            .filter(|_| {
                matches!(
                    one(&mut rng, 6, 0.0),
                    Finding::Regression | Finding::Improvement
                )
            })
            .count();
        eprintln!("ab A/A, 6 rounds: {alarms} false alarms of {n}");
        assert!(alarms as f64 / n as f64 <= 0.01, "{alarms} of {n}");
        let caught = (0..200)
            .filter(|_| one(&mut rng, 6, 0.15) == Finding::Regression)
            .count();
        eprintln!("ab +15%, 6 rounds: caught {caught} of 200");
        assert!(caught >= 140, "caught {caught} of 200");
        // Never the wrong way round.
        assert!((0..200).all(|_| one(&mut rng, 6, 0.15) != Finding::Improvement));
    }
}
