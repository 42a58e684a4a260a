//! `rehearse merge`: the shards of one run (`run --shard I/N`) into one
//! run directory that `report`, `compare` and `gate` read like any other.
//!
//! The merge is exact where HdrHistogram allows it: every shard records
//! with the same settings, so the interval histograms of one tag and one
//! interval (counted from each shard's planned variant start) are added,
//! and the totals are the sum of the measured intervals. Counts, errors,
//! late and dropped requests, offered and completed requests, driver CPU
//! and the estate counters are summed. What cannot be added is said: the
//! driver's own wake-up lag is the worst shard's, and the top statements
//! (estate-wide already) are the first shard's.
//!
//! Shards of different scenarios, seeds, counts, histogram settings or
//! start instants are refused (exit 2). A shard that is missing, failed or
//! was interrupted makes the merged run invalid (exit 3), naming it: it is
//! never silently smaller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use crate::error::{Error, IoContext, Result};
use crate::repo::RepoStats;
use crate::run::histogram::{histogram, IntervalOp, IntervalSummary};
use crate::run::hlog::{self, Hlog};
use crate::run::{
    judge, Database, Latency, OpResult, PhaseResult, RunResult, Sample, Status, VariantResult,
};
use crate::shard::ShardInfo;

/// One shard as found on disk.
struct Shard {
    dir: PathBuf,
    run: RunResult,
    info: ShardInfo,
}

/// What the merge found wrong with the set of shards: each makes the merged run invalid.
fn problems(shards: &[Shard], unreadable: &[(PathBuf, String)], count: u32) -> Vec<String> {
    let mut out = Vec::new();
    for (dir, why) in unreadable {
        out.push(format!(
            "the shard in {} wrote no run: {why}",
            dir.display()
        ));
    }
    for i in 0..count {
        if !shards.iter().any(|s| s.info.index == Some(i)) {
            out.push(format!("shard {i}/{count} is missing"));
        }
    }
    for s in shards {
        let i = s.info.index.unwrap_or_default();
        if s.run.status != Status::Complete {
            out.push(format!(
                "shard {i}/{count} ({}) did not complete: {:?}{}",
                s.dir.display(),
                s.run.status,
                s.run
                    .error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", {e}"))
            ));
        }
    }
    out
}

/// Directories that hold no shard's run, and why.
type Unreadable = Vec<(PathBuf, String)>;

/// Read the shards and refuse a set that is not one run's.
fn read_shards(dirs: &[PathBuf]) -> Result<(Vec<Shard>, Unreadable)> {
    let mut shards: Vec<Shard> = Vec::new();
    let mut unreadable = Vec::new();
    for dir in dirs {
        if !dir.join("run.json").exists() {
            unreadable.push((dir.clone(), "no run.json".to_string()));
            continue;
        }
        let run = crate::run::read(dir)?;
        let info = match &run.shard {
            Some(i) if i.index.is_some() => i.clone(),
            Some(_) => {
                return Err(Error::Usage(format!(
                    "{} is already a merged run; merge the shards themselves",
                    dir.display()
                )))
            }
            None => {
                return Err(Error::Usage(format!(
                    "{} is not a shard: it was not run with --shard I/N",
                    dir.display()
                )))
            }
        };
        if let Some(first) = shards.first() {
            let a = &first.info;
            let differs: Vec<String> = [
                (
                    "scenario (hash of the scenario as run)",
                    &a.scenario_hash,
                    &info.scenario_hash,
                ),
                ("seed", &a.seed.to_string(), &info.seed.to_string()),
                ("shard count", &a.count.to_string(), &info.count.to_string()),
                ("histogram settings", &a.histogram, &info.histogram),
                ("start instant", &a.start_at, &info.start_at),
            ]
            .iter()
            .filter(|(_, x, y)| x != y)
            .map(|(what, x, y)| {
                format!(
                    "{what}: {x} in {}, {y} in {}",
                    first.dir.display(),
                    dir.display()
                )
            })
            .collect();
            if !differs.is_empty() {
                return Err(Error::Usage(format!(
                    "these are not shards of one run: {}",
                    differs.join("; ")
                )));
            }
        }
        if let Some(twin) = shards.iter().find(|s| s.info.index == info.index) {
            return Err(Error::Usage(format!(
                "shard {}/{} is given twice: {} and {}",
                info.index.unwrap_or_default(),
                info.count,
                twin.dir.display(),
                dir.display()
            )));
        }
        shards.push(Shard {
            dir: dir.clone(),
            run,
            info,
        });
    }
    shards.sort_by_key(|s| s.info.index);
    Ok((shards, unreadable))
}

