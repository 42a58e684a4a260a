//! The partition-aware repository layer: the one way rehearse reads and
//! writes finance data, as the services would after the rollout.
//!
//! Callers name operations ([`finance::Finance`] for writes, always on the
//! primary; [`reporting::Reporting`] for reads, routed by the
//! [`replicas::ReplicaManager`] and cached by [`cache::ReportCache`]); the
//! mode's table names come from [`crate::schema::tables`] and are rendered
//! into each statement once, here, when the repository starts.
//!
//! ```no_run
//! # async fn f(estate: &rehearse::estate::Estate) -> rehearse::Result<()> {
//! use rehearse::repo::{Repo, RepoConfig, Pooling};
//! use rehearse::repo::reporting::ReadOptions;
//! let repo = Repo::connect(RepoConfig::from_estate(estate, Pooling::Direct)?).await?;
//! let end = rehearse::day::Day::from_ymd(2026, 10, 31);
//! let dash = repo.reporting().dashboard(42, end, 7, &ReadOptions::default()).await?;
//! println!("{} days, served by {:?}", dash.data.days.len(), dash.source);
//! # Ok(()) }
//! ```

pub mod cache;
pub mod cohort;
pub mod conn;
pub mod explain;
pub mod finance;
pub mod leaf;
pub mod replicas;
pub mod reporting;
pub mod routing;
pub mod trace;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::schema::Mode;
use cache::{CacheSettings, CacheStats, ReportCache};
use conn::{Exec, Target, TargetConfig};
use finance::FinanceStats;
use leaf::{LeafRouting, LeafStats, PartitionRouting};
use replicas::{ReplicaManager, ReplicaSettings, RoutingStats};
use routing::ModeSource;

pub use replicas::Via;

/// How long a process keeps the flag it read before reading it again.
pub const DEFAULT_FLAG_TTL: Duration = Duration::from_millis(250);

/// How the repository reaches PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Its own pools of direct connections; prepared statements.
    Direct,
    /// The estate's PgBouncer entries (transaction pooling); unnamed statements.
    PgBouncer,
}

crate::named!("pooling", Pooling { Direct = "direct", PgBouncer = "pgbouncer" });

/// Everything the repository needs to start.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    pub primary: TargetConfig,
    pub replicas: Vec<TargetConfig>,
    /// Redis for the report cache; None turns the cache off.
    pub redis_url: Option<String>,
    /// Connections per target.
    pub pool_size: usize,
    /// A mode fixed for this process; None follows the flag.
    pub mode_override: Option<Mode>,
    /// The mode when `feature_flags` has no row: `USE_PARTITIONED_TABLES` from the environment.
    pub default_mode: Mode,
    /// How long the flag row is cached.
    pub flag_ttl: Duration,
    pub replica: ReplicaSettings,
    pub cache: CacheSettings,
    /// Attempts after a serialization failure or deadlock before a write gives up.
    pub max_retries: u32,
    /// Where single-tenant statements of the partitioned mode go: the
    /// organization's leaf partition (the default) or the parent.
    pub partition_routing: PartitionRouting,
    /// With leaf routing: generic plans (once per connection and leaf) or PostgreSQL's choice.
    pub leaf_plans: crate::estate::LeafPlans,
    /// The server cancels a statement after this long (direct connections:
    /// a startup option; PgBouncer ignores startup options). A caller that
    /// stops waiting should not leave the statement running: in a full
    /// main job, 34 abandoned portfolio queries piled up on the replica,
    /// spilling 14 GB of temporary files.
    pub statement_timeout: Option<Duration>,
}

impl RepoConfig {
    /// Settings for the estate's endpoints, with defaults for the rest.
    pub fn from_estate(estate: &Estate, pooling: Pooling) -> Result<RepoConfig> {
        let (primary, replica) = match pooling {
            Pooling::Direct => (estate.primary.clone(), estate.replica.clone()),
            Pooling::PgBouncer => (
                estate.pgbouncer.clone().ok_or_else(|| {
                    Error::Usage(
                        "no PgBouncer in the estate: pass --pgbouncer-url or start the lab".into(),
                    )
                })?,
                estate.pgbouncer_replica.clone(),
            ),
        };
        let via_pgbouncer = pooling == Pooling::PgBouncer;
        Ok(RepoConfig {
            primary: TargetConfig {
                url: primary.url,
                via_pgbouncer,
            },
            replicas: replica
                .into_iter()
                .map(|e| TargetConfig {
                    url: e.url,
                    via_pgbouncer,
                })
                .collect(),
            redis_url: estate.redis.as_ref().map(|e| e.url.clone()),
            pool_size: 16,
            mode_override: None,
            default_mode: routing::mode_from_env()?,
            flag_ttl: DEFAULT_FLAG_TTL,
            replica: ReplicaSettings::default(),
            cache: CacheSettings::default(),
            max_retries: 5,
            statement_timeout: None,
            partition_routing: estate.partition_routing,
            leaf_plans: estate.leaf_plans,
        })
    }
}

