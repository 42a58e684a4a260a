//! The alert drill: under load, prove that each alert rule fires when its
//! fault is injected for real, resolves when the fault is repaired, and that
//! nothing fires on a healthy estate.
//!
//! It runs a scenario's steady load on the lab (rehearse's own metrics on
//! the lab's port, which the lab's Prometheus scrapes), watches a steady
//! period for false positives, then injects each fault in turn: it polls
//! Prometheus's `/api/v1/alerts` once a second and times fault-to-firing
//! and repair-to-resolved against a deadline made of the rule's `for:`,
//! two scrape and two evaluation intervals and a margin. Faults are real:
//! a stopped server, WAL replay paused while WAL is written, a corrupted
//! summary row. The lab is required: the drill stops its servers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::drill::{workload, write_run, Harness};
use crate::driver::Hooks;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::lab::{monitor, Component, LabCtx};
use crate::run::Marker;
use crate::scenario::Dur;
use crate::{db, exit};

/// A fault the drill can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    ReplicaDown,
    ReplicaLag,
    RedisDown,
    PgbouncerDown,
    SummaryDrift,
}

/// Alerts that are consequences users would see of any fault: allowed to fire during it.
const HARNESS: [&str; 2] = ["HarnessP99OverBudget", "HarnessErrorBudgetBurn"];

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::ReplicaDown,
        Fault::ReplicaLag,
        Fault::RedisDown,
        Fault::PgbouncerDown,
        Fault::SummaryDrift,
    ];
    pub const NAMES: [&'static str; 5] = [
        "replica-down",
        "replica-lag",
        "redis-down",
        "pgbouncer-down",
        "summary-drift",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The alerts that must fire.
    pub fn expected(self) -> &'static [&'static str] {
        match self {
            Fault::ReplicaDown => &["ReplicaDown", "ReplicaNotStreaming"],
            Fault::ReplicaLag => &["ReplicaLagHigh"],
            Fault::RedisDown => &["RedisDown"],
            Fault::PgbouncerDown => &["PgBouncerDown"],
            Fault::SummaryDrift => &["SummaryDrift", "ReconcileFoundDrift"],
        }
    }

    /// Alerts that may also fire, as consequences of this fault.
    pub fn allowed(self) -> Vec<&'static str> {
        let mut a = HARNESS.to_vec();
        if self == Fault::RedisDown {
            // Redis comes back empty: misses until the cache warms.
            a.push("CacheHitRatioCollapsed");
        }
        a
    }

    /// What injecting it does, for the table.
    pub fn how(self) -> &'static str {
        match self {
            Fault::ReplicaDown => "stop the replica (fast shutdown)",
            Fault::ReplicaLag => {
                "pg_wal_replay_pause() on the replica, then write ~90 MiB of WAL on the primary"
            }
            Fault::RedisDown => "stop Redis",
            Fault::PgbouncerDown => "stop PgBouncer",
            Fault::SummaryDrift => {
                "add 1 cent to one daily summary row of the latest day, then `rehearse job run reconcile`"
            }
        }
    }

    /// Seconds a metric may take to show the fault beyond scraping: the
    /// drift query is cached by the exporter (cache_seconds in the queries file).
    fn source_delay(self) -> Duration {
        match self {
            Fault::SummaryDrift => Duration::from_secs(30),
            _ => Duration::ZERO,
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = Error;
    fn from_str(s: &str) -> Result<Fault> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown fault {s:?}; one of {}",
                    Self::NAMES.join(", ")
                ))
            })
    }
}

/// How to run the drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The scenario, variant, rate, steady period, run directory and verbosity.
    pub common: crate::drill::Options,
    pub faults: Vec<Fault>,
    /// Alerts known to fire on this estate whatever the faults (named by
    /// the user): reported, never counted as false positives.
    pub standing: Vec<String>,
}

/// The margin added to every deadline, for polling and process start.
pub const MARGIN: Duration = Duration::from_secs(5);

