//! `EXPLAIN ANALYZE` of a reporting query as the repository would run it,
//! and how many partitions of each table the execution touched.

use std::collections::BTreeSet;

use serde::Serialize;
use tokio_postgres::types::Type;

use super::conn::{Exec, Param, StatementMode};
use super::replicas::{Chosen, Via};
use super::reporting::{Arg, Query, Reporting};
use crate::error::{DbContext, Result};
use crate::schema::{partition_name_of, Mode};

const EXPLAIN_JSON: &str = "EXPLAIN (ANALYZE, FORMAT JSON) ";
const EXPLAIN_TEXT: &str = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) ";
const PARTITION_COUNT: &str = "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)";

/// How much of one table a plan touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableUse {
    pub table: String,
    /// Partitions scanned (at least once); 0 for a plain table.
    pub partitions_touched: usize,
    /// Partitions in the plan, run or not (a partition pruned at planning
    /// is not in it; one pruned at executor start-up is counted in
    /// `subplans_removed` instead).
    pub partitions_planned: usize,
    /// `Subplans Removed` of the plan's appends over this table's
    /// partitions: pruned at executor start-up, but locked all the same.
    pub subplans_removed: u64,
    /// The statement named one partition itself (the repository's leaf
    /// routing), so the server neither planned nor pruned the others.
    pub leaf: Option<String>,
    /// Partitions the table has; 0 for a plain table.
    pub partitions: usize,
}

/// An explained query.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub mode: Mode,
    /// primary or replica
    pub target: String,
    /// The plan as `EXPLAIN ANALYZE` prints it.
    pub plan: String,
    /// The mode's tables the plan reads.
    pub tables: Vec<TableUse>,
}

/// Relations a JSON plan scanned: every node with a relation name that ran
/// at least once (a subplan pruned at executor start-up never runs).
pub fn scanned_relations(plan: &serde_json::Value) -> BTreeSet<String> {
    fn walk(node: &serde_json::Value, out: &mut BTreeSet<String>) {
        if let Some(name) = node.get("Relation Name").and_then(|v| v.as_str()) {
            let loops = node.get("Actual Loops").and_then(|v| v.as_f64());
            if loops.is_none_or(|l| l > 0.0) {
                out.insert(name.to_string());
            }
        }
        if let Some(children) = node.get("Plans").and_then(|v| v.as_array()) {
            for c in children {
                walk(c, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Some(items) = plan.as_array() {
        for item in items {
            if let Some(p) = item.get("Plan") {
                walk(p, &mut out);
            }
        }
    }
    out
}

/// Every relation a JSON plan names, and each append's `Subplans Removed`
/// with the relations under it.
fn planned(plan: &serde_json::Value) -> (BTreeSet<String>, Vec<(u64, Vec<String>)>) {
    fn walk(
        node: &serde_json::Value,
        names: &mut BTreeSet<String>,
        removed: &mut Vec<(u64, Vec<String>)>,
    ) {
        if let Some(name) = node.get("Relation Name").and_then(|v| v.as_str()) {
            names.insert(name.to_string());
        }
        let children = node.get("Plans").and_then(|v| v.as_array());
        if let Some(n) = node.get("Subplans Removed").and_then(|v| v.as_u64()) {
            let mut under = BTreeSet::new();
            let mut ignore = Vec::new();
            for c in children.into_iter().flatten() {
                walk(c, &mut under, &mut ignore);
            }
            removed.push((n, under.into_iter().collect()));
        }
        for c in children.into_iter().flatten() {
            walk(c, names, removed);
        }
    }
    let mut names = BTreeSet::new();
    let mut removed = Vec::new();
    for item in plan.as_array().into_iter().flatten() {
        if let Some(p) = item.get("Plan") {
            walk(p, &mut names, &mut removed);
        }
    }
    (names, removed)
}

impl Reporting {
    /// Run `q` under `EXPLAIN ANALYZE` where `via` sends it, in the current mode.
    pub async fn explain(&self, q: &Query, via: Via) -> Result<Explained> {
        let mode = self.core.mode(q.org()).await;
        let stmts = self.core.sql(mode, q.org()).await;
        let (sql, args) = q.statement(&stmts.reporting);
        let chosen = self.core.replicas.choose(via, None).await?;
        let target = match chosen {
            Chosen::Primary(t) | Chosen::Replica(_, t) => t,
        };
        let params: Vec<Param<'_>> = args.iter().map(Arg::param).collect();
        let conn = target.get().await?;
        let what = || format!("explaining {} on the {}", q.name(), target.name);
        // Unnamed: an EXPLAIN is run once, there is nothing to prepare.
        let json: serde_json::Value = conn
            .run(
                StatementMode::Unnamed,
                &format!("{EXPLAIN_JSON}{sql}"),
                &params,
            )
            .await
            .db(what)?[0]
            .get(0);
        let text: Vec<String> = conn
            .run(
                StatementMode::Unnamed,
                &format!("{EXPLAIN_TEXT}{sql}"),
                &params,
            )
            .await
            .db(what)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let scanned = scanned_relations(&json);
        let (in_plan, removed) = planned(&json);
        let mut tables = Vec::new();
        for parent in mode.tables().all() {
            let touched = scanned
                .iter()
                .filter(|r| partition_name_of(parent, r))
                .count();
            if touched == 0 && !scanned.contains(parent) {
                continue;
            }
            let of_parent: Vec<&String> = in_plan
                .iter()
                .filter(|r| partition_name_of(parent, r))
                .collect();
            let subplans_removed = removed
                .iter()
                .filter(|(_, under)| under.iter().any(|r| partition_name_of(parent, r)))
                .map(|(n, _)| n)
                .sum();
            let leaf = match (&stmts, of_parent.as_slice()) {
                (super::Stmts::Leaf(..), [one]) if !in_plan.contains(parent) => {
                    Some(one.to_string())
                }
                _ => None,
            };
            let count: i64 = conn
                .run(
                    StatementMode::Unnamed,
                    PARTITION_COUNT,
                    &[(&parent, Type::TEXT)],
                )
                .await
                .db(|| format!("counting the partitions of {parent}"))?[0]
                .get(0);
            tables.push(TableUse {
                table: parent.to_string(),
                partitions_touched: touched,
                partitions_planned: of_parent.len(),
                subplans_removed,
                leaf,
                partitions: count as usize,
            });
        }
        Ok(Explained {
            mode,
            target: target.name.clone(),
            plan: text.join("\n"),
            tables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relations_that_ran_count_as_scanned() {
        let plan = serde_json::json!([{ "Plan": {
            "Node Type": "Append",
            "Plans": [
                { "Node Type": "Index Scan", "Relation Name": "s_p003", "Actual Loops": 1 },
                { "Node Type": "Seq Scan", "Relation Name": "s_p004", "Actual Loops": 0 },
                { "Node Type": "Hash", "Plans": [
                    { "Node Type": "Seq Scan", "Relation Name": "organizations" }
                ]}
            ]
        }}]);
        let got: Vec<String> = scanned_relations(&plan).into_iter().collect();
        assert_eq!(got, vec!["organizations", "s_p003"]);
    }

    #[test]
    fn appends_report_what_they_pruned_at_start_up() {
        let plan = serde_json::json!([{ "Plan": {
            "Node Type": "Append",
            "Subplans Removed": 63,
            "Plans": [
                { "Node Type": "Index Scan", "Relation Name": "s_p003", "Actual Loops": 1 }
            ]
        }}]);
        let (names, removed) = planned(&plan);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["s_p003"]);
        assert_eq!(removed, vec![(63, vec!["s_p003".to_string()])]);
    }
}
