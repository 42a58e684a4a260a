//! Both schemas on the lab: partitions, routing, trigger exactness under 32
//! concurrent writers, and the refusal paths.

mod common;

use rehearse::cutover::race;
use rehearse::db;
use rehearse::estate::{Estate, Source};
use rehearse::exit;
use rehearse::schema::{self, meta, CreateOptions, Mode, Modes, TriggerVariant};

async fn create(url: &str, partitions: u32, variant: TriggerVariant) -> tokio_postgres::Client {
    let lab = common::lab();
    let mut client = db::connect(url).await.unwrap();
    let opts = CreateOptions {
        modes: Modes::Both,
        partitions,
        trigger_variant: variant,
        allow_destructive: None,
    };
    schema::create(&mut client, &lab.estate(url), &opts)
        .await
        .unwrap();
    client
}

#[tokio::test]
async fn both_schemas_are_created_with_the_requested_partitions_and_recorded_in_meta() {
    let lab = common::lab();
    let url = lab.fresh_database("schema_shape").await;
    let client = create(&url, 16, TriggerVariant::Hardened).await;
    for parent in [
        "revenue_entries_partitioned",
        "expense_entries_partitioned",
        "daily_financial_summaries_partitioned",
    ] {
        assert_eq!(
            schema::partition_count(&client, parent).await.unwrap(),
            16,
            "{parent}"
        );
        let last: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{parent}_p015")],
            )
            .await
            .unwrap()
            .get(0);
        assert!(last, "{parent}_p015 exists");
    }
    for plain in [
        "revenue_entries",
        "expense_entries",
        "daily_financial_summaries",
    ] {
        assert_eq!(schema::partition_count(&client, plain).await.unwrap(), 0);
    }
    let info = meta::require_known(&client).await.unwrap();
    assert_eq!(info.version, schema::SCHEMA_VERSION);
    assert_eq!(info.modes, vec![Mode::Legacy, Mode::Partitioned]);
    assert_eq!(info.partitions, Some(16));
    assert_eq!(info.trigger_variant, TriggerVariant::Hardened);

    // Creating again is a no-op; a different partition count is refused.
    let mut c2 = db::connect(&url).await.unwrap();
    let again = schema::create(
        &mut c2,
        &lab.estate(&url),
        &CreateOptions {
            partitions: 16,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(again, info);
    let err = schema::create(
        &mut c2,
        &lab.estate(&url),
        &CreateOptions {
            partitions: 8,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("16 partitions"), "{err}");

    // Dropping one mode leaves the other and says so in meta.
    let remaining = schema::drop_schema(
        &mut c2,
        &lab.estate(&url),
        &schema::DropOptions {
            modes: Modes::Partitioned,
            allow_destructive: None,
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(remaining.modes, vec![Mode::Legacy]);
    assert_eq!(
        schema::partition_count(&c2, "revenue_entries_partitioned")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_row_lands_in_the_partition_postgres_routes_its_organization_to() {
    let lab = common::lab();
    let url = lab.fresh_database("schema_routing").await;
    let client = create(&url, 8, TriggerVariant::Hardened).await;
    for org in [1i64, 2, 3, 42, 1_000_000] {
        let row = client
            .query_one(
                "INSERT INTO revenue_entries_partitioned (organization_id, property_id, business_date, category, amount_cents) \
                 VALUES ($1, 1, '2026-10-01', 'rooms', 100) RETURNING tableoid::regclass::text",
                &[&org],
            )
            .await
            .unwrap();
        let landed: String = row.get(0);
        // The partition whose remainder satisfies PostgreSQL's own hash test.
        let expected: String = client
            .query_one(
                "SELECT format('revenue_entries_partitioned_p%s', lpad(r::text, 3, '0')) FROM generate_series(0, 7) r \
                 WHERE satisfies_hash_partition('revenue_entries_partitioned'::regclass, 8, r, $1::bigint)",
                &[&org],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(landed, expected, "organization {org}");
    }
    // The trigger on the parent reached the partition: the summary follows.
    let n: i64 = client
        .query_one(
            "SELECT sum(revenue_count) FROM daily_financial_summaries_partitioned",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
}

/// 32 writers, each on its own connection, inserting, moving, re-pricing and
/// deleting entries over 3 organizations x 2 properties x 3 days, so every
/// summary row is written by many writers at once (the drill's trigger race
/// runs the same burst).
async fn write_burst(url: &str, mode: Mode, ops_per_writer: u64) -> race::Burst {
    race::burst(url, mode.tables(), 32, ops_per_writer, 7)
        .await
        .expect("the burst connects")
}

#[tokio::test]
async fn hardened_triggers_keep_summaries_exact_under_32_concurrent_writers_in_both_modes() {
    let lab = common::lab();
    let url = lab.fresh_database("schema_exact").await;
    let client = create(&url, 8, TriggerVariant::Hardened).await;
    for mode in [Mode::Legacy, Mode::Partitioned] {
        let burst = write_burst(&url, mode, 150).await;
        assert_eq!(
            burst.failed_writes, 0,
            "{mode}: {} of {} writes failed, first: {:?}",
            burst.failed_writes, burst.writes, burst.first_error
        );
        assert_eq!(
            schema::summary_mismatches(&client, mode).await.unwrap(),
            0,
            "{mode}"
        );
        // The check above is only meaningful if the summaries hold the work.
        let t = mode.tables();
        let (entries, counted): (i64, i64) = {
            let r = client
                .query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM {}) + (SELECT count(*) FROM {}), \
                              (SELECT sum(revenue_count + expense_count) FROM {})::bigint",
                        t.revenue, t.expense, t.summary
                    ),
                    &[],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert!(entries > 1000, "{mode}: only {entries} entries survived");
        assert_eq!(entries, counted, "{mode}");
    }
}

#[tokio::test]
async fn naive_triggers_lose_or_fail_updates_under_the_same_burst() {
    let lab = common::lab();
    let url = lab.fresh_database("schema_naive").await;
    let client = create(&url, 8, TriggerVariant::Naive).await;
    let burst = write_burst(&url, Mode::Legacy, 150).await;
    let mismatches = schema::summary_mismatches(&client, Mode::Legacy)
        .await
        .unwrap();
    eprintln!(
        "naive: {mismatches} wrong summary rows, {} failed writes of {}, first: {:?}",
        burst.failed_writes, burst.writes, burst.first_error
    );
    assert!(
        mismatches > 0 || burst.failed_writes > 0,
        "the naive variant showed no race in {} writes; the burst no longer exercises it",
        burst.writes
    );
}

#[tokio::test]
async fn an_unknown_schema_version_is_refused_with_what_to_run() {
    let lab = common::lab();
    let url = lab.fresh_database("schema_version").await;
    let mut client = create(&url, 4, TriggerVariant::Hardened).await;
    meta::set(&client, "schema_version", &999.into())
        .await
        .unwrap();
    let err = meta::require_known(&client).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    let msg = err.to_string();
    assert!(
        msg.contains("version 999") && msg.contains("rehearse schema drop"),
        "{msg}"
    );
    let err = schema::create(&mut client, &lab.estate(&url), &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED, "{err}");
}

#[tokio::test]
async fn a_database_without_rehearse_meta_is_refused_unless_named() {
    let lab = common::lab();
    let url = lab.fresh_database("schema_foreign").await;
    let mut client = db::connect(&url).await.unwrap();
    client
        .batch_execute("CREATE TABLE precious (id int)")
        .await
        .unwrap();
    // The same database named through the environment is not the lab.
    let foreign = Estate::primary_only(&url, Source::Env("REHEARSE_PRIMARY_URL"));

    let err = schema::create(&mut client, &foreign, &CreateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(
        err.to_string()
            .contains("--allow-destructive schema_foreign"),
        "{err}"
    );
    let err = schema::drop_schema(
        &mut client,
        &foreign,
        &schema::DropOptions {
            modes: Modes::Both,
            allow_destructive: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    let err = schema::create(
        &mut client,
        &foreign,
        &CreateOptions {
            allow_destructive: Some("another_db".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), exit::REFUSED);
    assert!(
        !meta::has_meta(&client).await.unwrap(),
        "nothing was created by a refused command"
    );
    assert!(meta::require_known(&client)
        .await
        .unwrap_err()
        .to_string()
        .contains("rehearse schema create"));

    schema::create(
        &mut client,
        &foreign,
        &CreateOptions {
            allow_destructive: Some("schema_foreign".into()),
            partitions: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Now it carries rehearse_meta, so it is a rehearsal database.
    schema::drop_schema(
        &mut client,
        &foreign,
        &schema::DropOptions {
            modes: Modes::Both,
            allow_destructive: None,
        },
    )
    .await
    .unwrap();
    let precious: bool = client
        .query_one("SELECT to_regclass('precious') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(precious, "drop removes only what rehearse created");
}
