//! `cutover backfill`: copy the legacy entries into the partitioned tables in
//! batches of organizations, each batch one transaction that also advances
//! the checkpoint in `rehearse_meta`, so a killed backfill resumes at the
//! first organization not committed and never copies a row twice (and rows
//! the mirror already wrote are skipped by the insert itself). Before each
//! batch it checks the replicas' lag and, under a workload, its p99, and
//! pauses while either is over its limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};

use super::{
    gate, lock_state, print_sql, say, write_state, BackfillProgress, CutoverPhase, Gate, Step,
    StepOptions, StepReport,
};
use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::progress;

const BACKFILL: &str = include_str!("sql/backfill.sql");

/// A probe of the running workload's recent p99 (the drill passes one).
pub type P99Probe = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// How the backfill paces itself.
#[derive(Clone)]
pub struct BackfillOptions {
    /// Organizations per batch (one transaction each).
    pub batch_orgs: i64,
    /// Pause while a replica is further behind than this many bytes.
    pub max_lag_bytes: i64,
    /// Pause while the workload's p99 is above this (needs a probe).
    pub max_p99: Option<Duration>,
    pub p99_probe: Option<P99Probe>,
    /// The longest pause before one more batch goes anyway: under a load
    /// that keeps p99 over its limit the backfill slows down, it does not stop.
    pub max_pause: Duration,
    /// Stop after this many batches (the rest on the next run).
    pub max_batches: Option<u64>,
    /// Set to stop after the batch in progress.
    pub stop: Option<Arc<AtomicBool>>,
    /// Told the share of organizations copied after each batch (0 to 1).
    pub on_progress: Option<Arc<dyn Fn(f64) + Send + Sync>>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            batch_orgs: 200,
            max_lag_bytes: 64 << 20,
            max_p99: None,
            p99_probe: None,
            max_pause: Duration::from_secs(10),
            max_batches: None,
            stop: None,
            on_progress: None,
        }
    }
}

/// What one run of the backfill did.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillReport {
    /// The organization this run started at (the checkpoint it resumed from).
    pub resumed_from: i64,
    /// The first organization not copied yet when it stopped.
    pub next_org: i64,
    pub last_org: i64,
    pub complete: bool,
    /// Entries copied by this run (rows the mirror had written are not counted).
    pub rows: u64,
    pub summary_rows: u64,
    pub batches: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
    /// Times it paused for lag or p99, and for how long in all.
    pub throttled: u64,
    pub throttled_for_lag: u64,
    pub throttled_for_p99: u64,
    pub paused_s: f64,
    /// Batches retried after a deadlock or serialization failure.
    pub retried: u64,
    /// The limits it paced itself by.
    pub max_lag_bytes: i64,
    pub max_p99_ms: Option<f64>,
}

fn batch_sql() -> String {
    super::render_sides(BACKFILL)
}

/// The largest replay lag of any streaming replica, in bytes (0 without one).
async fn replica_lag(c: &impl GenericClient) -> i64 {
    c.query_one(
        "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::int8 FROM pg_stat_replication",
        &[],
    )
    .await
    .map(|r| r.get(0))
    .unwrap_or(0)
}

