//! The `rehearse` binary: parse the command line, call the library, map
//! errors to the documented exit codes.

mod cli;
#[cfg(test)]
mod docs_check;

use anyhow::Context;
use clap::Parser;

use cli::{
    AbArgs, AlertsCommand, AlertsDrillArgs, BackfillArgs, BaselineCommand, BenchCommand,
    CapacityArgs, CheckArgs, Cli, Command, CompareArgs, CutoverCommand, DrillWorkloadArgs,
    GateArgs, JobCommand, JourneysArgs, LabCommand, MergeArgs, QueryArgs, RolloutCommand, RunArgs,
    SchemaCommand, SeedArgs, ServeArgs, StepArgs, VerdictArgs, VerifyArgs,
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

fn main() {
    // Output piped into `head` and the like: end quietly when the reader
    // goes, as Unix tools do, instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // REHEARSE_THREADS: the driver's worker threads (default: one per core).
    if let Some(n) = std::env::var("REHEARSE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::ENVIRONMENT);
        }
    };
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            // rehearse's errors already end in their cause: the chain stops
            // at the first, or `{err:#}` would print the cause twice.
            let mut said = Vec::new();
            for e in err.chain() {
                said.push(e.to_string());
                if e.is::<rehearse::Error>() {
                    break;
                }
            }
            eprintln!("error: {}", said.join(": "));
            err.chain()
                .find_map(|e| e.downcast_ref::<rehearse::Error>())
                .map(|e| e.exit_code())
                .unwrap_or(exit::ENVIRONMENT)
        }
    };
    std::process::exit(code);
}

fn estate_flags(cli: &Cli) -> EstateFlags {
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
fn lab_dir(cli: &Cli) -> std::path::PathBuf {
    cli.estate
        .lab_dir
        .clone()
        .or_else(|| std::env::var_os(ENV_LAB_DIR).map(Into::into))
        .unwrap_or_else(|| DEFAULT_LAB_DIR.into())
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
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

fn step_options(a: &StepArgs) -> anyhow::Result<cutover::StepOptions> {
    let lock_timeout = a.lock_timeout.0;
    if a.lock_attempts == 0 {
        return Err(rehearse::Error::Usage("--lock-attempts must be at least 1".into()).into());
    }
    Ok(cutover::StepOptions {
        dry_run: a.dry_run,
        locks: cutover::LockOptions {
            lock_timeout,
            attempts: a.lock_attempts,
        },
        partitions: None,
        allow_destructive: a.destructive.allow_destructive.clone(),
        verbose: !a.quiet,
    })
}

fn verify_options(a: &VerifyArgs) -> anyhow::Result<cutover::verify::VerifyOptions> {
    if a.buckets == 0 {
        return Err(rehearse::Error::Usage("--buckets must be at least 1".into()).into());
    }
    Ok(cutover::verify::VerifyOptions {
        buckets: a.buckets,
        max_orgs: a.max_orgs,
        jobs: a.jobs.clamp(1, 64),
        ..Default::default()
    })
}

fn backfill_options(a: &BackfillArgs) -> anyhow::Result<cutover::backfill::BackfillOptions> {
    if a.batch_orgs < 1 || a.max_lag_mib < 0 {
        return Err(rehearse::Error::Usage(
            "--batch-orgs must be at least 1 and --max-lag-mib not negative".into(),
        )
        .into());
    }
    Ok(cutover::backfill::BackfillOptions {
        batch_orgs: a.batch_orgs,
        max_lag_bytes: a.max_lag_mib << 20,
        max_pause: a.max_pause.0,
        ..Default::default()
    })
}

/// Print a step's report; the exit code says whether a verify passed.
fn print_step(report: &cutover::StepReport, json: bool) -> anyhow::Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", output::cutover::step(report));
    }
    Ok(match &report.verify {
        Some(v) if !v.ok => exit::FAIL,
        _ => exit::OK,
    })
}

