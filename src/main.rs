//! The `rehearse` binary: parse the command line, call the library, map
//! errors to the documented exit codes.

mod cli;

use anyhow::Context;
use clap::Parser;

use cli::{
    BackfillArgs, BaselineCommand, BenchCommand, CheckArgs, Cli, Command, CompareArgs,
    CutoverCommand, GateArgs, LabCommand, QueryArgs, RunArgs, SchemaCommand, SeedArgs, StepArgs,
    VerdictArgs, VerifyArgs,
};
use rehearse::cutover;
use rehearse::estate::{Estate, EstateFlags, DEFAULT_LAB_DIR, ENV_LAB_DIR};
use rehearse::exit;
use rehearse::lab::{self, LabCtx, LabOptions};
use rehearse::progress::thousands;
use rehearse::query::{self, QueryOptions, QueryOutcome};
use rehearse::repo::reporting::ReportData;
use rehearse::schema::Mode;
use rehearse::schema::{self, CreateOptions, DropOptions};
use rehearse::seed::{self, SeedOptions};
use rehearse::{bench, db, driver, text};

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
            eprintln!("error: {err:#}");
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
        Command::Gate(args) => run_gate(args),
        Command::Baseline(BaselineCommand::Save {
            run,
            name,
            add,
            force,
            root,
        }) => {
            let dest = rehearse::report::gate::save_baseline(run, root, name, *add, *force)?;
            let runs = rehearse::report::compare::run_dirs(&root.join(name))?.len();
            println!(
                "baseline {name}: run saved to {} ({runs} run{} in the baseline)",
                dest.display(),
                if runs == 1 { "" } else { "s" }
            );
            Ok(exit::OK)
        }
        Command::Report(args) => {
            let out = rehearse::report::report(&args.run_dir)?;
            println!(
                "{}: verdict {}\n  {}\n  {}\n  {} charts (SVG and PNG) in {}\n  {} .hgrm files in {}",
                args.run_dir.display(),
                out.verdict,
                out.html.display(),
                out.summary.display(),
                out.charts.len() / 2,
                args.run_dir.join("charts").display(),
                out.hgrm.len(),
                args.run_dir.join("hgrm").display()
            );
            Ok(exit::OK)
        }
        Command::Run(args) => run_run(&cli, args).await,
        Command::Bench(cmd) => run_bench(&cli, cmd).await,
        Command::Cutover(cmd) => run_cutover(&cli, cmd).await,
    }
}

fn step_options(a: &StepArgs) -> anyhow::Result<cutover::StepOptions> {
    let lock_timeout =
        duration_flag("--lock-timeout", &Some(a.lock_timeout.clone()))?.expect("given");
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
        max_pause: duration_flag("--max-pause", &Some(a.max_pause.clone()))?.expect("given"),
        ..Default::default()
    })
}

/// Print a step's report; the exit code says whether a verify passed.
fn print_step(report: &cutover::StepReport, json: bool) -> anyhow::Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if let Some(v) = &report.verify {
        println!("{}", v.describe());
    } else {
        println!(
            "cutover {}: {} (phase: {})",
            report.step, report.summary, report.phase
        );
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
                scenario: a.under.clone(),
                variant: a.variant.clone(),
                rate: a.rate,
                steady: duration_flag("--steady", &Some(a.steady.clone()))?.expect("given"),
                soak: duration_flag("--soak", &Some(a.soak.clone()))?.expect("given"),
                out: a.out.clone(),
                verbose: !a.step.quiet,
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
                println!("{}\n\nrun directory: {} (cutover.json, run.json, latency.hlog; `rehearse report {}` draws it)", report.describe(), dir.display(), dir.display());
            }
            Ok(report.exit_code)
        }
    }
}

