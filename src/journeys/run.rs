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
    GooseAttack, GooseCoordinatedOmissionMitigation, GooseMetrics, GooseUser,
    Scenario as GooseScenario, Transaction, TransactionFunction,
};
use serde::Deserialize;

use super::file::Journeys;
use crate::day::Day;
use crate::error::{Error, IoContext, Result};
use crate::estate::Estate;
use crate::generate::rng::mix_str;
use crate::run::hlog::Hlog;
use crate::run::{Environment, Host, JourneysInfo, RunResult};
use crate::scenario::Dur;
use crate::schema::Mode;

use super::calls::*;
use super::record::*;

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
    use crate::day::Day;
    use crate::run::{Latency, OpResult};
    use crate::scenario::MixEntry;

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