/// The `for:` of each alert rule in `rules`. A `for:` that is not a
/// duration is an error naming the rule and the line, never dropped (its
/// alert's deadlines would silently lose the wait).
pub fn rule_for(rules: &str) -> Result<BTreeMap<String, Duration>> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for (i, line) in rules.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert:") {
            current = Some(name.trim().to_string());
        } else if let (Some(d), Some(name)) = (t.strip_prefix("for:"), &current) {
            let d = d.trim().parse::<Dur>().map_err(|e| {
                Error::Usage(format!(
                    "the alert rules, line {}: alert {name}: for: {:?} is not a duration ({e})",
                    i + 1,
                    d.trim()
                ))
            })?;
            out.insert(name.clone(), d.0);
        }
    }
    Ok(out)
}

/// One expected alert of one fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTiming {
    pub alert: String,
    /// The rule's `for:`, seconds.
    pub for_s: f64,
    /// Seconds from injecting the fault to the alert firing; None: it never fired.
    pub fired_after_s: Option<f64>,
    pub fire_deadline_s: f64,
    /// Seconds from the repair to the alert no longer firing; None: it did not resolve.
    pub resolved_after_s: Option<f64>,
    pub resolve_deadline_s: f64,
    pub ok: bool,
}

/// One fault's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultResult {
    pub fault: Fault,
    pub how: String,
    /// Seconds into the run, as the timelines count.
    pub injected_at_s: f64,
    pub repaired_at_s: f64,
    pub alerts: Vec<AlertTiming>,
    /// Other alerts that fired during it, allowed as consequences.
    pub also_fired: Vec<String>,
    /// Alerts that fired and are neither expected nor allowed.
    pub unexpected: Vec<String>,
    /// Why injecting or repairing failed, if it did.
    pub error: Option<String>,
    pub ok: bool,
}

pub const ALERTS_REPORT_VERSION: u32 = 1;
pub const ALERTS_FILE: &str = "alerts-drill.json";

/// alerts-drill.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsReport {
    pub schema_version: u32,
    pub ok: bool,
    pub reasons: Vec<String>,
    pub scenario: String,
    pub prometheus: String,
    pub scrape_interval_s: f64,
    pub steady_s: f64,
    /// Alerts that fired during the steady period: false positives.
    pub steady_false_positives: Vec<String>,
    /// Alerts the user named as standing (--standing), and whether each fired.
    pub standing: Vec<(String, bool)>,
    pub faults: Vec<FaultResult>,
    /// The workload's own verdict (run.json), for the record.
    pub workload_verdict: Option<String>,
}

/// Alerts as Prometheus lists them: (name, state, labels).
type Active = Vec<(String, String, BTreeMap<String, String>)>;

async fn prom_get(prom_addr: &str, path: &str) -> Result<serde_json::Value> {
    let (a, p) = (prom_addr.to_string(), path.to_string());
    let r = tokio::task::spawn_blocking(move || crate::http::get(&a, &p, Duration::from_secs(3)))
        .await
        .map_err(|e| Error::Lab(e.to_string()))??;
    if r.status != 200 {
        return Err(Error::Lab(format!(
            "Prometheus at {prom_addr} answered {} to {path}",
            r.status
        )));
    }
    serde_json::from_str(&r.body)
        .map_err(|e| Error::Lab(format!("Prometheus's answer to {path} is not JSON: {e}")))
}

/// The alerts Prometheus has active now.
pub async fn active_alerts(prom_addr: &str) -> Result<Active> {
    let v = prom_get(prom_addr, "/api/v1/alerts").await?;
    let list = v["data"]["alerts"]
        .as_array()
        .ok_or_else(|| Error::Lab("Prometheus's /api/v1/alerts has no data.alerts".into()))?;
    Ok(list
        .iter()
        .map(|a| {
            let labels: BTreeMap<String, String> = a["labels"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (
                labels.get("alertname").cloned().unwrap_or_default(),
                a["state"].as_str().unwrap_or("").to_string(),
                labels,
            )
        })
        .collect())
}

fn firing(active: &Active) -> BTreeSet<String> {
    active
        .iter()
        .filter(|(_, s, _)| s == "firing")
        .map(|(n, _, _)| n.clone())
        .collect()
}

/// The alert rules Prometheus has loaded.
async fn loaded_rules(prom_addr: &str) -> Result<BTreeSet<String>> {
    let v = prom_get(prom_addr, "/api/v1/rules").await?;
    Ok(v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r["type"] == "alerting")
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect())
}

