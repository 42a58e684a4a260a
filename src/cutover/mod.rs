//! The cutover playbook as commands: prepare, dual-write, backfill, verify,
//! switch, rollback, finalize, each idempotent, resumable and refused out of
//! order, each recorded in `rehearse_meta` (key `cutover`).
//!
//! The mirror is installed in both directions at `dual-write`: a write is
//! repeated on the other side in its own transaction whichever side the
//! flag sent it to. So the switch and the rollback are flag flips that take
//! no table lock, and a process that has not yet re-read the flag (the
//! repository re-reads it every 250 ms) still writes to a side that is
//! mirrored: no acknowledged write can miss the side that is authoritative.
//! Reversing the mirror by DDL at the switch, as a one-direction design
//! would, locks both sides' tables while writers run and loses what stale
//! writers write in between.

pub mod backfill;
pub mod drill;
pub mod locks;
pub mod race;
pub mod verify;

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, GenericClient};

use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::repo::routing;
use crate::schema::{self, meta, Mode};

pub use locks::{LockOptions, LockReport};

/// The `rehearse_meta` key of the cutover's state.
pub const META_KEY: &str = "cutover";

const MIRROR_FUNCTION: &str = include_str!("sql/mirror_function.sql");
const MIRROR_TRIGGERS: &str = include_str!("sql/mirror_triggers.sql");

/// Fill a template naming both sides' tables: `{{l_revenue}}`, `{{p_summary}}` ...
pub(crate) fn render_sides(template: &str) -> String {
    let (l, p) = (Mode::Legacy.tables(), Mode::Partitioned.tables());
    template
        .replace("{{l_revenue}}", l.revenue)
        .replace("{{l_expense}}", l.expense)
        .replace("{{l_summary}}", l.summary)
        .replace("{{p_revenue}}", p.revenue)
        .replace("{{p_expense}}", p.expense)
        .replace("{{p_summary}}", p.summary)
}

/// One direction of the mirror.
#[derive(Debug, Clone, Copy)]
struct Direction {
    from: Mode,
    to: Mode,
    function: &'static str,
    trigger: &'static str,
}

const DIRECTIONS: [Direction; 2] = [
    Direction {
        from: Mode::Legacy,
        to: Mode::Partitioned,
        function: "rehearse_mirror_to_partitioned",
        trigger: "zz_cutover_mirror",
    },
    Direction {
        from: Mode::Partitioned,
        to: Mode::Legacy,
        function: "rehearse_mirror_to_legacy",
        trigger: "zz_cutover_mirror",
    },
];

impl Direction {
    fn function_sql(&self) -> String {
        let to = self.to.tables();
        MIRROR_FUNCTION
            .replace("{{mirror_fn}}", self.function)
            .replace("{{to_revenue}}", to.revenue)
            .replace("{{to_expense}}", to.expense)
            .replace("{{to_entry_key}}", to.entry_key)
    }

    fn triggers_sql(&self) -> String {
        let from = self.from.tables();
        MIRROR_TRIGGERS
            .replace("{{trigger}}", self.trigger)
            .replace("{{mirror_fn}}", self.function)
            .replace("{{from_revenue}}", from.revenue)
            .replace("{{from_expense}}", from.expense)
    }

    fn drop_sql(&self) -> String {
        let from = self.from.tables();
        format!(
            "DROP TRIGGER IF EXISTS {t} ON {r};\nDROP TRIGGER IF EXISTS {t} ON {e};\n",
            t = self.trigger,
            r = from.revenue,
            e = from.expense
        )
    }
}

/// The steps, in playbook order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Prepare,
    DualWrite,
    Backfill,
    Verify,
    Switch,
    Rollback,
    Finalize,
    /// A change of the flag's rollout (`rehearse rollout pilot|widen|rollback`).
    Rollout,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::DualWrite => "dual-write",
            Step::Backfill => "backfill",
            Step::Verify => "verify",
            Step::Switch => "switch",
            Step::Rollback => "rollback",
            Step::Finalize => "finalize",
            Step::Rollout => "rollout",
        }
    }

    /// How an operator runs it.
    pub fn command(self) -> String {
        match self {
            Step::Rollout => "rehearse rollout widen".into(),
            _ => format!("rehearse cutover {}", self.name()),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the estate stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutoverPhase {
    /// No cutover has begun: legacy only.
    #[default]
    NotStarted,
    /// Partitioned tables exist, empty, and nothing mirrors into them.
    Prepared,
    /// Every write is mirrored; the backfill may be under way.
    DualWrite,
    /// Every legacy row is on the partitioned side too.
    Backfilled,
    /// The flag says partitioned; legacy is kept current by the mirror.
    Switched,
    /// The flag says legacy again; partitioned is kept current by the mirror.
    RolledBack,
    /// The mirror is gone; partitioned only (legacy tables kept until dropped).
    Finalized,
}

impl CutoverPhase {
    pub fn name(self) -> &'static str {
        match self {
            CutoverPhase::NotStarted => "not started",
            CutoverPhase::Prepared => "prepared",
            CutoverPhase::DualWrite => "dual-write",
            CutoverPhase::Backfilled => "backfilled",
            CutoverPhase::Switched => "switched",
            CutoverPhase::RolledBack => "rolled back",
            CutoverPhase::Finalized => "finalized",
        }
    }

    /// The side the services read and write in this phase.
    pub fn authoritative(self) -> Mode {
        match self {
            CutoverPhase::Switched | CutoverPhase::Finalized => Mode::Partitioned,
            _ => Mode::Legacy,
        }
    }

    /// Whether the mirror triggers are meant to be in place.
    pub fn mirrored(self) -> bool {
        matches!(
            self,
            CutoverPhase::DualWrite
                | CutoverPhase::Backfilled
                | CutoverPhase::Switched
                | CutoverPhase::RolledBack
        )
    }
}

impl fmt::Display for CutoverPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The backfill's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackfillProgress {
    pub first_org: i64,
    pub last_org: i64,
    /// The first organization not copied yet.
    pub next_org: i64,
    pub rows: u64,
    pub batches: u64,
    pub seconds: f64,
}

