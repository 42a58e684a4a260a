//! Sampling what the backends serving a run wait on, on one server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Seen;

/// Backends busy with a statement (or holding a transaction open between
/// statements: they wait on the client), other than the sampler itself.
/// A statement still being parsed and analysed has no query id yet (an
/// unnamed statement waiting for a lock there): its text stands in.
const WAITS: &str = "\
SELECT coalesce(query_id, 0), coalesce(wait_event_type || ':' || wait_event, 'CPU'),
       CASE WHEN query_id IS NULL THEN query END
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')";

/// The relation locks each executing backend holds, and how many of them
/// are outside the fast path.
const LOCKS: &str = "\
SELECT a.query_id, count(*)::int8, (count(*) FILTER (WHERE NOT l.fastpath))::int8
FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
WHERE a.datname = current_database() AND a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid() AND a.state = 'active' AND a.query_id IS NOT NULL
  AND l.locktype = 'relation' AND l.granted
GROUP BY a.pid, a.query_id";

/// A running sampler; [`Sampler::finish`] stops it and returns what it saw.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Seen>,
}

impl Sampler {
    /// Sample `url` every `interval`, locks every `lock_every` rounds; None
    /// when the server cannot be reached (the run goes on without it).
    pub async fn start(url: &str, interval: Duration, lock_every: u32) -> Option<Sampler> {
        let client = crate::db::connect_monitor(url).await.ok()?;
        let waits = client.prepare(WAITS).await.ok()?;
        let locks = client.prepare(LOCKS).await.ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                let t0 = Instant::now();
                let Ok(rows) = client.query(&waits, &[]).await else {
                    break;
                };
                seen.rounds += 1;
                for r in rows {
                    match r.get::<_, Option<String>>(2) {
                        Some(text) => *seen.waits_by_text.entry((text, r.get(1))).or_default() += 1,
                        None => *seen.waits.entry((r.get(0), r.get(1))).or_default() += 1,
                    }
                }
                if lock_every > 0 && seen.rounds % u64::from(lock_every) == 0 {
                    if let Ok(rows) = client.query(&locks, &[]).await {
                        for r in rows {
                            let e = seen.locks.entry(r.get(0)).or_default();
                            e.0 += 1;
                            e.1 += r.get::<_, i64>(1) as u64;
                            e.2 += r.get::<_, i64>(2) as u64;
                        }
                    }
                }
                seen.busy_ms += t0.elapsed().as_secs_f64() * 1e3;
            }
            seen
        });
        Some(Sampler { stop, task })
    }

    pub async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
