//! The reporting statements, per mode, and the operations with their
//! inputs: what each report asks, and the ledger's cursor.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::{ToSql, Type};

use super::*;

/// An organization's revenue and expenses per day, from the summaries.
pub(super) const DASHBOARD: &str = "\
SELECT business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8
FROM {{summary}}
WHERE organization_id = $1 AND business_date BETWEEN $2 AND $3
GROUP BY business_date
ORDER BY business_date";

/// Revenue and expenses by category over [$2, $3), from the entries.
pub(super) const PNL: &str = "\
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
pub(super) const PROPERTIES: &str = "\
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
pub(super) const LEDGER: &str = "\
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
pub(super) const PORTFOLIO: &str = "\
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
pub(super) const ORGANIZATION_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)";

/// The reporting statements of one mode.
pub(crate) struct Sql {
    pub(super) dashboard: String,
    pub(super) pnl: String,
    pub(super) properties: String,
    pub(super) ledger: String,
    pub(super) portfolio: String,
}

impl Sql {
    #[cfg(test)]
    pub(crate) fn render(t: &FinanceTables) -> Sql {
        Sql::render_as(t, [t.revenue, t.expense, t.summary])
    }

    /// The statements on other relations: one organization's leaf
    /// partitions. The portfolio spans organizations and keeps the parents.
    pub(crate) fn render_as(t: &FinanceTables, names: [&str; 3]) -> Sql {
        Sql {
            dashboard: t.render_as(DASHBOARD, names),
            pnl: t.render_as(PNL, names),
            properties: t.render_as(PROPERTIES, names),
            ledger: t.render_as(LEDGER, names),
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

    pub(super) fn check(&self) -> Result<()> {
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
pub(super) fn ledger_bounds(from: Day, after: Option<&Cursor>) -> ((Day, i64), (Day, i64)) {
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
