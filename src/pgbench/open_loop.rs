//! `rehearse bench open-loop`: the driver's cost per request at fixed
//! arrival rates, side by side with `pgbench -R` on the same statement.
//!
//! Each round runs, per rate, `pgbench -R RATE -M prepared` on
//! `SELECT :x::int8` and rehearse on `scenarios/gate_smoke.toml` (the same
//! statement, the same number in flight), in alternating order. Reported per
//! rate, medians over the rounds: the rate each achieved, the client's CPU
//! and context switches per request (pgbench's from its child rusage,
//! rehearse's from its own over the run, warm-up included), the lag behind
//! the schedule (pgbench's from its per-transaction log), rehearse's own
//! wake-up delay and dropped arrivals. The highest valid rate is the
//! highest at which, in every round, rehearse achieved 95% of the rate with
//! nothing dropped and no error, and its wake-up delay p99 (on at least 100
//! wake-ups: a driver that never finds a worker free has none) stayed
//! under 1 ms.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::driver;
use crate::error::{Error, IoContext, Result};
use crate::estate::Estate;
use crate::lab::process::run_checked;
use crate::pgbench::{median, Pgbench, Usage};
use crate::scenario::{self, Load};

/// The scenario this bench runs, as shipped.
const SCENARIO: &str = include_str!("../../scenarios/gate_smoke.toml");
/// The same statement and parameter range, as a pgbench script.
const SCRIPT: &str = "\\set x random(1, 1000000)\nSELECT :x::int8;\n";
/// The wake-up delay p99 a valid rate stays under.
pub const VALID_LAG_MS: f64 = 1.0;
/// A valid rate's p99 rests on at least this many wake-ups (the run's own
/// rule for judging its driver lag).
pub const MIN_WAKEUPS: u64 = 100;
/// A valid rate was achieved to within this share.
pub const MIN_ACHIEVED: f64 = 0.95;

#[derive(Debug, Clone)]
pub struct BenchOpenLoopOptions {
    pub rates: Vec<f64>,
    /// Requests in flight at most (rehearse's max_in_flight, pgbench's -c).
    pub clients: u32,
    pub threads: u32,
    pub duration: Duration,
    pub rounds: u32,
    /// Fail (exit 1) when rehearse's median CPU per request at any rate is above this.
    pub max_cpu_us: Option<f64>,
    pub verbose: bool,
}

/// One side's figures at one rate in one round.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub achieved: f64,
    pub requests: u64,
    pub cpu_us_per_op: f64,
    pub switches_per_op: f64,
    pub p50_ms: f64,
    /// Behind the schedule: pgbench's schedule lag, rehearse's send lag (both
    /// include waiting for a free connection).
    pub lag_p99_ms: f64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RateRound {
    pub pgbench: Side,
    pub rehearse: Side,
    /// rehearse's own wake-up delay (requests that found a worker free).
    pub wakeup_p99_ms: f64,
    /// How many requests it was measured on.
    pub wakeups: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RateReport {
    pub rate: f64,
    pub rounds: Vec<RateRound>,
    pub median_pgbench_cpu_us: f64,
    pub median_rehearse_cpu_us: f64,
    pub median_pgbench_switches: f64,
    pub median_rehearse_switches: f64,
    pub median_pgbench_achieved: f64,
    pub median_rehearse_achieved: f64,
    pub median_pgbench_lag_p99_ms: f64,
    pub median_rehearse_lag_p99_ms: f64,
    pub median_wakeup_p99_ms: f64,
    pub median_pgbench_p50_ms: f64,
    pub median_rehearse_p50_ms: f64,
    /// Every round: wake-up p99 under 1 ms on at least 100 wake-ups, 95% of
    /// the rate achieved, nothing dropped, no error.
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchOpenLoopReport {
    pub clients: u32,
    pub duration_s: f64,
    pub rounds: u32,
    /// The runtime it ran on, REHEARSE_THREADS and REHEARSE_DISPATCH as set for this process.
    pub runtime: String,
    pub rates: Vec<RateReport>,
    pub highest_valid_rate: Option<f64>,
    pub max_cpu_us: Option<f64>,
    /// Rates whose median CPU per request was above `max_cpu_us`.
    pub over_max_cpu: Vec<f64>,
}

impl BenchOpenLoopReport {
    /// 1 when a rate is over --max-cpu-us, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.over_max_cpu.is_empty() {
            crate::exit::OK
        } else {
            crate::exit::FAIL
        }
    }
}

