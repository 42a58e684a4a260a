//! `rehearse report <run-dir>`: a run directory turned into charts (SVG and
//! PNG), a self-contained `report.html` with the verdict per budget on top,
//! a `summary.md` for CI job summaries, and `.hgrm` percentile distribution
//! files for HdrHistogram's usual plotters.

pub mod ab;
pub mod capacity;
pub mod charts;
pub mod compare_table;
pub mod contents;
pub mod cutover;
pub mod gate;
pub mod jobs;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::compare;
use crate::error::{Error, IoContext, Result};
use crate::run::histogram::histogram;
use crate::run::{hlog, BudgetOutcome, BudgetResult, RunResult, Sample};
use crate::scenario::Load;
use charts::{Chart, Dash, Marker, Rule, Series, PALETTE};
use contents::{Contents, LeadDrill};

/// Points of a line drawn from a side's interval histograms.
type PointsOf<'a> = dyn Fn(&[Histogram<u64>]) -> Vec<(f64, f64)> + 'a;

/// Line styles per variant, the second cue after colour.
const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];
const MIB: f64 = 1024.0 * 1024.0;

/// What `rehearse report` wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub html: PathBuf,
    pub summary: PathBuf,
    pub charts: Vec<PathBuf>,
    pub hgrm: Vec<PathBuf>,
    pub verdict: String,
    /// For a drill: what its verdict and the workload's each mean, when they differ.
    pub note: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Points of a percentile spectrum (x = 1/(1-q), y = ms), ending at the maximum.
fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .filter(|q| q.quantile_iterated_to() < 1.0)
        .map(|q| {
            (
                1.0 / (1.0 - q.quantile_iterated_to()),
                h.highest_equivalent(q.value_iterated_to()) as f64 / 1e6,
            )
        })
        .collect();
    let right = points.last().map_or(10.0, |p| p.0.max(10.0));
    points.push((right, h.max() as f64 / 1e6));
    points
}

/// Overlay charts of two builds: per variant and operation, both sides'
/// percentile spectra, and their p99 per interval, on one chart each.
pub fn overlay(
    base: &compare::Runs,
    cand: &compare::Runs,
    interval_s: f64,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    Ok(overlay_svgs(base, cand, interval_s, dir)?
        .into_iter()
        .map(|(name, _)| dir.join(format!("{name}.png")))
        .collect())
}

/// [`overlay`], returning each chart's name and SVG text.
fn overlay_svgs(
    base: &compare::Runs,
    cand: &compare::Runs,
    interval_s: f64,
    dir: &Path,
) -> Result<Vec<(String, String)>> {
    let merged = |hs: &[Histogram<u64>]| -> Histogram<u64> {
        let mut h = histogram();
        for x in hs {
            let _ = h.add(x);
        }
        h
    };
    let mut files = Vec::new();
    for (key, c) in cand {
        let Some(b) = base.get(key) else { continue };
        // Several runs of a side: their intervals one after another.
        let (b, c) = (&b.concat(), &c.concat());
        let name = key.replace('/', ".");
        let sides = [
            ("baseline", b, PALETTE[0], Dash::Dashed),
            ("candidate", c, PALETTE[1], Dash::Solid),
        ];
        let mut spectrum = Chart::new(
            format!("{key}: baseline vs candidate"),
            "percentile",
            "response time (ms)",
        );
        spectrum.nines = true;
        spectrum.log_y = true;
        // One line per side, its points from the side's histograms.
        let lines = |points: &PointsOf<'_>| -> Vec<Series> {
            sides
                .iter()
                .map(|(label, hs, color, dash)| Series {
                    label: label.to_string(),
                    color: *color,
                    width: 2,
                    dash: *dash,
                    points: points(hs),
                })
                .collect()
        };
        spectrum.series = lines(&|hs| spectrum_points(&merged(hs)));
        let spectrum_name = format!("overlay-spectrum-{name}");
        let spectrum_svg = charts::render(&spectrum, dir, &spectrum_name)?;
        let mut timeline = Chart::new(
            format!("{key}: p99 per interval, baseline vs candidate"),
            "seconds into the measured part of the run",
            "p99 response time (ms)",
        );
        timeline.log_y = true;
        timeline.series = lines(&|hs| {
            hs.iter()
                .enumerate()
                .map(|(i, h)| {
                    (
                        (i as f64 + 1.0) * interval_s,
                        h.value_at_quantile(0.99) as f64 / 1e6,
                    )
                })
                .collect()
        });
        let timeline_name = format!("overlay-timeline-{name}");
        let timeline_svg = charts::render(&timeline, dir, &timeline_name)?;
        files.push((spectrum_name, spectrum_svg));
        files.push((timeline_name, timeline_svg));
    }
    Ok(files)
}

