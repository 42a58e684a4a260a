//! The types of `run.json`: what the driver writes and what `report`,
//! `compare`, `gate` and `cutover` read back, through [`super::read`].
//!
//! Every struct refuses unknown fields and every field is required, so a
//! renamed or missing figure is an error that names it, never a zero.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::exit;
use crate::repo::RepoStats;
use crate::run::histogram::ms;
use crate::run::histogram::IntervalSummary;
use crate::scenario::{Phase, Scenario, Variant};

/// Version of the `run.json` layout; readers refuse what they do not know.
pub const SCHEMA_VERSION: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Complete,
    Interrupted,
    /// Stopped by an error; `error` says which. What was measured is kept.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Not decided yet.
    Running,
    /// The run stopped on an error.
    Failed,
    Pass,
    /// A budget was missed.
    Fail,
    /// The numbers must not be trusted.
    Invalid,
    Interrupted,
    /// Measured, not judged: the scenario has no budget to hold the
    /// numbers against. Never a pass.
    #[serde(rename = "not_judged")]
    NotJudged,
}

pub use crate::day::iso_utc;

/// `20261125T150102-finance_day`: sortable, one per scenario run.
pub fn run_id(t: SystemTime, scenario: &str) -> String {
    let iso = iso_utc(t);
    let compact: String = iso
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{compact}-{scenario}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub cores: usize,
    pub memory_bytes: u64,
}

/// Where and on what a run ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub rehearse_version: String,
    pub git_commit: String,
    pub postgres_version: String,
    pub settings: BTreeMap<String, String>,
    #[serde(deserialize_with = "required")]
    pub schema: Option<crate::schema::meta::SchemaInfo>,
    /// The seed record: parameters, row counts, checksum.
    #[serde(deserialize_with = "required")]
    pub dataset: Option<serde_json::Value>,
    pub host: Host,
    /// Endpoints, passwords redacted.
    pub estate: BTreeMap<String, String>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    #[serde(rename = "p99.9_ms")]
    pub p999_ms: f64,
    #[serde(rename = "p99.99_ms")]
    pub p9999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let q = |x| ms(h.value_at_quantile(x));
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1e6,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            p9999_ms: q(0.9999),
            max_ms: ms(h.max()),
        }
    }
}

/// One operation of one variant, over the measured part of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpResult {
    pub name: String,
    pub operation: crate::scenario::Operation,
    /// Requests completed, failed ones included.
    pub count: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub error_rate: f64,
    /// Completed requests per second.
    pub throughput: f64,
    /// Sent later than the phase's late_after.
    pub late: u64,
    /// Completion minus intended start: what budgets apply to.
    pub response: Latency,
    /// Completion minus send.
    pub service: Latency,
    /// Send minus intended start (open phases).
    pub lag: Latency,
}

