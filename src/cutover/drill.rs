//! `rehearse cutover drill --under <scenario>`: the whole playbook while the
//! scenario's workload runs through the repository (its mode following the
//! flag, as a service's would), then a run directory with the steps as
//! markers on the timelines, latency per step against the steady state
//! before, the verify results, the write ledger's verdict after the switch,
//! after the rollback and at the end, and the trigger race.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::backfill::{self, BackfillOptions};
use super::race::{self, RaceResult};
use super::verify::{self, VerifyOptions};
use super::{CutoverPhase, Step, StepOptions, StepReport};
use crate::drill::{self, workload, Harness, Start, StepLatency};
use crate::driver::ledger::{Check, Ledger, LedgerCheck};
use crate::driver::live::Live;
use crate::driver::Hooks;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::progress;
use crate::repo::{Pooling, Repo, RepoConfig};
use crate::run::{Marker, Status};
use crate::scenario::{self, Scenario};
use crate::schema::Mode;
use crate::{db, seed};

/// What the drill was asked.
#[derive(Clone)]
pub struct DrillOptions {
    /// The scenario, variant, rate, steady period, run directory and verbosity.
    pub common: drill::Options,
    /// How long the estate runs switched before the rollback.
    pub soak: Duration,
    pub step: StepOptions,
    pub verify: VerifyOptions,
    pub backfill: BackfillOptions,
    /// The trigger race: writers and writes per writer (0 writers: skip it).
    pub race_writers: u64,
    pub race_ops: u64,
}

/// One step of the drill, with when it ran (seconds into the workload).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillStep {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    pub report: Option<StepReport>,
    /// The ledger check made at the end of this step, if any.
    pub ledger: Option<LedgerCheck>,
    /// After a switch or rollback: the mode a repository following the flag
    /// chose once the flag's TTL had passed.
    pub repository_mode: Option<Mode>,
}

/// Version of the `cutover.json` layout.
pub const DRILL_REPORT_VERSION: u32 = 1;

/// `cutover.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    pub schema_version: u32,
    pub status: Status,
    /// Every verify passed, no acknowledged write missing or different, the
    /// hardened triggers lost nothing.
    pub ok: bool,
    pub reasons: Vec<String>,
    pub scenario: String,
    pub database: String,
    pub steps: Vec<DrillStep>,
    pub latency: Vec<StepLatency>,
    /// The last check, with the workload stopped: exact.
    pub final_ledger: Vec<LedgerCheck>,
    pub race: Vec<RaceResult>,
    /// Requests of the workload that failed (all operations, whole drill).
    pub workload_errors: u64,
    pub exit_code: i32,
}

/// A step that only lets the workload run (steady state, soak).
async fn pause(name: &str, d: Duration, h: &Harness) -> DrillStep {
    let start_s = h.now();
    h.hold(d).await;
    DrillStep {
        name: name.to_string(),
        start_s,
        end_s: h.now(),
        report: None,
        ledger: None,
        repository_mode: None,
    }
}

/// The workload the drill runs: the scenario's last phase (its steady
/// load), one variant following the flag, until the drill stops it.
fn drill_scenario(opts: &DrillOptions) -> Result<Scenario> {
    workload::flag_workload(&opts.common, "cutover")
}

