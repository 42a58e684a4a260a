//! `rehearse query`: run one repository operation for an organization and
//! show its result, how it was served and, on request, its plan.

use serde::Serialize;

use crate::day::Day;
use crate::error::{Error, Result};
use crate::estate::Estate;
use crate::repo::explain::Explained;
use crate::repo::reporting::{Cursor, Query, ReadOptions, Report, ReportData};
use crate::repo::{Pooling, Repo, RepoConfig, RepoStats, Via};
use crate::schema::Mode;
use crate::{db, seed};

/// The operations `rehearse query` runs.
pub const OPERATIONS: [&str; 5] = ["dashboard", "pnl", "properties", "ledger", "portfolio"];

/// What `rehearse query` was asked; dates left out take their defaults
/// from `as_of` (itself the seeded end date, else today).
#[derive(Debug, Clone)]
pub struct QueryOptions {
    pub operation: String,
    pub org: Option<i64>,
    pub as_of: Option<Day>,
    pub days: u32,
    pub month: Option<Day>,
    pub from: Option<Day>,
    pub to: Option<Day>,
    pub limit: u32,
    pub after: Option<Cursor>,
    pub top: u32,
    pub mode: Option<Mode>,
    pub via: Via,
    pub pooling: Pooling,
    pub cache: bool,
    pub explain: bool,
}

/// What `rehearse query` found.
#[derive(Debug, Clone, Serialize)]
pub struct QueryOutcome {
    pub query: Query,
    #[serde(flatten)]
    pub report: Report<ReportData>,
    pub explain: Option<Explained>,
    pub stats: RepoStats,
    /// The organization's rollout cohort: which side its calls use and why.
    pub cohort: Option<Cohort>,
}

/// An organization's rollout cohort.
#[derive(Debug, Clone, Serialize)]
pub struct Cohort {
    pub organization_id: i64,
    pub mode: Mode,
    pub reason: String,
}

/// The cohort of `org` under a snapshot of the flag and its rollout.
pub fn cohort(flag: &crate::repo::routing::FlagState, org: i64, forced: bool) -> Cohort {
    let mode = flag.mode_for(Some(org));
    let reason = if forced {
        "fixed by --mode".to_string()
    } else if flag.enabled {
        format!("{}=true: every organization", crate::repo::routing::FLAG)
    } else {
        match &flag.rollout {
            Some(r) => format!("rollout at {}: {}", r.percent(), r.reason(org)),
            None => "no rollout recorded".to_string(),
        }
    };
    Cohort {
        organization_id: org,
        mode,
        reason,
    }
}

/// Parse `YYYY-MM` (or a full date) as the first day of that month.
pub fn parse_month(s: &str) -> Result<Day> {
    let full = if s.len() == 7 {
        format!("{s}-01")
    } else {
        s.to_string()
    };
    full.parse::<Day>()
        .map(|d| d.month_bounds().0)
        .map_err(|e| Error::Usage(format!("--month {s:?}: expected YYYY-MM ({e})")))
}

pub fn today() -> Day {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days since 1970-01-01, moved to PostgreSQL's 2000-01-01 epoch.
    Day((secs / 86_400) as i32 - 10_957)
}

impl QueryOptions {
    /// The query these options describe, with `as_of` for missing dates.
    pub fn to_query(&self, as_of: Day) -> Result<Query> {
        let need_org = || {
            self.org.ok_or_else(|| {
                Error::Usage(format!(
                    "`query {}` needs --org ID (only portfolio spans all organizations)",
                    self.operation
                ))
            })
        };
        let to = self.to.unwrap_or(as_of);
        let from = self
            .from
            .unwrap_or_else(|| to.plus(1 - self.days.max(1) as i32));
        Ok(match self.operation.as_str() {
            "dashboard" => Query::Dashboard {
                org: need_org()?,
                end: to,
                days: self.days,
            },
            "pnl" => Query::Pnl {
                org: need_org()?,
                month: self.month.unwrap_or(to).month_bounds().0,
            },
            "properties" => Query::Properties {
                org: need_org()?,
                from,
                to,
            },
            "ledger" => Query::Ledger {
                org: need_org()?,
                from,
                to,
                after: self.after.clone(),
                limit: self.limit,
            },
            "portfolio" => Query::Portfolio {
                from,
                to,
                top: self.top,
            },
            other => {
                return Err(Error::Usage(format!(
                    "unknown operation {other:?}; one of {}",
                    OPERATIONS.join(", ")
                )))
            }
        })
    }
}

/// Run `rehearse query`.
pub async fn query(estate: &Estate, opts: &QueryOptions) -> Result<QueryOutcome> {
    let as_of = match opts.as_of {
        Some(d) => d,
        None => {
            let client = db::connect(&estate.primary.url).await?;
            seed::read_record(&client)
                .await?
                .map(|r| r.params.end_date)
                .unwrap_or_else(today)
        }
    };
    let q = opts.to_query(as_of)?;
    let mut cfg = RepoConfig::from_estate(estate, opts.pooling)?;
    cfg.mode_override = opts.mode;
    cfg.pool_size = 2;
    if !opts.cache {
        cfg.redis_url = None;
    }
    let repo = Repo::connect(cfg).await?;
    if let Some(org) = q.org() {
        if !repo.reporting().organization_exists(org).await? {
            return Err(Error::NotFound(format!(
                "organization {org} does not exist in {}",
                estate.primary.redacted()
            )));
        }
    }
    let read = ReadOptions {
        via: opts.via,
        cache: opts.cache,
        min_lsn: None,
    };
    let cohort = match q.org() {
        Some(org) => Some(cohort(&*repo.flag().await, org, opts.mode.is_some())),
        None => None,
    };
    let report = repo.reporting().run(&q, &read).await?;
    let explain = if opts.explain {
        Some(repo.reporting().explain(&q, opts.via).await?)
    } else {
        None
    };
    Ok(QueryOutcome {
        query: q,
        report,
        explain,
        stats: repo.stats(),
        cohort,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(op: &str) -> QueryOptions {
        QueryOptions {
            operation: op.into(),
            org: Some(7),
            as_of: None,
            days: 30,
            month: None,
            from: None,
            to: None,
            limit: 50,
            after: None,
            top: 10,
            mode: None,
            via: Via::Auto,
            pooling: Pooling::Direct,
            cache: true,
            explain: false,
        }
    }

    #[test]
    fn dates_default_from_the_as_of_day() {
        let d = Day::from_ymd(2026, 10, 31);
        assert_eq!(
            opts("properties").to_query(d).unwrap(),
            Query::Properties {
                org: 7,
                from: Day::from_ymd(2026, 10, 2),
                to: d
            }
        );
        assert_eq!(
            opts("pnl").to_query(d).unwrap(),
            Query::Pnl {
                org: 7,
                month: Day::from_ymd(2026, 10, 1)
            }
        );
        assert_eq!(parse_month("2026-02").unwrap(), Day::from_ymd(2026, 2, 1));
        assert!(parse_month("2026-13").is_err());
    }

    #[test]
    fn organization_reports_need_an_org_and_unknown_operations_are_named() {
        let mut o = opts("dashboard");
        o.org = None;
        let e = o.to_query(today()).unwrap_err().to_string();
        assert!(e.contains("--org"), "{e}");
        o.operation = "portfolio".into();
        assert!(o.to_query(today()).is_ok());
        o.operation = "balance".into();
        let e = o.to_query(today()).unwrap_err().to_string();
        assert!(e.contains("balance") && e.contains("dashboard"), "{e}");
    }
}