/// Why summary drift cannot be judged here, if it cannot: the exporter's
/// query reports `checked` 0 on estates too large for it.
async fn drift_unchecked(prom_addr: &str) -> Result<Option<String>> {
    let q = crate::http::encode("rehearse_summary_drift_checked{role=\"primary\"}");
    let v = prom_get(prom_addr, &format!("/api/v1/query?query={q}")).await?;
    let values: Vec<&str> = v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["value"][1].as_str())
        .collect();
    Ok(if values.is_empty() {
        Some("Prometheus has no rehearse_summary_drift_checked series: the primary's exporter does not run the drift query (restart it with this rehearse: `rehearse lab stop primary-exporter && rehearse lab start primary-exporter`)".into())
    } else if values.contains(&"0") {
        Some("the exporter does not compute summary drift on this estate (2M summary rows or more; see observability/postgres-queries.yml): leave summary-drift out of --faults".into())
    } else {
        None
    })
}

/// Whether Prometheus scrapes rehearse's own target successfully.
async fn rehearse_target_up(prom_addr: &str) -> Result<bool> {
    let v = prom_get(prom_addr, "/api/v1/targets").await?;
    Ok(v["data"]["activeTargets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .any(|t| t["labels"]["job"] == "rehearse" && t["health"] == "up")
        })
        .unwrap_or(false))
}

/// What injecting a fault left to undo.
enum Undo {
    Start(Component),
    ResumeReplay,
    Summary {
        table: &'static str,
        key: (i64, i64, crate::day::Day),
    },
}

async fn inject(f: Fault, ctx: &LabCtx, estate: &Estate) -> Result<Undo> {
    match f {
        Fault::ReplicaDown => {
            ctx.stop(Component::Replica)?;
            Ok(Undo::Start(Component::Replica))
        }
        Fault::RedisDown => {
            ctx.stop(Component::Redis)?;
            Ok(Undo::Start(Component::Redis))
        }
        Fault::PgbouncerDown => {
            ctx.stop(Component::Pgbouncer)?;
            Ok(Undo::Start(Component::Pgbouncer))
        }
        Fault::ReplicaLag => {
            let replica = db::connect(&ctx.state.urls.replica).await?;
            replica
                .batch_execute("SELECT pg_wal_replay_pause()")
                .await
                .map_err(|source| Error::Db {
                    what: "pausing WAL replay on the replica".into(),
                    source,
                })?;
            // The workload writes too little WAL to cross the rule's
            // threshold soon; a scratch table adds ~90 MiB.
            let primary = db::connect(&estate.primary.url).await?;
            primary
                .batch_execute(
                    "DROP TABLE IF EXISTS rehearse_alerts_wal;
                     CREATE UNLOGGED TABLE IF NOT EXISTS rehearse_alerts_scratch (x int);
                     CREATE TABLE rehearse_alerts_wal (id int, pad text);
                     INSERT INTO rehearse_alerts_wal
                       SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 90000) g;",
                )
                .await
                .map_err(|source| Error::Db {
                    what: "writing WAL for the replica-lag fault".into(),
                    source,
                })?;
            Ok(Undo::ResumeReplay)
        }
        Fault::SummaryDrift => {
            let primary = db::connect(&estate.primary.url).await?;
            for table in [
                "daily_financial_summaries",
                "daily_financial_summaries_partitioned",
            ] {
                let exists: bool = primary
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                    .await
                    .map_err(|source| Error::Db {
                        what: "looking for the summary tables".into(),
                        source,
                    })?
                    .get(0);
                if !exists {
                    continue;
                }
                let sql = format!(
                    "UPDATE {table} SET revenue_cents = revenue_cents + 1
                      WHERE (organization_id, property_id, business_date) =
                            (SELECT organization_id, property_id, business_date FROM {table}
                              WHERE business_date = (SELECT max(business_date) FROM {table})
                              ORDER BY organization_id DESC, property_id DESC LIMIT 1)
                      RETURNING organization_id, property_id, business_date"
                );
                let rows = primary.query(&sql, &[]).await.map_err(|source| Error::Db {
                    what: format!("corrupting a summary row of {table}"),
                    source,
                })?;
                if let Some(r) = rows.first() {
                    // The reconcile job sees it on any day of any estate size.
                    reconcile(estate).await?;
                    return Ok(Undo::Summary {
                        table,
                        key: (r.get(0), r.get(1), r.get(2)),
                    });
                }
            }
            Err(Error::Usage(
                "summary-drift needs a seeded estate: no daily summary row to corrupt".into(),
            ))
        }
    }
}

