//! Which mode's tables a call uses. The mode comes from
//! `USE_PARTITIONED_TABLES` in the environment and, while the process runs,
//! from the `feature_flags` row of the same name, read with a short cache
//! so the cutover can flip it under load without a restart.
//!
//! A call takes one snapshot of the mode when it starts and uses it for
//! every statement it runs (and for its cache key), so no call mixes modes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_postgres::types::Type;
use tokio_postgres::GenericClient;

use super::conn::{Exec, Target};
use crate::error::{DbContext, Error, Result};
use crate::schema::Mode;

/// The flag's name, in the environment and in `feature_flags`.
pub const FLAG: &str = "USE_PARTITIONED_TABLES";

const READ_FLAG: &str = "SELECT enabled FROM feature_flags WHERE name = $1";
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
    forced: Option<Mode>,
    /// The mode when no flag row exists: the environment's.
    default: Mode,
    ttl: Duration,
    cached: Mutex<Option<(Mode, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
    read_errors: AtomicU64,
}

impl ModeSource {
    pub fn new(forced: Option<Mode>, default: Mode, ttl: Duration) -> ModeSource {
        ModeSource {
            forced,
            default,
            ttl,
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            read_errors: AtomicU64::new(0),
        }
    }

    fn fresh(&self) -> Option<Mode> {
        let c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        c.filter(|(_, at)| at.elapsed() < self.ttl).map(|(m, _)| m)
    }

    /// The mode for a call starting now. A failed read of the flag keeps the
    /// last mode known (counted), so a primary hiccup never flips the mode.
    pub async fn current(&self, primary: &Target) -> Mode {
        if let Some(m) = self.forced {
            return m;
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
            match conn
                .run(primary.statements, READ_FLAG, &[(&FLAG, Type::TEXT)])
                .await
            {
                Ok(rows) => Ok(rows.first().map(|r| mode_of(r.get(0)))),
                Err(e) if is_undefined_table(&e) => Ok(None),
                Err(e) => Err(e).db(|| format!("reading {FLAG} from feature_flags")),
            }
        };
        let mode = match read.await {
            Ok(row) => row.unwrap_or(self.default),
            Err(_) => {
                self.read_errors.fetch_add(1, Ordering::Relaxed);
                let last = *self.cached.lock().unwrap_or_else(|e| e.into_inner());
                last.map(|(m, _)| m).unwrap_or(self.default)
            }
        };
        // A failed read also waits a TTL before the next attempt, so an
        // unreachable primary does not put a connect timeout on every call.
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((mode, Instant::now()));
        mode
    }

    /// Failed reads of the flag so far.
    pub fn read_errors(&self) -> u64 {
        self.read_errors.load(Ordering::Relaxed)
    }

    pub fn forced(&self) -> Option<Mode> {
        self.forced
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
