//! The phased rollout of `USE_PARTITIONED_TABLES` by tenant cohort: the
//! changes (`change.rs`) and the drill (`drill.rs`). The cohort rule itself,
//! which the repository's routing applies on every call, lives beside that
//! routing in `repo/cohort.rs`, and is re-exported here.
//!
//! An organization is partitioned when it is on the allow list, or when it
//! is not on the deny list and its bucket is under the percentage, in basis
//! points. Its bucket is a stable hash of (salt, organization id) into
//! 0..9999, in the manner of Unleash's gradual rollout: widening only adds
//! organizations, narrowing only removes them, and a new salt draws a new
//! cohort. The hash is the generator's SplitMix finaliser over FNV-1a of the
//! salt, which the seed's reproducibility already pins: it must never change,
//! or a deployed cohort would move.

pub mod change;
pub mod drill;

pub use crate::repo::cohort::*;
pub use change::{apply, status, Change, ChangeReport, RolloutStatus};
