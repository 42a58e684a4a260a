//! Opening PostgreSQL connections: one place that parses a URL, sets the
//! defaults rehearse relies on, and drives the connection task.

use std::time::Duration;

use tokio_postgres::{Client, Config};

use crate::error::{DbContext, Error, Result};

use crate::url::redact;

/// A connection string as rehearse uses it: tokio-postgres's settings,
/// with libpq's TLS settings and a password found where libpq looks.
pub struct Conn {
    pub config: Config,
    pub tls: crate::tls::TlsSettings,
}

/// Parse a connection URL or key=value string, with a connect timeout and an
/// application name unless the URL sets them, libpq's `sslmode`,
/// `sslrootcert`, `sslcert` and `sslkey`, and a password from the
/// `[estate]` password_file, `PGPASSWORD` or a pgpass file when the string
/// has none.
pub fn config(url: &str) -> Result<Conn> {
    let (rest, tls) = crate::tls::split(url)?;
    let mut cfg: Config = rest.parse().map_err(|e| {
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
    cfg.ssl_mode(tls.postgres_mode());
    if cfg.get_password().is_none() {
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let user = cfg.get_user().unwrap_or("postgres").to_string();
        let db = cfg.get_dbname().unwrap_or(&user).to_string();
        if let Some(pw) = crate::tls::password_for(&host, port, &db, &user) {
            cfg.password(pw);
        }
    }
    Ok(Conn { config: cfg, tls })
}

/// What a failed connection attempt means, in words an SRE acts on: a
/// certificate that did not verify, or a password nowhere to be found.
pub fn connect_error(url: &str, tls: &crate::tls::TlsSettings, e: tokio_postgres::Error) -> Error {
    let text = crate::error::describe_pg(&e);
    let what = if text.contains("invalid peer certificate")
        || text.contains("certificate") && text.contains("TLS")
    {
        format!(
            "certificate verification failed connecting to {} ({})",
            redact(url),
            tls.describe()
        )
    } else if text.contains("password missing") {
        format!(
            "connecting to {}: the server asks for a password, and none was found in the URL, \
             the [estate] password_file, PGPASSWORD or a pgpass file (PGPASSFILE, ~/.pgpass, the lab's)",
            redact(url)
        )
    } else {
        format!("connecting to {}", redact(url))
    };
    Error::Db { what, source: e }
}

/// Connect and spawn the connection task on the current tokio runtime.
pub async fn connect(url: &str) -> Result<Client> {
    connect_config(url, config(url)?).await
}

/// The application_name of rehearse's own monitoring connections (the
/// samplers, the statement snapshots), so that a captured trace tells them
/// from the workload's (`rehearse replay --application rehearse`).
pub const MONITOR_APPLICATION: &str = "rehearse-monitor";

/// Connect as rehearse's monitoring: application_name rehearse-monitor
/// unless the URL names one.
pub async fn connect_monitor(url: &str) -> Result<Client> {
    let mut c = config(url)?;
    if c.config.get_application_name() == Some("rehearse") && !url.contains("application_name") {
        c.config.application_name(MONITOR_APPLICATION);
    }
    connect_config(url, c).await
}

async fn connect_config(url: &str, c: Conn) -> Result<Client> {
    let connector = crate::tls::connector(&c.tls)?;
    let (client, connection) = c
        .config
        .connect(connector)
        .await
        .map_err(|e| connect_error(url, &c.tls, e))?;
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
