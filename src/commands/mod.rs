//! What each command does: the options parsed once by `cli/`, turned into
//! the library's option structs, run, and what `output/` renders printed.
//! One file per group of commands, as `cli/` has: `setup.rs` the lab,
//! schema, seed, query and bench; `run.rs` run, check, capacity, serve,
//! journeys and merge; `compare.rs` compare, ab and gate; `rollout.rs` the
//! cutover, rollout, jobs and alert drill.

mod compare;
mod replay;
mod rollout;
mod run;
mod setup;

use compare::*;
use replay::*;
use rollout::*;
use run::*;
use setup::*;

use anyhow::Context;

use crate::cli::{
    AbArgs, AlertsCommand, AlertsDrillArgs, BackfillArgs, BaselineCommand, BenchCommand,
    CapacityArgs, CheckArgs, Cli, Command, CompareArgs, CutoverCommand, DrillWorkloadArgs,
    GateArgs, JobCommand, JourneysArgs, LabCommand, MergeArgs, QueryArgs, ReadinessArgs,
    RolloutCommand, RunArgs, SchemaCommand, SeedArgs, ServeArgs, StepArgs, VerdictArgs, VerifyArgs,
};
use rehearse::cutover;
use rehearse::estate::{Estate, EstateFlags, DEFAULT_LAB_DIR, ENV_LAB_DIR};
use rehearse::exit;
use rehearse::lab::{self, LabCtx, LabOptions};
use rehearse::query::{self, QueryOptions};
use rehearse::schema::Mode;
use rehearse::schema::{self, CreateOptions, DropOptions};
use rehearse::seed::{self, SeedOptions};
use rehearse::{db, driver, output, pgbench};

pub(crate) fn estate_flags(cli: &Cli) -> EstateFlags {
    let e = &cli.estate;
    EstateFlags {
        primary_url: e.primary_url.clone(),
        replica_url: e.replica_url.clone(),
        pgbouncer_url: e.pgbouncer_url.clone(),
        pgbouncer_replica_url: e.pgbouncer_replica_url.clone(),
        redis_url: e.redis_url.clone(),
        config: e.config.clone(),
        lab_dir: e.lab_dir.clone(),
    }
}

/// The lab directory: flag, then environment, then the default.
pub(crate) fn lab_dir(cli: &Cli) -> std::path::PathBuf {
    cli.estate
        .lab_dir
        .clone()
        .or_else(|| std::env::var_os(ENV_LAB_DIR).map(Into::into))
        .unwrap_or_else(|| DEFAULT_LAB_DIR.into())
}

pub(crate) async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Lab(cmd) => run_lab(&cli, cmd).await,
        Command::Schema(cmd) => run_schema(&cli, cmd).await,
        Command::Seed(args) => run_seed(&cli, args).await,
        Command::Query(args) => run_query(&cli, args).await,
        Command::Check(args) => run_check(args),
        Command::Compare(args) => run_compare(args),
        Command::Merge(args) => run_merge(args),
        Command::Ab(args) => run_ab(&cli, args),
        Command::Gate(args) => run_gate(args),
        Command::Readiness(args) => run_readiness(args),
        Command::Baseline(BaselineCommand::Save {
            run,
            name,
            add,
            force,
            root,
        }) => {
            let dest = rehearse::report::gate::save_baseline(run, root, name, *add, *force)?;
            let runs = rehearse::compare::run_dirs(&root.join(name))?.len();
            print!("{}", output::report::baseline_saved(name, &dest, runs));
            Ok(exit::OK)
        }
        Command::Report(args) => {
            let out = rehearse::report::report(&args.run_dir)?;
            print!("{}", output::report::written(&args.run_dir, &out));
            Ok(exit::OK)
        }
        Command::Run(args) => run_run(&cli, args).await,
        Command::Capture(args) => run_capture(&cli, args).await,
        Command::Replay(args) => run_replay(&cli, args).await,
        Command::Serve(args) => run_serve(&cli, args).await,
        Command::Journeys(args) => run_journeys(&cli, args).await,
        Command::Alerts(AlertsCommand::Drill(a)) => run_alerts_drill(&cli, a).await,
        Command::Bench(cmd) => run_bench(&cli, cmd).await,
        Command::Cutover(cmd) => run_cutover(&cli, cmd).await,
        Command::Rollout(cmd) => run_rollout(&cli, cmd).await,
        Command::Job(cmd) => run_job(&cli, cmd).await,
        Command::Capacity(a) => run_capacity(&cli, a).await,
    }
}

pub(crate) fn verdict_settings(
    v: &VerdictArgs,
) -> anyhow::Result<rehearse::compare::CompareSettings> {
    // Written so that NaN fails every check.
    let ok = (v.alpha > 0.0 && v.alpha < 0.5) && v.run_spread >= 0.0 && v.min_abs_ms >= 0.0;
    if !ok {
        return Err(rehearse::Error::Usage(
            "--alpha must lie in (0, 0.5), --run-spread and --min-abs-ms must not be negative"
                .into(),
        )
        .into());
    }
    Ok(rehearse::compare::CompareSettings {
        resamples: v.resamples as usize,
        alpha: v.alpha,
        min_abs_ms: v.min_abs_ms,
        run_spread: v.run_spread,
        ..Default::default()
    })
}

/// What every drill is asked, from its arguments.
pub(crate) fn drill_options(
    under: &std::path::Path,
    steady: rehearse::scenario::Dur,
    w: &DrillWorkloadArgs,
    verbose: bool,
) -> rehearse::drill::Options {
    rehearse::drill::Options {
        scenario: under.to_path_buf(),
        variant: w.variant.clone(),
        rate: w.rate,
        steady: steady.0,
        out: w.out.clone(),
        verbose,
    }
}
