//! The shape of a rehearsal database: shared tables, each mode's entry and
//! summary tables, the triggers that keep summaries exact, and
//! `rehearse_meta`.
//!
//! DDL lives in `sql/*.sql`; the table names of each mode live in
//! [`tables`]. Creation is split into tables, keys and triggers so the seeder
//! can load between the first and the other two.

pub mod meta;
pub mod safety;
pub mod tables;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, GenericClient, Transaction};

pub use crate::estate::PartitionRouting;
pub use meta::SchemaInfo;
pub use tables::{partition_name_of, FinanceTables, Mode, Modes};

use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;

/// The schema version this rehearse creates and accepts.
pub const SCHEMA_VERSION: i64 = 1;
/// Partition count when none is given.
pub const DEFAULT_PARTITIONS: u32 = 64;
/// The most partitions `schema create` accepts.
pub const MAX_PARTITIONS: u32 = 1024;

const SHARED_TABLES: &str = include_str!("sql/shared_tables.sql");
const SHARED_KEYS: &str = include_str!("sql/shared_keys.sql");
/// The flag's rollout (issue 17), created with the shared tables and, on an
/// estate seeded before rollouts, by the first `rehearse rollout` change.
pub const ROLLOUT_TABLE: &str = include_str!("sql/rollout_table.sql");
/// The maintenance jobs' run log, created with the shared tables so the
/// exporter's query finds it before the first job runs.
pub const JOB_RUNS_TABLE: &str = include_str!("sql/job_runs_table.sql");
/// The portfolio's rankings, which the portfolio-refresh job keeps: created
/// with the shared tables, and by the job on an estate created before it.
pub const PORTFOLIO_RANKINGS_TABLE: &str = include_str!("sql/portfolio_rankings_table.sql");
const ENTRY_TABLES: &str = include_str!("sql/entry_tables.sql");
const ENTRY_KEYS: &str = include_str!("sql/entry_keys.sql");
const APPLY_HARDENED: &str = include_str!("sql/summary_apply_hardened.sql");
const APPLY_NAIVE: &str = include_str!("sql/summary_apply_naive.sql");
const TRIGGERS: &str = include_str!("sql/summary_triggers.sql");
const AGGREGATE: &str = include_str!("sql/summary_aggregate.sql");
const MISMATCHES: &str = include_str!("sql/summary_mismatches.sql");
const META: &str = include_str!("sql/meta.sql");
const DROP_MODE: &str = include_str!("sql/drop_mode.sql");
const DROP_SHARED: &str = include_str!("sql/drop_shared.sql");
const DROP_META: &str = "DROP TABLE IF EXISTS rehearse_meta";

/// Every per-mode template, for the test that checks rendering.
#[cfg(test)]
const TEMPLATES: [&str; 8] = [
    AGGREGATE,
    ENTRY_TABLES,
    ENTRY_KEYS,
    APPLY_HARDENED,
    APPLY_NAIVE,
    TRIGGERS,
    MISMATCHES,
    DROP_MODE,
];

/// How the summary triggers update a summary row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerVariant {
    /// One `INSERT ... ON CONFLICT DO UPDATE` per row, in key order.
    Hardened,
    /// Read the row, then insert or update it: the race the rollout removes.
    Naive,
}

crate::named!("trigger variant", TriggerVariant { Hardened = "hardened", Naive = "naive" });

/// What `schema create` builds.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub modes: Modes,
    pub partitions: u32,
    pub trigger_variant: TriggerVariant,
    pub allow_destructive: Option<String>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            modes: Modes::Both,
            partitions: DEFAULT_PARTITIONS,
            trigger_variant: TriggerVariant::Hardened,
            allow_destructive: None,
        }
    }
}

/// Create the shared tables (no keys).
pub async fn create_shared_tables(client: &impl GenericClient) -> Result<()> {
    exec(client, SHARED_TABLES, "creating the shared tables").await?;
    exec(
        client,
        PORTFOLIO_RANKINGS_TABLE,
        "creating the portfolio's rankings table",
    )
    .await?;
    exec(client, ROLLOUT_TABLE, "creating the rollout table").await?;
    exec(client, JOB_RUNS_TABLE, "creating the job run log").await
}

