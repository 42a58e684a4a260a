//! `rehearse report` of an `rehearse ab` directory: both sides' spectra and
//! p99 timelines (slices one after another), the paired ratio of every
//! round over time, and the verdict table, as `report.html` and `summary.md`.

use std::path::{Path, PathBuf};

use super::overlay::overlay_svgs;
use super::{compare_table, ReportOutcome};
use crate::compare;
use crate::error::Result;
use crate::render::charts::{self, Chart, Dash, Rule, Series, PALETTE};
use crate::render::{Block, Doc, Line, Tone};

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
    let order: String = r.slices.iter().map(|x| x.side.to_uppercase()).collect();
    let tone = match r.verdict.as_str() {
        "pass" => Tone::Pass,
        "fail" => Tone::Fail,
        _ => Tone::Warn,
    };
    let mut doc = Doc::new(format!("rehearse ab: {}", r.scenario));
    doc.push(
        Block::heading(
            1,
            Line::default()
                .toned(tone, r.verdict.to_uppercase())
                .text(format!(" rehearse ab: {}", r.scenario)),
        )
        .id("verdict"),
    );
    let mut facts = vec![
        format!("A: {}", r.a),
        format!("B: {}", r.b),
        format!(
            "{} rounds of {:.0} s slices, {}",
            r.rounds,
            r.slice_s,
            if r.duet {
                "A and B at the same time, each at half the rate".to_string()
            } else {
                format!("in the order {order}")
            }
        ),
    ];
    if !r.decision.is_empty() {
        facts.push(format!(
            "decision: {}; stopped by {}",
            r.decision, r.stopped
        ));
    }
    if let Some(d) = r.design.as_ref().filter(|d| d.looks() > 1) {
        facts.push(format!(
            "sequential: looks after rounds {} to {}, each at the level {:.4}, alpha {} over them all",
            d.first_look, d.max_rounds, d.level, d.alpha
        ));
    }
    if let Some(e) = r.min_effect {
        facts.push(format!(
            "min-effect {:.1}%: SAME inside the interval +/-{:.1}%, DIFFERENT when it excludes no change beyond {:.1}%",
            e * 100.0,
            e * 100.0,
            e * 50.0
        ));
    }
    for x in &r.detectable {
        facts.push(x.describe(r.design.as_ref()));
    }
    doc.push(Block::list(facts));
    doc.push(
        Block::list(
            r.invalid
                .iter()
                .map(|why| Line::default().toned(Tone::Fail, format!("invalid: {why}"))),
        )
        .id("why"),
    );
    doc.push(Block::heading(2, "Paired verdicts"));
    doc.extend(compare_table::blocks(
        &r.comparisons,
        &r.interval_settings(),
    ));
    doc.push(Block::heading(2, "Charts"));
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
            .flat_map(|(n, _)| ["png", "svg"].map(|e| chart_dir.join(format!("{n}.{e}"))))
            .collect(),
        hgrm: Vec::new(),
        verdict: r.verdict.clone(),
        note: None,
    })
}
