//! Sharded runs (`rehearse run --shard I/N --start-at T`): N processes,
//! on one machine or as the pods of a Kubernetes indexed Job, offer one
//! scenario's schedule between them. The schedule is the unsharded run's,
//! from the same seed: arrival k of a phase goes to shard k mod N, and its
//! operation, tenant and parameters come from k as they would unsharded
//! (closed phases: user u goes to shard u mod N). Every shard starts each
//! variant at the same planned instant, so their interval histograms line
//! up and [`crate::merge`] can add them exactly.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::run::histogram::{HIGHEST_NS, LOWEST_NS, SIGFIG};
use crate::scenario::Scenario;

/// A shard's part and its start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardPlan {
    pub index: u32,
    pub count: u32,
    pub start_at: SystemTime,
}

/// How late a shard may be ready for a variant's planned start: later, it
/// refuses to run rather than offer its share out of step with the others.
pub const START_TOLERANCE: Duration = Duration::from_secs(1);

/// Time between variants' planned starts beyond the variant's length: the
/// last requests' timeout, and this much to drain and to set up the next.
pub const VARIANT_GAP: Duration = Duration::from_secs(10);

impl ShardPlan {
    /// Does this shard offer arrival (or closed-loop user) `k`?
    pub fn owns(&self, k: u64) -> bool {
        k % self.count as u64 == self.index as u64
    }

    /// The planned start of variant `i` (0 first): every shard computes the same.
    pub fn variant_start(&self, s: &Scenario, i: usize) -> SystemTime {
        self.start_at + (s.duration() + s.timeout.0 + VARIANT_GAP) * i as u32
    }

    /// Sleep until variant `i`'s planned start; refuse when it passed more
    /// than [`START_TOLERANCE`] ago (this shard would be out of step).
    pub async fn wait_for_variant(&self, s: &Scenario, i: usize) -> Result<()> {
        let at = self.variant_start(s, i);
        match at.duration_since(SystemTime::now()) {
            Ok(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Err(e) if e.duration() <= START_TOLERANCE => Ok(()),
            Err(e) => Err(Error::Usage(format!(
                "shard {}/{}: variant {} was to start at {} and this shard was ready {:.1} s later; \
                 the shards would be out of step (give --start-at far enough ahead for every shard to connect and load its tenants)",
                self.index,
                self.count,
                s.variants.get(i).map_or("?", |v| v.name.as_str()),
                rfc3339(at),
                e.duration().as_secs_f64()
            ))),
        }
    }
}

/// `I/N` with 0 <= I < N.
pub fn parse_shard(text: &str) -> std::result::Result<(u32, u32), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: a shard is I/N, e.g. 0/3"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: the shard index {i:?} is not a whole number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: the shard count {n:?} is not a whole number"))?;
    if n == 0 || i >= n {
        return Err(format!(
            "{text:?}: the index counts from 0 and must be below the count (0/{n} to {}/{n})",
            n.saturating_sub(1)
        ));
    }
    Ok((i, n))
}

/// An RFC 3339 time: `2026-12-01T21:00:00Z`, with optional fractions of a
/// second and a `+HH:MM` / `-HH:MM` offset instead of `Z` (the `time`
/// crate's parser).
pub fn parse_rfc3339(text: &str) -> std::result::Result<SystemTime, String> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map_err(|e| format!("{text:?}: not an RFC 3339 time ({e}); e.g. 2026-12-01T21:00:00Z"))?;
    if t.unix_timestamp() < 0 {
        return Err(format!("{text:?}: before 1970"));
    }
    Ok(SystemTime::from(t))
}

/// UTC, to the millisecond: `2026-12-01T21:00:00.000Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let whole = crate::day::iso_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()));
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), d.subsec_millis())
}

pub use crate::run::ShardInfo;

impl ShardInfo {
    pub fn new(plan: &ShardPlan, s: &Scenario) -> ShardInfo {
        ShardInfo {
            index: Some(plan.index),
            count: plan.count,
            scenario_hash: scenario_hash(s),
            seed: s.seed,
            start_at: rfc3339(plan.start_at),
            histogram: histogram_settings(s),
            merged_from: Vec::new(),
        }
    }
}

/// A hash of the scenario as run (its JSON form): two shards with
/// different rates, durations, mixes or variants differ here.
pub fn scenario_hash(s: &Scenario) -> String {
    let json = serde_json::to_string(s).expect("a scenario serializes");
    format!("{:016x}", crate::generate::rng::mix_str(0, &json))
}

/// The settings interval histograms are recorded with.
pub fn histogram_settings(s: &Scenario) -> String {
    format!(
        "ns, lowest {LOWEST_NS}, highest {HIGHEST_NS}, {SIGFIG} significant digits, interval {} s",
        s.interval.0.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_times_parse_or_say_why_not() {
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("3/3").unwrap_err().contains("below the count"));
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/3").unwrap_err().contains("index"));
        let t = parse_rfc3339("2026-12-01T21:00:00Z").unwrap();
        assert_eq!(rfc3339(t), "2026-12-01T21:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2026-12-01T22:30:00.25+01:30").unwrap(),
            t + Duration::from_millis(250)
        );
        assert_eq!(parse_rfc3339("2026-11-30T23:00:00-22:00").unwrap(), t);
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-12-01 21:00Z",
            "2026-12-01T25:00:00Z",
            "2026-12-01T21:00:00",
            "tomorrow",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shards_together_own_every_arrival_once() {
        let plans: Vec<ShardPlan> = (0..3)
            .map(|index| ShardPlan {
                index,
                count: 3,
                start_at: SystemTime::UNIX_EPOCH,
            })
            .collect();
        for k in 0..1000u64 {
            assert_eq!(plans.iter().filter(|p| p.owns(k)).count(), 1, "{k}");
        }
    }
}
