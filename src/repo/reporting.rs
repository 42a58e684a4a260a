//! The reporting repository: an organization's dashboard, monthly P&L,
//! property breakdown and ledger, and the cross-tenant portfolio ranking.
//! Reads go where the replica manager says; the three organization reports
//! go through the cache first.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use super::cache::CacheOutcome;
use super::conn::{Exec, Param, Target};
use super::replicas::{Chosen, Via};
use super::Core;
use crate::day::Day;
use crate::error::{DbContext, Error, Result};
use crate::schema::{FinanceTables, Mode};

/// An organization's revenue and expenses per day, from the summaries.
const DASHBOARD: &str = "\
SELECT business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8
FROM {{summary}}
WHERE organization_id = $1 AND business_date BETWEEN $2 AND $3
GROUP BY business_date
ORDER BY business_date";

/// Revenue and expenses by category over [$2, $3), from the entries.
const PNL: &str = "\
SELECT 'revenue' AS kind, category::text AS category, sum(amount_cents)::int8, count(*)::int8
FROM {{revenue}}
WHERE organization_id = $1 AND business_date >= $2 AND business_date < $3
GROUP BY 2
UNION ALL
SELECT 'expense', category::text, sum(amount_cents)::int8, count(*)::int8
FROM {{expense}}
WHERE organization_id = $1 AND business_date >= $2 AND business_date < $3
GROUP BY 2
ORDER BY kind DESC, category";

/// Totals per property; a summary row whose entries were all voided holds
/// zeros and is left out, as if absent.
const PROPERTIES: &str = "\
SELECT s.property_id, p.name, p.kind, sum(s.revenue_cents)::int8, sum(s.expense_cents)::int8
FROM {{summary}} s
JOIN properties p ON p.id = s.property_id
WHERE s.organization_id = $1 AND s.business_date BETWEEN $2 AND $3
GROUP BY s.property_id, p.name, p.kind
HAVING sum(s.revenue_count) + sum(s.expense_count) > 0
ORDER BY s.property_id";

/// One page of entries of both kinds in (business_date, kind, id) order.
/// Each branch has its own keyset bound, so each walks the
/// (organization_id, business_date, id) index from where the page starts.
const LEDGER: &str = "\
(SELECT business_date, 'expense'::text AS kind, id, property_id, category::text, amount_cents,
        vendor, description
 FROM {{expense}}
 WHERE organization_id = $1 AND business_date BETWEEN $2 AND $3
   AND (business_date, id) > ($4, $5)
 ORDER BY business_date, id
 LIMIT $8)
UNION ALL
(SELECT business_date, 'revenue'::text, id, property_id, category::text, amount_cents,
        NULL::text, description
 FROM {{revenue}}
 WHERE organization_id = $1 AND business_date BETWEEN $2 AND $3
   AND (business_date, id) > ($6, $7)
 ORDER BY business_date, id
 LIMIT $8)
ORDER BY business_date, kind, id
LIMIT $8";

/// The organizations with the most revenue over a range, across all
/// tenants: the top of this mode's ranking for a window of that many days
/// (kept by the portfolio-refresh job, `schema/sql/shared_tables.sql`),
/// the latest one that ends on the range's last day or the day before.
/// Aggregating every summary row of the window per request does not serve
/// at 1M organizations. No ranking: no rows, which the caller refuses.
const PORTFOLIO: &str = "\
WITH latest AS (
    SELECT max(as_of) AS as_of
    FROM portfolio_rankings
    WHERE mode = '{{mode}}' AND window_days = ($2::date - $1::date + 1)
      AND as_of BETWEEN $2::date - 1 AND $2::date)
SELECT r.organization_id, o.name, r.revenue_cents, r.expense_cents
FROM latest
JOIN portfolio_rankings r
  ON r.mode = '{{mode}}' AND r.window_days = ($2::date - $1::date + 1) AND r.as_of = latest.as_of
JOIN organizations o ON o.id = r.organization_id
WHERE r.rank <= $3
ORDER BY r.rank";

/// The deepest ranking the portfolio-refresh job keeps.
pub const PORTFOLIO_DEPTH: u32 = 1000;

/// Whether an organization exists; the same table in both modes.
const ORGANIZATION_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)";

/// The reporting statements of one mode.
pub(crate) struct Sql {
    dashboard: String,
    pnl: String,
    properties: String,
    ledger: String,
    portfolio: String,
}

impl Sql {
    pub(crate) fn render(t: &FinanceTables) -> Sql {
        Sql {
            dashboard: t.render(DASHBOARD),
            pnl: t.render(PNL),
            properties: t.render(PROPERTIES),
            ledger: t.render(LEDGER),
            portfolio: t.render(PORTFOLIO),
        }
    }
}

