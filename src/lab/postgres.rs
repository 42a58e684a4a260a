//! The lab's PostgreSQL primary and its streaming hot-standby replica.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::process::{make_dir, run_checked, write_file};
use super::{Component, LabCtx};
use crate::db;
use crate::error::{DbContext, Error, IoContext, Result};

/// Name of the physical replication slot (and walreceiver application name).
pub const REPLICA_SLOT: &str = "rehearse_replica";

/// Server settings sized for this machine. The primary, the replica and the
/// load driver share it, so each server takes an eighth of memory for
/// shared buffers rather than the usual quarter.
pub fn sized_settings(mem_bytes: u64, cores: usize) -> Vec<(&'static str, String)> {
    let mb = mem_bytes / (1024 * 1024);
    let shared = (mb / 8).clamp(128, 4096);
    let maintenance = (mb / 32).clamp(64, 1024);
    let cache = (mb / 2).max(256);
    let cores = cores.max(1);
    vec![
        ("shared_buffers", format!("{shared}MB")),
        ("effective_cache_size", format!("{cache}MB")),
        ("maintenance_work_mem", format!("{maintenance}MB")),
        ("work_mem", "16MB".into()),
        ("max_connections", "300".into()),
        // Generic plans on partitioned tables lock every partition.
        ("max_locks_per_transaction", "256".into()),
        ("max_worker_processes", format!("{}", cores + 8)),
        ("max_parallel_workers", format!("{cores}")),
        (
            "max_parallel_workers_per_gather",
            format!("{}", (cores / 2).max(1)),
        ),
        (
            "max_parallel_maintenance_workers",
            format!("{}", (cores / 2).max(1)),
        ),
        // The WAL a server keeps is disk the estate cannot use, on the
        // primary and again on the replica: 2 GB between checkpoints (8 GB
        // before, when the full estate did not fit the reference machine).
        // A bulk load writes new pages, which need no full-page images, so
        // more checkpoints cost the seed little.
        ("max_wal_size", "2GB".into()),
        ("min_wal_size", "512MB".into()),
        ("checkpoint_timeout", "15min".into()),
        ("checkpoint_completion_target", "0.9".into()),
        // lz4, not pglz ("on"): an index build WAL-logs every page it
        // writes, and compressing them with pglz held a core. Building a
        // 3-column key on 40M rows took 13.1 to 14.3 s under lz4 against
        // 15.7 to 16.8 s under pglz (4 runs each, 2026-12-06); on 8M rows
        // 0.70x the wall (5 pairs). lz4 writes about 20% more WAL.
        ("wal_compression", "lz4".into()),
        ("random_page_cost", "1.1".into()),
        // A query's temporary files are disk the estate shares: in one main
        // job, 34 concurrent cross-tenant portfolio queries that the driver
        // had given up on kept spilling on the replica until its disk was
        // full and it shut down. A query that needs more than this fails (SQLSTATE 53400,
        // counted as an error of its operation) instead.
        ("temp_file_limit", "1GB".into()),
    ]
}

/// Settings every lab server gets, whatever the machine. With `cron`, the
/// server preloads pg_cron (the primary, when Debian's postgresql-15-cron
/// is installed): its scheduler runs in database `postgres` and starts each
/// job as a background worker, so it needs no password or pg_hba entry.
fn fixed_settings(port: u16, cron: bool) -> Vec<(&'static str, String)> {
    let preload = if cron {
        "'pg_stat_statements,pg_cron'"
    } else {
        "'pg_stat_statements'"
    };
    let mut v = vec![
        ("listen_addresses", "'127.0.0.1'".into()),
        ("port", port.to_string()),
        // TCP only: socket paths under deep lab directories overflow 107 bytes.
        ("unix_socket_directories", "''".into()),
        ("wal_level", "replica".into()),
        ("max_wal_senders", "10".into()),
        ("max_replication_slots", "10".into()),
        ("hot_standby", "on".into()),
        // Long reports on the replica must not be cancelled by replay.
        ("hot_standby_feedback", "on".into()),
        ("shared_preload_libraries", preload.into()),
        ("pg_stat_statements.track", "top".into()),
        ("pg_stat_statements.max", "5000".into()),
        // Planning time per statement: where the partitioned mode's time goes.
        ("pg_stat_statements.track_planning", "on".into()),
        ("track_io_timing", "on".into()),
        ("log_line_prefix", "'%m [%p] %q%a '".into()),
        // The server's log in files of its own (log/ in the data directory),
        // so that `rehearse capture` can turn csvlog on without a restart.
        ("logging_collector", "on".into()),
        ("log_directory", "'log'".into()),
        ("log_filename", "'postgresql-%Y%m%d-%H%M%S.log'".into()),
        ("log_min_duration_statement", "-1".into()),
        ("log_lock_waits", "on".into()),
    ];
    if cron {
        v.extend([
            ("cron.database_name", "'postgres'".into()),
            ("cron.use_background_workers", "on".into()),
            ("cron.log_run", "on".into()),
        ]);
    }
    v
}

