//! What one request does: drawn from the mix with a seed of its own (so the
//! same request index asks the same thing of every variant), then run
//! through the repository.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::day::Day;
use crate::error::Result;
use crate::generate::rng::{mix, SplitMix};
use crate::repo::finance::{Adjustment, EntryKind, NewEntry};
use crate::repo::reporting::ReadOptions;
use crate::repo::Repo;
use crate::scenario::{MixEntry, Operation, SqlParam, Variant};
use crate::schema::Mode;

use super::ledger::{Ledger, PendingWrite};
use super::tenants::{Chooser, TenantSet};

const VENDORS: [&str; 6] = [
    "Metro Supplies",
    "City Utilities",
    "Harbor Linen",
    "Summit Foods",
    "Northwind Repairs",
    "Brightside Media",
];

/// Entries a worker wrote, for adjusts and voids to act on.
pub struct WriteLog {
    recent: VecDeque<(i64, EntryKind, i64)>,
}

impl WriteLog {
    const CAPACITY: usize = 256;

    pub fn new() -> WriteLog {
        WriteLog {
            recent: VecDeque::with_capacity(Self::CAPACITY),
        }
    }

    fn push(&mut self, org: i64, kind: EntryKind, id: i64) {
        if self.recent.len() == Self::CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back((org, kind, id));
    }
}

impl Default for WriteLog {
    fn default() -> Self {
        WriteLog::new()
    }
}

/// A scenario's mix, tenants and business day, ready to draw requests from.
pub struct Workload {
    pub mix: Vec<MixEntry>,
    cdf: Vec<f64>,
    pub tenants: Arc<TenantSet>,
    chooser: Arc<Chooser>,
    /// The business day writes are posted to and reports end on: the seed's last day.
    pub today: Day,
    /// Added to every request (`inject_delay`).
    pub delay: std::time::Duration,
    /// Where acknowledged writes are recorded (the cutover drill's ledger).
    pub ledger: Option<Arc<Ledger>>,
    /// The statements each operation sends, for attribution.
    pub trace: Option<Arc<crate::repo::trace::Trace>>,
}

/// One drawn request.
pub struct Request {
    pub op: usize,
    org: usize,
    rng: SplitMix,
}

impl Workload {
    pub fn new(
        mix: Vec<MixEntry>,
        tenants: Arc<TenantSet>,
        chooser: Arc<Chooser>,
        today: Day,
    ) -> Workload {
        let mut acc = 0.0;
        let cdf = mix
            .iter()
            .map(|m| {
                acc += m.weight;
                acc
            })
            .collect();
        Workload {
            mix,
            cdf,
            tenants,
            chooser,
            today,
            delay: std::time::Duration::ZERO,
            ledger: None,
            trace: None,
        }
    }

    /// Whether any operation needs organizations to act on.
    pub fn needs_tenants(mix: &[MixEntry]) -> bool {
        mix.iter().any(|m| {
            m.operation != Operation::Sql
                || m.params
                    .iter()
                    .any(|p| matches!(p, SqlParam::Org | SqlParam::Property))
        })
    }

    /// The request with this seed.
    #[inline]
    pub fn plan(&self, seed: u64) -> Request {
        let mut rng = SplitMix(mix(seed, 0x5eed));
        let x = rng.unit() * self.cdf[self.cdf.len() - 1];
        let op = self
            .cdf
            .partition_point(|&c| c <= x)
            .min(self.cdf.len() - 1);
        let org = if self.tenants.is_empty() {
            0
        } else {
            self.chooser.pick(&mut rng)
        };
        Request { op, org, rng }
    }

    /// Run a request through the repository (inside the trace's scope of
    /// its operation, when attribution is on).
    pub async fn execute(
        &self,
        repo: &Repo,
        variant: &Variant,
        req: &mut Request,
        log: &mut WriteLog,
    ) -> Result<Option<Mode>> {
        match &self.trace {
            Some(t) => {
                t.scope(req.op as u16, self.send(repo, variant, req, log))
                    .await
            }
            None => self.send(repo, variant, req, log).await,
        }
    }

