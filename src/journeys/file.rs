//! Journeys files (`scenarios/journeys_*.toml`): weighted personas, each a
//! sequence of HTTP calls against `rehearse serve` with think times, and
//! budgets per transaction (`persona.step`). Checked like scenario files:
//! every error as `file:line:column: what`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, IoContext, Result};
use crate::scenario::{Budget, BudgetFile, Dur};
use crate::schema::Mode;
use crate::text::{line_col, toml_error_at};

/// The calls a step can make: one HTTP request each.
pub const CALLS: [&str; 10] = [
    "dashboard",
    "pnl",
    "properties",
    "ledger",
    "portfolio",
    "record_revenue",
    "record_expense",
    "post_batch",
    "adjust",
    "void",
];

/// Whether a file's text is a journeys file rather than a scenario: it has personas.
pub fn is_journeys(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("[[persona"))
}

/// One step of a persona: one HTTP call (a ledger step walks `pages` calls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub call: String,
    /// Days of the window (dashboard, properties, ledger, portfolio).
    pub days: u32,
    /// Entries per ledger page.
    pub limit: u32,
    /// Ledger pages walked, each one request following the last page's cursor.
    pub pages: u32,
    /// Rows of the portfolio.
    pub top: u32,
    /// Entries of a posted batch.
    pub entries: u32,
    /// Months before the dataset's last (pnl).
    pub month_back: u32,
}

