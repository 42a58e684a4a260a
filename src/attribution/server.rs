//! pg_stat_statements on one server, before and after a variant.

use std::collections::HashMap;

/// One statement's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub queryid: i64,
    pub query: String,
    pub calls: i64,
    pub plans: i64,
    pub plan_ms: f64,
    pub exec_ms: f64,
    pub rows: i64,
    pub shared_hit: i64,
    pub shared_read: i64,
    pub shared_dirtied: i64,
}

/// Top-level statements of the current database; `toplevel` keeps one row
/// per query id where pg_stat_statements.track = all would give two.
const STATEMENTS: &str = "\
SELECT queryid, query, calls, plans, total_plan_time, total_exec_time, rows,
       shared_blks_hit, shared_blks_read, shared_blks_dirtied
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL AND toplevel";

pub type Snapshot = HashMap<i64, Delta>;

/// pg_stat_statements now; None where the extension is not installed.
pub async fn snapshot(c: &tokio_postgres::Client) -> Option<Snapshot> {
    let rows = c.query(STATEMENTS, &[]).await.ok()?;
    Some(
        rows.iter()
            .map(|r| {
                let d = Delta {
                    queryid: r.get(0),
                    query: r.get(1),
                    calls: r.get(2),
                    plans: r.get(3),
                    plan_ms: r.get(4),
                    exec_ms: r.get(5),
                    rows: r.get(6),
                    shared_hit: r.get(7),
                    shared_read: r.get(8),
                    shared_dirtied: r.get(9),
                };
                (d.queryid, d)
            })
            .collect(),
    )
}

/// What ran between two snapshots (statements that ran at least once).
pub fn delta(before: &Snapshot, after: Snapshot) -> Vec<Delta> {
    after
        .into_values()
        .filter_map(|a| {
            let b = before.get(&a.queryid).cloned().unwrap_or_default();
            let d = Delta {
                calls: a.calls - b.calls,
                plans: a.plans - b.plans,
                plan_ms: a.plan_ms - b.plan_ms,
                exec_ms: a.exec_ms - b.exec_ms,
                rows: a.rows - b.rows,
                shared_hit: a.shared_hit - b.shared_hit,
                shared_read: a.shared_read - b.shared_read,
                shared_dirtied: a.shared_dirtied - b.shared_dirtied,
                ..a
            };
            (d.calls > 0).then_some(d)
        })
        .collect()
}

/// Whether the server times planning.
pub async fn tracks_planning(c: &tokio_postgres::Client) -> bool {
    c.query_one(
        "SELECT coalesce(current_setting('pg_stat_statements.track_planning', true), 'off')",
        &[],
    )
    .await
    .map(|r| r.get::<_, String>(0) == "on")
    .unwrap_or(false)
}
