//! The embedded lab: a PostgreSQL 15 primary, a streaming replica, PgBouncer
//! in transaction pooling and Redis, all on loopback, started from Debian's
//! packages and owned by one directory.
//!
//! `lab.json` in that directory records ports, binaries and connection URLs;
//! every other command reads it to find the lab. It is written before any
//! server starts, so `lab down` can clean up after a failed `lab up`, and is
//! marked ready only once every component answers.

mod binaries;
pub mod monitor;
mod pgbouncer;
pub mod pgbouncer_exporter;
mod postgres;
pub mod process;
mod redis;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use binaries::{Binaries, Search};
pub use postgres::{
    machine_cores, machine_memory, replica_lag_bytes, sized_settings, REPLICA_SLOT,
};
pub use redis::ping as redis_ping;

use crate::error::{Error, IoContext, Result};
use process::RunAs;

use crate::labfile::STATE_FORMAT;
pub use crate::labfile::{LabUrls, STATE_FILE};
/// Default first port: primary, replica, pgbouncer and redis take N..N+3;
/// Prometheus, the four exporters and rehearse's own metrics N+4..N+9.
/// Below Linux's ephemeral range (32768-60999 by default), from which the
/// kernel hands out the local ports of outgoing connections: a lab port in
/// it can be taken by any client on the machine, the lab's own PgBouncer
/// and scrapes included, and then `lab up`, or a component a drill
/// restarts, finds it in use.
pub const DEFAULT_PORT_BASE: u16 = 25430;

/// The machine's ephemeral port range, from
/// /proc/sys/net/ipv4/ip_local_port_range (None where it cannot be read).
pub fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// Why ports N..N+9 are a poor choice on a machine whose ephemeral range
/// is `range`: None when they lie outside it.
pub fn ephemeral_overlap(base: u16, range: (u16, u16)) -> Option<String> {
    let last = base.saturating_add(PORTS_USED - 1);
    (base <= range.1 && last >= range.0).then(|| {
        format!(
            "ports {base}..{last} overlap this machine's ephemeral port range {}-{} \
             (/proc/sys/net/ipv4/ip_local_port_range), from which the kernel picks the local \
             port of every outgoing connection: any client, the lab's own PgBouncer and \
             scrapes included, can take one of them, and then a component cannot bind it \
             (at start, or when a drill restarts it). Choose --port-base below {} (the \
             default is {DEFAULT_PORT_BASE}).",
            range.0,
            range.1,
            range.0.saturating_sub(PORTS_USED)
        )
    })
}
/// The database the lab creates and every URL names.
pub const LAB_DATABASE: &str = "rehearse";

/// Ports the lab takes from its base: N..N+9.
pub const PORTS_USED: u16 = 10;

/// One server of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Primary,
    Replica,
    Pgbouncer,
    Redis,
    PrimaryExporter,
    ReplicaExporter,
    PgbouncerExporter,
    RedisExporter,
    Prometheus,
}

// In start order; stop order is the reverse.
crate::named!("lab component", Component {
    Primary = "primary",
    Replica = "replica",
    Pgbouncer = "pgbouncer",
    Redis = "redis",
    PrimaryExporter = "primary-exporter",
    ReplicaExporter = "replica-exporter",
    PgbouncerExporter = "pgbouncer-exporter",
    RedisExporter = "redis-exporter",
    Prometheus = "prometheus",
});