impl Step {
    /// The repository operation the call runs.
    pub fn operation(&self) -> crate::scenario::Operation {
        use crate::scenario::Operation as O;
        match self.call.as_str() {
            "dashboard" => O::Dashboard,
            "pnl" => O::Pnl,
            "properties" => O::Properties,
            "ledger" => O::Ledger,
            "portfolio" => O::Portfolio,
            "record_revenue" => O::RecordRevenue,
            "record_expense" => O::RecordExpense,
            "post_batch" => O::PostBatch,
            "adjust" => O::Adjust,
            _ => O::Void,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    pub name: String,
    pub weight: u32,
    /// After each call the user thinks between these (Goose's wait time).
    pub think: Dur,
    pub think_max: Dur,
    pub steps: Vec<Step>,
}

/// A checked journeys file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journeys {
    pub name: String,
    pub description: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub seed: u64,
    pub users: u32,
    /// Users started per second.
    pub hatch_rate: f64,
    pub duration: Dur,
    /// Histogram interval.
    pub interval: Dur,
    /// A request taking longer fails.
    pub timeout: Dur,
    /// The modes run, one after another, with the flag set to each.
    pub variants: Vec<Mode>,
    pub personas: Vec<Persona>,
    /// Budgets per transaction (`persona.step`).
    pub budgets: BTreeMap<String, Budget>,
}

impl Journeys {
    /// Every transaction's name, `persona.step`, in file order.
    pub fn transactions(&self) -> Vec<(String, &Step)> {
        self.personas
            .iter()
            .flat_map(|p| {
                p.steps
                    .iter()
                    .map(move |s| (format!("{}.{}", p.name, s.name), s))
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: Option<Spanned<String>>,
    call: Spanned<String>,
    days: Option<Spanned<u32>>,
    limit: Option<Spanned<u32>>,
    pages: Option<Spanned<u32>>,
    top: Option<Spanned<u32>>,
    entries: Option<Spanned<u32>>,
    month_back: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaFile {
    name: Spanned<String>,
    weight: Option<Spanned<u32>>,
    think: Option<Spanned<Dur>>,
    think_max: Option<Spanned<Dur>>,
    #[serde(default)]
    step: Vec<StepFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JourneysFile {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    seed: Option<u64>,
    users: Option<Spanned<u32>>,
    hatch_rate: Option<Spanned<f64>>,
    duration: Option<Spanned<Dur>>,
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    variants: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    persona: Vec<Spanned<PersonaFile>>,
    #[serde(default)]
    budgets: BTreeMap<Spanned<String>, Spanned<BudgetFile>>,
}

/// Read and check a journeys file.
pub fn load(path: &Path) -> Result<Journeys> {
    let text = std::fs::read_to_string(path).io("reading the journeys file", path)?;
    check(path, &text).map_err(|e| Error::Usage(e.join("\n")))
}

/// Check journeys text: every error as `file:line:column: what`.
pub fn check(path: &Path, text: &str) -> std::result::Result<Journeys, Vec<String>> {
    let f: JourneysFile = toml::from_str(text).map_err(|e| vec![toml_error_at(path, text, &e)])?;
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut at = |span: std::ops::Range<usize>, msg: String| {
        let (line, col) = line_col(text, span.start);
        errors.push((
            span.start,
            format!("{}:{line}:{col}: {msg}", path.display()),
        ));
    };
    let whole = 0..0;
    let num = |v: &Option<Spanned<u32>>, default: u32| v.as_ref().map_or(default, |x| *x.get_ref());
    let users = num(&f.users, 10);
    if users == 0 || users > 10_000 {
        at(
            f.users.as_ref().map_or(whole.clone(), |u| u.span()),
            format!("users {users}: give 1..10000"),
        );
    }
    let hatch_rate = f.hatch_rate.as_ref().map_or(1.0, |h| *h.get_ref());
    if !(hatch_rate > 0.0 && hatch_rate <= 10_000.0) {
        at(
            f.hatch_rate.as_ref().map_or(whole.clone(), |h| h.span()),
            format!("hatch_rate {hatch_rate}: users started per second, give more than 0 (at most 10000)"),
        );
    }
    let dur = |v: &Option<Spanned<Dur>>, default: Duration| {
        v.as_ref().map_or(Dur(default), |d| *d.get_ref())
    };
    let duration = dur(&f.duration, Duration::from_secs(60));
    let interval = dur(&f.interval, Duration::from_secs(1));
    let timeout = dur(&f.timeout, Duration::from_secs(10));
    for (v, value, min, what) in [
        (&f.duration, duration, Duration::from_secs(1), "duration"),
        (
            &f.interval,
            interval,
            Duration::from_millis(100),
            "interval",
        ),
        (&f.timeout, timeout, Duration::from_millis(1), "timeout"),
    ] {
        if value.0 < min {
            at(
                v.as_ref().map_or(whole.clone(), |d| d.span()),
                format!("{what} {value} is shorter than {}", Dur(min)),
            );
        }
    }
    let mut variants = Vec::new();
    for v in f.variants.iter().flatten() {
        let mode = match v.get_ref().as_str() {
            "legacy" => Ok(Mode::Legacy),
            "partitioned" => Ok(Mode::Partitioned),
            _ => Err(()),
        };
        match mode {
            Ok(m) if variants.contains(&m) => at(
                v.span(),
                format!("variant {:?} is listed twice", v.get_ref()),
            ),
            Ok(m) => variants.push(m),
            Err(()) => at(
                v.span(),
                format!(
                    "variant {:?}: a variant is a mode, legacy or partitioned",
                    v.get_ref()
                ),
            ),
        }
    }
    if f.variants.is_none() {
        variants = vec![Mode::Legacy, Mode::Partitioned];
    } else if variants.is_empty() && f.variants.as_ref().is_some_and(|v| v.is_empty()) {
        at(
            whole.clone(),
            "variants is empty: list legacy, partitioned or both".into(),
        );
    }
    if f.persona.is_empty() {
        at(
            f.name.span(),
            "no [[persona]]: a journeys file needs at least one".into(),
        );
    }
    let mut personas: Vec<Persona> = Vec::new();
    for p in &f.persona {
        let pf = p.get_ref();
        let pname = pf.name.get_ref().clone();
        if !valid_name(&pname) {
            at(
                pf.name.span(),
                format!("persona name {pname:?}: use letters, digits and _ only"),
            );
        }
        if personas.iter().any(|q| q.name == pname) {
            at(
                pf.name.span(),
                format!("persona {pname:?} is defined twice"),
            );
        }
        let weight = num(&pf.weight, 1);
        if weight == 0 || weight > 1000 {
            at(
                pf.weight.as_ref().map_or(pf.name.span(), |w| w.span()),
                format!("weight {weight}: give 1..1000"),
            );
        }
        if pf.step.is_empty() {
            at(
                p.span(),
                format!("persona {pname:?} has no [[persona.step]]"),
            );
        }
        let mut steps: Vec<Step> = Vec::new();
        let (mut knows_property, mut has_written) = (false, false);
        for s in &pf.step {
            let call = s.call.get_ref().clone();
            if !CALLS.contains(&call.as_str()) {
                at(
                    s.call.span(),
                    format!("unknown call {call:?}; one of {}", CALLS.join(", ")),
                );
                continue;
            }
            let name = s
                .name
                .as_ref()
                .map_or(call.clone(), |n| n.get_ref().clone());
            let name_span = s.name.as_ref().map_or(s.call.span(), |n| n.span());
            if !valid_name(&name) {
                at(
                    name_span.clone(),
                    format!("step name {name:?}: use letters, digits and _ only"),
                );
            }
            if steps.iter().any(|t| t.name == name) {
                at(name_span, format!("persona {pname:?} has two steps named {name:?}: name them apart (name = \"...\")"));
            }
            // Fields a call does not take are errors, not silently ignored.
            let takes: &[&str] = match call.as_str() {
                "portfolio" => &["days", "top"],
                "dashboard" | "properties" => &["days"],
                "ledger" => &["days", "limit", "pages"],
                "pnl" => &["month_back"],
                "post_batch" => &["entries"],
                _ => &[],
            };
            for (field, v) in [
                ("days", &s.days),
                ("limit", &s.limit),
                ("pages", &s.pages),
                ("top", &s.top),
                ("entries", &s.entries),
                ("month_back", &s.month_back),
            ] {
                if let Some(v) = v {
                    if !takes.contains(&field) {
                        at(
                            v.span(),
                            format!(
                                "{call} does not take {field}{}",
                                if takes.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (it takes {})", takes.join(", "))
                                }
                            ),
                        );
                    }
                }
            }
            let ranged =
                |v: &Option<Spanned<u32>>,
                 default: u32,
                 max: u32,
                 what: &str,
                 errs: &mut dyn FnMut(std::ops::Range<usize>, String)| {
                    let x = num(v, default);
                    if x == 0 || x > max {
                        errs(
                            v.as_ref().map_or(s.call.span(), |v| v.span()),
                            format!("{what} {x}: give 1..{max}"),
                        );
                    }
                    x
                };
            let days = ranged(&s.days, 30, 3660, "days", &mut at);
            let limit = ranged(
                &s.limit,
                50,
                crate::repo::reporting::MAX_PAGE,
                "limit",
                &mut at,
            );
            let pages = ranged(&s.pages, 1, 100, "pages", &mut at);
            let top = ranged(&s.top, 10, crate::repo::reporting::MAX_PAGE, "top", &mut at);
            let entries = ranged(
                &s.entries,
                10,
                crate::repo::finance::MAX_BATCH as u32,
                "entries",
                &mut at,
            );
            let month_back = num(&s.month_back, 0);
            if month_back > 120 {
                at(
                    s.month_back.as_ref().map_or(s.call.span(), |v| v.span()),
                    format!("month_back {month_back}: give 0..120"),
                );
            }
            match call.as_str() {
                "record_revenue" | "record_expense" | "post_batch" if !knows_property => at(
                    s.call.span(),
                    format!("{call} needs a property of the organization: put a `properties` step before it"),
                ),
                "adjust" | "void" if !has_written => at(
                    s.call.span(),
                    format!("{call} acts on an entry this user wrote: put a record_revenue, record_expense or post_batch step before it"),
                ),
                _ => {}
            }
            knows_property |= call == "properties";
            has_written |= matches!(
                call.as_str(),
                "record_revenue" | "record_expense" | "post_batch"
            );
            steps.push(Step {
                name,
                call,
                days,
                limit,
                pages,
                top,
                entries,
                month_back,
            });
        }
        let think = pf
            .think
            .as_ref()
            .map_or(Dur(Duration::ZERO), |t| *t.get_ref());
        let think_max = pf.think_max.as_ref().map_or(think, |t| *t.get_ref());
        if think_max.0 < think.0 || think_max.0 > Duration::from_secs(600) {
            at(
                pf.think_max
                    .as_ref()
                    .or(pf.think.as_ref())
                    .map_or(pf.name.span(), |t| t.span()),
                format!("think {think} to think_max {think_max}: give think <= think_max <= 10m"),
            );
        }
        personas.push(Persona {
            name: pname,
            weight,
            think,
            think_max,
            steps,
        });
    }
    let names: Vec<String> = personas
        .iter()
        .flat_map(|p| {
            p.steps
                .iter()
                .map(move |s| format!("{}.{}", p.name, s.name))
        })
        .collect();
    let mut budgets = BTreeMap::new();
    for (k, b) in &f.budgets {
        if !names.contains(k.get_ref()) {
            at(
                k.span(),
                format!(
                    "budget for {:?}, which is no transaction (persona.step); the file has {}",
                    k.get_ref(),
                    names.join(", ")
                ),
            );
            continue;
        }
        match b.get_ref().budget(k.get_ref(), b.span()) {
            Ok(budget) => {
                budgets.insert(k.get_ref().clone(), budget);
            }
            Err((span, msg)) => at(span, msg),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.0);
        return Err(errors.into_iter().map(|e| e.1).collect());
    }
    Ok(Journeys {
        name: f.name.into_inner(),
        description: f.description,
        path: path.to_path_buf(),
        seed: f.seed.unwrap_or(1),
        users,
        hatch_rate,
        duration,
        interval,
        timeout,
        variants,
        personas,
        budgets,
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> (PathBuf, String) {
        let p = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/journeys_hotel.toml"
        ));
        let t = std::fs::read_to_string(&p).unwrap();
        (p, t)
    }

    #[test]
    fn the_shipped_journeys_file_checks() {
        let (p, t) = shipped();
        assert!(is_journeys(&t));
        let j = check(&p, &t).unwrap();
        assert_eq!(j.personas.len(), 3);
        let names: Vec<String> = j.transactions().into_iter().map(|t| t.0).collect();
        for b in j.budgets.keys() {
            assert!(names.contains(b), "{b}");
        }
        assert!(!is_journeys(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scenarios/reporting_day.toml"
            ))
            .unwrap()
        ));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let (p, t) = shipped();
        // An unknown call, where it is written.
        let bad = t.replacen("call = \"pnl\"", "call = \"p_and_l\"", 1);
        let e = check(&p, &bad).unwrap_err().join("\n");
        let off = bad.find("\"p_and_l\"").unwrap();
        let (line, col) = line_col(&bad, off);
        assert!(
            e.contains(&format!(
                "journeys_hotel.toml:{line}:{col}: unknown call \"p_and_l\""
            )),
            "{e}"
        );
        // A misspelt key: TOML's own error, with its position.
        let bad = t.replacen("days = ", "dayz = ", 1);
        let e = check(&p, &bad).unwrap_err().join("\n");
        let (line, _) = line_col(&bad, bad.find("dayz").unwrap());
        assert!(
            e.contains(&format!(":{line}:")) && e.contains("dayz"),
            "{e}"
        );
        // A budget for a transaction that does not exist, at its key.
        let bad = format!("{t}\n[budgets.\"owner_morning.balance\"]\np99 = \"1s\"\n");
        let e = check(&p, &bad).unwrap_err().join("\n");
        let (line, _) = line_col(
            &bad,
            bad.find("[budgets.\"owner_morning.balance\"]").unwrap(),
        );
        assert!(
            e.contains(&format!(":{line}:")) && e.contains("owner_morning.balance"),
            "{e}"
        );
        // A write without a property step before it.
        let bad = t.replacen("call = \"properties\"", "call = \"dashboard\"", 1);
        let e = check(&p, &bad).unwrap_err().join("\n");
        assert!(e.contains("put a `properties` step before it"), "{e}");
    }
}
