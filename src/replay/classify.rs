//! Which of a trace's statements are the platform's operations. The
//! repository sends a known set of statements; one recognised by its shape
//! (in either mode, or on a leaf partition) becomes that operation, with
//! its inputs read from the bind parameters, and the replay sends it
//! through the repository of the mode asked for. The repository's own
//! bookkeeping (the WAL position after a write, the flag, the batch's
//! transaction) is absorbed: the replay's repository does it again itself.
//! Everything else is another application's statement, replayed verbatim
//! or skipped.

use crate::day::Day;
use crate::driver::replay::Call;
use crate::repo::finance::{Adjustment, EntryKind, NewEntry};
use crate::scenario::Operation;

use super::csvlog::Statement;

/// What a statement is to the replay.
#[derive(Debug, Clone)]
pub enum Class {
    Op(Operation, Call),
    /// The first statement of an end-of-day batch (its summary rows locked).
    BatchStart(i64),
    /// A batch's rows of one kind.
    BatchRows(Vec<NewEntry>),
    /// The repository's own bookkeeping.
    Absorbed,
    /// BEGIN, COMMIT or ROLLBACK: absorbed inside a batch, verbatim outside.
    Transaction(Tx),
    Unknown,
    /// A repository statement whose parameters did not read: why.
    Unreadable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    Begin,
    End,
}

