//! The synthetic hospitality estate: organizations with a skewed number of
//! properties (most one, some a few, a handful of chains with hundreds),
//! their daily revenue and expense entries, and a content checksum.
//!
//! Every organization is generated from its own random stream, seeded from
//! the dataset seed and its id, and every id is derived from the
//! organization's id, so the data does not depend on how many workers
//! generate it or in which order. No database is touched here.

mod amounts;
pub mod rng;

use fake::faker::address::en::CityName;
use fake::faker::company::en::CompanyName;
use fake::faker::name::en::LastName;
use fake::Fake;
use rand::SeedableRng;

pub use rng::{mix, mix_str, SplitMix};

use crate::day::{Day, Timestamp};
use crate::error::{Error, Result};

/// Property kinds and their weight among independent properties.
pub const KINDS: [&str; 4] = ["hotel", "restaurant", "bar", "spa"];
const KIND_WEIGHTS: [u64; 4] = [30, 40, 20, 10];
pub const REVENUE_CATEGORIES: [&str; 4] = ["rooms", "food_beverage", "spa", "other"];
pub const EXPENSE_CATEGORIES: [&str; 5] = [
    "payroll",
    "supplies",
    "utilities",
    "maintenance",
    "marketing",
];

/// Markets, each a country with its currency (fake has no mapping between
/// the two, and a hotel in Japan billing in BRL would skew nothing but
/// credibility).
const MARKETS: [(&str, &str); 15] = [
    ("United States", "USD"),
    ("United Kingdom", "GBP"),
    ("Germany", "EUR"),
    ("France", "EUR"),
    ("Spain", "EUR"),
    ("Italy", "EUR"),
    ("Portugal", "EUR"),
    ("Netherlands", "EUR"),
    ("Mexico", "MXN"),
    ("Brazil", "BRL"),
    ("Japan", "JPY"),
    ("Australia", "AUD"),
    ("Canada", "CAD"),
    ("Thailand", "THB"),
    ("United Arab Emirates", "AED"),
];

/// The most properties one organization has. Property ids are
/// `organization_id * 1024 + n`, so this must stay below 1024.
pub const MAX_PROPERTIES: u32 = 1000;
const PROPERTY_ID_STRIDE: i64 = 1024;
/// Entry ids are `organization_id << 24 | n`: 16.7M entries per organization
/// and table, far above a 1000-property chain over ten years.
const ENTRY_ID_SHIFT: u32 = 24;
/// One chain per this many organizations (at least one).
const ORGS_PER_CHAIN: u64 = 20_000;
/// Vendors are drawn from a pool generated once per dataset.
const VENDOR_POOL: usize = 2_000;
/// The longest history a dataset may have.
pub const MAX_DAYS: u32 = 3_650;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    pub orgs: u64,
    pub days: u32,
    pub seed: u64,
    /// The last business day generated; the history ends here.
    pub end_date: Day,
}

impl Params {
    pub fn validate(&self) -> Result<()> {
        if self.orgs == 0 || self.orgs > 100_000_000 {
            return Err(Error::Usage(format!(
                "--orgs {} is out of range: 1 to 100000000",
                self.orgs
            )));
        }
        if self.days == 0 || self.days > MAX_DAYS {
            return Err(Error::Usage(format!(
                "--days {} is out of range: 1 to {MAX_DAYS}",
                self.days
            )));
        }
        Ok(())
    }

    pub fn first_day(&self) -> Day {
        self.end_date.plus(1 - self.days as i32)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub country: &'static str,
    pub city: String,
    pub currency: &'static str,
    pub size_tier: &'static str,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Property {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub kind: &'static str,
    /// Rooms for hotels, covers for restaurants and bars, treatment rooms for spas.
    pub size: i32,
    pub city: String,
}

#[derive(Debug, Clone, Copy)]
pub struct Revenue {
    pub id: i64,
    pub organization_id: i64,
    pub property_id: i64,
    pub business_date: Day,
    pub category: &'static str,
    pub amount_cents: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy)]