/// Write the report of the run in `dir`, whatever wrote it.
pub fn report(dir: &Path) -> Result<ReportOutcome> {
    match contents::read(dir)? {
        Contents::Ab(r) => ab::report(dir, &r),
        Contents::Capacity(r) => capacity::report(dir, &r),
        Contents::Run { run, cutover, lead } => run_report(dir, *run, cutover.map(|c| *c), lead),
    }
}

/// The report of a run, and of the drill that ran it, if one did.
fn run_report(
    dir: &Path,
    r: RunResult,
    drill_report: Option<cutover::DrillReport>,
    lead: Option<LeadDrill>,
) -> Result<ReportOutcome> {
    let lead = lead.map(|l| match l {
        LeadDrill::Alerts(a) => Lead {
            name: "alert drill",
            ok: a.ok,
            html: crate::alerts::html(&a),
            markdown: crate::alerts::markdown(&a),
        },
        LeadDrill::Rollout(d) => Lead {
            name: "rollout drill",
            ok: d.ok,
            html: d.html(),
            markdown: d.markdown(),
        },
    });
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

    // 5. A cutover drill: the steps side by side.
    if let Some(d) = &drill_report {
        let name = "drill-steps";
        let svg = charts::render_bars(&cutover::step_bars(d), &chart_dir, name)?;
        svgs.insert(0, (name.to_string(), svg));
    }

    let chart_files: Vec<PathBuf> = svgs
        .iter()
        .flat_map(|(name, _)| ["png", "svg"].map(|ext| chart_dir.join(format!("{name}.{ext}"))))
        .collect();
    let (verdict, note) = match &drill_report {
        Some(d) => (
            format!("{}; workload {}", cutover::verdict(d), verdict_word(&r)),
            cutover::two_verdicts(d, &r),
        ),
        None => match &lead {
            Some(a) => (
                format!(
                    "{} {}; workload {}",
                    a.name,
                    if a.ok { "PASS" } else { "FAIL" },
                    verdict_word(&r)
                ),
                None,
            ),
            None => (verdict_word(&r).to_string(), None),
        },
    };
    let mut summary = summary_md(&r, drill_report.as_ref());
    if let Some(a) = &lead {
        summary = format!("{}\n{summary}", a.markdown);
    }
    let impact = if variants.iter().any(|v| !v.jobs.is_empty()) {
        Some(jobs::impact(dir, &r)?)
    } else {
        None
    };
    if let Some(i) = &impact {
        summary.push_str(&jobs::markdown(&r, i));
    }
    let summary_path = dir.join("summary.md");
    crate::fsutil::write_atomic(&summary_path, summary.as_bytes())?;
    let mut html = html(&r, drill_report.as_ref(), lead.as_ref(), &svgs);
    if let Some(i) = &impact {
        html = html.replace(
            "</body></html>",
            &format!("{}</body></html>", jobs::html(&r, i)),
        );
    }
    let html_path = dir.join("report.html");
    crate::fsutil::write_atomic(&html_path, html.as_bytes())?;
    Ok(ReportOutcome {
        html: html_path,
        summary: summary_path,
        charts: chart_files,
        hgrm: hgrm_files,
        verdict,
        note,
    })
}

