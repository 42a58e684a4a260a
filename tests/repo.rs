//! The repository layer against the lab: parity of the two modes with an
//! independent aggregate, partition pruning, the cache, replica routing and
//! read-your-writes, PgBouncer, the flag flipped under load, and the CLI.
//!
//! All tests share one seeded lab database (`rehearse`, the one PgBouncer
//! serves). Seeded data covers 2026-10-18..=2026-10-31; tests write only in
//! November and only to organizations of their own, so the October reports
//! the parity test compares stay as seeded. Tests that stop a component take
//! the component lock for writing; the others take it for reading.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rehearse::day::Day;
use rehearse::estate::{Estate, EstateFlags};
use rehearse::lab::{Component, LabCtx};
use rehearse::repo::finance::{Adjustment, EntryKind, NewEntry};
use rehearse::repo::reporting::{
    Dashboard, DashboardDay, LedgerEntry, Pnl, PnlLine, PortfolioRow, PropertyTotal, ReadOptions,
    Source,
};
use rehearse::repo::{routing, Pooling, Repo, RepoConfig, Via};
use rehearse::schema::Mode;
use rehearse::seed::{self, Profile, SeedOptions};
use tokio::sync::RwLock;

/// Held for writing by tests that stop a lab component.
static COMPONENTS: RwLock<()> = RwLock::const_new(());

const PARTITIONS: u32 = 8;

fn oct(d: u32) -> Day {
    Day::from_ymd(2026, 10, d)
}

fn nov(d: u32) -> Day {
    Day::from_ymd(2026, 11, d)
}

/// An organization and its properties.
#[derive(Debug, Clone)]
struct Org {
    id: i64,
    properties: Vec<i64>,
}

struct Fixture {
    estate: Estate,
    /// One property.
    small: Org,
    /// A handful of properties.
    medium: Org,
    /// The organization with the most properties.
    largest: Org,
    /// Organizations no read-only test looks at; each writing test takes its own slice.
    spare: Vec<Org>,
}

/// The lab's `rehearse` database, seeded once per test binary.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let lab = common::lab();
        let flags = EstateFlags {
            lab_dir: Some(lab.state.dir.clone()),
            ..Default::default()
        };
        let estate = Estate::resolve_with(&flags, |_| None).expect("the lab estate resolves");
        let mut opts = SeedOptions::from_profile(Profile::Ci);
        opts.params.orgs = 400;
        opts.partitions = Some(PARTITIONS);
        opts.verbose = false;
        let url = estate.primary.url.clone();
        let seeding = estate.clone();
        let orgs = common::block_on(async move {
            seed::seed(&seeding, &opts).await.expect("the lab seeds");
            let c = rehearse::db::connect(&url).await.unwrap();
            c.query(
                "SELECT organization_id, array_agg(id ORDER BY id) FROM properties \
                 GROUP BY organization_id ORDER BY count(*) DESC, organization_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| Org {
                id: r.get(0),
                properties: r.get(1),
            })
            .collect::<Vec<_>>()
        });
        let largest = orgs[0].clone();
        let medium = orgs
            .iter()
            .find(|o| (4..=12).contains(&o.properties.len()))
            .expect("an organization with 4..=12 properties")
            .clone();
        let small = orgs
            .iter()
            .find(|o| o.properties.len() == 1)
            .expect("a one-property organization")
            .clone();
        let taken = [largest.id, medium.id, small.id];
        let spare = orgs
            .into_iter()
            .skip(1)
            .filter(|o| !taken.contains(&o.id))
            .take(40)
            .collect();
        Fixture {
            estate,
            small,
            medium,
            largest,
            spare,
        }
    })
}

fn config(pooling: Pooling, mode: Option<Mode>) -> RepoConfig {
    let mut cfg = RepoConfig::from_estate(&fixture().estate, pooling).unwrap();
    cfg.mode_override = mode;
    cfg.default_mode = Mode::Legacy;
    cfg.replica.check_interval = Duration::from_millis(200);
    cfg
}

async fn repo(pooling: Pooling, mode: Mode) -> Repo {
    Repo::connect(config(pooling, Some(mode))).await.unwrap()
}

async fn primary() -> tokio_postgres::Client {
    rehearse::db::connect(&fixture().estate.primary.url)
        .await
        .unwrap()
}

fn lab_ctx() -> LabCtx {
    let mut ctx = LabCtx::open(&common::lab().state.dir).unwrap();
    ctx.set_verbose(false);
    ctx
}

const NO_CACHE: ReadOptions = ReadOptions {
    via: Via::Auto,
    cache: false,
    min_lsn: None,
};