/// Keys and indexes of the shared tables.
pub async fn create_shared_keys(client: &impl GenericClient) -> Result<()> {
    exec(client, SHARED_KEYS, "creating keys of the shared tables").await
}

/// One mode's entry and summary tables, with partitions in partitioned mode.
pub async fn create_mode_tables(
    client: &impl GenericClient,
    mode: Mode,
    partitions: u32,
) -> Result<()> {
    exec(
        client,
        &mode_tables_sql(mode, partitions),
        &format!("creating the {mode} tables"),
    )
    .await
}

/// The DDL of one mode's entry and summary tables (with partitions).
pub fn mode_tables_sql(mode: Mode, partitions: u32) -> String {
    let t = mode.tables();
    let mut sql = t.render(ENTRY_TABLES);
    if mode == Mode::Partitioned {
        for parent in t.all() {
            sql.push_str(&tables::partitions_ddl(parent, partitions));
        }
    }
    sql
}

/// One mode's primary keys and indexes.
pub async fn create_mode_keys(client: &impl GenericClient, mode: Mode) -> Result<()> {
    exec(
        client,
        &mode.tables().render(ENTRY_KEYS),
        &format!("creating keys of the {mode} tables"),
    )
    .await
}

/// One mode's summary triggers, in the given variant (replacing any other).
pub async fn create_triggers(
    client: &impl GenericClient,
    mode: Mode,
    variant: TriggerVariant,
) -> Result<()> {
    exec(
        client,
        &triggers_sql(mode.tables(), variant),
        &format!("creating the {mode} summary triggers"),
    )
    .await
}

/// The summary functions and triggers of one set of finance tables.
pub fn triggers_sql(t: &FinanceTables, variant: TriggerVariant) -> String {
    let apply = match variant {
        TriggerVariant::Hardened => APPLY_HARDENED,
        TriggerVariant::Naive => APPLY_NAIVE,
    };
    // A plpgsql function may not be replaced by a sql one of the same
    // signature while triggers hold it, so drop the old first.
    format!(
        "DROP FUNCTION IF EXISTS {}(boolean, bigint, bigint, date, bigint, integer) CASCADE;\n{}\n{}",
        t.apply_fn,
        t.render(apply),
        t.render(TRIGGERS)
    )
}

/// Entry tables, keys and summary triggers of a set of plain (unpartitioned)
/// finance tables named by `t`: what a side experiment (the trigger race)
/// builds next to the real ones.
pub fn plain_tables_sql(t: &FinanceTables, variant: TriggerVariant) -> String {
    format!(
        "{}\n{}\n{}",
        t.render(ENTRY_TABLES),
        t.render(ENTRY_KEYS),
        triggers_sql(t, variant)
    )
}

/// Drop a set of finance tables and their trigger functions.
pub fn drop_tables_sql(t: &FinanceTables) -> String {
    t.render(DROP_MODE)
}

/// Rows of a set of finance tables' summaries that differ from the aggregate
/// of its entries, over every organization.
pub async fn summary_mismatches_of(client: &impl GenericClient, t: &FinanceTables) -> Result<i64> {
    let sql = t.render(&MISMATCHES.replace("{{aggregate}}", AGGREGATE));
    let row = client.query_one(&sql, &[&0i64, &i64::MAX]).await.db(|| {
        format!(
            "comparing the summaries of {} with their entries",
            t.summary
        )
    })?;
    Ok(row.get(0))
}

/// Rows of one mode's summary table that differ from the aggregate of its
/// entries, over every organization.
pub async fn summary_mismatches(client: &impl GenericClient, mode: Mode) -> Result<i64> {
    summary_mismatches_in(client, mode, 0, i64::MAX).await
}

/// Rows of one mode's summary table that differ from the aggregate of its
/// entries, for organizations `first..=last`.
pub async fn summary_mismatches_in(
    client: &impl GenericClient,
    mode: Mode,
    first: i64,
    last: i64,
) -> Result<i64> {
    let row = client
        .query_one(&summary_sql(mode, MISMATCHES), &[&first, &last])
        .await
        .db(|| format!("comparing {mode} summaries with their entries"))?;
    Ok(row.get(0))
}

fn summary_sql(mode: Mode, template: &str) -> String {
    let t = mode.tables();
    t.render(&template.replace("{{aggregate}}", AGGREGATE))
}

