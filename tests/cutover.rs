//! The cutover playbook against the lab, each test on a database of its own
//! seeded legacy-only: the whole drill under a mixed workload, a backfill
//! stopped and resumed with writes in between, a corrupted row found by
//! bisection, steps refused out of order, and the playbook document's
//! commands.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use rehearse::cutover::{self, backfill, drill, verify, CutoverPhase, StepOptions};
use rehearse::estate::Estate;
use rehearse::repo::finance::{Adjustment, EntryKind, NewEntry};
use rehearse::repo::{Pooling, Repo, RepoConfig};
use rehearse::schema::{Mode, Modes};

async fn seeded(name: &str, orgs: u64) -> Estate {
    common::lab().seeded(name, orgs, Modes::Legacy).await
}

async fn seeded_modes(name: &str, orgs: u64, modes: Modes) -> Estate {
    common::lab().seeded(name, orgs, modes).await
}

fn quiet() -> StepOptions {
    StepOptions {
        verbose: false,
        ..Default::default()
    }
}

async fn client(estate: &Estate) -> tokio_postgres::Client {
    rehearse::db::connect(&estate.primary.url).await.unwrap()
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_drill_under_a_mixed_workload_loses_no_acknowledged_write() {
    let estate = seeded("cutover_drill", 300).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cutover-drill");
    let _ = std::fs::remove_dir_all(&out);
    let opts = drill::DrillOptions {
        common: rehearse::drill::Options {
            scenario: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios/cutover_mixed.toml"),
            variant: None,
            rate: Some(80.0),
            steady: Duration::from_secs(2),
            out: Some(out.clone()),
            verbose: false,
        },
        soak: Duration::from_secs(3),
        step: quiet(),
        verify: verify::VerifyOptions {
            buckets: 16,
            ..Default::default()
        },
        // Small batches, so the backfill runs over several transactions under load.
        backfill: backfill::BackfillOptions {
            batch_orgs: 40,
            ..Default::default()
        },
        race_writers: 16,
        race_ops: 100,
    };
    let (dir, report) = drill::drill(&estate, &opts).await.unwrap();
    assert!(report.ok, "{}", report.describe());
    assert_eq!(report.exit_code, 0);

    // Every verify step passed, before the switch, after the rollback and after the switch back.
    let verifies: Vec<_> = report
        .steps
        .iter()
        .filter_map(|s| s.report.as_ref()?.verify.as_ref())
        .collect();
    assert_eq!(verifies.len(), 3);
    for v in &verifies {
        assert!(v.ok, "{}", v.describe());
        assert_eq!(v.legacy, v.partitioned);
        assert!(v.legacy.revenue > 1_000, "{:?}", v.legacy);
    }
    let backfilled = report
        .steps
        .iter()
        .find_map(|s| s.report.as_ref()?.backfill.as_ref())
        .expect("a backfill step");
    assert!(
        backfilled.complete && backfilled.batches >= 8,
        "{backfilled:?}"
    );

    // The repository followed the flag: partitioned after each switch, legacy after the rollback.
    let mode_after = |name: &str| {
        report
            .steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.repository_mode)
    };
    assert_eq!(mode_after("switch"), Some(Mode::Partitioned));
    assert_eq!(mode_after("rollback"), Some(Mode::Legacy));
    assert_eq!(mode_after("switch again"), Some(Mode::Partitioned));

    // Every acknowledged write is on the authoritative side after the switch
    // (partitioned) and after the rollback (legacy), and on both at the end.
    let mid: Vec<_> = report
        .steps
        .iter()
        .filter_map(|s| s.ledger.as_ref())
        .collect();
    assert_eq!(
        mid.iter().map(|c| c.side).collect::<Vec<_>>(),
        [Mode::Partitioned, Mode::Legacy]
    );
    assert_eq!(
        report
            .final_ledger
            .iter()
            .map(|c| c.side)
            .collect::<Vec<_>>(),
        [Mode::Partitioned, Mode::Legacy]
    );
    for c in mid.iter().copied().chain(&report.final_ledger) {
        assert!(c.ok(), "{c}: {:?}", c.examples);
        assert_eq!((c.missing, c.differing, c.resurrected), (0, 0, 0));
    }
    let last = &report.final_ledger[0];
    assert!(
        last.acknowledged > 300 && last.entries_checked > 200,
        "too little was written to prove anything: {last}"
    );

    // The hardened triggers kept the burst exact; the naive ones did not.
    let race =
        |v: rehearse::schema::TriggerVariant| report.race.iter().find(|r| r.variant == v).unwrap();
    let hardened = race(rehearse::schema::TriggerVariant::Hardened);
    assert_eq!(
        (
            hardened.wrong_summary_rows,
            hardened.lost_updates,
            hardened.burst.failed_writes
        ),
        (0, 0, 0),
        "{}",
        hardened.describe()
    );
    let naive = race(rehearse::schema::TriggerVariant::Naive);
    // A material loss, not a stray row: at least half the summary rows wrong.
    assert!(
        naive.summary_rows > 0 && naive.wrong_summary_rows * 2 >= naive.summary_rows,
        "the naive triggers lost too little to prove the race: {}",
        naive.describe()
    );

    // The run directory: steps as markers in run.json, the drill in cutover.json.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "complete");
    let markers: Vec<&str> = run["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for step in [
        "steady",
        "backfill",
        "switch",
        "rollback",
        "verify after switch",
    ] {
        assert!(markers.contains(&step), "{markers:?}");
    }
    // The drill's report shows the drill: verdict first, then its steps,
    // write checks and verifies, as a browser renders them.
    let rep = rehearse::report::report(&dir).unwrap();
    assert!(rep.verdict.starts_with("drill PASS"), "{}", rep.verdict);
    let page = common::render_in_chromium(&rep.html);
    common::assert_page_reads_well(&page);
    assert!(
        page.first_heading.1.starts_with("cutover drill PASS"),
        "{:?}",
        page.first_heading
    );
    for t in [
        "drill-steps",
        "drill-writes",
        "drill-verifies",
        "drill-race",
    ] {
        assert!(
            page.tables.iter().any(|x| x == t),
            "no {t}: {:?}",
            page.tables
        );
    }
    assert!(page.cells.iter().any(|c| c == "verify after switch"));
    assert!(page.cells.iter().any(|c| c == "final"));
    assert!(page.charts.iter().any(|c| c.0 == "chart-drill-steps"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cutover.json")).unwrap()).unwrap();
    assert_eq!(saved["ok"], true);
    assert_eq!(
        saved["latency"].as_array().unwrap().len(),
        report.steps.len()
    );
    // After the soak: finalize removes the mirror, and the way back with it.
    let mut c = client(&estate).await;
    assert_eq!(
        cutover::read_state(&c).await.unwrap().phase,
        CutoverPhase::Switched
    );
    assert_eq!(cutover::mirror_installed(&c).await.unwrap(), 4);
    let fin = cutover::finalize(&mut c, &estate, &quiet()).await.unwrap();
    assert_eq!(fin.phase, CutoverPhase::Finalized);
    assert_eq!(cutover::mirror_installed(&c).await.unwrap(), 0);
    let err = cutover::flip(&mut c, &estate, Mode::Legacy, &quiet())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("finalized"), "{err}");
    // The legacy tables are kept until an explicit drop.
    assert!(count(&c, "SELECT count(*) FROM revenue_entries").await > 0);
}

#[tokio::test]
async fn the_backfill_pauses_for_replica_lag_and_p99_and_still_finishes() {
    let estate = seeded("cutover_throttle", 120).await;
    let mut c = client(&estate).await;
    cutover::prepare(&mut c, &estate, &quiet()).await.unwrap();
    cutover::dual_write(&mut c, &estate, &quiet())
        .await
        .unwrap();
    // A workload whose p99 stays over the limit: one batch, after a pause.
    let suffering = backfill::BackfillOptions {
        batch_orgs: 40,
        max_p99: Some(Duration::from_millis(10)),
        p99_probe: Some(std::sync::Arc::new(|| Some(Duration::from_millis(50)))),
        max_pause: Duration::from_millis(300),
        max_batches: Some(1),
        ..Default::default()
    };
    let r = backfill::backfill(&mut c, &estate, &quiet(), &suffering)
        .await
        .unwrap()
        .backfill
        .unwrap();
    assert_eq!(
        (
            r.batches,
            r.throttled,
            r.throttled_for_p99,
            r.throttled_for_lag
        ),
        (1, 1, 1, 0),
        "{r:?}"
    );
    assert!(r.paused_s >= 0.25, "{r:?}");
    // Lag over the limit on every check (any lag exceeds -1 byte): every batch waits, all finish.
    let lagging = backfill::BackfillOptions {
        batch_orgs: 40,
        max_lag_bytes: -1,
        max_pause: Duration::from_millis(300),
        ..Default::default()
    };
    let r = backfill::backfill(&mut c, &estate, &quiet(), &lagging)
        .await
        .unwrap()
        .backfill
        .unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(
        (r.batches, r.throttled_for_lag, r.throttled_for_p99),
        (2, 2, 0),
        "{r:?}"
    );
    assert!(r.paused_s >= 0.5, "{r:?}");
}

#[tokio::test]
async fn a_stopped_backfill_resumes_where_it_stopped_and_verify_passes() {
    let estate = seeded("cutover_resume", 200).await;
    let mut c = client(&estate).await;
    cutover::prepare(&mut c, &estate, &quiet()).await.unwrap();
    cutover::dual_write(&mut c, &estate, &quiet())
        .await
        .unwrap();
    let stopped = backfill::BackfillOptions {
        batch_orgs: 40,
        max_batches: Some(2),
        ..Default::default()
    };
    let first = backfill::backfill(&mut c, &estate, &quiet(), &stopped)
        .await
        .unwrap();
    let b = first.backfill.unwrap();
    assert!(!b.complete);
    assert_eq!((b.resumed_from, b.next_org, b.batches), (1, 81, 2));
    let state = cutover::read_state(&c).await.unwrap();
    assert_eq!(state.phase, CutoverPhase::DualWrite);
    assert_eq!(state.backfill.as_ref().unwrap().next_org, 81);

    // Writes while it is stopped, through the repository (legacy, mirrored):
    // a new entry on each side of the checkpoint, an adjust and a void of
    // entries the backfill has not reached yet.
    let mut cfg = RepoConfig::from_estate(&estate, Pooling::Direct).unwrap();
    cfg.mode_override = Some(Mode::Legacy);
    cfg.redis_url = None;
    let repo = Repo::connect(cfg).await.unwrap();
    let fin = repo.finance();
    let prop_of = |org: i64| {
        let c = &c;
        async move {
            c.query_one(
                "SELECT min(id) FROM properties WHERE organization_id = $1",
                &[&org],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    let day = rehearse::day::Day::from_ymd(2026, 11, 2);
    for org in [10i64, 150] {
        fin.record(
            org,
            &NewEntry::revenue(prop_of(org).await, day, "rooms", 4_242),
        )
        .await
        .unwrap();
    }
    let entry_of = |org: i64| {
        let c = &c;
        async move {
            c.query_one(
                "SELECT min(id) FROM revenue_entries WHERE organization_id = $1",
                &[&org],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    let adjusted = entry_of(150).await;
    let adjustment = Adjustment {
        amount_cents: Some(123_457),
        ..Default::default()
    };
    fin.adjust(150, EntryKind::Revenue, adjusted, &adjustment)
        .await
        .unwrap();
    let voided = entry_of(160).await;
    fin.void(160, EntryKind::Revenue, voided).await.unwrap();

    let resumed = backfill::backfill(
        &mut c,
        &estate,
        &quiet(),
        &backfill::BackfillOptions {
            batch_orgs: 40,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = resumed.backfill.unwrap();
    assert!(r.complete, "{r:?}");
    assert_eq!(r.resumed_from, 81, "it started over instead of resuming");
    assert_eq!(resumed.phase, CutoverPhase::Backfilled);
    // Copied once each: the legacy rows equal the rows copied plus the three the mirror wrote.
    let legacy = count(
        &c,
        "SELECT (SELECT count(*) FROM revenue_entries) + (SELECT count(*) FROM expense_entries)",
    )
    .await;
    assert_eq!(
        legacy as u64,
        b.rows + r.rows + 3,
        "first {b:?}, second {r:?}"
    );
    let amount: i64 = c
        .query_one(
            "SELECT amount_cents FROM revenue_entries_partitioned WHERE organization_id = 150 AND id = $1",
            &[&adjusted],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(amount, 123_457);
    assert_eq!(
        count(
            &c,
            &format!("SELECT count(*) FROM revenue_entries_partitioned WHERE id = {voided}")
        )
        .await,
        0
    );
    let v = verify::verify(&mut c, &estate, &quiet(), &verify::VerifyOptions::default())
        .await
        .unwrap()
        .verify
        .unwrap();
    assert!(v.ok, "{}", v.describe());
    // A third run has nothing to do.
    let again = backfill::backfill(&mut c, &estate, &quiet(), &Default::default())
        .await
        .unwrap();
    assert!(!again.ran, "{}", again.summary);
}

#[tokio::test]
async fn verify_finds_exactly_the_corrupted_row_by_bisection() {
    let estate = seeded("cutover_corrupt", 200).await;
    let mut c = client(&estate).await;
    cutover::prepare(&mut c, &estate, &quiet()).await.unwrap();
    cutover::dual_write(&mut c, &estate, &quiet())
        .await
        .unwrap();
    backfill::backfill(&mut c, &estate, &quiet(), &Default::default())
        .await
        .unwrap();
    // Three buckets at a time: the report must not depend on which worker took which.
    let opts = verify::VerifyOptions {
        buckets: 8,
        jobs: 3,
        ..Default::default()
    };
    let clean = verify::verify(&mut c, &estate, &quiet(), &opts)
        .await
        .unwrap();
    assert!(clean.verify.unwrap().ok);

    // One row changed on the partitioned side only (the mirror told to stand aside).
    let row = c
        .query_one(
            "SELECT id, business_date::text FROM revenue_entries_partitioned \
              WHERE organization_id = 137 ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (id, day): (i64, String) = (row.get(0), row.get(1));
    c.batch_execute(&format!(
        "BEGIN; SET LOCAL rehearse.mirror = 'off'; \
         UPDATE revenue_entries_partitioned SET amount_cents = amount_cents + 1 \
          WHERE organization_id = 137 AND id = {id}; COMMIT;"
    ))
    .await
    .unwrap();

    let found = verify::verify(&mut c, &estate, &quiet(), &opts)
        .await
        .unwrap()
        .verify
        .unwrap();
    assert!(!found.ok);
    assert_eq!(found.mismatching_buckets.len(), 1, "{}", found.describe());
    let bucket = &found.mismatching_buckets[0];
    assert!(bucket.first_org <= 137 && 137 <= bucket.last_org);
    assert_eq!(
        bucket
            .orgs
            .iter()
            .map(|o| o.organization_id)
            .collect::<Vec<_>>(),
        [137]
    );
    let rows = &bucket.orgs[0].rows;
    // The entry, and its day's summary (kept by the partitioned side's own trigger).
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].table.as_str(), rows[0].key.as_str()),
        ("revenue", id.to_string().as_str())
    );
    assert_eq!(rows[1].table, "summary");
    assert!(rows[1].key.ends_with(&day), "{:?}", rows[1]);
    assert_ne!(rows[0].legacy, rows[0].partitioned);
    // Each side's summaries still equal its own entries: the sides differ, not the triggers.
    assert_eq!(
        (
            found.summary_parity.legacy,
            found.summary_parity.partitioned
        ),
        (0, 0)
    );

    // The CLI says the same, with exit code 1, and the switch is refused.
    let url = estate.primary.url.clone();
    let out = common::rehearse_cmd()
        .args([
            "--primary-url",
            &url,
            "cutover",
            "verify",
            "-q",
            "--buckets",
            "8",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("revenue {id}")) && stdout.contains("organization 137"),
        "{stdout}"
    );
    let password = url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .and_then(|(cred, _)| cred.split_once(':'))
        .map(|(_, pw)| pw.to_string())
        .unwrap_or_default();
    if password.len() >= 4 {
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains(&password), "the password was printed");
    }
    let err = cutover::flip(&mut c, &estate, Mode::Partitioned, &quiet())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mismatching"), "{err}");
}

#[tokio::test]
async fn steps_out_of_order_are_refused_with_the_step_to_run_first() {
    let estate = seeded("cutover_order", 40).await;
    let url = estate.primary.url.clone();
    let run = |args: &[&str]| {
        let out = common::rehearse_cmd()
            .args(["--primary-url", &url, "cutover"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["switch"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("`rehearse cutover prepare`"), "{err}");
    let (code, _, err) = run(&["prepare", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["backfill", "-q"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("`rehearse cutover dual-write`"), "{err}");
    // A step already done says so and changes nothing.
    let (code, out, err) = run(&["prepare", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("nothing to do"), "{out}");
    // --dry-run prints the SQL and changes nothing.
    let (code, out, _) = run(&["dual-write", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("CREATE TRIGGER zz_cutover_mirror"), "{out}");
    let (code, out, _) = run(&["status", "--json"]);
    assert_eq!(code, Some(0));
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["phase"], "prepared");
    assert_eq!(st["mirror_triggers"], 0);
    assert_eq!(st["next"], "rehearse cutover dual-write");
}

#[tokio::test]
async fn a_cutover_into_partitioned_tables_that_hold_rows_is_refused_before_anything_runs() {
    let estate = seeded_modes("cutover_filled", 40, Modes::Both).await;
    let url = estate.primary.url.clone();
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/cutover_mixed.toml");
    for args in [
        vec!["cutover", "prepare", "-q"],
        vec![
            "cutover",
            "drill",
            "-q",
            "--under",
            scenario.to_str().unwrap(),
        ],
    ] {
        let started = std::time::Instant::now();
        let out = common::rehearse_cmd()
            .args(["--primary-url", &url])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(
            err.contains("already hold entries")
                && err.contains("rehearse schema drop --mode partitioned"),
            "{err}"
        );
        // Refused up front: the drill did not run its 15 s steady state first.
        assert!(started.elapsed() < Duration::from_secs(10), "{args:?}");
    }
    let c = client(&estate).await;
    assert_eq!(
        cutover::read_state(&c).await.unwrap().phase,
        CutoverPhase::NotStarted
    );
}

/// Every `rehearse ...` command the playbook names parses (`--help` after
/// it: clap rejects an unknown subcommand or flag before it prints help).
#[test]
fn the_playbook_names_only_commands_that_exist() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/src/cutover-playbook.md"),
    )
    .unwrap();
    // Commands are the lines of fenced code blocks and the inline code spans
    // that start with `rehearse `; prose that says "rehearse" is not one.
    let mut spans: Vec<&str> = Vec::new();
    let mut fenced = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            spans.push(line.trim());
        } else {
            spans.extend(line.split('`').skip(1).step_by(2));
        }
    }
    let mut commands: Vec<String> = spans
        .iter()
        .filter_map(|s| s.strip_prefix("rehearse "))
        .map(|tail| {
            // Up to a comment, a pipe or a placeholder.
            let end = tail.find(['#', '|', ';']).unwrap_or(tail.len());
            tail[..end]
                .split_whitespace()
                .take_while(|w| !w.starts_with('<') && !w.starts_with('$') && *w != "...")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| !c.is_empty())
        .collect();
    commands.sort();
    commands.dedup();
    for step in [
        "prepare",
        "dual-write",
        "backfill",
        "verify",
        "switch",
        "rollback",
        "finalize",
        "status",
        "drill",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with(&format!("cutover {step}"))),
            "the playbook never names `rehearse cutover {step}`: {commands:?}"
        );
    }
    for cmd in &commands {
        let out = common::rehearse_cmd()
            .args(cmd.split_whitespace())
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "`rehearse {cmd}` does not parse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
