//! `rehearse ab`: two builds or two configurations, interleaved in time.
//!
//! Two runs made at different times differ by whatever drifted between
//! them (cache warmth, checkpoints, autovacuum, a neighbour on the host).
//! Here A and B run alternately in short slices, ABBA BAAB ..., on the same
//! estate with the same scenario (so the same seed and schedule), and each
//! round's two slices, neighbours in time, are paired: drift common to both
//! cancels in their ratio. The verdict comes from the rounds' paired log
//! ratios (Student's t, rounds − 1 degrees of freedom) through the same
//! decision as `compare` ([`crate::compare::decide`]).
//!
//! A side is a `rehearse` binary (a build; the estate is the one this
//! command was given) or a settings file with an `[estate]` table (a
//! configuration, run by this binary; the file alone says where the estate
//! is). Each slice is a `rehearse run` of its own, written under
//! `DIR/slices/`, and `DIR/ab.json` holds the order, the slices and the
//! verdicts, which `rehearse report DIR` draws.

pub mod paired;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::compare::{CompareSettings, Comparison};
use crate::error::{Error, IoContext, Result};
use crate::estate::{self, EstateFlags};
use crate::exit;

/// Version of the `ab.json` layout.
pub const AB_VERSION: u32 = 1;

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "path")]
pub enum Side {
    /// A `rehearse` executable: another build, on this command's estate.
    Binary(PathBuf),
    /// A settings file with an `[estate]` table, run by this binary.
    Settings(PathBuf),
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Binary(b) => write!(f, "binary {}", b.display()),
            Side::Settings(s) => write!(f, "settings {}", s.display()),
        }
    }
}

impl Side {
    /// A path names a settings file when it ends in `.toml`, else a binary.
    pub fn parse(flag: &str, path: &Path) -> Result<Side> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::Usage(format!("{flag} {}: {e}", path.display())))?;
        if path.extension().is_some_and(|e| e == "toml") {
            return Ok(Side::Settings(path.to_path_buf()));
        }
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(Error::Usage(format!(
                "{flag} {}: neither a rehearse binary (an executable file) nor a settings file (*.toml)",
                path.display()
            )));
        }
        Ok(Side::Binary(path.to_path_buf()))
    }
}

/// What `rehearse ab` was asked.
#[derive(Debug, Clone)]
pub struct AbOptions {
    pub scenario: PathBuf,
    pub a: Side,
    pub b: Side,
    /// Rounds of one A and one B slice each, at least 2.
    pub rounds: u32,
    /// Each slice's measured length (the scenario's phases scaled to it).
    pub slice: Duration,
    pub warmup: Option<Duration>,
    pub rate: Option<f64>,
    pub variants: Vec<String>,
    /// The estate of a binary side (flags as given to this command).
    pub estate: EstateFlags,
    pub out: PathBuf,
    pub settings: CompareSettings,
    /// Accept percentiles the rounds could not decide (still listed).
    pub allow_inconclusive: bool,
    pub verbose: bool,
    /// Set to stop after the slice in progress, as Ctrl-C does.
    pub stop: Option<Arc<AtomicBool>>,
}

/// One slice: which side, which round, where its run is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slice {
    pub round: u32,
    /// "a" or "b".
    pub side: String,
    /// The slice's run directory, relative to the ab directory.
    pub dir: PathBuf,
    /// Seconds from the first slice's start.
    pub started_s: f64,
    pub exit_code: i32,
}

/// `ab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbReport {
    pub ab_version: u32,
    pub scenario: String,
    pub a: Side,
    pub b: Side,
    pub rounds: u32,
    pub slice_s: f64,
    /// How the verdicts were reached.
    pub settings: CompareSettings,
    pub slices: Vec<Slice>,
    pub comparisons: Vec<(String, Comparison)>,
    /// Per variant/operation, per round: B over A for p50, p95, p99 and throughput.
    pub round_ratios: Vec<(String, Vec<paired::RoundRatio>)>,
    /// Why the verdicts must not be trusted, if they must not.
    pub invalid: Vec<String>,
    /// What only one side measured: each a failed check.
    #[serde(default)]
    pub one_sided: Vec<String>,
    pub interrupted: bool,
    /// pass, fail, could not tell, invalid or interrupted.
    pub verdict: String,
    pub exit_code: i32,
}

