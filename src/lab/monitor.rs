//! The lab's monitoring: Prometheus with the project's alert rules, and the
//! exporters for the primary, the replica, PgBouncer and Redis, on the ports
//! after Redis, loopback only, as the lab user.
//!
//! Debian's packages give Prometheus 2.42, postgres_exporter 0.11.1 and
//! redis_exporter 1.45. Debian's PgBouncer exporter (a Python project, not
//! prometheus-community's) stops at its first scrape of PgBouncer 1.18
//! (KeyError 'total_requests': the column was renamed in 1.8), so the lab
//! runs rehearse's own (`rehearse lab pgbouncer-exporter`, in
//! [`crate::lab::pgbouncer_exporter`]) with prometheus-community's metric
//! names, the ones a production dashboard most likely uses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::process::{make_dir, read_pid, tail, terminate, write_file, RunAs};
use super::{Component, LabCtx};
use crate::error::{Error, IoContext, Result};

/// The alert rules the lab's Prometheus loads (the project's own file).
pub const RULES: &str = include_str!("../../observability/alerts/rehearse.rules.yml");
/// The extra queries postgres_exporter runs (partition rows, parents analyzed).
pub const QUERIES: &str = include_str!("../../observability/postgres-queries.yml");
/// Scrape and rule evaluation interval: short, for a rehearsal.
pub const INTERVAL_S: u64 = 2;

/// The monitoring programs, found at `lab up`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorBins {
    pub prometheus: PathBuf,
    pub postgres_exporter: PathBuf,
    pub redis_exporter: PathBuf,
    /// The rehearse binary that serves the PgBouncer exporter (the one
    /// that made the lab; a test process is not one).
    #[serde(default)]
    pub rehearse: Option<PathBuf>,
}

impl MonitorBins {
    /// Find them, or say which package to install (or to pass --no-monitoring).
    pub fn locate(find: impl Fn(&str) -> Option<PathBuf>) -> Result<MonitorBins> {
        let need = |program: &str, package: &str| {
            find(program).ok_or_else(|| {
                Error::Lab(format!(
                    "{program} not found: the lab's monitoring needs Debian's {package} package \
                     (`apt-get install {package}`, or `bash ci/bootstrap.sh`), or start the lab \
                     without monitoring: `rehearse lab up --no-monitoring`"
                ))
            })
        };
        Ok(MonitorBins {
            prometheus: need("prometheus", "prometheus")?,
            postgres_exporter: need(
                "prometheus-postgres-exporter",
                "prometheus-postgres-exporter",
            )?,
            redis_exporter: need("prometheus-redis-exporter", "prometheus-redis-exporter")?,
            rehearse: std::env::current_exe().ok(),
        })
    }
}

/// The Prometheus configuration the lab writes.
pub fn prometheus_yml(ctx: &LabCtx) -> String {
    let p = &ctx.state.ports;
    let t = |port: u16| format!("'127.0.0.1:{port}'");
    format!(
        "# Written by `rehearse lab`; rewritten on every start.
global:
  scrape_interval: {i}s
  scrape_timeout: {i}s
  evaluation_interval: {i}s
  external_labels:
    lab: rehearse
rule_files:
  - rules/rehearse.rules.yml
scrape_configs:
  - job_name: postgres
    static_configs:
      - targets: [{pe}]
        labels: {{role: primary}}
      - targets: [{re}]
        labels: {{role: replica}}
  - job_name: pgbouncer
    static_configs:
      - targets: [{be}]
  - job_name: redis
    static_configs:
      - targets: [{xe}]
  - job_name: rehearse
    # rehearse's own metrics, while a run or drill goes (--metrics-addr);
    # between runs this target is down, and no alert reads its up.
    static_configs:
      - targets: [{me}]
  - job_name: prometheus
    static_configs:
      - targets: [{pr}]
",
        i = INTERVAL_S,
        pe = t(p.primary_exporter),
        re = t(p.replica_exporter),
        be = t(p.pgbouncer_exporter),
        xe = t(p.redis_exporter),
        me = t(p.rehearse),
        pr = t(p.prometheus),
    )
}

/// Start a long-running program in a session of its own, output to `log`,
/// and record its pid in `pidfile`.
fn spawn_daemon(
    run_as: &RunAs,
    program: &Path,
    args: &[String],
    env: &[(&str, String)],
    dir: &Path,
    name: &str,
) -> Result<()> {
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).io("creating the log", &log_path)?;
    run_as.own(&log_path)?;
    let mut cmd = run_as.command(program, dir);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(log.try_clone().io("opening the log", &log_path)?)
        .stderr(log);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; it detaches the daemon from
        // our terminal, so Ctrl-C on rehearse does not reach it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    let child = cmd
        .spawn()
        .io(&format!("starting the lab {name}"), program)?;
    write_file(
        run_as,
        &dir.join(format!("{name}.pid")),
        &format!("{}\n", child.id()),
    )?;
    Ok(())
}

