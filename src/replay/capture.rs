//! `rehearse capture`: turn on, for a bounded window, the logging a replay
//! needs (every statement with its parameters, connections, in csvlog, in
//! English), then turn it back to what it was, also when interrupted; keep
//! the window's records in `capture.csv`.
//!
//! The settings go through ALTER SYSTEM and a reload, so no restart; only
//! csvlog's `logging_collector` needs one, and a server without it is
//! refused with that said. What was in postgresql.auto.conf before is put
//! back as it was, not merely reset. Until the window closes `capture.json`
//! holds what to restore, so `rehearse capture --restore` can undo a
//! capture that was killed outright.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::{DbContext, Error, IoContext, Result};
use crate::estate::Estate;

/// The settings a capture changes.
const SETTINGS: [&str; 6] = [
    "log_destination",
    "log_statement",
    "log_min_duration_statement",
    "log_connections",
    "log_disconnections",
    "lc_messages",
];

#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// How long; None: until Ctrl-C.
    pub duration: Option<Duration>,
    pub out: PathBuf,
    pub allow_destructive: Option<String>,
    /// Log each statement at its end with its duration
    /// (`log_min_duration_statement = 0`) instead of at its start.
    pub with_durations: bool,
    /// Leave the replica's log alone (by default a replica the estate names
    /// is captured too: the reads it serves are part of the workload).
    pub primary_only: bool,
    pub verbose: bool,
    pub stop: Option<Arc<AtomicBool>>,
}

/// What `capture.json` keeps: the settings to put back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restore {
    pub server: String,
    /// Each setting's value in postgresql.auto.conf before, None if it had none.
    pub previous: Vec<(String, Option<String>)>,
    pub state: String,
}

/// `capture.json`: what to put back on each server captured.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    servers: Vec<Restore>,
}

/// One server's share of a capture.
#[derive(Debug, Clone, Serialize)]
pub struct ServerLog {
    pub server: String,
    pub file: PathBuf,
    pub records: u64,
    pub bytes: u64,
    /// The server's csvlog files the window's records came from.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureSummary {
    /// The primary's first, then the replica's.
    pub logs: Vec<ServerLog>,
    pub seconds: f64,
    pub interrupted: bool,
}

async fn previous(client: &Client) -> Result<Vec<(String, Option<String>)>> {
    let rows = client
        .query(
            "SELECT name, setting FROM pg_file_settings \
             WHERE sourcefile LIKE '%postgresql.auto.conf' AND applied IS NOT NULL",
            &[],
        )
        .await
        .db(|| "reading postgresql.auto.conf's settings (pg_file_settings)".into())?;
    Ok(SETTINGS
        .iter()
        .map(|n| {
            let v = rows
                .iter()
                .filter(|r| r.get::<_, String>(0) == *n)
                .last()
                .map(|r| r.get::<_, String>(1));
            (n.to_string(), v)
        })
        .collect())
}

fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

async fn set(client: &Client, name: &str, value: Option<&str>) -> Result<()> {
    let sql = match value {
        Some(v) => format!("ALTER SYSTEM SET {name} = {}", quote(v)),
        None => format!("ALTER SYSTEM RESET {name}"),
    };
    client
        .batch_execute(&sql)
        .await
        .db(|| format!("{sql} (a capture needs a superuser)"))
}

async fn reload(client: &Client) -> Result<()> {
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .db(|| "reloading the configuration".into())?;
    // The postmaster and then each backend apply it on their next loop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Put back what a capture changed.
pub async fn restore(client: &Client, r: &Restore) -> Result<()> {
    for (name, value) in &r.previous {
        set(client, name, value.as_deref()).await?;
    }
    reload(client).await
}

fn write_state(out: &Path, servers: &[Restore]) -> Result<()> {
    crate::fsutil::write_atomic(
        &out.join("capture.json"),
        serde_json::to_string_pretty(&State {
            servers: servers.to_vec(),
        })
        .map_err(|e| Error::Lab(format!("capture.json: {e}")))?
        .as_bytes(),
    )
}

/// `capture --restore`: undo a capture that did not end, on each server it
/// changed (found among the estate's primary and replica by its URL).
pub async fn restore_from(estate: &Estate, out: &Path) -> Result<String> {
    let path = out.join("capture.json");
    let bytes = std::fs::read(&path).io("reading", &path)?;
    // A capture.json of one server, as written before replicas were captured.
    let mut servers = match serde_json::from_slice::<State>(&bytes) {
        Ok(st) => st.servers,
        Err(_) => vec![serde_json::from_slice::<Restore>(&bytes)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?],
    };
    let mut lines = Vec::new();
    for r in &mut servers {
        let endpoint = std::iter::once(&estate.primary)
            .chain(&estate.replica)
            .find(|e| e.redacted() == r.server)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: captured {}, which is neither the estate's primary nor its replica; name it with --primary-url or --replica-url",
                    path.display(),
                    r.server
                ))
            })?;
        let client = crate::db::connect_monitor(&endpoint.url).await?;
        restore(&client, r).await?;
        r.state = "restored".into();
        lines.push(format!(
            "capture: the logging settings of {} are back as they were",
            r.server
        ));
    }
    write_state(out, &servers)?;
    Ok(lines.join("\n"))
}

