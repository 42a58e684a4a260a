//! `rehearse replay`: a captured csvlog replayed against either mode at N
//! times its speed, as an open-loop run through the repository. The result
//! is an ordinary run directory (run.json, latency.hlog) that `report`,
//! `compare`, `gate` and `readiness` read, plus `replay.json`: what the
//! trace held and what became of it.

pub mod capture;
pub mod classify;
pub mod csvlog;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::driver::replay::{Call, Plan, PlannedSession, Request, TenantMap, What};
use crate::error::{DbContext, Error, IoContext, Result};
use crate::estate::Estate;
use crate::repo::{Pooling, Via};
use crate::run::RunResult;
use crate::scenario::{Operation, Scenario};
use crate::schema::Mode;
use classify::{classify, Class, Tx};

/// What to do with statements the repository does not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    Replay,
    Skip,
}

crate::named!("unknown statements", Unknown { Replay = "replay", Skip = "skip" });

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub logs: Vec<PathBuf>,
    /// Logs captured on the replica: their verbatim statements replay on
    /// the estate's replica.
    pub replica_logs: Vec<PathBuf>,
    /// Divides every offset: 2 replays an hour in 30 minutes.
    pub speed: f64,
    pub modes: Vec<Mode>,
    pub tenants: TenantMap,
    pub unknown: Unknown,
    /// Only sessions of this application_name.
    pub application: Option<String>,
    pub reads: Via,
    pub cache: bool,
    pub pool: Pooling,
    pub lock_timeout: Duration,
    /// A request unanswered after this is abandoned (timeout) [10s].
    pub timeout: Duration,
    /// A scenario file whose `[budgets]` judge the replay.
    pub budgets: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub verbose: bool,
}

/// The name of verbatim statements in run.json.
pub const VERBATIM: &str = "verbatim";

/// What the trace held and what the replay made of it (`replay.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub files: Vec<PathBuf>,
    pub speed: f64,
    /// Seconds from the trace's first replayed statement to its last, as
    /// captured (at 1x).
    pub span_s: f64,
    pub log: csvlog::Counts,
    /// Requests per operation name, as planned (each mode replays them all).
    pub requests: BTreeMap<String, u64>,
    /// The repository's bookkeeping statements, which its operations send again.
    pub absorbed: u64,
    /// Statements the repository does not send, replayed verbatim or skipped.
    pub unknown: u64,
    pub unknown_skipped: bool,
    /// Repository statements whose parameters did not read: skipped.
    pub unreadable: u64,
    /// The first few of them, with file:line and why.
    pub unreadable_examples: Vec<String>,
    /// End-of-day batches whose COMMIT the trace did not hold: replayed.
    pub batches_unclosed: u64,
    /// Adjusts and voids that found no entry the replay had written for
    /// their organization and wrote one first, over every mode replayed.
    pub prewrites: u64,
    /// Seconds each mode's replay took, from its start to its last answer.
    pub wall_s: BTreeMap<String, f64>,
    /// The most sessions that held a connection of their own at once, to
    /// replay statements verbatim (see [`peak_verbatim`]): on the primary,
    /// and on the replica (from `--replica-log`).
    pub peak_verbatim_sessions: u64,
    pub peak_verbatim_sessions_replica: u64,
}

