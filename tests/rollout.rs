//! The phased rollout against the lab: cohorts as the repository routes
//! them, widening that keeps every organization already in, rollbacks to
//! legacy, the cutover's gate, idempotence, dry runs and the step log.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use rehearse::cutover::{self, backfill, verify, CutoverPhase, Step, StepOptions};
use rehearse::estate::Estate;
use rehearse::repo::finance::NewEntry;
use rehearse::repo::{Pooling, Repo, RepoConfig};
use rehearse::rollout::{self, Change};
use rehearse::schema::{Mode, Modes};

fn quiet() -> StepOptions {
    StepOptions {
        verbose: false,
        ..Default::default()
    }
}

/// Bring a seeded legacy estate to a passing verify: what a rollout needs.
async fn verified(estate: &Estate, c: &mut tokio_postgres::Client) {
    let o = quiet();
    cutover::prepare(c, estate, &o).await.unwrap();
    cutover::dual_write(c, estate, &o).await.unwrap();
    backfill::backfill(c, estate, &o, &backfill::BackfillOptions::default())
        .await
        .unwrap();
    let v = verify::verify(c, estate, &o, &verify::VerifyOptions::default())
        .await
        .unwrap();
    assert!(v.verify.as_ref().unwrap().ok);
}

/// The organizations whose calls the repository sends to the partitioned tables now.
async fn cohort(repo: &Repo, orgs: &[i64]) -> BTreeSet<i64> {
    // A change is seen once the repository's cached flag has expired.
    tokio::time::sleep(rehearse::repo::DEFAULT_FLAG_TTL + Duration::from_millis(50)).await;
    let mut out = BTreeSet::new();
    for &o in orgs {
        if repo.mode_for(o).await == Mode::Partitioned {
            out.insert(o);
        }
    }
    out
}

fn share(part: &BTreeSet<i64>, all: &[i64]) -> f64 {
    100.0 * part.len() as f64 / all.len() as f64
}

