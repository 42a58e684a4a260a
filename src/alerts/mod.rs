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
//!
//! This file holds the faults, the rules' `for:` and the report's types;
//! `steps.rs` the drill's steps, `faults.rs` injecting and repairing,
//! `prometheus.rs` what it asks Prometheus. Its page is `report/alerts.rs`.

mod faults;
mod prometheus;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exit;
use crate::scenario::Dur;

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

crate::named!("fault", Fault {
    ReplicaDown = "replica-down",
    ReplicaLag = "replica-lag",
    RedisDown = "redis-down",
    PgbouncerDown = "pgbouncer-down",
    SummaryDrift = "summary-drift",
});

impl Fault {
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
                "add 1 cent to one daily summary row of the latest day, then `rehearse job run reconcile --org <its organization>` (the whole estate when no complete reconcile has run); repaired the same way"
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

pub use prometheus::active_alerts;
pub use steps::drill;

fn write_report(dir: &Path, r: &AlertsReport) -> Result<()> {
    let json = serde_json::to_string_pretty(r).expect("the report serializes");
    crate::fsutil::write_atomic(&dir.join(ALERTS_FILE), json.as_bytes())
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
