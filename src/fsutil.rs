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
/// not. A file of another layout is refused with the path of the field at
/// fault (exit 2), and a `schema_version` other than `version` is refused
/// before the fields are read.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, version: u32) -> Result<Option<T>> {
    use crate::error::Error;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).io("reading", path),
    };
    #[derive(serde::Deserialize)]
    struct Version {
        schema_version: Option<u64>,
    }
    let v: Version = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: not JSON of this layout ({e})", path.display())))?;
    if v.schema_version != Some(version as u64) {
        return Err(Error::Usage(format!(
            "{}: schema_version {}, this rehearse reads {version}",
            path.display(),
            v.schema_version
                .map_or("missing".to_string(), |v| v.to_string())
        )));
    }
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de)
        .map(Some)
        .map_err(|e| Error::Usage(format!("{}: {} at {}", path.display(), e.inner(), e.path())))
}
