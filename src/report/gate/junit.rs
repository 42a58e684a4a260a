//! The gate as JUnit XML, for CI systems that show test results.

use std::fmt::Write as _;

use super::{Case, GateOutcome, Outcome};
use crate::render::html::escape;

/// JUnit XML: a test suite each for validity, budgets and compare.
pub fn junit(g: &GateOutcome) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failing = |c: &Case| {
        matches!(c.status, Outcome::Fail | Outcome::Invalid)
            || (c.status == Outcome::Inconclusive && !g.allow_inconclusive)
    };
    let failures = g.cases.iter().filter(|c| failing(c)).count();
    let _ = writeln!(
        out,
        "<testsuites name=\"rehearse gate\" tests=\"{}\" failures=\"{failures}\">",
        g.cases.len()
    );
    for suite in ["validity", "budgets", "compare"] {
        let cases: Vec<&Case> = g.cases.iter().filter(|c| c.suite == suite).collect();
        if cases.is_empty() {
            continue;
        }
        let f = cases.iter().filter(|c| failing(c)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{f}\">",
            cases.len()
        );
        for c in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape(&c.class),
                escape(&c.name)
            );
            match c.status {
                Outcome::Pass => {
                    let _ = writeln!(
                        out,
                        "><system-out>{}</system-out></testcase>",
                        escape(&c.message)
                    );
                }
                // What it is, not "skipped": a failure of its own type, or,
                // accepted by --allow-inconclusive, a case that says so.
                Outcome::Inconclusive if g.allow_inconclusive => {
                    let _ = writeln!(
                        out,
                        "><properties><property name=\"outcome\" value=\"inconclusive\"/></properties><system-out>inconclusive, accepted by --allow-inconclusive: {}</system-out></testcase>",
                        escape(&c.message)
                    );
                }
                Outcome::Inconclusive => {
                    let _ = writeln!(
                        out,
                        "><properties><property name=\"outcome\" value=\"inconclusive\"/></properties><failure type=\"inconclusive\" message=\"{}\"/></testcase>",
                        escape(&c.message)
                    );
                }
                Outcome::Fail | Outcome::Invalid => {
                    let kind = if c.status == Outcome::Invalid {
                        "invalid"
                    } else {
                        "fail"
                    };
                    let _ = writeln!(
                        out,
                        "><failure type=\"{kind}\" message=\"{}\"/></testcase>",
                        escape(&c.message)
                    );
                }
            }
        }
        out += "  </testsuite>\n";
    }
    out += "</testsuites>\n";
    out
}
