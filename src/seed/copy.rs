//! The load phase: each job generates organizations and streams their rows
//! into binary COPY streams of its own (organizations, properties, and per
//! mode the entries and the daily summaries the generator totals alongside
//! them), so generation on the client overlaps with the server's work on
//! what was sent before, and every mode gets the same rows.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

use crate::db;
use crate::error::{DbContext, Result};
use crate::generate::{Counts, Generator, OrgRows};
use crate::progress::Task;
use crate::schema::FinanceTables;

/// Organizations a job takes at a time.
const CHUNK: u64 = 64;

/// What one job loaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct JobTotals {
    pub counts: Counts,
    pub checksum: u64,
    pub max_revenue_id: i64,
    pub max_expense_id: i64,
}

impl JobTotals {
    pub fn merge(&mut self, o: &JobTotals) {
        self.counts.add(&o.counts);
        self.checksum = self.checksum.wrapping_add(o.checksum);
        self.max_revenue_id = self.max_revenue_id.max(o.max_revenue_id);
        self.max_expense_id = self.max_expense_id.max(o.max_expense_id);
    }
}

struct Stream {
    _client: Client,
    writer: Pin<Box<BinaryCopyInWriter>>,
    what: String,
}

impl Stream {
    async fn open(url: &str, statement: String, types: &[Type]) -> Result<Stream> {
        let client = db::connect(url).await?;
        // Durability comes from the final, synchronous commit of the seed's
        // completion mark; the bulk rows need not wait for each flush.
        client
            .batch_execute("SET synchronous_commit = off")
            .await
            .db(|| "setting synchronous_commit for the load".into())?;
        let sink = client
            .copy_in(&statement)
            .await
            .db(|| format!("starting {statement}"))?;
        Ok(Stream {
            writer: Box::pin(BinaryCopyInWriter::new(sink, types)),
            _client: client,
            what: statement,
        })
    }

    async fn write(&mut self, row: &[&(dyn ToSql + Sync)]) -> Result<()> {
        let what = &self.what;
        self.writer
            .as_mut()
            .write(row)
            .await
            .db(|| format!("writing a row to {what}"))
    }

    async fn finish(mut self) -> Result<u64> {
        let what = self.what.clone();
        self.writer
            .as_mut()
            .finish()
            .await
            .db(|| format!("finishing {what}"))
    }
}

/// One job: take chunks of organizations from `next` until all are loaded.
pub async fn load_job(
    url: String,
    modes: Vec<&'static FinanceTables>,
    generator: Arc<Generator>,
    next: Arc<AtomicU64>,
    phase: Arc<Task>,
) -> Result<JobTotals> {
    let orgs = generator.params().orgs;
    let mut o = Stream::open(
        &url,
        "COPY organizations (id, name, country, city, currency, size_tier, created_at) FROM STDIN (FORMAT binary)".into(),
        &[Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ],
    )
    .await?;
    let mut p = Stream::open(
        &url,
        "COPY properties (id, organization_id, name, kind, size, city) FROM STDIN (FORMAT binary)"
            .into(),
        &[
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::TEXT,
        ],
    )
    .await?;
    let mut sides = Vec::new();
    for tables in modes {
        sides.push(Side::open(&url, tables).await?);
    }
    let mut totals = JobTotals::default();
    let mut rows = OrgRows::default();
    loop {
        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
        if start >= orgs {
            break;
        }
        let end = (start + CHUNK).min(orgs);
        let mut chunk_rows = 0u64;
        for id in (start + 1)..=end {
            generator.fill(id as i64, &mut rows);
            totals.checksum = totals.checksum.wrapping_add(rows.checksum());
            let c = rows.counts();
            chunk_rows += c.total();
            totals.counts.add(&c);
            let g = &rows.org;
            o.write(&[
                &g.id,
                &g.name,
                &g.country,
                &g.city,
                &g.currency,
                &g.size_tier,
                &g.created_at,
            ])
            .await?;
            for x in &rows.properties {
                p.write(&[
                    &x.id,
                    &x.organization_id,
                    &x.name,
                    &x.kind,
                    &x.size,
                    &x.city,
                ])
                .await?;
            }
            for side in &mut sides {
                side.write(&rows).await?;
            }
            for x in &rows.revenue {
                totals.max_revenue_id = totals.max_revenue_id.max(x.id);
            }
            for x in &rows.expenses {
                totals.max_expense_id = totals.max_expense_id.max(x.id);
            }
        }
        phase.inc(end - start);
        phase.set_message(format!("{} rows", crate::progress::thousands(chunk_rows)));
    }
    for s in [o, p] {
        s.finish().await?;
    }
    for side in sides {
        for s in [side.revenue, side.expense, side.summary] {
            s.finish().await?;
        }
    }
    Ok(totals)
}

/// One mode's entry and summary streams.
struct Side {
    revenue: Stream,
    expense: Stream,
    summary: Stream,
}

impl Side {
    async fn open(url: &str, tables: &FinanceTables) -> Result<Side> {
        Ok(Side {
            revenue: Stream::open(
                url,
                format!(
                    "COPY {} (id, organization_id, property_id, business_date, category, amount_cents, created_at) FROM STDIN (FORMAT binary)",
                    tables.revenue
                ),
                &[Type::INT8, Type::INT8, Type::INT8, Type::DATE, Type::TEXT, Type::INT8, Type::TIMESTAMPTZ],
            )
            .await?,
            expense: Stream::open(
                url,
                format!(
                    "COPY {} (id, organization_id, property_id, business_date, category, amount_cents, vendor, created_at) FROM STDIN (FORMAT binary)",
                    tables.expense
                ),
                &[Type::INT8, Type::INT8, Type::INT8, Type::DATE, Type::TEXT, Type::INT8, Type::TEXT, Type::TIMESTAMPTZ],
            )
            .await?,
            summary: Stream::open(
                url,
                format!(
                    "COPY {} (organization_id, property_id, business_date, revenue_cents, expense_cents, revenue_count, expense_count) FROM STDIN (FORMAT binary)",
                    tables.summary
                ),
                &[Type::INT8, Type::INT8, Type::DATE, Type::INT8, Type::INT8, Type::INT4, Type::INT4],
            )
            .await?,
        })
    }

    async fn write(&mut self, rows: &OrgRows<'_>) -> Result<()> {
        for x in &rows.revenue {
            self.revenue
                .write(&[
                    &x.id,
                    &x.organization_id,
                    &x.property_id,
                    &x.business_date,
                    &x.category,
                    &x.amount_cents,
                    &x.created_at,
                ])
                .await?;
        }
        for x in &rows.expenses {
            self.expense
                .write(&[
                    &x.id,
                    &x.organization_id,
                    &x.property_id,
                    &x.business_date,
                    &x.category,
                    &x.amount_cents,
                    &x.vendor,
                    &x.created_at,
                ])
                .await?;
        }
        for x in &rows.summaries {
            self.summary
                .write(&[
                    &x.organization_id,
                    &x.property_id,
                    &x.business_date,
                    &x.revenue_cents,
                    &x.expense_cents,
                    &x.revenue_count,
                    &x.expense_count,
                ])
                .await?;
        }
        Ok(())
    }
}
