//! The `rehearse` binary: parse the command line, call the library, map
//! errors to the documented exit codes.

mod cli;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command, LabCommand, SchemaCommand};
use rehearse::error::{EXIT_ENVIRONMENT, EXIT_OK};
use rehearse::estate::{Estate, EstateFlags, DEFAULT_LAB_DIR, ENV_LAB_DIR};
use rehearse::lab::{self, LabCtx, LabOptions};
use rehearse::schema::{self, CreateOptions, DropOptions};
use rehearse::{db, text};

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_ENVIRONMENT);
        }
    };
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            err.chain()
                .find_map(|e| e.downcast_ref::<rehearse::Error>())
                .map(|e| e.exit_code())
                .unwrap_or(EXIT_ENVIRONMENT)
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
                return Ok(EXIT_ENVIRONMENT);
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
    Ok(EXIT_OK)
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
    Ok(EXIT_OK)
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
