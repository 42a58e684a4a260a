//! Scenario files (`scenarios/*.toml`): what a run does, parsed and
//! checked before anything connects.
//!
//! A scenario names its phases (open: an arrival rate, constant or Poisson,
//! optionally ramped, with a cap on requests in flight; closed: users with a
//! think time), an operation mix with weights, how tenants are chosen, the
//! variants of the estate to run, latency budgets, and a seed. Every error
//! names the file, line and column.
//!
//! This file is the checked model and how a file becomes one; `dur.rs` the
//! durations, `file.rs` the file as read, `check.rs` the checker.

mod check;
mod dur;
mod file;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::repo::{Pooling, Via};
use crate::schema::Mode;
use crate::text::toml_error_at;

pub use check::check;
pub use dur::Dur;
pub(crate) use file::BudgetFile;
use file::BudgetsFile;

/// The operations a mix can hold: the repository's, plus raw SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    RecordRevenue,
    RecordExpense,
    Adjust,
    Void,
    PostBatch,
    Dashboard,
    Pnl,
    Properties,
    Ledger,
    Portfolio,
    Sql,
}

crate::named!("operation", Operation {
    RecordRevenue = "record_revenue",
    RecordExpense = "record_expense",
    Adjust = "adjust",
    Void = "void",
    PostBatch = "post_batch",
    Dashboard = "dashboard",
    Pnl = "pnl",
    Properties = "properties",
    Ledger = "ledger",
    Portfolio = "portfolio",
    Sql = "sql",
});

impl Operation {
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Operation::RecordRevenue
                | Operation::RecordExpense
                | Operation::Adjust
                | Operation::Void
                | Operation::PostBatch
        )
    }
}

/// How arrivals are spaced in an open phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced at the (possibly ramping) rate.
    Constant,
    /// A Poisson process at the rate: exponential gaps, bursts included.
    Poisson,
}

/// A maintenance job a run runs (`[[job]]`): from `start` into each
/// variant, then again every `every` while the variant runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledJob {
    pub job: crate::jobs::Job,
    pub start: Dur,
    pub every: Option<Dur>,
    /// The job's own time budget.
    pub budget: Dur,
}

/// Weights of the size tiers of organizations.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierWeights {
    /// One property.
    #[serde(default)]
    pub single: f64,
    /// Two to five properties.
    #[serde(default)]
    pub small: f64,
    /// Six to forty properties.
    #[serde(default)]
    pub medium: f64,
    /// More than forty: the chains.
    #[serde(default)]
    pub chain: f64,
}

/// How a phase offers load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Load {
    /// Requests arrive on a schedule whatever the system does.
    Open {
        /// Requests per second at the start of the phase.
        rate: f64,
        /// Requests per second at its end (a linear ramp); equal to `rate` when steady.
        ramp_to: f64,
        arrival: Arrival,
        /// Requests sent and not yet answered, at most; later arrivals wait (late) or, past the backlog, are dropped.
        max_in_flight: u32,
        /// A request sent this long after its intended start counts as late.
        late_after: Dur,
    },
    /// N users, each sending its next request when the last one is answered (after thinking).
    Closed { users: u32, think: Dur },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub duration: Dur,
    #[serde(flatten)]
    pub load: Load,
}

/// A parameter of a raw SQL operation, drawn per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlParam {
    /// The chosen organization's id.
    Org,
    /// One of its properties.
    Property,
    /// A uniform integer in lo..=hi.
    Int(i64, i64),
}

impl std::str::FromStr for SqlParam {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<SqlParam, String> {
        match s {
            "org" => return Ok(SqlParam::Org),
            "property" => return Ok(SqlParam::Property),
            _ => {}
        }
        let bad = || {
            format!("unknown parameter {s:?}: one of \"org\", \"property\", \"int:LO..HI\" (e.g. \"int:1..100000\")")
        };
        let range = s.strip_prefix("int:").ok_or_else(bad)?;
        let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
        let lo: i64 = lo.trim().parse().map_err(|_| bad())?;
        let hi: i64 = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(format!("parameter {s:?}: the range is empty"));
        }
        Ok(SqlParam::Int(lo, hi))
    }
}

/// One entry of the operation mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// The name results use: the operation's, or the entry's `name`.
    pub name: String,
    pub operation: Operation,
    pub weight: f64,
    /// Days of the dashboard (30), the ledger's and property breakdown's range (7), the portfolio's (14).
    pub days: u32,
    /// Ledger page size.
    pub limit: u32,
    /// Portfolio size.
    pub top: u32,
    /// Entries per end-of-day batch.
    pub entries: u32,
    pub sql: Option<String>,
    pub params: Vec<SqlParam>,
    /// Where a raw SQL read goes (repository reads follow the variant).
    pub via: Option<Via>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase")]
pub enum Tenants {
    Uniform,
    /// Rank r (in a seeded shuffle of the organizations) is chosen with weight 1/r^exponent.
    Zipf {
        exponent: f64,
    },
    /// A tier by weight, then an organization of it uniformly.
    Tiers {
        weights: TierWeights,
    },
}

/// One configuration of the estate a scenario runs against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub mode: Mode,
    pub reads: Via,
    pub cache: bool,
    pub pool: Pooling,
}

impl Variant {
    /// The two variants a scenario runs when it names none: the rollout's question.
    pub fn defaults() -> Vec<Variant> {
        [Mode::Legacy, Mode::Partitioned]
            .into_iter()
            .map(|mode| Variant {
                name: mode.to_string(),
                mode,
                reads: Via::Auto,
                cache: true,
                pool: Pooling::Direct,
            })
            .collect()
    }
}

