//! Steps that take table locks under load: each attempt runs with a short
//! `lock_timeout` and is retried, rather than queueing behind a long reader
//! or writer while every later writer queues behind it. A second connection
//! watches who waits behind the step's backend meanwhile.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::{lock_state, write_state, State};
use crate::db;
use crate::error::{DbContext, Error, Result};

/// How a locking step waits.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Give up one attempt after waiting this long for a lock.
    pub lock_timeout: Duration,
    /// Attempts before the step fails.
    pub attempts: u32,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            lock_timeout: Duration::from_millis(200),
            attempts: 50,
        }
    }
}

/// What taking the locks cost.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockReport {
    pub attempts: u32,
    pub lock_timeouts: u32,
    /// Time spent in attempts that timed out, and between them.
    pub waited_ms: f64,
    /// The attempt that succeeded, from its first statement to its commit:
    /// the time its locks were requested or held.
    pub held_ms: f64,
    /// Backends seen waiting behind the step (sampled every 5 ms).
    pub blocked_backends: u32,
    /// The longest such wait seen.
    pub longest_block_ms: f64,
}

impl LockReport {
    pub fn describe(&self) -> String {
        format!(
            "locks held {:.1} ms; {} attempt{} ({} lock timeouts, {:.0} ms waiting); backends blocked: {}, longest {:.1} ms",
            self.held_ms,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.lock_timeouts,
            self.waited_ms,
            self.blocked_backends,
            self.longest_block_ms
        )
    }
}

/// Run `sql` and a change of the cutover state (`update`, which may refuse)
/// in one transaction with `SET LOCAL lock_timeout`, retried on lock timeouts.
pub(super) async fn ddl_step(
    client: &mut Client,
    monitor_url: &str,
    sql: &str,
    opts: &LockOptions,
    mut update: impl FnMut(&mut State) -> Result<()>,
) -> Result<LockReport> {
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .db(|| "reading the step's backend pid".into())?
        .get(0);
    let monitor = Monitor::start(monitor_url, pid).await?;
    let mut report = LockReport::default();
    let began = Instant::now();
    let result = loop {
        report.attempts += 1;
        let attempt = Instant::now();
        let r: Result<()> = async {
            let tx = client
                .transaction()
                .await
                .db(|| "beginning the step".into())?;
            tx.batch_execute(&format!(
                "SET LOCAL lock_timeout = '{}ms'",
                opts.lock_timeout.as_millis().max(1)
            ))
            .await
            .db(|| "setting lock_timeout".into())?;
            let mut state = lock_state(&tx).await?;
            update(&mut state)?;
            tx.batch_execute(sql)
                .await
                .db(|| "running the step's statements".into())?;
            write_state(&tx, &state).await?;
            tx.commit().await.db(|| "committing the step".into())
        }
        .await;
        match r {
            Ok(()) => {
                report.held_ms = attempt.elapsed().as_secs_f64() * 1e3;
                break Ok(());
            }
            Err(e) if lock_timed_out(&e) && report.attempts < opts.attempts => {
                report.lock_timeouts += 1;
                // Back off a little more each time, with jitter from the clock,
                // so the writers queued behind the attempt drain first.
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| (d.subsec_nanos() % 50) as u64)
                    .unwrap_or(0);
                let pause =
                    Duration::from_millis((50 * report.attempts as u64).min(1_000) + jitter);
                tokio::time::sleep(pause).await;
            }
            Err(e) if lock_timed_out(&e) => {
                report.lock_timeouts += 1;
                break Err(Error::Lab(format!(
                    "gave up after {} attempts, each waiting {} ms for its locks: something holds \
                     them for longer (long transactions on the finance tables?); the estate is \
                     unchanged; retry with a larger --lock-timeout or --lock-attempts",
                    report.attempts,
                    opts.lock_timeout.as_millis()
                )));
            }
            Err(e) => break Err(e),
        }
    };
    report.waited_ms = (began.elapsed().as_secs_f64() * 1e3 - report.held_ms).max(0.0);
    let (blocked, longest) = monitor.stop().await;
    report.blocked_backends = blocked;
    report.longest_block_ms = longest;
    result.map(|()| report)
}

fn lock_timed_out(e: &Error) -> bool {
    matches!(e, Error::Db { source, .. } if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE))
}

/// Samples the backends waiting behind one backend.
struct Monitor {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<(u32, f64)>,
}

impl Monitor {
    async fn start(url: &str, pid: i32) -> Result<Monitor> {
        let client = db::connect(url).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut longest: f64 = 0.0;
            let sql = "SELECT pid, (extract(epoch FROM clock_timestamp() - state_change) * 1000)::float8 \
                         FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))";
            loop {
                let last = flag.load(Ordering::SeqCst);
                if let Ok(rows) = client.query(sql, &[&pid]).await {
                    for r in rows {
                        seen.insert(r.get::<_, i32>(0));
                        longest = longest.max(r.get::<_, Option<f64>>(1).unwrap_or(0.0));
                    }
                }
                if last {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (seen.len() as u32, longest)
        });
        Ok(Monitor { stop, handle })
    }

    async fn stop(self) -> (u32, f64) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.unwrap_or((0, 0.0))
    }
}
