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

pub const ALERTS_HELP: &str = "\
Faults (--faults, comma separated; default all):
  replica-down    stop the replica                         expects ReplicaDown, ReplicaNotStreaming
  replica-lag     pause WAL replay, write ~90 MiB of WAL    expects ReplicaLagHigh
  redis-down      stop Redis                               expects RedisDown
  pgbouncer-down  stop PgBouncer                           expects PgBouncerDown
  summary-drift   add 1 cent to one daily summary row,     expects SummaryDrift,
                  then run the reconcile job                       ReconcileFoundDrift
Deadlines: the rule's `for:` + 2 scrape and 2 evaluation intervals (2 s each) + 5 s,
plus the exporter's cache for summary drift (30 s). HarnessP99OverBudget and
HarnessErrorBudgetBurn may fire during any fault (users would see it); any
other alert firing, or any alert during the steady period, fails the drill.
Writes alerts-drill.json, alerts-drill.md, run.json and latency.hlog to the
run directory; `rehearse report DIR` draws the faults on the timelines.

Exit codes: 0 every expected alert fired and resolved in time and nothing else fired;
1 otherwise; 2 usage; 4 the lab (or its Prometheus) is missing; 5 refused (not the lab).";

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Under load, check no alert fires while healthy, then inject each fault, time fault-to-firing and repair-to-resolved.
    #[command(after_help = ALERTS_HELP)]
    Drill(AlertsDrillArgs),
}

/// What every drill's workload takes besides its scenario: the variant,
/// the rate, and the run directory.
#[derive(Debug, Args)]
pub struct DrillWorkloadArgs {
    /// The scenario's variant to run (reads, cache, pool) [default: its first]; in the cutover and rollout drills its mode follows the flag.
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// Requests per second [default: the scenario's last phase].
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Run directory [default: results/<time>-<drill>-<scenario>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AlertsDrillArgs {
    /// The workload (its last phase, first variant, runs until the drill ends).
    #[arg(
        long,
        value_name = "SCENARIO",
        default_value = "scenarios/cutover_mixed.toml"
    )]
    pub under: PathBuf,
    /// Faults to inject, in order.
    #[arg(long, value_delimiter = ',', value_name = "FAULT,...", value_parser = choice::<rehearse::alerts::Fault>(&rehearse::alerts::Fault::NAMES))]
    pub faults: Vec<rehearse::alerts::Fault>,
    /// The healthy period watched for false positives before the first fault.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub steady: Dur,
    /// Alerts that fire on this estate whatever the faults, for a known reason (e.g. PartitionSkew on a small estate where one chain outweighs a partition): reported, not judged.
    #[arg(long, value_delimiter = ',', value_name = "ALERT,...")]
    pub standing: Vec<String>,
    #[command(flatten)]
    pub workload: DrillWorkloadArgs,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print alerts-drill.json instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub const JOB_HELP: &str = "\
Jobs:
  reconcile         every daily summary row against the aggregate of its entries, per
                    partition and per range of organizations on legacy; names the
                    organizations that disagree
  analyze           ANALYZE of the partitioned parents (autovacuum never does) and of every
                    partition or table past autovacuum's threshold or never analyzed
  partition-report  rows (estimated), size, skew and dead tuples per partition, from the
                    statistics; no table is scanned
  cache-sweep       Redis report keys of generations no longer current (SCAN, never KEYS)
  portfolio-refresh the cross-tenant portfolio's rankings (7, 14 and 30 days, 1000 deep) of
                    each mode, in one transaction; a portfolio read serves the latest one
                    ending on its day or the day before, and refuses when there is none

Every job is safe beside the workload: each chunk is one snapshot, ANALYZE blocks no
write, lock waits give up after --lock-timeout, and no new chunk starts once --budget is
spent (what was left is named). Each run is recorded in rehearse_job_runs, which the
lab's postgres_exporter exports (rehearse_job_*). The database jobs are SQL functions
(rehearse_job_reconcile() ...), so pg_cron runs the same code as `job run`.

Exit codes (job run): 0 done, nothing wrong; 1 reconcile found drift; 3 reconcile could
not check everything within its budget (the rest is unknown, not a pass); 2 usage;
4 the estate (or Redis) is not usable; 5 refused (not a rehearsal target; pg_cron missing).";

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run one job now and print what it did.
    #[command(after_help = JOB_HELP)]
    Run {
        #[arg(value_parser = choice::<rehearse::jobs::Job>(&rehearse::jobs::Job::NAMES))]
        job: rehearse::jobs::Job,
        #[command(flatten)]
        bounds: JobBounds,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        destructive: DestructiveArgs,
    },
    /// Schedule the database jobs in pg_cron on the primary (idempotent: schedules are keyed by name).
    Install {
        /// A schedule, JOB=CRON (e.g. reconcile='*/5 * * * *'); repeatable [default: reconcile every 15 min, analyze hourly, partition-report and portfolio-refresh daily].
        #[arg(long = "schedule", value_name = "JOB=CRON")]
        schedules: Vec<String>,
        #[command(flatten)]
        bounds: JobBounds,
        /// Print what would be scheduled and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        destructive: DestructiveArgs,
    },
    /// The schedules in pg_cron with their last runs (cron.job_run_details), and each job's last recorded run.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove this database's rehearse schedules from pg_cron.
    Uninstall,
}

