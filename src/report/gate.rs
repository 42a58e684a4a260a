//! `rehearse gate`: validity first, then absolute budgets, then (with a
//! baseline) the relative check of `compare`. An invalid run is reported as
//! invalid, never as a pass or a regression.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::compare::{self, Change, CompareSettings, Comparison};
use crate::error::{Error, IoContext, Result};
use crate::exit;
use crate::run::{judge, BudgetOutcome};

#[derive(Debug, Clone)]
pub struct GateOptions {
    pub run: PathBuf,
    pub baselines: Vec<PathBuf>,
    pub budgets: Option<PathBuf>,
    pub settings: CompareSettings,
    /// The confidence budgets are judged at; None: the scenario's.
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Invalid,
    /// Not decided: a comparison that is inconclusive.
    Skipped,
}

/// One check, as a JUnit test case.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// validity, budgets or compare
    pub suite: &'static str,
    pub class: String,
    pub name: String,
    pub status: Status,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateOutcome {
    pub run: String,
    pub verdict: &'static str,
    pub exit_code: i32,
    pub cases: Vec<Case>,
    pub comparisons: Vec<(String, Comparison)>,
}

pub fn gate(o: &GateOptions) -> Result<GateOutcome> {
    let r = crate::run::read(&o.run)?;
    let mut cases = Vec::new();

    // 1. Validity: the run finished, and each variant's numbers can be trusted
    //    (judged again from the record, by the function the driver used).
    if r.status != crate::run::Status::Complete {
        cases.push(Case {
            suite: "validity",
            class: "validity".into(),
            name: "run complete".into(),
            status: Status::Invalid,
            message: match &r.error {
                Some(e) => format!("the run is {:?}, not complete: {e}", r.status),
                None => format!("the run is {:?}, not complete", r.status),
            },
        });
    }
    let budgets_file = match &o.budgets {
        Some(p) => {
            let text = std::fs::read_to_string(p).io("reading the budgets file", p)?;
            Some(crate::scenario::parse_budgets(p, &text)?)
        }
        None => None,
    };
    if r.variants.is_empty() {
        cases.push(Case {
            suite: "validity",
            class: "validity".into(),
            name: "variants measured".into(),
            status: Status::Invalid,
            message: "the run measured no variant".into(),
        });
    }
    let evidence = crate::run::evidence::read(&o.run, &r)?;
    let confidence = o.confidence.unwrap_or(r.scenario.validity.confidence);
    for v in &r.variants {
        let name = &v.variant.name;
        let mut validity = judge::validity(
            &r.scenario.validity,
            &v.phases,
            &v.driver_lag,
            crate::driver::BACKLOG,
        );
        // And what the record says beyond that (a merge's missing shard, a
        // shard's own driver): never dropped by judging again.
        for reason in &v.validity.reasons {
            if !validity.reasons.contains(reason) {
                validity.reasons.push(reason.clone());
            }
        }
        validity.valid = validity.valid && v.validity.valid && validity.reasons.is_empty();
        cases.push(Case {
            suite: "validity",
            class: format!("validity.{name}"),
            name: "target rate reached, driver not the bottleneck".into(),
            status: if validity.valid {
                Status::Pass
            } else {
                Status::Invalid
            },
            message: validity.reasons.join("; "),
        });
        // 2. Budgets, each by its figure's interval.
        let budgets = budgets_file.as_ref().unwrap_or(&r.scenario.budgets);
        let none = judge::Evidence::new();
        let ev = evidence.get(name).unwrap_or(&none);
        let measured = (v.seconds - v.warmup_s).max(1e-9);
        for b in judge::budgets(budgets, &v.operations, ev, confidence, measured) {
            let (status, message) = match b.outcome {
                BudgetOutcome::Pass => (Status::Pass, b.describe()),
                BudgetOutcome::Fail => (Status::Fail, b.describe()),
                BudgetOutcome::Unjudged => (Status::Invalid, b.describe()),
            };
            let limit = if b.metric == "error_rate" {
                b.limit.to_string()
            } else {
                crate::scenario::Dur(std::time::Duration::from_secs_f64(b.limit / 1e3)).to_string()
            };
            let message = match v.operations.iter().find(|o| o.name == b.operation) {
                Some(o) if b.metric == "error_rate" => {
                    format!("{message} ({} errors)", o.count - o.ok)
                }
                _ => message,
            };
            cases.push(Case {
                suite: "budgets",
                class: format!("budgets.{name}"),
                name: format!("{} {} <= {limit}", b.operation, b.metric),
                status,
                message,
            });
        }
    }

    // 3. Against the baseline: the candidate is this one run; the baseline
    //    may hold several, whose spread the verdict then measures.
    let mut comparisons = Vec::new();
    if !o.baselines.is_empty() {
        let (cand, interval) = compare::runs(std::slice::from_ref(&o.run))?;
        let (base, base_interval) = compare::runs(&o.baselines)?;
        if (interval - base_interval).abs() > 1e-9 {
            return Err(Error::Usage(format!(
                "the run's intervals are {interval} s, the baseline's {base_interval} s: compare runs of one interval"
            )));
        }
        for (key, c) in compare::compare_all(&base, &cand, interval, &o.settings) {
            for row in &c.rows {
                let ci = format!(
                    "x{:.3} ({:.0}% CI {:.3}-{:.3}, p {:.2e}, floor {:.0}%)",
                    row.ratio,
                    (1.0 - o.settings.alpha) * 100.0,
                    row.low,
                    row.high,
                    row.p_value,
                    row.floor * 100.0
                );
                let (status, message) = match row.change {
                    Change::Regression => (
                        Status::Fail,
                        format!("{:.3} -> {:.3}: {ci}", row.baseline, row.candidate),
                    ),
                    Change::Inconclusive | Change::Contradictory => (
                        Status::Skipped,
                        match &row.note {
                            Some(n) => format!("{}: {ci}; {n}", row.change),
                            None => format!("{}: {ci}", row.change),
                        },
                    ),
                    ch => (Status::Pass, format!("{ch}: {ci}")),
                };
                cases.push(Case {
                    suite: "compare",
                    class: format!("compare.{}", key.replace('/', ".")),
                    name: row.metric.clone(),
                    status,
                    message: format!("{message}; {}", c.between_runs),
                });
            }
            comparisons.push((key, c));
        }
        if comparisons.is_empty() {
            return Err(Error::Usage(
                "the baseline has none of the candidate's variants and operations".into(),
            ));
        }
    }
    let invalid = cases.iter().any(|c| c.status == Status::Invalid);
    let failed = cases.iter().any(|c| c.status == Status::Fail);
    let (verdict, exit_code) = if invalid {
        ("invalid", exit::INVALID)
    } else if failed {
        ("fail", exit::FAIL)
    } else {
        ("pass", exit::OK)
    };
    Ok(GateOutcome {
        run: o.run.display().to_string(),
        verdict,
        exit_code,
        cases,
        comparisons,
    })
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a test suite each for validity, budgets and compare.
pub fn junit(g: &GateOutcome) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = g
        .cases
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Invalid))
        .count();
    let _ = writeln!(
        out,
        "<testsuites name=\"rehearse gate\" tests=\"{}\" failures=\"{failures}\">",
        g.cases.len()
    );
    for suite in ["validity", "budgets", "compare"] {
        let cases: Vec<&Case> = g.cases.iter().filter(|c| c.suite == suite).collect();
        if cases.is_empty() {
            continue;
        }
        let f = cases
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Invalid))
            .count();
        let s = cases.iter().filter(|c| c.status == Status::Skipped).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">",
            cases.len()
        );
        for c in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&c.class),
                xml(&c.name)
            );
            match c.status {
                Status::Pass => {
                    let _ = writeln!(
                        out,
                        "><system-out>{}</system-out></testcase>",
                        xml(&c.message)
                    );
                }
                Status::Skipped => {
                    let _ = writeln!(
                        out,
                        "><skipped message=\"{}\"/></testcase>",
                        xml(&c.message)
                    );
                }
                Status::Fail | Status::Invalid => {
                    let kind = if c.status == Status::Invalid {
                        "invalid"
                    } else {
                        "fail"
                    };
                    let _ = writeln!(
                        out,
                        "><failure type=\"{kind}\" message=\"{}\"/></testcase>",
                        xml(&c.message)
                    );
                }
            }
        }
        out += "  </testsuite>\n";
    }
    out += "</testsuites>\n";
    out
}

