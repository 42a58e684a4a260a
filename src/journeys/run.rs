//! `rehearse journeys`: Goose runs a journeys file's personas against
//! `rehearse serve` (or any service with its API), once per variant (mode),
//! with the flag set to that mode on the estate between variants.
//!
//! Each step is one Goose transaction making one HTTP request (a ledger
//! step of `pages = N` is N transactions, each following the last page's
//! cursor). Every request is timed from before it is sent to its body read,
//! and recorded in rehearse's HDR histograms with the driver's settings, so
//! `report`, `compare` and `gate` read journeys like any run; Goose writes
//! its own HTML, JSON and Markdown reports beside them.
//!
//! Goose is closed-loop: a user sends its next request only after the last
//! answer and its think time, so a slow service lowers the offered load
//! (coordinated omission). Goose's own mitigation is left off, and the
//! record says so: response times here are service times as a browser
//! waits for them, not response times against a schedule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use goose::config::GooseConfiguration;
use goose::prelude::{
    GooseAttack, GooseCoordinatedOmissionMitigation, GooseMethod, GooseMetrics, GooseRequest,
    GooseUser, Scenario as GooseScenario, Transaction, TransactionError, TransactionFunction,
    TransactionResult,
};
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::file::{Journeys, Step};
use crate::day::Day;
use crate::error::{Error, IoContext, Result};
use crate::estate::Estate;
use crate::generate::rng::{mix, mix_str, SplitMix};
use crate::repo::finance::EntryKind;
use crate::run::histogram::{histogram, IntervalOp, IntervalSummary};
use crate::run::hlog::Hlog;
use crate::run::{
    judge, Database, Environment, Host, JourneysInfo, Latency, LoadModel, OpResult, PhaseResult,
    RunResult, VariantResult,
};
use crate::scenario::{self, Dur, Load, MixEntry, Phase, Tenants};
use crate::schema::Mode;

/// What `rehearse journeys` was asked.
#[derive(Debug, Clone)]
pub struct JourneysOptions {
    pub file: PathBuf,
    pub users: Option<u32>,
    pub hatch_rate: Option<f64>,
    pub duration: Option<Duration>,
    /// The service's base URL, e.g. http://127.0.0.1:8080.
    pub target: String,
    pub out: Option<PathBuf>,
    /// Set the flag to each variant's mode on the estate (else: one
    /// variant, whatever mode the service is in).
    pub set_flag: bool,
    pub quiet: bool,
}

/// What the service says of itself at `/estate`.
#[derive(Debug, Clone, Deserialize)]
struct ServiceEstate {
    organizations: u64,
    as_of: Day,
    mode: Mode,
    rollout_basis_points: Option<u16>,
}

/// The host:port of an http:// URL.
fn host_port(target: &str) -> Result<String> {
    let rest = target.strip_prefix("http://").ok_or_else(|| {
        Error::Usage(format!(
            "--target {target:?}: give the service's base URL, http://HOST:PORT"
        ))
    })?;
    let hp = rest.trim_end_matches('/');
    if hp.is_empty() || hp.contains('/') {
        return Err(Error::Usage(format!(
            "--target {target:?}: give the base URL only, http://HOST:PORT"
        )));
    }
    Ok(hp.to_string())
}

fn service_estate(target: &str) -> Result<ServiceEstate> {
    let hp = host_port(target)?;
    let r = crate::http::get(&hp, "/estate", Duration::from_secs(5))
        .map_err(|e| Error::Lab(format!("the service at {target} does not answer: {e}")))?;
    if r.status != 200 {
        return Err(Error::Lab(format!(
            "the service at {target} answered /estate with {}: {}",
            r.status,
            r.body.trim()
        )));
    }
    serde_json::from_str(&r.body).map_err(|e| {
        Error::Lab(format!(
            "the service at {target} is not rehearse serve (its /estate reads as: {e})"
        ))
    })
}

/// Timings and errors of one variant, by transaction and interval.
struct Recorder {
    start: Instant,
    interval: f64,
    hist: BTreeMap<(usize, u64), Histogram<u64>>,
    errors: BTreeMap<(usize, String), u64>,
    interval_errors: BTreeMap<(usize, u64), u64>,
}

