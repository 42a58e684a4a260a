//! The histogram primitives every reader and writer of latencies shares:
//! the HDR bounds, the empty histogram, why a request failed, one
//! operation's interval and totals, and the timeline's lines. The driver
//! records into them; run/, merge, journeys, shard and the reports read
//! them. Nothing here knows who records.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::Error;

/// Values are nanoseconds, discernible to the microsecond, three significant digits.
pub const LOWEST_NS: u64 = 1_000;
pub const SIGFIG: u8 = 3;
/// The largest value recorded as itself; longer ones are clamped to it.
pub const HIGHEST_NS: u64 = 3_600_000_000_000;
/// What the interval log's max column is divided by: nanoseconds shown as milliseconds.
pub const MAX_VALUE_DIVISOR: f64 = 1e6;

/// An empty histogram that grows to what is recorded.
pub fn histogram<T: hdrhistogram::Counter>() -> Histogram<T> {
    let mut h = Histogram::new_with_bounds(LOWEST_NS, 100_000_000, SIGFIG).expect("valid bounds");
    h.auto(true);
    h
}

/// Record a value, growing the histogram as needed (values are clamped to
/// [`HIGHEST_NS`] first, so growth is bounded).
#[inline]
pub(crate) fn record(h: &mut Histogram<u32>, v: u64) {
    let _ = h.record(v);
}

#[inline]
pub(crate) fn ns(d: Duration) -> u64 {
    (d.as_nanos() as u64).clamp(LOWEST_NS, HIGHEST_NS)
}

/// Add an interval histogram (u32 counts) into a total (u64 counts).
pub(crate) fn widen_into(total: &mut Histogram<u64>, h: &Histogram<u32>) {
    for v in h.iter_recorded() {
        // `record_n` grows an auto-resizing histogram; the saturating form would clamp.
        let _ = total.record_n(v.value_iterated_to(), v.count_at_value() as u64);
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// No answer within the scenario's timeout.
    Timeout,
    /// The connection broke or could not be made.
    Connection,
    /// A serialization failure or deadlock that was still there after the retries.
    RetryExhausted,
    /// No target could serve it (a replica-only read with no healthy replica).
    Unavailable,
    /// What the request named does not exist.
    NotFound,
    /// A statement failed with this SQLSTATE class.
    Sqlstate([u8; 2]),
    Other,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKind::Timeout => write!(f, "timeout"),
            ErrorKind::Connection => write!(f, "connection"),
            ErrorKind::RetryExhausted => write!(f, "retry_exhausted"),
            ErrorKind::Unavailable => write!(f, "unavailable"),
            ErrorKind::NotFound => write!(f, "not_found"),
            ErrorKind::Sqlstate(c) => write!(f, "sqlstate_{}{}", c[0] as char, c[1] as char),
            ErrorKind::Other => write!(f, "other"),
        }
    }
}

impl ErrorKind {
    pub fn of(e: &Error) -> ErrorKind {
        match e {
            Error::Db { source, .. } => match source.code() {
                Some(code) => {
                    let c = code.code().as_bytes();
                    if c == b"40001" || c == b"40P01" {
                        ErrorKind::RetryExhausted
                    } else if c.starts_with(b"08") || c.starts_with(b"57P") {
                        ErrorKind::Connection
                    } else {
                        ErrorKind::Sqlstate([c[0], c[1]])
                    }
                }
                None => ErrorKind::Connection,
            },
            Error::Lab(_) => ErrorKind::Unavailable,
            Error::NotFound(_) => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        }
    }
}

/// What one operation saw in one interval (of one worker, or merged).
#[derive(Debug, Clone)]
pub struct OpSlot {
    /// Completion minus intended start (closed phases: minus send).
    pub response: Histogram<u32>,
    /// Completion minus send.
    pub service: Histogram<u32>,
    /// Send minus intended start (open phases).
    pub lag: Histogram<u32>,
    /// Requests sent later than the phase's `late_after`.
    pub late: u64,
    pub errors: Vec<(ErrorKind, u64)>,
}

impl OpSlot {
    pub(crate) fn new() -> OpSlot {
        OpSlot {
            response: histogram(),
            service: histogram(),
            lag: histogram(),
            late: 0,
            errors: Vec::new(),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.response.reset();
        self.service.reset();
        self.lag.reset();
        self.late = 0;
        self.errors.clear();
    }

    pub(crate) fn add(&mut self, o: &OpSlot) {
        self.response.add(&o.response).expect("auto-resizing add");
        self.service.add(&o.service).expect("auto-resizing add");
        self.lag.add(&o.lag).expect("auto-resizing add");
        self.late += o.late;
        for &(k, n) in &o.errors {
            add_error(&mut self.errors, k, n);
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|e| e.1).sum()
    }
}

pub(crate) fn add_error(errors: &mut Vec<(ErrorKind, u64)>, kind: ErrorKind, n: u64) {
    match errors.iter_mut().find(|e| e.0 == kind) {
        Some(e) => e.1 += n,
        None => errors.push((kind, n)),
    }
}

/// Totals of one operation over the measured (post warm-up) intervals.
#[derive(Debug, Clone)]
pub struct OpTotals {
    pub response: Histogram<u64>,
    pub service: Histogram<u64>,
    pub lag: Histogram<u64>,
    pub late: u64,
    pub errors: BTreeMap<String, u64>,
    /// Each measured interval's responses and failures, compactly: what
    /// budgets are judged on ([`crate::run::bound`]).
    pub blocks: Vec<crate::run::bound::Block>,
}

impl OpTotals {
    pub(crate) fn new() -> OpTotals {
        OpTotals {
            response: histogram(),
            service: histogram(),
            lag: histogram(),
            late: 0,
            errors: BTreeMap::new(),
            blocks: Vec::new(),
        }
    }

    pub fn ok(&self) -> u64 {
        self.response.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One operation in one interval, for timelines.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalOp {
    pub op: String,
    pub count: u64,
    pub errors: u64,
    pub late: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One finished interval, for timelines.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalSummary {
    /// Seconds from the variant's start.
    pub t: f64,
    pub ops: Vec<IntervalOp>,
}

pub fn ms(v: u64) -> f64 {
    v as f64 / 1e6
}

impl IntervalOp {
    /// One operation's line of a finished interval, from its histogram (None: no sample).
    pub fn of(op: &str, h: Option<&Histogram<u64>>, errors: u64, late: u64) -> IntervalOp {
        IntervalOp {
            op: op.to_string(),
            count: h.map_or(0, |h| h.len()),
            errors,
            late,
            p50_ms: h.map_or(0.0, |h| ms(h.value_at_quantile(0.5))),
            p99_ms: h.map_or(0.0, |h| ms(h.value_at_quantile(0.99))),
            max_ms: h.map_or(0.0, |h| ms(h.max())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_name_the_failure() {
        assert_eq!(ErrorKind::Sqlstate(*b"42").to_string(), "sqlstate_42");
        assert_eq!(
            ErrorKind::of(&Error::NotFound("x".into())),
            ErrorKind::NotFound
        );
        assert_eq!(
            ErrorKind::of(&Error::Lab("x".into())),
            ErrorKind::Unavailable
        );
    }
}