#[tokio::test]
async fn cohorts_widen_without_losing_anyone_and_roll_back_to_legacy() {
    let estate = common::lab()
        .seeded("rollout_cohorts", 600, Modes::Legacy)
        .await;
    let mut c = rehearse::db::connect(&estate.primary.url).await.unwrap();
    let o = quiet();

    // Before the cutover has both sides complete, a rollout is refused with the step to run first.
    let e = rollout::apply(&mut c, &estate, &Change::Widen { percent: 1_000 }, &o)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), rehearse::exit::REFUSED);
    assert!(e.to_string().contains("`rehearse cutover prepare`"), "{e}");
    verified(&estate, &mut c).await;

    let orgs = rollout::change::organizations(&c).await.unwrap();
    assert_eq!(orgs.len(), 600);
    let repo = Repo::connect(RepoConfig::from_estate(&estate, Pooling::Direct).unwrap())
        .await
        .unwrap();
    assert!(cohort(&repo, &orgs).await.is_empty(), "no rollout yet");

    // 10%: the share of partitioned organizations is within 2 points.
    let r = rollout::apply(
        &mut c,
        &estate,
        &Change::Pilot {
            orgs: vec![],
            percent: Some(1_000),
            deny: vec![],
            salt: None,
        },
        &o,
    )
    .await
    .unwrap();
    assert!(r.ran);
    let at10 = cohort(&repo, &orgs).await;
    assert!(
        (share(&at10, &orgs) - 10.0).abs() <= 2.0,
        "{}",
        share(&at10, &orgs)
    );
    assert_eq!(
        r.partitioned_after,
        at10.len() as u64,
        "the report counts what the repository routes"
    );

    // A write follows its organization's cohort, and the mirror copies it to the other side.
    let in10 = *at10.iter().next().unwrap();
    let out10 = *orgs.iter().find(|o| !at10.contains(o)).unwrap();
    let day = rehearse::day::Day::from_ymd(2026, 11, 2);
    for (org, side) in [(in10, Mode::Partitioned), (out10, Mode::Legacy)] {
        let prop: i64 = c
            .query_one(
                "SELECT min(id) FROM properties WHERE organization_id = $1",
                &[&org],
            )
            .await
            .unwrap()
            .get(0);
        let w = repo
            .finance()
            .record(org, &NewEntry::revenue(prop, day, "rooms", 4_242))
            .await
            .unwrap();
        assert_eq!(w.mode, side, "organization {org}");
        for m in [Mode::Legacy, Mode::Partitioned] {
            let n: i64 = c
                .query_one(
                    &format!("SELECT count(*) FROM {} WHERE id = $1", m.tables().revenue),
                    &[&w.id],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 1, "entry {} of organization {org} on the {m} side", w.id);
        }
    }
    // The portfolio spans organizations: it stays on legacy until the switch.
    assert_eq!(repo.mode().await, Mode::Legacy);

    // 50% keeps every organization that was partitioned at 10%.
    rollout::apply(&mut c, &estate, &Change::Widen { percent: 5_000 }, &o)
        .await
        .unwrap();
    let at50 = cohort(&repo, &orgs).await;
    assert!(
        at10.is_subset(&at50),
        "widening dropped {:?}",
        at10.difference(&at50)
    );
    assert!(
        (share(&at50, &orgs) - 50.0).abs() <= 5.0,
        "{}",
        share(&at50, &orgs)
    );

    // Narrowing by widen is refused; a dry run changes nothing.
    let e = rollout::apply(&mut c, &estate, &Change::Widen { percent: 1_000 }, &o)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rollback --to-percent 10"), "{e}");
    let dry = StepOptions {
        dry_run: true,
        ..quiet()
    };
    let r = rollout::apply(&mut c, &estate, &Change::Rollback { to: 0 }, &dry)
        .await
        .unwrap();
    assert!(!r.ran && r.moved_to_legacy == at50.len() as u64);
    assert_eq!(
        cohort(&repo, &orgs).await,
        at50,
        "the dry run changed the rollout"
    );

    // Back to 0: everyone on legacy; again: nothing to do.
    let r = rollout::apply(&mut c, &estate, &Change::Rollback { to: 0 }, &o)
        .await
        .unwrap();
    assert!(r.ran);
    assert!(
        cohort(&repo, &orgs).await.is_empty(),
        "0% routes all to legacy"
    );
    let again = rollout::apply(&mut c, &estate, &Change::Rollback { to: 0 }, &o)
        .await
        .unwrap();
    assert!(
        !again.ran && again.summary.contains("nothing to do"),
        "{}",
        again.summary
    );

    // Each change that ran is in the cutover's step log; the verify still holds.
    let state = cutover::read_state(&c).await.unwrap();
    let logged: Vec<&str> = state
        .log
        .iter()
        .filter(|l| l.step == Step::Rollout)
        .map(|l| l.outcome.as_str())
        .collect();
    assert_eq!(logged.len(), 3, "{logged:?}");
    assert!(logged[1].starts_with("widen: 10% -> 50%"), "{logged:?}");
    assert_eq!(state.phase, CutoverPhase::Backfilled);

    // A switch overrides the rollout; the cutover's rollback takes it back to 0.
    rollout::apply(&mut c, &estate, &Change::Widen { percent: 2_000 }, &o)
        .await
        .unwrap();
    cutover::flip(&mut c, &estate, Mode::Partitioned, &o)
        .await
        .unwrap();
    assert_eq!(cohort(&repo, &orgs).await.len(), orgs.len());
    let e = rollout::apply(&mut c, &estate, &Change::Widen { percent: 3_000 }, &o)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cutover rollback"), "{e}");
    cutover::flip(&mut c, &estate, Mode::Legacy, &o)
        .await
        .unwrap();
    let (_, after) = rollout::change::read(&c).await.unwrap();
    assert_eq!((after.basis_points, after.allow.len()), (0, 0));
    assert!(cohort(&repo, &orgs).await.is_empty());

    // Nothing was lost on either side through all of it.
    let v = verify::verify(&mut c, &estate, &o, &verify::VerifyOptions::default())
        .await
        .unwrap();
    assert!(v.verify.as_ref().unwrap().ok);
}