/// The trace turned into requests: per session, in order, at offsets
/// divided by the speed.
pub fn prepare(
    trace: &csvlog::Trace,
    o: &ReplayOptions,
) -> (Vec<Vec<(i64, String, What)>>, Summary) {
    let mut summary = Summary {
        files: trace.files.clone(),
        speed: o.speed,
        span_s: trace.span_us as f64 / 1e6,
        log: trace.counts.clone(),
        requests: BTreeMap::new(),
        absorbed: 0,
        unknown: 0,
        unknown_skipped: o.unknown == Unknown::Skip,
        unreadable: 0,
        unreadable_examples: Vec::new(),
        batches_unclosed: 0,
        prewrites: 0,
        peak_verbatim_sessions: 0,
        peak_verbatim_sessions_replica: 0,
        wall_s: BTreeMap::new(),
    };
    let at = |us: i64| (us as f64 / o.speed).round() as i64;
    let mut sessions = Vec::with_capacity(trace.sessions.len());
    for s in &trace.sessions {
        let mut out: Vec<(i64, String, What)> = Vec::new();
        let mut batch: Option<(i64, i64, Vec<crate::repo::finance::NewEntry>)> = None;
        let mut begin: Option<&csvlog::Statement> = None;
        let verbatim =
            |out: &mut Vec<(i64, String, What)>, summary: &mut Summary, st: &csvlog::Statement| {
                summary.unknown += 1;
                if o.unknown == Unknown::Replay {
                    out.push((
                        at(st.at_us),
                        VERBATIM.to_string(),
                        What::Verbatim(classify::inline(&st.sql, &st.params)),
                    ));
                }
            };
        for st in &s.statements {
            let class = classify(st);
            // A BEGIN opens a batch only when the batch's first statement follows.
            if let Some(b) = begin.take() {
                if matches!(class, Class::BatchStart(_)) {
                    summary.absorbed += 1;
                    batch = Some((b.at_us, 0, Vec::new()));
                } else {
                    verbatim(&mut out, &mut summary, b);
                }
            }
            match class {
                Class::Transaction(Tx::Begin) => begin = Some(st),
                Class::BatchStart(org) => {
                    summary.absorbed += 1;
                    match &mut batch {
                        Some(b) => b.1 = org,
                        None => batch = Some((st.at_us, org, Vec::new())),
                    }
                }
                Class::BatchRows(rows) => match &mut batch {
                    Some(b) => {
                        summary.absorbed += 1;
                        b.2.extend(rows);
                    }
                    None => verbatim(&mut out, &mut summary, st),
                },
                Class::Transaction(Tx::End) => match batch.take() {
                    Some((t, org, entries)) => {
                        summary.absorbed += 1;
                        push_batch(&mut out, at(t), org, entries);
                    }
                    None => verbatim(&mut out, &mut summary, st),
                },
                Class::Op(op, call) => {
                    out.push((at(st.at_us), op.name().to_string(), What::Call(call)))
                }
                Class::Absorbed => summary.absorbed += 1,
                Class::Unknown => verbatim(&mut out, &mut summary, st),
                Class::Unreadable(why) => {
                    summary.unreadable += 1;
                    if summary.unreadable_examples.len() < 5 {
                        summary
                            .unreadable_examples
                            .push(format!("{}: {why}", trace.where_(st)));
                    }
                }
            }
        }
        if let Some(b) = begin {
            verbatim(&mut out, &mut summary, b);
        }
        if let Some((t, org, entries)) = batch {
            summary.batches_unclosed += 1;
            push_batch(&mut out, at(t), org, entries);
        }
        for (_, name, _) in &out {
            *summary.requests.entry(name.clone()).or_default() += 1;
        }
        sessions.push(out);
    }
    // The clock starts at the first request replayed: what only the
    // repository's start-up sent (absorbed) does not delay the replay.
    let first = sessions.iter().flatten().map(|r| r.0).min().unwrap_or(0);
    let last = sessions.iter().flatten().map(|r| r.0).max().unwrap_or(0);
    for r in sessions.iter_mut().flatten() {
        r.0 -= first;
    }
    summary.span_s = (last - first) as f64 / 1e6 * o.speed;
    (sessions, summary)
}

fn push_batch(
    out: &mut Vec<(i64, String, What)>,
    at: i64,
    org: i64,
    entries: Vec<crate::repo::finance::NewEntry>,
) {
    if !entries.is_empty() {
        out.push((
            at,
            Operation::PostBatch.name().to_string(),
            What::Call(Call::PostBatch { org, entries }),
        ));
    }
}

/// The scenario a replay runs as: one open phase as long as the trace at
/// its speed, the operations it holds as its mix, one variant per mode.
pub fn scenario(summary: &Summary, sessions: usize, o: &ReplayOptions) -> Result<Scenario> {
    let total: u64 = summary.requests.values().sum();
    // As long as the trace at its speed: the achieved rate is then the
    // trace's (a statement answered after the end extends the phase).
    let secs = (summary.span_s / o.speed).max(0.001);
    let mut t = format!(
        "name = \"replay\"\ndescription = \"{} statements of {} replayed at {}x\"\nseed = 1\nwarmup = \"0s\"\ntimeout = \"{}ms\"\n\n[[phase]]\nname = \"replay\"\nduration = \"{}ms\"\nrate = {}\nmax_in_flight = {}\n",
        total,
        summary
            .files
            .iter()
            .map(|f| f.display().to_string().replace(['"', '\\'], "_"))
            .collect::<Vec<_>>()
            .join(", "),
        o.speed,
        o.timeout.as_millis().max(1),
        (secs * 1000.0).ceil() as u64,
        (total as f64 / secs).max(0.001),
        sessions.max(1)
    );
    for (name, n) in &summary.requests {
        if name == VERBATIM {
            t.push_str(&format!(
                "\n[[mix]]\nname = \"{VERBATIM}\"\noperation = \"sql\"\nsql = \"SELECT 1\"\nweight = {n}\n"
            ));
        } else {
            t.push_str(&format!(
                "\n[[mix]]\noperation = \"{name}\"\nweight = {n}\n"
            ));
        }
    }
    for m in &o.modes {
        t.push_str(&format!(
            "\n[[variant]]\nname = \"{m}\"\nmode = \"{m}\"\nreads = \"{}\"\ncache = {}\npool = \"{}\"\n",
            o.reads, o.cache, o.pool
        ));
    }
    let mut s = crate::scenario::parse(Path::new("replay.toml"), &t)
        .map_err(|e| Error::Lab(format!("the replay's own scenario did not check: {e}\n{t}")))?;
    if let Some(path) = &o.budgets {
        let text = std::fs::read_to_string(path).io("reading", path)?;
        // A scenario file's budgets, or a budgets file as `gate --budgets` reads.
        let mut budgets = match crate::scenario::parse(path, &text) {
            Ok(sc) => sc.budgets,
            Err(_) => crate::scenario::parse_budgets(path, &text)?,
        };
        let absent: Vec<String> = budgets
            .keys()
            .filter(|k| !summary.requests.contains_key(*k))
            .cloned()
            .collect();
        if !absent.is_empty() && o.verbose {
            eprintln!(
                "replay: {} has budgets for {} that the trace does not hold: not judged",
                path.display(),
                absent.join(", ")
            );
        }
        budgets.retain(|k, _| summary.requests.contains_key(k));
        s.budgets = budgets;
    }
    Ok(s)
}

