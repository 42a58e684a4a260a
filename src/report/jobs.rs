//! What the scenario's maintenance jobs (`[[job]]`) cost the workload:
//! per variant and operation, p99 over the intervals that overlap a job's
//! window against p99 over the rest, from the interval log's histograms
//! (merged, never averaged).

use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Result;
use crate::render::{Block, Table};
use crate::run::{hlog, RunResult};

/// One operation of one variant, inside and outside the job windows.
#[derive(Debug, Clone, Serialize)]
pub struct JobImpact {
    pub variant: String,
    pub operation: String,
    pub inside_requests: u64,
    pub inside_p99_ms: Option<f64>,
    pub outside_requests: u64,
    pub outside_p99_ms: Option<f64>,
}

pub fn impact(dir: &Path, r: &RunResult) -> Result<Vec<JobImpact>> {
    let interval = r.scenario.interval.0.as_secs_f64().max(1e-3);
    let mut out = Vec::new();
    for v in r.variants.iter().filter(|v| !v.jobs.is_empty()) {
        let name = &v.variant.name;
        for op in r.scenario.mix.iter().map(|m| &m.name) {
            let tag = format!("{name}/{op}/response");
            let (mut inside, mut outside) = (
                crate::run::histogram::histogram::<u64>(),
                crate::run::histogram::histogram::<u64>(),
            );
            hlog::for_each(
                &dir.join("latency.hlog"),
                |t| t == tag,
                |_, start, ih| {
                    let t = start - v.started_s;
                    if t + interval / 2.0 < v.warmup_s {
                        return Ok(());
                    }
                    let during = v
                        .jobs
                        .iter()
                        .any(|w| t < w.end_s.max(w.start_s + 1e-3) && t + interval > w.start_s);
                    let h = if during { &mut inside } else { &mut outside };
                    let _ = h.add(&ih);
                    Ok(())
                },
            )?;
            let p99 = |h: &Histogram<u64>| {
                (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1e6)
            };
            out.push(JobImpact {
                variant: name.clone(),
                operation: op.clone(),
                inside_requests: inside.len(),
                inside_p99_ms: p99(&inside),
                outside_requests: outside.len(),
                outside_p99_ms: p99(&outside),
            });
        }
    }
    Ok(out)
}

fn rows(r: &RunResult, impact: &[JobImpact]) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let ms = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}"));
    let windows = r
        .variants
        .iter()
        .flat_map(|v| {
            v.jobs.iter().map(move |w| {
                vec![
                    v.variant.name.clone(),
                    w.job.clone(),
                    format!("{:.1}", w.start_s),
                    format!("{:.2}", w.end_s - w.start_s),
                    w.exit_code.to_string(),
                    w.summary.clone(),
                ]
            })
        })
        .collect();
    let table = impact
        .iter()
        .map(|i| {
            vec![
                i.variant.clone(),
                i.operation.clone(),
                i.inside_requests.to_string(),
                ms(i.inside_p99_ms),
                i.outside_requests.to_string(),
                ms(i.outside_p99_ms),
                match (i.inside_p99_ms, i.outside_p99_ms) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    (windows, table)
}

const WINDOW_HEADER: [&str; 6] = ["variant", "job", "at s", "seconds", "exit", "what it did"];
const IMPACT_HEADER: [&str; 7] = [
    "variant",
    "operation",
    "requests during jobs",
    "p99 ms during jobs",
    "requests otherwise",
    "p99 ms otherwise",
    "during/otherwise",
];

/// The jobs' section of a run's report.
pub fn section(r: &RunResult, impact: &[JobImpact]) -> Block {
    let (windows, rows) = rows(r, impact);
    Block::section(
        "jobs",
        vec![
            Block::heading(2, "Maintenance jobs"),
            Table::new(&WINDOW_HEADER)
                .id("job-windows")
                .numeric_from(2)
                .wrap(5)
                .rows(windows)
                .block(),
            Block::heading(3, "p99 during the jobs' windows and otherwise"),
            Block::para(
                "Intervals that overlap a job's window against the rest, warm-up left out: \
                 what running the job beside the workload costs.",
            ),
            Table::new(&IMPACT_HEADER)
                .id("job-impact")
                .numeric_from(2)
                .rows(rows)
                .block(),
        ],
    )
}
