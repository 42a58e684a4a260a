//! The commands that make and inspect the estate: the lab, the schema,
//! the seed, one query, and the benchmarks against pgbench.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::*;

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Dataset size: smoke (5,000 orgs), ci (500 orgs) or full (1,000,000 orgs), each 14 days; flags below override it.
    #[arg(long, default_value = "full", value_parser = choice::<Profile>(&Profile::NAMES))]
    pub profile: Profile,
    /// Number of organizations.
    #[arg(long, value_name = "N")]
    pub orgs: Option<u64>,
    /// Business days of history per property, ending at --end-date.
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Random seed: the same seed and sizes give the same data, whatever --jobs is.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Last business day of the history (YYYY-MM-DD); fixed by default so data does not depend on today.
    #[arg(long, default_value = "2026-10-31", value_name = "DATE")]
    pub end_date: Day,
    /// Which finance tables to fill; with both, the partitioned tables get exactly the legacy rows.
    #[arg(long, default_value = "both", value_parser = choice::<Modes>(&Modes::NAMES))]
    pub mode: Modes,
    /// Hash partitions of each partitioned table [default: the count recorded in rehearse_meta, else 64].
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,
    /// Parallel generate-and-COPY streams and server-side workers [default: number of cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Seed without first checking that the estimate (data and WAL) fits the free disk of the primary and the replica. Needed when a server's data directory is not on this machine.
    #[arg(long)]
    pub no_space_check: bool,
    /// Print the seed record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub destructive: DestructiveArgs,
}

pub(crate) const QUERY_HELP: &str = "\
Operations:
  dashboard   revenue, expenses and net per day for the --days days ending --to (from the summaries)
  pnl         revenue and expenses by category for --month (from the entries)
  properties  totals per property over --from..--to
  ledger      entries over --from..--to, --limit per page; pass the printed cursor as --after
  portfolio   the --top organizations by revenue over --from..--to, across all tenants

Dates default to the seeded end date (rehearse_meta), else today: --to is that day,
--from is --days days before it, --month is its month.
The mode follows USE_PARTITIONED_TABLES and the feature_flags row unless --mode is given.