impl Component {
    /// The database servers, without the monitoring.
    pub const SERVERS: [Component; 4] = [
        Component::Primary,
        Component::Replica,
        Component::Pgbouncer,
        Component::Redis,
    ];
    /// Prometheus or an exporter.
    pub fn is_monitoring(self) -> bool {
        !Self::SERVERS.contains(&self)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ports {
    pub primary: u16,
    pub replica: u16,
    pub pgbouncer: u16,
    pub redis: u16,
    // Labs made before monitoring existed have none of these (0).
    #[serde(default)]
    pub prometheus: u16,
    #[serde(default)]
    pub primary_exporter: u16,
    #[serde(default)]
    pub replica_exporter: u16,
    #[serde(default)]
    pub pgbouncer_exporter: u16,
    #[serde(default)]
    pub redis_exporter: u16,
    /// Where `rehearse run` serves its metrics by default, for the lab's Prometheus.
    #[serde(default)]
    pub rehearse: u16,
}

impl Ports {
    pub fn from_base(base: u16) -> Result<Ports> {
        let last = PORTS_USED - 1;
        if !(1024..=u16::MAX - last).contains(&base) {
            return Err(Error::Usage(format!(
                "--port-base {base} is out of range: the lab needs ten ports from N to N+{last}, with N between 1024 and {}",
                u16::MAX - last
            )));
        }
        Ok(Ports {
            primary: base,
            replica: base + 1,
            pgbouncer: base + 2,
            redis: base + 3,
            prometheus: base + 4,
            primary_exporter: base + 5,
            replica_exporter: base + 6,
            pgbouncer_exporter: base + 7,
            redis_exporter: base + 8,
            rehearse: base + 9,
        })
    }

    pub fn of(&self, c: Component) -> u16 {
        match c {
            Component::Primary => self.primary,
            Component::Replica => self.replica,
            Component::Pgbouncer => self.pgbouncer,
            Component::Redis => self.redis,
            Component::PrimaryExporter => self.primary_exporter,
            Component::ReplicaExporter => self.replica_exporter,
            Component::PgbouncerExporter => self.pgbouncer_exporter,
            Component::RedisExporter => self.redis_exporter,
            Component::Prometheus => self.prometheus,
        }
    }
}

/// What `lab.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub format: u32,
    pub dir: PathBuf,
    pub user: String,
    pub database: String,
    pub ports: Ports,
    pub urls: LabUrls,
    pub pg_bindir: PathBuf,
    pub pgbouncer_bin: PathBuf,
    pub redis_bin: PathBuf,
    /// The server settings sized for this machine, as applied.
    pub settings: Vec<(String, String)>,
    /// True once every component answered after `lab up`.
    pub ready: bool,
    /// Prometheus and the exporters; None for a lab without monitoring.
    #[serde(default)]
    pub monitoring: Option<monitor::MonitorBins>,
    /// The pgpass file (mode 0600) holding the password of a lab started with
    /// `--auth scram`; None for a lab that trusts 127.0.0.1.
    #[serde(default)]
    pub pgpass: Option<PathBuf>,
    /// The CA and server certificate of a lab started with `--tls`.
    #[serde(default)]
    pub tls: Option<tls::LabTls>,
    /// The PostgreSQL user the lab's URLs name.
    #[serde(default = "default_db_user")]
    pub db_user: String,
}

fn default_db_user() -> String {
    "postgres".into()
}

impl LabState {
    fn new(
        dir: &Path,
        user: &str,
        ports: Ports,
        bins: &Binaries,
        monitoring: Option<monitor::MonitorBins>,
        tls: Option<tls::LabTls>,
        pgpass: Option<PathBuf>,
    ) -> LabState {
        let db = LAB_DATABASE;
        let db_user = if pgpass.is_some() {
            tls::SCRAM_USER.to_string()
        } else {
            default_db_user()
        };
        let pg = |port: u16, name: &str| pg_url(&db_user, tls.as_ref(), port, name);
        LabState {
            format: STATE_FORMAT,
            dir: dir.to_path_buf(),
            user: user.to_string(),
            database: db.to_string(),
            urls: LabUrls {
                primary: pg(ports.primary, db),
                replica: pg(ports.replica, db),
                pgbouncer: pg(ports.pgbouncer, db),
                pgbouncer_replica: pg(ports.pgbouncer, &pgbouncer::replica_entry(db)),
                redis: match &tls {
                    Some(t) => format!(
                        "rediss://127.0.0.1:{}/?sslrootcert={}",
                        ports.redis,
                        crate::http::encode(&t.ca.display().to_string())
                    ),
                    None => format!("redis://127.0.0.1:{}/", ports.redis),
                },
            },
            ports,
            pg_bindir: bins.pg_bindir.clone(),
            pgbouncer_bin: bins.pgbouncer.clone(),
            redis_bin: bins.redis_server.clone(),
            settings: sized_settings(machine_memory(), machine_cores())
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ready: false,
            monitoring,
            pgpass,
            tls,
            db_user,
        }
    }

