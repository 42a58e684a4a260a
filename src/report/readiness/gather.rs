//! Finding the evidence: every run, drill, capacity search and kept job run
//! under the given directories, each read by its own strict reader
//! (`report::contents`, `jobs::read_runs`). A directory that cannot be read
//! is kept with why: the piece it would have been is then unknown.

use std::path::{Path, PathBuf};

use crate::alerts::AlertsReport;
use crate::capacity::CapacityReport;
use crate::cutover::drill::DrillReport as CutoverDrill;
use crate::error::Result;
use crate::jobs::JobRun;
use crate::report::contents::{self, Contents, LeadDrill};
use crate::rollout::drill::DrillReport as RolloutDrill;
use crate::run::RunResult;

/// Directories below a results directory that hold no evidence of their own.
const SKIP: [&str; 3] = ["charts", "hgrm", "baselines"];

/// How deep below a given directory evidence is looked for.
const DEPTH: usize = 3;

/// Everything found, by kind.
#[derive(Default)]
pub struct Found {
    /// Runs no drill ran: the suite and the journeys.
    pub runs: Vec<(PathBuf, RunResult)>,
    pub cutover: Vec<(PathBuf, CutoverDrill, RunResult)>,
    pub rollout: Vec<(PathBuf, RolloutDrill, RunResult)>,
    pub alerts: Vec<(PathBuf, AlertsReport, RunResult)>,
    pub capacity: Vec<(PathBuf, CapacityReport)>,
    pub jobs: Vec<(PathBuf, JobRun)>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Read everything under `dirs`.
pub fn gather(dirs: &[PathBuf]) -> Result<Found> {
    let mut f = Found::default();
    for d in dirs {
        walk(d, 0, &mut f)?;
    }
    Ok(f)
}

fn is_record(dir: &Path) -> bool {
    ["run.json", "capacity.json", "ab.json"]
        .iter()
        .any(|n| dir.join(n).exists())
}

fn walk(dir: &Path, depth: usize, f: &mut Found) -> Result<()> {
    match crate::jobs::read_runs(dir) {
        Ok(runs) => f.jobs.extend(runs),
        Err(e) => f.unreadable.push((dir.to_path_buf(), e.to_string())),
    }
    if is_record(dir) {
        // A record's own subdirectories (a capacity search's probes, an
        // ab's slices) are its parts, not evidence of their own.
        match contents::read(dir) {
            Ok(Contents::Ab(_)) => {}
            Ok(Contents::Capacity(c)) => f.capacity.push((dir.to_path_buf(), *c)),
            Ok(Contents::Run { run, cutover, lead }) => {
                let d = dir.to_path_buf();
                match (cutover, lead) {
                    (Some(c), _) => f.cutover.push((d, *c, *run)),
                    (None, Some(LeadDrill::Rollout(r))) => f.rollout.push((d, *r, *run)),
                    (None, Some(LeadDrill::Alerts(a))) => f.alerts.push((d, *a, *run)),
                    (None, None) => f.runs.push((d, *run)),
                }
            }
            Err(e) => f.unreadable.push((dir.to_path_buf(), e.to_string())),
        }
        return Ok(());
    }
    if depth >= DEPTH {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut subs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !SKIP.contains(&n) && !n.starts_with('.'))
        })
        .collect();
    subs.sort();
    for s in subs {
        walk(&s, depth + 1, f)?;
    }
    Ok(())
}
