//! What `rehearse rollout drill` prints at the end.

use std::fmt;

use crate::repo::routing::FLAG;
use crate::rollout::change::{ChangeReport, RolloutStatus};

use crate::report::rollout::{cohort_rows, verdict, COHORT_HEADER};
use crate::rollout::drill::DrillReport;
use crate::rollout::percent_text;

/// What an SRE reads at the end.
pub fn drill(d: &DrillReport) -> String {
    let mut out = String::new();
    out.push_str(&verdict(d));
    out.push('\n');
    for r in &d.reasons {
        out.push_str(&format!("  - {r}\n"));
    }
    out.push_str("\nsteps:\n");
    for s in &d.spans {
        let mut line = format!(
            "  {:>7.1} s  {:<22} {:>6}",
            s.start_s,
            s.name,
            percent_text(s.basis_points)
        );
        if let Some(c) = &s.change {
            line.push_str(&format!(
                "  {} of {} organizations partitioned",
                c.partitioned_after, c.organizations
            ));
        }
        for l in &s.ledger {
            line.push_str(&format!(
                "  {}: {} missing, {} differing, {} resurrected",
                l.side, l.missing, l.differing, l.resurrected
            ));
        }
        if let Some((ok, v)) = &s.verify {
            line.push_str(&format!(
                "  verify {}: {v}",
                if *ok { "ok" } else { "FAILED" }
            ));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\nlatency by cohort (p99 from the intended start):\n");
    out.push_str(&crate::text::table(&COHORT_HEADER, &cohort_rows(d)));
    out
}

impl fmt::Display for ChangeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.ran {
            "done"
        } else if self.dry_run {
            "dry run, nothing changed"
        } else {
            "already done"
        };
        writeln!(f, "rollout {}: {status}", self.change)?;
        writeln!(f, "  {}", self.summary)?;
        writeln!(
            f,
            "  percentage     {} -> {} (salt {:?})",
            self.from.percent, self.to.percent, self.to.salt
        )?;
        writeln!(
            f,
            "  organizations  {} of {} partitioned ({:+})",
            self.partitioned_after,
            self.organizations,
            self.partitioned_after as i64 - self.partitioned_before as i64
        )
    }
}

impl fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[i64]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                let shown: Vec<String> = v.iter().take(20).map(|o| o.to_string()).collect();
                let more = v.len().saturating_sub(20);
                format!(
                    "{}{}",
                    shown.join(","),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        };
        writeln!(f, "database       {}", self.database)?;
        writeln!(f, "cutover phase  {}", self.phase)?;
        writeln!(
            f,
            "flag           {}",
            match self.flag {
                Some(true) => format!("{FLAG}=true: everyone partitioned, the rollout is not read"),
                Some(false) => format!("{FLAG}=false: each organization by its cohort"),
                None => format!("{FLAG} not set in feature_flags"),
            }
        )?;
        writeln!(
            f,
            "rollout        {} ({} basis points), salt {:?}",
            self.rollout.percent, self.rollout.basis_points, self.rollout.salt
        )?;
        writeln!(f, "allow list     {}", list(&self.rollout.allow))?;
        writeln!(f, "deny list      {}", list(&self.rollout.deny))?;
        let share = |n: u64| {
            if self.organizations == 0 {
                "-".to_string()
            } else {
                format!("{:.2}%", 100.0 * n as f64 / self.organizations as f64)
            }
        };
        writeln!(
            f,
            "organizations  {} partitioned ({}), {} legacy, {} in all",
            self.partitioned_orgs,
            share(self.partitioned_orgs),
            self.legacy_orgs,
            self.organizations
        )?;
        if !self.rows.is_empty() {
            writeln!(
                f,
                "entries        {:<20} {:>14} {:>20} {:>16}",
                "tables", "all", "partitioned cohort", "legacy cohort"
            )?;
            for r in &self.rows {
                writeln!(
                    f,
                    "               {:<20} {:>14} {:>20} {:>16}",
                    format!("{} tables", r.side),
                    r.entries,
                    r.partitioned_cohort,
                    r.entries - r.partitioned_cohort
                )?;
            }
        }
        writeln!(f, "next           {}", self.next)
    }
}
