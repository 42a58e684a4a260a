//! `rehearse gate`: validity first, then absolute budgets, then (with a
//! baseline) the relative check of `compare`. An invalid run is reported as
//! invalid, never as a pass or a regression.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::compare::{self, Change, CompareSettings, Row};
use crate::error::{Error, IoContext, Result};

/// Exit codes of the gate (the same as `run`'s).
pub const PASS: i32 = 0;
pub const FAIL: i32 = 1;
pub const INVALID: i32 = 3;

#[derive(Debug, Clone)]
pub struct GateOptions {
    pub run: PathBuf,
    pub baselines: Vec<PathBuf>,
    pub budgets: Option<PathBuf>,
    pub settings: CompareSettings,
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
    pub comparisons: Vec<(String, Vec<Row>)>,
}

fn ms(x: f64) -> String {
    format!("{x:.3} ms")
}

pub fn gate(o: &GateOptions) -> Result<GateOutcome> {
    let r = super::read_run(&o.run)?;
    let mut cases = Vec::new();

    // 1. Validity.
    if r["status"] != "complete" {
        cases.push(Case {
            suite: "validity",
            class: "validity".into(),
            name: "run complete".into(),
            status: Status::Invalid,
            message: format!("the run is {}, not complete", r["status"]),
        });
    }
    let budgets_file = match &o.budgets {
        Some(p) => {
            let text = std::fs::read_to_string(p).io("reading the budgets file", p)?;
            Some(crate::scenario::parse_budgets(p, &text)?)
        }
        None => None,
    };
    for v in r["variants"].as_array().into_iter().flatten() {
        let name = v["variant"]["name"].as_str().unwrap_or("").to_string();
        let reasons: Vec<String> = v["validity"]["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
        cases.push(Case {
            suite: "validity",
            class: format!("validity.{name}"),
            name: "target rate reached, driver not the bottleneck".into(),
            status: if reasons.is_empty() {
                Status::Pass
            } else {
                Status::Invalid
            },
            message: reasons.join("; "),
        });
        // 2. Budgets, each with enough samples for its percentile.
        for o_ in v["operations"].as_array().into_iter().flatten() {
            let op = o_["name"].as_str().unwrap_or("");
            let ok = o_["ok"].as_u64().unwrap_or(0);
            let budget = match &budgets_file {
                Some(b) => b.get(op).cloned(),
                None => r["scenario"]["budgets"]
                    .get(op)
                    .map(|b| crate::scenario::Budget {
                        p50: b["p50"].as_str().and_then(|s| s.parse().ok()),
                        p95: b["p95"].as_str().and_then(|s| s.parse().ok()),
                        p99: b["p99"].as_str().and_then(|s| s.parse().ok()),
                        p999: b["p99.9"].as_str().and_then(|s| s.parse().ok()),
                        max: b["max"].as_str().and_then(|s| s.parse().ok()),
                        error_rate: b["error_rate"].as_f64(),
                    }),
            };
            let Some(budget) = budget else { continue };
            for (label, q, limit) in budget.limits() {
                let key = match label {
                    "p99.9" => "p99.9_ms".to_string(),
                    l => format!("{l}_ms"),
                };
                let actual = o_["response"][&key].as_f64().unwrap_or(0.0);
                let limit_ms = limit.0.as_secs_f64() * 1e3;
                let need = if q >= 1.0 {
                    1
                } else {
                    (100.0 / (1.0 - q)).ceil() as u64
                };
                let (status, message) = if ok < need {
                    (
                        Status::Invalid,
                        format!("{label} needs {need} samples to be gated, the run has {ok}: run longer or at a higher rate"),
                    )
                } else if actual <= limit_ms {
                    (Status::Pass, format!("{} <= {}", ms(actual), ms(limit_ms)))
                } else {
                    (
                        Status::Fail,
                        format!(
                            "{} > {} (+{:.0}%)",
                            ms(actual),
                            ms(limit_ms),
                            (actual / limit_ms - 1.0) * 100.0
                        ),
                    )
                };
                cases.push(Case {
                    suite: "budgets",
                    class: format!("budgets.{name}"),
                    name: format!("{op} {label} <= {limit}"),
                    status,
                    message,
                });
            }
            if let Some(limit) = budget.error_rate {
                let actual = o_["error_rate"].as_f64().unwrap_or(0.0);
                cases.push(Case {
                    suite: "budgets",
                    class: format!("budgets.{name}"),
                    name: format!("{op} error_rate <= {limit}"),
                    status: if actual <= limit {
                        Status::Pass
                    } else {
                        Status::Fail
                    },
                    message: format!(
                        "{actual:.5} ({} errors)",
                        o_["errors"]
                            .as_object()
                            .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum::<u64>())
                    ),
                });
            }
        }
    }

    // 3. Against the baseline.
    let mut comparisons = Vec::new();
    if !o.baselines.is_empty() {
        let (cand, interval) = compare::run_intervals(&o.run)?;
        let (base, _) = compare::pooled(&o.baselines)?;
        for (key, rows) in compare::compare_all(&base, &cand, interval, &o.settings) {
            for row in &rows {
                let (status, message) = match row.change {
                    Change::Regression => (
                        Status::Fail,
                        format!(
                            "{:.3} -> {:.3}: x{:.3} (95% CI {:.3}-{:.3}, floor {:.0}%)",
                            row.baseline,
                            row.candidate,
                            row.ratio,
                            row.low,
                            row.high,
                            row.floor * 100.0
                        ),
                    ),
                    Change::Inconclusive => (
                        Status::Skipped,
                        row.note.clone().unwrap_or_else(|| {
                            format!(
                                "x{:.3} (95% CI {:.3}-{:.3}) straddles the {:.0}% floor",
                                row.ratio,
                                row.low,
                                row.high,
                                row.floor * 100.0
                            )
                        }),
                    ),
                    c => (
                        Status::Pass,
                        format!(
                            "{c}: x{:.3} (95% CI {:.3}-{:.3})",
                            row.ratio, row.low, row.high
                        ),
                    ),
                };
                cases.push(Case {
                    suite: "compare",
                    class: format!("compare.{}", key.replace('/', ".")),
                    name: row.metric.clone(),
                    status,
                    message,
                });
            }
            comparisons.push((key, rows));
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
        ("invalid", INVALID)
    } else if failed {
        ("fail", FAIL)
    } else {
        ("pass", PASS)
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

/// Copy a run's results into `results/baselines/<name>/`, replacing it only with `force`.
pub fn save_baseline(run: &Path, root: &Path, name: &str, force: bool) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(Error::Usage(format!(
            "baseline name {name:?}: use letters, digits, '-', '_' and '.'"
        )));
    }
    super::read_run(run)?;
    let dest = root.join(name);
    if dest.exists() && !force {
        return Err(Error::Usage(format!(
            "{} exists: pass --force to replace that baseline",
            dest.display()
        )));
    }
    let tmp = root.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).io("creating", &tmp)?;
    for f in ["run.json", "latency.hlog"] {
        std::fs::copy(run.join(f), tmp.join(f)).io("copying into the baseline", &run.join(f))?;
    }
    if dest.exists() {
        std::fs::remove_dir_all(&dest).io("replacing", &dest)?;
    }
    std::fs::rename(&tmp, &dest).io("moving into place", &dest)?;
    Ok(dest)
}
