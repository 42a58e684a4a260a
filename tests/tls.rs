//! A lab started like staging (`lab up --tls --auth scram`): seed, query, a
//! run through the primary, the replica, PgBouncer and Redis, a report and
//! a short cutover drill, all over verified TLS with the password from the
//! lab's pgpass file; pg_stat_ssl shows rehearse's connections encrypted;
//! certificate and password failures are named (exit 4) without the
//! password; its Prometheus and exporters watch it over the same TLS, and
//! the alert drill passes on it; and no byte printed or written holds the
//! password, nor any exporter's command line.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::{files, hits};

fn shown(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The lab's CA, and its URL of `db` with other TLS settings.
fn url(port: u16, host: &str, db: &str, query: &str) -> String {
    format!("postgresql://rehearse@{host}:{port}/{db}?{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_like_lab_works_over_verified_tls_with_passwords_kept_out_of_sight() {
    let lab = common::lab_staging();
    let dir = lab.state.dir.clone();
    let tls = lab.state.tls.clone().expect("a TLS lab");
    let pgpass = lab.state.pgpass.clone().expect("a scram lab");
    let password = rehearse::lab::tls::password(&pgpass).unwrap();
    assert!(password.len() >= 32);
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&pgpass).unwrap().mode() & 0o777, 0o600);
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let mut printed: Vec<(String, Vec<u8>)> = Vec::new();
    let rehearse = |args: &[&str], printed: &mut Vec<(String, Vec<u8>)>| -> Output {
        let out = common::rehearse_cmd()
            .arg("--lab-dir")
            .arg(&dir)
            .args(args)
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .output()
            .unwrap();
        printed.push((
            args.join(" "),
            [out.stdout.clone(), out.stderr.clone()].concat(),
        ));
        out
    };

    // lab env: verify-full against the lab's CA, the pgpass file, no password.
    let env = rehearse(&["lab", "env"], &mut printed);
    let env_text = String::from_utf8_lossy(&env.stdout).to_string();
    assert!(
        env_text.contains("sslmode=verify-full&sslrootcert="),
        "{env_text}"
    );
    assert!(
        env_text.contains("REHEARSE_REDIS_URL='rediss://"),
        "{env_text}"
    );
    assert!(
        env_text.contains(&format!("PGPASSFILE='{}'", pgpass.display())),
        "{env_text}"
    );

    let seed = rehearse(&["seed", "--profile", "ci"], &mut printed);
    assert_eq!(seed.status.code(), Some(0), "{}", shown(&seed));
    let q = rehearse(
        &["query", "dashboard", "--org", "1", "--json"],
        &mut printed,
    );
    assert_eq!(q.status.code(), Some(0), "{}", shown(&q));

    // A run through every endpoint: direct pools (primary and replica), PgBouncer, Redis.
    let scenario = work.join("mini.toml");
    std::fs::write(
        &scenario,
        "name = \"mini\"\nwarmup = \"1s\"\n\
         [[phase]]\nduration = \"5s\"\nrate = 40\n\
         [[mix]]\noperation = \"record_revenue\"\nweight = 3\n\
         [[mix]]\noperation = \"adjust\"\nweight = 1\n\
         [[mix]]\noperation = \"void\"\nweight = 1\n\
         [[mix]]\noperation = \"dashboard\"\nweight = 3\n\
         [[mix]]\noperation = \"ledger\"\nweight = 2\n\
         [[variant]]\nname = \"direct\"\nmode = \"legacy\"\nreads = \"auto\"\ncache = true\n\
         [[variant]]\nname = \"bouncer\"\nmode = \"partitioned\"\nreads = \"auto\"\ncache = true\npool = \"pgbouncer\"\n\
         [budgets.dashboard]\nmax = \"10s\"\n\
         [validity]\nmax_driver_lag = \"200ms\"\n",
    )
    .unwrap();
    let run_dir = work.join("run");
    // Watch pg_stat_ssl on the primary while the run holds its connections.
    let watch_url = lab.state.urls.primary.clone();
    let watcher = tokio::spawn(async move {
        let c = rehearse::db::connect(&watch_url).await.unwrap();
        let (mut seen, mut plain) = (0i64, 0i64);
        for _ in 0..60 {
            let r = c
                .query_one(
                    "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
                     FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                     WHERE a.application_name = 'rehearse' AND a.pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            seen = seen.max(r.get(0));
            plain += r.get::<_, i64>(1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (seen, plain)
    });
    let run = rehearse(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            run_dir.to_str().unwrap(),
            "--metrics-addr",
            "off",
            "-q",
        ],
        &mut printed,
    );
    assert_eq!(run.status.code(), Some(0), "{}", shown(&run));
    let (seen, plain) = watcher.await.unwrap();
    assert!(seen > 0, "rehearse's connections were seen on the primary");
    assert_eq!(plain, 0, "none of them unencrypted");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    for v in r["variants"].as_array().unwrap() {
        for o in v["operations"].as_array().unwrap() {
            assert_eq!(
                o["errors"],
                serde_json::json!({}),
                "{}: {}",
                v["variant"]["name"],
                o
            );
        }
        let cache = &v["database"]["repo"]["cache"];
        assert!(
            cache["hits"].as_u64().unwrap() + cache["misses"].as_u64().unwrap() > 0,
            "Redis over TLS answered: {cache}"
        );
        assert_eq!(cache["errors"], 0, "{cache}");
    }
    // The replica streams over TLS too.
    let c = rehearse::db::connect(&lab.state.urls.primary)
        .await
        .unwrap();
    let (mine, walsender): (bool, bool) = {
        let r = c
            .query_one(
                "SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), \
                        (SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                          WHERE a.backend_type = 'walsender')",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        mine && walsender,
        "this connection {mine}, the replica's {walsender}"
    );
    let report = rehearse(&["report", run_dir.to_str().unwrap()], &mut printed);
    assert_eq!(report.status.code(), Some(0), "{}", shown(&report));

    // A short cutover drill on a legacy-only database of its own.
    c.batch_execute("DROP DATABASE IF EXISTS tls_drill WITH (FORCE)")
        .await
        .unwrap();
    c.batch_execute("CREATE DATABASE tls_drill").await.unwrap();
    let port = lab.state.ports.primary;
    let ca = tls.ca.display().to_string();
    let drill_url = url(
        port,
        "127.0.0.1",
        "tls_drill",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let drill_dir = work.join("drill");
    for args in [
        vec![
            "--primary-url",
            &drill_url,
            "seed",
            "--profile",
            "ci",
            "--orgs",
            "60",
            "--days",
            "7",
            "--mode",
            "legacy",
            "--allow-destructive",
            "tls_drill",
        ],
        vec![
            "--primary-url",
            &drill_url,
            "cutover",
            "drill",
            "--under",
            scenario.to_str().unwrap(),
            "--steady",
            "2s",
            "--soak",
            "2s",
            "--race-writers",
            "0",
            "--out",
            drill_dir.to_str().unwrap(),
        ],
    ] {
        let o = rehearse(&args, &mut printed);
        assert_eq!(o.status.code(), Some(0), "{}: {}", args[2], shown(&o));
    }

    // Certificates: a wrong root fails verification, named, exit 4; a
    // certificate for another name fails verify-full and passes verify-ca.
    let other = work.join("other-ca");
    std::fs::create_dir_all(&other).unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=another CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ])
        .current_dir(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let q = |u: &str, printed: &mut Vec<(String, Vec<u8>)>| {
        rehearse(
            &[
                "--primary-url",
                u,
                "query",
                "dashboard",
                "--org",
                "1",
                "--via",
                "primary",
                "--cache",
                "off",
            ],
            printed,
        )
    };
    let wrong_root = url(
        port,
        "127.0.0.1",
        "rehearse",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            other.join("ca.crt").display()
        ),
    );
    let o = q(&wrong_root, &mut printed);
    assert_eq!(o.status.code(), Some(4), "{}", shown(&o));
    assert!(
        shown(&o).contains("certificate verification failed"),
        "{}",
        shown(&o)
    );
    assert!(
        shown(&o).contains(&format!("127.0.0.1:{port}")),
        "names the endpoint: {}",
        shown(&o)
    );
    let elsewhere = |mode: &str| {
        url(
            port,
            "db.staging.example",
            "rehearse",
            &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}"),
        )
    };
    let o = q(&elsewhere("verify-full"), &mut printed);
    assert_eq!(o.status.code(), Some(4), "{}", shown(&o));
    assert!(
        shown(&o).contains("certificate verification failed"),
        "{}",
        shown(&o)
    );
    let o = q(&elsewhere("verify-ca"), &mut printed);
    assert_eq!(
        o.status.code(),
        Some(0),
        "verify-ca does not check the name: {}",
        shown(&o)
    );
    // Plain connections are refused by the server.
    let o = q(
        &url(port, "127.0.0.1", "rehearse", "sslmode=disable"),
        &mut printed,
    );
    assert_eq!(o.status.code(), Some(4), "{}", shown(&o));

    // A wrong password: exit 4, the user named, the password nowhere.
    let wrong_pw = "Wx7-not-the-password";
    let o = q(
        &format!("postgresql://rehearse:{wrong_pw}@127.0.0.1:{port}/rehearse?sslmode=verify-full&sslrootcert={ca}"),
        &mut printed,
    );
    assert_eq!(o.status.code(), Some(4), "{}", shown(&o));
    assert!(
        shown(&o).contains("authentication failed for user \"rehearse\""),
        "{}",
        shown(&o)
    );
    assert_eq!(
        hits(&[o.stdout.clone(), o.stderr.clone()].concat(), wrong_pw),
        0
    );
    // The [estate] password_file: found for a URL without a password (and
    // no lab to look in); refused while others can read it.
    let settings = work.join("rehearse.toml");
    let pw_file = work.join("pg-password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let chmod = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(m)).unwrap()
    };
    chmod(0o600);
    std::fs::write(
        &settings,
        format!(
            "[estate]\nprimary_url = \"{}\"\npassword_file = \"pg-password\"\n",
            url(
                port,
                "127.0.0.1",
                "rehearse",
                &format!("sslmode=verify-full&sslrootcert={ca}")
            )
        ),
    )
    .unwrap();
    let by_file = |printed: &mut Vec<(String, Vec<u8>)>| {
        let out = common::rehearse_cmd()
            .arg("--lab-dir")
            .arg(work.join("no-lab"))
            .arg("--config")
            .arg(&settings)
            .args([
                "query",
                "dashboard",
                "--org",
                "1",
                "--via",
                "primary",
                "--cache",
                "off",
            ])
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .env("HOME", &work)
            .output()
            .unwrap();
        printed.push((
            "query (password_file)".into(),
            [out.stdout.clone(), out.stderr.clone()].concat(),
        ));
        out
    };
    let o = by_file(&mut printed);
    assert_eq!(o.status.code(), Some(0), "{}", shown(&o));
    chmod(0o644);
    let o = by_file(&mut printed);
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    assert!(shown(&o).contains("group or world access"), "{}", shown(&o));
    std::fs::remove_file(&pw_file).unwrap();
    let status = rehearse(&["lab", "status"], &mut printed);
    assert_eq!(status.status.code(), Some(0), "{}", shown(&status));

    // The staging-like lab is watched too: its exporters connect over
    // verified TLS with the pgpass password, and the alert drill passes,
    // every fault fired and resolved within its deadline.
    let status_text = String::from_utf8_lossy(&status.stdout).to_string();
    for c in [
        "primary-exporter",
        "replica-exporter",
        "pgbouncer-exporter",
        "redis-exporter",
        "prometheus",
    ] {
        assert!(
            status_text
                .lines()
                .any(|l| l.starts_with(c) && l.contains(" up ")),
            "{c}: {status_text}"
        );
    }
    let alerts_dir = work.join("alerts-drill");
    let drill = rehearse(
        &[
            "alerts",
            "drill",
            "--steady",
            "15s",
            "--standing",
            "PartitionSkew",
            "--json",
            "--out",
            alerts_dir.to_str().unwrap(),
        ],
        &mut printed,
    );
    assert_eq!(drill.status.code(), Some(0), "{}", shown(&drill));
    let report: serde_json::Value = serde_json::from_slice(&drill.stdout).unwrap();
    common::assert_alert_drill_passed(&report);
    // No exporter holds the password on its command line, and their
    // logs and configuration do not hold it either.
    let mut monitoring = Vec::new();
    files(&dir.join("monitoring"), &mut monitoring);
    let mut pids = 0;
    for (p, body) in &monitoring {
        assert_eq!(hits(body, &password), 0, "{}", p.display());
        if p.extension().is_some_and(|e| e == "pid") {
            let pid = String::from_utf8_lossy(body).trim().to_string();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
            assert_eq!(hits(&cmdline, &password), 0, "{}", p.display());
            pids += 1;
        }
    }
    assert_eq!(pids, 5, "five monitoring processes");

    // The password scan: every byte printed and every file written.
    let mut found: Vec<String> = printed
        .iter()
        .filter(|(_, b)| hits(b, &password) > 0)
        .map(|(c, _)| format!("printed by `rehearse {c}`"))
        .collect();
    let mut written = Vec::new();
    files(&work, &mut written);
    assert!(
        written.len() > 10,
        "the run, report and drill wrote their files"
    );
    found.extend(
        written
            .iter()
            .filter(|(_, b)| hits(b, &password) > 0)
            .map(|(p, _)| format!("written to {}", p.display())),
    );
    assert!(found.is_empty(), "the password leaked: {found:?}");
}

#[test]
fn the_password_scan_finds_a_password_where_it_is() {
    // The checker itself: a file holding it is found.
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls-scan");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("a")).unwrap();
    std::fs::write(
        d.join("a/x.json"),
        b"{\"url\": \"postgresql://u:s3cret@h/d\"}",
    )
    .unwrap();
    let mut all = Vec::new();
    files(&d, &mut all);
    assert_eq!(all.iter().map(|(_, b)| hits(b, "s3cret")).sum::<usize>(), 1);
}
