//! Which mode's tables a call uses. The mode comes from
//! `USE_PARTITIONED_TABLES` in the environment and, while the process runs,
//! from the `feature_flags` row of the same name, read with a short cache
//! so the cutover can flip it under load without a restart.
//!
//! The flag may carry a rollout (issue 17): a row of
//! `feature_flag_rollouts` with a percentage in basis points, a salt, an
//! allow list and a deny list. While the flag is false, an organization's
//! calls use the partitioned tables when [`Rollout::partitioned`] says so.
//! Calls that span organizations (the portfolio) use the flag's own mode:
//! legacy until `cutover switch`. Under dual-write both sides are complete,
//! so the legacy side is a correct answer for every cohort at once.
//!
//! A call takes one snapshot of the flag when it starts and uses it for
//! every statement it runs (and for its cache key), so no call mixes modes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

use super::conn::{Exec, Target};
use crate::error::{DbContext, Error, Result};
use crate::repo::cohort::Rollout;
use crate::schema::Mode;

/// The flag's name, in the environment and in `feature_flags`.
pub const FLAG: &str = "USE_PARTITIONED_TABLES";

const READ_FLAG: &str = "SELECT enabled FROM feature_flags WHERE name = $1";
/// The flag with its rollout, when the rollout table exists.
const READ_FLAG_ROLLOUT: &str = "\
SELECT f.enabled, r.basis_points, r.salt, r.allow_orgs, r.deny_orgs
  FROM feature_flags f LEFT JOIN feature_flag_rollouts r ON r.name = f.name
 WHERE f.name = $1";

/// What the flag says at one moment: a snapshot a call routes by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlagState {
    /// The flag itself: true sends every call to the partitioned tables.
    pub enabled: bool,
    /// While the flag is false: the organizations already partitioned.
    pub rollout: Option<Rollout>,
}

impl FlagState {
    /// Everyone on one side.
    pub fn all(mode: Mode) -> FlagState {
        FlagState {
            enabled: mode == Mode::Partitioned,
            rollout: None,
        }
    }

    /// The flag's own mode: what calls that span organizations use.
    pub fn global(&self) -> Mode {
        mode_of(self.enabled)
    }

    /// The mode of a call for `org`, or of a call spanning organizations (None).
    pub fn mode_for(&self, org: Option<i64>) -> Mode {
        match (self.enabled, org, &self.rollout) {
            (true, _, _) => Mode::Partitioned,
            (false, Some(o), Some(r)) if r.partitioned(o) => Mode::Partitioned,
            _ => Mode::Legacy,
        }
    }
}

/// Read the flag and its rollout on any client; None when there is no flag
/// row (or no `feature_flags` table).
pub async fn read_flag_state(client: &impl GenericClient) -> Result<Option<FlagState>> {
    match client.query_opt(READ_FLAG_ROLLOUT, &[&FLAG]).await {
        Ok(row) => row.map(|r| flag_state_of(&r)).transpose(),
        Err(e) if is_undefined_table(&e) => Ok(read_flag(client).await?.map(FlagState::all)),
        Err(e) => Err(e).db(|| format!("reading {FLAG} and its rollout")),
    }
}

fn flag_state_of(r: &tokio_postgres::Row) -> Result<FlagState> {
    let enabled: bool = r.get(0);
    let bp: Option<i32> = r.get(1);
    let rollout = match bp {
        None => None,
        Some(bp) => Some(Rollout {
            basis_points: u16::try_from(bp)
                .ok()
                .filter(|b| *b <= crate::repo::cohort::ALL)
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "the rollout of {FLAG} holds {bp} basis points, outside 0..=10000"
                    ))
                })?,
            salt: r.get(2),
            allow: r.get::<_, Vec<i64>>(3).into_iter().collect(),
            deny: r.get::<_, Vec<i64>>(4).into_iter().collect(),
        }),
    };
    Ok(FlagState { enabled, rollout })
}
const WRITE_FLAG: &str = "\
INSERT INTO feature_flags (name, enabled) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()";

/// The mode a value of `USE_PARTITIONED_TABLES` selects; unset or empty is legacy.
pub fn mode_from_env_value(value: Option<&str>) -> Result<Mode> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") | Some("no") | Some("off") => Ok(Mode::Legacy),
        Some("true") | Some("1") | Some("yes") | Some("on") => Ok(Mode::Partitioned),
        Some(other) => Err(Error::Usage(format!(
            "{FLAG}={other:?} is not a boolean; use true or false"
        ))),
    }
}

/// The mode the process environment selects.
pub fn mode_from_env() -> Result<Mode> {
    mode_from_env_value(std::env::var(FLAG).ok().as_deref())
}

