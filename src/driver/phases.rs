//! The two kinds of phase: open (a dispatcher releases requests at their
//! intended starts; workers take them in order; response time counts from
//! the intended start) and closed (users send, wait, think, repeat).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::*;

/// The state an open phase's dispatcher and workers share.
pub(super) struct Open {
    sem: Semaphore,
    /// Intended start offsets (ns from the phase start) << 1, low bit: a worker was free at release.
    ring: Box<[AtomicU64]>,
    /// Each released request's arrival index in the phase's whole schedule
    /// (all shards'): its operation and parameters are drawn from it.
    index: Box<[AtomicU64]>,
    released: AtomicU64,
    taken: AtomicU64,
    last: AtomicU64,
    busy: AtomicUsize,
    dropped: AtomicU64,
    completed: AtomicU64,
    last_done_ns: AtomicU64,
    /// Time the workers spun waiting out an early release, ns.
    spun_ns: AtomicU64,
}

/// The open phase's dispatcher: a task on a timer (default) or a thread.
enum Dispatcher {
    Task(tokio::task::JoinHandle<std::io::Result<u64>>),
    Thread(std::thread::JoinHandle<u64>),
}

/// What a panicked dispatcher said.
fn panicked(panic: &(dyn std::any::Any + Send)) -> String {
    let why = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("the dispatcher panicked ({why}); the schedule stopped early")
}

