//! The faults, injected for real on the lab and repaired: a stopped
//! server, WAL replay paused while WAL is written, a corrupted summary row.

use crate::db;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::lab::{Component, LabCtx};

use super::*;

/// What injecting a fault left to undo.
pub(super) enum Undo {
    Start(Component),
    ResumeReplay,
    Summary {
        table: &'static str,
        key: (i64, i64, crate::day::Day),
    },
}

pub(super) async fn inject(f: Fault, ctx: &LabCtx, estate: &Estate) -> Result<Undo> {
    match f {
        Fault::ReplicaDown => {
            ctx.stop(Component::Replica)?;
            Ok(Undo::Start(Component::Replica))
        }
        Fault::RedisDown => {
            ctx.stop(Component::Redis)?;
            Ok(Undo::Start(Component::Redis))
        }
        Fault::PgbouncerDown => {
            ctx.stop(Component::Pgbouncer)?;
            Ok(Undo::Start(Component::Pgbouncer))
        }
        Fault::ReplicaLag => {
            let replica = db::connect(&ctx.state.urls.replica).await?;
            replica
                .batch_execute("SELECT pg_wal_replay_pause()")
                .await
                .map_err(|source| Error::Db {
                    what: "pausing WAL replay on the replica".into(),
                    source,
                })?;
            // The workload writes too little WAL to cross the rule's
            // threshold soon; a scratch table adds ~90 MiB.
            let primary = db::connect(&estate.primary.url).await?;
            primary
                .batch_execute(
                    "DROP TABLE IF EXISTS rehearse_alerts_wal;
                     CREATE UNLOGGED TABLE IF NOT EXISTS rehearse_alerts_scratch (x int);
                     CREATE TABLE rehearse_alerts_wal (id int, pad text);
                     INSERT INTO rehearse_alerts_wal
                       SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 90000) g;",
                )
                .await
                .map_err(|source| Error::Db {
                    what: "writing WAL for the replica-lag fault".into(),
                    source,
                })?;
            Ok(Undo::ResumeReplay)
        }
        Fault::SummaryDrift => {
            let primary = db::connect(&estate.primary.url).await?;
            for table in [
                "daily_financial_summaries",
                "daily_financial_summaries_partitioned",
            ] {
                let exists: bool = primary
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                    .await
                    .map_err(|source| Error::Db {
                        what: "looking for the summary tables".into(),
                        source,
                    })?
                    .get(0);
                if !exists {
                    continue;
                }
                let sql = format!(
                    "UPDATE {table} SET revenue_cents = revenue_cents + 1
                      WHERE (organization_id, property_id, business_date) =
                            (SELECT organization_id, property_id, business_date FROM {table}
                              WHERE business_date = (SELECT max(business_date) FROM {table})
                              ORDER BY organization_id DESC, property_id DESC LIMIT 1)
                      RETURNING organization_id, property_id, business_date"
                );
                let rows = primary.query(&sql, &[]).await.map_err(|source| Error::Db {
                    what: format!("corrupting a summary row of {table}"),
                    source,
                })?;
                if let Some(r) = rows.first() {
                    // The reconcile job sees it on any day of any estate
                    // size; scoped to the row's organization, in seconds.
                    let key: (i64, i64, crate::day::Day) = (r.get(0), r.get(1), r.get(2));
                    reconcile(estate, key.0).await?;
                    return Ok(Undo::Summary { table, key });
                }
            }
            Err(Error::Usage(
                "summary-drift needs a seeded estate: no daily summary row to corrupt".into(),
            ))
        }
    }
}

/// Reconcile the corrupted row's organization (job reconcile-scoped), for
/// ReconcileFoundDrift: the exporter carries the last full run's state with
/// that organization's rows replaced, so the alert fires on the drift and
/// resolves on the repair without a full pass over the estate (minutes at
/// 1M organizations). With no complete full run to carry, the state would be
/// unknown (ReconcileIncomplete): then the whole estate, as pg_cron would.
pub(super) async fn reconcile(estate: &Estate, org: i64) -> Result<()> {
    let primary = db::connect(&estate.primary.url).await?;
    let full_done: bool = primary
        .query_one(
            "SELECT to_regclass('rehearse_job_runs') IS NOT NULL
                AND EXISTS (SELECT 1 FROM rehearse_job_runs WHERE job = 'reconcile' AND complete)",
            &[],
        )
        .await
        .map_err(|source| Error::Db {
            what: "looking for a complete reconcile run".into(),
            source,
        })?
        .get(0);
    let opts = crate::jobs::JobOptions {
        orgs: if full_done { vec![org] } else { vec![] },
        ..Default::default()
    };
    crate::jobs::run(estate, crate::jobs::Job::Reconcile, &opts)
        .await
        .map(|_| ())
}

pub(super) async fn repair(undo: &Undo, ctx: &LabCtx, estate: &Estate) -> Result<()> {
    match undo {
        Undo::Start(c) => ctx.start(*c).await,
        Undo::ResumeReplay => {
            let replica = db::connect(&ctx.state.urls.replica).await?;
            replica
                .batch_execute("SELECT pg_wal_replay_resume()")
                .await
                .map_err(|source| Error::Db {
                    what: "resuming WAL replay on the replica".into(),
                    source,
                })?;
            let primary = db::connect(&estate.primary.url).await?;
            primary
                .batch_execute(
                    "DROP TABLE IF EXISTS rehearse_alerts_wal; DROP TABLE IF EXISTS rehearse_alerts_scratch",
                )
                .await
                .map_err(|source| Error::Db {
                    what: "dropping the replica-lag scratch table".into(),
                    source,
                })
        }
        Undo::Summary { table, key } => {
            let primary = db::connect(&estate.primary.url).await?;
            let sql = format!(
                "UPDATE {table} SET revenue_cents = revenue_cents - 1
                  WHERE organization_id = $1 AND property_id = $2 AND business_date = $3"
            );
            primary
                .execute(&sql, &[&key.0, &key.1, &key.2])
                .await
                .map_err(|source| Error::Db {
                    what: format!("repairing the summary row of {table}"),
                    source,
                })?;
            reconcile(estate, key.0).await
        }
    }
}
