//! `rehearse readiness` on result directories the lab builds for real: a
//! suite run in both modes, the cutover drill, the rollout drill, the alert
//! drill and a reconcile run give GO; a drill that lost an acknowledged
//! write gives NO-GO naming it and the count; a missing alert drill gives
//! UNKNOWN naming it; an invalid suite run gives UNKNOWN, never GO. The page
//! is read as a browser renders it.

mod common;

use std::path::{Path, PathBuf};

use rehearse::schema::Modes;

/// A small suite scenario: both modes (the default variants), budgets a
/// lab run meets with room, a short open phase.
const SUITE: &str = r#"
name = "readiness_suite"
description = "Dashboards and revenue entries at 40 requests/s, both modes"
seed = 42
warmup = "2s"

[[phase]]
name = "steady"
duration = "12s"
rate = 40
max_in_flight = 16

[[mix]]
operation = "dashboard"
weight = 2

[[mix]]
operation = "record_revenue"
weight = 1

# A short run cannot bound an error rate of a few percent (hundreds of
# requests straddle it): latency budgets far above what the lab does.
[budgets.dashboard]
p50 = "2s"

[budgets.record_revenue]
p50 = "2s"
"#;

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// rehearse against the lab's own database, or with `pre` (estate flags) first.
fn cli(lab: &common::TestLab, pre: &[&str], args: &[&str]) -> (i32, String, String) {
    let out = common::rehearse_cmd()
        .env("REHEARSE_LAB_DIR", &lab.state.dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(pre)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn readiness(lab: &common::TestLab, dir: &Path) -> (i32, serde_json::Value, String) {
    let d = dir.to_str().unwrap();
    let (code, out, err) = cli(lab, &[], &["readiness", d, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("readiness --json printed no JSON ({e}): {out}\n{err}"));
    (code, v, err)
}

fn piece<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no piece {id}: {r:#}"))
}

#[test]
fn each_verdict_from_real_result_directories() {
    let lab = common::lab_monitored();
    let root = tmp("readiness");
    std::fs::create_dir_all(&root).unwrap();

    // The suite, reconcile and the alert drill run on the lab's own
    // database (both modes); the two drills that move an estate from legacy
    // each on a database of their own.
    let (code, _, err) = cli(lab, &[], &["seed", "--profile", "ci", "--mode", "both"]);
    assert_eq!(code, 0, "{err}");
    let scenario = root.join("readiness_suite.toml");
    std::fs::write(&scenario, SUITE).unwrap();
    let suite = root.join("suite");
    let (code, out, err) = cli(
        lab,
        &[],
        &[
            "run",
            scenario.to_str().unwrap(),
            "-q",
            "--out",
            suite.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "the suite run passes: {out}\n{err}");
    let (code, out, err) = cli(
        lab,
        &[],
        &[
            "job",
            "run",
            "reconcile",
            "--out",
            root.join("jobs").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "reconcile is clean: {out}{err}");
    let alerts = root.join("alerts");
    let (code, out, err) = cli(
        lab,
        &[],
        &[
            "alerts",
            "drill",
            "--steady",
            "5s",
            "--faults",
            "summary-drift",
            "--standing",
            "PartitionSkew",
            "-q",
            "--out",
            alerts.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "the alert drill passes: {out}\n{err}");

    let under = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cutover_mixed.toml");
    let under = under.to_str().unwrap();
    let drill_estate = |name: &str| {
        let e = common::block_on({
            let name = name.to_string();
            async move { lab.seeded(&name, 150, Modes::Legacy).await }
        });
        vec![
            "--primary-url".to_string(),
            e.primary.url.clone(),
            "--replica-url".into(),
            e.replica.as_ref().unwrap().url.clone(),
            "--redis-url".into(),
            e.redis.as_ref().unwrap().url.clone(),
        ]
    };
    let c = drill_estate("readiness_cutover");
    let c: Vec<&str> = c.iter().map(String::as_str).collect();
    let cutover = root.join("cutover");
    let (code, out, err) = cli(
        lab,
        &c,
        &[
            "cutover",
            "drill",
            "-q",
            "--under",
            under,
            "--steady",
            "2s",
            "--soak",
            "3s",
            "--rate",
            "40",
            "--race-writers",
            "0",
            "--out",
            cutover.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "the cutover drill passes: {out}\n{err}");
    let r = drill_estate("readiness_rollout");
    let r: Vec<&str> = r.iter().map(String::as_str).collect();
    let rollout = root.join("rollout");
    let (code, out, err) = cli(
        lab,
        &r,
        &[
            "rollout",
            "drill",
            "-q",
            "--under",
            under,
            "--steps",
            "10,50,100",
            "--rollback-at",
            "50",
            "--hold",
            "3s",
            "--steady",
            "2s",
            "--rate",
            "40",
            "--out",
            rollout.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "the rollout drill passes: {out}\n{err}");
    for d in [&suite, &cutover, &rollout, &alerts] {
        let (code, _, err) = cli(lab, &[], &["report", d.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }

    // Everything present and passing: GO.
    let (code, r, err) = readiness(lab, &root);
    assert_eq!(code, 0, "GO: {r:#}\n{err}");
    assert_eq!(r["verdict"], "go");
    for id in [
        "suite",
        "cutover-drill",
        "rollout-drill",
        "alert-drill",
        "reconcile",
    ] {
        assert_eq!(piece(&r, id)["state"], "pass", "{id}: {r:#}");
    }
    // Legacy against partitioned, per operation, p50, p99 and throughput.
    let modes = r["modes"].as_array().unwrap();
    for op in ["dashboard", "record_revenue"] {
        for m in ["p50", "p99", "throughput"] {
            assert!(
                modes
                    .iter()
                    .any(|x| x["operation"] == op && x["metric"] == m),
                "{op} {m}: {modes:#?}"
            );
        }
    }
    assert!(r["estate_note"]
        .as_str()
        .unwrap()
        .contains("smaller than the platform"));
    // As a reviewer reads it.
    let page = common::render_in_chromium(&root.join("readiness.html"));
    common::assert_page_reads_well(&page);
    assert!(
        page.first_heading.1.starts_with("GO"),
        "{:?}",
        page.first_heading
    );
    for t in ["modes-table", "evidence-table"] {
        assert!(page.tables.iter().any(|x| x == t), "{:?}", page.tables);
    }
    assert!(
        page.charts
            .iter()
            .any(|c| c.0 == "chart-readiness-p99-ratio"),
        "{:?}",
        page.charts
    );
    let md = std::fs::read_to_string(root.join("readiness.md")).unwrap();
    assert!(
        md.starts_with("# GO USE_PARTITIONED_TABLES readiness"),
        "{md:.300}"
    );

    // A drill that lost acknowledged writes: NO-GO, naming it and the count.
    let nogo = tmp("readiness-nogo");
    copy_dir(&root, &nogo);
    edit_json(&nogo.join("cutover/cutover.json"), |v| {
        v["final_ledger"][0]["missing"] = 2.into();
    });
    let (code, r, _) = readiness(lab, &nogo);
    assert_eq!(code, 1, "NO-GO: {r:#}");
    assert_eq!(r["verdict"], "no-go");
    let reasons = r["reasons"].to_string();
    assert!(
        reasons.contains("Cutover drill FAIL") && reasons.contains("2 acknowledged writes"),
        "{reasons}"
    );

    // No alert drill: UNKNOWN, naming it.
    let unknown = tmp("readiness-unknown");
    copy_dir(&root, &unknown);
    std::fs::remove_dir_all(unknown.join("alerts")).unwrap();
    let (code, r, _) = readiness(lab, &unknown);
    assert_eq!(code, 3, "UNKNOWN: {r:#}");
    assert_eq!(r["verdict"], "unknown");
    assert_eq!(piece(&r, "alert-drill")["state"], "unknown");
    assert!(
        r["reasons"].to_string().contains("Alert drill UNKNOWN"),
        "{r:#}"
    );
    let page = common::render_in_chromium(&unknown.join("readiness.html"));
    common::assert_page_reads_well(&page);
    assert!(page.first_heading.1.starts_with("UNKNOWN"));

    // An alert drill that was interrupted (its workload's run says so;
    // alerts-drill.json kept what it had): UNKNOWN, not a pass.
    let stopped = tmp("readiness-interrupted");
    copy_dir(&root, &stopped);
    edit_json(&stopped.join("alerts/run.json"), |v| {
        v["status"] = "interrupted".into();
    });
    let (code, r, _) = readiness(lab, &stopped);
    assert_eq!(code, 3, "UNKNOWN: {r:#}");
    assert_eq!(piece(&r, "alert-drill")["state"], "unknown");
    assert!(
        r["reasons"]
            .to_string()
            .contains("the alert drill was interrupted"),
        "{r:#}"
    );

    // An invalid suite run: UNKNOWN, never GO.
    let invalid = tmp("readiness-invalid");
    copy_dir(&root, &invalid);
    edit_json(&invalid.join("suite/run.json"), |v| {
        for variant in v["variants"].as_array_mut().unwrap() {
            if variant["variant"]["mode"] == "partitioned" {
                variant["validity"]["valid"] = false.into();
                variant["validity"]["reasons"] =
                    serde_json::json!(["achieved 31.0 requests/s against a target of 40.0"]);
            }
        }
        v["verdict"] = "invalid".into();
    });
    let (code, r, _) = readiness(lab, &invalid);
    assert_eq!(code, 3, "UNKNOWN: {r:#}");
    assert_eq!(piece(&r, "suite")["state"], "unknown");
    assert!(r["reasons"].to_string().contains("is not valid"), "{r:#}");

    // Bad input: a path that is not a directory is a usage error.
    let (code, _, err) = cli(lab, &[], &["readiness", "/nonexistent/results"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a directory of results"), "{err}");
}
