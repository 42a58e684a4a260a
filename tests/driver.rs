//! The load driver against the lab: what a run writes (checked with an
//! independent HdrHistogram reader), measurement fidelity (a known sleep, a
//! lock-induced stall in open and closed loop), and the exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rehearse::driver::{self, RunOptions};
use rehearse::estate::Estate;
use rehearse::seed::{self, Profile, SeedOptions};

/// Held for writing by the gate smoke test, whose A/A pair must not share
/// the machine with the other tests' load.
static ALONE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// One variant, for scenarios whose statement does not depend on the mode.
const ONE_VARIANT: &str =
    "\n[[variant]]\nname = \"only\"\nmode = \"legacy\"\nreads = \"primary\"\ncache = false\n";

fn scenario_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn work_dir(test: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("driver")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn run(estate: &Estate, file: &Path, out: &Path) -> driver::RunOutcome {
    let opts = RunOptions {
        scenarios: vec![file.to_path_buf()],
        out: Some(out.to_path_buf()),
        ..Default::default()
    };
    driver::run(estate, &opts).await.unwrap().pop().unwrap()
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_results_that_hdrhistograms_python_reader_decodes_to_the_same_counts() {
    let _shared = ALONE.read().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_run").await;
    let estate = lab.estate(&url);
    let mut opts = SeedOptions::from_profile(Profile::Ci);
    opts.params.orgs = 150;
    opts.params.days = 3;
    opts.partitions = Some(4);
    opts.verbose = false;
    seed::seed(&estate, &opts).await.unwrap();

    let dir = work_dir("run");
    let file = scenario_file(
        &dir,
        "everything",
        r#"
[[phase]]
duration = "2s"
rate = 150

[[phase]]
name = "second"
duration = "2s"
rate = 150
arrival = "constant"

[[mix]]
operation = "record_revenue"
weight = 3
[[mix]]
operation = "record_expense"
weight = 2
[[mix]]
operation = "adjust"
weight = 1
[[mix]]
operation = "void"
weight = 1
[[mix]]
operation = "post_batch"
weight = 1
entries = 10
[[mix]]
operation = "dashboard"
weight = 3
[[mix]]
operation = "pnl"
weight = 2
[[mix]]
operation = "properties"
weight = 2
[[mix]]
operation = "ledger"
weight = 2
[[mix]]
operation = "portfolio"
weight = 1

# A maximum needs one sample; a p99 here would leave the run unjudged (invalid).
[budgets.dashboard]
max = "10s"

# This test is about the files; the suite shares two cores with the servers
# (CI once achieved 134.6 of 142 offered in a 2 s phase: 94.8%).
[validity]
max_driver_lag = "200ms"
min_rate = 0.5
"#,
    );
    let out = dir.join("out");
    let outcome = run(&estate, &file, &out).await;
    assert_eq!(
        outcome.exit_code(),
        0,
        "{:#?}",
        outcome.result.variants[0].validity
    );

    let r = run_json(&out);
    assert_eq!(r["schema_version"], rehearse::run::SCHEMA_VERSION);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(
        r["environment"]["postgres_version"]
            .as_str()
            .unwrap()
            .split('.')
            .next(),
        Some("15")
    );
    assert_eq!(r["environment"]["dataset"]["params"]["orgs"], 150);
    let variants = r["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);

    // The interval log, read by HdrHistogram's own Python implementation.
    let decoded = common::hlog_counts(&out.join("latency.hlog"));
    let mut total = 0;
    for v in variants {
        let name = v["variant"]["name"].as_str().unwrap();
        assert_eq!(v["validity"]["valid"], true, "{}", v["validity"]);
        for op in v["operations"].as_array().unwrap() {
            let op_name = op["name"].as_str().unwrap();
            let ok = op["ok"].as_u64().unwrap();
            assert!(ok > 0, "{name}/{op_name} ran");
            assert_eq!(
                op["count"], ok,
                "{name}/{op_name}: no errors {}",
                op["errors"]
            );
            for metric in ["response", "service", "lag"] {
                let tag = format!("{name}/{op_name}/{metric}");
                assert_eq!(decoded[&tag]["count"].as_u64(), Some(ok), "{tag}");
            }
            // Percentiles in run.json agree with the histograms' own maximum.
            let max_ns = decoded[&format!("{name}/{op_name}/response")]["max"]
                .as_f64()
                .unwrap();
            let max_ms = op["response"]["max_ms"].as_f64().unwrap();
            assert!(
                (max_ns / 1e6 - max_ms).abs() <= max_ms * 0.002 + 0.002,
                "{max_ns} vs {max_ms}"
            );
            total += ok;
        }
        assert!(!v["timeline"].as_array().unwrap().is_empty());
        assert!(v["database"]["samples"].as_array().unwrap().len() >= 3);
        assert!(v["database"]["top_statements"].as_array().is_some());
    }
    // Every interval is stamped inside the run (phases hand over cleanly).
    let hlog = std::fs::read_to_string(out.join("latency.hlog")).unwrap();
    let seconds = r["seconds"].as_f64().unwrap();
    for line in hlog.lines().filter(|l| l.starts_with("Tag=")) {
        let start: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!((0.0..seconds + 1.0).contains(&start), "{line:.80}");
    }
    // 150/s for 4 s per variant, give or take the Poisson draw.
    assert!((900..=1500).contains(&total), "{total}");

    // The report of that run: charts, HTML, summary, percentile distributions.
    let rep = rehearse::report::report(&out).unwrap();
    assert_eq!(rep.verdict, "pass");
    let html = std::fs::read_to_string(&rep.html).unwrap();
    assert!(
        html.contains("<h2>Budgets</h2>") && html.contains("dashboard"),
        "budget table on top"
    );
    assert!(
        html.matches("<svg").count() > 2 * 10,
        "a spectrum and a timeline per operation, inline"
    );
    assert!(!html.contains("src=\"http"), "self-contained");
    let md = std::fs::read_to_string(&rep.summary).unwrap();
    assert!(md.contains("| pass | dashboard | legacy | max |"), "{md}");
    // As a reviewer sees it: rendered by a browser.
    let page = common::render_in_chromium(&rep.html);
    common::assert_page_reads_well(&page);
    assert!(
        page.first_heading.1.starts_with("PASS"),
        "{:?}",
        page.first_heading
    );
    for t in ["budgets", "operations"] {
        assert!(page.tables.iter().any(|x| x == t), "{:?}", page.tables);
    }
    assert!(page
        .charts
        .iter()
        .any(|c| c.0 == "chart-spectrum-dashboard"));
    // The check sees what it is for: a raw map in a cell, a heading before the verdict.
    let broken = rep.html.with_file_name("broken.html");
    let text = html.replacen("<td>", "<td>{}", 1);
    std::fs::write(&broken, &text).unwrap();
    let page = common::render_in_chromium(&broken);
    assert!(std::panic::catch_unwind(|| common::assert_page_reads_well(&page)).is_err());
    std::fs::write(&broken, html.replacen("<h1", "<h2>Contents</h2><h1", 1)).unwrap();
    let page = common::render_in_chromium(&broken);
    assert!(std::panic::catch_unwind(|| common::assert_page_reads_well(&page)).is_err());
    for png in rep
        .charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        let bytes = std::fs::read(png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{}",
            png.display()
        );
    }
    for v in variants {
        let name = v["variant"]["name"].as_str().unwrap();
        for op in v["operations"].as_array().unwrap() {
            let op_name = op["name"].as_str().unwrap();
            let hgrm =
                std::fs::read_to_string(out.join(format!("hgrm/{name}.{op_name}.response.hgrm")))
                    .unwrap();
            let count = format!("Total count    = {:>12}", op["ok"].as_u64().unwrap());
            assert!(hgrm.contains(&count), "{name}/{op_name}: {count}\n{hgrm}");
        }
    }
    // The gate: a p99 budget on the few dozen dashboards of four 1 s
    // intervals cannot be bounded, so the run is invalid, not a pass;
    // against itself as the baseline, nothing regresses.
    use rehearse::report::gate;
    let p99 = dir.join("p99.toml");
    std::fs::write(&p99, "[budgets.dashboard]\np99 = \"10s\"\n").unwrap();
    let opts = gate::GateOptions {
        run: out.clone(),
        baselines: vec![],
        budgets: Some(p99),
        settings: Default::default(),
        confidence: None,
        allow_inconclusive: false,
    };
    let g = gate::gate(&opts).unwrap();
    assert_eq!((g.verdict, g.exit_code), ("invalid", 3));
    assert!(
        g.cases
            .iter()
            .any(|c| c.message.contains("straddles") || c.message.contains("too few to tell")),
        "{}",
        gate::markdown(&g)
    );
    let xml = gate::junit(&g);
    assert!(xml.contains("<failure type=\"invalid\""), "{xml}");
    let budgets = dir.join("budgets.toml");
    std::fs::write(&budgets, "[budgets.dashboard]\nmax = \"10s\"\n").unwrap();
    let saved = gate::save_baseline(&out, &dir.join("baselines"), "main", false, false).unwrap();
    assert!(
        gate::save_baseline(&out, &dir.join("baselines"), "main", false, false).is_err(),
        "never replaced by accident"
    );
    assert!(
        gate::save_baseline(&out, &dir.join("baselines"), "main", true, false).is_err(),
        "the same run is not added twice"
    );
    // Against itself: nothing regresses, but its tail percentiles rest on
    // too few requests to tell; accepted explicitly, the gate passes.
    let itself = gate::GateOptions {
        baselines: vec![dir.join("baselines/main")],
        budgets: Some(budgets),
        ..opts
    };
    let g = gate::gate(&itself).unwrap();
    assert_eq!(g.verdict, "could not tell", "{}", gate::markdown(&g));
    let g = gate::gate(&gate::GateOptions {
        allow_inconclusive: true,
        ..itself
    })
    .unwrap();
    assert_eq!(g.verdict, "pass", "{}", gate::markdown(&g));
    assert!(!g.comparisons.is_empty());
    assert!(g
        .comparisons
        .iter()
        .flat_map(|(_, c)| &c.rows)
        .all(|r| r.change != rehearse::compare::Finding::Regression));
    assert!(saved.ends_with(g_run_id(&out)), "{}", saved.display());

    // A run that fails part way (its second variant wants a PgBouncer this
    // estate does not have) stops with the reason; run.json says failed and
    // keeps the first variant's measurements.
    let chains_only = scenario_file(
        &dir,
        "half",
        "[[phase]]\nduration = \"2s\"\nrate = 10\n[[mix]]\noperation = \"dashboard\"\nweight = 1\n\
         [[variant]]\nname = \"direct\"\nmode = \"legacy\"\n[[variant]]\nname = \"bounced\"\nmode = \"legacy\"\npool = \"pgbouncer\"\n",
    );
    let failed_dir = dir.join("failed");
    let err = driver::run(
        &estate,
        &RunOptions {
            scenarios: vec![chains_only],
            out: Some(failed_dir.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("PgBouncer"), "{err}");
    let failed = run_json(&failed_dir);
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("PgBouncer"));
    assert_eq!(failed["variants"].as_array().unwrap().len(), 1);
    assert!(
        failed["variants"][0]["operations"][0]["ok"]
            .as_u64()
            .unwrap()
            > 0
    );

    let missing = common::rehearse_cmd()
        .args(["report"])
        .arg(dir.join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is not a run directory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p99_far_under_its_budget_is_met_on_4500_requests_and_one_at_it_is_unjudged() {
    // Alone: beside the other tests' load, bursts leave a p99's requests
    // worth too few independent ones to bound it, which is the point of
    // the rule but not of this test.
    let _alone = ALONE.write().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_bound").await;
    let estate = lab.estate(&url);
    let dir = work_dir("bound");
    // 4,500 requests in 300 intervals: the sample-count rule wanted 10,000
    // for any p99 verdict. Fewer (1,500 in 10 s) decided alone, but beside
    // the other tests' load the bursts left them worth 291 independent
    // ones, under the 528 an exact 99% bound of a p99 needs.
    let file = scenario_file(
        &dir,
        "bound",
        (r#"
warmup = "0s"
interval = "100ms"
[[phase]]
duration = "30s"
rate = 150
arrival = "constant"
max_in_flight = 16
[[mix]]
operation = "sql"
weight = 1
sql = "SELECT 1"
via = "primary"
[budgets.sql]
p99 = "1s"
[validity]
max_driver_lag = "200ms"
min_rate = 0.5
"#
        .to_string()
            + ONE_VARIANT)
            .as_str(),
    );
    let out = dir.join("out");
    let o = run(&estate, &file, &out).await;
    let v = &o.result.variants[0];
    assert_eq!(o.exit_code(), 0, "{:#?} {:#?}", v.budgets, v.validity);
    let b = &v.budgets[0];
    assert_eq!(b.outcome, rehearse::run::BudgetOutcome::Pass, "{b:?}");
    let (lo, hi) = (b.lower.unwrap(), b.upper.unwrap());
    assert!(
        lo <= b.actual.unwrap() && b.actual.unwrap() <= hi && hi <= 1000.0,
        "{b:?}"
    );
    // The gate judges the files again (latency.hlog and the timeline) and
    // agrees to the digit, interval shown.
    use rehearse::report::gate;
    let opts = gate::GateOptions {
        run: out.clone(),
        baselines: vec![],
        budgets: None,
        settings: Default::default(),
        confidence: None,
        allow_inconclusive: false,
    };
    let g = gate::gate(&opts).unwrap();
    assert_eq!(
        (g.verdict, g.exit_code),
        ("pass", 0),
        "{}",
        gate::markdown(&g)
    );
    let case = g.cases.iter().find(|c| c.suite == "budgets").unwrap();
    assert_eq!(case.message, b.describe(), "gate and run agree");
    assert!(case.message.contains("99% interval"), "{}", case.message);
    // The same run against a budget at its measured p99: unjudged, with
    // what would decide it.
    let at = dir.join("at.toml");
    std::fs::write(
        &at,
        format!(
            "[budgets.sql]\np99 = \"{}us\"\n",
            (b.actual.unwrap() * 1e3).round()
        ),
    )
    .unwrap();
    let g = gate::gate(&gate::GateOptions {
        budgets: Some(at),
        ..opts
    })
    .unwrap();
    assert_eq!(
        (g.verdict, g.exit_code),
        ("invalid", 3),
        "{}",
        gate::markdown(&g)
    );
    let case = g.cases.iter().find(|c| c.suite == "budgets").unwrap();
    assert!(
        case.message.contains("needs about")
            || case.message.contains("no run length")
            || case.message.contains("too close to the budget"),
        "{}",
        case.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_run_reports_a_5ms_sleep_as_5ms() {
    let _shared = ALONE.read().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_sleep").await;
    let estate = lab.estate(&url);
    let dir = work_dir("sleep");
    let file = scenario_file(
        &dir,
        "sleep",
        (r#"
[[phase]]
duration = "5s"
rate = 100
arrival = "constant"
max_in_flight = 8
[[mix]]
operation = "sql"
weight = 1
sql = "SELECT pg_sleep(0.005)"
via = "primary"
"#
        .to_string()
            + ONE_VARIANT)
            .as_str(),
    );
    let o = run(&estate, &file, &dir.join("out")).await;
    let v = &o.result.variants[0];
    let op = &v.operations[0];
    assert!(op.count >= 450, "{}", op.count);
    // Generous bounds for a shared two-core machine (CI saw 6.19 ms): this
    // catches a wrong unit or a doubled time; ci/bench-fidelity.sh holds the
    // driver to 10% of pgbench on a quiet machine.
    let p50 = op.response.p50_ms;
    assert!((4.9..=7.5).contains(&p50), "p50 {p50} ms");
    assert!(op.service.p50_ms >= 5.0 && op.service.p50_ms <= p50 + 0.01);
    assert!(
        op.lag.p50_ms < 0.5,
        "the dispatcher sends on time: {}",
        op.lag.p50_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_driver_gave_up_on_does_not_keep_running_on_the_server() {
    let _shared = ALONE.read().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_abandon").await;
    let estate = lab.estate(&url);
    let dir = work_dir("abandon");
    // Every request sleeps 4 s on the server; the driver waits 300 ms.
    let file = scenario_file(
        &dir,
        "abandon",
        (r#"
timeout = "300ms"
[[phase]]
duration = "2s"
rate = 10
arrival = "constant"
max_in_flight = 8
[[mix]]
operation = "sql"
name = "stuck"
weight = 1
sql = "SELECT pg_sleep(4) /* rehearse-abandon */"
via = "primary"
[validity]
max_driver_lag = "200ms"
"#
        .to_string()
            + ONE_VARIANT)
            .as_str(),
    );
    let o = run(&estate, &file, &dir.join("out")).await;
    let op = &o.result.variants[0].operations[0];
    assert!(
        op.errors.values().sum::<u64>() > 0,
        "the requests time out: {op:?}"
    );
    // Right after the run, the server runs none of them: each was cancelled
    // by statement_timeout when the driver gave up, not 4 s later.
    let c = rehearse::db::connect(&url).await.unwrap();
    let running: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%rehearse-abandon%' AND pid <> pg_backend_pid() AND state = 'active'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        running, 0,
        "abandoned statements still running on the server"
    );
}

/// Run `file` while another session holds an exclusive lock on `probe` for
/// two seconds, starting two seconds in.
async fn run_with_lock(estate: &Estate, url: &str, file: &Path, out: &Path) -> driver::RunOutcome {
    let locker = {
        let url = url.to_string();
        tokio::spawn(async move {
            let mut c = rehearse::db::connect(&url).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let t = c.transaction().await.unwrap();
            t.batch_execute("LOCK TABLE probe IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            t.commit().await.unwrap();
        })
    };
    let o = run(estate, file, out).await;
    locker.await.unwrap();
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_lock_fills_the_open_loop_tail_and_hides_from_the_closed_loop_p99() {
    let _shared = ALONE.read().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_stall").await;
    let estate = lab.estate(&url);
    let c = rehearse::db::connect(&url).await.unwrap();
    c.batch_execute(
        "CREATE TABLE probe (id int PRIMARY KEY, v int); INSERT INTO probe VALUES (1, 1)",
    )
    .await
    .unwrap();
    let dir = work_dir("stall");
    let mix = format!("[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT v FROM probe WHERE id = $1\"\nparams = [\"int:1..1\"]\nvia = \"primary\"\n{ONE_VARIANT}");
    let open = scenario_file(
        &dir,
        "open",
        &format!("[[phase]]\nduration = \"7s\"\nrate = 200\narrival = \"constant\"\nmax_in_flight = 16\n{mix}"),
    );
    let closed = scenario_file(
        &dir,
        "closed",
        &format!("[[phase]]\nduration = \"7s\"\nusers = 4\n{mix}"),
    );

    let o = run_with_lock(&estate, &url, &open, &dir.join("open-out")).await;
    let open_r = &o.result.variants[0].operations[0];
    let c = run_with_lock(&estate, &url, &closed, &dir.join("closed-out")).await;
    let closed_r = &c.result.variants[0].operations[0];
    assert!(!o.result.variants[0].closed_loop && c.result.variants[0].closed_loop);

    // Open loop: the ~400 requests due during the stall wait for it, so
    // about a quarter of all requests are late by up to two seconds.
    assert!(open_r.response.max_ms > 1800.0, "{:?}", open_r.response);
    assert!(open_r.response.p99_ms > 1000.0, "{:?}", open_r.response);
    assert!(open_r.late > 300, "late {}", open_r.late);
    // Closed loop: four users wait, everyone else's samples are fast: the
    // stall is in max only, and p99 does not see it.
    assert!(closed_r.response.max_ms > 1800.0, "{:?}", closed_r.response);
    assert!(closed_r.response.p99_ms < 100.0, "{:?}", closed_r.response);
    assert!(closed_r.count > 2_000, "{}", closed_r.count);
}

/// The CLI against `url` only (no lab: the lab dir points nowhere).
fn rehearse(url: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    common::rehearse_cmd()
        .arg("--primary-url")
        .arg(url)
        .arg("--lab-dir")
        .arg(dir.join("no-lab"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_a_pass_a_missed_budget_an_invalid_run_bad_input_and_an_interruption() {
    let _shared = ALONE.read().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_exit").await;
    let dir = work_dir("exit");
    let probe = |budget: &str| {
        format!(
            "[[phase]]\nduration = \"2s\"\nrate = 50\n[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT 1\"\nvia = \"primary\"\n[budgets.sql]\nmax = \"{budget}\"\n[validity]\nmax_driver_lag = \"200ms\"\n{ONE_VARIANT}"
        )
    };
    let s = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let pass = scenario_file(&dir, "pass", &probe("5s"));
    let out = rehearse(
        &url,
        &dir,
        &[
            "run",
            "-q",
            pass.to_str().unwrap(),
            "--out",
            dir.join("pass").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", s(&out));
    assert!(s(&out).contains("pass sql max"), "{}", s(&out));

    let fail = scenario_file(&dir, "fail", &probe("1us"));
    let out = rehearse(
        &url,
        &dir,
        &[
            "run",
            "-q",
            fail.to_str().unwrap(),
            "--out",
            dir.join("fail").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", s(&out));
    assert!(s(&out).contains("FAIL sql max"), "{}", s(&out));
    assert_eq!(run_json(&dir.join("fail"))["verdict"], "fail");

    // Two requests in flight of 50 ms each cannot carry 200/s.
    let slow = scenario_file(
        &dir,
        "slow",
        &format!("[[phase]]\nduration = \"3s\"\nrate = 200\nmax_in_flight = 2\n[[mix]]\noperation = \"sql\"\nweight = 1\nsql = \"SELECT pg_sleep(0.05)\"\nvia = \"primary\"\n{ONE_VARIANT}"),
    );
    let out = rehearse(
        &url,
        &dir,
        &[
            "run",
            "-q",
            slow.to_str().unwrap(),
            "--duration",
            "2s",
            "--out",
            dir.join("slow").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", s(&out));
    assert!(
        s(&out).contains("INVALID") && s(&out).contains("could not keep up"),
        "{}",
        s(&out)
    );
    assert_eq!(run_json(&dir.join("slow"))["verdict"], "invalid");

    let bad = scenario_file(
        &dir,
        "bad",
        "[[phase]]\nduration = \"2s\"\nrate = 5\n[[mix]]\noperation = \"refund\"\nweight = 1\n",
    );
    let out = rehearse(&url, &dir, &["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s(&out).contains("bad.toml:5:13"), "{}", s(&out));
    let out = rehearse(&url, &dir, &["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // A file that is not there: named, its cause said once, exit 4.
    let missing = dir.join("missing.toml");
    let out = rehearse(&url, &dir, &["run", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", s(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.toml"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    // Ctrl-C: what was measured is kept and marked interrupted.
    let long = scenario_file(&dir, "long", &probe("5s").replace("\"2s\"", "\"60s\""));
    let child = common::rehearse_cmd()
        .args(["--primary-url", &url, "--lab-dir"])
        .arg(dir.join("no-lab"))
        .args([
            "run",
            "-q",
            long.to_str().unwrap(),
            "--out",
            dir.join("long").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", s(&out));
    let r = run_json(&dir.join("long"));
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["verdict"], "interrupted");
    let ok = r["variants"][0]["operations"][0]["ok"].as_u64().unwrap();
    assert!(ok >= 50, "about 3 s at 50/s were measured and kept: {ok}");
    // Its rate is over the time it ran, not the 60 s it was given.
    let phase = &r["variants"][0]["phases"][0];
    let (rate, ran) = (
        phase["achieved_rate"].as_f64().unwrap(),
        phase["elapsed_s"].as_f64().unwrap(),
    );
    assert!(
        ran < 10.0 && rate > 30.0,
        "an interrupted phase's rate: {phase}"
    );
    let hlog = std::fs::read_to_string(dir.join("long/latency.hlog")).unwrap();
    assert!(
        hlog.lines()
            .filter(|l| l.starts_with("Tag=only/sql/response"))
            .count()
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_the_replica_going_away_and_reports_the_fallbacks() {
    let _shared = ALONE.read().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_replica").await;
    let mut estate = lab.estate(&url);
    let mut opts = SeedOptions::from_profile(Profile::Ci);
    opts.params.orgs = 100;
    opts.params.days = 3;
    opts.partitions = Some(4);
    opts.verbose = false;
    seed::seed(&estate, &opts).await.unwrap();
    estate.replica = Some(rehearse::estate::Endpoint {
        url: lab.replica_url("driver_replica"),
        source: rehearse::estate::Source::Lab(lab.state.dir.clone()),
    });
    let dir = work_dir("replica");
    let file = scenario_file(
        &dir,
        "reads",
        &format!(
            "[[phase]]\nduration = \"7s\"\nrate = 100\n[[mix]]\noperation = \"dashboard\"\nweight = 3\n[[mix]]\noperation = \"pnl\"\nweight = 1\n[validity]\nmax_driver_lag = \"200ms\"\n{}",
            ONE_VARIANT.replace("reads = \"primary\"", "reads = \"auto\"")
        ),
    );
    let ctx = {
        let mut c = rehearse::lab::LabCtx::open(&lab.state.dir).unwrap();
        c.set_verbose(false);
        c
    };
    let bounce = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        ctx.stop(rehearse::lab::Component::Replica).unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        ctx.start(rehearse::lab::Component::Replica).await.unwrap();
    });
    let o = run(&estate, &file, &dir.join("out")).await;
    bounce.await.unwrap();
    let v = &o.result.variants[0];
    for op in &v.operations {
        assert!(op.ok > 100, "{}: {}", op.name, op.ok);
        assert!(
            op.errors.is_empty(),
            "{}: no read failed: {:?}",
            op.name,
            op.errors
        );
    }
    let routing = &v.database.repo.routing;
    assert!(
        routing.reads_replica > 0 && routing.reads_primary > 0,
        "{routing:?}"
    );
    assert!(routing.replica_removed >= 1, "{routing:?}");
    let fallbacks: u64 = v.database.samples.iter().map(|s| s.fallbacks).sum();
    assert!(
        fallbacks > 0,
        "the samples show when reads left the replica"
    );
    let text = rehearse::output::run::text(&o.result, &dir);
    assert!(
        text.contains("replica taken out"),
        "the summary says so: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_passes_an_a_a_pair_and_fails_an_injected_5ms_delay() {
    use rehearse::compare;
    use rehearse::report::gate;
    let _alone = ALONE.write().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_gate").await;
    let estate = lab.estate(&url);
    let dir = work_dir("gate");
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/gate_smoke.toml");
    let go = |out: &str, delay: Option<Duration>| {
        let opts = RunOptions {
            scenarios: vec![file.clone()],
            out: Some(dir.join(out)),
            inject_delay: delay,
            ..Default::default()
        };
        let estate = estate.clone();
        async move { driver::run(&estate, &opts).await.unwrap().pop().unwrap() }
    };
    // On CI, a baseline that was the first run on the fresh database had
    // p50 0.64 ms and p95 4.6 ms, slower than a 400 us-delayed run after it:
    // a first run warms up and is not gated.
    go("warm", None).await;
    assert_eq!(go("a", None).await.exit_code(), 0);
    assert_eq!(go("a2", None).await.exit_code(), 0);
    // 5 ms over a p50 of about 0.5 ms: well past what two runs of one
    // build differ by here (CI: p50 0.405 -> 0.658 ms between two A runs).
    let slow = go("slow", Some(Duration::from_millis(5))).await;
    assert_eq!(
        slow.result.scenario.inject_delay.0,
        Duration::from_millis(5)
    );
    // Gated through the CLI, as CI gates.
    let gate_cli = |run: &str, extra: &[&str]| {
        let out = common::rehearse_cmd()
            .arg("gate")
            .arg(dir.join(run))
            .args(extra)
            .arg("--baseline")
            .arg(dir.join("a"))
            // One run per side: the between-run spread is not measured, and
            // the default allowance (5%) is less than this machine's (two A
            // runs differed by x1.63 at p50 and x7.9 at p95 on CI). Allow 25%.
            .args(["--run-spread", "0.25"])
            .arg("--junit")
            .arg(dir.join(format!("{run}.xml")))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // A/A: nothing regressed, but a single run per side leaves its tail
    // percentiles undecided: the gate could not tell (3), and accepting that
    // explicitly passes with those rows still counted and listed.
    let (code, md) = gate_cli("a2", &[]);
    assert_eq!(code, Some(3), "A/A:\n{md}");
    assert!(
        md.contains("COULD NOT TELL") && md.contains("could not tell"),
        "{md}"
    );
    let xml = std::fs::read_to_string(dir.join("a2.xml")).unwrap();
    assert!(
        xml.contains("type=\"inconclusive\"") && !xml.contains("<skipped"),
        "{xml}"
    );
    let (code, md) = gate_cli("a2", &["--allow-inconclusive"]);
    assert_eq!(code, Some(0), "A/A:\n{md}");
    assert!(
        md.contains("inconclusive (allowed)") && md.contains("accepted by --allow-inconclusive"),
        "{md}"
    );
    // The same run as a scenario with no budgets would record it, and no
    // baseline: nothing was judged, and validity alone is no pass (main: exit 0).
    let bare = dir.join("a2-no-budgets");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(dir.join("a2/latency.hlog"), bare.join("latency.hlog")).unwrap();
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("a2/run.json")).unwrap()).unwrap();
    r["scenario"]["budgets"] = serde_json::json!({});
    for v in r["variants"].as_array_mut().unwrap() {
        v["budgets"] = serde_json::json!([]);
    }
    std::fs::write(bare.join("run.json"), r.to_string()).unwrap();
    let out = common::rehearse_cmd()
        .arg("gate")
        .arg(&bare)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{md}");
    assert!(
        md.contains("NOTHING JUDGED") && md.contains("Validity alone is no pass"),
        "{md}"
    );
    let (code, md) = gate_cli("slow", &[]);
    assert_eq!(code, Some(1), "5 ms slower:\n{md}");
    assert!(
        md.contains("| **FAIL** | compare.direct.probe | p50 |"),
        "{md}"
    );
    // Every request was slower: no row may call it an improvement.
    assert!(!md.contains("improvement"), "{md}");
    let reg = gate::gate(&gate::GateOptions {
        run: dir.join("slow"),
        baselines: vec![dir.join("a")],
        budgets: None,
        settings: compare::CompareSettings::default(),
        confidence: None,
        allow_inconclusive: false,
    })
    .unwrap();
    let p50 = &reg.comparisons[0].1.rows[0];
    assert_eq!(
        (p50.metric.as_str(), p50.change),
        ("p50", compare::Finding::Regression),
        "{p50:?}"
    );
    // The delay is a timer sleep of at least 5 ms: the p50 moves by most of it.
    assert!(p50.candidate - p50.baseline > 4.0, "{p50:?}");
    assert!(reg
        .comparisons
        .iter()
        .flat_map(|(_, c)| &c.rows)
        .all(|r| r.change != compare::Finding::Improvement));

    // Overlay charts of the two builds.
    let (base, interval) = compare::runs(&[dir.join("a")]).unwrap();
    let (cand, _) = compare::runs(&[dir.join("slow")]).unwrap();
    let files = rehearse::report::overlay(&base, &cand, interval, &dir.join("overlay")).unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        assert!(std::fs::read(&f).unwrap().starts_with(b"\x89PNG"));
    }
}

fn g_run_id(dir: &std::path::Path) -> String {
    rehearse::run::read(dir).unwrap().run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_run_gates_as_invalid_and_a_renamed_field_is_refused() {
    let _alone = ALONE.write().await;
    let lab = common::lab();
    let url = lab.fresh_database("driver_invalid").await;
    let estate = lab.estate(&url);
    let dir = work_dir("invalid");
    // One request in flight at a time, each 20 ms, asked for 200/s: the
    // estate cannot keep up, so the numbers must not be trusted.
    let file = scenario_file(
        &dir,
        "slow",
        "warmup = \"1s\"\n[[phase]]\nduration = \"4s\"\nrate = 200\nmax_in_flight = 1\n\
         [[mix]]\noperation = \"sql\"\nname = \"sleep\"\nweight = 1\nsql = \"SELECT pg_sleep(0.02)\"\nvia = \"primary\"\n\
         [[variant]]\nname = \"direct\"\nmode = \"legacy\"\nreads = \"primary\"\ncache = false\n\
         [budgets.sleep]\nmax = \"10s\"\n",
    );
    let out = dir.join("run");
    let o = driver::run(
        &estate,
        &RunOptions {
            scenarios: vec![file],
            out: Some(out.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .pop()
    .unwrap();
    assert_eq!(o.exit_code(), 3, "{:?}", o.result.variants[0].validity);
    let gate = common::rehearse_cmd()
        .arg("gate")
        .arg(&out)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&gate.stdout);
    assert_eq!(gate.status.code(), Some(3), "{md}");
    assert!(
        md.contains("INVALID") && md.contains("could not keep up"),
        "{md}"
    );
    assert!(!md.contains("## rehearse gate: PASS") && !md.contains("## rehearse gate: FAIL"));

    // Rename one percentile in run.json: the gate refuses with exit 2 and
    // names the field; the report refuses too. Nothing is read as zero.
    let text = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(text.contains("\"p99_ms\""));
    for (from, to, field) in [
        ("\"p99_ms\"", "\"p99ms\"", "p99"),
        ("\"error_rate\": 0", "\"error_ratio\": 0", "error_ratio"),
    ] {
        let broken = dir.join(format!("broken-{field}"));
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::copy(out.join("latency.hlog"), broken.join("latency.hlog")).unwrap();
        std::fs::write(broken.join("run.json"), text.replacen(from, to, 1)).unwrap();
        for cmd in ["gate", "report"] {
            let r = common::rehearse_cmd()
                .arg(cmd)
                .arg(&broken)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&r.stderr);
            assert_eq!(r.status.code(), Some(2), "{cmd}: {err}");
            assert!(
                err.contains(field) && err.contains("variants[0]"),
                "{cmd}: {err}"
            );
        }
    }
    // A field deleted outright.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["variants"][0]["operations"][0]["response"]
        .as_object_mut()
        .unwrap()
        .remove("p50_ms");
    let broken = dir.join("broken-missing");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("run.json"), v.to_string()).unwrap();
    let r = common::rehearse_cmd()
        .arg("gate")
        .arg(&broken)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("missing field `p50_ms`"), "{err}");
}