/// A short value label for a bar, in ms ("0.84", "12.3") or past a
/// second in seconds ("1.46 s": a thousands separator reads as a decimal
/// point at this size).
fn ms_short(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// An interval's length: "1 s", "0.5 s".
fn secs_label(s: f64) -> String {
    charts::tick_label(s) + " s"
}

/// The errors of an operation: their number, then by kind.
fn errors_cell(o: &crate::run::OpResult) -> String {
    let n = o.count.saturating_sub(o.ok);
    if o.errors.is_empty() {
        return n.to_string();
    }
    let kinds = o
        .errors
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{n} ({kinds})")
}

fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.3} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

/// The verdict of a run as one word.
fn verdict_word(r: &RunResult) -> &'static str {
    use crate::run::Verdict;
    match r.verdict {
        Verdict::Running => "running",
        Verdict::Failed => "failed",
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Invalid => "invalid",
        Verdict::Interrupted => "interrupted",
        Verdict::NotJudged => "measured, not judged",
    }
}

/// One budget as a table row: limit, actual, by how much, and the verdict.
struct BudgetRow<'a> {
    variant: &'a str,
    b: &'a BudgetResult,
    limit: String,
    actual: String,
    by: String,
}

impl BudgetRow<'_> {
    fn mark(&self) -> &'static str {
        match self.b.outcome {
            BudgetOutcome::Pass => "pass",
            BudgetOutcome::Fail => "FAIL",
            BudgetOutcome::Unjudged => "UNJUDGED",
        }
    }
}

fn budget_rows(r: &RunResult) -> Vec<BudgetRow<'_>> {
    let mut rows = Vec::new();
    for v in &r.variants {
        for b in &v.budgets {
            let show = |x: f64| {
                if b.metric == "error_rate" {
                    format!("{:.3}%", x * 100.0)
                } else {
                    ms_label(x)
                }
            };
            let by = match b.actual {
                Some(a) if b.limit > 0.0 => format!("{:+.0}%", (a / b.limit - 1.0) * 100.0),
                _ => "-".into(),
            };
            // The estimate with its interval: what the verdict rests on.
            let actual = match (b.outcome, b.actual) {
                (BudgetOutcome::Unjudged, _) => b.describe(),
                (_, Some(a)) if b.metric == "max" => show(a),
                (_, Some(a)) => format!(
                    "{} [{} to {}]",
                    show(a),
                    b.lower.map_or("0".into(), show),
                    b.upper.map_or("unbounded".into(), show)
                ),
                (_, None) => "-".into(),
            };
            rows.push(BudgetRow {
                variant: &v.variant.name,
                b,
                limit: show(b.limit),
                actual,
                by,
            });
        }
    }
    rows
}

/// Why the run's verdict is what it is, one line per cause (empty on a pass).
fn verdict_reasons(r: &RunResult) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &r.error {
        out.push(format!("the run stopped on an error: {e}"));
    }
    for v in &r.variants {
        for why in &v.validity.reasons {
            out.push(format!("{} is not valid: {why}", v.variant.name));
        }
    }
    let count = |o: BudgetOutcome| {
        r.variants
            .iter()
            .flat_map(|v| v.budgets.iter().map(move |b| (v, b)))
            .filter(|(_, b)| b.outcome == o)
            .map(|(v, b)| format!("{} {} [{}]", b.operation, b.metric, v.variant.name))
            .collect::<Vec<_>>()
    };
    let missed = count(BudgetOutcome::Fail);
    if !missed.is_empty() {
        out.push(format!(
            "{} budget{} missed: {}",
            missed.len(),
            if missed.len() == 1 { "" } else { "s" },
            missed.join(", ")
        ));
    }
    let unjudged = count(BudgetOutcome::Unjudged);
    if !unjudged.is_empty() {
        out.push(format!(
            "{} budget{} could not be judged: {}",
            unjudged.len(),
            if unjudged.len() == 1 { "" } else { "s" },
            unjudged.join(", ")
        ));
    }
    if r.status == crate::run::Status::Interrupted {
        out.push("the run was interrupted: what is shown is what was measured until then".into());
    }
    out
}