/// The gate's verdict and every case that did not pass, in Markdown.
pub fn markdown(g: &GateOutcome) -> String {
    let mut s = format!(
        "## rehearse gate: {}\n\n`{}`\n\n",
        g.verdict.to_uppercase(),
        g.run
    );
    s += "| | check | | result |\n|---|---|---|---|\n";
    for c in &g.cases {
        let mark = match c.status {
            Status::Pass => "pass",
            Status::Fail => "**FAIL**",
            Status::Invalid => "**INVALID**",
            Status::Skipped => "inconclusive",
        };
        let _ = writeln!(
            s,
            "| {mark} | {} | {} | {} |",
            c.class,
            c.name,
            c.message.replace('|', "\\|")
        );
    }
    s
}

/// Copy a run's record and interval log into `<root>/<name>/<run-id>/`.
/// A new name starts a baseline; `add` adds a run to one (several runs let
/// verdicts measure the spread between runs); `force` replaces it with this
/// one run. Each copy is made in a scratch directory and moved into place.
pub fn save_baseline(
    run: &Path,
    root: &Path,
    name: &str,
    add: bool,
    force: bool,
) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || name.starts_with('.')
    {
        return Err(Error::Usage(format!(
            "baseline name {name:?}: use letters, digits, '-', '_' and '.'"
        )));
    }
    let r = crate::run::read(run)?;
    if r.status != crate::run::Status::Complete {
        return Err(Error::Usage(format!(
            "{}: the run is {:?}; only complete runs make a baseline",
            run.display(),
            r.status
        )));
    }
    let dest = root.join(name);
    if dest.exists() && !add && !force {
        return Err(Error::Usage(format!(
            "{} exists: pass --add to add this run to it, or --force to replace it",
            dest.display()
        )));
    }
    let target = dest.join(&r.run_id);
    if add && target.exists() {
        return Err(Error::Usage(format!(
            "{} already holds run {}",
            dest.display(),
            r.run_id
        )));
    }
    std::fs::create_dir_all(root).io("creating", root)?;
    let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let tmp_run = tmp.join(&r.run_id);
    std::fs::create_dir_all(&tmp_run).io("creating", &tmp_run)?;
    for f in ["run.json", "latency.hlog"] {
        std::fs::copy(run.join(f), tmp_run.join(f))
            .io("copying into the baseline", &run.join(f))?;
    }
    if add && dest.exists() {
        std::fs::rename(&tmp_run, &target).io("moving into place", &target)?;
        let _ = std::fs::remove_dir_all(&tmp);
    } else {
        if dest.exists() {
            std::fs::remove_dir_all(&dest).io("replacing", &dest)?;
        }
        std::fs::rename(&tmp, &dest).io("moving into place", &dest)?;
    }
    Ok(target)
}
