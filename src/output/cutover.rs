//! `rehearse cutover ...`: one step's report, and the drill's.

use std::fmt;
use std::path::Path;

use crate::cutover::drill::DrillReport;
use crate::cutover::{Status, StepReport};
use crate::repo::routing;
use crate::schema::Mode;

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

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database       {}", self.database)?;
        writeln!(f, "phase          {}", self.phase)?;
        writeln!(
            f,
            "flag           {}",
            match self.flag {
                Some(m) => format!("{}={} ({m})", routing::FLAG, m == Mode::Partitioned),
                None => format!(
                    "{} not set in feature_flags (services use their environment)",
                    routing::FLAG
                ),
            }
        )?;
        writeln!(f, "authoritative  {}", self.authoritative)?;
        writeln!(
            f,
            "mirror         {} of 4 triggers{}",
            self.mirror_triggers,
            if self.phase.mirrored() && self.mirror_triggers < 4 {
                " (INCOMPLETE: run `rehearse cutover dual-write` to repair)"
            } else {
                ""
            }
        )?;
        if let Some(b) = &self.state.backfill {
            let total = (b.last_org - b.first_org + 1).max(1);
            let done = (b.next_org - b.first_org).clamp(0, total);
            writeln!(
                f,
                "backfill       organizations {}..{}: {} of {} done ({:.0}%), {} rows in {} batches, {:.1} s",
                b.first_org,
                b.last_org,
                done,
                total,
                done as f64 * 100.0 / total as f64,
                crate::progress::thousands(b.rows),
                b.batches,
                b.seconds
            )?;
        }
        if let Some(v) = &self.state.verified {
            writeln!(
                f,
                "last verify    {} at {} on phase {}{}",
                if v.ok { "PASS" } else { "FAIL" },
                v.at,
                v.phase,
                if v.phase != self.phase {
                    " (stale: the estate moved since)"
                } else {
                    ""
                }
            )?;
        }
        if let Some(n) = &self.next {
            writeln!(f, "next           {n}")?;
        }
        if !self.state.log.is_empty() {
            writeln!(f, "\nstep log")?;
            for e in &self.state.log {
                writeln!(
                    f,
                    "  {}  {:<10} {:>8.2} s  {}",
                    e.at,
                    e.step.name(),
                    e.seconds,
                    e.outcome
                )?;
            }
        }
        Ok(())
    }
}
