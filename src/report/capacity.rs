//! The pages of a capacity search: its charts (per operation, p50 and p99
//! against the offered rate with the budget lines and each variant's knee;
//! achieved against offered), summary.md and report.html. The search itself
//! (`capacity/`) renders nothing.

use std::path::Path;

use super::ReportOutcome;
use crate::capacity::search::End;
use crate::capacity::CapacityReport;
use crate::error::Result;
use crate::render::charts::{self, Chart, Dash, Rule, Series, PALETTE};
use crate::render::{Block, Doc};
use crate::run::VariantResult;

/// The capacity charts: per operation, p50 and p99 against the offered
/// rate with the budget lines and each variant's knee; and achieved against
/// offered. Read from the probes' run.json files. Returns the chart names.
pub fn charts(dir: &Path, r: &CapacityReport) -> Result<Vec<(String, String)>> {
    let chart_dir = dir.join("charts");
    // (variant index, offered rate, the probe's variant result)
    let mut points: Vec<(usize, f64, VariantResult)> = Vec::new();
    for (i, v) in r.variants.iter().enumerate() {
        for (p, run) in v.found.probes.iter().zip(&v.runs) {
            if let Ok(res) = crate::run::read(Path::new(run)) {
                if let Some(vr) = res.variants.into_iter().next() {
                    points.push((i, p.rate, vr));
                }
            }
        }
    }
    // One point per rate: the trial that decided it (the last one run), so
    // a rate tried twice does not draw a vertical zig-zag.
    points.reverse();
    let mut seen = std::collections::HashSet::new();
    points.retain(|p| seen.insert((p.0, p.1.to_bits())));
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    let budgets = crate::run::read(Path::new(
        r.variants
            .iter()
            .flat_map(|v| v.runs.first())
            .next()
            .map(String::as_str)
            .unwrap_or(""),
    ))
    .ok()
    .map(|x| (x.scenario.budgets, x.scenario.mix));
    let mut out = Vec::new();
    let knees = |c: &mut Chart| {
        for v in &r.variants {
            if let (Some(cap), End::Found | End::AtLeastMax) = (v.found.capacity, v.found.end) {
                c.bounds
                    .push((cap, format!(" {} capacity {cap:.0}/s", v.variant)));
            }
        }
    };
    if let Some((budgets, mix)) = &budgets {
        for op in mix.iter().map(|m| &m.name) {
            let mut c = Chart::new(
                format!("{op}: latency against offered rate"),
                "offered rate (requests/s)",
                "response time (ms)",
            );
            c.log_y = true;
            for (i, v) in r.variants.iter().enumerate() {
                let get = |q: fn(&crate::run::Latency) -> f64| -> Vec<(f64, f64)> {
                    points
                        .iter()
                        .filter(|p| p.0 == i)
                        .filter_map(|p| {
                            p.2.operations
                                .iter()
                                .find(|o| &o.name == op)
                                .map(|o| (p.1, q(&o.response).max(1e-3)))
                        })
                        .collect()
                };
                let color = PALETTE[i % PALETTE.len()];
                c.series.push(Series {
                    label: format!("{} p99", v.variant),
                    color,
                    width: 2,
                    dash: Dash::Solid,
                    points: get(|l| l.p99_ms),
                });
                c.series.push(Series {
                    label: format!("{} p50", v.variant),
                    color,
                    width: 1,
                    dash: Dash::Dashed,
                    points: get(|l| l.p50_ms),
                });
            }
            if let Some(b) = budgets.get(op) {
                for (label, _, limit) in b.limits() {
                    c.rules.push(Rule {
                        label: format!("budget {label} {limit}"),
                        y: limit.0.as_secs_f64() * 1e3,
                        color: charts::MISSED,
                    });
                }
            }
            knees(&mut c);
            c.series.retain(|s| !s.points.is_empty());
            if c.series.is_empty() {
                continue;
            }
            let name = format!("capacity-latency-{op}");
            out.push((name.clone(), charts::render(&c, &chart_dir, &name)?));
        }
    }
    let mut c = Chart::new(
        "achieved against offered rate",
        "offered rate (requests/s)",
        "achieved rate (requests/s)",
    );
    let top = points.iter().map(|p| p.1).fold(0.0, f64::max);
    c.series.push(Series {
        label: "achieved = offered".into(),
        color: charts::GUIDE,
        width: 1,
        dash: Dash::Dotted,
        points: vec![(0.0, 0.0), (top, top)],
    });
    for (i, v) in r.variants.iter().enumerate() {
        c.series.push(Series {
            label: v.variant.clone(),
            color: PALETTE[i % PALETTE.len()],
            width: 2,
            dash: Dash::Solid,
            points: points
                .iter()
                .filter(|p| p.0 == i)
                .map(|p| {
                    (
                        p.1,
                        p.2.phases
                            .iter()
                            .map(|ph| ph.achieved_rate)
                            .fold(0.0, f64::max),
                    )
                })
                .collect(),
        });
    }
    knees(&mut c);
    out.push((
        "capacity-achieved".into(),
        charts::render(&c, &chart_dir, "capacity-achieved")?,
    ));
    Ok(out)
}

/// `rehearse report <capacity dir>`: the charts, summary.md and report.html.
pub fn report(dir: &Path, r: &CapacityReport) -> Result<ReportOutcome> {
    let svgs = charts(dir, r)?;
    let verdict = match r.exit_code {
        0 => "capacity found",
        1 => "capacity FAIL: even --from misses a budget",
        _ => "capacity INVALID: the driver or a probe, not the estate, set the limit",
    };
    let longest = r
        .variants
        .iter()
        .flat_map(|v| v.steps_s.iter().copied())
        .fold(r.step_s, f64::max);
    let mut doc = Doc::new(format!("rehearse capacity: {}", r.scenario));
    doc.push(Block::heading(1, format!("{verdict} under {}", r.scenario)).id("verdict"));
    doc.push(Block::para(format!(
        "Step {:.0} s (longer at low rates where a budget's percentile needs the samples: up to {:.0} s) \
         after a {:.0} s warm-up, resolution {:.0}%, {} trials before a failure counts.",
        r.step_s,
        longest,
        r.warmup_s,
        r.resolution * 100.0,
        r.trials,
    )));
    doc.push(Block::pre(r.table()).id("capacity"));
    let drift = r.drift_lines();
    if !drift.is_empty() {
        doc.push(Block::para(
            "Trials that disagreed (the estate or the machine changed during the search; \
             a scenario that writes grows the estate probe by probe):",
        ));
        doc.push(Block::pre(drift).id("drift"));
    }
    doc.extend(svgs.iter().map(|(name, svg)| Block::Figure {
        name: name.clone(),
        png: format!("charts/{name}.png"),
        svg: svg.clone(),
    }));
    let (summary, html) = crate::render::write_pages(dir, &doc)?;
    Ok(ReportOutcome {
        html,
        summary,
        charts: svgs
            .iter()
            .flat_map(|(n, _)| ["png", "svg"].map(|e| dir.join("charts").join(format!("{n}.{e}"))))
            .collect(),
        hgrm: Vec::new(),
        verdict: verdict.to_string(),
        note: None,
    })
}
