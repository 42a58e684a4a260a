//! `rehearse_meta`: what a rehearsal database holds, and the version check
//! every command makes before it trusts the schema.

use serde::Serialize;
use tokio_postgres::GenericClient;

use super::{Mode, TriggerVariant, SCHEMA_VERSION};
use crate::error::{DbContext, Error, Result};

/// The schema facts recorded in `rehearse_meta`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SchemaInfo {
    pub database: String,
    pub version: i64,
    pub modes: Vec<Mode>,
    pub partitions: Option<u32>,
    pub trigger_variant: TriggerVariant,
}

/// Whether the connected database has a `rehearse_meta` table.
pub async fn has_meta(client: &impl GenericClient) -> Result<bool> {
    let row = client
        .query_one("SELECT to_regclass('rehearse_meta') IS NOT NULL", &[])
        .await
        .db(|| "looking for rehearse_meta".into())?;
    Ok(row.get(0))
}

/// Read one key of `rehearse_meta`.
pub async fn get(client: &impl GenericClient, key: &str) -> Result<Option<serde_json::Value>> {
    let row = client
        .query_opt("SELECT value FROM rehearse_meta WHERE key = $1", &[&key])
        .await
        .db(|| format!("reading rehearse_meta key {key}"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Write one key of `rehearse_meta`.
pub async fn set(client: &impl GenericClient, key: &str, value: &serde_json::Value) -> Result<()> {
    client
        .execute(
            "INSERT INTO rehearse_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            &[&key, value],
        )
        .await
        .db(|| format!("writing rehearse_meta key {key}"))?;
    Ok(())
}

/// Read what `rehearse_meta` says, without judging it. None when the table
/// is absent.
pub async fn read(client: &impl GenericClient) -> Result<Option<SchemaInfo>> {
    if !has_meta(client).await? {
        return Ok(None);
    }
    let database: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .db(|| "reading current_database()".into())?
        .get(0);
    let version = get(client, "schema_version")
        .await?
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let modes = get(client, "modes")
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let partitions = get(client, "partitions")
        .await?
        .and_then(|v| v.as_u64())
        .map(|n| n as u32);
    let trigger_variant = get(client, "trigger_variant")
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(TriggerVariant::Hardened);
    Ok(Some(SchemaInfo {
        database,
        version,
        modes,
        partitions,
        trigger_variant,
    }))
}

/// What `rehearse_meta` says (None when absent), refusing a schema version
/// this rehearse does not know: what a command that rebuilds the schema reads.
pub async fn read_checked(client: &impl GenericClient) -> Result<Option<SchemaInfo>> {
    let info = read(client).await?;
    if let Some(i) = &info {
        check_version(i)?;
    }
    Ok(info)
}

/// The schema, when this rehearse knows its version; otherwise a refusal
/// that says what to run.
pub async fn require_known(client: &impl GenericClient) -> Result<SchemaInfo> {
    let database: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .db(|| "reading current_database()".into())?
        .get(0);
    let info = read(client).await?.ok_or_else(|| {
        Error::Refused(format!(
            "database {database} has no rehearse schema (no rehearse_meta table); create it with \
             `rehearse schema create --mode both`"
        ))
    })?;
    check_version(&info)?;
    Ok(info)
}

/// Refuse a schema version this rehearse does not know.
pub fn check_version(info: &SchemaInfo) -> Result<()> {
    if info.version != SCHEMA_VERSION {
        return Err(Error::Refused(format!(
            "database {} has rehearse schema version {}, and this rehearse knows version \
             {SCHEMA_VERSION} only; use the rehearse that created it, or recreate it with \
             `rehearse schema drop` then `rehearse schema create --mode both`",
            info.database, info.version
        )));
    }
    Ok(())
}
