//! `rehearse seed`: fill a rehearsal database with the synthetic estate.
//!
//! Phases: reset (drop and create the tables, without keys or triggers),
//! load (parallel binary COPY, generation overlapped: every mode gets the
//! same entries, and the daily summaries the generator totals as it makes
//! them, so no server-side aggregation or copy is needed), keys, triggers,
//! vacuum (with analyze), rankings, settle (a checkpoint, and the replica
//! replayed up to it). The seed tests prove the summaries equal the set-based aggregate
//! of the entries in every mode. `rehearse_meta` says `in_progress` from the first
//! phase and `complete` only after the last, so an interrupted seed never
//! passes for a seeded database; a rerun starts over from the reset.

mod copy;
pub mod footprint;
pub mod parallel;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::day::Day;
use crate::db;
use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::generate::{Counts, Generator, Params};
use crate::progress::{peak_rss_kib, thousands, Task};
use crate::schema::{self, meta, Mode, Modes, TriggerVariant};

/// The last business day of a dataset unless `--end-date` says otherwise:
/// fixed, so the same parameters give the same data on any day.
pub const DEFAULT_END_DATE: (i32, u32, u32) = (2026, 10, 31);
/// rehearse_meta key of the seed record.
pub const META_KEY: &str = "seed";

/// Named sizes of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A few thousand organizations, for a quick look.
    Smoke,
    /// Small enough for a CI run.
    Ci,
    /// The production-sized estate: a million organizations.
    Full,
}

impl Profile {
    /// (organizations, days)
    pub fn defaults(self) -> (u64, u32) {
        match self {
            Profile::Smoke => (5_000, 14),
            Profile::Ci => (500, 14),
            // Ten days, not fourteen: with both modes on the primary and
            // again on the replica, fourteen did not fit the 80 GB of the
            // reference machine (see docs/src/schema-and-seed.md, "Disk").
            Profile::Full => (1_000_000, 10),
        }
    }
}

crate::named!("profile", Profile { Smoke = "smoke", Ci = "ci", Full = "full" });

/// What `rehearse seed` does.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub params: Params,
    pub modes: Modes,
    /// Partitions of the partitioned tables; None keeps the recorded count (or 64).
    pub partitions: Option<u32>,
    /// Seed without checking the free disk first (a server whose data
    /// directory is not on this machine cannot be checked).
    pub no_space_check: bool,
    pub jobs: usize,
    pub allow_destructive: Option<String>,
    /// Progress bars and phase lines on stderr.
    pub verbose: bool,
}

impl SeedOptions {
    /// Options from a profile, with the default seed, end date and jobs.
    pub fn from_profile(profile: Profile) -> SeedOptions {
        let (orgs, days) = profile.defaults();
        let (y, m, d) = DEFAULT_END_DATE;
        SeedOptions {
            params: Params {
                orgs,
                days,
                seed: 42,
                end_date: Day::from_ymd(y, m, d),
            },
            modes: Modes::Both,
            partitions: None,
            no_space_check: false,
            jobs: crate::lab::machine_cores(),
            allow_destructive: None,
            verbose: true,
        }
    }
}

/// Rows and bytes of one table after the seed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableSize {
    pub table: String,
    pub rows: u64,
    pub bytes: i64,
}

/// What `rehearse_meta` records about the last seed, and what `seed` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeedRecord {
    /// `in_progress` until every phase finished, then `complete`.
    pub status: String,
    pub params: Params,
    pub modes: Vec<Mode>,
    pub partitions: u32,
    pub jobs: usize,
    pub counts: Counts,
    /// Order-independent checksum of every generated field, hex.
    pub checksum: String,
    /// (phase, seconds)
    pub phases: Vec<(String, f64)>,
    pub tables: Vec<TableSize>,
    pub seconds: f64,
    pub peak_rss_kib: Option<u64>,
}

impl SeedRecord {
    pub fn is_complete(&self) -> bool {
        self.status == "complete"
    }

