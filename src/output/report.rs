//! `rehearse report` and `rehearse baseline save`: what was written where.

use std::path::Path;

use crate::report::ReportOutcome;

pub fn written(dir: &Path, out: &ReportOutcome) -> String {
    format!(
        "{}: verdict {}\n{}  {}\n  {}\n  {} charts (SVG and PNG) in {}\n  {} .hgrm files in {}\n",
        dir.display(),
        out.verdict,
        out.note
            .as_ref()
            .map(|n| crate::text::wrap(n, 78, "  ") + "\n")
            .unwrap_or_default(),
        out.html.display(),
        out.summary.display(),
        out.charts.len() / 2,
        dir.join("charts").display(),
        out.hgrm.len(),
        dir.join("hgrm").display()
    )
}

pub fn baseline_saved(name: &str, dest: &Path, runs: usize) -> String {
    format!(
        "baseline {name}: run saved to {} ({runs} run{} in the baseline)\n",
        dest.display(),
        if runs == 1 { "" } else { "s" }
    )
}
