//! Legacy against partitioned, per operation, from the same run: the two
//! variants of a suite scenario ran on one schedule and one seed, one after
//! the other. For p50, p99 and throughput, the ratio partitioned/legacy with
//! its interval from `compare`'s two-level block bootstrap, and a verdict;
//! for p50 and p99 of a single-tenant operation, whether the partitioned
//! mode is at parity (within 10%, issue 34). The readiness page and each
//! run's report show them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compare::{self, CompareSettings, Finding};
use crate::error::Result;
use crate::render::{Cell, Table, Tone};
use crate::run::RunResult;
use crate::scenario::Operation;
use crate::schema::Mode;

/// Parity: the partitioned mode's p50 and p99 within this factor of legacy's.
pub const PARITY: f64 = 1.10;

/// The figures the table shows.
const METRICS: [&str; 3] = ["p50", "p99", "throughput"];

/// One figure of one operation: legacy, partitioned, their ratio.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModeRow {
    pub scenario: String,
    /// The variant pair, when a run held more than one ("replica-cache").
    pub pair: String,
    pub operation: String,
    pub metric: String,
    pub legacy: f64,
    pub partitioned: f64,
    /// partitioned / legacy, with its interval at 1 − alpha.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    /// faster, slower, no difference within the floor, or inconclusive.
    pub verdict: String,
    pub note: Option<String>,
    /// Where partitioned's extra server time went, from the run's
    /// attribution, when the latency is slower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// For p50 and p99: `met` when the interval's upper end is within
    /// PARITY, `missed` when its lower end is beyond it, `undecided`
    /// otherwise; `budget, not parity` for a cross-tenant operation, `not
    /// judged` for raw SQL (its tenancy is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<String>,
}

/// Whether a p50 or p99 row is at parity (see ModeRow::parity).
pub fn parity(metric: &str, op: Option<Operation>, low: f64, high: f64) -> Option<&'static str> {
    if !matches!(metric, "p50" | "p99") {
        return None;
    }
    Some(match op {
        Some(Operation::Portfolio) => "budget, not parity",
        Some(Operation::Sql) | None => "not judged",
        Some(_) if high <= PARITY => "met",
        Some(_) if low > PARITY => "missed",
        Some(_) => "undecided",
    })
}

/// Counts of a set of rows' parity words, for a one-line summary.
pub fn parity_summary(rows: &[ModeRow]) -> Option<String> {
    let count = |w: &str| {
        rows.iter()
            .filter(|m| m.parity.as_deref() == Some(w))
            .count()
    };
    let (met, missed, undecided) = (count("met"), count("missed"), count("undecided"));
    let n = met + missed + undecided;
    (n > 0).then(|| {
        format!(
            "Parity (the partitioned p50 and p99 within {:.0}% of legacy's, single-tenant operations): \
             met for {met} of {n} figures, missed for {missed}, undecided for {undecided} (the interval straddles {PARITY:.2}x).",
            (PARITY - 1.0) * 100.0
        )
    })
}

/// What a finding means with partitioned as the candidate. Throughput's
/// regression is less throughput: the mode is slower there too.
fn word(f: Finding) -> &'static str {
    match f {
        Finding::Regression => "slower",
        Finding::Improvement => "faster",
        Finding::NoChange | Finding::BelowMinAbs => "no difference within the floor",
        Finding::Contradictory => "contradictory",
        Finding::Inconclusive => "inconclusive",
    }
}

/// Each legacy variant paired with the partitioned variant that differs
/// from it only in its mode.
fn pairs(r: &RunResult) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for l in r.variants.iter().filter(|v| v.variant.mode == Mode::Legacy) {
        let p = r.variants.iter().find(|p| {
            let (a, b) = (&l.variant, &p.variant);
            b.mode == Mode::Partitioned
                && a.reads == b.reads
                && a.cache == b.cache
                && a.pool == b.pool
        });
        if let Some(p) = p {
            let label = l
                .variant
                .name
                .strip_prefix("legacy")
                .unwrap_or(&l.variant.name)
                .trim_start_matches('-')
                .to_string();
            out.push((label, l.variant.name.clone(), p.variant.name.clone()));
        }
    }
    out
}

