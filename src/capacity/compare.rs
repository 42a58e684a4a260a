//! `rehearse compare` of two capacity directories: per variant, the
//! candidate's capacity over the baseline's, with an interval from the
//! searches' confirmed trials.
//!
//! A search brackets the capacity: the highest rate whose trials all
//! passed, and the lowest rate whose failure a second trial confirmed. The
//! true capacity lies in [capacity, first failing), so the ratio lies in
//! [cand.low / base.high, cand.high / base.low]. The verdict is **lower**
//! when the whole interval is under 1, **higher** when it is over 1, and
//! **within the searches' resolution** when it holds 1. A side whose
//! capacity is unknown (driver-limited, an invalid probe, even `--from`
//! failing) gives **unknown**, never a verdict.

use serde::Serialize;

use super::search::End;
use super::{CapacityReport, VariantCapacity};
use crate::error::{Error, Result};

/// One variant's capacity on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityDelta {
    pub variant: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// Candidate over baseline, from the two capacities.
    pub ratio: Option<f64>,
    /// The interval the brackets allow (high is None when a side only
    /// knows its capacity to be at least its `--max`).
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub verdict: String,
}

/// What a search knows of its capacity: [low, high), high None when
/// unbounded (`--max` passed); Err says why nothing is known.
fn bracket(v: &VariantCapacity) -> std::result::Result<(f64, Option<f64>), String> {
    match (v.found.end, v.found.capacity) {
        (End::Found, Some(c)) => match v.found.first_failing {
            Some(f) => Ok((c, Some(f))),
            None => Err("the search found a capacity and no failing rate".into()),
        },
        (End::AtLeastMax, Some(c)) => Ok((c, None)),
        (End::FromFails, _) => Err("even --from failed a budget".into()),
        (End::DriverLimited, _) => Err("the driver, not the estate, set the limit".into()),
        (End::Invalid, _) => Err("a probe could not be judged".into()),
        (_, None) => Err("no rate passed".into()),
    }
}

/// Compare every variant that either side has. Refuses two different scenarios.
pub fn compare(base: &CapacityReport, cand: &CapacityReport) -> Result<Vec<CapacityDelta>> {
    if base.scenario != cand.scenario {
        return Err(Error::Usage(format!(
            "the baseline searched scenario {:?}, the candidate {:?}: capacities of different scenarios do not compare",
            base.scenario, cand.scenario
        )));
    }
    let mut names: Vec<&str> = base.variants.iter().map(|v| v.variant.as_str()).collect();
    for v in &cand.variants {
        if !names.contains(&v.variant.as_str()) {
            names.push(&v.variant);
        }
    }
    let find = |r: &'_ CapacityReport, n: &str| -> Option<VariantCapacity> {
        r.variants.iter().find(|v| v.variant == n).cloned()
    };
    let mut out = Vec::new();
    for n in names {
        let (b, c) = (find(base, n), find(cand, n));
        let mut d = CapacityDelta {
            variant: n.to_string(),
            baseline: b.as_ref().and_then(|v| v.found.capacity),
            candidate: c.as_ref().and_then(|v| v.found.capacity),
            ratio: None,
            low: None,
            high: None,
            verdict: String::new(),
        };
        let (b, c) = match (b, c) {
            (Some(b), Some(c)) => (b, c),
            (b, _) => {
                d.verdict = format!(
                    "unknown: only the {} searched it",
                    if b.is_some() { "baseline" } else { "candidate" }
                );
                out.push(d);
                continue;
            }
        };
        match (bracket(&b), bracket(&c)) {
            (Ok((bl, bh)), Ok((cl, ch))) if bl > 0.0 => {
                d.ratio = Some(cl / bl);
                d.low = bh.map(|bh| cl / bh);
                d.high = ch.map(|ch| ch / bl);
                d.verdict = match (bh, ch) {
                    (Some(bh), _) if cl >= bh => "higher".into(),
                    (_, Some(ch)) if ch <= bl => "lower".into(),
                    (None, None) => "unknown: both sides passed their --max; search higher".into(),
                    _ => "within the searches' resolution".into(),
                };
            }
            (Ok(_), Ok(_)) => d.verdict = "unknown: the baseline's capacity is 0".into(),
            (Err(e), _) => d.verdict = format!("unknown: baseline: {e}"),
            (_, Err(e)) => d.verdict = format!("unknown: candidate: {e}"),
        }
        out.push(d);
    }
    Ok(out)
}

