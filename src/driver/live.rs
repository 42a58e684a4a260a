//! What the driver samples and shows while it runs: the live figures the
//! collector publishes (which drills read), the sampler of the repository's
//! counters and PgBouncer's pools, and the live line on the terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::repo::{Repo, RepoStats};
use crate::run::{PoolSample, Sample};
use crate::scenario::{Load, Phase, Variant};

use super::record::Collector;

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