/// The keys of one mode as separate statements, so a loader can build them
/// in parallel.
pub fn mode_key_statements(mode: Mode) -> Vec<String> {
    statements(&mode.tables().render(ENTRY_KEYS))
}

/// One mode's keys as jobs for a loader: `first` runs before the rest (in
/// order), `parallel` may run at once on several connections, `last` after
/// them (in order).
///
/// For a partitioned mode, each key is declared on the parent only (an
/// index that is not valid yet), built on every partition as a job of its
/// own, and the partitions' indexes are then attached, which makes the
/// parent's valid: as pg_dump restores a partitioned table. A statement on
/// the parent builds its partitions one after another on one connection;
/// partition by partition, the builds fill every connection to the end.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyJobs {
    pub first: Vec<String>,
    pub parallel: Vec<String>,
    pub last: Vec<String>,
}

pub fn mode_key_jobs(mode: Mode, partitions: u32) -> KeyJobs {
    let statements = mode_key_statements(mode);
    if mode == Mode::Legacy {
        return KeyJobs {
            parallel: statements,
            ..KeyJobs::default()
        };
    }
    let mut jobs = KeyJobs::default();
    for st in statements {
        let words: Vec<&str> = st.split_whitespace().collect();
        let flat = words.join(" ");
        // ALTER TABLE <t> ADD CONSTRAINT <name> PRIMARY KEY (<cols>)
        // CREATE INDEX IF NOT EXISTS <name> ON <t> (<cols>)
        let (table, name, cols, pk) = match words.as_slice() {
            ["ALTER", "TABLE", t, "ADD", "CONSTRAINT", n, "PRIMARY", "KEY", ..] => {
                (*t, *n, &flat[flat.find('(').expect("key columns")..], true)
            }
            ["CREATE", "INDEX", "IF", "NOT", "EXISTS", n, "ON", t, ..] => (
                *t,
                *n,
                &flat[flat.find('(').expect("index columns")..],
                false,
            ),
            _ => panic!("entry_keys.sql: a statement of an unknown form: {flat}"),
        };
        let suffix = name
            .strip_prefix(table)
            .unwrap_or_else(|| panic!("entry_keys.sql: {name} is not named after {table}"));
        jobs.first.push(if pk {
            format!("ALTER TABLE ONLY {table} ADD CONSTRAINT {name} PRIMARY KEY {cols}")
        } else {
            format!("CREATE INDEX IF NOT EXISTS {name} ON ONLY {table} {cols}")
        });
        for i in 0..partitions {
            let part = tables::partition_name(table, i);
            let part_index = format!("{part}{suffix}");
            jobs.parallel.push(if pk {
                format!("ALTER TABLE ONLY {part} ADD CONSTRAINT {part_index} PRIMARY KEY {cols}")
            } else {
                format!("CREATE INDEX IF NOT EXISTS {part_index} ON {part} {cols}")
            });
            jobs.last
                .push(format!("ALTER INDEX {name} ATTACH PARTITION {part_index}"));
        }
    }
    jobs
}

/// The shared tables' keys as separate statements, in the order they must run.
pub fn shared_key_statements() -> Vec<String> {
    statements(SHARED_KEYS)
}

/// Split a file of DDL into statements (no statement of ours holds a `;`
/// inside a literal).
fn statements(sql: &str) -> Vec<String> {
    sql.split(';')
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Drop every mode's tables and the shared data tables, keeping
/// rehearse_meta: what a reseed starts from.
pub async fn drop_data_tables(client: &impl GenericClient) -> Result<()> {
    for mode in [Mode::Legacy, Mode::Partitioned] {
        exec(
            client,
            &mode.tables().render(DROP_MODE),
            &format!("dropping the {mode} tables"),
        )
        .await?;
    }
    exec(client, DROP_SHARED, "dropping the shared tables").await
}

/// Create rehearse_meta if absent.
pub async fn create_meta(client: &impl GenericClient) -> Result<()> {
    exec(client, META, "creating rehearse_meta").await
}

async fn exec(client: &impl GenericClient, sql: &str, what: &str) -> Result<()> {
    client.batch_execute(sql).await.db(|| what.to_string())
}

/// Check that the target may be changed, then open a transaction that holds
/// the schema lock, so two schema changes never interleave (two creators
/// would both see an empty rehearse_meta).
pub async fn guarded_transaction<'a>(
    client: &'a mut Client,
    estate: &Estate,
    allow_destructive: Option<&str>,
    action: &str,
) -> Result<Transaction<'a>> {
    safety::ensure_rehearsal_target(&*client, estate, allow_destructive, action).await?;
    let tx = client
        .transaction()
        .await
        .db(|| format!("beginning the {action} transaction"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('rehearse_schema'))",
        &[],
    )
    .await
    .db(|| "taking the schema lock".into())?;
    Ok(tx)
}

