//! Scenario files (`scenarios/*.toml`): what a run does, parsed and
//! checked before anything connects.
//!
//! A scenario names its phases (open: an arrival rate, constant or Poisson,
//! optionally ramped, with a cap on requests in flight; closed: users with a
//! think time), an operation mix with weights, how tenants are chosen, the
//! variants of the estate to run, latency budgets, and a seed. Every error
//! names the file, line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, IoContext, Result};
use crate::repo::{Pooling, Via};
use crate::schema::Mode;
use crate::text::{line_col, toml_error_at};

/// A duration written as `250us`, `5ms`, `10s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl std::str::FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let bad = || format!("bad duration {s:?}: write a number and a unit, e.g. 500ms, 10s, 2m");
        let n: f64 = num.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        if !(0.0..=30.0 * 86_400.0).contains(&secs) {
            return Err(format!("duration {s:?} is out of range"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = self.0.as_micros();
        if us % 1_000_000 == 0 {
            write!(f, "{}s", us / 1_000_000)
        } else if us % 1000 == 0 {
            write!(f, "{}ms", us / 1000)
        } else {
            write!(f, "{us}us")
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

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

impl Operation {
    pub const ALL: [Operation; 11] = [
        Operation::RecordRevenue,
        Operation::RecordExpense,
        Operation::Adjust,
        Operation::Void,
        Operation::PostBatch,
        Operation::Dashboard,
        Operation::Pnl,
        Operation::Properties,
        Operation::Ledger,
        Operation::Portfolio,
        Operation::Sql,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::RecordRevenue => "record_revenue",
            Operation::RecordExpense => "record_expense",
            Operation::Adjust => "adjust",
            Operation::Void => "void",
            Operation::PostBatch => "post_batch",
            Operation::Dashboard => "dashboard",
            Operation::Pnl => "pnl",
            Operation::Properties => "properties",
            Operation::Ledger => "ledger",
            Operation::Portfolio => "portfolio",
            Operation::Sql => "sql",
        }
    }

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    name: Option<String>,
    duration: Dur,
    rate: Option<Spanned<f64>>,
    ramp_to: Option<Spanned<f64>>,
    arrival: Option<Arrival>,
    max_in_flight: Option<Spanned<u32>>,
    late_after: Option<Dur>,
    users: Option<Spanned<u32>>,
    think: Option<Dur>,
}

/// A `[[job]]`: a maintenance job run during each variant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: Spanned<String>,
    start: Option<Dur>,
    every: Option<Spanned<Dur>>,
    budget: Option<Dur>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    operation: Operation,
    weight: Spanned<f64>,
    name: Option<Spanned<String>>,
    days: Option<Spanned<u32>>,
    limit: Option<Spanned<u32>>,
    top: Option<Spanned<u32>>,
    entries: Option<Spanned<u32>>,
    sql: Option<Spanned<String>>,
    params: Option<Spanned<Vec<String>>>,
    via: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum DistributionName {
    Uniform,
    Zipf,
    Tiers,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    distribution: Spanned<DistributionName>,
    exponent: Option<Spanned<f64>>,
    tiers: Option<Spanned<TierWeights>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantFile {
    name: Spanned<String>,
    mode: Spanned<String>,
    reads: Option<Spanned<String>>,
    cache: Option<bool>,
    pool: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetFile {
    pub(crate) p50: Option<Dur>,
    pub(crate) p95: Option<Dur>,
    pub(crate) p99: Option<Dur>,
    #[serde(rename = "p99.9", alias = "p999")]
    pub(crate) p999: Option<Dur>,
    pub(crate) max: Option<Dur>,
    pub(crate) error_rate: Option<Spanned<f64>>,
}

impl BudgetFile {
    /// The budget of `op` as written (its table at `span`), or the error and
    /// where: an error rate outside 0..1, or a budget that sets nothing.
    pub(crate) fn budget(
        &self,
        op: &str,
        span: std::ops::Range<usize>,
    ) -> std::result::Result<Budget, (std::ops::Range<usize>, String)> {
        let error_rate = match &self.error_rate {
            Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                return Err((
                    r.span(),
                    format!("error_rate is a fraction in 0..1, not {}", r.get_ref()),
                ))
            }
            r => r.as_ref().map(|r| *r.get_ref()),
        };
        let budget = Budget {
            p50: self.p50,
            p95: self.p95,
            p99: self.p99,
            p999: self.p999,
            max: self.max,
            error_rate,
        };
        if budget.limits().is_empty() && budget.error_rate.is_none() {
            return Err((
                span,
                format!("the budget of {op:?} sets nothing: give any of p50, p95, p99, p99.9, max, error_rate"),
            ));
        }
        Ok(budget)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidityFile {
    min_rate: Option<Spanned<f64>>,
    max_driver_lag: Option<Dur>,
    confidence: Option<Spanned<f64>>,
}

/// A scenario file as read: its top level, and its arrays and budgets
/// read one entry at a time (see [`check`]).
struct ScenarioFile {
    head: HeadFile,
    jobs: Vec<Spanned<JobFile>>,
    phases: Spanned<Vec<Spanned<PhaseFile>>>,
    mix: Spanned<Vec<Spanned<MixFile>>>,
    variants: Vec<Spanned<VariantFile>>,
    budgets: BTreeMap<Spanned<String>, Spanned<BudgetFile>>,
}

/// The top level of a scenario file without its arrays and budgets, which
/// are read one entry at a time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    warmup: Option<Dur>,
    interval: Option<Spanned<Dur>>,
    timeout: Option<Dur>,
    inject_delay: Option<Dur>,
    tenants: Option<TenantsFile>,
    validity: Option<ValidityFile>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetsFile {
    budgets: BTreeMap<String, BudgetFile>,
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

/// Check scenario text and return every error it can find, in file order,
/// each as `file:line:column: what`.
///
/// TOML stops at its first error, so a line it refuses (an unknown key, a
/// value of the wrong type, bad syntax) is reported and blanked, keeping
/// every offset, and the text is read again. Once it reads, each phase, mix
/// entry, variant and budget is checked on its own, so an error in one does
/// not hide an error in the next.
pub fn check(path: &Path, text: &str) -> std::result::Result<Scenario, Vec<String>> {
    use toml::de::{DeTable, DeValue};
    let mut errors: Vec<((usize, usize), String)> = Vec::new();
    let mut located = |span: std::ops::Range<usize>, msg: &str| {
        let (line, col) = line_col(text, span.start);
        errors.push((
            (line, col),
            format!("{}:{line}:{col}: {}", path.display(), msg.trim_end()),
        ));
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        located(e.span().unwrap_or(0..0), e.message());
    }
    if syntax.is_empty() {
        let whole = doc.span();
        let mut head = DeTable::default();
        let (mut phases, mut mix, mut variants) = (None, None, Vec::new());
        let mut jobs = Vec::new();
        let mut budgets = BTreeMap::new();
        let mut broken = false;
        let mut mix_names: Option<Vec<String>> = Some(Vec::new());
        for (key, value) in doc.into_inner() {
            let span = value.span();
            match key.get_ref().as_ref() {
                "phase" | "mix" | "variant" | "job" => {
                    let Some(items) = value.get_ref().as_array() else {
                        located(
                            span,
                            &format!(
                                "`{}` is an array of tables: write [[{}]]",
                                key.get_ref(),
                                key.get_ref()
                            ),
                        );
                        broken = true;
                        continue;
                    };
                    let items = items.clone();
                    match key.get_ref().as_ref() {
                        "phase" => {
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<PhaseFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            phases = Some(Spanned::new(span, read.into_iter().flatten().collect()));
                        }
                        "mix" => {
                            // Names as written, also of entries that do not read.
                            mix_names = items
                                .iter()
                                .map(|m| {
                                    let t = m.get_ref().as_table()?;
                                    let field = |k: &str| {
                                        t.iter()
                                            .find(|(key, _)| key.get_ref().as_ref() == k)
                                            .and_then(|(_, v)| {
                                                v.get_ref().as_str().map(str::to_string)
                                            })
                                    };
                                    field("name").or_else(|| field("operation"))
                                })
                                .collect();
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<MixFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            mix = Some(Spanned::new(span, read.into_iter().flatten().collect()));
                        }
                        "job" => {
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<JobFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            jobs = read.into_iter().flatten().collect();
                        }
                        _ => {
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<VariantFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            variants = read.into_iter().flatten().collect();
                        }
                    }
                }
                "budgets" => {
                    let Some(t) = value.get_ref().as_table() else {
                        located(span, "`budgets` is a table: write [budgets.<operation>]");
                        broken = true;
                        continue;
                    };
                    for (op, b) in t.clone() {
                        let op = Spanned::new(op.span(), op.get_ref().to_string());
                        match read_entry::<BudgetFile>(b, &mut located) {
                            Some(b) => {
                                budgets.insert(op, b);
                            }
                            None => broken = true,
                        }
                    }
                }
                _ => {
                    head.insert(key, value);
                }
            }
        }
        let head = read_entry::<HeadFile>(Spanned::new(whole, DeValue::Table(head)), &mut located);
        if let Some(h) = head.map(Spanned::into_inner) {
            let file = ScenarioFile {
                head: h,
                jobs,
                phases: phases.unwrap_or_else(|| Spanned::new(0..0, Vec::new())),
                mix: mix.unwrap_or_else(|| Spanned::new(0..0, Vec::new())),
                variants,
                budgets,
            };
            let checker = Checker {
                path,
                text,
                errors: std::cell::RefCell::new(Vec::new()),
                whole: !broken,
                mix_names,
            };
            let out = checker.scenario(file);
            errors.extend(checker.errors.into_inner());
            if let Some(s) = out.filter(|_| errors.is_empty() && !broken) {
                return Ok(s);
            }
        }
    }
    errors.sort_by_key(|e| e.0);
    errors.dedup_by(|a, b| a.1 == b.1);
    Err(errors.into_iter().map(|e| e.1).collect())
}

/// Read one table of a scenario file (a phase, a mix entry, a budget),
/// reporting every key it refuses: a refused key is reported, taken out
/// and the table read again. None when a known key was refused: what is
/// left is not checked further, so a key taken out cannot cause errors of
/// its own (unknown keys are only reported).
fn read_entry<T: serde::de::DeserializeOwned>(
    value: Spanned<toml::de::DeValue<'_>>,
    located: &mut impl FnMut(std::ops::Range<usize>, &str),
) -> Option<Spanned<T>> {
    use toml::de::{DeValue, ValueDeserializer};
    let mut value = value;
    let mut removed: Vec<String> = Vec::new();
    // Only unknown keys taken out: what is left is the whole entry.
    let mut only_unknown = true;
    for _ in 0..64 {
        let e = match Spanned::<T>::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(t) if only_unknown => return Some(t),
            Ok(_) => return None,
            Err(e) => e,
        };
        let msg = e.message().to_string();
        // A required key taken out for its own error: said already.
        if msg.starts_with("missing field")
            && removed.iter().any(|k| msg.contains(&format!("`{k}`")))
        {
            return None;
        }
        let span = e.span().unwrap_or_else(|| value.span());
        located(span.clone(), &msg);
        only_unknown &= msg.starts_with("unknown field");
        // Take out the key the error is in, and read the rest.
        let span_of_value = value.span();
        let DeValue::Table(t) = value.into_inner() else {
            return None;
        };
        let culprit = t
            .iter()
            .find(|(k, v)| {
                let (k, v) = (k.span(), v.span());
                (k.start..v.end.max(k.end)).contains(&span.start)
            })
            .map(|(k, _)| k.get_ref().to_string());
        let culprit = culprit?;
        removed.push(culprit.clone());
        let rest = t
            .into_iter()
            .filter(|(k, _)| k.get_ref().as_ref() != culprit.as_str())
            .collect();
        value = Spanned::new(span_of_value, DeValue::Table(rest));
    }
    None
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    /// Errors found so far, with their (line, column).
    errors: std::cell::RefCell<Vec<((usize, usize), String)>>,
    /// Every entry was read: checks across entries (at least one phase,
    /// names given twice) can be made.
    whole: bool,
    /// The names of the mix as written (None when one cannot be told).
    mix_names: Option<Vec<String>>,
}

impl Checker<'_> {
    fn at(&self, span: std::ops::Range<usize>, msg: impl std::fmt::Display) -> Error {
        let (line, col) = line_col(self.text, span.start);
        Error::Usage(format!("{}:{line}:{col}: {msg}", self.path.display()))
    }

    /// Keep `e` (from [`Checker::at`]) and go on checking.
    fn note(&self, e: Error) {
        let msg = e.to_string();
        // The position back from "file:line:col:", to keep file order.
        let pos = msg
            .strip_prefix(&format!("{}:", self.path.display()))
            .and_then(|rest| {
                let mut it = rest.splitn(3, ':');
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .unwrap_or((usize::MAX, 0));
        self.errors.borrow_mut().push((pos, msg));
    }

    /// The value of `r`, or `fallback` after keeping its error.
    fn or_note<T>(&self, r: Result<T>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.note(e);
            fallback
        })
    }

    fn positive<T: Copy + Into<f64> + std::fmt::Display>(
        &self,
        v: &Option<Spanned<T>>,
        what: &str,
    ) -> Result<Option<T>> {
        match v {
            Some(s) if (*s.get_ref()).into() <= 0.0 || !(*s.get_ref()).into().is_finite() => {
                Err(self.at(
                    s.span(),
                    format!("{what} must be positive, not {}", s.get_ref()),
                ))
            }
            Some(s) => Ok(Some(*s.get_ref())),
            None => Ok(None),
        }
    }

    /// The scenario, or None when any error was noted.
    fn scenario(&self, f: ScenarioFile) -> Option<Scenario> {
        let name = f.head.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        if self.whole && f.phases.get_ref().is_empty() {
            self.note(self.at(f.phases.span(), "a scenario needs at least one [[phase]]"));
        }
        let phases: Vec<Phase> = f
            .phases
            .get_ref()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.phase(i, p).map_err(|e| self.note(e)).ok())
            .collect();
        if self.whole && f.mix.get_ref().is_empty() {
            self.note(self.at(f.mix.span(), "a scenario needs at least one [[mix]] entry"));
        }
        let entries: Vec<Option<MixEntry>> = f
            .mix
            .get_ref()
            .iter()
            .map(|m| self.mix_entry(m).map_err(|e| self.note(e)).ok())
            .collect();
        let mix_ok = self.whole && entries.iter().all(Option::is_some);
        let mix: Vec<MixEntry> = entries.into_iter().flatten().collect();
        let total: f64 = mix.iter().map(|m| m.weight).sum();
        if mix_ok && !mix.is_empty() && total <= 0.0 {
            let first = &f.mix.get_ref()[0];
            self.note(self.at(
                first.get_ref().weight.span(),
                "the weights of the mix sum to zero: give at least one operation a positive weight",
            ));
        }
        if mix_ok {
            for (i, m) in mix.iter().enumerate() {
                if mix[..i].iter().any(|o| o.name == m.name) {
                    let span = f.mix.get_ref()[i].span();
                    self.note(self.at(
                        span,
                        format!(
                            "the mix has {:?} twice: give one of them a `name` of its own",
                            m.name
                        ),
                    ));
                }
            }
        }
        let tenants = match &f.head.tenants {
            None => Tenants::Uniform,
            Some(t) => self.or_note(self.tenants(t), Tenants::Uniform),
        };
        let variants = if f.variants.is_empty() {
            Variant::defaults()
        } else {
            let mut out: Vec<Variant> = Vec::new();
            for v in &f.variants {
                let Some(v2) = self.variant(v.get_ref()).map_err(|e| self.note(e)).ok() else {
                    continue;
                };
                if self.whole && out.iter().any(|o| o.name == v2.name) {
                    self.note(self.at(
                        v.get_ref().name.span(),
                        format!("variant {:?} is named twice", v2.name),
                    ));
                    continue;
                }
                out.push(v2);
            }
            out
        };
        let mut budgets = BTreeMap::new();
        for (op, b) in &f.budgets {
            if let Some(names) = self
                .mix_names
                .as_ref()
                .filter(|n| !n.contains(op.get_ref()))
            {
                self.note(self.at(
                    op.span(),
                    format!(
                        "budget for {:?}, which is not in the mix (the mix has {})",
                        op.get_ref(),
                        names.join(", ")
                    ),
                ));
                continue;
            }
            match b.get_ref().budget(op.get_ref(), b.span()) {
                Ok(budget) => {
                    budgets.insert(op.get_ref().clone(), budget);
                }
                Err((span, msg)) => self.note(self.at(span, msg)),
            }
        }
        let default_validity = Validity {
            min_rate: 0.95,
            max_driver_lag: Dur(Duration::from_millis(5)),
            confidence: DEFAULT_CONFIDENCE,
        };
        let validity = match &f.head.validity {
            None => default_validity,
            Some(v) => Validity {
                min_rate: match &v.min_rate {
                    Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                        self.note(self.at(r.span(), "min_rate is a fraction in 0..1"));
                        default_validity.min_rate
                    }
                    r => r.as_ref().map_or(0.95, |r| *r.get_ref()),
                },
                max_driver_lag: v.max_driver_lag.unwrap_or(Dur(Duration::from_millis(5))),
                confidence: match &v.confidence {
                    Some(c) if !(0.5..1.0).contains(c.get_ref()) => {
                        self.note(self.at(
                            c.span(),
                            "confidence is a fraction in [0.5, 1), such as 0.99",
                        ));
                        default_validity.confidence
                    }
                    c => c
                        .as_ref()
                        .map_or(default_validity.confidence, |c| *c.get_ref()),
                },
            },
        };
        let interval = f
            .head
            .interval
            .as_ref()
            .map_or(Dur(Duration::from_secs(1)), |i| *i.get_ref());
        if interval.0 < Duration::from_millis(100) {
            let span = f.head.interval.as_ref().map_or(0..0, |i| i.span());
            self.note(self.at(
                span,
                format!("interval {interval} is too short: at least 100ms"),
            ));
        }
        let jobs: Vec<ScheduledJob> = f
            .jobs
            .iter()
            .filter_map(|j| self.job(j).map_err(|e| self.note(e)).ok())
            .collect();
        if !self.errors.borrow().is_empty() {
            return None;
        }
        Some(Scenario {
            name,
            description: f.head.description.unwrap_or_default(),
            path: self.path.to_path_buf(),
            seed: f.head.seed.unwrap_or(42),
            warmup: f.head.warmup.unwrap_or(Dur(Duration::ZERO)),
            interval,
            timeout: f.head.timeout.unwrap_or(Dur(Duration::from_secs(30))),
            inject_delay: f.head.inject_delay.unwrap_or(Dur(Duration::ZERO)),
            phases,
            mix,
            tenants,
            variants,
            budgets,
            validity,
            jobs,
        })
    }

    fn job(&self, j: &Spanned<JobFile>) -> Result<ScheduledJob> {
        let f = j.get_ref();
        let job: crate::jobs::Job = f.name.get_ref().parse().map_err(|_| {
            self.at(
                f.name.span(),
                format!(
                    "unknown job {:?}; one of {}",
                    f.name.get_ref(),
                    crate::jobs::Job::NAMES.join(", ")
                ),
            )
        })?;
        if let Some(e) = f
            .every
            .as_ref()
            .filter(|e| e.get_ref().0 < Duration::from_secs(1))
        {
            return Err(self.at(
                e.span(),
                format!("job {job}: every {} is too often: at least 1s", e.get_ref()),
            ));
        }
        Ok(ScheduledJob {
            job,
            start: f.start.unwrap_or(Dur(Duration::ZERO)),
            every: f.every.as_ref().map(|e| *e.get_ref()),
            budget: f.budget.unwrap_or(Dur(Duration::from_secs(60))),
        })
    }

    fn phase(&self, i: usize, p: &Spanned<PhaseFile>) -> Result<Phase> {
        let span = p.span();
        let p = p.get_ref();
        let name = p.name.clone().unwrap_or_else(|| format!("phase {}", i + 1));
        if p.duration.0.is_zero() {
            return Err(self.at(span, format!("{name}: duration must be more than zero")));
        }
        let load = match (&p.rate, &p.users) {
            (Some(_), Some(u)) => {
                return Err(self.at(
                    u.span(),
                    format!("{name}: give `rate` (open model) or `users` (closed model), not both"),
                ))
            }
            (None, None) => {
                return Err(self.at(
                    span,
                    format!(
                        "{name}: give `rate` (requests/s, open model) or `users` (closed model)"
                    ),
                ))
            }
            (Some(_), None) => {
                if let Some(t) = &p.think {
                    return Err(self.at(
                        span,
                        format!("{name}: `think` ({t}) belongs to closed phases (`users`)"),
                    ));
                }
                let rate = self.positive(&p.rate, "rate")?.unwrap_or(0.0);
                let ramp_to = self.positive(&p.ramp_to, "ramp_to")?.unwrap_or(rate);
                Load::Open {
                    rate,
                    ramp_to,
                    arrival: p.arrival.unwrap_or(Arrival::Poisson),
                    max_in_flight: self
                        .positive(&p.max_in_flight, "max_in_flight")?
                        .unwrap_or(64),
                    late_after: p.late_after.unwrap_or(Dur(Duration::from_millis(10))),
                }
            }
            (None, Some(_)) => {
                for (key, set) in [
                    ("ramp_to", p.ramp_to.is_some()),
                    ("arrival", p.arrival.is_some()),
                    ("max_in_flight", p.max_in_flight.is_some()),
                    ("late_after", p.late_after.is_some()),
                ] {
                    if set {
                        return Err(self.at(
                            span,
                            format!("{name}: `{key}` belongs to open phases (`rate`)"),
                        ));
                    }
                }
                Load::Closed {
                    users: self.positive(&p.users, "users")?.unwrap_or(1),
                    think: p.think.unwrap_or(Dur(Duration::ZERO)),
                }
            }
        };
        Ok(Phase {
            name,
            duration: p.duration,
            load,
        })
    }

    fn mix_entry(&self, m: &Spanned<MixFile>) -> Result<MixEntry> {
        let span = m.span();
        let m = m.get_ref();
        let op = m.operation;
        let w = *m.weight.get_ref();
        if w < 0.0 || !w.is_finite() {
            return Err(self.at(
                m.weight.span(),
                format!("weight must be 0 or more, not {w}"),
            ));
        }
        // Keys an operation does not take are refused, so a typo in intent shows.
        let takes: &[&str] = match op {
            Operation::Dashboard | Operation::Properties => &["days"],
            Operation::Ledger => &["days", "limit"],
            Operation::Portfolio => &["days", "top"],
            Operation::PostBatch => &["entries"],
            Operation::Sql => &["sql", "params", "via"],
            _ => &[],
        };
        let given: [(&str, Option<std::ops::Range<usize>>); 7] = [
            ("days", m.days.as_ref().map(|s| s.span())),
            ("limit", m.limit.as_ref().map(|s| s.span())),
            ("top", m.top.as_ref().map(|s| s.span())),
            ("entries", m.entries.as_ref().map(|s| s.span())),
            ("sql", m.sql.as_ref().map(|s| s.span())),
            ("params", m.params.as_ref().map(|s| s.span())),
            ("via", m.via.as_ref().map(|s| s.span())),
        ];
        for (key, s) in given {
            if let Some(s) = s {
                if !takes.contains(&key) {
                    return Err(self.at(s, format!("`{key}` does not apply to {}", op.name())));
                }
            }
        }
        let days = self.positive(&m.days, "days")?.unwrap_or(match op {
            Operation::Dashboard => 30,
            Operation::Portfolio => 14,
            _ => 7,
        });
        let limit = self.positive(&m.limit, "limit")?.unwrap_or(50);
        let top = self.positive(&m.top, "top")?.unwrap_or(10);
        let entries = self.positive(&m.entries, "entries")?.unwrap_or(50);
        if entries as usize > crate::repo::finance::MAX_BATCH {
            let s = m.entries.as_ref().unwrap().span();
            return Err(self.at(
                s,
                format!(
                    "a batch holds at most {} entries",
                    crate::repo::finance::MAX_BATCH
                ),
            ));
        }
        let sql = m.sql.as_ref().map(|s| s.get_ref().clone());
        if op == Operation::Sql && sql.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(self.at(span, "a sql operation needs `sql = \"SELECT ...\"`"));
        }
        let params = match &m.params {
            None => Vec::new(),
            Some(p) => p
                .get_ref()
                .iter()
                .map(|s| s.parse::<SqlParam>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| self.at(p.span(), e))?,
        };
        if let Some(sql) = &sql {
            let want = (1..=99)
                .take_while(|n| sql.contains(&format!("${n}")))
                .count();
            if want != params.len() {
                let s = m.params.as_ref().map_or(span.clone(), |p| p.span());
                return Err(self.at(
                    s,
                    format!(
                        "the statement uses {want} parameter(s) ($1..${want}) but `params` gives {}",
                        params.len()
                    ),
                ));
            }
        }
        let via = match &m.via {
            None => None,
            Some(v) => Some(
                v.get_ref()
                    .parse::<Via>()
                    .map_err(|e| self.at(v.span(), e))?,
            ),
        };
        let name = match &m.name {
            None => op.name().to_string(),
            Some(n) => {
                let s = n.get_ref();
                if s.is_empty()
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(self.at(
                        n.span(),
                        "a name is letters, digits, '_' and '-' (it becomes a histogram tag)",
                    ));
                }
                s.clone()
            }
        };
        Ok(MixEntry {
            name,
            operation: op,
            weight: w,
            days,
            limit,
            top,
            entries,
            sql,
            params,
            via,
        })
    }

    fn tenants(&self, t: &TenantsFile) -> Result<Tenants> {
        let not_here = |what: &str, s: std::ops::Range<usize>| {
            self.at(s, format!("`{what}` does not apply to this distribution"))
        };
        Ok(match t.distribution.get_ref() {
            DistributionName::Uniform => {
                if let Some(e) = &t.exponent {
                    return Err(not_here("exponent", e.span()));
                }
                if let Some(w) = &t.tiers {
                    return Err(not_here("tiers", w.span()));
                }
                Tenants::Uniform
            }
            DistributionName::Zipf => {
                if let Some(w) = &t.tiers {
                    return Err(not_here("tiers", w.span()));
                }
                let exponent = self.positive(&t.exponent, "exponent")?.unwrap_or(1.0);
                Tenants::Zipf { exponent }
            }
            DistributionName::Tiers => {
                if let Some(e) = &t.exponent {
                    return Err(not_here("exponent", e.span()));
                }
                let Some(w) = &t.tiers else {
                    return Err(self.at(
                        t.distribution.span(),
                        "tiers needs `tiers = { single = .., small = .., medium = .., chain = .. }`",
                    ));
                };
                let weights = *w.get_ref();
                let all = [weights.single, weights.small, weights.medium, weights.chain];
                if all.iter().any(|x| *x < 0.0 || !x.is_finite()) || all.iter().sum::<f64>() <= 0.0
                {
                    return Err(self.at(
                        w.span(),
                        "tier weights are 0 or more and at least one is positive",
                    ));
                }
                Tenants::Tiers { weights }
            }
        })
    }

    fn variant(&self, v: &VariantFile) -> Result<Variant> {
        let name = v.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.at(
                v.name.span(),
                "a variant name is letters, digits, '_' and '-' (it becomes a histogram tag)",
            ));
        }
        let mode: Mode = v
            .mode
            .get_ref()
            .parse()
            .map_err(|e| self.at(v.mode.span(), e))?;
        let reads = match &v.reads {
            None => Via::Auto,
            Some(r) => r.get_ref().parse().map_err(|e| self.at(r.span(), e))?,
        };
        let pool = match &v.pool {
            None => Pooling::Direct,
            Some(p) => p.get_ref().parse().map_err(|e| self.at(p.span(), e))?,
        };
        Ok(Variant {
            name,
            mode,
            reads,
            cache: v.cache.unwrap_or(true),
            pool,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "mixed"
seed = 7
warmup = "5s"

[[phase]]
name = "ramp"
duration = "30s"
rate = 100
ramp_to = 400

[[phase]]
duration = "1m"
users = 8
think = "10ms"

[[mix]]
operation = "dashboard"
weight = 3

[[mix]]
operation = "sql"
name = "probe"
weight = 1
sql = "SELECT $1::int8 + $2"
params = ["org", "int:1..10"]

[tenants]
distribution = "zipf"
exponent = 1.2

[[variant]]
name = "part"
mode = "partitioned"
reads = "replica"
cache = false
pool = "pgbouncer"

[budgets.dashboard]
p99 = "20ms"
error_rate = 0.01
"#;

    fn err(text: &str) -> String {
        parse(Path::new("s.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn jobs_parse_and_a_wrong_one_is_named_with_its_line_and_column() {
        let base =
            "[[phase]]\nduration = \"10s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n";
        let s = parse(
            Path::new("s.toml"),
            &format!("{base}[[job]]\nname = \"reconcile\"\nstart = \"2s\"\nevery = \"5s\"\n[[job]]\nname = \"analyze\"\n"),
        )
        .unwrap();
        assert_eq!(s.jobs.len(), 2);
        assert_eq!(s.jobs[0].job, crate::jobs::Job::Reconcile);
        assert_eq!(s.jobs[0].every, Some(Dur(Duration::from_secs(5))));
        assert_eq!((s.jobs[1].start.0, s.jobs[1].every), (Duration::ZERO, None));
        let e = err(&format!("{base}[[job]]\nname = \"vacuum\"\n"));
        assert!(e.starts_with("s.toml:8:8: unknown job \"vacuum\""), "{e}");
        let e = err(&format!(
            "{base}[[job]]\nname = \"analyze\"\nevery = \"10ms\"\n"
        ));
        assert!(
            e.starts_with("s.toml:9:9: job analyze: every 10ms is too often"),
            "{e}"
        );
        let e = err(&format!("{base}[[job]]\nname = \"analyze\"\nwhen = 1\n"));
        assert!(e.contains("s.toml:9:1: unknown field `when`"), "{e}");
    }

    #[test]
    fn a_full_scenario_parses_with_its_defaults() {
        let s = parse(Path::new("scenarios/mixed.toml"), GOOD).unwrap();
        assert_eq!(s.name, "mixed");
        assert_eq!(s.seed, 7);
        assert_eq!(s.duration(), Duration::from_secs(90));
        assert_eq!(s.phases[1].name, "phase 2");
        assert_eq!(
            s.phases[0].load,
            Load::Open {
                rate: 100.0,
                ramp_to: 400.0,
                arrival: Arrival::Poisson,
                max_in_flight: 64,
                late_after: Dur(Duration::from_millis(10)),
            }
        );
        assert_eq!(s.mix[1].params, vec![SqlParam::Org, SqlParam::Int(1, 10)]);
        assert_eq!(s.mix[1].name, "probe");
        assert_eq!(s.mix[0].days, 30);
        assert_eq!(s.tenants, Tenants::Zipf { exponent: 1.2 });
        assert_eq!(s.variants.len(), 1);
        assert_eq!(s.variants[0].pool, Pooling::PgBouncer);
        assert_eq!(s.variants[0].reads, Via::Replica);
        assert_eq!(
            s.budgets["dashboard"].p99,
            Some(Dur(Duration::from_millis(20)))
        );
        assert!(s.has_closed_phase());
    }

    #[test]
    fn rate_and_duration_overrides_scale_the_phases() {
        let mut s = parse(Path::new("s.toml"), GOOD).unwrap();
        s.set_rate(800.0).unwrap();
        match s.phases[0].load {
            Load::Open { rate, ramp_to, .. } => assert_eq!((rate, ramp_to), (200.0, 800.0)),
            _ => unreachable!(),
        }
        s.set_duration(Duration::from_secs(9));
        assert_eq!(s.phases[0].duration.0, Duration::from_secs(3));
        assert_eq!(s.phases[1].duration.0, Duration::from_secs(6));
        assert!(s
            .select_variants(&["nope".into()])
            .unwrap_err()
            .to_string()
            .contains("part"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_line_and_column() {
        let e = err("bogus = 1\n[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n");
        assert!(e.starts_with("s.toml:1:1:"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e =
            err("[[phase]]\nduration = 5\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n");
        assert!(e.starts_with("s.toml:2:12:"), "{e}");
        let e = err("[[phase]]\nduration = \"5 parsecs\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n");
        assert!(
            e.starts_with("s.toml:2:12:") && e.contains("bad duration"),
            "{e}"
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported_each_where_it_is() {
        // An unknown key, a value of the wrong type in another table, and a
        // check across tables (a budget for an operation not in the mix).
        let text = "[[phase]]\nduration = \"10s\"\nrate = 5\ncolour = \"blue\"\n\
                    [[mix]]\noperation = \"dashboard\"\nweight = \"heavy\"\n\
                    [[mix]]\noperation = \"pnl\"\nweight = 1\ndays = 3\n\
                    [budgets.ledger]\np99 = \"10ms\"\n";
        let errors = check(Path::new("s.toml"), text).unwrap_err();
        let places: Vec<String> = errors
            .iter()
            .map(|e| e.splitn(4, ':').take(3).collect::<Vec<_>>().join(":"))
            .collect();
        assert_eq!(
            places,
            ["s.toml:4:1", "s.toml:7:10", "s.toml:11:8", "s.toml:12:10"],
            "{errors:#?}"
        );
        assert!(errors[0].contains("colour") && errors[1].contains("heavy"));
        assert!(errors[2].contains("`days` does not apply to pnl"));
        assert!(errors[3].contains("not in the mix"));
        // The joined message of `parse` carries them all.
        let e = err(text);
        assert_eq!(e.lines().count(), 4, "{e}");
    }

    #[test]
    fn unknown_operations_are_refused_where_they_are_written() {
        let e = err(
            "[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"refund\"\nweight = 1\n",
        );
        assert!(e.starts_with("s.toml:5:13:"), "{e}");
        assert!(e.contains("refund") && e.contains("dashboard"), "{e}");
    }

    #[test]
    fn weights_summing_to_zero_are_refused() {
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 0\n[[mix]]\noperation = \"ledger\"\nweight = 0\n");
        assert!(e.starts_with("s.toml:6:10:"), "{e}");
        assert!(e.contains("sum to zero"), "{e}");
    }

    #[test]
    fn a_budget_on_an_operation_not_in_the_mix_is_refused() {
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[budgets.ledger]\np99 = \"5ms\"\n");
        assert!(e.starts_with("s.toml:7:10:"), "{e}");
        assert!(e.contains("not in the mix") && e.contains("pnl"), "{e}");
    }

    #[test]
    fn phase_models_and_operation_keys_are_checked() {
        let head = "[[mix]]\noperation = \"pnl\"\nweight = 1\n";
        let e = err(&format!(
            "{head}[[phase]]\nduration = \"1s\"\nrate = 1\nusers = 2\n"
        ));
        assert!(
            e.starts_with("s.toml:7:9:") && e.contains("not both"),
            "{e}"
        );
        let e = err(&format!("{head}[[phase]]\nduration = \"1s\"\n"));
        assert!(e.contains("give `rate`"), "{e}");
        let e = err(&format!("{head}[[phase]]\nduration = \"1s\"\nrate = -3\n"));
        assert!(
            e.starts_with("s.toml:6:8:") && e.contains("positive"),
            "{e}"
        );
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\nlimit = 5\n");
        assert!(
            e.starts_with("s.toml:7:9:") && e.contains("does not apply to pnl"),
            "{e}"
        );
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT $1, $2\"\nparams = [\"org\"]\n");
        assert!(
            e.starts_with("s.toml:8:10:") && e.contains("2 parameter"),
            "{e}"
        );
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT $1\"\nparams = [\"int:9..1\"]\n");
        assert!(e.contains("empty"), "{e}");
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[[variant]]\nname = \"x\"\nmode = \"sharded\"\n");
        assert!(e.starts_with("s.toml:9:8:") && e.contains("sharded"), "{e}");
        let e = err("[[phase]]\nduration = \"1s\"\nrate = 1\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[tenants]\ndistribution = \"uniform\"\nexponent = 2\n");
        assert!(e.starts_with("s.toml:9:12:"), "{e}");
    }

    #[test]
    fn durations_parse_in_every_unit() {
        let d = |s: &str| s.parse::<Dur>().unwrap().0;
        assert_eq!(d("250us"), Duration::from_micros(250));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert!("10".parse::<Dur>().is_err());
        assert!("5 days".parse::<Dur>().is_err());
        assert_eq!(Dur(Duration::from_millis(20)).to_string(), "20ms");
    }
}
