//! The embedded lab against real servers: replication, PgBouncer in
//! transaction pooling, Redis.

mod common;

use std::time::{Duration, Instant};

use rehearse::db;
use rehearse::lab::{self, LabCtx};
use tokio_postgres::types::Type;

#[tokio::test]
async fn every_component_of_the_lab_answers() {
    let lab = common::lab();
    let ctx = LabCtx::open(&lab.state.dir).unwrap();
    let status = ctx.status().await;
    for s in &status {
        assert!(s.up, "{} is not up: {:?}", s.component, s.problem);
        assert!(s.pid.is_some());
    }
    let version = |c: &str| {
        status
            .iter()
            .find(|s| s.component == c)
            .unwrap()
            .version
            .clone()
            .unwrap()
    };
    assert!(
        version("primary").starts_with("15."),
        "{}",
        version("primary")
    );
    assert!(version("pgbouncer").contains("PgBouncer"));
    assert!(status
        .iter()
        .find(|s| s.component == "replica")
        .unwrap()
        .replay_lag_bytes
        .is_some());
    assert_eq!(
        lab::redis_ping(&lab.state.urls.redis).await.unwrap(),
        version("redis")
    );

    // The replica really is a hot standby of the primary.
    let replica = db::connect(&lab.state.urls.replica).await.unwrap();
    let in_recovery: bool = replica
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery);
    let primary = db::connect(&lab.state.urls.primary).await.unwrap();
    let preload: String = primary
        .query_one("SHOW shared_preload_libraries", &[])
        .await
        .unwrap()
        .get(0);
    assert!(preload.contains("pg_stat_statements"));
    let wal: String = primary
        .query_one("SHOW wal_level", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(wal, "replica");
}

#[tokio::test]
async fn replica_replays_a_row_written_on_the_primary_once_it_reaches_the_write_lsn() {
    let lab = common::lab();
    let url = lab.fresh_database("replay").await;
    let primary = db::connect(&url).await.unwrap();
    primary
        .batch_execute("CREATE TABLE t (id int primary key, note text); INSERT INTO t VALUES (1, 'written on the primary')")
        .await
        .unwrap();
    let lsn: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);

    let replica_url = lab.replica_url("replay");
    let start = Instant::now();
    // The database itself arrives by replay too, so connecting may fail at first.
    let replica = loop {
        match db::connect(&replica_url).await {
            Ok(c) => break c,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("replica never got the database: {e}"),
        }
    };
    loop {
        let reached: bool = replica
            .query_one(
                "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &[&lsn],
            )
            .await
            .unwrap()
            .get(0);
        if reached {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "replica did not reach {lsn}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let note: String = replica
        .query_one("SELECT note FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(note, "written on the primary");
    // And it refuses writes, as a standby must.
    let err = replica
        .batch_execute("INSERT INTO t VALUES (2, 'x')")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25006", "{err}");
}

#[tokio::test]
async fn pgbouncer_transaction_pooling_serves_32_tasks_with_unnamed_statements_and_no_errors() {
    let lab = common::lab();
    let url = lab.pgbouncer_url();
    let mut tasks = Vec::new();
    for task in 0..32i64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = db::connect(&url).await.unwrap();
            let mut errors = Vec::new();
            for i in 0..100i64 {
                // Unnamed statements: one parse-bind-execute per call, so it
                // does not matter which server connection PgBouncer picks.
                let r = client
                    .query_typed(
                        "SELECT $1::bigint * 2 + $2::bigint",
                        &[(&task, Type::INT8), (&i, Type::INT8)],
                    )
                    .await;
                match r {
                    Ok(rows) => assert_eq!(rows[0].get::<_, i64>(0), task * 2 + i),
                    Err(e) => errors.push(e.to_string()),
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

    // The replica's pool answers too, and really is the replica.
    let replica = db::connect(&lab.state.urls.pgbouncer_replica)
        .await
        .unwrap();
    let rows = replica
        .simple_query("SELECT pg_is_in_recovery()::text")
        .await
        .unwrap();
    let in_recovery = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(in_recovery.as_deref(), Some("true"));
}