impl Recorder {
    fn new(interval: Duration) -> Recorder {
        Recorder {
            start: Instant::now(),
            interval: interval.as_secs_f64(),
            hist: BTreeMap::new(),
            errors: BTreeMap::new(),
            interval_errors: BTreeMap::new(),
        }
    }

    fn idx(&self) -> u64 {
        (self.start.elapsed().as_secs_f64() / self.interval) as u64
    }

    fn ok(&mut self, txn: usize, took: Duration) {
        let i = self.idx();
        let ns = (took.as_nanos() as u64).clamp(1, crate::run::histogram::HIGHEST_NS);
        let _ = self
            .hist
            .entry((txn, i))
            .or_insert_with(histogram)
            .record(ns);
    }

    fn error(&mut self, txn: usize, kind: &str) {
        let i = self.idx();
        *self.errors.entry((txn, kind.to_string())).or_default() += 1;
        *self.interval_errors.entry((txn, i)).or_default() += 1;
    }
}

/// What every transaction of a variant shares.
struct Shared {
    recorder: Mutex<Recorder>,
    organizations: u64,
    as_of: Day,
    seed: u64,
}

/// One transaction: a step (and page) of a persona.
struct StepCall {
    shared: Arc<Shared>,
    /// Index of `persona.step` among the file's transactions.
    txn: usize,
    name: String,
    step: Step,
    page: u32,
    /// The first call of a pass: a new organization.
    first: bool,
}

/// A user's state between its calls.
#[derive(Clone)]
struct Session {
    rng: SplitMix,
    org: i64,
    properties: Vec<i64>,
    written: Vec<(EntryKind, i64)>,
    after: Option<String>,
    lsn: Option<u64>,
}

const VENDORS: [&str; 4] = [
    "Metro Supplies",
    "Harbor Linen",
    "Summit Foods",
    "City Utilities",
];

fn entry_json(s: &mut Session, kind: EntryKind) -> serde_json::Value {
    let property = s.properties[(s.rng.next_u64() % s.properties.len() as u64) as usize];
    let cats = kind.categories();
    let category = cats[(s.rng.next_u64() % cats.len() as u64) as usize];
    let amount = 1_000 + (s.rng.next_u64() % 200_000) as i64;
    let mut v = serde_json::json!({
        "kind": kind.name(),
        "property_id": property,
        "category": category,
        "amount_cents": amount,
        "description": "rehearse journeys",
    });
    if kind == EntryKind::Expense {
        v["vendor"] = VENDORS[(s.rng.next_u64() % VENDORS.len() as u64) as usize].into();
    }
    v
}

/// The month `back` months before the one holding `d`, as YYYY-MM.
fn month_before(d: Day, back: u32) -> String {
    let mut first = d.month_bounds().0;
    for _ in 0..back {
        first = first.plus(-1).month_bounds().0;
    }
    first.to_string()[..7].to_string()
}

/// A failed call: counted by kind here, and as a failure by Goose.
fn failed(c: &StepCall, kind: &str, why: String) -> TransactionResult {
    c.shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .error(c.txn, kind);
    Err(Box::new(TransactionError::Custom(format!(
        "{}: {why}",
        c.name
    ))))
}

