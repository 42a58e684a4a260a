//! `rehearse bench select|seed`: the medians side by side and their ratio.

use crate::pgbench::{seed::BenchSeedReport, select::BenchSelectReport};
use crate::progress::thousands;

pub fn select(r: &BenchSelectReport) -> String {
    format!(
        "bench select: pgbench -S -M prepared vs rehearse run scenarios/pgbench_select.toml, scale {}, {} clients, {:.0} s, {} rounds\n\
         median tps  pgbench: {:.0}  rehearse: {:.0}  ratio: {:.2}x (floor 1.0x, goal 1.2x)\n\
         median client CPU per operation  pgbench: {:.1} us  rehearse: {:.1} us\n",
        r.scale,
        r.clients,
        r.duration_s,
        r.rounds.len(),
        r.median_pgbench_tps,
        r.median_rehearse_tps,
        r.median_ratio,
        r.median_pgbench_cpu_us_per_op,
        r.median_rehearse_cpu_us_per_op
    )
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
