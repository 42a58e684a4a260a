//! Where to reach the estate: one settings type for the primary, the replica,
//! PgBouncer and Redis, resolved from (in this order) command-line flags, the
//! environment, a `rehearse.toml` file, and finally the running embedded lab.
//!
//! So the same commands work against a staging estate and against the lab.
//! Each endpoint remembers where it came from: destructive commands use that
//! to tell the lab from a database they must not touch.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, IoContext, Result};
use crate::labfile::LabView;
use crate::url::redact;

pub const ENV_PRIMARY: &str = "REHEARSE_PRIMARY_URL";
pub const ENV_REPLICA: &str = "REHEARSE_REPLICA_URL";
pub const ENV_PGBOUNCER: &str = "REHEARSE_PGBOUNCER_URL";
pub const ENV_PGBOUNCER_REPLICA: &str = "REHEARSE_PGBOUNCER_REPLICA_URL";
pub const ENV_REDIS: &str = "REHEARSE_REDIS_URL";
pub const ENV_CONFIG: &str = "REHEARSE_CONFIG";
pub const ENV_LAB_DIR: &str = "REHEARSE_LAB_DIR";
/// The lab Prometheus's base URL, exported by `rehearse lab env`.
pub const ENV_PROMETHEUS: &str = "REHEARSE_PROMETHEUS_URL";

/// The lab directory used when neither `--lab-dir` nor `REHEARSE_LAB_DIR` says otherwise.
pub const DEFAULT_LAB_DIR: &str = ".rehearse/lab";
/// The settings file read from the working directory when present.
pub const DEFAULT_CONFIG_FILE: &str = "rehearse.toml";

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File(PathBuf),
    Lab(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "command line"),
            Source::Env(var) => write!(f, "environment ({var})"),
            Source::File(p) => write!(f, "settings file {}", p.display()),
            Source::Lab(p) => write!(f, "embedded lab at {}", p.display()),
        }
    }
}

/// A connection URL and where it came from. Displays without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub source: Source,
}

impl Endpoint {
    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.redacted(), self.source)
    }
}

/// The estate settings the user gave on the command line.
#[derive(Debug, Clone, Default)]
pub struct EstateFlags {
    pub primary_url: Option<String>,
    pub replica_url: Option<String>,
    pub pgbouncer_url: Option<String>,
    pub pgbouncer_replica_url: Option<String>,
    pub redis_url: Option<String>,
    pub config: Option<PathBuf>,
    pub lab_dir: Option<PathBuf>,
}

/// The `[estate]` table of `rehearse.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default)]
    estate: FileEstate,
    #[serde(default)]
    repository: FileRepository,
    attribution: Option<Sampling>,
}

/// The `[repository]` table: how the repository layer talks to the estate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepository {
    /// `leaf` (the default) or `parent`.
    partition_routing: Option<PartitionRouting>,
    /// With leaf routing: `generic` (the default) plans each leaf's
    /// statement once per connection; `auto` leaves it to PostgreSQL.
    leaf_plans: Option<LeafPlans>,
}

/// Where a single-tenant statement of the partitioned mode goes
/// (`[repository] partition_routing` in the settings file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionRouting {
    /// The organization's leaf partition, computed by the repository.
    #[default]
    Leaf,
    /// The partitioned parent: PostgreSQL prunes (the behaviour before leaf routing).
    Parent,
}

crate::named!("partition routing", PartitionRouting { Leaf = "leaf", Parent = "parent" });

/// How the repository's statements on leaf partitions are planned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeafPlans {
    /// `plan_cache_mode = force_generic_plan` on the repository's direct connections.
    #[default]
    Generic,
    /// PostgreSQL's own choice (five custom plans per connection and statement first).
    Auto,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEstate {
    primary_url: Option<String>,
    replica_url: Option<String>,
    pgbouncer_url: Option<String>,
    pgbouncer_replica_url: Option<String>,
    redis_url: Option<String>,
    /// A file whose first line is the PostgreSQL password, for URLs without
    /// one (mode 0600 or less); relative to the settings file.
    password_file: Option<PathBuf>,
}

/// How attribution samples (`[attribution]` in the settings file; see [`crate::attribution`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// Sample pg_stat_activity every this many milliseconds; 0 turns
    /// attribution off (no sampler, no trace, no statement snapshots).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Read pg_locks every this many rounds (0: never).
    #[serde(default = "default_lock_every")]
    pub lock_every: u32,
}

fn default_interval() -> u64 {
    10
}
fn default_lock_every() -> u32 {
    20
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            interval_ms: default_interval(),
            lock_every: default_lock_every(),
        }
    }
}

