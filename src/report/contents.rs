//! What a run directory holds, read once, by one function: which command
//! wrote it (`ab`, `capacity`, or a run, alone or under a drill), and that
//! command's record, parsed strictly. The report, and whatever else must
//! tell the kinds apart, match on [`Contents`] instead of testing for files.

use std::path::Path;

use crate::error::{Error, Result};
use crate::run::RunResult;

/// A drill whose own report leads a run's page.
pub enum LeadDrill {
    Alerts(Box<crate::alerts::AlertsReport>),
    Rollout(Box<crate::rollout::drill::DrillReport>),
}

/// What a run directory holds.
pub enum Contents {
    /// `rehearse ab`: ab.json, and its slices' run directories.
    Ab(Box<crate::ab::AbReport>),
    /// `rehearse capacity`: capacity.json, and its probes' run directories.
    Capacity(Box<crate::capacity::CapacityReport>),
    /// A run (run.json and latency.hlog): alone, or the workload of the
    /// cutover drill (cutover.json) or of another drill.
    Run {
        run: Box<RunResult>,
        cutover: Option<Box<crate::cutover::drill::DrillReport>>,
        lead: Option<LeadDrill>,
    },
}

/// Read `dir` once: ab.json first, then capacity.json, then run.json with
/// the drill reports beside it. A file of another layout is refused with the
/// field at fault (exit 2); a directory with none of them is named.
pub fn read(dir: &Path) -> Result<Contents> {
    if dir.join("ab.json").exists() {
        return Ok(Contents::Ab(Box::new(crate::ab::read(dir)?)));
    }
    if let Some(c) = crate::capacity::read(dir)? {
        return Ok(Contents::Capacity(Box::new(c)));
    }
    if !dir.join("run.json").exists() {
        return Err(Error::Usage(format!(
            "{} is not a run directory: it holds no run.json, ab.json or capacity.json",
            dir.display()
        )));
    }
    let run = Box::new(crate::run::read(dir)?);
    let cutover = super::cutover::read(dir)?.map(Box::new);
    let lead = match crate::alerts::read(dir)? {
        Some(a) => Some(LeadDrill::Alerts(Box::new(a))),
        None => crate::rollout::drill::read(dir)?.map(|d| LeadDrill::Rollout(Box::new(d))),
    };
    Ok(Contents::Run { run, cutover, lead })
}
