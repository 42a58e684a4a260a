//! Each piece judged from its record, failing closed: a piece is a pass only
//! when its record says so in full; what is missing, interrupted, invalid or
//! unjudged is unknown; the verdict is GO only when every required piece
//! passes.

use std::path::{Path, PathBuf};

use super::{
    modes, Found, Piece, Readiness, Source, State, Verdict, PLATFORM_ORGANIZATIONS,
    READINESS_VERSION, REQUIRED,
};
use crate::capacity::search::End;
use crate::driver::ledger::LedgerCheck;
use crate::progress::thousands;
use crate::rollout::drill::SpanKind;
use crate::run::{BudgetOutcome, RunResult, Status};
use crate::schema::Mode;

/// The estate a run's record says it ran on.
fn organizations(r: &RunResult) -> Option<u64> {
    let d = r.environment.dataset.as_ref()?;
    // The seed's record counts them; a journeys run names them.
    d.pointer("/counts/organizations")
        .or_else(|| d.get("organizations"))
        .and_then(serde_json::Value::as_u64)
}

fn source(dir: &Path, anchor: Option<&str>, chart: Option<&str>) -> Source {
    // The chart, only when `rehearse report` drew it.
    let chart = chart.filter(|c| dir.join(c).exists()).map(str::to_string);
    Source {
        dir: dir.to_path_buf(),
        anchor: anchor.map(|a| format!("report.html#{a}")),
        chart,
    }
}

fn piece(id: &str, state: State, figure: String, reasons: Vec<String>) -> Piece {
    let req = REQUIRED.iter().find(|r| r.id == id);
    Piece {
        id: id.to_string(),
        title: req.map_or(id, |r| r.title).to_string(),
        required: req.is_some(),
        state,
        figure,
        reasons,
        notes: Vec::new(),
        organizations: None,
        sources: Vec::new(),
    }
}

/// Missing evidence: never a pass.
fn missing(id: &str) -> Piece {
    let req = REQUIRED
        .iter()
        .find(|r| r.id == id)
        .expect("a required piece");
    piece(
        id,
        State::Unknown,
        "missing".into(),
        vec![format!(
            "no {} was found in the directories read ({} gathers it)",
            req.title.to_lowercase(),
            req.how
        )],
    )
}

/// The worst of the states: a failure decides, then what is unknown.
fn worst(states: impl IntoIterator<Item = State>) -> State {
    let mut out = State::Pass;
    for s in states {
        out = match (out, s) {
            (State::Fail, _) | (_, State::Fail) => State::Fail,
            (State::Unknown, _) | (_, State::Unknown) => State::Unknown,
            _ => State::Pass,
        };
    }
    out
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Running => "did not finish",
        Status::Complete => "completed",
        Status::Interrupted => "was interrupted",
        Status::Failed => "stopped on an error",
    }
}