async fn call(user: &mut GooseUser, c: Arc<StepCall>) -> TransactionResult {
    if c.first || user.get_session_data::<Session>().is_none() {
        let seed = mix(c.shared.seed, user.weighted_users_index as u64);
        let mut rng = user
            .get_session_data::<Session>()
            .map_or(SplitMix(seed), |s| s.rng.clone());
        let org = 1 + (rng.next_u64() % c.shared.organizations.max(1)) as i64;
        user.set_session_data(Session {
            rng,
            org,
            properties: Vec::new(),
            written: Vec::new(),
            after: None,
            lsn: None,
        });
    }
    let s = user
        .get_session_data_mut::<Session>()
        .expect("the session was set above");
    let org = s.org;
    let lsn = s.lsn.map_or(String::new(), |l| format!("&min_lsn={l}"));
    let st = &c.step;
    let (method, path, body, expect): (GooseMethod, String, Option<serde_json::Value>, u16) =
        match st.call.as_str() {
            "dashboard" => (
                GooseMethod::Get,
                format!("/orgs/{org}/dashboard?days={}{lsn}", st.days),
                None,
                200,
            ),
            "pnl" => (
                GooseMethod::Get,
                format!(
                    "/orgs/{org}/pnl?month={}{lsn}",
                    month_before(c.shared.as_of, st.month_back)
                ),
                None,
                200,
            ),
            "properties" => (
                GooseMethod::Get,
                format!("/orgs/{org}/properties?days={}{lsn}", st.days),
                None,
                200,
            ),
            "ledger" => {
                // A page after the first follows the last page's cursor; past
                // the last page, the walk starts again from the first.
                let after = match (&s.after, c.page) {
                    (Some(a), p) if p > 0 => format!("&after={a}"),
                    _ => String::new(),
                };
                (
                    GooseMethod::Get,
                    format!(
                        "/orgs/{org}/ledger?days={}&limit={}{after}{lsn}",
                        st.days, st.limit
                    ),
                    None,
                    200,
                )
            }
            "portfolio" => (
                GooseMethod::Get,
                format!("/portfolio?days={}&top={}", st.days, st.top),
                None,
                200,
            ),
            "record_revenue" | "record_expense" | "post_batch" if s.properties.is_empty() => {
                return failed(
                    &c,
                    "no_property",
                    format!("organization {org} showed no property with entries to write to"),
                );
            }
            "record_revenue" | "record_expense" => {
                let kind = if st.call == "record_revenue" {
                    EntryKind::Revenue
                } else {
                    EntryKind::Expense
                };
                (
                    GooseMethod::Post,
                    format!("/orgs/{org}/entries"),
                    Some(entry_json(s, kind)),
                    201,
                )
            }
            "post_batch" => {
                let entries: Vec<serde_json::Value> = (0..st.entries)
                    .map(|i| {
                        let kind = if i % 3 == 2 {
                            EntryKind::Expense
                        } else {
                            EntryKind::Revenue
                        };
                        entry_json(s, kind)
                    })
                    .collect();
                (
                    GooseMethod::Post,
                    format!("/orgs/{org}/batches"),
                    Some(serde_json::json!({ "entries": entries })),
                    201,
                )
            }
            "adjust" | "void" if s.written.is_empty() => {
                return failed(
                    &c,
                    "nothing_written",
                    "no entry of this pass is left to change".into(),
                );
            }
            "adjust" => {
                let (kind, id) = s.written[0];
                let amount = 1_000 + (s.rng.next_u64() % 200_000) as i64;
                (
                    GooseMethod::Patch,
                    format!("/entries/{}/{id}?org={org}", kind.name()),
                    Some(serde_json::json!({ "amount_cents": amount })),
                    200,
                )
            }
            _ => {
                let (kind, id) = s.written.pop().expect("checked above");
                (
                    GooseMethod::Delete,
                    format!("/entries/{}/{id}?org={org}", kind.name()),
                    None,
                    200,
                )
            }
        };
    let mut rb = user.get_request_builder(&method, &path)?;
    if let Some(b) = &body {
        rb = rb.json(b);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path.as_str())
        .name(c.name.as_str())
        .expect_status_code(expect)
        .set_request_builder(rb)
        .build();
    let sent = Instant::now();
    let mut g = user.request(request).await?;
    let (status, text) = match g.response {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await)
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            let _ = user.set_failure(&format!("{}: {e}", c.name), &mut g.request, None, None);
            return failed(&c, kind, e.to_string());
        }
    };
    let took = sent.elapsed();
    let text = match text {
        Ok(t) if status == expect => t,
        Ok(t) => {
            let _ = user.set_failure(
                &format!("{}: status {status}", c.name),
                &mut g.request,
                None,
                Some(&t),
            );
            return failed(
                &c,
                &format!("http_{status}"),
                format!("status {status}: {t}"),
            );
        }
        Err(e) => {
            let _ = user.set_failure(&format!("{}: {e}", c.name), &mut g.request, None, None);
            return failed(&c, "transport", e.to_string());
        }
    };
    c.shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .ok(c.txn, took);
    // What the answer tells the rest of the pass.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let s = user
        .get_session_data_mut::<Session>()
        .expect("the session was set above");
    match st.call.as_str() {
        "properties" => {
            s.properties = v["data"]["properties"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["property_id"].as_i64()).collect())
                .unwrap_or_default();
        }
        "ledger" => s.after = v["next_after"].as_str().map(str::to_string),
        "record_revenue" | "record_expense" | "adjust" | "void" => {
            if let (Some(k), Some(id)) = (v["kind"].as_str(), v["id"].as_i64()) {
                if st.call.starts_with("record") {
                    let kind = if k == "revenue" {
                        EntryKind::Revenue
                    } else {
                        EntryKind::Expense
                    };
                    s.written.push((kind, id));
                }
            }
            s.lsn = v["lsn"].as_u64().or(s.lsn);
        }
        "post_batch" => {
            if let Some(ids) = v["ids"].as_array() {
                for pair in ids {
                    let kind = match pair[0].as_str() {
                        Some("revenue") => EntryKind::Revenue,
                        _ => EntryKind::Expense,
                    };
                    if let Some(id) = pair[1].as_i64() {
                        s.written.push((kind, id));
                    }
                }
            }
            s.lsn = v["lsn"].as_u64().or(s.lsn);
        }
        _ => {}
    }
    Ok(())
}

