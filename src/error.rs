//! The library's error type and the exit code (from [`crate::exit`]) each
//! kind of failure maps to.

use std::path::PathBuf;

use crate::exit;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the user can fix: a flag, a settings file, a value out of range.
    #[error("{0}")]
    Usage(String),

    #[error(
        "{binary} not found (looked in {searched}); install Debian's packages \
         with `apt-get install postgresql pgbouncer redis-server`, or run \
         ci/bootstrap.sh, which installs everything rehearse needs"
    )]
    MissingBinary { binary: String, searched: String },

    #[error(
        "port {port} on 127.0.0.1, wanted for the lab's {component}, is already in use; \
         choose other ports with --port-base N (the lab uses N..N+9), or stop what \
         listens there (`ss -ltnp 'sport = :{port}'` shows it)"
    )]
    PortInUse { port: u16, component: String },

    /// The lab or a component of the estate is not in the state a command needs.
    #[error("{0}")]
    Lab(String),

    #[error("{what}: {}", describe_pg(.source))]
    Db {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error("{what}: {source}")]
    Redis {
        what: String,
        #[source]
        source: redis::RedisError,
    },

    #[error("{what} ({}): {source}", .path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// What a call names does not exist (an entry, or a property of the organization).
    #[error("not found: {0}")]
    NotFound(String),

    /// Not enough disk where a command would write (exit 4, as the
    /// environment is short, not the input wrong).
    #[error("{0}")]
    NoSpace(String),

    /// A command was refused because acting would be unsafe.
    #[error("refused: {0}")]
    Refused(String),
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::NotFound(_) => exit::USAGE,
            Error::Refused(_) => exit::REFUSED,
            Error::MissingBinary { .. }
            | Error::PortInUse { .. }
            | Error::Lab(_)
            | Error::NoSpace(_)
            | Error::Db { .. }
            | Error::Redis { .. }
            | Error::Io { .. } => exit::ENVIRONMENT,
        }
    }
}

/// A one-line description of a PostgreSQL error that keeps its SQLSTATE, so
/// an SRE can look the code up instead of parsing prose.
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cause = c.source();
            }
            s
        }
    }
}

/// Extension to attach "what was being done" to database results.
pub trait DbContext<T> {
    fn db(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, tokio_postgres::Error> {
    fn db(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Db {
            what: what(),
            source,
        })
    }
}

/// Extension to attach "what was being done" and the path to I/O results.
pub trait IoContext<T> {
    fn io(self, what: &str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, what: &str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        })
    }
}
