//! The commands that run workloads and read their results: run, check,
//! report, capacity, serve, journeys and merge.

use std::path::PathBuf;

use clap::Args;

use super::*;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory, as `rehearse run` writes (results/<run-id>).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files (scenarios/*.toml).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub const CAPACITY_HELP: &str = "\
The search, per variant: start at --from (default: the scenario's peak rate), double until a
rate fails, then bisect (geometric midpoints) until the bracket is within --resolution. Every
probe is a full run of --step after its own warm-up, in a run directory of its own under the
capacity directory; the rate scales the scenario's open phases, as `run --rate` does. A rate
fails when a budget is missed or the estate could not keep up (rate not reached, arrivals
dropped); the failure counts only once a second trial fails too (--trials), and the final
passing rate is run a second time as well. A probe that held every budget passes even if the
driver woke late (its lateness only adds to response times); one that missed a budget while
the driver was the bottleneck is invalid: it bounds the bracket from above (no second trial) and the bisection goes on below it; if the
bracket closes on it, the search ends driver-limited and says so, and that figure is never
reported as the estate's capacity. On a machine shared with the estate, run the search at a
higher priority (`nice -n -10 rehearse capacity ...`) so the estate, not the driver, meets
the contention.

A probe measures --step, or longer where a budget's percentile needs more samples at its
rate (a percentile q needs 100/(1-q) of its operation: p99 10,000); past 30 minutes at --from
the search is refused up front.

Search on a settled estate (after seeding, autovacuum and a warm cache). A scenario that
writes grows the estate probe by probe, so later probes run on a larger one: the table lists
the rates whose trials disagreed (a pass and a failure at one rate).

Writes capacity.json and prints each variant's capacity, the first failing rate and why,
and each variant against the first.

Exit codes: 0 a capacity was found for every variant; 1 even --from fails a budget for some
variant; 2 bad input (no budgets, a closed-loop phase); 3 invalid: the driver was the limit,
or a probe could not be judged; 4 estate.";

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The scenario: its open phases, mix, variants and budgets.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Only this variant (repeat for several) [default: every variant].
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// The first rate tried (requests/s) [default: the scenario's peak rate].
    #[arg(long, value_name = "PER_SECOND")]
    pub from: Option<f64>,
    /// The highest rate tried [default: 64 times --from].
    #[arg(long, value_name = "PER_SECOND")]
    pub max: Option<f64>,
    /// Each probe's measured length, after its warm-up.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub step: Dur,
    /// Each probe's warm-up [default: the scenario's, else a fifth of the step, at most 5s].
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<Dur>,
    /// Stop when the capacity is known to within this share.
    #[arg(long, default_value = "5%", value_name = "PERCENT", value_parser = share)]
    pub resolution: f64,
    /// Trials before a failing rate counts (and of the final passing one).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub trials: u32,
    /// The capacity directory [default: results/<time>-capacity-<scenario>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print capacity.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress lines.
    #[arg(short, long)]
    pub quiet: bool,
}

fn share(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%');
    match t.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 100.0 => Ok(v / 100.0),
        _ => Err(format!("{s:?}: a percentage between 0 and 100, e.g. 5%")),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files, run one after another.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Run only this variant of each scenario (repeat for several; default: all the scenario names).
    #[arg(long = "variant", value_name = "NAME")]
    pub variants: Vec<String>,
    /// Total duration of each variant; the phases are scaled to it (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Dur>,
    /// Peak arrival rate (requests/s); open phases are scaled so their highest rate is this.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Warm-up left out of the totals (e.g. 5s) [default: the scenario's].
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<Dur>,
    /// Add this delay to every request (e.g. 300us): a known regression, to check that a gate catches one.
    #[arg(long, value_name = "DURATION")]
    pub inject_delay: Option<Dur>,
    /// Confidence of the interval each budget is judged by: met when its upper bound is within the budget, missed when its lower bound is beyond it, unjudged otherwise [default: the scenario's [validity] confidence, 0.99].
    #[arg(long, value_name = "FRACTION")]
    pub confidence: Option<f64>,

    /// Run directory [default: results/<time>-<scenario>; with several scenarios, one directory each under it].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Serve Prometheus metrics here while running, or `off` [default: the lab's port N+9, which the lab's Prometheus scrapes, when the lab has monitoring].
    #[arg(long, value_name = "IP:PORT|off")]
    pub metrics_addr: Option<rehearse::metrics::MetricsAddr>,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print run.json's summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Offer only shard I of N (I from 0) of the schedule; merge the N run directories with `rehearse merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "start_at", env = "REHEARSE_SHARD")]
    pub shard: Option<(u32, u32)>,
    /// The shards' shared start instant (RFC 3339, e.g. 2026-12-01T21:00:00Z): every shard starts its first variant then.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at, requires = "shard", env = "REHEARSE_START_AT")]
    pub start_at: Option<std::time::SystemTime>,
}

fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    rehearse::shard::parse_shard(s)
}

fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    rehearse::shard::parse_rfc3339(s)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    pub addr: std::net::SocketAddr,
    /// How this instance reaches PostgreSQL: its own direct pools, or the estate's PgBouncer.
    #[arg(long, default_value = "direct", value_parser = choice::<Pooling>(&Pooling::NAMES))]
    pub pool: Pooling,
    /// Connections per target (primary, each replica) of this instance.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub pool_size: usize,
    /// Serve reports without the Redis cache.
    #[arg(long)]
    pub no_cache: bool,
    /// A call taking longer is answered 504 and its statement cancelled.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: Dur,
}

pub const SERVE_HELP: &str = "\
Endpoints (JSON; reads answer what `rehearse query --json` answers, plus `query`):
  GET    /orgs/{id}/dashboard?days=30&end=DATE   GET /orgs/{id}/pnl?month=YYYY-MM
  GET    /orgs/{id}/properties?days=|from=&to=    GET /portfolio?days=&top=
  GET    /orgs/{id}/ledger?days=&limit=&after=CURSOR   (next_after: the next page's cursor)
  POST   /orgs/{id}/entries   {kind, property_id, category, amount_cents, vendor?, business_date?, description?}
  POST   /orgs/{id}/batches   {entries: [...]}
  PATCH  /entries/{kind}/{id}?org=ID   {amount_cents?, category?, business_date?, property_id?}
  DELETE /entries/{kind}/{id}?org=ID
  GET    /healthz (the process runs)  /readyz (503 unless the primary answers)  /metrics  /estate
Reads take min_lsn=LSN (from a write's answer) for read-your-writes. The mode of each call
follows USE_PARTITIONED_TABLES and its rollout, read every 250 ms. Statuses: 400 bad input
(with a message), 404 unknown organization, entry or route, 405 wrong method, 409 a write
that kept conflicting, 503 the estate does not answer, 504 past --timeout.

Exit codes: 0 stopped by SIGINT or SIGTERM; 2 usage (or a build without the journeys
feature); 4 the estate does not answer at start.";

#[derive(Debug, Args)]
pub struct JourneysArgs {
    /// The journeys file (scenarios/journeys_*.toml).
    #[arg(value_name = "JOURNEYS")]
    pub file: PathBuf,
    /// Concurrent users [default: the file's].
    #[arg(long, value_name = "N")]
    pub users: Option<u32>,
    /// Users started per second [default: the file's].
    #[arg(long, value_name = "PER_SECOND")]
    pub hatch_rate: Option<f64>,
    /// How long each variant runs [default: the file's].
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Dur>,
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub target: String,
    /// Run directory [default: results/<time>-<name>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do not set the flag per variant: one variant, the mode the service routes by now.
    #[arg(long)]
    pub as_is: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print run.json's summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub const JOURNEYS_HELP: &str = "\
Each variant (a mode of the file's `variants`) sets USE_PARTITIONED_TABLES on the estate,
waits until the service routes by it, and runs Goose; the flag is restored at the end.
Refused (exit 5) while a cutover or rollout is under way: use --as-is there. Every step is
one transaction of one HTTP request, named persona.step; budgets apply per transaction.
Goose's users are closed-loop and its coordinated-omission mitigation is off: the figures
are service times as a browser waits for them (run.json says so under `journeys`).
Writes goose-<variant>.html|json|md, run.json and latency.hlog to the run directory;
`rehearse report`, `compare` and `gate` read it like any run.

Exit codes: 0 every budget held; 1 a budget failed; 2 usage (or a build without the journeys
feature); 3 invalid (a budget unjudged: too few samples); 4 the service or estate does not
answer; 5 refused (cutover or rollout under way, or not a rehearsal target); 130 interrupted
(Ctrl-C: Goose stops its users, what was measured is kept and marked interrupted).";

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' run directories (every shard of the run).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged run directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print run.json's summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub(crate) const MERGE_HELP: &str = "\
Sharding (rehearse run --shard I/N --start-at T, N processes or pods):
  arrival k of each open phase goes to shard k mod N, with the operation,
  tenant and parameters the unsharded run would give it from the same seed;
  closed-loop user u goes to shard u mod N. Every shard starts variant v at
  T + v x (the variant's length + its timeout + 10 s), so the interval
  histograms line up. A shard not ready by then (1 s late) refuses to run.
  Only shard 0 runs the scenario's [[job]]s.

Merge:
  interval histograms of one tag and interval are added (HdrHistogram adds
  exactly when the settings agree); counts, errors, late, dropped, offered
  and completed requests, driver CPU and estate counters are summed. The
  driver's wake-up lag is the worst shard's; top statements are shard 0's.
  The merged run.json and latency.hlog read like any run's in report,
  compare and gate.

Exit codes (merge merges; `rehearse gate` on the merged run judges budgets):
  0    merged: every shard complete, the merged run valid (whatever its budgets)
  2    not shards of one run: different scenario, seed, shard count,
       histogram settings or start instant; a shard given twice; not a shard
  3    invalid: a shard is missing, failed, or was interrupted (named), or a
       shard's own run was invalid; the merged run is written and marked so
  4    an interval log could not be read or written";

pub(crate) const RUN_HELP: &str = "\
Measurement:
  Open phases send each request at its intended time from the schedule. Response
  time = completion - intended start (what budgets apply to), service time =
  completion - send, lag = send - intended start. Requests that find every worker
  busy wait and are counted late; past a backlog of 65,536 they are dropped and
  counted. Closed phases (users) record service time only, and say so.

Output (results/<run-id>/):
  run.json       scenario, environment, per variant and operation: counts, errors,
                 throughput, percentiles, budgets, validity, database samples
  latency.hlog   interval histograms (HdrHistogram log, V2 + DEFLATE), tags
                 variant/operation/response|service|lag, values in nanoseconds

Exit codes:
  0    every budget met
  1    a budget was missed
  2    bad usage or bad input (flags, scenario file)
  3    the run is not valid: the target rate was not reached or the driver was
       the bottleneck, so its numbers must not be trusted
  4    the estate is not usable (a component is down, a statement failed)
  5    refused: the target is not a rehearsal database
  130  interrupted (Ctrl-C): what was measured is written, marked interrupted
  A shard (--shard I/N) exits 0 when it completed: its budgets are judged on the
  merged run (`rehearse merge --help`), and 2/4/130 as above otherwise.";
