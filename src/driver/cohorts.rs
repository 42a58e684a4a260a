//! Latency by cohort: for each request that succeeded, the mode whose
//! tables it used (legacy or partitioned), per operation and per span of
//! the run (the rollout drill's steps). The pilot against the rest in one
//! run has the same load, moment and machine: the fairest A/B there is.
//! Times are from the intended start, as the driver's own histograms.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::schema::Mode;

/// (span, operation index, mode) -> response times in nanoseconds.
pub type CohortHistograms = BTreeMap<(usize, usize, Mode), Histogram<u64>>;

#[derive(Default)]
pub struct Cohorts {
    span: AtomicUsize,
    hist: Mutex<CohortHistograms>,
}

impl Cohorts {
    /// Requests finishing from now on count in span `i`.
    pub fn set_span(&self, i: usize) {
        self.span.store(i, Ordering::SeqCst);
    }

    pub fn record(&self, op: usize, mode: Mode, latency: Duration) {
        let span = self.span.load(Ordering::Relaxed);
        let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        let e = h
            .entry((span, op, mode))
            .or_insert_with(crate::run::histogram::histogram::<u64>);
        e.saturating_record(latency.as_nanos().min(u64::MAX as u128) as u64);
    }

    pub fn take(&self) -> CohortHistograms {
        std::mem::take(&mut *self.hist.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