/// The rows as a table, Markdown, or JSON.
pub fn render(
    rows: &[CapacityDelta],
    base: &CapacityReport,
    cand: &CapacityReport,
    format: crate::text::Format,
) -> String {
    use crate::text::Format;
    if let Format::Json = format {
        let mut t = serde_json::to_string_pretty(rows).expect("capacity deltas serialize");
        t.push('\n');
        return t;
    }
    let rate = |x: Option<f64>| x.map_or("unknown".into(), |x| format!("{x:.1}"));
    let ratio = |x: Option<f64>| x.map_or("?".into(), |x| format!("{x:.2}"));
    let header = [
        "variant",
        "baseline req/s",
        "candidate req/s",
        "ratio",
        "interval",
        "verdict",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|d| {
            vec![
                d.variant.clone(),
                rate(d.baseline),
                rate(d.candidate),
                d.ratio.map_or("-".into(), |r| format!("x{r:.3}")),
                if d.ratio.is_some() {
                    format!("{}-{}", ratio(d.low), ratio(d.high))
                } else {
                    "-".into()
                },
                d.verdict.clone(),
            ]
        })
        .collect();
    let mut t = match format {
        Format::Markdown => {
            use crate::render::{Doc, Markdown, Renderer as _, Table};
            let mut doc = Doc::default();
            doc.push(Table::new(&header).numeric_from(1).rows(body).block());
            Markdown.render(&doc)
        }
        _ => crate::text::table(&header, &body),
    };
    t += &format!(
        "\nCapacity of {}: the interval is what the two searches' brackets allow (highest passing rate to \
         first confirmed failure); resolution {:.0}% / {:.0}%, {} / {} trials, step {:.0} s / {:.0} s.\n",
        base.scenario,
        base.resolution * 100.0,
        cand.resolution * 100.0,
        base.trials,
        cand.trials,
        base.step_s,
        cand.step_s
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::search::{Found, Outcome, Probe};

    fn variant(name: &str, end: End, cap: Option<f64>, fail: Option<f64>) -> VariantCapacity {
        VariantCapacity {
            variant: name.into(),
            mode: crate::schema::Mode::Legacy,
            found: Found {
                end,
                capacity: cap,
                first_failing: fail,
                reasons: vec![],
                probes: vec![Probe {
                    rate: 1.0,
                    trial: 1,
                    outcome: Outcome::Pass,
                }],
            },
            runs: vec![],
            steps_s: vec![],
        }
    }

    fn report(variants: Vec<VariantCapacity>) -> CapacityReport {
        CapacityReport {
            schema_version: super::super::CAPACITY_VERSION,
            scenario: "s".into(),
            scenario_file: "s.toml".into(),
            step_s: 30.0,
            warmup_s: 5.0,
            resolution: 0.05,
            trials: 2,
            from: 100.0,
            max: 6400.0,
            variants,
            exit_code: 0,
        }
    }

    #[test]
    fn the_interval_comes_from_both_brackets_and_unknown_is_never_a_verdict() {
        let base = report(vec![
            variant("legacy", End::Found, Some(1000.0), Some(1050.0)),
            variant("partitioned", End::Found, Some(800.0), Some(840.0)),
            variant("replica", End::DriverLimited, None, Some(3000.0)),
        ]);
        let cand = report(vec![
            variant("legacy", End::Found, Some(1020.0), Some(1070.0)),
            variant("partitioned", End::Found, Some(900.0), Some(945.0)),
            variant("replica", End::Found, Some(2000.0), Some(2100.0)),
        ]);
        let d = compare(&base, &cand).unwrap();
        // Overlapping brackets: 1020/1050 .. 1070/1000.
        assert_eq!(d[0].verdict, "within the searches' resolution");
        assert!((d[0].low.unwrap() - 1020.0 / 1050.0).abs() < 1e-9);
        assert!((d[0].high.unwrap() - 1.07).abs() < 1e-9);
        // Disjoint: the candidate's lowest (900) is above the baseline's first failure (840).
        assert_eq!(d[1].verdict, "higher");
        assert!((d[1].ratio.unwrap() - 1.125).abs() < 1e-9);
        assert!(d[2].verdict.starts_with("unknown: baseline: the driver"));
        assert_eq!(d[2].ratio, None);
        // The other way round is lower.
        let back = compare(&cand, &base).unwrap();
        assert_eq!(back[1].verdict, "lower");
        // A variant on one side only, and different scenarios.
        let mut one = report(vec![variant("legacy", End::Found, Some(1.0), Some(2.0))]);
        assert!(compare(&one, &cand).unwrap()[1]
            .verdict
            .starts_with("unknown: only the candidate"));
        one.scenario = "other".into();
        assert!(compare(&one, &cand).is_err());
    }
}
