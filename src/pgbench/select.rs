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
    /// Context switches (voluntary and not) per request, of every thread.
    pub pgbench_switches_per_op: f64,
    pub rehearse_switches_per_op: f64,
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
    pub median_pgbench_switches_per_op: f64,
    pub median_rehearse_switches_per_op: f64,
}

impl BenchSelectReport {
    /// What fell short of `min_ratio`: throughput below it, or CPU per
    /// request above its inverse, against pgbench's.
    pub fn shortfalls(&self, min_ratio: Option<f64>) -> Vec<String> {
        let Some(x) = min_ratio else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.median_ratio < x {
            out.push(format!(
                "throughput {:.2}x of pgbench's, below the floor {x}x",
                self.median_ratio
            ));
        }
        let cpu = self.cpu_ratio();
        if cpu > 1.0 / x {
            out.push(format!(
                "client CPU per request {cpu:.2}x pgbench's, above 1/{x} = {:.2}x",
                1.0 / x
            ));
        }
        out
    }

    /// rehearse's median client CPU per request over pgbench's.
    pub fn cpu_ratio(&self) -> f64 {
        self.median_rehearse_cpu_us_per_op / self.median_pgbench_cpu_us_per_op
    }

    /// 1 when `min_ratio` was given and not met, else 0.
    pub fn exit_code(&self, min_ratio: Option<f64>) -> i32 {
        if self.shortfalls(min_ratio).is_empty() {
            crate::exit::OK
        } else {
            crate::exit::FAIL
        }
    }
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
        let pgbench_run = || -> Result<(f64, f64, f64)> {
            let before = super::Usage::children();
            let out = run_checked(
                &mut pg(&[
                    "-S", "-M", "prepared", "-n", "-c", &clients, "-j", &threads, "-T", &secs,
                ]),
                "pgbench -S",
                None,
            )?;
            let used = super::Usage::children().since(before);
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let tps = pgbench_tps(&text)
                .ok_or_else(|| Error::Lab(format!("cannot read pgbench's tps from: {text}")))?;
            let n = tps * opts.duration.as_secs_f64();
            Ok((tps, used.cpu_s * 1e6 / n, used.switches as f64 / n))
        };
        // Alternate who goes first, so neither always runs on a warmer cache.
        let mut ours = None;
        let mut theirs = None;
        for turn in 0..2 {
            if (turn == 0) == (round % 2 == 1) {
                theirs = Some(pgbench_run()?);
            } else {
                let before = super::Usage::own();
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
                let switches = super::Usage::own().since(before).switches as f64
                    / v.requests_sent().max(1) as f64;
                ours = Some((
                    op.throughput,
                    v.driver_cpu_us_per_op,
                    switches,
                    op.response.p99_ms,
                ));
            }
        }
        let ((pt, pcpu, psw), (rt, rcpu, rsw, p99)) = (theirs.expect("ran"), ours.expect("ran"));
        let r = SelectRound {
            pgbench_tps: pt,
            rehearse_tps: rt,
            ratio: rt / pt,
            pgbench_cpu_us_per_op: pcpu,
            rehearse_cpu_us_per_op: rcpu,
            pgbench_switches_per_op: psw,
            rehearse_switches_per_op: rsw,
            rehearse_p99_ms: p99,
        };
        if opts.verbose {
            eprintln!(
                "round {round}: pgbench -S {:>8.0} tps ({:.1} us CPU/op, {:.2} switches/op) | rehearse {:>8.0} tps ({:.1} us CPU/op, {:.2} switches/op, p99 {:.2} ms) | ratio {:.2}",
                r.pgbench_tps, r.pgbench_cpu_us_per_op, r.pgbench_switches_per_op, r.rehearse_tps, r.rehearse_cpu_us_per_op, r.rehearse_switches_per_op, r.rehearse_p99_ms, r.ratio
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
        median_pgbench_switches_per_op: m(|r| r.pgbench_switches_per_op),
        median_rehearse_switches_per_op: m(|r| r.rehearse_switches_per_op),
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
    fn min_ratio_fails_on_throughput_or_on_cpu() {
        let report = |tps_ratio: f64, cpu_ratio: f64| BenchSelectReport {
            scale: 1,
            clients: 8,
            duration_s: 5.0,
            rounds: Vec::new(),
            median_pgbench_tps: 1000.0,
            median_rehearse_tps: 1000.0 * tps_ratio,
            median_ratio: tps_ratio,
            median_pgbench_cpu_us_per_op: 10.0,
            median_rehearse_cpu_us_per_op: 10.0 * cpu_ratio,
            median_pgbench_switches_per_op: 0.4,
            median_rehearse_switches_per_op: 0.5,
        };
        // No floor asked: never a failure.
        assert_eq!(report(0.1, 9.0).exit_code(None), 0);
        assert_eq!(report(0.7, 1.8).exit_code(Some(0.4)), 0);
        // At the floor exactly: met (2.5x CPU is 1/0.4).
        assert_eq!(report(0.4, 2.5).exit_code(Some(0.4)), 0);
        let slow = report(0.39, 1.8);
        assert_eq!(slow.exit_code(Some(0.4)), 1);
        assert!(slow.shortfalls(Some(0.4))[0].contains("throughput 0.39x"));
        let costly = report(0.7, 2.6);
        assert_eq!(costly.exit_code(Some(0.4)), 1);
        assert!(costly.shortfalls(Some(0.4))[0].contains("CPU per request 2.60x"));
        assert_eq!(report(0.3, 3.0).shortfalls(Some(0.4)).len(), 2);
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
