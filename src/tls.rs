//! What a libpq user expects of a connection string, for tokio-postgres:
//! `sslmode` (disable, allow, prefer, require, verify-ca, verify-full),
//! `sslrootcert`, `sslcert` and `sslkey` with libpq's meaning, from the URL
//! or libpq's environment (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`,
//! `PGSSLKEY`); and the password from the URL, the `[estate]`
//! `password_file`, `PGPASSWORD` or a pgpass file, in that order.
//!
//! The modes, as libpq has them:
//! - disable: no TLS.
//! - allow, prefer (the default): TLS if the server offers it, no
//!   certificate check (allow is treated as prefer).
//! - require: TLS or fail; the certificate is checked against
//!   `sslrootcert` only when one is given (then as verify-ca).
//! - verify-ca: TLS, and the server's certificate chains to a trusted root.
//! - verify-full: verify-ca, and the certificate names the host connected to.
//!
//! Roots are `sslrootcert` (a PEM file) or, without one, the system's.
//! TLS is rustls with the aws-lc-rs provider, the one Goose's reqwest uses.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};
use crate::url::percent_decode;

/// libpq's sslmode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Usage(format!(
                "sslmode {other:?}: one of disable, allow, prefer, require, verify-ca, verify-full"
            )))
            }
        })
    }
}

/// The TLS settings of one connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Take libpq's TLS keys out of a connection string (a URL's query, or
/// `key=value` words), for tokio-postgres, which knows only some of them;
/// what is missing comes from libpq's environment variables.
pub fn split(conn: &str) -> Result<(String, TlsSettings)> {
    split_with(conn, |k| std::env::var(k).ok())
}