/// Lower case with runs of white space as one space.
pub fn normalize(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut space = false;
    for c in sql.trim().chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

const REVENUE: &str = "revenue_entries";
const EXPENSE: &str = "expense_entries";
const SUMMARY: &str = "daily_financial_summaries";

/// The repository's bookkeeping statements, normalised (prefixes).
const ABSORBED: &[&str] = &[
    "select pg_current_wal_insert_lsn()",
    "select pg_current_wal_lsn()",
    "select pg_last_wal_replay_lsn()",
    "select pg_is_in_recovery(), pg_last_wal_replay_lsn()",
    "select enabled from feature_flags where name = $1",
    "select exists (select 1 from organizations where id = $1)",
    "select organization_id, id from properties",
    "select f.enabled, r.basis_points",
    "set statement_timeout",
    "select current_database()",
    // Attribution's reading of the repository's own plans.
    "select statement, generic_plans, custom_plans from pg_prepared_statements",
    // Leaf routing's reading of the partitions.
    "select c.relname::text, c.relkind::text, pg_get_expr(",
    "select pt.partstrat::text",
    "select count(*) from unnest($1::int8[], $2::int4[]) as t(k, r)",
];

pub fn classify(st: &Statement) -> Class {
    let n = normalize(&st.sql);
    match n.as_str() {
        "begin" | "start transaction" => return Class::Transaction(Tx::Begin),
        "commit" | "rollback" | "end" => return Class::Transaction(Tx::End),
        _ => {}
    }
    if ABSORBED.iter().any(|a| n.starts_with(a)) {
        return Class::Absorbed;
    }
    let kind_of = |after: &str| -> Option<EntryKind> {
        let rest = n.strip_prefix(after)?;
        if rest.starts_with(REVENUE) {
            Some(EntryKind::Revenue)
        } else if rest.starts_with(EXPENSE) {
            Some(EntryKind::Expense)
        } else {
            None
        }
    };
    let p = Params(&st.params);
    let read = |f: &dyn Fn(&Params) -> Result<Class, String>| match f(&p) {
        Ok(c) => c,
        Err(why) => Class::Unreadable(why),
    };
    if let Some(kind) = kind_of("insert into ") {
        if n.contains("from unnest(") {
            return read(&|p| batch_rows(p, kind));
        }
        if n.contains("from properties p where p.id = $2 and p.organization_id = $1") {
            return read(&|p| {
                let mut e = NewEntry::revenue(p.i64(2)?, p.day(3)?, &p.text(4)?, p.i64(5)?);
                e.kind = kind;
                let desc = if kind == EntryKind::Expense {
                    e.vendor = Some(p.text(6)?);
                    7
                } else {
                    6
                };
                e.description = p.opt_text(desc);
                let op = match kind {
                    EntryKind::Revenue => Operation::RecordRevenue,
                    EntryKind::Expense => Operation::RecordExpense,
                };
                Ok(Class::Op(
                    op,
                    Call::Record {
                        org: p.i64(1)?,
                        entry: e,
                    },
                ))
            });
        }
    }
    if n.starts_with(&format!("insert into {SUMMARY}")) && n.contains("unnest(") {
        return read(&|p| Ok(Class::BatchStart(p.i64(1)?)));
    }
    if let Some(kind) = kind_of("update ") {
        if n.contains("where e.organization_id = $1 and e.id = $2") {
            return read(&|p| {
                Ok(Class::Op(
                    Operation::Adjust,
                    Call::Adjust {
                        org: p.i64(1)?,
                        kind,
                        change: Adjustment {
                            amount_cents: p.opt_i64(3)?,
                            category: p.opt_text(4),
                            business_date: p.opt_day(5)?,
                            property_id: p.opt_i64(6)?,
                        },
                    },
                ))
            });
        }
    }
    if let Some(kind) = kind_of("delete from ") {
        if n.contains("where organization_id = $1 and id = $2") {
            return read(&|p| {
                Ok(Class::Op(
                    Operation::Void,
                    Call::Void {
                        org: p.i64(1)?,
                        kind,
                    },
                ))
            });
        }
    }
    if n.starts_with("select business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8 from daily_financial_summaries") {
        return read(&|p| {
            Ok(Class::Op(
                Operation::Dashboard,
                Call::Dashboard { org: p.i64(1)?, from: p.day(2)?, to: p.day(3)? },
            ))
        });
    }
    if n.starts_with("select 'revenue' as kind, category::text as category") {
        return read(&|p| {
            Ok(Class::Op(
                Operation::Pnl,
                Call::Pnl {
                    org: p.i64(1)?,
                    month: p.day(2)?,
                },
            ))
        });
    }
    if n.starts_with("select s.property_id, p.name, p.kind") && n.contains(SUMMARY) {
        return read(&|p| {
            Ok(Class::Op(
                Operation::Properties,
                Call::Properties {
                    org: p.i64(1)?,
                    from: p.day(2)?,
                    to: p.day(3)?,
                },
            ))
        });
    }
    if n.starts_with("(select business_date, 'expense'::text as kind") {
        return read(&|p| {
            Ok(Class::Op(
                Operation::Ledger,
                Call::Ledger {
                    org: p.i64(1)?,
                    from: p.day(2)?,
                    to: p.day(3)?,
                    limit: p.i64(8)?.clamp(1, 10_000) as u32,
                },
            ))
        });
    }
    if n.starts_with("with latest as") && n.contains("portfolio_rankings") {
        return read(&|p| {
            Ok(Class::Op(
                Operation::Portfolio,
                Call::Portfolio {
                    from: p.day(1)?,
                    to: p.day(2)?,
                    top: p.i64(3)?.clamp(1, 1000) as u32,
                },
            ))
        });
    }
    Class::Unknown
}

fn batch_rows(p: &Params, kind: EntryKind) -> Result<Class, String> {
    let props = p.array(2)?;
    let days = p.array(3)?;
    let cats = p.array(4)?;
    let amounts = p.array(5)?;
    let (vendors, descs) = match kind {
        EntryKind::Revenue => (None, p.array(6)?),
        EntryKind::Expense => (Some(p.array(6)?), p.array(7)?),
    };
    let n = props.len();
    if [days.len(), cats.len(), amounts.len(), descs.len()]
        .iter()
        .any(|&l| l != n)
        || vendors.as_ref().is_some_and(|v| v.len() != n)
    {
        return Err("the batch's arrays differ in length".into());
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let need = |v: &Option<String>, what: &str| {
            v.clone()
                .ok_or_else(|| format!("a batch row's {what} is NULL"))
        };
        let num = |v: &Option<String>, what: &str| -> Result<i64, String> {
            need(v, what)?
                .parse()
                .map_err(|_| format!("a batch row's {what} is not an integer"))
        };
        let mut e = NewEntry::revenue(
            num(&props[i], "property")?,
            need(&days[i], "day")?
                .parse()
                .map_err(|e| format!("a batch row's day: {e}"))?,
            &need(&cats[i], "category")?,
            num(&amounts[i], "amount")?,
        );
        e.kind = kind;
        if let Some(v) = &vendors {
            e.vendor = Some(need(&v[i], "vendor")?);
        }
        e.description = descs[i].clone();
        out.push(e);
    }
    Ok(Class::BatchRows(out))
}

/// Bind parameters by position ($1 is 1).
struct Params<'a>(&'a [Option<String>]);

impl Params<'_> {
    fn raw(&self, i: usize) -> Result<Option<&str>, String> {
        self.0
            .get(i - 1)
            .map(|v| v.as_deref())
            .ok_or_else(|| format!("${i} was not logged"))
    }
    fn text(&self, i: usize) -> Result<String, String> {
        self.raw(i)?
            .map(str::to_string)
            .ok_or_else(|| format!("${i} is NULL"))
    }
    fn opt_text(&self, i: usize) -> Option<String> {
        self.raw(i).ok().flatten().map(str::to_string)
    }
    fn i64(&self, i: usize) -> Result<i64, String> {
        self.opt_i64(i)?.ok_or_else(|| format!("${i} is NULL"))
    }
    fn opt_i64(&self, i: usize) -> Result<Option<i64>, String> {
        self.raw(i)?
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("${i} = {v:?} is not an integer"))
            })
            .transpose()
    }
    fn day(&self, i: usize) -> Result<Day, String> {
        self.opt_day(i)?.ok_or_else(|| format!("${i} is NULL"))
    }
    fn opt_day(&self, i: usize) -> Result<Option<Day>, String> {
        self.raw(i)?
            .map(|v| v.trim().parse().map_err(|e| format!("${i} = {v:?}: {e}")))
            .transpose()
    }
    fn array(&self, i: usize) -> Result<Vec<Option<String>>, String> {
        parse_array(&self.text(i)?).map_err(|why| format!("${i}: {why}"))
    }
}

