//! The summary triggers under a concurrent write burst: the hardened
//! variant (one upsert per summary row) against the naive one (read, then
//! write back), on the same burst, counting what each got wrong.
//!
//! The drill runs it on tables of its own next to the real ones (plain
//! tables named `rehearse_race_<variant>_*`), dropped afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::db;
use crate::error::{describe_pg, DbContext, Result};
use crate::generate::rng::SplitMix;
use crate::schema::{self, FinanceTables, Mode, TriggerVariant};

const HARDENED: FinanceTables = FinanceTables {
    mode: Mode::Legacy,
    revenue: "rehearse_race_hardened_revenue",
    expense: "rehearse_race_hardened_expense",
    summary: "rehearse_race_hardened_summaries",
    trigger_fn: "rehearse_race_hardened_trigger",
    apply_fn: "rehearse_race_hardened_apply",
    entry_key: "id",
};

const NAIVE: FinanceTables = FinanceTables {
    mode: Mode::Legacy,
    revenue: "rehearse_race_naive_revenue",
    expense: "rehearse_race_naive_expense",
    summary: "rehearse_race_naive_summaries",
    trigger_fn: "rehearse_race_naive_trigger",
    apply_fn: "rehearse_race_naive_apply",
    entry_key: "id",
};

/// What a burst did.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub writes: u64,
    /// Writes that failed (the naive variant's concurrent first inserts of a
    /// summary row collide on its key).
    pub failed_writes: u64,
    pub first_error: Option<String>,
}

/// One variant's result on the burst.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaceResult {
    pub variant: TriggerVariant,
    pub writers: usize,
    pub burst: Burst,
    /// Summary rows that differ from the aggregate of the entries.
    pub wrong_summary_rows: i64,
    /// Summary rows the burst left (the days and properties it touched).
    pub summary_rows: i64,
    /// Entries the summaries do not count, or count too often: |Σ counts − entries|.
    pub lost_updates: i64,
    pub entries: i64,
}

impl RaceResult {
    pub fn describe(&self) -> String {
        format!(
            "{:<8} {} writes by {} writers: {} of {} summary rows wrong, {} lost updates (counts), {} failed writes{}",
            self.variant.name(),
            self.burst.writes,
            self.writers,
            self.wrong_summary_rows,
            self.summary_rows,
            self.lost_updates,
            self.burst.failed_writes,
            self.burst
                .first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        )
    }
}