Exit codes:
  0  success
  2  bad usage or bad input (flags, settings file, scenario file)
  4  the estate is not usable: a binary is missing, a port is taken, a
     component is down or unreachable, or a statement failed
  5  refused: the target is not a rehearsal database, or its schema version
     is unknown to this rehearse";

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The operation to run.
    #[arg(value_parser = PossibleValuesParser::new(rehearse::query::OPERATIONS))]
    pub operation: String,
    /// Organization id (all operations but portfolio).
    #[arg(long, value_name = "ID")]
    pub org: Option<i64>,
    /// Days of the dashboard, and of the default --from..--to range.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub days: u32,
    /// Month of the P&L (YYYY-MM).
    #[arg(long, value_name = "YYYY-MM", value_parser = rehearse::query::parse_month)]
    pub month: Option<Day>,
    /// First day of the range (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<Day>,
    /// Last day of the range, and of the dashboard (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<Day>,
    /// Entries per ledger page.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Ledger cursor: start after this entry (DATE.KIND.ID, as printed under a page).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<rehearse::repo::reporting::Cursor>,
    /// Organizations in the portfolio ranking.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: u32,
    /// Read this mode's tables instead of following the flag.
    #[arg(long, value_parser = choice::<Mode>(&Mode::NAMES))]
    pub mode: Option<Mode>,
    /// Where the read goes: primary only, replica only (fails when none is healthy), or auto (replica, else primary).
    #[arg(long, default_value = "auto", value_parser = choice::<Via>(&Via::NAMES))]
    pub via: Via,
    /// Connect directly (prepared statements) or through the estate's PgBouncer (unnamed statements).
    #[arg(long, default_value = "direct", value_parser = choice::<Pooling>(&Pooling::NAMES))]
    pub pool: Pooling,
    /// Ask the Redis cache first (dashboard, pnl, properties).
    #[arg(long, default_value = "on", action = clap::ArgAction::Set, value_parser = PossibleValuesParser::new(["on", "off"]).map(|s| s == "on"))]
    pub cache: bool,
    /// Print JSON (report, how it was served, counters) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also run EXPLAIN ANALYZE and show the plan and the partitions touched.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Calibrate the driver: `pgbench -S -M prepared` and rehearse running scenarios/pgbench_select.toml, same clients and duration, alternating rounds in one scratch database; report tps of both, the ratio, and CPU per operation.
    Select {
        /// pgbench scale factor of the scratch database (100,000 accounts per unit).
        #[arg(long, default_value_t = 10, value_name = "N")]
        scale: u32,
        /// Clients (pgbench -c) and closed-loop users of rehearse.
        #[arg(long, default_value_t = 8, value_name = "N")]
        clients: u32,
        /// pgbench threads (-j).
        #[arg(long, default_value_t = 2, value_name = "N")]
        threads: u32,
        /// Duration of each run (e.g. 15s).
        #[arg(long, default_value = "15s", value_name = "DURATION")]
        duration: Dur,
        /// Rounds, each one pgbench run and one rehearse run; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        rounds: u32,
        /// Exit 1 when rehearse's median throughput is below X times pgbench's, or its median client CPU per request above 1/X times pgbench's (e.g. 0.5).
        #[arg(long, value_name = "X", value_parser = fraction_above_zero)]
        min_ratio: Option<f64>,
        #[command(flatten)]
        destructive: DestructiveArgs,
    },
    /// The driver's cost open loop: at each rate, `pgbench -R RATE -M prepared` and rehearse running scenarios/gate_smoke.toml on the same statement (SELECT $1::int8), alternating; report, per rate, the rate each achieved, client CPU and context switches per request, lag behind the schedule, rehearse's wake-up delay and dropped arrivals, and the highest rate rehearse kept (wake-up p99 under 1 ms, nothing dropped). Runs only a SELECT on the primary; changes nothing.
    #[command(name = "open-loop")]
    OpenLoop {
        /// Arrival rates to measure (requests/s), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,2000,5000,10000,20000",
            value_name = "R,R,..."
        )]
        rates: Vec<f64>,
        /// Requests in flight at most: rehearse's max_in_flight, pgbench's -c.
        #[arg(long, default_value_t = 16, value_name = "N")]
        clients: u32,
        /// pgbench threads (-j).
        #[arg(long, default_value_t = 2, value_name = "N")]
        threads: u32,
        /// Duration of each run (e.g. 10s); rehearse's first fifth, at most 1 s, is its warm-up.
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        duration: Dur,
        /// Rounds, each one pgbench run and one rehearse run per rate; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        rounds: u32,
        /// Exit 1 when rehearse's median client CPU per request at any rate is above this many microseconds.
        #[arg(long, value_name = "US")]
        max_cpu_us: Option<f64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load as many rows as `pgbench -i -s SCALE` does, with pgbench and with rehearse's loader, on the same server; report rows/s of both and the ratio.
    Seed {
        /// pgbench scale factor: 100,000 pgbench_accounts rows per unit.
        #[arg(long, default_value_t = 50, value_name = "N")]
        scale: u32,
        /// Rounds, each one pgbench run and one rehearse run; medians are reported.
        #[arg(long, default_value_t = 3, value_name = "N")]
        rounds: u32,
        /// Parallel streams for rehearse's loader [default: number of cores].
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        #[command(flatten)]
        destructive: DestructiveArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the lab, creating it on first use; a no-op when it already runs.
    Up {
        /// First of ten consecutive ports on 127.0.0.1: primary, replica, PgBouncer, Redis, then Prometheus, the exporters of primary, replica, PgBouncer and Redis, and rehearse's own metrics.
        #[arg(long, default_value_t = DEFAULT_PORT_BASE, value_name = "N")]
        port_base: u16,
        /// Unprivileged account the servers run as when rehearse runs as root (PostgreSQL refuses root).
        #[arg(long, default_value = "postgres", value_name = "NAME")]
        user: String,
        /// Directory of PostgreSQL's server binaries [default: `pg_config --bindir`, else /usr/lib/postgresql/15/bin].
        #[arg(long, env = "REHEARSE_PG_BINDIR", value_name = "DIR")]
        pg_bindir: Option<PathBuf>,
        /// Start only the database servers: no Prometheus, no exporters (on first `lab up` only).
        #[arg(long)]
        no_monitoring: bool,
        /// Start like staging: TLS on PostgreSQL, replica, PgBouncer and Redis with the lab's own CA (plain connections refused); URLs say sslmode=verify-full (on first `lab up` only); the exporters connect the same way.
        #[arg(long)]
        tls: bool,
        /// trust (default), or scram: scram-sha-256 passwords for a generated user `rehearse`, kept in the lab's pgpass file (mode 0600), never in a URL.
        #[arg(long, default_value = "trust", value_parser = PossibleValuesParser::new(["trust", "scram"]))]
        auth: String,
    },
    /// Show each component: up or down, port, pid, version, and the replica's replay lag in bytes.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Stop every component of the lab.
    Down {
        /// Also delete the lab directory and all its data.
        #[arg(long)]
        purge: bool,
    },
    /// Print the lab's connection URLs as shell export lines (eval "$(rehearse lab env)").
    Env,
    /// Start one component that was stopped.
    Start {
        /// The component to start.
        #[arg(value_parser = choice::<Component>(&Component::NAMES))]
        component: Component,
    },
    /// Stop one component, to rehearse its failure.
    Stop {
        /// The component to stop.
        #[arg(value_parser = choice::<Component>(&Component::NAMES))]
        component: Component,
    },
    /// Serve PgBouncer's pool and stats figures for Prometheus (the lab starts it).
    #[command(hide = true)]
    PgbouncerExporter {
        /// Address to serve /metrics on.
        #[arg(long, value_name = "IP:PORT")]
        listen: std::net::SocketAddr,
        /// URL of PgBouncer's admin console (database `pgbouncer`).
        #[arg(long, value_name = "URL")]
        pgbouncer: String,
    },
}