impl LabCtx {
    fn monitor_dir(&self) -> PathBuf {
        self.state.dir.join("monitoring")
    }

    /// `PGPASSFILE` for an exporter of a scram lab: the lab's pgpass, made
    /// the lab user's (mode 0600 kept) so that the exporter, which runs as
    /// it, can read it. The password is never on a command line.
    fn pgpass_env(&self) -> Result<Vec<(&'static str, String)>> {
        match &self.state.pgpass {
            Some(p) => {
                self.run_as.own(p)?;
                Ok(vec![("PGPASSFILE", p.display().to_string())])
            }
            None => Ok(Vec::new()),
        }
    }

    pub(super) fn monitor_pid(&self, c: Component) -> Option<i32> {
        read_pid(&self.monitor_dir().join(format!("{}.pid", c.name())))
    }

    /// The address a monitoring component serves on, and the path that says it is ready.
    fn probe(&self, c: Component) -> (String, &'static str) {
        let port = self.state.ports.of(c);
        let path = if c == Component::Prometheus {
            "/-/ready"
        } else {
            "/metrics"
        };
        (format!("127.0.0.1:{port}"), path)
    }

    pub(super) async fn start_monitor(&self, c: Component) -> Result<()> {
        let bins = self.state.monitoring.clone().ok_or_else(|| {
            Error::Lab("this lab was created without monitoring (--no-monitoring)".into())
        })?;
        let dir = make_dir(&self.run_as, &self.monitor_dir())?;
        let s = &self.state;
        let listen = |port: u16| format!("127.0.0.1:{port}");
        match c {
            Component::PrimaryExporter | Component::ReplicaExporter => {
                let queries = dir.join("postgres-queries.yml");
                write_file(&self.run_as, &queries, QUERIES)?;
                let server = if c == Component::PrimaryExporter {
                    Component::Primary
                } else {
                    Component::Replica
                };
                // lib/pq reads the URL's sslmode=verify-full and
                // sslrootcert as libpq does, and the password from PGPASSFILE.
                let url = s.url_for_db(server, &s.database);
                let dsn = if s.tls.is_some() {
                    url
                } else {
                    format!("{url}?sslmode=disable")
                };
                let mut env = vec![("DATA_SOURCE_NAME", dsn)];
                env.extend(self.pgpass_env()?);
                spawn_daemon(
                    &self.run_as,
                    &bins.postgres_exporter,
                    &[
                        format!("--web.listen-address={}", listen(s.ports.of(c))),
                        format!("--extend.query-path={}", queries.display()),
                        "--disable-settings-metrics".into(),
                    ],
                    &env,
                    &dir,
                    c.name(),
                )?;
            }
            Component::RedisExporter => {
                // redis_exporter takes the CA as a flag, not in the URL.
                let mut args = vec!["-web.listen-address".into(), listen(s.ports.of(c))];
                match &s.tls {
                    Some(t) => args.extend([
                        "-redis.addr".into(),
                        format!("rediss://127.0.0.1:{}", s.ports.redis),
                        "-tls-ca-cert-file".into(),
                        t.ca.display().to_string(),
                    ]),
                    None => args.extend(["-redis.addr".into(), s.urls.redis.clone()]),
                }
                spawn_daemon(
                    &self.run_as,
                    &bins.redis_exporter,
                    &args,
                    &[],
                    &dir,
                    c.name(),
                )?
            }
            Component::PgbouncerExporter => {
                let exe = match bins.rehearse.clone().filter(|p| p.exists()) {
                    Some(p) => p,
                    None => std::env::current_exe()
                        .io("finding the rehearse binary", Path::new("rehearse"))?,
                };
                spawn_daemon(
                    &self.run_as,
                    &exe,
                    &[
                        "lab".into(),
                        "pgbouncer-exporter".into(),
                        "--listen".into(),
                        listen(s.ports.of(c)),
                        "--pgbouncer".into(),
                        s.url_for_db(Component::Pgbouncer, "pgbouncer"),
                    ],
                    &self.pgpass_env()?,
                    &dir,
                    c.name(),
                )?
            }
            Component::Prometheus => {
                let pdir = make_dir(&self.run_as, &dir.join("prometheus"))?;
                make_dir(&self.run_as, &pdir.join("rules"))?;
                make_dir(&self.run_as, &pdir.join("data"))?;
                write_file(&self.run_as, &pdir.join("rules/rehearse.rules.yml"), RULES)?;
                let config = pdir.join("prometheus.yml");
                write_file(&self.run_as, &config, &prometheus_yml(self))?;
                spawn_daemon(
                    &self.run_as,
                    &bins.prometheus,
                    &[
                        format!("--config.file={}", config.display()),
                        format!("--storage.tsdb.path={}", pdir.join("data").display()),
                        "--storage.tsdb.retention.time=7d".into(),
                        format!("--web.listen-address={}", listen(s.ports.of(c))),
                        "--web.enable-lifecycle".into(),
                    ],
                    &[],
                    &dir,
                    c.name(),
                )?
            }
            _ => unreachable!("{} is not a monitoring component", c.name()),
        }
        self.wait_monitor(c, Duration::from_secs(30)).await
    }

