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

#[derive(Debug, Clone, Serialize)]
pub struct CaptureSummary {
    pub server: String,
    pub file: PathBuf,
    pub seconds: f64,
    pub records: u64,
    pub bytes: u64,
    /// The server's csvlog files the window's records came from.
    pub sources: Vec<String>,
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

fn write_state(out: &Path, r: &Restore) -> Result<()> {
    crate::fsutil::write_atomic(
        &out.join("capture.json"),
        serde_json::to_string_pretty(r)
            .map_err(|e| Error::Lab(format!("capture.json: {e}")))?
            .as_bytes(),
    )
}

/// `capture --restore`: undo a capture that did not end.
pub async fn restore_from(estate: &Estate, out: &Path) -> Result<String> {
    let path = out.join("capture.json");
    let r: Restore = serde_json::from_slice(&std::fs::read(&path).io("reading", &path)?)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let client = crate::db::connect_monitor(&estate.primary.url).await?;
    restore(&client, &r).await?;
    let line = format!(
        "capture: the logging settings of {} are back as they were",
        r.server
    );
    write_state(
        out,
        &Restore {
            state: "restored".into(),
            ..r
        },
    )?;
    Ok(line)
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

pub async fn capture(estate: &Estate, o: &CaptureOptions) -> Result<CaptureSummary> {
    // As monitoring: the capture's own statements are not the workload's.
    let client = crate::db::connect_monitor(&estate.primary.url).await?;
    crate::schema::safety::ensure_rehearsal_target(
        &client,
        estate,
        o.allow_destructive.as_deref(),
        "capture (it changes the server's logging settings)",
    )
    .await?;
    let server = estate.primary.redacted();
    let show = |name: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .db(|| format!("SHOW {name}"))
                .map(|r| r.get::<_, String>(0))
        }
    };
    if show("logging_collector").await? != "on" {
        return Err(Error::Refused(format!(
            "{server} runs with logging_collector = off: csvlog needs it, and turning it on takes a restart. Set logging_collector = on, restart the server, then capture (the lab has it on)"
        )));
    }
    std::fs::create_dir_all(&o.out).io("creating", &o.out)?;
    let r = Restore {
        server: server.clone(),
        previous: previous(&client).await?,
        state: "capturing".into(),
    };
    write_state(&o.out, &r)?;
    let destination = show("log_destination").await?;
    // The window's clock is read outside it (before turning on, after
    // putting back), so no failure between leaves the logging on.
    let from = log_clock(&client).await?;
    let stop = o.stop.clone().unwrap_or_default();
    crate::interrupt::on_ctrl_c(
        "ending the capture and restoring the logging settings",
        &[&stop],
    );
    let turned_on: Result<()> = async {
        if !destination.split(',').any(|d| d.trim() == "csvlog") {
            set(
                &client,
                "log_destination",
                Some(&format!("{destination},csvlog")),
            )
            .await?;
        }
        if o.with_durations {
            set(&client, "log_min_duration_statement", Some("0")).await?;
            set(&client, "log_statement", Some("none")).await?;
        } else {
            set(&client, "log_statement", Some("all")).await?;
            set(&client, "log_min_duration_statement", Some("-1")).await?;
        }
        set(&client, "log_connections", Some("on")).await?;
        set(&client, "log_disconnections", Some("on")).await?;
        set(&client, "lc_messages", Some("C")).await?;
        reload(&client).await
    }
    .await;
    if let Err(e) = turned_on {
        let _ = restore(&client, &r).await;
        return Err(e);
    }
    let started = Instant::now();
    if o.verbose {
        eprintln!(
            "capture: logging every statement of {server} in csvlog{}; Ctrl-C ends it",
            o.duration
                .map_or(String::new(), |d| format!(" for {:.0} s", d.as_secs_f64()))
        );
    }
    while !stop.load(Ordering::SeqCst) && o.duration.is_none_or(|d| started.elapsed() < d) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let interrupted = stop.load(Ordering::SeqCst);
    restore(&client, &r).await?;
    let to = log_clock(&client).await?;
    write_state(
        &o.out,
        &Restore {
            state: "restored".into(),
            ..r
        },
    )?;
    // The collector may still hold the window's last lines in its buffer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (records, bytes, sources) = collect(&client, from, to, &o.out.join("capture.csv")).await?;
    Ok(CaptureSummary {
        server,
        file: o.out.join("capture.csv"),
        seconds: started.elapsed().as_secs_f64(),
        records,
        bytes,
        sources,
        interrupted,
    })
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