/// The last verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    pub ok: bool,
    /// The phase it verified: a later step makes it stale.
    pub phase: CutoverPhase,
    pub at: String,
    pub mismatching_buckets: usize,
}

/// One line of the step log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub step: Step,
    pub at: String,
    pub seconds: f64,
    pub outcome: String,
}

/// What `rehearse_meta` says of the cutover.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub phase: CutoverPhase,
    pub backfill: Option<BackfillProgress>,
    pub verified: Option<Verified>,
    pub log: Vec<LogEntry>,
}

impl State {
    pub(crate) fn logged(&mut self, step: Step, started: Instant, outcome: String) {
        self.log.push(LogEntry {
            step,
            at: now_utc(),
            seconds: started.elapsed().as_secs_f64(),
            outcome,
        });
    }

    /// Whether the last verify passed on the phase the estate is in now.
    fn verified_now(&self) -> Option<&Verified> {
        self.verified.as_ref().filter(|v| v.phase == self.phase)
    }
}

pub(crate) fn now_utc() -> String {
    crate::day::iso_utc(std::time::SystemTime::now())
}

/// Read the cutover state (the default when none was recorded).
pub async fn read_state(client: &impl GenericClient) -> Result<State> {
    if !meta::has_meta(client).await? {
        return Ok(State::default());
    }
    match meta::get(client, META_KEY).await? {
        None => Ok(State::default()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            Error::Refused(format!(
                "rehearse_meta key {META_KEY} holds a cutover state this rehearse cannot read ({e}); \
                 `rehearse cutover reset` starts over"
            ))
        }),
    }
}

/// Read the state for update: the caller's transaction holds the cutover lock.
pub(crate) async fn lock_state(client: &impl GenericClient) -> Result<State> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('rehearse_cutover'))",
            &[],
        )
        .await
        .db(|| "taking the cutover lock".into())?;
    read_state(client).await
}

pub(crate) async fn write_state(client: &impl GenericClient, state: &State) -> Result<()> {
    meta::set(
        client,
        META_KEY,
        &serde_json::to_value(state).expect("state serializes"),
    )
    .await
}

/// What a step decided before doing anything.
pub enum Gate {
    Run,
    /// Already done: the message says so.
    Done(String),
}