/// The server's clock in its log's zone and format, as microseconds.
async fn log_clock(client: &Client) -> Result<i64> {
    let row = client
        .query_one(
            "SELECT to_char(clock_timestamp() AT TIME ZONE current_setting('log_timezone'), 'YYYY-MM-DD HH24:MI:SS.US')",
            &[],
        )
        .await
        .db(|| "reading the server's clock".into())?;
    let s: String = row.get(0);
    super::csvlog::parse_time(s.as_bytes())
        .ok_or_else(|| Error::Lab(format!("the server's clock read as {s:?}")))
}

/// A server being captured: its connection and what to put back.
struct Captured {
    role: &'static str,
    client: Client,
    restore: Restore,
    destination: String,
}

pub async fn capture(estate: &Estate, o: &CaptureOptions) -> Result<CaptureSummary> {
    let mut endpoints = vec![("primary", &estate.primary)];
    if let (Some(r), false) = (&estate.replica, o.primary_only) {
        endpoints.push(("replica", r));
    }
    let mut servers = Vec::new();
    for (role, endpoint) in endpoints {
        // As monitoring: the capture's own statements are not the workload's.
        let client = crate::db::connect_monitor(&endpoint.url).await?;
        if role == "primary" {
            // The replica is the primary's copy: the primary decides.
            crate::schema::safety::ensure_rehearsal_target(
                &client,
                estate,
                o.allow_destructive.as_deref(),
                "capture (it changes the server's logging settings)",
            )
            .await?;
        }
        let server = endpoint.redacted();
        if show(&client, "logging_collector").await? != "on" {
            return Err(Error::Refused(format!(
                "the {role} {server} runs with logging_collector = off: csvlog needs it, and turning it on takes a restart. Set logging_collector = on, restart the server, then capture (the lab has it on){}",
                if role == "replica" { "; or capture the primary alone with --primary-only" } else { "" }
            )));
        }
        let restore = Restore {
            server,
            previous: previous(&client).await?,
            state: "capturing".into(),
        };
        let destination = show(&client, "log_destination").await?;
        servers.push(Captured {
            role,
            client,
            restore,
            destination,
        });
    }
    std::fs::create_dir_all(&o.out).io("creating", &o.out)?;
    let restores: Vec<Restore> = servers.iter().map(|c| c.restore.clone()).collect();
    write_state(&o.out, &restores)?;
    // The window's clock is read outside it (before turning on, after
    // putting back), so no failure between leaves the logging on. Each
    // server's own clock: a replica's log is in its own time.
    let mut from = Vec::new();
    for c in &servers {
        from.push(log_clock(&c.client).await?);
    }
    let stop = o.stop.clone().unwrap_or_default();
    crate::interrupt::on_ctrl_c(
        "ending the capture and restoring the logging settings",
        &[&stop],
    );
    let mut turned_on: Result<()> = Ok(());
    for c in &servers {
        turned_on = turn_on(&c.client, &c.destination, o.with_durations).await;
        if turned_on.is_err() {
            break;
        }
    }
    if let Err(e) = turned_on {
        for c in &servers {
            let _ = restore(&c.client, &c.restore).await;
        }
        return Err(e);
    }
    let started = Instant::now();
    if o.verbose {
        eprintln!(
            "capture: logging every statement of {} in csvlog{}; Ctrl-C ends it",
            servers
                .iter()
                .map(|c| format!("the {} {}", c.role, c.restore.server))
                .collect::<Vec<_>>()
                .join(" and "),
            o.duration
                .map_or(String::new(), |d| format!(" for {:.0} s", d.as_secs_f64()))
        );
    }
    while !stop.load(Ordering::SeqCst) && o.duration.is_none_or(|d| started.elapsed() < d) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let interrupted = stop.load(Ordering::SeqCst);
    // Every server is put back before any error is reported.
    let mut put_back: Result<()> = Ok(());
    let mut to = Vec::new();
    for c in &servers {
        let r = restore(&c.client, &c.restore).await;
        if put_back.is_ok() {
            put_back = r;
        }
        to.push(log_clock(&c.client).await);
    }
    put_back?;
    let restored: Vec<Restore> = servers
        .iter()
        .map(|c| Restore {
            state: "restored".into(),
            ..c.restore.clone()
        })
        .collect();
    write_state(&o.out, &restored)?;
    // The collector may still hold the window's last lines in its buffer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut logs = Vec::new();
    for ((c, from), to) in servers.iter().zip(from).zip(to) {
        let file = o.out.join(if c.role == "primary" {
            "capture.csv".to_string()
        } else {
            format!("capture-{}.csv", c.role)
        });
        let (records, bytes, sources) = collect(&c.client, from, to?, &file).await?;
        logs.push(ServerLog {
            server: c.restore.server.clone(),
            file,
            records,
            bytes,
            sources,
        });
    }
    Ok(CaptureSummary {
        logs,
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
    })
}