    /// The lab Prometheus's base URL, when the lab has monitoring.
    pub fn prometheus_url(&self) -> Option<String> {
        self.monitoring
            .as_ref()
            .map(|_| format!("http://127.0.0.1:{}", self.ports.prometheus))
    }

    /// The components this lab has, in start order.
    pub fn components(&self) -> Vec<Component> {
        let all = if self.monitoring.is_some() {
            &Component::ALL[..]
        } else {
            &Component::SERVERS[..]
        };
        all.to_vec()
    }

    /// Read `lab.json` from a lab directory; None when there is no lab there.
    pub fn load(dir: &Path) -> Result<Option<LabState>> {
        crate::labfile::read(dir, |s: &LabState| s.format)
    }

    /// Write `lab.json` atomically.
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("lab state serializes");
        crate::fsutil::write_atomic(&self.dir.join(STATE_FILE), text.as_bytes())
    }

    /// A URL to another database on a PostgreSQL component of the lab.
    pub fn url_for_db(&self, c: Component, db: &str) -> String {
        pg_url(&self.db_user, self.tls.as_ref(), self.ports.of(c), db)
    }

    /// `export` lines for a shell: the URLs, and the lab directory as an
    /// absolute path, so that later commands without `--dir` know these
    /// URLs for the lab's own (a rehearsal target) wherever they run.
    pub fn env_lines(&self) -> String {
        use crate::estate::*;
        let u = &self.urls;
        let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
        let dir = dir.to_string_lossy().replace('\'', "'\\''");
        let prometheus = self.prometheus_url();
        // psql and pgbench find the password where rehearse does.
        let pgpass = self.pgpass.as_ref().map(|p| p.display().to_string());
        [
            (ENV_PRIMARY, u.primary.as_str()),
            (ENV_REPLICA, &u.replica),
            (ENV_PGBOUNCER, &u.pgbouncer),
            (ENV_PGBOUNCER_REPLICA, &u.pgbouncer_replica),
            (ENV_REDIS, &u.redis),
            (ENV_LAB_DIR, &dir),
        ]
        .into_iter()
        .chain(prometheus.as_deref().map(|p| (ENV_PROMETHEUS, p)))
        .chain(pgpass.as_deref().map(|p| ("PGPASSFILE", p)))
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect()
    }

    #[cfg(test)]
    pub fn sample(dir: &Path) -> LabState {
        let bins = Binaries {
            pg_bindir: "/usr/lib/postgresql/15/bin".into(),
            pgbouncer: "/usr/sbin/pgbouncer".into(),
            redis_server: "/usr/bin/redis-server".into(),
        };
        let mon = monitor::MonitorBins {
            prometheus: "/usr/bin/prometheus".into(),
            postgres_exporter: "/usr/bin/prometheus-postgres-exporter".into(),
            redis_exporter: "/usr/bin/prometheus-redis-exporter".into(),
            rehearse: None,
        };
        LabState::new(
            dir,
            "postgres",
            Ports::from_base(60000).unwrap(),
            &bins,
            Some(mon),
            None,
            None,
        )
    }
}

/// How to run `lab up`.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub dir: PathBuf,
    pub port_base: u16,
    pub user: String,
    pub search: Search,
    /// Print progress to stderr.
    pub verbose: bool,
    /// Also start Prometheus and the exporters (the default).
    pub monitoring: bool,
    /// The rehearse binary that serves the lab's PgBouncer exporter
    /// [default: this process's own].
    pub rehearse_bin: Option<PathBuf>,
    /// TLS on every server, with the lab's own CA (`lab up --tls`).
    pub tls: bool,
    /// scram-sha-256 passwords for a generated user (`lab up --auth scram`).
    pub scram: bool,
}

impl LabOptions {
    pub fn new(dir: impl Into<PathBuf>) -> LabOptions {
        LabOptions {
            dir: dir.into(),
            port_base: DEFAULT_PORT_BASE,
            user: "postgres".into(),
            search: Search::default(),
            verbose: true,
            monitoring: true,
            rehearse_bin: None,
            tls: false,
            scram: false,
        }
    }
}

