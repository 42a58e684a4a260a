//! `cutover`, `rollout`, `job` and `alerts drill`.

use super::*;

pub(crate) fn step_options(a: &StepArgs) -> anyhow::Result<cutover::StepOptions> {
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

pub(crate) fn verify_options(a: &VerifyArgs) -> anyhow::Result<cutover::verify::VerifyOptions> {
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

pub(crate) fn backfill_options(
    a: &BackfillArgs,
) -> anyhow::Result<cutover::backfill::BackfillOptions> {
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
pub(crate) fn print_step(report: &cutover::StepReport, json: bool) -> anyhow::Result<i32> {
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

pub(crate) async fn run_cutover(cli: &Cli, cmd: &CutoverCommand) -> anyhow::Result<i32> {
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

pub(crate) async fn run_job(cli: &Cli, cmd: &JobCommand) -> anyhow::Result<i32> {
    use rehearse::jobs::{self, schedule, Job, JobOptions};
    let estate = Estate::resolve(&estate_flags(cli))?;
    match cmd {
        JobCommand::Run {
            job,
            bounds,
            orgs,
            json,
            out,
            destructive,
        } => {
            let opts = JobOptions {
                budget: bounds.budget.0,
                lock_timeout: bounds.lock_timeout.0,
                allow_destructive: destructive.allow_destructive.clone(),
                orgs: orgs.clone(),
            };
            let run = jobs::run(&estate, *job, &opts).await?;
            if let Some(dir) = out {
                jobs::write_run(dir, &run)?;
            }
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

pub(crate) async fn run_rollout(cli: &Cli, cmd: &RolloutCommand) -> anyhow::Result<i32> {
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
                print!("{}", rehearse::output::rollout::drill(&report));
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

pub(crate) async fn run_alerts_drill(cli: &Cli, a: &AlertsDrillArgs) -> anyhow::Result<i32> {
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
    use rehearse::render::Renderer as _;
    let md = rehearse::render::Markdown.render(&rehearse::report::alerts::page(&report));
    rehearse::fsutil::write_atomic(&dir.join("alerts-drill.md"), md.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{md}");
        println!("\nwritten to {}", dir.display());
    }
    Ok(rehearse::alerts::exit_code(&report))
}
