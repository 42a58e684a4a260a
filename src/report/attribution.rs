//! Where each operation's server time went, per variant: a table and a
//! stacked bar chart (issue 34). The bars are server milliseconds per
//! request (pg_stat_statements' planning and execution time over the
//! operation's requests); planning is its own layer, and the rest is cut by
//! what the sampled backends were doing (CPU, or the class of their wait
//! event), the sampled shares scaled to the measured time.

use std::path::Path;

use crate::attribution::{class_of, OpTime};
use crate::error::Result;
use crate::render::charts::{render_stacked, Stacked};
use crate::render::{Block, Line, Table};
use crate::run::RunResult;

/// The chart's layers, bottom to top.
const LAYERS: [&str; 7] = ["planning", "CPU", "Lock", "LWLock", "IO", "Client", "other"];

/// An operation's server ms per request, by layer; None without calls.
pub fn layers(o: &OpTime, requests: u64) -> Option<[f64; 7]> {
    if requests == 0 || o.calls <= 0.0 {
        return None;
    }
    let n = requests as f64;
    let plan = o.plan_ms / n;
    let total = (o.plan_ms + o.exec_ms) / n;
    let mut share = [0.0; 7];
    for w in &o.waits {
        let i = match class_of(&w.event) {
            "CPU" => 1,
            "Lock" => 2,
            "LWLock" => 3,
            "IO" => 4,
            "Client" => 5,
            _ => 6,
        };
        share[i] += w.share;
    }
    let mut out = [0.0; 7];
    out[0] = plan;
    if o.sampled <= 0.0 {
        // Nothing sampled: the execution is not cut.
        out[6] = total - plan;
        return Some(out);
    }
    // Planning is CPU time the samples saw as CPU: take it out of CPU.
    out[1] = (total * share[1] - plan).max(0.0);
    for i in 2..7 {
        out[i] = total * share[i];
    }
    Some(out)
}

fn requests(r: &RunResult, v: usize, name: &str) -> u64 {
    r.variants[v]
        .operations
        .iter()
        .find(|o| o.name == name)
        .map_or(0, |o| o.count)
}

