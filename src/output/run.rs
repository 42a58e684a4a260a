//! What `rehearse run` prints: the variants side by side, per operation,
//! then the phases, budgets, validity and the verdict.

use std::path::Path;

use crate::progress::thousands;
use crate::text::table;

use crate::run::{BudgetOutcome, RunResult};

fn f(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// What the estate did during a variant: where reads went, why they left
/// the replica, whether a replica went away, what the cache and the
/// finance retries saw.
fn estate_line(v: &crate::run::VariantResult) -> String {
    let repo = &v.database.repo;
    let r = &repo.routing;
    let fallbacks: Vec<String> = r
        .fallbacks
        .iter()
        .filter(|(reason, n)| *n > 0 && reason != "no_replica")
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    let mut parts = vec![format!(
        "reads {} replica / {} primary",
        thousands(r.reads_replica),
        thousands(r.reads_primary)
    )];
    if !fallbacks.is_empty() {
        parts.push(format!("fallbacks {}", fallbacks.join(", ")));
    }
    if r.replica_removed > 0 {
        parts.push(format!(
            "replica taken out {} time(s), put back {}",
            r.replica_removed, r.replica_restored
        ));
    }
    if let Some(c) = &repo.cache {
        parts.push(format!(
            "cache {} hits / {} misses / {} errors",
            thousands(c.hits),
            thousands(c.misses),
            c.errors
        ));
    }
    let fin = &repo.finance;
    if fin.retried_serialization + fin.retried_deadlock + fin.gave_up > 0 {
        parts.push(format!(
            "write retries {} serialization, {} deadlock, {} gave up",
            fin.retried_serialization, fin.retried_deadlock, fin.gave_up
        ));
    }
    format!("estate [{}]: {}\n", v.variant.name, parts.join("; "))
}

/// A driver whose threads were nearly all busy may have set the pace
/// itself: say so, with the way out. Threads come from the runtime's name.
fn saturated(runtime: &str, cpu_s: f64, seconds: f64) -> Option<String> {
    let threads = if runtime == "current-thread" {
        1.0
    } else {
        runtime
            .split(", ")
            .nth(1)?
            .split(' ')
            .next()?
            .parse::<f64>()
            .ok()?
    };
    let busy = cpu_s / seconds / threads;
    if !(seconds > 0.0 && busy >= 0.9) {
        return None;
    }
    let way_out = if runtime == "current-thread" {
        "REHEARSE_THREADS=multi spreads it over the cores"
    } else {
        "a client with more cores, or `run --shard` over several, would take the load off it"
    };
    Some(format!(
        "the driver's {runtime} runtime was busy {:.0}% of its {} thread(s) over {:.1} s: \
         the client may have set the pace rather than the server; {way_out}",
        busy * 100.0,
        threads,
        seconds
    ))
}

/// The human summary of a run.
pub fn text(r: &RunResult, dir: &Path) -> String {
    let mut out = format!(
        "\n{} ({}), {} variant(s), {:.0} s -> {}\n\n",
        r.scenario.name,
        r.scenario_file,
        r.variants.len(),
        r.seconds,
        dir.display()
    );
    let closed = r.scenario.has_closed_phase();
    let header = [
        "operation",
        "variant",
        "count",
        "rate/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "late",
    ];
    let mut rows = Vec::new();
    for (i, m) in r.scenario.mix.iter().enumerate() {
        for v in &r.variants {
            let o = &v.operations[i];
            let errors = if o.errors.is_empty() {
                "0".to_string()
            } else {
                o.errors
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            rows.push(vec![
                m.name.clone(),
                v.variant.name.clone(),
                thousands(o.count),
                f(o.throughput),
                f(o.response.p50_ms),
                f(o.response.p95_ms),
                f(o.response.p99_ms),
                f(o.response.p999_ms),
                f(o.response.max_ms),
                errors,
                thousands(o.late),
            ]);
        }
    }
    out += &table(&header, &rows);
    out += if closed {
        "latencies: response time from the intended start; closed phases record service time only (closed-loop)\n"
    } else {
        "latencies: response time, from each request's intended start (open model)\n"
    };
    out.push('\n');
    for v in &r.variants {
        for p in &v.phases {
            let target = match (p.target_rate, p.offered) {
                (Some(t), Some(o)) => format!("target {}/s, offered {}, ", f(t), thousands(o)),
                _ => "closed-loop, ".to_string(),
            };
            out += &format!(
                "phase [{}] {}: {target}completed {}, achieved {}/s, dropped {}\n",
                v.variant.name,
                p.name,
                thousands(p.completed),
                f(p.achieved_rate),
                p.dropped
            );
        }
        if let Some(j) = &r.journeys {
            out += &format!(
                "driver [{}]: {}, {} users closed-loop (coordinated-omission mitigation {}); \
                 times are each request's, sent to body read; the estate's counters are the service's (GET {}/metrics)\n",
                v.variant.name, j.tool, j.users, j.co_mitigation, j.target
            );
            if let Some(files) = j.reports.get(&v.variant.name) {
                out += &format!("goose [{}]: {}\n", v.variant.name, files.join(", "));
            }
            continue;
        }
        let wake = if v.driver_lag.count == 0 {
            "wake-up delay not measured (no request found a free worker: all waited in the backlog)"
                .to_string()
        } else {
            format!(
                "wake-up delay p99 {} ms over {} requests",
                f(v.driver_lag.p99_ms),
                thousands(v.driver_lag.count)
            )
        };
        // What the early release cost, where a phase released early.
        let spin: Vec<String> = v
            .phases
            .iter()
            .filter_map(|p| {
                p.early_release.as_ref().map(|e| {
                    format!(
                        "{} released {:.0} us early, waited {:.1} us per request",
                        p.name, e.lead_us, e.spun_us_per_request
                    )
                })
            })
            .collect();
        let spin = if spin.is_empty() {
            String::new()
        } else {
            format!(" ({})", spin.join("; "))
        };
        let runtime = v
            .driver_runtime
            .as_ref()
            .map(|r| format!(", on the {r} runtime"))
            .unwrap_or_default();
        out += &format!(
            "driver [{}]: {wake}, {:.1} us CPU per operation{spin}{runtime}\n",
            v.variant.name, v.driver_cpu_us_per_op
        );
        let busy = v
            .driver_runtime
            .as_deref()
            .and_then(|r| saturated(r, v.driver_cpu_seconds, v.seconds));
        if let Some(w) = busy {
            out += &format!("warning [{}]: {w}\n", v.variant.name);
        }
        out += &estate_line(v);
    }
    let budgets: Vec<String> = r
        .variants
        .iter()
        .flat_map(|v| {
            v.budgets.iter().map(move |b| {
                format!(
                    "  {} {} {} [{}]: {}\n",
                    match b.outcome {
                        BudgetOutcome::Pass => "pass",
                        BudgetOutcome::Fail => "FAIL",
                        BudgetOutcome::Unjudged => "UNJUDGED",
                    },
                    b.operation,
                    b.metric,
                    v.variant.name,
                    b.describe()
                )
            })
        })
        .collect();
    if !budgets.is_empty() {
        out += "\nbudgets:\n";
        out += &budgets.concat();
    }
    for v in &r.variants {
        if !v.validity.valid {
            out += &format!("\nINVALID [{}]:\n", v.variant.name);
            for reason in &v.validity.reasons {
                out += &format!("  {reason}\n");
            }
        }
        for n in &v.validity.not_judged {
            out += &format!("[{}] {n}\n", v.variant.name);
        }
    }
    if r.verdict == crate::run::Verdict::NotJudged {
        out += "\nmeasured, not judged: the scenario has no budget to hold these numbers against \
                (add [budgets.<operation>] to it, or gate the run with --budgets FILE)\n";
    }
    out += &format!(
        "\nverdict: {} (exit {})\n",
        serde_json::to_value(r.verdict)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        r.exit_code
    );
    out
}

/// The machine summary: run.json without timelines and samples.
pub fn json(r: &RunResult) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("run results serialize");
    if let Some(vs) = v.get_mut("variants").and_then(|x| x.as_array_mut()) {
        for x in vs {
            if let Some(o) = x.as_object_mut() {
                o.remove("timeline");
                if let Some(db) = o.get_mut("database").and_then(|d| d.as_object_mut()) {
                    db.remove("samples");
                }
            }
        }
    }
    v
}

/// The verdict of a suite of runs in one place: each scenario and variant,
/// then every budget missed or not decided and every reason a variant is
/// invalid, each with what would decide it.
pub fn suite(runs: &[&RunResult]) -> String {
    let mut rows = Vec::new();
    let mut why = Vec::new();
    for r in runs {
        for v in &r.variants {
            let n = |o| v.budgets.iter().filter(|b| b.outcome == o).count();
            rows.push(vec![
                r.scenario.name.clone(),
                v.variant.name.clone(),
                serde_json::to_value(v.verdict())
                    .ok()
                    .and_then(|x| x.as_str().map(str::to_string))
                    .unwrap_or_default(),
                n(BudgetOutcome::Pass).to_string(),
                n(BudgetOutcome::Fail).to_string(),
                n(BudgetOutcome::Unjudged).to_string(),
            ]);
            for b in v
                .budgets
                .iter()
                .filter(|b| b.outcome != BudgetOutcome::Pass)
            {
                why.push(format!(
                    "  {} [{}] {} {} {}: {}",
                    r.scenario.name,
                    v.variant.name,
                    b.operation,
                    b.metric,
                    if b.outcome == BudgetOutcome::Fail {
                        "MISSED"
                    } else {
                        "UNJUDGED"
                    },
                    b.describe()
                ));
            }
            for reason in &v.validity.reasons {
                why.push(format!(
                    "  {} [{}] INVALID: {reason}",
                    r.scenario.name, v.variant.name
                ));
            }
            if v.verdict() == crate::run::Verdict::NotJudged {
                why.push(format!(
                    "  {} [{}] NOT JUDGED: measured, but the scenario has no budgets",
                    r.scenario.name, v.variant.name
                ));
            }
        }
        if let Some(e) = &r.error {
            why.push(format!("  {} FAILED: {e}", r.scenario.name));
        }
    }
    let mut out = String::from("\n== suite verdict ==\n");
    out += &crate::text::table(
        &[
            "scenario", "variant", "verdict", "met", "missed", "unjudged",
        ],
        &rows,
    );
    if why.is_empty() {
        out += "every budget of every scenario decided and met\n";
    } else {
        out += "not met or not decided:\n";
        for w in why {
            out += &w;
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::saturated;

    #[test]
    fn a_driver_busy_nine_tenths_of_its_threads_is_warned_of() {
        let w = saturated("current-thread", 9.5, 10.0).unwrap();
        assert!(
            w.contains("busy 95%") && w.contains("REHEARSE_THREADS=multi"),
            "{w}"
        );
        assert_eq!(saturated("current-thread", 8.5, 10.0), None);
        // Two workers: 9.5 s of CPU in 10 s is under half of what they have.
        assert_eq!(saturated("multi-thread, 2 workers", 9.5, 10.0), None);
        let w = saturated("multi-thread, 2 workers", 19.0, 10.0).unwrap();
        assert!(
            w.contains("busy 95% of its 2 thread(s)") && w.contains("more cores"),
            "{w}"
        );
        assert_eq!(saturated("current-thread", 1.0, 0.0), None);
        assert!(saturated("multi-thread, 1 worker", 0.95, 1.0).is_some());
        assert_eq!(saturated("something else", 100.0, 1.0), None);
    }
}
