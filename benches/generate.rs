//! The generator alone, no database: rows generated per second, so a
//! generator regression shows without a server. Run with `cargo bench --bench generate`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rehearse::day::Day;
use rehearse::generate::{Generator, OrgRows, Params};

fn generate(c: &mut Criterion) {
    let generator = Generator::new(Params {
        orgs: 1_000_000,
        days: 14,
        seed: 42,
        end_date: Day::from_ymd(2026, 10, 31),
    })
    .unwrap();
    // A slice of the id space away from the first chain, so the figure is
    // the typical organization's.
    let ids = 500_001i64..=501_000;
    let mut rows = OrgRows::default();
    let per_iter: u64 = ids
        .clone()
        .map(|id| {
            generator.fill(id, &mut rows);
            rows.counts().total()
        })
        .sum();
    let mut group = c.benchmark_group("generator");
    group.throughput(Throughput::Elements(per_iter));
    group.bench_function("fill_1000_orgs", |b| {
        b.iter(|| {
            for id in ids.clone() {
                generator.fill(black_box(id), &mut rows);
            }
            black_box(rows.revenue.len())
        })
    });
    group.bench_function("fill_and_checksum_1000_orgs", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for id in ids.clone() {
                generator.fill(black_box(id), &mut rows);
                sum = sum.wrapping_add(rows.checksum());
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
