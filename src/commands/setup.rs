//! `lab`, `schema`, `seed`, `query` and `bench`.

use super::*;

pub(crate) async fn run_lab(cli: &Cli, cmd: &LabCommand) -> anyhow::Result<i32> {
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

pub(crate) fn print_status(status: &[lab::ComponentStatus], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(status).expect("status serializes")
        );
    } else {
        print!("{}", output::lab::status(status));
    }
}

pub(crate) async fn run_schema(cli: &Cli, cmd: &SchemaCommand) -> anyhow::Result<i32> {
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

pub(crate) fn print_schema(info: &schema::SchemaInfo, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(info).expect("schema info serializes")
        );
    } else {
        print!("{}", output::schema::info(info));
    }
}

pub(crate) async fn run_seed(cli: &Cli, args: &SeedArgs) -> anyhow::Result<i32> {
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

pub(crate) async fn run_bench(cli: &Cli, cmd: &BenchCommand) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    match cmd {
        BenchCommand::Select {
            scale,
            clients,
            threads,
            duration,
            rounds,
            min_ratio,
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
            print!("{}", output::bench::select(&r, *min_ratio));
            return Ok(r.exit_code(*min_ratio));
        }
        BenchCommand::OpenLoop {
            rates,
            clients,
            threads,
            duration,
            rounds,
            max_cpu_us,
            json,
        } => {
            let opts = pgbench::open_loop::BenchOpenLoopOptions {
                rates: rates.clone(),
                clients: *clients,
                threads: *threads,
                duration: duration.0,
                rounds: *rounds,
                max_cpu_us: *max_cpu_us,
                verbose: true,
            };
            let r = pgbench::open_loop::run(&estate, &opts).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", output::bench::open_loop(&r));
            }
            return Ok(r.exit_code());
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

pub(crate) async fn run_query(cli: &Cli, args: &QueryArgs) -> anyhow::Result<i32> {
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