    async fn wait_monitor(&self, c: Component, limit: Duration) -> Result<()> {
        let (addr, path) = self.probe(c);
        let start = Instant::now();
        loop {
            let a = addr.clone();
            let got = tokio::task::spawn_blocking(move || {
                crate::http::get(&a, path, Duration::from_secs(2))
            })
            .await
            .map_err(|e| Error::Lab(format!("probing {}: {e}", c.name())))?;
            match got {
                Ok(r) if r.status == 200 => return Ok(()),
                _ if self.monitor_pid(c).is_none() || start.elapsed() > limit => {
                    let log = self.monitor_dir().join(format!("{}.log", c.name()));
                    let last = std::fs::read_to_string(&log)
                        .map(|t| tail(&t, 15))
                        .unwrap_or_default();
                    let what = match &got {
                        Ok(r) => format!("answered {} on {path}", r.status),
                        Err(e) => e.to_string(),
                    };
                    return Err(Error::Lab(format!(
                        "the lab {} did not come up on {addr} ({what}); last lines of {}:\n{last}",
                        c.name(),
                        log.display()
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    pub(super) fn stop_monitor(&self, c: Component) {
        if let Some(pid) = self.monitor_pid(c) {
            terminate(pid, libc::SIGTERM, Duration::from_secs(10));
        }
        let _ = std::fs::remove_file(self.monitor_dir().join(format!("{}.pid", c.name())));
    }

    /// Whether a monitoring component answers; Ok(what it is) when it does.
    pub(super) async fn monitor_status(&self, c: Component) -> Result<String> {
        let (addr, path) = self.probe(c);
        let r = tokio::task::spawn_blocking(move || {
            crate::http::get(&addr, path, Duration::from_secs(2))
        })
        .await
        .map_err(|e| Error::Lab(e.to_string()))??;
        if r.status != 200 {
            return Err(Error::Lab(format!("{path} answered {}", r.status)));
        }
        if c == Component::Prometheus {
            let addr = self.probe(c).0;
            let info = tokio::task::spawn_blocking(move || {
                crate::http::get(&addr, "/api/v1/status/buildinfo", Duration::from_secs(2))
            })
            .await
            .map_err(|e| Error::Lab(e.to_string()))??;
            let v: serde_json::Value = serde_json::from_str(&info.body).unwrap_or_default();
            return Ok(format!(
                "Prometheus {}",
                v["data"]["version"].as_str().unwrap_or("?")
            ));
        }
        if c == Component::PgbouncerExporter {
            return Ok(format!("rehearse {}", env!("CARGO_PKG_VERSION")));
        }
        Ok(exporter_version(&r.body).unwrap_or_else(|| "exporter".into()))
    }

    /// The lab Prometheus's base URL, when the lab has one.
    pub fn prometheus_url(&self) -> Option<String> {
        self.state.prometheus_url()
    }
}

/// "postgres_exporter 0.11.1" from an exporter's `<name>_build_info{...version="..."}` series.
fn exporter_version(exposition: &str) -> Option<String> {
    exposition.lines().find_map(|l| {
        let (name, rest) = l.split_once("_build_info{")?;
        let v = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("version=\""))?
            .split('"')
            .next()?;
        Some(format!("{name} {v}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_version_reads_build_info() {
        let m = "# HELP x\nredis_exporter_build_info{build_date=\"\",commit_sha=\"\",golang_version=\"go1.19\",version=\"1.45.0\"} 1\n";
        assert_eq!(
            exporter_version(m).as_deref(),
            Some("redis_exporter 1.45.0")
        );
        assert_eq!(exporter_version("pgbouncer_up 1\n"), None);
    }
}
