//! Finding the server binaries the lab starts.
//!
//! PostgreSQL's server programs live in `/usr/lib/postgresql/15/bin` on
//! Debian, and only some of them are on PATH; `pg_config --bindir` names the
//! directory when it is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Where the lab's binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub pg_bindir: PathBuf,
    pub pgbouncer: PathBuf,
    pub redis_server: PathBuf,
}

/// Where to look: an explicit PostgreSQL bin directory, and the directories
/// searched for pgbouncer and redis-server (PATH plus the sbin directories
/// root's PATH may lack, unless overridden).
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub pg_bindir: Option<PathBuf>,
    pub path: Option<Vec<PathBuf>>,
}

const PG_PROGRAMS: [&str; 4] = ["initdb", "pg_ctl", "pg_basebackup", "postgres"];

impl Search {
    fn dirs(&self) -> Vec<PathBuf> {
        if let Some(p) = &self.path {
            return p.clone();
        }
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        for extra in ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"] {
            let extra = PathBuf::from(extra);
            if !dirs.contains(&extra) {
                dirs.push(extra);
            }
        }
        dirs
    }

    pub(crate) fn find(&self, program: &str) -> Option<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join(program))
            .find(|p| is_executable(p))
    }

    /// Locate every binary, or name the first one missing and where we looked.
    pub fn locate(&self) -> Result<Binaries> {
        let candidates: Vec<PathBuf> = match &self.pg_bindir {
            Some(d) => vec![d.clone()],
            None => {
                let mut c = Vec::new();
                if let Some(pg_config) = self.find("pg_config") {
                    if let Ok(out) = Command::new(pg_config).arg("--bindir").output() {
                        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
                        if out.status.success() && !s.is_empty() {
                            c.push(PathBuf::from(s));
                        }
                    }
                }
                c.push(PathBuf::from("/usr/lib/postgresql/15/bin"));
                c
            }
        };
        let pg_bindir = candidates
            .iter()
            .find(|d| PG_PROGRAMS.iter().all(|p| is_executable(&d.join(p))))
            .cloned()
            .ok_or_else(|| {
                let missing = PG_PROGRAMS
                    .iter()
                    .find(|p| !candidates.iter().any(|d| is_executable(&d.join(p))))
                    .unwrap_or(&"initdb");
                Error::MissingBinary {
                    binary: missing.to_string(),
                    searched: join(&candidates),
                }
            })?;
        let find = |program: &str| {
            self.find(program).ok_or_else(|| Error::MissingBinary {
                binary: program.to_string(),
                searched: join(&self.dirs()),
            })
        };
        Ok(Binaries {
            pg_bindir,
            pgbouncer: find("pgbouncer")?,
            redis_server: find("redis-server")?,
        })
    }
}

impl Binaries {
    /// A PostgreSQL server program, such as `pg_ctl`.
    pub fn pg(&self, program: &str) -> PathBuf {
        self.pg_bindir.join(program)
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn join(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_postgres_names_the_binary_the_packages_and_the_bootstrap_script() {
        let s = Search {
            pg_bindir: Some(PathBuf::from("/nonexistent/pg/bin")),
            path: Some(vec![PathBuf::from("/nonexistent")]),
        };
        let err = s.locate().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("initdb not found"), "{msg}");
        assert!(msg.contains("/nonexistent/pg/bin"), "{msg}");
        assert!(
            msg.contains("apt-get install postgresql pgbouncer redis-server"),
            "{msg}"
        );
        assert!(msg.contains("ci/bootstrap.sh"), "{msg}");
        assert_eq!(err.exit_code(), crate::exit::ENVIRONMENT);
    }
}
