//! `rehearse capacity` (issue 18): for each variant of a scenario, the
//! highest open-loop rate at which the run is valid and every budget holds.
//! Every probe is a full measured run (its own warm-up, its own run
//! directory under the capacity directory); the search is in [`search`].

pub mod compare;
pub mod search;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::driver;
use crate::error::{Error, IoContext, Result};
use crate::estate::Estate;
use crate::exit;
use crate::run::{BudgetOutcome, VariantResult};
use crate::scenario::{self, Dur, Scenario};
use search::{End, Found, Outcome, Settings};

/// What `rehearse capacity` was asked.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    pub scenario: PathBuf,
    /// Only these variants [default: every variant of the scenario].
    pub variants: Vec<String>,
    /// The first rate [default: the scenario's peak rate].
    pub from: Option<f64>,
    /// The highest rate tried [default: 64 times `from`].
    pub max: Option<f64>,
    /// Each probe's measured length, after its warm-up.
    pub step: Duration,
    /// Each probe's warm-up [default: the scenario's, else a fifth of the step up to 5 s].
    pub warmup: Option<Duration>,
    pub resolution: f64,
    pub trials: u32,
    pub out: Option<PathBuf>,
    pub verbose: bool,
}

/// One variant's capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantCapacity {
    pub variant: String,
    pub mode: crate::schema::Mode,
    #[serde(flatten)]
    pub found: Found,
    /// The probes' run directories, in the order run.
    pub runs: Vec<String>,
    /// Each probe's measured length (s), in the same order: `--step`, or
    /// longer where a budget's percentile needs more samples at that rate.
    #[serde(default)]
    pub steps_s: Vec<f64>,
}

/// Version of the `capacity.json` layout.
pub const CAPACITY_VERSION: u32 = 1;

/// `capacity.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityReport {
    pub schema_version: u32,
    pub scenario: String,
    pub scenario_file: String,
    pub step_s: f64,
    pub warmup_s: f64,
    pub resolution: f64,
    pub trials: u32,
    pub from: f64,
    pub max: f64,
    pub variants: Vec<VariantCapacity>,
    pub exit_code: i32,
}

