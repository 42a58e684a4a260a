//! The scenario checker: every error a scenario file holds, each as
//! `file:line:column: what`, and the checked [`Scenario`] when there is none.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;

use super::file::*;
use super::*;
use crate::error::Error;
use crate::repo::{Pooling, Via};
use crate::schema::Mode;
use crate::text::line_col;

/// The longest early release a scenario may ask for: the worker spins that long.
const MAX_EARLY_RELEASE: Duration = Duration::from_millis(2);

/// Check scenario text and return every error it can find, in file order,
/// each as `file:line:column: what`.
///
/// TOML stops at its first error, so a line it refuses (an unknown key, a
/// value of the wrong type, bad syntax) is reported and blanked, keeping
/// every offset, and the text is read again. Once it reads, each phase, mix
/// entry, variant and budget is checked on its own, so an error in one does
/// not hide an error in the next.
pub fn check(path: &Path, text: &str) -> std::result::Result<Scenario, Vec<String>> {
    use toml::de::{DeTable, DeValue};
    let mut errors: Vec<((usize, usize), String)> = Vec::new();
    let mut located = |span: std::ops::Range<usize>, msg: &str| {
        let (line, col) = line_col(text, span.start);
        errors.push((
            (line, col),
            format!("{}:{line}:{col}: {}", path.display(), msg.trim_end()),
        ));
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        located(e.span().unwrap_or(0..0), e.message());
    }
    if syntax.is_empty() {
        let whole = doc.span();
        let mut head = DeTable::default();
        let (mut phases, mut mix, mut variants) = (None, None, Vec::new());
        let mut jobs = Vec::new();
        let mut budgets = BTreeMap::new();
        let mut broken = false;
        let mut mix_names: Option<Vec<String>> = Some(Vec::new());
        for (key, value) in doc.into_inner() {
            let span = value.span();
            match key.get_ref().as_ref() {
                "phase" | "mix" | "variant" | "job" => {
                    let Some(items) = value.get_ref().as_array() else {
                        located(
                            span,
                            &format!(
                                "`{}` is an array of tables: write [[{}]]",
                                key.get_ref(),
                                key.get_ref()
                            ),
                        );
                        broken = true;
                        continue;
                    };
                    let items = items.clone();
                    match key.get_ref().as_ref() {
                        "phase" => {
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<PhaseFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            phases = Some(Spanned::new(span, read.into_iter().flatten().collect()));
                        }
                        "mix" => {
                            // Names as written, also of entries that do not read.
                            mix_names = items
                                .iter()
                                .map(|m| {
                                    let t = m.get_ref().as_table()?;
                                    let field = |k: &str| {
                                        t.iter()
                                            .find(|(key, _)| key.get_ref().as_ref() == k)
                                            .and_then(|(_, v)| {
                                                v.get_ref().as_str().map(str::to_string)
                                            })
                                    };
                                    field("name").or_else(|| field("operation"))
                                })
                                .collect();
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<MixFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            mix = Some(Spanned::new(span, read.into_iter().flatten().collect()));
                        }
                        "job" => {
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<JobFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            jobs = read.into_iter().flatten().collect();
                        }
                        _ => {
                            let read: Vec<_> = items
                                .into_iter()
                                .map(|v| read_entry::<VariantFile>(v, &mut located))
                                .collect();
                            broken |= read.iter().any(Option::is_none);
                            variants = read.into_iter().flatten().collect();
                        }
                    }
                }
                "budgets" => {
                    let Some(t) = value.get_ref().as_table() else {
                        located(span, "`budgets` is a table: write [budgets.<operation>]");
                        broken = true;
                        continue;
                    };
                    for (op, b) in t.clone() {
                        let op = Spanned::new(op.span(), op.get_ref().to_string());
                        match read_entry::<BudgetFile>(b, &mut located) {
                            Some(b) => {
                                budgets.insert(op, b);
                            }
                            None => broken = true,
                        }
                    }
                }
                _ => {
                    head.insert(key, value);
                }
            }
        }
        let head = read_entry::<HeadFile>(Spanned::new(whole, DeValue::Table(head)), &mut located);
        if let Some(h) = head.map(Spanned::into_inner) {
            let file = ScenarioFile {
                head: h,
                jobs,
                phases: phases.unwrap_or_else(|| Spanned::new(0..0, Vec::new())),
                mix: mix.unwrap_or_else(|| Spanned::new(0..0, Vec::new())),
                variants,
                budgets,
            };
            let checker = Checker {
                path,
                text,
                errors: std::cell::RefCell::new(Vec::new()),
                whole: !broken,
                mix_names,
            };
            let out = checker.scenario(file);
            errors.extend(checker.errors.into_inner());
            if let Some(s) = out.filter(|_| errors.is_empty() && !broken) {
                return Ok(s);
            }
        }
    }
    errors.sort_by_key(|e| e.0);
    errors.dedup_by(|a, b| a.1 == b.1);
    Err(errors.into_iter().map(|e| e.1).collect())
}