/// The bounds of a job run.
#[derive(Debug, Args)]
pub struct JobBounds {
    /// Start no new chunk after this long; what is left is reported.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub budget: Dur,
    /// Give up a lock wait after this long.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub lock_timeout: Dur,
}

pub const ROLLOUT_HELP: &str = "\
Cohorts:
  While USE_PARTITIONED_TABLES is false, an organization's calls use the partitioned tables
  when it is on the allow list, or when it is not on the deny list and its bucket is under
  the percentage. Its bucket is a stable hash of (salt, organization id) into 0..9999, so
  widening only adds organizations and a rollback only removes them. Calls that span
  organizations (the portfolio) read the legacy side until `rehearse cutover switch`: under
  dual-write it is complete for every cohort. The services re-read the rollout within 250 ms.

Order:
  cutover prepare -> dual-write -> backfill -> verify, then rollout pilot -> widen ... ->
  (rollout rollback at any point) -> cutover switch. A change needs the mirror and a passing
  verify of the current phase, as the switch does; otherwise it is refused (exit 5) naming the
  step to run first. A change already in force says so and changes nothing (exit 0). Every
  change is recorded in the cutover's step log (`rehearse cutover status`).
  `rehearse cutover rollback` also takes the rollout back to 0.

Exit codes: 0 done, or already done; 2 bad usage; 4 the estate is not usable;
5 refused (out of order, not a rehearsal target, or a change in the wrong direction).";

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The percentage, salt, allow and deny lists, organizations and entry rows per cohort and side, and what may come next.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start or extend the pilot: allow organizations, set the first percentage, deny some, or pick the salt.
    #[command(after_help = ROLLOUT_HELP)]
    Pilot {
        /// Organizations always partitioned (added to the allow list).
        #[arg(long, value_name = "ID,...", value_delimiter = ',', value_parser = clap::value_parser!(i64).range(1..))]
        orgs: Vec<i64>,
        /// Share of the organizations, in percent (two decimals at most: basis points).
        #[arg(long, value_name = "P", value_parser = percent)]
        percent: Option<u16>,
        /// Organizations kept on legacy whatever the percentage (added to the deny list).
        #[arg(long, value_name = "ID,...", value_delimiter = ',', value_parser = clap::value_parser!(i64).range(1..))]
        deny: Vec<i64>,
        /// The salt that draws the cohort [default: "rollout"]; only before anything is rolled out.
        #[arg(long, value_name = "TEXT")]
        salt: Option<String>,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Raise the percentage: only adds organizations.
    #[command(after_help = ROLLOUT_HELP)]
    Widen {
        /// The new share, in percent.
        #[arg(long, value_name = "P", value_parser = percent)]
        percent: u16,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Lower the percentage: only removes organizations. To 0 (the default) it also empties the allow list: everyone on legacy.
    #[command(after_help = ROLLOUT_HELP)]
    Rollback {
        /// The share to go back to, in percent.
        #[arg(long, value_name = "P", value_parser = percent, default_value = "0")]
        to_percent: u16,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Rehearse the rollout under load: widen step by step, hold, check every write on both sides, roll back and widen again; latency per cohort.
    #[command(after_help = ROLLOUT_DRILL_HELP)]
    Drill(RolloutDrillArgs),
}

pub const ROLLOUT_DRILL_HELP: &str = "\
The drill brings a seeded estate to dual-write with a passing verify (the cutover's
prepare, dual-write, backfill and verify; each skipped if done), starts the scenario's last
phase as the workload (one variant following the flag and its rollout, as a service
would), and after a steady baseline at 0% widens to each step. Each step is a transition
(the change, then the flag's TTL and in-flight calls settling; not judged), a hold
(measured), and a check: every acknowledged write present and identical on both sides.
After the --rollback-at step it rolls back to 0% and widens to it again; the sides are
verified after the rollback, after the last step and at the end with the workload stopped.

Every request is tagged with the mode whose tables it used: the table compares the
partitioned cohort with the legacy one in the same step, under the same load. At 0% no
organization's call may use the partitioned tables and at 100% none may use legacy; the
portfolio stays on legacy until the switch. It writes run.json (steps as markers, cohort
percentiles), latency.hlog and rollout.json; `rehearse report DIR` charts them. It leaves
the rollout at the last step.

Exit codes: 0 no acknowledged write missing, differing or resurrected, every verify passed,
no request on the wrong side; 1 otherwise; 2 bad input; 4 estate; 5 refused (not a
rehearsal target, or the cutover is switched); 130 interrupted.";

#[derive(Debug, Args)]
pub struct RolloutDrillArgs {
    /// The scenario whose workload runs during the rollout (its mix must write).
    #[arg(long, value_name = "SCENARIO")]
    pub under: PathBuf,
    /// The percentages to widen to, ascending.
    #[arg(long, value_delimiter = ',', value_name = "P,...", value_parser = percent, default_value = "1,10,50,100")]
    pub steps: Vec<u16>,
    /// After holding this step, roll back to 0% and widen to it again ("none" to skip).
    #[arg(long, value_name = "P", default_value = "50")]
    pub rollback_at: String,
    /// How long each step is held and measured.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub hold: Dur,
    /// The baseline at 0% before the first step.
    #[arg(long, default_value = "15s", value_name = "DURATION")]
    pub steady: Dur,
    #[command(flatten)]
    pub workload: DrillWorkloadArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub backfill: BackfillArgs,
    #[command(flatten)]
    pub step: StepArgs,
}

fn percent(s: &str) -> Result<u16, String> {
    rehearse::rollout::parse_percent(s).map_err(|e| e.to_string())
}

pub const CUTOVER_HELP: &str = "\
Order:
  prepare -> dual-write -> backfill -> verify -> switch -> (soak) -> verify -> finalize
  rollback is allowed after a switch and before finalize; after it, verify, then switch again.
  A step run out of order is refused (exit 5) with the step to run first; a step already
  done says so and changes nothing (exit 0). `rehearse cutover status` shows where the
  estate stands and what comes next. Every step records itself in rehearse_meta.

The mirror:
  dual-write installs mirror triggers in both directions, so switch and rollback are flag
  flips that lock no table, and a process that has not re-read USE_PARTITIONED_TABLES yet
  still writes to a mirrored side.

Exit codes:
  0    done, or already done
  1    verify found differences (or the drill lost or changed an acknowledged write)
  2    bad usage or bad input
  4    the estate is not usable, a statement failed, or locks could not be had in
       --lock-attempts tries
  5    refused: out of order, not a rehearsal target, or unsafe to go on
  130  interrupted (the drill keeps what it measured, marked interrupted)";

/// Options every cutover step takes.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// Print the SQL the step would run and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give up one attempt at a table lock after this long (then retry), instead of queueing behind long transactions.
    #[arg(long, default_value = "200ms", value_name = "DURATION")]
    pub lock_timeout: Dur,
    /// Attempts at the locks before the step fails, changing nothing.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub lock_attempts: u32,
    /// Print the step's report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bars or step lines on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub destructive: DestructiveArgs,
}

/// How the backfill paces itself.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Organizations per batch; each batch is one transaction with its checkpoint.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub batch_orgs: i64,
    /// Pause while a streaming replica lags more than this many MiB.
    #[arg(long, default_value_t = 64, value_name = "MiB")]
    pub max_lag_mib: i64,
    /// The longest pause before one more batch goes anyway (it slows down under pressure, it does not stop).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub max_pause: Dur,
}