/// A probe's verdict from its variant's result: a pass when every budget
/// held at the rate asked for (even with the driver late: its lateness only
/// adds to response times); invalid when it did not and the driver was the
/// bottleneck, or a budget could not be judged (never a pass); a failure
/// when a budget was missed or the estate could not keep up.
///
/// The driver counts as the bottleneck when its dispatcher woke late (the
/// run's own validity check), or when the rate was not reached although
/// the estate answered fast enough for it: `max_in_flight` requests at
/// once, each taking the measured mean service time, would have carried
/// the offered rate, so the requests were not waiting on the estate.
pub fn judge(v: &VariantResult, max_in_flight: Option<u32>) -> Outcome {
    let mut driver: Vec<String> = v.validity.driver_bottleneck.iter().cloned().collect();
    let (n, service_ms) = v.operations.iter().fold((0u64, 0.0), |(n, t), o| {
        (
            n + o.service.count,
            t + o.service.mean_ms * o.service.count as f64,
        )
    });
    let offered = v
        .phases
        .iter()
        .filter_map(|p| Some(p.offered? as f64 / p.duration_s))
        .fold(0.0, f64::max);
    if let (true, Some(k), true) = (driver.is_empty() && !v.validity.valid, max_in_flight, n > 0) {
        // Little's law: requests in flight on average = achieved rate x mean service time.
        let mean_s = service_ms / n as f64 / 1e3;
        let achieved = v.phases.iter().map(|p| p.achieved_rate).fold(0.0, f64::max);
        let in_flight = achieved * mean_s;
        if in_flight < 0.9 * k as f64 && achieved < offered {
            driver.push(format!(
                "the rate was not reached ({}), yet only {in_flight:.1} of the {k} requests allowed \
                 were in flight on average ({achieved:.0} req/s x {:.3} ms): the estate was not \
                 holding them, the driver could not send them; offer the load from more machines (shards)",
                v.validity.reasons.join("; "),
                mean_s * 1e3
            ));
        }
    }
    // A probe that held every budget at the rate asked for passed even
    // though the driver woke late: a request's response time counts from
    // its intended start, so the driver's lateness only adds to it, and the
    // estate did at least that well. Only a failure needs the driver cleared.
    let clean_pass = v.validity.reasons.iter().all(|r| driver.contains(r))
        && !v.budgets.is_empty()
        && v.budgets.iter().all(|b| b.outcome == BudgetOutcome::Pass);
    if !driver.is_empty() && !clean_pass {
        return Outcome::Invalid {
            reasons: driver,
            driver_limited: true,
        };
    }
    if clean_pass {
        return Outcome::Pass;
    }
    // A budget the probe measured but could not decide (its interval
    // straddles the limit, as it does near the knee) is not shown to hold:
    // for a capacity, that is a failure at this rate. One it could not
    // measure at all (no such operation, too few intervals) leaves the
    // probe invalid.
    let unjudged: Vec<String> = v
        .budgets
        .iter()
        .filter(|b| b.outcome == BudgetOutcome::Unjudged && b.actual.is_none())
        .map(|b| format!("{} {}: {}", b.operation, b.metric, b.describe()))
        .collect();
    if !unjudged.is_empty() {
        return Outcome::Invalid {
            reasons: unjudged,
            driver_limited: false,
        };
    }
    let mut reasons: Vec<String> = v.validity.reasons.clone();
    reasons.extend(
        v.budgets
            .iter()
            .filter(|b| b.outcome != BudgetOutcome::Pass)
            .map(|b| {
                let not = if b.outcome == BudgetOutcome::Fail {
                    ""
                } else {
                    "not shown to hold: "
                };
                format!("{} {}: {not}{}", b.operation, b.metric, b.describe())
            }),
    );
    if v.budgets.is_empty() {
        reasons.push("the scenario sets no budget: capacity is judged against budgets".into());
    }
    if reasons.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail { reasons }
    }
}

/// The scenario's peak open rate.
fn peak_rate(s: &Scenario) -> Option<f64> {
    s.phases
        .iter()
        .filter_map(|p| match p.load {
            scenario::Load::Open { rate, ramp_to, .. } => Some(rate.max(ramp_to)),
            scenario::Load::Closed { .. } => None,
        })
        .reduce(f64::max)
}

/// Longest probe a search will run: past it, `from` is too low for the
/// budgets' percentiles and the search is refused up front.
pub const MAX_PROBE: Duration = Duration::from_secs(30 * 60);

/// The measured length a probe at `rate` needs so that every budget can be
/// judged: a percentile q needs 100 / (1 - q) samples of its operation
/// (p99: 10,000), and an operation gets its weight's share of the requests,
/// at the phases' mean rate. 15% is added for requests the estate sheds.
/// Returns the length and the budget that sets it.
pub fn min_step(s: &Scenario, rate: f64) -> (Duration, Option<String>) {
    let total_w: f64 = s.mix.iter().map(|m| m.weight).sum();
    // The phases' mean rate as a share of the peak, once scaled to `rate`.
    let (mut reqs, mut secs, mut peak) = (0.0, 0.0, 0.0f64);
    for p in &s.phases {
        if let scenario::Load::Open { rate, ramp_to, .. } = p.load {
            let d = p.duration.0.as_secs_f64();
            reqs += (rate + ramp_to) / 2.0 * d;
            secs += d;
            peak = peak.max(rate.max(ramp_to));
        }
    }
    if total_w <= 0.0 || secs <= 0.0 || peak <= 0.0 || rate <= 0.0 {
        return (Duration::ZERO, None);
    }
    let mean = rate * reqs / secs / peak;
    let mut worst = (0.0f64, None);
    for (op, b) in &s.budgets {
        let share = s
            .mix
            .iter()
            .filter(|m| &m.name == op)
            .map(|m| m.weight)
            .sum::<f64>()
            / total_w;
        if share <= 0.0 {
            continue;
        }
        for (label, q, _) in b.limits() {
            // Decided at half the budget (`rehearse check`'s forecast).
            let needs = if q >= 1.0 {
                1.0
            } else {
                crate::run::bound::samples_to_decide_at(q, 0.5, s.validity.confidence)
            };
            let t = needs * 1.15 / (share * mean);
            if t > worst.0 {
                worst = (
                    t,
                    Some(format!(
                        "{op} {label} needs {needs:.0} samples, {op} is {:.0}% of the mix",
                        share * 100.0
                    )),
                );
            }
        }
    }
    (Duration::from_secs_f64(worst.0.ceil()), worst.1)
}