/// A URL of the lab's PostgreSQL (or PgBouncer) on `port`: with `--tls`,
/// verify-full against the lab's CA; never with a password (that is in the
/// lab's pgpass file).
fn pg_url(user: &str, tls: Option<&tls::LabTls>, port: u16, db: &str) -> String {
    let q = tls.map_or(String::new(), |t| {
        format!(
            "?sslmode=verify-full&sslrootcert={}",
            crate::http::encode(&t.ca.display().to_string())
        )
    });
    format!("postgresql://{user}@127.0.0.1:{port}/{db}{q}")
}

/// A lab with its binaries and user resolved: what every action needs.
pub struct LabCtx {
    pub state: LabState,
    bins: Binaries,
    run_as: RunAs,
    verbose: bool,
}

/// The status of one component.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub component: &'static str,
    pub up: bool,
    pub port: u16,
    pub pid: Option<i32>,
    pub version: Option<String>,
    /// Replica only: replay lag in bytes, measured from LSNs on the primary.
    pub replay_lag_bytes: Option<i64>,
    /// Why a component that has a process does not answer, if it does not.
    pub problem: Option<String>,
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir().io("reading the working directory", Path::new("."))?;
    Ok(cwd.join(dir))
}

impl LabCtx {
    /// Open the lab in `dir`, or fail with what to run when there is none.
    pub fn open(dir: &Path) -> Result<LabCtx> {
        let dir = absolute(dir)?;
        let state = LabState::load(&dir)?.ok_or_else(|| {
            Error::Lab(format!(
                "no lab in {}; start one with `rehearse lab up --lab-dir {}`",
                dir.display(),
                dir.display()
            ))
        })?;
        let run_as = RunAs::resolve(&state.user)?;
        if let Some(p) = &state.pgpass {
            crate::tls::add_passfile(p);
        }
        let bins = Binaries {
            pg_bindir: state.pg_bindir.clone(),
            pgbouncer: state.pgbouncer_bin.clone(),
            redis_server: state.redis_bin.clone(),
        };
        Ok(LabCtx {
            state,
            bins,
            run_as,
            verbose: true,
        })
    }

    /// Print progress lines (the default) or keep quiet.
    pub fn set_verbose(&mut self, verbose: bool) {
        self.verbose = verbose;
    }

    fn say(&self, msg: &str) {
        if self.verbose {
            eprintln!("{msg}");
        }
    }

    /// The pid of a component's main process, if it runs.
    pub fn pid(&self, c: Component) -> Option<i32> {
        match c {
            Component::Primary | Component::Replica => self.postgres_pid(c),
            Component::Pgbouncer => self.pgbouncer_pid(),
            Component::Redis => self.redis_pid(),
            _ => self.monitor_pid(c),
        }
    }

