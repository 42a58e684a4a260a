//! Recording latencies: per-worker, per-interval HDR histograms, merged by
//! one collector, which appends each finished interval to the interval log
//! and keeps the run's totals.
//!
//! A worker records into histograms it owns (no lock, no allocation per
//! request); when the clock passes into the next interval it hands the
//! finished ones to the collector and takes reset ones from a pool (one lock
//! per worker per interval). The collector finishes interval k once every
//! worker has moved past it, so a worker stuck in a slow request holds the
//! interval back rather than losing its data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc::UnboundedSender;

use crate::run::histogram::{
    add_error, histogram, ms, ns, record, widen_into, ErrorKind, IntervalOp, IntervalSummary,
    OpSlot, OpTotals,
};
use crate::run::hlog::Hlog;

/// Reset slots for workers to reuse.
pub type SlotPool = Arc<Mutex<Vec<OpSlot>>>;

/// One worker's interval, handed to the collector.
#[derive(Debug)]
pub struct IntervalData {
    pub index: u64,
    pub ops: Vec<(usize, OpSlot)>,
    /// The driver's own wake-up delay, for requests that found a free worker.
    pub driver_lag: Option<Histogram<u32>>,
}

impl Msg {
    /// Requests this message reports as done: (answered, failed, late).
    pub fn completed(&self) -> (u64, u64, u64) {
        match self {
            Msg::Advance { data: Some(d), .. } => {
                d.ops.iter().fold((0, 0, 0), |(n, e, l), (_, s)| {
                    (n + s.response.len(), e + s.error_count(), l + s.late)
                })
            }
            _ => (0, 0, 0),
        }
    }
}

#[derive(Debug)]
pub enum Msg {
    /// The worker will send nothing more for intervals before `watermark`.
    Advance {
        worker: usize,
        data: Option<IntervalData>,
        watermark: u64,
    },
    Done {
        worker: usize,
    },
}

/// A worker's recorder.
pub struct Recorder {
    worker: usize,
    origin: Instant,
    interval_ns: u64,
    current: u64,
    slots: Vec<Option<OpSlot>>,
    driver_lag: Option<Histogram<u32>>,
    tx: UnboundedSender<Msg>,
    pool: SlotPool,
}

impl Recorder {
    pub fn new(
        worker: usize,
        ops: usize,
        origin: Instant,
        interval: Duration,
        tx: UnboundedSender<Msg>,
        pool: SlotPool,
    ) -> Recorder {
        let interval_ns = interval.as_nanos() as u64;
        Recorder {
            worker,
            origin,
            interval_ns,
            current: (origin.elapsed().as_nanos() as u64) / interval_ns,
            slots: (0..ops).map(|_| None).collect(),
            driver_lag: None,
            tx,
            pool,
        }
    }

    fn index_of(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.origin).as_nanos() as u64) / self.interval_ns
    }

    /// Hand over the current interval if `now` is past it.
    #[inline]
    fn roll(&mut self, now: Instant) {
        let idx = self.index_of(now);
        if idx > self.current {
            self.flush(idx);
        }
    }

    fn flush(&mut self, next: u64) {
        let ops: Vec<(usize, OpSlot)> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.take().map(|s| (i, s)))
            .collect();
        let data = if ops.is_empty() && self.driver_lag.is_none() {
            None
        } else {
            Some(IntervalData {
                index: self.current,
                ops,
                driver_lag: self.driver_lag.take(),
            })
        };
        self.current = next;
        let _ = self.tx.send(Msg::Advance {
            worker: self.worker,
            data,
            watermark: next,
        });
    }

    #[inline]
    fn slot(&mut self, op: usize) -> &mut OpSlot {
        if self.slots[op].is_none() {
            let reused = self
                .pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_else(OpSlot::new);
            self.slots[op] = Some(reused);
        }
        self.slots[op].as_mut().expect("just filled")
    }

    /// A request that succeeded.
    #[inline]
    pub fn ok(
        &mut self,
        op: usize,
        done: Instant,
        response: Duration,
        service: Duration,
        lag: Option<Duration>,
        late: bool,
    ) {
        self.roll(done);
        let s = self.slot(op);
        record(&mut s.response, ns(response));
        record(&mut s.service, ns(service));
        if let Some(l) = lag {
            record(&mut s.lag, ns(l));
        }
        s.late += late as u64;
    }

    /// A request that failed (its latency is not a latency of the operation).
    pub fn error(&mut self, op: usize, done: Instant, kind: ErrorKind, late: bool) {
        self.roll(done);
        let s = self.slot(op);
        add_error(&mut s.errors, kind, 1);
        s.late += late as u64;
    }

    /// The driver's wake-up delay for a request that found a free worker.
    #[inline]
    pub fn wakeup(&mut self, lag: Duration) {
        record(self.driver_lag.get_or_insert_with(histogram), ns(lag));
    }

    /// Nothing to record: move the watermark on if the clock has.
    pub fn tick(&mut self) {
        self.roll(Instant::now());
    }

    /// When the next interval starts.
    pub fn next_boundary(&self) -> Instant {
        self.origin + Duration::from_nanos((self.current + 1) * self.interval_ns)
    }

    pub fn finish(mut self) {
        let next = self.current + 1;
        self.flush(next);
        let _ = self.tx.send(Msg::Done {
            worker: self.worker,
        });
    }
}

