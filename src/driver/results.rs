//! What the driver puts into the run record ([`crate::run`]) and what it
//! samples and shows while it runs.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{DbContext, Result};
use crate::estate::Estate;
use crate::repo::{Repo, RepoStats};
use crate::run::{
    judge, Database, Environment, Host, Latency, OpResult, PhaseResult, PoolSample, Sample,
    Statement, VariantResult,
};
use crate::scenario::{Load, Phase, Scenario, Variant};

use super::record::Collector;

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
    let evidence: judge::Evidence = s
        .mix
        .iter()
        .zip(&c.totals)
        .map(|(m, t)| (m.name.clone(), t.blocks.clone()))
        .collect();
    let budgets = judge::budgets(
        &s.budgets,
        &operations,
        &evidence,
        s.validity.confidence,
        measured,
    );
    let driver_lag = Latency::of(&c.driver_lag);
    let validity = judge::validity(&s.validity, &phases, &driver_lag, super::BACKLOG);
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
        jobs: Vec::new(),
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
    pub last_interval: AtomicU64,
    pub p99_ns: AtomicU64,
    /// The highest p99 of any operation in the last finished interval.
    pub recent_p99_ns: AtomicU64,
    /// Requests done as the workers report them, before their interval is
    /// finished (an interval finishes when every worker has moved past it,
    /// so one slow request holds back the figures of finished intervals).
    pub reported: AtomicU64,
    pub reported_errors: AtomicU64,
    pub reported_late: AtomicU64,
    /// Seconds of the run whose intervals are finished (the p99 covers them).
    pub finished_s: AtomicU64,
}

impl Live {
    /// Count what a worker's message reports as done.
    pub fn reported(&self, m: &crate::driver::record::Msg) {
        let (n, e, late) = m.completed();
        self.reported.fetch_add(n + e, Ordering::Relaxed);
        self.reported_errors.fetch_add(e, Ordering::Relaxed);
        self.reported_late.fetch_add(late, Ordering::Relaxed);
    }

    pub fn publish(&self, c: &Collector) {
        let p99 = c
            .totals
            .iter()
            .filter(|t| !t.response.is_empty())
            .map(|t| t.response.value_at_quantile(0.99))
            .max()
            .unwrap_or(0);
        self.last_interval
            .store(c.last_interval_count, Ordering::Relaxed);
        self.p99_ns.store(p99, Ordering::Relaxed);
        self.finished_s
            .store(c.finished_s() as u64, Ordering::Relaxed);
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
    crate::url::with_database(url, "pgbouncer")
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
                // The p99 covers the finished intervals only; say so when
                // they lag behind (or none has finished yet).
                let finished = live.finished_s.load(Ordering::Relaxed);
                let p99 = match live.p99_ns.load(Ordering::Relaxed) {
                    0 if !warming.is_empty() => "p99 - (warm-up, not counted)".to_string(),
                    0 => "p99 - (no interval finished yet)".to_string(),
                    ns if origin.elapsed().as_secs() > finished + 2 * interval.as_secs().max(1) => {
                        format!("p99 {:.2} ms (to {finished} s)", ns as f64 / 1e6)
                    }
                    ns => format!("p99 {:.2} ms", ns as f64 / 1e6),
                };
                let msg = format!(
                    "{}{warming}  {rate:.0}/s ({target})  {p99}  done {}  errors {}  late {}",
                    p.name,
                    crate::progress::thousands(live.reported.load(Ordering::Relaxed)),
                    live.reported_errors.load(Ordering::Relaxed),
                    live.reported_late.load(Ordering::Relaxed),
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
