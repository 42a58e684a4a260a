//! The evidence budgets are judged on, read back from a run directory: each
//! variant's measured interval histograms from `latency.hlog` (responses)
//! and each interval's failures from `run.json`'s timeline. `gate` and
//! `merge`'s readers judge through this, so a run judged again from its
//! files gets the verdict the driver gave it.

use std::collections::BTreeMap;
use std::path::Path;

use super::bound::Block;
use super::judge::Evidence;
use super::{hlog, RunResult};
use crate::error::Result;

/// Per variant name, each operation's measured intervals.
pub fn read(dir: &Path, r: &RunResult) -> Result<BTreeMap<String, Evidence>> {
    let len = r.scenario.interval.0.as_secs_f64();
    // (variant, op) -> interval index -> block
    let mut blocks: BTreeMap<(String, String), BTreeMap<i64, Block>> = BTreeMap::new();
    // tag -> (variant, operation, the variant's start, its first measured interval)
    let mut want: BTreeMap<String, (String, String, f64, i64)> = BTreeMap::new();
    for v in &r.variants {
        let name = v.variant.name.clone();
        // The driver's rule: the intervals that start after the warm-up.
        let first = (v.warmup_s / len - 1e-9).ceil().max(0.0) as i64;
        for o in &v.operations {
            want.insert(
                format!("{name}/{}/response", o.name),
                (name.clone(), o.name.clone(), v.started_s, first),
            );
            blocks.insert((name.clone(), o.name.clone()), BTreeMap::new());
        }
        for i in &v.timeline {
            let idx = (i.t / len).round() as i64;
            if idx < first {
                continue;
            }
            for o in &i.ops {
                if let Some(m) = blocks.get_mut(&(name.clone(), o.op.clone())) {
                    let b = m.entry(idx).or_default();
                    b.errors += o.errors;
                    b.requests += o.errors;
                }
            }
        }
    }
    hlog::for_each(
        &dir.join("latency.hlog"),
        |tag| want.contains_key(tag),
        |tag, t, h| {
            let (variant, op, start, first) = &want[tag];
            let idx = ((t - start) / len).round() as i64;
            if idx < *first {
                return Ok(());
            }
            let b = blocks
                .get_mut(&(variant.clone(), op.clone()))
                .expect("every wanted tag has a slot")
                .entry(idx)
                .or_default();
            let got = Block::of(Some(&h), 0);
            b.requests += got.requests;
            b.values = got.values;
            Ok(())
        },
    )?;
    let mut out: BTreeMap<String, Evidence> = BTreeMap::new();
    for ((variant, op), m) in blocks {
        out.entry(variant)
            .or_default()
            .insert(op, m.into_values().collect());
    }
    Ok(out)
}
