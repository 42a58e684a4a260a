//! One lab per test binary: started on first use on ports away from a lab
//! the user runs (which defaults to 25430), and stopped and purged when the
//! test process exits. A lab left by a killed run is cleaned up first.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use rehearse::estate::{Estate, Source};
use rehearse::lab::{self, LabCtx, LabOptions, LabState};

pub struct TestLab {
    pub state: LabState,
}

static LAB: OnceLock<TestLab> = OnceLock::new();

/// The name of this test binary without cargo's hash suffix.
fn binary_name() -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let stem = exe.file_stem().unwrap().to_string_lossy().into_owned();
    stem.rsplit_once('-')
        .map(|(n, _)| n.to_string())
        .unwrap_or(stem)
}

/// A directory for this binary's lab, under cargo's per-target temp dir.
pub fn lab_dir(suffix: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-{}{suffix}", binary_name()))
}

/// A port base in 26000..32749 derived from the binary's name, moved on
/// until the lab's ten consecutive ports are free: below the kernel's
/// ephemeral range (32768 up), which outgoing connections draw from.
pub fn port_base(salt: &str) -> u16 {
    let name = format!("{}{salt}", binary_name());
    let h = name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let mut base = 26000 + (h % 675) as u16 * 10;
    while (0..lab::PORTS_USED).any(|i| lab::process::port_taken(base + i)) {
        base += 10;
        if base > 32740 {
            base = 26000;
        }
    }
    base
}

/// The rehearse binary, with none of the user's own estate settings
/// (`REHEARSE_*`, `USE_PARTITIONED_TABLES`) leaking into the run.
pub fn rehearse_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rehearse"));
    for (k, _) in std::env::vars() {
        if k.starts_with("REHEARSE_") || k == "USE_PARTITIONED_TABLES" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Stop and delete a lab directory if a lab is there.
pub fn destroy(dir: &std::path::Path) {
    if let Ok(mut ctx) = LabCtx::open(dir) {
        ctx.set_verbose(false);
        let _ = ctx.down();
        let _ = ctx.purge();
    }
    let _ = std::fs::remove_dir_all(dir);
}

extern "C" fn teardown() {
    if let Some(l) = LAB.get() {
        destroy(&l.state.dir);
    }
}

/// Run a future to completion on a runtime of its own, from any context
/// (tests are async; the lab is started once, outside any one test's runtime).
pub fn block_on<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .expect("lab thread panicked")
}

/// The shared lab of this test binary, without Prometheus and the
/// exporters: their scrapes every 2 s would load the two cores the timing
/// tests measure on.
pub fn lab() -> &'static TestLab {
    shared_lab(false)
}

/// The shared lab of this test binary with its monitoring (a binary uses
/// either this or [`lab`]).
pub fn lab_monitored() -> &'static TestLab {
    let l = shared_lab(true);
    assert!(
        l.state.monitoring.is_some(),
        "this test binary's lab was started without monitoring: use lab_monitored() throughout"
    );
    l
}

/// The shared lab of this test binary started like staging (`lab up --tls
/// --auth scram`, without monitoring); a binary uses only this one.
pub fn lab_staging() -> &'static TestLab {
    shared_lab_with(|o| {
        o.tls = true;
        o.scram = true;
    })
}

fn shared_lab(monitoring: bool) -> &'static TestLab {
    shared_lab_with(|o| o.monitoring = monitoring)
}

fn shared_lab_with(set: impl FnOnce(&mut LabOptions)) -> &'static TestLab {
    LAB.get_or_init(|| {
        let dir = lab_dir("");
        destroy(&dir);
        let mut opts = LabOptions::new(&dir);
        opts.port_base = port_base("");
        opts.verbose = false;
        set(&mut opts);
        opts.rehearse_bin = Some(env!("CARGO_BIN_EXE_rehearse").into());
        let state = block_on(async move { lab::up(&opts).await }).expect("the test lab comes up");
        // SAFETY: registering a plain extern "C" function; libtest exits
        // through std::process::exit, which runs atexit handlers.
        unsafe { libc::atexit(teardown) };
        TestLab { state }
    })
}

impl TestLab {
    /// A URL to `db` on the lab primary.
    pub fn primary_url(&self, db: &str) -> String {
        self.state.url_for_db(lab::Component::Primary, db)
    }

