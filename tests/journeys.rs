//! `rehearse serve` and `rehearse journeys` on the lab: the API answers
//! what `rehearse query` answers, a Goose journey's counts in run.json are
//! Goose's own, and the service rides out Redis and the replica stopping
//! and is unready while the primary is stopped.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rehearse::lab::{Component, LabCtx};
use rehearse::schema::{Mode, Modes};

/// Tests here stop lab components or move the flag: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DB: &str = "journeys";
const ORGS: u64 = 60;

/// The estate flags of the test database on the lab (replica and Redis included).
fn estate_args() -> Vec<String> {
    let lab = common::lab();
    vec![
        "--primary-url".into(),
        lab.primary_url(DB),
        "--replica-url".into(),
        lab.replica_url(DB),
        "--redis-url".into(),
        lab.state.urls.redis.clone(),
        "--lab-dir".into(),
        lab.state.dir.display().to_string(),
    ]
}

async fn seeded() {
    static SEEDED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SEEDED
        .get_or_init(|| async {
            common::lab().seeded(DB, ORGS, Modes::Both).await;
        })
        .await;
}

/// A `rehearse serve` process, killed when dropped.
struct Service {
    child: Child,
    addr: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Service {
    let mut child = common::rehearse_cmd()
        .args(estate_args())
        .args(["serve", "--addr", "127.0.0.1:0", "--pool-size", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("serve printed no address: {line:?}"))
        .to_string();
    Service { child, addr }
}

fn get(s: &Service, path: &str) -> (u16, serde_json::Value) {
    let r = rehearse::http::get(&s.addr, path, Duration::from_secs(10)).unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body)),
    )
}

fn query_json(args: &[&str]) -> serde_json::Value {
    let out = common::rehearse_cmd()
        .args(estate_args())
        .arg("query")
        .args(args)
        .args(["--json", "--cache", "off"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_what_query_answers() {
    let _one = SERIAL.lock().await;
    seeded().await;
    let s = serve();
    for org in [1, 7, 23, ORGS as i64] {
        let o = org.to_string();
        for (path, args) in [
            (
                format!("/orgs/{org}/dashboard?days=7"),
                vec!["dashboard", "--org", &o, "--days", "7"],
            ),
            (format!("/orgs/{org}/pnl"), vec!["pnl", "--org", &o]),
            (
                format!("/orgs/{org}/properties?days=7"),
                vec!["properties", "--org", &o, "--days", "7"],
            ),
            (
                format!("/orgs/{org}/ledger?days=7&limit=20"),
                vec!["ledger", "--org", &o, "--days", "7", "--limit", "20"],
            ),
        ] {
            let (status, api) = get(&s, &path);
            assert_eq!(status, 200, "{path}: {api}");
            let q = query_json(&args);
            assert_eq!(api["data"], q["data"], "{path}");
            assert_eq!(api["query"], q["query"], "{path}");
            assert_eq!(api["mode"], q["mode"], "{path}");
        }
    }
    let (status, api) = get(&s, "/portfolio?days=7&top=5");
    assert_eq!(status, 200);
    let q = query_json(&["portfolio", "--days", "7", "--top", "5"]);
    assert_eq!(api["data"], q["data"]);
    assert_eq!(api["data"].as_array().unwrap().len(), 5);
    // A ledger page's cursor walks on to the next page.
    let (_, p1) = get(&s, "/orgs/7/ledger?days=7&limit=3");
    let after = p1["next_after"]
        .as_str()
        .expect("a first page of 3 has a next");
    let (_, p2) = get(&s, &format!("/orgs/7/ledger?days=7&limit=3&after={after}"));
    let q2 = query_json(&[
        "ledger", "--org", "7", "--days", "7", "--limit", "3", "--after", after,
    ]);
    assert_eq!(p2["data"], q2["data"]);
    assert_ne!(p2["data"], p1["data"]);
    // Statuses: unknown organization, bad input, unknown route.
    let (status, body) = get(&s, "/orgs/99999/pnl");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("99999"), "{body}");
    let (status, body) = get(&s, "/orgs/7/ledger?limit=0");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("limit"), "{body}");
    let (status, body) = get(&s, "/orgs/7/dashboard?dayz=3");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("dayz"), "{body}");
    assert_eq!(get(&s, "/orgs/7/balance").0, 404);
    assert_eq!(get(&s, "/readyz").0, 200);
}

