//! The rollout drill's part of a report: its verdict and why, the steps
//! with their checks, and p99 by cohort (the drill's own file is rollout.json).

use crate::render::{Block, Line, Table, Tone};
use crate::rollout::change::ChangeReport;
use crate::rollout::drill::{DrillReport, SpanKind};
use crate::rollout::percent_text;
use crate::run::CohortLatency;
use crate::schema::Mode;

/// The verdict line, and why.
pub fn verdict(d: &DrillReport) -> String {
    format!(
        "rollout drill {} under {}",
        if d.ok { "PASS" } else { "FAIL" },
        d.scenario
    )
}

/// The steps as table rows: at, name, rollout, organizations, checks, verify.
pub fn step_rows(d: &DrillReport) -> Vec<Vec<String>> {
    // Each hold and check follows the transition that made its rollout;
    // the steady baseline follows none.
    let mut last_change: Option<&ChangeReport> = None;
    d.spans
        .iter()
        .filter_map(|s| {
            if s.kind == SpanKind::Transition {
                last_change = s.change.as_ref();
                return None;
            }
            Some((s, last_change))
        })
        .map(|(s, change)| {
            vec![
                format!("{:.1}", s.start_s),
                s.name.clone(),
                percent_text(s.basis_points),
                change.map_or("-".into(), |c| {
                    format!("{} of {}", c.partitioned_after, c.organizations)
                }),
                s.ledger
                    .iter()
                    .map(|l| {
                        format!(
                            "{}: {}/{}/{}",
                            l.side, l.missing, l.differing, l.resurrected
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                s.verify.as_ref().map_or(String::new(), |(ok, v)| {
                    format!("{} {v}", if *ok { "ok" } else { "FAILED" })
                }),
            ]
        })
        .collect()
}

/// The per-cohort p99 rows: for each held step and operation, the
/// legacy and the partitioned cohort side by side.
pub fn cohort_rows(d: &DrillReport) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for s in d
        .spans
        .iter()
        .filter(|s| matches!(s.kind, SpanKind::Steady | SpanKind::Hold))
    {
        let mut ops: Vec<&str> = d
            .cohorts
            .iter()
            .filter(|c| c.span == s.name)
            .map(|c| c.operation.as_str())
            .collect();
        ops.dedup();
        for op in ops {
            let get = |m: Mode| {
                d.cohorts
                    .iter()
                    .find(|c| c.span == s.name && c.operation == op && c.cohort == m)
            };
            let cell = |c: Option<&CohortLatency>| match c {
                Some(c) => (c.requests.to_string(), format!("{:.2}", c.p99_ms)),
                None => ("0".into(), "-".into()),
            };
            let (ln, lp) = cell(get(Mode::Legacy));
            let (pn, pp) = cell(get(Mode::Partitioned));
            let ratio = match (get(Mode::Legacy), get(Mode::Partitioned)) {
                (Some(l), Some(p)) if l.p99_ms > 0.0 && l.requests >= 20 && p.requests >= 20 => {
                    format!("{:.2}x", p.p99_ms / l.p99_ms)
                }
                _ => "-".into(),
            };
            rows.push(vec![s.name.clone(), op.to_string(), ln, lp, pn, pp, ratio]);
        }
    }
    rows
}

/// The drill's section of summary.md and report.html.
pub fn section(d: &DrillReport) -> Block {
    let final_ledger = d
        .final_ledger
        .iter()
        .map(|l| {
            format!(
                "{} {} missing, {} differing, {} resurrected",
                l.side, l.missing, l.differing, l.resurrected
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let final_verify = d.final_verify.as_ref().map_or("none".into(), |(ok, v)| {
        format!("{} ({v})", if *ok { "passed" } else { "FAILED" })
    });
    Block::section(
        "rollout-drill",
        vec![
            Block::heading(2, "Rollout drill"),
            Block::list(d.reasons.iter().map(|r| Line::default().toned(Tone::Fail, r.as_str()))),
            Block::para(format!(
                "Salt {:?}; {} organizations denied. Final check (workload stopped): {final_ledger}. Final verify: {final_verify}.",
                d.salt, d.denied
            )),
            Block::heading(3, "Steps"),
            Table::new(&STEP_HEADER).id("rollout-steps").rows(step_rows(d)).block(),
            Block::heading(3, "p99 by cohort"),
            Block::para(
                "Each request is tagged with the mode whose tables it used; times are from the \
                 intended start (ms). The same step, load and machine for both cohorts.",
            ),
            Table::new(&COHORT_HEADER)
                .id("rollout-cohorts")
                .numeric_from(2)
                .rows(cohort_rows(d))
                .block(),
        ],
    )
}

pub const COHORT_HEADER: [&str; 7] = [
    "step",
    "operation",
    "legacy n",
    "legacy p99 ms",
    "partitioned n",
    "partitioned p99 ms",
    "partitioned/legacy",
];

pub const STEP_HEADER: [&str; 6] = [
    "at s",
    "step",
    "rollout",
    "partitioned organizations",
    "writes checked (missing/differing/resurrected)",
    "verify",
];