pub async fn drill(estate: &Estate, opts: &DrillOptions) -> Result<(PathBuf, DrillReport)> {
    let s = drill_scenario(opts)?;
    let mut client = db::connect(&estate.primary.url).await?;
    super::preflight(&client, estate, &opts.step, "cutover drill").await?;
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
    let state = super::read_state(&client).await?;
    if state.phase != CutoverPhase::NotStarted {
        return Err(Error::Refused(format!(
            "cutover drill refused: the estate's cutover is already {}; the drill starts from legacy \
             only. `rehearse cutover reset` drops the partitioned side and starts over",
            state.phase
        )));
    }
    super::refuse_filled_partitioned(&client, &database, "cutover drill").await?;
    let ledger = Arc::new(Ledger::default());
    let live = Arc::new(Live::default());
    // Metrics on the lab's port (when it has monitoring), with the step
    // under way and the ledger's counts, for the lab's Prometheus.
    let h = Harness::start(
        estate,
        &s,
        Start {
            kind: "cutover",
            options: &opts.common,
            hooks: Hooks {
                follow_flag: true,
                ledger: Some(ledger.clone()),
                live: Some(live.clone()),
                ..Default::default()
            },
            metrics_required: false,
            on_interrupt: "stopping after the step in progress; what was measured is kept",
        },
    )
    .await?;
    let metrics = h.metrics().clone();
    let export_check = |check: &crate::driver::ledger::LedgerCheck| {
        metrics.ledger("acknowledged", ledger.acknowledged());
        metrics.ledger("missing", check.missing);
        metrics.ledger("differing", check.differing);
        metrics.ledger("resurrected", check.resurrected);
    };
    // The live line would fight the steps' progress bars: quiet.
    let say = |line: &str| h.say(line);
    say(&format!(
        "drill under {} ({}), variant {}: steady state for {} s",
        opts.common.scenario.display(),
        match &s.phases[0].load {
            scenario::Load::Open { rate, .. } => format!("open, {rate:.0} req/s"),
            scenario::Load::Closed { users, .. } => format!("closed, {users} users"),
        },
        s.variants[0].name,
        opts.common.steady.as_secs()
    ));

    // A repository of the drill's own, following the flag as services do.
    let observer = {
        let mut cfg = RepoConfig::from_estate(estate, Pooling::Direct)?;
        cfg.redis_url = None;
        cfg.pool_size = 2;
        cfg.default_mode = Mode::Legacy;
        Repo::connect(cfg).await?
    };
    let mut steps: Vec<DrillStep> = Vec::new();
    // How long a disagreeing row is given before it is judged: requests in
    // flight when the check read it have finished by then (or timed out).
    let settle = s.timeout.0.min(Duration::from_secs(2)) + Duration::from_millis(200);
    let playbook: Result<()> = async {
        metrics.cutover_step("steady");
        steps.push(pause("steady", opts.common.steady, &h).await);
        let mut bf = opts.backfill.clone();
        bf.stop = Some(h.stop.clone());
        {
            let m = metrics.clone();
            bf.on_progress = Some(Arc::new(move |r| m.backfill("all", r)));
        }
        if bf.max_p99.is_none() {
            // By default the backfill yields when the workload's p99 is four
            // times what it was in the steady state (and at least 10 ms).
            let steady = Duration::from_nanos(live.p99_ns.load(Ordering::Relaxed));
            bf.max_p99 = Some((steady * 4).max(Duration::from_millis(10)));
        }
        {
            let live = live.clone();
            bf.p99_probe = Some(Arc::new(move || {
                let ns = live.recent_p99_ns.load(Ordering::Relaxed);
                (ns > 0).then(|| Duration::from_nanos(ns))
            }));
        }
        let plan: [(&str, Step); 10] = [
            ("prepare", Step::Prepare),
            ("dual-write", Step::DualWrite),
            ("backfill", Step::Backfill),
            ("verify", Step::Verify),
            ("switch", Step::Switch),
            ("soak", Step::Switch),
            ("rollback", Step::Rollback),
            ("verify after rollback", Step::Verify),
            ("switch again", Step::Switch),
            ("verify after switch", Step::Verify),
        ];
        for (name, step) in plan {
            if h.stopped() {
                return Err(Error::Lab(format!("stopped before {name}")));
            }
            metrics.cutover_step(name);
            if step == Step::Backfill {
                metrics.backfill("all", 0.0);
            }
            if name == "soak" {
                say(&format!("soak: {} s on partitioned", opts.soak.as_secs()));
                steps.push(pause("soak", opts.soak, &h).await);
                // What was acknowledged so far is on the authoritative side.
                let start_s = h.now();
                let check = ledger
                    .check(&client, Mode::Partitioned, Check::Live { settle })
                    .await?;
                say(&format!("writes after the switch and soak: {check}"));
                export_check(&check);
                steps.push(DrillStep {
                    name: "check writes (partitioned)".into(),
                    start_s,
                    end_s: h.now(),
                    report: None,
                    ledger: Some(check),
                    repository_mode: None,
                });
                continue;
            }
            let start_s = h.now();
            say(&format!("{name}: `{}`", step.command()));
            let mut sopts = opts.step.clone();
            sopts.verbose = opts.common.verbose;
            let report = match step {
                Step::Prepare => super::prepare(&mut client, estate, &sopts).await?,
                Step::DualWrite => super::dual_write(&mut client, estate, &sopts).await?,
                Step::Backfill => backfill::backfill(&mut client, estate, &sopts, &bf).await?,
                Step::Verify => verify::verify(&mut client, estate, &sopts, &opts.verify).await?,
                Step::Switch => super::flip(&mut client, estate, Mode::Partitioned, &sopts).await?,
                Step::Rollback => super::flip(&mut client, estate, Mode::Legacy, &sopts).await?,
                Step::Finalize | Step::Rollout => unreachable!("the drill keeps the way back"),
            };
            let failed_verify = report
                .verify
                .as_ref()
                .filter(|v| !v.ok)
                .map(|v| v.describe());
            let incomplete = report.backfill.as_ref().is_some_and(|b| !b.complete);
            if report.backfill.as_ref().is_some_and(|b| b.complete) {
                metrics.backfill("all", 1.0);
            }
            say(&format!("{name}: {}", report.summary));
            let mut entry = DrillStep {
                name: name.into(),
                start_s,
                end_s: h.now(),
                report: Some(report),
                ledger: None,
                repository_mode: None,
            };
            if matches!(step, Step::Switch | Step::Rollback) {
                // What a service sees once it has re-read the flag.
                tokio::time::sleep(crate::repo::DEFAULT_FLAG_TTL + Duration::from_millis(50)).await;
                let m = observer.mode().await;
                say(&format!("{name}: the repository now uses the {m} tables"));
                entry.repository_mode = Some(m);
            }
            if step == Step::Rollback {
                // Give the services the flag's TTL to move back, then check.
                tokio::time::sleep(crate::repo::DEFAULT_FLAG_TTL + Duration::from_millis(200))
                    .await;
                let check = ledger
                    .check(&client, Mode::Legacy, Check::Live { settle })
                    .await?;
                say(&format!("writes after the rollback: {check}"));
                export_check(&check);
                entry.ledger = Some(check);
                entry.end_s = h.now();
            }
            steps.push(entry);
            if let Some(d) = failed_verify {
                return Err(Error::Lab(format!(
                    "{name} failed, so the drill stops here:\n{d}"
                )));
            }
            if incomplete {
                return Err(Error::Lab(
                    "the backfill stopped before it was complete".into(),
                ));
            }
        }
        metrics.cutover_step("after");
        steps.push(pause("after", Duration::from_secs(2), &h).await);
        Ok(())
    }
    .await;

    let run = h.stop_workload().await?;
    let mut reasons = Vec::new();
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
    // With the workload stopped the ledger check is exact: both sides must
    // hold every acknowledged write while the mirror runs.
    let mut final_ledger = Vec::new();
    let final_phase = super::read_state(&client).await?.phase;
    let sides: &[Mode] = if final_phase.mirrored() {
        &[Mode::Partitioned, Mode::Legacy]
    } else {
        &[Mode::Legacy]
    };
    for &side in sides {
        if side == Mode::Partitioned && final_phase < CutoverPhase::DualWrite {
            continue;
        }
        let check = ledger.check(&client, side, Check::Final).await?;
        say(&format!("final check of {side}: {check}"));
        final_ledger.push(check);
    }
    let checks: Vec<(String, &LedgerCheck)> = steps
        .iter()
        .filter_map(|s| s.ledger.as_ref())
        .chain(&final_ledger)
        .map(|c| (c.side.to_string(), c))
        .collect();
    reasons.extend(drill::ledger_reasons(
        ledger.acknowledged(),
        !final_ledger.is_empty(),
        &checks,
    ));
    let race = if opts.race_writers > 0 && !h.interrupted() {
        say(&format!(
            "trigger race: {} writers x {} writes on the hardened and the naive summary triggers",
            opts.race_writers, opts.race_ops
        ));
        let r = race::race(
            &estate.primary.url,
            opts.race_writers,
            opts.race_ops,
            s.seed,
        )
        .await?;
        for x in &r {
            say(&x.describe());
        }
        if let Some(h) = r
            .iter()
            .find(|x| x.variant == crate::schema::TriggerVariant::Hardened)
        {
            if h.wrong_summary_rows != 0 || h.lost_updates != 0 || h.burst.failed_writes != 0 {
                reasons.push(format!(
                    "the hardened triggers got the burst wrong: {}",
                    h.describe()
                ));
            }
        }
        r
    } else {
        Vec::new()
    };

    let latency = match &result {
        Some(r) => {
            let spans: Vec<(String, f64, f64)> = steps
                .iter()
                .map(|st| (st.name.clone(), st.start_s, st.end_s))
                .collect();
            drill::span_latency(&h.dir, r, &spans).unwrap_or_default()
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
        let markers = steps
            .iter()
            .map(|st| Marker {
                name: st.name.clone(),
                start_s: st.start_s,
                end_s: st.end_s,
            })
            .collect();
        let failed = (out.status == Status::Failed).then(|| reasons.first().cloned());
        drill::write_run(&h.dir, r, markers, was_interrupted, failed.flatten())?;
    }
    let report = DrillReport {
        schema_version: DRILL_REPORT_VERSION,
        status: out.status,
        ok: out.ok,
        reasons,
        scenario: opts.common.scenario.display().to_string(),
        database,
        steps,
        latency,
        final_ledger,
        race,
        workload_errors: drill::workload_errors(result.as_ref()),
        exit_code: out.exit_code,
    };
    crate::fsutil::write_atomic(
        &h.dir.join("cutover.json"),
        &serde_json::to_vec_pretty(&report).expect("the drill report serializes"),
    )?;
    Ok((h.dir.clone(), report))
}

impl DrillReport {
    /// The summary an SRE reads at the end.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let rows: Vec<Vec<String>> = self
            .latency
            .iter()
            .map(|l| {
                vec![
                    l.step.clone(),
                    format!("{:.1}", l.start_s),
                    format!("{:.2}", l.end_s - l.start_s),
                    progress::thousands(l.requests),
                    format!("{:.2}", l.p50_ms),
                    format!("{:.2}", l.p99_ms),
                    format!("{:.2}", l.p999_ms),
                    format!("{:.2}%", l.error_rate * 100.0),
                    l.p99_vs_steady
                        .map(|x| format!("{x:.2}x"))
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&crate::text::table(
            &[
                "step",
                "at s",
                "seconds",
                "requests",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "errors",
                "p99 vs steady",
            ],
            &rows,
        ));
        for st in &self.steps {
            if let Some(r) = &st.report {
                if let Some(l) = &r.locks {
                    out.push_str(&format!("\n{}: {}", st.name, l.describe()));
                }
                if let Some(b) = &r.backfill {
                    out.push_str(&format!(
                        "\n{}: {} rows at {:.0} rows/s; throttled {} times ({} for lag, {} for p99), {:.1} s paused",
                        st.name,
                        progress::thousands(b.rows),
                        b.rows_per_sec,
                        b.throttled,
                        b.throttled_for_lag,
                        b.throttled_for_p99,
                        b.paused_s
                    ));
                }
                if r.verify.is_some() {
                    out.push_str(&format!("\n{}: {}", st.name, r.summary));
                }
            }
            if let Some(c) = &st.ledger {
                out.push_str(&format!("\n{}: {c}", st.name));
            }
        }
        for c in &self.final_ledger {
            out.push_str(&format!("\nfinal, {}: {c}", c.side));
            for e in &c.examples {
                out.push_str(&format!("\n  {e}"));
            }
        }
        for r in &self.race {
            out.push_str(&format!("\ntrigger race: {}", r.describe()));
        }
        let last = self
            .final_ledger
            .iter()
            .map(|c| {
                format!(
                    "{}: missing {}, differing {}, resurrected {}, unknown {}{}",
                    c.side,
                    c.missing,
                    c.differing,
                    c.resurrected,
                    c.unknown_outcome,
                    if c.unknown_resolved {
                        " (judged from the rows)"
                    } else {
                        ""
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str(&format!(
            "\n\nacknowledged writes {}, workload errors {}; final ledger {}",
            self.final_ledger.first().map_or(0, |c| c.acknowledged),
            self.workload_errors,
            if last.is_empty() {
                "not checked".to_string()
            } else {
                last
            }
        ));
        out.push_str(&format!(
            "\ndrill {}{}",
            if self.ok { "PASS" } else { "FAIL" },
            if self.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", self.reasons.join("; "))
            }
        ));
        out
    }
}