/// Whether `step` may run in `state`: run, already done, or refused with
/// the step to run first.
pub fn gate(state: &State, step: Step) -> Result<Gate> {
    use CutoverPhase::*;
    let what = match step {
        Step::Rollout => "a rollout change".to_string(),
        _ => format!("cutover {step}"),
    };
    let first = |s: Step, why: &str| -> Result<Gate> {
        Err(Error::Refused(format!(
            "{what} refused: the cutover is at phase \"{}\"; {why}run `{}` first",
            state.phase,
            s.command()
        )))
    };
    // The next step of the forward path, for a phase before the switch.
    let next_forward = |p: CutoverPhase| match p {
        NotStarted => Step::Prepare,
        Prepared => Step::DualWrite,
        DualWrite => Step::Backfill,
        _ => Step::Verify,
    };
    let done = |what: &str| Ok(Gate::Done(format!("{step}: {what}; nothing to do")));
    if state.phase == Finalized {
        return match step {
            Step::Prepare | Step::DualWrite | Step::Backfill | Step::Switch => {
                done("the cutover is finalized")
            }
            Step::Finalize => done("already finalized"),
            Step::Verify | Step::Rollback | Step::Rollout => Err(Error::Refused(format!(
                "cutover {step} refused: the cutover is finalized and the mirror removed, so \
                 legacy is no longer kept current; `rehearse cutover status` shows when it was finalized"
            ))),
        };
    }
    match step {
        Step::Prepare => {
            if state.phase == NotStarted {
                Ok(Gate::Run)
            } else {
                done("the partitioned tables are prepared")
            }
        }
        Step::DualWrite => match state.phase {
            NotStarted => first(Step::Prepare, ""),
            Prepared => Ok(Gate::Run),
            _ => done("the mirror is on"),
        },
        Step::Backfill => match state.phase {
            NotStarted | Prepared => first(next_forward(state.phase), ""),
            DualWrite => Ok(Gate::Run),
            _ => done("the backfill is complete"),
        },
        Step::Verify => match state.phase {
            NotStarted | Prepared | DualWrite => first(
                next_forward(state.phase),
                "verify compares the sides once the backfill is complete; ",
            ),
            _ => Ok(Gate::Run),
        },
        Step::Switch => match state.phase {
            NotStarted | Prepared | DualWrite => first(next_forward(state.phase), ""),
            Switched => done("the flag already says partitioned"),
            _ => match state.verified_now() {
                Some(v) if v.ok => Ok(Gate::Run),
                Some(v) => Err(Error::Refused(format!(
                    "cutover switch refused: the last verify ({}) found {} mismatching buckets; \
                     repair them, then run `rehearse cutover verify` again",
                    v.at, v.mismatching_buckets
                ))),
                None => first(
                    Step::Verify,
                    "the switch needs a passing verify of this phase; ",
                ),
            },
        },
        Step::Rollback => match state.phase {
            Switched => Ok(Gate::Run),
            RolledBack => done("already rolled back: the flag says legacy"),
            p => first(
                if p >= Backfilled {
                    Step::Switch
                } else {
                    next_forward(p)
                },
                "there is nothing to roll back before the switch; ",
            ),
        },
        // A rollout moves cohorts between sides, so it needs what the switch
        // needs: both sides complete and mirrored, and a passing verify.
        Step::Rollout => match state.phase {
            NotStarted | Prepared | DualWrite => first(
                next_forward(state.phase),
                "a rollout needs the dual-write, a complete backfill and a passing verify; ",
            ),
            Switched => Err(Error::Refused(
                "a rollout change refused: the flag is switched, so every organization is already on the \
                 partitioned tables; `rehearse cutover rollback` returns them all to legacy, after \
                 which a rollout may start again"
                    .into(),
            )),
            _ => match state.verified_now() {
                Some(v) if v.ok => Ok(Gate::Run),
                Some(v) => Err(Error::Refused(format!(
                    "a rollout change refused: the last verify ({}) found {} mismatching buckets; \
                     repair them, then run `rehearse cutover verify` again",
                    v.at, v.mismatching_buckets
                ))),
                None => first(Step::Verify, "a rollout needs a passing verify of this phase; "),
            },
        },
        Step::Finalize => match state.phase {
            Switched => match state.verified_now() {
                Some(v) if v.ok => Ok(Gate::Run),
                _ => first(
                    Step::Verify,
                    "finalize removes the way back, so it needs a passing verify after the switch; ",
                ),
            },
            RolledBack | Backfilled => first(
                if state.verified_now().is_some_and(|v| v.ok) {
                    Step::Switch
                } else {
                    Step::Verify
                },
                "finalize comes after the switch; ",
            ),
            p => first(next_forward(p), ""),
        },
    }
}

/// Options every step takes.
#[derive(Debug, Clone)]
pub struct StepOptions {
    /// Print the SQL and change nothing.
    pub dry_run: bool,
    pub locks: LockOptions,
    /// Hash partitions for `prepare` (default: rehearse_meta's count, else 64).
    pub partitions: Option<u32>,
    pub allow_destructive: Option<String>,
    /// Progress and step lines on stderr.
    pub verbose: bool,
}

impl Default for StepOptions {
    fn default() -> Self {
        StepOptions {
            dry_run: false,
            locks: LockOptions::default(),
            partitions: None,
            allow_destructive: None,
            verbose: true,
        }
    }
}

/// What a step did.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    pub step: Step,
    /// False when it was already done (or a dry run).
    pub ran: bool,
    pub phase: CutoverPhase,
    pub seconds: f64,
    pub summary: String,
    /// Lock acquisition and the writers it blocked, for steps that take locks.
    pub locks: Option<LockReport>,
    pub backfill: Option<backfill::BackfillReport>,
    pub verify: Option<verify::VerifyReport>,
}

impl StepReport {
    /// A step that ran, started at `started`.
    fn ran(step: Step, phase: CutoverPhase, started: Instant, summary: String) -> StepReport {
        StepReport {
            ran: true,
            seconds: started.elapsed().as_secs_f64(),
            ..StepReport::skipped(step, phase, summary)
        }
    }

    fn skipped(step: Step, phase: CutoverPhase, summary: String) -> StepReport {
        StepReport {
            step,
            ran: false,
            phase,
            seconds: 0.0,
            summary,
            locks: None,
            backfill: None,
            verify: None,
        }
    }
}

fn say(opts: &StepOptions, line: &str) {
    if opts.verbose {
        eprintln!("{line}");
    }
}

