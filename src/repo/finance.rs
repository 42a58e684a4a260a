//! The finance repository: every write, always on the primary.
//!
//! Each write runs in the mode of one snapshot taken when the call starts,
//! retries a serialization failure or deadlock a bounded number of times
//! (counted), and returns the entry's id with the WAL position after its
//! commit, which a reader passes back for read-your-writes. A committed
//! write bumps the organization's cache generation before it returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{PgLsn, ToSql, Type};

use super::conn::{Exec, Param, Target};
use super::Core;
use crate::day::Day;
use crate::error::{DbContext, Error, Result};
use crate::generate::{EXPENSE_CATEGORIES, REVENUE_CATEGORIES};
use crate::schema::{FinanceTables, Mode};

/// Insert one entry, only for a property of the organization.
const RECORD_REVENUE: &str = "\
INSERT INTO {{revenue}} (organization_id, property_id, business_date, category, amount_cents, description)
SELECT p.organization_id, p.id, $3, $4::entry_category, $5, $6
FROM properties p WHERE p.id = $2 AND p.organization_id = $1
RETURNING id";

const RECORD_EXPENSE: &str = "\
INSERT INTO {{expense}} (organization_id, property_id, business_date, category, amount_cents, vendor, description)
SELECT p.organization_id, p.id, $3, $4::entry_category, $5, $6, $7
FROM properties p WHERE p.id = $2 AND p.organization_id = $1
RETURNING id";

/// Change what is given (NULL keeps the old value); a new property must be
/// the organization's. `{{entries}}` is the revenue or expense table.
const ADJUST: &str = "\
UPDATE {{entries}} e
SET amount_cents = coalesce($3, e.amount_cents),
    category = coalesce($4::entry_category, e.category),
    business_date = coalesce($5, e.business_date),
    property_id = coalesce($6, e.property_id)
WHERE e.organization_id = $1 AND e.id = $2
  AND ($6::int8 IS NULL
       OR EXISTS (SELECT 1 FROM properties p WHERE p.id = $6 AND p.organization_id = $1))
RETURNING e.id";

const VOID: &str = "DELETE FROM {{entries}} WHERE organization_id = $1 AND id = $2 RETURNING id";

/// Lock (creating when absent) every summary row a batch will touch, in
/// (organization, property, business date) order, before any entry is
/// written: every writer then takes summary rows in one global order, so
/// two batches cannot deadlock, whatever mix of revenue and expenses they hold.
const LOCK_SUMMARIES: &str = "\
INSERT INTO {{summary}} AS s (organization_id, property_id, business_date)
SELECT $1, k.property_id, k.business_date
FROM unnest($2::int8[], $3::date[]) AS k(property_id, business_date)
ORDER BY k.property_id, k.business_date
ON CONFLICT (organization_id, property_id, business_date) DO UPDATE SET updated_at = s.updated_at";

/// A batch's revenue rows, inserted in the order given (sorted by property
/// and day); rows of another organization's property are dropped by the join.
const BATCH_REVENUE: &str = "\
INSERT INTO {{revenue}} (organization_id, property_id, business_date, category, amount_cents, description)
SELECT $1, b.property_id, b.business_date, b.category::entry_category, b.amount_cents, b.description
FROM unnest($2::int8[], $3::date[], $4::text[], $5::int8[], $6::text[])
     WITH ORDINALITY AS b(property_id, business_date, category, amount_cents, description, n)
JOIN properties p ON p.id = b.property_id AND p.organization_id = $1
ORDER BY b.n
RETURNING id";

const BATCH_EXPENSE: &str = "\
INSERT INTO {{expense}} (organization_id, property_id, business_date, category, amount_cents, vendor, description)
SELECT $1, b.property_id, b.business_date, b.category::entry_category, b.amount_cents, b.vendor, b.description
FROM unnest($2::int8[], $3::date[], $4::text[], $5::int8[], $6::text[], $7::text[])
     WITH ORDINALITY AS b(property_id, business_date, category, amount_cents, vendor, description, n)
JOIN properties p ON p.id = b.property_id AND p.organization_id = $1
ORDER BY b.n
RETURNING id";

/// The WAL position after a commit: at or past the commit record.
const COMMIT_LSN: &str = "SELECT pg_current_wal_insert_lsn()";

/// The most entries one end-of-day batch may hold.
pub const MAX_BATCH: usize = 1000;

