//! The maintenance jobs the partitioned estate needs after the cutover
//! (issue 17): `rehearse job run <name>`, and their schedules in pg_cron
//! (`rehearse job install`, `rehearse job list`).
//!
//! The database jobs are SQL functions (`sql/jobs.sql`), so the command and
//! pg_cron run the same code; each records a row in `rehearse_job_runs`,
//! which `rehearse job run` prints and the lab's postgres_exporter exports.
//! `cache-sweep` talks to Redis, so it runs from the command only (a crontab
//! line or a Kubernetes CronJob: `deploy/cron/`).

pub mod cache_sweep;
pub mod schedule;

use std::time::Duration;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::error::{DbContext, IoContext, Result};
use crate::estate::Estate;
use crate::{db, exit, schema};

/// The job functions and their run table.
pub const JOBS_SQL: &str = include_str!("sql/jobs.sql");

/// A maintenance job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    Reconcile,
    Analyze,
    PartitionReport,
    CacheSweep,
    PortfolioRefresh,
}

impl Job {
    /// The SQL that runs it in the database (None: it runs from rehearse only).
    pub fn sql_call(self, budget: Duration) -> Option<String> {
        let b = format!("interval '{} milliseconds'", budget.as_millis());
        match self {
            Job::Reconcile => Some(format!("SELECT rehearse_job_reconcile({b})")),
            Job::Analyze => Some(format!("SELECT rehearse_job_analyze({b})")),
            Job::PartitionReport => Some("SELECT rehearse_job_partition_report()".into()),
            Job::PortfolioRefresh => Some("SELECT rehearse_job_portfolio_refresh()".into()),
            Job::CacheSweep => None,
        }
    }
}

crate::named!("job", Job {
    Reconcile = "reconcile",
    Analyze = "analyze",
    PartitionReport = "partition-report",
    CacheSweep = "cache-sweep",
    PortfolioRefresh = "portfolio-refresh",
});

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The job starts no new chunk after this long, and says what it left.
    pub budget: Duration,
    /// Lock waits give up after this long.
    pub lock_timeout: Duration,
    pub allow_destructive: Option<String>,
    /// Reconcile only these organizations (job `reconcile-scoped`): the
    /// estate's last reconcile state, with their rows checked again.
    pub orgs: Vec<i64>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            budget: Duration::from_secs(600),
            lock_timeout: Duration::from_secs(2),
            allow_destructive: None,
            orgs: Vec::new(),
        }
    }
}

/// One recorded run of a job (a row of `rehearse_job_runs`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    /// Nothing wrong found, and everything checked.
    pub ok: bool,
    /// Every chunk done within the budget.
    pub complete: bool,
    pub summary: String,
    pub detail: serde_json::Value,
}

/// The job name a reconcile of named organizations records its runs under:
/// apart from `reconcile`, so that only a full run counts as the estate
/// checked (ReconcileStale, DriftUnchecked, `rehearse readiness`).
pub const SCOPED_RECONCILE: &str = "reconcile-scoped";

/// A kept run's file in a results directory: `job-<name>.json`.
pub fn run_file(job: &str) -> String {
    format!("job-{job}.json")
}

/// Keep `run` in `dir/job-<name>.json`, atomically.
pub fn write_run(dir: &std::path::Path, run: &JobRun) -> Result<()> {
    std::fs::create_dir_all(dir).io("creating", dir)?;
    let json = serde_json::to_string_pretty(run).expect("a job run serializes");
    crate::fsutil::write_atomic(&dir.join(run_file(&run.job)), json.as_bytes())
}

/// The runs kept in `dir` (`job-*.json`), strictly parsed, by file name.
pub fn read_runs(dir: &std::path::Path) -> Result<Vec<(std::path::PathBuf, JobRun)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("job-") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).io("reading", &p)?;
        let run: JobRun = serde_json::from_str(&text)
            .map_err(|e| crate::Error::Usage(format!("{}: not a job run: {e}", p.display())))?;
        out.push((p, run));
    }
    Ok(out)
}

