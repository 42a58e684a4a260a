//! The cutover drill's part of a report: its verdict and which part failed,
//! the steps with their latency against the steady state, the write checks,
//! the verifies, the locks and the trigger race, read from `cutover.json`.

use std::fmt::Write as _;
use std::path::Path;

use super::charts::{self, Bars, Rule};
use super::esc;
pub use crate::cutover::drill::DrillReport;
use crate::cutover::drill::DRILL_REPORT_VERSION;
use crate::error::Result;
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

/// The drill's section of report.html.
pub fn html(d: &DrillReport) -> String {
    let mut h = String::new();
    h += "<h2>Cutover drill steps</h2><table id=\"drill-steps\"><tr><th>step</th><th>at s</th><th>seconds</th><th>requests</th><th>errors</th><th>p50</th><th>p99</th><th>p99.9</th><th>p99 vs steady</th><th class=\"text\">what it did</th></tr>";
    for (l, st) in d.latency.iter().zip(&d.steps) {
        let did = st
            .report
            .as_ref()
            .map(|r| r.summary.clone())
            .unwrap_or_else(|| "the workload ran".into());
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td><td>{} ({:.2}%)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            esc(&l.step),
            l.start_s,
            l.end_s - l.start_s,
            l.requests,
            l.errors,
            l.error_rate * 100.0,
            ms(l.p50_ms),
            ms(l.p99_ms),
            ms(l.p999_ms),
            l.p99_vs_steady.map_or("-".into(), |x| format!("{x:.2}x")),
            esc(&did)
        );
    }
    h += "</table>";

    h += "<h2>Write checks</h2><p>Every write the workload had acknowledged is looked up on the side that was authoritative at the time. Missing, differing and resurrected must all be 0.</p><table id=\"drill-writes\"><tr><th>check</th><th>side</th><th>acknowledged</th><th>checked</th><th>missing</th><th>differing</th><th>resurrected</th><th>unknown outcome</th><th>verdict</th></tr>";
    let checks = d
        .steps
        .iter()
        .filter_map(|s| s.ledger.as_ref().map(|c| (format!("after {}", s.name), c)))
        .chain(d.final_ledger.iter().map(|c| ("final".to_string(), c)));
    let mut any = false;
    for (when, c) in checks {
        any = true;
        let unknown = if c.unknown_resolved {
            format!("{} (judged from the rows)", c.unknown_outcome)
        } else {
            c.unknown_outcome.to_string()
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&when),
            c.side,
            c.acknowledged,
            c.entries_checked,
            c.missing,
            c.differing,
            c.resurrected,
            esc(&unknown),
            if c.ok() { "pass" } else { "fail" },
            if c.ok() { "pass" } else { "FAIL" },
        );
    }
    if !any {
        h += "<tr><td colspan=\"9\" class=\"fail\">no write check was made: the drill's writes are not proven</td></tr>";
    }
    h += "</table>";
    for c in &d.final_ledger {
        if !c.examples.is_empty() {
            let _ = write!(h, "<p>examples on {}:</p><ul>", c.side);
            for e in &c.examples {
                let _ = write!(h, "<li><code>{}</code></li>", esc(e));
            }
            h += "</ul>";
        }
    }

    h += "<h2>Verifies</h2><table id=\"drill-verifies\"><tr><th>step</th><th>verdict</th><th>legacy rows (revenue / expense / summaries)</th><th>partitioned rows</th><th>buckets differing</th><th>seconds</th></tr>";
    for st in &d.steps {
        let Some(v) = st.report.as_ref().and_then(|r| r.verify.as_ref()) else {
            continue;
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{} / {} / {}</td><td>{} / {} / {}</td><td>{}</td><td>{:.1}</td></tr>",
            esc(&st.name),
            if v.ok { "pass" } else { "fail" },
            if v.ok { "match" } else { "DIFFER" },
            v.legacy.revenue,
            v.legacy.expense,
            v.legacy.summaries,
            v.partitioned.revenue,
            v.partitioned.expense,
            v.partitioned.summaries,
            v.mismatching_buckets.len(),
            v.seconds
        );
    }
    h += "</table>";

    let locks: Vec<(&str, &crate::cutover::locks::LockReport)> = d
        .steps
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.report.as_ref()?.locks.as_ref()?)))
        .collect();
    if !locks.is_empty() {
        h += "<h2>Locks</h2><table id=\"drill-locks\"><tr><th>step</th><th>held</th><th>attempts</th><th>lock timeouts</th><th>waited</th><th>backends blocked</th><th>longest block</th></tr>";
        for (name, l) in locks {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                ms(l.held_ms),
                l.attempts,
                l.lock_timeouts,
                ms(l.waited_ms),
                l.blocked_backends,
                ms(l.longest_block_ms)
            );
        }
        h += "</table>";
    }
    for st in &d.steps {
        if let Some(b) = st.report.as_ref().and_then(|r| r.backfill.as_ref()) {
            let _ = write!(
                h,
                "<p>backfill ({}): {} rows at {:.0} rows/s, {} batches; throttled {} times ({} for replica lag, {} for p99), {:.1} s paused{}</p>",
                esc(&st.name),
                b.rows,
                b.rows_per_sec,
                b.batches,
                b.throttled,
                b.throttled_for_lag,
                b.throttled_for_p99,
                b.paused_s,
                if b.complete { "" } else { "; <span class=\"fail\">not complete</span>" }
            );
        }
    }
    h += "<h2>Trigger race</h2>";
    if d.race.is_empty() {
        h += "<p>not run (<code>--race-writers 0</code>)</p>";
    } else {
        h += "<table id=\"drill-race\"><tr><th>triggers</th><th>writers</th><th>writes</th><th>failed writes</th><th>summary rows wrong</th><th>lost updates</th></tr>";
        for r in &d.race {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td></tr>",
                r.variant.name(),
                r.writers,
                r.burst.writes,
                r.burst.failed_writes,
                r.wrong_summary_rows,
                r.summary_rows,
                r.lost_updates
            );
        }
        h += "</table>";
    }
    h
}