impl OpResult {
    /// An operation's result from its successes' latencies (their count is
    /// `ok`) and its failures by kind: count and error rate are derived.
    pub fn of(
        m: &crate::scenario::MixEntry,
        errors: BTreeMap<String, u64>,
        throughput: f64,
        late: u64,
        [response, service, lag]: [Latency; 3],
    ) -> OpResult {
        let ok = response.count;
        let failed: u64 = errors.values().sum();
        let count = ok + failed;
        OpResult {
            name: m.name.clone(),
            operation: m.operation,
            count,
            ok,
            errors,
            error_rate: if count == 0 {
                0.0
            } else {
                failed as f64 / count as f64
            },
            throughput,
            late,
            response,
            service,
            lag,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseResult {
    pub name: String,
    pub model: LoadModel,
    pub duration_s: f64,
    /// Mean rate the phase asked for (open).
    #[serde(deserialize_with = "required")]
    pub target_rate: Option<f64>,
    /// Arrivals the schedule produced (open).
    #[serde(deserialize_with = "required")]
    pub offered: Option<u64>,
    pub completed: u64,
    /// Arrivals never sent: the backlog was full, or the run was interrupted.
    pub dropped: u64,
    /// Completed per second, over the phase or until its last answer if later.
    pub achieved_rate: f64,
    pub elapsed_s: f64,
    /// What broke the phase's own machinery (its dispatcher died): the
    /// numbers of a phase with a failure are never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// An open phase that released its requests early: by how much, and
    /// what its workers spent spinning out the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_release: Option<EarlyRelease>,
}

/// An open phase's early release: each request was handed to a worker
/// `lead_us` before its intended start, and the worker waited until then, so
/// the wake-up of a parked thread is not counted against the request. It
/// spins on the multi-thread runtime; on a current-thread one it yields to
/// the other tasks between checks and spins only the last 20 µs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EarlyRelease {
    pub lead_us: f64,
    /// Time the workers waited out the lead, over the phase, s: CPU spun on
    /// the multi-thread runtime.
    pub spun_s: f64,
    /// The same per request sent, µs.
    pub spun_us_per_request: f64,
}

impl EarlyRelease {
    /// What `spun_ns` of spinning over `requests` came to, for a lead of `lead`.
    pub fn of(lead: Duration, spun_ns: u64, requests: u64) -> Option<EarlyRelease> {
        (!lead.is_zero()).then(|| EarlyRelease {
            lead_us: lead.as_secs_f64() * 1e6,
            spun_s: spun_ns as f64 / 1e9,
            spun_us_per_request: spun_ns as f64 / 1e3 / requests.max(1) as f64,
        })
    }
}

impl PhaseResult {
    pub fn open(
        p: &Phase,
        target: f64,
        offered: u64,
        completed: u64,
        dropped: u64,
        elapsed: Duration,
    ) -> PhaseResult {
        PhaseResult {
            name: p.name.clone(),
            model: LoadModel::Open,
            duration_s: p.duration.0.as_secs_f64(),
            target_rate: Some(target),
            offered: Some(offered),
            completed,
            dropped,
            achieved_rate: completed as f64 / elapsed.as_secs_f64(),
            elapsed_s: elapsed.as_secs_f64(),
            failure: None,
            early_release: None,
        }
    }

    pub fn closed(p: &Phase, completed: u64, elapsed: Duration) -> PhaseResult {
        PhaseResult {
            name: p.name.clone(),
            model: LoadModel::Closed,
            duration_s: p.duration.0.as_secs_f64(),
            target_rate: None,
            offered: None,
            completed,
            dropped: 0,
            achieved_rate: completed as f64 / elapsed.as_secs_f64().max(1e-9),
            failure: None,
            early_release: None,
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetResult {
    pub operation: String,
    /// p50, p95, p99, p99.9, max or error_rate.
    pub metric: String,
    /// Milliseconds, or a fraction for error_rate.
    pub limit: f64,
    /// The estimate; None when the run has no such operation or measured none.
    #[serde(deserialize_with = "required")]
    pub actual: Option<f64>,
    /// The estimate's interval at `confidence` (None: the sample cannot
    /// bound that side). Met when `upper` <= limit, missed when `lower` > limit.
    #[serde(deserialize_with = "required")]
    pub lower: Option<f64>,
    #[serde(deserialize_with = "required")]
    pub upper: Option<f64>,
    pub confidence: f64,
    /// Requests the figure was computed from, and what they are worth once
    /// their dependence in time is allowed for.
    pub samples: u64,
    pub effective_samples: f64,
    /// When unjudged: the requests, and the measured seconds at the rate the
    /// run ran, that would have decided it.
    #[serde(deserialize_with = "required")]
    pub needs: Option<u64>,
    #[serde(deserialize_with = "required")]
    pub needs_seconds: Option<f64>,
    pub outcome: BudgetOutcome,
    /// Why it was not judged, when no run length says it.
    #[serde(deserialize_with = "required")]
    pub why: Option<String>,
}

/// The verdict on one budget. `Unjudged` is never a pass: the run is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetOutcome {
    Pass,
    Fail,
    /// Its interval straddles the budget, or the run has no such operation.
    Unjudged,
}

/// How a phase offered its load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadModel {
    Open,
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    pub valid: bool,
    pub reasons: Vec<String>,
    /// Checks that had too little to go on: neither passed nor failed,
    /// shown as not judged (the driver's lag on a handful of wake-ups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_judged: Vec<String>,
    /// The reason, among `reasons`, that says the driver was the
    /// bottleneck: typed, so no reader matches on its words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_bottleneck: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
}

/// One sample of the estate, taken every interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub t: f64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_errors: u64,
    pub reads_primary: u64,
    pub reads_replica: u64,
    pub fallbacks: u64,
    #[serde(deserialize_with = "required")]
    pub replica_lag_bytes: Option<i64>,
    #[serde(deserialize_with = "required")]
    pub pgbouncer: Option<PoolSample>,
    /// The driver's resident memory.
    #[serde(deserialize_with = "required")]
    pub driver_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSample {
    pub cl_active: i64,
    pub cl_waiting: i64,
    pub sv_active: i64,
    pub sv_idle: i64,
    pub maxwait_us: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The repository's counters at the end of the variant.
    pub repo: RepoStats,
    /// Per interval: deltas of the counters, and gauges.
    pub samples: Vec<Sample>,
    /// Top statements on the primary by total time over the variant
    /// (pg_stat_statements deltas); None when the extension is missing.
    #[serde(deserialize_with = "required")]
    pub top_statements: Option<Vec<Statement>>,
    /// Where each operation's server time went (pg_stat_statements,
    /// sampled waits and locks, plan counts); None when attribution was off
    /// or the servers had no pg_stat_statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<crate::attribution::Attribution>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantResult {
    pub variant: Variant,
    /// Seconds from the run's start (and the hlog's StartTime) to this variant's.
    pub started_s: f64,
    pub seconds: f64,
    /// Seconds of warm-up left out of the totals.
    pub warmup_s: f64,
    /// True when a phase was closed-loop: its latencies are service times only.
    pub closed_loop: bool,
    pub phases: Vec<PhaseResult>,
    pub operations: Vec<OpResult>,
    /// The driver's own wake-up delay for requests that found a free worker.
    pub driver_lag: Latency,
    pub driver_cpu_seconds: f64,
    /// The driver process's CPU over the variant per request sent, warm-up included.
    pub driver_cpu_us_per_op: f64,
    /// Peak resident memory of the driver process so far.
    #[serde(deserialize_with = "required")]
    pub driver_peak_rss_kib: Option<u64>,
    /// The async runtime the driver ran on: "current-thread" or
    /// "multi-thread, N workers" (absent in runs before 2026-12-06's
    /// seventh session, and in merged shards that ran on different ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_runtime: Option<String>,
    pub database: Database,
    pub timeline: Vec<IntervalSummary>,
    pub budgets: Vec<BudgetResult>,
    pub validity: Validity,
    /// The maintenance jobs that ran during this variant (`[[job]]`), in
    /// seconds of its timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobWindow>,
}

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    pub schema_version: u32,
    pub status: Status,
    pub verdict: Verdict,
    pub exit_code: i32,
    pub run_id: String,
    pub started_at: String,
    pub seconds: f64,
    pub scenario: Scenario,
    pub scenario_file: String,
    /// Why the run stopped, when it failed.
    #[serde(deserialize_with = "required")]
    pub error: Option<String>,
    pub environment: Environment,
    pub variants: Vec<VariantResult>,
    /// Named spans of the run (the cutover drill's steps), drawn on the timelines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<Marker>,
    /// Latency per span, operation and rollout cohort (the rollout drill):
    /// the mode whose tables each request used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cohorts: Vec<CohortLatency>,
    /// A shard of a run (`run --shard`), or the merge of one (`rehearse merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// A journeys run (`rehearse journeys`): how Goose drove the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journeys: Option<JourneysInfo>,
}

/// How a journeys run was driven, in run.json's `journeys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneysInfo {
    /// The service's base URL.
    pub target: String,
    pub tool: String,
    /// Goose's users are closed-loop, always: a slow answer delays the
    /// user's next request, so these are service times, not response
    /// times against a schedule.
    pub closed_loop: bool,
    /// Goose's coordinated-omission mitigation setting ("disabled": no
    /// synthetic backfilled requests are in these figures).
    pub co_mitigation: String,
    pub users: u32,
    pub hatch_rate: f64,
    /// Goose's own report files, per variant.
    pub reports: BTreeMap<String, Vec<String>>,
    /// Goose's own count of each transaction (success, fail), per variant.
    pub goose_counts: BTreeMap<String, BTreeMap<String, (u64, u64)>>,
}

/// One run of a maintenance job during a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobWindow {
    pub job: String,
    pub start_s: f64,
    pub end_s: f64,
    /// The job's exit code as `rehearse job run` gives it (4 when it could not run).
    pub exit_code: i32,
    pub summary: String,
}

