//! Build against build: per variant and operation, both sides' percentile
//! spectra and their p99 per interval, one chart each (`rehearse compare
//! --charts` and the ab page).

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::compare;
use crate::error::Result;
use crate::render::charts::{self, Chart, Dash, Series, PALETTE};
use crate::run::histogram::histogram;

/// Points of a line drawn from a side's interval histograms.
type PointsOf<'a> = dyn Fn(&[Histogram<u64>]) -> Vec<(f64, f64)> + 'a;

/// Points of a percentile spectrum (x = 1/(1-q), y = ms), ending at the maximum.
pub(super) fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .filter(|q| q.quantile_iterated_to() < 1.0)
        .map(|q| {
            (
                1.0 / (1.0 - q.quantile_iterated_to()),
                h.highest_equivalent(q.value_iterated_to()) as f64 / 1e6,
            )
        })
        .collect();
    let right = points.last().map_or(10.0, |p| p.0.max(10.0));
    points.push((right, h.max() as f64 / 1e6));
    points
}

/// Overlay charts of two builds: per variant and operation, both sides'
/// percentile spectra, and their p99 per interval, on one chart each.
pub fn overlay(
    base: &compare::Runs,
    cand: &compare::Runs,
    interval_s: f64,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    Ok(overlay_svgs(base, cand, interval_s, dir)?
        .into_iter()
        .map(|(name, _)| dir.join(format!("{name}.png")))
        .collect())
}

/// [`overlay`], returning each chart's name and SVG text.
pub(super) fn overlay_svgs(
    base: &compare::Runs,
    cand: &compare::Runs,
    interval_s: f64,
    dir: &Path,
) -> Result<Vec<(String, String)>> {
    let merged = |hs: &[Histogram<u64>]| -> Histogram<u64> {
        let mut h = histogram();
        for x in hs {
            let _ = h.add(x);
        }
        h
    };
    let mut files = Vec::new();
    for (key, c) in cand {
        let Some(b) = base.get(key) else { continue };
        // Several runs of a side: their intervals one after another.
        let (b, c) = (&b.concat(), &c.concat());
        let name = key.replace('/', ".");
        let sides = [
            ("baseline", b, PALETTE[0], Dash::Dashed),
            ("candidate", c, PALETTE[1], Dash::Solid),
        ];
        let mut spectrum = Chart::new(
            format!("{key}: baseline vs candidate"),
            "percentile",
            "response time (ms)",
        );
        spectrum.nines = true;
        spectrum.log_y = true;
        // One line per side, its points from the side's histograms.
        let lines = |points: &PointsOf<'_>| -> Vec<Series> {
            sides
                .iter()
                .map(|(label, hs, color, dash)| Series {
                    label: label.to_string(),
                    color: *color,
                    width: 2,
                    dash: *dash,
                    points: points(hs),
                })
                .collect()
        };
        spectrum.series = lines(&|hs| spectrum_points(&merged(hs)));
        let spectrum_name = format!("overlay-spectrum-{name}");
        let spectrum_svg = charts::render(&spectrum, dir, &spectrum_name)?;
        let mut timeline = Chart::new(
            format!("{key}: p99 per interval, baseline vs candidate"),
            "seconds into the measured part of the run",
            "p99 response time (ms)",
        );
        timeline.log_y = true;
        timeline.series = lines(&|hs| {
            hs.iter()
                .enumerate()
                .map(|(i, h)| {
                    (
                        (i as f64 + 1.0) * interval_s,
                        h.value_at_quantile(0.99) as f64 / 1e6,
                    )
                })
                .collect()
        });
        let timeline_name = format!("overlay-timeline-{name}");
        let timeline_svg = charts::render(&timeline, dir, &timeline_name)?;
        files.push((spectrum_name, spectrum_svg));
        files.push((timeline_name, timeline_svg));
    }
    Ok(files)
}
