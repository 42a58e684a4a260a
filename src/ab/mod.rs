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
pub mod sequential;

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
use sequential::{Design, FIRST_LOOK};

/// Version of the `ab.json` layout.
pub const AB_VERSION: u32 = 1;

/// The sequential design's last round when neither `--max-rounds` nor
/// `--budget` bounds it.
pub const DEFAULT_MAX_ROUNDS: u32 = 20;
/// The last round a budget may plan when `--max-rounds` does not bound it:
/// the simulated level of 200 looks takes a few seconds to find.
pub const BUDGET_MAX_ROUNDS: u32 = 200;

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
    /// Exactly this many rounds and one look at the end (the fixed design);
    /// None for the sequential one.
    pub rounds: Option<u32>,
    /// The sequential design's last round.
    pub max_rounds: u32,
    /// The sequential design's wall-clock bound: no round is started that
    /// the rounds so far say would end past it.
    pub budget: Option<Duration>,
    /// The smallest change that matters, for every figure (a fraction);
    /// each figure's floor when None.
    pub min_effect: Option<f64>,
    /// The figures judged: p50, p95, p99, p99.9, throughput.
    pub metrics: Vec<String>,
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
    /// Run each round's A and B at the same time, each at half the rate.
    pub duet: bool,
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
    /// The looks planned and their level (absent in reports of rehearse
    /// before the sequential design).
    #[serde(default)]
    pub design: Option<Design>,
    /// The wall-clock bound asked, in seconds.
    #[serde(default)]
    pub budget_s: Option<f64>,
    /// The smallest change that matters, as a fraction, when asked.
    #[serde(default)]
    pub min_effect: Option<f64>,
    /// Each look: its round, and how many figures it left undecided.
    #[serde(default)]
    pub looks: Vec<Look>,
    /// Why the rounds stopped.
    #[serde(default)]
    pub stopped: String,
    /// SAME, DIFFERENT (B regressed or improved), UNKNOWN, INVALID or
    /// INTERRUPTED.
    #[serde(default)]
    pub decision: String,
    /// Per variant/operation at p50: the change the design expected to
    /// detect from the first look's spread, and the one it could show at
    /// the end.
    #[serde(default)]
    pub detectable: Vec<Detectable>,
    /// Each round's A and B ran at the same time, at half the rate each.
    #[serde(default)]
    pub duet: bool,
}

/// One look of the sequential design.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Look {
    pub round: u32,
    /// Seconds from the first slice's start to the look.
    pub at_s: f64,
    pub figures: usize,
    pub undecided: usize,
    pub regressions: usize,
}

/// What an operation's p50 could show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detectable {
    pub key: String,
    /// The spread of its per-round log ratio at the first look.
    pub sd: f64,
    /// The change (ratio − 1) the last planned look finds nine times in
    /// ten at that spread.
    pub expected: f64,
    /// The half-width of the final interval, as a ratio − 1: a change
    /// larger than this would have been shown.
    pub reached: Option<f64>,
}

impl Detectable {
    /// One line: the spread at the first look and what it promised, marked
    /// as the rough guess it is (a spread from a few rounds is itself
    /// uncertain by a factor of about two), then what the end reached.
    pub fn describe(&self, design: Option<&Design>) -> String {
        let first = design.map_or(FIRST_LOOK, |d| d.first_look);
        format!(
            "{} p50: varied {:.1}% per round over the first {first} rounds, so about {:.1}% looked detectable by the last round (a rough guess from {first} rounds); {}",
            crate::compare::key_name(&self.key),
            self.sd * 100.0,
            self.expected * 100.0,
            self.reached.map_or("no interval at the end".into(), |h| format!(
                "the final interval is +/-{:.1}% wide",
                h * 100.0
            ))
        )
    }
}

/// The order of round `round`'s (from 1) two slices: ABBA, then BAAB,
/// and so on, so that neither side always goes first.
pub fn round_order(round: u32) -> [&'static str; 2] {
    let r = round - 1;
    let first_a = (r / 2) % 2 == 0;
    if (r % 2 == 0) == first_a {
        ["a", "b"]
    } else {
        ["b", "a"]
    }
}

