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
    version_field: &'static str,
    version: u32,
    what: &str,
) -> Result<T> {
    use crate::error::Error;
    // The version alone first (other fields skipped, not built into a tree:
    // a run.json can be megabytes).
    #[derive(serde::Deserialize)]
    struct Versions {
        schema_version: Option<u64>,
        ab_version: Option<u64>,
    }
    let v: Versions = serde_json::from_slice(text)
        .map_err(|e| Error::Usage(format!("{}: not a {what} ({e})", path.display())))?;
    let found = match version_field {
        "schema_version" => v.schema_version,
        "ab_version" => v.ab_version,
        other => {
            return Err(Error::Usage(format!(
                "{}: no reader knows the version field {other}",
                path.display()
            )))
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[allow(dead_code)]
        schema_version: u32,
        #[allow(dead_code)]
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        p50_ms: f64,
    }

    #[test]
    fn a_versioned_file_is_read_strictly_or_refused_naming_the_field() {
        let p = Path::new("x.json");
        let read = |t: &str| parse_json::<Doc>(p, t.as_bytes(), "schema_version", 2, "doc");
        assert!(read(r#"{"schema_version": 2, "inner": {"p50_ms": 1.5}}"#).is_ok());
        let e = read(r#"{"schema_version": 1, "inner": {"p50_ms": 1.5}}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("schema_version 1, this rehearse reads 2"),
            "{e}"
        );
        let e = read(r#"{"inner": {"p50_ms": 1.5}}"#).unwrap_err();
        assert!(e.to_string().contains("schema_version missing"), "{e}");
        let e = read(r#"{"schema_version": 2, "inner": {"p50": 1.5}}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("field `inner.p50`: unknown field `p50`"),
            "{e}"
        );
        let e = read("not json").unwrap_err();
        assert!(e.to_string().contains("not a doc"), "{e}");
        let e = parse_json::<Doc>(p, b"{}", "version", 2, "doc").unwrap_err();
        assert!(e.to_string().contains("version field"), "{e}");
    }
}