/// Every suite scenario in the partitioned mode.
fn suite(f: &Found) -> Piece {
    let mut states = Vec::new();
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let (mut scenarios, mut met, mut missed, mut unjudged) = (0, 0, 0, 0);
    let mut orgs = None;
    for (dir, r) in &f.runs {
        let parts: Vec<_> = r
            .variants
            .iter()
            .filter(|v| v.variant.mode == Mode::Partitioned)
            .collect();
        if parts.is_empty() {
            continue;
        }
        scenarios += 1;
        orgs = orgs.or(organizations(r));
        sources.push(source(
            dir,
            Some("budgets"),
            Some("charts/variants-p99.svg"),
        ));
        let name = &r.scenario.name;
        if r.status != Status::Complete {
            states.push(State::Unknown);
            reasons.push(format!("{name}: the run {}", status_word(r.status)));
            continue;
        }
        for v in parts {
            let vn = &v.variant.name;
            if !v.validity.valid || !v.validity.reasons.is_empty() {
                states.push(State::Unknown);
                for why in &v.validity.reasons {
                    reasons.push(format!("{name} [{vn}] is not valid: {why}"));
                }
                if v.validity.reasons.is_empty() {
                    reasons.push(format!("{name} [{vn}] is not valid"));
                }
                continue;
            }
            if v.budgets.is_empty() {
                states.push(State::Unknown);
                reasons.push(format!("{name} [{vn}] has no budgets: nothing was judged"));
                continue;
            }
            for b in &v.budgets {
                match b.outcome {
                    BudgetOutcome::Pass => met += 1,
                    BudgetOutcome::Fail => {
                        missed += 1;
                        states.push(State::Fail);
                        reasons.push(format!(
                            "{name} [{vn}]: {} {} missed: {}",
                            b.operation,
                            b.metric,
                            b.describe()
                        ));
                    }
                    BudgetOutcome::Unjudged => {
                        unjudged += 1;
                        states.push(State::Unknown);
                        reasons.push(format!(
                            "{name} [{vn}]: {} {} could not be judged: {}",
                            b.operation,
                            b.metric,
                            b.describe()
                        ));
                    }
                }
            }
        }
    }
    if scenarios == 0 {
        let mut p = missing("suite");
        p.reasons = vec![
            "no run with a partitioned variant was found (rehearse run SCENARIO... --out DIR gathers it)"
                .into(),
        ];
        return p;
    }
    let mut p = piece(
        "suite",
        worst(states),
        format!(
            "{scenarios} scenario{} in the partitioned mode: {met} budget{} met, {missed} missed, {unjudged} not judged",
            if scenarios == 1 { "" } else { "s" },
            if met == 1 { "" } else { "s" }
        ),
        reasons,
    );
    p.organizations = orgs;
    p.sources = sources;
    p
}

/// Writes lost, changed or resurrected in a drill's final checks.
fn lost(checks: &[LedgerCheck]) -> (u64, u64, u64, u64) {
    let sum = |f: fn(&LedgerCheck) -> u64| checks.iter().map(f).sum::<u64>();
    (
        sum(|c| c.missing),
        sum(|c| c.differing),
        sum(|c| c.resurrected),
        checks.iter().map(|c| c.acknowledged).max().unwrap_or(0),
    )
}

fn lost_reason(what: &str, checks: &[LedgerCheck]) -> Option<String> {
    let (m, d, r, _) = lost(checks);
    (m + d + r > 0).then(|| {
        format!(
            "{what} lost or changed {} acknowledged write{}: {m} missing, {d} differing, {r} resurrected",
            m + d + r,
            if m + d + r == 1 { "" } else { "s" }
        )
    })
}

fn cutover(f: &Found) -> Piece {
    if f.cutover.is_empty() {
        return missing("cutover-drill");
    }
    let mut states = Vec::new();
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let mut figure = String::new();
    let mut orgs = None;
    for (dir, d, run) in &f.cutover {
        orgs = orgs.or(organizations(run));
        sources.push(source(
            dir,
            Some("drill-writes"),
            Some("charts/drill-steps.svg"),
        ));
        let (m, dd, r, acked) = lost(&d.final_ledger);
        figure = format!(
            "{} of {} acknowledged writes lost, changed or resurrected",
            thousands(m + dd + r),
            thousands(acked)
        );
        if let Some(why) = lost_reason("the cutover drill", &d.final_ledger) {
            states.push(State::Fail);
            reasons.push(why);
        } else if d.status != Status::Complete {
            states.push(State::Unknown);
            reasons.push(format!("the cutover drill {}", status_word(d.status)));
        } else if d.final_ledger.is_empty() {
            states.push(State::Unknown);
            reasons.push("the cutover drill made no final write check".into());
        } else if !d.ok {
            states.push(State::Fail);
            reasons.extend(d.reasons.iter().map(|w| format!("the cutover drill: {w}")));
            if d.reasons.is_empty() {
                reasons.push("the cutover drill did not pass".into());
            }
        } else {
            states.push(State::Pass);
        }
    }
    let mut p = piece("cutover-drill", worst(states), figure, reasons);
    p.organizations = orgs;
    p.sources = sources;
    p
}