async fn run_cutover(cli: &Cli, cmd: &CutoverCommand) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let mut client = db::connect(&estate.primary.url).await?;
    let c = &mut client;
    match cmd {
        CutoverCommand::Status { json } => {
            let st = cutover::status(c).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{st}");
            }
            Ok(exit::OK)
        }
        CutoverCommand::Prepare { partitions, step } => {
            let mut o = step_options(step)?;
            o.partitions = *partitions;
            print_step(&cutover::prepare(c, &estate, &o).await?, step.json)
        }
        CutoverCommand::DualWrite { step } => print_step(
            &cutover::dual_write(c, &estate, &step_options(step)?).await?,
            step.json,
        ),
        CutoverCommand::Backfill {
            backfill,
            max_batches,
            step,
        } => {
            let mut b = backfill_options(backfill)?;
            b.max_batches = *max_batches;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            b.stop = Some(stop.clone());
            let interrupted = stop.clone();
            rehearse::interrupt::on_ctrl_c(
                "stopping after the batch in progress (its checkpoint commits with it)",
                &[&stop],
            );
            let r = cutover::backfill::backfill(c, &estate, &step_options(step)?, &b).await?;
            let code = print_step(&r, step.json)?;
            Ok(if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                exit::INTERRUPTED
            } else {
                code
            })
        }
        CutoverCommand::Verify { verify, step } => print_step(
            &cutover::verify::verify(c, &estate, &step_options(step)?, &verify_options(verify)?)
                .await?,
            step.json,
        ),
        CutoverCommand::Switch { step } => print_step(
            &cutover::flip(c, &estate, Mode::Partitioned, &step_options(step)?).await?,
            step.json,
        ),
        CutoverCommand::Rollback {
            no_verify,
            verify,
            step,
        } => {
            let o = step_options(step)?;
            let r = cutover::flip(c, &estate, Mode::Legacy, &o).await?;
            let code = print_step(&r, step.json)?;
            if *no_verify || o.dry_run || !r.ran {
                return Ok(code);
            }
            print_step(
                &cutover::verify::verify(c, &estate, &o, &verify_options(verify)?).await?,
                step.json,
            )
        }
        CutoverCommand::Finalize { step } => print_step(
            &cutover::finalize(c, &estate, &step_options(step)?).await?,
            step.json,
        ),
        CutoverCommand::Reset { step } => {
            cutover::reset(c, &estate, &step_options(step)?).await?;
            if !step.dry_run {
                eprintln!("cutover reset: done; the estate is legacy only");
            }
            Ok(exit::OK)
        }
        CutoverCommand::Drill(a) => {
            if a.step.dry_run {
                return Err(rehearse::Error::Usage(
                    "the drill runs every step for real; print one step's SQL with `rehearse cutover <step> --dry-run`".into(),
                )
                .into());
            }
            let mut b = backfill_options(&a.backfill)?;
            b.max_p99 = a
                .max_p99_ms
                .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1e3));
            let opts = cutover::drill::DrillOptions {
                common: drill_options(&a.under, a.steady, &a.workload, !a.step.quiet),
                soak: a.soak.0,
                step: step_options(&a.step)?,
                verify: verify_options(&a.verify)?,
                backfill: b,
                race_writers: a.race_writers,
                race_ops: a.race_writes,
            };
            let (dir, report) = cutover::drill::drill(&estate, &opts).await?;
            if a.step.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", output::cutover::drill(&dir, &report));
            }
            Ok(report.exit_code)
        }
    }
}

async fn run_capacity(cli: &Cli, a: &CapacityArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = rehearse::capacity::CapacityOptions {
        scenario: a.scenario.clone(),
        variants: a.variants.clone(),
        from: a.from,
        max: a.max,
        step: a.step.0,
        warmup: a.warmup.map(|w| w.0),
        resolution: a.resolution,
        trials: a.trials,
        out: a.out.clone(),
        verbose: !a.quiet,
    };
    let (dir, report) = rehearse::capacity::capacity(&estate, &opts).await?;
    rehearse::report::capacity::charts(&dir, &report)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
        let drift = report.drift_lines();
        if !drift.is_empty() {
            print!("the estate or the machine changed during the search:\n{drift}");
        }
        println!("capacity directory: {}", dir.display());
    }
    Ok(report.exit_code)
}

