//! The load driver: runs a scenario's phases against each of its variants,
//! records every latency free of coordinated omission, and writes what it
//! measured to `run.json` and `latency.hlog`.
//!
//! Open phases: a dispatcher (a task woken by a `timerfd`, see [`timer`])
//! releases requests at their intended start times (from [`schedule::Arrivals`]); up to `max_in_flight` workers
//! take them in order. A request's response time is counted from its
//! intended start, so a stall delays the requests queued behind it and shows
//! in their latency, as it would for users. Past a backlog of
//! [`BACKLOG`] requests, arrivals are dropped and counted. Closed phases:
//! `users` tasks each send, wait, think, repeat; only service time exists
//! there and the result says it is closed-loop.

pub mod assemble;
pub mod cohorts;
pub mod ledger;
pub mod live;
pub mod ops;
mod phases;
pub mod record;
pub mod replay;
pub mod schedule;
pub mod tenants;
pub mod timer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, IoContext, Result};
use crate::estate::Estate;
use crate::generate::rng::{mix, mix_str};
use crate::repo::{Repo, RepoConfig};
use crate::scenario::{self, Load, Phase, Scenario, Variant};
use crate::{db, seed};

use crate::run::histogram::ErrorKind;
use crate::run::hlog::Hlog;
use crate::run::{PhaseResult, RunResult, VariantResult};
use ops::{Workload, WriteLog};
use phases::{closed_phase, open_phase};
use record::{Collector, Msg, Recorder, SlotPool};
use tenants::{Chooser, TenantSet};

/// Requests released but not yet taken by a worker, at most; later arrivals are dropped.
pub const BACKLOG: usize = 1 << 16;

/// How early the dispatcher releases a request at moderate rates; the worker
/// spins out the rest. A parked runtime thread takes about 100 µs to wake
/// on our machines, which would otherwise be added to every response time.
pub const EARLY_RELEASE: Duration = Duration::from_micros(200);
/// Above this rate (requests/s) workers are awake anyway and spinning would
/// cost more CPU than it saves latency: no early release.
pub const EARLY_RELEASE_MAX_RATE: f64 = 500.0;

/// How early an open phase at `rate` (its peak, requests/s) releases each
/// request: the scenario's `early_release`, else [`EARLY_RELEASE`] up to
/// [`EARLY_RELEASE_MAX_RATE`] and none above.
pub fn early_release(asked: Option<Duration>, rate: f64) -> Duration {
    match asked {
        Some(d) => d,
        None if rate <= EARLY_RELEASE_MAX_RATE => EARLY_RELEASE,
        None => Duration::ZERO,
    }
}

/// Below this much time left, a worker waiting out an early release spins
/// even on a current-thread runtime: a yield costs a pass of the scheduler
/// and an `epoll_wait`, a few µs.
const SPIN_BELOW: Duration = Duration::from_micros(20);

/// Wait until `intended`, a request released early (see [`EARLY_RELEASE`]).
/// On a multi-thread runtime the worker spins: the other thread serves the
/// rest. On a current-thread runtime (`REHEARSE_THREADS=current`) spinning
/// would hold the one thread, and every answer and timer due meanwhile would
/// wait for it; the worker yields between checks instead, and spins only the
/// last [`SPIN_BELOW`].
async fn wait_out(intended: Instant, yielding: bool) {
    loop {
        let now = Instant::now();
        if now >= intended {
            return;
        }
        if yielding && intended - now > SPIN_BELOW {
            tokio::task::yield_now().await;
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Whether this runtime is a current-thread one, whose workers yield while
/// they wait out an early release ([`wait_out`]).
fn yielding() -> bool {
    tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread
}

/// The runtime this process drives on, as run.json and the driver's line name it.
pub(crate) fn runtime_name() -> String {
    let h = tokio::runtime::Handle::current();
    match h.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => "current-thread".into(),
        _ => match h.metrics().num_workers() {
            1 => "multi-thread, 1 worker".into(),
            n => format!("multi-thread, {n} workers"),
        },
    }
}

/// What `rehearse run` was asked.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenarios: Vec<PathBuf>,
    /// Only these variants of each scenario, in this order.
    pub variants: Vec<String>,
    pub duration: Option<Duration>,
    pub rate: Option<f64>,
    pub warmup: Option<Duration>,
    /// Added to every request: a known regression (`--inject-delay`).
    pub inject_delay: Option<Duration>,
    /// Confidence of the budgets' intervals, instead of the scenario's (`--confidence`).
    pub confidence: Option<f64>,
    /// The run directory (with several scenarios, one directory per scenario under it).
    pub out: Option<PathBuf>,
    /// Live progress on stderr.
    pub verbose: bool,
    /// Set to stop the run early, as Ctrl-C does.
    pub stop: Option<Arc<AtomicBool>>,
    /// Where to serve metrics; None: the lab's rehearse port when the lab
    /// has monitoring, else nowhere.
    pub metrics_addr: Option<crate::metrics::MetricsAddr>,
    /// Offer only this shard's share of the schedule, from a shared start.
    pub shard: Option<crate::shard::ShardPlan>,
}

/// One scenario's run.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub result: RunResult,
}