/// Latency budgets of one operation; latencies are response times (open
/// phases) or service times (closed phases).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub p50: Option<Dur>,
    pub p95: Option<Dur>,
    pub p99: Option<Dur>,
    #[serde(rename = "p99.9")]
    pub p999: Option<Dur>,
    pub max: Option<Dur>,
    /// Errors over requests, at most.
    pub error_rate: Option<f64>,
}

impl Budget {
    /// (label, quantile, limit) of each latency budget set; max is quantile 1.
    pub fn limits(&self) -> Vec<(&'static str, f64, Dur)> {
        [
            ("p50", 0.5, self.p50),
            ("p95", 0.95, self.p95),
            ("p99", 0.99, self.p99),
            ("p99.9", 0.999, self.p999),
            ("max", 1.0, self.max),
        ]
        .into_iter()
        .filter_map(|(l, q, d)| d.map(|d| (l, q, d)))
        .collect()
    }
}

/// The confidence budgets are judged at unless a scenario or `--confidence` says.
pub const DEFAULT_CONFIDENCE: f64 = 0.99;

/// When a run's numbers can be trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    /// Achieved over target rate, at least (open phases).
    pub min_rate: f64,
    /// p99 of the driver's own wake-up delay (requests that found a free worker), at most.
    pub max_driver_lag: Dur,
    /// Confidence of the intervals budgets are judged by (two-sided).
    pub confidence: f64,
}

/// A confidence given on the command line: a fraction in [0.5, 1).
pub fn check_confidence(c: f64) -> Result<f64> {
    if (0.5..1.0).contains(&c) {
        Ok(c)
    } else {
        Err(Error::Usage(format!(
            "--confidence {c}: a fraction in [0.5, 1), such as 0.99"
        )))
    }
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub seed: u64,
    pub warmup: Dur,
    /// Histogram interval.
    pub interval: Dur,
    /// A request taking longer is abandoned and counted as a timeout.
    pub timeout: Dur,
    /// Added to every request before it is sent (spun, not slept, below 2 ms):
    /// a known regression, to prove the gate catches one.
    pub inject_delay: Dur,
    /// How early an open phase releases each request to its worker, which
    /// spins out the rest (`early_release`); None: the driver's rule,
    /// 200 µs at rates up to 500/s and none above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_release: Option<Dur>,
    pub phases: Vec<Phase>,
    pub mix: Vec<MixEntry>,
    pub tenants: Tenants,
    pub variants: Vec<Variant>,
    pub budgets: BTreeMap<String, Budget>,
    pub validity: Validity,
    /// Maintenance jobs run during each variant (`[[job]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<ScheduledJob>,
}

impl Scenario {
    /// Wall time of one variant: the phases, one after another.
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration.0).sum()
    }

    /// Scale the phases to last `total` together.
    pub fn set_duration(&mut self, total: Duration) {
        let old = self.duration().as_secs_f64();
        for p in &mut self.phases {
            p.duration = Dur(Duration::from_secs_f64(
                p.duration.0.as_secs_f64() * total.as_secs_f64() / old,
            ));
        }
        if self.warmup.0 >= total {
            self.warmup = Dur(total / 5);
        }
    }

    /// Scale the open phases' rates so that the highest is `rate`.
    pub fn set_rate(&mut self, rate: f64) -> Result<()> {
        let peak = self
            .phases
            .iter()
            .filter_map(|p| match p.load {
                Load::Open { rate, ramp_to, .. } => Some(rate.max(ramp_to)),
                Load::Closed { .. } => None,
            })
            .fold(0.0, f64::max);
        if peak <= 0.0 {
            return Err(Error::Usage(format!(
                "--rate: {} has no open phase whose rate could be set",
                self.path.display()
            )));
        }
        for p in &mut self.phases {
            if let Load::Open {
                rate: r, ramp_to, ..
            } = &mut p.load
            {
                *r *= rate / peak;
                *ramp_to *= rate / peak;
            }
        }
        Ok(())
    }

    /// Keep only the named variants, in the order given.
    pub fn select_variants(&mut self, names: &[String]) -> Result<()> {
        let mut out = Vec::new();
        for n in names {
            match self.variants.iter().find(|v| &v.name == n) {
                Some(v) => out.push(v.clone()),
                None => {
                    return Err(Error::Usage(format!(
                        "--variant {n:?}: {} has the variants {}",
                        self.path.display(),
                        self.variants
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
        self.variants = out;
        Ok(())
    }

    /// Whether any phase is closed-loop.
    pub fn has_closed_phase(&self) -> bool {
        self.phases
            .iter()
            .any(|p| matches!(p.load, Load::Closed { .. }))
    }
}

/// A budgets file for `rehearse gate --budgets`: `[budgets.<operation>]`
/// tables, as in a scenario.
pub fn parse_budgets(path: &Path, text: &str) -> Result<BTreeMap<String, Budget>> {
    let f: BudgetsFile =
        toml::from_str(text).map_err(|e| Error::Usage(toml_error_at(path, text, &e)))?;
    Ok(f.budgets
        .into_iter()
        .map(|(op, b)| {
            (
                op,
                Budget {
                    p50: b.p50,
                    p95: b.p95,
                    p99: b.p99,
                    p999: b.p999,
                    max: b.max,
                    error_rate: b.error_rate.map(|r| *r.get_ref()),
                },
            )
        })
        .collect())
}

/// Read and check a scenario file.
pub fn load(path: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(path).io("reading the scenario", path)?;
    parse(path, &text)
}

/// Check scenario text; `path` is only used in messages. Every error found
/// is in the message, one `file:line:column: what` line each.
pub fn parse(path: &Path, text: &str) -> Result<Scenario> {
    check(path, text).map_err(|errors| Error::Usage(errors.join("\n")))
}
