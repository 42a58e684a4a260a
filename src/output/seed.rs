//! `rehearse seed`: rows and size per table, seconds per phase, the totals.

use crate::progress::thousands;
use crate::seed::SeedRecord;
use crate::text::table;

pub fn record(record: &SeedRecord) -> String {
    let rows: Vec<Vec<String>> = record
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.clone(),
                thousands(t.rows),
                format!("{:.1} MiB", t.bytes as f64 / 1048576.0),
            ]
        })
        .collect();
    let phases: Vec<Vec<String>> = record
        .phases
        .iter()
        .map(|(p, s)| vec![p.clone(), format!("{s:.1}")])
        .collect();
    format!(
        "\n{}\n{}\n{} rows generated; load {:.0} rows/s; total {:.1} s; peak RSS {} MiB; checksum {}\n",
        table(&["table", "rows", "size"], &rows),
        table(&["phase", "seconds"], &phases),
        thousands(record.counts.total()),
        record.load_rows_per_second(),
        record.seconds,
        record
            .peak_rss_kib
            .map(|k| (k / 1024).to_string())
            .unwrap_or_else(|| "?".into()),
        record.checksum
    )
}