/// A one-dimensional array literal, `{1,"a b",NULL,"x\"y"}`.
pub fn parse_array(s: &str) -> Result<Vec<Option<String>>, String> {
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .ok_or_else(|| format!("{s:?} is not an array literal"))?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut v = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => v.push(chars.next().ok_or("a dangling backslash")?),
                    Some('"') => break,
                    Some(c) => v.push(c),
                    None => return Err("an unterminated quoted element".into()),
                }
            }
            out.push(Some(v));
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                v.push(c);
                chars.next();
            }
            let v = v.trim();
            out.push((!v.eq_ignore_ascii_case("null")).then(|| v.to_string()));
        }
        match chars.next() {
            Some(',') => continue,
            None => return Ok(out),
            Some(c) => return Err(format!("unexpected {c:?} after an element")),
        }
    }
}

/// A statement's text with its bind parameters inlined as literals of
/// unknown type, which the server types from where they stand, as it typed
/// the parameters (`$1` in `id = $1` becomes `'5'`, read as the column's
/// type). `$n` inside quotes, quoted names or comments is left alone.
pub fn inline(sql: &str, params: &[Option<String>]) -> String {
    if params.is_empty() {
        return sql.to_string();
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let n: usize = sql[i + 1..j].parse().unwrap_or(0);
                if let Some(v) = n.checked_sub(1).and_then(|k| params.get(k)) {
                    out.push_str(&sql[last..i]);
                    match v {
                        Some(v) => {
                            out.push('\'');
                            out.push_str(&v.replace('\'', "''"));
                            out.push('\'');
                        }
                        None => out.push_str("NULL"),
                    }
                    last = j;
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[last.min(sql.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(sql: &str, params: &[Option<&str>]) -> Statement {
        Statement {
            at_us: 0,
            logged_us: 0,
            sql: sql.into(),
            params: params.iter().map(|p| p.map(str::to_string)).collect(),
            simple: false,
            file: 0,
            line: 1,
        }
    }

    #[test]
    fn the_repositorys_statements_in_either_mode_are_its_operations() {
        for revenue in ["revenue_entries", "revenue_entries_partitioned"] {
            let sql = format!(
                "INSERT INTO {revenue} (organization_id, property_id, business_date, category, amount_cents, description)\nSELECT p.organization_id, p.id, $3, $4::entry_category, $5, $6\nFROM properties p WHERE p.id = $2 AND p.organization_id = $1\nRETURNING id"
            );
            let c = classify(&st(
                &sql,
                &[
                    Some("7"),
                    Some("70"),
                    Some("2026-10-31"),
                    Some("rooms"),
                    Some("1234"),
                    None,
                ],
            ));
            let Class::Op(Operation::RecordRevenue, Call::Record { org, entry }) = c else {
                panic!("{c:?}")
            };
            assert_eq!((org, entry.property_id, entry.amount_cents), (7, 70, 1234));
            assert_eq!(entry.business_date, Day::from_ymd(2026, 10, 31));
        }
        let c = classify(&st(
            "SELECT business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8\nFROM daily_financial_summaries_partitioned\nWHERE organization_id = $1",
            &[Some("3"), Some("2026-10-01"), Some("2026-10-31")],
        ));
        assert!(
            matches!(
                c,
                Class::Op(Operation::Dashboard, Call::Dashboard { org: 3, .. })
            ),
            "{c:?}"
        );
        let c = classify(&st("SELECT business_date, sum(revenue_cents)::int8, sum(expense_cents)::int8 FROM daily_financial_summaries WHERE organization_id = $1", &[Some("x")]));
        assert!(
            matches!(c, Class::Unreadable(ref why) if why.contains("$1")),
            "{c:?}"
        );
        assert!(matches!(
            classify(&st("SELECT pg_current_wal_insert_lsn()", &[])),
            Class::Absorbed
        ));
        assert!(matches!(
            classify(&st(
                "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
                &[Some("1")]
            )),
            Class::Unknown
        ));
        assert!(matches!(
            classify(&st("BEGIN", &[])),
            Class::Transaction(Tx::Begin)
        ));
    }

    #[test]
    fn arrays_and_inlined_parameters() {
        assert_eq!(
            parse_array(r#"{1,"a b",NULL,"x\"y"}"#).unwrap(),
            vec![
                Some("1".into()),
                Some("a b".into()),
                None,
                Some("x\"y".into())
            ]
        );
        assert_eq!(parse_array("{}").unwrap(), Vec::<Option<String>>::new());
        assert!(parse_array("1,2").is_err());
        assert_eq!(
            inline(
                "SELECT $1, '$1', $2 -- $1\n, $10",
                &[Some("it's".into()), None]
            ),
            "SELECT 'it''s', '$1', NULL -- $1\n, $10"
        );
    }
}
