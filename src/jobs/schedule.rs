//! The jobs' schedules in pg_cron: `rehearse job install`, `list` and
//! `uninstall`. pg_cron's scheduler lives in one database of the server
//! (`cron.database_name`); `cron.schedule_in_database` runs each job in the
//! rehearsal database. A standby runs no job (pg_cron waits for promotion),
//! so schedules go to the primary only. cache-sweep needs Redis, which SQL
//! cannot reach: it runs from a crontab line or a Kubernetes CronJob
//! (`deploy/cron/`).

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use super::{Job, JobRun};
use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::url::with_database;
use crate::{db, schema};

/// Default schedules (cron syntax, the server's time zone).
pub const DEFAULT_SCHEDULES: [(Job, &str); 4] = [
    (Job::Reconcile, "*/15 * * * *"),
    (Job::Analyze, "23 * * * *"),
    (Job::PartitionReport, "7 4 * * *"),
    // After the day's close: the ranking a portfolio read serves is at most
    // a day behind the day it asks for (repo/reporting.rs refuses older).
    (Job::PortfolioRefresh, "17 0 * * *"),
];

/// The pg_cron name of a job for a database.
pub fn cron_name(job: Job, database: &str) -> String {
    format!("rehearse-{}@{database}", job.name())
}

/// Where pg_cron's scheduler runs, or why it cannot be used here.
async fn cron_database(client: &Client) -> Result<String> {
    match client.query_one("SHOW cron.database_name", &[]).await {
        Ok(r) => Ok(r.get(0)),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) => {
            Err(Error::Refused(
                "pg_cron is not loaded on this server: add pg_cron to shared_preload_libraries \
                 (the lab does so when Debian's postgresql-15-cron is installed) and restart it, \
                 or schedule `rehearse job run <name>` from cron or Kubernetes: deploy/cron/"
                    .into(),
            ))
        }
        Err(e) => Err(e).db(|| "asking for cron.database_name".into()),
    }
}

/// What `job install` did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub database: String,
    pub cron_database: String,
    /// (pg_cron job name, schedule, command, jobid)
    pub schedules: Vec<(String, String, String, i64)>,
}

/// Install the job functions in the rehearsal database and schedule them
/// in pg_cron (re-running replaces the schedules: pg_cron keys them by name).
pub async fn install(
    estate: &Estate,
    schedules: &[(Job, String)],
    budget: Duration,
    dry_run: bool,
    allow_destructive: Option<&str>,
) -> Result<Installed> {
    let client = db::connect(&estate.primary.url).await?;
    schema::safety::ensure_rehearsal_target(&client, estate, allow_destructive, "job install")
        .await?;
    let info = schema::meta::require_known(&client).await?;
    let cron_db = cron_database(&client).await?;
    let plan: Vec<(String, String, String)> = schedules
        .iter()
        .map(|(job, when)| {
            let call = job.sql_call(budget).ok_or_else(|| {
                Error::Usage(format!(
                    "{job} runs outside the database (it needs Redis); schedule `rehearse job run {job}` \
                     from cron or a Kubernetes CronJob (deploy/cron/)"
                ))
            })?;
            let command = format!(
                "SET statement_timeout = '{}s'; SET lock_timeout = '2s'; {call}",
                budget.as_secs() + 60
            );
            Ok((cron_name(*job, &info.database), when.clone(), command))
        })
        .collect::<Result<_>>()?;
    if dry_run {
        println!("-- job install --dry-run: in database {}", info.database);
        println!("-- (the job functions: src/jobs/sql/jobs.sql)");
        println!("-- in database {cron_db}:\nCREATE EXTENSION IF NOT EXISTS pg_cron;");
        for (name, when, command) in &plan {
            println!(
                "SELECT cron.schedule_in_database('{name}', '{when}', $${command}$$, '{}');",
                info.database
            );
        }
        return Ok(Installed {
            database: info.database,
            cron_database: cron_db,
            schedules: plan.into_iter().map(|(n, w, c)| (n, w, c, 0)).collect(),
        });
    }
    super::install_functions(&client).await?;
    let cron = db::connect(&with_database(&estate.primary.url, &cron_db)).await?;
    cron.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        .await
        .db(|| format!("creating the pg_cron extension in database {cron_db}"))?;
    let mut out = Vec::new();
    for (name, when, command) in plan {
        let row = cron
            .query_one(
                "SELECT cron.schedule_in_database($1, $2, $3, $4)",
                &[&name, &when, &command, &info.database],
            )
            .await
            .db(|| format!("scheduling {name} ({when:?})"))?;
        out.push((name, when, command, row.get(0)));
    }
    Ok(Installed {
        database: info.database,
        cron_database: cron_db,
        schedules: out,
    })
}

