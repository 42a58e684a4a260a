//! `rehearse readiness DIR...`: one verdict for `USE_PARTITIONED_TABLES`,
//! GO, NO-GO or UNKNOWN, drawn from every piece of evidence the rehearsal
//! left in its results directories, each read through its own strict reader.
//!
//! GO only when every piece [`REQUIRED`] lists is present and passes.
//! NO-GO when one fails, naming it with its figure. UNKNOWN when one is
//! missing, could not be read, or could not be judged: missing evidence is
//! never a pass. `gather.rs` finds and reads the directories, `judge.rs`
//! judges each piece, `modes.rs` sets legacy against partitioned per
//! operation, `page.rs` writes readiness.html and readiness.md.

mod gather;
mod judge;
pub use super::modes;
mod page;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::exit;

pub use gather::{gather, Found};
pub use judge::judge;

/// readiness.json's layout.
pub const READINESS_VERSION: u32 = 1;

/// The platform the rehearsal stands for: about a million organizations.
pub const PLATFORM_ORGANIZATIONS: u64 = 1_000_000;

/// One piece of evidence GO needs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Requirement {
    pub id: &'static str,
    pub title: &'static str,
    /// What it must show, in words.
    pub rule: &'static str,
    /// The command that gathers it.
    pub how: &'static str,
}

/// What GO requires: every piece present, readable, and passing. The one
/// list; the page prints it.
pub const REQUIRED: [Requirement; 5] = [
    Requirement {
        id: "suite",
        title: "Scenario suite",
        rule: "every suite scenario ran valid in the partitioned mode and met every budget there",
        how: "rehearse run SCENARIO... --out DIR",
    },
    Requirement {
        id: "cutover-drill",
        title: "Cutover drill",
        rule: "the cutover drill completed and passed: 0 acknowledged writes lost, changed or resurrected, every verify matched",
        how: "rehearse cutover drill --under SCENARIO --out DIR",
    },
    Requirement {
        id: "rollout-drill",
        title: "Rollout drill",
        rule: "the rollout drill completed and passed: 0 acknowledged writes lost, its rollback to 0% verified",
        how: "rehearse rollout drill --under SCENARIO --rollback-at P --out DIR",
    },
    Requirement {
        id: "alert-drill",
        title: "Alert drill",
        rule: "every expected alert fired and resolved within its deadline, and none fired in the steady period",
        how: "rehearse alerts drill --under SCENARIO --out DIR",
    },
    Requirement {
        id: "reconcile",
        title: "Reconcile",
        rule: "the reconcile job checked every summary and found no drift",
        how: "rehearse job run reconcile --out DIR",
    },
];

/// The page's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Go,
    NoGo,
    Unknown,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Go => "GO",
            Verdict::NoGo => "NO-GO",
            Verdict::Unknown => "UNKNOWN",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Go => exit::OK,
            Verdict::NoGo => exit::FAIL,
            Verdict::Unknown => exit::INVALID,
        }
    }
}

/// How one piece stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pass,
    Fail,
    /// Missing, unreadable, or not judged.
    Unknown,
    /// Shown for the review, not judged (capacity, the jobs' cost).
    Info,
}

impl State {
    pub fn word(self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Fail => "FAIL",
            State::Unknown => "UNKNOWN",
            State::Info => "for the review",
        }
    }
}

/// A directory a piece was read from, with where to look.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub dir: PathBuf,
    /// The table that shows the figure: `report.html#anchor`, relative to `dir`.
    pub anchor: Option<String>,
    /// The piece's key chart, relative to `dir` (`charts/NAME.svg`).
    pub chart: Option<String>,
}

/// One piece of evidence, judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Piece {
    pub id: String,
    pub title: String,
    pub required: bool,
    pub state: State,
    /// The figure the state rests on, in words.
    pub figure: String,
    /// Why it is not a pass.
    pub reasons: Vec<String>,
    /// What a reviewer should know besides (not judged).
    pub notes: Vec<String>,
    /// The size of the estate it ran on, when its record says.
    pub organizations: Option<u64>,
    pub sources: Vec<Source>,
}

/// The readiness verdict and everything it rests on (readiness.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Readiness {
    pub schema_version: u32,
    pub verdict: Verdict,
    pub exit_code: i32,
    /// Why the verdict is not GO: each failing, missing or unjudged piece.
    pub reasons: Vec<String>,
    pub pieces: Vec<Piece>,
    /// Legacy against partitioned, per scenario, operation and figure.
    pub modes: Vec<modes::ModeRow>,
    /// What the estate's size means for the figures.
    pub estate_note: String,
    /// The directories read.
    pub dirs: Vec<PathBuf>,
    /// Directories that could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Where `rehearse readiness` wrote its page.
pub struct Written {
    pub readiness: Readiness,
    pub html: PathBuf,
    pub markdown: PathBuf,
    pub json: PathBuf,
}

/// Read `dirs`, judge, and write readiness.{html,md,json} (and the ratio
/// chart) into `out`.
pub fn readiness(dirs: &[PathBuf], out: &Path) -> Result<Written> {
    for d in dirs {
        if !d.is_dir() {
            return Err(Error::Usage(format!(
                "{}: not a directory of results",
                d.display()
            )));
        }
    }
    let found = gather(dirs)?;
    let r = judge(&found, dirs);
    std::fs::create_dir_all(out).io("creating", out)?;
    let doc = page::page(&r, out)?;
    let json = out.join("readiness.json");
    let text = serde_json::to_string_pretty(&r).expect("the readiness serializes");
    crate::fsutil::write_atomic(&json, text.as_bytes())?;
    use crate::render::Renderer as _;
    let markdown = out.join("readiness.md");
    crate::fsutil::write_atomic(&markdown, crate::render::Markdown.render(&doc).as_bytes())?;
    let html = out.join("readiness.html");
    crate::fsutil::write_atomic(&html, crate::render::Html.render(&doc).as_bytes())?;
    Ok(Written {
        readiness: r,
        html,
        markdown,
        json,
    })
}