fn print_sql(step: Step, sql: &str) {
    println!(
        "-- cutover {step} --dry-run: the SQL it would run\n{}",
        sql.trim_end()
    );
}

/// Refuse a target that is not a rehearsal database, and one without the legacy tables.
pub(crate) async fn preflight(
    client: &Client,
    estate: &Estate,
    opts: &StepOptions,
    step: &str,
) -> Result<()> {
    schema::safety::ensure_rehearsal_target(
        client,
        estate,
        opts.allow_destructive.as_deref(),
        &format!("cutover {step}"),
    )
    .await?;
    let info = meta::require_known(client).await?;
    if !info.modes.contains(&Mode::Legacy) {
        return Err(Error::Refused(format!(
            "cutover {step} refused: database {} has no legacy finance tables to cut over from \
             (rehearse_meta lists {:?}); seed it with `rehearse seed --mode legacy`",
            info.database, info.modes
        )));
    }
    Ok(())
}

/// The first and last organization id (1, 0 when there is none).
pub(crate) async fn org_range(client: &impl GenericClient) -> Result<(i64, i64)> {
    let row = client
        .query_one(
            "SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM organizations",
            &[],
        )
        .await
        .db(|| "reading the organization range".into())?;
    Ok((row.get(0), row.get(1)))
}

/// Refuse to start a cutover into partitioned tables that already hold
/// entries (a `seed --mode both`): the backfill fills them.
pub(crate) async fn refuse_filled_partitioned(
    client: &impl GenericClient,
    database: &str,
    action: &str,
) -> Result<()> {
    let t = Mode::Partitioned.tables();
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.revenue])
        .await
        .db(|| "looking for the partitioned tables".into())?
        .get(0);
    if !exists {
        return Ok(());
    }
    let filled: bool = client
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {}) OR EXISTS (SELECT 1 FROM {})",
                t.revenue, t.expense
            ),
            &[],
        )
        .await
        .db(|| "looking into the partitioned tables".into())?
        .get(0);
    if filled {
        return Err(Error::Refused(format!(
            "{action} refused: the partitioned tables of {database} already hold entries, and a \
             cutover starts from empty ones (the backfill fills them); drop them with \
             `rehearse schema drop --mode partitioned`, or seed with `--mode legacy`"
        )));
    }
    Ok(())
}

/// How many of the 4 mirror triggers (2 per side) are in place.
pub async fn mirror_installed(client: &impl GenericClient) -> Result<i64> {
    let names: Vec<String> = DIRECTIONS.iter().map(|d| d.trigger.to_string()).collect();
    let tables: Vec<String> = [Mode::Legacy, Mode::Partitioned]
        .iter()
        .flat_map(|m| {
            [
                m.tables().revenue.to_string(),
                m.tables().expense.to_string(),
            ]
        })
        .collect();
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_trigger t \
              WHERE t.tgname = ANY($1) AND NOT t.tgisinternal AND t.tgparentid = 0 \
                AND t.tgrelid IN (SELECT to_regclass(x) FROM unnest($2::text[]) x)",
            &[&names, &tables],
        )
        .await
        .db(|| "looking for the mirror triggers".into())?;
    Ok(row.get(0))
}