#[test]
fn the_cli_shows_the_cohort_of_an_organization_and_refuses_out_of_order() {
    let estate =
        common::block_on(async { common::lab().seeded("rollout_cli", 80, Modes::Legacy).await });
    let url = estate.primary.url.clone();
    let run = |args: &[&str]| {
        let out = common::rehearse_cmd()
            .args(["--primary-url", &url, "--replica-url", &url])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["rollout", "pilot", "--orgs", "12"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("`rehearse cutover prepare`"), "{err}");
    for step in ["prepare", "dual-write", "backfill"] {
        let (code, _, err) = run(&["cutover", step, "-q"]);
        assert_eq!(code, Some(0), "{step}: {err}");
    }
    let (code, _, err) = run(&["rollout", "pilot", "--orgs", "12"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("`rehearse cutover verify`"), "{err}");
    let (code, _, err) = run(&["cutover", "verify", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["rollout", "pilot", "--orgs", "12,57", "--deny", "3", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("2 of 80 organizations partitioned"), "{out}");
    let (code, out, err) = run(&["rollout", "status", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["rollout"]["allow"], serde_json::json!([12, 57]));
    assert_eq!(st["rollout"]["deny"], serde_json::json!([3]));
    assert_eq!(st["partitioned_orgs"], 2);
    // Under dual-write both sides hold the same entries, per cohort too.
    let rows = st["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["entries"], rows[1]["entries"]);
    assert_eq!(rows[0]["partitioned_cohort"], rows[1]["partitioned_cohort"]);
    assert!(rows[0]["partitioned_cohort"].as_i64().unwrap() > 0);
    for (org, cohort, why) in [
        ("12", "partitioned", "on the allow list"),
        ("3", "legacy", "on the deny list"),
    ] {
        let (code, _, err) = run(&["query", "dashboard", "--org", org, "--cache", "off"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains(&format!("organization {org} is in the {cohort} cohort"))
                && err.contains(why),
            "{err}"
        );
    }
    let (code, _, err) = run(&["rollout", "widen", "--percent", "120"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn the_drill_widens_rolls_back_and_widens_again_under_load_losing_nothing() {
    let estate = common::block_on(async {
        common::lab()
            .seeded("rollout_drill", 200, Modes::Legacy)
            .await
    });
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rollout-drill");
    let _ = std::fs::remove_dir_all(&out);
    let scenario =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/cutover_mixed.toml");
    let run = common::rehearse_cmd()
        .args(["--primary-url", &estate.primary.url])
        .args(["--replica-url", &estate.replica.as_ref().unwrap().url])
        .args(["--redis-url", &estate.redis.as_ref().unwrap().url])
        .args(["rollout", "drill", "-q", "--under"])
        .arg(&scenario)
        .args([
            "--steps",
            "10,50,100",
            "--hold",
            "3s",
            "--steady",
            "2s",
            "--rate",
            "60",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r = rehearse::rollout::drill::read(&out)
        .unwrap()
        .expect("rollout.json");
    assert!(r.ok && r.reasons.is_empty(), "{:?}", r.reasons);
    let holds: Vec<&str> = r
        .spans
        .iter()
        .filter(|s| s.kind == rehearse::rollout::drill::SpanKind::Hold)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        holds,
        ["10%", "50%", "0% (rolled back)", "50% again", "100%"]
    );
    // Every held step's writes were checked on both sides, and the verifies passed.
    for s in r.spans.iter().filter(|s| s.name.starts_with("check")) {
        assert_eq!(s.ledger.len(), 2, "{}", s.name);
        assert!(s
            .ledger
            .iter()
            .all(|l| l.missing + l.differing + l.resurrected == 0));
    }
    assert!(r
        .final_ledger
        .iter()
        .all(|l| l.missing == 0 && l.acknowledged > 0));
    assert_eq!(r.final_verify.as_ref().map(|v| v.0), Some(true));
    // Both cohorts measured at 50%; only legacy at 0%, only partitioned at 100%.
    let n = |span: &str, m: Mode| -> u64 {
        r.cohorts
            .iter()
            .filter(|c| c.span == span && c.cohort == m)
            .map(|c| c.requests)
            .sum()
    };
    assert!(
        n("50%", Mode::Legacy) > 20 && n("50%", Mode::Partitioned) > 20,
        "{:?}",
        r.cohorts
    );
    assert_eq!(n("0% (rolled back)", Mode::Partitioned), 0);
    assert_eq!(n("100%", Mode::Legacy), 0);
    // The 50% cohort came back unchanged after the rollback: the same
    // organizations, not merely as many (their ids' digest).
    let fifty: Vec<(u64, String)> = r
        .spans
        .iter()
        .filter(|s| s.name == "-> 50%")
        .filter_map(|s| {
            s.change
                .as_ref()
                .map(|c| (c.partitioned_after, c.partitioned_digest.clone()))
        })
        .collect();
    assert_eq!(fifty.len(), 2);
    assert_eq!(fifty[0], fifty[1]);
    assert_eq!(fifty[0].1.len(), 16, "{fifty:?}");
    assert!(stdout.contains("partitioned p99 ms"), "{stdout}");

    // run.json carries the steps as markers and the cohort percentiles; the report leads with the drill.
    let run = rehearse::run::read(&out).unwrap();
    assert!(run.markers.iter().any(|m| m.name == "0% (rolled back)"));
    assert_eq!(run.cohorts, r.cohorts);
    let report = common::rehearse_cmd()
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("rollout drill PASS") && html.contains("id=\"rollout-cohorts\""));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.starts_with("# rollout drill PASS"), "{md}");
}
