//! rehearse's own metrics, served on `--metrics-addr` while a run or drill
//! goes, in OpenMetrics text through the official `prometheus-client`:
//! per variant and operation, requests, errors by kind and a response-time
//! histogram whose buckets include every budget; the repository's counters
//! (reads per target, fallbacks, replica health, cache, flag mode, write
//! retries); the scenario's budgets, so alert rules compare against them
//! without copying numbers; and the cutover drill's step, backfill progress
//! and ledger counts.
//!
//! Response times come from the driver's finished intervals (the same
//! HDR histograms that feed run.json), so the exposition lags by at most one
//! interval, and counts warm-up too: it is what a service's own metrics would
//! show.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::{Error, Result};
use crate::repo::RepoStats;
use crate::run::histogram::OpSlot;
use crate::scenario::Scenario;

type Labels = Vec<(&'static str, String)>;
type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Response-time bucket bounds in seconds before the budgets are added:
/// 1-2-5 steps from 0.5 ms to 10 s.
pub const BASE_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// Bucket bounds: the base ones and every budget, so `le="<budget>"`
/// answers "how many within budget" exactly.
pub fn buckets(budgets: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut b: Vec<f64> = BASE_BUCKETS.iter().copied().chain(budgets).collect();
    b.retain(|x| x.is_finite() && *x > 0.0);
    b.sort_by(f64::total_cmp);
    b.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    b
}

#[derive(Clone, Debug)]
struct Buckets(Arc<Vec<f64>>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Every metric rehearse exports. Cheap to share; updated from the
/// driver's collector and the drill.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    late: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, Buckets>,
    budget: Family<Labels, F64Gauge>,
    error_budget: Family<Labels, F64Gauge>,
    active: Family<Labels, Gauge>,
    reads: Family<Labels, Counter>,
    fallbacks: Family<Labels, Counter>,
    replica_healthy: Family<Labels, Gauge>,
    replica_changes: Family<Labels, Counter>,
    replica_lag: Family<Labels, Gauge>,
    cache: Family<Labels, Counter>,
    cache_errors: Family<Labels, Counter>,
    flag: Family<Labels, Gauge>,
    retries: Family<Labels, Counter>,
    gave_up: Family<Labels, Counter>,
    cutover_step: Family<Labels, Gauge>,
    backfill: Family<Labels, F64Gauge>,
    ledger: Family<Labels, Gauge>,
    /// Last repository snapshot per variant: counters move by the difference.
    last: Mutex<HashMap<(String, String), u64>>,
}

impl Metrics {
    /// Metrics whose histogram buckets include `budgets` (seconds).
    pub fn new(budgets: impl IntoIterator<Item = f64>) -> Metrics {
        let mut r = Registry::default();
        macro_rules! reg {
            ($name:expr, $help:expr, $m:expr) => {{
                let m = $m;
                r.register($name, $help, m.clone());
                m
            }};
        }
        let buckets = Buckets(Arc::new(buckets(budgets)));
        Metrics {
            requests: reg!(
                "rehearse_requests",
                "Requests completed, by variant, operation and outcome (ok or error)",
                Family::default()
            ),
            errors: reg!(
                "rehearse_request_errors",
                "Failed requests by kind (timeout, connection, retry_exhausted, unavailable, not_found, sqlstate_XX, other)",
                Family::default()
            ),
            late: reg!(
                "rehearse_late_requests",
                "Requests sent later than the phase's late_after: the driver fell behind its schedule",
                Family::default()
            ),
            duration: reg!(
                "rehearse_request_duration_seconds",
                "Response time from the intended start (open phases: free of coordinated omission); buckets include every budget",
                Family::new_with_constructor(buckets)
            ),
            budget: reg!(
                "rehearse_budget_seconds",
                "The scenario's latency budget per operation and quantile",
                Family::default()
            ),
            error_budget: reg!(
                "rehearse_error_budget_ratio",
                "The scenario's error budget per operation: failed over all requests, at most",
                Family::default()
            ),
            active: reg!(
                "rehearse_variant_active",
                "1 while this variant runs",
                Family::default()
            ),
            reads: reg!(
                "rehearse_repo_reads",
                "Reads served, by target (primary or replica)",
                Family::default()
            ),
            fallbacks: reg!(
                "rehearse_repo_fallbacks",
                "Reads meant for a replica that went to the primary, by reason",
                Family::default()
            ),
            replica_healthy: reg!(
                "rehearse_repo_replicas_healthy",
                "Replicas the repository routes reads to now",
                Family::default()
            ),
            replica_changes: reg!(
                "rehearse_repo_replica_changes",
                "Times a replica was taken out of or put back into rotation (change=removed|restored)",
                Family::default()
            ),
            replica_lag: reg!(
                "rehearse_repo_replica_lag_bytes",
                "Replay lag at the repository's last check of the replica",
                Family::default()
            ),
            cache: reg!(
                "rehearse_cache_lookups",
                "Report cache lookups by result (hit, miss)",
                Family::default()
            ),
            cache_errors: reg!(
                "rehearse_cache_errors",
                "Redis commands that failed or timed out, and lookups that skipped Redis while it was down",
                Family::default()
            ),
            flag: reg!(
                "rehearse_flag_partitioned",
                "1 when calls use the partitioned tables (USE_PARTITIONED_TABLES), else 0",
                Family::default()
            ),
            retries: reg!(
                "rehearse_write_retries",
                "Finance writes retried, by reason (serialization, deadlock)",
                Family::default()
            ),
            gave_up: reg!(
                "rehearse_write_gave_up",
                "Finance writes that failed after the last retry",
                Family::default()
            ),
            cutover_step: reg!(
                "rehearse_cutover_step",
                "1 for the cutover step under way in the drill, 0 for the others",
                Family::default()
            ),
            backfill: reg!(
                "rehearse_backfill_progress_ratio",
                "Share of the organizations the backfill has copied, after each batch",
                Family::default()
            ),
            ledger: reg!(
                "rehearse_ledger_writes",
                "Acknowledged writes in the drill's ledger, and what verification found (state=acknowledged|missing|differing|resurrected)",
                Family::default()
            ),
            last: Mutex::default(),
            registry: r,
        }
    }

    /// Metrics for a scenario: its budgets in the buckets and exported.
    pub fn for_scenarios<'a>(scenarios: impl IntoIterator<Item = &'a Scenario>) -> Metrics {
        let scenarios: Vec<&Scenario> = scenarios.into_iter().collect();
        let limits = scenarios
            .iter()
            .flat_map(|s| s.budgets.values().flat_map(|b| b.limits()))
            .map(|(_, _, d)| d.0.as_secs_f64());
        let m = Metrics::new(limits);
        for s in scenarios {
            for (op, b) in &s.budgets {
                if let Some(r) = b.error_rate {
                    m.error_budget
                        .get_or_create(&vec![
                            ("scenario", s.name.clone()),
                            ("operation", op.clone()),
                        ])
                        .set(r);
                }
                for (label, _, d) in b.limits() {
                    m.budget
                        .get_or_create(&vec![
                            ("scenario", s.name.clone()),
                            ("operation", op.clone()),
                            ("budget", label.to_string()),
                        ])
                        .set(d.0.as_secs_f64());
                }
            }
        }
        m
    }

    /// The exposition, in Prometheus text format 0.0.4 (see [`prometheus_text`]).
    pub fn render(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry).expect("writing to a String");
        prometheus_text(&s)
    }

    /// One operation's finished interval.
    pub fn interval(&self, variant: &str, op: &str, slot: &OpSlot) {
        let l = |k: &'static str, v: &str| -> Labels {
            vec![
                ("variant", variant.to_string()),
                ("operation", op.to_string()),
                (k, v.to_string()),
            ]
        };
        let ok = slot.response.len();
        if ok > 0 {
            self.requests.get_or_create(&l("outcome", "ok")).inc_by(ok);
            let h = self.duration.get_or_create(&vec![
                ("variant", variant.to_string()),
                ("operation", op.to_string()),
            ]);
            for v in slot.response.iter_recorded() {
                // The lowest value of the HDR bucket: a request of exactly a
                // budget counts within it (the highest would put it over).
                let secs = slot.response.lowest_equivalent(v.value_iterated_to()) as f64 / 1e9;
                for _ in 0..v.count_at_value() {
                    h.observe(secs);
                }
            }
        }
        let failed = slot.error_count();
        // Created at zero too, so a rate over them exists from the start.
        self.requests
            .get_or_create(&l("outcome", "error"))
            .inc_by(failed);
        for (kind, n) in &slot.errors {
            self.errors
                .get_or_create(&l("kind", &kind.to_string()))
                .inc_by(*n);
        }
        self.late
            .get_or_create(&vec![
                ("variant", variant.to_string()),
                ("operation", op.to_string()),
            ])
            .inc_by(slot.late);
    }

    /// Mark `variant` as the one running (others 0), with its mode.
    pub fn variant_started(&self, variant: &str) {
        self.active.clear();
        self.active
            .get_or_create(&vec![("variant", variant.to_string())])
            .set(1);
    }

    /// The variant ended.
    pub fn variant_finished(&self, variant: &str) {
        self.active
            .get_or_create(&vec![("variant", variant.to_string())])
            .set(0);
    }

    /// The repository's counters, as of now, for `variant`'s repository.
    pub fn repo(&self, variant: &str, stats: &RepoStats, partitioned: bool) {
        let v = || vec![("variant", variant.to_string())];
        let with = |k: &'static str, x: &str| {
            let mut l = v();
            l.push((k, x.to_string()));
            l
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut bump = |c: &Family<Labels, Counter>, labels: Labels, now: u64| {
            let key = (variant.to_string(), format!("{labels:?}"));
            let before = last.insert(key, now).unwrap_or(0);
            c.get_or_create(&labels).inc_by(now.saturating_sub(before));
        };
        let r = &stats.routing;
        bump(&self.reads, with("target", "primary"), r.reads_primary);
        bump(&self.reads, with("target", "replica"), r.reads_replica);
        for (reason, n) in &r.fallbacks {
            bump(&self.fallbacks, with("reason", reason), *n);
        }
        bump(
            &self.replica_changes,
            with("change", "removed"),
            r.replica_removed,
        );
        bump(
            &self.replica_changes,
            with("change", "restored"),
            r.replica_restored,
        );
        self.replica_healthy
            .get_or_create(&v())
            .set(r.healthy_replicas as i64);
        for (name, lag) in &r.lag_bytes {
            if let Some(b) = lag {
                self.replica_lag
                    .get_or_create(&with("replica", name))
                    .set(*b);
            }
        }
        if let Some(c) = &stats.cache {
            bump(&self.cache, with("result", "hit"), c.hits);
            bump(&self.cache, with("result", "miss"), c.misses);
            bump(&self.cache_errors, v(), c.errors);
        }
        let f = &stats.finance;
        bump(
            &self.retries,
            with("reason", "serialization"),
            f.retried_serialization,
        );
        bump(
            &self.retries,
            with("reason", "deadlock"),
            f.retried_deadlock,
        );
        bump(&self.gave_up, v(), f.gave_up);
        self.flag.get_or_create(&v()).set(partitioned as i64);
    }

    /// The cutover step under way (the others set to 0).
    pub fn cutover_step(&self, step: &str) {
        self.cutover_step.clear();
        self.cutover_step
            .get_or_create(&vec![("step", step.to_string())])
            .set(1);
    }

    /// Backfill progress, 0 to 1, per table.
    pub fn backfill(&self, table: &str, ratio: f64) {
        self.backfill
            .get_or_create(&vec![("table", table.to_string())])
            .set(ratio);
    }

    /// A count of the drill's ledger (acknowledged, missing, differing, resurrected).
    pub fn ledger(&self, state: &str, n: u64) {
        self.ledger
            .get_or_create(&vec![("state", state.to_string())])
            .set(n as i64);
    }
}

