//! A replay's phase: each captured session in its own task, sending its
//! statements in its order, each released at its offset in the trace
//! divided by the speed. A dispatcher (a task on a timerfd) releases them on time; a
//! session still busy with its previous statement sends the next one late,
//! and its latency counts from the intended start, as an open phase's does.
//! The repository's operations go through the variant's repository (so a
//! legacy trace runs against the partitioned tables); other statements go
//! verbatim on the session's own connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::error::DbContext;
use crate::repo::finance::{Adjustment, EntryKind, NewEntry};
use crate::repo::reporting::ReadOptions;

/// One repository operation, with what the trace asked of it.
#[derive(Debug, Clone)]
pub enum Call {
    Record {
        org: i64,
        entry: NewEntry,
    },
    Adjust {
        org: i64,
        kind: EntryKind,
        change: Adjustment,
    },
    Void {
        org: i64,
        kind: EntryKind,
    },
    PostBatch {
        org: i64,
        entries: Vec<NewEntry>,
    },
    Dashboard {
        org: i64,
        from: crate::day::Day,
        to: crate::day::Day,
    },
    Pnl {
        org: i64,
        month: crate::day::Day,
    },
    Properties {
        org: i64,
        from: crate::day::Day,
        to: crate::day::Day,
    },
    Ledger {
        org: i64,
        from: crate::day::Day,
        to: crate::day::Day,
        limit: u32,
    },
    Portfolio {
        from: crate::day::Day,
        to: crate::day::Day,
        top: u32,
    },
}

/// What one replayed request does.
#[derive(Debug, Clone)]
pub enum What {
    Call(Call),
    /// A statement the repository does not send, with its parameters
    /// inlined as literals, by the simple query protocol.
    Verbatim(String),
}

#[derive(Debug, Clone)]
pub struct Request {
    /// Microseconds from the trace's start, already divided by the speed.
    pub at_us: i64,
    /// Index into the scenario's mix (the operation's name in run.json).
    pub op: usize,
    pub what: What,
}

#[derive(Debug, Clone, Default)]
pub struct PlannedSession {
    pub requests: Vec<Request>,
    /// Read from a log captured on the replica: its verbatim statements go
    /// to the replica.
    pub on_replica: bool,
}

/// Maps the trace's organizations onto the estate's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantMap {
    /// The trace's ids as they are.
    Same,
    /// Each trace organization onto one of the estate's first N (by a
    /// hash), its properties onto that organization's.
    Spread(usize),
}

/// What a replay hands the driver.
#[derive(Debug)]
pub struct Plan {
    pub sessions: Vec<PlannedSession>,
    pub tenants: TenantMap,
    /// Where verbatim statements go.
    pub url: String,
    /// Where the verbatim statements of a replica's sessions go.
    pub replica_url: Option<String>,
    /// `lock_timeout` of the verbatim sessions: statements that wait on
    /// each other's locks fail (counted) rather than hang.
    pub lock_timeout: Duration,
    /// Adjusts and voids that found no entry the replay had written for
    /// their organization, so wrote one first.
    pub prewrites: AtomicU64,
    /// Seconds from each variant's start to its last answer, in order.
    pub walls: Mutex<Vec<f64>>,
}

/// Entries the replay wrote, per organization: what adjusts and voids act
/// on (the trace's ids are the captured database's, not this one's).
#[derive(Default)]
struct Written(Mutex<HashMap<(i64, EntryKind), Vec<i64>>>);

impl Written {
    fn push(&self, org: i64, kind: EntryKind, id: i64) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let v = m.entry((org, kind)).or_default();
        if v.len() >= 64 {
            v.remove(0);
        }
        v.push(id);
    }

    fn latest(&self, org: i64, kind: EntryKind, take: bool) -> Option<i64> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let v = m.get_mut(&(org, kind))?;
        if take {
            v.pop()
        } else {
            v.last().copied()
        }
    }
}

