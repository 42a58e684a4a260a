//! Ctrl-C: long work (a run, a backfill, a drill) stops at a safe point
//! and keeps what it measured. One handler, so every command says and does
//! the same thing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// On the first Ctrl-C, print `what_happens` on stderr and set every flag.
/// Must be called inside a tokio runtime.
pub fn on_ctrl_c(what_happens: &'static str, flags: &[&Arc<AtomicBool>]) {
    let flags: Vec<Arc<AtomicBool>> = flags.iter().map(|f| Arc::clone(f)).collect();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: {what_happens}");
            for f in &flags {
                f.store(true, Ordering::SeqCst);
            }
        }
    });
}