/// Goose's per-transaction (requests, failures) from its JSON report.
fn goose_report_counts(path: &Path) -> std::collections::BTreeMap<String, (u64, u64)> {
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for t in g["transaction_metrics"]
        .as_array()
        .expect("transaction_metrics")
    {
        if t["is_scenario"].as_bool().unwrap() || t["name"] == "Aggregated" {
            continue;
        }
        let e: &mut (u64, u64) = out
            .entry(t["name"].as_str().unwrap().to_string())
            .or_default();
        e.0 += t["number_of_requests"].as_u64().unwrap();
        e.1 += t["number_of_failures"].as_u64().unwrap();
    }
    out
}

async fn entries_written_by_journeys(mode: Mode) -> i64 {
    let c = rehearse::db::connect(&common::lab().primary_url(DB))
        .await
        .unwrap();
    let t = mode.tables();
    c.query_one(
        &format!(
            "SELECT (SELECT count(*) FROM {} WHERE description = 'rehearse journeys') \
                  + (SELECT count(*) FROM {} WHERE description = 'rehearse journeys')",
            t.revenue, t.expense
        ),
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_through_serve_writes_goose_reports_and_counts_that_match_them() {
    let _one = SERIAL.lock().await;
    seeded().await;
    let s = serve();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("journeys-run");
    let _ = std::fs::remove_dir_all(&dir);
    let c = rehearse::db::connect(&common::lab().primary_url(DB))
        .await
        .unwrap();
    let flag_before = rehearse::repo::routing::read_flag(&c).await.unwrap();
    let before = [
        entries_written_by_journeys(Mode::Legacy).await,
        entries_written_by_journeys(Mode::Partitioned).await,
    ];
    let out = common::rehearse_cmd()
        .args(estate_args())
        .args([
            "journeys",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/journeys_hotel.toml"),
            "--target",
            &format!("http://{}", s.addr),
            "--duration",
            "6s",
            "--users",
            "6",
            "--hatch-rate",
            "6",
            "--quiet",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Too few samples for a p95 in 6 s: invalid, never a pass.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("closed-loop (coordinated-omission mitigation disabled)"),
        "{stdout}"
    );
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["verdict"], "invalid");
    assert_eq!(run["journeys"]["closed_loop"], true);
    assert_eq!(run["journeys"]["co_mitigation"], "disabled");
    let hlog = common::hlog_counts(&dir.join("latency.hlog"));
    let variants = run["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    for v in variants {
        let name = v["variant"]["name"].as_str().unwrap();
        assert_eq!(v["closed_loop"], true);
        for ext in ["html", "json", "md"] {
            let f = dir.join(format!("goose-{name}.{ext}"));
            assert!(
                std::fs::metadata(&f)
                    .map(|m| m.len() > 500)
                    .unwrap_or(false),
                "{f:?}"
            );
        }
        let goose = goose_report_counts(&dir.join(format!("goose-{name}.json")));
        let ops = v["operations"].as_array().unwrap();
        assert_eq!(goose.len(), ops.len(), "{goose:?}");
        for o in ops {
            let op = o["name"].as_str().unwrap();
            let errors: u64 = o["errors"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            assert!(o["count"].as_u64().unwrap() > 0, "{name}/{op} ran");
            assert_eq!(
                goose.get(op).copied(),
                Some((o["count"].as_u64().unwrap(), errors)),
                "{name}/{op}: Goose's (requests, failures) against run.json's"
            );
            assert_eq!(errors, 0, "{name}/{op}: {}", o["errors"]);
            assert_eq!(
                hlog[format!("{name}/{op}/response")]["count"].as_u64(),
                o["ok"].as_u64(),
                "{name}/{op}: the interval log holds every timed request"
            );
        }
    }
    // Each variant wrote through its own mode's tables, and the flag is back.
    let after = [
        entries_written_by_journeys(Mode::Legacy).await,
        entries_written_by_journeys(Mode::Partitioned).await,
    ];
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "{before:?} -> {after:?}"
    );
    assert_eq!(
        rehearse::repo::routing::read_flag(&c).await.unwrap(),
        flag_before
    );
    // report and gate read it as a run.
    let report = common::rehearse_cmd()
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(dir.join("summary.md").exists());
    let gate = common::rehearse_cmd()
        .arg("gate")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        gate.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&gate.stdout)
    );
    // Judged both ways, from the same run: a maximum is judged as observed,
    // so a budget far above it passes and one under it fails.
    for (limit, code, word) in [("60s", 0, "PASS"), ("1us", 1, "FAIL")] {
        let file = dir.join(format!("max-{limit}.toml"));
        std::fs::write(
            &file,
            format!("[budgets.\"owner_morning.dashboard\"]\nmax = \"{limit}\"\n"),
        )
        .unwrap();
        let gate = common::rehearse_cmd()
            .arg("gate")
            .arg(&dir)
            .arg("--budgets")
            .arg(&file)
            .output()
            .unwrap();
        let md = String::from_utf8_lossy(&gate.stdout);
        assert_eq!(gate.status.code(), Some(code), "max {limit}: {md}");
        assert!(md.contains(&format!("## rehearse gate: {word}")), "{md}");
        assert!(md.contains("owner_morning.dashboard max"), "{md}");
    }
}

