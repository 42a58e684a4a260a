//! `rehearse bench`: benchmarks that run rehearse and pgbench side by side, in one
//! invocation on the same server, so their ratio means something on a noisy
//! machine where absolute figures do not.

pub mod open_loop;
pub mod seed;
pub mod select;

use std::path::PathBuf;
use std::process::Command;

use crate::error::{DbContext, Error, Result};

/// pgbench, pointed at the server of a primary URL.
pub struct Pgbench {
    bin: PathBuf,
    host: String,
    port: String,
    user: String,
    password: Option<String>,
    tls: crate::tls::TlsSettings,
    dbname: String,
}

impl Pgbench {
    /// Find pgbench (Debian's PostgreSQL 15, or on PATH's usual place) for this server.
    pub fn for_primary(url: &str) -> Result<Pgbench> {
        let bin = ["/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| Error::MissingBinary {
                binary: "pgbench".into(),
                searched: "/usr/lib/postgresql/15/bin, /usr/bin".into(),
            })?;
        let crate::db::Conn { config: cfg, tls } = crate::db::config(url)?;
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        Ok(Pgbench {
            bin,
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432).to_string(),
            user: cfg.get_user().unwrap_or("postgres").to_string(),
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            dbname: cfg.get_dbname().unwrap_or("postgres").to_string(),
            tls,
        })
    }

    /// The primary URL's database.
    pub fn database(&self) -> &str {
        &self.dbname
    }

    /// `pgbench ARGS... DB`; the password goes in the environment, never on the command line.
    pub fn command(&self, args: &[&str], db: &str) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .args(["-h", &self.host, "-p", &self.port, "-U", &self.user, db]);
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        // libpq reads the same TLS settings from its environment.
        cmd.env("PGSSLMODE", self.tls.libpq_mode());
        for (var, v) in [
            ("PGSSLROOTCERT", &self.tls.root_cert),
            ("PGSSLCERT", &self.tls.cert),
            ("PGSSLKEY", &self.tls.key),
        ] {
            if let Some(p) = v {
                cmd.env(var, p);
            }
        }
        cmd
    }
}

/// Drop (if there) and create a scratch database.
pub async fn recreate_database(admin: &tokio_postgres::Client, name: &str) -> Result<()> {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .db(|| format!("dropping {name}"))?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .db(|| format!("creating {name}"))
}

/// CPU time and context switches, of this process or of its waited-for children.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_s: f64,
    /// Voluntary and involuntary context switches.
    pub switches: u64,
}

impl Usage {
    /// This process, all its threads.
    pub fn own() -> Usage {
        Usage::of(libc::RUSAGE_SELF)
    }

    /// The children it has waited for (pgbench).
    pub fn children() -> Usage {
        Usage::of(libc::RUSAGE_CHILDREN)
    }

    fn of(who: libc::c_int) -> Usage {
        // SAFETY: getrusage fills the struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        Usage {
            cpu_s: t(u.ru_utime) + t(u.ru_stime),
            switches: (u.ru_nvcsw + u.ru_nivcsw) as u64,
        }
    }

    /// What was used since `before`.
    pub fn since(self, before: Usage) -> Usage {
        Usage {
            cpu_s: self.cpu_s - before.cpu_s,
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}

/// The median of a non-empty list.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
