//! The driver's efficiency floor, held in CI (issue 35): `rehearse bench
//! select --min-ratio` against pgbench on the test lab, alone in its test
//! binary so no other test shares the cores. The floor is relative to
//! pgbench, measured in the same call, so it carries from one machine to
//! another; it is set where this machine passes with margin and a driver
//! with one extra hop to another thread per request (`REHEARSE_INJECT_HOP`)
//! fails, and the test runs both.

mod common;

/// Throughput at least this share of pgbench's, CPU per request at most its inverse times.
const MIN_RATIO: &str = "0.4";

fn bench(url: &str, inject_hop: bool) -> (Option<i32>, String) {
    let mut cmd = common::rehearse_cmd();
    cmd.args(["--primary-url", url])
        .args(["bench", "select", "--scale", "1", "--clients", "8"])
        .args([
            "--duration",
            "5s",
            "--rounds",
            "3",
            "--min-ratio",
            MIN_RATIO,
        ])
        .args(["--allow-destructive", "calibration"]);
    if inject_hop {
        cmd.env("REHEARSE_INJECT_HOP", "1");
    }
    let o = cmd.output().unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// "median context switches per operation  pgbench: A  rehearse: B".
fn switches(out: &str) -> (f64, f64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("median context switches per operation"))
        .unwrap_or_else(|| panic!("no switches line in:\n{out}"));
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn the_driver_holds_its_floor_against_pgbench_and_one_extra_hop_per_request_breaks_it() {
    let lab = common::lab();
    let url = common::block_on(async { lab.fresh_database("calibration").await });

    let (code, out) = bench(&url, false);
    eprintln!("{out}");
    assert_eq!(code, Some(0), "the driver fell below its floor:\n{out}");
    assert!(
        out.contains(&format!("--min-ratio {MIN_RATIO}: met")),
        "{out}"
    );
    let (pg, ours) = switches(&out);

    let (code, out) = bench(&url, true);
    eprintln!("{out}");
    assert_eq!(
        code,
        Some(1),
        "one extra hop per request went through the floor:\n{out}"
    );
    assert!(out.contains("NOT met (exit 1)"), "{out}");
    // The hop shows where it costs: context switches per request, which
    // CPU time's noise does not blur.
    let (pg_hop, ours_hop) = switches(&out);
    assert!(
        ours_hop / pg_hop > 2.0 * (ours / pg),
        "switches per request: without the hop {ours} (pgbench {pg}), with it {ours_hop} (pgbench {pg_hop})"
    );
}