/// Status counts of reads sent while something is stopped.
fn hammer(addr: &str, for_: Duration) -> std::collections::BTreeMap<u16, u64> {
    let mut out = std::collections::BTreeMap::new();
    let end = Instant::now() + for_;
    let mut i = 0i64;
    while Instant::now() < end {
        i += 1;
        let org = 1 + i % ORGS as i64;
        let path = match i % 3 {
            0 => format!("/orgs/{org}/dashboard?days=7"),
            1 => format!("/orgs/{org}/pnl"),
            _ => format!("/orgs/{org}/ledger?days=7&limit=10"),
        };
        let status = rehearse::http::get(addr, &path, Duration::from_secs(10))
            .map(|r| r.status)
            .unwrap_or(0);
        *out.entry(status).or_default() += 1;
    }
    out
}

/// POST a JSON body; the status.
fn post(addr: &str, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn metric(s: &Service, prefix: &str) -> f64 {
    let r = rehearse::http::get(&s.addr, "/metrics", Duration::from_secs(5)).unwrap();
    r.body
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_rides_out_redis_and_the_replica_and_is_unready_without_the_primary() {
    let _one = SERIAL.lock().await;
    seeded().await;
    let s = serve();
    let mut ctx = LabCtx::open(&common::lab().state.dir).unwrap();
    ctx.set_verbose(false);
    assert_eq!(
        hammer(&s.addr, Duration::from_secs(1))
            .keys()
            .collect::<Vec<_>>(),
        vec![&200]
    );

    ctx.stop(Component::Redis).unwrap();
    let during = hammer(&s.addr, Duration::from_secs(2));
    let cache_errors = metric(&s, "rehearse_cache_errors_total");
    ctx.start(Component::Redis).await.unwrap();
    assert_eq!(
        during.keys().collect::<Vec<_>>(),
        vec![&200],
        "Redis stopped: {during:?}"
    );
    assert!(cache_errors > 0.0, "the cache's errors are counted");

    let moved = |s: &Service| {
        metric(s, "rehearse_repo_fallbacks_total")
            + metric(
                s,
                "rehearse_repo_replica_changes_total{variant=\"serve\",change=\"removed\"}",
            )
    };
    let fallbacks_before = moved(&s);
    ctx.stop(Component::Replica).unwrap();
    let during = hammer(&s.addr, Duration::from_secs(3));
    let fallbacks = moved(&s);
    ctx.start(Component::Replica).await.unwrap();
    assert_eq!(
        during.keys().collect::<Vec<_>>(),
        vec![&200],
        "replica stopped: {during:?}"
    );
    assert!(
        fallbacks > fallbacks_before,
        "reads fell back to the primary, counted ({fallbacks_before} -> {fallbacks})"
    );

    ctx.stop(Component::Primary).unwrap();
    let mut unready = None;
    for _ in 0..50 {
        let (status, body) = get(&s, "/readyz");
        if status == 503 {
            unready = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let write_status = post(
        &s.addr,
        "/orgs/7/entries",
        r#"{"kind":"revenue","property_id":1,"category":"rooms","amount_cents":100}"#,
    );
    let (health, _) = get(&s, "/healthz");
    ctx.start(Component::Primary).await.unwrap();
    let unready = unready.expect("/readyz turns 503 while the primary is stopped");
    assert_eq!(unready["ready"], false);
    assert_eq!(health, 200, "the process itself is healthy");
    assert_eq!(
        write_status, 503,
        "a write while the primary is stopped is 503"
    );
    let mut ready = false;
    for _ in 0..100 {
        if get(&s, "/readyz").0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz answers 200 again once the primary is back");
}

#[test]
fn a_malformed_journeys_file_is_named_at_its_line_and_column() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let f = dir.join("bad_journeys.toml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/journeys_hotel.toml"
    ))
    .unwrap()
    .replacen("pages = 2", "pages = \"two\"", 1);
    std::fs::write(&f, &text).unwrap();
    let out = common::rehearse_cmd()
        .arg("check")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text[..text.find("pages = \"two\"").unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert!(
        err.contains(&format!("bad_journeys.toml:{line}:9:")),
        "{err}"
    );
}