/// `cutover prepare`: the partitioned tables, keys and summary triggers
/// next to the legacy ones, empty; the flag row set to legacy.
pub async fn prepare(
    client: &mut Client,
    estate: &Estate,
    opts: &StepOptions,
) -> Result<StepReport> {
    let step = Step::Prepare;
    preflight(client, estate, opts, step.name()).await?;
    let started = Instant::now();
    let info = meta::require_known(&*client).await?;
    let partitions = opts
        .partitions
        .or(info.partitions)
        .unwrap_or(schema::DEFAULT_PARTITIONS);
    let exists = info.modes.contains(&Mode::Partitioned);
    let ddl = format!(
        "{}\n{}\n{}",
        schema::mode_tables_sql(Mode::Partitioned, partitions),
        schema::mode_key_statements(Mode::Partitioned).join(";\n") + ";",
        schema::triggers_sql(Mode::Partitioned.tables(), info.trigger_variant)
    );
    let state = read_state(&*client).await?;
    if let Gate::Done(msg) = gate(&state, step)? {
        return Ok(StepReport::skipped(step, state.phase, msg));
    }
    if opts.dry_run {
        let triggers = format!(
            "-- the partitioned tables exist: their summary triggers are recreated\n{}",
            schema::triggers_sql(Mode::Partitioned.tables(), info.trigger_variant)
        );
        print_sql(step, if exists { &triggers } else { &ddl });
        return Ok(StepReport::skipped(step, state.phase, "dry run".into()));
    }
    say(
        opts,
        &format!(
            "cutover prepare: {} the partitioned tables ({partitions} hash partitions each) next to the legacy ones, and pin {} to legacy",
            if exists { "checking" } else { "creating" },
            routing::FLAG
        ),
    );
    let tx = schema::guarded_transaction(
        client,
        estate,
        opts.allow_destructive.as_deref(),
        "cutover prepare",
    )
    .await?;
    let mut state = lock_state(&tx).await?;
    if let Gate::Done(msg) = gate(&state, step)? {
        return Ok(StepReport::skipped(step, state.phase, msg));
    }
    if exists {
        refuse_filled_partitioned(&tx, &info.database, "cutover prepare").await?;
        // The summary triggers this rehearse writes (the backfill relies on
        // them standing aside for its set-based summaries), whatever built
        // the tables.
        tx.batch_execute(&schema::triggers_sql(
            Mode::Partitioned.tables(),
            info.trigger_variant,
        ))
        .await
        .db(|| "recreating the partitioned summary triggers".into())?;
    } else {
        tx.batch_execute(&ddl)
            .await
            .db(|| "creating the partitioned tables".into())?;
        let mut modes = info.modes.clone();
        modes.push(Mode::Partitioned);
        meta::set(
            &tx,
            "modes",
            &serde_json::to_value(&modes).expect("modes serialize"),
        )
        .await?;
        meta::set(&tx, "partitions", &partitions.into()).await?;
    }
    match routing::read_flag(&tx).await? {
        Some(Mode::Partitioned) => {
            return Err(Error::Refused(format!(
                "cutover prepare refused: feature_flags already says {}=true, so services would \
                 use the empty partitioned tables; set it back to legacy first",
                routing::FLAG
            )))
        }
        _ => routing::set_flag(&tx, Mode::Legacy).await?,
    }
    state.phase = CutoverPhase::Prepared;
    let summary = format!(
        "partitioned tables {} ({partitions} partitions); {} = legacy",
        if exists {
            "present and empty"
        } else {
            "created"
        },
        routing::FLAG
    );
    state.logged(step, started, summary.clone());
    write_state(&tx, &state).await?;
    tx.commit()
        .await
        .db(|| "committing cutover prepare".into())?;
    say(opts, &format!("cutover prepare: done: {summary}"));
    Ok(StepReport::ran(step, state.phase, started, summary))
}

/// `cutover dual-write`: the mirror, both directions, in one transaction
/// taken with `lock_timeout` and retried.
pub async fn dual_write(
    client: &mut Client,
    estate: &Estate,
    opts: &StepOptions,
) -> Result<StepReport> {
    let step = Step::DualWrite;
    preflight(client, estate, opts, step.name()).await?;
    let state = read_state(&*client).await?;
    let repair = state.phase.mirrored() && mirror_installed(&*client).await? < 4;
    if !repair {
        if let Gate::Done(msg) = gate(&state, step)? {
            return Ok(StepReport::skipped(step, state.phase, msg));
        }
    }
    let mut sql = String::new();
    for d in DIRECTIONS {
        sql.push_str(&d.function_sql());
        sql.push('\n');
    }
    let mut ddl = String::new();
    for d in DIRECTIONS {
        ddl.push_str(&d.drop_sql());
        ddl.push_str(&d.triggers_sql());
    }
    if opts.dry_run {
        print_sql(step, &format!("{sql}\n{ddl}"));
        return Ok(StepReport::skipped(step, state.phase, "dry run".into()));
    }
    say(
        opts,
        &format!(
            "cutover dual-write: {} the mirror on the entry tables of both sides (legacy -> partitioned now, partitioned -> legacy for after the switch); lock_timeout {} ms, up to {} attempts",
            if repair { "re-installing missing parts of" } else { "installing" },
            opts.locks.lock_timeout.as_millis(),
            opts.locks.attempts
        ),
    );
    let started = Instant::now();
    // The functions first: CREATE FUNCTION locks no table.
    client
        .batch_execute(&sql)
        .await
        .db(|| "creating the mirror functions".into())?;
    let expect = if repair {
        state.phase
    } else {
        CutoverPhase::Prepared
    };
    let locks = locks::ddl_step(client, &estate.primary.url, &ddl, &opts.locks, |state| {
        if state.phase != expect {
            return Err(Error::Refused(format!(
                "cutover dual-write: the estate moved to {} meanwhile; run `rehearse cutover status`",
                state.phase
            )));
        }
        if !repair {
            state.phase = CutoverPhase::DualWrite;
        }
        Ok(())
    })
    .await?;
    let summary = format!("mirror on (4 triggers); {}", locks.describe());
    log_step(client, step, started, &summary).await?;
    say(opts, &format!("cutover dual-write: done: {summary}"));
    Ok(StepReport {
        locks: Some(locks),
        ..StepReport::ran(
            step,
            if repair {
                state.phase
            } else {
                CutoverPhase::DualWrite
            },
            started,
            summary,
        )
    })
}

/// Append a line to the step log.
async fn log_step(client: &mut Client, step: Step, started: Instant, outcome: &str) -> Result<()> {
    let tx = client
        .transaction()
        .await
        .db(|| "beginning the step log update".into())?;
    let mut state = lock_state(&tx).await?;
    state.logged(step, started, outcome.to_string());
    write_state(&tx, &state).await?;
    tx.commit().await.db(|| "committing the step log".into())
}

