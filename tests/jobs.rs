//! The maintenance jobs against the lab: reconcile finds one summary row
//! changed behind the triggers' back on either side and names its
//! organization, exits 0 on a clean estate and 3 when its budget leaves
//! chunks unchecked; analyze analyzes the partitioned parents;
//! partition-report reports every partition; cache-sweep deletes only keys
//! of old generations; pg_cron runs an installed reconcile.

mod common;

use std::time::{Duration, Instant};

use rehearse::estate::Estate;
use rehearse::repo::finance::NewEntry;
use rehearse::repo::reporting::ReadOptions;
use rehearse::repo::{Pooling, Repo, RepoConfig};
use rehearse::schema::Modes;

fn job(estate: &Estate, args: &[&str]) -> (i32, String, String) {
    let mut cmd = common::rehearse_cmd();
    cmd.args(["--primary-url", &estate.primary.url]);
    if let Some(r) = &estate.redis {
        cmd.args(["--redis-url", &r.url]);
    }
    let out = cmd.arg("job").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Change one summary row of `table` directly (no trigger sees it); returns its organization.
async fn corrupt(c: &tokio_postgres::Client, table: &str, delta: i64) -> i64 {
    c.query_one(
        &format!(
            "UPDATE {table} SET expense_cents = expense_cents + $1
              WHERE (organization_id, property_id, business_date) =
                    (SELECT organization_id, property_id, business_date FROM {table}
                      ORDER BY organization_id, property_id, business_date OFFSET 100 LIMIT 1)
              RETURNING organization_id"
        ),
        &[&delta],
    )
    .await
    .unwrap()
    .get(0)
}

#[test]
fn reconcile_names_the_organization_whose_summary_drifted_on_either_side() {
    let estate = common::block_on(async {
        common::lab()
            .seeded("jobs_reconcile", 120, Modes::Both)
            .await
    });
    let (code, out, err) = job(&estate, &["run", "reconcile"]);
    assert_eq!(code, 0, "a clean estate: {out}{err}");
    assert!(
        out.contains("every summary row matches its entries"),
        "{out}"
    );
    assert!(
        out.contains("legacy") && out.contains("partitioned"),
        "{out}"
    );
    assert!(
        out.contains("8 of 8 chunks checked"),
        "one chunk per partition: {out}"
    );

    let url = estate.primary.url.clone();
    let corrupt_at = |table: &'static str, delta: i64| {
        let url = url.clone();
        common::block_on(async move {
            let c = rehearse::db::connect(&url).await.unwrap();
            corrupt(&c, table, delta).await
        })
    };
    for table in [
        "daily_financial_summaries_partitioned",
        "daily_financial_summaries",
    ] {
        let org = corrupt_at(table, 7);
        let (code, out, err) = job(&estate, &["run", "reconcile", "--json"]);
        assert_eq!(code, 1, "drift in {table}: {out}{err}");
        let run: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mode = if table.ends_with("_partitioned") {
            "partitioned"
        } else {
            "legacy"
        };
        let other = if mode == "legacy" {
            "partitioned"
        } else {
            "legacy"
        };
        assert_eq!(run["detail"]["modes"][mode]["drift_rows"], 1, "{out}");
        assert_eq!(
            run["detail"]["modes"][mode]["organizations"],
            serde_json::json!([org])
        );
        assert_eq!(run["detail"]["modes"][other]["drift_rows"], 0, "{out}");
        let (_, text, _) = job(&estate, &["run", "reconcile"]);
        assert!(text.contains(&format!("organizations {org}")), "{text}");
        // Repair: the next run is clean again.
        assert_eq!(corrupt_at(table, -7), org);
        let (code, out, _) = job(&estate, &["run", "reconcile"]);
        assert_eq!(code, 0, "{out}");
    }

    // A budget spent before the first chunk checks nothing: unknown, exit 3, never a pass.
    let (code, out, _) = job(&estate, &["run", "reconcile", "--budget", "0s"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("INCOMPLETE") && out.contains("NOT CHECKED"),
        "{out}"
    );

    // A partition that one table has and the others lack: its rows cannot
    // be reconciled, so it is counted unchecked and the run is no pass.
    // (Today's main matched partitions by bound and dropped this one silently.)
    let url2 = url.clone();
    let bound = common::block_on(async move {
        let c = rehearse::db::connect(&url2).await.unwrap();
        let b: String = c
            .query_one(
                "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'revenue_entries_partitioned_p001'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        c.batch_execute("ALTER TABLE revenue_entries_partitioned DETACH PARTITION revenue_entries_partitioned_p001")
            .await
            .unwrap();
        b
    });
    let (code, out, err) = job(&estate, &["run", "reconcile", "--json"]);
    assert_eq!(
        code, 3,
        "a summary partition with no revenue partition: {out}{err}"
    );
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["detail"]["unmatched_chunks"], 1, "{out}");
    assert!(
        run["detail"]["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["checked"] == false
                && c["chunk"]
                    .as_str()
                    .unwrap()
                    .contains("no revenue partition")),
        "{out}"
    );
    let url2 = url.clone();
    common::block_on(async move {
        let c = rehearse::db::connect(&url2).await.unwrap();
        c.batch_execute(&format!(
            "ALTER TABLE revenue_entries_partitioned ATTACH PARTITION revenue_entries_partitioned_p001 {bound}"
        ))
        .await
        .unwrap();
    });
    let (code, out, _) = job(&estate, &["run", "reconcile"]);
    assert_eq!(code, 0, "re-attached: {out}");

    // A scoped reconcile (--org) checks only its organizations and carries
    // the last full run's state: a clean scoped run must not clear drift it
    // did not check. Judged by what Prometheus would see (the exporter's own
    // query, from observability/postgres-queries.yml) against differing rows
    // counted directly in SQL.
    let url2 = url.clone();
    let sql = move |q: String| {
        let url = url2.clone();
        common::block_on(async move {
            let c = rehearse::db::connect(&url).await.unwrap();
            c.query(&q, &[]).await.unwrap()
        })
    };
    let orgs: Vec<i64> = sql("SELECT id FROM organizations ORDER BY id LIMIT 3 OFFSET 5".into())
        .iter()
        .map(|r| r.get(0))
        .collect();
    let shift = |table: &str, org: i64, delta: i64| {
        let n = sql(format!(
            "UPDATE {table} SET expense_cents = expense_cents + {delta}
              WHERE (organization_id, property_id, business_date) =
                    (SELECT organization_id, property_id, business_date FROM {table}
                      WHERE organization_id = {org} ORDER BY 2, 3 LIMIT 1)
              RETURNING 1"
        ));
        assert_eq!(
            n.len(),
            1,
            "{table} has a summary row of organization {org}"
        );
    };
    let queries = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("observability/postgres-queries.yml"),
    )
    .unwrap();
    let exported_query = queries
        .split("\nrehearse_reconcile:\n  query: |\n")
        .nth(1)
        .and_then(|rest| rest.split("  metrics:").next())
        .expect("the exporter's rehearse_reconcile query")
        .to_string();
    let exported = || -> std::collections::BTreeMap<String, (f64, f64)> {
        sql(exported_query.clone())
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    (r.get::<_, f64>(1), r.get::<_, f64>(3)),
                )
            })
            .collect()
    };
    let counted = |mode: &str| -> f64 {
        let (rev, exp, summ) = if mode == "legacy" {
            (
                "revenue_entries",
                "expense_entries",
                "daily_financial_summaries",
            )
        } else {
            (
                "revenue_entries_partitioned",
                "expense_entries_partitioned",
                "daily_financial_summaries_partitioned",
            )
        };
        sql(format!(
            "SELECT count(*)::float8 FROM {summ} s
              WHERE (s.revenue_cents, s.revenue_count, s.expense_cents, s.expense_count) IS DISTINCT FROM
                    ((SELECT coalesce(sum(amount_cents), 0) FROM {rev} e WHERE (e.organization_id, e.property_id, e.business_date) = (s.organization_id, s.property_id, s.business_date)),
                     (SELECT count(*) FROM {rev} e WHERE (e.organization_id, e.property_id, e.business_date) = (s.organization_id, s.property_id, s.business_date)),
                     (SELECT coalesce(sum(amount_cents), 0) FROM {exp} e WHERE (e.organization_id, e.property_id, e.business_date) = (s.organization_id, s.property_id, s.business_date)),
                     (SELECT count(*) FROM {exp} e WHERE (e.organization_id, e.property_id, e.business_date) = (s.organization_id, s.property_id, s.business_date)))"
        ))[0]
            .get(0)
    };
    let agree = |what: &str| {
        let e = exported();
        for mode in ["legacy", "partitioned"] {
            assert_eq!(
                e[mode].0,
                counted(mode),
                "{what}: {mode} drift, exported {e:?}"
            );
            assert_eq!(
                e[mode].1, 1.0,
                "{what}: {mode} stays complete (the full run's coverage)"
            );
        }
        e
    };
    let (a, b, c) = (orgs[0], orgs[1], orgs[2]);
    let pt = "daily_financial_summaries_partitioned";
    shift(pt, a, 5);
    shift(pt, c, 5);
    shift("daily_financial_summaries", b, 5);
    let (code, out, _) = job(&estate, &["run", "reconcile"]);
    assert_eq!(code, 1, "{out}");
    let e = agree("after the full run");
    assert_eq!((e["partitioned"].0, e["legacy"].0), (2.0, 1.0));
    // A repaired, its scoped run clean: C's drift (and B's) still stand.
    shift(pt, a, -5);
    let (code, out, err) = job(&estate, &["run", "reconcile", "--org", &a.to_string()]);
    assert_eq!(code, 0, "A's rows are clean: {out}{err}");
    assert!(out.contains("job reconcile-scoped"), "{out}");
    let e = agree("after A's scoped run");
    assert_eq!(
        (e["partitioned"].0, e["legacy"].0),
        (1.0, 1.0),
        "C and B still drift"
    );
    // B not repaired: found again, not counted twice.
    let (code, out, _) = job(
        &estate,
        &["run", "reconcile", "--org", &b.to_string(), "--json"],
    );
    assert_eq!(code, 1, "{out}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["detail"]["scope_drift_rows"], 1, "{out}");
    assert_eq!(agree("after B's scoped run")["legacy"].0, 1.0);
    // Both repaired, one scoped run for both: the estate is clean again.
    shift(pt, c, -5);
    shift("daily_financial_summaries", b, -5);
    let (code, out, _) = job(&estate, &["run", "reconcile", "--org", &format!("{b},{c}")]);
    assert_eq!(code, 0, "{out}");
    let e = agree("after the repairs");
    assert_eq!((e["partitioned"].0, e["legacy"].0), (0.0, 0.0));
    // Only a full run is the estate checked: ReconcileStale and
    // DriftUnchecked read job_name="reconcile", whose last run is the full one.
    let last = sql(
        "SELECT job, max(id) FROM rehearse_job_runs WHERE job LIKE 'reconcile%' GROUP BY job ORDER BY job".into(),
    );
    let last: Vec<(String, i64)> = last.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(last.len(), 2, "{last:?}");
    assert!(
        last[0].0 == "reconcile" && last[1].0 == "reconcile-scoped" && last[0].1 < last[1].1,
        "{last:?}"
    );
    // --org belongs to reconcile.
    let (code, _, err) = job(&estate, &["run", "analyze", "--org", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--org is for `job run reconcile` only"),
        "{err}"
    );

    // The other database jobs say what they did, and the server agrees:
    // each parent's own last analyze (autovacuum never analyzes a parent)
    // is later than the job's start.
    const PARENTS: [&str; 3] = [
        "revenue_entries_partitioned",
        "expense_entries_partitioned",
        "daily_financial_summaries_partitioned",
    ];
    let last_analyze = |url: String| {
        common::block_on(async move {
            let c = rehearse::db::connect(&url).await.unwrap();
            let mut out = Vec::new();
            for p in PARENTS {
                let r = c
                    .query_one(
                        "SELECT now(), pg_stat_get_last_analyze_time($1::text::regclass)",
                        &[&p],
                    )
                    .await
                    .unwrap();
                let at: Option<std::time::SystemTime> = r.get(1);
                out.push((r.get::<_, std::time::SystemTime>(0), at));
            }
            out
        })
    };
    let before = last_analyze(url.clone());
    let (code, out, err) = job(&estate, &["run", "analyze"]);
    assert_eq!(code, 0, "{err}");
    for parent in PARENTS {
        assert!(
            out.lines()
                .any(|l| l.contains(parent) && l.contains("partitioned parent")),
            "{parent} not analyzed: {out}"
        );
    }
    // The statistics reach pg_stat within a second or so of the job's end.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = last_analyze(url.clone());
        let fresh: Vec<bool> = before
            .iter()
            .zip(&after)
            .map(|((started, _), (_, at))| at.is_some_and(|t| t >= *started))
            .collect();
        if fresh.iter().all(|f| *f) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pg_stat_get_last_analyze_time of {PARENTS:?} before the job {before:?}, after {after:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out, err) = job(&estate, &["run", "partition-report", "--json"]);
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    let parts = run["detail"]["partitions"].as_array().unwrap();
    // 3 partitioned parents of 8 partitions, and the 3 legacy tables.
    assert_eq!(parts.len(), 3 * 8 + 3, "{out}");
    let analyzed: Vec<_> = parts
        .iter()
        .filter(|p| p["parent"] == "revenue_entries_partitioned")
        .collect();
    assert_eq!(analyzed.len(), 8);
    assert!(
        analyzed.iter().all(|p| p["rows"].as_i64().unwrap() > 0),
        "{out}"
    );
    let (code, out, _) = job(&estate, &["list"]);
    assert_eq!(code, 0);
    for j in ["reconcile", "analyze", "partition-report"] {
        assert!(out.contains(j), "{out}");
    }
}

#[test]
fn cache_sweep_deletes_only_reports_of_old_generations() {
    let estate =
        common::block_on(async { common::lab().seeded("jobs_sweep", 30, Modes::Legacy).await });
    let url = estate.primary.url.clone();
    let cfg = RepoConfig::from_estate(&estate, Pooling::Direct).unwrap();
    common::block_on(async move {
        let repo = Repo::connect(cfg).await.unwrap();
        let c = rehearse::db::connect(&url).await.unwrap();
        let end = rehearse::day::Day::from_ymd(2026, 10, 31);
        let cached = ReadOptions::default();
        // Two organizations' dashboards cached; then a write to org 1 makes its report stale.
        for org in [1i64, 2] {
            repo.reporting()
                .dashboard(org, end, 7, &cached)
                .await
                .unwrap();
        }
        let prop: i64 = c
            .query_one(
                "SELECT min(id) FROM properties WHERE organization_id = 1",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        repo.finance()
            .record(1, &NewEntry::revenue(prop, end, "rooms", 100))
            .await
            .unwrap();
    });
    let (code, out, err) = job(&estate, &["run", "cache-sweep", "--json"]);
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["detail"]["swept"], 1, "{out}");
    assert_eq!(run["detail"]["kept"], 1, "{out}");
    // Nothing stale is left.
    let (_, out, _) = job(&estate, &["run", "cache-sweep", "--json"]);
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            run["detail"]["swept"].as_i64(),
            run["detail"]["kept"].as_i64()
        ),
        (Some(0), Some(1))
    );
}

