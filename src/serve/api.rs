//! The routes of `rehearse serve` and what each calls in the repository.

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::{App, Reply};
use crate::day::Day;
use crate::error::{Error, Result};
use crate::query::{parse_month, QueryOptions};
use crate::repo::finance::{Adjustment, EntryKind, NewEntry};
use crate::repo::reporting::{Cursor, ReadOptions};
use crate::repo::{Pooling, Via};

/// Every route, as documented in `--help` and docs/src/journeys.md.
pub fn routes() -> Vec<&'static str> {
    vec![
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /estate",
        "GET /orgs/{id}/dashboard?days=&end=",
        "GET /orgs/{id}/pnl?month=YYYY-MM",
        "GET /orgs/{id}/properties?from=&to=&days=",
        "GET /orgs/{id}/ledger?from=&to=&days=&after=&limit=",
        "GET /portfolio?from=&to=&days=&top=",
        "POST /orgs/{id}/entries",
        "POST /orgs/{id}/batches",
        "PATCH /entries/{kind}/{id}?org=",
        "DELETE /entries/{kind}/{id}?org=",
    ]
}

/// A request's route, with the ids in its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Metrics,
    Estate,
    Portfolio,
    /// A report of one organization: dashboard, pnl, properties or ledger.
    Report(i64, &'static str),
    Entries(i64),
    Batches(i64),
    Entry(EntryKind, i64),
    /// A path of the API's shape with an id that is not one: 400, not 404.
    BadId(&'static str, String),
}

impl Route {
    pub fn parse(path: &str) -> Option<Route> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let id = |s: &str, t: &'static str| match s.parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Route::BadId(t, s.to_string())),
        };
        let flat = |r: std::result::Result<Route, Route>| r.unwrap_or_else(|e| e);
        Some(match parts.as_slice() {
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["estate"] => Route::Estate,
            ["portfolio"] => Route::Portfolio,
            ["orgs", o, r] => {
                let report = match *r {
                    "dashboard" => Some("dashboard"),
                    "pnl" => Some("pnl"),
                    "properties" => Some("properties"),
                    "ledger" => Some("ledger"),
                    _ => None,
                };
                let t = match *r {
                    "entries" => "/orgs/{id}/entries",
                    "batches" => "/orgs/{id}/batches",
                    "dashboard" => "/orgs/{id}/dashboard",
                    "pnl" => "/orgs/{id}/pnl",
                    "properties" => "/orgs/{id}/properties",
                    "ledger" => "/orgs/{id}/ledger",
                    _ => return None,
                };
                flat(id(o, t).map(|o| match (report, *r) {
                    (Some(rep), _) => Route::Report(o, rep),
                    (None, "entries") => Route::Entries(o),
                    _ => Route::Batches(o),
                }))
            }
            ["entries", k, i] => {
                let kind = match *k {
                    "revenue" => EntryKind::Revenue,
                    "expense" => EntryKind::Expense,
                    _ => {
                        return Some(Route::BadId(
                            "/entries/{kind}/{id}",
                            format!("{k} (a kind is revenue or expense)"),
                        ))
                    }
                };
                flat(id(i, "/entries/{kind}/{id}").map(|i| Route::Entry(kind, i)))
            }
            _ => return None,
        })
    }

    /// The route as a template, for metrics and messages.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Estate => "/estate",
            Route::Portfolio => "/portfolio",
            Route::Report(_, "dashboard") => "/orgs/{id}/dashboard",
            Route::Report(_, "pnl") => "/orgs/{id}/pnl",
            Route::Report(_, "properties") => "/orgs/{id}/properties",
            Route::Report(..) => "/orgs/{id}/ledger",
            Route::Entries(_) => "/orgs/{id}/entries",
            Route::Batches(_) => "/orgs/{id}/batches",
            Route::Entry(..) => "/entries/{kind}/{id}",
            Route::BadId(t, _) => t,
        }
    }

    /// None when `m` is allowed here, else the methods that are.
    pub fn allows(&self, m: &Method) -> Option<&'static str> {
        let (ok, allowed) = match self {
            Route::Entries(_) | Route::Batches(_) => (m == Method::POST, "POST"),
            Route::Entry(..) => (m == Method::PATCH || m == Method::DELETE, "PATCH, DELETE"),
            Route::BadId(..) => (true, ""),
            _ => (m == Method::GET || m == Method::HEAD, "GET"),
        };
        (!ok).then_some(allowed)
    }
}

/// A query string's parameters, decoded; each one a route does not take is an error.
#[derive(Debug)]
pub(crate) struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    pub(crate) fn parse(query: &str, allowed: &[&str]) -> Result<Params> {
        let mut values = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if !allowed.contains(&k.as_str()) {
                return Err(Error::Usage(format!(
                    "unknown parameter {k:?}; this route takes {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
            if values.insert(k.clone(), v).is_some() {
                return Err(Error::Usage(format!("parameter {k:?} is given twice")));
            }
        }
        Ok(Params { values })
    }

    fn get<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.values
            .get(k)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| Error::Usage(format!("parameter {k}={v:?}: {e}")))
            })
            .transpose()
    }
}