/// `cutover switch` (to partitioned) and `cutover rollback` (to legacy): flip
/// the flag in one short transaction. The mirror already runs both ways.
pub async fn flip(
    client: &mut Client,
    estate: &Estate,
    to: Mode,
    opts: &StepOptions,
) -> Result<StepReport> {
    let step = match to {
        Mode::Partitioned => Step::Switch,
        Mode::Legacy => Step::Rollback,
    };
    preflight(client, estate, opts, step.name()).await?;
    let state = read_state(&*client).await?;
    if let Gate::Done(msg) = gate(&state, step)? {
        return Ok(StepReport::skipped(step, state.phase, msg));
    }
    let mut flag_sql = format!(
        "INSERT INTO feature_flags (name, enabled) VALUES ('{}', {}) \
         ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now();",
        routing::FLAG,
        to == Mode::Partitioned
    );
    if to == Mode::Legacy {
        // A rollback returns every organization to legacy: a rollout the
        // switch overrode would otherwise come back into force.
        flag_sql.push_str(&format!(
            "\nDO $$ BEGIN IF to_regclass('feature_flag_rollouts') IS NOT NULL THEN \
             UPDATE feature_flag_rollouts SET basis_points = 0, allow_orgs = '{{}}', updated_at = now() \
             WHERE name = '{}'; END IF; END $$;",
            routing::FLAG
        ));
    }
    if opts.dry_run {
        print_sql(step, &flag_sql);
        return Ok(StepReport::skipped(step, state.phase, "dry run".into()));
    }
    let installed = mirror_installed(&*client).await?;
    if installed < 4 {
        return Err(Error::Refused(format!(
            "cutover {step} refused: only {installed} of the 4 mirror triggers are in place, so the \
             side left behind would go stale; run `rehearse cutover dual-write` to re-install them"
        )));
    }
    say(
        opts,
        &format!(
            "cutover {step}: setting {}={} (services re-read it within {} ms; writes meanwhile are mirrored both ways)",
            routing::FLAG,
            to == Mode::Partitioned,
            crate::repo::DEFAULT_FLAG_TTL.as_millis()
        ),
    );
    let started = Instant::now();
    let from = state.phase;
    let locks = locks::ddl_step(client, &estate.primary.url, &flag_sql, &opts.locks, |s| {
        gate(s, step).and_then(|g| match g {
            Gate::Run => {
                s.phase = match to {
                    Mode::Partitioned => CutoverPhase::Switched,
                    Mode::Legacy => CutoverPhase::RolledBack,
                };
                Ok(())
            }
            Gate::Done(m) => Err(Error::Refused(format!(
                "cutover {step}: {m} (changed meanwhile)"
            ))),
        })
    })
    .await?;
    let phase = read_state(&*client).await?.phase;
    let summary = format!(
        "{from} -> {phase}; {} = {to}; {}",
        routing::FLAG,
        locks.describe()
    );
    log_step(client, step, started, &summary).await?;
    say(opts, &format!("cutover {step}: done: {summary}"));
    Ok(StepReport {
        locks: Some(locks),
        ..StepReport::ran(step, phase, started, summary)
    })
}

/// `cutover finalize`: remove the mirror. The legacy tables stay until an
/// explicit `rehearse schema drop --mode legacy`.
pub async fn finalize(
    client: &mut Client,
    estate: &Estate,
    opts: &StepOptions,
) -> Result<StepReport> {
    let step = Step::Finalize;
    preflight(client, estate, opts, step.name()).await?;
    let state = read_state(&*client).await?;
    if let Gate::Done(msg) = gate(&state, step)? {
        return Ok(StepReport::skipped(step, state.phase, msg));
    }
    let ddl: String = DIRECTIONS.iter().map(|d| d.drop_sql()).collect();
    if opts.dry_run {
        print_sql(step, &ddl);
        return Ok(StepReport::skipped(step, state.phase, "dry run".into()));
    }
    say(
        opts,
        &format!(
            "cutover finalize: removing the mirror (DROP TRIGGER takes an ACCESS EXCLUSIVE lock per table; lock_timeout {} ms, up to {} attempts); legacy tables are kept",
            opts.locks.lock_timeout.as_millis(),
            opts.locks.attempts
        ),
    );
    let started = Instant::now();
    let locks = locks::ddl_step(client, &estate.primary.url, &ddl, &opts.locks, |s| {
        if s.phase != CutoverPhase::Switched {
            return Err(Error::Refused(format!(
                "cutover finalize: the estate moved to {} meanwhile",
                s.phase
            )));
        }
        s.phase = CutoverPhase::Finalized;
        Ok(())
    })
    .await?;
    let summary = format!(
        "mirror removed; legacy tables kept (drop them with `rehearse schema drop --mode legacy`); {}",
        locks.describe()
    );
    log_step(client, step, started, &summary).await?;
    say(opts, &format!("cutover finalize: done: {summary}"));
    Ok(StepReport {
        locks: Some(locks),
        ..StepReport::ran(step, CutoverPhase::Finalized, started, summary)
    })
}

