//! The driver's hot path, no database: recording one latency, merging the
//! workers' interval histograms, and deciding the next request (its arrival
//! time, its operation and its tenant). Run with `cargo bench --bench driver`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rehearse::day::Day;
use rehearse::driver::ops::Workload;
use rehearse::driver::record::{Collector, Msg, Recorder, SlotPool};
use rehearse::driver::schedule::Arrivals;
use rehearse::driver::tenants::{Chooser, TenantSet};
use rehearse::scenario::{self, Arrival, Tenants};

fn record(c: &mut Criterion) {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let origin = Instant::now();
    // One long interval: the steady state between interval hand-overs.
    let mut rec = Recorder::new(
        0,
        4,
        origin,
        Duration::from_secs(3600),
        tx,
        SlotPool::default(),
    );
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    group.bench_function("ok (response, service, lag)", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            let v = Duration::from_nanos(200_000 + (i % 5_000_000));
            rec.ok(
                black_box((i % 4) as usize),
                origin,
                v,
                v,
                Some(v / 10),
                false,
            );
        })
    });
    group.finish();
}

/// Messages of `workers` workers, each with `ops` operations and 2,000
/// samples per operation in one interval.
fn interval_messages(workers: usize, ops: usize) -> (Vec<Msg>, SlotPool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pool = SlotPool::default();
    let origin = Instant::now() - Duration::from_secs(2);
    for w in 0..workers {
        let mut rec = Recorder::new(
            w,
            ops,
            origin,
            Duration::from_secs(1),
            tx.clone(),
            pool.clone(),
        );
        for k in 0..2_000u64 * ops as u64 {
            let v = Duration::from_nanos(100_000 + (k * 7919 + w as u64 * 104_729) % 20_000_000);
            rec.ok((k % ops as u64) as usize, origin, v, v, Some(v / 20), false);
        }
        rec.finish();
    }
    drop(tx);
    let mut msgs = Vec::new();
    while let Ok(m) = rx.try_recv() {
        msgs.push(m);
    }
    (msgs, pool)
}

fn merge(c: &mut Criterion) {
    let (workers, ops) = (64, 6);
    let mut group = c.benchmark_group("merge");
    group.throughput(Throughput::Elements(workers as u64));
    group.bench_function("one interval, 64 workers x 6 operations", |b| {
        b.iter_batched(
            || interval_messages(workers, ops),
            |(msgs, pool)| {
                let names = (0..ops).map(|i| format!("op{i}")).collect();
                let mut col = Collector::new(
                    "v",
                    names,
                    Duration::from_secs(1),
                    0.0,
                    Duration::ZERO,
                    pool,
                );
                for w in 0..workers {
                    col.expect_worker(w, 0);
                }
                for m in msgs {
                    col.absorb(m, None);
                }
                black_box(col.totals[0].response.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn next_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("next request");
    group.throughput(Throughput::Elements(1));
    let mut arrivals = Arrivals::new(
        5_000.0,
        20_000.0,
        Duration::from_secs(1_000_000),
        Arrival::Poisson,
        42,
    );
    group.bench_function("poisson arrival (ramping)", |b| {
        b.iter(|| black_box(arrivals.next()))
    });

    // A million organizations, as in the full estate.
    let tenants = Arc::new(TenantSet::from_pairs(
        (1..=1_000_000i64).map(|o| (o, o * 1024)),
    ));
    let text = r#"
[[phase]]
duration = "1s"
rate = 1
[[mix]]
operation = "dashboard"
weight = 40
[[mix]]
operation = "pnl"
weight = 20
[[mix]]
operation = "record_revenue"
weight = 30
[[mix]]
operation = "ledger"
weight = 10
"#;
    let s = scenario::parse(std::path::Path::new("bench.toml"), text).unwrap();
    for (label, dist) in [
        ("plan, uniform tenants", Tenants::Uniform),
        ("plan, zipf tenants", Tenants::Zipf { exponent: 1.1 }),
    ] {
        let chooser = Arc::new(Chooser::new(&dist, &tenants, 42));
        let w = Workload::new(
            s.mix.clone(),
            tenants.clone(),
            chooser,
            Day::from_ymd(2026, 10, 31),
        );
        let mut i = 0u64;
        group.bench_function(label, |b| {
            b.iter(|| {
                i += 1;
                black_box(w.plan(i).op)
            })
        });
    }
    group.finish();
}

/// The open phase's dispatcher waits for each arrival: a 200 µs wait on
/// the `timerfd` it uses, against tokio's own timer (millisecond wheel) and
/// a thread's `nanosleep` with 1 µs timer slack, what it used before. Time
/// per wait is 200 µs plus the overshoot.
fn dispatcher_wait(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatcher wait of 200us");
    group.sample_size(20);
    let wait = Duration::from_micros(200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let timer = rt.block_on(async { rehearse::driver::timer::Timer::new().unwrap() });
    group.bench_function("timerfd in the runtime", |b| {
        b.iter(|| {
            rt.block_on(timer.sleep_until(Instant::now() + wait))
                .unwrap()
        })
    });
    group.bench_function("tokio::time::sleep", |b| {
        b.iter(|| rt.block_on(async { tokio::time::sleep(wait).await }))
    });
    // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    group.bench_function("thread nanosleep, 1us slack", |b| {
        b.iter(|| std::thread::sleep(wait))
    });
    group.finish();
}

criterion_group!(benches, record, merge, next_request, dispatcher_wait);
criterion_main!(benches);