pub(super) async fn replay_phase(
    ctx: Arc<Ctx>,
    phase: Phase,
    start: Instant,
    base: usize,
    plan: Arc<Plan>,
) -> PhaseResult {
    let total: usize = plan.sessions.iter().map(|s| s.requests.len()).sum();
    let rate = total as f64 / phase.duration.0.as_secs_f64().max(1e-9);
    let lead = super::early_release(ctx.early_release, rate);
    let mut senders = Vec::with_capacity(plan.sessions.len());
    let mut tasks = Vec::with_capacity(plan.sessions.len());
    let completed = Arc::new(AtomicU64::new(0));
    let last_done_ns = Arc::new(AtomicU64::new(0));
    // Time the sessions spun waiting out an early release, ns.
    let spun_ns = Arc::new(AtomicU64::new(0));
    let written = Arc::new(Written::default());
    let yielding = super::yielding();
    for (si, _) in plan.sessions.iter().enumerate() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        senders.push(tx);
        let (ctx, plan, completed, last_done_ns, written, spun_ns) = (
            ctx.clone(),
            plan.clone(),
            completed.clone(),
            last_done_ns.clone(),
            written.clone(),
            spun_ns.clone(),
        );
        let late_after = match phase.load {
            Load::Open { late_after, .. } => late_after.0,
            Load::Closed { .. } => Duration::MAX,
        };
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(
                base + si,
                ctx.ops,
                ctx.origin,
                ctx.interval,
                ctx.tx.clone(),
                ctx.pool.clone(),
            );
            let mut conn: Option<tokio_postgres::Client> = None;
            // The session's connection closes after its last verbatim
            // statement, as the trace's did: a long trace of many short
            // sessions does not pile up connections.
            let last_verbatim = plan.sessions[si]
                .requests
                .iter()
                .rposition(|r| matches!(r.what, What::Verbatim(_)));
            let on_replica = plan.sessions[si].on_replica;
            let mut free_at = start;
            loop {
                let k = tokio::select! {
                    k = rx.recv() => match k { Some(k) => k, None => break },
                    _ = tokio::time::sleep_until(rec.next_boundary().into()) => { rec.tick(); continue; }
                };
                let req = &plan.sessions[si].requests[k];
                let intended = start + Duration::from_micros(req.at_us.max(0) as u64);
                if ctx.stop.load(Ordering::Relaxed) {
                    continue;
                }
                let taken_at = Instant::now();
                super::wait_out(intended, yielding).await;
                let send = Instant::now();
                if intended > taken_at {
                    spun_ns.fetch_add((send - taken_at).as_nanos() as u64, Ordering::Relaxed);
                }
                let lag = send.saturating_duration_since(intended);
                // Idle when released: the delay is the driver's, not a queue's.
                let idle = free_at <= intended;
                if idle {
                    rec.wakeup(lag);
                }
                let res = tokio::time::timeout(
                    ctx.timeout,
                    execute(&ctx, &plan, &written, &mut conn, req, on_replica),
                )
                .await;
                let done = Instant::now();
                free_at = done;
                let late = lag > late_after;
                match res {
                    Ok(Ok(())) => rec.ok(
                        req.op,
                        done,
                        done - intended,
                        done - send,
                        idle.then_some(lag),
                        late,
                    ),
                    Ok(Err(e)) => {
                        if matches!(ErrorKind::of(&e), ErrorKind::Connection) {
                            conn = None;
                        }
                        rec.error(req.op, done, ErrorKind::of(&e), late)
                    }
                    Err(_) => {
                        // A verbatim statement abandoned mid-flight leaves its
                        // connection in an unknown state: the next one opens anew.
                        conn = None;
                        rec.error(req.op, done, ErrorKind::Timeout, late)
                    }
                }
                if Some(k) == last_verbatim {
                    conn = None;
                }
                completed.fetch_add(1, Ordering::Relaxed);
                last_done_ns.fetch_max(
                    done.saturating_duration_since(start).as_nanos() as u64,
                    Ordering::Relaxed,
                );
            }
            rec.finish();
        }));
    }
    // The dispatcher: every request of every session, in time order.
    let mut order: Vec<(i64, u32, u32)> = plan
        .sessions
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.requests
                .iter()
                .enumerate()
                .map(move |(k, r)| (r.at_us, si as u32, k as u32))
        })
        .collect();
    order.sort_unstable();
    // When to wake for each: its release, `lead` early.
    let order: Vec<(Instant, u32, u32)> = order
        .into_iter()
        .map(|(at, si, k)| {
            let release = start + Duration::from_micros(at.max(0) as u64);
            (release.checked_sub(lead).unwrap_or(release), si, k)
        })
        .collect();
    let stop = ctx.stop.clone();
    // Each release sent at its time: by a task on a timerfd (as the open
    // phase's, see super::timer), or with REHEARSE_DISPATCH=thread from a
    // thread of its own that sleeps.
    let offered = match super::timer::Dispatch::from_env() {
        super::timer::Dispatch::Thread => {
            let dispatcher = std::thread::Builder::new()
                .name("rehearse-replay".into())
                .spawn(move || {
                    // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer slack.
                    unsafe {
                        libc::prctl(libc::PR_SET_TIMERSLACK, 1u64, 0, 0, 0);
                    }
                    let mut offered = 0u64;
                    for (wake, si, k) in order {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let now = Instant::now();
                        if wake > now {
                            std::thread::sleep(wake - now);
                        }
                        if senders[si as usize].send(k as usize).is_ok() {
                            offered += 1;
                        }
                    }
                    offered
                })
                .expect("spawning the replay dispatcher");
            tokio::task::spawn_blocking(move || dispatcher.join())
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(0)
        }
        super::timer::Dispatch::Timer => tokio::spawn(async move {
            // Without a timerfd (never seen on Linux), tokio's own timer:
            // to the millisecond, which the wake-up delay would show.
            let mut timer = super::timer::Timer::new()
                .map_err(|e| {
                    eprintln!(
                        "replay: warning: no timerfd ({e}); releasing on tokio's millisecond timer"
                    )
                })
                .ok();
            let mut offered = 0u64;
            for (wake, si, k) in order {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let timed = match &timer {
                    Some(t) => t.sleep_until(wake).await.is_ok(),
                    None => false,
                };
                if !timed {
                    timer = None;
                    tokio::time::sleep_until(wake.into()).await;
                }
                if senders[si as usize].send(k as usize).is_ok() {
                    offered += 1;
                }
            }
            offered
        })
        .await
        .unwrap_or(0),
    };
    for t in tasks {
        let _ = t.await;
    }
    let done = completed.load(Ordering::Relaxed);
    plan.walls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(last_done_ns.load(Ordering::Relaxed) as f64 / 1e9);
    let elapsed = Duration::from_nanos(last_done_ns.load(Ordering::Relaxed)).max(phase.duration.0);
    PhaseResult {
        early_release: crate::run::EarlyRelease::of(lead, spun_ns.load(Ordering::Relaxed), done),
        ..PhaseResult::open(
            &phase,
            rate,
            offered,
            done,
            (total as u64).saturating_sub(done),
            elapsed,
        )
    }
}