async fn run_lab(cli: &Cli, cmd: &LabCommand) -> anyhow::Result<i32> {
    let dir = lab_dir(cli);
    match cmd {
        LabCommand::Up {
            port_base,
            user,
            pg_bindir,
        } => {
            let mut opts = LabOptions::new(dir);
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
            ctx.start(component.parse()?).await?;
        }
        LabCommand::Stop { component } => {
            let ctx = LabCtx::open(&dir)?;
            let c = component.parse()?;
            match ctx.pid(c) {
                Some(pid) => {
                    ctx.stop(c)?;
                    eprintln!("{component} stopped (pid {pid})");
                }
                None => eprintln!("{component} was not running"),
            }
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
        return;
    }
    let rows: Vec<Vec<String>> = status
        .iter()
        .map(|s| {
            let state = match (s.up, s.pid, &s.problem) {
                (true, _, _) => "up".to_string(),
                (false, Some(_), Some(p)) => format!("not answering: {p}"),
                _ => "down".to_string(),
            };
            vec![
                s.component.to_string(),
                state,
                s.port.to_string(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                s.version.clone().unwrap_or_else(|| "-".into()),
                s.replay_lag_bytes
                    .map(|b| format!("{b} bytes"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print!(
        "{}",
        text::table(
            &["component", "state", "port", "pid", "version", "replay lag"],
            &rows
        )
    );
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
                modes: mode.parse()?,
                partitions: *partitions,
                trigger_variant: trigger_variant.parse()?,
                allow_destructive: destructive.allow_destructive.clone(),
            };
            eprintln!("creating the schema (modes: {mode}) on {}", estate.primary);
            let info = schema::create(&mut client, &estate, &opts).await?;
            print_schema(&info, false);
        }
        SchemaCommand::Drop { mode, destructive } => {
            let opts = DropOptions {
                modes: mode.parse()?,
                allow_destructive: destructive.allow_destructive.clone(),
            };
            eprintln!("dropping the schema (modes: {mode}) on {}", estate.primary);
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
        return;
    }
    let modes: Vec<String> = info.modes.iter().map(|m| m.to_string()).collect();
    println!("database:        {}", info.database);
    println!("schema version:  {}", info.version);
    println!(
        "modes:           {}",
        if modes.is_empty() {
            "none".into()
        } else {
            modes.join(", ")
        }
    );
    if let Some(p) = info.partitions {
        println!("partitions:      {p}");
    }
    println!("trigger variant: {}", info.trigger_variant.name());
}

async fn run_seed(cli: &Cli, args: &SeedArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let mut opts = SeedOptions::from_profile(args.profile.parse()?);
    if let Some(n) = args.orgs {
        opts.params.orgs = n;
    }
    if let Some(n) = args.days {
        opts.params.days = n;
    }
    opts.params.seed = args.seed;
    opts.params.end_date = args
        .end_date
        .parse()
        .map_err(|e: String| rehearse::Error::Usage(format!("--end-date: {e}")))?;
    opts.modes = args.mode.parse()?;
    opts.partitions = args.partitions;
    if let Some(j) = args.jobs {
        opts.jobs = j;
    }
    opts.allow_destructive = args.destructive.allow_destructive.clone();
    let record = seed::seed(&estate, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = record
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.clone(),
                thousands(t.rows),
                format!("{:.1} MiB", t.bytes as f64 / 1048576.0),
            ]
        })
        .collect();
    println!();
    print!("{}", text::table(&["table", "rows", "size"], &rows));
    println!();
    let phases: Vec<Vec<String>> = record
        .phases
        .iter()
        .map(|(p, s)| vec![p.clone(), format!("{s:.1}")])
        .collect();
    print!("{}", text::table(&["phase", "seconds"], &phases));
    println!();
    println!(
        "{} rows generated; load {:.0} rows/s; total {:.1} s; peak RSS {} MiB; checksum {}",
        thousands(record.counts.total()),
        record.load_rows_per_second(),
        record.seconds,
        record
            .peak_rss_kib
            .map(|k| (k / 1024).to_string())
            .unwrap_or_else(|| "?".into()),
        record.checksum
    );
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
            let opts = bench::select::BenchSelectOptions {
                scale: *scale,
                clients: *clients,
                threads: *threads,
                duration: duration_flag("--duration", &Some(duration.clone()))?.expect("given"),
                rounds: *rounds,
                allow_destructive: destructive.allow_destructive.clone(),
                verbose: true,
            };
            let r = bench::select::run(&estate, &opts).await?;
            println!(
                "bench select: pgbench -S -M prepared vs rehearse run scenarios/pgbench_select.toml, scale {}, {} clients, {:.0} s, {} rounds",
                r.scale,
                r.clients,
                r.duration_s,
                r.rounds.len()
            );
            println!(
                "median tps  pgbench: {:.0}  rehearse: {:.0}  ratio: {:.2}x (floor 1.0x, goal 1.2x)",
                r.median_pgbench_tps, r.median_rehearse_tps, r.median_ratio
            );
            println!(
                "median client CPU per operation  pgbench: {:.1} us  rehearse: {:.1} us",
                r.median_pgbench_cpu_us_per_op, r.median_rehearse_cpu_us_per_op
            );
        }
        BenchCommand::Seed {
            scale,
            rounds,
            jobs,
            destructive,
        } => {
            let opts = bench::seed::BenchSeedOptions {
                scale: *scale,
                rounds: *rounds,
                jobs: jobs.unwrap_or_else(lab::machine_cores),
                allow_destructive: destructive.allow_destructive.clone(),
                verbose: true,
            };
            let r = bench::seed::run(&estate, &opts).await?;
            println!(
                "bench seed: scale {} ({} rows), {} rounds, {} jobs",
                r.scale,
                thousands(r.rounds[0].pgbench_rows),
                r.rounds.len(),
                r.jobs
            );
            println!(
                "median rows/s  pgbench -i: {:.0}  rehearse seed: {:.0}  ratio: {:.2}x (floor 1.0x, goal 1.5x)",
                r.median_pgbench_rows_per_s, r.median_rehearse_rows_per_s, r.median_ratio
            );
            println!(
                "median ratio of heap bytes/s (rehearse rows are wider than pgbench's): {:.2}x",
                r.median_bytes_ratio
            );
        }
    }
    Ok(exit::OK)
}

fn day_flag(flag: &str, value: &Option<String>) -> anyhow::Result<Option<rehearse::day::Day>> {
    Ok(match value {
        Some(v) => Some(
            v.parse()
                .map_err(|e: String| rehearse::Error::Usage(format!("{flag} {v:?}: {e}")))?,
        ),
        None => None,
    })
}

fn run_check(args: &CheckArgs) -> anyhow::Result<i32> {
    for f in &args.files {
        let s = rehearse::scenario::load(f)?;
        println!(
            "{}: ok: {} phase(s), {:.0} s per variant, {} operation(s), {} variant(s) ({}), {} budget(s)",
            f.display(),
            s.phases.len(),
            s.duration().as_secs_f64(),
            s.mix.len(),
            s.variants.len(),
            s.variants
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            s.budgets.len()
        );
    }
    Ok(exit::OK)
}

fn verdict_settings(v: &VerdictArgs) -> anyhow::Result<rehearse::report::compare::CompareSettings> {
    if !(v.alpha > 0.0 && v.alpha < 0.5) || !(v.run_spread >= 0.0) || !(v.min_abs_ms >= 0.0) {
        return Err(rehearse::Error::Usage(
            "--alpha must lie in (0, 0.5), --run-spread and --min-abs-ms must not be negative"
                .into(),
        )
        .into());
    }
    Ok(rehearse::report::compare::CompareSettings {
        resamples: v.resamples as usize,
        alpha: v.alpha,
        min_abs_ms: v.min_abs_ms,
        run_spread: v.run_spread,
        ..Default::default()
    })
}

fn run_compare(args: &CompareArgs) -> anyhow::Result<i32> {
    use rehearse::report::compare;
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
    let format = if args.json {
        rehearse::output::compare::Format::Json
    } else if args.markdown {
        rehearse::output::compare::Format::Markdown
    } else {
        rehearse::output::compare::Format::Table
    };
    print!(
        "{}",
        rehearse::output::compare::render(&out, &settings, format)?
    );
    Ok(exit::OK)
}

fn run_gate(args: &GateArgs) -> anyhow::Result<i32> {
    use rehearse::report::gate;
    let g = gate::gate(&gate::GateOptions {
        run: args.run.clone(),
        baselines: args.baselines.clone(),
        budgets: args.budgets.clone(),
        settings: verdict_settings(&args.verdicts)?,
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

fn duration_flag(name: &str, v: &Option<String>) -> anyhow::Result<Option<std::time::Duration>> {
    v.as_deref()
        .map(|s| {
            s.parse::<rehearse::scenario::Dur>()
                .map(|d| d.0)
                .map_err(|e| rehearse::Error::Usage(format!("{name}: {e}")).into())
        })
        .transpose()
}

async fn run_run(cli: &Cli, args: &RunArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = driver::RunOptions {
        scenarios: args.scenarios.clone(),
        variants: args.variants.clone(),
        duration: duration_flag("--duration", &args.duration)?,
        rate: args.rate,
        warmup: duration_flag("--warmup", &args.warmup)?,
        inject_delay: duration_flag("--inject-delay", &args.inject_delay)?,
        out: args.out.clone(),
        verbose: !args.quiet,
        stop: None,
    };
    let outcomes = driver::run(&estate, &opts).await?;
    let mut code = exit::OK;
    for o in &outcomes {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&driver::summary::json(&o.result))?
            );
        } else {
            print!("{}", driver::summary::text(&o.result, &o.dir));
        }
        code = exit::worst(code, o.exit_code());
    }
    Ok(code)
}

async fn run_query(cli: &Cli, args: &QueryArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    let opts = QueryOptions {
        operation: args.operation.clone(),
        org: args.org,
        as_of: None,
        days: args.days,
        month: args.month.as_deref().map(query::parse_month).transpose()?,
        from: day_flag("--from", &args.from)?,
        to: day_flag("--to", &args.to)?,
        limit: args.limit,
        after: args.after.as_deref().map(str::parse).transpose()?,
        top: args.top,
        mode: args.mode.as_deref().map(str::parse).transpose()?,
        via: args.via.parse()?,
        pooling: args.pool.parse()?,
        cache: args.cache == "on",
        explain: args.explain,
    };
    let out = query::query(&estate, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_query(&out);
    }
    Ok(exit::OK)
}

fn print_query(out: &QueryOutcome) {
    use text::money;
    let (header, rows): (Vec<&str>, Vec<Vec<String>>) = match &out.report.data {
        ReportData::Dashboard(d) => (
            vec!["date", "revenue", "expenses", "net"],
            d.days
                .iter()
                .map(|x| {
                    vec![
                        x.date.to_string(),
                        money(x.revenue_cents),
                        money(x.expense_cents),
                        money(x.net_cents),
                    ]
                })
                .collect(),
        ),
        ReportData::Pnl(p) => {
            let mut rows: Vec<Vec<String>> = p
                .lines
                .iter()
                .map(|l| {
                    vec![
                        l.kind.clone(),
                        l.category.clone(),
                        money(l.amount_cents),
                        l.entries.to_string(),
                    ]
                })
                .collect();
            rows.push(vec![
                "revenue".into(),
                "total".into(),
                money(p.revenue_cents),
                String::new(),
            ]);
            rows.push(vec![
                "expense".into(),
                "total".into(),
                money(p.expense_cents),
                String::new(),
            ]);
            rows.push(vec![
                "net".into(),
                String::new(),
                money(p.net_cents),
                String::new(),
            ]);
            (vec!["kind", "category", "amount", "entries"], rows)
        }
        ReportData::Properties(b) => (
            vec!["property", "name", "kind", "revenue", "expenses", "net"],
            b.properties
                .iter()
                .map(|p| {
                    vec![
                        p.property_id.to_string(),
                        p.name.clone(),
                        p.kind.clone(),
                        money(p.revenue_cents),
                        money(p.expense_cents),
                        money(p.net_cents),
                    ]
                })
                .collect(),
        ),
        ReportData::Ledger(l) => (
            vec![
                "date", "kind", "id", "property", "category", "amount", "vendor",
            ],
            l.entries
                .iter()
                .map(|e| {
                    vec![
                        e.business_date.to_string(),
                        e.kind.clone(),
                        e.id.to_string(),
                        e.property_id.to_string(),
                        e.category.clone(),
                        money(e.amount_cents),
                        e.vendor.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
        ReportData::Portfolio(p) => (
            vec!["rank", "organization", "name", "revenue", "expenses"],
            p.iter()
                .enumerate()
                .map(|(i, r)| {
                    vec![
                        (i + 1).to_string(),
                        r.organization_id.to_string(),
                        r.name.clone(),
                        money(r.revenue_cents),
                        money(r.expense_cents),
                    ]
                })
                .collect(),
        ),
    };
    print!("{}", text::table(&header, &rows));
    if let ReportData::Ledger(l) = &out.report.data {
        match &l.next {
            Some(c) => println!("next page: --after {c}"),
            None => println!("last page"),
        }
    }
    let cache = match out.report.cache {
        Some(c) => format!(
            ", cache {}",
            serde_json::to_value(c)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("?")
        ),
        None => String::new(),
    };
    let lag = out
        .stats
        .routing
        .lag_bytes
        .iter()
        .map(|(n, l)| match l {
            Some(b) => format!("{n} lag {b} bytes"),
            None => format!("{n} not answering"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!(
        "{} mode, served by {}{cache}{}",
        out.report.mode,
        serde_json::to_value(out.report.source)
            .unwrap_or_default()
            .as_str()
            .unwrap_or("?"),
        if lag.is_empty() {
            String::new()
        } else {
            format!("; {lag}")
        }
    );
    if let Some(x) = &out.explain {
        println!();
        println!("{}", x.plan);
        println!();
        for t in &x.tables {
            if t.partitions == 0 {
                println!("{}: a plain table", t.table);
            } else {
                println!(
                    "{}: {} of {} partitions touched",
                    t.table, t.partitions_touched, t.partitions
                );
            }
        }
        println!("(explained on the {} in {} mode)", x.target, x.mode);
    }
}