/// The most sessions holding a connection of their own at once. A session
/// that replays statements verbatim opens one at its first and closes it
/// after its last, as it held one in the trace; the repository's operations
/// go through its pool instead.
pub fn peak_verbatim<'a>(sessions: impl IntoIterator<Item = &'a PlannedSession>) -> usize {
    let mut edges: Vec<(i64, u8)> = Vec::new();
    for s in sessions {
        let mut at = s
            .requests
            .iter()
            .filter(|r| matches!(r.what, What::Verbatim(_)))
            .map(|r| r.at_us);
        if let Some(first) = at.next() {
            let (lo, hi) = at.fold((first, first), |(a, b), t| (a.min(t), b.max(t)));
            // At one instant an opening counts before a closing.
            edges.push((lo, 0));
            edges.push((hi, 1));
        }
    }
    edges.sort_unstable();
    let (mut open, mut peak) = (0usize, 0usize);
    for (_, closing) in edges {
        if closing == 1 {
            open -= 1;
        } else {
            open += 1;
            peak = peak.max(open);
        }
    }
    peak
}

/// Refuse, before anything is replayed, a trace whose verbatim sessions
/// would not all get a connection on the primary: part way through they
/// would fail with "too many clients", and the replay would measure the
/// connection limit instead of the workload.
async fn room_for(server: &crate::estate::Endpoint, role: &str, peak: usize) -> Result<()> {
    let c = crate::db::connect_monitor(&server.url).await?;
    let row = c
        .query_one(
            "SELECT current_setting('max_connections')::int, \
                    current_setting('superuser_reserved_connections')::int, \
                    (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend')",
            &[],
        )
        .await
        .db(|| format!("reading the {role}'s connection limit"))?;
    let (max, reserved, used): (i32, i32, i32) = (row.get(0), row.get(1), row.get(2));
    let free = (max - reserved - used).max(0) as usize;
    if peak > free {
        return Err(Error::Lab(format!(
            "the trace holds {peak} sessions at once that replay statements verbatim on the {role}, each on a connection of its own; the {role} has room for {free} more (max_connections {max}, {reserved} reserved for superusers, {used} in use). Raise max_connections, replay through PgBouncer (--pool pgbouncer), or skip the statements the repository does not send (--unknown skip)"
        )));
    }
    Ok(())
}

pub struct ReplayOutcome {
    pub dir: PathBuf,
    pub result: RunResult,
    pub summary: Summary,
}

