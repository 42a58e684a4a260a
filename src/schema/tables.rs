//! The table names of each mode. With the routing code of the repository
//! layer, this is the only place that names a finance table.

/// One storage layout of the finance tables.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plain tables, as production runs today.
    #[default]
    Legacy,
    /// `PARTITION BY HASH (organization_id)` tables, behind USE_PARTITIONED_TABLES.
    Partitioned,
}

/// Which modes a command acts on (`--mode legacy|partitioned|both`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modes {
    Legacy,
    Partitioned,
    Both,
}

impl Modes {
    pub fn list(self) -> &'static [Mode] {
        match self {
            Modes::Legacy => &[Mode::Legacy],
            Modes::Partitioned => &[Mode::Partitioned],
            Modes::Both => &[Mode::Legacy, Mode::Partitioned],
        }
    }
}

crate::named!("mode", Modes { Legacy = "legacy", Partitioned = "partitioned", Both = "both" });
crate::named!("mode", Mode { Legacy = "legacy", Partitioned = "partitioned" });

/// The names of one mode's finance tables and trigger functions.
#[derive(Debug, Clone, Copy)]
pub struct FinanceTables {
    pub mode: Mode,
    pub revenue: &'static str,
    pub expense: &'static str,
    pub summary: &'static str,
    pub trigger_fn: &'static str,
    pub apply_fn: &'static str,
    /// Columns of the entry tables' primary key.
    pub entry_key: &'static str,
}

const LEGACY: FinanceTables = FinanceTables {
    mode: Mode::Legacy,
    revenue: "revenue_entries",
    expense: "expense_entries",
    summary: "daily_financial_summaries",
    trigger_fn: "rehearse_summary_trigger_legacy",
    apply_fn: "rehearse_summary_apply_legacy",
    entry_key: "id",
};

const PARTITIONED: FinanceTables = FinanceTables {
    mode: Mode::Partitioned,
    revenue: "revenue_entries_partitioned",
    expense: "expense_entries_partitioned",
    summary: "daily_financial_summaries_partitioned",
    trigger_fn: "rehearse_summary_trigger_partitioned",
    apply_fn: "rehearse_summary_apply_partitioned",
    // id first: ids come from one sequence, so a new row lands on the
    // key's rightmost page, as on legacy's (id). Keyed (organization_id,
    // id), each insert dirtied one more random leaf page than legacy's:
    // at 1M organizations, after a checkpoint, 1.11 against 0.52 pages
    // dirtied and 1.1 against 0.5 full-page images per row (2026-12-06).
    entry_key: "id, organization_id",
};

impl Mode {
    pub fn tables(self) -> &'static FinanceTables {
        match self {
            Mode::Legacy => &LEGACY,
            Mode::Partitioned => &PARTITIONED,
        }
    }
}

impl FinanceTables {
    /// The three partitioned parents (or plain tables) of this mode.
    pub fn all(&self) -> [&'static str; 3] {
        [self.revenue, self.expense, self.summary]
    }

    /// Fill a SQL template's `{{name}}` placeholders with this mode's names.
    pub fn render(&self, template: &str) -> String {
        self.render_as(template, [self.revenue, self.expense, self.summary])
    }

    /// [`FinanceTables::render`], with other relations for the revenue,
    /// expense and summary tables (one organization's leaf partitions).
    pub fn render_as(&self, template: &str, [revenue, expense, summary]: [&str; 3]) -> String {
        let partition_by = match self.mode {
            Mode::Legacy => "",
            Mode::Partitioned => "PARTITION BY HASH (organization_id)",
        };
        template
            .replace("{{revenue}}", revenue)
            .replace("{{expense}}", expense)
            .replace("{{summary}}", summary)
            .replace("{{trigger_fn}}", self.trigger_fn)
            .replace("{{apply_fn}}", self.apply_fn)
            .replace("{{entry_key}}", self.entry_key)
            .replace("{{partition_by}}", partition_by)
            .replace("{{mode}}", &self.mode.to_string())
    }
}

/// The name of partition `i` of `parent`: `<parent>_p000`, `<parent>_p001`, ...
pub fn partition_name(parent: &str, i: u32) -> String {
    format!("{parent}_p{i:03}")
}

/// Whether `relation` is one of `parent`'s partitions, as [`partition_name`] names them.
pub fn partition_name_of(parent: &str, relation: &str) -> bool {
    relation
        .strip_prefix(parent)
        .and_then(|r| r.strip_prefix("_p"))
        .is_some_and(|n| n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// DDL that creates `count` hash partitions of `parent`.
pub fn partitions_ddl(parent: &str, count: u32) -> String {
    (0..count)
        .map(|i| {
            format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {parent} FOR VALUES WITH (MODULUS {count}, REMAINDER {i});\n",
                partition_name(parent, i)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_leaves_no_placeholder() {
        for m in [Mode::Legacy, Mode::Partitioned] {
            for t in super::super::TEMPLATES {
                let out = super::super::summary_sql(m, t);
                assert!(!out.contains("{{"), "{m}: {out}");
            }
        }
    }

    #[test]
    fn partitions_are_numbered_with_three_digits() {
        let ddl = partitions_ddl("x", 3);
        assert!(ddl.contains("x_p000 PARTITION OF x FOR VALUES WITH (MODULUS 3, REMAINDER 0)"));
        assert!(ddl.contains("x_p002 PARTITION OF x FOR VALUES WITH (MODULUS 3, REMAINDER 2)"));
        assert_eq!(ddl.lines().count(), 3);
        assert!(partition_name_of("x", &partition_name("x", 2)));
        assert!(!partition_name_of(
            "revenue_entries",
            "revenue_entries_partitioned_p001"
        ));
        assert!(!partition_name_of("x", "x"));
    }
}