/// The finance statements of one mode.
pub(crate) struct Sql {
    record_revenue: String,
    record_expense: String,
    adjust: [String; 2],
    void: [String; 2],
    lock_summaries: String,
    batch_revenue: String,
    batch_expense: String,
}

impl Sql {
    #[cfg(test)]
    pub(crate) fn render(t: &FinanceTables) -> Sql {
        Sql::render_as(t, [t.revenue, t.expense, t.summary])
    }

    /// The statements on other relations: one organization's leaf partitions.
    pub(crate) fn render_as(t: &FinanceTables, names: [&str; 3]) -> Sql {
        let r = |template: &str| t.render_as(template, names);
        let per_kind = |template: &str| {
            [
                r(&template.replace("{{entries}}", "{{revenue}}")),
                r(&template.replace("{{entries}}", "{{expense}}")),
            ]
        };
        Sql {
            record_revenue: r(RECORD_REVENUE),
            record_expense: r(RECORD_EXPENSE),
            adjust: per_kind(ADJUST),
            void: per_kind(VOID),
            lock_summaries: r(LOCK_SUMMARIES),
            batch_revenue: r(BATCH_REVENUE),
            batch_expense: r(BATCH_EXPENSE),
        }
    }
}

/// Revenue or expense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Revenue,
    Expense,
}

impl EntryKind {
    fn index(self) -> usize {
        self as usize
    }

    pub fn categories(self) -> &'static [&'static str] {
        match self {
            EntryKind::Revenue => &REVENUE_CATEGORIES,
            EntryKind::Expense => &EXPENSE_CATEGORIES,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Revenue => "revenue",
            EntryKind::Expense => "expense",
        }
    }
}

/// An entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub kind: EntryKind,
    pub property_id: i64,
    pub business_date: Day,
    pub category: String,
    pub amount_cents: i64,
    /// Required for expenses, absent for revenue.
    pub vendor: Option<String>,
    pub description: Option<String>,
}

impl NewEntry {
    pub fn revenue(
        property_id: i64,
        business_date: Day,
        category: &str,
        amount_cents: i64,
    ) -> NewEntry {
        NewEntry {
            kind: EntryKind::Revenue,
            property_id,
            business_date,
            category: category.to_string(),
            amount_cents,
            vendor: None,
            description: None,
        }
    }

    pub fn expense(
        property_id: i64,
        business_date: Day,
        category: &str,
        amount_cents: i64,
        vendor: &str,
    ) -> NewEntry {
        NewEntry {
            kind: EntryKind::Expense,
            vendor: Some(vendor.to_string()),
            ..NewEntry::revenue(property_id, business_date, category, amount_cents)
        }
    }

    fn check(&self) -> Result<()> {
        check_amount(self.amount_cents)?;
        check_category(self.kind, &self.category)?;
        match (self.kind, &self.vendor) {
            (EntryKind::Expense, None) => Err(Error::Usage("an expense needs a vendor".into())),
            (EntryKind::Revenue, Some(_)) => {
                Err(Error::Usage("a revenue entry has no vendor".into()))
            }
            _ => Ok(()),
        }
    }
}

fn check_amount(cents: i64) -> Result<()> {
    if cents <= 0 {
        return Err(Error::Usage(format!(
            "amount {cents} cents: amounts are positive (void an entry to take it back)"
        )));
    }
    Ok(())
}

fn check_category(kind: EntryKind, category: &str) -> Result<()> {
    if !kind.categories().contains(&category) {
        return Err(Error::Usage(format!(
            "unknown {} category {category:?}; one of {}",
            kind.name(),
            kind.categories().join(", ")
        )));
    }
    Ok(())
}

/// What to change in an entry; None keeps the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adjustment {
    pub amount_cents: Option<i64>,
    pub category: Option<String>,
    pub business_date: Option<Day>,
    pub property_id: Option<i64>,
}

/// A committed write of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub organization_id: i64,
    pub kind: EntryKind,
    pub id: i64,
    /// WAL position after the commit: pass it as `ReadOptions::min_lsn`.
    pub lsn: u64,
    /// The mode whose tables took the write.
    pub mode: Mode,
    /// 1 unless a serialization failure or deadlock was retried.
    pub attempts: u32,
}

