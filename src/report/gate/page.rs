//! The gate's page: its verdict, its counts, and every check (gate.md, and
//! what `rehearse gate` prints).

use super::{GateOutcome, Outcome};
use crate::render::{Block, Cell, Doc, Line, Table, Tone};

/// The gate's verdict and every check with its result.
pub fn page(g: &GateOutcome) -> Doc {
    let mut doc = Doc::new(format!("rehearse gate: {}", g.run));
    // The verdict as plain text: CI scripts grep for it.
    doc.push(Block::heading(
        2,
        format!("rehearse gate: {}", g.verdict.to_uppercase()),
    ));
    doc.push(Block::para(Line::default().code(g.run.as_str())));
    let count = |st: Outcome| g.cases.iter().filter(|c| c.status == st).count();
    doc.push(Block::para(format!(
        "{} checks: {} passed, {} failed, {} invalid, {} could not tell{}",
        g.cases.len(),
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Invalid),
        count(Outcome::Inconclusive),
        if g.allow_inconclusive && count(Outcome::Inconclusive) > 0 {
            " (accepted by --allow-inconclusive)"
        } else {
            ""
        }
    )));
    if g.verdict == "nothing judged" {
        doc.push(Block::para(
            "Nothing was judged: the run has no budgets (the scenario's, or --budgets FILE) and no \
             --baseline to compare with. Validity alone is no pass.",
        ));
    }
    let mut t = Table::new(&["", "check", "", "result"]).wrap(3);
    for c in &g.cases {
        let mark = match c.status {
            Outcome::Pass => Cell::toned(Tone::Pass, "pass"),
            Outcome::Fail => Cell::toned(Tone::Fail, "FAIL"),
            Outcome::Invalid => Cell::toned(Tone::Fail, "INVALID"),
            Outcome::Inconclusive if g.allow_inconclusive => {
                Cell::toned(Tone::Warn, "inconclusive (allowed)")
            }
            Outcome::Inconclusive => Cell::toned(Tone::Fail, "COULD NOT TELL"),
        };
        t.row([
            mark,
            Cell::from(c.class.to_string()),
            Cell::from(c.name.as_str()),
            Cell::from(c.message.as_str()),
        ]);
    }
    doc.push(t.block());
    doc
}

/// [`page`] in Markdown: gate.md, and what `rehearse gate` prints.
pub fn markdown(g: &GateOutcome) -> String {
    use crate::render::{Markdown, Renderer as _};
    Markdown.render(&page(g))
}
