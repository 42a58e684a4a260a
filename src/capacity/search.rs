//! The search for the highest rate that passes, independent of how a
//! probe runs: grow geometrically from `from` until a step fails, then
//! bisect (geometric midpoints) to the resolution. A failing probe counts
//! only once a second trial fails too; the final passing rate is confirmed
//! by a second trial as well. A probe the driver could not offer bounds the
//! bracket from above without a second trial, and the bisection goes on
//! below it: a budget the estate fails at a rate the driver can offer is a
//! capacity; a bracket that closes on the driver's limit ends driver-limited,
//! and that figure is never reported as the estate's.

use serde::{Deserialize, Serialize};

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Outcome {
    /// Valid, and every budget held.
    Pass,
    /// A budget was missed, or the estate could not keep up: why.
    Fail { reasons: Vec<String> },
    /// The numbers cannot be judged: the driver was the bottleneck, or a
    /// budget had too few samples.
    Invalid {
        reasons: Vec<String>,
        driver_limited: bool,
    },
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass)
    }

    pub fn reasons(&self) -> &[String] {
        match self {
            Outcome::Pass => &[],
            Outcome::Fail { reasons } | Outcome::Invalid { reasons, .. } => reasons,
        }
    }
}

/// The search's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub from: f64,
    pub max: f64,
    /// Stop bisecting when the bracket is narrower than this fraction of its low end.
    pub resolution: f64,
    /// Trials of a rate before it counts as failing (and of the final pass).
    pub trials: u32,
    /// Growth factor between steps before the first failure.
    pub growth: f64,
}

/// One probe run, in the order run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub rate: f64,
    /// 1 for the first run of this rate, 2 for its confirmation, ...
    pub trial: u32,
    pub outcome: Outcome,
}

/// How the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum End {
    /// The bracket closed to the resolution: `capacity` passes, `first_failing` fails.
    Found,
    /// Even `max` passed: the capacity is at least `max`.
    AtLeastMax,
    /// Even `from` failed.
    FromFails,
    /// The driver could not offer a rate: it, not the estate, was the limit.
    DriverLimited,
    /// A probe could not be judged for another reason.
    Invalid,
}

/// The search's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Found {
    pub end: End,
    /// The highest rate that passed all its trials (None: none did).
    pub capacity: Option<f64>,
    /// The lowest rate whose failure was confirmed (or that was invalid).
    pub first_failing: Option<f64>,
    /// Why that rate failed.
    pub reasons: Vec<String>,
    pub probes: Vec<Probe>,
}