    /// Start one component, if it is not running, and wait until it answers.
    pub async fn start(&self, c: Component) -> Result<()> {
        if let Some(pid) = self.pid(c) {
            self.say(&format!("{} already running (pid {pid})", c.name()));
            return Ok(());
        }
        process::ensure_port_free(self.state.ports.of(c), c.name())?;
        let t = std::time::Instant::now();
        match c {
            Component::Primary => {
                self.init_primary()?;
                self.start_postgres(c)?;
                self.prepare_primary().await?;
            }
            Component::Replica => {
                if self.postgres_pid(Component::Primary).is_none() {
                    return Err(Error::Lab(
                        "the replica streams from the primary, which is not running; \
                         start it first with `rehearse lab start primary`"
                            .into(),
                    ));
                }
                self.init_replica().await?;
                self.start_postgres(c)?;
                self.wait_streaming(Duration::from_secs(60)).await?;
            }
            Component::Pgbouncer => self.start_pgbouncer().await?,
            Component::Redis => self.start_redis().await?,
            _ => self.start_monitor(c).await?,
        }
        self.say(&format!(
            "{:<18} up on 127.0.0.1:{} ({:.1}s)",
            c.name(),
            self.state.ports.of(c),
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Stop one component; a component that is not running is left alone.
    pub fn stop(&self, c: Component) -> Result<()> {
        match c {
            Component::Primary | Component::Replica => self.stop_postgres(c)?,
            Component::Pgbouncer => self.stop_pgbouncer(),
            Component::Redis => self.stop_redis(),
            _ => self.stop_monitor(c),
        }
        Ok(())
    }

    /// Each component's state, version and (replica) lag.
    pub async fn status(&self) -> Vec<ComponentStatus> {
        let mut out = Vec::new();
        for c in self.state.components() {
            let pid = self.pid(c);
            let mut s = ComponentStatus {
                component: c.name(),
                up: false,
                port: self.state.ports.of(c),
                pid,
                version: None,
                replay_lag_bytes: None,
                problem: None,
            };
            if pid.is_some() {
                let probe = match c {
                    Component::Primary => postgres::server_version(&self.state.urls.primary).await,
                    Component::Replica => postgres::server_version(&self.state.urls.replica).await,
                    Component::Pgbouncer => self.pgbouncer_version().await,
                    Component::Redis => redis_ping(&self.state.urls.redis).await,
                    _ => self.monitor_status(c).await,
                };
                match probe {
                    Ok(v) => {
                        s.up = true;
                        s.version = Some(v);
                    }
                    Err(e) => s.problem = Some(e.to_string()),
                }
                if c == Component::Replica && s.up {
                    s.replay_lag_bytes = replica_lag_bytes(&self.state.urls.primary)
                        .await
                        .ok()
                        .flatten();
                }
            }
            out.push(s);
        }
        out
    }

    /// Stop every component, in reverse start order. Returns the pids stopped.
    pub fn down(&self) -> Result<Vec<i32>> {
        let mut stopped = Vec::new();
        for c in self.state.components().iter().rev() {
            if let Some(pid) = self.pid(*c) {
                self.stop(*c)?;
                self.say(&format!("{:<18} stopped (pid {pid})", c.name()));
                stopped.push(pid);
            }
        }
        Ok(stopped)
    }

    /// Delete the lab directory. Refuses while any component runs.
    pub fn purge(self) -> Result<()> {
        if let Some(c) = Component::ALL.iter().find(|c| self.pid(**c).is_some()) {
            return Err(Error::Lab(format!(
                "the lab {} still runs; stop the lab before purging",
                c.name()
            )));
        }
        let dir = &self.state.dir;
        // Only ever delete a directory that holds a lab state file.
        if !dir.join(STATE_FILE).exists() {
            return Err(Error::Lab(format!(
                "{} is not a lab directory",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).io("removing the lab directory", dir)?;
        self.say(&format!("removed {}", dir.display()));
        Ok(())
    }
}

/// Bring the lab up: create it on first use, or start what is not running.
/// Returns the lab's state, ready.
pub async fn up(opts: &LabOptions) -> Result<LabState> {
    let dir = absolute(&opts.dir)?;
    if let Some(existing) = LabState::load(&dir)? {
        if (opts.tls && existing.tls.is_none()) || (opts.scram && existing.pgpass.is_none()) {
            return Err(Error::Usage(format!(
                "the lab in {} was created without --tls/--auth scram, which are chosen when a lab \
                 is created: `rehearse lab down --purge` first, or use another --lab-dir",
                dir.display()
            )));
        }
        let mut ctx = LabCtx::open(&dir)?;
        ctx.verbose = opts.verbose;
        let down: Vec<Component> = ctx
            .state
            .components()
            .into_iter()
            .filter(|c| ctx.pid(*c).is_none())
            .collect();
        if down.is_empty() && existing.ready {
            ctx.say(&format!(
                "the lab in {} is already running; nothing to do (`rehearse lab status` shows it)",
                dir.display()
            ));
            return Ok(existing);
        }
        if existing.ports != Ports::from_base(opts.port_base)?
            && opts.port_base != DEFAULT_PORT_BASE
        {
            ctx.say(&format!(
                "note: this lab was created with port base {}; --port-base is ignored",
                existing.ports.primary
            ));
        }
        return bring_up(ctx, &down).await;
    }

    let bins = opts.search.locate()?;
    // With --tls and --auth scram the exporters connect as rehearse does:
    // verified TLS against the lab's CA, the password from the lab's pgpass.
    let monitoring = if opts.monitoring {
        let mut bins = monitor::MonitorBins::locate(|p| opts.search.find(p))?;
        if let Some(b) = &opts.rehearse_bin {
            bins.rehearse = Some(b.clone());
        }
        Some(bins)
    } else {
        None
    };
    let run_as = RunAs::resolve(&opts.user)?;
    let ports = Ports::from_base(opts.port_base)?;
    if let Some(why) = ephemeral_range().and_then(|r| ephemeral_overlap(opts.port_base, r)) {
        eprintln!("WARNING: {why}");
    }
    let used = if monitoring.is_some() {
        &Component::ALL[..]
    } else {
        &Component::SERVERS[..]
    };
    for c in used {
        process::ensure_port_free(ports.of(*c), c.name())?;
    }
    if monitoring.is_some() {
        process::ensure_port_free(ports.rehearse, "rehearse's own metrics")?;
    }
    process::make_dir(&run_as, &dir)?;
    run_as.check_can_write(&dir)?;
    let certs = if opts.tls {
        Some(tls::make_certs(&run_as, &dir)?)
    } else {
        None
    };
    let pgpass = if opts.scram {
        let p = dir.join("pgpass");
        // libpq's format: host:port:database:user:password, this user anywhere.
        // Owned by the lab user: the exporters, which run as it, read it.
        tls::write_secret(
            &p,
            &format!("*:*:*:{}:{}\n", tls::SCRAM_USER, tls::new_password()?),
            Some(&run_as),
        )?;
        crate::tls::add_passfile(&p);
        Some(p)
    } else {
        None
    };
    let state = LabState::new(&dir, &run_as.name, ports, &bins, monitoring, certs, pgpass);
    state.save()?;
    let ctx = LabCtx {
        state,
        bins,
        run_as,
        verbose: opts.verbose,
    };
    ctx.say(&format!(
        "creating a lab in {} (servers run as {}); settings for {} cores and {} MiB:",
        dir.display(),
        ctx.run_as.name,
        machine_cores(),
        machine_memory() >> 20
    ));
    for (k, v) in &ctx.state.settings {
        ctx.say(&format!("  {k} = {v}"));
    }
    let all = ctx.state.components();
    bring_up(ctx, &all).await
}

async fn bring_up(mut ctx: LabCtx, components: &[Component]) -> Result<LabState> {
    for c in components {
        ctx.start(*c).await?;
    }
    ctx.state.ready = true;
    ctx.state.save()?;
    ctx.say(&format!(
        "lab ready; URLs in {} (`rehearse lab env` prints them)",
        ctx.state.dir.join(STATE_FILE).display()
    ));
    Ok(ctx.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_consecutive_and_range_checked() {
        let p = Ports::from_base(54320).unwrap();
        // The default lies below the kernel's default ephemeral range, and
        // a base inside or across its edge is named.
        assert_eq!(ephemeral_overlap(DEFAULT_PORT_BASE, (32768, 60999)), None);
        assert!(ephemeral_overlap(54320, (32768, 60999))
            .unwrap()
            .contains("ports 54320..54329 overlap"));
        assert!(ephemeral_overlap(32760, (32768, 60999)).is_some());
        assert!(ephemeral_overlap(32758, (32768, 60999)).is_none());
        assert!(ephemeral_overlap(60999, (32768, 60999)).is_some());
        assert_eq!(
            (p.primary, p.replica, p.pgbouncer, p.redis),
            (54320, 54321, 54322, 54323)
        );
        assert!(Ports::from_base(80).is_err());
        assert!(Ports::from_base(65534).is_err());
    }

    #[test]
    fn env_lines_export_every_url_and_no_password() {
        let s = LabState::sample(Path::new("/tmp/x"));
        let env = s.env_lines();
        assert_eq!(env.lines().count(), 7);
        assert!(
            env.contains("export REHEARSE_PROMETHEUS_URL='http://127.0.0.1:60004'\n"),
            "{env}"
        );
        assert!(env.contains("export REHEARSE_LAB_DIR='/tmp/x'\n"), "{env}");
        assert!(env.contains(
            "export REHEARSE_PRIMARY_URL='postgresql://postgres@127.0.0.1:60000/rehearse'"
        ));
        assert!(env.contains("export REHEARSE_PGBOUNCER_REPLICA_URL='postgresql://postgres@127.0.0.1:60002/rehearse_replica'"));
        assert!(!env.contains("password"));
    }

    #[test]
    fn component_names_round_trip() {
        for c in Component::ALL {
            assert_eq!(c.name().parse::<Component>().unwrap(), c);
        }
        assert!("replicas".parse::<Component>().is_err());
    }
}
