//! Redis cache-aside for the organization reports.
//!
//! Keys carry a per-organization generation number that every committed
//! write bumps, so a write makes the organization's cached reports
//! unreachable at once. The bump also records the write's commit LSN (the
//! largest seen): a report is only cached from a read that has replayed at
//! least that LSN, so a lagging replica can never put an old figure under
//! the new generation. Redis down or slow degrades to the database: every
//! failure is counted and none reaches the caller. A bump that fails is
//! remembered and retried; until it succeeds the organization's reports
//! bypass the cache, so no read after a committed write sees the old figure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::schema::Mode;
use crate::url::redact;

/// Bump the generation, keep the largest commit LSN (fixed-width hex, so
/// string order is LSN order), refresh both keys' expiry.
const INVALIDATE: &str = "\
local g = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local cur = redis.call('GET', KEYS[2])
if (not cur) or ARGV[1] > cur then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return g";

/// Settings of the cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// How long a cached report lives.
    pub ttl: Duration,
    /// Time limit of one Redis command; slower is treated as down.
    pub op_timeout: Duration,
    /// After a failure, how long to go straight to the database before
    /// trying Redis again.
    pub retry_after: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::from_secs(60),
            op_timeout: Duration::from_millis(100),
            retry_after: Duration::from_millis(500),
        }
    }
}

/// Counters of the cache.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub invalidations: u64,
    /// Commands that failed or timed out, and calls that skipped Redis while it was down.
    pub errors: u64,
}

/// How a cached read was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// Redis failed or an invalidation is pending: read from the database, not cached.
    Bypass,
}

pub struct ReportCache {
    client: redis::Client,
    url: String,
    namespace: String,
    settings: CacheSettings,
    conn: Mutex<Option<MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    down_until: Mutex<Option<Instant>>,
    /// Organizations whose bump failed, with the largest LSN to record.
    pending: Mutex<HashMap<i64, u64>>,
    /// The latest commit LSN of any write this process made: what a read
    /// must have replayed when Redis cannot say what the organization's is.
    last_write: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    errors: AtomicU64,
}

/// The later of two optional WAL positions.
fn later(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReportCache {
    /// A cache on `url`; keys are prefixed with `namespace` (the database
    /// name) so two rehearsal databases can share one Redis. Nothing is
    /// connected until first use.
    pub fn new(url: &str, namespace: &str, settings: CacheSettings) -> Result<ReportCache> {
        let client = crate::tls::redis_client(url).map_err(|source| Error::Redis {
            what: format!("parsing the redis URL {}", redact(url)),
            source,
        })?;
        Ok(ReportCache {
            client,
            url: redact(url),
            namespace: format!("rehearse:{namespace}"),
            settings,
            conn: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            down_until: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            last_write: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// The Redis URL without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    fn gen_key(&self, org: i64) -> String {
        format!("{}:org:{org}:gen", self.namespace)
    }

    fn lsn_key(&self, org: i64) -> String {
        format!("{}:org:{org}:lsn", self.namespace)
    }

    fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.conn) = None;
        *lock(&self.down_until) = Some(Instant::now() + self.settings.retry_after);
    }

    async fn connection(&self) -> Option<MultiplexedConnection> {
        if let Some(c) = lock(&self.conn).clone() {
            return Some(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = lock(&self.conn).clone() {
            return Some(c);
        }
        if lock(&self.down_until).is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let limit = self.settings.op_timeout.max(Duration::from_millis(250));
        match tokio::time::timeout(limit, self.client.get_multiplexed_async_connection()).await {
            Ok(Ok(c)) => {
                *lock(&self.conn) = Some(c.clone());
                Some(c)
            }
            _ => {
                *lock(&self.down_until) = Some(Instant::now() + self.settings.retry_after);
                None
            }
        }
    }

    /// Run one command; None (counted) when Redis is down, slow or refuses.
    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let Some(mut c) = self.connection().await else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        match tokio::time::timeout(self.settings.op_timeout, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Some(v),
            _ => {
                self.failed();
                None
            }
        }
    }

    /// Make the organization's cached reports unreachable after a write
    /// that committed at `lsn`.
    pub async fn invalidate(&self, org: i64, lsn: u64) {
        self.last_write.fetch_max(lsn, Ordering::Relaxed);
        let lsn = lock(&self.pending).get(&org).map_or(lsn, |&p| p.max(lsn));
        let keep = self.settings.ttl.as_secs().saturating_mul(100).max(86_400);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(INVALIDATE)
            .arg(2)
            .arg(self.gen_key(org))
            .arg(self.lsn_key(org))
            .arg(format!("{lsn:016x}"))
            .arg(keep);
        match self.command::<i64>(&cmd).await {
            Some(_) => {
                self.invalidations.fetch_add(1, Ordering::Relaxed);
                lock(&self.pending).remove(&org);
            }
            None => {
                let mut p = lock(&self.pending);
                let e = p.entry(org).or_insert(lsn);
                *e = (*e).max(lsn);
            }
        }
    }

    /// A report from the cache, or from `load` (then cached). `load` is given
    /// the LSN its read must have replayed: the caller's, or the
    /// organization's last write, whichever is later.
    pub async fn get_or_load<T, F, Fut>(
        &self,
        org: i64,
        mode: Mode,
        key: &str,
        caller_lsn: Option<u64>,
        load: F,
    ) -> Result<(T, CacheOutcome)>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Option<u64>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // Redis cannot tell this organization's last write: read no older
        // than this process's last write, so a bypass is never staler than a hit.
        let bypass_lsn = || {
            let ours = self.last_write.load(Ordering::Relaxed);
            later(caller_lsn, Some(ours).filter(|&l| l > 0))
        };
        let pending = lock(&self.pending).get(&org).copied();
        if let Some(lsn) = pending {
            self.invalidate(org, lsn).await;
            if lock(&self.pending).contains_key(&org) {
                return Ok((load(bypass_lsn()).await?, CacheOutcome::Bypass));
            }
        }
        let mut mget = redis::cmd("MGET");
        mget.arg(self.gen_key(org)).arg(self.lsn_key(org));
        let Some(v) = self.command::<Vec<Option<String>>>(&mget).await else {
            return Ok((load(bypass_lsn()).await?, CacheOutcome::Bypass));
        };
        let generation = v.first().cloned().flatten().unwrap_or_else(|| "0".into());
        let org_lsn = v
            .get(1)
            .cloned()
            .flatten()
            .and_then(|s| u64::from_str_radix(&s, 16).ok());
        let report_key = format!("{}:{mode}:{key}:g{generation}", self.namespace);
        let mut get = redis::cmd("GET");
        get.arg(&report_key);
        let Some(cached) = self.command::<Option<Vec<u8>>>(&get).await else {
            return Ok((
                load(later(bypass_lsn(), org_lsn)).await?,
                CacheOutcome::Bypass,
            ));
        };
        if let Some(bytes) = cached {
            if let Ok(v) = serde_json::from_slice::<T>(&bytes) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok((v, CacheOutcome::Hit));
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = load(later(caller_lsn, org_lsn)).await?;
        if let Ok(bytes) = serde_json::to_vec(&value) {
            let mut set = redis::cmd("SET");
            set.arg(&report_key)
                .arg(bytes)
                .arg("PX")
                .arg(self.settings.ttl.as_millis().max(1) as u64);
            let _ = self.command::<()>(&set).await;
        }
        Ok((value, CacheOutcome::Miss))
    }
}