impl JobRun {
    /// Judged from the row, failing closed: 0 clean and complete; 1 a
    /// reconcile found drift; 3 what is not known (a reconcile that left a
    /// chunk unchecked or checked nothing, a field the row lacks, any job
    /// that ran out of budget or did not say it was ok).
    pub fn exit_code(&self) -> i32 {
        let field = |k: &str| self.detail.get(k).and_then(serde_json::Value::as_i64);
        if self.job == "reconcile" || self.job == SCOPED_RECONCILE {
            // A scoped run is judged on its organizations: the estate's
            // state it carries is the last full run's, reported beside.
            let drift_field = if self.job == SCOPED_RECONCILE {
                "scope_drift_rows"
            } else {
                "drift_rows"
            };
            let (Some(drift), Some(checked)) = (field(drift_field), field("checked_chunks")) else {
                return exit::INVALID;
            };
            return if drift > 0 {
                exit::FAIL
            } else if self.ok && self.complete && checked > 0 {
                exit::OK
            } else {
                exit::INVALID
            };
        }
        if self.ok && self.complete {
            exit::OK
        } else {
            // Nothing ranked (portfolio-refresh), or a budget spent before
            // the end: what was left is unknown, never a pass.
            exit::INVALID
        }
    }
}

const READ_RUN: &str = "\
SELECT id, job, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       extract(epoch FROM finished_at - started_at)::float8, ok, complete, summary, detail
  FROM rehearse_job_runs";

pub(crate) fn run_of(r: &tokio_postgres::Row) -> JobRun {
    JobRun {
        id: r.get(0),
        job: r.get(1),
        started_at: r.get(2),
        finished_at: r.get(3),
        seconds: r.get(4),
        ok: r.get(5),
        complete: r.get(6),
        summary: r.get(7),
        detail: r.get(8),
    }
}

/// Read one recorded run.
pub async fn read_run(client: &impl GenericClient, id: i64) -> Result<JobRun> {
    let row = client
        .query_one(&format!("{READ_RUN} WHERE id = $1"), &[&id])
        .await
        .db(|| format!("reading job run {id}"))?;
    Ok(run_of(&row))
}

/// The last run of each job, if any.
pub async fn last_runs(client: &impl GenericClient) -> Result<Vec<JobRun>> {
    let exists: bool = client
        .query_one("SELECT to_regclass('rehearse_job_runs') IS NOT NULL", &[])
        .await
        .db(|| "looking for rehearse_job_runs".into())?
        .get(0);
    if !exists {
        return Ok(vec![]);
    }
    let rows = client
        .query(
            &format!(
                "{READ_RUN} WHERE id IN (SELECT max(id) FROM rehearse_job_runs GROUP BY job) ORDER BY job"
            ),
            &[],
        )
        .await
        .db(|| "reading the last job runs".into())?;
    Ok(rows.iter().map(run_of).collect())
}

/// Install (or replace) the job functions: they are read-only on the
/// finance tables, so this is allowed on any rehearsal target.
pub async fn install_functions(client: &impl GenericClient) -> Result<()> {
    client
        .batch_execute(&format!(
            "{}\n{}\n{JOBS_SQL}",
            schema::JOB_RUNS_TABLE,
            schema::PORTFOLIO_RANKINGS_TABLE
        ))
        .await
        .db(|| "installing the job functions (rehearse_job_*)".into())
}