    pub fn replica_url(&self, db: &str) -> String {
        self.state.url_for_db(lab::Component::Replica, db)
    }

    pub fn pgbouncer_url(&self) -> String {
        self.state.urls.pgbouncer.clone()
    }

    /// Create (or recreate) a database of its own for one test.
    pub async fn fresh_database(&self, name: &str) -> String {
        let admin = rehearse::db::connect(&self.primary_url("postgres"))
            .await
            .unwrap();
        // Two calls: a multi-statement batch is one transaction, which these refuse.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        self.primary_url(name)
    }

    /// The lab estate (replica and Redis included), pointed at database
    /// `name`, created afresh and seeded with `orgs` organizations (7 days,
    /// 8 partitions) in `modes`.
    pub async fn seeded(&self, name: &str, orgs: u64, modes: rehearse::schema::Modes) -> Estate {
        self.fresh_database(name).await;
        let flags = rehearse::estate::EstateFlags {
            lab_dir: Some(self.state.dir.clone()),
            ..Default::default()
        };
        let mut estate = Estate::resolve_with(&flags, |_| None).expect("the lab estate resolves");
        estate.primary.url = rehearse::url::with_database(&estate.primary.url, name);
        if let Some(r) = estate.replica.as_mut() {
            r.url = rehearse::url::with_database(&r.url, name);
        }
        // PgBouncer serves the lab's own database only.
        estate.pgbouncer = None;
        estate.pgbouncer_replica = None;
        let mut opts = rehearse::seed::SeedOptions::from_profile(rehearse::seed::Profile::Ci);
        opts.params.orgs = orgs;
        opts.params.days = 7;
        opts.modes = modes;
        opts.partitions = Some(8);
        opts.verbose = false;
        rehearse::seed::seed(&estate, &opts)
            .await
            .expect("the database seeds");
        estate
    }

    /// Settings whose primary is `url` on this lab, known to be the lab.
    pub fn estate(&self, url: &str) -> Estate {
        Estate::primary_only(url, Source::Lab(self.state.dir.clone()))
    }
}

/// What headless Chromium rendered of a report page.
#[derive(Debug, serde::Deserialize)]
pub struct RenderedPage {
    /// The tag and text of the page's first heading.
    pub first_heading: (String, String),
    /// The text of every table cell.
    pub cells: Vec<String>,
    /// Each chart's id and its rendered width and height in CSS pixels.
    pub charts: Vec<(String, f64, f64)>,
    /// The ids of the page's tables.
    pub tables: Vec<String>,
}

/// Render `html` in headless Chromium (Debian's `chromium`, which
/// `ci/test.sh` installs) and read back what the browser laid out: a probe
/// script appended to a copy of the page writes it into the DOM, and
/// `--dump-dom` prints the DOM once the page has loaded.
pub fn render_in_chromium(html: &std::path::Path) -> RenderedPage {
    let probe = r#"<script>
window.addEventListener('load', () => {
  const h = document.querySelector('h1,h2,h3,h4');
  const out = {
    first_heading: [h ? h.tagName.toLowerCase() : '', h ? h.textContent : ''],
    cells: [...document.querySelectorAll('td')].map(td => td.textContent),
    charts: [...document.querySelectorAll('figure')].map(f => {
      const r = (f.querySelector('svg,img') || f).getBoundingClientRect();
      return [f.id, r.width, r.height];
    }),
    tables: [...document.querySelectorAll('table')].map(t => t.id),
  };
  const pre = document.createElement('pre');
  pre.id = 'rehearse-probe';
  pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(out))));
  document.body.appendChild(pre);
});
</script>"#;
    let page = std::fs::read_to_string(html).unwrap();
    let copy = html.with_file_name("report.probe.html");
    std::fs::write(&copy, page.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let profile = html.with_file_name(".chromium-profile");
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1024",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.canonicalize().unwrap().display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("chromium did not start ({e}): `bash ci/test.sh` installs it (Debian's chromium package)")
        });
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"rehearse-probe\">").unwrap_or_else(|| {
        panic!(
            "the probe did not run: {}\n{}",
            dom.chars().take(500).collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
        )
    }) + "<pre id=\"rehearse-probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(dom[start..end].trim())
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// The rendered page holds no placeholder a serializer left behind, the
/// verdict is its first heading and every chart has a size.
pub fn assert_page_reads_well(p: &RenderedPage) {
    assert_eq!(p.first_heading.0, "h1", "{:?}", p.first_heading);
    let verdict = p.first_heading.1.trim();
    assert!(
        [
            "PASS",
            "FAIL",
            "INVALID",
            "INTERRUPTED",
            "FAILED",
            "cutover drill PASS",
            "cutover drill FAIL",
            "rollout drill PASS",
            "rollout drill FAIL",
            "alert drill PASS",
            "alert drill FAIL",
            "GO ",
            "NO-GO ",
            "UNKNOWN "
        ]
        .iter()
        .any(|v| verdict.starts_with(v)),
        "the first heading is not the verdict: {verdict}"
    );
    for c in &p.cells {
        let t = c.trim();
        assert!(
            !(t.contains("{}")
                || t.contains("[object")
                || t == "null"
                || t.contains("null,")
                || t.starts_with('{')
                || t.starts_with("[\"")
                || t.contains("\":")),
            "a cell shows raw data: {t:?}"
        );
    }
    assert!(!p.charts.is_empty(), "no chart on the page");
    for (id, w, h) in &p.charts {
        assert!(*w > 100.0 && *h > 50.0, "chart {id} renders {w}x{h}");
    }
}

