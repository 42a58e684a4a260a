//! The cohort rule of the phased rollout of `USE_PARTITIONED_TABLES`: which
//! organizations are partitioned at a given percentage. The repository's
//! routing applies it on every call; `rollout/` changes it.
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

use serde::Serialize;

use crate::error::{Error, Result};
use crate::generate::rng::{mix, mix_str};

/// The salt of a rollout started without `--salt`.
pub const DEFAULT_SALT: &str = "rollout";

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
    /// No organization partitioned, under the default salt.
    pub fn none() -> Rollout {
        Rollout {
            salt: DEFAULT_SALT.into(),
            ..Rollout::default()
        }
    }

    /// Whether `org` uses the partitioned tables.
    pub fn partitioned(&self, org: i64) -> bool {
        self.allow.contains(&org)
            || (!self.deny.contains(&org) && bucket(&self.salt, org) < self.basis_points)
    }

    /// Why `org` is in its cohort, in words.
    pub fn reason(&self, org: i64) -> String {
        let b = bucket(&self.salt, org);
        if self.allow.contains(&org) {
            "on the allow list".into()
        } else if self.deny.contains(&org) {
            "on the deny list".into()
        } else if b < self.basis_points {
            format!("bucket {b} < {} basis points", self.basis_points)
        } else {
            format!("bucket {b} >= {} basis points", self.basis_points)
        }
    }

    /// The percentage, as operators write it.
    pub fn percent(&self) -> String {
        percent_text(self.basis_points)
    }
}

/// Basis points as a percentage: 1000 is "10%", 1250 is "12.5%".
pub fn percent_text(bp: u16) -> String {
    let p = format!("{:.2}", bp as f64 / 100.0);
    format!("{}%", p.trim_end_matches('0').trim_end_matches('.'))
}

/// Parse a percentage (`10`, `12.5`, `0.01`, optionally with `%`) into
/// basis points; more precision than a basis point is refused.
pub fn parse_percent(s: &str) -> Result<u16> {
    let t = s.trim().trim_end_matches('%');
    let bad = |why: &str| Error::Usage(format!("percentage {s:?}: {why}"));
    let v: f64 = t
        .parse()
        .map_err(|_| bad("expected a number from 0 to 100, e.g. 10 or 12.5"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(bad("must lie between 0 and 100"));
    }
    let bp = (v * 100.0).round();
    if (bp - v * 100.0).abs() > 1e-6 {
        return Err(bad("a rollout moves in basis points: at most two decimals"));
    }
    Ok(bp as u16)
}

/// A rollout as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutView {
    pub basis_points: u16,
    pub percent: String,
    pub salt: String,
    pub allow: Vec<i64>,
    pub deny: Vec<i64>,
}

impl From<&Rollout> for RolloutView {
    fn from(r: &Rollout) -> RolloutView {
        RolloutView {
            basis_points: r.basis_points,
            percent: r.percent(),
            salt: r.salt.clone(),
            allow: r.allow.iter().copied().collect(),
            deny: r.deny.iter().copied().collect(),
        }
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
    fn percentages_parse_to_basis_points_and_back() {
        assert_eq!(parse_percent("10").unwrap(), 1_000);
        assert_eq!(parse_percent("12.5%").unwrap(), 1_250);
        assert_eq!(parse_percent("0.01").unwrap(), 1);
        assert_eq!(parse_percent("100").unwrap(), ALL);
        for bad in ["101", "-1", "ten", "0.001"] {
            let e = parse_percent(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::exit::USAGE, "{bad}");
        }
        assert_eq!(percent_text(1_000), "10%");
        assert_eq!(percent_text(1_250), "12.5%");
        assert_eq!(percent_text(1), "0.01%");
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