/// An organization of the trace as the estate's, by the map; None when the
/// estate has no organizations to map onto.
fn org_of(ctx: &Ctx, map: TenantMap, org: i64) -> (i64, Option<usize>) {
    match map {
        TenantMap::Same => (org, None),
        TenantMap::Spread(n) => {
            let t = &ctx.workload.tenants;
            if t.is_empty() {
                return (org, None);
            }
            let n = n.clamp(1, t.len());
            let i = (crate::generate::rng::mix(0x7e4a, org as u64) % n as u64) as usize;
            (t.orgs[i], Some(i))
        }
    }
}

fn prop_of(ctx: &Ctx, at: Option<usize>, prop: i64) -> i64 {
    match at {
        None => prop,
        Some(i) => {
            let props = ctx.workload.tenants.properties(i);
            if props.is_empty() {
                prop
            } else {
                props
                    [(crate::generate::rng::mix(0x9e0f, prop as u64) % props.len() as u64) as usize]
            }
        }
    }
}

async fn execute(
    ctx: &Ctx,
    plan: &Plan,
    written: &Written,
    conn: &mut Option<tokio_postgres::Client>,
    req: &Request,
    on_replica: bool,
) -> Result<()> {
    match &req.what {
        What::Verbatim(sql) => {
            if conn.is_none() {
                let url = match (on_replica, &plan.replica_url) {
                    (true, Some(r)) => r,
                    _ => &plan.url,
                };
                let c = db::connect(url).await?;
                c.batch_execute(&format!(
                    "SET lock_timeout = {}; SET statement_timeout = {}",
                    plan.lock_timeout.as_millis().max(1),
                    ctx.timeout.as_millis().max(1)
                ))
                .await
                .db(|| "setting a replay session's timeouts".into())?;
                *conn = Some(c);
            }
            let c = conn.as_ref().expect("just connected");
            c.simple_query(sql)
                .await
                .db(|| "a replayed statement".into())?;
            Ok(())
        }
        What::Call(call) => match &ctx.workload.trace {
            Some(t) => {
                t.scope(req.op as u16, run_call(ctx, plan, written, call))
                    .await
            }
            None => run_call(ctx, plan, written, call).await,
        },
    }
}