async fn show(client: &Client, name: &str) -> Result<String> {
    client
        .query_one(&format!("SHOW {name}"), &[])
        .await
        .db(|| format!("SHOW {name}"))
        .map(|r| r.get::<_, String>(0))
}

/// Turn on on one server what a replay needs (see the module's head).
async fn turn_on(client: &Client, destination: &str, with_durations: bool) -> Result<()> {
    if !destination.split(',').any(|d| d.trim() == "csvlog") {
        set(
            client,
            "log_destination",
            Some(&format!("{destination},csvlog")),
        )
        .await?;
    }
    if with_durations {
        set(client, "log_min_duration_statement", Some("0")).await?;
        set(client, "log_statement", Some("none")).await?;
    } else {
        set(client, "log_statement", Some("all")).await?;
        set(client, "log_min_duration_statement", Some("-1")).await?;
    }
    set(client, "log_connections", Some("on")).await?;
    set(client, "log_disconnections", Some("on")).await?;
    set(client, "lc_messages", Some("C")).await?;
    reload(client).await
}

/// Copy the window's records from the server's csvlog files (read with
/// pg_read_binary_file, so a remote server works too) into `out`.
async fn collect(
    client: &Client,
    from: i64,
    to: i64,
    out: &Path,
) -> Result<(u64, u64, Vec<String>)> {
    let dir: String = client
        .query_one("SELECT current_setting('log_directory')", &[])
        .await
        .db(|| "reading log_directory".into())?
        .get(0);
    let files = client
        .query(
            "SELECT name FROM pg_ls_logdir() WHERE name LIKE '%.csv' \
             AND modification >= now() - make_interval(secs => $1) ORDER BY modification, name",
            &[&((to - from) as f64 / 1e6 + 60.0)],
        )
        .await
        .db(|| "listing the server's csvlog files (pg_ls_logdir)".into())?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let (mut records, mut sources) = (0u64, Vec::new());
    for row in files {
        let name: String = row.get(0);
        let path = format!("{dir}/{name}");
        let bytes: Vec<u8> = client
            .query_one("SELECT pg_read_binary_file($1)", &[&path])
            .await
            .db(|| format!("reading the server's {path}"))?
            .get(0);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let mut kept = 0;
        for rec in rdr.byte_records() {
            let Ok(rec) = rec else { continue };
            let Some(t) = rec.get(0).and_then(super::csvlog::parse_time) else {
                continue;
            };
            if t >= from && t <= to {
                w.write_byte_record(&rec)
                    .map_err(|e| Error::Lab(format!("writing capture.csv: {e}")))?;
                kept += 1;
            }
        }
        if kept > 0 {
            sources.push(path);
            records += kept;
        }
    }
    let data = w
        .into_inner()
        .map_err(|e| Error::Lab(format!("writing capture.csv: {e}")))?;
    crate::fsutil::write_atomic(out, &data)?;
    Ok((records, data.len() as u64, sources))
}