/// The interval histograms of one shard's variant, by (tag, interval index
/// from the variant's start).
type Intervals = BTreeMap<(String, u64), Histogram<u64>>;

fn add_intervals(into: &mut Intervals, dir: &Path, v: &VariantResult, len: f64) -> Result<()> {
    let prefix = format!("{}/", v.variant.name);
    hlog::for_each(
        &dir.join("latency.hlog"),
        |tag| tag.starts_with(&prefix),
        |tag, start, h| {
            let idx = ((start - v.started_s) / len).round().max(0.0) as u64;
            into.entry((tag.to_string(), idx))
                .or_insert_with(histogram)
                .add(&h)
                .map_err(|e| {
                    Error::Usage(format!(
                        "{}: the interval of {tag} at {start:.3} s does not add ({e:?})",
                        dir.display()
                    ))
                })
        },
    )
}

/// The log's StartTime (seconds since the epoch), from its header.
fn log_start(path: &Path) -> Result<f64> {
    let text = std::fs::read_to_string(path).io("reading the interval log", path)?;
    text.lines()
        .take_while(|l| l.starts_with('#') || l.starts_with('"'))
        .find_map(|l| {
            l.strip_prefix("#[StartTime: ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .ok_or_else(|| Error::Usage(format!("{}: no StartTime in the header", path.display())))
}

fn merge_repo(a: &mut RepoStats, b: &RepoStats) {
    let r = &mut a.routing;
    r.reads_primary += b.routing.reads_primary;
    r.reads_replica += b.routing.reads_replica;
    for (name, n) in &b.routing.fallbacks {
        match r.fallbacks.iter_mut().find(|f| &f.0 == name) {
            Some(f) => f.1 += n,
            None => r.fallbacks.push((name.clone(), *n)),
        }
    }
    r.replica_removed += b.routing.replica_removed;
    r.replica_restored += b.routing.replica_restored;
    for (name, lag) in &b.routing.lag_bytes {
        match r.lag_bytes.iter_mut().find(|l| &l.0 == name) {
            Some(l) => l.1 = l.1.max(*lag),
            None => r.lag_bytes.push((name.clone(), *lag)),
        }
    }
    r.max_lag_bytes_seen = r.max_lag_bytes_seen.max(b.routing.max_lag_bytes_seen);
    r.healthy_replicas = r.healthy_replicas.min(b.routing.healthy_replicas);
    match (&mut a.cache, &b.cache) {
        (Some(x), Some(y)) => {
            x.hits += y.hits;
            x.misses += y.misses;
            x.invalidations += y.invalidations;
            x.errors += y.errors;
        }
        (x @ None, Some(y)) => *x = Some(y.clone()),
        _ => {}
    }
    a.finance.writes += b.finance.writes;
    a.finance.retried_serialization += b.finance.retried_serialization;
    a.finance.retried_deadlock += b.finance.retried_deadlock;
    a.finance.gave_up += b.finance.gave_up;
    a.flag_read_errors += b.flag_read_errors;
}

/// Counters summed, gauges at their worst, sample by sample.
fn merge_samples(a: &mut Vec<Sample>, b: &[Sample]) {
    for (i, y) in b.iter().enumerate() {
        let Some(x) = a.get_mut(i) else {
            a.push(y.clone());
            continue;
        };
        x.cache_hits += y.cache_hits;
        x.cache_misses += y.cache_misses;
        x.cache_errors += y.cache_errors;
        x.reads_primary += y.reads_primary;
        x.reads_replica += y.reads_replica;
        x.fallbacks += y.fallbacks;
        x.replica_lag_bytes = x.replica_lag_bytes.max(y.replica_lag_bytes);
        if let (Some(p), Some(q)) = (&mut x.pgbouncer, &y.pgbouncer) {
            // PgBouncer's figures are the pool's own, seen by each shard alike.
            p.cl_active = p.cl_active.max(q.cl_active);
            p.cl_waiting = p.cl_waiting.max(q.cl_waiting);
            p.sv_active = p.sv_active.max(q.sv_active);
            p.sv_idle = p.sv_idle.max(q.sv_idle);
            p.maxwait_us = p.maxwait_us.max(q.maxwait_us);
        }
        x.driver_rss_kib = match (x.driver_rss_kib, y.driver_rss_kib) {
            (Some(p), Some(q)) => Some(p + q),
            (p, q) => p.or(q),
        };
    }
}

fn merge_phases(parts: &[&VariantResult]) -> Vec<PhaseResult> {
    let mut out: Vec<PhaseResult> = parts[0].phases.clone();
    for v in &parts[1..] {
        for (i, p) in v.phases.iter().enumerate() {
            let Some(m) = out.get_mut(i) else {
                out.push(p.clone());
                continue;
            };
            m.target_rate = match (m.target_rate, p.target_rate) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            m.offered = match (m.offered, p.offered) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            m.completed += p.completed;
            m.dropped += p.dropped;
            m.achieved_rate += p.achieved_rate;
            m.elapsed_s = m.elapsed_s.max(p.elapsed_s);
            if let Some(f) = &p.failure {
                m.failure = Some(match m.failure.take() {
                    Some(e) => format!("{e}; {f}"),
                    None => f.clone(),
                });
            }
        }
    }
    out
}

/// One variant from its shards' parts.
fn merge_variant(
    run: &RunResult,
    parts: &[(&Shard, &VariantResult)],
    merged_hlog: &mut Vec<(f64, String, Histogram<u64>)>,
    base_offset: f64,
) -> Result<VariantResult> {
    let s = &run.scenario;
    let len = s.interval.0.as_secs_f64();
    let warmup_intervals = s.warmup.0.as_nanos().div_ceil(s.interval.0.as_nanos()) as u64;
    let name = &parts[0].1.variant.name;
    let mut intervals = Intervals::new();
    for (shard, v) in parts {
        add_intervals(&mut intervals, &shard.dir, v, len)?;
    }
    let vs: Vec<&VariantResult> = parts.iter().map(|p| p.1).collect();
    // Totals over the measured intervals.
    let mut totals: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for ((tag, idx), h) in &intervals {
        if *idx >= warmup_intervals {
            totals
                .entry(tag.clone())
                .or_insert_with(histogram)
                .add(h)
                .expect("auto-resizing add");
        }
    }
    let empty = histogram::<u64>();
    let total = |op: &str, metric: &str| {
        totals
            .get(&format!("{name}/{op}/{metric}"))
            .unwrap_or(&empty)
    };
    let operations: Vec<OpResult> = s
        .mix
        .iter()
        .map(|m| {
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let (mut late, mut throughput) = (0, 0.0);
            for v in &vs {
                if let Some(o) = v.operations.iter().find(|o| o.name == m.name) {
                    for (k, n) in &o.errors {
                        *errors.entry(k.clone()).or_default() += n;
                    }
                    late += o.late;
                    throughput += o.throughput;
                }
            }
            OpResult::of(
                m,
                errors,
                throughput,
                late,
                ["response", "service", "lag"].map(|k| Latency::of(total(&m.name, k))),
            )
        })
        .collect();
    // The timeline, interval by interval, and the measured intervals budgets are judged on.
    let mut per_interval: BTreeMap<u64, Vec<IntervalOp>> = BTreeMap::new();
    let mut evidence = judge::Evidence::new();
    let first_measured = (vs[0].warmup_s / len - 1e-9).ceil().max(0.0) as u64;
    for m in &s.mix {
        let tag = format!("{name}/{}/response", m.name);
        // The shards' errors and late requests of this operation, by interval.
        let mut counted: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for i in vs.iter().flat_map(|v| &v.timeline) {
            for o in i.ops.iter().filter(|o| o.op == m.name) {
                let e = counted.entry((i.t / len).round() as u64).or_default();
                e.0 += o.errors;
                e.1 += o.late;
            }
        }
        let idxs: std::collections::BTreeSet<u64> = intervals
            .keys()
            .filter(|(t, _)| *t == tag)
            .map(|k| k.1)
            .chain(counted.keys().copied())
            .collect();
        for idx in idxs {
            let (errors, late) = counted.get(&idx).copied().unwrap_or_default();
            if idx >= first_measured {
                evidence
                    .entry(m.name.clone())
                    .or_default()
                    .push(crate::run::bound::Block::of(
                        intervals.get(&(tag.clone(), idx)),
                        errors,
                    ));
            }
            per_interval.entry(idx).or_default().push(IntervalOp::of(
                &m.name,
                intervals.get(&(tag.clone(), idx)),
                errors,
                late,
            ));
        }
    }
    let timeline: Vec<IntervalSummary> = per_interval
        .into_iter()
        .map(|(idx, ops)| IntervalSummary {
            t: idx as f64 * len,
            ops,
        })
        .collect();
    for ((tag, idx), h) in intervals {
        merged_hlog.push((base_offset + idx as f64 * len, tag, h));
    }
    let phases = merge_phases(&vs);
    // The driver's lag is each shard's own: the worst shard's stands for all.
    let driver_lag = vs
        .iter()
        .map(|v| v.driver_lag.clone())
        .max_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms))
        .unwrap_or_default();
    let mut validity = judge::validity(&s.validity, &phases, &driver_lag, crate::driver::BACKLOG);
    for (shard, v) in parts {
        for r in &v.validity.reasons {
            let line = format!(
                "shard {}/{}: {r}",
                shard.info.index.unwrap_or_default(),
                shard.info.count
            );
            if !validity.reasons.contains(&line) {
                validity.reasons.push(line);
            }
        }
    }
    validity.valid = validity.reasons.is_empty();
    let mut repo = vs[0].database.repo.clone();
    let mut samples = vs[0].database.samples.clone();
    for v in &vs[1..] {
        merge_repo(&mut repo, &v.database.repo);
        merge_samples(&mut samples, &v.database.samples);
    }
    let driver_cpu_seconds: f64 = vs.iter().map(|v| v.driver_cpu_seconds).sum();
    let requests: u64 = operations.iter().map(|o| o.count).sum();
    let seconds = vs.iter().map(|v| v.seconds).fold(0.0, f64::max);
    let budgets = judge::budgets(
        &s.budgets,
        &operations,
        &evidence,
        s.validity.confidence,
        (seconds - vs[0].warmup_s).max(1e-9),
    );
    Ok(VariantResult {
        variant: vs[0].variant.clone(),
        started_s: base_offset,
        seconds: vs.iter().map(|v| v.seconds).fold(0.0, f64::max),
        warmup_s: vs[0].warmup_s,
        closed_loop: vs[0].closed_loop,
        phases,
        operations,
        driver_lag,
        driver_cpu_seconds,
        driver_cpu_us_per_op: if requests > 0 {
            driver_cpu_seconds * 1e6 / requests as f64
        } else {
            0.0
        },
        driver_peak_rss_kib: vs.iter().filter_map(|v| v.driver_peak_rss_kib).max(),
        driver_runtime: vs[0]
            .driver_runtime
            .clone()
            .filter(|r| vs.iter().all(|v| v.driver_runtime.as_ref() == Some(r))),
        database: Database {
            repo,
            samples,
            top_statements: vs[0].database.top_statements.clone(),
            attribution: None,
        },
        timeline,
        budgets,
        validity,
        jobs: vs[0].jobs.clone(),
    })
}

/// Merge the shards in `dirs` into `out`: run.json and latency.hlog,
/// written atomically. Returns the merged run (its exit code says whether
/// it is whole: 3 when a shard is missing or failed).
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<RunResult> {
    if dirs.is_empty() {
        return Err(Error::Usage("give the shards' run directories".into()));
    }
    let (shards, unreadable) = read_shards(dirs)?;
    let Some(first) = shards.first() else {
        return Err(Error::Usage(format!(
            "none of the {} directories holds a shard's run.json: {}",
            dirs.len(),
            unreadable
                .iter()
                .map(|(d, _)| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let count = first.info.count;
    let wrong = problems(&shards, &unreadable, count);
    let mut run = first.run.clone();
    run.variants.clear();
    run.markers.clear();
    run.cohorts.clear();
    run.error = None;
    let started = SystemTime::UNIX_EPOCH
        + Duration::from_secs_f64(log_start(&first.dir.join("latency.hlog"))?);
    run.run_id = crate::run::run_id(started, &format!("{}-merged", run.scenario.name));
    run.shard = Some(ShardInfo {
        index: None,
        merged_from: shards.iter().map(|s| s.dir.display().to_string()).collect(),
        ..first.info.clone()
    });
    let mut hlog_lines = Vec::new();
    for v in &first.run.scenario.variants {
        let parts: Vec<(&Shard, &VariantResult)> = shards
            .iter()
            .filter_map(|s| {
                s.run
                    .variants
                    .iter()
                    .find(|x| x.variant.name == v.name)
                    .map(|x| (s, x))
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        // Intervals are placed on the first shard's clock for this variant.
        let offset = parts[0].1.started_s;
        let mut mv = merge_variant(&run, &parts, &mut hlog_lines, offset)?;
        for s in &shards {
            if !s.run.variants.iter().any(|x| x.variant.name == v.name) {
                mv.validity.reasons.push(format!(
                    "shard {}/{count} ({}) has no results for this variant",
                    s.info.index.unwrap_or_default(),
                    s.dir.display()
                ));
            }
        }
        for w in &wrong {
            mv.validity.reasons.push(w.clone());
        }
        mv.validity.valid = mv.validity.reasons.is_empty();
        run.variants.push(mv);
    }
    let seconds = shards.iter().map(|s| s.run.seconds).fold(0.0, f64::max);
    run.finish(false, Duration::from_secs_f64(seconds));
    if run.variants.is_empty() {
        run.status = Status::Failed;
        run.verdict = crate::run::Verdict::Invalid;
        run.exit_code = crate::exit::INVALID;
        run.error = Some(format!("no shard measured anything: {}", wrong.join("; ")));
    } else if !wrong.is_empty() {
        run.error = Some(wrong.join("; "));
    }
    std::fs::create_dir_all(out).io("creating the merged run directory", out)?;
    hlog_lines.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let tmp = out.join(".latency.hlog.tmp");
    {
        let mut h = Hlog::create(
            &tmp,
            started,
            &format!(
                "Merged by rehearse {} from {} of {count} shards (scenario {}); tags are variant/operation/metric, values in ns",
                env!("CARGO_PKG_VERSION"),
                shards.len(),
                run.scenario.name
            ),
        )?;
        for (start, tag, hist) in &hlog_lines {
            h.write(tag, *start, run.scenario.interval.0.as_secs_f64(), hist)
                .io("writing the merged interval log", &tmp)?;
        }
    }
    std::fs::rename(&tmp, out.join("latency.hlog")).io("writing the merged interval log", out)?;
    run.write(out)?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estate_counters_add_and_gauges_keep_their_worst() {
        let s = |hits, lag| Sample {
            t: 1.0,
            cache_hits: hits,
            cache_misses: 1,
            cache_errors: 0,
            reads_primary: 2,
            reads_replica: 3,
            fallbacks: 0,
            replica_lag_bytes: lag,
            pgbouncer: None,
            driver_rss_kib: Some(100),
        };
        let mut a = vec![s(5, Some(10))];
        merge_samples(&mut a, &[s(7, Some(4)), s(1, None)]);
        assert_eq!(a.len(), 2);
        assert_eq!(
            (
                a[0].cache_hits,
                a[0].reads_replica,
                a[0].replica_lag_bytes,
                a[0].driver_rss_kib
            ),
            (12, 6, Some(10), Some(200))
        );
    }
}
