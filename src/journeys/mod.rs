//! User journeys over HTTP: the journeys file format ([`file`], checked by
//! `rehearse check` in every build) and, with the `journeys` feature, the
//! Goose runner ([`run`]) that drives `rehearse serve`: `calls.rs` one
//! step's HTTP call as a Goose transaction, `record.rs` the run record it
//! becomes.

#[cfg(feature = "journeys")]
mod calls;
pub mod file;
#[cfg(feature = "journeys")]
mod record;
#[cfg(feature = "journeys")]
pub mod run;