/// Read one table of a scenario file (a phase, a mix entry, a budget),
/// reporting every key it refuses: a refused key is reported, taken out
/// and the table read again. None when a known key was refused: what is
/// left is not checked further, so a key taken out cannot cause errors of
/// its own (unknown keys are only reported).
fn read_entry<T: serde::de::DeserializeOwned>(
    value: Spanned<toml::de::DeValue<'_>>,
    located: &mut impl FnMut(std::ops::Range<usize>, &str),
) -> Option<Spanned<T>> {
    use toml::de::{DeValue, ValueDeserializer};
    let mut value = value;
    let mut removed: Vec<String> = Vec::new();
    // Only unknown keys taken out: what is left is the whole entry.
    let mut only_unknown = true;
    for _ in 0..64 {
        let e = match Spanned::<T>::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(t) if only_unknown => return Some(t),
            Ok(_) => return None,
            Err(e) => e,
        };
        let msg = e.message().to_string();
        // A required key taken out for its own error: said already.
        if msg.starts_with("missing field")
            && removed.iter().any(|k| msg.contains(&format!("`{k}`")))
        {
            return None;
        }
        let span = e.span().unwrap_or_else(|| value.span());
        located(span.clone(), &msg);
        only_unknown &= msg.starts_with("unknown field");
        // Take out the key the error is in, and read the rest.
        let span_of_value = value.span();
        let DeValue::Table(t) = value.into_inner() else {
            return None;
        };
        let culprit = t
            .iter()
            .find(|(k, v)| {
                let (k, v) = (k.span(), v.span());
                (k.start..v.end.max(k.end)).contains(&span.start)
            })
            .map(|(k, _)| k.get_ref().to_string());
        let culprit = culprit?;
        removed.push(culprit.clone());
        let rest = t
            .into_iter()
            .filter(|(k, _)| k.get_ref().as_ref() != culprit.as_str())
            .collect();
        value = Spanned::new(span_of_value, DeValue::Table(rest));
    }
    None
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    /// Errors found so far, with their (line, column).
    errors: std::cell::RefCell<Vec<((usize, usize), String)>>,
    /// Every entry was read: checks across entries (at least one phase,
    /// names given twice) can be made.
    whole: bool,
    /// The names of the mix as written (None when one cannot be told).
    mix_names: Option<Vec<String>>,
}

