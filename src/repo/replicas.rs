//! The replica manager: which target serves a read.
//!
//! Each replica is checked at start-up and then in the background: it must
//! answer, be in recovery, and have replayed the primary's WAL to within
//! `max_lag_bytes`. A read goes to a healthy replica (round robin) or else
//! to the primary, and every fallback is counted with its reason. A reader
//! that passes the LSN of its own write is served by a replica only once
//! that replica has replayed it (waiting at most `ryw_wait`), else by the
//! primary. A replica that fails a read is taken out at once and put back
//! by the background check when it answers again.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio_postgres::types::PgLsn;

use super::conn::{Exec, Target};
use crate::error::{DbContext, Error, Result};

/// Where a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The primary only.
    Primary,
    /// A replica only: fails when none is healthy (for spot-checking a replica).
    Replica,
    /// A healthy replica, else the primary.
    Auto,
}

crate::named!("read target", Via { Primary = "primary", Replica = "replica", Auto = "auto" });

/// Why a read that could have gone to a replica went to the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// No replica is configured.
    NoReplica,
    /// Every replica failed its last health check.
    Unhealthy,
    /// Every answering replica lags more than the threshold.
    Lag,
    /// No replica replayed the caller's write within the wait.
    ReadYourWrites,
    /// The replica failed the read itself; it was taken out.
    ReplicaError,
}

impl Fallback {
    const ALL: [Fallback; 5] = [
        Fallback::NoReplica,
        Fallback::Unhealthy,
        Fallback::Lag,
        Fallback::ReadYourWrites,
        Fallback::ReplicaError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fallback::NoReplica => "no_replica",
            Fallback::Unhealthy => "unhealthy",
            Fallback::Lag => "lag",
            Fallback::ReadYourWrites => "read_your_writes",
            Fallback::ReplicaError => "replica_error",
        }
    }
}

/// Settings of the manager.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// A replica further behind than this many bytes of WAL serves no reads.
    pub max_lag_bytes: u64,
    /// How long a read-your-writes read waits for a replica to catch up.
    pub ryw_wait: Duration,
    /// Interval of the background health check.
    pub check_interval: Duration,
    /// Time limit of one health check.
    pub check_timeout: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            max_lag_bytes: 16 * 1024 * 1024,
            ryw_wait: Duration::from_millis(200),
            check_interval: Duration::from_millis(500),
            check_timeout: Duration::from_secs(2),
        }
    }
}

struct Replica {
    target: Target,
    healthy: AtomicBool,
    /// Last replay LSN seen (only grows while the replica lives).
    replay_lsn: AtomicU64,
    /// Last lag measured, bytes; -1 before the first answer.
    lag_bytes: AtomicI64,
    problem: Mutex<Option<String>>,
}

/// Counters of the manager, as [`ReplicaManager::stats`] reports them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingStats {
    pub reads_primary: u64,
    pub reads_replica: u64,
    /// (reason, count) for every reason, zeros included.
    pub fallbacks: Vec<(String, u64)>,
    /// Times a replica was taken out, and put back.
    pub replica_removed: u64,
    pub replica_restored: u64,
    /// Lag at the last check of each replica, and the largest seen, bytes.
    pub lag_bytes: Vec<(String, Option<i64>)>,
    pub max_lag_bytes_seen: i64,
    pub healthy_replicas: usize,
}

impl RoutingStats {
    pub fn fallback(&self, reason: Fallback) -> u64 {
        self.fallbacks
            .iter()
            .find(|(r, _)| r == reason.name())
            .map(|f| f.1)
            .unwrap_or(0)
    }

    pub fn fallbacks_total(&self) -> u64 {
        self.fallbacks.iter().map(|f| f.1).sum()
    }
}

/// Chooses the target of each read; see the module documentation.
pub struct ReplicaManager {
    pub primary: Arc<Target>,
    replicas: Vec<Replica>,
    settings: ReplicaSettings,
    next: AtomicUsize,
    reads_primary: AtomicU64,
    reads_replica: AtomicU64,
    fallbacks: [AtomicU64; 5],
    removed: AtomicU64,
    restored: AtomicU64,
    max_lag_seen: AtomicI64,
}