async fn run_job(cli: &Cli, cmd: &JobCommand) -> anyhow::Result<i32> {
    use rehearse::jobs::{self, schedule, Job, JobOptions};
    let estate = Estate::resolve(&estate_flags(cli))?;
    match cmd {
        JobCommand::Run {
            job,
            bounds,
            json,
            destructive,
        } => {
            let opts = JobOptions {
                budget: bounds.budget.0,
                lock_timeout: bounds.lock_timeout.0,
                allow_destructive: destructive.allow_destructive.clone(),
            };
            let run = jobs::run(&estate, *job, &opts).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                print!("{run}");
            }
            Ok(run.exit_code())
        }
        JobCommand::Install {
            schedules,
            bounds,
            dry_run,
            destructive,
        } => {
            let mut plan: Vec<(Job, String)> = schedule::DEFAULT_SCHEDULES
                .iter()
                .map(|(j, w)| (*j, w.to_string()))
                .collect();
            for s in schedules {
                let (name, when) = s.split_once('=').ok_or_else(|| {
                    rehearse::Error::Usage(format!(
                        "--schedule {s:?}: expected JOB=CRON, e.g. reconcile='*/5 * * * *'"
                    ))
                })?;
                let job: Job = name.trim().parse()?;
                match plan.iter_mut().find(|(j, _)| *j == job) {
                    Some(p) => p.1 = when.trim().to_string(),
                    None => plan.push((job, when.trim().to_string())),
                }
            }
            let done = schedule::install(
                &estate,
                &plan,
                bounds.budget.0,
                *dry_run,
                destructive.allow_destructive.as_deref(),
            )
            .await?;
            if !*dry_run {
                for (name, when, _, id) in &done.schedules {
                    println!(
                        "scheduled {name} ({when}) as pg_cron job {id} in database {}",
                        done.cron_database
                    );
                }
            }
            Ok(exit::OK)
        }
        JobCommand::List { json } => {
            let l = schedule::list(&estate).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&l)?);
            } else {
                print!("{l}");
            }
            Ok(exit::OK)
        }
        JobCommand::Uninstall => {
            let n = schedule::uninstall(&estate).await?;
            println!("removed {n} schedules");
            Ok(exit::OK)
        }
    }
}

async fn run_rollout(cli: &Cli, cmd: &RolloutCommand) -> anyhow::Result<i32> {
    use rehearse::rollout::{self, Change};
    let estate = Estate::resolve(&estate_flags(cli))?;
    let mut client = db::connect(&estate.primary.url).await?;
    let (change, step) = match cmd {
        RolloutCommand::Status { json } => {
            let st = rollout::status(&client).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{st}");
            }
            return Ok(exit::OK);
        }
        RolloutCommand::Pilot {
            orgs,
            percent,
            deny,
            salt,
            step,
        } => (
            Change::Pilot {
                orgs: orgs.clone(),
                percent: *percent,
                deny: deny.clone(),
                salt: salt.clone(),
            },
            step,
        ),
        RolloutCommand::Widen { percent, step } => (Change::Widen { percent: *percent }, step),
        RolloutCommand::Rollback { to_percent, step } => {
            (Change::Rollback { to: *to_percent }, step)
        }
        RolloutCommand::Drill(a) => {
            if a.step.dry_run {
                return Err(rehearse::Error::Usage(
                    "the drill changes the rollout for real; print one change's SQL with `rehearse rollout widen --percent P --dry-run`".into(),
                )
                .into());
            }
            let rollback_at = match a.rollback_at.as_str() {
                "none" => None,
                p => Some(rollout::parse_percent(p)?),
            };
            let opts = rollout::drill::DrillOptions {
                common: drill_options(&a.under, a.steady, &a.workload, !a.step.quiet),
                steps: a.steps.clone(),
                rollback_at,
                hold: a.hold.0,
                step: step_options(&a.step)?,
                verify: verify_options(&a.verify)?,
                backfill: backfill_options(&a.backfill)?,
            };
            let (dir, report) = rollout::drill::drill(&estate, &opts).await?;
            if a.step.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.describe());
                println!("\nrun directory: {}", dir.display());
            }
            return Ok(report.exit_code);
        }
    };
    let report = rollout::apply(&mut client, &estate, &change, &step_options(step)?).await?;
    if step.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(exit::OK)
}

