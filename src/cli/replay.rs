//! `capture` and `replay`: a production trace, taken and replayed.

use super::*;

pub const CAPTURE_HELP: &str = "\
What it changes, and how it is undone:
  For the window, by ALTER SYSTEM and a reload (no restart): log_destination
  gains csvlog, log_statement = all (or, with --with-durations,
  log_min_duration_statement = 0), log_connections and log_disconnections on,
  lc_messages = C. When the window ends, or on Ctrl-C, each is put back as
  postgresql.auto.conf held it. capture.json keeps what to put back until
  then: after a capture killed outright, `rehearse capture --restore --out DIR`.
  csvlog needs logging_collector = on, which takes a restart: a server
  without it is refused (exit 5). The lab runs with it on.

What it costs the server:
  One log line per statement, with its parameters: a write of a few hundred
  bytes by each backend into the collector's pipe, and the collector's file
  writes. The summary prints the volume the window wrote (records, MB, MB/s);
  on the lab a 120 requests/s finance run wrote 0.16 MB/s. At tens of thousands
  of statements/s the collector can become the bottleneck: capture a window
  of minutes, not hours, and watch the server's latency while it runs.

Only a rehearsal target (the lab, a database with rehearse_meta, or one named
by --allow-destructive) is captured: the settings change the whole server.
The window's records are read back with pg_read_binary_file (superuser) and
written to DIR/capture.csv, ready for `rehearse replay`. A replica the
estate names (--replica-url, or the lab's) is captured the same way into
DIR/capture-replica.csv (replay it with --replica-log); --primary-only leaves
it alone.

Examples:
  rehearse capture --duration 30s --out results/capture
  rehearse capture --out results/capture     # until Ctrl-C

Exit codes: 0 captured (130 when ended by Ctrl-C, the capture kept), 2 bad
usage, 4 the server is unusable, 5 refused.";

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// How long to capture (e.g. 30s, 5m) [default: until Ctrl-C].
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Dur>,
    /// Where capture.csv and capture.json go.
    #[arg(long, value_name = "DIR", default_value = "results/capture")]
    pub out: PathBuf,
    /// Log each statement at its end, with its duration, instead of at its start.
    #[arg(long)]
    pub with_durations: bool,
    /// Capture the primary's log alone; by default a replica the estate names
    /// (its replica URL, or the lab's) is captured too, into capture-replica.csv.
    #[arg(long)]
    pub primary_only: bool,
    /// Capture this database although it is not a rehearsal target.
    #[arg(long, value_name = "DATABASE")]
    pub allow_destructive: Option<String>,
    /// Put back the logging settings that DIR/capture.json recorded (after a capture was killed).
    #[arg(long, conflicts_with_all = ["duration", "with_durations"])]
    pub restore: bool,
}

