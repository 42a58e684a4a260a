//! The run record: the types of `run.json` ([`result`]), the judgement of
//! its budgets and validity ([`judge`]), and the interval log beside it
//! ([`hlog`]). The driver writes through these types; `report`, `compare`,
//! `gate` and `cutover` read through [`read`], which refuses an unknown
//! schema version or a missing or unknown field with the field's path.

pub mod bound;
pub mod evidence;
pub mod histogram;
pub mod hlog;
pub mod judge;
pub mod result;

use std::path::Path;

pub use result::*;

use crate::error::{Error, Result};

/// Read `dir/run.json`, refusing (exit 2) what this rehearse cannot read.
pub fn read(dir: &Path) -> Result<RunResult> {
    let path = dir.join("run.json");
    let text = std::fs::read(&path).map_err(|e| {
        Error::Usage(format!(
            "{} is not a run directory: cannot read {} ({e})",
            dir.display(),
            path.display()
        ))
    })?;
    parse(&path, &text)
}

/// Parse the text of a `run.json`; `path` is only used in messages.
pub fn parse(path: &Path, text: &[u8]) -> Result<RunResult> {
    crate::fsutil::parse_json(path, text, "schema_version", SCHEMA_VERSION, "run record")
        .map_err(|e| Error::Usage(format!("{e}, nothing was judged")))
}
