//! Legacy against partitioned, per operation, from the same run: the two
//! variants of a suite scenario ran on one schedule and one seed, one after
//! the other. For p50, p99 and throughput, the ratio partitioned/legacy with
//! its interval from `compare`'s two-level block bootstrap, and a verdict.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compare::{self, CompareSettings, Finding};
use crate::error::Result;
use crate::run::RunResult;
use crate::schema::Mode;

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
                    why: (row.change == Finding::Regression && row.metric != "throughput")
                        .then(|| {
                            crate::report::attribution::why_slower(r, &legacy, &partitioned, &op)
                        })
                        .flatten(),
                });
            }
        }
    }
    Ok(out)
}
