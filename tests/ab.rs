//! `rehearse ab` on the lab: an A/A of one build against itself (one side a
//! binary, the other a settings file naming the same estate) is told SAME by
//! the sequential design, before its last round, and lists what the fixed
//! design could not tell; a build made 50% slower (a wrapper adding
//! --inject-delay) is DIFFERENT at the first look; an interrupted ab keeps
//! and judges its rounds; the report draws both sides and the per-round
//! ratios.

mod common;

use std::path::{Path, PathBuf};

const SCENARIO: &str = "name = \"sleep2\"\nwarmup = \"1s\"\n\
[[phase]]\nduration = \"6s\"\nrate = 100\narrival = \"constant\"\nmax_in_flight = 16\n\
[[mix]]\noperation = \"sql\"\nname = \"sleep\"\nweight = 1\nsql = \"SELECT pg_sleep(0.002)\"\nvia = \"primary\"\n\
[[variant]]\nname = \"direct\"\nmode = \"legacy\"\nreads = \"primary\"\ncache = false\n\
[validity]\nmax_driver_lag = \"200ms\"\n";

fn ab(
    dir: &Path,
    url: &str,
    a: &Path,
    b: &Path,
    out: &str,
    design: &[&str],
) -> (Option<i32>, String, PathBuf) {
    let out_dir = dir.join(out);
    let o = common::rehearse_cmd()
        .args(["--primary-url", url, "--lab-dir"])
        .arg(dir.join("no-lab"))
        .arg("ab")
        .arg(dir.join("sleep2.toml"))
        .arg("--a")
        .arg(a)
        .arg("--b")
        .arg(b)
        .args(design)
        .args(["--slice", "5s", "-q", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        out_dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_slices_pass_an_aa_and_catch_a_slower_build() {
    let lab = common::lab();
    let url = lab.fresh_database("ab").await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ab");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sleep2.toml"), SCENARIO).unwrap();
    let me = PathBuf::from(env!("CARGO_BIN_EXE_rehearse"));
    let settings = dir.join("same-estate.toml");
    std::fs::write(&settings, format!("[estate]\nprimary_url = \"{url}\"\n")).unwrap();
    let slow = dir.join("slow.sh");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\nexec {} \"$@\" --inject-delay 1ms\n",
            me.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // A/A: a binary against a settings file of the same estate, in the
    // fixed design. Its p99 rests on too few requests to decide: the pair
    // cannot be told same, so ab exits 3 and lists it (main said pass).
    let (code, text, aa) = ab(&dir, &url, &me, &settings, "aa", &["--rounds", "6"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        !text.contains("REGRESSION") && !text.contains("improvement"),
        "{text}"
    );
    assert!(
        !text.contains("INVALID"),
        "slices without budgets are measured, not invalid: {text}"
    );
    assert!(
        text.contains("could not tell") && text.contains(" p99 x") && text.contains("needs 10000"),
        "{text}"
    );
    assert!(text.contains("ab COULD NOT TELL [UNKNOWN]"), "{text}");
    let r = rehearse::ab::read(&aa).unwrap();
    let order: String = r.slices.iter().map(|s| s.side.as_str()).collect();
    assert_eq!(order, "abbabaababba");
    assert_eq!(r.round_ratios[0].1.len(), 6);
    assert!(matches!(r.b, rehearse::ab::Side::Settings(_)));

    // The same A/A in the sequential design, judged at p50 with a 25%
    // min-effect: SAME, before its last round (each look is one more chance
    // of a false alarm, which the level accounts for).
    let seq = [
        "--max-rounds",
        "6",
        "--min-effect",
        "25%",
        "--metrics",
        "p50",
    ];
    let (code, text, aa_seq) = ab(&dir, &url, &me, &settings, "aa-seq", &seq);
    assert_eq!(code, Some(0), "{text}");
    let r = rehearse::ab::read(&aa_seq).unwrap();
    assert_eq!(r.decision, "SAME", "{text}");
    assert!(r.rounds < 6 && r.rounds >= 3, "{} rounds: {text}", r.rounds);
    let d = r.design.as_ref().unwrap();
    assert!(d.looks() == 4 && d.level < 0.01, "{d:?}");
    assert_eq!(r.looks.last().unwrap().undecided, 0, "{:?}", r.looks);
    // SAME puts the interval inside 0.75..1.25, so its half-width on the
    // log scale, as a ratio − 1, is at most sqrt(1.25 / 0.75) − 1 = 0.291
    // (an interval off-centre reaches past 0.25 on one side).
    let reached = r.detectable[0].reached.unwrap();
    assert!(
        r.detectable[0].expected > 0.0 && reached > 0.0 && reached <= (1.25f64 / 0.75).sqrt() - 1.0,
        "{:?}",
        r.detectable
    );
    assert!(
        text.contains("sequential: ") && text.contains("every figure decided"),
        "{text}"
    );

    // B 1 ms slower on a 2 ms statement: DIFFERENT at p50 at the first
    // look, never an improvement.
    // (The 10% case needs 20 s slices; docs/src/comparing-builds.md quotes it, measured by hand.)
    let (code, text, slow_dir) = ab(&dir, &url, &me, &slow, "slow", &seq);
    assert_eq!(code, Some(1), "{text}");
    let r = rehearse::ab::read(&slow_dir).unwrap();
    assert_eq!(r.rounds, 3, "stopped at the first look: {text}");
    assert_eq!(r.decision, "DIFFERENT: B regressed", "{text}");
    let p50 = &r.comparisons[0].1.rows[0];
    assert_eq!(
        (p50.metric.as_str(), p50.change),
        ("p50", rehearse::compare::Finding::Regression),
        "{text}"
    );
    assert!(p50.ratio > 1.2 && p50.low > 1.0, "{p50:?}");
    assert!(
        r.comparisons
            .iter()
            .flat_map(|(_, c)| &c.rows)
            .all(|r| r.change != rehearse::compare::Finding::Improvement),
        "{text}"
    );
    assert!(
        r.round_ratios[0].1.iter().all(|x| x.p50 > 1.0),
        "{:?}",
        r.round_ratios
    );

    // The report of the ab directory.
    let rep = common::rehearse_cmd()
        .arg("report")
        .arg(&slow_dir)
        .output()
        .unwrap();
    assert_eq!(
        rep.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rep.stderr)
    );
    let html = std::fs::read_to_string(slow_dir.join("report.html")).unwrap();
    assert!(
        html.contains("FAIL") && html.contains("Paired verdicts"),
        "report.html"
    );
    for chart in [
        "ab-rounds-direct.sleep.png",
        "overlay-spectrum-direct.sleep.png",
    ] {
        let png = std::fs::read(slow_dir.join("charts").join(chart)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{chart}");
    }

    // Bad input is refused before anything runs, naming the flag.
    let refused = |b: &Path, extra: &[&str], flag: &str| {
        let o = common::rehearse_cmd()
            .args(["--primary-url", &url, "ab"])
            .arg(dir.join("sleep2.toml"))
            .arg("--a")
            .arg(&me)
            .arg("--b")
            .arg(b)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(flag), "{err}");
    };
    refused(&dir.join("nowhere"), &[], "--b");
    refused(&me, &["--rounds", "1"], "--rounds");
    refused(&me, &["--max-rounds", "2"], "--max-rounds");
    refused(&me, &["--min-effect", "ten"], "--min-effect");
    refused(&me, &["--metrics", "p42"], "--metrics p42");
    refused(&me, &["--rounds", "4", "--budget", "5m"], "--budget");

    // A slice that is invalid (a 0.5 s statement with 16 in flight cannot
    // reach 100/s) stops the rounds at once: INVALID, exit 3, never a pass.
    std::fs::write(
        dir.join("sleep2-invalid.toml"),
        SCENARIO.replace("pg_sleep(0.002)", "pg_sleep(0.5)"),
    )
    .unwrap();
    let o = common::rehearse_cmd()
        .args(["--primary-url", &url, "--lab-dir"])
        .arg(dir.join("no-lab"))
        .arg("ab")
        .arg(dir.join("sleep2-invalid.toml"))
        .arg("--a")
        .arg(&me)
        .arg("--b")
        .arg(&me)
        .args(["--slice", "2s", "-q", "--out"])
        .arg(dir.join("invalid"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{text}");
    let r = rehearse::ab::read(&dir.join("invalid")).unwrap();
    assert_eq!(r.decision, "INVALID", "{text}");
    assert_eq!(
        r.slices.len(),
        1,
        "it ran on after an invalid slice: {:?}",
        r.slices
    );
    assert!(r.stopped.starts_with("an invalid slice"), "{}", r.stopped);

    // A duet: each round's A and B at the same time, each at half the
    // scenario's 100/s.
    let (code, text, duet) = ab(
        &dir,
        &url,
        &me,
        &me,
        "duet",
        &["--rounds", "2", "--duet", "--allow-inconclusive"],
    );
    assert_eq!(code, Some(0), "{text}");
    let r = rehearse::ab::read(&duet).unwrap();
    assert!(r.duet && r.slices.len() == 4, "{:?}", r.slices);
    for pair in r.slices.chunks(2) {
        assert_eq!(pair[0].started_s, pair[1].started_s, "{pair:?}");
        let a = std::fs::read_to_string(duet.join(&pair[0].dir).join("run.json")).unwrap();
        assert!(a.contains("\"rate\": 50.0"), "not at half rate: {a}");
    }

    // Interrupted after its first round: the slices that ran are kept,
    // exit 130.
    let int_dir = dir.join("interrupted");
    let mut child = common::rehearse_cmd()
        .args(["--primary-url", &url, "--lab-dir"])
        .arg(dir.join("no-lab"))
        .arg("ab")
        .arg(dir.join("sleep2.toml"))
        .arg("--a")
        .arg(&me)
        .arg("--b")
        .arg(&me)
        .args(["--max-rounds", "6", "--slice", "3s", "-q", "--out"])
        .arg(&int_dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // ab.json appears once the first round is done.
    let t0 = std::time::Instant::now();
    while !int_dir.join("ab.json").exists() {
        assert!(t0.elapsed().as_secs() < 60, "no round finished in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let r = rehearse::ab::read(&int_dir).unwrap();
    assert!(r.interrupted && r.decision == "INTERRUPTED", "{r:?}");
    assert!(r.slices.len() >= 2, "{:?}", r.slices);
    assert!(r.slices.len() < 12, "it ran on: {:?}", r.slices);
    for s in &r.slices {
        assert!(
            int_dir.join(&s.dir).join("run.json").exists(),
            "{:?}",
            s.dir
        );
    }
}