    /// Rows per second of the load phase (generation + COPY).
    pub fn load_rows_per_second(&self) -> f64 {
        let load = self
            .phases
            .iter()
            .find(|(p, _)| p == "load")
            .map(|p| p.1)
            .unwrap_or(0.0);
        if load > 0.0 {
            self.counts.total() as f64 / load
        } else {
            0.0
        }
    }
}

/// The seed record of the connected database, if any.
pub async fn read_record(client: &impl GenericClient) -> Result<Option<SeedRecord>> {
    if !meta::has_meta(client).await? {
        return Ok(None);
    }
    Ok(meta::get(client, META_KEY)
        .await?
        .and_then(|v| serde_json::from_value(v).ok()))
}

/// The seed record, when the database holds a complete seed; otherwise a
/// refusal that says what to run.
pub async fn require_seeded(client: &impl GenericClient) -> Result<SeedRecord> {
    meta::require_known(client).await?;
    match read_record(client).await? {
        Some(r) if r.is_complete() => Ok(r),
        Some(_) => Err(Error::Refused(
            "the last seed of this database did not finish (rehearse_meta says in_progress); \
             run `rehearse seed` again, which starts over cleanly"
                .into(),
        )),
        None => Err(Error::Refused(
            "this database is not seeded; run `rehearse seed` first".into(),
        )),
    }
}