    async fn send(
        &self,
        repo: &Repo,
        variant: &Variant,
        req: &mut Request,
        log: &mut WriteLog,
    ) -> Result<Option<Mode>> {
        if !self.delay.is_zero() {
            if self.delay < std::time::Duration::from_millis(2) {
                // Timers have millisecond granularity: spin for short delays.
                let until = std::time::Instant::now() + self.delay;
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            } else {
                tokio::time::sleep(self.delay).await;
            }
        }
        let m = &self.mix[req.op];
        let rng = &mut req.rng;
        let (org, props): (i64, &[i64]) = if self.tenants.is_empty() {
            (0, &[])
        } else {
            (self.tenants.orgs[req.org], self.tenants.properties(req.org))
        };
        let pick = |rng: &mut SplitMix, xs: &[i64]| xs[(rng.next_u64() % xs.len() as u64) as usize];
        let read = ReadOptions {
            via: variant.reads,
            cache: variant.cache,
            min_lsn: None,
        };
        let today = self.today;
        let since = |days: u32| today.plus(1 - days as i32);
        let revenue = |rng: &mut SplitMix, prop: i64| {
            let cats = EntryKind::Revenue.categories();
            NewEntry::revenue(
                prop,
                today,
                cats[(rng.next_u64() % cats.len() as u64) as usize],
                1_000 + (rng.next_u64() % 200_000) as i64,
            )
        };
        let expense = |rng: &mut SplitMix, prop: i64| {
            let cats = EntryKind::Expense.categories();
            NewEntry::expense(
                prop,
                today,
                cats[(rng.next_u64() % cats.len() as u64) as usize],
                500 + (rng.next_u64() % 80_000) as i64,
                VENDORS[(rng.next_u64() % VENDORS.len() as u64) as usize],
            )
        };
        let ledger = self.ledger.as_deref();
        let fin = repo.finance();
        let rep = repo.reporting();
        match m.operation {
            Operation::RecordRevenue | Operation::RecordExpense => {
                let prop = pick(rng, props);
                let e = if m.operation == Operation::RecordRevenue {
                    revenue(rng, prop)
                } else {
                    expense(rng, prop)
                };
                let w = fin.record(org, &e).await?;
                if let Some(l) = ledger {
                    l.recorded(w.id, org, &e);
                }
                log.push(org, w.kind, w.id);
                Ok(Some(w.mode))
            }
            Operation::Adjust | Operation::Void => {
                // Act on an entry this worker wrote; with none, write one first.
                let (eorg, kind, id) = match log.recent.pop_back() {
                    Some(x) => x,
                    None => {
                        let prop = pick(rng, props);
                        let e = revenue(rng, prop);
                        let w = fin.record(org, &e).await?;
                        if let Some(l) = ledger {
                            l.recorded(w.id, org, &e);
                        }
                        (org, w.kind, w.id)
                    }
                };
                if m.operation == Operation::Adjust {
                    let amount = 1_000 + (rng.next_u64() % 150_000) as i64;
                    let a = Adjustment {
                        amount_cents: Some(amount),
                        ..Default::default()
                    };
                    // Unknown until acknowledged: a timeout drops this future
                    // with the change perhaps committed.
                    if let Some(l) = ledger {
                        l.pending(kind, id, eorg, PendingWrite::Amount(amount));
                    }
                    let w = fin
                        .adjust(eorg, kind, id, &a)
                        .await
                        .inspect_err(|e| not_found(ledger, e, kind, id, eorg))?;
                    if let Some(l) = ledger {
                        l.adjusted(kind, id, eorg, amount);
                    }
                    log.push(eorg, kind, id);
                    Ok(Some(w.mode))
                } else {
                    if let Some(l) = ledger {
                        l.pending(kind, id, eorg, PendingWrite::Void);
                    }
                    let w = fin
                        .void(eorg, kind, id)
                        .await
                        .inspect_err(|e| not_found(ledger, e, kind, id, eorg))?;
                    if let Some(l) = ledger {
                        l.voided(kind, id, eorg);
                    }
                    Ok(Some(w.mode))
                }
            }
            Operation::PostBatch => {
                let entries: Vec<NewEntry> = (0..m.entries as usize)
                    .map(|k| {
                        let prop = props[k % props.len()];
                        if k % 3 == 2 {
                            expense(rng, prop)
                        } else {
                            revenue(rng, prop)
                        }
                    })
                    .collect();
                let w = fin.post_batch(org, &entries).await?;
                if let Some(l) = ledger {
                    for ((_, id), e) in w.ids.iter().zip(&entries) {
                        l.recorded(*id, org, e);
                    }
                }
                Ok(Some(w.mode))
            }
            Operation::Dashboard => Ok(Some(rep.dashboard(org, today, m.days, &read).await?.mode)),
            Operation::Pnl => Ok(Some(rep.pnl(org, today, &read).await?.mode)),
            Operation::Properties => Ok(Some(
                rep.property_breakdown(org, since(m.days), today, &read)
                    .await?
                    .mode,
            )),
            Operation::Ledger => Ok(Some(
                rep.ledger(org, since(m.days), today, None, m.limit, &read)
                    .await?
                    .mode,
            )),
            Operation::Portfolio => Ok(Some(
                rep.portfolio(since(m.days), today, m.top, &read)
                    .await?
                    .mode,
            )),
            Operation::Sql => {
                let mut params = [0i64; 16];
                for (slot, p) in params.iter_mut().zip(&m.params) {
                    *slot = match *p {
                        SqlParam::Org => org,
                        SqlParam::Property => pick(rng, props),
                        SqlParam::Int(lo, hi) => {
                            lo + (rng.next_u64() % (hi - lo + 1) as u64) as i64
                        }
                    };
                }
                let sql = m
                    .sql
                    .as_deref()
                    .expect("checked: sql operations have a statement");
                rep.raw(
                    m.via.unwrap_or(variant.reads),
                    sql,
                    &params[..m.params.len()],
                )
                .await?;
                Ok(None)
            }
        }
    }
}

/// A change answered "not found": the ledger counts the entry's last
/// acknowledged write as lost. Other errors leave its outcome unknown.
fn not_found(
    ledger: Option<&Ledger>,
    e: &crate::Error,
    kind: crate::repo::finance::EntryKind,
    id: i64,
    org: i64,
) {
    if let (Some(l), crate::Error::NotFound(_)) = (ledger, e) {
        l.not_found(kind, id, org);
    }
}
