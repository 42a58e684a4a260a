//! One journey step's HTTP call, as a Goose transaction: the request a
//! step makes, its body, and its timing recorded into rehearse's histograms.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goose::prelude::{GooseMethod, GooseRequest, GooseUser, TransactionError, TransactionResult};
use hdrhistogram::Histogram;

use super::file::Step;
use crate::day::Day;
use crate::generate::rng::{mix, SplitMix};
use crate::repo::finance::EntryKind;
use crate::run::histogram::histogram;

/// Timings and errors of one variant, by transaction and interval.
pub(super) struct Recorder {
    pub(super) start: Instant,
    pub(super) interval: f64,
    pub(super) hist: BTreeMap<(usize, u64), Histogram<u64>>,
    pub(super) errors: BTreeMap<(usize, String), u64>,
    pub(super) interval_errors: BTreeMap<(usize, u64), u64>,
}

impl Recorder {
    pub(super) fn new(interval: Duration) -> Recorder {
        Recorder {
            start: Instant::now(),
            interval: interval.as_secs_f64(),
            hist: BTreeMap::new(),
            errors: BTreeMap::new(),
            interval_errors: BTreeMap::new(),
        }
    }

    pub(super) fn idx(&self) -> u64 {
        (self.start.elapsed().as_secs_f64() / self.interval) as u64
    }

    pub(super) fn ok(&mut self, txn: usize, took: Duration) {
        let i = self.idx();
        let ns = (took.as_nanos() as u64).clamp(1, crate::run::histogram::HIGHEST_NS);
        let _ = self
            .hist
            .entry((txn, i))
            .or_insert_with(histogram)
            .record(ns);
    }

    pub(super) fn error(&mut self, txn: usize, kind: &str) {
        let i = self.idx();
        *self.errors.entry((txn, kind.to_string())).or_default() += 1;
        *self.interval_errors.entry((txn, i)).or_default() += 1;
    }
}

/// What every transaction of a variant shares.
pub(super) struct Shared {
    pub(super) recorder: Mutex<Recorder>,
    pub(super) organizations: u64,
    pub(super) as_of: Day,
    pub(super) seed: u64,
}

/// One transaction: a step (and page) of a persona.
pub(super) struct StepCall {
    pub(super) shared: Arc<Shared>,
    /// Index of `persona.step` among the file's transactions.
    pub(super) txn: usize,
    pub(super) name: String,
    pub(super) step: Step,
    pub(super) page: u32,
    /// The first call of a pass: a new organization.
    pub(super) first: bool,
}

/// A user's state between its calls.
#[derive(Clone)]
pub(super) struct Session {
    pub(super) rng: SplitMix,
    pub(super) org: i64,
    pub(super) properties: Vec<i64>,
    pub(super) written: Vec<(EntryKind, i64)>,
    pub(super) after: Option<String>,
    pub(super) lsn: Option<u64>,
}

pub(super) const VENDORS: [&str; 4] = [
    "Metro Supplies",
    "Harbor Linen",
    "Summit Foods",
    "City Utilities",
];

pub(super) fn entry_json(s: &mut Session, kind: EntryKind) -> serde_json::Value {
    let property = s.properties[(s.rng.next_u64() % s.properties.len() as u64) as usize];
    let cats = kind.categories();
    let category = cats[(s.rng.next_u64() % cats.len() as u64) as usize];
    let amount = 1_000 + (s.rng.next_u64() % 200_000) as i64;
    let mut v = serde_json::json!({
        "kind": kind.name(),
        "property_id": property,
        "category": category,
        "amount_cents": amount,
        "description": "rehearse journeys",
    });
    if kind == EntryKind::Expense {
        v["vendor"] = VENDORS[(s.rng.next_u64() % VENDORS.len() as u64) as usize].into();
    }
    v
}

/// The month `back` months before the one holding `d`, as YYYY-MM.
pub(super) fn month_before(d: Day, back: u32) -> String {
    let mut first = d.month_bounds().0;
    for _ in 0..back {
        first = first.plus(-1).month_bounds().0;
    }
    first.to_string()[..7].to_string()
}

/// A failed call: counted by kind here, and as a failure by Goose.
pub(super) fn failed(c: &StepCall, kind: &str, why: String) -> TransactionResult {
    c.shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .error(c.txn, kind);
    Err(Box::new(TransactionError::Custom(format!(
        "{}: {why}",
        c.name
    ))))
}

