//! The two-level block bootstrap the comparison draws its intervals from:
//! both sides' interval histograms on one grid of values (so a draw's
//! quantiles are a binary search over summed cumulative counts), runs drawn
//! with replacement, then moving blocks of each drawn run's intervals, of
//! the length its autocorrelation needs; and the between-run spread learned
//! from a side's several runs.

use std::ops::Range;

use hdrhistogram::Histogram;

use crate::generate::rng::SplitMix;
use crate::stats::block_length;

/// All interval histograms of one side, runs one after another.
pub(super) struct Layout {
    /// Each run's range of intervals, and its block length.
    pub(super) runs: Vec<(Range<usize>, usize)>,
}

/// One side's interval histograms on the shared grid.
pub(super) struct Side {
    /// Per interval, samples at or below each grid value: `cum[i * k + j]`.
    cum: Vec<u32>,
    pub(super) totals: Vec<u64>,
    pub(super) layout: Layout,
}

/// Both sides over one value grid.
pub(super) struct Grid {
    values: Vec<u64>,
    pub(super) a: Side,
    pub(super) b: Side,
}

impl Grid {
    pub(super) fn new(a: &[Vec<Histogram<u64>>], b: &[Vec<Histogram<u64>>]) -> Grid {
        let mut values: Vec<u64> = a
            .iter()
            .chain(b)
            .flatten()
            .flat_map(|h| {
                h.iter_recorded()
                    .map(move |v| h.highest_equivalent(v.value_iterated_to()))
            })
            .collect();
        values.sort_unstable();
        values.dedup();
        let k = values.len();
        let side = |runs: &[Vec<Histogram<u64>>]| {
            let hs: Vec<&Histogram<u64>> = runs.iter().flatten().collect();
            let mut cum = vec![0u32; hs.len() * k];
            for (i, h) in hs.iter().enumerate() {
                let row = &mut cum[i * k..(i + 1) * k];
                for v in h.iter_recorded() {
                    let x = h.highest_equivalent(v.value_iterated_to());
                    let j = values.binary_search(&x).expect("on the grid");
                    row[j] += v.count_at_value() as u32;
                }
                for j in 1..k {
                    row[j] += row[j - 1];
                }
            }
            let totals = hs.iter().map(|h| h.len()).collect();
            let mut start = 0;
            let layout = Layout {
                runs: runs
                    .iter()
                    .map(|r| {
                        let range = start..start + r.len();
                        start += r.len();
                        (range, block_length(&log_medians(r)))
                    })
                    .collect(),
            };
            Side {
                cum,
                totals,
                layout,
            }
        };
        let (a, b) = (side(a), side(b));
        Grid { values, a, b }
    }