async fn run_call(ctx: &Ctx, plan: &Plan, written: &Written, call: &Call) -> Result<()> {
    let read = ReadOptions {
        via: ctx.variant.reads,
        cache: ctx.variant.cache,
        min_lsn: None,
    };
    let fin = ctx.repo.finance();
    let rep = ctx.repo.reporting();
    let map = plan.tenants;
    match call {
        Call::Record { org, entry } => {
            let (org, at) = org_of(ctx, map, *org);
            let mut e = entry.clone();
            e.property_id = prop_of(ctx, at, e.property_id);
            let w = fin.record(org, &e).await?;
            written.push(org, w.kind, w.id);
        }
        Call::Adjust { org, kind, change } => {
            let (org, at) = org_of(ctx, map, *org);
            let id = target(ctx, plan, written, org, at, *kind, false).await?;
            let mut a = change.clone();
            a.property_id = a.property_id.map(|p| prop_of(ctx, at, p));
            fin.adjust(org, *kind, id, &a).await?;
        }
        Call::Void { org, kind } => {
            let (org, at) = org_of(ctx, map, *org);
            let id = target(ctx, plan, written, org, at, *kind, true).await?;
            fin.void(org, *kind, id).await?;
        }
        Call::PostBatch { org, entries } => {
            let (org, at) = org_of(ctx, map, *org);
            let entries: Vec<NewEntry> = entries
                .iter()
                .map(|e| NewEntry {
                    property_id: prop_of(ctx, at, e.property_id),
                    ..e.clone()
                })
                .collect();
            fin.post_batch(org, &entries).await?;
        }
        Call::Dashboard { org, from, to } => {
            let (org, _) = org_of(ctx, map, *org);
            let days = (to.0 - from.0 + 1).max(1) as u32;
            rep.dashboard(org, *to, days, &read).await?;
        }
        Call::Pnl { org, month } => {
            let (org, _) = org_of(ctx, map, *org);
            rep.pnl(org, *month, &read).await?;
        }
        Call::Properties { org, from, to } => {
            let (org, _) = org_of(ctx, map, *org);
            rep.property_breakdown(org, *from, *to, &read).await?;
        }
        Call::Ledger {
            org,
            from,
            to,
            limit,
        } => {
            let (org, _) = org_of(ctx, map, *org);
            rep.ledger(org, *from, *to, None, *limit, &read).await?;
        }
        Call::Portfolio { from, to, top } => {
            rep.portfolio(*from, *to, *top, &read).await?;
        }
    }
    Ok(())
}

/// The entry an adjust or void acts on: the latest the replay wrote for
/// the organization, else one written now (counted).
async fn target(
    ctx: &Ctx,
    plan: &Plan,
    written: &Written,
    org: i64,
    at: Option<usize>,
    kind: EntryKind,
    take: bool,
) -> Result<i64> {
    if let Some(id) = written.latest(org, kind, take) {
        return Ok(id);
    }
    plan.prewrites.fetch_add(1, Ordering::Relaxed);
    let tenants = &ctx.workload.tenants;
    let prop = at
        .or_else(|| tenants.index_of(org))
        .and_then(|i| tenants.properties(i).first().copied())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "organization {org} has no property in the estate to write an entry to"
            ))
        })?;
    let cat = kind_category(kind);
    let e = match kind {
        EntryKind::Revenue => NewEntry::revenue(prop, ctx.workload.today, cat, 10_000),
        EntryKind::Expense => {
            NewEntry::expense(prop, ctx.workload.today, cat, 5_000, "Replay Supplies")
        }
    };
    let w = fin_record(ctx, org, &e).await?;
    if !take {
        written.push(org, kind, w);
    }
    Ok(w)
}

fn kind_category(kind: EntryKind) -> &'static str {
    kind.categories()[0]
}

async fn fin_record(ctx: &Ctx, org: i64, e: &NewEntry) -> Result<i64> {
    Ok(ctx.repo.finance().record(org, e).await?.id)
}