fn split_with(conn: &str, env: impl Fn(&str) -> Option<String>) -> Result<(String, TlsSettings)> {
    let mut found: [Option<String>; 4] = Default::default();
    let rest = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        match conn.split_once('?') {
            None => conn.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    match TLS_KEYS.iter().position(|t| *t == k) {
                        Some(i) => found[i] = Some(percent_decode(v)),
                        None => kept.push(pair),
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in conn.split_whitespace() {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            match TLS_KEYS.iter().position(|t| *t == k) {
                Some(i) => found[i] = Some(v.trim_matches('\'').to_string()),
                None => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let [mode, root, cert, key] = found;
    let or_env = |v: Option<String>, var: &str| v.or_else(|| env(var)).filter(|s| !s.is_empty());
    let mode = match or_env(mode, "PGSSLMODE") {
        Some(m) => m.parse()?,
        None => SslMode::Prefer,
    };
    let root = or_env(root, "PGSSLROOTCERT").map(PathBuf::from);
    let cert = or_env(cert, "PGSSLCERT").map(PathBuf::from);
    let key = or_env(key, "PGSSLKEY").map(PathBuf::from);
    if cert.is_some() != key.is_some() {
        return Err(Error::Usage(
            "sslcert and sslkey go together: give both or neither".into(),
        ));
    }
    Ok((
        rest,
        TlsSettings {
            mode,
            root_cert: root,
            cert,
            key,
        },
    ))
}

impl TlsSettings {
    /// tokio-postgres's mode: whether TLS is tried, and whether it must be.
    pub fn postgres_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as P;
        match self.mode {
            SslMode::Disable => P::Disable,
            SslMode::Allow | SslMode::Prefer => P::Prefer,
            _ => P::Require,
        }
    }

    /// Whether the server's certificate is checked against roots, and its name.
    fn checks(&self) -> (bool, bool) {
        match self.mode {
            SslMode::VerifyFull => (true, true),
            SslMode::VerifyCa => (true, false),
            SslMode::Require => (self.root_cert.is_some(), false),
            _ => (false, false),
        }
    }

    /// The mode as libpq spells it.
    pub fn libpq_mode(&self) -> &'static str {
        match self.mode {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// A short description for messages: `sslmode=verify-full, sslrootcert=...`.
    pub fn describe(&self) -> String {
        let mode = self.libpq_mode();
        match &self.root_cert {
            Some(r) => format!("sslmode={mode}, sslrootcert={}", r.display()),
            None if self.checks().0 => format!("sslmode={mode}, the system's roots"),
            None => format!("sslmode={mode}"),
        }
    }
}

/// The process's crypto provider: aws-lc-rs, installed once (the redis
/// crate's rustls uses the process default).
pub fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| {
        let p = rustls::crypto::aws_lc_rs::default_provider();
        let _ = p.clone().install_default();
        Arc::new(p)
    })
    .clone()
}

fn read_pem_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect())
        .map_err(|e| Error::Usage(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The roots a check uses: `sslrootcert`, else the system's.
fn roots(t: &TlsSettings) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match &t.root_cert {
        Some(p) if p.as_os_str() == "system" => {}
        Some(p) => {
            for c in read_pem_certs(p, "sslrootcert")? {
                store
                    .add(c)
                    .map_err(|e| Error::Usage(format!("sslrootcert {}: {e}", p.display())))?;
            }
            return Ok(store);
        }
        None => {}
    }
    let native = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(native.certs);
    if store.is_empty() {
        return Err(Error::Usage(format!(
            "{} checks the server's certificate, and the system has no trusted roots: give sslrootcert=FILE",
            t.describe()
        )));
    }
    Ok(store)
}

/// Accepts any certificate, as libpq's prefer and require (without roots)
/// do; the handshake's signatures are still checked.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// verify-ca: the chain is checked, the name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end: &CertificateDer<'_>,
        inter: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end, inter, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Check a private key file's mode as libpq does: no access for group or others.
fn check_key_mode(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)
        .map_err(|e| Error::Usage(format!("{what} {}: {e}", path.display())))?;
    if m.mode() & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{what} {} has group or world access (mode {:o}); it must be u=rw (0600) or less",
            path.display(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

/// The rustls connector for these settings.
pub fn connector(t: &TlsSettings) -> Result<MakeRustlsConnect> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
    let (chain, name) = t.checks();
    let verifier: Arc<dyn ServerCertVerifier> = if chain {
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(t)?), provider.clone())
            .build()
            .map_err(|e| Error::Usage(format!("TLS roots ({}): {e}", t.describe())))?;
        if name {
            v
        } else {
            Arc::new(ChainOnly(v))
        }
    } else {
        Arc::new(NoCheck(provider.clone()))
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => {
            check_key_mode(k, "sslkey")?;
            let certs = read_pem_certs(c, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(k)
                .map_err(|e| Error::Usage(format!("sslkey {}: {e}", k.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Usage(format!("sslcert/sslkey: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// A Redis client for `redis://` or `rediss://` (TLS, checked against the
/// system's roots, or against the PEM file of an `sslrootcert=FILE` query
/// parameter, which rehearse takes out of the URL as for PostgreSQL). A user
/// and password in the URL authenticate (AUTH, ACL users included).
pub fn redis_client(url: &str) -> std::result::Result<redis::Client, redis::RedisError> {
    let (base, root) = match url.split_once('?') {
        Some((base, query)) => {
            let mut root = None;
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| match p.strip_prefix("sslrootcert=") {
                    Some(v) => {
                        root = Some(percent_decode(v));
                        false
                    }
                    None => !p.is_empty(),
                })
                .collect();
            let base = if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            };
            (base, root)
        }
        None => (url.to_string(), None),
    };
    if base.starts_with("rediss://") {
        provider();
    }
    match root {
        Some(path) if base.starts_with("rediss://") => {
            let pem = std::fs::read(&path).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "cannot read sslrootcert",
                    format!("{path}: {e}"),
                ))
            })?;
            redis::Client::build_with_tls(
                base.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
        }
        _ => redis::Client::open(base.as_str()),
    }
}

/// The password of the `[estate]` settings' `password_file`, once read.
static PASSWORD_FILE: Mutex<Option<String>> = Mutex::new(None);
/// pgpass files rehearse was told of (the lab's), after `PGPASSFILE`/`~/.pgpass`.
static PASSFILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Use the password in `path` (its first line) for connections whose URL has none.
pub fn set_password_file(path: &Path) -> Result<()> {
    check_key_mode(path, "password_file").map_err(|e| Error::Usage(e.to_string()))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("password_file {}: {e}", path.display())))?;
    let pw = text.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        return Err(Error::Usage(format!(
            "password_file {} is empty",
            path.display()
        )));
    }
    *PASSWORD_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(pw);
    Ok(())
}

/// Also look for passwords in this pgpass file (the lab's).
pub fn add_passfile(path: &Path) {
    let mut v = PASSFILES.lock().unwrap_or_else(|e| e.into_inner());
    if !v.iter().any(|p| p == path) {
        v.push(path.to_path_buf());
    }
}

/// One field of a pgpass line matches: `*` or the value (with `\:` and `\\` unescaped).
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("one field").push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().expect("one field").push(c),
        }
    }
    out
}