/// Run the reconcile job, as pg_cron would, for ReconcileFoundDrift.
async fn reconcile(estate: &Estate) -> Result<()> {
    crate::jobs::run(estate, crate::jobs::Job::Reconcile, &Default::default())
        .await
        .map(|_| ())
}

async fn repair(undo: &Undo, ctx: &LabCtx, estate: &Estate) -> Result<()> {
    match undo {
        Undo::Start(c) => ctx.start(*c).await,
        Undo::ResumeReplay => {
            let replica = db::connect(&ctx.state.urls.replica).await?;
            replica
                .batch_execute("SELECT pg_wal_replay_resume()")
                .await
                .map_err(|source| Error::Db {
                    what: "resuming WAL replay on the replica".into(),
                    source,
                })?;
            let primary = db::connect(&estate.primary.url).await?;
            primary
                .batch_execute(
                    "DROP TABLE IF EXISTS rehearse_alerts_wal; DROP TABLE IF EXISTS rehearse_alerts_scratch",
                )
                .await
                .map_err(|source| Error::Db {
                    what: "dropping the replica-lag scratch table".into(),
                    source,
                })
        }
        Undo::Summary { table, key } => {
            let primary = db::connect(&estate.primary.url).await?;
            let sql = format!(
                "UPDATE {table} SET revenue_cents = revenue_cents - 1
                  WHERE organization_id = $1 AND property_id = $2 AND business_date = $3"
            );
            primary
                .execute(&sql, &[&key.0, &key.1, &key.2])
                .await
                .map_err(|source| Error::Db {
                    what: format!("repairing the summary row of {table}"),
                    source,
                })?;
            reconcile(estate).await
        }
    }
}

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
        // Prometheus two scrapes of ours and an evaluation, so what an earlier
        // run left firing has resolved before the steady period judges.
        tokio::time::sleep(interval * 3).await;
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