async fn run_lab(cli: &Cli, cmd: &LabCommand) -> anyhow::Result<i32> {
    let dir = lab_dir(cli);
    match cmd {
        LabCommand::Up {
            port_base,
            user,
            pg_bindir,
            no_monitoring,
            tls,
            auth,
        } => {
            let mut opts = LabOptions::new(dir);
            opts.monitoring = !*no_monitoring;
            opts.tls = *tls;
            opts.scram = auth == "scram";
            opts.port_base = *port_base;
            opts.user = user.clone();
            opts.search.pg_bindir = pg_bindir.clone();
            lab::up(&opts).await.context("lab up")?;
            let ctx = LabCtx::open(&opts.dir)?;
            print_status(&ctx.status().await, false);
        }
        LabCommand::Status { json } => {
            let ctx = LabCtx::open(&dir)?;
            let status = ctx.status().await;
            print_status(&status, *json);
            if status.iter().any(|s| !s.up) {
                return Ok(exit::ENVIRONMENT);
            }
        }
        LabCommand::Down { purge } => {
            let ctx = LabCtx::open(&dir)?;
            let stopped = ctx.down()?;
            if stopped.is_empty() {
                eprintln!(
                    "nothing of the lab in {} was running",
                    ctx.state.dir.display()
                );
            }
            if *purge {
                ctx.purge()?;
            }
        }
        LabCommand::Env => {
            let ctx = LabCtx::open(&dir)?;
            print!("{}", ctx.state.env_lines());
        }
        LabCommand::Start { component } => {
            let ctx = LabCtx::open(&dir)?;
            ctx.start(*component).await?;
        }
        LabCommand::Stop { component } => {
            let ctx = LabCtx::open(&dir)?;
            let c = *component;
            match ctx.pid(c) {
                Some(pid) => {
                    ctx.stop(c)?;
                    eprintln!("{} stopped (pid {pid})", component.name());
                }
                None => eprintln!("{} was not running", component.name()),
            }
        }
        LabCommand::PgbouncerExporter { listen, pgbouncer } => {
            lab::pgbouncer_exporter::serve(*listen, pgbouncer.clone()).await?;
        }
    }
    Ok(exit::OK)
}

fn print_status(status: &[lab::ComponentStatus], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(status).expect("status serializes")
        );
    } else {
        print!("{}", output::lab::status(status));
    }
}

async fn run_schema(cli: &Cli, cmd: &SchemaCommand) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let mut client = db::connect(&estate.primary.url).await?;
    match cmd {
        SchemaCommand::Create {
            mode,
            partitions,
            trigger_variant,
            destructive,
        } => {
            let opts = CreateOptions {
                modes: *mode,
                partitions: *partitions,
                trigger_variant: *trigger_variant,
                allow_destructive: destructive.allow_destructive.clone(),
            };
            eprintln!(
                "creating the schema (modes: {}) on {}",
                mode.name(),
                estate.primary
            );
            let info = schema::create(&mut client, &estate, &opts).await?;
            print_schema(&info, false);
        }
        SchemaCommand::Drop { mode, destructive } => {
            let opts = DropOptions {
                modes: *mode,
                allow_destructive: destructive.allow_destructive.clone(),
            };
            eprintln!(
                "dropping the schema (modes: {}) on {}",
                mode.name(),
                estate.primary
            );
            match schema::drop_schema(&mut client, &estate, &opts).await? {
                Some(info) => print_schema(&info, false),
                None => eprintln!("dropped every table rehearse created"),
            }
        }
        SchemaCommand::Show { json } => {
            let info = schema::meta::require_known(&client).await?;
            print_schema(&info, *json);
        }
    }
    Ok(exit::OK)
}

fn print_schema(info: &schema::SchemaInfo, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(info).expect("schema info serializes")
        );
    } else {
        print!("{}", output::schema::info(info));
    }
}

async fn run_seed(cli: &Cli, args: &SeedArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let mut opts = SeedOptions::from_profile(args.profile);
    if let Some(n) = args.orgs {
        opts.params.orgs = n;
    }
    if let Some(n) = args.days {
        opts.params.days = n;
    }
    opts.params.seed = args.seed;
    opts.params.end_date = args.end_date;
    opts.modes = args.mode;
    opts.partitions = args.partitions;
    if let Some(j) = args.jobs {
        opts.jobs = j;
    }
    opts.allow_destructive = args.destructive.allow_destructive.clone();
    opts.no_space_check = args.no_space_check;
    let record = seed::seed(&estate, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(exit::OK);
    }
    print!("{}", output::seed::record(&record));
    Ok(exit::OK)
}