fn summary_md(r: &RunResult, d: Option<&cutover::DrillReport>) -> String {
    let mut s = match d {
        Some(d) => format!(
            "## rehearse: {} — {}; workload {}\n\n",
            r.scenario.name,
            cutover::verdict(d),
            verdict_word(r).to_uppercase()
        ),
        None => format!(
            "## rehearse: {} — {}\n\n",
            r.scenario.name,
            verdict_word(r).to_uppercase()
        ),
    };
    let _ = writeln!(
        s,
        "run `{}`, {} (git {}), PostgreSQL {}\n",
        r.run_id, r.started_at, r.environment.git_commit, r.environment.postgres_version
    );
    if let Some(note) = d.and_then(|d| cutover::two_verdicts(d, r)) {
        let _ = writeln!(s, "{note}\n");
    }
    for why in verdict_reasons(r) {
        let _ = writeln!(s, "- **{}**", why.replace('|', "\\|"));
    }
    s.push('\n');
    let rows = budget_rows(r);
    if !rows.is_empty() {
        s += "| | operation | variant | budget | limit | actual | by |\n|---|---|---|---|---|---|---|\n";
        for row in rows {
            let mark = match row.b.outcome {
                BudgetOutcome::Pass => "pass".to_string(),
                _ => format!("**{}**", row.mark()),
            };
            let _ = writeln!(
                s,
                "| {mark} | {} | {} | {} | {} | {} | {} |",
                row.b.operation,
                row.variant,
                row.b.metric,
                row.limit,
                row.actual.replace('|', "\\|"),
                row.by
            );
        }
        s.push('\n');
    }
    s += "| operation | variant | count | rate/s | p50 | p99 | p99.9 | max | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for v in &r.variants {
        for o in &v.operations {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
                o.name,
                v.variant.name,
                o.count,
                o.throughput,
                ms_label(o.response.p50_ms),
                ms_label(o.response.p99_ms),
                ms_label(o.response.p999_ms),
                ms_label(o.response.max_ms),
                errors_cell(o)
            );
        }
    }
    s
}

fn verdict_class(word: &str) -> &'static str {
    match word {
        "pass" => "pass",
        "fail" => "fail",
        _ => "warn",
    }
}

/// A drill whose report leads the page: its name, whether it passed, and
/// its own section (the alert drill, the rollout drill).
pub struct Lead {
    pub name: &'static str,
    pub ok: bool,
    pub html: String,
    pub markdown: String,
}