/// Remove this database's rehearse schedules; returns how many.
pub async fn uninstall(estate: &Estate) -> Result<u64> {
    let client = db::connect(&estate.primary.url).await?;
    let database = db::current_database(&client).await?;
    let cron_db = cron_database(&client).await?;
    let cron = db::connect(&with_database(&estate.primary.url, &cron_db)).await?;
    let n = cron
        .query_one(
            "SELECT count(cron.unschedule(jobid)) FROM cron.job \
              WHERE jobname LIKE 'rehearse-%' AND database = $1",
            &[&database],
        )
        .await
        .db(|| "removing the schedules".into())?
        .get::<_, i64>(0);
    Ok(n as u64)
}

/// One schedule and its last run in pg_cron.
#[derive(Debug, Clone, Serialize)]
pub struct Scheduled {
    pub jobid: i64,
    pub name: String,
    pub schedule: String,
    pub active: bool,
    pub command: String,
    /// pg_cron's last run: status ("succeeded", "failed", "running"),
    /// start time, and its message.
    pub last_status: Option<String>,
    pub last_start: Option<String>,
    pub last_message: Option<String>,
    pub runs: i64,
}

/// `job list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub database: String,
    /// None when pg_cron is not loaded (the reason).
    pub cron: std::result::Result<Vec<Scheduled>, String>,
    /// The last recorded run of each job (from any scheduler, or by hand).
    pub last_runs: Vec<JobRun>,
}

pub async fn list(estate: &Estate) -> Result<Listing> {
    let client = db::connect(&estate.primary.url).await?;
    let database = db::current_database(&client).await?;
    let cron = match cron_database(&client).await {
        Err(Error::Refused(why)) => Err(why),
        Err(e) => return Err(e),
        Ok(cron_db) => {
            let cron = db::connect(&with_database(&estate.primary.url, &cron_db)).await?;
            let has: bool = cron
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')",
                    &[],
                )
                .await
                .db(|| "looking for pg_cron".into())?
                .get(0);
            if !has {
                Err(format!(
                    "pg_cron is loaded but not created in database {cron_db}: `rehearse job install` creates it"
                ))
            } else {
                let rows = cron
                    .query(
                        "SELECT j.jobid, j.jobname, j.schedule, j.active, j.command, d.status,
                                to_char(d.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                                d.return_message,
                                (SELECT count(*) FROM cron.job_run_details x WHERE x.jobid = j.jobid)
                           FROM cron.job j
                           LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details r WHERE r.jobid = j.jobid
                                               ORDER BY r.runid DESC LIMIT 1) d ON true
                          WHERE j.jobname LIKE 'rehearse-%' AND j.database = $1
                          ORDER BY j.jobname",
                        &[&database],
                    )
                    .await
                    .db(|| "reading cron.job and cron.job_run_details".into())?;
                Ok(rows
                    .iter()
                    .map(|r| Scheduled {
                        jobid: r.get(0),
                        name: r.get(1),
                        schedule: r.get(2),
                        active: r.get(3),
                        command: r.get(4),
                        last_status: r.get(5),
                        last_start: r.get(6),
                        last_message: r.get(7),
                        runs: r.get(8),
                    })
                    .collect())
            }
        }
    };
    Ok(Listing {
        database,
        cron,
        last_runs: super::last_runs(&client).await?,
    })
}
