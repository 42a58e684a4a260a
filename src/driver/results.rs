//! What a run writes (`run.json`), how its verdict is reached, and what is
//! sampled and shown while it runs.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::{DbContext, Result};
use crate::estate::Estate;
use crate::repo::{Repo, RepoStats};
use crate::scenario::{Load, Phase, Scenario, Variant};

use super::record::{ms, Collector, IntervalSummary};
use super::{EXIT_BUDGET, EXIT_INTERRUPTED, EXIT_INVALID};

/// Version of the `run.json` layout; readers refuse what they do not know.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Complete,
    Interrupted,
    /// Stopped by an error; `error` says which. What was measured is kept.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(t: SystemTime) -> String {
    let s = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let day = crate::day::Day((s.div_euclid(86_400) - 10_957) as i32);
    let (y, m, d) = day.ymd();
    let r = s.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        r / 3600,
        r % 3600 / 60,
        r % 60
    )
}

/// `20261125T150102-finance_day`: sortable, one per scenario run.
pub fn run_id(t: SystemTime, scenario: &str) -> String {
    let iso = iso_utc(t);
    let compact: String = iso
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{compact}-{scenario}")
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub cores: usize,
    pub memory_bytes: u64,
}

/// Where and on what a run ran.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub rehearse_version: String,
    pub git_commit: String,
    pub postgres_version: String,
    pub settings: BTreeMap<String, String>,
    pub schema: Option<crate::schema::meta::SchemaInfo>,
    /// The seed record: parameters, row counts, checksum.
    pub dataset: Option<serde_json::Value>,
    pub host: Host,
    /// Endpoints, passwords redacted.
    pub estate: BTreeMap<String, String>,
}

const SETTINGS: [&str; 9] = [
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "max_connections",
    "synchronous_commit",
    "plan_cache_mode",
    "jit",
    "max_parallel_workers_per_gather",
    "random_page_cost",
];