/// How finely verify compares.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Organization ranges compared one by one (each in one snapshot).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub buckets: u32,
    /// Differing organizations whose rows are listed, at most.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_orgs: usize,
    /// Buckets compared at once, each on a connection of its own (more is faster, and weighs more on a live workload).
    #[arg(long = "verify-jobs", default_value_t = 1, value_name = "N")]
    pub jobs: usize,
}

#[derive(Debug, Subcommand)]
pub enum CutoverCommand {
    /// Where the estate stands: phase, flag, mirror, backfill checkpoint, last verify, step log, next step.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create the partitioned tables (empty) next to the legacy ones and pin the flag to legacy.
    Prepare {
        /// Hash partitions of each partitioned table [default: rehearse_meta's count, else 64].
        #[arg(long, value_name = "N")]
        partitions: Option<u32>,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Install the mirror: every insert, update and delete of an entry is repeated on the other side in its transaction.
    DualWrite {
        #[command(flatten)]
        step: StepArgs,
    },
    /// Copy the legacy entries to the partitioned side in batches of organizations, resumably, pausing while replicas lag.
    Backfill {
        #[command(flatten)]
        backfill: BackfillArgs,
        /// Stop after this many batches; run the command again to resume from the checkpoint.
        #[arg(long, value_name = "N")]
        max_batches: Option<u64>,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Compare the sides per bucket of organizations (counts, checksums, summary parity); bisect and list differing rows. Exit 1 on a difference.
    Verify {
        #[command(flatten)]
        verify: VerifyArgs,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Flip USE_PARTITIONED_TABLES on: services move to the partitioned tables; legacy stays current through the mirror.
    Switch {
        #[command(flatten)]
        step: StepArgs,
    },
    /// Flip USE_PARTITIONED_TABLES back off, then verify parity again.
    Rollback {
        /// Do not verify after flipping back.
        #[arg(long)]
        no_verify: bool,
        #[command(flatten)]
        verify: VerifyArgs,
        #[command(flatten)]
        step: StepArgs,
    },
    /// After the soak: remove the mirror. Legacy tables are kept until `rehearse schema drop --mode legacy`.
    Finalize {
        #[command(flatten)]
        step: StepArgs,
    },
    /// Undo a cutover rehearsal: drop the mirror and the partitioned tables, flag to legacy, state cleared.
    Reset {
        #[command(flatten)]
        step: StepArgs,
    },
    /// Run the whole playbook under a scenario's workload and prove no acknowledged write was lost.
    #[command(after_help = DRILL_HELP)]
    Drill(CutoverDrillArgs),
}

pub const DRILL_HELP: &str = "\
The drill runs prepare, dual-write, backfill, verify, switch, soak, rollback, verify,
switch again and verify, while the scenario's last phase runs as the workload (one variant;
its mode follows the flag, as a service's would). Every write the workload is told
succeeded goes into a ledger; after the soak (partitioned), after the rollback (legacy)
and at the end (both sides, workload stopped) every acknowledged write must be present and
identical. Then the hardened and the naive summary triggers take the same concurrent
burst on tables of their own. It writes run.json (steps as markers), latency.hlog and
cutover.json to the run directory; `rehearse report DIR` charts it.

It starts from a seeded legacy-only estate (`rehearse seed --mode legacy`) and leaves it
switched to partitioned with the mirror on; `rehearse cutover reset` starts over.

Exit codes: 0 every verify passed and no acknowledged write was lost or changed; 1
otherwise; 2 bad input; 4 estate; 5 refused (not a rehearsal target, or a cutover already
under way); 130 interrupted.";

#[derive(Debug, Args)]
pub struct CutoverDrillArgs {
    /// The scenario whose workload runs during the playbook (its mix must write).
    #[arg(long, value_name = "SCENARIO")]
    pub under: PathBuf,
    #[command(flatten)]
    pub workload: DrillWorkloadArgs,
    /// Steady state measured before the first step.
    #[arg(long, default_value = "15s", value_name = "DURATION")]
    pub steady: Dur,
    /// How long the estate runs switched before the rollback.
    #[arg(long, default_value = "15s", value_name = "DURATION")]
    pub soak: Dur,
    /// Pause the backfill while the workload's p99 (last interval) is above this many milliseconds [default: 4x the steady state's p99, at least 10].
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,
    /// Writers of the trigger race (0 skips it).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub race_writers: u64,
    /// Writes per writer in the trigger race.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub race_writes: u64,
    #[command(flatten)]
    pub backfill: BackfillArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
    #[command(flatten)]
    pub step: StepArgs,
}

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

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline run directories, or baseline directories of runs (results/baselines/NAME).
    #[arg(required = true, value_name = "BASELINE_RUN")]
    pub baseline: Vec<PathBuf>,
    /// Candidate run directories, after `--`.
    #[arg(last = true, required = true, value_name = "CANDIDATE_RUN")]
    pub candidate: Vec<PathBuf>,
    #[command(flatten)]
    pub verdicts: VerdictArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print a Markdown table.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Also draw overlay charts (both builds' spectra and p99 timelines) into this directory.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AbArgs {
    /// The scenario both sides run (the same seed and schedule).
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Side A (the baseline): a rehearse binary, or a settings file (*.toml) with an [estate] table.
    #[arg(long, value_name = "BINARY_OR_SETTINGS")]
    pub a: PathBuf,
    /// Side B (the candidate): a rehearse binary, or a settings file (*.toml).
    #[arg(long, value_name = "BINARY_OR_SETTINGS")]
    pub b: PathBuf,
    /// Rounds of one A and one B slice each (at least 2; the interval narrows with more).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub rounds: u32,
    /// Each slice's length: the scenario's phases scaled to it.
    #[arg(long, default_value = "20s", value_name = "DURATION")]
    pub slice: Dur,
    /// Warm-up left out of each slice [default: the scenario's].
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<Dur>,
    /// Scale the open phases so the highest rate is this.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Only these variants of the scenario.
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Where to write ab.json and the slices [default: results/<UTC time>-ab-<scenario>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print ab.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Accept percentiles the rounds could not decide: still counted and listed, but no longer exit 3.
    #[arg(long)]
    pub allow_inconclusive: bool,
    #[command(flatten)]
    pub verdicts: VerdictArgs,
}

const AB_HELP: &str = "\
Method:
  A and B run alternately in slices, round after round: AB BA BA AB ... (so
  neither always goes first), each slice a `rehearse run` of the scenario
  scaled to --slice, on the same estate. A binary side runs on the estate this
  command is given (flags, environment, settings, lab); a settings side runs
  this binary on the estate its file names, and nothing else. Each round's two
  slices, neighbours in time, are paired: per variant and operation, the log
  of B over A for p50, p95, p99, p99.9 and throughput; the verdict comes from
  their mean over the rounds with a Student-t interval (rounds - 1 degrees of
  freedom), Holm across the percentiles, the floors and labels of `rehearse
  compare`. `rehearse report DIR` draws both sides' spectra and the per-round
  ratios.

Exit codes:
  0    no regression, and every percentile decided (or --allow-inconclusive)
  1    B regressed against A
  2    bad usage or input
  3    invalid (a slice was invalid, or fewer than 2 rounds completed), or
       could not tell: a percentile's interval straddles its floor
  4    a slice could not run (the estate or a binary)
  130  interrupted after the slice in progress; what ran is kept";

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The run directory to gate.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// A baseline to compare against: a run directory, or a baseline directory of runs (results/baselines/main). Repeatable.
    #[arg(long = "baseline", value_name = "RUN_DIR")]
    pub baselines: Vec<PathBuf>,
    /// Budgets to apply instead of the scenario's: a TOML file of [budgets.<operation>] tables.
    #[arg(long, value_name = "FILE")]
    pub budgets: Option<PathBuf>,
    /// Write JUnit XML here, one test case per check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the Markdown summary here (it is printed either way).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Confidence of the interval each budget is judged by: met when its upper bound is within the budget, missed when its lower bound is beyond it, unjudged otherwise [default: the scenario's [validity] confidence, 0.99].
    #[arg(long, value_name = "FRACTION")]
    pub confidence: Option<f64>,
    /// Accept comparisons that could not tell (their interval straddles the floor): they are still counted and listed, but no longer make the gate exit 3.
    #[arg(long)]
    pub allow_inconclusive: bool,
    #[command(flatten)]
    pub verdicts: VerdictArgs,
}

/// How build-to-build verdicts are reached; `compare` and `gate` share them.
#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// Bootstrap resamples (half with blocks of b, half with 2b).
    #[arg(long, default_value_t = CompareSettings::default().resamples as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(100..))]
    pub resamples: u32,
    /// Family-wise false-alarm rate (two-sided) across one operation's percentiles; intervals are shown at 1 - alpha.
    #[arg(long, default_value_t = CompareSettings::default().alpha, value_name = "P")]
    pub alpha: f64,
    /// Changes smaller than this many milliseconds are never a regression ("below min-abs").
    #[arg(long, default_value_t = CompareSettings::default().min_abs_ms, value_name = "MS")]
    pub min_abs_ms: f64,
    /// Between-run spread (sd of the log of a figure) allowed for a side of one run when no side has several runs to measure it.
    #[arg(long, default_value_t = CompareSettings::default().run_spread, value_name = "SD")]
    pub run_spread: f64,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Copy a run (run.json, latency.hlog) into results/baselines/<name>/<run-id>/.
    Save {
        #[arg(value_name = "RUN_DIR")]
        run: PathBuf,
        #[arg(value_name = "NAME")]
        name: String,
        /// Add the run to an existing baseline (several runs let verdicts measure the spread between runs).
        #[arg(long, conflicts_with = "force")]
        add: bool,
        /// Replace an existing baseline of that name with this one run.
        #[arg(long)]
        force: bool,
        /// Where baselines live.
        #[arg(long, default_value = "results/baselines", value_name = "DIR")]
        root: PathBuf,
    },
}

const COMPARE_HELP: &str = "\
Method:
  Each run's measured interval histograms (warm-up and the cut-short last
  interval left out) are the units. A side may hold several runs (a baseline
  directory of runs, or several run directories): a two-level bootstrap draws
  runs, then blocks of consecutive intervals within each drawn run (at least
  ceil(n^(1/3)) long, longer when the intervals are autocorrelated), so the
  spread between runs widens the interval as it should. A side of one run
  cannot show that spread: it is allowed for with the spread learned from the
  other side's runs, else --run-spread, and every verdict says which.
  Intervals and p-values are Student-t ones on the log of the ratio, with the
  bootstrap's standard error (extrapolated from blocks of b and 2b) and the
  drawable blocks as degrees of freedom; Holm's correction across one
  operation's percentiles holds the family-wise false-alarm rate at --alpha.
  The allowance applies to latencies only: an open loop's throughput is set
  by its schedule, and its spread between runs is measured when runs exist.
  regression     significant, beyond the floor (p50 5%, p95 10%, p99 15%,
                 p99.9 20%; throughput 5% lower) and above --min-abs-ms
  improvement    the mirror image
  contradictory  faster here, but another percentile of the same operation is
                 worse beyond its floor: not credited as an improvement
  no change      the whole interval lies within the floor's band
  below min-abs  the change is smaller than --min-abs-ms
  inconclusive   anything else, or fewer than 100/(1-q) samples on a side

Capacity directories (rehearse capacity; one on each side of --):
  per variant, the candidate's capacity over the baseline's. A search brackets
  its capacity between the highest rate whose trials all passed and the lowest
  whose failure was confirmed; the interval is what both brackets allow.
  higher / lower   the whole interval lies above / below 1
  within the searches' resolution   the interval holds 1
  unknown          a side has no capacity (driver-limited, an invalid probe,
                   even --from failing, or the variant not searched)

Exit codes:
  0  compared (whatever the verdicts; `rehearse gate` acts on them)
  2  bad usage or input (not a run directory, unknown schema, missing field)";

const GATE_HELP: &str = "\
Order:
  1. validity: the run completed, each variant reached its target rate without
     the driver being the bottleneck, and every gated percentile has enough
     samples (100/(1-q): p99 10,000, p99.9 100,000)
  2. budgets: the scenario's, or --budgets FILE
  3. with --baseline: the relative check of `rehearse compare`; a regression fails

Exit codes:
  0  pass
  1  fail: a budget missed or a regression
  2  bad usage or input
  3  invalid: the run cannot be judged (never reported as a pass or a fail)";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory, as `rehearse run` writes (results/<run-id>).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files (scenarios/*.toml).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub const CAPACITY_HELP: &str = "\
The search, per variant: start at --from (default: the scenario's peak rate), double until a
rate fails, then bisect (geometric midpoints) until the bracket is within --resolution. Every
probe is a full run of --step after its own warm-up, in a run directory of its own under the
capacity directory; the rate scales the scenario's open phases, as `run --rate` does. A rate
fails when a budget is missed or the estate could not keep up (rate not reached, arrivals
dropped); the failure counts only once a second trial fails too (--trials), and the final
passing rate is run a second time as well. A probe that held every budget passes even if the
driver woke late (its lateness only adds to response times); one that missed a budget while
the driver was the bottleneck is invalid: it bounds the bracket from above (no second trial) and the bisection goes on below it; if the
bracket closes on it, the search ends driver-limited and says so, and that figure is never
reported as the estate's capacity. On a machine shared with the estate, run the search at a
higher priority (`nice -n -10 rehearse capacity ...`) so the estate, not the driver, meets
the contention.

A probe measures --step, or longer where a budget's percentile needs more samples at its
rate (a percentile q needs 100/(1-q) of its operation: p99 10,000); past 30 minutes at --from
the search is refused up front.

Search on a settled estate (after seeding, autovacuum and a warm cache). A scenario that
writes grows the estate probe by probe, so later probes run on a larger one: the table lists
the rates whose trials disagreed (a pass and a failure at one rate).

Writes capacity.json and prints each variant's capacity, the first failing rate and why,
and each variant against the first.

Exit codes: 0 a capacity was found for every variant; 1 even --from fails a budget for some
variant; 2 bad input (no budgets, a closed-loop phase); 3 invalid: the driver was the limit,
or a probe could not be judged; 4 estate.";

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The scenario: its open phases, mix, variants and budgets.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Only this variant (repeat for several) [default: every variant].
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// The first rate tried (requests/s) [default: the scenario's peak rate].
    #[arg(long, value_name = "PER_SECOND")]
    pub from: Option<f64>,
    /// The highest rate tried [default: 64 times --from].
    #[arg(long, value_name = "PER_SECOND")]
    pub max: Option<f64>,
    /// Each probe's measured length, after its warm-up.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub step: Dur,
    /// Each probe's warm-up [default: the scenario's, else a fifth of the step, at most 5s].
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<Dur>,
    /// Stop when the capacity is known to within this share.
    #[arg(long, default_value = "5%", value_name = "PERCENT", value_parser = share)]
    pub resolution: f64,
    /// Trials before a failing rate counts (and of the final passing one).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub trials: u32,
    /// The capacity directory [default: results/<time>-capacity-<scenario>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print capacity.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines.
    #[arg(short, long)]
    pub quiet: bool,
}

fn share(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%');
    match t.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 100.0 => Ok(v / 100.0),
        _ => Err(format!("{s:?}: a percentage between 0 and 100, e.g. 5%")),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files, run one after another.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Run only this variant of each scenario (repeat for several; default: all the scenario names).
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Total duration of each variant; the phases are scaled to it (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Dur>,
    /// Peak arrival rate (requests/s); open phases are scaled so their highest rate is this.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Warm-up left out of the totals (e.g. 5s) [default: the scenario's].
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<Dur>,
    /// Add this delay to every request (e.g. 300us): a known regression, to check that a gate catches one.
    #[arg(long, value_name = "DURATION")]
    pub inject_delay: Option<Dur>,
    /// Confidence of the interval each budget is judged by: met when its upper bound is within the budget, missed when its lower bound is beyond it, unjudged otherwise [default: the scenario's [validity] confidence, 0.99].
    #[arg(long, value_name = "FRACTION")]
    pub confidence: Option<f64>,

    /// Run directory [default: results/<time>-<scenario>; with several scenarios, one directory each under it].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Serve Prometheus metrics here while running, or `off` [default: the lab's port N+9, which the lab's Prometheus scrapes, when the lab has monitoring].
    #[arg(long, value_name = "IP:PORT|off")]
    pub metrics_addr: Option<rehearse::metrics::MetricsAddr>,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print run.json's summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Offer only shard I of N (I from 0) of the schedule; merge the N run directories with `rehearse merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "start_at", env = "REHEARSE_SHARD")]
    pub shard: Option<(u32, u32)>,
    /// The shards' shared start instant (RFC 3339, e.g. 2026-12-01T21:00:00Z): every shard starts its first variant then.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at, requires = "shard", env = "REHEARSE_START_AT")]
    pub start_at: Option<std::time::SystemTime>,
}

fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    rehearse::shard::parse_shard(s)
}

fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    rehearse::shard::parse_rfc3339(s)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    pub addr: std::net::SocketAddr,
    /// How this instance reaches PostgreSQL: its own direct pools, or the estate's PgBouncer.
    #[arg(long, default_value = "direct", value_parser = choice::<Pooling>(&["direct", "pgbouncer"]))]
    pub pool: Pooling,
    /// Connections per target (primary, each replica) of this instance.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub pool_size: usize,
    /// Serve reports without the Redis cache.
    #[arg(long)]
    pub no_cache: bool,
    /// A call taking longer is answered 504 and its statement cancelled.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: Dur,
}

