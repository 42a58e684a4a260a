//! The one place budgets and validity are judged. The driver judges a run
//! as it finishes, and `gate` judges the record again (with the scenario's
//! budgets or a budgets file) through the same functions, so the two can
//! never disagree about what a figure means.

use std::collections::BTreeMap;

use super::result::{BudgetOutcome, BudgetResult, Latency, OpResult, PhaseResult, Validity};
use crate::scenario::{self, Budget};

/// Requests a quantile needs before it can be judged: 100 / (1 − q), so
/// that at least 100 requests lie beyond it; one for the maximum.
pub fn samples_needed(q: f64) -> u64 {
    if q >= 1.0 {
        1
    } else {
        (100.0 / (1.0 - q)).ceil() as u64
    }
}

/// The latency figure of `l` for a budget label.
fn figure(l: &Latency, label: &str) -> f64 {
    match label {
        "p50" => l.p50_ms,
        "p95" => l.p95_ms,
        "p99" => l.p99_ms,
        "p99.9" => l.p999_ms,
        "max" => l.max_ms,
        other => unreachable!("Budget::limits gave an unknown label {other}"),
    }
}

/// Judge every budget against the operations measured. A budget whose
/// operation is missing, or whose percentile has too few samples, is
/// `Unjudged`, never a pass.
pub fn budgets(budgets: &BTreeMap<String, Budget>, ops: &[OpResult]) -> Vec<BudgetResult> {
    let mut out = Vec::new();
    for (name, b) in budgets {
        let op = ops.iter().find(|o| &o.name == name);
        for (label, q, limit) in b.limits() {
            let limit = limit.0.as_secs_f64() * 1e3;
            let needs = samples_needed(q);
            let samples = op.map_or(0, |o| o.response.count);
            let actual = op.map(|o| figure(&o.response, label));
            out.push(judged(name, label, limit, actual, samples, needs));
        }
        if let Some(limit) = b.error_rate {
            let samples = op.map_or(0, |o| o.count);
            let actual = op.map(|o| o.error_rate);
            out.push(judged(name, "error_rate", limit, actual, samples, 1));
        }
    }
    out
}

fn judged(
    op: &str,
    metric: &str,
    limit: f64,
    actual: Option<f64>,
    samples: u64,
    needs: u64,
) -> BudgetResult {
    let outcome = match actual {
        Some(a) if samples >= needs && a.is_finite() => {
            if a <= limit {
                BudgetOutcome::Pass
            } else {
                BudgetOutcome::Fail
            }
        }
        _ => BudgetOutcome::Unjudged,
    };
    BudgetResult {
        operation: op.to_string(),
        metric: metric.to_string(),
        limit,
        actual,
        samples,
        needs,
        outcome,
    }
}

impl BudgetResult {
    /// One line: the figure against its limit, or why it was not judged.
    pub fn describe(&self) -> String {
        let show = |x: f64| {
            if self.metric == "error_rate" {
                format!("{:.3}%", x * 100.0)
            } else {
                format!("{x:.3} ms")
            }
        };
        match (self.outcome, self.actual) {
            (BudgetOutcome::Unjudged, None) => {
                format!("the run has no operation {:?}", self.operation)
            }
            (BudgetOutcome::Unjudged, Some(_)) => format!(
                "{} needs {} samples to be judged, the run has {}: run longer or at a higher rate",
                self.metric, self.needs, self.samples
            ),
            (BudgetOutcome::Pass, Some(a)) => format!("{} <= {}", show(a), show(self.limit)),
            (_, a) => {
                let a = a.unwrap_or(f64::NAN);
                let by = if self.limit > 0.0 {
                    format!(" (+{:.0}%)", (a / self.limit - 1.0) * 100.0)
                } else {
                    String::new()
                };
                format!("{} > {}{by}", show(a), show(self.limit))
            }
        }
    }
}