/// The rows of one run directory.
pub fn rows(dir: &Path, r: &RunResult, s: &CompareSettings) -> Result<Vec<ModeRow>> {
    let pairs = pairs(r);
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let (intervals, interval_s) = compare::run_intervals(dir)?;
    let mut out = Vec::new();
    for (label, legacy, partitioned) in pairs {
        let ops = r
            .variants
            .iter()
            .find(|v| v.variant.name == legacy)
            .map(|v| {
                v.operations
                    .iter()
                    .map(|o| o.name.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for op in ops {
            let kind = r
                .scenario
                .mix
                .iter()
                .find(|m| m.name == op)
                .map(|m| m.operation);
            let (Some(a), Some(b)) = (
                intervals.get(&format!("{legacy}/{op}")),
                intervals.get(&format!("{partitioned}/{op}")),
            ) else {
                continue;
            };
            if a.is_empty() || b.is_empty() {
                continue;
            }
            let c = compare::compare(&[a.clone()], &[b.clone()], interval_s, s);
            for row in c
                .rows
                .iter()
                .filter(|x| METRICS.contains(&x.metric.as_str()))
            {
                out.push(ModeRow {
                    scenario: r.scenario.name.clone(),
                    pair: label.clone(),
                    operation: op.clone(),
                    metric: row.metric.clone(),
                    legacy: row.baseline,
                    partitioned: row.candidate,
                    ratio: row.ratio,
                    low: row.low,
                    high: row.high,
                    verdict: word(row.change).to_string(),
                    note: row.note.clone(),
                    why: (row.metric != "throughput"
                        && (row.change == Finding::Regression || row.ratio > PARITY))
                        .then(|| {
                            crate::report::attribution::why_slower(r, &legacy, &partitioned, &op)
                        })
                        .flatten(),
                    parity: parity(&row.metric, kind, row.low, row.high).map(str::to_string),
                });
            }
        }
    }
    Ok(out)
}

/// The rows as a table: each figure's legacy and partitioned value, their
/// ratio and interval, the verdict, parity, and why partitioned took longer
/// where the attribution says. `scenario`: a column naming each row's run.
pub fn table(rows: &[ModeRow], scenario: bool) -> Table {
    let mut head = vec![
        "operation",
        "figure",
        "legacy",
        "partitioned",
        "ratio (99% interval)",
        "verdict; parity (within 10%); why",
    ];
    if scenario {
        head.insert(0, "scenario");
    }
    let first_numeric = if scenario { 3 } else { 2 };
    let mut t = Table::new(&head)
        .id("modes-table")
        .numeric_from(first_numeric)
        .wrap(head.len() - 1);
    for m in rows {
        let unit = |x: f64| {
            if m.metric == "throughput" {
                format!("{x:.1}/s")
            } else {
                crate::text::duration_ms(x)
            }
        };
        let verdict_tone = match m.verdict.as_str() {
            "slower" if m.metric != "throughput" => Some(Tone::Fail),
            "faster" => Some(Tone::Pass),
            _ => None,
        };
        let mut verdict = match &m.note {
            Some(n) => format!("{} ({n})", m.verdict),
            None => m.verdict.clone(),
        };
        // Parity rides in the verdict's cell: a column of its own made the
        // readiness table overflow 1300 px.
        if let Some(p) = &m.parity {
            verdict.push_str(&format!("; parity {p}"));
        }
        if let Some(w) = &m.why {
            verdict.push_str(&format!("; {w}"));
        }
        let verdict_tone = match m.parity.as_deref() {
            Some("missed") => Some(Tone::Fail),
            _ => verdict_tone,
        };
        let mut row = vec![
            Cell::from(m.operation.as_str()),
            Cell::from(m.metric.as_str()),
            Cell::from(unit(m.legacy)),
            Cell::from(unit(m.partitioned)),
            Cell::from(format!("{:.2}x ({:.2}-{:.2})", m.ratio, m.low, m.high)),
            Cell {
                text: verdict,
                tone: verdict_tone,
                wrap: true,
            },
        ];
        if scenario {
            row.insert(
                0,
                Cell::from(if m.pair.is_empty() {
                    m.scenario.clone()
                } else {
                    format!("{} [{}]", m.scenario, m.pair)
                }),
            );
        } else if !m.pair.is_empty() {
            row[0] = Cell::from(format!("{} [{}]", m.operation, m.pair));
        }
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_is_decided_by_the_interval_against_ten_percent() {
        let op = Some(Operation::Ledger);
        assert_eq!(parity("p50", op, 0.95, 1.10), Some("met"));
        assert_eq!(parity("p99", op, 0.80, 1.11), Some("undecided"));
        assert_eq!(parity("p50", op, 1.11, 1.40), Some("missed"));
        // A point estimate within 10% is not parity when its interval is wide.
        assert_eq!(parity("p50", op, 0.70, 1.40), Some("undecided"));
        assert_eq!(parity("throughput", op, 0.95, 1.05), None);
        assert_eq!(
            parity("p99", Some(Operation::Portfolio), 1.5, 2.0),
            Some("budget, not parity")
        );
        assert_eq!(
            parity("p50", Some(Operation::Sql), 0.9, 1.0),
            Some("not judged")
        );
        assert_eq!(parity("p50", None, 0.9, 1.0), Some("not judged"));
    }

    #[test]
    fn the_summary_counts_only_judged_figures() {
        let row = |p: Option<&str>| ModeRow {
            scenario: "s".into(),
            pair: String::new(),
            operation: "ledger".into(),
            metric: "p50".into(),
            legacy: 1.0,
            partitioned: 1.0,
            ratio: 1.0,
            low: 0.9,
            high: 1.1,
            verdict: "no difference within the floor".into(),
            note: None,
            why: None,
            parity: p.map(str::to_string),
        };
        assert_eq!(
            parity_summary(&[row(None), row(Some("budget, not parity"))]),
            None
        );
        let s = parity_summary(&[
            row(Some("met")),
            row(Some("missed")),
            row(Some("undecided")),
            row(Some("undecided")),
            row(Some("not judged")),
        ])
        .unwrap();
        assert!(
            s.contains("met for 1 of 4 figures, missed for 1, undecided for 2"),
            "{s}"
        );
    }
}