/// The order of the slices: ABBA, then BAAB, and so on, so that neither
/// side always goes first.
pub fn order(rounds: u32) -> Vec<(u32, &'static str)> {
    (0..rounds)
        .flat_map(|r| {
            let first_a = (r / 2) % 2 == 0;
            let pair = if (r % 2 == 0) == first_a {
                ["a", "b"]
            } else {
                ["b", "a"]
            };
            pair.map(|s| (r + 1, s))
        })
        .collect()
}

/// The `rehearse run` of one slice.
fn slice_command(o: &AbOptions, side: &Side, dir: &Path) -> Result<Command> {
    let mut cmd = match side {
        Side::Binary(bin) => {
            let mut c = Command::new(bin);
            // The estate goes through the environment, not the command line,
            // where any local user could read a password in it.
            for (var, value) in [
                (estate::ENV_PRIMARY, &o.estate.primary_url),
                (estate::ENV_REPLICA, &o.estate.replica_url),
                (estate::ENV_PGBOUNCER, &o.estate.pgbouncer_url),
                (
                    estate::ENV_PGBOUNCER_REPLICA,
                    &o.estate.pgbouncer_replica_url,
                ),
                (estate::ENV_REDIS, &o.estate.redis_url),
            ] {
                if let Some(v) = value {
                    c.env(var, v);
                }
            }
            if let Some(cfg) = &o.estate.config {
                c.arg("--config").arg(cfg);
            }
            c
        }
        Side::Settings(file) => {
            let me = std::env::current_exe().io("finding this rehearse binary", Path::new("."))?;
            let mut c = Command::new(me);
            // The file alone says where the estate is: no URL from the
            // environment may override it.
            for var in [
                estate::ENV_PRIMARY,
                estate::ENV_REPLICA,
                estate::ENV_PGBOUNCER,
                estate::ENV_PGBOUNCER_REPLICA,
                estate::ENV_REDIS,
            ] {
                c.env_remove(var);
            }
            c.arg("--config").arg(file);
            c
        }
    };
    if let Some(l) = &o.estate.lab_dir {
        cmd.arg("--lab-dir").arg(l);
    }
    cmd.arg("run")
        .arg(&o.scenario)
        .arg("--duration")
        .arg(format!("{}ms", o.slice.as_millis()))
        .arg("--out")
        .arg(dir)
        .arg("-q");
    if let Some(w) = o.warmup {
        cmd.arg("--warmup").arg(format!("{}ms", w.as_millis()));
    }
    if let Some(r) = o.rate {
        cmd.arg("--rate").arg(r.to_string());
    }
    for v in &o.variants {
        cmd.arg("--variant").arg(v);
    }
    Ok(cmd)
}

