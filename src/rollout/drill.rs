//! `rehearse rollout drill`: the phased rollout rehearsed under load. With
//! the workload running (one variant following the flag and its rollout, as
//! a service would), it widens step by step, holds each step, checks every
//! acknowledged write on both sides after each, rolls back from one step to
//! 0 and widens again, and verifies the sides. Latency is measured per
//! cohort: each request is tagged with the mode whose tables it used, so
//! the pilot and the rest are compared in one run, under the same load, at
//! the same moment, on the same machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::change::{self, Change, ChangeReport};
use super::percent_text;
use crate::cutover::verify::{self, VerifyOptions};
use crate::cutover::{self, backfill, CutoverPhase, StepOptions};
use crate::drill::{self, workload, Harness, Start, StepLatency};
use crate::driver::cohorts::Cohorts;
use crate::driver::ledger::{Check, Ledger, LedgerCheck};
use crate::driver::live::Live;
use crate::driver::Hooks;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::run::{CohortLatency, Marker, Status};
use crate::scenario::{Operation, Scenario};
use crate::schema::Mode;
use crate::{db, seed};

/// What the drill does.
#[derive(Clone)]
pub struct DrillOptions {
    /// The scenario, variant, rate, steady period, run directory and verbosity.
    pub common: drill::Options,
    /// The percentages to widen to, in basis points, ascending.
    pub steps: Vec<u16>,
    /// After holding this step, roll back to 0 and widen to it again.
    pub rollback_at: Option<u16>,
    pub hold: Duration,
    pub step: StepOptions,
    pub verify: VerifyOptions,
    pub backfill: backfill::BackfillOptions,
}

/// What one stretch of the drill was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// Everyone on legacy, before the first change: the baseline.
    Steady,
    /// A change and the flag's TTL after it: not judged.
    Transition,
    /// A step held: measured and judged.
    Hold,
    /// Ledger checks and verifies after a hold.
    Check,
}

/// One stretch of the drill.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub name: String,
    pub kind: SpanKind,
    /// The rollout in force (basis points).
    pub basis_points: u16,
    pub start_s: f64,
    pub end_s: f64,
    pub change: Option<ChangeReport>,
    /// Checks of every acknowledged write, one per side.
    pub ledger: Vec<LedgerCheck>,
    /// A cutover verify run in this span: passed, and its summary.
    pub verify: Option<(bool, String)>,
}

/// Requests that used the wrong side for the rollout in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misrouted {
    pub span: String,
    pub operation: String,
    pub cohort: Mode,
    pub requests: u64,
}

/// Version of the `rollout.json` layout.
pub const REPORT_VERSION: u32 = 1;

/// `rollout.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    pub schema_version: u32,
    pub status: Status,
    /// No acknowledged write missing, differing or resurrected on either
    /// side; every verify passed; no request on the wrong side.
    pub ok: bool,
    pub reasons: Vec<String>,
    pub scenario: String,
    pub database: String,
    pub salt: String,
    /// Organizations on the deny list (kept from before the drill): they
    /// stay on legacy at 100%, which is then not judged for routing.
    pub denied: usize,
    pub spans: Vec<Span>,
    /// The workload over each span, all cohorts together.
    pub latency: Vec<StepLatency>,
    /// Per span, operation and cohort.
    pub cohorts: Vec<CohortLatency>,
    pub misrouted: Vec<Misrouted>,
    /// With the workload stopped: exact, both sides.
    pub final_ledger: Vec<LedgerCheck>,
    pub final_verify: Option<(bool, String)>,
    pub workload_errors: u64,
    pub exit_code: i32,
}

/// The file the drill writes.
pub const FILE: &str = "rollout.json";

/// Read a run directory's rollout.json, if it has one; a field this build
/// does not know is refused with its path.
pub fn read(dir: &std::path::Path) -> Result<Option<DrillReport>> {
    crate::fsutil::read_json(&dir.join(FILE), REPORT_VERSION)
}

