//! The alert rules under `observability/alerts`: their promtool unit tests
//! pass, and each rule is needed by them (dropping it, or loosening its
//! threshold, fails them); and the exporter queries the partition alerts
//! read give what the rules expect on a seeded lab database.

#![allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rehearse::seed::{self, Profile, SeedOptions};

fn observability() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("observability")
}

fn promtool(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("promtool did not start ({e}): `bash ci/test.sh` installs it (Debian's prometheus package)"))
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The rules file without the rule named `alert`.
fn without_rule(rules: &str, alert: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in rules.lines() {
        let t = line.trim_start();
        if t.starts_with("- alert:") || t.starts_with("- name:") {
            skipping = t == format!("- alert: {alert}");
        }
        if !skipping {
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

#[test]
fn the_alert_rules_pass_their_unit_tests_and_each_rule_is_needed_by_them() {
    let dir = observability().join("alerts");
    let check = promtool(&["check", "rules", "rehearse.rules.yml"], &dir);
    assert!(check.status.success(), "{}", text(&check));
    let test = promtool(&["test", "rules", "rehearse.rules.test.yml"], &dir);
    assert!(test.status.success(), "{}", text(&test));

    // Breaking what they check: in a copy, drop each rule in turn (its
    // firing case must then fail), and loosen the thresholds (the lag to 0,
    // the cache ratio to any ratio under 50%: the calm replica and the
    // steady 45% cache, which must not fire, then fire).
    let rules = std::fs::read_to_string(dir.join("rehearse.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("rehearse.rules.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 12, "{alerts:?}");
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("alerts-mutants");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("rehearse.rules.test.yml"), &tests).unwrap();
    let mut mutants: Vec<(String, String)> = alerts
        .iter()
        .map(|a| (format!("without {a}"), without_rule(&rules, a)))
        .collect();
    let loose = rules.replace("> 64 * 1024 * 1024", "> 0");
    assert_ne!(loose, rules);
    mutants.push(("ReplicaLagHigh at 0 bytes".into(), loose));
    for (what, from, to) in [
        (
            "PgBouncerClientsWaiting at any wait",
            "(pgbouncer_pools_client_maxwait_seconds) > 1",
            "(pgbouncer_pools_client_maxwait_seconds) > 0",
        ),
        (
            "SummaryDrift counting the replica's exporter too",
            "rehearse_summary_drift_rows{role=\"primary\"}",
            "rehearse_summary_drift_rows",
        ),
        (
            "CacheHitRatioCollapsed on any ratio under 50%, not only a fall",
            ") < 0.5 * (",
            ") < 100 * (",
        ),
    ] {
        let m = rules.replace(from, to);
        assert_ne!(m, rules, "{what}: the rule text changed");
        mutants.push((what.into(), m));
    }
    for (what, text_) in mutants {
        std::fs::write(work.join("rehearse.rules.yml"), text_).unwrap();
        let out = promtool(&["test", "rules", "rehearse.rules.test.yml"], &work);
        assert!(
            !out.status.success(),
            "the unit tests still pass {what}: {}",
            text(&out)
        );
    }
}

/// GET `path` from 127.0.0.1:`port`; None when nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The exporter, stopped when dropped.
struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The samples of `metric` whose labels include `parent="..."` of ours.
fn samples<'a>(exposition: &'a str, metric: &str) -> Vec<(&'a str, f64)> {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_queries_give_partition_rows_and_find_a_parent_never_analyzed() {
    let lab = common::lab_monitored();
    let url = lab.fresh_database("alerts_queries").await;
    let estate = lab.estate(&url);
    let mut opts = SeedOptions::from_profile(Profile::Ci);
    opts.params.orgs = 200;
    opts.params.days = 3;
    opts.partitions = Some(4);
    opts.verbose = false;
    seed::seed(&estate, &opts).await.unwrap();

    let port = common::port_base("alerts-exporter");
    let _exporter = Exporter(
        Command::new("prometheus-postgres-exporter")
            .env("DATA_SOURCE_NAME", format!("{url}?sslmode=disable"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--extend.query-path={}",
                observability().join("postgres-queries.yml").display()
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus-postgres-exporter did not start ({e}): `bash ci/test.sh` installs it")),
    );
    let scrape = || -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(b) =
                http_get(port, "/metrics").filter(|b| b.contains("rehearse_parent_analyzed"))
            {
                return b;
            }
            assert!(
                Instant::now() < deadline,
                "the exporter gave no rehearse_ series"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let m = scrape();
    // Three partitioned parents of four partitions each, every one with rows.
    let rows = samples(&m, "rehearse_partition_rows");
    assert_eq!(rows.len(), 12, "{rows:?}");
    assert!(rows.iter().all(|(_, v)| *v > 0.0), "{rows:?}");
    // The seed analyzes the parents.
    let analyzed = samples(&m, "rehearse_parent_analyzed");
    assert_eq!(analyzed.len(), 3, "{analyzed:?}");
    assert!(analyzed.iter().all(|(_, v)| *v == 1.0), "{analyzed:?}");

    // A parent filled but never analyzed itself (its partition was): 0.
    let c = rehearse::db::connect(&url).await.unwrap();
    c.batch_execute(
        "CREATE TABLE probe_parent (organization_id int8) PARTITION BY HASH (organization_id);
         CREATE TABLE probe_parent_p0 PARTITION OF probe_parent FOR VALUES WITH (MODULUS 1, REMAINDER 0);
         INSERT INTO probe_parent SELECT g FROM generate_series(1, 1000) g;
         ANALYZE probe_parent_p0;",
    )
    .await
    .unwrap();
    let m = scrape();
    let probe: Vec<_> = samples(&m, "rehearse_parent_analyzed")
        .into_iter()
        .filter(|(l, _)| l.contains("parent=\"probe_parent\""))
        .collect();
    assert_eq!(probe.len(), 1, "{m:.2000}");
    assert_eq!(probe[0].1, 0.0);
    c.batch_execute("ANALYZE probe_parent").await.unwrap();
    // The statistics collector reports the analyze shortly after.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape();
        let v = samples(&m, "rehearse_parent_analyzed")
            .into_iter()
            .find(|(l, _)| l.contains("parent=\"probe_parent\""))
            .map(|x| x.1);
        if v == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "probe_parent still reads {v:?} after ANALYZE"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A PromQL query through the lab Prometheus's HTTP API: (status, results).
fn prom_query(prom: &str, expr: &str) -> (String, usize) {
    let r = rehearse::http::get(
        prom,
        &format!("/api/v1/query?query={}", rehearse::http::encode(expr)),
        Duration::from_secs(5),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let n = v["data"]["result"].as_array().map_or(0, |a| a.len());
    (v["status"].as_str().unwrap_or("?").to_string(), n)
}

/// Every PromQL expression of a Grafana dashboard: (panel title, expr),
/// panels inside rows included; and the annotations' expressions.
fn dashboard_exprs(d: &serde_json::Value) -> (Vec<(String, String)>, Vec<String>) {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    p["title"].as_str().unwrap_or("?").to_string(),
                    t["expr"]
                        .as_str()
                        .expect("every target has an expr")
                        .to_string(),
                ));
            }
            walk(&p["panels"], out);
        }
    }
    let mut panels = Vec::new();
    walk(&d["panels"], &mut panels);
    let notes = d["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["expr"].as_str().map(str::to_string))
        .collect();
    (panels, notes)
}

fn cli(lab: &common::TestLab, args: &[&str]) -> (i32, String, String) {
    let out = common::rehearse_cmd()
        .env("REHEARSE_LAB_DIR", &lab.state.dir)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// On the monitored lab: a run's own metrics are scraped and pass promtool,
/// every panel of the dashboard returns data, and the alert drill passes
/// for every fault; lengthening a rule's `for:` makes the drill fail.
#[test]
fn the_lab_scrapes_a_run_every_dashboard_panel_has_data_and_the_alert_drill_passes() {
    let lab = common::lab_monitored();
    let prom = lab
        .state
        .prometheus_url()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let (code, _, err) = cli(lab, &["seed", "--profile", "ci", "--mode", "both"]);
    assert_eq!(code, 0, "{err}");
    // A reconcile run, for the maintenance panels (the exporter reads rehearse_job_runs).
    let (code, out, err) = cli(lab, &["job", "run", "reconcile"]);
    assert_eq!(code, 0, "{out}{err}");

    // A run, in the background; its metrics on the lab's port.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("alerts-live-run");
    let _ = std::fs::remove_dir_all(&out);
    let run = common::rehearse_cmd()
        .env("REHEARSE_LAB_DIR", &lab.state.dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // A scenario with p99 budgets, for the budget panel's series.
        .args([
            "run",
            "scenarios/mixed_peak.toml",
            "--variant",
            "partitioned",
            "--duration",
            "45s",
            "-q",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Every target up, rehearse's own included, while the run goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = rehearse::http::get(&prom, "/api/v1/targets", Duration::from_secs(3)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let targets = v["data"]["activeTargets"].as_array().unwrap().clone();
        let down: Vec<String> = targets
            .iter()
            .filter(|t| t["health"] != "up")
            .map(|t| format!("{} {}", t["labels"]["job"], t["lastError"]))
            .collect();
        if down.is_empty() && targets.len() == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "targets not up while a run goes: {down:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The histogram appears once the run's first interval has been merged
    // (a second or so after the targets are up; more on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let exposition = http_get(lab.state.ports.rehearse, "/metrics").unwrap();
        let body = exposition.split_once("\r\n\r\n").unwrap().1.to_string();
        if body.contains("rehearse_request_duration_seconds_bucket") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no latency histogram: {body:.2000}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let check = check.wait_with_output().unwrap();
    assert!(
        check.status.success(),
        "promtool check metrics: {}",
        text(&check)
    );

    // Rates over a minute need a few scrapes of the run.
    std::thread::sleep(Duration::from_secs(30).saturating_sub(started.elapsed()));
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(observability().join("dashboards/partitioned-rollout.json"))
            .unwrap(),
    )
    .unwrap();
    let rows: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for want in ["Partitions", "Caches", "Replicas", "PgBouncer", "Harness"] {
        assert!(
            rows.iter().any(|r| r.starts_with(want)),
            "no row {want}: {rows:?}"
        );
    }
    let (panels, notes) = dashboard_exprs(&d);
    assert!(panels.len() >= 15, "{panels:?}");
    let mut empty = Vec::new();
    for (title, expr) in &panels {
        let (status, n) = prom_query(&prom, expr);
        assert_eq!(status, "success", "{title}: {expr} does not parse");
        if n == 0 {
            empty.push(format!("{title}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data during a run: {empty:#?}"
    );
    for expr in &notes {
        assert_eq!(prom_query(&prom, expr).0, "success", "annotation {expr}");
    }
    // The data check can fail: a renamed metric returns nothing.
    let (_, first) = &panels[0];
    let broken = first.replace("rehearse_partition_rows", "rehearse_partition_row");
    assert_ne!(&broken, first);
    assert_eq!(prom_query(&prom, &broken), ("success".to_string(), 0));
    let run_out = run.wait_with_output().unwrap();
    let code = run_out.status.code().unwrap_or(-1);
    assert!(
        [0, 1, 3].contains(&code),
        "the run ended with {code}: {}",
        String::from_utf8_lossy(&run_out.stderr)
    );

    // The alert drill, every fault. The ci estate has one chain of hundreds
    // of properties among 500 organizations: one partition far above the
    // median, a true PartitionSkew, named as standing.
    let drill_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("alerts-drill");
    let _ = std::fs::remove_dir_all(&drill_dir);
    let d = drill_dir.to_str().unwrap();
    let (code, out, err) = cli(
        lab,
        &[
            "alerts",
            "drill",
            "--steady",
            "15s",
            "--standing",
            "PartitionSkew",
            "--json",
            "--out",
            d,
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    common::assert_alert_drill_passed(&report);
    assert!(drill_dir.join("alerts-drill.md").exists());
    // What a user reads: the report leads with the drill's verdict and table.
    let (code, out, err) = cli(lab, &["report", d]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("verdict alert drill PASS"), "{out}");
    let html = std::fs::read_to_string(drill_dir.join("report.html")).unwrap();
    assert!(html.contains("alert drill PASS</span>"), "{html:.600}");
    assert!(html.contains("<section id=\"alert-drill\">"));
    assert_eq!(
        html.matches("<td class=\"pass\">ok</td>").count(),
        7,
        "seven expected alerts (summary-drift's two included), all ok"
    );
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(drill_dir.join("run.json")).unwrap())
            .unwrap();
    let markers: Vec<&str> = run_json["markers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(
        markers,
        [
            "steady",
            "replica-down",
            "replica-lag",
            "redis-down",
            "pgbouncer-down",
            "summary-drift"
        ]
    );

    // Breaking what it checks: SummaryDrift's for: lengthened to 5 minutes
    // in the lab's loaded rules (SIGHUP reloads them); the drill must fail.
    let rules_path = lab
        .state
        .dir
        .join("monitoring/prometheus/rules/rehearse.rules.yml");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let slow = {
        let i = rules.find("- alert: SummaryDrift").unwrap();
        let j = i + rules[i..].find("for: 10s").unwrap();
        format!("{}for: 5m{}", &rules[..j], &rules[j + "for: 10s".len()..])
    };
    let reload = |text: &str| {
        std::fs::write(&rules_path, text).unwrap();
        let ctx = rehearse::lab::LabCtx::open(&lab.state.dir).unwrap();
        let pid = ctx.pid(rehearse::lab::Component::Prometheus).unwrap();
        unsafe { libc::kill(pid, libc::SIGHUP) };
        std::thread::sleep(Duration::from_secs(3));
    };
    reload(&slow);
    let (code, out, err) = cli(
        lab,
        &[
            "alerts",
            "drill",
            "--steady",
            "5s",
            "--faults",
            "summary-drift",
            "--standing",
            "PartitionSkew",
            "--out",
            d,
        ],
    );
    reload(&rules);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("SummaryDrift never fired"), "{out}");
}