/// One cohort's latency over one span of a run, from the intended start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortLatency {
    pub span: String,
    pub operation: String,
    pub cohort: crate::schema::Mode,
    pub requests: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// A named span of a run, in seconds into the (first) variant, as timelines count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
}

impl VariantResult {
    /// Every request the variant sent, answered or failed, warm-up included
    /// (its timeline's counts; the operations' totals leave the warm-up out).
    pub fn requests_sent(&self) -> u64 {
        self.timeline
            .iter()
            .flat_map(|i| &i.ops)
            .map(|o| o.count + o.errors)
            .sum()
    }

    /// This variant's verdict: invalid when its numbers cannot be trusted
    /// or a budget is unjudged, fail when a budget is missed, not judged
    /// when it has no budget, else pass.
    pub fn verdict(&self) -> Verdict {
        let outcome = |o| self.budgets.iter().any(|b| b.outcome == o);
        if !self.validity.valid || outcome(BudgetOutcome::Unjudged) {
            Verdict::Invalid
        } else if outcome(BudgetOutcome::Fail) {
            Verdict::Fail
        } else if self.budgets.is_empty() {
            Verdict::NotJudged
        } else {
            Verdict::Pass
        }
    }
}

impl RunResult {
    pub fn new(s: &Scenario, started: SystemTime, environment: Environment) -> RunResult {
        RunResult {
            schema_version: SCHEMA_VERSION,
            status: Status::Running,
            verdict: Verdict::Running,
            exit_code: 0,
            run_id: run_id(started, &s.name),
            started_at: iso_utc(started),
            seconds: 0.0,
            scenario: s.clone(),
            scenario_file: s.path.display().to_string(),
            error: None,
            environment,
            variants: Vec::new(),
            markers: Vec::new(),
            cohorts: Vec::new(),
            shard: None,
            journeys: None,
        }
    }