impl Sampling {
    pub fn off() -> Sampling {
        Sampling {
            interval_ms: 0,
            lock_every: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.interval_ms > 0
    }
}

/// Resolved settings: where each component of the estate is.
#[derive(Debug, Clone)]
pub struct Estate {
    pub primary: Endpoint,
    pub replica: Option<Endpoint>,
    pub pgbouncer: Option<Endpoint>,
    pub pgbouncer_replica: Option<Endpoint>,
    pub redis: Option<Endpoint>,
    /// The lab directory consulted (whether or not a lab runs there).
    pub lab_dir: PathBuf,
    /// The lab's primary URL when a lab state file exists: a primary equal to
    /// it is the lab, whichever way the user named it.
    lab_primary_url: Option<String>,
    /// The port the lab's Prometheus scrapes rehearse on, when it has monitoring.
    pub lab_metrics_port: Option<u16>,
    /// Where the partitioned mode's single-tenant statements go
    /// (`[repository] partition_routing`).
    pub partition_routing: PartitionRouting,

    /// How leaf statements are planned (`[repository] leaf_plans`).
    pub leaf_plans: LeafPlans,
    /// How runs sample the server for attribution (`[attribution]`).
    pub sampling: Sampling,
}

impl Estate {
    /// Resolve from flags, the process environment, the settings file and the lab.
    pub fn resolve(flags: &EstateFlags) -> Result<Estate> {
        Self::resolve_with(flags, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Resolve with an explicit environment lookup (tests pass their own).
    pub fn resolve_with(
        flags: &EstateFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Estate> {
        let lab_dir = flags
            .lab_dir
            .clone()
            .or_else(|| env(ENV_LAB_DIR).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LAB_DIR));

        let (file, repository, sampling, file_path) = load_file(flags.config.as_deref(), &env)?;
        let lab = LabView::load(&lab_dir)?;
        if let (Some(pf), Some(settings)) = (&file.password_file, &file_path) {
            let pf = settings.parent().map_or_else(|| pf.clone(), |d| d.join(pf));
            crate::tls::set_password_file(&pf)
                .map_err(|e| Error::Usage(format!("{}: [estate] {e}", settings.display())))?;
        }
        if let Some(p) = lab.as_ref().and_then(|l| l.pgpass.as_ref()) {
            crate::tls::add_passfile(p);
        }

        let pick = |flag: &Option<String>,
                    var: &'static str,
                    from_file: &Option<String>,
                    from_lab: Option<&str>|
         -> Option<Endpoint> {
            if let Some(u) = flag {
                return Some(Endpoint {
                    url: u.clone(),
                    source: Source::Flag,
                });
            }
            if let Some(u) = env(var) {
                return Some(Endpoint {
                    url: u,
                    source: Source::Env(var),
                });
            }
            if let (Some(u), Some(p)) = (from_file, &file_path) {
                return Some(Endpoint {
                    url: u.clone(),
                    source: Source::File(p.clone()),
                });
            }
            from_lab.map(|u| Endpoint {
                url: u.to_string(),
                source: Source::Lab(lab_dir.clone()),
            })
        };

        let urls = lab.as_ref().map(|l| &l.urls);
        let primary = pick(
            &flags.primary_url,
            ENV_PRIMARY,
            &file.primary_url,
            urls.map(|u| u.primary.as_str()),
        )
        .ok_or_else(|| {
            Error::Usage(format!(
                "no PostgreSQL primary to work on: pass --primary-url, set {ENV_PRIMARY}, \
                 add [estate] primary_url to {DEFAULT_CONFIG_FILE}, or start the embedded lab \
                 with `rehearse lab up` (looked for a lab in {})",
                lab_dir.display()
            ))
        })?;
        Ok(Estate {
            replica: pick(
                &flags.replica_url,
                ENV_REPLICA,
                &file.replica_url,
                urls.map(|u| u.replica.as_str()),
            ),
            pgbouncer: pick(
                &flags.pgbouncer_url,
                ENV_PGBOUNCER,
                &file.pgbouncer_url,
                urls.map(|u| u.pgbouncer.as_str()),
            ),
            pgbouncer_replica: pick(
                &flags.pgbouncer_replica_url,
                ENV_PGBOUNCER_REPLICA,
                &file.pgbouncer_replica_url,
                urls.map(|u| u.pgbouncer_replica.as_str()),
            ),
            redis: pick(
                &flags.redis_url,
                ENV_REDIS,
                &file.redis_url,
                urls.map(|u| u.redis.as_str()),
            ),
            primary,
            lab_metrics_port: lab.as_ref().and_then(|l| l.metrics_port),
            lab_primary_url: lab.map(|l| l.urls.primary),
            lab_dir,
            partition_routing: repository.partition_routing.unwrap_or_default(),
            leaf_plans: repository.leaf_plans.unwrap_or_default(),
            sampling: sampling.unwrap_or_default(),
        })
    }

    /// Settings that point at exactly one primary, for tests and tools that
    /// already know the URL. Such a primary is never taken for the lab.
    pub fn primary_only(url: &str, source: Source) -> Estate {
        Estate {
            primary: Endpoint {
                url: url.to_string(),
                source,
            },
            replica: None,
            pgbouncer: None,
            pgbouncer_replica: None,
            redis: None,
            lab_dir: PathBuf::from(DEFAULT_LAB_DIR),
            lab_primary_url: None,
            lab_metrics_port: None,
            partition_routing: Default::default(),
            leaf_plans: LeafPlans::default(),
            sampling: Sampling::default(),
        }
    }

    /// Whether the primary is the embedded lab's: either it came from the lab
    /// state file, or it is the same URL the lab wrote there.
    pub fn primary_is_lab(&self) -> bool {
        matches!(self.primary.source, Source::Lab(_))
            || self.lab_primary_url.as_deref() == Some(self.primary.url.as_str())
    }
}

fn load_file(
    flag: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(
    FileEstate,
    FileRepository,
    Option<Sampling>,
    Option<PathBuf>,
)> {
    let (path, required) = match (flag, env(ENV_CONFIG)) {
        (Some(p), _) => (p.to_path_buf(), true),
        (None, Some(p)) => (PathBuf::from(p), true),
        (None, None) => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok((FileEstate::default(), FileRepository::default(), None, None))
        }
        Err(e) => return Err(e).io("reading the settings file", &path),
    };
    let parsed: FileSettings = toml::from_str(&text)
        .map_err(|e| Error::Usage(crate::text::toml_error_at(&path, &text, &e)))?;
    Ok((
        parsed.estate,
        parsed.repository,
        parsed.attribution,
        Some(path),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("rehearse-estate-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn flags_beat_env_which_beats_file_which_beats_lab() {
        let dir = tmpdir("order");
        let cfg = dir.join("r.toml");
        std::fs::write(
            &cfg,
            "[estate]\nprimary_url = \"postgresql://file/p\"\nreplica_url = \"postgresql://file/r\"\nredis_url = \"redis://file\"\npgbouncer_url = \"postgresql://file/b\"\n",
        )
        .unwrap();
        let lab_dir = dir.join("lab");
        crate::lab::LabState::sample(&lab_dir).save().unwrap();
        let flags = EstateFlags {
            primary_url: Some("postgresql://flag/p".into()),
            config: Some(cfg.clone()),
            lab_dir: Some(lab_dir.clone()),
            ..Default::default()
        };
        let env = env_of(&[
            (ENV_REPLICA, "postgresql://env/r"),
            (ENV_PRIMARY, "postgresql://env/p"),
        ]);
        let e = Estate::resolve_with(&flags, env).unwrap();
        assert_eq!(e.primary.url, "postgresql://flag/p");
        assert_eq!(e.primary.source, Source::Flag);
        assert_eq!(e.replica.as_ref().unwrap().url, "postgresql://env/r");
        assert_eq!(e.replica.as_ref().unwrap().source, Source::Env(ENV_REPLICA));
        assert_eq!(e.redis.as_ref().unwrap().source, Source::File(cfg));
        // Only the lab knows the PgBouncer replica entry.
        assert!(matches!(
            e.pgbouncer_replica.as_ref().unwrap().source,
            Source::Lab(_)
        ));
        assert!(!e.primary_is_lab());
    }

    #[test]
    fn lab_primary_named_by_url_is_still_the_lab() {
        let dir = tmpdir("labid");
        let lab = crate::lab::LabState::sample(&dir);
        lab.save().unwrap();
        let flags = EstateFlags {
            primary_url: Some(lab.urls.primary.clone()),
            lab_dir: Some(dir.clone()),
            ..Default::default()
        };
        let e = Estate::resolve_with(&flags, env_of(&[])).unwrap();
        assert!(e.primary_is_lab());
        let e = Estate::resolve_with(
            &EstateFlags {
                lab_dir: Some(dir),
                ..Default::default()
            },
            env_of(&[]),
        )
        .unwrap();
        assert!(matches!(e.primary.source, Source::Lab(_)));
        assert!(e.primary_is_lab());
    }

    #[test]
    fn no_primary_anywhere_is_a_usage_error_that_says_what_to_do() {
        let dir = tmpdir("none");
        let flags = EstateFlags {
            lab_dir: Some(dir.join("nolab")),
            ..Default::default()
        };
        let err = Estate::resolve_with(&flags, env_of(&[])).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::USAGE);
        assert!(err.to_string().contains("rehearse lab up"), "{err}");
    }

    #[test]
    fn unknown_key_in_settings_file_names_line_and_column() {
        let dir = tmpdir("badkey");
        let cfg = dir.join("rehearse.toml");
        std::fs::write(&cfg, "[estate]\nprimary_url = \"x\"\nreplika_url = \"y\"\n").unwrap();
        let flags = EstateFlags {
            config: Some(cfg),
            lab_dir: Some(dir),
            ..Default::default()
        };
        let err = Estate::resolve_with(&flags, env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rehearse.toml:3:1"), "{err}");
        assert!(err.contains("replika_url"), "{err}");
    }
}
