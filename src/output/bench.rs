//! `rehearse bench select|open-loop|seed`: the medians side by side and their ratio.

use crate::pgbench::{
    open_loop::BenchOpenLoopReport, seed::BenchSeedReport, select::BenchSelectReport,
};
use crate::progress::thousands;

pub fn select(r: &BenchSelectReport, min_ratio: Option<f64>) -> String {
    let mut out = format!(
        "bench select: pgbench -S -M prepared vs rehearse run scenarios/pgbench_select.toml, scale {}, {} clients, {:.0} s, {} rounds\n\
         median tps  pgbench: {:.0}  rehearse: {:.0}  ratio: {:.2}x (goal 0.95x)\n\
         median client CPU per operation  pgbench: {:.1} us  rehearse: {:.1} us  ratio: {:.2}x (goal 1.0x or less)\n\
         median context switches per operation  pgbench: {:.2}  rehearse: {:.2}\n",
        r.scale,
        r.clients,
        r.duration_s,
        r.rounds.len(),
        r.median_pgbench_tps,
        r.median_rehearse_tps,
        r.median_ratio,
        r.median_pgbench_cpu_us_per_op,
        r.median_rehearse_cpu_us_per_op,
        r.cpu_ratio(),
        r.median_pgbench_switches_per_op,
        r.median_rehearse_switches_per_op
    );
    if let Some(x) = min_ratio {
        let short = r.shortfalls(Some(x));
        if short.is_empty() {
            out += &format!("--min-ratio {x}: met (exit 0)\n");
        } else {
            out += &format!("--min-ratio {x}: NOT met (exit 1): {}\n", short.join("; "));
        }
    }
    out
}

pub fn open_loop(r: &BenchOpenLoopReport) -> String {
    let mut out = format!(
        "bench open-loop: SELECT $1::int8 (scenarios/gate_smoke.toml) against pgbench -R -M prepared, {} in flight, {:.0} s per run, medians of {} rounds; {}\n",
        r.clients, r.duration_s, r.rounds, r.runtime
    );
    let header = [
        "rate/s",
        "achieved pgbench",
        "achieved rehearse",
        "CPU us/req pgbench",
        "CPU us/req rehearse",
        "switches/req pgbench",
        "switches/req rehearse",
        "lag p99 ms pgbench",
        "lag p99 ms rehearse",
        "wake-up p99 ms",
        "dropped",
        "valid",
    ];
    let rows: Vec<Vec<String>> = r
        .rates
        .iter()
        .map(|x| {
            let dropped: u64 = x.rounds.iter().map(|k| k.dropped).sum();
            vec![
                format!("{:.0}", x.rate),
                format!("{:.0}", x.median_pgbench_achieved),
                format!("{:.0}", x.median_rehearse_achieved),
                format!("{:.1}", x.median_pgbench_cpu_us),
                format!("{:.1}", x.median_rehearse_cpu_us),
                format!("{:.2}", x.median_pgbench_switches),
                format!("{:.2}", x.median_rehearse_switches),
                format!("{:.2}", x.median_pgbench_lag_p99_ms),
                format!("{:.2}", x.median_rehearse_lag_p99_ms),
                format!("{:.2}", x.median_wakeup_p99_ms),
                dropped.to_string(),
                if x.valid { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    out += &crate::text::table(&header, &rows);
    out += &match r.highest_valid_rate {
        Some(v) => format!(
            "highest valid rate: {v:.0}/s (rehearse's wake-up p99 under {} ms, nothing dropped, no error, in every round)\n",
            crate::pgbench::open_loop::VALID_LAG_MS
        ),
        None => "highest valid rate: none of the rates measured\n".to_string(),
    };
    if let Some(max) = r.max_cpu_us {
        if r.over_max_cpu.is_empty() {
            out += &format!("--max-cpu-us {max}: met at every rate (exit 0)\n");
        } else {
            let at: Vec<String> = r.over_max_cpu.iter().map(|x| format!("{x:.0}/s")).collect();
            out += &format!(
                "--max-cpu-us {max}: NOT met at {} (exit 1)\n",
                at.join(", ")
            );
        }
    }
    out
}

pub fn seed(r: &BenchSeedReport) -> String {
    format!(
        "bench seed: scale {} ({} rows), {} rounds, {} jobs\n\
         median rows/s  rehearse seed: {:.0}  the server's own COPY of the same rows from files: {:.0}  ratio: {:.2}x (goal 0.9x)\n\
         for reference, a different row shape: pgbench -i {:.0} rows/s, rehearse {:.2}x of it ({:.2}x by heap bytes/s; rehearse rows are wider)\n",
        r.scale,
        thousands(r.rounds[0].pgbench_rows),
        r.rounds.len(),
        r.jobs,
        r.median_rehearse_rows_per_s,
        r.median_server_copy_rows_per_s,
        r.median_copy_ratio,
        r.median_pgbench_rows_per_s,
        r.median_ratio,
        r.median_bytes_ratio
    )
}
