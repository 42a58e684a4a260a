//! The one place budgets and validity are judged. The driver judges a run
//! as it finishes, and `gate` judges the record again (with the scenario's
//! budgets or a budgets file) through the same functions, so the two can
//! never disagree about what a figure means.

use std::collections::BTreeMap;

use super::bound::{self, Block, Bound, NoBound};
use super::result::{BudgetOutcome, BudgetResult, Latency, OpResult, PhaseResult, Validity};
use crate::scenario::{self, Budget};

/// Requests a quantile needs before `compare` compares it: 100 / (1 − q),
/// so that at least 100 requests lie beyond it; one for the maximum.
/// Budgets are not judged by a count but by an interval ([`budgets`]).
pub fn samples_needed(q: f64) -> u64 {
    if q >= 1.0 {
        1
    } else {
        (100.0 / (1.0 - q)).ceil() as u64
    }
}

/// The measured intervals of each operation of one variant, by name: what
/// budgets are judged on.
pub type Evidence = BTreeMap<String, Vec<Block>>;

pub use crate::scenario::DEFAULT_CONFIDENCE;

/// Judge every budget against the operations measured, each by the
/// interval its figure has at `confidence`: **met** when the whole interval
/// is at or under the limit, **missed** when it is all above, **unjudged**
/// otherwise, with the samples and seconds (at the rate the run ran,
/// `measured_s` its measured seconds) that would have decided it. A budget
/// whose operation is missing or was never measured is unjudged, never a pass.
pub fn budgets(
    budgets: &BTreeMap<String, Budget>,
    ops: &[OpResult],
    evidence: &Evidence,
    confidence: f64,
    measured_s: f64,
) -> Vec<BudgetResult> {
    let mut out = Vec::new();
    for (name, b) in budgets {
        let op = ops.iter().find(|o| &o.name == name);
        let present = op.is_some();
        // The operations and the evidence come from one run; an operation the
        // run does not list is missing, whatever intervals claim it.
        let blocks = evidence
            .get(name)
            .filter(|_| present)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (label, q, limit) in b.limits() {
            let limit = limit.0.as_secs_f64() * 1e3;
            let r = if q >= 1.0 {
                observed_max(name, limit, op, confidence)
            } else {
                latency(
                    name, label, q, limit, present, blocks, confidence, measured_s,
                )
            };
            out.push(r);
        }
        if let Some(limit) = b.error_rate {
            out.push(errors(name, limit, present, blocks, confidence, measured_s));
        }
    }
    out
}

fn unjudged(op: &str, metric: &str, limit: f64, confidence: f64, why: String) -> BudgetResult {
    BudgetResult {
        operation: op.to_string(),
        metric: metric.to_string(),
        limit,
        actual: None,
        lower: None,
        upper: None,
        confidence,
        samples: 0,
        effective_samples: 0.0,
        needs: None,
        needs_seconds: None,
        outcome: BudgetOutcome::Unjudged,
        why: Some(why),
    }
}

fn missing(op: &str, metric: &str, limit: f64, confidence: f64, present: bool) -> BudgetResult {
    let why = if present {
        format!("{op} has no measured interval to judge {metric} on")
    } else {
        format!("the run has no operation {op:?}")
    };
    unjudged(op, metric, limit, confidence, why)
}

/// A bound's verdict against `limit`, and when unjudged the samples and
/// seconds that would have decided it.
fn decided(
    op: &str,
    metric: &str,
    limit: f64,
    b: Bound,
    needs: impl FnOnce(&Bound) -> Option<f64>,
    measured_s: f64,
) -> BudgetResult {
    let outcome = if b.upper.is_some_and(|u| u <= limit) {
        BudgetOutcome::Pass
    } else if b.lower.is_some_and(|l| l > limit) {
        BudgetOutcome::Fail
    } else {
        BudgetOutcome::Unjudged
    };
    let (need, why) = if outcome == BudgetOutcome::Unjudged {
        match needs(&b) {
            Some(n) => (Some(n.ceil() as u64), None),
            None => (
                None,
                Some("its estimate sits on the budget: no run length would decide it".to_string()),
            ),
        }
    } else {
        (None, None)
    };
    let rate = b.samples as f64 / measured_s.max(1e-9);
    BudgetResult {
        operation: op.to_string(),
        metric: metric.to_string(),
        limit,
        actual: Some(b.estimate),
        lower: b.lower,
        upper: b.upper,
        confidence: b.confidence,
        samples: b.samples,
        effective_samples: b.effective_samples,
        needs: need,
        needs_seconds: need.map(|n| n as f64 / rate),
        outcome,
        why,
    }
}