/// The order of the slices of `rounds` rounds.
pub fn order(rounds: u32) -> Vec<(u32, &'static str)> {
    (1..=rounds)
        .flat_map(|r| round_order(r).map(|s| (r, s)))
        .collect()
}

/// The `rehearse run` of one slice, at `rate` when given.
fn slice_command(o: &AbOptions, side: &Side, dir: &Path, rate: Option<f64>) -> Result<Command> {
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
    if let Some(r) = rate {
        cmd.arg("--rate").arg(r.to_string());
    }
    for v in &o.variants {
        cmd.arg("--variant").arg(v);
    }
    Ok(cmd)
}

/// Run slices of one round at the same time (one slice, or a duet's two)
/// and record them; Ok(false) when one was interrupted.
fn run_slices(
    o: &AbOptions,
    round: u32,
    sides: &[&'static str],
    rate: Option<f64>,
    started: Instant,
    slices: &mut Vec<Slice>,
) -> Result<bool> {
    let mut running = Vec::new();
    let started_s = started.elapsed().as_secs_f64();
    for side_name in sides {
        let side = if *side_name == "a" { &o.a } else { &o.b };
        let rel = PathBuf::from("slices").join(format!("{round:02}-{side_name}"));
        let dir = o.out.join(&rel);
        let _ = std::fs::remove_dir_all(&dir);
        if o.verbose {
            eprintln!("ab: round {round}, slice {side_name}: {side}");
        }
        let child = slice_command(o, side, &dir, rate)?
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .io("running a slice", &dir)?;
        running.push((side_name, rel, dir, child));
    }
    let mut all_ran = true;
    let mut failed = None;
    for (side_name, rel, dir, child) in running {
        let out = child.wait_with_output().io("running a slice", &dir)?;
        let code = out.status.code().unwrap_or(exit::INTERRUPTED);
        slices.push(Slice {
            round,
            side: side_name.to_string(),
            dir: rel,
            started_s,
            exit_code: code,
        });
        match code {
            exit::OK | exit::FAIL | exit::INVALID => {}
            exit::INTERRUPTED => all_ran = false,
            other => {
                failed.get_or_insert(Error::Lab(format!(
                    "slice {} (round {round}, {side_name}) exited {other}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(all_ran),
    }
}

/// The scenario's highest open rate, scaled by `--rate` when given.
fn peak_rate(o: &AbOptions) -> Result<Option<f64>> {
    if o.rate.is_some() {
        return Ok(o.rate);
    }
    let sc = crate::scenario::load(&o.scenario)?;
    let peak = sc
        .phases
        .iter()
        .filter_map(|p| match p.load {
            crate::scenario::Load::Open { rate, ramp_to, .. } => Some(rate.max(ramp_to)),
            crate::scenario::Load::Closed { .. } => None,
        })
        .fold(0.0f64, f64::max);
    Ok((peak > 0.0).then_some(peak))
}

/// Every figure the comparisons judged, and those they left undecided and
/// found regressed.
fn tally(comparisons: &[(String, Comparison)]) -> (usize, usize, usize) {
    let rows = comparisons.iter().flat_map(|(_, c)| &c.rows);
    let (mut all, mut undecided, mut regressed) = (0, 0, 0);
    for r in rows {
        all += 1;
        undecided += r.undecided() as usize;
        regressed += (r.change == crate::compare::Finding::Regression) as usize;
    }
    (all, undecided, regressed)
}

/// Per operation, the spread of its rounds' p50 log ratio.
fn p50_spreads(ratios: &[(String, Vec<paired::RoundRatio>)]) -> Vec<(String, f64)> {
    ratios
        .iter()
        .filter_map(|(k, rs)| {
            let logs: Vec<f64> = rs.iter().map(|r| r.p50.max(1e-12).ln()).collect();
            sequential::spread(&logs).map(|sd| (k.clone(), sd))
        })
        .collect()
}

/// Run rounds of slices, looking after each from the design's first look,
/// until the rounds decide, the design's last round, or the budget; then
/// pair and judge them.
pub fn ab(o: &AbOptions) -> Result<AbReport> {
    if let Some(n) = o.rounds {
        if n < 2 {
            return Err(Error::Usage(
                "--rounds must be at least 2: the paired interval needs two rounds (4 or more recommended)".into(),
            ));
        }
    } else if o.max_rounds < FIRST_LOOK {
        return Err(Error::Usage(format!(
            "--max-rounds must be at least {FIRST_LOOK}: the first look is after round {FIRST_LOOK}"
        )));
    }
    if o.slice.is_zero() {
        return Err(Error::Usage("--slice must be more than zero".into()));
    }
    if let Some(e) = o.min_effect {
        if !(e > 0.0 && e < 1.0) {
            return Err(Error::Usage(
                "--min-effect must lie between 0 and 100% (for example 10%)".into(),
            ));
        }
    }
    for m in &o.metrics {
        let known = crate::compare::METRICS.iter().any(|x| x.0 == m) || m == "throughput";
        if !known {
            return Err(Error::Usage(format!(
                "--metrics {m}: not a figure ab judges (p50, p95, p99, p99.9, throughput)"
            )));
        }
    }
    // A duet halves each side's rate, so the estate carries what one slice
    // of the scenario would; a closed-loop scenario cannot be halved.
    let rate = if o.duet {
        match peak_rate(o)? {
            Some(r) => Some(r / 2.0),
            None => {
                return Err(Error::Usage(format!(
                    "--duet: {} has no open phase to run at half rate",
                    o.scenario.display()
                )))
            }
        }
    } else {
        crate::scenario::load(&o.scenario)?;
        o.rate
    };
    std::fs::create_dir_all(o.out.join("slices")).io("creating", &o.out)?;
    let stop = o.stop.clone().unwrap_or_default();
    let started = Instant::now();
    let alpha = o.settings.alpha;
    // A budget sets the last round once the first says how long one takes.
    let mut design = match (o.rounds, o.budget) {
        (Some(n), _) => Some(Design::fixed(n, alpha)),
        (None, None) => Some(Design::calibrate(
            FIRST_LOOK,
            o.max_rounds,
            alpha,
            o.settings.seed,
        )),
        (None, Some(_)) => None,
    };
    let sequential = o.rounds.is_none();
    let mut slices = Vec::new();
    let mut looks = Vec::new();
    let mut detectable: Vec<Detectable> = Vec::new();
    let mut interrupted = false;
    let mut invalid_slice = false;
    let stopped: String;
    fn judging<'a>(o: &'a AbOptions, design: &'a Design) -> paired::Judging<'a> {
        paired::Judging {
            design,
            min_effect: o.min_effect,
            metrics: &o.metrics,
            duet: o.duet,
        }
    }
    let not_judged = |s: &Slice| {
        crate::run::read(&o.out.join(&s.dir))
            .is_ok_and(|r| r.verdict == crate::run::Verdict::NotJudged)
    };
    let mut round = 0u32;
    'rounds: loop {
        let last = design.as_ref().map_or(o.max_rounds, |d| d.max_rounds);
        if round >= last {
            stopped = if sequential {
                format!("the design's last round ({last})")
            } else {
                format!("the {last} rounds asked for")
            };
            break;
        }
        // The first look's rounds always run: without them the budget
        // would decide nothing.
        let first = design.as_ref().map_or(FIRST_LOOK, |d| d.first_look);
        if let (Some(budget), true) = (o.budget, round >= first) {
            let spent = started.elapsed();
            if spent + spent / round > budget {
                stopped = format!(
                    "the budget: another round would end past {:.0} s",
                    budget.as_secs_f64()
                );
                break;
            }
        }
        round += 1;
        let order = round_order(round);
        let groups: Vec<&[&'static str]> = if o.duet {
            vec![&order[..]]
        } else {
            order.chunks(1).collect()
        };
        for group in groups {
            if stop.load(Ordering::SeqCst)
                || !run_slices(o, round, group, rate, started, &mut slices)?
            {
                interrupted = true;
                stopped = "interrupted".into();
                break 'rounds;
            }
            let bad = slices
                .iter()
                .rev()
                .take(group.len())
                .find(|s| s.exit_code == exit::INVALID && !not_judged(s));
            if let Some(s) = bad {
                invalid_slice = true;
                stopped = format!("an invalid slice (round {round}, {})", s.side);
                break 'rounds;
            }
        }
        if design.is_none() {
            let per_round = started.elapsed().as_secs_f64();
            let budget = o.budget.expect("no design without a budget").as_secs_f64();
            let fits = (budget / per_round).floor() as u32;
            let last = fits.clamp(FIRST_LOOK, o.max_rounds);
            if o.verbose {
                eprintln!(
                    "ab: a round takes {per_round:.0} s: the budget of {budget:.0} s holds {fits} round(s); looking from round {FIRST_LOOK} to round {last}{}",
                    if fits < FIRST_LOOK { " (past the budget: the first look needs them)" } else { "" }
                );
            }
            design = Some(Design::calibrate(FIRST_LOOK, last, alpha, o.settings.seed));
        }
        let d = design.as_ref().expect("the design is set after round 1");
        if round == 1 && sequential && o.verbose {
            eprintln!(
                "ab: sequential: looks after rounds {} to {}, each at the level {:.4}, so that all of them together alarm at most at alpha {}",
                d.first_look, d.max_rounds, d.level, d.alpha
            );
        }
        if sequential && round >= d.first_look {
            let (comparisons, ratios, one_sided) =
                paired::judge(&o.out, &slices, &o.settings, judging(o, d))?;
            let (figures, undecided, regressions) = tally(&comparisons);
            looks.push(Look {
                round,
                at_s: started.elapsed().as_secs_f64(),
                figures,
                undecided,
                regressions,
            });
            if round == d.first_look {
                detectable = p50_spreads(&ratios)
                    .into_iter()
                    .map(|(key, sd)| Detectable {
                        expected: d.detectable(sd),
                        key,
                        sd,
                        reached: None,
                    })
                    .collect();
                if o.verbose {
                    for x in &detectable {
                        eprintln!(
                            "ab: {} p50 varies {:.1}% per round over the first {round} rounds: by round {} it could detect about {:.1}% (a rough guess from {round} rounds)",
                            crate::compare::key_name(&x.key),
                            x.sd * 100.0,
                            d.max_rounds,
                            x.expected * 100.0
                        );
                    }
                }
            }
            if o.verbose {
                eprintln!(
                    "ab: look at round {round}: {} of {figures} figures decided, {regressions} regressed",
                    figures - undecided
                );
            }
            if regressions > 0 || !one_sided.is_empty() {
                stopped = format!("B regressed (round {round})");
                break;
            }
            if figures > 0 && undecided == 0 {
                stopped = format!("every figure decided (round {round})");
                break;
            }
        }
        // What ran so far is kept, whatever stops the rounds.
        write_partial(o, &slices, round)?;
    }
    // A slice exits 3 when invalid, and also when its scenario has no
    // budgets (measured, not judged): ab judges the measurements, so only
    // the first makes a slice unusable. Its run.json says which.
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
    debug_assert!(!invalid_slice || !invalid.is_empty());
    let complete_rounds = paired::complete_rounds(&slices);
    if complete_rounds < 2 {
        invalid.push(format!(
            "{complete_rounds} complete round(s): at least 2 are needed to pair"
        ));
    }
    let design = design.unwrap_or_else(|| Design::fixed(2, alpha));
    let (comparisons, round_ratios, one_sided) = if complete_rounds >= 2 {
        paired::judge(&o.out, &slices, &o.settings, judging(o, &design))?
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    if complete_rounds >= 2 && comparisons.is_empty() {
        invalid.push("the slices share no variant and operation".into());
    }
    for x in detectable.iter_mut() {
        x.reached = comparisons
            .iter()
            .find(|(k, _)| *k == x.key)
            .and_then(|(_, c)| c.rows.iter().find(|r| r.metric == "p50"))
            .map(|r| ((r.high.max(1e-12).ln() - r.low.max(1e-12).ln()) / 2.0).exp() - 1.0);
    }
    // An operation only one side measured is a failed check, as in the gate.
    let (_, undecided, regressions) = tally(&comparisons);
    let regressed = !one_sided.is_empty() || regressions > 0;
    let improved = comparisons.iter().any(|(_, c)| {
        c.rows
            .iter()
            .any(|r| r.change == crate::compare::Finding::Improvement)
    });
    let (verdict, decision, exit_code) = if interrupted {
        ("interrupted", "INTERRUPTED", exit::INTERRUPTED)
    } else if !invalid.is_empty() {
        ("invalid", "INVALID", exit::INVALID)
    } else if regressed {
        ("fail", "DIFFERENT: B regressed", exit::FAIL)
    } else if undecided > 0 && !o.allow_inconclusive {
        ("could not tell", "UNKNOWN", exit::INVALID)
    } else if undecided > 0 {
        (
            "pass",
            "UNKNOWN (accepted by --allow-inconclusive)",
            exit::OK,
        )
    } else if improved {
        ("pass", "DIFFERENT: B improved", exit::OK)
    } else {
        ("pass", "SAME", exit::OK)
    };
    let report = AbReport {
        ab_version: AB_VERSION,
        scenario: o.scenario.display().to_string(),
        a: o.a.clone(),
        b: o.b.clone(),
        rounds: complete_rounds as u32,
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
        design: Some(design),
        budget_s: o.budget.map(|b| b.as_secs_f64()),
        min_effect: o.min_effect,
        looks,
        stopped,
        decision: decision.into(),
        detectable,
        duet: o.duet,
    };
    crate::fsutil::write_atomic(
        &o.out.join("ab.json"),
        &serde_json::to_vec_pretty(&report).expect("the ab report serializes"),
    )?;
    Ok(report)
}

/// After each round, an `ab.json` that says the rounds are in progress:
/// what an ab killed outright leaves (Ctrl-C writes the full report).
fn write_partial(o: &AbOptions, slices: &[Slice], round: u32) -> Result<()> {
    let report = AbReport {
        ab_version: AB_VERSION,
        scenario: o.scenario.display().to_string(),
        a: o.a.clone(),
        b: o.b.clone(),
        rounds: round,
        slice_s: o.slice.as_secs_f64(),
        settings: o.settings.clone(),
        slices: slices.to_vec(),
        comparisons: Vec::new(),
        round_ratios: Vec::new(),
        invalid: Vec::new(),
        one_sided: Vec::new(),
        interrupted: true,
        verdict: "interrupted".into(),
        exit_code: exit::INTERRUPTED,
        design: None,
        budget_s: o.budget.map(|b| b.as_secs_f64()),
        min_effect: o.min_effect,
        looks: Vec::new(),
        stopped: format!(
            "in progress: round {round} done (`rehearse ab` was stopped before it judged them)"
        ),
        decision: "INTERRUPTED".into(),
        detectable: Vec::new(),
        duet: o.duet,
    };
    crate::fsutil::write_atomic(
        &o.out.join("ab.json"),
        &serde_json::to_vec_pretty(&report).expect("the ab report serializes"),
    )
}

/// Read `dir/ab.json`, refusing what this rehearse cannot read.
impl AbReport {
    /// The comparison settings with alpha at the level the intervals were
    /// made at: one look's level in the sequential design, not the alpha
    /// spread over all the looks.
    pub fn interval_settings(&self) -> CompareSettings {
        CompareSettings {
            alpha: self
                .design
                .as_ref()
                .map_or(self.settings.alpha, |d| d.level),
            ..self.settings.clone()
        }
    }
}

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
