//! `cutover verify`: per bucket of organizations, row counts and an
//! order-independent checksum of each side's entries and summaries, read in
//! one REPEATABLE READ snapshot per bucket (the mirror writes both sides in
//! one transaction, so a snapshot sees both or neither). A bucket that
//! differs is bisected by organization range down to single organizations,
//! whose differing rows are listed. Summary parity: each side's summaries
//! equal the aggregate of that side's own entries.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio_postgres::{Client, GenericClient, IsolationLevel};

use super::{
    gate, lock_state, print_sql, say, write_state, CutoverPhase, Gate, Step, StepOptions,
    StepReport, Verified,
};
use crate::db;
use crate::error::{DbContext, Result};
use crate::estate::Estate;
use crate::progress;
use crate::schema::{self, Mode};

const CHECKSUM: &str = include_str!("sql/checksum.sql");
const DIFF_ROWS: &str = include_str!("sql/diff_rows.sql");

/// How finely to compare.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Organization ranges compared one by one.
    pub buckets: u32,
    /// Differing organizations whose rows are listed, at most.
    pub max_orgs: usize,
    /// Differing rows listed per organization, at most.
    pub max_rows: usize,
    /// Buckets compared at once, each on a connection of its own.
    pub jobs: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            buckets: 64,
            max_orgs: 20,
            max_rows: 20,
            jobs: 1,
        }
    }
}

/// Rows of one side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideTotals {
    pub revenue: i64,
    pub expense: i64,
    /// Summary rows that hold something (all-zero rows count as absent).
    pub summaries: i64,
}

/// Counts and checksums of one side over one organization range.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sums {
    pub counts: [i64; 3],
    pub checksums: [String; 3],
}

/// One row that differs; a side without it shows None.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowDiff {
    pub table: String,
    pub key: String,
    pub legacy: Option<String>,
    pub partitioned: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgDiff {
    pub organization_id: i64,
    pub rows: Vec<RowDiff>,
    /// Rows that differ, including those not listed.
    pub differing_rows: usize,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketDiff {
    pub bucket: u32,
    pub first_org: i64,
    pub last_org: i64,
    pub legacy: Sums,
    pub partitioned: Sums,
    /// The organizations bisection found, in order (at most `max_orgs`).
    pub orgs: Vec<OrgDiff>,
}

/// Summary rows that differ from the aggregate of their own side's entries.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    pub legacy: i64,
    pub partitioned: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyReport {
    pub ok: bool,
    pub phase: CutoverPhase,
    pub buckets: u32,
    pub first_org: i64,
    pub last_org: i64,
    pub legacy: SideTotals,
    pub partitioned: SideTotals,
    pub mismatching_buckets: Vec<BucketDiff>,
    pub summary_parity: Parity,
    pub seconds: f64,
}

impl VerifyReport {
    /// The lines an operator reads: totals, then every differing row.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "verify {}: {} buckets over organizations {}..{}\n  legacy       revenue {}  expense {}  summaries {}\n  partitioned  revenue {}  expense {}  summaries {}\n  summary parity (rows differing from their own entries): legacy {}, partitioned {}\n  mismatching buckets: {}",
            if self.ok { "PASS" } else { "FAIL" },
            self.buckets,
            self.first_org,
            self.last_org,
            progress::thousands(self.legacy.revenue as u64),
            progress::thousands(self.legacy.expense as u64),
            progress::thousands(self.legacy.summaries as u64),
            progress::thousands(self.partitioned.revenue as u64),
            progress::thousands(self.partitioned.expense as u64),
            progress::thousands(self.partitioned.summaries as u64),
            self.summary_parity.legacy,
            self.summary_parity.partitioned,
            self.mismatching_buckets.len()
        );
        for b in &self.mismatching_buckets {
            s.push_str(&format!(
                "\n  bucket {} (organizations {}..{}): legacy rows {:?}, partitioned rows {:?} (revenue, expense, summaries)",
                b.bucket, b.first_org, b.last_org, b.legacy.counts, b.partitioned.counts
            ));
            for o in &b.orgs {
                s.push_str(&format!(
                    "\n    organization {}: {} differing rows",
                    o.organization_id, o.differing_rows
                ));
                for r in &o.rows {
                    s.push_str(&format!(
                        "\n      {} {}\n        legacy:      {}\n        partitioned: {}",
                        r.table,
                        r.key,
                        r.legacy.as_deref().unwrap_or("(absent)"),
                        r.partitioned.as_deref().unwrap_or("(absent)")
                    ));
                }
            }
        }
        s
    }
}

