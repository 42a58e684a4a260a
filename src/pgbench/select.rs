//! `rehearse bench select`: calibration of the driver against pgbench.
//!
//! In one scratch database initialised by `pgbench -i -s SCALE`, rounds
//! alternate `pgbench -S -M prepared -c C -j J -T D` and rehearse running
//! `scenarios/pgbench_select.toml` (the same statement through the
//! repository's prepared-statement pool, C closed-loop users, D seconds).
//! Reported: transactions per second of both, their ratio, and CPU time per
//! operation of each client (pgbench from its child rusage, rehearse from
//! its own), since client and server share the machine's cores.

use std::time::Duration;

use serde::Serialize;

use crate::db;
use crate::driver;
use crate::error::{Error, Result};
use crate::estate::{Estate, Source};
use crate::lab::process::run_checked;
use crate::pgbench::{median, recreate_database, Pgbench};
use crate::scenario::{self, Load, SqlParam};
use crate::schema::safety;
use crate::url::with_database;

const DB: &str = "rehearse_bench_select";
/// The scenario this bench runs, as shipped.
const SCENARIO: &str = include_str!("../../scenarios/pgbench_select.toml");

#[derive(Debug, Clone)]
pub struct BenchSelectOptions {
    pub scale: u32,
    pub clients: u32,
    pub threads: u32,
    pub duration: Duration,
    pub rounds: u32,
    pub allow_destructive: Option<String>,
    pub verbose: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SelectRound {
    pub pgbench_tps: f64,
    pub rehearse_tps: f64,
    pub ratio: f64,
    pub pgbench_cpu_us_per_op: f64,
    pub rehearse_cpu_us_per_op: f64,
    pub rehearse_p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchSelectReport {
    pub scale: u32,
    pub clients: u32,
    pub duration_s: f64,
    pub rounds: Vec<SelectRound>,
    pub median_pgbench_tps: f64,
    pub median_rehearse_tps: f64,
    pub median_ratio: f64,
    pub median_pgbench_cpu_us_per_op: f64,
    pub median_rehearse_cpu_us_per_op: f64,
}

/// pgbench's "tps = N (without initial connection time)".
pub fn pgbench_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))?
        .trim_start_matches("tps = ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU seconds used by waited-for children of this process so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// The shipped scenario, fitted to the scale, clients and duration.
fn scenario(opts: &BenchSelectOptions) -> Result<scenario::Scenario> {
    let mut s = scenario::parse(
        std::path::Path::new("scenarios/pgbench_select.toml"),
        SCENARIO,
    )?;
    s.phases[0].load = Load::Closed {
        users: opts.clients,
        think: scenario::Dur(Duration::ZERO),
    };
    s.phases[0].duration = scenario::Dur(opts.duration);
    s.mix[0].params = vec![SqlParam::Int(1, 100_000 * opts.scale as i64)];
    Ok(s)
}

pub async fn run(estate: &Estate, opts: &BenchSelectOptions) -> Result<BenchSelectReport> {
    let admin = db::connect(&estate.primary.url).await?;
    safety::ensure_rehearsal_target(
        &admin,
        estate,
        opts.allow_destructive.as_deref(),
        "bench select",
    )
    .await?;
    let pgbench = Pgbench::for_primary(&estate.primary.url)?;
    let pg = |args: &[&str]| pgbench.command(args, DB);
    recreate_database(&admin, DB).await?;
    if opts.verbose {
        eprintln!("bench select: pgbench -i -s {} into {DB}", opts.scale);
    }
    run_checked(
        &mut pg(&["-i", "-q", "-s", &opts.scale.to_string()]),
        "pgbench -i",
        None,
    )?;
    let scratch = Estate::primary_only(&with_database(&estate.primary.url, DB), Source::Flag);
    let s = scenario(opts)?;
    let secs = opts.duration.as_secs().max(1).to_string();
    let clients = opts.clients.to_string();
    let threads = opts.threads.to_string();
    let out_root =
        std::env::temp_dir().join(format!("rehearse-bench-select-{}", std::process::id()));

    let mut rounds = Vec::new();
    for round in 1..=opts.rounds {
        let pgbench_run = || -> Result<(f64, f64)> {
            let cpu0 = children_cpu();
            let out = run_checked(
                &mut pg(&[
                    "-S", "-M", "prepared", "-n", "-c", &clients, "-j", &threads, "-T", &secs,
                ]),
                "pgbench -S",
                None,
            )?;
            let cpu = children_cpu() - cpu0;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let tps = pgbench_tps(&text)
                .ok_or_else(|| Error::Lab(format!("cannot read pgbench's tps from: {text}")))?;
            Ok((tps, cpu * 1e6 / (tps * opts.duration.as_secs_f64())))
        };
        // Alternate who goes first, so neither always runs on a warmer cache.
        let mut ours = None;
        let mut theirs = None;
        for turn in 0..2 {
            if (turn == 0) == (round % 2 == 1) {
                theirs = Some(pgbench_run()?);
            } else {
                let r = driver::run_one(
                    &scratch,
                    &s,
                    &out_root.join(format!("round-{round}")),
                    false,
                )
                .await?;
                let v = r
                    .variants
                    .first()
                    .ok_or_else(|| Error::Lab("the calibration run measured nothing".into()))?;
                let op = &v.operations[0];
                if op.count == 0 || op.error_rate > 0.0 {
                    return Err(Error::Lab(format!(
                        "the calibration run failed: {} requests, errors {:?}",
                        op.count, op.errors
                    )));
                }
                ours = Some((op.throughput, v.driver_cpu_us_per_op, op.response.p99_ms));
            }
        }
        let ((pt, pcpu), (rt, rcpu, p99)) = (theirs.expect("ran"), ours.expect("ran"));
        let r = SelectRound {
            pgbench_tps: pt,
            rehearse_tps: rt,
            ratio: rt / pt,
            pgbench_cpu_us_per_op: pcpu,
            rehearse_cpu_us_per_op: rcpu,
            rehearse_p99_ms: p99,
        };
        if opts.verbose {
            eprintln!(
                "round {round}: pgbench -S {:>8.0} tps ({:.1} us CPU/op) | rehearse {:>8.0} tps ({:.1} us CPU/op, p99 {:.2} ms) | ratio {:.2}",
                r.pgbench_tps, r.pgbench_cpu_us_per_op, r.rehearse_tps, r.rehearse_cpu_us_per_op, r.rehearse_p99_ms, r.ratio
            );
        }
        rounds.push(r);
    }
    let _ = std::fs::remove_dir_all(&out_root);
    let m = |f: fn(&SelectRound) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    Ok(BenchSelectReport {
        scale: opts.scale,
        clients: opts.clients,
        duration_s: opts.duration.as_secs_f64(),
        median_pgbench_tps: m(|r| r.pgbench_tps),
        median_rehearse_tps: m(|r| r.rehearse_tps),
        median_ratio: m(|r| r.ratio),
        median_pgbench_cpu_us_per_op: m(|r| r.pgbench_cpu_us_per_op),
        median_rehearse_cpu_us_per_op: m(|r| r.rehearse_cpu_us_per_op),
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_output_gives_its_tps() {
        let out = "number of failed transactions: 0 (0.000%)\nlatency average = 0.184 ms\n\
                   initial connection time = 5.123 ms\ntps = 43468.812341 (without initial connection time)\n";
        assert_eq!(pgbench_tps(out), Some(43468.812341));
        assert_eq!(
            pgbench_tps("tps = 1 (including connections establishing)"),
            None
        );
    }

    #[test]
    fn the_shipped_scenario_is_fitted_to_the_bench() {
        let opts = BenchSelectOptions {
            scale: 3,
            clients: 5,
            threads: 1,
            duration: Duration::from_secs(7),
            rounds: 1,
            allow_destructive: None,
            verbose: false,
        };
        let s = scenario(&opts).unwrap();
        assert_eq!(s.mix[0].params, vec![SqlParam::Int(1, 300_000)]);
        assert_eq!(s.duration(), Duration::from_secs(7));
        assert!(matches!(s.phases[0].load, Load::Closed { users: 5, .. }));
    }
}
