//! The drill's steps: the steady period watched for false positives, then
//! each fault injected, its alerts timed to firing and to resolution.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::db;
use crate::drill::{workload, write_run, Harness};
use crate::driver::Hooks;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::lab::{monitor, LabCtx};
use crate::run::Marker;

use super::faults::*;
use super::prometheus::*;
use super::*;

/// Run the drill; returns the run directory and the report.
pub async fn drill(estate: &Estate, opts: &DrillOptions) -> Result<(PathBuf, AlertsReport)> {
    if opts.faults.is_empty() {
        return Err(Error::Usage("give at least one fault with --faults".into()));
    }
    if !estate.primary_is_lab() {
        return Err(Error::Refused(format!(
            "alerts drill refused: it stops servers and corrupts a summary row, so it runs on the \
             embedded lab only, and {} is not the lab's primary (start one with `rehearse lab up`)",
            estate.primary.redacted()
        )));
    }
    let mut ctx = LabCtx::open(&estate.lab_dir)?;
    ctx.set_verbose(false);
    let prom = ctx.prometheus_url().ok_or_else(|| {
        Error::Usage(
            "the lab has no monitoring (it was made with --no-monitoring): the drill needs its \
             Prometheus. `rehearse lab down --purge` and `rehearse lab up` make one with it"
                .into(),
        )
    })?;
    let prom_addr = prom.trim_start_matches("http://").to_string();
    for c in ctx.state.components() {
        if ctx.pid(c).is_none() {
            return Err(Error::Lab(format!(
                "the lab {} is not running; `rehearse lab up` starts what is down",
                c.name()
            )));
        }
    }
    let client = db::connect(&estate.primary.url).await?;
    let database = db::current_database(&client).await?;
    if database != ctx.state.database {
        return Err(Error::Usage(format!(
            "the lab's exporters watch database {:?}, and the drill would run on {database:?}: \
             their alerts would not see its faults",
            ctx.state.database
        )));
    }
    let s = workload::load_steady(&opts.common, "alerts")?;
    let rules = monitor::RULES;
    let fors = rule_for(rules)?;
    // The lab's Prometheus loads the rules written when it started: an
    // older lab may lack some.
    let loaded = loaded_rules(&prom_addr).await?;
    let missing: Vec<&str> = opts
        .faults
        .iter()
        .flat_map(|f| f.expected().iter().copied())
        .filter(|a| !loaded.contains(*a))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Lab(format!(
            "the lab's Prometheus has no rule {} loaded (it reads the rules written when it              started); restart it with this rehearse: `rehearse lab stop prometheus && rehearse lab start prometheus`",
            missing.join(", ")
        )));
    }
    for a in &opts.standing {
        if !fors.contains_key(a) {
            return Err(Error::Usage(format!(
                "--standing {a}: no such alert rule; the rules are {}",
                fors.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let standing: BTreeSet<String> = opts.standing.iter().cloned().collect();
    let mut standing_seen = BTreeSet::new();
    let interval = Duration::from_secs(monitor::INTERVAL_S);
    // The workload, with metrics on the lab's port so Prometheus scrapes it.
    let h = Harness::start(
        estate,
        &s,
        crate::drill::Start {
            kind: "alerts",
            options: &opts.common,
            hooks: Hooks::default(),
            metrics_required: true,
            on_interrupt: "repairing the fault in progress and stopping; what was measured is kept",
        },
    )
    .await?;
    let now_s = || h.now();
    let say = |line: &str| h.say(line);

    let mut reasons = Vec::new();
    let mut markers = Vec::new();
    let mut results = Vec::new();
    let mut steady_fp = BTreeSet::new();
    let outcome: Result<()> = async {
        // Prometheus must scrape rehearse before anything is judged.
        let until = Instant::now() + Duration::from_secs(30);
        while !rehearse_target_up(&prom_addr).await? {
            if Instant::now() > until {
                return Err(Error::Lab(format!(
                    "Prometheus at {prom} does not scrape rehearse's metrics on {:?} after 30 s",
                    h.metrics_addr()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // The target may read up from an earlier run's last scrape: give
        // Prometheus two scrapes of ours and an evaluation. An alert over a
        // rate window can outlive the workload before the drill by its
        // window (CacheHitRatioCollapsed: a minute of an earlier run's cold
        // cache): wait, as between faults, until nothing but the standing
        // alerts fires, at most 90 s; what still fires then, the steady
        // period judges.
        tokio::time::sleep(interval * 3).await;
        let left = settle(&prom_addr, &standing, &h.stop).await?;
        if !left.iter().all(|a| standing.contains(a)) {
            say(&format!(
                "  waited for alerts left by earlier load to clear: {}",
                left.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        say(&format!(
            "under {} ({}): steady for {} s, watching {prom}/api/v1/alerts",
            opts.common.scenario.display(),
            s.variants[0].name,
            opts.common.steady.as_secs()
        ));
        let start_s = now_s();
        let until = Instant::now() + opts.common.steady;
        while Instant::now() < until && !h.stopped() {
            for a in firing(&active_alerts(&prom_addr).await?) {
                if standing.contains(&a) {
                    standing_seen.insert(a);
                } else {
                    steady_fp.insert(a);
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        markers.push(Marker {
            name: "steady".into(),
            start_s,
            end_s: now_s(),
        });
        if !steady_fp.is_empty() {
            say(&format!(
                "false positives while healthy: {}",
                steady_fp.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        for &f in &opts.faults {
            if h.stopped() {
                break;
            }
            let r = run_fault(
                f, &ctx, estate, &prom_addr, &fors, &standing, interval, &h.stop, &now_s, &say,
            )
            .await?;
            markers.push(Marker {
                name: f.name().into(),
                start_s: r.injected_at_s,
                end_s: r.repaired_at_s,
            });
            results.push(r);
        }
        Ok(())
    }
    .await;
    let run = h.stop_workload().await?;
    if let Err(e) = outcome {
        reasons.push(e.to_string());
    }
    if !steady_fp.is_empty() {
        reasons.push(format!(
            "alerts fired on the healthy estate (steady period): {}",
            steady_fp.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for r in &results {
        if !r.ok {
            reasons.push(format!("{}: {}", r.fault.name(), fault_problem(r)));
        }
    }
    let was_interrupted = h.interrupted();
    if was_interrupted {
        reasons.push("interrupted before every fault was drilled".into());
    } else if results.len() < opts.faults.len() && reasons.is_empty() {
        reasons.push("not every fault was drilled".into());
    }
    let mut workload_verdict = None;
    match run {
        Ok(mut r) => {
            write_run(&h.dir, &mut r, markers, was_interrupted, None)?;
            workload_verdict = serde_json::to_value(r.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
        }
        Err(e) => reasons.push(e),
    }
    let report = AlertsReport {
        schema_version: ALERTS_REPORT_VERSION,
        ok: reasons.is_empty(),
        reasons,
        scenario: opts.common.scenario.display().to_string(),
        prometheus: prom,
        scrape_interval_s: interval.as_secs_f64(),
        steady_s: opts.common.steady.as_secs_f64(),
        steady_false_positives: steady_fp.into_iter().collect(),
        standing: opts
            .standing
            .iter()
            .map(|a| (a.clone(), standing_seen.contains(a)))
            .collect(),
        faults: results,
        workload_verdict,
    };
    write_report(&h.dir, &report)?;
    Ok((h.dir.clone(), report))
}

pub(super) fn fault_problem(r: &FaultResult) -> String {
    let mut p = Vec::new();
    if let Some(e) = &r.error {
        p.push(e.clone());
    }
    for a in &r.alerts {
        match (a.fired_after_s, a.resolved_after_s) {
            (None, _) => p.push(format!(
                "{} never fired (deadline {:.0} s)",
                a.alert, a.fire_deadline_s
            )),
            (Some(f), _) if f > a.fire_deadline_s => p.push(format!(
                "{} fired after {f:.1} s, past its {:.0} s deadline",
                a.alert, a.fire_deadline_s
            )),
            (_, None) => p.push(format!(
                "{} did not resolve within {:.0} s",
                a.alert, a.resolve_deadline_s
            )),
            (_, Some(x)) if x > a.resolve_deadline_s => p.push(format!(
                "{} resolved after {x:.1} s, past its {:.0} s deadline",
                a.alert, a.resolve_deadline_s
            )),
            _ => {}
        }
    }
    if !r.unexpected.is_empty() {
        p.push(format!(
            "unexpected alerts fired: {}",
            r.unexpected.join(", ")
        ));
    }
    p.join("; ")
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_fault(
    f: Fault,
    ctx: &LabCtx,
    estate: &Estate,
    prom_addr: &str,
    fors: &BTreeMap<String, Duration>,
    standing: &BTreeSet<String>,
    interval: Duration,
    stop: &AtomicBool,
    now_s: &impl Fn() -> f64,
    say: &impl Fn(&str),
) -> Result<FaultResult> {
    let mut allowed = f.allowed();
    allowed.extend(standing.iter().map(String::as_str));
    // The drift metric is not computed on a large estate: there only the
    // reconcile job sees drift, so only its alert is expected.
    let drift = if f == Fault::SummaryDrift {
        Some(drift_check(prom_addr).await?)
    } else {
        None
    };
    let (expected, how) = expected_for(f, drift.as_ref());
    // Two scrapes and two rule evaluations, a margin, and the metric's own delay.
    let slack = interval * 4 + MARGIN + f.source_delay();
    let mut timings: Vec<AlertTiming> = expected
        .iter()
        .map(|a| {
            let for_ = fors.get(*a).copied().unwrap_or_default();
            AlertTiming {
                alert: a.to_string(),
                for_s: for_.as_secs_f64(),
                fired_after_s: None,
                fire_deadline_s: (for_ + slack).as_secs_f64(),
                resolved_after_s: None,
                resolve_deadline_s: slack.as_secs_f64(),
                ok: false,
            }
        })
        .collect();
    let mut seen = BTreeSet::new();
    say(&format!("{}: {how}", f.name()));
    let injected_at_s = now_s();
    let injected = match drift {
        Some(DriftCheck::Absent(why)) => Err(Error::Usage(why)),
        _ => inject(f, ctx, estate).await,
    };
    // Deadlines count from the fault in place: for summary-drift, after the
    // reconcile run that finds it (minutes on a large estate), as the
    // resolve deadlines count from after the repair's run.
    let t0 = Instant::now();
    let undo = match injected {
        Ok(u) => u,
        Err(e) => {
            return Ok(FaultResult {
                fault: f,
                how: how.clone(),
                injected_at_s,
                repaired_at_s: now_s(),
                alerts: timings,
                also_fired: vec![],
                unexpected: vec![],
                error: Some(format!("injecting it failed: {e}")),
                ok: false,
            })
        }
    };
    // Wait for every expected alert, up to the longest deadline.
    let fire_limit = timings
        .iter()
        .map(|t| t.fire_deadline_s)
        .fold(0.0, f64::max);
    loop {
        let now = firing(&active_alerts(prom_addr).await?);
        for t in &mut timings {
            if t.fired_after_s.is_none() && now.contains(&t.alert) {
                t.fired_after_s = Some(t0.elapsed().as_secs_f64());
                say(&format!(
                    "  {} firing after {:.1} s",
                    t.alert,
                    t0.elapsed().as_secs_f64()
                ));
            }
        }
        seen.extend(now);
        if timings.iter().all(|t| t.fired_after_s.is_some())
            || t0.elapsed().as_secs_f64() > fire_limit
            || stop.load(Ordering::SeqCst)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    say(&format!("  repairing {}", f.name()));
    let repaired = repair(&undo, ctx, estate).await;
    let repaired_at_s = now_s();
    let t1 = Instant::now();
    let resolve_limit = slack.as_secs_f64();
    loop {
        let active = active_alerts(prom_addr).await?;
        let now = firing(&active);
        for t in &mut timings {
            if t.fired_after_s.is_some() && t.resolved_after_s.is_none() && !now.contains(&t.alert)
            {
                t.resolved_after_s = Some(t1.elapsed().as_secs_f64());
                say(&format!(
                    "  {} resolved after {:.1} s",
                    t.alert,
                    t1.elapsed().as_secs_f64()
                ));
            }
        }
        seen.extend(now);
        let waiting = timings
            .iter()
            .any(|t| t.fired_after_s.is_some() && t.resolved_after_s.is_none());
        if !waiting || t1.elapsed().as_secs_f64() > resolve_limit {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let consequences clear before the next fault (an empty cache warming
    // up, a workload catching up), and keep watching for the unexpected.
    seen.extend(settle(prom_addr, standing, stop).await?);
    for t in &mut timings {
        t.ok = matches!((t.fired_after_s, t.resolved_after_s),
            (Some(a), Some(b)) if a <= t.fire_deadline_s && b <= t.resolve_deadline_s);
    }
    let also_fired: Vec<String> = seen
        .iter()
        .filter(|a| !standing.contains(*a))
        .filter(|a| !expected.contains(&a.as_str()) && allowed.contains(&a.as_str()))
        .cloned()
        .collect();
    let unexpected: Vec<String> = seen
        .iter()
        .filter(|a| !expected.contains(&a.as_str()) && !allowed.contains(&a.as_str()))
        .cloned()
        .collect();
    let error = repaired.err().map(|e| format!("repairing it failed: {e}"));
    let ok = error.is_none() && unexpected.is_empty() && timings.iter().all(|t| t.ok);
    Ok(FaultResult {
        fault: f,
        how: how.clone(),
        injected_at_s,
        repaired_at_s,
        alerts: timings,
        also_fired,
        unexpected,
        error,
        ok,
    })
}

/// The alerts a fault must raise on this estate, and how it is described:
/// where the exporter does not compute drift, only reconcile's alert.
pub(super) fn expected_for(f: Fault, drift: Option<&DriftCheck>) -> (Vec<&'static str>, String) {
    match drift {
        Some(DriftCheck::TooLarge) if f == Fault::SummaryDrift => (
            vec!["ReconcileFoundDrift"],
            format!(
                "{}; SummaryDrift is not expected: the exporter does not compute drift on an estate of 2M summary rows or more, reconcile does (rehearse_reconcile_chunk)",
                f.how()
            ),
        ),
        _ => (f.expected().to_vec(), f.how().to_string()),
    }
}

/// Wait until nothing but the standing alerts fires, at most 90 s (or a
/// stop); returns every alert seen firing meanwhile.
async fn settle(
    prom_addr: &str,
    standing: &BTreeSet<String>,
    stop: &AtomicBool,
) -> Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    let since = Instant::now();
    loop {
        let now = firing(&active_alerts(prom_addr).await?);
        let quiet = now.iter().all(|a| standing.contains(a));
        seen.extend(now);
        if quiet || since.elapsed() > Duration::from_secs(90) || stop.load(Ordering::SeqCst) {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
