//! File writing that never leaves a half-written file behind.

use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Write `bytes` to `path` through a temporary file in the same directory,
/// synced and then renamed over the target, so readers see the old file or
/// the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).io("creating the directory", dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).io("creating", &tmp)?;
    f.write_all(bytes).io("writing", &tmp)?;
    f.sync_all().io("syncing", &tmp)?;
    drop(f);
    std::fs::rename(&tmp, path).io("renaming into place", path)?;
    Ok(())
}

/// Read `path` as JSON of type `T`, if the file exists: None when it does
/// not. See [`parse_json`] for what is refused.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, version: u32) -> Result<Option<T>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).io("reading", path),
    };
    parse_json(
        path,
        &text,
        "schema_version",
        version,
        "file of this layout",
    )
    .map(Some)
}

/// Parse `text`, the contents of `path`, as JSON of type `T`, strictly and
/// in one way for every versioned file rehearse writes: a `version_field`
/// other than `version` is refused before the fields are read, and a field
/// missing, unknown or of the wrong type is refused with its path (e.g.
/// `variants[0].operations[0].response`), never read as a default. `what`
/// names the file in messages ("run record"). Every refusal is exit 2.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &[u8],
    version_field: &str,
    version: u32,
    what: &str,
) -> Result<T> {
    use crate::error::Error;
    let v: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| Error::Usage(format!("{}: not a {what} ({e})", path.display())))?;
    let found = v.get(version_field).and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(version)) {
        return Err(Error::Usage(format!(
            "{}: {version_field} {}, this rehearse reads {version}",
            path.display(),
            found.map_or("missing".to_string(), |v| v.to_string())
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        Error::Usage(format!(
            "{}: field `{}`: {}; the {what} cannot be trusted",
            path.display(),
            e.path(),
            e.inner()
        ))
    })
}