/// An interval not finished yet: per-operation slots and the driver's lag.
type Pending = (Vec<Option<OpSlot>>, Option<Histogram<u32>>);

/// Merges what the workers of one variant send.
pub struct Collector {
    variant: String,
    ops: Vec<String>,
    interval: Duration,
    /// Seconds from the log's StartTime to this variant's origin.
    offset: f64,
    warmup_intervals: u64,
    watermarks: BTreeMap<usize, u64>,
    pending: BTreeMap<u64, Pending>,
    finished_before: u64,
    pool: SlotPool,
    pub totals: Vec<OpTotals>,
    pub driver_lag: Histogram<u64>,
    pub timeline: Vec<IntervalSummary>,
    /// Requests completed per interval, all operations, for the live display.
    pub last_interval_count: u64,
    pub hlog_errors: u64,
    /// Where finished intervals are also exported.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Collector {
    /// Seconds from the variant's start whose intervals are finished.
    pub fn finished_s(&self) -> f64 {
        self.finished_before as f64 * self.interval.as_secs_f64()
    }

    pub fn new(
        variant: &str,
        ops: Vec<String>,
        interval: Duration,
        offset: f64,
        warmup: Duration,
        pool: SlotPool,
    ) -> Collector {
        let n = ops.len();
        Collector {
            variant: variant.to_string(),
            ops,
            interval,
            offset,
            warmup_intervals: warmup.as_nanos().div_ceil(interval.as_nanos()) as u64,
            watermarks: BTreeMap::new(),
            pending: BTreeMap::new(),
            finished_before: 0,
            pool,
            totals: (0..n).map(|_| OpTotals::new()).collect(),
            driver_lag: histogram(),
            timeline: Vec::new(),
            last_interval_count: 0,
            hlog_errors: 0,
            metrics: None,
        }
    }

    /// A worker that will report; until it does, no interval finishes.
    pub fn expect_worker(&mut self, worker: usize, watermark: u64) {
        self.watermarks.insert(worker, watermark);
    }

    /// Take a message; finish what it allows.
    pub fn absorb(&mut self, msg: Msg, hlog: Option<&mut Hlog>) {
        match msg {
            Msg::Advance {
                worker,
                data,
                watermark,
            } => {
                if let Some(d) = data {
                    let n = self.ops.len();
                    let entry = self
                        .pending
                        .entry(d.index.max(self.finished_before))
                        .or_insert_with(|| ((0..n).map(|_| None).collect(), None));
                    for (op, mut slot) in d.ops {
                        match &mut entry.0[op] {
                            Some(acc) => {
                                acc.add(&slot);
                                slot.reset();
                                self.pool
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(slot);
                            }
                            empty => *empty = Some(slot),
                        }
                    }
                    if let Some(l) = d.driver_lag {
                        match &mut entry.1 {
                            Some(acc) => acc.add(&l).expect("auto-resizing add"),
                            empty => *empty = Some(l),
                        }
                    }
                }
                self.watermarks.insert(worker, watermark);
            }
            Msg::Done { worker } => {
                self.watermarks.remove(&worker);
            }
        }
        match self.watermarks.values().copied().min() {
            Some(upto) => self.finish_before(upto, hlog),
            // No worker is running (between phases): finish what is there,
            // without declaring later intervals finished.
            None => self.finish_all(hlog),
        }
    }