/// The workload the drill runs: as the cutover drill's.
fn drill_scenario(opts: &DrillOptions) -> Result<Scenario> {
    workload::flag_workload(&opts.common, "rollout")
}

/// The sequence of rollouts: each step, and after `rollback_at`, back to 0
/// and up to it again.
pub fn plan(steps: &[u16], rollback_at: Option<u16>) -> Result<Vec<(String, u16)>> {
    if steps.is_empty() || steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::Usage(
            "--steps must be ascending percentages, e.g. 1,10,50,100".into(),
        ));
    }
    if steps[0] == 0 {
        return Err(Error::Usage(
            "--steps start above 0: 0 is the baseline".into(),
        ));
    }
    if let Some(r) = rollback_at {
        if !steps.contains(&r) {
            return Err(Error::Usage(format!(
                "--rollback-at {} is not one of --steps",
                percent_text(r)
            )));
        }
    }
    let mut out = Vec::new();
    for &bp in steps {
        out.push((percent_text(bp), bp));
        if Some(bp) == rollback_at {
            out.push(("0% (rolled back)".to_string(), 0));
            out.push((format!("{} again", percent_text(bp)), bp));
        }
    }
    Ok(out)
}

pub async fn drill(estate: &Estate, opts: &DrillOptions) -> Result<(PathBuf, DrillReport)> {
    let s = drill_scenario(opts)?;
    let sequence = plan(&opts.steps, opts.rollback_at)?;
    let mut client = db::connect(&estate.primary.url).await?;
    cutover::preflight(&client, estate, &opts.step, "rollout drill").await?;
    let database = db::current_database(&client).await?;
    match seed::read_record(&client).await? {
        Some(r) if r.is_complete() => {}
        _ => {
            return Err(Error::Usage(format!(
                "{} holds no complete seed: run `rehearse seed --mode legacy` first",
                estate.primary.redacted()
            )))
        }
    }
    let say = |at: f64, line: &str| {
        if opts.common.verbose {
            eprintln!("[{at:7.1} s] {line}");
        }
    };
    // Both sides complete and mirrored, and a passing verify, before any load.
    let state = cutover::read_state(&client).await?;
    if matches!(
        state.phase,
        CutoverPhase::Switched | CutoverPhase::Finalized
    ) {
        return Err(Error::Refused(format!(
            "rollout drill refused: the cutover is {}, so every organization is already partitioned; \
             the rollout is rehearsed before the switch (`rehearse cutover rollback`, or \
             `rehearse cutover reset` to start over)",
            state.phase
        )));
    }
    if state.phase == CutoverPhase::NotStarted {
        cutover::refuse_filled_partitioned(&client, &database, "rollout drill").await?;
    }
    let mut sopts = opts.step.clone();
    sopts.verbose = opts.common.verbose;
    say(
        0.0,
        "setting up: the cutover's prepare, dual-write, backfill and verify (each skipped if done)",
    );
    cutover::prepare(&mut client, estate, &sopts).await?;
    cutover::dual_write(&mut client, estate, &sopts).await?;
    backfill::backfill(&mut client, estate, &sopts, &opts.backfill).await?;
    let v = verify::verify(&mut client, estate, &sopts, &opts.verify).await?;
    if let Some(v) = v.verify.as_ref().filter(|v| !v.ok) {
        return Err(Error::Refused(format!(
            "rollout drill refused: the sides differ before the rollout begins:\n{}",
            v.describe()
        )));
    }
    let (_, start) = change::read(&client).await?;
    if start.basis_points > 0 || !start.allow.is_empty() {
        say(
            0.0,
            &format!("the rollout is at {}: back to 0 first", start.percent()),
        );
        change::apply(&mut client, estate, &Change::Rollback { to: 0 }, &sopts).await?;
    }
    let (_, at0) = change::read(&client).await?;
    let (salt, denied) = (at0.salt.clone(), at0.deny.len());

    let ledger = Arc::new(Ledger::default());
    let cohorts = Arc::new(Cohorts::default());
    let h = Harness::start(
        estate,
        &s,
        Start {
            kind: "rollout",
            options: &opts.common,
            hooks: Hooks {
                follow_flag: true,
                ledger: Some(ledger.clone()),
                live: Some(Arc::new(Live::default())),
                cohorts: Some(cohorts.clone()),
                ..Default::default()
            },
            metrics_required: false,
            on_interrupt: "stopping after the step in progress; what was measured is kept",
        },
    )
    .await?;
    let settle = s.timeout.0.min(Duration::from_secs(2)) + Duration::from_millis(200);
    let mut spans: Vec<Span> = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    let open = |spans: &mut Vec<Span>, name: String, kind: SpanKind, bp: u16| {
        cohorts.set_span(spans.len());
        spans.push(Span {
            name,
            kind,
            basis_points: bp,
            start_s: h.now(),
            end_s: h.now(),
            change: None,
            ledger: Vec::new(),
            verify: None,
        });
    };
    let playbook: Result<()> = async {
        open(&mut spans, "steady".into(), SpanKind::Steady, 0);
        say(
            h.now(),
            &format!(
                "steady: {} s, everyone on legacy",
                opts.common.steady.as_secs()
            ),
        );
        h.hold(opts.common.steady).await;
        for (name, bp) in &sequence {
            if h.stopped() {
                return Err(Error::Lab(format!("stopped before {name}")));
            }
            let from = spans.last().map_or(0, |s| s.basis_points);
            if let Some(s) = spans.last_mut() {
                s.end_s = h.now();
            }
            open(
                &mut spans,
                format!("-> {}", percent_text(*bp)),
                SpanKind::Transition,
                *bp,
            );
            let ch = if *bp >= from {
                Change::Widen { percent: *bp }
            } else {
                Change::Rollback { to: *bp }
            };
            let mut quiet = sopts.clone();
            quiet.verbose = false;
            let r = change::apply(&mut client, estate, &ch, &quiet).await?;
            say(h.now(), &format!("{name}: {}", r.summary));
            spans.last_mut().expect("opened").change = Some(r);
            // Every service has re-read the rollout, and calls that began before have ended.
            tokio::time::sleep(crate::repo::DEFAULT_FLAG_TTL + settle).await;
            spans.last_mut().expect("opened").end_s = h.now();
            open(&mut spans, name.clone(), SpanKind::Hold, *bp);
            h.hold(opts.hold).await;
            spans.last_mut().expect("opened").end_s = h.now();
            open(&mut spans, format!("check {name}"), SpanKind::Check, *bp);
            let mut checks = Vec::new();
            for side in [Mode::Legacy, Mode::Partitioned] {
                let c = ledger.check(&client, side, Check::Live { settle }).await?;
                say(h.now(), &format!("{name}: writes on {side}: {c}"));
                checks.push(c);
            }
            let last = spans.last_mut().expect("opened");
            last.ledger = checks;
            // The sides are verified after the rollback and after the last step.
            if *bp == 0 || Some(bp) == sequence.last().map(|x| &x.1) {
                let v = verify::verify(&mut client, estate, &quiet, &opts.verify).await?;
                let v = v.verify.expect("verify reports");
                say(
                    h.now(),
                    &format!(
                        "{name}: verify: {}",
                        v.describe().lines().next().unwrap_or("")
                    ),
                );
                spans.last_mut().expect("opened").verify =
                    Some((v.ok, v.describe().lines().next().unwrap_or("").to_string()));
            }
            spans.last_mut().expect("opened").end_s = h.now();
        }
        Ok(())
    }
    .await;
    let run = h.stop_workload().await?;
    if let Err(e) = &playbook {
        reasons.push(e.to_string());
    }
    let mut result = match run {
        Ok(r) => Some(r),
        Err(e) => {
            reasons.push(e);
            None
        }
    };
    let mut final_ledger = Vec::new();
    for side in [Mode::Legacy, Mode::Partitioned] {
        let c = ledger.check(&client, side, Check::Final).await?;
        say(h.now(), &format!("final check of {side}: {c}"));
        final_ledger.push(c);
    }
    let fv = verify::verify(&mut client, estate, &sopts, &opts.verify)
        .await?
        .verify
        .map(|v| (v.ok, v.describe().lines().next().unwrap_or("").to_string()));
    let mut judged: Vec<(String, &LedgerCheck)> = spans
        .iter()
        .flat_map(|s| {
            s.ledger
                .iter()
                .map(move |c| (format!("{}, {} side", s.name, c.side), c))
        })
        .collect();
    judged.extend(
        final_ledger
            .iter()
            .map(|c| (format!("final, {} side", c.side), c)),
    );
    reasons.extend(drill::ledger_reasons(ledger.acknowledged(), true, &judged));
    for (name, v) in spans
        .iter()
        .filter_map(|s| s.verify.as_ref().map(|v| (s.name.clone(), v)))
        .chain(fv.as_ref().map(|v| ("final".to_string(), v)))
    {
        if !v.0 {
            reasons.push(format!("verify at {name} failed: {}", v.1));
        }
    }
    if fv.is_none() {
        reasons.push("the final verify reported nothing".into());
    }
    let names: Vec<(String, Operation)> = s
        .mix
        .iter()
        .map(|m| (m.name.clone(), m.operation))
        .collect();
    let (cohort_rows, misrouted) = cohort_latency(&cohorts, &spans, &names, denied > 0);
    for m in &misrouted {
        reasons.push(format!(
            "{}: {} {} requests used the {} tables against the rollout",
            m.span, m.requests, m.operation, m.cohort
        ));
    }
    let latency = match &result {
        Some(r) => {
            let sp: Vec<(String, f64, f64)> = spans
                .iter()
                .map(|x| (x.name.clone(), x.start_s, x.end_s))
                .collect();
            drill::span_latency(&h.dir, r, &sp).unwrap_or_default()
        }
        None => Vec::new(),
    };
    let was_interrupted = h.interrupted();
    let out = drill::outcome(
        was_interrupted,
        playbook.is_err() || result.is_none(),
        &reasons,
    );
    if let Some(r) = result.as_mut() {
        let markers = spans
            .iter()
            .filter(|x| x.kind != SpanKind::Check)
            .map(|x| Marker {
                name: x.name.clone(),
                start_s: x.start_s,
                end_s: x.end_s,
            })
            .collect();
        r.cohorts = cohort_rows.clone();
        let failed = (out.status == Status::Failed).then(|| reasons.first().cloned());
        drill::write_run(&h.dir, r, markers, was_interrupted, failed.flatten())?;
    }
    let report = DrillReport {
        schema_version: REPORT_VERSION,
        status: out.status,
        ok: out.ok,
        reasons,
        scenario: opts.common.scenario.display().to_string(),
        database,
        salt,
        denied,
        spans,
        latency,
        cohorts: cohort_rows,
        misrouted,
        final_ledger,
        final_verify: fv,
        workload_errors: drill::workload_errors(result.as_ref()),
        exit_code: out.exit_code,
    };
    crate::fsutil::write_atomic(
        &h.dir.join(FILE),
        &serde_json::to_vec_pretty(&report).expect("the drill report serializes"),
    )?;
    Ok((h.dir.clone(), report))
}

