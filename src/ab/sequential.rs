//! The sequential rule of `rehearse ab`: look after every round, stop as
//! soon as the rounds decide, and keep the false-alarm rate at alpha however
//! many times it looked.
//!
//! A fixed-n test looked at after every round is wrong: each look is
//! another chance for noise to cross the line, and over 20 looks a test at
//! 1% alarms several times as often. The rule here is a group-sequential t
//! design with one constant boundary over the planned looks (Pocock's shape,
//! in the t form): every look from round `first_look` to `max_rounds` tests
//! at the same nominal level `level`, chosen so that the chance that *any*
//! look of a pair with no change crosses it is alpha. That chance has no
//! closed form for t statistics (each look has its own degrees of freedom,
//! and the looks share rounds), but it does not depend on the spread: it is
//! the same for every normal series of paired log ratios. So it is
//! simulated once per design, from a fixed seed (`calibrate`). The same
//! simulation turns a look's ordinary p-value into a sequential one, the
//! chance that some look of a no-change pair reaches a p-value that small
//! (`p_value`). Those are valid at every look, so Holm over an operation's
//! percentiles keeps its family-wise rate across the looks too: the first
//! true null Holm rejects has a sequential p-value at most alpha / m0, and
//! each of the m0 true nulls gets there with chance at most alpha / m0.
//!
//! The interval shown at a look is the t interval at `level`: every ratio it
//! excludes, the design rejects. So "SAME" (the interval inside
//! ±min-effect) and "DIFFERENT" (the interval excludes no change) read off
//! one interval, whose coverage holds under the repeated looks.

use serde::{Deserialize, Serialize};

use crate::compare::{t_quantile, t_tail};
use crate::generate::rng::SplitMix;

/// Simulated series per design: the level's own Monte Carlo error is then
/// about 0.07 percentage points at alpha 1%.
const PATHS: usize = 20_000;

/// The first round a sequential ab looks at: with fewer, the t interval has
/// one degree of freedom and decides nothing a team cares about.
pub const FIRST_LOOK: u32 = 3;

/// The planned looks and the level each is tested at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Design {
    /// The first round looked at.
    pub first_look: u32,
    /// The last round it may run (the planned looks run to here).
    pub max_rounds: u32,
    /// The false-alarm rate over all the looks together.
    pub alpha: f64,
    /// The nominal two-sided level of each look (alpha itself when there is
    /// one look).
    pub level: f64,
    /// Each simulated no-change series' smallest p-value over the looks,
    /// sorted: what `p_value` reads.
    #[serde(skip)]
    pmins: Vec<f64>,
}

