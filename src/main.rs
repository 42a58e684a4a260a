//! The `rehearse` binary: parse the command line, call the library, map
//! errors to the documented exit codes.

mod cli;
mod commands;
#[cfg(test)]
mod docs_check;

use clap::Parser;

use cli::Cli;
use rehearse::exit;

fn main() {
    // Output piped into `head` and the like: end quietly when the reader
    // goes, as Unix tools do, instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    // REHEARSE_THREADS: the driver's worker threads (default: one per core;
    // `current`: one runtime on the main thread, tokio's current-thread
    // scheduler, which never hands a wake-up to another thread).
    let threads = std::env::var("REHEARSE_THREADS").ok();
    let mut builder = if threads.as_deref() == Some("current") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if let Some(n) = threads
        .as_deref()
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
