//! `rehearse replay`'s reading of a csvlog, no database: 200,000 records
//! shaped like a captured finance run (the extended protocol's `execute`
//! with its parameters, simple `statement:` lines, connections, durations),
//! parsed into sessions and classified into the repository's operations.
//! The goal is at least 200,000 lines a second on one core. Run with
//! `cargo bench --bench replay`; criterion's throughput line is the rate.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse::replay::{classify, csvlog};

const LINES: usize = 200_000;

fn record(i: usize, message: &str, detail: &str) -> String {
    let ms = i / 10;
    let (s, m) = (ms / 1000, ms % 1000);
    let q = |x: &str| format!("\"{}\"", x.replace('"', "\"\""));
    format!(
        "2026-12-06 07:{:02}:{:02}.{m:03} UTC,postgres,rehearse,{pid},127.0.0.1:5{pid},6571b2.{pid:x},{i},SELECT,2026-12-06 07:00:00 UTC,3/{i},0,LOG,00000,{},{},,,,,,,,rehearse,client backend,,0\n",
        (s / 60) % 60,
        s % 60,
        q(message),
        q(detail),
        pid = 1000 + i % 16,
    )
}

fn trace() -> PathBuf {
    let insert = "INSERT INTO revenue_entries (organization_id, property_id, business_date, category, amount_cents, description)\nSELECT p.organization_id, p.id, $3, $4::entry_category, $5, $6\nFROM properties p WHERE p.id = $2 AND p.organization_id = $1\nRETURNING id";
    let dashboard = "SELECT business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8\nFROM daily_financial_summaries\nWHERE organization_id = $1 AND business_date BETWEEN $2 AND $3\nGROUP BY business_date\nORDER BY business_date";
    let mut text = String::new();
    for i in 0..LINES {
        text.push_str(&match i % 5 {
            0 => record(i, &format!("execute s0: {insert}"), &format!("parameters: $1 = '{}', $2 = '{}', $3 = '2026-10-31', $4 = 'rooms', $5 = '12345', $6 = NULL", i % 997, i % 4001)),
            1 => record(i, "execute s1: SELECT pg_current_wal_insert_lsn()", ""),
            2 => record(i, &format!("duration: 0.412 ms  execute s2: {dashboard}"), &format!("parameters: $1 = '{}', $2 = '2026-10-18', $3 = '2026-10-31'", i % 997)),
            3 => record(i, "statement: SELECT abalance FROM pgbench_accounts WHERE aid = 4711", ""),
            _ => record(i, "duration: 0.101 ms", ""),
        });
    }
    let p = std::env::temp_dir().join(format!("rehearse-bench-replay-{}.csv", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn bench(c: &mut Criterion) {
    let path = trace();
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LINES as u64));
    g.bench_function("read 200,000 csvlog records", |b| {
        b.iter(|| {
            black_box(
                csvlog::read(std::slice::from_ref(&path), &csvlog::Filter::default()).unwrap(),
            )
        })
    });
    let t = csvlog::read(std::slice::from_ref(&path), &csvlog::Filter::default()).unwrap();
    g.bench_function("read and classify 200,000 csvlog records", |b| {
        b.iter(|| {
            let t = csvlog::read(std::slice::from_ref(&path), &csvlog::Filter::default()).unwrap();
            let n = t
                .statements()
                .filter(|(_, st)| !matches!(classify::classify(st), classify::Class::Unknown))
                .count();
            black_box(n)
        })
    });
    g.finish();
    assert!(t.counts.statements as usize == LINES * 4 / 5);
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench);
criterion_main!(benches);
