//! The rollout's commands: the alert drill, the maintenance jobs, the
//! rollout by cohort and the cutover, with the drills' shared arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::*;

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

`job run reconcile --org ID,...` checks only those organizations (a repair, a drill):
job reconcile-scoped. It judges its organizations; the estate's drift it reports (and the
exporter exports) is the last full run's, with theirs replaced, so a clean scoped run
never clears drift elsewhere. Only a full run makes the estate checked.

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
        /// Reconcile only these organizations (repeatable or comma-separated): recorded as job reconcile-scoped, which carries the last full run's state with their rows checked again. It never counts as a full reconcile.
        #[arg(long = "org", value_name = "ID,...", value_delimiter = ',')]
        orgs: Vec<i64>,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
        /// Also keep the run in DIR/job-<JOB>.json (what `rehearse readiness` reads).
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
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