/// The most rows a ledger page holds.
pub const MAX_PAGE: u32 = 10_000;

/// A reporting operation with its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Query {
    /// The `days` days ending with `end`.
    Dashboard {
        org: i64,
        end: Day,
        days: u32,
    },
    /// The month that contains `month`.
    Pnl {
        org: i64,
        month: Day,
    },
    Properties {
        org: i64,
        from: Day,
        to: Day,
    },
    Ledger {
        org: i64,
        from: Day,
        to: Day,
        after: Option<Cursor>,
        limit: u32,
    },
    Portfolio {
        from: Day,
        to: Day,
        top: u32,
    },
}

impl Query {
    pub fn name(&self) -> &'static str {
        match self {
            Query::Dashboard { .. } => "dashboard",
            Query::Pnl { .. } => "pnl",
            Query::Properties { .. } => "properties",
            Query::Ledger { .. } => "ledger",
            Query::Portfolio { .. } => "portfolio",
        }
    }

    /// The organization the query is about; None for the portfolio.
    pub fn org(&self) -> Option<i64> {
        match *self {
            Query::Dashboard { org, .. }
            | Query::Pnl { org, .. }
            | Query::Properties { org, .. }
            | Query::Ledger { org, .. } => Some(org),
            Query::Portfolio { .. } => None,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Usage(m));
        match self {
            Query::Dashboard { days, .. } if *days == 0 || *days > 3660 => {
                bad(format!("--days {days}: give 1..3660"))
            }
            Query::Properties { from, to, .. }
            | Query::Ledger { from, to, .. }
            | Query::Portfolio { from, to, .. }
                if from > to =>
            {
                bad(format!("the range {from}..{to} ends before it starts"))
            }
            Query::Portfolio { top, .. } if *top == 0 || *top > PORTFOLIO_DEPTH => bad(format!(
                "--top {top}: give 1..{PORTFOLIO_DEPTH} (the ranking's depth)"
            )),
            Query::Ledger { limit, .. } if *limit == 0 || *limit > MAX_PAGE => {
                bad(format!("--limit {limit}: give 1..{MAX_PAGE}"))
            }
            Query::Portfolio { top, .. } if *top == 0 || *top > MAX_PAGE => {
                bad(format!("--top {top}: give 1..{MAX_PAGE}"))
            }
            _ => Ok(()),
        }
    }

    /// The statement of this query in one mode, and its arguments.
    pub(crate) fn statement<'s>(&self, sql: &'s Sql) -> (&'s str, Vec<Arg>) {
        use Arg::*;
        match self.clone() {
            Query::Dashboard { org, end, days } => (
                &sql.dashboard,
                vec![I64(org), Date(end.plus(1 - days as i32)), Date(end)],
            ),
            Query::Pnl { org, month } => {
                let (first, next) = month.month_bounds();
                (&sql.pnl, vec![I64(org), Date(first), Date(next)])
            }
            Query::Properties { org, from, to } => {
                (&sql.properties, vec![I64(org), Date(from), Date(to)])
            }
            Query::Ledger {
                org,
                from,
                to,
                after,
                limit,
            } => {
                let (e, r) = ledger_bounds(from, after.as_ref());
                (
                    &sql.ledger,
                    vec![
                        I64(org),
                        Date(from),
                        Date(to),
                        Date(e.0),
                        I64(e.1),
                        Date(r.0),
                        I64(r.1),
                        I64(limit as i64 + 1),
                    ],
                )
            }
            Query::Portfolio { from, to, top } => {
                (&sql.portfolio, vec![Date(from), Date(to), I64(top as i64)])
            }
        }
    }
}

/// A statement argument, owned, so a query can be run again on another
/// target or explained.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(i64),
    Date(Day),
}

impl Arg {
    pub(crate) fn param(&self) -> Param<'_> {
        match self {
            Arg::I64(v) => (v as &(dyn ToSql + Sync), Type::INT8),
            Arg::Date(d) => (d as &(dyn ToSql + Sync), Type::DATE),
        }
    }
}

/// Where a ledger page starts: after this entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub business_date: Day,
    pub kind: String,
    pub id: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.business_date, self.kind, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cursor> {
        let bad = || {
            Error::Usage(format!(
                "bad ledger cursor {s:?}: expected DATE.KIND.ID as printed after a page, \
                 e.g. 2026-10-20.revenue.4242"
            ))
        };
        let mut parts = s.splitn(3, '.');
        let (Some(d), Some(k), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let business_date: Day = d.parse().map_err(|_| bad())?;
        if k != "revenue" && k != "expense" {
            return Err(bad());
        }
        let id: i64 = i.parse().map_err(|_| bad())?;
        Ok(Cursor {
            business_date,
            kind: k.to_string(),
            id,
        })
    }
}

