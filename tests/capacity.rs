//! The capacity search against the lab: a statement of fixed service time
//! run by a fixed number of workers caps throughput at workers / time, so
//! the knee is known in advance; and a rate the driver cannot offer ends
//! the search as invalid, never as the estate's capacity.

mod common;

use std::path::{Path, PathBuf};

fn scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\n{body}\n[[variant]]\nname = \"only\"\nmode = \"legacy\"\nreads = \"primary\"\ncache = false\n"
        ),
    )
    .unwrap();
    p
}

fn capacity(url: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = common::rehearse_cmd()
        .args(["--primary-url", url, "capacity", "-q", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

/// One at a time: the flood would make the other probe's driver late.
#[test]
fn known_capacity_then_a_driver_limited_search() {
    the_search_finds_a_known_capacity_never_above_the_physical_cap();
    a_search_whose_driver_cannot_offer_the_rate_ends_invalid();
}

fn the_search_finds_a_known_capacity_never_above_the_physical_cap() {
    let url = common::block_on(async { common::lab().fresh_database("capacity_known").await });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capacity-known");
    let _ = std::fs::remove_dir_all(&dir);
    // 4 workers, 20 ms each: at most 200 requests/s. The budget sits just
    // above the service time, so queueing near the cap breaks it (a p50:
    // a few hundred requests bound it). Budgets are judged by intervals
    // whose dependence is measured over the probe's intervals: 200 ms ones
    // give a 10 s probe enough of them.
    let file = scenario(
        &dir,
        "fixed_service",
        "interval = \"200ms\"\n[[phase]]\nduration = \"4s\"\nrate = 25\narrival = \"constant\"\nmax_in_flight = 4\n\
         [[mix]]\noperation = \"sql\"\nname = \"sleep\"\nweight = 1\nsql = \"SELECT pg_sleep(0.02)\"\nvia = \"primary\"\n\
         [budgets.sleep]\np50 = \"30ms\"\n",
    );
    let out = dir.join("out");
    let (code, r, err) = capacity(
        &url,
        &[
            file.to_str().unwrap(),
            "--from",
            "50",
            "--step",
            "10s",
            "--warmup",
            "1s",
            "--resolution",
            "10%",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{r:#}\n{err}");
    let v = &r["variants"][0];
    assert_eq!(v["end"], "found", "{v:#}");
    let cap = 4.0 / 0.020;
    let found = v["capacity"].as_f64().unwrap();
    let failing = v["first_failing"].as_f64().unwrap();
    assert!(
        found <= cap,
        "found {found} req/s above the physical cap {cap}"
    );
    // The estate's own cap: 4 workers over the mean service time measured
    // at the first (unloaded) probe, a little under 200/s for the driver's
    // and the server's overhead. The knee lies at or under it, and the
    // search brackets the knee within its resolution (10%): so what it
    // found is within two resolutions of that cap (main accepted half).
    let first = v["runs"][0].as_str().unwrap();
    let probe0: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(first).join("run.json")).unwrap())
            .unwrap();
    let service_ms = probe0["variants"][0]["operations"][0]["service"]["mean_ms"]
        .as_f64()
        .unwrap();
    let measured_cap = 4.0 / (service_ms / 1e3);
    assert!(
        found >= measured_cap / 1.1 / 1.1,
        "found {found} req/s, more than the resolution under the measured cap {measured_cap:.1} \
         (4 workers x {service_ms:.2} ms)"
    );
    assert!(
        failing > found && (failing - found) / found <= 0.10 + 1e-9,
        "{v:#}"
    );
    assert!(
        !v["reasons"].as_array().unwrap().is_empty(),
        "a failing rate says why"
    );
    // Each probe is a run directory of its own that report reads.
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), v["probes"].as_array().unwrap().len());
    assert!(Path::new(runs[0].as_str().unwrap())
        .join("run.json")
        .exists());
    assert!(out.join("capacity.json").exists());
    // compare understands capacity directories: a search against itself
    // brackets a ratio of 1, which is within the searches' resolution.
    let cmp = common::rehearse_cmd()
        .args(["compare", "--json"])
        .arg(&out)
        .arg("--")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        cmp.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&cmp.stdout).unwrap();
    assert_eq!(rows[0]["variant"], "only", "{rows:#}");
    assert_eq!(rows[0]["ratio"], 1.0, "{rows:#}");
    assert_eq!(
        rows[0]["verdict"], "within the searches' resolution",
        "{rows:#}"
    );
    assert!(rows[0]["low"].as_f64().unwrap() < 1.0 && rows[0]["high"].as_f64().unwrap() > 1.0);
    // A capacity directory against a run directory is refused.
    let runs = v["runs"].as_array().unwrap();
    let cmp = common::rehearse_cmd()
        .arg("compare")
        .arg(&out)
        .arg("--")
        .arg(runs[0].as_str().unwrap())
        .output()
        .unwrap();
    assert_eq!(
        cmp.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
}

fn a_search_whose_driver_cannot_offer_the_rate_ends_invalid() {
    let url = common::block_on(async { common::lab().fresh_database("capacity_driver").await });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capacity-driver");
    let _ = std::fs::remove_dir_all(&dir);
    let file = scenario(
        &dir,
        "flood",
        "[[phase]]\nduration = \"2s\"\nrate = 10\nmax_in_flight = 20000\n\
         [[mix]]\noperation = \"sql\"\nname = \"one\"\nweight = 1\nsql = \"SELECT 1\"\nvia = \"primary\"\n\
         [budgets.one]\np99 = \"5s\"\n[validity]\nmax_driver_lag = \"2ms\"\n",
    );
    let (code, r, err) = capacity(
        &url,
        &[
            file.to_str().unwrap(),
            "--from",
            "200000",
            "--step",
            "2s",
            "--warmup",
            "500ms",
            "--out",
            dir.join("out").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{r:#}\n{err}");
    let v = &r["variants"][0];
    assert_eq!(v["end"], "driver-limited", "{v:#}");
    assert!(
        v["capacity"].is_null(),
        "never reported as the estate's capacity: {v:#}"
    );
    assert!(
        v["reasons"][0].as_str().unwrap().contains("the driver"),
        "{v:#}"
    );
}
