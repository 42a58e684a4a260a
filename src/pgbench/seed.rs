//! `rehearse bench seed`: the same number of rows loaded by `pgbench -i` and
//! by rehearse's loader, alternately, in scratch databases on one server;
//! and rehearse's load against the physical limit, the server's own
//! `COPY ... FROM 'file'` of the very same rows.
//!
//! The figures compared are pgbench's "client-side generate" phase (generate
//! and COPY, one text stream) and rehearse's "load" phase (generate and
//! binary COPY, --jobs streams, entries and their daily summaries): the same
//! work, rows in a table. pgbench's rows are a different shape (four narrow
//! columns), so that line is for reference. The physical limit is measured
//! on rehearse's own rows: after each round's seed, every table is written
//! to server-side binary files, --jobs files a table (split by
//! organization), and loaded again into empty tables of the same schema
//! (no keys, no triggers, autovacuum off: the state the loader fills) by
//! --jobs sessions of `COPY ... FROM 'file' (FORMAT binary)`. No client
//! generates or sends anything there: the server parses, checks and writes.

use serde::Serialize;

use crate::db;
use crate::error::{DbContext, Error, IoContext, Result};
use crate::estate::{Estate, Source};
use crate::generate::{Generator, OrgRows};
use crate::lab::process::run_checked;
use crate::pgbench::{median, recreate_database, Pgbench};
use crate::schema::{safety, Modes};
use crate::seed::{self, Profile, SeedOptions};

const PGBENCH_DB: &str = "rehearse_bench_pgbench";
const SEED_DB: &str = "rehearse_bench_seed";
const COPY_DB: &str = "rehearse_bench_copy";
const PGBENCH_TABLES: &[&str] = &["pgbench_accounts", "pgbench_branches", "pgbench_tellers"];
const SEED_TABLES: &[&str] = &[
    "organizations",
    "properties",
    "revenue_entries",
    "expense_entries",
    "daily_financial_summaries",
];

/// Heap bytes (main fork, no indexes) of `tables` in the database at `url`.
async fn heap_bytes(url: &str, tables: &[&str]) -> Result<i64> {
    let client = db::connect(url).await?;
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let row = client
        .query_one(
            "SELECT coalesce(sum(pg_relation_size(to_regclass(t))), 0)::bigint FROM unnest($1::text[]) t",
            &[&names],
        )
        .await
        .db(|| "measuring heap sizes".into())?;
    Ok(row.get(0))
}

#[derive(Debug, Clone)]
pub struct BenchSeedOptions {
    pub scale: u32,
    pub rounds: u32,
    pub jobs: usize,
    pub allow_destructive: Option<String>,
    pub verbose: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub pgbench_rows: u64,
    pub pgbench_generate_s: f64,
    pub pgbench_keys_s: f64,
    pub rehearse_rows: u64,
    pub rehearse_load_s: f64,
    pub rehearse_keys_s: f64,
    /// The server's own COPY of the same rows from binary files, wall time.
    pub server_copy_s: f64,
    /// Heap bytes of the loaded tables (indexes excluded), each side.
    pub pgbench_heap_bytes: i64,
    pub rehearse_heap_bytes: i64,
}