/// The shipped scenario at one rate, with `clients` in flight.
fn scenario(rate: f64, opts: &BenchOpenLoopOptions) -> Result<scenario::Scenario> {
    let mut s = scenario::parse(Path::new("scenarios/gate_smoke.toml"), SCENARIO)?;
    let phase = &mut s.phases[0];
    let Load::Open {
        rate: r,
        ramp_to,
        max_in_flight,
        ..
    } = &mut phase.load
    else {
        return Err(Error::Usage(
            "scenarios/gate_smoke.toml is no longer open loop".into(),
        ));
    };
    *r = rate;
    *ramp_to = rate;
    *max_in_flight = opts.clients;
    phase.duration = scenario::Dur(opts.duration);
    s.warmup = scenario::Dur(Duration::from_secs(1).min(opts.duration / 5));
    Ok(s)
}

/// p-quantile (0..1) of sorted values, nearest rank.
fn quantile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Latencies and schedule lags (µs) from pgbench's per-transaction logs
/// (`client txn time script epoch us lag` with -R), every file of the prefix.
pub fn read_pgbench_logs(dir: &Path, prefix: &str) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut latency = Vec::new();
    let mut lag = Vec::new();
    for entry in std::fs::read_dir(dir).io("reading", dir)? {
        let path = entry.io("reading", dir)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(prefix) {
            continue;
        }
        let text = std::fs::read_to_string(&path).io("reading", &path)?;
        for (i, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let field = |k: usize| f.get(k).and_then(|v| v.parse::<u64>().ok());
            match (field(2), field(6)) {
                (Some(t), Some(l)) => {
                    latency.push(t);
                    lag.push(l);
                }
                _ => {
                    return Err(Error::Lab(format!(
                        "{}:{}: not a pgbench -R log line: {line}",
                        path.display(),
                        i + 1
                    )))
                }
            }
        }
    }
    latency.sort_unstable();
    lag.sort_unstable();
    Ok((latency, lag))
}

