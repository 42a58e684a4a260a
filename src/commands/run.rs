//! `check`, `run`, `capacity`, `serve`, `journeys` and `merge`.

use super::*;

pub(crate) async fn run_capacity(cli: &Cli, a: &CapacityArgs) -> anyhow::Result<i32> {
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

/// Check every file given, report every error of each, exit 2 if any.
pub(crate) fn run_check(args: &CheckArgs) -> anyhow::Result<i32> {
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

pub(crate) async fn run_run(cli: &Cli, args: &RunArgs) -> anyhow::Result<i32> {
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
pub(crate) fn no_journeys_feature(command: &str) -> anyhow::Result<i32> {
    Err(rehearse::Error::Usage(format!(
        "`rehearse {command}` is in builds with the journeys feature: cargo build --features journeys"
    ))
    .into())
}

#[cfg(not(feature = "journeys"))]
pub(crate) async fn run_serve(_: &Cli, _: &ServeArgs) -> anyhow::Result<i32> {
    no_journeys_feature("serve")
}

#[cfg(not(feature = "journeys"))]
pub(crate) async fn run_journeys(_: &Cli, _: &JourneysArgs) -> anyhow::Result<i32> {
    no_journeys_feature("journeys")
}

#[cfg(feature = "journeys")]
pub(crate) async fn run_serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<i32> {
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
pub(crate) async fn run_journeys(cli: &Cli, args: &JourneysArgs) -> anyhow::Result<i32> {
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

pub(crate) fn run_merge(args: &MergeArgs) -> anyhow::Result<i32> {
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
