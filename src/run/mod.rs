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
    #[derive(serde::Deserialize)]
    struct Version {
        schema_version: Option<u64>,
    }
    let v: Version = serde_json::from_slice(text)
        .map_err(|e| Error::Usage(format!("{}: not a run record ({e})", path.display())))?;
    if v.schema_version != Some(SCHEMA_VERSION as u64) {
        return Err(Error::Usage(format!(
            "{}: schema_version {}, this rehearse reads {SCHEMA_VERSION}",
            path.display(),
            v.schema_version
                .map_or("missing".to_string(), |v| v.to_string()),
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        Error::Usage(format!(
            "{}: field `{}`: {}; the run record cannot be trusted, nothing was judged",
            path.display(),
            e.path(),
            e.inner()
        ))
    })
}
