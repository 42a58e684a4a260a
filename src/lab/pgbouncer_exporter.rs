//! A PgBouncer exporter for the lab, with prometheus-community
//! pgbouncer_exporter's metric names. Debian's exporter (another project)
//! fails on PgBouncer 1.18 at its first scrape; see [`super::monitor`].
//!
//! Each scrape opens a connection to the admin console and reads SHOW POOLS
//! and SHOW STATS. When PgBouncer does not answer, `pgbouncer_up` is 0 and
//! nothing else is exported, as upstream does.

use std::net::SocketAddr;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_postgres::SimpleQueryMessage;

use crate::error::{Error, Result};

type Labels = Vec<(&'static str, String)>;
type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;
type F64Counter = Counter<f64, std::sync::atomic::AtomicU64>;

/// Rows of a SHOW command as (column, value) lists.
async fn show(client: &tokio_postgres::Client, what: &str) -> Result<Vec<Vec<(String, String)>>> {
    let msgs = client
        .simple_query(&format!("SHOW {what}"))
        .await
        .map_err(|source| Error::Db {
            what: format!("SHOW {what} on the pgbouncer console"),
            source,
        })?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), r.get(i).unwrap_or("").to_string()))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

fn field<'a>(row: &'a [(String, String)], name: &str) -> Option<&'a str> {
    row.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn num(row: &[(String, String)], name: &str) -> f64 {
    field(row, name).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// One scrape's exposition.
pub async fn scrape(url: &str) -> String {
    let mut r = Registry::default();
    let up = Gauge::<i64>::default();
    r.register(
        "pgbouncer_up",
        "1 when PgBouncer's admin console answered this scrape",
        up.clone(),
    );
    let read = async {
        let client = crate::db::connect(url).await?;
        Ok::<_, Error>((show(&client, "POOLS").await?, show(&client, "STATS").await?))
    };
    if let Ok(Ok((pools, stats))) =
        tokio::time::timeout(std::time::Duration::from_secs(3), read).await
    {
        up.set(1);
        let pool_gauges: [(&str, &str, &str); 7] = [
            ("cl_active", "pgbouncer_pools_client_active_connections", "Client connections linked to a server connection and able to process queries"),
            ("cl_waiting", "pgbouncer_pools_client_waiting_connections", "Client connections that have sent queries but have not yet got a server connection"),
            ("sv_active", "pgbouncer_pools_server_active_connections", "Server connections linked to a client"),
            ("sv_idle", "pgbouncer_pools_server_idle_connections", "Server connections unused and immediately usable for client queries"),
            ("sv_used", "pgbouncer_pools_server_used_connections", "Server connections idle longer than server_check_delay"),
            ("sv_login", "pgbouncer_pools_server_login_connections", "Server connections currently in the process of logging in"),
            ("cl_cancel_req", "pgbouncer_pools_client_cancel_connections", "Client connections that have forwarded query cancellations"),
        ];
        for (col, name, help) in pool_gauges {
            let fam = Family::<Labels, F64Gauge>::default();
            r.register(name, help, fam.clone());
            for row in &pools {
                let l = pool_labels(row);
                fam.get_or_create(&l).set(num(row, col));
            }
        }
        let maxwait = Family::<Labels, F64Gauge>::default();
        r.register(
            "pgbouncer_pools_client_maxwait_seconds",
            "Age of the oldest unserved client connection",
            maxwait.clone(),
        );
        for row in &pools {
            maxwait
                .get_or_create(&pool_labels(row))
                .set(num(row, "maxwait") + num(row, "maxwait_us") / 1e6);
        }
        let stat_counters: [(&str, &str, &str, f64); 6] = [
            (
                "total_query_count",
                "pgbouncer_stats_queries_pooled",
                "Queries pooled",
                1.0,
            ),
            (
                "total_xact_count",
                "pgbouncer_stats_sql_transactions_pooled",
                "Transactions pooled",
                1.0,
            ),
            (
                "total_query_time",
                "pgbouncer_stats_queries_duration_seconds",
                "Time spent by PgBouncer actively querying PostgreSQL",
                1e-6,
            ),
            (
                "total_wait_time",
                "pgbouncer_stats_client_wait_seconds",
                "Time spent by clients waiting for a server",
                1e-6,
            ),
            (
                "total_received",
                "pgbouncer_stats_received_bytes",
                "Bytes received from clients",
                1.0,
            ),
            (
                "total_sent",
                "pgbouncer_stats_sent_bytes",
                "Bytes sent to clients",
                1.0,
            ),
        ];
        for (col, name, help, scale) in stat_counters {
            let fam = Family::<Labels, F64Counter>::default();
            r.register(name, help, fam.clone());
            for row in &stats {
                let l = vec![("database", field(row, "database").unwrap_or("").to_string())];
                fam.get_or_create(&l).inc_by(num(row, col) * scale);
            }
        }
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
    crate::metrics::prometheus_text(&out)
}

fn pool_labels(row: &[(String, String)]) -> Labels {
    vec![
        ("database", field(row, "database").unwrap_or("").to_string()),
        ("user", field(row, "user").unwrap_or("").to_string()),
    ]
}

/// Serve until killed.
pub async fn serve(listen: SocketAddr, url: String) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Usage(format!("--listen {listen}: {e}")))?;
    eprintln!(
        "rehearse pgbouncer exporter on http://{listen}/metrics, reading {}",
        crate::url::redact(&url)
    );
    let url = std::sync::Arc::new(url);
    let task = crate::http::serve_metrics(listener, move || {
        let url = url.clone();
        async move { scrape(&url).await }
    });
    task.await
        .map_err(|e| Error::Lab(format!("the exporter stopped: {e}")))
}
