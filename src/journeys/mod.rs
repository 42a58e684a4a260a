//! User journeys over HTTP: the journeys file format ([`file`], checked by
//! `rehearse check` in every build) and, with the `journeys` feature, the
//! Goose runner ([`run`]) that drives `rehearse serve`.

pub mod file;
#[cfg(feature = "journeys")]
pub mod run;