fn fault_problem(r: &FaultResult) -> String {
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
async fn run_fault(
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
    let expected = f.expected();
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
    say(&format!("{}: {}", f.name(), f.how()));
    let injected_at_s = now_s();
    let t0 = Instant::now();
    // The drift metric is not computed on a large estate: the fault could
    // not fire, and that is the exporter's limit, not the rule's.
    let unchecked = if f == Fault::SummaryDrift {
        drift_unchecked(prom_addr).await?
    } else {
        None
    };
    let injected = match unchecked {
        Some(why) => Err(Error::Usage(why)),
        None => inject(f, ctx, estate).await,
    };
    let undo = match injected {
        Ok(u) => u,
        Err(e) => {
            return Ok(FaultResult {
                fault: f,
                how: f.how().into(),
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
    let settle = Instant::now();
    loop {
        let now = firing(&active_alerts(prom_addr).await?);
        let quiet = now.iter().all(|a| standing.contains(a));
        seen.extend(now);
        if quiet || settle.elapsed() > Duration::from_secs(90) || stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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
        how: f.how().into(),
        injected_at_s,
        repaired_at_s,
        alerts: timings,
        also_fired,
        unexpected,
        error,
        ok,
    })
}

fn secs(x: Option<f64>) -> String {
    x.map(|s| format!("{s:.1} s"))
        .unwrap_or_else(|| "never".into())
}

/// The drill's table, Markdown.
pub fn markdown(r: &AlertsReport) -> String {
    let mut md = format!("# Alert drill: {}\n\n", if r.ok { "PASS" } else { "FAIL" });
    for reason in &r.reasons {
        md += &format!("- {reason}\n");
    }
    if !r.reasons.is_empty() {
        md.push('\n');
    }
    md += &format!(
        "Under `{}`; Prometheus {} scraping and evaluating every {} s. Steady period {} s: {}.\n\n",
        r.scenario,
        r.prometheus,
        r.scrape_interval_s,
        r.steady_s,
        if r.steady_false_positives.is_empty() {
            "no alert fired".to_string()
        } else {
            format!("FIRED {}", r.steady_false_positives.join(", "))
        }
    );
    if !r.standing.is_empty() {
        md += &format!(
            "Standing alerts named with --standing (reported, not judged): {}.\n\n",
            r.standing
                .iter()
                .map(|(a, fired)| format!(
                    "{a} ({})",
                    if *fired { "fired" } else { "did not fire" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md += "| fault | expected alert | for | fired after | deadline | resolved after | deadline | result |\n";
    md += "|---|---|---:|---:|---:|---:|---:|---|\n";
    for f in &r.faults {
        for a in &f.alerts {
            md += &format!(
                "| {} | {} | {:.0} s | {} | {:.0} s | {} | {:.0} s | {} |\n",
                f.fault.name(),
                a.alert,
                a.for_s,
                secs(a.fired_after_s),
                a.fire_deadline_s,
                secs(a.resolved_after_s),
                a.resolve_deadline_s,
                if a.ok { "ok" } else { "FAIL" }
            );
        }
    }
    md.push('\n');
    for f in &r.faults {
        md += &format!("- **{}**: {}", f.fault.name(), f.how);
        if !f.also_fired.is_empty() {
            md += &format!("; also fired, as consequences: {}", f.also_fired.join(", "));
        }
        if !f.unexpected.is_empty() {
            md += &format!("; UNEXPECTED: {}", f.unexpected.join(", "));
        }
        if let Some(e) = &f.error {
            md += &format!("; {e}");
        }
        md.push('\n');
    }
    if let Some(v) = &r.workload_verdict {
        md += &format!("\nThe workload's own verdict (run.json, budgets): {v}.\n");
    }
    md
}

/// The drill's section of report.html: the verdict's reasons and the table.
pub fn html(r: &AlertsReport) -> String {
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut h = String::from("<section id=\"alert-drill\"><h2>Alert drill</h2>");
    if !r.reasons.is_empty() {
        h += "<ul>";
        for why in &r.reasons {
            h += &format!("<li class=\"fail\">{}</li>", esc(why));
        }
        h += "</ul>";
    }
    h += &format!(
        "<p>Prometheus {} scraping and evaluating every {} s; steady period {} s: {}.</p>",
        esc(&r.prometheus),
        r.scrape_interval_s,
        r.steady_s,
        if r.steady_false_positives.is_empty() {
            "no alert fired".to_string()
        } else {
            format!("FIRED {}", esc(&r.steady_false_positives.join(", ")))
        }
    );
    if !r.standing.is_empty() {
        h += &format!(
            "<p>Standing alerts named with --standing (reported, not judged): {}.</p>",
            esc(&r
                .standing
                .iter()
                .map(|(a, fired)| format!(
                    "{a} ({})",
                    if *fired { "fired" } else { "did not fire" }
                ))
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    h += "<table><tr><th>fault</th><th class=\"text\">expected alert</th><th>for</th><th>fired after</th><th>deadline</th><th>resolved after</th><th>deadline</th><th>result</th></tr>";
    for f in &r.faults {
        for a in &f.alerts {
            h += &format!(
                "<tr><td>{}</td><td class=\"text\">{}</td><td>{:.0} s</td><td>{}</td><td>{:.0} s</td><td>{}</td><td>{:.0} s</td><td class=\"{}\">{}</td></tr>",
                f.fault.name(),
                esc(&a.alert),
                a.for_s,
                secs(a.fired_after_s),
                a.fire_deadline_s,
                secs(a.resolved_after_s),
                a.resolve_deadline_s,
                if a.ok { "pass" } else { "fail" },
                if a.ok { "ok" } else { "FAIL" },
            );
        }
    }
    h += "</table><ul>";
    for f in &r.faults {
        let mut line = format!("<b>{}</b>: {}", f.fault.name(), esc(&f.how));
        if !f.also_fired.is_empty() {
            line += &format!(
                "; also fired, as consequences: {}",
                esc(&f.also_fired.join(", "))
            );
        }
        if !f.unexpected.is_empty() {
            line += &format!(
                "; <span class=\"fail\">unexpected: {}</span>",
                esc(&f.unexpected.join(", "))
            );
        }
        h += &format!("<li>{line}</li>");
    }
    h + "</ul></section>"
}

fn write_report(dir: &Path, r: &AlertsReport) -> Result<()> {
    let json = serde_json::to_string_pretty(r).expect("the report serializes");
    crate::fsutil::write_atomic(&dir.join(ALERTS_FILE), json.as_bytes())?;
    crate::fsutil::write_atomic(&dir.join("alerts-drill.md"), markdown(r).as_bytes())
}

/// Read alerts-drill.json from a run directory, if there is one.
pub fn read(dir: &Path) -> Result<Option<AlertsReport>> {
    crate::fsutil::read_json(&dir.join(ALERTS_FILE), ALERTS_REPORT_VERSION)
}

/// The exit code of a drill.
pub fn exit_code(r: &AlertsReport) -> i32 {
    if r.ok {
        exit::OK
    } else {
        exit::FAIL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_for_and_every_expected_alert_a_rule() {
        let fors = rule_for(monitor::RULES).unwrap();
        assert!(fors.len() >= 12, "{fors:?}");
        // A for: that is not a duration is named, not dropped.
        let bad =
            "groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: up == 0\n    for: 10 sec\n";
        let e = rule_for(bad).unwrap_err().to_string();
        assert!(
            e.contains("line 6") && e.contains("Broken") && e.contains("10 sec"),
            "{e}"
        );
        assert_eq!(fors.get("SummaryDrift"), Some(&Duration::from_secs(10)));
        assert_eq!(fors.get("PartitionSkew"), Some(&Duration::from_secs(60)));
        for f in Fault::ALL {
            for a in f.expected().iter().chain(f.allowed().iter()) {
                assert!(
                    fors.contains_key(*a),
                    "{} expects {a}, which no rule defines",
                    f.name()
                );
            }
        }
    }

    #[test]
    fn fault_names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>().unwrap(), f);
        }
        assert!("replica".parse::<Fault>().is_err());
    }

    #[test]
    fn a_fault_that_never_fired_is_named_in_the_reasons() {
        let r = FaultResult {
            fault: Fault::RedisDown,
            how: "x".into(),
            injected_at_s: 1.0,
            repaired_at_s: 2.0,
            alerts: vec![AlertTiming {
                alert: "RedisDown".into(),
                for_s: 10.0,
                fired_after_s: None,
                fire_deadline_s: 23.0,
                resolved_after_s: None,
                resolve_deadline_s: 13.0,
                ok: false,
            }],
            also_fired: vec![],
            unexpected: vec!["ReplicaDown".into()],
            error: None,
            ok: false,
        };
        let p = fault_problem(&r);
        assert!(p.contains("RedisDown never fired (deadline 23 s)"), "{p}");
        assert!(p.contains("unexpected alerts fired: ReplicaDown"), "{p}");
    }
}
