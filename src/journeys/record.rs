//! The run record of a journeys run: the journeys as a scenario, each
//! variant's result from its histograms, and Goose's counts checked
//! against rehearse's.

use std::collections::BTreeMap;
use std::time::Duration;

use goose::prelude::GooseMetrics;
use hdrhistogram::Histogram;

use super::file::Journeys;
use crate::run::histogram::{histogram, IntervalOp, IntervalSummary};
use crate::run::{judge, Database, Latency, LoadModel, OpResult, PhaseResult, VariantResult};
use crate::scenario::{self, Dur, Load, MixEntry, Phase, Tenants};

use super::calls::*;

/// The scenario record of a journeys file: one closed phase, one mix
/// entry per transaction, a variant per mode.
pub(super) fn as_scenario(j: &Journeys) -> scenario::Scenario {
    let think: f64 = j
        .personas
        .iter()
        .map(|p| (p.think.0 + p.think_max.0).as_secs_f64() / 2.0 * p.weight as f64)
        .sum::<f64>()
        / j.personas
            .iter()
            .map(|p| p.weight as f64)
            .sum::<f64>()
            .max(1.0);
    let weights: BTreeMap<&str, u32> = j
        .personas
        .iter()
        .map(|p| (p.name.as_str(), p.weight))
        .collect();
    scenario::Scenario {
        name: j.name.clone(),
        description: j.description.clone(),
        path: j.path.clone(),
        seed: j.seed,
        warmup: Dur(Duration::ZERO),
        interval: j.interval,
        timeout: j.timeout,
        inject_delay: Dur(Duration::ZERO),
        early_release: None,
        phases: vec![Phase {
            name: "journeys".into(),
            duration: j.duration,
            load: Load::Closed {
                users: j.users,
                think: Dur(Duration::from_secs_f64(think)),
            },
        }],
        mix: j
            .transactions()
            .into_iter()
            .map(|(name, s)| MixEntry {
                weight: weights
                    .get(name.split('.').next().unwrap_or(""))
                    .copied()
                    .unwrap_or(1) as f64
                    * s.pages as f64,
                name,
                operation: s.operation(),
                days: s.days,
                limit: s.limit,
                top: s.top,
                entries: s.entries,
                sql: None,
                params: Vec::new(),
                via: None,
            })
            .collect(),
        tenants: Tenants::Uniform,
        variants: j
            .variants
            .iter()
            .map(|m| scenario::Variant {
                name: m.to_string(),
                mode: *m,
                reads: crate::repo::Via::Auto,
                cache: true,
                pool: crate::repo::Pooling::Direct,
            })
            .collect(),
        budgets: j.budgets.clone(),
        validity: scenario::Validity {
            min_rate: 0.95,
            max_driver_lag: Dur(Duration::from_millis(5)),
            confidence: crate::run::judge::DEFAULT_CONFIDENCE,
        },
        jobs: Vec::new(),
    }
}

/// Goose's own transaction counts, by transaction name: (success, fail).
pub(super) fn goose_counts(m: &GooseMetrics) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in m.transactions.iter().flatten() {
        let e = out
            .entry(t.transaction_name.name_for_transaction().to_string())
            .or_default();
        e.0 += t.success_count as u64;
        e.1 += t.fail_count as u64;
    }
    out
}

/// Where Goose's own count of a transaction differs from what rehearse
/// recorded: then a request was lost on one side, and the run cannot be trusted.
pub(super) fn disagreements(ops: &[OpResult], goose: &BTreeMap<String, (u64, u64)>) -> Vec<String> {
    ops.iter()
        .filter_map(|o| {
            let (ok, failed) = goose.get(&o.name).copied().unwrap_or((0, 0));
            (ok + failed != o.count).then(|| {
                format!(
                    "{}: Goose counted {} requests ({failed} failed), rehearse recorded {}",
                    o.name,
                    ok + failed,
                    o.count
                )
            })
        })
        .collect()
}

/// A variant's results from its recorder.
pub(super) fn variant_result(
    s: &scenario::Scenario,
    variant: &scenario::Variant,
    rec: &Recorder,
    elapsed: f64,
    offset: f64,
) -> VariantResult {
    let mut totals: BTreeMap<usize, Histogram<u64>> = BTreeMap::new();
    for ((t, _), h) in &rec.hist {
        totals
            .entry(*t)
            .or_insert_with(histogram)
            .add(h)
            .expect("auto-resizing add");
    }
    let empty = histogram::<u64>();
    let operations: Vec<OpResult> = s
        .mix
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let h = totals.get(&i).unwrap_or(&empty);
            let errors: BTreeMap<String, u64> = rec
                .errors
                .iter()
                .filter(|((t, _), _)| *t == i)
                .map(|((_, k), n)| (k.clone(), *n))
                .collect();
            let latency = Latency::of(h);
            OpResult::of(
                m,
                errors,
                h.len() as f64 / elapsed.max(1e-9),
                0,
                [latency.clone(), latency, Latency::default()],
            )
        })
        .collect();
    let mut per_interval: BTreeMap<u64, Vec<IntervalOp>> = BTreeMap::new();
    let idxs: std::collections::BTreeSet<(u64, usize)> = rec
        .hist
        .keys()
        .chain(rec.interval_errors.keys())
        .map(|(t, i)| (*i, *t))
        .collect();
    let mut evidence = judge::Evidence::new();
    for (idx, t) in idxs {
        evidence
            .entry(s.mix[t].name.clone())
            .or_default()
            .push(crate::run::bound::Block::of(
                rec.hist.get(&(t, idx)),
                rec.interval_errors.get(&(t, idx)).copied().unwrap_or(0),
            ));
        per_interval.entry(idx).or_default().push(IntervalOp::of(
            &s.mix[t].name,
            rec.hist.get(&(t, idx)),
            rec.interval_errors.get(&(t, idx)).copied().unwrap_or(0),
            0,
        ));
    }
    let timeline = per_interval
        .into_iter()
        .map(|(idx, ops)| IntervalSummary {
            t: idx as f64 * rec.interval,
            ops,
        })
        .collect();
    let completed: u64 = operations.iter().map(|o| o.count).sum();
    let phases = vec![PhaseResult {
        name: "journeys".into(),
        model: LoadModel::Closed,
        duration_s: s.duration().as_secs_f64(),
        target_rate: None,
        offered: None,
        completed,
        dropped: 0,
        achieved_rate: completed as f64 / elapsed.max(1e-9),
        elapsed_s: elapsed,
        failure: None,
        early_release: None,
    }];
    let driver_lag = Latency::default();
    let validity = judge::validity(&s.validity, &phases, &driver_lag, 0);
    let budgets = judge::budgets(
        &s.budgets,
        &operations,
        &evidence,
        s.validity.confidence,
        elapsed,
    );
    VariantResult {
        variant: variant.clone(),
        started_s: offset,
        seconds: elapsed,
        warmup_s: 0.0,
        closed_loop: true,
        phases,
        operations,
        driver_lag,
        driver_cpu_seconds: 0.0,
        driver_cpu_us_per_op: 0.0,
        driver_peak_rss_kib: None,
        driver_runtime: None,
        database: Database {
            repo: Default::default(),
            samples: Vec::new(),
            top_statements: None,
            attribution: None,
        },
        timeline,
        budgets,
        validity,
        jobs: Vec::new(),
    }
}
