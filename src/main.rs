//! The `rehearse` binary: parse the command line, call the library, map
//! errors to the documented exit codes.

mod cli;
mod commands;
#[cfg(test)]
mod docs_check;

use clap::Parser;

use cli::Cli;
use rehearse::exit;

/// The async runtime a command runs on.
#[derive(Debug, PartialEq)]
enum Threads {
    /// tokio's current-thread scheduler: one thread, which never hands a
    /// wake-up to another.
    Current,
    /// The multi-thread scheduler with this many workers (None: one per core).
    Multi(Option<usize>),
}

/// REHEARSE_THREADS, else the command's default: tokio's multi-thread
/// runtime, one worker per core, for all but `replay`. `current` (one thread)
/// costs the driver about a quarter less client CPU per request, closed and
/// open loop, and since its early release yields (2026-12-06) it no longer
/// stalls the thread at low rates; but one thread caps the client at one
/// core, and at 200/s its run-to-run spread was no better (docs/src/
/// scenarios.md, "The driver's own figures"). `replay` defaults to it: a
/// replay's work per statement is a dispatcher wake-up and a send, and at
/// 20,000 statements/s on a 2-core machine shared with the server only the
/// one thread held the wake-up p99 under 1 ms (docs/src/replay.md, "Speed").
/// `multi` or a number of worker threads choose the multi-thread runtime.
fn default_threads(command: &cli::Command) -> Threads {
    match command {
        cli::Command::Replay(_) => Threads::Current,
        _ => Threads::Multi(None),
    }
}

/// The runtime REHEARSE_THREADS asks for, else `default`.
fn runtime_for(threads: Option<&str>, default: Threads) -> Result<Threads, String> {
    Ok(match threads.map(str::trim) {
        Some("current") => Threads::Current,
        Some("multi") => Threads::Multi(None),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => Threads::Multi(Some(n)),
            _ => {
                return Err(format!(
                    "REHEARSE_THREADS={n:?}: expected `current`, `multi` or a number of threads above 0"
                ))
            }
        },
        None => default,
    })
}

fn main() {
    // Output piped into `head` and the like: end quietly when the reader
    // goes, as Unix tools do, instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let threads = std::env::var("REHEARSE_THREADS").ok();
    let threads = match runtime_for(threads.as_deref(), default_threads(&cli.command)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    let mut builder = match threads {
        Threads::Current => tokio::runtime::Builder::new_current_thread(),
        Threads::Multi(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = n {
                b.worker_threads(n);
            }
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::ENVIRONMENT);
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_the_commands_default_unless_the_variable_says() {
        for default in [Threads::Current, Threads::Multi(None)] {
            let d = format!("{default:?}");
            assert_eq!(
                format!("{:?}", runtime_for(None, default)),
                format!("Ok({d})")
            );
        }
        let m = || Threads::Multi(None);
        assert_eq!(runtime_for(Some("multi"), Threads::Current), Ok(m()));
        assert_eq!(runtime_for(Some("current"), m()), Ok(Threads::Current));
        assert_eq!(runtime_for(Some(" 3 "), m()), Ok(Threads::Multi(Some(3))));
        for bad in ["0", "two", ""] {
            let e = runtime_for(Some(bad), m()).unwrap_err();
            assert!(
                e.contains("REHEARSE_THREADS") && e.contains("current"),
                "{e}"
            );
        }
    }

    #[test]
    fn replay_defaults_to_one_thread_and_run_to_one_worker_per_core() {
        let default = |args: &[&str]| default_threads(&Cli::parse_from(args).command);
        assert_eq!(default(&["rehearse", "replay", "x.csv"]), Threads::Current);
        assert_eq!(
            default(&["rehearse", "run", "s.toml"]),
            Threads::Multi(None)
        );
    }
}
