//! The runs a comparison reads: run directories (one run, or a baseline
//! of several), and each run's measured interval histograms by
//! "variant/operation".

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Measured interval histograms of one run by "variant/operation".
pub type RunIntervals = BTreeMap<String, Vec<Histogram<u64>>>;
/// Several runs' intervals by "variant/operation", one entry per run.
pub type Runs = BTreeMap<String, Vec<Vec<Histogram<u64>>>>;

/// The run directories a path names: itself when it holds a `run.json`,
/// else each of its subdirectories that does (a baseline of several runs).
pub fn run_dirs(path: &std::path::Path) -> crate::Result<Vec<std::path::PathBuf>> {
    if path.join("run.json").exists() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .map_err(|e| {
            crate::Error::Usage(format!(
                "{}: not a run directory nor a baseline of runs ({e})",
                path.display()
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").exists())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(crate::Error::Usage(format!(
            "{}: holds no run.json, nor subdirectories that do",
            path.display()
        )));
    }
    Ok(out)
}

/// The runs the paths name (see [`run_dirs`]), and their interval length.
pub fn runs(paths: &[std::path::PathBuf]) -> crate::Result<(Runs, f64)> {
    let mut all = Runs::new();
    let mut interval: Option<f64> = None;
    for p in paths {
        for d in run_dirs(p)? {
            let (m, i) = run_intervals(&d)?;
            match interval {
                Some(x) if (x - i).abs() > 1e-9 => {
                    return Err(crate::Error::Usage(format!(
                        "{}: intervals of {i} s, the others' are {x} s; runs compared must share their interval",
                        d.display()
                    )))
                }
                _ => interval = Some(i),
            }
            for (k, v) in m {
                all.entry(k).or_default().push(v);
            }
        }
    }
    Ok((all, interval.unwrap_or(1.0)))
}

/// Interval histograms of one run's measured intervals, by "variant/operation".
pub fn run_intervals(dir: &std::path::Path) -> crate::Result<(RunIntervals, f64)> {
    let r = crate::run::read(dir)?;
    let interval = r.scenario.interval.0.as_secs_f64();
    let mut out = BTreeMap::new();
    let mut want: BTreeMap<String, (String, f64, f64)> = BTreeMap::new();
    for v in &r.variants {
        let name = &v.variant.name;
        let from = v.started_s + v.warmup_s;
        let end = v.started_s + v.seconds;
        for o in &v.operations {
            let key = format!("{name}/{}", o.name);
            want.insert(format!("{key}/response"), (key.clone(), from, end));
            out.insert(key, Vec::new());
        }
    }
    crate::run::hlog::for_each(
        &dir.join("latency.hlog"),
        |tag| want.contains_key(tag),
        |tag, t, h| {
            let (key, from, end) = &want[tag];
            // Measured, whole intervals: the last one is cut short by the end.
            if t >= from - interval / 2.0 && t + interval <= end + interval / 2.0 {
                out.get_mut(key)
                    .expect("every wanted key has a slot")
                    .push(h);
            }
            Ok(())
        },
    )?;
    Ok((out, interval))
}
