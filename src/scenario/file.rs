//! A scenario file as read, before it is checked: the TOML tables with
//! the spans of their values, so that every error names its line and
//! column. [`super::check`] turns them into the checked model.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{Arrival, Budget, Dur, Operation, TierWeights};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PhaseFile {
    pub(super) name: Option<String>,
    pub(super) duration: Dur,
    pub(super) rate: Option<Spanned<f64>>,
    pub(super) ramp_to: Option<Spanned<f64>>,
    pub(super) arrival: Option<Arrival>,
    pub(super) max_in_flight: Option<Spanned<u32>>,
    pub(super) late_after: Option<Dur>,
    pub(super) users: Option<Spanned<u32>>,
    pub(super) think: Option<Dur>,
}

/// A `[[job]]`: a maintenance job run during each variant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobFile {
    pub(super) name: Spanned<String>,
    pub(super) start: Option<Dur>,
    pub(super) every: Option<Spanned<Dur>>,
    pub(super) budget: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MixFile {
    pub(super) operation: Operation,
    pub(super) weight: Spanned<f64>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) days: Option<Spanned<u32>>,
    pub(super) limit: Option<Spanned<u32>>,
    pub(super) top: Option<Spanned<u32>>,
    pub(super) entries: Option<Spanned<u32>>,
    pub(super) sql: Option<Spanned<String>>,
    pub(super) params: Option<Spanned<Vec<String>>>,
    pub(super) via: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub(super) enum DistributionName {
    Uniform,
    Zipf,
    Tiers,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantsFile {
    pub(super) distribution: Spanned<DistributionName>,
    pub(super) exponent: Option<Spanned<f64>>,
    pub(super) tiers: Option<Spanned<TierWeights>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VariantFile {
    pub(super) name: Spanned<String>,
    pub(super) mode: Spanned<String>,
    pub(super) reads: Option<Spanned<String>>,
    pub(super) cache: Option<bool>,
    pub(super) pool: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetFile {
    pub(crate) p50: Option<Dur>,
    pub(crate) p95: Option<Dur>,
    pub(crate) p99: Option<Dur>,
    #[serde(rename = "p99.9", alias = "p999")]
    pub(crate) p999: Option<Dur>,
    pub(crate) max: Option<Dur>,
    pub(crate) error_rate: Option<Spanned<f64>>,
}

impl BudgetFile {
    /// The budget of `op` as written (its table at `span`), or the error and
    /// where: an error rate outside 0..1, or a budget that sets nothing.
    pub(crate) fn budget(
        &self,
        op: &str,
        span: std::ops::Range<usize>,
    ) -> std::result::Result<Budget, (std::ops::Range<usize>, String)> {
        let error_rate = match &self.error_rate {
            Some(r) if !(0.0..=1.0).contains(r.get_ref()) => {
                return Err((
                    r.span(),
                    format!("error_rate is a fraction in 0..1, not {}", r.get_ref()),
                ))
            }
            r => r.as_ref().map(|r| *r.get_ref()),
        };
        let budget = Budget {
            p50: self.p50,
            p95: self.p95,
            p99: self.p99,
            p999: self.p999,
            max: self.max,
            error_rate,
        };
        if budget.limits().is_empty() && budget.error_rate.is_none() {
            return Err((
                span,
                format!("the budget of {op:?} sets nothing: give any of p50, p95, p99, p99.9, max, error_rate"),
            ));
        }
        Ok(budget)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ValidityFile {
    pub(super) min_rate: Option<Spanned<f64>>,
    pub(super) max_driver_lag: Option<Dur>,
    pub(super) confidence: Option<Spanned<f64>>,
}

/// A scenario file as read: its top level, and its arrays and budgets
/// read one entry at a time (see [`check`]).
pub(super) struct ScenarioFile {
    pub(super) head: HeadFile,
    pub(super) jobs: Vec<Spanned<JobFile>>,
    pub(super) phases: Spanned<Vec<Spanned<PhaseFile>>>,
    pub(super) mix: Spanned<Vec<Spanned<MixFile>>>,
    pub(super) variants: Vec<Spanned<VariantFile>>,
    pub(super) budgets: BTreeMap<Spanned<String>, Spanned<BudgetFile>>,
}

/// The top level of a scenario file without its arrays and budgets, which
/// are read one entry at a time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeadFile {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) seed: Option<u64>,
    pub(super) warmup: Option<Dur>,
    pub(super) interval: Option<Spanned<Dur>>,
    pub(super) timeout: Option<Dur>,
    pub(super) inject_delay: Option<Dur>,
    pub(super) early_release: Option<Spanned<Dur>>,
    pub(super) tenants: Option<TenantsFile>,
    pub(super) validity: Option<ValidityFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BudgetsFile {
    pub(super) budgets: BTreeMap<String, BudgetFile>,
}