/// One page of (organization, property) pairs after a key.
const PROPERTY_PAGE: &str = "SELECT organization_id, id FROM properties \
     WHERE (organization_id, id) > ($1, $2) ORDER BY organization_id, id LIMIT $3";
const PROPERTY_PAGE_SIZE: i64 = 100_000;

/// The statements of one mode, rendered with its table names (or with
/// one organization's leaf partitions).
pub(crate) struct ModeSql {
    finance: finance::Sql,
    reporting: reporting::Sql,
}

impl ModeSql {
    fn render(t: &crate::schema::FinanceTables, names: [&str; 3]) -> ModeSql {
        ModeSql {
            finance: finance::Sql::render_as(t, names),
            reporting: reporting::Sql::render_as(t, names),
        }
    }
}

/// A call's statements: its mode's, or its organization's leaf partitions'.
pub(crate) enum Stmts<'a> {
    Mode(&'a ModeSql),
    Leaf(Arc<leaf::LeafSet<ModeSql>>, i64),
}

impl std::ops::Deref for Stmts<'_> {
    type Target = ModeSql;
    fn deref(&self) -> &ModeSql {
        match self {
            Stmts::Mode(m) => m,
            Stmts::Leaf(set, org) => set.sql(*org, |n| {
                ModeSql::render(
                    Mode::Partitioned.tables(),
                    [n[0].as_str(), n[1].as_str(), n[2].as_str()],
                )
            }),
        }
    }
}

pub(crate) struct Core {
    primary: Arc<Target>,
    replicas: Arc<ReplicaManager>,
    cache: Option<ReportCache>,
    mode: ModeSource,
    legacy: ModeSql,
    partitioned: ModeSql,
    leaves: LeafRouting<ModeSql>,
    finance: finance::Counters,
    max_retries: u32,
}

impl Core {
    /// The statements of a call in `mode` for `org` (None: a call spanning
    /// organizations): in the partitioned mode, a single-tenant call's go
    /// to the organization's leaf partitions once they were found and checked.
    async fn sql(&self, mode: Mode, org: Option<i64>) -> Stmts<'_> {
        match (mode, org) {
            (Mode::Legacy, _) => Stmts::Mode(&self.legacy),
            (Mode::Partitioned, None) => Stmts::Mode(&self.partitioned),
            (Mode::Partitioned, Some(o)) => {
                match self
                    .leaves
                    .get(&self.primary, Mode::Partitioned.tables())
                    .await
                {
                    Some(set) => Stmts::Leaf(set, o),
                    None => Stmts::Mode(&self.partitioned),
                }
            }
        }
    }

    /// After a failed statement: a leaf that is gone sends the next call
    /// back to the catalog.
    fn failed(&self, e: &Error) {
        if let Error::Db { source, .. } = e {
            if source.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                self.leaves.forget();
            }
        }
    }

    /// The mode of a call for `org` (None: a call spanning organizations),
    /// from one snapshot of the flag and its rollout.
    async fn mode(&self, org: Option<i64>) -> Mode {
        self.mode.current(&self.primary).await.mode_for(org)
    }
}

/// The repository: cheap to clone, shared by every task of a workload.
#[derive(Clone)]
pub struct Repo {
    core: Arc<Core>,
}

/// Every counter of the repository at one moment.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoStats {
    pub routing: RoutingStats,
    pub cache: Option<CacheStats>,
    pub finance: FinanceStats,
    pub flag_read_errors: u64,
    /// Where the partitioned mode's single-tenant statements went.
    #[serde(default)]
    pub leaves: LeafStats,
}