    /// Finish every pending interval before `upto`.
    pub fn finish_before(&mut self, upto: u64, mut hlog: Option<&mut Hlog>) {
        while let Some((&idx, _)) = self.pending.first_key_value() {
            if idx >= upto {
                break;
            }
            let (slots, lag) = self.pending.remove(&idx).expect("present");
            self.finish_interval(idx, slots, lag, hlog.as_deref_mut());
        }
        self.finished_before = self.finished_before.max(upto);
    }

    fn finish_interval(
        &mut self,
        idx: u64,
        slots: Vec<Option<OpSlot>>,
        lag: Option<Histogram<u32>>,
        mut hlog: Option<&mut Hlog>,
    ) {
        let len = self.interval.as_secs_f64();
        let start = self.offset + idx as f64 * len;
        let measured = idx >= self.warmup_intervals;
        let mut ops = Vec::new();
        let mut count = 0;
        for (op, slot) in slots.into_iter().enumerate() {
            let Some(mut s) = slot else { continue };
            let name = &self.ops[op];
            if let Some(h) = hlog.as_deref_mut() {
                for (metric, hist) in [
                    ("response", &s.response),
                    ("service", &s.service),
                    ("lag", &s.lag),
                ] {
                    if hist.is_empty() {
                        continue;
                    }
                    let tag = format!("{}/{name}/{metric}", self.variant);
                    if h.write(&tag, start, len, hist).is_err() {
                        self.hlog_errors += 1;
                    }
                }
            }
            if let Some(m) = &self.metrics {
                m.interval(&self.variant, name, &s);
            }
            let errors = s.error_count();
            count += s.response.len() + errors;
            ops.push(IntervalOp {
                op: name.clone(),
                count: s.response.len(),
                errors,
                late: s.late,
                p50_ms: ms(s.response.value_at_quantile(0.5)),
                p99_ms: ms(s.response.value_at_quantile(0.99)),
                max_ms: ms(s.response.max()),
            });
            if measured {
                let t = &mut self.totals[op];
                widen_into(&mut t.response, &s.response);
                widen_into(&mut t.service, &s.service);
                widen_into(&mut t.lag, &s.lag);
                t.late += s.late;
                for (k, n) in &s.errors {
                    *t.errors.entry(k.to_string()).or_default() += n;
                }
                t.blocks
                    .push(crate::run::bound::Block::of(Some(&s.response), errors));
            }
            s.reset();
            self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        }
        if let Some(l) = lag {
            if measured {
                widen_into(&mut self.driver_lag, &l);
            }
        }
        self.last_interval_count = count;
        self.timeline.push(IntervalSummary {
            t: idx as f64 * len,
            ops,
        });
    }