/// The target a read was given.
pub enum Chosen<'a> {
    Primary(&'a Target),
    Replica(usize, &'a Target),
}

const CHECK_REPLICA: &str = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()";
const PRIMARY_LSN: &str = "SELECT pg_current_wal_lsn()";
const REPLAY_LSN: &str = "SELECT pg_last_wal_replay_lsn()";

impl ReplicaManager {
    /// A manager over `replicas`; checks each once before returning and
    /// starts the background check.
    pub async fn start(
        primary: Arc<Target>,
        replicas: Vec<Target>,
        settings: ReplicaSettings,
    ) -> Arc<ReplicaManager> {
        let m = Arc::new(ReplicaManager {
            primary,
            replicas: replicas
                .into_iter()
                .map(|target| Replica {
                    target,
                    healthy: AtomicBool::new(false),
                    replay_lsn: AtomicU64::new(0),
                    lag_bytes: AtomicI64::new(-1),
                    problem: Mutex::new(Some("not checked yet".into())),
                })
                .collect(),
            settings,
            next: AtomicUsize::new(0),
            reads_primary: AtomicU64::new(0),
            reads_replica: AtomicU64::new(0),
            fallbacks: Default::default(),
            removed: AtomicU64::new(0),
            restored: AtomicU64::new(0),
            max_lag_seen: AtomicI64::new(0),
        });
        m.check_all().await;
        // Coming up at start-up is not a return to service.
        m.restored.store(0, Ordering::Relaxed);
        if !m.replicas.is_empty() {
            let weak = Arc::downgrade(&m);
            tokio::spawn(background(weak, m.settings.check_interval));
        }
        m
    }

    /// Check every replica once: answers, in recovery, lag under the threshold.
    pub async fn check_all(&self) {
        let primary_lsn = tokio::time::timeout(self.settings.check_timeout, async {
            let c = self.primary.get().await?;
            let rows = c
                .run(self.primary.statements, PRIMARY_LSN, &[])
                .await
                .db(|| "reading the primary's WAL position".into())?;
            Ok::<u64, Error>(rows[0].get::<_, PgLsn>(0).into())
        })
        .await
        .ok()
        .and_then(|r| r.ok());
        for r in &self.replicas {
            let answer = tokio::time::timeout(self.settings.check_timeout, async {
                let c = r.target.get().await?;
                let rows = c
                    .run(r.target.statements, CHECK_REPLICA, &[])
                    .await
                    .db(|| format!("checking the {}", r.target.name))?;
                let in_recovery: bool = rows[0].get(0);
                let lsn: Option<PgLsn> = rows[0].get(1);
                Ok::<_, Error>((in_recovery, lsn.map(u64::from)))
            })
            .await;
            let verdict: std::result::Result<(), String> = match answer {
                Err(_) => Err(format!(
                    "no answer within {:?}",
                    self.settings.check_timeout
                )),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok((false, _))) | Ok(Ok((true, None))) => {
                    Err("not a streaming replica (not in recovery)".into())
                }
                Ok(Ok((true, Some(lsn)))) => {
                    r.replay_lsn.fetch_max(lsn, Ordering::Relaxed);
                    match primary_lsn {
                        Some(p) => {
                            let lag = p.saturating_sub(lsn) as i64;
                            r.lag_bytes.store(lag, Ordering::Relaxed);
                            self.max_lag_seen.fetch_max(lag, Ordering::Relaxed);
                            if lag as u64 > self.settings.max_lag_bytes {
                                Err(format!(
                                    "lags {lag} bytes, over the {} byte threshold",
                                    self.settings.max_lag_bytes
                                ))
                            } else {
                                Ok(())
                            }
                        }
                        // Lag unknown while the primary does not answer; the
                        // replica still serves reads that need no recent write.
                        None => Ok(()),
                    }
                }
            };
            match verdict {
                Ok(()) => {
                    *r.problem.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    if !r.healthy.swap(true, Ordering::AcqRel) {
                        self.restored.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(p) => self.take_out(r, p),
            }
        }
    }

    fn take_out(&self, r: &Replica, problem: String) {
        let is_lag = problem.contains("threshold");
        *r.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(problem);
        if r.healthy.swap(false, Ordering::AcqRel) && !is_lag {
            self.removed.fetch_add(1, Ordering::Relaxed);
            // Connections to a dead server are useless; a restarted one
            // must be reached with new ones.
            r.target.drain_idle();
        }
    }

    /// Take a replica out after it failed a read.
    pub fn report_failure(&self, index: usize, err: &Error) {
        if let Some(r) = self.replicas.get(index) {
            self.take_out(r, format!("failed a read: {err}"));
        }
    }

    fn count_fallback(&self, reason: Fallback) {
        let i = Fallback::ALL.iter().position(|f| *f == reason).unwrap_or(0);
        self.fallbacks[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Count a read that had to leave its replica for the primary.
    pub fn count_replica_error(&self) {
        self.count_fallback(Fallback::ReplicaError);
    }

    /// Count a read served by `chosen`.
    pub fn count_read(&self, chosen: &Chosen<'_>) {
        match chosen {
            Chosen::Primary(_) => self.reads_primary.fetch_add(1, Ordering::Relaxed),
            Chosen::Replica(..) => self.reads_replica.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// The target of a read. `min_lsn` is the caller's own write, if any.
    pub async fn choose(&self, via: Via, min_lsn: Option<u64>) -> Result<Chosen<'_>> {
        if via == Via::Primary {
            return Ok(Chosen::Primary(&self.primary));
        }
        let reason = match self.pick_replica(min_lsn).await {
            Ok(i) => return Ok(Chosen::Replica(i, &self.replicas[i].target)),
            Err(reason) => reason,
        };
        if via == Via::Replica {
            return Err(Error::Lab(format!(
                "no replica can serve this read ({}): {}",
                reason.name(),
                self.problems()
            )));
        }
        self.count_fallback(reason);
        Ok(Chosen::Primary(&self.primary))
    }

    async fn pick_replica(&self, min_lsn: Option<u64>) -> std::result::Result<usize, Fallback> {
        let n = self.replicas.len();
        if n == 0 {
            return Err(Fallback::NoReplica);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let healthy: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.replicas[i].healthy.load(Ordering::Acquire))
            .collect();
        if healthy.is_empty() {
            let lagging = self.replicas.iter().any(|r| {
                r.problem
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_deref()
                    .is_some_and(|p| p.contains("threshold"))
            });
            return Err(if lagging {
                Fallback::Lag
            } else {
                Fallback::Unhealthy
            });
        }
        let Some(want) = min_lsn else {
            return Ok(healthy[0]);
        };
        if let Some(&i) = healthy
            .iter()
            .find(|&&i| self.replicas[i].replay_lsn.load(Ordering::Relaxed) >= want)
        {
            return Ok(i);
        }
        // Poll the first healthy replica until it has replayed the write.
        let i = healthy[0];
        let r = &self.replicas[i];
        let deadline = Instant::now() + self.settings.ryw_wait;
        loop {
            let lsn = async {
                let c = r.target.get().await.ok()?;
                let rows = c.run(r.target.statements, REPLAY_LSN, &[]).await.ok()?;
                rows[0].get::<_, Option<PgLsn>>(0).map(u64::from)
            };
            match tokio::time::timeout_at(deadline.into(), lsn).await {
                Ok(Some(lsn)) => {
                    r.replay_lsn.fetch_max(lsn, Ordering::Relaxed);
                    if lsn >= want {
                        return Ok(i);
                    }
                }
                Ok(None) => return Err(Fallback::ReplicaError),
                Err(_) => return Err(Fallback::ReadYourWrites),
            }
            if Instant::now() >= deadline {
                return Err(Fallback::ReadYourWrites);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn problems(&self) -> String {
        self.replicas
            .iter()
            .map(|r| {
                let p = r.problem.lock().unwrap_or_else(|e| e.into_inner()).clone();
                format!(
                    "{}: {}",
                    r.target.name,
                    p.unwrap_or_else(|| "healthy".into())
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The replicas' pools.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.replicas.iter().map(|r| &r.target)
    }

    pub fn stats(&self) -> RoutingStats {
        RoutingStats {
            reads_primary: self.reads_primary.load(Ordering::Relaxed),
            reads_replica: self.reads_replica.load(Ordering::Relaxed),
            fallbacks: Fallback::ALL
                .iter()
                .zip(&self.fallbacks)
                .map(|(f, c)| (f.name().to_string(), c.load(Ordering::Relaxed)))
                .collect(),
            replica_removed: self.removed.load(Ordering::Relaxed),
            replica_restored: self.restored.load(Ordering::Relaxed),
            lag_bytes: self
                .replicas
                .iter()
                .map(|r| {
                    let l = r.lag_bytes.load(Ordering::Relaxed);
                    (r.target.name.clone(), (l >= 0).then_some(l))
                })
                .collect(),
            max_lag_bytes_seen: self.max_lag_seen.load(Ordering::Relaxed),
            healthy_replicas: self
                .replicas
                .iter()
                .filter(|r| r.healthy.load(Ordering::Relaxed))
                .count(),
        }
    }
}

async fn background(weak: Weak<ReplicaManager>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(m) = weak.upgrade() else { return };
        m.check_all().await;
    }
}
