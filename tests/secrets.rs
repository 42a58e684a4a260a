//! No password leaves rehearse: a primary that requires scram-sha-256, and
//! every command a rehearsal runs against it (schema, seed, query, run,
//! report, gate, a short cutover drill, lab status, and a connection that
//! fails), with every byte they print and every file they write searched
//! for the password.

mod common;

use std::path::{Path, PathBuf};

const PASSWORD: &str = "Zq9-hunter2-s3cret";
const WRONG: &str = "Wx7-wrong-pw-s3cret";
const ROLE: &str = "rehearse_secret";
const DB: &str = "secret_db";

use common::{files, hits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_prints_or_writes_the_password() {
    let lab = common::lab();
    let port = lab.state.ports.primary;
    // A role that may only log in with its password, and a database of its own.
    let admin = rehearse::db::connect(&lab.primary_url("postgres"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {DB} WITH (FORCE); DROP ROLE IF EXISTS {ROLE}"
        ))
        .await
        .ok();
    admin
        .batch_execute(&format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"
        ))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {DB} OWNER {ROLE}"))
        .await
        .unwrap();
    let hba: String = admin.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    let text = std::fs::read_to_string(&hba).unwrap();
    let rule = format!("host all {ROLE} 127.0.0.1/32 scram-sha-256\n");
    if !text.contains(&rule) {
        // First match wins: the rule goes above the lab's trust lines.
        std::fs::write(&hba, format!("{rule}{text}")).unwrap();
    }
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();

    let url = format!("postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DB}");
    let no_password = format!("postgresql://{ROLE}@127.0.0.1:{port}/{DB}");
    let refused = rehearse::db::connect(&no_password).await;
    assert!(refused.is_err(), "the primary must require the password");
    rehearse::db::connect(&url)
        .await
        .expect("the password is accepted");

    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("secrets");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let scenario = work.join("mini.toml");
    std::fs::write(
        &scenario,
        "name = \"mini\"\nwarmup = \"1s\"\n\
         [[phase]]\nduration = \"4s\"\nrate = 40\n\
         [[mix]]\noperation = \"record_revenue\"\nweight = 3\n\
         [[mix]]\noperation = \"adjust\"\nweight = 1\n\
         [[mix]]\noperation = \"void\"\nweight = 1\n\
         [[mix]]\noperation = \"dashboard\"\nweight = 3\n\
         [[variant]]\nname = \"direct\"\nmode = \"legacy\"\nreads = \"primary\"\ncache = false\n\
         [budgets.dashboard]\nmax = \"10s\"\n\
         [validity]\nmax_driver_lag = \"200ms\"\n",
    )
    .unwrap();

    // The estate is the flag alone: no lab endpoints (which carry no password).
    let no_lab = work.join("no-lab");
    let run_dir = work.join("run");
    let drill_dir = work.join("drill");
    let wrong = format!("postgresql://{ROLE}:{WRONG}@127.0.0.1:{port}/{DB}");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let commands: Vec<(Vec<String>, Option<i32>)> = vec![
        (
            vec![
                "seed",
                "--profile",
                "smoke",
                "--orgs",
                "60",
                "--days",
                "7",
                "--mode",
                "legacy",
                "--allow-destructive",
                DB,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            Some(0),
        ),
        (
            vec![
                "query".into(),
                "dashboard".into(),
                "--org".into(),
                "1".into(),
                "--via".into(),
                "primary".into(),
                "--cache".into(),
                "off".into(),
            ],
            Some(0),
        ),
        (
            vec!["run".into(), s(&scenario), "--out".into(), s(&run_dir)],
            Some(0),
        ),
        (vec!["report".into(), s(&run_dir)], Some(0)),
        (vec!["gate".into(), s(&run_dir)], Some(0)),
        (
            vec![
                "cutover".into(),
                "drill".into(),
                "--under".into(),
                s(&scenario),
                "--steady".into(),
                "2s".into(),
                "--soak".into(),
                "2s".into(),
                "--race-writers".into(),
                "0".into(),
                "--out".into(),
                s(&drill_dir),
            ],
            Some(0),
        ),
        (vec!["cutover".into(), "status".into()], Some(0)),
    ];
    let mut printed: Vec<(String, Vec<u8>)> = Vec::new();
    for (args, want) in &commands {
        let out = common::rehearse_cmd()
            .arg("--primary-url")
            .arg(&url)
            .arg("--lab-dir")
            .arg(&no_lab)
            .args(args)
            .output()
            .unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            *want,
            "rehearse {}: {shown}",
            args.join(" ")
        );
        printed.push((args.join(" "), [out.stdout, out.stderr].concat()));
    }
    // A connection refused for a wrong password, and the lab's own status.
    let failed = common::rehearse_cmd()
        .args(["--primary-url", &wrong, "--lab-dir"])
        .arg(&no_lab)
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
        .output()
        .unwrap();
    assert_eq!(
        failed.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let failed_stderr = String::from_utf8_lossy(&failed.stderr).into_owned();
    printed.push((
        "query with a wrong password".into(),
        [failed.stdout, failed.stderr].concat(),
    ));
    let status = common::rehearse_cmd()
        .arg("--lab-dir")
        .arg(&lab.state.dir)
        .args(["lab", "status"])
        .output()
        .unwrap();
    printed.push(("lab status".into(), [status.stdout, status.stderr].concat()));

    let mut written = Vec::new();
    files(&work, &mut written);
    assert!(
        written.iter().any(|(p, _)| p.ends_with("run.json"))
            && written.iter().any(|(p, _)| p.ends_with("cutover.json"))
            && written.iter().any(|(p, _)| p.ends_with("report.html")),
        "the commands wrote their files"
    );
    let mut found = Vec::new();
    for (what, bytes) in &printed {
        for secret in [PASSWORD, WRONG] {
            if hits(bytes, secret) > 0 {
                found.push(format!("printed by `rehearse {what}`"));
            }
        }
    }
    for (path, bytes) in &written {
        for secret in [PASSWORD, WRONG] {
            if hits(bytes, secret) > 0 {
                found.push(format!("written to {}", path.display()));
            }
        }
    }
    eprintln!(
        "searched {} outputs and {} files ({} bytes) for the password",
        printed.len(),
        written.len(),
        written.iter().map(|(_, b)| b.len()).sum::<usize>()
            + printed.iter().map(|(_, b)| b.len()).sum::<usize>()
    );
    assert!(found.is_empty(), "the password leaked: {found:?}");
    // And the targets are still named, redacted.
    assert!(
        failed_stderr.contains("***"),
        "the failed connection names its target, redacted: {}",
        failed_stderr
    );
    // The run record names its target, redacted.
    let run_json = std::fs::read_to_string(run_dir.join("run.json")).unwrap();
    assert!(run_json.contains(&format!("{ROLE}:***@")), "{run_json}");
}
