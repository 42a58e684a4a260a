//! The reporting repository: an organization's dashboard, monthly P&L,
//! property breakdown and ledger, and the cross-tenant portfolio ranking.
//! Reads go where the replica manager says; the three organization reports
//! go through the cache first.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

use super::cache::CacheOutcome;
use super::conn::{Exec, Param, Target};
use super::replicas::{Chosen, Via};
use super::Core;
use crate::day::Day;
use crate::error::{DbContext, Error, Result};
use crate::schema::{FinanceTables, Mode};

mod query;
#[cfg(test)]
mod tests;

pub use query::*;

/// One day of the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardDay {
    pub date: Day,
    pub revenue_cents: i64,
    pub expense_cents: i64,
    pub net_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub organization_id: i64,
    /// Every day of the window, oldest first; days without entries are zeros.
    pub days: Vec<DashboardDay>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnlLine {
    /// revenue or expense
    pub kind: String,
    pub category: String,
    pub amount_cents: i64,
    pub entries: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pnl {
    pub organization_id: i64,
    pub month_start: Day,
    pub lines: Vec<PnlLine>,
    pub revenue_cents: i64,
    pub expense_cents: i64,
    pub net_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyTotal {
    pub property_id: i64,
    pub name: String,
    pub kind: String,
    pub revenue_cents: i64,
    pub expense_cents: i64,
    pub net_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyBreakdown {
    pub organization_id: i64,
    pub from: Day,
    pub to: Day,
    pub properties: Vec<PropertyTotal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub business_date: Day,
    pub kind: String,
    pub id: i64,
    pub property_id: i64,
    pub category: String,
    pub amount_cents: i64,
    pub vendor: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    /// Where the next page starts; None on the last page.
    pub next: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioRow {
    pub organization_id: i64,
    pub name: String,
    pub revenue_cents: i64,
    pub expense_cents: i64,
}

/// Any report, for callers that run a [`Query`] they did not type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportData {
    Dashboard(Dashboard),
    Pnl(Pnl),
    Properties(PropertyBreakdown),
    Ledger(LedgerPage),
    Portfolio(Vec<PortfolioRow>),
}

/// Where a read was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Primary,
    Replica,
    Cache,
}

/// A report with how it was served.
#[derive(Debug, Clone, Serialize)]
pub struct Report<T> {
    pub data: T,
    /// The mode whose tables the report came from.
    pub mode: Mode,
    pub source: Source,
    /// hit, miss or bypass for cached reports; None when the cache was not asked.
    pub cache: Option<CacheOutcome>,
}

/// How a read may be served.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub via: Via,
    /// Ask the cache first (dashboard, P&L and property breakdown only).
    pub cache: bool,
    /// The commit LSN of the caller's own last write: read-your-writes.
    pub min_lsn: Option<u64>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            via: Via::Auto,
            cache: true,
            min_lsn: None,
        }
    }
}

fn parse(q: &Query, rows: Vec<Row>) -> ReportData {
    match *q {
        Query::Dashboard { org, end, days } => {
            let start = end.plus(1 - days as i32);
            let mut out: Vec<DashboardDay> = (0..days as i32)
                .map(|i| DashboardDay {
                    date: start.plus(i),
                    revenue_cents: 0,
                    expense_cents: 0,
                    net_cents: 0,
                })
                .collect();
            for r in rows {
                let date: Day = r.get(0);
                let (rev, exp): (i64, i64) = (r.get(1), r.get(2));
                let d = &mut out[(date.0 - start.0) as usize];
                d.revenue_cents = rev;
                d.expense_cents = exp;
                d.net_cents = rev - exp;
            }
            ReportData::Dashboard(Dashboard {
                organization_id: org,
                days: out,
            })
        }
        Query::Pnl { org, month } => {
            let lines: Vec<PnlLine> = rows
                .into_iter()
                .map(|r| PnlLine {
                    kind: r.get(0),
                    category: r.get(1),
                    amount_cents: r.get(2),
                    entries: r.get(3),
                })
                .collect();
            let total = |k: &str| -> i64 {
                lines
                    .iter()
                    .filter(|l| l.kind == k)
                    .map(|l| l.amount_cents)
                    .sum()
            };
            let (revenue_cents, expense_cents) = (total("revenue"), total("expense"));
            ReportData::Pnl(Pnl {
                organization_id: org,
                month_start: month.month_bounds().0,
                lines,
                revenue_cents,
                expense_cents,
                net_cents: revenue_cents - expense_cents,
            })
        }
        Query::Properties { org, from, to } => ReportData::Properties(PropertyBreakdown {
            organization_id: org,
            from,
            to,
            properties: rows
                .into_iter()
                .map(|r| {
                    let (rev, exp): (i64, i64) = (r.get(3), r.get(4));
                    PropertyTotal {
                        property_id: r.get(0),
                        name: r.get(1),
                        kind: r.get(2),
                        revenue_cents: rev,
                        expense_cents: exp,
                        net_cents: rev - exp,
                    }
                })
                .collect(),
        }),
        Query::Ledger { limit, .. } => {
            let mut entries: Vec<LedgerEntry> = rows
                .into_iter()
                .map(|r| LedgerEntry {
                    business_date: r.get(0),
                    kind: r.get(1),
                    id: r.get(2),
                    property_id: r.get(3),
                    category: r.get(4),
                    amount_cents: r.get(5),
                    vendor: r.get(6),
                    description: r.get(7),
                })
                .collect();
            // One row more than the page was asked for: there is a next page.
            let next = if entries.len() > limit as usize {
                entries.truncate(limit as usize);
                entries.last().map(|e| Cursor {
                    business_date: e.business_date,
                    kind: e.kind.clone(),
                    id: e.id,
                })
            } else {
                None
            };
            ReportData::Ledger(LedgerPage { entries, next })
        }
        Query::Portfolio { .. } => ReportData::Portfolio(
            rows.into_iter()
                .map(|r| PortfolioRow {
                    organization_id: r.get(0),
                    name: r.get(1),
                    revenue_cents: r.get(2),
                    expense_cents: r.get(3),
                })
                .collect(),
        ),
    }
}