fn rollout(f: &Found) -> Piece {
    if f.rollout.is_empty() {
        return missing("rollout-drill");
    }
    let mut states = Vec::new();
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let mut figure = String::new();
    let mut orgs = None;
    for (dir, d, run) in &f.rollout {
        orgs = orgs.or(organizations(run));
        sources.push(source(
            dir,
            Some("rollout-cohorts"),
            Some("charts/throughput.svg"),
        ));
        let (m, dd, r, acked) = lost(&d.final_ledger);
        let rollback = d
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Check && s.basis_points == 0)
            .find_map(|s| s.verify.as_ref());
        figure = format!(
            "{} of {} acknowledged writes lost, changed or resurrected; rollback to 0% {}",
            thousands(m + dd + r),
            thousands(acked),
            match rollback {
                Some((true, _)) => "verified",
                Some((false, _)) => "did NOT verify",
                None => "not rehearsed",
            }
        );
        if let Some(why) = lost_reason("the rollout drill", &d.final_ledger) {
            states.push(State::Fail);
            reasons.push(why);
        } else if d.status != Status::Complete {
            states.push(State::Unknown);
            reasons.push(format!("the rollout drill {}", status_word(d.status)));
        } else if d.final_ledger.is_empty() {
            states.push(State::Unknown);
            reasons.push("the rollout drill made no final write check".into());
        } else if let Some((false, v)) = rollback {
            states.push(State::Fail);
            reasons.push(format!("the rollout drill's rollback did not verify: {v}"));
        } else if rollback.is_none() {
            states.push(State::Unknown);
            reasons.push(
                "the rollout drill did not rehearse a rollback (--rollback-at): it is not proven"
                    .into(),
            );
        } else if !d.ok {
            states.push(State::Fail);
            reasons.extend(d.reasons.iter().map(|w| format!("the rollout drill: {w}")));
            if d.reasons.is_empty() {
                reasons.push("the rollout drill did not pass".into());
            }
        } else {
            states.push(State::Pass);
        }
    }
    let mut p = piece("rollout-drill", worst(states), figure, reasons);
    p.organizations = orgs;
    p.sources = sources;
    p
}