    /// Quantiles (ms) of the union of the chosen intervals of a side: a
    /// binary search over the grid for each quantile, summing the chosen
    /// intervals' cumulative counts (times how often each was drawn).
    pub(super) fn quantiles(
        &self,
        side: &Side,
        chosen: &[usize],
        qs: &[f64],
        mult: &mut Vec<u32>,
    ) -> (Vec<f64>, u64) {
        let k = self.values.len();
        mult.clear();
        mult.resize(side.totals.len(), 0);
        for &i in chosen {
            mult[i] += 1;
        }
        let picked: Vec<(usize, u64)> = mult
            .iter()
            .enumerate()
            .filter(|(_, m)| **m > 0)
            .map(|(i, m)| (i * k, *m as u64))
            .collect();
        let total: u64 = picked
            .iter()
            .map(|&(row, m)| m * side.totals[row / k.max(1)])
            .sum();
        let at_or_below = |j: usize| -> u64 {
            picked
                .iter()
                .map(|&(row, m)| m * side.cum[row + j] as u64)
                .sum()
        };
        let out = qs
            .iter()
            .map(|&q| {
                if total == 0 || k == 0 {
                    return f64::NAN;
                }
                let rank = ((q * total as f64).ceil() as u64).max(1);
                let (mut lo, mut hi) = (0usize, k - 1);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if at_or_below(mid) >= rank {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                self.values[lo] as f64 / 1e6
            })
            .collect();
        (out, total)
    }
}

/// Each interval's log median, the series block lengths are measured on.
fn log_medians(run: &[Histogram<u64>]) -> Vec<f64> {
    run.iter()
        .map(|h| (h.value_at_quantile(0.5).max(1) as f64).ln())
        .collect()
}

/// Moving-block bootstrap of one run's intervals, appended to `out`.
pub(super) fn blocks(range: &Range<usize>, block: usize, rng: &mut SplitMix, out: &mut Vec<usize>) {
    let n = range.len();
    if n == 0 {
        return;
    }
    let block = block.clamp(1, n);
    let end = out.len() + n;
    while out.len() < end {
        let start = range.start + (rng.next_u64() % (n - block + 1) as u64) as usize;
        let take = block.min(end - out.len());
        out.extend(start..start + take);
    }
}

/// How one side's intervals are resampled, and how many independent units
/// (the degrees of freedom of its variance, plus one) a side holds for it.
#[derive(Clone, Copy)]
pub(crate) struct Resampler {
    /// The interval indexes of one draw.
    pub draw: fn(&[RunLayout], &mut SplitMix, &mut Vec<usize>),
    pub units: fn(&[RunLayout]) -> f64,
}

/// One run's intervals (a range of the side's) and its block length.
pub(crate) type RunLayout = (Range<usize>, usize);

/// The default: runs drawn with replacement, then blocks within each drawn
/// run; its units are the runs, or a single run's blocks.
pub(crate) const TWO_LEVEL: Resampler = Resampler {
    draw: two_level,
    units: |runs| {
        if runs.len() > 1 {
            runs.len() as f64
        } else {
            block_count(runs)
        }
    },
};

/// Blocks of every run, added up.
pub(super) fn block_count(runs: &[(Range<usize>, usize)]) -> f64 {
    runs.iter().map(|(r, b)| r.len() as f64 / *b as f64).sum()
}

fn two_level(runs: &[(Range<usize>, usize)], rng: &mut SplitMix, out: &mut Vec<usize>) {
    out.clear();
    if runs.len() == 1 {
        blocks(&runs[0].0, runs[0].1, rng, out);
        return;
    }
    for _ in 0..runs.len() {
        let (range, block) = &runs[(rng.next_u64() % runs.len() as u64) as usize];
        blocks(range, *block, rng, out);
    }
}

/// Standard normal draw (Box-Muller), for the synthetic services of the tests.
#[cfg(test)]
pub(super) fn normal(rng: &mut SplitMix) -> f64 {
    let (u1, u2) = (1.0 - rng.unit(), rng.unit());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Per metric, the spread (standard deviation of the log) of a figure across
/// runs, pooled over the sides that have several runs, and its degrees of
/// freedom; None without any.
pub(super) fn learned_spread(grid: &Grid, qs: &[f64], interval_s: f64) -> Option<(Vec<f64>, f64)> {
    let mut acc = vec![0.0; qs.len() + 1];
    let mut df = 0usize;
    let mut mult = Vec::new();
    for side in [&grid.a, &grid.b] {
        let runs = &side.layout.runs;
        if runs.len() < 2 {
            continue;
        }
        let per_run: Vec<Vec<f64>> = runs
            .iter()
            .map(|(r, _)| {
                let chosen: Vec<usize> = r.clone().collect();
                let (q, n) = grid.quantiles(side, &chosen, qs, &mut mult);
                let mut logs: Vec<f64> = q.iter().map(|v| v.max(1e-9).ln()).collect();
                logs.push((n as f64 / (r.len() as f64 * interval_s)).max(1e-9).ln());
                logs
            })
            .collect();
        for (m, slot) in acc.iter_mut().enumerate() {
            let mean = per_run.iter().map(|r| r[m]).sum::<f64>() / per_run.len() as f64;
            *slot += per_run.iter().map(|r| (r[m] - mean).powi(2)).sum::<f64>();
        }
        df += runs.len() - 1;
    }
    (df > 0).then(|| {
        (
            acc.iter().map(|v| (v / df as f64).sqrt()).collect(),
            df as f64,
        )
    })
}