pub struct Expense<'g> {
    pub id: i64,
    pub organization_id: i64,
    pub property_id: i64,
    pub business_date: Day,
    pub category: &'static str,
    pub amount_cents: i64,
    pub vendor: &'g str,
    pub created_at: Timestamp,
}

/// One (property, business day)'s totals: the summary row its entries make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub organization_id: i64,
    pub property_id: i64,
    pub business_date: Day,
    pub revenue_cents: i64,
    pub expense_cents: i64,
    pub revenue_count: i32,
    pub expense_count: i32,
}

/// Everything one organization owns. Reused between organizations so the
/// row loop does not allocate vectors anew.
#[derive(Debug, Default)]
pub struct OrgRows<'g> {
    pub org: Organization,
    pub properties: Vec<Property>,
    pub revenue: Vec<Revenue>,
    pub expenses: Vec<Expense<'g>>,
    /// The daily summaries of those entries, one per property-day with any.
    pub summaries: Vec<Summary>,
    /// One property-day's (category, cents), reused across days.
    scratch: Vec<(usize, i64)>,
}

/// Row counts of a dataset (or of part of one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub organizations: u64,
    pub properties: u64,
    pub revenue_entries: u64,
    pub expense_entries: u64,
    /// Summary rows (per mode), loaded with the entries.
    #[serde(default)]
    pub summaries: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.organizations += o.organizations;
        self.properties += o.properties;
        self.revenue_entries += o.revenue_entries;
        self.expense_entries += o.expense_entries;
        self.summaries += o.summaries;
    }

    /// Rows a mode's load writes: organizations, properties, entries and summaries.
    pub fn total(&self) -> u64 {
        self.organizations
            + self.properties
            + self.revenue_entries
            + self.expense_entries
            + self.summaries
    }
}

impl OrgRows<'_> {
    pub fn counts(&self) -> Counts {
        Counts {
            organizations: 1,
            properties: self.properties.len() as u64,
            revenue_entries: self.revenue.len() as u64,
            expense_entries: self.expenses.len() as u64,
            summaries: self.summaries.len() as u64,
        }
    }

    /// An order-independent checksum of every field of every row: the sum of
    /// row hashes, so a dataset's checksum is the sum over its organizations
    /// whichever worker generated which.
    pub fn checksum(&self) -> u64 {
        let o = &self.org;
        let mut sum = row_hash(
            0x6f7267,
            &[
                mix(0x6f72, o.id as u64),
                mix_str(0, &o.name),
                mix_str(0, o.country),
                mix_str(0, &o.city),
                mix_str(0, o.currency),
                mix_str(0, o.size_tier),
                o.created_at.0 as u64,
            ],
        );
        for p in &self.properties {
            let fields = [
                p.id as u64,
                p.organization_id as u64,
                mix_str(0, &p.name),
                mix_str(0, p.kind),
                p.size as u64,
                mix_str(0, &p.city),
            ];
            sum = sum.wrapping_add(row_hash(0x70726f, &fields));
        }
        for r in &self.revenue {
            let fields = [
                r.id as u64,
                r.organization_id as u64,
                r.property_id as u64,
                r.business_date.0 as u64,
                mix_str(0, r.category),
                r.amount_cents as u64,
                r.created_at.0 as u64,
            ];
            sum = sum.wrapping_add(row_hash(0x726576, &fields));
        }
        for e in &self.expenses {
            let fields = [
                e.id as u64,
                e.organization_id as u64,
                e.property_id as u64,
                e.business_date.0 as u64,
                mix_str(0, e.category),
                e.amount_cents as u64,
                mix_str(0, e.vendor),
                e.created_at.0 as u64,
            ];
            sum = sum.wrapping_add(row_hash(0x657870, &fields));
        }
        sum
    }
}

/// The hash of one row: its fields mixed in order, starting from a tag per table.
fn row_hash(table_tag: u64, fields: &[u64]) -> u64 {
    fields.iter().fold(table_tag, |h, x| mix(h, *x))
}

