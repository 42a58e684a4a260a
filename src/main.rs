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

/// REHEARSE_THREADS, else tokio's multi-thread runtime, one worker per
/// core. `current` (one thread) cost the driver about a quarter less client
/// CPU per request, closed and open loop, but at low rates, where the early
/// release spins a worker until its send time, the spin holds the one
/// thread, and a dashboard's p50 at 200/s rose from 0.298-0.339 ms to
/// 0.333-0.445 ms (docs/src/scenarios.md, "The driver's own figures"): it
/// stays opt-in until the spin yields to the connections it would stall.
/// `multi` or a number of worker threads choose the multi-thread runtime.
fn runtime_for(threads: Option<&str>) -> Result<Threads, String> {
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
        None => Threads::Multi(None),
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
    let threads = match runtime_for(threads.as_deref()) {
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
    fn the_runtime_is_multi_thread_unless_the_variable_says() {
        assert_eq!(runtime_for(None), Ok(Threads::Multi(None)));
        assert_eq!(runtime_for(Some("multi")), Ok(Threads::Multi(None)));
        assert_eq!(runtime_for(Some("current")), Ok(Threads::Current));
        assert_eq!(runtime_for(Some(" 3 ")), Ok(Threads::Multi(Some(3))));
        for bad in ["0", "two", ""] {
            let e = runtime_for(Some(bad)).unwrap_err();
            assert!(
                e.contains("REHEARSE_THREADS") && e.contains("current"),
                "{e}"
            );
        }
    }
}