pub const SERVE_HELP: &str = "\
Endpoints (JSON; reads answer what `rehearse query --json` answers, plus `query`):
  GET    /orgs/{id}/dashboard?days=30&end=DATE   GET /orgs/{id}/pnl?month=YYYY-MM
  GET    /orgs/{id}/properties?days=|from=&to=    GET /portfolio?days=&top=
  GET    /orgs/{id}/ledger?days=&limit=&after=CURSOR   (next_after: the next page's cursor)
  POST   /orgs/{id}/entries   {kind, property_id, category, amount_cents, vendor?, business_date?, description?}
  POST   /orgs/{id}/batches   {entries: [...]}
  PATCH  /entries/{kind}/{id}?org=ID   {amount_cents?, category?, business_date?, property_id?}
  DELETE /entries/{kind}/{id}?org=ID
  GET    /healthz (the process runs)  /readyz (503 unless the primary answers)  /metrics  /estate
Reads take min_lsn=LSN (from a write's answer) for read-your-writes. The mode of each call
follows USE_PARTITIONED_TABLES and its rollout, read every 250 ms. Statuses: 400 bad input
(with a message), 404 unknown organization, entry or route, 405 wrong method, 409 a write
that kept conflicting, 503 the estate does not answer, 504 past --timeout.

Exit codes: 0 stopped by SIGINT or SIGTERM; 2 usage (or a build without the journeys
feature); 4 the estate does not answer at start.";

#[derive(Debug, Args)]
pub struct JourneysArgs {
    /// The journeys file (scenarios/journeys_*.toml).
    #[arg(value_name = "JOURNEYS")]
    pub file: PathBuf,
    /// Concurrent users [default: the file's].
    #[arg(long, value_name = "N")]
    pub users: Option<u32>,
    /// Users started per second [default: the file's].
    #[arg(long, value_name = "PER_SECOND")]
    pub hatch_rate: Option<f64>,
    /// How long each variant runs [default: the file's].
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Dur>,
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub target: String,
    /// Run directory [default: results/<time>-<name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not set the flag per variant: one variant, the mode the service routes by now.
    #[arg(long)]
    pub as_is: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print run.json's summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub const JOURNEYS_HELP: &str = "\
Each variant (a mode of the file's `variants`) sets USE_PARTITIONED_TABLES on the estate,
waits until the service routes by it, and runs Goose; the flag is restored at the end.
Refused (exit 5) while a cutover or rollout is under way: use --as-is there. Every step is
one transaction of one HTTP request, named persona.step; budgets apply per transaction.
Goose's users are closed-loop and its coordinated-omission mitigation is off: the figures
are service times as a browser waits for them (run.json says so under `journeys`).
Writes goose-<variant>.html|json|md, run.json and latency.hlog to the run directory;
`rehearse report`, `compare` and `gate` read it like any run.

Exit codes: 0 every budget held; 1 a budget failed; 2 usage (or a build without the journeys
feature); 3 invalid (a budget unjudged: too few samples); 4 the service or estate does not
answer; 5 refused (cutover or rollout under way, or not a rehearsal target); 130 interrupted
(Ctrl-C: Goose stops its users, what was measured is kept and marked interrupted).";

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' run directories (every shard of the run).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged run directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print run.json's summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

const MERGE_HELP: &str = "\
Sharding (rehearse run --shard I/N --start-at T, N processes or pods):
  arrival k of each open phase goes to shard k mod N, with the operation,
  tenant and parameters the unsharded run would give it from the same seed;
  closed-loop user u goes to shard u mod N. Every shard starts variant v at
  T + v x (the variant's length + its timeout + 10 s), so the interval
  histograms line up. A shard not ready by then (1 s late) refuses to run.
  Only shard 0 runs the scenario's [[job]]s.

Merge:
  interval histograms of one tag and interval are added (HdrHistogram adds
  exactly when the settings agree); counts, errors, late, dropped, offered
  and completed requests, driver CPU and estate counters are summed. The
  driver's wake-up lag is the worst shard's; top statements are shard 0's.
  The merged run.json and latency.hlog read like any run's in report,
  compare and gate.

Exit codes (merge merges; `rehearse gate` on the merged run judges budgets):
  0    merged: every shard complete, the merged run valid (whatever its budgets)
  2    not shards of one run: different scenario, seed, shard count,
       histogram settings or start instant; a shard given twice; not a shard
  3    invalid: a shard is missing, failed, or was interrupted (named), or a
       shard's own run was invalid; the merged run is written and marked so
  4    an interval log could not be read or written";

const RUN_HELP: &str = "\
Measurement:
  Open phases send each request at its intended time from the schedule. Response
  time = completion - intended start (what budgets apply to), service time =
  completion - send, lag = send - intended start. Requests that find every worker
  busy wait and are counted late; past a backlog of 65,536 they are dropped and
  counted. Closed phases (users) record service time only, and say so.

Output (results/<run-id>/):
  run.json       scenario, environment, per variant and operation: counts, errors,
                 throughput, percentiles, budgets, validity, database samples
  latency.hlog   interval histograms (HdrHistogram log, V2 + DEFLATE), tags
                 variant/operation/response|service|lag, values in nanoseconds

Exit codes:
  0    every budget met
  1    a budget was missed
  2    bad usage or bad input (flags, scenario file)
  3    the run is not valid: the target rate was not reached or the driver was
       the bottleneck, so its numbers must not be trusted
  4    the estate is not usable (a component is down, a statement failed)
  5    refused: the target is not a rehearsal database
  130  interrupted (Ctrl-C): what was measured is written, marked interrupted
  A shard (--shard I/N) exits 0 when it completed: its budgets are judged on the
  merged run (`rehearse merge --help`), and 2/4/130 as above otherwise.";

const QUERY_HELP: &str = "\
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
    #[arg(long, value_parser = choice::<Mode>(&["legacy", "partitioned"]))]
    pub mode: Option<Mode>,
    /// Where the read goes: primary only, replica only (fails when none is healthy), or auto (replica, else primary).
    #[arg(long, default_value = "auto", value_parser = choice::<Via>(&["primary", "replica", "auto"]))]
    pub via: Via,
    /// Connect directly (prepared statements) or through the estate's PgBouncer (unnamed statements).
    #[arg(long, default_value = "direct", value_parser = choice::<Pooling>(&["direct", "pgbouncer"]))]
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
        #[command(flatten)]
        destructive: DestructiveArgs,
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

/// A value parser that lists `names` in --help and errors, and hands over
/// the value parsed once into its type.
fn choice<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names).try_map(|s| s.parse::<T>().map_err(|e| e.to_string()))
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command's help: its own options first, then the estate flags
    /// under their own heading, never interleaved.
    #[test]
    fn every_help_lists_the_estate_flags_after_the_commands_own() {
        fn walk(cmd: &mut clap::Command, path: &str, seen: &mut usize) {
            let name = format!("{path} {}", cmd.get_name());
            let help = cmd.render_long_help().to_string();
            let estate = help
                .find("Estate (every command):")
                .unwrap_or_else(|| panic!("{name}: no Estate heading:\n{help}"));
            for flag in ["--primary-url", "--replica-url", "--redis-url", "--lab-dir"] {
                let at = help
                    .find(flag)
                    .unwrap_or_else(|| panic!("{name}: {flag} missing:\n{help}"));
                assert!(at > estate, "{name}: {flag} before the heading:\n{help}");
            }
            if let Some(options) = help.find("Options:") {
                assert!(options < estate, "{name}: Estate before Options:\n{help}");
            }
            *seen += 1;
            for sub in cmd.get_subcommands_mut() {
                if sub.get_name() != "help" {
                    walk(sub, &name, seen);
                }
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut seen = 0;
        walk(&mut cmd, "", &mut seen);
        assert!(seen > 30, "{seen} commands");
    }

    /// The command lines the shipped schedules run (deploy/cron/) parse as
    /// rehearse commands: a renamed flag breaks the schedule, and this.
    #[test]
    fn the_shipped_crontab_and_cronjobs_run_commands_that_parse() {
        use clap::Parser;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cron");
        let mut lines: Vec<Vec<String>> = Vec::new();
        let crontab = std::fs::read_to_string(dir.join("crontab")).unwrap();
        for l in crontab
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains("rehearse job"))
        {
            let cmd = &l[l.find("rehearse job").unwrap()..];
            lines.push(cmd.split_whitespace().map(String::from).collect());
        }
        let yaml = std::fs::read_to_string(dir.join("cronjob.yaml")).unwrap();
        for l in yaml.lines().filter(|l| l.trim_start().starts_with("args:")) {
            let list = &l[l.find('[').unwrap() + 1..l.rfind(']').unwrap()];
            let mut argv = vec!["rehearse".to_string()];
            argv.extend(
                list.split(',')
                    .map(|a| a.trim().trim_matches('"').to_string()),
            );
            lines.push(argv);
        }
        assert_eq!(lines.len(), 7, "{lines:?}");
        for argv in &lines {
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{argv:?} does not parse: {e}");
            }
        }
        let mut broken = lines[0].clone();
        broken.push("--bugdet".into());
        assert!(Cli::try_parse_from(&broken).is_err());
    }

    /// The pods of deploy/k8s run command lines that parse as rehearse's, with
    /// the values Kubernetes puts in for $(VAR); the shard count agrees with
    /// the Job's completions; the ConfigMap holds the scenario verbatim.
    #[test]
    fn the_kubernetes_job_runs_commands_that_parse() {
        use clap::Parser;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s");
        let expand = |a: &str| {
            a.replace("$(SHARD_INDEX)", "2")
                .replace("$(START_AT)", "2026-12-01T21:00:00Z")
                .replace("$(RUN_ID)", "r1")
        };
        let argvs = |file: &str| -> Vec<Vec<String>> {
            let yaml = std::fs::read_to_string(dir.join(file)).unwrap();
            yaml.lines()
                .filter(|l| l.trim_start().starts_with("args:"))
                .map(|l| {
                    let list = &l[l.find('[').unwrap() + 1..l.rfind(']').unwrap()];
                    std::iter::once("rehearse".to_string())
                        .chain(list.split(',').map(|a| expand(a.trim().trim_matches('"'))))
                        .collect()
                })
                .collect()
        };
        let shard = argvs("job.yaml");
        let merge = argvs("merge-job.yaml");
        assert_eq!((shard.len(), merge.len()), (1, 2), "{shard:?} {merge:?}");
        for argv in shard.iter().chain(&merge) {
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{argv:?} does not parse: {e}");
            }
        }
        let super::Command::Run(run) = Cli::try_parse_from(&shard[0]).unwrap().command else {
            panic!("the shard's pod runs `rehearse run`")
        };
        let job = std::fs::read_to_string(dir.join("job.yaml")).unwrap();
        let n: u32 = job
            .lines()
            .find_map(|l| l.trim().strip_prefix("completions: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(run.shard, Some((2, n)));
        assert!(job.contains(&format!("parallelism: {n}")));
        assert!(run.start_at.is_some());
        // The merge takes every shard.
        assert_eq!(
            merge[0].iter().filter(|a| a.contains("/shard-")).count() as u32,
            n
        );
        // A misspelt flag in the pod's command line would fail.
        let mut broken = shard[0].clone();
        broken.push("--shrad".into());
        assert!(Cli::try_parse_from(&broken).is_err());
        // The ConfigMap's scenario is scenarios/reporting_day.toml.
        let cm = std::fs::read_to_string(dir.join("scenario-configmap.yaml")).unwrap();
        let body: String = cm
            .split_once("reporting_day.toml: |\n")
            .unwrap()
            .1
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
            .collect();
        let scenario = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reporting_day.toml"),
        )
        .unwrap();
        assert_eq!(body.trim_end(), scenario.trim_end());
    }
}