fn checksum_sql(mode: Mode) -> String {
    mode.tables().render(CHECKSUM)
}

fn diff_sql() -> String {
    super::render_sides(DIFF_ROWS)
}

async fn sums(c: &impl GenericClient, sql: &str, mode: Mode, lo: i64, hi: i64) -> Result<Sums> {
    let r = c
        .query_one(sql, &[&lo, &hi])
        .await
        .db(|| format!("checksumming {mode} organizations {lo}..{hi}"))?;
    Ok(Sums {
        counts: [r.get(0), r.get(2), r.get(4)],
        checksums: [r.get(1), r.get(3), r.get(5)],
    })
}

/// What one bucket held and where it differed.
struct Bucket {
    legacy: Sums,
    partitioned: Sums,
    parity: (i64, i64),
    diff: Option<BucketDiff>,
}

/// Compare one bucket, in one snapshot.
async fn check_bucket(
    client: &mut Client,
    sql: &(String, String, String),
    b: u32,
    (lo, hi): (i64, i64),
    opts: &VerifyOptions,
) -> Result<Bucket> {
    let (lsql, psql, dsql) = sql;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .db(|| "beginning a verify snapshot".into())?;
    let l = sums(&tx, lsql, Mode::Legacy, lo, hi).await?;
    let p = sums(&tx, psql, Mode::Partitioned, lo, hi).await?;
    let parity = (
        schema::summary_mismatches_in(&tx, Mode::Legacy, lo, hi).await?,
        schema::summary_mismatches_in(&tx, Mode::Partitioned, lo, hi).await?,
    );
    let mut diff = None;
    if l != p {
        let mut d = BucketDiff {
            bucket: b,
            first_org: lo,
            last_org: hi,
            legacy: l.clone(),
            partitioned: p.clone(),
            orgs: Vec::new(),
        };
        for org in bisect(&tx, lsql, psql, lo, hi, opts.max_orgs).await? {
            let rows = tx
                .query(dsql, &[&org])
                .await
                .db(|| format!("listing the differing rows of organization {org}"))?;
            d.orgs.push(OrgDiff {
                organization_id: org,
                differing_rows: rows.len(),
                rows: rows
                    .into_iter()
                    .take(opts.max_rows)
                    .map(|r| RowDiff {
                        table: r.get(0),
                        key: r.get(1),
                        legacy: r.get(2),
                        partitioned: r.get(3),
                    })
                    .collect(),
            });
        }
        diff = Some(d);
    }
    tx.commit().await.db(|| "ending a verify snapshot".into())?;
    Ok(Bucket {
        legacy: l,
        partitioned: p,
        parity,
        diff,
    })
}

/// Compare the two sides over every bucket, `opts.jobs` buckets at a time
/// (each on a connection of its own to `url`).
pub async fn compare(
    client: &mut Client,
    url: &str,
    opts: &VerifyOptions,
    phase: CutoverPhase,
    verbose: bool,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let (first, last) = super::org_range(&*client).await?;
    let span = (last - first + 1).max(1);
    let buckets = (opts.buckets.max(1) as i64).min(span) as u32;
    let range = move |b: u32| {
        (
            first + span * b as i64 / buckets as i64,
            first + span * (b as i64 + 1) / buckets as i64 - 1,
        )
    };
    let sql = Arc::new((
        checksum_sql(Mode::Legacy),
        checksum_sql(Mode::Partitioned),
        diff_sql(),
    ));
    let bar = Arc::new(progress::Task::start(
        "verify",
        buckets as u64,
        "buckets",
        verbose,
    ));
    let next = Arc::new(AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.jobs.clamp(1, buckets as usize) {
        let (url, sql, next, bar, opts) = (
            url.to_string(),
            sql.clone(),
            next.clone(),
            bar.clone(),
            opts.clone(),
        );
        workers.spawn(async move {
            let mut c = db::connect(&url).await?;
            let mut done = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= buckets {
                    break;
                }
                done.push((b, check_bucket(&mut c, &sql, b, range(b), &opts).await?));
                bar.inc(1);
            }
            Ok::<_, crate::Error>(done)
        });
    }
    let mut results = Vec::new();
    while let Some(r) = workers.join_next().await {
        results.extend(r.map_err(|e| crate::Error::Lab(format!("a verify worker failed: {e}")))??);
    }
    results.sort_by_key(|(b, _)| *b);
    let mut report = VerifyReport {
        ok: true,
        phase,
        buckets,
        first_org: first,
        last_org: last,
        legacy: SideTotals::default(),
        partitioned: SideTotals::default(),
        mismatching_buckets: Vec::new(),
        summary_parity: Parity::default(),
        seconds: 0.0,
    };
    let mut orgs_listed = 0usize;
    for (_, r) in results {
        for (t, s) in [
            (&mut report.legacy, &r.legacy),
            (&mut report.partitioned, &r.partitioned),
        ] {
            t.revenue += s.counts[0];
            t.expense += s.counts[1];
            t.summaries += s.counts[2];
        }
        report.summary_parity.legacy += r.parity.0;
        report.summary_parity.partitioned += r.parity.1;
        if let Some(mut d) = r.diff {
            // At most max_orgs organizations listed over the whole report.
            d.orgs.truncate(opts.max_orgs.saturating_sub(orgs_listed));
            orgs_listed += d.orgs.len();
            report.mismatching_buckets.push(d);
        }
    }
    report.ok = report.mismatching_buckets.is_empty()
        && report.summary_parity.legacy == 0
        && report.summary_parity.partitioned == 0;
    report.seconds = started.elapsed().as_secs_f64();
    bar.finish(&format!(
        "{} buckets, {} mismatching",
        buckets,
        report.mismatching_buckets.len()
    ));
    Ok(report)
}

