//! What commands print, one file per command (hyperfine's `output/`): the
//! library computes, these render to text, and `main.rs` only parses,
//! dispatches and writes the text out. JSON output is the types' own serde.

pub mod ab;
pub mod bench;
pub mod check;
pub mod compare;
pub mod cutover;
pub mod jobs;
pub mod lab;
pub mod ledger;
pub mod query;
pub mod readiness;
pub mod replay;
pub mod report;
pub mod rollout;
pub mod run;
pub mod schema;
pub mod seed;