pub async fn environment(c: &tokio_postgres::Client, estate: &Estate) -> Result<Environment> {
    let version: String = c
        .query_one("SHOW server_version", &[])
        .await
        .db(|| "reading the server version".into())?
        .get(0);
    let mut settings = BTreeMap::new();
    for r in c
        .query(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY($1)",
            &[&SETTINGS.as_slice()],
        )
        .await
        .db(|| "reading the server settings".into())?
    {
        settings.insert(r.get(0), r.get(1));
    }
    let schema = crate::schema::meta::read(c).await.ok().flatten();
    let dataset = crate::seed::read_record(c)
        .await
        .ok()
        .flatten()
        .map(|r| serde_json::json!({"status": r.status, "params": r.params, "counts": r.counts, "checksum": r.checksum, "partitions": r.partitions}));
    let mut endpoints = BTreeMap::new();
    endpoints.insert("primary".to_string(), estate.primary.redacted());
    for (k, e) in [
        ("replica", &estate.replica),
        ("pgbouncer", &estate.pgbouncer),
        ("pgbouncer_replica", &estate.pgbouncer_replica),
        ("redis", &estate.redis),
    ] {
        if let Some(e) = e {
            endpoints.insert(k.to_string(), e.redacted());
        }
    }
    Ok(Environment {
        rehearse_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("REHEARSE_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        postgres_version: version,
        settings,
        schema,
        dataset,
        host: Host {
            cores: crate::lab::machine_cores(),
            memory_bytes: crate::lab::machine_memory(),
        },
        estate: endpoints,
    })
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub name: String,
    pub model: &'static str,
    pub duration_s: f64,
    /// Mean rate the phase asked for (open).
    pub target_rate: Option<f64>,
    /// Arrivals the schedule produced (open).
    pub offered: Option<u64>,
    pub completed: u64,
    /// Arrivals never sent: the backlog was full, or the run was interrupted.
    pub dropped: u64,
    /// Completed per second, over the phase or until its last answer if later.
    pub achieved_rate: f64,
    pub elapsed_s: f64,
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
            model: "open",
            duration_s: p.duration.0.as_secs_f64(),
            target_rate: Some(target),
            offered: Some(offered),
            completed,
            dropped,
            achieved_rate: completed as f64 / elapsed.as_secs_f64(),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }

    pub fn closed(p: &Phase, completed: u64, elapsed: Duration) -> PhaseResult {
        PhaseResult {
            name: p.name.clone(),
            model: "closed",
            duration_s: p.duration.0.as_secs_f64(),
            target_rate: None,
            offered: None,
            completed,
            dropped: 0,
            achieved_rate: completed as f64 / elapsed.as_secs_f64().max(1e-9),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetResult {
    pub operation: String,
    /// p50, p95, p99, p99.9, max or error_rate.
    pub metric: String,
    /// Milliseconds, or a fraction for error_rate.
    pub limit: f64,
    pub actual: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validity {
    pub valid: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
}

/// One sample of the estate, taken every interval.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t: f64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_errors: u64,
    pub reads_primary: u64,
    pub reads_replica: u64,
    pub fallbacks: u64,
    pub replica_lag_bytes: Option<i64>,
    pub pgbouncer: Option<PoolSample>,
    /// The driver's resident memory.
    pub driver_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolSample {
    pub cl_active: i64,
    pub cl_waiting: i64,
    pub sv_active: i64,
    pub sv_idle: i64,
    pub maxwait_us: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Database {
    /// The repository's counters at the end of the variant.
    pub repo: RepoStats,
    /// Per interval: deltas of the counters, and gauges.
    pub samples: Vec<Sample>,
    /// Top statements on the primary by total time over the variant
    /// (pg_stat_statements deltas); None when the extension is missing.
    pub top_statements: Option<Vec<Statement>>,
}

#[derive(Debug, Clone, Serialize)]
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
    pub driver_cpu_us_per_op: f64,
    /// Peak resident memory of the driver process so far.
    pub driver_peak_rss_kib: Option<u64>,
    pub database: Database,
    pub timeline: Vec<IntervalSummary>,
    pub budgets: Vec<BudgetResult>,
    pub validity: Validity,
}

#[allow(clippy::too_many_arguments)]
pub fn variant_result(
    s: &Scenario,
    variant: &Variant,
    c: &Collector,
    phases: Vec<PhaseResult>,
    samples: Vec<Sample>,
    repo: RepoStats,
    elapsed: Duration,
    offset: f64,
) -> VariantResult {
    let measured = (elapsed.as_secs_f64() - s.warmup.0.as_secs_f64()).max(1e-9);
    let operations: Vec<OpResult> = s
        .mix
        .iter()
        .zip(&c.totals)
        .map(|(m, t)| {
            let ok = t.ok();
            let errors = t.error_count();
            let count = ok + errors;
            OpResult {
                name: m.name.clone(),
                operation: m.operation,
                count,
                ok,
                errors: t.errors.clone(),
                error_rate: if count == 0 {
                    0.0
                } else {
                    errors as f64 / count as f64
                },
                throughput: count as f64 / measured,
                late: t.late,
                response: Latency::of(&t.response),
                service: Latency::of(&t.service),
                lag: Latency::of(&t.lag),
            }
        })
        .collect();
    let budgets = budgets(s, &operations, c);
    let driver_lag = Latency::of(&c.driver_lag);
    let validity = validity(s, &phases, &driver_lag);
    VariantResult {
        variant: variant.clone(),
        started_s: offset,
        seconds: elapsed.as_secs_f64(),
        warmup_s: s.warmup.0.as_secs_f64(),
        closed_loop: s.has_closed_phase(),
        phases,
        operations,
        driver_lag,
        driver_cpu_seconds: 0.0,
        driver_cpu_us_per_op: 0.0,
        driver_peak_rss_kib: crate::progress::peak_rss_kib(),
        database: Database {
            repo,
            samples,
            top_statements: None,
        },
        timeline: c.timeline.clone(),
        budgets,
        validity,
    }
}

fn budgets(s: &Scenario, ops: &[OpResult], c: &Collector) -> Vec<BudgetResult> {
    let mut out = Vec::new();
    for (name, b) in &s.budgets {
        let Some(i) = s.mix.iter().position(|m| &m.name == name) else {
            continue;
        };
        let h = &c.totals[i].response;
        for (label, q, limit) in b.limits() {
            let actual = if h.is_empty() {
                0.0
            } else if q >= 1.0 {
                ms(h.max())
            } else {
                ms(h.value_at_quantile(q))
            };
            let limit = limit.0.as_secs_f64() * 1e3;
            out.push(BudgetResult {
                operation: name.clone(),
                metric: label.to_string(),
                limit,
                actual,
                pass: actual <= limit,
            });
        }
        if let Some(limit) = b.error_rate {
            let actual = ops[i].error_rate;
            out.push(BudgetResult {
                operation: name.clone(),
                metric: "error_rate".into(),
                limit,
                actual,
                pass: actual <= limit,
            });
        }
    }
    out
}

fn validity(s: &Scenario, phases: &[PhaseResult], driver_lag: &Latency) -> Validity {
    let mut reasons = Vec::new();
    for p in phases {
        let (Some(offered), Some(target)) = (p.offered, p.target_rate) else {
            continue;
        };
        if offered == 0 {
            continue;
        }
        // Against what the schedule offered, so a Poisson phase's own
        // randomness is not mistaken for a shortfall.
        let offered_rate = offered as f64 / p.duration_s;
        let ratio = p.achieved_rate / offered_rate;
        if ratio < s.validity.min_rate {
            reasons.push(format!(
                "{}: achieved {:.1} req/s of {:.1} offered (target {:.1}), {:.0}% < {:.0}%: the estate or the driver could not keep up",
                p.name,
                p.achieved_rate,
                offered_rate,
                target,
                ratio * 100.0,
                s.validity.min_rate * 100.0
            ));
        }
        if p.dropped as f64 > 0.001 * offered as f64 {
            reasons.push(format!(
                "{}: {} of {offered} requests dropped (backlog of {} full)",
                p.name,
                p.dropped,
                super::BACKLOG
            ));
        }
    }
    let limit = s.validity.max_driver_lag.0.as_secs_f64() * 1e3;
    if driver_lag.count >= 100 && driver_lag.p99_ms > limit {
        reasons.push(format!(
            "the driver was the bottleneck: p99 of its wake-up delay {:.2} ms > {limit:.2} ms",
            driver_lag.p99_ms
        ));
    }
    Validity {
        valid: reasons.is_empty(),
        reasons,
    }
}

/// `run.json`.
#[derive(Debug, Clone, Serialize)]
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
    pub error: Option<String>,
    pub environment: Environment,
    pub variants: Vec<VariantResult>,
    /// Named spans of the run (the cutover drill's steps), drawn on the timelines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<Marker>,
}

/// A named span of a run, in seconds into the (first) variant, as timelines count.
#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
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
        }
    }

    /// Decide the verdict and exit code.
    pub fn finish(&mut self, interrupted: bool, elapsed: Duration) {
        self.seconds = elapsed.as_secs_f64();
        let invalid = self.variants.iter().any(|v| !v.validity.valid);
        let failed = self
            .variants
            .iter()
            .any(|v| v.budgets.iter().any(|b| !b.pass));
        (self.status, self.verdict, self.exit_code) = if interrupted {
            (Status::Interrupted, Verdict::Interrupted, EXIT_INTERRUPTED)
        } else if invalid {
            (Status::Complete, Verdict::Invalid, EXIT_INVALID)
        } else if failed {
            (Status::Complete, Verdict::Fail, EXIT_BUDGET)
        } else {
            (Status::Complete, Verdict::Pass, 0)
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

/// This process's CPU time (user + system) in seconds.
pub fn process_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

type Snapshot = HashMap<i64, (String, i64, f64)>;

const STATEMENTS: &str = "\
SELECT queryid, left(regexp_replace(query, '\\s+', ' ', 'g'), 300), calls, total_exec_time
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL";

/// pg_stat_statements now, or None when it is not installed in this database.
pub async fn statements_snapshot(c: &tokio_postgres::Client) -> Option<Snapshot> {
    let rows = c.query(STATEMENTS, &[]).await.ok()?;
    Some(
        rows.iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect(),
    )
}

/// The ten statements with the most time since `before`.
pub async fn statements_delta(
    c: &tokio_postgres::Client,
    before: Option<Snapshot>,
) -> Option<Vec<Statement>> {
    let before = before?;
    let after = statements_snapshot(c).await?;
    let mut out: Vec<Statement> = after
        .into_iter()
        .filter_map(|(id, (q, calls, total))| {
            let (c0, t0) = before.get(&id).map_or((0, 0.0), |b| (b.1, b.2));
            let (dc, dt) = (calls - c0, total - t0);
            (dc > 0).then(|| Statement {
                query: q,
                calls: dc,
                total_ms: dt,
                mean_ms: dt / dc as f64,
            })
        })
        .collect();
    out.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    out.truncate(10);
    Some(out)
}

/// What the collector publishes for the live display.
#[derive(Default)]
pub struct Live {
    pub phase: AtomicUsize,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub late: AtomicU64,
    pub last_interval: AtomicU64,
    pub p99_ns: AtomicU64,
    /// The highest p99 of any operation in the last finished interval.
    pub recent_p99_ns: AtomicU64,
}

impl Live {
    pub fn publish(&self, c: &Collector) {
        let (mut n, mut e, mut l, mut p99) = (0, 0, 0, 0);
        for t in &c.totals {
            n += t.ok() + t.error_count();
            e += t.error_count();
            l += t.late;
            if !t.response.is_empty() {
                p99 = p99.max(t.response.value_at_quantile(0.99));
            }
        }
        self.completed.store(n, Ordering::Relaxed);
        self.errors.store(e, Ordering::Relaxed);
        self.late.store(l, Ordering::Relaxed);
        self.last_interval
            .store(c.last_interval_count, Ordering::Relaxed);
        self.p99_ns.store(p99, Ordering::Relaxed);
        if let Some(last) = c.timeline.last() {
            let recent = last.ops.iter().map(|o| o.p99_ms).fold(0.0, f64::max);
            self.recent_p99_ns
                .store((recent * 1e6) as u64, Ordering::Relaxed);
        }
    }
}

/// Samples the repository's counters (and PgBouncer's pools) every interval.
pub struct Sampler {
    handle: tokio::task::JoinHandle<Vec<Sample>>,
    stop: Arc<tokio::sync::Notify>,
}

/// The PgBouncer admin console URL for a PgBouncer database URL.
pub fn pgbouncer_admin_url(url: &str) -> String {
    crate::estate::with_database(url, "pgbouncer")
}

async fn pool_sample(c: &tokio_postgres::Client, database: &str) -> Option<PoolSample> {
    let msgs = c.simple_query("SHOW POOLS").await.ok()?;
    let mut p = PoolSample::default();
    for m in msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            if r.get("database") != Some(database) {
                continue;
            }
            let n = |k: &str| r.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            p.cl_active += n("cl_active");
            p.cl_waiting += n("cl_waiting");
            p.sv_active += n("sv_active");
            p.sv_idle += n("sv_idle");
            p.maxwait_us = p.maxwait_us.max(n("maxwait") * 1_000_000 + n("maxwait_us"));
        }
    }
    Some(p)
}

impl Sampler {
    pub fn start(
        repo: Repo,
        pgbouncer: Option<String>,
        interval: Duration,
        origin: Instant,
    ) -> Sampler {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let admin = match &pgbouncer {
                Some(url) => crate::db::connect(&pgbouncer_admin_url(url)).await.ok(),
                None => None,
            };
            let database = pgbouncer
                .as_deref()
                .and_then(|u| u.split('?').next())
                .and_then(|u| u.rsplit('/').next())
                .unwrap_or("")
                .to_string();
            let mut out = Vec::new();
            let mut last = repo.stats();
            let mut tick = tokio::time::interval_at((origin + interval).into(), interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.notified() => break,
                }
                let now = repo.stats();
                let cache = |s: &RepoStats| s.cache.clone().unwrap_or_default();
                let (c1, c0) = (cache(&now), cache(&last));
                out.push(Sample {
                    t: origin.elapsed().as_secs_f64(),
                    cache_hits: c1.hits - c0.hits,
                    cache_misses: c1.misses - c0.misses,
                    cache_errors: c1.errors - c0.errors,
                    reads_primary: now.routing.reads_primary - last.routing.reads_primary,
                    reads_replica: now.routing.reads_replica - last.routing.reads_replica,
                    fallbacks: now.routing.fallbacks_total() - last.routing.fallbacks_total(),
                    replica_lag_bytes: now.routing.lag_bytes.iter().filter_map(|l| l.1).max(),
                    pgbouncer: match &admin {
                        Some(a) => pool_sample(a, &database).await,
                        None => None,
                    },
                    driver_rss_kib: crate::progress::rss_kib(),
                });
                last = now;
            }
            out
        });
        Sampler { handle, stop }
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.stop.notify_one();
        self.handle.await.unwrap_or_default()
    }
}

