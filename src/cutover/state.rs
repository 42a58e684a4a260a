//! Where the estate stands in the playbook: the steps, the phases they
//! move it through, the state kept in `rehearse_meta`, and which step may
//! run now (the gate).

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use super::*;
use crate::error::{DbContext, Error, Result};
use crate::schema::{meta, Mode};

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

crate::named!("step", Step {
    Prepare = "prepare",
    DualWrite = "dual-write",
    Backfill = "backfill",
    Verify = "verify",
    Switch = "switch",
    Rollback = "rollback",
    Finalize = "finalize",
    Rollout = "rollout",
});

impl Step {
    /// How an operator runs it.
    pub fn command(self) -> String {
        match self {
            Step::Rollout => "rehearse rollout widen".into(),
            _ => format!("rehearse cutover {}", self.name()),
        }
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
    pub(super) fn verified_now(&self) -> Option<&Verified> {
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