pub async fn backfill(
    client: &mut Client,
    estate: &Estate,
    opts: &StepOptions,
    bopts: &BackfillOptions,
) -> Result<StepReport> {
    let step = Step::Backfill;
    super::preflight(client, estate, opts, step.name()).await?;
    if bopts.batch_orgs < 1 {
        return Err(Error::Usage("--batch-orgs must be at least 1".into()));
    }
    let state = super::read_state(&*client).await?;
    if let Gate::Done(msg) = gate(&state, step)? {
        return Ok(StepReport::skipped(step, state.phase, msg));
    }
    let sql = batch_sql();
    if opts.dry_run {
        print_sql(
            step,
            &format!(
                "-- per batch of {} organizations ($1..$2), one transaction, with the checkpoint:\n\
                 SELECT set_config('rehearse.mirror', 'off', true), set_config('rehearse.summaries', 'set-based', true);\n{};\n\
                 UPDATE rehearse_meta SET value = <state with next_org = $2 + 1> WHERE key = 'cutover';",
                bopts.batch_orgs,
                sql.trim_end()
            ),
        );
        return Ok(StepReport::skipped(step, state.phase, "dry run".into()));
    }
    let (first, last) = super::org_range(&*client).await?;
    let resumed_from = state.backfill.as_ref().map(|b| b.next_org).unwrap_or(first);
    say(
        opts,
        &format!(
            "cutover backfill: copying legacy entries of organizations {resumed_from}..{last} into the partitioned tables, {} organizations per transaction{}; pausing while replica lag > {} MiB{}",
            bopts.batch_orgs,
            if resumed_from > first { format!(" (resuming: {first}..{} done)", resumed_from - 1) } else { String::new() },
            bopts.max_lag_bytes >> 20,
            bopts.max_p99.map(|d| format!(" or workload p99 > {} ms", d.as_millis())).unwrap_or_default()
        ),
    );
    let started = Instant::now();
    let mut report = BackfillReport {
        resumed_from,
        next_org: resumed_from,
        last_org: last,
        max_lag_bytes: bopts.max_lag_bytes,
        max_p99_ms: bopts.max_p99.map(|d| d.as_secs_f64() * 1e3),
        ..Default::default()
    };
    let total = (last - first + 1).max(0) as u64;
    let bar = progress::Task::start("backfill", total, "orgs", opts.verbose);
    bar.inc((resumed_from - first).max(0) as u64);
    let stopped = || {
        bopts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    };
    loop {
        if bopts.max_batches.is_some_and(|m| report.batches >= m) || stopped() {
            break;
        }
        // Throttle: wait while the replicas lag or the workload suffers.
        let mut paused: Option<Instant> = None;
        loop {
            let lag = replica_lag(&*client).await;
            let p99 = bopts.p99_probe.as_ref().and_then(|p| p());
            let over_lag = lag > bopts.max_lag_bytes;
            let over_p99 = matches!((bopts.max_p99, p99), (Some(max), Some(p)) if p > max);
            if !(over_lag || over_p99)
                || stopped()
                || paused.is_some_and(|p| p.elapsed() >= bopts.max_pause)
            {
                break;
            }
            if paused.is_none() {
                paused = Some(Instant::now());
                report.throttled += 1;
                report.throttled_for_lag += over_lag as u64;
                report.throttled_for_p99 += over_p99 as u64;
                bar.set_message(format!(
                    "paused: {}",
                    if over_lag {
                        format!("replica lag {} KiB", lag >> 10)
                    } else {
                        format!("p99 {:.1} ms", p99.unwrap_or_default().as_secs_f64() * 1e3)
                    }
                ));
            }
            tokio::time::sleep(Duration::from_millis(200).min(bopts.max_pause)).await;
        }
        if let Some(p) = paused {
            report.paused_s += p.elapsed().as_secs_f64();
        }
        let batch_started = Instant::now();
        let done = loop {
            match batch(client, &sql, bopts.batch_orgs, first, last, batch_started).await {
                Err(Error::Db { source, .. }) if matches!(source.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE) =>
                {
                    report.retried += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => break other?,
            }
        };
        let Some((lo, hi, rows, summaries, complete)) = done else {
            report.complete = true;
            break;
        };
        report.rows += rows;
        report.summary_rows += summaries;
        report.batches += 1;
        report.next_org = hi + 1;
        bar.inc((hi - lo + 1) as u64);
        if let Some(p) = &bopts.on_progress {
            p(((hi - first + 1) as f64 / total.max(1) as f64).min(1.0));
        }
        bar.set_message(format!(
            "{} rows, {:.0} rows/s",
            progress::thousands(report.rows),
            report.rows as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
        if complete {
            report.complete = true;
            break;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.rows_per_sec = report.rows as f64 / report.seconds.max(1e-9);
    let summary = format!(
        "{}: {} rows in {} batches, {:.0} rows/s; organizations {}..{} of {}..{}; throttled {} times ({:.1} s paused), {} batches retried",
        if report.complete { "complete" } else { "stopped (run it again to resume)" },
        progress::thousands(report.rows),
        report.batches,
        report.rows_per_sec,
        resumed_from,
        report.next_org - 1,
        first,
        last,
        report.throttled,
        report.paused_s,
        report.retried
    );
    bar.finish(&summary);
    super::log_step(client, step, started, &summary).await?;
    let phase = super::read_state(&*client).await?.phase;
    Ok(StepReport {
        backfill: Some(report),
        ..StepReport::ran(step, phase, started, summary)
    })
}

/// Copy the next batch and move the checkpoint, in one transaction: the
/// range copied, rows and summary rows written, and whether it was the last.
/// None when there was nothing left.
async fn batch(
    client: &mut Client,
    sql: &str,
    batch_orgs: i64,
    first: i64,
    last: i64,
    started: Instant,
) -> Result<Option<(i64, i64, u64, u64, bool)>> {
    let tx = client
        .transaction()
        .await
        .db(|| "beginning a backfill batch".into())?;
    let mut state = lock_state(&tx).await?;
    if state.phase != CutoverPhase::DualWrite {
        return Err(Error::Refused(format!(
            "cutover backfill: the estate moved to {} meanwhile; stopping",
            state.phase
        )));
    }
    let progress = state.backfill.get_or_insert(BackfillProgress {
        first_org: first,
        last_org: last,
        next_org: first,
        ..Default::default()
    });
    progress.last_org = progress.last_org.max(last);
    let lo = progress.next_org;
    if lo > progress.last_org {
        state.phase = CutoverPhase::Backfilled;
        write_state(&tx, &state).await?;
        tx.commit().await.db(|| "committing the backfill".into())?;
        return Ok(None);
    }
    let hi = (lo + batch_orgs - 1).min(progress.last_org);
    tx.execute(
        "SELECT set_config('rehearse.mirror', 'off', true), set_config('rehearse.summaries', 'set-based', true)",
        &[],
    )
    .await
    .db(|| "setting the backfill's transaction settings".into())?;
    let r = tx
        .query_one(sql, &[&lo, &hi])
        .await
        .db(|| format!("copying organizations {lo}..{hi}"))?;
    let (rev, exp, sums): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    progress.next_org = hi + 1;
    progress.rows += (rev + exp) as u64;
    progress.batches += 1;
    progress.seconds += started.elapsed().as_secs_f64();
    let complete = hi >= progress.last_org;
    if complete {
        state.phase = CutoverPhase::Backfilled;
    }
    write_state(&tx, &state).await?;
    tx.commit()
        .await
        .db(|| format!("committing organizations {lo}..{hi}"))?;
    Ok(Some((lo, hi, (rev + exp) as u64, sums as u64, complete)))
}