/// The (date, id) bound of the expense and the revenue branch: rows of a
/// branch come after the cursor when (date, kind, id) > cursor, which for a
/// fixed kind is (date, id) > bound.
fn ledger_bounds(from: Day, after: Option<&Cursor>) -> ((Day, i64), (Day, i64)) {
    let Some(c) = after else {
        let first = (from.plus(-1), i64::MAX);
        return (first, first);
    };
    let bound = |kind: &str| match kind.cmp(c.kind.as_str()) {
        // A later kind: every entry of the cursor's day is after it.
        std::cmp::Ordering::Greater => (c.business_date.plus(-1), i64::MAX),
        std::cmp::Ordering::Equal => (c.business_date, c.id),
        // An earlier kind: only later days are after it.
        std::cmp::Ordering::Less => (c.business_date, i64::MAX),
    };
    (bound("expense"), bound("revenue"))
}

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
        let (sql, args) = q.statement(&self.core.sql(mode).reporting);
        let (rows, source) = self.read_sql(q.name(), sql, &args, via, min_lsn).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_say_the_expected_form() {
        let c = Cursor {
            business_date: Day::from_ymd(2026, 10, 20),
            kind: "revenue".into(),
            id: 4242,
        };
        assert_eq!(c.to_string(), "2026-10-20.revenue.4242");
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        for bad in [
            "",
            "2026-10-20",
            "2026-10-20.refund.1",
            "2026-13-01.revenue.1",
            "2026-10-20.revenue.x",
        ] {
            let e = bad.parse::<Cursor>().unwrap_err();
            assert_eq!(e.exit_code(), crate::exit::USAGE);
            assert!(e.to_string().contains("DATE.KIND.ID"), "{e}");
        }
    }

    #[test]
    fn ledger_bounds_continue_exactly_after_the_cursor() {
        let d = Day::from_ymd(2026, 10, 20);
        // A key is after the cursor iff (date, id) > its branch's bound.
        let after = |bound: (Day, i64), date: Day, id: i64| (date, id) > bound;
        let cur = Cursor {
            business_date: d,
            kind: "expense".into(),
            id: 10,
        };
        let (e, r) = ledger_bounds(d.plus(-5), Some(&cur));
        assert!(!after(e, d, 10) && after(e, d, 11) && !after(e, d.plus(-1), 99));
        // revenue sorts after expense: every revenue entry of the day follows.
        assert!(after(r, d, 0) && after(r, d, 1) && !after(r, d.plus(-1), i64::MAX - 1));
        let cur = Cursor {
            kind: "revenue".into(),
            ..cur
        };
        let (e, r) = ledger_bounds(d.plus(-5), Some(&cur));
        assert!(!after(e, d, i64::MAX - 1) && after(e, d.plus(1), 0));
        assert!(!after(r, d, 10) && after(r, d, 11));
        // No cursor: everything from the first day on.
        let (e, r) = ledger_bounds(d, None);
        assert!(after(e, d, 0) && after(r, d, 0) && !after(e, d.plus(-1), 5));
    }

    #[test]
    fn bad_ranges_and_sizes_are_usage_errors() {
        let d = Day::from_ymd(2026, 10, 20);
        for q in [
            Query::Dashboard {
                org: 1,
                end: d,
                days: 0,
            },
            Query::Properties {
                org: 1,
                from: d,
                to: d.plus(-1),
            },
            Query::Ledger {
                org: 1,
                from: d,
                to: d,
                after: None,
                limit: 0,
            },
            Query::Portfolio {
                from: d,
                to: d,
                top: MAX_PAGE + 1,
            },
        ] {
            assert_eq!(
                q.check().unwrap_err().exit_code(),
                crate::exit::USAGE,
                "{q:?}"
            );
        }
        assert!(Query::Pnl { org: 1, month: d }.check().is_ok());
    }

    #[test]
    fn every_statement_names_only_its_modes_tables() {
        let legacy = Sql::render(Mode::Legacy.tables());
        let part = Sql::render(Mode::Partitioned.tables());
        for s in [
            &legacy.dashboard,
            &legacy.pnl,
            &legacy.properties,
            &legacy.ledger,
            &legacy.portfolio,
        ] {
            assert!(!s.contains("{{") && !s.contains("_partitioned"), "{s}");
        }
        for s in [&part.dashboard, &part.pnl, &part.properties, &part.ledger] {
            assert!(!s.contains("{{"), "{s}");
            assert!(s.contains("_partitioned"), "{s}");
        }
        // The portfolio reads the shared ranking table, each mode its own rows.
        assert!(part.portfolio.contains("mode = 'partitioned'") && !part.portfolio.contains("{{"));
        assert!(legacy.portfolio.contains("mode = 'legacy'"));
    }
}
