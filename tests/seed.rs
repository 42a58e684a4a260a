//! Seeding the lab: determinism across --jobs, integrity in both modes,
//! refusal of foreign databases, and recovery from an interrupted seed.

mod common;

use rehearse::db;
use rehearse::estate::{Estate, Source};
use rehearse::exit;
use rehearse::schema::{self, Mode, Modes};
use rehearse::seed::{self, Profile, SeedOptions};

fn options(orgs: u64, seed: u64, jobs: usize) -> SeedOptions {
    let mut o = SeedOptions::from_profile(Profile::Ci);
    o.params.orgs = orgs;
    o.params.days = 7;
    o.params.seed = seed;
    o.jobs = jobs;
    o.partitions = Some(8);
    o.verbose = false;
    o
}

/// A digest of every row of a table, ordered by its key: equal digests mean
/// byte-identical contents.
async fn table_digest(client: &tokio_postgres::Client, table: &str, key: &str) -> String {
    client
        .query_one(
            &format!("SELECT md5(string_agg(t::text, '|' ORDER BY {key})) FROM {table} t"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn same_seed_gives_identical_data_whatever_the_jobs_and_another_seed_differs() {
    let lab = common::lab();
    let a = lab.fresh_database("seed_jobs1").await;
    let b = lab.fresh_database("seed_jobs3").await;
    let c = lab.fresh_database("seed_other").await;
    let ra = seed::seed(&lab.estate(&a), &options(400, 42, 1))
        .await
        .unwrap();
    let rb = seed::seed(&lab.estate(&b), &options(400, 42, 3))
        .await
        .unwrap();
    let rc = seed::seed(&lab.estate(&c), &options(400, 43, 2))
        .await
        .unwrap();
    assert_eq!(ra.checksum, rb.checksum);
    assert_eq!(ra.counts, rb.counts);
    assert_ne!(ra.checksum, rc.checksum);

    let (ca, cb, cc) = (
        db::connect(&a).await.unwrap(),
        db::connect(&b).await.unwrap(),
        db::connect(&c).await.unwrap(),
    );
    for (table, key) in [
        ("organizations", "id"),
        ("properties", "id"),
        ("revenue_entries", "id"),
        ("expense_entries", "id"),
        (
            "daily_financial_summaries",
            "organization_id, property_id, business_date",
        ),
        ("revenue_entries_partitioned", "id"),
    ] {
        // updated_at of summaries is the build time, not data.
        let key_table = if table.starts_with("daily") {
            format!("(SELECT organization_id, property_id, business_date, revenue_cents, expense_cents, revenue_count, expense_count FROM {table})")
        } else {
            table.to_string()
        };
        let (da, db_, dc) = (
            table_digest(&ca, &key_table, key).await,
            table_digest(&cb, &key_table, key).await,
            table_digest(&cc, &key_table, key).await,
        );
        assert_eq!(da, db_, "{table} differs between --jobs 1 and --jobs 3");
        assert_ne!(da, dc, "{table} is the same for seeds 42 and 43");
    }
}

#[tokio::test]
async fn seeded_data_is_consistent_in_both_modes() {
    let lab = common::lab();
    let url = lab.fresh_database("seed_integrity").await;
    let record = seed::seed(&lab.estate(&url), &options(500, 7, 2))
        .await
        .unwrap();
    let client = db::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    // Every property belongs to an organization, every entry to a property of its organization.
    assert_eq!(count("SELECT count(*) FROM properties p LEFT JOIN organizations o ON o.id = p.organization_id WHERE o.id IS NULL").await, 0);
    for t in [
        "revenue_entries",
        "expense_entries",
        "revenue_entries_partitioned",
        "expense_entries_partitioned",
    ] {
        let orphans: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {t} e LEFT JOIN properties p ON p.id = e.property_id AND p.organization_id = e.organization_id WHERE p.id IS NULL"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(orphans, 0, "{t}");
        let non_positive: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {t} WHERE amount_cents <= 0"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(non_positive, 0, "{t}");
    }
    // Counts match what the generator reported.
    assert_eq!(
        count("SELECT count(*) FROM revenue_entries").await as u64,
        record.counts.revenue_entries
    );
    assert_eq!(
        count("SELECT count(*) FROM expense_entries_partitioned").await as u64,
        record.counts.expense_entries
    );
    // Summaries equal the aggregates, in both modes.
    for mode in [Mode::Legacy, Mode::Partitioned] {
        assert_eq!(
            schema::summary_mismatches(&client, mode).await.unwrap(),
            0,
            "{mode}"
        );
    }
    assert!(count("SELECT count(*) FROM daily_financial_summaries").await > 0);
    // Legacy and partitioned hold the same rows.
    for (a, b) in [
        ("revenue_entries", "revenue_entries_partitioned"),
        ("expense_entries", "expense_entries_partitioned"),
    ] {
        let diff: i64 = client
            .query_one(&format!("SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) UNION ALL (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a})) d"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(diff, 0, "{a} vs {b}");
    }
    // The triggers are back on after the load: a new entry reaches its summary.
    client
        .execute(
            "INSERT INTO revenue_entries (organization_id, property_id, business_date, category, amount_cents) \
             SELECT organization_id, id, '2026-10-31', 'other', 1 FROM properties ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        schema::summary_mismatches(&client, Mode::Legacy)
            .await
            .unwrap(),
        0
    );
    let seeded = seed::require_seeded(&client).await.unwrap();
    assert_eq!(seeded.checksum, record.checksum);
    assert_eq!(seeded.partitions, 8);
    assert_eq!(
        schema::partition_count(&client, "revenue_entries_partitioned")
            .await
            .unwrap(),
        8
    );
}

#[tokio::test]
async fn seeding_a_database_that_is_not_a_rehearsal_target_is_refused() {
    let lab = common::lab();
    let url = lab.fresh_database("seed_foreign").await;
    let foreign = Estate::primary_only(&url, Source::Env("REHEARSE_PRIMARY_URL"));
    let err = seed::seed(&foreign, &options(10, 1, 1)).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED, "{err}");
    let client = db::connect(&url).await.unwrap();
    assert!(!schema::meta::has_meta(&client).await.unwrap());
}

#[tokio::test]
async fn an_interrupted_seed_is_not_taken_for_seeded_and_a_rerun_completes() {
    let lab = common::lab();
    let url = lab.fresh_database("seed_interrupted").await;
    let estate = lab.estate(&url);
    // Interrupt a seed during its load: the future is dropped mid-COPY.
    let mut big = options(3_000, 5, 2);
    big.modes = Modes::Both;
    let watcher = {
        let url = url.clone();
        async move {
            let c = db::connect(&url).await.unwrap();
            loop {
                let loaded: Option<i64> = c
                    .query_one("SELECT CASE WHEN to_regclass('organizations') IS NULL THEN NULL ELSE (SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %') END", &[])
                    .await
                    .unwrap()
                    .get(0);
                if loaded.unwrap_or(0) > 0 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    tokio::select! {
        r = seed::seed(&estate, &big) => panic!("the seed finished before it could be interrupted: {:?}", r.map(|r| r.counts)),
        _ = watcher => {}
    }
    let client = db::connect(&url).await.unwrap();
    let err = seed::require_seeded(&client).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(err.to_string().contains("did not finish"), "{err}");

    let record = seed::seed(&estate, &options(300, 5, 2)).await.unwrap();
    assert!(record.is_complete());
    let seeded = seed::require_seeded(&client).await.unwrap();
    assert_eq!(seeded.counts, record.counts);
    let orgs: i64 = client
        .query_one("SELECT count(*) FROM organizations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orgs, 300, "no rows of the interrupted seed remain");
    for mode in [Mode::Legacy, Mode::Partitioned] {
        assert_eq!(schema::summary_mismatches(&client, mode).await.unwrap(), 0);
    }
}

/// Bytes of a mode's finance tables (with their partitions), or of the
/// shared tables, as `pg_total_relation_size` counts them.
async fn bytes_of(client: &tokio_postgres::Client, tables: &[&str]) -> u64 {
    let row = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class c \
             LEFT JOIN pg_inherits i ON i.inhrelid = c.oid \
             WHERE c.relkind = 'r' AND (c.relname = ANY($1) OR i.inhparent::regclass::text = ANY($1))",
            &[&tables],
        )
        .await
        .unwrap();
    row.get::<_, i64>(0) as u64
}

#[tokio::test]
async fn the_disk_estimate_holds_for_a_real_seed_and_a_seed_that_cannot_fit_is_refused_before_it_writes(
) {
    use rehearse::seed::footprint;
    let lab = common::lab();
    let url = lab.fresh_database("seed_footprint").await;
    // The replica's disk is checked too: it replays the whole seed.
    let mut estate = lab.estate(&url);
    estate.replica = Some(rehearse::estate::Endpoint {
        url: lab.replica_url("seed_footprint"),
        source: Source::Flag,
    });
    let mut o = options(20_000, 42, 2);
    o.params.days = 10;
    o.partitions = Some(64);
    o.modes = Modes::Both;
    let record = seed::seed(&estate, &o).await.unwrap();
    let client = db::connect(&url).await.unwrap();

    // Each mode, and the shared tables, against the estimate: never under
    // it (a disk would fill), and not so far over that it refuses what fits.
    let shared = footprint::estimate(&o.params, &[], 64);
    let mut checked = vec![(
        "shared".to_string(),
        bytes_of(&client, &["organizations", "properties"]).await,
        shared,
    )];
    for mode in [Mode::Legacy, Mode::Partitioned] {
        let t = mode.tables();
        checked.push((
            mode.to_string(),
            bytes_of(&client, &[t.revenue, t.expense, t.summary]).await,
            footprint::estimate(&o.params, &[mode], 64) - shared,
        ));
    }
    for (what, measured, estimated) in &checked {
        let ratio = *estimated as f64 / *measured as f64;
        assert!(
            (1.0..=1.2).contains(&ratio),
            "{what}: measured {measured} bytes, estimated {estimated} (x{ratio:.3}); \
             re-measure the constants in src/seed/footprint.rs: {checked:?}"
        );
    }

    // A seed far beyond the disk is refused with exit 4 before it writes:
    // the estate is still the one just seeded.
    let mut huge = o.clone();
    huge.params.orgs = 100_000_000;
    let err = seed::seed(&estate, &huge).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::ENVIRONMENT, "{err}");
    let msg = err.to_string();
    for want in [
        "not enough disk",
        "primary",
        "replica",
        "is free there",
        "--orgs ",
        "Nothing was written",
    ] {
        assert!(msg.contains(want), "{want:?} missing: {msg}");
    }
    let seeded = seed::require_seeded(&client).await.unwrap();
    assert_eq!(seeded.counts, record.counts);
    assert_eq!(seeded.params.orgs, 20_000);
}

/// The seed hands over a steady estate: it does not return before the
/// replica has replayed it. Replay is paused on the replica while a seed
/// runs: the seed must wait it out (its settle phase), and when it returns
/// the replica must already hold every row.
#[tokio::test]
async fn the_seed_waits_for_the_replica_to_replay_it() {
    let lab = common::lab();
    let url = lab.fresh_database("seed_settle").await;
    let mut estate = lab.estate(&url);
    estate.replica = Some(rehearse::estate::Endpoint {
        url: lab.replica_url("seed_settle"),
        source: Source::Flag,
    });
    let replica_admin = db::connect(&lab.replica_url("postgres")).await.unwrap();
    replica_admin
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let seeding = tokio::spawn({
        let estate = estate.clone();
        async move { seed::seed(&estate, &options(300, 11, 2)).await }
    });
    let paused = std::time::Duration::from_secs(6);
    tokio::time::sleep(paused).await;
    let waited = !seeding.is_finished();
    replica_admin
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    assert!(
        waited,
        "the seed returned while the replica's replay was paused"
    );
    let record = seeding.await.unwrap().unwrap();
    let settle = record
        .phases
        .iter()
        .find(|(p, _)| p == "settle")
        .expect("a settle phase")
        .1;
    assert!(settle > 1.0, "settle took {settle} s with replay paused");
    let primary = db::connect(&url).await.unwrap();
    let replica = db::connect(&lab.replica_url("seed_settle")).await.unwrap();
    for t in [
        "revenue_entries",
        "expense_entries_partitioned",
        "daily_financial_summaries",
    ] {
        let sql = format!("SELECT count(*) FROM {t}");
        let p: i64 = primary.query_one(&sql, &[]).await.unwrap().get(0);
        let r: i64 = replica.query_one(&sql, &[]).await.unwrap().get(0);
        assert!(p > 0);
        assert_eq!(
            p, r,
            "{t}: the replica had not replayed the seed when it returned"
        );
    }
}
