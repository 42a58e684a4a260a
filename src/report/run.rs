//! A run's report: its verdict and why, a drill's section when a drill ran
//! it, the budgets with the intervals they were judged on, every operation's
//! latency, the maintenance jobs' impact, and the charts; one page, written
//! as summary.md and report.html.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::contents::LeadDrill;
use super::{cutover, jobs, ms_label, run_charts, verdict_word, ReportOutcome};
use crate::error::Result;
use crate::render::{self, Block, Cell, Doc, Line, Table, Tone};
use crate::run::{BudgetOutcome, BudgetResult, RunResult};

/// A drill whose report leads the page (the alert drill, the rollout
/// drill): its name, whether it passed, and its section.
struct Lead {
    name: &'static str,
    ok: bool,
    section: Block,
}

/// The report of a run, and of the drill that ran it, if one did.
pub(super) fn report(
    dir: &Path,
    r: RunResult,
    drill_report: Option<cutover::DrillReport>,
    lead: Option<LeadDrill>,
) -> Result<ReportOutcome> {
    let lead = lead.map(|l| match l {
        LeadDrill::Alerts(a) => Lead {
            name: "alert drill",
            ok: a.ok,
            section: super::alerts::section(&a),
        },
        LeadDrill::Rollout(d) => Lead {
            name: "rollout drill",
            ok: d.ok,
            section: super::rollout::section(&d),
        },
    });
    let (svgs, hgrm) = run_charts::draw(dir, &r, drill_report.as_ref())?;
    let chart_dir = dir.join("charts");
    let charts: Vec<PathBuf> = svgs
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
                    pass_word(a.ok),
                    verdict_word(&r)
                ),
                None,
            ),
            None => (verdict_word(&r).to_string(), None),
        },
    };
    let impact = if r.variants.iter().any(|v| !v.jobs.is_empty()) {
        Some(jobs::impact(dir, &r)?)
    } else {
        None
    };
    // Legacy against partitioned in the same run, when it held both modes.
    let modes = super::modes::rows(dir, &r, &crate::compare::CompareSettings::default())
        .map_err(|e| e.to_string());
    let doc = page(
        &r,
        drill_report.as_ref(),
        lead,
        impact.as_deref(),
        &modes,
        svgs,
    );
    let (summary, html) = render::write_pages(dir, &doc)?;
    Ok(ReportOutcome {
        html,
        summary,
        charts,
        hgrm,
        verdict,
        note,
    })
}