impl RunOutcome {
    pub fn exit_code(&self) -> i32 {
        self.result.exit_code
    }
}

/// Run each scenario in turn; stops early when one is interrupted.
pub async fn run(estate: &Estate, opts: &RunOptions) -> Result<Vec<RunOutcome>> {
    if opts.scenarios.is_empty() {
        return Err(Error::Usage("give at least one scenario file".into()));
    }
    // Check every file before running any.
    let mut scenarios = Vec::new();
    for p in &opts.scenarios {
        let mut s = scenario::load(p)?;
        if let Some(d) = opts.duration {
            if d.is_zero() {
                return Err(Error::Usage("--duration must be more than zero".into()));
            }
            s.set_duration(d);
        }
        if let Some(r) = opts.rate {
            if r.is_nan() || r <= 0.0 {
                return Err(Error::Usage("--rate must be positive".into()));
            }
            s.set_rate(r)?;
        }
        if let Some(w) = opts.warmup {
            s.warmup = scenario::Dur(w);
        }
        if let Some(d) = opts.inject_delay {
            s.inject_delay = scenario::Dur(d);
        }
        if let Some(c) = opts.confidence {
            s.validity.confidence = scenario::check_confidence(c)?;
        }
        if !opts.variants.is_empty() {
            s.select_variants(&opts.variants)?;
        }
        scenarios.push(s);
    }
    let served = crate::metrics::serve(
        crate::metrics::Metrics::for_scenarios(&scenarios),
        &opts
            .metrics_addr
            .clone()
            .unwrap_or_else(|| crate::metrics::MetricsAddr::default_for(estate)),
        opts.metrics_addr.is_some(),
    )
    .await?;
    if let (Some(a), true) = (served.addr, opts.verbose) {
        eprintln!("metrics on http://{a}/metrics");
    }
    let hooks = Hooks {
        metrics: Some(served.metrics.clone()),
        shard: opts.shard,
        ..Hooks::default()
    };
    let stop = opts.stop.clone().unwrap_or_default();
    crate::interrupt::on_ctrl_c(
        "finishing requests in flight and writing what was measured",
        &[&stop],
    );
    let several = scenarios.len() > 1;
    let mut out = Vec::new();
    for s in scenarios {
        let dir = match (&opts.out, several) {
            (Some(d), false) => d.clone(),
            (Some(d), true) => d.join(&s.name),
            (None, _) => {
                PathBuf::from("results").join(crate::run::run_id(SystemTime::now(), &s.name))
            }
        };
        let result = run_scenario(estate, &s, &dir, opts.verbose, &stop, &hooks).await?;
        let interrupted = result.status == crate::run::Status::Interrupted;
        out.push(RunOutcome { dir, result });
        if interrupted {
            break;
        }
    }
    Ok(out)
}

/// Run one checked scenario into `dir` (benchmarks that build their own).
pub async fn run_one(
    estate: &Estate,
    s: &Scenario,
    dir: &Path,
    verbose: bool,
) -> Result<RunResult> {
    run_hooked(estate, s, dir, verbose, &Arc::default(), &Hooks::default()).await
}