#[allow(clippy::too_many_arguments)]
fn latency(
    op: &str,
    label: &str,
    q: f64,
    limit: f64,
    present: bool,
    blocks: &[Block],
    confidence: f64,
    measured_s: f64,
) -> BudgetResult {
    match bound::quantile(blocks, q, confidence, Some(limit)) {
        Ok(b) => decided(
            op,
            label,
            limit,
            b,
            |b| bound::samples_to_decide(blocks, q, limit, b),
            measured_s,
        ),
        Err(NoBound::Empty) => missing(op, label, limit, confidence, present),
        Err(NoBound::FewIntervals(k)) => unjudged(
            op,
            label,
            limit,
            confidence,
            format!(
                "{label} of {op} was measured in {k} interval(s): too few to tell how much requests close in time depend on each other; run longer"
            ),
        ),
    }
}

fn errors(
    op: &str,
    limit: f64,
    present: bool,
    blocks: &[Block],
    confidence: f64,
    measured_s: f64,
) -> BudgetResult {
    let metric = "error_rate";
    match bound::error_rate(blocks, confidence) {
        Ok(b) => decided(
            op,
            metric,
            limit,
            b,
            |b| bound::requests_to_decide(limit, b),
            measured_s,
        ),
        Err(NoBound::Empty) => missing(op, metric, limit, confidence, present),
        Err(NoBound::FewIntervals(k)) => unjudged(
            op,
            metric,
            limit,
            confidence,
            format!("the error rate of {op} was measured in {k} interval(s): too few to judge"),
        ),
    }
}

/// A `max` budget is a statement about this run: no sample bounds a
/// population's maximum, so the largest latency seen is judged as it is.
fn observed_max(op: &str, limit: f64, o: Option<&OpResult>, confidence: f64) -> BudgetResult {
    match o.filter(|o| o.response.count > 0 && o.response.max_ms.is_finite()) {
        Some(o) => {
            let m = o.response.max_ms;
            BudgetResult {
                operation: op.to_string(),
                metric: "max".into(),
                limit,
                actual: Some(m),
                lower: Some(m),
                upper: Some(m),
                confidence,
                samples: o.response.count,
                effective_samples: o.response.count as f64,
                needs: None,
                needs_seconds: None,
                outcome: if m <= limit {
                    BudgetOutcome::Pass
                } else {
                    BudgetOutcome::Fail
                },
                why: None,
            }
        }
        None => missing(op, "max", limit, confidence, o.is_some()),
    }
}

/// What `rehearse check` foresees for one budget before a run: the
/// requests its operation will get in the measured part of a variant, and
/// those it needs to be decided at a comfortable distance: a latency
/// quantile at half its budget, an error rate at a tenth of its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub operation: String,
    pub metric: String,
    /// None: a closed-loop phase, whose count depends on the service.
    pub expected: Option<f64>,
    pub needed: f64,
    /// Measured seconds the scenario would need at its mean rate.
    pub seconds_needed: Option<f64>,
}

impl Forecast {
    pub fn decidable(&self) -> bool {
        self.expected.is_some_and(|e| e >= self.needed)
    }
}

/// The error rate, as a fraction of its budget, at which the forecast asks
/// an error-rate budget to be decidable. Half the budget, as for latency,
/// would ask 49,000 requests of a 0.1% budget: an estate failing that often
/// is already in trouble, and a healthy one fails far less.
pub const FORECAST_ERROR_RATIO: f64 = 0.1;

/// Requests the open phases of `s` offer after its warm-up, by integrating
/// each phase's (possibly ramping) rate; None when a phase is closed-loop.
fn measured_requests(s: &scenario::Scenario) -> Option<(f64, f64)> {
    let warmup = s.warmup.0.as_secs_f64();
    let (mut t0, mut total, mut secs) = (0.0f64, 0.0, 0.0);
    for p in &s.phases {
        let d = p.duration.0.as_secs_f64();
        let scenario::Load::Open { rate, ramp_to, .. } = p.load else {
            return None;
        };
        // The part of [t0, t0 + d] after the warm-up, at a linear rate.
        let from = (warmup - t0).clamp(0.0, d);
        let at = |x: f64| rate + (ramp_to - rate) * x / d.max(1e-9);
        total += (at(from) + at(d)) / 2.0 * (d - from);
        secs += d - from;
        t0 += d;
    }
    Some((total, secs))
}

