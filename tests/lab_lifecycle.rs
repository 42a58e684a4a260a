//! The lab's life through the CLI, on a lab of its own: up from nothing, up
//! again as a no-op, a port clash, stopping and starting one component, and
//! down leaving no process and no port behind.

mod common;

use std::path::Path;

use rehearse::lab::{process, LabCtx, LabState};

fn rehearse(args: &[&str]) -> (i32, String, String) {
    let out = common::rehearse_cmd().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Stops and purges the lab even when an assertion fails.
struct Cleanup<'a>(&'a Path);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        common::destroy(self.0);
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 || !process::alive(pid) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{pid}: {cmd}"));
            }
        }
    }
    found
}

#[test]
fn lab_up_status_stop_start_down_and_purge_leave_nothing_behind() {
    let dir = common::lab_dir("-own");
    common::destroy(&dir);
    let _cleanup = Cleanup(&dir);
    let d = dir.to_str().unwrap();
    let base = common::port_base("-own");
    let base_s = base.to_string();

    let (code, out, err) = rehearse(&["lab", "up", "--dir", d, "--port-base", &base_s]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("shared_buffers"),
        "settings are printed: {err}"
    );
    assert!(out.contains("replica") && out.contains("bytes"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("prometheus")
            && l.contains(" up ")
            && l.contains("Prometheus 2.")),
        "{out}"
    );

    // Prometheus scrapes every exporter; rehearse's own target is down
    // between runs (a run brings it up: tests/alerts.rs).
    let prom = format!("127.0.0.1:{}", base + 4);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let health = loop {
        let r = rehearse::http::get(&prom, "/api/v1/targets", std::time::Duration::from_secs(3))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let health: Vec<(String, String)> = v["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let l = &t["labels"];
                let role = l["role"]
                    .as_str()
                    .map(|r| format!("/{r}"))
                    .unwrap_or_default();
                (
                    format!("{}{role}", l["job"].as_str().unwrap()),
                    t["health"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        // Right after start the target list can still be empty.
        let settled = health.len() == 6 && health.iter().all(|(j, h)| h == "up" || j == "rehearse");
        if settled || std::time::Instant::now() > deadline {
            break health;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let mut jobs: Vec<&str> = health.iter().map(|(j, _)| j.as_str()).collect();
    jobs.sort();
    assert_eq!(
        jobs,
        [
            "pgbouncer",
            "postgres/primary",
            "postgres/replica",
            "prometheus",
            "redis",
            "rehearse"
        ],
        "{health:?}"
    );
    assert!(
        health.iter().all(|(j, h)| h == "up" || j == "rehearse"),
        "every exporter is scraped: {health:?}"
    );

    let (code, _, err) = rehearse(&["lab", "up", "--dir", d, "--port-base", &base_s]);
    assert_eq!(code, 0);
    assert!(err.contains("already running; nothing to do"), "{err}");

    // Another lab on the same ports is refused with the port and the way out.
    let other = common::lab_dir("-clash");
    common::destroy(&other);
    let (code, _, err) = rehearse(&[
        "lab",
        "up",
        "--dir",
        other.to_str().unwrap(),
        "--port-base",
        &base_s,
    ]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!("port {base}")) && err.contains("--port-base"),
        "{err}"
    );
    common::destroy(&other);

    let (code, out, _) = rehearse(&["lab", "env", "--dir", d]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "export REHEARSE_PRIMARY_URL='postgresql://postgres@127.0.0.1:{base}/rehearse'"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "export REHEARSE_PROMETHEUS_URL='http://127.0.0.1:{}'",
            base + 4
        )),
        "{out}"
    );

    // The README's `eval` line, with the lab given by a relative --dir, then
    // a command with no --dir from another directory: the exported lab
    // directory makes the URLs the lab's own, a rehearsal target.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = dir
        .strip_prefix(root)
        .expect("test labs live under the repository");
    let script = format!(
        "set -e; cd '{}'; eval \"$('{bin}' lab env --dir '{}')\"; cd /; \
         '{bin}' schema create; echo \"dir=$REHEARSE_LAB_DIR\"",
        root.display(),
        rel.display(),
        bin = env!("CARGO_BIN_EXE_rehearse"),
    );
    let mut bash = std::process::Command::new("bash");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REHEARSE_")) {
        bash.env_remove(k);
    }
    let out = bash.args(["-c", &script]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("dir={}", dir.display())), "{text}");

    let (code, _, _) = rehearse(&["lab", "stop", "replica", "--dir", d]);
    assert_eq!(code, 0);
    let (code, out, _) = rehearse(&["lab", "status", "--dir", d]);
    assert_eq!(code, 4, "status exits 4 while a component is down: {out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("replica") && l.contains("down")),
        "{out}"
    );
    let (code, _, err) = rehearse(&["lab", "start", "replica", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = rehearse(&["lab", "stop", "redis", "--dir", d]);
    assert_eq!(code, 0);
    let (code, out, _) = rehearse(&["lab", "status", "--dir", d]);
    assert_eq!(code, 4);
    assert!(
        out.lines()
            .any(|l| l.starts_with("redis") && l.contains("down")),
        "{out}"
    );
    let (code, _, err) = rehearse(&["lab", "start", "redis", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    // Monitoring components stop and start like the servers.
    let (code, _, _) = rehearse(&["lab", "stop", "prometheus", "--dir", d]);
    assert_eq!(code, 0);
    let (code, out, _) = rehearse(&["lab", "status", "--dir", d]);
    assert_eq!(code, 4);
    assert!(
        out.lines()
            .any(|l| l.starts_with("prometheus") && l.contains("down")),
        "{out}"
    );
    let (code, _, err) = rehearse(&["lab", "start", "prometheus", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = rehearse(&["lab", "status", "--json", "--dir", d]);
    assert_eq!(code, 0, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        status.as_array().unwrap().iter().all(|s| s["up"] == true),
        "{out}"
    );

    let state = LabState::load(&dir).unwrap().unwrap();
    let ctx = LabCtx::open(&dir).unwrap();
    let pids: Vec<i32> = rehearse::lab::Component::ALL
        .iter()
        .filter_map(|c| ctx.pid(*c))
        .collect();
    assert_eq!(pids.len(), 9, "four servers, four exporters and Prometheus");

    let (code, _, err) = rehearse(&["lab", "down", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    for pid in &pids {
        assert!(!process::alive(*pid), "pid {pid} survived lab down");
    }
    for port in rehearse::lab::Component::ALL.map(|c| state.ports.of(c)) {
        assert!(
            !process::port_taken(port),
            "port {port} still taken after lab down"
        );
    }
    let left = processes_mentioning(d);
    assert!(left.is_empty(), "processes of the lab remain: {left:?}");
    assert!(
        dir.join("primary/PG_VERSION").exists(),
        "down without --purge keeps the data"
    );

    let (code, _, err) = rehearse(&["lab", "down", "--purge", "--dir", d]);
    assert_eq!(code, 0, "{err}");
    assert!(!dir.exists());
}

#[test]
fn missing_binaries_are_named_with_the_packages_to_install() {
    let dir = common::lab_dir("-nobin");
    let (code, _, err) = rehearse(&[
        "lab",
        "up",
        "--dir",
        dir.to_str().unwrap(),
        "--pg-bindir",
        "/nonexistent/bin",
        "--port-base",
        "61000",
    ]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("initdb not found"), "{err}");
    assert!(
        err.contains("apt-get install postgresql pgbouncer redis-server"),
        "{err}"
    );
    assert!(err.contains("ci/bootstrap.sh"), "{err}");
    assert!(
        !dir.join("lab.json").exists(),
        "nothing is created when a binary is missing"
    );
}

#[test]
fn commands_without_a_lab_say_how_to_start_one() {
    let dir = common::lab_dir("-none");
    common::destroy(&dir);
    let (code, _, err) = rehearse(&["lab", "status", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 4);
    assert!(err.contains("rehearse lab up"), "{err}");
    let (code, _, err) = rehearse(&["schema", "create", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("REHEARSE_PRIMARY_URL") && err.contains("rehearse lab up"),
        "{err}"
    );
    let (code, _, _) = rehearse(&["lab", "stop", "replicas"]);
    assert_eq!(code, 2, "a bad component name is bad usage");
}
