//! The cutover drill's part of a report: its verdict and which part failed,
//! the steps with their latency against the steady state, the write checks,
//! the verifies, the locks and the trigger race, read from `cutover.json`.

use std::path::Path;

pub use crate::cutover::drill::DrillReport;
use crate::cutover::drill::DRILL_REPORT_VERSION;
use crate::error::Result;
use crate::render::charts::{self, Bars, Rule};
use crate::render::{Block, Cell, Line, Table, Tone};
use crate::run::{RunResult, Status, Verdict};

/// `dir/cutover.json`, when the run is a drill's.
pub fn read(dir: &Path) -> Result<Option<DrillReport>> {
    crate::fsutil::read_json(&dir.join("cutover.json"), DRILL_REPORT_VERSION)
}

/// The drill's verdict in a few words: PASS, or FAIL with the part that failed.
pub fn verdict(d: &DrillReport) -> String {
    if d.ok {
        "drill PASS".into()
    } else if d.reasons.is_empty() {
        let status = match d.status {
            Status::Running => "did not finish",
            Status::Complete => "completed without a passing check",
            Status::Interrupted => "was interrupted",
            Status::Failed => "stopped on an error",
        };
        format!("drill FAIL: the drill {status}")
    } else {
        format!("drill FAIL: {}", d.reasons.join("; "))
    }
}

/// What the two verdicts of a drill's run mean, when they differ.
pub fn two_verdicts(d: &DrillReport, r: &RunResult) -> Option<String> {
    let workload_ok = r.verdict == Verdict::Pass;
    if d.ok == workload_ok {
        return None;
    }
    let word = super::verdict_word(r);
    Some(format!(
        "The drill's verdict ({}) judges the cutover: every verify matched, no acknowledged write was lost or changed, the triggers lost no update, each step ran in order. \
         The workload's verdict ({}) judges its measurement: whether its latencies may be held against the scenario's budgets (target rate reached, driver not the bottleneck, enough samples per budget, budgets met).",
        if d.ok { "PASS" } else { "FAIL" },
        word.to_uppercase()
    ))
}

fn ms(v: f64) -> String {
    super::ms_label(v)
}

/// The steps' p99 side by side, with the steady state's p99 and the
/// backfill's yield threshold as lines.
pub fn step_bars(d: &DrillReport) -> Bars {
    let mut rules = Vec::new();
    if let Some(steady) = d.latency.first().filter(|s| s.p99_ms > 0.0) {
        rules.push((
            None,
            Rule {
                label: format!("steady-state p99 {}", ms(steady.p99_ms)),
                y: steady.p99_ms,
                color: plotters::style::RGBColor(90, 90, 90),
            },
        ));
    }
    let limit = d
        .steps
        .iter()
        .filter_map(|s| s.report.as_ref()?.backfill.as_ref()?.max_p99_ms)
        .next();
    if let Some(limit) = limit {
        rules.push((
            None,
            Rule {
                label: format!("backfill yields above {}", ms(limit)),
                y: limit,
                color: charts::MISSED,
            },
        ));
    }
    Bars {
        title: "cutover drill: the workload's p99 during each step".into(),
        y_desc: "p99 response time (ms)".into(),
        categories: d.latency.iter().map(|l| l.step.clone()).collect(),
        groups: vec![(
            "p99, all operations".into(),
            d.latency.iter().map(|l| l.p99_ms).collect(),
        )],
        rules,
        value: super::ms_short,
    }
}

