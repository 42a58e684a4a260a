//! Ctrl-C: long work (a run, a backfill, a drill) stops at a safe point
//! and keeps what it measured. One handler, so every command says and does
//! the same thing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// On the first Ctrl-C, print `what_happens` on stderr and set every flag.
/// Must be called inside a tokio runtime.
pub fn on_ctrl_c(what_happens: &'static str, flags: &[&Arc<AtomicBool>]) {
    let flags: Vec<Arc<AtomicBool>> = flags.iter().map(|f| Arc::clone(f)).collect();
    // The handler is installed here, not when the task first runs: on the
    // current-thread runtime a spawned task waits until its caller yields,
    // and a Ctrl-C before that would end the process with nothing kept.
    let Ok(mut sigint) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        return;
    };
    tokio::spawn(async move {
        if sigint.recv().await.is_some() {
            eprintln!("\ninterrupted: {what_happens}");
            for f in &flags {
                f.store(true, Ordering::SeqCst);
            }
        }
    });
}