/// Every entry of an organization in legacy tables, listed row by row in
/// ledger order: the truth the reports are checked against.
async fn entries_of(c: &tokio_postgres::Client, org: i64) -> Vec<LedgerEntry> {
    c.query(
        "SELECT business_date, 'expense'::text, id, property_id, category::text, amount_cents, vendor, description \
         FROM expense_entries WHERE organization_id = $1 \
         UNION ALL \
         SELECT business_date, 'revenue', id, property_id, category::text, amount_cents, NULL, description \
         FROM revenue_entries WHERE organization_id = $1 \
         ORDER BY 1, 2, 3",
        &[&org],
    )
    .await
    .unwrap()
    .iter()
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
    .collect()
}

fn in_range(e: &LedgerEntry, from: Day, to: Day) -> bool {
    e.business_date >= from && e.business_date <= to
}

fn expected_dashboard(org: i64, entries: &[LedgerEntry], end: Day, days: u32) -> Dashboard {
    let start = end.plus(1 - days as i32);
    let days = (0..days as i32)
        .map(|i| {
            let date = start.plus(i);
            let sum = |kind: &str| -> i64 {
                entries
                    .iter()
                    .filter(|e| e.business_date == date && e.kind == kind)
                    .map(|e| e.amount_cents)
                    .sum()
            };
            let (r, x) = (sum("revenue"), sum("expense"));
            DashboardDay {
                date,
                revenue_cents: r,
                expense_cents: x,
                net_cents: r - x,
            }
        })
        .collect();
    Dashboard {
        organization_id: org,
        days,
    }
}

fn expected_pnl(org: i64, entries: &[LedgerEntry], first: Day, next: Day) -> Pnl {
    let mut lines: BTreeMap<(std::cmp::Reverse<String>, String), (i64, i64)> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.business_date >= first && e.business_date < next)
    {
        let l = lines
            .entry((std::cmp::Reverse(e.kind.clone()), e.category.clone()))
            .or_default();
        l.0 += e.amount_cents;
        l.1 += 1;
    }
    let lines: Vec<PnlLine> = lines
        .into_iter()
        .map(|((kind, category), (amount_cents, entries))| PnlLine {
            kind: kind.0,
            category,
            amount_cents,
            entries,
        })
        .collect();
    let total = |k: &str| -> i64 {
        lines
            .iter()
            .filter(|l| l.kind == k)
            .map(|l| l.amount_cents)
            .sum()
    };
    let (r, x) = (total("revenue"), total("expense"));
    Pnl {
        organization_id: org,
        month_start: first,
        lines,
        revenue_cents: r,
        expense_cents: x,
        net_cents: r - x,
    }
}

async fn expected_properties(
    c: &tokio_postgres::Client,
    entries: &[LedgerEntry],
    from: Day,
    to: Day,
) -> Vec<PropertyTotal> {
    let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_range(e, from, to)) {
        let s = sums.entry(e.property_id).or_default();
        if e.kind == "revenue" {
            s.0 += e.amount_cents;
        } else {
            s.1 += e.amount_cents;
        }
    }
    let mut out = Vec::new();
    for (id, (r, x)) in sums {
        let row = c
            .query_one(
                "SELECT name, kind::text FROM properties WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        out.push(PropertyTotal {
            property_id: id,
            name: row.get(0),
            kind: row.get(1),
            revenue_cents: r,
            expense_cents: x,
            net_cents: r - x,
        });
    }
    out
}

/// The top organizations by revenue over a range, summed from the entries
/// (not the summaries the repository reads).
async fn expected_portfolio(
    c: &tokio_postgres::Client,
    from: Day,
    to: Day,
    top: usize,
) -> Vec<PortfolioRow> {
    let sums = |table: &'static str| async move {
        c.query(
            &format!(
                "SELECT organization_id, sum(amount_cents)::int8 FROM {table} \
                 WHERE business_date BETWEEN $1 AND $2 GROUP BY 1"
            ),
            &[&from, &to],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
        .collect::<BTreeMap<i64, i64>>()
    };
    let (revenue, expense) = (sums("revenue_entries").await, sums("expense_entries").await);
    let mut ranked: Vec<(i64, i64)> = revenue.into_iter().collect();
    ranked.sort_by_key(|&(org, r)| (std::cmp::Reverse(r), org));
    let mut out = Vec::new();
    for (org, r) in ranked.into_iter().take(top) {
        let name: String = c
            .query_one("SELECT name FROM organizations WHERE id = $1", &[&org])
            .await
            .unwrap()
            .get(0);
        out.push(PortfolioRow {
            organization_id: org,
            name,
            revenue_cents: r,
            expense_cents: expense.get(&org).copied().unwrap_or(0),
        });
    }
    out
}

