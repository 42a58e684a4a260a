//! `rehearse report <run-dir>`: a run directory turned into charts (SVG and
//! PNG), a self-contained `report.html` with the verdict per budget on top,
//! a `summary.md` for CI job summaries, and `.hgrm` percentile distribution
//! files for HdrHistogram's usual plotters.
//!
//! Every page is built here as a [`crate::render::Doc`] and written by the
//! renderers in `render/`: `run.rs` a run's page (`run_charts.rs` its
//! charts), `cutover.rs`, `rollout.rs`, `alerts.rs` and `jobs.rs` the
//! sections drills and jobs add to it, `capacity.rs` and `ab.rs` the pages
//! of those directories, `gate.rs` the gate's; `contents.rs` reads which
//! kind a directory is, once.

pub mod ab;
pub mod alerts;
pub mod attribution;
pub mod capacity;
pub mod compare_table;
pub mod contents;
pub mod cutover;
pub mod gate;
pub mod jobs;
pub mod modes;
pub mod overlay;
pub mod readiness;
pub mod rollout;
mod run;
mod run_charts;

use std::path::{Path, PathBuf};

use crate::render::charts::{self, Dash};
use contents::Contents;

use crate::run::RunResult;

pub use overlay::overlay;

/// Line styles per variant, the second cue after colour.
const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];

/// What `rehearse report` wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub html: PathBuf,
    pub summary: PathBuf,
    pub charts: Vec<PathBuf>,
    pub hgrm: Vec<PathBuf>,
    pub verdict: String,
    /// For a drill: what its verdict and the workload's each mean, when they differ.
    pub note: Option<String>,
}

/// Write the report of the run in `dir`, whatever wrote it.
pub fn report(dir: &Path) -> crate::Result<ReportOutcome> {
    match contents::read(dir)? {
        Contents::Ab(r) => ab::report(dir, &r),
        Contents::Capacity(r) => capacity::report(dir, &r),
        Contents::Run { run, cutover, lead } => run::report(dir, *run, cutover.map(|c| *c), lead),
    }
}

/// A short value label for a bar, in ms ("0.84", "12.3") or past a
/// second in seconds ("1.46 s": a thousands separator reads as a decimal
/// point at this size).
pub(crate) fn ms_short(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// An interval's length: "1 s", "0.5 s".
fn secs_label(s: f64) -> String {
    charts::tick_label(s) + " s"
}

/// A latency for a label: "0.412 ms", "23.5 ms", "1.234 s".
pub(crate) fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.3} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

/// The verdict of a run as one word.
pub(crate) fn verdict_word(r: &RunResult) -> &'static str {
    use crate::run::Verdict;
    match r.verdict {
        Verdict::Running => "running",
        Verdict::Failed => "failed",
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Invalid => "invalid",
        Verdict::Interrupted => "interrupted",
        Verdict::NotJudged => "measured, not judged",
    }
}
