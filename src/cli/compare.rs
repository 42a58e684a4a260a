//! The commands that compare and gate: compare, ab, gate and baselines.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::*;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline run directories, or baseline directories of runs (results/baselines/NAME).
    #[arg(required = true, value_name = "BASELINE_RUN")]
    pub baseline: Vec<PathBuf>,
    /// Candidate run directories, after `--`.
    #[arg(last = true, required = true, value_name = "CANDIDATE_RUN")]
    pub candidate: Vec<PathBuf>,
    #[command(flatten)]
    pub verdicts: VerdictArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print a Markdown table.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
    /// Also draw overlay charts (both builds' spectra and p99 timelines) into this directory.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AbArgs {
    /// The scenario both sides run (the same seed and schedule).
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Side A (the baseline): a rehearse binary, or a settings file (*.toml) with an [estate] table.
    #[arg(long, value_name = "BINARY_OR_SETTINGS")]
    pub a: PathBuf,
    /// Side B (the candidate): a rehearse binary, or a settings file (*.toml).
    #[arg(long, value_name = "BINARY_OR_SETTINGS")]
    pub b: PathBuf,
    /// The fixed design: exactly N rounds (at least 2) and one verdict at the end, instead of looking after every round.
    #[arg(long, value_name = "N", conflicts_with_all = ["max_rounds", "budget"])]
    pub rounds: Option<u32>,
    /// The sequential design's last round: it stops earlier once every figure is decided [default: 20; with --budget, as many as the budget holds, up to 200].
    #[arg(long, value_name = "N")]
    pub max_rounds: Option<u32>,
    /// Wall-clock bound of the sequential design (for example 20m): no round starts that would end past it, and the looks are planned for the rounds it holds.
    #[arg(long, value_name = "DURATION")]
    pub budget: Option<Dur>,
    /// The smallest change that matters, for every figure (for example 10%): SAME when the interval lies inside plus or minus it, DIFFERENT when the interval excludes no change and the estimate is beyond half of it [default: each figure's floor, p50 5%, p95 10%, p99 15%, p99.9 20%, throughput 5%].
    #[arg(long, value_name = "PERCENT", value_parser = fraction)]
    pub min_effect: Option<f64>,
    /// The figures judged, comma-separated, of p50, p95, p99, p99.9 and throughput (p99.9 needs 100,000 requests a side).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "p50,p95,p99,throughput",
        value_name = "LIST"
    )]
    pub metrics: Vec<String>,
    /// Each slice's length: the scenario's phases scaled to it.
    #[arg(long, default_value = "20s", value_name = "DURATION")]
    pub slice: Dur,
    /// Warm-up left out of each slice [default: the scenario's].
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<Dur>,
    /// Scale the open phases so the highest rate is this.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Only these variants of the scenario.
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Where to write ab.json and the slices [default: results/<UTC time>-ab-<scenario>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print ab.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Accept percentiles the rounds could not decide: still counted and listed, but no longer exit 3.
    #[arg(long)]
    pub allow_inconclusive: bool,
    /// Duet: run each round's A and B at the same time, each at half the scenario's rate, so that what drifts on the machine hits both at once (open-loop scenarios only).
    #[arg(long)]
    pub duet: bool,
    #[command(flatten)]
    pub verdicts: VerdictArgs,
}

