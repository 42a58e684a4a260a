//! Pooled connections to one target (the primary or a replica, directly or
//! through PgBouncer) and the one function that runs a statement on them.
//!
//! Direct connections run named prepared statements, cached per connection,
//! because they skip parsing and planning on every call. PgBouncer 1.18 in
//! transaction pooling hands each transaction a different server
//! connection, where a named statement does not exist, so through PgBouncer
//! every statement is sent unnamed (`query_typed`: parse, bind and execute
//! in one round trip).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use crate::db;
use crate::error::{Error, Result};
use crate::url::redact;

/// How statements are sent to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatementMode {
    /// Named statements, prepared once per connection and cached.
    Prepared,
    /// Unnamed statements only: the one path PgBouncer's transaction pooling allows.
    Unnamed,
}

/// Where a target's connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub url: String,
    /// The URL leads to PgBouncer in transaction pooling: send unnamed statements only.
    pub via_pgbouncer: bool,
}

/// A statement parameter with its PostgreSQL type, so the unnamed path can
/// send types without a round trip to describe the statement.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// The connection pool of one target.
pub struct Target {
    pub name: String,
    pub statements: StatementMode,
    redacted_url: String,
    pool: Pool,
}

impl Target {
    /// A pool of at most `size` connections; none is opened until used.
    /// `settings` are server settings for each direct connection (`-c
    /// name=value` at startup; PgBouncer does not pass them on).
    pub fn new(
        name: &str,
        cfg: &TargetConfig,
        size: usize,
        statement_timeout: Option<Duration>,
        settings: &[(&str, String)],
    ) -> Result<Target> {
        let db::Conn {
            config: mut pg,
            tls,
        } = db::config(&cfg.url)?;
        if !cfg.via_pgbouncer {
            let mut options = pg.get_options().unwrap_or("").to_string();
            let timeout =
                statement_timeout.map(|t| ("statement_timeout", t.as_millis().max(1).to_string()));
            for (k, v) in timeout.iter().chain(settings) {
                if !options.is_empty() {
                    options.push(' ');
                }
                options.push_str(&format!("-c {k}={v}"));
            }
            pg.options(&options);
        }
        let manager = Manager::from_config(
            pg,
            crate::tls::connector(&tls)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Last in, first out: a burst's requests reuse the connections that
        // just served, whose plans and relation caches are warm, instead of
        // cycling through the whole pool. With leaf routing each connection
        // warms per partition, so the pool's breadth multiplies by 64.
        let pool = Pool::builder(manager)
            .queue_mode(deadpool_postgres::QueueMode::Lifo)
            .max_size(size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| Error::Usage(format!("connection pool for {name}: {e}")))?;
        Ok(Target {
            name: name.to_string(),
            statements: if cfg.via_pgbouncer {
                StatementMode::Unnamed
            } else {
                StatementMode::Prepared
            },
            redacted_url: redact(&cfg.url),
            pool,
        })
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.redacted_url
    }

    /// A connection from the pool, opened if none is idle.
    pub async fn get(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(source) => Error::Db {
                what: format!("connecting to the {} ({})", self.name, self.redacted_url),
                source,
            },
            other => Error::Lab(format!(
                "no connection to the {} ({}): {other}",
                self.name, self.redacted_url
            )),
        })
    }

    /// Each prepared statement's plan counts, summed over this pool's open
    /// connections (`pg_prepared_statements` is per session): statement
    /// text, generic plans, custom plans. Call it when the workload has
    /// stopped: it takes every connection the pool holds at once.
    pub async fn prepared_plans(&self) -> Vec<(String, i64, i64)> {
        if self.statements == StatementMode::Unnamed {
            return Vec::new();
        }
        let open = self.pool.status().size;
        let mut held = Vec::with_capacity(open);
        for _ in 0..open {
            match tokio::time::timeout(Duration::from_secs(2), self.pool.get()).await {
                Ok(Ok(c)) => held.push(c),
                _ => break,
            }
        }
        let mut sum: std::collections::HashMap<String, (i64, i64)> = Default::default();
        for c in &held {
            let Ok(rows) = c
                .query(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements",
                    &[],
                )
                .await
            else {
                continue;
            };
            for r in rows {
                let e = sum.entry(r.get(0)).or_default();
                e.0 += r.get::<_, i64>(1);
                e.1 += r.get::<_, i64>(2);
            }
        }
        sum.into_iter().map(|(s, (g, c))| (s, g, c)).collect()
    }

    /// Close idle connections, so that a restarted server is reached anew.
    pub fn drain_idle(&self) {
        self.pool.retain(|_, _| false);
    }
}

/// Something a statement can run on: a pooled connection or a transaction
/// on one.
pub trait Exec {
    fn run(
        &self,
        mode: StatementMode,
        sql: &str,
        params: &[Param<'_>],
    ) -> impl std::future::Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send;
}

macro_rules! exec_impl {
    ($t:ty) => {
        impl Exec for $t {
            async fn run(
                &self,
                mode: StatementMode,
                sql: &str,
                params: &[Param<'_>],
            ) -> Result<Vec<Row>, tokio_postgres::Error> {
                super::trace::note(sql);
                match mode {
                    StatementMode::Prepared => {
                        let types: Vec<Type> = params.iter().map(|p| p.1.clone()).collect();
                        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.0).collect();
                        let stmt = self.prepare_typed_cached(sql, &types).await?;
                        self.query(&stmt, &values).await
                    }
                    StatementMode::Unnamed => self.query_typed(sql, params).await,
                }
            }
        }
    };
}

exec_impl!(deadpool_postgres::ClientWrapper);
exec_impl!(deadpool_postgres::Transaction<'_>);

/// Whether an error means the server or the connection is gone (as opposed
/// to a statement that failed on a healthy server).
pub fn is_connection_error(e: &Error) -> bool {
    match e {
        Error::Db { source, .. } => match source.code() {
            None => true,
            Some(code) => {
                let c = code.code();
                // 08: connection exception; 57P0x: admin/crash shutdown,
                // cannot connect now (a server starting or stopping).
                c.starts_with("08") || c.starts_with("57P")
            }
        },
        Error::Lab(_) => true,
        _ => false,
    }
}