    /// Finish everything still pending (all workers are done, or the run was cut short).
    pub fn finish_all(&mut self, hlog: Option<&mut Hlog>) {
        let upto = self
            .pending
            .last_key_value()
            .map_or(self.finished_before, |(&idx, _)| idx + 1);
        self.finish_before(upto, hlog);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_slow_worker_holds_its_interval_back_until_it_reports() {
        let pool: SlotPool = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let origin = Instant::now();
        let interval = Duration::from_millis(100);
        let mut col = Collector::new(
            "v",
            vec!["a".into()],
            interval,
            0.0,
            Duration::ZERO,
            pool.clone(),
        );
        let mut fast = Recorder::new(0, 1, origin, interval, tx.clone(), pool.clone());
        let mut slow = Recorder::new(1, 1, origin, interval, tx, pool);
        col.expect_worker(0, 0);
        col.expect_worker(1, 0);
        let ms = Duration::from_millis;
        fast.ok(0, origin + ms(10), ms(5), ms(4), Some(ms(1)), false);
        slow.ok(0, origin + ms(20), ms(7), ms(7), Some(ms(0)), false);
        // The fast worker moves on to interval 3; the slow one is still in 0.
        fast.ok(0, origin + ms(350), ms(5), ms(4), None, false);
        let live = crate::driver::live::Live::default();
        while let Ok(m) = rx.try_recv() {
            live.reported(&m);
            col.absorb(m, None);
        }
        assert!(
            col.timeline.is_empty(),
            "interval 0 waits for the slow worker"
        );
        // The live display counts what was reported, not what is finished:
        // a slow request must not make it read "done 0".
        live.publish(&col);
        assert_eq!(live.reported.load(Ordering::Relaxed), 1);
        assert_eq!(live.finished_s.load(Ordering::Relaxed), 0);
        slow.error(0, origin + ms(260), ErrorKind::Timeout, true);
        while let Ok(m) = rx.try_recv() {
            col.absorb(m, None);
        }
        assert_eq!(col.timeline.len(), 1);
        assert_eq!(col.timeline[0].ops[0].count, 2, "both workers' interval 0");
        fast.finish();
        slow.finish();
        while let Ok(m) = rx.try_recv() {
            col.absorb(m, None);
        }
        let t = &col.totals[0];
        assert_eq!(t.ok(), 3);
        assert_eq!(t.errors["timeout"], 1);
        assert_eq!(t.late, 1);
        assert_eq!(col.timeline.len(), 3, "intervals 0, 2 and 3");
    }

    #[test]
    fn a_second_phase_keeps_its_own_intervals() {
        let pool: SlotPool = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let interval = Duration::from_millis(100);
        let origin = Instant::now();
        let mut col = Collector::new(
            "v",
            vec!["a".into()],
            interval,
            0.0,
            Duration::ZERO,
            pool.clone(),
        );
        let ms = Duration::from_millis;
        // Phase 1: one worker, interval 0, then done; nobody is running.
        col.expect_worker(0, 0);
        let mut first = Recorder::new(0, 1, origin, interval, tx.clone(), pool.clone());
        first.ok(0, origin + ms(50), ms(1), ms(1), None, false);
        first.finish();
        while let Ok(m) = rx.try_recv() {
            col.absorb(m, None);
        }
        // Phase 2 starts in interval 3: its samples land in 3 and 4, as they happen.
        col.expect_worker(1, 3);
        let mut second = Recorder::new(1, 1, origin, interval, tx, pool);
        second.ok(0, origin + ms(350), ms(2), ms(2), None, false);
        second.ok(0, origin + ms(450), ms(2), ms(2), None, false);
        while let Ok(m) = rx.try_recv() {
            col.absorb(m, None);
        }
        assert_eq!(
            col.timeline.len(),
            2,
            "interval 3 finished while the phase runs"
        );
        assert!(
            (col.timeline[1].t - 0.3).abs() < 1e-9,
            "{}",
            col.timeline[1].t
        );
        second.finish();
        while let Ok(m) = rx.try_recv() {
            col.absorb(m, None);
        }
        assert_eq!(col.timeline.len(), 3);
        assert!((col.timeline[2].t - 0.4).abs() < 1e-9);
    }

    #[test]
    fn long_latencies_are_kept_not_clamped_to_the_initial_range() {
        let pool: SlotPool = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let origin = Instant::now();
        let mut col = Collector::new(
            "v",
            vec!["a".into()],
            Duration::from_secs(1),
            0.0,
            Duration::ZERO,
            pool.clone(),
        );
        let mut rec = Recorder::new(0, 1, origin, Duration::from_secs(1), tx, pool);
        col.expect_worker(0, 0);
        let s = Duration::from_secs;
        rec.ok(0, origin, s(2), s(2), Some(s(1)), true);
        rec.ok(
            0,
            origin,
            Duration::from_micros(500),
            Duration::from_micros(400),
            None,
            false,
        );
        rec.finish();
        while let Ok(m) = rx.try_recv() {
            col.absorb(m, None);
        }
        let t = &col.totals[0];
        assert!(t.response.max() >= 1_999_000_000, "{}", t.response.max());
        assert!(t.lag.max() >= 999_000_000);
        assert!((t.response.min() as i64 - 500_000).abs() < 1_000);
    }
}
