//! `rehearse report <run-dir>`: a run directory turned into charts (SVG and
//! PNG), a self-contained `report.html` with the verdict per budget on top,
//! a `summary.md` for CI job summaries, and `.hgrm` percentile distribution
//! files for HdrHistogram's usual plotters.

pub mod ab;
pub mod charts;
pub mod compare;
pub mod gate;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::driver::record::histogram;
use crate::error::{Error, IoContext, Result};
use crate::run::{hlog, BudgetOutcome, BudgetResult, RunResult, Sample};
use crate::scenario::Load;
use charts::{Chart, Marker, Series, PALETTE};

/// What `rehearse report` wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub html: PathBuf,
    pub summary: PathBuf,
    pub charts: Vec<PathBuf>,
    pub hgrm: Vec<PathBuf>,
    pub verdict: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Lighter shade of a colour, for secondary lines.
fn light(c: plotters::style::RGBColor) -> plotters::style::RGBColor {
    let m = |x: u8| (x as u16 + (255 - x as u16) * 55 / 100) as u8;
    plotters::style::RGBColor(m(c.0), m(c.1), m(c.2))
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
        let sides = [("baseline", b, PALETTE[0]), ("candidate", c, PALETTE[1])];
        let spectrum = Chart {
            title: format!("{key}: baseline vs candidate"),
            x_desc: "percentile".into(),
            y_desc: "response time (ms)".into(),
            nines: true,
            log_y: true,
            series: sides
                .iter()
                .map(|(label, hs, color)| Series {
                    label: label.to_string(),
                    color: *color,
                    width: 2,
                    points: spectrum_points(&merged(hs)),
                })
                .collect(),
            markers: Vec::new(),
            bounds: Vec::new(),
        };
        let spectrum_name = format!("overlay-spectrum-{name}");
        let spectrum_svg = charts::render(&spectrum, dir, &spectrum_name)?;
        let timeline = Chart {
            title: format!("{key}: p99 per interval, baseline vs candidate"),
            x_desc: "interval (measured part of the run)".into(),
            y_desc: "p99 response time (ms)".into(),
            nines: false,
            log_y: true,
            series: sides
                .iter()
                .map(|(label, hs, color)| Series {
                    label: label.to_string(),
                    color: *color,
                    width: 2,
                    points: hs
                        .iter()
                        .enumerate()
                        .map(|(i, h)| {
                            (
                                (i as f64 + 1.0) * interval_s,
                                h.value_at_quantile(0.99) as f64 / 1e6,
                            )
                        })
                        .collect(),
                })
                .collect(),
            markers: Vec::new(),
            bounds: Vec::new(),
        };
        let timeline_name = format!("overlay-timeline-{name}");
        let timeline_svg = charts::render(&timeline, dir, &timeline_name)?;
        files.push((spectrum_name, spectrum_svg));
        files.push((timeline_name, timeline_svg));
    }
    Ok(files)
}