/// The drill's section of a run's report.
pub fn section(d: &DrillReport) -> Block {
    let mut b = vec![Block::heading(2, "Cutover drill steps")];
    let mut steps = Table::new(&[
        "step",
        "at s",
        "seconds",
        "requests",
        "errors",
        "p50",
        "p99",
        "p99.9",
        "p99 vs steady",
        "what it did",
    ])
    .id("drill-steps")
    .numeric_from(1)
    .wrap(9);
    for (l, st) in d.latency.iter().zip(&d.steps) {
        let did = st
            .report
            .as_ref()
            .map(|r| r.summary.clone())
            .unwrap_or_else(|| "the workload ran".into());
        steps.row([
            l.step.clone(),
            format!("{:.1}", l.start_s),
            format!("{:.2}", l.end_s - l.start_s),
            l.requests.to_string(),
            format!("{} ({:.2}%)", l.errors, l.error_rate * 100.0),
            ms(l.p50_ms),
            ms(l.p99_ms),
            ms(l.p999_ms),
            l.p99_vs_steady.map_or("-".into(), |x| format!("{x:.2}x")),
            did,
        ]);
    }
    b.push(steps.block());

    b.push(Block::heading(2, "Write checks"));
    b.push(Block::para(
        "Every write the workload had acknowledged is looked up on the side that was authoritative \
         at the time. Missing, differing and resurrected must all be 0.",
    ));
    let mut writes = Table::new(&[
        "check",
        "side",
        "acknowledged",
        "checked",
        "missing",
        "differing",
        "resurrected",
        "unknown outcome",
        "verdict",
    ])
    .id("drill-writes")
    .numeric_from(2);
    writes.columns[8].numeric = false;
    writes.empty = Some(Cell::toned(
        Tone::Fail,
        "no write check was made: the drill's writes are not proven",
    ));
    let checks = d
        .steps
        .iter()
        .filter_map(|s| s.ledger.as_ref().map(|c| (format!("after {}", s.name), c)))
        .chain(d.final_ledger.iter().map(|c| ("final".to_string(), c)));
    for (when, c) in checks {
        let unknown = if c.unknown_resolved {
            format!("{} (judged from the rows)", c.unknown_outcome)
        } else {
            c.unknown_outcome.to_string()
        };
        writes.row([
            Cell::from(when),
            Cell::from(c.side.to_string()),
            Cell::from(c.acknowledged.to_string()),
            Cell::from(c.entries_checked.to_string()),
            Cell::from(c.missing.to_string()),
            Cell::from(c.differing.to_string()),
            Cell::from(c.resurrected.to_string()),
            Cell::from(unknown),
            Cell::toned(Tone::of(c.ok()), if c.ok() { "pass" } else { "FAIL" }),
        ]);
    }
    b.push(writes.block());
    for c in &d.final_ledger {
        if !c.examples.is_empty() {
            b.push(Block::para(format!("examples on {}:", c.side)));
            b.push(Block::list(
                c.examples.iter().map(|e| Line::default().code(e.as_str())),
            ));
        }
    }

    b.push(Block::heading(2, "Verifies"));
    let mut verifies = Table::new(&[
        "step",
        "verdict",
        "legacy rows (revenue / expense / summaries)",
        "partitioned rows",
        "buckets differing",
        "seconds",
    ])
    .id("drill-verifies")
    .numeric_from(2);
    for st in &d.steps {
        let Some(v) = st.report.as_ref().and_then(|r| r.verify.as_ref()) else {
            continue;
        };
        verifies.row([
            Cell::from(st.name.as_str()),
            Cell::toned(Tone::of(v.ok), if v.ok { "match" } else { "DIFFER" }),
            Cell::from(format!(
                "{} / {} / {}",
                v.legacy.revenue, v.legacy.expense, v.legacy.summaries
            )),
            Cell::from(format!(
                "{} / {} / {}",
                v.partitioned.revenue, v.partitioned.expense, v.partitioned.summaries
            )),
            Cell::from(v.mismatching_buckets.len().to_string()),
            Cell::from(format!("{:.1}", v.seconds)),
        ]);
    }
    b.push(verifies.block());

    let locks: Vec<(&str, &crate::cutover::locks::LockReport)> = d
        .steps
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.report.as_ref()?.locks.as_ref()?)))
        .collect();
    if !locks.is_empty() {
        b.push(Block::heading(2, "Locks"));
        let mut t = Table::new(&[
            "step",
            "held",
            "attempts",
            "lock timeouts",
            "waited",
            "backends blocked",
            "longest block",
        ])
        .id("drill-locks")
        .numeric_from(1);
        for (name, l) in locks {
            t.row([
                name.to_string(),
                ms(l.held_ms),
                l.attempts.to_string(),
                l.lock_timeouts.to_string(),
                ms(l.waited_ms),
                l.blocked_backends.to_string(),
                ms(l.longest_block_ms),
            ]);
        }
        b.push(t.block());
    }
    for st in &d.steps {
        if let Some(f) = st.report.as_ref().and_then(|r| r.backfill.as_ref()) {
            let mut line = Line::from(format!(
                "backfill ({}): {} rows at {:.0} rows/s, {} batches; throttled {} times ({} for replica lag, {} for p99), {:.1} s paused",
                st.name,
                f.rows,
                f.rows_per_sec,
                f.batches,
                f.throttled,
                f.throttled_for_lag,
                f.throttled_for_p99,
                f.paused_s,
            ));
            if !f.complete {
                line = line.text("; ").toned(Tone::Fail, "not complete");
            }
            b.push(Block::para(line));
        }
    }
    b.push(Block::heading(2, "Trigger race"));
    if d.race.is_empty() {
        b.push(Block::para(
            Line::default()
                .text("not run (")
                .code("--race-writers 0")
                .text(")"),
        ));
    } else {
        let mut t = Table::new(&[
            "triggers",
            "writers",
            "writes",
            "failed writes",
            "summary rows wrong",
            "lost updates",
        ])
        .id("drill-race")
        .numeric_from(1);
        for r in &d.race {
            t.row([
                r.variant.name().to_string(),
                r.writers.to_string(),
                r.burst.writes.to_string(),
                r.burst.failed_writes.to_string(),
                format!("{} of {}", r.wrong_summary_rows, r.summary_rows),
                r.lost_updates.to_string(),
            ]);
        }
        b.push(t.block());
    }
    Block::section("cutover-drill", b)
}