/// Run the search for every variant; writes `capacity.json` into the directory.
pub async fn capacity(
    estate: &Estate,
    opts: &CapacityOptions,
) -> Result<(PathBuf, CapacityReport)> {
    let mut base = scenario::load(&opts.scenario)?;
    if base.has_closed_phase() {
        return Err(Error::Usage(format!(
            "{}: capacity is searched in open-loop rates, and this scenario has a closed (users) phase",
            opts.scenario.display()
        )));
    }
    if base.budgets.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the scenario sets no [budgets]; capacity is the highest rate within every budget",
            opts.scenario.display()
        )));
    }
    if !opts.variants.is_empty() {
        base.select_variants(&opts.variants)?;
    }
    let peak = peak_rate(&base)
        .ok_or_else(|| Error::Usage(format!("{}: no open phase", opts.scenario.display())))?;
    let from = opts.from.unwrap_or(peak);
    let max = opts.max.unwrap_or(from * 64.0);
    if !(from > 0.0 && max >= from) {
        return Err(Error::Usage(format!(
            "--from {from} and --max {max}: need 0 < from <= max"
        )));
    }
    if !(opts.resolution > 0.0 && opts.resolution < 1.0) {
        return Err(Error::Usage(
            "--resolution is a share between 0 and 100%".into(),
        ));
    }
    let warmup = opts.warmup.unwrap_or_else(|| {
        if base.warmup.0.is_zero() {
            (opts.step / 5).min(Duration::from_secs(5))
        } else {
            base.warmup.0
        }
    });
    let writes: Vec<&str> = base
        .mix
        .iter()
        .filter(|m| m.operation.is_write())
        .map(|m| m.name.as_str())
        .collect();
    if opts.verbose && !writes.is_empty() {
        eprintln!(
            "capacity: {} writes ({}): every probe adds rows, so later probes run on a larger estate; \
             a rate whose trials disagree is listed as drift",
            base.name,
            writes.join(", ")
        );
    }
    let (longest, why) = min_step(&base, from);
    if longest > MAX_PROBE {
        return Err(Error::Usage(format!(
            "{}: a probe at --from {from} req/s would have to measure {} s ({}), more than {} s; \
             start higher (--from) or budget a lower percentile",
            opts.scenario.display(),
            longest.as_secs(),
            why.unwrap_or_default(),
            MAX_PROBE.as_secs()
        )));
    }
    let dir = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(crate::run::run_id(
            SystemTime::now(),
            &format!("capacity-{}", base.name),
        ))
    });
    std::fs::create_dir_all(&dir).io("creating the capacity directory", &dir)?;
    let settings = Settings {
        from,
        max,
        resolution: opts.resolution,
        trials: opts.trials.max(1),
        growth: 2.0,
    };
    let mut variants = Vec::new();
    for variant in base.variants.clone() {
        let mut runs = Vec::new();
        let mut steps = Vec::new();
        let found = search::search(&settings, |rate, trial| {
            let mut s = base.clone();
            s.variants = vec![variant.clone()];
            s.warmup = Dur(warmup);
            let dir = dir.join(format!("{}-{:.0}-t{trial}", variant.name, rate));
            runs.push(dir.display().to_string());
            let verbose = opts.verbose;
            let opts_step = opts.step;
            let vname = variant.name.clone();
            let (need, why) = min_step(&base, rate);
            let step = opts.step.max(need);
            steps.push(step.as_secs_f64());
            let in_flight = s.phases.iter().find_map(|p| match p.load {
                scenario::Load::Open { max_in_flight, .. } => Some(max_in_flight),
                scenario::Load::Closed { .. } => None,
            });
            async move {
                s.set_rate(rate)?;
                s.set_duration(warmup + step);
                s.warmup = Dur(warmup);
                if verbose {
                    let longer = match why {
                        Some(why) if step > opts_step => format!(" (longer than --step: {why})"),
                        _ => String::new(),
                    };
                    eprintln!(
                        "capacity {vname}: {rate:.1} req/s, trial {trial}, {:.0} s measured{longer} ...",
                        step.as_secs_f64()
                    );
                }
                let r = driver::run_one(estate, &s, &dir, false).await?;
                let v = r.variants.first().ok_or_else(|| {
                    Error::Lab(format!("the probe at {rate:.1} req/s measured nothing"))
                })?;
                let o = judge(v, in_flight);
                if verbose {
                    eprintln!("capacity {vname}: {rate:.1} req/s: {}", describe(&o));
                }
                Ok::<_, Error>(o)
            }
        })
        .await?;
        variants.push(VariantCapacity {
            variant: variant.name.clone(),
            mode: variant.mode,
            found,
            runs,
            steps_s: steps,
        });
    }
    let exit_code = exit_code(&variants);
    let report = CapacityReport {
        schema_version: CAPACITY_VERSION,
        scenario: base.name.clone(),
        scenario_file: opts.scenario.display().to_string(),
        step_s: opts.step.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        resolution: opts.resolution,
        trials: settings.trials,
        from,
        max,
        variants,
        exit_code,
    };
    crate::fsutil::write_atomic(
        &dir.join("capacity.json"),
        &serde_json::to_vec_pretty(&report).expect("the capacity report serializes"),
    )?;
    Ok((dir, report))
}

