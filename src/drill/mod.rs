//! One harness for the drills that steer the estate under load (the
//! cutover drill, the rollout drill and the alert drill): the run directory,
//! the background workload and the clock its markers count from, rehearse's
//! metrics on the lab's port, Ctrl-C, the ledger's verdict, the latency of
//! each span of the drill, and the path from what happened to a status, a
//! pass and an exit code. Each drill keeps only its own steps and its own
//! judgement.
//!
//! - [`workload`]: the scenario a drill runs in the background;
//! - [`spans`]: the workload's latency over each span of the drill.

pub mod spans;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::driver::ledger::LedgerCheck;
use crate::driver::{self, Background, Hooks};
use crate::error::{Error, IoContext, Result};
use crate::estate::Estate;
use crate::exit;
use crate::metrics::{Metrics, MetricsAddr, Served};
use crate::run::{self, Marker, RunResult, Status};
use crate::scenario::{Dur, Scenario};

pub use spans::{span_latency, StepLatency};

/// What every drill is asked, whatever it steers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario whose steady load (its last phase) runs in the background.
    pub scenario: PathBuf,
    /// Its variant to run [default: the first].
    pub variant: Option<String>,
    /// Requests per second [default: the scenario's last phase].
    pub rate: Option<f64>,
    /// The steady period measured before the first step or fault.
    pub steady: Duration,
    /// The run directory [default: results/<run id of "{drill}-{scenario}">].
    pub out: Option<PathBuf>,
    /// Progress lines on stderr.
    pub verbose: bool,
}

/// How a drill starts its harness.
pub struct Start<'a> {
    /// The drill's name, which names the default run directory.
    pub kind: &'a str,
    pub options: &'a Options,
    /// The workload's hooks; the harness adds the metrics it serves.
    pub hooks: Hooks,
    /// The metrics must be served on the lab's port (a Prometheus judges
    /// them): a port in use is an error, not a note.
    pub metrics_required: bool,
    /// What Ctrl-C says it will do.
    pub on_interrupt: &'static str,
}

/// A drill under way: its directory, its workload and its clock.
pub struct Harness {
    pub dir: PathBuf,
    /// When the workload's first variant started: every marker counts from it.
    pub origin: Instant,
    pub stop: Arc<AtomicBool>,
    interrupted: Arc<AtomicBool>,
    served: std::sync::Mutex<Option<Served>>,
    metrics: Arc<Metrics>,
    workload: std::sync::Mutex<Option<Background>>,
    verbose: bool,
}

impl Harness {
    /// Make the run directory, serve the metrics, take Ctrl-C, and start
    /// the workload; returns once it measures.
    pub async fn start(estate: &Estate, s: &Scenario, start: Start<'_>) -> Result<Harness> {
        let dir = start.options.out.clone().unwrap_or_else(|| {
            PathBuf::from("results").join(run::run_id(
                SystemTime::now(),
                &format!("{}-{}", start.kind, s.name),
            ))
        });
        std::fs::create_dir_all(&dir).io("creating the run directory", &dir)?;
        let served = crate::metrics::serve(
            Metrics::for_scenarios([s]),
            &MetricsAddr::default_for(estate),
            start.metrics_required,
        )
        .await
        .map_err(|e| {
            Error::Lab(format!(
                "the drill serves its metrics on the lab's port for Prometheus to scrape, and \
                 cannot: {e}. Is another rehearse run or drill going on this lab?"
            ))
        })?;
        let metrics = served.metrics.clone();
        let mut hooks = start.hooks;
        hooks.metrics = Some(metrics.clone());
        let hooks = Arc::new(hooks);
        let stop = Arc::new(AtomicBool::new(false));
        let interrupted = Arc::new(AtomicBool::new(false));
        crate::interrupt::on_ctrl_c(start.on_interrupt, &[&stop, &interrupted]);
        let (workload, origin) = driver::start_background(estate, s, &dir, &stop, &hooks).await?;
        Ok(Harness {
            dir,
            origin,
            stop,
            interrupted,
            served: std::sync::Mutex::new(Some(served)),
            metrics,
            workload: std::sync::Mutex::new(Some(workload)),
            verbose: start.options.verbose,
        })
    }

