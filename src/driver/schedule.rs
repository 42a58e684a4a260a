//! When the requests of an open phase are meant to start.
//!
//! The rate may ramp linearly from `rate` to `ramp_to` over the phase, so the
//! cumulative intensity is Λ(t) = r0·t + (r1 − r0)·t²/(2D). Constant arrivals
//! put request n at Λ⁻¹(n); Poisson arrivals at Λ⁻¹(E₁ + … + Eₙ) with unit
//! exponential Eᵢ, which is a (non-homogeneous) Poisson process. The same seed
//! gives the same schedule, so every variant of a run is offered the same load.

use std::time::Duration;

use crate::generate::rng::SplitMix;
use crate::scenario::Arrival;

/// Intended start offsets (from the phase start) of an open phase.
#[derive(Debug, Clone)]
pub struct Arrivals {
    r0: f64,
    r1: f64,
    secs: f64,
    arrival: Arrival,
    rng: SplitMix,
    /// Λ of the last arrival.
    mass: f64,
}

impl Arrivals {
    pub fn new(
        rate: f64,
        ramp_to: f64,
        duration: Duration,
        arrival: Arrival,
        seed: u64,
    ) -> Arrivals {
        Arrivals {
            r0: rate,
            r1: ramp_to,
            secs: duration.as_secs_f64(),
            arrival,
            rng: SplitMix(seed),
            mass: 0.0,
        }
    }

    /// The number of requests the phase offers, in expectation.
    pub fn expected(&self) -> f64 {
        (self.r0 + self.r1) / 2.0 * self.secs
    }

    /// Λ⁻¹(x): the time by which `x` requests are due.
    fn time_of(&self, x: f64) -> f64 {
        let a = (self.r1 - self.r0) / (2.0 * self.secs);
        let b = self.r0;
        if a.abs() < 1e-12 {
            return x / b;
        }
        let disc = b * b + 4.0 * a * x;
        if disc < 0.0 {
            return f64::INFINITY;
        }
        // The stable root of a·t² + b·t − x = 0.
        2.0 * x / (b + disc.sqrt())
    }
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let step = match self.arrival {
            Arrival::Constant => 1.0,
            // 1 − u is in (0, 1], so the logarithm is finite.
            Arrival::Poisson => -(1.0f64 - self.rng.unit()).ln(),
        };
        let mass = self.mass + step;
        let t = self.time_of(mass);
        // A NaN or infinite time (a ramp down that never gets there) ends the phase too.
        if t.is_nan() || t >= self.secs {
            return None;
        }
        self.mass = mass;
        Some(Duration::from_secs_f64(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests per whole second of a schedule.
    fn per_second(a: Arrivals, secs: usize) -> Vec<f64> {
        let mut counts = vec![0.0; secs];
        for t in a {
            counts[t.as_secs() as usize] += 1.0;
        }
        counts
    }

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (
            m,
            xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
        )
    }

    #[test]
    fn poisson_arrivals_have_the_rate_as_mean_and_variance() {
        let a = Arrivals::new(200.0, 200.0, Duration::from_secs(400), Arrival::Poisson, 7);
        let (m, v) = mean_var(&per_second(a, 400));
        // Counts per second of a Poisson process: mean = variance = 200;
        // over 400 seconds the mean's standard error is 0.7, the variance's about 14.
        assert!((m - 200.0).abs() < 3.0, "mean {m}");
        assert!((v / m - 1.0).abs() < 0.25, "index of dispersion {}", v / m);
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let a = Arrivals::new(100.0, 100.0, Duration::from_secs(10), Arrival::Constant, 7);
        let ts: Vec<Duration> = a.collect();
        assert_eq!(
            ts.len(),
            999,
            "requests 1..999 at 10 ms steps; the 1000th is at 10 s"
        );
        assert_eq!(ts[0], Duration::from_millis(10));
        let (_, v) = mean_var(&per_second(
            Arrivals::new(100.0, 100.0, Duration::from_secs(10), Arrival::Constant, 7),
            10,
        ));
        assert!(v < 1.0, "{v}");
    }

    #[test]
    fn a_ramp_offers_the_area_under_the_rate() {
        let a = Arrivals::new(100.0, 300.0, Duration::from_secs(20), Arrival::Constant, 1);
        let expected = a.expected();
        let counts = per_second(a, 20);
        let total: f64 = counts.iter().sum();
        assert!((total - expected).abs() <= 1.0, "{total} vs {expected}");
        assert!(
            (counts[0] - 105.0).abs() <= 1.0,
            "first second {}",
            counts[0]
        );
        assert!(
            (counts[19] - 295.0).abs() <= 1.0,
            "last second {}",
            counts[19]
        );
        // Ramping down works too.
        let down: f64 = per_second(
            Arrivals::new(300.0, 100.0, Duration::from_secs(20), Arrival::Poisson, 1),
            20,
        )
        .iter()
        .sum();
        assert!((down - 4000.0).abs() < 200.0, "{down}");
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_differs() {
        let mk = |s| Arrivals::new(50.0, 50.0, Duration::from_secs(5), Arrival::Poisson, s);
        assert_eq!(mk(3).collect::<Vec<_>>(), mk(3).collect::<Vec<_>>());
        assert_ne!(mk(3).collect::<Vec<_>>(), mk(4).collect::<Vec<_>>());
    }
}
