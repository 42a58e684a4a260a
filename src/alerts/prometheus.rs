//! What the drill asks the lab's Prometheus: the alerts active now, the
//! rules it loaded, whether it scrapes rehearse, and the drift metric's state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::error::{Error, Result};

/// Alerts as Prometheus lists them: (name, state, labels).
pub(super) type Active = Vec<(String, String, BTreeMap<String, String>)>;

pub(super) async fn prom_get(prom_addr: &str, path: &str) -> Result<serde_json::Value> {
    let (a, p) = (prom_addr.to_string(), path.to_string());
    let r = tokio::task::spawn_blocking(move || crate::http::get(&a, &p, Duration::from_secs(3)))
        .await
        .map_err(|e| Error::Lab(e.to_string()))??;
    if r.status != 200 {
        return Err(Error::Lab(format!(
            "Prometheus at {prom_addr} answered {} to {path}",
            r.status
        )));
    }
    serde_json::from_str(&r.body)
        .map_err(|e| Error::Lab(format!("Prometheus's answer to {path} is not JSON: {e}")))
}

/// The alerts Prometheus has active now.
pub async fn active_alerts(prom_addr: &str) -> Result<Active> {
    let v = prom_get(prom_addr, "/api/v1/alerts").await?;
    let list = v["data"]["alerts"]
        .as_array()
        .ok_or_else(|| Error::Lab("Prometheus's /api/v1/alerts has no data.alerts".into()))?;
    Ok(list
        .iter()
        .map(|a| {
            let labels: BTreeMap<String, String> = a["labels"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (
                labels.get("alertname").cloned().unwrap_or_default(),
                a["state"].as_str().unwrap_or("").to_string(),
                labels,
            )
        })
        .collect())
}

pub(super) fn firing(active: &Active) -> BTreeSet<String> {
    active
        .iter()
        .filter(|(_, s, _)| s == "firing")
        .map(|(n, _, _)| n.clone())
        .collect()
}

/// The alert rules Prometheus has loaded.
pub(super) async fn loaded_rules(prom_addr: &str) -> Result<BTreeSet<String>> {
    let v = prom_get(prom_addr, "/api/v1/rules").await?;
    Ok(v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r["type"] == "alerting")
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect())
}

/// Why summary drift cannot be judged here, if it cannot: the exporter's
/// query reports `checked` 0 on estates too large for it.
/// Whether the exporter computes summary drift on this estate.
pub(super) enum DriftCheck {
    /// It does: SummaryDrift can fire.
    Checked,
    /// The estate is too large for its query (2M summary rows or more):
    /// only reconcile sees drift, and ReconcileFoundDrift alone can fire.
    TooLarge,
    /// Prometheus has no series of it: why.
    Absent(String),
}

pub(super) async fn drift_check(prom_addr: &str) -> Result<DriftCheck> {
    let q = crate::http::encode("rehearse_summary_drift_checked{role=\"primary\"}");
    let v = prom_get(prom_addr, &format!("/api/v1/query?query={q}")).await?;
    let values: Vec<&str> = v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["value"][1].as_str())
        .collect();
    Ok(if values.is_empty() {
        DriftCheck::Absent("Prometheus has no rehearse_summary_drift_checked series: the primary's exporter does not run the drift query (restart it with this rehearse: `rehearse lab stop primary-exporter && rehearse lab start primary-exporter`)".into())
    } else if values.contains(&"0") {
        DriftCheck::TooLarge
    } else {
        DriftCheck::Checked
    })
}

/// Whether Prometheus scrapes rehearse's own target successfully.
pub(super) async fn rehearse_target_up(prom_addr: &str) -> Result<bool> {
    let v = prom_get(prom_addr, "/api/v1/targets").await?;
    Ok(v["data"]["activeTargets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .any(|t| t["labels"]["job"] == "rehearse" && t["health"] == "up")
        })
        .unwrap_or(false))
}