/// The live line: elapsed, phase, achieved vs target rate, p99 so far, errors.
pub struct Display {
    handle: Option<tokio::task::JoinHandle<()>>,
    stop: Arc<tokio::sync::Notify>,
}

impl Display {
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        verbose: bool,
        scenario: &str,
        variant: &Variant,
        total: Duration,
        phases: Vec<Phase>,
        origin: Instant,
        interval: Duration,
        warmup: Duration,
        live: Arc<Live>,
    ) -> Display {
        let stop = Arc::new(tokio::sync::Notify::new());
        if !verbose {
            return Display { handle: None, stop };
        }
        let tty = std::io::stderr().is_terminal();
        let prefix = format!("{scenario} [{}]", variant.name);
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let bar = if tty {
                let b = indicatif::ProgressBar::new(total.as_secs().max(1));
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} [{elapsed_precise}] {bar:20} {msg}",
                    )
                    .expect("valid template"),
                );
                b.set_prefix(prefix.clone());
                Some(b)
            } else {
                None
            };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.notified() => break,
                }
                n += 1;
                let p = &phases[live.phase.load(Ordering::Relaxed).min(phases.len() - 1)];
                let target = match p.load {
                    Load::Open { rate, ramp_to, .. } if rate == ramp_to => {
                        format!("target {rate:.0}/s")
                    }
                    Load::Open { rate, ramp_to, .. } => format!("target {rate:.0}->{ramp_to:.0}/s"),
                    Load::Closed { users, .. } => format!("{users} users, closed"),
                };
                let rate =
                    live.last_interval.load(Ordering::Relaxed) as f64 / interval.as_secs_f64();
                let warming = if origin.elapsed() < warmup {
                    " (warm-up)"
                } else {
                    ""
                };
                let msg = format!(
                    "{}{warming}  {rate:.0}/s ({target})  p99 {:.2} ms  done {}  errors {}  late {}",
                    p.name,
                    live.p99_ns.load(Ordering::Relaxed) as f64 / 1e6,
                    crate::progress::thousands(live.completed.load(Ordering::Relaxed)),
                    live.errors.load(Ordering::Relaxed),
                    live.late.load(Ordering::Relaxed),
                );
                match &bar {
                    Some(b) => {
                        b.set_position(origin.elapsed().as_secs());
                        b.set_message(msg);
                    }
                    None if n % 10 == 0 => {
                        eprintln!("{prefix} {:>5.0}s  {msg}", origin.elapsed().as_secs_f64())
                    }
                    None => {}
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        });
        Display {
            handle: Some(handle),
            stop,
        }
    }

    pub async fn finish(self) {
        self.stop.notify_one();
        if let Some(h) = self.handle {
            let _ = h.await;
        }
    }
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

    #[test]
    fn the_admin_console_is_the_pgbouncer_database() {
        assert_eq!(
            pgbouncer_admin_url("postgresql://postgres@127.0.0.1:6432/rehearse"),
            "postgresql://postgres@127.0.0.1:6432/pgbouncer"
        );
        assert_eq!(
            pgbouncer_admin_url("postgresql://u:p@h:6432/db?sslmode=disable"),
            "postgresql://u:p@h:6432/pgbouncer?sslmode=disable"
        );
    }
}
