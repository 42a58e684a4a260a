//! The phased rollout of `USE_PARTITIONED_TABLES` by tenant cohort (issue
//! 17, first part): which organizations are partitioned at a given
//! percentage.
//!
//! An organization is partitioned when it is on the allow list, or when it
//! is not on the deny list and its bucket is under the percentage, in basis
//! points. Its bucket is a stable hash of (salt, organization id) into
//! 0..9999, in the manner of Unleash's gradual rollout: widening only adds
//! organizations, narrowing only removes them, and a new salt draws a new
//! cohort. The hash is the generator's SplitMix finaliser over FNV-1a of the
//! salt, which the seed's reproducibility already pins: it must never change,
//! or a deployed cohort would move.

use std::collections::BTreeSet;

use crate::generate::rng::{mix, mix_str};

/// Basis points: 10,000 is everyone.
pub const ALL: u16 = 10_000;

/// An organization's bucket, 0..=9999, for a salt.
pub fn bucket(salt: &str, org: i64) -> u16 {
    (mix(mix_str(0, salt), org as u64) % ALL as u64) as u16
}

/// A rollout of the flag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollout {
    /// Share of the organizations, in basis points (0 to 10,000).
    pub basis_points: u16,
    pub salt: String,
    /// Always partitioned (a pilot group).
    pub allow: BTreeSet<i64>,
    /// Never partitioned, unless also allowed.
    pub deny: BTreeSet<i64>,
}

impl Rollout {
    /// Whether `org` uses the partitioned tables.
    pub fn partitioned(&self, org: i64) -> bool {
        self.allow.contains(&org)
            || (!self.deny.contains(&org) && bucket(&self.salt, org) < self.basis_points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(bp: u16) -> Rollout {
        Rollout {
            basis_points: bp,
            salt: "rollout-2026".into(),
            ..Rollout::default()
        }
    }

    #[test]
    fn buckets_are_stable_across_builds() {
        // Pinned: a change here moves every deployed cohort.
        let pinned: Vec<u16> = (1..=5).map(|o| bucket("s", o)).collect();
        assert_eq!(pinned, PINNED.to_vec(), "the bucket hash changed");
    }

    /// Buckets of organizations 1..=5 under salt "s", as first computed.
    const PINNED: [u16; 5] = [8226, 6197, 2752, 3617, 1051];

    #[test]
    fn widening_only_adds_and_narrowing_only_removes() {
        let steps = [0, 1, 100, 1_000, 5_000, 9_999, ALL];
        for w in steps.windows(2) {
            let (lo, hi) = (at(w[0]), at(w[1]));
            for org in 1..=50_000 {
                assert!(
                    !lo.partitioned(org) || hi.partitioned(org),
                    "org {org} is in at {} bp but not at {} bp",
                    w[0],
                    w[1]
                );
            }
        }
        assert!((1..=50_000).all(|o| at(ALL).partitioned(o)));
        assert!(!(1..=50_000).any(|o| at(0).partitioned(o)));
    }

    #[test]
    fn the_share_matches_the_percentage_and_the_salt_draws_a_new_cohort() {
        let n = 100_000;
        let ten = at(1_000);
        let inside: Vec<i64> = (1..=n).filter(|o| ten.partitioned(*o)).collect();
        let share = inside.len() as f64 / n as f64;
        assert!((share - 0.10).abs() < 0.005, "share {share}");
        let other = Rollout {
            salt: "another".into(),
            ..ten.clone()
        };
        let both = inside.iter().filter(|o| other.partitioned(**o)).count();
        // Independent draws overlap by about 10% of 10%.
        assert!(
            (both as f64 / inside.len() as f64 - 0.10).abs() < 0.02,
            "{both}"
        );
    }

    #[test]
    fn allow_wins_over_deny_and_the_percentage() {
        let mut r = at(0);
        r.allow.insert(12);
        r.deny.insert(12);
        r.deny.insert(57);
        assert!(r.partitioned(12));
        r.basis_points = ALL;
        assert!(!r.partitioned(57), "denied stays legacy even at 100%");
        assert!(r.partitioned(58));
    }
}