#[test]
fn pg_cron_runs_the_installed_reconcile_and_job_list_shows_it() {
    let estate =
        common::block_on(async { common::lab().seeded("jobs_cron", 20, Modes::Both).await });
    // cache-sweep cannot be scheduled in the database: it says where to schedule it.
    let (code, _, err) = job(&estate, &["install", "--schedule", "cache-sweep=* * * * *"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("deploy/cron"), "{err}");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (code, out, err) = job(&estate, &["install", "--schedule", "reconcile=* * * * *"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rehearse-reconcile@jobs_cron (* * * * *)"),
        "{out}"
    );
    // Idempotent: the same schedules again, replaced by name.
    let (code, _, err) = job(&estate, &["install", "--schedule", "reconcile=* * * * *"]);
    assert_eq!(code, 0, "{err}");
    let admin = common::lab().primary_url("postgres");
    let jobs: i64 = common::block_on(async move {
        let c = rehearse::db::connect(&admin).await.unwrap();
        c.query_one(
            "SELECT count(*) FROM cron.job WHERE database = 'jobs_cron'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    });
    assert_eq!(
        jobs, 4,
        "reconcile, analyze, partition-report and portfolio-refresh, once each"
    );
    // pg_cron starts the reconcile at the next minute; it is recorded in both logs.
    let deadline = Instant::now() + Duration::from_secs(150);
    let admin = common::lab().primary_url("postgres");
    loop {
        let admin = admin.clone();
        let status: Option<String> = common::block_on(async move {
            let c = rehearse::db::connect(&admin).await.unwrap();
            c.query_opt(
                "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                  WHERE j.jobname = 'rehearse-reconcile@jobs_cron' AND d.status <> 'running'
                    AND d.start_time > to_timestamp($1)
                  ORDER BY d.runid DESC LIMIT 1",
                &[&since],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
        });
        if let Some(s) = status {
            assert_eq!(s, "succeeded");
            break;
        }
        assert!(Instant::now() < deadline, "pg_cron never ran the reconcile");
        std::thread::sleep(Duration::from_secs(2));
    }
    let (code, out, err) = job(&estate, &["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let l: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sched = l["cron"]["Ok"].as_array().unwrap();
    let rec = sched
        .iter()
        .find(|s| s["name"] == "rehearse-reconcile@jobs_cron")
        .unwrap();
    assert_eq!(rec["last_status"], "succeeded", "{out}");
    let last = l["last_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "reconcile")
        .expect("the scheduled reconcile recorded its run");
    assert_eq!(last["ok"], true, "{out}");
    let (code, out, _) = job(&estate, &["uninstall"]);
    assert_eq!(code, 0);
    assert!(out.contains("removed 4 schedules"), "{out}");
}

#[test]
fn a_run_runs_its_scenarios_jobs_and_reports_p99_during_them_and_otherwise() {
    let estate =
        common::block_on(async { common::lab().seeded("jobs_in_run", 60, Modes::Both).await });
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jobs-in-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("with_jobs.toml");
    std::fs::write(
        &scenario,
        "[[phase]]\nduration = \"8s\"\nrate = 40\n\
         [[mix]]\noperation = \"dashboard\"\nweight = 3\n[[mix]]\noperation = \"record_revenue\"\nweight = 1\n\
         [[variant]]\nname = \"legacy\"\nmode = \"legacy\"\ncache = false\n\
         [[job]]\nname = \"reconcile\"\nstart = \"1s\"\nevery = \"3s\"\n\
         [[job]]\nname = \"analyze\"\nstart = \"2s\"\n",
    )
    .unwrap();
    let out = dir.join("run");
    let run = common::rehearse_cmd()
        .args(["--primary-url", &estate.primary.url])
        .arg("run")
        .arg(&scenario)
        .args(["-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    // No budgets: measured, not judged (exit 3), whatever the timings;
    // anything else (a failure, an invalid run) is a finding.
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let r = rehearse::run::read(&out).unwrap();
    // Not judged, or (jobs take the cores from the driver) invalid: never a pass.
    assert!(
        matches!(
            r.verdict,
            rehearse::run::Verdict::NotJudged | rehearse::run::Verdict::Invalid
        ),
        "{:?}",
        r.verdict
    );
    let windows = &r.variants[0].jobs;
    let count = |j: &str| windows.iter().filter(|w| w.job == j).count();
    assert!(count("reconcile") >= 2, "{windows:?}");
    assert_eq!(count("analyze"), 1, "{windows:?}");
    assert!(
        windows
            .iter()
            .all(|w| w.exit_code == 0 && w.end_s > w.start_s),
        "{windows:?}"
    );
    assert!(windows[0].start_s >= 0.9, "{windows:?}");
    // The report sets p99 during the jobs' windows beside p99 otherwise.
    let report = common::rehearse_cmd()
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("## Maintenance jobs") && md.contains("p99 ms during jobs"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| legacy | dashboard |"))
        .expect("a dashboard row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let n = |i: usize| cells[i].parse::<u64>().unwrap();
    assert!(
        n(3) > 0 && n(5) > 0,
        "requests during and outside the windows: {row}"
    );
    // The same split, computed from latency.hlog by HdrHistogram's own
    // Python reader: the counts equal, the p99s equal to the table's 0.01 ms.
    let v = &r.variants[0];
    let windows: Vec<(f64, f64)> = v.jobs.iter().map(|w| (w.start_s, w.end_s)).collect();
    let oracle = common::hlog_windows(
        &out.join("latency.hlog"),
        "legacy/dashboard/response",
        v.started_s,
        v.warmup_s,
        r.scenario.interval.0.as_secs_f64(),
        &windows,
    );
    let ms = |side: &str| match oracle[side]["p99"].as_f64() {
        Some(ns) => format!("{:.2}", ns / 1e6),
        None => "-".into(),
    };
    assert_eq!(
        (n(3), cells[4].to_string(), n(5), cells[6].to_string()),
        (
            oracle["inside"]["count"].as_u64().unwrap(),
            ms("inside"),
            oracle["outside"]["count"].as_u64().unwrap(),
            ms("outside")
        ),
        "the report's row against HdrHistogram's reader: {oracle}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("id=\"job-impact\"") && html.contains("id=\"job-windows\""));
}
