//! The guard in front of every destructive command: act only on the embedded
//! lab, on a database that already carries `rehearse_meta`, or on the
//! database the user named with `--allow-destructive`.

use tokio_postgres::GenericClient;

use super::meta::has_meta;
use crate::error::{Error, Result};
use crate::estate::Estate;

/// Why a database may be written to destructively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    Lab,
    RehearsalDatabase,
    NamedByUser,
}

/// Allow or refuse a destructive `action` on the estate's primary.
pub async fn ensure_rehearsal_target(
    client: &impl GenericClient,
    estate: &Estate,
    allow_destructive: Option<&str>,
    action: &str,
) -> Result<Permit> {
    if estate.primary_is_lab() {
        return Ok(Permit::Lab);
    }
    if has_meta(client).await? {
        return Ok(Permit::RehearsalDatabase);
    }
    let database = crate::db::current_database(client).await?;
    match allow_destructive {
        Some(name) if name == database => Ok(Permit::NamedByUser),
        Some(name) => Err(Error::Refused(format!(
            "--allow-destructive names database {name:?}, but {} connects to database \
             {database:?}; nothing was changed",
            estate.primary
        ))),
        None => Err(Error::Refused(format!(
            "{action} would change database {database:?} at {}, which is not a rehearsal \
             target: it is not the embedded lab and has no rehearse_meta table. If this \
             database is meant for rehearsals, pass --allow-destructive {database}",
            estate.primary
        ))),
    }
}