/// Run the slices in order, then pair and judge them.
pub fn ab(o: &AbOptions) -> Result<AbReport> {
    if o.rounds < 2 {
        return Err(Error::Usage(
            "--rounds must be at least 2: the paired interval needs two rounds (4 or more recommended)".into(),
        ));
    }
    if o.slice.is_zero() {
        return Err(Error::Usage("--slice must be more than zero".into()));
    }
    crate::scenario::load(&o.scenario)?;
    std::fs::create_dir_all(o.out.join("slices")).io("creating", &o.out)?;
    let stop = o.stop.clone().unwrap_or_default();
    let started = Instant::now();
    let mut slices = Vec::new();
    let mut interrupted = false;
    let plan = order(o.rounds);
    for (i, (round, side_name)) in plan.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let side = if *side_name == "a" { &o.a } else { &o.b };
        let rel = PathBuf::from("slices").join(format!("{round:02}-{side_name}"));
        let dir = o.out.join(&rel);
        let _ = std::fs::remove_dir_all(&dir);
        if o.verbose {
            eprintln!(
                "ab: slice {}/{} (round {round}, {side_name}): {side}",
                i + 1,
                plan.len(),
            );
        }
        let started_s = started.elapsed().as_secs_f64();
        let out = slice_command(o, side, &dir)?
            .stdin(std::process::Stdio::null())
            .output()
            .io("running a slice", &dir)?;
        let code = out.status.code().unwrap_or(exit::INTERRUPTED);
        slices.push(Slice {
            round: *round,
            side: side_name.to_string(),
            dir: rel,
            started_s,
            exit_code: code,
        });
        match code {
            exit::OK | exit::FAIL | exit::INVALID => {}
            exit::INTERRUPTED => {
                interrupted = true;
                break;
            }
            other => {
                return Err(Error::Lab(format!(
                    "slice {} (round {round}, {side_name}) exited {other}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )))
            }
        }
    }
    // A slice exits 3 when invalid, and also when its scenario has no
    // budgets (measured, not judged): ab judges the measurements, so only
    // the first makes a slice unusable. Its run.json says which.
    let not_judged = |s: &Slice| {
        crate::run::read(&o.out.join(&s.dir))
            .is_ok_and(|r| r.verdict == crate::run::Verdict::NotJudged)
    };
    let mut invalid: Vec<String> = slices
        .iter()
        .filter(|s| s.exit_code == exit::INVALID && !not_judged(s))
        .map(|s| {
            format!(
                "round {} {}: the run is invalid (see {})",
                s.round,
                s.side,
                s.dir.join("run.json").display()
            )
        })
        .collect();
    let complete_rounds = paired::complete_rounds(&slices);
    if complete_rounds < 2 {
        invalid.push(format!(
            "{complete_rounds} complete round(s): at least 2 are needed to pair"
        ));
    }
    let (comparisons, round_ratios, one_sided) = if complete_rounds >= 2 {
        paired::judge(&o.out, &slices, &o.settings)?
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    if complete_rounds >= 2 && comparisons.is_empty() {
        invalid.push("the slices share no variant and operation".into());
    }
    // An operation only one side measured is a failed check, as in the gate.
    let regressed = !one_sided.is_empty()
        || comparisons.iter().any(|(_, c)| {
            c.rows
                .iter()
                .any(|r| r.change == crate::compare::Finding::Regression)
        });
    let undecided = comparisons
        .iter()
        .any(|(_, c)| c.rows.iter().any(|r| r.undecided()));
    let (verdict, exit_code) = if interrupted {
        ("interrupted", exit::INTERRUPTED)
    } else if !invalid.is_empty() {
        ("invalid", exit::INVALID)
    } else if regressed {
        ("fail", exit::FAIL)
    } else if undecided && !o.allow_inconclusive {
        ("could not tell", exit::INVALID)
    } else {
        ("pass", exit::OK)
    };
    let report = AbReport {
        ab_version: AB_VERSION,
        scenario: o.scenario.display().to_string(),
        a: o.a.clone(),
        b: o.b.clone(),
        rounds: o.rounds,
        slice_s: o.slice.as_secs_f64(),
        settings: o.settings.clone(),
        slices,
        comparisons,
        round_ratios,
        invalid,
        one_sided,
        interrupted,
        verdict: verdict.into(),
        exit_code,
    };
    crate::fsutil::write_atomic(
        &o.out.join("ab.json"),
        &serde_json::to_vec_pretty(&report).expect("the ab report serializes"),
    )?;
    Ok(report)
}

/// Read `dir/ab.json`, refusing what this rehearse cannot read.
pub fn read(dir: &Path) -> Result<AbReport> {
    let path = dir.join("ab.json");
    let text = std::fs::read(&path).io("reading the ab report", &path)?;
    crate::fsutil::parse_json(&path, &text, "ab_version", AB_VERSION, "ab report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_alternates_so_neither_side_always_leads() {
        let o: String = order(4).iter().map(|(_, s)| *s).collect();
        assert_eq!(o, "abbabaab");
        let rounds: Vec<u32> = order(2).iter().map(|(r, _)| *r).collect();
        assert_eq!(rounds, [1, 1, 2, 2]);
        // Over 4 rounds each side goes first twice.
        let firsts = order(4).chunks(2).filter(|p| p[0].1 == "a").count();
        assert_eq!(firsts, 2);
    }
}