/// Percent-decoding of a query string part (`+` is a space).
fn decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Error::Usage(format!("bad percent-encoding in the query: {s:?}"))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::Usage(format!("the query part {s:?} is not UTF-8")))
}

/// An entry as a client posts it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    kind: String,
    property_id: i64,
    /// The seeded dataset's last day when left out.
    business_date: Option<Day>,
    category: String,
    amount_cents: i64,
    vendor: Option<String>,
    description: Option<String>,
}

impl EntryBody {
    fn entry(self, today: Day) -> Result<NewEntry> {
        let kind = match self.kind.as_str() {
            "revenue" => EntryKind::Revenue,
            "expense" => EntryKind::Expense,
            k => {
                return Err(Error::Usage(format!(
                    "kind {k:?}: an entry is revenue or expense"
                )))
            }
        };
        Ok(NewEntry {
            kind,
            property_id: self.property_id,
            business_date: self.business_date.unwrap_or(today),
            category: self.category,
            amount_cents: self.amount_cents,
            vendor: self.vendor,
            description: self.description,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    entries: Vec<EntryBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustBody {
    amount_cents: Option<i64>,
    category: Option<String>,
    business_date: Option<Day>,
    property_id: Option<i64>,
}

/// A JSON body read into `T`, or a 400 naming the line and column.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Usage(format!("the JSON body: {e}")))
}

/// The organization a change of an entry names (`?org=ID`).
fn org_param(p: &Params) -> Result<i64> {
    p.get::<i64>("org")?.ok_or_else(|| {
        Error::Usage(
            "give the entry's organization as ?org=ID: entries are partitioned by organization"
                .into(),
        )
    })
}

/// Run the call a route names.
pub(crate) async fn call(
    app: &App,
    route: &Route,
    method: &Method,
    query: &str,
    bytes: &[u8],
) -> Result<Reply> {
    match route {
        Route::BadId(t, what) => Err(Error::Usage(format!("{t}: {what:?} is not an id"))),
        Route::Healthz => Ok(Reply::text(StatusCode::OK, "ok\n".into(), "text/plain")),
        Route::Readyz => Ok(match app.repo.primary_answers().await {
            Ok(()) => Reply::json(
                StatusCode::OK,
                &serde_json::json!({"ready": true, "primary": "answers"}),
            ),
            Err(e) => Reply::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"ready": false, "primary": e.to_string()}),
            ),
        }),
        Route::Metrics => Ok(Reply::text(
            StatusCode::OK,
            app.render_metrics().await,
            "text/plain; version=0.0.4",
        )),
        Route::Estate => {
            Params::parse(query, &[])?;
            let flag = app.repo.flag().await;
            let stats = app.repo.stats();
            Ok(Reply::json(
                StatusCode::OK,
                &serde_json::json!({
                    "organizations": app.organizations,
                    "as_of": app.as_of,
                    "mode": flag.global(),
                    "rollout_basis_points": flag.rollout.as_ref().map(|r| r.basis_points),
                    "pool": match app.pool { Pooling::Direct => "direct", Pooling::PgBouncer => "pgbouncer" },
                    "cache": app.cache,
                    "healthy_replicas": stats.routing.healthy_replicas,
                }),
            ))
        }
        Route::Portfolio | Route::Report(..) => {
            let (op, org) = match route {
                Route::Report(org, op) => (*op, Some(*org)),
                _ => ("portfolio", None),
            };
            let allowed: &[&str] = match op {
                "dashboard" => &["days", "end", "min_lsn"],
                "pnl" => &["month", "min_lsn"],
                "properties" => &["from", "to", "days", "min_lsn"],
                "ledger" => &["from", "to", "days", "after", "limit", "min_lsn"],
                _ => &["from", "to", "days", "top"],
            };
            let p = Params::parse(query, allowed)?;
            let opts = QueryOptions {
                operation: op.to_string(),
                org,
                as_of: Some(app.as_of),
                days: p.get("days")?.unwrap_or(30),
                month: p
                    .values
                    .get("month")
                    .map(|m| {
                        parse_month(m).map_err(|_| {
                            Error::Usage(format!("parameter month={m:?}: expected YYYY-MM"))
                        })
                    })
                    .transpose()?,
                from: p.get("from")?,
                to: p.get("to")?.or(p.get("end")?),
                limit: p.get("limit")?.unwrap_or(50),
                after: p.get::<Cursor>("after")?,
                top: p.get("top")?.unwrap_or(10),
                mode: None,
                via: Via::Auto,
                pooling: app.pool,
                cache: app.cache,
                explain: false,
            };
            let q = opts.to_query(app.as_of)?;
            if let Some(org) = org {
                app.check_org(org).await?;
            }
            let read = ReadOptions {
                via: Via::Auto,
                cache: app.cache,
                min_lsn: p.get("min_lsn")?,
            };
            let report = app.repo.reporting().run(&q, &read).await?;
            let mut v = serde_json::to_value(&report).expect("reports serialize");
            v["query"] = serde_json::to_value(&q).expect("queries serialize");
            if let crate::repo::reporting::ReportData::Ledger(page) = &report.data {
                v["next_after"] = serde_json::json!(page.next.as_ref().map(|c| c.to_string()));
            }
            Ok(Reply::json(StatusCode::OK, &v))
        }
        Route::Entries(org) => {
            Params::parse(query, &[])?;
            let e = body::<EntryBody>(bytes)?.entry(app.as_of)?;
            app.check_org(*org).await?;
            let w = app.repo.finance().record(*org, &e).await?;
            Ok(Reply::json(StatusCode::CREATED, &w))
        }
        Route::Batches(org) => {
            Params::parse(query, &[])?;
            let b = body::<BatchBody>(bytes)?;
            let entries = b
                .entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    e.entry(app.as_of)
                        .map_err(|err| Error::Usage(format!("entry {}: {err}", i + 1)))
                })
                .collect::<Result<Vec<_>>>()?;
            app.check_org(*org).await?;
            let w = app.repo.finance().post_batch(*org, &entries).await?;
            Ok(Reply::json(StatusCode::CREATED, &w))
        }
        Route::Entry(kind, id) => {
            let p = Params::parse(query, &["org"])?;
            let org = org_param(&p)?;
            app.check_org(org).await?;
            let w = if method == Method::DELETE {
                app.repo.finance().void(org, *kind, *id).await?
            } else {
                let a = body::<AdjustBody>(bytes)?;
                let adj = Adjustment {
                    amount_cents: a.amount_cents,
                    category: a.category,
                    business_date: a.business_date,
                    property_id: a.property_id,
                };
                if adj == Adjustment::default() {
                    return Err(Error::Usage(
                        "the body changes nothing: give any of amount_cents, category, business_date, property_id".into(),
                    ));
                }
                app.repo.finance().adjust(org, *kind, *id, &adj).await?
            };
            Ok(Reply::json(StatusCode::OK, &w))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_with_their_ids_and_methods() {
        assert_eq!(
            Route::parse("/orgs/42/dashboard"),
            Some(Route::Report(42, "dashboard"))
        );
        assert_eq!(Route::parse("/orgs/42/entries/"), Some(Route::Entries(42)));
        assert_eq!(
            Route::parse("/entries/expense/7"),
            Some(Route::Entry(EntryKind::Expense, 7))
        );
        assert!(matches!(
            Route::parse("/orgs/x/pnl"),
            Some(Route::BadId("/orgs/{id}/pnl", _))
        ));
        assert!(matches!(
            Route::parse("/entries/refund/7"),
            Some(Route::BadId(..))
        ));
        assert_eq!(Route::parse("/orgs/1/balance"), None);
        assert_eq!(Route::parse("/"), None);
        assert_eq!(Route::Entries(1).allows(&Method::GET), Some("POST"));
        assert_eq!(
            Route::Entry(EntryKind::Revenue, 1).allows(&Method::DELETE),
            None
        );
        assert_eq!(Route::Report(1, "pnl").allows(&Method::POST), Some("GET"));
    }

    #[test]
    fn query_parameters_are_decoded_and_unknown_ones_named() {
        let p = Params::parse("after=2026-10-20.revenue.42&limit=5", &["after", "limit"]).unwrap();
        assert_eq!(p.get::<u32>("limit").unwrap(), Some(5));
        assert_eq!(
            p.get::<Cursor>("after").unwrap().unwrap().to_string(),
            "2026-10-20.revenue.42"
        );
        assert_eq!(decode("a%20b+c").unwrap(), "a b c");
        let e = Params::parse("limt=5", &["after", "limit"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"limt\"") && e.contains("after, limit"), "{e}");
        let e = Params::parse("limit=x", &["limit"])
            .unwrap()
            .get::<u32>("limit")
            .unwrap_err();
        assert!(e.to_string().contains("limit=\"x\""), "{e}");
        assert!(Params::parse("limit=1&limit=2", &["limit"]).is_err());
        assert!(decode("%zz").is_err());
    }

    #[test]
    fn failures_map_to_statuses() {
        assert_eq!(
            super::super::status_of(&Error::Usage("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            super::super::status_of(&Error::NotFound("x".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            super::super::status_of(&Error::Lab("no connection".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