impl Checker<'_> {
    fn at(&self, span: std::ops::Range<usize>, msg: impl std::fmt::Display) -> Error {
        let (line, col) = line_col(self.text, span.start);
        Error::Usage(format!("{}:{line}:{col}: {msg}", self.path.display()))
    }

    /// Keep `e` (from [`Checker::at`]) and go on checking.
    fn note(&self, e: Error) {
        let msg = e.to_string();
        // The position back from "file:line:col:", to keep file order.
        let pos = msg
            .strip_prefix(&format!("{}:", self.path.display()))
            .and_then(|rest| {
                let mut it = rest.splitn(3, ':');
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .unwrap_or((usize::MAX, 0));
        self.errors.borrow_mut().push((pos, msg));
    }

    /// The value of `r`, or `fallback` after keeping its error.
    fn or_note<T>(&self, r: Result<T>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.note(e);
            fallback
        })
    }

    fn positive<T: Copy + Into<f64> + std::fmt::Display>(
        &self,
        v: &Option<Spanned<T>>,
        what: &str,
    ) -> Result<Option<T>> {
        match v {
            Some(s) if (*s.get_ref()).into() <= 0.0 || !(*s.get_ref()).into().is_finite() => {
                Err(self.at(
                    s.span(),
                    format!("{what} must be positive, not {}", s.get_ref()),
                ))
            }
            Some(s) => Ok(Some(*s.get_ref())),
            None => Ok(None),
        }
    }

    /// The scenario, or None when any error was noted.
    fn scenario(&self, f: ScenarioFile) -> Option<Scenario> {
        let name = f.head.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        if self.whole && f.phases.get_ref().is_empty() {
            self.note(self.at(f.phases.span(), "a scenario needs at least one [[phase]]"));
        }
        let phases: Vec<Phase> = f
            .phases
            .get_ref()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.phase(i, p).map_err(|e| self.note(e)).ok())
            .collect();
        if self.whole && f.mix.get_ref().is_empty() {
            self.note(self.at(f.mix.span(), "a scenario needs at least one [[mix]] entry"));
        }
        let entries: Vec<Option<MixEntry>> = f
            .mix
            .get_ref()
            .iter()
            .map(|m| self.mix_entry(m).map_err(|e| self.note(e)).ok())
            .collect();
        let mix_ok = self.whole && entries.iter().all(Option::is_some);
        let mix: Vec<MixEntry> = entries.into_iter().flatten().collect();
        let total: f64 = mix.iter().map(|m| m.weight).sum();
        if mix_ok && !mix.is_empty() && total <= 0.0 {
            let first = &f.mix.get_ref()[0];
            self.note(self.at(
                first.get_ref().weight.span(),
                "the weights of the mix sum to zero: give at least one operation a positive weight",
            ));
        }
        if mix_ok {
            for (i, m) in mix.iter().enumerate() {
                if mix[..i].iter().any(|o| o.name == m.name) {
                    let span = f.mix.get_ref()[i].span();
                    self.note(self.at(
                        span,
                        format!(
                            "the mix has {:?} twice: give one of them a `name` of its own",
                            m.name
                        ),
                    ));
                }
            }
        }
        let tenants = match &f.head.tenants {
            None => Tenants::Uniform,
            Some(t) => self.or_note(self.tenants(t), Tenants::Uniform),
        };
        let variants = if f.variants.is_empty() {
            Variant::defaults()
        } else {
            let mut out: Vec<Variant> = Vec::new();
            for v in &f.variants {
                let Some(v2) = self.variant(v.get_ref()).map_err(|e| self.note(e)).ok() else {
                    continue;
                };
                if self.whole && out.iter().any(|o| o.name == v2.name) {
                    self.note(self.at(
                        v.get_ref().name.span(),
                        format!("variant {:?} is named twice", v2.name),
                    ));
                    continue;
                }
                out.push(v2);
            }
            out
        };
        let mut budgets = BTreeMap::new();
        for (op, b) in &f.budgets {
            if let Some(names) = self
                .mix_names
                .as_ref()
                .filter(|n| !n.contains(op.get_ref()))
            {
                self.note(self.at(
                    op.span(),
                    format!(
                        "budget for {:?}, which is not in the mix (the mix has {})",
                        op.get_ref(),
                        names.join(", ")
                    ),
                ));
                continue;
            }
            match b.get_ref().budget(op.get_ref(), b.span()) {
                Ok(budget) => {
                    budgets.insert(op.get_ref().clone(), budget);
                }
                Err((span, msg)) => self.note(self.at(span, msg)),
            }
        }
        let default_validity = Validity {
            min_rate: 0.95,
            max_driver_lag: Dur(Duration::from_millis(5)),
            confidence: DEFAULT_CONFIDENCE,
        };
        let validity = match &f.head.validity {
            None => default_validity,
            Some(v) => Validity {
                min_rate: match &v.min_rate {
                    Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                        self.note(self.at(r.span(), "min_rate is a fraction in 0..1"));
                        default_validity.min_rate
                    }
                    r => r.as_ref().map_or(0.95, |r| *r.get_ref()),
                },
                max_driver_lag: v.max_driver_lag.unwrap_or(Dur(Duration::from_millis(5))),
                confidence: match &v.confidence {
                    Some(c) if !(0.5..1.0).contains(c.get_ref()) => {
                        self.note(self.at(
                            c.span(),
                            "confidence is a fraction in [0.5, 1), such as 0.99",
                        ));
                        default_validity.confidence
                    }
                    c => c
                        .as_ref()
                        .map_or(default_validity.confidence, |c| *c.get_ref()),
                },
            },
        };
        let interval = f
            .head
            .interval
            .as_ref()
            .map_or(Dur(Duration::from_secs(1)), |i| *i.get_ref());
        if interval.0 < Duration::from_millis(100) {
            let span = f.head.interval.as_ref().map_or(0..0, |i| i.span());
            self.note(self.at(
                span,
                format!("interval {interval} is too short: at least 100ms"),
            ));
        }
        if let Some(e) = &f.head.early_release {
            if e.get_ref().0 > MAX_EARLY_RELEASE {
                self.note(self.at(
                    e.span(),
                    format!(
                        "early_release {} is too long: at most 2ms (each request would spin a core that long)",
                        e.get_ref()
                    ),
                ));
            }
        }
        let jobs: Vec<ScheduledJob> = f
            .jobs
            .iter()
            .filter_map(|j| self.job(j).map_err(|e| self.note(e)).ok())
            .collect();
        if !self.errors.borrow().is_empty() {
            return None;
        }
        Some(Scenario {
            name,
            description: f.head.description.unwrap_or_default(),
            path: self.path.to_path_buf(),
            seed: f.head.seed.unwrap_or(42),
            warmup: f.head.warmup.unwrap_or(Dur(Duration::ZERO)),
            interval,
            timeout: f.head.timeout.unwrap_or(Dur(Duration::from_secs(30))),
            inject_delay: f.head.inject_delay.unwrap_or(Dur(Duration::ZERO)),
            early_release: f.head.early_release.map(|d| d.into_inner()),
            phases,
            mix,
            tenants,
            variants,
            budgets,
            validity,
            jobs,
        })
    }

    fn job(&self, j: &Spanned<JobFile>) -> Result<ScheduledJob> {
        let f = j.get_ref();
        let job: crate::jobs::Job = f.name.get_ref().parse().map_err(|_| {
            self.at(
                f.name.span(),
                format!(
                    "unknown job {:?}; one of {}",
                    f.name.get_ref(),
                    crate::jobs::Job::NAMES.join(", ")
                ),
            )
        })?;
        if let Some(e) = f
            .every
            .as_ref()
            .filter(|e| e.get_ref().0 < Duration::from_secs(1))
        {
            return Err(self.at(
                e.span(),
                format!("job {job}: every {} is too often: at least 1s", e.get_ref()),
            ));
        }
        Ok(ScheduledJob {
            job,
            start: f.start.unwrap_or(Dur(Duration::ZERO)),
            every: f.every.as_ref().map(|e| *e.get_ref()),
            budget: f.budget.unwrap_or(Dur(Duration::from_secs(60))),
        })
    }

    fn phase(&self, i: usize, p: &Spanned<PhaseFile>) -> Result<Phase> {
        let span = p.span();
        let p = p.get_ref();
        let name = p.name.clone().unwrap_or_else(|| format!("phase {}", i + 1));
        if p.duration.0.is_zero() {
            return Err(self.at(span, format!("{name}: duration must be more than zero")));
        }
        let load = match (&p.rate, &p.users) {
            (Some(_), Some(u)) => {
                return Err(self.at(
                    u.span(),
                    format!("{name}: give `rate` (open model) or `users` (closed model), not both"),
                ))
            }
            (None, None) => {
                return Err(self.at(
                    span,
                    format!(
                        "{name}: give `rate` (requests/s, open model) or `users` (closed model)"
                    ),
                ))
            }
            (Some(_), None) => {
                if let Some(t) = &p.think {
                    return Err(self.at(
                        span,
                        format!("{name}: `think` ({t}) belongs to closed phases (`users`)"),
                    ));
                }
                let rate = self.positive(&p.rate, "rate")?.unwrap_or(0.0);
                let ramp_to = self.positive(&p.ramp_to, "ramp_to")?.unwrap_or(rate);
                Load::Open {
                    rate,
                    ramp_to,
                    arrival: p.arrival.unwrap_or(Arrival::Poisson),
                    max_in_flight: self
                        .positive(&p.max_in_flight, "max_in_flight")?
                        .unwrap_or(64),
                    late_after: p.late_after.unwrap_or(Dur(Duration::from_millis(10))),
                }
            }
            (None, Some(_)) => {
                for (key, set) in [
                    ("ramp_to", p.ramp_to.is_some()),
                    ("arrival", p.arrival.is_some()),
                    ("max_in_flight", p.max_in_flight.is_some()),
                    ("late_after", p.late_after.is_some()),
                ] {
                    if set {
                        return Err(self.at(
                            span,
                            format!("{name}: `{key}` belongs to open phases (`rate`)"),
                        ));
                    }
                }
                Load::Closed {
                    users: self.positive(&p.users, "users")?.unwrap_or(1),
                    think: p.think.unwrap_or(Dur(Duration::ZERO)),
                }
            }
        };
        Ok(Phase {
            name,
            duration: p.duration,
            load,
        })
    }

    fn mix_entry(&self, m: &Spanned<MixFile>) -> Result<MixEntry> {
        let span = m.span();
        let m = m.get_ref();
        let op = m.operation;
        let w = *m.weight.get_ref();
        if w < 0.0 || !w.is_finite() {
            return Err(self.at(
                m.weight.span(),
                format!("weight must be 0 or more, not {w}"),
            ));
        }
        // Keys an operation does not take are refused, so a typo in intent shows.
        let takes: &[&str] = match op {
            Operation::Dashboard | Operation::Properties => &["days"],
            Operation::Ledger => &["days", "limit"],
            Operation::Portfolio => &["days", "top"],
            Operation::PostBatch => &["entries"],
            Operation::Sql => &["sql", "params", "via"],
            _ => &[],
        };
        let given: [(&str, Option<std::ops::Range<usize>>); 7] = [
            ("days", m.days.as_ref().map(|s| s.span())),
            ("limit", m.limit.as_ref().map(|s| s.span())),
            ("top", m.top.as_ref().map(|s| s.span())),
            ("entries", m.entries.as_ref().map(|s| s.span())),
            ("sql", m.sql.as_ref().map(|s| s.span())),
            ("params", m.params.as_ref().map(|s| s.span())),
            ("via", m.via.as_ref().map(|s| s.span())),
        ];
        for (key, s) in given {
            if let Some(s) = s {
                if !takes.contains(&key) {
                    return Err(self.at(s, format!("`{key}` does not apply to {}", op.name())));
                }
            }
        }
        let days = self.positive(&m.days, "days")?.unwrap_or(match op {
            Operation::Dashboard => 30,
            Operation::Portfolio => 14,
            _ => 7,
        });
        let limit = self.positive(&m.limit, "limit")?.unwrap_or(50);
        let top = self.positive(&m.top, "top")?.unwrap_or(10);
        let entries = self.positive(&m.entries, "entries")?.unwrap_or(50);
        if entries as usize > crate::repo::finance::MAX_BATCH {
            let s = m.entries.as_ref().unwrap().span();
            return Err(self.at(
                s,
                format!(
                    "a batch holds at most {} entries",
                    crate::repo::finance::MAX_BATCH
                ),
            ));
        }
        let sql = m.sql.as_ref().map(|s| s.get_ref().clone());
        if op == Operation::Sql && sql.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(self.at(span, "a sql operation needs `sql = \"SELECT ...\"`"));
        }
        let params = match &m.params {
            None => Vec::new(),
            Some(p) => p
                .get_ref()
                .iter()
                .map(|s| s.parse::<SqlParam>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| self.at(p.span(), e))?,
        };
        if let Some(sql) = &sql {
            let want = (1..=99)
                .take_while(|n| sql.contains(&format!("${n}")))
                .count();
            if want != params.len() {
                let s = m.params.as_ref().map_or(span.clone(), |p| p.span());
                return Err(self.at(
                    s,
                    format!(
                        "the statement uses {want} parameter(s) ($1..${want}) but `params` gives {}",
                        params.len()
                    ),
                ));
            }
        }
        let via = match &m.via {
            None => None,
            Some(v) => Some(
                v.get_ref()
                    .parse::<Via>()
                    .map_err(|e| self.at(v.span(), e))?,
            ),
        };
        let name = match &m.name {
            None => op.name().to_string(),
            Some(n) => {
                let s = n.get_ref();
                if s.is_empty()
                    || !s
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(self.at(
                        n.span(),
                        "a name is letters, digits, '_' and '-' (it becomes a histogram tag)",
                    ));
                }
                s.clone()
            }
        };
        Ok(MixEntry {
            name,
            operation: op,
            weight: w,
            days,
            limit,
            top,
            entries,
            sql,
            params,
            via,
        })
    }

    fn tenants(&self, t: &TenantsFile) -> Result<Tenants> {
        let not_here = |what: &str, s: std::ops::Range<usize>| {
            self.at(s, format!("`{what}` does not apply to this distribution"))
        };
        Ok(match t.distribution.get_ref() {
            DistributionName::Uniform => {
                if let Some(e) = &t.exponent {
                    return Err(not_here("exponent", e.span()));
                }
                if let Some(w) = &t.tiers {
                    return Err(not_here("tiers", w.span()));
                }
                Tenants::Uniform
            }
            DistributionName::Zipf => {
                if let Some(w) = &t.tiers {
                    return Err(not_here("tiers", w.span()));
                }
                let exponent = self.positive(&t.exponent, "exponent")?.unwrap_or(1.0);
                Tenants::Zipf { exponent }
            }
            DistributionName::Tiers => {
                if let Some(e) = &t.exponent {
                    return Err(not_here("exponent", e.span()));
                }
                let Some(w) = &t.tiers else {
                    return Err(self.at(
                        t.distribution.span(),
                        "tiers needs `tiers = { single = .., small = .., medium = .., chain = .. }`",
                    ));
                };
                let weights = *w.get_ref();
                let all = [weights.single, weights.small, weights.medium, weights.chain];
                if all.iter().any(|x| *x < 0.0 || !x.is_finite()) || all.iter().sum::<f64>() <= 0.0
                {
                    return Err(self.at(
                        w.span(),
                        "tier weights are 0 or more and at least one is positive",
                    ));
                }
                Tenants::Tiers { weights }
            }
        })
    }

    fn variant(&self, v: &VariantFile) -> Result<Variant> {
        let name = v.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(self.at(
                v.name.span(),
                "a variant name is letters, digits, '_' and '-' (it becomes a histogram tag)",
            ));
        }
        let mode: Mode = v
            .mode
            .get_ref()
            .parse()
            .map_err(|e| self.at(v.mode.span(), e))?;
        let reads = match &v.reads {
            None => Via::Auto,
            Some(r) => r.get_ref().parse().map_err(|e| self.at(r.span(), e))?,
        };
        let pool = match &v.pool {
            None => Pooling::Direct,
            Some(p) => p.get_ref().parse().map_err(|e| self.at(p.span(), e))?,
        };
        Ok(Variant {
            name,
            mode,
            reads,
            cache: v.cache.unwrap_or(true),
            pool,
        })
    }
}