fn conf_text(port: u16, cron: bool, sized: &[(String, String)]) -> String {
    let mut s = String::from("# Written by `rehearse lab`; rewritten on every start.\n");
    let fixed = fixed_settings(port, cron)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v));
    for (k, v) in fixed.chain(sized.iter().cloned()) {
        let v = if v.starts_with('\'') || v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            v
        } else {
            format!("'{v}'")
        };
        s.push_str(&format!("{k} = {v}\n"));
    }
    s
}

/// The machine's memory in bytes, from /proc/meminfo.
pub fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(4 << 30)
}

pub fn machine_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl LabCtx {
    pub fn data_dir(&self, c: Component) -> PathBuf {
        self.state.dir.join(c.name())
    }

    fn log_file(&self, c: Component) -> PathBuf {
        self.state.dir.join(format!("{}.log", c.name()))
    }

    /// The pid of a running server, from its postmaster.pid.
    pub fn postgres_pid(&self, c: Component) -> Option<i32> {
        super::process::read_pid(&self.data_dir(c).join("postmaster.pid"))
    }

    fn write_conf(&self, c: Component) -> Result<()> {
        let port = self.state.ports.of(c);
        let mut text = conf_text(
            port,
            c == Component::Primary && self.has_pg_cron(),
            &self.state.settings,
        );
        if let Some(t) = &self.state.tls {
            text.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_min_protocol_version = 'TLSv1.2'\n",
                t.cert.display(),
                t.key.display()
            ));
        }
        if self.state.pgpass.is_some() {
            text.push_str("password_encryption = 'scram-sha-256'\n");
        }
        write_file(&self.run_as, &self.data_dir(c).join("rehearse.conf"), &text)?;
        if self.state.tls.is_some() || self.state.pgpass.is_some() {
            write_file(
                &self.run_as,
                &self.data_dir(c).join("pg_hba.conf"),
                &self.hba_text(),
            )?;
        }
        Ok(())
    }

    /// pg_hba.conf of a lab started like staging: TLS only (plain refused)
    /// with `--tls`, scram-sha-256 with `--auth scram`.
    fn hba_text(&self) -> String {
        let (kind, method) = (
            if self.state.tls.is_some() {
                "hostssl"
            } else {
                "host"
            },
            if self.state.pgpass.is_some() {
                "scram-sha-256"
            } else {
                "trust"
            },
        );
        let mut s = format!(
            "# Written by `rehearse lab`; rewritten on every start.\n\
             local all all trust\n\
             {kind} all all 127.0.0.1/32 {method}\n\
             {kind} replication all 127.0.0.1/32 {method}\n"
        );
        if self.state.tls.is_some() {
            s.push_str(
                "hostnossl all all 0.0.0.0/0 reject\nhostnossl replication all 0.0.0.0/0 reject\n",
            );
        }
        s
    }

    /// The scram lab's password, for a child process's environment.
    fn lab_password(&self) -> Result<Option<String>> {
        self.state
            .pgpass
            .as_ref()
            .map(|p| super::tls::password(p))
            .transpose()
    }

    /// Whether pg_cron is installed beside this PostgreSQL (its library in
    /// the package's lib directory, next to bin).
    pub fn has_pg_cron(&self) -> bool {
        self.bins
            .pg("postgres")
            .parent()
            .and_then(|b| b.parent())
            .is_some_and(|root| root.join("lib/pg_cron.so").exists())
    }

    /// initdb the primary unless its data directory already holds a cluster.
    pub fn init_primary(&self) -> Result<()> {
        let data = self.data_dir(Component::Primary);
        if data.join("PG_VERSION").exists() {
            return Ok(());
        }
        make_dir(&self.run_as, &data)?;
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .io("setting the mode of", &data)?;
        let mut cmd = self
            .run_as
            .command(&self.bins.pg("initdb"), &self.state.dir);
        cmd.arg("-D")
            .arg(&data)
            .arg(format!("--username={}", self.state.db_user))
            .args(["--encoding=UTF8", "--locale=C"]);
        let pwfile = self.state.dir.join("initdb.pw");
        match self.lab_password()? {
            // The superuser's password from a file of the server's user, mode 0600, removed after.
            Some(pw) => {
                super::tls::write_secret(&pwfile, &format!("{pw}\n"), Some(&self.run_as))?;
                cmd.arg("--auth=scram-sha-256")
                    .arg(format!("--pwfile={}", pwfile.display()));
            }
            None => {
                cmd.arg("--auth=trust");
            }
        }
        let made = run_checked(&mut cmd, "initdb of the lab primary", None);
        let _ = std::fs::remove_file(&pwfile);
        made?;
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).io("reading", &conf)?;
        text.push_str("\ninclude = 'rehearse.conf'\n");
        write_file(&self.run_as, &conf, &text)
    }

    /// Start one server and wait until it accepts connections.
    pub fn start_postgres(&self, c: Component) -> Result<()> {
        self.write_conf(c)?;
        let data = self.data_dir(c);
        let log = self.log_file(c);
        let mut cmd = self
            .run_as
            .command(&self.bins.pg("pg_ctl"), &self.state.dir);
        cmd.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "120", "start"]);
        run_checked(
            &mut cmd,
            &format!("starting the lab {}", c.name()),
            Some(&log),
        )?;
        Ok(())
    }

    /// Stop one server (fast shutdown: running transactions are rolled back).
    pub fn stop_postgres(&self, c: Component) -> Result<()> {
        if self.postgres_pid(c).is_none() {
            return Ok(());
        }
        let mut cmd = self
            .run_as
            .command(&self.bins.pg("pg_ctl"), &self.state.dir);
        cmd.arg("-D")
            .arg(self.data_dir(c))
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run_checked(
            &mut cmd,
            &format!("stopping the lab {}", c.name()),
            Some(&self.log_file(c)),
        )?;
        Ok(())
    }

    /// Create the lab database and the extensions it needs (idempotent).
    pub async fn prepare_primary(&self) -> Result<()> {
        let admin = self.state.url_for_db(Component::Primary, "postgres");
        let client = db::connect(&admin).await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&self.state.database],
            )
            .await
            .db(|| "looking for the lab database".into())?;
        if exists.is_none() {
            client
                .batch_execute(&format!("CREATE DATABASE {}", self.state.database))
                .await
                .db(|| format!("creating database {}", self.state.database))?;
        }
        let client = db::connect(&self.state.urls.primary).await?;
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .db(|| "creating extension pg_stat_statements".into())?;
        Ok(())
    }

    /// Make the replica's data directory with pg_basebackup, unless it exists.
    pub async fn init_replica(&self) -> Result<()> {
        let data = self.data_dir(Component::Replica);
        if data.join("PG_VERSION").exists() {
            return Ok(());
        }
        if data.exists() {
            // A half-made copy from an interrupted run: start over.
            std::fs::remove_dir_all(&data).io("removing a partial replica", &data)?;
        }
        // A slot left by an earlier, purged replica would make -C fail.
        let client = db::connect(&self.state.urls.primary).await?;
        client
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = $1 AND NOT active",
                &[&REPLICA_SLOT],
            )
            .await
            .db(|| "dropping a stale replication slot".into())?;
        let mut conninfo = format!(
            "host=127.0.0.1 port={} user={} application_name={REPLICA_SLOT}",
            self.state.ports.primary, self.state.db_user
        );
        if let Some(t) = &self.state.tls {
            conninfo.push_str(&format!(
                " sslmode=verify-full sslrootcert={}",
                t.ca.display()
            ));
        }
        let mut cmd = self
            .run_as
            .command(&self.bins.pg("pg_basebackup"), &self.state.dir);
        // The password through the environment, never the command line;
        // -R keeps it in the replica's postgresql.auto.conf (mode 0600).
        if let Some(pw) = self.lab_password()? {
            cmd.env("PGPASSWORD", pw);
        }
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                REPLICA_SLOT,
                "-c",
                "fast",
                "-d",
            ])
            .arg(&conninfo);
        run_checked(&mut cmd, "pg_basebackup for the lab replica", None)?;
        Ok(())
    }

    /// Wait until the replica streams from the primary.
    pub async fn wait_streaming(&self, limit: Duration) -> Result<()> {
        let client = db::connect(&self.state.urls.primary).await?;
        let start = Instant::now();
        loop {
            let row = client
                .query_opt(
                    // Streaming, and the standby has reported a replay position
                    // (NULL until its first status message), so lag is measurable.
                    "SELECT state FROM pg_stat_replication \
                     WHERE application_name = $1 AND replay_lsn IS NOT NULL",
                    &[&REPLICA_SLOT],
                )
                .await
                .db(|| "reading pg_stat_replication".into())?;
            if row.as_ref().map(|r| r.get::<_, String>(0)).as_deref() == Some("streaming") {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(Error::Lab(format!(
                    "the lab replica did not start streaming within {}s; see {} and the server's log in {}",
                    limit.as_secs(),
                    self.log_file(Component::Replica).display(),
                    self.data_dir(Component::Replica).join("log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Replay lag of the lab replica in bytes, measured on the primary from LSNs
/// (replay timestamps grow while the primary is idle, so they are not used).
pub async fn replica_lag_bytes(primary_url: &str) -> Result<Option<i64>> {
    let client = db::connect(primary_url).await?;
    let row = client
        .query_opt(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint \
             FROM pg_stat_replication WHERE application_name = $1",
            &[&REPLICA_SLOT],
        )
        .await
        .db(|| "reading the replica's replay LSN".into())?;
    Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)))
}

/// The server version a PostgreSQL endpoint reports.
pub async fn server_version(url: &str) -> Result<String> {
    let client = db::connect(url).await?;
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .db(|| "reading server_version".into())?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_scale_with_memory_and_stay_within_bounds() {
        let small = sized_settings(1 << 30, 1);
        let big = sized_settings(24 << 30, 2);
        let get =
            |s: &[(&str, String)], k: &str| s.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get(&small, "shared_buffers"), "128MB");
        assert_eq!(get(&big, "shared_buffers"), "3072MB");
        assert_eq!(
            get(&sized_settings(256 << 30, 64), "shared_buffers"),
            "4096MB"
        );
        assert_eq!(get(&big, "max_parallel_workers_per_gather"), "1");
    }

    #[test]
    fn conf_quotes_values_that_need_it() {
        let t = conf_text(
            5555,
            false,
            &[
                ("max_wal_size".into(), "8GB".into()),
                ("random_page_cost".into(), "1.1".into()),
            ],
        );
        assert!(t.contains("port = 5555\n"));
        assert!(t.contains("listen_addresses = '127.0.0.1'\n"));
        assert!(t.contains("max_wal_size = 8GB\n"));
        assert!(t.contains("random_page_cost = 1.1\n"));
        assert!(t.contains("log_line_prefix = '%m [%p] %q%a '\n"));
        assert!(!t.contains("pg_cron"));
        let cron = conf_text(5555, true, &[]);
        assert!(cron.contains("shared_preload_libraries = 'pg_stat_statements,pg_cron'\n"));
        assert!(cron.contains("cron.use_background_workers = on\n"));
    }
}
