//! `cache-sweep`: delete the report cache's keys of generations no longer
//! current. A write bumps its organization's generation, which makes the
//! organization's cached reports unreachable at once; they would otherwise
//! hold Redis memory until their TTL. A key is swept when its generation is
//! not the organization's current one (a missing generation counter reads
//! as 0, as the cache reads it). The walk is SCAN-based, so Redis never
//! blocks on it, and stops when the budget is spent.

use std::collections::HashMap;
use std::time::Instant;

use tokio_postgres::Client;

use super::JobOptions;
use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::url::redact;

/// Keys looked at per SCAN call.
const SCAN_COUNT: usize = 1_000;

/// A report key's organization and generation:
/// `rehearse:<db>:<mode>:<operation>:<org>:...:g<generation>`.
pub fn parse_report_key(namespace: &str, key: &str) -> Option<(i64, u64)> {
    let rest = key.strip_prefix(namespace)?.strip_prefix(':')?;
    let mut parts = rest.split(':');
    let mode = parts.next()?;
    if mode != "legacy" && mode != "partitioned" {
        return None;
    }
    let _op = parts.next()?;
    let org = parts.next()?.parse().ok()?;
    let generation = rest.rsplit(':').next()?.strip_prefix('g')?.parse().ok()?;
    Some((org, generation))
}

fn redis_err(what: &str, url: &str) -> impl FnOnce(redis::RedisError) -> Error {
    let what = format!("{what} ({})", redact(url));
    move |source| Error::Redis { what, source }
}

/// Sweep, record the run, return its id.
pub async fn sweep(estate: &Estate, client: &Client, opts: &JobOptions) -> Result<i64> {
    let url = &estate
        .redis
        .as_ref()
        .ok_or_else(|| {
            Error::Usage("cache-sweep needs Redis: pass --redis-url or start the lab".into())
        })?
        .url;
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    let database = crate::db::current_database(client).await?;
    let namespace = format!("rehearse:{database}");
    let rc =
        crate::tls::redis_client(url.as_str()).map_err(redis_err("parsing the Redis URL", url))?;
    let mut con = rc
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_err("connecting to Redis", url))?;
    let pattern = format!("{namespace}:*:g*");
    let (mut cursor, mut scanned, mut swept, mut kept, mut other) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut complete = true;
    loop {
        if started.elapsed() > opts.budget {
            complete = false;
            break;
        }
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut con)
            .await
            .map_err(redis_err("scanning the report keys", url))?;
        scanned += keys.len() as u64;
        let parsed: Vec<(String, i64, u64)> = keys
            .into_iter()
            .filter_map(|k| match parse_report_key(&namespace, &k) {
                Some((o, g)) => Some((k, o, g)),
                None => {
                    other += 1;
                    None
                }
            })
            .collect();
        if !parsed.is_empty() {
            let mut orgs: Vec<i64> = parsed.iter().map(|p| p.1).collect();
            orgs.sort_unstable();
            orgs.dedup();
            let gen_keys: Vec<String> = orgs
                .iter()
                .map(|o| format!("{namespace}:org:{o}:gen"))
                .collect();
            let gens: Vec<Option<u64>> = redis::cmd("MGET")
                .arg(&gen_keys)
                .query_async(&mut con)
                .await
                .map_err(redis_err("reading the generations", url))?;
            let current: HashMap<i64, u64> = orgs
                .iter()
                .zip(gens)
                .map(|(o, g)| (*o, g.unwrap_or(0)))
                .collect();
            let stale: Vec<&str> = parsed
                .iter()
                .filter(|(_, o, g)| current.get(o) != Some(g))
                .map(|(k, _, _)| k.as_str())
                .collect();
            kept += (parsed.len() - stale.len()) as u64;
            if !stale.is_empty() {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&stale)
                    .query_async(&mut con)
                    .await
                    .map_err(redis_err("deleting stale report keys", url))?;
                swept += n;
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let summary = format!(
        "{swept} report keys of old generations deleted, {kept} current kept ({scanned} scanned{}){}",
        if other > 0 {
            format!(", {other} not report keys")
        } else {
            String::new()
        },
        if complete {
            String::new()
        } else {
            format!("; budget of {} s spent before the scan ended", opts.budget.as_secs())
        }
    );
    let detail = serde_json::json!({
        "namespace": namespace, "scanned": scanned, "swept": swept, "kept": kept,
        "other": other, "redis": redact(url),
    });
    let started_ts = crate::day::iso_utc(started_at);
    let row = client
        .query_one(
            "INSERT INTO rehearse_job_runs (job, started_at, finished_at, ok, complete, summary, detail) \
             VALUES ('cache-sweep', $1::text::timestamptz, clock_timestamp(), $2, $2, $3, $4) RETURNING id",
            &[&started_ts, &complete, &summary, &detail],
        )
        .await
        .db(|| "recording the cache sweep".into())?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keys_parse_and_counters_do_not() {
        let ns = "rehearse:db1";
        assert_eq!(
            parse_report_key(ns, "rehearse:db1:legacy:dashboard:42:2026-10-31:7:g3"),
            Some((42, 3))
        );
        assert_eq!(
            parse_report_key(ns, "rehearse:db1:partitioned:pnl:7:2026-10-01:g0"),
            Some((7, 0))
        );
        assert_eq!(parse_report_key(ns, "rehearse:db1:org:42:gen"), None);
        assert_eq!(
            parse_report_key(ns, "rehearse:db10:legacy:pnl:7:x:g1"),
            None
        );
    }
}