/// `writers` connections, each inserting, moving, re-pricing and deleting
/// entries over 3 organizations x 2 properties x 3 days of `t`, so every
/// summary row is written by many writers at once. Deterministic per seed.
pub async fn burst(
    url: &str,
    t: &FinanceTables,
    writers: u64,
    ops_per_writer: u64,
    seed: u64,
) -> Result<Burst> {
    let errors = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for w in 0..writers {
        let client = db::connect(url).await?;
        let errors = errors.clone();
        let (revenue, expense) = (t.revenue, t.expense);
        handles.push(tokio::spawn(async move {
            let mut rng = SplitMix(crate::generate::rng::mix(seed, w + 1));
            let mut below = |n: u64| rng.below(n);
            let mut mine: Vec<(bool, i64, i64)> = Vec::new(); // (is_revenue, id, org)
            let mut first_error = None;
            for _ in 0..ops_per_writer {
                let org = 1 + below(3) as i64;
                let prop = org * 10 + below(2) as i64;
                let day = format!("2026-10-0{}", 1 + below(3));
                let amount = 1 + below(10_000) as i64;
                let roll = below(100);
                let result = if roll < 55 || mine.is_empty() {
                    let is_revenue = below(2) == 0;
                    let sql = if is_revenue {
                        format!("INSERT INTO {revenue} (organization_id, property_id, business_date, category, amount_cents) VALUES ($1, $2, $3::text::date, 'rooms', $4) RETURNING id")
                    } else {
                        format!("INSERT INTO {expense} (organization_id, property_id, business_date, category, amount_cents, vendor) VALUES ($1, $2, $3::text::date, 'payroll', $4, 'v') RETURNING id")
                    };
                    client
                        .query_one(&sql, &[&org, &prop, &day, &amount])
                        .await
                        .map(|r| mine.push((is_revenue, r.get(0), org)))
                } else {
                    let idx = below(mine.len() as u64) as usize;
                    let (is_revenue, id, own_org) = mine[idx];
                    let table = if is_revenue { revenue } else { expense };
                    let own_prop = own_org * 10 + below(2) as i64;
                    if roll < 90 {
                        // Move to another day and property of its organization, and re-price.
                        let sql = format!("UPDATE {table} SET business_date = $2::text::date, property_id = $3, amount_cents = $4 WHERE id = $1 AND organization_id = $5");
                        client
                            .execute(&sql, &[&id, &day, &own_prop, &amount, &own_org])
                            .await
                            .map(|_| ())
                    } else {
                        mine.swap_remove(idx);
                        let sql = format!("DELETE FROM {table} WHERE id = $1 AND organization_id = $2");
                        client.execute(&sql, &[&id, &own_org]).await.map(|_| ())
                    }
                };
                if let Err(e) = result {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.get_or_insert_with(|| describe_pg(&e));
                }
            }
            first_error
        }));
    }
    let mut first_error = None;
    for h in handles {
        if let Ok(Some(e)) = h.await {
            first_error.get_or_insert(e);
        }
    }
    Ok(Burst {
        writes: writers * ops_per_writer,
        failed_writes: errors.load(Ordering::Relaxed),
        first_error,
    })
}

/// Entries of `t`, and |Σ summary counts − entries|.
pub async fn counted(client: &impl GenericClient, t: &FinanceTables) -> Result<(i64, i64)> {
    let r = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {r}) + (SELECT count(*) FROM {e}), \
                        coalesce((SELECT sum(revenue_count + expense_count) FROM {s}), 0)::int8",
                r = t.revenue,
                e = t.expense,
                s = t.summary
            ),
            &[],
        )
        .await
        .db(|| format!("counting the entries of {}", t.revenue))?;
    let (entries, counted): (i64, i64) = (r.get(0), r.get(1));
    Ok((entries, (counted - entries).abs()))
}

/// Build each variant's tables, run the same burst on both, count, drop.
pub async fn race(
    url: &str,
    writers: u64,
    ops_per_writer: u64,
    seed: u64,
) -> Result<Vec<RaceResult>> {
    let client = db::connect(url).await?;
    let mut out = Vec::new();
    for (t, variant) in [
        (&HARDENED, TriggerVariant::Hardened),
        (&NAIVE, TriggerVariant::Naive),
    ] {
        client
            .batch_execute(&format!(
                "{}\n{}",
                schema::drop_tables_sql(t),
                schema::plain_tables_sql(t, variant)
            ))
            .await
            .db(|| format!("creating the {} race tables", variant.name()))?;
        let burst = burst(url, t, writers, ops_per_writer, seed).await;
        let measured = match burst {
            Ok(burst) => {
                let wrong = schema::summary_mismatches_of(&client, t).await?;
                let (entries, lost) = counted(&client, t).await?;
                let summary_rows: i64 = client
                    .query_one(&format!("SELECT count(*) FROM {}", t.summary), &[])
                    .await
                    .db(|| format!("counting the rows of {}", t.summary))?
                    .get(0);
                Ok(RaceResult {
                    variant,
                    writers: writers as usize,
                    burst,
                    wrong_summary_rows: wrong,
                    summary_rows,
                    lost_updates: lost,
                    entries,
                })
            }
            Err(e) => Err(e),
        };
        client
            .batch_execute(&schema::drop_tables_sql(t))
            .await
            .db(|| format!("dropping the {} race tables", variant.name()))?;
        out.push(measured?);
    }
    Ok(out)
}