/// The scenario record of a journeys file: one closed phase, one mix
/// entry per transaction, a variant per mode.
fn as_scenario(j: &Journeys) -> scenario::Scenario {
    let think: f64 = j
        .personas
        .iter()
        .map(|p| (p.think.0 + p.think_max.0).as_secs_f64() / 2.0 * p.weight as f64)
        .sum::<f64>()
        / j.personas
            .iter()
            .map(|p| p.weight as f64)
            .sum::<f64>()
            .max(1.0);
    let weights: BTreeMap<&str, u32> = j
        .personas
        .iter()
        .map(|p| (p.name.as_str(), p.weight))
        .collect();
    scenario::Scenario {
        name: j.name.clone(),
        description: j.description.clone(),
        path: j.path.clone(),
        seed: j.seed,
        warmup: Dur(Duration::ZERO),
        interval: j.interval,
        timeout: j.timeout,
        inject_delay: Dur(Duration::ZERO),
        phases: vec![Phase {
            name: "journeys".into(),
            duration: j.duration,
            load: Load::Closed {
                users: j.users,
                think: Dur(Duration::from_secs_f64(think)),
            },
        }],
        mix: j
            .transactions()
            .into_iter()
            .map(|(name, s)| MixEntry {
                weight: weights
                    .get(name.split('.').next().unwrap_or(""))
                    .copied()
                    .unwrap_or(1) as f64
                    * s.pages as f64,
                name,
                operation: s.operation(),
                days: s.days,
                limit: s.limit,
                top: s.top,
                entries: s.entries,
                sql: None,
                params: Vec::new(),
                via: None,
            })
            .collect(),
        tenants: Tenants::Uniform,
        variants: j
            .variants
            .iter()
            .map(|m| scenario::Variant {
                name: m.to_string(),
                mode: *m,
                reads: crate::repo::Via::Auto,
                cache: true,
                pool: crate::repo::Pooling::Direct,
            })
            .collect(),
        budgets: j.budgets.clone(),
        validity: scenario::Validity {
            min_rate: 0.95,
            max_driver_lag: Dur(Duration::from_millis(5)),
            confidence: crate::run::judge::DEFAULT_CONFIDENCE,
        },
        jobs: Vec::new(),
    }
}

/// Goose's own transaction counts, by transaction name: (success, fail).
fn goose_counts(m: &GooseMetrics) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in m.transactions.iter().flatten() {
        let e = out
            .entry(t.transaction_name.name_for_transaction().to_string())
            .or_default();
        e.0 += t.success_count as u64;
        e.1 += t.fail_count as u64;
    }
    out
}