pub(super) async fn open_phase(
    ctx: Arc<Ctx>,
    phase: Phase,
    start: Instant,
    seed: u64,
    base: usize,
) -> PhaseResult {
    let Load::Open {
        rate,
        ramp_to,
        arrival,
        max_in_flight,
        late_after,
    } = phase.load
    else {
        unreachable!("open_phase runs open phases")
    };
    let workers = max_in_flight as usize;
    let shared = Arc::new(Open {
        sem: Semaphore::new(0),
        ring: (0..BACKLOG).map(|_| AtomicU64::new(0)).collect(),
        index: (0..BACKLOG).map(|_| AtomicU64::new(0)).collect(),
        released: AtomicU64::new(0),
        taken: AtomicU64::new(0),
        last: AtomicU64::new(u64::MAX),
        busy: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        last_done_ns: AtomicU64::new(0),
        spun_ns: AtomicU64::new(0),
    });
    let arrivals = schedule::Arrivals::new(rate, ramp_to, phase.duration.0, arrival, seed);
    let lead = early_release(ctx.early_release, rate.max(ramp_to));
    // A shard's target is its share of the schedule.
    let expected = arrivals.expected() / ctx.shard.map_or(1.0, |p| p.count as f64);
    let dispatcher = match super::timer::Dispatch::from_env() {
        super::timer::Dispatch::Thread => {
            let shared = shared.clone();
            let stop = ctx.stop.clone();
            let shard = ctx.shard;
            Dispatcher::Thread(
                std::thread::Builder::new()
                    .name("rehearse-dispatch".into())
                    .spawn(move || dispatch(arrivals, start, &shared, &stop, workers, lead, shard))
                    .expect("spawning the dispatcher thread"),
            )
        }
        super::timer::Dispatch::Timer => Dispatcher::Task(tokio::spawn(dispatch_on_timer(
            arrivals,
            start,
            shared.clone(),
            ctx.stop.clone(),
            workers,
            lead,
            ctx.shard,
        ))),
    };
    let yielding = super::yielding();
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let ctx = ctx.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(base + w, ctx.ops, ctx.origin, ctx.interval, ctx.tx.clone(), ctx.pool.clone());
            let mut log = WriteLog::new();
            loop {
                let permit = tokio::select! {
                    p = shared.sem.acquire() => p,
                    _ = tokio::time::sleep_until(rec.next_boundary().into()) => { rec.tick(); continue; }
                };
                match permit {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                let i = shared.taken.fetch_add(1, Ordering::AcqRel);
                if i >= shared.last.load(Ordering::Acquire) {
                    break;
                }
                if ctx.stop.load(Ordering::Relaxed) {
                    // Released but never sent: not a latency, a request lost to the interruption.
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let slot = shared.ring[i as usize % BACKLOG].load(Ordering::Acquire);
                let k = shared.index[i as usize % BACKLOG].load(Ordering::Acquire);
                let intended = start + Duration::from_nanos(slot >> 1);
                shared.busy.fetch_add(1, Ordering::AcqRel);
                // Released early (see EARLY_RELEASE): wait for the intended
                // start, at most the lead.
                let taken_at = Instant::now();
                super::wait_out(intended, yielding).await;
                let send = Instant::now();
                if intended > taken_at {
                    shared
                        .spun_ns
                        .fetch_add((send - taken_at).as_nanos() as u64, Ordering::Relaxed);
                }
                let lag = send.saturating_duration_since(intended);
                if slot & 1 == 1 {
                    rec.wakeup(lag);
                }
                let mut req = ctx.workload.plan(mix(seed, k));
                ctx.hop().await;
                let res = tokio::time::timeout(
                    ctx.timeout,
                    ctx.workload.execute(&ctx.repo, &ctx.variant, &mut req, &mut log),
                )
                .await;
                let done = Instant::now();
                shared.busy.fetch_sub(1, Ordering::AcqRel);
                let late = lag > late_after.0;
                match res {
                    Ok(Ok(mode)) => {
                        if let (Some(c), Some(m)) = (&ctx.cohorts, mode) {
                            c.record(req.op, m, done - intended);
                        }
                        rec.ok(req.op, done, done - intended, done - send, Some(lag), late)
                    }
                    Ok(Err(e)) => rec.error(req.op, done, ErrorKind::of(&e), late),
                    Err(_) => rec.error(req.op, done, ErrorKind::Timeout, late),
                }
                shared.completed.fetch_add(1, Ordering::Relaxed);
                shared
                    .last_done_ns
                    .fetch_max(done.saturating_duration_since(start).as_nanos() as u64, Ordering::Relaxed);
            }
            rec.finish();
        }));
    }
    // A dispatcher that died is named, never read as a schedule that
    // offered nothing and lagged not at all; its workers are released.
    let released = || shared.released.load(Ordering::Acquire);
    let (offered, failure) = match dispatcher {
        Dispatcher::Thread(t) => match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(n)) => (n, None),
            Ok(Err(panic)) => (released(), Some(panicked(&*panic))),
            Err(e) => (
                released(),
                Some(format!("the dispatcher thread could not be joined: {e}")),
            ),
        },
        Dispatcher::Task(t) => match t.await {
            Ok(Ok(n)) => (n, None),
            Ok(Err(e)) => (
                released(),
                Some(format!(
                    "the dispatcher's timer failed ({e}); the schedule stopped early"
                )),
            ),
            Err(e) if e.is_panic() => (released(), Some(panicked(&*e.into_panic()))),
            Err(e) => (
                released(),
                Some(format!("the dispatcher task could not be joined: {e}")),
            ),
        },
    };
    if failure.is_some() {
        shared.sem.close();
    }
    for t in tasks {
        let _ = t.await;
    }
    let completed = shared.completed.load(Ordering::Relaxed);
    // A phase stopped early (an interrupt, or a drill's workload, whose
    // phase is open-ended, stopped when the drill ends) ran for the time it
    // ran: its rate is over that, not over the duration it was given.
    let ran = Duration::from_nanos(shared.last_done_ns.load(Ordering::Relaxed));
    let wall = Instant::now().saturating_duration_since(start);
    let elapsed = if ctx.stop.load(Ordering::Relaxed) && wall < phase.duration.0 {
        wall
    } else {
        ran.max(phase.duration.0)
    };
    PhaseResult {
        failure,
        early_release: crate::run::EarlyRelease::of(
            lead,
            shared.spun_ns.load(Ordering::Relaxed),
            completed,
        ),
        ..PhaseResult::open(
            &phase,
            expected / phase.duration.0.as_secs_f64(),
            offered,
            completed,
            shared.dropped.load(Ordering::Relaxed),
            elapsed,
        )
    }
}

/// The dispatcher's bookkeeping: what it offered and released so far.
struct Releaser<'a> {
    s: &'a Open,
    workers: usize,
    offered: u64,
    released: u64,
}

impl Releaser<'_> {
    /// Release arrival `k`, intended at `t` from the phase start, to the
    /// workers, or drop it when the backlog is full.
    fn release(&mut self, k: usize, t: Duration) {
        let s = self.s;
        self.offered += 1;
        let taken = s.taken.load(Ordering::Acquire);
        if self.released - taken.min(self.released) >= BACKLOG as u64 {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let free = taken >= self.released && s.busy.load(Ordering::Acquire) < self.workers;
        s.ring[self.released as usize % BACKLOG]
            .store((t.as_nanos() as u64) << 1 | free as u64, Ordering::Release);
        s.index[self.released as usize % BACKLOG].store(k as u64, Ordering::Release);
        self.released += 1;
        s.released.store(self.released, Ordering::Release);
        s.sem.add_permits(1);
    }

    /// No more arrivals: one permit per worker, each taking an index past the last.
    fn close(self) -> u64 {
        self.s.last.store(self.released, Ordering::Release);
        self.s.sem.add_permits(self.workers);
        self.offered
    }
}