/// Seed the estate's primary. Returns the completed record.
pub async fn seed(estate: &Estate, opts: &SeedOptions) -> Result<SeedRecord> {
    let started = Instant::now();
    let generator = Arc::new(Generator::new(opts.params.clone())?);
    if opts.jobs == 0 || opts.jobs > 64 {
        return Err(Error::Usage(format!(
            "--jobs {} is out of range: 1 to 64",
            opts.jobs
        )));
    }
    let url = estate.primary.url.clone();
    let modes: Vec<Mode> = opts.modes.list().to_vec();
    let mut record = SeedRecord {
        status: "in_progress".into(),
        params: opts.params.clone(),
        modes: modes.clone(),
        partitions: schema::DEFAULT_PARTITIONS,
        jobs: opts.jobs,
        counts: Counts::default(),
        checksum: String::new(),
        phases: Vec::new(),
        tables: Vec::new(),
        seconds: 0.0,
        peak_rss_kib: None,
    };
    if opts.verbose {
        eprintln!(
            "seeding {} organizations x {} days (seed {}, ending {}) into {} ({}), {} jobs",
            thousands(opts.params.orgs),
            opts.params.days,
            opts.params.seed,
            opts.params.end_date,
            modes
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" + "),
            estate.primary.redacted(),
            opts.jobs
        );
    }

    let mut client = db::connect(&url).await?;
    if !opts.no_space_check {
        check_space(&client, estate, opts, &modes).await?;
    }

    // Reset: one transaction, so a failure here leaves the old state.
    let phase = Task::start("reset", 1, "steps", opts.verbose);
    {
        let tx = schema::guarded_transaction(
            &mut client,
            estate,
            opts.allow_destructive.as_deref(),
            "seed",
        )
        .await?;
        let existing = meta::read_checked(&tx).await?;
        record.partitions = opts
            .partitions
            .or(existing.as_ref().and_then(|i| i.partitions))
            .unwrap_or(schema::DEFAULT_PARTITIONS);
        schema::create_meta(&tx).await?;
        meta::set(&tx, "schema_version", &schema::SCHEMA_VERSION.into()).await?;
        meta::set(&tx, META_KEY, &to_json(&record)).await?;
        schema::drop_data_tables(&tx).await?;
        schema::create_shared_tables(&tx).await?;
        for &m in &modes {
            schema::create_mode_tables(&tx, m, record.partitions).await?;
        }
        schema::set_autovacuum(&tx, false).await?;
        meta::set(&tx, "modes", &to_json(&modes)).await?;
        meta::set(&tx, "partitions", &record.partitions.into()).await?;
        tx.commit().await.db(|| "committing the reset".into())?;
    }
    phase.inc(1);
    record.phases.push((
        "reset".into(),
        phase.finish("tables dropped and created without keys"),
    ));

    // Load every mode by COPY: the same rows, entries with their summaries.
    let phase = Arc::new(Task::start("load", opts.params.orgs, "orgs", opts.verbose));
    let next = Arc::new(AtomicU64::new(0));
    // A JoinSet aborts its tasks when dropped: an interrupted seed stops
    // its streams instead of leaving them to copy into tables being reset.
    let mut jobs = tokio::task::JoinSet::new();
    for _ in 0..opts.jobs {
        jobs.spawn(copy::load_job(
            url.clone(),
            modes.iter().map(|m| m.tables()).collect(),
            generator.clone(),
            next.clone(),
            phase.clone(),
        ));
    }
    let mut totals = copy::JobTotals::default();
    while let Some(done) = jobs.join_next().await {
        totals.merge(&done.expect("a load job panicked")?);
    }
    record.counts = totals.counts;
    record.checksum = format!("{:016x}", totals.checksum);
    let secs = phase.finish(&format!(
        "{} rows ({} orgs, {} properties, {} revenue, {} expense entries, {} summaries){}",
        thousands(totals.counts.total()),
        thousands(totals.counts.organizations),
        thousands(totals.counts.properties),
        thousands(totals.counts.revenue_entries),
        thousands(totals.counts.expense_entries),
        thousands(totals.counts.summaries),
        if modes.len() > 1 {
            ", entries and summaries into both modes"
        } else {
            ""
        }
    ));
    record.phases.push(("load".into(), secs));

    // Keys: the partitioned parents' (declared only), then in parallel the
    // shared ones (in order: the foreign key needs the primary key), every
    // legacy table's and every partition's, biggest first; then the
    // partitions' indexes are attached to their parents'.
    let mut first = Vec::new();
    let mut work = vec![schema::shared_key_statements().join(";\n")];
    let mut last = Vec::new();
    for &m in &modes {
        let jobs = schema::mode_key_jobs(m, record.partitions);
        first.extend(jobs.first);
        work.extend(jobs.parallel);
        last.extend(jobs.last);
    }
    // Progress in MiB of the tables the keys are built on: the steps range
    // from a 2 GB legacy table to a 30 MB partition, and counted as equal
    // steps they once gave an ETA of 8,729 s for a phase of 403 s.
    let mut weighted = Vec::with_capacity(work.len());
    for sql in work {
        let mib = key_table_mib(&client, &sql).await?;
        weighted.push((sql, mib));
    }
    let phase = Arc::new(Task::start(
        "keys",
        weighted.iter().map(|w| w.1).sum::<u64>()
            + u64::from(!first.is_empty())
            + u64::from(!last.is_empty()),
        "MiB",
        opts.verbose,
    ));
    if !first.is_empty() {
        parallel::run(&url, vec![first.join(";\n")], 1, phase.clone()).await?;
    }
    let mut setup = match key_memory(&client, opts.jobs).await? {
        Some(mb) => format!("SET maintenance_work_mem = '{mb}MB'"),
        None => String::new(),
    };
    // The lab caps a query's temporary files at 1 GB (temp_file_limit), and
    // a key on a 38M-row legacy table stays under it only while its build
    // gets a parallel worker: built alone, the index of 40M rows of entries
    // spilled past 1 GB and failed (measured 2026-12-06). A superuser lifts
    // the cap for the seed's own sessions; others keep the server's.
    if is_superuser(&client).await? {
        if !setup.is_empty() {
            setup.push_str(";\n");
        }
        setup.push_str("SET temp_file_limit = -1");
    }
    parallel::run_with(&url, weighted, opts.jobs, phase.clone(), &setup).await?;
    if !last.is_empty() {
        parallel::run(&url, vec![last.join(";\n")], 1, phase.clone()).await?;
    }
    let secs = phase.finish("primary keys, foreign key and indexes");
    record.phases.push(("keys".into(), secs));

    // Triggers back on, sequences past the generated ids, statistics.
    let phase = Task::start("triggers", modes.len() as u64, "modes", opts.verbose);
    for &m in &modes {
        schema::create_triggers(&client, m, TriggerVariant::Hardened).await?;
        phase.inc(1);
    }
    client
        .execute(
            "SELECT setval('revenue_entry_id_seq', $1), setval('expense_entry_id_seq', $2)",
            &[&totals.max_revenue_id.max(1), &totals.max_expense_id.max(1)],
        )
        .await
        .db(|| "moving the id sequences past the generated ids".into())?;
    record.phases.push((
        "triggers".into(),
        phase.finish("hardened summary triggers on"),
    ));

    let mut tables: Vec<&str> = vec!["organizations", "properties"];
    for &m in &modes {
        tables.extend(m.tables().all());
    }
    // VACUUM, not only ANALYZE: a freshly loaded table has no visibility
    // map and no hint bits, and autovacuum's insert threshold sends it to
    // set them, in the first minutes of whatever runs next. The 1M main
    // job's first suite ran under that vacuum, its tails 3 to 80 times a
    // later run's. Done here, the seed's time says what it costs, and the
    // estate it hands over is the steady one a rehearsal measures.
    let work = tables
        .iter()
        .map(|t| format!("VACUUM (ANALYZE) {t}"))
        .collect();
    let secs = run_phase(
        &url,
        "vacuum",
        work,
        opts,
        "vacuumed: visibility maps set, statistics gathered",
    )
    .await?;
    record.phases.push(("vacuum".into(), secs));
    schema::set_autovacuum(&client, true).await?;

    // The portfolio's rankings as of the estate's last day: a seeded estate
    // serves every operation (the job keeps them after, on its schedule).
    let phase = Task::start("rankings", 1, "refreshes", opts.verbose);
    crate::jobs::install_functions(&client).await?;
    client
        .query_one(
            "SELECT rehearse_job_portfolio_refresh($1)",
            &[&opts.params.end_date],
        )
        .await
        .db(|| "ranking the portfolio (rehearse_job_portfolio_refresh)".into())?;
    phase.inc(1);
    record
        .phases
        .push(("rankings".into(), phase.finish("portfolio ranked")));

    let secs = settle(&client, estate, opts.verbose).await?;
    record.phases.push(("settle".into(), secs));

    record.tables = table_sizes(&client, &tables, &totals.counts).await?;
    record.seconds = started.elapsed().as_secs_f64();
    record.peak_rss_kib = peak_rss_kib();
    record.status = "complete".into();
    {
        let tx = client
            .transaction()
            .await
            .db(|| "beginning the completion".into())?;
        meta::set(&tx, "trigger_variant", &to_json(&TriggerVariant::Hardened)).await?;
        meta::set(&tx, META_KEY, &to_json(&record)).await?;
        tx.commit()
            .await
            .db(|| "marking the seed complete".into())?;
    }
    Ok(record)
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("seed values serialize")
}

