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
//!
//! `state.rs` holds the phases, the state and the gate that refuses a step
//! out of order; `steps.rs` the steps that change the estate; `backfill.rs`,
//! `verify.rs`, `locks.rs` and `race.rs` the rest; `drill.rs` the drill.

pub mod backfill;
pub mod drill;
pub mod locks;
pub mod race;
mod state;
mod steps;
pub mod verify;

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::Result;
use crate::repo::routing;
use crate::schema::{meta, Mode};

pub use locks::{LockOptions, LockReport};
pub use state::*;
pub use steps::*;

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