/// Release requests at their intended times from a thread of its own
/// (`REHEARSE_DISPATCH=thread`); returns how many arrivals the schedule
/// offered (a shard: of its own share).
pub(super) fn dispatch(
    arrivals: schedule::Arrivals,
    start: Instant,
    s: &Open,
    stop: &AtomicBool,
    workers: usize,
    lead: Duration,
    shard: Option<crate::shard::ShardPlan>,
) -> u64 {
    // Sleep to the microsecond rather than the default 50 us slack of timers.
    // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let mut r = Releaser {
        s,
        workers,
        offered: 0,
        released: 0,
    };
    for (k, t) in arrivals.enumerate() {
        if shard.is_some_and(|p| !p.owns(k as u64)) {
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Released `lead` early: the worker waits out the rest itself, so
        // the wake-up of a parked thread is not counted against the request.
        let due = start + t.saturating_sub(lead);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        r.release(k, t);
    }
    r.close()
}

/// Release requests at their intended times as a task of the runtime,
/// woken by a `timerfd` (see [`super::timer`]): the worker released runs
/// next on the thread that woke, with no hand-over between threads. Every
/// arrival already due when it wakes is released in one go.
pub(super) async fn dispatch_on_timer(
    arrivals: schedule::Arrivals,
    start: Instant,
    s: Arc<Open>,
    stop: Arc<AtomicBool>,
    workers: usize,
    lead: Duration,
    shard: Option<crate::shard::ShardPlan>,
) -> std::io::Result<u64> {
    let timer = super::timer::Timer::new()?;
    let mut r = Releaser {
        s: &s,
        workers,
        offered: 0,
        released: 0,
    };
    let mut failed = None;
    for (k, t) in arrivals.enumerate() {
        if shard.is_some_and(|p| !p.owns(k as u64)) {
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Err(e) = timer.sleep_until(start + t.saturating_sub(lead)).await {
            failed = Some(e);
            break;
        }
        r.release(k, t);
    }
    let offered = r.close();
    match failed {
        Some(e) => Err(e),
        None => Ok(offered),
    }
}

pub(super) async fn closed_phase(
    ctx: Arc<Ctx>,
    phase: Phase,
    start: Instant,
    seed: u64,
    base: usize,
) -> PhaseResult {
    let Load::Closed { users, think } = phase.load else {
        unreachable!("closed_phase runs closed phases")
    };
    let end = start + phase.duration.0;
    let completed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for u in 0..users as usize {
        if ctx.shard.is_some_and(|p| !p.owns(u as u64)) {
            continue;
        }
        let ctx = ctx.clone();
        let completed = completed.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(
                base + u,
                ctx.ops,
                ctx.origin,
                ctx.interval,
                ctx.tx.clone(),
                ctx.pool.clone(),
            );
            let mut log = WriteLog::new();
            tokio::time::sleep_until(start.into()).await;
            let user_seed = mix(seed, u as u64);
            let mut n = 0u64;
            while Instant::now() < end && !ctx.stop.load(Ordering::Relaxed) {
                let mut req = ctx.workload.plan(mix(user_seed, n));
                n += 1;
                let send = Instant::now();
                ctx.hop().await;
                let res = tokio::time::timeout(
                    ctx.timeout,
                    ctx.workload
                        .execute(&ctx.repo, &ctx.variant, &mut req, &mut log),
                )
                .await;
                let done = Instant::now();
                match res {
                    Ok(Ok(mode)) => {
                        if let (Some(c), Some(m)) = (&ctx.cohorts, mode) {
                            c.record(req.op, m, done - send);
                        }
                        rec.ok(req.op, done, done - send, done - send, None, false)
                    }
                    Ok(Err(e)) => rec.error(req.op, done, ErrorKind::of(&e), false),
                    Err(_) => rec.error(req.op, done, ErrorKind::Timeout, false),
                }
                completed.fetch_add(1, Ordering::Relaxed);
                if !think.0.is_zero() {
                    tokio::time::sleep(think.0).await;
                    rec.tick();
                }
            }
            rec.finish();
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = Instant::now().saturating_duration_since(start);
    PhaseResult::closed(&phase, completed.load(Ordering::Relaxed), elapsed)
}