/// Where Goose's own count of a transaction differs from what rehearse
/// recorded: then a request was lost on one side, and the run cannot be trusted.
fn disagreements(ops: &[OpResult], goose: &BTreeMap<String, (u64, u64)>) -> Vec<String> {
    ops.iter()
        .filter_map(|o| {
            let (ok, failed) = goose.get(&o.name).copied().unwrap_or((0, 0));
            (ok + failed != o.count).then(|| {
                format!(
                    "{}: Goose counted {} requests ({failed} failed), rehearse recorded {}",
                    o.name,
                    ok + failed,
                    o.count
                )
            })
        })
        .collect()
}

/// Run one variant under Goose; its results and Goose's metrics.
async fn run_variant(
    j: &Journeys,
    names: &[String],
    svc: &ServiceEstate,
    target: &str,
    dir: &Path,
    variant: &str,
) -> Result<(Recorder, GooseMetrics, Vec<String>, f64)> {
    let shared = Arc::new(Shared {
        recorder: Mutex::new(Recorder::new(j.interval.0)),
        organizations: svc.organizations,
        as_of: svc.as_of,
        seed: mix_str(j.seed, variant),
    });
    let reports: Vec<String> = ["html", "json", "md"]
        .iter()
        .map(|ext| {
            dir.join(format!("goose-{variant}.{ext}"))
                .display()
                .to_string()
        })
        .collect();
    let mut config = GooseConfiguration::default();
    config.host = Some(target.trim_end_matches('/').to_string());
    config.users = Some(j.users as usize);
    config.increase_rate = Some(format!("{}", j.hatch_rate));
    config.run_time = Some(format!("{}", j.duration.0.as_secs().max(1)));
    config.report_file = reports.clone();
    config.no_telnet = true;
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_reset_metrics = true;
    config.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Disabled);
    config.timeout = Some(format!("{:.3}", j.timeout.0.as_secs_f64()));
    let mut attack = GooseAttack::initialize_with_config(config)
        .map_err(|e| Error::Usage(format!("goose: {e}")))?;
    for p in &j.personas {
        let mut sc = GooseScenario::new(&p.name)
            .set_weight(p.weight as usize)
            .map_err(|e| Error::Usage(format!("goose: persona {}: {e}", p.name)))?
            .set_wait_time(p.think.0, p.think_max.0)
            .map_err(|e| Error::Usage(format!("goose: persona {}: {e}", p.name)))?;
        let mut first = true;
        for s in &p.steps {
            let name = format!("{}.{}", p.name, s.name);
            let txn = names
                .iter()
                .position(|n| *n == name)
                .expect("a listed transaction");
            for page in 0..s.pages {
                let c = Arc::new(StepCall {
                    shared: shared.clone(),
                    txn,
                    name: name.clone(),
                    step: s.clone(),
                    page,
                    first,
                });
                first = false;
                let f: TransactionFunction =
                    Arc::new(move |user: &mut GooseUser| Box::pin(call(user, c.clone())));
                sc = sc.register_transaction(Transaction::new(f).set_name(&name));
            }
        }
        attack = attack.register_scenario(sc);
    }
    let started = Instant::now();
    shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .start = started;
    let metrics = attack
        .execute()
        .await
        .map_err(|e| Error::Lab(format!("goose: {e}")))?;
    let elapsed = started.elapsed().as_secs_f64();
    let recorder = Arc::try_unwrap(shared)
        .ok()
        .map(|s| s.recorder.into_inner().unwrap_or_else(|e| e.into_inner()));
    let recorder = match recorder {
        Some(r) => r,
        None => {
            return Err(Error::Lab(
                "goose kept a transaction running after the attack ended".into(),
            ))
        }
    };
    Ok((recorder, metrics, reports, elapsed))
}