async fn run_bench(cli: &Cli, cmd: &BenchCommand) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    match cmd {
        BenchCommand::Select {
            scale,
            clients,
            threads,
            duration,
            rounds,
            destructive,
        } => {
            let opts = pgbench::select::BenchSelectOptions {
                scale: *scale,
                clients: *clients,
                threads: *threads,
                duration: duration.0,
                rounds: *rounds,
                allow_destructive: destructive.allow_destructive.clone(),
                verbose: true,
            };
            let r = pgbench::select::run(&estate, &opts).await?;
            print!("{}", output::bench::select(&r));
        }
        BenchCommand::Seed {
            scale,
            rounds,
            jobs,
            destructive,
        } => {
            let opts = pgbench::seed::BenchSeedOptions {
                scale: *scale,
                rounds: *rounds,
                jobs: jobs.unwrap_or_else(lab::machine_cores),
                allow_destructive: destructive.allow_destructive.clone(),
                verbose: true,
            };
            let r = pgbench::seed::run(&estate, &opts).await?;
            print!("{}", output::bench::seed(&r));
        }
    }
    Ok(exit::OK)
}

/// Check every file given, report every error of each, exit 2 if any.
fn run_check(args: &CheckArgs) -> anyhow::Result<i32> {
    let mut bad = Vec::new();
    for f in &args.files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| vec![format!("{}: cannot read it: {e}", f.display())]);
        let checked = match &text {
            Ok(t) if rehearse::journeys::file::is_journeys(t) => {
                rehearse::journeys::file::check(f, t).map(|j| output::check::journeys(f, &j))
            }
            Ok(t) => rehearse::scenario::check(f, t).map(|s| {
                eprint!("{}", output::check::undecidable(f, &s));
                output::check::scenario(f, &s)
            }),
            Err(e) => Err(e.clone()),
        };
        match checked {
            Ok(line) => print!("{line}"),
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                bad.push((f, errors.len()));
            }
        }
    }
    if bad.is_empty() {
        return Ok(exit::OK);
    }
    eprint!("{}", output::check::failed(args.files.len(), &bad));
    Ok(exit::USAGE)
}