pub const REPLAY_HELP: &str = "\
What it does:
  Reads PostgreSQL csvlog files (13 or later; statements logged by
  log_statement = all or log_min_duration_statement = 0, with lc_messages = C),
  keeps each session's statements in its order, and releases each at its
  offset in the trace divided by --speed, open loop: latency counts from the
  intended start, so a slow statement delays the ones behind it in its
  session and shows in their latency. The repository's statements (in either
  mode's table names, or a leaf partition's) become its operations
  (record_revenue, dashboard, ...) and go through the repository of each
  --mode, so a legacy trace runs against the partitioned tables; their
  bookkeeping (the WAL position, the flag, a batch's BEGIN and COMMIT) is
  done again by the repository, not replayed. Other statements are replayed
  verbatim on a connection per session, their parameters inlined as literals
  the server types from where they stand, or skipped (--unknown skip).

Known pitfalls, handled:
  Statements that wait on each other's locks: each verbatim session runs with
  lock_timeout (--lock-timeout) and statement_timeout (--timeout), and the
  driver abandons a request after --timeout: a replay never hangs; the errors
  are counted by kind in run.json (sqlstate_55 is a lock timeout).
  COPY and fast-path function calls carry data the log does not hold: they
  are counted in replay.json and skipped.
  Adjusts and voids name entries by id, and ids are the captured database's:
  they act on the latest entry the replay wrote for the organization, or
  write one first (counted as prewrites).
  --speed 2 halves every gap between statements; it does not double the
  users. The sessions are the trace's, each at most one statement at a time:
  a session that cannot keep up falls behind, and its latency shows it.
  log_time is rounded to the millisecond: the statements logged in one
  millisecond are spread evenly across it, in log order, not sent as a burst.
  A verbatim session holds its connection from its first statement to its
  last; a trace that needs more at once than the primary has room for is
  refused before it runs (exit 4; --pool pgbouncer or --unknown skip).

The client: one thread (tokio's current-thread runtime), unless
REHEARSE_THREADS says otherwise (`multi`: a worker per core). At 20,000
statements/s on a 2-core machine shared with the server, one thread held the
driver's wake-up p99 under 1 ms and a worker per core did not. One thread
caps the client at one core: the driver's line names the runtime, and warns
when its threads were busy 90% of the replay or more.

Output: an ordinary run directory (run.json, latency.hlog) that report,
compare, gate and readiness read, and replay.json: what the trace held, per
operation, absorbed, unknown, skipped, and each mode's wall time.

Examples:
  rehearse replay results/capture/capture.csv --speed 2 --mode both --out results/replay
  rehearse replay prod.csv --map tenants=1000000 --unknown skip --budgets scenarios/finance_day.toml
  rehearse replay pgbench.csv --application pgbench

Exit codes: 0 every budget met, 1 a budget missed, 2 bad usage or a malformed
log (its file and line named), 3 invalid or no budgets to judge (see gate),
4 the estate is unusable or has too few connections free for the trace,
130 interrupted (what was replayed is kept).";

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// csvlog files, read as one trace.
    #[arg(required = true, value_name = "CSVLOG")]
    pub logs: Vec<PathBuf>,
    /// A csvlog captured on the replica (capture writes capture-replica.csv),
    /// read into the same trace: its verbatim statements replay on the
    /// estate's replica; its repository statements follow --reads.
    #[arg(long, value_name = "CSVLOG")]
    pub replica_log: Vec<PathBuf>,
    /// Replay this many times faster than captured (0.5 is half as fast).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,
    /// The mode(s) to replay against, one after the other.
    #[arg(long, default_value = "both", value_parser = choice::<Modes>(&Modes::NAMES))]
    pub mode: Modes,
    /// `tenants=N`: map the trace's organizations onto the estate's first N (by a hash), their properties onto the mapped organization's; `tenants=all` onto all [default: the trace's ids as they are].
    #[arg(long, value_name = "tenants=N")]
    pub map: Option<String>,
    /// Statements the repository does not send: replay them verbatim, or skip them (counted).
    #[arg(long, default_value = "replay", value_parser = choice::<rehearse::replay::Unknown>(&rehearse::replay::Unknown::NAMES))]
    pub unknown: rehearse::replay::Unknown,
    /// Only the sessions of this application_name (e.g. rehearse, pgbench).
    #[arg(long, value_name = "NAME")]
    pub application: Option<String>,
    /// Where the repository's reads go.
    #[arg(long, default_value = "primary", value_parser = choice::<Via>(&Via::NAMES))]
    pub reads: Via,
    /// Serve reports from the Redis cache, as the services do (a captured trace holds only the misses).
    #[arg(long)]
    pub cache: bool,
    /// Connect directly or through PgBouncer.
    #[arg(long, default_value = "direct", value_parser = choice::<Pooling>(&Pooling::NAMES))]
    pub pool: Pooling,
    /// lock_timeout of the verbatim sessions.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub lock_timeout: Dur,
    /// A request unanswered after this is abandoned and counted as a timeout.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: Dur,
    /// A scenario file, or a budgets file as `gate --budgets` reads, whose [budgets] judge the replay's operations.
    #[arg(long, value_name = "SCENARIO")]
    pub budgets: Option<PathBuf>,
    /// Run directory [default: results/<time>-replay].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
}