#[tokio::test]
async fn every_report_is_identical_in_both_modes_and_equal_to_an_aggregate_of_the_entries() {
    let f = fixture();
    let _shared = COMPONENTS.read().await;
    let c = primary().await;
    let legacy = repo(Pooling::Direct, Mode::Legacy).await;
    let partitioned = repo(Pooling::Direct, Mode::Partitioned).await;
    // The largest chain must be a chain, or the test proves less than it says.
    assert!(f.largest.properties.len() >= 20, "{:?}", f.largest.id);

    for org in [&f.small, &f.medium, &f.largest] {
        let entries = entries_of(&c, org.id).await;
        assert!(!entries.is_empty(), "organization {} has entries", org.id);
        let (from, to) = (oct(20), oct(29));
        let want_dash = expected_dashboard(org.id, &entries, oct(31), 20);
        let want_pnl = expected_pnl(org.id, &entries, oct(1), nov(1));
        let want_props = expected_properties(&c, &entries, from, to).await;
        let want_ledger: Vec<LedgerEntry> = entries
            .iter()
            .filter(|e| in_range(e, from, to))
            .cloned()
            .collect();
        for r in [&legacy, &partitioned] {
            let rep = r.reporting();
            let mode = r.mode().await;
            let dash = rep.dashboard(org.id, oct(31), 20, &NO_CACHE).await.unwrap();
            assert_eq!(dash.mode, mode);
            assert_eq!(dash.data, want_dash, "dashboard of {} in {mode}", org.id);
            let pnl = rep.pnl(org.id, oct(15), &NO_CACHE).await.unwrap();
            assert_eq!(pnl.data, want_pnl, "P&L of {} in {mode}", org.id);
            let props = rep
                .property_breakdown(org.id, from, to, &NO_CACHE)
                .await
                .unwrap();
            assert_eq!(
                props.data.properties, want_props,
                "properties of {} in {mode}",
                org.id
            );

            // The ledger walked page by page is the listing, with no entry twice or missed.
            let mut pages = Vec::new();
            let mut after = None;
            loop {
                let page = rep
                    .ledger(org.id, from, to, after, 37, &NO_CACHE)
                    .await
                    .unwrap()
                    .data;
                assert!(page.entries.len() <= 37);
                pages.extend(page.entries);
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            assert_eq!(pages, want_ledger, "ledger of {} in {mode}", org.id);
        }
    }

    let want = expected_portfolio(&c, oct(18), oct(31), 10).await;
    assert_eq!(want.len(), 10);
    for r in [&legacy, &partitioned] {
        let got = r
            .reporting()
            .portfolio(oct(18), oct(31), 10, &NO_CACHE)
            .await
            .unwrap();
        assert_eq!(got.data, want, "portfolio in {}", got.mode);
    }
}

#[tokio::test]
async fn a_single_tenant_query_touches_one_partition_and_the_portfolio_none() {
    use rehearse::repo::reporting::Query;
    let f = fixture();
    let _shared = COMPONENTS.read().await;
    let org = f.largest.id;
    let tenant_queries = [
        Query::Dashboard {
            org,
            end: oct(31),
            days: 14,
        },
        Query::Pnl { org, month: oct(1) },
        Query::Properties {
            org,
            from: oct(18),
            to: oct(31),
        },
        Query::Ledger {
            org,
            from: oct(18),
            to: oct(31),
            after: None,
            limit: 50,
        },
    ];
    // The organization's partition of each table, as the server placed its rows.
    let c = primary().await;
    let mut leaf_of = BTreeMap::new();
    for parent in Mode::Partitioned.tables().all() {
        let row = c
            .query_one(
                &format!("SELECT tableoid::regclass::text FROM {parent} WHERE organization_id = $1 LIMIT 1"),
                &[&org],
            )
            .await
            .unwrap();
        leaf_of.insert(parent.to_string(), row.get::<_, String>(0));
    }
    let partitioned = repo(Pooling::Direct, Mode::Partitioned).await;
    let mut cfg = config(Pooling::Direct, Some(Mode::Partitioned));
    cfg.partition_routing = rehearse::schema::PartitionRouting::Parent;
    let on_parent = Repo::connect(cfg).await.unwrap();
    for q in &tenant_queries {
        let e = partitioned
            .reporting()
            .explain(q, Via::Primary)
            .await
            .unwrap();
        assert!(!e.tables.is_empty(), "{}: {}", q.name(), e.plan);
        for t in &e.tables {
            assert_eq!(t.partitions, PARTITIONS as usize, "{}", t.table);
            assert_eq!(
                t.partitions_touched,
                1,
                "{} of {}:\n{}",
                t.table,
                q.name(),
                e.plan
            );
            // Leaf routing: the statement names the partition the server
            // put the organization's rows in, and nothing else is planned.
            assert_eq!(
                t.leaf.as_ref(),
                leaf_of.get(&t.table),
                "{}:\n{}",
                q.name(),
                e.plan
            );
            assert_eq!(
                (t.partitions_planned, t.subplans_removed),
                (1, 0),
                "{}",
                e.plan
            );
        }
        // The parent, pruned by the server: the same partition, found by it.
        let e = on_parent
            .reporting()
            .explain(q, Via::Primary)
            .await
            .unwrap();
        for t in &e.tables {
            assert_eq!(t.leaf, None, "{}", e.plan);
            assert_eq!(t.partitions_touched, 1, "{}", e.plan);
            assert!(e.plan.contains(leaf_of[&t.table].as_str()), "{}", e.plan);
        }
        // And the same answer either way.
        let opts = ReadOptions {
            via: Via::Primary,
            cache: false,
            min_lsn: None,
        };
        assert_eq!(
            partitioned.reporting().run(q, &opts).await.unwrap().data,
            on_parent.reporting().run(q, &opts).await.unwrap().data,
            "{}",
            q.name()
        );
    }
    assert_eq!(partitioned.stats().leaves.modulus, Some(PARTITIONS));
    assert_eq!(partitioned.stats().leaves.fallback, None);
    assert_eq!(on_parent.stats().leaves.modulus, None);
    let portfolio = Query::Portfolio {
        from: oct(18),
        to: oct(31),
        top: 10,
    };
    let e = partitioned
        .reporting()
        .explain(&portfolio, Via::Primary)
        .await
        .unwrap();
    // It reads the ranking the portfolio-refresh job keeps, not the
    // summaries: at 1M organizations, aggregating them per request does not serve.
    assert!(e.tables.is_empty(), "{:?}\n{}", e.tables, e.plan);
    assert!(e.plan.contains("portfolio_rankings"), "{}", e.plan);

    // Legacy tables are plain: nothing to prune.
    let legacy = repo(Pooling::Direct, Mode::Legacy).await;
    let e = legacy
        .reporting()
        .explain(&tenant_queries[0], Via::Primary)
        .await
        .unwrap();
    assert_eq!(e.tables[0].table, "daily_financial_summaries");
    assert_eq!(e.tables[0].partitions, 0);
}

/// The November revenue of an organization's dashboard, straight from the entries.
async fn november_revenue(c: &tokio_postgres::Client, org: i64) -> i64 {
    c.query_one(
        "SELECT coalesce(sum(amount_cents), 0)::int8 FROM revenue_entries_partitioned \
         WHERE organization_id = $1 AND business_date >= '2026-11-01'",
        &[&org],
    )
    .await
    .unwrap()
    .get(0)
}

fn revenue_of(d: &Dashboard) -> i64 {
    d.days.iter().map(|x| x.revenue_cents).sum()
}

#[tokio::test]
async fn the_cache_hits_shows_writes_at_once_and_survives_redis_going_away() {
    let f = fixture();
    let _exclusive = COMPONENTS.write().await;
    let org = &f.spare[0];
    let prop = org.properties[0];
    let c = primary().await;
    let r = repo(Pooling::Direct, Mode::Partitioned).await;
    let (rep, fin) = (r.reporting(), r.finance());
    let opts = ReadOptions::default();
    let read = || async { rep.dashboard(org.id, nov(30), 30, &opts).await.unwrap() };

    let first = read().await;
    assert_ne!(first.source, Source::Cache);
    let second = read().await;
    assert_eq!(second.source, Source::Cache);
    assert_eq!(second.data, first.data);
    let s = r.stats().cache.unwrap();
    assert_eq!((s.hits, s.misses), (1, 1));

    // Every kind of write is visible to the very next read, with no LSN passed.
    let mut want = november_revenue(&c, org.id).await;
    assert_eq!(revenue_of(&second.data), want);
    let w = fin
        .record(org.id, &NewEntry::revenue(prop, nov(10), "rooms", 12_345))
        .await
        .unwrap();
    want += 12_345;
    assert_eq!(revenue_of(&read().await.data), want);
    assert_eq!(read().await.source, Source::Cache);
    fin.adjust(
        org.id,
        EntryKind::Revenue,
        w.id,
        &Adjustment {
            amount_cents: Some(20_000),
            business_date: Some(nov(11)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    want += 20_000 - 12_345;
    let after_adjust = read().await.data;
    assert_eq!(revenue_of(&after_adjust), want);
    assert_eq!(
        after_adjust.days[10].revenue_cents, 20_000,
        "moved to 11 Nov"
    );
    let batch: Vec<NewEntry> = (1..=5)
        .map(|d| NewEntry::revenue(prop, nov(d), "spa", 1_000 * d as i64))
        .collect();
    fin.post_batch(org.id, &batch).await.unwrap();
    want += 15_000;
    assert_eq!(revenue_of(&read().await.data), want);
    fin.void(org.id, EntryKind::Revenue, w.id).await.unwrap();
    want -= 20_000;
    assert_eq!(revenue_of(&read().await.data), want);
    assert_eq!(want, november_revenue(&c, org.id).await);
    let s = r.stats().cache.unwrap();
    assert_eq!(s.invalidations, 4);
    assert_eq!(s.errors, 0);

    // Redis stopped: every operation still succeeds, from the database, counted.
    let ctx = lab_ctx();
    ctx.stop(Component::Redis).unwrap();
    let outcome = async {
        let pnl = rep.pnl(org.id, nov(1), &opts).await.unwrap();
        assert_ne!(pnl.source, Source::Cache);
        rep.property_breakdown(org.id, nov(1), nov(30), &opts)
            .await
            .unwrap();
        rep.ledger(org.id, nov(1), nov(30), None, 10, &opts)
            .await
            .unwrap();
        rep.portfolio(oct(18), oct(31), 5, &opts).await.unwrap();
        let w = fin
            .record(org.id, &NewEntry::revenue(prop, nov(20), "other", 777))
            .await
            .unwrap();
        // The write could not bump the generation: the organization's
        // cached reports are bypassed, never served stale.
        let d = read().await;
        assert_ne!(d.source, Source::Cache);
        assert_eq!(revenue_of(&d.data), want + 777);
        fin.void(org.id, EntryKind::Revenue, w.id).await.unwrap();
        assert_eq!(revenue_of(&read().await.data), want);
        r.stats().cache.unwrap().errors
    }
    .await;
    ctx.start(Component::Redis).await.unwrap();
    assert!(outcome >= 3, "errors counted with Redis down: {outcome}");

    // Back: reads are right, and cached again.
    let mut back = read().await;
    for _ in 0..20 {
        if back.source == Source::Cache {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        back = read().await;
    }
    assert_eq!(revenue_of(&back.data), want);
    assert_eq!(
        back.source,
        Source::Cache,
        "the cache is used again once Redis is back"
    );
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_while_the_replica_is_down_and_return_after() {
    let f = fixture();
    let _exclusive = COMPONENTS.write().await;
    let r = repo(Pooling::Direct, Mode::Legacy).await;
    let rep = r.reporting();
    let org = f.medium.id;
    let want = rep
        .dashboard(
            org,
            oct(31),
            14,
            &ReadOptions {
                via: Via::Primary,
                ..NO_CACHE
            },
        )
        .await
        .unwrap()
        .data;
    let d = rep.dashboard(org, oct(31), 14, &NO_CACHE).await.unwrap();
    assert_eq!(d.source, Source::Replica);
    assert_eq!(d.data, want);

    let ctx = lab_ctx();
    ctx.stop(Component::Replica).unwrap();
    let during = async {
        for _ in 0..50 {
            let d = rep.dashboard(org, oct(31), 14, &NO_CACHE).await.unwrap();
            assert_eq!(d.source, Source::Primary);
            assert_eq!(d.data, want);
        }
        // Asked for the replica strictly, a read fails rather than lie about where it ran.
        let strict = rep
            .dashboard(
                org,
                oct(31),
                14,
                &ReadOptions {
                    via: Via::Replica,
                    ..NO_CACHE
                },
            )
            .await;
        (strict.is_err(), r.stats().routing)
    }
    .await;
    ctx.start(Component::Replica).await.unwrap();
    let (strict_failed, stats) = during;
    assert!(strict_failed);
    assert!(stats.fallbacks_total() >= 50, "{stats:?}");
    assert!(stats.replica_removed >= 1, "{stats:?}");
    assert_eq!(stats.healthy_replicas, 0);

    // The background check puts it back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = rep.dashboard(org, oct(31), 14, &NO_CACHE).await.unwrap();
        assert_eq!(d.data, want);
        if d.source == Source::Replica {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reads never returned to the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = r.stats().routing;
    assert!(stats.replica_restored >= 1, "{stats:?}");
    assert_eq!(stats.healthy_replicas, 1);
}

#[tokio::test]
async fn read_your_writes_never_returns_a_stale_figure() {
    let f = fixture();
    let _shared = COMPONENTS.read().await;
    let r = repo(Pooling::Direct, Mode::Partitioned).await;
    let rounds_per_org = 500;
    let mut tasks = Vec::new();
    for (t, org) in f.spare[1..5].iter().cloned().enumerate() {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let (fin, rep) = (r.finance(), r.reporting());
            let mut want = rep
                .dashboard(
                    org.id,
                    nov(28),
                    28,
                    &ReadOptions {
                        via: Via::Primary,
                        ..NO_CACHE
                    },
                )
                .await
                .unwrap()
                .data;
            for i in 0..rounds_per_org {
                let day = (i % 28) as u32 + 1;
                let prop = org.properties[i % org.properties.len()];
                let cents = 100 + (i * 7 + t) as i64;
                let w = fin
                    .record(
                        org.id,
                        &NewEntry::revenue(prop, nov(day), "food_beverage", cents),
                    )
                    .await
                    .unwrap();
                let d = &mut want.days[day as usize - 1];
                d.revenue_cents += cents;
                d.net_cents += cents;
                // Half the rounds through the cache, half straight to the database.
                let opts = ReadOptions {
                    via: Via::Auto,
                    cache: i % 2 == 0,
                    min_lsn: Some(w.lsn),
                };
                let got = rep.dashboard(org.id, nov(28), 28, &opts).await.unwrap();
                assert_eq!(got.data, want, "round {i} of organization {}", org.id);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = r.stats();
    assert_eq!(s.finance.writes, 4 * rounds_per_org as u64);
    // The replica served some of them: this tested read-your-writes, not the primary.
    assert!(s.routing.reads_replica > 0, "{:?}", s.routing);
}

/// A small deterministic generator, so a failing mix can be replayed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One call of the operation mix; returns the id of a recorded entry to adjust or void later.
async fn one_call(
    r: &Repo,
    org: &Org,
    rng: &mut SplitMix,
    written: &mut Vec<(EntryKind, i64)>,
) -> rehearse::Result<()> {
    let (fin, rep) = (r.finance(), r.reporting());
    let prop = org.properties[rng.below(org.properties.len())];
    let day = nov(rng.below(28) as u32 + 1);
    let cents = 100 + rng.below(100_000) as i64;
    let opts = ReadOptions {
        cache: rng.below(2) == 0,
        ..ReadOptions::default()
    };
    match rng.below(10) {
        0 => {
            let w = fin
                .record(org.id, &NewEntry::revenue(prop, day, "rooms", cents))
                .await?;
            written.push((w.kind, w.id));
        }
        1 => {
            let w = fin
                .record(
                    org.id,
                    &NewEntry::expense(prop, day, "supplies", cents, "Acme"),
                )
                .await?;
            written.push((w.kind, w.id));
        }
        2 => {
            let batch: Vec<NewEntry> = (0..20)
                .map(|_| {
                    let p = org.properties[rng.below(org.properties.len())];
                    NewEntry::revenue(p, nov(rng.below(28) as u32 + 1), "other", cents)
                })
                .collect();
            fin.post_batch(org.id, &batch).await?;
        }
        3 if !written.is_empty() => {
            let (kind, id) = written[rng.below(written.len())];
            let a = Adjustment {
                amount_cents: Some(cents),
                business_date: Some(day),
                ..Default::default()
            };
            fin.adjust(org.id, kind, id, &a).await?;
        }
        4 if !written.is_empty() => {
            let (kind, id) = written.swap_remove(rng.below(written.len()));
            fin.void(org.id, kind, id).await?;
        }
        5 => {
            rep.pnl(org.id, day, &opts).await?;
        }
        6 => {
            rep.property_breakdown(org.id, nov(1), nov(28), &opts)
                .await?;
        }
        7 => {
            rep.ledger(org.id, nov(1), nov(28), None, 25, &opts).await?;
        }
        8 if rng.below(10) == 0 => {
            rep.portfolio(oct(18), oct(31), 10, &opts).await?;
        }
        _ => {
            rep.dashboard(org.id, nov(28), 28, &opts).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn thirty_two_tasks_run_the_whole_mix_through_pgbouncer_without_an_error() {
    let f = fixture();
    let _shared = COMPONENTS.read().await;
    let repos = [
        repo(Pooling::PgBouncer, Mode::Legacy).await,
        repo(Pooling::PgBouncer, Mode::Partitioned).await,
    ];
    let calls_per_task = 100;
    let mut tasks = Vec::new();
    for t in 0..32usize {
        let r = repos[t % 2].clone();
        // Two tasks per organization and mode: concurrent batches on the same rows.
        let org = f.spare[5 + t / 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = SplitMix(t as u64);
            let mut written = Vec::new();
            let mut errors = Vec::new();
            for _ in 0..calls_per_task {
                if let Err(e) = one_call(&r, &org, &mut rng, &mut written).await {
                    errors.push(e.to_string());
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    for r in &repos {
        let s = r.stats();
        assert_eq!(s.finance.gave_up, 0);
        assert!(s.finance.writes > 200, "{:?}", s.finance);
        assert!(s.routing.reads_replica + s.routing.reads_primary > 500);
    }
}

#[tokio::test]
async fn flipping_the_flag_moves_the_next_calls_and_no_call_fails_or_mixes_modes() {
    let f = fixture();
    let _shared = COMPONENTS.read().await;
    let c = primary().await;
    routing::set_flag(&c, Mode::Legacy).await.unwrap();
    let mut cfg = config(Pooling::Direct, None);
    let ttl = Duration::from_millis(100);
    cfg.flag_ttl = ttl;
    let r = Repo::connect(cfg).await.unwrap();
    assert_eq!(r.mode().await, Mode::Legacy);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (t, org) in f.spare[21..29].iter().cloned().enumerate() {
        let (r, stop) = (r.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // (started, finished, mode, descriptions written)
            let mut calls: Vec<(Instant, Instant, Mode, Vec<String>)> = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let prop = org.properties[n % org.properties.len()];
                let desc = |k: usize| format!("flag-{t}-{n}-{k}");
                let entry = |k: usize| NewEntry {
                    description: Some(desc(k)),
                    ..NewEntry::revenue(prop, nov((n % 28) as u32 + 1), "rooms", 500)
                };
                let (mode, descs) = match n % 3 {
                    0 => {
                        let batch: Vec<NewEntry> = (0..10).map(entry).collect();
                        let b = r.finance().post_batch(org.id, &batch).await.unwrap();
                        (b.mode, (0..10).map(desc).collect())
                    }
                    1 => {
                        let w = r.finance().record(org.id, &entry(0)).await.unwrap();
                        (w.mode, vec![desc(0)])
                    }
                    _ => {
                        let d = r
                            .reporting()
                            .dashboard(org.id, nov(28), 28, &ReadOptions::default())
                            .await
                            .unwrap();
                        (d.mode, vec![])
                    }
                };
                calls.push((started, Instant::now(), mode, descs));
                n += 1;
            }
            calls
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_flip = Instant::now();
    routing::set_flag(&c, Mode::Partitioned).await.unwrap();
    let flipped = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut calls = Vec::new();
    for t in tasks {
        calls.extend(t.await.unwrap());
    }
    routing::set_flag(&c, Mode::Legacy).await.unwrap();

    // Where the next calls go: everything finished before the flip was
    // legacy, everything started a TTL (and a flag read) after it partitioned.
    let settle = flipped + ttl + Duration::from_millis(500);
    for (started, finished, mode, _) in &calls {
        if *finished < before_flip {
            assert_eq!(*mode, Mode::Legacy);
        }
        if *started > settle {
            assert_eq!(*mode, Mode::Partitioned);
        }
    }
    let legacy_calls = calls.iter().filter(|c| c.2 == Mode::Legacy).count();
    let partitioned_calls = calls.len() - legacy_calls;
    assert!(
        legacy_calls > 20 && partitioned_calls > 20,
        "{legacy_calls} legacy and {partitioned_calls} partitioned calls"
    );

    // No call mixed modes: every row of every write is in its mode's table
    // only, batches included.
    let in_table = |table: &'static str| {
        let c = &c;
        async move {
            c.query(
                &format!("SELECT description FROM {table} WHERE description LIKE 'flag-%'"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<std::collections::HashSet<String>>()
        }
    };
    let legacy_rows = in_table("revenue_entries").await;
    let partitioned_rows = in_table("revenue_entries_partitioned").await;
    let mut written = 0;
    for (_, _, mode, descs) in &calls {
        for d in descs {
            let (home, other) = match mode {
                Mode::Legacy => (&legacy_rows, &partitioned_rows),
                Mode::Partitioned => (&partitioned_rows, &legacy_rows),
            };
            assert!(home.contains(d) && !other.contains(d), "{d} in {mode} mode");
            written += 1;
        }
    }
    assert_eq!(written, legacy_rows.len() + partitioned_rows.len());
}

#[tokio::test]
async fn rehearse_query_prints_what_the_library_returns_and_refuses_bad_input() {
    let f = fixture();
    let _shared = COMPONENTS.read().await;
    let dir = common::lab().state.dir.clone();
    let run = |args: &[&str]| {
        common::rehearse_cmd()
            .arg("--lab-dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let org = f.medium.id.to_string();
    let out = run(&[
        "query",
        "dashboard",
        "--org",
        &org,
        "--days",
        "14",
        "--mode",
        "partitioned",
        "--cache",
        "off",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["mode"], "partitioned");
    let r = repo(Pooling::Direct, Mode::Partitioned).await;
    let lib = r
        .reporting()
        .dashboard(f.medium.id, oct(31), 14, &NO_CACHE)
        .await
        .unwrap();
    assert_eq!(printed["data"], serde_json::to_value(&lib.data).unwrap());

    let out = run(&["query", "dashboard", "--mode", "legacy"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--org"), "{err}");

    let out = run(&["query", "pnl", "--org", "987654321", "--mode", "legacy"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("organization 987654321 does not exist"),
        "{err}"
    );

    let out = run(&["query", "ledger", "--org", &org, "--after", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cursor"));
}

/// The write ledger's final check, proven by breaking what it checks behind
/// its back: a deleted row is missing (and named), a changed amount is
/// differing, a voided row put back is resurrected, and a change answered
/// "not found" is a lost write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_check_fails_on_a_deleted_changed_or_resurrected_row() {
    use rehearse::driver::ledger::{Check, Ledger, PendingWrite};
    let _shared = COMPONENTS.read().await;
    let f = fixture();
    let org = &f.spare[35];
    let prop = org.properties[0];
    let r = repo(Pooling::Direct, Mode::Legacy).await;
    let fin = r.finance();
    let ledger = Ledger::default();
    let mut ids = Vec::new();
    for amount in [1_001, 1_002, 1_003, 1_004] {
        let e = NewEntry::revenue(prop, nov(20), "rooms", amount);
        let w = fin.record(org.id, &e).await.unwrap();
        ledger.recorded(w.id, org.id, &e);
        ids.push(w.id);
    }
    let c = primary().await;
    let check = || async { ledger.check(&c, Mode::Legacy, Check::Final).await.unwrap() };
    let clean = check().await;
    assert!(clean.ok() && clean.entries_checked == 4, "{clean}");

    // One statement on one of the organization's revenue rows, behind the ledger's back.
    let t = Mode::Legacy.tables();
    let on_row = |sql: &str, id: i64| {
        let (c, sql) = (&c, sql.replace("{t}", t.revenue));
        async move {
            c.execute(&sql, &[&org.id, &id]).await.unwrap();
        }
    };
    const WHERE: &str = "WHERE organization_id = $1 AND id = $2";
    let keep = |table: &str, id: i64| {
        format!("CREATE TEMP TABLE {table} AS SELECT * FROM {} WHERE organization_id = {} AND id = {id}", t.revenue, org.id)
    };
    c.batch_execute(&(keep("kept0", ids[0]) + ";" + &keep("kept2", ids[2])))
        .await
        .unwrap();
    // 1. Deleted.
    on_row(&format!("DELETE FROM {{t}} {WHERE}"), ids[0]).await;
    let deleted = check().await;
    assert_eq!((deleted.missing, deleted.ok()), (1, false), "{deleted}");
    let named = format!("revenue {} of organization {}", ids[0], org.id);
    assert!(
        deleted.examples.iter().any(|e| e.contains(&named)),
        "{:?}",
        deleted.examples
    );
    // 2. An amount changed.
    on_row(
        &format!("UPDATE {{t}} SET amount_cents = amount_cents + 1 {WHERE}"),
        ids[1],
    )
    .await;
    let changed = check().await;
    assert_eq!((changed.missing, changed.differing), (1, 1), "{changed}");
    // 3. Voided, acknowledged, then put back.
    ledger.pending(EntryKind::Revenue, ids[2], org.id, PendingWrite::Void);
    fin.void(org.id, EntryKind::Revenue, ids[2]).await.unwrap();
    ledger.voided(EntryKind::Revenue, ids[2], org.id);
    assert_eq!(check().await.resurrected, 0);
    c.batch_execute(&format!("INSERT INTO {} SELECT * FROM kept2", t.revenue))
        .await
        .unwrap();
    let back = check().await;
    assert_eq!(
        (back.missing, back.differing, back.resurrected),
        (1, 1, 1),
        "{back}"
    );
    // 4. An adjust of the deleted entry is answered "not found": that write
    //    is lost, and stays missing even when the row is put back as it was.
    ledger.pending(EntryKind::Revenue, ids[0], org.id, PendingWrite::Amount(5));
    let a = Adjustment {
        amount_cents: Some(5),
        ..Default::default()
    };
    let err = fin
        .adjust(org.id, EntryKind::Revenue, ids[0], &a)
        .await
        .unwrap_err();
    assert!(matches!(err, rehearse::Error::NotFound(_)), "{err}");
    ledger.not_found(EntryKind::Revenue, ids[0], org.id);
    c.batch_execute(&format!("INSERT INTO {} SELECT * FROM kept0", t.revenue))
        .await
        .unwrap();
    let lost = check().await;
    assert_eq!(
        (lost.missing, lost.differing, lost.resurrected),
        (1, 1, 1),
        "{lost}"
    );
    // 5. An adjust of unknown outcome: fine while the row holds the old or
    //    the new amount, differing once it holds a third.
    ledger.pending(EntryKind::Revenue, ids[3], org.id, PendingWrite::Amount(77));
    let unknown = check().await;
    assert_eq!(
        (
            unknown.missing,
            unknown.differing,
            unknown.unknown_outcome,
            unknown.unknown_resolved
        ),
        (1, 1, 1, true),
        "{unknown}"
    );
    on_row(
        &format!("UPDATE {{t}} SET amount_cents = 77 {WHERE}"),
        ids[3],
    )
    .await;
    assert_eq!(check().await.differing, 1, "the change committed: fine");
    on_row(
        &format!("UPDATE {{t}} SET amount_cents = 78 {WHERE}"),
        ids[3],
    )
    .await;
    assert_eq!(check().await.differing, 2, "neither old nor new: differing");
}