/// How long the settle phase waits for the replica before it hands over
/// anyway, with a warning: the estate is complete, only not yet steady.
const SETTLE_LIMIT: Duration = Duration::from_secs(900);

/// Hand over a steady estate: a checkpoint on the primary, the replica
/// replayed up to it, and a restartpoint on the replica. Without it the
/// first scenario measured the seed's tail: in the 1M main job of
/// 2026-12-05 the replica was still 47 MB behind when finance_day [legacy]
/// started (replaying the vacuum's WAL reads every heap page), so its
/// reads fell back to the primary for 20 s and its p95s were left
/// undecided. A role that may not CHECKPOINT skips that step (the wait
/// still runs); an estate without a replica only checkpoints.
async fn settle(primary: &tokio_postgres::Client, estate: &Estate, verbose: bool) -> Result<f64> {
    // Replay positions are the server's, from any database.
    let replica = match &estate.replica {
        Some(r) => match connect_replica_server(&r.url).await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!(
                    "seed: warning: the replica {} did not answer ({e}); the seed did not wait \
                     for it to replay, and a run started now may measure that replay",
                    r.redacted()
                );
                None
            }
        },
        None => None,
    };
    let phase = Task::start("settle", 100, "%", verbose);
    let checkpointed = checkpoint(primary, "primary").await?;
    let mut summary = if checkpointed {
        "checkpoint".to_string()
    } else {
        "no checkpoint (the role may not CHECKPOINT)".to_string()
    };
    let Some(replica) = replica else {
        if estate.replica.is_some() {
            summary.push_str("; the replica did not answer, so its replay was not waited for");
        }
        phase.inc(100);
        return Ok(phase.finish(&summary));
    };
    let target: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .db(|| "reading the primary's WAL position".into())?
        .get(0);
    let first = replay_behind(&replica, &target).await?.max(1);
    let started = Instant::now();
    let mut done = 0u64;
    loop {
        let left = replay_behind(&replica, &target).await?;
        let pct = (100 - (left.max(0) * 100 / first).min(100)) as u64;
        if pct > done {
            phase.inc(pct - done);
            done = pct;
        }
        phase.set_message(format!("replica {} MiB behind", left.max(0) >> 20));
        if left <= 0 {
            break;
        }
        if started.elapsed() > SETTLE_LIMIT {
            eprintln!(
                "seed: warning: the replica is still {} MiB behind the seed after {} s; \
                 the estate is complete, but a run started now measures its replay",
                left >> 20,
                SETTLE_LIMIT.as_secs()
            );
            summary.push_str("; the replica had not caught up");
            return Ok(phase.finish(&summary));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    summary.push_str(&format!(
        ", replica caught up ({} MiB replayed)",
        first >> 20
    ));
    if checkpoint(&replica, "replica").await? {
        summary.push_str(", restartpoint");
    }
    if done < 100 {
        phase.inc(100 - done);
    }
    Ok(phase.finish(&summary))
}

async fn is_superuser(client: &tokio_postgres::Client) -> Result<bool> {
    let row = client
        .query_one("SELECT current_setting('is_superuser') = 'on'", &[])
        .await
        .db(|| "reading is_superuser".into())?;
    Ok(row.get(0))
}

/// A connection to the replica's server: to `url`'s database, or, when
/// that database was just created on the primary and has not reached the
/// replica yet, to `postgres` there. The first error is the one returned.
async fn connect_replica_server(url: &str) -> Result<tokio_postgres::Client> {
    match db::connect(url).await {
        Ok(c) => Ok(c),
        Err(first) => db::connect(&crate::url::with_database(url, "postgres"))
            .await
            .map_err(|_| first),
    }
}

/// Bytes of WAL the replica has yet to replay up to `target`.
async fn replay_behind(replica: &tokio_postgres::Client, target: &str) -> Result<i64> {
    let row = replica
        .query_one(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn())::int8",
            &[&target],
        )
        .await
        .db(|| "reading the replica's replay position".into())?;
    Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
}