/// Set the flag row (the table comes with `rehearse schema create`).
pub async fn set_flag(client: &impl GenericClient, mode: Mode) -> Result<()> {
    client
        .execute(WRITE_FLAG, &[&FLAG, &(mode == Mode::Partitioned)])
        .await
        .db(|| format!("setting {FLAG} in feature_flags"))?;
    Ok(())
}

/// The flag row, if the table and the row exist.
pub async fn read_flag(client: &impl GenericClient) -> Result<Option<Mode>> {
    match client.query_opt(READ_FLAG, &[&FLAG]).await {
        Ok(row) => Ok(row.map(|r| mode_of(r.get(0)))),
        Err(e) if is_undefined_table(&e) => Ok(None),
        Err(e) => Err(e).db(|| format!("reading {FLAG} from feature_flags")),
    }
}

fn mode_of(enabled: bool) -> Mode {
    if enabled {
        Mode::Partitioned
    } else {
        Mode::Legacy
    }
}

fn is_undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

/// Where a process's mode comes from.
pub struct ModeSource {
    /// A mode fixed for this process (`rehearse query --mode`); the flag is not read.
    forced: Option<Arc<FlagState>>,
    /// The state when no flag row exists: the environment's mode for everyone.
    default: Arc<FlagState>,
    ttl: Duration,
    cached: Mutex<Option<(Arc<FlagState>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
    read_errors: AtomicU64,
}

impl ModeSource {
    pub fn new(forced: Option<Mode>, default: Mode, ttl: Duration) -> ModeSource {
        ModeSource {
            forced: forced.map(|m| Arc::new(FlagState::all(m))),
            default: Arc::new(FlagState::all(default)),
            ttl,
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            read_errors: AtomicU64::new(0),
        }
    }

    fn fresh(&self) -> Option<Arc<FlagState>> {
        let c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        c.as_ref()
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(m, _)| m.clone())
    }

    /// The flag for a call starting now. A failed read of the flag keeps the
    /// last state known (counted), so a primary hiccup never flips a mode.
    pub async fn current(&self, primary: &Target) -> Arc<FlagState> {
        if let Some(m) = &self.forced {
            return m.clone();
        }
        if let Some(m) = self.fresh() {
            return m;
        }
        // One reader refreshes; the others wait for it and take its answer.
        let _guard = self.refresh.lock().await;
        if let Some(m) = self.fresh() {
            return m;
        }
        let read = async {
            let conn = primary.get().await?;
            let params = [(
                &FLAG as &(dyn tokio_postgres::types::ToSql + Sync),
                Type::TEXT,
            )];
            match conn
                .run(primary.statements, READ_FLAG_ROLLOUT, &params)
                .await
            {
                Ok(rows) => rows.first().map(flag_state_of).transpose(),
                // An estate from before rollouts: the flag alone.
                Err(e) if is_undefined_table(&e) => {
                    match conn.run(primary.statements, READ_FLAG, &params).await {
                        Ok(rows) => Ok(rows.first().map(|r| FlagState::all(mode_of(r.get(0))))),
                        Err(e) if is_undefined_table(&e) => Ok(None),
                        Err(e) => Err(e).db(|| format!("reading {FLAG} from feature_flags")),
                    }
                }
                Err(e) => Err(e).db(|| format!("reading {FLAG} and its rollout")),
            }
        };
        let state = match read.await {
            Ok(row) => row.map(Arc::new).unwrap_or_else(|| self.default.clone()),
            Err(_) => {
                self.read_errors.fetch_add(1, Ordering::Relaxed);
                let last = self
                    .cached
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                last.map(|(m, _)| m).unwrap_or_else(|| self.default.clone())
            }
        };
        // A failed read also waits a TTL before the next attempt, so an
        // unreachable primary does not put a connect timeout on every call.
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((state.clone(), Instant::now()));
        state
    }

    /// Failed reads of the flag so far.
    pub fn read_errors(&self) -> u64 {
        self.read_errors.load(Ordering::Relaxed)
    }

    pub fn forced(&self) -> Option<Mode> {
        self.forced.as_ref().map(|f| f.global())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse_as_booleans_and_nonsense_is_refused() {
        assert_eq!(mode_from_env_value(None).unwrap(), Mode::Legacy);
        assert_eq!(mode_from_env_value(Some("")).unwrap(), Mode::Legacy);
        assert_eq!(mode_from_env_value(Some("False")).unwrap(), Mode::Legacy);
        assert_eq!(
            mode_from_env_value(Some("true")).unwrap(),
            Mode::Partitioned
        );
        assert_eq!(mode_from_env_value(Some(" 1 ")).unwrap(), Mode::Partitioned);
        let err = mode_from_env_value(Some("partitioned")).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::USAGE);
        assert!(err.to_string().contains(FLAG), "{err}");
    }
}
