//! The alert drill's part of a report, and its own page (alerts-drill.md,
//! and what `rehearse alerts drill` prints): the verdict's reasons, each
//! fault's expected alerts with when they fired and resolved against their
//! deadlines, and what else fired.

use crate::alerts::AlertsReport;
use crate::render::{Block, Cell, Doc, Line, Table, Tone};

fn secs(x: Option<f64>) -> String {
    x.map(|s| format!("{s:.1} s"))
        .unwrap_or_else(|| "never".into())
}

fn pass_word(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The drill's blocks, under whatever heading the page gives them.
fn blocks(r: &AlertsReport) -> Vec<Block> {
    let mut out = vec![Block::list(
        r.reasons
            .iter()
            .map(|why| Line::default().toned(Tone::Fail, why.as_str())),
    )];
    let steady = if r.steady_false_positives.is_empty() {
        Line::from("no alert fired")
    } else {
        Line::default().toned(
            Tone::Fail,
            format!("FIRED {}", r.steady_false_positives.join(", ")),
        )
    };
    let mut line = Line::default()
        .text("Under ")
        .code(r.scenario.as_str())
        .text(format!(
            "; Prometheus {} scraping and evaluating every {} s. Steady period {} s: ",
            r.prometheus, r.scrape_interval_s, r.steady_s
        ));
    line.0.extend(steady.0);
    out.push(Block::para(line.text(".")));
    if !r.standing.is_empty() {
        out.push(Block::para(format!(
            "Standing alerts named with --standing (reported, not judged): {}.",
            r.standing
                .iter()
                .map(|(a, fired)| format!(
                    "{a} ({})",
                    if *fired { "fired" } else { "did not fire" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut t = Table::new(&[
        "fault",
        "expected alert",
        "for",
        "fired after",
        "deadline",
        "resolved after",
        "deadline",
        "result",
    ])
    .id("alert-faults")
    .numeric_from(2)
    .wrap(1);
    t.columns[7].numeric = false;
    for f in &r.faults {
        for a in &f.alerts {
            t.row([
                Cell::from(f.fault.name()),
                Cell::from(a.alert.as_str()),
                Cell::from(format!("{:.0} s", a.for_s)),
                Cell::from(secs(a.fired_after_s)),
                Cell::from(format!("{:.0} s", a.fire_deadline_s)),
                Cell::from(secs(a.resolved_after_s)),
                Cell::from(format!("{:.0} s", a.resolve_deadline_s)),
                Cell::toned(Tone::of(a.ok), if a.ok { "ok" } else { "FAIL" }),
            ]);
        }
    }
    out.push(t.block());
    out.push(Block::list(r.faults.iter().map(|f| {
        let mut l = Line::default()
            .strong(f.fault.name())
            .text(format!(": {}", f.how));
        if !f.also_fired.is_empty() {
            l = l.text(format!(
                "; also fired, as consequences: {}",
                f.also_fired.join(", ")
            ));
        }
        if !f.unexpected.is_empty() {
            l = l.text("; ").toned(
                Tone::Fail,
                format!("UNEXPECTED: {}", f.unexpected.join(", ")),
            );
        }
        if let Some(e) = &f.error {
            l = l.text("; ").toned(Tone::Fail, e.as_str());
        }
        l
    })));
    if let Some(v) = &r.workload_verdict {
        out.push(Block::para(format!(
            "The workload's own verdict (run.json, budgets): {v}."
        )));
    }
    out
}

/// The drill's section of a run's report.
pub fn section(r: &AlertsReport) -> Block {
    let mut b = vec![Block::heading(2, "Alert drill")];
    b.extend(blocks(r));
    Block::section("alert-drill", b)
}

/// The drill's own page: alerts-drill.md, and what the command prints.
pub fn page(r: &AlertsReport) -> Doc {
    let mut d = Doc::new(format!("rehearse alert drill: {}", r.scenario));
    d.push(Block::heading(
        1,
        Line::default()
            .text("Alert drill: ")
            .toned(Tone::of(r.ok), pass_word(r.ok)),
    ));
    d.extend(blocks(r));
    d
}