fn pass_word(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// How a run's verdict word reads.
fn tone(word: &str) -> Tone {
    match word {
        "pass" => Tone::Pass,
        "fail" => Tone::Fail,
        _ => Tone::Warn,
    }
}

/// The page: verdict, why, the run, a drill's section, budgets, operations,
/// jobs, charts.
fn page(
    r: &RunResult,
    d: Option<&cutover::DrillReport>,
    lead: Option<Lead>,
    impact: Option<&[jobs::JobImpact]>,
    modes: &std::result::Result<Vec<super::modes::ModeRow>, String>,
    svgs: Vec<(String, String)>,
) -> Doc {
    let word = verdict_word(r);
    let name = r.scenario.name.as_str();
    let mut doc = Doc::new(format!("rehearse: {name}"));
    let workload = Line::default()
        .text("The workload's own verdict: ")
        .toned(tone(word), word.to_uppercase())
        .text(".");
    let mut drill_section = None;
    match (d, lead) {
        (Some(d), _) => {
            doc.push(
                Block::heading(
                    1,
                    Line::default()
                        .toned(Tone::of(d.ok), format!("cutover drill {}", pass_word(d.ok)))
                        .text(format!(" under {name}")),
                )
                .id("verdict"),
            );
            if !d.ok {
                // The parts that failed (or how the drill ended).
                let why = cutover::verdict(d);
                let why = why.trim_start_matches("drill FAIL: ");
                doc.push(Block::list([Line::default().toned(Tone::Fail, why)]).id("drill-why"));
            }
            doc.push(Block::para(workload));
            if let Some(note) = cutover::two_verdicts(d, r) {
                doc.push(Block::para(note).id("two-verdicts"));
            }
            drill_section = Some(cutover::section(d));
        }
        (None, Some(a)) => {
            doc.push(
                Block::heading(
                    1,
                    Line::default()
                        .toned(Tone::of(a.ok), format!("{} {}", a.name, pass_word(a.ok)))
                        .text(format!(" under {name}")),
                )
                .id("verdict"),
            );
            doc.push(Block::para(workload));
            drill_section = Some(a.section);
        }
        (None, None) => {
            doc.push(
                Block::heading(
                    1,
                    Line::default()
                        .toned(tone(word), word.to_uppercase())
                        .text(format!(" {name}")),
                )
                .id("verdict"),
            );
        }
    }
    doc.push(
        Block::list(
            verdict_reasons(r)
                .into_iter()
                .map(|why| Line::default().toned(Tone::Fail, why)),
        )
        .id("why"),
    );
    let e = &r.environment;
    doc.push(Block::para(
        Line::default()
            .text("run ")
            .code(r.run_id.as_str())
            .text(format!(
                ", started {}, {:.0} s; rehearse {} (git {}); PostgreSQL {}; {} cores",
                r.started_at,
                r.seconds,
                e.rehearse_version,
                e.git_commit,
                e.postgres_version,
                e.host.cores
            )),
    ));
    doc.extend(drill_section);

    let rows = budget_rows(r);
    if !rows.is_empty() {
        doc.push(Block::heading(2, "Budgets"));
        let mut t = Table::new(&[
            "verdict",
            "operation",
            "variant",
            "budget",
            "limit",
            "actual",
            "by",
        ])
        .id("budgets")
        .numeric_from(4);
        for row in rows {
            let tone = Tone::of(row.b.outcome == BudgetOutcome::Pass);
            // Why a budget was not judged is a sentence: let it wrap.
            let mark = row.mark();
            let actual = if row.b.outcome == BudgetOutcome::Unjudged {
                Cell::wrap(row.actual)
            } else {
                Cell::from(row.actual)
            };
            t.row([
                Cell::toned(tone, mark),
                Cell::from(row.b.operation.as_str()),
                Cell::from(row.variant),
                Cell::from(row.b.metric.as_str()),
                Cell::from(row.limit),
                actual,
                Cell::from(row.by),
            ]);
        }
        doc.push(t.block());
    }

    doc.push(Block::heading(2, "Operations"));
    let mut t = Table::new(&[
        "operation",
        "variant",
        "count",
        "rate/s",
        "p50",
        "p95",
        "p99",
        "p99.9",
        "max",
        "errors",
        "late",
    ])
    .id("operations")
    .numeric_from(2);
    // Each operation's variants together.
    let mut by_op: BTreeMap<usize, Vec<Vec<String>>> = BTreeMap::new();
    for v in &r.variants {
        for (i, o) in v.operations.iter().enumerate() {
            let l = &o.response;
            by_op.entry(i).or_default().push(vec![
                o.name.clone(),
                v.variant.name.clone(),
                o.count.to_string(),
                format!("{:.1}", o.throughput),
                ms_label(l.p50_ms),
                ms_label(l.p95_ms),
                ms_label(l.p99_ms),
                ms_label(l.p999_ms),
                ms_label(l.max_ms),
                errors_cell(o),
                o.late.to_string(),
            ]);
        }
    }
    for row in by_op.into_values().flatten() {
        t.row(row);
    }
    doc.push(t.block());
    doc.push(Block::para(
        "Response time is measured from each request's intended start (open phases); \
         closed phases record service time.",
    ));
    match modes {
        Ok(rows) if rows.is_empty() => {}
        Ok(rows) => {
            doc.push(Block::heading(2, "Legacy against partitioned").id("modes"));
            doc.push(Block::para(
                "Both modes ran on one schedule and one seed, one after the other. The ratio is \
                 partitioned over legacy, with its 99% interval from the two-level block bootstrap \
                 of `rehearse compare`. Where partitioned took over 10% longer, or was slower, the \
                 verdict says where its extra server time went (the next section has the figures).",
            ));
            if let Some(line) = super::modes::parity_summary(rows) {
                doc.push(Block::para(line).id("parity"));
            }
            doc.push(super::modes::table(rows, false).block());
        }
        Err(e) => {
            doc.push(Block::para(Line::default().toned(
                Tone::Warn,
                format!("Legacy against partitioned could not be computed: {e}"),
            )));
        }
    }
    if let Some(blocks) = super::attribution::section(r) {
        doc.extend(blocks);
    }
    if let Some(i) = impact {
        doc.push(jobs::section(r, i));
    }
    doc.push(Block::heading(2, "Charts"));
    doc.extend(svgs.into_iter().map(|(name, svg)| Block::Figure {
        png: format!("charts/{name}.png"),
        name,
        svg,
    }));
    doc
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