/// A variant's results from its recorder.
fn variant_result(
    s: &scenario::Scenario,
    variant: &scenario::Variant,
    rec: &Recorder,
    elapsed: f64,
    offset: f64,
) -> VariantResult {
    let mut totals: BTreeMap<usize, Histogram<u64>> = BTreeMap::new();
    for ((t, _), h) in &rec.hist {
        totals
            .entry(*t)
            .or_insert_with(histogram)
            .add(h)
            .expect("auto-resizing add");
    }
    let empty = histogram::<u64>();
    let operations: Vec<OpResult> = s
        .mix
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let h = totals.get(&i).unwrap_or(&empty);
            let errors: BTreeMap<String, u64> = rec
                .errors
                .iter()
                .filter(|((t, _), _)| *t == i)
                .map(|((_, k), n)| (k.clone(), *n))
                .collect();
            let latency = Latency::of(h);
            OpResult::of(
                m,
                errors,
                h.len() as f64 / elapsed.max(1e-9),
                0,
                [latency.clone(), latency, Latency::default()],
            )
        })
        .collect();
    let mut per_interval: BTreeMap<u64, Vec<IntervalOp>> = BTreeMap::new();
    let idxs: std::collections::BTreeSet<(u64, usize)> = rec
        .hist
        .keys()
        .chain(rec.interval_errors.keys())
        .map(|(t, i)| (*i, *t))
        .collect();
    let mut evidence = judge::Evidence::new();
    for (idx, t) in idxs {
        evidence
            .entry(s.mix[t].name.clone())
            .or_default()
            .push(crate::run::bound::Block::of(
                rec.hist.get(&(t, idx)),
                rec.interval_errors.get(&(t, idx)).copied().unwrap_or(0),
            ));
        per_interval.entry(idx).or_default().push(IntervalOp::of(
            &s.mix[t].name,
            rec.hist.get(&(t, idx)),
            rec.interval_errors.get(&(t, idx)).copied().unwrap_or(0),
            0,
        ));
    }
    let timeline = per_interval
        .into_iter()
        .map(|(idx, ops)| IntervalSummary {
            t: idx as f64 * rec.interval,
            ops,
        })
        .collect();
    let completed: u64 = operations.iter().map(|o| o.count).sum();
    let phases = vec![PhaseResult {
        name: "journeys".into(),
        model: LoadModel::Closed,
        duration_s: s.duration().as_secs_f64(),
        target_rate: None,
        offered: None,
        completed,
        dropped: 0,
        achieved_rate: completed as f64 / elapsed.max(1e-9),
        elapsed_s: elapsed,
        failure: None,
    }];
    let driver_lag = Latency::default();
    let validity = judge::validity(&s.validity, &phases, &driver_lag, 0);
    let budgets = judge::budgets(
        &s.budgets,
        &operations,
        &evidence,
        s.validity.confidence,
        elapsed,
    );
    VariantResult {
        variant: variant.clone(),
        started_s: offset,
        seconds: elapsed,
        warmup_s: 0.0,
        closed_loop: true,
        phases,
        operations,
        driver_lag,
        driver_cpu_seconds: 0.0,
        driver_cpu_us_per_op: 0.0,
        driver_peak_rss_kib: None,
        database: Database {
            repo: Default::default(),
            samples: Vec::new(),
            top_statements: None,
        },
        timeline,
        budgets,
        validity,
        jobs: Vec::new(),
    }
}