/// 3 when any search ended on the driver's limit or an invalid probe;
/// else 1 when even `--from` failed for any variant; else 0.
pub fn exit_code(v: &[VariantCapacity]) -> i32 {
    if v.iter()
        .any(|c| matches!(c.found.end, End::DriverLimited | End::Invalid))
    {
        exit::INVALID
    } else if v.iter().any(|c| c.found.end == End::FromFails) {
        exit::FAIL
    } else {
        exit::OK
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Pass => "pass".into(),
        Outcome::Fail { reasons } => format!("fail: {}", reasons.join("; ")),
        Outcome::Invalid { reasons, .. } => format!("invalid: {}", reasons.join("; ")),
    }
}

/// Rates whose trials disagreed (a pass and a failure at one rate), in the
/// order run: the estate or the machine changed during the search (a
/// scenario that writes grows the estate probe by probe).
pub fn drift(f: &Found) -> Vec<String> {
    let mut rates: Vec<f64> = Vec::new();
    for p in &f.probes {
        if !rates.contains(&p.rate) {
            rates.push(p.rate);
        }
    }
    rates
        .into_iter()
        .filter_map(|r| {
            let seen: Vec<&search::Probe> = f.probes.iter().filter(|p| p.rate == r).collect();
            let passed = seen.iter().any(|p| p.outcome.passed());
            let failed = seen.iter().any(|p| !p.outcome.passed());
            (passed && failed).then(|| {
                format!(
                    "{r:.1} req/s: {}",
                    seen.iter()
                        .map(|p| format!(
                            "trial {} {}",
                            p.trial,
                            match &p.outcome {
                                Outcome::Pass => "pass",
                                Outcome::Fail { .. } => "fail",
                                Outcome::Invalid { .. } => "invalid",
                            }
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect()
}

impl CapacityReport {
    /// Each variant's rates whose trials disagreed, as lines.
    pub fn drift_lines(&self) -> String {
        let mut out = String::new();
        for v in &self.variants {
            for d in drift(&v.found) {
                out += &format!("{}: trials disagreed at {d}\n", v.variant);
            }
        }
        out
    }

    /// The table: variant, capacity, first failing rate and why; and each
    /// variant's capacity over the first's.
    pub fn table(&self) -> String {
        let base = self.variants.first().and_then(|v| v.found.capacity);
        let rows: Vec<Vec<String>> = self
            .variants
            .iter()
            .map(|v| {
                let f = &v.found;
                vec![
                    v.variant.clone(),
                    v.mode.to_string(),
                    match (f.end, f.capacity) {
                        (End::AtLeastMax, Some(c)) => format!(">= {c:.1}"),
                        (End::DriverLimited, _) => "unknown (driver-limited)".into(),
                        (End::Invalid, _) => "unknown (invalid probe)".into(),
                        (_, Some(c)) => format!("{c:.1}"),
                        (_, None) => "none".into(),
                    },
                    f.first_failing.map_or("-".into(), |r| format!("{r:.1}")),
                    f.reasons.join("; "),
                    match (base, f.capacity, f.end) {
                        (Some(b), Some(c), End::Found | End::AtLeastMax) if b > 0.0 => {
                            format!("{:.2}x", c / b)
                        }
                        _ => "-".into(),
                    },
                    f.probes.len().to_string(),
                ]
            })
            .collect();
        crate::text::table(
            &[
                "variant",
                "mode",
                "capacity req/s",
                "first failing req/s",
                "why it failed",
                "vs first",
                "probes",
            ],
            &rows,
        )
    }
}

/// Read a capacity directory's capacity.json, if it has one.
pub fn read(dir: &Path) -> Result<Option<CapacityReport>> {
    crate::fsutil::read_json(&dir.join("capacity.json"), CAPACITY_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{BudgetResult, Latency, LoadModel, OpResult, PhaseResult, Validity};

    /// A probe's variant: one open phase offered `offered` req/s and
    /// achieving `achieved`, the budgets' outcomes, validity's reasons.
    fn probe(
        offered: f64,
        achieved: f64,
        budgets: &[BudgetOutcome],
        reasons: &[&str],
        driver: Option<&str>,
    ) -> VariantResult {
        let service = Latency {
            count: 1000,
            mean_ms: 2.0,
            ..Latency::default()
        };
        VariantResult {
            variant: scenario::Variant::defaults().remove(0),
            started_s: 0.0,
            seconds: 10.0,
            warmup_s: 0.0,
            closed_loop: false,
            phases: vec![PhaseResult {
                name: "steady".into(),
                model: LoadModel::Open,
                duration_s: 10.0,
                target_rate: Some(offered),
                offered: Some((offered * 10.0) as u64),
                completed: (achieved * 10.0) as u64,
                dropped: 0,
                achieved_rate: achieved,
                elapsed_s: 10.0,
                failure: None,
                early_release: None,
            }],
            operations: vec![OpResult {
                name: "dashboard".into(),
                operation: scenario::Operation::Dashboard,
                count: 1000,
                ok: 1000,
                errors: Default::default(),
                error_rate: 0.0,
                throughput: achieved,
                late: 0,
                response: service.clone(),
                service: service.clone(),
                lag: Latency::default(),
            }],
            driver_lag: Latency::default(),
            driver_cpu_seconds: 0.0,
            driver_cpu_us_per_op: 0.0,
            driver_peak_rss_kib: None,
            driver_runtime: None,
            database: crate::run::Database {
                repo: Default::default(),
                samples: Vec::new(),
                top_statements: None,
                attribution: None,
            },
            timeline: Vec::new(),
            budgets: budgets
                .iter()
                .map(|&outcome| BudgetResult {
                    operation: "dashboard".into(),
                    metric: "p95".into(),
                    limit: 10.0,
                    actual: Some(if outcome == BudgetOutcome::Fail {
                        20.0
                    } else {
                        5.0
                    }),
                    lower: Some(4.0),
                    upper: Some(if outcome == BudgetOutcome::Pass {
                        8.0
                    } else {
                        30.0
                    }),
                    confidence: 0.99,
                    samples: 1000,
                    effective_samples: 500.0,
                    needs: None,
                    needs_seconds: None,
                    outcome,
                    why: None,
                })
                .collect(),
            validity: Validity {
                valid: reasons.is_empty(),
                reasons: reasons.iter().map(|r| r.to_string()).collect(),
                not_judged: Vec::new(),
                driver_bottleneck: driver.map(str::to_string),
            },
            jobs: Vec::new(),
        }
    }

    #[test]
    fn a_probe_is_judged_by_its_budgets_and_the_driver_by_its_typed_reason() {
        use BudgetOutcome::*;
        assert_eq!(
            judge(&probe(100.0, 100.0, &[Pass], &[], None), Some(8)),
            Outcome::Pass
        );
        assert!(matches!(
            judge(&probe(100.0, 100.0, &[Fail], &[], None), Some(8)),
            Outcome::Fail { .. }
        ));
        // Measured but not decided: not shown to hold, a failure at this rate.
        assert!(matches!(
            judge(&probe(100.0, 100.0, &[Unjudged], &[], None), Some(8)),
            Outcome::Fail { .. }
        ));
        // No budget: never a pass.
        assert!(matches!(
            judge(&probe(100.0, 100.0, &[], &[], None), Some(8)),
            Outcome::Fail { .. }
        ));
        // The driver's own reason, typed: driver-limited, whatever its words.
        let lag = "p99 of wake-up delay 9 ms > 5 ms";
        assert_eq!(
            judge(&probe(100.0, 100.0, &[Fail], &[lag], Some(lag)), Some(8)),
            Outcome::Invalid {
                reasons: vec![lag.into()],
                driver_limited: true
            }
        );
        // The same words without the typed field are the estate's shortfall.
        let words = "the driver was the bottleneck (quoted by a drill)";
        assert!(matches!(
            judge(&probe(100.0, 100.0, &[Fail], &[words], None), Some(8)),
            Outcome::Fail { .. }
        ));
        // A driver that woke late on a probe that held every budget: a pass.
        assert_eq!(
            judge(&probe(100.0, 100.0, &[Pass], &[lag], Some(lag)), Some(8)),
            Outcome::Pass
        );
        // Rate not reached with few requests in flight (Little's law: 60 x
        // 2 ms = 0.12 of 8): the driver could not send them.
        let short = "steady: achieved 60.0 req/s of 100.0 offered";
        assert!(matches!(
            judge(&probe(100.0, 60.0, &[Pass], &[short], None), Some(8)),
            Outcome::Invalid {
                driver_limited: true,
                ..
            }
        ));
        // Rate not reached with every slot busy: the estate held them.
        let mut busy = probe(100.0, 60.0, &[Pass], &[short], None);
        busy.operations[0].service.mean_ms = 200.0;
        assert!(matches!(judge(&busy, Some(8)), Outcome::Fail { .. }));
    }

    #[test]
    fn a_probe_is_long_enough_for_the_budgets_percentiles() {
        let s = scenario::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/reporting_day.toml"
        )))
        .unwrap();
        // ledger is 15% of the mix and budgets p95: what deciding a p95 at
        // half its budget needs (about 930), x 1.15 / (0.15 x rate).
        let needs = crate::run::bound::samples_to_decide_at(0.95, 0.5, 0.99);
        let (t, why) = min_step(&s, 300.0);
        assert_eq!(t.as_secs_f64(), (needs * 1.15 / 45.0).ceil(), "{why:?}");
        assert!(why.unwrap().starts_with("ledger p95"));
        let (t, _) = min_step(&s, 3000.0);
        assert_eq!(t.as_secs_f64(), (needs * 1.15 / 450.0).ceil());
        // A ramp from half the peak offers three quarters of its requests.
        let mut ramp = s.clone();
        if let scenario::Load::Open { rate, ramp_to, .. } = &mut ramp.phases[0].load {
            *ramp_to = *rate;
            *rate /= 2.0;
        }
        assert_eq!(
            min_step(&ramp, 3000.0).0.as_secs_f64(),
            (needs * 1.15 / 450.0 / 0.75).ceil()
        );
    }
}
