//! Where the time goes (issue 34), against the lab: the repository's
//! partition hash against the server's own tuple routing, and a run's
//! attribution, in which a lock held on the revenue partitions shows as
//! `Lock:relation` for the operation that reads them and for no other.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rehearse::driver::{self, RunOptions};
use rehearse::repo::leaf::remainder;
use rehearse::schema::Modes;

fn work_dir(test: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("attribution")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repositorys_partition_hash_is_where_the_server_routes_each_row() {
    let lab = common::lab();
    let url = lab.fresh_database("attribution_hash").await;
    let c = rehearse::db::connect(&url).await.unwrap();
    for modulus in [8u32, 64] {
        let mut ddl = format!(
            "DROP TABLE IF EXISTS h; CREATE TABLE h (k bigint NOT NULL) PARTITION BY HASH (k);"
        );
        for r in 0..modulus {
            ddl += &format!("CREATE TABLE h_{r} PARTITION OF h FOR VALUES WITH (MODULUS {modulus}, REMAINDER {r});");
        }
        c.batch_execute(&ddl).await.unwrap();
        // Organization ids as seeded, the extremes, and negatives: the
        // server places each row (tuple routing), we compute where.
        c.batch_execute(
            "INSERT INTO h SELECT g FROM generate_series(1, 20000) g;
             INSERT INTO h SELECT g::int8 * 1000003 FROM generate_series(-5000, 5000) g;
             INSERT INTO h VALUES (0), (-1), (9223372036854775807), (-9223372036854775808),
                                  (4294967295), (4294967296), (-4294967296);",
        )
        .await
        .unwrap();
        let rows = c
            .query("SELECT k, tableoid::regclass::text FROM h", &[])
            .await
            .unwrap();
        assert!(rows.len() > 30_000);
        let wrong: Vec<(i64, String, u32)> = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            .filter_map(|(k, leaf)| {
                let ours = remainder(k, modulus);
                (leaf != format!("h_{ours}")).then_some((k, leaf, ours))
            })
            .take(5)
            .collect();
        assert!(wrong.is_empty(), "modulus {modulus}: {wrong:?}");
    }
}

/// Hold ACCESS EXCLUSIVE on every revenue partition for 1.5 s, `after` in.
fn hold_lock(url: &str, table: &'static str, after: Duration) -> tokio::task::JoinHandle<()> {
    let url = url.to_string();
    tokio::spawn(async move {
        let mut c = rehearse::db::connect(&url).await.unwrap();
        tokio::time::sleep(after).await;
        let t = c.transaction().await.unwrap();
        t.batch_execute(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        t.commit().await.unwrap();
    })
}

fn scenario(dir: &Path) -> PathBuf {
    let p = dir.join("reads.toml");
    std::fs::write(
        &p,
        r#"name = "reads"
seed = 7
warmup = "0s"

[[phase]]
name = "steady"
duration = "6s"
rate = 60
max_in_flight = 32

[[mix]]
operation = "dashboard"
weight = 1
days = 7

[[mix]]
operation = "ledger"
weight = 1
days = 7
limit = 50

[[variant]]
name = "partitioned"
mode = "partitioned"
reads = "primary"
cache = false

[[variant]]
name = "legacy"
mode = "legacy"
reads = "primary"
cache = false
"#,
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_attributes_its_server_time_and_a_held_lock_shows_where_it_blocked() {
    let lab = common::lab();
    let estate = lab.seeded("attribution_run", 120, Modes::Both).await;
    let dir = work_dir("run");
    let file = scenario(&dir);
    // The partitioned variant runs first: the lock lands in its middle.
    let locker = hold_lock(
        &estate.primary.url,
        "revenue_entries_partitioned",
        Duration::from_secs(3),
    );
    let opts = RunOptions {
        scenarios: vec![file],
        out: Some(dir.join("out")),
        ..Default::default()
    };
    let o = driver::run(&estate, &opts).await.unwrap().pop().unwrap();
    locker.await.unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/run.json")).unwrap()).unwrap();
    let a = &json["variants"][0]["database"]["attribution"];
    assert!(
        a.is_object(),
        "no attribution in run.json: {}",
        json["variants"][0]["database"]
    );
    assert_eq!(o.result.variants[0].variant.name, "partitioned");
    for v in &o.result.variants {
        let a = v
            .database
            .attribution
            .as_ref()
            .expect("attribution per variant");
        assert!(a.track_planning, "the lab times planning");
        assert!(a.rounds["primary"] > 100, "{:?}", a.rounds);
        for op in &a.operations {
            let requests = v
                .operations
                .iter()
                .find(|o| o.name == op.name)
                .unwrap()
                .count;
            // Each request sends its statement: the server saw them all.
            assert!(
                op.calls >= requests as f64 * 0.99,
                "{}: {} calls, {requests} requests",
                op.name,
                op.calls
            );
            assert!(op.exec_ms > 0.0 && op.sampled > 0.0, "{op:?}");
            let sum: f64 = op.waits.iter().map(|w| w.share).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{}: shares sum to {sum}", op.name);
            let samples: f64 = op.waits.iter().map(|w| w.samples).sum();
            assert!((samples - op.sampled).abs() < 1e-6);
            // Prepared statements on direct connections: counted plans.
            assert!(
                op.generic_plans.is_some() && op.custom_plans.is_some(),
                "{op:?}"
            );
        }
    }
    let op = |v: usize, name: &str| {
        o.result.variants[v]
            .database
            .attribution
            .as_ref()
            .unwrap()
            .operations
            .iter()
            .find(|o| o.name == name)
            .unwrap()
            .clone()
    };
    // The ledger reads revenue entries and waited on the lock; the
    // dashboard reads summaries and did not; nor did anything in the
    // legacy variant, whose tables nobody locked.
    let ledger = op(0, "ledger");
    assert!(
        ledger.share("Lock:relation") > 0.2,
        "ledger's waits: {:?}",
        ledger.waits
    );
    assert_eq!(
        op(0, "dashboard").share("Lock:relation"),
        0.0,
        "{:?}",
        op(0, "dashboard").waits
    );
    assert_eq!(
        op(1, "ledger").share("Lock:relation"),
        0.0,
        "{:?}",
        op(1, "ledger").waits
    );

    // The report shows it: a table and the stacked chart.
    rehearse::report::report(&dir.join("out")).unwrap();
    let md = std::fs::read_to_string(dir.join("out/summary.md")).unwrap();
    assert!(md.contains("Where the time went on the server"), "{md}");
    assert!(md.contains("Lock:relation"), "{md}");
    assert!(dir.join("out/charts/server-time.png").is_file());
}