/// The password a pgpass text gives for host, port, database and user.
pub fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(pgpass_fields)
        .filter(|f| f.len() == 5)
        .find(|f| {
            let m = |field: &str, v: &str| field == "*" || field == v;
            m(&f[0], host) && m(&f[1], &port) && m(&f[2], db) && m(&f[3], user)
        })
        .map(|f| f[4].clone())
}

/// The password for a connection whose string has none: the `[estate]`
/// password_file, `PGPASSWORD`, then the pgpass files (`PGPASSFILE` or
/// `~/.pgpass`, then the lab's). A pgpass file that group or others can
/// read is skipped, with a warning, as libpq does.
pub fn password_for(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    if let Some(p) = PASSWORD_FILE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return Some(p);
    }
    if let Ok(p) = std::env::var("PGPASSWORD") {
        if !p.is_empty() {
            return Some(p);
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    match std::env::var_os("PGPASSFILE") {
        Some(f) => files.push(PathBuf::from(f)),
        None => {
            if let Some(h) = std::env::var_os("HOME") {
                files.push(PathBuf::from(h).join(".pgpass"));
            }
        }
    }
    files.extend(
        PASSFILES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        if let Err(e) = check_key_mode(&f, "password file") {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| eprintln!("warning: {e}; it is ignored, as libpq ignores it"));
            continue;
        }
        if let Some(p) = pgpass_lookup(&text, host, port, db, user) {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn libpq_keys_are_taken_out_of_urls_and_key_value_strings() {
        let (rest, t) = split_with(
            "postgresql://u@db.example:5433/x?sslmode=verify-full&application_name=a&sslrootcert=%2Ftmp%2Fca.pem",
            no_env,
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u@db.example:5433/x?application_name=a");
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some(Path::new("/tmp/ca.pem")));
        let (rest, t) = split_with("host=h port=1 sslmode=require dbname=d", no_env).unwrap();
        assert_eq!(rest, "host=h port=1 dbname=d");
        assert_eq!(t.mode, SslMode::Require);
        // libpq's default, and its environment when the string says nothing.
        let (_, t) = split_with("postgresql://h/d", no_env).unwrap();
        assert_eq!(t.mode, SslMode::Prefer);
        let env = |k: &str| (k == "PGSSLMODE").then(|| "verify-ca".to_string());
        assert_eq!(
            split_with("postgresql://h/d", env).unwrap().1.mode,
            SslMode::VerifyCa
        );
        assert_eq!(
            split_with("postgresql://h/d?sslmode=disable", env)
                .unwrap()
                .1
                .mode,
            SslMode::Disable
        );
        let e = split_with("postgresql://h/d?sslmode=verify", no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("verify-full"), "{e}");
        assert!(split_with("postgresql://h/d?sslcert=/c", no_env).is_err());
    }

    #[test]
    fn require_checks_the_chain_only_with_a_root_as_libpq_does() {
        let t = |mode, root: Option<&str>| TlsSettings {
            mode,
            root_cert: root.map(PathBuf::from),
            cert: None,
            key: None,
        };
        assert_eq!(t(SslMode::Require, None).checks(), (false, false));
        assert_eq!(t(SslMode::Require, Some("/ca")).checks(), (true, false));
        assert_eq!(t(SslMode::VerifyCa, None).checks(), (true, false));
        assert_eq!(t(SslMode::VerifyFull, None).checks(), (true, true));
        assert_eq!(t(SslMode::Prefer, Some("/ca")).checks(), (false, false));
    }

    #[test]
    fn pgpass_lines_match_as_libpq_reads_them() {
        let text = "# comment\n\
                    other:5432:*:u:wrong\n\
                    127.0.0.1:5433:rehearse:u:first\n\
                    *:*:*:u:any\n\
                    h\\:x:1:d:u:p\\:w\\\\\n";
        assert_eq!(
            pgpass_lookup(text, "127.0.0.1", 5433, "rehearse", "u").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "127.0.0.1", 5434, "rehearse", "u").as_deref(),
            Some("any")
        );
        assert_eq!(
            pgpass_lookup(text, "127.0.0.1", 5433, "rehearse", "v"),
            None
        );
        assert_eq!(
            pgpass_lookup("h\\:x:1:d:u:p\\:w\\\\", "h:x", 1, "d", "u").as_deref(),
            Some("p:w\\")
        );
    }
}