fn normal(rng: &mut SplitMix) -> f64 {
    let (u1, u2) = (1.0 - rng.unit(), rng.unit());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The two-sided p-value of "mean zero" after each round of `xs` from
/// round `from`: Student's t on the rounds so far.
pub fn running_p(xs: &[f64], from: u32, mut each: impl FnMut(usize, f64)) {
    let (mut sum, mut sq) = (0.0, 0.0);
    for (i, x) in xs.iter().enumerate() {
        sum += x;
        sq += x * x;
        let n = (i + 1) as f64;
        if (i as u32) + 1 < from.max(2) {
            continue;
        }
        let mean = sum / n;
        let var = ((sq - n * mean * mean) / (n - 1.0)).max(0.0);
        let se = (var / n).sqrt();
        let p = if se > 0.0 {
            (2.0 * t_tail(mean.abs() / se, n - 1.0)).min(1.0)
        } else {
            1.0
        };
        each(i + 1, p);
    }
}

impl Design {
    /// One look after round `rounds`: the fixed-n test, at alpha.
    pub fn fixed(rounds: u32, alpha: f64) -> Design {
        Design {
            first_look: rounds,
            max_rounds: rounds,
            alpha,
            level: alpha,
            pmins: Vec::new(),
        }
    }

    /// Looks after every round from `first_look` to `max_rounds`, with a
    /// family-wise rate of alpha over them; the constant level simulated
    /// from `seed`.
    pub fn calibrate(first_look: u32, max_rounds: u32, alpha: f64, seed: u64) -> Design {
        let first_look = first_look.max(2);
        if max_rounds <= first_look {
            return Design::fixed(first_look.max(max_rounds), alpha);
        }
        let mut rng = SplitMix(seed ^ 0x5EC0_E7A1);
        let mut xs = vec![0.0; max_rounds as usize];
        let mut pmins: Vec<f64> = (0..PATHS)
            .map(|_| {
                for x in xs.iter_mut() {
                    *x = normal(&mut rng);
                }
                let mut min = 1.0f64;
                running_p(&xs, first_look, |_, p| min = min.min(p));
                min
            })
            .collect();
        pmins.sort_by(f64::total_cmp);
        // The level: the largest p whose sequential p-value is at most alpha.
        let k = ((alpha * (PATHS + 1) as f64).floor() as usize).saturating_sub(1);
        let level = if k == 0 { pmins[0] * 0.5 } else { pmins[k - 1] };
        Design {
            first_look,
            max_rounds,
            alpha,
            level,
            pmins,
        }
    }

    pub fn looks(&self) -> u32 {
        self.max_rounds - self.first_look + 1
    }

    /// The sequential p-value of an ordinary two-sided p-value seen at one
    /// of the looks: the chance that a no-change series reaches one as
    /// small at some look. The ordinary p itself when there is one look.
    pub fn p_value(&self, p: f64) -> f64 {
        if self.pmins.is_empty() {
            return p;
        }
        if !p.is_finite() {
            return p;
        }
        // Paths at or below p, plus one: never zero, as a p-value from a
        // simulation should not be.
        let at_or_below = self.pmins.partition_point(|&m| m <= p);
        ((at_or_below + 1) as f64 / (self.pmins.len() + 1) as f64).min(1.0)
    }

    /// The t quantile of an interval at a look with `rounds` rounds.
    pub fn t(&self, rounds: u32) -> f64 {
        t_quantile(1.0 - self.level / 2.0, (rounds as f64 - 1.0).max(1.0))
    }

    /// The smallest change (a ratio minus one) that the last look finds
    /// nine times in ten, given a per-round spread `sd` of the log ratio.
    pub fn detectable(&self, sd: f64) -> f64 {
        let n = self.max_rounds as f64;
        let df = (n - 1.0).max(1.0);
        let z = self.t(self.max_rounds) + t_quantile(0.90, df);
        (z * sd / n.sqrt()).exp() - 1.0
    }
}

/// The sample standard deviation of `xs`, or None with fewer than two.
pub fn spread(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    Some((xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

#[cfg(test)]
mod tests {
    //! The rule on synthetic drifting pairs: each round's two slices share a
    //! drift (an AR(1) of the log scale, 30% spread) and each has 5% noise of
    //! its own. Under repeated looks the sequential rule alarms at most at
    //! alpha; a fixed-n test peeked at after every round does not.
    use super::*;

    /// One pair's per-round log ratios, B over A, B `effect` slower.
    fn series(rng: &mut SplitMix, rounds: usize, effect: f64) -> Vec<f64> {
        let mut drift = 0.3 * normal(rng);
        (0..rounds)
            .map(|_| {
                drift = 0.8 * drift + 0.3 * 0.6 * normal(rng);
                let a = drift + 0.05 * normal(rng);
                let b = drift + (1.0 + effect).ln() + 0.05 * normal(rng);
                b - a
            })
            .collect()
    }

    /// The round at which a rule alarms, if it does: `level` is the
    /// nominal level of each look.
    fn alarm(xs: &[f64], first: u32, level: f64) -> Option<usize> {
        let mut at = None;
        running_p(xs, first, |n, p| {
            if at.is_none() && p <= level {
                at = Some(n);
            }
        });
        at
    }

    #[test]
    fn repeated_looks_alarm_at_alpha_and_a_peeked_fixed_test_does_not() {
        let (alpha, first, max) = (0.05, FIRST_LOOK, 20);
        let d = Design::calibrate(first, max, alpha, 42);
        eprintln!(
            "design: {} looks, each at {:.4} (alpha {alpha})",
            d.looks(),
            d.level
        );
        assert!(d.level < alpha / 2.0 && d.level > alpha / d.looks() as f64);
        // An independent stream, so the check does not reuse the
        // calibration's own series.
        let mut rng = SplitMix(7);
        let n = 4000;
        let (mut seq, mut peek) = (0, 0);
        for _ in 0..n {
            let xs = series(&mut rng, max as usize, 0.0);
            seq += alarm(&xs, first, d.level).is_some() as usize;
            peek += alarm(&xs, first, alpha).is_some() as usize;
        }
        let (seq_rate, peek_rate) = (seq as f64 / n as f64, peek as f64 / n as f64);
        eprintln!("A/A, 20 rounds looked at from round 3: sequential {seq} of {n}, peeked fixed-n {peek} of {n}");
        // Three binomial standard errors above alpha.
        let slack = 3.0 * (alpha * (1.0 - alpha) / n as f64).sqrt();
        assert!(seq_rate <= alpha + slack, "sequential: {seq} of {n}");
        assert!(
            peek_rate > alpha + slack,
            "the peeked test alarmed {peek} of {n}: no more than alpha"
        );
        // And it still finds a change: +15% within the 20 rounds.
        let found = (0..400)
            .filter(|_| alarm(&series(&mut rng, max as usize, 0.15), first, d.level).is_some())
            .count();
        eprintln!("+15%: found in {found} of 400");
        assert!(found >= 380, "found in {found} of 400");
    }

    #[test]
    fn sequential_p_values_are_uniform_under_no_change() {
        let d = Design::calibrate(FIRST_LOOK, 12, 0.01, 1);
        // The smallest ordinary p over the looks of a no-change series, made
        // sequential, falls at or below alpha in about alpha of series.
        let mut rng = SplitMix(99);
        let n = 4000;
        let below = (0..n)
            .filter(|_| {
                let xs = series(&mut rng, 12, 0.0);
                let mut min = 1.0f64;
                running_p(&xs, FIRST_LOOK, |_, p| min = min.min(p));
                d.p_value(min) <= 0.05
            })
            .count();
        let rate = below as f64 / n as f64;
        assert!((rate - 0.05).abs() < 0.015, "{below} of {n}");
        assert_eq!(Design::fixed(6, 0.01).p_value(0.003), 0.003);
        assert_eq!(Design::calibrate(6, 6, 0.01, 1).level, 0.01);
    }
}
