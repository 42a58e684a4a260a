//! What `capture` and `replay` print.

use std::fmt::Write as _;

use crate::replay::capture::CaptureSummary;
use crate::replay::Summary;

pub fn capture(s: &CaptureSummary) -> String {
    let mut out = String::new();
    for l in &s.logs {
        let _ = writeln!(
            out,
            "capture: {} records, {:.2} MB of csvlog in {:.1} s ({:.3} MB/s) from {}{}",
            l.records,
            l.bytes as f64 / 1e6,
            s.seconds,
            l.bytes as f64 / 1e6 / s.seconds.max(1e-9),
            l.server,
            if s.interrupted {
                "; ended by Ctrl-C"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "capture: the logging settings are back as they were; the window's log is {}",
        s.logs
            .iter()
            .map(|l| l.file.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    if let [primary, replicas @ ..] = s.logs.as_slice() {
        if !replicas.is_empty() {
            let _ = writeln!(
                out,
                "capture: replay them together: rehearse replay {}{}",
                primary.file.display(),
                replicas
                    .iter()
                    .map(|l| format!(" --replica-log {}", l.file.display()))
                    .collect::<String>()
            );
        }
    }
    for l in s.logs.iter().filter(|l| l.records == 0) {
        let _ = writeln!(
            out,
            "capture: the window holds no record from {}: did anything run against it?",
            l.server
        );
    }
    out
}

pub fn summary(s: &Summary) -> String {
    let mut out = String::new();
    let total: u64 = s.requests.values().sum();
    let _ = writeln!(
        out,
        "\nreplay of {}: {} records, {} statements in {} sessions over {:.1} s, at {}x",
        s.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        s.log.records,
        s.log.statements,
        s.log.sessions,
        s.span_s,
        s.speed
    );
    let _ = writeln!(
        out,
        "  {total} requests a mode: {}",
        s.requests
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "  {} of the repository's bookkeeping absorbed; {} unknown statements {}; {} COPY and {} fast-path calls skipped (the log holds no data for them); {} of other applications left out",
        s.absorbed,
        s.unknown,
        if s.unknown_skipped { "skipped" } else { "replayed verbatim" },
        s.log.copy,
        s.log.fastpath,
        s.log.filtered
    );
    if s.peak_verbatim_sessions > 0 {
        let _ = writeln!(
            out,
            "  up to {} sessions at once held a connection of their own for verbatim statements",
            s.peak_verbatim_sessions
        );
    }
    if s.peak_verbatim_sessions_replica > 0 {
        let _ = writeln!(
            out,
            "  on the replica (--replica-log): up to {} sessions at once",
            s.peak_verbatim_sessions_replica
        );
    }
    if s.log.spread > 0 {
        let _ = writeln!(
            out,
            "  {} statements shared their logged millisecond (log_time is rounded to it) and were spread evenly across it",
            s.log.spread
        );
    }
    if s.unreadable > 0 {
        let _ = writeln!(
            out,
            "  {} repository statements skipped, their parameters unreadable, e.g. {}",
            s.unreadable,
            s.unreadable_examples.join("; ")
        );
    }
    if s.batches_unclosed > 0 {
        let _ = writeln!(
            out,
            "  {} end-of-day batches had no COMMIT in the trace (it ended first): replayed",
            s.batches_unclosed
        );
    }
    for (mode, wall) in &s.wall_s {
        let _ = writeln!(
            out,
            "  {mode}: {wall:.2} s from the first release to the last answer (the trace: {:.2} s at {}x)",
            s.span_s / s.speed,
            s.speed
        );
    }
    let pre = s.prewrites;
    if pre > 0 {
        let _ = writeln!(
            out,
            "  {pre} adjusts and voids found no entry the replay had written for their organization and wrote one first"
        );
    }
    out
}
