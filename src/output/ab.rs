//! `rehearse ab`: the paired verdicts, the slices, and the verdict line.

use std::fmt::Write as _;
use std::path::Path;

use crate::ab::AbReport;
use crate::compare::Finding;

pub fn report(dir: &Path, r: &AbReport) -> crate::Result<String> {
    let mut out = super::compare::render(
        &r.comparisons,
        &r.interval_settings(),
        super::compare::Format::Table,
    )?;
    let order: String = r.slices.iter().map(|x| x.side.to_uppercase()).collect();
    let _ = writeln!(
        out,
        "\n{} slices of {:.0} s in the order {order}; A: {}; B: {}",
        r.slices.len(),
        r.slice_s,
        r.a,
        r.b
    );
    if let Some(d) = &r.design {
        if d.looks() > 1 {
            let _ = writeln!(
                out,
                "sequential: {} of at most {} rounds, stopped by {}; looks from round {}, each at the level {:.4} (alpha {} over them all){}",
                r.rounds,
                d.max_rounds,
                r.stopped,
                d.first_look,
                d.level,
                d.alpha,
                r.budget_s
                    .map_or(String::new(), |b| format!(", budget {b:.0} s"))
            );
        } else {
            let _ = writeln!(
                out,
                "fixed: {} rounds, one look, stopped by {}",
                r.rounds, r.stopped
            );
        }
    }
    if let Some(e) = r.min_effect {
        let _ = writeln!(
            out,
            "min-effect {:.1}%: SAME inside +/-{:.1}%, DIFFERENT beyond {:.1}% and excluding no change",
            e * 100.0,
            e * 100.0,
            e * 50.0
        );
    }
    for x in &r.detectable {
        let _ = writeln!(out, "{}", x.describe(r.design.as_ref()));
    }
    for why in &r.invalid {
        let _ = writeln!(out, "INVALID: {why}");
    }
    for what in &r.one_sided {
        let _ = writeln!(out, "FAIL: {what}");
    }
    let undecided: Vec<String> = r
        .comparisons
        .iter()
        .flat_map(|(k, c)| c.rows.iter().map(move |row| (k, row)))
        .filter(|(_, row)| row.undecided())
        .map(|(k, row)| {
            format!(
                "{} {} x{:.3} ({:.3}-{:.3}): {}",
                crate::compare::key_name(k),
                row.metric,
                row.ratio,
                row.low,
                row.high,
                row.to_decide()
            )
        })
        .collect();
    if !undecided.is_empty() {
        let _ = writeln!(
            out,
            "could not tell, {} of them{}:",
            undecided.len(),
            if r.verdict == "pass" {
                " (accepted by --allow-inconclusive)"
            } else {
                ""
            }
        );
        for u in &undecided {
            let _ = writeln!(out, "  {u}");
        }
    }
    let regressions: Vec<String> = r
        .comparisons
        .iter()
        .flat_map(|(k, c)| c.rows.iter().map(move |row| (k, row)))
        .filter(|(_, row)| row.change == Finding::Regression)
        .map(|(k, row)| format!("{k} {} x{:.3}", row.metric, row.ratio))
        .collect();
    let _ = writeln!(
        out,
        "ab {}{}{} (ab.json and the slices in {}; `rehearse report {}` draws them)",
        r.verdict.to_uppercase(),
        if r.decision.is_empty() {
            String::new()
        } else {
            format!(" [{}]", r.decision)
        },
        if regressions.is_empty() {
            String::new()
        } else {
            format!(": B regressed at {}", regressions.join(", "))
        },
        dir.display(),
        dir.display()
    );
    Ok(out)
}
