//! `rehearse cutover ...`: one step's report, and the drill's.

use std::path::Path;

use crate::cutover::drill::DrillReport;
use crate::cutover::StepReport;

pub fn step(report: &StepReport) -> String {
    match &report.verify {
        Some(v) => format!("{}\n", v.describe()),
        None => format!(
            "cutover {}: {} (phase: {})\n",
            report.step, report.summary, report.phase
        ),
    }
}

pub fn drill(dir: &Path, report: &DrillReport) -> String {
    format!(
        "{}\n\nrun directory: {} (cutover.json, run.json, latency.hlog; `rehearse report {}` draws it)\n",
        report.describe(),
        dir.display(),
        dir.display()
    )
}