/// CHECKPOINT (on a standby, a restartpoint); false when the role may not.
async fn checkpoint(client: &tokio_postgres::Client, on: &str) -> Result<bool> {
    match client.batch_execute("CHECKPOINT").await {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
            Ok(false)
        }
        Err(e) => Err(e).db(|| format!("CHECKPOINT on the {on}")),
    }
}

/// Sort memory for each session that builds keys, when the server shares
/// this machine: an eighth of its memory over the sessions, at most 2 GB
/// each (the largest sort, the legacy revenue key, is about 1.5 GB at the
/// full estate; the lab's server default is a thirty-second of memory).
/// None for a server elsewhere: its own setting stands.
async fn key_memory(client: &tokio_postgres::Client, jobs: usize) -> Result<Option<u64>> {
    // A role that may not read data_directory leaves the server's setting.
    let Ok(at) = footprint::landing(client, "primary").await else {
        return Ok(None);
    };
    if footprint::free_space(&at.data_directory).is_none() {
        return Ok(None);
    }
    let mb = crate::lab::machine_memory() / (1 << 20);
    Ok(Some((mb / 8 / jobs.max(1) as u64).clamp(64, 2048)))
}

/// Refuse a seed that would not fit on the primary's disk, or on the
/// replica's, which replays all of it (see [`footprint`]).
async fn check_space(
    primary: &tokio_postgres::Client,
    estate: &Estate,
    opts: &SeedOptions,
    modes: &[Mode],
) -> Result<()> {
    let mut landings = vec![footprint::landing(primary, "primary").await?];
    if let Some(r) = &estate.replica {
        // Its server's data directory is the same from any database.
        let replica = connect_replica_server(&r.url).await.map_err(|e| {
            Error::NoSpace(format!(
                "the replica {} did not answer, so its free space is unknown ({e}); start it, \
                 or pass --no-space-check to seed without the check",
                r.redacted()
            ))
        })?;
        landings.push(footprint::landing(&replica, "replica").await?);
    }
    let partitions = opts.partitions.unwrap_or(schema::DEFAULT_PARTITIONS);
    let data = footprint::estimate(&opts.params, modes, partitions);
    let wal = landings.iter().map(|l| l.wal_bytes).max().unwrap_or(0);
    let fits = footprint::judge(&landings, data, footprint::free_space).map_err(|why| {
        Error::NoSpace(format!(
            "{why}; pass --no-space-check to seed without the check"
        ))
    })?;
    footprint::refuse_if_short(&fits, &opts.params, wal, modes, partitions)?;
    if opts.verbose {
        for f in &fits {
            eprintln!(
                "disk: about {} needed on {} ({}), {} free, counting the tables it replaces",
                footprint::gib(f.need),
                f.path.display(),
                f.roles.join(" and "),
                footprint::gib(f.free)
            );
        }
    }
    Ok(())
}