fn verdict_settings(v: &VerdictArgs) -> anyhow::Result<rehearse::compare::CompareSettings> {
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

fn run_compare(args: &CompareArgs) -> anyhow::Result<i32> {
    use rehearse::compare;
    let format = if args.json {
        rehearse::output::compare::Format::Json
    } else if args.markdown {
        rehearse::output::compare::Format::Markdown
    } else {
        rehearse::output::compare::Format::Table
    };
    // Capacity directories compare by their capacities.
    let capacities = |side: &[std::path::PathBuf]| -> anyhow::Result<Vec<Option<rehearse::capacity::CapacityReport>>> {
        side.iter()
            .map(|d| Ok(rehearse::capacity::read(d)?))
            .collect()
    };
    let (bc, cc) = (capacities(&args.baseline)?, capacities(&args.candidate)?);
    if bc.iter().chain(&cc).any(Option::is_some) {
        let (b, c) = match (&bc[..], &cc[..]) {
            ([Some(b)], [Some(c)]) => (b, c),
            _ => {
                return Err(rehearse::Error::Usage(
                    "a capacity directory (capacity.json) compares with one other capacity directory: one on each side of --"
                        .into(),
                )
                .into())
            }
        };
        let rows = rehearse::capacity::compare::compare(b, c)?;
        print!(
            "{}",
            rehearse::capacity::compare::render(&rows, b, c, format)
        );
        return Ok(exit::OK);
    }
    let (base, interval) = compare::runs(&args.baseline)?;
    let (cand, cand_interval) = compare::runs(&args.candidate)?;
    if (interval - cand_interval).abs() > 1e-9 {
        return Err(rehearse::Error::Usage(format!(
            "the baseline's intervals are {interval} s, the candidate's {cand_interval} s"
        ))
        .into());
    }
    let settings = verdict_settings(&args.verdicts)?;
    let out = compare::compare_all(&base, &cand, interval, &settings);
    if let Some(dir) = &args.charts {
        let files = rehearse::report::overlay(&base, &cand, interval, dir)?;
        eprintln!(
            "{} overlay charts (SVG and PNG) in {}",
            files.len(),
            dir.display()
        );
    }
    if out.is_empty() {
        return Err(
            rehearse::Error::Usage("the two sides share no variant and operation".into()).into(),
        );
    }
    print!(
        "{}",
        rehearse::output::compare::render(&out, &settings, format)?
    );
    Ok(exit::OK)
}

fn run_ab(cli: &Cli, args: &AbArgs) -> anyhow::Result<i32> {
    use rehearse::ab;
    let out = args.out.clone().unwrap_or_else(|| {
        let name = args
            .scenario
            .file_stem()
            .map_or("ab".into(), |s| s.to_string_lossy().into_owned());
        std::path::PathBuf::from("results").join(rehearse::run::run_id(
            std::time::SystemTime::now(),
            &format!("ab-{name}"),
        ))
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    rehearse::interrupt::on_ctrl_c(
        "stopping after the slice in progress; what ran is kept",
        &[&stop],
    );
    let report = ab::ab(&ab::AbOptions {
        scenario: args.scenario.clone(),
        a: ab::Side::parse("--a", &args.a)?,
        b: ab::Side::parse("--b", &args.b)?,
        rounds: args.rounds,
        slice: args.slice.0,
        warmup: args.warmup.map(|d| d.0),
        rate: args.rate,
        variants: args.variants.clone(),
        estate: estate_flags(cli),
        out: out.clone(),
        settings: verdict_settings(&args.verdicts)?,
        allow_inconclusive: args.allow_inconclusive,
        verbose: !args.quiet,
        stop: Some(stop),
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", output::ab::report(&out, &report)?);
    }
    Ok(report.exit_code)
}

fn run_gate(args: &GateArgs) -> anyhow::Result<i32> {
    use rehearse::report::gate;
    let g = gate::gate(&gate::GateOptions {
        run: args.run.clone(),
        baselines: args.baselines.clone(),
        budgets: args.budgets.clone(),
        settings: verdict_settings(&args.verdicts)?,
        confidence: args
            .confidence
            .map(rehearse::scenario::check_confidence)
            .transpose()?,
        allow_inconclusive: args.allow_inconclusive,
    })?;
    let md = gate::markdown(&g);
    print!("{md}");
    if let Some(p) = &args.summary {
        rehearse::fsutil::write_atomic(p, md.as_bytes())?;
    }
    if let Some(p) = &args.junit {
        rehearse::fsutil::write_atomic(p, gate::junit(&g).as_bytes())?;
    }
    Ok(g.exit_code)
}

/// What every drill is asked, from its arguments.
fn drill_options(
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

async fn run_alerts_drill(cli: &Cli, a: &AlertsDrillArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = rehearse::alerts::DrillOptions {
        common: drill_options(&a.under, a.steady, &a.workload, !a.quiet),
        faults: if a.faults.is_empty() {
            rehearse::alerts::Fault::ALL.to_vec()
        } else {
            a.faults.clone()
        },
        standing: a.standing.clone(),
    };
    let (dir, report) = rehearse::alerts::drill(&estate, &opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", rehearse::alerts::markdown(&report));
        println!("\nwritten to {}", dir.display());
    }
    Ok(rehearse::alerts::exit_code(&report))
}

async fn run_run(cli: &Cli, args: &RunArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = driver::RunOptions {
        scenarios: args.scenarios.clone(),
        variants: args.variants.clone(),
        duration: args.duration.map(|d| d.0),
        rate: args.rate,
        warmup: args.warmup.map(|d| d.0),
        inject_delay: args.inject_delay.map(|d| d.0),
        confidence: args.confidence,
        out: args.out.clone(),
        verbose: !args.quiet,
        stop: None,
        metrics_addr: args.metrics_addr.clone(),
        shard: match (args.shard, args.start_at) {
            (Some((index, count)), Some(start_at)) => Some(rehearse::shard::ShardPlan {
                index,
                count,
                start_at,
            }),
            _ => None,
        },
    };
    let outcomes = driver::run(&estate, &opts).await?;
    let mut code = exit::OK;
    for o in &outcomes {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&output::run::json(&o.result))?
            );
        } else {
            print!("{}", output::run::text(&o.result, &o.dir));
        }
        // A shard holds a share of the samples: its budgets are judged on
        // the merged run (`rehearse merge`, then `gate`). It exits 0 when it
        // completed, so an indexed Job does not fail on a share's percentile.
        let shard_code = match o.result.status {
            rehearse::run::Status::Complete => exit::OK,
            _ => o.exit_code(),
        };
        if let Some(p) = &opts.shard {
            if !args.json {
                println!(
                    "shard {}/{}: {:?}; budgets are judged on the merged run (rehearse merge, then rehearse gate)",
                    p.index, p.count, o.result.status
                );
            }
            code = exit::worst(code, shard_code);
        } else {
            code = exit::worst(code, o.exit_code());
        }
    }
    if outcomes.len() > 1 && !args.json && opts.shard.is_none() {
        let runs: Vec<&rehearse::run::RunResult> = outcomes.iter().map(|o| &o.result).collect();
        print!("{}", output::run::suite(&runs));
    }
    Ok(code)
}

#[cfg(not(feature = "journeys"))]
fn no_journeys_feature(command: &str) -> anyhow::Result<i32> {
    Err(rehearse::Error::Usage(format!(
        "`rehearse {command}` is in builds with the journeys feature: cargo build --features journeys"
    ))
    .into())
}

#[cfg(not(feature = "journeys"))]
async fn run_serve(_: &Cli, _: &ServeArgs) -> anyhow::Result<i32> {
    no_journeys_feature("serve")
}

#[cfg(not(feature = "journeys"))]
async fn run_journeys(_: &Cli, _: &JourneysArgs) -> anyhow::Result<i32> {
    no_journeys_feature("journeys")
}

#[cfg(feature = "journeys")]
async fn run_serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = rehearse::serve::ServeOptions {
        addr: args.addr,
        pool: args.pool,
        pool_size: args.pool_size,
        cache: !args.no_cache,
        timeout: args.timeout.0,
    };
    rehearse::serve::serve(&estate, &opts).await?;
    Ok(exit::OK)
}

#[cfg(feature = "journeys")]
async fn run_journeys(cli: &Cli, args: &JourneysArgs) -> anyhow::Result<i32> {
    let estate = if args.as_is {
        None
    } else {
        Some(Estate::resolve(&estate_flags(cli))?)
    };
    let opts = rehearse::journeys::run::JourneysOptions {
        file: args.file.clone(),
        users: args.users,
        hatch_rate: args.hatch_rate,
        duration: args.duration.map(|d| d.0),
        target: args.target.clone(),
        out: args.out.clone(),
        set_flag: !args.as_is,
        quiet: args.quiet,
    };
    let (r, dir) = rehearse::journeys::run::run(estate.as_ref(), &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output::run::json(&r))?);
    } else {
        print!("{}", output::run::text(&r, &dir));
    }
    Ok(r.exit_code)
}

fn run_merge(args: &MergeArgs) -> anyhow::Result<i32> {
    let r = rehearse::merge::merge(&args.shards, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output::run::json(&r))?);
    } else {
        print!("{}", output::run::text(&r, &args.out));
    }
    // Budgets are the gate's to judge; an incomplete or invalid merge is never a pass.
    Ok(
        if r.exit_code == exit::INVALID || r.status != rehearse::run::Status::Complete {
            exit::INVALID
        } else {
            exit::OK
        },
    )
}

async fn run_query(cli: &Cli, args: &QueryArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = QueryOptions {
        operation: args.operation.clone(),
        org: args.org,
        as_of: None,
        days: args.days,
        month: args.month,
        from: args.from,
        to: args.to,
        limit: args.limit,
        after: args.after.clone(),
        top: args.top,
        mode: args.mode,
        via: args.via,
        pooling: args.pool,
        cache: args.cache,
        explain: args.explain,
    };
    let out = query::query(&estate, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", output::query::result(&out));
        eprintln!("{}", output::query::served(&out));
    }
    Ok(exit::OK)
}