/// Run one job now.
pub async fn run(estate: &Estate, job: Job, opts: &JobOptions) -> Result<JobRun> {
    let call = if opts.orgs.is_empty() {
        job.sql_call(opts.budget)
    } else if job == Job::Reconcile {
        let orgs: Vec<String> = opts.orgs.iter().map(i64::to_string).collect();
        Some(format!(
            "SELECT rehearse_job_reconcile_orgs(ARRAY[{}]::bigint[], interval '{} milliseconds')",
            orgs.join(","),
            opts.budget.as_millis()
        ))
    } else {
        return Err(crate::Error::Usage(format!(
            "--org is for `job run reconcile` only, not {job}"
        )));
    };
    let client = db::connect(&estate.primary.url).await?;
    schema::safety::ensure_rehearsal_target(
        &client,
        estate,
        opts.allow_destructive.as_deref(),
        &format!("job run {job}"),
    )
    .await?;
    schema::meta::require_known(&client).await?;
    install_functions(&client).await?;
    let id = match call {
        Some(call) => {
            // A chunk in progress when the budget runs out may finish; the
            // statement as a whole may not run much past it.
            client
                .batch_execute(&format!(
                    "SET statement_timeout = '{}s'; SET lock_timeout = '{}ms'",
                    opts.budget.as_secs() + 60,
                    opts.lock_timeout.as_millis().max(1)
                ))
                .await
                .db(|| "setting the job's timeouts".into())?;
            let row = client
                .query_one(&call, &[])
                .await
                .db(|| format!("running job {job} (statement timeout: budget + 60 s)"))?;
            row.get::<_, i64>(0)
        }
        None => cache_sweep::sweep(estate, &client, opts).await?,
    };
    read_run(&client, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(job: &str, ok: bool, complete: bool, drift: i64) -> JobRun {
        JobRun {
            id: 1,
            job: job.into(),
            started_at: String::new(),
            finished_at: String::new(),
            seconds: 0.0,
            ok,
            complete,
            summary: String::new(),
            detail: serde_json::json!({ "drift_rows": drift, "checked_chunks": 4 }),
        }
    }

    #[test]
    fn a_reconcile_that_could_not_check_everything_is_not_a_pass() {
        assert_eq!(run("reconcile", true, true, 0).exit_code(), exit::OK);
        assert_eq!(run("reconcile", false, true, 3).exit_code(), exit::FAIL);
        assert_eq!(run("reconcile", false, false, 3).exit_code(), exit::FAIL);
        assert_eq!(run("reconcile", false, false, 0).exit_code(), exit::INVALID);
        // ok but incomplete: the row's own word is not enough.
        assert_eq!(run("reconcile", true, false, 0).exit_code(), exit::INVALID);
        // Checked nothing: no pass.
        let mut none = run("reconcile", true, true, 0);
        none.detail["checked_chunks"] = 0.into();
        assert_eq!(none.exit_code(), exit::INVALID);
        // A field the row lacks is unknown, not zero.
        for field in ["drift_rows", "checked_chunks"] {
            let mut r = run("reconcile", true, true, 0);
            r.detail.as_object_mut().unwrap().remove(field);
            assert_eq!(r.exit_code(), exit::INVALID, "{field}");
        }
        // A scoped run is judged on its own organizations' drift.
        let mut scoped = run(SCOPED_RECONCILE, true, true, 4);
        scoped.detail["scope_drift_rows"] = 0.into();
        assert_eq!(
            scoped.exit_code(),
            exit::OK,
            "drift elsewhere is reported, not its verdict"
        );
        scoped.detail["scope_drift_rows"] = 1.into();
        assert_eq!(scoped.exit_code(), exit::FAIL);
        scoped
            .detail
            .as_object_mut()
            .unwrap()
            .remove("scope_drift_rows");
        assert_eq!(scoped.exit_code(), exit::INVALID);
        assert_eq!(run("analyze", true, true, 0).exit_code(), exit::OK);
        assert_eq!(run("analyze", true, false, 0).exit_code(), exit::INVALID);
        assert_eq!(
            run("portfolio-refresh", false, true, 0).exit_code(),
            exit::INVALID
        );
    }

    #[test]
    fn jobs_parse_by_name_and_only_database_jobs_have_sql() {
        for j in Job::ALL {
            assert_eq!(j.name().parse::<Job>().unwrap(), j);
        }
        assert!("vacuum".parse::<Job>().is_err());
        assert_eq!(
            Job::Reconcile.sql_call(Duration::from_secs(90)).unwrap(),
            "SELECT rehearse_job_reconcile(interval '90000 milliseconds')"
        );
        assert!(Job::CacheSweep.sql_call(Duration::from_secs(1)).is_none());
    }
}