/// The forecast of every budget of `s` (a `max` needs one request).
pub fn forecast(s: &scenario::Scenario) -> Vec<Forecast> {
    let weights: f64 = s.mix.iter().map(|m| m.weight).sum();
    let measured = measured_requests(s);
    let mut out = Vec::new();
    for (name, b) in &s.budgets {
        let share = s
            .mix
            .iter()
            .filter(|m| &m.name == name)
            .map(|m| m.weight)
            .sum::<f64>()
            / weights.max(1e-9);
        let expected = measured.map(|(n, _)| n * share);
        let per_second = measured.map(|(n, secs)| n * share / secs.max(1e-9));
        let mut push = |metric: &str, needed: f64| {
            out.push(Forecast {
                operation: name.clone(),
                metric: metric.to_string(),
                expected,
                needed,
                seconds_needed: per_second.filter(|r| *r > 0.0).map(|r| needed / r),
            })
        };
        for (label, q, _) in b.limits() {
            let needed = if q >= 1.0 {
                1.0
            } else {
                bound::samples_to_decide_at(q, 0.5, s.validity.confidence)
            };
            push(label, needed);
        }
        if let Some(limit) = b.error_rate {
            push(
                "error_rate",
                bound::requests_to_decide_at(limit, FORECAST_ERROR_RATIO, s.validity.confidence),
            );
        }
    }
    out
}

impl BudgetResult {
    /// One line: the figure and its interval against the limit, or why it
    /// was not decided and what would decide it.
    pub fn describe(&self) -> String {
        let rate = self.metric == "error_rate";
        let show = |x: f64| {
            if rate {
                format!("{:.3}%", x * 100.0)
            } else {
                crate::text::duration_ms(x)
            }
        };
        let Some(a) = self.actual else {
            return self.why.clone().unwrap_or_else(|| "not measured".into());
        };
        let interval = match (self.lower, self.upper) {
            _ if self.metric == "max" => format!("the largest of {} requests", self.samples),
            (lo, hi) => format!(
                "{:.0}% interval {} to {}; {} requests, worth {:.0} independent ones",
                self.confidence * 100.0,
                lo.map_or("0".to_string(), show),
                hi.map_or("no upper bound".to_string(), show),
                self.samples,
                self.effective_samples
            ),
        };
        match self.outcome {
            BudgetOutcome::Pass => format!("{} <= {} ({interval})", show(a), show(self.limit)),
            BudgetOutcome::Fail => {
                let by = if self.limit > 0.0 {
                    format!(" +{:.0}%", (a / self.limit - 1.0) * 100.0)
                } else {
                    String::new()
                };
                format!("{} > {}{by} ({interval})", show(a), show(self.limit))
            }
            BudgetOutcome::Unjudged => {
                let what = match (self.needs, self.needs_seconds, &self.why) {
                    // A figure a hair from its budget asks for days of run:
                    // say that, not a number no one will run.
                    (Some(n), Some(_), _) if n > 100 * self.samples.max(1) => format!(
                        "it sits too close to the budget to decide: that would take over 100 times this run's {} requests",
                        self.samples
                    ),
                    (Some(n), Some(s), _) => format!(
                        "deciding it needs about {n} requests: {} measured at this rate",
                        crate::text::duration_s(s)
                    ),
                    (_, _, Some(w)) => w.clone(),
                    _ => "not decided".into(),
                };
                format!(
                    "{} against {}: its interval straddles the budget ({interval}); {what}",
                    show(a),
                    show(self.limit)
                )
            }
        }
    }
}

/// Whether a variant's numbers can be trusted: each open phase reached its
/// offered rate and dropped (almost) nothing, and the driver was not the
/// bottleneck.
/// Wake-ups the driver's lag is judged on: fewer cannot place a p99.
pub const LAG_SAMPLES: u64 = 100;

