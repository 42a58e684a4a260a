//! `rehearse report` of an `rehearse ab` directory: both sides' spectra and
//! p99 timelines (slices one after another), the paired ratio of every
//! round over time, and the verdict table, as `report.html` and `summary.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::charts::{self, Chart, Dash, Rule, Series, PALETTE};
use super::compare_table::{render, Format};
use super::{esc, overlay_svgs, ReportOutcome};
use crate::compare;
use crate::error::Result;

pub fn report(dir: &Path, r: &crate::ab::AbReport) -> Result<ReportOutcome> {
    let chart_dir = dir.join("charts");
    let side_dirs = |side: &str| -> Vec<PathBuf> {
        r.slices
            .iter()
            .filter(|s| s.side == side)
            .map(|s| dir.join(&s.dir))
            .collect()
    };
    let (a, interval) = compare::runs(&side_dirs("a"))?;
    let (b, _) = compare::runs(&side_dirs("b"))?;
    let mut svgs = overlay_svgs(&a, &b, interval, &chart_dir)?;
    for (key, rounds) in &r.round_ratios {
        type Pick = fn(&crate::ab::paired::RoundRatio) -> f64;
        let lines: [(&str, Pick); 3] = [("p50", |x| x.p50), ("p95", |x| x.p95), ("p99", |x| x.p99)];
        let dashes = [Dash::Dashed, Dash::Solid, Dash::Dotted];
        let series: Vec<Series> = lines
            .iter()
            .enumerate()
            .map(|(i, (label, pick))| Series {
                label: format!("{label} B/A"),
                color: PALETTE[i % PALETTE.len()],
                width: 2,
                dash: dashes[i],
                points: rounds.iter().map(|x| (x.at_s, pick(x))).collect(),
            })
            .collect();
        let name = format!("ab-rounds-{}", key.replace('/', "."));
        let mut chart = Chart::new(
            format!("{key}: B over A, each round's neighbouring slices"),
            "seconds from the first slice (the round's second slice)",
            "ratio B / A",
        );
        chart.series = series;
        chart.rules.push(Rule {
            label: "no change (1.0)".into(),
            y: 1.0,
            color: plotters::style::RGBColor(40, 40, 40),
        });
        chart.bounds = rounds
            .iter()
            .map(|x| (x.at_s, format!("round {}", x.round)))
            .collect();
        let svg = charts::render(&chart, &chart_dir, &name)?;
        svgs.push((name, svg));
    }
    let table = render(&r.comparisons, &r.settings, Format::Markdown)?;
    let order: String = r.slices.iter().map(|x| x.side.to_uppercase()).collect();
    let mut md = format!(
        "## rehearse ab: {} — {}\n\nA: {}; B: {}; {} rounds of {:.0} s slices, in the order {order}\n\n",
        r.scenario,
        r.verdict.to_uppercase(),
        r.a,
        r.b,
        r.rounds,
        r.slice_s
    );
    for why in &r.invalid {
        let _ = writeln!(md, "**invalid**: {why}\n");
    }
    md += &table;
    let summary = dir.join("summary.md");
    crate::fsutil::write_atomic(&summary, md.as_bytes())?;

    let color = match r.verdict.as_str() {
        "pass" => "#0a7d3c",
        "fail" => "#c00000",
        _ => "#a06000",
    };
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>rehearse ab: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .verdict{{font-size:1.6em;color:{color}}}svg{{max-width:100%;height:auto}}</style></head><body>\
         <h1>rehearse ab: {name}</h1><p class=\"verdict\">{verdict}</p>\
         <p>A: {a}<br>B: {b}<br>{rounds} rounds of {slice:.0} s slices, in the order {order}</p>",
        name = esc(&r.scenario),
        verdict = esc(&r.verdict.to_uppercase()),
        a = esc(&r.a.to_string()),
        b = esc(&r.b.to_string()),
        rounds = r.rounds,
        slice = r.slice_s,
    );
    for why in &r.invalid {
        let _ = write!(h, "<p style=\"color:#c00000\">invalid: {}</p>", esc(why));
    }
    h += "<h2>Paired verdicts</h2><table><tr><th>variant/operation</th><th>metric</th><th>A</th><th>B</th><th>ratio</th><th>interval</th><th>verdict</th></tr>";
    for (key, c) in &r.comparisons {
        for row in &c.rows {
            let unit = if row.metric == "throughput" {
                "/s"
            } else {
                " ms"
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.3}{unit}</td><td>{:.3}{unit}</td><td>x{:.3}</td><td>{:.3}-{:.3}</td><td>{}</td></tr>",
                esc(key),
                esc(&row.metric),
                row.baseline,
                row.candidate,
                row.ratio,
                row.low,
                row.high,
                esc(&match &row.note {
                    Some(n) => format!("{} ({n})", row.change),
                    None => row.change.to_string(),
                })
            );
        }
    }
    h += "</table><h2>Charts</h2>";
    for (name, svg) in &svgs {
        let _ = write!(h, "<h3>{}</h3>{}", esc(name), svg);
    }
    h += "</body></html>\n";
    let html = dir.join("report.html");
    crate::fsutil::write_atomic(&html, h.as_bytes())?;
    Ok(ReportOutcome {
        html,
        summary,
        charts: svgs
            .iter()
            .flat_map(|(n, _)| ["png", "svg"].map(|e| chart_dir.join(format!("{n}.{e}"))))
            .collect(),
        hgrm: Vec::new(),
        verdict: r.verdict.clone(),
        note: None,
    })
}