pub async fn run(estate: &Estate, opts: &BenchOpenLoopOptions) -> Result<BenchOpenLoopReport> {
    if opts.rates.is_empty() || opts.rates.iter().any(|r| !(*r > 0.0)) {
        return Err(Error::Usage("--rates takes rates above zero".into()));
    }
    let pgbench = Pgbench::for_primary(&estate.primary.url)?;
    let work = std::env::temp_dir().join(format!("rehearse-bench-open-{}", std::process::id()));
    std::fs::create_dir_all(&work).io("creating", &work)?;
    let script = work.join("probe.sql");
    std::fs::write(&script, SCRIPT).io("writing", &script)?;
    let secs = opts.duration.as_secs().max(1).to_string();
    let clients = opts.clients.to_string();
    let threads = opts.threads.to_string();

    let mut per_rate: Vec<Vec<RateRound>> = opts.rates.iter().map(|_| Vec::new()).collect();
    for round in 1..=opts.rounds {
        for (ri, &rate) in opts.rates.iter().enumerate() {
            let pgbench_run = |tag: &str| -> Result<Side> {
                let prefix = format!("pgb-{tag}");
                let before = Usage::children();
                let out = run_checked(
                    &mut pgbench.command(
                        &[
                            "-n",
                            "-M",
                            "prepared",
                            "-f",
                            &script.to_string_lossy(),
                            "-R",
                            &format!("{rate}"),
                            "-c",
                            &clients,
                            "-j",
                            &threads,
                            "-T",
                            &secs,
                            "-l",
                            "--log-prefix",
                            &work.join(&prefix).to_string_lossy(),
                        ],
                        pgbench.database(),
                    ),
                    "pgbench -R",
                    None,
                )?;
                let used = Usage::children().since(before);
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                let tps = super::select::pgbench_tps(&text)
                    .ok_or_else(|| Error::Lab(format!("cannot read pgbench's tps from: {text}")))?;
                let (latency, lag) = read_pgbench_logs(&work, &prefix)?;
                let n = latency.len() as u64;
                if n == 0 {
                    return Err(Error::Lab(format!(
                        "pgbench -R {rate} logged no transaction"
                    )));
                }
                Ok(Side {
                    achieved: tps,
                    requests: n,
                    cpu_us_per_op: used.cpu_s * 1e6 / n as f64,
                    switches_per_op: used.switches as f64 / n as f64,
                    p50_ms: quantile(&latency, 0.5) as f64 / 1e3,
                    lag_p99_ms: quantile(&lag, 0.99) as f64 / 1e3,
                    errors: 0,
                })
            };
            let mut theirs = None;
            let mut ours = None;
            for turn in 0..2 {
                if (turn == 0) == ((round as usize + ri) % 2 == 1) {
                    theirs = Some(pgbench_run(&format!("{round}-{ri}"))?);
                } else {
                    ours = Some(
                        rehearse_run(estate, rate, opts, &work.join(format!("run-{round}-{ri}")))
                            .await?,
                    );
                }
            }
            let (p, (r, wakeup, wakeups, dropped)) = (theirs.expect("ran"), ours.expect("ran"));
            if opts.verbose {
                eprintln!(
                    "round {round} at {rate}/s: pgbench {:.0}/s {:.1} us CPU/op {:.2} switches/op lag p99 {:.2} ms | rehearse {:.0}/s {:.1} us CPU/op {:.2} switches/op lag p99 {:.2} ms, wake-up p99 {:.2} ms, dropped {dropped}",
                    p.achieved, p.cpu_us_per_op, p.switches_per_op, p.lag_p99_ms,
                    r.achieved, r.cpu_us_per_op, r.switches_per_op, r.lag_p99_ms, wakeup
                );
            }
            per_rate[ri].push(RateRound {
                pgbench: p,
                rehearse: r,
                wakeup_p99_ms: wakeup,
                wakeups,
                dropped,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let rates: Vec<RateReport> = opts
        .rates
        .iter()
        .zip(per_rate)
        .map(|(&rate, rounds)| summarize(rate, rounds))
        .collect();
    let highest_valid_rate = rates
        .iter()
        .filter(|r| r.valid)
        .map(|r| r.rate)
        .max_by(|a, b| a.total_cmp(b));
    let over_max_cpu = match opts.max_cpu_us {
        Some(max) => rates
            .iter()
            .filter(|r| r.median_rehearse_cpu_us > max)
            .map(|r| r.rate)
            .collect(),
        None => Vec::new(),
    };
    Ok(BenchOpenLoopReport {
        clients: opts.clients,
        duration_s: opts.duration.as_secs_f64(),
        rounds: opts.rounds,
        runtime: format!(
            "runtime {} (REHEARSE_THREADS={}), REHEARSE_DISPATCH={}",
            match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::CurrentThread => "current-thread",
                _ => "multi-thread",
            },
            std::env::var("REHEARSE_THREADS").unwrap_or_else(|_| "unset".into()),
            match driver::timer::Dispatch::from_env() {
                driver::timer::Dispatch::Timer => "timer",
                driver::timer::Dispatch::Thread => "thread",
            }
        ),
        rates,
        highest_valid_rate,
        max_cpu_us: opts.max_cpu_us,
        over_max_cpu,
    })
}

/// rehearse at one rate: its side, its wake-up p99 and count, and its dropped arrivals.
async fn rehearse_run(
    estate: &Estate,
    rate: f64,
    opts: &BenchOpenLoopOptions,
    dir: &Path,
) -> Result<(Side, f64, u64, u64)> {
    let s = scenario(rate, opts)?;
    let before = Usage::own();
    let r = driver::run_one(estate, &s, dir, false).await?;
    let used = Usage::own().since(before);
    let v = r
        .variants
        .first()
        .ok_or_else(|| Error::Lab("the open-loop run measured nothing".into()))?;
    let op = v
        .operations
        .first()
        .ok_or_else(|| Error::Lab("the open-loop run measured no operation".into()))?;
    let sent = v.requests_sent().max(1);
    let errors: u64 = op.errors.values().sum();
    let phase = v.phases.first();
    Ok((
        Side {
            achieved: phase.map_or(0.0, |p| p.achieved_rate),
            requests: sent,
            cpu_us_per_op: v.driver_cpu_us_per_op,
            // The whole run's switches (connecting, the warm-up, writing
            // run.json) over every request sent; CPU is the variant's own.
            switches_per_op: used.switches as f64 / sent as f64,
            p50_ms: op.response.p50_ms,
            lag_p99_ms: op.lag.p99_ms,
            errors,
        },
        v.driver_lag.p99_ms,
        v.driver_lag.count,
        phase.map_or(0, |p| p.dropped),
    ))
}

fn summarize(rate: f64, rounds: Vec<RateRound>) -> RateReport {
    let m = |f: &dyn Fn(&RateRound) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    RateReport {
        rate,
        median_pgbench_cpu_us: m(&|r| r.pgbench.cpu_us_per_op),
        median_rehearse_cpu_us: m(&|r| r.rehearse.cpu_us_per_op),
        median_pgbench_switches: m(&|r| r.pgbench.switches_per_op),
        median_rehearse_switches: m(&|r| r.rehearse.switches_per_op),
        median_pgbench_achieved: m(&|r| r.pgbench.achieved),
        median_rehearse_achieved: m(&|r| r.rehearse.achieved),
        median_pgbench_lag_p99_ms: m(&|r| r.pgbench.lag_p99_ms),
        median_rehearse_lag_p99_ms: m(&|r| r.rehearse.lag_p99_ms),
        median_wakeup_p99_ms: m(&|r| r.wakeup_p99_ms),
        median_pgbench_p50_ms: m(&|r| r.pgbench.p50_ms),
        median_rehearse_p50_ms: m(&|r| r.rehearse.p50_ms),
        valid: rounds.iter().all(|r| {
            r.wakeup_p99_ms < VALID_LAG_MS
                && r.wakeups >= MIN_WAKEUPS
                && r.rehearse.achieved >= MIN_ACHIEVED * rate
                && r.dropped == 0
                && r.rehearse.errors == 0
        }),
        rounds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_rate_logs_give_latency_and_lag() {
        let dir = std::env::temp_dir().join(format!("rehearse-pgb-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("pgb-1.123"),
            "0 0 250 0 1733480000 100 40\n1 0 90 0 1733480000 200 10\n",
        )
        .unwrap();
        std::fs::write(dir.join("pgb-1.123.1"), "2 0 60 0 1733480000 300 5\n").unwrap();
        std::fs::write(dir.join("other"), "not read\n").unwrap();
        let (lat, lag) = read_pgbench_logs(&dir, "pgb-1").unwrap();
        assert_eq!(lat, vec![60, 90, 250]);
        assert_eq!(lag, vec![5, 10, 40]);
        assert_eq!(quantile(&lat, 0.5), 90);
        assert_eq!(quantile(&lag, 0.99), 40);
        // A log without the lag column (no -R) is named, with its line.
        std::fs::write(dir.join("pgb-2.9"), "0 0 250 0 1733480000 100\n").unwrap();
        let err = read_pgbench_logs(&dir, "pgb-2").unwrap_err().to_string();
        assert!(err.contains("pgb-2.9:1"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_shipped_scenario_is_fitted_to_each_rate() {
        let opts = BenchOpenLoopOptions {
            rates: vec![2000.0],
            clients: 12,
            threads: 2,
            duration: Duration::from_secs(10),
            rounds: 1,
            max_cpu_us: None,
            verbose: false,
        };
        let s = scenario(2000.0, &opts).unwrap();
        let Load::Open {
            rate,
            ramp_to,
            max_in_flight,
            ..
        } = s.phases[0].load
        else {
            panic!("open")
        };
        assert_eq!((rate, ramp_to, max_in_flight), (2000.0, 2000.0, 12));
        assert_eq!(s.duration(), Duration::from_secs(10));
        assert_eq!(s.warmup.0, Duration::from_secs(1));
    }

    #[test]
    fn a_rate_is_valid_only_when_every_round_kept_up() {
        let side = |errors| Side {
            achieved: 1000.0,
            requests: 1,
            cpu_us_per_op: 1.0,
            switches_per_op: 1.0,
            p50_ms: 0.1,
            lag_p99_ms: 0.1,
            errors,
        };
        let round = |wakeup, dropped, errors| RateRound {
            pgbench: side(0),
            rehearse: side(errors),
            wakeup_p99_ms: wakeup,
            wakeups: 500,
            dropped,
        };
        assert!(summarize(1000.0, vec![round(0.5, 0, 0), round(0.9, 0, 0)]).valid);
        assert!(!summarize(1000.0, vec![round(0.5, 0, 0), round(1.0, 0, 0)]).valid);
        assert!(!summarize(1000.0, vec![round(0.5, 1, 0)]).valid);
        assert!(!summarize(1000.0, vec![round(0.5, 0, 2)]).valid);
        // Behind the rate: 1,000/s achieved of 1,100/s asked is under 95%.
        assert!(summarize(1050.0, vec![round(0.5, 0, 0)]).valid);
        assert!(!summarize(1100.0, vec![round(0.5, 0, 0)]).valid);
        // Never a worker free: no wake-up measured, nothing to call valid.
        let mut starved = round(0.0, 0, 0);
        starved.wakeups = 0;
        assert!(!summarize(1000.0, vec![starved]).valid);
    }
}