/// OpenMetrics text (what `prometheus-client` writes) as Prometheus text
/// format 0.0.4: a counter family is named with its `_total` in HELP and
/// TYPE, and there is no `# EOF` or `# UNIT`. Prometheus reads either; `promtool
/// check metrics` (2.42) and many other scrapers read only the latter.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(r) => out.push_str(&r),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Where rehearse serves its metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsAddr {
    Off,
    At(SocketAddr),
}

impl MetricsAddr {
    /// Where a run serves its metrics unless told: the lab's rehearse port,
    /// which the lab's Prometheus scrapes; nowhere without a monitored lab.
    pub fn default_for(estate: &crate::estate::Estate) -> MetricsAddr {
        match estate.lab_metrics_port {
            Some(p) => MetricsAddr::At(([127, 0, 0, 1], p).into()),
            None => MetricsAddr::Off,
        }
    }
}

impl std::str::FromStr for MetricsAddr {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "off" || s == "none" {
            return Ok(MetricsAddr::Off);
        }
        s.parse().map(MetricsAddr::At).map_err(|e| {
            format!("{s:?} is not an address to listen on ({e}); give IP:PORT, e.g. 127.0.0.1:9464, or `off`")
        })
    }
}

/// Serving metrics: drop it to stop.
pub struct Served {
    pub metrics: Arc<Metrics>,
    pub addr: Option<SocketAddr>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Start serving `metrics` on `addr`. `explicit` says the user asked for
/// this address: then a port in use is an error; a default address in use
/// (another run going on this lab) only warns, and the run goes on without.
pub async fn serve(metrics: Metrics, addr: &MetricsAddr, explicit: bool) -> Result<Served> {
    let metrics = Arc::new(metrics);
    let MetricsAddr::At(addr) = addr else {
        return Ok(Served {
            metrics,
            addr: None,
            task: None,
        });
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if !explicit => {
            eprintln!(
                "note: not serving metrics on {addr} ({e}); another rehearse may be running on this lab. Pass --metrics-addr to choose another address"
            );
            return Ok(Served {
                metrics,
                addr: None,
                task: None,
            });
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "--metrics-addr {addr}: cannot listen there ({e})"
            )))
        }
    };
    let m = metrics.clone();
    let task = crate::http::serve_metrics(listener, move || {
        let m = m.clone();
        async move { m.render() }
    });
    Ok(Served {
        metrics,
        addr: Some(*addr),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::histogram::ErrorKind;

    fn slot(values_ms: &[u64], errors: u64) -> OpSlot {
        let mut s = OpSlot::new();
        for v in values_ms {
            s.response.record(v * 1_000_000).unwrap();
        }
        if errors > 0 {
            s.errors.push((ErrorKind::Timeout, errors));
        }
        s
    }

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn buckets_hold_every_budget_once_and_in_order() {
        let b = buckets([0.1, 0.075, 0.075, -1.0]);
        assert!(b.contains(&0.075));
        assert_eq!(b.iter().filter(|x| **x == 0.1).count(), 1);
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        assert!(!b.iter().any(|x| *x <= 0.0));
    }

    #[test]
    fn an_interval_counts_requests_errors_and_fills_the_histogram() {
        let m = Metrics::new([0.075]);
        m.interval("legacy", "add_entry", &slot(&[1, 2, 80, 200], 3));
        m.interval("legacy", "add_entry", &slot(&[50], 0));
        let t = m.render();
        let l = r#"{variant="legacy",operation="add_entry""#;
        assert_eq!(
            sample(&t, &format!("rehearse_requests_total{l},outcome=\"ok\"}}")),
            Some(5.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                &format!("rehearse_requests_total{l},outcome=\"error\"}}")
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &t,
                &format!("rehearse_request_errors_total{l},kind=\"timeout\"}}")
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &t,
                &format!(
                    "rehearse_request_duration_seconds_bucket{{le=\"0.001\",{}}}",
                    &l[1..]
                )
            ),
            Some(1.0),
            "{t}"
        );
        // 1, 2 and 50 ms are within the 75 ms budget's bucket; 80 and 200 are not.
        assert_eq!(
            sample(
                &t,
                &format!(
                    "rehearse_request_duration_seconds_bucket{{le=\"0.075\",{}}}",
                    &l[1..]
                )
            ),
            Some(3.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, &format!("rehearse_request_duration_seconds_count{l}}}")),
            Some(5.0)
        );
        assert!(
            t.contains("# TYPE rehearse_requests_total counter\n"),
            "{t}"
        );
        assert!(!t.contains("# EOF"));
    }

    #[test]
    fn repository_counters_move_by_the_difference_between_snapshots() {
        let m = Metrics::new([]);
        let mut s = RepoStats::default();
        s.routing.reads_replica = 10;
        m.repo("partitioned", &s, true);
        s.routing.reads_replica = 25;
        m.repo("partitioned", &s, true);
        let t = m.render();
        assert_eq!(
            sample(
                &t,
                r#"rehearse_repo_reads_total{variant="partitioned",target="replica"}"#
            ),
            Some(25.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, r#"rehearse_flag_partitioned{variant="partitioned"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn metrics_addr_parses_an_address_or_off() {
        assert_eq!("off".parse::<MetricsAddr>(), Ok(MetricsAddr::Off));
        assert!(matches!(
            "127.0.0.1:9464".parse::<MetricsAddr>(),
            Ok(MetricsAddr::At(_))
        ));
        let e = "localhost".parse::<MetricsAddr>().unwrap_err();
        assert!(e.contains("IP:PORT"), "{e}");
    }
}