/// What a caller that steers a run from outside (the cutover drill) plugs in.
#[derive(Default)]
pub struct Hooks {
    /// Every variant follows `USE_PARTITIONED_TABLES` (the feature_flags
    /// row) as a service would, instead of forcing the variant's mode.
    pub follow_flag: bool,
    /// Every acknowledged write is recorded here.
    pub ledger: Option<Arc<ledger::Ledger>>,
    /// The live figures, readable while the run goes.
    pub live: Option<Arc<live::Live>>,
    /// When the first variant started: the instant, and seconds from the
    /// interval log's start time.
    pub started: OnceLock<(Instant, f64)>,
    /// What the run exports on /metrics.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Latency by the mode each request used (the rollout drill).
    pub cohorts: Option<Arc<cohorts::Cohorts>>,
    /// This process is one shard of a run (`run --shard I/N`).
    pub shard: Option<crate::shard::ShardPlan>,
    /// Requests from a captured trace instead of the phases' schedules
    /// (`rehearse replay`).
    pub replay: Option<Arc<replay::Plan>>,
}

/// Run one checked scenario into `dir`, with hooks, until it ends or `stop` is set.
pub async fn run_hooked(
    estate: &Estate,
    s: &Scenario,
    dir: &Path,
    verbose: bool,
    stop: &Arc<AtomicBool>,
    hooks: &Hooks,
) -> Result<RunResult> {
    run_scenario(estate, s, dir, verbose, stop, hooks).await
}

/// A workload running in the background while a drill steers the estate.
pub type Background = tokio::task::JoinHandle<Result<RunResult>>;