pub async fn run(estate: &Estate, o: &ReplayOptions) -> Result<ReplayOutcome> {
    if !(o.speed.is_finite() && o.speed > 0.0) {
        return Err(Error::Usage(format!(
            "--speed {}: a positive number such as 2",
            o.speed
        )));
    }
    if o.logs.is_empty() {
        return Err(Error::Usage("give at least one csvlog file".into()));
    }
    if !o.replica_logs.is_empty() && estate.replica.is_none() {
        return Err(Error::Usage(
            "--replica-log, but the estate has no replica (--replica-url)".into(),
        ));
    }
    let all: Vec<PathBuf> = o.logs.iter().chain(&o.replica_logs).cloned().collect();
    let trace = csvlog::read(
        &all,
        &csvlog::Filter {
            application: o.application.clone(),
        },
    )?;
    let (planned, mut summary) = prepare(&trace, o);
    let total: u64 = summary.requests.values().sum();
    if total == 0 {
        return Err(Error::Usage(format!(
            "{}: no statement to replay ({} records read, {} statements, {} skipped as unknown, {} of other applications): was the server logging statements (log_statement = all, or log_min_duration_statement = 0)?",
            o.logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            trace.counts.records,
            trace.counts.statements,
            summary.unknown,
            trace.counts.filtered
        )));
    }
    let s = scenario(&summary, planned.len(), o)?;
    let index: BTreeMap<&str, usize> = s
        .mix
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    // A session lives in one server's log: the replica's are those of
    // --replica-log.
    let on_replica = trace.sessions.iter().map(|s| {
        s.statements
            .first()
            .is_some_and(|st| st.file >= o.logs.len())
    });
    let sessions: Vec<PlannedSession> = planned
        .into_iter()
        .zip(on_replica)
        .map(|(reqs, on_replica)| PlannedSession {
            on_replica,
            requests: reqs
                .into_iter()
                .map(|(at_us, name, what)| Request {
                    at_us,
                    op: index[name.as_str()],
                    what,
                })
                .collect(),
        })
        .collect();
    let peak = peak_verbatim(sessions.iter().filter(|s| !s.on_replica));
    let peak_replica = peak_verbatim(sessions.iter().filter(|s| s.on_replica));
    summary.peak_verbatim_sessions = peak as u64;
    summary.peak_verbatim_sessions_replica = peak_replica as u64;
    if o.pool == Pooling::Direct {
        if peak > 0 {
            room_for(&estate.primary, "primary", peak).await?;
        }
        if let (Some(r), true) = (&estate.replica, peak_replica > 0) {
            room_for(r, "replica", peak_replica).await?;
        }
    }
    let replica_url = match o.pool {
        Pooling::PgBouncer => estate.pgbouncer_replica.as_ref(),
        Pooling::Direct => estate.replica.as_ref(),
    }
    .map(|e| e.url.clone());
    if peak_replica > 0 && replica_url.is_none() {
        return Err(Error::Usage(
            "--replica-log with --pool pgbouncer, but the estate has no PgBouncer for the replica (--pgbouncer-replica-url)".into(),
        ));
    }
    let url = match o.pool {
        Pooling::PgBouncer => estate
            .pgbouncer
            .as_ref()
            .map(|e| e.url.clone())
            .ok_or_else(|| {
                Error::Usage("--pool pgbouncer, but the estate has no PgBouncer".into())
            })?,
        Pooling::Direct => estate.primary.url.clone(),
    };
    let plan = Arc::new(Plan {
        sessions,
        tenants: o.tenants,
        url,
        replica_url,
        lock_timeout: o.lock_timeout,
        prewrites: Default::default(),
        walls: Default::default(),
    });
    let dir = o.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(crate::run::run_id(SystemTime::now(), "replay"))
    });
    if o.verbose {
        eprintln!(
            "replay: {} requests in {} sessions over {:.1} s of trace, at {}x: about {:.1} s per mode ({})",
            total,
            plan.sessions.len(),
            summary.span_s,
            o.speed,
            summary.span_s / o.speed,
            summary
                .requests
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    crate::interrupt::on_ctrl_c(
        "finishing requests in flight and writing what was replayed",
        &[&stop],
    );
    let hooks = crate::driver::Hooks {
        replay: Some(plan.clone()),
        ..Default::default()
    };
    let result = crate::driver::run_hooked(estate, &s, &dir, o.verbose, &stop, &hooks).await?;
    let walls = plan.walls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (v, wall) in result.variants.iter().zip(walls) {
        summary.wall_s.insert(v.variant.name.clone(), wall);
    }
    summary.prewrites = plan.prewrites.load(std::sync::atomic::Ordering::Relaxed);
    crate::fsutil::write_atomic(
        &dir.join("replay.json"),
        serde_json::to_string_pretty(&summary)
            .map_err(|e| Error::Lab(format!("writing replay.json: {e}")))?
            .as_bytes(),
    )?;
    Ok(ReplayOutcome {
        dir,
        result,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(reqs: &[(i64, bool)]) -> PlannedSession {
        PlannedSession {
            on_replica: false,
            requests: reqs
                .iter()
                .map(|&(at_us, verbatim)| Request {
                    at_us,
                    op: 0,
                    what: if verbatim {
                        What::Verbatim("SELECT 1".into())
                    } else {
                        What::Call(Call::Pnl {
                            org: 1,
                            month: crate::day::Day::from_ymd(2026, 12, 1),
                        })
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn the_peak_counts_sessions_between_their_first_and_last_verbatim_statement() {
        // a: 0-100, b: 50-150, c: 100 (opens as a closes: counted), d: 200-300,
        // e: only repository calls.
        let sessions = [
            session(&[(0, true), (100, true)]),
            session(&[(50, true), (150, true)]),
            session(&[(100, true)]),
            session(&[(200, true), (250, false), (300, true)]),
            session(&[(0, false), (400, false)]),
        ];
        assert_eq!(peak_verbatim(&sessions), 3);
        assert_eq!(peak_verbatim(&sessions[3..]), 1);
        assert_eq!(peak_verbatim(&sessions[4..]), 0);
    }
}