/// Write the report of the run in `dir`.
pub fn report(dir: &Path) -> Result<ReportOutcome> {
    if dir.join("ab.json").exists() {
        return ab::report(dir);
    }
    let r = crate::run::read(dir)?;
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

    // 1. Percentile spectrum per operation, one line per variant, budgets as markers.
    for op in &mix {
        let mut series = Vec::new();
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
            series.push(Series {
                label: name.to_string(),
                color: color(vi),
                width: 2,
                points,
            });
        }
        let mut markers = Vec::new();
        if let Some(b) = r.scenario.budgets.get(op) {
            for (key, q, limit) in b.limits() {
                let limit = limit.0.as_secs_f64() * 1e3;
                // Green only when every variant's verdict on it is a pass.
                let pass = variants.iter().all(|v| {
                    v.budgets
                        .iter()
                        .filter(|x| &x.operation == op && x.metric == key)
                        .all(|x| x.outcome == BudgetOutcome::Pass)
                });
                let x = if q < 1.0 { 1.0 / (1.0 - q) } else { right };
                markers.push(Marker {
                    label: format!(" {key} budget {}", ms_label(limit)),
                    at: (x, limit),
                    pass,
                });
            }
        }
        add(
            &format!("spectrum-{op}"),
            &Chart {
                title: format!("{op}: response time by percentile"),
                x_desc: "percentile".into(),
                y_desc: "response time (ms)".into(),
                nines: true,
                log_y: true,
                series,
                markers,
                bounds: Vec::new(),
            },
            &mut svgs,
        )?;
    }

    // Variants side by side: p50 and p99 of every operation.
    type Figure = fn(&crate::run::Latency) -> f64;
    let figures: [(Figure, &str); 2] = [(|l| l.p50_ms, "p50"), (|l| l.p99_ms, "p99")];
    for (pick, label) in figures {
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
        };
        let name = format!("variants-{label}");
        let svg = charts::render_bars(&bars, &chart_dir, &name)?;
        svgs.push((name, svg));
    }

    // 2. Latency over time per operation: p50, p99 and max per interval.
    for op in &mix {
        let mut series = Vec::new();
        for (vi, v) in variants.iter().enumerate() {
            let name = v.variant.name.as_str();
            let pick = |key: fn(&crate::driver::record::IntervalOp) -> f64| -> Vec<(f64, f64)> {
                v.timeline
                    .iter()
                    .filter_map(|i| {
                        let o = i.ops.iter().find(|o| &o.op == op)?;
                        (o.count > 0).then(|| (i.t + interval, key(o)))
                    })
                    .collect()
            };
            type Pick = fn(&crate::driver::record::IntervalOp) -> f64;
            let lines: [(Pick, &str, u32, _); 3] = [
                (|o| o.max_ms, "max", 1, light(color(vi))),
                (|o| o.p99_ms, "p99", 3, color(vi)),
                (|o| o.p50_ms, "p50", 1, color(vi)),
            ];
            for (key, label, width, c) in lines {
                series.push(Series {
                    label: format!("{name} {label}"),
                    color: c,
                    width,
                    points: pick(key),
                });
            }
        }
        add(
            &format!("timeline-{op}"),
            &Chart {
                title: format!("{op}: latency per {interval:.0} s interval"),
                x_desc: "seconds into the variant".into(),
                y_desc: "response time (ms)".into(),
                nines: false,
                log_y: true,
                series,
                markers: Vec::new(),
                bounds: bounds.clone(),
            },
            &mut svgs,
        )?;
    }

    // 3. Throughput over time: achieved vs target, errors per interval.
    let mut series = Vec::new();
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
        series.push(Series {
            label: "target".into(),
            color: plotters::style::RGBColor(40, 40, 40),
            width: 1,
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
        series.push(Series {
            label: format!("{name} achieved"),
            color: color(vi),
            width: 2,
            points: done,
        });
        if errs.iter().any(|p| p.1 > 0.0) {
            series.push(Series {
                label: format!("{name} errors"),
                color: light(color(vi)),
                width: 2,
                points: errs,
            });
        }
    }
    add(
        "throughput",
        &Chart {
            title: "throughput: achieved vs target".into(),
            x_desc: "seconds into the variant".into(),
            y_desc: "requests per second".into(),
            nines: false,
            log_y: false,
            series,
            markers: Vec::new(),
            bounds: bounds.clone(),
        },
        &mut svgs,
    )?;

    // 4. Database panels, from the samples.
    type Pick = fn(&Sample) -> Option<f64>;
    let panels: [(&str, &str, &str, Pick); 5] = [
        (
            "db-cache",
            "cache hit ratio",
            "hits / (hits + misses)",
            |s| {
                let (h, m) = (s.cache_hits as f64, s.cache_misses as f64);
                (h + m > 0.0).then(|| h / (h + m))
            },
        ),
        ("db-lag", "replica lag", "bytes", |s| {
            s.replica_lag_bytes.map(|b| b as f64)
        }),
        (
            "db-reads-replica",
            "reads served by the replica",
            "reads per interval",
            |s| Some(s.reads_replica as f64),
        ),
        (
            "db-reads-primary",
            "reads served by the primary",
            "reads per interval",
            |s| Some(s.reads_primary as f64),
        ),
        (
            "db-pgbouncer",
            "PgBouncer clients waiting",
            "cl_waiting",
            |s| s.pgbouncer.as_ref().map(|p| p.cl_waiting as f64),
        ),
    ];
    for (file, title, y, pick) in panels {
        let series: Vec<Series> = variants
            .iter()
            .enumerate()
            .map(|(vi, v)| Series {
                label: v.variant.name.clone(),
                color: color(vi),
                width: 2,
                points: v
                    .database
                    .samples
                    .iter()
                    .filter_map(|s| pick(s).map(|y| (s.t, y)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        add(
            file,
            &Chart {
                title: title.into(),
                x_desc: "seconds into the variant".into(),
                y_desc: y.into(),
                nines: false,
                log_y: false,
                series,
                markers: Vec::new(),
                bounds: bounds.clone(),
            },
            &mut svgs,
        )?;
    }

    let chart_files: Vec<PathBuf> = svgs
        .iter()
        .flat_map(|(name, _)| ["png", "svg"].map(|ext| chart_dir.join(format!("{name}.{ext}"))))
        .collect();
    let verdict = verdict_word(&r).to_string();
    let summary = summary_md(&r);
    let summary_path = dir.join("summary.md");
    crate::fsutil::write_atomic(&summary_path, summary.as_bytes())?;
    let html = html(&r, &svgs);
    let html_path = dir.join("report.html");
    crate::fsutil::write_atomic(&html_path, html.as_bytes())?;
    Ok(ReportOutcome {
        html: html_path,
        summary: summary_path,
        charts: chart_files,
        hgrm: hgrm_files,
        verdict,
    })
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
            let actual = match (b.outcome, b.actual) {
                (BudgetOutcome::Unjudged, _) => b.describe(),
                (_, Some(a)) => show(a),
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

fn summary_md(r: &RunResult) -> String {
    let mut s = format!(
        "## rehearse: {} — {}\n\n",
        r.scenario.name,
        verdict_word(r).to_uppercase()
    );
    let _ = writeln!(
        s,
        "run `{}`, {} (git {}), PostgreSQL {}\n",
        r.run_id, r.started_at, r.environment.git_commit, r.environment.postgres_version
    );
    if let Some(e) = &r.error {
        let _ = writeln!(s, "**the run stopped on an error**: {e}\n");
    }
    for v in &r.variants {
        if !v.validity.valid {
            let _ = writeln!(
                s,
                "**{} is not valid**: {}\n",
                v.variant.name,
                v.validity.reasons.join("; ")
            );
        }
    }
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
                o.count.saturating_sub(o.ok)
            );
        }
    }
    s
}

fn html(r: &RunResult, svgs: &[(String, String)]) -> String {
    let verdict = verdict_word(r);
    let color = match verdict {
        "pass" => "#0a7d3c",
        "fail" => "#c00000",
        _ => "#a06000",
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>rehearse: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .pass{{color:#0a7d3c}}.fail{{color:#c00000;font-weight:bold}}.verdict{{font-size:1.6em;color:{color}}}\
         svg{{max-width:100%;height:auto}}</style></head><body>\
         <h1>{name}</h1><p class=\"verdict\">{verdict_up}</p>\
         <p>run <code>{run}</code>, started {started}, {secs:.0} s; rehearse {ver} (git {git}); PostgreSQL {pg}; {cores} cores</p>",
        name = esc(&r.scenario.name),
        verdict_up = esc(&verdict.to_uppercase()),
        run = esc(&r.run_id),
        started = esc(&r.started_at),
        secs = r.seconds,
        ver = esc(&r.environment.rehearse_version),
        git = esc(&r.environment.git_commit),
        pg = esc(&r.environment.postgres_version),
        cores = r.environment.host.cores,
    );
    if let Some(e) = &r.error {
        let _ = write!(
            h,
            "<p class=\"fail\">the run stopped on an error: {}</p>",
            esc(e)
        );
    }
    for v in &r.variants {
        if !v.validity.valid {
            let _ = write!(
                h,
                "<p class=\"fail\">{} is not valid: {}</p>",
                esc(&v.variant.name),
                esc(&v.validity.reasons.join("; "))
            );
        }
    }
    let rows = budget_rows(r);
    if !rows.is_empty() {
        h += "<h2>Budgets</h2><table><tr><th>verdict</th><th>operation</th><th>variant</th><th>budget</th><th>limit</th><th>actual</th><th>by</th></tr>";
        for row in rows {
            let _ = write!(
                h,
                "<tr><td class=\"{c}\">{p}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&row.b.operation),
                esc(row.variant),
                esc(&row.b.metric),
                esc(&row.limit),
                esc(&row.actual),
                esc(&row.by),
                c = if row.b.outcome == BudgetOutcome::Pass { "pass" } else { "fail" },
                p = row.mark()
            );
        }
        h += "</table>";
    }
    h += "<h2>Operations</h2><table><tr><th>operation</th><th>variant</th><th>count</th><th>rate/s</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>late</th></tr>";
    let mut by_op: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for v in &r.variants {
        for (i, o) in v.operations.iter().enumerate() {
            let l = &o.response;
            let errors = o
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ");
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
                esc(&errors),
                o.late
            ));
        }
    }
    for rows in by_op.values() {
        h += &rows.concat();
    }
    h += "</table><p>Response time is measured from each request's intended start (open phases); closed phases record service time.</p><h2>Charts</h2>";
    for (name, svg) in svgs {
        let _ = write!(h, "<h3>{}</h3>{}", esc(name), svg);
    }
    h += "</body></html>\n";
    h
}
