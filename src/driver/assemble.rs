//! What the driver puts into the run record ([`crate::run`]) besides
//! latency: the server's environment and settings, each variant's record
//! assembled from the collector, this process's CPU, and the statements
//! pg_stat_statements saw during a variant.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::error::{DbContext, Result};
use crate::estate::Estate;
use crate::repo::RepoStats;
use crate::run::{
    judge, Database, Environment, Host, Latency, OpResult, PhaseResult, Sample, Statement,
    VariantResult,
};
use crate::scenario::{Scenario, Variant};

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
        driver_runtime: Some(super::runtime_name()),
        database: Database {
            repo,
            samples,
            top_statements: None,
            attribution: None,
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
