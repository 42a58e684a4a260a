//! What `rehearse job run` and `rehearse job schedule` print.

use std::fmt;

use crate::jobs::schedule::Listing;
use crate::jobs::JobRun;

impl fmt::Display for JobRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (self.ok, self.complete) {
            (true, _) => "ok",
            (false, true) => "FOUND PROBLEMS",
            (false, false) => "INCOMPLETE",
        };
        writeln!(
            f,
            "job {} (run {}): {verdict} in {:.2} s: {}",
            self.job, self.id, self.seconds, self.summary
        )?;
        let d = &self.detail;
        match self.job.as_str() {
            "reconcile" | crate::jobs::SCOPED_RECONCILE => {
                let scoped = self.job == crate::jobs::SCOPED_RECONCILE;
                if scoped {
                    let orgs: Vec<String> = d["scope"]
                        .as_array()
                        .map(|a| a.iter().map(|o| o.to_string()).collect())
                        .unwrap_or_default();
                    writeln!(
                        f,
                        "  scope        organizations {}: {} chunks checked, {} NOT checked, {} summary rows differ",
                        orgs.join(","),
                        d["checked_chunks"],
                        d["unchecked_chunks"],
                        d["scope_drift_rows"]
                    )?;
                    match d["base_full_run"].as_i64() {
                        Some(id) => writeln!(
                            f,
                            "  the estate, as of full run {id} with the scoped runs since (its coverage is that run's):"
                        )?,
                        None => writeln!(
                            f,
                            "  the estate: no full reconcile has run, so beyond the scope it is unchecked:"
                        )?,
                    }
                }
                if let Some(modes) = d["modes"].as_object() {
                    for (mode, m) in modes {
                        let orgs: Vec<String> = m["organizations"]
                            .as_array()
                            .map(|a| a.iter().map(|o| o.to_string()).collect())
                            .unwrap_or_default();
                        writeln!(
                            f,
                            "  {mode:<12} {} of {} chunks checked, {} summary rows differ{}",
                            m["checked"],
                            m["chunks"],
                            m["drift_rows"],
                            if orgs.is_empty() {
                                String::new()
                            } else {
                                format!("; organizations {}", orgs.join(","))
                            }
                        )?;
                    }
                }
                for c in d["chunks"].as_array().into_iter().flatten() {
                    if c["checked"] == false && !scoped {
                        writeln!(f, "  NOT CHECKED  {} {}", c["mode"], c["chunk"])?;
                    } else if c["drift_rows"].as_i64().unwrap_or(0) > 0 {
                        writeln!(
                            f,
                            "  drift        {} {}: {} rows",
                            c["mode"], c["chunk"], c["drift_rows"]
                        )?;
                    }
                }
            }
            "analyze" => {
                for t in d["analyzed"].as_array().into_iter().flatten() {
                    writeln!(
                        f,
                        "  analyzed  {:<48} {:>8} s  {}",
                        t["table"].as_str().unwrap_or("?"),
                        t["seconds"],
                        t["why"].as_str().unwrap_or("")
                    )?;
                }
                for t in d["left"].as_array().into_iter().flatten() {
                    writeln!(f, "  left      {}", t["table"].as_str().unwrap_or("?"))?;
                }
            }
            "partition-report" => {
                let rows: Vec<Vec<String>> = d["partitions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let s = |k: &str| match &p[k] {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Null => "-".into(),
                            v => v.to_string(),
                        };
                        vec![
                            s("partition"),
                            s("rows"),
                            crate::text::bytes(p["bytes"].as_u64().unwrap_or(0)),
                            s("skew"),
                            s("dead_rows"),
                            s("dead_ratio"),
                            s("analyzed_at"),
                        ]
                    })
                    .collect();
                f.write_str(&crate::text::table(
                    &[
                        "partition",
                        "rows (est.)",
                        "size",
                        "skew",
                        "dead rows",
                        "dead ratio",
                        "analyzed",
                    ],
                    &rows,
                ))?;
            }
            _ => {
                for (k, v) in d.as_object().into_iter().flatten() {
                    writeln!(f, "  {k:<18} {v}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database {}", self.database)?;
        match &self.cron {
            Err(why) => writeln!(f, "pg_cron: {why}")?,
            Ok(s) if s.is_empty() => writeln!(
                f,
                "pg_cron: no rehearse schedule; `rehearse job install` adds them"
            )?,
            Ok(s) => {
                let rows: Vec<Vec<String>> = s
                    .iter()
                    .map(|j| {
                        vec![
                            j.name.clone(),
                            j.schedule.clone(),
                            if j.active { "yes" } else { "no" }.into(),
                            j.runs.to_string(),
                            j.last_start.clone().unwrap_or_else(|| "-".into()),
                            j.last_status.clone().unwrap_or_else(|| "never ran".into()),
                            j.last_message.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                f.write_str(&crate::text::table(
                    &[
                        "pg_cron job",
                        "schedule",
                        "active",
                        "runs",
                        "last start",
                        "last status",
                        "message",
                    ],
                    &rows,
                ))?;
            }
        }
        if self.last_runs.is_empty() {
            writeln!(f, "no job has run here yet")?;
        } else {
            writeln!(f, "last runs (rehearse_job_runs):")?;
            for r in &self.last_runs {
                writeln!(
                    f,
                    "  {:<17} {}  {}  {}",
                    r.job,
                    r.finished_at,
                    match (r.ok, r.complete) {
                        (true, _) => "ok",
                        (false, true) => "FOUND PROBLEMS",
                        (false, false) => "INCOMPLETE",
                    },
                    r.summary
                )?;
            }
        }
        Ok(())
    }
}
