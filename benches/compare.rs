//! `rehearse compare` on a realistic size, no database: two sides of 600
//! one-second interval histograms, 1,000 bootstrap resamples. The goal is
//! well under a second per operation and variant. Run with
//! `cargo bench --bench compare`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hdrhistogram::Histogram;
use rehearse::compare::{compare, compare_all, CompareSettings, Runs};
use rehearse::generate::rng::SplitMix;

fn side(rng: &mut SplitMix, intervals: usize, scale: f64) -> Vec<Histogram<u64>> {
    (0..intervals)
        .map(|_| {
            let mut h = rehearse::run::histogram::histogram::<u64>();
            let load = 0.8 + 0.4 * rng.unit();
            for _ in 0..1_000 {
                let u = rng.unit().max(1e-12);
                // An exponential body with a long tail, in nanoseconds.
                let ms = load * scale * (-u.ln()) * if rng.unit() < 0.01 { 8.0 } else { 1.0 };
                h.record((ms * 1e6) as u64 + 1_000).unwrap();
            }
            h
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = SplitMix(7);
    let s = CompareSettings::default();
    let mut g = c.benchmark_group("compare");
    g.sample_size(10);
    for n in [200, 600] {
        let a = vec![side(&mut rng, n, 1.0)];
        let b = vec![side(&mut rng, n, 1.1)];
        g.bench_function(
            format!("one operation, {n} vs {n} intervals, 1000 resamples"),
            |bch| bch.iter(|| black_box(compare(&a, &b, 1.0, &s))),
        );
    }
    // A run of 10 operations x 2 variants, 200 intervals each, on all cores.
    let mut base = Runs::new();
    let mut cand = Runs::new();
    for k in 0..20 {
        base.insert(format!("v{}/op{k}", k % 2), vec![side(&mut rng, 200, 1.0)]);
        cand.insert(format!("v{}/op{k}", k % 2), vec![side(&mut rng, 200, 1.05)]);
    }
    g.bench_function("20 operation-variants, 200 vs 200 intervals", |bch| {
        bch.iter(|| black_box(compare_all(&base, &cand, 1.0, &s)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