/// Whether a variant's numbers can be trusted: each open phase reached its
/// offered rate and dropped (almost) nothing, and the driver was not the
/// bottleneck.
pub fn validity(
    v: &scenario::Validity,
    phases: &[PhaseResult],
    driver_lag: &Latency,
    backlog: usize,
) -> Validity {
    let mut reasons = Vec::new();
    for p in phases {
        let (Some(offered), Some(target)) = (p.offered, p.target_rate) else {
            continue;
        };
        if offered == 0 {
            continue;
        }
        // Against what the schedule offered, so a Poisson phase's own
        // randomness is not mistaken for a shortfall.
        let offered_rate = offered as f64 / p.duration_s;
        let ratio = p.achieved_rate / offered_rate;
        // NaN (nothing offered in time) is a shortfall too.
        let reached = ratio >= v.min_rate;
        if !reached {
            reasons.push(format!(
                "{}: achieved {:.1} req/s of {:.1} offered (target {:.1}), {:.0}% < {:.0}%: the estate or the driver could not keep up",
                p.name,
                p.achieved_rate,
                offered_rate,
                target,
                ratio * 100.0,
                v.min_rate * 100.0
            ));
        }
        if p.dropped as f64 > 0.001 * offered as f64 {
            reasons.push(format!(
                "{}: {} of {offered} requests dropped (backlog of {backlog} full)",
                p.name, p.dropped
            ));
        }
    }
    let limit = v.max_driver_lag.0.as_secs_f64() * 1e3;
    if driver_lag.count >= 100 && driver_lag.p99_ms > limit {
        reasons.push(format!(
            "the driver was the bottleneck: p99 of its wake-up delay {:.2} ms > {limit:.2} ms",
            driver_lag.p99_ms
        ));
    }
    Validity {
        valid: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Dur, Operation};
    use std::time::Duration;

    fn op(name: &str, count: u64, p99_ms: f64) -> OpResult {
        let lat = Latency {
            count,
            p50_ms: p99_ms / 3.0,
            p99_ms,
            max_ms: p99_ms * 2.0,
            ..Latency::default()
        };
        OpResult {
            name: name.into(),
            operation: Operation::Dashboard,
            count,
            ok: count,
            errors: BTreeMap::new(),
            error_rate: 0.0,
            throughput: 1.0,
            late: 0,
            response: lat.clone(),
            service: lat.clone(),
            lag: lat,
        }
    }

    fn p99(ms: u64) -> BTreeMap<String, Budget> {
        BTreeMap::from([(
            "dashboard".to_string(),
            Budget {
                p99: Some(Dur(Duration::from_millis(ms))),
                error_rate: Some(0.01),
                ..Budget::default()
            },
        )])
    }

    #[test]
    fn a_budget_passes_fails_or_is_unjudged_never_defaulted() {
        let pass = budgets(&p99(10), &[op("dashboard", 20_000, 9.0)]);
        assert_eq!(pass[0].outcome, BudgetOutcome::Pass, "{pass:?}");
        let fail = budgets(&p99(10), &[op("dashboard", 20_000, 11.0)]);
        assert_eq!(fail[0].outcome, BudgetOutcome::Fail);
        assert!(
            fail[0].describe().contains("+10%"),
            "{}",
            fail[0].describe()
        );
        // p99 needs 10,000 samples.
        let few = budgets(&p99(10), &[op("dashboard", 9_999, 1.0)]);
        assert_eq!(few[0].outcome, BudgetOutcome::Unjudged);
        assert!(few[0].describe().contains("needs 10000 samples"));
        // A budget for an operation the run does not have is not a pass.
        let missing = budgets(&p99(10), &[op("pnl", 20_000, 1.0)]);
        assert!(missing.iter().all(|b| b.outcome == BudgetOutcome::Unjudged));
        assert!(missing[0].describe().contains("no operation \"dashboard\""));
        // A figure that is not a number is not below the limit.
        let nan = budgets(&p99(10), &[op("dashboard", 20_000, f64::NAN)]);
        assert_eq!(nan[0].outcome, BudgetOutcome::Unjudged);
    }
}
