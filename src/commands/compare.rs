//! `compare`, `ab` and `gate`.

use super::*;

pub(crate) fn run_compare(args: &CompareArgs) -> anyhow::Result<i32> {
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
    // Where the server time went, first run of each side (not in --json,
    // whose shape consumers parse).
    if format != rehearse::output::compare::Format::Json {
        if let (Some(b), Some(c)) = (args.baseline.first(), args.candidate.first()) {
            if let (Ok(b), Ok(c)) = (rehearse::run::read(b), rehearse::run::read(c)) {
                if let Some(t) = rehearse::report::attribution::compare_table(&b, &c) {
                    println!(
                        "\nwhere the server time went (pg_stat_statements and sampled waits):\n{t}"
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}

pub(crate) fn run_ab(cli: &Cli, args: &AbArgs) -> anyhow::Result<i32> {
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
        max_rounds: args.max_rounds.unwrap_or(if args.budget.is_some() {
            ab::BUDGET_MAX_ROUNDS
        } else {
            ab::DEFAULT_MAX_ROUNDS
        }),
        budget: args.budget.map(|d| d.0),
        min_effect: args.min_effect,
        metrics: args.metrics.clone(),
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
        duet: args.duet,
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", output::ab::report(&out, &report)?);
    }
    Ok(report.exit_code)
}

pub(crate) fn run_gate(args: &GateArgs) -> anyhow::Result<i32> {
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

pub(crate) fn run_readiness(args: &ReadinessArgs) -> anyhow::Result<i32> {
    let out = args.out.clone().unwrap_or_else(|| args.dirs[0].clone());
    let w = rehearse::report::readiness::readiness(&args.dirs, &out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&w.readiness)?);
    } else {
        print!("{}", output::readiness::summary(&w));
    }
    Ok(w.readiness.exit_code)
}