/// A committed end-of-day batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchWritten {
    pub organization_id: i64,
    /// (kind, id) of each entry, in the order the caller gave them.
    pub ids: Vec<(EntryKind, i64)>,
    pub lsn: u64,
    pub mode: Mode,
    pub attempts: u32,
}

/// Counters of the finance repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceStats {
    pub writes: u64,
    pub retried_serialization: u64,
    pub retried_deadlock: u64,
    /// Writes that failed after the last retry.
    pub gave_up: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    writes: AtomicU64,
    serialization: AtomicU64,
    deadlock: AtomicU64,
    gave_up: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> FinanceStats {
        FinanceStats {
            writes: self.writes.load(Ordering::Relaxed),
            retried_serialization: self.serialization.load(Ordering::Relaxed),
            retried_deadlock: self.deadlock.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
        }
    }
}

/// The SQLSTATE of a retryable failure, if `e` is one.
fn retryable(e: &Error) -> Option<&'static str> {
    let Error::Db { source, .. } = e else {
        return None;
    };
    match source.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => Some("40001"),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Some("40P01"),
        _ => None,
    }
}

/// The finance repository; get one from [`super::Repo::finance`].
#[derive(Clone)]
pub struct Finance {
    pub(crate) core: Arc<Core>,
}