    /// Decide the verdict and exit code: any invalid variant or unjudged
    /// budget makes the run invalid, any failed budget makes it fail; a
    /// variant with no budget (or no variant at all) leaves it measured, not
    /// judged, which exits 3 like any verdict that is not a pass.
    pub fn finish(&mut self, interrupted: bool, elapsed: Duration) {
        self.seconds = elapsed.as_secs_f64();
        let verdicts = || self.variants.iter().map(VariantResult::verdict);
        let invalid = verdicts().any(|v| v == Verdict::Invalid);
        let failed = verdicts().any(|v| v == Verdict::Fail);
        let unjudged = self.variants.is_empty() || verdicts().any(|v| v == Verdict::NotJudged);
        (self.status, self.verdict, self.exit_code) = if interrupted {
            (Status::Interrupted, Verdict::Interrupted, exit::INTERRUPTED)
        } else if invalid {
            (Status::Complete, Verdict::Invalid, exit::INVALID)
        } else if failed {
            (Status::Complete, Verdict::Fail, exit::FAIL)
        } else if unjudged {
            (Status::Complete, Verdict::NotJudged, exit::INVALID)
        } else {
            (Status::Complete, Verdict::Pass, exit::OK)
        };
    }

    /// Mark the run failed by `e`, keeping the variants measured so far.
    pub fn fail(&mut self, e: &crate::Error, elapsed: Duration) {
        self.seconds = elapsed.as_secs_f64();
        self.status = Status::Failed;
        self.verdict = Verdict::Failed;
        self.exit_code = e.exit_code();
        self.error = Some(e.to_string());
    }

    /// Write `run.json` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("run results serialize");
        crate::fsutil::write_atomic(&dir.join("run.json"), &text)
    }
}

/// An `Option` field that must be present (`null` when empty): serde would
/// read a missing one as `None`, which turns a renamed field into a silent
/// "no value".
fn required<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// What `run.json` says of a shard, or of a merge of shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// This shard's index; None in a merged run.
    #[serde(default)]
    pub index: Option<u32>,
    pub count: u32,
    /// The scenario as run (rates, durations and variants applied): shards of one run share it.
    pub scenario_hash: String,
    pub seed: u64,
    /// The planned start of the first variant (RFC 3339, UTC).
    pub start_at: String,
    /// The interval histograms' settings: shards merge only when they agree.
    pub histogram: String,
    /// A merged run: the shards' run directories, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_619_045);
        assert_eq!(iso_utc(t), "2026-11-25T15:04:05Z");
        assert_eq!(run_id(t, "mixed"), "20261125T150405-mixed");
    }
}