fn alerts(f: &Found) -> Piece {
    if f.alerts.is_empty() {
        return missing("alert-drill");
    }
    let mut states = Vec::new();
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let mut figure = String::new();
    let mut orgs = None;
    let mut notes = Vec::new();
    for (dir, a, run) in &f.alerts {
        orgs = orgs.or(organizations(run));
        sources.push(source(
            dir,
            Some("alert-faults"),
            Some("charts/throughput.svg"),
        ));
        let expected: Vec<_> = a.faults.iter().flat_map(|x| &x.alerts).collect();
        let in_time = expected.iter().filter(|x| x.ok).count();
        figure = format!(
            "{in_time} of {} expected alerts fired and resolved in time, over {} fault{}",
            expected.len(),
            a.faults.len(),
            if a.faults.len() == 1 { "" } else { "s" }
        );
        let errors: Vec<String> = a
            .faults
            .iter()
            .filter_map(|x| x.error.as_ref().map(|e| format!("{}: {e}", x.fault.name())))
            .collect();
        if !errors.is_empty() {
            states.push(State::Unknown);
            reasons.extend(
                errors
                    .into_iter()
                    .map(|e| format!("the alert drill could not run a fault: {e}")),
            );
        } else if run.status != Status::Complete {
            // alerts-drill.json has no status of its own: its workload's
            // run says whether the drill ran to its end.
            states.push(State::Unknown);
            reasons.push(format!("the alert drill {}", status_word(run.status)));
        } else if expected.is_empty() {
            states.push(State::Unknown);
            reasons.push("the alert drill injected no fault".into());
        } else if !a.ok {
            states.push(State::Fail);
            reasons.extend(a.reasons.iter().map(|w| format!("the alert drill: {w}")));
            if a.reasons.is_empty() {
                reasons.push("the alert drill did not pass".into());
            }
        } else {
            states.push(State::Pass);
        }
        if !a.standing.is_empty() {
            notes.push(format!(
                "standing alerts, named with --standing and not judged: {}",
                a.standing
                    .iter()
                    .map(|(n, fired)| format!(
                        "{n} ({})",
                        if *fired { "fired" } else { "did not fire" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut p = piece("alert-drill", worst(states), figure, reasons);
    p.notes = notes;
    p.organizations = orgs;
    p.sources = sources;
    p
}

/// The reconcile job: kept runs (`job run reconcile --out`) and the
/// reconcile windows of runs under load.
fn reconcile(f: &Found) -> Piece {
    let mut states = Vec::new();
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let mut figures = Vec::new();
    for (path, j) in f.jobs.iter().filter(|(_, j)| j.job == "reconcile") {
        let dir = path.parent().unwrap_or(Path::new("."));
        sources.push(source(dir, None, None));
        figures.push(j.summary.clone());
        match j.exit_code() {
            0 => states.push(State::Pass),
            1 => {
                states.push(State::Fail);
                reasons.push(format!("reconcile found drift: {}", j.summary));
            }
            _ => {
                states.push(State::Unknown);
                reasons.push(format!("reconcile did not check everything: {}", j.summary));
            }
        }
    }
    for (dir, r) in &f.runs {
        for v in &r.variants {
            for w in v.jobs.iter().filter(|w| w.job == "reconcile") {
                if !sources.iter().any(|s: &Source| &s.dir == dir) {
                    sources.push(source(dir, Some("job-windows"), None));
                }
                figures.push(w.summary.clone());
                match w.exit_code {
                    0 => states.push(State::Pass),
                    1 => {
                        states.push(State::Fail);
                        reasons.push(format!(
                            "reconcile under {} [{}] found drift: {}",
                            r.scenario.name, v.variant.name, w.summary
                        ));
                    }
                    _ => {
                        states.push(State::Unknown);
                        reasons.push(format!(
                            "reconcile under {} [{}] did not check everything: {}",
                            r.scenario.name, v.variant.name, w.summary
                        ));
                    }
                }
            }
        }
    }
    if states.is_empty() {
        return missing("reconcile");
    }
    figures.dedup();
    let mut p = piece("reconcile", worst(states), figures.join("; "), reasons);
    p.sources = sources;
    p
}

/// Each mode's capacity, for the review.
fn capacity(f: &Found) -> Option<Piece> {
    if f.capacity.is_empty() {
        return None;
    }
    let mut figures = Vec::new();
    let mut sources = Vec::new();
    let mut reasons = Vec::new();
    for (dir, c) in &f.capacity {
        sources.push(source(
            dir,
            Some("capacity"),
            Some("charts/capacity-achieved.svg"),
        ));
        for v in &c.variants {
            let f = &v.found;
            figures.push(match (f.end, f.capacity) {
                (End::Found, Some(rate)) => {
                    format!("{} [{} {}] {rate:.0} req/s", c.scenario, v.variant, v.mode)
                }
                (End::AtLeastMax, Some(rate)) => {
                    format!(
                        "{} [{} {}] at least {rate:.0} req/s",
                        c.scenario, v.variant, v.mode
                    )
                }
                _ => format!("{} [{} {}] not found", c.scenario, v.variant, v.mode),
            });
        }
        if c.exit_code != 0 {
            reasons.push(format!(
                "the search under {} ended with exit {}: see its page",
                c.scenario, c.exit_code
            ));
        }
    }
    let mut p = piece("capacity", State::Info, figures.join("; "), reasons);
    p.title = "Capacity".into();
    p.sources = sources;
    Some(p)
}

/// The maintenance jobs' cost under load, for the review.
fn jobs_cost(f: &Found) -> Option<Piece> {
    let mut sources = Vec::new();
    let mut n = 0;
    for (dir, r) in &f.runs {
        let windows = r.variants.iter().map(|v| v.jobs.len()).sum::<usize>();
        if windows > 0 {
            n += windows;
            sources.push(source(dir, Some("job-impact"), None));
        }
    }
    if n == 0 {
        return None;
    }
    let mut p = piece(
        "jobs-cost",
        State::Info,
        format!(
            "{n} job window{} under load: p99 during the jobs against otherwise, per operation, on each run's page",
            if n == 1 { "" } else { "s" }
        ),
        Vec::new(),
    );
    p.title = "Maintenance jobs' cost".into();
    p.sources = sources;
    Some(p)
}

/// What the estate's size means for the figures.
fn estate_note(pieces: &[Piece]) -> String {
    let sizes: Vec<String> = pieces
        .iter()
        .filter_map(|p| p.organizations.map(|o| (p, o)))
        .map(|(p, o)| {
            let label = if o < PLATFORM_ORGANIZATIONS {
                " (smaller than the platform)"
            } else {
                ""
            };
            format!("{}: {} organizations{label}", p.title, thousands(o))
        })
        .collect();
    let smaller = pieces
        .iter()
        .any(|p| p.organizations.is_some_and(|o| o < PLATFORM_ORGANIZATIONS));
    let mut note = if sizes.is_empty() {
        "The records do not say the size of the estate they ran on.".to_string()
    } else {
        format!("Estates: {}.", sizes.join("; "))
    };
    if smaller {
        note += &format!(
            " The platform has about {} organizations: a figure from a smaller estate is that estate's, not the platform's.",
            thousands(PLATFORM_ORGANIZATIONS)
        );
    }
    note
}

/// Why a piece is not a pass, in a line: its first reasons, and how many
/// more its own section lists.
pub(super) fn brief(p: &Piece) -> String {
    const SHOWN: usize = 3;
    if p.reasons.is_empty() {
        return p.figure.clone();
    }
    let mut s = p.reasons[..p.reasons.len().min(SHOWN)].join("; ");
    if p.reasons.len() > SHOWN {
        s += &format!(
            "; and {} more (the piece's section lists them)",
            p.reasons.len() - SHOWN
        );
    }
    s
}

/// Judge what was found under `dirs`.
pub fn judge(f: &Found, dirs: &[PathBuf]) -> Readiness {
    let mut pieces = vec![suite(f), cutover(f), rollout(f), alerts(f), reconcile(f)];
    pieces.extend(capacity(f));
    pieces.extend(jobs_cost(f));
    // A directory that could not be read may have held any piece.
    let required: Vec<&Piece> = pieces.iter().filter(|p| p.required).collect();
    let verdict = if required.iter().any(|p| p.state == State::Fail) {
        Verdict::NoGo
    } else if !f.unreadable.is_empty() || required.iter().any(|p| p.state != State::Pass) {
        Verdict::Unknown
    } else {
        Verdict::Go
    };
    let mut reasons = Vec::new();
    for p in pieces
        .iter()
        .filter(|p| p.required && p.state != State::Pass)
    {
        reasons.push(format!("{} {}: {}", p.title, p.state.word(), brief(p)));
    }
    for (d, e) in &f.unreadable {
        reasons.push(format!("{} could not be read: {e}", d.display()));
    }
    let settings = crate::compare::CompareSettings::default();
    let mut modes = Vec::new();
    for (dir, r) in &f.runs {
        match modes::rows(dir, r, &settings) {
            Ok(rows) => modes.extend(rows),
            Err(e) => reasons.push(format!(
                "{}: legacy against partitioned could not be read: {e}",
                dir.display()
            )),
        }
    }
    let estate_note = estate_note(&pieces);
    Readiness {
        schema_version: READINESS_VERSION,
        verdict,
        exit_code: verdict.exit_code(),
        reasons,
        pieces,
        modes,
        estate_note,
        dirs: dirs.to_vec(),
        unreadable: f.unreadable.clone(),
    }
}