/// The cache key of a query, without organization and generation.
fn cache_key(q: &Query) -> Option<String> {
    match q {
        Query::Dashboard { org, end, days } => Some(format!("dashboard:{org}:{end}:{days}")),
        Query::Pnl { org, month } => Some(format!("pnl:{org}:{}", month.month_bounds().0)),
        Query::Properties { org, from, to } => Some(format!("properties:{org}:{from}:{to}")),
        Query::Ledger { .. } | Query::Portfolio { .. } => None,
    }
}

/// Run a statement on one target.
pub(crate) async fn run_on(
    target: &Target,
    what: &str,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<Row>> {
    let params: Vec<Param<'_>> = args.iter().map(Arg::param).collect();
    let conn = target.get().await?;
    conn.run(target.statements, sql, &params)
        .await
        .db(|| format!("{what} on the {} ({})", target.name, target.url()))
}

/// The reporting repository; get one from [`super::Repo::reporting`].
#[derive(Clone)]
pub struct Reporting {
    pub(crate) core: Arc<Core>,
}

impl Reporting {
    /// Run any reporting query.
    pub async fn run(&self, q: &Query, opts: &ReadOptions) -> Result<Report<ReportData>> {
        q.check()?;
        // One snapshot of the mode for the whole call, cache key included.
        let mode = self.core.mode(q.org()).await;
        let cached = match (opts.cache, &self.core.cache, q.org(), cache_key(q)) {
            (true, Some(cache), Some(org), Some(key)) => Some((cache, org, key)),
            _ => None,
        };
        let Some((cache, org, key)) = cached else {
            let (data, source) = self.read(mode, q, opts.via, opts.min_lsn).await?;
            return Ok(Report {
                data,
                mode,
                source,
                cache: None,
            });
        };
        let mut served = Source::Cache;
        let served_by = &mut served;
        let via = opts.via;
        let (data, outcome) = cache
            .get_or_load(org, mode, &key, opts.min_lsn, move |min_lsn| async move {
                let (data, source) = self.read(mode, q, via, min_lsn).await?;
                *served_by = source;
                Ok(data)
            })
            .await?;
        Ok(Report {
            data,
            mode,
            source: served,
            cache: Some(outcome),
        })
    }

    async fn read(
        &self,
        mode: Mode,
        q: &Query,
        via: Via,
        min_lsn: Option<u64>,
    ) -> Result<(ReportData, Source)> {
        let stmts = self.core.sql(mode, q.org()).await;
        let (sql, args) = q.statement(&stmts.reporting);
        let (rows, source) = self
            .read_sql(q.name(), sql, &args, via, min_lsn)
            .await
            .inspect_err(|e| self.core.failed(e))?;
        if let Query::Portfolio { from, to, .. } = q {
            if rows.is_empty() {
                return Err(Error::Refused(format!(
                    "no portfolio ranking of {} days ending {to} (or the day before) in {} mode: \
                     run `rehearse job run portfolio-refresh`, or install its pg_cron schedule \
                     (`rehearse job install`)",
                    to.0 - from.0 + 1,
                    mode
                )));
            }
        }
        Ok((parse(q, rows), source))
    }

    /// Run a read where `via` says: a replica error in auto routing is
    /// retried on the primary and counted, never returned.
    async fn read_sql(
        &self,
        what: &str,
        sql: &str,
        args: &[Arg],
        via: Via,
        min_lsn: Option<u64>,
    ) -> Result<(Vec<Row>, Source)> {
        let replicas = &self.core.replicas;
        let chosen = replicas.choose(via, min_lsn).await?;
        Ok(match chosen {
            Chosen::Replica(i, target) => match run_on(target, what, sql, args).await {
                Ok(rows) => {
                    replicas.count_read(&chosen);
                    (rows, Source::Replica)
                }
                Err(e) if via == Via::Auto => {
                    if super::conn::is_connection_error(&e) {
                        replicas.report_failure(i, &e);
                    }
                    replicas.count_replica_error();
                    let primary = Chosen::Primary(&replicas.primary);
                    let rows = run_on(&replicas.primary, what, sql, args).await?;
                    replicas.count_read(&primary);
                    (rows, Source::Primary)
                }
                Err(e) => return Err(e),
            },
            Chosen::Primary(target) => {
                let rows = run_on(target, what, sql, args).await?;
                replicas.count_read(&chosen);
                (rows, Source::Primary)
            }
        })
    }

    /// Run a raw read-only statement with int8 parameters where `via` says,
    /// and return the rows it produced: the calibration and probe operation
    /// of scenarios (`operation = "sql"`).
    pub async fn raw(&self, via: Via, sql: &str, params: &[i64]) -> Result<(u64, Source)> {
        let args: Vec<Arg> = params.iter().map(|&v| Arg::I64(v)).collect();
        let (rows, source) = self
            .read_sql("a raw statement", sql, &args, via, None)
            .await?;
        Ok((rows.len() as u64, source))
    }

    /// Whether `org` is an organization, asked of the primary: a report of
    /// an unknown organization is all zeros, which a spot check should not
    /// mistake for an idle tenant.
    pub async fn organization_exists(&self, org: i64) -> Result<bool> {
        let rows = run_on(
            &self.core.primary,
            "looking up the organization",
            ORGANIZATION_EXISTS,
            &[Arg::I64(org)],
        )
        .await?;
        Ok(rows[0].get(0))
    }

    /// The last `days` days, ending with `end`, of an organization.
    pub async fn dashboard(
        &self,
        org: i64,
        end: Day,
        days: u32,
        opts: &ReadOptions,
    ) -> Result<Report<Dashboard>> {
        let r = self.run(&Query::Dashboard { org, end, days }, opts).await?;
        typed(r, |d| match d {
            ReportData::Dashboard(x) => Some(x),
            _ => None,
        })
    }

    /// The P&L of the month that contains `month`.
    pub async fn pnl(&self, org: i64, month: Day, opts: &ReadOptions) -> Result<Report<Pnl>> {
        let r = self.run(&Query::Pnl { org, month }, opts).await?;
        typed(r, |d| match d {
            ReportData::Pnl(x) => Some(x),
            _ => None,
        })
    }

    /// Totals per property over `from..=to`.
    pub async fn property_breakdown(
        &self,
        org: i64,
        from: Day,
        to: Day,
        opts: &ReadOptions,
    ) -> Result<Report<PropertyBreakdown>> {
        let r = self.run(&Query::Properties { org, from, to }, opts).await?;
        typed(r, |d| match d {
            ReportData::Properties(x) => Some(x),
            _ => None,
        })
    }

    /// One page of the ledger over `from..=to`, after `after`.
    pub async fn ledger(
        &self,
        org: i64,
        from: Day,
        to: Day,
        after: Option<Cursor>,
        limit: u32,
        opts: &ReadOptions,
    ) -> Result<Report<LedgerPage>> {
        let q = Query::Ledger {
            org,
            from,
            to,
            after,
            limit,
        };
        typed(self.run(&q, opts).await?, |d| match d {
            ReportData::Ledger(x) => Some(x),
            _ => None,
        })
    }

    /// The `top` organizations by revenue over `from..=to`.
    pub async fn portfolio(
        &self,
        from: Day,
        to: Day,
        top: u32,
        opts: &ReadOptions,
    ) -> Result<Report<Vec<PortfolioRow>>> {
        let r = self.run(&Query::Portfolio { from, to, top }, opts).await?;
        typed(r, |d| match d {
            ReportData::Portfolio(x) => Some(x),
            _ => None,
        })
    }
}

fn typed<T>(
    r: Report<ReportData>,
    pick: impl FnOnce(ReportData) -> Option<T>,
) -> Result<Report<T>> {
    let Report {
        data,
        mode,
        source,
        cache,
    } = r;
    // A cached value of another shape (an older rehearse) is not a caller's error.
    let data =
        pick(data).ok_or_else(|| Error::Lab("a report came back in another shape".into()))?;
    Ok(Report {
        data,
        mode,
        source,
        cache,
    })
}