/// Set the flag to `mode` and wait until the service routes by it.
async fn switch_to(client: &tokio_postgres::Client, target: &str, mode: Mode) -> Result<()> {
    crate::repo::routing::set_flag(client, mode).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = service_estate(target)?;
        if e.mode == mode {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Lab(format!(
                "the flag says {mode} but the service at {target} still routes by {} after 10 s: \
                 is it connected to this estate?",
                e.mode
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Refuse to move the flag where it is not ours to move.
async fn check_flag_is_free(client: &tokio_postgres::Client, estate: &Estate) -> Result<()> {
    crate::schema::safety::ensure_rehearsal_target(
        client,
        estate,
        None,
        "journeys (which sets USE_PARTITIONED_TABLES per variant)",
    )
    .await?;
    let state = crate::cutover::read_state(client).await?;
    if state.phase != crate::cutover::CutoverPhase::NotStarted {
        return Err(Error::Refused(format!(
            "the estate's cutover is {}: journeys will not move the flag under it; \
             run with --as-is to measure the service as it routes now",
            state.phase.name()
        )));
    }
    if let Some(f) = crate::repo::routing::read_flag_state(client).await? {
        if let Some(r) = f.rollout {
            return Err(Error::Refused(format!(
                "a rollout of the flag is recorded ({} basis points): journeys will not move \
                 the flag under it; run with --as-is",
                r.basis_points
            )));
        }
    }
    Ok(())
}

/// Run a journeys file; the run record and its directory.
pub async fn run(estate: Option<&Estate>, opts: &JourneysOptions) -> Result<(RunResult, PathBuf)> {
    let mut j = super::file::load(&opts.file)?;
    if let Some(u) = opts.users {
        if u == 0 {
            return Err(Error::Usage("--users must be at least 1".into()));
        }
        j.users = u;
    }
    if let Some(r) = opts.hatch_rate {
        if r.is_nan() || r <= 0.0 {
            return Err(Error::Usage("--hatch-rate must be positive".into()));
        }
        j.hatch_rate = r;
    }
    if let Some(d) = opts.duration {
        if d < Duration::from_secs(1) {
            return Err(Error::Usage("--duration must be at least 1s".into()));
        }
        j.duration = Dur(d);
    }
    let svc = service_estate(&opts.target)?;
    if svc.organizations == 0 {
        return Err(Error::Lab(format!(
            "the service at {} reports no seeded organizations: run `rehearse seed` first",
            opts.target
        )));
    }
    let flag_client = if opts.set_flag {
        let estate = estate.ok_or_else(|| {
            Error::Usage("setting the flag per variant needs the estate (or pass --as-is)".into())
        })?;
        let client = crate::db::connect(&estate.primary.url).await?;
        check_flag_is_free(&client, estate).await?;
        let before = crate::repo::routing::read_flag(&client).await?;
        Some((client, before))
    } else {
        j.variants = vec![svc.mode];
        if svc.rollout_basis_points.is_some() {
            eprintln!(
                "journeys: the service routes by a rollout ({} basis points): the variant is \
                 named after the flag's own mode, {}, and holds both cohorts",
                svc.rollout_basis_points.unwrap_or(0),
                svc.mode
            );
        }
        None
    };
    let s = as_scenario(&j);
    let names: Vec<String> = s.mix.iter().map(|m| m.name.clone()).collect();
    let started = SystemTime::now();
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => PathBuf::from("results").join(crate::run::run_id(started, &s.name)),
    };
    std::fs::create_dir_all(&dir).io("creating the run directory", &dir)?;
    let environment = Environment {
        rehearse_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("REHEARSE_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_string(),
        postgres_version: "unknown (journeys measure the service)".into(),
        settings: BTreeMap::new(),
        schema: None,
        dataset: Some(serde_json::json!({"organizations": svc.organizations, "as_of": svc.as_of})),
        host: Host {
            cores: crate::lab::machine_cores(),
            memory_bytes: crate::lab::machine_memory(),
        },
        estate: BTreeMap::from([("service".to_string(), opts.target.clone())]),
    };
    let mut result = RunResult::new(&s, started, environment);
    let mut info = JourneysInfo {
        target: opts.target.clone(),
        tool: "goose 0.19".into(),
        closed_loop: true,
        co_mitigation: "disabled".into(),
        users: j.users,
        hatch_rate: j.hatch_rate,
        reports: BTreeMap::new(),
        goose_counts: BTreeMap::new(),
    };
    let tmp = dir.join(".latency.hlog.tmp");
    let mut hlog = Hlog::create(
        &tmp,
        started,
        &format!(
            "rehearse {} journeys {} against {}; tags are variant/transaction/metric, values in ns",
            env!("CARGO_PKG_VERSION"),
            s.name,
            opts.target
        ),
    )?;
    let clock = Instant::now();
    let mut outcome: Result<()> = Ok(());
    let mut interrupted = false;
    for v in &s.variants {
        if let Some((client, _)) = &flag_client {
            if let Err(e) = switch_to(client, &opts.target, v.mode).await {
                outcome = Err(e);
                break;
            }
        }
        if !opts.quiet {
            eprintln!(
                "journeys: {} on {} ({} users, {} started/s, {}), Goose closed-loop",
                v.name, opts.target, j.users, j.hatch_rate, j.duration
            );
        }
        let offset = clock.elapsed().as_secs_f64();
        match run_variant(&j, &names, &svc, &opts.target, &dir, &v.name).await {
            Ok((rec, metrics, reports, elapsed)) => {
                let mut vr = variant_result(&s, v, &rec, elapsed, offset);
                let goose = goose_counts(&metrics);
                for reason in disagreements(&vr.operations, &goose) {
                    vr.validity.reasons.push(reason);
                    vr.validity.valid = false;
                }
                for ((t, idx), h) in &rec.hist {
                    hlog.write(
                        &format!("{}/{}/response", v.name, names[*t]),
                        offset + *idx as f64 * rec.interval,
                        rec.interval,
                        h,
                    )
                    .io("writing the interval log", &tmp)?;
                }
                info.goose_counts.insert(v.name.clone(), goose);
                info.reports.insert(v.name.clone(), reports);
                result.variants.push(vr);
                // Ctrl-C reaches Goose's own handler, which ends the attack
                // early: keep what was measured, mark it, run nothing more.
                if goose::is_killswitch_triggered() {
                    interrupted = true;
                    break;
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    drop(hlog);
    std::fs::rename(&tmp, dir.join("latency.hlog")).io("writing the interval log", &dir)?;
    if let Some((client, before)) = &flag_client {
        let restored = match before {
            Some(m) => crate::repo::routing::set_flag(client, *m).await,
            None => client
                .execute(
                    "DELETE FROM feature_flags WHERE name = $1",
                    &[&crate::repo::routing::FLAG],
                )
                .await
                .map(|_| ())
                .map_err(|source| Error::Db {
                    what: "restoring the flag".into(),
                    source,
                }),
        };
        if let Err(e) = restored {
            eprintln!("journeys: could not restore the flag: {e}");
        }
    }
    result.journeys = Some(info);
    match outcome {
        Ok(()) => result.finish(interrupted, clock.elapsed()),
        Err(e) => {
            result.fail(&e, clock.elapsed());
            result.write(&dir)?;
            return Err(e);
        }
    }
    result.write(&dir)?;
    Ok((result, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_that_goose_and_rehearse_disagree_on_is_named() {
        let m = |name: &str| MixEntry {
            name: name.into(),
            operation: crate::scenario::Operation::Dashboard,
            weight: 1.0,
            days: 1,
            limit: 1,
            top: 1,
            entries: 1,
            sql: None,
            params: Vec::new(),
            via: None,
        };
        let lat = |n: u64| Latency {
            count: n,
            ..Latency::default()
        };
        let ops = vec![
            OpResult::of(
                &m("a.x"),
                BTreeMap::new(),
                0.0,
                0,
                [lat(10), lat(10), lat(0)],
            ),
            OpResult::of(
                &m("a.y"),
                BTreeMap::from([("http_503".to_string(), 2)]),
                0.0,
                0,
                [lat(5), lat(5), lat(0)],
            ),
        ];
        let agree = BTreeMap::from([("a.x".to_string(), (10, 0)), ("a.y".to_string(), (5, 2))]);
        assert!(disagreements(&ops, &agree).is_empty());
        let lost = BTreeMap::from([("a.x".to_string(), (11, 0)), ("a.y".to_string(), (5, 2))]);
        let d = disagreements(&ops, &lost);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("a.x: Goose counted 11"), "{d:?}");
        // A transaction Goose did not report at all is a disagreement, not a pass.
        assert_eq!(disagreements(&ops, &BTreeMap::new()).len(), 2);
    }

    #[test]
    fn months_count_back_across_years() {
        let d = Day::from_ymd(2026, 2, 14);
        assert_eq!(month_before(d, 0), "2026-02");
        assert_eq!(month_before(d, 2), "2025-12");
        assert_eq!(month_before(d, 14), "2024-12");
    }

    #[test]
    fn the_target_is_a_base_url() {
        assert_eq!(
            host_port("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080"
        );
        assert!(host_port("https://x:1").is_err());
        assert!(host_port("http://x:1/api").is_err());
    }
}
