//! The workload's latency over each span of a drill (a step, a hold, a
//! fault): its interval histograms merged over the intervals that overlap
//! the span, never averaged, and its requests and errors from the timeline.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Result;
use crate::run::RunResult;

/// Latency and errors of the workload over one step.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLatency {
    pub step: String,
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// p99 over the steady state's p99.
    pub p99_vs_steady: Option<f64>,
}

/// Merge the workload's interval histograms over each span (name, start
/// and end in seconds of the timeline); the first span is the baseline of
/// `p99_vs_steady`.
pub fn span_latency(
    dir: &std::path::Path,
    r: &RunResult,
    steps: &[(String, f64, f64)],
) -> Result<Vec<StepLatency>> {
    let Some(v) = r.variants.first() else {
        return Ok(Vec::new());
    };
    let interval = r.scenario.interval.0.as_secs_f64();
    let offset = v.started_s;
    // Intervals that overlap a step; a step shorter than an interval gets
    // the interval it fell in.
    let overlaps =
        |st: &(String, f64, f64), t: f64| t < st.2.max(st.1 + 1e-3) && t + interval > st.1;
    let mut merged: Vec<Histogram<u64>> = steps
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("bounds are valid"))
        .collect();
    crate::run::hlog::for_each(
        &dir.join("latency.hlog"),
        |tag| tag.ends_with("/response"),
        |_, t, ih| {
            for (st, h) in steps.iter().zip(&mut merged) {
                if overlaps(st, t - offset) {
                    let _ = h.add(&ih);
                }
            }
            Ok(())
        },
    )?;
    let mut out: Vec<StepLatency> = Vec::new();
    for (st, h) in steps.iter().zip(&merged) {
        let (mut requests, mut errors) = (0, 0);
        for i in v.timeline.iter().filter(|i| overlaps(st, i.t)) {
            for o in &i.ops {
                requests += o.count;
                errors += o.errors;
            }
        }
        let q = |x: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(x) as f64 / 1e6
            }
        };
        out.push(StepLatency {
            step: st.0.clone(),
            start_s: st.1,
            end_s: st.2,
            requests,
            errors,
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            p99_vs_steady: None,
        });
    }
    if let Some(base) = out.first().map(|s| s.p99_ms).filter(|p| *p > 0.0) {
        for s in &mut out {
            s.p99_vs_steady = Some(s.p99_ms / base);
        }
    }
    Ok(out)
}