/// The flag that lets a destructive command act on a database that is
/// neither the lab nor already a rehearsal database.
#[derive(Debug, Args)]
pub struct DestructiveArgs {
    /// Allow changing this database (give its name) although it is neither the lab nor carries rehearse_meta.
    #[arg(long, value_name = "DBNAME")]
    pub allow_destructive: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Create the shared tables, the tables of the chosen modes, their triggers and rehearse_meta (idempotent).
    Create {
        /// Which finance tables to create: plain (legacy), hash-partitioned, or both.
        #[arg(long, default_value = "both", value_parser = choice::<Modes>(&Modes::NAMES))]
        mode: Modes,
        /// Number of hash partitions of each partitioned table.
        #[arg(long, default_value_t = DEFAULT_PARTITIONS, value_name = "N")]
        partitions: u32,
        /// How triggers update summaries: hardened (atomic upsert) or naive (read then write; races).
        #[arg(long, default_value = "hardened", value_parser = choice::<TriggerVariant>(&TriggerVariant::NAMES))]
        trigger_variant: TriggerVariant,
        #[command(flatten)]
        destructive: DestructiveArgs,
    },
    /// Drop the tables of the chosen modes; with both, everything rehearse created.
    Drop {
        /// Which finance tables to drop; both also drops the shared tables and rehearse_meta.
        #[arg(long, default_value = "both", value_parser = choice::<Modes>(&Modes::NAMES))]
        mode: Modes,
        #[command(flatten)]
        destructive: DestructiveArgs,
    },
    /// Show what rehearse_meta records: schema version, modes, partitions, trigger variant.
    Show {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A ratio for `bench select --min-ratio`: above 0, at most 1.
fn fraction_above_zero(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!(
            "{s}: not a ratio above 0 and at most 1 (for example 0.5)"
        )),
    }
}