/// The organizations of `lo..=hi` whose sides differ, by halving the range
/// and following the halves that differ (at most `limit` of them).
async fn bisect(
    c: &impl GenericClient,
    lsql: &str,
    psql: &str,
    lo: i64,
    hi: i64,
    limit: usize,
) -> Result<Vec<i64>> {
    let mut found = Vec::new();
    let mut stack = vec![(lo, hi)];
    while let Some((a, b)) = stack.pop() {
        if found.len() >= limit {
            break;
        }
        if a == b {
            found.push(a);
            continue;
        }
        let m = a + (b - a) / 2;
        // Right half pushed first, so the left is examined first.
        for (x, y) in [(m + 1, b), (a, m)] {
            if sums(c, lsql, Mode::Legacy, x, y).await?
                != sums(c, psql, Mode::Partitioned, x, y).await?
            {
                stack.push((x, y));
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// `cutover verify`: compare, print, and record the result for the switch.
pub async fn verify(
    client: &mut Client,
    estate: &Estate,
    opts: &StepOptions,
    vopts: &VerifyOptions,
) -> Result<StepReport> {
    let step = Step::Verify;
    super::preflight(client, estate, opts, step.name()).await?;
    let state = super::read_state(&*client).await?;
    if let Gate::Done(msg) = gate(&state, step)? {
        return Ok(StepReport::skipped(step, state.phase, msg));
    }
    if opts.dry_run {
        print_sql(
            step,
            &format!(
                "-- per bucket, in one REPEATABLE READ READ ONLY transaction, $1..$2 the bucket's organizations:\n{};\n{};\n-- then summary parity per side, and for a differing organization:\n{};",
                checksum_sql(Mode::Legacy).trim_end(),
                checksum_sql(Mode::Partitioned).trim_end(),
                diff_sql().trim_end()
            ),
        );
        return Ok(StepReport::skipped(step, state.phase, "dry run".into()));
    }
    say(
        opts,
        &format!(
            "cutover verify: comparing legacy and partitioned in {} buckets of organizations (phase {})",
            vopts.buckets, state.phase
        ),
    );
    let started = Instant::now();
    let report = compare(
        client,
        &estate.primary.url,
        vopts,
        state.phase,
        opts.verbose,
    )
    .await?;
    let tx = client
        .transaction()
        .await
        .db(|| "beginning the verify record".into())?;
    let mut now = lock_state(&tx).await?;
    now.verified = Some(Verified {
        ok: report.ok,
        phase: state.phase,
        at: super::now_utc(),
        mismatching_buckets: report.mismatching_buckets.len(),
    });
    let summary = format!(
        "{}: {} mismatching buckets of {}; parity legacy {}, partitioned {}; entries legacy {} / partitioned {}",
        if report.ok { "PASS" } else { "FAIL" },
        report.mismatching_buckets.len(),
        report.buckets,
        report.summary_parity.legacy,
        report.summary_parity.partitioned,
        report.legacy.revenue + report.legacy.expense,
        report.partitioned.revenue + report.partitioned.expense
    );
    now.logged(step, started, summary.clone());
    write_state(&tx, &now).await?;
    tx.commit()
        .await
        .db(|| "committing the verify record".into())?;
    Ok(StepReport {
        verify: Some(report),
        ..StepReport::ran(step, state.phase, started, summary)
    })
}