impl Round {
    pub fn pgbench_rows_per_s(&self) -> f64 {
        self.pgbench_rows as f64 / self.pgbench_generate_s
    }
    pub fn rehearse_rows_per_s(&self) -> f64 {
        self.rehearse_rows as f64 / self.rehearse_load_s
    }
    pub fn ratio(&self) -> f64 {
        self.rehearse_rows_per_s() / self.pgbench_rows_per_s()
    }
    pub fn server_copy_rows_per_s(&self) -> f64 {
        self.rehearse_rows as f64 / self.server_copy_s
    }
    /// rehearse's load over the server's own COPY of the same rows (1.0 =
    /// the loader costs the server nothing beyond the rows themselves).
    pub fn copy_ratio(&self) -> f64 {
        self.rehearse_rows_per_s() / self.server_copy_rows_per_s()
    }
    /// rehearse's heap MB/s over pgbench's: the same comparison by volume,
    /// since a rehearse row is wider than a pgbench_accounts row.
    pub fn bytes_ratio(&self) -> f64 {
        (self.rehearse_heap_bytes as f64 / self.rehearse_load_s)
            / (self.pgbench_heap_bytes as f64 / self.pgbench_generate_s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchSeedReport {
    pub scale: u32,
    pub jobs: usize,
    pub rounds: Vec<Round>,
    pub median_pgbench_rows_per_s: f64,
    pub median_rehearse_rows_per_s: f64,
    pub median_ratio: f64,
    pub median_bytes_ratio: f64,
    pub median_server_copy_rows_per_s: f64,
    pub median_copy_ratio: f64,
}

/// Parse the seconds of one phase from pgbench -i's closing line:
/// `done in 10.25 s (drop tables 0.00 s, create tables 0.01 s, client-side
/// generate 7.80 s, vacuum 0.52 s, primary keys 1.93 s).`
pub fn pgbench_phase(output: &str, phase: &str) -> Option<f64> {
    let line = output.lines().find(|l| l.contains("done in"))?;
    let at = line.find(phase)? + phase.len();
    line[at..].split_whitespace().next()?.parse().ok()
}

/// Rows per organization for the full profile's shape, from a sample.
fn rows_per_org(seed: u64) -> Result<f64> {
    let mut opts = SeedOptions::from_profile(Profile::Full);
    opts.params.seed = seed;
    let generator = Generator::new(opts.params)?;
    let mut rows = OrgRows::default();
    let sample = 20_000i64;
    let mut total = 0u64;
    for id in 1..=sample {
        generator.fill(id, &mut rows);
        total += rows.counts().total();
    }
    Ok(total as f64 / sample as f64)
}

pub async fn run(estate: &Estate, opts: &BenchSeedOptions) -> Result<BenchSeedReport> {
    let admin = db::connect(&estate.primary.url).await?;
    safety::ensure_rehearsal_target(
        &admin,
        estate,
        opts.allow_destructive.as_deref(),
        "bench seed",
    )
    .await?;
    let pgbench = Pgbench::for_primary(&estate.primary.url)?;

    let target_rows = 100_000u64 * opts.scale as u64 + 11 * opts.scale as u64;
    let orgs = ((target_rows as f64 / rows_per_org(42)?).round() as u64).max(1);
    let mut rounds = Vec::new();
    for round in 1..=opts.rounds {
        for dbname in [PGBENCH_DB, SEED_DB] {
            recreate_database(&admin, dbname).await?;
        }
        let mut cmd = pgbench.command(&["-i", "-q", "-s", &opts.scale.to_string()], PGBENCH_DB);
        let out = run_checked(&mut cmd, "pgbench -i", None)?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        let generate = pgbench_phase(&text, "client-side generate")
            .ok_or_else(|| Error::Lab(format!("cannot read pgbench -i's timing from: {text}")))?;
        let keys = pgbench_phase(&text, "primary keys").unwrap_or(0.0);

        let scratch = Estate::primary_only(
            &crate::url::with_database(&estate.primary.url, SEED_DB),
            Source::Flag,
        );
        let mut sopts = SeedOptions::from_profile(Profile::Full);
        sopts.params.orgs = orgs;
        sopts.modes = Modes::Legacy;
        sopts.jobs = opts.jobs;
        sopts.allow_destructive = Some(SEED_DB.into());
        sopts.verbose = false;
        let record = seed::seed(&scratch, &sopts).await?;
        let phase = |name: &str| {
            record
                .phases
                .iter()
                .find(|p| p.0 == name)
                .map(|p| p.1)
                .unwrap_or(0.0)
        };
        let pgbench_heap_bytes = heap_bytes(
            &crate::url::with_database(&estate.primary.url, PGBENCH_DB),
            PGBENCH_TABLES,
        )
        .await?;
        let rehearse_heap_bytes = heap_bytes(&scratch.primary.url, SEED_TABLES).await?;
        let server_copy_s = server_copy(
            &admin,
            &estate.primary.url,
            &scratch.primary.url,
            opts.jobs,
            record.partitions,
        )
        .await?;
        let r = Round {
            pgbench_rows: target_rows,
            pgbench_generate_s: generate,
            pgbench_keys_s: keys,
            rehearse_rows: record.counts.total(),
            rehearse_load_s: phase("load"),
            rehearse_keys_s: phase("keys"),
            server_copy_s,
            pgbench_heap_bytes,
            rehearse_heap_bytes,
        };
        if opts.verbose {
            eprintln!(
                "round {round}: pgbench -i {:>9.0} rows/s ({} rows in {:.2} s) | rehearse {:>9.0} rows/s ({} rows in {:.2} s) | ratio {:.2} by rows, {:.2} by heap bytes | server COPY of the same rows {:>9.0} rows/s ({:.2} s), rehearse {:.2}x of it",
                r.pgbench_rows_per_s(),
                r.pgbench_rows,
                r.pgbench_generate_s,
                r.rehearse_rows_per_s(),
                r.rehearse_rows,
                r.rehearse_load_s,
                r.ratio(),
                r.bytes_ratio(),
                r.server_copy_rows_per_s(),
                r.server_copy_s,
                r.copy_ratio()
            );
        }
        rounds.push(r);
    }
    for dbname in [PGBENCH_DB, SEED_DB, COPY_DB] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
            .await
            .db(|| format!("dropping {dbname}"))?;
    }
    let p: Vec<f64> = rounds.iter().map(|r| r.pgbench_rows_per_s()).collect();
    let s: Vec<f64> = rounds.iter().map(|r| r.rehearse_rows_per_s()).collect();
    let ratios: Vec<f64> = rounds.iter().map(|r| r.ratio()).collect();
    let bytes_ratios: Vec<f64> = rounds.iter().map(|r| r.bytes_ratio()).collect();
    let copy: Vec<f64> = rounds.iter().map(|r| r.server_copy_rows_per_s()).collect();
    let copy_ratios: Vec<f64> = rounds.iter().map(|r| r.copy_ratio()).collect();
    Ok(BenchSeedReport {
        scale: opts.scale,
        jobs: opts.jobs,
        median_pgbench_rows_per_s: median(&p),
        median_rehearse_rows_per_s: median(&s),
        median_ratio: median(&ratios),
        median_bytes_ratio: median(&bytes_ratios),
        median_server_copy_rows_per_s: median(&copy),
        median_copy_ratio: median(&copy_ratios),
        rounds,
    })
}

/// The seeded tables' rows, written by the server to binary files (one per
/// job and table, split by organization), loaded again by `jobs` sessions
/// into an empty copy of the schema. Returns the load's wall seconds.
async fn server_copy(
    admin: &tokio_postgres::Client,
    primary_url: &str,
    seeded_url: &str,
    jobs: usize,
    partitions: u32,
) -> Result<f64> {
    let at = crate::seed::footprint::landing(admin, "primary").await?;
    if !at.data_directory.exists() {
        return Err(Error::Lab(format!(
            "bench seed compares with the server's COPY from files it writes, which needs the server on this machine; its data directory {} is not here",
            at.data_directory.display()
        )));
    }
    let dir = std::env::temp_dir().join(format!("rehearse-bench-copy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).io("creating", &dir)?;
    // The server writes the files as its own user.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .io("opening to the server", &dir)?;
    let result = async {
        let seeded = db::connect(seeded_url).await?;
        let jobs = jobs.max(1);
        let mut files = Vec::new();
        for (table, key) in [
            ("organizations", "id"),
            ("properties", "organization_id"),
            ("revenue_entries", "organization_id"),
            ("expense_entries", "organization_id"),
            ("daily_financial_summaries", "organization_id"),
        ] {
            for k in 0..jobs {
                let f = dir.join(format!("{table}.{k}.bin"));
                seeded
                    .batch_execute(&format!(
                        "COPY (SELECT * FROM {table} WHERE {key} % {jobs} = {k}) TO '{}' (FORMAT binary)",
                        f.display()
                    ))
                    .await
                    .db(|| format!("writing {table} to a server-side file"))?;
                files.push((table, f));
            }
        }
        recreate_database(admin, COPY_DB).await?;
        let copy_url = crate::url::with_database(primary_url, COPY_DB);
        {
            let c = db::connect(&copy_url).await?;
            crate::schema::create_shared_tables(&c).await?;
            crate::schema::create_mode_tables(&c, crate::schema::Mode::Legacy, partitions).await?;
            crate::schema::set_autovacuum(&c, false).await?;
        }
        // --jobs sessions over one queue of files, as the loader has --jobs
        // streams: the seeder's own runner of server-side statements.
        let loads = files
            .iter()
            .map(|(table, f)| format!("COPY {table} FROM '{}' (FORMAT binary)", f.display()))
            .collect();
        let quiet = std::sync::Arc::new(crate::progress::Task::start("copy", 0, "files", false));
        let started = std::time::Instant::now();
        crate::seed::parallel::run(&copy_url, loads, jobs, quiet).await?;
        Ok::<f64, Error>(started.elapsed().as_secs_f64())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_phases() {
        let out = "creating tables...\ndone in 10.25 s (drop tables 0.00 s, create tables 0.01 s, client-side generate 7.80 s, vacuum 0.52 s, primary keys 1.93 s).\n";
        assert_eq!(pgbench_phase(out, "client-side generate"), Some(7.80));
        assert_eq!(pgbench_phase(out, "primary keys"), Some(1.93));
        assert_eq!(pgbench_phase("nothing", "primary keys"), None);
    }

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            crate::url::with_database("postgresql://u@h:5/a", "b"),
            "postgresql://u@h:5/b"
        );
        assert_eq!(
            crate::url::with_database("postgresql://u@h:5/a?sslmode=disable", "b"),
            "postgresql://u@h:5/b?sslmode=disable"
        );
        assert_eq!(
            crate::url::with_database("postgresql://u@h:5", "b"),
            "postgresql://u@h:5/b"
        );
        assert_eq!(
            crate::url::with_database("host=h user=u", "b"),
            "host=h user=u dbname=b"
        );
    }
}