/// `cutover reset`: back to before the cutover: the mirror and the
/// partitioned tables dropped, the flag set to legacy, the state cleared.
pub async fn reset(client: &mut Client, estate: &Estate, opts: &StepOptions) -> Result<()> {
    // CASCADE drops every trigger that calls a mirror function, whatever it is named.
    let ddl: String = DIRECTIONS
        .iter()
        .map(|d| format!("DROP FUNCTION IF EXISTS {}() CASCADE;\n", d.function))
        .collect();
    if opts.dry_run {
        println!("-- cutover reset --dry-run\n{ddl}-- then: rehearse schema drop --mode partitioned; {}=false; rehearse_meta key {META_KEY} deleted", routing::FLAG);
        return Ok(());
    }
    preflight(client, estate, opts, "reset").await?;
    say(
        opts,
        "cutover reset: dropping the mirror and the partitioned tables, setting the flag to legacy",
    );
    client
        .batch_execute(&ddl)
        .await
        .db(|| "dropping the mirror".into())?;
    schema::drop_schema(
        client,
        estate,
        &schema::DropOptions {
            modes: schema::Modes::Partitioned,
            allow_destructive: opts.allow_destructive.clone(),
        },
    )
    .await?;
    routing::set_flag(&*client, Mode::Legacy).await?;
    client
        .execute("DELETE FROM rehearse_meta WHERE key = $1", &[&META_KEY])
        .await
        .db(|| "clearing the cutover state".into())?;
    Ok(())
}

/// `cutover status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub database: String,
    pub phase: CutoverPhase,
    pub flag: Option<Mode>,
    pub authoritative: Mode,
    /// Mirror triggers in place, of 4.
    pub mirror_triggers: i64,
    pub state: State,
    /// The step to run next on the forward path, if any.
    pub next: Option<String>,
}

