//! One lab per test binary: started on first use on ports away from a lab
//! the user runs (which defaults to 54320), and stopped and purged when the
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

/// A port base in 57000..63999 derived from the binary's name, moved on
/// until four consecutive ports are free.
pub fn port_base(salt: &str) -> u16 {
    let name = format!("{}{salt}", binary_name());
    let h = name
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let mut base = 57000 + (h % 700) as u16 * 10;
    while (0..4).any(|i| lab::process::port_taken(base + i)) {
        base += 10;
        if base > 64000 {
            base = 57000;
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

/// The shared lab of this test binary.
pub fn lab() -> &'static TestLab {
    LAB.get_or_init(|| {
        let dir = lab_dir("");
        destroy(&dir);
        let mut opts = LabOptions::new(&dir);
        opts.port_base = port_base("");
        opts.verbose = false;
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

    /// Settings whose primary is `url` on this lab, known to be the lab.
    pub fn estate(&self, url: &str) -> Estate {
        Estate::primary_only(url, Source::Lab(self.state.dir.clone()))
    }
}