/// "10%" or "0.1" as a fraction.
fn fraction(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (s, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .map(|x| x / scale)
        .map_err(|_| format!("{s}: not a percentage (for example 10%) or a fraction (0.1)"))
}

pub(crate) const AB_HELP: &str = "\
Method:
  A and B run alternately in slices, round after round: AB BA BA AB ... (so
  neither always goes first), each slice a `rehearse run` of the scenario
  scaled to --slice, on the same estate. A binary side runs on the estate this
  command is given (flags, environment, settings, lab); a settings side runs
  this binary on the estate its file names, and nothing else. Each round's two
  slices, neighbours in time, are paired: per variant and operation, the log
  of B over A for each figure of --metrics; their mean over the rounds gets a
  Student-t interval (rounds - 1 degrees of freedom), Holm across the
  operation's figures, and the labels of `rehearse compare`.

Sequential (the default): after every round from round 3 it looks, and
  stops as soon as every figure is decided:
    SAME       the interval lies inside +/- min-effect
    DIFFERENT  the interval excludes no change, and the estimate is beyond
               half the min-effect (a regression or an improvement)
    UNKNOWN    neither, when --max-rounds or --budget ran out
  Each look tests at one constant level, simulated so that all the planned
  looks together alarm at most at --alpha: looking after every round does not
  raise the false-alarm rate, as peeking at a fixed test would. After the
  first look it prints the change it expects to detect by the last round;
  ab.json keeps the looks, the level and the interval reached.
  --rounds N is the fixed design instead: N rounds, one look at the end.

Examples:
  rehearse ab scenarios/gate_noise.toml --a base/rehearse --b head/rehearse \\
      --min-effect 10% --budget 10m --metrics p50,p95

Exit codes:
  0    SAME, or B improved (no figure regressed and every figure decided, or
       --allow-inconclusive)
  1    DIFFERENT: B regressed against A (or measured an operation A did not)
  2    bad usage or input
  3    UNKNOWN (a figure undecided when the rounds ran out), or invalid (a
       slice was invalid, or fewer than 2 rounds completed)
  4    a slice could not run (the estate or a binary)
  130  interrupted after the slice in progress; what ran is kept (and judged,
       when two rounds completed)";

pub const READINESS_HELP: &str = "\
Reads every run, drill, capacity search and kept job run (job-*.json) under
the directories, each through its own reader, and writes readiness.html,
readiness.md and readiness.json. GO only when every required piece is
present and passes: each suite scenario's budgets in the partitioned mode,
the cutover drill (0 acknowledged writes lost), the rollout drill (0 lost,
its rollback verified), the alert drill (every alert in time), and the
reconcile job (no drift). The page prints the list, sets legacy against
partitioned per operation (ratio and interval), and gives each piece its
figure, its table and its chart.

Exit codes:
  0    GO
  1    NO-GO: a required piece failed (the page names it, with its figure)
  2    bad usage or input
  3    UNKNOWN: a required piece is missing, unreadable or not judged";

#[derive(Debug, Args)]
pub struct ReadinessArgs {
    /// Directories of results (a main job's results directory, run and drill directories).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write readiness.html, readiness.md and readiness.json [default: the first DIR].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print readiness.json instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The run directory to gate.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// A baseline to compare against: a run directory, or a baseline directory of runs (results/baselines/main). Repeatable.
    #[arg(long = "baseline", value_name = "RUN_DIR")]
    pub baselines: Vec<PathBuf>,
    /// Budgets to apply instead of the scenario's: a TOML file of [budgets.<operation>] tables.
    #[arg(long, value_name = "FILE")]
    pub budgets: Option<PathBuf>,
    /// Write JUnit XML here, one test case per check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the Markdown summary here (it is printed either way).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Confidence of the interval each budget is judged by: met when its upper bound is within the budget, missed when its lower bound is beyond it, unjudged otherwise [default: the scenario's [validity] confidence, 0.99].
    #[arg(long, value_name = "FRACTION")]
    pub confidence: Option<f64>,
    /// Accept comparisons that could not tell (their interval straddles the floor): they are still counted and listed, but no longer make the gate exit 3.
    #[arg(long)]
    pub allow_inconclusive: bool,
    #[command(flatten)]
    pub verdicts: VerdictArgs,
}

/// How build-to-build verdicts are reached; `compare` and `gate` share them.
#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// Bootstrap resamples (half with blocks of b, half with 2b).
    #[arg(long, default_value_t = CompareSettings::default().resamples as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(100..))]
    pub resamples: u32,
    /// Family-wise false-alarm rate (two-sided) across one operation's percentiles; intervals are shown at 1 - alpha.
    #[arg(long, default_value_t = CompareSettings::default().alpha, value_name = "P")]
    pub alpha: f64,
    /// Changes smaller than this many milliseconds are never a regression ("below min-abs").
    #[arg(long, default_value_t = CompareSettings::default().min_abs_ms, value_name = "MS")]
    pub min_abs_ms: f64,
    /// Between-run spread (sd of the log of a figure) allowed for a side of one run when no side has several runs to measure it.
    #[arg(long, default_value_t = CompareSettings::default().run_spread, value_name = "SD")]
    pub run_spread: f64,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Copy a run (run.json, latency.hlog) into results/baselines/<name>/<run-id>/.
    Save {
        #[arg(value_name = "RUN_DIR")]
        run: PathBuf,
        #[arg(value_name = "NAME")]
        name: String,
        /// Add the run to an existing baseline (several runs let verdicts measure the spread between runs).
        #[arg(long, conflicts_with = "force")]
        add: bool,
        /// Replace an existing baseline of that name with this one run.
        #[arg(long)]
        force: bool,
        /// Where baselines live.
        #[arg(long, default_value = "results/baselines", value_name = "DIR")]
        root: PathBuf,
    },
}