/// Start `s` in the background, quietly (a drill prints its own lines),
/// and wait until it measures: returns the task and the instant its first
/// variant started, from which the drill's markers count.
pub async fn start_background(
    estate: &Estate,
    s: &Scenario,
    dir: &Path,
    stop: &Arc<AtomicBool>,
    hooks: &Arc<Hooks>,
) -> Result<(Background, Instant)> {
    let workload = {
        let (estate, s, dir, hooks, stop) = (
            estate.clone(),
            s.clone(),
            dir.to_path_buf(),
            hooks.clone(),
            stop.clone(),
        );
        tokio::spawn(async move { run_hooked(&estate, &s, &dir, false, &stop, &hooks).await })
    };
    loop {
        if let Some((at, _)) = hooks.started.get() {
            return Ok((workload, *at));
        }
        if workload.is_finished() {
            let r = workload
                .await
                .map_err(|e| Error::Lab(format!("the workload task failed: {e}")))?;
            return Err(r
                .err()
                .unwrap_or_else(|| Error::Lab("the workload ended before it began".into())));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run the scenario's `[[job]]`s against the estate while a variant runs:
/// each from its start offset, again every `every`, never past the
/// variant's end; a job is never run twice at once. Each run's window is
/// kept, with its outcome; a job that could not run is a window with exit 4.
async fn run_jobs(
    estate: Estate,
    jobs: Vec<crate::scenario::ScheduledJob>,
    origin: Instant,
    length: Duration,
    done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Vec<crate::run::JobWindow> {
    let ended = move || done.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst);
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|j| {
            let (estate, ended) = (estate.clone(), ended.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                let mut next = j.start.0;
                while next < length && !ended() {
                    let at = origin + next;
                    while Instant::now() < at && !ended() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if ended() {
                        break;
                    }
                    let start_s = origin.elapsed().as_secs_f64();
                    let opts = crate::jobs::JobOptions {
                        budget: j.budget.0,
                        ..Default::default()
                    };
                    let (exit_code, summary) = match crate::jobs::run(&estate, j.job, &opts).await {
                        Ok(r) => (r.exit_code(), r.summary),
                        Err(e) => (e.exit_code(), e.to_string()),
                    };
                    out.push(crate::run::JobWindow {
                        job: j.job.name().to_string(),
                        start_s,
                        end_s: origin.elapsed().as_secs_f64(),
                        exit_code,
                        summary,
                    });
                    match j.every {
                        // The next run after this one ended, on the schedule's grid.
                        Some(every) => {
                            let since = origin.elapsed().saturating_sub(j.start.0);
                            let k = since.as_nanos() / every.0.as_nanos().max(1) + 1;
                            next = j.start.0 + every.0 * k as u32;
                        }
                        None => break,
                    }
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    all
}

/// Everything a variant's tasks share.
struct Ctx {
    repo: Repo,
    variant: Variant,
    workload: Arc<Workload>,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    origin: Instant,
    interval: Duration,
    tx: tokio::sync::mpsc::UnboundedSender<Msg>,
    pool: SlotPool,
    ops: usize,
    cohorts: Option<Arc<cohorts::Cohorts>>,
    shard: Option<crate::shard::ShardPlan>,
    /// The scenario's `early_release`, if it set one.
    early_release: Option<Duration>,
    /// `REHEARSE_INJECT_HOP=1`: a known inefficiency, one extra hop to
    /// another thread and back before every request, that the CI's
    /// calibration floor must catch (tests/calibration.rs).
    inject_hop: bool,
}

impl Ctx {
    /// The injected hop, when asked for: a call on tokio's blocking pool,
    /// waited for (a hop within the thread costs too little to matter;
    /// across threads it costs a wake-up each way).
    async fn hop(&self) {
        if self.inject_hop {
            let _ = tokio::task::spawn_blocking(|| ()).await;
        }
    }
}

async fn run_scenario(
    estate: &Estate,
    s: &Scenario,
    dir: &Path,
    verbose: bool,
    stop: &Arc<AtomicBool>,
    hooks: &Hooks,
) -> Result<RunResult> {
    let started = SystemTime::now();
    let client = db::connect_monitor(&estate.primary.url).await?;
    let environment = assemble::environment(&client, estate).await?;
    let seeded = seed::read_record(&client)
        .await?
        .filter(|r| r.is_complete());
    let needs_tenants = Workload::needs_tenants(&s.mix);
    if needs_tenants && seeded.is_none() {
        return Err(Error::Usage(format!(
            "{} runs repository operations, and {} holds no complete seed: run `rehearse seed` first",
            s.path.display(),
            estate.primary.redacted()
        )));
    }
    // Statement statistics: a rehearsal database may be given the extension
    // (the lab preloads the library); anything else is only read.
    if crate::schema::meta::has_meta(&client)
        .await
        .unwrap_or(false)
    {
        let _ = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await;
    }
    let today = seeded
        .as_ref()
        .map(|r| r.params.end_date)
        .unwrap_or_else(|| crate::day::Day::from_ymd(2026, 10, 31));

    std::fs::create_dir_all(dir).io("creating the run directory", dir)?;
    let mut result = RunResult::new(s, started, environment);
    result.shard = hooks
        .shard
        .as_ref()
        .map(|p| crate::shard::ShardInfo::new(p, s));
    result.write(dir)?;
    let mut hlog = Hlog::create(
        &dir.join("latency.hlog"),
        started,
        &format!(
            "Logged with rehearse {} (scenario {}); tags are variant/operation/metric, values in ns",
            env!("CARGO_PKG_VERSION"),
            s.name
        ),
    )?;

    let run_clock = Instant::now();
    // A failure part way keeps what was measured, marked failed.
    let ran: Result<()> = async {
        let mut tenants_loaded: Option<(Arc<TenantSet>, Arc<Chooser>)> = None;
        for (vi, variant) in s.variants.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let mut cfg = RepoConfig::from_estate(estate, variant.pool)?;
            cfg.mode_override = (!hooks.follow_flag).then_some(variant.mode);
            cfg.pool_size = s.phases.iter().map(phase_concurrency).max().unwrap_or(1) + 4;
            // What the driver stops waiting for, the server stops running.
            cfg.statement_timeout = Some(s.timeout.0);
            if !variant.cache {
                cfg.redis_url = None;
            }
            let repo = Repo::connect(cfg).await?;
            let (set, chooser) = match &tenants_loaded {
                Some(x) => x.clone(),
                None => {
                    let mut pairs = Vec::new();
                    if needs_tenants {
                        repo.for_each_property(|o, p| pairs.push((o, p))).await?;
                    }
                    let set = Arc::new(TenantSet::from_pairs(pairs));
                    let chooser = Chooser::new(&s.tenants, &set, s.seed);
                    if needs_tenants {
                        if let Some(why) = chooser.unusable() {
                            return Err(Error::Usage(format!(
                                "{}: cannot choose tenants: {why}",
                                s.path.display()
                            )));
                        }
                    }
                    let chooser = Arc::new(chooser);
                    tenants_loaded = Some((set.clone(), chooser.clone()));
                    (set, chooser)
                }
            };
            let mut workload = Workload::new(s.mix.clone(), set, chooser, today);
            workload.delay = s.inject_delay.0;
            workload.ledger = hooks.ledger.clone();
            // Where the time goes on the server: the primary and the
            // replica, sampled directly (not through PgBouncer).
            let mut servers = vec![("primary", estate.primary.url.as_str())];
            if let Some(r) = &estate.replica {
                servers.push(("replica", r.url.as_str()));
            }
            let attribution =
                crate::attribution::session::Session::start(&servers, estate.sampling).await;
            workload.trace = attribution.as_ref().map(|a| a.trace());
            let workload = Arc::new(workload);
            let before = assemble::statements_snapshot(&client).await;
            let cpu_before = assemble::process_cpu();
            // A shard starts each variant at the instant every shard plans for it.
            if let Some(plan) = &hooks.shard {
                if verbose {
                    eprintln!(
                        "shard {}/{}: variant {} starts at {}",
                        plan.index,
                        plan.count,
                        variant.name,
                        crate::shard::rfc3339(plan.variant_start(s, vi))
                    );
                }
                plan.wait_for_variant(s, vi).await?;
            }
            let offset = run_clock.elapsed().as_secs_f64();
            // The scenario's maintenance jobs, on this variant's clock (one
            // shard runs them: the estate must not see them N times).
            let job_stop = Arc::new(AtomicBool::new(false));
            let runs_jobs = hooks.shard.is_none_or(|p| p.index == 0);
            let job_task = (!s.jobs.is_empty() && runs_jobs).then(|| {
                tokio::spawn(run_jobs(
                    estate.clone(),
                    s.jobs.clone(),
                    Instant::now(),
                    s.duration(),
                    job_stop.clone(),
                    stop.clone(),
                ))
            });
            let _ = hooks.started.set((Instant::now(), offset));
            let v = run_variant(
                s,
                variant,
                repo.clone(),
                workload,
                &mut hlog,
                offset,
                match variant.pool {
                    crate::repo::Pooling::PgBouncer => {
                        estate.pgbouncer.as_ref().map(|e| e.url.clone())
                    }
                    crate::repo::Pooling::Direct => None,
                },
                verbose,
                stop,
                hooks.live.clone(),
                hooks.metrics.clone(),
                hooks.cohorts.clone(),
                hooks.shard,
                hooks.replay.clone(),
            )
            .await;
            job_stop.store(true, Ordering::SeqCst);
            let jobs = match job_task {
                Some(t) => t.await.unwrap_or_default(),
                None => Vec::new(),
            };
            let mut v = v?;
            v.jobs = jobs;
            v.driver_cpu_seconds = assemble::process_cpu() - cpu_before;
            // The CPU was spent on every request sent, the warm-up's too:
            // divided by the measured requests alone it would be inflated
            // by the warm-up's share (a quarter for 2 s of 10).
            let total = v.requests_sent();
            if total > 0 {
                v.driver_cpu_us_per_op = v.driver_cpu_seconds * 1e6 / total as f64;
            }
            v.database.top_statements = assemble::statements_delta(&client, before).await;
            if let Some(a) = attribution {
                let names: Vec<String> = s.mix.iter().map(|m| m.name.clone()).collect();
                v.database.attribution = a.finish(&names, &repo).await;
            }
            result.variants.push(v);
            result.write(dir)?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = ran {
        result.fail(&e, run_clock.elapsed());
        let _ = result.write(dir);
        return Err(e);
    }
    result.finish(stop.load(Ordering::SeqCst), run_clock.elapsed());
    result.write(dir)?;
    Ok(result)
}

/// Tasks a phase runs at once.
fn phase_concurrency(p: &Phase) -> usize {
    match p.load {
        Load::Open { max_in_flight, .. } => max_in_flight as usize,
        Load::Closed { users, .. } => users as usize,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_variant(
    s: &Scenario,
    variant: &Variant,
    repo: Repo,
    workload: Arc<Workload>,
    hlog: &mut Hlog,
    offset: f64,
    pgbouncer: Option<String>,
    verbose: bool,
    stop: &Arc<AtomicBool>,
    live: Option<Arc<live::Live>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    cohorts: Option<Arc<cohorts::Cohorts>>,
    shard: Option<crate::shard::ShardPlan>,
    replay: Option<Arc<replay::Plan>>,
) -> Result<VariantResult> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pool: SlotPool = Arc::default();
    let origin = Instant::now();
    let interval = s.interval.0;
    let names: Vec<String> = s.mix.iter().map(|m| m.name.clone()).collect();
    let mut collector = Collector::new(
        &variant.name,
        names.clone(),
        interval,
        offset,
        s.warmup.0,
        pool.clone(),
    );
    collector.metrics = metrics.clone();
    if let Some(m) = &metrics {
        m.variant_started(&variant.name);
    }
    let export_repo = |repo: Repo| {
        let metrics = metrics.clone();
        let name = variant.name.clone();
        async move {
            if let Some(m) = metrics {
                let partitioned = repo.mode().await == crate::schema::Mode::Partitioned;
                m.repo(&name, &repo.stats(), partitioned);
            }
        }
    };
    let ctx = Arc::new(Ctx {
        repo: repo.clone(),
        variant: variant.clone(),
        workload,
        timeout: s.timeout.0,
        stop: stop.clone(),
        origin,
        interval,
        tx,
        pool,
        ops: names.len(),
        cohorts,
        shard,
        early_release: s.early_release.map(|d| d.0),
        inject_hop: std::env::var("REHEARSE_INJECT_HOP").is_ok_and(|v| v == "1"),
    });
    let live = live.unwrap_or_default();
    let sampler = live::Sampler::start(repo.clone(), pgbouncer, interval, origin);
    let display = live::Display::start(
        verbose,
        &s.name,
        variant,
        s.duration(),
        s.phases.clone(),
        origin,
        interval,
        s.warmup.0,
        live.clone(),
    );

    let mut phases = Vec::new();
    let mut phase_start = origin;
    for (pi, phase) in s.phases.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let seed = mix(mix(s.seed, pi as u64), mix_str(0, &phase.name));
        let base = pi * 100_000;
        let workers = phase_concurrency(phase);
        for w in 0..workers {
            collector.expect_worker(
                base + w,
                (phase_start.saturating_duration_since(origin).as_nanos() / interval.as_nanos())
                    as u64,
            );
        }
        live.phase.store(pi, Ordering::Relaxed);
        let handle = match &phase.load {
            _ if replay.is_some() => tokio::spawn(replay::replay_phase(
                ctx.clone(),
                phase.clone(),
                phase_start,
                base,
                replay.clone().expect("checked"),
            )),
            Load::Open { .. } => tokio::spawn(open_phase(
                ctx.clone(),
                phase.clone(),
                phase_start,
                seed,
                base,
            )),
            Load::Closed { .. } => tokio::spawn(closed_phase(
                ctx.clone(),
                phase.clone(),
                phase_start,
                seed,
                base,
            )),
        };
        // Collect while the phase runs.
        let mut handle = handle;
        let pr = loop {
            tokio::select! {
                r = &mut handle => break r.map_err(|e| Error::Lab(format!("a phase task failed: {e}")))?,
                Some(m) = rx.recv() => {
                    let finished = collector.timeline.len();
                    live.reported(&m);
                    collector.absorb(m, Some(hlog));
                    // The live figures change only when an interval finishes:
                    // percentiles are not recomputed for every worker's message.
                    if collector.timeline.len() != finished {
                        live.publish(&collector);
                        export_repo(repo.clone()).await;
                    }
                }
            }
        };
        // The phase's workers are done: drain their last messages.
        while let Ok(m) = rx.try_recv() {
            live.reported(&m);
            collector.absorb(m, Some(hlog));
        }
        live.publish(&collector);
        phases.push(pr);
        phase_start = origin + (phase_start - origin) + phase.duration.0;
        let now = Instant::now();
        if now > phase_start {
            // A phase that overran (a backlog drained late) pushes the next one back.
            phase_start = now;
        }
    }
    drop(ctx);
    while let Some(m) = rx.recv().await {
        live.reported(&m);
        collector.absorb(m, Some(hlog));
    }
    collector.finish_all(Some(hlog));
    export_repo(repo.clone()).await;
    if let Some(m) = &metrics {
        m.variant_finished(&variant.name);
    }
    display.finish().await;
    let samples = sampler.stop().await;
    Ok(assemble::variant_result(
        s,
        variant,
        &collector,
        phases,
        samples,
        repo.stats(),
        origin.elapsed(),
        offset,
    ))
}