/// Percentiles per span, operation and cohort, and the requests that used
/// the wrong side: at 0% no organization's call may use the partitioned
/// tables, at 100% none may use legacy, and a call spanning organizations
/// (the portfolio) stays on legacy until the switch. Transition spans are
/// not judged: calls begun before a change may end after it. With a deny
/// list, legacy at 100% is its organizations' due, so 100% is not judged.
fn cohort_latency(
    cohorts: &Cohorts,
    spans: &[Span],
    ops: &[(String, Operation)],
    denied: bool,
) -> (Vec<CohortLatency>, Vec<Misrouted>) {
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    let hist: BTreeMap<_, _> = cohorts.take();
    for ((span, op, mode), h) in &hist {
        let (Some(sp), Some((name, operation))) = (spans.get(*span), ops.get(*op)) else {
            continue;
        };
        let q = |x: f64| h.value_at_quantile(x) as f64 / 1e6;
        rows.push(CohortLatency {
            span: sp.name.clone(),
            operation: name.clone(),
            cohort: *mode,
            requests: h.len(),
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: h.max() as f64 / 1e6,
        });
        if !matches!(sp.kind, SpanKind::Steady | SpanKind::Hold | SpanKind::Check) {
            continue;
        }
        let cross_tenant = *operation == Operation::Portfolio;
        let misrouted = if cross_tenant {
            *mode == Mode::Partitioned
        } else {
            (sp.basis_points == 0 && *mode == Mode::Partitioned)
                || (sp.basis_points == super::ALL && *mode == Mode::Legacy && !denied)
        };
        if misrouted {
            wrong.push(Misrouted {
                span: sp.name.clone(),
                operation: name.clone(),
                cohort: *mode,
                requests: h.len(),
            });
        }
    }
    (rows, wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_BP: u16 = super::super::ALL;

    #[test]
    fn the_plan_rolls_back_from_its_step_and_widens_again() {
        let p = plan(&[100, 1_000, 5_000, 10_000], Some(5_000)).unwrap();
        let names: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            ["1%", "10%", "50%", "0% (rolled back)", "50% again", "100%"]
        );
        assert_eq!(p[3].1, 0);
        assert!(plan(&[1_000, 100], None).is_err());
        assert!(plan(&[0, 100], None).is_err());
        assert!(plan(&[100], Some(5_000)).is_err());
    }

    fn span(name: &str, kind: SpanKind, bp: u16) -> Span {
        Span {
            name: name.into(),
            kind,
            basis_points: bp,
            start_s: 0.0,
            end_s: 0.0,
            change: None,
            ledger: vec![],
            verify: None,
        }
    }

    #[test]
    fn a_request_on_the_wrong_side_is_misrouted_except_in_transitions() {
        let spans = [
            span("0% (rolled back)", SpanKind::Hold, 0),
            span("-> 100%", SpanKind::Transition, ALL_BP),
            span("100%", SpanKind::Hold, ALL_BP),
        ];
        let ops = [
            ("dashboard".to_string(), Operation::Dashboard),
            ("portfolio".to_string(), Operation::Portfolio),
        ];
        let c = Cohorts::default();
        let ms = Duration::from_millis(3);
        c.set_span(0);
        c.record(0, Mode::Legacy, ms);
        c.record(0, Mode::Partitioned, ms); // wrong at 0%
        c.set_span(1);
        c.record(0, Mode::Legacy, ms); // in a transition: not judged
        c.set_span(2);
        c.record(0, Mode::Partitioned, ms);
        c.record(1, Mode::Legacy, ms); // the portfolio stays on legacy
        c.record(0, Mode::Legacy, ms); // wrong at 100%, unless denied
        let (rows, wrong) = cohort_latency(&c, &spans, &ops, false);
        assert_eq!(rows.len(), 6);
        let w: Vec<(&str, Mode)> = wrong.iter().map(|m| (m.span.as_str(), m.cohort)).collect();
        assert_eq!(
            w,
            [
                ("0% (rolled back)", Mode::Partitioned),
                ("100%", Mode::Legacy)
            ]
        );
        c.set_span(2);
        c.record(0, Mode::Legacy, ms);
        c.record(1, Mode::Partitioned, ms); // a portfolio on partitioned before the switch
        let (_, wrong) = cohort_latency(&c, &spans, &ops, true);
        let w: Vec<(&str, &str)> = wrong
            .iter()
            .map(|m| (m.span.as_str(), m.operation.as_str()))
            .collect();
        assert_eq!(
            w,
            [("100%", "portfolio")],
            "denied organizations may stay on legacy at 100%"
        );
    }
}
