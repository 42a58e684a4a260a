//! The lab's PgBouncer, in transaction pooling mode, with one database entry
//! for the primary and one for the replica.

use std::time::{Duration, Instant};

use super::process::{make_dir, read_pid, run_checked, terminate, write_file};
use super::{Component, LabCtx};
use crate::db;
use crate::error::{Error, Result};

/// The PgBouncer database entry that leads to the replica.
pub fn replica_entry(database: &str) -> String {
    format!("{database}_replica")
}

fn ini_text(ctx: &LabCtx) -> String {
    let s = &ctx.state;
    let dir = s.dir.join("pgbouncer");
    format!(
        "; Written by `rehearse lab`; rewritten on every start.
[databases]
{db} = host=127.0.0.1 port={primary} dbname={db} user={user}
{replica_db} = host=127.0.0.1 port={replica} dbname={db} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {auth}
auth_file = {dir}/userlist.txt
admin_users = {user}
stats_users = {user}
{tls}
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
reserve_pool_size = 5
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
",
        db = s.database,
        replica_db = replica_entry(&s.database),
        primary = s.ports.primary,
        replica = s.ports.replica,
        port = s.ports.pgbouncer,
        dir = dir.display(),
        user = s.db_user,
        auth = if s.pgpass.is_some() { "scram-sha-256" } else { "trust" },
        tls = match &s.tls {
            // Clients must use TLS; PgBouncer checks the servers' chain too.
            Some(t) => format!(
                "client_tls_sslmode = require\nclient_tls_key_file = {}\nclient_tls_cert_file = {}\n\
                 client_tls_ca_file = {ca}\nserver_tls_sslmode = verify-full\nserver_tls_ca_file = {ca}\n",
                t.key.display(),
                t.cert.display(),
                ca = t.ca.display()
            ),
            None => String::new(),
        },
    )
}

impl LabCtx {
    pub fn pgbouncer_pid(&self) -> Option<i32> {
        read_pid(&self.state.dir.join("pgbouncer/pgbouncer.pid"))
    }

    pub async fn start_pgbouncer(&self) -> Result<()> {
        let dir = make_dir(&self.run_as, &self.state.dir.join("pgbouncer"))?;
        // Trust still needs the user listed in the auth file; with scram,
        // its password (PgBouncer logs in to the servers with it), mode 0600.
        let users = dir.join("userlist.txt");
        match &self.state.pgpass {
            Some(p) => super::tls::write_secret(
                &users,
                &format!(
                    "\"{}\" \"{}\"\n",
                    self.state.db_user,
                    super::tls::password(p)?
                ),
                Some(&self.run_as),
            )?,
            None => write_file(
                &self.run_as,
                &users,
                &format!("\"{}\" \"\"\n", self.state.db_user),
            )?,
        }
        let ini = dir.join("pgbouncer.ini");
        write_file(&self.run_as, &ini, &ini_text(self))?;
        let mut cmd = self.run_as.command(&self.bins.pgbouncer, &dir);
        cmd.arg("-d").arg(&ini);
        run_checked(
            &mut cmd,
            "starting the lab pgbouncer",
            Some(&dir.join("pgbouncer.log")),
        )?;
        // PgBouncer answers only once it has a server connection to hand out.
        let start = Instant::now();
        loop {
            let attempt = async {
                let client = db::connect(&self.state.urls.pgbouncer).await?;
                client
                    .simple_query("SELECT 1")
                    .await
                    .map_err(|source| Error::Db {
                        what: "querying through pgbouncer".into(),
                        source,
                    })
            };
            match attempt.await {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(Error::Lab(format!(
                        "the lab pgbouncer did not answer within 30s: {e}"
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub fn stop_pgbouncer(&self) {
        if let Some(pid) = self.pgbouncer_pid() {
            // SIGTERM is PgBouncer's immediate shutdown; clients are told.
            terminate(pid, libc::SIGTERM, Duration::from_secs(10));
        }
    }

    /// PgBouncer's version, from its admin console.
    pub async fn pgbouncer_version(&self) -> Result<String> {
        let url = self.state.url_for_db(Component::Pgbouncer, "pgbouncer");
        let client = db::connect(&url).await?;
        let rows = client
            .simple_query("SHOW VERSION")
            .await
            .map_err(|source| Error::Db {
                what: "SHOW VERSION on the pgbouncer console".into(),
                source,
            })?;
        Ok(rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default())
    }
}
