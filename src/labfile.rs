//! `lab.json`, as the lab writes it and as the estate reads it: its name,
//! its format, the lab's URLs, and the small view of it that resolving an
//! estate needs (the URLs, the pgpass file, the port of rehearse's own
//! metrics). The lab owns the whole state (`lab::LabState`); the estate
//! needs only this view, so it never imports the lab.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The file in the lab directory that describes the lab.
pub const STATE_FILE: &str = "lab.json";
/// The layout of `lab.json` this rehearse reads and writes.
pub const STATE_FORMAT: u32 = 1;

/// Connection URLs of the lab. There are no passwords: the lab listens on
/// 127.0.0.1 only and trusts loopback connections (or keeps the password in
/// its pgpass file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabUrls {
    pub primary: String,
    pub replica: String,
    pub pgbouncer: String,
    pub pgbouncer_replica: String,
    pub redis: String,
}

/// What an estate takes from a lab.
#[derive(Debug, Clone, PartialEq)]
pub struct LabView {
    pub urls: LabUrls,
    /// The pgpass file of a lab started with `--auth scram`.
    pub pgpass: Option<PathBuf>,
    /// The port of rehearse's own metrics, which the lab's Prometheus
    /// scrapes; None for a lab without monitoring.
    pub metrics_port: Option<u16>,
}

/// The fields of `lab.json` the view is read from; the rest is the lab's.
#[derive(Deserialize)]
struct Raw {
    format: u32,
    urls: LabUrls,
    ports: RawPorts,
    #[serde(default)]
    monitoring: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pgpass: Option<PathBuf>,
}

#[derive(Deserialize)]
struct RawPorts {
    #[serde(default)]
    rehearse: u16,
}

/// Read and parse `lab.json` in `dir` as `T` (the lab's whole state, or
/// the estate's view), checking its format: None when there is no lab.
pub fn read<T: serde::de::DeserializeOwned>(
    dir: &Path,
    format: impl Fn(&T) -> u32,
) -> Result<Option<T>> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).io("reading the lab state", &path),
    };
    let state: T = serde_json::from_str(&text).map_err(|e| {
        Error::Lab(format!(
            "{} is not a lab state file this rehearse can read ({e}); stop that lab with the \
             rehearse that made it, or remove the directory",
            path.display()
        ))
    })?;
    let f = format(&state);
    if f != STATE_FORMAT {
        return Err(Error::Lab(format!(
            "{} has lab format {f}, this rehearse knows {STATE_FORMAT}",
            path.display()
        )));
    }
    Ok(Some(state))
}

impl LabView {
    /// Read the view from a lab directory; None when there is no lab there.
    pub fn load(dir: &Path) -> Result<Option<LabView>> {
        Ok(read(dir, |r: &Raw| r.format)?.map(|raw| LabView {
            urls: raw.urls,
            pgpass: raw.pgpass,
            metrics_port: raw.monitoring.map(|_| raw.ports.rehearse),
        }))
    }
}