impl Finance {
    /// Run `attempt` until it commits, retrying serialization failures and
    /// deadlocks with a growing pause; returns the value and the attempts.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<(T, u32)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let c = &self.core.finance;
        let mut n = 1u32;
        loop {
            match attempt().await {
                Ok(v) => {
                    c.writes.fetch_add(1, Ordering::Relaxed);
                    return Ok((v, n));
                }
                Err(e) => match retryable(&e) {
                    Some(code) if n <= self.core.max_retries => {
                        let counter = if code == "40001" {
                            &c.serialization
                        } else {
                            &c.deadlock
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(2u64 << n.min(6))).await;
                        n += 1;
                    }
                    Some(_) => {
                        c.gave_up.fetch_add(1, Ordering::Relaxed);
                        return Err(e);
                    }
                    None => return Err(e),
                },
            }
        }
    }

    /// After a commit: its LSN, and the organization's cache bumped.
    async fn committed(&self, org: i64) -> Result<u64> {
        let primary: &Target = &self.core.primary;
        let conn = primary.get().await?;
        let rows = conn
            .run(primary.statements, COMMIT_LSN, &[])
            .await
            .db(|| "reading the WAL position after a commit".into())?;
        let lsn: u64 = rows[0].get::<_, PgLsn>(0).into();
        if let Some(cache) = &self.core.cache {
            cache.invalidate(org, lsn).await;
        }
        Ok(lsn)
    }

    /// Run one autocommitted statement on the primary that returns an id.
    async fn one(&self, what: &str, sql: &str, params: &[Param<'_>]) -> Result<Option<i64>> {
        let primary: &Target = &self.core.primary;
        let conn = primary.get().await?;
        let rows = conn
            .run(primary.statements, sql, params)
            .await
            .db(|| format!("{what} on the primary"))
            .inspect_err(|e| self.core.failed(e))?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Record one revenue or expense entry.
    pub async fn record(&self, org: i64, e: &NewEntry) -> Result<Written> {
        e.check()?;
        let mode = self.core.mode(Some(org)).await;
        let stmts = self.core.sql(mode, Some(org)).await;
        let sql = &stmts.finance;
        let (id, attempts) = self
            .retrying(|| async {
                let mut p: Vec<Param<'_>> = vec![
                    (&org, Type::INT8),
                    (&e.property_id, Type::INT8),
                    (&e.business_date, Type::DATE),
                    (&e.category, Type::TEXT),
                    (&e.amount_cents, Type::INT8),
                ];
                let stmt = match e.kind {
                    EntryKind::Revenue => &sql.record_revenue,
                    EntryKind::Expense => {
                        p.push((&e.vendor, Type::TEXT));
                        &sql.record_expense
                    }
                };
                p.push((&e.description, Type::TEXT));
                self.one("recording an entry", stmt, &p).await
            })
            .await?;
        let id = id.ok_or_else(|| {
            Error::NotFound(format!(
                "property {} is not a property of organization {org}",
                e.property_id
            ))
        })?;
        Ok(Written {
            organization_id: org,
            kind: e.kind,
            id,
            lsn: self.committed(org).await?,
            mode,
            attempts,
        })
    }

    /// Change an entry's amount, category, day or property.
    pub async fn adjust(
        &self,
        org: i64,
        kind: EntryKind,
        id: i64,
        a: &Adjustment,
    ) -> Result<Written> {
        if let Some(c) = a.amount_cents {
            check_amount(c)?;
        }
        if let Some(c) = &a.category {
            check_category(kind, c)?;
        }
        let mode = self.core.mode(Some(org)).await;
        let stmts = self.core.sql(mode, Some(org)).await;
        let sql = &stmts.finance.adjust[kind.index()];
        let params: [Param<'_>; 6] = [
            (&org, Type::INT8),
            (&id, Type::INT8),
            (&a.amount_cents, Type::INT8),
            (&a.category, Type::TEXT),
            (&a.business_date, Type::DATE),
            (&a.property_id, Type::INT8),
        ];
        let (found, attempts) = self
            .retrying(|| self.one("adjusting an entry", sql, &params))
            .await?;
        if found.is_none() {
            return Err(Error::NotFound(match a.property_id {
                Some(p) => format!(
                    "no {} entry {id} of organization {org} ({mode} mode), or property {p} is not the organization's",
                    kind.name()
                ),
                None => format!("no {} entry {id} of organization {org} ({mode} mode)", kind.name()),
            }));
        }
        Ok(Written {
            organization_id: org,
            kind,
            id,
            lsn: self.committed(org).await?,
            mode,
            attempts,
        })
    }

    /// Delete an entry; its summary row is corrected by the trigger.
    pub async fn void(&self, org: i64, kind: EntryKind, id: i64) -> Result<Written> {
        let mode = self.core.mode(Some(org)).await;
        let stmts = self.core.sql(mode, Some(org)).await;
        let sql = &stmts.finance.void[kind.index()];
        let params: [Param<'_>; 2] = [(&org, Type::INT8), (&id, Type::INT8)];
        let (found, attempts) = self
            .retrying(|| self.one("voiding an entry", sql, &params))
            .await?;
        if found.is_none() {
            return Err(Error::NotFound(format!(
                "no {} entry {id} of organization {org} ({mode} mode)",
                kind.name()
            )));
        }
        Ok(Written {
            organization_id: org,
            kind,
            id,
            lsn: self.committed(org).await?,
            mode,
            attempts,
        })
    }

    /// Post an end-of-day batch for one organization in one transaction.
    /// Rows are written sorted by (property, business date); ids come back
    /// in the caller's order.
    pub async fn post_batch(&self, org: i64, entries: &[NewEntry]) -> Result<BatchWritten> {
        if entries.is_empty() || entries.len() > MAX_BATCH {
            return Err(Error::Usage(format!(
                "a batch holds 1..{MAX_BATCH} entries, not {}",
                entries.len()
            )));
        }
        for (i, e) in entries.iter().enumerate() {
            e.check()
                .map_err(|err| Error::Usage(format!("batch entry {}: {err}", i + 1)))?;
        }
        let order = sorted_order(entries);
        let mut keys: Vec<(i64, Day)> = entries
            .iter()
            .map(|e| (e.property_id, e.business_date))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mode = self.core.mode(Some(org)).await;
        let stmts = self.core.sql(mode, Some(org)).await;
        let sql = &stmts.finance;
        let (ids, attempts) = self
            .retrying(|| self.batch_once(org, entries, &order, &keys, sql))
            .await
            .inspect_err(|e| self.core.failed(e))?;
        Ok(BatchWritten {
            organization_id: org,
            ids,
            lsn: self.committed(org).await?,
            mode,
            attempts,
        })
    }

    async fn batch_once(
        &self,
        org: i64,
        entries: &[NewEntry],
        order: &[usize],
        keys: &[(i64, Day)],
        sql: &Sql,
    ) -> Result<Vec<(EntryKind, i64)>> {
        let primary: &Target = &self.core.primary;
        let mut conn = primary.get().await?;
        let txn = conn
            .transaction()
            .await
            .db(|| "starting a batch transaction".into())?;
        let st = primary.statements;
        let key_props: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let key_days: Vec<Day> = keys.iter().map(|k| k.1).collect();
        txn.run(
            st,
            &sql.lock_summaries,
            &[
                (&org, Type::INT8),
                (&key_props, Type::INT8_ARRAY),
                (&key_days, Type::DATE_ARRAY),
            ],
        )
        .await
        .db(|| format!("locking the summary rows of a batch of organization {org}"))?;
        let mut ids = vec![(EntryKind::Revenue, 0i64); entries.len()];
        for kind in [EntryKind::Revenue, EntryKind::Expense] {
            let idx: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| entries[i].kind == kind)
                .collect();
            if idx.is_empty() {
                continue;
            }
            let props: Vec<i64> = idx.iter().map(|&i| entries[i].property_id).collect();
            let days: Vec<Day> = idx.iter().map(|&i| entries[i].business_date).collect();
            let cats: Vec<&str> = idx.iter().map(|&i| entries[i].category.as_str()).collect();
            let amounts: Vec<i64> = idx.iter().map(|&i| entries[i].amount_cents).collect();
            let vendors: Vec<Option<&str>> =
                idx.iter().map(|&i| entries[i].vendor.as_deref()).collect();
            let descs: Vec<Option<&str>> = idx
                .iter()
                .map(|&i| entries[i].description.as_deref())
                .collect();
            let mut params: Vec<Param<'_>> = vec![
                (&org, Type::INT8),
                (&props, Type::INT8_ARRAY),
                (&days, Type::DATE_ARRAY),
                (&cats, Type::TEXT_ARRAY),
                (&amounts, Type::INT8_ARRAY),
            ];
            let stmt = match kind {
                EntryKind::Revenue => &sql.batch_revenue,
                EntryKind::Expense => {
                    params.push((&vendors as &(dyn ToSql + Sync), Type::TEXT_ARRAY));
                    &sql.batch_expense
                }
            };
            params.push((&descs, Type::TEXT_ARRAY));
            let rows = txn
                .run(st, stmt, &params)
                .await
                .db(|| format!("inserting the {} rows of a batch", kind.name()))?;
            if rows.len() != idx.len() {
                return Err(Error::NotFound(format!(
                    "{} of the batch's {} entries name a property that is not organization {org}'s; \
                     nothing was written",
                    idx.len() - rows.len(),
                    kind.name()
                )));
            }
            // Ids come from one sequence in insertion order: ascending ids
            // are the rows in the order they were given.
            let mut got: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            got.sort_unstable();
            for (&i, id) in idx.iter().zip(got) {
                ids[i] = (kind, id);
            }
        }
        txn.commit()
            .await
            .db(|| format!("committing a batch of organization {org}"))?;
        Ok(ids)
    }
}

