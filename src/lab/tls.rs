//! A lab that connects like staging (`lab up --tls --auth scram`): its own
//! CA and a server certificate for 127.0.0.1 and localhost, made with
//! Debian's `openssl`, and a generated PostgreSQL superuser with a
//! scram-sha-256 password kept only in files of mode 0600.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::process::{make_dir, RunAs};
use crate::error::{Error, IoContext, Result};

/// The user a scram lab creates (the superuser of its cluster).
pub const SCRAM_USER: &str = "rehearse";

/// The lab's certificates: the CA clients trust, and the servers' pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str], cwd: &Path, what: &str) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| Error::MissingBinary {
            binary: format!("openssl ({e})"),
            searched: "PATH".into(),
        })?;
    if !out.status.success() {
        return Err(Error::Lab(format!(
            "openssl, {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .io("setting the mode of", path)
}

/// Make a CA and a server certificate (P-256) for 127.0.0.1 and localhost
/// in `dir/tls`, unless they are there; the key belongs to `run_as`, mode 0600.
pub fn make_certs(run_as: &RunAs, dir: &Path) -> Result<LabTls> {
    let tls = make_dir(run_as, &dir.join("tls"))?;
    let out = LabTls {
        ca: tls.join("ca.crt"),
        cert: tls.join("server.crt"),
        key: tls.join("server.key"),
    };
    if out.ca.exists() && out.cert.exists() && out.key.exists() {
        return Ok(out);
    }
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "3650",
        "-subj",
        "/CN=rehearse lab CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca, &tls, "making the lab's CA")?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&csr, &tls, "making the server's key")?;
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .io("writing", &tls.join("server.ext"))?;
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
        &tls,
        "signing the server's certificate",
    )?;
    for f in ["ca.key", "server.key"] {
        set_mode(&tls.join(f), 0o600)?;
    }
    for f in ["ca.crt", "server.crt"] {
        set_mode(&tls.join(f), 0o644)?;
    }
    run_as.own(&tls)?;
    Ok(out)
}

/// A new random password: 32 hex digits from the kernel's generator.
pub fn new_password() -> Result<String> {
    let mut b = [0u8; 16];
    let f = Path::new("/dev/urandom");
    std::io::Read::read_exact(&mut std::fs::File::open(f).io("opening", f)?, &mut b)
        .io("reading", f)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Write `text` to `path` with mode 0600 (owned by `run_as` when given).
pub fn write_secret(path: &Path, text: &str, run_as: Option<&RunAs>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .io("creating", path)?;
    f.write_all(text.as_bytes()).io("writing", path)?;
    if let Some(r) = run_as {
        r.own(path)?;
    }
    Ok(())
}

/// The password of a scram lab, from its pgpass file.
pub fn password(pgpass: &Path) -> Result<String> {
    let text = std::fs::read_to_string(pgpass).io("reading the lab's pgpass", pgpass)?;
    crate::tls::pgpass_lookup(&text, "127.0.0.1", 1, "x", SCRAM_USER).ok_or_else(|| {
        Error::Lab(format!(
            "{} holds no password for {SCRAM_USER}",
            pgpass.display()
        ))
    })
}