pub async fn status(client: &Client) -> Result<Status> {
    let info = meta::require_known(client).await?;
    let state = read_state(client).await?;
    let flag = routing::read_flag(client).await?;
    let mirror_triggers = if info.modes.contains(&Mode::Partitioned) {
        mirror_installed(client).await?
    } else {
        0
    };
    let next = match state.phase {
        CutoverPhase::NotStarted => Some(Step::Prepare),
        CutoverPhase::Prepared => Some(Step::DualWrite),
        CutoverPhase::DualWrite => Some(Step::Backfill),
        CutoverPhase::Backfilled | CutoverPhase::RolledBack => Some(match state.verified_now() {
            Some(v) if v.ok => Step::Switch,
            _ => Step::Verify,
        }),
        CutoverPhase::Switched => Some(match state.verified_now() {
            Some(v) if v.ok => Step::Finalize,
            _ => Step::Verify,
        }),
        CutoverPhase::Finalized => None,
    }
    .map(|s| s.command());
    Ok(Status {
        database: info.database,
        phase: state.phase,
        flag,
        authoritative: state.phase.authoritative(),
        mirror_triggers,
        state,
        next,
    })
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database       {}", self.database)?;
        writeln!(f, "phase          {}", self.phase)?;
        writeln!(
            f,
            "flag           {}",
            match self.flag {
                Some(m) => format!("{}={} ({m})", routing::FLAG, m == Mode::Partitioned),
                None => format!(
                    "{} not set in feature_flags (services use their environment)",
                    routing::FLAG
                ),
            }
        )?;
        writeln!(f, "authoritative  {}", self.authoritative)?;
        writeln!(
            f,
            "mirror         {} of 4 triggers{}",
            self.mirror_triggers,
            if self.phase.mirrored() && self.mirror_triggers < 4 {
                " (INCOMPLETE: run `rehearse cutover dual-write` to repair)"
            } else {
                ""
            }
        )?;
        if let Some(b) = &self.state.backfill {
            let total = (b.last_org - b.first_org + 1).max(1);
            let done = (b.next_org - b.first_org).clamp(0, total);
            writeln!(
                f,
                "backfill       organizations {}..{}: {} of {} done ({:.0}%), {} rows in {} batches, {:.1} s",
                b.first_org,
                b.last_org,
                done,
                total,
                done as f64 * 100.0 / total as f64,
                crate::progress::thousands(b.rows),
                b.batches,
                b.seconds
            )?;
        }
        if let Some(v) = &self.state.verified {
            writeln!(
                f,
                "last verify    {} at {} on phase {}{}",
                if v.ok { "PASS" } else { "FAIL" },
                v.at,
                v.phase,
                if v.phase != self.phase {
                    " (stale: the estate moved since)"
                } else {
                    ""
                }
            )?;
        }
        if let Some(n) = &self.next {
            writeln!(f, "next           {n}")?;
        }
        if !self.state.log.is_empty() {
            writeln!(f, "\nstep log")?;
            for e in &self.state.log {
                writeln!(
                    f,
                    "  {}  {:<10} {:>8.2} s  {}",
                    e.at,
                    e.step.name(),
                    e.seconds,
                    e.outcome
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(phase: CutoverPhase, verified: Option<(bool, CutoverPhase)>) -> State {
        State {
            phase,
            verified: verified.map(|(ok, phase)| Verified {
                ok,
                phase,
                at: "t".into(),
                mismatching_buckets: usize::from(!ok),
            }),
            ..Default::default()
        }
    }

    /// The refusal's message, which must name the command to run first.
    fn refused(state: &State, step: Step) -> String {
        match gate(state, step) {
            Err(e) => {
                assert_eq!(e.exit_code(), crate::exit::REFUSED, "{e}");
                e.to_string()
            }
            Ok(Gate::Run) => panic!("{step} ran in {}", state.phase),
            Ok(Gate::Done(m)) => panic!("{step} was done in {}: {m}", state.phase),
        }
    }

    #[test]
    fn the_forward_path_runs_each_step_once_in_order() {
        let mut s = State::default();
        for (step, next) in [
            (Step::Prepare, CutoverPhase::Prepared),
            (Step::DualWrite, CutoverPhase::DualWrite),
            (Step::Backfill, CutoverPhase::Backfilled),
        ] {
            assert!(
                matches!(gate(&s, step), Ok(Gate::Run)),
                "{step} in {}",
                s.phase
            );
            s.phase = next;
            assert!(matches!(gate(&s, step), Ok(Gate::Done(_))), "{step} twice");
        }
        assert!(refused(&s, Step::Switch).contains("`rehearse cutover verify`"));
        s.verified = at(
            CutoverPhase::Backfilled,
            Some((true, CutoverPhase::Backfilled)),
        )
        .verified;
        assert!(matches!(gate(&s, Step::Switch), Ok(Gate::Run)));
        s.phase = CutoverPhase::Switched;
        // The verify of the backfilled phase does not count after the switch.
        assert!(refused(&s, Step::Finalize).contains("`rehearse cutover verify`"));
        assert!(matches!(gate(&s, Step::Rollback), Ok(Gate::Run)));
        s.verified = at(CutoverPhase::Switched, Some((true, CutoverPhase::Switched))).verified;
        assert!(matches!(gate(&s, Step::Finalize), Ok(Gate::Run)));
    }

    #[test]
    fn steps_out_of_order_name_the_step_to_run_first() {
        let cases = [
            (
                at(CutoverPhase::NotStarted, None),
                Step::DualWrite,
                "prepare",
            ),
            (at(CutoverPhase::NotStarted, None), Step::Switch, "prepare"),
            (
                at(CutoverPhase::Prepared, None),
                Step::Backfill,
                "dual-write",
            ),
            (at(CutoverPhase::Prepared, None), Step::Verify, "dual-write"),
            (at(CutoverPhase::DualWrite, None), Step::Verify, "backfill"),
            (at(CutoverPhase::DualWrite, None), Step::Switch, "backfill"),
            (at(CutoverPhase::Backfilled, None), Step::Rollback, "switch"),
            (
                at(
                    CutoverPhase::Backfilled,
                    Some((true, CutoverPhase::Backfilled)),
                ),
                Step::Finalize,
                "switch",
            ),
            (
                at(
                    CutoverPhase::RolledBack,
                    Some((true, CutoverPhase::Switched)),
                ),
                Step::Switch,
                "verify",
            ),
            (
                at(CutoverPhase::Prepared, None),
                Step::Finalize,
                "dual-write",
            ),
        ];
        for (state, step, first) in cases {
            let msg = refused(&state, step);
            assert!(
                msg.contains(&format!("`rehearse cutover {first}`")),
                "{step} in {}: {msg}",
                state.phase
            );
        }
    }

    #[test]
    fn a_failed_verify_blocks_the_switch_and_finalize_ends_the_way_back() {
        let failed = at(
            CutoverPhase::Backfilled,
            Some((false, CutoverPhase::Backfilled)),
        );
        assert!(refused(&failed, Step::Switch).contains("mismatching"));
        let done = at(CutoverPhase::Finalized, None);
        assert!(refused(&done, Step::Rollback).contains("finalized"));
        assert!(refused(&done, Step::Verify).contains("finalized"));
        assert!(matches!(gate(&done, Step::Prepare), Ok(Gate::Done(_))));
    }

    #[test]
    fn the_mirror_sql_names_each_side_and_fires_after_the_summary_trigger() {
        for d in DIRECTIONS {
            let f = d.function_sql();
            let t = d.triggers_sql();
            assert!(!f.contains("{{") && !t.contains("{{"));
            assert!(f.contains(d.to.tables().revenue) && f.contains(d.to.tables().expense));
            assert!(t.contains(&format!("ON {}", d.from.tables().revenue)));
            // Row triggers fire in name order: after summary_maintenance.
            assert!(d.trigger > "summary_maintenance", "{}", d.trigger);
        }
    }
}