    /// Seconds into the workload, as its timeline counts.
    pub fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// A line of the drill's progress, with the time, when verbose.
    pub fn say(&self, line: &str) {
        if self.verbose {
            eprintln!("[{:7.1} s] {line}", self.now());
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Where the metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.served
            .lock()
            .expect("not poisoned")
            .as_ref()
            .and_then(|s| s.addr)
    }

    /// Whether the drill was told to stop (Ctrl-C, or its own end).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Let the workload run for `d`, or until the drill is stopped.
    pub async fn hold(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.stopped() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the workload, wait for it and stop serving metrics: its
    /// result, or why it failed (a reason for the drill's verdict).
    pub async fn stop_workload(&self) -> Result<std::result::Result<RunResult, String>> {
        self.stop.store(true, Ordering::SeqCst);
        let taken = self.workload.lock().expect("not poisoned").take();
        let Some(w) = taken else {
            return Err(Error::Lab(
                "the drill's workload was already stopped".into(),
            ));
        };
        let run = w
            .await
            .map_err(|e| Error::Lab(format!("the workload task failed: {e}")))?;
        *self.served.lock().expect("not poisoned") = None;
        Ok(run.map_err(|e| format!("the workload failed: {e}")))
    }
}

/// A drill's status, whether it passed, and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub ok: bool,
    pub exit_code: i32,
}

/// Interrupted, else failed when the steps or the workload failed, else
/// complete; a pass needs it complete with no reason against it.
pub fn outcome(interrupted: bool, failed: bool, reasons: &[String]) -> Outcome {
    let status = if interrupted {
        Status::Interrupted
    } else if failed {
        Status::Failed
    } else {
        Status::Complete
    };
    let ok = reasons.is_empty() && status == Status::Complete;
    let exit_code = if interrupted {
        exit::INTERRUPTED
    } else if ok {
        exit::OK
    } else {
        exit::FAIL
    };
    Outcome {
        status,
        ok,
        exit_code,
    }
}

/// Write the workload's run.json: the drill's spans as markers, its one
/// phase as long as it ran, and, when the drill failed, the failure.
pub fn write_run(
    dir: &std::path::Path,
    r: &mut RunResult,
    markers: Vec<Marker>,
    interrupted: bool,
    failed_with: Option<String>,
) -> Result<()> {
    r.markers = markers;
    let elapsed = Duration::from_secs_f64(r.seconds);
    if let Some(p) = r.scenario.phases.first_mut() {
        p.duration = Dur(elapsed);
    }
    r.finish(interrupted, elapsed);
    if let Some(e) = failed_with {
        r.status = Status::Failed;
        r.error = Some(e);
    }
    r.write(dir)
}

/// What the write ledger says against a drill: nothing acknowledged or
/// nothing checked proves nothing; each check that found a write missing,
/// differing or resurrected is named by its label.
pub fn ledger_reasons(
    acknowledged: u64,
    checked_any: bool,
    checks: &[(String, &LedgerCheck)],
) -> Vec<String> {
    let mut out = Vec::new();
    if !checked_any || acknowledged == 0 {
        out.push(
            "no acknowledged write was checked: the ledger proves nothing (did the workload write?)"
                .into(),
        );
    }
    out.extend(
        checks
            .iter()
            .filter(|(_, c)| !c.ok())
            .map(|(label, c)| format!("{label}: {c}")),
    );
    out
}

/// Requests of the workload that failed, over the whole drill.
pub fn workload_errors(r: Option<&RunResult>) -> u64 {
    r.map_or(0, |r| {
        r.variants
            .iter()
            .flat_map(|v| &v.operations)
            .map(|o| o.count - o.ok)
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_passes_only_complete_and_without_a_reason() {
        let none: Vec<String> = Vec::new();
        let one = vec!["final: missing 1".to_string()];
        assert_eq!(
            outcome(false, false, &none),
            Outcome {
                status: Status::Complete,
                ok: true,
                exit_code: exit::OK
            }
        );
        let o = outcome(false, false, &one);
        assert_eq!(
            (o.status, o.ok, o.exit_code),
            (Status::Complete, false, exit::FAIL)
        );
        let o = outcome(false, true, &none);
        assert_eq!(
            (o.status, o.ok, o.exit_code),
            (Status::Failed, false, exit::FAIL)
        );
        let o = outcome(true, false, &none);
        assert_eq!(
            (o.status, o.ok, o.exit_code),
            (Status::Interrupted, false, exit::INTERRUPTED)
        );
    }

    #[test]
    fn a_ledger_that_checked_nothing_or_lost_a_write_is_a_reason() {
        let clean = LedgerCheck::default();
        let lost = LedgerCheck {
            missing: 1,
            ..LedgerCheck::default()
        };
        assert!(ledger_reasons(5, true, &[("final".into(), &clean)]).is_empty());
        assert_eq!(
            ledger_reasons(0, true, &[("final".into(), &clean)]).len(),
            1
        );
        assert_eq!(ledger_reasons(5, false, &[]).len(), 1);
        let r = ledger_reasons(5, true, &[("final, legacy side".into(), &lost)]);
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with("final, legacy side: "), "{r:?}");
    }
}