/// A dataset's generator: parameters plus what is drawn once per dataset
/// (the vendor pool and where the chains are).
pub struct Generator {
    params: Params,
    vendors: Vec<String>,
    /// (organization id, property count), sorted by id.
    chains: Vec<(i64, u32)>,
}

impl Generator {
    pub fn new(params: Params) -> Result<Generator> {
        params.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(mix(params.seed, 0x76656e646f72));
        let vendors = (0..VENDOR_POOL)
            .map(|_| CompanyName().fake_with_rng(&mut rng))
            .collect();
        Ok(Generator {
            chains: chains(&params),
            params,
            vendors,
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The chains: (organization id, property count), largest first.
    pub fn chains(&self) -> Vec<(i64, u32)> {
        let mut c = self.chains.clone();
        c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        c
    }

    /// Generate organization `id` (1-based) into `out`, replacing what it held.
    pub fn fill<'g>(&'g self, id: i64, out: &mut OrgRows<'g>) {
        out.properties.clear();
        out.revenue.clear();
        out.expenses.clear();
        out.summaries.clear();
        let org_seed = mix(self.params.seed, id as u64);
        let mut rng = SplitMix(org_seed);
        let mut text_rng = rand::rngs::StdRng::seed_from_u64(org_seed);

        let chain = self
            .chains
            .binary_search_by_key(&id, |c| c.0)
            .ok()
            .map(|i| self.chains[i].1);
        let n_props = match chain {
            Some(n) => n,
            None => {
                let u = rng.unit();
                if u < 0.80 {
                    1
                } else if u < 0.97 {
                    2 + rng.below(4) as u32
                } else {
                    6 + (rng.unit().powi(2) * 35.0) as u32
                }
            }
        };
        let (country, currency) = MARKETS[rng.below(MARKETS.len() as u64) as usize];
        let org_city: String = CityName().fake_with_rng(&mut text_rng);
        out.org = Organization {
            id,
            name: CompanyName().fake_with_rng(&mut text_rng),
            country,
            city: org_city.clone(),
            currency,
            size_tier: match (chain, n_props) {
                (Some(_), _) => "chain",
                (None, 1) => "single",
                _ => "group",
            },
            created_at: self
                .params
                .first_day()
                .plus(-(365 + rng.below(3650) as i32))
                .at(9 * 3600),
        };
        // A chain is mostly one brand: one kind for most of its properties.
        let brand_kind = pick_weighted(&mut rng, &KIND_WEIGHTS);
        let price_tier = 0.6 + rng.unit() * 1.4;
        let mut next_revenue = (id << ENTRY_ID_SHIFT) + 1;
        let mut next_expense = (id << ENTRY_ID_SHIFT) + 1;
        for n in 0..n_props {
            let kind = if n_props > 1 && rng.unit() < 0.85 {
                brand_kind
            } else {
                pick_weighted(&mut rng, &KIND_WEIGHTS)
            };
            let size = amounts::property_size(&mut rng, kind);
            let city = if rng.unit() < 0.7 {
                org_city.clone()
            } else {
                CityName().fake_with_rng(&mut text_rng)
            };
            let last: String = LastName().fake_with_rng(&mut text_rng);
            let property = Property {
                id: id * PROPERTY_ID_STRIDE + n as i64,
                organization_id: id,
                name: format!("{last} {}", amounts::kind_label(kind, n)),
                kind: KINDS[kind],
                size,
                city,
            };
            let mut day = self.params.first_day();
            while day <= self.params.end_date {
                let f = amounts::day_factor(&mut rng, kind, day);
                let mut sales = 0;
                let first_revenue = out.revenue.len();
                let first_expense = out.expenses.len();
                amounts::revenue(&mut rng, kind, size, price_tier, f, &mut out.scratch);
                for &(category, cents) in &out.scratch {
                    sales += cents;
                    out.revenue.push(Revenue {
                        id: next_revenue,
                        organization_id: id,
                        property_id: property.id,
                        business_date: day,
                        category: REVENUE_CATEGORIES[category],
                        amount_cents: cents,
                        created_at: day.at(22 * 3600 + (next_revenue & 0xfff)),
                    });
                    next_revenue += 1;
                }
                amounts::expenses(&mut rng, kind, size, sales, day, &mut out.scratch);
                for &(category, cents) in &out.scratch {
                    // Utilities come from a few big suppliers; the rest from anyone.
                    let pool = if EXPENSE_CATEGORIES[category] == "utilities" {
                        20
                    } else {
                        self.vendors.len()
                    };
                    out.expenses.push(Expense {
                        id: next_expense,
                        organization_id: id,
                        property_id: property.id,
                        business_date: day,
                        category: EXPENSE_CATEGORIES[category],
                        amount_cents: cents,
                        vendor: &self.vendors[rng.below(pool as u64) as usize],
                        created_at: day.at(23 * 3600 + (next_expense & 0xfff)),
                    });
                    next_expense += 1;
                }
                let (revenue, expenses) = (
                    &out.revenue[first_revenue..],
                    &out.expenses[first_expense..],
                );
                if !revenue.is_empty() || !expenses.is_empty() {
                    out.summaries.push(Summary {
                        organization_id: id,
                        property_id: property.id,
                        business_date: day,
                        revenue_cents: revenue.iter().map(|r| r.amount_cents).sum(),
                        expense_cents: expenses.iter().map(|e| e.amount_cents).sum(),
                        revenue_count: revenue.len() as i32,
                        expense_count: expenses.len() as i32,
                    });
                }
                day = day.plus(1);
            }
            out.properties.push(property);
        }
    }
}

/// Chains spread evenly over the id space, one per ORGS_PER_CHAIN
/// organizations, sized along a Zipf-like curve from several hundred down
/// to a hundred properties.
fn chains(p: &Params) -> Vec<(i64, u32)> {
    let count = (p.orgs / ORGS_PER_CHAIN).max(1);
    let stride = p.orgs / count;
    let top = 500 + mix(p.seed, 0x746f70) % 400;
    let mut out: Vec<(i64, u32)> = (0..count)
        .map(|k| {
            let id = 1 + k * stride + mix(p.seed, 0x636861696e ^ k) % stride.max(1);
            let jitter = 0.9 + (mix(p.seed, k ^ 0x6a6974) % 200) as f64 / 1000.0;
            let size = (top as f64 / ((k + 1) as f64).powf(0.8) * jitter).max(100.0);
            (id as i64, (size as u32).min(MAX_PROPERTIES))
        })
        .collect();
    out.sort_by_key(|c| c.0);
    out.dedup_by_key(|c| c.0);
    out
}

fn pick_weighted(rng: &mut SplitMix, weights: &[u64]) -> usize {
    let total: u64 = weights.iter().sum();
    let mut r = rng.below(total);
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return i;
        }
        r -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(orgs: u64, seed: u64) -> Generator {
        Generator::new(Params {
            orgs,
            days: 14,
            seed,
            end_date: Day::from_ymd(2026, 10, 31),
        })
        .unwrap()
    }

    fn dataset_checksum(g: &Generator, ids: impl Iterator<Item = i64>) -> (u64, Counts) {
        let mut rows = OrgRows::default();
        let mut sum = 0u64;
        let mut counts = Counts::default();
        for id in ids {
            g.fill(id, &mut rows);
            sum = sum.wrapping_add(rows.checksum());
            counts.add(&rows.counts());
        }
        (sum, counts)
    }

    #[test]
    fn checksum_does_not_depend_on_generation_order_but_on_the_seed() {
        let g = gen(3000, 42);
        let (forward, counts) = dataset_checksum(&g, 1..=3000);
        let (backward, _) = dataset_checksum(&g, (1..=3000).rev());
        assert_eq!(forward, backward);
        assert!(counts.revenue_entries > 0);
        let (other, _) = dataset_checksum(&gen(3000, 43), 1..=3000);
        assert_ne!(forward, other);
    }

    #[test]
    fn shape_most_single_property_a_few_chains_in_the_hundreds() {
        let g = gen(20_000, 42);
        let mut rows = OrgRows::default();
        let (mut single, mut total_props) = (0u64, 0u64);
        let mut largest = 0usize;
        let mut first = Day(i32::MAX);
        let mut last = Day(i32::MIN);
        let mut rev_cats = std::collections::BTreeSet::new();
        let mut exp_cats = std::collections::BTreeSet::new();
        for id in 1..=20_000 {
            g.fill(id, &mut rows);
            single += (rows.properties.len() == 1) as u64;
            total_props += rows.properties.len() as u64;
            largest = largest.max(rows.properties.len());
            for r in &rows.revenue {
                assert!(r.amount_cents > 0);
                first = first.min(r.business_date);
                last = last.max(r.business_date);
                rev_cats.insert(r.category);
            }
            for e in &rows.expenses {
                assert!(e.amount_cents > 0);
                exp_cats.insert(e.category);
            }
        }
        let share = single as f64 / 20_000.0;
        assert!(
            (0.75..=0.85).contains(&share),
            "single-property share {share}"
        );
        assert!((100..=1000).contains(&largest), "largest chain {largest}");
        assert!(total_props < 20_000 * 3, "{total_props} properties");
        assert_eq!(first.to_string(), "2026-10-18");
        assert_eq!(last.to_string(), "2026-10-31");
        assert_eq!(rev_cats.len(), REVENUE_CATEGORIES.len(), "{rev_cats:?}");
        assert_eq!(exp_cats.len(), EXPENSE_CATEGORIES.len(), "{exp_cats:?}");
    }

    #[test]
    fn ids_are_unique_and_encode_the_organization() {
        let g = gen(5000, 7);
        let mut rows = OrgRows::default();
        let mut seen = std::collections::HashSet::new();
        for id in [1i64, 2, 2500, 5000] {
            g.fill(id, &mut rows);
            for p in &rows.properties {
                assert_eq!(p.id / PROPERTY_ID_STRIDE, id);
            }
            for r in &rows.revenue {
                assert_eq!(r.id >> ENTRY_ID_SHIFT, id);
                assert!(seen.insert(("r", r.id)));
                assert!(rows.properties.iter().any(|p| p.id == r.property_id));
            }
            for e in &rows.expenses {
                assert!(seen.insert(("e", e.id)));
            }
        }
    }

    #[test]
    fn weekends_sell_more_rooms_than_midweek() {
        let g = gen(20_000, 42);
        let mut rows = OrgRows::default();
        let (mut weekend, mut midweek) = (0i64, 0i64);
        for id in 1..=5000 {
            g.fill(id, &mut rows);
            for r in rows.revenue.iter().filter(|r| r.category == "rooms") {
                match r.business_date.weekday() {
                    4 | 5 => weekend += r.amount_cents,
                    1 | 2 => midweek += r.amount_cents,
                    _ => {}
                }
            }
        }
        assert!(
            weekend as f64 > midweek as f64 * 1.1,
            "weekend {weekend} midweek {midweek}"
        );
    }
}

#[cfg(test)]
mod pinned {
    use super::*;

    /// The checksum of a small fixed dataset. It changes only when the
    /// generated data changes; update it on purpose, never to make it pass.
    #[test]
    fn dataset_checksum_is_pinned() {
        let g = Generator::new(Params {
            orgs: 2000,
            days: 14,
            seed: 42,
            end_date: Day::from_ymd(2026, 10, 31),
        })
        .unwrap();
        let mut rows = OrgRows::default();
        let sum = (1..=2000).fold(0u64, |s, id| {
            g.fill(id, &mut rows);
            s.wrapping_add(rows.checksum())
        });
        assert_eq!(format!("{sum:016x}"), "2f4eabfafbbf2130");
    }
}