impl Repo {
    /// Open the pools, check the primary answers, check each replica once
    /// and start their background check.
    pub async fn connect(cfg: RepoConfig) -> Result<Repo> {
        // With leaf routing, each organization's partition has statements
        // of its own, prepared per connection: PostgreSQL plans the first
        // five executions of each afresh before it may settle on a generic
        // plan, so 64 partitions times the pool's connections would spend
        // most of a run planning (seen in the attribution: 166 custom plans
        // in 195 dashboard calls). On a plain leaf a generic plan is what
        // legacy's plain tables settle on, and it locks one relation; on
        // the parent it would lock every partition, so the parent keeps
        // PostgreSQL's choice.
        let settings: Vec<(&str, String)> = match (cfg.partition_routing, cfg.leaf_plans) {
            (PartitionRouting::Leaf, crate::estate::LeafPlans::Generic) => {
                vec![("plan_cache_mode", "force_generic_plan".into())]
            }
            _ => Vec::new(),
        };
        let primary = Arc::new(Target::new(
            "primary",
            &cfg.primary,
            cfg.pool_size,
            cfg.statement_timeout,
            &settings,
        )?);
        let database: String = {
            let c = primary.get().await?;
            let rows = c
                .run(primary.statements, "SELECT current_database()", &[])
                .await
                .db(|| format!("checking the primary ({})", primary.url()))?;
            rows[0].get(0)
        };
        let replicas = cfg
            .replicas
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = if cfg.replicas.len() == 1 {
                    "replica".to_string()
                } else {
                    format!("replica {}", i + 1)
                };
                Target::new(&name, t, cfg.pool_size, cfg.statement_timeout, &settings)
            })
            .collect::<Result<Vec<_>>>()?;
        let cache = match &cfg.redis_url {
            Some(url) => Some(ReportCache::new(url, &database, cfg.cache.clone())?),
            None => None,
        };
        let manager = ReplicaManager::start(primary.clone(), replicas, cfg.replica.clone()).await;
        let render = |m: Mode| {
            let t = m.tables();
            ModeSql::render(t, [t.revenue, t.expense, t.summary])
        };
        Ok(Repo {
            core: Arc::new(Core {
                primary,
                replicas: manager,
                cache,
                mode: ModeSource::new(cfg.mode_override, cfg.default_mode, cfg.flag_ttl),
                legacy: render(Mode::Legacy),
                partitioned: render(Mode::Partitioned),
                leaves: LeafRouting::new(cfg.partition_routing),
                finance: finance::Counters::default(),
                max_retries: cfg.max_retries,
            }),
        })
    }

    /// Writes: revenue, expenses, adjustments, voids, end-of-day batches.
    pub fn finance(&self) -> finance::Finance {
        finance::Finance {
            core: self.core.clone(),
        }
    }

    /// Reads: dashboard, P&L, property breakdown, ledger, portfolio.
    pub fn reporting(&self) -> reporting::Reporting {
        reporting::Reporting {
            core: self.core.clone(),
        }
    }

    /// The flag's own mode now: what a call spanning organizations uses.
    pub async fn mode(&self) -> Mode {
        self.core.mode(None).await
    }

    /// The mode a call for `org` starting now would use (its cohort).
    pub async fn mode_for(&self, org: i64) -> Mode {
        self.core.mode(Some(org)).await
    }

    /// The flag and its rollout, as a call starting now would see them.
    pub async fn flag(&self) -> std::sync::Arc<routing::FlagState> {
        self.core.mode.current(&self.core.primary).await
    }

    /// Check the replicas now rather than at the next background check.
    pub async fn check_replicas(&self) {
        self.core.replicas.check_all().await;
    }

    /// Every (organization, property) pair, in that order, read from the
    /// primary in pages: what a workload draws its tenants from.
    pub async fn for_each_property(&self, mut f: impl FnMut(i64, i64)) -> Result<()> {
        let primary = &self.core.primary;
        let conn = primary.get().await?;
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let rows = conn
                .run(
                    primary.statements,
                    PROPERTY_PAGE,
                    &[
                        (&after.0, tokio_postgres::types::Type::INT8),
                        (&after.1, tokio_postgres::types::Type::INT8),
                        (&PROPERTY_PAGE_SIZE, tokio_postgres::types::Type::INT8),
                    ],
                )
                .await
                .db(|| "listing the organizations and their properties".into())?;
            for r in &rows {
                after = (r.get(0), r.get(1));
                f(after.0, after.1);
            }
            if (rows.len() as i64) < PROPERTY_PAGE_SIZE {
                return Ok(());
            }
        }
    }

    /// Whether the primary answers a statement now (a service's readiness).
    pub async fn primary_answers(&self) -> Result<()> {
        let primary: &Target = &self.core.primary;
        let c = primary.get().await?;
        c.run(primary.statements, "SELECT 1", &[])
            .await
            .db(|| format!("checking the primary ({})", primary.url()))?;
        Ok(())
    }

    /// The primary's URL, without its password.
    pub fn primary_url(&self) -> &str {
        self.core.primary.url()
    }

    /// Plan counts of the prepared statements on every pool (primary and
    /// replicas): statement, generic plans, custom plans.
    pub async fn prepared_plans(&self) -> Vec<(String, i64, i64)> {
        let mut out = self.core.primary.prepared_plans().await;
        for r in self.core.replicas.targets() {
            out.extend(r.prepared_plans().await);
        }
        out
    }

    pub fn stats(&self) -> RepoStats {
        RepoStats {
            routing: self.core.replicas.stats(),
            cache: self.core.cache.as_ref().map(|c| c.stats()),
            finance: self.core.finance.snapshot(),
            flag_read_errors: self.core.mode.read_errors(),
            leaves: self.core.leaves.stats(),
        }
    }
}
