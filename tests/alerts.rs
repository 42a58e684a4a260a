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
    // firing case must then fail), and loosen the lag threshold to 0 (the
    // calm replica, which must not fire, then fires).
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
    let lab = common::lab();
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