/// The Python interpreter with HdrHistogram's own reader (package
/// `hdrhistogram`), as ci/bootstrap.sh sets it up.
pub fn hdr_python() -> PathBuf {
    let p = std::env::var_os("REHEARSE_HDR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".rehearse/pyenv/bin/python")
        });
    assert!(
        p.exists(),
        "{} is missing: run `bash ci/bootstrap.sh`, which installs HdrHistogram's Python reader there",
        p.display()
    );
    p
}

/// Per tag of an interval log, as HdrHistogram's Python reader decodes it:
/// {"count", "intervals", "max", "p50", "p99"} (ci/hlog_counts.py).
pub fn hlog_counts(hlog: &std::path::Path) -> serde_json::Value {
    hlog_union(&[hlog])
}

/// [`hlog_counts`] of several logs at once: the counts summed, the
/// quantiles of the union of all their intervals.
pub fn hlog_union(hlogs: &[&std::path::Path]) -> serde_json::Value {
    hdr_script(
        "hlog_counts.py",
        hlogs.iter().map(|p| p.as_os_str().to_owned()),
    )
}

/// Run one of ci/'s HdrHistogram scripts with its arguments; its JSON.
fn hdr_script(
    script: &str,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> serde_json::Value {
    let py = std::process::Command::new(hdr_python())
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("ci")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    serde_json::from_slice(&py.stdout).unwrap()
}

/// One tag of an interval log split at a run's job windows by
/// ci/hlog_windows.py (HdrHistogram's Python reader): {"inside": {"count",
/// "p99"}, "outside": {...}}, p99 in the log's unit.
pub fn hlog_windows(
    hlog: &std::path::Path,
    tag: &str,
    started_s: f64,
    warmup_s: f64,
    interval_s: f64,
    windows: &[(f64, f64)],
) -> serde_json::Value {
    let mut args = vec![hlog.as_os_str().to_owned(), tag.into()];
    args.extend([started_s, warmup_s, interval_s].map(|x| x.to_string().into()));
    args.extend(windows.iter().map(|(a, b)| format!("{a}-{b}").into()));
    hdr_script("hlog_windows.py", args)
}

/// The JSON report of `rehearse alerts drill`: every fault drilled (5), each
/// expected alert fired no sooner than its `for:` and within its deadline,
/// and resolved within its deadline.
pub fn assert_alert_drill_passed(report: &serde_json::Value) {
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 5, "{report}");
    for f in faults {
        for a in f["alerts"].as_array().unwrap() {
            let fired = a["fired_after_s"].as_f64().expect("fired");
            let resolved = a["resolved_after_s"].as_f64().expect("resolved");
            assert!(fired <= a["fire_deadline_s"].as_f64().unwrap(), "{a}");
            assert!(
                fired >= a["for_s"].as_f64().unwrap(),
                "fired before its for: {a}"
            );
            assert!(resolved <= a["resolve_deadline_s"].as_f64().unwrap(), "{a}");
        }
    }
}

/// Every file under `dir`, read whole (for the password scans).
pub fn files(dir: &std::path::Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
}

/// How many times `needle` occurs in `haystack`, byte for byte.
pub fn hits(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}