/// Run the search; `probe(rate, trial)` runs one measured probe.
pub async fn search<F, Fut, E>(s: &Settings, mut probe: F) -> Result<Found, E>
where
    F: FnMut(f64, u32) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, E>>,
{
    let mut probes = Vec::new();
    // Judge a rate: pass, or its failure confirmed over `trials` runs. A
    // trial that passes after a failure makes the rate pass (a stall).
    macro_rules! judge {
        ($rate:expr) => {{
            let rate: f64 = $rate;
            let mut verdict = None;
            for trial in 1..=s.trials.max(1) {
                let o = probe(rate, trial).await?;
                probes.push(Probe {
                    rate,
                    trial,
                    outcome: o.clone(),
                });
                match o {
                    Outcome::Pass => {
                        verdict = Some(Outcome::Pass);
                        break;
                    }
                    // The driver's limit is not flaky: no second trial.
                    Outcome::Invalid {
                        driver_limited: true,
                        ..
                    } => {
                        verdict = Some(o);
                        break;
                    }
                    other => verdict = Some(other),
                }
            }
            verdict.expect("at least one trial")
        }};
    }
    let end = |end, capacity: Option<f64>, failing: Option<(f64, Outcome)>, probes| {
        let mut reasons: Vec<String> = failing
            .as_ref()
            .map(|f| f.1.reasons().to_vec())
            .unwrap_or_default();
        // A driver-limited search has no capacity, only a floor under it.
        let capacity = match (end, capacity) {
            (End::DriverLimited | End::Invalid, Some(lo)) => {
                reasons.push(format!(
                    "every rate up to {lo:.1} req/s passed; the estate's capacity is at least that, and unknown above it"
                ));
                None
            }
            (_, c) => c,
        };
        Found {
            end,
            capacity,
            first_failing: failing.as_ref().map(|f| f.0),
            reasons,
            probes,
        }
    };
    let stop_on = |o: &Outcome| match o {
        Outcome::Invalid {
            driver_limited: true,
            ..
        } => Some(End::DriverLimited),
        Outcome::Invalid { .. } => Some(End::Invalid),
        _ => None,
    };
    let first = judge!(s.from);
    if !first.passed() {
        let e = stop_on(&first).unwrap_or(End::FromFails);
        return Ok(end(e, None, Some((s.from, first)), probes));
    }
    // How the bracket's upper end ends the search: a confirmed failure
    // finds the capacity; a rate the driver could not offer leaves it
    // unknown (at least `lo`, the driver's limit above).
    let closing = |o: &Outcome| match o {
        Outcome::Invalid {
            driver_limited: true,
            ..
        } => End::DriverLimited,
        _ => End::Found,
    };
    // Confirmed passes, ascending; the bracket is (lo, hi). A driver-limited
    // probe bounds it from above like a failure, and the bisection goes on
    // below it: the estate may still fail a budget at a rate the driver
    // can offer, and that is a capacity.
    let mut passes = vec![s.from];
    let mut hi: Option<(f64, Outcome)> = None;
    let mut lo = s.from;
    while hi.is_none() {
        if lo >= s.max {
            return Ok(end(End::AtLeastMax, Some(lo), None, probes));
        }
        let r = (lo * s.growth).min(s.max);
        let o = judge!(r);
        if let Some(End::Invalid) = stop_on(&o) {
            return Ok(end(End::Invalid, Some(lo), Some((r, o)), probes));
        }
        if o.passed() {
            lo = r;
            passes.push(r);
        } else {
            hi = Some((r, o));
        }
    }
    loop {
        let (h, ho) = hi.clone().expect("bracketed");
        if (h - lo) / lo <= s.resolution {
            // Confirm the final pass: `trials` passing runs of it, and more
            // passes than failures (a rate that failed once and then passed
            // once is a stall's pass, not yet a capacity).
            let at_lo = |pass: bool| {
                probes
                    .iter()
                    .filter(|p| p.rate == lo && p.outcome.passed() == pass)
                    .count() as u32
            };
            let (passed, failed) = (at_lo(true), at_lo(false));
            if s.trials <= 1 || (passed >= s.trials && passed > failed) {
                return Ok(end(closing(&ho), Some(lo), hi, probes));
            }
            let trial = passed + failed + 1;
            let o = probe(lo, trial).await?;
            probes.push(Probe {
                rate: lo,
                trial,
                outcome: o.clone(),
            });
            if o.passed() {
                continue;
            }
            if let Some(End::Invalid) = stop_on(&o) {
                return Ok(end(End::Invalid, None, Some((lo, o)), probes));
            }
            // It failed on confirmation: the bracket moves down.
            passes.pop();
            hi = Some((lo, o));
            match passes.last() {
                Some(p) => lo = *p,
                None => {
                    let e = stop_on(&hi.as_ref().expect("set").1).unwrap_or(End::FromFails);
                    return Ok(end(e, None, hi, probes));
                }
            }
            continue;
        }
        let mid = (lo * h).sqrt();
        let o = judge!(mid);
        if let Some(End::Invalid) = stop_on(&o) {
            return Ok(end(End::Invalid, Some(lo), Some((mid, o)), probes));
        }
        if o.passed() {
            lo = mid;
            passes.push(mid);
        } else {
            hi = Some((mid, o));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            from: 10.0,
            max: 10_000.0,
            resolution: 0.05,
            trials: 2,
            growth: 2.0,
        }
    }

    fn fail() -> Outcome {
        Outcome::Fail {
            reasons: vec!["dashboard p99 30 ms > 20 ms".into()],
        }
    }

    /// A fake estate whose capacity is `cap`.
    async fn run(s: &Settings, cap: f64, stall_at: Option<f64>) -> Found {
        let mut stalled = false;
        search::<_, _, ()>(s, |rate, _trial| {
            let o = if stall_at == Some(rate) && !stalled {
                stalled = true;
                fail()
            } else if rate <= cap {
                Outcome::Pass
            } else {
                fail()
            };
            async move { Ok(o) }
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_search_finds_a_known_capacity_within_its_resolution() {
        for cap in [37.0, 333.0, 1_000.0, 4_321.0] {
            let f = run(&settings(), cap, None).await;
            assert_eq!(f.end, End::Found, "{f:?}");
            let c = f.capacity.unwrap();
            assert!(c <= cap && c >= cap / 1.05 / 1.05, "cap {cap}: found {c}");
            let h = f.first_failing.unwrap();
            assert!(h > cap && (h - c) / c <= 0.05, "{f:?}");
            // Every failing rate was tried twice, the final pass too.
            let trials = |r: f64| f.probes.iter().filter(|p| p.rate == r).count();
            assert_eq!(trials(h), 2);
            assert_eq!(trials(c), 2);
            assert_eq!(f.reasons, ["dashboard p99 30 ms > 20 ms"]);
        }
    }

    #[tokio::test]
    async fn a_stall_that_fails_one_trial_does_not_end_the_search_early() {
        // Without confirmation, 40 failing once would stop the search at 20.
        let f = run(&settings(), 1_000.0, Some(40.0)).await;
        assert_eq!(f.end, End::Found);
        assert!(f.capacity.unwrap() > 900.0, "{f:?}");
        let at40: Vec<bool> = f
            .probes
            .iter()
            .filter(|p| p.rate == 40.0)
            .map(|p| p.outcome.passed())
            .collect();
        assert_eq!(at40, [false, true]);
        let one = Settings {
            trials: 1,
            ..settings()
        };
        let f = run(&one, 1_000.0, Some(40.0)).await;
        assert!(
            f.capacity.unwrap() < 40.0,
            "one trial trusts the stall: {f:?}"
        );
    }

    #[tokio::test]
    async fn the_driver_as_the_limit_ends_the_search_and_from_failing_is_said() {
        let driver = || Outcome::Invalid {
            reasons: vec!["the driver was the bottleneck".into()],
            driver_limited: true,
        };
        // The driver's limit (100/s) below the estate's: the search closes
        // in on it and ends driver-limited, never with a capacity.
        let f = search::<_, _, ()>(&settings(), |rate, _| async move {
            Ok(if rate < 100.0 {
                Outcome::Pass
            } else {
                driver()
            })
        })
        .await
        .unwrap();
        assert_eq!(f.end, End::DriverLimited, "{f:?}");
        assert_eq!(f.capacity, None, "never the estate's capacity");
        let hi = f.first_failing.unwrap();
        assert!((100.0..105.0).contains(&hi), "{f:?}");
        assert!(f.reasons[1].starts_with("every rate up to 9"), "{f:?}");
        // A driver-limited rate is not retried.
        assert_eq!(f.probes.iter().filter(|p| p.rate == 160.0).count(), 1);
        // The estate fails a budget (at 120/s) below the driver's limit (160/s):
        // that is a capacity, found by bisecting under the driver-limited probe.
        let f = search::<_, _, ()>(&settings(), |rate, _| async move {
            Ok(if rate < 120.0 {
                Outcome::Pass
            } else if rate < 160.0 {
                fail()
            } else {
                driver()
            })
        })
        .await
        .unwrap();
        assert_eq!(f.end, End::Found, "{f:?}");
        assert!(
            f.capacity.unwrap() < 120.0 && f.first_failing.unwrap() >= 120.0,
            "{f:?}"
        );
        let f = run(&settings(), 5.0, None).await;
        assert_eq!((f.end, f.capacity), (End::FromFails, None));
        let f = run(&settings(), 1e9, None).await;
        assert_eq!((f.end, f.capacity), (End::AtLeastMax, Some(10_000.0)));
    }

    #[tokio::test]
    async fn a_final_rate_that_failed_once_and_passed_once_is_not_yet_confirmed() {
        // Near the knee (within 10% under 1,000/s) every rate's first trial
        // fails and later ones pass: the final rate is then a stall's pass
        // (fail, pass), and only a further passing trial confirms it. Main
        // counted that fail as a confirmation and reported the rate.
        let cap = 1_000.0;
        let mut seen = std::collections::HashMap::new();
        let f = search::<_, _, ()>(&settings(), |rate: f64, _| {
            let n = seen.entry(rate.to_bits()).or_insert(0);
            *n += 1;
            let o = if rate > cap || (rate > cap / 1.1 && *n == 1) {
                fail()
            } else {
                Outcome::Pass
            };
            async move { Ok(o) }
        })
        .await
        .unwrap();
        assert_eq!(f.end, End::Found, "{f:?}");
        let c = f.capacity.unwrap();
        let at_c: Vec<bool> = f
            .probes
            .iter()
            .filter(|p| p.rate == c)
            .map(|p| p.outcome.passed())
            .collect();
        let passes = at_c.iter().filter(|p| **p).count();
        assert!(
            passes >= 2 && passes > at_c.len() - passes,
            "capacity {c} rests on trials {at_c:?}"
        );
    }

    #[tokio::test]
    async fn a_final_pass_that_fails_its_confirmation_moves_the_bracket_down() {
        // 640 passes once, then fails every time after.
        let mut seen = std::collections::HashMap::new();
        let f = search::<_, _, ()>(&settings(), |rate: f64, _| {
            let n = seen.entry(rate.to_bits()).or_insert(0);
            *n += 1;
            let o = if rate <= 600.0 || (rate <= 640.0 && *n == 1) {
                Outcome::Pass
            } else {
                fail()
            };
            async move { Ok(o) }
        })
        .await
        .unwrap();
        assert_eq!(f.end, End::Found);
        assert!(f.capacity.unwrap() <= 600.0, "{f:?}");
        // The rates whose trials disagreed (those in (600, 640]) are named as drift.
        let drift = crate::capacity::drift(&f);
        for d in &drift {
            let rate: f64 = d.split(' ').next().unwrap().parse().unwrap();
            assert!(rate > 600.0 && rate <= 640.0, "{drift:?}");
        }
        assert!(
            drift[0].starts_with("640.0 req/s: trial 1 pass, trial 2 fail"),
            "{drift:?}"
        );
        let steady = run(&settings(), 1_000.0, None).await;
        assert!(crate::capacity::drift(&steady).is_empty());
    }
}
