//! The charts of a run's report: each operation's percentile spectrum
//! against its budgets, the variants side by side, latency and throughput
//! over time, the database panels, and a cutover drill's steps; and the
//! `.hgrm` files of the spectra, for HdrHistogram's usual plotters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::overlay::spectrum_points;
use super::{cutover, ms_label, ms_short, secs_label, DASHES};
use crate::error::{Error, IoContext, Result};
use crate::render::charts::{self, Chart, Dash, Marker, Rule, Series, PALETTE};
use crate::run::histogram::histogram;
use crate::run::{hlog, BudgetOutcome, RunResult, Sample};
use crate::scenario::Load;

const MIB: f64 = 1024.0 * 1024.0;

/// Draw the run's charts into `dir/charts` (SVG and PNG) and its spectra
/// into `dir/hgrm`: each chart's name and SVG, first, and the .hgrm files.
pub(super) fn draw(
    dir: &Path,
    r: &RunResult,
    drill_report: Option<&cutover::DrillReport>,
) -> Result<(Vec<(String, String)>, Vec<PathBuf>)> {
    let chart_dir = dir.join("charts");
    let hgrm_dir = dir.join("hgrm");
    std::fs::create_dir_all(&hgrm_dir).io("creating", &hgrm_dir)?;
    let variants = &r.variants;
    let mix: Vec<String> = r.scenario.mix.iter().map(|m| m.name.clone()).collect();
    let interval = r.scenario.interval.0.as_secs_f64().max(1e-3);
    let phases = &r.scenario.phases;
    let mut bounds = Vec::new();
    let mut t = 0.0;
    for p in phases {
        bounds.push((t, format!(" {}", p.name)));
        t += p.duration.0.as_secs_f64();
    }
    // A run with markers (the cutover drill's steps) shows them instead.
    if !r.markers.is_empty() {
        bounds = r
            .markers
            .iter()
            .map(|m| (m.start_s, format!(" {}", m.name)))
            .collect();
    }
    // The maintenance jobs' windows (of the first variant that ran any):
    // a line at each start, with the job and how long it took.
    if let Some(v) = variants.iter().find(|v| !v.jobs.is_empty()) {
        bounds.extend(v.jobs.iter().map(|w| {
            (
                w.start_s,
                format!(" {} {:.1} s", w.job, w.end_s - w.start_s),
            )
        }));
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    // The last interval of a variant is cut short by its end: not a rate.
    let scheduled = t;
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let mut svgs: Vec<(String, String)> = Vec::new();
    let mut hgrm_files = Vec::new();
    let add = |name: &str, c: &Chart, svgs: &mut Vec<(String, String)>| -> Result<()> {
        let svg = charts::render(c, &chart_dir, name)?;
        svgs.push((name.to_string(), svg));
        Ok(())
    };

    // Each variant's response histograms merged per operation, its warm-up
    // left out, read one interval at a time.
    let mut measured: BTreeMap<String, (f64, Histogram<u64>)> = variants
        .iter()
        .flat_map(|v| {
            let name = v.variant.name.clone();
            let from = v.started_s + v.warmup_s;
            mix.iter()
                .map(move |op| (format!("{name}/{op}/response"), (from, histogram())))
        })
        .collect();
    let wanted: std::collections::BTreeSet<String> = measured.keys().cloned().collect();
    hlog::for_each(
        &dir.join("latency.hlog"),
        |tag| wanted.contains(tag),
        |tag, start, ih| {
            let (from, h) = measured.get_mut(tag).expect("kept tags are measured");
            // Log timestamps have millisecond precision; intervals start
            // on the variant's own grid, so half an interval is slack enough.
            if start >= *from - interval / 2.0 {
                h.add(&ih)
                    .map_err(|e| Error::Lab(format!("merging histograms of {tag}: {e:?}")))?;
            }
            Ok(())
        },
    )?;

    // Each budget's verdict across the variants: met only when every
    // variant met it; unjudged (and so not met) when any could not be judged.
    let budget_state = |op: &str, key: &str| -> (&'static str, plotters::style::RGBColor) {
        let outcomes: Vec<BudgetOutcome> = variants
            .iter()
            .flat_map(|v| &v.budgets)
            .filter(|x| x.operation == op && x.metric == key)
            .map(|x| x.outcome)
            .collect();
        if outcomes.contains(&BudgetOutcome::Fail) {
            ("missed", charts::MISSED)
        } else if outcomes.is_empty() || outcomes.contains(&BudgetOutcome::Unjudged) {
            ("unjudged", charts::MISSED)
        } else {
            ("met", charts::MET)
        }
    };

    // 1. Percentile spectrum per operation, one line per variant, budgets as markers.
    for op in &mix {
        let mut chart = Chart::new(
            format!("{op}: response time by percentile"),
            "percentile",
            "response time (ms)",
        );
        chart.nines = true;
        chart.log_y = true;
        let mut right = 10.0f64;
        for (vi, v) in variants.iter().enumerate() {
            let name = v.variant.name.as_str();
            let h = measured
                .remove(&format!("{name}/{op}/response"))
                .map(|(_, h)| h)
                .unwrap_or_else(histogram);
            let path = hgrm_dir.join(format!("{name}.{op}.response.hgrm"));
            crate::fsutil::write_atomic(&path, hlog::hgrm(&h).as_bytes())?;
            hgrm_files.push(path);
            if h.is_empty() {
                continue;
            }
            let points = spectrum_points(&h);
            right = points.iter().map(|p| p.0).fold(right, f64::max);
            chart.series.push(Series {
                label: name.to_string(),
                color: color(vi),
                width: 2,
                dash: DASHES[vi % DASHES.len()],
                points,
            });
        }
        if let Some(b) = r.scenario.budgets.get(op) {
            for (key, q, limit) in b.limits() {
                let limit = limit.0.as_secs_f64() * 1e3;
                let (word, _) = budget_state(op, key);
                let x = if q < 1.0 { 1.0 / (1.0 - q) } else { right };
                chart.markers.push(Marker {
                    label: format!("{key} budget {} ({word})", ms_label(limit)),
                    at: (x, limit),
                    pass: word == "met",
                });
            }
        }
        add(&format!("spectrum-{op}"), &chart, &mut svgs)?;
    }

    // Variants side by side: p50 and p99 of every operation, with the budgets.
    type Figure = fn(&crate::run::Latency) -> f64;
    let figures: [(Figure, &str); 2] = [(|l| l.p50_ms, "p50"), (|l| l.p99_ms, "p99")];
    for (pick, label) in figures {
        let mut rules = Vec::new();
        for (i, op) in mix.iter().enumerate() {
            let Some(b) = r.scenario.budgets.get(op) else {
                continue;
            };
            for (key, _, limit) in b.limits() {
                if key == label {
                    let (word, c) = budget_state(op, key);
                    rules.push((
                        Some(i),
                        Rule {
                            label: format!("{label} budget ({word})"),
                            y: limit.0.as_secs_f64() * 1e3,
                            color: c,
                        },
                    ));
                }
            }
        }
        let bars = charts::Bars {
            title: format!("variants side by side: {label} response time per operation"),
            y_desc: format!("{label} response time (ms)"),
            categories: mix.clone(),
            groups: variants
                .iter()
                .map(|v| {
                    (
                        v.variant.name.clone(),
                        v.operations.iter().map(|o| pick(&o.response)).collect(),
                    )
                })
                .collect(),
            rules,
            value: ms_short,
        };
        let name = format!("variants-{label}");
        let svg = charts::render_bars(&bars, &chart_dir, &name)?;
        svgs.push((name, svg));
    }

    // 2. Latency over time per operation: p50, p99 and max per interval,
    // with the operation's budgets as lines.
    for op in &mix {
        let mut chart = Chart::new(
            format!("{op}: latency per {} interval", secs_label(interval)),
            "seconds into the variant",
            "response time (ms)",
        );
        chart.log_y = true;
        chart.bounds = bounds.clone();
        for (vi, v) in variants.iter().enumerate() {
            let name = v.variant.name.as_str();
            let pick = |key: fn(&crate::run::histogram::IntervalOp) -> f64| -> Vec<(f64, f64)> {
                v.timeline
                    .iter()
                    .filter_map(|i| {
                        let o = i.ops.iter().find(|o| &o.op == op)?;
                        (o.count > 0).then(|| (i.t + interval, key(o)))
                    })
                    .collect()
            };
            type Pick = fn(&crate::run::histogram::IntervalOp) -> f64;
            let lines: [(Pick, &str, u32, Dash); 3] = [
                (|o| o.p50_ms, "p50", 1, Dash::Dashed),
                (|o| o.p99_ms, "p99", 2, Dash::Solid),
                (|o| o.max_ms, "max", 2, Dash::Dotted),
            ];
            for (k, (key, label, width, dash)) in lines.into_iter().enumerate() {
                chart.series.push(Series {
                    label: format!("{name} {label}"),
                    color: color(vi * 3 + k),
                    width,
                    dash,
                    points: pick(key),
                });
            }
        }
        if let Some(b) = r.scenario.budgets.get(op) {
            for (key, _, limit) in b.limits() {
                let (word, c) = budget_state(op, key);
                let limit = limit.0.as_secs_f64() * 1e3;
                chart.rules.push(Rule {
                    label: format!("{key} budget {} ({word}, over the run)", ms_label(limit)),
                    y: limit,
                    color: c,
                });
            }
        }
        add(&format!("timeline-{op}"), &chart, &mut svgs)?;
    }

    // 3. Throughput over time: achieved vs target, errors per interval.
    let mut chart = Chart::new(
        "throughput: achieved vs target",
        "seconds into the variant",
        "requests per second",
    );
    chart.bounds = bounds.clone();
    let mut target = Vec::new();
    let mut t = 0.0;
    for p in phases {
        let d = p.duration.0.as_secs_f64();
        if let Load::Open { rate, ramp_to, .. } = p.load {
            target.push((t, rate));
            target.push((t + d, ramp_to));
        }
        t += d;
    }
    if !target.is_empty() {
        chart.series.push(Series {
            label: "target".into(),
            color: PALETTE[6],
            width: 1,
            dash: Dash::Dashed,
            points: target,
        });
    }
    for (vi, v) in variants.iter().enumerate() {
        let name = v.variant.name.as_str();
        let (mut done, mut errs) = (Vec::new(), Vec::new());
        for i in &v.timeline {
            if i.t + interval > scheduled + 1e-6 {
                continue;
            }
            let n: u64 = i.ops.iter().map(|o| o.count + o.errors).sum();
            let e: u64 = i.ops.iter().map(|o| o.errors).sum();
            done.push((i.t + interval / 2.0, n as f64 / interval));
            errs.push((i.t + interval / 2.0, e as f64 / interval));
        }
        chart.series.push(Series {
            label: format!("{name} achieved"),
            color: color(vi),
            width: 2,
            dash: DASHES[vi % DASHES.len()],
            points: done,
        });
        if errs.iter().any(|p| p.1 > 0.0) {
            chart.series.push(Series {
                label: format!("{name} errors"),
                color: color(vi + 3),
                width: 2,
                dash: Dash::Dotted,
                points: errs,
            });
        }
    }
    add("throughput", &chart, &mut svgs)?;

    // 4. Database panels, from the samples, in the units people read.
    let most_lag = variants
        .iter()
        .flat_map(|v| &v.database.samples)
        .filter_map(|s| s.replica_lag_bytes)
        .max()
        .unwrap_or(0) as f64;
    let (lag_div, lag_unit) = if most_lag >= MIB {
        (MIB, "MiB")
    } else {
        (1024.0, "KiB")
    };
    type Pick = fn(&Sample, f64, f64) -> Option<f64>;
    let lag_desc = format!("replay lag ({lag_unit})");
    let panels: [(&str, &str, &str, Pick); 5] = [
        (
            "db-cache",
            "Redis cache hit ratio",
            "hit ratio (%)",
            |s, _, _| {
                let (h, m) = (s.cache_hits as f64, s.cache_misses as f64);
                (h + m > 0.0).then(|| 100.0 * h / (h + m))
            },
        ),
        ("db-lag", "replica replay lag", &lag_desc, |s, _, div| {
            s.replica_lag_bytes.map(|b| b as f64 / div)
        }),
        (
            "db-reads-replica",
            "reads served by the replica",
            "reads per second",
            |s, dt, _| Some(s.reads_replica as f64 / dt),
        ),
        (
            "db-reads-primary",
            "reads served by the primary",
            "reads per second",
            |s, dt, _| Some(s.reads_primary as f64 / dt),
        ),
        (
            "db-pgbouncer",
            "PgBouncer clients waiting",
            "clients waiting",
            |s, _, _| s.pgbouncer.as_ref().map(|p| p.cl_waiting as f64),
        ),
    ];
    for (file, title, y, pick) in panels {
        let mut chart = Chart::new(title, "seconds into the variant", y);
        chart.bounds = bounds.clone();
        chart.series = variants
            .iter()
            .enumerate()
            .map(|(vi, v)| Series {
                label: v.variant.name.clone(),
                color: color(vi),
                width: 2,
                dash: DASHES[vi % DASHES.len()],
                points: v
                    .database
                    .samples
                    .iter()
                    .filter_map(|s| pick(s, interval, lag_div).map(|y| (s.t, y)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if chart.series.is_empty() {
            continue;
        }
        add(file, &chart, &mut svgs)?;
    }

    // 5. Where each operation's server time went, per variant.
    if let Some(named) = super::attribution::chart(dir, r)? {
        svgs.push(named);
    }

    // 6. A cutover drill: the steps side by side.
    if let Some(d) = drill_report {
        let name = "drill-steps";
        let svg = charts::render_bars(&cutover::step_bars(d), &chart_dir, name)?;
        svgs.insert(0, (name.to_string(), svg));
    }

    Ok((svgs, hgrm_files))
}