/// `rehearse schema create`: build the requested modes in one transaction,
/// leaving modes already present as they are (their partition count must
/// match), and set every mode's triggers to the requested variant.
pub async fn create(
    client: &mut Client,
    estate: &Estate,
    opts: &CreateOptions,
) -> Result<SchemaInfo> {
    if opts.partitions == 0 || opts.partitions > MAX_PARTITIONS {
        return Err(Error::Usage(format!(
            "--partitions {} is out of range: choose 1 to {MAX_PARTITIONS}",
            opts.partitions
        )));
    }
    let tx = guarded_transaction(
        client,
        estate,
        opts.allow_destructive.as_deref(),
        "schema create",
    )
    .await?;
    let existing = meta::read_checked(&tx).await?;
    let mut modes: Vec<Mode> = existing
        .as_ref()
        .map(|i| i.modes.clone())
        .unwrap_or_default();
    let partitions = existing.as_ref().and_then(|i| i.partitions);
    if existing.is_none() {
        create_meta(&tx).await?;
        create_shared_tables(&tx).await?;
        create_shared_keys(&tx).await?;
        meta::set(&tx, "schema_version", &SCHEMA_VERSION.into()).await?;
    }
    for &mode in opts.modes.list() {
        if modes.contains(&mode) {
            if mode == Mode::Partitioned && partitions != Some(opts.partitions) {
                return Err(Error::Usage(format!(
                    "the partitioned tables already exist with {} partitions, not {}; drop them \
                     first with `rehearse schema drop --mode partitioned`",
                    partitions.unwrap_or(0),
                    opts.partitions
                )));
            }
            continue;
        }
        create_mode_tables(&tx, mode, opts.partitions).await?;
        create_mode_keys(&tx, mode).await?;
        modes.push(mode);
        if mode == Mode::Partitioned {
            meta::set(&tx, "partitions", &opts.partitions.into()).await?;
        }
    }
    modes.sort_by_key(|m| *m as u8);
    for &mode in &modes {
        create_triggers(&tx, mode, opts.trigger_variant).await?;
    }
    meta::set(
        &tx,
        "modes",
        &serde_json::to_value(&modes).expect("modes serialize"),
    )
    .await?;
    meta::set(
        &tx,
        "trigger_variant",
        &serde_json::to_value(opts.trigger_variant).expect("variant serializes"),
    )
    .await?;
    let info = meta::read(&tx)
        .await?
        .expect("rehearse_meta was just written");
    tx.commit().await.db(|| "committing the schema".into())?;
    Ok(info)
}

/// What `schema drop` removes.
#[derive(Debug, Clone)]
pub struct DropOptions {
    pub modes: Modes,
    pub allow_destructive: Option<String>,
}

/// `rehearse schema drop`: drop one mode's tables, or everything rehearse
/// created (both modes, the shared tables and `rehearse_meta`).
pub async fn drop_schema(
    client: &mut Client,
    estate: &Estate,
    opts: &DropOptions,
) -> Result<Option<SchemaInfo>> {
    let tx = guarded_transaction(
        client,
        estate,
        opts.allow_destructive.as_deref(),
        "schema drop",
    )
    .await?;
    for &mode in opts.modes.list() {
        exec(
            &tx,
            &mode.tables().render(DROP_MODE),
            &format!("dropping the {mode} tables"),
        )
        .await?;
    }
    let remaining = if opts.modes == Modes::Both {
        exec(&tx, DROP_SHARED, "dropping the shared tables").await?;
        exec(&tx, DROP_META, "dropping rehearse_meta").await?;
        None
    } else if let Some(mut info) = meta::read(&tx).await? {
        info.modes.retain(|m| !opts.modes.list().contains(m));
        meta::set(
            &tx,
            "modes",
            &serde_json::to_value(&info.modes).expect("modes serialize"),
        )
        .await?;
        Some(info)
    } else {
        None
    };
    tx.commit().await.db(|| "committing the drop".into())?;
    Ok(remaining)
}

