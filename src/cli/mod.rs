//! The command line, as clap definitions. Parsing only: `main.rs` turns these
//! into the library's option structs and dispatches.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use rehearse::compare::CompareSettings;
use rehearse::day::Day;
use rehearse::exit;
use rehearse::lab::{Component, DEFAULT_PORT_BASE};
use rehearse::repo::{Pooling, Via};
use rehearse::scenario::Dur;
use rehearse::schema::{Mode, Modes, TriggerVariant, DEFAULT_PARTITIONS};
use rehearse::seed::Profile;

mod compare;
mod replay;
mod rollout;
mod run;
mod setup;
#[cfg(test)]
mod tests;

pub use compare::*;
pub use replay::*;
pub use rollout::*;
pub use run::*;
pub use setup::*;

#[derive(Debug, Parser)]
#[command(
    name = "rehearse",
    version,
    about = "Rehearse a PostgreSQL partitioning rollout: start a lab estate, shape and seed it, replay workloads, measure.",
    after_help = exit::HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub estate: EstateArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the estate is. Each setting is read from its flag, else from the
/// environment, else from rehearse.toml, else from the running lab.
#[derive(Debug, Args)]
#[command(next_help_heading = "Estate (every command)")]
pub struct EstateArgs {
    /// PostgreSQL primary URL [env: REHEARSE_PRIMARY_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub primary_url: Option<String>,
    /// Streaming replica URL [env: REHEARSE_REPLICA_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub replica_url: Option<String>,
    /// PgBouncer URL for the primary's pool [env: REHEARSE_PGBOUNCER_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub pgbouncer_url: Option<String>,
    /// PgBouncer URL for the replica's pool [env: REHEARSE_PGBOUNCER_REPLICA_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub pgbouncer_replica_url: Option<String>,
    /// Redis URL for the report cache [env: REHEARSE_REDIS_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Settings file with an [estate] table [env: REHEARSE_CONFIG; default: ./rehearse.toml if present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded lab [env: REHEARSE_LAB_DIR; default: .rehearse/lab].
    #[arg(long, visible_alias = "dir", global = true, value_name = "DIR")]
    pub lab_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, inspect and stop the embedded lab (primary, replica, PgBouncer, Redis on 127.0.0.1).
    #[command(subcommand, after_help = exit::HELP)]
    Lab(LabCommand),
    /// Create or drop the rehearsal schema (legacy and partitioned finance tables).
    #[command(subcommand, after_help = exit::HELP)]
    Schema(SchemaCommand),
    /// Fill the database with a synthetic hospitality estate, reproducibly (same seed, same data).
    #[command(after_help = exit::HELP)]
    Seed(SeedArgs),
    /// Run one repository operation (a report) for an organization, as the services would, and show how it was served.
    #[command(after_help = QUERY_HELP)]
    Query(QueryArgs),
    /// Check scenario and journeys files without running them: every file given, every error of each with file:line:column (exit 2 if any).
    #[command(after_help = exit::HELP)]
    Check(CheckArgs),
    /// Run scenarios against each of their variants and write run.json and latency.hlog.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// The finance and reporting services as an HTTP JSON API over the repository layer (needs the `journeys` feature).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Goose user journeys (weighted personas of HTTP calls) against `rehearse serve`, per mode; Goose's reports plus run.json and latency.hlog.
    #[command(after_help = JOURNEYS_HELP)]
    Journeys(JourneysArgs),
    /// Turn on, for a bounded window, the statement logging a replay needs (csvlog), then put it back; keep the window's log.
    #[command(after_help = CAPTURE_HELP)]
    Capture(CaptureArgs),
    /// Replay captured csvlog files against either mode at N times their speed, open loop, through the repository.
    #[command(after_help = REPLAY_HELP)]
    Replay(ReplayArgs),
    /// Merge the shards of one run (run --shard I/N) exactly into one run directory.
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// For each variant, the highest open-loop rate at which the run is valid and every budget holds.
    #[command(after_help = CAPACITY_HELP)]
    Capacity(CapacityArgs),
    /// Turn a run directory into charts (SVG, PNG), report.html, summary.md and .hgrm files.
    #[command(after_help = exit::HELP)]
    Report(ReportArgs),
    /// Compare runs of two builds: per operation and variant, p50/p95/p99/p99.9 and throughput with a bootstrap confidence interval; or two capacity directories' capacities.
    #[command(after_help = COMPARE_HELP)]
    Compare(CompareArgs),
    /// Interleave two builds (rehearse binaries) or two configurations (settings files) in slices, ABBA, on one estate, and judge the paired ratios.
    #[command(after_help = AB_HELP)]
    Ab(AbArgs),
    /// Gate CI on a run: validity, then budgets, then (with --baseline) regressions against a baseline.
    #[command(after_help = GATE_HELP)]
    Gate(GateArgs),
    /// One verdict for USE_PARTITIONED_TABLES, GO, NO-GO or UNKNOWN, from every result under the directories.
    #[command(after_help = READINESS_HELP)]
    Readiness(ReadinessArgs),
    /// Manage committed baselines (results/baselines/<name>/).
    #[command(subcommand, after_help = exit::HELP)]
    Baseline(BaselineCommand),
    /// Benchmarks that compare rehearse with a reference tool side by side, in one run.
    #[command(subcommand, after_help = exit::HELP)]
    Bench(BenchCommand),
    /// The cutover playbook, one step at a time (prepare, dual-write, backfill, verify, switch, rollback, finalize), or whole under load (drill).
    #[command(subcommand, after_help = CUTOVER_HELP)]
    Cutover(CutoverCommand),
    /// The phased rollout of USE_PARTITIONED_TABLES by tenant cohort: status, pilot, widen, rollback.
    #[command(subcommand, after_help = ROLLOUT_HELP)]
    Rollout(RolloutCommand),
    /// Maintenance jobs of the partitioned estate (reconcile, analyze, partition-report, cache-sweep, portfolio-refresh): run one now, or schedule them in pg_cron.
    #[command(subcommand, after_help = JOB_HELP)]
    Job(JobCommand),
    /// Prove the alert rules: inject each fault under load on the lab and time its alert through the lab's Prometheus.
    #[command(subcommand, after_help = ALERTS_HELP)]
    Alerts(AlertsCommand),
}

/// A value parser that lists `names` in --help and errors, and hands over
/// the value parsed once into its type.
fn choice<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names).try_map(|s| s.parse::<T>().map_err(|e| e.to_string()))
}
