//! `rehearse gate`: validity first, then absolute budgets, then (with a
//! baseline) the relative check of `compare`. An invalid run is reported as
//! invalid, never as a pass or a regression.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::{self, CompareSettings, Comparison, Finding};
use crate::error::{Error, IoContext, Result};
use crate::exit;
use crate::run::{judge, BudgetOutcome};

mod junit;
mod page;
pub use junit::junit;
pub use page::{markdown, page};

#[derive(Debug, Clone)]
pub struct GateOptions {
    pub run: PathBuf,
    pub baselines: Vec<PathBuf>,
    pub budgets: Option<PathBuf>,
    pub settings: CompareSettings,
    /// The confidence budgets are judged at; None: the scenario's.
    pub confidence: Option<f64>,
    /// Accept comparisons that could not tell (they are still listed and
    /// counted): without it, one makes the gate exit 3.
    pub allow_inconclusive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Invalid,
    /// Not decided: a comparison whose interval straddles its floor, or
    /// that gained at one percentile and lost at another.
    Inconclusive,
}

/// One check, as a JUnit test case.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// validity, budgets or compare
    pub suite: &'static str,
    pub class: String,
    pub name: String,
    pub status: Outcome,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateOutcome {
    pub run: String,
    pub verdict: &'static str,
    pub exit_code: i32,
    pub cases: Vec<Case>,
    pub comparisons: Vec<(String, Comparison)>,
    pub allow_inconclusive: bool,
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
            status: Outcome::Invalid,
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
            status: Outcome::Invalid,
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
                Outcome::Pass
            } else {
                Outcome::Invalid
            },
            message: validity
                .reasons
                .iter()
                .chain(&validity.not_judged)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        });
        // 2. Budgets, each by its figure's interval.
        let budgets = budgets_file.as_ref().unwrap_or(&r.scenario.budgets);
        let none = judge::Evidence::new();
        let ev = evidence.get(name).unwrap_or(&none);
        let measured = (v.seconds - v.warmup_s).max(1e-9);
        for b in judge::budgets(budgets, &v.operations, ev, confidence, measured) {
            let (status, message) = match b.outcome {
                BudgetOutcome::Pass => (Outcome::Pass, b.describe()),
                BudgetOutcome::Fail => (Outcome::Fail, b.describe()),
                BudgetOutcome::Unjudged => (Outcome::Invalid, b.describe()),
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
        // What only one side measured cannot have passed: a candidate that
        // stopped measuring an operation must not slip through.
        for (key, side) in compare::unmatched(&base, &cand) {
            cases.push(Case {
                suite: "compare",
                class: format!("compare.{}", key.replace('/', ".")),
                name: "measured on both sides".into(),
                status: Outcome::Fail,
                message: format!("{}: {side}", compare::key_name(&key)),
            });
        }
        for (key, c) in compare::compare_all(&base, &cand, interval, &o.settings) {
            if c.rows.is_empty() {
                let side = if c.runs.0 == 0 {
                    "baseline"
                } else {
                    "candidate"
                };
                cases.push(Case {
                    suite: "compare",
                    class: format!("compare.{}", key.replace('/', ".")),
                    name: "compared".into(),
                    status: Outcome::Inconclusive,
                    message: format!(
                        "{}: the {side} has no measured interval of it, so nothing was compared; a run whose measured part holds it would decide",
                        compare::key_name(&key)
                    ),
                });
            }
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
                    Finding::Regression => (
                        Outcome::Fail,
                        format!("{:.3} -> {:.3}: {ci}", row.baseline, row.candidate),
                    ),
                    _ if row.undecided() => (
                        Outcome::Inconclusive,
                        match (&row.note, row.change) {
                            (Some(n), Finding::Contradictory) => {
                                format!("{}: {ci}; {n}", row.change)
                            }
                            _ => format!("{}: {ci}; {}", row.change, row.to_decide()),
                        },
                    ),
                    ch => (Outcome::Pass, format!("{ch}: {ci}")),
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
    let (verdict, exit_code) = verdict(&cases, o.allow_inconclusive);
    Ok(GateOutcome {
        run: o.run.display().to_string(),
        verdict,
        exit_code,
        cases,
        comparisons,
        allow_inconclusive: o.allow_inconclusive,
    })
}

/// Invalid before fail (numbers that cannot be trusted prove no
/// regression), then a comparison that could not tell (unless allowed),
/// then nothing judged at all: no budget and no comparison is no pass.
fn verdict(cases: &[Case], allow_inconclusive: bool) -> (&'static str, i32) {
    let any = |s: Outcome| cases.iter().any(|c| c.status == s);
    let judged = cases
        .iter()
        .any(|c| c.suite != "validity" && c.status != Outcome::Invalid);
    if any(Outcome::Invalid) {
        ("invalid", exit::INVALID)
    } else if any(Outcome::Fail) {
        ("fail", exit::FAIL)
    } else if any(Outcome::Inconclusive) && !allow_inconclusive {
        ("could not tell", exit::INVALID)
    } else if !judged {
        ("nothing judged", exit::INVALID)
    } else {
        ("pass", exit::OK)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn case(suite: &'static str, status: Outcome) -> Case {
        Case {
            suite,
            class: suite.into(),
            name: "x".into(),
            status,
            message: String::new(),
        }
    }

    #[test]
    fn the_verdict_fails_closed_in_order() {
        use Outcome::*;
        let v = |cases: &[Case], allow| verdict(cases, allow).0;
        let valid = case("validity", Pass);
        // Validity alone: nothing judged (main: pass).
        assert_eq!(v(std::slice::from_ref(&valid), false), "nothing judged");
        assert_eq!(verdict(std::slice::from_ref(&valid), true).1, exit::INVALID);
        // A comparison that could not tell: 3, unless accepted.
        let undecided = [valid.clone(), case("compare", Inconclusive)];
        assert_eq!(
            verdict(&undecided, false),
            ("could not tell", exit::INVALID)
        );
        assert_eq!(verdict(&undecided, true), ("pass", exit::OK));
        // A failure outranks could-not-tell, invalid outranks both.
        let failed = [
            valid.clone(),
            case("compare", Inconclusive),
            case("compare", Fail),
        ];
        assert_eq!(verdict(&failed, false), ("fail", exit::FAIL));
        let invalid = [case("validity", Invalid), case("budgets", Fail)];
        assert_eq!(verdict(&invalid, false), ("invalid", exit::INVALID));
        assert_eq!(
            verdict(&[valid, case("budgets", Pass)], false),
            ("pass", exit::OK)
        );
    }
}