/// The plain tables (and partitions) rehearse fills: the shared ones and
/// every mode's finance tables. A SQL condition on `pg_class c`.
pub const FILLED_TABLES: &str = "c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' \
     AND (c.relname IN ('organizations', 'properties') \
          OR c.relname LIKE 'revenue\\_entries%' OR c.relname LIKE 'expense\\_entries%' \
          OR c.relname LIKE 'daily\\_financial\\_summaries%')";

/// Turn autovacuum off on the tables a bulk load fills, or back to the
/// server's setting. Left on, it starts on each table as soon as its rows
/// arrive, and every index build and trigger of the seed then waits a
/// second for it to be cancelled (114 waits, 138 s, in a full seed).
pub async fn set_autovacuum(client: &impl GenericClient, enabled: bool) -> Result<()> {
    let action = if enabled {
        "RESET (autovacuum_enabled)"
    } else {
        "SET (autovacuum_enabled = false)"
    };
    let rows = client
        .query(
            &format!("SELECT c.oid::regclass::text FROM pg_class c WHERE {FILLED_TABLES}"),
            &[],
        )
        .await
        .db(|| "listing the tables a seed fills".into())?;
    let sql: String = rows
        .iter()
        .map(|r| format!("ALTER TABLE {} {action};\n", r.get::<_, String>(0)))
        .collect();
    exec(client, &sql, "setting autovacuum on the seeded tables").await
}

/// Count the partitions of a partitioned table (0 for a plain table).
pub async fn partition_count(client: &impl GenericClient, parent: &str) -> Result<i64> {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)",
            &[&parent],
        )
        .await
        .db(|| format!("counting partitions of {parent}"))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    /// The enum's labels in the schema are the generator's categories, in
    /// the same order: a category added on one side only would fail every
    /// insert of it, or never be generated.
    #[test]
    fn the_category_enum_holds_the_generators_categories() {
        let sql = super::SHARED_TABLES;
        let start = sql.find("AS ENUM (").expect("the enum is declared") + "AS ENUM (".len();
        let list = &sql[start..start + sql[start..].find(')').unwrap()];
        let labels: Vec<&str> = list
            .split(',')
            .map(|l| l.trim().trim_matches('\''))
            .collect();
        let generated: Vec<&str> = crate::generate::REVENUE_CATEGORIES
            .iter()
            .chain(crate::generate::EXPENSE_CATEGORIES.iter())
            .copied()
            .collect();
        assert_eq!(labels, generated);
    }
}

#[cfg(test)]
mod key_job_tests {
    use super::*;

    #[test]
    fn partitioned_keys_are_declared_on_the_parent_built_per_partition_and_attached() {
        let legacy = mode_key_jobs(Mode::Legacy, 4);
        assert!(legacy.first.is_empty() && legacy.last.is_empty());
        assert_eq!(legacy.parallel, mode_key_statements(Mode::Legacy));

        let keys = mode_key_statements(Mode::Partitioned).len();
        let j = mode_key_jobs(Mode::Partitioned, 4);
        assert_eq!(
            (j.first.len(), j.parallel.len(), j.last.len()),
            (keys, 4 * keys, 4 * keys)
        );
        assert!(
            j.first.iter().all(|s| s.contains(" ONLY ")),
            "{:?}",
            j.first
        );
        assert!(j.first.contains(
            &"ALTER TABLE ONLY revenue_entries_partitioned ADD CONSTRAINT revenue_entries_partitioned_pkey PRIMARY KEY (id, organization_id)".to_string()
        ), "{:?}", j.first);
        assert!(j.parallel.contains(
            &"CREATE INDEX IF NOT EXISTS expense_entries_partitioned_p003_org_date_idx ON expense_entries_partitioned_p003 (organization_id, business_date, id)".to_string()
        ), "{:?}", j.parallel);
        assert!(j.last.contains(
            &"ALTER INDEX daily_financial_summaries_partitioned_pkey ATTACH PARTITION daily_financial_summaries_partitioned_p000_pkey".to_string()
        ), "{:?}", j.last);
    }
}