async fn run_phase(
    url: &str,
    name: &str,
    work: Vec<String>,
    opts: &SeedOptions,
    summary: &str,
) -> Result<f64> {
    let phase = Arc::new(Task::start(name, work.len() as u64, "steps", opts.verbose));
    parallel::run(url, work, opts.jobs, phase.clone()).await?;
    Ok(phase.finish(summary))
}

/// The size in MiB (at least 1) of the table a key statement builds on:
/// the word after `TABLE [ONLY]` or `ON [ONLY]` in each of its statements.
async fn key_table_mib(client: &impl GenericClient, sql: &str) -> Result<u64> {
    let mut tables = Vec::new();
    for st in sql.split(';') {
        let words: Vec<&str> = st.split_whitespace().collect();
        let after = words
            .iter()
            .position(|w| *w == "TABLE" || *w == "ON")
            .map(|i| i + 1);
        if let Some(mut i) = after {
            if words.get(i) == Some(&"ONLY") {
                i += 1;
            }
            if let Some(t) = words.get(i) {
                tables.push(t.to_string());
            }
        }
    }
    let bytes: i64 = client
        .query_one(
            "SELECT coalesce(sum(pg_relation_size(to_regclass(t))), 0)::int8 FROM unnest($1::text[]) t",
            &[&tables],
        )
        .await
        .db(|| "measuring the tables keys are built on".into())?
        .get(0);
    Ok((bytes as u64 >> 20).max(1))
}

async fn table_sizes(
    client: &impl GenericClient,
    tables: &[&str],
    counts: &Counts,
) -> Result<Vec<TableSize>> {
    let mut out = Vec::new();
    for t in tables {
        // A partitioned parent is empty itself; its partitions hold the bytes.
        let bytes: i64 = client
            .query_one(
                "SELECT coalesce((SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits \
                 WHERE inhparent = to_regclass($1)), 0) + pg_total_relation_size(to_regclass($1))",
                &[t],
            )
            .await
            .db(|| format!("measuring {t}"))?
            .get(0);
        let rows = if t.starts_with("revenue") {
            counts.revenue_entries
        } else if t.starts_with("expense") {
            counts.expense_entries
        } else if *t == "organizations" {
            counts.organizations
        } else if *t == "properties" {
            counts.properties
        } else {
            client
                .query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .db(|| format!("counting {t}"))?
                .get::<_, i64>(0) as u64
        };
        out.push(TableSize {
            table: t.to_string(),
            rows,
            bytes,
        });
    }
    Ok(out)
}
