//! The playbook's steps that change the estate: prepare, dual-write, the
//! flag flips (switch, rollback), finalize and reset, each recorded in the
//! state; the backfill and verify have files of their own.

use std::time::Instant;

use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

use super::*;
use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::repo::routing;
use crate::schema::{self, meta, Mode};

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
    pub(super) fn ran(
        step: Step,
        phase: CutoverPhase,
        started: Instant,
        summary: String,
    ) -> StepReport {
        StepReport {
            ran: true,
            seconds: started.elapsed().as_secs_f64(),
            ..StepReport::skipped(step, phase, summary)
        }
    }

    pub(super) fn skipped(step: Step, phase: CutoverPhase, summary: String) -> StepReport {
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

pub(super) fn say(opts: &StepOptions, line: &str) {
    if opts.verbose {
        eprintln!("{line}");
    }
}

pub(super) fn print_sql(step: Step, sql: &str) {
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
pub(super) async fn log_step(
    client: &mut Client,
    step: Step,
    started: Instant,
    outcome: &str,
) -> Result<()> {
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
