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

/// Check the format of a `lab.json` read from `path`.
pub fn check_format(format: u32, path: &Path) -> Result<()> {
    if format != STATE_FORMAT {
        return Err(Error::Lab(format!(
            "{} has lab format {format}, this rehearse knows {STATE_FORMAT}",
            path.display()
        )));
    }
    Ok(())
}

/// The refusal of a `lab.json` that does not parse.
pub fn unreadable(path: &Path, e: &serde_json::Error) -> Error {
    Error::Lab(format!(
        "{} is not a lab state file this rehearse can read ({e}); stop that lab with the \
         rehearse that made it, or remove the directory",
        path.display()
    ))
}

impl LabView {
    /// Read the view from a lab directory; None when there is no lab there.
    pub fn load(dir: &Path) -> Result<Option<LabView>> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).io("reading the lab state", &path),
        };
        let raw: Raw = serde_json::from_str(&text).map_err(|e| unreadable(&path, &e))?;
        check_format(raw.format, &path)?;
        Ok(Some(LabView {
            urls: raw.urls,
            pgpass: raw.pgpass,
            metrics_port: raw.monitoring.map(|_| raw.ports.rehearse),
        }))
    }
}