pub(crate) const COMPARE_HELP: &str = "\
Method:
  Each run's measured interval histograms (warm-up and the cut-short last
  interval left out) are the units. A side may hold several runs (a baseline
  directory of runs, or several run directories): a two-level bootstrap draws
  runs, then blocks of consecutive intervals within each drawn run (at least
  ceil(n^(1/3)) long, longer when the intervals are autocorrelated), so the
  spread between runs widens the interval as it should. A side of one run
  cannot show that spread: it is allowed for with the spread learned from the
  other side's runs, else --run-spread, and every verdict says which.
  Intervals and p-values are Student-t ones on the log of the ratio, with the
  bootstrap's standard error (extrapolated from blocks of b and 2b) and the
  drawable blocks as degrees of freedom; Holm's correction across one
  operation's percentiles holds the family-wise false-alarm rate at --alpha.
  The allowance applies to latencies only: an open loop's throughput is set
  by its schedule, and its spread between runs is measured when runs exist.
  regression     significant, beyond the floor (p50 5%, p95 10%, p99 15%,
                 p99.9 20%; throughput 5% lower) and above --min-abs-ms
  improvement    the mirror image
  contradictory  faster here, but another percentile of the same operation is
                 worse beyond its floor: not credited as an improvement
  no change      the whole interval lies within the floor's band
  below min-abs  the change is smaller than --min-abs-ms
  inconclusive   anything else, or fewer than 100/(1-q) samples on a side

Capacity directories (rehearse capacity; one on each side of --):
  per variant, the candidate's capacity over the baseline's. A search brackets
  its capacity between the highest rate whose trials all passed and the lowest
  whose failure was confirmed; the interval is what both brackets allow.
  higher / lower   the whole interval lies above / below 1
  within the searches' resolution   the interval holds 1
  unknown          a side has no capacity (driver-limited, an invalid probe,
                   even --from failing, or the variant not searched)

Exit codes:
  0  compared (whatever the verdicts; `rehearse gate` acts on them)
  2  bad usage or input (not a run directory, unknown schema, missing field)";

pub(crate) const GATE_HELP: &str = "\
Order:
  1. validity: the run completed, each variant reached its target rate without
     the driver being the bottleneck, and every gated percentile has enough
     samples (100/(1-q): p99 10,000, p99.9 100,000)
  2. budgets: the scenario's, or --budgets FILE
  3. with --baseline: the relative check of `rehearse compare`; a regression fails

Exit codes:
  0  pass
  1  fail: a budget missed or a regression
  2  bad usage or input
  3  invalid: the run cannot be judged (never reported as a pass or a fail)";