/// Indexes of `entries` sorted by (property, business date), stable.
fn sorted_order(entries: &[NewEntry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].property_id, entries[i].business_date));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_written_by_property_then_day_and_keep_ties_in_order() {
        let d = Day::from_ymd(2026, 11, 2);
        let entries = vec![
            NewEntry::revenue(7, d, "rooms", 100),
            NewEntry::expense(3, d.plus(1), "payroll", 50, "v"),
            NewEntry::revenue(3, d, "spa", 10),
            NewEntry::revenue(7, d, "other", 5),
        ];
        assert_eq!(sorted_order(&entries), vec![2, 1, 0, 3]);
    }

    #[test]
    fn entries_are_checked_before_anything_is_sent() {
        let d = Day::from_ymd(2026, 11, 2);
        let bad = [
            NewEntry::revenue(1, d, "rooms", 0),
            NewEntry::revenue(1, d, "payroll", 10),
            NewEntry {
                vendor: None,
                ..NewEntry::expense(1, d, "payroll", 10, "v")
            },
        ];
        for e in bad {
            assert_eq!(
                e.check().unwrap_err().exit_code(),
                crate::exit::USAGE,
                "{e:?}"
            );
        }
        assert!(NewEntry::expense(1, d, "payroll", 10, "v").check().is_ok());
    }

    #[test]
    fn statements_render_for_both_kinds_and_modes() {
        for m in [Mode::Legacy, Mode::Partitioned] {
            let s = Sql::render(m.tables());
            assert!(s.adjust[0].contains(m.tables().revenue), "{}", s.adjust[0]);
            assert!(s.void[1].contains(m.tables().expense), "{}", s.void[1]);
            for t in [
                &s.record_revenue,
                &s.record_expense,
                &s.lock_summaries,
                &s.batch_revenue,
                &s.batch_expense,
            ] {
                assert!(!t.contains("{{"), "{t}");
            }
        }
    }
}