fn html(
    r: &RunResult,
    d: Option<&cutover::DrillReport>,
    lead: Option<&Lead>,
    svgs: &[(String, String)],
) -> String {
    let verdict = verdict_word(r);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>rehearse: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}}.text{{white-space:normal;text-align:left!important;min-width:18em}}td:first-child,th:first-child{{text-align:left}}\
         .pass{{color:#0a7d3c}}.fail{{color:#c00000;font-weight:bold}}.warn{{color:#a06000;font-weight:bold}}\
         h1 .verdict{{margin-right:.4em}}figure{{margin:1em 0}}svg{{max-width:100%;height:auto}}</style></head><body>",
        name = esc(&r.scenario.name),
    );
    match d {
        Some(d) => {
            let _ = write!(
                h,
                "<h1 id=\"verdict\"><span class=\"verdict {}\">{}</span> cutover drill under {}</h1>\
                 <p>The workload's own verdict: <span class=\"{}\">{}</span>.</p>",
                if d.ok { "pass" } else { "fail" },
                esc(&cutover::verdict(d)),
                esc(&r.scenario.name),
                verdict_class(verdict),
                esc(&verdict.to_uppercase()),
            );
            if let Some(note) = cutover::two_verdicts(d, r) {
                let _ = write!(h, "<p id=\"two-verdicts\">{}</p>", esc(&note));
            }
        }
        None => match lead {
            Some(a) => {
                let _ = write!(
                    h,
                    "<h1 id=\"verdict\"><span class=\"verdict {}\">{} {}</span> under {}</h1>\
                     <p>The workload's own verdict: <span class=\"{}\">{}</span>.</p>",
                    if a.ok { "pass" } else { "fail" },
                    a.name,
                    if a.ok { "PASS" } else { "FAIL" },
                    esc(&r.scenario.name),
                    verdict_class(verdict),
                    esc(&verdict.to_uppercase()),
                );
            }
            None => {
                let _ = write!(
                    h,
                    "<h1 id=\"verdict\"><span class=\"verdict {}\">{}</span> {}</h1>",
                    verdict_class(verdict),
                    esc(&verdict.to_uppercase()),
                    esc(&r.scenario.name),
                );
            }
        },
    }
    let reasons = verdict_reasons(r);
    if !reasons.is_empty() {
        h += "<ul id=\"why\">";
        for why in reasons {
            let _ = write!(h, "<li class=\"fail\">{}</li>", esc(&why));
        }
        h += "</ul>";
    }
    let _ = write!(
        h,
        "<p>run <code>{run}</code>, started {started}, {secs:.0} s; rehearse {ver} (git {git}); PostgreSQL {pg}; {cores} cores</p>",
        run = esc(&r.run_id),
        started = esc(&r.started_at),
        secs = r.seconds,
        ver = esc(&r.environment.rehearse_version),
        git = esc(&r.environment.git_commit),
        pg = esc(&r.environment.postgres_version),
        cores = r.environment.host.cores,
    );
    if let Some(d) = d {
        h += &cutover::html(d);
    }
    if let Some(a) = lead {
        h += &a.html;
    }
    let rows = budget_rows(r);
    if !rows.is_empty() {
        h += "<h2>Budgets</h2><table id=\"budgets\"><tr><th>verdict</th><th>operation</th><th>variant</th><th>budget</th><th>limit</th><th>actual</th><th>by</th></tr>";
        for row in rows {
            let _ = write!(
                h,
                "<tr><td class=\"{c}\">{p}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{wrap}>{}</td><td>{}</td></tr>",
                esc(&row.b.operation),
                esc(row.variant),
                esc(&row.b.metric),
                esc(&row.limit),
                esc(&row.actual),
                esc(&row.by),
                c = if row.b.outcome == BudgetOutcome::Pass { "pass" } else { "fail" },
                p = row.mark(),
                // Why a budget was not judged is a sentence: let it wrap.
                wrap = if row.b.outcome == BudgetOutcome::Unjudged { " class=\"text\"" } else { "" }
            );
        }
        h += "</table>";
    }
    h += "<h2>Operations</h2><table id=\"operations\"><tr><th>operation</th><th>variant</th><th>count</th><th>rate/s</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>late</th></tr>";
    let mut by_op: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for v in &r.variants {
        for (i, o) in v.operations.iter().enumerate() {
            let l = &o.response;
            by_op.entry(i).or_default().push(format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.name),
                esc(&v.variant.name),
                o.count,
                o.throughput,
                ms_label(l.p50_ms),
                ms_label(l.p95_ms),
                ms_label(l.p99_ms),
                ms_label(l.p999_ms),
                ms_label(l.max_ms),
                esc(&errors_cell(o)),
                o.late
            ));
        }
    }
    for rows in by_op.values() {
        h += &rows.concat();
    }
    h += "</table><p>Response time is measured from each request's intended start (open phases); closed phases record service time.</p><h2>Charts</h2>";
    for (name, svg) in svgs {
        let _ = write!(h, "<figure id=\"chart-{}\">{}</figure>", esc(name), svg);
    }
    h += "</body></html>\n";
    h
}