pub(super) async fn call(user: &mut GooseUser, c: Arc<StepCall>) -> TransactionResult {
    if c.first || user.get_session_data::<Session>().is_none() {
        let seed = mix(c.shared.seed, user.weighted_users_index as u64);
        let mut rng = user
            .get_session_data::<Session>()
            .map_or(SplitMix(seed), |s| s.rng.clone());
        let org = 1 + (rng.next_u64() % c.shared.organizations.max(1)) as i64;
        user.set_session_data(Session {
            rng,
            org,
            properties: Vec::new(),
            written: Vec::new(),
            after: None,
            lsn: None,
        });
    }
    let s = user
        .get_session_data_mut::<Session>()
        .expect("the session was set above");
    let org = s.org;
    let lsn = s.lsn.map_or(String::new(), |l| format!("&min_lsn={l}"));
    let st = &c.step;
    let (method, path, body, expect): (GooseMethod, String, Option<serde_json::Value>, u16) =
        match st.call.as_str() {
            "dashboard" => (
                GooseMethod::Get,
                format!("/orgs/{org}/dashboard?days={}{lsn}", st.days),
                None,
                200,
            ),
            "pnl" => (
                GooseMethod::Get,
                format!(
                    "/orgs/{org}/pnl?month={}{lsn}",
                    month_before(c.shared.as_of, st.month_back)
                ),
                None,
                200,
            ),
            "properties" => (
                GooseMethod::Get,
                format!("/orgs/{org}/properties?days={}{lsn}", st.days),
                None,
                200,
            ),
            "ledger" => {
                // A page after the first follows the last page's cursor; past
                // the last page, the walk starts again from the first.
                let after = match (&s.after, c.page) {
                    (Some(a), p) if p > 0 => format!("&after={a}"),
                    _ => String::new(),
                };
                (
                    GooseMethod::Get,
                    format!(
                        "/orgs/{org}/ledger?days={}&limit={}{after}{lsn}",
                        st.days, st.limit
                    ),
                    None,
                    200,
                )
            }
            "portfolio" => (
                GooseMethod::Get,
                format!("/portfolio?days={}&top={}", st.days, st.top),
                None,
                200,
            ),
            "record_revenue" | "record_expense" | "post_batch" if s.properties.is_empty() => {
                return failed(
                    &c,
                    "no_property",
                    format!("organization {org} showed no property with entries to write to"),
                );
            }
            "record_revenue" | "record_expense" => {
                let kind = if st.call == "record_revenue" {
                    EntryKind::Revenue
                } else {
                    EntryKind::Expense
                };
                (
                    GooseMethod::Post,
                    format!("/orgs/{org}/entries"),
                    Some(entry_json(s, kind)),
                    201,
                )
            }
            "post_batch" => {
                let entries: Vec<serde_json::Value> = (0..st.entries)
                    .map(|i| {
                        let kind = if i % 3 == 2 {
                            EntryKind::Expense
                        } else {
                            EntryKind::Revenue
                        };
                        entry_json(s, kind)
                    })
                    .collect();
                (
                    GooseMethod::Post,
                    format!("/orgs/{org}/batches"),
                    Some(serde_json::json!({ "entries": entries })),
                    201,
                )
            }
            "adjust" | "void" if s.written.is_empty() => {
                return failed(
                    &c,
                    "nothing_written",
                    "no entry of this pass is left to change".into(),
                );
            }
            "adjust" => {
                let (kind, id) = s.written[0];
                let amount = 1_000 + (s.rng.next_u64() % 200_000) as i64;
                (
                    GooseMethod::Patch,
                    format!("/entries/{}/{id}?org={org}", kind.name()),
                    Some(serde_json::json!({ "amount_cents": amount })),
                    200,
                )
            }
            _ => {
                let (kind, id) = s.written.pop().expect("checked above");
                (
                    GooseMethod::Delete,
                    format!("/entries/{}/{id}?org={org}", kind.name()),
                    None,
                    200,
                )
            }
        };
    let mut rb = user.get_request_builder(&method, &path)?;
    if let Some(b) = &body {
        rb = rb.json(b);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path.as_str())
        .name(c.name.as_str())
        .expect_status_code(expect)
        .set_request_builder(rb)
        .build();
    let sent = Instant::now();
    let mut g = user.request(request).await?;
    let (status, text) = match g.response {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await)
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            let _ = user.set_failure(&format!("{}: {e}", c.name), &mut g.request, None, None);
            return failed(&c, kind, e.to_string());
        }
    };
    let took = sent.elapsed();
    let text = match text {
        Ok(t) if status == expect => t,
        Ok(t) => {
            let _ = user.set_failure(
                &format!("{}: status {status}", c.name),
                &mut g.request,
                None,
                Some(&t),
            );
            return failed(
                &c,
                &format!("http_{status}"),
                format!("status {status}: {t}"),
            );
        }
        Err(e) => {
            let _ = user.set_failure(&format!("{}: {e}", c.name), &mut g.request, None, None);
            return failed(&c, "transport", e.to_string());
        }
    };
    c.shared
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .ok(c.txn, took);
    // What the answer tells the rest of the pass.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let s = user
        .get_session_data_mut::<Session>()
        .expect("the session was set above");
    match st.call.as_str() {
        "properties" => {
            s.properties = v["data"]["properties"]
                .as_array()
                .map(|a| a.iter().filter_map(|p| p["property_id"].as_i64()).collect())
                .unwrap_or_default();
        }
        "ledger" => s.after = v["next_after"].as_str().map(str::to_string),
        "record_revenue" | "record_expense" | "adjust" | "void" => {
            if let (Some(k), Some(id)) = (v["kind"].as_str(), v["id"].as_i64()) {
                if st.call.starts_with("record") {
                    let kind = if k == "revenue" {
                        EntryKind::Revenue
                    } else {
                        EntryKind::Expense
                    };
                    s.written.push((kind, id));
                }
            }
            s.lsn = v["lsn"].as_u64().or(s.lsn);
        }
        "post_batch" => {
            if let Some(ids) = v["ids"].as_array() {
                for pair in ids {
                    let kind = match pair[0].as_str() {
                        Some("revenue") => EntryKind::Revenue,
                        _ => EntryKind::Expense,
                    };
                    if let Some(id) = pair[1].as_i64() {
                        s.written.push((kind, id));
                    }
                }
            }
            s.lsn = v["lsn"].as_u64().or(s.lsn);
        }
        _ => {}
    }
    Ok(())
}