pub fn validity(
    v: &scenario::Validity,
    phases: &[PhaseResult],
    driver_lag: &Latency,
    backlog: usize,
) -> Validity {
    let mut reasons = Vec::new();
    let mut not_judged = Vec::new();
    for p in phases {
        if let Some(f) = &p.failure {
            reasons.push(format!("{}: {f}", p.name));
        }
        let (Some(offered), Some(target)) = (p.offered, p.target_rate) else {
            continue;
        };
        if offered == 0 {
            // A phase with a rate that offered nothing measured nothing:
            // its silence must not read as a phase that kept up.
            if target > 0.0 && p.duration_s > 0.0 {
                reasons.push(format!(
                    "{}: offered no request, where its schedule asked for {target:.1} req/s over {:.1} s",
                    p.name, p.duration_s
                ));
            }
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
    let open = phases.iter().any(|p| p.target_rate.is_some());
    let mut driver_bottleneck = None;
    if driver_lag.count >= LAG_SAMPLES && driver_lag.p99_ms > limit {
        let why = format!(
            "the driver was the bottleneck: p99 of its wake-up delay {:.2} ms > {limit:.2} ms",
            driver_lag.p99_ms
        );
        reasons.push(why.clone());
        driver_bottleneck = Some(why);
    } else if open && driver_lag.count < LAG_SAMPLES {
        not_judged.push(format!(
            "driver lag not judged: {} wake-ups sampled, {LAG_SAMPLES} needed for a p99",
            driver_lag.count
        ));
    }
    Validity {
        valid: reasons.is_empty(),
        reasons,
        not_judged,
        driver_bottleneck,
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

    /// Evidence of `intervals` intervals of `per` requests each, latencies
    /// drawn independently, log-uniformly between `lo_ms` and `hi_ms`.
    fn evidence(name: &str, intervals: usize, per: usize, lo_ms: f64, hi_ms: f64) -> Evidence {
        let mut rng = crate::generate::rng::SplitMix(9);
        let blocks = (0..intervals)
            .map(|_| {
                let mut h = crate::run::histogram::histogram::<u64>();
                for _ in 0..per {
                    let ms = lo_ms * (hi_ms / lo_ms).powf(rng.unit());
                    h.record((ms * 1e6) as u64).unwrap();
                }
                Block::of(Some(&h), 0)
            })
            .collect();
        BTreeMap::from([(name.to_string(), blocks)])
    }

    fn judge(limit_ms: u64, ev: &Evidence, count: u64) -> Vec<BudgetResult> {
        budgets(
            &p99(limit_ms),
            &[op("dashboard", count, 0.0)],
            ev,
            DEFAULT_CONFIDENCE,
            60.0,
        )
    }

    #[test]
    fn a_budget_is_met_missed_or_unjudged_by_its_interval_never_defaulted() {
        // 1,200 requests between 1 and 2.1 ms (p99 about 2 ms): met against 1 s.
        let far = evidence("dashboard", 60, 20, 1.0, 2.1);
        let met = judge(1000, &far, 1200);
        assert_eq!(met[0].outcome, BudgetOutcome::Pass, "{}", met[0].describe());
        assert!(
            met[0].upper.unwrap() <= 2.2 && met[0].lower.unwrap() >= 1.5,
            "{:?}",
            met[0]
        );
        assert!(
            met[0].describe().contains("interval"),
            "{}",
            met[0].describe()
        );
        // No error among them: the error-rate budget of 1% is met too.
        assert_eq!(met[1].metric, "error_rate");
        assert_eq!(met[1].outcome, BudgetOutcome::Pass, "{}", met[1].describe());
        // The month_end_close P&L of 2026-12-05: 1,233 requests, p99 19.2 s
        // against 100 ms. The sample-count rule called it unjudged; it is missed.
        let slow = evidence("dashboard", 60, 21, 5_000.0, 19_500.0);
        let missed = judge(100, &slow, 1260);
        assert_eq!(
            missed[0].outcome,
            BudgetOutcome::Fail,
            "{}",
            missed[0].describe()
        );
        assert!(
            missed[0].describe().contains("+"),
            "{}",
            missed[0].describe()
        );
        // On the budget: unjudged, with what would decide it or why nothing would.
        // p99 of log-uniform(1, 10.2 ms) is 10.2^0.99 = 9.97 ms.
        let on = evidence("dashboard", 60, 20, 1.0, 10.2);
        let close = judge(10, &on, 1200);
        assert_eq!(close[0].outcome, BudgetOutcome::Unjudged, "{:?}", close[0]);
        assert!(
            close[0].needs_seconds.is_some_and(|s| s > 60.0) || close[0].why.is_some(),
            "{:?}",
            close[0]
        );
        // A budget for an operation the run does not have is not a pass.
        let missing = budgets(
            &p99(10),
            &[op("pnl", 20_000, 1.0)],
            &far,
            DEFAULT_CONFIDENCE,
            60.0,
        );
        assert!(missing.iter().all(|b| b.outcome == BudgetOutcome::Unjudged));
        assert!(
            missing[0].describe().contains("no operation \"dashboard\""),
            "{}",
            missing[0].describe()
        );
        // An operation with no measured interval is not a pass either.
        let none = judge(10, &Evidence::new(), 1200);
        assert!(none.iter().all(|b| b.outcome == BudgetOutcome::Unjudged));
        assert!(
            none[0].describe().contains("no measured interval"),
            "{}",
            none[0].describe()
        );
    }

    /// An open phase of 10 s that offered `offered` and completed `done`.
    fn open_phase(offered: u64, done: u64, dropped: u64) -> PhaseResult {
        PhaseResult {
            name: "steady".into(),
            model: crate::run::LoadModel::Open,
            duration_s: 10.0,
            target_rate: Some(100.0),
            offered: Some(offered),
            completed: done,
            dropped,
            achieved_rate: done as f64 / 10.0,
            elapsed_s: 10.0,
            failure: None,
            early_release: None,
        }
    }

    fn lag(count: u64, p99_ms: f64) -> Latency {
        Latency {
            count,
            p99_ms,
            ..Latency::default()
        }
    }

    #[test]
    fn validity_names_each_reason_and_never_passes_on_nothing() {
        let v = scenario::Validity {
            min_rate: 0.9,
            max_driver_lag: Dur(Duration::from_millis(5)),
            confidence: 0.99,
        };
        let judge = |phases: &[PhaseResult], l: &Latency| validity(&v, phases, l, 1000);
        // Clean.
        let ok = judge(&[open_phase(1000, 1000, 0)], &lag(500, 1.0));
        assert!(
            ok.valid && ok.reasons.is_empty() && ok.not_judged.is_empty(),
            "{ok:?}"
        );
        // The rate not reached.
        let slow = judge(&[open_phase(1000, 500, 0)], &lag(500, 1.0));
        assert!(
            !slow.valid && slow.reasons[0].contains("could not keep up"),
            "{slow:?}"
        );
        // Arrivals dropped.
        let dropped = judge(&[open_phase(1000, 1000, 50)], &lag(500, 1.0));
        assert!(
            dropped.reasons.iter().any(|r| r.contains("dropped")),
            "{dropped:?}"
        );
        // A phase with a rate that offered nothing (main skipped it: valid).
        let none = judge(&[open_phase(0, 0, 0)], &lag(0, 0.0));
        assert!(
            !none.valid && none.reasons[0].contains("offered no request"),
            "{none:?}"
        );
        // A dispatcher that died (main read it as offered 0, lag 0).
        let dead = PhaseResult {
            failure: Some(
                "the dispatcher thread panicked (boom); the schedule stopped early".into(),
            ),
            ..open_phase(1000, 1000, 0)
        };
        let dead = judge(&[dead], &lag(500, 1.0));
        assert!(
            !dead.valid && dead.reasons[0].contains("dispatcher thread panicked"),
            "{dead:?}"
        );
        // The driver late, typed for capacity.
        let late = judge(&[open_phase(1000, 1000, 0)], &lag(500, 9.0));
        assert!(!late.valid && late.driver_bottleneck.is_some(), "{late:?}");
        // Too few wake-ups to place a p99: not judged, said, not a reason.
        let few = judge(&[open_phase(1000, 1000, 0)], &lag(40, 9.0));
        assert!(few.valid, "{few:?}");
        assert!(
            few.not_judged[0].contains("driver lag not judged: 40 wake-ups"),
            "{few:?}"
        );
    }

    #[test]
    fn the_interval_decides_where_the_sample_count_rule_did_not() {
        // 1,200 requests: far under 10,000, so the count rule left every p99 unjudged.
        assert!(1200 < samples_needed(0.99));
        let far = evidence("dashboard", 60, 20, 1.0, 2.1);
        assert_ne!(judge(1000, &far, 1200)[0].outcome, BudgetOutcome::Unjudged);
    }
}