/// Draw `charts/server-time.{png,svg}`; None when no variant has attribution.
pub(super) fn chart(dir: &Path, r: &RunResult) -> Result<Option<(String, String)>> {
    let with: Vec<usize> = (0..r.variants.len())
        .filter(|&i| r.variants[i].database.attribution.is_some())
        .collect();
    if with.is_empty() {
        return Ok(None);
    }
    let categories: Vec<String> = r.scenario.mix.iter().map(|m| m.name.clone()).collect();
    let values: Vec<Vec<Vec<f64>>> = with
        .iter()
        .map(|&v| {
            let a = r.variants[v].database.attribution.as_ref().unwrap();
            categories
                .iter()
                .map(|name| {
                    a.operations
                        .iter()
                        .find(|o| &o.name == name)
                        .and_then(|o| layers(o, requests(r, v, name)))
                        .map_or_else(|| vec![0.0; 7], |l| l.to_vec())
                })
                .collect()
        })
        .collect();
    let groups: Vec<(String, String)> = with
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let name = r.variants[v].variant.name.clone();
            (name, char::from(b'A' + (k % 26) as u8).to_string())
        })
        .collect();
    let s = Stacked {
        title: format!(
            "{}: server time per request, where it went",
            r.scenario.name
        ),
        y_desc: "server ms per request".into(),
        categories,
        groups,
        layers: LAYERS.iter().map(|s| s.to_string()).collect(),
        values,
        value: |v| super::ms_short(v),
    };
    let (svg, _) = render_stacked(&s, &dir.join("charts"), "server-time")?;
    Ok(Some(("server-time".into(), svg)))
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The section: per operation, each variant's server time taken apart.
pub(super) fn section(r: &RunResult) -> Option<Vec<Block>> {
    let any = r.variants.iter().any(|v| v.database.attribution.is_some());
    if !any {
        return None;
    }
    let mut t = Table::new(&[
        "operation",
        "variant",
        "server / request",
        "planning",
        "plans / call (generic / custom)",
        "sampled time (largest shares; samples)",
        "locks (not fast-path)",
        "buffers hit / read",
    ])
    .id("server-time")
    .numeric_from(2)
    .wrap(5);
    for m in &r.scenario.mix {
        for (v, var) in r.variants.iter().enumerate() {
            let Some(a) = &var.database.attribution else {
                continue;
            };
            let Some(o) = a.operations.iter().find(|o| o.name == m.name) else {
                continue;
            };
            let n = requests(r, v, &m.name);
            if o.calls <= 0.0 || n == 0 {
                t.row(vec![
                    m.name.clone(),
                    var.variant.name.clone(),
                    "no statements seen".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                continue;
            }
            let per_req = (o.plan_ms + o.exec_ms) / n as f64;
            let plan_share = if o.plan_ms + o.exec_ms > 0.0 {
                o.plan_ms / (o.plan_ms + o.exec_ms)
            } else {
                0.0
            };
            let waits: Vec<String> = o
                .waits
                .iter()
                .take(3)
                .map(|w| format!("{} {}", w.event, pct(w.share)))
                .collect();
            t.row(vec![
                m.name.clone(),
                var.variant.name.clone(),
                super::ms_label(per_req),
                if a.track_planning {
                    format!(
                        "{} ({})",
                        super::ms_label(o.plan_ms / n as f64),
                        pct(plan_share)
                    )
                } else {
                    "not timed".into()
                },
                match (o.generic_plans, o.custom_plans) {
                    (Some(g), Some(c)) => format!("{:.2} ({g:.0} / {c:.0})", o.plans / o.calls),
                    _ => format!("{:.2} (unnamed statements)", o.plans / o.calls),
                },
                if o.sampled > 0.0 {
                    format!("{} ({:.0})", waits.join(", "), o.sampled)
                } else {
                    "none sampled".into()
                },
                match &o.locks {
                    Some(l) => format!("{:.1} ({:.1})", l.held, l.not_fast_path),
                    None => "none sampled".into(),
                },
                format!(
                    "{:.1} / {:.1}",
                    o.shared_hit / o.calls,
                    o.shared_read / o.calls
                ),
            ]);
        }
    }
    let first = r
        .variants
        .iter()
        .find_map(|v| v.database.attribution.as_ref())?;
    Some(vec![
        Block::heading(2, "Where the time went on the server"),
        Block::para(Line::default().text(format!(
            "From pg_stat_statements over each variant (planning and execution, shared among the \
             operations that sent a statement by their calls), pg_stat_activity sampled every {} ms \
             on the primary and the replica (no wait event is CPU; a backend idle in a transaction \
             waits on the client), pg_locks every {} samples, and pg_prepared_statements on the \
             repository's connections. Server time per request can exceed the response time's \
             share of it: a request may send several statements.",
            first.interval_ms, first.lock_every
        ))),
        t.block(),
    ])
}

/// Two builds' (or settings') server time per request, side by side, for
/// every variant and operation both runs attributed: `rehearse compare`
/// prints it under the comparison. None when either side has none.
pub fn compare_table(base: &RunResult, cand: &RunResult) -> Option<String> {
    let mut rows = Vec::new();
    for bv in &base.variants {
        let Some(cv) = cand
            .variants
            .iter()
            .find(|v| v.variant.name == bv.variant.name)
        else {
            continue;
        };
        let (Some(ba), Some(ca)) = (&bv.database.attribution, &cv.database.attribution) else {
            continue;
        };
        for bo in &ba.operations {
            let Some(co) = ca.operations.iter().find(|o| o.name == bo.name) else {
                continue;
            };
            let per = |o: &OpTime, v: &crate::run::VariantResult| {
                let n = v
                    .operations
                    .iter()
                    .find(|x| x.name == o.name)
                    .map_or(0, |x| x.count);
                (n > 0 && o.calls > 0.0).then(|| {
                    (
                        (o.plan_ms + o.exec_ms) / n as f64,
                        o.plan_ms / n as f64,
                        o.waits
                            .first()
                            .map(|w| format!("{} {}", w.event, pct(w.share))),
                    )
                })
            };
            let (Some(b), Some(c)) = (per(bo, bv), per(co, cv)) else {
                continue;
            };
            rows.push(vec![
                format!("{}/{}", bv.variant.name, bo.name),
                super::ms_label(b.0),
                super::ms_label(c.0),
                format!("x{:.2}", c.0 / b.0.max(1e-9)),
                format!("{} / {}", super::ms_label(b.1), super::ms_label(c.1)),
                format!(
                    "{} / {}",
                    b.2.unwrap_or_else(|| "-".into()),
                    c.2.unwrap_or_else(|| "-".into())
                ),
            ]);
        }
    }
    (!rows.is_empty()).then(|| {
        crate::text::table(
            &[
                "variant/operation",
                "server per request, baseline",
                "candidate",
                "ratio",
                "planning per request",
                "largest wait share",
            ],
            &rows,
        )
    })
}

/// Why `op` took longer in the `partitioned` variant than in `legacy`, from
/// the run's attribution: the server time per request of each, and the
/// layers that grew most. None without attribution on both sides.
pub fn why_slower(r: &RunResult, legacy: &str, partitioned: &str, op: &str) -> Option<String> {
    let of = |name: &str| -> Option<[f64; 7]> {
        let (i, v) = r
            .variants
            .iter()
            .enumerate()
            .find(|(_, v)| v.variant.name == name)?;
        let o = v
            .database
            .attribution
            .as_ref()?
            .operations
            .iter()
            .find(|o| o.name == op)?;
        layers(o, requests(r, i, op))
    };
    let (l, p) = (of(legacy)?, of(partitioned)?);
    let (lt, pt): (f64, f64) = (l.iter().sum(), p.iter().sum());
    if pt <= lt {
        return Some(format!(
            "server time per request is no higher ({} against {}): the difference is outside the server's statements",
            super::ms_label(pt),
            super::ms_label(lt)
        ));
    }
    let mut grew: Vec<(f64, &str)> = (0..7)
        .map(|i| (p[i] - l[i], LAYERS[i]))
        .filter(|(d, _)| *d > 0.0)
        .collect();
    grew.sort_by(|a, b| b.0.total_cmp(&a.0));
    let parts: Vec<String> = grew
        .iter()
        .take(2)
        .map(|(d, name)| format!("{name} +{}", super::ms_label(*d)))
        .collect();
    Some(format!(
        "server {} per request against {}: {}",
        super::ms_label(pt),
        super::ms_label(lt),
        parts.join(", ")
    ))
}
