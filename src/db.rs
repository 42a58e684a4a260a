//! Opening PostgreSQL connections: one place that parses a URL, sets the
//! defaults rehearse relies on, and drives the connection task.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

use crate::error::{DbContext, Error, Result};
use crate::estate::redact;

/// Parse a connection URL or key=value string, with a connect timeout and an
/// application name unless the URL sets them.
pub fn config(url: &str) -> Result<Config> {
    let mut cfg: Config = url.parse().map_err(|e| {
        Error::Usage(format!(
            "cannot parse the connection string {}: {e}",
            redact(url)
        ))
    })?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(5));
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("rehearse");
    }
    Ok(cfg)
}

/// Connect and spawn the connection task on the current tokio runtime.
pub async fn connect(url: &str) -> Result<Client> {
    let cfg = config(url)?;
    let (client, connection) = cfg
        .connect(NoTls)
        .await
        .db(|| format!("connecting to {}", redact(url)))?;
    tokio::spawn(async move {
        // The error reaches the caller through the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// The name of the database a client is connected to.
pub async fn current_database(client: &impl tokio_postgres::GenericClient) -> Result<String> {
    let row = client
        .query_one("SELECT current_database()", &[])
        .await
        .db(|| "reading current_database()".into())?;
    Ok(row.get(0))
}
